"""Route sync follows the host routing table in a network namespace.

Each test plays the routing daemon with `ip` inside a namespace it creates:
two uplinks (veth pairs uplink0/peer0, uplink1/peer1, the peers playing the
switches) and one interface that is not an uplink (other0). Route sync feeds
a controller over an in-memory data plane whose V2B entry names one TEP in
each prefix the tests route (fd00:96::1 … fd00:99::1); after every change the
data plane must hold exactly the host's routes to those TEPs.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import shutil
import socket
import struct
import tempfile
import threading
import time

import pytest

from opte_fast.api.client import ControlClient
from opte_fast.config.loader import load_config
from opte_fast.controlplane.controller import Controller
from opte_fast.controlplane.daemon import serve
from opte_fast.controlplane.routesync import (
    NO_MAC,
    KernelRoute,
    KernelTables,
    Link,
    Neighbour,
    NetlinkRouteSync,
    Path,
    RouteIndex,
    RouteSyncError,
    parse_route,
    routes_for,
)
from opte_fast.controlplane.state import V2B, DesiredState, Nexthop, Route, Tep, Underlay
from tests.support.fake_dataplane import FakeDataplane
from tests.support.netns import Netns, namespace, veth
from tests.support.tools import needs_root
from tests.support.wait import wait_for

pytestmark = needs_root("network namespaces")

A = ipaddress.IPv6Address
N = ipaddress.IPv6Network
PREFIX = N("fd00:99::/64")
MAC1, MAC2 = "a8:40:25:00:00:01", "a8:40:25:00:00:02"
UPLINKS = ("uplink0", "uplink1")
TEPS = tuple(A(f"fd00:{n}::1") for n in (96, 97, 98, 99))
WAIT_S = 3.0


def hop(uplink: str, gateway: str, mac: str = NO_MAC, up: bool = True) -> Nexthop:
    return Nexthop(uplink, A(gateway), mac, up)


UP0 = hop("uplink0", "fe80::1", MAC1)
UP1 = hop("uplink1", "fe80::2", MAC2)


@pytest.fixture
def netns():
    """A namespace with uplink0, uplink1 and other0 up (veths whose peers stay in it); deleted afterwards."""
    with namespace("rs") as ns:
        for dev, peer in (("uplink0", "peer0"), ("uplink1", "peer1"), ("other0", "otherp0")):
            veth(ns, dev, ns, peer)
        yield ns


def neighbours(ns: Netns) -> None:
    """Both switches' MACs known, as a daemon's peering would leave them."""
    ns.neighbour("uplink0", "fe80::1", MAC1)
    ns.neighbour("uplink1", "fe80::2", MAC2)


class Daemon:
    """Plays the routing daemon in the namespace and watches what reaches the data plane."""

    def __init__(self, ns: Netns):
        self.ns = ns
        self.dataplane = FakeDataplane()
        tables = DesiredState(Underlay(A("fd00:1::1")), v2b=(V2B(ipaddress.ip_network("0.0.0.0/0"),
                                                                   tuple(Tep(a) for a in TEPS)),))
        self.controller = Controller(self.dataplane, tables, UPLINKS)
        self.sync = NetlinkRouteSync(UPLINKS, self.controller.host_routes_changed, ns.name)
        self.controller.follow_host_routes(self.sync)
        self.commits_seen = len(self.dataplane.commits)

    def expect(self, *routes: Route) -> None:
        """The data plane holds exactly `routes` within WAIT_S (intermediate sets may come first)."""
        deadline = time.monotonic() + WAIT_S
        while self.dataplane.state.routes != routes:
            if time.monotonic() > deadline:
                pytest.fail(f"expected {routes}, the data plane holds {self.dataplane.state.routes}")
            time.sleep(0.005)
        self.commits_seen = len(self.dataplane.commits)

    def expect_quiet(self, settle_s: float = 0.3) -> None:
        """No commit: the last change altered no route the data plane uses."""
        time.sleep(settle_s)
        assert len(self.dataplane.commits) == self.commits_seen, f"unexpected commit {self.dataplane.state}"


@pytest.fixture
def daemon(netns):
    d = Daemon(netns)
    d.sync.start()
    try:
        yield d
    finally:
        d.sync.stop()


def test_start_delivers_the_current_routes(netns):
    d = Daemon(netns)
    neighbours(d.ns)
    d.ns.ip("-6 route replace fd00:99::/64 nexthop via fe80::1 dev uplink0 nexthop via fe80::2 dev uplink1")
    d.sync.start()
    try:
        assert d.dataplane.state.routes == (Route(PREFIX, (UP0, UP1)),)  # before start() returned
    finally:
        d.sync.stop()


def test_multipath_route_and_withdrawing_one_path(daemon):
    neighbours(daemon.ns)
    daemon.ns.ip("-6 route replace fd00:99::/64 nexthop via fe80::1 dev uplink0 nexthop via fe80::2 dev uplink1")
    daemon.expect(Route(PREFIX, (UP0, UP1)))
    # the kernel's event names only the removed path; the route keeps the other
    daemon.ns.ip("-6 route del fd00:99::/64 via fe80::2 dev uplink1")
    daemon.expect(Route(PREFIX, (UP0,)))
    daemon.ns.ip("-6 route replace fd00:99::/64 nexthop via fe80::1 dev uplink0 nexthop via fe80::2 dev uplink1")
    daemon.expect(Route(PREFIX, (UP0, UP1)))
    daemon.ns.ip("-6 route replace fd00:99::/64 via fe80::2 dev uplink1")
    daemon.expect(Route(PREFIX, (UP1,)))
    daemon.ns.ip("-6 route del fd00:99::/64")
    daemon.expect()


def test_a_nexthop_is_down_until_its_neighbour_is_resolved(daemon):
    daemon.ns.ip("-6 route replace fd00:99::/64 nexthop via fe80::1 dev uplink0 nexthop via fe80::2 dev uplink1")
    daemon.expect(Route(PREFIX, (hop("uplink0", "fe80::1", up=False), hop("uplink1", "fe80::2", up=False))))
    daemon.ns.neighbour("uplink0", "fe80::1", MAC1, "reachable")
    daemon.expect(Route(PREFIX, (UP0, hop("uplink1", "fe80::2", up=False))))
    daemon.ns.neighbour("uplink1", "fe80::2", MAC2)
    daemon.expect(Route(PREFIX, (UP0, UP1)))


def test_failed_or_deleted_neighbour_marks_the_nexthop_down(daemon):
    neighbours(daemon.ns)
    daemon.ns.ip("-6 route replace fd00:99::/64 nexthop via fe80::1 dev uplink0 nexthop via fe80::2 dev uplink1")
    daemon.expect(Route(PREFIX, (UP0, UP1)))
    daemon.ns.neighbour("uplink1", "fe80::2", MAC2, "failed")
    daemon.expect(Route(PREFIX, (UP0, hop("uplink1", "fe80::2", up=False))))
    daemon.ns.neighbour("uplink1", "fe80::2", MAC2, "stale")  # stale still forwards
    daemon.expect(Route(PREFIX, (UP0, UP1)))
    daemon.ns.ip("-6 neigh del fe80::1 dev uplink0")
    daemon.expect(Route(PREFIX, (hop("uplink0", "fe80::1", up=False), UP1)))


def test_a_changed_mac_is_delivered(daemon):
    neighbours(daemon.ns)
    daemon.ns.ip("-6 route replace fd00:99::/64 via fe80::1 dev uplink0")
    daemon.expect(Route(PREFIX, (UP0,)))
    daemon.ns.neighbour("uplink0", "fe80::1", "a8:40:25:00:00:99")
    daemon.expect(Route(PREFIX, (hop("uplink0", "fe80::1", "a8:40:25:00:00:99"),)))


def test_link_down_and_carrier_loss_mark_the_nexthop_down(daemon):
    neighbours(daemon.ns)
    daemon.ns.ip("-6 route replace fd00:99::/64 nexthop via fe80::1 dev uplink0 nexthop via fe80::2 dev uplink1")
    daemon.expect(Route(PREFIX, (UP0, UP1)))
    # administratively down: the kernel keeps the path, flagged dead, and flushes the neighbour
    daemon.ns.ip("link set uplink1 down")
    daemon.expect(Route(PREFIX, (UP0, hop("uplink1", "fe80::2", up=False))))
    daemon.ns.ip("link set uplink1 up")
    daemon.ns.neighbour("uplink1", "fe80::2", MAC2)
    daemon.expect(Route(PREFIX, (UP0, UP1)))
    # carrier loss (the switch side goes away): only a link event says so
    daemon.ns.ip("link set peer1 down")
    daemon.expect(Route(PREFIX, (UP0, hop("uplink1", "fe80::2", MAC2, up=False))))
    daemon.ns.ip("link set peer1 up")
    daemon.expect(Route(PREFIX, (UP0, UP1)))


def test_nexthop_objects_groups_and_their_deletion(daemon):
    neighbours(daemon.ns)
    daemon.ns.ip("nexthop add id 1 via fe80::1 dev uplink0")
    daemon.ns.ip("nexthop add id 2 via fe80::2 dev uplink1")
    daemon.ns.ip("nexthop add id 10 group 1/2")
    daemon.ns.ip("-6 route replace fd00:99::/64 nhid 10")
    daemon.expect(Route(PREFIX, (UP0, UP1)))
    # deleting a member emits nexthop events only, no route event
    daemon.ns.ip("nexthop del id 2")
    daemon.expect(Route(PREFIX, (UP0,)))
    daemon.ns.ip("nexthop add id 2 via fe80::2 dev uplink1")
    daemon.ns.ip("nexthop replace id 10 group 1/2")
    daemon.expect(Route(PREFIX, (UP0, UP1)))
    daemon.ns.ip("-6 route replace fd00:99::/64 nhid 1")
    daemon.expect(Route(PREFIX, (UP0,)))
    daemon.ns.ip("nexthop del id 1")  # takes the route with it
    daemon.expect()


def test_resilient_nexthop_groups(daemon):
    neighbours(daemon.ns)
    daemon.ns.ip("nexthop add id 1 via fe80::1 dev uplink0")
    daemon.ns.ip("nexthop add id 2 via fe80::2 dev uplink1")
    daemon.ns.ip("nexthop add id 20 group 1/2 type resilient buckets 64 idle_timer 10")
    daemon.ns.ip("-6 route replace fd00:99::/64 nhid 20")
    daemon.ns.ip("-6 route replace fd00:98::/64 nhid 2")
    daemon.expect(Route(N("fd00:98::/64"), (UP1,)), Route(PREFIX, (UP0, UP1)))
    daemon.ns.ip("nexthop replace id 20 group 1 type resilient buckets 64")
    daemon.expect(Route(N("fd00:98::/64"), (UP1,)), Route(PREFIX, (UP0,)))
    # a nexthop object on a link that loses carrier vanishes silently with its routes
    daemon.ns.ip("nexthop replace id 20 group 1/2 type resilient buckets 64")
    daemon.expect(Route(N("fd00:98::/64"), (UP1,)), Route(PREFIX, (UP0, UP1)))
    daemon.ns.ip("link set peer1 down")
    daemon.expect(Route(PREFIX, (UP0,)))


def test_interfaces_that_are_not_uplinks_are_ignored(daemon):
    neighbours(daemon.ns)
    daemon.ns.neighbour("other0", "fe80::3", "a8:40:25:00:00:03")
    daemon.ns.ip("-6 route replace fd00:97::/64 via fe80::3 dev other0")
    daemon.ns.ip("-6 route replace fd00:99::/64 nexthop via fe80::1 dev uplink0 nexthop via fe80::3 dev other0")
    daemon.expect(Route(PREFIX, (UP0,)))
    daemon.ns.ip("-6 route replace fd00:96::/64 dev uplink0")  # on-link, no gateway: not a path via a switch
    daemon.ns.neighbour("other0", "fe80::3", "a8:40:25:00:00:33")
    daemon.expect_quiet()


def test_lowest_metric_route_wins_and_callback_only_on_change(daemon):
    neighbours(daemon.ns)
    daemon.ns.ip("-6 route add fd00:99::/64 via fe80::2 dev uplink1 metric 200")
    daemon.expect(Route(PREFIX, (UP1,)))
    daemon.ns.ip("-6 route add fd00:99::/64 via fe80::1 dev uplink0 metric 100")
    daemon.expect(Route(PREFIX, (UP0,)))
    daemon.ns.ip("-6 route add fd00:99::/64 via fe80::2 dev uplink1 metric 300")
    daemon.expect_quiet()
    daemon.ns.ip("-6 route del fd00:99::/64 via fe80::1 dev uplink0 metric 100")
    daemon.expect(Route(PREFIX, (UP1,)))
    # A commit is counted when on_change returns, which is after the data plane holds its routes.
    wait_for(lambda: daemon.sync.stats()["commits"] >= 3, WAIT_S, "the third commit counted")
    daemon.expect_quiet()
    stats = daemon.sync.stats()  # the empty table at start was committed by the controller already
    assert stats["commits"] == 3 and stats["events"] >= 4 and stats["commit_failures"] == 0
    assert stats["latency_us"]["samples"] == 3 and stats["latency_us"]["max"] < 1_000_000


def test_a_missing_namespace_is_a_start_error():
    sync = NetlinkRouteSync(UPLINKS, lambda routes: None, "of-test-no-such-namespace")
    with pytest.raises(RouteSyncError, match="no network namespace 'of-test-no-such-namespace'"):
        sync.start()


def test_routes_for_from_decoded_tables():
    """The policy alone, on tables as the kernel would report them."""
    gw1, gw2 = A("fe80::1").packed, A("fe80::2").packed

    def route(prefix: str, *paths: Path, metric: int = 1024) -> KernelRoute:
        net = N(prefix)
        return KernelRoute(metric, None, paths, (net.network_address.packed, net.prefixlen))
    tables = KernelTables(
        links={1: Link("uplink0", True), 2: Link("uplink1", False), 3: Link("eth0", True)},
        neighbours={(1, gw1): Neighbour(MAC1, 0x80), (2, gw2): Neighbour(MAC2, 0x02)},
        nexthops={},
        routes=RouteIndex([
            route("fd00:99::/64", Path(1, gw1), Path(2, gw2), Path(3, gw1)),  # uplink1 lost its carrier
            route("fd00:99::/64", Path(2, gw2), metric=2048),  # a higher metric loses
            route("fd00:1::/64", Path(1, gw2)),  # no neighbour entry for this gateway on uplink0
            route("fd00:2::/64", Path(3, gw1)),  # not an uplink: the shorter prefix below answers
            route("fd00::/16", Path(2, gw2)),
            route("fd00:3::/64", Path(1, gw1)),  # the answer to no address asked about
        ]))
    asked = (A("fd00:99::1"), A("fd00:99::2"), A("fd00:1::9"), A("fd00:2::1"), A("fd01::1"))
    assert routes_for(tables, UPLINKS, asked) == (
        Route(N("fd00::/16"), (hop("uplink1", "fe80::2", MAC2, up=False),)),
        Route(N("fd00:1::/64"), (hop("uplink0", "fe80::2", up=False),)),
        Route(PREFIX, (UP0, hop("uplink1", "fe80::2", MAC2, up=False))),
    )


def test_the_daemon_commits_host_routes_and_ctl_shows_them(daemon):
    """serve() with --route-source netlink --netns: kernel routes reach the data plane."""
    sockdir = tempfile.mkdtemp(prefix="of-rs-")
    path = os.path.join(sockdir, "s.sock")
    config = load_config(None, {"underlay_addr": "fd00:1::1", "uplink": ("uplink0=net_null0", "uplink1=net_null1"),
                                "route_source": "netlink", "netns": daemon.ns.name, "control_socket": path})
    config = dataclasses.replace(config, v2b=(V2B(ipaddress.ip_network("0.0.0.0/0"), (Tep(A("fd00:99::1")),)),))
    dp, stop = FakeDataplane(config.ports), threading.Event()
    runner = threading.Thread(target=serve, args=(config, dp, stop))
    runner.start()
    try:
        neighbours(daemon.ns)
        daemon.ns.ip("-6 route replace fd00:99::/64 nexthop via fe80::1 dev uplink0 nexthop via fe80::2 dev uplink1")
        deadline = time.monotonic() + WAIT_S
        while (dp.state is None or dp.state.routes != (Route(PREFIX, (UP0, UP1)),)) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert dp.state.routes == (Route(PREFIX, (UP0, UP1)),)
        with ControlClient(path) as c:
            assert [h["uplink"] for h in c.call("routes")[0]["nexthops"]] == ["uplink0", "uplink1"]
            sync = c.call("stats")["route_sync"]
            assert sync["source"] == "netlink" and sync["commit_failures"] == 0
    finally:
        stop.set()
        runner.join(10)
        shutil.rmtree(sockdir, ignore_errors=True)


def test_a_refused_commit_is_retried_counted_and_logged_once(daemon, capsys):
    """No later event is needed: route sync tries again by itself, with backoff."""
    neighbours(daemon.ns)
    daemon.dataplane.refuse_commits = "tables full"
    daemon.ns.ip("-6 route replace fd00:99::/64 nexthop via fe80::1 dev uplink0 nexthop via fe80::2 dev uplink1")
    deadline = time.monotonic() + WAIT_S
    while daemon.sync.stats()["commit_failures"] < 3:
        assert time.monotonic() < deadline, f"route sync stopped trying: {daemon.sync.stats()}"
        time.sleep(0.01)
    assert daemon.dataplane.state.routes == ()
    daemon.dataplane.refuse_commits = ""
    daemon.expect(Route(PREFIX, (UP0, UP1)))
    err = capsys.readouterr().err
    assert err.count("route sync: routes not applied: tables full") == 1, err
    assert re.search(r"route sync: routes applied after [3-9]\d* refused commits", err), err
    failures = daemon.sync.stats()["commit_failures"]
    daemon.ns.ip("-6 route del fd00:99::/64 via fe80::2 dev uplink1")  # a later event still goes in
    daemon.expect(Route(PREFIX, (UP0,)))
    assert daemon.sync.stats()["commit_failures"] == failures


def test_a_withdrawn_path_leaves_the_data_plane_under_a_large_host_table(netns, eal, tmp_path):
    """Issue #10's report: fd00:99::/64 over both uplinks, then 2,000 more two-path routes; when one
    path of fd00:99::/64 is withdrawn, the data plane must stop using it. The real data plane's
    id space (1,023 nexthops) cannot hold every host route, only those to the TEP."""
    from opte_fast.controlplane.dataplane import Dataplane, DataplaneOptions

    sockdir = tempfile.mkdtemp(prefix="of-rs-")
    path = os.path.join(sockdir, "s.sock")
    config = load_config(None, {"underlay_addr": "fd00:1::1", "uplink": ("uplink0=ring", "uplink1=ring"),
                                "route_source": "netlink", "netns": netns.name, "control_socket": path,
                                "follow_link": False})  # the ring ports are never started: links down
    config = dataclasses.replace(config, v2b=(V2B(ipaddress.ip_network("0.0.0.0/0"), (Tep(A("fd00:99::1")),)),))
    dp = Dataplane(DataplaneOptions(underlay_addr=A("fd00:1::1"), flow_capacity=4096, n_mbufs=4095))
    stop = threading.Event()
    runner = threading.Thread(target=serve, args=(config, dp, stop))
    try:
        for name in UPLINKS:
            dp.add_ring_port(name, "uplink")
        neighbours(netns)
        netns.ip("-6 route replace fd00:99::/64 nexthop via fe80::1 dev uplink0 nexthop via fe80::2 dev uplink1")
        runner.start()
        deadline = time.monotonic() + 10
        while not os.path.exists(path):
            assert runner.is_alive() and time.monotonic() < deadline, "serve() did not come up"
            time.sleep(0.01)
        batch = tmp_path / "routes.batch"
        batch.write_text("".join(f"route add fd01:{i:x}::/64 nexthop via fe80::1 dev uplink0 "
                                 f"nexthop via fe80::2 dev uplink1\n" for i in range(2000)))
        netns.ip(f"-6 -batch {batch}")
        netns.ip("-6 route del fd00:99::/64 via fe80::2 dev uplink1")

        def nexthops() -> list:
            with ControlClient(path) as c:
                return [(h["prefix"], h["uplink"], h["gateway"], h["up"]) for h in c.call("nexthops")]
        deadline = time.monotonic() + 10
        while (got := nexthops()) != [("fd00:99::/64", "uplink0", "fe80::1", True)]:
            assert time.monotonic() < deadline, f"the data plane holds nexthops {got[:4]} (of {len(got)})"
            time.sleep(0.05)
        with ControlClient(path) as c:
            sync = c.call("stats")["route_sync"]
        assert sync.get("commit_failures") == 0 and sync.get("host_routes", 0) > 2001, sync
    finally:
        stop.set()
        if runner.is_alive():
            runner.join(10)
        dp.close()
        shutil.rmtree(sockdir, ignore_errors=True)



def test_a_path_on_a_link_that_is_up_is_up_whatever_the_kernels_flags_say():
    """RTNH_F_DEAD and RTNH_F_LINKDOWN mirror the path's link, but after carrier comes back the
    kernel clears them by walking the table, with no event of its own; with 10,000 routes a
    re-read after the link event often finds them still set. The link table decides instead."""
    def attr(kind: int, payload: bytes) -> bytes:
        return struct.pack("HH", 4 + len(payload), kind) + payload + bytes(-len(payload) % 4)

    def path(ifindex: int, flags: int, gateway: str) -> bytes:
        gw = attr(5, A(gateway).packed)  # RTA_GATEWAY
        return struct.pack("HBBi", 8 + len(gw), flags, 0, ifindex) + gw
    message = (struct.pack("BBBBBBBBI", socket.AF_INET6, 64, 0, 0, 254, 3, 0, 1, 0)  # main table, unicast
               + attr(1, PREFIX.network_address.packed)  # RTA_DST
               + attr(9, path(1, 0, "fe80::1") + path(2, 0x11, "fe80::2")))  # RTA_MULTIPATH: dead, link down
    route = parse_route(message)
    links = {1: Link("uplink0", True), 2: Link("uplink1", True)}
    neighbours = {(1, A("fe80::1").packed): Neighbour(MAC1, 0x80), (2, A("fe80::2").packed): Neighbour(MAC2, 0x80)}
    tables = KernelTables(links, neighbours, {}, RouteIndex([route]))
    assert routes_for(tables, UPLINKS, [A("fd00:99::1")]) == (Route(PREFIX, (UP0, UP1)),)
    tables.links[2] = Link("uplink1", False)
    assert routes_for(tables, UPLINKS, [A("fd00:99::1")]) == (Route(PREFIX, (UP0, dataclasses.replace(UP1, up=False))),)
