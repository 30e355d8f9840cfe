"""From a switch's BFD going silent to the last packet the data plane sends toward that switch.

Runs the real data plane in this process (its own EAL, --no-huge): a ring guest port and two net_tap
uplinks, each moved into a switch namespace where FRR's bfdd (SCHED_FIFO) holds a single-hop session
with the sled's link-local address, and `Bfd` in front of the data plane as `opte-fast run --bfd on`
has. A thread feeds the guest without pause with frames of 64 flows over both switches, each frame
carrying a sequence number whose injection time is kept. Each round SIGKILLs switch 0's bfdd (a crash:
it sends nothing more), waits until its nexthop is committed down, then starts bfdd again and waits for
the session and the nexthop to be back. Per round, from the kill:

  * detected: the BFD thread's session going Down (detection time: multiplier x interval, plus
    up to one interval since the last packet, plus the BFD thread's wake-up);
  * committed: the commit with the nexthop down returning, after which no worker can send to it;
  * last packet: the injection of the last frame that still reached switch 0's tap (sequence
    numbers in the payload, read back from a capture in the switch namespace).

Usage: python3 bench/bfd_failover.py [--rounds 20] [--intervals-ms 10,50] [--multiplier 3]
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import shutil
import signal
import statistics
import struct
import sys
import threading
import time
from contextlib import ExitStack

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from opte_fast.controlplane.bfd import Bfd, BfdConfig, BfdSettings  # noqa: E402
from opte_fast.controlplane.dataplane import Dataplane, DataplaneOptions, eal_args, eal_cleanup, eal_init  # noqa: E402
from opte_fast.tools.sample import (  # noqa: E402
    GATEWAY_MAC,
    GUEST_IP4,
    GUEST_MAC,
    UNDERLAY,
    anycast_state,
    switch_gateway,
    switch_mac,
)
from tests.support.frr import Bfdd, peer_config  # noqa: E402
from tests.support.netns import namespace, run  # noqa: E402

PAYLOAD_OFF = 70 + 14 + 20 + 8  # outer headers, inner Ethernet, IPv4, UDP
BATCH = 8
N_FLOWS = 64


def frame(seq: int, first_flow: int) -> bytes:
    """A UDP frame of flow first_flow + seq % N_FLOWS carrying seq."""
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 8 + 8, 0, 0, 64, 17, 0, GUEST_IP4.packed,
                     ipaddress.IPv4Address("198.51.100.7").packed)
    udp = struct.pack("!HHHH", 1000 + first_flow + seq % N_FLOWS, 53, 16, 0) + struct.pack("!Q", seq)
    mac = bytes.fromhex
    return mac(GATEWAY_MAC.replace(":", "")) + mac(GUEST_MAC.replace(":", "")) + b"\x08\x00" + ip + udp


class Feeder(threading.Thread):
    """Injects a batch of sequenced frames into the guest every GAP_S, keeping injection times."""

    GAP_S = 0.0002

    def __init__(self, dp: Dataplane):
        super().__init__(daemon=True)
        self.dp, self.seq, self.times, self.first_flow = dp, 0, {}, 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            frames = [frame(self.seq + i, self.first_flow) for i in range(BATCH)]
            self.times[self.seq // BATCH] = time.monotonic_ns()
            self.seq += self.dp.inject("guest0", frames)
            time.sleep(self.GAP_S)

    def injected_ns(self, seq: int) -> int:
        return self.times[seq // BATCH]


def link_local(mac: str) -> str:
    b = bytes.fromhex(mac.replace(":", ""))
    return str(ipaddress.IPv6Address(b"\xfe\x80" + b"\0" * 6 + bytes([b[0] ^ 2]) + b[1:3] + b"\xff\xfe" + b[3:]))


def wait_for(cond, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout_s} s")
        time.sleep(0.0002)


def nexthop_up(dp: Dataplane, uplink: str) -> bool:
    return next(n for n in dp.paths()["nexthops"] if n["uplink"] == uplink)["up"]


def measure(interval_ms: int, multiplier: int, rounds: int) -> list[tuple[float, float, float | None]]:
    settings = BfdSettings("on", interval_ms, interval_ms, multiplier)
    tag = secrets.token_hex(2)
    rows = []
    with ExitStack() as stack:
        switches = [stack.enter_context(namespace(f"bfdbench{i}")) for i in range(2)]
        dp = Dataplane(DataplaneOptions(underlay_addr=UNDERLAY, flow_capacity=8192, n_mbufs=16383))
        stack.callback(dp.close)
        dp.add_ring_port("guest0", "guest")
        names, macs = [f"ofbb{tag}{i}" for i in range(2)], [f"02:5e:00:00:{i:02x}:02" for i in range(2)]
        for i, (name, mac) in enumerate(zip(names, macs)):
            dp.add_port(f"uplink{i}", f"net_tap_{name},iface={name},mac={mac}", "uplink")
        dp.commit(anycast_state(2))
        dp.start([1])
        bfdds = []
        for i, (sw, name, mac) in enumerate(zip(switches, names, macs)):
            run(["ip", "link", "set", name, "netns", sw.name])
            sw.ip("link", "set", name, "address", switch_mac(i), "up")
            sw.add_address(name, f"{switch_gateway(i)}/64")
            bfdds.append(stack.enter_context(Bfdd(sw, [peer_config(link_local(mac), interface=name,
                                                                    interval_ms=interval_ms, multiplier=multiplier)])))
        bfd = Bfd(dp, BfdConfig(settings, multihop=False), log=open(os.devnull, "w"))  # noqa: SIM115
        bfd.commit(anycast_state(2))
        bfd.start()
        stack.callback(bfd.stop)
        wait_for(lambda: [s["state"] for s in dp.bfd_sessions()] == [3, 3], 15, "both sessions Up")
        feeder = Feeder(dp)
        feeder.start()
        stack.callback(feeder.join)
        stack.callback(feeder.stopping.set)
        for round_ in range(rounds):
            feeder.first_flow = round_ * N_FLOWS
            time.sleep(0.2)  # traffic on both switches; the session settled at its fast rate
            with switches[0].capture(names[0]) as cap:
                pid = int((bfdds[0].dir / "bfdd.pid").read_text())
                t_fail = time.monotonic_ns()
                os.kill(pid, signal.SIGKILL)
                wait_for(lambda: not nexthop_up(dp, "uplink0"), 5, "nexthop uplink0 down")
                session = dp.bfd_sessions()[0]
                detected = session["changed_ns"] - t_fail
                committed = session["changed_ns"] + bfd.bfd()["sessions"][0]["reaction_us"] * 1000 - t_fail
                time.sleep(0.05)
                seqs = [struct.unpack_from("!Q", f.data, PAYLOAD_OFF)[0] for f in cap.frames
                        if not f.outgoing and len(f.data) >= PAYLOAD_OFF + 8 and f.data[12:14] == b"\x86\xdd"
                        and f.data[20] == 17 and f.data[56:58] == b"\x17\xc1"]  # UDP to 6081: Geneve
            last = feeder.injected_ns(max(seqs)) - t_fail if seqs else None
            rows.append((detected / 1e6, committed / 1e6, last / 1e6 if last is not None else None))
            bfdds[0].stop_bfdd()  # its pid file
            bfdds[0].start_bfdd()
            wait_for(lambda: nexthop_up(dp, "uplink0") and dp.bfd_sessions()[0]["state"] == 3, 15,
                     "nexthop uplink0 back")
        stats = dp.bfd_stats()
        counters = dp.counters()
    print(f"  BFD thread: {'SCHED_FIFO' if stats['realtime'] else 'SCHED_OTHER'}, latest wake-up "
          f"{stats['late_max_ns'] / 1e6:.2f} ms late; guest frames {counters['rx_guest_packets']}, "
          f"flows_migrated {counters['flows_migrated']}, tx_full {counters['tx_full']}")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--intervals-ms", default="10,50", help="comma-separated BFD intervals to measure")
    ap.add_argument("--multiplier", type=int, default=3)
    args = ap.parse_args()
    prefix = f"oft-bfdbench-{os.getpid()}"
    eal_init(eal_args([1], file_prefix=prefix, memory_mb=512))
    results = {}
    try:
        for interval in (int(x) for x in args.intervals_ms.split(",")):
            print(f"{interval} ms x {args.multiplier}: {args.rounds} failures (bfdd SIGKILLed on switch 0)")
            results[interval] = measure(interval, args.multiplier, args.rounds)
    finally:
        eal_cleanup()
        shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)

    print(f"\nfrom the failure, milliseconds, p50 / p99 over {args.rounds} failures "
          f"(p99 of 20 is the worst but one; max in brackets)")
    print(f"{'BFD':>10} {'detected':>18} {'committed':>18} {'last packet':>18} {'bound 3x+5 ms':>14}")
    for interval, rows in results.items():
        cells = []
        for col in range(3):
            v = sorted(r[col] for r in rows if r[col] is not None)
            cells.append(f"{statistics.median(v):5.1f} / {v[int(0.99 * (len(v) - 1))]:5.1f} ({v[-1]:5.1f})"
                         if v else "-")
        bound = args.multiplier * interval + 5
        print(f"{f'{interval} ms x {args.multiplier}':>10} {cells[0]:>18} {cells[1]:>18} {cells[2]:>18} "
              f"{bound:>11} ms")


if __name__ == "__main__":
    main()
