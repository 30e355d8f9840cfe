/*
 * Path tracing (trace.c). The control thread arms a trace; the outbound and
 * inbound loops, for the next N frames that match (inner addresses, protocol,
 * destination port, direction), record what they decided, on a ring the
 * control side reads.
 *
 * Nothing is paid while no trace is armed but one load and one predictable
 * branch per burst: the burst then runs the copy of its direction's loop that
 * has no trace code at all (outbound.c, inbound.c). An armed trace runs the
 * other copy, which checks each frame against the match (of_trace_wants) and
 * hands the matching ones, decided, to of_trace_outbound or of_trace_inbound;
 * the outbound one looks the decision up again in the tables (V2P or V2B,
 * set, buckets) to explain it.
 */
#ifndef OF_TRACE_H
#define OF_TRACE_H

#include <stdint.h>
#include <string.h>

#include "dp.h"
#include "dp_types.h"
#include "flow_key.h"

struct of_lcore;
struct of_path;
struct of_tables;

/*
 * Records wait on a ring of OF_TRACE_MAX until read; those a full ring refuses are counted
 * (of_dp_trace_lost). A trace takes from 1 to OF_TRACE_COUNT_MAX frames, so a reader that keeps
 * up may trace more than the ring holds. One trace at a time.
 */
#define OF_TRACE_MAX 1024
#define OF_TRACE_COUNT_MAX (1u << 30)
#define OF_TRACE_NONE 0xFFFFFFFFu

enum of_trace_dir { OF_TRACE_ANY = 0, OF_TRACE_OUT = 1, OF_TRACE_IN = 2 };
enum of_trace_flow {
	OF_TRACE_HIT = 0, OF_TRACE_MISS = 1, OF_TRACE_TABLE_FULL = 2,
	OF_TRACE_NO_FLOW = 3,		/* inbound: no flow state, each frame decided alone */
};
enum of_trace_table {
	OF_TRACE_NO_MATCH = 0, OF_TRACE_V2P = 1, OF_TRACE_V2B = 2,
	OF_TRACE_GUEST = 3,		/* inbound: the (VNI, inner destination MAC) of a guest port */
};
enum of_trace_why {
	OF_TRACE_NEW = 0,		/* a new flow, pinned to its buckets' members */
	OF_TRACE_PINNED = 1,		/* the flow's path, unchanged */
	OF_TRACE_MIGRATED = 2,		/* its member went down: re-pinned (from_*) */
	OF_TRACE_REBALANCED = 3,	/* idle, moved to its bucket's current member (from_*) */
	OF_TRACE_REROUTED = 4,		/* a routing change gave it another path (from_*) */
	OF_TRACE_STATELESS = 5,		/* flow table full: the buckets' members, no entry */
	OF_TRACE_DROPPED = 6,		/* drop names the reason */
	OF_TRACE_DELIVERED = 7,		/* inbound: decapsulated to the guest port `guest` */
};

/* Frames of direction dir (OF_TRACE_ANY: both) whose inner source is src (if has_src) and
 * destination dst (if has_dst), both 16 bytes (IPv4 v4-mapped), of protocol proto (0: any),
 * to port dst_port (0: any). */
struct of_trace_match {
	uint8_t src[16];
	uint8_t dst[16];
	uint8_t has_src, has_dst;
	uint8_t proto;
	uint8_t dir;			/* enum of_trace_dir */
	uint16_t dst_port;
	uint16_t pad;
};

struct of_trace_record {
	uint64_t tsc;
	uint32_t lcore;
	uint32_t hash;			/* outbound: the flow hash (inbound: 0) */
	uint32_t vni;
	uint8_t proto;
	uint8_t flow;			/* enum of_trace_flow */
	uint8_t table;			/* enum of_trace_table: what the destination matched */
	uint8_t why;			/* enum of_trace_why */
	uint8_t src[16], dst[16];	/* the inner addresses */
	uint16_t src_port, dst_port;
	int32_t drop;			/* counter index of the drop reason; -1: sent */
	uint32_t tep_set, tep_bucket;	/* V2B: the set and the flow's bucket in it (else OF_TRACE_NONE) */
	uint32_t nh_group, nh_bucket;	/* the route's nexthop group and the flow's bucket in it */
	uint16_t bucket_tep;		/* the members those buckets name now (0xFFFF: none) */
	uint16_t bucket_nexthop;
	uint16_t tep, nexthop, uplink;	/* the path the frame took (tep 0: V2P); inbound: the uplink it came in */
	uint16_t from_tep, from_nexthop;	/* the path it left, when it moved (else 0xFFFF) */
	uint16_t guest;			/* inbound: the guest port it went to (else 0xFFFF) */
	uint8_t underlay[16];		/* outbound: the TEP or peer sled it went to; inbound: the sender */
	uint8_t inner_dst_mac[6];	/* inbound: what the guest lookup was keyed on, with the VNI */
	uint8_t dir;			/* enum of_trace_dir: OUT or IN */
	uint8_t pad;
};

struct of_trace {
	struct of_trace_match match;
	int64_t remaining;		/* frames still to record; workers count it down */
	struct rte_ring *ring;		/* of struct of_trace_record, MP/SC */
	uint64_t lost;			/* records the full ring refused */
};

int of_dp_trace_arm(struct of_dp *dp, const struct of_trace_match *match, uint32_t count);
/* Stops the trace; records not read are dropped. */
void of_dp_trace_disarm(struct of_dp *dp);
/* Up to max records, oldest first; the count. *armed: whether frames remain to be traced. */
int of_dp_trace_read(struct of_dp *dp, struct of_trace_record *out, unsigned max, int *armed);
/* Records of the current (or last) trace that the full ring refused. */
uint64_t of_dp_trace_lost(const struct of_dp *dp);

/* In the traced copies only: whether a frame of direction dir with inner key `key` is one to trace. */
static inline int
of_trace_wants(const struct of_dp *dp, const struct of_flow_key *key, enum of_trace_dir dir)
{
	const struct of_trace_match *m = &dp->trace->match;

	return (m->dir == OF_TRACE_ANY || m->dir == dir) && (!m->has_dst || memcmp(m->dst, key->dst, 16) == 0) &&
	       (!m->has_src || memcmp(m->src, key->src, 16) == 0) && (m->proto == 0 || m->proto == key->proto) &&
	       (m->dst_port == 0 || m->dst_port == key->dst_port);
}

/* An outbound frame that of_trace_wants, decided: take it if frames remain to trace, and explain
 * it. `path`: the path it took (NULL when dropped for `drop`); `from`: the path it left when it moved. */
void of_trace_outbound(struct of_dp *dp, struct of_lcore *lc, const struct of_tables *t,
		       const struct of_flow_key *key, uint32_t hash, enum of_trace_flow flow, enum of_trace_why why,
		       int drop, const struct of_path *path, const struct of_path *from);
/* An inbound frame that of_trace_wants (key: its inner flow, with the Geneve VNI), decided: taken
 * like an outbound one. `sender`: its outer IPv6 source; `guest`: the guest port it goes to, or
 * OF_NO_ID when dropped for `drop`. */
void of_trace_inbound(struct of_dp *dp, struct of_lcore *lc, uint16_t uplink, const struct of_flow_key *key,
		      const uint8_t sender[16], const uint8_t inner_dst_mac[6], uint16_t guest, int drop);
/* Life cycle: the trace's ring, at destroy. */
void of_trace_free(struct of_dp *dp);

#endif
