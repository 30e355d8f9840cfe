/*
 * The guest's virtual gateway, as OPTE's gateway layer: every address the
 * guest reaches is behind it, so it answers the guest's address resolution
 * itself, with the port's gateway MAC, in place, back to the guest port.
 * The data plane rewrites the inner destination MAC of everything it
 * forwards, so one MAC for every destination is right, V2P peers included.
 *
 * Pure functions over a byte buffer, like ndp.h: nothing read at or past
 * frame + len, nothing written at or past frame + room, the frame untouched
 * unless answered. Each returns the counter for what it did (counters.def).
 */
#ifndef OF_GATEWAY_H
#define OF_GATEWAY_H

#include <stdint.h>

#include "counters.h"

/*
 * A guest frame whose ethertype (after one 802.1Q tag at most) is not IP.
 * An ARP request (Ethernet/IPv4, opcode 1) from guest_mac (Ethernet source
 * and sender hardware address), to the broadcast address or gw_mac, for any
 * target but its own sender address and from a sender address other than
 * 0.0.0.0, is answered: turned into the reply from gw_mac claiming the
 * target address (RFC 826), a VLAN tag kept, the Ethernet padding cut.
 *
 *  OF_C_GATEWAY_ARP_REPLIES  answered: frame holds *reply_len bytes of reply
 *  OF_C_GATEWAY_ARP_IGNORED  ARP, not answered: a reply or other opcode, not
 *			      from guest_mac, to another MAC, an announcement
 *			      (sender = target address) or a probe (sender
 *			      0.0.0.0, RFC 5227: answering it would be an
 *			      address conflict), cut short, or room too small
 *  OF_C_NOT_IP		      not ARP
 */
int of_gateway_arp(uint8_t *frame, uint32_t len, uint32_t room, const uint8_t guest_mac[6],
		   const uint8_t gw_mac[6], uint32_t *reply_len);

/*
 * A guest IPv6 frame whose ICMPv6 header is at l4 (as of_parse_inner found
 * it). Neighbor discovery (types 133 to 137) never leaves the link: a
 * neighbor solicitation from guest_mac that RFC 4861 7.1.1 lets us answer
 * (the checks of ndp.h, and a unicast target), for any target, is turned
 * into the advertisement of the target at gw_mac (of_ndp_build_advert) with
 * the Router flag also set; everything else of those types is dropped.
 *
 * A duplicate address detection probe (from ::) is a node testing an
 * address it wants for itself: it is answered only when its target is the
 * gateway's own link-local address, fe80:: with the EUI-64 of gw_mac. Any
 * other answer would make the guest give its own address up.
 *
 *  OF_C_GATEWAY_NDP_REPLIES  answered: frame holds *reply_len bytes of reply
 *  OF_C_GATEWAY_NDP_IGNORED  neighbor discovery not answered: a router
 *			      solicitation (no advertisements are sent), an
 *			      advertisement or redirect, a solicitation that
 *			      fails those checks, has extension headers, is
 *			      not from guest_mac or is a probe of another
 *			      address, or room too small for the answer
 *  OF_OK		      not neighbor discovery: forwarded as any packet
 */
int of_gateway_ndp(uint8_t *frame, uint32_t len, uint32_t room, uint32_t l4,
		   const uint8_t guest_mac[6], const uint8_t gw_mac[6], uint32_t *reply_len);

/* fe80::/64 with the modified EUI-64 of mac (RFC 4291 2.5.1, appendix A): the gateway's own. */
void of_link_local_of(const uint8_t mac[6], uint8_t addr[16]);

#endif
