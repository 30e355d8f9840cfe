/*
 * DHCPv4 (RFC 2131, 2132) and DHCPv6 (RFC 8415) servers of the guest's
 * gateway, answered in place as OPTE's gateway layer does: each port has one
 * address per family to hand out, so there is no pool and no lease table.
 * The contract is in guest.h. A rare path: clarity over speed; every read
 * is bounded by the UDP datagram, every write by room.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include "gateway.h"
#include "dhcp.h"
#include "guest_net.h"

/* A reply is built here, then copied over the request: requests are smaller than replies. */
#define REPLY_MAX		1024

/* DHCPv4 */
#define BOOTP_FIXED_LEN		236	/* op .. file */
#define BOOTP_MIN_LEN		300	/* RFC 951: replies are padded to it */
#define BOOTP_OP_REQUEST	1
#define BOOTP_OP_REPLY		2
#define BOOTP_HTYPE_ETHER	1
#define BOOTP_FLAG_BROADCAST	0x8000
#define DHCP4_COOKIE		0x63825363u

#define DHCP4_OPT_PAD		0
#define DHCP4_OPT_SUBNET_MASK	1
#define DHCP4_OPT_ROUTER	3
#define DHCP4_OPT_DNS		6
#define DHCP4_OPT_DOMAIN	15
#define DHCP4_OPT_MTU		26
#define DHCP4_OPT_REQUESTED_IP	50
#define DHCP4_OPT_LEASE		51
#define DHCP4_OPT_MSG_TYPE	53
#define DHCP4_OPT_SERVER_ID	54
#define DHCP4_OPT_RENEWAL	58
#define DHCP4_OPT_REBINDING	59
#define DHCP4_OPT_END		255

#define DHCP4_DISCOVER		1
#define DHCP4_OFFER		2
#define DHCP4_REQUEST		3
#define DHCP4_ACK		5
#define DHCP4_NAK		6
#define DHCP4_INFORM		8

struct bootp {
	uint8_t op, htype, hlen, hops;
	rte_be32_t xid;
	rte_be16_t secs, flags;
	uint8_t ciaddr[4], yiaddr[4], siaddr[4], giaddr[4];
	uint8_t chaddr[16];
	uint8_t sname[64];
	uint8_t file[128];
	rte_be32_t cookie;
} __rte_packed;

_Static_assert(sizeof(struct bootp) == BOOTP_FIXED_LEN + 4, "BOOTP header");

/* DHCPv6 */
#define DHCP6_SOLICIT		1
#define DHCP6_ADVERTISE		2
#define DHCP6_REQUEST		3
#define DHCP6_CONFIRM		4
#define DHCP6_RENEW		5
#define DHCP6_REBIND		6
#define DHCP6_REPLY		7
#define DHCP6_RELEASE		8
#define DHCP6_DECLINE		9
#define DHCP6_INFO_REQUEST	11

#define DHCP6_OPT_CLIENTID	1
#define DHCP6_OPT_SERVERID	2
#define DHCP6_OPT_IA_NA		3
#define DHCP6_OPT_IAADDR	5
#define DHCP6_OPT_STATUS	13
#define DHCP6_OPT_RAPID_COMMIT	14
#define DHCP6_OPT_DNS		23
#define DHCP6_OPT_DOMAIN_LIST	24

#define DHCP6_STATUS_SUCCESS	0
#define DHCP6_STATUS_NOT_ON_LINK 4
#define DHCP6_DUID_LL		3	/* RFC 8415 11.4: type, hardware type, link-layer address */
#define DHCP6_DUID_LL_LEN	10
#define DHCP6_CLIENTID_MAX	130	/* RFC 8415 11.1: a DUID is at most 128 bytes, plus its type */
#define DHCP6_HOP_LIMIT		255

static const uint8_t broadcast_mac[RTE_ETHER_ADDR_LEN] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

/* A growing reply: writes past the end set overflow instead. */
struct writer {
	uint8_t *buf;
	uint32_t len, cap;
	int overflow;
};

static void
put(struct writer *w, const void *p, uint32_t n)
{
	if (n == 0)
		return;
	if (w->overflow || w->cap - w->len < n) {
		w->overflow = 1;
		return;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void
put_u8(struct writer *w, uint8_t v)
{
	put(w, &v, 1);
}

static void
put_be16(struct writer *w, uint16_t v)
{
	rte_be16_t be = rte_cpu_to_be_16(v);

	put(w, &be, 2);
}

static void
put_be32(struct writer *w, uint32_t v)
{
	rte_be32_t be = rte_cpu_to_be_32(v);

	put(w, &be, 4);
}

static uint16_t
load_be16(const uint8_t *p)
{
	rte_be16_t be;

	memcpy(&be, p, 2);
	return rte_be_to_cpu_16(be);
}

/* A copy of the request's Ethernet header (and VLAN tag), from the gateway to the guest. */
static void
put_l2(struct writer *w, const uint8_t *frame, uint16_t l2_len, const struct of_guest *g,
       const uint8_t *dst_mac)
{
	put(w, dst_mac, RTE_ETHER_ADDR_LEN);
	put(w, g->gw_mac, RTE_ETHER_ADDR_LEN);
	put(w, frame + 2 * RTE_ETHER_ADDR_LEN, l2_len - 2u * RTE_ETHER_ADDR_LEN);
}

/* The reply over the request, if room holds it. */
static int
finish(struct writer *w, uint8_t *frame, uint32_t room, uint32_t *reply_len, int answered, int ignored)
{
	if (w->overflow || w->len > room)
		return ignored;
	memcpy(frame, w->buf, w->len);
	*reply_len = w->len;
	return answered;
}

/* -- DHCPv4 ------------------------------------------------------------------------------ */

struct dhcp4_request {
	uint8_t msg_type;
	uint8_t has_requested_ip, has_server_id;
	uint8_t requested_ip[4];
	uint8_t server_id[4];
};

/* Walk the options (RFC 2132 2): 0 if they are well formed up to the end option. */
static int
dhcp4_options(const uint8_t *opt, uint32_t n, struct dhcp4_request *r)
{
	uint32_t off = 0;

	while (off < n) {
		uint8_t code = opt[off], len;

		if (code == DHCP4_OPT_PAD) {
			off++;
			continue;
		}
		if (code == DHCP4_OPT_END)
			return 0;
		if (n - off < 2 || n - off - 2 < opt[off + 1])
			return -1;
		len = opt[off + 1];
		if (code == DHCP4_OPT_MSG_TYPE && len == 1)
			r->msg_type = opt[off + 2];
		else if (code == DHCP4_OPT_REQUESTED_IP && len == 4) {
			r->has_requested_ip = 1;
			memcpy(r->requested_ip, opt + off + 2, 4);
		} else if (code == DHCP4_OPT_SERVER_ID && len == 4) {
			r->has_server_id = 1;
			memcpy(r->server_id, opt + off + 2, 4);
		}
		off += 2u + len;
	}
	return -1;	/* no end option */
}

static void
put_opt4(struct writer *w, uint8_t code, const void *p, uint8_t n)
{
	put_u8(w, code);
	put_u8(w, n);
	put(w, p, n);
}

static void
put_opt4_u32(struct writer *w, uint8_t code, uint32_t v)
{
	rte_be32_t be = rte_cpu_to_be_32(v);

	put_opt4(w, code, &be, 4);
}

int
of_dhcp4_answer(uint8_t *frame, uint32_t len, uint32_t room, const struct of_inner_meta *m,
		const struct of_guest *g, uint32_t *reply_len)
{
	static const uint8_t zero4[4];
	static const uint8_t no_sname_file[sizeof(((struct bootp *)0)->sname) + sizeof(((struct bootp *)0)->file)];
	const struct of_guest_net *n = &g->net;
	const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(frame + m->l2_len);
	const struct rte_udp_hdr *udp;
	const struct bootp *req;
	struct dhcp4_request r = { 0 };
	uint8_t out[REPLY_MAX] __rte_aligned(8);
	struct writer w = { .buf = out, .cap = sizeof(out) };
	uint32_t l4 = (uint32_t)m->l2_len + m->l3_len, udp_len, ip_end, ip_off, udp_off, bootp_off;
	uint8_t reply_type, mask[4], dst_ip[4];
	const uint8_t *dst_mac = g->mac;
	rte_be32_t mask_be;
	int nak;

	/* the parse checked the IPv4 header and that total length fits in the frame */
	ip_end = m->l2_len + rte_be_to_cpu_16(ip->total_length);
	if (ip_end > len || ip_end < l4 || ip_end - l4 < sizeof(*udp))
		return OF_C_GATEWAY_DHCP4_IGNORED;
	if (memcmp(&ip->src_addr, zero4, 4) != 0 && !of_guest_src_ok(&g->net, m))
		return OF_C_SPOOF_SRC_IP;
	if (!n->has_ipv4)
		return OF_C_GATEWAY_DHCP4_IGNORED;
	udp = (const struct rte_udp_hdr *)(frame + l4);
	udp_len = rte_be_to_cpu_16(udp->dgram_len);
	if (udp_len > ip_end - l4 || udp_len < sizeof(*udp) + sizeof(*req) ||
	    rte_be_to_cpu_16(udp->src_port) != OF_DHCP4_CLIENT_PORT)
		return OF_C_GATEWAY_DHCP4_IGNORED;
	req = (const struct bootp *)(udp + 1);
	if (req->op != BOOTP_OP_REQUEST || req->htype != BOOTP_HTYPE_ETHER || req->hlen != RTE_ETHER_ADDR_LEN ||
	    req->cookie != RTE_BE32(DHCP4_COOKIE) || memcmp(req->chaddr, g->mac, RTE_ETHER_ADDR_LEN) != 0 ||
	    dhcp4_options((const uint8_t *)(req + 1), udp_len - sizeof(*udp) - sizeof(*req), &r) != 0)
		return OF_C_GATEWAY_DHCP4_IGNORED;

	switch (r.msg_type) {
	case DHCP4_DISCOVER:
		reply_type = DHCP4_OFFER;
		break;
	case DHCP4_REQUEST:
		/* RFC 2131 4.3.2: a client that chose another server is not ours to answer */
		if (r.has_server_id && memcmp(r.server_id, n->ipv4_gateway, 4) != 0)
			return OF_C_GATEWAY_DHCP4_IGNORED;
		nak = memcmp(r.has_requested_ip ? r.requested_ip : req->ciaddr, n->ipv4, 4) != 0;
		reply_type = nak ? DHCP4_NAK : DHCP4_ACK;
		break;
	case DHCP4_INFORM:
		reply_type = DHCP4_ACK;
		break;
	default:	/* DECLINE and RELEASE need no answer; the rest are servers' messages */
		return OF_C_GATEWAY_DHCP4_IGNORED;
	}

	/* RFC 2131 4.1: where the reply goes */
	if (r.msg_type == DHCP4_INFORM || (r.msg_type == DHCP4_REQUEST && memcmp(req->ciaddr, zero4, 4) != 0 &&
					   reply_type == DHCP4_ACK))
		memcpy(dst_ip, req->ciaddr, 4);
	else if (reply_type == DHCP4_NAK || (req->flags & RTE_BE16(BOOTP_FLAG_BROADCAST)))
		memset(dst_ip, 0xff, 4);
	else
		memcpy(dst_ip, n->ipv4, 4);
	if (memcmp(dst_ip, zero4, 4) == 0)
		memset(dst_ip, 0xff, 4);
	if (reply_type == DHCP4_NAK)
		dst_mac = broadcast_mac;

	put_l2(&w, frame, m->l2_len, g, dst_mac);
	ip_off = w.len;
	put_u8(&w, 0x45);
	put_u8(&w, 0);
	put_be16(&w, 0);	/* total length, below */
	put_be32(&w, 0);	/* id, flags, fragment offset */
	put_u8(&w, 64);
	put_u8(&w, IPPROTO_UDP);
	put_be16(&w, 0);	/* checksum, below */
	put(&w, n->ipv4_gateway, 4);
	put(&w, dst_ip, 4);
	udp_off = w.len;
	put_be16(&w, OF_DHCP4_SERVER_PORT);
	put_be16(&w, OF_DHCP4_CLIENT_PORT);
	put_be32(&w, 0);	/* length and checksum, below */

	bootp_off = w.len;
	put_u8(&w, BOOTP_OP_REPLY);
	put_u8(&w, BOOTP_HTYPE_ETHER);
	put_u8(&w, RTE_ETHER_ADDR_LEN);
	put_u8(&w, 0);
	put(&w, &req->xid, 4);
	put_be16(&w, 0);
	put(&w, &req->flags, 2);
	put(&w, req->ciaddr, 4);
	put(&w, reply_type == DHCP4_NAK || r.msg_type == DHCP4_INFORM ? zero4 : n->ipv4, 4);
	put(&w, zero4, 4);	/* siaddr: no boot server */
	put(&w, req->giaddr, 4);
	put(&w, req->chaddr, sizeof(req->chaddr));
	put(&w, no_sname_file, sizeof(no_sname_file));
	put_be32(&w, DHCP4_COOKIE);

	put_opt4(&w, DHCP4_OPT_MSG_TYPE, &reply_type, 1);
	put_opt4(&w, DHCP4_OPT_SERVER_ID, n->ipv4_gateway, 4);
	if (reply_type != DHCP4_NAK) {
		/* RFC 2131 3.4: no lease in the answer to an INFORM */
		if (r.msg_type != DHCP4_INFORM) {
			put_opt4_u32(&w, DHCP4_OPT_LEASE, n->lease_s);
			put_opt4_u32(&w, DHCP4_OPT_RENEWAL, n->lease_s / 2);
			put_opt4_u32(&w, DHCP4_OPT_REBINDING, (uint32_t)((uint64_t)n->lease_s * 7 / 8));
		}
		mask_be = rte_cpu_to_be_32(~0u << (32 - n->ipv4_prefix_len));
		memcpy(mask, &mask_be, 4);
		put_opt4(&w, DHCP4_OPT_SUBNET_MASK, mask, 4);
		put_opt4(&w, DHCP4_OPT_ROUTER, n->ipv4_gateway, 4);
		if (n->n_dns4 != 0)
			put_opt4(&w, DHCP4_OPT_DNS, n->dns4, (uint8_t)(4 * n->n_dns4));
		if (n->domain[0] != '\0')
			put_opt4(&w, DHCP4_OPT_DOMAIN, n->domain, (uint8_t)strlen(n->domain));
		put_u8(&w, DHCP4_OPT_MTU);
		put_u8(&w, 2);
		put_be16(&w, n->mtu);
	}
	put_u8(&w, DHCP4_OPT_END);
	while (!w.overflow && w.len - bootp_off < BOOTP_MIN_LEN)
		put_u8(&w, DHCP4_OPT_PAD);
	if (w.overflow)
		return OF_C_GATEWAY_DHCP4_IGNORED;

	{
		struct rte_ipv4_hdr *rip = (struct rte_ipv4_hdr *)(out + ip_off);
		struct rte_udp_hdr *rudp = (struct rte_udp_hdr *)(out + udp_off);

		rip->total_length = rte_cpu_to_be_16((uint16_t)(w.len - ip_off));
		rip->hdr_checksum = rte_ipv4_cksum(rip);
		rudp->dgram_len = rte_cpu_to_be_16((uint16_t)(w.len - udp_off));
		rudp->dgram_cksum = rte_ipv4_udptcp_cksum(rip, rudp);
	}
	return finish(&w, frame, room, reply_len, OF_C_GATEWAY_DHCP4_REPLIES, OF_C_GATEWAY_DHCP4_IGNORED);
}

/* -- DHCPv6 ------------------------------------------------------------------------------ */

struct dhcp6_request {
	uint8_t type;
	const uint8_t *client_id;	/* option body */
	uint16_t client_id_len;
	const uint8_t *server_id;
	uint16_t server_id_len;
	const uint8_t *ia_na;		/* the first IA_NA's body: IAID, T1, T2, options */
	uint16_t ia_na_len;
	uint8_t rapid_commit;
};

/* Walk options (RFC 8415 21.1): 0 if every one lies inside the n bytes. */
static int
dhcp6_options(const uint8_t *opt, uint32_t n, struct dhcp6_request *r)
{
	uint32_t off = 0;

	while (off < n) {
		uint16_t code, len;

		if (n - off < 4)
			return -1;
		code = load_be16(opt + off);
		len = load_be16(opt + off + 2);
		if (n - off - 4 < len)
			return -1;
		if (code == DHCP6_OPT_CLIENTID && r->client_id == NULL) {
			r->client_id = opt + off + 4;
			r->client_id_len = len;
		} else if (code == DHCP6_OPT_SERVERID && r->server_id == NULL) {
			r->server_id = opt + off + 4;
			r->server_id_len = len;
		} else if (code == DHCP6_OPT_IA_NA && r->ia_na == NULL) {
			r->ia_na = opt + off + 4;
			r->ia_na_len = len;
		} else if (code == DHCP6_OPT_RAPID_COMMIT) {
			r->rapid_commit = 1;
		}
		off += 4u + len;
	}
	return 0;
}

static void
put_opt6(struct writer *w, uint16_t code, const void *p, uint16_t n)
{
	put_be16(w, code);
	put_be16(w, n);
	put(w, p, n);
}

static void
server_duid(const struct of_guest *g, uint8_t duid[DHCP6_DUID_LL_LEN])
{
	duid[0] = 0;
	duid[1] = DHCP6_DUID_LL;
	duid[2] = 0;
	duid[3] = 1;	/* hardware type: Ethernet */
	memcpy(duid + 4, g->gw_mac, RTE_ETHER_ADDR_LEN);
}

/* Every address in the IA_NA body is the port's (CONFIRM, RFC 8415 18.3.3); 1 with none given. */
static int
ia_na_addresses_ours(const uint8_t *ia, uint16_t len, const uint8_t ours[16])
{
	uint32_t off = 12;	/* IAID, T1, T2 */

	while (off + 4 <= len) {
		uint16_t code = load_be16(ia + off), olen = load_be16(ia + off + 2);

		if ((uint32_t)len - off - 4 < olen)
			return 0;
		if (code == DHCP6_OPT_IAADDR && (olen < 16 || memcmp(ia + off + 4, ours, 16) != 0))
			return 0;
		off += 4u + olen;
	}
	return 1;
}

/* The port's address in an IA_NA with the client's IAID (RFC 8415 21.4, 21.6). */
static void
put_ia_na(struct writer *w, const struct of_guest *g, const uint8_t *iaid)
{
	const struct of_guest_net *n = &g->net;

	put_be16(w, DHCP6_OPT_IA_NA);
	put_be16(w, 12 + 4 + 24);
	put(w, iaid, 4);
	put_be32(w, n->lease_s / 2);				/* T1 */
	put_be32(w, (uint32_t)((uint64_t)n->lease_s * 4 / 5));	/* T2 */
	put_be16(w, DHCP6_OPT_IAADDR);
	put_be16(w, 24);
	put(w, n->ipv6, 16);
	put_be32(w, n->lease_s);				/* preferred */
	put_be32(w, n->lease_s);				/* valid */
}

/* The domain in DNS wire format (RFC 1035 3.1), for the domain search list. 0 if it cannot be. */
static uint32_t
dns_name(const char *domain, uint8_t *out, uint32_t cap)
{
	uint32_t o = 0;
	const char *label = domain;

	while (*label != '\0') {
		const char *dot = strchr(label, '.');
		size_t n = dot != NULL ? (size_t)(dot - label) : strlen(label);

		if (n == 0 || n > 63 || cap - o < n + 2)
			return 0;
		out[o++] = (uint8_t)n;
		memcpy(out + o, label, n);
		o += (uint32_t)n;
		label += n + (dot != NULL);
	}
	if (o == 0 || cap - o < 1)
		return 0;
	out[o++] = 0;
	return o;
}

int
of_dhcp6_answer(uint8_t *frame, uint32_t len, uint32_t room, const struct of_inner_meta *m,
		const struct of_guest *g, uint32_t *reply_len)
{
	const struct of_guest_net *n = &g->net;
	const struct rte_ipv6_hdr *ip6 = (const struct rte_ipv6_hdr *)(frame + m->l2_len);
	const struct rte_udp_hdr *udp;
	const uint8_t *msg;
	struct dhcp6_request r = { 0 };
	uint8_t out[REPLY_MAX] __rte_aligned(8), duid[DHCP6_DUID_LL_LEN], gw_ll[16], name[OF_GUEST_DOMAIN_LEN + 1];
	struct writer w = { .buf = out, .cap = sizeof(out) };
	uint32_t l4 = (uint32_t)m->l2_len + m->l3_len, ip_end, udp_len, ip_off, udp_off, name_len;
	uint8_t reply_type = DHCP6_REPLY;
	uint16_t status = DHCP6_STATUS_SUCCESS;
	int with_status = 0, with_address = 0;

	ip_end = (uint32_t)m->l2_len + sizeof(*ip6) + rte_be_to_cpu_16(ip6->payload_len);
	if (!n->has_ipv6 || ip_end > len || ip_end < l4 || ip_end - l4 < sizeof(*udp) + 4)
		return OF_C_GATEWAY_DHCP6_IGNORED;
	udp = (const struct rte_udp_hdr *)(frame + l4);
	udp_len = rte_be_to_cpu_16(udp->dgram_len);
	if (udp_len > ip_end - l4 || udp_len < sizeof(*udp) + 4 ||
	    rte_be_to_cpu_16(udp->src_port) != OF_DHCP6_CLIENT_PORT)
		return OF_C_GATEWAY_DHCP6_IGNORED;
	msg = (const uint8_t *)(udp + 1);
	r.type = msg[0];
	if (dhcp6_options(msg + 4, udp_len - sizeof(*udp) - 4, &r) != 0 ||
	    r.client_id_len > DHCP6_CLIENTID_MAX || (r.ia_na != NULL && r.ia_na_len < 12))
		return OF_C_GATEWAY_DHCP6_IGNORED;

	/* RFC 8415 16: which messages carry which identifiers; a server id must be ours */
	server_duid(g, duid);
	if (r.server_id != NULL && (r.server_id_len != sizeof(duid) || memcmp(r.server_id, duid, sizeof(duid)) != 0))
		return OF_C_GATEWAY_DHCP6_IGNORED;
	switch (r.type) {
	case DHCP6_SOLICIT:
		if (r.client_id == NULL || r.server_id != NULL)
			return OF_C_GATEWAY_DHCP6_IGNORED;
		reply_type = r.rapid_commit ? DHCP6_REPLY : DHCP6_ADVERTISE;
		with_address = r.ia_na != NULL;
		break;
	case DHCP6_REQUEST:
	case DHCP6_RENEW:
		if (r.client_id == NULL || r.server_id == NULL)
			return OF_C_GATEWAY_DHCP6_IGNORED;
		with_address = r.ia_na != NULL;
		break;
	case DHCP6_REBIND:
		if (r.client_id == NULL || r.server_id != NULL)
			return OF_C_GATEWAY_DHCP6_IGNORED;
		with_address = r.ia_na != NULL;
		break;
	case DHCP6_CONFIRM:
		if (r.client_id == NULL || r.server_id != NULL || r.ia_na == NULL)
			return OF_C_GATEWAY_DHCP6_IGNORED;
		with_status = 1;
		status = ia_na_addresses_ours(r.ia_na, r.ia_na_len, n->ipv6) ? DHCP6_STATUS_SUCCESS :
									     DHCP6_STATUS_NOT_ON_LINK;
		break;
	case DHCP6_RELEASE:
	case DHCP6_DECLINE:
		if (r.client_id == NULL || r.server_id == NULL)
			return OF_C_GATEWAY_DHCP6_IGNORED;
		with_status = 1;
		break;
	case DHCP6_INFO_REQUEST:
		break;
	default:
		return OF_C_GATEWAY_DHCP6_IGNORED;
	}

	of_link_local_of(g->gw_mac, gw_ll);
	put_l2(&w, frame, m->l2_len, g, g->mac);
	ip_off = w.len;
	put_be32(&w, 6u << 28);
	put_be16(&w, 0);	/* payload length, below */
	put_u8(&w, IPPROTO_UDP);
	put_u8(&w, DHCP6_HOP_LIMIT);
	put(&w, gw_ll, 16);
	put(&w, &ip6->src_addr, 16);
	udp_off = w.len;
	put_be16(&w, OF_DHCP6_SERVER_PORT);
	put_be16(&w, OF_DHCP6_CLIENT_PORT);
	put_be32(&w, 0);	/* length and checksum, below */
	put_u8(&w, reply_type);
	put(&w, msg + 1, 3);	/* transaction id */
	put_opt6(&w, DHCP6_OPT_SERVERID, duid, sizeof(duid));
	if (r.client_id != NULL)
		put_opt6(&w, DHCP6_OPT_CLIENTID, r.client_id, r.client_id_len);
	if (with_status) {
		put_be16(&w, DHCP6_OPT_STATUS);
		put_be16(&w, 2);
		put_be16(&w, status);
	} else {
		if (with_address)
			put_ia_na(&w, g, r.ia_na);
		if (r.type == DHCP6_SOLICIT && r.rapid_commit)
			put_opt6(&w, DHCP6_OPT_RAPID_COMMIT, NULL, 0);
		if (n->n_dns6 != 0)
			put_opt6(&w, DHCP6_OPT_DNS, n->dns6, (uint16_t)(16 * n->n_dns6));
		name_len = n->domain[0] != '\0' ? dns_name(n->domain, name, sizeof(name)) : 0;
		if (name_len != 0)
			put_opt6(&w, DHCP6_OPT_DOMAIN_LIST, name, (uint16_t)name_len);
	}
	if (w.overflow)
		return OF_C_GATEWAY_DHCP6_IGNORED;

	{
		struct rte_ipv6_hdr *rip = (struct rte_ipv6_hdr *)(out + ip_off);
		struct rte_udp_hdr *rudp = (struct rte_udp_hdr *)(out + udp_off);
		uint16_t udp_bytes = (uint16_t)(w.len - udp_off);

		rip->payload_len = rte_cpu_to_be_16(udp_bytes);
		rudp->dgram_len = rip->payload_len;
		rudp->dgram_cksum = rte_ipv6_udptcp_cksum(rip, rudp);
	}
	return finish(&w, frame, room, reply_len, OF_C_GATEWAY_DHCP6_REPLIES, OF_C_GATEWAY_DHCP6_IGNORED);
}
