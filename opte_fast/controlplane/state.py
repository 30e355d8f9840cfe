"""The desired forwarding state: what the control plane wants the data plane to do.

Config files, route sync and the control socket all edit one `DesiredState`;
`Dataplane.commit(state)` turns it into C tables and swaps them in under RCU.
Everything here is plain, hashable data so two states can be compared and a
commit can be skipped when nothing changed.
"""
from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

IPv6Address = ipaddress.IPv6Address
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

BOUNDARY_SERVICES_VNI = 99
GENEVE_UDP_PORT = 6081


def parse_mac(text: str) -> str:
    """Normalise a MAC address to lower-case colon form; ValueError if malformed."""
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise ValueError(f"{text!r} is not a MAC address (expected six hex bytes like a8:40:25:00:00:01)")
    try:
        return ":".join(f"{int(p, 16):02x}" for p in parts)
    except ValueError:
        raise ValueError(f"{text!r} is not a MAC address (expected six hex bytes like a8:40:25:00:00:01)") from None


def mac_bytes(mac: str) -> bytes:
    """The six bytes of a MAC address in colon form (as parse_mac gives it)."""
    return bytes.fromhex(mac.replace(":", ""))


def check_vni(vni: int) -> int:
    if not isinstance(vni, int) or isinstance(vni, bool) or not 0 <= vni < (1 << 24):
        raise ValueError(f"VNI {vni!r} is out of range (0 to 16777215)")
    return vni


GUEST_MTU_MIN, GUEST_MTU_MAX = 1280, 9000  # IPv6's minimum link MTU; jumbo
GUEST_MAX_DNS = 4  # per address family
GUEST_MAX_PREFIXES = 8  # allowed extra source prefixes


@dataclass(frozen=True, order=True)
class GuestPort:
    """A guest NIC: frames from `port` carry `vni`; frames for (vni, mac) go to it.

    It may send from `mac` and from `ipv4`, `ipv6` and `allowed_prefixes` only (anything else is
    dropped as spoofed). Its gateway hands those addresses out by DHCPv4, DHCPv6 and router
    advertisements, with the subnet, gateway, DNS servers, domain, lease and MTU below."""
    port: str
    vni: int
    mac: str
    gateway_mac: str
    ipv4: ipaddress.IPv4Address | None = None
    ipv6: ipaddress.IPv6Address | None = None
    ipv4_prefix_len: int = 24
    ipv4_gateway: ipaddress.IPv4Address | None = None  # None: the first address of the subnet
    dns_servers: tuple[IPAddress, ...] = ()
    domain: str = ""
    lease_time_s: int = 86400
    mtu_bytes: int = 1500
    ra_managed: bool = True  # M: addresses by DHCPv6
    ra_other: bool = True  # O: DNS and domain by DHCPv6
    ra_router_lifetime_s: int = 9000
    ra_prefix: ipaddress.IPv6Network | None = None  # advertised for autoconfiguration
    allowed_prefixes: tuple[IPNetwork, ...] = ()

    @property
    def gateway_ipv4(self) -> ipaddress.IPv4Address | None:
        """The guest's IPv4 router and DHCP server: ipv4_gateway, or the first address of the subnet."""
        if self.ipv4 is None or self.ipv4_gateway is not None:
            return self.ipv4_gateway
        subnet = ipaddress.ip_network(f"{self.ipv4}/{self.ipv4_prefix_len}", strict=False)
        return subnet.network_address + 1 if subnet.num_addresses > 2 else None


@dataclass(frozen=True, order=True)
class V2P:
    """A guest on another sled: (vni, ip) lives behind sled `underlay`, with MAC `mac`."""
    vni: int
    ip: IPAddress
    underlay: IPv6Address
    mac: str


@dataclass(frozen=True, order=True)
class Tep:
    """A boundary-services tunnel endpoint."""
    addr: IPv6Address
    vni: int = BOUNDARY_SERVICES_VNI
    up: bool = True


@dataclass(frozen=True, order=True)
class V2B:
    """Inner destinations under `prefix` leave the VPC through one of `teps`."""
    prefix: IPNetwork
    teps: tuple[Tep, ...]


@dataclass(frozen=True, order=True)
class Nexthop:
    """One underlay path: out `uplink` to the switch at `gateway` (link-local) with MAC `mac`."""
    uplink: str
    gateway: IPv6Address
    mac: str
    up: bool = True


@dataclass(frozen=True, order=True)
class Route:
    """An underlay route: `prefix` is reached through any of `nexthops` (ECMP)."""
    prefix: ipaddress.IPv6Network
    nexthops: tuple[Nexthop, ...]


@dataclass(frozen=True)
class Underlay:
    """This sled's side of the tunnel. The outer header's knobs (hop limit, flow label, source
    ports, checksum) are fixed when the data plane starts: see DataplaneOptions."""
    addr: IPv6Address


@dataclass(frozen=True)
class DesiredState:
    underlay: Underlay
    guests: tuple[GuestPort, ...] = ()
    v2p: tuple[V2P, ...] = ()
    v2b: tuple[V2B, ...] = ()
    routes: tuple[Route, ...] = ()

    def replace(self, **changes) -> DesiredState:
        return dataclasses.replace(self, **changes)

    def underlay_destinations(self) -> frozenset[IPv6Address]:
        """Every address the data plane sends to: each TEP, up or down, and each V2P sled."""
        return frozenset([t.addr for e in self.v2b for t in e.teps] + [e.underlay for e in self.v2p])

    def with_nexthops_down(self, down: Callable[[Nexthop], bool]) -> DesiredState:
        """Every nexthop of every route for which `down(nexthop)` holds marked down."""
        return self.replace(routes=tuple(
            Route(r.prefix, tuple(dataclasses.replace(n, up=False) if n.up and down(n) else n for n in r.nexthops))
            for r in self.routes))

    def with_tep_state(self, addr: IPv6Address, up: bool) -> DesiredState:
        """Every TEP with address `addr`, in every V2B entry, marked up or down."""
        v2b = tuple(
            V2B(e.prefix, tuple(dataclasses.replace(t, up=up) if t.addr == addr else t for t in e.teps))
            for e in self.v2b
        )
        return self.replace(v2b=v2b)


class StableIds:
    """Small integer ids for keys that stay the same while a key stays present.

    Flow entries in the data plane remember a TEP or nexthop by id (plus a
    generation), so an id must not jump to another key while flows may still
    hold it. New keys take the lowest free ids in sorted order, so a restart
    with the same routes gives every member the same id, hence the same
    buckets, hence the same path for every flow.
    """

    def __init__(self, first: int, limit: int):
        self._first = first
        self._limit = limit
        self._ids: dict = {}

    def propose(self, keys: Iterable) -> dict:
        """The ids `assign` would give `keys`, without keeping them; ValueError if they do not fit.

        A data plane proposes, commits its tables, and `keep`s the ids only once
        the commit went in, so a refused commit leaves every id where it was.
        """
        keys = set(keys)
        ids = {k: i for k, i in self._ids.items() if k in keys}
        new_keys = sorted(keys - ids.keys(), key=repr)
        used = set(ids.values())
        free = [i for i in range(self._first, self._limit) if i not in used][:len(new_keys)]
        if len(free) < len(new_keys):
            raise ValueError(f"{len(keys)} distinct entries, more than the {self._limit - self._first} "
                             f"this table holds")
        ids.update(zip(new_keys, free))
        return ids

    def keep(self, ids: dict) -> None:
        """Make `ids`, as `propose` returned them, the current assignment."""
        self._ids = dict(ids)

    def assign(self, keys: Iterable) -> dict:
        """Ids for `keys`, kept; on ValueError nothing changes."""
        ids = self.propose(keys)
        self.keep(ids)
        return dict(ids)


class DataplaneAPI(Protocol):
    """What the control plane needs from a running data plane."""

    def commit(self, state: DesiredState) -> None:
        """Install `state`; returns once no worker can still use the previous tables."""

    drop_counters: frozenset[str] | set[str]  # the counters that are drop reasons

    def counters(self) -> dict[str, int]:
        """Every named counter, summed over worker lcores."""

    def ports(self) -> list[dict]:
        """One dict per port: name, ethdev, port_id, role, mac, rx/tx packets and bytes, missed, errors,
        devargs."""

    def flows(self, limit: int, keep: Callable[[dict], bool] | None = None) -> list[dict]:
        """Up to `limit` active flows (those `keep` accepts), flat: vni, proto, src, dst, src_port,
        dst_port, tep, nexthop ({uplink, gateway}), uplink, udp_sport, hash, lcore, packets, bytes,
        idle_ms. The tables are read a chunk at a time without the GIL."""

    def memory(self) -> dict:
        """EAL memory by part ("bytes", measured as allocated) and what it holds ("capacity": flows
        per worker, V2B and route prefixes, V2P entries a commit can hold with what is free)."""

    def workers(self) -> list[dict]:
        """Per worker lcore: lcore, worker, polls, busy_polls (polls that found frames), rx_packets, flows,
        flow_capacity."""

    def paths(self) -> dict:
        """{"teps": [...], "nexthops": [...]}: id, prefix, address (or uplink, gateway, mac), up,
        flows pinned, packets, bytes."""

    def buckets(self) -> list[dict]:
        """Per TEP set (kind "tep") and nexthop group (kind "nexthop"): prefix, buckets, and the
        members holding buckets, each with id, member and its bucket count."""

    def trace_start(self, dst: IPAddress | None = None, proto: int = 0, dst_port: int = 0, count: int = 1, *,
                    src: IPAddress | None = None, direction: str = "any") -> None:
        """Trace the decision for the next `count` frames of direction "out", "in" or "any" whose inner
        headers match (src, dst None and proto, dst_port 0: any)."""

    def trace_records(self) -> tuple[list[dict], bool]:
        """(the decisions traced since the last call, whether frames remain to be traced)."""

    def trace_stop(self) -> None:
        """End the trace."""


