"""`opte-fast run --route-source netlink --netns NAME` end to end, as an operator runs it.

The test plays the routing daemon with `ip` in a sled namespace it creates:
two veth uplinks named like opte-fast's uplink ports, permanent neighbour
entries for the switches fe80::1 and fe80::2. opte-fast runs in a subprocess
(root namespace) with a guest `net_pcap` port replaying 64 UDP flows for ever
and two `net_null` uplinks (a pcap file would grow by hundreds of MB a
second). After every change the route and nexthop tables seen through
`opte-fast ctl --json routes` / `nexthops` must show exactly the expected
state within WAIT_S, and the guest's flows and the uplinks' transmit counters
must follow the paths the kernel offers.

Link down, as route sync documents it: a multipath route keeps the path of a
downed link, flagged dead by the kernel, with its neighbour flushed, so the
nexthop stays in the tables marked down with no MAC; it is up again once the
link is up and the neighbour known. A nexthop object on a downed link is
deleted by the kernel, so that nexthop is gone, and stays gone after the link
comes back until the daemon re-adds the object.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from scapy.all import IP, UDP, Ether, Raw, wrpcap

from tests.support.cli import OPTE_FAST, sled_toml
from tests.support.netns import Netns, namespace, veth
from tests.support.tools import needs_root

pytestmark = needs_root("network namespaces")

REPO = Path(__file__).resolve().parents[1]
PREFIX = "fd00:99::/64"
MAC1, MAC2 = "a8:40:25:00:00:01", "a8:40:25:00:00:02"
NO_MAC = "00:00:00:00:00:00"
N_FLOWS = 64
WAIT_S = 5.0  # bound on every wait for the data plane to follow a change (route sync itself takes ~1 ms)




class Sled:
    """The sled namespace: uplinks u0 and u1 (veths whose peers stay in the namespace), up, with
    both switches' neighbour entries."""

    def __init__(self, ns: Netns):
        self.ns = ns
        self.tag = ns.name.rsplit("-", 1)[1]
        self.u0, self.u1 = f"oftu{self.tag}0", f"oftu{self.tag}1"  # interface names: 15 bytes at most
        for i, (dev, addr) in enumerate(((self.u0, "fe80::a/64"), (self.u1, "fe80::b/64"))):
            veth(ns, dev, ns, f"{dev[:-1]}p{i}")
            ns.add_address(dev, addr)
        self.neighbours()

    def neighbours(self) -> None:
        """Both switches' MACs known, as the daemon's peering would leave them."""
        self.ns.neighbour(self.u0, "fe80::1", MAC1)
        self.ns.neighbour(self.u1, "fe80::2", MAC2)


class Run:
    """`opte-fast run` in a subprocess and `opte-fast ctl` against its socket."""

    def __init__(self, tmp_path: Path, sled: Sled, tag: str):
        self.tmp_path, self.sled = tmp_path, sled
        self.socket = str(tmp_path / "ctl.sock")
        self.prefix = f"oft-rnl-{tag}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        guest_pcap = self.tmp_path / "guest.pcap"
        wrpcap(str(guest_pcap), [Ether(src="02:00:00:00:00:01", dst="a8:40:25:ff:00:01")
                                 / IP(src="10.0.0.2", dst=f"198.51.100.{1 + i}") / UDP(sport=10000 + i, dport=53)
                                 / Raw(b"x" * 32) for i in range(N_FLOWS)])
        cfg = self.tmp_path / "c.toml"
        cfg.write_text(sled_toml(f"net_pcap0,rx_pcap={guest_pcap},infinite_rx=1",
                                 {self.sled.u0: "net_null0,no-rx=1", self.sled.u1: "net_null1,no-rx=1"},
                                 static_routes=False))
        self.stderr = open(self.tmp_path / "run.stderr", "w+")
        self.proc = subprocess.Popen(
            [*OPTE_FAST, "run", "--config", str(cfg), "--route-source", "netlink", "--netns", self.sled.ns.name,
             "--no-exception-path", "--control-socket", self.socket, "--file-prefix", self.prefix,
             "--memory-mb", "1024", "--duration-s", "120"],  # stopped by SIGTERM long before
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=self.stderr)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.socket):
            assert self.proc.poll() is None, f"opte-fast run exited {self.proc.returncode}: {self.output()}"
            assert time.monotonic() < deadline, f"no control socket after 30 s: {self.output()}"
            time.sleep(0.05)

    def output(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()

    def stop(self) -> int:
        """SIGTERM; the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"opte-fast run ignored SIGTERM for 15 s: {self.output()}")

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc is not None:
            self.stderr.close()
        subprocess.run(["rm", "-rf", f"/var/run/dpdk/{self.prefix}"], check=False)

    def ctl(self, *args: str):
        p = subprocess.run([*OPTE_FAST, "ctl", "--socket", self.socket, "--json", *args], cwd=REPO,
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, f"opte-fast ctl {' '.join(args)}: {p.stderr.strip()}"
        return json.loads(p.stdout)

    # --- what the data plane holds ------------------------------------------------------

    def tables(self) -> tuple[list, list]:
        """(routes, nexthops) as ctl shows them; nexthops as sorted (prefix, uplink, gateway, mac, up)."""
        routes = self.ctl("routes")
        nexthops = sorted((h["prefix"], h["uplink"], h["gateway"], h["mac"], h["up"]) for h in self.ctl("nexthops"))
        return routes, nexthops

    def expect(self, *hops: tuple[str, str, str, bool]) -> None:
        """Within WAIT_S, the one route to PREFIX has exactly `hops` (uplink, gateway, mac, up),
        in both the route table and the data plane's nexthops; no hops: no route at all."""
        want_routes = [{"prefix": PREFIX, "nexthops": [{"uplink": u, "gateway": g, "mac": m, "up": up}
                                                       for u, g, m, up in hops]}] if hops else []
        want_hops = sorted((PREFIX, *h) for h in hops)
        deadline = time.monotonic() + WAIT_S
        while True:
            got = self.tables()
            if got == (want_routes, want_hops):
                return
            if time.monotonic() > deadline:
                pytest.fail(f"after {WAIT_S} s: routes {got[0]}, nexthops {got[1]}; "
                            f"expected routes {want_routes}, nexthops {want_hops}\n{self.output()}")

    def flow_uplinks(self) -> dict[str, int]:
        """How many of the guest's flows are pinned to each uplink."""
        out: dict[str, int] = {}
        for f in self.ctl("flows", "--limit", "1000"):
            key = f["nexthop"]["uplink"] if f["nexthop"] else None
            out[key] = out.get(key, 0) + 1
        return out

    def expect_flows(self, check, what: str) -> dict[str, int]:
        deadline = time.monotonic() + WAIT_S
        while True:
            got = self.flow_uplinks()
            if check(got):
                return got
            if time.monotonic() > deadline:
                pytest.fail(f"flows per uplink {got}, expected {what}")
            time.sleep(0.05)

    def stats(self) -> tuple[dict[str, int], dict[str, int]]:
        """(tx_packets per port name, data plane counters)."""
        s = self.ctl("stats")
        return {p["name"]: p["tx_packets"] for p in s["ports"]}, s["counters"]

    def tx_deltas(self, interval_s: float = 0.5) -> dict[str, int]:
        before, _ = self.stats()
        time.sleep(interval_s)
        after, _ = self.stats()
        return {name: after[name] - before[name] for name in (self.sled.u0, self.sled.u1)}


@pytest.fixture
def sled():
    with namespace("rnl") as ns:
        yield Sled(ns)


def test_run_follows_the_routing_daemon_and_traffic_follows_the_routes(tmp_path, sled):
    run = Run(tmp_path, sled, sled.tag)
    u0, u1 = sled.u0, sled.u1
    up0, up1 = (u0, "fe80::1", MAC1, True), (u1, "fe80::2", MAC2, True)
    try:
        run.start()
        run.expect()  # nothing routed yet: the guest's packets are dropped for want of a route

        # 1. ECMP over both switches: both paths up with the switches' MACs; flows spread over both uplinks
        sled.ns.ip(f"-6 route replace {PREFIX} nexthop via fe80::1 dev {u0} nexthop via fe80::2 dev {u1}")
        run.expect(up0, up1)
        spread = run.expect_flows(lambda f: sum(f.values()) == N_FLOWS and f.get(u0) and f.get(u1),
                                  f"all {N_FLOWS} flows pinned, over both uplinks")
        tx = run.tx_deltas()
        assert tx[u0] > 0 and tx[u1] > 0, f"transmitted per uplink in 0.5 s: {tx}"
        _, counters = run.stats()
        assert counters["flows_migrated"] == 0

        # 2. one path withdrawn (the kernel's event names only that path): U1's flows move to U0
        sled.ns.ip(f"-6 route del {PREFIX} via fe80::2 dev {u1}")
        run.expect(up0)
        run.expect_flows(lambda f: f == {u0: N_FLOWS}, f"all {N_FLOWS} flows on {u0}")
        tx = run.tx_deltas()
        assert tx[u0] > 0 and tx[u1] == 0, f"transmitted per uplink in 0.5 s: {tx}"
        _, counters = run.stats()
        assert counters["flows_migrated"] >= spread[u1], counters
        # a replace that withdraws a path does the same
        sled.ns.ip(f"-6 route replace {PREFIX} nexthop via fe80::1 dev {u0} nexthop via fe80::2 dev {u1}")
        run.expect(up0, up1)
        sled.ns.ip(f"-6 route replace {PREFIX} via fe80::1 dev {u0}")
        run.expect(up0)

        # 3. nexthop objects in a resilient group; deleting a member emits no route event
        sled.ns.ip(f"nexthop add id 1 via fe80::1 dev {u0}")
        sled.ns.ip(f"nexthop add id 2 via fe80::2 dev {u1}")
        sled.ns.ip("nexthop add id 10 group 1/2 type resilient buckets 64 idle_timer 10")
        sled.ns.ip(f"-6 route replace {PREFIX} nhid 10")
        run.expect(up0, up1)
        sled.ns.ip("nexthop del id 2")
        run.expect(up0)

        # 4a. link down under a multipath route: the path stays, flagged dead, its neighbour flushed
        sled.ns.ip(f"-6 route replace {PREFIX} nexthop via fe80::1 dev {u0} nexthop via fe80::2 dev {u1}")
        run.expect(up0, up1)
        sled.ns.ip(f"link set {u1} down")
        run.expect(up0, (u1, "fe80::2", NO_MAC, False))
        sled.ns.ip(f"link set {u1} up")
        sled.neighbours()  # the switch's MAC learnt again
        run.expect(up0, up1)
        # 4b. link down under a nexthop object: the kernel deletes the object, so the nexthop is gone
        sled.ns.ip(f"nexthop add id 2 via fe80::2 dev {u1}")
        sled.ns.ip("nexthop replace id 10 group 1/2 type resilient buckets 64 idle_timer 10")
        sled.ns.ip(f"-6 route replace {PREFIX} nhid 10")
        run.expect(up0, up1)
        sled.ns.ip(f"link set {u1} down")
        run.expect(up0)
        sled.ns.ip(f"link set {u1} up")
        sled.neighbours()
        sled.ns.ip(f"nexthop add id 2 via fe80::2 dev {u1}")
        sled.ns.ip("nexthop replace id 10 group 1/2 type resilient buckets 64 idle_timer 10")
        run.expect(up0, up1)

        # the route withdrawn altogether
        sled.ns.ip(f"-6 route del {PREFIX}")
        run.expect()
        _, counters = run.stats()
        assert counters["no_route"] > 0

        assert run.stop() == 0, run.output()
        assert not os.path.exists(run.socket)
        assert not os.path.exists(f"/var/run/dpdk/{run.prefix}")
    finally:
        run.cleanup()
