/*
 * Guest packets too big for the underlay: the ICMP error back to the guest,
 * built in place over the packet it answers; the contract is in mtu.h. Pure,
 * like the gateway's answers; outbound_mtu.c sends it.
 */
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>

#include "gateway.h"
#include "mtu.h"

#define ICMP_DEST_UNREACH	3
#define ICMP_FRAG_NEEDED	4	/* code */
#define ICMP6_PACKET_TOO_BIG	2
#define ICMP_HDR_LEN		8
#define ICMP_ERROR_MAX		576	/* RFC 1812 4.3.2.3: the whole IPv4 error at most */
#define ICMP6_ERROR_MAX		1280	/* RFC 4443 2.4 c: the IPv6 minimum MTU */
#define ICMP_TTL		64

/* _Static_assert: the encap's 16-bit UDP length holds any frame the MTU check lets through. */
_Static_assert(OF_UNDERLAY_MTU_MAX <= UINT16_MAX, "outer lengths are 16 bits");

int
of_ipv4_dont_fragment(const uint8_t *frame, const struct of_inner_meta *m)
{
	const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(frame + m->l2_len);

	return (ip->fragment_offset & RTE_BE16(RTE_IPV4_HDR_DF_FLAG)) != 0;
}

uint32_t
of_icmp_too_big(uint8_t *frame, uint32_t len, const struct of_inner_meta *m, const struct of_guest *g,
		uint16_t mtu)
{
	uint32_t l3 = m->l2_len, ip_len, hdr, quote;
	uint8_t *icmp;
	uint16_t sum;

	if (!m->is_ipv6) {
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(frame + l3);

		hdr = sizeof(*ip) + ICMP_HDR_LEN;
		ip_len = rte_be_to_cpu_16(ip->total_length);
		quote = RTE_MIN(ip_len, (uint32_t)ICMP_ERROR_MAX - hdr);
		if (len - l3 < hdr || len - l3 - hdr < quote)
			return 0;
		memmove(frame + l3 + hdr, frame + l3, quote);
		/* the quoted header, now at l3 + hdr, still names the guest as the source */
		memset(ip, 0, hdr);
		ip->version_ihl = RTE_IPV4_VHL_DEF;
		ip->total_length = rte_cpu_to_be_16((uint16_t)(hdr + quote));
		ip->time_to_live = ICMP_TTL;
		ip->next_proto_id = IPPROTO_ICMP;
		memcpy(&ip->src_addr, g->net.ipv4_gateway, 4);
		memcpy(&ip->dst_addr, frame + l3 + hdr + offsetof(struct rte_ipv4_hdr, src_addr), 4);
		ip->hdr_checksum = rte_ipv4_cksum(ip);
		icmp = (uint8_t *)(ip + 1);
		icmp[0] = ICMP_DEST_UNREACH;
		icmp[1] = ICMP_FRAG_NEEDED;
		icmp[6] = (uint8_t)(mtu >> 8);	/* next-hop MTU (RFC 1191 4) */
		icmp[7] = (uint8_t)mtu;
		sum = (uint16_t)~of_cksum_add(0, icmp, ICMP_HDR_LEN + quote);
	} else {
		struct rte_ipv6_hdr *ip6 = (struct rte_ipv6_hdr *)(frame + l3);

		hdr = sizeof(*ip6) + ICMP_HDR_LEN;
		ip_len = sizeof(*ip6) + rte_be_to_cpu_16(ip6->payload_len);
		quote = RTE_MIN(ip_len, (uint32_t)ICMP6_ERROR_MAX - hdr);
		if (len - l3 < hdr || len - l3 - hdr < quote)
			return 0;
		memmove(frame + l3 + hdr, frame + l3, quote);
		memset(ip6, 0, hdr);
		ip6->vtc_flow = RTE_BE32(6u << 28);
		ip6->payload_len = rte_cpu_to_be_16((uint16_t)(ICMP_HDR_LEN + quote));
		ip6->proto = IPPROTO_ICMPV6;
		ip6->hop_limits = OF_ND_HOP_LIMIT;
		of_link_local_of(g->gw_mac, (uint8_t *)&ip6->src_addr);
		memcpy(&ip6->dst_addr, frame + l3 + hdr + offsetof(struct rte_ipv6_hdr, src_addr), 16);
		icmp = (uint8_t *)(ip6 + 1);
		icmp[0] = ICMP6_PACKET_TOO_BIG;
		icmp[6] = (uint8_t)(mtu >> 8);	/* MTU, 32 bits (RFC 4443 3.2) */
		icmp[7] = (uint8_t)mtu;
		sum = (uint16_t)~of_cksum_ip6_l4(ip6, icmp, ICMP_HDR_LEN + quote, IPPROTO_ICMPV6);
	}
	memcpy(icmp + 2, &sum, sizeof(sum));	/* in memory order, as summed */
	/* back to the guest from its gateway; a VLAN tag stays as it is */
	memcpy(frame, g->mac, RTE_ETHER_ADDR_LEN);
	memcpy(frame + RTE_ETHER_ADDR_LEN, g->gw_mac, RTE_ETHER_ADDR_LEN);
	return l3 + hdr + quote;
}
