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

Usage: .venv/bin/python bench/bfd_failover.py [--rounds 20] [--intervals-ms 10,50] [--multiplier 3]
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.failover import N_FLOWS, Feeder, last_seq, wait_for  # noqa: E402
from opte_fast.controlplane.bfd import BfdSettings  # noqa: E402
from opte_fast.controlplane.dataplane import eal_args, eal_cleanup, eal_init  # noqa: E402
from tests.support.bfd_lab import bfd_switch_lab, nexthop_up  # noqa: E402


def measure(interval_ms: int, multiplier: int, rounds: int) -> list[tuple[float, float, float | None]]:
    settings = BfdSettings("on", interval_ms, interval_ms, multiplier)
    rows = []
    with bfd_switch_lab(settings, flow_capacity=8192, n_mbufs=16383, log=open(os.devnull, "w")) as lab:  # noqa: SIM115
        dp, bfd = lab.dp, lab.bfd
        wait_for(lambda: [s["state"] for s in dp.bfd_sessions()] == [3, 3], 15, "both sessions Up")
        feeder = Feeder(dp)
        feeder.start()
        try:
            for round_ in range(rounds):
                feeder.first_flow = round_ * N_FLOWS
                time.sleep(0.2)  # traffic on both switches; the session settled at its fast rate
                with lab.switches[0].capture(lab.ifnames[0]) as cap:
                    pid = int((lab.bfdds[0].dir / "bfdd.pid").read_text())
                    t_fail = time.monotonic_ns()
                    os.kill(pid, signal.SIGKILL)
                    wait_for(lambda: not nexthop_up(dp, "uplink0"), 5, "nexthop uplink0 down")
                    session = dp.bfd_sessions()[0]
                    detected = session["changed_ns"] - t_fail
                    committed = session["changed_ns"] + bfd.bfd()["sessions"][0]["reaction_us"] * 1000 - t_fail
                    time.sleep(0.05)
                    seq = last_seq(f.data for f in cap.frames if f.incoming)
                last = feeder.injected_ns(seq) - t_fail if seq is not None else None
                rows.append((detected / 1e6, committed / 1e6, last / 1e6 if last is not None else None))
                lab.bfdds[0].stop_bfdd()  # its pid file
                lab.bfdds[0].start_bfdd()
                wait_for(lambda: nexthop_up(dp, "uplink0") and dp.bfd_sessions()[0]["state"] == 3, 15,
                         "nexthop uplink0 back")
        finally:
            feeder.stopping.set()
            feeder.join()
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
