"""Writes the seed corpora of the whole-path fuzz targets (csrc/fuzz/sled.h describes the script
format): csrc/fuzz/corpus/outbound/ guest frames, csrc/fuzz/corpus/inbound/ underlay frames, each
a valid frame of a kind the data plane handles, alone or in bursts, between table changes and
time steps; and csrc/fuzz/corpus/parse/, plain frames for fuzz_parse: BFD control packets with a
good UDP checksum, without authentication and signed with fuzz_bfd's key, which random bytes
would not reach. Rerun after changing the sled or the format:
    .venv/bin/python csrc/fuzz/make_seeds.py
"""
from __future__ import annotations

import hashlib
import struct
import sys
from pathlib import Path

from scapy.all import (
    ARP,
    BOOTP,
    DHCP,
    ICMP,
    IP,
    TCP,
    UDP,
    Dot1Q,
    Ether,
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrFragment,
    Raw,
)
from scapy.contrib.geneve import GENEVE, GeneveOptions
from scapy.layers.inet6 import ICMPv6ND_NS, ICMPv6ND_RS, ICMPv6NDOptSrcLLAddr

# The sled of sled.h
UNDERLAY = "fd00:0:f7:101::1"
GUEST_MAC, GATEWAY_MAC, UPLINK_MAC = "02:00:00:00:00:01", "a8:40:25:ff:00:01", "02:0f:00:00:01:02"
GUEST_IP4, GUEST_IP6, GUEST_VNI = "10.0.0.2", "fd77::2", 7
FRAME, BURST, TEP, NEXTHOP, ROUTE, TIME, STRICT, TRACE = range(8)
TIME_1S = TIME | (4 << 3)
TIME_3S = TIME | (12 << 3)


def frame(pkt, layout: int = 0) -> bytes:
    data = bytes(pkt)
    return bytes([FRAME]) + struct.pack(">HB", len(data), layout) + data


def script(*parts) -> bytes:
    return b"".join(p if isinstance(p, bytes) else bytes([p]) for p in parts)


def guest(l3):
    return Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / l3


OUT = {
    "ipv4-tcp-syn": guest(IP(src=GUEST_IP4, dst="93.184.216.34") / TCP(sport=40000, dport=443, flags="S")),
    "ipv4-tcp-fin": guest(IP(src=GUEST_IP4, dst="93.184.216.34") / TCP(sport=40000, dport=443, flags="FA")),
    "ipv4-udp": guest(IP(src=GUEST_IP4, dst="1.1.1.1") / UDP(sport=5353, dport=53) / Raw(b"query")),
    "ipv4-icmp-echo": guest(IP(src=GUEST_IP4, dst="8.8.8.8") / ICMP(type=8, id=0x1234, seq=1)),
    "ipv4-options": guest(IP(src=GUEST_IP4, dst="8.8.4.4", options=b"\x01\x01\x01\x00") / UDP(sport=1, dport=2)),
    "ipv4-fragment": guest(IP(src=GUEST_IP4, dst="8.8.8.8", flags="MF") / UDP(sport=1, dport=2) / Raw(b"x" * 16)),
    "ipv4-to-peer": guest(IP(src=GUEST_IP4, dst="10.0.0.3") / TCP(sport=40001, dport=22, flags="S")),
    "ipv4-no-live-nexthop": guest(IP(src=GUEST_IP4, dst="192.168.1.1") / UDP(sport=1, dport=2)),
    "ipv4-no-route": guest(IP(src=GUEST_IP4, dst="172.16.0.1") / UDP(sport=1, dport=2)),
    "vlan-ipv4-udp": Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / Dot1Q(vlan=42) / IP(src=GUEST_IP4, dst="1.0.0.1")
                     / UDP(sport=9, dport=9),
    "ipv6-tcp": guest(IPv6(src=GUEST_IP6, dst="2001:db8::1") / TCP(sport=40002, dport=80, flags="S")),
    "ipv6-udp": guest(IPv6(src=GUEST_IP6, dst="2001:db8::53") / UDP(sport=5353, dport=53) / Raw(b"q")),
    "ipv6-icmp-echo": guest(IPv6(src=GUEST_IP6, dst="2001:db8::1") / ICMPv6EchoRequest(id=7, seq=1)),
    "ipv6-fragment": guest(IPv6(src=GUEST_IP6, dst="2001:db8::1") / IPv6ExtHdrFragment() / UDP(sport=1, dport=2)),
    "ipv6-to-peer": guest(IPv6(src=GUEST_IP6, dst="fd77::3") / UDP(sport=7, dport=7)),
    "ipv6-no-v2b": guest(IPv6(src=GUEST_IP6, dst="fd00::1") / UDP(sport=7, dport=7)),
    "arp-request": Ether(src=GUEST_MAC, dst="ff:ff:ff:ff:ff:ff")
                   / ARP(op=1, hwsrc=GUEST_MAC, psrc=GUEST_IP4, pdst="10.0.0.1"),
    "ndp-solicit": Ether(src=GUEST_MAC, dst="33:33:ff:00:00:01")
                   / IPv6(src="fe80::2", dst="ff02::1:ff00:1", hlim=255)
                   / ICMPv6ND_NS(tgt="fe80::1") / ICMPv6NDOptSrcLLAddr(lladdr=GUEST_MAC),
    "router-solicit": Ether(src=GUEST_MAC, dst="33:33:00:00:00:02") / IPv6(src="fe80::2", dst="ff02::2", hlim=255)
                      / ICMPv6ND_RS(),
    "dhcp4-discover": Ether(src=GUEST_MAC, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255")
                      / UDP(sport=68, dport=67) / BOOTP(chaddr=bytes.fromhex("020000000001"), xid=0x1234, flags=0x8000)
                      / DHCP(options=[("message-type", "discover"), "end"]),
    "ipv4-too-big": guest(IP(src=GUEST_IP4, dst="1.1.1.1", flags="DF") / UDP(sport=1, dport=2) / Raw(b"x" * 1500)),
}


def flows(n: int, dst: str = "93.184.216.34") -> bytes:
    return b"".join(frame(guest(IP(src=GUEST_IP4, dst=dst) / UDP(sport=20000 + i, dport=53))) for i in range(n))


def outbound_seeds() -> dict[str, bytes]:
    seeds = {name: script(frame(pkt)) for name, pkt in OUT.items()}
    every = b"".join(frame(pkt) for pkt in OUT.values())
    seeds["all-kinds-one-burst"] = script(every, BURST)
    # a buffer with 1 KB of tailroom (layout 3): the offer is longer than the discover, answered in place
    seeds["dhcp4-discover"] = script(frame(OUT["dhcp4-discover"], 3))
    seeds["unconfigured-guest"] = script(BURST | 8, frame(OUT["ipv4-udp"]))
    seeds["layouts"] = script(*(frame(OUT["ipv6-tcp"], layout) for layout in (0, 1, 2, 3, 8, 0x84, 0x45, 0xf6)))
    # two segments, the first ending at an odd byte of the UDP checksum's sum, the second all
    # Ethernet padding (the parse reads the first segment only), as this fuzzer found it
    padded = bytes(guest(IP(src=GUEST_IP4, dst="1.1.1.1") / UDP(sport=1, dport=2))) + b"\xff" * 800
    seeds["chain-odd-checksum"] = script(frame(padded, 0x25))
    # more flows than the table holds, then the tables change under them and time passes
    seeds["table-full"] = script(flows(24), BURST, flows(24))
    seeds["tep-down-up"] = script(flows(8), BURST, TEP, flows(8), BURST, TEP, flows(8))
    seeds["nexthop-down-up"] = script(flows(8), BURST, NEXTHOP, flows(8), BURST, NEXTHOP, flows(8))
    seeds["route-flap"] = script(flows(8), BURST, ROUTE, flows(8), BURST, ROUTE, flows(8))
    seeds["idle-rebalance"] = script(flows(8), BURST, TEP, flows(8), BURST, TEP, TIME_1S, flows(8))
    seeds["expiry"] = script(flows(16), BURST, TIME_3S, flows(16), BURST, frame(OUT["ipv4-tcp-syn"]), TIME_1S,
                             frame(OUT["ipv4-tcp-fin"]), TIME_1S, frame(OUT["ipv4-tcp-syn"]))
    # the traced copy: every kind of frame, flows that move, then the trace stopped mid-script
    seeds["traced"] = script(TRACE, every, BURST, flows(24), BURST, TEP, flows(8), BURST, TRACE, flows(8))
    return seeds


def geneve(inner, vni: int = GUEST_VNI, options=(), checksum: bool = False, dst: str = UNDERLAY, proto=0x6558,
           src: str = "fd00:99::1"):
    return (Ether(src="02:aa:00:00:00:01", dst=UPLINK_MAC) / IPv6(src=src, dst=dst)
            / UDP(sport=49152, dport=6081, chksum=None if checksum else 0)
            / GENEVE(vni=vni, proto=proto, options=[GeneveOptions(classid=c, type=t, data=d) for c, t, d in options])
            / inner)


def to_guest(l3):
    return Ether(src="a8:40:25:77:77:77", dst=GUEST_MAC) / l3


IN = {
    "geneve-ipv4-tcp": geneve(to_guest(IP(src="93.184.216.34", dst=GUEST_IP4) / TCP(sport=443, dport=40000))),
    "geneve-ipv4-udp-checksum": geneve(to_guest(IP(src="1.1.1.1", dst=GUEST_IP4) / UDP(sport=53, dport=5353)),
                                       checksum=True),
    "geneve-ipv4-icmp": geneve(to_guest(IP(src="8.8.8.8", dst=GUEST_IP4) / ICMP(type=0, id=1))),
    "geneve-ipv6-tcp": geneve(to_guest(IPv6(src="2001:db8::1", dst=GUEST_IP6) / TCP(sport=80, dport=40002))),
    "geneve-ipv6-udp": geneve(to_guest(IPv6(src="2001:db8::53", dst=GUEST_IP6) / UDP(sport=53, dport=5353))),
    "geneve-ipv6-icmp": geneve(to_guest(IPv6(src="2001:db8::1", dst=GUEST_IP6) / ICMPv6EchoRequest(id=7))),
    "geneve-oxide-options": geneve(to_guest(IP(src="1.1.1.1", dst=GUEST_IP4) / UDP(sport=53, dport=53)),
                                   options=((0x0129, 0x00, b""), (0x0129, 0x02, b"\x00\x00\x05\xb4"))),
    "geneve-critical-option": geneve(to_guest(IP(src="1.1.1.1", dst=GUEST_IP4) / UDP()),
                                     options=((0x0129, 0x85, b""),)),
    "geneve-unknown-vni": geneve(to_guest(IP(src="1.1.1.1", dst=GUEST_IP4) / UDP()), vni=8),
    "geneve-not-ethernet": geneve(IP(src="1.1.1.1", dst=GUEST_IP4) / UDP(), proto=0x0800),
    "geneve-inner-vlan": geneve(Ether(src="a8:40:25:77:77:77", dst=GUEST_MAC) / Dot1Q(vlan=5)
                                / IP(src="1.1.1.1", dst=GUEST_IP4) / UDP()),
    "geneve-other-sled": geneve(to_guest(IP(src="1.1.1.1", dst=GUEST_IP4) / UDP()), dst="fd00:0:f7:102::1"),
    "neighbor-solicit": Ether(src="02:aa:00:00:00:01", dst="33:33:ff:00:00:01")
                        / IPv6(src="fe80::1", dst="ff02::1:ff00:1", hlim=255)
                        / ICMPv6ND_NS(tgt=UNDERLAY) / ICMPv6NDOptSrcLLAddr(lladdr="02:aa:00:00:00:01"),
    "bgp-to-sled": Ether(src="02:aa:00:00:00:01", dst=UPLINK_MAC) / IPv6(src="fe80::1", dst="fe80::2")
                   / TCP(sport=179, dport=40000),
    "arp": Ether(src="02:aa:00:00:00:01", dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, psrc="169.254.0.1"),
}


def inbound_seeds() -> dict[str, bytes]:
    seeds = {name: script(frame(pkt)) for name, pkt in IN.items()}
    seeds["all-kinds-one-burst"] = script(b"".join(frame(pkt) for pkt in IN.values()), BURST)
    seeds["no-exception-path"] = script(BURST | 8, frame(IN["bgp-to-sled"]), frame(IN["neighbor-solicit"]),
                                        frame(IN["geneve-ipv4-tcp"]))
    seeds["layouts"] = script(*(frame(IN["geneve-ipv6-udp"], layout) for layout in (0, 1, 2, 3, 8, 0x84, 0x45, 0xf6)))
    # two segments: the frame and some padding in the first, more padding than the second holds after
    # it (delivered with its padding until this fuzzer found it)
    seeds["chain-padding"] = script(frame(bytes(IN["geneve-ipv4-tcp"]) + b"\0" * 123, 0xf4))
    # strict underlay: from a TEP, and from the peer sled for its own guest, delivered; the peer
    # sled for another source, and a host that is neither, dropped; then off again
    peer_sled, stranger = "fd00:0:f7:102::1", "fd00:55::1"
    seeds["strict-underlay"] = script(
        STRICT, frame(IN["geneve-ipv4-tcp"]),
        frame(geneve(to_guest(IP(src="10.0.0.3", dst=GUEST_IP4) / UDP(sport=7, dport=7)), src=peer_sled)),
        frame(geneve(to_guest(IPv6(src="fd77::3", dst=GUEST_IP6) / UDP(sport=7, dport=7)), src=peer_sled)),
        frame(geneve(to_guest(IP(src="1.1.1.1", dst=GUEST_IP4) / UDP(sport=7, dport=7)), src=peer_sled)),
        frame(geneve(to_guest(IP(src="1.1.1.1", dst=GUEST_IP4) / UDP(sport=7, dport=7)), src=stranger)),
        BURST, STRICT, frame(geneve(to_guest(IP(src="1.1.1.1", dst=GUEST_IP4) / UDP(sport=7, dport=7)), src=stranger)))
    seeds["traced"] = script(TRACE, seeds["all-kinds-one-burst"], TRACE, frame(IN["geneve-ipv4-tcp"]))
    return seeds


def bfd(auth_type: int = 0, seq: int = 0) -> bytes:
    """A single-hop BFD Down packet to fe80::2; with auth_type 4 or 5, signed (RFC 5880 6.7.4) with key
    ID 1 and fuzz_bfd's key, b"fuzz" zero-padded to 20 bytes, in the digest's place."""
    ctrl = bytes([0x20, 0x40 | (0x04 if auth_type else 0), 3, 52 if auth_type else 24])
    ctrl += struct.pack(">IIIII", 0xd88675a7, 0, 1_000_000, 10_000, 0)
    if auth_type:
        section = bytes([auth_type, 28, 1, 0]) + struct.pack(">I", seq)
        ctrl += section + hashlib.sha1(ctrl + section + b"fuzz".ljust(20, b"\0")).digest()
    return bytes(Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:0b") /
                 IPv6(src="fe80::1", dst="fe80::2", hlim=255) / UDP(sport=49152, dport=3784) / Raw(ctrl))


def parse_seeds() -> dict[str, bytes]:
    return {"bfd-down": bfd(), "bfd-keyed-sha1": bfd(4, 0x01020304), "bfd-meticulous-keyed-sha1": bfd(5, 0xffffffff)}


def main() -> None:
    root = Path(__file__).parent / "corpus"
    for direction, seeds in (("outbound", outbound_seeds()), ("inbound", inbound_seeds()), ("parse", parse_seeds())):
        out = root / direction
        out.mkdir(parents=True, exist_ok=True)
        for old in out.iterdir():
            old.unlink()
        for name, data in seeds.items():
            (out / name).write_bytes(data)
        print(f"{out}: {len(seeds)} seeds", file=sys.stderr)


if __name__ == "__main__":
    main()
