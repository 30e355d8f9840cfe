/* The prefix tables: two rte_fib6 tries per kind, refilled in turn (prefix.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_malloc.h>

#include "error.h"
#include "heap.h"
#include "prefix.h"

/*
 * V2B holds IPv4 prefixes v4-mapped beside IPv6 ones: without a barrier an
 * IPv6 prefix shorter than /96 (::/0 above all) would catch IPv4 traffic.
 * ::ffff:0:0/96 -> "no match" keeps the families apart; IPv4 prefixes are
 * longer, so they still win, and an IPv4 0.0.0.0/0 replaces the barrier.
 */
static const struct of_prefix_rule v4_barrier = {
	.prefix = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff },
	.depth = 96,
	.target = OF_FIB_NO_MATCH,
};

int
of_prefix_bank_init(struct of_prefix_bank *bank, const char *kind, unsigned instance, uint32_t capacity)
{
	size_t before = of_heap_used();

	memset(bank, 0, sizeof(*bank));
	bank->capacity = capacity;
	if (capacity == 0 || capacity > OF_PREFIX_CAPACITY_MAX) {
		of_set_error("prefix capacity %u out of range (1 to %u)", capacity, OF_PREFIX_CAPACITY_MAX);
		return -EINVAL;
	}
	bank->conf.type = RTE_FIB6_TRIE;
	bank->conf.default_nh = OF_FIB_MISS;
	bank->conf.max_routes = (int)capacity + 1;	/* and the barrier */
	bank->conf.trie.nh_sz = RTE_FIB6_TRIE_2B;
	bank->conf.trie.num_tbl8 = (capacity + 1) * OF_PREFIX_TBL8_PER_PREFIX;
	for (unsigned i = 0; i < 2; i++) {
		struct of_prefix_table *pt = &bank->tables[i];

		pt->default_target = OF_NO_ID;
		snprintf(bank->names[i], sizeof(bank->names[i]), "of%s%u_%u", kind, instance, i);
		pt->fib = rte_fib6_create(bank->names[i], SOCKET_ID_ANY, &bank->conf);
		pt->rules = rte_zmalloc(bank->names[i], capacity * sizeof(*pt->rules), 0);
		if (pt->fib == NULL || pt->rules == NULL) {
			of_set_error("cannot allocate the %s tables for %u prefixes: out of EAL memory (raise "
				     "--memory-mb or lower --prefix-capacity)", kind, capacity);
			of_prefix_bank_free(bank);
			return -ENOMEM;
		}
	}
	bank->bytes = of_heap_used() - before;
	return 0;
}

void
of_prefix_bank_free(struct of_prefix_bank *bank)
{
	for (unsigned i = 0; i < 2; i++) {
		rte_fib6_free(bank->tables[i].fib);
		rte_free(bank->tables[i].rules);
		bank->tables[i].fib = NULL;
		bank->tables[i].rules = NULL;
	}
}

/*
 * Empty a table by making its trie again in the memory it leaves: deleting prefixes one by
 * one does not give every tbl8 group back, and the next fill could run out of them.
 */
static int
rebuild(struct of_prefix_bank *bank, struct of_prefix_table *pt, const char *kind)
{
	unsigned i = (unsigned)(pt - bank->tables);

	rte_fib6_free(pt->fib);
	pt->fib = rte_fib6_create(bank->names[i], SOCKET_ID_ANY, &bank->conf);
	pt->n_rules = 0;
	pt->default_target = OF_NO_ID;
	if (pt->fib == NULL) {
		of_set_error("cannot make the %s table again: %s", kind, rte_strerror(rte_errno));
		return -ENOMEM;
	}
	return 0;
}

static int
same_rules(const struct of_prefix_table *pt, const struct of_prefix_rule *rules, uint32_t n)
{
	return pt->n_rules == n && (n == 0 || memcmp(pt->rules, rules, n * sizeof(*rules)) == 0);
}

struct of_prefix_table *
of_prefix_bank_get(struct of_prefix_bank *bank, const char *kind, struct of_prefix_table *cur,
		   const struct of_prefix_rule *rules, uint32_t n, int v4_barrier_needed)
{
	struct of_prefix_table *pt = cur == &bank->tables[0] ? &bank->tables[1] : &bank->tables[0];

	if (cur != NULL && same_rules(cur, rules, n))
		return cur;
	if (n > bank->capacity) {
		of_set_error("%u %s prefixes exceed --prefix-capacity %u", n, kind, bank->capacity);
		return NULL;
	}
	if (rebuild(bank, pt, kind) != 0)
		return NULL;
	if (v4_barrier_needed && of_fib6_add(pt->fib, v4_barrier.prefix, v4_barrier.depth, v4_barrier.target) < 0) {
		of_set_error("cannot add the IPv4 barrier to the %s table", kind);
		return NULL;
	}
	/* A rule added after the barrier with the same prefix and depth replaces it. */
	for (uint32_t i = 0; i < n; i++) {
		pt->rules[pt->n_rules++] = rules[i];
		if (rules[i].depth == 0) {
			pt->default_target = rules[i].target;
			continue;
		}
		if (of_fib6_add(pt->fib, rules[i].prefix, rules[i].depth, rules[i].target) < 0) {
			of_set_error("cannot add a prefix to the %s table: %s", kind, rte_strerror(rte_errno));
			return NULL;
		}
	}
	return pt;
}
