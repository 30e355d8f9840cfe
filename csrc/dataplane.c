/*
 * Life cycle of the data plane (control thread, opte_fast.h): EAL, create and
 * destroy, start and stop of the worker lcores. It calls into every other
 * part; nothing calls back into it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_hash.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>

#include "capture.h"
#include "bfd_io.h"
#include "dp.h"
#include "flow.h"
#include "handoff.h"
#include "heap.h"
#include "lcore.h"
#include "loop.h"
#include "memory.h"
#include "opte_fast.h"
#include "tables.h"
#include "telemetry.h"
#include "trace.h"

static uint32_t instances;

int
of_eal_init(int argc, char **argv)
{
	int rc = rte_eal_init(argc, argv);

	if (rc < 0) {
		int err = rte_errno;

		if (err == EALREADY)
			of_set_error("the DPDK EAL is already initialised in this process (it starts once per process)");
		else
			of_set_error("DPDK EAL initialisation failed: %s", rte_strerror(err));
		return -err;
	}
	return 0;
}

int
of_eal_cleanup(void)
{
	of_capture_uninit();
	return rte_eal_cleanup();
}

uint64_t
of_tsc_hz(void)
{
	return rte_get_tsc_hz();
}

static uint64_t
ms_to_tsc(uint32_t ms)
{
	if (ms == OF_NEVER)
		return UINT64_MAX;
	return (uint64_t)ms * rte_get_tsc_hz() / 1000;
}

static int
check_config(const struct of_dp_config *cfg)
{
	if (cfg->burst == 0 || cfg->burst > OF_MAX_BURST)
		of_set_error("burst must be 1..%d", OF_MAX_BURST);
	else if (cfg->guest_tx_retries > OF_MAX_GUEST_TX_RETRIES)
		of_set_error("guest TX retries must be 0..%d", OF_MAX_GUEST_TX_RETRIES);
	else if (cfg->n_buckets == 0 || (cfg->n_buckets & (cfg->n_buckets - 1)) != 0 || cfg->n_buckets > 65536)
		of_set_error("buckets must be a power of two up to 65536");
	else if (cfg->udp_sport_min > cfg->udp_sport_max)
		of_set_error("UDP source port range is empty");
	else if (cfg->flow_capacity < 8)
		of_set_error("flow capacity must be at least 8");
	else if (cfg->mbuf_data_room < RTE_PKTMBUF_HEADROOM + RTE_ETHER_MIN_LEN)
		of_set_error("mbuf data room too small");
	else if (cfg->underlay_mtu < OF_UNDERLAY_MTU_MIN || cfg->underlay_mtu > OF_UNDERLAY_MTU_MAX)
		of_set_error("underlay MTU must be %d to %d bytes", OF_UNDERLAY_MTU_MIN, OF_UNDERLAY_MTU_MAX);
	else
		return 0;
	return -EINVAL;
}

/* Measure a V2P table at two sizes, for the cost of any (memory.h). */
static int
probe_v2p(struct of_dp *dp)
{
	dp->v2p_small_bytes = of_v2p_table_probe(dp->instance, OF_V2P_PROBE_SMALL);
	dp->v2p_large_bytes = of_v2p_table_probe(dp->instance, OF_V2P_PROBE_LARGE);
	if (dp->v2p_small_bytes == 0 || dp->v2p_large_bytes <= dp->v2p_small_bytes) {
		of_set_error("out of EAL memory for a V2P table of %u entries (raise --memory-mb)", OF_V2P_PROBE_LARGE);
		return -ENOMEM;
	}
	return 0;
}

struct of_dp *
of_dp_create(const struct of_dp_config *cfg)
{
	char name[RTE_MEMPOOL_NAMESIZE];
	struct of_flow_timeouts *to;
	struct of_dp *dp;
	size_t qsbr_size, heap_before;

	if (check_config(cfg) != 0)
		return NULL;
	dp = rte_zmalloc("of_dp", sizeof(*dp), RTE_CACHE_LINE_SIZE);
	if (dp == NULL) {
		of_set_error("out of memory: is the EAL initialised with enough memory (-m)?");
		return NULL;
	}
	dp->cfg = *cfg;
	of_hash_key_words(cfg->hash_key, dp->hash_key);
	dp->instance = ++instances;
	to = &dp->timeouts;
	rte_spinlock_init(&dp->link_lock);
	pthread_mutex_init(&dp->reader_lock, NULL);
	dp->link_event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (dp->link_event_fd < 0) {
		of_set_error("cannot create an eventfd: %s", strerror(errno));
		goto fail;
	}
	to->tcp_idle = ms_to_tsc(cfg->tcp_idle_ms);
	to->tcp_closed = ms_to_tsc(cfg->tcp_closed_ms);
	to->udp_idle = ms_to_tsc(cfg->udp_idle_ms);
	to->icmp_idle = ms_to_tsc(cfg->icmp_idle_ms);
	/* A flow outlives its timeout by at most one sweep period. */
	to->sweep_period = RTE_MAX(RTE_MIN(rte_get_tsc_hz(),
					   RTE_MIN(RTE_MIN(to->tcp_closed, to->udp_idle), RTE_MIN(to->icmp_idle, to->tcp_idle)) / 2),
				   rte_get_tsc_hz() / 1000);
	dp->rebalance_tsc = ms_to_tsc(cfg->rebalance_idle_ms);

	snprintf(name, sizeof(name), "of_pool_%u", dp->instance);
	heap_before = of_heap_used();
	dp->pool = rte_pktmbuf_pool_create(name, cfg->n_mbufs, cfg->mbuf_cache, 0, cfg->mbuf_data_room,
					   (int)rte_socket_id());
	if (dp->pool == NULL) {
		of_set_error("cannot create a pool of %u mbufs: %s (raise -m or lower --mbufs)",
			     cfg->n_mbufs, rte_strerror(rte_errno));
		goto fail;
	}
	dp->mbuf_bytes = of_heap_used() - heap_before;
	if (of_prefix_bank_init(&dp->v2b_bank, "V2B", dp->instance, cfg->prefix_capacity) != 0 ||
	    of_prefix_bank_init(&dp->route_bank, "route", dp->instance, cfg->prefix_capacity) != 0 ||
	    probe_v2p(dp) != 0)
		goto fail;
	qsbr_size = rte_rcu_qsbr_get_memsize(RTE_MAX_LCORE);
	dp->qsbr = rte_zmalloc("of_qsbr", qsbr_size, RTE_CACHE_LINE_SIZE);
	if (dp->qsbr == NULL || rte_rcu_qsbr_init(dp->qsbr, RTE_MAX_LCORE) != 0) {
		of_set_error("cannot create the RCU state");
		goto fail;
	}
	/* The main lcore is never a worker (setup_lcores), so its id is free for the reader. */
	dp->reader_thread = rte_get_main_lcore();
	rte_rcu_qsbr_thread_register(dp->qsbr, dp->reader_thread);
	if (of_bfd_create(dp) != 0)
		goto fail;
	/* Empty tables, so workers never see NULL. What they take is what every commit takes. */
	heap_before = of_heap_used();
	if (of_builder_commit(of_builder_new(dp)) != 0)
		goto fail;
	dp->snapshot_bytes = of_heap_used() - heap_before;
	of_telemetry_attach(dp);
	return dp;
fail:
	of_dp_destroy(dp);
	return NULL;
}

static void
free_lcores(struct of_dp *dp)
{
	for (unsigned w = 0; dp->lcores != NULL && w < dp->n_workers; w++)
		of_flow_table_free(dp->lcores[w].flows);
	rte_free(dp->lcores);
	dp->lcores = NULL;
	dp->n_workers = 0;
}

void
of_dp_destroy(struct of_dp *dp)
{
	if (dp == NULL)
		return;
	of_telemetry_detach(dp);
	of_dp_stop(dp);
	of_trace_free(dp);
	of_ports_close(dp);
	free_lcores(dp);
	of_bfd_destroy(dp);
	of_tables_free(dp->tables);
	of_prefix_bank_free(&dp->v2b_bank);
	of_prefix_bank_free(&dp->route_bank);
	rte_free(dp->qsbr);
	if (dp->link_event_fd >= 0)
		close(dp->link_event_fd);
	pthread_mutex_destroy(&dp->reader_lock);
	rte_mempool_free(dp->pool);
	rte_free(dp);
}

static int
setup_lcores(struct of_dp *dp, const unsigned *lcores, unsigned n)
{
	char name[RTE_HASH_NAMESIZE];
	size_t heap_before;

	free_lcores(dp);
	dp->lcores = rte_zmalloc("of_lcores", n * sizeof(*dp->lcores), RTE_CACHE_LINE_SIZE);
	if (dp->lcores == NULL) {
		of_set_error("out of memory for lcore state");
		return -ENOMEM;
	}
	dp->n_workers = n;
	heap_before = of_heap_used();
	for (unsigned w = 0; w < n; w++) {
		struct of_lcore *lc = &dp->lcores[w];

		if (lcores[w] == rte_get_main_lcore() || !rte_lcore_is_enabled(lcores[w])) {
			of_set_error("lcore %u is not a worker lcore of this EAL (give it in -l/--lcores, not as the main lcore)",
				     lcores[w]);
			return -EINVAL;
		}
		lc->dp = dp;
		lc->lcore_id = lcores[w];
		lc->worker = (uint16_t)w;
		snprintf(name, sizeof(name), "of_flows_%u_%u", dp->instance, w);
		lc->flows = of_flow_table_create(name, dp->cfg.flow_capacity, (int)rte_lcore_to_socket_id(lcores[w]));
		if (lc->flows == NULL) {
			of_set_error("cannot allocate a flow table of %u entries: %s (raise --memory-mb or lower --flow-capacity)",
				     dp->cfg.flow_capacity, rte_errno == ENOENT ? "out of EAL memory" : rte_strerror(rte_errno));
			return -ENOMEM;
		}
	}
	dp->flow_bytes = of_heap_used() - heap_before;
	return 0;
}

int
of_dp_start(struct of_dp *dp, const unsigned *lcores, unsigned n_lcores)
{
	int rc;

	if (dp->running) {
		of_set_error("the data plane is running already");
		return -EBUSY;
	}
	if (n_lcores == 0 || n_lcores > RTE_MAX_LCORE) {
		of_set_error("give at least one worker lcore");
		return -EINVAL;
	}
	rc = setup_lcores(dp, lcores, n_lcores);
	if (rc == 0)
		rc = of_handoff_create(dp);
	if (rc == 0)
		rc = of_ports_start(dp);
	if (rc == 0) {
		rc = of_links_watch(dp);
		if (rc == 0) {
			rc = of_bfd_start(dp);
			if (rc != 0)
				of_links_unwatch(dp);
		}
		if (rc != 0)
			of_ports_stop(dp);
	}
	if (rc != 0) {
		of_handoff_free(dp);
		free_lcores(dp);
		return rc;
	}
	/* Worker w polls RX queue w of every port that has one. */
	for (unsigned w = 0; w < n_lcores; w++) {
		struct of_lcore *lc = &dp->lcores[w];

		for (uint16_t p = 0; p < dp->n_ports; p++)
			if (w < dp->ports[p].n_rxq) {
				lc->rx[lc->n_rx].port = p;
				lc->rx[lc->n_rx].queue = (uint16_t)w;
				lc->n_rx++;
			}
	}
	dp->running = 1;
	for (unsigned w = 0; w < n_lcores; w++) {
		rc = rte_eal_remote_launch(of_worker_main, &dp->lcores[w], dp->lcores[w].lcore_id);
		if (rc != 0) {
			of_set_error("cannot launch lcore %u: %s", dp->lcores[w].lcore_id, rte_strerror(-rc));
			of_dp_stop(dp);
			return rc;
		}
	}
	return 0;
}

int
of_dp_stop(struct of_dp *dp)
{
	if (!dp->running)
		return 0;
	__atomic_store_n(&dp->running, 0, __ATOMIC_RELEASE);
	for (unsigned w = 0; w < dp->n_workers; w++)
		rte_eal_wait_lcore(dp->lcores[w].lcore_id);
	/* Before the ports stop: stopping takes their links down, which is no news. */
	of_bfd_stop(dp);
	of_links_unwatch(dp);
	of_handoff_free(dp);
	of_ports_stop(dp);
	return 0;
}

void
of_dp_quiesce(struct of_dp *dp)
{
	rte_rcu_qsbr_synchronize(dp->qsbr, RTE_QSBR_THRID_INVALID);
}
