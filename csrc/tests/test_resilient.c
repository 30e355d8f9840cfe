/*
 * Properties of resilient bucket tables (resilient.h), checked exactly on
 * buckets and on seeded pseudo-random flow hashes, for B = 4096 and B = 64.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "resilient.h"

#define N_FLOWS		100000
#define MAX_N		16	/* largest set of the remove / re-add tests */

static const uint32_t table_sizes[] = { 4096, 64 };

/* xorshift64*: fixed seeds make every run check the same flows. */
static uint32_t
rng_next(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return (uint32_t)((*state * UINT64_C(2685821657736338717)) >> 32);
}

static void
fill_hashes(uint32_t *hashes, unsigned n, uint64_t seed)
{
	for (unsigned i = 0; i < n; i++)
		hashes[i] = rng_next(&seed);
}

/* Scattered, unsorted, distinct ids (65521 is prime) so nothing depends
 * on ids being 0..n-1 or given in order. */
static uint16_t
member_id(unsigned i)
{
	return (uint16_t)(40503u * (i + 1) % 65521);
}

static struct of_resilient *
build_ok(uint32_t n_buckets, const struct of_resilient *prev,
	const uint16_t *live, uint16_t n_live)
{
	struct of_resilient *r = of_resilient_build(n_buckets, prev, live, n_live);

	CHECK(r != NULL);
	if (r == NULL)
		abort();	/* every later check would dereference it */
	return r;
}

/* Buckets (or flows) per member id, indexed by id: OF_NO_ID included. */
#define ID_SPACE	(1u << 16)

static void
count_buckets(const struct of_resilient *r, uint32_t *by_id)
{
	memset(by_id, 0, ID_SPACE * sizeof(by_id[0]));
	for (uint32_t i = 0; i < r->n_buckets; i++)
		by_id[r->bucket[i]]++;
}

static bool
is_member(const struct of_resilient *r, uint16_t id)
{
	for (unsigned i = 0; i < r->n_members; i++)
		if (r->members[i] == id)
			return true;
	return false;
}

/* Every member holds floor(B/n) or ceil(B/n); loads() agrees; no bucket
 * names a non-member (all OF_NO_ID when empty). */
static void
check_quotas(const struct of_resilient *r)
{
	static uint32_t load[ID_SPACE];
	uint32_t counts[OF_RES_MAX_MEMBERS], total = 0;
	unsigned n = r->n_members;

	count_buckets(r, load);
	CHECK_EQ(of_resilient_loads(r, counts), n);
	for (unsigned i = 0; i < n; i++) {
		CHECK(i == 0 || r->members[i - 1] < r->members[i]);
		CHECK(counts[i] == r->n_buckets / n ||
			counts[i] == (r->n_buckets + n - 1) / n);
		CHECK_EQ(counts[i], load[r->members[i]]);
		total += counts[i];
	}
	CHECK_EQ(total + load[OF_NO_ID], r->n_buckets);
	CHECK_EQ(load[OF_NO_ID], n == 0 ? r->n_buckets : 0);
}

/* Loads before and after the transition under test, by member id. */
static uint32_t old_load[ID_SPACE], new_load[ID_SPACE];

/* Freed buckets, in bucket order, each went to the member then furthest
 * below its quota, ties to the lower id. */
static void
check_freed_order(const struct of_resilient *prev, const struct of_resilient *next,
	const uint32_t *kept)
{
	uint32_t owed[OF_RES_MAX_MEMBERS];

	for (unsigned k = 0; k < next->n_members; k++)
		owed[k] = new_load[next->members[k]] - kept[next->members[k]];
	for (uint32_t i = 0; i < next->n_buckets; i++) {
		unsigned most = 0;

		if (next->n_members == 0 || prev->bucket[i] == next->bucket[i])
			continue;
		for (unsigned k = 1; k < next->n_members; k++)
			if (owed[k] > owed[most])
				most = k;
		CHECK_EQ(next->bucket[i], next->members[most]);
		owed[most]--;
	}
}

/*
 * The movement rules from prev to next, bucket by bucket (fills old_load
 * and new_load for the caller's own checks):
 *  - a member live in both and within its new quota keeps every bucket;
 *  - a moved bucket leaves a member that is gone or over its new quota and
 *    goes to a member under its new quota;
 *  - every member keeps exactly min(old load, new load) buckets;
 *  - the ceil quotas went to the most loaded (ties: lower id);
 *  - freed buckets went to those furthest below quota (check_freed_order).
 */
static void
check_transition(const struct of_resilient *prev, const struct of_resilient *next)
{
	static uint32_t kept[ID_SPACE];

	check_quotas(next);
	count_buckets(prev, old_load);
	count_buckets(next, new_load);
	memset(kept, 0, sizeof(kept));
	for (uint32_t i = 0; i < next->n_buckets; i++) {
		uint16_t from = prev->bucket[i], to = next->bucket[i];
		bool from_live = is_member(next, from);

		if (from_live && old_load[from] <= new_load[from])
			CHECK_EQ(to, from);
		if (to == from) {
			kept[to]++;
			continue;
		}
		CHECK(!from_live || old_load[from] > new_load[from]);
		CHECK(old_load[to] < new_load[to]);
	}
	for (unsigned a = 0; a < next->n_members; a++) {
		uint16_t id_a = next->members[a];

		CHECK_EQ(kept[id_a], old_load[id_a] < new_load[id_a] ?
			old_load[id_a] : new_load[id_a]);
		for (unsigned b = 0; b < next->n_members; b++) {
			uint16_t id_b = next->members[b];

			if (new_load[id_a] > new_load[id_b])
				CHECK(old_load[id_a] > old_load[id_b] ||
					(old_load[id_a] == old_load[id_b] && id_a < id_b));
		}
	}
	check_freed_order(prev, next, kept);
}

/* Flows per member within tol (relative) of what its buckets predict, and
 * of an equal share where B/n is large enough for buckets to allow it. */
static void
check_flow_spread(const struct of_resilient *r, const uint32_t *hashes, double tol)
{
	static uint32_t flows[ID_SPACE];
	uint32_t loads[OF_RES_MAX_MEMBERS];
	unsigned n = of_resilient_loads(r, loads);

	memset(flows, 0, sizeof(flows));
	for (unsigned f = 0; f < N_FLOWS; f++)
		flows[of_resilient_pick(r, hashes[f])]++;
	for (unsigned i = 0; i < n; i++) {
		double got = flows[r->members[i]];
		double by_buckets = (double)N_FLOWS * loads[i] / r->n_buckets;
		double equal = (double)N_FLOWS / n;

		CHECK(got > by_buckets * (1 - tol) && got < by_buckets * (1 + tol));
		if (r->n_buckets >= 256 * n)
			CHECK(got > equal * (1 - tol) && got < equal * (1 + tol));
	}
}

static void
test_initial_fill_deterministic(void)
{
	static const uint16_t ids[] = { 907, 12, 65534, 0, 300 };
	static const uint16_t sorted[] = { 0, 12, 300, 907, 65534 };
	static const uint16_t reordered[] = { 300, 65534, 12, 907, 0 };

	for (unsigned t = 0; t < 2; t++) {
		uint32_t b = table_sizes[t];
		struct of_resilient *r1 = build_ok(b, NULL, ids, 5);
		struct of_resilient *r2 = build_ok(b, NULL, reordered, 5);
		struct of_resilient *other_size = build_ok(b * 2, NULL, ids, 5);
		struct of_resilient *r3 = build_ok(b, other_size, ids, 5);

		CHECK_EQ(r1->n_buckets, b);
		CHECK_EQ(r1->mask, b - 1);
		CHECK_EQ(r1->n_members, 5);
		CHECK_MEM(r1->members, sorted, sizeof(sorted));
		for (uint32_t i = 0; i < b; i++)
			CHECK_EQ(r1->bucket[i], sorted[i % 5]);
		CHECK_MEM(r1, r2, sizeof(*r1) + b * sizeof(r1->bucket[0]));
		/* a prev of another size is ignored: initial fill again */
		CHECK_MEM(r1, r3, sizeof(*r1) + b * sizeof(r1->bucket[0]));
		check_quotas(r1);
		of_resilient_free(r1);
		of_resilient_free(r2);
		of_resilient_free(r3);
		of_resilient_free(other_size);
	}
}

/* All ids of 0..n-1 but `victim`. */
static unsigned
ids_without(uint16_t *ids, unsigned n, unsigned victim)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n; i++)
		if (i != victim)
			ids[k++] = member_id(i);
	return k;
}

/* Exactly the flows on the removed member move, all of them. */
static void
check_remove(const struct of_resilient *full, const struct of_resilient *less,
	uint16_t victim, const uint32_t *hashes)
{
	unsigned wrong = 0;

	check_transition(full, less);
	CHECK_EQ(new_load[victim], 0);
	for (unsigned f = 0; f < N_FLOWS; f++) {
		uint16_t before = of_resilient_pick(full, hashes[f]);
		uint16_t after = of_resilient_pick(less, hashes[f]);

		wrong += (before != after) != (before == victim);
	}
	CHECK_EQ(wrong, 0);
	check_flow_spread(less, hashes, 0.10);
}

/* Only buckets of over-quota members move, all to the re-added member, and
 * as many as its new quota; they spread over the whole table: with B/n
 * large enough, each eighth of it holds an eighth of them, +-6 buckets
 * (bunched at the top, some eighths would hold none). */
static void
check_readd(const struct of_resilient *less, const struct of_resilient *again,
	uint16_t victim, const uint32_t *fresh)
{
	uint32_t b = again->n_buckets, moved = 0;

	check_transition(less, again);
	for (uint32_t i = 0; i < b; i++) {
		if (less->bucket[i] == again->bucket[i])
			continue;
		moved++;
		CHECK_EQ(again->bucket[i], victim);
		CHECK(old_load[less->bucket[i]] > new_load[less->bucket[i]]);
	}
	CHECK_EQ(moved, new_load[victim]);
	CHECK_EQ(moved, b / again->n_members);
	for (uint32_t part = 0; b / again->n_members >= 64 && part < 8; part++) {
		int held = 0;

		for (uint32_t i = part * b / 8; i < (part + 1) * b / 8; i++)
			held += again->bucket[i] == victim;
		CHECK(abs(8 * held - (int)moved) <= 8 * 6);
	}
	check_flow_spread(again, fresh, 0.05);
}

static void
test_remove_and_readd(void)
{
	static uint32_t hashes[N_FLOWS], fresh[N_FLOWS];

	fill_hashes(hashes, N_FLOWS, 0x5eed0001);
	fill_hashes(fresh, N_FLOWS, 0x5eed0002);
	for (unsigned t = 0; t < 2; t++) {
		for (unsigned n = 2; n <= MAX_N; n++) {
			uint16_t all[MAX_N], some[MAX_N];
			struct of_resilient *full;

			ids_without(all, n, n);	/* no victim: all n */
			full = build_ok(table_sizes[t], NULL, all, (uint16_t)n);
			for (unsigned v = 0; v < n; v++) {
				uint16_t n_some = (uint16_t)ids_without(some, n, v);
				struct of_resilient *less = build_ok(table_sizes[t], full, some, n_some);
				struct of_resilient *again = build_ok(table_sizes[t], less, all, (uint16_t)n);

				check_remove(full, less, member_id(v), hashes);
				check_readd(less, again, member_id(v), fresh);
				of_resilient_free(less);
				of_resilient_free(again);
			}
			of_resilient_free(full);
		}
	}
}

/* Fisher-Yates, so each build sees its live set in a new order. */
static void
shuffle(uint16_t *ids, unsigned n, uint64_t *rng)
{
	for (unsigned i = n; i > 1; i--) {
		unsigned j = rng_next(rng) % i;
		uint16_t tmp = ids[i - 1];

		ids[i - 1] = ids[j];
		ids[j] = tmp;
	}
}

/* One random step: remove 0..2 members, add 0..2 ids never live before or
 * back from the removed pool, within the limits. */
static unsigned
random_step(uint16_t *live, unsigned n, unsigned limit, uint16_t *next_new, uint64_t *rng)
{
	unsigned removes = rng_next(rng) % 3, adds = rng_next(rng) % 3;

	for (; removes > 0 && n > 0; removes--) {
		unsigned k = rng_next(rng) % n;

		live[k] = live[--n];
	}
	for (; adds > 0 && n < limit; adds--) {
		/* half new ids, half a previously used one that is not live */
		uint16_t id = (rng_next(rng) & 1) ? (*next_new)++ :
			(uint16_t)(rng_next(rng) % 200);
		bool dup = false;

		for (unsigned i = 0; i < n; i++)
			dup |= live[i] == id;
		if (!dup)
			live[n++] = id;
	}
	return n;
}

static void
test_random_sequences(void)
{
	for (unsigned t = 0; t < 2; t++) {
		uint32_t b = table_sizes[t];
		unsigned limit = b < OF_RES_MAX_MEMBERS ? b : OF_RES_MAX_MEMBERS;
		uint64_t rng = 0xC0FFEE + t;
		uint16_t live[OF_RES_MAX_MEMBERS], next_new = 200;
		unsigned n = 0;
		struct of_resilient *prev = build_ok(b, NULL, live, 0);

		for (unsigned step = 0; step < 400; step++) {
			struct of_resilient *next, *reordered;

			n = random_step(live, n, limit, &next_new, &rng);
			next = build_ok(b, prev, live, (uint16_t)n);
			shuffle(live, n, &rng);
			reordered = build_ok(b, prev, live, (uint16_t)n);
			check_transition(prev, next);
			CHECK_MEM(next, reordered, sizeof(*next) + b * sizeof(next->bucket[0]));
			of_resilient_free(reordered);
			of_resilient_free(prev);
			prev = next;
		}
		of_resilient_free(prev);
	}
}

static void
test_empty_set(void)
{
	static const uint16_t one[] = { 7 };

	for (unsigned t = 0; t < 2; t++) {
		uint32_t b = table_sizes[t], counts[1];
		struct of_resilient *empty = build_ok(b, NULL, NULL, 0);
		struct of_resilient *filled = build_ok(b, empty, one, 1);
		struct of_resilient *emptied = build_ok(b, filled, NULL, 0);

		CHECK_EQ(empty->n_members, 0);
		CHECK_EQ(of_resilient_loads(empty, counts), 0);
		CHECK_EQ(of_resilient_pick(empty, 12345), OF_NO_ID);
		check_quotas(empty);
		CHECK_EQ(filled->n_members, 1);
		check_quotas(filled);
		CHECK_MEM(empty, emptied, sizeof(*empty) + b * sizeof(empty->bucket[0]));
		of_resilient_free(empty);
		of_resilient_free(filled);
		of_resilient_free(emptied);
	}
}

static void
test_one_member(void)
{
	static const uint16_t one[] = { 0 }, other[] = { 9 };

	for (unsigned t = 0; t < 2; t++) {
		uint32_t b = table_sizes[t], counts[1];
		struct of_resilient *r = build_ok(b, NULL, one, 1);
		struct of_resilient *swapped = build_ok(b, r, other, 1);

		CHECK_EQ(of_resilient_loads(r, counts), 1);
		CHECK_EQ(counts[0], b);
		CHECK_EQ(of_resilient_loads(swapped, counts), 1);
		CHECK_EQ(counts[0], b);
		CHECK_EQ(swapped->members[0], 9);
		of_resilient_free(r);
		of_resilient_free(swapped);
	}
	/* the smallest table */
	struct of_resilient *tiny = build_ok(1, NULL, other, 1);

	CHECK_EQ(of_resilient_pick(tiny, 0xFFFFFFFF), 9);
	of_resilient_free(tiny);
}

static uint32_t
kept_total(const struct of_resilient *prev, const struct of_resilient *next)
{
	uint32_t kept = 0;

	for (uint32_t i = 0; i < next->n_buckets; i++)
		kept += prev->bucket[i] == next->bucket[i];
	return kept;
}

/* n == B: one bucket each; removing one hands its bucket to the lowest id,
 * which is then alone at the ceil quota; re-adding moves one bucket back. */
static void
test_as_many_members_as_buckets(void)
{
	uint16_t ids[OF_RES_MAX_MEMBERS];

	for (unsigned i = 0; i < OF_RES_MAX_MEMBERS; i++)
		ids[i] = (uint16_t)(10 * i);	/* ascending: ids[1] is the lowest survivor */
	for (uint32_t b = 1; b <= OF_RES_MAX_MEMBERS; b *= 2) {
		struct of_resilient *full = build_ok(b, NULL, ids, (uint16_t)b);

		check_quotas(full);
		for (uint32_t i = 0; i < b; i++)
			CHECK_EQ(full->bucket[i], ids[i]);
		if (b > 1) {
			struct of_resilient *less = build_ok(b, full, ids + 1, (uint16_t)(b - 1));
			struct of_resilient *again = build_ok(b, less, ids, (uint16_t)b);

			check_transition(full, less);
			CHECK_EQ(less->bucket[0], ids[1]);
			check_transition(less, again);
			CHECK_EQ(new_load[ids[0]], 1);
			CHECK_EQ(kept_total(less, again), b - 1);
			of_resilient_free(less);
			of_resilient_free(again);
		}
		of_resilient_free(full);
	}
}

static void
check_rejected(uint32_t n_buckets, const uint16_t *live, uint16_t n_live)
{
	errno = 0;
	CHECK(of_resilient_build(n_buckets, NULL, live, n_live) == NULL);
	CHECK_EQ(errno, EINVAL);
}

static void
test_bad_inputs(void)
{
	static const uint16_t dup[] = { 4, 8, 4 }, none[] = { 1, OF_NO_ID };
	uint16_t many[OF_RES_MAX_MEMBERS + 1];
	struct of_resilient *largest;

	for (unsigned i = 0; i <= OF_RES_MAX_MEMBERS; i++)
		many[i] = (uint16_t)i;
	check_rejected(0, dup, 1);
	check_rejected(3, dup, 1);
	check_rejected(100, dup, 1);
	check_rejected(4095, dup, 1);
	check_rejected(OF_RES_MAX_BUCKETS * 2, dup, 1);
	check_rejected(4096, dup, 3);
	check_rejected(4096, none, 2);
	check_rejected(4096, NULL, 1);
	check_rejected(4096, many, OF_RES_MAX_MEMBERS + 1);
	check_rejected(4, many, 5);
	check_rejected(64, many, OF_RES_MAX_MEMBERS + 1);
	largest = build_ok(OF_RES_MAX_BUCKETS, NULL, many, OF_RES_MAX_MEMBERS);
	check_quotas(largest);
	of_resilient_free(largest);
}

static bool
same_buckets(const struct of_resilient *a, const struct of_resilient *b)
{
	return a->n_buckets == b->n_buckets &&
		memcmp(a->bucket, b->bucket, a->n_buckets * sizeof(a->bucket[0])) == 0;
}

/* A table with a history: 5 members, one down, back, a sixth added. Its
 * fill is not the initial fill of its members. */
static struct of_resilient *
churned_table(uint32_t b, uint16_t *live, uint16_t *n_live)
{
	uint16_t some[6];
	unsigned n_some = ids_without(some, 5, 2);
	struct of_resilient *full, *less, *again, *grown;

	ids_without(live, 6, 6);
	full = build_ok(b, NULL, live, 5);
	less = build_ok(b, full, some, (uint16_t)n_some);
	again = build_ok(b, less, live, 5);
	grown = build_ok(b, again, live, 6);
	of_resilient_free(full);
	of_resilient_free(less);
	of_resilient_free(again);
	*n_live = 6;
	return grown;
}

/* A table rebuilt over its own live set is itself, whatever order the set
 * comes in: the property that makes a saved table worth restoring. */
static void
test_same_live_set_keeps_the_table(void)
{
	uint64_t rng = 0xAB;

	for (unsigned t = 0; t < 2; t++) {
		uint16_t live[6], n;
		struct of_resilient *churned = churned_table(table_sizes[t], live, &n);
		struct of_resilient *initial = build_ok(table_sizes[t], NULL, live, n);
		struct of_resilient *again;

		CHECK(!same_buckets(churned, initial));
		shuffle(live, n, &rng);
		again = build_ok(table_sizes[t], churned, live, n);
		CHECK(same_buckets(churned, again));
		of_resilient_free(churned);
		of_resilient_free(initial);
		of_resilient_free(again);
	}
}

/* Saved, restored and rebuilt with the same members: the saved table
 * exactly. With a member gone (saved as OF_NO_ID, as the control plane
 * writes a member it no longer knows): only its buckets move, exactly as if
 * it had left without a restart. */
static void
test_restore_rebuilds_the_saved_table(void)
{
	for (unsigned t = 0; t < 2; t++) {
		uint32_t b = table_sizes[t];
		uint16_t live[6], n, gone, some[6];
		struct of_resilient *churned = churned_table(b, live, &n);
		uint16_t *saved = malloc(b * sizeof(saved[0]));
		struct of_resilient *restored, *rebuilt, *restored_less, *rebuilt_less, *direct_less;
		unsigned n_some;

		memcpy(saved, churned->bucket, b * sizeof(saved[0]));
		restored = of_resilient_restore(b, saved);
		CHECK(restored != NULL);
		if (restored == NULL)
			abort();
		CHECK_EQ(restored->n_members, n);
		CHECK_MEM(restored->members, churned->members, n * sizeof(churned->members[0]));
		rebuilt = build_ok(b, restored, live, n);
		CHECK(same_buckets(rebuilt, churned));
		check_quotas(rebuilt);

		gone = member_id(3);
		n_some = ids_without(some, 6, 3);
		for (uint32_t i = 0; i < b; i++)
			if (saved[i] == gone)
				saved[i] = OF_NO_ID;
		restored_less = of_resilient_restore(b, saved);
		CHECK(restored_less != NULL);
		if (restored_less == NULL)
			abort();
		CHECK_EQ(restored_less->n_members, n - 1);
		rebuilt_less = build_ok(b, restored_less, some, (uint16_t)n_some);
		direct_less = build_ok(b, churned, some, (uint16_t)n_some);
		check_transition(churned, rebuilt_less);
		CHECK_EQ(new_load[gone], 0);
		CHECK(same_buckets(rebuilt_less, direct_less));

		free(saved);
		of_resilient_free(churned);
		of_resilient_free(restored);
		of_resilient_free(rebuilt);
		of_resilient_free(restored_less);
		of_resilient_free(rebuilt_less);
		of_resilient_free(direct_less);
	}
}

static void
test_restore_bad_inputs(void)
{
	uint16_t many[OF_RES_MAX_MEMBERS + 1], none[4] = { OF_NO_ID, OF_NO_ID, OF_NO_ID, OF_NO_ID };
	struct of_resilient *empty, *most;

	for (unsigned i = 0; i <= OF_RES_MAX_MEMBERS; i++)
		many[i] = (uint16_t)(i * 7);
	errno = 0;
	CHECK(of_resilient_restore(3, many) == NULL);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK(of_resilient_restore(64, NULL) == NULL);
	CHECK_EQ(errno, EINVAL);
	/* 65 distinct ids in a table of 128: more members than a table may hold */
	{
		uint16_t big[128];

		for (unsigned i = 0; i < 128; i++)
			big[i] = many[i % (OF_RES_MAX_MEMBERS + 1)];
		errno = 0;
		CHECK(of_resilient_restore(128, big) == NULL);
		CHECK_EQ(errno, EINVAL);
		for (unsigned i = 0; i < 128; i++)
			big[i] = many[i % OF_RES_MAX_MEMBERS];
		most = of_resilient_restore(128, big);
		CHECK(most != NULL && most->n_members == OF_RES_MAX_MEMBERS);
		of_resilient_free(most);
	}
	empty = of_resilient_restore(4, none);
	CHECK(empty != NULL && empty->n_members == 0);
	of_resilient_free(empty);
}

RUN_TESTS(
	TEST_ENTRY(test_initial_fill_deterministic),
	TEST_ENTRY(test_remove_and_readd),
	TEST_ENTRY(test_random_sequences),
	TEST_ENTRY(test_empty_set),
	TEST_ENTRY(test_one_member),
	TEST_ENTRY(test_as_many_members_as_buckets),
	TEST_ENTRY(test_bad_inputs),
	TEST_ENTRY(test_same_live_set_keeps_the_table),
	TEST_ENTRY(test_restore_rebuilds_the_saved_table),
	TEST_ENTRY(test_restore_bad_inputs),
)
