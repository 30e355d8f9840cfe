/* The per-lcore flow table (flow.h) and its expiry sweep. */
#include <netinet/in.h>

#include <rte_common.h>
#include <rte_malloc.h>
#include <rte_prefetch.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "dp_types.h"
#include "flow.h"
#include "lcore.h"

/* The bucket a hash names first: its low bits (flow.h says which bits go where). */
static inline uint32_t
home_bucket(const struct of_flow_table *ft, uint32_t hash)
{
	return hash & ft->bucket_mask;
}

/* The 16 bits above the bucket index; never 0, which marks a free slot. */
static inline uint16_t
signature(const struct of_flow_table *ft, uint32_t hash)
{
	uint16_t sig = (uint16_t)(hash >> ft->sig_shift);

	return sig | (sig == 0);
}

/* The slots of b whose signature is sig, one bit each. */
static inline uint32_t
sig_matches(const struct of_flow_bucket *b, uint16_t sig)
{
#ifdef __SSE2__
	__m128i eq = _mm_cmpeq_epi16(_mm_load_si128((const __m128i *)b->sig), _mm_set1_epi16((short)sig));

	/* Each 16-bit lane's all-ones or zero, narrowed to a byte, one bit per slot. */
	return (uint32_t)_mm_movemask_epi8(_mm_packs_epi16(eq, _mm_setzero_si128()));
#else
	uint32_t mask = 0;

	for (unsigned s = 0; s < OF_FLOW_BUCKET_SLOTS; s++)
		mask |= (uint32_t)(b->sig[s] == sig) << s;
	return mask;
#endif
}

static inline int
key_equal(const struct of_flow_key *a, const struct of_flow_key *b)
{
	const uint64_t *x = (const uint64_t *)a, *y = (const uint64_t *)b;

	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4]) | (x[5] ^ y[5])) == 0;
}

struct of_flow_table *
of_flow_table_create(const char *name, uint32_t capacity, int socket)
{
	struct of_flow_table *ft = rte_zmalloc_socket(name, sizeof(*ft), RTE_CACHE_LINE_SIZE, socket);
	uint32_t n_buckets;

	if (ft == NULL || capacity == 0 || capacity > UINT32_MAX / 4)
		goto fail;
	n_buckets = rte_align32pow2((capacity + OF_FLOW_BUCKET_SLOTS / 2 - 1) / (OF_FLOW_BUCKET_SLOTS / 2));
	ft->bucket_mask = n_buckets - 1;
	ft->sig_shift = (uint32_t)__builtin_ctz(n_buckets);
	ft->n_entries = capacity;
	ft->buckets = rte_zmalloc_socket(name, (size_t)n_buckets * sizeof(*ft->buckets), RTE_CACHE_LINE_SIZE, socket);
	ft->entries = rte_zmalloc_socket(name, (size_t)capacity * sizeof(*ft->entries), RTE_CACHE_LINE_SIZE, socket);
	ft->free = rte_malloc_socket(name, (size_t)capacity * sizeof(*ft->free), RTE_CACHE_LINE_SIZE, socket);
	if (ft->buckets == NULL || ft->entries == NULL || ft->free == NULL)
		goto fail;
	for (uint32_t i = 0; i < capacity; i++)
		ft->free[i] = i;
	ft->n_free = capacity;
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
	rte_free(ft->buckets);
	rte_free(ft->entries);
	rte_free(ft->free);
	rte_free(ft);
}

/* The entry of key, or NULL. */
static inline struct of_flow_entry *
lookup(const struct of_flow_table *ft, const struct of_flow_key *key, uint32_t hash)
{
	uint16_t sig = signature(ft, hash);

	for (uint32_t b = home_bucket(ft, hash), probes = 0; probes <= ft->bucket_mask;
	     b = (b + 1) & ft->bucket_mask, probes++) {
		const struct of_flow_bucket *bk = &ft->buckets[b];

		for (uint32_t m = sig_matches(bk, sig); m != 0; m &= m - 1) {
			struct of_flow_entry *e = &ft->entries[bk->entry[__builtin_ctz(m)]];

			if (key_equal(&e->key, key))
				return e;
		}
		if (bk->overflow == 0)
			break;
	}
	return NULL;
}

/*
 * In three passes over the burst, so that its cache misses overlap: fetch
 * every home bucket, then every first candidate's entry (its key is in its
 * first line), then compare.
 */
void
of_flow_lookup_bulk(struct of_flow_table *ft, const struct of_flow_key **keys,
		    const uint32_t *hashes, uint16_t n, struct of_flow_entry **entries)
{
	for (uint16_t i = 0; i < n; i++)
		rte_prefetch0(&ft->buckets[home_bucket(ft, hashes[i])]);
	for (uint16_t i = 0; i < n; i++) {
		const struct of_flow_bucket *bk = &ft->buckets[home_bucket(ft, hashes[i])];
		uint32_t m = sig_matches(bk, signature(ft, hashes[i]));

		entries[i] = m != 0 ? &ft->entries[bk->entry[__builtin_ctz(m)]] : NULL;
		if (entries[i] != NULL)
			rte_prefetch0(entries[i]);
	}
	for (uint16_t i = 0; i < n; i++) {
		if (likely(entries[i] != NULL && key_equal(&entries[i]->key, keys[i])))
			continue;
		/* Another flow of the same signature first, or the flow went past its home bucket. */
		if (entries[i] != NULL || ft->buckets[home_bucket(ft, hashes[i])].overflow != 0)
			entries[i] = lookup(ft, keys[i], hashes[i]);
	}
}

struct of_flow_entry *
of_flow_insert(struct of_flow_table *ft, const struct of_flow_key *key, uint32_t hash, int *created)
{
	struct of_flow_entry *e = lookup(ft, key, hash);
	uint32_t b = home_bucket(ft, hash), idx;

	*created = 0;
	if (e != NULL)
		return e;
	if (ft->n_free == 0)
		return NULL;
	idx = ft->free[ft->free_head];
	ft->free_head = ft->free_head + 1 == ft->n_entries ? 0 : ft->free_head + 1;
	ft->n_free--;
	/* Twice as many slots as entries: a free slot is always found. */
	for (;;) {
		struct of_flow_bucket *bk = &ft->buckets[b];
		uint32_t m = sig_matches(bk, 0);

		if (m != 0) {
			unsigned s = (unsigned)__builtin_ctz(m);

			bk->sig[s] = signature(ft, hash);
			bk->entry[s] = idx;
			break;
		}
		bk->overflow++;
		b = (b + 1) & ft->bucket_mask;
	}
	*created = 1;
	e = &ft->entries[idx];
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
	uint32_t idx = (uint32_t)(e - ft->entries);
	uint16_t sig = signature(ft, e->hash);
	uint32_t tail;

	__atomic_store_n(&e->in_use, 0, __ATOMIC_RELEASE);
	/* Its slot is in the home bucket or after it: every bucket passed loses one overflow. */
	for (uint32_t b = home_bucket(ft, e->hash);; b = (b + 1) & ft->bucket_mask) {
		struct of_flow_bucket *bk = &ft->buckets[b];
		uint32_t m = sig_matches(bk, sig);

		for (; m != 0; m &= m - 1)
			if (bk->entry[__builtin_ctz(m)] == idx)
				break;
		if (m != 0) {
			bk->sig[__builtin_ctz(m)] = 0;
			break;
		}
		bk->overflow--;
	}
	tail = ft->free_head + ft->n_free;
	ft->free[tail >= ft->n_entries ? tail - ft->n_entries : tail] = idx;
	ft->n_free++;
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
