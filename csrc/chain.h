/*
 * Chained mbufs (chain.c): a frame longer than one mbuf's data room comes in
 * segments (jumbo frames, a guest's TSO frames, a NIC's scatter RX). The
 * parse reads headers from the first segment only, so a chained frame first
 * gets its first OF_CHAIN_HDR_WINDOW bytes there (enough for every header
 * but long IPv6 extension chains, and for the quote of an ICMP error).
 */
#ifndef OF_CHAIN_H
#define OF_CHAIN_H

#include <stdint.h>

#include <rte_mbuf.h>

#include "parse.h"

/* Bytes of a chained frame made contiguous in its first segment, where its buffer has room. */
#define OF_CHAIN_HDR_WINDOW	1536

/*
 * Move bytes from the following segments into the first until it holds
 * min(pkt_len, OF_CHAIN_HDR_WINDOW) bytes or its buffer is full; emptied
 * segments are freed. Returns the first segment's data_len.
 */
uint32_t of_chain_pullup(struct rte_mbuf *m);

/* Cut m to its first len bytes (len <= pkt_len), freeing the segments past them. */
void of_chain_truncate(struct rte_mbuf *m, uint32_t len);

/*
 * of_parse_geneve and of_parse_inner_inbound for a chained underlay frame,
 * after of_chain_pullup: the same results, HEADERS_BEYOND_SEGMENT for
 * headers past the first segment, and a non-zero UDP checksum verified
 * over the segments when verify_udp_csum.
 */
int of_chain_parse_underlay(struct rte_mbuf *m, const uint8_t underlay_addr[16], int verify_udp_csum,
			    struct of_geneve_meta *gm, struct of_inner_meta *im);

/*
 * The Internet checksum of an upper-layer packet (TCP or UDP) in m, l4_len
 * bytes from l4_off, with the pseudo-header of the IPv4 or IPv6 header at
 * l3_off (first segment): the value for its checksum field, in memory order,
 * computed with that field zero. 0 becomes 0xffff for UDP (RFC 768).
 */
uint16_t of_chain_l4_cksum(const struct rte_mbuf *m, uint32_t l3_off, uint32_t l4_off, uint32_t l4_len,
			   int is_ipv6, uint8_t proto);

#endif
