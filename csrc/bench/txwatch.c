/*
 * When a port last sent a Geneve frame: the failover benches' clock for
 * "the last packet toward the failed switch" at full rate, where no capture
 * keeps up. bench/bfd_failover.py loads this plugin with ctypes into the
 * process that runs the data plane and watches an uplink: a TX callback on
 * each of its queues, run by the sending lcore right before the PMD's
 * transmit, stamps CLOCK_MONOTONIC and counts the frames that are IPv6 UDP to
 * port 6081. BFD's own frames (UDP 3784) and neighbour discovery share the
 * worker's queue on a net_tap uplink and are not counted.
 */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#define GENEVE_PORT 6081

struct watched_queue {
	uint64_t last_ns;	/* the last burst with a Geneve frame; 0: none yet */
	uint64_t frames;	/* Geneve frames handed to the PMD */
	const struct rte_eth_rxtx_callback *cb;
} __rte_cache_aligned;

static struct {
	uint16_t port;
	uint16_t n_queues;
	struct watched_queue queues[RTE_MAX_QUEUES_PER_PORT];
} watch;

static inline int
is_geneve(const struct rte_mbuf *m)
{
	const uint8_t *f = rte_pktmbuf_mtod(m, const uint8_t *);

	/* Ethernet, IPv6 with UDP as next header, UDP destination 6081: the data plane's encap, untagged. */
	return rte_pktmbuf_data_len(m) >= 14 + 40 + 8 && f[12] == 0x86 && f[13] == 0xdd && f[20] == 17 &&
	       f[56] == (GENEVE_PORT >> 8) && f[57] == (GENEVE_PORT & 0xff);
}

static uint16_t
stamp(uint16_t port __rte_unused, uint16_t queue __rte_unused, struct rte_mbuf **pkts, uint16_t n, void *arg)
{
	struct watched_queue *w = arg;
	uint64_t geneve = 0;
	struct timespec ts;

	for (uint16_t i = 0; i < n; i++)
		geneve += is_geneve(pkts[i]);
	if (geneve != 0) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		/* One writer per queue; the reader on another thread takes whole words. */
		__atomic_store_n(&w->last_ns, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec,
				 __ATOMIC_RELAXED);
		__atomic_store_n(&w->frames, w->frames + geneve, __ATOMIC_RELAXED);
	}
	return n;
}

/* Watch every TX queue of the started device `name` (at most one device at a time). 0, or -errno. */
int
opte_fast_bench_watch_tx(const char *name)
{
	struct rte_eth_dev_info info;
	uint16_t port;
	int rc;

	if (watch.n_queues != 0)
		return -EBUSY;
	rc = rte_eth_dev_get_port_by_name(name, &port);
	if (rc == 0)
		rc = rte_eth_dev_info_get(port, &info);
	if (rc != 0)
		return rc;
	if (info.nb_tx_queues == 0)
		return -EAGAIN;		/* not configured yet */
	memset(&watch, 0, sizeof(watch));
	watch.port = port;
	for (uint16_t q = 0; q < info.nb_tx_queues && q < RTE_MAX_QUEUES_PER_PORT; q++) {
		watch.queues[q].cb = rte_eth_add_tx_callback(port, q, stamp, &watch.queues[q]);
		if (watch.queues[q].cb == NULL) {
			rc = -rte_errno;
			break;
		}
		watch.n_queues = (uint16_t)(q + 1);
	}
	return rc;
}

/* Stop watching, before the device is closed. A burst already in the callback finishes with it. */
void
opte_fast_bench_unwatch_tx(void)
{
	for (uint16_t q = 0; q < watch.n_queues; q++)
		rte_eth_remove_tx_callback(watch.port, q, watch.queues[q].cb);
	watch.n_queues = 0;
}

/* The latest Geneve frame's stamp over all queues (CLOCK_MONOTONIC ns; 0: none yet). */
uint64_t
opte_fast_bench_watch_last_ns(void)
{
	uint64_t last = 0;

	for (uint16_t q = 0; q < watch.n_queues; q++)
		last = RTE_MAX(last, __atomic_load_n(&watch.queues[q].last_ns, __ATOMIC_RELAXED));
	return last;
}

/* Geneve frames sent since the watch began, all queues. */
uint64_t
opte_fast_bench_watch_frames(void)
{
	uint64_t frames = 0;

	for (uint16_t q = 0; q < watch.n_queues; q++)
		frames += __atomic_load_n(&watch.queues[q].frames, __ATOMIC_RELAXED);
	return frames;
}
