"""Inbound (underlay → guest): a Geneve frame in on an uplink, the exact guest frame or a counted drop out.

Outer headers are built here byte by byte where scapy would repair a malformation (lengths,
checksums); the Geneve header itself is always written by hand so versions, option lengths and
protocol types can be anything. Expected guest frames are spelled out: the inner frame with its
source MAC replaced by the port's gateway MAC, nothing before it and nothing after it.
"""
import ipaddress
import struct
from collections import Counter

import pytest
from scapy.all import (
    IP,
    UDP,
    Ether,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    Raw,
    raw,
)
from scapy.contrib.geneve import GENEVE
from scapy.layers.inet6 import in6_getnsma, in6_getnsmac

from opte_fast.controlplane.dataplane import Dataplane, DataplaneOptions
from opte_fast.controlplane.state import GuestPort, mac_bytes
from tests.support.geneve import BOUNDARY_MAC
from tests.support.sled import DROP_COUNTERS as DROP_COUNTERS  # tests/test_flows.py takes it from here
from tests.support.sled import (
    GATEWAY_MAC,
    GUEST_IP4,
    GUEST_MAC,
    GUEST_VNI,
    SWITCH_MACS,
    UNDERLAY,
    Sled,
    delta,
    drops,
    ring_sled,
)
from tests.support.sled import default_state as ring_state
from tests.support.wire import (
    INNER_TCP4,
    INNER_UDP6,
    OXIDE,
    PEER,
    delivered,
    encap,
    geneve_header,
    option,
    outer,
    udp_length,
)


def test_expected_bytes_are_spelled_out():
    # The rewrite is exactly the source MAC: dst MAC and everything from the ethertype on are kept.
    assert delivered(INNER_TCP4) == (bytes.fromhex("020000000001") + bytes.fromhex("a84025ff0001")
                                     + INNER_TCP4[12:])
    assert INNER_TCP4[6:12] == bytes.fromhex("a84025777777")


@pytest.mark.parametrize("inner", [INNER_TCP4, INNER_UDP6], ids=["ipv4-tcp", "ipv6-udp"])
@pytest.mark.parametrize("checksum,verify", [("zero", False), ("zero", True), ("valid", False), ("valid", True)])
def test_valid_geneve_is_decapsulated_to_the_guest(eal, inner, checksum, verify):
    frame = encap(inner, checksum=checksum)
    with ring_sled(n_uplinks=1, verify_udp_checksum=verify) as sled:
        sled.send("uplink0", [frame])
        assert sled.recv("guest0") == [delivered(inner)]
        assert sled.recv("uplink0") == []
        c = sled.counters()
    assert (c["rx_uplink_packets"], c["tx_guest_packets"]) == (1, 1) and drops(c) == {}


def test_valid_checksum_really_is_valid_and_non_zero():
    frame = Ether(encap(INNER_UDP6, checksum="valid"))
    claimed = frame[UDP].chksum
    assert claimed != 0
    del frame[UDP].chksum
    assert Ether(raw(frame))[UDP].chksum == claimed


@pytest.mark.parametrize("opts", [
    option(OXIDE, 0x00),                                   # External
    option(OXIDE, 0x80),                                   # External with the critical bit: known, so fine
    option(OXIDE, 0x00) + option(OXIDE, 0x02, struct.pack(">I", 1400)),   # External + Mss
    option(OXIDE, 0x01, struct.pack(">I", 2)),             # Multicast
    option(0x0102, 0x05, b"abcdefgh"),                     # unknown, not critical: skipped
], ids=["external", "external-critical", "external-mss", "multicast", "unknown-noncritical"])
def test_known_and_skippable_options_are_delivered(eal, opts):
    with ring_sled(n_uplinks=1) as sled:
        sled.send("uplink0", [encap(INNER_TCP4, options=opts), encap(INNER_UDP6, options=opts, checksum="valid")])
        assert sled.recv("guest0") == [delivered(INNER_TCP4), delivered(INNER_UDP6)]
        assert drops(sled.counters()) == {}


def test_external_option_frame_is_what_scapy_calls_geneve_with_that_option():
    frame = Ether(encap(INNER_TCP4, options=option(OXIDE, 0x00)))
    gnv = GENEVE(raw(frame[UDP].payload))
    assert (gnv.version, gnv.optionlen, gnv.proto, gnv.vni) == (0, 1, 0x6558, GUEST_VNI)
    assert (gnv.options[0].classid, gnv.options[0].type, gnv.options[0].length) == (OXIDE, 0, 0)


@pytest.mark.parametrize("checksum", ["zero", "valid"])
def test_hop_by_hop_header_before_udp_is_walked(eal, checksum):
    frame = encap(INNER_TCP4, hop_by_hop=True, checksum=checksum)
    assert Ether(frame)[IPv6].nh == 0 and IPv6ExtHdrHopByHop in Ether(frame)
    with ring_sled(n_uplinks=1, verify_udp_checksum=True) as sled:
        sled.send("uplink0", [frame])
        assert sled.recv("guest0") == [delivered(INNER_TCP4)]
        assert drops(sled.counters()) == {}


@pytest.mark.parametrize("trailer", [b"\0" * 4, b"\xde\xad\xbe\xef" * 16, b"\0"])
def test_bytes_after_the_outer_ipv6_packet_are_not_delivered(eal, trailer):
    with ring_sled(n_uplinks=1, verify_udp_checksum=True) as sled:
        sled.send("uplink0", [encap(INNER_UDP6, checksum="valid") + trailer, encap(INNER_TCP4) + trailer])
        assert sled.recv("guest0") == [delivered(INNER_UDP6), delivered(INNER_TCP4)]


def test_short_inner_frame_padded_on_the_wire_is_delivered_without_the_padding(eal):
    # A 42-byte inner frame: the outer frame is well above 60 bytes, so the sender adds nothing,
    # but a switch may; the inner frame is the IPv6 payload and not a byte more.
    inner = raw(Ether(dst=GUEST_MAC, src=BOUNDARY_MAC) / IP(src="1.1.1.1", dst=str(GUEST_IP4)) / UDP(sport=1, dport=2))
    assert len(inner) == 42
    with ring_sled(n_uplinks=1) as sled:
        sled.send("uplink0", [encap(inner) + b"\0" * 18])
        assert sled.recv("guest0") == [delivered(inner)]


INNER_FRAG4 = raw(Ether(dst=GUEST_MAC, src=BOUNDARY_MAC) / IP(src="93.184.216.34", dst=str(GUEST_IP4), flags="MF")
                  / UDP(sport=53, dport=5353) / Raw(b"x" * 16))
INNER_FRAG4_TAIL = raw(Ether(dst=GUEST_MAC, src=BOUNDARY_MAC)
                       / IP(src="93.184.216.34", dst=str(GUEST_IP4), frag=3, proto=17) / Raw(b"y" * 16))
INNER_OTHER_MAC = INNER_TCP4[:5] + b"\x02" + INNER_TCP4[6:]
assert INNER_TCP4[5] != 2

DROPS = {
    "unknown-mac": (encap(INNER_OTHER_MAC), "vni_mac_unknown"),
    "unknown-vni": (encap(INNER_TCP4, vni=GUEST_VNI + 1), "vni_mac_unknown"),
    "geneve-version-1": (encap(INNER_TCP4, version=1), "geneve_bad_version"),
    "options-past-end": (encap(INNER_TCP4, opt_words=63), "geneve_options_truncated"),
    "options-one-word-past-end": (outer(geneve_header(options=b"", opt_words=2) + option(OXIDE, 0)),
                                  "geneve_options_truncated"),
    "unknown-critical-class": (encap(INNER_TCP4, options=option(0x0102, 0x85)), "unknown_critical_option"),
    "unknown-critical-oxide-type": (encap(INNER_TCP4, options=option(OXIDE, 0x83)), "unknown_critical_option"),
    "inner-fragment-first": (encap(INNER_FRAG4), "inner_ip_fragment"),
    "inner-fragment-later": (encap(INNER_FRAG4_TAIL), "inner_ip_fragment"),
    "protocol-ipv6": (encap(INNER_TCP4, protocol=0x86DD), "geneve_bad_protocol"),
    "protocol-ipv4": (encap(INNER_TCP4, protocol=0x0800), "geneve_bad_protocol"),
    "geneve-oam": (encap(INNER_TCP4, flags=0x80), "geneve_oam"),
    "external-with-body": (encap(INNER_TCP4, options=option(OXIDE, 0x00, b"\0" * 4)), "geneve_bad_option"),
    "option-body-past-area": (encap(INNER_TCP4, options=struct.pack(">HBB", OXIDE, 0x02, 1)), "geneve_bad_option"),
    "udp-length-short": (udp_length(encap(INNER_TCP4), -1), "udp_bad_length"),
    "udp-length-long": (udp_length(encap(INNER_TCP4), +4), "udp_bad_length"),
    "outer-fragment": (raw(Ether(dst="02:00:00:00:ff:00") / IPv6(src=PEER, dst=str(UNDERLAY))
                           / IPv6ExtHdrFragment(m=1, id=9) / UDP(sport=50000, dport=6081, chksum=0)
                           / Raw(geneve_header() + INNER_TCP4)),
                       "outer_ip_fragment"),
    "inner-too-short": (encap(INNER_TCP4[:13]), "inner_truncated"),
    "inner-arp": (encap(raw(Ether(dst=GUEST_MAC, src=BOUNDARY_MAC, type=0x0806) / Raw(b"\0" * 28))), "inner_not_ip"),
    "inner-ipv4-ihl-4": (encap(INNER_TCP4[:14] + bytes([0x44]) + INNER_TCP4[15:]), "inner_bad_header"),
    "inner-gre": (encap(raw(Ether(dst=GUEST_MAC, src=BOUNDARY_MAC) / IP(src="1.1.1.1", dst=str(GUEST_IP4), proto=47)
                            / Raw(b"\0" * 8))), "inner_bad_header"),
    "inner-tcp-cut": (encap(INNER_TCP4[:14 + 20 + 10]), "inner_truncated"),
    "wrong-udp-port": (encap(INNER_TCP4, dport=4789), "not_geneve"),
    "other-underlay-address": (encap(INNER_TCP4, dst="fd00:0:f7:101::2"), "not_geneve"),
}


@pytest.mark.parametrize("case", list(DROPS))
def test_drop_reasons(eal, case):
    frame, counter = DROPS[case]
    with ring_sled(n_uplinks=1) as sled:
        sled.send("uplink0", [frame])
        assert sled.recv("guest0") == []
        assert sled.recv("uplink0") == []
        c = sled.counters()
    assert drops(c) == {counter: 1}
    assert (c["tx_guest_packets"], c["tx_exception_packets"], c["ndp_replies"]) == (0, 0, 0)


def test_wrong_checksum_is_dropped_only_when_verifying(eal):
    inners = [INNER_TCP4, INNER_UDP6]
    frames = [encap(i, checksum="wrong") for i in inners]
    with ring_sled(n_uplinks=1, verify_udp_checksum=True) as sled:
        sled.send("uplink0", frames)
        assert sled.recv("guest0") == []
        c = sled.counters()
        assert drops(c) == {"udp_bad_checksum": 2}
    with ring_sled(n_uplinks=1, verify_udp_checksum=False) as sled:
        sled.send("uplink0", frames)
        assert sled.recv("guest0") == [delivered(i) for i in inners]
        assert drops(sled.counters()) == {}


def test_truncation_at_every_offset_of_the_outer_headers_is_a_counted_drop(eal):
    frame = encap(INNER_TCP4)
    assert frame[12:14] == b"\x86\xdd" and len(frame) == 70 + len(INNER_TCP4)
    with ring_sled(n_uplinks=1, verify_udp_checksum=True) as sled:
        for cut in range(0, 71):
            before = sled.counters()
            sled.send("uplink0", [frame[:cut]])
            after = sled.counters()
            assert after["tx_guest_packets"] == 0, cut
            # Short of the UDP destination port it is not recognisably Geneve; after it, it is ours and truncated.
            assert drops(delta(after, before)) == {"not_geneve" if cut < 14 + 40 + 4 else "outer_truncated": 1}, cut
            assert after["ndp_replies"] == 0 and after["tx_exception_packets"] == 0
        assert sled.recv("guest0") == [] and sled.recv("uplink0") == []
        assert drops(sled.counters()) == {"not_geneve": 14 + 40 + 4, "outer_truncated": 71 - (14 + 40 + 4)}
        sled.send("uplink0", [frame])
        assert sled.recv("guest0") == [delivered(INNER_TCP4)]


def test_truncation_inside_the_inner_frame_is_a_counted_drop(eal):
    # Cut below the end of the IPv6 packet the payload length declares: truncated, never delivered short.
    frame = encap(INNER_TCP4)
    with ring_sled(n_uplinks=1) as sled:
        sled.send("uplink0", [frame[:cut] for cut in range(71, len(frame))])
        assert sled.recv("guest0") == []
        c = sled.counters()
    assert drops(c) == {"outer_truncated": len(frame) - 71}


def test_neighbor_solicitation_for_the_underlay_address_is_answered(eal):
    asker_mac, asker_ip = SWITCH_MACS[0], "fe80::aa:1"
    group = in6_getnsma(ipaddress.IPv6Address(UNDERLAY).packed)
    ns = Ether(src=asker_mac, dst=in6_getnsmac(group)) / IPv6(
        src=asker_ip, dst=str(ipaddress.IPv6Address(group)), hlim=255) / ICMPv6ND_NS(tgt=str(UNDERLAY)) \
        / ICMPv6NDOptSrcLLAddr(lladdr=asker_mac)
    assert ns[IPv6].dst == "ff02::1:ff00:1"
    with ring_sled(n_uplinks=2) as sled:
        uplink_mac = next(p["mac"] for p in sled.dp.ports() if p["name"] == "uplink0")
        sled.send("uplink0", [raw(ns)])
        out = sled.recv("uplink0")
        assert sled.recv("uplink1") == [] and sled.recv("guest0") == []
        c = sled.counters()
    assert c["ndp_replies"] == 1 and drops(c) == {}
    assert len(out) == 1
    na = Ether(out[0])
    assert (na.dst, na.src, na.type) == (asker_mac, uplink_mac, 0x86DD)
    ip6 = na[IPv6]
    assert (ip6.src, ip6.dst, ip6.hlim, ip6.nh, ip6.tc, ip6.fl) == (str(UNDERLAY), asker_ip, 255, 58, 0, 0)
    adv = na[ICMPv6ND_NA]
    assert (adv.type, adv.code, adv.tgt) == (136, 0, str(UNDERLAY))
    assert (adv.R, adv.S, adv.O) == (0, 1, 1)
    opt = na[ICMPv6NDOptDstLLAddr]
    assert (opt.type, opt.len, opt.lladdr) == (2, 1, uplink_mac)
    assert ip6.plen == 32 and len(out[0]) == 14 + 40 + 32
    claimed = adv.cksum
    del na[ICMPv6ND_NA].cksum
    assert Ether(raw(na))[ICMPv6ND_NA].cksum == claimed


def test_one_vlan_tag_on_the_outer_frame_is_accepted(eal):
    frame = encap(INNER_TCP4)
    tagged = frame[:12] + b"\x81\x00\x00\x05" + frame[12:]
    with ring_sled(n_uplinks=1) as sled:
        sled.send("uplink0", [tagged])
        assert sled.recv("guest0") == [delivered(INNER_TCP4)]


def test_mixed_burst_delivers_exactly_the_valid_frames_in_order(eal):
    bad = [frame for frame, _ in DROPS.values()]
    good = [INNER_TCP4, INNER_UDP6, INNER_TCP4[:-1] + b"!"]
    frames = []
    for i, g in enumerate(good):
        frames += bad[i::3] + [encap(g, checksum="valid")]
    with ring_sled(n_uplinks=1, verify_udp_checksum=True) as sled:
        sled.send("uplink0", frames)
        assert sled.recv("guest0") == [delivered(g) for g in good]
        c = sled.counters()
    assert drops(c) == Counter(reason for _, reason in DROPS.values()) and c["tx_guest_packets"] == len(good)


def neighbor_solicitation(src: str, target=UNDERLAY, with_lladdr: bool = True) -> Ether:
    group = str(ipaddress.IPv6Address(in6_getnsma(ipaddress.IPv6Address(target).packed)))
    ns = Ether(src=SWITCH_MACS[1], dst=in6_getnsmac(in6_getnsma(ipaddress.IPv6Address(target).packed))) \
        / IPv6(src=src, dst=group, hlim=255) / ICMPv6ND_NS(tgt=str(target))
    return ns / ICMPv6NDOptSrcLLAddr(lladdr=SWITCH_MACS[1]) if with_lladdr else ns


def test_duplicate_address_detection_probe_is_answered_to_all_nodes(eal):
    with ring_sled(n_uplinks=2) as sled:
        uplink_mac = next(p["mac"] for p in sled.dp.ports() if p["name"] == "uplink1")
        sled.send("uplink1", [raw(neighbor_solicitation("::", with_lladdr=False))])
        (out,) = sled.recv("uplink1")
        assert sled.recv("uplink0") == []
        assert sled.counters()["ndp_replies"] == 1
    na = Ether(out)
    assert (na.dst, na.src, na[IPv6].dst, na[IPv6].src) == ("33:33:00:00:00:01", uplink_mac, "ff02::1", str(UNDERLAY))
    assert (na[ICMPv6ND_NA].S, na[ICMPv6ND_NA].O, na[ICMPv6NDOptDstLLAddr].lladdr) == (0, 1, uplink_mac)


@pytest.mark.parametrize("case", ["other-target", "hop-limit-64", "bad-checksum"])
def test_solicitations_not_to_answer_are_not_answered(eal, case):
    if case == "other-target":
        ns = neighbor_solicitation("fe80::aa:1", target="fd00:0:f7:101::2")
    else:
        ns = neighbor_solicitation("fe80::aa:1")
        if case == "hop-limit-64":
            ns[IPv6].hlim = 64
        else:
            ns[ICMPv6ND_NS].cksum = 0x1234
    with ring_sled(n_uplinks=1) as sled:
        sled.send("uplink0", [raw(ns)])
        assert sled.recv("uplink0") == []
        c = sled.counters()
    assert (c["ndp_replies"], c["not_geneve"]) == (0, 1)


def test_guest_index_finds_each_of_many_guests_by_vni_and_mac(eal):
    # 30 guests, three VNIs and ten MACs crossed, in the index's 64 slots: some keys share a slot
    # and are found by probing; a MAC known in another VNI, or a VNI with another MAC, is no guest's.
    guests = tuple(GuestPort(f"guest{i}", GUEST_VNI + i % 3, f"a8:40:25:f0:00:{i // 3:02x}", GATEWAY_MAC,
                             ipaddress.ip_address(f"10.0.{i}.2"), None) for i in range(30))
    state = ring_state(n_uplinks=1).replace(guests=guests)
    inner = {g.port: mac_bytes(g.mac) + INNER_TCP4[6:] for g in guests}
    unknown = [encap(mac_bytes(guests[0].mac) + INNER_TCP4[6:], vni=GUEST_VNI + 3),
               encap(bytes.fromhex("a84025f000ff") + INNER_TCP4[6:], vni=GUEST_VNI)]
    dp = Dataplane(DataplaneOptions(underlay_addr=state.underlay.addr, n_mbufs=8191))
    try:
        for g in guests:
            dp.add_ring_port(g.port, "guest")
        dp.add_ring_port("uplink0", "uplink")
        dp.commit(state)
        dp.start([1])
        sled = Sled(dp)
        sled.send("uplink0", [encap(inner[g.port], vni=g.vni) for g in reversed(guests)] + unknown)
        for g in guests:
            assert sled.recv(g.port) == [delivered(inner[g.port])]
        assert drops(sled.counters()) == {"vni_mac_unknown": 2}
    finally:
        dp.close()
