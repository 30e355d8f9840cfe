"""The life of `opte-fast run` once the data plane is up.

The caller builds the data plane, calls `dataplane.start()`, then `serve()`,
then `dataplane.stop()`. `serve` commits the config's tables, follows the
uplinks' links (links.py), starts route sync and the control socket, prints
stats if asked, waits for `duration_s` or SIGINT/SIGTERM, and takes
everything it started down again in reverse order.
"""
from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from ..api.server import ControlAPI, ControlServer
from ..config.loader import Config
from . import events
from .bfd import Bfd
from .controller import Controller
from .events import FlowMoves
from .links import Links
from .metrics import DataplaneCollector, MetricsServer
from .routesync import make_route_source
from .state import DataplaneAPI

EXIT_OK, EXIT_FAILED = 0, 1
STOP_TIMEOUT_S = 10.0  # a stop that takes longer is forced (opte-fast run --help says so)


def serve(config: Config, dataplane: DataplaneAPI, stop: threading.Event | None = None,
          out: TextIO = sys.stdout) -> int:
    """Run until the duration ends, `stop` is set, or (when serve makes its own `stop`) a signal
    arrives; the exit code. A caller that passes `stop` handles signals itself."""
    o = config.options
    restore = (lambda: None) if stop else handle_signals(stop := threading.Event())
    started: list[Callable[[], None]] = []
    try:
        # Every commit passes through `links`: a nexthop is up only while its uplink's link is.
        taps = {u: u for u in config.uplinks} if o.exception_path else None
        # ... and through `bfd`: a nexthop or TEP is up only while its BFD session has not failed.
        bfd = Bfd(dataplane, config.bfd)
        links = Links(bfd, config.uplinks, taps, o.netns, follow=o.follow_link)
        controller = Controller(links, config.initial_state(), config.uplinks)
        links.start()
        started.append(links.stop)
        bfd.start()
        started.append(bfd.stop)
        source = make_route_source(config, controller)
        source.start()
        started.append(source.stop)
        api = ControlAPI(controller, links, source, o.file_prefix, o.hugepages)
        server = ControlServer(o.control_socket, api)
        server.start()
        started.append(server.stop)
        moves = FlowMoves(dataplane.counters)
        moves.start()
        started.append(moves.stop)
        if o.metrics_listen:
            metrics = MetricsServer(o.metrics_listen, DataplaneCollector(
                api, dataplane.counter_help, dataplane.drop_counters, o.flow_capacity))
            started.append(metrics.stop)
        _wait(stop, o.duration_s, o.stats_interval_s, dataplane, out)
        return EXIT_OK
    except (RuntimeError, ValueError) as e:  # route sync, control socket, a refused commit
        events.event("failed", str(e), logging.ERROR)
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


def handle_signals(stop: threading.Event, force: Callable[[], None] | None = None,
                   stop_timeout_s: float = STOP_TIMEOUT_S) -> Callable[[], None]:
    """SIGINT/SIGTERM set `stop` (main thread only); returns what restores the old handlers.

    With `force`, a stop is bounded: a second signal, or `stop_timeout_s` after the first
    without the process having exited, calls `force` (which must end the process) from a timer
    thread, so a stop stuck in C or on a client still ends."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    watchdog: list[threading.Timer] = []

    def on_signal(signum: int, _frame: object) -> None:
        if force is not None and stop.is_set():
            force()
        stop.set()
        if force is not None and not watchdog:
            watchdog.append(threading.Timer(stop_timeout_s, force))
            watchdog[0].daemon = True
            watchdog[0].start()
    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    return restore
