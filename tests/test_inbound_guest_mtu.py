"""Inbound frames and the guest port's MTU, through the data plane on ring ports: a decapsulated frame
whose IP packet (the inner frame less its Ethernet header and VLAN tag) is longer than the guest's
`mtu_bytes` is not delivered, but dropped and counted as `inner_over_guest_mtu`; one at exactly the
MTU is delivered whole. The underlay allows more (9216 bytes here), so only the guest's MTU stops
them, in one segment or in a chain."""
import dataclasses

import pytest
from scapy.all import IP, UDP, Dot1Q, Ether, IPv6, Raw, raw

from tests.support.geneve import BOUNDARY_MAC
from tests.support.sled import GUEST_IP4, GUEST_IP6, GUEST_MAC, default_state, drops, ring_sled
from tests.support.wire import delivered, encap

PAYLOAD = bytes(range(251)) * 40


def guest_state(mtu: int):
    state = default_state(1)
    return state.replace(guests=tuple(dataclasses.replace(g, mtu_bytes=mtu) for g in state.guests))


def inner(ip_len: int, *, ipv6: bool = False, vlan: int | None = None) -> bytes:
    """A frame to the guest whose IP packet is `ip_len` bytes long."""
    l2 = Ether(dst=GUEST_MAC, src=BOUNDARY_MAC)
    if vlan is not None:
        l2 /= Dot1Q(vlan=vlan)
    if ipv6:
        l3, head = IPv6(src="2001:db8::53", dst=str(GUEST_IP6)) / UDP(sport=53, dport=5353), 48
    else:
        l3, head = IP(src="93.184.216.34", dst=str(GUEST_IP4), id=7) / UDP(sport=443, dport=40000), 28
    frame = raw(l2 / l3 / Raw((PAYLOAD * 4)[:ip_len - head]))
    assert len(frame) == ip_len + (18 if vlan is not None else 14)
    return frame


@pytest.mark.parametrize("mtu", [1500, 9000])
@pytest.mark.parametrize("kind", ["ipv4", "ipv6", "ipv4-vlan"])
@pytest.mark.parametrize("segment_bytes", [0, 512], ids=["whole", "512-byte-segments"])
def test_a_frame_over_the_guest_mtu_is_dropped_and_one_at_it_delivered(eal, mtu, kind, segment_bytes):
    options = {"ipv6": kind == "ipv6", "vlan": 5 if kind == "ipv4-vlan" else None}
    at_mtu, over = inner(mtu, **options), inner(mtu + 1, **options)
    with ring_sled(guest_state(mtu), n_uplinks=1, underlay_mtu=9216) as sled:
        sled.send("uplink0", [encap(over), encap(at_mtu), encap(inner(mtu + 100, **options))],
                  segment_bytes=segment_bytes)
        got, c = sled.recv("guest0"), sled.counters()
    assert got == [delivered(at_mtu)]
    assert drops(c) == {"inner_over_guest_mtu": 2}
    assert (c["rx_uplink_packets"], c["tx_guest_packets"]) == (3, 1)


def test_the_guest_mtu_is_per_port_not_the_largest(eal):
    # the same 1,501-byte packet to a port of MTU 1500 is dropped, to one of 9000 delivered
    frame = encap(inner(1501))
    for mtu, want in ((1500, []), (9000, [delivered(inner(1501))])):
        with ring_sled(guest_state(mtu), n_uplinks=1, underlay_mtu=9216) as sled:
            sled.send("uplink0", [frame])
            assert sled.recv("guest0") == want
            assert drops(sled.counters()) == ({} if want else {"inner_over_guest_mtu": 1})
