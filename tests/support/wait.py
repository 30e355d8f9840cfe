"""Waiting for what a data plane worker or a daemon does in its own time."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(cond: Callable[[], T], timeout_s: float = 5.0, what: str = "condition") -> T:
    """Poll `cond` until it returns something true, and return that; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not (result := cond()):
        assert time.monotonic() < deadline, f"{what} not reached within {timeout_s} s"
        time.sleep(0.002)
    return result
