#!/usr/bin/env bash
# The packet path's cost per packet, repeatable whatever the machine's load: bench/path_profile.c
# built as the extension builds csrc/ (-O3), run under callgrind with a simulated cache (this
# machine's: 32 KB L1, 32 MB last level), collecting only the measured bursts of known flows.
# Prints instructions, data reads/writes and simulated L1/last-level data misses per packet.
# Usage: bash bench/path-profile.sh [--flows N] [--bursts N] [--inbound]
set -euo pipefail
cd "$(dirname "$0")/.."

out=build/path-profile
mkdir -p "$out"
ring_dir=$(dirname "$(ls "$(pkg-config --variable=libdir libdpdk)"/dpdk/pmds-*/librte_net_ring.so | tail -1)")
CFLAGS=(-std=gnu11 -O3 -g -Wall -Wextra -Werror -fno-strict-aliasing $(pkg-config --cflags libdpdk) -Icsrc)
objs=()
pids=()
for src in csrc/*.c bench/path_profile.c; do
    obj="$out/$(basename "$src" .c).o"
    # Rebuilt when the source or any csrc header is newer.
    if [ ! -e "$obj" ] || [ -n "$(find "$src" csrc -newer "$obj" -name '*.[ch]' -o -newer "$obj" -name '*.def' | head -1)" ]; then
        gcc "${CFLAGS[@]}" -c "$src" -o "$obj" &
        pids+=($!)
    fi
    objs+=("$obj")
done
for pid in "${pids[@]}"; do wait "$pid"; done
gcc "${objs[@]}" -o "$out/path_profile" $(pkg-config --libs libdpdk) -L"$ring_dir" -Wl,-rpath,"$ring_dir" -lrte_net_ring -lpthread -lcrypto

"$out/path_profile" "$@" | sed 's/^/native: /'
valgrind --tool=callgrind --collect-atstart=no --cache-sim=yes \
    --I1=32768,8,64 --D1=32768,8,64 --LL=33554432,16,64 \
    --callgrind-out-file="$out/callgrind.out.$$" "$out/path_profile" "$@" > "$out/valgrind.txt.$$" 2>&1 ||
    { cat "$out/valgrind.txt.$$"; exit 1; }
packets=$(awk '/^direction/ {print $6}' "$out/valgrind.txt.$$")
awk -v packets="$packets" '
/^events:/ { for (i = 2; i <= NF; i++) name[i] = $i }
/^totals:/ { for (i = 2; i <= NF; i++) total[name[i]] = $i }
END {
    printf "per packet (callgrind, %d packets): %.1f instructions, %.1f data reads, %.1f data writes, ", packets,
        total["Ir"] / packets, total["Dr"] / packets, total["Dw"] / packets
    printf "%.2f L1 data misses, %.2f last-level data misses\n",
        (total["D1mr"] + total["D1mw"]) / packets, (total["DLmr"] + total["DLmw"]) / packets
}' "$out/callgrind.out.$$"
echo "functions: callgrind_annotate --inclusive=yes $out/callgrind.out.$$ | head -30"
