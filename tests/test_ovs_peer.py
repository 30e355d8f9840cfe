"""Open vSwitch as the boundary-services peer of a sled, proven with frames built by scapy.

The sled namespace sends exactly what opte-fast sends on an uplink (DESIGN.md, Wire format); OVS
in a switch namespace terminates the Geneve, hands VNI 99 traffic to an internet namespace, and
encapsulates the internet host's answers back to the sled with the guest's VNI. These tests pin
down the harness (tests/support) that the end-to-end tests of opte-fast build on.
"""
from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet

from tests.support.geneve import (
    BOUNDARY_MAC,
    BOUNDARY_VNI,
    ENTROPY_PORTS,
    ETH_P_TEB,
    EXTERNAL,
    GENEVE_PORT,
    GeneveFrame,
    decode,
    encapsulate,
    guest_frame,
    is_neighbor_solicitation,
    neighbor_advertisement,
)
from tests.support.netns import Frame, run
from tests.support.ovs import TEP, BoundaryLab, Guest, boundary_lab
from tests.support.tools import needs_root, needs_tools

pytestmark = needs_tools("ovs-vsctl", "ovsdb-server", "tshark")

OVS_SOURCE_PORTS = range(32768, 61001)  # OVS's default tnl/egress_port_range
OVS_HOP_LIMIT = 64
PAYLOAD = bytes(range(256)) * 5 + b"opte-fast" * 13  # 1397 bytes: the outer frames exceed 1514
UDP_PORT = 7777


@pytest.fixture
def lab() -> Iterator[BoundaryLab]:
    with boundary_lab() as lab:
        yield lab


# -- building and recognising frames --------------------------------------------------------------
def echo_request(guest: Guest, lab: BoundaryLab, ip_version: int, seq: int) -> Packet:
    l3: Packet
    if ip_version == 4:
        l3 = IP(src=guest.ipv4, dst=lab.internet.ipv4) / ICMP(type="echo-request", id=0x0fa5, seq=seq) / PAYLOAD
    else:
        l3 = IPv6(src=guest.ipv6, dst=lab.internet.ipv6) / ICMPv6EchoRequest(id=0x0fa5, seq=seq, data=PAYLOAD)
    return guest_frame(guest.mac, l3)


def geneve_in(data: bytes) -> GeneveFrame:
    decoded = decode(data)
    assert decoded is not None, f"not Geneve over IPv6: {data.hex()}"
    return decoded


def echo_reply(seq: int) -> Callable[[Frame], bool]:
    """Matches a Geneve frame arriving at the sled that carries ICMP(v6) echo reply number `seq`."""
    def match(frame: Frame) -> bool:
        geneve = decode(frame.data) if frame.incoming else None
        if geneve is None:
            return False
        inner = geneve.inner
        return ((ICMP in inner and inner[ICMP].type == 0 and inner[ICMP].seq == seq)
                or (ICMPv6EchoReply in inner and inner[ICMPv6EchoReply].seq == seq))
    return match


def udp_payload(payload: bytes) -> Callable[[Frame], bool]:
    """Matches a Geneve frame arriving at the sled whose inner UDP payload is `payload`."""
    def match(frame: Frame) -> bool:
        geneve = decode(frame.data) if frame.incoming else None
        return geneve is not None and UDP in geneve.inner and bytes(geneve.inner[UDP].payload) == payload
    return match


def neighbor_solicitation(target: str) -> Callable[[Frame], bool]:
    return lambda frame: frame.incoming and is_neighbor_solicitation(frame.data, target)


def echo_request_arrival(seq: int) -> Callable[[Frame], bool]:
    """Matches echo request number `seq` arriving at the internet host, unencapsulated."""
    return lambda frame: frame.incoming and ICMP in (e := Ether(frame.data)) and e[ICMP].seq == seq


def assert_sent_by_switch(reply: GeneveFrame, lab: BoundaryLab, uplink: int, guest: Guest) -> None:
    """Every outer field of a frame that switch `uplink` encapsulated for `guest`."""
    link = lab.uplinks[uplink]
    assert (reply.eth_dst, reply.eth_src) == (link.mac, link.nexthop_mac)
    assert (reply.ip_src, reply.ip_dst) == (link.tep, guest.sled)
    assert reply.traffic_class == 0 and reply.hop_limit == OVS_HOP_LIMIT
    assert reply.dport == GENEVE_PORT and reply.sport in OVS_SOURCE_PORTS
    assert reply.udp_checksum != 0 and reply.udp_checksum_valid, "OVS 3.1 always sends a valid UDP checksum"
    assert (reply.version, reply.oam, reply.critical, reply.protocol) == (0, False, False, ETH_P_TEB)
    assert reply.vni == guest.vni
    assert reply.options == (EXTERNAL,), "the Oxide External option, and nothing else"
    assert (reply.inner.dst, reply.inner.src) == (guest.mac, BOUNDARY_MAC)


def udp_checksum_is_valid(frame: Ether) -> bool:
    rebuilt = frame.copy()
    del rebuilt[UDP].chksum
    return Ether(bytes(rebuilt))[UDP].chksum == frame[UDP].chksum


def internet_udp_socket(lab: BoundaryLab, ip_version: int) -> socket.socket:
    family, host = ((socket.AF_INET, lab.internet.ipv4) if ip_version == 4 else
                    (socket.AF_INET6, lab.internet.ipv6))
    sock = lab.internet.ns.open_socket(family, socket.SOCK_DGRAM)
    sock.bind((host, UDP_PORT))
    sock.settimeout(5)
    return sock


def receive(sock: socket.socket, lab: BoundaryLab, sent: bytes) -> tuple[bytes, tuple[str, int]]:
    try:
        data, address = sock.recvfrom(65535)
    except TimeoutError:
        raise AssertionError(f"nothing reached the internet host's UDP listener\n{lab.diagnostics(sent)}") from None
    return data, address[:2]


# -- the builder itself ---------------------------------------------------------------------------
def test_outbound_builder_is_the_design_wire_format() -> None:
    guest = Guest()
    inner = guest_frame(guest.mac, IP(src=guest.ipv4, dst="203.0.113.1") / ICMP() / b"x")
    raw = bytes(encapsulate(inner, eth_src="02:5e:00:00:00:01", eth_dst="a8:40:25:ff:00:01", src=guest.sled,
                            dst=TEP, vni=BOUNDARY_VNI, sport=50000, flow_label=0xABCDE))
    assert raw[0:14] == bytes.fromhex("a84025ff0001" "025e00000001" "86dd")
    version_class_label, payload_length, next_header, hop_limit = struct.unpack("!IHBB", raw[14:22])
    assert version_class_label == (6 << 28) | 0xABCDE, "version 6, traffic class 0, flow label"
    assert (payload_length, next_header, hop_limit) == (len(raw) - 54, 17, 128)
    assert raw[22:38] == socket.inet_pton(socket.AF_INET6, guest.sled)
    assert raw[38:54] == socket.inet_pton(socket.AF_INET6, TEP)
    assert struct.unpack("!HHHH", raw[54:62]) == (50000, GENEVE_PORT, len(raw) - 54, 0), "checksum 0"
    assert raw[62:70] == bytes([0, 0, 0x65, 0x58, 0, 0, BOUNDARY_VNI, 0]), "no options, no O/C, VNI 99"
    assert raw[70:] == bytes(inner) and raw[70:76] == bytes.fromhex("a84025777777")

    decoded = geneve_in(raw)
    assert (decoded.flow_label, decoded.hop_limit, decoded.sport, decoded.udp_checksum, decoded.vni) == \
        (0xABCDE, 128, 50000, 0, BOUNDARY_VNI)
    assert decoded.inner_bytes == bytes(inner)


# -- (a) ICMP echo through the switch and back ----------------------------------------------------
@needs_root("namespaces and Open vSwitch")
@pytest.mark.parametrize("ip_version", [4, 6], ids=["ipv4", "ipv6"])
def test_echo_over_zero_checksum_geneve_is_answered_back_to_the_sled(lab: BoundaryLab, ip_version: int) -> None:
    guest, link = lab.guests[0], lab.uplinks[0]
    request = lab.outbound(echo_request(guest, lab, ip_version, seq=1))
    sent = geneve_in(request)
    assert sent.udp_checksum == 0 and sent.sport in ENTROPY_PORTS, "as opte-fast sends it"
    with lab.sled.capture(link.ifname) as capture:
        lab.sled.send(link.ifname, request)
        reply = geneve_in(lab.expect(capture, echo_reply(seq=1), sent=request).data)

    assert_sent_by_switch(reply, lab, 0, guest)
    if ip_version == 4:
        assert (reply.inner[IP].src, reply.inner[IP].dst) == (lab.internet.ipv4, guest.ipv4)
        assert (reply.inner[ICMP].id, bytes(reply.inner[ICMP].payload)) == (0x0fa5, PAYLOAD)
    else:
        assert (reply.inner[IPv6].src, reply.inner[IPv6].dst) == (lab.internet.ipv6, guest.ipv6)
        assert (reply.inner[ICMPv6EchoReply].id, reply.inner[ICMPv6EchoReply].data) == (0x0fa5, PAYLOAD)


# -- (b) UDP both ways, payload intact ------------------------------------------------------------
@needs_root("namespaces and Open vSwitch")
@pytest.mark.parametrize("ip_version", [4, 6], ids=["ipv4", "ipv6"])
def test_udp_reaches_the_internet_listener_intact_and_its_answer_comes_back(lab: BoundaryLab,
                                                                            ip_version: int) -> None:
    guest, link = lab.guests[0], lab.uplinks[0]
    listener = internet_udp_socket(lab, ip_version)
    guest_ip, host_ip, l3 = ((guest.ipv4, lab.internet.ipv4, IP) if ip_version == 4 else
                             (guest.ipv6, lab.internet.ipv6, IPv6))
    datagram = lab.outbound(guest_frame(guest.mac, l3(src=guest_ip, dst=host_ip)
                                        / UDP(sport=40000, dport=UDP_PORT) / PAYLOAD), sport=61234)
    with listener, lab.sled.capture(link.ifname) as capture:
        lab.sled.send(link.ifname, datagram)
        data, source = receive(listener, lab, datagram)
        assert (data, source) == (PAYLOAD, (guest_ip, 40000))

        answer = b"answer:" + PAYLOAD[::-1]
        listener.sendto(answer, source)
        reply = geneve_in(lab.expect(capture, udp_payload(answer)).data)

    assert_sent_by_switch(reply, lab, 0, guest)
    assert (reply.inner[l3].src, reply.inner[l3].dst) == (host_ip, guest_ip)
    assert (reply.inner[UDP].sport, reply.inner[UDP].dport) == (UDP_PORT, 40000)
    assert udp_checksum_is_valid(reply.inner), "complete, although the internet host's kernel sent it into a veth"


# -- (c) how OVS finds the sled's MAC -------------------------------------------------------------
@needs_root("namespaces and Open vSwitch")
def test_ovs_learns_the_sled_mac_from_its_geneve_frames_without_ndp() -> None:
    with boundary_lab(seed_neighbors=False) as lab:
        guest, link = lab.guests[0], lab.uplinks[0]
        request = lab.outbound(echo_request(guest, lab, 4, seq=1))
        assert lab.sled_address not in link.switch.appctl("tnl/neigh/show")
        with lab.sled.capture(link.ifname) as capture:
            lab.sled.send(link.ifname, request)
            lab.expect(capture, echo_reply(seq=1), sent=request)
            solicitations = [f for f in capture.frames if neighbor_solicitation(lab.sled_address)(f)]
        assert solicitations == [], "the first reply needed no neighbor solicitation"
        assert f"{lab.sled_address} " in link.switch.appctl("tnl/neigh/show")
        assert link.mac in link.switch.appctl("tnl/neigh/show")


@needs_root("namespaces and Open vSwitch")
def test_ovs_solicits_the_sled_when_the_internet_speaks_first_and_a_responder_answers() -> None:
    """Without a seeded entry and before any frame from the sled, OVS sends a neighbor
    solicitation for the sled's address and drops the packet that needed it (OVS 3.1); once the
    sled answers, traffic flows. opte-fast has to answer these on every uplink."""
    with boundary_lab(seed_neighbors=False) as lab:
        guest, link = lab.guests[0], lab.uplinks[0]
        sender = internet_udp_socket(lab, 4)
        with sender, lab.sled.capture(link.ifname) as capture, lab.sled.responder(
                link.ifname, lambda data: neighbor_advertisement(data, lab.sled_address, link.mac)) as responder:
            sender.sendto(b"first", (guest.ipv4, 5000))
            lab.expect(capture, neighbor_solicitation(lab.sled_address))
            for attempt in range(20):
                payload = b"after NDP %d" % attempt
                sender.sendto(payload, (guest.ipv4, 5000))
                try:
                    capture.wait_for(udp_payload(payload), timeout=0.25)
                    break
                except TimeoutError:
                    continue
            else:
                raise AssertionError(f"nothing came after the neighbor advertisement\n{lab.diagnostics()}")
        assert responder.answered, "the solicitation was answered"
        assert link.mac in link.switch.appctl("tnl/neigh/show")


@needs_root("namespaces and Open vSwitch")
def test_seeded_neighbor_lets_the_internet_speak_first_without_ndp(lab: BoundaryLab) -> None:
    guest, link = lab.guests[0], lab.uplinks[0]
    sender = internet_udp_socket(lab, 6)
    with sender, lab.sled.capture(link.ifname) as capture:
        sender.sendto(b"unsolicited", (guest.ipv6, 5000))
        reply = geneve_in(lab.expect(capture, udp_payload(b"unsolicited")).data)
        assert not [f for f in capture.frames if neighbor_solicitation(lab.sled_address)(f)]
    assert_sent_by_switch(reply, lab, 0, guest)


# -- (d) an independent decoder agrees ------------------------------------------------------------
@needs_root("namespaces and Open vSwitch")
def test_tshark_decodes_both_directions_as_geneve(lab: BoundaryLab, tmp_path: Path) -> None:
    guest, link = lab.guests[0], lab.uplinks[0]
    request = lab.outbound(echo_request(guest, lab, 4, seq=7), sport=55555)
    with lab.sled.capture(link.ifname) as capture:
        lab.sled.send(link.ifname, request)
        lab.expect(capture, echo_reply(seq=7), sent=request)
        pcap = tmp_path / "sl0.pcap"
        capture.write_pcap(pcap)

    fields = ["ipv6.src", "ipv6.dst", "udp.srcport", "udp.dstport", "udp.checksum", "geneve.version",
              "geneve.proto_type", "geneve.vni", "geneve.option.class", "geneve.option.type", "icmp.type"]
    table = run(["tshark", "-r", str(pcap), "-d", f"udp.port=={GENEVE_PORT},geneve", "-Y", "geneve",
                 "-T", "fields", "-E", "separator=|", *[arg for f in fields for arg in ("-e", f)]]).stdout
    rows = [[field if ":" in field or not field else int(field, 0) for field in line.split("|")]
            for line in table.splitlines()]
    verbose = run(["tshark", "-r", str(pcap), "-V", "-O", "ipv6,udp,geneve", "-Y", "geneve"]).stdout
    assert len(rows) == 2, f"one request, one reply:\n{verbose}"
    sent, answered = (dict(zip(fields, row)) for row in rows)
    assert sent == {"ipv6.src": lab.sled_address, "ipv6.dst": link.tep, "udp.srcport": 55555,
                    "udp.dstport": GENEVE_PORT, "udp.checksum": 0, "geneve.version": 0,
                    "geneve.proto_type": ETH_P_TEB, "geneve.vni": BOUNDARY_VNI,
                    "geneve.option.class": "", "geneve.option.type": "", "icmp.type": 8}, verbose
    assert answered["udp.checksum"] != 0 and answered["udp.srcport"] in OVS_SOURCE_PORTS, verbose
    assert {k: answered[k] for k in fields if k not in ("udp.checksum", "udp.srcport")} == {
        "ipv6.src": link.tep, "ipv6.dst": lab.sled_address, "udp.dstport": GENEVE_PORT, "geneve.version": 0,
        "geneve.proto_type": ETH_P_TEB, "geneve.vni": guest.vni, "geneve.option.class": EXTERNAL.cls,
        "geneve.option.type": EXTERNAL.type, "icmp.type": 0}, verbose


# -- two switches sharing one internet, for the failover tests ------------------------------------
@needs_root("namespaces and Open vSwitch")
@pytest.mark.parametrize("teps", [(TEP, TEP), (TEP, "fd00:99::2")], ids=["anycast-tep", "tep-per-switch"])
def test_each_of_two_switches_carries_a_round_trip(teps: tuple[str, str]) -> None:
    with boundary_lab(teps) as lab:
        guest = lab.guests[0]
        assert [link.tep for link in lab.uplinks] == list(teps)
        for index, link in enumerate(lab.uplinks):
            lab.internet.route_via(lab.internet.links[index])
            request = lab.outbound(echo_request(guest, lab, 4, seq=100 + index), uplink=index)
            with lab.sled.capture(link.ifname) as capture, \
                    lab.internet.ns.capture(lab.internet.links[index]) as arrival:
                lab.sled.send(link.ifname, request)
                reply = geneve_in(lab.expect(capture, echo_reply(seq=100 + index), sent=request).data)
                arrival.wait_for(echo_request_arrival(seq=100 + index), timeout=1)
            assert_sent_by_switch(reply, lab, index, guest)


# -- the harness cleans up ------------------------------------------------------------------------
@needs_root("namespaces and Open vSwitch")
def test_lab_leaves_no_namespace_process_or_file_even_when_the_test_fails() -> None:
    with pytest.raises(RuntimeError, match="test failed"), boundary_lab((TEP, TEP)) as lab:
        namespaces = [lab.sled.name, lab.internet.ns.name, *(link.switch.ns.name for link in lab.uplinks)]
        directories = [link.switch.dir for link in lab.uplinks]
        pids = [pid for link in lab.uplinks for pid in link.switch.ns.pids()]
        assert len(pids) == 4, "ovsdb-server and ovs-vswitchd in each switch namespace"
        raise RuntimeError("test failed")
    left = set(run(["ip", "netns", "list"]).stdout.split()) & set(namespaces)
    assert not left, f"namespaces left: {left}"
    assert not [d for d in directories if d.exists()]
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()], "the daemons were waited for"
