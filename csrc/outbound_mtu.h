/*
 * Outbound (outbound_mtu.c): a guest packet too big for the underlay (mtu.h)
 * turned into its ICMP error back to the guest, or dropped.
 */
#ifndef OF_OUTBOUND_MTU_H
#define OF_OUTBOUND_MTU_H

#include <stdint.h>

#include "parse.h"
#include "tables.h"

struct of_dp;
struct of_lcore;
struct rte_mbuf;

/*
 * A guest frame (mt as the parse filled it) whose encapsulation would exceed
 * the underlay MTU: sent back out guest port `port` as the ICMP error, or
 * dropped under OVER_MTU_NO_DF, OVER_MTU_RATE_LIMITED or OVER_MTU_UNANSWERED.
 */
void of_outbound_too_big(struct of_dp *dp, struct of_lcore *lc, uint16_t port, struct rte_mbuf *m,
			 const struct of_inner_meta *mt, const struct of_guest *g);

#endif
