"""Waiting for what a data plane worker or a daemon does in its own time."""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def wait_for(cond: Callable[[], T], timeout_s: float = 5.0, what: str = "condition") -> T:
    """Poll `cond` until it returns something true, and return that; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not (result := cond()):
        assert time.monotonic() < deadline, f"{what} not reached within {timeout_s} s"
        time.sleep(0.002)
    return result


def kill_daemon(pid_file: Path, timeout_s: float = 5.0) -> None:
    """SIGKILL the daemon whose pid `pid_file` holds, if any, wait until it is gone, and remove the file."""
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout_s
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    pid_file.unlink(missing_ok=True)
