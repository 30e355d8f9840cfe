#!/usr/bin/env bash
# Install everything opte-fast needs on a fresh Debian 12 or 13 machine (as root), idempotently:
# Debian's DPDK and the tools the tests drive, a virtual environment in .venv, and the package.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
    dpdk dpdk-dev libdpdk-dev pkg-config build-essential   # the data plane and dpdk-testpmd
    iproute2 ethtool                                        # namespaces, veths, routes for the tests
    tshark                                                  # independent Geneve decoding
    openvswitch-switch                                      # a real Geneve peer (userspace datapath)
    clang                                                   # libFuzzer for csrc/fuzz
    python3-venv python3-dev
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
    [[ $p == \#* ]] && continue
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "ci/install.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q "setuptools>=64" wheel "Cython>=3.0" "numpy>=1.24"
.venv/bin/pip install -q --no-build-isolation -e ".[test]"
echo "ci/install.sh: opte-fast installed in .venv ($(.venv/bin/opte-fast --version 2>/dev/null || echo built))"
