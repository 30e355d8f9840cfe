/*
 * DPDK telemetry for the data plane, so the tools operators already use
 * (dpdk-telemetry.py, exporters built on the telemetry socket) see opte-fast
 * beside the ethdev statistics:
 *   /opte_fast/counters        every counter of counters.def, summed over lcores
 *   /opte_fast/drops           the drop reasons alone
 *   /opte_fast/flows           active flows and table swaps
 *   /opte_fast/ports           per port: ethdev, role, link, traffic
 *   /opte_fast/workers         per worker lcore: polls, busy polls, packets, flows
 *   /opte_fast/nexthops[,ID]   per nexthop id from ID: route, uplink, up, flows, traffic
 *   /opte_fast/teps[,ID]       per TEP id from ID: V2B prefix, address, up, flows, traffic
 * Telemetry dict keys may hold only letters, digits, '_' and '/', and a reply
 * at most 16 KB, so members are keyed "nh<id>" and "tep<id>" and listed at
 * most MEMBERS_PER_REPLY at a time, with "next" naming the id to ask from.
 * Callbacks run on DPDK's telemetry thread; the lock keeps them off a data
 * plane that is being destroyed (control side only, never the packet path),
 * and they answer only while the workers run, when the lcore state is fixed.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_telemetry.h>

#include "compat.h"
#include "counters.h"
#include "dp.h"
#include "error.h"
#include "inspect.h"
#include "link.h"
#include "tables.h"
#include "telemetry.h"

#define MEMBERS_PER_REPLY 48
#define NAME_LEN 48

_Static_assert(OF_MAX_TEPS == OF_MAX_NEXTHOPS, "member_names holds both kinds in one size");

static pthread_mutex_t telemetry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct of_dp *telemetry_dp;
static int registered;

/* What each TEP (kind 0) and nexthop (kind 1) id stands for, from the control plane. */
static struct {
	char prefix[NAME_LEN];
	char gateway[NAME_LEN];
} member_names[2][OF_MAX_NEXTHOPS];

static int
counters_cb(const char *cmd __rte_unused, const char *params __rte_unused, struct rte_tel_data *d)
{
	uint64_t values[OF_N_COUNTERS];

	rte_tel_data_start_dict(d);
	pthread_mutex_lock(&telemetry_lock);
	if (telemetry_dp != NULL && telemetry_dp->running) {
		of_dp_counters(telemetry_dp, values);
		for (unsigned i = 0; i < OF_N_COUNTERS; i++)
			of_tel_dict_add_u64(d, of_counter_names[i], values[i]);
	}
	pthread_mutex_unlock(&telemetry_lock);
	return 0;
}

static int
drops_cb(const char *cmd __rte_unused, const char *params __rte_unused, struct rte_tel_data *d)
{
	uint64_t values[OF_N_COUNTERS];

	rte_tel_data_start_dict(d);
	pthread_mutex_lock(&telemetry_lock);
	if (telemetry_dp != NULL && telemetry_dp->running) {
		of_dp_counters(telemetry_dp, values);
		for (unsigned i = 0; i < OF_N_COUNTERS; i++)
			if (of_counter_is_drop[i])
				of_tel_dict_add_u64(d, of_counter_names[i], values[i]);
	}
	pthread_mutex_unlock(&telemetry_lock);
	return 0;
}

static int
flows_cb(const char *cmd __rte_unused, const char *params __rte_unused, struct rte_tel_data *d)
{
	rte_tel_data_start_dict(d);
	pthread_mutex_lock(&telemetry_lock);
	if (telemetry_dp != NULL && telemetry_dp->running) {
		of_tel_dict_add_u64(d, "active_flows", of_dp_flow_count(telemetry_dp));
		of_tel_dict_add_u64(d, "flow_capacity",
				    (uint64_t)telemetry_dp->cfg.flow_capacity * telemetry_dp->n_workers);
		of_tel_dict_add_u64(d, "table_swaps", of_dp_table_swaps(telemetry_dp));
	}
	pthread_mutex_unlock(&telemetry_lock);
	return 0;
}

/* A port name as a telemetry key: characters it cannot hold become '_'. */
static void
port_key(const char *name, char *key, size_t size)
{
	size_t i;

	for (i = 0; name[i] != '\0' && i + 1 < size; i++)
		key[i] = isalnum((unsigned char)name[i]) || name[i] == '_' ? name[i] : '_';
	key[i] = '\0';
}

static const char *const role_names[] = {"guest", "uplink", "exception"};

static int
ports_cb(const char *cmd __rte_unused, const char *params __rte_unused, struct rte_tel_data *d)
{
	rte_tel_data_start_dict(d);
	pthread_mutex_lock(&telemetry_lock);
	for (uint16_t i = 0; telemetry_dp != NULL && telemetry_dp->running && i < telemetry_dp->n_ports; i++) {
		struct rte_tel_data *p = rte_tel_data_alloc();
		struct of_port_stats st;
		struct of_link_info link;
		char key[32];

		if (p == NULL || of_dp_port_stats(telemetry_dp, i, &st) != 0 || of_dp_link(telemetry_dp, i, &link) != 0) {
			rte_tel_data_free(p);
			break;
		}
		rte_tel_data_start_dict(p);
		rte_tel_data_add_dict_string(p, "name", st.name);
		rte_tel_data_add_dict_string(p, "ethdev", st.ethdev);
		of_tel_dict_add_u64(p, "port_id", st.port_id);
		rte_tel_data_add_dict_string(p, "role", st.role < RTE_DIM(role_names) ? role_names[st.role] : "?");
		rte_tel_data_add_dict_string(p, "link", !link.watched ? "unwatched" : link.up ? "up" : "down");
		of_tel_dict_add_u64(p, "link_changes", link.changes);
		of_tel_dict_add_u64(p, "rx_packets", st.ipackets);
		of_tel_dict_add_u64(p, "tx_packets", st.opackets);
		of_tel_dict_add_u64(p, "rx_bytes", st.ibytes);
		of_tel_dict_add_u64(p, "tx_bytes", st.obytes);
		of_tel_dict_add_u64(p, "rx_missed", st.imissed);
		of_tel_dict_add_u64(p, "rx_errors", st.ierrors);
		of_tel_dict_add_u64(p, "tx_errors", st.oerrors);
		port_key(st.name, key, sizeof(key));
		/* Two names may map to one key ("a.b", "a_b"): the second gets its index too. */
		for (uint16_t j = 0; j < i; j++) {
			char other[32];

			port_key(telemetry_dp->ports[j].name, other, sizeof(other));
			if (strcmp(other, key) == 0) {
				snprintf(key, sizeof(key), "port%u", i);
				break;
			}
		}
		rte_tel_data_add_dict_container(d, key, p, 0);
	}
	pthread_mutex_unlock(&telemetry_lock);
	return 0;
}

static int
workers_cb(const char *cmd __rte_unused, const char *params __rte_unused, struct rte_tel_data *d)
{
	struct of_worker_stats w[RTE_MAX_LCORE];
	unsigned n = 0;

	rte_tel_data_start_dict(d);
	pthread_mutex_lock(&telemetry_lock);
	if (telemetry_dp != NULL)
		n = of_dp_workers(telemetry_dp, w, RTE_DIM(w));
	for (unsigned i = 0; i < n; i++) {
		struct rte_tel_data *c = rte_tel_data_alloc();
		char key[32];

		if (c == NULL)
			break;
		rte_tel_data_start_dict(c);
		of_tel_dict_add_u64(c, "lcore", w[i].lcore);
		of_tel_dict_add_u64(c, "worker", w[i].worker);
		of_tel_dict_add_u64(c, "polls", w[i].polls);
		of_tel_dict_add_u64(c, "busy_polls", w[i].busy_polls);
		of_tel_dict_add_u64(c, "rx_packets", w[i].rx_packets);
		of_tel_dict_add_u64(c, "flows", w[i].flows);
		of_tel_dict_add_u64(c, "flow_capacity", telemetry_dp->cfg.flow_capacity);
		snprintf(key, sizeof(key), "lcore%u", w[i].lcore);
		rte_tel_data_add_dict_container(d, key, c, 0);
	}
	pthread_mutex_unlock(&telemetry_lock);
	return 0;
}

/* The first id a member listing starts from: none given is 0; anything else must be an id. */
static int
first_id(const char *params, unsigned *id)
{
	char *end;
	unsigned long v;

	if (params == NULL || *params == '\0') {
		*id = 0;
		return 0;
	}
	errno = 0;
	v = strtoul(params, &end, 10);
	if (errno != 0 || *end != '\0' || v >= OF_MAX_NEXTHOPS)
		return -EINVAL;
	*id = (unsigned)v;
	return 0;
}

static void
format_mac(char *out, size_t size, const uint8_t mac[6])
{
	snprintf(out, size, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

/* TEPs (kind 0) or nexthops (kind 1) with a name, from the id given, as the tables hold them now. */
static int
members_cb(int kind, const char *params, struct rte_tel_data *d)
{
	static struct of_path_stats teps[OF_MAX_TEPS], nhs[OF_MAX_NEXTHOPS];	/* under the lock */
	unsigned from, listed = 0;

	if (first_id(params, &from) != 0)
		return -EINVAL;
	rte_tel_data_start_dict(d);
	pthread_mutex_lock(&telemetry_lock);
	if (telemetry_dp == NULL || !telemetry_dp->running)
		goto out;
	of_dp_path_stats(telemetry_dp, teps, nhs);
	const struct of_tables *t = of_tables_read_begin(telemetry_dp);

	for (unsigned id = from; id < OF_MAX_NEXTHOPS; id++) {
		const struct of_path_stats *ps = kind == 0 ? &teps[id] : &nhs[id];
		struct rte_tel_data *c;
		char key[16], text[INET6_ADDRSTRLEN + 20];

		if (member_names[kind][id].prefix[0] == '\0')
			continue;
		if (listed == MEMBERS_PER_REPLY) {
			of_tel_dict_add_u64(d, "next", id);
			break;
		}
		c = rte_tel_data_alloc();
		if (c == NULL)
			break;
		rte_tel_data_start_dict(c);
		of_tel_dict_add_u64(c, "id", id);
		rte_tel_data_add_dict_string(c, "prefix", member_names[kind][id].prefix);
		if (kind == 0) {
			const struct of_tep *tep = &t->teps[id];

			inet_ntop(AF_INET6, tep->addr, text, sizeof(text));
			rte_tel_data_add_dict_string(c, "addr", text);
			of_tel_dict_add_u64(c, "vni", tep->vni);
			of_tel_dict_add_u64(c, "up", tep->gen != 0);
		} else {
			const struct of_nexthop *nh = &t->nhs[id];

			rte_tel_data_add_dict_string(c, "gateway", member_names[kind][id].gateway);
			rte_tel_data_add_dict_string(c, "uplink", nh->uplink < telemetry_dp->n_ports ?
						     telemetry_dp->ports[nh->uplink].name : "");
			format_mac(text, sizeof(text), nh->mac);
			rte_tel_data_add_dict_string(c, "mac", text);
			of_tel_dict_add_u64(c, "up", nh->gen != 0);
		}
		of_tel_dict_add_u64(c, "flows", ps->flows);
		of_tel_dict_add_u64(c, "packets", ps->packets);
		of_tel_dict_add_u64(c, "bytes", ps->bytes);
		snprintf(key, sizeof(key), "%s%u", kind == 0 ? "tep" : "nh", id);
		rte_tel_data_add_dict_container(d, key, c, 0);
		listed++;
	}
	of_tables_read_end(telemetry_dp);
out:
	pthread_mutex_unlock(&telemetry_lock);
	return 0;
}

static int
teps_cb(const char *cmd __rte_unused, const char *params, struct rte_tel_data *d)
{
	return members_cb(0, params, d);
}

static int
nexthops_cb(const char *cmd __rte_unused, const char *params, struct rte_tel_data *d)
{
	return members_cb(1, params, d);
}

int
of_dp_name_member(struct of_dp *dp, int kind, uint16_t id, const char *prefix, const char *gateway)
{
	if ((kind != 0 && kind != 1) || id >= OF_MAX_NEXTHOPS) {
		of_set_error("no %s id %u", kind == 0 ? "TEP" : "nexthop", id);
		return -EINVAL;
	}
	if (strlen(prefix) >= NAME_LEN || strlen(gateway) >= NAME_LEN) {
		of_set_error("member names are at most %d bytes", NAME_LEN - 1);
		return -EINVAL;
	}
	pthread_mutex_lock(&telemetry_lock);
	if (telemetry_dp == dp) {
		snprintf(member_names[kind][id].prefix, NAME_LEN, "%s", prefix);
		snprintf(member_names[kind][id].gateway, NAME_LEN, "%s", gateway);
	}
	pthread_mutex_unlock(&telemetry_lock);
	return 0;
}

static const struct {
	const char *cmd;
	telemetry_cb fn;
	const char *help;
} commands[] = {
	{"/opte_fast/counters", counters_cb, "opte-fast counters and drop reasons, summed over lcores. No parameters"},
	{"/opte_fast/drops", drops_cb, "opte-fast packets dropped, per reason, summed over lcores. No parameters"},
	{"/opte_fast/flows", flows_cb, "opte-fast active flows, flow-table capacity and table swaps. No parameters"},
	{"/opte_fast/ports", ports_cb, "opte-fast ports: ethdev, role, link and traffic. No parameters"},
	{"/opte_fast/workers", workers_cb,
	 "opte-fast worker lcores: loop polls, polls that found frames, packets, flows. No parameters"},
	{"/opte_fast/nexthops", nexthops_cb,
	 "opte-fast nexthops: route, gateway, uplink, up, flows, traffic. Parameter: first nexthop id (\"next\")"},
	{"/opte_fast/teps", teps_cb,
	 "opte-fast TEPs: V2B prefix, address, up, flows, traffic. Parameter: first TEP id (\"next\")"},
};

void
of_telemetry_attach(struct of_dp *dp)
{
	pthread_mutex_lock(&telemetry_lock);
	telemetry_dp = dp;
	memset(member_names, 0, sizeof(member_names));
	/* Commands register once per process and serve whichever data plane is current. */
	if (!registered) {
		for (unsigned i = 0; i < RTE_DIM(commands); i++)
			rte_telemetry_register_cmd(commands[i].cmd, commands[i].fn, commands[i].help);
		registered = 1;
	}
	pthread_mutex_unlock(&telemetry_lock);
}

void
of_telemetry_detach(struct of_dp *dp)
{
	pthread_mutex_lock(&telemetry_lock);
	if (telemetry_dp == dp)
		telemetry_dp = NULL;
	pthread_mutex_unlock(&telemetry_lock);
}
