/* The per-lcore flow table (flow.h) and its expiry sweep. */
#include <netinet/in.h>

#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>

#include "dp_types.h"
#include "flow.h"
#include "hash_bulk.h"
#include "lcore.h"

struct of_flow_table *
of_flow_table_create(const char *name, uint32_t capacity, int socket)
{
	struct rte_hash_parameters params = {
		.name = name,
		.entries = capacity,
		.key_len = sizeof(struct of_flow_key),
		.hash_func = rte_hash_crc,	/* unused: callers pass the flow hash */
		.socket_id = socket,
		/* Full means full: no insert fails early on a crowded bucket. */
		.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE,
	};
	struct of_flow_table *ft = rte_zmalloc_socket(name, sizeof(*ft), RTE_CACHE_LINE_SIZE, socket);

	if (ft == NULL)
		return NULL;
	ft->hash = rte_hash_create(&params);
	if (ft->hash == NULL)
		goto fail;
	/* Key positions run from 0 to rte_hash_max_key_id(). */
	ft->n_entries = (uint32_t)rte_hash_max_key_id(ft->hash) + 1;
	ft->entries = rte_zmalloc_socket(name, (size_t)ft->n_entries * sizeof(*ft->entries),
					 RTE_CACHE_LINE_SIZE, socket);
	if (ft->entries == NULL)
		goto fail;
	return ft;
fail:
	of_flow_table_free(ft);
	return NULL;
}

void
of_flow_table_free(struct of_flow_table *ft)
{
	if (ft == NULL)
		return;
	rte_hash_free(ft->hash);
	rte_free(ft->entries);
	rte_free(ft);
}

void
of_flow_lookup_bulk(struct of_flow_table *ft, const struct of_flow_key **keys,
		    const uint32_t *hashes, uint16_t n, struct of_flow_entry **entries)
{
	int32_t pos[OF_MAX_BURST];

	of_hash_lookup_bulk(ft->hash, (const void **)keys, hashes, n, pos);
	for (uint16_t i = 0; i < n; i++)
		entries[i] = pos[i] >= 0 ? &ft->entries[pos[i]] : NULL;
}

struct of_flow_entry *
of_flow_insert(struct of_flow_table *ft, const struct of_flow_key *key, uint32_t hash, int *created)
{
	int32_t pos = rte_hash_add_key_with_hash(ft->hash, key, hash);
	struct of_flow_entry *e;

	*created = 0;
	if (pos < 0)
		return NULL;
	e = &ft->entries[pos];
	if (e->in_use)
		return e;
	*created = 1;
	e->key = *key;
	e->hash = hash;
	e->packets = 0;
	e->bytes = 0;
	e->closing = 0;
	__atomic_store_n(&e->in_use, 1, __ATOMIC_RELEASE);
	ft->n_active++;
	return e;
}

void
of_flow_remove(struct of_flow_table *ft, struct of_flow_entry *e)
{
	__atomic_store_n(&e->in_use, 0, __ATOMIC_RELEASE);
	rte_hash_del_key_with_hash(ft->hash, &e->key, e->hash);
	ft->n_active--;
}

static inline uint64_t
flow_timeout(const struct of_flow_timeouts *to, const struct of_flow_entry *e)
{
	switch (e->key.proto) {
	case IPPROTO_TCP:
		return e->closing ? to->tcp_closed : to->tcp_idle;
	case IPPROTO_UDP:
		return to->udp_idle;
	default:
		return to->icmp_idle;
	}
}

/*
 * Expiry walks the table at a steady pace: one full pass per sweep period
 * (a second, or half the shortest timeout), a few entries per iteration
 * as time passes, so it never pauses the loop and costs nothing at rest.
 */
void
of_flow_sweep(struct of_lcore *lc, const struct of_flow_timeouts *to)
{
	struct of_flow_table *ft = lc->flows;
	uint64_t budget = (lc->now - lc->sweep_tsc) * ft->n_entries / to->sweep_period;

	if (budget == 0)
		return;
	/* Credit only the time the entries stand for, so slow iterations do not lose pace. */
	lc->sweep_tsc += budget * to->sweep_period / ft->n_entries;
	budget = RTE_MIN(budget, (uint64_t)OF_SWEEP_MAX);
	while (budget-- > 0) {
		struct of_flow_entry *e = &ft->entries[lc->sweep_pos];

		if (++lc->sweep_pos == ft->n_entries)
			lc->sweep_pos = 0;
		if (!e->in_use || lc->now - e->last_tsc <= flow_timeout(to, e))
			continue;
		of_count_path_flows(lc, &e->path, -1);
		of_flow_remove(ft, e);
		of_count(lc, OF_C_FLOWS_EXPIRED);
	}
}
