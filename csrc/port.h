/* Ports (port.c): added before of_dp_start; configured, started, stopped and closed by the life cycle. */
#ifndef OF_PORT_H
#define OF_PORT_H

#include <stdint.h>

#include "dp_types.h"

/* Return the port index (0..OF_MAX_PORTS-1). */
int of_dp_add_port(struct of_dp *dp, const char *devargs, enum of_port_role role, const char *name);
/* A ring port: n_rx_queues RX rings (worker w polls queue w), one TX ring that every worker sends to. */
int of_dp_add_ring_port(struct of_dp *dp, const char *name, enum of_port_role role, uint32_t ring_size,
			uint16_t n_rx_queues);
int of_dp_set_exception(struct of_dp *dp, uint16_t uplink, uint16_t exception_port);
uint16_t of_dp_n_ports(const struct of_dp *dp);

/* The life cycle's (dataplane.c). */
int of_ports_start(struct of_dp *dp);
void of_ports_stop(struct of_dp *dp);
void of_ports_close(struct of_dp *dp);

#endif
