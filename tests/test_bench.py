"""`opte-fast bench`, short: a tiny run of each case (outbound with 1400-byte frames, inbound, new
flows, 2 workers), with Open vSwitch beside it, checking that every figure is there and sane. The
figures are not timed pass/fail: the machine is shared, only their presence and consistency count.

It runs its own EAL processes (testpmd, opte-fast and OVS subprocesses), so it needs no `eal` fixture."""
import json
import os
import struct
import subprocess

import click
import pytest
from click.testing import CliRunner

from opte_fast.tools import bench_ovs
from opte_fast.tools.bench import DPDK_RUN_DIR, bench, parse_perf, plan, prefixes
from opte_fast.tools.bench_report import Case, line_rate_pps, print_table, standard_table
from opte_fast.tools.bench_traffic import OUTER_LEN, Traffic
from tests.support.tools import needs_tools

TINY = ["--duration-s", "1", "--warmup-s", "0.5", "--repeat", "1", "--json"]


def run_bench(*args: str) -> dict:
    result = CliRunner().invoke(bench, [*TINY, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def nothing_left_behind() -> None:
    for name in prefixes(os.getpid()).values():
        assert not (DPDK_RUN_DIR / name).exists(), name
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert prefixes(os.getpid())["ovs"] not in namespaces
    vswitchds = subprocess.run(["pgrep", "-f", prefixes(os.getpid())["ovs"]], capture_output=True, text=True).stdout
    assert vswitchds == ""


def check_common(s: dict, allowed_drops: set[str] = frozenset()) -> None:
    assert s["runs"] == 1
    assert s["ceiling_mpps"] > 0 and s["opte_fast_mpps"] > 0
    assert s["tsc_hz"] > 0 and s["own_cost_cycles_per_packet"] is not None
    assert s["opte_fast_cycles_per_packet"] > 0 and s["ceiling_cycles_per_packet"] > 0
    assert s["own_cost_cycles_per_packet"] == pytest.approx(
        s["opte_fast_cycles_per_packet"] - s["ceiling_cycles_per_packet"], abs=0.2)
    assert set(s["drops"]) <= allowed_drops, s["drops"]
    # Gbit/s and line-rate cores follow from the rate and the frame sizes.
    assert s["opte_fast_gbps"] == pytest.approx(s["opte_fast_mpps"] * s["frame_bytes"] * 8 / 1e3, abs=0.02)
    assert s["uplink_frame_bytes"] == s["frame_bytes"] + OUTER_LEN
    assert s["cores_for_line_rate"] == pytest.approx(
        s["line_rate_mpps"] / (s["opte_fast_mpps"] / s["workers"]), rel=0.01, abs=0.1)
    # The flow table's allocation, per flow slot: at least the entry itself, and not absurd.
    assert 64 < s["bytes_per_flow"] < 4096


@needs_tools("dpdk-testpmd", "ip", str(bench_ovs.VSWITCHD_DPDK))
def test_bench_each_case_with_ovs():
    out = run_bench("--with-ovs", "--flows", "1024", "--frame-bytes", "1400", "--direction", "outbound,inbound")
    assert out["notes"] == [n for n in out["notes"] if n.startswith("perf stat:")]
    outbound, inbound = out["cases"]
    for s in (outbound, inbound):
        check_common(s)
        assert s["ovs_mpps"] > 0
        assert s["opte_fast_to_ovs"] == pytest.approx(s["opte_fast_mpps"] / s["ovs_mpps"], rel=0.01)
        # the difference of two readings of OVS's counter; how many depends on its handler threads keeping up
        assert s["ovs_failed_upcalls"] >= 0
    # Outbound: every one of the 1024 flows in the table, every frame received sent encapsulated.
    assert outbound["direction"] == "outbound" and outbound["frame_bytes"] == 1400
    assert outbound["flows_held"] == 1024 and outbound["counters"]["flows_created"] == 1024
    assert outbound["counters"]["flow_table_full"] == 0
    assert outbound["line_rate_mpps"] == pytest.approx(line_rate_pps(1470) / 1e6, abs=0.01)
    # Inbound keeps no flow state: decapsulated frames go to the guest.
    assert inbound["flows_held"] == 0 and inbound["counters"]["tx_guest_packets"] > 0
    assert inbound["counters"]["tx_uplink_packets"] == 0
    nothing_left_behind()

    # The text table prints a row per case, like issue #12's.
    printed = CliRunner().invoke(click.command()(lambda: print_table(out)))
    assert "| outbound, 1400 B | 1,024 | 4 KB pages | " in printed.output
    assert "| inbound (decap), 1400 B | 1,024 | 4 KB pages | " in printed.output


@needs_tools("dpdk-testpmd")
def test_bench_new_flows_and_two_workers(monkeypatch):
    flows = 262144
    out = run_bench("--flows", str(flows), "--direction", "new-flows")
    (new_flows,) = out["cases"]
    check_common(new_flows)
    # Every packet a new flow: each sets up its flow or, once no entry is free, is sent statelessly.
    # The window runs from 10% to 90% full, read every 2 ms; a reader preempted past 100% counts
    # stateless frames in it too (at 3 Mpps the last 10% take 9 ms). Its two counters are read a few
    # microseconds apart: 1% is that skew, not a tolerance on loss.
    share = new_flows["new_flows_stateless_share"]
    assert 0 <= share < 0.5 and new_flows["counters"]["flow_table_full"] >= share * flows * 0.7
    assert new_flows["new_flows_per_s_per_worker"] == pytest.approx(
        new_flows["opte_fast_mpps"] * 1e6 * (1 - share), rel=0.01)
    assert new_flows["flows_held"] >= flows * 9 // 10

    # Where the OVS package is absent, --with-ovs says so in one line and measures the rest.
    monkeypatch.setattr(bench_ovs, "VSWITCHD_DPDK", bench_ovs.VSWITCHD_DPDK.with_name("absent"))
    out = run_bench("--with-ovs", "--flows", "4096", "--workers", "2")
    (two,) = out["cases"]
    check_common(two, allowed_drops={"handoff_full"})   # a starved second worker may fill its handoff ring
    assert two["workers"] == 2 and two["flows_held"] == 4096 and "ovs_mpps" not in two
    assert any(n.startswith("Open vSwitch skipped: ") and "apt-get install openvswitch-switch-dpdk" in n
               for n in out["notes"])
    if len(os.sched_getaffinity(0)) < 3:
        assert any("not meaningful" in n for n in out["notes"])
    nothing_left_behind()


@needs_tools("dpdk-testpmd")
def test_bench_traced_cases_beside_their_untraced_twin():
    out = run_bench("--flows", "1024", "--direction", "inbound", "--trace", "miss,all")
    off, miss, every = out["cases"]
    assert [s["trace"] for s in out["cases"]] == ["off", "miss", "all"]
    for s in out["cases"]:
        check_common(s)
        assert s["counters"]["tx_guest_packets"] > 0
    assert "trace_cost_ratio" not in off
    for s in (miss, every):  # window pairs in the process, not armed and armed: the median of their ratios
        lo, hi = s["trace_cost_ratio_range"]
        assert s["trace_pairs"] == 6 and 0 < lo <= s["trace_cost_ratio"] <= hi
        assert s["trace_cycles_per_packet_not_armed"] > 0 and s["trace_cycles_per_packet_armed"] > 0
    # A match no frame meets records nothing; one that every frame meets records each (read or refused).
    assert (miss["trace_records_read"], miss["trace_records_lost"]) == (0, 0)
    # How many the full ring refused depends on how far the reader fell behind: their sum is checked below.
    assert every["trace_records_read"] > 0
    # Armed before the window and stopped after it (and in the armed windows of the pairs): every frame
    # of the window (at least 0.95 s) is one.
    traced = every["trace_records_read"] + every["trace_records_lost"]
    assert every["opte_fast_mpps_wall"] * 1e6 * 0.9 < traced <= every["counters"]["tx_guest_packets"]
    nothing_left_behind()

    printed = CliRunner().invoke(click.command()(lambda: print_table(out))).output
    assert "| inbound (decap), 64 B, trace armed, every frame matches | 1,024 | 4 KB pages | " in printed
    assert f"- inbound, 1K flows, 64 B, 4 KB pages, 1 worker, trace armed, no frame matches: " \
           f"{miss['trace_cost_ratio']:.3f}× ({miss['trace_cost_ratio_range'][0]:.3f} to " in printed


def test_bench_without_testpmd(monkeypatch):
    monkeypatch.setattr("opte_fast.tools.bench.TESTPMD", "dpdk-testpmd-missing")
    result = CliRunner().invoke(bench, ["--duration-s", "1", "--flows", "16"])
    assert result.exit_code == 1
    assert "install dpdk-dev" in result.output


def test_plan_is_the_standard_table_or_the_product_of_the_options():
    table = standard_table(hugepages=True)
    assert Case("outbound", 1 << 20, 64, 1, True) in table and Case("new-flows", 1 << 20, 64, 1, False) in table
    assert {c.frame_bytes for c in table} == {64, 512, 1400} and {c.workers for c in table} == {1, 2}
    assert {c.direction for c in table} == {"outbound", "inbound", "new-flows"}
    assert plan(None, None, None, None, None, huge_default=True) == table
    assert plan([1024, 4 << 20], None, ["inbound"], None, ["4k", "huge"], huge_default=True) == [
        Case("inbound", 1024, 64, 1, False), Case("inbound", 1024, 64, 1, True),
        Case("inbound", 4 << 20, 64, 1, False), Case("inbound", 4 << 20, 64, 1, True)]
    # Each traced row beside its untraced twin, in the standard table and in a plan that asks for a trace.
    assert {(c.direction, c.trace) for c in table if c.trace != "off"} == {
        (d, t) for d in ("outbound", "inbound") for t in ("miss", "all")}
    assert all(c.untraced() in table for c in table)
    assert plan(None, None, None, None, None, huge_default=True, traces=["all"]) == [
        Case("outbound", 65536, 64, 1, False), Case("outbound", 65536, 64, 1, False, "all")]


def test_bad_case_options_are_refused():
    for args, message in ((["--flows", "0"], "--flows: 0 is outside"), (["--workers", "3"], "1 or 2 workers"),
                          (["--pages", "1g"], "expected some of 4k, huge"), (["--flows", "1k"], "numbers"),
                          (["--trace", "some"], "expected some of off, miss, all"),
                          (["--direction", "new-flows", "--trace", "all"], "new flows are not traced")):
        result = CliRunner().invoke(bench, args)
        assert result.exit_code == 2 and message in result.output, result.output


def test_perf_stat_csv():
    csv = ("123456,,cycles,1000,100.00,,\n7890,,instructions,1000,100.00,0.06,insn per cycle\n"
           "<not supported>,,cache-misses,0,100.00,,\n<not counted>,,dTLB-load-misses:u,0,0.00,,\n")
    assert parse_perf(csv) == {"cycles": 123456, "instructions": 7890, "cache-misses": None,
                               "dTLB-load-misses": None}


def test_traffic_frames_carry_flow_i_where_the_plugin_rewrites_it():
    for direction in ("outbound", "inbound"):
        t = Traffic(direction, 64, 1 << 20)
        spec = dict(kv.split("=") for kv in t.plugin_spec().split())
        frame = t.frame((1 << 17) + 5)
        addr, ip, port = int(spec["addr"]), int(spec["ip"]), int(spec["port"])
        assert frame[addr:addr + 4] == bytes([198, 18, 0, 5])
        assert struct.unpack("!H", frame[port:port + 2])[0] == 1025
        assert frame[ip] == 0x45 and len(frame) == (64 if direction == "outbound" else 64 + OUTER_LEN)
    assert Traffic("outbound", 64, 0).plugin_spec().split()[1:3] == ["flows=0", "first=4096"]
