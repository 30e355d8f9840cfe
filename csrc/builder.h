/*
 * Tables (tables.c): a builder collects the complete desired state; commit
 * builds a snapshot from it and swaps it in (tables.h).
 */
#ifndef OF_BUILDER_H
#define OF_BUILDER_H

#include <stdint.h>

#include "dp_types.h"

struct of_builder *of_builder_new(struct of_dp *dp);
int of_builder_guest(struct of_builder *b, uint16_t port, uint32_t vni, const uint8_t mac[6], const uint8_t gw_mac[6]);
int of_builder_v2p(struct of_builder *b, uint32_t vni, const uint8_t ip[16], const uint8_t underlay[16], const uint8_t mac[6]);
int of_builder_tep(struct of_builder *b, uint16_t id, const uint8_t addr[16], uint32_t vni, int up);
int of_builder_tep_set(struct of_builder *b, uint16_t set, const uint16_t *teps, uint16_t n);
/* prefix: 16 bytes; IPv4 prefixes as v4-mapped with depth 96 + v4 depth. */
int of_builder_v2b(struct of_builder *b, const uint8_t prefix[16], uint8_t depth, uint16_t set);
int of_builder_nexthop(struct of_builder *b, uint16_t id, uint16_t uplink, const uint8_t mac[6], int up);
int of_builder_nh_group(struct of_builder *b, uint16_t group, const uint16_t *nhs, uint16_t n);
int of_builder_route(struct of_builder *b, const uint8_t prefix[16], uint8_t depth, uint16_t group);
/*
 * A TEP set's or nexthop group's bucket table as saved before a restart (member id per
 * bucket, OF_NO_ID for none; n = the data plane's bucket count). The commit builds the
 * table from it instead of from the previous snapshot's, so the members still live keep
 * their buckets. Give it only for a set or group new in this commit.
 */
int of_builder_tep_set_restore(struct of_builder *b, uint16_t set, const uint16_t *buckets, uint32_t n);
int of_builder_nh_group_restore(struct of_builder *b, uint16_t group, const uint16_t *buckets, uint32_t n);
/* A guest port's network (dp_types.h), after its of_builder_guest; without it the port
 * may send from no IP address at all. */
int of_builder_guest_net(struct of_builder *b, uint16_t port, const struct of_guest_net *net);
/* Build, publish, wait until no worker holds the old tables, free them. Frees b. */
int of_builder_commit(struct of_builder *b);
void of_builder_free(struct of_builder *b);

#endif
