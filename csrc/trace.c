/*
 * Path tracing (trace.h). The control thread arms a trace; workers that run
 * the traced copy of the outbound or inbound loop count the remaining frames
 * down and put a record each on the ring; the control side reads them. The
 * last worker to take a frame disarms, so bursts go back to the plain copies.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <rte_ether.h>
#include <rte_hash.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "dp.h"
#include "error.h"
#include "flow.h"
#include "flow_key.h"
#include "lcore.h"
#include "resilient.h"
#include "tables.h"
#include "trace.h"

_Static_assert(sizeof(struct of_trace_record) % 4 == 0, "ring elements are a multiple of 4 bytes");


int
of_dp_trace_arm(struct of_dp *dp, const struct of_trace_match *match, uint32_t count)
{
	char name[RTE_RING_NAMESIZE];

	if (count == 0 || count > OF_TRACE_COUNT_MAX) {
		of_set_error("trace from 1 to %u frames", OF_TRACE_COUNT_MAX);
		return -EINVAL;
	}
	if (match->dir > OF_TRACE_IN) {
		of_set_error("trace direction %u is none of any (0), outbound (1), inbound (2)", match->dir);
		return -EINVAL;
	}
	if (__atomic_load_n(&dp->trace_armed, __ATOMIC_ACQUIRE)) {
		of_set_error("a trace is running already (one at a time)");
		return -EBUSY;
	}
	if (dp->trace == NULL) {
		dp->trace = rte_zmalloc("of_trace", sizeof(*dp->trace), RTE_CACHE_LINE_SIZE);
		snprintf(name, sizeof(name), "of_trace_%u", dp->instance);
		if (dp->trace != NULL)
			dp->trace->ring = rte_ring_create_elem(name, sizeof(struct of_trace_record), OF_TRACE_MAX,
							       SOCKET_ID_ANY, RING_F_EXACT_SZ | RING_F_SC_DEQ);
		if (dp->trace == NULL || dp->trace->ring == NULL) {
			of_trace_free(dp);
			of_set_error("out of memory for the trace ring");
			return -ENOMEM;
		}
	}
	/* A worker that saw the last trace armed may still be writing: wait out its iteration. */
	rte_rcu_qsbr_synchronize(dp->qsbr, RTE_QSBR_THRID_INVALID);
	rte_ring_reset(dp->trace->ring);
	dp->trace->match = *match;
	dp->trace->lost = 0;
	__atomic_store_n(&dp->trace->remaining, (int64_t)count, __ATOMIC_RELAXED);
	__atomic_store_n(&dp->trace_armed, 1, __ATOMIC_RELEASE);
	return 0;
}

void
of_dp_trace_disarm(struct of_dp *dp)
{
	__atomic_store_n(&dp->trace_armed, 0, __ATOMIC_RELEASE);
	if (dp->trace != NULL)
		__atomic_store_n(&dp->trace->remaining, 0, __ATOMIC_RELAXED);
}

int
of_dp_trace_read(struct of_dp *dp, struct of_trace_record *out, unsigned max, int *armed)
{
	*armed = __atomic_load_n(&dp->trace_armed, __ATOMIC_ACQUIRE);
	if (dp->trace == NULL)
		return 0;
	return (int)rte_ring_dequeue_burst_elem(dp->trace->ring, out, sizeof(*out), max, NULL);
}

uint64_t
of_dp_trace_lost(const struct of_dp *dp)
{
	return dp->trace == NULL ? 0 : __atomic_load_n(&dp->trace->lost, __ATOMIC_RELAXED);
}

void
of_trace_free(struct of_dp *dp)
{
	if (dp->trace == NULL)
		return;
	rte_ring_free(dp->trace->ring);
	rte_free(dp->trace);
	dp->trace = NULL;
}

/* One of the frames left to trace, or none: the worker that takes the last one disarms. */
static int
take(struct of_dp *dp)
{
	int64_t left = __atomic_sub_fetch(&dp->trace->remaining, 1, __ATOMIC_RELAXED);

	if (left == 0)
		__atomic_store_n(&dp->trace_armed, 0, __ATOMIC_RELEASE);
	return left >= 0;
}

/* The flow's bucket in a resilient table and the member it names now. */
static void
bucket_of(const struct of_resilient *r, uint32_t hash, uint32_t *bucket, uint16_t *member)
{
	if (r == NULL)
		return;
	*bucket = hash & r->mask;
	*member = r->bucket[*bucket];
}

static void
put(struct of_dp *dp, struct of_trace_record *r)
{
	if (rte_ring_mp_enqueue_elem(dp->trace->ring, r, sizeof(*r)) != 0)
		__atomic_fetch_add(&dp->trace->lost, 1, __ATOMIC_RELAXED);
}

void
of_trace_outbound(struct of_dp *dp, struct of_lcore *lc, const struct of_tables *t,
		  const struct of_flow_key *key, uint32_t hash, enum of_trace_flow flow, enum of_trace_why why,
		  int drop, const struct of_path *path, const struct of_path *from)
{
	struct of_v2p_key vk = { .vni = key->vni };
	struct of_trace_record r = {
		.tsc = lc->now, .lcore = lc->lcore_id, .hash = hash, .vni = key->vni, .proto = key->proto,
		.flow = (uint8_t)flow, .why = (uint8_t)why, .src_port = key->src_port, .dst_port = key->dst_port,
		.drop = path == NULL ? drop : -1, .tep_set = OF_TRACE_NONE, .tep_bucket = OF_TRACE_NONE,
		.nh_group = OF_TRACE_NONE, .nh_bucket = OF_TRACE_NONE, .bucket_tep = OF_NO_ID,
		.bucket_nexthop = OF_NO_ID, .tep = OF_NO_ID, .nexthop = OF_NO_ID, .uplink = OF_NO_ID,
		.from_tep = OF_NO_ID, .from_nexthop = OF_NO_ID, .guest = OF_NO_ID, .dir = OF_TRACE_OUT,
	};
	const uint8_t *outer_dst = NULL;
	int32_t pos;
	uint32_t target;

	if (!take(dp))
		return;
	memcpy(r.src, key->src, 16);
	memcpy(r.dst, key->dst, 16);
	/* The tables' answer, looked up again as resolve_path does. */
	memcpy(vk.ip, key->dst, 16);
	pos = rte_hash_lookup(t->v2p->hash, &vk);
	if (pos >= 0) {
		r.table = OF_TRACE_V2P;
		outer_dst = t->v2p->vals[pos].underlay;
	} else if (of_prefix_match(t->v2b, key->dst, &target) == 0) {
		r.table = OF_TRACE_V2B;
		r.tep_set = target;
		bucket_of(t->tep_sets[target], hash, &r.tep_bucket, &r.bucket_tep);
		if (r.bucket_tep != OF_NO_ID)
			outer_dst = t->teps[r.bucket_tep].addr;
	}
	if (path != NULL) {
		r.tep = path->tep;
		r.nexthop = path->nh;
		r.uplink = path->uplink;
		outer_dst = path->dst;	/* where it went, pinned or not */
	}
	if (outer_dst != NULL) {
		memcpy(r.underlay, outer_dst, 16);
		if (of_prefix_match(t->routes, outer_dst, &target) == 0) {
			r.nh_group = target;
			bucket_of(t->nh_groups[target], of_nexthop_hash(hash), &r.nh_bucket, &r.bucket_nexthop);
		}
	}
	if (from != NULL) {
		r.from_tep = from->tep;
		r.from_nexthop = from->nh;
	}
	put(dp, &r);
}

void
of_trace_inbound(struct of_dp *dp, struct of_lcore *lc, uint16_t uplink, const struct of_flow_key *key,
		 const uint8_t sender[16], const uint8_t inner_dst_mac[6], uint16_t guest, int drop)
{
	struct of_trace_record r = {
		.tsc = lc->now, .lcore = lc->lcore_id, .vni = key->vni, .proto = key->proto, .flow = OF_TRACE_NO_FLOW,
		.table = guest == OF_NO_ID ? OF_TRACE_NO_MATCH : OF_TRACE_GUEST,
		.why = guest == OF_NO_ID ? OF_TRACE_DROPPED : OF_TRACE_DELIVERED, .src_port = key->src_port,
		.dst_port = key->dst_port, .drop = guest == OF_NO_ID ? drop : -1, .tep_set = OF_TRACE_NONE,
		.tep_bucket = OF_TRACE_NONE, .nh_group = OF_TRACE_NONE, .nh_bucket = OF_TRACE_NONE,
		.bucket_tep = OF_NO_ID, .bucket_nexthop = OF_NO_ID, .tep = OF_NO_ID, .nexthop = OF_NO_ID,
		.uplink = uplink, .from_tep = OF_NO_ID, .from_nexthop = OF_NO_ID, .guest = guest, .dir = OF_TRACE_IN,
	};

	if (!take(dp))
		return;
	memcpy(r.src, key->src, 16);
	memcpy(r.dst, key->dst, 16);
	memcpy(r.underlay, sender, 16);
	memcpy(r.inner_dst_mac, inner_dst_mac, 6);
	put(dp, &r);
}
