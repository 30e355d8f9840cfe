#!/usr/bin/env bash
# Builds the libFuzzer targets into build/fuzz with AddressSanitizer and UndefinedBehaviorSanitizer:
# fuzz_parse (the parsers and responders alone), fuzz_outbound and fuzz_inbound (the whole packet
# path of a sled with real tables, csrc/fuzz/sled.h). ci/fuzz.sh runs them.
set -euo pipefail
cd "$(dirname "$0")/.."

out=build/fuzz
mkdir -p "$out/obj"
FLAGS=(-std=gnu11 -g -O1 -Wall -Wextra -Werror -fno-strict-aliasing -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=all -fsanitize-ignorelist=csrc/fuzz/ignorelist.txt $(pkg-config --cflags libdpdk) -Icsrc)
# Ring ports call the ring PMD's own API, so it is linked (as setup.py does), from the plugin directory.
pmds=$(dirname "$(ls "$(pkg-config --variable=libdir libdpdk)"/dpdk/pmds-*/librte_net_ring.so | tail -1)")
LIBS=($(pkg-config --libs libdpdk) -L"$pmds" -Wl,-rpath,"$pmds" -lrte_net_ring -lcrypto)   # libcrypto: BFD's SHA1

# The data plane once (instrumented for coverage: -fsanitize=fuzzer adds no main to an object).
objs=() pids=()
for src in csrc/*.c; do
    obj="$out/obj/$(basename "$src" .c).o"
    clang "${FLAGS[@]}" -c "$src" -o "$obj" &
    objs+=("$obj") pids+=($!)
done
for pid in "${pids[@]}"; do
    wait "$pid"
done
clang "${FLAGS[@]}" csrc/fuzz/fuzz_parse.c "$out"/obj/{parse,ndp,gateway,guest,guest_net,dhcp,ra,mtu,counters,bfd}.o -o "$out/fuzz_parse" -lcrypto
for target in outbound inbound; do
    clang "${FLAGS[@]}" "csrc/fuzz/fuzz_$target.c" "${objs[@]}" "${LIBS[@]}" -o "$out/fuzz_$target"
done
