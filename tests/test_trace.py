"""Path tracing: the data plane says, for the next N frames that match, what it decided and why.
A known flow is traced through its life: created (miss, its buckets' members), pinned (hit), moved
when its nexthop is withdrawn (migrated from that nexthop); then a V2P match and a drop; then the
flow's replies coming in: decapsulated to the guest, or dropped for a MAC no guest has."""
import ipaddress

import pytest
from scapy.all import IP, UDP, Ether, raw

from opte_fast.controlplane.state import V2P
from tests.support.flowhash import flow_hash, nexthop_bucket, tep_bucket
from tests.support.geneve import BOUNDARY_MAC, encapsulate
from tests.support.sled import (
    GATEWAY_MAC,
    GUEST_IP4,
    GUEST_MAC,
    GUEST_VNI,
    SWITCH_MACS,
    TEP,
    UNDERLAY,
    default_state,
    gateway,
    ring_sled,
)

DST = ipaddress.ip_address("192.0.2.1")


def frame(dst=DST, sport: int = 1000) -> bytes:
    return raw(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IP(src=str(GUEST_IP4), dst=str(dst)) / UDP(sport=sport, dport=53))


def traced(sled) -> tuple[list[dict], bool]:
    records, armed = sled.dp.trace_records()
    for r in records:
        assert r.pop("lcore") == 1
    return records, armed


def test_a_flow_traced_from_creation_through_a_withdrawn_nexthop(eal):
    with ring_sled(n_uplinks=2) as sled:
        sled.dp.trace_start(DST, proto=17, dst_port=53, count=3)
        sled.send("guest0", [frame(), frame(dst="192.0.2.2", sport=2000), frame(sport=1001)])
        flows = {f["src_port"]: f for f in sled.dp.flows(10)}
        h, other = (flow_hash(GUEST_VNI, 17, GUEST_IP4, DST, sport, 53) for sport in (1000, 1001))
        assert (flows[1000]["hash"], flows[1001]["hash"]) == (h, other)
        taken = f"{flows[1000]['nexthop']['gateway']} dev {flows[1000]['uplink']}"
        survivor = next(f"{gateway(i)} dev uplink{i}" for i in range(2) if f"uplink{i}" != flows[1000]["uplink"])
        buckets = {kind: list(sled.dp.bucket_table(kind, ipaddress.ip_network(p)))
                   for kind, p in (("tep", "0.0.0.0/0"), ("nexthop", "fd00:99::/64"))}
        nh_bucket = nexthop_bucket(h)
        route = {"prefix": "fd00:99::/64", "bucket": nh_bucket, "bucket_nexthop": taken}
        v2b = {"prefix": "0.0.0.0/0", "bucket": tep_bucket(h), "bucket_tep": str(TEP)}
        assert buckets["tep"][tep_bucket(h)] == sled.dp.tep_id(ipaddress.ip_network("0.0.0.0/0"), TEP)

        first, armed = traced(sled)
        key = {"vni": GUEST_VNI, "proto": 17, "src": str(GUEST_IP4), "dst": str(DST), "dst_port": 53}
        new = {"direction": "out", "flow_table": "miss", "matched": "v2b", "v2b": v2b, "route": route, "decision": "new",
               "to": str(TEP), "tep": str(TEP), "nexthop": taken, "uplink": flows[1000]["uplink"], "from": None,
               "drop": None}
        assert first == [{"hash": h, "flow": {**key, "src_port": 1000}, **new},
                         {"hash": other, "flow": {**key, "src_port": 1001}, **new, **trace_route(sled, other)}]
        assert armed

        sled.dp.commit(default_state(2, without=int(flows[1000]["uplink"][-1])))  # its nexthop withdrawn
        sled.send("guest0", [frame(), frame()])
        moved, armed = traced(sled)
        assert moved == [{"direction": "out", "hash": h, "flow": {**key, "src_port": 1000}, "flow_table": "hit", "matched": "v2b",
                          "v2b": v2b, "route": {**route, "bucket_nexthop": survivor}, "decision": "migrated",
                          "to": str(TEP), "tep": str(TEP), "nexthop": survivor, "uplink": survivor[-7:],
                          "from": {"tep": str(TEP), "nexthop": taken}, "drop": None}]
        assert not armed  # three frames traced: the trace ended, the second frame went untraced
        assert sled.counters()["flows_migrated"] == 1


def trace_route(sled, h: int) -> dict:
    """The route part of a new flow's record, for a flow other than the first."""
    flow = next(f for f in sled.dp.flows(10) if f["hash"] == h)
    chosen = f"{flow['nexthop']['gateway']} dev {flow['uplink']}"
    return {"route": {"prefix": "fd00:99::/64", "bucket": nexthop_bucket(h),
                      "bucket_nexthop": chosen},
            "v2b": {"prefix": "0.0.0.0/0", "bucket": tep_bucket(h), "bucket_tep": str(TEP)},
            "nexthop": chosen, "uplink": flow["uplink"]}


def test_a_v2p_destination_and_a_drop_are_traced_with_what_matched(eal):
    peer = ipaddress.IPv6Address("fd00:99::77")
    state = default_state(1).replace(v2p=(V2P(GUEST_VNI, ipaddress.IPv4Address("10.0.0.9"), peer, "02:00:00:00:00:99"),))
    with ring_sled(state, n_uplinks=1) as sled:
        sled.dp.trace_start(ipaddress.ip_address("10.0.0.9"), count=1)
        sled.send("guest0", [frame(dst="10.0.0.9")])
        (r,), armed = traced(sled)
        assert (r["flow_table"], r["matched"], r["v2b"], r["decision"], r["to"], r["tep"], r["nexthop"]) == (
            "miss", "v2p", None, "new", str(peer), None, f"{gateway(0)} dev uplink0")
        assert not armed
    with ring_sled(default_state(1).replace(v2b=()), n_uplinks=1) as sled:
        sled.dp.trace_start(DST, count=1)
        sled.send("guest0", [frame()])
        (r,), _ = traced(sled)
        assert (r["flow_table"], r["matched"], r["decision"], r["drop"], r["tep"], r["route"]) == (
            "miss", "none", "dropped", "no_v2b_match", None, None)


def test_one_trace_at_a_time_and_a_bounded_count(eal):
    with ring_sled(n_uplinks=1) as sled:
        sled.dp.trace_start(DST, count=5)
        with pytest.raises(RuntimeError, match="a trace is running already"):
            sled.dp.trace_start(DST, count=5)
        sled.dp.trace_stop()
        sled.dp.trace_start(DST, count=1)  # stopped: a new one may start
        with pytest.raises(RuntimeError, match="trace from 1 to 1073741824 frames"):
            sled.dp.trace_stop() or sled.dp.trace_start(DST, count=0)
        with pytest.raises(RuntimeError, match="trace from 1 to 1073741824 frames"):
            sled.dp.trace_start(DST, count=(1 << 30) + 1)


def reply(dst_mac: str = GUEST_MAC, src=DST, sport: int = 53, dport: int = 1000, sender=TEP) -> bytes:
    """A UDP answer to the guest's flow, from boundary services' TEP to this sled, as uplink0 receives it."""
    inner = Ether(src=BOUNDARY_MAC, dst=dst_mac) / IP(src=str(src), dst=str(GUEST_IP4)) / UDP(sport=sport, dport=dport)
    return raw(encapsulate(inner, eth_src=SWITCH_MACS[0], eth_dst="02:00:00:00:ff:00", src=str(sender),
                           dst=str(UNDERLAY), vni=GUEST_VNI))


def test_inbound_replies_traced_to_their_guest_or_their_drop(eal):
    """Inbound frames are matched on their inner headers, as outbound ones: a reply from DST to the guest
    is decapsulated to guest0, one for a MAC no guest has in the VNI is dropped. The guest's own frame
    to DST is outbound and not traced under dir=in, nor is a reply from another source."""
    with ring_sled(n_uplinks=1) as sled:
        sled.dp.trace_start(src=DST, direction="in", count=3)
        sled.send("guest0", [frame()])
        sled.send("uplink0", [reply(src="192.0.2.2"), reply(), reply(dst_mac="02:00:00:00:00:99", dport=1001)])
        records, armed = traced(sled)
        flow = {"vni": GUEST_VNI, "proto": 17, "src": str(DST), "dst": str(GUEST_IP4), "src_port": 53}
        inbound = {"direction": "in", "flow_table": "none", "sender": str(TEP), "uplink": "uplink0"}
        assert records == [
            {**inbound, "flow": {**flow, "dst_port": 1000}, "matched": "guest", "decision": "delivered",
             "drop": None, "inner_dst_mac": GUEST_MAC, "guest": "guest0"},
            {**inbound, "flow": {**flow, "dst_port": 1001}, "matched": "none", "decision": "dropped",
             "drop": "vni_mac_unknown", "inner_dst_mac": "02:00:00:00:00:99", "guest": None}]
        assert armed  # two of three frames traced
        assert len(sled.recv("guest0")) == 2 and sled.counters()["vni_mac_unknown"] == 1


def test_a_trace_in_both_directions_follows_a_conversation(eal):
    """dir left out: the guest's frames to DST going out, and frames to the guest coming in, by the
    addresses each carries (here: dst=the guest matches only the replies, src=the guest only its own)."""
    with ring_sled(n_uplinks=1) as sled:
        sled.dp.trace_start(src=GUEST_IP4, count=2)
        sled.send("guest0", [frame()])
        sled.send("uplink0", [reply()])
        sled.send("guest0", [frame()])
        records, armed = traced(sled)
        assert [(r["direction"], r["flow"]["src"], r["flow_table"], r["decision"]) for r in records] == [
            ("out", str(GUEST_IP4), "miss", "new"), ("out", str(GUEST_IP4), "hit", "pinned")]
        assert not armed
        sled.dp.trace_start(GUEST_IP4, count=1)
        sled.send("guest0", [frame()])
        sled.send("uplink0", [reply()])
        (r,), armed = traced(sled)
        assert (r["direction"], r["flow"]["dst"], r["decision"], r["guest"], armed) == (
            "in", str(GUEST_IP4), "delivered", "guest0", False)


def test_an_inbound_frame_from_an_unknown_underlay_source_is_traced_to_its_drop(eal):
    """--strict-underlay: a reply sent by a host that is no TEP and no V2P sled is dropped, and its record
    says who sent it and why; the TEP's own reply is delivered."""
    stranger = ipaddress.IPv6Address("fd00:55::1")
    with ring_sled(n_uplinks=1, strict_underlay=True) as sled:
        sled.dp.trace_start(src=DST, direction="in", count=2)
        sled.send("uplink0", [reply(sender=stranger), reply()])
        records, armed = traced(sled)
        assert [(r["sender"], r["matched"], r["decision"], r["drop"], r["guest"]) for r in records] == [
            (str(stranger), "none", "dropped", "underlay_source_unknown", None),
            (str(TEP), "guest", "delivered", None, "guest0")]
        assert not armed and sled.counters()["underlay_source_unknown"] == 1
