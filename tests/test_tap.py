"""The real data plane on kernel tap interfaces (DPDK net_tap), each moved into its own namespace.

A guest namespace holds the guest tap, an underlay namespace holds the uplink tap; frames written
there with AF_PACKET go through the data plane running in this pytest process, and what comes out
is captured on the other side and decoded.

net_tap quirks met here: the PMD configures its interface by name in the namespace it was probed
in, so the taps are moved only after `Dataplane.start()` (which starts the ports); moving a link
takes it down, so it is brought up again in its new namespace; kernel IPv6 is disabled on both
taps so the kernel sends no MLD/RS/NDP frames of its own into the data plane.
"""
from __future__ import annotations

import contextlib
import ipaddress
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from opte_fast.controlplane.dataplane import Dataplane, DataplaneOptions
from opte_fast.controlplane.state import V2B, DesiredState, GuestPort, Nexthop, Route, Tep, Underlay, mac_bytes
from tests.support.geneve import BOUNDARY_MAC, BOUNDARY_VNI, GENEVE_PORT, decode, encapsulate
from tests.support.netns import Frame, Netns, namespace, run
from tests.support.sled import (
    GATEWAY_MAC,
    GUEST_IP4,
    GUEST_IP6,
    GUEST_MAC,
    GUEST_VNI,
    SWITCH_MACS,
    TEP,
    UNDERLAY,
    delta,
    gateway,
)
from tests.support.tap import tap_devargs
from tests.support.tools import needs_root


def tap_state(guest_port: str, uplink_port: str) -> DesiredState:
    """default_state(1) with the ports named as this test's ports."""
    teps = (Tep(TEP),)
    return DesiredState(
        underlay=Underlay(UNDERLAY),
        guests=(GuestPort(guest_port, GUEST_VNI, GUEST_MAC, GATEWAY_MAC, GUEST_IP4, GUEST_IP6),),
        v2b=(V2B(ipaddress.ip_network("0.0.0.0/0"), teps), V2B(ipaddress.ip_network("::/0"), teps)),
        routes=(Route(ipaddress.ip_network("fd00:99::/64"), (Nexthop(uplink_port, gateway(0), SWITCH_MACS[0]),)),),
    )


def move_tap(iface: str, ns: Netns) -> None:
    """Into `ns`, IPv6 off (no kernel MLD/RS/DAD frames), up."""
    run(["ip", "link", "set", iface, "netns", ns.name])
    ns.sysctl(**{f"net__ipv6__conf__{iface}__disable_ipv6": 1})
    ns.link_up(iface)


@dataclass
class TapSled:
    dp: Dataplane
    guest_ns: Netns
    guest_if: str
    uplink_ns: Netns
    uplink_if: str
    uplink_mac: str
    guest_port_mac: str


@contextlib.contextmanager
def tap_sled() -> Iterator[TapSled]:
    tag = secrets.token_hex(3)
    guest_if, uplink_if = f"oftg{tag}", f"oftu{tag}"
    with namespace("tapg") as guest_ns, namespace("tapu") as uplink_ns:
        dp = Dataplane(DataplaneOptions(underlay_addr=UNDERLAY, flow_capacity=4096, n_mbufs=4095))
        try:
            dp.add_port("guest0", tap_devargs(guest_if), "guest")
            dp.add_port("uplink0", tap_devargs(uplink_if), "uplink")
            dp.commit(tap_state("guest0", "uplink0"))
            dp.start([1])
            move_tap(guest_if, guest_ns)
            move_tap(uplink_if, uplink_ns)
            macs = {p["name"]: p["mac"] for p in dp.ports()}
            yield TapSled(dp, guest_ns, guest_if, uplink_ns, uplink_if, macs["uplink0"], macs["guest0"])
        finally:
            dp.close()


def geneve_out(frame: Frame) -> bool:
    return frame.incoming and decode(frame.data) is not None


@needs_root("taps and namespaces")
def test_guest_frames_leave_the_uplink_tap_as_geneve_and_geneve_comes_back_decapsulated(eal) -> None:
    with tap_sled() as sled:
        # -- outbound: guest → uplink ------------------------------------------------------
        sent = [bytes(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IP(src=str(GUEST_IP4), dst="203.0.113.1")
                      / UDP(sport=40000 + i, dport=53) / (b"tap-%d" % i)) for i in range(4)]
        sent.append(bytes(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IPv6(src=str(GUEST_IP6), dst="2001:db8::1")
                          / UDP(sport=41000, dport=53) / b"tap-v6"))
        sent.append(bytes(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IP(src=str(GUEST_IP4), dst="203.0.113.1")
                          / ICMP(id=7, seq=1) / b"ping"))
        # changes only: the kernel may write a frame or two into a tap while it is still up in the
        # root namespace with IPv6 on, before it is moved
        before = sled.dp.counters()
        with sled.uplink_ns.capture(sled.uplink_if) as capture:
            sled.guest_ns.send(sled.guest_if, *sent)
            for i in range(len(sent)):
                capture.wait_for(lambda f, n=i + 1: len([x for x in capture._frames if geneve_out(x)]) >= n,
                                 timeout=5)
            time.sleep(0.2)  # anything extra would show up now
            got = [decode(f.data) for f in capture.frames if f.incoming]
        assert all(g is not None for g in got), f"only Geneve leaves the uplink:\n{capture.summary()}"
        assert len(got) == len(sent), f"exactly one Geneve frame per guest frame:\n{capture.summary()}"
        by_inner = {g.inner_bytes: g for g in got}
        for frame in sent:
            expected_inner = mac_bytes(BOUNDARY_MAC) + frame[6:]
            assert expected_inner in by_inner, f"inner frame not found for {frame.hex()}"
            g = by_inner[expected_inner]
            assert (g.eth_dst, g.eth_src) == (SWITCH_MACS[0], sled.uplink_mac)
            assert (g.ip_src, g.ip_dst) == (str(UNDERLAY), str(TEP))
            assert (g.dport, g.vni, g.version, g.protocol, g.udp_checksum) == (GENEVE_PORT, BOUNDARY_VNI, 0,
                                                                                 0x6558, 0)
            assert g.hop_limit == 128 and 49152 <= g.sport <= 65535
        c = delta(sled.dp.counters(), before)
        assert c["rx_guest_packets"] == len(sent) and c["tx_uplink_packets"] == len(sent), c

        # -- inbound: uplink → guest -------------------------------------------------------
        inner = [bytes(Ether(src=BOUNDARY_MAC, dst=GUEST_MAC) / IP(src="203.0.113.1", dst=str(GUEST_IP4))
                       / UDP(sport=53, dport=40000 + i) / (b"back-%d" % i)) for i in range(3)]
        inner.append(bytes(Ether(src=BOUNDARY_MAC, dst=GUEST_MAC) / IPv6(src="2001:db8::1", dst=str(GUEST_IP6))
                           / UDP(sport=53, dport=41000) / b"back-v6"))
        frames = [bytes(encapsulate(i, eth_src=SWITCH_MACS[0], eth_dst=sled.uplink_mac, src=str(TEP),
                                    dst=str(UNDERLAY), vni=GUEST_VNI, sport=50000 + n, udp_checksum=n % 2 == 1))
                  for n, i in enumerate(inner)]
        expected = {i[:6] + mac_bytes(GATEWAY_MAC) + i[12:] for i in inner}
        before = sled.dp.counters()
        with sled.guest_ns.capture(sled.guest_if) as capture:
            sled.uplink_ns.send(sled.uplink_if, *frames)
            for want in expected:
                capture.wait_for(lambda f, w=want: f.incoming and f.data == w, timeout=5)
            time.sleep(0.2)
            received = [f.data for f in capture.frames if f.incoming]
        assert sorted(received) == sorted(expected), f"exactly the decapsulated frames:\n{capture.summary()}"
        c = delta(sled.dp.counters(), before)
        assert c["rx_uplink_packets"] == len(frames) and c["tx_guest_packets"] == len(frames), c
