#!/usr/bin/env bash
# Runs libFuzzer targets built by `make fuzz-build`.
#   Tools/fuzz-run.sh BIN_DIR SECONDS [TARGET...]     (all of Fuzz/targets.tsv when none named)
# Each target runs SECONDS with its -max_len from Fuzz/targets.tsv, a memory limit (FUZZ_RSS_MB, default 2048) and
# a 10 s per-input timeout, over Fuzz/Corpus/<target> and Fuzz/Regressions/<target>; new interesting inputs go to
# .build/fuzz-work/corpus/<target> (kept between runs, not committed). A crash, leak, timeout or out-of-memory input
# is copied to Fuzz/Regressions/<target>/ and the run fails once every target has had its turn.
# FUZZ_SEED fixes libFuzzer's seed (the smoke run uses 1). Prints one table row per target and writes the table to
# .build/fuzz-work/summary.txt.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$1
seconds=$2
shift 2
rss=${FUZZ_RSS_MB:-2048}
work="$root/.build/fuzz-work"
mkdir -p "$work"
declare -A maxlen
all=()
while IFS=$'\t' read -r name len; do
    [[ -z "$name" || "$name" == \#* ]] && continue
    maxlen[$name]=$len
    all+=("$name")
done < "$root/Fuzz/targets.tsv"
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")
seed_flag=()
[ -n "${FUZZ_SEED:-}" ] && seed_flag=(-seed="$FUZZ_SEED")

failed=()
summary="$work/summary.txt"
printf '%-16s %8s %12s %8s %8s %8s %s\n' target seconds execs exec/s cov ft crashes | tee "$summary"
for t in "${targets[@]}"; do
    len=${maxlen[$t]:-}
    if [ -z "$len" ]; then echo "unknown fuzz target $t (not in Fuzz/targets.tsv)"; exit 2; fi
    corpus="$work/corpus/$t"
    artifacts="$work/artifacts/$t/"
    mkdir -p "$corpus" "$artifacts" "$root/Fuzz/Corpus/$t" "$root/Fuzz/Regressions/$t"
    log="$work/$t.log"
    start=$(date +%s)
    # The Swift runtime's own crash handler would race ASan's report; libFuzzer's handler is enough.
    SWIFT_BACKTRACE=enable=no "$bin/fuzz-$t" "$corpus" "$root/Fuzz/Corpus/$t" "$root/Fuzz/Regressions/$t" \
        -max_total_time="$seconds" -max_len="$len" -rss_limit_mb="$rss" -timeout=10 \
        -artifact_prefix="$artifacts" -print_final_stats=1 "${seed_flag[@]}" > "$log" 2>&1
    rc=$?
    elapsed=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$last")
    found=0
    for f in "$artifacts"crash-* "$artifacts"leak-* "$artifacts"timeout-* "$artifacts"oom-*; do
        [ -e "$f" ] || continue
        cp "$f" "$root/Fuzz/Regressions/$t/"
        rm "$f"
        found=$((found + 1))
    done
    if [ $rc -ne 0 ] || [ $found -gt 0 ]; then
        failed+=("$t")
        grep -E -m3 'Fatal error|runtime failure|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)' "$log" | sed "s/^/  $t: /"
        echo "  $t: exit $rc, $found input(s) kept in Fuzz/Regressions/$t; full log $log"
    fi
    # A target that crashed could not remove its scratch folder (FuzzTargets' Scratch); drop those of dead processes.
    for d in /dev/shm/sge-fuzz-*; do
        [ -d "$d" ] && ! kill -0 "${d##*-}" 2>/dev/null && rm -rf "$d"
    done
    printf '%-16s %8s %12s %8s %8s %8s %s\n' "$t" "$elapsed" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$found" | tee -a "$summary"
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzzing found problems in: ${failed[*]} (inputs under Fuzz/Regressions/; fix them, swift test replays them)"
    exit 1
fi
