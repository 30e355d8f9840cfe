#!/usr/bin/env bash
# The fuzz targets at length, before a release: each for MINUTES (default 10) with the corpus it has
# grown so far (build/fuzz/corpus-*, kept between runs) and the committed seeds. A crash, sanitizer
# report or broken invariant stops that target, leaves its input in build/fuzz/ and fails the run;
# reproduce one with build/fuzz/fuzz_<target> <file>.
#   bash ci/fuzz-long.sh [MINUTES]
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=${1:-10}
bash ci/fuzz-build.sh
status=0
for target in parse outbound inbound; do
    corpus=("build/fuzz/corpus-$target")
    mkdir -p "${corpus[0]}"
    if [ -d "csrc/fuzz/corpus/$target" ]; then
        corpus+=("csrc/fuzz/corpus/$target")
    fi
    echo "== fuzz_$target ($minutes min)"
    rm -f "build/fuzz/$target.counters"
    if ! OF_FUZZ_COUNTERS="build/fuzz/$target.counters" build/fuzz/fuzz_$target -max_total_time=$((minutes * 60)) -print_final_stats=1 \
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
