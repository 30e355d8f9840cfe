"""Whether a frame's checksums are the ones scapy computes: scapy (an independent implementation)
builds the frame again with every IPv4, UDP, TCP, ICMP and ICMPv6 checksum left to it. And the
Internet checksum itself, for frames built with struct where scapy would be too slow."""
from __future__ import annotations

import struct

from scapy.layers.inet import IPerror
from scapy.layers.inet6 import IPerror6
from scapy.layers.l2 import Ether
from scapy.packet import raw


def checksums_hold(frame: bytes) -> None:
    """Every checksum of the frame's own headers is right (a packet quoted in an ICMP error is left
    as quoted). A zero UDP checksum, which IPv4 allows, counts as wrong here."""
    pkt = Ether(frame)
    layer = pkt
    while layer and not isinstance(layer, (IPerror, IPerror6)):
        for field in ("chksum", "cksum"):  # IPv4, UDP, TCP, ICMP; ICMPv6
            if field in layer.fields:
                delattr(layer, field)
        layer = layer.payload
    assert raw(pkt) == frame, f"checksums not those scapy computes: {pkt.summary()}"


def internet_checksum(data: bytes) -> int:
    """RFC 1071: the ones' complement of the ones' complement sum of the 16-bit words (an odd last
    byte padded with zero), as an IPv4 header or an ICMP message carries it."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF
