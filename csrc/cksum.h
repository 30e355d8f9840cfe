/*
 * The raw Internet checksum (RFC 1071) over a chain of segments, for the
 * outbound UDP checksum. DPDK 22.11's rte_raw_cksum_mbuf gets it wrong when
 * a segment starts at an odd byte of the sum: it swaps the bytes of the
 * segment's 32-bit partial sum truncated to 16 bits, dropping its carries
 * (found by csrc/fuzz/fuzz_outbound.c). Here each segment's sum is folded
 * to 16 bits before the swap.
 */
#ifndef OF_CKSUM_H
#define OF_CKSUM_H

#include <stdint.h>

#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_ip.h>
#include <rte_mbuf.h>

/* The folded sum of len bytes of m from offset off into *cksum; -1 if the frame is shorter. */
static inline int
of_raw_cksum_mbuf(const struct rte_mbuf *m, uint32_t off, uint32_t len, uint16_t *cksum)
{
	uint32_t sum = 0, done = 0;

	if (off + len > rte_pktmbuf_pkt_len(m))
		return -1;
	for (; m != NULL && done < len; m = m->next) {
		uint32_t seg_len = rte_pktmbuf_data_len(m);
		uint16_t part;

		if (off >= seg_len) {
			off -= seg_len;
			continue;
		}
		seg_len = RTE_MIN(seg_len - off, len - done);
		part = __rte_raw_cksum_reduce(__rte_raw_cksum(rte_pktmbuf_mtod_offset(m, const void *, off),
							      seg_len, 0));
		/* A segment that starts at an odd byte of the sum has its bytes in the other lanes. */
		sum += (done & 1) ? rte_bswap16(part) : part;
		done += seg_len;
		off = 0;
	}
	if (done != len)
		return -1;
	*cksum = __rte_raw_cksum_reduce(sum);
	return 0;
}

#endif
