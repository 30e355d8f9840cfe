/*
 * Per-worker figures for operators (read side, any thread): how busy each
 * worker's loop is, what it received, how full its flow table is. Each
 * worker writes only its own lines; reads are relaxed, as for the counters.
 */
#include "dp.h"
#include "flow.h"
#include "inspect.h"
#include "lcore.h"

unsigned
of_dp_workers(const struct of_dp *dp, struct of_worker_stats *out, unsigned max)
{
	unsigned n = 0;

	if (!dp->running)
		return 0;
	for (unsigned w = 0; w < dp->n_workers && n < max; w++, n++) {
		const struct of_lcore *lc = &dp->lcores[w];
		struct of_worker_stats *s = &out[n];

		s->lcore = lc->lcore_id;
		s->worker = w;
		/* busy_polls first: read after polls, it could exceed them */
		s->busy_polls = __atomic_load_n(&lc->busy_polls, __ATOMIC_RELAXED);
		s->polls = __atomic_load_n(&lc->polls, __ATOMIC_RELAXED);
		s->rx_packets = __atomic_load_n(&lc->counters[OF_C_RX_GUEST], __ATOMIC_RELAXED) +
				__atomic_load_n(&lc->counters[OF_C_RX_UPLINK], __ATOMIC_RELAXED) +
				__atomic_load_n(&lc->counters[OF_C_RX_EXCEPTION], __ATOMIC_RELAXED);
		s->flows = __atomic_load_n(&lc->flows->n_active, __ATOMIC_RELAXED);
	}
	return n;
}
