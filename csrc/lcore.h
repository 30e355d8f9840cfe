/*
 * Per-lcore state and counters: everything one worker owns, and the helpers
 * that count into it. Nothing here is written by another thread; the read
 * side sums the counters.
 */
#ifndef OF_LCORE_H
#define OF_LCORE_H

#include <stdint.h>

#include <rte_common.h>
#include <rte_mbuf.h>

#include "counters.h"
#include "dp_types.h"
#include "flow.h"

/* Frames waiting for a burst to one port. */
struct of_txq {
	uint16_t n;
	struct rte_mbuf *pkts[OF_MAX_BURST];
};

struct of_lcore {
	struct of_dp *dp;
	unsigned lcore_id;
	uint16_t worker;		/* 0..n_workers-1: its rx/tx queue index */
	uint16_t n_rx;
	struct {
		uint16_t port;		/* port index */
		uint16_t queue;
	} rx[OF_MAX_PORTS];
	struct of_flow_table *flows;
	uint32_t sweep_pos;		/* next flow entry the expiry sweep checks */
	uint64_t sweep_tsc;		/* the time the sweep has caught up to */
	uint64_t now;			/* TSC at the start of the current burst */
	uint64_t polls;			/* loop iterations */
	uint64_t busy_polls;		/* iterations that received or were handed frames */
	uint64_t counters[OF_N_COUNTERS];
	struct of_path_stats tep[OF_MAX_TEPS];
	struct of_path_stats nh[OF_MAX_NEXTHOPS];
	struct of_txq tx[OF_MAX_PORTS];
} __rte_cache_aligned;

static inline void
of_count(struct of_lcore *lc, enum of_counter c)
{
	lc->counters[c]++;
}

static inline void
of_drop(struct of_lcore *lc, enum of_counter reason, struct rte_mbuf *m)
{
	lc->counters[reason]++;
	rte_pktmbuf_free(m);
}

/* A flow starts (+1) or stops (-1) using path p: its TEP's and nexthop's flow counts follow. */
static inline void
of_count_path_flows(struct of_lcore *lc, const struct of_path *p, int64_t delta)
{
	lc->tep[p->tep].flows += (uint64_t)delta;
	lc->nh[p->nh].flows += (uint64_t)delta;
}

#endif
