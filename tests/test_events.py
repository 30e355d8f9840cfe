"""The events of a run as lines on stderr: route changes applied, members down or up, flows
moved, commits refused, link changes; as text, or one JSON object a line (--log-format json)."""
from __future__ import annotations

import io
import ipaddress
import json
import os
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
from scapy.all import IP, UDP, Ether, wrpcap

from opte_fast.controlplane import events
from opte_fast.controlplane.controller import Controller
from opte_fast.controlplane.state import Route
from opte_fast.tools.sample import anycast_state
from tests.support.cli import OPTE_FAST, sled_toml
from tests.support.fake_dataplane import CommitRefused, FakeDataplane
from tests.support.tools import needs_root

FLOWS = 64


@pytest.fixture
def logged():
    """Events of this test as parsed JSON lines."""
    out = io.StringIO()
    events.configure("info", "json", out)
    try:
        yield lambda: [json.loads(line) for line in out.getvalue().splitlines()]
    finally:
        events.configure()


def strip(line: dict) -> dict:
    assert line.pop("time").endswith("Z") and line.pop("commit_ms", 0) >= 0  # a duration: only its presence
    return line


def test_a_route_change_a_member_down_and_a_refusal_are_one_line_each(logged):
    fake = FakeDataplane()
    controller = Controller(fake, anycast_state(2), ("uplink0", "uplink1"))
    assert logged() == []  # the first commit is the config, no change

    controller.set_routes(anycast_state(2, without=1).routes)
    route = anycast_state(1).routes[0]
    controller.set_routes((Route(route.prefix, (replace(route.nexthops[0], up=False),)),))
    fake.refuse_commits = "no room"
    for _ in range(2):  # retried: the cause is said once
        with pytest.raises(CommitRefused):
            controller.set_routes(anycast_state(2).routes)
    fake.refuse_commits = ""
    controller.set_routes(anycast_state(2).routes)

    assert [strip(line) for line in logged()] == [
        {"level": "info", "event": "route_applied", "message": "route fd00:99::/64 changed: fe80::1 dev uplink0",
         "prefix": "fd00:99::/64", "change": "changed", "members": ["fe80::1 dev uplink0"]},
        {"level": "info", "event": "nexthop_down", "message": "nexthop fe80::1 dev uplink0 of fd00:99::/64 down",
         "prefix": "fd00:99::/64", "member": "fe80::1 dev uplink0"},
        {"level": "warning", "event": "commit_refused", "message": "commit refused: no room", "cause": "no room"},
        {"level": "info", "event": "route_applied",
         "message": "route fd00:99::/64 changed: fe80::1 dev uplink0, fe80::2 dev uplink1", "prefix": "fd00:99::/64",
         "change": "changed", "members": ["fe80::1 dev uplink0", "fe80::2 dev uplink1"]},
        {"level": "info", "event": "nexthop_up", "message": "nexthop fe80::1 dev uplink0 of fd00:99::/64 up",
         "prefix": "fd00:99::/64", "member": "fe80::1 dev uplink0"},
        {"level": "info", "event": "commit_applied", "message": "commit applied after a refusal (no room)",
         "cause": "no room"}]


def test_tep_down_and_the_level_filter(logged):
    fake = FakeDataplane()
    controller = Controller(fake, anycast_state(2), ("uplink0", "uplink1"))
    tep = anycast_state(2).v2b[0].teps[0].addr
    controller.tep_set_state(tep, False)
    assert [(line["event"], line["message"]) for line in logged()] == [
        ("tep_down", f"tep {tep} of 0.0.0.0/0 down"), ("tep_down", f"tep {tep} of ::/0 down")]
    text = io.StringIO()
    events.configure("warning", "text", text)
    controller.tep_set_state(tep, True)  # info: below the level
    fake.refuse_commits = "no room"
    with pytest.raises(CommitRefused):
        controller.tep_set_state(tep, False)
    assert text.getvalue() == "opte-fast: commit refused: no room\n"




@needs_root("opte-fast run")
def test_a_run_withdrawing_a_path_logs_the_route_and_the_flows_it_moved_as_json(tmp_path: Path):
    """Traffic loops from a pcap over 64 flows; one path of the route is withdrawn with ctl."""
    pcap = tmp_path / "guest.pcap"
    wrpcap(str(pcap), [Ether(src="02:00:00:00:00:01", dst="a8:40:25:ff:00:01")
                       / IP(src="10.0.0.2", dst=str(ipaddress.IPv4Address("192.0.2.1") + i)) / UDP(sport=1000, dport=53)
                       for i in range(FLOWS)])
    cfg = tmp_path / "sled.toml"
    cfg.write_text(sled_toml(f"net_pcap_g,rx_pcap={pcap},infinite_rx=1",
                             {"uplink0": "net_null_a,no-rx=1", "uplink1": "net_null_b,no-rx=1"}, static_routes=True))
    sock = str(tmp_path / "ctl.sock")

    def ctl(*args: str) -> str:
        return subprocess.run([*OPTE_FAST, "ctl", "--socket", sock, *args], capture_output=True, text=True,
                              check=True, timeout=30).stdout

    run = subprocess.Popen([*OPTE_FAST, "run", "--config", str(cfg), "--file-prefix", f"oft-events-{os.getpid()}",
                            "--control-socket", sock, "--log-format", "json"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(sock) or sum(n["flows"] for n in json.loads(ctl("--json", "nexthops"))) < FLOWS:
            assert run.poll() is None and time.monotonic() < deadline, run.stderr.read()
            time.sleep(0.1)
        on_uplink1 = next(n["flows"] for n in json.loads(ctl("--json", "nexthops")) if n["uplink"] == "uplink1")
        ctl("route", "set", "fd00:99::/64", "--nexthop", "uplink0", "fe80::1", "02:aa:00:00:00:01")
        time.sleep(1.5)  # flows move on their next packet; the moves are said once a second
    finally:
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=30)
    assert run.returncode == 0, err

    ours = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert not [line for line in err.splitlines() if line.startswith("opte-fast")], err  # every line of ours is JSON
    assert [strip(e) for e in ours if e["event"] == "route_applied"] == [
        {"level": "info", "event": "route_applied", "message": "route fd00:99::/64 changed: fe80::1 dev uplink0",
         "prefix": "fd00:99::/64", "change": "changed", "members": ["fe80::1 dev uplink0"]}]
    moves = [e for e in ours if e["event"] == "flows_moved"]
    assert 0 < on_uplink1 < FLOWS
    assert sum(e["migrated"] for e in moves) == on_uplink1
    assert sum(e["rebalanced"] + e["rerouted"] for e in moves) == 0
