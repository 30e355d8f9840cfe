/*
 * The worker loop: receive a burst from each queue this lcore owns, run the
 * direction's burst function, flush transmit buffers, expire a few flows,
 * then report a quiescent state so the control thread can free old tables.
 */
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_rcu_qsbr.h>

#include "bfd_io.h"
#include "dp.h"
#include "flow.h"
#include "inbound.h"
#include "lcore.h"
#include "loop.h"
#include "outbound.h"
#include "tables.h"
#include "tx.h"

int
of_worker_main(void *arg)
{
	struct of_lcore *lc = arg;
	struct of_dp *dp = lc->dp;
	struct rte_mbuf *pkts[OF_MAX_BURST];
	const uint16_t burst = dp->cfg.burst;

	rte_rcu_qsbr_thread_register(dp->qsbr, lc->lcore_id);
	rte_rcu_qsbr_thread_online(dp->qsbr, lc->lcore_id);
	lc->sweep_tsc = rte_rdtsc();
	while (__atomic_load_n(&dp->running, __ATOMIC_RELAXED)) {
		const struct of_tables *t = __atomic_load_n(&dp->tables, __ATOMIC_ACQUIRE);

		unsigned got = 0;

		lc->now = rte_rdtsc();
		/* Frames other workers passed on first: they arrived before this iteration's bursts. */
		if (dp->handoff != NULL)
			got = of_outbound_handed_off(dp, lc, t);
		for (uint16_t i = 0; i < lc->n_rx; i++) {
			uint16_t port = lc->rx[i].port;
			uint16_t n = rte_eth_rx_burst(dp->ports[port].port_id, lc->rx[i].queue, pkts, burst);

			if (n == 0)
				continue;
			got += n;
			switch (dp->ports[port].role) {
			case OF_ROLE_GUEST:
				of_outbound_burst(dp, lc, t, port, pkts, n);
				break;
			case OF_ROLE_UPLINK:
				of_inbound_burst(dp, lc, t, port, pkts, n);
				break;
			default:
				of_exception_burst(dp, lc, port, pkts, n);
				break;
			}
		}
		/* The busy share: iterations that found work, over all (own lines, summed on read). */
		lc->polls++;
		lc->busy_polls += got != 0;
		if (unlikely(of_bfd_worker_sends(dp, lc)))
			of_bfd_worker_tx(dp, lc);
		of_tx_flush_all(dp, lc);
		of_flow_sweep(lc, &dp->timeouts);
		rte_rcu_qsbr_quiescent(dp->qsbr, lc->lcore_id);
	}
	of_tx_flush_all(dp, lc);
	rte_rcu_qsbr_thread_offline(dp->qsbr, lc->lcore_id);
	rte_rcu_qsbr_thread_unregister(dp->qsbr, lc->lcore_id);
	return 0;
}
