/* Outbound (outbound.c): guest frames to Geneve/IPv6 on an uplink. Worker lcores only. */
#ifndef OF_OUTBOUND_H
#define OF_OUTBOUND_H

#include <stdint.h>

#include <rte_mbuf.h>

#include "dp.h"
#include "lcore.h"
#include "tables.h"

/* A burst received on guest port `port`. */
void of_outbound_burst(struct of_dp *dp, struct of_lcore *lc, const struct of_tables *t,
		       uint16_t port, struct rte_mbuf **pkts, uint16_t n);
/* Several workers, once per loop iteration: the frames other workers passed to this one (handoff.h);
 * their count. */
unsigned of_outbound_handed_off(struct of_dp *dp, struct of_lcore *lc, const struct of_tables *t);

#endif
