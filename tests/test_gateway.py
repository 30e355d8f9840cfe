"""The guest's gateway through the data plane on ring ports: ARP requests and neighbor solicitations
from the guest are answered back on the guest port, from the gateway MAC; the rest of ARP and neighbor
discovery is dropped under its own counter, and IP traffic is encapsulated as before.

Every answer is checked field by field, against a frame scapy builds apart from the data plane, and
(for neighbor advertisements) against scapy's own checksum of the frame received.
"""

import pytest
from scapy.all import (
    ARP,
    IP,
    UDP,
    Dot1Q,
    Ether,
    ICMPv6EchoRequest,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
    Raw,
    raw,
)

from opte_fast.controlplane.state import mac_bytes
from tests.support.gateway import (
    GATEWAY_LL,
    GUEST_LL,
    arp_reply,
    arp_request,
    neighbor_advert,
    neighbor_solicit,
)
from tests.support.geneve import BOUNDARY_MAC
from tests.support.sled import GATEWAY_MAC, GUEST_IP4, GUEST_IP6, GUEST_MAC, TEP, drops, ring_sled

OTHER_MAC = "02:00:00:00:00:99"
OUTER_HDR_LEN = 70


def udp4(dst: str = "198.51.100.7") -> bytes:
    return raw(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IP(src=str(GUEST_IP4), dst=dst) / UDP(sport=1000, dport=53)
               / Raw(b"q"))


def echo6(dst: str = "2001:db8::1") -> bytes:
    return raw(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IPv6(src=str(GUEST_IP6), dst=dst) / ICMPv6EchoRequest(id=7))


# -- ARP -------------------------------------------------------------------------------------------

# The gateway's own address, an address elsewhere in the VPC, and one on the internet: all behind the router.
ARP_TARGETS = ["10.0.0.1", "10.0.0.9", "93.184.216.34"]


def test_arp_request_gets_the_reply_on_the_guest_port(eal):
    with ring_sled(n_uplinks=1) as sled:
        sled.send("guest0", [arp_request(t) for t in ARP_TARGETS])
        out = sled.recv("guest0")
        assert sled.recv("uplink0") == []
        c = sled.counters()
    assert len(out) == len(ARP_TARGETS)
    for frame, target in zip(out, ARP_TARGETS):
        pkt = Ether(frame)
        assert (pkt.dst, pkt.src, pkt.type) == (GUEST_MAC, GATEWAY_MAC, 0x0806)
        a = pkt[ARP]
        assert (a.hwtype, a.ptype, a.hwlen, a.plen, a.op) == (1, 0x0800, 6, 4, 2)
        assert (a.hwsrc, a.psrc, a.hwdst, a.pdst) == (GATEWAY_MAC, target, GUEST_MAC, str(GUEST_IP4))
        assert frame == arp_reply(target)  # and nothing else: 42 bytes, no padding
    n = len(ARP_TARGETS)
    assert (c["rx_guest_packets"], c["gateway_arp_replies"], c["tx_guest_packets"]) == (n, n, n)
    assert (c["tx_uplink_packets"], c["flows_created"], c["gateway_ndp_replies"]) == (0, 0, 0)
    assert drops(c) == {}


def test_arp_variants_that_are_answered(eal):
    padded = arp_request("10.0.0.1") + b"\0" * 18  # the 60-byte minimum frame most stacks send
    unicast = arp_request("10.0.0.1", eth_dst=GATEWAY_MAC)  # a cached entry being confirmed
    tagged = raw(Ether(dst="ff:ff:ff:ff:ff:ff", src=GUEST_MAC) / Dot1Q(vlan=42, prio=3)
                 / ARP(op=1, hwsrc=GUEST_MAC, psrc=str(GUEST_IP4), pdst="10.0.0.1"))
    with ring_sled(n_uplinks=1) as sled:
        sled.send("guest0", [padded, unicast, tagged])
        out = sled.recv("guest0")
        c = sled.counters()
    assert out[:2] == [arp_reply("10.0.0.1")] * 2
    expected_tagged = raw(Ether(dst=GUEST_MAC, src=GATEWAY_MAC) / Dot1Q(vlan=42, prio=3)
                          / ARP(op=2, hwsrc=GATEWAY_MAC, psrc="10.0.0.1", hwdst=GUEST_MAC, pdst=str(GUEST_IP4)))
    assert out[2:] == [expected_tagged]
    assert Ether(out[2])[Dot1Q].vlan == 42
    assert (c["gateway_arp_replies"], c["tx_guest_packets"]) == (3, 3) and drops(c) == {}


# ARP from or for another MAC is spoofed: tests/test_guest_spoof.py
ARP_NOT_ANSWERED = {
    "unicast-to-another-mac": arp_request("10.0.0.1", eth_dst=OTHER_MAC),
    "announcement": arp_request(str(GUEST_IP4)),  # gratuitous: sender = target
    "probe": arp_request(str(GUEST_IP4), psrc="0.0.0.0"),  # RFC 5227: an answer would be an address conflict
    "reply-from-the-guest": raw(Ether(dst=GATEWAY_MAC, src=GUEST_MAC)
                                / ARP(op=2, hwsrc=GUEST_MAC, psrc=str(GUEST_IP4), hwdst=GATEWAY_MAC, pdst="10.0.0.1")),
    "truncated": arp_request("10.0.0.1")[:14 + 27],
}


@pytest.mark.parametrize("case", list(ARP_NOT_ANSWERED))
def test_arp_not_answered_is_dropped_and_counted(eal, case):
    with ring_sled(n_uplinks=1) as sled:
        sled.send("guest0", [ARP_NOT_ANSWERED[case]] * 2)
        assert sled.recv("guest0") == [] and sled.recv("uplink0") == []
        c = sled.counters()
    assert drops(c) == {"gateway_arp_ignored": 2}
    assert (c["gateway_arp_replies"], c["tx_guest_packets"], c["tx_uplink_packets"]) == (0, 0, 0)


def test_non_arp_non_ip_is_still_not_ip(eal):
    lldp = raw(Ether(dst="01:80:c2:00:00:0e", src=GUEST_MAC, type=0x88CC) / Raw(b"\0" * 46))
    with ring_sled(n_uplinks=1) as sled:
        sled.send("guest0", [lldp])
        assert sled.recv("guest0") == [] and sled.recv("uplink0") == []
        c = sled.counters()
    assert drops(c) == {"not_ip": 1} and c["gateway_arp_replies"] == 0


# -- neighbor discovery ------------------------------------------------------------------------------

NS_CASES = {
    # a neighbor in the VPC, to its solicited-node group
    "multicast": (neighbor_solicit("fd77::9"), neighbor_advert("fd77::9")),
    # the gateway's link-local, unicast (neighbor unreachability detection)
    "unicast": (neighbor_solicit(GATEWAY_LL, src=GUEST_LL, unicast=True), neighbor_advert(GATEWAY_LL, dst=GUEST_LL)),
    # somebody probing the gateway's address: answered to all-nodes, without S
    "dad-of-the-gateway": (neighbor_solicit(GATEWAY_LL, src="::"), neighbor_advert(GATEWAY_LL, dst="ff02::1")),
}


@pytest.mark.parametrize("case", list(NS_CASES))
def test_neighbor_solicit_gets_the_advert_on_the_guest_port(eal, case):
    ns, expected = NS_CASES[case]
    with ring_sled(n_uplinks=1) as sled:
        sled.send("guest0", [ns])
        out = sled.recv("guest0")
        assert sled.recv("uplink0") == []
        c = sled.counters()
    assert len(out) == 1
    pkt = Ether(out[0])
    sent = Ether(ns)[IPv6]
    dad = sent.src == "::"
    target = sent[ICMPv6ND_NS].tgt
    assert (pkt.dst, pkt.src, pkt.type) == ("33:33:00:00:00:01" if dad else GUEST_MAC, GATEWAY_MAC, 0x86DD)
    ip6 = pkt[IPv6]
    assert (ip6.src, ip6.dst, ip6.hlim, ip6.nh, ip6.plen) == (target, "ff02::1" if dad else sent.src, 255, 58, 32)
    na = pkt[ICMPv6ND_NA]
    assert (na.type, na.code, na.R, na.S, na.O, na.tgt) == (136, 0, 1, 0 if dad else 1, 1, target)
    assert (pkt[ICMPv6NDOptDstLLAddr].type, pkt[ICMPv6NDOptDstLLAddr].len) == (2, 1)
    assert pkt[ICMPv6NDOptDstLLAddr].lladdr == GATEWAY_MAC
    claimed = na.cksum
    del na.cksum
    assert Ether(raw(pkt))[ICMPv6ND_NA].cksum == claimed  # scapy's own computation agrees
    assert out[0] == expected
    assert (c["rx_guest_packets"], c["gateway_ndp_replies"], c["tx_guest_packets"]) == (1, 1, 1)
    assert (c["tx_uplink_packets"], c["flows_created"]) == (0, 0) and drops(c) == {}


NDP_NOT_ANSWERED = {
    # the guest testing its own address: an answer would make it give the address up
    "dad-of-the-guest-address": neighbor_solicit(str(GUEST_IP6), src="::"),
    "dad-of-the-guest-link-local": neighbor_solicit(GUEST_LL, src="::"),
    "router-solicitation-hop-limit-254": raw(Ether(dst="33:33:00:00:00:02", src=GUEST_MAC)
                                             / IPv6(src=GUEST_LL, dst="ff02::2", hlim=254) / ICMPv6ND_RS()
                                             / ICMPv6NDOptSrcLLAddr(lladdr=GUEST_MAC)),
    "unsolicited-advert": raw(Ether(dst="33:33:00:00:00:01", src=GUEST_MAC)
                              / IPv6(src=str(GUEST_IP6), dst="ff02::1", hlim=255)
                              / ICMPv6ND_NA(R=0, S=0, O=1, tgt=str(GUEST_IP6)) / ICMPv6NDOptDstLLAddr(lladdr=GUEST_MAC)),
    "hop-limit-254": neighbor_solicit("fd77::9", hlim=254),  # may come from off-link
}


@pytest.mark.parametrize("case", list(NDP_NOT_ANSWERED))
def test_neighbor_discovery_not_answered_is_dropped_and_counted(eal, case):
    with ring_sled(n_uplinks=1) as sled:
        sled.send("guest0", [NDP_NOT_ANSWERED[case]] * 2)
        assert sled.recv("guest0") == [] and sled.recv("uplink0") == []
        c = sled.counters()
    assert drops(c) == {"gateway_ndp_ignored": 2}
    assert (c["gateway_ndp_replies"], c["tx_guest_packets"], c["tx_uplink_packets"], c["flows_created"]) == (0, 0, 0, 0)


# -- the rest goes on as before ----------------------------------------------------------------------

def test_ip_traffic_is_still_encapsulated_among_the_answers(eal):
    frames = [arp_request("10.0.0.1"), udp4(), neighbor_solicit("fd77::9"), echo6(),
              ARP_NOT_ANSWERED["probe"], NDP_NOT_ANSWERED["router-solicitation-hop-limit-254"]]
    with ring_sled(n_uplinks=1) as sled:
        sled.send("guest0", frames)
        answers = sled.recv("guest0")
        out = sled.recv("uplink0")
        c = sled.counters()
    assert answers == [arp_reply("10.0.0.1"), neighbor_advert("fd77::9")]
    assert [Ether(f)[IPv6].dst for f in out] == [str(TEP), str(TEP)]
    # 70 bytes of outer headers, then the guest's frame with its destination MAC rewritten
    assert [f[OUTER_HDR_LEN:] for f in out] == [mac_bytes(BOUNDARY_MAC) + f[6:] for f in (udp4(), echo6())]
    assert (c["rx_guest_packets"], c["tx_uplink_packets"], c["flows_created"], c["tx_guest_packets"]) == (6, 2, 2, 2)
    assert (c["gateway_arp_replies"], c["gateway_ndp_replies"]) == (1, 1)
    assert drops(c) == {"gateway_arp_ignored": 1, "gateway_ndp_ignored": 1}
