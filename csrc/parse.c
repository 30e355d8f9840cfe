/*
 * Inner (guest) frame and outer (underlay Geneve) header parsing; the
 * contract is in parse.h. Every read is preceded by a length check, written
 * as "bytes left < bytes needed" so no offset sum can wrap.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_udp.h>
#include <rte_tcp.h>
#include <rte_icmp.h>

#include "parse.h"
#include "wire.h"

/* What an IPv6 extension header walk ended on. */
enum ext_walk {
	EXT_DONE,		/* *proto is the upper-layer protocol, at *off */
	EXT_TRUNCATED,
	EXT_FRAGMENT,
	EXT_UNWALKABLE,
};

/*
 * Skip IPv6 extension headers from *off, just past the fixed header, to the
 * upper-layer header, reading nothing at or past end (*off <= end).
 */
static inline enum ext_walk
ip6_skip_ext(const uint8_t *frame, uint32_t end, uint8_t *proto, uint32_t *off)
{
	uint32_t hdr_len;
	unsigned int n;

	for (n = 0;; n++) {
		switch (*proto) {
		case IPPROTO_HOPOPTS:
			if (n != 0)	/* RFC 8200: only right after the IPv6 header */
				return EXT_UNWALKABLE;
			break;
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
		case IPPROTO_AH:
			break;
		case IPPROTO_FRAGMENT:
			return EXT_FRAGMENT;
		default:
			return EXT_DONE;
		}
		if (n == OF_IP6_MAX_EXT_HDRS)
			return EXT_UNWALKABLE;
		/* each starts with next header and a length byte */
		if (end - *off < 2)
			return EXT_TRUNCATED;
		if (*proto == IPPROTO_AH)	/* RFC 4302: 4-byte units, minus 2 */
			hdr_len = (frame[*off + 1] + 2u) * 4;
		else
			hdr_len = (frame[*off + 1] + 1u) * 8;
		if (end - *off < hdr_len)
			return EXT_TRUNCATED;
		*proto = frame[*off];
		*off += hdr_len;
	}
}

/* The drop reason for each way a guest frame can fail: one table per direction. */
struct inner_reasons {
	int truncated;
	int vlan_stacked;
	int not_ip;
	int bad_header;
	int fragment;
	int ext_unsupported;
	int l4_unsupported;
};

static const struct inner_reasons outbound_reasons = {
	.truncated = OF_C_PARSE_TRUNCATED,
	.vlan_stacked = OF_C_VLAN_STACKED,
	.not_ip = OF_C_NOT_IP,
	.bad_header = OF_C_IP_BAD_HEADER,
	.fragment = OF_C_IP_FRAGMENT,
	.ext_unsupported = OF_C_IP_EXT_UNSUPPORTED,
	.l4_unsupported = OF_C_L4_UNSUPPORTED,
};

static const struct inner_reasons inbound_reasons = {
	.truncated = OF_C_INNER_TRUNCATED,
	.vlan_stacked = OF_C_INNER_NOT_IP,	/* the ethertype under the tag is another tag */
	.not_ip = OF_C_INNER_NOT_IP,
	.bad_header = OF_C_INNER_BAD_HEADER,
	.fragment = OF_C_INNER_IP_FRAGMENT,
	.ext_unsupported = OF_C_INNER_BAD_HEADER,
	.l4_unsupported = OF_C_INNER_BAD_HEADER,
};

static inline int
is_vlan_tpid(rte_be16_t type)
{
	return type == RTE_BE16(RTE_ETHER_TYPE_VLAN) ||
	       type == RTE_BE16(RTE_ETHER_TYPE_QINQ) ||
	       type == RTE_BE16(RTE_ETHER_TYPE_QINQ1);
}

static inline int
is_echo(uint8_t icmp_type, int is_ipv6)
{
	if (is_ipv6)
		return icmp_type == OF_ICMP6_ECHO_REQUEST || icmp_type == OF_ICMP6_ECHO_REPLY;
	return icmp_type == OF_ICMP_ECHO_REQUEST || icmp_type == OF_ICMP_ECHO_REPLY;
}

/* TCP, UDP, ICMP or ICMPv6 header at l4, with room bytes before the packet ends. */
static inline int
parse_l4(const uint8_t *l4, uint32_t room, uint8_t proto, struct of_inner_meta *m,
	 const struct inner_reasons *r)
{
	struct of_flow_key *key = &m->key;

	key->proto = proto;
	switch (proto) {
	case IPPROTO_TCP: {
		const struct rte_tcp_hdr *tcp = (const struct rte_tcp_hdr *)l4;
		uint32_t hdr_len;

		if (room < sizeof(*tcp))
			return r->truncated;
		hdr_len = (tcp->data_off >> 4) * 4u;
		if (hdr_len < sizeof(*tcp))
			return r->bad_header;
		if (room < hdr_len)
			return r->truncated;
		key->src_port = rte_be_to_cpu_16(tcp->src_port);
		key->dst_port = rte_be_to_cpu_16(tcp->dst_port);
		m->tcp_flags = tcp->tcp_flags;
		return OF_OK;
	}
	case IPPROTO_UDP: {
		const struct rte_udp_hdr *udp = (const struct rte_udp_hdr *)l4;

		if (room < sizeof(*udp))
			return r->truncated;
		key->src_port = rte_be_to_cpu_16(udp->src_port);
		key->dst_port = rte_be_to_cpu_16(udp->dst_port);
		return OF_OK;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: {
		/* echo and the other messages share the 8-byte ICMP header layout */
		const struct rte_icmp_hdr *icmp = (const struct rte_icmp_hdr *)l4;

		if ((proto == IPPROTO_ICMPV6) != m->is_ipv6)
			return r->l4_unsupported;
		if (room < sizeof(*icmp))
			return r->truncated;
		if (is_echo(icmp->icmp_type, m->is_ipv6))
			key->src_port = rte_be_to_cpu_16(icmp->icmp_ident);
		return OF_OK;
	}
	default:
		return r->l4_unsupported;
	}
}

/*
 * avail <= len: the bytes at frame that may be read. Only a chained frame has
 * fewer than len, and then at least OF_CHAIN_HDR_WINDOW (or len), which holds
 * Ethernet, the fixed IP header and any L4 header: only IPv6 extension headers
 * can run past avail, and then the frame is HEADERS_BEYOND_SEGMENT.
 */
static inline int
parse_inner(const uint8_t *frame, uint32_t avail, uint32_t len, struct of_inner_meta *m,
	    const struct inner_reasons *r)
{
	struct of_flow_key *key = &m->key;
	uint32_t l3, l4, ip_len, end, readable;
	int past_frame, rc;
	rte_be16_t type;
	uint8_t proto;

	memset(m, 0, sizeof(*m));
	l3 = of_eth_l3_off(frame, avail, &type);
	if (l3 == 0)
		return r->truncated;
	if (is_vlan_tpid(type))
		return r->vlan_stacked;
	m->l2_len = l3;

	if (type == RTE_BE16(RTE_ETHER_TYPE_IPV4)) {
		const struct rte_ipv4_hdr *ip4 = (const struct rte_ipv4_hdr *)(frame + l3);
		uint32_t hdr_len;

		if (avail - l3 < sizeof(*ip4))
			return r->truncated;
		if ((ip4->version_ihl >> 4) != 4)
			return r->bad_header;
		hdr_len = rte_ipv4_hdr_len(ip4);
		if (hdr_len < sizeof(*ip4))
			return r->bad_header;
		if (avail - l3 < hdr_len)
			return r->truncated;
		ip_len = rte_be_to_cpu_16(ip4->total_length);
		if (ip_len < hdr_len)
			return r->bad_header;
		if (ip4->fragment_offset & RTE_BE16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK))
			return r->fragment;
		/* v4-mapped: ::ffff:a.b.c.d */
		key->src[10] = key->src[11] = 0xff;
		key->dst[10] = key->dst[11] = 0xff;
		memcpy(&key->src[12], &ip4->src_addr, 4);
		memcpy(&key->dst[12], &ip4->dst_addr, 4);
		proto = ip4->next_proto_id;
		l4 = l3 + hdr_len;
	} else if (type == RTE_BE16(RTE_ETHER_TYPE_IPV6)) {
		const struct rte_ipv6_hdr *ip6 = (const struct rte_ipv6_hdr *)(frame + l3);

		if (avail - l3 < sizeof(*ip6))
			return r->truncated;
		if ((frame[l3] >> 4) != 6)
			return r->bad_header;
		ip_len = sizeof(*ip6) + rte_be_to_cpu_16(ip6->payload_len);
		memcpy(key->src, &ip6->src_addr, 16);
		memcpy(key->dst, &ip6->dst_addr, 16);
		proto = ip6->proto;
		l4 = l3 + sizeof(*ip6);
		m->is_ipv6 = 1;
	} else {
		return r->not_ip;
	}

	/*
	 * Headers end where the IP packet ends (Ethernet padding is not
	 * payload) or where the frame ends if that comes first. A length
	 * running past the frame is a bad header only once every header has
	 * been found whole: a frame cut inside one is truncated.
	 */
	past_frame = len - l3 < ip_len;
	end = past_frame ? len : l3 + ip_len;
	readable = RTE_MIN(end, avail);
	if (m->is_ipv6) {
		switch (ip6_skip_ext(frame, readable, &proto, &l4)) {
		case EXT_DONE:
			break;
		case EXT_TRUNCATED:
			return readable < end ? OF_C_HEADERS_BEYOND_SEGMENT : r->truncated;
		case EXT_FRAGMENT:
			return r->fragment;
		case EXT_UNWALKABLE:
			return r->ext_unsupported;
		}
	}
	m->l3_len = l4 - l3;

	rc = parse_l4(frame + l4, readable - l4, proto, m, r);
	if (rc == r->truncated && readable < end)
		return OF_C_HEADERS_BEYOND_SEGMENT;
	if (rc != OF_OK)
		return rc;
	return past_frame ? r->bad_header : OF_OK;
}

int
of_parse_inner(const uint8_t *frame, uint32_t len, struct of_inner_meta *m)
{
	return parse_inner(frame, len, len, m, &outbound_reasons);
}

int
of_parse_inner_inbound(const uint8_t *frame, uint32_t len, struct of_inner_meta *m)
{
	return parse_inner(frame, len, len, m, &inbound_reasons);
}

int
of_parse_inner_span(const uint8_t *frame, uint32_t avail, uint32_t len, int inbound, struct of_inner_meta *m)
{
	if (avail > len)
		avail = len;
	return parse_inner(frame, avail, len, m, inbound ? &inbound_reasons : &outbound_reasons);
}

/*
 * Oxide options and the critical bit. The option area is a multiple of 4
 * bytes and so is every option, so each option header fits; only bodies
 * can run past the area.
 */
static inline int
parse_geneve_options(const uint8_t *opt, uint32_t area, struct of_geneve_meta *m)
{
	uint32_t off, body_len;
	rte_be32_t body;
	uint8_t type;

	for (off = 0; off < area; off += sizeof(struct of_geneve_opt_hdr) + body_len) {
		const struct of_geneve_opt_hdr *o = (const struct of_geneve_opt_hdr *)(opt + off);

		body_len = (o->flags_len & OF_GENEVE_OPT_BODY_LEN_MASK) * 4u;
		if (area - off - sizeof(*o) < body_len)
			return OF_C_GENEVE_BAD_OPTION;
		type = o->type & ~OF_GENEVE_OPT_TYPE_CRITICAL;
		if (o->opt_class != RTE_BE16(OF_GENEVE_CLASS_OXIDE) || type > OF_OXIDE_OPT_MSS) {
			/* unknown: skipped, unless the sender says it must be understood */
			if (o->type & OF_GENEVE_OPT_TYPE_CRITICAL)
				return OF_C_UNKNOWN_CRITICAL_OPTION;
			continue;
		}
		switch (type) {
		case OF_OXIDE_OPT_EXTERNAL:
			if (body_len != 0)
				return OF_C_GENEVE_BAD_OPTION;
			m->external = 1;
			break;
		case OF_OXIDE_OPT_MULTICAST:
			if (body_len != OF_OXIDE_OPT_MULTICAST_LEN)
				return OF_C_GENEVE_BAD_OPTION;
			memcpy(&body, o + 1, sizeof(body));
			m->mcast = rte_be_to_cpu_32(body);
			m->has_mcast = 1;
			break;
		case OF_OXIDE_OPT_MSS:
			if (body_len != OF_OXIDE_OPT_MSS_LEN)
				return OF_C_GENEVE_BAD_OPTION;
			memcpy(&body, o + 1, sizeof(body));
			m->mss = rte_be_to_cpu_32(body);
			m->has_mss = 1;
			break;
		}
	}
	return OF_OK;
}

/* avail <= len: the bytes at frame that may be read (see parse_inner); verify_udp_csum needs all of them. */
static inline int
parse_geneve(const uint8_t *frame, uint32_t avail, uint32_t len, const uint8_t underlay_addr[16],
	     int verify_udp_csum, struct of_geneve_meta *m)
{
	const struct rte_ipv6_hdr *ip6;
	const struct rte_udp_hdr *udp;
	const struct of_geneve_hdr *gnv;
	uint32_t l3, off, ip_end, udp_len, opt_len;
	rte_be16_t type;
	uint8_t proto;
	int rc;

	memset(m, 0, sizeof(*m));

	/* Is it Geneve for this sled? Until that is known, it is the kernel's. */
	l3 = of_eth_l3_off(frame, avail, &type);
	if (l3 == 0 || type != RTE_BE16(RTE_ETHER_TYPE_IPV6))
		return OF_PARSE_EXCEPTION;
	if (avail - l3 < sizeof(*ip6))
		return OF_PARSE_EXCEPTION;
	ip6 = (const struct rte_ipv6_hdr *)(frame + l3);
	if ((frame[l3] >> 4) != 6 ||
	    memcmp(&ip6->dst_addr, underlay_addr, sizeof(ip6->dst_addr)) != 0)
		return OF_PARSE_EXCEPTION;
	proto = ip6->proto;
	off = l3 + sizeof(*ip6);
	switch (ip6_skip_ext(frame, avail, &proto, &off)) {
	case EXT_DONE:
		break;
	case EXT_FRAGMENT:
		return OF_C_OUTER_IP_FRAGMENT;
	case EXT_TRUNCATED:
		return avail < len ? OF_C_HEADERS_BEYOND_SEGMENT : OF_PARSE_EXCEPTION;
	case EXT_UNWALKABLE:
		return OF_PARSE_EXCEPTION;
	}
	if (proto != IPPROTO_UDP)
		return OF_PARSE_EXCEPTION;
	udp = (const struct rte_udp_hdr *)(frame + off);
	if (avail - off < sizeof(*udp) + sizeof(*gnv) && avail < len)
		return OF_C_HEADERS_BEYOND_SEGMENT;
	if (len - off < offsetof(struct rte_udp_hdr, dgram_len) ||
	    udp->dst_port != RTE_BE16(OF_GENEVE_PORT))
		return OF_PARSE_EXCEPTION;

	/* It is: from here on every failure is a counted drop. */
	m->ip6_off = l3;
	m->udp_off = off;
	if (len - off < sizeof(*udp))
		return OF_C_OUTER_TRUNCATED;
	if (len - l3 - sizeof(*ip6) < rte_be_to_cpu_16(ip6->payload_len))
		return OF_C_OUTER_TRUNCATED;
	ip_end = l3 + sizeof(*ip6) + rte_be_to_cpu_16(ip6->payload_len);
	udp_len = rte_be_to_cpu_16(udp->dgram_len);
	if (off > ip_end || ip_end - off != udp_len || udp_len < sizeof(*udp))
		return OF_C_UDP_BAD_LENGTH;
	/* zero: no checksum (RFC 6935), which is what we send ourselves */
	if (verify_udp_csum && udp->dgram_cksum != 0 &&
	    of_cksum_ip6_l4(ip6, frame + off, udp_len, IPPROTO_UDP) != 0xffff)
		return OF_C_UDP_BAD_CHECKSUM;

	off += sizeof(*udp);
	if (ip_end - off < sizeof(*gnv))
		return OF_C_OUTER_TRUNCATED;
	gnv = (const struct of_geneve_hdr *)(frame + off);
	if (gnv->ver_opt_len >> OF_GENEVE_VER_SHIFT)
		return OF_C_GENEVE_BAD_VERSION;
	if (gnv->flags & OF_GENEVE_FLAG_OAM)
		return OF_C_GENEVE_OAM;
	off += sizeof(*gnv);
	opt_len = (gnv->ver_opt_len & OF_GENEVE_OPT_LEN_MASK) * 4u;
	if (ip_end - off < opt_len)
		return OF_C_GENEVE_OPTIONS_TRUNCATED;
	/* the options and the inner Ethernet header, as far as the packet has them */
	if (avail - off < RTE_MIN(opt_len + (uint32_t)sizeof(struct rte_ether_hdr), ip_end - off))
		return OF_C_HEADERS_BEYOND_SEGMENT;
	rc = parse_geneve_options(frame + off, opt_len, m);
	if (rc != OF_OK)
		return rc;
	if (gnv->protocol != RTE_BE16(OF_GENEVE_PROTO_ETHER))
		return OF_C_GENEVE_BAD_PROTOCOL;
	off += opt_len;
	if (ip_end - off < sizeof(struct rte_ether_hdr))
		return OF_C_INNER_TRUNCATED;

	m->vni = (uint32_t)gnv->vni[0] << 16 | (uint32_t)gnv->vni[1] << 8 | gnv->vni[2];
	m->outer_len = off;
	m->inner_len = ip_end - off;
	return OF_OK;
}

int
of_parse_geneve(const uint8_t *frame, uint32_t len, const uint8_t underlay_addr[16],
		int verify_udp_csum, struct of_geneve_meta *m)
{
	return parse_geneve(frame, len, len, underlay_addr, verify_udp_csum, m);
}

int
of_parse_geneve_span(const uint8_t *frame, uint32_t avail, uint32_t len, const uint8_t underlay_addr[16],
		     struct of_geneve_meta *m)
{
	if (avail > len)
		avail = len;
	return parse_geneve(frame, avail, len, underlay_addr, 0, m);
}
