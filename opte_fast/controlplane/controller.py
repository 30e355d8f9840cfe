"""The single writer of the desired state.

Route sync and the control socket both change forwarding state through one
`Controller`: each change computes a new `DesiredState` from the current one
under a lock and commits it to the data plane only when it differs. A failed
commit leaves the current state as it was.

Following the host routing table (`follow_host_routes`), the routes are not
set but derived: for every address the data plane sends to (each TEP and
each V2P sled) the host's route to it, worked out again on every change of
either side. A host table of any size thus commits only the few routes in
use, and a host route change that alters none of them commits nothing.

TEP up/down is kept per address: a TEP marked down stays down in every V2B
entry that names it, including entries set later, until it is marked up.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from . import events
from .state import (
    BOUNDARY_SERVICES_VNI,
    V2B,
    V2P,
    DataplaneAPI,
    DesiredState,
    IPAddress,
    IPNetwork,
    IPv6Address,
    Nexthop,
    Route,
    Tep,
    check_vni,
    parse_mac,
)


class NotFound(LookupError):
    """A clear named an entry that does not exist."""


class HostRoutes(Protocol):
    """The host routing table, as route sync follows it."""

    def routes_for(self, addresses: Iterable[IPv6Address]) -> tuple[Route, ...]:
        """The host's route to each of `addresses`, each route once, sorted."""

    def route(self, prefix: ipaddress.IPv6Network) -> Route | None:
        """The host's route for exactly `prefix`, if it has one the data plane can use."""


class RoutesRefused(RuntimeError):
    """The data plane refused the host's routes. `withdrawals_applied`: the
    withdrawn paths were taken out alone, so no flow is left on one."""

    def __init__(self, cause: Exception, withdrawals_applied: bool):
        super().__init__(str(cause))
        self.withdrawals_applied = withdrawals_applied


class Controller:
    """Holds the desired state and commits every change to `dataplane`.

    The initial state is committed on construction. `uplinks` names the
    uplink ports a route's nexthops may use.
    """

    def __init__(self, dataplane: DataplaneAPI, initial: DesiredState, uplinks: Iterable[str]):
        self._dataplane = dataplane
        self._uplinks = tuple(uplinks)
        self._lock = threading.Lock()
        self._teps_down = {t.addr for e in initial.v2b for t in e.teps if not t.up}
        self._host_routes: HostRoutes | None = None
        self._commits = {"commits": 0, "refused": 0, "seconds": 0.0, "seconds_max": 0.0}
        self._state = None
        self._refused: str | None = None  # the cause of the last refusal, until a commit applies
        self._commit(initial)

    # --- reads ---------------------------------------------------------------------------

    @property
    def state(self) -> DesiredState:
        return self._state

    @property
    def uplinks(self) -> tuple[str, ...]:
        return self._uplinks

    @property
    def teps_down(self) -> frozenset[IPv6Address]:
        return frozenset(self._teps_down)

    def commit_stats(self) -> dict:
        """Commits applied and refused, and the time they took (seconds: total and longest)."""
        with self._lock:
            return dict(self._commits)

    # --- writes: each returns whether the data plane was changed -------------------------

    def follow_host_routes(self, host: HostRoutes) -> bool:
        """From now on, the routes are `host`'s routes to every address the data plane sends to."""
        with self._lock:
            self._host_routes = host
            return self._commit(self._derive(self._state))

    def host_routes_changed(self) -> bool:
        """Work the routes out again after the host table changed (route sync's entry point).

        When the data plane refuses them, the withdrawals alone are committed
        (the current routes less every path the host no longer offers, and
        paths gone down marked down): they only shrink the tables, so they fit
        where the current ones do. Then RoutesRefused is raised so the caller
        tries again later.
        """
        with self._lock:
            wanted = self._derive(self._state)
            try:
                return self._commit(wanted)
            except Exception as refused:
                shrunk = self._state.replace(routes=withdrawals_only(self._state.routes, self._host_routes.route))
                try:
                    applied = self._commit(shrunk)
                except Exception as also_refused:
                    raise RoutesRefused(refused, withdrawals_applied=False) from also_refused
                raise RoutesRefused(refused, withdrawals_applied=applied) from refused

    def set_routes(self, routes: Sequence[Route]) -> bool:
        """Replace every underlay route (static routes' entry point)."""
        self._check_routes_settable()
        routes = tuple(routes)
        for r in routes:
            self._check_route(r)
        return self._apply(lambda s: s.replace(routes=routes))

    def route_set(self, prefix: ipaddress.IPv6Network, nexthops: Sequence[Nexthop]) -> bool:
        """Add or replace the route for `prefix`."""
        self._check_routes_settable()
        route = Route(prefix, tuple(nexthops))
        self._check_route(route)
        return self._apply(lambda s: s.replace(routes=_upsert(s.routes, route, lambda r: r.prefix)))

    def route_clear(self, prefix: ipaddress.IPv6Network) -> bool:
        self._check_routes_settable()
        return self._apply(lambda s: s.replace(routes=_remove(s.routes, lambda r: r.prefix == prefix,
                                                              f"no route for {prefix}")))

    def v2b_set(self, prefix: IPNetwork, teps: Sequence[IPv6Address], vni: int = BOUNDARY_SERVICES_VNI) -> bool:
        """Destinations under `prefix` leave through `teps` (order kept, duplicates refused)."""
        check_vni(vni)
        if not teps:
            raise ValueError(f"V2B {prefix} needs at least one TEP")
        if len(set(teps)) != len(teps):
            raise ValueError(f"V2B {prefix} names a TEP twice")

        def change(s: DesiredState) -> DesiredState:
            entry = V2B(prefix, tuple(Tep(a, vni, a not in self._teps_down) for a in teps))
            return s.replace(v2b=_upsert(s.v2b, entry, lambda e: e.prefix))
        return self._apply(change)

    def v2b_clear(self, prefix: IPNetwork) -> bool:
        return self._apply(lambda s: s.replace(v2b=_remove(s.v2b, lambda e: e.prefix == prefix,
                                                           f"no V2B entry for {prefix}")))

    def v2p_set(self, vni: int, ip: IPAddress, underlay: IPv6Address, mac: str) -> bool:
        """Guest `ip` of VPC `vni` lives behind sled `underlay` with MAC `mac`."""
        entry = V2P(check_vni(vni), ip, underlay, parse_mac(mac))
        return self._apply(lambda s: s.replace(v2p=_upsert(s.v2p, entry, lambda e: (e.vni, e.ip))))

    def v2p_clear(self, vni: int, ip: IPAddress) -> bool:
        return self._apply(lambda s: s.replace(v2p=_remove(s.v2p, lambda e: (e.vni, e.ip) == (vni, ip),
                                                           f"no V2P entry for {ip} in VNI {vni}")))

    def tep_set_state(self, addr: IPv6Address, up: bool) -> int:
        """Mark TEP `addr` up or down in every V2B entry; returns how many entries name it."""
        with self._lock:
            self._commit(self._state.with_tep_state(addr, up))
            (self._teps_down.discard if up else self._teps_down.add)(addr)
            return sum(1 for e in self._state.v2b for t in e.teps if t.addr == addr)

    # --- mechanics -----------------------------------------------------------------------

    def _check_routes_settable(self) -> None:
        if self._host_routes is not None:
            raise ValueError("routes follow the host routing table (route source netlink): change them there, "
                             "or run with --route-source static or none")

    def _check_route(self, route: Route) -> None:
        paths = [(nh.uplink, nh.gateway) for nh in route.nexthops]
        for path in paths:
            if paths.count(path) > 1:
                raise ValueError(f"route {route.prefix}: duplicate nexthop via {path[1]} dev {path[0]}")
        for nh in route.nexthops:
            if nh.uplink not in self._uplinks:
                raise ValueError(f"route {route.prefix}: no uplink {nh.uplink!r} "
                                 f"(expected one of {', '.join(self._uplinks) or 'none configured'})")

    def _apply(self, change: Callable[[DesiredState], DesiredState]) -> bool:
        with self._lock:
            return self._commit(self._derive(change(self._state)))

    def _derive(self, state: DesiredState) -> DesiredState:
        """`state` with the host's routes to its destinations, when following the host table."""
        if self._host_routes is None:
            return state
        return state.replace(routes=self._host_routes.routes_for(state.underlay_destinations()))

    def _commit(self, new: DesiredState) -> bool:
        if new == self._state:
            return False
        t0 = time.perf_counter()
        try:
            self._dataplane.commit(new)
        except Exception as e:
            self._commits["refused"] += 1
            if self._state is not None and str(e) != self._refused:  # once a cause; the first commit's, the caller
                self._refused = str(e)
                events.event("commit_refused", f"commit refused: {e}", logging.WARNING, cause=str(e))
            raise
        took = time.perf_counter() - t0
        self._commits["commits"] += 1
        self._commits["seconds"] += took
        self._commits["seconds_max"] = max(self._commits["seconds_max"], took)
        if self._state is not None:
            log_changes(self._state, new, took)
        if self._refused is not None:
            events.event("commit_applied", f"commit applied after a refusal ({self._refused})", cause=self._refused)
            self._refused = None
        self._state = new
        return True


def _hop(n: Nexthop) -> str:
    return f"{n.gateway} dev {n.uplink}" + ("" if n.up else " (down)")


def log_changes(old: DesiredState, new: DesiredState, took_s: float) -> None:
    """One event per route or V2B entry whose members changed, and per member gone down or up."""
    ms = round(took_s * 1000, 3)
    for kind, member, key, describe in (
            ("route", "nexthop", lambda n: (n.uplink, n.gateway), _hop),
            ("v2b", "tep", lambda t: t.addr, lambda t: str(t.addr) + ("" if t.up else " (down)"))):
        before = {e.prefix: e for e in (old.routes if kind == "route" else old.v2b)}
        after = {e.prefix: e for e in (new.routes if kind == "route" else new.v2b)}
        for prefix in sorted(before.keys() | after.keys(), key=lambda p: (p.version, p)):
            a, b = before.get(prefix), after.get(prefix)
            if a == b:
                continue
            was = {key(m): m for m in (a.nexthops if kind == "route" else a.teps)} if a else {}
            now = {key(m): m for m in (b.nexthops if kind == "route" else b.teps)} if b else {}
            if was.keys() != now.keys():
                change = "added" if a is None else "withdrawn" if b is None else "changed"
                members = [describe(m) for m in now.values()]
                events.event(f"{kind}_applied", f"{kind} {prefix} {change}: {', '.join(members) or 'no members'}",
                             prefix=str(prefix), change=change, members=members, commit_ms=ms)
            for k in was.keys() & now.keys():
                if was[k].up != now[k].up:
                    state = "up" if now[k].up else "down"
                    name = f"{now[k].gateway} dev {now[k].uplink}" if kind == "route" else str(k)
                    events.event(f"{member}_{state}", f"{member} {name} of {prefix} {state}", prefix=str(prefix),
                                 member=name, commit_ms=ms)


def withdrawals_only(current: Sequence[Route],
                     host_route: Callable[[ipaddress.IPv6Network], Route | None]) -> tuple[Route, ...]:
    """`current` with only what the host took away since: routes and paths it no longer
    offers removed, and paths that went down or changed MAC marked down. Nothing is added."""
    out = []
    for route in current:
        offered = host_route(route.prefix)
        hops = {(n.uplink, n.gateway): n for n in offered.nexthops} if offered else {}
        kept = tuple(n if hops[n.uplink, n.gateway] == n or not n.up else dataclasses.replace(n, up=False)
                     for n in route.nexthops if (n.uplink, n.gateway) in hops)
        if kept:
            out.append(Route(route.prefix, kept))
    return tuple(out)


def _upsert(items: tuple, item, key: Callable) -> tuple:
    """`items` with the entry of the same key replaced in place, or `item` appended."""
    k = key(item)
    if any(key(i) == k for i in items):
        return tuple(item if key(i) == k else i for i in items)
    return (*items, item)


def _remove(items: tuple, match: Callable, missing: str) -> tuple:
    kept = tuple(i for i in items if not match(i))
    if len(kept) == len(items):
        raise NotFound(missing)
    return kept
