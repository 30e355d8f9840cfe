"""From an uplink's link going down to the last packet the data plane sends through it.

Runs the real data plane in this process (its own EAL, --no-huge) with a ring guest port and two
uplinks, and `Links` in front of it as `opte-fast run` has. A thread feeds the guest without pause
with frames of 64 flows, each frame carrying a sequence number whose injection time is kept.
Each round takes uplink1's link down, waits until its nexthop is committed down, and brings the
link back. For each round it prints:

  * detected: from the link going down to the data plane noticing it (C, csrc/link.c);
  * applied: from the link going down to the commit returning, after which no worker can send
    through the uplink any more (the RCU grace period includes their transmit flush);
  * last packet (ring uplinks only, where the wire can be seen): from the link going down to the
    injection of the last frame that still left through uplink1 (sequence numbers in the payload).

Uplinks:
  --pmd ring  net_ring ports, link taken down with rte_eth_dev_set_link_down; no LSC interrupt,
              so the link is polled (every 2 ms).
  --pmd tap   net_tap ports in a namespace of its own (root needed), link taken down with an
              RTM_NEWLINK clearing IFF_UP on the kernel side; LSC interrupt.

Usage: .venv/bin/python bench/link_failover.py [--pmd ring|tap] [--rounds 20]
"""
from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.failover import N_FLOWS, Feeder, last_seq, wait_for  # noqa: E402
from opte_fast.controlplane import taps  # noqa: E402
from opte_fast.controlplane.dataplane import Dataplane, DataplaneOptions, eal_args, eal_cleanup, eal_init  # noqa: E402
from opte_fast.controlplane.links import Links  # noqa: E402
from opte_fast.controlplane.routesync import in_netns  # noqa: E402
from opte_fast.tools.sample import UNDERLAY, anycast_state  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pmd", choices=("ring", "tap"), default="ring")
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    prefix = f"oft-linkbench-{os.getpid()}"
    netns = f"oft-linkbench-{secrets.token_hex(3)}" if args.pmd == "tap" else None
    eal_init(eal_args([1], file_prefix=prefix, memory_mb=512))
    dp = feeder = links = None
    try:
        if netns:
            subprocess.run(["ip", "netns", "add", netns], check=True)
            subprocess.run(["ip", "netns", "exec", netns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"],
                           check=True)
        dp = Dataplane(DataplaneOptions(underlay_addr=UNDERLAY, flow_capacity=4096, n_mbufs=16383))
        dp.add_ring_port("guest0", "guest")
        names = [f"oftlb{secrets.token_hex(2)}{i}" for i in range(2)]
        for i, name in enumerate(names):
            if netns:
                in_netns(netns, lambda i=i, name=name: dp.add_port(f"uplink{i}", f"net_tap_{name},iface={name}",
                                                                   "uplink"))
            else:
                dp.add_ring_port(f"uplink{i}", "uplink")
        in_netns(netns, lambda: dp.start([1]))
        links = Links(dp, ["uplink0", "uplink1"], log=open(os.devnull, "w"))  # noqa: SIM115
        links.commit(anycast_state(2))
        links.start()
        feeder = Feeder(dp)
        feeder.start()

        nl = in_netns(netns, lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE))
        nl.bind((0, 0))

        def set_link(up: bool) -> int:
            """Change uplink1's link; the time just before."""
            t = time.monotonic_ns()
            if netns:
                nl.send(taps.newlink_request(names[1], flags=taps.IFF_UP if up else 0, change=taps.IFF_UP))
                nl.recv(65536)
            else:
                dp.set_link("uplink1", up)
            return t

        rows = []
        for round_ in range(args.rounds):
            feeder.first_flow = round_ * N_FLOWS
            time.sleep(0.05)
            for port in () if netns else ("uplink0", "uplink1"):
                dp.collect(port)
            t_down = set_link(False)
            wait_for(lambda: links.down == {"uplink1"}, 5, "uplink1 committed down")
            (port,) = [p for p in links.ports() if p["name"] == "uplink1"]
            detected = dp.link("uplink1")["changed_ns"] - t_down
            applied = detected + port["link_reaction_us"] * 1000
            time.sleep(0.02)
            last = None
            if not netns:
                seq = last_seq(dp.collect("uplink1"))
                last = feeder.injected_ns(seq) - t_down if seq is not None else None
            rows.append((detected / 1e3, applied / 1e3, last / 1e3 if last is not None else None))
            set_link(True)
            wait_for(lambda: links.down == set(), 5, "uplink1 committed up again")
        counters = dp.counters()
    finally:
        if feeder is not None:
            feeder.stopping.set()
            feeder.join()
        if links is not None:
            links.stop()
        if dp is not None:
            dp.close()
        eal_cleanup()
        shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)
        if netns:
            subprocess.run(["ip", "netns", "del", netns], check=False)

    how = "LSC interrupt (net_tap)" if args.pmd == "tap" else "polled every 2 ms (net_ring)"
    print(f"link down -> uplink1's nexthop committed down, {args.rounds} rounds, {how}; µs")
    print(f"{'round':>5} {'detected':>9} {'applied':>9} {'last packet':>12}")
    for i, (d, a, last) in enumerate(rows):
        print(f"{i:5d} {d:9.0f} {a:9.0f} {'-' if last is None else f'{last:.0f}':>12}")
    for label, col in (("detected", 0), ("applied", 1), ("last packet", 2)):
        values = sorted(r[col] for r in rows if r[col] is not None)
        if values:
            print(f"{label:>12}: median {statistics.median(values):7.0f}  max {values[-1]:7.0f}")
    print(f"flows_migrated {counters['flows_migrated']}, rx_guest_packets {counters['rx_guest_packets']}, "
          f"no_live_nexthop {counters['no_live_nexthop']}, tx_full {counters['tx_full']}")


if __name__ == "__main__":
    main()
