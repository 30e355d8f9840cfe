/*
 * The flow table's index (flow.c): flows that share a home bucket spill
 * into the buckets after it and are still found; removing flows anywhere in
 * such a run keeps every other flow findable; entries are reused first
 * freed first; a full table refuses a new flow and still finds the old.
 */
#define _GNU_SOURCE	/* nftw (runtime_dir.h) */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>

#include "check.h"
#include "flow.h"
#include "runtime_dir.h"

#define CAPACITY 64	/* 32 buckets of 8 slots */

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
crowded_hash(uint32_t i)
{
	return (i / 2) << 16;
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
	uint32_t h = crowded_hash(i);
	struct of_flow_entry *e;

	of_flow_lookup_bulk(ft, &kp, &h, 1, &e);
	return e;
}

static struct of_flow_entry *
insert(struct of_flow_table *ft, uint32_t i, int *created)
{
	struct of_flow_key k = key_of(i);

	return of_flow_insert(ft, &k, crowded_hash(i), created);
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

RUN_TESTS(
	TEST_ENTRY(test_eal),
	TEST_ENTRY(test_crowded_bucket_spills_and_removes),
)
