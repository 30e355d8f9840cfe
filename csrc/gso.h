/*
 * Guest frames that need more than the plain outbound path (gso.c): chained
 * frames, frames over the port's MTU, and the offloads a virtio-net guest
 * asks of its vhost-user port. net_vhost hands those over as mbuf flags:
 *  - RX_L4_CKSUM_NONE: the TCP or UDP checksum is partial (virtio
 *    NEEDS_CSUM): completed here before encapsulation;
 *  - RX_LRO with tso_segsz: a TCP segmentation offload frame (virtio
 *    GSO_TCPV4/TCPV6) of up to 64 KB: cut here into segments of tso_segsz
 *    payload bytes, each with whole headers and checksums, which then take
 *    the plain path as if the guest had sent them.
 * DPDK's librte_gso is not used: it cuts TCP over IPv4 only (22.11 and
 * 24.11 alike) and leaves every checksum to a NIC.
 */
#ifndef OF_GSO_H
#define OF_GSO_H

#include <stdint.h>

#include <rte_ether.h>
#include <rte_mbuf.h>

#include "lcore.h"
#include "tables.h"

/* Segments handed to the plain path at a time. */
#define OF_GSO_CHUNK	32

/* Flags that send a frame to of_guest_frame_prepare: TSO, and a partial checksum (NONE is BAD | GOOD). */
#define OF_GUEST_OFFLOAD_FLAGS	(RTE_MBUF_F_RX_LRO | RTE_MBUF_F_RX_L4_CKSUM_BAD)

/* Per packet, one branch: chained, an offload asked for, or longer than frame_max (MTU + 14). */
static inline int
of_guest_frame_special(const struct rte_mbuf *m, uint32_t frame_max)
{
	return ((m->ol_flags & OF_GUEST_OFFLOAD_FLAGS) | (uint64_t)(m->nb_segs != 1) |
		(uint64_t)(rte_pktmbuf_pkt_len(m) > frame_max)) != 0;
}

enum of_guest_frame {
	OF_FRAME_FORWARD,	/* on with the plain path: checksum complete, headers in the first segment */
	OF_FRAME_DROPPED,	/* counted and freed */
	OF_FRAME_SEGMENT,	/* a TSO frame: take its segments from of_gso_next */
};

/* A TSO frame being cut. */
struct of_gso {
	struct rte_mbuf *m;
	uint32_t l2_len, l3_len, hdr_len;	/* hdr_len: Ethernet, IP and TCP headers, in every segment */
	uint32_t payload;			/* TCP payload bytes in all */
	uint32_t off;				/* payload bytes cut so far */
	uint32_t mss;
	uint32_t seq;				/* host order, of the first payload byte */
	uint16_t ip_id;				/* host order (IPv4) */
	uint16_t n_cut;				/* segments cut so far */
	uint16_t n_max;				/* segments to cut: all, or 1 (too big for the underlay) */
	uint8_t is_ipv6;
};

/*
 * A guest frame for which of_guest_frame_special said 1, on a configured
 * guest port. Checks what the plain path cannot: the frame's source MAC
 * (SPOOF_SRC_MAC), its headers in its first segment (pulled up there, or
 * dropped with the parse's reason), its IP packet against the port's MTU,
 * a TSO frame's segments against it (GUEST_OVER_MTU) and its protocol
 * (TSO_NOT_TCP); completes a partial checksum. A TSO frame whose segments
 * would be too big for the underlay is cut into its first segment only,
 * which the plain path answers with an ICMP error (mtu.h).
 */
enum of_guest_frame of_guest_frame_prepare(struct of_lcore *lc, const struct of_guest *g, uint16_t underlay_mtu,
					   struct rte_mbuf *m, struct of_gso *gso);

/*
 * Up to max next segments of gso's frame into segs, from pool; their count,
 * 0 once all are cut (the frame is then freed). A pool that runs dry drops
 * the rest of the frame as TSO_NO_MBUF.
 */
unsigned of_gso_next(struct of_lcore *lc, struct of_gso *gso, struct rte_mempool *pool,
		     struct rte_mbuf **segs, unsigned max);

#endif
