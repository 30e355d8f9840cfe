/*
 * Path tracing (trace.c). The control thread arms a trace; the outbound loop,
 * for the next N guest frames that match (inner destination, and optionally
 * protocol and destination port), records what it decided, on a ring the
 * control side reads.
 *
 * Nothing is paid while no trace is armed but one load and one predictable
 * branch per burst: the burst then runs the copy of the outbound loop that
 * has no trace code at all (outbound.c). An armed trace runs the other copy,
 * which hands each decided frame to of_trace_decision; that checks the match
 * and looks the decision up again in the tables (V2P or V2B, set, buckets)
 * to explain it.
 */
#ifndef OF_TRACE_H
#define OF_TRACE_H

#include <stdint.h>

#include "dp_types.h"

struct of_flow_key;
struct of_lcore;
struct of_path;
struct of_tables;

/*
 * The outbound decisions for the next `count` guest frames whose inner
 * destination is dst (16 bytes, IPv4 v4-mapped), of protocol proto (0: any) to port dst_port
 * (0: any). One trace at a time; records wait on a ring of OF_TRACE_MAX until read.
 */
#define OF_TRACE_MAX 1024
#define OF_TRACE_NONE 0xFFFFFFFFu

enum of_trace_flow { OF_TRACE_HIT = 0, OF_TRACE_MISS = 1, OF_TRACE_TABLE_FULL = 2 };
enum of_trace_table { OF_TRACE_NO_MATCH = 0, OF_TRACE_V2P = 1, OF_TRACE_V2B = 2 };
enum of_trace_why {
	OF_TRACE_NEW = 0,		/* a new flow, pinned to its buckets' members */
	OF_TRACE_PINNED = 1,		/* the flow's path, unchanged */
	OF_TRACE_MIGRATED = 2,		/* its member went down: re-pinned (from_*) */
	OF_TRACE_REBALANCED = 3,	/* idle, moved to its bucket's current member (from_*) */
	OF_TRACE_REROUTED = 4,		/* a routing change gave it another path (from_*) */
	OF_TRACE_STATELESS = 5,		/* flow table full: the buckets' members, no entry */
	OF_TRACE_DROPPED = 6,		/* drop names the reason */
};

struct of_trace_match {
	uint8_t dst[16];
	uint8_t proto;
	uint8_t pad;
	uint16_t dst_port;
};

struct of_trace_record {
	uint64_t tsc;
	uint32_t lcore;
	uint32_t hash;
	uint32_t vni;
	uint8_t proto;
	uint8_t flow;			/* enum of_trace_flow */
	uint8_t table;			/* enum of_trace_table: what the destination matched */
	uint8_t why;			/* enum of_trace_why */
	uint8_t src[16], dst[16];
	uint16_t src_port, dst_port;
	int32_t drop;			/* counter index of the drop reason; -1: sent */
	uint32_t tep_set, tep_bucket;	/* V2B: the set and the flow's bucket in it (else OF_TRACE_NONE) */
	uint32_t nh_group, nh_bucket;	/* the route's nexthop group and the flow's bucket in it */
	uint16_t bucket_tep;		/* the members those buckets name now (0xFFFF: none) */
	uint16_t bucket_nexthop;
	uint16_t tep, nexthop, uplink;	/* the path the frame took (tep 0: V2P) */
	uint16_t from_tep, from_nexthop;	/* the path it left, when it moved (else 0xFFFF) */
	uint8_t outer_dst[16];		/* TEP or peer sled */
	uint16_t pad;
};
int of_dp_trace_arm(struct of_dp *dp, const struct of_trace_match *match, uint32_t count);
/* Stops the trace; records not read are dropped. */
void of_dp_trace_disarm(struct of_dp *dp);
/* Up to max records, oldest first; the count. *armed: whether frames remain to be traced. */
int of_dp_trace_read(struct of_dp *dp, struct of_trace_record *out, unsigned max, int *armed);

/* The traced copy of the outbound loop, for a frame whose decision is made: if it matches and
 * frames remain to trace, explain it. `path`: the path it took (NULL when dropped for `drop`);
 * `from`: the path it left when it moved. */
void of_trace_decision(struct of_dp *dp, struct of_lcore *lc, const struct of_tables *t,
		       const struct of_flow_key *key, uint32_t hash, enum of_trace_flow flow, enum of_trace_why why,
		       int drop, const struct of_path *path, const struct of_path *from);
/* Life cycle: the trace's ring, at destroy. */
void of_trace_free(struct of_dp *dp);

#endif
