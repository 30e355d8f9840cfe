"""A process's threads by name, from /proc: the forwarding threads whose CPU time the bench and the
tests measure (DPDK's lcore threads, Open vSwitch's PMD threads)."""
from __future__ import annotations

import re
from pathlib import Path


def threads_named(pid: int | str, name: re.Pattern) -> dict[int, re.Match]:
    """Thread id to the match of `name` in its comm, for the threads of `pid` whose comm matches.
    A thread that ends while the list is read is not one of them."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            m = name.search((task / "comm").read_text().strip())
        except OSError:
            continue
        if m:
            found[int(task.name)] = m
    return found
