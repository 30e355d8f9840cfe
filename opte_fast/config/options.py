"""`OPTIONS`: the one table of run tunables. It gives every TOML key (table and name), its
type, unit, range and default, and the click flag that overrides it (config/flags.py adds
them all to `opte-fast run`; config/loader.py reads them from the file)."""
from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from typing import Any

from ..controlplane import bfd_settings, capacity, events
from .values import NAME, Bool, Choice, Int, ListenAddress, Number, PortRange, Text, TextList, UnicastV6


@dataclass(frozen=True)
class Option:
    """One tunable: Options field `name`, TOML key `[table] key`, click flag `flag`."""
    name: str
    table: str
    kind: Any
    default: Any
    help: str
    key: str = ""
    flag: str = ""
    pytype: Any = None

    @property
    def toml_key(self) -> str:
        return self.key or self.name

    @property
    def where(self) -> str:
        return f"{self.table}.{self.toml_key}"

    @property
    def flag_name(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")


LCORE_LIST = r"\d+(-\d+)?(,\d+(-\d+)?)*"
# The defaults that share the EAL's memory: --memory-mb's help says what they leave free.
MEMORY_DEFAULTS = {"memory_mb": 2048, "mbufs": 16383, "flow_capacity": 1 << 20, "prefix_capacity": 1024}

OPTIONS: tuple[Option, ...] = (
    # [eal]: how DPDK starts
    Option("lcores", "eal", Text("an lcore list like 1 or 1-3 or 1,3", LCORE_LIST, "LIST"), "1",
           "worker lcores (the main lcore runs the control plane)", pytype=str),
    Option("hugepages", "eal", Bool(), None,
           "use hugepages from a mounted hugetlbfs (then dpdk-dumpcap and dpdk-proc-info can attach); without "
           "them EAL runs with --no-huge -m MEMORY_MB [default: hugepages when a mounted hugetlbfs has "
           "MEMORY_MB of them free]", pytype=bool),
    Option("memory_mb", "eal", Int(64, 1 << 20), MEMORY_DEFAULTS["memory_mb"], capacity.memory_help(MEMORY_DEFAULTS),
           pytype=int),
    Option("file_prefix", "eal", Text("a file prefix of letters, digits, '-', '_', '.'", r"[A-Za-z0-9_.-]+", "PREFIX"),
           None, "EAL --file-prefix [default: opte-fast-<pid>]", pytype=str),
    Option("eal_args", "eal", TextList("EAL arguments"), (), "extra EAL argument, passed through (repeatable)",
           key="args", flag="--eal-arg", pytype=tuple),
    # [dataplane]: rings, pools, tables, timeouts
    Option("burst", "dataplane", Int(1, 512), 32, "packets per rx/tx burst", pytype=int),
    Option("guest_tx_retries", "dataplane", Int(0, 32), 8,
           "tries again of a burst a guest's ring took only part of, while each takes some (a VM empties its "
           "ring from its own vCPU; Open vSwitch's vhost-user tx-retries-max)", pytype=int),
    Option("rx_desc", "dataplane", Int(64, 32768), 1024, "rx descriptors per queue", pytype=int),
    Option("tx_desc", "dataplane", Int(64, 32768), 1024, "tx descriptors per queue", pytype=int),
    Option("mbufs", "dataplane", Int(1023, 1 << 26), MEMORY_DEFAULTS["mbufs"], "mbufs in the packet pool", pytype=int),
    # DPDK wants cache * 1.5 <= mbufs: these two ranges guarantee it
    Option("mbuf_cache", "dataplane", Int(0, 512), 256, "per-lcore mbuf cache", pytype=int),
    Option("flow_capacity", "dataplane", Int(64, 1 << 27), MEMORY_DEFAULTS["flow_capacity"],
           f"flow table entries per worker ({capacity.FLOW_BYTES + capacity.FLOW_SLOT_BYTES} bytes each of EAL "
           "memory, for a power of two)", pytype=int),
    Option("prefix_capacity", "dataplane", Int(16, 2519), MEMORY_DEFAULTS["prefix_capacity"],
           "prefixes the V2B table and the underlay route table hold, each (two tries each, "
           f"{capacity.PREFIX_TABLES_BYTES // 4 // (1 << 20)} MiB + {capacity.PREFIX_BYTES // 4} bytes a prefix)",
           pytype=int),
    Option("buckets", "dataplane", Int(1, 65536, power_of_two=True), 4096,
           "buckets per TEP set and nexthop group", pytype=int),
    Option("tcp_idle_timeout_s", "dataplane", Int(1, 86400), 600, "idle TCP flow expiry, seconds", pytype=int),
    Option("tcp_closed_timeout_s", "dataplane", Int(1, 86400), 2,
           "TCP flow expiry after FIN/RST, seconds", pytype=int),
    Option("udp_idle_timeout_s", "dataplane", Int(1, 86400), 60, "idle UDP flow expiry, seconds", pytype=int),
    Option("icmp_idle_timeout_s", "dataplane", Int(1, 86400), 10, "idle ICMP flow expiry, seconds", pytype=int),
    Option("rebalance", "dataplane", Choice(("idle", "never")), "idle",
           "move a flow to a member that came (back) up: once idle, or never", pytype=str),
    Option("rebalance_idle_ms", "dataplane", Int(0, 3_600_000), 10_000,
           "idle time before a flow may be rebalanced, milliseconds", pytype=int),
    Option("exception_path", "dataplane", Bool(), True,
           "punt non-Geneve uplink frames to a kernel tap named after the uplink", pytype=bool),
    Option("follow_link", "dataplane", Bool(), True,
           "take an uplink's nexthops down while its DPDK link is down (a net_tap uplink moved to another "
           "namespace reads down: turn this off)", pytype=bool),
    Option("state_dir", "dataplane", Text("an absolute directory path", r"/.*", "DIR"), None,
           "bucket tables and flow hash key, kept so a restart keeps every flow on its path "
           "[default: /var/lib/opte-fast/<underlay addr>]", pytype=str),
    # [underlay]: this sled's tunnel end and the outer headers
    Option("underlay_addr", "underlay", UnicastV6(), None, "this sled's underlay IPv6 address (required)",
           key="addr", pytype=ipaddress.IPv6Address),
    Option("hop_limit", "underlay", Int(1, 255), 128, "outer IPv6 hop limit", pytype=int),
    Option("underlay_mtu_bytes", "underlay", Int(1350, 9216), 1500,
           "the underlay's IP MTU: a guest packet longer than this less 70 bytes gets an ICMP error back",
           key="mtu_bytes", pytype=int),
    Option("flow_label", "underlay", Bool(), True, "outer flow label from the flow hash (else 0)", pytype=bool),
    Option("udp_sport_range", "underlay", PortRange(), (49152, 65535),
           "outer UDP source ports (flow entropy), LOW-HIGH", pytype=tuple),
    Option("udp_checksum", "underlay", Bool(), False, "compute the outer UDP checksum (else 0)", pytype=bool),
    Option("verify_udp_checksum", "underlay", Bool(), False,
           "verify non-zero outer UDP checksums on receive", pytype=bool),
    Option("strict_underlay", "underlay", Bool(), False,
           "accept Geneve only from V2B TEPs, and from a V2P sled for its own guests' addresses; "
           "drop the rest as underlay_source_unknown", pytype=bool),
    # [route_sync]: where underlay routes come from
    Option("route_source", "route_sync", Choice(("netlink", "static", "none")), "netlink",
           "netlink: follow the host routing table; static: [[route]] entries; none: control socket only",
           key="source", pytype=str),
    Option("netns", "route_sync", Text("a network namespace name", NAME, "NAME"), None,
           "read routes in this network namespace (see ip netns); the uplinks' kernel taps are put there",
           pytype=str),
    # [control]
    Option("control_socket", "control", Text("an absolute path of at most 100 bytes", r"/.{0,99}", "PATH"),
           "/run/opte-fast/opte-fast.sock", "unix control socket path", key="socket", pytype=str),
    Option("metrics_listen", "control", ListenAddress(), None,
           "serve Prometheus metrics over HTTP at this address (off when not given)", pytype=tuple),
    # [bfd]: fast failure detection (controlplane/bfd.py, bfd_settings.py); per uplink in [[bfd_uplink]]
    Option("bfd", "bfd", Choice(bfd_settings.MODES), "off",
           "BFD on every uplink's nexthops and to every TEP: off; on (a session that was up and failed marks its "
           "nexthop or TEP down); require (only an up session lets its nexthop or TEP be used)", key="mode",
           pytype=str),
    Option("bfd_tx_ms", "bfd", Int(10, 60_000), 50, "BFD desired min TX interval, milliseconds",
           key="desired_min_tx_ms", pytype=int),
    Option("bfd_rx_ms", "bfd", Int(10, 60_000), 50, "BFD required min RX interval, milliseconds",
           key="required_min_rx_ms", pytype=int),
    Option("bfd_multiplier", "bfd", Int(1, 255), 3, "BFD detect multiplier", key="detect_multiplier", pytype=int),
    Option("bfd_multihop", "bfd", Bool(), True, "multi-hop BFD (RFC 5883) to every TEP a V2B entry names",
           key="multihop", pytype=bool),
    Option("bfd_multihop_encap", "bfd", Choice(bfd_settings.MULTIHOP_ENCAPS), "geneve",
           "how multi-hop BFD reaches a TEP: geneve (inside the tunnel, as guest traffic: a TEP that stops "
           "decapsulating goes down) or plain (to the TEP's address: only a TEP that stops answering does)",
           key="multihop_encap", pytype=str),
    Option("bfd_auth", "bfd", Choice(tuple(bfd_settings.AUTH_TYPES)), "none",
           "BFD authentication (RFC 5880 6.7.4), multi-hop sessions' too", key="auth", pytype=str),
    Option("bfd_auth_key_id", "bfd", Int(0, 255), 1, "BFD authentication key ID, sent and required",
           key="auth_key_id", pytype=int),
    Option("bfd_auth_key_file", "bfd", Text("an absolute file path", r"/.*", "FILE"), None,
           "the file holding BFD's authentication secret (1 to 20 bytes, less one trailing newline)",
           key="auth_key_file", pytype=str),
    # [run]
    Option("duration_s", "run", Number(0, 1e9), 0.0, "stop after this many seconds (0: until signalled)",
           pytype=float),
    Option("stats_interval_s", "run", Number(0, 86400), 0.0, "print stats every this many seconds (0: never)",
           pytype=float),
    Option("log_level", "run", Choice(events.LEVELS), "info",
           "the least severe event logged on stderr", pytype=str),
    Option("log_format", "run", Choice(events.FORMATS), "text",
           "event lines on stderr: text (opte-fast: ...) or one JSON object each", pytype=str),
)

OPTION_BY_NAME = {o.name: o for o in OPTIONS}
TABLES: dict[str, dict[str, Option]] = {}
for _o in OPTIONS:
    TABLES.setdefault(_o.table, {})[_o.toml_key] = _o
# Every option's default, for the layers below the CLI that take the same values in their own units.
DEFAULTS: dict[str, Any] = {o.name: o.default for o in OPTIONS}


Options = dataclasses.make_dataclass(
    "Options", [(o.name, o.pytype | None if o.default is None else o.pytype) for o in OPTIONS], frozen=True,
    namespace={"__doc__": "Every tunable of a run, resolved (see OPTIONS for meaning, units and defaults)."})

