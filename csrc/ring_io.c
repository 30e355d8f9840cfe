/* Frames in and out of ring ports (ring_io.h): the tests' and the demo's wire. */
#include <errno.h>
#include <string.h>

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

int
of_dp_ring_inject_chained(struct of_dp *dp, uint16_t port, uint16_t queue, const uint8_t *data,
			  const uint32_t *lens, unsigned n, uint32_t seg_bytes, uint16_t tso_segsz, int csum_partial)
{
	unsigned done = 0;

	if (!ring_rx_queue_ok(dp, port, queue))
		return -EINVAL;
	for (; done < n; data += lens[done], done++) {
		struct rte_mbuf *m = chained_frame(dp->pool, data, lens[done], seg_bytes);

		if (m == NULL) {
			__atomic_fetch_add(&dp->ports[port].ring_rx_no_mbuf, n - done, __ATOMIC_RELAXED);
			break;
		}
		/* as net_vhost marks a virtio-net guest's frames (gso.h) */
		if (csum_partial || tso_segsz != 0)
			m->ol_flags |= RTE_MBUF_F_RX_L4_CKSUM_NONE;
		if (tso_segsz != 0) {
			m->ol_flags |= RTE_MBUF_F_RX_LRO;
			m->tso_segsz = tso_segsz;
		}
		if (rte_ring_enqueue(dp->ports[port].ring_rx[queue], m) != 0) {
			rte_pktmbuf_free(m);
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
