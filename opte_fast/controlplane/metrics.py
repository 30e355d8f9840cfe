"""Prometheus metrics on `--metrics-listen ADDR:PORT`: the figures of `opte-fast ctl stats`,
`nexthops` and `teps`, read from the same ControlAPI at each scrape, in the text exposition
format written by prometheus_client (the reference implementation of the format).

Names are stable and documented in the README: every data-plane counter of csrc/counters.def as
`opte_fast_<name>_total`, except drop reasons, which are one family `opte_fast_drops_total` with a
`reason` label, so that a dashboard sums or splits them without knowing the list.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from .bfd import bfd_metrics

PREFIX = "opte_fast"


class DataplaneCollector(Collector):
    """One scrape: a consistent read of counters, ports, paths and route sync."""

    def __init__(self, api: Any, counter_help: dict[str, str], drop_counters: set[str], flow_capacity: int):
        self.api = api
        self.counter_help = counter_help
        self.drop_counters = drop_counters
        self.flow_capacity = flow_capacity

    def collect(self) -> Iterator[Metric]:
        stats = self.api.stats()
        yield from self._counters(stats["counters"])
        yield from _ports(stats["ports"])
        yield from _workers(stats["workers"])
        yield from _paths("nexthop", self.api.nexthops(), ("prefix", "uplink", "gateway"))
        yield from _paths("tep", self.api.teps(), ("prefix", "addr"))
        fill = GaugeMetricFamily(f"{PREFIX}_flow_table_flows", "active flows, summed over workers")
        fill.add_metric([], self.api.dataplane.flow_count())
        yield fill
        cap = GaugeMetricFamily(f"{PREFIX}_flow_table_capacity", "flow table entries per worker")
        cap.add_metric([], self.flow_capacity)
        yield cap
        yield from _commits(self.api.controller.commit_stats())
        yield from _route_sync(stats["route_sync"])
        yield from bfd_metrics(self.api.bfd(), PREFIX)

    def _counters(self, counters: dict[str, int]) -> Iterator[Metric]:
        drops = CounterMetricFamily(f"{PREFIX}_drops", "packets dropped, by reason (csrc/counters.def)",
                                    labels=["reason"])
        for name, value in counters.items():
            if name in self.drop_counters:
                drops.add_metric([name], value)
            else:
                yield CounterMetricFamily(f"{PREFIX}_{name}", self.counter_help.get(name, name), value=value)
        yield drops


def _ports(ports: list[dict]) -> Iterator[Metric]:
    labels = ["port", "role"]
    families = {
        "packets": CounterMetricFamily(f"{PREFIX}_port_packets", "packets per port and direction",
                                       labels=[*labels, "direction"]),
        "bytes": CounterMetricFamily(f"{PREFIX}_port_bytes", "bytes per port and direction",
                                     labels=[*labels, "direction"]),
        "missed": CounterMetricFamily(f"{PREFIX}_port_missed", "frames the port dropped for want of room (imissed)",
                                      labels=labels),
        "errors": CounterMetricFamily(f"{PREFIX}_port_errors", "receive and transmit errors per port",
                                      labels=[*labels, "direction"]),
    }
    for p in ports:
        key = [p["name"], p["role"]]
        for d in ("rx", "tx"):
            families["packets"].add_metric([*key, d], p[f"{d}_packets"])
            families["bytes"].add_metric([*key, d], p[f"{d}_bytes"])
            families["errors"].add_metric([*key, d], p[f"{d}_errors"])
        families["missed"].add_metric(key, p["rx_missed"])
    yield from families.values()


def _workers(workers: list[dict]) -> Iterator[Metric]:
    """The busy share of a worker over an interval is rate(busy_polls) / rate(polls)."""
    polls = CounterMetricFamily(f"{PREFIX}_worker_polls", "poll loop iterations of the worker", labels=["lcore"])
    busy = CounterMetricFamily(f"{PREFIX}_worker_busy_polls", "poll loop iterations that found frames",
                               labels=["lcore"])
    packets = CounterMetricFamily(f"{PREFIX}_worker_rx_packets", "frames the worker received from its queues",
                                  labels=["lcore"])
    flows = GaugeMetricFamily(f"{PREFIX}_worker_flows", "active flows in the worker's flow table", labels=["lcore"])
    for w in workers:
        key = [str(w["lcore"])]
        polls.add_metric(key, w["polls"])
        busy.add_metric(key, w["busy_polls"])
        packets.add_metric(key, w["rx_packets"])
        flows.add_metric(key, w["flows"])
    yield from (polls, busy, packets, flows)


def _paths(kind: str, members: list[dict], labels: tuple[str, ...]) -> Iterator[Metric]:
    up = GaugeMetricFamily(f"{PREFIX}_{kind}_up", f"1 if the {kind} is usable", labels=list(labels))
    flows = GaugeMetricFamily(f"{PREFIX}_{kind}_flows", f"flows pinned to the {kind}", labels=list(labels))
    packets = CounterMetricFamily(f"{PREFIX}_{kind}_packets", f"packets sent through the {kind}", labels=list(labels))
    nbytes = CounterMetricFamily(f"{PREFIX}_{kind}_bytes", f"bytes sent through the {kind}", labels=list(labels))
    for m in members:
        key = [str(m[label]) for label in labels]
        up.add_metric(key, 1 if m["up"] else 0)
        flows.add_metric(key, m["flows"])
        packets.add_metric(key, m["packets"])
        nbytes.add_metric(key, m["bytes"])
    yield from (up, flows, packets, nbytes)


def _commits(c: dict) -> Iterator[Metric]:
    yield CounterMetricFamily(f"{PREFIX}_commits", "table commits applied", value=c["commits"])
    yield CounterMetricFamily(f"{PREFIX}_commits_refused", "table commits the data plane refused",
                              value=c["refused"])
    yield CounterMetricFamily(f"{PREFIX}_commit_seconds", "time spent in commits, seconds", value=c["seconds"])
    yield GaugeMetricFamily(f"{PREFIX}_commit_seconds_max", "the longest commit so far, seconds",
                            value=c["seconds_max"])


# Route sync's counts (netlink source), by name: each counts up from the start.
ROUTE_SYNC_COUNTS = {
    "events": "kernel events received", "reads": "kernel tables read again",
    "commits": "commits route sync made", "commit_failures": "commits the data plane refused (retried)",
    "errors": "failures to read the kernel's tables (retried)",
}


def _route_sync(rs: dict) -> Iterator[Metric]:
    """Route sync's counts, the host table's size, and its event-to-commit latency."""
    for key, help_text in ROUTE_SYNC_COUNTS.items():
        if key in rs:
            yield CounterMetricFamily(f"{PREFIX}_route_sync_{key}", f"route sync: {help_text}", value=rs[key])
    if "host_routes" in rs:
        yield GaugeMetricFamily(f"{PREFIX}_route_sync_host_routes", "routes in the host table route sync follows",
                                value=rs["host_routes"])
    latency = rs.get("latency_us") or {}
    lat = GaugeMetricFamily(f"{PREFIX}_route_sync_latency_seconds",
                            "kernel event to data-plane commit, over recent events", labels=["quantile"])
    for q, key in (("0.5", "p50"), ("0.99", "p99"), ("1", "max")):
        if latency.get(key) is not None:
            lat.add_metric([q], latency[key] / 1e6)
    yield lat


class MetricsServer:
    """Serves the collector over HTTP on a thread of its own until stop()."""

    def __init__(self, listen: tuple[str, int], collector: Collector):
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        try:
            self._server, self._thread = start_http_server(listen[1], listen[0], registry=self.registry)
        except OSError as e:
            raise RuntimeError(f"cannot serve metrics on {listen[0]}:{listen[1]}: {e.strerror or e}") from None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
