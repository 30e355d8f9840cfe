"""The data plane's counters through DPDK telemetry: what dpdk-telemetry.py and exporters read."""
import json
import socket

from scapy.all import IP, UDP, Ether, raw

from tests.conftest import EAL_PREFIX
from tests.support.sled import GATEWAY_MAC, GUEST_IP4, GUEST_MAC, ring_sled


def telemetry(command: str) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.connect(f"/var/run/dpdk/{EAL_PREFIX}/dpdk_telemetry.v2")
        json.loads(s.recv(16384))  # the greeting: version, pid, max output length
        s.send(command.encode())
        return json.loads(s.recv(65536))[command]


def test_counters_and_flows_are_served_on_the_telemetry_socket(eal):
    frames = [raw(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IP(src=str(GUEST_IP4), dst="192.0.2.1")
                  / UDP(sport=1000 + i, dport=53)) for i in range(10)]
    with ring_sled(n_uplinks=1) as sled:
        sled.send("guest0", frames)
        counters = telemetry("/opte_fast/counters")
        assert counters == sled.counters()
        assert counters["rx_guest_packets"] == 10 and counters["flows_created"] == 10
        assert telemetry("/opte_fast/flows") == {"active_flows": 10, "table_swaps": sled.dp.table_swaps()}
        assert "/opte_fast/counters" in telemetry("/")
