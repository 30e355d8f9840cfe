/*
 * Outbound: what becomes of a guest packet too big for the underlay (mtu.h),
 * with ICMP errors rate-limited per worker.
 */
#include <stdint.h>

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_mbuf.h>
#include <rte_per_lcore.h>

#include "dp.h"
#include "lcore.h"
#include "mtu.h"
#include "outbound_mtu.h"
#include "tx.h"

/* A token bucket per worker: at most OF_ICMP_ERRORS_PER_S errors a second, bursts of OF_ICMP_ERRORS_BURST. */
struct icmp_budget {
	uint64_t last_tsc;
	uint32_t tokens;
};

static RTE_DEFINE_PER_LCORE(struct icmp_budget, icmp_budget);

static int
icmp_error_allowed(uint64_t now)
{
	struct icmp_budget *b = &RTE_PER_LCORE(icmp_budget);
	uint64_t per_token = rte_get_tsc_hz() / OF_ICMP_ERRORS_PER_S;
	uint64_t earned;

	if (b->last_tsc == 0) {
		b->last_tsc = now;
		b->tokens = OF_ICMP_ERRORS_BURST;
	}
	earned = (now - b->last_tsc) / per_token;
	if (earned != 0) {
		b->tokens = (uint32_t)RTE_MIN((uint64_t)OF_ICMP_ERRORS_BURST, b->tokens + earned);
		b->last_tsc += earned * per_token;
	}
	if (b->tokens == 0)
		return 0;
	b->tokens--;
	return 1;
}

void
of_outbound_too_big(struct of_dp *dp, struct of_lcore *lc, uint16_t port, struct rte_mbuf *m,
		    const struct of_inner_meta *mt, const struct of_guest *g)
{
	uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);
	uint16_t mtu = (uint16_t)(dp->cfg.underlay_mtu - OF_ENCAP_IP_OVERHEAD - mt->l2_len);
	uint32_t n;

	if (!mt->is_ipv6 && !of_ipv4_dont_fragment(frame, mt)) {
		of_drop(lc, OF_C_OVER_MTU_NO_DF, m);
		return;
	}
	if (!icmp_error_allowed(lc->now)) {
		of_drop(lc, OF_C_OVER_MTU_RATE_LIMITED, m);
		return;
	}
	n = of_icmp_too_big(frame, rte_pktmbuf_data_len(m), mt, g, mtu);
	if (n == 0) {
		of_drop(lc, OF_C_OVER_MTU_UNANSWERED, m);
		return;
	}
	if (m->next != NULL) {	/* the error fits in the first segment: the rest goes */
		rte_pktmbuf_free(m->next);
		m->next = NULL;
		m->nb_segs = 1;
	}
	m->data_len = (uint16_t)n;	/* n <= the first segment's data_len */
	m->pkt_len = n;
	of_count(lc, mt->is_ipv6 ? OF_C_ICMP6_TOO_BIG : OF_C_ICMP_FRAG_NEEDED);
	of_tx_enqueue(dp, lc, port, m);
}
