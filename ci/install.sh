#!/usr/bin/env bash
# Install everything opte-fast and its tests need on a fresh Debian 12 or 13 machine (as root),
# idempotently: Debian's DPDK, every tool a test drives, a virtual environment in .venv, and the
# package. A tool a test uses and this list lacks makes that test fail under CI=true, never skip.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
    dpdk dpdk-dev libdpdk-dev pkg-config build-essential   # the data plane; dpdk-testpmd, dpdk-telemetry.py, dpdk-dumpcap, dpdk-proc-info
    libssl-dev                                              # OpenSSL's libcrypto: BFD authentication's SHA1 (csrc/bfd.c)
    git                                                     # ci/sanitized-tests.sh copies the tracked tree
    iproute2 ethtool procps                                 # ip, ss, nstat; ethtool; sysctl, pgrep
    mount                                                   # mount -t hugetlbfs (the capture test)
    curl                                                    # the end-to-end downloads
    tshark                                                  # independent Geneve decoding
    openvswitch-switch                                      # a real Geneve peer (userspace datapath)
    frr nftables                                            # a real BFD peer (bfdd), and dropping its packets
    bird2                                                   # a BFD peer with keyed SHA1 authentication (FRR's bfdd has none)
    openvswitch-switch-dpdk                                 # the bench's peer (opte-fast bench --with-ovs)
    clang libclang-rt-dev                                   # libFuzzer and its sanitizer runtimes
    qemu-system-x86 busybox-static                          # a real VM on a vhost-user guest port
    python3-venv python3-dev
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "ci/install.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt=(apt-get -o DPkg::Lock::Timeout=600)   # wait out another install rather than fail
    "${apt[@]}" update -qq
    "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The VM test's kernel: Debian's cloud kernel package, downloaded (not installed) for its vmlinuz
# and virtio modules (tests/support/vm.py).
vm_cache=/var/cache/opte-fast/vm
if ! compgen -G "$vm_cache/linux-image-*-cloud-amd64_*.deb" >/dev/null; then
    kernel=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
    [[ -n "$kernel" ]] || apt-get -o DPkg::Lock::Timeout=600 update -qq
    kernel=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
    echo "ci/install.sh: downloading $kernel for the VM test"
    mkdir -p "$vm_cache"
    (cd "$vm_cache" && apt-get download -qq "$kernel" 2>/dev/null)
fi

if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q "setuptools>=77" wheel "Cython>=3.0" "numpy>=1.24"
.venv/bin/pip install -q --no-build-isolation -e ".[test]"
echo "ci/install.sh: opte-fast installed in .venv ($(.venv/bin/opte-fast --version 2>/dev/null || echo built))"
