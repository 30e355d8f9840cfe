/*
 * The read side (inspect.h): counters summed over lcores, port and path
 * statistics, flows, bucket tables. Control side, any thread; never a worker.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_rcu_qsbr.h>

#include "counters.h"
#include "dp.h"
#include "error.h"
#include "flow.h"
#include "inspect.h"
#include "lcore.h"
#include "resilient.h"
#include "tables.h"

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
	/* An empty pool loses frames before a worker sees them: the ports count those. */
	for (uint16_t p = 0; p < dp->n_ports; p++) {
		struct rte_eth_stats st;

		out[OF_C_RX_NO_MBUF] += __atomic_load_n(&dp->ports[p].ring_rx_no_mbuf, __ATOMIC_RELAXED);
		if (rte_eth_stats_get(dp->ports[p].port_id, &st) == 0)
			out[OF_C_RX_NO_MBUF] += st.rx_nombuf;
	}
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
	if (rte_eth_dev_get_name_by_port(p->port_id, out->ethdev) != 0)
		out->ethdev[0] = '\0';
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

/* A cursor is the worker in the high 32 bits and the entry in its table in the low 32. */
unsigned
of_dp_flows(const struct of_dp *dp, uint64_t *cursor, struct of_flow_info *out, unsigned max)
{
	uint64_t now = rte_rdtsc(), hz = rte_get_tsc_hz();
	unsigned w = (unsigned)(*cursor >> 32);
	uint32_t i = (uint32_t)*cursor;
	unsigned n = 0;

	if (*cursor == OF_FLOWS_DONE)
		return 0;
	for (; w < dp->n_workers; w++, i = 0) {
		const struct of_flow_table *ft = dp->lcores[w].flows;

		for (; i < ft->n_entries; i++) {
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
			f->udp_sport = e->path.udp_sport;
			f->hash = e->hash;
			f->lcore = dp->lcores[w].lcore_id;
			f->packets = e->packets;
			f->bytes = e->bytes;
			f->idle_ms = now > last ? (now - last) * 1000 / hz : 0;
			if (++n == max) {
				*cursor = ((uint64_t)w << 32) | (i + 1);
				return n;
			}
		}
	}
	*cursor = OF_FLOWS_DONE;
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
const struct of_tables *
of_tables_read_begin(struct of_dp *dp)
{
	pthread_mutex_lock(&dp->reader_lock);
	rte_rcu_qsbr_thread_online(dp->qsbr, dp->reader_thread);
	return __atomic_load_n(&dp->tables, __ATOMIC_ACQUIRE);
}

void
of_tables_read_end(struct of_dp *dp)
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
	int rc = copy_buckets(of_tables_read_begin(dp), kind, group, out, max);

	of_tables_read_end(dp);
	return rc;
}

uint64_t
of_dp_table_swaps(const struct of_dp *dp)
{
	return dp->table_swaps;
}
