/*
 * Life cycle of the data plane (control thread): EAL, create, start and
 * stop of the worker lcores, and the read side for counters and dumps.
 */
#include <errno.h>
#include <stdarg.h>
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
#include <rte_ring.h>

#include "dataplane.h"
#include "handoff.h"

static __thread char last_error[256];
static uint32_t instances;

void
of_set_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
}

const char *
of_last_error(void)
{
	return last_error;
}

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
	else if (cfg->n_buckets == 0 || (cfg->n_buckets & (cfg->n_buckets - 1)) != 0 || cfg->n_buckets > 65536)
		of_set_error("buckets must be a power of two up to 65536");
	else if (cfg->udp_sport_min > cfg->udp_sport_max)
		of_set_error("UDP source port range is empty");
	else if (cfg->flow_capacity < 8)
		of_set_error("flow capacity must be at least 8");
	else if (cfg->mbuf_data_room < RTE_PKTMBUF_HEADROOM + RTE_ETHER_MIN_LEN)
		of_set_error("mbuf data room too small");
	else
		return 0;
	return -EINVAL;
}

struct of_dp *
of_dp_create(const struct of_dp_config *cfg)
{
	char name[RTE_MEMPOOL_NAMESIZE];
	struct of_dp *dp;
	size_t qsbr_size;

	if (check_config(cfg) != 0)
		return NULL;
	dp = rte_zmalloc("of_dp", sizeof(*dp), RTE_CACHE_LINE_SIZE);
	if (dp == NULL) {
		of_set_error("out of memory: is the EAL initialised with enough memory (-m)?");
		return NULL;
	}
	dp->cfg = *cfg;
	dp->instance = ++instances;
	rte_spinlock_init(&dp->link_lock);
	pthread_mutex_init(&dp->reader_lock, NULL);
	dp->link_event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (dp->link_event_fd < 0) {
		of_set_error("cannot create an eventfd: %s", strerror(errno));
		goto fail;
	}
	dp->tcp_idle_tsc = ms_to_tsc(cfg->tcp_idle_ms);
	dp->tcp_closed_tsc = ms_to_tsc(cfg->tcp_closed_ms);
	dp->udp_idle_tsc = ms_to_tsc(cfg->udp_idle_ms);
	dp->icmp_idle_tsc = ms_to_tsc(cfg->icmp_idle_ms);
	dp->rebalance_tsc = ms_to_tsc(cfg->rebalance_idle_ms);
	/* A flow outlives its timeout by at most one sweep period. */
	dp->sweep_period_tsc = RTE_MAX(RTE_MIN(rte_get_tsc_hz(),
					       RTE_MIN(RTE_MIN(dp->tcp_closed_tsc, dp->udp_idle_tsc),
						       RTE_MIN(dp->icmp_idle_tsc, dp->tcp_idle_tsc)) / 2),
				       rte_get_tsc_hz() / 1000);

	snprintf(name, sizeof(name), "of_pool_%u", dp->instance);
	dp->pool = rte_pktmbuf_pool_create(name, cfg->n_mbufs, cfg->mbuf_cache, 0, cfg->mbuf_data_room,
					   (int)rte_socket_id());
	if (dp->pool == NULL) {
		of_set_error("cannot create a pool of %u mbufs: %s (raise -m or lower --mbufs)",
			     cfg->n_mbufs, rte_strerror(rte_errno));
		goto fail;
	}
	qsbr_size = rte_rcu_qsbr_get_memsize(RTE_MAX_LCORE);
	dp->qsbr = rte_zmalloc("of_qsbr", qsbr_size, RTE_CACHE_LINE_SIZE);
	if (dp->qsbr == NULL || rte_rcu_qsbr_init(dp->qsbr, RTE_MAX_LCORE) != 0) {
		of_set_error("cannot create the RCU state");
		goto fail;
	}
	/* The main lcore is never a worker (setup_lcores), so its id is free for the reader. */
	dp->reader_thread = rte_get_main_lcore();
	rte_rcu_qsbr_thread_register(dp->qsbr, dp->reader_thread);
	/* Empty tables, so workers never see NULL. */
	if (of_builder_commit(of_builder_new(dp)) != 0)
		goto fail;
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
	of_ports_close(dp);
	free_lcores(dp);
	of_tables_free(dp->tables);
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

	free_lcores(dp);
	dp->lcores = rte_zmalloc("of_lcores", n * sizeof(*dp->lcores), RTE_CACHE_LINE_SIZE);
	if (dp->lcores == NULL) {
		of_set_error("out of memory for lcore state");
		return -ENOMEM;
	}
	dp->n_workers = n;
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

int
of_dp_ring_inject(struct of_dp *dp, uint16_t port, uint16_t queue, const uint8_t *data, const uint32_t *lens,
		  unsigned n)
{
	struct rte_mbuf *m;
	unsigned done = 0;

	if (port >= dp->n_ports || dp->ports[port].ring_tx == NULL) {
		of_set_error("port %u is not a ring port", port);
		return -EINVAL;
	}
	if (queue >= dp->ports[port].n_ring_rx) {
		of_set_error("ring port %u has no RX queue %u", port, queue);
		return -EINVAL;
	}
	for (; done < n; data += lens[done], done++) {
		if (lens[done] > (uint32_t)dp->cfg.mbuf_data_room - RTE_PKTMBUF_HEADROOM)
			break;
		m = rte_pktmbuf_alloc(dp->pool);
		if (m == NULL)
			break;
		memcpy(rte_pktmbuf_append(m, (uint16_t)lens[done]), data, lens[done]);
		if (rte_ring_enqueue(dp->ports[port].ring_rx[queue], m) != 0) {
			rte_pktmbuf_free(m);
			break;
		}
	}
	return (int)done;
}

int
of_dp_ring_collect(struct of_dp *dp, uint16_t port, uint8_t *buf, uint32_t room, uint32_t *lens, unsigned max)
{
	struct rte_mbuf *m;
	unsigned n = 0;

	if (port >= dp->n_ports || dp->ports[port].ring_tx == NULL) {
		of_set_error("port %u is not a ring port", port);
		return -EINVAL;
	}
	while (n < max && rte_ring_dequeue(dp->ports[port].ring_tx, (void **)&m) == 0) {
		uint32_t len = rte_pktmbuf_pkt_len(m);

		if (len > room) {
			/* Put nothing back out of order: the caller asked for too little room. */
			of_set_error("collect buffer too small for a %u-byte frame", len);
			rte_pktmbuf_free(m);
			return -ENOSPC;
		}
		const void *src = rte_pktmbuf_read(m, 0, len, buf);
		if (src != buf)
			memcpy(buf, src, len);
		lens[n++] = len;
		buf += len;
		room -= len;
		rte_pktmbuf_free(m);
	}
	return (int)n;
}

unsigned
of_counter_count(void)
{
	return OF_N_COUNTERS;
}

const char *
of_counter_name(unsigned i)
{
	return i < OF_N_COUNTERS ? of_counter_names[i] : NULL;
}

const char *
of_counter_description(unsigned i)
{
	return i < OF_N_COUNTERS ? of_counter_help[i] : NULL;
}

int
of_counter_drop(unsigned i)
{
	return i < OF_N_COUNTERS ? of_counter_is_drop[i] : 0;
}

void
of_dp_counters(const struct of_dp *dp, uint64_t *out)
{
	memset(out, 0, OF_N_COUNTERS * sizeof(*out));
	for (unsigned w = 0; w < dp->n_workers; w++)
		for (unsigned c = 0; c < OF_N_COUNTERS; c++)
			out[c] += __atomic_load_n(&dp->lcores[w].counters[c], __ATOMIC_RELAXED);
}

int
of_dp_port_stats(const struct of_dp *dp, uint16_t port, struct of_port_stats *out)
{
	const struct of_port *p;
	struct rte_eth_stats st;

	if (port >= dp->n_ports) {
		of_set_error("no port %u", port);
		return -EINVAL;
	}
	p = &dp->ports[port];
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", p->name);
	out->port_id = p->port_id;
	out->role = p->role;
	memcpy(out->mac, p->mac.addr_bytes, 6);
	if (rte_eth_stats_get(p->port_id, &st) == 0) {
		out->ipackets = st.ipackets;
		out->opackets = st.opackets;
		out->ibytes = st.ibytes;
		out->obytes = st.obytes;
		out->imissed = st.imissed;
		out->ierrors = st.ierrors;
		out->oerrors = st.oerrors;
	}
	return 0;
}

void
of_dp_path_stats(const struct of_dp *dp, struct of_path_stats *teps, struct of_path_stats *nhs)
{
	memset(teps, 0, OF_MAX_TEPS * sizeof(*teps));
	memset(nhs, 0, OF_MAX_NEXTHOPS * sizeof(*nhs));
	for (unsigned w = 0; w < dp->n_workers; w++) {
		const struct of_lcore *lc = &dp->lcores[w];

		for (unsigned i = 0; i < OF_MAX_TEPS; i++) {
			teps[i].flows += lc->tep[i].flows;
			teps[i].packets += lc->tep[i].packets;
			teps[i].bytes += lc->tep[i].bytes;
		}
		for (unsigned i = 0; i < OF_MAX_NEXTHOPS; i++) {
			nhs[i].flows += lc->nh[i].flows;
			nhs[i].packets += lc->nh[i].packets;
			nhs[i].bytes += lc->nh[i].bytes;
		}
	}
}

unsigned
of_dp_flows(const struct of_dp *dp, struct of_flow_info *out, unsigned max)
{
	uint64_t now = rte_rdtsc(), hz = rte_get_tsc_hz();
	unsigned n = 0;

	for (unsigned w = 0; w < dp->n_workers && n < max; w++) {
		const struct of_flow_table *ft = dp->lcores[w].flows;

		for (uint32_t i = 0; i < ft->n_entries && n < max; i++) {
			const struct of_flow_entry *e = &ft->entries[i];
			struct of_flow_info *f = &out[n];
			uint64_t last = e->last_tsc;

			if (!__atomic_load_n(&e->in_use, __ATOMIC_ACQUIRE))
				continue;
			f->vni = e->key.vni;
			f->proto = e->key.proto;
			memcpy(f->src, e->key.src, 16);
			memcpy(f->dst, e->key.dst, 16);
			f->src_port = e->key.src_port;
			f->dst_port = e->key.dst_port;
			f->tep = e->path.tep;
			f->nexthop = e->path.nh;
			f->uplink = e->path.uplink;
			f->udp_sport = (uint16_t)((e->path.outer[54] << 8) | e->path.outer[55]);
			f->hash = e->hash;
			f->lcore = dp->lcores[w].lcore_id;
			f->packets = e->packets;
			f->bytes = e->bytes;
			f->idle_ms = now > last ? (now - last) * 1000 / hz : 0;
			n++;
		}
	}
	return n;
}

uint64_t
of_dp_flow_count(const struct of_dp *dp)
{
	uint64_t n = 0;

	for (unsigned w = 0; w < dp->n_workers; w++)
		n += dp->lcores[w].flows->n_active;
	return n;
}

/*
 * A reader of the tables outside the workers holds a snapshot the way a worker
 * does: online in the QSBR variable from before it loads the pointer until it
 * is done, so a concurrent commit waits for it before freeing that snapshot.
 * Readers are rare and short, so they share one thread id, one at a time.
 */
static const struct of_tables *
tables_read_begin(struct of_dp *dp)
{
	pthread_mutex_lock(&dp->reader_lock);
	rte_rcu_qsbr_thread_online(dp->qsbr, dp->reader_thread);
	return __atomic_load_n(&dp->tables, __ATOMIC_ACQUIRE);
}

static void
tables_read_end(struct of_dp *dp)
{
	rte_rcu_qsbr_thread_offline(dp->qsbr, dp->reader_thread);
	pthread_mutex_unlock(&dp->reader_lock);
}

static int
copy_buckets(const struct of_tables *t, int kind, uint16_t group, uint16_t *out, uint32_t max)
{
	const struct of_resilient *r;

	if (group >= OF_MAX_GROUPS) {
		of_set_error("group id out of range");
		return -EINVAL;
	}
	r = kind == 0 ? t->tep_sets[group] : t->nh_groups[group];
	if (r == NULL) {
		of_set_error("no such %s", kind == 0 ? "TEP set" : "nexthop group");
		return -ENOENT;
	}
	if (max < r->n_buckets) {
		of_set_error("room for %u buckets, table has %u", max, r->n_buckets);
		return -ENOSPC;
	}
	memcpy(out, r->bucket, r->n_buckets * sizeof(*out));
	return (int)r->n_buckets;
}

int
of_dp_buckets(struct of_dp *dp, int kind, uint16_t group, uint16_t *out, uint32_t max)
{
	int rc = copy_buckets(tables_read_begin(dp), kind, group, out, max);

	tables_read_end(dp);
	return rc;
}

uint64_t
of_dp_table_swaps(const struct of_dp *dp)
{
	return dp->table_swaps;
}
