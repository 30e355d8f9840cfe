"""bench/vm_tcp.py, tiny: one round of 1 MiB each way through opte-fast and through Open vSwitch
with the same VM. It prints a rate for each backend, direction and their ratio, every byte arrives
(the VM's sha256 of its download, the host's of its upload), the VM's virtio-net took TSO from
opte-fast's port (and opte-fast cut its TSO frames) but none from OVS's, which cannot carry TSO
through a tunnel."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from opte_fast.tools import bench_ovs
from tests.support.tools import needs_root, needs_tools
from tests.support.vm import kernel_package

REPO = Path(__file__).resolve().parent.parent


@needs_root("namespaces and Open vSwitch")
@needs_tools("qemu-system-x86_64", "dpkg-deb", "taskset", "ethtool", "ovs-vsctl", "ovsdb-server",
             str(bench_ovs.VSWITCHD_DPDK))
@pytest.mark.skipif(kernel_package() is None, reason="no cloud kernel package: run bash ci/install.sh")
def test_one_tiny_round_prints_both_backends_rates_and_the_bytes_arrive():
    p = subprocess.run([sys.executable, "bench/vm_tcp.py", "--size-mb", "1", "--rounds", "1", "--timeout-s", "120",
                        "--json"], cwd=REPO, capture_output=True, text=True, timeout=400)
    assert p.returncode == 0, p.stderr[-4000:]
    r = json.loads(p.stdout)
    assert r["size_bytes"] == 1 << 20 and r["rounds"] == 1
    assert set(r["backends"]) == {"opte-fast", "ovs"}
    for name, b in r["backends"].items():
        assert b["download_sha256"] == [r["sha256"]] and b["upload_sha256"] == [r["sha256"]], name
        for direction in ("download_mbit_s", "upload_mbit_s"):
            assert len(b[f"rounds_{direction}"]) == 1 and b[f"rounds_{direction}"][0] > 0, (name, b)
            assert b[direction]["min"] == b[direction]["median"] == b[direction]["max"] == b[f"rounds_{direction}"][0]
    ours, theirs = r["backends"]["opte-fast"], r["backends"]["ovs"]
    for direction in ("download", "upload"):
        want = ours[f"{direction}_mbit_s"]["median"] / theirs[f"{direction}_mbit_s"]["median"]
        assert r["ratio"][direction] == {"median": pytest.approx(want), "min": pytest.approx(want),
                                         "max": pytest.approx(want)}
    assert ours["guest_host_tso4"] and not theirs["guest_host_tso4"]
    assert ours["counters"]["tso_frames"] > 0 and ours["counters"]["tso_segments"] > ours["counters"]["tso_frames"]
    assert theirs["counters"]["packets_received"] > 0
    assert "TCG" in r["machine"]
