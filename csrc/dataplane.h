/* Internal state shared by the data plane's C files. */
#ifndef OF_DATAPLANE_H
#define OF_DATAPLANE_H

#include <pthread.h>
#include <stdint.h>

#include <rte_common.h>
#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_spinlock.h>

#include "counters.h"
#include "flow.h"
#include "opte_fast.h"
#include "tables.h"

#define OF_NONE 0xFFFF

struct of_handoff;
struct rte_rcu_qsbr;
struct rte_ring;

struct of_port {
	char name[32];
	uint16_t port_id;		/* ethdev port */
	uint8_t role;			/* enum of_port_role */
	uint8_t is_vdev;		/* probed from devargs: removed on destroy */
	uint16_t exception;		/* uplink: its kernel tap port, or OF_NONE */
	uint16_t uplink;		/* exception tap: the uplink it stands for */
	uint16_t n_rxq;
	struct rte_ether_addr mac;
	/* Ring ports only: one RX ring per RX queue; every TX queue shares one MP/SC ring. */
	uint16_t n_ring_rx;
	struct rte_ring *ring_rx[RTE_PMD_RING_MAX_RX_RINGS];
	struct rte_ring *ring_tx;
	/* Link state, written under dp->link_lock (EAL interrupt thread, and start). */
	uint8_t link_watched;		/* uplinks and guests; an exception tap is the kernel's */
	uint8_t link_lsc;		/* the PMD keeps the status by LSC interrupt */
	uint64_t link_word;		/* status, duplex, speed: see link.c */
	uint64_t link_changes;
	uint64_t link_changed_ns;	/* CLOCK_MONOTONIC */
};

/* Frames waiting for a burst to one port. */
struct of_txq {
	uint16_t n;
	struct rte_mbuf *pkts[OF_MAX_BURST];
};

/* Everything one worker lcore owns; nothing here is written by another thread. */
struct of_lcore {
	struct of_dp *dp;
	unsigned lcore_id;
	uint16_t worker;		/* 0..n_workers-1: its rx/tx queue index */
	uint16_t n_rx;
	struct {
		uint16_t port;		/* port index */
		uint16_t queue;
	} rx[OF_MAX_PORTS];
	struct of_flow_table *flows;
	uint32_t sweep_pos;		/* next flow entry the expiry sweep checks */
	uint64_t sweep_tsc;		/* the time the sweep has caught up to */
	uint64_t now;			/* TSC at the start of the current burst */
	uint64_t counters[OF_N_COUNTERS];
	struct of_path_stats tep[OF_MAX_TEPS];
	struct of_path_stats nh[OF_MAX_NEXTHOPS];
	struct of_txq tx[OF_MAX_PORTS];
} __rte_cache_aligned;

struct of_dp {
	struct of_dp_config cfg;
	uint32_t instance;		/* makes DPDK object names unique */
	struct rte_mempool *pool;
	uint16_t n_ports;
	struct of_port ports[OF_MAX_PORTS];

	/* Published by the control thread, read by workers once per iteration. */
	struct of_tables *tables;
	struct rte_rcu_qsbr *qsbr;
	uint64_t table_swaps;
	uint32_t member_gen;		/* last generation handed to a TEP or nexthop */

	/* Timeouts in TSC ticks, derived from cfg at create. */
	uint64_t tcp_idle_tsc, tcp_closed_tsc, udp_idle_tsc, icmp_idle_tsc;
	uint64_t rebalance_tsc;		/* UINT64_MAX: never */
	uint64_t sweep_period_tsc;	/* one pass of the expiry sweep over a flow table */

	/* Readers of tables outside the workers (the control side's dumps): one at a time, as
	 * QSBR thread id reader_thread, so a commit waits for them before freeing a snapshot. */
	pthread_mutex_t reader_lock;
	unsigned reader_thread;

	rte_spinlock_t link_lock;	/* the writers of the ports' link fields */
	int link_event_fd;		/* eventfd: readable after any followed link changed */
	int link_polling;		/* the poll alarm re-arms itself while set */

	volatile int running;
	unsigned n_workers;
	struct of_lcore *lcores;	/* n_workers, cache aligned */
	struct of_handoff *handoff;	/* the rings between several workers (handoff.h); NULL with one */
};

/* Per-lcore counting helpers. */
static inline void
of_count(struct of_lcore *lc, enum of_counter c)
{
	lc->counters[c]++;
}

static inline void
of_drop(struct of_lcore *lc, enum of_counter reason, struct rte_mbuf *m)
{
	lc->counters[reason]++;
	rte_pktmbuf_free(m);
}

void of_set_error(const char *fmt, ...) __rte_format_printf(1, 2);

/* tx.c */
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

/* outbound.c / inbound.c: one direction each. */
void of_outbound_burst(struct of_dp *dp, struct of_lcore *lc, const struct of_tables *t,
		       uint16_t port, struct rte_mbuf **pkts, uint16_t n);
void of_inbound_burst(struct of_dp *dp, struct of_lcore *lc, const struct of_tables *t,
		      uint16_t port, struct rte_mbuf **pkts, uint16_t n);
void of_exception_burst(struct of_dp *dp, struct of_lcore *lc, uint16_t port,
			struct rte_mbuf **pkts, uint16_t n);

#define OF_SWEEP_MAX 256		/* entries one iteration checks at most */
void of_flow_sweep(struct of_dp *dp, struct of_lcore *lc);

/* loop.c */
int of_worker_main(void *arg);

/* telemetry.c */
void of_telemetry_attach(struct of_dp *dp);
void of_telemetry_detach(struct of_dp *dp);

/* port.c */
int of_ports_start(struct of_dp *dp);
void of_ports_stop(struct of_dp *dp);
void of_ports_close(struct of_dp *dp);

/* link.c: follow the links of started ports until of_links_unwatch. */
#define OF_LINK_POLL_US 2000		/* every followed port: see link.c */
int of_links_watch(struct of_dp *dp);
void of_links_unwatch(struct of_dp *dp);

#endif
