/*
 * Router advertisements of the guest's gateway (RFC 4861 6.2), in answer to
 * the guest's router solicitations; the contract is in guest.h. The
 * advertisement makes the gateway the guest's IPv6 default router, gives it
 * its MTU, says by its M and O flags whether DHCPv6 hands out addresses and
 * other configuration, and carries a prefix for autoconfiguration only when
 * the port is configured with one.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>

#include "gateway.h"
#include "ra.h"
#include "wire.h"

#define ND_ROUTER_SOLICIT	133
#define ND_ROUTER_ADVERT	134
#define RS_LEN			8	/* type, code, checksum, reserved */
#define RA_CUR_HOP_LIMIT	64
#define RA_FLAG_MANAGED		0x80
#define RA_FLAG_OTHER		0x40
#define ND_OPT_PREFIX_INFO	3
#define ND_OPT_MTU		5
#define ND_OPT_RDNSS		25	/* RFC 8106 */
#define PREFIX_FLAG_ON_LINK	0x80
#define PREFIX_FLAG_AUTONOMOUS	0x40

static const uint8_t unspecified[16];
static const uint8_t all_nodes[16] = { 0xff, 0x02, [15] = 0x01 };
static const uint8_t all_nodes_mac[RTE_ETHER_ADDR_LEN] = { 0x33, 0x33, 0, 0, 0, 0x01 };

/* RFC 4861 6.1.1: 1 if the solicitation at l4 (icmp_len bytes) is valid. */
static int
solicit_valid(const struct rte_ipv6_hdr *ip6, const uint8_t *rs, uint32_t icmp_len)
{
	int from_unspecified = memcmp(&ip6->src_addr, unspecified, 16) == 0;

	if (ip6->hop_limits != OF_ND_HOP_LIMIT || icmp_len < RS_LEN || rs[0] != ND_ROUTER_SOLICIT || rs[1] != 0)
		return 0;
	for (uint32_t off = RS_LEN, opt_len; off < icmp_len; off += opt_len) {
		if (icmp_len - off < 2)
			return 0;
		opt_len = rs[off + 1] * OF_ND_OPT_UNIT;
		if (opt_len == 0 || icmp_len - off < opt_len)
			return 0;
		if (from_unspecified && rs[off] == OF_ND_OPT_SOURCE_LLADDR)
			return 0;
	}
	return of_cksum_ip6_l4(ip6, rs, icmp_len, IPPROTO_ICMPV6) == 0xffff;
}

static void
store_be16(uint8_t *p, uint16_t v)
{
	rte_be16_t be = rte_cpu_to_be_16(v);

	memcpy(p, &be, 2);
}

static void
store_be32(uint8_t *p, uint32_t v)
{
	rte_be32_t be = rte_cpu_to_be_32(v);

	memcpy(p, &be, 4);
}

int
of_ra_answer(uint8_t *frame, uint32_t len, uint32_t room, const struct of_inner_meta *m,
	     const struct of_guest *g, uint32_t *reply_len)
{
	const struct of_guest_net *n = &g->net;
	struct rte_ipv6_hdr *ip6 = (struct rte_ipv6_hdr *)(frame + m->l2_len);
	uint32_t l4 = (uint32_t)m->l2_len + m->l3_len, ip_end, ra_len, o;
	uint8_t solicitor[16], *ra;
	uint16_t cksum;
	int to_all;

	ip_end = (uint32_t)m->l2_len + sizeof(*ip6) + rte_be_to_cpu_16(ip6->payload_len);
	if (m->l3_len != sizeof(*ip6) || ip_end > len || ip_end < l4 ||
	    !solicit_valid(ip6, frame + l4, ip_end - l4))
		return OF_C_GATEWAY_NDP_IGNORED;

	ra_len = 16 + 8 + 8;	/* header, source link-layer address, MTU */
	if (n->has_ra_prefix)
		ra_len += 32;
	if (n->n_dns6 != 0)
		ra_len += 8 + 16u * n->n_dns6;
	if (room < l4 + ra_len)
		return OF_C_GATEWAY_NDP_IGNORED;

	/* RFC 4861 6.2.6: to the solicitor, or to all nodes when it has no address yet */
	memcpy(solicitor, &ip6->src_addr, 16);
	to_all = memcmp(solicitor, unspecified, 16) == 0;
	memcpy(frame, to_all ? all_nodes_mac : g->mac, RTE_ETHER_ADDR_LEN);
	memcpy(frame + RTE_ETHER_ADDR_LEN, g->gw_mac, RTE_ETHER_ADDR_LEN);
	ip6->vtc_flow = RTE_BE32(6u << 28);
	ip6->payload_len = rte_cpu_to_be_16((uint16_t)ra_len);
	ip6->proto = IPPROTO_ICMPV6;
	ip6->hop_limits = OF_ND_HOP_LIMIT;
	of_link_local_of(g->gw_mac, (uint8_t *)&ip6->src_addr);
	memcpy(&ip6->dst_addr, to_all ? all_nodes : solicitor, 16);

	ra = frame + l4;
	memset(ra, 0, ra_len);
	ra[0] = ND_ROUTER_ADVERT;
	ra[4] = RA_CUR_HOP_LIMIT;
	ra[5] = (n->ra_managed ? RA_FLAG_MANAGED : 0) | (n->ra_other ? RA_FLAG_OTHER : 0);
	store_be16(ra + 6, n->ra_router_lifetime_s);
	/* reachable time and retransmit timer 0: unspecified by this router */
	o = 16;
	ra[o] = OF_ND_OPT_SOURCE_LLADDR;
	ra[o + 1] = 1;
	memcpy(ra + o + 2, g->gw_mac, RTE_ETHER_ADDR_LEN);
	o += 8;
	ra[o] = ND_OPT_MTU;
	ra[o + 1] = 1;
	store_be32(ra + o + 4, n->mtu);
	o += 8;
	if (n->has_ra_prefix) {
		ra[o] = ND_OPT_PREFIX_INFO;
		ra[o + 1] = 4;
		ra[o + 2] = n->ra_prefix.depth;
		ra[o + 3] = PREFIX_FLAG_ON_LINK | PREFIX_FLAG_AUTONOMOUS;
		store_be32(ra + o + 4, n->lease_s);	/* valid */
		store_be32(ra + o + 8, n->lease_s);	/* preferred */
		memcpy(ra + o + 16, n->ra_prefix.addr, 16);
		o += 32;
	}
	if (n->n_dns6 != 0) {
		ra[o] = ND_OPT_RDNSS;
		ra[o + 1] = (uint8_t)(1 + 2 * n->n_dns6);
		store_be32(ra + o + 4, n->lease_s);
		memcpy(ra + o + 8, n->dns6, 16u * n->n_dns6);
	}
	/* the sum is in memory order: stored as is */
	cksum = (uint16_t)~of_cksum_ip6_l4(ip6, ra, ra_len, IPPROTO_ICMPV6);
	memcpy(ra + 2, &cksum, sizeof(cksum));
	*reply_len = l4 + ra_len;
	return OF_C_GATEWAY_RA_REPLIES;
}
