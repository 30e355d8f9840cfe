"""How many flows move when a nexthop leaves or returns: resilient buckets vs hash % N.

Runs the real data plane on in-process ring ports (its own EAL, --no-huge): one anycast TEP
behind N nexthops, one per uplink; 20,000 guest flows, one packet each per round; the path of
every flow is read from the captured uplink frames (the flow id travels in the UDP payload).

  * removal: nexthop N/2 is withdrawn from the route; "moved" is the fraction of all flows whose
    uplink changed (ideal: its own share, 1/N, and nothing else);
  * return: the route gets it back; "active moved" is the fraction of the same (active) flows that
    changed uplink (ideal 0 under the default 10 s rebalance idle time), "new → it" the fraction
    of 20,000 new flows that go to the returned member (ideal 1/N);
  * hash % N: what choosing member (hash mod live count) over a sorted member list, as OPTE
    does today, would move for the same flow hashes, on removal and on return.

Usage: .venv/bin/python bench/disruption.py [--flows 20000] [--sizes 2,4,8,16]
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import random
import shutil
import struct
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from opte_fast.controlplane.dataplane import Dataplane, DataplaneOptions, eal_args, eal_cleanup, eal_init  # noqa: E402
from opte_fast.controlplane.state import V2B, DesiredState, GuestPort, Nexthop, Route, Tep, Underlay  # noqa: E402

UNDERLAY = ipaddress.IPv6Address("fd00:0:f7:101::1")
TEP = ipaddress.IPv6Address("fd00:99::1")
GUEST_MAC, GATEWAY_MAC, GUEST_IP4 = "02:00:00:00:00:01", "a8:40:25:ff:00:01", ipaddress.IPv4Address("10.0.0.2")
PAYLOAD_OFF = 70 + 14 + 20 + 8
CHUNK = 2000


def state(n: int, without: int | None = None) -> DesiredState:
    nexthops = tuple(Nexthop(f"uplink{i}", ipaddress.IPv6Address(f"fe80::{i + 1}"), f"02:aa:00:00:00:{i + 1:02x}")
                     for i in range(n) if i != without)
    return DesiredState(
        underlay=Underlay(UNDERLAY),
        guests=(GuestPort("guest0", 7, GUEST_MAC, GATEWAY_MAC, GUEST_IP4),),
        v2b=(V2B(ipaddress.ip_network("0.0.0.0/0"), (Tep(TEP),)),),
        routes=(Route(ipaddress.ip_network("fd00:99::/64"), nexthops),))


def make_flows(n: int, rng: random.Random, taken: set) -> list[bytes]:
    """Random IPv4/UDP flows from the guest: the 42 header bytes before the (flow id, seq) payload."""
    eth = bytes.fromhex(GATEWAY_MAC.replace(":", "") + GUEST_MAC.replace(":", "")) + b"\x08\x00"
    out = []
    while len(out) < n:
        dst = bytes([rng.choice((23, 34, 52, 93, 104, 142, 151, 185, 203))]) + rng.randbytes(3)
        ip = bytearray(struct.pack(">BBHHHBBH4s4s", 0x45, 0, 36, 0, 0, 64, 17, 0, GUEST_IP4.packed, dst))
        s = sum(struct.unpack(">10H", ip))
        s = (s & 0xFFFF) + (s >> 16)
        ip[10:12] = struct.pack(">H", ~((s & 0xFFFF) + (s >> 16)) & 0xFFFF)
        headers = eth + bytes(ip) + struct.pack(">HHHH", rng.randrange(1024, 65536), rng.randrange(1, 65536), 16, 0)
        if headers not in taken:
            taken.add(headers)
            out.append(headers)
    return out


class Bench:
    def __init__(self, n: int):
        self.n = n
        self.dp = Dataplane(DataplaneOptions(underlay_addr=UNDERLAY, flow_capacity=1 << 17, n_mbufs=16383))
        self.dp.add_ring_port("guest0", "guest")
        for i in range(n):
            self.dp.add_ring_port(f"uplink{i}", "uplink")
        self.dp.commit(state(n))
        self.dp.start([1])

    def rx_guest(self) -> int:
        return self.dp.counters()["rx_guest_packets"]

    def round(self, flows: list[bytes], first_id: int) -> dict[int, int]:
        """One packet per flow; flow id (first_id + index) -> uplink index."""
        core = self.dp._core
        seen: dict[int, int] = {}
        for start in range(0, len(flows), CHUNK):
            frames = [h + struct.pack(">II", first_id + start + i, 0) for i, h in enumerate(flows[start:start + CHUNK])]
            target = self.rx_guest() + len(frames)
            assert self.dp.inject("guest0", frames) == len(frames)
            deadline = time.monotonic() + 10
            while self.rx_guest() < target:
                assert time.monotonic() < deadline, "the data plane stopped taking frames"
                time.sleep(0.001)
            self.dp.quiesce()
            for u in range(self.n):
                index = self.dp.port_index(f"uplink{u}")
                while True:
                    got = core.collect(index, 4096, 256)  # the default buffer (64 MiB, zeroed) is slow
                    for frame in got:
                        seen[struct.unpack_from(">I", frame, PAYLOAD_OFF)[0]] = u
                    if len(got) < 4096:
                        break
        assert len(seen) == len(flows), f"{len(flows) - len(seen)} flows lost"
        return seen

    def hashes(self) -> dict[tuple, int]:
        return {(f["dst"], f["src_port"], f["dst_port"]): f["hash"] for f in self.dp.flows(1 << 20)}

    def close(self) -> None:
        self.dp.close()


def flow_key(headers: bytes) -> tuple:
    return str(ipaddress.IPv4Address(headers[30:34])), *struct.unpack(">HH", headers[34:38])


def modulo_moved(hashes: list[int], members: list[int], removed: int) -> float:
    """Fraction of flows whose member changes when `removed` leaves a hash % N choice (and, by
    symmetry, when it comes back)."""
    rest = [m for m in members if m != removed]
    moved = 0
    for h in hashes:
        h = (h << 16 | h >> 16) & 0xFFFFFFFF  # the same hash bits the data plane uses for nexthops
        moved += members[h % len(members)] != rest[h % len(rest)]
    return moved / len(hashes)


def measure(n: int, n_flows: int, rng: random.Random) -> dict:
    taken: set = set()
    flows = make_flows(n_flows, rng, taken)
    b = Bench(n)
    try:
        lost = n // 2
        before = b.round(flows, 0)
        base = b.dp.counters()
        b.dp.commit(state(n, without=lost))
        after = b.round(flows, 0)
        moved = sum(after[f] != before[f] for f in before)
        outside = sum(after[f] != before[f] for f in before if before[f] != lost)
        c = b.dp.counters()
        migrated = c["flows_migrated"] - base["flows_migrated"]
        survivors = Counter(after.values())
        b.dp.commit(state(n))
        back = b.round(flows, 0)
        active_moved = sum(back[f] != after[f] for f in after)
        fresh = make_flows(n_flows, rng, taken)
        to_returned = sum(u == lost for u in b.round(fresh, n_flows).values())
        hashes = b.hashes()
        flow_hashes = [hashes[flow_key(h)] for h in flows]
    finally:
        b.close()
    return {
        "n": n, "moved": moved / n_flows, "outside": outside, "migrated": migrated,
        "spread": (min(survivors.values()), max(survivors.values())),
        "active_moved": active_moved / n_flows, "to_returned": to_returned / n_flows,
        "modulo": modulo_moved(flow_hashes, list(range(n)), lost),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flows", type=int, default=20_000)
    ap.add_argument("--sizes", default="2,4,8,16", help="nexthop counts, comma separated (2..16)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if any(not 2 <= s <= 16 for s in sizes) or args.flows < 1:
        ap.error("sizes must be 2..16 and flows positive")

    prefix = f"oft-disruption-{os.getpid()}"
    eal_init(eal_args([1], file_prefix=prefix, memory_mb=1024))
    rng = random.Random(20240601)
    rows = []
    try:
        started = time.monotonic()
        for n in sizes:
            rows.append(measure(n, args.flows, rng))
        elapsed = time.monotonic() - started
    finally:
        eal_cleanup()
        shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)

    print(f"Disruption with {args.flows:,} flows, one anycast TEP behind N nexthops, nexthop N/2 withdrawn "
          f"then restored (real data plane, ring ports, {elapsed:.1f} s).\n")
    print("| N | ideal 1/N | moved on removal | of them not on it | flows_migrated | survivors' flows min–max "
          "| hash % N moves (on removal, again on return) | active moved on return "
          "| new flows → returned (ideal 1/N) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['n']} | {1 / r['n']:.2%} | {r['moved']:.2%} | {r['outside']} | {r['migrated']:,} "
              f"| {r['spread'][0]:,}–{r['spread'][1]:,} | {r['modulo']:.2%} | {r['active_moved']:.2%} "
              f"| {r['to_returned']:.2%} |")

if __name__ == "__main__":
    main()
