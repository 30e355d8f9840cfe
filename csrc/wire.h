/*
 * Wire formats that DPDK has no struct for: the Geneve header and options
 * (RFC 8926) with Oxide's option class, and the IPv6 neighbor discovery
 * messages (RFC 4861) the uplinks answer. Structs and constants only.
 */
#ifndef OF_WIRE_H
#define OF_WIRE_H

#include <stdint.h>

#include <rte_common.h>
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_udp.h>

/* Geneve fixed header, 8 bytes. */
struct of_geneve_hdr {
	uint8_t ver_opt_len;	/* version (2 bits) | option length in 4-byte words (6 bits) */
	uint8_t flags;		/* O, C, 6 reserved bits */
	rte_be16_t protocol;	/* ethertype of the payload */
	uint8_t vni[3];
	uint8_t reserved;
} __rte_packed;

#define OF_GENEVE_VER_SHIFT		6
#define OF_GENEVE_OPT_LEN_MASK		0x3f
#define OF_GENEVE_FLAG_OAM		0x80	/* control packet, not for the data plane */
#define OF_GENEVE_FLAG_CRITICAL		0x40	/* some option has its critical bit set */

/* Geneve option header, 4 bytes, followed by the body. */
struct of_geneve_opt_hdr {
	rte_be16_t opt_class;
	uint8_t type;		/* high bit: critical */
	uint8_t flags_len;	/* 3 reserved bits | body length in 4-byte words (5 bits) */
} __rte_packed;

#define OF_GENEVE_OPT_TYPE_CRITICAL	0x80
#define OF_GENEVE_OPT_BODY_LEN_MASK	0x1f

#define OF_GENEVE_PORT			6081
#define OF_GENEVE_PROTO_ETHER		0x6558

/* Oxide's option class; its types are matched without the critical bit. */
#define OF_GENEVE_CLASS_OXIDE		0x0129
#define OF_OXIDE_OPT_EXTERNAL		0x00	/* from outside the rack, no body */
#define OF_OXIDE_OPT_MULTICAST		0x01	/* 4-byte body */
#define OF_OXIDE_OPT_MSS		0x02	/* 4-byte body */
#define OF_OXIDE_OPT_MULTICAST_LEN	4
#define OF_OXIDE_OPT_MSS_LEN		4

/* Outer headers of an option-less Geneve frame: Ethernet, IPv6, UDP, Geneve. */
#define OF_OUTER_HDR_LEN		70
_Static_assert(OF_OUTER_HDR_LEN == sizeof(struct rte_ether_hdr) +
	       sizeof(struct rte_ipv6_hdr) + sizeof(struct rte_udp_hdr) +
	       sizeof(struct of_geneve_hdr), "outer header length");

/* Inner destination MAC of frames sent toward boundary services. */
#define OF_BOUNDARY_MAC_INIT		{ 0xa8, 0x40, 0x25, 0x77, 0x77, 0x77 }

/* ICMP and ICMPv6 types (RFC 792, 4443, 4861); DPDK 24.11 renamed its own. */
#define OF_ICMP_ECHO_REPLY		0
#define OF_ICMP_ECHO_REQUEST		8
#define OF_ICMP6_ECHO_REQUEST		128
#define OF_ICMP6_ECHO_REPLY		129
#define OF_ICMP6_NEIGH_SOLICIT		135
#define OF_ICMP6_NEIGH_ADVERT		136

/* Neighbor solicitation and advertisement body, 24 bytes, then options. */
struct of_nd_msg {
	uint8_t type;
	uint8_t code;
	rte_be16_t cksum;
	rte_be32_t flags;	/* advertisement: R, S, O; solicitation: reserved */
	uint8_t target[16];
} __rte_packed;

#define OF_ND_NA_FLAG_ROUTER		0x80000000u
#define OF_ND_NA_FLAG_SOLICITED		0x40000000u
#define OF_ND_NA_FLAG_OVERRIDE		0x20000000u

/* Neighbor discovery options: type, length in 8-byte units, value. */
struct of_nd_opt_lladdr {
	uint8_t type;
	uint8_t len;
	uint8_t mac[RTE_ETHER_ADDR_LEN];
} __rte_packed;

#define OF_ND_OPT_SOURCE_LLADDR		1
#define OF_ND_OPT_TARGET_LLADDR		2
#define OF_ND_OPT_UNIT			8

#define OF_ND_HOP_LIMIT			255	/* proves the sender is on-link */

#endif
