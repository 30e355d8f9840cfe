"""Guest frames the tests send: a few UDP flows built with scapy, and many built with struct, fast."""
from __future__ import annotations

import ipaddress
import random
import struct

from scapy.all import IP, UDP, Ether, Raw, raw

from opte_fast.controlplane.state import mac_bytes
from opte_fast.tools.sample import GATEWAY_MAC, GUEST_IP4, GUEST_MAC

from .checksums import internet_checksum


def udp_flows(n: int, first_port: int = 1000) -> list[bytes]:
    """n one-frame UDP flows from the guest to 198.51.100.7:53, from source ports first_port, first_port + 1, ..."""
    return [raw(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IP(src=str(GUEST_IP4), dst="198.51.100.7")
                / UDP(sport=first_port + i, dport=53) / Raw(b"q")) for i in range(n)]


_GUEST_ETHERNET = mac_bytes(GATEWAY_MAC) + mac_bytes(GUEST_MAC) + b"\x08\x00"


def guest_udp4_headers(dst: ipaddress.IPv4Address | bytes, sport: int, dport: int, payload_bytes: int) -> bytes:
    """The 42 bytes of Ethernet, IPv4 (TTL 64, id 0, checksum right) and UDP (checksum 0) headers of a guest's
    frame to `dst` whose `payload_bytes` follow. Built with struct, for the tests that send tens of thousands
    of flows, where scapy takes too long."""
    dst = dst if isinstance(dst, bytes) else dst.packed
    ip = bytearray(struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + 8 + payload_bytes, 0, 0, 64, 17, 0,
                               GUEST_IP4.packed, dst))
    ip[10:12] = struct.pack(">H", internet_checksum(bytes(ip)))
    return _GUEST_ETHERNET + bytes(ip) + struct.pack(">HHHH", sport, dport, 8 + payload_bytes, 0)


def udp4_flow(headers: bytes) -> tuple[str, int, int]:
    """(destination, source port, destination port) of guest_udp4_headers' headers."""
    return str(ipaddress.IPv4Address(headers[30:34])), *struct.unpack(">HH", headers[34:38])


def make_flows(n: int, seed: int, exclude: dict | None = None) -> dict[int, bytes]:
    """n distinct IPv4/UDP flows from the guest to random destinations and ports: flow id -> the 42 bytes
    of headers before an 8-byte payload (flow id, sequence number). With `exclude` (flows made before),
    none of those and ids after theirs."""
    rng = random.Random(seed)
    taken = set(exclude.values()) if exclude else set()
    first = max(exclude, default=-1) + 1 if exclude else 0
    flows: dict[int, bytes] = {}
    while len(flows) < n:
        dst = bytes([rng.choice((23, 34, 52, 93, 104, 142, 151, 172, 185, 203))]) + rng.randbytes(3)
        sport, dport = rng.randrange(1024, 65536), rng.choice((53, 80, 123, 443, rng.randrange(1024, 65536)))
        headers = guest_udp4_headers(dst, sport, dport, payload_bytes=8)  # (flow id, seq)
        if headers in taken:
            continue
        taken.add(headers)
        flows[first + len(flows)] = headers
    return flows
