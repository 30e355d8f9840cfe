/* Inbound (inbound.c): Geneve from an uplink to a guest, and the exception path. Worker lcores only. */
#ifndef OF_INBOUND_H
#define OF_INBOUND_H

#include <stdint.h>

#include <rte_mbuf.h>

#include "dp.h"
#include "lcore.h"
#include "tables.h"

/* A burst received on uplink `port`. */
void of_inbound_burst(struct of_dp *dp, struct of_lcore *lc, const struct of_tables *t,
		      uint16_t port, struct rte_mbuf **pkts, uint16_t n);
/* A burst the kernel sent on exception tap `port`: out its uplink unchanged. */
void of_exception_burst(struct of_dp *dp, struct of_lcore *lc, uint16_t port,
			struct rte_mbuf **pkts, uint16_t n);

#endif
