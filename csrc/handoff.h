/*
 * Worker handoff: one flow, one worker, one path.
 *
 * Flow tables are per worker, but a guest (virtio) picks its TX queue per
 * vCPU, not per flow: frames of one flow can reach two workers, whose
 * entries would each pin a path of their own (created at different times,
 * or one idle and rebalanced while the other is busy). So the flow hash
 * names one owning worker. A worker that receives a guest frame of a flow
 * it does not own passes it, with its hash, on the owner's ring; the owner
 * runs it through the same outbound path as its own frames. Each flow then
 * has one entry, in its owner's table. As VPP's handoff node: rings carry
 * mbufs in bulk, nothing is allocated or locked, a full ring drops and counts.
 */
#ifndef OF_HANDOFF_H
#define OF_HANDOFF_H

#include <stdint.h>

#include <rte_config.h>

#include "dp.h"
#include "lcore.h"
#include "parse.h"

#define OF_HANDOFF_RING_SIZE 4096	/* frames waiting for one worker; a power of two */

struct rte_ring;

struct of_handoff {
	uint16_t port_of_ethdev[RTE_MAX_ETHPORTS];	/* m->port (ethdev id) -> port index */
	struct rte_ring *ring[];			/* per worker: frames passed to it, MP/SC */
};

/* The worker that owns a flow: multiply-shift spreads hashes over n workers without a division. */
static inline uint16_t
of_flow_owner(uint32_t hash, unsigned n_workers)
{
	return (uint16_t)(((uint64_t)hash * n_workers) >> 32);
}

/* Control thread, before the workers start and after they stop. Nothing to do with one worker. */
int of_handoff_create(struct of_dp *dp);
void of_handoff_free(struct of_dp *dp);	/* frees the frames still on the rings */

/*
 * Receiving worker, per guest burst after the flow hash: passes the frames
 * of flows other workers own to their rings (hash in m->hash.rss, the guest
 * port in m->port), and compacts pkts, meta and hashes to the frames it owns,
 * whose count it returns.
 */
uint16_t of_handoff_split(struct of_dp *dp, struct of_lcore *lc, uint16_t port, struct rte_mbuf **pkts,
			  struct of_inner_meta *meta, uint32_t *hashes, uint16_t n);

/* Owning worker, once per loop iteration: up to a burst of frames passed to it, in ring order, each
 * with its hash in m->hash.rss and its guest port's ethdev id in m->port (port_of_ethdev). */
unsigned of_handoff_receive(struct of_dp *dp, struct of_lcore *lc, struct rte_mbuf **pkts);

#endif
