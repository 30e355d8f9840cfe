/*
 * Neighbor solicitation check and in-place advertisement for the underlay
 * address; the contract is in ndp.h. A rare path: clarity over speed.
 */
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>

#include "ndp.h"
#include "parse.h"
#include "wire.h"

static const uint8_t unspecified[16];
static const uint8_t all_nodes[16] = { 0xff, 0x02, [15] = 0x01 };
static const uint8_t all_nodes_mac[RTE_ETHER_ADDR_LEN] = { 0x33, 0x33, 0, 0, 0, 0x01 };

/* ff02::1:ffXX:XXXX, the group solicitations for addr go to (RFC 4291 2.7.1) */
static int
is_solicited_node_group(const uint8_t *dst, const uint8_t addr[16])
{
	static const uint8_t prefix[13] = { 0xff, 0x02, [11] = 0x01, [12] = 0xff };

	return memcmp(dst, prefix, sizeof(prefix)) == 0 &&
	       memcmp(dst + sizeof(prefix), addr + sizeof(prefix), 16 - sizeof(prefix)) == 0;
}

int
of_nd_options_valid(const uint8_t *opts, uint32_t len, int from_unspecified)
{
	for (uint32_t off = 0, opt_len; off < len; off += opt_len) {
		if (len - off < 2)
			return 0;
		opt_len = opts[off + 1] * OF_ND_OPT_UNIT;
		if (opt_len == 0 || len - off < opt_len)
			return 0;
		/* a probing node has no address to be reached at yet */
		if (from_unspecified && opts[off] == OF_ND_OPT_SOURCE_LLADDR)
			return 0;
	}
	return 1;
}

/* Offset of the IPv6 header of a solicitation for addr we may answer, or 0. */
static uint32_t
solicit_l3_off(const uint8_t *frame, uint32_t len, const uint8_t addr[16])
{
	const struct rte_ipv6_hdr *ip6;
	const struct of_nd_msg *ns;
	const uint8_t *src, *dst;
	uint32_t l3, plen;
	rte_be16_t type;
	int from_unspecified;

	l3 = of_eth_l3_off(frame, len, &type);
	if (l3 == 0 || type != RTE_BE16(RTE_ETHER_TYPE_IPV6) || len - l3 < sizeof(*ip6))
		return 0;
	ip6 = (const struct rte_ipv6_hdr *)(frame + l3);
	plen = rte_be_to_cpu_16(ip6->payload_len);
	/* hop limit 255: nobody off-link can have sent it; no extension headers */
	if ((frame[l3] >> 4) != 6 || ip6->hop_limits != OF_ND_HOP_LIMIT ||
	    ip6->proto != IPPROTO_ICMPV6 || plen < sizeof(*ns) ||
	    len - l3 - sizeof(*ip6) < plen)
		return 0;

	src = (const uint8_t *)&ip6->src_addr;
	dst = (const uint8_t *)&ip6->dst_addr;
	from_unspecified = memcmp(src, unspecified, sizeof(unspecified)) == 0;
	if (src[0] == 0xff)
		return 0;
	if (!is_solicited_node_group(dst, addr) &&
	    (from_unspecified || memcmp(dst, addr, 16) != 0))
		return 0;

	ns = (const struct of_nd_msg *)(ip6 + 1);
	if (ns->type != OF_ICMP6_NEIGH_SOLICIT || ns->code != 0 ||
	    memcmp(ns->target, addr, sizeof(ns->target)) != 0)
		return 0;

	if (!of_nd_options_valid((const uint8_t *)(ns + 1), plen - sizeof(*ns), from_unspecified))
		return 0;
	if (of_cksum_ip6_l4(ip6, (const uint8_t *)ns, plen, IPPROTO_ICMPV6) != 0xffff)
		return 0;
	return l3;
}

int
of_ndp_is_solicit_for(const uint8_t *frame, uint32_t len, const uint8_t addr[16])
{
	return solicit_l3_off(frame, len, addr) != 0;
}

uint32_t
of_ndp_build_advert(uint8_t *frame, uint32_t len, uint32_t room,
		    const uint8_t mac[6], const uint8_t addr[16])
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)frame;
	struct rte_ipv6_hdr *ip6;
	struct of_nd_msg *na;
	struct of_nd_opt_lladdr *tlla;
	uint8_t solicitor[16];
	uint32_t l3, na_len;
	uint16_t sum;
	int dad;

	l3 = solicit_l3_off(frame, len, addr);
	na_len = l3 + sizeof(*ip6) + sizeof(*na) + sizeof(*tlla);
	if (l3 == 0 || room < na_len)
		return 0;
	ip6 = (struct rte_ipv6_hdr *)(frame + l3);
	memcpy(solicitor, &ip6->src_addr, sizeof(solicitor));
	dad = memcmp(solicitor, unspecified, sizeof(unspecified)) == 0;

	/* Ethernet: back where it came from; a VLAN tag stays as it is */
	if (dad)
		memcpy(&eth->dst_addr, all_nodes_mac, RTE_ETHER_ADDR_LEN);
	else
		rte_ether_addr_copy(&eth->src_addr, &eth->dst_addr);
	memcpy(&eth->src_addr, mac, RTE_ETHER_ADDR_LEN);

	ip6->vtc_flow = RTE_BE32(6u << 28);
	ip6->payload_len = RTE_BE16(sizeof(*na) + sizeof(*tlla));
	ip6->proto = IPPROTO_ICMPV6;
	ip6->hop_limits = OF_ND_HOP_LIMIT;
	memcpy(&ip6->src_addr, addr, 16);
	memcpy(&ip6->dst_addr, dad ? all_nodes : solicitor, 16);

	na = (struct of_nd_msg *)(ip6 + 1);
	na->type = OF_ICMP6_NEIGH_ADVERT;
	na->code = 0;
	na->cksum = 0;
	na->flags = rte_cpu_to_be_32((dad ? 0 : OF_ND_NA_FLAG_SOLICITED) | OF_ND_NA_FLAG_OVERRIDE);
	memcpy(na->target, addr, sizeof(na->target));
	tlla = (struct of_nd_opt_lladdr *)(na + 1);
	tlla->type = OF_ND_OPT_TARGET_LLADDR;
	tlla->len = sizeof(*tlla) / OF_ND_OPT_UNIT;
	memcpy(tlla->mac, mac, RTE_ETHER_ADDR_LEN);

	sum = of_cksum_ip6_l4(ip6, (const uint8_t *)na, sizeof(*na) + sizeof(*tlla), IPPROTO_ICMPV6);
	na->cksum = (uint16_t)~sum;
	return na_len;
}
