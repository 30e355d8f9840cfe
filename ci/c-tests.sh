#!/usr/bin/env bash
# The C units (parse, NDP, gateway, guest services, resilient tables) built with AddressSanitizer and
# UndefinedBehaviorSanitizer and run; any finding aborts the run.
set -euo pipefail
cd "$(dirname "$0")/.."

out=build/c-tests
mkdir -p "$out"
CFLAGS=(-std=gnu11 -O1 -g -Wall -Wextra -Werror -fno-strict-aliasing
        -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
        $(pkg-config --cflags libdpdk) -Icsrc)
UNITS=(csrc/parse.c csrc/ndp.c csrc/gateway.c csrc/guest.c csrc/guest_net.c csrc/dhcp.c csrc/ra.c csrc/mtu.c csrc/resilient.c csrc/counters.c)

status=0
for test in csrc/tests/test_*.c; do
    name=$(basename "$test" .c)
    gcc "${CFLAGS[@]}" "$test" "${UNITS[@]}" -o "$out/$name" $(pkg-config --libs libdpdk)
    echo "== $name"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 "$out/$name" || status=1
done

# libFuzzer over the parsers, briefly on every run: any crash or sanitizer report fails it.
clang -std=gnu11 -g -O1 -fno-strict-aliasing -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    $(pkg-config --cflags libdpdk) -Icsrc csrc/fuzz/fuzz_parse.c csrc/parse.c csrc/ndp.c csrc/gateway.c csrc/guest.c csrc/guest_net.c csrc/dhcp.c \
    csrc/ra.c csrc/mtu.c csrc/counters.c \
    -o "$out/fuzz_parse"
echo "== fuzz_parse (20 s)"
"$out/fuzz_parse" -max_total_time=20 -print_final_stats=0 2>&1 | tail -2 || status=1
exit $status
