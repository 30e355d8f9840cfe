"""opte-fast end to end: a guest in a namespace, the real data plane in this process, two Open vSwitch
boundary-services switches (anycast TEP) and an internet host.

    guest ns            pytest process (DPDK)            switch ns i (OVS)              internet ns
    tap (guest IP) ──net_tap── guest0 │ uplink<i> ──net_tap── tap<i> ∈ br-ul ... br-tun ── up<i> ── host

The lab comes from `boundary_lab((TEP, TEP))`; its sled-side veths are replaced by opte-fast's
uplink taps: in each switch namespace `ul0` is taken out of br-ul and deleted (with its sled end),
and the tap, moved into the switch namespace after the data plane started it, takes its place.
The taps carry the MACs the lab seeded into OVS as the sled's (`net_tap...,mac=`).
"""
from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import secrets
import shutil
import socket
import struct
import sys
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from opte_fast.dataplane import Dataplane, DataplaneOptions
from opte_fast.state import V2B, DesiredState, GuestPort, Nexthop, Route, Tep, Underlay
from tests.support.geneve import BOUNDARY_VNI, GENEVE_PORT
from tests.support.netns import Netns, namespace, run
from tests.support.ovs import TEP, BoundaryLab, Guest, boundary_lab

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="namespaces, taps and Open vSwitch need root")
needs_tools = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("ovs-vsctl", "ovsdb-server", "tshark", "curl")),
    reason="needs Open vSwitch (ovs-vsctl, ovsdb-server), tshark and curl")

GATEWAY_IP = "10.0.0.1"
GUEST = Guest()
GUEST_GW_MAC = "a8:40:25:00:00:01"  # the virtual gateway the guest sees
HTTP_PORT = 8080
FILE_SIZE = 4 << 20
CONNECTIONS = 8
RATE = "1000k"  # per connection: each transfer lasts ~4 s, so the failover lands mid-transfer
# `python3 -m http.server` calls getfqdn() on its address at bind: in the internet namespace the
# resolver's queries go down the default route into the lab and time out. This one does not.
HTTP_SERVER = """
import functools, socketserver, sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
class Server(ThreadingHTTPServer):
    def server_bind(self):
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]
handler = functools.partial(SimpleHTTPRequestHandler, directory=sys.argv[3])
Server((sys.argv[1], int(sys.argv[2])), handler).serve_forever()
"""
TEP_PREFIX = ipaddress.ip_network("fd00:99::/64")


def tap_devargs(iface: str) -> str:
    """The DPDK device name must be unique in the process; `iface` already is."""
    return f"net_tap_{iface},iface={iface}"


@dataclass
class Sled:
    dp: Dataplane
    lab: BoundaryLab
    guest_ns: Netns
    guest_if: str
    uplink_ifs: list[str]   # each in lab.uplinks[i].switch.ns
    nexthops: list[Nexthop]

    def state(self, nexthops: list[Nexthop]) -> DesiredState:
        teps = (Tep(ipaddress.IPv6Address(TEP)),)
        return DesiredState(
            underlay=Underlay(ipaddress.IPv6Address(self.lab.sled_address)),
            guests=(GuestPort("guest0", GUEST.vni, GUEST.mac, GUEST_GW_MAC,
                              ipaddress.IPv4Address(GUEST.ipv4), ipaddress.IPv6Address(GUEST.ipv6)),),
            v2b=(V2B(ipaddress.ip_network("0.0.0.0/0"), teps), V2B(ipaddress.ip_network("::/0"), teps)),
            routes=(Route(TEP_PREFIX, tuple(nexthops)),),
        )


@contextlib.contextmanager
def e2e_sled() -> Iterator[Sled]:
    tag = secrets.token_hex(3)
    with boundary_lab((TEP, TEP), guests=(GUEST,)) as lab, namespace("guest") as guest_ns:
        guest_if = f"oftg{tag}"
        uplink_ifs = [f"oftu{i}{tag}" for i in range(len(lab.uplinks))]
        dp = Dataplane(DataplaneOptions(underlay_addr=ipaddress.IPv6Address(lab.sled_address),
                                        flow_capacity=4096, n_mbufs=8191))
        try:
            dp.add_port("guest0", f"{tap_devargs(guest_if)},mac={GUEST_GW_MAC}", "guest")
            nexthops = []
            for i, (link, ifname) in enumerate(zip(lab.uplinks, uplink_ifs)):
                dp.add_port(f"uplink{i}", f"{tap_devargs(ifname)},mac={link.mac}", "uplink")
                nexthops.append(Nexthop(f"uplink{i}", ipaddress.IPv6Address(f"fe80::{i + 1}"), link.nexthop_mac))
            sled = Sled(dp, lab, guest_ns, guest_if, uplink_ifs, nexthops)
            dp.commit(sled.state(nexthops))
            dp.start([1])
            # -- the uplink taps replace the lab's veths in br-ul ------------------------------
            for link, ifname in zip(lab.uplinks, uplink_ifs):
                sw = link.switch
                sw.vsctl("del-port", "br-ul", "ul0")
                sw.ns.ip("link", "del", "ul0")
                run(["ip", "link", "set", ifname, "netns", sw.ns.name])
                sw.ns.sysctl(**{f"net__ipv6__conf__{ifname}__disable_ipv6": 1})
                sw.ns.ip("link", "set", ifname, "mtu", "9000", "up")
                sw.vsctl("add-port", "br-ul", ifname)
                sw.appctl("tnl/neigh/set", "br-ul", lab.sled_address, link.mac)
            # -- the guest ---------------------------------------------------------------------
            run(["ip", "link", "set", guest_if, "netns", guest_ns.name])
            guest_ns.sysctl(**{f"net__ipv6__conf__{guest_if}__disable_ipv6": 1})
            guest_ns.ip("link", "set", guest_if, "address", GUEST.mac, "mtu", "1500", "up")
            guest_ns.add_address(guest_if, f"{GUEST.ipv4}/24")
            guest_ns.ip("route", "add", "default", "via", GATEWAY_IP, "dev", guest_if)
            guest_ns.ip("neigh", "replace", GATEWAY_IP, "lladdr", GUEST_GW_MAC, "dev", guest_if, "nud", "permanent")
            yield sled
        finally:
            dp.close()


def icmp_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def ping(ns: Netns, dst: str, count: int = 3, timeout: float = 3.0) -> list[int]:
    """ICMP echo from `ns` (no ping binary here): the sequence numbers answered."""
    answered = []
    with ns.open_socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        for seq in range(1, count + 1):
            body = struct.pack("!HH", 0x0fa5, seq) + b"opte-fast e2e ping" * 4
            header = struct.pack("!BBH", 8, 0, 0)
            sock.sendto(struct.pack("!BBH", 8, 0, icmp_checksum(header + body)) + body, (dst, 0))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                sock.settimeout(max(deadline - time.monotonic(), 0.01))
                try:
                    data, (src, _) = sock.recvfrom(65535)
                except TimeoutError:
                    break
                icmp = data[(data[0] & 0x0F) * 4:]
                if src == dst and icmp[0] == 0 and struct.unpack("!HH", icmp[4:8]) == (0x0fa5, seq):
                    answered.append(seq)
                    break
    return answered


def geneve_rows(pcap: Path) -> list[dict[str, str]]:
    fields = ["ipv6.src", "ipv6.dst", "udp.dstport", "geneve.vni", "ip.src", "ip.dst"]
    out = run(["tshark", "-r", str(pcap), "-d", f"udp.port=={GENEVE_PORT},geneve", "-Y", "geneve",
               "-T", "fields", "-E", "separator=|", *[a for f in fields for a in ("-e", f)]], timeout=60).stdout
    return [dict(zip(fields, line.split("|"))) for line in out.splitlines()]


def curl_flows(dp: Dataplane) -> dict[int, str]:
    """Guest source port → uplink, for the guest's TCP flows to the HTTP server."""
    return {f["src_port"]: f["uplink"] for f in dp.flows(10000)
            if f["proto"] == 6 and f["dst_port"] == HTTP_PORT and f["src"] == GUEST.ipv4}


@needs_root
@needs_tools
def test_guest_reaches_the_internet_through_two_ovs_switches_and_survives_losing_one(eal, tmp_path: Path) -> None:
    with e2e_sled() as sled:
        lab, dp = sled.lab, sled.dp
        inet = lab.internet

        # -- ping, with Geneve captured on uplink 0 for tshark --------------------------------
        lab.internet.route_via(inet.links[0])  # replies come back through switch 0 too
        dp.commit(sled.state([sled.nexthops[0]]))
        sw0 = lab.uplinks[0].switch.ns
        with sw0.capture(sled.uplink_ifs[0]) as capture:
            answered = ping(sled.guest_ns, inet.ipv4)
            time.sleep(0.2)
            pcap = tmp_path / "uplink0.pcap"
            capture.write_pcap(pcap)
        assert answered == [1, 2, 3], f"echo replies {answered}\n{dp.counters()}\n{lab.diagnostics()}"
        rows = geneve_rows(pcap)
        outbound = [r for r in rows if r["ipv6.dst"] == TEP]
        inbound = [r for r in rows if r["ipv6.dst"] == lab.sled_address]
        assert outbound and all(int(r["geneve.vni"], 0) == BOUNDARY_VNI and r["ip.src"] == GUEST.ipv4
                                for r in outbound), rows
        assert inbound and all(int(r["geneve.vni"], 0) == GUEST.vni and r["ip.dst"] == GUEST.ipv4
                               for r in inbound), rows

        # -- anycast: both uplinks, internet replies over both switches ------------------------
        dp.commit(sled.state(sled.nexthops))
        inet.route_via(*inet.links)
        served = Path(tempfile.mkdtemp(prefix="oft-e2e-www-"))
        server_log = open(tmp_path / "http.log", "wb")
        try:
            payload = os.urandom(FILE_SIZE)
            (served / "blob").write_bytes(payload)
            digest = hashlib.sha256(payload).hexdigest()
            server = inet.ns.popen(sys.executable, "-c", HTTP_SERVER, inet.ipv4, str(HTTP_PORT), str(served),
                                   stdout=server_log, stderr=server_log)
            deadline = time.monotonic() + 10
            while inet.ns.run("ss", "-Hltn", f"sport = :{HTTP_PORT}").stdout.strip() == "":
                assert server.poll() is None and time.monotonic() < deadline, \
                    f"http.server did not start: {(tmp_path / 'http.log').read_text()}"
                time.sleep(0.05)

            outputs = [served / f"got{i}" for i in range(CONNECTIONS)]
            curls = [sled.guest_ns.popen("curl", "-sS", "--fail", "--max-time", "60", "--limit-rate", RATE,
                                         "-o", str(out), f"http://{inet.ipv4}:{HTTP_PORT}/blob",
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                     for out in outputs]
            # wait until every connection has a flow and data is moving
            deadline = time.monotonic() + 10
            while len(before := curl_flows(dp)) < CONNECTIONS or sum(o.exists() and o.stat().st_size > 0
                                                                      for o in outputs) < CONNECTIONS:
                assert time.monotonic() < deadline, f"flows {before}, counters {dp.counters()}"
                time.sleep(0.05)
            time.sleep(0.5)
            before = curl_flows(dp)
            per_uplink = {u: [p for p, v in before.items() if v == u] for u in ("uplink0", "uplink1")}
            # fail the switch that carries flows; prefer one that leaves flows on the survivor
            failed = max(per_uplink, key=lambda u: (0 < len(per_uplink[u]) < CONNECTIONS, len(per_uplink[u])))
            survivor = "uplink1" if failed == "uplink0" else "uplink0"
            fi, si = int(failed[-1]), int(survivor[-1])
            migrated_before = dp.counters()["flows_migrated"]
            print(f"flows per uplink before the failure: {per_uplink}; failing {failed}")

            # -- the switch fails: its route withdrawn, its link down, the internet reroutes ----
            dp.commit(sled.state([sled.nexthops[si]]))
            inet.route_via(inet.links[si])
            lab.uplinks[fi].switch.ns.ip("link", "set", sled.uplink_ifs[fi], "down")
            assert any(o.stat().st_size < FILE_SIZE for o in outputs), "failover came after the transfers"
            # A flow's path changes when its next packet passes (a rate-limited download may be idle
            # for a while); closed flows leave the table. Follow every flow until all transfers end.
            after: dict[int, str] = {}
            deadline = time.monotonic() + 60
            while any(c.poll() is None for c in curls) and time.monotonic() < deadline:
                after.update(curl_flows(dp))
                time.sleep(0.05)
            after.update(curl_flows(dp))

            results = []
            for c in curls:
                stdout, stderr = c.communicate(timeout=60)
                results.append((c.returncode, stderr.decode(errors="replace")))
            counters = dp.counters()
            digests = [hashlib.sha256(o.read_bytes()).hexdigest() if o.exists() else None for o in outputs]
        finally:
            server_log.close()
            shutil.rmtree(served, ignore_errors=True)

        assert all(rc == 0 for rc, _ in results), f"curl failures: {results}\n{counters}"
        assert digests == [digest] * CONNECTIONS, "every transfer complete and intact"
        assert per_uplink[failed], f"flows before: {before}"
        assert counters["flows_migrated"] - migrated_before >= len(per_uplink[failed]), counters
        stayed = {p: after.get(p) for p in per_uplink[survivor]}
        assert all(u == survivor for u in stayed.values()), f"survivor's flows must not move: {stayed}"
        moved = {p: after.get(p) for p in per_uplink[failed]}
        assert all(u == survivor for u in moved.values()), f"failed switch's flows, last seen: {moved}"
        print(f"after: {after}; flows_migrated +{counters['flows_migrated'] - migrated_before}")
