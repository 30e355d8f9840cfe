"""Outbound wire format: a guest frame in, the exact Geneve/IPv6 frame out.

Expected bytes are written out field by field here (DESIGN.md, Wire format),
with the flow hash computed independently (tests/support/flowhash.py: the keyed hash of the
48-byte key under the test key).
"""
import ipaddress
import subprocess

import pytest
from scapy.all import ICMP, IP, TCP, UDP, Ether, ICMPv6EchoRequest, IPv6, Raw, raw
from scapy.contrib.geneve import GENEVE

from opte_fast.controlplane.state import V2B, V2P, Tep
from tests.support.flowhash import entropy_port, flow_hash
from tests.support.geneve import BOUNDARY_MAC
from tests.support.sled import (
    GATEWAY_MAC,
    GUEST_IP4,
    GUEST_IP6,
    GUEST_MAC,
    GUEST_VNI,
    SWITCH_MACS,
    TEP,
    UNDERLAY,
    default_state,
    ring_sled,
)
from tests.support.wire import outbound_frame

CASES = {
    "ipv4-tcp": (Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IP(src=str(GUEST_IP4), dst="93.184.216.34", id=1)
                 / TCP(sport=40000, dport=443, flags="S"), 6, str(GUEST_IP4), "93.184.216.34", 40000, 443),
    "ipv4-udp": (Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IP(src=str(GUEST_IP4), dst="1.1.1.1", id=1)
                 / UDP(sport=5353, dport=53) / Raw(b"query"), 17, str(GUEST_IP4), "1.1.1.1", 5353, 53),
    "ipv4-icmp-echo": (Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IP(src=str(GUEST_IP4), dst="8.8.8.8", id=1)
                       / ICMP(type=8, id=0x1234, seq=1), 1, str(GUEST_IP4), "8.8.8.8", 0x1234, 0),
    "ipv6-tcp": (Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IPv6(src=str(GUEST_IP6), dst="2001:db8::80")
                 / TCP(sport=40001, dport=80), 6, str(GUEST_IP6), "2001:db8::80", 40001, 80),
    "ipv6-udp": (Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IPv6(src=str(GUEST_IP6), dst="2001:db8::53")
                 / UDP(sport=5353, dport=53) / Raw(b"q6"), 17, str(GUEST_IP6), "2001:db8::53", 5353, 53),
    "ipv6-icmpv6-echo": (Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IPv6(src=str(GUEST_IP6), dst="2001:db8::1")
                         / ICMPv6EchoRequest(id=0x4321, seq=7), 58, str(GUEST_IP6), "2001:db8::1", 0x4321, 0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_guest_to_internet_is_encapsulated_toward_boundary_services(eal, case):
    pkt, proto, src, dst, sport, dport = CASES[case]
    inner = raw(pkt)
    h = flow_hash(GUEST_VNI, proto, src, dst, sport, dport)
    with ring_sled(n_uplinks=2) as sled:
        sled.send("guest0", [inner])
        out = {u: sled.recv(u) for u in ("uplink0", "uplink1")}
        flow = sled.dp.flows(10)
        assert len(flow) == 1 and flow[0]["hash"] == h
        chosen = flow[0]["uplink"]
        other = "uplink1" if chosen == "uplink0" else "uplink0"
        assert out[other] == []
        uplink_mac = next(p["mac"] for p in sled.dp.ports() if p["name"] == chosen)
        nexthop_mac = SWITCH_MACS[int(chosen[-1])]
        assert out[chosen] == [outbound_frame(inner, h, nexthop_mac, uplink_mac, TEP, 99, BOUNDARY_MAC)]
        c = sled.counters()
        assert (c["rx_guest_packets"], c["tx_uplink_packets"], c["flows_created"]) == (1, 1, 1)


def test_guest_to_guest_on_another_sled_uses_v2p(eal):
    peer_sled = ipaddress.IPv6Address("fd00:99::77")  # inside the routed underlay prefix
    peer_mac = "02:00:00:00:00:99"
    state = default_state(2)
    state = state.replace(v2p=(V2P(GUEST_VNI, ipaddress.IPv4Address("10.0.0.9"), peer_sled, peer_mac),))
    pkt = Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IP(src=str(GUEST_IP4), dst="10.0.0.9", id=1) / UDP(sport=1, dport=2)
    inner = raw(pkt)
    h = flow_hash(GUEST_VNI, 17, str(GUEST_IP4), "10.0.0.9", 1, 2)
    with ring_sled(state, n_uplinks=2) as sled:
        sled.send("guest0", [inner])
        chosen = sled.dp.flows(1)[0]["uplink"]
        uplink_mac = next(p["mac"] for p in sled.dp.ports() if p["name"] == chosen)
        out = sled.recv(chosen)
        assert out == [outbound_frame(inner, h, SWITCH_MACS[int(chosen[-1])], uplink_mac, peer_sled, GUEST_VNI,
                                      peer_mac)]


def test_sixty_ipv4_v2b_prefixes_commit_and_each_is_matched(eal):
    """The IPv4 barrier takes a rule of the table's own: 16 or more IPv4 prefixes once did not fit."""
    tep_of = {i: ipaddress.IPv6Address(f"fd00:99::{i + 1:x}") for i in range(60)}
    state = default_state(1).replace(v2b=tuple(
        V2B(ipaddress.ip_network(f"198.51.{i}.0/24"), (Tep(tep_of[i]),)) for i in range(60)))
    frames = [raw(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IP(src=str(GUEST_IP4), dst=f"198.51.{i}.7")
                  / UDP(sport=1, dport=2)) for i in range(60)]
    with ring_sled(state, n_uplinks=1) as sled:
        sled.send("guest0", frames)
        assert [IPv6(f[14:]).dst for f in sled.recv("uplink0")] == [str(tep_of[i]) for i in range(60)]


def test_output_decodes_in_scapy_and_tshark(eal, tmp_path):
    pkt, *_ = CASES["ipv4-tcp"]
    with ring_sled(n_uplinks=1) as sled:
        sled.send("guest0", [raw(pkt)])
        (frame,) = sled.recv("uplink0")
    decoded = Ether(frame)
    assert decoded[IPv6].src == str(UNDERLAY) and decoded[IPv6].dst == str(TEP)
    assert decoded[IPv6].hlim == 128 and decoded[IPv6].nh == 17
    assert decoded[UDP].dport == 6081 and 49152 <= decoded[UDP].sport <= 65535 and decoded[UDP].chksum == 0
    gnv = decoded[GENEVE]
    assert (gnv.version, gnv.optionlen, gnv.proto, gnv.vni) == (0, 0, 0x6558, 99)
    inner = gnv.payload
    assert inner.dst == BOUNDARY_MAC and inner.src == GUEST_MAC and inner[TCP].dport == 443

    from scapy.utils import wrpcap
    pcap = tmp_path / "out.pcap"
    wrpcap(str(pcap), [decoded])
    fields = subprocess.run(
        ["tshark", "-r", str(pcap), "-T", "fields", "-e", "ipv6.src", "-e", "ipv6.dst", "-e", "udp.dstport",
         "-e", "geneve.vni", "-e", "geneve.proto_type", "-e", "eth.dst", "-e", "tcp.dstport"],
        capture_output=True, text=True, check=True).stdout.split()
    assert fields[:3] == [str(UNDERLAY), str(TEP), "6081"]
    assert (int(fields[3], 16), int(fields[4], 16)) == (99, 0x6558)
    assert BOUNDARY_MAC in fields[5] and fields[-1] == "443"


def test_udp_source_port_is_stable_per_flow_and_spreads_over_the_range(eal):
    n_flows = 10_000
    flows = [(f"198.51.{i >> 8}.{i & 255}", 1000 + (i % 7)) for i in range(n_flows)]
    frames = [raw(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IP(src=str(GUEST_IP4), dst=dst) / UDP(sport=sport, dport=53))
              for dst, sport in flows]
    with ring_sled(n_uplinks=1) as sled:
        ports = []
        for start in range(0, n_flows, 1000):
            sled.send("guest0", frames[start:start + 1000])
            ports += [Ether(f)[UDP].sport for f in sled.recv("uplink0")]
        sled.send("guest0", frames[:1000])  # the same flows again
        again = [Ether(f)[UDP].sport for f in sled.recv("uplink0")]
    assert ports == [entropy_port(flow_hash(GUEST_VNI, 17, GUEST_IP4, dst, sport, 53)) for dst, sport in flows]
    assert again == ports[:1000]
    values = 65535 - 49152 + 1
    uniform = values * (1 - (1 - 1 / values) ** n_flows)  # expected distinct values of a uniform hash
    # the ports are known exactly (the test key): this bound says the hash spreads them as a random one would
    assert len(set(ports)) >= 0.95 * uniform


def test_udp_checksum_and_custom_source_port_range(eal):
    pkt, proto, src, dst, sport, dport = CASES["ipv4-udp"]
    with ring_sled(n_uplinks=1, udp_checksum=True, udp_sport_min=50000, udp_sport_max=50099) as sled:
        sled.send("guest0", [raw(pkt)])
        (frame,) = sled.recv("uplink0")
    decoded = Ether(frame)
    assert decoded[UDP].sport == entropy_port(flow_hash(GUEST_VNI, proto, src, dst, sport, dport), 50000, 50099)
    claimed = decoded[UDP].chksum
    assert claimed != 0
    del decoded[UDP].chksum
    assert Ether(raw(decoded))[UDP].chksum == claimed


def test_a_v2p_change_moves_existing_flows_to_the_new_sled(eal):
    ip = ipaddress.IPv4Address("10.0.0.9")
    state = default_state(1).replace(v2p=(V2P(GUEST_VNI, ip, ipaddress.IPv6Address("fd00:99::77"), "02:00:00:00:00:99"),))
    frame = raw(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IP(src=str(GUEST_IP4), dst=str(ip)) / UDP(sport=1, dport=2))
    with ring_sled(state, n_uplinks=1) as sled:
        sled.send("guest0", [frame])
        assert Ether(sled.recv("uplink0")[0])[IPv6].dst == "fd00:99::77"
        sled.dp.commit(state.replace(v2p=(V2P(GUEST_VNI, ip, ipaddress.IPv6Address("fd00:99::88"), "02:00:00:00:00:98"),)))
        sled.send("guest0", [frame])
        moved = Ether(sled.recv("uplink0")[0])
        assert moved[IPv6].dst == "fd00:99::88" and moved[GENEVE].payload.dst == "02:00:00:00:00:98"
        # A routing change, not a member lost: counted as rerouted (tests/test_reroute.py).
        c = sled.counters()
        assert (c["flows_rerouted"], c["flows_migrated"]) == (1, 0)
