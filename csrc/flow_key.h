/* The outbound flow key: what pins a guest flow to one path. */
#ifndef OF_FLOW_KEY_H
#define OF_FLOW_KEY_H

#include <stdint.h>

/*
 * 48 bytes so rte_hash compares it in three 16-byte vector steps.
 * IPv4 addresses are stored v4-mapped (::ffff:a.b.c.d); ICMP/ICMPv6 echo
 * identifiers go in src_port (dst_port 0) so a ping is one flow.
 */
struct of_flow_key {
	uint32_t vni;		/* host order, 24 bits used */
	uint8_t proto;		/* IPPROTO_* */
	uint8_t pad0[3];
	uint8_t src[16];
	uint8_t dst[16];
	uint16_t src_port;	/* host order */
	uint16_t dst_port;	/* host order */
	uint32_t pad1;
} __attribute__((aligned(16)));

_Static_assert(sizeof(struct of_flow_key) == 48, "flow key must be 48 bytes");

#endif
