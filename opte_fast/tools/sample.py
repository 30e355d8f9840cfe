"""The sample sled that the demo, the benchmark and the tests share.

One guest (10.0.0.2 / fd77::2, VNI 7) whose traffic outside the VPC goes to
boundary services at one anycast TEP, fd00:99::1, whose route fd00:99::/64
leaves over every uplink (anycast mode: one nexthop per upstream switch).
"""
from __future__ import annotations

import ipaddress
import struct

from ..controlplane.state import V2B, DesiredState, GuestPort, Nexthop, Route, Tep, Underlay

UNDERLAY = ipaddress.IPv6Address("fd00:0:f7:101::1")
GUEST_PORT = "guest0"
GUEST_MAC = "02:00:00:00:00:01"
GUEST_IP4 = ipaddress.IPv4Address("10.0.0.2")
GUEST_IP6 = ipaddress.IPv6Address("fd77::2")
GATEWAY_MAC = "a8:40:25:ff:00:01"
GUEST_VNI = 7
TEP = ipaddress.IPv6Address("fd00:99::1")
TEP_PREFIX = ipaddress.ip_network("fd00:99::/64")


def ipv4_checksum(header: bytes) -> int:
    """The IPv4 header checksum of `header` (its checksum field zero), for the sample's guest frames."""
    s = sum(struct.unpack(f"!{len(header) // 2}H", header))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def uplink_name(i: int) -> str:
    return f"uplink{i}"


def switch_mac(i: int) -> str:
    return f"02:aa:00:00:00:{i + 1:02x}"


def switch_gateway(i: int) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(f"fe80::{i + 1:x}")


def anycast_state(n_uplinks: int = 2, teps: tuple[ipaddress.IPv6Address, ...] = (TEP,),
                  without: int | None = None) -> DesiredState:
    """The sample sled with `n_uplinks` nexthops for the TEP prefix, less `without` (a withdrawn one)."""
    nexthops = tuple(Nexthop(uplink_name(i), switch_gateway(i), switch_mac(i))
                     for i in range(n_uplinks) if i != without)
    tep_set = tuple(Tep(t) for t in teps)
    return DesiredState(
        underlay=Underlay(UNDERLAY),
        guests=(GuestPort(GUEST_PORT, GUEST_VNI, GUEST_MAC, GATEWAY_MAC, GUEST_IP4, GUEST_IP6),),
        v2b=(V2B(ipaddress.ip_network("0.0.0.0/0"), tep_set), V2B(ipaddress.ip_network("::/0"), tep_set)),
        routes=(Route(TEP_PREFIX, nexthops),),
    )
