/*
 * Strict underlay (--strict-underlay): whom an inbound Geneve frame may come from.
 *
 * Boundary services send from the TEP addresses of the V2B entries, and a sled sends its own
 * guests' traffic from its underlay address, which V2P names for each guest's (VNI, IP). So a
 * frame is accepted when its outer source is a TEP, or is the sled that V2P maps its (VNI,
 * inner source) to; a sled cannot speak for another sled's guests, and no other host at all.
 */
#ifndef OF_STRICT_H
#define OF_STRICT_H

#include <string.h>

#include <rte_hash.h>

#include "tables.h"

static inline int
of_is_tep_addr(const struct of_tables *t, const uint8_t addr[16])
{
	uint32_t lo = 0, hi = t->n_tep_addrs;

	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		int c = memcmp(addr, t->tep_addrs[mid], 16);

		if (c == 0)
			return 1;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return 0;
}

/* outer_src: the outer IPv6 source; inner_src: the inner source, v4-mapped for IPv4. */
static inline int
of_underlay_source_ok(const struct of_tables *t, const uint8_t outer_src[16], uint32_t vni,
		      const uint8_t inner_src[16])
{
	struct of_v2p_key vk = { .vni = vni };
	int32_t pos;

	if (of_is_tep_addr(t, outer_src))
		return 1;
	memcpy(vk.ip, inner_src, 16);
	pos = rte_hash_lookup(t->v2p->hash, &vk);
	return pos >= 0 && memcmp(t->v2p->vals[pos].underlay, outer_src, 16) == 0;
}

#endif
