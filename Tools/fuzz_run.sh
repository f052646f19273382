#!/usr/bin/env bash
# Runs strata-fuzz's targets (the arguments), FUZZ_JOBS at a time, then prints one line per target
# in the order given, or the end of its log where it failed; exits 1 naming every target that
# failed. `make fuzz` calls it with its settings in the environment (Makefile, docs/FUZZING.md).
# Each libFuzzer process is single-threaded, so on 2 cores two targets run in the time of one.
set -u
: "${FUZZ_BIN:?}" "${FUZZ_SCRATCH:?}" "${RUNS:?}" "${FUZZ_SEED:?}"
jobs=${FUZZ_JOBS:-1}
logs=$FUZZ_SCRATCH/logs
mkdir -p "$logs"

run_one() {
    local t=$1 regressions=
    mkdir -p "$FUZZ_SCRATCH/corpus/$t" "$FUZZ_SCRATCH/crashes/$t"
    [ -d "Fuzz/regressions/$t" ] && regressions=Fuzz/regressions/$t
    # FUZZ_LIMITS, FUZZ_ARGS and regressions are lists of words, split on purpose.
    # shellcheck disable=SC2086
    "$FUZZ_BIN" "$t" -runs="$RUNS" -seed="$FUZZ_SEED" ${FUZZ_LIMITS:-} -print_final_stats=1 \
        -artifact_prefix="$FUZZ_SCRATCH/crashes/$t/" ${FUZZ_ARGS:-} \
        "$FUZZ_SCRATCH/corpus/$t" "Fuzz/seeds/$t" $regressions >"$logs/$t.log" 2>&1
    echo $? >"$logs/$t.status"
}

running=0
for t in "$@"; do
    rm -f "$logs/$t.status"
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
done
wait

failed=
for t in "$@"; do
    log=$logs/$t.log
    if [ "$(cat "$logs/$t.status" 2>/dev/null)" = 0 ]; then
        printf '%-12s %s | %s | %s\n' "$t" "$(grep -E '^Done [0-9]+ runs' "$log")" \
            "$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | sed 's/[[:space:]][[:space:]]*/ /g')" \
            "$(grep -E 'stat::average_exec_per_sec' "$log" | sed 's/stat::average_exec_per_sec: */exec\/s /')"
    else
        grep -v '^    #[1-9][0-9]' "$log" | tail -n 30
        echo "fuzz: target $t failed (the whole log: $log)"
        failed="$failed $t"
    fi
done
if [ -n "$failed" ]; then echo "fuzz: failed:$failed"; exit 1; fi
