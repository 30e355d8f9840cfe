/*
 * A guest port's own rules on the way out, before any flow is created:
 * anti-spoofing (a frame's source MAC and IP address must be the port's)
 * and the address configuration its gateway answers in place, as OPTE's
 * gateway layer does: ARP and neighbor solicitations (gateway.h), router
 * solicitations (ra.c), DHCPv4 and DHCPv6 (dhcp.c).
 *
 * Sources the gateway accepts beyond the port's addresses, and why they are
 * safe: its answers go back out the same port only, so a link-local or
 * unspecified source (neighbor discovery, DHCPv6) or 0.0.0.0 (DHCPv4) can
 * mislead no one else. Such sources are never forwarded.
 */
#ifndef OF_GUEST_H
#define OF_GUEST_H

#include <stdint.h>
#include <string.h>
#include <netinet/in.h>

#include <rte_byteorder.h>

#include "counters.h"
#include "dhcp.h"
#include "guest_net.h"
#include "parse.h"
#include "tables.h"

/* Per packet: 1 if the frame's Ethernet source is the MAC of mac_word (of_mac_word, which a burst loop
 * reads once). One 8-byte load of the source and the EtherType, the EtherType masked off: the frame
 * must hold its 14-byte Ethernet header. */
static inline int
of_guest_mac_is(uint64_t mac_word, const uint8_t *frame)
{
	uint64_t w;

	memcpy(&w, frame + RTE_ETHER_ADDR_LEN, sizeof(w));
	return ((w ^ mac_word) & rte_cpu_to_le_64(UINT64_C(0xFFFFFFFFFFFF))) == 0;
}

/* Per packet: 1 if the frame's Ethernet source is the port's MAC. */
static inline int
of_guest_mac_ok(const struct of_guest *g, const uint8_t *frame)
{
	return of_guest_mac_is(of_mac_word(g->mac), frame);
}

/* Per packet: 1 if a parsed packet may be for the gateway (ICMPv6, or UDP to a DHCP server port). */
static inline int
of_guest_maybe_service(const struct of_inner_meta *m)
{
	return m->key.proto == IPPROTO_ICMPV6 ||
	       (m->key.proto == IPPROTO_UDP &&
		(m->key.dst_port == OF_DHCP4_SERVER_PORT || m->key.dst_port == OF_DHCP6_SERVER_PORT));
}

/* The counters of frames answered: the frame then holds the answer, back to the guest. */
static inline int
of_guest_answered(int rc)
{
	return rc == OF_C_GATEWAY_ARP_REPLIES || rc == OF_C_GATEWAY_NDP_REPLIES ||
	       rc == OF_C_GATEWAY_RA_REPLIES || rc == OF_C_GATEWAY_DHCP4_REPLIES ||
	       rc == OF_C_GATEWAY_DHCP6_REPLIES;
}

/*
 * A guest frame the parse found not IP: ARP is checked (sender MAC the
 * port's, sender address the port's IPv4 or 0.0.0.0, else SPOOF_ARP_SENDER)
 * and answered by of_gateway_arp. Returns OF_C_NOT_IP for anything not ARP.
 * The Ethernet source was checked before.
 */
int of_guest_arp(uint8_t *frame, uint32_t len, uint32_t room, const struct of_guest *g, uint32_t *reply_len);

/*
 * A guest IP frame for which of_guest_maybe_service said 1, m as the parse
 * filled it. Neighbor discovery, router solicitations, multicast listener
 * discovery (dropped as GATEWAY_MLD_IGNORED), DHCPv4 (UDP to port
 * 67 at 255.255.255.255 or the port's IPv4 gateway) and DHCPv6 (to port 547
 * at ff02::1:2 or the gateway's link-local address) are the gateway's:
 * answered (of_guest_answered(rc): frame holds *reply_len bytes of answer)
 * or dropped (rc, a drop counter, SPOOF_SRC_IP among them). Anything else
 * returns OF_OK: an ordinary packet, forwarded after the source check.
 */
int of_guest_service(uint8_t *frame, uint32_t len, uint32_t room, const struct of_inner_meta *m,
		     const struct of_guest *g, uint32_t *reply_len);

#endif
