/*
 * opte-fast: the data plane's public interface, for the Cython bindings.
 *
 * One control thread (the caller of everything here) is the single writer
 * of the forwarding tables; worker lcores only read them. Functions return
 * 0 or a negative errno and leave a message for of_last_error().
 */
#ifndef OPTE_FAST_H
#define OPTE_FAST_H

#include <stdint.h>

#define OF_MAX_PORTS 32
#define OF_MAX_TEPS 1024	/* TEP ids 1..1023; 0 means "no TEP" (V2P) */
#define OF_MAX_NEXTHOPS 1024	/* nexthop ids 1..1023 */
#define OF_MAX_GROUPS 1024	/* TEP sets and nexthop groups, each 0..1023 */
#define OF_MAX_BURST 512
#define OF_NEVER UINT32_MAX

enum of_port_role {
	OF_ROLE_GUEST = 0,
	OF_ROLE_UPLINK = 1,
	OF_ROLE_EXCEPTION = 2,	/* kernel tap of an uplink */
};

struct of_dp_config {
	uint32_t n_mbufs;
	uint32_t mbuf_cache;
	uint16_t mbuf_data_room;	/* bytes, headroom included */
	uint16_t burst;
	uint16_t rx_desc;
	uint16_t tx_desc;
	uint32_t flow_capacity;		/* per worker lcore */
	uint32_t n_buckets;		/* resilient tables, power of two */
	uint32_t hash_seed;
	uint32_t tcp_idle_ms;
	uint32_t tcp_closed_ms;		/* after FIN or RST */
	uint32_t udp_idle_ms;
	uint32_t icmp_idle_ms;
	uint32_t rebalance_idle_ms;	/* OF_NEVER: never move a live flow */
	uint8_t underlay_addr[16];
	uint8_t hop_limit;
	uint8_t flow_label;		/* 0: flow label 0 */
	uint8_t udp_checksum;		/* outbound: full UDP checksum */
	uint8_t verify_udp_checksum;	/* inbound: verify non-zero checksums */
	uint16_t udp_sport_min;
	uint16_t udp_sport_max;
};

struct of_dp;
struct of_builder;

const char *of_last_error(void);

/* EAL: once per process; a second call fails with -EALREADY. */
int of_eal_init(int argc, char **argv);
int of_eal_cleanup(void);

struct of_dp *of_dp_create(const struct of_dp_config *cfg);
void of_dp_destroy(struct of_dp *dp);	/* stops, closes ports, frees */

/* Ports, before of_dp_start. Return the port index (0..OF_MAX_PORTS-1). */
int of_dp_add_port(struct of_dp *dp, const char *devargs, enum of_port_role role, const char *name);
/* A ring port: n_rx_queues RX rings (worker w polls queue w), one TX ring that every worker sends to. */
int of_dp_add_ring_port(struct of_dp *dp, const char *name, enum of_port_role role, uint32_t ring_size,
			uint16_t n_rx_queues);
int of_dp_set_exception(struct of_dp *dp, uint16_t uplink, uint16_t exception_port);
uint16_t of_dp_n_ports(const struct of_dp *dp);

/* Workers: configure and start every port, launch the poll loop on each lcore. */
int of_dp_start(struct of_dp *dp, const unsigned *lcores, unsigned n_lcores);
int of_dp_stop(struct of_dp *dp);	/* waits for the lcores, flushes, stops ports */
/* Wait until every worker has finished the loop iteration it is in (its frames flushed). */
void of_dp_quiesce(struct of_dp *dp);

/* Ring ports (tests, demo): frames in on an RX queue's ring, frames out of the TX ring. */
int of_dp_ring_inject(struct of_dp *dp, uint16_t port, uint16_t queue, const uint8_t *data, const uint32_t *lens,
		      unsigned n);
/* Dequeue up to max frames into buf (room bytes); lens[i] per frame. Returns the count. */
int of_dp_ring_collect(struct of_dp *dp, uint16_t port, uint8_t *buf, uint32_t room, uint32_t *lens, unsigned max);

/* Tables: a builder collects the complete desired state; commit swaps it in. */
struct of_builder *of_builder_new(struct of_dp *dp);
int of_builder_guest(struct of_builder *b, uint16_t port, uint32_t vni, const uint8_t mac[6], const uint8_t gw_mac[6]);
int of_builder_v2p(struct of_builder *b, uint32_t vni, const uint8_t ip[16], const uint8_t underlay[16], const uint8_t mac[6]);
int of_builder_tep(struct of_builder *b, uint16_t id, const uint8_t addr[16], uint32_t vni, int up);
int of_builder_tep_set(struct of_builder *b, uint16_t set, const uint16_t *teps, uint16_t n);
/* prefix: 16 bytes; IPv4 prefixes as v4-mapped with depth 96 + v4 depth. */
int of_builder_v2b(struct of_builder *b, const uint8_t prefix[16], uint8_t depth, uint16_t set);
int of_builder_nexthop(struct of_builder *b, uint16_t id, uint16_t uplink, const uint8_t mac[6], int up);
int of_builder_nh_group(struct of_builder *b, uint16_t group, const uint16_t *nhs, uint16_t n);
int of_builder_route(struct of_builder *b, const uint8_t prefix[16], uint8_t depth, uint16_t group);
/*
 * A TEP set's or nexthop group's bucket table as saved before a restart (member id per
 * bucket, 0xFFFF for none; n = the data plane's bucket count). The commit builds the
 * table from it instead of from the previous snapshot's, so the members still live keep
 * their buckets. Give it only for a set or group new in this commit.
 */
int of_builder_tep_set_restore(struct of_builder *b, uint16_t set, const uint16_t *buckets, uint32_t n);
int of_builder_nh_group_restore(struct of_builder *b, uint16_t group, const uint16_t *buckets, uint32_t n);
/* Build, publish, wait until no worker holds the old tables, free them. Frees b. */
int of_builder_commit(struct of_builder *b);
void of_builder_free(struct of_builder *b);

/* Reading state (control side, any thread; sums per-lcore counters). Reads of the
 * tables (of_dp_buckets) are safe against a concurrent commit. */
unsigned of_counter_count(void);
const char *of_counter_name(unsigned i);
const char *of_counter_description(unsigned i);
int of_counter_drop(unsigned i);
void of_dp_counters(const struct of_dp *dp, uint64_t *out);

struct of_port_stats {
	char name[32];
	uint16_t port_id;
	uint8_t role;
	uint8_t mac[6];
	uint64_t ipackets, opackets, ibytes, obytes, imissed, ierrors, oerrors;
};
int of_dp_port_stats(const struct of_dp *dp, uint16_t port, struct of_port_stats *out);

struct of_path_stats {
	uint64_t flows;		/* currently pinned */
	uint64_t packets;
	uint64_t bytes;
};
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
/* Up to max active flows; returns the count. Racy by design: a snapshot for humans. */
unsigned of_dp_flows(const struct of_dp *dp, struct of_flow_info *out, unsigned max);
uint64_t of_dp_flow_count(const struct of_dp *dp);

/*
 * Link state of a port as its PMD reports it: by LSC interrupt where the PMD
 * offers one, and polled every 2 ms by an EAL alarm (never by a worker).
 * Uplinks and guests are followed while the data plane runs; an exception tap
 * is not (its kernel side is the kernel's).
 */
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

/* Current bucket table of a TEP set (kind 0) or nexthop group (kind 1): member id per bucket. */
int of_dp_buckets(struct of_dp *dp, int kind, uint16_t group, uint16_t *out, uint32_t max);
uint64_t of_dp_table_swaps(const struct of_dp *dp);
uint64_t of_tsc_hz(void);

#endif
