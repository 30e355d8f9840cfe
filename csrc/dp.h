/*
 * The data plane's state, shared by its C files as l3fwd.h shares its
 * globals: types only, no functions. The life cycle (dataplane.c) and the
 * control side write it; the packet path reads it.
 */
#ifndef OF_DP_H
#define OF_DP_H

#include <pthread.h>
#include <stdint.h>

#include <rte_common.h>
#include <rte_ether.h>
#include <rte_spinlock.h>

#include "dp_types.h"
#include "flow.h"
#include "flow_hash.h"
#include "prefix.h"
#include "wire.h"

struct of_bfd;
struct of_handoff;
struct of_lcore;
struct of_tables;
struct of_trace;
struct rte_eth_rxtx_callback;
struct rte_mempool;
struct rte_rcu_qsbr;
struct rte_ring;

struct of_port {
	char name[32];
	uint16_t port_id;		/* ethdev port */
	uint8_t role;			/* enum of_port_role */
	uint8_t is_vdev;		/* probed from devargs: removed on destroy */
	uint16_t exception;		/* uplink: its kernel tap port, or OF_NO_ID */
	uint16_t uplink;		/* exception tap: the uplink it stands for */
	uint16_t n_rxq;
	struct rte_ether_addr mac;
	/* Ring ports only: one RX ring per RX queue; every TX queue shares one MP/SC ring. */
	uint16_t n_ring_rx;
	struct rte_ring *ring_rx[RTE_PMD_RING_MAX_RX_RINGS];
	struct rte_ring *ring_tx;
	uint64_t ring_rx_no_mbuf;	/* frames refused at injection: the pool was empty */
	uint16_t ring_take_per_tx;	/* frames a transmit first takes off ring_tx, as a VM would (ring_io.h) */
	const struct rte_eth_rxtx_callback *ring_take;	/* on TX queue 0, the one worker's */
	/* Link state, written under dp->link_lock (EAL interrupt thread, and start). */
	uint8_t link_watched;		/* uplinks and guests; an exception tap is the kernel's */
	uint8_t link_lsc;		/* the PMD keeps the status by LSC interrupt */
	uint64_t link_word;		/* status, duplex, speed: see link.c */
	uint64_t link_changes;
	uint64_t link_changed_ns;	/* CLOCK_MONOTONIC */
	uint8_t bfd_txq;		/* TX queue n_workers is the BFD thread's, else worker 0 sends for it (bfd_io.c) */
	/* Uplinks: the outer headers every flow through this port shares (Ethernet source, IPv6
	 * version, next header, hop limit and source, UDP and Geneve constants) and the inner
	 * destination MAC of boundary services, built at start; the packet path writes the flow's
	 * own fields over a copy (outbound.c). */
	uint8_t outer[OF_OUTER_HDR_LEN + RTE_ETHER_ADDR_LEN] __rte_cache_aligned;
};

struct of_dp {
	struct of_dp_config cfg;
	uint64_t hash_key[OF_HASH_KEY_WORDS];	/* cfg.hash_key as the hash reads it */
	uint32_t instance;		/* makes DPDK object names unique */
	struct rte_mempool *pool;
	uint16_t n_ports;
	struct of_port ports[OF_MAX_PORTS];

	/* Published by the control thread, read by workers once per iteration. */
	struct of_tables *tables;
	struct rte_rcu_qsbr *qsbr;
	uint64_t table_swaps;
	uint32_t member_gen;		/* last generation handed to a TEP or nexthop */
	struct of_prefix_bank v2b_bank, route_bank;	/* the prefix tables (prefix.h) */

	/* EAL heap bytes, measured as allocated (memory.h). */
	uint64_t mbuf_bytes, flow_bytes;
	uint64_t snapshot_bytes;	/* an empty commit's: the snapshot and its smallest tables */
	uint64_t v2p_small_bytes, v2p_large_bytes;	/* V2P tables of OF_V2P_PROBE_SMALL and _LARGE entries */

	/* In TSC ticks, derived from cfg at create. */
	struct of_flow_timeouts timeouts;
	uint64_t rebalance_tsc;		/* UINT64_MAX: never */

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

	int trace_armed;		/* read once per outbound or inbound burst (trace.h) */
	struct of_trace *trace;		/* allocated at the first trace */
	struct of_bfd *bfd;		/* BFD sessions and their thread (bfd_io.c) */
	uint8_t bfd_via_worker;		/* some uplink has no BFD TX queue: worker 0 sends for it */
};

#endif
