"""What the EAL's memory (--memory-mb) holds: flows, prefixes, V2P entries.

The data plane measures each structure on the EAL heap as it allocates it (`of_dp_memory`),
and `opte-fast ctl stats` shows those figures for the running instance. Before a start,
`opte-fast run --help` states what a given memory holds from the per-item sizes below, which
are those measurements (`tests/test_capacity.py` compares them with the real allocations on
every CI run, on DPDK 22.11 and 24.11).
"""
from __future__ import annotations

MIB = 1 << 20
MBUF_BYTES = 4104               # one mbuf of the default 2176-byte data room
MBUF_POOL_BYTES = 1_059_016     # the pool itself: header and per-lcore caches
FLOW_BYTES = 132                # one flow in a worker's flow table: its 128-byte entry and free-list slot
FLOW_SLOT_BYTES = 16            # the index's buckets (two 8-byte slots), per flow of the capacity to a power of two
PREFIX_TABLES_BYTES = 134_262_121  # the four tries (V2B and routes, two each): 4 x 32 MiB of tbl24
PREFIX_BYTES = 28_537           # one prefix of --prefix-capacity, in the four tries together
V2P_BYTES = 123                 # one V2P entry; a table holds a power of two of them
OTHER_BYTES = 2 * MIB           # rings, lcore state, the snapshot of one commit


def v2p_fit(free_bytes: int) -> int:
    """V2P entries a commit can hold in `free_bytes`: the largest power of two (at least 64) that fits."""
    fit, n = 0, 64
    while n * V2P_BYTES <= free_bytes:
        fit, n = n, n * 2
    return fit


def flow_table_bytes(flows: int) -> int:
    return flows * FLOW_BYTES + (1 << (flows - 1).bit_length()) * FLOW_SLOT_BYTES


def plan(memory_mb: int, mbufs: int, flow_capacity: int, workers: int, prefix_capacity: int) -> dict:
    """What `memory_mb` holds with these settings: bytes each part takes, and the V2P entries left room for."""
    parts = {"mbufs": MBUF_POOL_BYTES + mbufs * MBUF_BYTES, "flows": workers * flow_table_bytes(flow_capacity),
             "prefixes": PREFIX_TABLES_BYTES + prefix_capacity * PREFIX_BYTES, "other": OTHER_BYTES}
    free = memory_mb * MIB - sum(parts.values())
    return {**parts, "free": free, "v2p_entries": v2p_fit(free) if free > 0 else 0}


def memory_help(defaults: dict) -> str:
    """The --memory-mb help: the size of each part, and what the default memory holds."""
    p = plan(defaults["memory_mb"], defaults["mbufs"], defaults["flow_capacity"], 1, defaults["prefix_capacity"])
    flow = FLOW_BYTES + FLOW_SLOT_BYTES
    return (f"EAL memory in MiB. It holds the mbufs ({MBUF_BYTES} bytes each), the flow tables ({flow} bytes a "
            f"flow per worker, for a power of two), the prefix tables ({PREFIX_TABLES_BYTES // MIB} MiB + "
            f"{PREFIX_BYTES} bytes a prefix of --prefix-capacity) and V2P ({V2P_BYTES} bytes an entry). The defaults "
            f"on one worker leave {p['free'] // MIB} MiB: {p['v2p_entries']:,} V2P entries. Too little for the flows "
            "or prefixes stops the start; a change with too many V2P entries or prefixes is refused. `ctl stats` "
            "shows what a running instance holds")
