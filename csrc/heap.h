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
	size_t largest_free;	/* the largest free block of any socket: what one table can be given */
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
			if (s.greatest_free_size > out->largest_free)
				out->largest_free = s.greatest_free_size;
		}
}

static inline size_t
of_heap_used(void)
{
	struct of_heap_bytes h;

	of_heap_read(&h);
	return h.used;
}

/*
 * The bytes a commit's new tables can count on: the largest free block, not all free bytes,
 * since a table is one allocation or a few and a heap cut up by earlier allocations cannot
 * give a large one. Conservative, so that a capacity stated from it is one that fits.
 */
static inline size_t
of_heap_room(void)
{
	struct of_heap_bytes h;

	of_heap_read(&h);
	return h.largest_free;
}

#endif
