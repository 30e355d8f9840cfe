/*
 * The forwarding tables: one immutable snapshot, built by the control
 * thread from the complete desired state, published by pointer, and freed
 * after an RCU grace period. Workers read one snapshot per loop iteration.
 *
 * Liveness lives in the snapshot too: each TEP and nexthop carries a
 * generation, 0 while down. A flow remembers the generations it was pinned
 * with; a mismatch (two loads per packet) re-pins it.
 *
 * Routing lives in it as a route epoch, bumped by a commit that changes the
 * V2B prefixes, the V2P entries or the underlay routes, and by nothing else.
 * A flow remembers the epoch it was resolved at; a mismatch (one more load)
 * resolves it again, so a new, more specific answer reaches busy flows.
 */
#ifndef OF_TABLES_H
#define OF_TABLES_H

#include <stdint.h>
#include <string.h>

#include "dp_types.h"
#include "prefix.h"
#include "resilient.h"

struct rte_hash;

struct of_tep {
	uint8_t addr[16];
	uint32_t vni;
	uint32_t gen;			/* 0: down or absent */
};

struct of_nexthop {
	uint16_t uplink;		/* port index */
	uint8_t mac[6];
	uint32_t gen;			/* 0: down or absent */
};

struct of_guest {
	uint32_t vni;
	uint8_t valid;
	uint8_t mac[6];
	uint8_t gw_mac[6];
	struct of_guest_net net;	/* addresses and what DHCP and RA hand out (guest.h) */
};

struct of_v2p {
	uint8_t underlay[16];
	uint8_t mac[6];
};

struct of_v2p_key {
	uint32_t vni;
	uint8_t ip[16];
};

struct of_v2p_entry {
	struct of_v2p_key key;
	struct of_v2p val;
};

/*
 * The lookup structures of a snapshot are costly to create (an rte_hash takes
 * a memzone), so consecutive snapshots share one while its input is
 * unchanged: a member going up or down rebuilds only the bucket tables. refs
 * counts the snapshots holding it (control thread only); each keeps its input
 * to compare with the next commit's. The prefix tables are the data plane's
 * own (prefix.h), used in turn.
 */
struct of_v2p_table {
	uint32_t refs;
	struct rte_hash *hash;		/* (vni, inner ip) -> index into vals */
	struct of_v2p *vals;
	uint32_t n;
	struct of_v2p_entry entries[];
};

/*
 * The guest index: (VNI, inner MAC) -> guest port, read for every inbound
 * packet. At most OF_MAX_PORTS guests in twice as many slots, open
 * addressing with linear probing: a lookup is a multiply, a load and two
 * compares, and always ends on an empty slot. Built with each snapshot.
 */
#define OF_GUEST_SLOTS (2 * OF_MAX_PORTS)

struct of_guest_slot {
	uint64_t mac;			/* of_mac_word */
	uint32_t vni;
	uint16_t port;			/* OF_NO_ID: empty */
};

struct of_tables {
	struct of_prefix_table *v2b;	/* inner dst (v4-mapped for IPv4) -> TEP set */
	struct of_prefix_table *routes;	/* underlay dst -> nexthop group */
	struct of_v2p_table *v2p;
	uint32_t route_epoch;		/* changes with v2b, routes or v2p; read per packet */
	struct of_guest guests[OF_MAX_PORTS];
	struct of_guest_slot guest_index[OF_GUEST_SLOTS];
	struct of_resilient *tep_sets[OF_MAX_GROUPS];
	struct of_resilient *nh_groups[OF_MAX_GROUPS];
	struct of_tep teps[OF_MAX_TEPS];
	struct of_nexthop nhs[OF_MAX_NEXTHOPS];
	uint16_t n_tep_addrs;		/* strict underlay: every TEP's address, sorted, once */
	uint8_t tep_addrs[OF_MAX_TEPS][16];
	uint32_t id;			/* names of the DPDK objects */
};

void of_tables_free(struct of_tables *t);
/* The EAL heap bytes an empty V2P table for n entries takes (allocated, measured, freed); 0 if it does not fit. */
uint64_t of_v2p_table_probe(uint32_t id, uint32_t n);

/* The nexthop bucket is chosen from the flow hash rotated, so that TEP and nexthop choices are independent. */
static inline uint32_t
of_nexthop_hash(uint32_t hash)
{
	return (hash << 16) | (hash >> 16);
}

/* A MAC's six bytes as one word, the top two bytes zero. */
static inline uint64_t
of_mac_word(const uint8_t mac[6])
{
	uint64_t w = 0;

	memcpy(&w, mac, 6);
	return w;
}

static inline uint32_t
of_guest_slot_of(uint32_t vni, uint64_t mac)
{
	/* The VNI's low 16 bits above the MAC's 48, its high 8 over the MAC's first byte; then
	 * multiply-shift, whose top bits depend on every bit of that word. */
	uint64_t w = mac ^ (uint64_t)vni << 48 ^ vni >> 16;

	return (uint32_t)((w * UINT64_C(0x9e3779b97f4a7c15)) >> 58);
}

/* The guest port of (vni, mac), or OF_NO_ID. */
static inline uint16_t
of_guest_lookup(const struct of_tables *t, uint32_t vni, uint64_t mac)
{
	for (uint32_t i = of_guest_slot_of(vni, mac);; i = (i + 1) % OF_GUEST_SLOTS) {
		const struct of_guest_slot *s = &t->guest_index[i];

		if (s->port == OF_NO_ID || (s->mac == mac && s->vni == vni))
			return s->port;
	}
}

_Static_assert(OF_GUEST_SLOTS == 1 << 6, "of_guest_slot_of keeps the product's top 6 bits");

#endif
