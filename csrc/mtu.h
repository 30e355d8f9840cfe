/*
 * Guest packets too big for the underlay. Encapsulation adds 56 bytes of
 * outer IPv6, UDP and Geneve to the guest's whole frame, so a guest IP
 * packet fits when it is at most underlay MTU - 56 - its Ethernet header
 * (14, or 18 with a VLAN tag): underlay MTU - 70 for an untagged frame. One
 * too big is not sent: an IPv4 packet with DF and any IPv6 packet are
 * answered to the guest with ICMP fragmentation needed (RFC 1191) or ICMPv6
 * packet too big (RFC 8201) carrying that MTU, from the gateway; an IPv4
 * packet without DF is dropped, not fragmented, because the receiving side
 * (this data plane's inbound, and OPTE's) drops inner fragments.
 */
#ifndef OF_MTU_H
#define OF_MTU_H

#include <stdint.h>

#include "parse.h"
#include "tables.h"
#include "wire.h"

/* Outer bytes in front of the guest's Ethernet frame that count against the underlay MTU. */
#define OF_ENCAP_IP_OVERHEAD	(OF_OUTER_HDR_LEN - RTE_ETHER_HDR_LEN)

/* ICMP errors per second and lcore at most (RFC 4443 2.4 f), and the burst allowed at once. */
#define OF_ICMP_ERRORS_PER_S	1000
#define OF_ICMP_ERRORS_BURST	100

/*
 * Turn the guest frame (len bytes at frame: all of it, or a chained frame's
 * first segment; the parse's m) into the ICMP error for it, in place, from the port's gateway to the guest, quoting as much of
 * the packet as RFC 1812 4.3.2.3 (576 bytes in all) or RFC 4443 2.4 c (the
 * IPv6 minimum MTU) allow, for next-hop MTU mtu. Returns the error's
 * length, or 0 if the frame is too short to hold it in place. Pure: no mbuf.
 */
uint32_t of_icmp_too_big(uint8_t *frame, uint32_t len, const struct of_inner_meta *m,
			 const struct of_guest *g, uint16_t mtu);

/* 1 for an IPv4 packet that may not be fragmented (DF set), 0 otherwise. */
int of_ipv4_dont_fragment(const uint8_t *frame, const struct of_inner_meta *m);

#endif
