"""The frames of the guest's side of its gateway (ARP and neighbor discovery), built with scapy, apart from
the data plane: tests/test_gateway.py and the guest tests beside it send and expect them."""
import ipaddress

from scapy.all import ARP, Ether, ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6NDOptDstLLAddr, ICMPv6NDOptSrcLLAddr, IPv6, raw
from scapy.layers.inet6 import in6_getnsma, in6_getnsmac

from opte_fast.tools.sample import GATEWAY_MAC, GUEST_IP4, GUEST_IP6, GUEST_MAC

GUEST_LL = "fe80::ff:fe00:1"           # fe80:: with the EUI-64 of GUEST_MAC, 02:00:00:00:00:01
GATEWAY_LL = "fe80::aa40:25ff:feff:1"  # and of GATEWAY_MAC, a8:40:25:ff:00:01


def arp_request(target: str, *, eth_src: str = GUEST_MAC, hwsrc: str = GUEST_MAC, psrc: str = str(GUEST_IP4),
                eth_dst: str = "ff:ff:ff:ff:ff:ff") -> bytes:
    return raw(Ether(dst=eth_dst, src=eth_src) / ARP(op=1, hwsrc=hwsrc, psrc=psrc, hwdst="00:00:00:00:00:00", pdst=target))


def arp_reply(target: str) -> bytes:
    return raw(Ether(dst=GUEST_MAC, src=GATEWAY_MAC)
               / ARP(op=2, hwsrc=GATEWAY_MAC, psrc=target, hwdst=GUEST_MAC, pdst=str(GUEST_IP4)))


def solicited_node(addr: str) -> tuple[str, str]:
    """The solicited-node group of addr and its MAC (RFC 4291 2.7.1, RFC 2464 7)."""
    group = in6_getnsma(ipaddress.IPv6Address(addr).packed)
    return str(ipaddress.IPv6Address(group)), in6_getnsmac(group)


def neighbor_solicit(target: str, src: str = str(GUEST_IP6), unicast: bool = False, hlim: int = 255,
                     eth_src: str = GUEST_MAC) -> bytes:
    if unicast:
        dst, dst_mac = target, GATEWAY_MAC
    else:
        dst, dst_mac = solicited_node(target)
    ns = IPv6(src=src, dst=dst, hlim=hlim) / ICMPv6ND_NS(tgt=target)
    if src != "::":
        ns /= ICMPv6NDOptSrcLLAddr(lladdr=eth_src)
    return raw(Ether(dst=dst_mac, src=eth_src) / ns)


def neighbor_advert(target: str, dst: str = str(GUEST_IP6)) -> bytes:
    dad = dst == "ff02::1"
    return raw(Ether(dst="33:33:00:00:00:01" if dad else GUEST_MAC, src=GATEWAY_MAC)
               / IPv6(src=target, dst=dst, hlim=255) / ICMPv6ND_NA(R=1, S=0 if dad else 1, O=1, tgt=target)
               / ICMPv6NDOptDstLLAddr(lladdr=GATEWAY_MAC))
