"""A DataplaneAPI in memory, for control-plane tests.

It records every committed state, derives TEP/nexthop paths and bucket
counts from the last one the way the real data plane lays them out (stable
ids, B buckets shared evenly among live members), and serves counters named
as in csrc/counters.def. Tests put flows in `flow_table` and counts in
`counter_values`.
"""
from __future__ import annotations

import os
import pathlib
import re
import threading
import time
from collections.abc import Sequence

from opte_fast.config.loader import PortSpec
from opte_fast.controlplane.state import DesiredState, StableIds

COUNTERS_DEF = pathlib.Path(__file__).resolve().parents[2] / "csrc" / "counters.def"
COUNTER_NAMES = tuple(re.findall(r'^OF_(?:COUNTER|DROP)\(\w+,\s*"(\w+)"', COUNTERS_DEF.read_text(), re.M))


class CommitRefused(ValueError):
    """Raised by commit when a test asked for a failure."""


class FakeDataplane:
    def __init__(self, ports: Sequence[PortSpec] = (), buckets: int = 4096):
        self.port_specs = tuple(ports)
        self.bucket_count = buckets
        self.commits: list[DesiredState] = []
        self.counter_values: dict[str, int] = {name: 0 for name in COUNTER_NAMES}
        self.flow_table: list[dict] = []
        self.refuse_commits = ""
        self.committed = threading.Event()  # set on every commit; tests clear it
        self.links_up: dict[str, bool] = {p.name: True for p in self.port_specs if p.role == "uplink"}
        self._link_changes: dict[str, tuple[int, int]] = {}  # port -> (changes, changed_ns)
        self._link_event_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._tep_ids = StableIds(0, 1024)
        self._nexthop_ids = StableIds(0, 1024)

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
        return dict(self.counter_values)

    def ports(self) -> list[dict]:
        return [{"name": p.name, "role": p.role, "devargs": p.devargs, "mac": f"02:00:00:00:00:{i:02x}",
                 "rx_packets": 10 * i, "tx_packets": 10 * i + 1, "rx_bytes": 640 * i, "tx_bytes": 640 * i + 64,
                 "errors": 0} for i, p in enumerate(self.port_specs)]

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

    def flows(self, limit: int) -> list[dict]:
        return self.flow_table[:limit]

    def paths(self) -> dict:
        s = self.state
        teps = {(t.addr, t.vni): t.up for e in s.v2b for t in e.teps}
        hops = {(n.uplink, n.gateway): n for r in s.routes for n in r.nexthops}
        tep_ids = self._tep_ids.assign(teps)
        hop_ids = self._nexthop_ids.assign(hops)
        return {
            "teps": [{"id": tep_ids[k], "addr": str(k[0]), "vni": k[1], "up": up, "flows": 0, "packets": 0,
                      "bytes": 0} for k, up in sorted(teps.items(), key=lambda kv: tep_ids[kv[0]])],
            "nexthops": [{"id": hop_ids[k], "uplink": n.uplink, "gateway": str(n.gateway), "mac": n.mac,
                          "up": n.up, "flows": 0, "packets": 0, "bytes": 0}
                         for k, n in sorted(hops.items(), key=lambda kv: hop_ids[kv[0]])],
        }

    def buckets(self) -> list[dict]:
        s = self.state
        groups = [("tep_set", str(e.prefix), [(str(t.addr), t.up) for t in e.teps]) for e in s.v2b]
        groups += [("nexthop_group", str(r.prefix), [(f"{n.uplink} {n.gateway}", n.up) for n in r.nexthops])
                   for r in s.routes]
        out = []
        for kind, prefix, members in groups:
            live = [m for m, up in members if up]
            share = {m: self.bucket_count // len(live) + (i < self.bucket_count % len(live))
                     for i, m in enumerate(live)} if live else {}
            out.append({"kind": kind, "prefix": prefix,
                        "members": [{"member": m, "up": up, "buckets": share.get(m, 0)} for m, up in members]})
        return out
