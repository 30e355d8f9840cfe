/*
 * The read side (inspect.c): counters, port and path statistics, flows and
 * bucket tables, for the control side (any thread). Per-lcore counters are
 * summed on read; reads of the tables (of_dp_buckets) are safe against a
 * concurrent commit.
 */
#ifndef OF_INSPECT_H
#define OF_INSPECT_H

#include <stdint.h>

#include "dp_types.h"

unsigned of_counter_count(void);
const char *of_counter_name(unsigned i);
const char *of_counter_description(unsigned i);
int of_counter_drop(unsigned i);
void of_dp_counters(const struct of_dp *dp, uint64_t *out);

struct of_port_stats {
	char name[32];
	char ethdev[64];		/* the ethdev's name, as dpdk-dumpcap -i and dpdk-proc-info know it */
	uint16_t port_id;
	uint8_t role;
	uint8_t mac[6];
	uint64_t ipackets, opackets, ibytes, obytes, imissed, ierrors, oerrors;
};
int of_dp_port_stats(const struct of_dp *dp, uint16_t port, struct of_port_stats *out);

/* Per TEP id (OF_MAX_TEPS) and per nexthop id (OF_MAX_NEXTHOPS), summed. */
void of_dp_path_stats(const struct of_dp *dp, struct of_path_stats *teps, struct of_path_stats *nhs);

struct of_flow_info {
	uint32_t vni;
	uint8_t proto;
	uint8_t src[16], dst[16];
	uint16_t src_port, dst_port;
	uint16_t tep, nexthop, uplink;
	uint16_t udp_sport;
	uint32_t hash;
	uint32_t lcore;
	uint64_t packets, bytes;
	uint64_t idle_ms;
};
/*
 * Up to max active flows, from *cursor on (0: the first); returns the count and leaves in
 * *cursor where the next call resumes, OF_FLOWS_DONE once every table is scanned. Touches no
 * Python and takes no lock: call it without the GIL. Racy by design: a snapshot for humans.
 */
#define OF_FLOWS_DONE UINT64_MAX
unsigned of_dp_flows(const struct of_dp *dp, uint64_t *cursor, struct of_flow_info *out, unsigned max);
uint64_t of_dp_flow_count(const struct of_dp *dp);

/* Current bucket table of a TEP set (kind 0) or nexthop group (kind 1): member id per bucket. */
int of_dp_buckets(struct of_dp *dp, int kind, uint16_t group, uint16_t *out, uint32_t max);
uint64_t of_dp_table_swaps(const struct of_dp *dp);

/* Per worker, in worker order (workers.c): the busy share is busy_polls / polls. */
struct of_worker_stats {
	uint32_t lcore;
	uint32_t worker;
	uint64_t polls;			/* loop iterations */
	uint64_t busy_polls;		/* iterations that received frames or were handed some */
	uint64_t rx_packets;		/* frames it received from its queues */
	uint64_t flows;			/* active in its flow table */
};
/* Up to max workers; returns the count (0 when the data plane is not running). */
unsigned of_dp_workers(const struct of_dp *dp, struct of_worker_stats *out, unsigned max);

/* Reading the current tables outside the workers (telemetry, dumps): between these two calls
 * the snapshot returned stays allocated, whatever commits meanwhile. One reader at a time. */
struct of_tables;
const struct of_tables *of_tables_read_begin(struct of_dp *dp);
void of_tables_read_end(struct of_dp *dp);

#endif
