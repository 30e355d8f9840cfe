"""Resilient path choice (DESIGN.md, "Resilient choice") through the real data plane on ring ports.

Every guest frame carries (flow id, sequence number) as its UDP payload, so
the captured uplink frames tell, per flow, which path it took (the uplink is
the nexthop, the outer IPv6 dst is the TEP) and in which order its packets
left. Flows use random (seeded) destinations and ports: the flow hash is
CRC32C, which is affine in the key bits, so flows that differ only in one
counting field would spread over buckets far more evenly than real traffic.
"""
from __future__ import annotations

import bisect
import ipaddress
import struct
import threading
import time
from collections import Counter, defaultdict
from dataclasses import replace

import pytest
from scapy.all import UDP, Ether, IPv6, Raw
from scapy.contrib.geneve import GENEVE

from opte_fast.controlplane.state import Nexthop, Route
from tests.support.flowhash import N_BUCKETS, nexthop_bucket
from tests.support.frames import make_flows, udp4_flow
from tests.support.sled import SWITCH_MACS, default_state, drops, gateway, ring_sled, uplink, with_nexthop_up

PAYLOAD_OFF = 70 + 14 + 20 + 8       # in an outbound frame: outer headers, then the inner frame


# -- traffic -------------------------------------------------------------------------------------

def decode(frame: bytes) -> tuple[int, int, ipaddress.IPv6Address, bytes]:
    """(flow id, seq, outer IPv6 dst, outer Ethernet dst) of an outbound frame."""
    fid, seq = struct.unpack_from(">II", frame, PAYLOAD_OFF)
    return fid, seq, ipaddress.IPv6Address(frame[38:54]), frame[0:6]


class Traffic:
    """Sends rounds over a set of flows and keeps every captured frame, per flow, in capture order."""

    def __init__(self, sled, n_uplinks: int):
        self.sled = sled
        self.uplinks = [uplink(i) for i in range(n_uplinks)]
        self.next_seq: dict[int, int] = defaultdict(int)
        self.sent = 0
        # flow id -> (uplink, seq, TEP) of each captured frame, in capture order
        self.log: dict[int, list[tuple[int, int, ipaddress.IPv6Address]]] = defaultdict(list)

    def frames(self, flows: dict[int, bytes], per_flow: int = 1) -> list[bytes]:
        out = []
        for fid, headers in flows.items():
            for _ in range(per_flow):
                out.append(headers + struct.pack(">II", fid, self.next_seq[fid]))
                self.next_seq[fid] += 1
        return out

    def send(self, flows: dict[int, bytes], per_flow: int = 1) -> None:
        frames = self.frames(flows, per_flow)
        for start in range(0, len(frames), 4096):
            self.sled.send("guest0", frames[start:start + 4096])
        self.sent += len(frames)

    def collect(self) -> dict[int, tuple[int, ipaddress.IPv6Address]]:
        """Drain every uplink; flow id -> (uplink index, TEP) of the flows seen (each must use one path)."""
        seen: dict[int, tuple[int, ipaddress.IPv6Address]] = {}
        for u, name in enumerate(self.uplinks):
            for frame in self.sled.drain(name):
                fid, seq, tep, _ = decode(frame)
                self.log[fid].append((u, seq, tep))
                assert seen.setdefault(fid, (u, tep)) == (u, tep), f"flow {fid} took two paths in one round"
        return seen

    def round(self, flows: dict[int, bytes], per_flow: int = 1) -> dict[int, tuple[int, ipaddress.IPv6Address]]:
        self.send(flows, per_flow)
        seen = self.collect()
        assert seen.keys() == flows.keys(), f"{len(flows) - len(seen.keys() & flows.keys())} flows lost"
        return seen

    def check_order(self) -> None:
        """Per flow: every sequence number exactly once, strictly increasing in capture order."""
        captured = sum(len(v) for v in self.log.values())
        assert captured == self.sent
        for fid, entries in self.log.items():
            seqs = [s for _, s, _ in entries]
            assert seqs == list(range(self.next_seq[fid])), f"flow {fid} reordered or lost: {seqs}"


def uplink_of(seen) -> dict[int, int]:
    return {fid: u for fid, (u, _) in seen.items()}


def tep_of(seen) -> dict[int, ipaddress.IPv6Address]:
    return {fid: t for fid, (_, t) in seen.items()}


# -- states --------------------------------------------------------------------------------------

def with_route_nexthops(state, keep):
    """The first route with only the nexthops whose index is in keep (a routing daemon's withdrawal)."""
    route = state.routes[0]
    return state.replace(routes=(Route(route.prefix, tuple(n for i, n in enumerate(route.nexthops) if i in keep)),
                                 *state.routes[1:]))


def bucket_loads(sled, kind: str, prefix) -> Counter:
    table = sled.dp.bucket_table(kind, prefix)
    assert len(table) == N_BUCKETS
    return Counter(int(m) for m in table)


def assert_even(loads: Counter, live: set[int], dead: set[int]) -> None:
    n = len(live)
    assert set(loads) == live, f"buckets held by {sorted(loads)}, live members {sorted(live)}"
    assert all(N_BUCKETS // n <= loads[m] <= -(-N_BUCKETS // n) for m in live), loads
    assert all(loads[m] == 0 for m in dead)


def flow_hashes(sled) -> dict[tuple[str, int, int], int]:
    return {(f["dst"], f["src_port"], f["dst_port"]): f["hash"] for f in sled.dp.flows(sled.dp.flow_count())}


# -- 1. anycast TEP behind four nexthops ----------------------------------------------------------

@pytest.mark.parametrize("how", ["withdrawn", "down"])
def test_anycast_nexthop_loss_moves_exactly_its_flows_and_its_return_moves_none(eal, how):
    state = default_state(4)
    prefix = state.routes[0].prefix
    lost = 2
    flows = make_flows(2400, seed=11)
    with ring_sled(state, n_uplinks=4) as sled:
        tr = Traffic(sled, 4)
        before = uplink_of(tr.round(flows, per_flow=2))
        assert sorted(Counter(before.values())) == [0, 1, 2, 3]
        on_lost = {f for f, u in before.items() if u == lost}
        ids = {u: sled.dp.nexthop_id(prefix, uplink(u), gateway(u)) for u in range(4)}
        lost_id, survivor_ids = ids[lost], {ids[u] for u in (0, 1, 3)}
        assert_even(bucket_loads(sled, "nexthop", prefix), set(ids.values()), set())

        sled.dp.commit(with_route_nexthops(state, {0, 1, 3}) if how == "withdrawn"
                       else with_nexthop_up(state, lost, False))
        after = uplink_of(tr.round(flows, per_flow=2))
        assert {f for f in flows if after[f] != before[f]} == on_lost, "exactly the lost nexthop's flows move"
        assert lost not in after.values()
        c = sled.counters()
        assert c["flows_migrated"] == len(on_lost) and c["flows_rebalanced"] == 0
        share = Counter(after.values())
        assert all(abs(share[u] - len(flows) / 3) <= 0.10 * len(flows) / 3 for u in (0, 1, 3)), share
        paths = {n["uplink"]: n for n in sled.dp.paths()["nexthops"]}
        assert {u: paths[uplink(u)]["flows"] for u in (0, 1, 3)} == {u: share[u] for u in (0, 1, 3)}
        if how == "down":  # still configured: listed, down, holding no flow and no bucket
            assert paths[uplink(lost)]["up"] is False and paths[uplink(lost)]["flows"] == 0
            assert_even(bucket_loads(sled, "nexthop", prefix), survivor_ids, {lost_id})
        else:
            assert uplink(lost) not in paths
            assert_even(bucket_loads(sled, "nexthop", prefix), survivor_ids, set())
        assert uplink_of(tr.round(flows)) == after, "migrated flows stay where they landed"

        sled.dp.commit(state)  # back: default rebalance idle time (10 s), every flow here is active
        assert sled.dp.nexthop_id(prefix, uplink(lost), gateway(lost)) == lost_id
        assert_even(bucket_loads(sled, "nexthop", prefix), set(ids.values()), set())
        assert uplink_of(tr.round(flows, per_flow=2)) == after, "active flows do not move back"
        fresh = make_flows(4000, seed=12, exclude=flows)
        new_share = Counter(uplink_of(tr.round(fresh)).values())
        assert abs(new_share[lost] / len(fresh) - 0.25) <= 0.05, new_share
        assert uplink_of(tr.round(flows)) == after
        c = sled.counters()
        assert c["flows_migrated"] == len(on_lost) and c["flows_rebalanced"] == 0
        assert c["tx_uplink_packets"] == tr.sent and drops(c) == {}
    tr.check_order()


def test_frames_decode_the_same_in_scapy(eal):
    """The byte offsets used above agree with an independent decoder."""
    flows = make_flows(64, seed=5)
    with ring_sled(default_state(4), n_uplinks=4) as sled:
        tr = Traffic(sled, 4)
        tr.send(flows)
        for u in range(4):
            for frame in sled.drain(uplink(u)):
                fid, seq, tep, mac = decode(frame)
                pkt = Ether(frame)
                assert pkt.dst == SWITCH_MACS[u] and mac.hex(":") == SWITCH_MACS[u]
                assert pkt[IPv6].dst == str(tep) == "fd00:99::1" and pkt[UDP].dport == 6081
                inner = pkt[GENEVE].payload
                assert struct.unpack(">II", bytes(inner[Raw].load)) == (fid, seq)
                assert bytes(inner)[:42][12:] == flows[fid][12:]


# -- 2. several unicast TEPs, each behind its own route -------------------------------------------

TEPS = tuple(ipaddress.IPv6Address(a) for a in ("fd00:99::1", "fd00:98::1", "fd00:97::1", "fd00:96::1"))


def unicast_state():
    """Mode a: four boundary-services TEPs in one V2B set, TEP i reached by its own /128 via uplink i."""
    state = default_state(4, teps=TEPS)
    routes = tuple(Route(ipaddress.ip_network(f"{t}/128"), (Nexthop(uplink(i), gateway(i), SWITCH_MACS[i]),))
                   for i, t in enumerate(TEPS))
    return state.replace(routes=routes)


def test_unicast_tep_down_moves_exactly_its_flows_and_up_moves_none(eal):
    state = unicast_state()
    v4 = ipaddress.ip_network("0.0.0.0/0")
    flows = make_flows(2400, seed=21)
    with ring_sled(state, n_uplinks=4) as sled:
        tr = Traffic(sled, 4)
        seen = tr.round(flows)
        assert all(u == TEPS.index(t) for u, t in seen.values()), "each TEP leaves by its own route"
        before = tep_of(seen)
        assert set(before.values()) == set(TEPS)
        lost = TEPS[1]
        on_lost = {f for f, t in before.items() if t == lost}
        ids = {t: sled.dp.tep_id(v4, t) for t in TEPS}
        assert_even(bucket_loads(sled, "tep", v4), set(ids.values()), set())

        sled.dp.commit(state.with_tep_state(lost, False))
        seen = tr.round(flows)
        after = tep_of(seen)
        assert {f for f in flows if after[f] != before[f]} == on_lost, "outer dst changes for its flows only"
        assert lost not in after.values() and all(u == TEPS.index(t) for u, t in seen.values())
        assert sled.counters()["flows_migrated"] == len(on_lost)
        share = Counter(after.values())
        assert all(abs(share[t] - len(flows) / 3) <= 0.10 * len(flows) / 3 for t in TEPS if t != lost), share
        teps = {(p["prefix"], p["addr"]): p for p in sled.dp.paths()["teps"]}
        assert teps[(str(v4), str(lost))]["up"] is False and teps[(str(v4), str(lost))]["flows"] == 0
        assert_even(bucket_loads(sled, "tep", v4), {ids[t] for t in TEPS if t != lost}, {ids[lost]})

        sled.dp.commit(state)
        assert tep_of(tr.round(flows)) == after, "active flows stay on their TEP"
        fresh = make_flows(4000, seed=22, exclude=flows)
        new_share = Counter(tep_of(tr.round(fresh)).values())
        assert abs(new_share[lost] / len(fresh) - 0.25) <= 0.05, new_share
        c = sled.counters()
        assert c["flows_migrated"] == len(on_lost) and c["flows_rebalanced"] == 0
    tr.check_order()


# -- 3. idle rebalance ----------------------------------------------------------------------------

@pytest.mark.parametrize("policy", [300, None], ids=["idle-300ms", "never"])
def test_idle_flows_rebalance_to_a_returned_member_busy_ones_stay(eal, policy):
    gaps = []
    for _ in range(3):
        gap = _idle_rebalance_run(policy)
        if gap is None:
            return
        gaps.append(gap)
    pytest.skip(f"inconclusive: this machine delayed busy flows' packets by {[round(g * 1e3) for g in gaps]} ms")


def _idle_rebalance_run(policy) -> float | None:
    """Nexthop 2 goes down and comes back; busy flows send every ~50 ms (from a thread: a commit can
    take longer than the idle time), idle ones stay silent 750 ms. Asserts, or returns the largest gap
    between two packets of a busy flow when the machine stretched it near the idle time (no verdict)."""
    state = default_state(4)
    prefix = state.routes[0].prefix
    flows = make_flows(1200, seed=31)
    busy = {f: h for f, h in flows.items() if f % 2 == 0}
    idle = {f: h for f, h in flows.items() if f % 2 == 1}
    with ring_sled(state, n_uplinks=4, rebalance_idle_ms=policy) as sled:
        tr = Traffic(sled, 4)
        tr.round(flows)
        sled.dp.commit(with_nexthop_up(state, 2, False))
        windows = [time.monotonic()]  # when busy flows' packets may be seen: (start, end) per round
        pinned = uplink_of(tr.round(flows))
        windows.append(time.monotonic())
        stop, moved_busy, errors = threading.Event(), [], []

        def keep_busy():
            try:
                while not stop.wait(0.05):
                    windows.append(time.monotonic())
                    seen = uplink_of(tr.round(busy))
                    windows.append(time.monotonic())
                    moved_busy.extend(f for f in busy if seen[f] != pinned[f])
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

        thread = threading.Thread(target=keep_busy, daemon=True)
        thread.start()
        quiet_since = time.monotonic()
        sled.dp.commit(state)
        time.sleep(max(0.0, quiet_since + 0.75 - time.monotonic()))
        stop.set()
        thread.join(10)
        assert not errors, errors
        windows.append(time.monotonic())
        now = uplink_of(tr.round(flows))
        windows.append(time.monotonic())
        windows.append(time.monotonic())
        again = uplink_of(tr.round(flows))  # whatever moved stays
        windows.append(time.monotonic())
        # Two packets of a busy flow are at most (end of the next round - start of this one) apart.
        gap = max(windows[i + 3] - windows[i] for i in range(0, len(windows) - 2, 2))
        if gap > 0.2:
            return gap
        assert not moved_busy, moved_busy[:10]

        ids = {sled.dp.nexthop_id(prefix, uplink(u), gateway(u)): u for u in range(4)}
        table = sled.dp.bucket_table("nexthop", prefix)
        hashes = flow_hashes(sled)
        bucket_member = {f: ids[int(table[nexthop_bucket(hashes[udp4_flow(h)])])] for f, h in flows.items()}
        assert {f: now[f] for f in busy} == {f: pinned[f] for f in busy}, "busy flows never move"
        movers = {f for f in idle if bucket_member[f] != pinned[f]}
        c = sled.counters()
        if policy is None:
            assert now == pinned and c["flows_rebalanced"] == 0
        else:
            assert movers and all(bucket_member[f] == 2 for f in movers), "only the returned member takes flows"
            assert {f: now[f] for f in idle} == {f: bucket_member[f] for f in idle}
            assert c["flows_rebalanced"] == len(movers)
        assert again == now
    tr.check_order()
    return None


# -- 4. control-plane churn -----------------------------------------------------------------------

def churn_states(state):
    """Commits in cycles of four phases; every commit changes something, some member is always live,
    and in phases 1 and 3 one member stays dead for the whole phase. Yields (state, dead uplinks)."""
    nh = state.routes[0].nexthops
    phase_len = 12

    def build(members: dict[int, bool]):
        route = Route(state.routes[0].prefix, tuple(replace(nh[i], up=up) for i, up in sorted(members.items())))
        dead = {i for i in range(4) if not members.get(i, False)}
        return state.replace(routes=(route,)), dead

    while True:
        for k in range(phase_len):  # 1: nexthop 2 withdrawn, 3 flapping up/down
            yield build({0: True, 1: True, 3: k % 2 == 0})
        for k in range(phase_len):  # 2: all configured, 1 flapping up/down
            yield build({0: True, 1: k % 2 == 1, 2: True, 3: True})
        for k in range(phase_len):  # 3: nexthop 0 marked down, 2 withdrawn and re-added in turn
            members = {0: False, 1: True, 3: True}
            if k % 2:
                members[2] = True
            yield build(members)
        for k in range(phase_len):  # 4: nexthop 3 withdrawn and re-added in turn, 0 back
            members = {0: True, 1: True, 2: True}
            if k % 2:
                members[3] = True
            yield build(members)


def test_control_plane_churn_loses_nothing_and_never_uses_a_removed_nexthop(eal):
    state = default_state(4)
    flows = make_flows(256, seed=41)
    commits: list[tuple[float, float, set[int]]] = []  # (started, returned, dead uplinks)
    stop = threading.Event()
    errors: list[BaseException] = []

    def churn(sled):
        try:
            target = 1000.0  # commits a second; the thread goes as fast as commit() allows, at most this
            for i, (st, dead) in enumerate(churn_states(state)):
                if stop.is_set():
                    return
                started = time.monotonic()
                sled.dp.commit(st)
                commits.append((started, time.monotonic(), dead))
                pause = t0 + (i + 1) / target - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    with ring_sled(state, n_uplinks=4) as sled:
        tr = Traffic(sled, 4)
        base = sled.counters()
        bursts: list[tuple[float, float]] = []  # (inject started, processed) per burst, seq = burst index
        t0 = time.monotonic()
        thread = threading.Thread(target=churn, args=(sled,), daemon=True)
        thread.start()
        while time.monotonic() - t0 < 3.0:
            started = time.monotonic()
            tr.send(flows)
            bursts.append((started, time.monotonic()))
            tr.collect()
        stop.set()
        thread.join(10)
        assert not thread.is_alive() and not errors, errors
        elapsed = commits[-1][1] - commits[0][0]
        sled.dp.commit(state)
        assert uplink_of(tr.round(flows)).keys() == flows.keys(), "forwarding works after the churn"
        bursts.append((0.0, 0.0))  # the last round is not checked against the churn
        c = sled.counters()
        d = {k: c[k] - base[k] for k in c}
    tr.check_order()  # also: every frame captured exactly once, in order per flow

    assert d["rx_guest_packets"] == tr.sent
    assert d["tx_uplink_packets"] + sum(drops(d).values()) == tr.sent
    assert d["tx_uplink_packets"] == tr.sent, drops(d)

    # A frame injected after a commit that removed uplink u returned, and processed before any later
    # commit that brings u back had started, must not leave on u.
    ends = [e for _, e, _ in commits]
    dead_in_burst = []
    for injected, processed in bursts:
        i = bisect.bisect_right(ends, injected) - 1  # the last commit acknowledged before the inject
        covering = [commits[i]] + [cm for cm in commits[i + 1:] if cm[0] <= processed] if i >= 0 else []
        dead_in_burst.append(set.intersection(*(cm[2] for cm in covering)) if covering else set())
    checked = 0
    for fid, entries in tr.log.items():
        for u, seq, _ in entries:
            checked += bool(dead_in_burst[seq])
            assert u not in dead_in_burst[seq], \
                f"flow {fid} seq {seq} left on uplink{u} after its removal was acknowledged"
    took = sorted(e - s for s, e, _ in commits)
    print(f"\nchurn: {len(commits)} commits in {elapsed:.2f} s ({len(commits) / elapsed:.0f}/s, target 1000/s; "
          f"commit() median {took[len(took) // 2] * 1e3:.1f} ms, max {took[-1] * 1e3:.1f} ms), "
          f"{len(bursts) - 1} bursts, {tr.sent} frames, {checked} checked against an acknowledged removal")
    assert len(commits) >= 20 and checked >= 1000


# -- 5. bucket dumps ------------------------------------------------------------------------------

def test_bucket_tables_stay_even_and_move_only_a_lost_members_buckets(eal):
    """Seven nexthops (over four uplinks): marked down one by one, then back up in another order."""
    macs = [f"02:bb:00:00:00:{i:02x}" for i in range(7)]
    route = Route(ipaddress.ip_network("fd00:99::/64"),
                  tuple(Nexthop(uplink(i % 4), gateway(i), macs[i]) for i in range(7)))
    state = default_state(4).replace(routes=(route,))
    prefix = route.prefix
    with ring_sled(state, n_uplinks=4) as sled:
        ids = [sled.dp.nexthop_id(prefix, uplink(i % 4), gateway(i)) for i in range(7)]
        table = sled.dp.bucket_table("nexthop", prefix)
        assert_even(Counter(int(m) for m in table), set(ids), set())
        down: set[int] = set()
        for step in [3, 0, 6, 1, 5, 2, None, 2, 5, 1, 6, 0, 3]:
            if step is None:  # all but one down: the last takes every bucket
                assert len(down) == 6
                continue
            going_down = step not in down
            (down.add if going_down else down.remove)(step)
            st = state.replace(routes=(Route(prefix, tuple(replace(n, up=i not in down)
                                                           for i, n in enumerate(route.nexthops))),))
            sled.dp.commit(st)
            new = sled.dp.bucket_table("nexthop", prefix)
            live = {ids[i] for i in range(7) if i not in down}
            assert_even(Counter(int(m) for m in new), live, {ids[i] for i in down})
            moved = {int(b) for b in (new != table).nonzero()[0]}
            if going_down:  # only its buckets move
                assert moved == {b for b in range(N_BUCKETS) if table[b] == ids[step]}
            else:  # it takes buckets, and takes nothing from under quota members
                assert all(new[b] == ids[step] for b in moved)
            table = new
        dump = {d["prefix"]: d for d in sled.dp.buckets() if d["kind"] == "nexthop"}[str(prefix)]
        assert dump["buckets"] == N_BUCKETS and {m["buckets"] for m in dump["members"]} <= {585, 586}


# -- found on the way -----------------------------------------------------------------------------

def test_a_replaced_nexthop_taking_the_freed_id_counts_its_flows_as_migrated(eal):
    """A routing daemon swaps nexthop 0 for nexthop 3 in one update: the new one gets the freed id
    (StableIds) and with it the old one's buckets, so exactly the old one's flows move, to it."""
    state = default_state(4)
    prefix = state.routes[0].prefix
    flows = make_flows(1200, seed=51)
    with ring_sled(with_route_nexthops(state, {0, 1, 2}), n_uplinks=4) as sled:
        tr = Traffic(sled, 4)
        before = uplink_of(tr.round(flows))
        old_id = sled.dp.nexthop_id(prefix, uplink(0), gateway(0))
        sled.dp.commit(with_route_nexthops(state, {1, 2, 3}))
        assert sled.dp.nexthop_id(prefix, uplink(3), gateway(3)) == old_id
        after = uplink_of(tr.round(flows))
        on0 = {f for f, u in before.items() if u == 0}
        assert {f for f in flows if after[f] != before[f]} == on0 and {after[f] for f in on0} == {3}
        assert sled.counters()["flows_migrated"] == len(on0)
    tr.check_order()


def test_several_packets_of_a_flow_in_one_burst_with_no_live_nexthop(eal):
    """Each packet of a flow that can no longer be forwarded is dropped once, the flow removed once:
    flow and per-path counts stay exact (a stale bulk-lookup entry must not be removed twice)."""
    state = default_state(4)
    flows = make_flows(300, seed=61)
    everything_down = state
    for i in range(4):
        everything_down = with_nexthop_up(everything_down, i, False)
    with ring_sled(state, n_uplinks=4) as sled:
        tr = Traffic(sled, 4)
        tr.round(flows)
        assert sled.dp.flow_count() == len(flows)
        sled.dp.commit(everything_down)
        tr.send(flows, per_flow=8)  # a flow's 8 packets are adjacent: mostly in one burst
        assert tr.collect() == {}
        c = sled.counters()
        assert c["no_live_nexthop"] == 8 * len(flows)
        assert sled.dp.flow_count() == 0
        assert all(p["flows"] == 0 for p in sled.dp.paths()["nexthops"])
        assert all(p["flows"] == 0 for p in sled.dp.paths()["teps"])
        sled.dp.commit(state)
        tr.round(flows, per_flow=2)
        assert sled.dp.flow_count() == len(flows)
        assert sum(p["flows"] for p in sled.dp.paths()["nexthops"]) == len(flows)
        assert sled.counters()["flows_created"] == 2 * len(flows)


def test_a_member_down_and_back_between_two_packets_counts_only_flows_that_moved(eal):
    """Down then up again before the flows send: the member has a new generation, so its flows
    re-resolve; those whose bucket it took back stay on it, the others move, and only they count."""
    state = default_state(4)
    flows = make_flows(1200, seed=71)
    with ring_sled(state, n_uplinks=4) as sled:
        tr = Traffic(sled, 4)
        before = uplink_of(tr.round(flows))
        sled.dp.commit(with_nexthop_up(state, 1, False))
        sled.dp.commit(state)
        after = uplink_of(tr.round(flows))
        moved = {f for f in flows if after[f] != before[f]}
        assert moved and all(before[f] == 1 for f in moved)
        assert any(before[f] == 1 == after[f] for f in flows)
        assert sled.counters()["flows_migrated"] == len(moved)
    tr.check_order()
