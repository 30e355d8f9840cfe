"""The control protocol: the socket's messages and `OPS`, the one table of operations.

One request per line, one reply per line, UTF-8 JSON:

    {"v": 1, "op": "v2b.set", "args": {"prefix": "0.0.0.0/0", "teps": ["fd00:99::1"]}}
    {"v": 1, "ok": true, "result": {"changed": true}}
    {"v": 1, "ok": false, "error": "unknown op 'v2b.add' (did you mean 'v2b.set'?)"}

`OPS` defines every operation and its arguments once: the server (server.py) checks and
converts arguments with it before dispatch, the client (client.py) names operations by it,
and `opte-fast ctl` (ctl.py) is generated from it, a command per operation and a click
argument or flag per argument.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

import click

from ..config import values as cfg
from ..config.loader import NEXTHOP_KEYS
from ..controlplane.state import BOUNDARY_SERVICES_VNI, Nexthop

VERSION = 1
MAX_REQUEST_BYTES = 1 << 20
DEFAULT_SOCKET = "/run/opte-fast/opte-fast.sock"


class ControlError(RuntimeError):
    """A request failed: the server's error text, or why the server could not be reached."""


# --- the operations ------------------------------------------------------------------------

REQUIRED = object()
# The most flows one `flows` reply holds: about 25 MB of JSON, built in about a second.
FLOWS_LIMIT_MAX = 65536
FLOW_LIMIT = cfg.Int(1, FLOWS_LIMIT_MAX)


def _flow_limit(value: Any) -> int:
    return FLOW_LIMIT.parse(value, False)


def _tep_list(value: Any) -> tuple[ipaddress.IPv6Address, ...]:
    if not isinstance(value, list) or not value:
        raise cfg.BadValue("expected a non-empty list of TEP IPv6 addresses")
    return tuple(cfg.unicast_v6_value(v) for v in value)


def _match(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, (str, int)) and
                                              not isinstance(v, bool) for k, v in value.items()):
        raise cfg.BadValue("expected an object of flow field -> value, like {\"dst\": \"10.0.0.1\"}")
    return {k: str(v) for k, v in value.items()}


def _nexthop_list(value: Any) -> tuple[Nexthop, ...]:
    if not isinstance(value, list) or not value:
        raise cfg.BadValue("expected a non-empty list of {uplink, gateway, mac} objects")
    out = []
    for h in value:
        if not isinstance(h, dict) or set(h) != NEXTHOP_KEYS or not isinstance(h["uplink"], str):
            raise cfg.BadValue(f"expected a nexthop object with exactly uplink, gateway, mac, got {h!r}")
        out.append(Nexthop(h["uplink"], cfg.gateway_value(h["gateway"]), cfg.mac_value(h["mac"])))
    return tuple(out)


PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17, "icmpv6": 58}
TRACE_COUNT = cfg.Int(1, 1024)  # the data plane's trace ring: OF_TRACE_MAX
TRACE_TIMEOUT = cfg.Number(0.1, 20)  # below the client's 30 s


TRACE_MATCH_FIELDS = ("dir", "src", "dst", "proto", "port")
TRACE_MATCH_SYNTAX = "[dir=in|out,][src=IP,][dst=IP,][proto=P,][port=N]"


def _trace_match(value: Any) -> dict[str, Any]:
    """{"dir": "in", "out" or "any", "src": IP, "dst": IP, "proto": name or number, "port": destination
    port}: at least one field; those left out match anything."""
    if not isinstance(value, dict) or not value or set(value) - set(TRACE_MATCH_FIELDS):
        raise cfg.BadValue(f"expected {TRACE_MATCH_SYNTAX} (at least one; proto: tcp, udp, icmp, icmpv6 or a "
                           f"number; port: the destination port)")
    direction = str(value.get("dir", "any"))
    if direction not in ("in", "out", "any"):
        raise cfg.BadValue(f"dir: expected in, out or any, got {direction!r}")
    proto = value.get("proto", 0)
    if isinstance(proto, str):
        proto = PROTOCOLS.get(proto.lower(), proto)
    return {"dir": direction, "src": cfg.ip_value(str(value["src"])) if "src" in value else None,
            "dst": cfg.ip_value(str(value["dst"])) if "dst" in value else None,
            "proto": cfg.Int(0, 255).parse(proto, True), "port": cfg.Int(0, 65535).parse(value.get("port", 0), True)}


def _trace_match_from_words(text: str) -> dict[str, str]:
    """ctl's `--match dir=in,src=IP,...` as the "match" object."""
    match = {}
    for word in text.split(","):
        field, eq, value = word.partition("=")
        if not eq or field not in TRACE_MATCH_FIELDS:
            raise ValueError(f"expected {TRACE_MATCH_SYNTAX}, got {text!r}")
        match[field] = value
    return match


def _match_from_words(words: tuple[str, ...]) -> dict[str, str]:
    """ctl's `--match FIELD=VALUE ...` as the "match" object."""
    match = {}
    for word in words:
        field, eq, value = word.partition("=")
        if not eq or not field:
            raise ValueError(f"expected FIELD=VALUE, got {word!r}")
        match[field] = value
    return match


def _nexthops_from_words(hops: tuple[tuple[str, str, str], ...]) -> list[dict]:
    """ctl's `--nexthop UPLINK GATEWAY MAC ...` as the "nexthops" list."""
    return [{"uplink": u, "gateway": g, "mac": m} for u, g, m in hops]


@dataclass(frozen=True)
class Arg:
    """An argument: its name on the wire, how the server parses it, its default; and how
    `opte-fast ctl` takes it: as the positional argument NAME, or with `flag` as that option."""
    name: str
    parse: Callable[[Any], Any]
    default: Any = REQUIRED
    flag: str = ""
    help: str = ""
    cli_type: Any = str  # click's type of each value as typed
    many: bool = False  # a positional argument: every word left; a flag: repeatable
    metavar: str | None = None
    from_cli: Callable[[Any], Any] | None = None  # the wire value from what click gives (ValueError if bad)


@dataclass(frozen=True)
class Op:
    """An operation: its name on the wire (`group.command` in ctl), what it does, its arguments."""
    name: str
    help: str
    args: tuple[Arg, ...] = ()

    @property
    def method(self) -> str:
        return self.name.replace(".", "_")

    def check(self, args: Any) -> dict[str, Any]:
        """The arguments converted to Python values; ValueError naming the bad one."""
        if not isinstance(args, dict):
            raise ValueError(f"{self.name}: expected \"args\" to be an object")
        known = {a.name for a in self.args}
        for name in args:
            if name not in known:
                raise ValueError(f"{self.name}: unknown argument {name!r} "
                                 f"(expected {', '.join(sorted(known)) or 'no arguments'})")
        out = {}
        for a in self.args:
            if a.name not in args:
                if a.default is REQUIRED:
                    raise ValueError(f"{self.name}: missing argument {a.name!r}")
                out[a.name] = a.default
                continue
            try:
                out[a.name] = a.parse(args[a.name])
            except ValueError as e:
                raise ValueError(f"{self.name}: bad argument {a.name!r}: {e}") from None
        return out


PREFIX = Arg("prefix", cfg.prefix_value)
ROUTE_PREFIX = Arg("prefix", lambda v: cfg.prefix_value(v, v6_only=True))
VNI = Arg("vni", cfg.vni_value, cli_type=int)
ADDR = Arg("addr", cfg.unicast_v6_value)
OPS: dict[str, Op] = {op.name: op for op in (
    Op("stats", "Counters, ports and route sync."),
    Op("flows", "Active flows and the path each is pinned to.", (
        Arg("limit", _flow_limit, 100, flag="--limit",
            help=f"most flows to show, at most {FLOWS_LIMIT_MAX} (narrow the list with --match)",
            cli_type=click.IntRange(FLOW_LIMIT.lo, FLOW_LIMIT.hi)),
        Arg("match", _match, {}, flag="--match", many=True, metavar="FIELD=VALUE", from_cli=_match_from_words,
            help="only flows whose FIELD equals VALUE (repeatable; addresses compare as addresses)"))),
    Op("routes", "Underlay routes, a line per nexthop."),
    Op("nexthops", "Nexthops in the data plane: up, flows pinned, traffic."),
    Op("teps", "TEPs in the data plane: up, flows pinned, traffic."),
    Op("buckets", "Bucket counts per member of each TEP set and nexthop group."),
    Op("v2b.set", "Send destinations under PREFIX through one of TEPS.", (
        PREFIX, Arg("teps", _tep_list, many=True),
        Arg("vni", cfg.vni_value, BOUNDARY_SERVICES_VNI, flag="--vni", help="VNI toward boundary services",
            cli_type=int))),
    Op("v2b.clear", "Remove the entry for PREFIX.", (PREFIX,)),
    Op("v2b.dump", "Every V2B entry, a line per TEP."),
    Op("v2p.set", "Guest IP of VPC VNI is behind sled UNDERLAY with MAC.",
       (VNI, Arg("ip", cfg.ip_value), Arg("underlay", cfg.unicast_v6_value), Arg("mac", cfg.mac_value))),
    Op("v2p.clear", "Remove the entry for IP in VPC VNI.", (VNI, Arg("ip", cfg.ip_value))),
    Op("v2p.dump", "Every V2P entry."),
    Op("tep.up", "New flows may use ADDR again; idle flows rebalance onto it.", (ADDR,)),
    Op("tep.down", "Move every flow off ADDR.", (ADDR,)),
    Op("port.list", "Ports with role, devargs, counters and link state (up/down, changes, reaction time)."),
    Op("bfd", "BFD sessions: peer, state, discriminators, intervals, detect time, last change and why."),
    Op("route.set", "Reach PREFIX through every --nexthop.", (
        ROUTE_PREFIX,
        Arg("nexthops", _nexthop_list, flag="--nexthop", many=True, cli_type=(str, str, str),
            metavar="UPLINK GATEWAY MAC", help="a path (repeatable)", from_cli=_nexthops_from_words))),
    Op("route.clear", "Remove the route for PREFIX.", (ROUTE_PREFIX,)),
    Op("trace", "What the data plane decides for the next COUNT frames that match, and why: guest frames "
                "going out (flow, V2P or V2B, buckets, path) and Geneve frames coming in (guest or drop).", (
        Arg("match", _trace_match, flag="--match", metavar=TRACE_MATCH_SYNTAX, from_cli=_trace_match_from_words,
            help="the frames to trace, by their inner headers: direction (default both), source, destination, "
                 "protocol, destination port"),
        Arg("count", lambda v: TRACE_COUNT.parse(v, False), 10, flag="--count", help="frames to trace",
            cli_type=click.IntRange(TRACE_COUNT.lo, TRACE_COUNT.hi)),
        Arg("timeout_s", lambda v: TRACE_TIMEOUT.parse(v, False), 10.0, flag="--timeout-s",
            help="stop waiting for frames after this many seconds",
            cli_type=click.FloatRange(TRACE_TIMEOUT.lo, TRACE_TIMEOUT.hi)))),
    Op("instance", "This instance: pid, EAL file prefix, hugepages, whether DPDK's tools can attach."),
)}


def to_json(obj: Any) -> Any:
    """Plain JSON values from state dataclasses, addresses and numpy numbers."""
    if is_dataclass(obj):
        return {f.name: to_json(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_json(v) for v in obj]
    if isinstance(obj, (ipaddress.IPv4Address, ipaddress.IPv6Address,
                        ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return str(obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if hasattr(obj, "tolist"):  # numpy arrays and scalars
        return obj.tolist()
    if hasattr(obj, "__index__"):
        return int(obj)
    return str(obj)


def flatten(record: dict, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys: {"key": {"dst": x}} -> {"key.dst": x}."""
    out: dict[str, Any] = {}
    for k, v in record.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
