/*
 * Guest frames beyond the plain outbound path: chained frames, the port's
 * MTU, partial checksums and TCP segmentation offload (gso.h). Segments are
 * copies: a header mbuf per segment with its payload behind it, so each
 * leaves as an ordinary guest frame with room for the outer headers.
 */
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "chain.h"
#include "gso.h"
#include "guest.h"
#include "lcore.h"
#include "mtu.h"
#include "parse.h"

/* The IP packet's length from its header: the frame may carry Ethernet padding after it. */
static uint32_t
ip_packet_len(const uint8_t *frame, const struct of_inner_meta *mt)
{
	const uint8_t *l3 = frame + mt->l2_len;

	if (mt->is_ipv6)
		return sizeof(struct rte_ipv6_hdr) +
		       rte_be_to_cpu_16(((const struct rte_ipv6_hdr *)l3)->payload_len);
	return rte_be_to_cpu_16(((const struct rte_ipv4_hdr *)l3)->total_length);
}

/* The TCP or UDP checksum of a frame whose headers are in its first segment, filled in. */
static void
fill_l4_cksum(struct rte_mbuf *m, const struct of_inner_meta *mt, uint32_t ip_len)
{
	uint32_t l4 = (uint32_t)mt->l2_len + mt->l3_len;
	uint32_t field = mt->key.proto == IPPROTO_TCP ? offsetof(struct rte_tcp_hdr, cksum) :
						       offsetof(struct rte_udp_hdr, dgram_cksum);
	uint8_t *at = rte_pktmbuf_mtod_offset(m, uint8_t *, l4 + field);
	uint16_t sum;

	memset(at, 0, sizeof(sum));
	sum = of_chain_l4_cksum(m, mt->l2_len, l4, ip_len - mt->l3_len, mt->is_ipv6, mt->key.proto);
	memcpy(at, &sum, sizeof(sum));
}

static enum of_guest_frame
drop(struct of_lcore *lc, int reason, struct rte_mbuf *m)
{
	of_drop(lc, (enum of_counter)reason, m);
	return OF_FRAME_DROPPED;
}

enum of_guest_frame
of_guest_frame_prepare(struct of_lcore *lc, const struct of_guest *g, uint16_t underlay_mtu,
		       struct rte_mbuf *m, struct of_gso *gso)
{
	const uint64_t l4_flags = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
	struct of_inner_meta mt;
	uint32_t avail, ip_len, tcp_len, mss;
	const struct rte_tcp_hdr *tcp;
	uint8_t *frame;
	int rc;

	avail = m->nb_segs > 1 ? of_chain_pullup(m) : rte_pktmbuf_data_len(m);
	frame = rte_pktmbuf_mtod(m, uint8_t *);
	if (avail < RTE_ETHER_HDR_LEN || !of_guest_mac_ok(g, frame))
		return drop(lc, avail < RTE_ETHER_HDR_LEN ? OF_C_PARSE_TRUNCATED : OF_C_SPOOF_SRC_MAC, m);
	rc = of_parse_inner_span(frame, avail, rte_pktmbuf_pkt_len(m), 0, &mt);
	if (rc != OF_OK) {
		/* ARP and the like, in one segment: the gateway's, on the plain path */
		if (rc == OF_C_NOT_IP && m->nb_segs == 1 && !(m->ol_flags & OF_GUEST_OFFLOAD_FLAGS))
			return OF_FRAME_FORWARD;
		return drop(lc, rc, m);
	}
	ip_len = ip_packet_len(frame, &mt);
	if (!(m->ol_flags & RTE_MBUF_F_RX_LRO)) {
		if (ip_len > g->net.mtu)
			return drop(lc, OF_C_GUEST_OVER_MTU, m);
		if (l4_flags == RTE_MBUF_F_RX_L4_CKSUM_NONE &&
		    (mt.key.proto == IPPROTO_TCP || mt.key.proto == IPPROTO_UDP)) {
			fill_l4_cksum(m, &mt, ip_len);
			of_count(lc, OF_C_GUEST_CSUM_FILLED);
		}
		return OF_FRAME_FORWARD;
	}

	/* TCP segmentation offload: every segment a whole packet the port's MTU allows */
	if (mt.key.proto != IPPROTO_TCP)
		return drop(lc, OF_C_TSO_NOT_TCP, m);
	tcp = (const struct rte_tcp_hdr *)(frame + mt.l2_len + mt.l3_len);
	tcp_len = (tcp->data_off >> 4) * 4u;	/* the parse checked it: 20 to 60, in the first segment */
	mss = m->tso_segsz;
	if (mss == 0 || mt.l3_len + tcp_len + mss > g->net.mtu)
		return drop(lc, OF_C_GUEST_OVER_MTU, m);
	if (ip_len - mt.l3_len - tcp_len <= mss) {	/* one segment: the frame itself */
		fill_l4_cksum(m, &mt, ip_len);
		of_count(lc, OF_C_GUEST_CSUM_FILLED);
		return OF_FRAME_FORWARD;
	}
	memset(gso, 0, sizeof(*gso));
	gso->m = m;
	gso->l2_len = mt.l2_len;
	gso->l3_len = mt.l3_len;
	gso->hdr_len = mt.l2_len + mt.l3_len + tcp_len;
	gso->payload = ip_len - mt.l3_len - tcp_len;
	gso->mss = mss;
	gso->seq = rte_be_to_cpu_32(tcp->sent_seq);
	gso->is_ipv6 = mt.is_ipv6;
	if (!mt.is_ipv6)
		gso->ip_id = rte_be_to_cpu_16(((const struct rte_ipv4_hdr *)(frame + mt.l2_len))->packet_id);
	/* Too big for the underlay once encapsulated: the first segment alone, to be answered (mtu.h). */
	gso->n_max = gso->hdr_len + mss + OF_ENCAP_IP_OVERHEAD > underlay_mtu ? 1 : UINT16_MAX;
	of_count(lc, OF_C_TSO_FRAMES);
	return OF_FRAME_SEGMENT;
}

/* n bytes of src from offset off appended to the chain head..*tail, with new segments from pool. */
static int
append_from(struct rte_mempool *pool, struct rte_mbuf *head, struct rte_mbuf **tail,
	    const struct rte_mbuf *src, uint32_t off, uint32_t n)
{
	while (n != 0) {
		struct rte_mbuf *t = *tail;
		uint32_t k = rte_pktmbuf_tailroom(t);
		const void *from;
		uint8_t *to;

		if (k == 0) {
			t = rte_pktmbuf_alloc(pool);
			if (t == NULL)
				return -1;
			t->data_off = 0;	/* only the first segment needs headroom */
			(*tail)->next = t;
			*tail = t;
			head->nb_segs++;
			k = rte_pktmbuf_tailroom(t);
		}
		k = RTE_MIN(k, n);
		to = rte_pktmbuf_mtod_offset(t, uint8_t *, t->data_len);
		from = rte_pktmbuf_read(src, off, k, to);
		if (from != to)
			memcpy(to, from, k);
		t->data_len = (uint16_t)(t->data_len + k);
		head->pkt_len += k;
		off += k;
		n -= k;
	}
	return 0;
}

/* Segment seg's headers for payload bytes [off, off + len) of the frame, and its checksums. */
static void
fix_headers(const struct of_gso *gso, struct rte_mbuf *seg, uint32_t len, int first, int last)
{
	uint8_t *frame = rte_pktmbuf_mtod(seg, uint8_t *);
	struct rte_tcp_hdr *tcp = (struct rte_tcp_hdr *)(frame + gso->l2_len + gso->l3_len);
	uint32_t tcp_len = gso->hdr_len - gso->l2_len - gso->l3_len;
	uint16_t sum;

	if (gso->is_ipv6) {
		struct rte_ipv6_hdr *ip6 = (struct rte_ipv6_hdr *)(frame + gso->l2_len);

		ip6->payload_len = rte_cpu_to_be_16((uint16_t)(gso->l3_len - sizeof(*ip6) + tcp_len + len));
	} else {
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(frame + gso->l2_len);

		ip->total_length = rte_cpu_to_be_16((uint16_t)(gso->l3_len + tcp_len + len));
		ip->packet_id = rte_cpu_to_be_16((uint16_t)(gso->ip_id + gso->n_cut));
		ip->hdr_checksum = 0;
		ip->hdr_checksum = rte_ipv4_cksum(ip);
	}
	tcp->sent_seq = rte_cpu_to_be_32(gso->seq + gso->off);
	/* as the kernel cuts: CWR on the first segment only, FIN and PSH on the last only */
	if (!first)
		tcp->tcp_flags &= (uint8_t)~RTE_TCP_CWR_FLAG;
	if (!last)
		tcp->tcp_flags &= (uint8_t)~(RTE_TCP_FIN_FLAG | RTE_TCP_PSH_FLAG);
	tcp->cksum = 0;
	sum = of_chain_l4_cksum(seg, gso->l2_len, gso->l2_len + gso->l3_len, tcp_len + len, gso->is_ipv6,
				IPPROTO_TCP);
	memcpy(&tcp->cksum, &sum, sizeof(sum));
}

unsigned
of_gso_next(struct of_lcore *lc, struct of_gso *gso, struct rte_mempool *pool, struct rte_mbuf **segs,
	    unsigned max)
{
	unsigned n = 0;

	while (n < max && gso->off < gso->payload && gso->n_cut < gso->n_max) {
		uint32_t len = RTE_MIN(gso->mss, gso->payload - gso->off);
		struct rte_mbuf *seg = rte_pktmbuf_alloc(pool), *tail = seg;

		if (seg == NULL || append_from(pool, seg, &tail, gso->m, 0, gso->hdr_len) != 0 ||
		    append_from(pool, seg, &tail, gso->m, gso->hdr_len + gso->off, len) != 0) {
			rte_pktmbuf_free(seg);
			of_drop(lc, OF_C_TSO_NO_MBUF, gso->m);
			gso->m = NULL;
			gso->payload = gso->off;	/* nothing more to cut */
			return n;
		}
		seg->port = gso->m->port;
		fix_headers(gso, seg, len, gso->n_cut == 0, gso->off + len == gso->payload);
		segs[n++] = seg;
		gso->off += len;
		gso->n_cut++;
	}
	lc->counters[OF_C_TSO_SEGMENTS] += n;
	if (n == 0 && gso->m != NULL) {
		rte_pktmbuf_free(gso->m);
		gso->m = NULL;
	}
	return n;
}
