"""Value kinds: each parses a TOML value (or a flag's text) into a Python value, or raises
BadValue saying what it expected. The option table, the config file and the control
protocol's arguments all check their values with these."""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..controlplane.state import GUEST_MAX_DNS, GUEST_MAX_PREFIXES, parse_mac

NAME = r"[A-Za-z0-9][A-Za-z0-9_.:-]*"


class BadValue(ValueError):
    """A value is wrong; the message says what is expected, the caller says where."""


def describe(value: Any) -> str:
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
            raise BadValue(f"expected {self.expected}, got {describe(value)}")
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
            raise BadValue(f"expected {self.expected}, got {describe(value)}")
        if not self.lo <= value <= self.hi:
            raise BadValue(f"expected {self.expected}, got {value:g}")
        return float(value)


@dataclass(frozen=True)
class Bool:
    expected = "true or false"

    def parse(self, value: Any, text: bool) -> bool:
        if not isinstance(value, bool):
            raise BadValue(f"expected {self.expected}, got {describe(value)}")
        return value


@dataclass(frozen=True)
class Choice:
    choices: tuple[str, ...]

    @property
    def expected(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)

    def parse(self, value: Any, text: bool) -> str:
        if value not in self.choices or not isinstance(value, str):
            raise BadValue(f"expected {self.expected}, got {describe(value)}")
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
            raise BadValue(f"expected {self.what}, got {describe(value)}")
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
            raise BadValue(f"expected {self.expected}, got {describe(value)}") from None
        if port > 65535 or (addr.version == 6) != bool(m.group(1)):
            raise BadValue(f"expected {self.expected}, got {describe(value)}")
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
            raise BadValue(f"expected {self.expected}, got {describe(value)}")
        return tuple(value)


@dataclass(frozen=True)
class UnicastV6:
    expected = "a unicast IPv6 address like fd00:1::1"

    def parse(self, value: Any, text: bool) -> ipaddress.IPv6Address:
        return ipv6_value(value, self.expected, link_local=False)


@dataclass(frozen=True)
class PortRange:
    expected = "a UDP port range LOW-HIGH within 1-65535, like 49152-65535"

    def parse(self, value: Any, text: bool) -> tuple[int, int]:
        m = re.fullmatch(r"(\d+)-(\d+)", value) if isinstance(value, str) else None
        if not m or not 1 <= int(m[1]) <= int(m[2]) <= 65535:
            raise BadValue(f"expected {self.expected}, got {describe(value)}")
        return int(m[1]), int(m[2])


def ipv6_value(value: Any, expected: str, link_local: bool) -> ipaddress.IPv6Address:
    try:
        addr = ipaddress.IPv6Address(value) if isinstance(value, str) else None
    except ValueError:
        addr = None
    if addr is None or addr.is_multicast or addr.is_unspecified or addr.is_loopback \
            or (addr.is_link_local and not link_local):
        raise BadValue(f"expected {expected}, got {describe(value)}")
    return addr


def need(value: Any, parse: Callable[[str], Any], expected: str) -> Any:
    if not isinstance(value, str):
        raise BadValue(f"expected {expected}, got {describe(value)}")
    try:
        return parse(value)
    except ValueError:
        raise BadValue(f"expected {expected}, got {describe(value)}") from None


def vni_value(value: Any) -> int:
    return Int(0, (1 << 24) - 1).parse(value, False)


def mac_value(value: Any) -> str:
    mac = need(value, parse_mac, "a MAC address like a8:40:25:00:00:01")
    if int(mac[:2], 16) & 1:
        raise BadValue(f"expected a unicast MAC address (first byte even), got {value!r}")
    return mac


def prefix_value(value: Any, v6_only: bool = False) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    expected = "an IPv6 prefix like fd00:99::/64" if v6_only else "an IP prefix like 0.0.0.0/0 or fd00::/16"
    net = need(value, lambda s: ipaddress.ip_network(s, strict=False), expected)
    if v6_only and net.version != 6:
        raise BadValue(f"expected {expected}, got {value!r}")
    if net.network_address != ipaddress.ip_interface(value).ip:
        raise BadValue(f"expected {expected} with no host bits set ({net}), got {value!r}")
    return net


def ip_value(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return need(value, ipaddress.ip_address, "an IPv4 or IPv6 address")


def gateway_value(value: Any) -> ipaddress.IPv6Address:
    return ipv6_value(value, "an IPv6 gateway address like fe80::1", link_local=True)


def unicast_v6_value(value: Any) -> ipaddress.IPv6Address:
    return UnicastV6().parse(value, False)



def dns_servers_value(value: Any) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]:
    if not isinstance(value, list):
        raise BadValue(f"expected an array of IP addresses, got {describe(value)}")
    servers = tuple(ip_value(v) for v in value)
    for version in (4, 6):
        n = sum(a.version == version for a in servers)
        if n > GUEST_MAX_DNS:
            raise BadValue(f"expected at most {GUEST_MAX_DNS} IPv{version} DNS servers, got {n}")
    return servers


def domain_value(value: Any) -> str:
    label = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
    if not isinstance(value, str) or len(value) > 253 or not re.fullmatch(rf"{label}(\.{label})*", value):
        raise BadValue(f"expected a domain name like vpc.example (labels of letters, digits and '-', at most 253 "
                       f"bytes), got {describe(value)}")
    return value


def ra_prefix_value(value: Any) -> ipaddress.IPv6Network:
    net = prefix_value(value, v6_only=True)
    if net.prefixlen != 64:
        raise BadValue(f"expected a /64 (autoconfiguration needs 64-bit interface identifiers), got {value!r}")
    return net


def allowed_prefixes_value(value: Any) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    if not isinstance(value, list):
        raise BadValue(f"expected an array of IP prefixes, got {describe(value)}")
    if len(value) > GUEST_MAX_PREFIXES:
        raise BadValue(f"expected at most {GUEST_MAX_PREFIXES} prefixes, got {len(value)}")
    return tuple(prefix_value(v) for v in value)
