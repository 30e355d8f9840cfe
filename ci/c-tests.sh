#!/usr/bin/env bash
# The C units (parse, NDP, gateway, guest services, resilient tables, BFD, the flow hash and
# table) built with AddressSanitizer and UndefinedBehaviorSanitizer and run; any finding aborts the run.
set -euo pipefail
cd "$(dirname "$0")/.."

out=build/c-tests
mkdir -p "$out"
CFLAGS=(-std=gnu11 -O1 -g -Wall -Wextra -Werror -fno-strict-aliasing
        -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
        $(pkg-config --cflags libdpdk) -Icsrc)
UNITS=(csrc/parse.c csrc/ndp.c csrc/gateway.c csrc/guest.c csrc/guest_net.c csrc/dhcp.c csrc/ra.c csrc/mtu.c
       csrc/resilient.c csrc/counters.c csrc/bfd.c csrc/flow.c)

status=0
for test in csrc/tests/test_*.c; do
    name=$(basename "$test" .c)
    gcc "${CFLAGS[@]}" "$test" "${UNITS[@]}" -o "$out/$name" $(pkg-config --libs libdpdk)
    echo "== $name"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 "$out/$name" || status=1
done

# libFuzzer, briefly on every run (under a minute in all): the parsers, responders and BFD's receive
# path, and the whole packet path. Any crash, sanitizer report or broken invariant fails it. The
# whole-path targets start from the committed seeds; what they find that is new goes to
# build/fuzz/corpus-*, not into the repository. ci/fuzz-long.sh runs them for longer.
bash ci/fuzz-build.sh
for run in parse:15 outbound:20 inbound:20; do
    target=${run%:*} seconds=${run#*:}
    corpus=()
    if [ -d "csrc/fuzz/corpus/$target" ]; then
        mkdir -p "build/fuzz/corpus-$target"
        corpus=("build/fuzz/corpus-$target" "csrc/fuzz/corpus/$target")
    fi
    echo "== fuzz_$target ($seconds s)"
    build/fuzz/fuzz_$target -max_total_time="$seconds" -print_final_stats=0 -artifact_prefix=build/fuzz/ \
        "${corpus[@]}" 2>&1 | tail -2 || status=1
done
exit $status
