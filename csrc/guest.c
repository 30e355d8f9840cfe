/*
 * A guest port's source checks and the dispatch to its gateway's answers;
 * the contract is in guest.h. Only of_guest_src_in_allowed runs for
 * forwarded packets, and only for ports with allowed prefixes.
 */
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>

#include "dhcp.h"
#include "gateway.h"
#include "guest.h"
#include "ra.h"
#include "wire.h"

#define ND_TYPE_FIRST		133	/* router solicitation */
#define ND_TYPE_LAST		137	/* redirect */
#define ND_ROUTER_SOLICIT	133
#define MLD_QUERY		130	/* to MLD_DONE: RFC 2710 */
#define MLD_DONE		132
#define MLD2_REPORT		143	/* RFC 3810 */

static const uint8_t v4_mapped_prefix[12] = { [10] = 0xff, [11] = 0xff };

int
of_guest_arp(uint8_t *frame, uint32_t len, uint32_t room, const struct of_guest *g, uint32_t *reply_len)
{
	static const uint8_t unspecified4[4];
	const struct rte_arp_hdr *arp;
	uint8_t sip[4];
	uint32_t l3;
	rte_be16_t type;

	l3 = of_eth_l3_off(frame, len, &type);
	if (l3 == 0 || type != RTE_BE16(RTE_ETHER_TYPE_ARP))
		return OF_C_NOT_IP;
	if (len - l3 < sizeof(*arp))
		return OF_C_GATEWAY_ARP_IGNORED;
	arp = (const struct rte_arp_hdr *)(frame + l3);
	memcpy(sip, &arp->arp_data.arp_sip, sizeof(sip));
	if (memcmp(&arp->arp_data.arp_sha, g->mac, RTE_ETHER_ADDR_LEN) != 0)
		return OF_C_SPOOF_ARP_SENDER;
	if (memcmp(sip, unspecified4, sizeof(sip)) != 0 &&
	    !(g->net.has_ipv4 && memcmp(sip, g->net.ipv4, sizeof(sip)) == 0)) {
		uint8_t mapped[16];

		memcpy(mapped, v4_mapped_prefix, sizeof(v4_mapped_prefix));
		memcpy(mapped + 12, sip, sizeof(sip));
		if (!of_guest_src_in_allowed(&g->net, mapped, 0))
			return OF_C_SPOOF_ARP_SENDER;
	}
	return of_gateway_arp(frame, len, room, g->mac, g->gw_mac, reply_len);
}

/* Sources neighbor discovery and DHCPv6 may use: the port's IPv6, a link-local address, or ::. */
static int
link_source_ok(const struct of_guest *g, const struct of_inner_meta *m)
{
	static const uint8_t unspecified[16];
	const uint8_t *src = m->key.src;

	return (src[0] == 0xfe && (src[1] & 0xc0) == 0x80) || memcmp(src, unspecified, 16) == 0 ||
	       of_guest_src_ok(&g->net, m);
}

static int
is_addr(const uint8_t *a, const uint8_t b[16])
{
	return memcmp(a, b, 16) == 0;
}

int
of_guest_service(uint8_t *frame, uint32_t len, uint32_t room, const struct of_inner_meta *m,
		 const struct of_guest *g, uint32_t *reply_len)
{
	static const uint8_t broadcast4[16] = { [10] = 0xff, [11] = 0xff, [12] = 0xff, [13] = 0xff,
						[14] = 0xff, [15] = 0xff };
	static const uint8_t dhcp6_servers[16] = { 0xff, 0x02, [13] = 0x01, [15] = 0x02 };
	uint32_t l4 = (uint32_t)m->l2_len + m->l3_len;
	uint8_t gw_ll[16];

	if (m->key.proto == IPPROTO_ICMPV6) {
		if (l4 >= len)
			return OF_OK;
		/* every guest reports its groups when its interface comes up: the link's, never forwarded */
		if ((frame[l4] >= MLD_QUERY && frame[l4] <= MLD_DONE) || frame[l4] == MLD2_REPORT)
			return link_source_ok(g, m) ? OF_C_GATEWAY_MLD_IGNORED : OF_C_SPOOF_SRC_IP;
		if (frame[l4] < ND_TYPE_FIRST || frame[l4] > ND_TYPE_LAST)
			return OF_OK;
		if (!link_source_ok(g, m))
			return OF_C_SPOOF_SRC_IP;
		if (frame[l4] == ND_ROUTER_SOLICIT)
			return g->net.has_ipv6 ? of_ra_answer(frame, len, room, m, g, reply_len) :
						 OF_C_GATEWAY_NDP_IGNORED;
		return of_gateway_ndp(frame, len, room, l4, g->mac, g->gw_mac, reply_len);
	}
	/* UDP to a DHCP server port: the gateway's when sent to it */
	if (!m->is_ipv6 && m->key.dst_port == OF_DHCP4_SERVER_PORT) {
		uint8_t gw_mapped[16];

		memcpy(gw_mapped, v4_mapped_prefix, sizeof(v4_mapped_prefix));
		memcpy(gw_mapped + 12, g->net.ipv4_gateway, 4);
		if (!is_addr(m->key.dst, broadcast4) && !(g->net.has_ipv4 && is_addr(m->key.dst, gw_mapped)))
			return OF_OK;
		return of_dhcp4_answer(frame, len, room, m, g, reply_len);
	}
	if (m->is_ipv6 && m->key.dst_port == OF_DHCP6_SERVER_PORT) {
		of_link_local_of(g->gw_mac, gw_ll);
		if (!is_addr(m->key.dst, dhcp6_servers) && !is_addr(m->key.dst, gw_ll))
			return OF_OK;
		if (!link_source_ok(g, m))
			return OF_C_SPOOF_SRC_IP;
		return of_dhcp6_answer(frame, len, room, m, g, reply_len);
	}
	return OF_OK;
}
