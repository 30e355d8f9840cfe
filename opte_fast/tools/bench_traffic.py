"""The bench's traffic, the same for the I/O ceiling, opte-fast and Open vSwitch: a looped pcap of at
most `TEMPLATE_FRAMES` frames (`net_pcap`, `infinite_rx=1`) whose flow fields are rewritten per packet
by the bench's DPDK plugin (csrc/bench/trafficgen.c, loaded with EAL `-d` by all three), so any number
of flows needs only the pcap's few thousand mbufs.

Flow i has the IPv4 address 198.18.0.0 + i mod 2^17 and the UDP source port 1024 + i / 2^17:
the destination of a guest's frame (outbound), or the source of an internet host's frame inside
Geneve (inbound). New-flow runs never repeat a flow.
"""
from __future__ import annotations

import ctypes
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from ..controlplane.state import mac_bytes
from .sample import GATEWAY_MAC, GUEST_IP4, GUEST_MAC, GUEST_VNI, TEP, UNDERLAY, ipv4_checksum, switch_mac

TEMPLATE_FRAMES = 4096
ADDR_BASE = 0xC6120000          # 198.18.0.0, RFC 2544's benchmarking range
ADDR_BITS = 17
MAX_FLOWS = (1 << ADDR_BITS) * (65536 - 1024)
TRAFFIC_ENV = "OPTE_FAST_BENCH_TRAFFIC"
SOURCE_DEVICE = "net_pcap0"
SINK_DEVARGS = "net_null0,no-rx=1"
GENEVE_PORT = 6081
OUTER_LEN = 14 + 40 + 8 + 8     # Ethernet, IPv6, UDP, Geneve without options
# Open vSwitch decapsulates only frames to its bridge's own MAC; opte-fast's uplinks take any.
PEER_BRIDGE_MAC = "02:0f:be:0c:00:01"


def plugin_path() -> Path:
    """The traffic plugin, built beside the data plane's extension by setup.py."""
    here = Path(__file__).resolve().parents[1]
    found = sorted(here.glob("_bench_traffic*.so"))
    if not found:
        raise FileNotFoundError(f"the bench's traffic plugin is not built in {here}: run bash ci/install.sh")
    return found[0]


class TxWatch:
    """When the data plane in this process last handed a Geneve frame to device `device`'s transmit, and how
    many (csrc/bench/txwatch.c): a failover bench's "last packet toward the failed switch" at full rate."""

    def __init__(self, device: str):
        self._lib = ctypes.CDLL(str(plugin_path()))
        self._lib.opte_fast_bench_watch_last_ns.restype = ctypes.c_uint64
        self._lib.opte_fast_bench_watch_frames.restype = ctypes.c_uint64
        rc = self._lib.opte_fast_bench_watch_tx(device.encode())
        if rc != 0:
            raise RuntimeError(f"cannot watch {device}'s transmit: {os.strerror(-rc)} (is the data plane started?)")

    def last_ns(self) -> int:
        """CLOCK_MONOTONIC (time.monotonic_ns) of the latest burst with a Geneve frame; 0: none yet."""
        return self._lib.opte_fast_bench_watch_last_ns()

    def frames(self) -> int:
        return self._lib.opte_fast_bench_watch_frames()

    def close(self) -> None:
        self._lib.opte_fast_bench_unwatch_tx()


def _flow_fields(i: int) -> tuple[bytes, int]:
    return (ADDR_BASE + i % (1 << ADDR_BITS)).to_bytes(4, "big"), 1024 + i // (1 << ADDR_BITS)


def _ipv4_udp(src: bytes, dst: bytes, sport: int, dport: int, ip_len: int) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, ip_len, 0, 0, 64, 17, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", ipv4_checksum(ip)) + ip[12:]
    return ip + struct.pack("!HHHH", sport, dport, ip_len - 20, 0)


@dataclass(frozen=True)
class Traffic:
    """What the source sends: `direction` outbound (guest frames) or inbound (Geneve from the TEP),
    `frame_bytes` the guest frame's length as in the mbuf (no FCS), `flows` distinct flows looped
    (0: every packet a new flow), `queues` RX queues of the source (one per worker)."""
    direction: str
    frame_bytes: int
    flows: int
    queues: int = 1

    @property
    def wire_bytes(self) -> int:
        """Length of the frames on the uplink, where a 100 GbE port's line rate applies."""
        return self.frame_bytes + OUTER_LEN

    @property
    def source_bytes(self) -> int:
        return self.frame_bytes if self.direction == "outbound" else self.wire_bytes

    def frame(self, i: int) -> bytes:
        addr, sport = _flow_fields(i)
        if self.direction == "outbound":
            inner = mac_bytes(GATEWAY_MAC) + mac_bytes(GUEST_MAC) + b"\x08\x00"
            inner += _ipv4_udp(GUEST_IP4.packed, addr, sport, 9, self.frame_bytes - 14)
            return inner + bytes(self.frame_bytes - len(inner))
        inner = mac_bytes(GUEST_MAC) + mac_bytes(GATEWAY_MAC) + b"\x08\x00"
        inner += _ipv4_udp(addr, GUEST_IP4.packed, sport, 9, self.frame_bytes - 14)
        inner += bytes(self.frame_bytes - len(inner))
        udp_len = 8 + 8 + len(inner)
        outer = mac_bytes(PEER_BRIDGE_MAC) + mac_bytes(switch_mac(0)) + b"\x86\xdd"
        outer += struct.pack("!IHBB16s16s", 0x60000000, udp_len, 17, 64, TEP.packed, UNDERLAY.packed)
        outer += struct.pack("!HHHH", 0xC000 | (i & 0x3FFF), GENEVE_PORT, udp_len, 0)
        outer += struct.pack("!BBHI", 0, 0, 0x6558, GUEST_VNI << 8)
        return outer + inner

    @property
    def template_frames(self) -> int:
        return TEMPLATE_FRAMES if self.flows == 0 else min(self.flows, TEMPLATE_FRAMES)

    def write_pcap(self, path: Path) -> None:
        """The looped frames: flows 0 .. template_frames - 1 (microsecond pcap, Ethernet)."""
        out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i in range(self.template_frames):
            frame = self.frame(i)
            out += struct.pack("<IIII", 0, 0, len(frame), len(frame)) + frame
        path.write_bytes(out)

    def source_devargs(self, pcap: Path) -> str:
        """One rx_pcap per queue (net_pcap's way to several queues); at most 128 bytes on DPDK 24.11."""
        args = f"{SOURCE_DEVICE},{','.join([f'rx_pcap={pcap}'] * self.queues)},infinite_rx=1"
        if len(args) > 128:
            raise ValueError(f"source devargs longer than DPDK 24.11's 128 bytes: {args}")
        return args

    def plugin_spec(self) -> str:
        """The plugin's configuration (its environment variable): which bytes hold the flow."""
        if self.direction == "outbound":
            ip, addr, port, entropy = 14, 14 + 16, 34, 0
        else:
            ip = OUTER_LEN + 14
            addr, port, entropy = ip + 12, ip + 20, 14 + 40
        first = self.template_frames if self.flows == 0 else 0
        return (f"device={SOURCE_DEVICE} flows={self.flows} first={first} addr={addr} ip={ip} port={port} "
                f"entropy={entropy}")

    def env(self) -> dict[str, str]:
        return {**os.environ, TRAFFIC_ENV: self.plugin_spec()}


ATTACHED_LINE = "opte-fast bench traffic: "


def check_attached(output: str, who: str) -> None:
    """The plugin says when it rewrites a queue; a run whose frames were never rewritten measured
    the pcap's few thousand flows only."""
    if f"{ATTACHED_LINE}{SOURCE_DEVICE} queue" not in output:
        raise RuntimeError(f"{who}: the traffic plugin never rewrote {SOURCE_DEVICE}'s frames "
                           f"(its output has no '{ATTACHED_LINE}' line)")
