/*
 * ARP and neighbor discovery answers of the guest's gateway; the contract
 * is in gateway.h. A rare path: clarity over speed. The solicitation checks
 * and the advertisement are ndp.c's, the same as for the underlay address.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>

#include "gateway.h"
#include "ndp.h"
#include "parse.h"
#include "wire.h"

/* The neighbor discovery messages (RFC 4861 4): router solicitation to redirect. */
#define ND_TYPE_FIRST		133
#define ND_TYPE_LAST		137

static const uint8_t broadcast_mac[RTE_ETHER_ADDR_LEN] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const uint8_t unspecified[16];

int
of_gateway_arp(uint8_t *frame, uint32_t len, uint32_t room, const uint8_t guest_mac[6],
	       const uint8_t gw_mac[6], uint32_t *reply_len)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)frame;
	struct rte_arp_hdr *arp;
	struct rte_arp_ipv4 *body;
	uint8_t sender_ip[4], target_ip[4];
	uint32_t l3;
	rte_be16_t type;

	l3 = of_eth_l3_off(frame, len, &type);
	if (l3 == 0 || type != RTE_BE16(RTE_ETHER_TYPE_ARP))
		return OF_C_NOT_IP;
	if (len - l3 < sizeof(*arp) || room < l3 + sizeof(*arp))
		return OF_C_GATEWAY_ARP_IGNORED;
	arp = (struct rte_arp_hdr *)(frame + l3);
	body = &arp->arp_data;
	if (arp->arp_hardware != RTE_BE16(RTE_ARP_HRD_ETHER) ||
	    arp->arp_protocol != RTE_BE16(RTE_ETHER_TYPE_IPV4) ||
	    arp->arp_hlen != RTE_ETHER_ADDR_LEN || arp->arp_plen != sizeof(sender_ip) ||
	    arp->arp_opcode != RTE_BE16(RTE_ARP_OP_REQUEST))
		return OF_C_GATEWAY_ARP_IGNORED;
	if (memcmp(&eth->src_addr, guest_mac, RTE_ETHER_ADDR_LEN) != 0 ||
	    memcmp(&body->arp_sha, guest_mac, RTE_ETHER_ADDR_LEN) != 0)
		return OF_C_GATEWAY_ARP_IGNORED;
	if (memcmp(&eth->dst_addr, broadcast_mac, RTE_ETHER_ADDR_LEN) != 0 &&
	    memcmp(&eth->dst_addr, gw_mac, RTE_ETHER_ADDR_LEN) != 0)
		return OF_C_GATEWAY_ARP_IGNORED;
	memcpy(sender_ip, &body->arp_sip, sizeof(sender_ip));
	memcpy(target_ip, &body->arp_tip, sizeof(target_ip));
	if (memcmp(sender_ip, target_ip, sizeof(sender_ip)) == 0 ||
	    memcmp(sender_ip, unspecified, sizeof(sender_ip)) == 0)
		return OF_C_GATEWAY_ARP_IGNORED;

	/* Ethernet: back to the guest from the gateway; a VLAN tag stays as it is */
	memcpy(&eth->dst_addr, guest_mac, RTE_ETHER_ADDR_LEN);
	memcpy(&eth->src_addr, gw_mac, RTE_ETHER_ADDR_LEN);
	arp->arp_opcode = RTE_BE16(RTE_ARP_OP_REPLY);
	memcpy(&body->arp_tha, guest_mac, RTE_ETHER_ADDR_LEN);
	memcpy(&body->arp_tip, sender_ip, sizeof(sender_ip));
	memcpy(&body->arp_sha, gw_mac, RTE_ETHER_ADDR_LEN);
	memcpy(&body->arp_sip, target_ip, sizeof(target_ip));
	*reply_len = l3 + sizeof(*arp);
	return OF_C_GATEWAY_ARP_REPLIES;
}

void
of_link_local_of(const uint8_t mac[6], uint8_t addr[16])
{
	memset(addr, 0, 16);
	addr[0] = 0xfe;
	addr[1] = 0x80;
	addr[8] = mac[0] ^ 0x02;
	addr[9] = mac[1];
	addr[10] = mac[2];
	addr[11] = 0xff;
	addr[12] = 0xfe;
	addr[13] = mac[3];
	addr[14] = mac[4];
	addr[15] = mac[5];
}

int
of_gateway_ndp(uint8_t *frame, uint32_t len, uint32_t room, uint32_t l4,
	       const uint8_t guest_mac[6], const uint8_t gw_mac[6], uint32_t *reply_len)
{
	const struct rte_ether_hdr *eth = (const struct rte_ether_hdr *)frame;
	struct rte_ipv6_hdr *ip6;
	struct of_nd_msg *na;
	uint8_t target[16], gw_ll[16];
	uint32_t l3, n;
	rte_be16_t type;

	l3 = of_eth_l3_off(frame, len, &type);
	if (l3 == 0 || type != RTE_BE16(RTE_ETHER_TYPE_IPV6) || l4 < l3 || l4 >= len ||
	    frame[l4] < ND_TYPE_FIRST || frame[l4] > ND_TYPE_LAST)
		return OF_OK;

	/* From here on it is the gateway's: answered or dropped, never forwarded. */
	if (frame[l4] != OF_ICMP6_NEIGH_SOLICIT || len - l4 < sizeof(struct of_nd_msg) ||
	    memcmp(&eth->src_addr, guest_mac, RTE_ETHER_ADDR_LEN) != 0)
		return OF_C_GATEWAY_NDP_IGNORED;
	ip6 = (struct rte_ipv6_hdr *)(frame + l3);
	/* a copy: the advertisement is written over the solicitation's target */
	memcpy(target, frame + l4 + offsetof(struct of_nd_msg, target), sizeof(target));
	if (target[0] == 0xff || memcmp(target, unspecified, sizeof(target)) == 0)
		return OF_C_GATEWAY_NDP_IGNORED;	/* not multicast (RFC 4861 7.1.1), not :: */
	/* a probe from :: is for an address its sender wants: only the gateway's own is defended */
	of_link_local_of(gw_mac, gw_ll);
	if (memcmp(&ip6->src_addr, unspecified, sizeof(unspecified)) == 0 &&
	    memcmp(target, gw_ll, sizeof(gw_ll)) != 0)
		return OF_C_GATEWAY_NDP_IGNORED;

	n = of_ndp_build_advert(frame, len, room, gw_mac, target);
	if (n == 0)
		return OF_C_GATEWAY_NDP_IGNORED;
	/* ndp.c answers as a host; the gateway is a router (RFC 4861 7.2.4) */
	na = (struct of_nd_msg *)(frame + l4);
	na->flags |= RTE_BE32(OF_ND_NA_FLAG_ROUTER);
	na->cksum = 0;
	na->cksum = (uint16_t)~of_cksum_ip6_l4(ip6, (const uint8_t *)na, n - l4, IPPROTO_ICMPV6);
	*reply_len = n;
	return OF_C_GATEWAY_NDP_REPLIES;
}
