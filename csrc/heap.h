/*
 * The EAL heaps' bytes, all sockets: the one place the data plane reads them. Each structure's
 * size is measured as the difference around its allocation (its real size, whatever DPDK
 * release); memory.c reports the totals. Inline, so that every file that measures (the prefix
 * tables, the snapshots, the life cycle) depends on no other.
 */
#ifndef OF_HEAP_H
#define OF_HEAP_H

#include <stddef.h>
#include <string.h>

#include <rte_lcore.h>
#include <rte_malloc.h>

struct of_heap_bytes {
	size_t total;		/* the heaps' size */
	size_t used;		/* allocated */
	size_t free;
};

static inline void
of_heap_read(struct of_heap_bytes *out)
{
	struct rte_malloc_socket_stats s;

	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < rte_socket_count(); i++)
		if (rte_malloc_get_socket_stats(rte_socket_id_by_idx(i), &s) == 0) {
			out->total += s.heap_totalsz_bytes;
			out->used += s.heap_allocsz_bytes;
			out->free += s.heap_freesz_bytes;
		}
}

static inline size_t
of_heap_used(void)
{
	struct of_heap_bytes h;

	of_heap_read(&h);
	return h.used;
}

static inline size_t
of_heap_free(void)
{
	struct of_heap_bytes h;

	of_heap_read(&h);
	return h.free;
}

#endif
