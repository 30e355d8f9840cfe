"""Geneve frames spelled out byte by byte, apart from the data plane, for tests that compare exact bytes:
what boundary services sends a sled (`encap`, with a knob to break each field of it), what the guest
must then receive (`delivered`), and what opte-fast must put on an uplink for a guest's frame
(`outbound_frame`). tests/support/geneve.py builds and decodes the same format with scapy's fields.
"""
import ipaddress
import struct

from scapy.all import IP, TCP, UDP, Ether, IPv6, IPv6ExtHdrHopByHop, Raw, raw

from opte_fast.controlplane.state import mac_bytes
from opte_fast.tools.sample import GATEWAY_MAC, GUEST_IP4, GUEST_IP6, GUEST_MAC, GUEST_VNI, UNDERLAY

from .flowhash import entropy_port
from .geneve import BOUNDARY_MAC
from .sled import SWITCH_MACS

PEER = "fd00:99::1"  # boundary services' TEP, the outer source
OXIDE = 0x0129



def geneve_header(vni: int = GUEST_VNI, options: bytes = b"", version: int = 0, opt_words: int | None = None,
                  flags: int = 0, protocol: int = 0x6558) -> bytes:
    words = len(options) // 4 if opt_words is None else opt_words
    return bytes([(version << 6) | words, flags]) + struct.pack(">H", protocol) + vni.to_bytes(3, "big") + b"\0" \
        + options


def option(cls: int, type_: int, body: bytes = b"") -> bytes:
    assert len(body) % 4 == 0
    return struct.pack(">HBB", cls, type_, len(body) // 4) + body


def outer(payload: bytes, *, dst=UNDERLAY, dport: int = 6081, checksum: str = "zero",
          hop_by_hop: bool = False, src=PEER) -> bytes:
    """Ethernet / IPv6 [/ Hop-by-Hop] / UDP around a Geneve payload. checksum: zero, valid or wrong."""
    ip6 = IPv6(src=str(src), dst=str(dst), hlim=64)
    if hop_by_hop:
        ip6 = ip6 / IPv6ExtHdrHopByHop()
    pkt = Ether(src=SWITCH_MACS[0], dst="02:00:00:00:ff:00") / ip6 / UDP(
        sport=50000, dport=dport, chksum=0 if checksum == "zero" else None) / Raw(payload)
    frame = bytearray(raw(pkt))
    if checksum == "wrong":
        udp_off = len(frame) - len(payload) - 8
        frame[udp_off + 6] ^= 0x5A
        assert frame[udp_off + 6:udp_off + 8] != b"\0\0"
    return bytes(frame)


def encap(inner: bytes, **kw) -> bytes:
    hdr = {k: kw.pop(k) for k in ("vni", "options", "version", "opt_words", "flags", "protocol") if k in kw}
    return outer(geneve_header(**hdr) + inner, **kw)


def udp_length(frame: bytes, delta: int) -> bytes:
    """The frame with its outer UDP length field off by delta (IPv6 payload length kept)."""
    (n,) = struct.unpack_from(">H", frame, 58)
    return frame[:58] + struct.pack(">H", n + delta) + frame[60:]


def delivered(inner: bytes) -> bytes:
    """What guest0 must receive: the inner frame, source MAC = the gateway's."""
    return inner[:6] + mac_bytes(GATEWAY_MAC) + inner[12:]


# A guest's frames as boundary services sends them, from its own MAC
INNER_TCP4 = raw(Ether(dst=GUEST_MAC, src=BOUNDARY_MAC) / IP(src="93.184.216.34", dst=str(GUEST_IP4), id=7, ttl=60)
                 / TCP(sport=443, dport=40000, flags="SA", seq=1000, ack=1) / Raw(b"hello"))
INNER_UDP6 = raw(Ether(dst=GUEST_MAC, src=BOUNDARY_MAC) / IPv6(src="2001:db8::53", dst=str(GUEST_IP6), hlim=60)
                 / UDP(sport=53, dport=5353) / Raw(b"answer"))


def outbound_frame(inner: bytes, h: int, nexthop_mac: str, uplink_mac: str, dst: ipaddress.IPv6Address,
                   vni: int, inner_dst_mac: str, udp_sport_min=49152, udp_sport_max=65535) -> bytes:
    """Guest frame `inner` of a flow with hash `h` as it leaves the uplink (DESIGN.md, Wire format): flow label
    and UDP source port from the hash, UDP checksum 0, the inner destination MAC rewritten."""
    sport = entropy_port(h, udp_sport_min, udp_sport_max)
    udp_len = 8 + 8 + len(inner)
    return (mac_bytes(nexthop_mac) + mac_bytes(uplink_mac) + b"\x86\xdd"
            + struct.pack(">IHBB", (6 << 28) | (h & 0xFFFFF), udp_len, 17, 128) + UNDERLAY.packed + dst.packed
            + struct.pack(">HHHH", sport, 6081, udp_len, 0)
            + bytes([0, 0]) + b"\x65\x58" + vni.to_bytes(3, "big") + b"\0"
            + mac_bytes(inner_dst_mac) + inner[6:])
