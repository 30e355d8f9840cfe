"""The data plane as the control plane sees it: ports by name, state by value.

`Dataplane` owns one C data plane (`_dataplane.Core`), gives every TEP,
nexthop, TEP set and nexthop group a stable small id, and turns a whole
`DesiredState` into one table commit. It implements `state.DataplaneAPI`.
With a state directory it saves the bucket tables after every commit that
changed one, and builds each table from its saved version when it first
appears after a restart (see bucketstore.py).
"""
from __future__ import annotations

import ipaddress
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import _dataplane
from .._dataplane import DataplaneError, capture_init, eal_cleanup, eal_init
from ..config.options import DEFAULTS
from . import events, hashkey
from .bucketstore import NO_MEMBER, BucketStore, SavedTable, TableKey
from .state import DesiredState, GuestPort, IPAddress, IPNetwork, StableIds, mac_bytes

__all__ = ["Dataplane", "DataplaneError", "DataplaneOptions", "capture_init", "eal_args", "eal_cleanup", "eal_init"]

ROLES = {"guest": _dataplane.ROLE_GUEST, "uplink": _dataplane.ROLE_UPLINK, "exception": _dataplane.ROLE_EXCEPTION}
_NEVER = _dataplane.NEVER


@dataclass(frozen=True)
class DataplaneOptions:
    """The C data plane's tunables (the CLI's flags, in the units the C side takes), defaulting to the CLI's
    defaults (config/options.py)."""
    underlay_addr: ipaddress.IPv6Address
    n_mbufs: int = DEFAULTS["mbufs"]
    mbuf_cache: int = DEFAULTS["mbuf_cache"]
    mbuf_data_room: int = 2176  # RTE_MBUF_DEFAULT_BUF_SIZE, the headroom included: no flag
    burst: int = DEFAULTS["burst"]
    guest_tx_retries: int = DEFAULTS["guest_tx_retries"]
    rx_desc: int = DEFAULTS["rx_desc"]
    tx_desc: int = DEFAULTS["tx_desc"]
    flow_capacity: int = DEFAULTS["flow_capacity"]
    n_buckets: int = DEFAULTS["buckets"]
    hash_key: bytes | None = None  # None: the state directory's (made at its first use), or a new one
    tcp_idle_ms: int = DEFAULTS["tcp_idle_timeout_s"] * 1000
    tcp_closed_ms: int = DEFAULTS["tcp_closed_timeout_s"] * 1000
    udp_idle_ms: int = DEFAULTS["udp_idle_timeout_s"] * 1000
    icmp_idle_ms: int = DEFAULTS["icmp_idle_timeout_s"] * 1000
    rebalance_idle_ms: int | None = DEFAULTS["rebalance_idle_ms"]  # None: never rebalance a live flow
    hop_limit: int = DEFAULTS["hop_limit"]
    flow_label: bool = DEFAULTS["flow_label"]
    udp_checksum: bool = DEFAULTS["udp_checksum"]
    verify_udp_checksum: bool = DEFAULTS["verify_udp_checksum"]
    strict_underlay: bool = DEFAULTS["strict_underlay"]
    udp_sport_min: int = DEFAULTS["udp_sport_range"][0]
    udp_sport_max: int = DEFAULTS["udp_sport_range"][1]
    underlay_mtu: int = DEFAULTS["underlay_mtu_bytes"]  # the underlay's IP MTU: encapsulated packets are never longer
    prefix_capacity: int = DEFAULTS["prefix_capacity"]


def drops_of_injected_frames() -> list[str]:
    """The drop counters that lose frames injected on ring ports: every drop reason but rx_no_mbuf.

    A NIC loses what its empty pool refuses; `Dataplane.inject` instead returns how many frames it
    took, so an injector that offers the rest again (the demo, the soak) loses none of them.
    """
    return [n for n, drop in zip(_dataplane.counter_names(), _dataplane.counter_drops()) if drop and n != "rx_no_mbuf"]


def eal_args(workers: list[int], *, file_prefix: str, hugepages: bool = False, memory_mb: int = 512,
             pci: bool = False, shared_config: bool = False, extra: tuple[str, ...] = ()) -> list[str]:
    """EAL arguments for worker lcores `workers`: each pinned to its own CPU, the main
    (control) thread free to run on every CPU so Python threads are never starved.

    Worker lcore w runs on CPU w. The main lcore floats, so the CPU its id would name is free:
    the worker one past the last CPU runs there (`1-2` on a two-CPU machine: lcore 2 on CPU 0).
    Any other lcore without its CPU is left for the EAL to refuse.

    `shared_config` keeps the EAL's runtime directory and shared config, so secondary processes
    (dpdk-dumpcap, dpdk-proc-info) can attach; they can only to a primary on hugepages, which
    then live in a mounted hugetlbfs. Without it, hugepages come from memory files
    (--in-memory) and plain memory runs with --no-shconf: nothing attaches."""
    cpus = sorted(os.sched_getaffinity(0))
    main = next(i for i in range(128) if i not in workers)
    spare = cpus[0] if cpus[0] not in workers else None
    placed = {w: spare if w == cpus[-1] + 1 and spare is not None else w for w in workers}
    lcores = [f"{main}@({','.join(map(str, cpus))})"] + [f"{w}@{placed[w]}" for w in workers]
    args = ["opte-fast", f"--lcores={','.join(lcores)}", f"--main-lcore={main}",
            f"--file-prefix={file_prefix}", "--log-level=lib.eal:error"]
    if not hugepages:
        args += ["--no-huge", "-m", str(memory_mb)]
    if not shared_config:
        args += ["--in-memory"] if hugepages else ["--no-shconf"]
    if not pci:
        args.append("--no-pci")
    return args + list(extra)


def mapped(ip: IPAddress) -> bytes:
    """16 bytes: IPv6 as is, IPv4 v4-mapped (how the flow key and tables hold them)."""
    if ip.version == 4:
        return b"\0" * 10 + b"\xff\xff" + ip.packed
    return ip.packed


def mapped_prefix(net: IPNetwork) -> tuple[bytes, int]:
    if net.version == 4:
        return mapped(net.network_address), 96 + net.prefixlen
    return net.network_address.packed, net.prefixlen


def guest_net(g: GuestPort) -> dict:
    """A guest's addresses and what its gateway hands out, as the C side's of_guest_net takes them."""
    gateway = g.gateway_ipv4
    if g.ipv4 is not None and gateway is None:
        raise DataplaneError(f"guest {g.port}: {g.ipv4}/{g.ipv4_prefix_len} has no first address to use as "
                             "its gateway; give ipv4_gateway")
    return {
        "ipv4": g.ipv4.packed if g.ipv4 is not None else None,
        "ipv4_prefix_len": g.ipv4_prefix_len,
        "ipv4_gateway": gateway.packed if gateway is not None else None,
        "ipv6": g.ipv6.packed if g.ipv6 is not None else None,
        "dns4": [a.packed for a in g.dns_servers if a.version == 4],
        "dns6": [a.packed for a in g.dns_servers if a.version == 6],
        "domain": g.domain,
        "lease_s": g.lease_time_s,
        "mtu": g.mtu_bytes,
        "ra_managed": g.ra_managed,
        "ra_other": g.ra_other,
        "ra_router_lifetime_s": g.ra_router_lifetime_s,
        "ra_prefix": mapped_prefix(g.ra_prefix) if g.ra_prefix is not None else None,
        "allowed": [mapped_prefix(p) for p in g.allowed_prefixes],
    }


def with_guest_offloads(devargs: str) -> str:
    """A net_vhost guest port offers its guest TCP segmentation offload (`tso=1`; checksum offload it
    offers anyway), which the data plane honours (csrc/gso.h); devargs that name `tso` keep theirs."""
    driver, *args = devargs.split(",")
    if not driver.startswith("net_vhost") or any(a.split("=", 1)[0] == "tso" for a in args):
        return devargs
    return f"{devargs},tso=1"


def unmapped(raw: bytes) -> IPAddress:
    ip = ipaddress.IPv6Address(raw)
    return ip.ipv4_mapped or ip


@dataclass(frozen=True)
class PortInfo:
    index: int
    name: str
    role: str
    devargs: str


# A TEP set (kind 0, of Tep) or nexthop group (kind 1, of Nexthop) as one commit sees it:
# (kind, prefix, set or group id, member ids, members).
Group = tuple[int, IPNetwork, int, list[int], tuple]
KINDS = ("tep", "nexthop")
NO_ID = 0xFFFF
ID_LIMIT = max(_dataplane.MAX_TEPS, _dataplane.MAX_NEXTHOPS)
FLOW_SCAN_CHUNK = 4096  # flows read per step of a scan (a buffer of about 400 KB)
# A traced frame (of_trace_record): its flow-table lookup (inbound keeps no flows: "none"), what its
# destination matched (inbound: a guest's VNI and MAC), the decision.
TRACE_FLOW = ("hit", "miss", "table full", "none")
TRACE_TABLE = ("none", "v2p", "v2b", "guest")
TRACE_WHY = ("new", "pinned", "migrated", "rebalanced", "rerouted", "stateless", "dropped", "delivered")
TRACE_DIRECTIONS = {"any": _dataplane.TRACE_ANY, "out": _dataplane.TRACE_OUT, "in": _dataplane.TRACE_IN}


def member_key(kind: int, member) -> str:
    """How a saved table names a member: a TEP's address, a nexthop's uplink and gateway (addresses
    in hex: str() of an address costs ten times more, and a neighbor lost rewrites every table)."""
    return member.addr.packed.hex() if kind == 0 else f"{member.uplink} {member.gateway.packed.hex()}"


def restored_buckets(saved: SavedTable, group: Group) -> np.ndarray:
    """A saved table in this commit's member ids; NO_ID where its member no longer exists."""
    kind, _, _, ids, members = group
    by_key = {member_key(kind, m): i for m, i in zip(members, ids)}
    in_ids = np.full(NO_MEMBER + 1, NO_ID, dtype=np.uint16)
    for j, key in enumerate(saved.members):
        in_ids[j] = by_key.get(key, NO_ID)
    return in_ids[saved.index]


class Dataplane:
    """One opte-fast data plane in this process (the EAL must be initialised first).

    `state_dir`: where the bucket tables and the flow hash key are kept across restarts (None: not
    kept; without `options.hash_key` the flow hash then gets a new key)."""

    def __init__(self, options: DataplaneOptions, state_dir: str | None = None):
        self._store: BucketStore | None = None
        self._restorable: dict[TableKey, SavedTable] = {}  # saved before the restart, not yet used
        self._saved: dict[tuple[int, IPNetwork], tuple] = {}  # per table of the last commit
        self._save_pending = False
        if state_dir is not None:  # first: a failure here leaves no C data plane to tear down
            try:
                self._store = BucketStore(state_dir)
            except OSError as e:
                raise DataplaneError(f"cannot use the state directory {state_dir}: {e.strerror}") from None
            try:
                self._restorable = self._store.load(options.n_buckets)
            except ValueError as e:
                events.event("bucket_tables_reset", f"{e}; starting with fresh bucket tables", logging.WARNING,
                             cause=str(e))
        key = options.hash_key
        if key is None and state_dir is not None:
            try:
                key = hashkey.load_or_create(state_dir)
            except (OSError, ValueError) as e:
                raise DataplaneError(str(e) if isinstance(e, ValueError) else
                                     f"cannot keep the flow hash key in {state_dir}: {e.strerror}") from None
        if key is None:
            key = hashkey.new_key()
        self.options = options
        self._core = _dataplane.Core(
            underlay_addr=options.underlay_addr.packed, n_mbufs=options.n_mbufs, mbuf_cache=options.mbuf_cache,
            mbuf_data_room=options.mbuf_data_room, burst=options.burst,
            guest_tx_retries=options.guest_tx_retries, rx_desc=options.rx_desc,
            tx_desc=options.tx_desc, flow_capacity=options.flow_capacity, n_buckets=options.n_buckets,
            hash_key=key, tcp_idle_ms=options.tcp_idle_ms, tcp_closed_ms=options.tcp_closed_ms,
            udp_idle_ms=options.udp_idle_ms, icmp_idle_ms=options.icmp_idle_ms,
            rebalance_idle_ms=_NEVER if options.rebalance_idle_ms is None else options.rebalance_idle_ms,
            hop_limit=options.hop_limit, flow_label=options.flow_label, udp_checksum=options.udp_checksum,
            verify_udp_checksum=options.verify_udp_checksum,
            strict_underlay=options.strict_underlay, udp_sport_min=options.udp_sport_min,
            udp_sport_max=options.udp_sport_max, underlay_mtu=options.underlay_mtu,
            prefix_capacity=options.prefix_capacity)
        self._ports: list[PortInfo] = []
        self._tep_ids = StableIds(1, _dataplane.MAX_TEPS)
        self._nh_ids = StableIds(1, _dataplane.MAX_NEXTHOPS)
        self._set_ids = StableIds(0, _dataplane.MAX_GROUPS)
        self._group_ids = StableIds(0, _dataplane.MAX_GROUPS)
        self._ids: dict = {"teps": {}, "nexthops": {}, "sets": {}, "groups": {}}
        self._members: dict = {"teps": {}, "nexthops": {}}  # key -> Tep / Nexthop of the last commit
        self._named: dict[tuple[int, int], tuple[str, str]] = {}  # (kind, id) -> names told to C
        # (kind, id) -> what it last stood for, kept after it went: a trace names the member a flow left
        self._labels: dict[tuple[int, int], str] = {}
        self._commit_lock = threading.Lock()
        self.counter_names = _dataplane.counter_names()
        self.counter_help = dict(zip(self.counter_names, _dataplane.counter_descriptions()))
        self.drop_counters = {n for n, drop in zip(self.counter_names, _dataplane.counter_drops()) if drop}

    # -- ports and life cycle -------------------------------------------------------------
    def add_port(self, name: str, devargs: str, role: str) -> int:
        if role == "guest":
            devargs = with_guest_offloads(devargs)
        index = self._core.add_port(devargs, ROLES[role], name)
        self._ports.append(PortInfo(index, name, role, devargs))
        return index

    def add_ring_port(self, name: str, role: str, ring_size: int = 16384, rx_queues: int = 1) -> int:
        """A port made of rings: `rx_queues` RX queues (worker w polls queue w), one TX ring."""
        index = self._core.add_ring_port(name, ROLES[role], ring_size, rx_queues)
        self._ports.append(PortInfo(index, name, role, "ring"))
        return index

    def set_exception(self, uplink: str, exception_port: str) -> None:
        self._core.set_exception(self.port_index(uplink), self.port_index(exception_port))

    def port_index(self, name: str) -> int:
        for p in self._ports:
            if p.name == name:
                return p.index
        raise KeyError(f"no port named {name!r} (ports: {', '.join(p.name for p in self._ports) or 'none'})")

    def start(self, workers: list[int]) -> None:
        self._core.start(workers)

    def stop(self) -> None:
        self._core.stop()

    def close(self) -> None:
        self._core.close()

    def quiesce(self) -> None:
        self._core.quiesce()

    def inject(self, port: str, frames: list[bytes], queue: int = 0, segment_bytes: int | None = None,
               tso_segsz: int = 0, csum_partial: bool = False) -> int:
        """Frames onto a ring port (see _dataplane.inject for chains and offload flags)."""
        return self._core.inject(self.port_index(port), frames, queue, segment_bytes, tso_segsz, csum_partial)

    def ring_take_on_tx(self, port: str, per_tx: int) -> None:
        """A running ring port's TX ring emptied as a VM's vCPU would (see _dataplane.ring_take_on_tx)."""
        self._core.ring_take_on_tx(self.port_index(port), per_tx)

    def collect(self, port: str, max_frames: int = 4096, frame_room: int | None = None) -> list[bytes]:
        """Up to `max_frames` frames waiting on a ring port's TX ring. `frame_room` bounds one
        frame (default: an mbuf's data room, which no frame exceeds); a smaller bound makes a
        cheaper call when the caller knows its frames are small."""
        return self._core.collect(self.port_index(port), max_frames, frame_room or self.options.mbuf_data_room)

    # -- tables --------------------------------------------------------------------------
    def commit(self, state: DesiredState) -> None:
        if state.underlay.addr != self.options.underlay_addr:
            raise DataplaneError("the underlay address is fixed at start; restart to change it")
        with self._commit_lock:
            self._commit(state)

    def _commit(self, state: DesiredState) -> None:
        tep_keys = {(e.prefix, t.addr): t for e in state.v2b for t in e.teps}
        nh_keys = {(r.prefix, n.uplink, n.gateway): n for r in state.routes for n in r.nexthops}
        # proposed, and kept only once the tables went in: a refused commit moves no id
        tep_ids = self._tep_ids.propose(tep_keys)
        nh_ids = self._nh_ids.propose(nh_keys)
        set_ids = self._set_ids.propose(e.prefix for e in state.v2b)
        group_ids = self._group_ids.propose(r.prefix for r in state.routes)

        guests = [(self.port_index(g.port), g.vni, mac_bytes(g.mac), mac_bytes(g.gateway_mac), guest_net(g))
                  for g in state.guests]
        v2p = [(e.vni, mapped(e.ip), e.underlay.packed, mac_bytes(e.mac)) for e in state.v2p]
        teps = [(tep_ids[k], t.addr.packed, t.vni, t.up) for k, t in tep_keys.items()]
        tep_sets = [(set_ids[e.prefix], [tep_ids[(e.prefix, t.addr)] for t in e.teps]) for e in state.v2b]
        v2b = [(*mapped_prefix(e.prefix), set_ids[e.prefix]) for e in state.v2b]
        nexthops = [(nh_ids[k], self.port_index(n.uplink), mac_bytes(n.mac), n.up) for k, n in nh_keys.items()]
        nh_groups = [(group_ids[r.prefix], [nh_ids[(r.prefix, n.uplink, n.gateway)] for n in r.nexthops])
                     for r in state.routes]
        routes = [(r.prefix.network_address.packed, r.prefix.prefixlen, group_ids[r.prefix]) for r in state.routes]
        groups: list[Group] = []
        if self._store is not None:
            groups = [(0, e.prefix, g, ids, e.teps) for (g, ids), e in zip(tep_sets, state.v2b)]
            groups += [(1, r.prefix, g, ids, r.nexthops) for (g, ids), r in zip(nh_groups, state.routes)]
        restores = self._restores(groups) if self._restorable else []
        self._core.commit(guests, v2p, teps, tep_sets, v2b, nexthops, nh_groups, routes,
                          tep_set_restores=[(g, b) for kind, g, b, _ in restores if kind == 0],
                          nh_group_restores=[(g, b) for kind, g, b, _ in restores if kind == 1])
        for table, ids in ((self._tep_ids, tep_ids), (self._nh_ids, nh_ids), (self._set_ids, set_ids),
                           (self._group_ids, group_ids)):
            table.keep(ids)
        self._ids = {"teps": tep_ids, "nexthops": nh_ids, "sets": set_ids, "groups": group_ids}
        self._members = {"teps": tep_keys, "nexthops": nh_keys}
        self._name_members(tep_ids, nh_ids)
        for _, _, _, key in restores:
            del self._restorable[key]
        if self._store is not None:
            self._save(groups)

    def _name_members(self, tep_ids: dict, nh_ids: dict) -> None:
        """Tell the C side what each id stands for (the telemetry endpoints show it); only changes."""
        names = {(0, i): (str(k[0]), "") for k, i in tep_ids.items()}
        names.update({(1, i): (str(k[0]), str(k[2])) for k, i in nh_ids.items()})
        self._labels.update({(0, i): str(k[1]) for k, i in tep_ids.items()})
        self._labels.update({(1, i): f"{k[2]} dev {k[1]}" for k, i in nh_ids.items()})
        for kind, ident in self._named.keys() - names.keys():
            self._core.name_member(kind, ident, "")
        for (kind, ident), (prefix, gateway) in names.items():
            if self._named.get((kind, ident)) != (prefix, gateway):
                self._core.name_member(kind, ident, prefix, gateway)
        self._named = names

    def _restores(self, groups: list[Group]) -> list[tuple[int, int, np.ndarray, TableKey]]:
        """(kind, id, buckets, key) of each set or group that first appears and was saved before the
        restart: its saved table is its history."""
        out = []
        for group in groups:
            kind, prefix, ident = group[:3]
            key = (KINDS[kind], str(prefix))
            if (kind, prefix) not in self._saved and key in self._restorable:
                out.append((kind, ident, restored_buckets(self._restorable[key], group), key))
        return out

    def _save(self, groups: list[Group]) -> None:
        """Save the bucket tables if this commit changed one. A table changes only when its set
        or group is new or its members changed (resilient.h: rebuilt over its own live set, a
        table is itself), so the others are not even read back."""
        current: dict[tuple[int, IPNetwork], tuple[tuple, TableKey, SavedTable]] = {}
        changed = self._save_pending
        for group in groups:
            kind, prefix, ident, ids, members = group
            signature = (ident, tuple(ids), members)  # members: their keys and up flags
            old = self._saved.get((kind, prefix))
            if old is not None and old[0] == signature:
                current[kind, prefix] = old
                continue
            # member id -> index in members; ids stay below ID_LIMIT, and NO_ID is clipped onto it
            index_of = np.full(ID_LIMIT + 1, NO_MEMBER, dtype=np.uint8)
            index_of[ids] = np.arange(len(ids))
            table = SavedTable(tuple(member_key(kind, m) for m in members),
                               index_of[np.minimum(self._core.buckets(kind, ident), ID_LIMIT)])
            current[kind, prefix] = (signature, (KINDS[kind], str(prefix)), table)
            changed = True
        changed |= current.keys() != self._saved.keys()
        self._saved = current
        if not changed:
            return
        try:
            self._store.save({**self._restorable, **{key: table for _, key, table in current.values()}})
            self._save_pending = False
        except OSError as e:
            # Forwarding goes on; the next commit tries again.
            self._save_pending = True
            events.event("bucket_tables_not_saved", f"cannot save the bucket tables in {self._store.directory}: {e}",
                         logging.ERROR, directory=self._store.directory, cause=str(e))

    # -- reading -------------------------------------------------------------------------
    def counters(self) -> dict[str, int]:
        return dict(zip(self.counter_names, (int(v) for v in self._core.counters())))

    def ports(self) -> list[dict]:
        out = []
        for p in self._ports:
            st = self._core.port_stats(p.index)
            st.update(name=p.name, role=p.role, devargs=p.devargs)
            out.append(st)
        return out

    def link(self, port: str) -> dict:
        """The port's link as its PMD last reported it: watched, up, by_interrupt, full_duplex, speed_mbps,
        changes (since start), changed_ns (CLOCK_MONOTONIC, as time.monotonic_ns())."""
        return self._core.link(self.port_index(port))

    def link_event_fd(self) -> int:
        """An eventfd that becomes readable after any followed link changed; read 8 bytes to rearm it."""
        return self._core.link_event_fd()

    def set_link(self, port: str, up: bool) -> None:
        """Take a started port's link down or up (rte_eth_dev_set_link_down/up), as a pulled cable would."""
        self._core.set_link(self.port_index(port), up)

    # -- BFD: the sessions run in C (csrc/bfd_io.c); which ones, and what they mean, is bfd.py's --
    def bfd_set(self, peers: list[tuple]) -> None:
        """Replace the BFD sessions: (multihop, peer address bytes, uplink index, nexthop MAC bytes,
        desired min TX us, required min RX us, detect multiplier[, through Geneve, VNI]) each; a kept
        session keeps its state."""
        self._core.bfd_set(peers)

    def bfd_sessions(self) -> list[dict]:
        return self._core.bfd_sessions()

    def bfd_stats(self) -> dict:
        return self._core.bfd_stats()

    def bfd_event_fd(self) -> int:
        """An eventfd that becomes readable after any BFD session changed state; read 8 bytes to rearm it."""
        return self._core.bfd_event_fd()

    def flows(self, limit: int, keep: Callable[[dict], bool] | None = None) -> list[dict]:
        """Up to `limit` active flows, those `keep` accepts if given. The tables are scanned a
        chunk at a time without the GIL, so a scan of every flow holds up no other thread."""
        tep_addr = {i: k[1] for k, i in self._ids["teps"].items()}
        nh_desc = {i: k for k, i in self._ids["nexthops"].items()}
        names = {p.index: p.name for p in self._ports}
        out: list[dict] = []
        cursor: int | None = 0
        while cursor is not None and len(out) < limit:
            chunk, cursor = self._core.flows(FLOW_SCAN_CHUNK if keep else min(FLOW_SCAN_CHUNK, limit - len(out)),
                                             cursor)
            for f in chunk:
                nh = nh_desc.get(f["nexthop"])
                flow = {
                    "vni": f["vni"], "proto": f["proto"],
                    "src": str(unmapped(f["src"])), "dst": str(unmapped(f["dst"])),
                    "src_port": f["src_port"], "dst_port": f["dst_port"],
                    "tep": str(tep_addr[f["tep"]]) if f["tep"] in tep_addr else None,
                    "nexthop": {"uplink": nh[1], "gateway": str(nh[2])} if nh else None,
                    "uplink": names.get(f["uplink"]), "udp_sport": f["udp_sport"], "hash": f["hash"],
                    "lcore": f["lcore"], "packets": f["packets"], "bytes": f["bytes"], "idle_ms": f["idle_ms"],
                }
                if keep is None or keep(flow):
                    out.append(flow)
                    if len(out) == limit:
                        break
        return out

    def flow_count(self) -> int:
        return self._core.flow_count()

    def memory(self) -> dict:
        """Where the EAL's memory went (bytes, measured as allocated) and what it holds: flows per
        worker, prefixes per table, and the V2P entries a commit can hold with what is free."""
        m = self._core.memory()
        return {"bytes": {k.removesuffix("_bytes"): v for k, v in m.items() if k.endswith("_bytes")},
                "v2p_bytes_per_1024": m["v2p_bytes_per_1024"],
                "capacity": {"flows_per_worker": m["flow_capacity"], "v2b_prefixes": m["prefix_capacity"],
                             "route_prefixes": m["prefix_capacity"], "v2p_entries": m["v2p_fit"]}}

    def workers(self) -> list[dict]:
        """Per worker lcore: polls (loop iterations), busy_polls (those that found frames), rx_packets, flows
        and flow_capacity (its table's entries); empty while the data plane is stopped."""
        return [{**w, "flow_capacity": self.options.flow_capacity} for w in self._core.workers()]

    def paths(self) -> dict:
        with self._commit_lock:  # ids and members of one commit, never half of the next
            ids, members = self._ids, self._members
        teps, nhs = self._core.path_stats()
        tep_state, nh_state = members["teps"], members["nexthops"]
        return {
            "teps": [{"id": i, "prefix": str(k[0]), "addr": str(k[1]), "vni": tep_state[k].vni,
                      "up": tep_state[k].up, "flows": int(teps[i, 0]), "packets": int(teps[i, 1]),
                      "bytes": int(teps[i, 2])} for k, i in sorted(ids["teps"].items(), key=lambda kv: kv[1])],
            "nexthops": [{"id": i, "prefix": str(k[0]), "uplink": k[1], "gateway": str(k[2]),
                          "mac": nh_state[k].mac, "up": nh_state[k].up, "flows": int(nhs[i, 0]),
                          "packets": int(nhs[i, 1]), "bytes": int(nhs[i, 2])}
                         for k, i in sorted(ids["nexthops"].items(), key=lambda kv: kv[1])],
        }

    def bucket_table(self, kind: str, prefix: IPNetwork):
        """Member id of every bucket: kind 'tep' (V2B prefix) or 'nexthop' (route prefix)."""
        with self._commit_lock:  # the id and the table of one commit
            if kind == "tep":
                return self._core.buckets(0, self._ids["sets"][prefix])
            return self._core.buckets(1, self._ids["groups"][prefix])

    def tep_id(self, prefix: IPNetwork, addr: ipaddress.IPv6Address) -> int:
        return self._ids["teps"][(prefix, addr)]

    def nexthop_id(self, prefix: IPNetwork, uplink: str, gateway: ipaddress.IPv6Address) -> int:
        return self._ids["nexthops"][(prefix, uplink, gateway)]

    def buckets(self) -> list[dict]:
        with self._commit_lock:  # ids, members and tables of one commit, never half of the next
            return self._buckets()

    def _buckets(self) -> list[dict]:
        out = []
        for kind, ids, members in (("tep", "sets", "teps"), ("nexthop", "groups", "nexthops")):
            names = {i: k for k, i in self._ids[members].items()}
            for prefix, group in sorted(self._ids[ids].items(), key=lambda kv: kv[1]):
                table = self._core.buckets(0 if kind == "tep" else 1, group)
                ids_, counts = np.unique(table, return_counts=True)
                out.append({
                    "kind": kind, "prefix": str(prefix), "buckets": int(len(table)),
                    "members": [{"id": int(m), "member": " ".join(str(x) for x in names[int(m)][1:]),
                                 "buckets": int(c)} for m, c in zip(ids_, counts) if int(m) in names],
                })
        return out

    # -- tracing -------------------------------------------------------------------------
    def trace_start(self, dst: IPAddress | None = None, proto: int = 0, dst_port: int = 0, count: int = 1, *,
                    src: IPAddress | None = None, direction: str = "any") -> None:
        """Record the decision for the next `count` frames whose inner headers match: outbound guest
        frames, inbound ones decapsulated from an uplink, or both ("out", "in", "any"); `src`, `dst`
        None and proto, dst_port 0: any. Read them with trace_records. One trace at a time."""
        self._core.trace_arm(None if src is None else mapped(src), None if dst is None else mapped(dst), proto,
                             dst_port, TRACE_DIRECTIONS[direction], count)

    def trace_stop(self) -> None:
        self._core.trace_disarm()

    def trace_lost(self) -> int:
        """Records of the current (or last) trace that the full ring refused: a reader that fell behind."""
        return self._core.trace_lost()

    def trace_records(self) -> tuple[list[dict], bool]:
        """(records, armed): the decisions traced since the last call, explained by the names of the
        current commit, and whether frames remain to be traced. Every record has direction ("out" or
        "in"), lcore, flow (the inner headers, with the VNI), flow_table, matched, decision and drop;
        outbound ones the hash, v2b, route, to, tep, nexthop, uplink and from (the path it left);
        inbound ones sender (the outer source), uplink (where it came in), inner_dst_mac and guest."""
        raw, armed = self._core.trace_read()
        with self._commit_lock:
            ids, labels = self._ids, dict(self._labels)
        sets = {i: p for p, i in ids["sets"].items()}
        groups = {i: p for p, i in ids["groups"].items()}
        ports = {p.index: p.name for p in self._ports}

        def tep(i: int) -> str | None:
            return labels.get((0, i))

        def nexthop(i: int) -> str | None:
            return labels.get((1, i))

        out = []
        for r in raw:
            sent = r["drop"] < 0
            record = {
                "direction": "out" if r["dir"] == _dataplane.TRACE_OUT else "in", "lcore": r["lcore"],
                "flow": {"vni": r["vni"], "proto": r["proto"], "src": str(unmapped(r["src"])),
                         "dst": str(unmapped(r["dst"])), "src_port": r["src_port"], "dst_port": r["dst_port"]},
                "flow_table": TRACE_FLOW[r["flow"]], "matched": TRACE_TABLE[r["table"]],
                "decision": TRACE_WHY[r["why"]], "drop": None if sent else self.counter_names[r["drop"]],
            }
            if r["dir"] == _dataplane.TRACE_IN:
                record.update({"sender": str(ipaddress.IPv6Address(r["underlay"])), "uplink": ports.get(r["uplink"]),
                               "inner_dst_mac": r["inner_dst_mac"].hex(":"),
                               "guest": ports.get(r["guest"]) if sent else None})
                out.append(record)
                continue
            record.update({
                "hash": r["hash"],
                "v2b": None if r["tep_set"] == _dataplane.TRACE_NONE else {
                    "prefix": str(sets.get(r["tep_set"])), "bucket": r["tep_bucket"],
                    "bucket_tep": tep(r["bucket_tep"])},
                "route": None if r["nh_group"] == _dataplane.TRACE_NONE else {
                    "prefix": str(groups.get(r["nh_group"])), "bucket": r["nh_bucket"],
                    "bucket_nexthop": nexthop(r["bucket_nexthop"])},
                "to": str(ipaddress.IPv6Address(r["underlay"])) if any(r["underlay"]) else None,
                "tep": tep(r["tep"]) if sent else None,
                "nexthop": nexthop(r["nexthop"]) if sent else None,
                "uplink": ports.get(r["uplink"]) if sent else None,
                "from": None if r["from_nexthop"] == NO_ID else {"tep": tep(r["from_tep"]),
                                                                 "nexthop": nexthop(r["from_nexthop"])},
            })
            out.append(record)
        return out, armed

    def table_swaps(self) -> int:
        return self._core.table_swaps()
