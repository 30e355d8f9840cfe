/*
 * Resilient bucket tables: a flow hash picks one of B buckets and each
 * bucket names one member (a TEP of a set, a nexthop of a group). The single
 * control-plane writer builds a new table from the previous one whenever the
 * live set changes, off the packet path; worker lcores only index it. A
 * built table is never changed: publish the new one, free the old one once
 * readers are done with it.
 *
 * Invariants of of_resilient_build() with n live members, proved by
 * csrc/tests/test_resilient.c:
 *  - every live member holds floor(B/n) or ceil(B/n) buckets; the B mod n
 *    ceil quotas go to the members already holding most buckets (ties: lower
 *    id), so the fewest buckets move;
 *  - a bucket keeps its member while that member is live and not over its
 *    quota: removing a member moves only its buckets, adding one takes
 *    buckets only from members over the new quota;
 *  - an over-quota member gives up buckets evenly spaced among its own, and
 *    freed buckets go, in bucket order, to the member furthest below quota
 *    (ties: lower id), so every member's buckets spread over the hash space;
 *  - the result depends on B, prev and the set of live ids only, never on
 *    the order of `live`;
 *  - with prev's own live set (prev balanced), the result is prev, bucket
 *    for bucket: a table is a function of its history, which is why a
 *    restart restores the saved table (of_resilient_restore) rather than
 *    filling a new one.
 * Pure C11, no DPDK, so tests and sanitizers run without EAL. A build makes
 * one calloc (the result) and costs O(B + n log n).
 */
#ifndef OF_RESILIENT_H
#define OF_RESILIENT_H

#include <stdint.h>

#include "dp_types.h"		/* OF_NO_ID: "no member" */

#define OF_RES_MAX_MEMBERS	64
#define OF_RES_MAX_BUCKETS	65536u

struct of_resilient {
	uint32_t n_buckets;	/* power of two */
	uint32_t mask;		/* n_buckets - 1 */
	uint16_t n_members;	/* live members holding buckets */
	uint16_t members[OF_RES_MAX_MEMBERS];	/* sorted ascending ids */
	uint16_t bucket[];	/* n_buckets member ids */
};

/*
 * Build a table of n_buckets over `live` (any order; duplicates and
 * OF_NO_ID rejected). Without prev, or with a prev of another size, the
 * fill is deterministic: ids ascending, bucket i -> ids[i % n]. With prev,
 * as few buckets move as the invariants above allow. Returns NULL with
 * errno EINVAL (n_buckets not a power of two in 1..65536, n_live above
 * OF_RES_MAX_MEMBERS or n_buckets, bad ids) or ENOMEM.
 * Free with of_resilient_free().
 */
struct of_resilient *of_resilient_build(uint32_t n_buckets,
	const struct of_resilient *prev, const uint16_t *live, uint16_t n_live);

/*
 * A table as saved before a restart, to be passed as the prev of
 * of_resilient_build: bucket[i] is the member id of bucket i, OF_NO_ID
 * where none (a member that no longer exists). Members still live then keep
 * their saved buckets, as after any other change. Returns NULL with errno
 * EINVAL (n_buckets not a power of two in 1..65536, more than
 * OF_RES_MAX_MEMBERS distinct ids) or ENOMEM.
 */
struct of_resilient *of_resilient_restore(uint32_t n_buckets, const uint16_t *bucket);

void of_resilient_free(struct of_resilient *r);

/* Buckets held per member, for dumps: counts[i] for members[i].
 * Returns n_members. */
uint16_t of_resilient_loads(const struct of_resilient *r, uint32_t *counts);

static inline uint16_t
of_resilient_pick(const struct of_resilient *r, uint32_t hash)
{
	return r->bucket[hash & r->mask];
}

#endif
