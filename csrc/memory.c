/* What the EAL's memory holds (memory.h). */
#include <string.h>

#include <rte_common.h>

#include "dp.h"
#include "heap.h"
#include "memory.h"

uint64_t
of_memory_v2p_bytes(const struct of_dp *dp, uint32_t n)
{
	uint64_t slots = rte_align64pow2(RTE_MAX(n, (uint32_t)OF_V2P_PROBE_SMALL));

	return dp->v2p_small_bytes + (dp->v2p_large_bytes - dp->v2p_small_bytes) * (slots - OF_V2P_PROBE_SMALL) /
					     (OF_V2P_PROBE_LARGE - OF_V2P_PROBE_SMALL);
}

uint32_t
of_memory_v2p_fit(const struct of_dp *dp)
{
	uint64_t room = of_heap_room();
	uint32_t fit = 0;

	for (uint64_t n = OF_V2P_PROBE_SMALL; n <= (1u << 30); n *= 2) {
		if (dp->snapshot_bytes + of_memory_v2p_bytes(dp, (uint32_t)n) > room)
			break;
		fit = (uint32_t)n;
	}
	return fit;
}

int
of_dp_memory(const struct of_dp *dp, struct of_memory_info *out)
{
	struct of_heap_bytes heap;

	memset(out, 0, sizeof(*out));
	of_heap_read(&heap);
	out->heap_bytes = heap.total;
	out->free_bytes = heap.free;
	out->mbuf_bytes = dp->mbuf_bytes;
	out->flow_bytes = dp->flow_bytes;
	out->prefix_bytes = dp->v2b_bank.bytes + dp->route_bank.bytes;
	out->snapshot_bytes = dp->snapshot_bytes;
	out->flow_capacity = dp->n_workers > 0 ? dp->cfg.flow_capacity : 0;
	out->prefix_capacity = dp->v2b_bank.capacity;
	out->v2p_fit = of_memory_v2p_fit(dp);
	out->v2p_bytes_per_1024 = (of_memory_v2p_bytes(dp, 1u << 16) - of_memory_v2p_bytes(dp, 1u << 15)) /
				  ((1u << 15) / 1024);
	return 0;
}
