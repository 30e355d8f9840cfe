"""From a switch's BFD going silent to the last packet the data plane sends toward that switch, at full rate.

Runs the real data plane in this process (its own EAL, --no-huge): two net_tap uplinks, each moved into a
switch namespace where FRR's bfdd (SCHED_FIFO) holds a single-hop session with the sled's link-local
address, and `Bfd` in front of the data plane as `opte-fast run --bfd on` has. The guest port is
`net_pcap` looping 64-byte frames of --flows UDP flows from memory, so the one worker always has a full
burst to forward and forwards as fast as it can send (the kernel's side of each tap takes every frame
with a write, which bounds the rate; the figure is printed). That worker also receives the sessions'
packets on the uplinks and, on net_tap, sends them. Flows are rebalanced as soon as their switch is
back (`rebalance_idle_ms` 0), so every round starts with the flows spread over both switches. Each
round SIGKILLs switch 0's bfdd (a crash: it sends nothing more), waits until its nexthop is committed
down, then starts bfdd again and waits for the session and the nexthop to be back. Per round, from
the kill:

  * detected: the BFD thread's session going Down (detection time: multiplier x interval, plus
    up to one interval since the last packet, plus the BFD thread's wake-up);
  * committed: the commit with the nexthop down returning, after which no worker can send to it;
  * last packet: the last burst with a Geneve frame that the worker handed to switch 0's tap, stamped
    by a transmit callback on that port (csrc/bench/txwatch.c).

Usage: .venv/bin/python bench/bfd_failover.py [--rounds 20] [--intervals-ms 10,50] [--multiplier 3]
       [--flows 1024]
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.failover import wait_for  # noqa: E402
from opte_fast.controlplane.bfd import BfdSettings  # noqa: E402
from opte_fast.controlplane.dataplane import eal_args, eal_cleanup, eal_init  # noqa: E402
from opte_fast.tools.bench_traffic import Traffic, TxWatch  # noqa: E402
from tests.support.bfd_lab import bfd_switch_lab, nexthop_up  # noqa: E402

Row = tuple[float, float, float, int]   # detected, committed, last packet (ms from the kill), frames after it


def measure(interval_ms: int, multiplier: int, rounds: int, flows: int, workdir: Path) -> list[Row]:
    settings = BfdSettings("on", interval_ms, interval_ms, multiplier)
    pcap = workdir / f"guest-{interval_ms}.pcap"
    Traffic("outbound", 64, flows).write_pcap(pcap)
    guest = f"net_pcap_bfdbench{interval_ms},rx_pcap={pcap},infinite_rx=1"
    rows: list[Row] = []
    with bfd_switch_lab(settings, flow_capacity=max(8192, 2 * flows), n_mbufs=16383, log=open(os.devnull, "w"),  # noqa: SIM115
                        guest_devargs=guest, rebalance_idle_ms=0) as lab:
        dp, bfd = lab.dp, lab.bfd
        for sw, ifname in zip(lab.switches, lab.ifnames):  # the switches' kernels drop the traffic first thing
            sw.run("nft", f"add table netdev bench; add chain netdev bench in {{ type filter hook ingress device "
                          f"{ifname} priority -500; }}; add rule netdev bench in udp dport 6081 drop")
        wait_for(lambda: [s["state"] for s in dp.bfd_sessions()] == [3, 3], 15, "both sessions Up")
        watch = TxWatch(next(p["ethdev"] for p in dp.ports() if p["name"] == "uplink0"))
        try:
            t0, sent0, worker0 = time.monotonic(), dp.counters()["tx_uplink_packets"], dp.workers()[0]
            for _ in range(rounds):
                before = watch.frames()
                time.sleep(0.2)  # the flows back on switch 0; the session settled at its fast rate
                if watch.frames() == before:
                    raise RuntimeError("no traffic toward switch 0 before its failure")
                pid = int((lab.bfdds[0].dir / "bfdd.pid").read_text())
                t_fail, at_fail = time.monotonic_ns(), watch.frames()
                os.kill(pid, signal.SIGKILL)
                wait_for(lambda: not nexthop_up(dp, "uplink0"), 5, "nexthop uplink0 down")
                session = dp.bfd_sessions()[0]
                detected = session["changed_ns"] - t_fail
                committed = session["changed_ns"] + bfd.bfd()["sessions"][0]["reaction_us"] * 1000 - t_fail
                time.sleep(0.05)
                rows.append((detected / 1e6, committed / 1e6, (watch.last_ns() - t_fail) / 1e6,
                             watch.frames() - at_fail))
                lab.bfdds[0].stop_bfdd()  # its pid file
                lab.bfdds[0].start_bfdd()
                wait_for(lambda: nexthop_up(dp, "uplink0") and dp.bfd_sessions()[0]["state"] == 3, 15,
                         "nexthop uplink0 back")
            seconds, worker = time.monotonic() - t0, dp.workers()[0]
            sent = dp.counters()["tx_uplink_packets"] - sent0
        finally:
            watch.close()
        stats, counters = dp.bfd_stats(), dp.counters()
    busy_polls = worker["busy_polls"] - worker0["busy_polls"]
    print(f"  the worker forwarded {sent / seconds / 1e6:.2f} Mpps to the two taps throughout, "
          f"{(worker['rx_packets'] - worker0['rx_packets']) / max(busy_polls, 1):.1f} frames a burst received, "
          f"{100 * busy_polls / max(worker['polls'] - worker0['polls'], 1):.0f}% of its polls busy; "
          f"tx_full {counters['tx_full']}, flows_migrated {counters['flows_migrated']}")
    print(f"  BFD thread: {'SCHED_FIFO' if stats['realtime'] else 'SCHED_OTHER'}, latest wake-up "
          f"{stats['late_max_ns'] / 1e6:.2f} ms late")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--intervals-ms", default="10,50", help="comma-separated BFD intervals to measure")
    ap.add_argument("--multiplier", type=int, default=3)
    ap.add_argument("--flows", type=int, default=1024, help="UDP flows the guest sends, spread over both switches")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} at the start")
    prefix = f"oft-bfdbench-{os.getpid()}"
    eal_init(eal_args([1], file_prefix=prefix, memory_mb=512))
    results = {}
    try:
        with tempfile.TemporaryDirectory(prefix="oft-bfdbench-") as workdir:
            for interval in (int(x) for x in args.intervals_ms.split(",")):
                print(f"{interval} ms x {args.multiplier}: {args.rounds} failures (bfdd SIGKILLed on switch 0)")
                results[interval] = measure(interval, args.multiplier, args.rounds, args.flows, Path(workdir))
    finally:
        eal_cleanup()
        shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)

    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    print(f"\nfrom the failure, milliseconds, p50 / p99 over {args.rounds} failures "
          f"(p99 of 20 is the worst but one; max in brackets)")
    print(f"{'BFD':>10} {'detected':>18} {'committed':>18} {'last packet':>18} {'bound 3x+5 ms':>14} "
          f"{'frames to switch 0 after the kill, p50':>40}")
    for interval, rows in results.items():
        cells = []
        for col in range(3):
            v = sorted(r[col] for r in rows)
            cells.append(f"{statistics.median(v):5.1f} / {v[int(0.99 * (len(v) - 1))]:5.1f} ({v[-1]:5.1f})")
        bound = args.multiplier * interval + 5
        print(f"{f'{interval} ms x {args.multiplier}':>10} {cells[0]:>18} {cells[1]:>18} {cells[2]:>18} "
              f"{bound:>11} ms {statistics.median(r[3] for r in rows):>40,.0f}")


if __name__ == "__main__":
    main()
