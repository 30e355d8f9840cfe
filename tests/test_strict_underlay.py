"""Strict underlay (--strict-underlay): Geneve only from a V2B TEP, or from the sled V2P maps the
inner source to. Exact frames in on an uplink; the guest frame or an `underlay_source_unknown` out."""
import ipaddress
from dataclasses import replace

import pytest
from scapy.all import IP, UDP, Ether, IPv6, Raw, raw

from opte_fast.controlplane.state import V2P, Tep
from tests.support.sled import GUEST_IP4, GUEST_IP6, GUEST_MAC, default_state, drops, ring_sled
from tests.support.wire import INNER_TCP4, INNER_UDP6, PEER, delivered, encap

SLED = ipaddress.IPv6Address("fd00:1122:3344:102::1")        # a peer sled
SLED_GUEST4 = ipaddress.IPv4Address("10.0.0.9")              # a guest on it, in our VPC
SLED_GUEST6 = ipaddress.IPv6Address("fd77::9")
PEER_MAC = "a8:40:25:f0:00:09"


def from_peer_guest(src) -> bytes:
    """A frame the guest `src` (on some sled) sends to our guest, as its sled encapsulates it."""
    if src.version == 4:
        ip = IP(src=str(src), dst=str(GUEST_IP4), ttl=64)
    else:
        ip = IPv6(src=str(src), dst=str(GUEST_IP6), hlim=64)
    return raw(Ether(dst=GUEST_MAC, src=PEER_MAC) / ip / UDP(sport=7000, dport=7001) / Raw(b"east-west"))


def with_peer_sled(state=None):
    state = state or default_state(1)
    vni = state.guests[0].vni
    return state.replace(v2p=(V2P(vni, SLED_GUEST4, SLED, PEER_MAC), V2P(vni, SLED_GUEST6, SLED, PEER_MAC)))


# (name, outer source, inner frame, delivered in strict mode)
CASES = [
    ("boundary services from its TEP, IPv4", PEER, INNER_TCP4, True),
    ("boundary services from its TEP, IPv6", PEER, INNER_UDP6, True),
    ("a sled for its own guest, IPv4", SLED, from_peer_guest(SLED_GUEST4), True),
    ("a sled for its own guest, IPv6", SLED, from_peer_guest(SLED_GUEST6), True),
    ("a sled for an address V2P does not place on it", SLED, from_peer_guest(ipaddress.IPv4Address("10.0.0.10")), False),
    ("a sled for the internet (only boundary services may)", SLED, INNER_TCP4, False),
    ("a host in the TEP's prefix that is no TEP", "fd00:99::2", INNER_TCP4, False),
    ("an unknown host for a V2P guest", "fd00:dead::1", from_peer_guest(SLED_GUEST4), False),
]


@pytest.mark.parametrize("src,inner,accepted", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_strict_underlay_accepts_only_tep_and_v2p_sleds(eal, src, inner, accepted):
    frame = encap(inner, src=src)
    with ring_sled(with_peer_sled(), n_uplinks=1, strict_underlay=True) as sled:
        sled.send("uplink0", [frame])
        assert sled.recv("guest0") == ([delivered(inner)] if accepted else [])
        c = sled.counters()
    dropped = drops(c)
    assert dropped == ({} if accepted else {"underlay_source_unknown": 1})
    assert c["tx_guest_packets"] == int(accepted)


def test_without_the_flag_every_source_is_accepted(eal):
    frames = [encap(inner, src=src) for _, src, inner, _ in CASES]
    with ring_sled(with_peer_sled(), n_uplinks=1) as sled:
        sled.send("uplink0", frames)
        assert sled.recv("guest0") == [delivered(inner) for _, _, inner, _ in CASES]
        assert sled.counters()["underlay_source_unknown"] == 0


def test_strict_sources_follow_each_commit_and_a_tep_marked_down_still_counts(eal):
    east_west = encap(from_peer_guest(SLED_GUEST4), src=SLED)
    boundary = encap(INNER_TCP4, src=PEER)
    state = with_peer_sled()
    with ring_sled(state, n_uplinks=1, strict_underlay=True) as sled:
        sled.dp.commit(state.replace(v2p=()))           # the guest left that sled
        sled.send("uplink0", [east_west])
        assert sled.recv("guest0") == []
        v2b = tuple(replace(e, teps=(Tep(e.teps[0].addr, up=False),)) for e in state.v2b)
        sled.dp.commit(state.replace(v2b=v2b))          # TEP out of use: its replies still arrive
        sled.send("uplink0", [east_west, boundary])
        assert sled.recv("guest0") == [delivered(from_peer_guest(SLED_GUEST4)), delivered(INNER_TCP4)]
        assert sled.counters()["underlay_source_unknown"] == 1
