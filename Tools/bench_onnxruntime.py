#!/usr/bin/env python3
"""onnxruntime's inference speed on an ONNX file, measured as `strata bench infer` measures Strata.

Batch-1 latency: the median of --calls calls on distinct seeded inputs after 10 warm-up calls.
Throughput: the median of 5 passes of 20 batches of --batch. CPU execution provider, 2 intra-op
threads (the machine's cores), sequential execution. Prints one JSON line.

    pip install onnxruntime numpy
    python3 Tools/bench_onnxruntime.py --model fashion-cnn.onnx
"""
import argparse, json, resource, statistics, time

import numpy as np
import onnxruntime as ort


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = a.threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(a.model, opts, providers=["CPUExecutionProvider"])
    specs = sess.get_inputs()
    rng = np.random.default_rng(0)

    def sample(n):
        feeds = {}
        for s in specs:
            shape = [n] + [int(d) for d in s.shape[1:]]
            if s.type == "tensor(int64)":
                feeds[s.name] = rng.integers(1, 99, size=shape, dtype=np.int64)
            else:
                feeds[s.name] = rng.standard_normal(shape, dtype=np.float32)
        return feeds

    ones = [sample(1) for _ in range(a.calls + 10)]
    lat = []
    for x in ones:
        t = time.perf_counter()
        sess.run(None, x)
        lat.append(time.perf_counter() - t)
    batches = [sample(a.batch) for _ in range(20)]
    sess.run(None, batches[0])
    passes = []
    for _ in range(5):
        t = time.perf_counter()
        for x in batches:
            sess.run(None, x)
        passes.append(20 * a.batch / (time.perf_counter() - t))
    print(json.dumps({"benchmark": "onnxruntime_infer", "model": a.model, "onnxruntime": ort.__version__, "threads": a.threads,
                      "latency_b1_ms_median": round(statistics.median(lat[10:]) * 1e3, 4), "batch": a.batch,
                      "throughput_samples_per_s": round(statistics.median(passes), 1),
                      "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


if __name__ == "__main__":
    main()
