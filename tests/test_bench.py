"""`opte-fast bench` end to end, short: testpmd's I/O ceiling, then opte-fast, on one small pcap.

It runs its own EAL processes (testpmd and an opte-fast subprocess), so it needs no `eal` fixture."""
import json
import os

from click.testing import CliRunner

from opte_fast.tools.bench import DPDK_RUN_DIR, bench, prefixes
from tests.support.tools import needs_tools

pytestmark = needs_tools("dpdk-testpmd")


def test_bench_json_smoke():
    result = CliRunner().invoke(bench, ["--duration-s", "1", "--flows", "1024", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    r = json.loads(result.output)
    assert r["ceiling_mpps"] > 0 and r["opte_fast_mpps"] > 0
    assert r["ratio"] > 0
    assert r["tsc_hz"] > 0 and "cost_cycles_per_packet" in r
    counters = r["opte_fast"]["counters"]
    assert counters["flows_created"] == 1024 and counters["flow_table_full"] == 0
    assert counters["tx_uplink_packets"] == counters["rx_guest_packets"] > 0
    assert r["opte_fast"]["drops"] == {}
    # Nothing left behind: the EAL run directories of both runs are gone.
    for prefix in prefixes(os.getpid()).values():
        assert not (DPDK_RUN_DIR / prefix).exists(), prefix


def test_bench_without_testpmd(monkeypatch):
    monkeypatch.setattr("opte_fast.tools.bench.TESTPMD", "dpdk-testpmd-missing")
    result = CliRunner().invoke(bench, ["--duration-s", "1", "--flows", "16"])
    assert result.exit_code == 1
    assert "install dpdk-dev" in result.output
