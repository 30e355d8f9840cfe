# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin bindings over csrc/opte_fast.h. Policy (ids, names, state) lives in opte_fast/dataplane.py."""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset

cimport numpy as cnp
import numpy as np

from copte_fast cimport *
from cbfd_api cimport *

cnp.import_array()

ROLE_GUEST = OF_ROLE_GUEST
ROLE_UPLINK = OF_ROLE_UPLINK
ROLE_EXCEPTION = OF_ROLE_EXCEPTION
MAX_TEPS = OF_MAX_TEPS
MAX_NEXTHOPS = OF_MAX_NEXTHOPS
MAX_GROUPS = OF_MAX_GROUPS
HASH_KEY_LEN = OF_HASH_KEY_LEN
MAX_BFD_SESSIONS = OF_BFD_MAX_SESSIONS
NEVER = OF_NEVER
TRACE_MAX = OF_TRACE_MAX
TRACE_NONE = OF_TRACE_NONE
TRACE_COUNT_MAX = OF_TRACE_COUNT_MAX
TRACE_ANY, TRACE_OUT, TRACE_IN = OF_TRACE_ANY, OF_TRACE_OUT, OF_TRACE_IN

# Flow dicts built per hold of the GIL in Core.flows (about a millisecond's worth).
cdef enum:
    FLOW_DICTS_PER_HOLD = 1024


class DataplaneError(RuntimeError):
    """A data plane call failed; the message says why (from the C side)."""


cdef int check(int rc) except -1:
    if rc < 0:
        raise DataplaneError(of_last_error().decode())
    return rc


cdef void copy_bytes(uint8_t *dst, bytes src, Py_ssize_t size) except *:
    if len(src) != size:
        raise ValueError(f"expected {size} bytes, got {len(src)}")
    for i in range(size):
        dst[i] = src[i]


cdef void guest_net(of_guest_net *n, dict net) except *:
    """Fill n from net: addresses as packed bytes, prefixes as (16 bytes, depth), the rest numbers."""
    memset(n, 0, sizeof(of_guest_net))
    if len(net["dns4"]) > OF_GUEST_MAX_DNS or len(net["dns6"]) > OF_GUEST_MAX_DNS:
        raise ValueError(f"at most {OF_GUEST_MAX_DNS} DNS servers per address family")
    if len(net["allowed"]) > OF_GUEST_MAX_PREFIXES:
        raise ValueError(f"at most {OF_GUEST_MAX_PREFIXES} allowed source prefixes")
    domain = net["domain"].encode()
    if len(domain) >= OF_GUEST_DOMAIN_LEN:
        raise ValueError(f"domain name longer than {OF_GUEST_DOMAIN_LEN - 1} bytes")
    if net["ipv4"] is not None:
        n.has_ipv4 = 1
        copy_bytes(n.ipv4, net["ipv4"], 4)
        copy_bytes(n.ipv4_gateway, net["ipv4_gateway"], 4)
        n.ipv4_prefix_len = net["ipv4_prefix_len"]
    if net["ipv6"] is not None:
        n.has_ipv6 = 1
        copy_bytes(n.ipv6, net["ipv6"], 16)
    for i, a in enumerate(net["dns4"]):
        copy_bytes(n.dns4[i], a, 4)
    n.n_dns4 = len(net["dns4"])
    for i, a in enumerate(net["dns6"]):
        copy_bytes(n.dns6[i], a, 16)
    n.n_dns6 = len(net["dns6"])
    for i, c in enumerate(domain):
        n.domain[i] = c
    n.lease_s = net["lease_s"]
    n.mtu = net["mtu"]
    n.ra_managed = net["ra_managed"]
    n.ra_other = net["ra_other"]
    n.ra_router_lifetime_s = net["ra_router_lifetime_s"]
    if net["ra_prefix"] is not None:
        n.has_ra_prefix = 1
        copy_bytes(n.ra_prefix.addr, net["ra_prefix"][0], 16)
        n.ra_prefix.depth = net["ra_prefix"][1]
    for i, (addr, depth) in enumerate(net["allowed"]):
        copy_bytes(n.allowed[i].addr, addr, 16)
        n.allowed[i].depth = depth
    n.n_allowed = len(net["allowed"])


def eal_init(args) -> None:
    """Start the DPDK EAL with these arguments (argv[0] included). Once per process."""
    cdef int argc = len(args)
    cdef char **argv = <char **>malloc((argc + 1) * sizeof(char *))
    encoded = [a.encode() for a in args]
    cdef int rc
    try:
        for i, a in enumerate(encoded):
            argv[i] = a
        argv[argc] = NULL
        with nogil:
            rc = of_eal_init(argc, argv)
        check(rc)
    finally:
        free(argv)


def eal_cleanup() -> None:
    of_eal_cleanup()


def capture_init() -> None:
    """Serve dpdk-dumpcap (rte_pdump) on every port; the EAL must keep its shared config."""
    check(of_capture_init())


def tsc_hz() -> int:
    return of_tsc_hz()


def counter_names() -> list:
    return [of_counter_name(i).decode() for i in range(of_counter_count())]


def counter_descriptions() -> list:
    return [of_counter_description(i).decode() for i in range(of_counter_count())]


def counter_drops() -> list:
    return [bool(of_counter_drop(i)) for i in range(of_counter_count())]


cdef uint16_t member_ids(uint16_t *ids, members) except? 0xFFFF:
    """Copy a TEP set's or nexthop group's member ids into ids (room for 64); their count."""
    if len(members) > 64:
        raise ValueError(f"at most 64 members in a TEP set or nexthop group, got {len(members)}")
    for i, m in enumerate(members):
        ids[i] = m
    return len(members)


cdef class Core:
    """One data plane instance: ports, worker lcores, tables."""
    cdef of_dp *dp

    def __cinit__(self, *, underlay_addr: bytes, n_mbufs, mbuf_cache, mbuf_data_room, burst, guest_tx_retries,
                  rx_desc, tx_desc, flow_capacity, n_buckets, hash_key: bytes, tcp_idle_ms, tcp_closed_ms,
                  udp_idle_ms, icmp_idle_ms, rebalance_idle_ms, hop_limit, flow_label, udp_checksum,
                  verify_udp_checksum, strict_underlay, udp_sport_min, udp_sport_max, underlay_mtu, prefix_capacity):
        # Every value from DataplaneOptions (controlplane/dataplane.py), whose defaults are the CLI's.
        cdef of_dp_config cfg
        memset(&cfg, 0, sizeof(cfg))
        if len(underlay_addr) != 16:
            raise ValueError("underlay_addr must be 16 bytes")
        if len(hash_key) != OF_HASH_KEY_LEN:
            raise ValueError(f"hash_key must be {OF_HASH_KEY_LEN} bytes")
        cfg.n_mbufs = n_mbufs
        cfg.mbuf_cache = mbuf_cache
        cfg.mbuf_data_room = mbuf_data_room
        cfg.burst = burst
        cfg.guest_tx_retries = guest_tx_retries
        cfg.rx_desc = rx_desc
        cfg.tx_desc = tx_desc
        cfg.flow_capacity = flow_capacity
        cfg.n_buckets = n_buckets
        cfg.tcp_idle_ms = tcp_idle_ms
        cfg.tcp_closed_ms = tcp_closed_ms
        cfg.udp_idle_ms = udp_idle_ms
        cfg.icmp_idle_ms = icmp_idle_ms
        cfg.rebalance_idle_ms = rebalance_idle_ms
        for i in range(16):
            cfg.underlay_addr[i] = underlay_addr[i]
        for i in range(OF_HASH_KEY_LEN):
            cfg.hash_key[i] = hash_key[i]
        cfg.hop_limit = hop_limit
        cfg.flow_label = flow_label
        cfg.udp_checksum = udp_checksum
        cfg.verify_udp_checksum = verify_udp_checksum
        cfg.strict_underlay = strict_underlay
        cfg.udp_sport_min = udp_sport_min
        cfg.udp_sport_max = udp_sport_max
        cfg.underlay_mtu = underlay_mtu
        cfg.prefix_capacity = prefix_capacity
        self.dp = of_dp_create(&cfg)
        if self.dp == NULL:
            raise DataplaneError(of_last_error().decode())

    def __dealloc__(self):
        if self.dp != NULL:
            with nogil:
                of_dp_destroy(self.dp)
            self.dp = NULL

    cdef of_dp *live(self) except NULL:
        if self.dp == NULL:
            raise DataplaneError("the data plane is closed")
        return self.dp

    def close(self) -> None:
        """Stop the workers, close every port, free everything."""
        cdef of_dp *dp = self.dp
        self.dp = NULL
        if dp != NULL:
            with nogil:
                of_dp_destroy(dp)

    def add_port(self, devargs: str, role: int, name: str) -> int:
        return check(of_dp_add_port(self.live(), devargs.encode(), <of_port_role>role, name.encode()))

    def add_ring_port(self, name: str, role: int, ring_size: int = 4096, rx_queues: int = 1) -> int:
        return check(of_dp_add_ring_port(self.live(), name.encode(), <of_port_role>role, ring_size, rx_queues))

    def set_exception(self, uplink: int, exception_port: int) -> None:
        check(of_dp_set_exception(self.live(), uplink, exception_port))

    def start(self, lcores) -> None:
        cdef of_dp *dp = self.live()
        cdef unsigned n = len(lcores)
        cdef unsigned ids[128]
        cdef int rc
        if n > 128:
            raise ValueError("at most 128 worker lcores")
        for i, lcore in enumerate(lcores):
            ids[i] = lcore
        with nogil:
            rc = of_dp_start(dp, ids, n)
        check(rc)

    def stop(self) -> None:
        cdef of_dp *dp = self.live()
        with nogil:
            of_dp_stop(dp)

    def quiesce(self) -> None:
        """Return once every worker has finished the loop iteration it was in."""
        cdef of_dp *dp = self.live()
        with nogil:
            of_dp_quiesce(dp)

    def inject(self, port: int, frames, queue: int = 0, segment_bytes: int | None = None, tso_segsz: int = 0,
               csum_partial: bool = False) -> int:
        """Put frames on the ring of a ring port's RX queue; returns how many fitted. With segment_bytes
        (0: as many as an mbuf holds) each frame is a chain of segments that long; tso_segsz and
        csum_partial flag the frames as net_vhost flags a guest's TSO frames and partial checksums."""
        data = b"".join(frames)
        lens = np.fromiter((len(f) for f in frames), dtype=np.uint32, count=len(frames))
        cdef const uint8_t[::1] d = data if data else b"\0"
        cdef uint32_t[::1] l = lens if len(lens) else np.zeros(1, np.uint32)
        if segment_bytes is None and not tso_segsz and not csum_partial:
            return check(of_dp_ring_inject(self.live(), port, queue, &d[0], &l[0], len(frames)))
        return check(of_dp_ring_inject_chained(self.live(), port, queue, &d[0], &l[0], len(frames),
                                               segment_bytes or 0, tso_segsz, 1 if csum_partial else 0))

    def ring_take_on_tx(self, port: int, per_tx: int) -> None:
        """Make a running ring port's TX ring a VM's receive ring: each transmit to it first takes up to
        per_tx frames off the ring, as the VM's vCPU would meanwhile (one worker only)."""
        check(of_dp_ring_take_on_tx(self.live(), port, per_tx))

    def collect(self, port: int, max_frames: int = 4096, frame_room: int = 16384) -> list:
        """Take every frame waiting on a ring port's TX ring (up to max_frames)."""
        buf = bytearray(max_frames * frame_room)
        lens = np.zeros(max_frames, dtype=np.uint32)
        cdef uint8_t[::1] b = buf
        cdef uint32_t[::1] l = lens
        cdef int n = check(of_dp_ring_collect(self.live(), port, &b[0], len(buf), &l[0], max_frames))
        out, off = [], 0
        for i in range(n):
            out.append(bytes(buf[off:off + lens[i]]))
            off += lens[i]
        return out

    def commit(self, guests=(), v2p=(), teps=(), tep_sets=(), v2b=(), nexthops=(), nh_groups=(), routes=(),
               tep_set_restores=(), nh_group_restores=()) -> None:
        """Install a complete table set. Tuples: guests (port, vni, mac, gw_mac, net: a dict of
        of_guest_net's fields, or None: no address); v2p (vni, ip16, underlay16, mac);
        teps (id, addr16, vni, up); tep_sets (set, [ids]); v2b (prefix16, depth, set);
        nexthops (id, uplink_port, mac, up); nh_groups (group, [ids]); routes (prefix16, depth, group);
        tep_set_restores / nh_group_restores (set or group, uint16 member id per bucket): tables saved
        before a restart, for sets and groups new in this commit."""
        cdef of_dp *dp = self.live()
        cdef of_builder *b = of_builder_new(dp)
        cdef uint16_t ids[64]
        cdef const uint16_t[::1] saved
        cdef of_guest_net gnet
        cdef int rc
        if b == NULL:
            raise DataplaneError(of_last_error().decode())
        try:
            for port, vni, mac, gw_mac, net in guests:
                check(of_builder_guest(b, port, vni, mac, gw_mac))
                if net is not None:
                    guest_net(&gnet, net)
                    check(of_builder_guest_net(b, port, &gnet))
            for vni, ip, underlay, mac in v2p:
                check(of_builder_v2p(b, vni, ip, underlay, mac))
            for ident, addr, vni, up in teps:
                check(of_builder_tep(b, ident, addr, vni, up))
            for group, members in tep_sets:
                check(of_builder_tep_set(b, group, ids, member_ids(ids, members)))
            for prefix, depth, group in v2b:
                check(of_builder_v2b(b, prefix, depth, group))
            for ident, uplink, mac, up in nexthops:
                check(of_builder_nexthop(b, ident, uplink, mac, up))
            for group, members in nh_groups:
                check(of_builder_nh_group(b, group, ids, member_ids(ids, members)))
            for prefix, depth, group in routes:
                check(of_builder_route(b, prefix, depth, group))
            for group, buckets in tep_set_restores:
                saved = np.ascontiguousarray(buckets, dtype=np.uint16)
                check(of_builder_tep_set_restore(b, group, &saved[0], len(saved)))
            for group, buckets in nh_group_restores:
                saved = np.ascontiguousarray(buckets, dtype=np.uint16)
                check(of_builder_nh_group_restore(b, group, &saved[0], len(saved)))
        except BaseException:
            of_builder_free(b)
            raise
        with nogil:
            rc = of_builder_commit(b)
        check(rc)

    def counters(self) -> np.ndarray:
        out = np.zeros(of_counter_count(), dtype=np.uint64)
        cdef uint64_t[::1] o = out
        of_dp_counters(self.live(), &o[0])
        return out

    def port_count(self) -> int:
        return of_dp_n_ports(self.live())

    def port_stats(self, port: int) -> dict:
        cdef of_port_stats st
        check(of_dp_port_stats(self.live(), port, &st))
        return {
            "name": st.name.decode(), "ethdev": st.ethdev.decode(), "port_id": st.port_id, "role": st.role,
            "mac": ":".join(f"{st.mac[i]:02x}" for i in range(6)),
            "rx_packets": st.ipackets, "tx_packets": st.opackets, "rx_bytes": st.ibytes,
            "tx_bytes": st.obytes, "rx_missed": st.imissed, "rx_errors": st.ierrors, "tx_errors": st.oerrors,
        }

    def path_stats(self):
        """(teps, nexthops): arrays of shape (ids, 3) with flows, packets, bytes per id."""
        teps = np.zeros((OF_MAX_TEPS, 3), dtype=np.uint64)
        nhs = np.zeros((OF_MAX_NEXTHOPS, 3), dtype=np.uint64)
        cdef uint64_t[:, ::1] t = teps
        cdef uint64_t[:, ::1] n = nhs
        of_dp_path_stats(self.live(), <of_path_stats *>&t[0, 0], <of_path_stats *>&n[0, 0])
        return teps, nhs

    def flows(self, max_flows: int, cursor: int = 0) -> tuple:
        """Up to max_flows active flows from `cursor` on (0: the first), and the cursor the next
        call resumes at (None once every table is scanned). The scan runs without the GIL, and
        the GIL is let go between every FLOW_DICTS_PER_HOLD dicts, so route sync keeps running."""
        cdef of_dp *dp = self.live()
        cdef unsigned cap = max(0, max_flows)
        cdef uint64_t cur = cursor
        cdef unsigned n = 0
        cdef unsigned start, end
        if cap == 0:
            return [], cursor
        cdef of_flow_info *info = <of_flow_info *>malloc(cap * sizeof(of_flow_info))
        if info == NULL:
            raise MemoryError()
        out = []
        try:
            with nogil:
                n = of_dp_flows(dp, &cur, info, cap)
            for start in range(0, n, FLOW_DICTS_PER_HOLD):
                end = min(n, start + FLOW_DICTS_PER_HOLD)
                out.extend([{
                    "vni": info[i].vni, "proto": info[i].proto,
                    "src": bytes(info[i].src[:16]), "dst": bytes(info[i].dst[:16]),
                    "src_port": info[i].src_port, "dst_port": info[i].dst_port,
                    "tep": info[i].tep, "nexthop": info[i].nexthop, "uplink": info[i].uplink,
                    "udp_sport": info[i].udp_sport, "hash": info[i].hash, "lcore": info[i].lcore,
                    "packets": info[i].packets, "bytes": info[i].bytes, "idle_ms": info[i].idle_ms,
                } for i in range(start, end)])
                with nogil:  # compiled code never yields the GIL by itself: let a waiting thread in
                    pass
        finally:
            free(info)
        return out, None if cur == OF_FLOWS_DONE else cur

    def memory(self) -> dict:
        """Where the EAL's memory went, and what it holds (see of_dp_memory)."""
        cdef of_memory_info m
        check(of_dp_memory(self.live(), &m))
        return {"heap_bytes": m.heap_bytes, "free_bytes": m.free_bytes, "mbuf_bytes": m.mbuf_bytes,
                "flow_bytes": m.flow_bytes, "prefix_bytes": m.prefix_bytes, "snapshot_bytes": m.snapshot_bytes,
                "v2p_bytes_per_1024": m.v2p_bytes_per_1024, "flow_capacity": m.flow_capacity,
                "prefix_capacity": m.prefix_capacity, "v2p_fit": m.v2p_fit}

    def flow_count(self) -> int:
        return of_dp_flow_count(self.live())

    def workers(self) -> list:
        """Per worker lcore: polls, busy polls (those that found frames), packets received, flows."""
        cdef of_worker_stats w[128]
        cdef unsigned n = of_dp_workers(self.live(), w, 128)
        return [{"lcore": w[i].lcore, "worker": w[i].worker, "polls": w[i].polls, "busy_polls": w[i].busy_polls,
                 "rx_packets": w[i].rx_packets, "flows": w[i].flows} for i in range(n)]

    def trace_arm(self, src: bytes | None, dst: bytes | None, proto: int, dst_port: int, direction: int,
                  count: int) -> None:
        """Trace the next `count` frames of `direction` (TRACE_ANY, TRACE_OUT, TRACE_IN) whose inner source
        is `src` and destination `dst` (16 bytes, IPv4 v4-mapped; None: any); proto, dst_port 0: any."""
        cdef of_trace_match m
        memset(&m, 0, sizeof(m))
        if src is not None:
            m.src[:16] = src
            m.has_src = 1
        if dst is not None:
            m.dst[:16] = dst
            m.has_dst = 1
        m.proto = proto
        m.dst_port = dst_port
        m.dir = direction
        check(of_dp_trace_arm(self.live(), &m, count))

    def trace_disarm(self) -> None:
        of_dp_trace_disarm(self.live())

    def trace_read(self):
        """(records, armed): the records waiting, as dicts of raw ids, and whether frames remain to trace."""
        cdef of_trace_record *r = <of_trace_record *>malloc(OF_TRACE_MAX * sizeof(of_trace_record))
        cdef int armed = 0
        cdef int n
        if r == NULL:
            raise MemoryError()
        try:
            n = of_dp_trace_read(self.live(), r, OF_TRACE_MAX, &armed)
            return [{
                "tsc": r[i].tsc, "lcore": r[i].lcore, "hash": r[i].hash, "vni": r[i].vni, "proto": r[i].proto,
                "flow": r[i].flow, "table": r[i].table, "why": r[i].why, "src": bytes(r[i].src[:16]),
                "dst": bytes(r[i].dst[:16]), "src_port": r[i].src_port, "dst_port": r[i].dst_port,
                "drop": r[i].drop, "tep_set": r[i].tep_set, "tep_bucket": r[i].tep_bucket,
                "nh_group": r[i].nh_group, "nh_bucket": r[i].nh_bucket, "bucket_tep": r[i].bucket_tep,
                "bucket_nexthop": r[i].bucket_nexthop, "tep": r[i].tep, "nexthop": r[i].nexthop,
                "uplink": r[i].uplink, "from_tep": r[i].from_tep, "from_nexthop": r[i].from_nexthop,
                "guest": r[i].guest, "underlay": bytes(r[i].underlay[:16]),
                "inner_dst_mac": bytes(r[i].inner_dst_mac[:6]), "dir": r[i].dir,
            } for i in range(n)], bool(armed)
        finally:
            free(r)

    def trace_lost(self) -> int:
        """Records of the current (or last) trace that the full ring refused."""
        return of_dp_trace_lost(self.live())

    def name_member(self, kind: int, ident: int, prefix: str, gateway: str = "") -> None:
        """What TEP (kind 0) or nexthop (kind 1) `ident` stands for, for the telemetry endpoints."""
        check(of_dp_name_member(self.live(), kind, ident, prefix.encode(), gateway.encode()))

    def link(self, port: int) -> dict:
        """A port's link as its PMD last reported it (see of_dp_link)."""
        cdef of_link_info li
        check(of_dp_link(self.live(), port, &li))
        return {"watched": bool(li.watched), "up": bool(li.up), "by_interrupt": bool(li.by_interrupt),
                "full_duplex": bool(li.full_duplex), "speed_mbps": li.speed_mbps, "changes": li.changes,
                "changed_ns": li.changed_ns}

    def link_event_fd(self) -> int:
        """An eventfd, readable after any followed link changed; read 8 bytes from it to rearm."""
        return of_dp_link_event_fd(self.live())

    def set_link(self, port: int, up: bool) -> None:
        """rte_eth_dev_set_link_up/down on a started port."""
        cdef of_dp *dp = self.live()
        cdef uint16_t p = port
        cdef int on = bool(up)
        cdef int rc
        with nogil:
            rc = of_dp_set_link(dp, p, on)
        check(rc)

    def buckets(self, kind: int, group: int) -> np.ndarray:
        """Member id of every bucket of a TEP set (kind 0) or nexthop group (kind 1)."""
        out = np.zeros(65536, dtype=np.uint16)
        cdef uint16_t[::1] o = out
        cdef int n = check(of_dp_buckets(self.live(), kind, group, &o[0], 65536))
        return out[:n].copy()

    def table_swaps(self) -> int:
        return of_dp_table_swaps(self.live())

    # -- BFD (csrc/bfd_api.h) --------------------------------------------------------------
    def bfd_set(self, peers: list) -> None:
        """Replace the BFD sessions: (multihop, peer 16 bytes, uplink index, dst MAC 6 bytes, desired min TX us,
        required min RX us, detect multiplier[, through Geneve, VNI[, auth type (0, 4 or 5), key ID, key]]) each."""
        cdef of_dp *dp = self.live()
        cdef unsigned n = len(peers)
        cdef of_bfd_peer *p = <of_bfd_peer *>malloc((n or 1) * sizeof(of_bfd_peer))
        cdef int rc
        try:
            for i, (multihop, peer, uplink, mac, tx_us, rx_us, mult, *rest) in enumerate(peers):
                rest = tuple(rest) + (False, 0, 0, 0, b"")[len(rest):]
                geneve, vni, auth_type, key_id, key = rest
                if len(peer) != 16 or len(mac) != 6:
                    raise ValueError("a BFD peer takes a 16-byte address and a 6-byte MAC")
                if len(key) > sizeof(p[i].auth_key):
                    raise ValueError(f"a BFD authentication key is {sizeof(p[i].auth_key)} bytes at most")
                memset(&p[i], 0, sizeof(of_bfd_peer))
                p[i].multihop = bool(multihop)
                p[i].peer = peer
                p[i].uplink = uplink
                p[i].dst_mac = mac
                p[i].desired_min_tx_us = tx_us
                p[i].required_min_rx_us = rx_us
                p[i].detect_mult = mult
                p[i].geneve = bool(geneve)
                p[i].vni = vni
                p[i].auth_type = auth_type
                p[i].auth_key_id = key_id
                p[i].auth_key_len = len(key)
                memcpy(p[i].auth_key, <const char *>key, len(key))
            with nogil:
                rc = of_dp_bfd_set(dp, p, n)
            check(rc)
        finally:
            free(p)

    def bfd_sessions(self) -> list:
        """Every session, in the order bfd_set gave them (see of_bfd_info)."""
        cdef of_bfd_info *out = <of_bfd_info *>malloc(OF_BFD_MAX_SESSIONS * sizeof(of_bfd_info))
        cdef of_dp *dp = self.live()
        cdef unsigned n
        try:
            with nogil:
                n = of_dp_bfd_sessions(dp, out, OF_BFD_MAX_SESSIONS)
            return [{"multihop": bool(out[i].multihop), "geneve": bool(out[i].geneve), "vni": out[i].vni,
                     "peer": bytes(out[i].peer[:16]),
                     "local": bytes(out[i].local[:16]), "uplink": out[i].uplink, "state": out[i].state,
                     "remote_state": out[i].remote_state, "diag": out[i].diag, "remote_diag": out[i].remote_diag,
                     "been_up": bool(out[i].been_up), "poll": bool(out[i].poll),
                     "detect_mult": out[i].detect_mult, "remote_mult": out[i].remote_mult,
                     "local_disc": out[i].local_disc, "remote_disc": out[i].remote_disc,
                     "desired_min_tx_us": out[i].desired_min_tx_us, "required_min_rx_us": out[i].required_min_rx_us,
                     "remote_min_tx_us": out[i].remote_min_tx_us, "remote_min_rx_us": out[i].remote_min_rx_us,
                     "tx_interval_us": out[i].tx_interval_us, "detect_us": out[i].detect_us,
                     "changed_ns": out[i].changed_ns, "rx_packets": out[i].rx_packets,
                     "tx_packets": out[i].tx_packets, "ups": out[i].ups, "downs": out[i].downs,
                     "auth_type": out[i].auth_type, "auth_key_id": out[i].auth_key_id}
                    for i in range(n)]
        finally:
            free(out)

    def bfd_stats(self) -> dict:
        cdef of_bfd_stats st
        of_dp_bfd_stats(self.live(), &st)
        return st

    def bfd_event_fd(self) -> int:
        """An eventfd, readable after any BFD session changed state; read 8 bytes from it to rearm."""
        return of_dp_bfd_event_fd(self.live())

    def bfd_port_ready(self, port: int) -> bool:
        return bool(of_dp_bfd_port_ready(self.live(), port))
