/*
 * A sled for the whole-path fuzz targets (fuzz_outbound.c, fuzz_inbound.c):
 * the real data plane from of_dp_create, with ring ports and tables built
 * through the builder as the control plane builds them, driven burst by burst
 * on this thread as its one worker (no lcore is launched).
 *
 * An input is a script of records, each starting with an op byte (low 3 bits):
 *   0 FRAME   be16 length, a layout byte, then the frame: joins the next burst
 *   1 BURST   the frames so far, as one burst on port (op >> 3) & 1
 *   2 TEP     TEP 2 goes down or comes back (a commit)
 *   3 NEXTHOP nexthop 2 goes down or comes back (a commit)
 *   4 ROUTE   the more specific route for TEP 2 appears or goes (a commit: new epoch)
 *             (2 to 4 only as bytes of that value: a commit costs milliseconds, a route
 *             change tens, so mutated bytes should rarely make one)
 *   5 TIME    the clock moves on (op >> 3) * 250 ms, and the expiry sweep catches up
 *   6 STRICT  strict underlay (--strict-underlay) goes on or off for the bursts after it;
 *             every input starts with it off
 *   7 TRACE   a trace of every frame is armed, or stopped: bursts run the traced copies,
 *             and the records of each burst are read and checked against it
 * Frames left at the end go as one burst on port 0.
 *
 * Every frame lives in its own malloc'd buffer (attached to the mbuf as an
 * external buffer), sized to its headroom, bytes and tailroom, so AddressSanitizer
 * sees any access outside it. After every burst everything sent is collected and
 * checked by the target, and the accounts must balance: each frame in is sent or
 * counted under exactly one drop reason, every mbuf is back in the pool, every
 * buffer freed, and each TEP's and nexthop's flow count sums to the flows in the
 * table. Any failure aborts (__builtin_trap), which libFuzzer reports as a crash.
 */
#ifndef OF_FUZZ_SLED_H
#define OF_FUZZ_SLED_H

#define _GNU_SOURCE		/* sched_getaffinity, nftw (runtime_dir.h) */

#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_hash.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "builder.h"
#include "dp.h"
#include "error.h"
#include "flow.h"
#include "inbound.h"
#include "lcore.h"
#include "opte_fast.h"
#include "runtime_dir.h"
#include "outbound.h"
#include "port.h"
#include "tables.h"
#include "tx.h"
#include "wire.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define EXPECT(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: EXPECT(%s) failed\n", __FILE__, __LINE__, #cond); \
		__builtin_trap(); \
	} \
} while (0)

enum { OP_FRAME, OP_BURST, OP_TEP, OP_NEXTHOP, OP_ROUTE, OP_TIME, OP_STRICT, OP_TRACE, OP_NOTHING };

#define SLED_BURST		64
#define SLED_MAX_FRAME		2048	/* an mbuf's data room less its headroom, as on a real port */
#define SLED_MAX_COMMITS	4	/* per input: a route change refills a prefix trie */
#define SLED_FLOW_CAPACITY	16	/* small, so a burst fills it */

static const uint8_t UNDERLAY[16] = { 0xfd, 0x00, 0x00, 0x00, 0x00, 0xf7, 0x01, 0x01, [15] = 0x01 };
static const uint8_t GUEST_MAC[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };
static const uint8_t GATEWAY_MAC[6] = { 0xa8, 0x40, 0x25, 0xff, 0x00, 0x01 };
/* Guest 0's network (make_seeds.py sends from these): a source that is not its own is a spoof drop. */
static const struct of_guest_net GUEST_NET = {
	.has_ipv4 = 1, .ipv4 = { 10, 0, 0, 2 }, .ipv4_prefix_len = 24, .ipv4_gateway = { 10, 0, 0, 1 },
	.has_ipv6 = 1, .ipv6 = { 0xfd, 0x77, [15] = 0x02 },
	.n_dns4 = 1, .dns4 = { { 10, 0, 0, 1 } }, .n_dns6 = 1, .dns6 = { { 0xfd, 0x77, [15] = 0x01 } },
	.domain = "sled.fuzz", .lease_s = 3600, .mtu = OF_GUEST_MTU_DEFAULT, .ra_other = 1,
	.ra_router_lifetime_s = 1800, .has_ra_prefix = 1, .ra_prefix = { .addr = { 0xfd, 0x77 }, .depth = 64 },
};
static const uint8_t BOUNDARY_MAC[6] = OF_BOUNDARY_MAC_INIT;
#define GUEST_VNI		7
#define BOUNDARY_VNI		99

/* TEP 1 and 2 serve everything outside the VPC; TEP 3 has only a dead nexthop, TEP 4 no route. */
static const uint8_t TEP_ADDR[5][16] = {
	[1] = { 0xfd, 0x00, 0x00, 0x99, [15] = 0x01 },
	[2] = { 0xfd, 0x00, 0x00, 0x99, [15] = 0x02 },
	[3] = { 0xfd, 0x00, 0x00, 0x98, [15] = 0x01 },
	[4] = { 0xfd, 0x00, 0x00, 0x97, [15] = 0x01 },
};
/* A guest on another sled, by its IPv4 and IPv6 address. */
static const uint8_t PEER_IP4[16] = { [10] = 0xff, [11] = 0xff, 10, 0, 0, 3 };
static const uint8_t PEER_IP6[16] = { 0xfd, 0x77, [15] = 0x03 };
static const uint8_t PEER_SLED[16] = { 0xfd, 0x00, 0x00, 0x00, 0x00, 0xf7, 0x01, 0x02, [15] = 0x01 };
static const uint8_t PEER_MAC[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x03 };
/* Nexthops 1 and 4 leave by uplink 0, 2 and 3 by uplink 1; 3 is down for good. */
static const uint8_t NH_MAC[5][6] = {
	[1] = { 0x02, 0xaa, 0, 0, 0, 0x01 }, [2] = { 0x02, 0xaa, 0, 0, 0, 0x02 },
	[3] = { 0x02, 0xaa, 0, 0, 0, 0x03 }, [4] = { 0x02, 0xaa, 0, 0, 0, 0x04 },
};

struct sled_frame {
	const uint8_t *bytes;		/* in the input */
	uint32_t len;
	uint8_t sent;
};

struct sled {
	struct of_dp *dp;
	struct of_lcore *lc;
	uint16_t guest[2], uplink[2], exception;
	unsigned pool_in_use;		/* at the start: every burst must give back to this */
	long buffers;			/* external buffers not yet freed */
	uint64_t start_tsc;
	/* the tables' state: what the checks hold sent frames against */
	int tep2_down, nh2_down, route_flapped;
	unsigned commits;
	uint8_t tracing;		/* a trace of every frame is armed */
	/* the burst being run */
	uint8_t outbound;
	uint16_t port;
	uint16_t n;
	struct sled_frame frames[SLED_BURST];
	struct rte_mbuf *pkts[SLED_BURST];
};

static struct sled sled;

/*
 * No LeakSanitizer: the tables live in DPDK memory, which it does not scan, so what they hold
 * looks leaked. The packet path allocates nothing; its mbufs and buffers are counted instead.
 */
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
	return "detect_leaks=0";
}

/* The target's check of frame f, which the data plane sent on `port`, made from frame `in` of the burst. */
static void check_sent(struct sled *s, uint16_t port, const uint8_t *f, uint32_t len, const struct sled_frame *in);

/* What a frame's buffers share: the external buffer's refcount, and which frame of the burst it holds. */
struct sled_shinfo {
	struct rte_mbuf_ext_shared_info shinfo;
	uint16_t frame;
};

static void
buffer_free(void *addr, void *opaque)
{
	free(addr);
	free(opaque);
	sled.buffers--;
}

/*
 * An mbuf whose data lives in a buffer of exactly headroom + len + tailroom
 * bytes, which names the frame of the burst (s->n) it holds. layout: bits 0-1 tailroom (0, 8, 64, 1024 bytes), bit 2 a chain of
 * two segments split at (bits 4-7)/16 of the frame, bit 3 a headroom of 32
 * bytes instead of RTE_PKTMBUF_HEADROOM (too little for the outer headers).
 */
static struct rte_mbuf *
segment(struct sled *s, const uint8_t *bytes, uint32_t len, uint8_t layout, int first)
{
	static const uint16_t tailroom[4] = { 0, 8, 64, 1024 };
	uint16_t headroom = first && (layout & 8) ? 32 : RTE_PKTMBUF_HEADROOM;
	uint16_t buf_len = (uint16_t)(headroom + len + tailroom[layout & 3]);
	struct sled_shinfo *shinfo = malloc(sizeof(*shinfo));
	uint8_t *buf = malloc(buf_len);
	struct rte_mbuf *m = rte_pktmbuf_alloc(s->dp->pool);

	EXPECT(shinfo != NULL && buf != NULL && m != NULL);
	shinfo->shinfo.free_cb = buffer_free;
	shinfo->shinfo.fcb_opaque = shinfo;
	shinfo->frame = s->n;
	rte_mbuf_ext_refcnt_set(&shinfo->shinfo, 1);
	s->buffers++;
	rte_pktmbuf_attach_extbuf(m, buf, 0, buf_len, &shinfo->shinfo);
	m->data_off = headroom;
	memcpy(rte_pktmbuf_mtod(m, uint8_t *), bytes, len);
	m->data_len = (uint16_t)len;
	m->pkt_len = len;
	return m;
}

static struct rte_mbuf *
frame_mbuf(struct sled *s, const uint8_t *bytes, uint32_t len, uint8_t layout)
{
	uint32_t split = len * (layout >> 4) / 16;
	struct rte_mbuf *head, *tail;

	if (!(layout & 4) || split == 0)
		return segment(s, bytes, len, layout, 1);
	head = segment(s, bytes, split, layout, 1);
	tail = segment(s, bytes + split, len - split, layout, 0);
	EXPECT(rte_pktmbuf_chain(head, tail) == 0);
	return head;
}

/* The tables every input starts from, less what the script has taken down or added. */
static void
commit_tables(struct sled *s)
{
	static const uint8_t v4_mapped[16] = { [10] = 0xff, [11] = 0xff };
	static const uint8_t v4_private_b[16] = { [10] = 0xff, [11] = 0xff, 192, 168 };
	static const uint8_t v4_private_a[16] = { [10] = 0xff, [11] = 0xff, 172, 16 };
	static const uint8_t global6[16] = { 0x20 };
	static const uint8_t tep_route[16] = { 0xfd, 0x00, 0x00, 0x99 };
	static const uint8_t dead_route[16] = { 0xfd, 0x00, 0x00, 0x98 };
	static const uint8_t sled_route[16] = { 0xfd, 0x00, 0x00, 0x00, 0x00, 0xf7 };
	static const uint16_t set0[] = { 1, 2 }, set1[] = { 3 }, set2[] = { 4 };
	static const uint16_t group0[] = { 1, 2 }, group1[] = { 3 }, group2[] = { 4 };
	struct of_builder *b = of_builder_new(s->dp);
	int rc = 0;

	EXPECT(b != NULL);
	rc |= of_builder_guest(b, s->guest[0], GUEST_VNI, GUEST_MAC, GATEWAY_MAC);
	rc |= of_builder_guest_net(b, s->guest[0], &GUEST_NET);
	rc |= of_builder_v2p(b, GUEST_VNI, PEER_IP4, PEER_SLED, PEER_MAC);
	rc |= of_builder_v2p(b, GUEST_VNI, PEER_IP6, PEER_SLED, PEER_MAC);
	for (uint16_t t = 1; t <= 4; t++)
		rc |= of_builder_tep(b, t, TEP_ADDR[t], BOUNDARY_VNI, !(t == 2 && s->tep2_down));
	rc |= of_builder_tep_set(b, 0, set0, 2);
	rc |= of_builder_tep_set(b, 1, set1, 1);
	rc |= of_builder_tep_set(b, 2, set2, 1);
	rc |= of_builder_v2b(b, v4_mapped, 96, 0);
	rc |= of_builder_v2b(b, global6, 3, 0);
	rc |= of_builder_v2b(b, v4_private_b, 112, 1);
	rc |= of_builder_v2b(b, v4_private_a, 108, 2);
	rc |= of_builder_nexthop(b, 1, s->uplink[0], NH_MAC[1], 1);
	rc |= of_builder_nexthop(b, 2, s->uplink[1], NH_MAC[2], !s->nh2_down);
	rc |= of_builder_nexthop(b, 3, s->uplink[1], NH_MAC[3], 0);
	rc |= of_builder_nexthop(b, 4, s->uplink[0], NH_MAC[4], 1);
	rc |= of_builder_nh_group(b, 0, group0, 2);
	rc |= of_builder_nh_group(b, 1, group1, 1);
	rc |= of_builder_nh_group(b, 2, group2, 1);
	rc |= of_builder_route(b, tep_route, 64, 0);
	rc |= of_builder_route(b, dead_route, 64, 1);
	rc |= of_builder_route(b, sled_route, 48, 0);
	if (s->route_flapped)
		rc |= of_builder_route(b, TEP_ADDR[2], 128, 2);
	EXPECT(rc == 0);
	if (of_builder_commit(b) != 0) {
		fprintf(stderr, "commit: %s\n", of_last_error());
		__builtin_trap();
	}
}

/* With OF_FUZZ_COUNTERS=FILE, every counter the run moved, "name value" a line, written at a
 * normal exit (-runs, -max_total_time): where the fuzzed frames went. */
static void
write_counters(void)
{
	const char *path = getenv("OF_FUZZ_COUNTERS");
	FILE *f = path != NULL ? fopen(path, "w") : NULL;

	if (f == NULL)
		return;
	for (unsigned i = 0; i < OF_N_COUNTERS; i++)
		if (sled.lc->counters[i] != 0)
			fprintf(f, "%s %" PRIu64 "\n", of_counter_name(i), sled.lc->counters[i]);
	fclose(f);
}

static void
sled_init(int outbound)
{
	char prefix[64], lcores[160];
	size_t used;
	cpu_set_t cpus;
	struct sled *s = &sled;
	struct of_dp_config cfg = {
		.n_mbufs = 1023, .mbuf_cache = 0, .mbuf_data_room = RTE_PKTMBUF_HEADROOM + SLED_MAX_FRAME,
		.burst = SLED_BURST, .rx_desc = 64, .tx_desc = 64, .flow_capacity = SLED_FLOW_CAPACITY,
		.n_buckets = 64, .tcp_idle_ms = 4000, .tcp_closed_ms = 500,
		.udp_idle_ms = 2000, .icmp_idle_ms = 1000, .rebalance_idle_ms = 1500, .hop_limit = 128,
		.flow_label = 1, .udp_checksum = 1, .verify_udp_checksum = 1, .underlay_mtu = 1500,
		.udp_sport_min = 49152, .udp_sport_max = 65535, .prefix_capacity = 16,
	};
	int rc;

	/* One lcore, the main one, free to run on any CPU this process may use. */
	used = (size_t)snprintf(lcores, sizeof(lcores), "--lcores=0@(");
	sched_getaffinity(0, sizeof(cpus), &cpus);
	for (int c = 0; c < CPU_SETSIZE && used < sizeof(lcores) - 8; c++)
		if (CPU_ISSET(c, &cpus))
			used += (size_t)snprintf(lcores + used, sizeof(lcores) - used, "%d,", c);
	snprintf(lcores + used - 1, sizeof(lcores) - used + 1, ")");
	snprintf(prefix, sizeof(prefix), "--file-prefix=oft-fuzz-%d", (int)getpid());
	char *argv[] = { "fuzz", lcores, prefix, "--no-huge", "--no-pci", "--no-shconf", "-m", "512",
			 "--no-telemetry", "--log-level=*:error", NULL };

	if (rte_eal_init((int)RTE_DIM(argv) - 1, argv) < 0) {
		fprintf(stderr, "fuzz: EAL initialisation failed\n");
		exit(1);
	}
	if (of_remove_eal_runtime_dir() != 0)
		exit(1);
	memcpy(cfg.underlay_addr, UNDERLAY, 16);
	/* A fixed flow hash key, so that an input replays the same paths. */
	for (unsigned i = 0; i < OF_HASH_KEY_LEN; i++)
		cfg.hash_key[i] = (uint8_t)(0x5e + i);
	s->dp = of_dp_create(&cfg);
	EXPECT(s->dp != NULL);
	rc = of_dp_add_ring_port(s->dp, "guest0", OF_ROLE_GUEST, 256, 1);
	s->guest[0] = (uint16_t)rc;
	s->guest[1] = (uint16_t)of_dp_add_ring_port(s->dp, "guest1", OF_ROLE_GUEST, 256, 1);
	s->uplink[0] = (uint16_t)of_dp_add_ring_port(s->dp, "uplink0", OF_ROLE_UPLINK, 256, 1);
	/* A small TX ring: a burst can fill it, and tx_full must account for the rest. */
	s->uplink[1] = (uint16_t)of_dp_add_ring_port(s->dp, "uplink1", OF_ROLE_UPLINK, 32, 1);
	s->exception = (uint16_t)of_dp_add_ring_port(s->dp, "tap0", OF_ROLE_EXCEPTION, 256, 1);
	EXPECT(rc >= 0 && s->exception == 4);
	EXPECT(of_dp_set_exception(s->dp, s->uplink[0], s->exception) == 0);

	/* What of_dp_start does, without launching the worker: this thread is the worker. */
	s->lc = rte_zmalloc("fuzz_lcore", sizeof(*s->lc), RTE_CACHE_LINE_SIZE);
	EXPECT(s->lc != NULL);
	s->lc->dp = s->dp;
	s->lc->lcore_id = rte_lcore_id();
	s->lc->flows = of_flow_table_create("fuzz_flows", SLED_FLOW_CAPACITY, (int)rte_socket_id());
	EXPECT(s->lc->flows != NULL);
	s->dp->lcores = s->lc;
	s->dp->n_workers = 1;
	EXPECT(of_ports_start(s->dp) == 0);
	commit_tables(s);
	s->outbound = (uint8_t)outbound;
	s->start_tsc = rte_get_tsc_hz() * 3600;	/* an hour in: flows have a past to be idle in */
	s->pool_in_use = rte_mempool_in_use_count(s->dp->pool);
	if (getenv("OF_FUZZ_COUNTERS") != NULL)
		atexit(write_counters);
}

/* The state every input starts from: base tables, an empty flow table, the clock at start. */
static void
sled_reset(struct sled *s)
{
	struct of_lcore *lc = s->lc;
	struct of_flow_table *ft = lc->flows;

	s->commits = 0;
	s->dp->cfg.strict_underlay = 0;
	memset(ft->buckets, 0, ((size_t)ft->bucket_mask + 1) * sizeof(*ft->buckets));
	memset(ft->entries, 0, (size_t)ft->n_entries * sizeof(*ft->entries));
	for (uint32_t i = 0; i < ft->n_entries; i++)
		ft->free[i] = i;
	ft->free_head = 0;
	ft->n_free = ft->n_entries;
	ft->n_active = 0;
	memset(lc->tep, 0, sizeof(lc->tep));
	memset(lc->nh, 0, sizeof(lc->nh));
	lc->now = lc->sweep_tsc = s->start_tsc;
	lc->sweep_pos = 0;
	s->n = 0;
	if (s->tracing)
		of_dp_trace_disarm(s->dp);
	s->tracing = 0;
}

/* A trace of every frame, in both directions, for as long as an input runs; or none. */
static void
sled_trace(struct sled *s)
{
	static const struct of_trace_match everything = { .dir = OF_TRACE_ANY };
	struct of_trace_record r;
	int armed;

	s->tracing ^= 1;
	if (!s->tracing) {
		of_dp_trace_disarm(s->dp);
		return;
	}
	EXPECT(of_dp_trace_arm(s->dp, &everything, OF_TRACE_COUNT_MAX) == 0);
	EXPECT(of_dp_trace_read(s->dp, &r, 1, &armed) == 0 && armed);
}

/* The records of the burst just run: at most one a frame, each of its direction, going to a port
 * of the right role, or dropped for a reason this burst counted at least as many times. */
static void
check_traced(const struct sled *s, const uint64_t before[OF_N_COUNTERS])
{
	static struct of_trace_record r[SLED_BURST + 1];
	uint64_t traced_drops[OF_N_COUNTERS] = { 0 };
	const struct of_dp *dp = s->dp;
	int armed, n = of_dp_trace_read(s->dp, r, SLED_BURST + 1, &armed);

	EXPECT(armed && n <= s->n && of_dp_trace_lost(dp) == 0);
	for (int i = 0; i < n; i++) {
		EXPECT(r[i].dir == (s->outbound ? OF_TRACE_OUT : OF_TRACE_IN));
		if (r[i].drop >= 0) {
			EXPECT(r[i].drop < OF_N_COUNTERS && of_counter_is_drop[r[i].drop] && r[i].why == OF_TRACE_DROPPED);
			EXPECT(++traced_drops[r[i].drop] <= s->lc->counters[r[i].drop] - before[r[i].drop]);
		} else if (s->outbound) {
			EXPECT(r[i].uplink < dp->n_ports && dp->ports[r[i].uplink].role == OF_ROLE_UPLINK);
		} else {
			EXPECT(r[i].guest < dp->n_ports && dp->ports[r[i].guest].role == OF_ROLE_GUEST &&
			       r[i].why == OF_TRACE_DELIVERED);
		}
	}
}

/* Each TEP's and nexthop's flow count sums to the flows in the table: no flow counted twice or lost. */
static void
check_flow_counts(const struct sled *s)
{
	const struct of_lcore *lc = s->lc;
	const struct of_flow_table *ft = lc->flows;
	uint64_t teps = 0, nhs = 0, in_use = 0;

	for (unsigned i = 0; i < OF_MAX_TEPS; i++)
		teps += lc->tep[i].flows;
	for (unsigned i = 0; i < OF_MAX_NEXTHOPS; i++)
		nhs += lc->nh[i].flows;
	for (uint32_t i = 0; i < ft->n_entries; i++)
		in_use += ft->entries[i].in_use;
	EXPECT(in_use == ft->n_active && teps == ft->n_active && nhs == ft->n_active);
	EXPECT(ft->n_active <= SLED_FLOW_CAPACITY);
}

static uint64_t
sum_counters(const uint64_t *c, int drops)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < OF_N_COUNTERS; i++)
		if (of_counter_is_drop[i] == drops)
			sum += c[i];
	return sum;
}

static void
sled_burst(struct sled *s)
{
	struct of_dp *dp = s->dp;
	struct of_lcore *lc = s->lc;
	const struct of_tables *t = dp->tables;
	uint64_t before[OF_N_COUNTERS];
	uint64_t sent, dropped, collected = 0;
	static uint8_t flat[SLED_MAX_FRAME + 2 * RTE_PKTMBUF_HEADROOM];

	if (s->n == 0)
		return;
	memcpy(before, lc->counters, sizeof(before));
	if (s->outbound)
		of_outbound_burst(dp, lc, t, s->port, s->pkts, s->n);
	else
		of_inbound_burst(dp, lc, t, s->port, s->pkts, s->n);
	of_tx_flush_all(dp, lc);

	for (uint16_t p = 0; p < dp->n_ports; p++) {
		struct rte_mbuf *m;

		while (rte_ring_dequeue(dp->ports[p].ring_tx, (void **)&m) == 0) {
			uint32_t len = rte_pktmbuf_pkt_len(m);
			struct sled_frame *in;
			const uint8_t *f;

			/* The frame's first mbuf goes out, headers added or taken off in place: its
			 * buffer says which input it was, and no input goes out twice. */
			EXPECT(RTE_MBUF_HAS_EXTBUF(m));
			in = &s->frames[container_of(m->shinfo, struct sled_shinfo, shinfo)->frame];
			EXPECT(!in->sent);
			in->sent = 1;
			EXPECT(len <= sizeof(flat));
			f = rte_pktmbuf_read(m, 0, len, flat);
			EXPECT(f != NULL);
			check_sent(s, p, f, len, in);
			rte_pktmbuf_free(m);
			collected++;
		}
	}
	sent = lc->counters[OF_C_TX_UPLINK] + lc->counters[OF_C_TX_GUEST] + lc->counters[OF_C_TX_EXCEPTION] -
	       before[OF_C_TX_UPLINK] - before[OF_C_TX_GUEST] - before[OF_C_TX_EXCEPTION];
	dropped = sum_counters(lc->counters, 1) - sum_counters(before, 1);
	EXPECT(lc->counters[s->outbound ? OF_C_RX_GUEST : OF_C_RX_UPLINK] -
	       before[s->outbound ? OF_C_RX_GUEST : OF_C_RX_UPLINK] == s->n);
	EXPECT(sent == collected);
	EXPECT(sent + dropped == s->n);
	EXPECT(rte_mempool_in_use_count(dp->pool) == s->pool_in_use);
	EXPECT(s->buffers == 0);
	check_flow_counts(s);
	if (s->tracing)
		check_traced(s, before);
	s->n = 0;
}

/* Toggle one of the tables' switches and commit, unless this input has committed enough. */
static void
sled_commit(struct sled *s, int *flag)
{
	sled_burst(s);
	if (s->commits == SLED_MAX_COMMITS)
		return;
	s->commits++;
	*flag ^= 1;
	commit_tables(s);
}

static void
sled_run(struct sled *s, const uint8_t *data, size_t size)
{
	size_t at = 0;

	sled_reset(s);
	s->port = s->outbound ? s->guest[0] : s->uplink[0];
	while (at < size) {
		uint8_t op = data[at++];
		int kind = op & 7;
		uint32_t len;

		if (kind >= OP_TEP && kind <= OP_ROUTE && op != kind)
			kind = OP_NOTHING;
		switch (kind) {
		case OP_FRAME:
			if (at + 3 > size) {
				at = size;	/* a record cut short ends the script */
				break;
			}
			len = RTE_MIN((uint32_t)data[at] << 8 | data[at + 1], (uint32_t)(size - at - 3));
			len = RTE_MIN(len, (uint32_t)SLED_MAX_FRAME);
			if (s->n == SLED_BURST)
				sled_burst(s);
			s->frames[s->n] = (struct sled_frame){ data + at + 3, len, 0 };
			s->pkts[s->n++] = frame_mbuf(s, data + at + 3, len, data[at + 2]);
			at += 3 + len;
			break;
		case OP_BURST:
			sled_burst(s);
			s->port = (op >> 3) & 1 ? (s->outbound ? s->guest[1] : s->uplink[1]) :
						  (s->outbound ? s->guest[0] : s->uplink[0]);
			break;
		case OP_TEP:
			sled_commit(s, &s->tep2_down);
			break;
		case OP_NEXTHOP:
			sled_commit(s, &s->nh2_down);
			break;
		case OP_ROUTE:
			sled_commit(s, &s->route_flapped);
			break;
		case OP_STRICT:
			sled_burst(s);
			s->dp->cfg.strict_underlay ^= 1;
			break;
		case OP_TRACE:
			sled_burst(s);
			sled_trace(s);
			break;
		case OP_TIME:
			sled_burst(s);
			s->lc->now += (uint64_t)(op >> 3) * rte_get_tsc_hz() / 4;
			for (unsigned i = 0; i < 64 && s->lc->sweep_tsc < s->lc->now; i++)
				of_flow_sweep(s->lc, &s->dp->timeouts);
			check_flow_counts(s);
			break;
		default:
			break;
		}
	}
	sled_burst(s);
	/* Base tables again: every input starts from the same state, so a finding reproduces alone. */
	if (s->tep2_down || s->nh2_down || s->route_flapped) {
		s->tep2_down = s->nh2_down = s->route_flapped = 0;
		commit_tables(s);
	}
}

/* Whether f holds in's bytes from offset `at` on (to its end if `whole`), bytes skip_from..skip_to-1 aside. */
static int
sled_holds(const struct sled_frame *in, const uint8_t *f, uint32_t len, uint32_t at, int whole,
	   uint32_t skip_from, uint32_t skip_to)
{
	if (in->len < at + len || (whole && in->len != at + len))
		return 0;
	return memcmp(in->bytes + at, f, skip_from) == 0 &&
	       memcmp(in->bytes + at + skip_to, f + skip_to, len - skip_to) == 0;
}

#endif
