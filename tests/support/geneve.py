"""Scapy builders for the frames opte-fast puts on an uplink, and a decoder for checking captures.

`encapsulate()` builds exactly the outbound wire format of DESIGN.md: Ethernet (nexthop MAC ←
uplink MAC) / IPv6 (traffic class 0, flow label, hop limit 128, sled → TEP) / UDP (entropy source
port in 49152–65535 → 6081, checksum 0 unless asked) / Geneve (version 0, no O/C bit, protocol
0x6558, VNI) / the guest's Ethernet frame. `decode()` takes any captured frame apart into the
fields a test asserts on, including whether a non-zero UDP checksum is correct.
"""
from __future__ import annotations

from dataclasses import dataclass

from scapy.contrib.geneve import GENEVE, GeneveOptions
from scapy.layers.inet import UDP
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6NDOptDstLLAddr, IPv6, in6_chksum
from scapy.layers.l2 import Ether
from scapy.packet import Packet

BOUNDARY_MAC = "a8:40:25:77:77:77"
BOUNDARY_VNI = 99
GENEVE_PORT = 6081
ETH_P_TEB = 0x6558
ENTROPY_PORTS = range(49152, 65536)
OXIDE_CLASS = 0x0129
OXIDE_EXTERNAL = 0x00


@dataclass(frozen=True)
class Option:
    """A Geneve option; the high bit of `type` is the critical bit."""
    cls: int
    type: int
    data: bytes = b""


EXTERNAL = Option(OXIDE_CLASS, OXIDE_EXTERNAL)


def encapsulate(inner: Packet | bytes, *, eth_src: str, eth_dst: str, src: str, dst: str, vni: int,
                sport: int = 49152, flow_label: int = 0, hop_limit: int = 128,
                udp_checksum: bool = False, options: tuple[Option, ...] = ()) -> Ether:
    """The outer headers opte-fast adds (DESIGN.md, Wire format) around `inner`."""
    geneve = GENEVE(version=0, oam=0, critical=0, proto=ETH_P_TEB, vni=vni,
                    options=[GeneveOptions(classid=o.cls, type=o.type, data=o.data) for o in options])
    return (Ether(src=eth_src, dst=eth_dst)
            / IPv6(tc=0, fl=flow_label, hlim=hop_limit, src=src, dst=dst)
            / UDP(sport=sport, dport=GENEVE_PORT, chksum=None if udp_checksum else 0)
            / geneve / inner)


def guest_frame(mac: str, l3: Packet, dst_mac: str = BOUNDARY_MAC) -> Ether:
    """A guest's frame as it leaves opte-fast toward boundary services: inner dst MAC rewritten."""
    return Ether(src=mac, dst=dst_mac) / l3


@dataclass(frozen=True)
class GeneveFrame:
    """Every outer field of a Geneve-over-IPv6 frame, and the inner frame as scapy parsed it."""
    eth_dst: str
    eth_src: str
    traffic_class: int
    flow_label: int
    hop_limit: int
    ip_src: str
    ip_dst: str
    sport: int
    dport: int
    udp_checksum: int
    udp_checksum_valid: bool
    version: int
    oam: bool
    critical: bool
    protocol: int
    vni: int
    options: tuple[Option, ...]
    inner: Ether

    @property
    def inner_bytes(self) -> bytes:
        return bytes(self.inner)


def decode(data: bytes, dport: int = GENEVE_PORT) -> GeneveFrame | None:
    """Ethernet / IPv6 / UDP to `dport` / Geneve taken apart; None for any other frame."""
    frame = Ether(data)
    if IPv6 not in frame or frame[IPv6].nh != 17 or frame[IPv6].payload.dport != dport:
        return None
    ip6, udp = frame[IPv6], frame[IPv6].payload
    udp_bytes = bytes(ip6.payload)[: udp.len]
    geneve = GENEVE(udp_bytes[8:])
    options = tuple(Option(o.classid, o.type, bytes(o.data)) for o in geneve.options)
    return GeneveFrame(
        eth_dst=frame.dst, eth_src=frame.src, traffic_class=ip6.tc, flow_label=ip6.fl, hop_limit=ip6.hlim,
        ip_src=ip6.src, ip_dst=ip6.dst, sport=udp.sport, dport=udp.dport, udp_checksum=udp.chksum,
        udp_checksum_valid=udp.chksum != 0 and in6_chksum(17, ip6, udp_bytes) == 0,
        version=geneve.version, oam=bool(geneve.oam), critical=bool(geneve.critical),
        protocol=geneve.proto, vni=geneve.vni, options=options,
        inner=Ether(udp_bytes[8 + 8 + 4 * geneve.optionlen:]))


def neighbor_advertisement(data: bytes, address: str, mac: str) -> bytes | None:
    """The solicited advertisement a sled sends for its `address` in answer to the NS `data`;
    None if `data` is not a neighbor solicitation for `address`."""
    frame = Ether(data)
    if ICMPv6ND_NS not in frame or frame[ICMPv6ND_NS].tgt != address:
        return None
    asker = frame[IPv6].src
    dst = asker if asker != "::" else "ff02::1"
    return bytes(Ether(src=mac, dst=frame.src)
                 / IPv6(src=address, dst=dst, hlim=255)
                 / ICMPv6ND_NA(tgt=address, R=0, S=int(asker != "::"), O=1)
                 / ICMPv6NDOptDstLLAddr(lladdr=mac))


def is_neighbor_solicitation(data: bytes, target: str) -> bool:
    frame = Ether(data)
    return ICMPv6ND_NS in frame and frame[ICMPv6ND_NS].tgt == target

