"""Flow table behaviour through the data plane: expiry, a full table, and the outbound drop reasons.

Times are short (a few hundred ms) and every check that involves a deadline polls rather than
sleeps a fixed time, within a budget of the worker's time on its CPU (Sled.wait_for), so the
tests stay quick and do not depend on how busy the machine is.
"""
import ipaddress
import time

import pytest
from scapy.all import ARP, GRE, ICMP, IP, TCP, UDP, Ether, IPv6, Raw, raw

from opte_fast.controlplane.state import V2B, Tep
from tests.support.flowhash import flow_hash, nexthop_hash
from tests.support.sled import (
    GATEWAY_MAC,
    GUEST_IP4,
    GUEST_IP6,
    GUEST_MAC,
    SWITCH_MACS,
    TEP,
    default_state,
    gateway,
    ring_sled,
    uplink,
)
from tests.test_inbound import DROP_COUNTERS, INNER_OTHER_MAC, encap
from tests.test_outbound import GUEST_VNI

ROUTE = ipaddress.ip_network("fd00:99::/64")


def udp4(i: int, dst: str = "198.51.100.7") -> bytes:
    return raw(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IP(src=str(GUEST_IP4), dst=dst) / UDP(sport=1000 + i, dport=53)
               / Raw(b"q"))


def tcp4(sport: int, flags: str) -> bytes:
    return raw(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IP(src=str(GUEST_IP4), dst="203.0.113.9")
               / TCP(sport=sport, dport=443, flags=flags))


def icmp4(ident: int) -> bytes:
    return raw(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IP(src=str(GUEST_IP4), dst="192.0.2.1") / ICMP(id=ident))


# -- expiry ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("proto", ["udp", "icmp"])
def test_idle_flows_expire_after_their_timeout(eal, proto):
    n = 50
    frames = [udp4(i) for i in range(n)] if proto == "udp" else [icmp4(i) for i in range(n)]
    with ring_sled(n_uplinks=1, udp_idle_ms=200, icmp_idle_ms=200) as sled:
        t0 = time.monotonic()
        sled.send("guest0", frames)
        count = sled.dp.flow_count()
        if time.monotonic() - t0 < 0.2:  # (a stalled test process could read it after the idle time)
            assert count == n
        assert len(sled.recv("uplink0")) == n
        t_gone = sled.wait_for(lambda: sled.dp.flow_count() == 0)
        assert t_gone - t0 >= 0.2  # not before the idle time
        c = sled.counters()
        assert (c["flows_created"], c["flows_expired"]) == (n, n)
        assert sled.dp.flows(10) == []
        # An expired flow that comes back is a new flow, forwarded as before.
        sled.send("guest0", frames[:5])
        assert sled.dp.flow_count() == 5 and len(sled.recv("uplink0")) == 5
        assert sled.counters()["flows_created"] == n + 5


def test_traffic_keeps_a_flow_alive(eal):
    with ring_sled(n_uplinks=1, udp_idle_ms=400) as sled:
        for _ in range(10):  # 10 x 50 ms: well past the idle time, never idle that long
            sled.send("guest0", [udp4(0)])
            time.sleep(0.05)
            assert sled.dp.flow_count() == 1
        assert sled.counters()["flows_expired"] == 0
        sled.wait_for(lambda: sled.dp.flow_count() == 0)
        assert sled.counters()["flows_expired"] == 1


def test_fin_and_rst_shorten_the_tcp_timeout(eal):
    with ring_sled(n_uplinks=1, tcp_closed_ms=200, tcp_idle_ms=60_000) as sled:
        t0 = time.monotonic()
        sled.send("guest0", [tcp4(1, "S"), tcp4(1, "A"),      # open
                             tcp4(2, "S"), tcp4(2, "FA"),     # closed by FIN
                             tcp4(3, "S"), tcp4(3, "R"),      # closed by RST
                             tcp4(4, "FA"), tcp4(4, "S")])    # FIN, then a new SYN: open again
        assert sled.dp.flow_count() == 4
        t_gone = sled.wait_for(lambda: sled.dp.flow_count() == 2)
        assert t_gone - t0 >= 0.2
        assert sled.counters()["flows_expired"] == 2
        time.sleep(0.3)  # past the closed timeout again: the open flows stay
        assert sled.dp.flow_count() == 2 and sled.counters()["flows_expired"] == 2
        assert sorted(f["src_port"] for f in sled.dp.flows(10)) == [1, 4]


# -- a full table ----------------------------------------------------------------------------------

def expected_path(sled, h: int) -> tuple[str, int]:
    """(uplink, UDP source port) the bucket tables give flow hash h: what a pinned flow gets too."""
    table = sled.dp.bucket_table("nexthop", ROUTE)
    nh = int(table[nexthop_hash(h) & (len(table) - 1)])
    (name,) = [uplink(i) for i in range(2) if sled.dp.nexthop_id(ROUTE, uplink(i), gateway(i)) == nh]
    return name, 49152 + ((h * 16384) >> 32)


def frames_by_flow(sled) -> dict[int, tuple[str, bytes]]:
    """Inner UDP source port - 1000 (the flow) → (uplink, frame) of every frame sent out."""
    out = {}
    for name in ("uplink0", "uplink1"):
        for f in sled.recv(name):
            flow = Ether(f)[UDP].payload[UDP].sport - 1000  # inner UDP under outer UDP / Geneve / Ether / IP
            assert flow not in out, "one frame per flow and send"
            out[flow] = (name, f)
    return out


def path_of(sent: tuple[str, bytes]) -> tuple[str, int]:
    name, frame = sent
    return name, Ether(frame)[UDP].sport


def test_full_table_forwards_statelessly_and_consistently(eal):
    n = 200
    frames = [udp4(i) for i in range(n)]
    with ring_sled(n_uplinks=2, flow_capacity=64) as sled:
        sled.send("guest0", frames)
        capacity = sled.dp.flow_count()
        c = sled.counters()
        assert 64 <= capacity < n
        assert c["flow_table_full"] == n - capacity
        assert c["flows_created"] == capacity
        assert c["tx_uplink_packets"] == n
        # First come, first served: the table holds the first `capacity` flows.
        assert sorted(f["src_port"] - 1000 for f in sled.dp.flows(n)) == list(range(capacity))
        first = frames_by_flow(sled)
        assert sorted(first) == list(range(n))

        sled.send("guest0", frames)
        c = sled.counters()
        assert c["tx_uplink_packets"] == 2 * n
        assert c["flow_table_full"] == 2 * (n - capacity)
        assert c["flows_created"] == capacity and sled.dp.flow_count() == capacity
        second = frames_by_flow(sled)
        assert second == first  # same uplink and byte-identical frames: same sport, flow label, TEP
        for i in range(n):
            h = flow_hash(GUEST_VNI, 17, str(GUEST_IP4), "198.51.100.7", 1000 + i, 53)
            assert path_of(first[i]) == expected_path(sled, h), i
            assert Ether(first[i][1])[IPv6].fl == h & 0xFFFFF
        assert {u for u, _ in first.values()} == {"uplink0", "uplink1"}
        assert sum(c[k] for k in ("no_route", "no_v2b_match", "tx_full", "no_headroom")) == 0


def test_room_freed_by_expiry_is_used_again(eal):
    with ring_sled(n_uplinks=1, flow_capacity=64, udp_idle_ms=200) as sled:
        sled.send("guest0", [udp4(i) for i in range(100)])
        capacity = sled.dp.flow_count()
        assert sled.counters()["flow_table_full"] == 100 - capacity
        sled.wait_for(lambda: sled.dp.flow_count() == 0)
        sled.send("guest0", [udp4(i) for i in range(100, 100 + capacity)])
        c = sled.counters()
        assert sled.dp.flow_count() == capacity
        assert c["flow_table_full"] == 100 - capacity and c["flows_created"] == 2 * capacity
        assert c["flows_expired"] == capacity
        assert len(sled.recv("uplink0")) == 100 + capacity


# -- outbound drops --------------------------------------------------------------------------------

def test_frame_on_an_unconfigured_guest_port_is_dropped(eal):
    state = default_state(1).replace(guests=())
    with ring_sled(state, n_uplinks=1) as sled:
        sled.send("guest0", [udp4(0), tcp4(1, "S")])
        assert sled.recv("uplink0") == []
        c = sled.counters()
    assert (c["rx_guest_packets"], c["guest_unconfigured"], c["tx_uplink_packets"], c["flows_created"]) == (2, 2, 0, 0)


ETH = Ether(src=GUEST_MAC, dst=GATEWAY_MAC)
OUTBOUND_DROPS = {
    "not-ip": (raw(Ether(src=GUEST_MAC, dst="01:80:c2:00:00:0e", type=0x88CC) / Raw(b"\0" * 46)), "not_ip", None),
    "arp-for-another-mac": (raw(ETH / ARP(hwsrc="02:00:00:00:00:99", psrc=str(GUEST_IP4), pdst="10.0.0.1")),
                               "spoof_arp_sender", None),
    "ipv4-fragment-first": (raw(ETH / IP(src=str(GUEST_IP4), dst="1.1.1.1", flags="MF") / UDP() / Raw(b"x" * 16)),
                            "ip_fragment", None),
    "ipv4-fragment-later": (raw(ETH / IP(src=str(GUEST_IP4), dst="1.1.1.1", frag=2, proto=17) / Raw(b"x" * 16)),
                            "ip_fragment", None),
    "gre": (raw(ETH / IP(src=str(GUEST_IP4), dst="1.1.1.1") / GRE() / IP()), "l4_unsupported", None),
    "truncated-tcp": (raw(ETH / IP(src=str(GUEST_IP4), dst="1.1.1.1") / TCP())[:14 + 20 + 12], "parse_truncated",
                      None),
    "truncated-tcp-options": (raw(ETH / IP(src=str(GUEST_IP4), dst="1.1.1.1")
                                  / TCP(options=[("MSS", 1460), ("NOP", None), ("NOP", None)]))[:14 + 20 + 22],
                              "parse_truncated", None),
    "no-v2b-ipv4": (udp4(0), "no_v2b_match",
                    lambda s: s.replace(v2b=(V2B(ipaddress.ip_network("2001:db8::/32"), (Tep(TEP),)),))),
    "no-v2b-ipv6": (raw(ETH / IPv6(src=str(GUEST_IP6), dst="2001:db9::1") / UDP()), "no_v2b_match",
                    lambda s: s.replace(v2b=(V2B(ipaddress.ip_network("2001:db8::/32"), (Tep(TEP),)),))),
    "ipv4-under-ipv6-default": (udp4(0), "no_v2b_match",
                                lambda s: s.replace(v2b=(V2B(ipaddress.ip_network("::/0"), (Tep(TEP),)),))),
    "no-route-to-tep": (udp4(0), "no_route",
                        lambda s: default_state(1, teps=(ipaddress.IPv6Address("fd00:98::1"),))),
}


@pytest.mark.parametrize("case", list(OUTBOUND_DROPS))
def test_outbound_drop_reasons(eal, case):
    frame, counter, make_state = OUTBOUND_DROPS[case]
    state = make_state(default_state(1)) if make_state else default_state(1)
    with ring_sled(state, n_uplinks=1) as sled:
        sled.send("guest0", [frame, frame])
        assert sled.recv("uplink0") == []
        c = sled.counters()
        assert sled.dp.flow_count() == 0
    assert c[counter] == 2
    assert (c["rx_guest_packets"], c["tx_uplink_packets"], c["flows_created"], c["flow_table_full"]) == (2, 0, 0, 0)
    assert sum(c[k] for k in DROP_COUNTERS) == 2


def test_a_valid_frame_still_goes_out_after_the_drops(eal):
    frames = [f for f, _, make_state in OUTBOUND_DROPS.values() if make_state is None]
    with ring_sled(n_uplinks=1) as sled:
        sled.send("guest0", frames + [udp4(0)])
        out = sled.recv("uplink0")
        assert len(out) == 1 and Ether(out[0])[IPv6].dst == str(TEP)
        assert sled.counters()["tx_uplink_packets"] == 1
        assert Ether(out[0]).dst == SWITCH_MACS[0]


# -- a flow removed in the middle of a burst ---------------------------------------------------------
# Regression: entries[] comes from one bulk lookup before the per-packet loop. When a packet's path
# refresh fails its flow is removed; later packets of that flow in the same burst must not use the
# stale entry: removing it again took n_active and the TEP's flow count below zero, and once a new
# flow had taken the freed slot the packet went out along that flow's path.
TEP2 = ipaddress.IPv6Address("fd00:99::2")


def send_as_one_burst(sled, frames: list[bytes]) -> None:
    """Send guest frames so that the worker most likely takes them in one burst: behind a backlog of
    uplink frames (dropped, vni_mac_unknown) the worker polls guest0 only every 32 of those, long
    after the few guest frames are all on the ring."""
    before = sled.counters()
    backlog = [encap(INNER_OTHER_MAC)] * 2000
    assert sled.dp.inject("uplink0", backlog) == len(backlog)
    assert sled.dp.inject("guest0", frames) == len(frames)
    sled.wait_for(lambda: (sled.counters()["rx_guest_packets"] - before["rx_guest_packets"],
                      sled.counters()["rx_uplink_packets"] - before["rx_uplink_packets"]) == (len(frames), 2000))
    sled.dp.quiesce()


def test_flow_whose_tep_went_down_is_removed_once_per_burst(eal):
    state = default_state(1)
    with ring_sled(state, n_uplinks=1) as sled:
        sled.send("guest0", [udp4(0)])
        assert sled.dp.flow_count() == 1 and len(sled.recv("uplink0")) == 1
        sled.dp.commit(state.with_tep_state(TEP, False))
        send_as_one_burst(sled, [udp4(0)] * 3)
        assert sled.recv("uplink0") == []
        assert sled.counters()["no_live_tep"] == 3
        assert sled.dp.flow_count() == 0
        assert all(t["flows"] == 0 for t in sled.dp.paths()["teps"])


def test_packet_of_a_removed_flow_never_takes_another_flows_path(eal):
    state = default_state(1).replace(v2b=(
        V2B(ipaddress.ip_network("0.0.0.0/0"), (Tep(TEP),)),
        V2B(ipaddress.ip_network("198.51.100.0/24"), (Tep(TEP2),))))
    a = raw(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IP(src=str(GUEST_IP4), dst="203.0.113.9") / UDP(sport=7, dport=7))
    with ring_sled(state, n_uplinks=1, flow_capacity=64) as sled:
        sled.send("guest0", [a])
        sled.send("guest0", [udp4(i) for i in range(100)])  # fill the table: A holds one of its slots
        capacity = sled.dp.flow_count()
        sled.recv("uplink0")
        sled.dp.commit(state.with_tep_state(TEP, False))
        b = udp4(500)  # a new flow to the live TEP2, while the table is full but for A's slot
        send_as_one_burst(sled, [a, b, a])
        out = [Ether(f) for f in sled.recv("uplink0")]
        c = sled.counters()
        assert [f[IPv6].dst for f in out] == [str(TEP2)]  # B only: both packets of A are dropped
        assert c["no_live_tep"] == 2
        assert sled.dp.flow_count() == capacity
