#!/usr/bin/env bash
# The libFuzzer targets, built by ci/fuzz-build.sh: fuzz_parse (the parsers, responders and BFD's
# receive path alone), fuzz_outbound and fuzz_inbound (the whole packet path of a sled with real
# tables, csrc/fuzz/sled.h), each from the committed seeds and the corpus grown so far
# (build/fuzz/corpus-*, kept between runs, never committed). A crash, sanitizer report or broken
# invariant stops that target, leaves its input in build/fuzz/ and fails the run; replay one with
# build/fuzz/fuzz_<target> FILE.
#   bash ci/fuzz.sh seeds           every seed once, no fuzzing (seconds)
#   bash ci/fuzz.sh brief           15 s for fuzz_parse, 20 s for each whole-path target (CI)
#   bash ci/fuzz.sh long [MINUTES]  each target for MINUTES (default 10), before a release
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:?usage: ci/fuzz.sh seeds|brief|long [MINUTES]}
case $mode in
    seeds) limits=(parse:-runs=0 outbound:-runs=0 inbound:-runs=0) ;;
    brief) limits=(parse:-max_total_time=15 outbound:-max_total_time=20 inbound:-max_total_time=20) ;;
    long)  s=$((${2:-10} * 60)); limits=(parse:-max_total_time=$s outbound:-max_total_time=$s inbound:-max_total_time=$s) ;;
    *)     echo "ci/fuzz.sh: unknown mode '$mode': use seeds, brief or long" >&2; exit 2 ;;
esac

bash ci/fuzz-build.sh
status=0
for run in "${limits[@]}"; do
    target=${run%%:*} limit=${run#*:}
    corpus=("build/fuzz/corpus-$target")
    mkdir -p "${corpus[0]}"
    if [ -d "csrc/fuzz/corpus/$target" ]; then
        corpus+=("csrc/fuzz/corpus/$target")
    fi
    echo "== fuzz_$target ($mode: $limit)"
    rm -f "build/fuzz/$target.counters"
    if ! OF_FUZZ_COUNTERS="build/fuzz/$target.counters" build/fuzz/fuzz_$target "$limit" -print_final_stats=1 \
            -artifact_prefix=build/fuzz/ "${corpus[@]}" > "build/fuzz/$target.log" 2>&1; then
        status=1
        grep -m1 -B2 -A20 -E "ERROR|runtime error|EXPECT" "build/fuzz/$target.log" || tail -30 "build/fuzz/$target.log"
    fi
    grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb)" "build/fuzz/$target.log" || true
    if [ -s "build/fuzz/$target.counters" ]; then   # the whole-path targets: where the frames went
        echo "counters: $(sort -k2 -nr "build/fuzz/$target.counters" | head -12 | tr '\n' ' ')"
    fi
done
exit $status
