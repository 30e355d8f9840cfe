/*
 * The flow table's index (flow.c): flows that share a home bucket spill
 * into the buckets after it and are still found; removing flows anywhere in
 * such a run keeps every other flow findable; entries are reused first
 * freed first; a full table refuses a new flow and still finds the old.
 * Random inserts, lookups and removals agree with a plain list of the
 * flows; the signature takes 16 bits that neither the bucket nor the
 * worker owner takes; and the index's figures as a table fills (refused
 * inserts, flows outside their home bucket, buckets a lookup reads).
 */
#define _GNU_SOURCE	/* nftw (runtime_dir.h) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>

#include "check.h"
#include "flow.h"
#include "flow_hash.h"
#include "handoff.h"
#include "runtime_dir.h"

#define CAPACITY 64	/* 16 buckets of 8 slots */

static struct of_flow_key
key_of(uint32_t i)
{
	struct of_flow_key k;

	memset(&k, 0, sizeof(k));
	k.vni = 7;
	k.proto = 17;
	k.src_port = (uint16_t)i;
	k.dst_port = (uint16_t)(i >> 16);
	return k;
}

/* Hashes that all name bucket 0, with a signature shared by every pair: worst case for the index. */
static uint32_t
crowded_hash(const struct of_flow_table *ft, uint32_t i)
{
	return (i / 2 + 1) << ft->sig_shift;
}

/* xorshift64: the same sequence on every run */
static uint64_t
next_random(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

static void
test_eal(void)
{
	char prefix[64];

	snprintf(prefix, sizeof(prefix), "--file-prefix=test-flow-%d", (int)getpid());
	char *argv[] = { "test_flow", "-l", "0", "--no-huge", "-m", "64", "--no-pci", "--no-shconf",
			 "--log-level=error", prefix };

	CHECK(rte_eal_init((int)(sizeof(argv) / sizeof(argv[0])), argv) >= 0);
	CHECK(of_remove_eal_runtime_dir() == 0);
}

static struct of_flow_entry *
find(struct of_flow_table *ft, uint32_t i)
{
	struct of_flow_key k = key_of(i);
	const struct of_flow_key *kp = &k;
	uint32_t h = crowded_hash(ft, i);
	struct of_flow_entry *e;

	of_flow_lookup_bulk(ft, &kp, &h, 1, &e);
	return e;
}

static struct of_flow_entry *
insert(struct of_flow_table *ft, uint32_t i, int *created)
{
	struct of_flow_key k = key_of(i);

	return of_flow_insert(ft, &k, crowded_hash(ft, i), created);
}

static void
test_crowded_bucket_spills_and_removes(void)
{
	struct of_flow_table *ft = of_flow_table_create("test_flows", CAPACITY, 0);
	struct of_flow_entry *e;
	int created;

	CHECK(ft != NULL);
	if (ft == NULL)
		return;
	for (uint32_t i = 0; i < CAPACITY; i++) {
		e = insert(ft, i, &created);
		CHECK(e != NULL && created == 1 && e == &ft->entries[i]);
	}
	CHECK_EQ(ft->n_active, (uint64_t)CAPACITY);
	CHECK(ft->buckets[0].overflow == CAPACITY - 8);
	/* Full: a new flow is refused, a known one is found and not created again. */
	CHECK(insert(ft, CAPACITY, &created) == NULL && created == 0);
	CHECK(insert(ft, 5, &created) == &ft->entries[5] && created == 0);
	for (uint32_t i = 0; i < CAPACITY; i++)
		CHECK(find(ft, i) == &ft->entries[i]);
	CHECK(find(ft, CAPACITY) == NULL);

	/* Every third flow goes, wherever its slot is in the run. */
	for (uint32_t i = 0; i < CAPACITY; i += 3)
		of_flow_remove(ft, &ft->entries[i]);
	for (uint32_t i = 0; i < CAPACITY; i++)
		CHECK(find(ft, i) == (i % 3 == 0 ? NULL : &ft->entries[i]));
	/* New flows take the freed entries, first freed first. */
	for (uint32_t i = 0; i < CAPACITY; i += 3) {
		e = insert(ft, CAPACITY + i, &created);
		CHECK(e == &ft->entries[i] && created == 1);
	}
	for (uint32_t i = 0; i < CAPACITY; i++)
		CHECK(find(ft, i % 3 == 0 ? CAPACITY + i : i) == &ft->entries[i]);
	/* Emptied, the index is as new: nothing overflows any more. */
	for (uint32_t i = 0; i < CAPACITY; i++)
		of_flow_remove(ft, &ft->entries[i]);
	CHECK_EQ(ft->n_active, (uint64_t)0);
	for (uint32_t b = 0; b <= ft->bucket_mask; b++)
		CHECK(ft->buckets[b].overflow == 0);
	of_flow_table_free(ft);
}

static struct of_flow_entry *
lookup_one(struct of_flow_table *ft, const struct of_flow_key *k, uint32_t h)
{
	struct of_flow_entry *e;

	of_flow_lookup_bulk(ft, &k, &h, 1, &e);
	return e;
}

/* The signature in the slot of entry e. */
static uint16_t
slot_signature(const struct of_flow_table *ft, const struct of_flow_entry *e)
{
	uint32_t idx = (uint32_t)(e - ft->entries);

	for (uint32_t b = 0; b <= ft->bucket_mask; b++)
		for (unsigned s = 0; s < OF_FLOW_BUCKET_SLOTS; s++)
			if (ft->buckets[b].sig[s] != 0 && ft->buckets[b].entry[s] == idx)
				return ft->buckets[b].sig[s];
	return 0;
}

/*
 * Flows of one bucket in one worker's table (2 or 4 workers, handoff.h)
 * differ in the signature as much as 16 bits allow: each of 16 hash bits
 * that keep the bucket and the owner changes it. (Bits 16-31 with bit 16
 * forced to 1 left 14 with 2 workers, 13 with 4.)
 */
static void
test_signature_bits_are_neither_the_buckets_nor_the_owners(void)
{
	struct of_flow_table *ft = of_flow_table_create("test_sig", 65536, 0);
	const uint32_t base = 0x5a5a5a5a;
	int created;

	CHECK(ft != NULL);
	if (ft == NULL)
		return;
	for (unsigned workers = 2; workers <= 4; workers *= 2) {
		struct of_flow_key k = key_of(0);
		struct of_flow_entry *e0 = of_flow_insert(ft, &k, base, &created);
		uint16_t base_sig = slot_signature(ft, e0);
		unsigned telling = 0;

		for (unsigned bit = 0; bit < 32; bit++) {
			uint32_t h = base ^ (1u << bit);
			struct of_flow_entry *e;

			if ((h & ft->bucket_mask) != (base & ft->bucket_mask) ||
			    of_flow_owner(h, workers) != of_flow_owner(base, workers))
				continue;
			k = key_of(bit + 1);
			e = of_flow_insert(ft, &k, h, &created);
			CHECK(e != NULL && created);
			if (e == NULL)
				continue;
			telling += slot_signature(ft, e) != base_sig;
			of_flow_remove(ft, e);
		}
		CHECK_EQ(telling, 16);
		of_flow_remove(ft, e0);
	}
	of_flow_table_free(ft);
}

/* Each bucket's overflow is the number of flows whose slot lies past it in their run. */
static void
check_overflow_counts(const struct of_flow_table *ft)
{
	uint32_t passing[CAPACITY / 4] = { 0 };

	for (uint32_t b = 0; b <= ft->bucket_mask; b++)
		for (unsigned s = 0; s < OF_FLOW_BUCKET_SLOTS; s++) {
			if (ft->buckets[b].sig[s] == 0)
				continue;
			for (uint32_t x = ft->entries[ft->buckets[b].entry[s]].hash & ft->bucket_mask; x != b;
			     x = (x + 1) & ft->bucket_mask)
				passing[x]++;
		}
	for (uint32_t b = 0; b <= ft->bucket_mask; b++)
		CHECK_EQ(ft->buckets[b].overflow, passing[b]);
}

#define MODEL_KEYS 256

/*
 * Random inserts (of new flows and known ones), lookups and removals on a
 * small table agree at every step with a plain list of the flows, full
 * table included. Half the flows crowd the last three buckets with a few
 * signatures, so runs wrap around to bucket 0 and signatures collide.
 */
static void
test_random_operations_agree_with_a_list(void)
{
	struct of_flow_table *ft = of_flow_table_create("test_model", CAPACITY, 0);
	struct of_flow_entry *held[MODEL_KEYS] = { NULL };
	uint32_t hashes[MODEL_KEYS];
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	unsigned n_held = 0;
	int failures = check_failures;

	CHECK(ft != NULL && ft->bucket_mask + 1 == CAPACITY / 4);
	if (ft == NULL)
		return;
	for (uint32_t i = 0; i < MODEL_KEYS; i++) {
		uint64_t r = next_random(&rng);

		hashes[i] = i % 2 ? (uint32_t)r :
			    (ft->bucket_mask - (uint32_t)(r % 3)) | (uint32_t)((r >> 32) % 4) << ft->sig_shift;
	}
	for (unsigned step = 0; step < 200000 && check_failures == failures; step++) {
		uint64_t r = next_random(&rng);
		uint32_t i = (uint32_t)(r % MODEL_KEYS);
		struct of_flow_key k = key_of(i);
		struct of_flow_entry *e;
		int created;

		switch ((r >> 32) % 3) {
		case 0:
			e = of_flow_insert(ft, &k, hashes[i], &created);
			if (held[i] != NULL) {
				CHECK(e == held[i] && !created);
			} else if (n_held == CAPACITY) {
				CHECK(e == NULL && !created);
			} else {
				CHECK(e != NULL && created && memcmp(&e->key, &k, sizeof(k)) == 0);
				held[i] = e;
				n_held++;
			}
			break;
		case 1:
			CHECK(lookup_one(ft, &k, hashes[i]) == held[i]);
			break;
		default:
			if (held[i] != NULL) {
				of_flow_remove(ft, held[i]);
				held[i] = NULL;
				n_held--;
			}
		}
		CHECK_EQ(ft->n_active, n_held);
		CHECK_EQ(ft->n_free + n_held, CAPACITY);
		if (step % 512 == 0) {
			check_overflow_counts(ft);
			for (uint32_t j = 0; j < MODEL_KEYS; j++) {
				k = key_of(j);
				CHECK(lookup_one(ft, &k, hashes[j]) == held[j]);
			}
		}
	}
	for (uint32_t i = 0; i < MODEL_KEYS; i++)
		if (held[i] != NULL)
			of_flow_remove(ft, held[i]);
	check_overflow_counts(ft);
	CHECK_EQ(ft->n_active, 0);
	of_flow_table_free(ft);
}

#define FILL_CAPACITY 65536u

struct fill {
	struct of_flow_table *ft;
	uint64_t secret[OF_HASH_KEY_WORDS];
	unsigned workers;		/* the table is worker 0's of this many */
	uint32_t next_key;
	uint64_t rng;
	uint32_t refused;
	uint32_t tried;
};

/* The next distinct flow that worker 0 owns, and its hash. */
static struct of_flow_key
next_flow(struct fill *f, uint32_t *hash)
{
	struct of_flow_key k;

	do {
		k = key_of(f->next_key++);
		*hash = of_flow_hash(&k, f->secret);
	} while (of_flow_owner(*hash, f->workers) != 0);
	return k;
}

static void
fill_to(struct fill *f, uint32_t flows)
{
	while (f->ft->n_active < flows) {
		uint32_t h;
		struct of_flow_key k = next_flow(f, &h);
		int created;

		f->tried++;
		if (of_flow_insert(f->ft, &k, h, &created) == NULL)
			f->refused++;
	}
}

/*
 * Prints what a lookup costs at the table's fill: the flows outside their
 * home bucket, the buckets a hit reads, and the buckets and other flows'
 * entries (signature matches) a miss reads, as of_flow_lookup_bulk does.
 * Returns the buckets a hit reads, on average.
 */
static double
report_fill(struct fill *f, const char *what)
{
	const struct of_flow_table *ft = f->ft;
	uint64_t spilled = 0, hit_buckets = 0, miss_buckets = 0, miss_entries = 0, longest = 0;
	const unsigned misses = 1u << 18;

	for (uint32_t b = 0; b <= ft->bucket_mask; b++)
		for (unsigned s = 0; s < OF_FLOW_BUCKET_SLOTS; s++) {
			uint32_t past;

			if (ft->buckets[b].sig[s] == 0)
				continue;
			past = (b - ft->entries[ft->buckets[b].entry[s]].hash) & ft->bucket_mask;
			spilled += past != 0;
			hit_buckets += 1 + past;
			longest = RTE_MAX(longest, (uint64_t)past);
		}
	for (unsigned i = 0; i < misses; i++) {
		uint32_t h;

		do
			h = (uint32_t)next_random(&f->rng);
		while (of_flow_owner(h, f->workers) != 0);
		for (uint32_t b = h & ft->bucket_mask;; b = (b + 1) & ft->bucket_mask) {
			uint16_t sig = (uint16_t)(h >> ft->sig_shift);

			sig |= sig == 0;
			miss_buckets++;
			for (unsigned s = 0; s < OF_FLOW_BUCKET_SLOTS; s++)
				miss_entries += ft->buckets[b].sig[s] == sig;
			if (ft->buckets[b].overflow == 0)
				break;
		}
	}
	printf("  %s, %u worker%s: %lu flows, %u of %u inserts refused, %.2f%% of flows outside their home bucket "
	       "(at most %lu buckets past it); a hit reads %.4f buckets, a miss %.4f buckets and %.5f entries\n",
	       what, f->workers, f->workers > 1 ? "s' first" : "", (unsigned long)ft->n_active, f->refused, f->tried,
	       100.0 * (double)spilled / (double)ft->n_active, (unsigned long)longest,
	       (double)hit_buckets / (double)ft->n_active, (double)miss_buckets / misses,
	       (double)miss_entries / misses);
	return (double)hit_buckets / (double)ft->n_active;
}

/*
 * A table of 65536 flows filled with keyed hashes of distinct flows, then
 * churned at 90% (a flow removed, a new one inserted, ten times the
 * capacity over): no insert is refused while an entry is free, the next one
 * is, every flow is found, and a hit reads barely more than one bucket.
 */
static void
test_filling_refuses_nothing_until_full(void)
{
	static const unsigned percents[] = { 50, 80, 90, 95, 100 };

	for (unsigned workers = 1; workers <= 2; workers++) {
		struct fill f = { .workers = workers, .rng = 0x2545f4914f6cdd1dull };
		struct of_flow_entry **held;
		uint32_t n_held;
		int created;

		f.ft = of_flow_table_create("test_fill", FILL_CAPACITY, 0);
		CHECK(f.ft != NULL);
		if (f.ft == NULL)
			return;
		for (unsigned i = 0; i < OF_HASH_KEY_WORDS; i++)
			f.secret[i] = next_random(&f.rng);
		f.secret[OF_HASH_KEY_WORDS - 1] |= 1;
		for (unsigned p = 0; p < RTE_DIM(percents); p++) {
			char what[32];
			double hit;

			fill_to(&f, (uint32_t)((uint64_t)FILL_CAPACITY * percents[p] / 100));
			snprintf(what, sizeof(what), "%u%% full", percents[p]);
			hit = report_fill(&f, what);
			CHECK_EQ(f.refused, 0);
			CHECK(hit < 1.1);
		}
		{
			uint32_t h;
			struct of_flow_key k = next_flow(&f, &h);

			CHECK(of_flow_insert(f.ft, &k, h, &created) == NULL && !created);
		}
		/* Every flow is found; then churn at 90%. */
		held = malloc(FILL_CAPACITY * sizeof(*held));
		CHECK(held != NULL);
		if (held == NULL)
			return;
		n_held = 0;
		for (uint32_t i = 0; i < FILL_CAPACITY; i++) {
			struct of_flow_entry *e = &f.ft->entries[i];

			CHECK(lookup_one(f.ft, &e->key, e->hash) == e);
			held[n_held++] = e;
		}
		for (uint32_t round = 0; round < 11 * FILL_CAPACITY; round++) {
			uint32_t pick = (uint32_t)(next_random(&f.rng) % n_held);

			of_flow_remove(f.ft, held[pick]);
			held[pick] = held[--n_held];
			if (round < FILL_CAPACITY / 10)
				continue;	/* down to 90% first */
			{
				uint32_t h;
				struct of_flow_key k = next_flow(&f, &h);
				struct of_flow_entry *e = of_flow_insert(f.ft, &k, h, &created);

				f.tried++;
				f.refused += e == NULL;
				CHECK(e != NULL && created);
				if (e != NULL)
					held[n_held++] = e;
			}
		}
		CHECK(report_fill(&f, "90% full after churn") < 1.1);
		CHECK_EQ(f.refused, 0);
		for (uint32_t i = 0; i < n_held; i++)
			CHECK(lookup_one(f.ft, &held[i]->key, held[i]->hash) == held[i]);
		free(held);
		of_flow_table_free(f.ft);
	}
}

RUN_TESTS(
	TEST_ENTRY(test_eal),
	TEST_ENTRY(test_crowded_bucket_spills_and_removes),
	TEST_ENTRY(test_signature_bits_are_neither_the_buckets_nor_the_owners),
	TEST_ENTRY(test_random_operations_agree_with_a_list),
	TEST_ENTRY(test_filling_refuses_nothing_until_full),
)
