"""A restart keeps every flow on its path (README, "How a flow keeps its path").

Bucket tables depend on their history and member ids on the order keys
appeared, so a data plane that fills its tables afresh sends flows elsewhere
after a restart. With a state directory the tables are saved after every
commit that changed one and restored, by member key, when their set or group
first appears. Here: flows pinned, member churn (one down, another up, one
added, whose keys sort first so every id shifts), then a new data plane over
the saved state; and `opte-fast run` killed with SIGKILL and started again
with the same config.
"""
from __future__ import annotations

import ipaddress
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from scapy.all import IP, UDP, Ether, Raw, raw, wrpcap

from opte_fast.controlplane.bucketstore import FILE_NAME, BucketStore, SavedTable
from opte_fast.controlplane.state import V2B, V2P, Nexthop, Route, Tep
from tests.support.cli import OPTE_FAST, sled_toml
from tests.support.flowhash import tep_bucket
from tests.support.sled import (
    GATEWAY_MAC,
    GUEST_IP4,
    GUEST_MAC,
    SWITCH_MACS,
    default_state,
    gateway,
    ring_sled,
    uplink,
)

REPO = Path(__file__).resolve().parents[1]
ANY4 = ipaddress.ip_network("0.0.0.0/0")
TEP_NET = ipaddress.ip_network("fd00::/16")
A, B, C, D = (ipaddress.IPv6Address(f"fd00:99::{i}") for i in range(1, 5))
E = ipaddress.IPv6Address("fd00:90::1")                                  # sorts before A: ids shift
NH = [Nexthop(uplink(i), gateway(i), SWITCH_MACS[i]) for i in range(4)]
NH_ADDED = Nexthop(uplink(0), ipaddress.IPv6Address("fe80::10"), "02:aa:00:00:00:10")  # sorts second
N_FLOWS = 600


def sled_state(teps: dict, hops: dict):
    """V2B 0.0.0.0/0 over `teps` (addr -> up), all reached by fd00::/16 over `hops` (Nexthop -> up)."""
    return default_state(4).replace(
        v2b=(V2B(ANY4, tuple(Tep(a, up=up) for a, up in teps.items())),),
        routes=(Route(TEP_NET, tuple(Nexthop(n.uplink, n.gateway, n.mac, up) for n, up in hops.items())),))


# The churn: C and nexthop 2 go down, D and nexthop 3 (down at first) come up, E and a fifth nexthop join.
CHURN = [
    sled_state({A: True, B: True, C: True, D: False}, {NH[0]: True, NH[1]: True, NH[2]: True, NH[3]: False}),
    sled_state({A: True, B: True, C: False, D: False}, {NH[0]: True, NH[1]: True, NH[2]: False, NH[3]: False}),
    sled_state({A: True, B: True, C: False, D: True}, {NH[0]: True, NH[1]: True, NH[2]: False, NH[3]: True}),
    sled_state({A: True, B: True, C: False, D: True, E: True},
               {NH[0]: True, NH[1]: True, NH[2]: False, NH[3]: True, NH_ADDED: True}),
]
FINAL = CHURN[-1]


def guest_frames(n: int, seed: int = 5) -> list[bytes]:
    rng = random.Random(seed)
    return [raw(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IP(src=str(GUEST_IP4), dst=str(ipaddress.IPv4Address(
        rng.getrandbits(32) | 0x01000000))) / UDP(sport=10000 + i, dport=443) / Raw(b"path")) for i in range(n)]


def paths(sled, frames: list[bytes]) -> dict[int, tuple[str, bytes]]:
    """Guest UDP source port -> (uplink, outer header but the uplink's own MAC, which each data plane
    instance makes up for its ring ports): nexthop MAC, TEP, VNI, and the rest exactly."""
    sled.send("guest0", frames)
    out = {}
    for i in range(4):
        for f in sled.dp.collect(uplink(i), 4096, 256):
            out[int.from_bytes(f[70 + 34:70 + 36], "big")] = (uplink(i), f[:6] + f[12:70])
    assert len(out) == len(frames)
    return out


def churned_run(state_dir, frames) -> tuple[dict, dict]:
    """Flows pinned through the churn (each flow takes its bucket's member at once: rebalance 0 ms);
    the last paths, and the TEP ids of this first process."""
    with ring_sled(CHURN[0], n_uplinks=4, state_dir=state_dir, rebalance_idle_ms=0) as sled:
        for state in CHURN:
            sled.dp.commit(state)
            last = paths(sled, frames)
        return last, {a: sled.dp.tep_id(ANY4, a) for a in (A, B, D, E)}


def test_a_new_data_plane_over_the_saved_state_keeps_every_path(eal, tmp_path):
    frames = guest_frames(N_FLOWS)
    before, ids_before = churned_run(str(tmp_path), frames)
    assert {p[1][32:48] for p in before.values()} == {a.packed for a in (A, B, D, E)}

    with ring_sled(FINAL, n_uplinks=4, state_dir=str(tmp_path), rebalance_idle_ms=0) as sled:
        after = paths(sled, frames)
        ids_after = {a: sled.dp.tep_id(ANY4, a) for a in (A, B, D, E)}
    assert ids_after != ids_before, "the keys appeared in another order: other ids"
    assert after == before, f"{sum(after[k] != before[k] for k in before)} of {N_FLOWS} flows moved"

    # Without the saved tables the same state sends many of them elsewhere.
    with ring_sled(FINAL, n_uplinks=4, rebalance_idle_ms=0) as sled:
        fresh = paths(sled, frames)
    assert sum(fresh[k] != before[k] for k in before) > N_FLOWS // 10


def test_a_table_saved_waits_for_its_group_when_routes_come_later(eal, tmp_path):
    """As with route sync: the first commit after the restart has no routes. The nexthop group's saved
    table stays in the file through that commit and is used when the route arrives."""
    frames = guest_frames(N_FLOWS)
    before, _ = churned_run(str(tmp_path), frames)
    with ring_sled(FINAL.replace(routes=()), n_uplinks=4, state_dir=str(tmp_path), rebalance_idle_ms=0) as sled:
        assert ("nexthop", str(TEP_NET)) in BucketStore(str(tmp_path)).load(4096)
        sled.dp.commit(FINAL)
        after = paths(sled, frames)
    assert after == before, f"{sum(after[k] != before[k] for k in before)} of {N_FLOWS} flows moved"


def test_after_a_restart_only_the_flows_of_members_gone_move(eal, tmp_path):
    """B and nexthop 1 are not in the state after the restart: exactly their flows move."""
    frames = guest_frames(N_FLOWS)
    before, _ = churned_run(str(tmp_path), frames)
    smaller = sled_state({A: True, C: False, D: True, E: True},
                         {NH[0]: True, NH[2]: False, NH[3]: True, NH_ADDED: True})
    with ring_sled(smaller, n_uplinks=4, state_dir=str(tmp_path), rebalance_idle_ms=0) as sled:
        after = paths(sled, frames)
    gone = {k for k, (_, outer) in before.items() if outer[32:48] == B.packed or outer[:6].hex() == "02aa00000002"}
    assert gone and {k for k in before if after[k] != before[k]} == gone


def test_the_state_file_is_written_only_when_a_table_changed(eal, tmp_path):
    path = tmp_path / FILE_NAME
    with ring_sled(CHURN[0], n_uplinks=4, state_dir=str(tmp_path)) as sled:
        written = path.stat().st_ino
        sled.dp.commit(CHURN[0])                                 # nothing changed
        sled.dp.commit(CHURN[0].replace(v2p=(V2P(7, ipaddress.IPv4Address("10.0.0.9"), A, "02:00:00:00:00:09"),)))
        assert path.stat().st_ino == written, "no bucket table changed: nothing written"
        sled.dp.commit(CHURN[1])                                 # C and nexthop 2 down
        assert path.stat().st_ino != written
        saved = BucketStore(str(tmp_path)).load(4096)
        table = sled.dp.bucket_table("tep", ANY4)
        members = saved[("tep", str(ANY4))].members
        assert members == tuple(a.packed.hex() for a in (A, B, C, D))
        by_index = [sled.dp.tep_id(ANY4, ipaddress.IPv6Address(bytes.fromhex(m))) for m in members]
        assert [by_index[i] for i in saved[("tep", str(ANY4))].index] == list(table)
        assert saved[("nexthop", str(TEP_NET))].members == tuple(f"{n.uplink} {n.gateway.packed.hex()}" for n in NH)
    assert [p.name for p in tmp_path.iterdir()] == [FILE_NAME]


def test_a_damaged_state_file_is_refused_by_name(tmp_path):
    store = BucketStore(str(tmp_path / "s"))
    assert store.load(4096) == {}
    (tmp_path / "s" / FILE_NAME).write_text('{"format": 1, "tables": [{"kind": "tep"}]}')
    with pytest.raises(ValueError, match=f"{tmp_path}/s/{FILE_NAME}: cannot read saved bucket tables"):
        store.load(4096)
    store.save({("tep", "0.0.0.0/0"): SavedTable(("fd00:99::1",), np.array([0, 255, 0, 0], dtype=np.uint8))})
    back = store.load(4)
    assert back.keys() == {("tep", "0.0.0.0/0")} and list(back["tep", "0.0.0.0/0"].index) == [0, 255, 0, 0]
    assert store.load(8) == {}, "a table of another size is not restored"
    assert os.stat(tmp_path / "s").st_mode & 0o777 == 0o700


def test_a_data_plane_over_a_damaged_state_file_says_so_and_starts_afresh(eal, tmp_path, capsys):
    (tmp_path / FILE_NAME).write_text("{not json")
    with ring_sled(CHURN[0], n_uplinks=4, state_dir=str(tmp_path)):
        pass
    assert capsys.readouterr().err.startswith(f"opte-fast: {tmp_path}/{FILE_NAME}: cannot read saved bucket tables: ")
    assert BucketStore(str(tmp_path)).load(4096).keys() == {("tep", str(ANY4)), ("nexthop", str(TEP_NET))}


# --- `opte-fast run`, killed -----------------------------------------------------------------------

RUN_TEPS = ["fd00:99::1", "fd00:99::2", "fd00:99::3", "fd00:99::4", "fd00:90::1"]
N_RUN_FLOWS = 64


class Run:
    def __init__(self, tmp_path: Path, cfg: Path, state_dir: Path):
        self.tmp_path, self.cfg, self.state_dir = tmp_path, cfg, state_dir
        self.socket = str(tmp_path / "ctl.sock")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        # No --file-prefix: EAL's runtime dir is opte-fast-<pid>, removed by cleanup().
        self.proc = subprocess.Popen(
            [*OPTE_FAST, "run", "--config", str(self.cfg), "--state-dir", str(self.state_dir),
             "--control-socket", self.socket, "--rebalance-idle-ms", "0", "--memory-mb", "1024",
             "--duration-s", "120"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while not self.serving():
            assert self.proc.poll() is None, f"opte-fast run exited: {self.proc.communicate()[1].decode()}"
            assert time.monotonic() < deadline, "no control socket after 30 s"
            time.sleep(0.05)

    def serving(self) -> bool:
        return os.path.exists(self.socket) and subprocess.run(
            [*OPTE_FAST, "ctl", "--socket", self.socket, "stats"], capture_output=True).returncode == 0

    def ctl(self, *args: str):
        p = subprocess.run([*OPTE_FAST, "ctl", "--socket", self.socket, "--json", *args], cwd=REPO,
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, f"ctl {' '.join(args)}: {p.stderr}"
        return json.loads(p.stdout) if p.stdout.strip() else None

    def flow_paths(self) -> dict[int, tuple]:
        """Guest source port -> (TEP, nexthop uplink, gateway), once every flow is seen twice alike."""
        deadline = time.monotonic() + 10
        last = None
        while True:
            got = {f["src_port"]: (f["tep"], f["nexthop"]["uplink"], f["nexthop"]["gateway"])
                   for f in self.ctl("flows", "--limit", "1000") if f["nexthop"]}
            if len(got) == N_RUN_FLOWS and got == last:
                return got
            assert time.monotonic() < deadline, f"flows not settled: {len(got)} of {N_RUN_FLOWS}"
            last = got
            time.sleep(0.3)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.cleanup()

    def cleanup(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.proc.stderr.close()
            subprocess.run(["rm", "-rf", f"/var/run/dpdk/opte-fast-{self.proc.pid}"], check=False)


def test_opte_fast_run_killed_and_restarted_keeps_every_path(tmp_path):
    """The config holds five TEPs; before the kill they churned through ctl (E removed, B down, C down,
    B up, C up, E back), so the tables are not the initial fill of the five. After SIGKILL and a start
    with the same config, every flow takes the same TEP and nexthop as before."""
    pcap = tmp_path / "guest.pcap"
    wrpcap(str(pcap), [Ether(src="02:00:00:00:00:01", dst="a8:40:25:ff:00:01")
                       / IP(src="10.0.0.2", dst=f"198.51.{i}.{7 * i % 250 + 1}") / UDP(sport=20000 + i, dport=53)
                       / Raw(b"x" * 16) for i in range(N_RUN_FLOWS)])
    toml = sled_toml(f"net_pcap0,rx_pcap={pcap},infinite_rx=1",
                     {"uplink0": "net_null0,no-rx=1", "uplink1": "net_null1,no-rx=1"}, static_routes=True)
    toml = toml.replace('teps = ["fd00:99::1"]', f"teps = {json.dumps(RUN_TEPS)}").replace(
        'prefix = "fd00:99::/64"', 'prefix = "fd00::/16"')
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    state_dir = tmp_path / "state"
    first = Run(tmp_path, cfg, state_dir)
    second = Run(tmp_path, cfg, state_dir)
    try:
        first.start()
        first.ctl("v2b", "set", "0.0.0.0/0", *RUN_TEPS[:4])
        for step in (("down", RUN_TEPS[1]), ("down", RUN_TEPS[2]), ("up", RUN_TEPS[1]), ("up", RUN_TEPS[2])):
            first.ctl("tep", *step)
        first.ctl("v2b", "set", "0.0.0.0/0", *RUN_TEPS)
        before = first.flow_paths()
        # The churned table is not what a fresh start fills: bucket i to the i % 5-th TEP in id order.
        fresh_order = sorted(RUN_TEPS, key=lambda a: repr((ANY4, ipaddress.IPv6Address(a))))
        hashes = {f["src_port"]: f["hash"] for f in first.ctl("flows", "--limit", "1000")}
        assert any(before[p][0] != fresh_order[tep_bucket(h) % 5] for p, h in hashes.items())
        first.kill()

        second.start()
        after = second.flow_paths()
        assert after == before, f"{sum(after[p] != before[p] for p in before)} of {N_RUN_FLOWS} flows moved"
        assert second.ctl("stats")["counters"]["flows_migrated"] == 0
    finally:
        first.cleanup()
        second.cleanup()


def test_an_unusable_state_dir_stops_the_run_with_one_line(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(sled_toml("net_null0", {"uplink0": "net_null1,no-rx=1"}, static_routes=True))
    (tmp_path / "file").write_text("")
    p = subprocess.run([*OPTE_FAST, "run", "--config", str(cfg), "--state-dir", str(tmp_path / "file" / "state"),
                        "--file-prefix", f"oft-statedir-{os.getpid()}", "--duration-s", "1"],
                       capture_output=True, text=True, timeout=60, cwd=REPO)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines()[-1] == (f"opte-fast: cannot use the state directory {tmp_path}/file/state: "
                                                 "Not a directory")
    assert not Path(f"/var/run/dpdk/oft-statedir-{os.getpid()}").exists()
