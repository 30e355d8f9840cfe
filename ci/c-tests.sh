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
    gcc "${CFLAGS[@]}" "$test" "${UNITS[@]}" -o "$out/$name" $(pkg-config --libs libdpdk) -lcrypto
    echo "== $name"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 "$out/$name" || status=1
done

exit $status
