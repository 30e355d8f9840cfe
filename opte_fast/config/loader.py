"""The TOML config file of `opte-fast run`: `load_config` reads it, lays flag values over it
and gives a checked `Config`.

Flags override the file; the file overrides the defaults of OPTIONS (config/options.py). Ports
and forwarding tables come from the arrays of tables `[[uplink]]`, `[[guest]]`, `[[v2p]]`,
`[[v2b]]` and `[[route]]`; `docs/config-example.toml` shows every key.

Everything is checked before anything starts. A bad value raises
`ConfigError` with one line naming the file (or "command line"), the key as
written (`v2b[1].teps[0]`, `--burst`) and what is expected.
"""
from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..controlplane.bfd_settings import BfdConfig, bfd_config
from ..controlplane.state import (
    BOUNDARY_SERVICES_VNI,
    GUEST_MTU_MAX,
    GUEST_MTU_MIN,
    V2B,
    V2P,
    DesiredState,
    GuestPort,
    Nexthop,
    Route,
    Tep,
    Underlay,
)
from .options import OPTION_BY_NAME, OPTIONS, TABLES, Options
from .values import (
    NAME,
    BadValue,
    Bool,
    Int,
    Text,
    allowed_prefixes_value,
    describe,
    dns_servers_value,
    domain_value,
    gateway_value,
    ip_value,
    mac_value,
    need,
    prefix_value,
    ra_prefix_value,
    unicast_v6_value,
    vni_value,
)

COMMAND_LINE = "command line"
IFNAMSIZ = 16  # kernel interface names are at most 15 bytes


class ConfigError(ValueError):
    """One line: where (file or command line), which key, what is expected."""



@dataclass(frozen=True)
class PortSpec:
    """A DPDK port: `role` is "guest" or "uplink"; uplink names match kernel interfaces."""
    name: str
    role: str
    devargs: str


ARRAYS = {
    "uplink": {"name", "devargs"},
    "guest": {"name", "devargs", "vni", "mac", "gateway_mac", "ipv4", "ipv6", "ipv4_prefix_len", "ipv4_gateway",
              "dns_servers", "domain", "lease_time_s", "mtu_bytes", "ra_managed", "ra_other",
              "ra_router_lifetime_s", "ra_prefix", "allowed_prefixes"},
    "v2p": {"vni", "ip", "underlay", "mac"},
    "v2b": {"prefix", "teps", "vni"},
    "route": {"prefix", "nexthops"},
    "bfd_uplink": {"name", "mode", "desired_min_tx_ms", "required_min_rx_ms", "detect_multiplier", "auth",
                   "auth_key_id", "auth_key_file"},
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
    bfd: BfdConfig = BfdConfig()

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
            raise self.fail(key, f"expected a table with keys {', '.join(sorted(allowed))}, got {describe(value)}")
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
            raise self.fail(name, f"expected an array of tables written [[{name}]], got {describe(value)}")
        return [(f"{name}[{i}]", self.table(e, f"{name}[{i}]", ARRAYS[name])) for i, e in enumerate(value)]


def _unknown(what: str, name: str, allowed) -> str:
    near = difflib.get_close_matches(name, list(allowed), n=1)
    hint = f"did you mean {near[0]!r}?" if near else "expected one of " + ", ".join(sorted(allowed))
    return f"unknown {what} ({hint})"



def _port_name(name: Any, role: str) -> str:
    limit = IFNAMSIZ - 1 if role == "uplink" else 63
    what = "kernel interface name" if role == "uplink" else "port name"
    if not isinstance(name, str) or not re.fullmatch(NAME, name) or len(name) > limit:
        raise BadValue(f"expected a {what} of letters, digits, '_', '.', '-' (at most {limit}), got {describe(name)}")
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
        if name not in OPTION_BY_NAME:
            raise ValueError(f"load_config: no option named {name!r}")
        opt = OPTION_BY_NAME[name]
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
    bfd = bfd_config(options, r.array(doc, "bfd_uplink"), [p.name for p in ports if p.role == "uplink"], r.fail)
    return Config(source=source, options=options, ports=ports, guests=guests, v2p=v2p, v2b=v2b,
                  static_routes=routes, bfd=bfd)


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
        raise r.fail(OPTION_BY_NAME["underlay_addr"].where,
                     "missing (expected this sled's underlay IPv6 address, or give --underlay-addr)")
    if values["file_prefix"] is None:
        values["file_prefix"] = f"opte-fast-{os.getpid()}"
    if values["state_dir"] is None:
        values["state_dir"] = f"/var/lib/opte-fast/{values['underlay_addr']}"
    netns = values["netns"]
    if netns and values["route_source"] == "netlink" and not os.path.exists(f"/run/netns/{netns}"):
        raise r.fail(OPTION_BY_NAME["netns"].where, f"no network namespace {netns!r} (expected one listed by ip netns)")
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
        ipv4 = r.get(e, key, "ipv4", lambda v: need(v, ipaddress.IPv4Address, "an IPv4 address"))
        ipv6 = r.get(e, key, "ipv6", lambda v: need(v, ipaddress.IPv6Address, "an IPv6 address"))
        guest = GuestPort(
            port=e["name"], vni=vni, mac=mac, gateway_mac=r.get(e, key, "gateway_mac", mac_value), ipv4=ipv4, ipv6=ipv6,
            ipv4_prefix_len=r.get(e, key, "ipv4_prefix_len", lambda v: Int(1, 32).parse(v, False), 24),
            ipv4_gateway=r.get(e, key, "ipv4_gateway", lambda v: need(v, ipaddress.IPv4Address, "an IPv4 address")),
            dns_servers=r.get(e, key, "dns_servers", dns_servers_value, ()),
            domain=r.get(e, key, "domain", domain_value, ""),
            lease_time_s=r.get(e, key, "lease_time_s", lambda v: Int(60, 0xFFFFFFFF).parse(v, False), 86400),
            mtu_bytes=r.get(e, key, "mtu_bytes", lambda v: Int(GUEST_MTU_MIN, GUEST_MTU_MAX).parse(v, False), 1500),
            ra_managed=r.get(e, key, "ra_managed", lambda v: Bool().parse(v, False), True),
            ra_other=r.get(e, key, "ra_other", lambda v: Bool().parse(v, False), True),
            ra_router_lifetime_s=r.get(e, key, "ra_router_lifetime_s", lambda v: Int(0, 65535).parse(v, False), 9000),
            ra_prefix=r.get(e, key, "ra_prefix", ra_prefix_value),
            allowed_prefixes=r.get(e, key, "allowed_prefixes", allowed_prefixes_value, ()))
        _check_guest_addresses(guest, key, r)
        guests.append(guest)
    return tuple(guests)


def _check_guest_addresses(g: GuestPort, key: str, r: _Reader) -> None:
    """The guest's IPv4 subnet must hold it and its gateway; the subnet's keys need an address."""
    if g.ipv4 is None:
        for field in ("ipv4_gateway", "ipv4_prefix_len"):
            if getattr(g, field) != GuestPort.__dataclass_fields__[field].default:
                raise r.fail(f"{key}.{field}", "given without ipv4 (the address it goes with)")
        return
    subnet = ipaddress.ip_network(f"{g.ipv4}/{g.ipv4_prefix_len}", strict=False)
    gateway = g.gateway_ipv4
    if gateway is None:
        raise r.fail(f"{key}.ipv4_gateway", f"missing: {subnet} has no first address to default to")
    if gateway == g.ipv4:
        raise r.fail(f"{key}.ipv4_gateway", f"expected an address other than the guest's own ({g.ipv4})")
    if gateway not in subnet:
        raise r.fail(f"{key}.ipv4_gateway", f"expected an address inside the guest's subnet {subnet}, got {gateway}")


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
            raise r.fail(f"{key}.teps", f"expected a non-empty array of TEP IPv6 addresses, got {describe(teps)}")
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
                                            f"got {describe(hops)}")
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

