"""Soak: long traffic over many flows while routes flap, a TEP goes down and up, and ctl reads.

Runs the real data plane in this process (its own EAL, --no-huge) with a ring guest port and two
ring uplinks, driven as `opte-fast run` drives it: one Controller commits every change, and a
ControlServer answers `ctl` requests on a unix socket. The sample sled has three TEPs behind one
anycast route whose nexthops are A (uplink0) and B (uplink1). For the whole run:

  * a feeder injects frames of `--flows` UDP flows round robin at `--rate-pps`, each frame carrying
    a sequence number; what the guest ring or the mbuf pool refuses it offers again 1 ms later;
  * every `--route-flap-ms` the route flaps: nexthop B is withdrawn from it (and a second, unused
    route appears, so the route table is rebuilt), then restored at the next flap;
  * every `--tep-flap-ms` TEP 2 is marked down, and up again half way to the next;
  * a ctl client asks for `stats` every `--ctl-read-ms` (and for 100 flows every tenth time);
  * a collector drains both uplinks and checks every frame against the commit timeline: no frame
    injected after a removal was committed may leave through the removed member (nexthop B, TEP 2)
    unless it was received after its return began. This is read from the frames themselves:
    their sequence number, outer destination and uplink.

At the end it prints packets in, out and dropped by reason, RSS at start (all flows created) and
end, the largest commit latency, the largest ctl latency, and the number of frames that went to a
member after its removal was committed (must be 0). Not a test: a benchmark to run before a
release; tests/test_soak.py runs it for a few seconds.

Usage: .venv/bin/python bench/soak.py [--duration-s 1800] [--flows 65536] [--json]
"""
from __future__ import annotations

import argparse
import bisect
import ipaddress
import json
import os
import shutil
import struct
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from opte_fast.api.client import ControlClient  # noqa: E402
from opte_fast.api.server import ControlAPI, ControlServer  # noqa: E402
from opte_fast.controlplane.controller import Controller  # noqa: E402
from opte_fast.controlplane.dataplane import (  # noqa: E402
    Dataplane,
    DataplaneOptions,
    drops_of_injected_frames,
    eal_args,
    eal_cleanup,
    eal_init,
)
from opte_fast.controlplane.routesync import NoRoutes  # noqa: E402
from opte_fast.controlplane.state import Nexthop, Route  # noqa: E402
from opte_fast.tools.sample import (  # noqa: E402
    GATEWAY_MAC,
    GUEST_IP4,
    GUEST_MAC,
    TEP_PREFIX,
    UNDERLAY,
    anycast_state,
    switch_gateway,
    switch_mac,
)

TEPS = tuple(ipaddress.IPv6Address(f"fd00:99::{i}") for i in (1, 2, 3))
FLAPPING_TEP = TEPS[1]
NEXTHOP_A = Nexthop("uplink0", switch_gateway(0), switch_mac(0))
NEXTHOP_B = Nexthop("uplink1", switch_gateway(1), switch_mac(1))
ROUTES = (Route(TEP_PREFIX, (NEXTHOP_A, NEXTHOP_B)),)
# B withdrawn, and a route no traffic uses added: the route table itself is rebuilt on every flap
ROUTES_WITHOUT_B = (Route(TEP_PREFIX, (NEXTHOP_A,)), Route(ipaddress.IPv6Network("fd00:98::/64"), (NEXTHOP_A,)))
PAYLOAD_OFF = 70 + 14 + 20 + 8  # outer headers, inner Ethernet, IPv4, UDP
OUTER_DST = slice(38, 54)
BATCH = 256


def frame_prefixes(n_flows: int) -> list[bytes]:
    """Per flow, its frame up to the sequence number: UDP to 198.18.0.0/16 + flow."""
    out = []
    mac = bytes.fromhex
    for i in range(n_flows):
        dst = ipaddress.IPv4Address(int(ipaddress.IPv4Address("198.18.0.0")) + i % 65536).packed
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 8 + 8, 0, 0, 64, 17, 0, GUEST_IP4.packed, dst)
        udp = struct.pack("!HHHH", 1024 + i // 65536, 53, 16, 0)
        out.append(mac(GATEWAY_MAC.replace(":", "")) + mac(GUEST_MAC.replace(":", "")) + b"\x08\x00" + ip + udp)
    return out


class Feeder(threading.Thread):
    """Injects sequenced frames round robin over the flows at `rate_pps`. `claimed` is raised before
    each inject: a frame numbered at or above a value read later was injected after that read."""

    def __init__(self, dp: Dataplane, n_flows: int, rate_pps: int):
        super().__init__(daemon=True)
        self.dp, self.prefixes, self.rate_pps = dp, frame_prefixes(n_flows), rate_pps
        self.seq = self.claimed = self.refused = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        n_flows, t0 = len(self.prefixes), time.monotonic()
        while not self.stopping.is_set():
            ahead = self.seq / self.rate_pps - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
            frames = [self.prefixes[s % n_flows] + s.to_bytes(8, "big") for s in range(self.seq, self.seq + BATCH)]
            self.claimed = self.seq + BATCH
            n = self.dp.inject("guest0", frames)
            self.seq += n
            if n < BATCH:  # the ring or the pool is full: offer the rest again once the worker caught up
                self.refused += BATCH - n
                time.sleep(0.001)


class Windows:
    """When a member was removed: [first frame number that must not reach it, first that may again)."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int | None] = []

    def removed(self, from_seq: int) -> None:
        self.starts.append(from_seq)
        self.ends.append(None)

    def restored(self, from_seq: int) -> None:
        self.ends[-1] = max(from_seq, self.starts[-1])

    def forbids(self, seq: int) -> bool:
        i = bisect.bisect_right(self.starts, seq) - 1
        return i >= 0 and (self.ends[i] is None or seq < self.ends[i])


class Collector(threading.Thread):
    """Drains the uplinks and counts frames that reached a member inside one of its windows."""

    def __init__(self, dp: Dataplane):
        super().__init__(daemon=True)
        self.dp = dp
        self.nexthop_b, self.tep2 = Windows(), Windows()
        self.out = {"uplink0": 0, "uplink1": 0}
        self.through = {"nexthop_b": 0, "tep2": 0}  # frames checked: each member's share of the traffic
        self.misrouted = {"nexthop_b": 0, "tep2": 0}
        self.first_misrouted: dict[str, int] = {}
        self.stopping = threading.Event()

    def drain(self) -> int:
        got = 0
        tep2 = FLAPPING_TEP.packed
        for port in ("uplink0", "uplink1"):
            frames = self.dp.collect(port, max_frames=4096, frame_room=256)
            self.out[port] += len(frames)
            got += len(frames)
            for f in frames:
                seq = int.from_bytes(f[PAYLOAD_OFF:PAYLOAD_OFF + 8], "big")
                if port == "uplink1":
                    self.check("nexthop_b", self.nexthop_b, seq)
                if f[OUTER_DST] == tep2:
                    self.check("tep2", self.tep2, seq)
        return got

    def check(self, member: str, windows: Windows, seq: int) -> None:
        self.through[member] += 1
        if windows.forbids(seq):
            self.misrouted[member] += 1
            self.first_misrouted.setdefault(member, seq)

    def run(self) -> None:
        while not self.stopping.is_set():
            if self.drain() == 0:
                time.sleep(0.001)


class CtlReader(threading.Thread):
    def __init__(self, path: str, period_s: float):
        super().__init__(daemon=True)
        self.path, self.period_s = path, period_s
        self.reads = self.errors = 0
        self.max_s = 0.0
        self.stopping = threading.Event()

    def run(self) -> None:
        with ControlClient(self.path, timeout_s=5.0) as client:
            while not self.stopping.wait(self.period_s):
                t0 = time.perf_counter()
                try:
                    if self.reads % 10 == 9:
                        client.call("flows", limit=100, match={})
                    else:
                        client.call("stats")
                except Exception:  # noqa: BLE001 - counted and reported, the soak goes on
                    self.errors += 1
                    client.close()
                self.max_s = max(self.max_s, time.perf_counter() - t0)
                self.reads += 1


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def soak(args: argparse.Namespace, workdir: str) -> dict:
    # Flows idle half a second take their bucket's member again: every flow comes round in about a
    # second, so nexthop B and TEP 2 win flows back after each return and lose them at each removal.
    dp = Dataplane(DataplaneOptions(underlay_addr=UNDERLAY, flow_capacity=2 * args.flows, n_mbufs=65535,
                                    mbuf_data_room=512, mbuf_cache=256, rebalance_idle_ms=500))
    threads: list = []
    server = None
    try:
        dp.add_ring_port("guest0", "guest", ring_size=65536)
        for uplink in ("uplink0", "uplink1"):
            dp.add_ring_port(uplink, "uplink", ring_size=65536)
        dp.start([1])
        controller = Controller(dp, anycast_state(2, teps=TEPS), ["uplink0", "uplink1"])
        server = ControlServer(os.path.join(workdir, "ctl.sock"), ControlAPI(controller, dp, NoRoutes()))
        server.start()
        collector, feeder = Collector(dp), Feeder(dp, args.flows, args.rate_pps)
        ctl = CtlReader(os.path.join(workdir, "ctl.sock"), args.ctl_read_ms / 1000)
        threads = [collector, feeder, ctl]
        for t in threads:
            t.start()
        # warm up: every flow created once before RSS and counters are taken
        while dp.counters()["flows_created"] < args.flows:
            time.sleep(0.05)
        rss_start, before, out_before = rss_mib(), dp.counters(), dict(collector.out)
        refused_before = feeder.refused
        commit_s: list[float] = []
        b_withdrawn = tep_down = False
        t0 = time.monotonic()
        next_route, next_tep = t0, t0
        flaps = {"route": 0, "tep": 0}
        while (now := time.monotonic()) < t0 + args.duration_s:
            if now >= next_route:
                b_withdrawn = not b_withdrawn
                routes = ROUTES_WITHOUT_B if b_withdrawn else ROUTES
                commit_s.append(flip(dp, collector.nexthop_b, feeder, b_withdrawn,
                                     lambda routes=routes: controller.set_routes(routes)))
                flaps["route"] += 1
                next_route += args.route_flap_ms / 1000
            if now >= next_tep:
                tep_down = not tep_down
                commit_s.append(flip(dp, collector.tep2, feeder, tep_down,
                                     lambda up=not tep_down: controller.tep_set_state(FLAPPING_TEP, up)))
                flaps["tep"] += 1
                next_tep += args.tep_flap_ms / 2000
            time.sleep(max(0.0, min(next_route, next_tep) - time.monotonic()))
        elapsed = time.monotonic() - t0
        feeder.stopping.set()
        feeder.join()
        # everything injected has been through the worker and drained
        deadline = time.monotonic() + 10
        while dp.counters()["rx_guest_packets"] < feeder.seq and time.monotonic() < deadline:
            time.sleep(0.01)
        dp.quiesce()
        after = dp.counters()
        while sum(collector.out.values()) < after["tx_uplink_packets"] and time.monotonic() < deadline:
            time.sleep(0.01)
        collector.stopping.set()
        ctl.stopping.set()
        for t in (collector, ctl):
            t.join()
        delta = {k: after[k] - before[k] for k in after}
        lost = set(drops_of_injected_frames())
        return {
            "duration_s": round(elapsed, 1), "flows": args.flows, "flow_count_end": dp.flow_count(),
            "packets_in": delta["rx_guest_packets"], "packets_out": delta["tx_uplink_packets"],
            "out_by_uplink": {k: v - out_before[k] for k, v in collector.out.items()},
            # offered again by the feeder, so not lost: refused for want of an mbuf, or of room in the ring
            "refused_no_mbuf": delta["rx_no_mbuf"],
            "refused_ring_full": feeder.refused - refused_before - delta["rx_no_mbuf"],
            "dropped": {k: v for k, v in delta.items() if k in lost and v},
            "flows_migrated": delta["flows_migrated"], "flows_rerouted": delta["flows_rerouted"],
            "flows_rebalanced": delta["flows_rebalanced"],
            "route_flaps": flaps["route"], "tep_flips": flaps["tep"], "commits": len(commit_s),
            "commit_ms_max": round(max(commit_s) * 1000, 2),
            "commit_ms_p99": round(sorted(commit_s)[int(len(commit_s) * 0.99)] * 1000, 2),
            "ctl_reads": ctl.reads, "ctl_errors": ctl.errors, "ctl_ms_max": round(ctl.max_s * 1000, 2),
            "rss_mib_start": round(rss_start, 1), "rss_mib_end": round(rss_mib(), 1),
            "through": collector.through, "misrouted": collector.misrouted,
            "first_misrouted_seq": collector.first_misrouted,
        }
    finally:
        for t in threads:
            t.stopping.set()
        for t in threads:
            t.join(timeout=5)
        if server is not None:
            server.stop()
        dp.close()


def flip(dp: Dataplane, windows: Windows, feeder: Feeder, removing: bool, commit) -> float:
    """Commit a member's removal or return; the commit's latency. A removal opens the member's
    window at the first frame injected after the commit returned; a return closes it at the first
    frame the worker had not received before the commit began (those before it were handled with
    the member still removed)."""
    if not removing:
        windows.restored(dp.counters()["rx_guest_packets"])
    t0 = time.perf_counter()
    commit()
    took = time.perf_counter() - t0
    if removing:
        windows.removed(feeder.claimed)
    return took


def report(r: dict, args: argparse.Namespace) -> None:
    print(f"soak: {r['duration_s']} s, {r['flows']} flows at {args.rate_pps} pps offered; route flap every "
          f"{args.route_flap_ms} ms, TEP down/up every {args.tep_flap_ms} ms, ctl read every {args.ctl_read_ms} ms")
    print(f"packets in {r['packets_in']:,}, out {r['packets_out']:,} (collected: uplink0 "
          f"{r['out_by_uplink']['uplink0']:,}, uplink1 {r['out_by_uplink']['uplink1']:,})")
    print(f"refused at injection and offered again: no mbuf {r['refused_no_mbuf']:,}, guest ring full "
          f"{r['refused_ring_full']:,}")
    dropped = ", ".join(f"{k} {v:,}" for k, v in sorted(r["dropped"].items())) or "none"
    print(f"dropped by reason (rx_no_mbuf aside, above): {dropped}")
    print(f"flows migrated {r['flows_migrated']:,}, rerouted {r['flows_rerouted']:,}, rebalanced "
          f"{r['flows_rebalanced']:,}; flows at the end "
          f"{r['flow_count_end']:,}")
    print(f"route flaps {r['route_flaps']}, TEP flips {r['tep_flips']}; commits {r['commits']}, largest "
          f"{r['commit_ms_max']} ms, p99 {r['commit_ms_p99']} ms")
    print(f"ctl reads {r['ctl_reads']:,} ({r['ctl_errors']} failed), largest {r['ctl_ms_max']} ms")
    print(f"RSS {r['rss_mib_start']} MiB at start (all flows created), {r['rss_mib_end']} MiB at the end")
    m, t = r["misrouted"], r["through"]
    print(f"frames to a member after its removal was committed: nexthop B {m['nexthop_b']} of {t['nexthop_b']:,} "
          f"sent through it, TEP 2 {m['tep2']} of {t['tep2']:,} sent to it")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration-s", type=float, default=1800)
    ap.add_argument("--flows", type=int, default=65536)
    ap.add_argument("--rate-pps", type=int, default=50000)
    ap.add_argument("--route-flap-ms", type=int, default=100)
    ap.add_argument("--tep-flap-ms", type=int, default=1000)
    ap.add_argument("--ctl-read-ms", type=int, default=10)
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = ap.parse_args()
    prefix = f"oft-soak-{os.getpid()}"
    workdir = tempfile.mkdtemp(prefix="oft-soak-")
    eal_init(eal_args([1], file_prefix=prefix, memory_mb=512))
    try:
        result = soak(args, workdir)
    finally:
        eal_cleanup()
        shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(result))
    else:
        report(result, args)
    sys.exit(1 if any(result["misrouted"].values()) else 0)


if __name__ == "__main__":
    main()
