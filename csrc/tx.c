/* Per-lcore transmit buffers (tx.h). */
#include <rte_ethdev.h>

#include "tx.h"

static const enum of_counter tx_counter_by_role[] = {
	[OF_ROLE_GUEST] = OF_C_TX_GUEST,
	[OF_ROLE_UPLINK] = OF_C_TX_UPLINK,
	[OF_ROLE_EXCEPTION] = OF_C_TX_EXCEPTION,
};

void
of_tx_flush(struct of_dp *dp, struct of_lcore *lc, uint16_t port)
{
	struct of_txq *q = &lc->tx[port];
	uint16_t sent = rte_eth_tx_burst(dp->ports[port].port_id, lc->worker, q->pkts, q->n);

	lc->counters[tx_counter_by_role[dp->ports[port].role]] += sent;
	for (uint16_t i = sent; i < q->n; i++)
		of_drop(lc, OF_C_TX_FULL, q->pkts[i]);
	q->n = 0;
}

void
of_tx_flush_all(struct of_dp *dp, struct of_lcore *lc)
{
	for (uint16_t port = 0; port < dp->n_ports; port++)
		if (lc->tx[port].n != 0)
			of_tx_flush(dp, lc, port);
}
