#!/bin/bash
# A rank killed mid-run (make test-distributed): two processes train the Fashion-MNIST MLP under
# mpirun with a checkpoint after every epoch; once the first checkpoint is written, rank 1 gets
# kill -9. The surviving rank must print Strata's own one-line error and the run end with a
# non-zero status within 60 s; then the checkpoint resumes on one process, and on two.
# Then a rank that hangs without dying (kill -STOP) with STRATA_MPI_TIMEOUT=5: rank 0's all-reduce
# must give up with its one-line error and the run end within 60 s. About 15 s in all.
# Usage: Tools/mpi_kill_test.sh [build folder, default .build/release]. Needs the fashion-mnist data.
set -u
BIN=${1:-.build/release}
STRATA=$(cd "$BIN" && pwd)/strata
MPIRUN=(mpirun --allow-run-as-root --oversubscribe)
export OMPI_MCA_btl_vader_single_copy_mechanism=none
DIR=$(mktemp -d /tmp/strata-kill-test.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
fail() { echo "mpi_kill_test: FAIL: $*"; echo "--- output:"; cat "$DIR/out" 2>/dev/null; exit 1; }
TRAIN=(train --data fashion-mnist --model mlp --limit 20000 --out "$DIR/m.safetensors")

"${MPIRUN[@]}" -np 2 "$STRATA" "${TRAIN[@]}" --distributed --epochs 50 --checkpoint "$DIR/ck.safetensors" >"$DIR/out" 2>&1 &
RUN=$!
for _ in $(seq 600); do [ -f "$DIR/ck.safetensors" ] && break; sleep 0.1; done
[ -f "$DIR/ck.safetensors" ] || { kill $RUN; fail "no checkpoint after 60 s"; }
sleep 0.5
# Rank 1: the child of mpirun whose environment says OMPI_COMM_WORLD_RANK=1.
rank1() {
    local found=""
    for pid in $(pgrep -P $RUN); do
        if tr '\0' '\n' </proc/$pid/environ 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1; then found=$pid; fi
    done
    echo "$found"
}
# Waits (60 s at most) for the run to end by itself; sets STATUS and ENDED (seconds since KILLED).
wait_run() {
    for _ in $(seq 600); do kill -0 $RUN 2>/dev/null || break; sleep 0.1; done
    if kill -0 $RUN 2>/dev/null; then for p in $(pgrep -P $RUN); do kill -9 $p; done; kill -9 $RUN; fail "still running 60 s after rank 1 was $1 (a hang)"; fi
    wait $RUN
    STATUS=$?
    ENDED=$(( $(date +%s) - KILLED ))
}
VICTIM=$(rank1)
[ -n "$VICTIM" ] || { kill $RUN; fail "rank 1 not found among mpirun's children"; }
KILLED=$(date +%s)
kill -9 "$VICTIM"
wait_run killed
[ $STATUS -ne 0 ] || fail "mpirun exited 0 after rank 1 was killed"
LINE=$(tr '\r' '\n' <"$DIR/out" | grep -ao "error: rank 0 stopped.*" | head -1)
[ -n "$LINE" ] || fail "no one-line error from rank 0"
echo "mpi_kill_test: rank 1 killed; the run ended after ${ENDED} s with status $STATUS; rank 0 said:"
echo "  $LINE"

# The last checkpoint resumes, on one process and on two.
EPOCH=$(grep -ao '"checkpoint_epoch":"[0-9]*"' "$DIR/ck.safetensors" | head -1 | grep -o '[0-9]*')
[ -n "$EPOCH" ] || fail "cannot read the checkpoint's epoch"
NEXT=$((EPOCH + 1))
"$STRATA" "${TRAIN[@]}" --epochs $NEXT --resume "$DIR/ck.safetensors" >"$DIR/out" 2>&1 || fail "resuming on one process failed"
grep -q "resumed from .* after epoch $EPOCH" "$DIR/out" || fail "one process did not say it resumed after epoch $EPOCH"
echo "mpi_kill_test: resumed after epoch $EPOCH on 1 process: $(tail -1 "$DIR/out")"
"${MPIRUN[@]}" -np 2 "$STRATA" "${TRAIN[@]}" --distributed --epochs $NEXT --resume "$DIR/ck.safetensors" >"$DIR/out" 2>&1 \
    || fail "resuming on two processes failed"
grep -q "resumed from .* after epoch $EPOCH on 2 processes" "$DIR/out" || fail "two processes did not say they resumed after epoch $EPOCH"
echo "mpi_kill_test: resumed after epoch $EPOCH on 2 processes: $(tail -1 "$DIR/out")"

# A rank that stops answering without dying: rank 0's all-reduce gives up after 5 s.
rm -f "$DIR/ck.safetensors"
STRATA_MPI_TIMEOUT=5 "${MPIRUN[@]}" -np 2 "$STRATA" "${TRAIN[@]}" --distributed --epochs 50 --checkpoint "$DIR/ck.safetensors" >"$DIR/out" 2>&1 &
RUN=$!
for _ in $(seq 600); do [ -f "$DIR/ck.safetensors" ] && break; sleep 0.1; done
[ -f "$DIR/ck.safetensors" ] || { kill $RUN; fail "no checkpoint after 60 s (second run)"; }
VICTIM=$(rank1)
[ -n "$VICTIM" ] || { kill $RUN; fail "rank 1 not found among mpirun's children (second run)"; }
KILLED=$(date +%s)
kill -STOP "$VICTIM"
wait_run stopped
[ $STATUS -ne 0 ] || fail "mpirun exited 0 after rank 1 was stopped"
LINE=$(tr '\r' '\n' <"$DIR/out" | grep -ao "error: rank 0: no answer from the other processes for 5 s.*" | head -1)
[ -n "$LINE" ] || fail "no one-line timeout error from rank 0"
echo "mpi_kill_test: rank 1 stopped (kill -STOP); the run ended after ${ENDED} s with status $STATUS; rank 0 said:"
echo "  $LINE"
echo "mpi_kill_test: PASS"
