"""A member-state follower: the data plane, as the Controller sees it, with the members that C
finds down (an uplink whose link is down, a nexthop or TEP whose BFD session failed) marked down.

C follows the members (csrc/link.c, csrc/bfd_io.c) and signals every change on an eventfd. A
follower stands between the Controller and the data plane: every commit goes through it with the
members it holds down marked down, and its thread waits on the eventfd and, on a change, commits
the last state again with the members down now, which moves exactly their flows as a withdrawn
route does. A refused commit is tried again with backoff, as route sync does. `Links` (links.py)
and `Bfd` (bfd.py) are the two followers; each says which eventfd it waits on (`_event_fd`), how a
state gets its members marked down (`_mark_down`) and what it does on a change (`_apply`).
"""
from __future__ import annotations

import os
import threading
from typing import Any, TextIO

from .pollthread import PollThread
from .routesync import CommitRetry
from .state import DesiredState


class MemberFollower:
    """Every attribute that is not the follower's own is the data plane's. `name` names the thread;
    `subject` what a retry log line says was not applied; lines go to `log` (None: stderr)."""

    def __init__(self, dataplane: Any, name: str, subject: str, log: TextIO | None = None):
        self._dataplane = dataplane
        self._name = name
        self._log = log
        self._lock = threading.Lock()
        self._last: DesiredState | None = None
        self._down: frozenset = frozenset()          # the members held down, as committed
        self._reaction_us: dict[Any, float] = {}     # per member, from C seeing the change to its commit
        self._poll: PollThread | None = None
        self._retry = CommitRetry(subject, log)

    def __getattr__(self, name: str):
        return getattr(self._dataplane, name)

    # --- what a follower says ---------------------------------------------------------------

    def _event_fd(self) -> int:
        """The eventfd C signals a change on."""
        raise NotImplementedError

    def _mark_down(self, state: DesiredState, down: frozenset) -> DesiredState:
        """`state` with the members in `down` marked down."""
        raise NotImplementedError

    def _apply(self) -> None:
        """Follow the change C signalled (`_commit_down` commits it); an error is retried."""
        raise NotImplementedError

    def _prepare(self, state: DesiredState) -> None:
        """Under the lock, before `state` is committed: anything the follower derives from it."""

    # --- the Controller's side --------------------------------------------------------------

    def commit(self, state: DesiredState) -> None:
        with self._lock:
            self._prepare(state)
            self._dataplane.commit(self._mark_down(state, self._down))
            self._last = state

    # --- following --------------------------------------------------------------------------

    def start(self) -> None:
        """Follow the members in a thread."""
        self._poll = PollThread(self._name, self._run)
        self._poll.start()

    def stop(self) -> None:
        if self._poll is not None:
            self._poll.stop()

    def _run(self) -> None:
        event_fd = self._event_fd()
        poller = self._poll.poller(event_fd)
        while True:
            poller.poll(self._retry.wait_ms())
            if self._poll.stopping.is_set():
                return
            try:
                os.read(event_fd, 8)
            except BlockingIOError:
                pass
            self._react()

    def _react(self) -> None:
        """`_apply`; a failure (a refused commit, a tap that will not follow) is retried with backoff."""
        try:
            self._apply()
        except (OSError, ValueError, RuntimeError) as e:
            self._retry.failed(e)
        else:
            self._retry.succeeded()

    def _commit_down(self, down: frozenset) -> bool:
        """Under the lock: hold `down` down from now on, committing the last state with them if that
        changes anything; whether it did."""
        if down == self._down:
            return False
        if self._last is not None:
            self._dataplane.commit(self._mark_down(self._last, down))
        self._down = down
        return True
