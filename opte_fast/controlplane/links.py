"""The uplinks' link state, applied to the forwarding state and to the uplinks' kernel taps.

The C side (csrc/link.c) follows every uplink's DPDK link (the LSC
interrupt where the PMD offers one, and a poll every 2 ms by an EAL alarm,
never by a worker) and signals an eventfd on each change. `Links` stands
between the Controller and the data plane: every commit goes through it
with each nexthop through an uplink whose link is down marked down, so a nexthop is used only if its
route has it up and its uplink's link is up. Its thread waits on the
eventfd; on a change it commits the last state again, which moves exactly
the flows of those nexthops as a withdrawn route does (their generation
drops to 0), and when the link is back they are up again under the
rebalance policy. It then sets the carrier of the uplink's kernel tap to
match and logs one line.

Why the reaction is here and not in C: the commit path already turns a
desired state into tables in one place, and the same mechanism serves route
withdrawals, so a link change is one more input to it, not a second writer
of the tables. It costs one Python wake-up and one member-only commit,
about 0.5 ms on an idle machine (bench/link_failover.py), next to the
detection itself (up to 2 ms of polling) and the seconds a routing daemon's
session needs to notice the same failure.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Iterable
from typing import TextIO

from . import events, taps
from .pollthread import PollThread
from .routesync import CommitRetry, RouteSyncError
from .state import DesiredState, Route


def with_links_down(state: DesiredState, down: frozenset[str]) -> DesiredState:
    """`state` with every nexthop through an uplink in `down` marked down."""
    if not down:
        return state
    return state.replace(routes=tuple(
        Route(r.prefix, tuple(dataclasses.replace(n, up=False) if n.up and n.uplink in down else n
                              for n in r.nexthops))
        for r in state.routes))


class Links:
    """The data plane, as the Controller sees it, with the uplinks' link state applied.

    `uplinks` are the uplink port names; `taps` maps an uplink to its kernel
    tap's name (the exception path), which lives in network namespace `netns`
    (None: this one). Changes are logged to `log` (None: stderr). With
    `follow` false the links are only shown, never applied. Every other
    attribute is the data plane's; `ports()` adds each port's link.
    """

    def __init__(self, dataplane, uplinks: Iterable[str], taps: dict[str, str] | None = None,
                 netns: str | None = None, log: TextIO | None = None, follow: bool = True):
        self._dataplane = dataplane
        self._follow = follow
        self._uplinks = tuple(uplinks)
        self._taps = dict(taps or {})
        self._netns = netns
        self._log = log
        self._lock = threading.Lock()
        self._last: DesiredState | None = None
        self._down: frozenset[str] = frozenset()     # as committed
        self._carrier: dict[str, bool] = dict.fromkeys(self._taps, True)  # as the kernel has it
        self._reaction_us: dict[str, float] = {}
        self._poll: PollThread | None = None
        self._retry = CommitRetry("links: the link change", log)

    def __getattr__(self, name: str):
        return getattr(self._dataplane, name)

    # --- the Controller's side -----------------------------------------------------------

    def commit(self, state: DesiredState) -> None:
        with self._lock:
            self._dataplane.commit(with_links_down(state, self._down))
            self._last = state

    def ports(self) -> list[dict]:
        out = []
        for port in self._dataplane.ports():
            link = self._dataplane.link(port["name"])
            port["link"] = ("up" if link["up"] else "down") if link["watched"] else None
            port["link_changes"] = link["changes"] if link["watched"] else None
            port["link_reaction_us"] = self._reaction_us.get(port["name"])
            out.append(port)
        return out

    @property
    def down(self) -> frozenset[str]:
        """The uplinks whose nexthops are committed down for their link."""
        return self._down

    # --- following the links -------------------------------------------------------------

    def start(self) -> None:
        """Apply the links as they are now, then follow them in a thread."""
        if not self._follow:
            return
        self._apply()
        self._poll = PollThread("links", self._run)
        self._poll.start()

    def stop(self) -> None:
        if self._poll is not None:
            self._poll.stop()

    def _run(self) -> None:
        event_fd = self._dataplane.link_event_fd()
        poller = self._poll.poller(event_fd)
        while True:
            poller.poll(self._retry.wait_ms())
            if self._poll.stopping.is_set():
                return
            try:
                os.read(event_fd, 8)
            except BlockingIOError:
                pass
            self._apply()

    def _apply(self) -> None:
        """Commit and log what changed since the last call; a failure is retried with backoff."""
        try:
            self._commit_links()
            self._follow_carriers()
        except (OSError, ValueError, RuntimeError) as e:  # a refused commit, a tap that will not follow
            self._retry.failed(e)
        else:
            self._retry.succeeded()

    def _commit_links(self) -> None:
        with self._lock:
            links = {u: self._dataplane.link(u) for u in self._uplinks}
            down = frozenset(u for u, link in links.items() if not link["up"])
            changed = sorted(down ^ self._down)
            if changed:
                if self._last is not None:
                    self._dataplane.commit(with_links_down(self._last, down))
                applied_ns = time.monotonic_ns()
                self._down = down
                for u in changed:
                    self._reaction_us[u] = (applied_ns - links[u]["changed_ns"]) / 1000
                    self._log_change(u, links[u])

    def _log_change(self, uplink: str, link: dict) -> None:
        hops = sum(1 for r in (self._last.routes if self._last else ()) for n in r.nexthops if n.uplink == uplink)
        state = f"up ({link['speed_mbps']} Mbps)" if link["up"] else "down"
        how = "kept by LSC interrupt" if link["by_interrupt"] else "polled"
        events.say(self._log, "link_up" if link["up"] else "link_down",
                   f"link {uplink} {state}: nexthops through it: {hops}, committed "
                   f"{self._reaction_us[uplink]:.0f} us after the change was seen (link {how})",
                   logging.INFO if link["up"] else logging.WARNING, uplink=uplink, nexthops=hops,
                   reaction_us=round(self._reaction_us[uplink]), by_interrupt=link["by_interrupt"])

    def _follow_carriers(self) -> None:
        """Each uplink's kernel tap gets the uplink's link as its carrier."""
        for uplink, tap in self._taps.items():
            on = uplink not in self._down
            if self._carrier[uplink] != on:
                try:
                    taps.set_carrier(tap, self._netns, on)
                except (taps.TapError, RouteSyncError, OSError) as e:
                    raise RouteSyncError(f"cannot set the carrier of {tap}: {e}") from None
                self._carrier[uplink] = on
