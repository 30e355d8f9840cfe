"""The flow hash a tenant cannot steer (csrc/flow_hash.h): keyed with a secret kept in --state-dir.

Crafted flows here are sequential: one guest, one destination, source ports 20000, 20001, ...
With the old hash (CRC32C seeded from the underlay address, linear in the key) every four
consecutive such flows took a permutation of four TEPs, so a guest that knew its address could
pick a TEP for each flow. The same statistics are computed for that hash from the real bucket
table, to show the checks would catch it.
"""
from __future__ import annotations

import ipaddress
import os
import stat
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import pytest

from opte_fast.controlplane import hashkey
from opte_fast.controlplane.dataplane import Dataplane, DataplaneError, DataplaneOptions
from tests.support.cli import OPTE_FAST, sled_toml
from tests.support.flowhash import TEST_HASH_KEY, flow_hash, flow_key, tep_bucket
from tests.support.frames import guest_udp4_headers
from tests.support.sled import GUEST_IP4, GUEST_VNI, UNDERLAY, default_state, ring_sled

TEPS = tuple(ipaddress.IPv6Address(f"fd00:99::{i + 1:x}") for i in range(4))
DST = ipaddress.IPv4Address("93.184.216.34")
FIRST_SPORT = 20000
N_FLOWS = 4096
OTHER_KEY = bytes(range(0xC0, 0x100))


def four_teps():
    return default_state(1, teps=TEPS)


def sequential_frames(n: int) -> list[bytes]:
    """n flows from ports FIRST_SPORT, FIRST_SPORT + 1, ... to DST:443, each frame's payload its flow's number."""
    return [guest_udp4_headers(DST, FIRST_SPORT + i, 443, payload_bytes=4) + struct.pack(">I", i) for i in range(n)]


def tep_per_flow(sled, n: int = N_FLOWS) -> list[int]:
    """Send the n sequential flows once; the index in TEPS of the TEP each one left for, in flow order."""
    frames = sequential_frames(n)
    for start in range(0, n, 2048):
        sled.send("guest0", frames[start:start + 2048])
    out: dict[int, int] = {}
    for frame in sled.drain("uplink0"):
        (flow,) = struct.unpack_from(">I", frame, 70 + 14 + 20 + 8)
        out[flow] = TEPS.index(ipaddress.IPv6Address(frame[38:54]))
    assert sorted(out) == list(range(n)), "every flow left once"
    return [out[i] for i in range(n)]


def chi_square(picks: list[int], n_members: int = 4) -> float:
    expected = len(picks) / n_members
    counts = Counter(picks)
    return sum((counts[m] - expected) ** 2 / expected for m in range(n_members))


def permutation_share(picks: list[int]) -> float:
    """The share of aligned windows of four consecutive flows that take four different TEPs.
    Random choices: 4!/4^4 = 0.094."""
    windows = [picks[i:i + 4] for i in range(0, len(picks) - 3, 4)]
    return sum(len(set(w)) == 4 for w in windows) / len(windows)


# chi-square with 3 degrees of freedom: 16.27 is the 0.001 quantile's bound
CHI2_BOUND = 16.27


def test_sequential_flows_spread_evenly_and_the_tep_hash_of_each_is_the_keyed_one(eal):
    with ring_sled(four_teps(), n_uplinks=1) as sled:
        picks = tep_per_flow(sled)
        hashes = {f["src_port"]: f["hash"] for f in sled.dp.flows(N_FLOWS)}
        table = sled.dp.bucket_table("tep", four_teps().v2b[0].prefix)
        member = {sled.dp.tep_id(four_teps().v2b[0].prefix, t): i for i, t in enumerate(TEPS)}
    assert all(hashes[FIRST_SPORT + i] == flow_hash(GUEST_VNI, 17, GUEST_IP4, DST, FIRST_SPORT + i, 443)
               for i in range(N_FLOWS))
    assert chi_square(picks) < CHI2_BOUND, Counter(picks)
    assert permutation_share(picks) < 0.2, "four consecutive flows must not take four TEPs by construction"

    # The old hash, through the same bucket table: the checks above catch it.
    seed = zlib.crc32(UNDERLAY.packed)
    old = [member[int(table[tep_bucket(crc32c(flow_key(GUEST_VNI, 17, GUEST_IP4, DST, FIRST_SPORT + i, 443), seed))])]
           for i in range(N_FLOWS)]
    assert permutation_share(old) == 1.0


def test_two_keys_spread_the_same_crafted_flows_differently(eal):
    with ring_sled(four_teps(), n_uplinks=1) as sled:
        first = tep_per_flow(sled)
    with ring_sled(four_teps(), n_uplinks=1, hash_key=OTHER_KEY) as sled:
        second = tep_per_flow(sled)
    assert chi_square(second) < CHI2_BOUND
    same = sum(a == b for a, b in zip(first, second)) / N_FLOWS
    assert 0.2 < same < 0.3, f"{same:.3f} of the flows took the same TEP under both keys (independent: 0.25)"


def test_the_key_is_made_once_kept_in_the_state_dir_and_keeps_paths_across_a_restart(eal, tmp_path):
    with ring_sled(four_teps(), n_uplinks=1, state_dir=str(tmp_path), hash_key=None) as sled:
        before = tep_per_flow(sled, 512)
        hashes_before = sorted(f["hash"] for f in sled.dp.flows(512))
    path = tmp_path / hashkey.FILE_NAME
    key = path.read_bytes()
    assert len(key) == 64 and key != TEST_HASH_KEY
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with ring_sled(four_teps(), n_uplinks=1, state_dir=str(tmp_path), hash_key=None) as sled:
        after = tep_per_flow(sled, 512)
        hashes_after = sorted(f["hash"] for f in sled.dp.flows(512))
    assert path.read_bytes() == key
    assert hashes_after == hashes_before
    assert after == before
    assert hashes_before == sorted(flow_hash(GUEST_VNI, 17, GUEST_IP4, DST, FIRST_SPORT + i, 443, key)
                                   for i in range(512))


def test_a_state_dir_with_no_key_in_its_key_file_is_refused_with_one_line(eal, tmp_path):
    (tmp_path / hashkey.FILE_NAME).write_bytes(b"short")
    with pytest.raises(DataplaneError) as e:
        Dataplane(DataplaneOptions(underlay_addr=UNDERLAY, flow_capacity=4096, n_mbufs=4095), state_dir=str(tmp_path))
    assert str(e.value) == (f"{tmp_path / hashkey.FILE_NAME}: not a flow hash key (5 bytes, expected 64); remove it "
                            "to start with a new key, which moves every flow to a new path once")


def test_run_refuses_a_key_file_that_is_no_key_with_one_line_and_starts_nothing(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / hashkey.FILE_NAME).write_bytes(b"\0" * 63)
    cfg = tmp_path / "c.toml"
    cfg.write_text(sled_toml("net_null0", {"uplink0": "net_null1,no-rx=1"}, static_routes=True, state_dir=str(state)))
    prefix = f"oft-hashkey-{os.getpid()}"
    p = subprocess.run([*OPTE_FAST, "run", "--config", str(cfg), "--file-prefix", prefix, "--duration-s", "1"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines()[-1] == (
        f"opte-fast: {state}/{hashkey.FILE_NAME}: not a flow hash key (63 bytes, expected 64); remove it to start "
        "with a new key, which moves every flow to a new path once")
    assert not Path(f"/var/run/dpdk/{prefix}").exists()


_CRC32C = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC32C.append(_c)


def crc32c(data: bytes, seed: int) -> int:
    """The flow hash before the key: rte_hash_crc (reflected CRC32C, initial value = seed)."""
    crc = seed
    for b in data:
        crc = _CRC32C[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc
