/* Resilient bucket tables: see resilient.h for the invariants. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "resilient.h"

/* Members are addressed by slot, their index in the sorted members[]. A
 * slot fits in 8 bits, so (value, slot) pairs sort as one 64-bit key. */
#define SLOT_BITS	8
#define SLOT_MASK	((1u << SLOT_BITS) - 1)

/* Twice OF_RES_MAX_MEMBERS, so linear probes in the id index stay short. */
#define ID_SLOTS	128

_Static_assert(OF_RES_MAX_MEMBERS <= 64, "slot sets are 64-bit masks");
_Static_assert(ID_SLOTS >= 2 * OF_RES_MAX_MEMBERS, "id index too small");

/* Per-member scratch of one build; on the stack, so a build allocates
 * nothing but its result. */
struct member_state {
	uint32_t load[OF_RES_MAX_MEMBERS];	/* buckets held in prev */
	uint32_t quota[OF_RES_MAX_MEMBERS];	/* buckets held in the result */
	uint32_t seen[OF_RES_MAX_MEMBERS];	/* own prev buckets passed so far */
	uint32_t deficit[OF_RES_MAX_MEMBERS];	/* freed buckets still owed */
};

/* Member id -> slot, open addressing: one short probe per bucket keeps a
 * rebuild O(B) where a binary search would be O(B log n). */
struct id_index {
	uint16_t id[ID_SLOTS];		/* OF_NO_ID marks a free entry */
	uint8_t slot[ID_SLOTS];
};

/*
 * Hands out freed buckets, each to the member furthest below quota (ties:
 * lower id). Serving every member of the highest remaining deficit once, in
 * id order, then dropping one level, is exactly that greedy rule at O(1)
 * per bucket.
 */
struct recipients {
	const uint32_t *deficit;
	uint8_t by_deficit[OF_RES_MAX_MEMBERS];	/* slots, largest deficit first */
	unsigned n;		/* members */
	unsigned n_joined;	/* prefix of by_deficit in active */
	uint32_t level;		/* deficit left to the slots in todo */
	uint64_t active;	/* slots first owed at least `level` buckets */
	uint64_t todo;		/* active slots not yet served at this level */
};

static void
sift_down(uint64_t *key, unsigned root, unsigned n)
{
	for (;;) {
		unsigned child = 2 * root + 1;
		uint64_t tmp;

		if (child >= n)
			return;
		if (child + 1 < n && key[child + 1] > key[child])
			child++;
		if (key[root] >= key[child])
			return;
		tmp = key[root];
		key[root] = key[child];
		key[child] = tmp;
		root = child;
	}
}

/* Heapsort: O(n log n) and in place, unlike qsort() which may malloc. */
static void
sort_keys(uint64_t *key, unsigned n)
{
	for (unsigned i = n / 2; i-- > 0;)
		sift_down(key, i, n);
	for (unsigned end = n; end-- > 1;) {
		uint64_t tmp = key[0];

		key[0] = key[end];
		key[end] = tmp;
		sift_down(key, 0, end);
	}
}

/* Sorts to largest value first, then lowest slot (= lowest id). */
static uint64_t
most_first_key(uint32_t value, unsigned slot)
{
	return (uint64_t)(UINT32_MAX - value) << SLOT_BITS | slot;
}

static bool
valid_sizes(uint32_t n_buckets, uint16_t n_live)
{
	bool power_of_two = n_buckets != 0 && (n_buckets & (n_buckets - 1)) == 0;

	return power_of_two && n_buckets <= OF_RES_MAX_BUCKETS &&
		n_live <= OF_RES_MAX_MEMBERS && n_live <= n_buckets;
}

/* Sorted copy of live into ids; false on a duplicate or OF_NO_ID. */
static bool
sort_ids(uint16_t *ids, const uint16_t *live, uint16_t n)
{
	uint64_t key[OF_RES_MAX_MEMBERS];

	for (unsigned i = 0; i < n; i++)
		key[i] = live[i];
	sort_keys(key, n);
	for (unsigned i = 0; i < n; i++) {
		if (key[i] == OF_NO_ID || (i > 0 && key[i] == key[i - 1]))
			return false;
		ids[i] = (uint16_t)key[i];
	}
	return true;
}

static unsigned
id_hash(uint16_t id)
{
	/* Fibonacci hashing: the top 7 bits of the product mix every id bit. */
	return (uint32_t)(id * 0x9E3779B1u) >> 25;
}

static void
id_index_init(struct id_index *ix, const uint16_t *ids, unsigned n)
{
	memset(ix->id, 0xFF, sizeof(ix->id));
	for (unsigned slot = 0; slot < n; slot++) {
		unsigned e = id_hash(ids[slot]);

		while (ix->id[e] != OF_NO_ID)
			e = (e + 1) & (ID_SLOTS - 1);
		ix->id[e] = ids[slot];
		ix->slot[e] = (uint8_t)slot;
	}
}

/* Adds id if new; false when the index already holds OF_RES_MAX_MEMBERS. */
static bool
id_index_add(struct id_index *ix, unsigned *n, uint16_t id)
{
	unsigned e = id_hash(id);

	for (; ix->id[e] != OF_NO_ID; e = (e + 1) & (ID_SLOTS - 1))
		if (ix->id[e] == id)
			return true;
	if (*n == OF_RES_MAX_MEMBERS)
		return false;
	ix->id[e] = id;
	ix->slot[e] = (uint8_t)(*n)++;
	return true;
}

/* Slot of id, or OF_NO_ID if it is not a member. */
static uint16_t
id_index_find(const struct id_index *ix, uint16_t id)
{
	for (unsigned e = id_hash(id); ix->id[e] != OF_NO_ID;
			e = (e + 1) & (ID_SLOTS - 1)) {
		if (ix->id[e] == id)
			return ix->slot[e];
	}
	return OF_NO_ID;
}

/* floor(B/n) each; the B mod n ceil quotas go to the members holding the
 * most buckets already (ties: lower id), which keeps the most in place. */
static void
assign_quotas(struct member_state *st, unsigned n, uint32_t n_buckets)
{
	uint64_t key[OF_RES_MAX_MEMBERS];

	for (unsigned slot = 0; slot < n; slot++)
		key[slot] = most_first_key(st->load[slot], slot);
	sort_keys(key, n);
	for (unsigned rank = 0; rank < n; rank++)
		st->quota[key[rank] & SLOT_MASK] =
			n_buckets / n + (rank < n_buckets % n);
}

static void
recipients_init(struct recipients *rc, const uint32_t *deficit, unsigned n)
{
	uint64_t key[OF_RES_MAX_MEMBERS];

	for (unsigned slot = 0; slot < n; slot++)
		key[slot] = most_first_key(deficit[slot], slot);
	sort_keys(key, n);
	for (unsigned i = 0; i < n; i++)
		rc->by_deficit[i] = (uint8_t)(key[i] & SLOT_MASK);
	rc->deficit = deficit;
	rc->n = n;
	rc->n_joined = 0;
	rc->level = deficit[rc->by_deficit[0]] + 1;
	rc->active = 0;
	rc->todo = 0;
}

/* Only called while some deficit is left (freed buckets == total deficit),
 * so the level never drops below 1 and active is never empty there. */
static unsigned
recipients_next(struct recipients *rc)
{
	unsigned slot;

	while (rc->todo == 0) {
		rc->level--;
		while (rc->n_joined < rc->n &&
				rc->deficit[rc->by_deficit[rc->n_joined]] == rc->level)
			rc->active |= UINT64_C(1) << rc->by_deficit[rc->n_joined++];
		rc->todo = rc->active;
	}
	slot = (unsigned)__builtin_ctzll(rc->todo);
	rc->todo &= rc->todo - 1;
	return slot;
}

/*
 * Of its `load` buckets, in bucket order, a member keeps the j-th when
 * floor((j * quota + phase) / load) steps at j + 1: that keeps exactly
 * min(load, quota) as phase < load, and spaces the ones given up evenly
 * rather than bunching them at the top of the hash space. The phase differs
 * per member so their rounding does not line up in the same buckets.
 */
static bool
keeps_bucket(struct member_state *st, unsigned slot, unsigned n)
{
	uint64_t j = st->seen[slot]++;
	uint64_t quota = st->quota[slot], load = st->load[slot];
	uint64_t phase = slot * load / n;

	return ((j + 1) * quota + phase) / load > (j * quota + phase) / load;
}

static void
fill_initial(struct of_resilient *r)
{
	for (uint32_t i = 0; i < r->n_buckets; i++)
		r->bucket[i] = r->members[i % r->n_members];
}

static void
fill_from(struct of_resilient *r, const struct of_resilient *prev)
{
	struct member_state st = { 0 };
	struct recipients rc;
	struct id_index ix;
	unsigned n = r->n_members;

	/* r->bucket first holds the slot of each bucket's previous member
	 * (OF_NO_ID if gone), so each bucket is looked up once. */
	id_index_init(&ix, r->members, n);
	for (uint32_t i = 0; i < r->n_buckets; i++) {
		uint16_t slot = id_index_find(&ix, prev->bucket[i]);

		r->bucket[i] = slot;
		if (slot != OF_NO_ID)
			st.load[slot]++;
	}
	assign_quotas(&st, n, r->n_buckets);
	for (unsigned slot = 0; slot < n; slot++)
		st.deficit[slot] = st.quota[slot] -
			(st.load[slot] < st.quota[slot] ? st.load[slot] : st.quota[slot]);
	recipients_init(&rc, st.deficit, n);
	for (uint32_t i = 0; i < r->n_buckets; i++) {
		uint16_t slot = r->bucket[i];

		if (slot == OF_NO_ID || !keeps_bucket(&st, slot, n))
			slot = (uint16_t)recipients_next(&rc);
		r->bucket[i] = r->members[slot];
	}
}

static struct of_resilient *
fail(int err)
{
	errno = err;
	return NULL;
}

struct of_resilient *
of_resilient_build(uint32_t n_buckets, const struct of_resilient *prev,
	const uint16_t *live, uint16_t n_live)
{
	uint16_t ids[OF_RES_MAX_MEMBERS];
	struct of_resilient *r;

	if (!valid_sizes(n_buckets, n_live) || (n_live > 0 && live == NULL))
		return fail(EINVAL);
	if (!sort_ids(ids, live, n_live))
		return fail(EINVAL);
	r = calloc(1, sizeof(*r) + n_buckets * sizeof(r->bucket[0]));
	if (r == NULL)
		return fail(ENOMEM);
	r->n_buckets = n_buckets;
	r->mask = n_buckets - 1;
	r->n_members = n_live;
	memcpy(r->members, ids, n_live * sizeof(ids[0]));
	if (n_live == 0)
		memset(r->bucket, 0xFF, n_buckets * sizeof(r->bucket[0]));
	else if (prev == NULL || prev->n_buckets != n_buckets)
		fill_initial(r);
	else
		fill_from(r, prev);
	return r;
}

struct of_resilient *
of_resilient_restore(uint32_t n_buckets, const uint16_t *bucket)
{
	uint64_t key[OF_RES_MAX_MEMBERS];
	struct of_resilient *r;
	struct id_index ix;
	unsigned n = 0;

	if (!valid_sizes(n_buckets, 0) || bucket == NULL)
		return fail(EINVAL);
	memset(ix.id, 0xFF, sizeof(ix.id));
	for (uint32_t i = 0; i < n_buckets; i++)
		if (bucket[i] != OF_NO_ID && !id_index_add(&ix, &n, bucket[i]))
			return fail(EINVAL);
	r = calloc(1, sizeof(*r) + n_buckets * sizeof(r->bucket[0]));
	if (r == NULL)
		return fail(ENOMEM);
	for (unsigned e = 0, k = 0; e < ID_SLOTS; e++)
		if (ix.id[e] != OF_NO_ID)
			key[k++] = ix.id[e];
	sort_keys(key, n);
	r->n_buckets = n_buckets;
	r->mask = n_buckets - 1;
	r->n_members = (uint16_t)n;
	for (unsigned i = 0; i < n; i++)
		r->members[i] = (uint16_t)key[i];
	memcpy(r->bucket, bucket, n_buckets * sizeof(r->bucket[0]));
	return r;
}

void
of_resilient_free(struct of_resilient *r)
{
	free(r);
}

uint16_t
of_resilient_loads(const struct of_resilient *r, uint32_t *counts)
{
	struct id_index ix;

	id_index_init(&ix, r->members, r->n_members);
	memset(counts, 0, r->n_members * sizeof(counts[0]));
	for (uint32_t i = 0; i < r->n_buckets; i++) {
		uint16_t slot = id_index_find(&ix, r->bucket[i]);

		if (slot != OF_NO_ID)
			counts[slot]++;
	}
	return r->n_members;
}
