"""BFD's verdicts applied to the forwarding state (its settings are in bfd_settings.py).

The protocol runs in C (csrc/bfd.c, csrc/bfd_io.c): one BFD thread, not a
worker and not Python, sends and times every session and signals each state
change on an eventfd. `Bfd` is a member-state follower (follower.py), as
`Links` is: it stands between the Controller and the data plane, every
commit goes through it, and it

- works out the sessions the state needs: single hop (RFC 5881) from each
  uplink to each nexthop gateway a route uses, and multi-hop (RFC 5883) to
  each TEP a V2B entry names, sent through the first live nexthop of the
  TEP's route, which is where the data plane sends the TEP's traffic, and
  inside Geneve as guest traffic is (`multihop_encap` "geneve", the
  default), so that it proves the TEP decapsulates, or plainly to the TEP's
  address ("plain"), which proves only that the address answers;
- commits the state with every member whose session failed marked down: a
  nexthop whose single-hop session, a TEP whose multi-hop session, was Up
  and is no longer. A session that never came up (the peer runs no BFD) marks
  nothing down, unless the uplink's mode is `require`; neither does a peer
  that says AdminDown (RFC 5880 6.8.16: it stopped BFD, the path may be fine).

Its thread waits on the eventfd and commits the last state again, which
moves exactly the failed member's flows, as a withdrawn route or `ctl tep
down` does; a session Up again brings its member back under the rebalance
policy. Python is only in the reaction, never in the timing: a slow commit
delays the move, not the detection, and cannot make a session flap.
"""
from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from . import events
from .bfd_settings import AUTH_TYPES, BfdConfig, BfdSettings
from .follower import MemberFollower
from .state import DesiredState, IPv6Address, Route, mac_bytes

STATES = ("admin-down", "down", "init", "up")
DIAGNOSTICS = {0: "none", 1: "control detection time expired", 2: "echo function failed",
               3: "neighbor signaled session down", 4: "forwarding plane reset", 5: "path down",
               6: "concatenated path down", 7: "administratively down", 8: "reverse concatenated path down"}
UP, ADMIN_DOWN = 3, 0
AUTH_NAMES = {v: k for k, v in AUTH_TYPES.items()}
# the BFD thread's counters as Prometheus counters (the rx_auth_* are authentication failures, each a drop)
THREAD_COUNTERS = ("rx_packets", "rx_geneve_packets", "rx_no_session", "rx_malformed", "rx_bad_checksum",
                   "rx_bad_hop_limit", "rx_invalid", "rx_auth_missing", "rx_auth_unexpected", "rx_auth_bad_type",
                   "rx_auth_bad_key_id", "rx_auth_bad_seq", "rx_auth_bad_digest", "tx_packets", "tx_failed",
                   "state_changes", "late_over_1ms")


@dataclass(frozen=True)
class Session:
    """A session the state asks for: single hop on `uplink` to `peer` (a nexthop's gateway, at `mac`), or
    multi-hop to `peer` (a TEP) through the nexthop (`uplink`, `mac`), inside Geneve with the TEP's `vni`
    when `geneve`."""
    multihop: bool
    peer: IPv6Address
    uplink: str
    mac: str
    settings: BfdSettings
    geneve: bool = False
    vni: int = 0

    @property
    def kind(self) -> str:
        return ("multihop-geneve" if self.geneve else "multihop") if self.multihop else "single-hop"

    @property
    def key(self) -> tuple:
        return (self.multihop, self.peer) if self.multihop else (False, self.peer, self.uplink)


def longest_match(routes: Iterable[Route], addr: IPv6Address) -> Route | None:
    best = None
    for r in routes:
        if addr in r.prefix and (best is None or r.prefix.prefixlen > best.prefix.prefixlen):
            best = r
    return best


def wanted_sessions(state: DesiredState, config: BfdConfig, down: frozenset = frozenset()) -> list[Session]:
    """Every session `state` needs, each once: single hop per (uplink, gateway) of a route whose uplink runs
    BFD, then multi-hop per TEP through its route's first nexthop that is up and not in `down` (keys of
    failed single-hop sessions), in Geneve with the TEP's VNI unless `multihop_encap` is plain."""
    out: dict[tuple, Session] = {}
    for route in state.routes:
        for n in route.nexthops:
            settings = config.for_uplink(n.uplink)
            if settings.mode != "off":
                s = Session(False, n.gateway, n.uplink, n.mac, settings)
                out.setdefault(s.key, s)
    if config.multihop and config.default.mode != "off":
        geneve = config.multihop_encap == "geneve"
        for addr, vni in sorted({(t.addr, t.vni) for e in state.v2b for t in e.teps}):
            route = longest_match(state.routes, addr)
            live = [n for n in route.nexthops if n.up and (False, n.gateway, n.uplink) not in down] if route else []
            if live:
                s = Session(True, addr, live[0].uplink, live[0].mac, config.default, geneve, vni if geneve else 0)
                out.setdefault(s.key, s)  # one per TEP address, with the first VNI it is named with
    return list(out.values())


def failed(session: dict, settings: BfdSettings) -> bool:
    """Whether a session's member must be down: it was Up and is not (the peer's AdminDown aside), or,
    under `require`, it is not Up."""
    if session["state"] == UP:
        return False
    if settings.mode == "require":
        return True
    return session["been_up"] and session["remote_state"] != ADMIN_DOWN


def with_failures(state: DesiredState, failed_keys: frozenset) -> DesiredState:
    """`state` with each nexthop and TEP whose session key is in `failed_keys` marked down."""
    if not failed_keys:
        return state
    state = state.with_nexthops_down(lambda n: (False, n.gateway, n.uplink) in failed_keys)
    for key in failed_keys:
        if key[0]:
            state = state.with_tep_state(key[1], False)
    return state


def bfd_metrics(report: dict, prefix: str) -> Iterator[Metric]:
    """Prometheus families of a `Bfd.bfd()` report: per session its state and state changes, and the
    BFD thread's counters."""
    labels = ["kind", "uplink", "peer"]
    up = GaugeMetricFamily(f"{prefix}_bfd_session_up", "1 while the BFD session is Up", labels=labels)
    state = GaugeMetricFamily(f"{prefix}_bfd_session_state",
                              "BFD session state: 0 AdminDown, 1 Down, 2 Init, 3 Up", labels=labels)
    member = GaugeMetricFamily(f"{prefix}_bfd_member_down", "1 while BFD holds the session's nexthop or TEP down",
                               labels=labels)
    downs = CounterMetricFamily(f"{prefix}_bfd_session_downs", "times the session left Up", labels=labels)
    ups = CounterMetricFamily(f"{prefix}_bfd_session_ups", "times the session came Up", labels=labels)
    for s in report["sessions"]:
        key = [s["kind"], s["uplink"], s["peer"]]
        up.add_metric(key, 1 if s["state"] == "up" else 0)
        state.add_metric(key, STATES.index(s["state"]))
        member.add_metric(key, 0 if s["member_up"] else 1)
        downs.add_metric(key, s["downs"])
        ups.add_metric(key, s["ups"])
    yield from (up, state, member, downs, ups)
    thread = report["thread"] or {}
    for name in THREAD_COUNTERS:
        if name in thread:
            yield CounterMetricFamily(f"{prefix}_bfd_{name}", f"BFD thread: {name.replace('_', ' ')}",
                                      value=thread[name])
    if "late_max_ns" in thread:
        yield GaugeMetricFamily(f"{prefix}_bfd_late_max_seconds", "BFD thread: the latest wake-up, seconds late",
                                value=thread["late_max_ns"] / 1e9)


class Bfd(MemberFollower):
    """The data plane, as the Controller (or Links) sees it, with BFD's verdicts applied: the members
    held down are the keys of the failed sessions.

    Every other attribute is the data plane's. Changes are logged to `log` (None: stderr).
    """

    def __init__(self, dataplane: Any, config: BfdConfig, log: TextIO | None = None):
        super().__init__(dataplane, "bfd", "bfd: the session change", log)
        self._config = config
        self._sessions: list[Session] = []
        self._states: dict[tuple, int] = {}           # as last logged

    # --- the Controller's side -----------------------------------------------------------

    def _prepare(self, state: DesiredState) -> None:
        if not self._config.off:
            self._set_sessions(state)

    def bfd(self) -> dict:
        """Every session, as `opte-fast ctl bfd` shows it, and the BFD thread's counters."""
        with self._lock:
            sessions = list(self._sessions)
        now_ns = time.monotonic_ns()
        rows = []
        for want, s in zip(sessions, self._dataplane.bfd_sessions()):
            rows.append({
                "kind": want.kind, "uplink": want.uplink,
                "peer": str(want.peer), "local": str(ipaddress.IPv6Address(s["local"])),
                "member": f"tep {want.peer}" if want.multihop else f"nexthop {want.peer} dev {want.uplink}",
                "state": STATES[s["state"]], "remote_state": STATES[s["remote_state"]],
                "member_up": want.key not in self._down, "mode": want.settings.mode,
                "local_disc": s["local_disc"], "remote_disc": s["remote_disc"],
                "tx_interval_ms": s["tx_interval_us"] / 1000, "detect_ms": s["detect_us"] / 1000,
                "desired_min_tx_ms": s["desired_min_tx_us"] / 1000,
                "required_min_rx_ms": s["required_min_rx_us"] / 1000,
                "remote_min_tx_ms": s["remote_min_tx_us"] / 1000, "remote_min_rx_ms": s["remote_min_rx_us"] / 1000,
                "detect_mult": s["detect_mult"], "remote_mult": s["remote_mult"],
                "last_change_s_ago": round((now_ns - s["changed_ns"]) / 1e9, 3),
                "diag": DIAGNOSTICS.get(s["diag"], str(s["diag"])),
                "remote_diag": DIAGNOSTICS.get(s["remote_diag"], str(s["remote_diag"])),
                "ups": s["ups"], "downs": s["downs"], "rx_packets": s["rx_packets"], "tx_packets": s["tx_packets"],
                "vni": want.vni if want.geneve else None, "reaction_us": self._reaction_us.get(want.key),
                "auth": AUTH_NAMES.get(s["auth_type"], str(s["auth_type"])),
                "auth_key_id": s["auth_key_id"] if s["auth_type"] else None,
            })
        stats = dict(self._dataplane.bfd_stats())
        stats["realtime"], stats["running"] = bool(stats["realtime"]), bool(stats["running"])
        return {"sessions": rows, "thread": stats}

    # --- following the sessions ----------------------------------------------------------

    def start(self) -> None:
        if not self._config.off:
            super().start()

    def _event_fd(self) -> int:
        return self._dataplane.bfd_event_fd()

    def _mark_down(self, state: DesiredState, down: frozenset) -> DesiredState:
        return with_failures(state, down)

    def _apply(self) -> None:
        with self._lock:
            sessions, current = self._sessions, self._dataplane.bfd_sessions()
            failed_now = frozenset(w.key for w, s in zip(sessions, current) if failed(s, w.settings))
            if self._commit_down(failed_now) and self._last is not None:
                self._set_sessions(self._last)  # a multi-hop session may take another nexthop now
            applied_ns = time.monotonic_ns()
            for w, s in zip(sessions, current):
                if self._states.get(w.key) != s["state"]:
                    self._reaction_us[w.key] = (applied_ns - s["changed_ns"]) / 1000
                    self._log_change(w, s, w.key in failed_now)
                    self._states[w.key] = s["state"]

    def _set_sessions(self, state: DesiredState) -> None:
        sessions = wanted_sessions(state, self._config, self._down)
        if sessions == self._sessions:
            return
        self._dataplane.bfd_set([
            (s.multihop, s.peer.packed, self._dataplane.port_index(s.uplink), mac_bytes(s.mac),
             *s.settings.peer_args, s.geneve, s.vni, *s.settings.auth_args) for s in sessions])
        self._sessions = sessions
        # sessions gone take their verdicts with them
        self._down = frozenset(k for k in self._down if k in {s.key for s in sessions})

    def _log_change(self, want: Session, s: dict, member_down: bool) -> None:
        what = f"tep {want.peer} ({want.kind} via {want.uplink})" if want.multihop else \
            f"nexthop {want.peer} dev {want.uplink}"
        effect = "member down" if member_down else "member up" if s["state"] == UP else "member unchanged"
        why = f" ({DIAGNOSTICS.get(s['diag'], s['diag'])})" if s["diag"] else ""
        events.say(self._log, "bfd_state",
                   f"bfd {what}: {STATES[s['state']]}{why}; {effect}, committed "
                   f"{self._reaction_us[want.key]:.0f} us after the change",
                   logging.WARNING if member_down else logging.INFO, peer=str(want.peer), kind=want.kind,
                   uplink=want.uplink, state=STATES[s["state"]], member_down=member_down,
                   reaction_us=round(self._reaction_us[want.key]))


