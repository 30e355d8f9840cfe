/*
 * Link state of a port as its PMD reports it (link.c): by LSC interrupt where
 * the PMD offers one, and polled every 2 ms by an EAL alarm (never by a worker).
 * Uplinks and guests are followed while the data plane runs; an exception tap
 * is not (its kernel side is the kernel's).
 */
#ifndef OF_LINK_H
#define OF_LINK_H

#include <stdint.h>

#include "dp_types.h"

struct of_link_info {
	uint8_t watched;
	uint8_t up;
	uint8_t by_interrupt;		/* 1: the PMD keeps it by LSC interrupt, 0: polled only */
	uint8_t full_duplex;
	uint32_t speed_mbps;		/* 0: unknown */
	uint64_t changes;		/* since the data plane started */
	uint64_t changed_ns;		/* CLOCK_MONOTONIC of the last change (or of the start) */
};
int of_dp_link(const struct of_dp *dp, uint16_t port, struct of_link_info *out);
/* An eventfd that becomes readable after any followed link changes (read it to rearm). */
int of_dp_link_event_fd(const struct of_dp *dp);
/* rte_eth_dev_set_link_up/down on a started port (an operator's or a test's action). */
int of_dp_set_link(struct of_dp *dp, uint16_t port, int up);

/* The life cycle's (dataplane.c): follow the links of started ports until of_links_unwatch. */
#define OF_LINK_POLL_US 2000		/* every followed port */
int of_links_watch(struct of_dp *dp);
void of_links_unwatch(struct of_dp *dp);

#endif
