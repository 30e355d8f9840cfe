"""Run options and the TOML config file of `opte-fast run`.

`OPTIONS` below is the one table of tunables: it gives every TOML key (table
and name), its type, unit, range and default, and the click flag that
overrides it (`run_options` adds them all to a command). Flags override the
file; the file overrides the defaults. Ports and forwarding tables come from
the arrays of tables `[[uplink]]`, `[[guest]]`, `[[v2p]]`, `[[v2b]]` and
`[[route]]`; `docs/config-example.toml` shows every key.

Everything is checked before anything starts. A bad value raises
`ConfigError` with one line naming the file (or "command line"), the key as
written (`v2b[1].teps[0]`, `--burst`) and what is expected.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import ipaddress
import os
import re
import tomllib
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from .controlplane.state import (
    BOUNDARY_SERVICES_VNI,
    V2B,
    V2P,
    DesiredState,
    GuestPort,
    Nexthop,
    Route,
    Tep,
    Underlay,
    parse_mac,
)

COMMAND_LINE = "command line"
IFNAMSIZ = 16  # kernel interface names are at most 15 bytes


class ConfigError(ValueError):
    """One line: where (file or command line), which key, what is expected."""


class BadValue(ValueError):
    """A value is wrong; the message says what is expected, the caller says where."""


# --- value kinds: parse a TOML value (or a flag's text) into a Python value -------------


def _describe(value: Any) -> str:
    kind = {bool: "boolean", int: "integer", float: "number", str: "string",
            list: "array", dict: "table"}.get(type(value), type(value).__name__)
    return f"{kind} {value!r}" if kind in ("integer", "number", "string", "boolean") else kind


@dataclass(frozen=True)
class Int:
    lo: int
    hi: int
    power_of_two: bool = False

    @property
    def expected(self) -> str:
        p2 = "a power of two" if self.power_of_two else "an integer"
        return f"{p2} from {self.lo} to {self.hi}"

    def parse(self, value: Any, text: bool) -> int:
        if text and isinstance(value, str):
            try:
                value = int(value, 16) if value.lower().startswith("0x") else int(value)
            except ValueError:
                raise BadValue(f"expected {self.expected}, got {value!r}") from None
        if not isinstance(value, int) or isinstance(value, bool):
            raise BadValue(f"expected {self.expected}, got {_describe(value)}")
        if not self.lo <= value <= self.hi or (self.power_of_two and value & (value - 1)):
            raise BadValue(f"expected {self.expected}, got {value}")
        return value


@dataclass(frozen=True)
class Number:
    lo: float
    hi: float

    @property
    def expected(self) -> str:
        return f"a number from {self.lo:g} to {self.hi:g}"

    def parse(self, value: Any, text: bool) -> float:
        if text and isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise BadValue(f"expected {self.expected}, got {value!r}") from None
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise BadValue(f"expected {self.expected}, got {_describe(value)}")
        if not self.lo <= value <= self.hi:
            raise BadValue(f"expected {self.expected}, got {value:g}")
        return float(value)


@dataclass(frozen=True)
class Bool:
    expected = "true or false"

    def parse(self, value: Any, text: bool) -> bool:
        if not isinstance(value, bool):
            raise BadValue(f"expected {self.expected}, got {_describe(value)}")
        return value


@dataclass(frozen=True)
class Choice:
    choices: tuple[str, ...]

    @property
    def expected(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)

    def parse(self, value: Any, text: bool) -> str:
        if value not in self.choices or not isinstance(value, str):
            raise BadValue(f"expected {self.expected}, got {_describe(value)}")
        return value


@dataclass(frozen=True)
class Text:
    """A string matching `pattern` (fully); `what` says what it is."""
    what: str
    pattern: str = r".+"
    metavar: str = "TEXT"

    @property
    def expected(self) -> str:
        return self.what

    def parse(self, value: Any, text: bool) -> str:
        if not isinstance(value, str) or not re.fullmatch(self.pattern, value):
            raise BadValue(f"expected {self.what}, got {_describe(value)}")
        return value


@dataclass(frozen=True)
class ListenAddress:
    """ADDR:PORT with an IP literal ([v6] in brackets) -> (addr, port); port 0 picks a free one."""
    expected = "ADDR:PORT like 127.0.0.1:9464 or [::1]:9464"
    metavar = "ADDR:PORT"

    def parse(self, value: Any, text: bool) -> tuple[str, int]:
        m = re.fullmatch(r"\[([^]]+)\]:(\d{1,5})|([^:]+):(\d{1,5})", value) if isinstance(value, str) else None
        try:
            addr, port = ipaddress.ip_address(m.group(1) or m.group(3)), int(m.group(2) or m.group(4))
        except (AttributeError, ValueError):
            raise BadValue(f"expected {self.expected}, got {_describe(value)}") from None
        if port > 65535 or (addr.version == 6) != bool(m.group(1)):
            raise BadValue(f"expected {self.expected}, got {_describe(value)}")
        return str(addr), port


@dataclass(frozen=True)
class TextList:
    what: str

    @property
    def expected(self) -> str:
        return f"an array of {self.what}"

    def parse(self, value: Any, text: bool) -> tuple[str, ...]:
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise BadValue(f"expected {self.expected}, got {_describe(value)}")
        return tuple(value)


@dataclass(frozen=True)
class UnicastV6:
    expected = "a unicast IPv6 address like fd00:1::1"

    def parse(self, value: Any, text: bool) -> ipaddress.IPv6Address:
        return _ipv6(value, self.expected, link_local=False)


@dataclass(frozen=True)
class PortRange:
    expected = "a UDP port range LOW-HIGH within 1-65535, like 49152-65535"

    def parse(self, value: Any, text: bool) -> tuple[int, int]:
        m = re.fullmatch(r"(\d+)-(\d+)", value) if isinstance(value, str) else None
        if not m or not 1 <= int(m[1]) <= int(m[2]) <= 65535:
            raise BadValue(f"expected {self.expected}, got {_describe(value)}")
        return int(m[1]), int(m[2])


def _ipv6(value: Any, expected: str, link_local: bool) -> ipaddress.IPv6Address:
    try:
        addr = ipaddress.IPv6Address(value) if isinstance(value, str) else None
    except ValueError:
        addr = None
    if addr is None or addr.is_multicast or addr.is_unspecified or addr.is_loopback \
            or (addr.is_link_local and not link_local):
        raise BadValue(f"expected {expected}, got {_describe(value)}")
    return addr


# --- the table of run options ------------------------------------------------------------


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
NAME = r"[A-Za-z0-9][A-Za-z0-9_.:-]*"

OPTIONS: tuple[Option, ...] = (
    # [eal]: how DPDK starts
    Option("lcores", "eal", Text("an lcore list like 1 or 1-3 or 1,3", LCORE_LIST, "LIST"), "1",
           "worker lcores (the main lcore runs the control plane)", pytype=str),
    Option("hugepages", "eal", Bool(), False,
           "use hugepages; without them EAL runs with --no-huge -m MEMORY_MB", pytype=bool),
    Option("memory_mb", "eal", Int(64, 1 << 20), 2048,
           "EAL memory in MiB (a million-flow table per worker needs about 600)", pytype=int),
    Option("file_prefix", "eal", Text("a file prefix of letters, digits, '-', '_', '.'", r"[A-Za-z0-9_.-]+", "PREFIX"),
           None, "EAL --file-prefix [default: opte-fast-<pid>]", pytype=str),
    Option("eal_args", "eal", TextList("EAL arguments"), (), "extra EAL argument, passed through (repeatable)",
           key="args", flag="--eal-arg", pytype=tuple),
    # [dataplane]: rings, pools, tables, timeouts
    Option("burst", "dataplane", Int(1, 512), 32, "packets per rx/tx burst", pytype=int),
    Option("rx_desc", "dataplane", Int(64, 32768), 1024, "rx descriptors per queue", pytype=int),
    Option("tx_desc", "dataplane", Int(64, 32768), 1024, "tx descriptors per queue", pytype=int),
    Option("mbufs", "dataplane", Int(1023, 1 << 26), 16383, "mbufs in the packet pool", pytype=int),
    # DPDK wants cache * 1.5 <= mbufs: these two ranges guarantee it
    Option("mbuf_cache", "dataplane", Int(0, 512), 256, "per-lcore mbuf cache", pytype=int),
    Option("flow_capacity", "dataplane", Int(64, 1 << 27), 1 << 20, "flow table entries", pytype=int),
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
    Option("hash_seed", "dataplane", Int(0, 0xFFFFFFFF), None,
           "flow hash seed [default: zlib CRC-32 of the 16 underlay address bytes]", pytype=int),
    Option("exception_path", "dataplane", Bool(), True,
           "punt non-Geneve uplink frames to a kernel tap named after the uplink", pytype=bool),
    Option("follow_link", "dataplane", Bool(), True,
           "take an uplink's nexthops down while its DPDK link is down (a net_tap uplink moved to another "
           "namespace reads down: turn this off)", pytype=bool),
    Option("state_dir", "dataplane", Text("an absolute directory path", r"/.*", "DIR"), None,
           "where the bucket tables are saved, so a restart keeps every flow on its path "
           "[default: /var/lib/opte-fast/<underlay addr>]", pytype=str),
    # [underlay]: this sled's tunnel end and the outer headers
    Option("underlay_addr", "underlay", UnicastV6(), None, "this sled's underlay IPv6 address (required)",
           key="addr", pytype=ipaddress.IPv6Address),
    Option("hop_limit", "underlay", Int(1, 255), 128, "outer IPv6 hop limit", pytype=int),
    Option("flow_label", "underlay", Bool(), True, "outer flow label from the flow hash (else 0)", pytype=bool),
    Option("udp_sport_range", "underlay", PortRange(), (49152, 65535),
           "outer UDP source ports (flow entropy), LOW-HIGH", pytype=tuple),
    Option("udp_checksum", "underlay", Bool(), False, "compute the outer UDP checksum (else 0)", pytype=bool),
    Option("verify_udp_checksum", "underlay", Bool(), False,
           "verify non-zero outer UDP checksums on receive", pytype=bool),
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
    # [run]
    Option("duration_s", "run", Number(0, 1e9), 0.0, "stop after this many seconds (0: until signalled)",
           pytype=float),
    Option("stats_interval_s", "run", Number(0, 86400), 0.0, "print stats every this many seconds (0: never)",
           pytype=float),
)

_BY_NAME = {o.name: o for o in OPTIONS}
TABLES: dict[str, dict[str, Option]] = {}
for _o in OPTIONS:
    TABLES.setdefault(_o.table, {})[_o.toml_key] = _o



Options = dataclasses.make_dataclass(
    "Options", [(o.name, o.pytype | None if o.default is None else o.pytype) for o in OPTIONS], frozen=True,
    namespace={"__doc__": "Every tunable of a run, resolved (see OPTIONS for meaning, units and defaults)."})


# --- ports and the tables of the file ----------------------------------------------------


@dataclass(frozen=True)
class PortSpec:
    """A DPDK port: `role` is "guest" or "uplink"; uplink names match kernel interfaces."""
    name: str
    role: str
    devargs: str


ARRAYS = {
    "uplink": {"name", "devargs"},
    "guest": {"name", "devargs", "vni", "mac", "gateway_mac", "ipv4", "ipv6"},
    "v2p": {"vni", "ip", "underlay", "mac"},
    "v2b": {"prefix", "teps", "vni"},
    "route": {"prefix", "nexthops"},
}
NEXTHOP_KEYS = {"uplink", "gateway", "mac"}


@dataclass(frozen=True)
class Config:
    """A checked run: tunables, ports, and the tables to start with."""
    source: str
    options: Any  # Options
    ports: tuple[PortSpec, ...]
    guests: tuple[GuestPort, ...]
    v2p: tuple[V2P, ...]
    v2b: tuple[V2B, ...]
    static_routes: tuple[Route, ...]

    @property
    def uplinks(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.ports if p.role == "uplink")

    def underlay(self) -> Underlay:
        return Underlay(addr=self.options.underlay_addr)

    def initial_state(self) -> DesiredState:
        """The state to commit first; routes only from a static route source."""
        routes = self.static_routes if self.options.route_source == "static" else ()
        return DesiredState(underlay=self.underlay(), guests=self.guests, v2p=self.v2p,
                            v2b=self.v2b, routes=routes)


class _Reader:
    """Checks values at dotted keys and raises ConfigError located in `source`."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {key}: {message}")

    def table(self, value: Any, key: str, allowed: set[str], required: tuple[str, ...] = ()) -> dict:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table with keys {', '.join(sorted(allowed))}, got {_describe(value)}")
        for k in value:
            if k not in allowed:
                raise self.fail(f"{key}.{k}", _unknown("key", k, allowed))
        for k in required:
            if k not in value:
                raise self.fail(f"{key}.{k}", "missing")
        return value

    def get(self, entry: dict, key: str, field: str, parse: Callable[[Any], Any], default: Any = None) -> Any:
        if field not in entry:
            return default
        try:
            return parse(entry[field])
        except BadValue as e:
            raise self.fail(f"{key}.{field}", str(e)) from None

    def array(self, doc: dict, name: str) -> list[tuple[str, dict]]:
        value = doc.get(name, [])
        if not isinstance(value, list):
            raise self.fail(name, f"expected an array of tables written [[{name}]], got {_describe(value)}")
        return [(f"{name}[{i}]", self.table(e, f"{name}[{i}]", ARRAYS[name])) for i, e in enumerate(value)]


def _unknown(what: str, name: str, allowed) -> str:
    near = difflib.get_close_matches(name, list(allowed), n=1)
    hint = f"did you mean {near[0]!r}?" if near else "expected one of " + ", ".join(sorted(allowed))
    return f"unknown {what} ({hint})"


def _need(value: Any, parse: Callable[[str], Any], expected: str) -> Any:
    if not isinstance(value, str):
        raise BadValue(f"expected {expected}, got {_describe(value)}")
    try:
        return parse(value)
    except ValueError:
        raise BadValue(f"expected {expected}, got {_describe(value)}") from None


def vni_value(value: Any) -> int:
    return Int(0, (1 << 24) - 1).parse(value, False)


def mac_value(value: Any) -> str:
    mac = _need(value, parse_mac, "a MAC address like a8:40:25:00:00:01")
    if int(mac[:2], 16) & 1:
        raise BadValue(f"expected a unicast MAC address (first byte even), got {value!r}")
    return mac


def prefix_value(value: Any, v6_only: bool = False) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    expected = "an IPv6 prefix like fd00:99::/64" if v6_only else "an IP prefix like 0.0.0.0/0 or fd00::/16"
    net = _need(value, lambda s: ipaddress.ip_network(s, strict=False), expected)
    if v6_only and net.version != 6:
        raise BadValue(f"expected {expected}, got {value!r}")
    if net.network_address != ipaddress.ip_interface(value).ip:
        raise BadValue(f"expected {expected} with no host bits set ({net}), got {value!r}")
    return net


def ip_value(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return _need(value, ipaddress.ip_address, "an IPv4 or IPv6 address")


def gateway_value(value: Any) -> ipaddress.IPv6Address:
    return _ipv6(value, "an IPv6 gateway address like fe80::1", link_local=True)


def unicast_v6_value(value: Any) -> ipaddress.IPv6Address:
    return UnicastV6().parse(value, False)


def _port_name(name: Any, role: str) -> str:
    limit = IFNAMSIZ - 1 if role == "uplink" else 63
    what = "kernel interface name" if role == "uplink" else "port name"
    if not isinstance(name, str) or not re.fullmatch(NAME, name) or len(name) > limit:
        raise BadValue(f"expected a {what} of letters, digits, '_', '.', '-' (at most {limit}), got {_describe(name)}")
    return name


def split_port_arg(text: str) -> tuple[str, str]:
    """`[NAME=]DEVARGS` -> (name, devargs); NAME defaults to iface= or the device name."""
    head, eq, rest = text.partition("=")
    if eq and "," not in head and rest:
        return head, rest
    for kv in text.split(",")[1:]:
        if kv.startswith("iface="):
            return kv[len("iface="):], text
    return text.split(",")[0], text


# --- loading -----------------------------------------------------------------------------


def load_config(path: str | os.PathLike | None, flag_overrides: dict[str, Any]) -> Config:
    """Read `path` (or nothing), apply flag values, check everything; ConfigError if wrong.

    `flag_overrides` maps Options names to values (text as typed, or native
    values); None or () means "not given". "guest" and "uplink" hold
    `[NAME=]DEVARGS` strings that add ports or replace a port's devargs.
    """
    source = os.fspath(path) if path is not None else COMMAND_LINE
    doc = _read_toml(source) if path is not None else {}
    r = _Reader(source)
    for name in doc:
        if name not in TABLES and name not in ARRAYS:
            raise r.fail(name, _unknown("table", name, [*TABLES, *ARRAYS]))

    values: dict[str, Any] = {o.name: o.default for o in OPTIONS}
    for table, keys in TABLES.items():
        for key, raw in r.table(doc.get(table, {}), table, set(keys)).items():
            opt = keys[key]
            values[opt.name] = r.get({key: raw}, table, key, lambda v, o=opt: o.kind.parse(v, False))
    cli = _Reader(COMMAND_LINE)
    for name, raw in flag_overrides.items():
        if name in ("guest", "uplink") or raw is None or raw == ():
            continue
        if name not in _BY_NAME:
            raise ValueError(f"load_config: no option named {name!r}")
        opt = _BY_NAME[name]
        try:
            values[name] = opt.kind.parse(raw, isinstance(raw, str))
        except BadValue as e:
            raise cli.fail(opt.flag_name, str(e)) from None
    options = _resolve(values, r)

    ports = _ports(doc, r, flag_overrides, options.exception_path)
    guests = _guests(doc, r)
    described = {g.port for g in guests}
    for p in ports:
        if p.role == "guest" and p.name not in described:
            raise cli.fail("--guest", f"port {p.name!r} has no [[guest]] entry "
                                      "(expected one with its name, vni, mac and gateway_mac in the config file)")
    v2p = _v2p(doc, r)
    v2b = _v2b(doc, r)
    routes = _routes(doc, r, [p.name for p in ports if p.role == "uplink"])
    return Config(source=source, options=options, ports=ports, guests=guests, v2p=v2p, v2b=v2b,
                  static_routes=routes)


def _read_toml(source: str) -> dict:
    try:
        with open(source, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"{source}: cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: not valid TOML: {e}") from None


def _resolve(values: dict[str, Any], r: _Reader) -> Any:
    """Fill derived defaults and check options against each other."""
    if values["underlay_addr"] is None:
        raise r.fail(_BY_NAME["underlay_addr"].where,
                     "missing (expected this sled's underlay IPv6 address, or give --underlay-addr)")
    if values["hash_seed"] is None:
        values["hash_seed"] = zlib.crc32(values["underlay_addr"].packed)
    if values["file_prefix"] is None:
        values["file_prefix"] = f"opte-fast-{os.getpid()}"
    if values["state_dir"] is None:
        values["state_dir"] = f"/var/lib/opte-fast/{values['underlay_addr']}"
    netns = values["netns"]
    if netns and values["route_source"] == "netlink" and not os.path.exists(f"/run/netns/{netns}"):
        raise r.fail(_BY_NAME["netns"].where, f"no network namespace {netns!r} (expected one listed by ip netns)")
    return Options(**values)


def _ports(doc: dict, r: _Reader, flags: dict[str, Any], exception_path: bool) -> tuple[PortSpec, ...]:
    found: dict[str, tuple[str, str | None, str]] = {}  # name -> (role, devargs, key)
    for role in ("guest", "uplink"):
        for key, e in r.array(doc, role):
            if "name" not in e:
                raise r.fail(f"{key}.name", "missing")
            name = r.get(e, key, "name", lambda v, role=role: _port_name(v, role))
            devargs = r.get(e, key, "devargs", lambda v: Text("DPDK devargs like net_tap0,iface=g0").parse(v, False))
            if name in found:
                raise r.fail(f"{key}.name", f"port {name!r} is already defined by {found[name][2]}")
            found[name] = (role, devargs, key)
    cli = _Reader(COMMAND_LINE)
    for role in ("guest", "uplink"):
        for text in flags.get(role) or ():
            flag = f"--{role}"
            name, devargs = split_port_arg(text)
            if not devargs or not name:
                raise cli.fail(flag, f"expected [NAME=]DEVARGS like g0=net_tap0,iface=g0, got {text!r}")
            try:
                _port_name(name, role)
            except BadValue as e:
                raise cli.fail(flag, f"{e} (from {text!r}; give NAME=DEVARGS)") from None
            if name in found and found[name][0] != role:
                raise cli.fail(flag, f"port {name!r} is already a {found[name][0]} port ({found[name][2]})")
            found[name] = (role, devargs, flag)
    for name, (role, devargs, key) in found.items():
        if devargs is None:
            raise r.fail(f"{key}.devargs", f"missing (give it here or as --{role} {name}=DEVARGS)")
    _check_interfaces_unshared(found, exception_path, r)
    return tuple(PortSpec(n, role, d) for n, (role, d, _) in found.items())


def _check_interfaces_unshared(found: dict[str, tuple[str, str, str]], exception_path: bool, r: _Reader) -> None:
    """Two ports on one kernel interface (or vhost socket) would steal each other's frames, and
    an uplink's exception-path tap takes the uplink's own name: each may be claimed once."""
    owners: dict[str, str] = {}
    if exception_path:
        for name, (role, _, _) in found.items():
            if role == "uplink":
                owners[name] = f"the exception-path tap of uplink {name!r}"
    for name, (role, devargs, key) in found.items():
        ifaces = [kv[len("iface="):] for kv in devargs.split(",")[1:] if kv.startswith("iface=")]
        for iface in ifaces:
            if iface in owners:
                where = key if key.startswith("--") else f"{key}.devargs"
                hint = (" (with exception_path on, name the DPDK side's tap otherwise, e.g. iface=dp-"
                        f"{iface[:12]})" if owners[iface].startswith("the exception") else "")
                raise _Reader(COMMAND_LINE if key.startswith("--") else r.source).fail(
                    where, f"iface={iface} is already {owners[iface]}{hint}")
            owners[iface] = f"the interface of {role} port {name!r}"


def _guests(doc: dict, r: _Reader) -> tuple[GuestPort, ...]:
    guests: list[GuestPort] = []
    seen: dict[tuple[int, str], str] = {}
    for key, e in r.array(doc, "guest"):
        r.table(e, key, ARRAYS["guest"], ("name", "vni", "mac", "gateway_mac"))
        vni = r.get(e, key, "vni", vni_value)
        mac = r.get(e, key, "mac", mac_value)
        if (vni, mac) in seen:
            raise r.fail(f"{key}.mac", f"expected a MAC unique within VNI {vni}; {seen[vni, mac]} has {mac}")
        seen[vni, mac] = key
        ipv4 = r.get(e, key, "ipv4", lambda v: _need(v, ipaddress.IPv4Address, "an IPv4 address"))
        ipv6 = r.get(e, key, "ipv6", lambda v: _need(v, ipaddress.IPv6Address, "an IPv6 address"))
        guests.append(GuestPort(port=e["name"], vni=vni, mac=mac, gateway_mac=r.get(e, key, "gateway_mac", mac_value),
                                ipv4=ipv4, ipv6=ipv6))
    return tuple(guests)


def _v2p(doc: dict, r: _Reader) -> tuple[V2P, ...]:
    out: dict[tuple, V2P] = {}
    where: dict[tuple, str] = {}
    for key, e in r.array(doc, "v2p"):
        r.table(e, key, ARRAYS["v2p"], ("vni", "ip", "underlay", "mac"))
        vni, ip = r.get(e, key, "vni", vni_value), r.get(e, key, "ip", ip_value)
        if (vni, ip) in out:
            raise r.fail(f"{key}.ip", f"expected one entry per (vni, ip); {where[vni, ip]} already maps {ip}")
        where[vni, ip] = key
        underlay = r.get(e, key, "underlay", unicast_v6_value)
        out[vni, ip] = V2P(vni=vni, ip=ip, underlay=underlay, mac=r.get(e, key, "mac", mac_value))
    return tuple(out.values())


def _v2b(doc: dict, r: _Reader) -> tuple[V2B, ...]:
    out: list[V2B] = []
    where: dict = {}
    for key, e in r.array(doc, "v2b"):
        r.table(e, key, ARRAYS["v2b"], ("prefix", "teps"))
        prefix = r.get(e, key, "prefix", prefix_value)
        if prefix in where:
            raise r.fail(f"{key}.prefix", f"expected one entry per prefix; {where[prefix]} already has {prefix}")
        where[prefix] = key
        vni = r.get(e, key, "vni", vni_value, BOUNDARY_SERVICES_VNI)
        teps = e["teps"]
        if not isinstance(teps, list) or not teps:
            raise r.fail(f"{key}.teps", f"expected a non-empty array of TEP IPv6 addresses, got {_describe(teps)}")
        addrs: list[ipaddress.IPv6Address] = []
        for i, t in enumerate(teps):
            addr = r.get({f"teps[{i}]": t}, key, f"teps[{i}]", unicast_v6_value)
            if addr in addrs:
                raise r.fail(f"{key}.teps[{i}]", f"expected distinct TEP addresses, got {addr} twice")
            addrs.append(addr)
        out.append(V2B(prefix=prefix, teps=tuple(Tep(a, vni) for a in addrs)))
    return tuple(out)


def _routes(doc: dict, r: _Reader, uplinks: list[str]) -> tuple[Route, ...]:
    out: list[Route] = []
    where: dict = {}
    for key, e in r.array(doc, "route"):
        r.table(e, key, ARRAYS["route"], ("prefix", "nexthops"))
        prefix = r.get(e, key, "prefix", lambda v: prefix_value(v, v6_only=True))
        if prefix in where:
            raise r.fail(f"{key}.prefix", f"expected one entry per prefix; {where[prefix]} already has {prefix}")
        where[prefix] = key
        hops = e["nexthops"]
        if not isinstance(hops, list) or not hops:
            raise r.fail(f"{key}.nexthops", "expected a non-empty array of {uplink, gateway, mac} tables, "
                                            f"got {_describe(hops)}")
        nexthops: list[Nexthop] = []
        for i, h in enumerate(hops):
            hk = f"{key}.nexthops[{i}]"
            r.table(h, hk, NEXTHOP_KEYS, ("uplink", "gateway", "mac"))
            uplink = h["uplink"]
            if uplink not in uplinks:
                raise r.fail(f"{hk}.uplink", f"no uplink {uplink!r} "
                                             f"(expected one of {', '.join(uplinks) or 'no uplinks defined'})")
            nh = Nexthop(uplink=uplink, gateway=r.get(h, hk, "gateway", gateway_value),
                         mac=r.get(h, hk, "mac", mac_value))
            if any((n.uplink, n.gateway) == (nh.uplink, nh.gateway) for n in nexthops):
                raise r.fail(hk, f"expected distinct nexthops, got {uplink} {nh.gateway} twice")
            nexthops.append(nh)
        out.append(Route(prefix=prefix, nexthops=tuple(nexthops)))
    return tuple(out)


# --- click ---------------------------------------------------------------------------------


def _flag_help(o: Option) -> str:
    shown = o.default
    if isinstance(o.kind, Bool):
        shown = o.flag_name if shown else "--no-" + o.flag_name[2:]
    elif isinstance(o.kind, PortRange):
        shown = f"{shown[0]}-{shown[1]}"
    elif isinstance(shown, float):
        shown = f"{shown:g}"
    default = "" if shown in (None, ()) or "[default" in o.help else f" [default: {shown}]"
    return f"{o.help}; file: [{o.table}] {o.toml_key}{default}"


def run_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add every run flag to a click command; the command receives `config: Config`.

    A bad file or flag prints one line on stderr and exits 2 before `fn` runs.
    """
    @functools.wraps(fn)
    def wrapper(*args: Any, config_path: str | None, guest: tuple[str, ...], uplink: tuple[str, ...],
                **kwargs: Any) -> Any:
        flags = {o.name: kwargs.pop(o.name) for o in OPTIONS}
        try:
            config = load_config(config_path, {**flags, "guest": guest, "uplink": uplink})
        except ConfigError as e:
            click.echo(f"opte-fast: {e}", err=True)
            raise click.exceptions.Exit(2) from None
        return fn(*args, config=config, **kwargs)

    for o in reversed(OPTIONS):
        if isinstance(o.kind, Bool):
            decl = f"{o.flag_name}/--no-{o.flag_name[2:]}"
            wrapper = click.option(decl, o.name, default=None, help=_flag_help(o))(wrapper)
        else:
            metavar = {Int: "N", Number: "N", UnicastV6: "ADDR", PortRange: "LOW-HIGH", TextList: "ARG",
                       ListenAddress: ListenAddress.metavar, Choice: "|".join(getattr(o.kind, "choices", ())),
                       Text: getattr(o.kind, "metavar", "")}[type(o.kind)]
            multiple = isinstance(o.kind, TextList)
            wrapper = click.option(o.flag_name, o.name, default=None, multiple=multiple, metavar=metavar,
                                   help=_flag_help(o))(wrapper)
    wrapper = click.option("--uplink", "uplink", multiple=True, metavar="[NAME=]DEVARGS",
                           help="an uplink port (repeatable); NAME defaults to iface= or the device name "
                                "and must be the kernel interface routes refer to")(wrapper)
    wrapper = click.option("--guest", "guest", multiple=True, metavar="[NAME=]DEVARGS",
                           help="a guest port (repeatable); NAME defaults to iface= or the device name")(wrapper)
    wrapper = click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                           metavar="FILE", help="TOML config file (see docs/config-example.toml)")(wrapper)
    return wrapper
