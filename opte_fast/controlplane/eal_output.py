"""What DPDK prints while opte-fast starts, kept back so that a failure is one line.

The EAL and the PMDs print straight to the process's stdout and stderr: a bad --lcores prints
EAL's 100-line usage, a device that does not probe prints several lines. While the data plane
starts, both file descriptors point at a temporary file; on success its text is passed on to
stderr unchanged, on failure `explain` picks the lines that say what is wrong.
"""
from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import re
import sys
import tempfile
from collections.abc import Iterator

# Lines that restate a failure without its cause, or say nothing about it.
_NOISE = ("Invalid 'command line' arguments", "FATAL: Invalid", "Failed to attach device on primary process",
          "Error - exiting with code", "Cannot init EAL", "No legacy callbacks, legacy socket not created")


_MESSAGE = re.compile(r"([A-Za-z_][\w.]*(?:\(\))?): (.+)")


_libc = ctypes.CDLL(None)


@dataclasses.dataclass
class Captured:
    """What the block printed; filled in when it ends."""
    text: str = ""


@contextlib.contextmanager
def captured() -> Iterator[Captured]:
    """stdout and stderr (the file descriptors, so C's output too) go to a file for the block."""
    result = Captured()
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield result
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            _libc.fflush(None)  # C's stdio buffers (EAL's usage is printf'd): into the file, not later
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            f.seek(0)
            result.text = f.read().decode(errors="replace")


def replay(text: str) -> None:
    """Pass captured output on, as it would have been printed."""
    sys.stderr.write(text)
    sys.stderr.flush()


def explain(text: str) -> str:
    """The messages in DPDK's output that give a failure's cause, joined into one line ('' if none).

    DPDK's messages carry their source ("EAL: ", "rte_pmd_null_probe(): "); lines without one
    (EAL's usage text) and restatements of the failure are left out."""
    causes: list[str] = []
    for line in text.splitlines():
        m = _MESSAGE.match(line.strip())
        if m is None or m.group(1) == "Usage" or any(n in line for n in _NOISE):
            continue
        if m.group(2) not in causes:
            causes.append(m.group(2).rstrip("."))
    return "; ".join(causes[:3])
