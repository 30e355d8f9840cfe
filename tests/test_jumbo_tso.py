"""Jumbo frames in chained mbufs both ways, the guest port's MTU, and a virtio-net guest's offloads,
through the data plane on ring ports. Frames go in as net_vhost or a NIC with scatter hands them
over: chains of segments (a long frame always; down to 64-byte segments, so headers span them), and
flagged as net_vhost flags a guest's TCP segmentation offload (RX_LRO with tso_segsz) and partial
checksums (RX_L4_CKSUM_NONE). What leaves is compared byte for byte with what scapy builds: the
guest's frame encapsulated whole, each TSO segment as the kernel would have cut it with its
checksums complete, or the inner frame delivered to the guest.
"""
import dataclasses

import pytest
from scapy.all import ICMP, IP, TCP, UDP, Ether, IPv6, IPv6ExtHdrDestOpt, PadN, Raw, raw

from tests.support.checksums import checksums_hold
from tests.support.flowhash import flow_hash
from tests.support.geneve import BOUNDARY_MAC
from tests.support.sled import (
    GATEWAY_MAC,
    GUEST_IP4,
    GUEST_IP6,
    GUEST_MAC,
    GUEST_VNI,
    SWITCH_MACS,
    TEP,
    default_state,
    drops,
    ring_sled,
)
from tests.support.wire import delivered, encap, outbound_frame

PAYLOAD = bytes(range(251)) * 256  # 64 KB that show any misplaced byte (251: no period of 256)


def guest_state(mtu: int):
    state = default_state(1)
    return state.replace(guests=tuple(dataclasses.replace(g, mtu_bytes=mtu) for g in state.guests))


def udp_frame(ip_len: int, ipv6: bool = False) -> bytes:
    if ipv6:
        l3 = IPv6(src=str(GUEST_IP6), dst="2001:db8::9") / UDP(sport=1000, dport=9)
        head = 48
    else:
        l3 = IP(src=str(GUEST_IP4), dst="198.51.100.7", flags="DF", id=7) / UDP(sport=1000, dport=9)
        head = 28
    return raw(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / l3 / Raw(PAYLOAD[:ip_len - head]))


def encapsulated(inner: bytes, sled) -> bytes:
    """What uplink0 must carry for guest frame `inner`: expected_frame with the flow's hash."""
    pkt = Ether(inner)
    ip = pkt[IPv6] if IPv6 in pkt else pkt[IP]
    l4 = pkt[TCP] if TCP in pkt else pkt[UDP]
    h = flow_hash(GUEST_VNI, 6 if TCP in pkt else 17, ip.src, ip.dst, l4.sport, l4.dport)
    uplink_mac = next(p["mac"] for p in sled.dp.ports() if p["name"] == "uplink0")
    return outbound_frame(inner, h, SWITCH_MACS[0], uplink_mac, TEP, 99, BOUNDARY_MAC)


def run(frames, *, mtu=1500, underlay_mtu=1500, **chained):
    with ring_sled(guest_state(mtu), n_uplinks=1, underlay_mtu=underlay_mtu) as sled:
        sled.send("guest0", frames, **chained)
        return sled, sled.recv("uplink0"), sled.recv("guest0"), sled.counters()


@pytest.mark.parametrize("ipv6", [False, True], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("segment_bytes", [0, 64], ids=["2kb-segments", "64-byte-segments"])
def test_a_jumbo_guest_frame_in_segments_leaves_whole(eal, ipv6, segment_bytes):
    frame = udp_frame(9000, ipv6)
    with ring_sled(guest_state(9000), n_uplinks=1, underlay_mtu=9216) as sled:
        sled.send("guest0", [frame], segment_bytes=segment_bytes)
        out, c = sled.recv("uplink0"), sled.counters()
        assert out == [encapsulated(frame, sled)] and len(out[0]) == 14 + 56 + 14 + 9000
    assert drops(c) == {} and (c["tx_uplink_packets"], c["flows_created"]) == (1, 1)


def test_a_guest_frame_over_the_port_mtu_is_a_counted_drop(eal):
    fits, over = udp_frame(1500), udp_frame(1501)
    _, out, back, c = run([fits, over, udp_frame(9000)], underlay_mtu=1570, segment_bytes=0)
    assert len(out) == 1 and back == [] and len(out[0]) == 14 + 1570
    assert drops(c) == {"guest_over_mtu": 2} and c["flows_created"] == 1


def test_a_jumbo_frame_too_big_for_the_underlay_gets_fragmentation_needed(eal):
    sent = udp_frame(9000)
    _, out, back, c = run([sent], mtu=9000, underlay_mtu=1500, segment_bytes=0)
    assert out == [] and len(back) == 1
    icmp = Ether(back[0])
    assert (icmp[ICMP].type, icmp[ICMP].code, icmp[ICMP].nexthopmtu, icmp[IP].len) == (3, 4, 1430, 576)
    assert raw(icmp[ICMP])[8:] == sent[14:14 + 548]
    checksums_hold(back[0])
    assert c["icmp_frag_needed"] == 1 and drops(c) == {}


def test_headers_past_the_first_segment_are_a_counted_drop(eal):
    # two 1.8 KB Destination Options headers: the UDP header lies past the first segment's 2,048 bytes
    opts = IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\0" * 255)] * 7)
    pkt = (Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IPv6(src=str(GUEST_IP6), dst="2001:db8::9") / opts / opts
           / UDP(sport=1, dport=9) / Raw(b"x" * 100))
    _, out, _, c = run([raw(pkt)], mtu=9000, underlay_mtu=9216, segment_bytes=0)
    assert out == [] and drops(c) == {"headers_beyond_segment": 1}


# As large as the guest's MTU of 9000 lets it be (longer is inner_over_guest_mtu: test_inbound_guest_mtu.py)
INNER_JUMBO = raw(Ether(dst=GUEST_MAC, src=BOUNDARY_MAC) / IP(src="93.184.216.34", dst=str(GUEST_IP4), id=7)
                  / UDP(sport=443, dport=40000) / Raw((PAYLOAD * 2)[:9014 - 42]))


@pytest.mark.parametrize("segment_bytes", [0, 100], ids=["2kb-segments", "100-byte-segments"])
@pytest.mark.parametrize("checksum", ["zero", "valid", "wrong"])
def test_a_jumbo_underlay_frame_in_segments_is_delivered(eal, segment_bytes, checksum):
    frame = encap(INNER_JUMBO, checksum=checksum)
    assert len(frame) == 14 + 70 + 9000
    with ring_sled(guest_state(9000), n_uplinks=1, underlay_mtu=9216, verify_udp_checksum=True) as sled:
        sled.send("uplink0", [frame], segment_bytes=segment_bytes)
        got, c = sled.recv("guest0"), sled.counters()
    if checksum == "wrong":
        assert got == [] and drops(c) == {"udp_bad_checksum": 1}
    else:
        assert got == [delivered(INNER_JUMBO)] and drops(c) == {}


def tcp_frame(payload: int, ipv6: bool = False, flags: str = "PA") -> bytes:
    l3 = (IPv6(src=str(GUEST_IP6), dst="2001:db8::80") if ipv6
          else IP(src=str(GUEST_IP4), dst="93.184.216.34", flags="DF", id=100))
    pkt = Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / l3 / TCP(sport=40000, dport=80, seq=1000, ack=77, flags=flags,
                                                          window=500, chksum=0x1234) / Raw(PAYLOAD[:payload])
    return raw(pkt)  # the checksum left as a guest with offload leaves it: not the real one


def kernel_segments(frame: bytes, mss: int) -> list[bytes]:
    """The segments Linux's GSO cuts from `frame`: same headers, seq and IPv4 id advancing, PSH and FIN
    on the last only, CWR on the first only, checksums whole."""
    pkt = Ether(frame)
    ipv6 = IPv6 in pkt
    data = bytes(pkt[TCP].payload)
    out = []
    for k, off in enumerate(range(0, len(data), mss)):
        seg = pkt.copy()
        seg[TCP].remove_payload()
        seg[TCP].seq = pkt[TCP].seq + off
        seg[TCP].chksum = None
        if off + mss < len(data):
            seg[TCP].flags = int(seg[TCP].flags) & ~0x09
        if k:
            seg[TCP].flags = int(seg[TCP].flags) & ~0x80
        if ipv6:
            seg[IPv6].plen = None
        else:
            seg[IP].id = pkt[IP].id + k
            seg[IP].len = None
            seg[IP].chksum = None
        out.append(raw(seg / Raw(data[off:off + mss])))
    return out


@pytest.mark.parametrize("ipv6", [False, True], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("segment_bytes", [0, 700], ids=["2kb-segments", "700-byte-segments"])
def test_a_tso_frame_is_cut_into_the_kernels_segments_each_encapsulated(eal, ipv6, segment_bytes):
    mss = 1440 if ipv6 else 1460  # what the port's MTU of 1500 leaves
    frame = tcp_frame(10000, ipv6, flags="FPA")
    want = kernel_segments(frame, mss)
    assert len(want) == 7
    with ring_sled(guest_state(1500), n_uplinks=1, underlay_mtu=1570) as sled:
        sled.send("guest0", [frame], segment_bytes=segment_bytes, tso_segsz=mss)
        out, c = sled.recv("uplink0"), sled.counters()
        assert out == [encapsulated(seg, sled) for seg in want], drops(c)
    assert (c["rx_guest_packets"], c["tso_frames"], c["tso_segments"], c["tx_uplink_packets"]) == (1, 1, 7, 7)
    assert drops(c) == {} and c["flows_created"] == 1


def test_a_tso_frame_at_mtu_9000_is_cut_into_jumbo_segments(eal):
    frame = tcp_frame(30000, flags="A")
    want = kernel_segments(frame, 8960)
    assert [len(s) for s in want] == [14 + 9000] * 3 + [14 + 40 + 30000 - 3 * 8960]
    with ring_sled(guest_state(9000), n_uplinks=1, underlay_mtu=9216) as sled:
        sled.send("guest0", [frame], tso_segsz=8960)
        out = sled.recv("uplink0")
        assert out == [encapsulated(seg, sled) for seg in want]


def test_a_partial_checksum_is_completed(eal):
    udp = raw(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IP(src=str(GUEST_IP4), dst="1.1.1.1")
              / UDP(sport=5353, dport=53, chksum=0xbeef) / Raw(b"query"))
    tcp = tcp_frame(1000, ipv6=True)
    with ring_sled(guest_state(1500), n_uplinks=1) as sled:
        sled.send("guest0", [udp, tcp], csum_partial=True)
        out, c = sled.recv("uplink0"), sled.counters()
        whole = [udp, tcp]
        for i, f in enumerate(whole):
            p = Ether(f)
            del p[UDP if i == 0 else TCP].chksum
            whole[i] = raw(p)
        assert out == [encapsulated(f, sled) for f in whole]
    assert c["guest_csum_filled"] == 2 and drops(c) == {}


def test_tso_frames_that_cannot_be_cut_are_counted_drops(eal):
    udp = udp_frame(3000)  # segmentation offload of UDP is not done
    big_mss = tcp_frame(4000)  # 1461-byte segments make 1501-byte packets, over the port's MTU
    bad = bytearray(tcp_frame(4000))
    bad[14 + 20 + 12] = 0x40  # TCP data offset 4: a header shorter than TCP's own
    _, out, _, c = run([udp, big_mss, bytes(bad)], underlay_mtu=1570, tso_segsz=1461)
    assert out == []
    assert drops(c) == {"tso_not_tcp": 1, "guest_over_mtu": 1, "ip_bad_header": 1}


def test_tso_segments_too_big_for_the_underlay_get_one_fragmentation_needed(eal):
    frame = tcp_frame(30000, flags="A")
    _, out, back, c = run([frame], mtu=9000, underlay_mtu=1500, tso_segsz=8960)
    assert out == [] and len(back) == 1
    icmp = Ether(back[0])
    assert (icmp[ICMP].type, icmp[ICMP].code, icmp[ICMP].nexthopmtu) == (3, 4, 1430)
    first = kernel_segments(frame, 8960)[0]
    assert raw(icmp[ICMP])[8:] == first[14:14 + 548]
    checksums_hold(back[0])
    assert (c["icmp_frag_needed"], c["tso_frames"], c["tso_segments"]) == (1, 1, 1) and drops(c) == {}
