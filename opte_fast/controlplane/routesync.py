"""Underlay routes from the host routing table (rtnetlink), or from the config.

`NetlinkRouteSync` follows the kernel's IPv6 main table, optionally inside a
named network namespace: routes whose nexthops leave through an uplink (by
interface name), single-path, multipath (RTA_MULTIPATH) and nexthop objects
(RTA_NH_ID → nexthop, NHA_GROUP members, resilient groups included), with each
gateway's MAC taken from the neighbour table. A nexthop is up when its link
is up with carrier and its neighbour entry holds a MAC in a usable state (not
FAILED or INCOMPLETE, and present at all). The kernel's RTNH_F_DEAD and
RTNH_F_LINKDOWN flags on a path only mirror its link's state, and are not
used: they are cleared by a walk over the table after the link event, with
no event of their own, so a re-read can catch them stale and keep a path
that came back marked down. It subscribes to link, neighbour, IPv6 route and nexthop
events and treats each as "re-read that kind of state", never applying an
event as a delta: on this kernel, withdrawing one path of a multipath route
names only the removed path, `ip nexthop del` emits no route event, and
carrier loss emits only a link event while the nexthop objects on the device
vanish silently. After a re-read that changed anything it calls
`on_change()`, and the controller asks `routes_for` for the host's route to
each address the data plane sends to (each TEP and V2P sled), a
longest-prefix match worked out here from the whole table. The data plane
holds only those few routes, whatever the size of the host's table.

Why raw AF_NETLINK with `struct` rather than pyroute2: pyroute2 (0.9) does
not decode nexthop objects (RTM_NEWNEXTHOP, NHA_GROUP), which routing daemons
such as FRR install by default, and its sockets only work from the thread that
created them, which fights a background sync thread entered into a network
namespace. The subset needed here (four dumps, four event groups, fixed
headers and flat attributes) is a few hundred lines of the standard library,
adds no dependency, and the kernel's dump costs more than the decoding.

Namespaces: the sockets are created by a short-lived thread that has entered
/run/netns/NAME with setns(2) (through ctypes: `os.setns` only exists from
Python 3.12); a netlink socket stays bound to the namespace it was created
in, so any thread may then use it and the process itself never moves.

Cost: a re-read compares the dump's raw messages with the last dump's as
sets, decodes only new ones, and changes the route index only where they
differ; answering the controller costs one dict lookup per address and
prefix length. An event that changes routes is then bounded by the dump of
the table: about 1.7 µs a route on a 2-vCPU VM, roughly half of it the
kernel's. Figures for 1,000 to 100,000 routes are in the README
(`python3 -m opte_fast.tools.bench_routesync`).
"""
from __future__ import annotations

import collections
import ctypes
import errno
import ipaddress
import logging
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol, TextIO

from . import events
from .controller import Controller
from .pollthread import PollThread
from .state import Nexthop, Route

RoutesCallback = Callable[[tuple[Route, ...]], object]

# rtnetlink message types, groups and attributes (linux/rtnetlink.h, linux/nexthop.h)
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_DUMP_INTR, NLM_F_DUMP = 0x1, 0x2, 0x10, 0x300
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTM_NEWNEIGH, RTM_DELNEIGH, RTM_GETNEIGH = 28, 29, 30
RTM_NEWNEXTHOP, RTM_DELNEXTHOP, RTM_GETNEXTHOP = 104, 105, 106
RTNLGRP_LINK, RTNLGRP_NEIGH, RTNLGRP_IPV6_ROUTE, RTNLGRP_NEXTHOP = 1, 3, 11, 32
SOL_NETLINK, NETLINK_ADD_MEMBERSHIP = 270, 1
IFLA_IFNAME = 3
IFF_UP, IFF_LOWER_UP = 0x1, 0x10000
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_MULTIPATH, RTA_TABLE, RTA_VIA, RTA_NH_ID = 1, 4, 5, 6, 9, 15, 18, 30
RT_TABLE_MAIN, RTN_UNICAST, RTM_F_CLONED = 254, 1, 0x200
NDA_DST, NDA_LLADDR = 1, 2
NUD_INCOMPLETE, NUD_FAILED = 0x01, 0x20
NHA_ID, NHA_GROUP, NHA_BLACKHOLE, NHA_OIF, NHA_GATEWAY = 1, 2, 4, 5, 6
CLONE_NEWNET = 0x40000000

NO_MAC = "00:00:00:00:00:00"

# What to re-read after an event of each type: a link change can flush nexthop
# objects and routes on the device without events of their own.
LINKS, NEIGHBOURS, NEXTHOPS, ROUTES = "links", "neighbours", "nexthops", "routes"
EVERYTHING = frozenset((LINKS, NEIGHBOURS, NEXTHOPS, ROUTES))
REREAD = {
    RTM_NEWLINK: {LINKS, NEXTHOPS, ROUTES}, RTM_DELLINK: {LINKS, NEXTHOPS, ROUTES},
    RTM_NEWNEIGH: {NEIGHBOURS}, RTM_DELNEIGH: {NEIGHBOURS},
    RTM_NEWNEXTHOP: {NEXTHOPS, ROUTES}, RTM_DELNEXTHOP: {NEXTHOPS, ROUTES},
    RTM_NEWROUTE: {ROUTES}, RTM_DELROUTE: {ROUTES},
}


class RouteSyncError(RuntimeError):
    """Route sync could not start (no namespace, no netlink)."""


class RouteSource(Protocol):
    """Where the controller's routes come from; `start` delivers the first set."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def stats(self) -> dict: ...


# --- the kernel's tables, decoded --------------------------------------------------------


@dataclass(frozen=True)
class Link:
    name: str
    up: bool


@dataclass(frozen=True)
class Neighbour:
    mac: str | None
    state: int

    @property
    def usable(self) -> bool:
        return self.mac is not None and self.state != 0 and not self.state & (NUD_INCOMPLETE | NUD_FAILED)


class Path(NamedTuple):
    """One way out: interface index, gateway's 16 bytes (None when on-link).

    Plain ints and bytes, so the per-route work of a re-read hashes in C.
    """
    ifindex: int
    gateway: bytes | None


@dataclass(frozen=True)
class NexthopObject:
    """An `ip nexthop` object: a single path, or a group of other objects' ids."""
    path: Path | None
    group: tuple[int, ...]


@dataclass(frozen=True)
class KernelRoute:
    metric: int
    nh_id: int | None
    paths: tuple[Path, ...]
    key: tuple[bytes, int]  # (destination bytes, length): the prefix, cheap to hash and sort

    @property
    def prefix(self) -> ipaddress.IPv6Network:
        return ipaddress.IPv6Network(self.key)


class RouteIndex:
    """The kernel's routes by prefix, for longest-prefix matches of a few addresses.

    A match costs one dict lookup per prefix length present in the table
    (a handful in practice), whatever the number of routes.
    """

    def __init__(self, routes: Iterable[KernelRoute] = ()):
        self._by_prefix: dict[tuple[bytes, int], list[KernelRoute]] = {}
        self._lengths: collections.Counter[int] = collections.Counter()
        self._longest_first: list[int] = []
        self._count = 0  # read by other threads: one int, never a walk over the tables
        for route in routes:
            self.add(route)

    def __len__(self) -> int:
        return self._count

    def add(self, route: KernelRoute) -> None:
        same = self._by_prefix.setdefault(route.key, [])
        same.append(route)
        same.sort(key=lambda r: r.metric)
        self._count += 1
        self._lengths[route.key[1]] += 1
        if self._lengths[route.key[1]] == 1:
            self._longest_first = sorted(self._lengths, reverse=True)

    def remove(self, route: KernelRoute) -> None:
        same = self._by_prefix[route.key]
        same.remove(route)
        if not same:
            del self._by_prefix[route.key]
        self._count -= 1
        self._lengths[route.key[1]] -= 1
        if not self._lengths[route.key[1]]:
            del self._lengths[route.key[1]]
            self._longest_first = sorted(self._lengths, reverse=True)

    def exact(self, key: tuple[bytes, int]) -> list[KernelRoute]:
        """The routes of prefix `key` (network bytes, length), lowest metric first."""
        return self._by_prefix.get(key, [])

    def covering(self, address: ipaddress.IPv6Address) -> Iterator[list[KernelRoute]]:
        """The routes of every prefix that holds `address`, longest prefix first, each lowest metric first."""
        value = int(address)
        for length in self._longest_first:
            host_bits = 128 - length
            routes = self._by_prefix.get((((value >> host_bits) << host_bits).to_bytes(16, "big"), length))
            if routes:
                yield routes


@dataclass
class KernelTables:
    links: dict[int, Link]
    neighbours: dict[tuple[int, bytes], Neighbour]
    nexthops: dict[int, NexthopObject]
    routes: RouteIndex


@dataclass
class RouteMemo:
    """What routes_for worked out, reusable while links, neighbours and nexthop objects stay the same."""
    hops: dict[tuple[Path, ...], tuple[Nexthop, ...]] = field(default_factory=dict)
    routes: dict[tuple[tuple[bytes, int], tuple[Path, ...]], Route | None] = field(default_factory=dict)

    def clear(self) -> None:
        self.hops.clear()
        self.routes.clear()


def routes_for(tables: KernelTables, uplinks: Iterable[str], addresses: Iterable[ipaddress.IPv6Address],
               memo: RouteMemo | None = None) -> tuple[Route, ...]:
    """The routes the data plane needs to send to `addresses`: the host's answer for each.

    A route is usable when it has a nexthop out an uplink via a gateway (up or
    down). For each address the longest usable prefix that holds it wins, and
    within a prefix the lowest metric; that is the route the data plane would
    have matched had it been given every usable route. Routes come out once
    each, sorted, so equal answers give equal tuples. With a `memo` kept
    across calls, unchanged routes come back as the same objects.
    """
    uplinks = set(uplinks)
    memo = memo if memo is not None else RouteMemo()
    chosen: dict[tuple[bytes, int], Route] = {}
    for address in set(addresses):
        for same_prefix in tables.routes.covering(address):
            route = next((r for r in (_route(tables, kr, uplinks, memo) for kr in same_prefix) if r), None)
            if route is not None:
                chosen[same_prefix[0].key] = route
                break
    return tuple(chosen[k] for k in sorted(chosen))


def _route(tables: KernelTables, kr: KernelRoute, uplinks: set[str], memo: RouteMemo) -> Route | None:
    """`kr` as the data plane takes it, or None when no nexthop leaves through an uplink."""
    paths = kr.paths
    if kr.nh_id is not None and kr.nh_id in tables.nexthops:
        paths = _expand(tables.nexthops, kr.nh_id)
    route = memo.routes.get((kr.key, paths), False)
    if route is False:
        hops = memo.hops.get(paths)  # routes share a few path sets
        if hops is None:
            hops = memo.hops[paths] = _nexthops(tables, paths, uplinks)
        route = memo.routes[kr.key, paths] = Route(kr.prefix, hops) if hops else None
    return route


def _nexthops(tables: KernelTables, paths: tuple[Path, ...], uplinks: set[str]) -> tuple[Nexthop, ...]:
    hops = set()
    for p in paths:
        link = tables.links.get(p.ifindex)
        if link is None or link.name not in uplinks or p.gateway is None:
            continue
        neigh = tables.neighbours.get((p.ifindex, p.gateway))
        up = link.up and neigh is not None and neigh.usable
        hops.add(Nexthop(uplink=link.name, gateway=ipaddress.IPv6Address(p.gateway),
                         mac=(neigh and neigh.mac) or NO_MAC, up=up))
    return tuple(sorted(hops))


def _expand(objects: dict[int, NexthopObject], nh_id: int) -> tuple[Path, ...]:
    obj = objects[nh_id]
    if obj.path is not None:
        return (obj.path,)
    return tuple(objects[m].path for m in obj.group if m in objects and objects[m].path is not None)


# --- rtnetlink ---------------------------------------------------------------------------


def _attrs(buf: bytes, off: int, end: int) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    while off + 4 <= end:
        length, kind = struct.unpack_from("HH", buf, off)
        if length < 4:
            break
        out[kind & 0x3FFF] = buf[off + 4:off + length]
        off += (length + 3) & ~3
    return out


def _u32(attrs: dict[int, bytes], kind: int) -> int | None:
    return struct.unpack("I", attrs[kind][:4])[0] if kind in attrs else None


def _gateway(attrs: dict[int, bytes], gw_kind: int) -> bytes | None:
    if len(attrs.get(gw_kind, b"")) == 16:
        return attrs[gw_kind]
    via = attrs.get(RTA_VIA, b"")
    if gw_kind == RTA_GATEWAY and len(via) == 18 and struct.unpack_from("H", via)[0] == socket.AF_INET6:
        return via[2:]
    return None


def parse_link(msg: bytes) -> tuple[int, Link] | None:
    _family, _type, index, flags, _change = struct.unpack_from("BxHiII", msg)
    name = _attrs(msg, 16, len(msg)).get(IFLA_IFNAME, b"").rstrip(b"\0").decode(errors="replace")
    return index, Link(name, bool(flags & IFF_UP and flags & IFF_LOWER_UP))


def parse_neighbour(msg: bytes) -> tuple[tuple[int, bytes], Neighbour] | None:
    family, ifindex, state, _flags, _type = struct.unpack_from("BxxxiHBB", msg)
    attrs = _attrs(msg, 12, len(msg))
    if family != socket.AF_INET6 or len(attrs.get(NDA_DST, b"")) != 16:
        return None
    lladdr = attrs.get(NDA_LLADDR)
    mac = ":".join(f"{b:02x}" for b in lladdr) if lladdr and len(lladdr) == 6 else None
    return (ifindex, attrs[NDA_DST]), Neighbour(mac, state)


def parse_nexthop(msg: bytes) -> tuple[int, NexthopObject] | None:
    attrs = _attrs(msg, 8, len(msg))
    nh_id = _u32(attrs, NHA_ID)
    if nh_id is None:
        return None
    if NHA_GROUP in attrs:
        raw = attrs[NHA_GROUP]
        members = tuple(struct.unpack_from("I", raw, i)[0] for i in range(0, len(raw) - 7, 8))
        return nh_id, NexthopObject(None, members)
    if NHA_BLACKHOLE in attrs or NHA_OIF not in attrs:
        return nh_id, NexthopObject(None, ())
    return nh_id, NexthopObject(Path(_u32(attrs, NHA_OIF), _gateway(attrs, NHA_GATEWAY)), ())


def parse_route(msg: bytes) -> KernelRoute | None:
    family, dst_len, src_len, _tos, table, _proto, _scope, rtype, flags = struct.unpack_from("BBBBBBBBI", msg)
    attrs = _attrs(msg, 12, len(msg))
    table = _u32(attrs, RTA_TABLE) or table
    if family != socket.AF_INET6 or table != RT_TABLE_MAIN or rtype != RTN_UNICAST \
            or flags & RTM_F_CLONED or src_len:
        return None
    dst = attrs.get(RTA_DST, bytes(16))
    paths = []
    if RTA_MULTIPATH in attrs:
        mp = attrs[RTA_MULTIPATH]
        i = 0
        while i + 8 <= len(mp):
            length, _flags, _hops, ifindex = struct.unpack_from("HBBi", mp, i)
            if length < 8:
                break
            paths.append(Path(ifindex, _gateway(_attrs(mp, i + 8, i + length), RTA_GATEWAY)))
            i += (length + 3) & ~3
    elif RTA_OIF in attrs:
        paths.append(Path(_u32(attrs, RTA_OIF), _gateway(attrs, RTA_GATEWAY)))
    return KernelRoute(_u32(attrs, RTA_PRIORITY) or 0, _u32(attrs, RTA_NH_ID), tuple(paths), (dst, dst_len))


DUMPS = {  # kind: (request type, family header, parser)
    LINKS: (RTM_GETLINK, struct.pack("BxHiII", socket.AF_UNSPEC, 0, 0, 0, 0), parse_link),
    NEIGHBOURS: (RTM_GETNEIGH, struct.pack("BxxxiHBB", socket.AF_INET6, 0, 0, 0, 0), parse_neighbour),
    NEXTHOPS: (RTM_GETNEXTHOP, struct.pack("BBBxI", socket.AF_UNSPEC, 0, 0, 0), parse_nexthop),
    ROUTES: (RTM_GETROUTE, struct.pack("BBBBBBBBI", socket.AF_INET6, 0, 0, 0, 0, 0, 0, 0, 0), parse_route),
}
EVENT_GROUPS = (RTNLGRP_LINK, RTNLGRP_NEIGH, RTNLGRP_IPV6_ROUTE, RTNLGRP_NEXTHOP)


_NLMSG_HEADER = struct.Struct("IHH")  # length, type, flags of a netlink message


def _messages(data: bytes) -> Iterator[tuple[int, int, int, int]]:
    """(type, flags, payload offset, end) of each netlink message in a datagram."""
    off = 0
    while off + 16 <= len(data):
        length, kind, flags, _seq, _pid = struct.unpack_from("IHHII", data, off)
        if length < 16:
            return
        yield kind, flags, off + 16, off + length
        off += (length + 3) & ~3


class Netlink:
    """A dump socket and an event socket for NETLINK_ROUTE, in one network namespace."""

    RCVBUF = 8 << 20

    def __init__(self, netns: str | None):
        self.dump_sock, self.event_sock = in_netns(netns, self._open)
        self._seq = 0

    def _open(self) -> tuple[socket.socket, socket.socket]:
        dump = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        dump.bind((0, 0))
        events = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        events.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.RCVBUF)
        events.bind((0, 0))
        for group in EVENT_GROUPS:
            events.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)
        events.setblocking(False)
        return dump, events

    def close(self) -> None:
        self.dump_sock.close()
        self.event_sock.close()

    def dump(self, kind: str) -> list[bytes]:
        """Every object of `kind`, undecoded; retried when the kernel says the dump was interrupted."""
        request, header, _parse = DUMPS[kind]
        while True:
            self._seq += 1
            msg = struct.pack("IHHII", 16 + len(header), request, NLM_F_REQUEST | NLM_F_DUMP, self._seq, 0) + header
            self.dump_sock.send(msg)
            out: list[bytes] = []
            append, header_of = out.append, _NLMSG_HEADER.unpack_from
            flag_union, done = 0, False
            while not done:
                data = self.dump_sock.recv(1 << 18)
                # the loop runs once per route of the host table: kept to the bare minimum
                off, size = 0, len(data)
                while off + 16 <= size:
                    length, mtype, flags = header_of(data, off)
                    if length < 16:
                        break
                    flag_union |= flags
                    if mtype == NLMSG_DONE:
                        done = True
                    elif mtype == NLMSG_ERROR:
                        code = -struct.unpack_from("i", data, off + 16)[0]
                        if kind == NEXTHOPS and code in (errno.EOPNOTSUPP, errno.EINVAL):
                            return []  # a kernel without nexthop objects
                        raise OSError(code, f"rtnetlink dump of {kind}: {os.strerror(code)}")
                    else:
                        append(data[off + 16:off + length])
                    off += (length + 3) & ~3
            if not flag_union & NLM_F_DUMP_INTR:
                return out

    def drain_events(self) -> set[str]:
        """Read every queued event; the kinds of state to re-read (all, if events were lost)."""
        kinds: set[str] = set()
        while True:
            try:
                data = self.event_sock.recv(1 << 18)
            except BlockingIOError:
                return kinds
            except OSError as e:
                if e.errno != errno.ENOBUFS:
                    raise
                kinds |= EVERYTHING
                continue
            for mtype, _flags, _off, _end in _messages(data):
                kinds |= REREAD.get(mtype, set())


def in_netns(netns: str | None, fn: Callable[[], object]):
    """Run `fn` in a thread entered into network namespace `netns` (None: here)."""
    if not netns:
        return fn()
    path = f"/run/netns/{netns}"
    box: dict[str, object] = {}

    def run() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            box["error"] = RouteSyncError(f"no network namespace {netns!r} ({path}: {e.strerror})")
            return
        try:
            if _setns(fd) != 0:
                err = ctypes.get_errno()
                raise RouteSyncError(f"cannot enter network namespace {netns!r}: {os.strerror(err)}")
            box["value"] = fn()
        except BaseException as e:  # handed to the caller's thread
            box["error"] = e
        finally:
            os.close(fd)

    thread = threading.Thread(target=run, name=f"netns-{netns}")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]


def _setns(fd: int) -> int:
    """setns(fd, CLONE_NEWNET) for the calling thread: 0, or -1 with ctypes' errno set."""
    return ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET)


# --- the sources -------------------------------------------------------------------------


class CommitRetry:
    """When to try a refused change again, and what has been said about it.

    The delay doubles from FIRST_S up to MAX_S while attempts fail. A cause
    (the refusal's text) is logged the first time it is seen, not on every
    attempt, and the recovery once. `subject` names what is retried in the log
    lines ("route sync: routes"); they go to `log` (None: stderr).
    """

    FIRST_S, MAX_S = 0.05, 5.0

    def __init__(self, subject: str = "route sync: routes", log: TextIO | None = None) -> None:
        self.subject = subject
        self._log = log
        self.due: float | None = None  # time.monotonic() of the next attempt; None: nothing pending
        self._delay_s = 0.0
        self._failures = 0
        self._logged: set[str] = set()

    def wait_ms(self) -> int:
        """How long to wait for an event before trying again (-1: no retry pending)."""
        if self.due is None:
            return -1
        return max(0, int((self.due - time.monotonic()) * 1000) + 1)

    def is_due(self) -> bool:
        return self.due is not None and time.monotonic() >= self.due

    def failed(self, error: Exception) -> None:
        self._failures += 1
        self._delay_s = min(self.MAX_S, max(self.FIRST_S, 2 * self._delay_s))
        self.due = time.monotonic() + self._delay_s
        cause = str(error)
        if cause not in self._logged:
            self._logged.add(cause)
            withdrawn = " (the withdrawn paths were taken out alone)" if getattr(
                error, "withdrawals_applied", False) else ""
            events.say(self._log, "retry_scheduled", f"{self.subject} not applied: {cause}{withdrawn}; trying again, "
                       f"at least every {self.MAX_S:g} s", logging.WARNING, subject=self.subject, cause=cause)

    def succeeded(self) -> None:
        if self.due is not None:
            events.say(self._log, "retry_succeeded", f"{self.subject} applied after {self._failures} refused commits",
                       subject=self.subject, refused=self._failures)
        self.due, self._delay_s, self._failures = None, 0.0, 0
        self._logged.clear()


class NetlinkRouteSync:
    """Follows the host routing table and answers `routes_for(addresses)` from it.

    `start()` reads everything and calls `on_change()` before it returns, then
    a thread waits for events and calls `on_change()` after every re-read that
    changed the tables. `on_change` (the controller) asks `routes_for` for the
    addresses it sends to and commits them; it returns whether it committed,
    and raises when the data plane refused, in which case it is called again
    with backoff until it succeeds (see CommitRetry). `latencies_us` holds the
    delay from receiving an event to the end of the commit, for recent commits.
    """

    def __init__(self, uplinks: Iterable[str], on_change: Callable[[], bool], netns: str | None = None):
        self.uplinks = frozenset(uplinks)
        self.on_change = on_change
        self.netns = netns
        self.latencies_us: collections.deque[float] = collections.deque(maxlen=1024)
        self._counts = dict.fromkeys(("events", "reads", "commits", "commit_failures", "errors"), 0)
        self._retry = CommitRetry()
        self._nl: Netlink | None = None
        self._lock = threading.Lock()  # the tables and memo: written here, read by routes_for
        self._tables = KernelTables({}, {}, {}, RouteIndex())
        self._decoded: dict[str, dict[bytes, object]] = {}  # raw message -> decoded, per kind
        self._route_raws: set[bytes] = set()  # the last route dump's messages
        self._memo = RouteMemo()
        self._poll = PollThread("route-sync", self._run)

    def start(self) -> None:
        try:
            self._nl = Netlink(self.netns)
        except OSError as e:
            raise RouteSyncError(f"cannot open rtnetlink: {e.strerror or e}") from None
        t0 = time.monotonic_ns()
        self._reread(EVERYTHING)
        self._deliver(t0)
        self._poll.start()

    def stop(self) -> None:
        self._poll.stop()
        if self._nl is not None:
            self._nl.close()
            self._nl = None

    def routes_for(self, addresses: Iterable[ipaddress.IPv6Address]) -> tuple[Route, ...]:
        """The host's route to each of `addresses` (see the module function routes_for)."""
        with self._lock:
            if len(self._memo.routes) > 4096:
                self._memo.clear()  # mostly answers to addresses no longer asked about
            return routes_for(self._tables, self.uplinks, addresses, self._memo)

    def route(self, prefix: ipaddress.IPv6Network) -> Route | None:
        """The host's usable route for exactly `prefix` (lowest metric), or None."""
        with self._lock:
            same_prefix = self._tables.routes.exact((prefix.network_address.packed, prefix.prefixlen))
            return next((r for r in (_route(self._tables, kr, self.uplinks, self._memo) for kr in same_prefix)
                         if r), None)

    def stats(self) -> dict:
        lat = sorted(self.latencies_us)
        pick = (lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 1)) if lat else (lambda q: None)
        return {"source": "netlink", "netns": self.netns, "host_routes": len(self._tables.routes), **self._counts,
                "latency_us": {"samples": len(lat), "p50": pick(0.5), "p99": pick(0.99),
                               "max": round(lat[-1], 1) if lat else None}}

    def _run(self) -> None:
        poller = self._poll.poller(self._nl.event_sock)
        stopping = self._poll.stopping
        kinds: set[str] = set()
        while not stopping.is_set():
            if not kinds:
                poller.poll(self._retry.wait_ms())
            t0 = time.monotonic_ns()
            if stopping.is_set():
                return
            try:
                kinds |= self._nl.drain_events()
                changed = False
                if kinds:
                    self._counts["events"] += 1
                    changed = self._reread(kinds - {ROUTES})
                    if changed and ROUTES in kinds:
                        # a link, neighbour or nexthop object change (a switch gone) goes in before
                        # the route dump, which takes the longest with a large table
                        self._deliver(t0)
                    changed = self._reread(kinds & {ROUTES}) or (changed and ROUTES not in kinds)
                kinds = set()
            except Exception as e:  # keep following; re-read everything after a short pause
                self._counts["errors"] += 1
                events.event("route_sync_error", f"route sync: {e}", logging.ERROR, cause=str(e))
                kinds = set(EVERYTHING)
                stopping.wait(0.1)
                continue
            # a change may be a withdrawal, which goes in at once even while a refused commit waits
            if changed or self._retry.is_due():
                self._deliver(t0)

    def _deliver(self, t0: int) -> None:
        try:
            committed = self.on_change()
        except Exception as e:
            self._counts["commit_failures"] += 1
            self._retry.failed(e)
            return
        self._retry.succeeded()
        if committed:
            self._counts["commits"] += 1
            self.latencies_us.append((time.monotonic_ns() - t0) / 1000)

    def _reread(self, kinds: Iterable[str]) -> bool:
        """Re-read `kinds` of kernel state; whether any of it changed."""
        changed = False
        for kind in (LINKS, NEIGHBOURS, NEXTHOPS):
            if kind in kinds:
                now = self._read(kind)
                self._counts["reads"] += 1
                if now != getattr(self._tables, kind):
                    with self._lock:
                        setattr(self._tables, kind, now)
                        self._memo.clear()
                    changed = True
        if ROUTES in kinds:
            changed |= self._reread_routes()
            self._counts["reads"] += 1
        return changed

    def _read(self, kind: str) -> dict:
        """Dump `kind` (links, neighbours or nexthop objects), decoding only messages new since the last dump."""
        parse = DUMPS[kind][2]
        before = self._decoded.get(kind, {})
        now = {raw: before[raw] if raw in before else parse(raw) for raw in self._nl.dump(kind)}
        self._decoded[kind] = now
        return dict(item for item in now.values() if item is not None)

    def _reread_routes(self) -> bool:
        """Dump the routes and apply the difference from the last dump to the index; whether there was one.

        Messages are compared undecoded, as sets, so an unchanged table of
        100,000 routes costs the kernel's dump and two set operations in C;
        only new messages are decoded.
        """
        known = self._decoded.setdefault(ROUTES, {})
        now = set(self._nl.dump(ROUTES))
        gone, new_raws = self._route_raws - now, now - self._route_raws
        if not gone and not new_raws:
            return False
        self._route_raws = now
        new = [(raw, parse_route(raw)) for raw in new_raws]
        with self._lock:
            for raw in gone:
                route = known.pop(raw)
                if route is not None:
                    self._tables.routes.remove(route)
            for raw, route in new:
                known[raw] = route
                if route is not None:
                    self._tables.routes.add(route)
        return True


class StaticRoutes:
    """Routes from the config file, delivered once."""

    def __init__(self, routes: tuple[Route, ...], callback: RoutesCallback):
        self.routes, self.callback = routes, callback

    def start(self) -> None:
        self.callback(self.routes)

    def stop(self) -> None:
        pass

    def stats(self) -> dict:
        return {"source": "static", "routes": len(self.routes)}


class NoRoutes:
    """Routes only from the control socket."""

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def stats(self) -> dict:
        return {"source": "none"}


def make_route_source(config, controller: Controller) -> RouteSource:
    """The route source the config asks for (`config` is a config.Config), wired to `controller`."""
    o = config.options
    if o.route_source == "netlink":
        sync = NetlinkRouteSync(config.uplinks, controller.host_routes_changed, o.netns)
        controller.follow_host_routes(sync)
        return sync
    if o.route_source == "static":
        return StaticRoutes(config.static_routes, controller.set_routes)
    return NoRoutes()
