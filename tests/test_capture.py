"""Packet capture with DPDK's own tools on a running `opte-fast run`: dpdk-dumpcap (a secondary
process) captures the Geneve frames an uplink sends, tshark decodes them, and dpdk-proc-info
reads the same port's statistics; `opte-fast ctl capture` does the same for a guest port. The instance runs on hugepages this test reserves (secondaries
cannot attach to a --no-huge primary), which it takes without being told, since they are free, and keeps its shared
config."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

from scapy.all import IP, UDP, Ether, raw

from tests.support.cli import OPTE_FAST, sled_toml
from tests.support.hugepages import reserved_hugepages
from tests.support.netns import namespace, run
from tests.support.tools import needs_root, needs_tools

GUEST_MAC, GATEWAY_MAC, GUEST_IP = "02:00:00:00:00:01", "a8:40:25:ff:00:01", "10.0.0.2"  # sled_toml's guest
NEXTHOP_MAC, TEP = "02:aa:00:00:00:01", "fd00:99::1"
FRAMES = 8


class Output:
    """A process's stderr, read as it comes, so a test can wait for a line."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.text = ""
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        # by chunk, not line: dumpcap ends "Capturing on ..." with no newline
        while chunk := os.read(proc.stderr.fileno(), 4096):
            self.text += chunk.decode(errors="replace")

    def wait_for(self, pattern: str, proc: subprocess.Popen, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not re.search(pattern, self.text):
            assert proc.poll() is None, f"exited {proc.returncode} before {pattern!r}:\n{self.text}"
            assert time.monotonic() < deadline, f"no {pattern!r} within {timeout_s} s:\n{self.text}"
            time.sleep(0.05)


@needs_root("hugepages, taps and namespaces")
@needs_tools("dpdk-dumpcap", "dpdk-proc-info", "tshark")
def test_dumpcap_captures_an_uplinks_geneve_frames_from_a_running_instance(tmp_path: Path):
    prefix, iface = f"oft-capture-{os.getpid()}", f"ofcap{os.getpid() % 100000}"
    cfg = tmp_path / "sled.toml"
    cfg.write_text(sled_toml(f"net_tap_g,iface={iface}", {"uplink0": "net_null_u,no-rx=1"}, static_routes=True))
    pcapng, guest_pcapng = tmp_path / "uplink0.pcapng", tmp_path / "guest0.pcapng"
    with reserved_hugepages(256, "oft-capture") as huge_dir, namespace("capture") as guest_ns:
        # No --hugepages: the instance takes them because a mounted hugetlbfs has --memory-mb of them free.
        sled = subprocess.Popen([*OPTE_FAST, "run", "--config", str(cfg), "--file-prefix", prefix, "--memory-mb", "512",
                                 f"--eal-arg=--huge-dir={huge_dir}", "--control-socket", str(tmp_path / "ctl.sock")],
                                stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while not (tmp_path / "ctl.sock").exists():
                assert sled.poll() is None, f"opte-fast run exited {sled.returncode}: {sled.stderr.read()}"
                assert time.monotonic() < deadline, "opte-fast run did not start within 60 s"
                time.sleep(0.1)
            run(["ip", "link", "set", iface, "netns", guest_ns.name])
            guest_ns.sysctl(**{f"net__ipv6__conf__{iface}__disable_ipv6": 1})
            guest_ns.link_up(iface)

            dumpcap = subprocess.Popen(["dpdk-dumpcap", "--file-prefix", prefix, "-i", "net_null_u",
                                        "-c", str(FRAMES), "-w", str(pcapng)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            # its live count appears once the capture runs
            Output(dumpcap).wait_for(r"Packets captured:", dumpcap, timeout_s=30)
            guest_ns.send(iface, *(raw(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IP(src=GUEST_IP, dst=f"192.0.2.{i + 1}")
                                       / UDP(sport=4000 + i, dport=53) / b"capture") for i in range(FRAMES)))
            assert dumpcap.wait(30) == 0

            stats = run(["dpdk-proc-info", "--file-prefix", prefix, "--", "--stats"]).stdout

            # The common case in one command: ctl finds the instance's file prefix and the port's ethdev.
            ctl = subprocess.Popen([*OPTE_FAST, "ctl", "--socket", str(tmp_path / "ctl.sock"), "capture", "--port",
                                    "guest0", "--count", "4", "-w", str(guest_pcapng)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            Output(ctl).wait_for(r"Packets captured:", ctl, timeout_s=30)
            guest_ns.send(iface, *(raw(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IP(src=GUEST_IP, dst="192.0.2.77")
                                       / UDP(sport=5000 + i, dport=53)) for i in range(4)))
            assert ctl.wait(30) == 0
        finally:
            sled.send_signal(signal.SIGTERM)
            assert sled.wait(30) == 0
        assert "MB of hugepages free in " in sled.stderr.read()     # its one line on choosing them
        assert not list(huge_dir.iterdir()), "the instance left hugepage files behind"
    assert not Path(f"/var/run/dpdk/{prefix}").exists()

    fields = ["eth.dst", "ipv6.src", "ipv6.dst", "udp.dstport", "geneve.vni", "ip.dst", "udp.srcport"]
    decoded = run(["tshark", "-r", str(pcapng), "-d", "udp.port==6081,geneve", "-T", "fields",
                   "-E", "occurrence=a", "-E", "aggregator=,", *(a for f in fields for a in ("-e", f))]).stdout
    rows = [dict(zip(fields, line.split("\t"))) for line in decoded.splitlines()]
    # outer Ethernet to the nexthop, inner to boundary services; outer IPv6 sled -> TEP; Geneve VNI 99
    # (tshark prints the VNI in hex or decimal, by version)
    assert sorted((r["eth.dst"], r["ipv6.src"], r["ipv6.dst"], r["udp.dstport"], int(r["geneve.vni"], 0), r["ip.dst"])
                  for r in rows) == sorted(
        (f"{NEXTHOP_MAC},a8:40:25:77:77:77", "fd00:0:f7:101::1", TEP, "6081,53", 99, f"192.0.2.{i + 1}")
        for i in range(FRAMES))
    # proc-info's second port is the uplink (ports in config order: guest, then uplink): every frame left it
    uplink_stats = stats.split("NIC statistics for port 1")[1]
    assert re.search(rf"TX-packets:\s+{FRAMES}\b", uplink_stats), stats
    # What the guest sent, as the guest port received it.
    guest = run(["tshark", "-r", str(guest_pcapng), "-T", "fields", "-e", "ip.dst", "-e", "udp.srcport"]).stdout
    assert sorted(line.split("\t") for line in guest.splitlines()) == [["192.0.2.77", str(5000 + i)] for i in range(4)]
