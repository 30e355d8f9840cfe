/* Per-lcore transmit buffers: frames leave in bursts, one queue per lcore per port. */
#ifndef OF_TX_H
#define OF_TX_H

#include <stdint.h>

#include <rte_mbuf.h>

#include "dp.h"
#include "lcore.h"

void of_tx_flush(struct of_dp *dp, struct of_lcore *lc, uint16_t port);
void of_tx_flush_all(struct of_dp *dp, struct of_lcore *lc);

/* Per packet, so inline: a frame joins its port's burst, which leaves when full. */
static inline void
of_tx_enqueue(struct of_dp *dp, struct of_lcore *lc, uint16_t port, struct rte_mbuf *m)
{
	struct of_txq *q = &lc->tx[port];

	q->pkts[q->n++] = m;
	if (q->n == dp->cfg.burst)
		of_tx_flush(dp, lc, port);
}

#endif
