/*
 * The per-lcore flow table. Each worker owns one: RSS keeps a flow on one
 * queue, hence one lcore, so inserts, lookups and expiry need no lock and no
 * atomic. The control thread only reads entries (for dumps) and tolerates
 * a torn view of a flow that is changing under it.
 */
#ifndef OF_FLOW_H
#define OF_FLOW_H

#include <stddef.h>
#include <stdint.h>

#include <rte_common.h>

#include "flow_key.h"
#include "wire.h"

struct of_lcore;
struct rte_hash;

/* Where a flow is pinned, and the headers that take it there. */
struct of_path {
	uint16_t tep;			/* TEP id, 0 for V2P */
	uint16_t nh;			/* nexthop id */
	uint32_t tep_gen;		/* generations when pinned: a mismatch */
	uint32_t nh_gen;		/* means the member went down or changed */
	uint32_t route_epoch;		/* the tables' route epoch when resolved */
	uint16_t uplink;		/* port index */
	uint8_t inner_dst_mac[6];
	uint8_t outer[OF_OUTER_HDR_LEN];	/* lengths and checksum filled per packet */
};

/*
 * Laid out for the packet path: what every packet reads and writes (state,
 * path, outer header) fills the first two cache lines; the key, needed only
 * to remove or dump the flow, comes after.
 */
struct of_flow_entry {
	uint64_t last_tsc;
	uint64_t packets;
	uint64_t bytes;
	uint32_t hash;
	uint8_t in_use;
	uint8_t closing;		/* TCP FIN or RST seen: short timeout */
	struct of_path path;
	struct of_flow_key key;
} __rte_cache_aligned;

_Static_assert(offsetof(struct of_flow_entry, key) <= 2 * RTE_CACHE_LINE_SIZE,
	       "the per-packet part of a flow entry fits two cache lines");

struct of_flow_table {
	struct rte_hash *hash;
	uint32_t n_entries;		/* size of entries[] */
	uint64_t n_active;
	struct of_flow_entry *entries;	/* indexed by rte_hash key position */
};

struct of_flow_table *of_flow_table_create(const char *name, uint32_t capacity, int socket);
void of_flow_table_free(struct of_flow_table *ft);

/* Bulk lookup; entries[i] is NULL on a miss. */
void of_flow_lookup_bulk(struct of_flow_table *ft, const struct of_flow_key **keys,
			 const uint32_t *hashes, uint16_t n, struct of_flow_entry **entries);
/*
 * The entry for key, inserted if new (*created = 1); NULL when the table is
 * full. Two packets of a new flow in one burst both miss the bulk lookup:
 * the second finds the entry the first created.
 */
struct of_flow_entry *of_flow_insert(struct of_flow_table *ft, const struct of_flow_key *key, uint32_t hash,
				     int *created);
void of_flow_remove(struct of_flow_table *ft, struct of_flow_entry *e);

/* How long an idle flow lives, in TSC ticks (UINT64_MAX: for ever), and the sweep's pace. */
struct of_flow_timeouts {
	uint64_t tcp_idle;
	uint64_t tcp_closed;		/* after FIN or RST */
	uint64_t udp_idle;
	uint64_t icmp_idle;
	uint64_t sweep_period;		/* one pass of the expiry sweep over a table */
};

#define OF_SWEEP_MAX 256		/* entries one sweep checks at most */
/*
 * Worker, once per loop iteration: expire the idle flows of lc's table among
 * the entries that the time since the last sweep stands for, counting each
 * (flows_expired) and taking it off its path's flow counts.
 */
void of_flow_sweep(struct of_lcore *lc, const struct of_flow_timeouts *to);

#endif
