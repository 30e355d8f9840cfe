"""Whether a frame's checksums are the ones scapy computes: scapy (an independent implementation)
builds the frame again with every IPv4, UDP, TCP, ICMP and ICMPv6 checksum left to it."""
from __future__ import annotations

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
