/*
 * The prefix tables (V2B on the inner destination, underlay routes on the TEP or sled):
 * longest-prefix match of a 16-byte address to a target (a TEP set or a nexthop group).
 *
 * Each kind has two rte_fib6 tries, made at start for --prefix-capacity prefixes and used
 * in turn: a commit that changes the prefixes rebuilds the one no snapshot uses (the
 * previous commit's grace period ended every read of it) in the same memory and publishes
 * it. So the prefix tables' memory is taken at start and known, any --prefix-capacity
 * prefixes fit (a tbl8 group for every byte past the tbl24's three), and more are refused
 * before anything is applied. rte_lpm6 would take 64 MB of tbl24
 * per table and a new table per change; a trie with 2-byte next hops takes 32 MB and looks
 * up faster (bench/prefix_tables.c; README, "Memory and capacity").
 */
#ifndef OF_PREFIX_H
#define OF_PREFIX_H

#include <stdint.h>

#include <rte_fib6.h>

#include "compat.h"
#include "dp_types.h"

/*
 * The trie's own next hops besides the targets (0..OF_MAX_GROUPS-1). Not OF_NO_ID: a 2-byte
 * next hop keeps its top bit for the trie, so 0x7FFF is the largest it can hold.
 */
#define OF_FIB_NO_MATCH 0x7FFFu	/* a prefix that means "no entry" (the IPv4 barrier) */
#define OF_FIB_MISS 0x7FFEu	/* what the trie answers where no prefix covers an address */
#define OF_PREFIX_TBL8_PER_PREFIX 13	/* a /128: a tbl8 group per byte past the tbl24's three */
/* 2-byte next hops index at most 32767 tbl8 groups; one prefix more for the IPv4 barrier. */
#define OF_PREFIX_CAPACITY_MAX (32767 / OF_PREFIX_TBL8_PER_PREFIX - 1)

struct of_prefix_rule {
	uint8_t prefix[16];
	uint8_t depth;
	uint16_t target;		/* TEP set or nexthop group; OF_FIB_NO_MATCH: no match */
};

struct of_prefix_table {
	struct rte_fib6 *fib;
	uint16_t default_target;	/* ::/0, kept beside the trie; or OF_NO_ID */
	uint32_t n_rules;
	struct of_prefix_rule *rules;	/* capacity entries: what the trie holds */
};

struct of_prefix_bank {
	uint32_t capacity;
	struct rte_fib6_conf conf;
	char names[2][32];
	uint64_t bytes;			/* EAL heap both tables take */
	struct of_prefix_table tables[2];
};

/* Two tables of `capacity` prefixes; 0, or a negative errno with a message. */
int of_prefix_bank_init(struct of_prefix_bank *bank, const char *kind, unsigned instance, uint32_t capacity);
void of_prefix_bank_free(struct of_prefix_bank *bank);
/*
 * The table holding `rules`: `cur` when it holds them already, else the other table,
 * rebuilt (cur must be the only one a snapshot may use). NULL with a message when the
 * rules do not fit; nothing a snapshot uses is touched then.
 */
struct of_prefix_table *of_prefix_bank_get(struct of_prefix_bank *bank, const char *kind,
					   struct of_prefix_table *cur, const struct of_prefix_rule *rules,
					   uint32_t n, int v4_barrier_needed);

/* Longest prefix match with the /0 entry as the fallback; 0 on a match. */
static inline int
of_prefix_match(const struct of_prefix_table *pt, const uint8_t addr[16], uint32_t *target)
{
	uint64_t nh;

	of_fib6_lookup(pt->fib, addr, &nh);
	if (nh == OF_FIB_NO_MATCH)
		return -1;
	if (nh != OF_FIB_MISS) {
		*target = (uint32_t)nh;
		return 0;
	}
	if (pt->default_target == OF_NO_ID)
		return -1;
	*target = pt->default_target;
	return 0;
}

#endif
