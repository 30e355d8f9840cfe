/*
 * rte_lpm6 against rte_fib6 for the prefix tables (V2B, underlay routes): EAL heap bytes a
 * table takes, the time to create and fill it, and cycles per address of a bulk lookup of 32
 * (the fastest of 200 passes over 4,096 addresses, each in a /64 of the table).
 *
 *   gcc -O2 -Icsrc $(pkg-config --cflags libdpdk) bench/prefix_tables.c -o /tmp/prefix_tables \
 *       $(pkg-config --libs libdpdk) && /tmp/prefix_tables --no-huge -m 1024 --no-pci --no-shconf \
 *       --file-prefix pt$$ --log-level=lib.eal:error
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_fib6.h>
#include <rte_lpm6.h>
#include <rte_version.h>
#include <x86intrin.h>

#include "compat.h"
#include "heap.h"

/* rte_lpm6 is no longer in csrc/compat.h: its 24.11 address type here. */
#if RTE_VERSION >= RTE_VERSION_NUM(24, 11, 0, 0)
#define LPM6_ADDR(p) ((struct rte_ipv6_addr *)(void *)(p))
#else
#define LPM6_ADDR(p) ((uint8_t *)(p))
#endif

#define N_ADDRS 4096
#define BURST 32

enum kind { LPM6, FIB6_TRIE_2B, FIB6_TRIE_4B, FIB6_RIB };
static const char *kind_names[] = { "rte_lpm6", "rte_fib6 trie 2B", "rte_fib6 trie 4B", "rte_fib6 dummy (rib)" };

static uint8_t prefixes[1 << 16][16];
static uint8_t addrs[N_ADDRS][16];

struct table {
	struct rte_lpm6 *lpm;
	struct rte_fib6 *fib;
};

static int
build(enum kind k, unsigned n, struct table *t)
{
	static unsigned id;
	char name[32];

	snprintf(name, sizeof(name), "pt%u", id++);
	memset(t, 0, sizeof(*t));
	if (k == LPM6) {
		struct rte_lpm6_config c = { .max_rules = n, .number_tbl8s = n * 14 };

		t->lpm = rte_lpm6_create(name, SOCKET_ID_ANY, &c);
		if (t->lpm == NULL)
			return -rte_errno;
		for (unsigned i = 0; i < n; i++)
			if (rte_lpm6_add(t->lpm, LPM6_ADDR(prefixes[i]), 64, i + 1) < 0)
				return -1;
		return 0;
	}
	struct rte_fib6_conf c = { .max_routes = (int)n, .default_nh = 0 };

	if (k == FIB6_RIB) {
		c.type = RTE_FIB6_DUMMY;
	} else {
		c.type = RTE_FIB6_TRIE;
		c.trie.nh_sz = k == FIB6_TRIE_2B ? RTE_FIB6_TRIE_2B : RTE_FIB6_TRIE_4B;
		c.trie.num_tbl8 = n * 6;	/* a /64 past the tbl24's 24 bits: 5 tbl8 groups */
	}
	t->fib = rte_fib6_create(name, SOCKET_ID_ANY, &c);
	if (t->fib == NULL)
		return -rte_errno;
	for (unsigned i = 0; i < n; i++)
		if (of_fib6_add(t->fib, prefixes[i], 64, i + 1) < 0)
			return -1;
	return 0;
}

static void
destroy(struct table *t)
{
	rte_lpm6_free(t->lpm);
	rte_fib6_free(t->fib);
}

static double
lookup_cycles(const struct table *t)
{
	uint64_t best = UINT64_MAX, sink = 0;

	for (unsigned r = 0; r < 200; r++) {
		uint64_t start = __rdtsc();

		for (unsigned i = 0; i < N_ADDRS; i += BURST) {
			if (t->lpm != NULL) {
				int32_t nh[BURST];

				rte_lpm6_lookup_bulk_func(t->lpm, (void *)LPM6_ADDR(addrs[i]), nh, BURST);
				sink += (uint64_t)nh[0];
			} else {
				uint64_t nh[BURST];

				rte_fib6_lookup_bulk(t->fib, OF_FIB6_ADDRS(addrs[i]), nh, BURST);
				sink += nh[0];
			}
		}
		uint64_t c = __rdtsc() - start;
		if (c < best)
			best = c;
	}
	__asm__ volatile("" : : "r"(sink));
	return (double)best / N_ADDRS;
}

int
main(int argc, char **argv)
{
	static const unsigned sizes[] = { 16, 1000, 10000 };

	if (rte_eal_init(argc, argv) < 0) {
		fprintf(stderr, "EAL: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	srand(1);
	for (unsigned i = 0; i < RTE_DIM(prefixes); i++) {
		/* fd00:<i>::/64: routes toward TEPs and sleds */
		prefixes[i][0] = 0xfd;
		prefixes[i][2] = (uint8_t)(i >> 8);
		prefixes[i][3] = (uint8_t)i;
		prefixes[i][5] = (uint8_t)(rand() & 0xff);
	}
	printf("%-22s %7s %12s %12s %10s\n", "table", "rules", "heap bytes", "build ms", "cycles/addr");
	for (unsigned s = 0; s < RTE_DIM(sizes); s++) {
		unsigned n = sizes[s];

		for (unsigned i = 0; i < N_ADDRS; i++) {
			memcpy(addrs[i], prefixes[(unsigned)rand() % n], 16);
			addrs[i][15] = (uint8_t)rand();
		}
		for (enum kind k = LPM6; k <= FIB6_RIB; k++) {
			struct table t;
			size_t before = of_heap_used();
			uint64_t start = rte_get_tsc_cycles();
			int rc = build(k, n, &t);
			double ms = (double)(rte_get_tsc_cycles() - start) * 1e3 / (double)rte_get_tsc_hz();

			if (rc != 0) {
				printf("%-22s %7u failed: %s\n", kind_names[k], n, rte_strerror(-rc));
				destroy(&t);
				continue;
			}
			printf("%-22s %7u %12zu %12.2f %10.1f\n", kind_names[k], n, of_heap_used() - before, ms,
			       lookup_cycles(&t));
			destroy(&t);
		}
	}
	rte_eal_cleanup();
	return 0;
}
