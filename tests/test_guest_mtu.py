"""Guest packets too big for the underlay, through the data plane on ring ports. Encapsulation puts 56
bytes of outer IPv6, UDP and Geneve around the guest's whole Ethernet frame, so with the default
underlay MTU of 1500 an untagged guest IP packet may be 1430 bytes. One byte more and it is not
sent: IPv4 with DF and IPv6 get ICMP fragmentation needed / ICMPv6 packet too big back from the
gateway with MTU 1430 (1426 under a VLAN tag), IPv4 without DF is dropped and counted. Errors are
decoded with scapy, their checksums recomputed by it, and no flow is created for such a packet.
"""
import dataclasses

import pytest
from scapy.all import ICMP, IP, UDP, Dot1Q, Ether, ICMPv6PacketTooBig, IPerror, IPv6, Raw, raw
from scapy.layers.inet6 import IPerror6

from opte_fast.controlplane.dataplane import DataplaneError
from tests.support.checksums import checksums_hold
from tests.support.gateway import GATEWAY_LL
from tests.support.sled import GATEWAY_MAC, GUEST_IP4, GUEST_IP6, GUEST_MAC, default_state, drops, ring_sled

GATEWAY_IP4 = "10.0.0.1"
OUTER = 70


def udp4(ip_len: int, df: bool = True, vlan: int | None = None) -> bytes:
    l2 = Ether(src=GUEST_MAC, dst=GATEWAY_MAC)
    if vlan is not None:
        l2 /= Dot1Q(vlan=vlan)
    pkt = IP(src=str(GUEST_IP4), dst="198.51.100.7", flags="DF" if df else 0, id=7) / UDP(sport=1000, dport=9)
    frame = raw(l2 / pkt / Raw((bytes(range(256)) * 40)[:ip_len - 28]))
    assert len(Ether(frame)[IP]) == ip_len
    return frame


def udp6(ip_len: int) -> bytes:
    pkt = IPv6(src=str(GUEST_IP6), dst="2001:db8::9") / UDP(sport=1000, dport=9) / Raw((bytes(range(256)) * 40)[:ip_len - 48])
    return raw(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / pkt)


def run(frames: list[bytes], **options) -> tuple[list[bytes], list[bytes], dict[str, int]]:
    with ring_sled(n_uplinks=1, **options) as sled:
        sled.send("guest0", frames)
        return sled.recv("guest0"), sled.recv("uplink0"), sled.counters()


def test_the_largest_packet_that_fits_goes_out_at_exactly_the_underlay_mtu(eal):
    answers, out, c = run([udp4(1430), udp6(1430)])
    assert answers == [] and [len(f) for f in out] == [14 + 1500] * 2
    assert [Ether(f)[IPv6].plen for f in out] == [1500 - 40] * 2
    assert drops(c) == {} and c["flows_created"] == 2


def test_ipv4_with_df_one_byte_too_big_gets_fragmentation_needed(eal):
    sent = udp4(1431)
    answers, out, c = run([sent])
    assert out == [] and len(answers) == 1
    pkt = Ether(answers[0])
    assert (pkt.dst, pkt.src, pkt.type) == (GUEST_MAC, GATEWAY_MAC, 0x0800)
    assert (pkt[IP].src, pkt[IP].dst, pkt[IP].proto, pkt[IP].ttl, pkt[IP].len) == (GATEWAY_IP4, str(GUEST_IP4), 1, 64, 576)
    assert (pkt[ICMP].type, pkt[ICMP].code, pkt[ICMP].nexthopmtu) == (3, 4, 1430)
    # RFC 1812: as much of the packet as fits in 576 bytes, unchanged
    assert raw(pkt[ICMP])[8:] == sent[14:14 + 576 - 28]
    assert pkt[IPerror].src == str(GUEST_IP4) and pkt[IPerror].len == 1431
    checksums_hold(answers[0])
    assert (c["icmp_frag_needed"], c["tx_guest_packets"], c["flows_created"], c["tx_uplink_packets"]) == (1, 1, 0, 0)
    assert drops(c) == {}


def test_ipv6_one_byte_too_big_gets_packet_too_big(eal):
    sent = udp6(1431)
    answers, out, c = run([sent])
    assert out == [] and len(answers) == 1
    pkt = Ether(answers[0])
    assert (pkt.dst, pkt.src, pkt.type) == (GUEST_MAC, GATEWAY_MAC, 0x86DD)
    assert (pkt[IPv6].src, pkt[IPv6].dst, pkt[IPv6].nh, pkt[IPv6].hlim) == (GATEWAY_LL, str(GUEST_IP6), 58, 255)
    assert len(answers[0]) == 14 + 1280  # RFC 4443: as much as fits in the minimum MTU
    ptb = pkt[ICMPv6PacketTooBig]
    assert (ptb.type, ptb.code, ptb.mtu) == (2, 0, 1430)
    assert raw(ptb)[8:] == sent[14:14 + 1280 - 48]
    assert pkt[IPerror6].src == str(GUEST_IP6)
    checksums_hold(answers[0])
    assert (c["icmp6_packet_too_big"], c["tx_guest_packets"], c["flows_created"]) == (1, 1, 0) and drops(c) == {}


def test_a_vlan_tag_leaves_four_bytes_less_and_stays_on_the_error(eal):
    answers, out, c = run([udp4(1427, vlan=9), udp4(1426, vlan=9)])
    assert len(out) == 1 and len(out[0]) == 14 + 1500
    pkt = Ether(answers[0])
    assert pkt[Dot1Q].vlan == 9 and pkt[ICMP].nexthopmtu == 1426


def test_ipv4_without_df_too_big_is_dropped_not_fragmented(eal):
    answers, out, c = run([udp4(1431, df=False)] * 2)
    assert answers == [] and out == []
    assert drops(c) == {"over_mtu_no_df": 2} and c["flows_created"] == 0


def with_guest_mtu(mtu: int):
    state = default_state(1)
    return state.replace(guests=tuple(dataclasses.replace(g, mtu_bytes=mtu) for g in state.guests))


def test_a_larger_underlay_mtu_carries_larger_packets(eal):
    answers, out, c = run([udp4(2000), udp4(2001)], underlay_mtu=2070, state=with_guest_mtu(2001))
    assert [len(f) for f in out] == [14 + 2070]
    assert Ether(answers[0])[ICMP].nexthopmtu == 2000


def test_errors_are_rate_limited_per_worker(eal):
    n = 400
    answers, out, c = run([udp4(1431)] * n)
    # a burst of 100 at once, then one a millisecond: sending 400 frames takes far less than 300 ms
    assert 100 <= len(answers) < n
    assert c["icmp_frag_needed"] == len(answers)
    assert drops(c) == {"over_mtu_rate_limited": n - len(answers)}


@pytest.mark.parametrize("mtu", [1349, 9217])
def test_an_underlay_mtu_out_of_range_is_refused(eal, mtu):
    with pytest.raises(DataplaneError, match="underlay MTU must be 1350 to 9216 bytes"):
        with ring_sled(n_uplinks=1, underlay_mtu=mtu):
            pass
