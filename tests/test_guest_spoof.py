"""Anti-spoofing on a guest port, through the data plane on ring ports: a frame whose Ethernet source
is not the port's MAC, an IP packet whose source is not one of the port's addresses (or of its
allowed prefixes), and ARP whose sender is not the port's are dropped, each under its own counter,
before any flow exists. Link-local and unspecified sources reach the gateway (neighbor discovery)
and nothing else.
"""
import dataclasses
import ipaddress

import pytest
from scapy.all import (
    ARP,
    IP,
    TCP,
    UDP,
    Dot1Q,
    Ether,
    ICMPv6EchoRequest,
    ICMPv6MLDMultAddrRec,
    ICMPv6MLReport2,
    ICMPv6ND_NS,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
    IPv6ExtHdrHopByHop,
    Raw,
    RouterAlert,
    raw,
)

from tests.support.gateway import GATEWAY_LL, GUEST_LL, arp_reply, arp_request, neighbor_advert, solicited_node
from tests.support.sled import GATEWAY_MAC, GUEST_IP4, GUEST_IP6, GUEST_MAC, default_state, drops, ring_sled

OTHER_MAC = "02:00:00:00:00:99"
OTHER_IP4 = "10.0.0.3"   # a neighbour in the same subnet
OTHER_IP6 = "fd77::3"


def udp4(src: str = str(GUEST_IP4), eth_src: str = GUEST_MAC) -> bytes:
    return raw(Ether(src=eth_src, dst=GATEWAY_MAC) / IP(src=src, dst="198.51.100.7") / UDP(sport=1000, dport=53)
               / Raw(b"q"))


def udp6(src: str = str(GUEST_IP6), eth_src: str = GUEST_MAC) -> bytes:
    return raw(Ether(src=eth_src, dst=GATEWAY_MAC) / IPv6(src=src, dst="2001:db8::53") / UDP(sport=1000, dport=53)
               / Raw(b"q"))


def state_with(**guest_fields):
    state = default_state(1)
    return state.replace(guests=(dataclasses.replace(state.guests[0], **guest_fields),))


def run(frames: list[bytes], state=None) -> tuple[list[bytes], list[bytes], dict[str, int]]:
    with ring_sled(state or default_state(1), n_uplinks=1) as sled:
        sled.send("guest0", frames)
        return sled.recv("guest0"), sled.recv("uplink0"), sled.counters()


SPOOFED = {
    "ipv4-source-mac": (udp4(eth_src=OTHER_MAC), "spoof_src_mac"),
    "ipv6-source-mac": (udp6(eth_src=OTHER_MAC), "spoof_src_mac"),
    "arp-ethernet-source": (arp_request("10.0.0.1", eth_src=OTHER_MAC, hwsrc=OTHER_MAC), "spoof_src_mac"),
    "ipv4-source-address": (udp4(src=OTHER_IP4), "spoof_src_ip"),
    "ipv4-tcp-source-address": (raw(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IP(src=OTHER_IP4, dst="198.51.100.7")
                                    / TCP(sport=1000, dport=443, flags="S")), "spoof_src_ip"),
    "ipv4-tagged-source-address": (raw(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / Dot1Q(vlan=5)
                                       / IP(src=OTHER_IP4, dst="198.51.100.7") / UDP(sport=1000, dport=53)),
                                   "spoof_src_ip"),
    "ipv4-unspecified-not-dhcp": (udp4(src="0.0.0.0"), "spoof_src_ip"),
    "ipv6-source-address": (udp6(src=OTHER_IP6), "spoof_src_ip"),
    "ipv6-v4-mapped-own-address": (udp6(src=f"::ffff:{GUEST_IP4}"), "spoof_src_ip"),
    # link-local sources are for the link: never forwarded
    "ipv6-link-local-forwarded": (udp6(src=GUEST_LL), "spoof_src_ip"),
    "icmpv6-echo-from-another": (raw(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IPv6(src=OTHER_IP6, dst="2001:db8::1")
                                     / ICMPv6EchoRequest(id=7)), "spoof_src_ip"),
    "neighbor-solicit-from-another-global": (raw(Ether(src=GUEST_MAC, dst=solicited_node("fd77::9")[1])
                                                 / IPv6(src=OTHER_IP6, dst=solicited_node("fd77::9")[0], hlim=255)
                                                 / ICMPv6ND_NS(tgt="fd77::9") / ICMPv6NDOptSrcLLAddr(lladdr=GUEST_MAC)),
                                             "spoof_src_ip"),
    "arp-sender-mac": (arp_request("10.0.0.1", hwsrc=OTHER_MAC), "spoof_arp_sender"),
    "arp-sender-address": (arp_request("10.0.0.1", psrc=OTHER_IP4), "spoof_arp_sender"),
}


@pytest.mark.parametrize("case", list(SPOOFED))
def test_spoofed_frame_is_dropped_under_its_reason_before_any_flow(eal, case):
    frame, reason = SPOOFED[case]
    answers, out, c = run([frame] * 3)
    assert answers == [] and out == []
    assert drops(c) == {reason: 3}
    assert (c["rx_guest_packets"], c["flows_created"], c["tx_uplink_packets"], c["tx_guest_packets"]) == (3, 0, 0, 0)


def test_spoofed_frames_among_good_ones_leave_the_good_ones_alone(eal):
    frames = [udp4(), SPOOFED["ipv4-source-address"][0], udp6(), SPOOFED["ipv6-source-mac"][0],
              arp_request("10.0.0.1"), SPOOFED["arp-sender-address"][0]]
    answers, out, c = run(frames)
    assert answers == [arp_reply("10.0.0.1")]
    assert [f[70 + 6:] for f in out] == [udp4()[6:], udp6()[6:]]  # after the outer headers and the rewritten MAC
    assert drops(c) == {"spoof_src_ip": 1, "spoof_src_mac": 1, "spoof_arp_sender": 1}
    assert (c["flows_created"], c["tx_uplink_packets"]) == (2, 2)


def test_link_local_and_unspecified_sources_reach_the_gateway(eal):
    # the guest's link-local (any fe80::, as stable-privacy ones are not EUI-64) and :: for DAD
    ns_from_ll = raw(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IPv6(src="fe80::1234:5678", dst=GATEWAY_LL, hlim=255)
                     / ICMPv6ND_NS(tgt=GATEWAY_LL) / ICMPv6NDOptSrcLLAddr(lladdr=GUEST_MAC))
    dad = raw(Ether(src=GUEST_MAC, dst=solicited_node(GATEWAY_LL)[1])
              / IPv6(src="::", dst=solicited_node(GATEWAY_LL)[0], hlim=255) / ICMPv6ND_NS(tgt=GATEWAY_LL))
    answers, out, c = run([ns_from_ll, dad])
    assert answers == [neighbor_advert(GATEWAY_LL, dst="fe80::1234:5678"), neighbor_advert(GATEWAY_LL, dst="ff02::1")]
    assert out == [] and drops(c) == {} and c["gateway_ndp_replies"] == 2


def test_a_port_without_an_address_of_a_family_sends_none_of_it(eal):
    answers, out, c = run([udp4(), udp6()], state_with(ipv6=None))
    assert len(out) == 1 and Ether(out[0][70:])[IP].src == str(GUEST_IP4)
    assert drops(c) == {"spoof_src_ip": 1}
    answers, out, c = run([udp4(), udp6(), arp_request("10.0.0.1")], state_with(ipv4=None))
    assert len(out) == 1 and Ether(out[0][70:])[IPv6].src == str(GUEST_IP6)
    assert drops(c) == {"spoof_src_ip": 1, "spoof_arp_sender": 1}


def test_allowed_prefixes_let_a_routing_guest_forward_its_networks(eal):
    allowed = (ipaddress.ip_network("192.168.0.0/16"), ipaddress.ip_network("2001:db8:5::/48"),
               ipaddress.ip_network("172.16.0.128/25"))
    state = state_with(allowed_prefixes=allowed)
    ok = [udp4(src="192.168.3.4"), udp4(src="172.16.0.200"), udp6(src="2001:db8:5:ffff::9"), udp4(), udp6()]
    refused = [udp4(src="192.169.0.1"), udp4(src="172.16.0.127"), udp6(src="2001:db8:6::1"),
               udp6(src="::ffff:192.168.3.4")]  # an IPv4 prefix covers IPv4 packets, not v4-mapped IPv6 sources
    answers, out, c = run(ok + refused + [arp_request("10.0.0.1", psrc="192.168.3.4")], state)
    assert [f[70 + 6:] for f in out] == [f[6:] for f in ok]
    assert answers == [raw(Ether(dst=GUEST_MAC, src=GATEWAY_MAC)
                           / ARP(op=2, hwsrc=GATEWAY_MAC, psrc="10.0.0.1", hwdst=GUEST_MAC, pdst="192.168.3.4"))]
    assert drops(c) == {"spoof_src_ip": len(refused)}
    assert c["flows_created"] == len(ok)


def test_multicast_listener_reports_stay_on_the_link_without_counting_as_spoofed(eal):
    # what every Linux guest sends when its interface comes up: MLDv2 reports from its link-local
    # address (and from :: during DAD), with a Hop-by-Hop router alert
    reports = [raw(Ether(src=GUEST_MAC, dst="33:33:00:00:00:16") / IPv6(src=src, dst="ff02::16", hlim=1)
                   / IPv6ExtHdrHopByHop(options=[RouterAlert()]) / ICMPv6MLReport2(records=[ICMPv6MLDMultAddrRec()]))
               for src in (GUEST_LL, "::")]
    from_another = raw(Ether(src=GUEST_MAC, dst="33:33:00:00:00:16") / IPv6(src=OTHER_IP6, dst="ff02::16", hlim=1)
                       / IPv6ExtHdrHopByHop(options=[RouterAlert()]) / ICMPv6MLReport2())
    answers, out, c = run(reports + [from_another])
    assert answers == [] and out == []
    assert drops(c) == {"gateway_mld_ignored": 2, "spoof_src_ip": 1} and c["flows_created"] == 0
