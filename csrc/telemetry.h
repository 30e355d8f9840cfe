/* The data plane on the DPDK telemetry socket (telemetry.c). Control thread, by the life cycle. */
#ifndef OF_TELEMETRY_H
#define OF_TELEMETRY_H

#include "dp_types.h"

void of_telemetry_attach(struct of_dp *dp);
void of_telemetry_detach(struct of_dp *dp);

#endif
