/*
 * A guest port's network (struct of_guest_net, dp_types.h): its defaults,
 * its check, and the per-packet test that a source address is one of the
 * port's. A leaf: the builder (tables.c) and the packet path (guest.c,
 * dhcp.c) both use it.
 */
#ifndef OF_GUEST_NET_H
#define OF_GUEST_NET_H

#include <stdint.h>
#include <string.h>

#include "dp_types.h"
#include "parse.h"

/* The defaults of a guest entry given no network: no address, MTU OF_GUEST_MTU_DEFAULT. */
void of_guest_net_default(struct of_guest_net *n);

/* NULL if n is usable, else what is wrong with it (one line). */
const char *of_guest_net_problem(const struct of_guest_net *n);

/* Whether src (16 bytes, IPv4 v4-mapped) lies in one of the port's allowed extra prefixes. */
int of_guest_src_in_allowed(const struct of_guest_net *n, const uint8_t src[16], int is_ipv6);

/* Per packet: 1 if the parsed packet's source address is the port's, or allowed. */
static inline int
of_guest_src_ok(const struct of_guest_net *n, const struct of_inner_meta *m)
{
	if (m->is_ipv6 ? n->has_ipv6 && memcmp(m->key.src, n->ipv6, 16) == 0 :
			 n->has_ipv4 && memcmp(m->key.src + 12, n->ipv4, 4) == 0)
		return 1;
	return n->n_allowed != 0 && of_guest_src_in_allowed(n, m->key.src, m->is_ipv6);
}

#endif
