"""The events of a run, one line each, on stderr for journald: route changes applied, members
(TEPs, nexthops) down or up, flows moved, commits refused, link changes.

`--log-format text` writes `opte-fast: <message>`, as every line of opte-fast always has (journald
adds the time and the unit); `--log-format json` writes one JSON object a line, with `time`
(RFC 3339, UTC), `level`, `event` (a stable name), `message` and the event's own fields, for a
log shipper to index without parsing prose. `--log-level` drops the lines below it.
"""
from __future__ import annotations

import datetime
import json
import logging
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

LOGGER = logging.getLogger("opte_fast")
LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"opte-fast: {record.getMessage()}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.datetime.fromtimestamp(record.created, datetime.UTC)
                .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "level": record.levelname.lower(), "event": getattr(record, "event", "message"),
                "message": record.getMessage()}
        line.update(getattr(record, "fields", {}))
        return json.dumps(line, default=str)


class _Stderr(logging.StreamHandler):
    """Whatever sys.stderr is when a line is written (a test may have replaced it since)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure(level: str = "info", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Send events to `stream` (default: stderr) in `fmt`, from `level` up; replaces any earlier setup."""
    handler = logging.StreamHandler(stream) if stream is not None else _Stderr()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    LOGGER.handlers[:] = [handler]
    LOGGER.setLevel(level.upper())
    LOGGER.propagate = False


def event(name: str, message: str, level: int = logging.INFO, **fields: Any) -> None:
    """One event: `name` is its stable name in JSON, `message` the line a person reads."""
    if not LOGGER.handlers:  # not configured (serve() called directly): text on stderr, as configured by default
        configure()
    LOGGER.log(level, message, extra={"event": name, "fields": fields})


def say(log: TextIO | None, name: str, message: str, level: int = logging.INFO, **fields: Any) -> None:
    """An event, or with `log` given (tests), the text line written there."""
    if log is not None:
        print(f"opte-fast: {message}", file=log, flush=True)
    else:
        event(name, message, level, **fields)


MOVES = ("flows_migrated", "flows_rebalanced", "flows_rerouted")


class FlowMoves:
    """Flows move in the data plane on their next packet, one by one; this says so once a
    period in which some moved: how many migrated (their member went down), were rebalanced
    (onto a member back up) and rerouted (a routing change gave them another path)."""

    def __init__(self, counters: Callable[[], dict[str, int]], period_s: float = 1.0):
        self._counters = counters
        self._period_s = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flow-moves", daemon=True)

    def start(self) -> None:
        self._last = self._moves()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._report(self._last)  # what moved since the last line

    def _run(self) -> None:
        while not self._stop.wait(self._period_s):
            self._last = self._report(self._last)

    def _moves(self) -> dict[str, int]:
        counters = self._counters()  # every counter, summed over the workers: read once
        return {k: counters[k] for k in MOVES}

    def _report(self, last: dict[str, int]) -> dict[str, int]:
        now = self._moves()
        moved = {k[len("flows_"):]: now[k] - last[k] for k in MOVES}
        if any(moved.values()):
            event("flows_moved", "flows moved: " + ", ".join(f"{n} {k}" for k, n in moved.items()), **moved)
        return now
