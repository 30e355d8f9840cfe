/*
 * The packet path's own cost, without ports or a traffic source: frames of
 * --flows distinct UDP flows (64-byte guest frames outbound, their Geneve
 * form inbound) go through of_outbound_burst / of_inbound_burst on this
 * thread, bursts of 32 in a seeded random order, and leave on ring ports
 * that the driver drains. Prints instructions are not counted here: run it
 * under callgrind (bench/path-profile.sh) for instructions and simulated
 * cache misses per packet, which do not depend on the machine's load; the
 * TSC figures it prints itself do.
 *
 * The table is filled first (every flow created once: the new-flow rate),
 * then --bursts bursts of known flows are measured. Under callgrind only the
 * measured bursts are collected (--collect-atstart=no).
 */
#define _GNU_SOURCE	/* nftw (runtime_dir.h) */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ip.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_udp.h>
#include <valgrind/callgrind.h>

#include "dp.h"
#include "flow.h"
#include "guest_net.h"
#include "heap.h"
#include "inbound.h"
#include "lcore.h"
#include "opte_fast.h"
#include "outbound.h"
#include "runtime_dir.h"
#include "tables.h"
#include "tx.h"
#include "wire.h"

#define BURST		32
#define GUEST_VNI	0x00abcd
#define GUEST_FRAME_LEN	64

static const uint8_t guest_mac[6] = { 0xa8, 0x40, 0x25, 0xf0, 0x00, 0x01 };
static const uint8_t gw_mac[6] = { 0xa8, 0x40, 0x25, 0xff, 0x00, 0x01 };
static const uint8_t nh_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x99 };
static const uint8_t underlay[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
static const uint8_t tep_addr[16] = { 0xfd, 0, 0, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10 };

static void
die(const char *what)
{
	fprintf(stderr, "path_profile: %s: %s\n", what, of_last_error());
	exit(1);
}

/* xorshift64*: the same flow order on every run. */
static uint32_t
rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return (uint32_t)((*s * UINT64_C(2685821657736338717)) >> 32);
}

/* Guest frame of flow f: UDP 10.0.0.2 (the guest's address, which anti-spoofing checks):(1024 + f % 50000)
 * -> 192.168.x.y:80, padded to 64 bytes. */
static void
write_guest_frame(uint8_t *p, uint32_t f)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)p;
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
	uint32_t host = f / 50000;

	memset(p, 0, GUEST_FRAME_LEN);
	memcpy(&eth->dst_addr, gw_mac, 6);
	memcpy(&eth->src_addr, guest_mac, 6);
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = rte_cpu_to_be_16(GUEST_FRAME_LEN - sizeof(*eth));
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_UDP;
	ip->src_addr = rte_cpu_to_be_32(RTE_IPV4(10, 0, 0, 2));
	ip->dst_addr = rte_cpu_to_be_32(RTE_IPV4(192, 168, (host >> 8) & 0xff, host & 0xff));
	udp->src_port = rte_cpu_to_be_16((uint16_t)(1024 + f % 50000));
	udp->dst_port = rte_cpu_to_be_16(80);
	udp->dgram_len = rte_cpu_to_be_16(GUEST_FRAME_LEN - sizeof(*eth) - sizeof(*ip));
}

/* The same guest frame as it arrives for this sled: Ethernet, IPv6, UDP, Geneve, then the frame to the guest. */
static uint32_t
write_geneve_frame(uint8_t *p, uint32_t f)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)p;
	struct rte_ipv6_hdr *ip6 = (struct rte_ipv6_hdr *)(eth + 1);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip6 + 1);
	struct of_geneve_hdr *gnv = (struct of_geneve_hdr *)(udp + 1);
	uint8_t *inner = (uint8_t *)(gnv + 1);

	memset(p, 0, OF_OUTER_HDR_LEN);
	memcpy(&eth->dst_addr, nh_mac, 6);
	memcpy(&eth->src_addr, nh_mac, 6);
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6);
	ip6->vtc_flow = rte_cpu_to_be_32(6u << 28);
	ip6->payload_len = rte_cpu_to_be_16(sizeof(*udp) + sizeof(*gnv) + GUEST_FRAME_LEN);
	ip6->proto = IPPROTO_UDP;
	ip6->hop_limits = 64;
	memcpy(&ip6->src_addr, tep_addr, 16);
	memcpy(&ip6->dst_addr, underlay, 16);
	udp->src_port = rte_cpu_to_be_16(49152);
	udp->dst_port = rte_cpu_to_be_16(OF_GENEVE_PORT);
	udp->dgram_len = ip6->payload_len;
	gnv->protocol = rte_cpu_to_be_16(OF_GENEVE_PROTO_ETHER);
	gnv->vni[0] = (uint8_t)(GUEST_VNI >> 16);
	gnv->vni[1] = (uint8_t)(GUEST_VNI >> 8);
	gnv->vni[2] = (uint8_t)GUEST_VNI;
	write_guest_frame(inner, f);
	/* Towards the guest: its MAC, from the gateway's. */
	memcpy(inner, guest_mac, 6);
	memcpy(inner + 6, gw_mac, 6);
	return OF_OUTER_HDR_LEN + GUEST_FRAME_LEN;
}

static void
fill_burst(struct of_dp *dp, struct rte_mbuf **pkts, const uint32_t *flows, int inbound)
{
	if (rte_pktmbuf_alloc_bulk(dp->pool, pkts, BURST) != 0) {
		fprintf(stderr, "path_profile: the mbuf pool ran dry\n");
		exit(1);
	}
	for (unsigned i = 0; i < BURST; i++) {
		uint8_t *p = rte_pktmbuf_mtod(pkts[i], uint8_t *);
		uint32_t len = inbound ? write_geneve_frame(p, flows[i]) : (write_guest_frame(p, flows[i]), GUEST_FRAME_LEN);

		pkts[i]->data_len = (uint16_t)len;
		pkts[i]->pkt_len = len;
	}
}

/* Every frame the path sent: counted and freed. */
static unsigned
drain(struct of_dp *dp, uint16_t port)
{
	struct rte_mbuf *out[BURST];
	unsigned n, total = 0;

	while ((n = rte_ring_dequeue_burst(dp->ports[port].ring_tx, (void **)out, BURST, NULL)) != 0) {
		rte_pktmbuf_free_bulk(out, n);
		total += n;
	}
	return total;
}

static void
add_tables(struct of_dp *dp, uint16_t guest, uint16_t uplink)
{
	static const uint8_t any[16];
	static const uint8_t any_v4[16] = { [10] = 0xff, [11] = 0xff };	/* ::ffff:0:0/96 */
	struct of_builder *b = of_builder_new(dp);
	const uint16_t tep = 1, nh = 1;
	struct of_guest_net net;

	of_guest_net_default(&net);
	net.has_ipv4 = 1;
	memcpy(net.ipv4, (const uint8_t[]){ 10, 0, 0, 2 }, 4);
	net.ipv4_prefix_len = 24;
	memcpy(net.ipv4_gateway, (const uint8_t[]){ 10, 0, 0, 1 }, 4);
	if (b == NULL || of_builder_guest(b, guest, GUEST_VNI, guest_mac, gw_mac) != 0 ||
	    of_builder_guest_net(b, guest, &net) != 0 ||
	    of_builder_tep(b, tep, tep_addr, GUEST_VNI, 1) != 0 || of_builder_tep_set(b, 0, &tep, 1) != 0 ||
	    of_builder_v2b(b, any_v4, 96, 0) != 0 || of_builder_nexthop(b, nh, uplink, nh_mac, 1) != 0 ||
	    of_builder_nh_group(b, 0, &nh, 1) != 0 || of_builder_route(b, any, 0, 0) != 0 ||
	    of_builder_commit(b) != 0)
		die("tables");
}

/* What the path counted, when it did not do what the profile expects. */
static void
print_counters(const struct of_lcore *lc)
{
	for (unsigned c = 0; c < OF_N_COUNTERS; c++)
		if (lc->counters[c] != 0)
			fprintf(stderr, "  %s %" PRIu64 "\n", of_counter_names[c], lc->counters[c]);
}

int
main(int argc, char **argv)
{
	uint32_t n_flows = 65536, n_bursts = 2000;
	int inbound = 0, opt;
	char prefix[64], mem[16];

	static const struct option longopts[] = {
		{ "flows", required_argument, NULL, 'f' },
		{ "bursts", required_argument, NULL, 'b' },
		{ "inbound", no_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 },
	};
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f': n_flows = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'b': n_bursts = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'i': inbound = 1; break;
		default:
			fprintf(stderr, "usage: path_profile [--flows N] [--bursts N] [--inbound]\n");
			return 2;
		}
	}
	if (n_flows == 0 || n_flows > 50000u * 65536u) {
		fprintf(stderr, "path_profile: --flows must be 1..%u\n", 50000u * 65536u);
		return 2;
	}
	snprintf(prefix, sizeof(prefix), "--file-prefix=path-profile-%d", (int)getpid());
	/* The table's own size (about 350 bytes a flow today) and room for the rest. */
	snprintf(mem, sizeof(mem), "%u", 256 + (unsigned)((uint64_t)n_flows * 512 >> 20));
	char *eal[] = { "path_profile", "-l", "0", "--no-huge", "-m", mem, "--no-pci", "--no-shconf",
			"--log-level=error", prefix };

	if (of_eal_init((int)RTE_DIM(eal), eal) < 0)
		die("EAL");
	if (of_remove_eal_runtime_dir() != 0)
		return 1;

	struct of_dp_config cfg = {
		.n_mbufs = 4096, .mbuf_cache = 256, .mbuf_data_room = RTE_MBUF_DEFAULT_BUF_SIZE,
		.burst = BURST, .rx_desc = 1024, .tx_desc = 1024,
		.flow_capacity = n_flows, .n_buckets = 4096, .prefix_capacity = 16,
		.tcp_idle_ms = OF_NEVER, .tcp_closed_ms = OF_NEVER, .udp_idle_ms = OF_NEVER, .icmp_idle_ms = OF_NEVER,
		.rebalance_idle_ms = OF_NEVER, .hop_limit = 64, .flow_label = 1,
		.udp_sport_min = 49152, .udp_sport_max = 65535, .underlay_mtu = 1500,
	};
	memcpy(cfg.underlay_addr, underlay, 16);
	/* A fixed flow hash key, so that every run takes the same buckets and paths. */
	for (unsigned i = 0; i < OF_HASH_KEY_LEN; i++)
		cfg.hash_key[i] = (uint8_t)(0x5e + i);
	struct of_dp *dp = of_dp_create(&cfg);
	if (dp == NULL)
		die("data plane");
	int guest = of_dp_add_ring_port(dp, "guest0", OF_ROLE_GUEST, 1024, 1);
	int uplink = of_dp_add_ring_port(dp, "uplink0", OF_ROLE_UPLINK, 1024, 1);
	if (guest < 0 || uplink < 0)
		die("ring ports");
	dp->n_workers = 1;
	if (of_ports_start(dp) != 0)
		die("ports");
	add_tables(dp, (uint16_t)guest, (uint16_t)uplink);

	struct of_lcore *lc = rte_zmalloc("profile_lcore", sizeof(*lc), RTE_CACHE_LINE_SIZE);
	double heap_before = (double)of_heap_used();
	if (lc == NULL)
		die("lcore");
	lc->dp = dp;
	lc->flows = of_flow_table_create("profile_flows", n_flows, (int)rte_socket_id());
	if (lc->flows == NULL)
		die("flow table");
	double table_bytes = (double)of_heap_used() - heap_before;

	const struct of_tables *t = dp->tables;
	uint16_t rx_port = inbound ? (uint16_t)uplink : (uint16_t)guest;
	uint16_t tx_port = inbound ? (uint16_t)guest : (uint16_t)uplink;
	struct rte_mbuf *pkts[BURST];
	uint32_t flows[BURST];
	uint64_t rng = 0x9e3779b97f4a7c15ull, sent = 0, start, fill_tsc = 0;

	/* Every flow once, in order: the table fills (outbound creates the flows). */
	for (uint32_t f0 = 0; !inbound && f0 < n_flows; f0 += BURST) {
		unsigned n = RTE_MIN((uint32_t)BURST, n_flows - f0);

		for (unsigned i = 0; i < BURST; i++)
			flows[i] = f0 + i % n;
		fill_burst(dp, pkts, flows, 0);
		if (n < BURST)
			rte_pktmbuf_free_bulk(&pkts[n], BURST - n);
		lc->now = rte_rdtsc();
		start = lc->now;
		of_outbound_burst(dp, lc, t, (uint16_t)guest, pkts, (uint16_t)n);
		of_tx_flush_all(dp, lc);
		fill_tsc += rte_rdtsc() - start;
		drain(dp, tx_port);
	}
	if (!inbound && lc->flows->n_active != n_flows) {
		fprintf(stderr, "path_profile: %" PRIu64 " flows in the table, not %u\n", lc->flows->n_active, n_flows);
		print_counters(lc);
		return 1;
	}

	uint64_t run_tsc = 0;
	for (uint32_t b = 0; b < n_bursts; b++) {
		for (unsigned i = 0; i < BURST; i++)
			flows[i] = rng_next(&rng) % n_flows;
		fill_burst(dp, pkts, flows, inbound);
		lc->now = rte_rdtsc();
		start = lc->now;
		CALLGRIND_TOGGLE_COLLECT;
		if (inbound)
			of_inbound_burst(dp, lc, t, rx_port, pkts, BURST);
		else
			of_outbound_burst(dp, lc, t, rx_port, pkts, BURST);
		of_tx_flush_all(dp, lc);
		CALLGRIND_TOGGLE_COLLECT;
		run_tsc += rte_rdtsc() - start;
		sent += drain(dp, tx_port);
	}
	if (sent != (uint64_t)n_bursts * BURST) {
		fprintf(stderr, "path_profile: %" PRIu64 " of %u frames came out\n", sent, n_bursts * BURST);
		print_counters(lc);
		return 1;
	}
	printf("direction %s flows %u packets %" PRIu64 "\n", inbound ? "inbound" : "outbound", n_flows, sent);
	printf("flow table %.0f bytes per flow\n", table_bytes / n_flows);
	if (!inbound)
		printf("fill %.1f TSC ticks per new flow (%.2f M new flows/s)\n", (double)fill_tsc / n_flows,
		       (double)n_flows * rte_get_tsc_hz() / (double)fill_tsc / 1e6);
	printf("known flows %.1f TSC ticks per packet\n", (double)run_tsc / (double)sent);
	return 0;
}
