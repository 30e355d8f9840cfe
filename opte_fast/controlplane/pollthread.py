"""A control-plane thread that sleeps in poll() and can be stopped at once.

Route sync, link following and the control socket each wait on file descriptors of their own
(netlink, the data plane's link eventfd, a listening socket). Each also waits on a pipe that
stop() writes to, so stop() never waits for a timeout or for an event that may not come.
"""
from __future__ import annotations

import os
import select
import threading
from collections.abc import Callable


class PollThread:
    def __init__(self, name: str, target: Callable[[], None]):
        self.name = name
        self.stopping = threading.Event()
        self._target = target
        self._thread: threading.Thread | None = None
        self._wake_r = self._wake_w = -1

    @property
    def running(self) -> bool:
        return self._thread is not None

    def poller(self, *fds) -> select.poll:
        """A poll object waiting on `fds` (descriptors or objects with fileno()) and on stop()."""
        poller = select.poll()
        for fd in (*fds, self._wake_r):
            poller.register(fd, select.POLLIN)
        return poller

    def start(self) -> None:
        self.stopping.clear()
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._target, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Set `stopping`, wake the thread and wait for it to return."""
        if self._thread is None:
            return
        self.stopping.set()
        os.write(self._wake_w, b"x")
        self._thread.join()
        os.close(self._wake_r)
        os.close(self._wake_w)
        self._thread = None
