"""`opte-fast ctl` against the real data plane on ring ports: every operation as a table and as
JSON, in the shapes the data plane really gives (tests/test_control.py has the socket and the
protocol on their own)."""
from __future__ import annotations

import io
import ipaddress
import json
import os
import re
import shutil
import tempfile
import threading
import time

import pytest
from click.testing import CliRunner
from scapy.all import IP, UDP, Ether, raw

from opte_fast.api.client import ControlClient
from opte_fast.api.ctl import ctl
from opte_fast.api.server import ControlAPI, ControlServer
from opte_fast.controlplane import events
from opte_fast.controlplane.controller import Controller
from opte_fast.controlplane.links import Links
from opte_fast.controlplane.routesync import NoRoutes
from opte_fast.controlplane.state import V2B, V2P, DesiredState, GuestPort, Nexthop, Route, Tep, Underlay, mac_bytes
from opte_fast.tools.demo import guest_frame
from tests.support.flowhash import flow_hash, nexthop_bucket, tep_bucket
from tests.support.geneve import BOUNDARY_MAC, encapsulate
from tests.support.sled import GATEWAY_MAC, GUEST_IP4, GUEST_IP6, GUEST_MAC, GUEST_VNI, ring_sled

A = ipaddress.ip_address
N = ipaddress.ip_network
ROUTE = Route(N("fd00:99::/64"), (Nexthop("uplink0", A("fe80::1"), "a8:40:25:00:00:01"),
                                  Nexthop("uplink1", A("fe80::2"), "a8:40:25:00:00:02")))
STATE = DesiredState(Underlay(A("fd00:1::1")),
                     guests=(GuestPort("guest0", GUEST_VNI, GUEST_MAC, GATEWAY_MAC, GUEST_IP4, GUEST_IP6,
                                       dns_servers=(A("10.0.0.53"), A("fd77::53")), domain="vpc.example",
                                       mtu_bytes=9000),),
                     v2b=(V2B(N("0.0.0.0/0"), (Tep(A("fd00:99::1")), Tep(A("fd00:99::2")))),), routes=(ROUTE,))
UPLINKS = ("uplink0", "uplink1")
# from the guest's MAC with EtherType 0: the named drop not_ip
NOT_IP = b"\x00" * 6 + mac_bytes(GUEST_MAC) + b"\x00" * 8


class Live:
    """The daemon's stack (controlplane/daemon.py) over the real data plane: links, controller and
    control server over ring ports guest0, uplink0, uplink1 with the tables of STATE."""

    def __init__(self, sled, path: str):
        self.sled = sled
        self.path = path
        self.log = io.StringIO()  # the daemon's event lines, apart from ctl's output
        events.configure(stream=self.log)
        self.links = Links(sled.dp, UPLINKS, log=self.log)
        self.controller = Controller(self.links, STATE, UPLINKS)
        self.links.start()
        self.server = ControlServer(path, ControlAPI(self.controller, self.links, NoRoutes()))
        self.server.start()

    def stop(self) -> None:
        self.server.stop()
        self.links.stop()
        events.configure()

    def ctl(self, *args: str):
        return CliRunner().invoke(ctl, ["--socket", self.path, *args], catch_exceptions=False)

    def json(self, *args: str):
        result = self.ctl("--json", *args)
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    def call(self, op: str, **args):
        with ControlClient(self.path) as c:
            return c.call(op, **args)


@pytest.fixture
def live(eal):
    sockdir = tempfile.mkdtemp(prefix="of-ctl-")  # short: sun_path is 108 bytes
    try:
        with ring_sled(STATE) as sled:
            r = Live(sled, os.path.join(sockdir, "opte-fast.sock"))
            try:
                yield r
            finally:
                r.stop()
    finally:
        shutil.rmtree(sockdir, ignore_errors=True)


def test_stats(live):
    live.sled.send("guest0", [guest_frame(i) for i in range(3)] + [NOT_IP] * 2)
    result = live.ctl("stats")
    assert result.exit_code == 0
    assert "tables: 1 guests, 0 v2p, 1 v2b, 1 routes; route sync: source none" in result.output
    assert result.output.endswith("COUNTER            VALUE\n"
                                  "rx_guest_packets       5\n"
                                  "tx_uplink_packets      3\n"
                                  "flows_created          3\n"
                                  "not_ip                 2\n")
    ports = [line.split() for line in result.output.split("\n\n")[1].splitlines()]
    assert ports[0][:4] == ["NAME", "ETHDEV", "PORT_ID", "ROLE"] and ports[0][-4:-2] == ["DEVARGS", "LINK"]
    assert [p[:1] + p[2:4] + p[-4:-2] for p in ports[1:]] == [["guest0", "0", "guest", "ring", "up"],
                                                              ["uplink0", "1", "uplink", "ring", "up"],
                                                              ["uplink1", "2", "uplink", "ring", "up"]]
    assert [p[1] for p in ports[1:]] == [p["ethdev"] for p in live.sled.dp.ports()]  # the ring ethdevs' names
    # One worker, lcore 1, that received the 5 frames and holds the 3 flows: busy some of its polls.
    workers = [line.split() for line in result.output.split("\n\n")[2].splitlines()]
    assert workers[0] == ["LCORE", "BUSY", "POLLS", "BUSY_POLLS", "RX_PACKETS", "FLOWS"]
    lcore, busy, polls, busy_polls, rx, flows = workers[1]
    assert (lcore, rx, flows) == ("1", "5", "3/65536") and 1 <= int(busy_polls) < int(polls)
    assert busy == f"{100 * int(busy_polls) / int(polls):.1f}%"
    data = live.json("stats")
    assert data["counters"]["rx_guest_packets"] == 5 and data["counters"]["rx_uplink_packets"] == 0
    assert [p["name"] for p in data["ports"]] == ["guest0", "uplink0", "uplink1"]
    assert data["route_sync"] == {"source": "none"}


def test_flows_with_limit_and_match(live):
    live.sled.send("guest0", [guest_frame(i) for i in range(8)])  # to 198.18.0.1-8, spread over both uplinks
    flows = live.json("flows")
    assert sorted(f["dst"] for f in flows) == [f"198.18.0.{i}" for i in range(1, 9)]
    assert len(live.json("flows", "--limit", "2")) == 2
    by_uplink1 = sorted(f["dst"] for f in flows if f["uplink"] == "uplink1")
    assert 0 < len(by_uplink1) < 8
    assert sorted(f["dst"] for f in live.json("flows", "--match", "uplink=uplink1")) == by_uplink1
    # a nested field by its dotted name; addresses compare as addresses
    assert sorted(f["dst"] for f in live.json("flows", "--match", "nexthop.gateway=fe80:0:0::2")) == by_uplink1
    table = live.ctl("flows", "--match", "dst=198.18.0.1", "--match", "dst_port=443").output.splitlines()
    assert table[0].split() == ["VNI", "PROTO", "SRC", "DST", "SRC_PORT", "DST_PORT", "TEP", "NEXTHOP.UPLINK", "GATEWAY",
                                "UPLINK", "UDP_SPORT", "HASH", "LCORE", "PACKETS", "BYTES", "IDLE_MS"]
    assert len(table) == 2 and table[1].split()[:6] == ["7", "17", "10.0.0.2", "198.18.0.1", "32768", "443"]
    bad = live.ctl("flows", "--match", "colour=red")
    assert bad.exit_code == 2 and bad.output.startswith("opte-fast ctl: flows: no flow field 'colour' (expected one of ")
    assert live.ctl("flows", "--match", "nonsense").output == \
        "opte-fast ctl: --match: expected FIELD=VALUE, got 'nonsense'\n"


def test_marking_a_tep_no_entry_names_warns_that_nothing_moved(live):
    result = CliRunner().invoke(ctl, ["--socket", live.path, "tep", "down", "fd00:dead::1"])
    assert result.exit_code == 0
    assert result.stdout == "fd00:dead::1 down in no V2B entry yet (kept for later entries)\n"
    assert result.stderr == ("opte-fast ctl: warning: no V2B entry names fd00:dead::1, so no flow moved; "
                             "it is kept down for V2B entries set later\n")
    assert live.json("tep", "down", "fd00:dead::1")["warning"].startswith("no V2B entry names fd00:dead::1")
    assert "warning" not in live.json("tep", "down", "fd00:99::2")


def test_routes(live):
    assert live.ctl("routes").output == (
        "PREFIX        UPLINK   GATEWAY  MAC                UP\n"
        "fd00:99::/64  uplink0  fe80::1  a8:40:25:00:00:01  up\n"
        "              uplink1  fe80::2  a8:40:25:00:00:02  up\n")
    assert live.json("routes") == [
        {"prefix": "fd00:99::/64", "nexthops": [
            {"uplink": "uplink0", "gateway": "fe80::1", "mac": "a8:40:25:00:00:01", "up": True},
            {"uplink": "uplink1", "gateway": "fe80::2", "mac": "a8:40:25:00:00:02", "up": True}]}]


def test_nexthops_teps_and_buckets(live):
    assert live.ctl("nexthops").output.splitlines()[:2] == [
        "ID  PREFIX        UPLINK   GATEWAY  MAC                UP  FLOWS  PACKETS  BYTES",
        " 1  fd00:99::/64  uplink0  fe80::1  a8:40:25:00:00:01  up      0        0      0"]
    assert [t["addr"] for t in live.json("teps")] == ["fd00:99::1", "fd00:99::2"]
    live.call("tep.down", addr="fd00:99::2")
    assert [(t["addr"], t["up"]) for t in live.json("teps")] == [("fd00:99::1", True), ("fd00:99::2", False)]
    buckets = live.json("buckets")
    assert buckets[0] == {"kind": "tep", "prefix": "0.0.0.0/0", "buckets": 4096,
                          "members": [{"id": 1, "member": "fd00:99::1", "buckets": 4096}]}
    assert live.ctl("buckets").output == (
        "KIND     PREFIX        BUCKETS  ID  MEMBER           MEMBERS.BUCKETS\n"
        "tep      0.0.0.0/0        4096   1  fd00:99::1                  4096\n"
        "nexthop  fd00:99::/64     4096   1  uplink0 fe80::1             2048\n"
        "                                 2  uplink1 fe80::2             2048\n")


def test_v2b_set_clear_dump(live):
    assert live.ctl("v2b", "set", "10.0.0.0/8", "fd00:99::3", "fd00:99::4", "--vni", "100").output == "changed\n"
    assert live.ctl("v2b", "set", "10.0.0.0/8", "fd00:99::3", "fd00:99::4", "--vni", "100").output == \
        "unchanged (already so)\n"
    assert live.controller.state.v2b[1] == V2B(N("10.0.0.0/8"), (Tep(A("fd00:99::3"), 100), Tep(A("fd00:99::4"), 100)))
    assert [(t["prefix"], t["addr"], t["vni"]) for t in live.json("teps")][2:] == [
        ("10.0.0.0/8", "fd00:99::3", 100), ("10.0.0.0/8", "fd00:99::4", 100)]
    assert live.ctl("v2b", "dump").output == (
        "PREFIX      ADDR        VNI  UP\n"
        "0.0.0.0/0   fd00:99::1   99  up\n"
        "            fd00:99::2   99  up\n"
        "10.0.0.0/8  fd00:99::3  100  up\n"
        "            fd00:99::4  100  up\n")
    assert live.ctl("v2b", "clear", "10.0.0.0/8").output == "changed\n"
    again = live.ctl("v2b", "clear", "10.0.0.0/8")
    assert again.exit_code == 2 and again.output == "opte-fast ctl: no V2B entry for 10.0.0.0/8\n"
    assert live.json("v2b", "dump") == [
        {"prefix": "0.0.0.0/0", "teps": [{"addr": "fd00:99::1", "vni": 99, "up": True},
                                         {"addr": "fd00:99::2", "vni": 99, "up": True}]}]


def test_v2p_set_clear_dump(live):
    assert live.ctl("v2p", "set", "7", "10.0.0.6", "fd00:2::1", "A8-40-25-F0-00-02").output == "changed\n"
    assert live.controller.state.v2p == (V2P(7, A("10.0.0.6"), A("fd00:2::1"), "a8:40:25:f0:00:02"),)
    assert live.ctl("v2p", "dump").output == ("VNI  IP        UNDERLAY   MAC\n"
                                              "  7  10.0.0.6  fd00:2::1  a8:40:25:f0:00:02\n")
    assert live.json("v2p", "clear", "7", "10.0.0.6") == {"changed": True}
    assert live.json("v2p", "dump") == []
    bad = live.ctl("v2p", "set", "7", "10.0.0.6", "fd00:2::1", "ff:ff:ff:ff:ff:ff")
    assert bad.exit_code == 2 and "bad argument 'mac': expected a unicast MAC address" in bad.output


def test_tep_down_and_up(live):
    commits = live.sled.dp.table_swaps()
    assert live.ctl("tep", "down", "fd00:99::2").output == "fd00:99::2 down in 1 V2B entries\n"
    assert live.controller.state.v2b[0].teps[1] == Tep(A("fd00:99::2"), up=False)
    # a TEP marked down stays down in entries set later
    live.call("v2b.set", prefix="10.0.0.0/8", teps=["fd00:99::2"])
    assert live.controller.state.v2b[1].teps == (Tep(A("fd00:99::2"), up=False),)
    assert [t["up"] for t in live.json("teps") if t["addr"] == "fd00:99::2"] == [False, False]
    assert live.json("tep", "up", "fd00:99::2") == {"addr": "fd00:99::2", "up": True, "entries": 2}
    assert all(t["up"] for t in live.json("teps"))
    assert live.sled.dp.table_swaps() == commits + 3
    assert live.ctl("tep", "up", "fd00:99::2").output == "fd00:99::2 up in 2 V2B entries\n"
    assert live.sled.dp.table_swaps() == commits + 3  # nothing changed, nothing committed


def test_port_list(live):
    out = live.ctl("port", "list").output.splitlines()
    assert out[0].split() == ["NAME", "ETHDEV", "PORT_ID", "ROLE", "MAC", "RX_PACKETS", "TX_PACKETS", "RX_BYTES",
                              "TX_BYTES", "RX_MISSED", "RX_ERRORS", "TX_ERRORS", "DEVARGS", "LINK", "LINK_CHANGES",
                              "LINK_REACTION_US", "IPV4", "ROUTER", "IPV6", "RA_PREFIX", "DNS", "DOMAIN", "LEASE_S", "MTU"]
    assert out[1].split()[-8:] == ["10.0.0.2/24", "10.0.0.1", "fd77::2", "-", "10.0.0.53,fd77::53", "vpc.example",
                                   "86400", "9000"]
    assert out[2].split()[:4] == ["uplink0", live.sled.dp.ports()[1]["ethdev"], "1", "uplink"]
    assert out[2].split()[-12:-8] == ["ring", "up", "0", "-"]
    ports = live.json("port", "list")
    assert [p["role"] for p in ports] == ["guest", "uplink", "uplink"]
    # what the guest port hands out by DHCP and router advertisements; an uplink hands out nothing
    assert ports[0]["hands_out"] == {"ipv4": "10.0.0.2/24", "router": "10.0.0.1", "ipv6": "fd77::2", "ra_prefix": None,
                                     "dns": ["10.0.0.53", "fd77::53"], "domain": "vpc.example", "lease_s": 86400,
                                     "mtu": 9000}
    assert "hands_out" not in ports[1]


def test_route_set_and_clear_by_hand(live):
    out = live.ctl("route", "set", "fd00:98::/64", "--nexthop", "uplink1", "fe80::2", "a8:40:25:00:00:02")
    assert out.output == "changed\n"
    assert live.controller.state.routes[1] == Route(N("fd00:98::/64"), (Nexthop("uplink1", A("fe80::2"),
                                                                                 "a8:40:25:00:00:02"),))
    assert [n["prefix"] for n in live.json("nexthops")] == ["fd00:99::/64", "fd00:99::/64", "fd00:98::/64"]
    assert live.ctl("route", "clear", "fd00:98::/64").output == "changed\n"
    assert live.controller.state.routes == (ROUTE,)
    assert [n["prefix"] for n in live.json("nexthops")] == ["fd00:99::/64", "fd00:99::/64"]


def test_stats_say_what_the_memory_holds(live):
    line = live.ctl("stats").output.splitlines()[1]
    assert line.startswith("memory holds: 65,536 flows per worker, 1,024 V2B and 1,024 route prefixes, ")
    memory = live.json("stats")["memory"]
    assert memory["capacity"]["flows_per_worker"] == 65536
    assert f"{memory['capacity']['v2p_entries']:,} V2P entries" in line
    assert memory["bytes"]["prefix"] > 128 << 20 and memory["bytes"]["free"] < memory["bytes"]["heap"]


def test_a_v2b_prefix_past_the_capacity_is_refused_and_nothing_changes(eal):
    sockdir = tempfile.mkdtemp(prefix="of-ctl-")
    try:
        with ring_sled(STATE, prefix_capacity=16) as sled:
            r = Live(sled, os.path.join(sockdir, "opte-fast.sock"))
            try:
                for i in range(15):  # STATE has one: the table is full after these
                    assert r.ctl("v2b", "set", f"198.51.{i}.0/24", "fd00:99::3").exit_code == 0
                refused = r.ctl("v2b", "set", "198.51.99.0/24", "fd00:99::3")
                assert (refused.exit_code, refused.output) == (
                    2, "opte-fast ctl: 17 V2B prefixes, more than --prefix-capacity 16 holds\n")
                assert len(r.controller.state.v2b) == 16
                assert "198.51.99.0/24" not in r.ctl("v2b", "dump").output
                sled.send("guest0", [guest_frame(1)])
                assert len(sled.recv("uplink0") + sled.recv("uplink1")) == 1
            finally:
                r.stop()
    finally:
        shutil.rmtree(sockdir, ignore_errors=True)


class Sender:
    """Sends `frames` to `port` every 50 ms until stopped: traffic for a command that waits for it."""

    def __init__(self, live, frames: list[bytes], port: str = "guest0"):
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(live, frames, port), daemon=True)

    def _run(self, live, frames: list[bytes], port: str) -> None:
        while not self.stop.wait(0.05):
            live.sled.send(port, frames)

    def __enter__(self) -> Sender:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()


def test_trace_a_pinned_flow_and_a_dropped_destination(live):
    live.sled.send("guest0", [guest_frame(0)])  # the flow exists: every traced frame of it is a hit
    flow = live.json("flows")[0]
    h, hop = flow["hash"], f"{flow['nexthop']['gateway']} dev {flow['uplink']}"
    assert h == flow_hash(GUEST_VNI, 17, GUEST_IP4, "198.18.0.1", 32768, 443)
    with Sender(live, [guest_frame(0)]):
        out = live.ctl("trace", "--match", "dst=198.18.0.1,proto=udp,port=443", "--count", "2").output
    line = (f"lcore 1  out  udp 10.0.0.2:32768 > 198.18.0.1:443 vni 7  flow hit  v2b 0.0.0.0/0 bucket {tep_bucket(h)} -> "
            f"{flow['tep']}  route fd00:99::/64 bucket "
            f"{nexthop_bucket(h)} -> {hop}  => pinned: tep {flow['tep']} via {hop}")
    assert out == f"{line}\n{line}\n"
    # No V2B entry covers an IPv6 destination here: each frame is a miss, dropped for that reason.
    v6 = mac_bytes(GATEWAY_MAC) + mac_bytes(GUEST_MAC) + b"\x86\xdd" + \
        bytes.fromhex("6000000000081140") + GUEST_IP6.packed + ipaddress.IPv6Address("2001:db8::1").packed + \
        bytes.fromhex("0400003500080000")
    with Sender(live, [v6]):
        got = live.json("trace", "--match", "dst=2001:db8::1", "--count", "1")
    assert got["complete"] and [(r["flow_table"], r["matched"], r["decision"], r["drop"]) for r in got["records"]] == [
        ("miss", "none", "dropped", "no_v2b_match")]
    short = live.ctl("trace", "--match", "dst=192.0.2.99", "--count", "1", "--timeout-s", "0.2")
    assert short.exit_code == 0 and short.output == "(0 frames matched before the trace timed out)\n"
    first = threading.Thread(target=live.ctl, args=("trace", "--match", "dst=192.0.2.99", "--timeout-s", "2"))
    first.start()
    time.sleep(0.5)  # the first has armed its trace
    second = live.ctl("trace", "--match", "dst=192.0.2.98")
    first.join()
    assert (second.exit_code, second.output) == (2, "opte-fast ctl: a trace is running already (one at a time)\n")
    bad = live.ctl("trace", "--match", "dst=192.0.2.99,colour=red")
    assert (bad.exit_code, bad.output) == (2, "opte-fast ctl: --match: expected [dir=in|out,][src=IP,][dst=IP,]"
                                              "[proto=P,][port=N], got 'dst=192.0.2.99,colour=red'\n")
    bad = live.ctl("trace", "--match", "dir=up")
    assert (bad.exit_code, bad.output) == (2, "opte-fast ctl: trace: bad argument 'match': dir: expected in, out or any, "
                                              "got 'up'\n")


def test_trace_replies_coming_in(live):
    """A reply from boundary services, matched on its inner source: delivered to the guest port."""
    inner = Ether(src=BOUNDARY_MAC, dst=GUEST_MAC) / IP(src="198.18.0.1", dst=str(GUEST_IP4)) / UDP(sport=443,
                                                                                                  dport=32768)
    reply = raw(encapsulate(inner, eth_src="a8:40:25:00:00:01", eth_dst="02:00:00:00:ff:00", src="fd00:99::2",
                            dst="fd00:1::1", vni=GUEST_VNI))
    with Sender(live, [reply], port="uplink1"):
        out = live.ctl("trace", "--match", "dir=in,src=198.18.0.1,proto=udp", "--count", "1").output
    assert out == (f"lcore 1  in   udp 198.18.0.1:443 > {GUEST_IP4}:32768 vni {GUEST_VNI}  from fd00:99::2 on uplink1  "
                   f"=> delivered: guest guest0 (vni {GUEST_VNI}, mac {GUEST_MAC})\n")


def test_top_shows_rates_busy_share_drops_and_fill(live):
    with Sender(live, [guest_frame(i) for i in range(4)] + [NOT_IP]):
        out = live.ctl("top", "--iterations", "2", "--interval-s", "0.5").output
    views = out.split("\n---\n")  # not a terminal: each view follows the last, after a line of dashes
    assert len(views) == 2
    for v in views:
        head, workers, ports, hops, moves, drops = v.split("\n\n")
        assert re.fullmatch(r"up \d+ s, every 0\.\d s; flows 4 of 65,536 \(0\.0% full\)", head), head
        assert workers.splitlines()[0].split() == ["LCORE", "BUSY", "RX_PPS", "FLOWS", "CAPACITY"]
        assert ports.splitlines()[0].split() == ["PORT", "ROLE", "RX_PPS", "TX_PPS", "RX_MBPS", "TX_MBPS", "MISSED_PS"]
        assert [line.split()[:2] for line in ports.splitlines()[1:]] == [["guest0", "guest"], ["uplink0", "uplink"],
                                                                         ["uplink1", "uplink"]]
        assert [line.split()[0] for line in hops.splitlines()[1:]] == ["fd00:99::/64"] * 2
        assert moves == "flows moved: 0/s migrated, 0/s rebalanced, 0/s rerouted"
        assert drops.splitlines()[0].split() == ["DROP", "PER_S", "TOTAL"] and drops.splitlines()[1].split()[0] == "not_ip"


def test_capture_needs_an_instance_on_hugepages(live):
    assert live.json("instance") == {"pid": os.getpid(), "file_prefix": None, "hugepages": False, "capturable": False}
    out = live.ctl("capture", "--port", "uplink0", "-w", "/tmp/never.pcapng")
    assert (out.exit_code, out.output) == (2, "opte-fast ctl: capture: the instance runs without hugepages, and "
                                              "DPDK's secondary processes (dpdk-dumpcap) cannot attach to such a "
                                              "process; restart it with --hugepages\n")
