/*
 * Where the EAL's memory went and what it holds (memory.c), for the control side. Every
 * figure is measured on the EAL heap as the structure was allocated (heap.h): mbufs and
 * prefix tables at create, flow tables at start. A commit checks that what it will
 * allocate fits in what is free before it builds anything (tables.c).
 */
#ifndef OF_MEMORY_H
#define OF_MEMORY_H

#include <stdint.h>

#include "dp_types.h"

struct of_memory_info {
	uint64_t heap_bytes;		/* the EAL heap (--memory-mb less the EAL's own) */
	uint64_t free_bytes;
	uint64_t mbuf_bytes;
	uint64_t flow_bytes;		/* every worker's flow table */
	uint64_t prefix_bytes;		/* the V2B and route tables, two each */
	uint64_t snapshot_bytes;	/* what every commit allocates, V2P aside */
	uint64_t v2p_bytes_per_1024;	/* a V2P table's bytes per 1,024 entries */
	uint32_t flow_capacity;		/* flows per worker (--flow-capacity) */
	uint32_t prefix_capacity;	/* V2B prefixes, and underlay route prefixes */
	uint32_t v2p_fit;		/* V2P entries a commit can hold with what is free now */
};
int of_dp_memory(const struct of_dp *dp, struct of_memory_info *out);

/* The two sizes a V2P table is measured at, at create (dp->v2p_small_bytes, v2p_large_bytes):
 * a table of n entries is costed as one of the next power of two (rte_hash's buckets), on
 * the line through these two. */
#define OF_V2P_PROBE_SMALL 64
#define OF_V2P_PROBE_LARGE 4096

/* Internal: the EAL heap bytes a V2P table of n entries takes. */
uint64_t of_memory_v2p_bytes(const struct of_dp *dp, uint32_t n);
/* Internal: V2P entries a commit could hold with the memory free now (a power of two, 0 for none). */
uint32_t of_memory_v2p_fit(const struct of_dp *dp);

#endif
