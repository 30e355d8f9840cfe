"""Routing changes reach busy flows (OPTE issue #221): the route epoch.

A commit that changes the V2B prefixes, the V2P entries or the underlay routes
bumps the tables' route epoch. The next packet of a flow resolved at an older
epoch is resolved again: when its answer changed it leaves by the new one and
counts as `flows_rerouted`; when its answer is the same (the TEP and the
nexthop it uses are still live members of what it resolves to) it stays
exactly where it is, counting nothing. Every flow here is busy (sent every
round, rebalancing off), so only the routing change can move it.
"""
from __future__ import annotations

import ipaddress

from scapy.all import IP, UDP, Ether, Raw, raw

from opte_fast.controlplane.state import V2B, V2P, Nexthop, Route, Tep, mac_bytes
from tests.support.flowhash import N_BUCKETS, nexthop_bucket
from tests.support.sled import GATEWAY_MAC, GUEST_IP4, GUEST_MAC, GUEST_VNI, default_state, gateway, ring_sled, uplink

A = ipaddress.IPv6Address("fd00:99::1")          # the sample sled's TEP, route fd00:99::/64
B = ipaddress.IPv6Address("fd00:98::1")          # a second TEP, route fd00:98::/64
PEER_SLED = ipaddress.IPv6Address("fd00:0:f7:102::1")
PEER_MAC = "02:00:00:00:00:99"
X = "1.2.3.4"                                     # the busy flow whose route changes
OTHERS = [f"{a}.{b}.7.{c}" for a, b in ((5, 6), (1, 2), (93, 184)) for c in range(1, 9)]  # 1.2.7.x: near, not in
OUTER = 70


def frame(dst: str, sport: int = 4000) -> bytes:
    return raw(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IP(src=str(GUEST_IP4), dst=dst) / UDP(sport=sport, dport=53)
               / Raw(b"busy"))


def routed_state(n_uplinks: int = 2):
    """The sample sled plus TEP B's route over the same switches, and the peer sleds' route."""
    state = default_state(n_uplinks)
    hops = state.routes[0].nexthops
    return state.replace(routes=(*state.routes, Route(ipaddress.ip_network("fd00:98::/64"), hops),
                                 Route(ipaddress.ip_network("fd00:0:f7::/48"), hops)))


def with_v2b(state, prefix: str, *teps: ipaddress.IPv6Address):
    return state.replace(v2b=(*state.v2b, V2B(ipaddress.ip_network(prefix), tuple(Tep(t) for t in teps))))


def round_trip(sled, n_uplinks: int, dsts: list[str]) -> dict[str, tuple[str, bytes, bytes]]:
    """One packet per destination; destination -> (uplink, the 70-byte outer header, inner dst MAC)."""
    sled.send("guest0", [frame(d) for d in dsts])
    out: dict[str, tuple[str, bytes, bytes]] = {}
    for i in range(n_uplinks):
        for f in sled.recv(uplink(i)):
            inner_dst = str(ipaddress.IPv4Address(f[OUTER + 14 + 16:OUTER + 14 + 20]))
            assert inner_dst not in out, f"{inner_dst} sent twice"
            out[inner_dst] = (uplink(i), f[:OUTER], f[OUTER:OUTER + 6])
    assert out.keys() == set(dsts), f"lost: {set(dsts) - out.keys()}"
    return out


def outer_dst(path) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(path[1][38:54])


def vni(path) -> int:
    return int.from_bytes(path[1][66:69], "big")


def moves(sled) -> tuple[int, int, int]:
    c = sled.counters()
    return c["flows_rerouted"], c["flows_migrated"], c["flows_rebalanced"]


def test_a_more_specific_v2b_prefix_takes_a_busy_flow_to_its_tep(eal):
    state = routed_state()
    dsts = [X, *OTHERS]
    with ring_sled(state, rebalance_idle_ms=None) as sled:
        before = round_trip(sled, 2, dsts)
        assert {outer_dst(p) for p in before.values()} == {A}
        sled.dp.commit(with_v2b(state, "1.2.3.0/24", B))
        after = round_trip(sled, 2, dsts)
        assert outer_dst(after[X]) == B and vni(after[X]) == 99
        assert after[X][1][38:54] == B.packed and after[X][2] == bytes.fromhex("a84025777777")
        assert {d: after[d] for d in OTHERS} == {d: before[d] for d in OTHERS}, "only the flow to 1.2.3.4 moves"
        assert moves(sled) == (1, 0, 0)
        assert sled.counters()["flows_created"] == len(dsts)
        assert {f["dst"]: f["tep"] for f in sled.dp.flows(100)}[X] == str(B)


def test_a_v2p_entry_for_a_boundary_bound_address_takes_its_flow_to_the_sled(eal):
    state = routed_state()
    dsts = [X, *OTHERS]
    with ring_sled(state, rebalance_idle_ms=None) as sled:
        before = round_trip(sled, 2, dsts)
        assert outer_dst(before[X]) == A and vni(before[X]) == 99
        sled.dp.commit(state.replace(v2p=(V2P(GUEST_VNI, ipaddress.IPv4Address(X), PEER_SLED, PEER_MAC),)))
        after = round_trip(sled, 2, dsts)
        assert outer_dst(after[X]) == PEER_SLED and vni(after[X]) == GUEST_VNI
        assert after[X][2] == mac_bytes(PEER_MAC)
        assert {d: after[d] for d in OTHERS} == {d: before[d] for d in OTHERS}
        assert moves(sled) == (1, 0, 0)


def test_a_more_specific_underlay_route_moves_exactly_the_flows_whose_nexthop_it_lacks(eal):
    """The TEP gets a /128 over switch 0 (kept) and new switches 9 and 10 on uplink 1: flows on
    switch 0 stay, though most of their buckets in the /128 are other switches'; flows on switch 1
    take their bucket's switch in the /128; flows to TEP B are untouched."""
    state = with_v2b(routed_state(), "1.2.0.0/16", B)
    dsts = [X, *OTHERS, *(f"198.51.100.{i}" for i in range(1, 41))]
    to_b = {d for d in dsts if d.startswith("1.2.")}
    with ring_sled(state, rebalance_idle_ms=None) as sled:
        before = round_trip(sled, 2, dsts)
        assert {before[d][0] for d in dsts if d not in to_b} == {uplink(0), uplink(1)}
        switch9 = Nexthop(uplink(1), ipaddress.IPv6Address("fe80::9"), "02:aa:00:00:00:09")
        switch10 = Nexthop(uplink(1), ipaddress.IPv6Address("fe80::a"), "02:aa:00:00:00:0a")
        host = ipaddress.ip_network(f"{A}/128")
        sled.dp.commit(state.replace(routes=(*state.routes,
                                             Route(host, (state.routes[0].nexthops[0], switch9, switch10)))))
        after = round_trip(sled, 2, dsts)

        table = sled.dp.bucket_table("nexthop", host)
        mac_of = {sled.dp.nexthop_id(host, uplink(0), gateway(0)): (uplink(0), "02aa00000001"),
                  sled.dp.nexthop_id(host, uplink(1), switch9.gateway): (uplink(1), "02aa00000009"),
                  sled.dp.nexthop_id(host, uplink(1), switch10.gateway): (uplink(1), "02aa0000000a")}
        switch0 = next(i for i, v in mac_of.items() if v[0] == uplink(0))
        hashes = {f["dst"]: f["hash"] for f in sled.dp.flows(100)}
        moved, kept_off_bucket = set(), 0
        for d in dsts:
            h = hashes[d]
            bucket_member = int(table[nexthop_bucket(h)])
            if d in to_b or before[d][0] == uplink(0):
                assert after[d] == before[d], f"{d} moved"
                kept_off_bucket += d not in to_b and bucket_member != switch0
                continue
            assert (after[d][0], after[d][1][:6].hex()) == mac_of[bucket_member], d
            moved.add(d)
        assert moved and kept_off_bucket and moves(sled) == (len(moved), 0, 0)


def test_a_commit_that_changes_no_answer_moves_no_flow(eal):
    """Unicast TEPs A and B; B is down while the flows start, so all are on A. B comes up (half the
    buckets are B's now, busy flows stay on A), then routing changes that leave every flow's answer
    as it was: a prefix for other destinations, a prefix naming A for the busy flow, a V2P entry
    for another address, a route for another prefix. Re-resolved, no flow follows its bucket to B."""
    dsts = [X, *OTHERS]
    unicast = routed_state().replace(v2b=(V2B(ipaddress.ip_network("0.0.0.0/0"), (Tep(A), Tep(B, up=False))),))
    with ring_sled(unicast, rebalance_idle_ms=None) as sled:
        before = round_trip(sled, 2, dsts)
        assert {outer_dst(p) for p in before.values()} == {A}
        state = unicast.with_tep_state(B, True)
        sled.dp.commit(state)
        assert round_trip(sled, 2, dsts) == before
        b_id = sled.dp.tep_id(ipaddress.ip_network("0.0.0.0/0"), B)
        assert (sled.dp.bucket_table("tep", ipaddress.ip_network("0.0.0.0/0")) == b_id).sum() == N_BUCKETS // 2

        for change in (lambda s: with_v2b(s, "203.0.113.0/24", B),
                       lambda s: with_v2b(s, "1.2.3.0/24", A),
                       lambda s: s.replace(v2p=(V2P(GUEST_VNI, ipaddress.IPv4Address("10.0.0.77"), PEER_SLED,
                                                    PEER_MAC),)),
                       lambda s: s.replace(routes=(*s.routes, Route(ipaddress.ip_network("fd00:97::/64"),
                                                                    s.routes[0].nexthops)))):
            state = change(state)
            sled.dp.commit(state)
            assert round_trip(sled, 2, dsts) == before
        assert moves(sled) == (0, 0, 0)
        assert sled.counters()["flows_created"] == len(dsts)
        # the flow to 1.2.3.4 is now held by the TEP of 1.2.3.0/24, at the same address
        assert {f["dst"]: f["tep"] for f in sled.dp.flows(100)}[X] == str(A)
        tep_flows = {(t["prefix"], t["addr"]): t["flows"] for t in sled.dp.paths()["teps"]}
        assert tep_flows[("1.2.3.0/24", str(A))] == 1 and tep_flows[("0.0.0.0/0", str(A))] == len(OTHERS)
