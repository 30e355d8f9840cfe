/*
 * Packet capture with DPDK's own tools. An instance that keeps its shared
 * config (its own --file-prefix, no --no-shconf) serves rte_pdump's requests:
 * dpdk-dumpcap, a secondary process, asks for a port, and rte_pdump puts RX
 * and TX callbacks on its queues that copy each frame to dumpcap's ring. No
 * cost while nobody captures; the workers run the callbacks while one does.
 */
#include <rte_errno.h>
#include <rte_pdump.h>

#include "capture.h"
#include "error.h"

static int capture_ready;

int
of_capture_init(void)
{
	if (capture_ready)
		return 0;
	if (rte_pdump_init() != 0) {
		of_set_error("cannot serve packet capture (rte_pdump_init): %s; it needs the EAL's shared config, "
			     "so no --no-shconf", rte_strerror(rte_errno));
		return -rte_errno;
	}
	capture_ready = 1;
	return 0;
}

void
of_capture_uninit(void)
{
	if (capture_ready)
		rte_pdump_uninit();
	capture_ready = 0;
}
