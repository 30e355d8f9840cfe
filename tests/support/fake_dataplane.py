"""A data plane in memory, for control-plane tests: it records every committed state, can
refuse commits, follows links, and serves counters named as in csrc/counters.def (all zero).

It has no flows, paths or buckets: what those look like comes only from the real data plane
(tests/test_ctl.py shows them through `opte-fast ctl`), never from a copy that could drift.
"""
from __future__ import annotations

import os
import pathlib
import re
import threading
import time
from collections.abc import Sequence

from opte_fast.config.loader import PortSpec
from opte_fast.controlplane.state import DesiredState

COUNTERS_DEF = pathlib.Path(__file__).resolve().parents[2] / "csrc" / "counters.def"
COUNTER_NAMES = tuple(re.findall(r'^OF_(?:COUNTER|DROP)\(\w+,\s*"(\w+)"', COUNTERS_DEF.read_text(), re.M))
DROP_NAMES = frozenset(re.findall(r'^OF_DROP\(\w+,\s*"(\w+)"', COUNTERS_DEF.read_text(), re.M))


class CommitRefused(ValueError):
    """Raised by commit when a test asked for a failure."""


class FakeDataplane:
    def __init__(self, ports: Sequence[PortSpec] = ()):
        self.port_specs = tuple(ports)
        self.commits: list[DesiredState] = []
        self.drop_counters = DROP_NAMES
        self.refuse_commits = ""
        self.committed = threading.Event()  # set on every commit; tests clear it
        self.links_up: dict[str, bool] = {p.name: True for p in self.port_specs if p.role == "uplink"}
        self._link_changes: dict[str, tuple[int, int]] = {}  # port -> (changes, changed_ns)
        self._link_event_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)

    @property
    def state(self) -> DesiredState | None:
        return self.commits[-1] if self.commits else None

    def commit(self, state: DesiredState) -> None:
        if self.refuse_commits:
            raise CommitRefused(self.refuse_commits)
        uplinks = {p.name for p in self.port_specs if p.role == "uplink"}
        for r in state.routes:
            for nh in r.nexthops:
                if uplinks and nh.uplink not in uplinks:
                    raise ValueError(f"no uplink {nh.uplink}")
        self.commits.append(state)
        self.committed.set()

    def counters(self) -> dict[str, int]:
        return dict.fromkeys(COUNTER_NAMES, 0)

    def memory(self) -> dict:
        """A small instance's figures, in the shape of Dataplane.memory."""
        return {"bytes": {"heap": 512 << 20, "free": 24 << 20, "mbuf": 68 << 20, "flow": 281 << 12,
                          "prefix": 134 << 20, "snapshot": 85632},
                "v2p_bytes_per_1024": 125952,
                "capacity": {"flows_per_worker": 4096, "v2b_prefixes": 1024, "route_prefixes": 1024,
                             "v2p_entries": 131072}}

    def ports(self) -> list[dict]:
        """Only what the control plane reads of a port (the real one has its counters too)."""
        return [{"name": p.name, "role": p.role, "devargs": p.devargs} for p in self.port_specs]

    def link(self, port: str) -> dict:
        changes, changed_ns = self._link_changes.get(port, (0, 0))
        return {"watched": port in self.links_up, "up": self.links_up.get(port, False), "by_interrupt": False,
                "full_duplex": True, "speed_mbps": 10000, "changes": changes, "changed_ns": changed_ns}

    def link_event_fd(self) -> int:
        return self._link_event_fd

    def set_link(self, port: str, up: bool) -> None:
        """As the C side does on a link change: record it, then signal the eventfd."""
        self.links_up[port] = up
        self._link_changes[port] = (self._link_changes.get(port, (0, 0))[0] + 1, time.monotonic_ns())
        os.eventfd_write(self._link_event_fd, 1)

    def workers(self) -> list[dict]:
        return [{"lcore": 1, "worker": 0, "polls": 1000, "busy_polls": 250, "rx_packets": 4000, "flows": 0,
                 "flow_capacity": 4096}]
