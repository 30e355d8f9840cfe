/*
 * Packet parsing for the data plane: the guest (inner) frame and the
 * underlay (outer) Geneve headers. Pure functions over a byte buffer: no
 * mbuf, no EAL, nothing read at or past frame + len.
 *
 * The frame must start 2-byte aligned (mbuf data always is), because DPDK's
 * struct rte_ether_hdr is declared aligned(2).
 */
#ifndef OF_PARSE_H
#define OF_PARSE_H

#include <stdint.h>
#include <string.h>

#include <netinet/in.h>

#include <rte_byteorder.h>
#include <rte_branch_prediction.h>
#include <rte_common.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "counters.h"
#include "flow_key.h"
#include "wire.h"

/* Longest IPv6 extension header chain walked before giving up. */
#define OF_IP6_MAX_EXT_HDRS	8

struct of_inner_meta {
	struct of_flow_key key;	/* everything but vni filled, padding zero */
	uint16_t l2_len;	/* 14, or 18 with one 802.1Q tag */
	uint16_t l3_len;	/* IP header incl. IPv4 options / IPv6 extension headers */
	uint8_t is_ipv6;
	uint8_t tcp_flags;	/* TCP flags byte, 0 if not TCP */
};

/*
 * Parse a guest frame: Ethernet (one 802.1Q tag at most), IPv4 or IPv6
 * (extension headers walked), TCP, UDP, ICMP, ICMPv6. Returns OF_OK and
 * fills m, or the OF_C_* drop reason (m is then not meaningful):
 *
 *  PARSE_TRUNCATED	the frame, or the IP packet its length fields
 *			declare, ends inside a header
 *  VLAN_STACKED	a second VLAN tag, or an 802.1ad (QinQ) tag
 *  NOT_IP		ethertype neither IPv4 nor IPv6
 *  IP_BAD_HEADER	IP version, IPv4 IHL < 5, IPv4 total length < IHL*4,
 *			TCP data offset < 5; or, once every header is present,
 *			an IP length that runs past the end of the frame
 *  IP_FRAGMENT		IPv4 MF or offset != 0; any IPv6 Fragment header
 *  IP_EXT_UNSUPPORTED	more than OF_IP6_MAX_EXT_HDRS extension headers, or
 *			Hop-by-Hop other than first
 *  L4_UNSUPPORTED	anything but TCP, UDP, ICMP over IPv4, ICMPv6 over IPv6
 *
 * Keys: IPv4 addresses v4-mapped; ports in host order; ICMP/ICMPv6 echo
 * request and reply put the identifier in src_port, other ICMP messages
 * have ports 0. Ethernet padding after the IP packet is ignored.
 */
int of_parse_inner(const uint8_t *frame, uint32_t len, struct of_inner_meta *m);

/* Not a counter: "not the common frame, take the full parse". */
#define OF_PARSE_SLOW	(-3)

/*
 * The frame most guests send: untagged IPv4 without options or fragments,
 * TCP or UDP, whole in the frame. OF_OK and m as of_parse_inner fills it,
 * its key built in six 8-byte stores, no memset, as DPDK's l3fwd builds its
 * keys; OF_PARSE_SLOW for any other frame. with_key (a constant): without
 * it, only l2_len, for a caller that needs the verdict alone.
 */
static __rte_always_inline int
of_parse_inner_common(const uint8_t *frame, uint32_t len, struct of_inner_meta *m, const int with_key)
{
#if RTE_BYTE_ORDER == RTE_LITTLE_ENDIAN
	const struct rte_ether_hdr *eth = (const struct rte_ether_hdr *)frame;
	const struct rte_ipv4_hdr *ip4 = (const struct rte_ipv4_hdr *)(eth + 1);
	const uint8_t *l4 = (const uint8_t *)(ip4 + 1);
	uint64_t *w = (uint64_t *)&m->key;
	uint32_t ip_len, l4_min, ports;
	uint8_t proto;

	if (unlikely(len < sizeof(*eth) + sizeof(*ip4) + sizeof(struct rte_udp_hdr) ||
		     eth->ether_type != RTE_BE16(RTE_ETHER_TYPE_IPV4) || ip4->version_ihl != RTE_IPV4_VHL_DEF ||
		     (ip4->fragment_offset & RTE_BE16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) != 0))
		return OF_PARSE_SLOW;
	proto = ip4->next_proto_id;
	ip_len = rte_be_to_cpu_16(ip4->total_length);
	l4_min = proto == IPPROTO_TCP ? sizeof(struct rte_tcp_hdr) : sizeof(struct rte_udp_hdr);
	if (unlikely((proto != IPPROTO_TCP && proto != IPPROTO_UDP) || ip_len > len - sizeof(*eth) ||
		     ip_len < sizeof(*ip4) + l4_min))
		return OF_PARSE_SLOW;
	if (proto == IPPROTO_TCP) {
		const struct rte_tcp_hdr *tcp = (const struct rte_tcp_hdr *)l4;
		uint32_t hdr_len = (tcp->data_off >> 4) * 4u;

		if (unlikely(hdr_len < sizeof(*tcp) || hdr_len > ip_len - sizeof(*ip4)))
			return OF_PARSE_SLOW;
	}
	m->l2_len = sizeof(*eth);
	if (!with_key)
		return OF_OK;
	m->tcp_flags = proto == IPPROTO_TCP ? ((const struct rte_tcp_hdr *)l4)->tcp_flags : 0;
	/* TCP and UDP both start with the two ports, big-endian; the key holds them in host order. */
	memcpy(&ports, l4, sizeof(ports));
	w[0] = (uint64_t)proto << 32;					/* vni 0, proto, pad0 */
	w[1] = 0;							/* src: ::ffff:a.b.c.d */
	w[2] = 0xffff0000u | (uint64_t)ip4->src_addr << 32;
	w[3] = 0;							/* dst, the same */
	w[4] = 0xffff0000u | (uint64_t)ip4->dst_addr << 32;
	w[5] = ((ports & 0x00ff00ffu) << 8) | ((ports >> 8) & 0x00ff00ffu);	/* ports, pad1 */
	m->l3_len = sizeof(*ip4);
	m->is_ipv6 = 0;
	return OF_OK;
#else
	(void)frame, (void)len, (void)m, (void)with_key;
	return OF_PARSE_SLOW;
#endif
}

/*
 * of_parse_inner inlined for the common frame (of_parse_inner_common); any
 * other frame takes of_parse_inner, whose results this gives field for
 * field (csrc/fuzz/fuzz_parse.c and csrc/tests/test_parse.c check that).
 */
static __rte_always_inline int
of_parse_inner_fast(const uint8_t *frame, uint32_t len, struct of_inner_meta *m)
{
	if (likely(of_parse_inner_common(frame, len, m, 1) == OF_OK))
		return OF_OK;
	return of_parse_inner(frame, len, m);
}

/*
 * The same parse for the inner frame of an inbound Geneve packet, with the
 * reasons mapped to the inbound counters: INNER_TRUNCATED, INNER_NOT_IP
 * (also for stacked VLAN tags), INNER_IP_FRAGMENT, and INNER_BAD_HEADER for
 * the other three.
 */
int of_parse_inner_inbound(const uint8_t *frame, uint32_t len, struct of_inner_meta *m);

/*
 * The parse of a chained frame, whose len bytes are not all at frame: only
 * the first avail are (the first segment, which chain.h fills with at least
 * min(len, OF_CHAIN_HDR_WINDOW) bytes). The reasons are those above
 * (inbound's when inbound), and HEADERS_BEYOND_SEGMENT when a header runs
 * past avail while the frame goes on.
 */
int of_parse_inner_span(const uint8_t *frame, uint32_t avail, uint32_t len, int inbound,
			struct of_inner_meta *m);

struct of_geneve_meta {
	uint32_t vni;
	uint16_t outer_len;	/* bytes before the inner Ethernet frame */
	uint16_t ip6_off;	/* offset of the outer IPv6 header */
	uint16_t udp_off;	/* offset of the outer UDP header */
	uint16_t inner_len;	/* inner frame bytes, up to the end of the IPv6 packet */
	uint8_t external;	/* Oxide External option present */
	uint8_t has_mss, has_mcast;
	uint32_t mss, mcast;	/* option bodies, host order */
};

/* Not a counter: "not Geneve for this sled, hand it to the kernel". */
#define OF_PARSE_EXCEPTION	(-2)

/*
 * Validate an underlay frame. Three kinds of result:
 *
 *  OF_OK		valid Geneve for this sled, m filled
 *  OF_PARSE_EXCEPTION	not Geneve for this sled: the exception path gets it
 *  OF_C_*		Geneve for this sled but dropped for that reason
 *
 * A frame is Geneve for this sled once all of this has been read: an
 * Ethernet header (one 802.1Q tag at most) of type IPv6, an IPv6 header of
 * version 6 to underlay_addr, its extension headers (Hop-by-Hop, Routing,
 * Destination Options, AH) ending in UDP, and a UDP destination port of
 * 6081. Anything that stops short of that, including a frame that ends
 * before it has all been read, is an exception: the kernel counts and
 * drops runts itself. The one drop before that point is an IPv6 Fragment
 * header to underlay_addr (OUTER_IP_FRAGMENT). After it:
 *
 *  OUTER_TRUNCATED	the frame ends before the IPv6 packet does (inside the
 *			UDP or Geneve header, the options or the inner frame),
 *			or the UDP payload is shorter than a Geneve header
 *  UDP_BAD_LENGTH	UDP length differs from what the IPv6 payload leaves
 *			after the extension headers, or is below 8
 *  UDP_BAD_CHECKSUM	non-zero checksum wrong, checked if verify_udp_csum
 *  GENEVE_BAD_VERSION, GENEVE_OAM
 *  GENEVE_OPTIONS_TRUNCATED  option length runs past the UDP payload
 *  GENEVE_BAD_OPTION	an option's body runs past the option area, or a
 *			known Oxide option has the wrong body length
 *  UNKNOWN_CRITICAL_OPTION  unknown option (any class, or Oxide with an
 *			unknown type) with the critical bit
 *  GENEVE_BAD_PROTOCOL	protocol not 0x6558
 *  INNER_TRUNCATED	fewer than 14 inner bytes
 *
 * Bytes after the end of the IPv6 packet are not part of the inner frame
 * (inner_len excludes them).
 */
int of_parse_geneve(const uint8_t *frame, uint32_t len, const uint8_t underlay_addr[16],
		    int verify_udp_csum, struct of_geneve_meta *m);

/*
 * of_parse_geneve then, if OF_OK, of_parse_inner_inbound on the inner frame,
 * inlined for the frame sleds send: untagged IPv6 straight to UDP port 6081,
 * no UDP checksum (or none to verify), Geneve version 0 with no options and
 * no OAM flag (padding after the IPv6 packet is fine), and the common inner
 * frame (of_parse_inner_common). Fixed offsets, the underlay address compared
 * as two words; any other frame takes the two full parses, whose results
 * this gives field for field (csrc/fuzz/fuzz_parse.c and
 * csrc/tests/test_parse.c check that). Without with_key (a constant), of im
 * only l2_len is sure to be filled: the verdict and the MTU check need no
 * flow key, strict underlay and tracing do.
 */
static __rte_always_inline int
of_parse_inbound_fast(const uint8_t *frame, uint32_t len, const uint8_t underlay_addr[16], int verify_udp_csum,
		      struct of_geneve_meta *gm, struct of_inner_meta *im, const int with_key)
{
	const struct rte_ether_hdr *eth = (const struct rte_ether_hdr *)frame;
	const struct rte_ipv6_hdr *ip6 = (const struct rte_ipv6_hdr *)(eth + 1);
	const struct rte_udp_hdr *udp = (const struct rte_udp_hdr *)(ip6 + 1);
	const struct of_geneve_hdr *gnv = (const struct of_geneve_hdr *)(udp + 1);
	uint64_t dst[2], want[2];
	uint32_t payload, vni;
	int rc;

	if (unlikely(len < OF_OUTER_HDR_LEN + sizeof(struct rte_ether_hdr)))
		goto slow;
	memcpy(dst, &ip6->dst_addr, sizeof(dst));
	memcpy(want, underlay_addr, sizeof(want));
	payload = rte_be_to_cpu_16(ip6->payload_len);
	/* The UDP length is the IPv6 payload's (no extension header), which holds UDP, Geneve and an
	 * inner Ethernet header, and ends within the frame. */
	if (unlikely(eth->ether_type != RTE_BE16(RTE_ETHER_TYPE_IPV6) || (frame[sizeof(*eth)] >> 4) != 6 ||
		     ((dst[0] ^ want[0]) | (dst[1] ^ want[1])) != 0 || ip6->proto != IPPROTO_UDP ||
		     udp->dst_port != RTE_BE16(OF_GENEVE_PORT) || udp->dgram_len != ip6->payload_len ||
		     payload < sizeof(*udp) + sizeof(*gnv) + sizeof(struct rte_ether_hdr) ||
		     payload > len - sizeof(*eth) - sizeof(*ip6) || (verify_udp_csum && udp->dgram_cksum != 0) ||
		     gnv->ver_opt_len != 0 || (gnv->flags & OF_GENEVE_FLAG_OAM) != 0 ||
		     gnv->protocol != RTE_BE16(OF_GENEVE_PROTO_ETHER)))
		goto slow;
	memcpy(&vni, gnv->vni, sizeof(vni));	/* and the reserved byte */
	gm->vni = rte_be_to_cpu_32(vni) >> 8;
	gm->outer_len = OF_OUTER_HDR_LEN;
	gm->ip6_off = sizeof(*eth);
	gm->udp_off = sizeof(*eth) + sizeof(*ip6);
	gm->inner_len = (uint16_t)(payload - sizeof(*udp) - sizeof(*gnv));
	gm->external = gm->has_mss = gm->has_mcast = 0;
	gm->mss = gm->mcast = 0;
	if (likely(of_parse_inner_common(frame + OF_OUTER_HDR_LEN, gm->inner_len, im, with_key) == OF_OK))
		return OF_OK;
	return of_parse_inner_inbound(frame + OF_OUTER_HDR_LEN, gm->inner_len, im);
slow:
	rc = of_parse_geneve(frame, len, underlay_addr, verify_udp_csum, gm);
	if (rc == OF_OK)
		rc = of_parse_inner_inbound(frame + gm->outer_len, gm->inner_len, im);
	return rc;
}

/*
 * of_parse_geneve for a chained frame (see of_parse_inner_span). It never
 * verifies the UDP checksum, whose bytes are not all at frame: the caller
 * does, over the segments.
 */
int of_parse_geneve_span(const uint8_t *frame, uint32_t avail, uint32_t len, const uint8_t underlay_addr[16],
			 struct of_geneve_meta *m);

/*
 * Offset of the L3 header after Ethernet and at most one 802.1Q tag, with
 * the ethertype found there (big-endian) in *type; 0 if the frame ends
 * first. A second tag is left for the caller to see in *type.
 */
static inline uint32_t
of_eth_l3_off(const uint8_t *frame, uint32_t len, rte_be16_t *type)
{
	const struct rte_ether_hdr *eth = (const struct rte_ether_hdr *)frame;
	const struct rte_vlan_hdr *vlan;

	if (len < sizeof(*eth))
		return 0;
	*type = eth->ether_type;
	if (*type != RTE_BE16(RTE_ETHER_TYPE_VLAN))
		return sizeof(*eth);
	if (len - sizeof(*eth) < sizeof(*vlan))
		return 0;
	vlan = (const struct rte_vlan_hdr *)(eth + 1);
	*type = vlan->eth_proto;
	return sizeof(*eth) + sizeof(*vlan);
}

/*
 * One's complement sum (RFC 1071) of n bytes added to sum, folded to 16
 * bits. Words are taken in memory order, so the result is stored back as is,
 * on either byte order. Only the last piece of a chained sum may be odd.
 */
static inline uint16_t
of_cksum_add(uint16_t sum, const uint8_t *p, uint32_t n)
{
	uint64_t acc = sum;
	uint64_t w8;
	uint16_t w2;

	for (; n >= 8; p += 8, n -= 8) {
		memcpy(&w8, p, 8);
		acc += (w8 & 0xffffffffu) + (w8 >> 32);
	}
	for (; n >= 2; p += 2, n -= 2) {
		memcpy(&w2, p, 2);
		acc += w2;
	}
	if (n) {
		const uint8_t last[2] = { p[0], 0 };

		memcpy(&w2, last, 2);
		acc += w2;
	}
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return (uint16_t)acc;
}

/*
 * Sum of an IPv6 upper-layer packet with its pseudo-header (RFC 8200 8.1):
 * 0xffff when its checksum field is right. The IPv6 destination is taken
 * as final (no Routing header in use).
 */
static inline uint16_t
of_cksum_ip6_l4(const struct rte_ipv6_hdr *ip6, const uint8_t *l4, uint32_t l4_len,
		uint8_t proto)
{
	const rte_be32_t be_len = rte_cpu_to_be_32(l4_len);
	const uint8_t next_hdr[4] = { 0, 0, 0, proto };
	uint16_t sum;

	sum = of_cksum_add(0, (const uint8_t *)&ip6->src_addr, 16);
	sum = of_cksum_add(sum, (const uint8_t *)&ip6->dst_addr, 16);
	sum = of_cksum_add(sum, (const uint8_t *)&be_len, sizeof(be_len));
	sum = of_cksum_add(sum, next_hdr, sizeof(next_hdr));
	return of_cksum_add(sum, l4, l4_len);
}

#endif
