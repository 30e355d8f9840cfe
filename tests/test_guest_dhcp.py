"""The guest's address configuration, answered by its gateway on the guest port as OPTE's gateway
layer does: DHCPv4 (DISCOVER/REQUEST/INFORM), DHCPv6 (SOLICIT, REQUEST, RENEW, REBIND, CONFIRM,
INFORMATION-REQUEST, RELEASE) and router solicitations. Requests are built with scapy; every answer
is decoded with scapy (an independent decoder), field by field and option by option, and its
checksums recomputed by scapy. Nothing of it is forwarded and no flow is created.
"""
import dataclasses
import ipaddress

import pytest
from scapy.all import (
    BOOTP,
    DHCP,
    IP,
    UDP,
    Dot1Q,
    Ether,
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    ICMPv6NDOptMTU,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptRDNSS,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
    raw,
)
from scapy.layers.dhcp6 import (
    DUID_LL,
    DUID_LLT,
    DHCP6_Advertise,
    DHCP6_Confirm,
    DHCP6_InfoRequest,
    DHCP6_Rebind,
    DHCP6_Release,
    DHCP6_Renew,
    DHCP6_Reply,
    DHCP6_Request,
    DHCP6_Solicit,
    DHCP6OptClientId,
    DHCP6OptDNSDomains,
    DHCP6OptDNSServers,
    DHCP6OptElapsedTime,
    DHCP6OptIA_NA,
    DHCP6OptIAAddress,
    DHCP6OptOptReq,
    DHCP6OptRapidCommit,
    DHCP6OptServerId,
    DHCP6OptStatusCode,
)

from opte_fast.controlplane.state import mac_bytes
from tests.support.checksums import checksums_hold
from tests.support.gateway import GATEWAY_LL, GUEST_LL
from tests.support.sled import GATEWAY_MAC, GUEST_IP4, GUEST_IP6, GUEST_MAC, default_state, drops, ring_sled

GATEWAY_IP4 = "10.0.0.1"  # the first address of the guest's 10.0.0.0/24
DNS = (ipaddress.ip_address("10.0.0.53"), ipaddress.ip_address("9.9.9.9"), ipaddress.ip_address("fd77::53"))
DOMAIN = "vpc.example"
LEASE_S = 3600
XID = 0x3903F326
CLIENT_DUID = DUID_LLT(lladdr=GUEST_MAC, timeval=12345)
SERVER_DUID = DUID_LL(lladdr=GATEWAY_MAC)
IAID = 0x0A0B0C0D
SOLICIT_ON_WIRE = 0x123456


def state_with(**guest_fields):
    state = default_state(1)
    guest = dataclasses.replace(state.guests[0], dns_servers=DNS, domain=DOMAIN, lease_time_s=LEASE_S)
    return state.replace(guests=(dataclasses.replace(guest, **guest_fields),))


def run(frames: list[bytes], state=None) -> tuple[list[bytes], dict[str, int]]:
    with ring_sled(state or state_with(), n_uplinks=1) as sled:
        sled.send("guest0", frames)
        answers, out, c = sled.recv("guest0"), sled.recv("uplink0"), sled.counters()
    assert out == [] and c["flows_created"] == 0, "the gateway's traffic never leaves the port"
    return answers, c


# -- DHCPv4 ---------------------------------------------------------------------------------------

def dhcp4(msg_type: str, *options, src: str = "0.0.0.0", dst: str = "255.255.255.255", ciaddr: str = "0.0.0.0",
          flags: int = 0, chaddr: str = GUEST_MAC, op: int = 1, end: bool = True) -> bytes:
    opts = [("message-type", msg_type), *options, ("param_req_list", [1, 3, 6, 15, 26, 51])]
    return raw(Ether(src=GUEST_MAC, dst="ff:ff:ff:ff:ff:ff") / IP(src=src, dst=dst) / UDP(sport=68, dport=67)
               / BOOTP(op=op, xid=XID, flags=flags, ciaddr=ciaddr, chaddr=mac_bytes(chaddr))
               / DHCP(options=opts + (["end"] if end else [])))


def dhcp4_options(pkt) -> dict:
    return {o[0]: (o[1] if len(o) == 2 else o[1:]) for o in pkt[DHCP].options if isinstance(o, tuple)}


FULL_OPTIONS = {
    "server_id": GATEWAY_IP4, "lease_time": LEASE_S, "renewal_time": LEASE_S // 2, "rebinding_time": LEASE_S * 7 // 8,
    "subnet_mask": "255.255.255.0", "router": GATEWAY_IP4, "name_server": ("10.0.0.53", "9.9.9.9"),
    "domain": DOMAIN.encode(), "interface-mtu": 1500,
}


def check_dhcp4_reply(frame: bytes, msg_type: int, ip_dst: str, yiaddr: str, *, eth_dst: str = GUEST_MAC,
                      ciaddr: str = "0.0.0.0", flags: int = 0) -> dict:
    pkt = Ether(frame)
    assert (pkt.dst, pkt.src, pkt.type) == (eth_dst, GATEWAY_MAC, 0x0800)
    assert (pkt[IP].src, pkt[IP].dst, pkt[IP].ttl, pkt[IP].proto) == (GATEWAY_IP4, ip_dst, 64, 17)
    assert (pkt[UDP].sport, pkt[UDP].dport) == (67, 68)
    b = pkt[BOOTP]
    assert (b.op, b.htype, b.hlen, b.xid, b.flags, b.ciaddr, b.yiaddr, b.siaddr, b.giaddr) == \
        (2, 1, 6, XID, flags, ciaddr, yiaddr, "0.0.0.0", "0.0.0.0")
    assert b.chaddr[:6] == mac_bytes(GUEST_MAC) and b.chaddr[6:] == b"\0" * 10
    assert b.sname == b"\0" * 64 and b.file == b"\0" * 128
    assert len(pkt[UDP].payload) >= 300  # BOOTP's minimum message
    checksums_hold(frame)
    opts = dhcp4_options(pkt)
    assert opts.pop("message-type") == msg_type
    return opts


def test_discover_gets_an_offer_with_address_router_dns_domain_lease_and_mtu(eal):
    answers, c = run([dhcp4("discover")])
    assert len(answers) == 1
    assert check_dhcp4_reply(answers[0], 2, str(GUEST_IP4), str(GUEST_IP4)) == FULL_OPTIONS
    assert (c["gateway_dhcp4_replies"], c["tx_guest_packets"]) == (1, 1) and drops(c) == {}


def test_discover_with_the_broadcast_flag_is_answered_to_broadcast(eal):
    answers, _ = run([dhcp4("discover", flags=0x8000)])
    check_dhcp4_reply(answers[0], 2, "255.255.255.255", str(GUEST_IP4), flags=0x8000)


def test_request_gets_an_ack_in_every_client_state(eal):
    selecting = dhcp4("request", ("server_id", GATEWAY_IP4), ("requested_addr", str(GUEST_IP4)))
    init_reboot = dhcp4("request", ("requested_addr", str(GUEST_IP4)))
    renewing = dhcp4("request", src=str(GUEST_IP4), dst=GATEWAY_IP4, ciaddr=str(GUEST_IP4))
    answers, c = run([selecting, init_reboot, renewing])
    assert check_dhcp4_reply(answers[0], 5, str(GUEST_IP4), str(GUEST_IP4)) == FULL_OPTIONS
    assert check_dhcp4_reply(answers[1], 5, str(GUEST_IP4), str(GUEST_IP4)) == FULL_OPTIONS
    assert check_dhcp4_reply(answers[2], 5, str(GUEST_IP4), str(GUEST_IP4), ciaddr=str(GUEST_IP4)) == FULL_OPTIONS
    assert c["gateway_dhcp4_replies"] == 3 and drops(c) == {}


def test_request_for_another_address_gets_a_nak_to_broadcast(eal):
    answers, c = run([dhcp4("request", ("requested_addr", "10.0.0.77"))])
    opts = check_dhcp4_reply(answers[0], 6, "255.255.255.255", "0.0.0.0", eth_dst="ff:ff:ff:ff:ff:ff")
    assert opts == {"server_id": GATEWAY_IP4}
    assert c["gateway_dhcp4_replies"] == 1


def test_inform_gets_an_ack_without_a_lease(eal):
    answers, _ = run([dhcp4("inform", src=str(GUEST_IP4), dst=GATEWAY_IP4, ciaddr=str(GUEST_IP4))])
    opts = check_dhcp4_reply(answers[0], 5, str(GUEST_IP4), "0.0.0.0", ciaddr=str(GUEST_IP4))
    assert opts == {k: v for k, v in FULL_OPTIONS.items() if k not in ("lease_time", "renewal_time", "rebinding_time")}


def test_mtu_and_subnet_follow_the_port_config(eal):
    state = state_with(mtu_bytes=9000, ipv4_prefix_len=20, ipv4_gateway=ipaddress.IPv4Address("10.0.15.254"),
                       dns_servers=(), domain="")
    answers, _ = run([dhcp4("discover")], state)
    pkt = Ether(answers[0])
    assert pkt[IP].src == "10.0.15.254"
    assert dhcp4_options(pkt) == {"message-type": 2, "server_id": "10.0.15.254", "lease_time": LEASE_S,
                                  "renewal_time": LEASE_S // 2, "rebinding_time": LEASE_S * 7 // 8,
                                  "subnet_mask": "255.255.240.0", "router": "10.0.15.254", "interface-mtu": 9000}


def test_tagged_discover_is_answered_with_the_tag(eal):
    tagged = Ether(dhcp4("discover"))
    tagged = raw(Ether(src=GUEST_MAC, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=5) / tagged[IP])
    answers, _ = run([tagged])
    assert Ether(answers[0])[Dot1Q].vlan == 5 and dhcp4_options(Ether(answers[0]))["message-type"] == 2


DHCP4_IGNORED = {
    "release": dhcp4("release", ("server_id", GATEWAY_IP4), src=str(GUEST_IP4), dst=GATEWAY_IP4,
                     ciaddr=str(GUEST_IP4)),
    "decline": dhcp4("decline", ("server_id", GATEWAY_IP4), ("requested_addr", str(GUEST_IP4))),
    "request-to-another-server": dhcp4("request", ("server_id", "10.0.0.9"), ("requested_addr", str(GUEST_IP4))),
    "offer-from-the-guest": dhcp4("offer", op=2),
    "for-another-client-mac": dhcp4("discover", chaddr="02:00:00:00:00:77"),
    "options-without-end": dhcp4("discover", end=False),
    "truncated-bootp": dhcp4("discover")[:14 + 20 + 8 + 200],
}


@pytest.mark.parametrize("case", list(DHCP4_IGNORED))
def test_dhcp4_not_answered_is_dropped_and_counted(eal, case):
    frame = DHCP4_IGNORED[case]
    if case == "truncated-bootp":  # lengths that agree with the cut, so only BOOTP is short
        pkt = Ether(frame)
        del pkt[IP].len, pkt[IP].chksum, pkt[UDP].len, pkt[UDP].chksum
        frame = raw(pkt)
    answers, c = run([frame] * 2)
    assert answers == [] and drops(c) == {"gateway_dhcp4_ignored": 2}


def test_dhcp4_from_a_spoofed_address_is_a_spoof(eal):
    answers, c = run([dhcp4("request", src="10.0.0.3", dst=GATEWAY_IP4, ciaddr="10.0.0.3")])
    assert answers == [] and drops(c) == {"spoof_src_ip": 1}


def test_dhcp4_on_a_port_without_ipv4_is_not_answered(eal):
    answers, c = run([dhcp4("discover")], state_with(ipv4=None))
    assert answers == [] and drops(c) == {"gateway_dhcp4_ignored": 1}


def test_udp_to_port_67_elsewhere_is_ordinary_traffic(eal):
    relay = raw(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IP(src=str(GUEST_IP4), dst="198.51.100.67")
                / UDP(sport=68, dport=67) / BOOTP(xid=XID) / DHCP(options=[("message-type", "discover"), "end"]))
    with ring_sled(state_with(), n_uplinks=1) as sled:
        sled.send("guest0", [relay])
        assert sled.recv("guest0") == [] and len(sled.recv("uplink0")) == 1
        assert sled.counters()["flows_created"] == 1


# -- DHCPv6 ---------------------------------------------------------------------------------------

def dhcp6(msg, src: str = GUEST_LL, dst: str = "ff02::1:2") -> bytes:
    return raw(Ether(src=GUEST_MAC, dst="33:33:00:01:00:02") / IPv6(src=src, dst=dst, hlim=1)
               / UDP(sport=546, dport=547) / msg)


def client(msg):
    return msg / DHCP6OptClientId(duid=CLIENT_DUID) / DHCP6OptElapsedTime()


def ia_na(*addresses: str):
    return DHCP6OptIA_NA(iaid=IAID, T1=0, T2=0, ianaopts=[DHCP6OptIAAddress(addr=a) for a in addresses])


ORO = DHCP6OptOptReq(reqopts=[23, 24])


def check_dhcp6_reply(frame: bytes, msg_class, dst: str = GUEST_LL):
    pkt = Ether(frame)
    assert (pkt.dst, pkt.src, pkt.type) == (GUEST_MAC, GATEWAY_MAC, 0x86DD)
    assert (pkt[IPv6].src, pkt[IPv6].dst, pkt[IPv6].nh) == (GATEWAY_LL, dst, 17)
    assert (pkt[UDP].sport, pkt[UDP].dport) == (547, 546)
    checksums_hold(frame)
    msg = pkt[msg_class]
    assert msg.trid == SOLICIT_ON_WIRE
    assert bytes(msg[DHCP6OptServerId].duid) == bytes(SERVER_DUID)
    return msg


def check_address(msg) -> None:
    ia = msg[DHCP6OptIA_NA]
    assert (ia.iaid, ia.T1, ia.T2) == (IAID, LEASE_S // 2, LEASE_S * 4 // 5)
    addr = ia[DHCP6OptIAAddress]
    assert (addr.addr, addr.preflft, addr.validlft) == (str(GUEST_IP6), LEASE_S, LEASE_S)


def check_dns(msg) -> None:
    assert msg[DHCP6OptDNSServers].dnsservers == ["fd77::53"]
    assert msg[DHCP6OptDNSDomains].dnsdomains == [DOMAIN + "."]


def test_solicit_gets_an_advertise_with_the_address_and_dns(eal):
    answers, c = run([dhcp6(client(DHCP6_Solicit(trid=SOLICIT_ON_WIRE)) / ia_na() / ORO)])
    msg = check_dhcp6_reply(answers[0], DHCP6_Advertise)
    assert bytes(msg[DHCP6OptClientId].duid) == bytes(CLIENT_DUID)
    check_address(msg)
    check_dns(msg)
    assert DHCP6OptRapidCommit not in msg
    assert (c["gateway_dhcp6_replies"], c["tx_guest_packets"]) == (1, 1) and drops(c) == {}


def test_solicit_with_rapid_commit_gets_the_reply_at_once(eal):
    answers, _ = run([dhcp6(client(DHCP6_Solicit(trid=SOLICIT_ON_WIRE)) / DHCP6OptRapidCommit() / ia_na())])
    msg = check_dhcp6_reply(answers[0], DHCP6_Reply)
    check_address(msg)
    assert DHCP6OptRapidCommit in msg


@pytest.mark.parametrize("kind", ["request", "renew", "rebind"])
def test_request_renew_rebind_get_a_reply_with_the_address(eal, kind):
    msg = {"request": DHCP6_Request, "renew": DHCP6_Renew, "rebind": DHCP6_Rebind}[kind](trid=SOLICIT_ON_WIRE)
    msg = client(msg)
    if kind != "rebind":
        msg /= DHCP6OptServerId(duid=SERVER_DUID)
    answers, c = run([dhcp6(msg / ia_na(str(GUEST_IP6)) / ORO)])
    reply = check_dhcp6_reply(answers[0], DHCP6_Reply)
    check_address(reply)
    check_dns(reply)
    assert drops(c) == {}


@pytest.mark.parametrize("addr,status", [(str(GUEST_IP6), 0), ("fd77::99", 4)], ids=["ours", "not-on-link"])
def test_confirm_says_whether_the_address_is_still_right(eal, addr, status):
    answers, _ = run([dhcp6(client(DHCP6_Confirm(trid=SOLICIT_ON_WIRE)) / ia_na(addr))])
    reply = check_dhcp6_reply(answers[0], DHCP6_Reply)
    assert reply[DHCP6OptStatusCode].statuscode == status
    assert DHCP6OptIA_NA not in reply


def test_information_request_gets_dns_without_an_address(eal):
    answers, _ = run([dhcp6(DHCP6_InfoRequest(trid=SOLICIT_ON_WIRE) / DHCP6OptElapsedTime() / ORO)])
    reply = check_dhcp6_reply(answers[0], DHCP6_Reply)
    check_dns(reply)
    assert DHCP6OptIA_NA not in reply and DHCP6OptClientId not in reply


def test_release_gets_a_success_status(eal):
    answers, _ = run([dhcp6(client(DHCP6_Release(trid=SOLICIT_ON_WIRE)) / DHCP6OptServerId(duid=SERVER_DUID)
                            / ia_na(str(GUEST_IP6)))])
    assert check_dhcp6_reply(answers[0], DHCP6_Reply)[DHCP6OptStatusCode].statuscode == 0


def test_dhcp6_to_the_gateway_link_local_is_answered_too(eal):
    answers, _ = run([dhcp6(client(DHCP6_Solicit(trid=SOLICIT_ON_WIRE)) / ia_na(), dst=GATEWAY_LL)])
    check_address(check_dhcp6_reply(answers[0], DHCP6_Advertise))


DHCP6_IGNORED = {
    "request-to-another-server": client(DHCP6_Request(trid=1)) / DHCP6OptServerId(duid=DUID_LL(lladdr=GUEST_MAC))
    / ia_na(),
    "request-without-server-id": client(DHCP6_Request(trid=1)) / ia_na(),
    "solicit-without-client-id": DHCP6_Solicit(trid=1) / ia_na(),
    "advertise-from-the-guest": DHCP6_Advertise(trid=1) / DHCP6OptClientId(duid=CLIENT_DUID),
}


@pytest.mark.parametrize("case", list(DHCP6_IGNORED))
def test_dhcp6_not_answered_is_dropped_and_counted(eal, case):
    answers, c = run([dhcp6(DHCP6_IGNORED[case])] * 2)
    assert answers == [] and drops(c) == {"gateway_dhcp6_ignored": 2}


def test_dhcp6_option_running_past_the_datagram_is_ignored(eal):
    frame = bytearray(dhcp6(client(DHCP6_Solicit(trid=1)) / ia_na()))
    frame[-12 - 2:-12] = (200).to_bytes(2, "big")  # IA_NA's length, far past the end
    pkt = Ether(bytes(frame))
    del pkt[UDP].chksum
    answers, c = run([raw(pkt)])
    assert answers == [] and drops(c) == {"gateway_dhcp6_ignored": 1}


def test_dhcp6_from_a_spoofed_global_source_is_a_spoof(eal):
    answers, c = run([dhcp6(client(DHCP6_Solicit(trid=1)) / ia_na(), src="fd77::3")])
    assert answers == [] and drops(c) == {"spoof_src_ip": 1}


def test_dhcp6_on_a_port_without_ipv6_is_not_answered(eal):
    answers, c = run([dhcp6(client(DHCP6_Solicit(trid=1)) / ia_na())], state_with(ipv6=None))
    assert answers == [] and drops(c) == {"gateway_dhcp6_ignored": 1}


# -- router advertisements ------------------------------------------------------------------------

def router_solicit(src: str = GUEST_LL) -> bytes:
    rs = IPv6(src=src, dst="ff02::2", hlim=255) / ICMPv6ND_RS()
    if src != "::":
        rs /= ICMPv6NDOptSrcLLAddr(lladdr=GUEST_MAC)
    return raw(Ether(src=GUEST_MAC, dst="33:33:00:00:00:02") / rs)


def check_ra(frame: bytes, *, dst: str = GUEST_LL, m: int = 1, o: int = 1, lifetime: int = 9000, mtu: int = 1500):
    pkt = Ether(frame)
    assert (pkt.dst, pkt.src) == ("33:33:00:00:00:01" if dst == "ff02::1" else GUEST_MAC, GATEWAY_MAC)
    assert (pkt[IPv6].src, pkt[IPv6].dst, pkt[IPv6].hlim, pkt[IPv6].nh) == (GATEWAY_LL, dst, 255, 58)
    ra = pkt[ICMPv6ND_RA]
    assert (ra.type, ra.code, ra.chlim, ra.M, ra.O, ra.routerlifetime, ra.reachabletime, ra.retranstimer) == \
        (134, 0, 64, m, o, lifetime, 0, 0)
    assert pkt[ICMPv6NDOptSrcLLAddr].lladdr == GATEWAY_MAC
    assert pkt[ICMPv6NDOptMTU].mtu == mtu
    checksums_hold(frame)
    return pkt


def test_router_solicit_gets_an_advertisement_without_a_prefix(eal):
    answers, c = run([router_solicit()], state_with(dns_servers=()))
    pkt = check_ra(answers[0])
    assert ICMPv6NDOptPrefixInfo not in pkt and ICMPv6NDOptRDNSS not in pkt
    assert len(answers[0]) == 14 + 40 + 16 + 8 + 8
    assert (c["gateway_ra_replies"], c["tx_guest_packets"]) == (1, 1) and drops(c) == {}


def test_router_solicit_from_unspecified_is_answered_to_all_nodes(eal):
    answers, _ = run([router_solicit("::")])
    check_ra(answers[0], dst="ff02::1")


def test_advertisement_follows_the_port_config(eal):
    state = state_with(ra_managed=False, ra_other=False, ra_router_lifetime_s=600, mtu_bytes=9000,
                       ra_prefix=ipaddress.ip_network("fd77::/64"))
    answers, _ = run([router_solicit()], state)
    pkt = check_ra(answers[0], m=0, o=0, lifetime=600, mtu=9000)
    pi = pkt[ICMPv6NDOptPrefixInfo]
    assert (pi.prefixlen, pi.L, pi.A, pi.validlifetime, pi.preferredlifetime, pi.prefix) == \
        (64, 1, 1, LEASE_S, LEASE_S, "fd77::")
    rdnss = pkt[ICMPv6NDOptRDNSS]
    assert (rdnss.lifetime, rdnss.dns) == (LEASE_S, ["fd77::53"])


def test_router_solicit_on_a_port_without_ipv6_is_not_answered(eal):
    answers, c = run([router_solicit()], state_with(ipv6=None))
    assert answers == [] and drops(c) == {"gateway_ndp_ignored": 1}
