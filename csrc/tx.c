/* Per-lcore transmit buffers (tx.h). */
#include <rte_branch_prediction.h>
#include <rte_ethdev.h>

#include "tx.h"

static const enum of_counter tx_counter_by_role[] = {
	[OF_ROLE_GUEST] = OF_C_TX_GUEST,
	[OF_ROLE_UPLINK] = OF_C_TX_UPLINK,
	[OF_ROLE_EXCEPTION] = OF_C_TX_EXCEPTION,
};

/*
 * A VM empties its receive ring from its own vCPU, while this lcore fills it: a ring that took
 * part of a burst may take the rest a moment later. Try again while each try takes some, at most
 * guest_tx_retries times, as Open vSwitch does toward vhost-user (tx-retries-max); a ring that
 * took nothing is not waited for, so a stalled guest costs its own frames, not the worker's time.
 */
static uint16_t
guest_tx_retry(struct of_dp *dp, struct of_lcore *lc, uint16_t port_id, struct of_txq *q, uint16_t sent)
{
	for (uint16_t tries = 0; sent < q->n && tries < dp->cfg.guest_tx_retries; tries++) {
		uint16_t more = rte_eth_tx_burst(port_id, lc->worker, q->pkts + sent, q->n - sent);

		lc->counters[OF_C_TX_GUEST_RETRIES]++;
		if (more == 0)
			break;
		sent += more;
	}
	return sent;
}

void
of_tx_flush(struct of_dp *dp, struct of_lcore *lc, uint16_t port)
{
	struct of_txq *q = &lc->tx[port];
	const struct of_port *p = &dp->ports[port];
	uint16_t sent = rte_eth_tx_burst(p->port_id, lc->worker, q->pkts, q->n);

	if (unlikely(sent < q->n) && sent != 0 && p->role == OF_ROLE_GUEST)
		sent = guest_tx_retry(dp, lc, p->port_id, q, sent);
	lc->counters[tx_counter_by_role[p->role]] += sent;
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
