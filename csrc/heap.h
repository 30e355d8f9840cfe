/*
 * The EAL heap's bytes, all sockets: each structure's size is measured as the difference
 * around its allocation (its real size, whatever DPDK release). Inline, so that every file
 * that measures (the prefix tables, the snapshots, the life cycle) depends on no other.
 */
#ifndef OF_HEAP_H
#define OF_HEAP_H

#include <stddef.h>

#include <rte_malloc.h>

static inline size_t
of_heap_used(void)
{
	struct rte_malloc_socket_stats s;
	size_t used = 0;

	for (int sock = 0; sock < RTE_MAX_NUMA_NODES; sock++)
		if (rte_malloc_get_socket_stats(sock, &s) == 0)
			used += s.heap_allocsz_bytes;
	return used;
}

static inline size_t
of_heap_free(void)
{
	struct rte_malloc_socket_stats s;
	size_t free_bytes = 0;

	for (int sock = 0; sock < RTE_MAX_NUMA_NODES; sock++)
		if (rte_malloc_get_socket_stats(sock, &s) == 0)
			free_bytes += s.heap_freesz_bytes;
	return free_bytes;
}

#endif
