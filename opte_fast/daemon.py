"""The life of `opte-fast run` once the data plane is up.

The caller builds the data plane, calls `dataplane.start()`, then `serve()`,
then `dataplane.stop()`. `serve` commits the config's tables, follows the
uplinks' links (links.py), starts route sync and the control socket, prints
stats if asked, waits for `duration_s` or SIGINT/SIGTERM, and takes
everything it started down again in reverse order.
"""
from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from .config import Config
from .control import ControlAPI, ControlServer
from .controller import Controller
from .links import Links
from .routesync import make_route_source
from .state import DataplaneAPI

EXIT_OK, EXIT_FAILED = 0, 1


def serve(config: Config, dataplane: DataplaneAPI, stop: threading.Event | None = None,
          out: TextIO = sys.stdout) -> int:
    """Run until the duration ends, a signal arrives, or `stop` is set; the exit code."""
    o = config.options
    stop = stop or threading.Event()
    restore = _handle_signals(stop)
    started: list[Callable[[], None]] = []
    try:
        # Every commit passes through `links`: a nexthop is up only while its uplink's link is.
        taps = {u: u for u in config.uplinks} if o.exception_path else None
        links = Links(dataplane, config.uplinks, taps, o.netns, follow=o.follow_link)
        controller = Controller(links, config.initial_state(), config.uplinks)
        links.start()
        started.append(links.stop)
        source = make_route_source(config, controller.set_routes)
        source.start()
        started.append(source.stop)
        server = ControlServer(o.control_socket, ControlAPI(controller, links, source, o.route_source,
                                                            o.flow_capacity))
        server.start()
        started.append(server.stop)
        _wait(stop, o.duration_s, o.stats_interval_s, dataplane, out)
        return EXIT_OK
    except (RuntimeError, ValueError) as e:  # route sync, control socket, a refused commit
        print(f"opte-fast: {e}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        for undo in reversed(started):
            undo()
        restore()


def _wait(stop: threading.Event, duration_s: float, interval_s: float, dataplane: DataplaneAPI,
          out: TextIO) -> None:
    t0 = time.monotonic()
    deadline = t0 + duration_s if duration_s else float("inf")
    next_stats = t0 + interval_s if interval_s else float("inf")
    last = dataplane.counters() if interval_s else {}
    while not stop.is_set():
        now = time.monotonic()
        if now >= deadline:
            return
        if now >= next_stats:
            last = _print_stats(dataplane, last, now - t0, interval_s, out)
            next_stats += interval_s
        wake = min(deadline, next_stats)
        stop.wait(None if wake == float("inf") else wake - now)


def _print_stats(dataplane: DataplaneAPI, last: dict[str, int], elapsed_s: float, interval_s: float,
                 out: TextIO) -> dict[str, int]:
    """One line: every counter that moved since the last line, as a rate per second."""
    now = dataplane.counters()
    moved = [(k, int(v) - int(last.get(k, 0))) for k, v in now.items() if int(v) != int(last.get(k, 0))]
    rates = " ".join(f"{k}={d / interval_s:.0f}/s" for k, d in moved) or "idle"
    print(f"[{elapsed_s:7.1f}s] {rates}", file=out, flush=True)
    return now


def _handle_signals(stop: threading.Event) -> Callable[[], None]:
    """SIGINT/SIGTERM set `stop` (main thread only); returns what restores the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    old = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    return restore
