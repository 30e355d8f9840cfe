/* Bulk lookups of a whole burst: rte_hash takes at most RTE_HASH_LOOKUP_BULK_MAX keys a call. */
#ifndef OF_HASH_BULK_H
#define OF_HASH_BULK_H

#include <stdint.h>

#include <rte_common.h>
#include <rte_hash.h>

/* The key positions of n keys in h, negative for a miss. hashes: the keys' hashes, or NULL to compute them. */
static inline void
of_hash_lookup_bulk(const struct rte_hash *h, const void **keys, const uint32_t *hashes, uint32_t n, int32_t *pos)
{
	for (uint32_t off = 0; off < n; off += RTE_HASH_LOOKUP_BULK_MAX) {
		uint32_t chunk = RTE_MIN(n - off, (uint32_t)RTE_HASH_LOOKUP_BULK_MAX);

		if (hashes != NULL)
			rte_hash_lookup_with_hash_bulk(h, &keys[off], (hash_sig_t *)(uintptr_t)&hashes[off], chunk,
						       &pos[off]);
		else
			rte_hash_lookup_bulk(h, &keys[off], chunk, &pos[off]);
	}
}

#endif
