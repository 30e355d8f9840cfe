/* Frames in and out of ring ports (ring_io.h): the tests' and the demo's wire. */
#include <errno.h>
#include <string.h>

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "dp.h"
#include "error.h"
#include "ring_io.h"

/* A ring port and one of its RX queues, or an error set. */
static int
ring_rx_queue_ok(const struct of_dp *dp, uint16_t port, uint16_t queue)
{
	if (port >= dp->n_ports || dp->ports[port].ring_tx == NULL) {
		of_set_error("port %u is not a ring port", port);
		return 0;
	}
	if (queue >= dp->ports[port].n_ring_rx) {
		of_set_error("ring port %u has no RX queue %u", port, queue);
		return 0;
	}
	return 1;
}

/* One frame as a chain of segments of at most seg_bytes (0: as many as an mbuf holds); NULL if the pool ran dry. */
static struct rte_mbuf *
chained_frame(struct rte_mempool *pool, const uint8_t *data, uint32_t len, uint32_t seg_bytes)
{
	struct rte_mbuf *head = NULL, *tail = NULL;
	uint32_t off = 0;

	do {
		struct rte_mbuf *seg = rte_pktmbuf_alloc(pool);
		uint32_t k;

		if (seg == NULL) {
			rte_pktmbuf_free(head);
			return NULL;
		}
		k = RTE_MIN(len - off, (uint32_t)rte_pktmbuf_tailroom(seg));
		if (seg_bytes != 0)
			k = RTE_MIN(k, seg_bytes);
		memcpy(rte_pktmbuf_append(seg, (uint16_t)k), data + off, k);
		off += k;
		if (head == NULL) {
			head = seg;
		} else {
			tail->next = seg;
			head->nb_segs++;
			head->pkt_len += k;
		}
		tail = seg;
	} while (off < len);
	return head;
}

/* One frame flagged as net_vhost flags a virtio-net guest's offloads (gso.h). */
static void
flag_offloads(struct rte_mbuf *m, uint16_t tso_segsz, int csum_partial)
{
	if (csum_partial || tso_segsz != 0)
		m->ol_flags |= RTE_MBUF_F_RX_L4_CKSUM_NONE;
	if (tso_segsz != 0) {
		m->ol_flags |= RTE_MBUF_F_RX_LRO;
		m->tso_segsz = tso_segsz;
	}
}

int
of_dp_ring_inject_chained(struct of_dp *dp, uint16_t port, uint16_t queue, const uint8_t *data,
			  const uint32_t *lens, unsigned n, uint32_t seg_bytes, uint16_t tso_segsz, int csum_partial)
{
	struct rte_mbuf *chunk[OF_MAX_BURST];
	unsigned done = 0;

	if (!ring_rx_queue_ok(dp, port, queue))
		return -EINVAL;
	/* A chunk at a time, enqueued at once: a worker's RX burst takes all of it or none of it, as
	 * from a NIC's ring, so the bursts a test sees do not depend on when the worker polled. */
	while (done < n) {
		unsigned k = 0, queued;
		int pool_empty = 0;

		while (k < RTE_DIM(chunk) && done + k < n) {
			struct rte_mbuf *m = chained_frame(dp->pool, data, lens[done + k], seg_bytes);

			if (m == NULL) {
				pool_empty = 1;
				break;
			}
			flag_offloads(m, tso_segsz, csum_partial);
			data += lens[done + k];
			chunk[k++] = m;
		}
		queued = rte_ring_enqueue_burst(dp->ports[port].ring_rx[queue], (void **)chunk, k, NULL);
		rte_pktmbuf_free_bulk(chunk + queued, k - queued);
		done += queued;
		if (queued < k)
			break;	/* the ring is full */
		if (pool_empty) {
			__atomic_fetch_add(&dp->ports[port].ring_rx_no_mbuf, n - done, __ATOMIC_RELAXED);
			break;
		}
	}
	return (int)done;
}

/* Frames that fit in one mbuf: those before the first that does not are injected whole. */
int
of_dp_ring_inject(struct of_dp *dp, uint16_t port, uint16_t queue, const uint8_t *data, const uint32_t *lens,
		  unsigned n)
{
	uint32_t room = (uint32_t)dp->cfg.mbuf_data_room - RTE_PKTMBUF_HEADROOM;
	unsigned fit = 0;

	while (fit < n && lens[fit] <= room)
		fit++;
	return of_dp_ring_inject_chained(dp, port, queue, data, lens, fit, 0, 0, 0);
}

static uint16_t
take_before_tx(uint16_t port_id __rte_unused, uint16_t queue __rte_unused, struct rte_mbuf **pkts __rte_unused,
	       uint16_t n, void *arg)
{
	const struct of_port *p = arg;
	struct rte_mbuf *taken[OF_MAX_BURST];
	unsigned k = rte_ring_dequeue_burst(p->ring_tx, (void **)taken, p->ring_take_per_tx, NULL);

	rte_pktmbuf_free_bulk(taken, k);
	return n;
}

int
of_dp_ring_take_on_tx(struct of_dp *dp, uint16_t port, uint16_t per_tx)
{
	struct of_port *p;

	if (port >= dp->n_ports || dp->ports[port].ring_tx == NULL) {
		of_set_error("port %u is not a ring port", port);
		return -EINVAL;
	}
	p = &dp->ports[port];
	if (!dp->running || dp->n_workers != 1 || p->ring_take != NULL) {
		of_set_error("a ring port takes frames on transmit once, while one worker runs");
		return -EINVAL;
	}
	if (per_tx == 0 || per_tx > OF_MAX_BURST) {
		of_set_error("frames taken per transmit must be 1..%d", OF_MAX_BURST);
		return -EINVAL;
	}
	p->ring_take_per_tx = per_tx;
	p->ring_take = rte_eth_add_tx_callback(p->port_id, 0, take_before_tx, p);
	if (p->ring_take == NULL) {
		of_set_error("port %u: cannot add a transmit callback: %s", port, rte_strerror(rte_errno));
		return -rte_errno;
	}
	return 0;
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
