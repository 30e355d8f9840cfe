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

struct of_lcore;

/*
 * Where a flow is pinned: the members, and what of its outer headers is the
 * flow's own. The rest is its uplink's template (struct of_port's outer),
 * so a path and the flow's counts fill one cache line.
 */
struct of_path {
	uint16_t tep;			/* TEP id, 0 for V2P */
	uint16_t nh;			/* nexthop id */
	uint32_t tep_gen;		/* generations when pinned: a mismatch */
	uint32_t nh_gen;		/* means the member went down or changed */
	uint32_t route_epoch;		/* the tables' route epoch when resolved */
	uint8_t dst[16];		/* outer IPv6 destination: the TEP, or the peer sled (V2P) */
	uint16_t uplink;		/* port index */
	uint8_t nh_mac[6];		/* outer Ethernet destination */
	uint16_t udp_sport;		/* outer UDP source port, from the flow hash */
	union {
		uint8_t inner_dst_mac[6];	/* V2P: the peer guest's MAC; the VNI is the flow's */
		uint8_t vni[4];			/* to a TEP: its VNI and Geneve's reserved 0, as sent; the inner
						 * destination is boundary services */
	};
};

/*
 * Laid out for the packet path: the first cache line holds what a lookup
 * compares (the key) and what every packet writes (last_tsc), so a hit
 * that finds the key has fetched it; the path and the flow's counts fill
 * the second.
 */
struct of_flow_entry {
	struct of_flow_key key;
	uint64_t last_tsc;
	uint32_t hash;
	uint8_t in_use;
	uint8_t closing;		/* TCP FIN or RST seen: short timeout */
	struct of_path path;
	uint64_t packets;
	uint64_t bytes;
} __rte_cache_aligned;

_Static_assert(offsetof(struct of_flow_entry, path) == RTE_CACHE_LINE_SIZE &&
	       sizeof(struct of_flow_entry) == 2 * RTE_CACHE_LINE_SIZE,
	       "a flow entry's key and state fill its first cache line, its path and counts the second");

/*
 * The index over entries[]: buckets of one cache line, eight slots each,
 * a slot a 16-bit signature of the flow hash and an entry number. A flow
 * lives in the bucket its hash names, or, when that one is full, in one of
 * the buckets after it; `overflow` counts the flows that went past a bucket,
 * so a lookup stops at the first bucket none went past. There are twice as
 * many slots as entries: an insert finds a slot whenever an entry is free,
 * and a lookup reads one bucket almost always (test_flow.c measures it).
 *
 * Which bits of the 32-bit flow hash (flow_hash.h) each choice takes, with
 * b = log2 of the buckets (capacity / 4 rounded up to a power of two: 14 at
 * 65536 flows) and B the bucket tables' size (4096: 12):
 *   home bucket      bits 0 .. b-1
 *   signature        bits b .. b+15        (14-29 at 65536 flows)
 *   worker owner     the top bits, (hash * workers) >> 32: bit 31 for 2
 *                    workers, 30-31 for 4 (handoff.h)
 *   TEP bucket       bits 0 .. log2 B - 1 (resilient.h)
 *   nexthop bucket   bits 16 .. 16 + log2 B - 1 (tables.h's rotation; persisted)
 *   flow label       bits 0-19; UDP source port: the top bits (outbound.c)
 * The signature tells apart flows of one bucket in one worker's table, so it
 * must not take the bits that are the same for all of them: the bucket's and
 * the owner's. It may share bits with the TEP and nexthop buckets, the flow
 * label and the port, which split no table. All 16 bits count up to
 * b = 15 (131072 flows a worker) with 2 workers and b = 14 with 4; beyond,
 * each doubling of the table takes one bit from the signature.
 */
#define OF_FLOW_BUCKET_SLOTS 8

struct of_flow_bucket {
	uint16_t sig[OF_FLOW_BUCKET_SLOTS];	/* 0: slot free */
	uint32_t entry[OF_FLOW_BUCKET_SLOTS];
	uint32_t overflow;
} __rte_cache_aligned;

/* Only the owning worker reads or writes the index; the control thread reads entries[] alone. */
struct of_flow_table {
	struct of_flow_bucket *buckets;
	uint32_t bucket_mask;		/* number of buckets - 1 */
	uint32_t n_entries;		/* size of entries[]: the capacity */
	uint32_t sig_shift;		/* log2 of the number of buckets: where the signature starts */
	uint64_t n_active;
	struct of_flow_entry *entries;
	/* Free entry numbers, first freed first reused: a FIFO of n_entries. */
	uint32_t *free;
	uint32_t free_head;		/* next to reuse */
	uint32_t n_free;
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
