"""What the EAL's memory holds, and changes that would not fit: refused with one line before
anything is applied, the data plane forwarding on the old tables.

The stated capacities come from the data plane's own measurements (of_dp_memory: each
structure on the EAL heap as it was allocated); opte_fast/capacity.py's per-item sizes, which
`opte-fast run --help` uses, are checked against them here.
"""
import contextlib
import ipaddress

import pytest
from scapy.all import IP, UDP, Ether, raw

from opte_fast.controlplane import capacity
from opte_fast.controlplane.dataplane import DataplaneError
from opte_fast.controlplane.state import V2B, V2P, Route, Tep
from tests.support.sled import GATEWAY_MAC, GUEST_IP4, GUEST_MAC, GUEST_VNI, default_state, ring_sled

PEER_SLED = ipaddress.IPv6Address("fd00:99::77")  # inside the routed underlay prefix


def frame_to(dst: str) -> bytes:
    return raw(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IP(src=str(GUEST_IP4), dst=dst) / UDP(sport=7, dport=9))


def outer_dst(frame: bytes) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(frame[38:54])


def forwards(sled, dst: str) -> ipaddress.IPv6Address:
    """Send one frame to dst; the outer destination it left for."""
    sled.send("guest0", [frame_to(dst)])
    out = sled.drain("uplink0")
    assert len(out) == 1, sled.counters()
    return outer_dst(out[0])


def test_the_sizes_run_help_states_are_the_real_allocations(eal):
    with ring_sled(n_uplinks=1, flow_capacity=1 << 16, prefix_capacity=512) as sled:
        m = sled.dp.memory()
    measured = m["bytes"]
    assert measured["flow"] == pytest.approx(capacity.flow_table_bytes(1 << 16), rel=0.01)
    assert measured["mbuf"] == pytest.approx(capacity.MBUF_POOL_BYTES + 8191 * capacity.MBUF_BYTES, rel=0.01)
    assert measured["prefix"] == pytest.approx(capacity.PREFIX_TABLES_BYTES + 512 * capacity.PREFIX_BYTES, rel=0.01)
    assert m["v2p_bytes_per_1024"] == pytest.approx(1024 * capacity.V2P_BYTES, rel=0.02)
    assert m["capacity"]["flows_per_worker"] == 1 << 16
    assert (m["capacity"]["v2b_prefixes"], m["capacity"]["route_prefixes"]) == (512, 512)


def with_routes(state, n: int):
    """The sample sled's route to the TEP and n - 1 more prefixes over the same nexthops."""
    tep_route = state.routes[0]
    more = tuple(Route(ipaddress.ip_network(f"fd00:1:{i:x}::/64"), tep_route.nexthops) for i in range(n - 1))
    return state.replace(routes=(tep_route, *more))


def with_v2b(state, n: int):
    """n V2B prefixes: the sample's 0.0.0.0/0 and ::/0, and n - 2 /24s, all to the TEP."""
    teps = (Tep(state.v2b[0].teps[0].addr),)
    more = tuple(V2B(ipaddress.ip_network(f"198.{i >> 8}.{i & 0xFF}.0/24"), teps) for i in range(n - 2))
    return state.replace(v2b=(*state.v2b[:2], *more))


def test_prefixes_fill_to_capacity_and_one_more_is_refused_with_the_old_tables_forwarding(eal):
    state = default_state(1)
    with ring_sled(state, n_uplinks=1, prefix_capacity=16) as sled:
        full = with_v2b(with_routes(state, 16), 16)
        sled.dp.commit(full)
        assert forwards(sled, "198.0.3.1") == state.v2b[0].teps[0].addr
        swaps = sled.dp.table_swaps()
        for over, line in ((with_routes(full, 17), "17 route prefixes, more than --prefix-capacity 16 holds"),
                           (with_v2b(full, 17), "17 V2B prefixes, more than --prefix-capacity 16 holds")):
            with pytest.raises(DataplaneError) as e:
                sled.dp.commit(over)
            assert str(e.value) == line
        assert sled.dp.table_swaps() == swaps, "nothing published"
        assert forwards(sled, "198.0.3.2") == state.v2b[0].teps[0].addr
        # The tables refilled in turn still hold what each commit says, after many changes.
        for n in (3, 16, 5, 16, 2):
            sled.dp.commit(with_v2b(with_routes(state, 16), n))
        assert forwards(sled, "198.0.3.3" if n > 5 else "8.8.8.8") == state.v2b[0].teps[0].addr


def v2p_entries(n: int) -> tuple[V2P, ...]:
    return tuple(V2P(GUEST_VNI, ipaddress.IPv4Address(0x0A000000 + 16 + i), PEER_SLED, "02:00:00:00:00:99")
                 for i in range(n))


def test_v2p_fills_to_the_stated_capacity_and_one_more_is_refused_with_the_old_tables_forwarding(eal):
    state = default_state(1)
    # A pool of mbufs that leaves a few MiB of this process's EAL memory free, so the capacity is small.
    with ring_sled(state, n_uplinks=1, prefix_capacity=16) as sled:
        m = sled.dp.memory()["bytes"]
    with contextlib.ExitStack() as stack:
        # The route tables need contiguous memory, which the file's earlier tests may have cut up:
        # leave a little more free until they fit (the capacity stated is then larger, as checked).
        for free_mib in (12, 20, 32):
            mbufs = (m["free"] + m["mbuf"] - capacity.MBUF_POOL_BYTES - (free_mib << 20)) // capacity.MBUF_BYTES
            try:
                sled = stack.enter_context(ring_sled(state, n_uplinks=1, prefix_capacity=16, n_mbufs=mbufs))
                break
            except DataplaneError as e:
                if "out of EAL memory" not in str(e) or free_mib == 32:
                    raise
        fit = sled.dp.memory()["capacity"]["v2p_entries"]
        assert 1 << 12 <= fit <= 1 << 18
        full = state.replace(v2p=v2p_entries(fit))
        sled.dp.commit(full)
        assert forwards(sled, "10.0.0.16") == PEER_SLED
        swaps = sled.dp.table_swaps()
        with pytest.raises(DataplaneError) as e:
            sled.dp.commit(state.replace(v2p=v2p_entries(fit + 1)))
        assert str(e.value).startswith("the tables need ")
        assert str(e.value).endswith(f"this commit has {fit + 1} (raise --memory-mb)")
        assert sled.dp.table_swaps() == swaps
        assert forwards(sled, f"{ipaddress.IPv4Address(0x0A000000 + 16 + fit - 1)}") == PEER_SLED
        assert forwards(sled, "8.8.8.8") == state.v2b[0].teps[0].addr
        # A member change needs no V2P table: it still commits with the memory this full.
        sled.dp.commit(full.replace(v2b=(V2B(state.v2b[0].prefix, (Tep(state.v2b[0].teps[0].addr, up=False),)),
                                         state.v2b[1])))
