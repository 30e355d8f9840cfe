/*
 * The bench's traffic source: a DPDK plugin that turns a looped pcap of a
 * few thousand frames into any number of flows. dpdk-testpmd, ovs-vswitchd
 * and opte-fast load it alike (EAL `-d`), so the I/O ceiling, the peer and
 * the data plane see the same source, and no pool holds one mbuf per flow.
 *
 * It is configured by the environment, since neither testpmd nor OVS knows
 * of it: OPTE_FAST_BENCH_TRAFFIC="device=net_pcap0 flows=N first=F addr=A
 * ip=I port=P entropy=E", offsets in bytes from the frame's start. When
 * that device is probed, a thread (started when the plugin is loaded) waits
 * for its RX queues to be configured and adds an RX callback to each. The callback runs on the forwarding
 * lcore, right after the PMD's receive, and gives every frame the next flow
 * of its queue: flow i has the IPv4 address 198.18.0.0 + i mod 2^17 at A
 * (the header at I gets its checksum again) and the port 1024 + i / 2^17
 * at P; E, when not 0, gets a 16-bit entropy (an outer UDP source port).
 * Queue q of n takes flows F + q, F + q + n, ... modulo N (N = 0: never
 * repeat, for new-flow runs). Frames received before the callback is added
 * are the pcap's own, valid flows too.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_mbuf.h>

#define TRAFFIC_ENV "OPTE_FAST_BENCH_TRAFFIC"
#define ADDR_BASE 0xC6120000u		/* 198.18.0.0, RFC 2544's benchmarking range */
#define ADDR_BITS 17

struct gen_queue {
	uint64_t next;
	uint64_t step;
} __rte_cache_aligned;

static struct {
	char device[RTE_ETH_NAME_MAX_LEN];
	uint64_t flows;			/* 0: unbounded */
	uint64_t first;
	uint16_t addr_off, ip_off, port_off, entropy_off;
} cfg;

static struct gen_queue queues[RTE_MAX_QUEUES_PER_PORT];
static uint8_t attached[RTE_MAX_QUEUES_PER_PORT];

static uint16_t
rewrite(uint16_t port __rte_unused, uint16_t queue __rte_unused, struct rte_mbuf **pkts, uint16_t n,
	uint16_t max __rte_unused, void *arg)
{
	struct gen_queue *g = arg;
	uint64_t next = g->next;

	for (uint16_t i = 0; i < n; i++) {
		uint8_t *frame = rte_pktmbuf_mtod(pkts[i], uint8_t *);
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(frame + cfg.ip_off);
		uint32_t addr = ADDR_BASE + (uint32_t)(next & ((1u << ADDR_BITS) - 1));

		*(unaligned_uint32_t *)(frame + cfg.addr_off) = rte_cpu_to_be_32(addr);
		*(unaligned_uint16_t *)(frame + cfg.port_off) = rte_cpu_to_be_16((uint16_t)(1024 + (next >> ADDR_BITS)));
		ip->hdr_checksum = 0;
		ip->hdr_checksum = rte_ipv4_cksum(ip);
		if (cfg.entropy_off != 0)
			*(unaligned_uint16_t *)(frame + cfg.entropy_off) =
				rte_cpu_to_be_16((uint16_t)(0xC000 | (next & 0x3FFF)));
		next += g->step;
		if (cfg.flows != 0 && next >= cfg.flows)
			next -= cfg.flows;
	}
	g->next = next;
	return n;
}

/* The device's port, once probed; it waits rather than subscribing to RTE_ETH_EVENT_NEW,
 * which allocates from EAL memory, and the plugin is loaded before the EAL has any. */
static int
find_device(void)
{
	char name[RTE_ETH_NAME_MAX_LEN];

	for (uint16_t p = 0; p < RTE_MAX_ETHPORTS; p++)
		if (rte_eth_dev_is_valid_port(p) && rte_eth_dev_get_name_by_port(p, name) == 0 &&
		    strcmp(name, cfg.device) == 0)
			return p;
	return -1;
}

/* Adds the callback to every configured RX queue, as they appear, until the port goes. */
static void *
attach_loop(void *arg __rte_unused)
{
	unsigned polls = 0;
	int port;

	while ((port = find_device()) < 0)
		usleep(1000);
	while (rte_eth_dev_is_valid_port((uint16_t)port)) {
		struct rte_eth_dev_info info;

		if (rte_eth_dev_info_get((uint16_t)port, &info) == 0) {
			for (uint16_t q = 0; q < info.nb_rx_queues && q < RTE_MAX_QUEUES_PER_PORT; q++) {
				if (attached[q])
					continue;
				queues[q].step = info.nb_rx_queues;
				queues[q].next = cfg.first + q;
				if (cfg.flows != 0)
					queues[q].next %= cfg.flows;
				if (rte_eth_add_rx_callback((uint16_t)port, q, rewrite, &queues[q]) == NULL)
					continue;
				attached[q] = 1;
				fprintf(stderr, "opte-fast bench traffic: %s queue %u of %u rewritten, %llu flows\n",
					cfg.device, q, info.nb_rx_queues, (unsigned long long)cfg.flows);
			}
		}
		/* Queues appear within milliseconds of the probe; a reconfiguration may come later. */
		usleep(++polls < 5000 ? 1000 : 100000);
	}
	return NULL;
}

static int
parse(const char *spec)
{
	char *copy = strdup(spec), *save = NULL;
	int ok = copy != NULL;

	for (char *tok = copy ? strtok_r(copy, " ", &save) : NULL; ok && tok; tok = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(tok, '='), *end;
		unsigned long long v;

		if (eq == NULL) {
			ok = 0;
			break;
		}
		*eq++ = '\0';
		if (strcmp(tok, "device") == 0) {
			ok = snprintf(cfg.device, sizeof(cfg.device), "%s", eq) < (int)sizeof(cfg.device);
			continue;
		}
		errno = 0;
		v = strtoull(eq, &end, 0);
		ok = errno == 0 && *end == '\0' && end != eq;
		if (strcmp(tok, "flows") == 0)
			cfg.flows = v;
		else if (strcmp(tok, "first") == 0)
			cfg.first = v;
		else if (strcmp(tok, "addr") == 0 && v < 1024)
			cfg.addr_off = (uint16_t)v;
		else if (strcmp(tok, "ip") == 0 && v < 1024)
			cfg.ip_off = (uint16_t)v;
		else if (strcmp(tok, "port") == 0 && v < 1024)
			cfg.port_off = (uint16_t)v;
		else if (strcmp(tok, "entropy") == 0 && v < 1024)
			cfg.entropy_off = (uint16_t)v;
		else
			ok = 0;
	}
	free(copy);
	return ok && cfg.device[0] != '\0' && cfg.addr_off != 0 && cfg.ip_off != 0 && cfg.port_off != 0;
}

RTE_INIT(trafficgen_init)
{
	const char *spec = getenv(TRAFFIC_ENV);
	pthread_t thread;
	int rc;

	if (spec == NULL)
		return;
	if (!parse(spec)) {
		fprintf(stderr, "opte-fast bench traffic: cannot parse %s='%s'\n", TRAFFIC_ENV, spec);
		return;
	}
	rc = pthread_create(&thread, NULL, attach_loop, NULL);
	if (rc != 0) {
		fprintf(stderr, "opte-fast bench traffic: cannot start a thread: %s\n", strerror(rc));
		return;
	}
	pthread_detach(thread);
}
