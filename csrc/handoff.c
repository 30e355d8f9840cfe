/* Worker handoff (handoff.h): the rings between workers, and both ends of them. */
#include <errno.h>
#include <stdio.h>

#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "error.h"
#include "handoff.h"

int
of_handoff_create(struct of_dp *dp)
{
	char name[RTE_RING_NAMESIZE];
	struct of_handoff *h;

	if (dp->n_workers < 2)
		return 0;
	h = rte_zmalloc("of_handoff", sizeof(*h) + dp->n_workers * sizeof(h->ring[0]), RTE_CACHE_LINE_SIZE);
	if (h == NULL) {
		of_set_error("out of memory for the handoff rings");
		return -ENOMEM;
	}
	dp->handoff = h;
	for (uint16_t i = 0; i < dp->n_ports; i++)
		h->port_of_ethdev[dp->ports[i].port_id] = i;
	for (unsigned w = 0; w < dp->n_workers; w++) {
		snprintf(name, sizeof(name), "of%u_handoff%u", dp->instance, w);
		h->ring[w] = rte_ring_create(name, OF_HANDOFF_RING_SIZE, (int)rte_lcore_to_socket_id(dp->lcores[w].lcore_id),
					     RING_F_SC_DEQ);
		if (h->ring[w] == NULL) {
			of_set_error("cannot create handoff ring %s: %s", name, rte_strerror(rte_errno));
			of_handoff_free(dp);
			return -ENOMEM;
		}
	}
	return 0;
}

void
of_handoff_free(struct of_dp *dp)
{
	struct of_handoff *h = dp->handoff;
	struct rte_mbuf *m;

	if (h == NULL)
		return;
	for (unsigned w = 0; w < dp->n_workers; w++) {
		while (h->ring[w] != NULL && rte_ring_dequeue(h->ring[w], (void **)&m) == 0)
			rte_pktmbuf_free(m);
		rte_ring_free(h->ring[w]);
	}
	rte_free(h);
	dp->handoff = NULL;
}

uint16_t
of_handoff_split(struct of_dp *dp, struct of_lcore *lc, uint16_t port, struct rte_mbuf **pkts,
		 struct of_inner_meta *meta, uint32_t *hashes, uint16_t n)
{
	struct of_handoff *h = dp->handoff;
	struct rte_mbuf *foreign[OF_MAX_BURST], *batch[OF_MAX_BURST];
	uint16_t owner_of[OF_MAX_BURST];
	uint16_t kept = 0, n_foreign = 0;

	for (uint16_t i = 0; i < n; i++) {
		uint16_t owner = of_flow_owner(hashes[i], dp->n_workers);

		if (owner == lc->worker) {
			if (kept != i) {
				pkts[kept] = pkts[i];
				meta[kept] = meta[i];
				hashes[kept] = hashes[i];
			}
			kept++;
			continue;
		}
		pkts[i]->hash.rss = hashes[i];
		pkts[i]->port = dp->ports[port].port_id;
		foreign[n_foreign] = pkts[i];
		owner_of[n_foreign++] = owner;
	}
	/* One bulk enqueue per owner, each owner's frames in their order of arrival. */
	for (uint16_t first = 0; first < n_foreign; first++) {
		uint16_t owner = owner_of[first];
		unsigned n_batch = 0, sent;

		if (owner == OF_NO_ID)
			continue;
		for (uint16_t i = first; i < n_foreign; i++)
			if (owner_of[i] == owner) {
				batch[n_batch++] = foreign[i];
				owner_of[i] = OF_NO_ID;
			}
		sent = rte_ring_enqueue_burst(h->ring[owner], (void **)batch, n_batch, NULL);
		lc->counters[OF_C_HANDED_OFF] += sent;
		if (unlikely(sent < n_batch)) {
			lc->counters[OF_C_HANDOFF_FULL] += n_batch - sent;
			rte_pktmbuf_free_bulk(&batch[sent], n_batch - sent);
		}
	}
	return kept;
}

unsigned
of_handoff_receive(struct of_dp *dp, struct of_lcore *lc, struct rte_mbuf **pkts)
{
	return rte_ring_sc_dequeue_burst(dp->handoff->ring[lc->worker], (void **)pkts, dp->cfg.burst, NULL);
}
