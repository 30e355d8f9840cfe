/*
 * The BFD thread and the workers' side of it (bfd_io.c), for the data
 * plane's life cycle (dataplane.c) and the inbound path (inbound.c).
 */
#ifndef OF_BFD_IO_H
#define OF_BFD_IO_H

#include <stdint.h>

#include <rte_mbuf.h>

#include "dp.h"
#include "lcore.h"

/* At of_dp_create / of_dp_destroy: the ring from the workers, the eventfd. */
int of_bfd_create(struct of_dp *dp);
void of_bfd_destroy(struct of_dp *dp);

/* After the ports started / before they stop: the BFD thread. */
int of_bfd_start(struct of_dp *dp);
void of_bfd_stop(struct of_dp *dp);

/*
 * A worker's one call, for an uplink frame that is not Geneve for us: a BFD
 * frame for a running session's address goes to the BFD thread's ring (or is
 * dropped, counted, when the ring is full), and a neighbor solicitation for
 * the link-local address single-hop BFD speaks from is answered. Returns 1
 * if the frame was taken, 0 to let the exception path have it.
 */
int of_bfd_input(struct of_dp *dp, struct of_lcore *lc, uint16_t port, struct rte_mbuf *m);

/*
 * Worker 0, once per loop iteration while of_bfd_worker_sends: the BFD
 * thread's frames for uplinks without a TX queue of its own (net_tap), sent
 * on this worker's queue.
 */
void of_bfd_worker_tx(struct of_dp *dp, struct of_lcore *lc);

static inline int
of_bfd_worker_sends(const struct of_dp *dp, const struct of_lcore *lc)
{
	return lc->worker == 0 && dp->bfd_via_worker;
}

#endif
