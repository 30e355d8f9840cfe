/*
 * Prints, as a Markdown table, the share of flows that change member when
 * one of N members is removed and then re-added: resilient bucket tables
 * (B = 4096) against plain hash % n, on 100,000 seeded flow hashes.
 * Build: gcc -std=gnu11 -O2 -Wall -Wextra -Werror -Icsrc \
 *            csrc/tests/disruption.c csrc/resilient.c -o /tmp/disruption
 */
#include <stdio.h>
#include <stdlib.h>

#include "resilient.h"

#define N_BUCKETS	4096
#define N_FLOWS		100000

/* xorshift64*, fixed seed: the table is the same on every run. */
static uint32_t
rng_next(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return (uint32_t)((*state * UINT64_C(2685821657736338717)) >> 32);
}

static struct of_resilient *
build(const struct of_resilient *prev, const uint16_t *ids, uint16_t n)
{
	struct of_resilient *r = of_resilient_build(N_BUCKETS, prev, ids, n);

	if (r == NULL) {
		perror("of_resilient_build");
		exit(1);
	}
	return r;
}

static double
moved_resilient(const struct of_resilient *before, const struct of_resilient *after,
	const uint32_t *hashes)
{
	unsigned moved = 0;

	for (unsigned f = 0; f < N_FLOWS; f++)
		moved += of_resilient_pick(before, hashes[f]) != of_resilient_pick(after, hashes[f]);
	return (double)moved / N_FLOWS;
}

/* Members 0..n-1 at positions 0..n-1, so hash % n names the member. */
static double
moved_modulo(uint32_t n_before, uint32_t n_after, const uint32_t *hashes)
{
	unsigned moved = 0;

	for (unsigned f = 0; f < N_FLOWS; f++)
		moved += hashes[f] % n_before != hashes[f] % n_after;
	return (double)moved / N_FLOWS;
}

int
main(void)
{
	static uint32_t hashes[N_FLOWS];
	static const uint16_t ids[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
	uint64_t seed = 0x5eed0001;

	for (unsigned f = 0; f < N_FLOWS; f++)
		hashes[f] = rng_next(&seed);
	printf("| N | moved, member removed | ideal 1/N | moved, member re-added | ideal 1/N "
		"| hash %% n, removed | hash %% n, re-added |\n");
	printf("|--:|--:|--:|--:|--:|--:|--:|\n");
	for (uint16_t n = 2; n <= 16; n *= 2) {
		/* the highest id leaves: for hash % n the kindest case, as
		 * every other member keeps its position */
		struct of_resilient *full = build(NULL, ids, n);
		struct of_resilient *less = build(full, ids, (uint16_t)(n - 1));
		struct of_resilient *again = build(less, ids, n);

		printf("| %u | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f |\n", n,
			moved_resilient(full, less, hashes), 1.0 / n,
			moved_resilient(less, again, hashes), 1.0 / n,
			moved_modulo(n, n - 1u, hashes), moved_modulo(n - 1u, n, hashes));
		of_resilient_free(full);
		of_resilient_free(less);
		of_resilient_free(again);
	}
	printf("\nB = %u buckets, %u seeded flow hashes; a flow moves when its member changes.\n",
		N_BUCKETS, N_FLOWS);
	return 0;
}
