/*
 * Packet capture (capture.c): rte_pdump serves dpdk-dumpcap and dpdk-pdump (secondary
 * processes) on every port. Needs an EAL with its shared config (no --no-shconf); once per
 * process, undone by of_eal_cleanup.
 */
#ifndef OF_CAPTURE_H
#define OF_CAPTURE_H

int of_capture_init(void);
void of_capture_uninit(void);

#endif
