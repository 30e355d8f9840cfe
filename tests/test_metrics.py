"""Prometheus metrics from a running data plane on ring ports, scraped over HTTP and read back
with prometheus_client's own parser: the figures move exactly as the traffic says."""
from __future__ import annotations

import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from opte_fast.api.server import ControlAPI
from opte_fast.config.loader import ConfigError, load_config
from opte_fast.controlplane.controller import Controller
from opte_fast.controlplane.metrics import DataplaneCollector, MetricsServer
from opte_fast.controlplane.routesync import NoRoutes
from opte_fast.controlplane.state import mac_bytes
from opte_fast.tools.demo import guest_frame
from opte_fast.tools.sample import GUEST_MAC, TEP, anycast_state
from tests.support.cli import OPTE_FAST, sled_toml
from tests.support.sled import ring_sled

FLOWS = 64


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """Every sample as {(name, sorted labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = reply.read().decode()
    assert "# HELP opte_fast_rx_guest_packets_total " in text and "# TYPE opte_fast_drops_total counter" in text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture
def served(eal):
    state = anycast_state(2)
    with ring_sled(state) as sled:
        controller = Controller(sled.dp, state, ("uplink0", "uplink1"))
        api = ControlAPI(controller, sled.dp, NoRoutes())
        server = MetricsServer(("127.0.0.1", 0), DataplaneCollector(api, sled.dp.counter_help,
                                                                    sled.dp.drop_counters, 65536))
        try:
            yield sled, controller, api, server
        finally:
            server.stop()


def test_counters_ports_paths_and_flows_move_with_traffic(served):
    sled, controller, _, server = served
    before = scrape(server.port)
    assert before[("opte_fast_rx_guest_packets_total", ())] == 0
    assert before[("opte_fast_flow_table_capacity", ())] == 65536

    sled.send("guest0", [guest_frame(i) for i in range(FLOWS)] * 2)
    # from the guest's MAC with EtherType 0, not IP: one named drop
    sled.send("guest0", [b"\x00" * 6 + mac_bytes(GUEST_MAC) + b"\x00" * 8])
    out = [len(sled.recv(f"uplink{i}")) for i in range(2)]
    after = scrape(server.port)

    assert after[("opte_fast_rx_guest_packets_total", ())] == 2 * FLOWS + 1
    assert after[("opte_fast_tx_uplink_packets_total", ())] == 2 * FLOWS == sum(out)
    assert after[("opte_fast_flows_created_total", ())] == FLOWS
    assert after[("opte_fast_flow_table_flows", ())] == FLOWS
    assert after[("opte_fast_drops_total", (("reason", "not_ip"),))] == 1
    assert sum(v for (name, _), v in after.items() if name == "opte_fast_drops_total") == 1
    assert after[("opte_fast_port_packets_total", (("direction", "rx"), ("port", "guest0"), ("role", "guest")))] \
        == 2 * FLOWS + 1
    for i in range(2):
        labels = (("gateway", f"fe80::{i + 1}"), ("prefix", "fd00:99::/64"), ("uplink", f"uplink{i}"))
        assert after[("opte_fast_nexthop_up", labels)] == 1
        assert after[("opte_fast_nexthop_packets_total", labels)] == out[i]
        assert after[("opte_fast_nexthop_flows", labels)] == out[i] // 2
    assert after[("opte_fast_tep_flows", (("addr", str(TEP)), ("prefix", "0.0.0.0/0")))] == FLOWS
    assert after[("opte_fast_commits_total", ())] == 1 and after[("opte_fast_commits_refused_total", ())] == 0
    # The one worker (lcore 1): it polled all along, found frames at least once per burst sent, took them all.
    lcore = (("lcore", "1"),)
    polls, busy = after[("opte_fast_worker_polls_total", lcore)], after[("opte_fast_worker_busy_polls_total", lcore)]
    assert 2 <= busy - before[("opte_fast_worker_busy_polls_total", lcore)] <= 2 * FLOWS + 1
    assert polls - before[("opte_fast_worker_polls_total", lcore)] > busy - before[(
        "opte_fast_worker_busy_polls_total", lcore)]
    assert after[("opte_fast_worker_rx_packets_total", lcore)] == 2 * FLOWS + 1
    assert after[("opte_fast_worker_flows", lcore)] == FLOWS

    controller.set_routes(anycast_state(2, without=1).routes)  # a switch goes away
    sled.send("guest0", [guest_frame(i) for i in range(FLOWS)])
    moved = scrape(server.port)
    gone = (("gateway", "fe80::2"), ("prefix", "fd00:99::/64"), ("uplink", "uplink1"))
    assert (("opte_fast_nexthop_up", gone)) not in moved  # withdrawn: no longer a member
    assert moved[("opte_fast_flows_migrated_total", ())] == out[1] // 2
    assert moved[("opte_fast_commits_total", ())] == 2
    assert moved[("opte_fast_commit_seconds_max", ())] > 0  # a duration: only that one was measured


class RouteSyncCounts:
    """A route source as the control API reads it: route sync's stats, nothing else."""

    def stats(self) -> dict:
        return {"source": "netlink", "netns": None, "host_routes": 1005, "events": 7, "reads": 9, "commits": 3,
                "commit_failures": 1, "errors": 0, "latency_us": {"samples": 3, "p50": 30.0, "p99": 90.0, "max": 90.0}}


def test_route_sync_counts_are_counters_the_table_size_and_latency_gauges(served):
    _, _, api, server = served
    api.route_source = RouteSyncCounts()
    m = scrape(server.port)
    assert {k: v for k, v in m.items() if k[0].startswith("opte_fast_route_sync")} == {
        ("opte_fast_route_sync_events_total", ()): 7, ("opte_fast_route_sync_reads_total", ()): 9,
        ("opte_fast_route_sync_commits_total", ()): 3, ("opte_fast_route_sync_commit_failures_total", ()): 1,
        ("opte_fast_route_sync_errors_total", ()): 0, ("opte_fast_route_sync_host_routes", ()): 1005,
        ("opte_fast_route_sync_latency_seconds", (("quantile", "0.5"),)): 30e-6,
        ("opte_fast_route_sync_latency_seconds", (("quantile", "0.99"),)): 90e-6,
        ("opte_fast_route_sync_latency_seconds", (("quantile", "1"),)): 90e-6}


def test_metrics_listen_takes_an_address_and_port():
    config = load_config(None, {"underlay_addr": "fd00:1::1", "metrics_listen": "[::1]:9464"})
    assert config.options.metrics_listen == ("::1", 9464)
    with pytest.raises(ConfigError, match=r"--metrics-listen: expected ADDR:PORT like 127.0.0.1:9464 or \[::1\]:9464"):
        load_config(None, {"underlay_addr": "fd00:1::1", "metrics_listen": "localhost:9464"})


def test_opte_fast_run_serves_metrics_until_it_stops(tmp_path):
    with socket.socket() as s:  # a free port for the run to take
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "c.toml"
    cfg.write_text(sled_toml("net_null0,no-rx=1", {"uplink0": "net_null1,no-rx=1"}, static_routes=True))
    proc = subprocess.Popen([*OPTE_FAST, "run", "--config", str(cfg), "--file-prefix", f"oft-metrics-{os.getpid()}",
                             "--control-socket", str(tmp_path / "ctl.sock"), "--metrics-listen", f"127.0.0.1:{port}"],
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                metrics = scrape(port)
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr and proc.stderr.read()
                time.sleep(0.05)
        assert metrics[("opte_fast_nexthop_up", (("gateway", "fe80::1"), ("prefix", "fd00:99::/64"),
                                                 ("uplink", "uplink0")))] == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    with pytest.raises(OSError):
        scrape(port)


DASHBOARD = pathlib.Path(__file__).resolve().parents[1] / "docs" / "grafana" / "opte-fast.json"


def test_the_grafana_dashboard_queries_only_metrics_a_running_data_plane_serves(served):
    sled, _, api, server = served
    api.route_source = RouteSyncCounts()  # route sync's figures, as a netlink source serves them
    sled.send("guest0", [guest_frame(i) for i in range(FLOWS)])
    served_names = {name for name, _ in scrape(server.port)}
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", ())]
    queried = {name for e in exprs for name in re.findall(r"\bopte_fast_\w+", e)}
    assert {"opte_fast_nexthop_flows", "opte_fast_flows_migrated_total", "opte_fast_drops_total"} <= queried
    assert queried - served_names == set()
    assert all('instance=~"$instance"' in e for e in exprs)  # one host or several, as the variable says
