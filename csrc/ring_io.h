/* Frames in and out of ring ports (ring_io.c), for tests and the demo: no worker is involved. */
#ifndef OF_RING_IO_H
#define OF_RING_IO_H

#include <stdint.h>

#include "dp_types.h"

/* Frames in on an RX queue's ring: data holds n frames back to back, lens[i] bytes each.
 * Returns how many were queued (fewer when the ring or the pool is full). */
int of_dp_ring_inject(struct of_dp *dp, uint16_t port, uint16_t queue, const uint8_t *data, const uint32_t *lens,
		      unsigned n);
/* The same, each frame in a chain of segments of at most seg_bytes (0: as many as an mbuf holds), flagged as
 * net_vhost flags a guest's offloads: tso_segsz (not 0) a TSO frame, csum_partial a partial L4 checksum. */
int of_dp_ring_inject_chained(struct of_dp *dp, uint16_t port, uint16_t queue, const uint8_t *data,
			      const uint32_t *lens, unsigned n, uint32_t seg_bytes, uint16_t tso_segsz, int csum_partial);
/* Make a running ring port's TX ring a VM's receive ring, emptied by its own vCPU as the worker fills it:
 * each transmit to the port first takes up to per_tx frames off the ring (and frees them). One worker
 * only (the ring has one consumer); undone when the port closes. */
int of_dp_ring_take_on_tx(struct of_dp *dp, uint16_t port, uint16_t per_tx);
/* Dequeue up to max frames into buf (room bytes); lens[i] per frame. Returns the count. */
int of_dp_ring_collect(struct of_dp *dp, uint16_t port, uint8_t *buf, uint32_t room, uint32_t *lens, unsigned max);

#endif
