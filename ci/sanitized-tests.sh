#!/usr/bin/env bash
# The whole data plane under AddressSanitizer and UndefinedBehaviorSanitizer: the extension is
# rebuilt with OPTE_FAST_SANITIZE=1 in a copy of the tree, and the data-plane tests run against
# it with libasan preloaded into the (uninstrumented) Python. Any finding fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

# The venv's interpreter by its own path (not resolved through its symlink, which would leave the
# venv and its packages behind); from inside the copy it imports the copy's sanitized build.
python="$PWD/.venv/bin/python"
tree=build/sanitized-tree
rm -rf "$tree"
mkdir -p "$tree"
git ls-files -co --exclude-standard | grep -v '^build/' | tar -cf - -T - | tar -xf - -C "$tree"
(cd "$tree" && OPTE_FAST_SANITIZE=1 "$python" setup.py -q build_ext --inplace >/dev/null)

cd "$tree"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1
export LD_PRELOAD="$(gcc -print-file-name=libasan.so)"
"$python" -c 'import os, sys, opte_fast._dataplane as d
sys.exit(0 if d.__file__.startswith(os.getcwd()) else f"sanitized run would test {d.__file__}, not the sanitized build")'
"$python" -m pytest -q -p no:cacheprovider \
    tests/test_outbound.py tests/test_inbound.py tests/test_flows.py tests/test_affinity.py \
    tests/test_reroute.py tests/test_restart.py tests/test_safe_reads.py tests/test_link_state.py \
    tests/test_multi_worker.py tests/test_trace.py tests/test_telemetry.py tests/test_gateway.py \
    tests/test_guest_spoof.py tests/test_guest_dhcp.py tests/test_guest_mtu.py tests/test_jumbo_tso.py tests/test_inbound_guest_mtu.py \
    tests/test_bfd.py tests/test_bfd_auth.py \
    tests/test_flow_hash.py tests/test_strict_underlay.py tests/test_flow_scan.py tests/test_capacity.py \
    tests/test_bfd_geneve.py tests/test_exhaustion.py -k 'not switch_whose_bfd_fails and not decapsulation_stops' 2>&1 | tee sanitized.log
# UBSan reports without stopping Python: fail on any report afterwards.
if grep -q "runtime error:" sanitized.log; then
    grep -A8 "runtime error:" sanitized.log >&2
    exit 1
fi
