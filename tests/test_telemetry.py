"""The data plane on the DPDK telemetry socket, read as operators read it: through
dpdk-telemetry.py itself (`-f <file-prefix>`, commands on stdin), and through the raw socket."""
import ipaddress
import json
import socket
import subprocess
from dataclasses import replace

from scapy.all import IP, UDP, Ether, raw

from opte_fast.controlplane.state import V2B, Tep
from tests.conftest import EAL_PREFIX
from tests.support.sled import GATEWAY_MAC, GUEST_IP4, GUEST_MAC, SWITCH_MACS, TEP, default_state, ring_sled
from tests.support.tools import needs_tools

FLOWS = 10


def telemetry(command: str) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.connect(f"/var/run/dpdk/{EAL_PREFIX}/dpdk_telemetry.v2")
        json.loads(s.recv(16384))  # the greeting: version, pid, max output length
        s.send(command.encode())
        return json.loads(s.recv(65536))[command]


def dpdk_telemetry(*commands: str) -> list:
    """Each command's reply, as dpdk-telemetry.py prints it when its stdin is not a terminal."""
    out = subprocess.run(["dpdk-telemetry.py", "-f", EAL_PREFIX], input="".join(f"{c}\n" for c in commands),
                         capture_output=True, text=True, timeout=30, check=True).stdout
    decoder, replies, at = json.JSONDecoder(), [], 0
    while (at := out.find("{", at)) >= 0:
        reply, at = decoder.raw_decode(out, at)
        replies.append(reply)
    names = [c.split(",")[0] for c in commands]  # a reply is keyed by the command without its parameter
    assert [next(iter(r)) for r in replies] == names, out
    return [r[n] for r, n in zip(replies, names)]


def guest_frames(n: int) -> list[bytes]:
    return [raw(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IP(src=str(GUEST_IP4), dst="192.0.2.1")
                / UDP(sport=1000 + i, dport=53)) for i in range(n)]


def test_counters_and_flows_are_served_on_the_telemetry_socket(eal):
    with ring_sled(n_uplinks=1) as sled:
        sled.send("guest0", guest_frames(FLOWS))
        counters = telemetry("/opte_fast/counters")
        assert counters == sled.counters()
        assert counters["rx_guest_packets"] == FLOWS and counters["flows_created"] == FLOWS
        assert telemetry("/opte_fast/flows") == {"active_flows": FLOWS, "flow_capacity": 65536,
                                                 "table_swaps": sled.dp.table_swaps()}
        assert "/opte_fast/counters" in telemetry("/")


@needs_tools("dpdk-telemetry.py")
def test_ports_nexthops_teps_drops_and_workers_through_dpdk_telemetry_py(eal):
    with ring_sled(n_uplinks=2) as sled:
        sled.send("guest0", guest_frames(FLOWS) + [b"\x00" * 10])  # and a runt: parse_truncated
        ports, nexthops, teps, drops, workers = dpdk_telemetry(
            "/opte_fast/ports", "/opte_fast/nexthops", "/opte_fast/teps", "/opte_fast/drops", "/opte_fast/workers")
        expected_ports = sled.dp.ports()
        counters = sled.counters()

    assert set(ports) == {"guest0", "uplink0", "uplink1"}
    for p in expected_ports:
        assert ports[p["name"]] == {
            "name": p["name"], "ethdev": p["ethdev"], "port_id": p["port_id"], "role": p["role"], "link": "up",
            "link_changes": 0, **{k: p[k] for k in ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_missed",
                                                    "rx_errors", "tx_errors")}}
    assert ports["guest0"]["rx_packets"] == FLOWS + 1
    assert ports["uplink0"]["tx_packets"] + ports["uplink1"]["tx_packets"] == FLOWS

    # Each nexthop as the control plane keys it (route, gateway, uplink) with the data plane's counts.
    assert sorted((n["prefix"], n["gateway"], n["uplink"], n["mac"], n["up"]) for n in nexthops.values()) == [
        ("fd00:99::/64", "fe80::1", "uplink0", SWITCH_MACS[0], 1),
        ("fd00:99::/64", "fe80::2", "uplink1", SWITCH_MACS[1], 1)]
    assert {f"nh{n['id']}" for n in nexthops.values()} == set(nexthops)
    assert sum(n["flows"] for n in nexthops.values()) == FLOWS
    for n in nexthops.values():
        assert n["packets"] == ports[n["uplink"]]["tx_packets"] == n["flows"]  # one packet per flow
    assert sorted((t["prefix"], t["addr"], t["vni"], t["up"], t["flows"]) for t in teps.values()) == [
        ("0.0.0.0/0", str(TEP), 99, 1, FLOWS), ("::/0", str(TEP), 99, 1, 0)]

    assert drops == {name: value for name, value in counters.items() if name in sled.dp.drop_counters}
    assert drops["parse_truncated"] == 1

    assert list(workers) == ["lcore1"]
    w = workers["lcore1"]
    assert (w["lcore"], w["worker"], w["rx_packets"], w["flows"], w["flow_capacity"]) == (1, 0, FLOWS + 1, FLOWS, 65536)
    assert 1 <= w["busy_polls"] < w["polls"]


@needs_tools("dpdk-telemetry.py")
def test_members_are_listed_in_pages_that_name_the_next_id(eal):
    """A reply holds at most 16 KB, so TEPs and nexthops come 48 at a time with "next"."""
    state = default_state(1)
    prefixes = [ipaddress.ip_network(f"198.51.{i}.0/24") for i in range(60)]
    state = replace(state, v2b=tuple(V2B(p, (Tep(TEP),)) for p in prefixes))
    with ring_sled(state, n_uplinks=1) as sled:
        first, = dpdk_telemetry("/opte_fast/teps")
        rest, = dpdk_telemetry(f"/opte_fast/teps,{first['next']}")
        bad, = dpdk_telemetry("/opte_fast/teps,x")
        ids = {str(p): sled.dp.tep_id(p, TEP) for p in prefixes}
    listed = {k: v for k, v in first.items() if k != "next"} | rest
    assert len(first) == 48 + 1 and "next" not in rest
    assert {t["prefix"]: t["id"] for t in listed.values()} == ids
    assert bad is None
