/* Chained mbufs: headers into the first segment, truncation, checksums over segments (chain.h). */
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>

#include <rte_byteorder.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include "chain.h"
#include "cksum.h"
#include "counters.h"
#include "parse.h"

uint32_t
of_chain_pullup(struct rte_mbuf *m)
{
	uint32_t want = RTE_MIN(rte_pktmbuf_pkt_len(m), (uint32_t)OF_CHAIN_HDR_WINDOW);
	struct rte_mbuf *seg;

	/* Only a buffer this frame owns alone is written to. */
	if (m->data_len >= want || RTE_MBUF_CLONED(m) || rte_mbuf_refcnt_read(m) != 1 ||
	    (RTE_MBUF_HAS_EXTBUF(m) && rte_mbuf_ext_refcnt_read(m->shinfo) != 1))
		return m->data_len;
	want = RTE_MIN(want, (uint32_t)m->buf_len - m->data_off);
	while (m->data_len < want && (seg = m->next) != NULL) {
		uint32_t n = RTE_MIN(want - m->data_len, (uint32_t)seg->data_len);

		memcpy(rte_pktmbuf_mtod_offset(m, uint8_t *, m->data_len), rte_pktmbuf_mtod(seg, uint8_t *), n);
		m->data_len = (uint16_t)(m->data_len + n);
		seg->data_len = (uint16_t)(seg->data_len - n);
		seg->data_off = (uint16_t)(seg->data_off + n);
		if (seg->data_len == 0) {
			m->next = seg->next;
			m->nb_segs--;
			seg->next = NULL;
			rte_pktmbuf_free_seg(seg);
		}
	}
	return m->data_len;
}

void
of_chain_truncate(struct rte_mbuf *m, uint32_t len)
{
	struct rte_mbuf *seg = m, *rest;
	uint32_t left = len;
	uint16_t n = 1;

	while (left > seg->data_len && seg->next != NULL) {
		left -= seg->data_len;
		seg = seg->next;
		n++;
	}
	seg->data_len = (uint16_t)left;
	rest = seg->next;
	seg->next = NULL;
	if (rest != NULL)
		rte_pktmbuf_free(rest);
	m->nb_segs = n;
	m->pkt_len = len;
}

uint16_t
of_chain_l4_cksum(const struct rte_mbuf *m, uint32_t l3_off, uint32_t l4_off, uint32_t l4_len,
		  int is_ipv6, uint8_t proto)
{
	const uint8_t *l3 = rte_pktmbuf_mtod_offset(m, const uint8_t *, l3_off);
	const uint8_t tail[4] = { 0, 0, 0, proto };
	const rte_be32_t be_len = rte_cpu_to_be_32(l4_len);
	uint16_t sum, data;
	uint32_t acc;

	/* The pseudo-header (RFC 793, RFC 8200 8.1): addresses, upper-layer length, protocol. */
	if (is_ipv6) {
		sum = of_cksum_add(0, l3 + offsetof(struct rte_ipv6_hdr, src_addr), 32);
	} else {
		sum = of_cksum_add(0, l3 + offsetof(struct rte_ipv4_hdr, src_addr), 8);
	}
	sum = of_cksum_add(sum, (const uint8_t *)&be_len, sizeof(be_len));
	sum = of_cksum_add(sum, tail, sizeof(tail));
	if (of_raw_cksum_mbuf(m, l4_off, l4_len, &data) != 0)
		return 0;
	acc = (uint32_t)sum + data;
	acc = (acc & 0xffff) + (acc >> 16);
	sum = (uint16_t)~acc;
	return sum == 0 && proto == IPPROTO_UDP ? 0xffff : sum;
}

int
of_chain_parse_underlay(struct rte_mbuf *m, const uint8_t underlay_addr[16], int verify_udp_csum,
			struct of_geneve_meta *gm, struct of_inner_meta *im)
{
	uint32_t avail = of_chain_pullup(m);
	const uint8_t *data = rte_pktmbuf_mtod(m, const uint8_t *);
	int rc = of_parse_geneve_span(data, avail, rte_pktmbuf_pkt_len(m), underlay_addr, gm);

	if (rc != OF_OK)
		return rc;
	if (verify_udp_csum) {
		const struct rte_udp_hdr *udp = (const struct rte_udp_hdr *)(data + gm->udp_off);
		uint32_t udp_len = rte_be_to_cpu_16(udp->dgram_len);
		uint16_t field = udp->dgram_cksum, want;

		/* computed as the sender did, with the field zero, and compared with what it sent */
		if (field != 0) {
			struct rte_udp_hdr *w = (struct rte_udp_hdr *)(uintptr_t)udp;

			w->dgram_cksum = 0;
			want = of_chain_l4_cksum(m, gm->ip6_off, gm->udp_off, udp_len, 1, IPPROTO_UDP);
			w->dgram_cksum = field;
			if (want != field)
				return OF_C_UDP_BAD_CHECKSUM;
		}
	}
	return of_parse_inner_span(data + gm->outer_len, avail - gm->outer_len, gm->inner_len, 1, im);
}
