/* The data plane on the DPDK telemetry socket (telemetry.c). Control thread, by the life cycle. */
#ifndef OF_TELEMETRY_H
#define OF_TELEMETRY_H

#include <stdint.h>

#include "dp_types.h"

void of_telemetry_attach(struct of_dp *dp);
void of_telemetry_detach(struct of_dp *dp);

/*
 * What a TEP (kind 0) or nexthop (kind 1) id stands for, as the control plane keys it: the
 * prefix of its V2B entry or route, and a nexthop's gateway. Only names: the telemetry
 * endpoints /opte_fast/teps and /opte_fast/nexthops show them beside the tables' state.
 * An empty prefix forgets the id.
 */
int of_dp_name_member(struct of_dp *dp, int kind, uint16_t id, const char *prefix, const char *gateway);

#endif
