/*
 * The data plane's public constants and types: limits, port roles, the
 * configuration, per-path statistics. Plain C, no functions, so that every
 * file can share them: the public interface (opte_fast.h), the life cycle,
 * the control side and the packet path alike.
 */
#ifndef OF_DP_TYPES_H
#define OF_DP_TYPES_H

#include <stdint.h>

#define OF_MAX_PORTS 32
#define OF_MAX_TEPS 1024	/* TEP ids 1..1023; 0 means "no TEP" (V2P) */
#define OF_MAX_NEXTHOPS 1024	/* nexthop ids 1..1023 */
#define OF_MAX_GROUPS 1024	/* TEP sets and nexthop groups, each 0..1023 */
#define OF_MAX_BURST 512
#define OF_NEVER UINT32_MAX
#define OF_HASH_KEY_LEN 64	/* bytes of the flow hash's secret key (flow_hash.h) */
/* An id that names nothing: no port, no TEP or nexthop, no TEP set or nexthop group, no worker.
 * Never a valid id of any of them. */
#define OF_NO_ID 0xFFFF

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
	uint32_t tcp_idle_ms;
	uint32_t tcp_closed_ms;		/* after FIN or RST */
	uint32_t udp_idle_ms;
	uint32_t icmp_idle_ms;
	uint32_t rebalance_idle_ms;	/* OF_NEVER: never move a live flow */
	uint8_t underlay_addr[16];
	uint8_t hash_key[OF_HASH_KEY_LEN];	/* the flow hash's secret: random, kept across restarts */
	uint8_t hop_limit;
	uint8_t flow_label;		/* 0: flow label 0 */
	uint8_t udp_checksum;		/* outbound: full UDP checksum */
	uint8_t verify_udp_checksum;	/* inbound: verify non-zero checksums */
	uint8_t strict_underlay;	/* inbound: only from TEPs, and from sleds for their V2P guests */
	uint16_t udp_sport_min;
	uint16_t udp_sport_max;
	uint32_t prefix_capacity;	/* prefixes in the V2B table and in the route table, each */
};

struct of_path_stats {
	uint64_t flows;		/* currently pinned */
	uint64_t packets;
	uint64_t bytes;
};

struct of_dp;
struct of_builder;

#endif
