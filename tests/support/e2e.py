"""opte-fast end to end in one process: a guest in a namespace on a net_tap guest port, the data plane's uplink taps
in place of the sled's veths in the Open vSwitch switches of ovs.py's boundary lab, and the desired state for
either way of reaching boundary services (MODES). tests/test_e2e_ovs.py describes the lab; the BFD tests
(test_bfd_ovs, test_bfd_geneve) run in it too.
"""
from __future__ import annotations

import contextlib
import ipaddress
import secrets
import socket
import struct
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from opte_fast.controlplane.dataplane import Dataplane, DataplaneOptions
from opte_fast.controlplane.state import V2B, DesiredState, GuestPort, Nexthop, Route, Tep, Underlay

from .checksums import internet_checksum
from .netns import Netns, namespace, run
from .ovs import GATEWAY_V4, TEP, BoundaryLab, Guest, boundary_lab
from .tap import tap_devargs
from .tools import needs_tools

needs_lab_tools = needs_tools("ovs-vsctl", "ovsdb-server", "tshark", "curl", "ss", "nstat")

GATEWAY_IP = "10.0.0.1"
GUEST = Guest()
GUEST_GW_MAC = "a8:40:25:00:00:01"  # the virtual gateway the guest sees
TEP_PREFIX = ipaddress.ip_network("fd00:99::/64")   # anycast: the one TEP's route
V2B_TEPS = ("fd00:99::1", "fd00:98::1")             # mode (a): switch i serves V2B_TEPS[i], route /64
MODES = {"anycast": (TEP, TEP), "v2b": V2B_TEPS}
RETURN_TABLE = 100  # internet-side routing table 100+i: default route through switch i


Pin = tuple[str, str]  # where a flow goes: (uplink, TEP = outer destination)


@dataclass
class Sled:
    dp: Dataplane
    lab: BoundaryLab
    mode: str
    guest_ns: Netns
    guest_if: str
    uplink_ifs: list[str]   # each in lab.uplinks[i].switch.ns
    nexthops: list[Nexthop]

    def pin(self, i: int) -> Pin:
        """Where a flow through switch i goes."""
        return f"uplink{i}", self.lab.uplinks[i].tep

    def state(self, up: Collection[int] = (0, 1)) -> DesiredState:
        """The desired state with the switches in `up` in service (the others failed or drained)."""
        if self.mode == "anycast":
            teps: tuple[Tep, ...] = (Tep(ipaddress.IPv6Address(TEP)),)
            routes = (Route(TEP_PREFIX, tuple(self.nexthops[i] for i in up)),)
        else:
            teps = tuple(Tep(ipaddress.IPv6Address(link.tep)) for link in self.lab.uplinks)
            routes = tuple(Route(ipaddress.ip_network(f"{link.tep}/64", strict=False), (nexthop,))
                           for link, nexthop in zip(self.lab.uplinks, self.nexthops))
        state = DesiredState(
            underlay=Underlay(ipaddress.IPv6Address(self.lab.sled_address)),
            guests=(GuestPort("guest0", GUEST.vni, GUEST.mac, GUEST_GW_MAC,
                              ipaddress.IPv4Address(GUEST.ipv4), ipaddress.IPv6Address(GUEST.ipv6)),),
            v2b=(V2B(ipaddress.ip_network("0.0.0.0/0"), teps), V2B(ipaddress.ip_network("::/0"), teps)),
            routes=routes,
        )
        if self.mode == "v2b":
            for i, link in enumerate(self.lab.uplinks):
                if i not in up:
                    state = state.with_tep_state(ipaddress.IPv6Address(link.tep), False)
        return state

    def take_down(self, failed: int, survivor: int) -> None:
        """Switch `failed` goes away: the control plane's state first, then the internet's routes
        (including the per-connection return table of that switch), then the link."""
        self.dp.commit(self.state([survivor]))
        inet = self.lab.internet
        inet.ns.ip("-4", "route", "replace", "default", "via", GATEWAY_V4, "dev", inet.links[survivor], "onlink",
                   "table", str(RETURN_TABLE + failed))
        inet.route_via(inet.links[survivor])
        self.lab.uplinks[failed].switch.ns.ip("link", "set", self.uplink_ifs[failed], "down")

    def bring_back(self, switch: int) -> None:
        """The switch is back: link up, all of the state, the internet's default route over both.
        Return tables of established connections are left where they are."""
        link = self.lab.uplinks[switch]
        link.switch.ns.ip("link", "set", self.uplink_ifs[switch], "up")
        link.switch.appctl("tnl/neigh/set", "br-ul", self.lab.sled_address, link.mac)
        self.dp.commit(self.state())
        self.lab.internet.route_via(*self.lab.internet.links)


@contextlib.contextmanager
def e2e_sled(mode: str, workers: tuple[int, ...]) -> Iterator[Sled]:
    tag = secrets.token_hex(3)
    with boundary_lab(MODES[mode], guests=(GUEST,)) as lab, namespace("guest") as guest_ns:
        guest_if = f"oftg{tag}"
        uplink_ifs = [f"oftu{i}{tag}" for i in range(len(lab.uplinks))]
        dp = Dataplane(DataplaneOptions(underlay_addr=ipaddress.IPv6Address(lab.sled_address),
                                        flow_capacity=4096, n_mbufs=8191))
        try:
            dp.add_port("guest0", tap_devargs(guest_if, GUEST_GW_MAC), "guest")
            nexthops = []
            for i, (link, ifname) in enumerate(zip(lab.uplinks, uplink_ifs)):
                dp.add_port(f"uplink{i}", tap_devargs(ifname, link.mac), "uplink")
                nexthops.append(Nexthop(f"uplink{i}", ipaddress.IPv6Address(f"fe80::{i + 1}"), link.nexthop_mac))
            sled = Sled(dp, lab, mode, guest_ns, guest_if, uplink_ifs, nexthops)
            dp.commit(sled.state())
            dp.start(list(workers))
            # -- the uplink taps replace the lab's veths in br-ul ------------------------------
            for link, ifname in zip(lab.uplinks, uplink_ifs):
                sw = link.switch
                sw.vsctl("del-port", "br-ul", "ul0")
                sw.ns.ip("link", "del", "ul0")
                run(["ip", "link", "set", ifname, "netns", sw.ns.name])
                sw.ns.sysctl(**{f"net__ipv6__conf__{ifname}__disable_ipv6": 1})
                # txqueuelen: the tap's ring toward opte-fast; OVS, starved of CPU, then flushes
                # its (enlarged) receive buffer in one go, more than the default 1000 frames
                sw.ns.ip("link", "set", ifname, "mtu", "9000", "txqueuelen", "20000", "up")
                sw.vsctl("add-port", "br-ul", ifname)
                sw.appctl("tnl/neigh/set", "br-ul", lab.sled_address, link.mac)
                # else OVS silently loses 5-10 % of a download (see the method)
                assert sw.enlarge_receive_buffers() >= 2
            # -- the guest ---------------------------------------------------------------------
            run(["ip", "link", "set", guest_if, "netns", guest_ns.name])
            guest_ns.sysctl(**{f"net__ipv6__conf__{guest_if}__disable_ipv6": 1})
            guest_ns.ip("link", "set", guest_if, "address", GUEST.mac, "mtu", "1500", "up")
            guest_ns.add_address(guest_if, f"{GUEST.ipv4}/24")
            guest_ns.ip("route", "add", "default", "via", GATEWAY_IP, "dev", guest_if)
            guest_ns.ip("neigh", "replace", GATEWAY_IP, "lladdr", GUEST_GW_MAC, "dev", guest_if, "nud", "permanent")
            # -- the internet: one return table per switch (test_e2e_ovs.py pin_return_paths); no tail loss
            # probes: with sub-ms RTTs, a software switch's ms of jitter fires spurious ones,
            # which would count as retransmissions (test_e2e_ovs.py SenderRetransmits). RTOs remain.
            lab.internet.ns.sysctl(net__ipv4__tcp_early_retrans=0)
            for i, link_name in enumerate(lab.internet.links):
                lab.internet.ns.ip("-4", "route", "add", "default", "via", GATEWAY_V4, "dev", link_name, "onlink",
                                   "table", str(RETURN_TABLE + i))
            yield sled
        finally:
            dp.close()


def ping(ns: Netns, dst: str, count: int = 3, timeout: float = 3.0, ident: int = 0x0fa5) -> list[int]:
    """ICMP echo from `ns` (no ping binary here) with identifier `ident` (one flow each): the sequence
    numbers answered."""
    answered = []
    with ns.open_socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        for seq in range(1, count + 1):
            body = struct.pack("!HH", ident, seq) + b"opte-fast e2e ping" * 4
            header = struct.pack("!BBH", 8, 0, 0)
            sock.sendto(struct.pack("!BBH", 8, 0, internet_checksum(header + body)) + body, (dst, 0))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                sock.settimeout(max(deadline - time.monotonic(), 0.01))
                try:
                    data, (src, _) = sock.recvfrom(65535)
                except TimeoutError:
                    break
                icmp = data[(data[0] & 0x0F) * 4:]
                if src == dst and icmp[0] == 0 and struct.unpack("!HH", icmp[4:8]) == (ident, seq):
                    answered.append(seq)
                    break
    return answered
