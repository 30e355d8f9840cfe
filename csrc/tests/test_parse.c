/*
 * Tests of the inner and outer parsers. The frames are written out byte by
 * byte; they were built apart from this code and decoded by tshark, which
 * found every IPv4, TCP, UDP and ICMP checksum in them right (the UDP
 * checksum of GNV_PLAIN, GNV_MCAST_MSS, GNV_VLAN and GNV_FRAG is zero).
 * Guest 172.30.0.5 / fd77:e9d2:9cd9:2::5, remote 198.51.100.20 / 2001:db8::20,
 * sled underlay fd00:0:f7:101::1, TEP fd00:99::1, VNI 0xabcd.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include <rte_byteorder.h>
#include <rte_icmp.h>
#include <rte_tcp.h>

#include "check.h"
#include "parse.h"
#include "wire.h"

static const uint8_t V4_TCP[] = {
	0xa8, 0x40, 0x25, 0xff, 0x00, 0x01, 0xa8, 0x40,	/* eth */
	0x25, 0xf0, 0x00, 0x05, 0x08, 0x00,
	0x45, 0x00, 0x00, 0x2c, 0x1c, 0x46, 0x40, 0x00,	/* ipv4 */
	0x40, 0x06, 0x48, 0x1b, 0xac, 0x1e, 0x00, 0x05,
	0xc6, 0x33, 0x64, 0x14,
	0x9c, 0x40, 0x01, 0xbb, 0x01, 0x02, 0x03, 0x04,	/* tcp, mss option */
	0x00, 0x00, 0x00, 0x00, 0x60, 0x02, 0xfa, 0xf0,
	0x24, 0xc9, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4,
	0x00, 0x00,				/* padding */
};

static const uint8_t V4_UDP[] = {
	0xa8, 0x40, 0x25, 0xff, 0x00, 0x01, 0xa8, 0x40,	/* eth */
	0x25, 0xf0, 0x00, 0x05, 0x08, 0x00,
	0x45, 0x00, 0x00, 0x20, 0x1c, 0x46, 0x40, 0x00,	/* ipv4 */
	0x40, 0x11, 0x48, 0x1c, 0xac, 0x1e, 0x00, 0x05,
	0xc6, 0x33, 0x64, 0x14,
	0xa0, 0x28, 0x1b, 0x58, 0x00, 0x0c, 0xa9, 0x23,	/* udp */
	0x61, 0x62, 0x63, 0x64,			/* payload */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,	/* padding */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

static const uint8_t V4_ICMP_ECHO[] = {
	0xa8, 0x40, 0x25, 0xff, 0x00, 0x01, 0xa8, 0x40,	/* eth */
	0x25, 0xf0, 0x00, 0x05, 0x08, 0x00,
	0x45, 0x00, 0x00, 0x24, 0x1c, 0x46, 0x40, 0x00,	/* ipv4 */
	0x40, 0x01, 0x48, 0x28, 0xac, 0x1e, 0x00, 0x05,
	0xc6, 0x33, 0x64, 0x14,
	0x08, 0x00, 0x28, 0x23, 0x12, 0x34, 0x00, 0x01,	/* icmp echo request */
	0x70, 0x69, 0x6e, 0x67, 0x70, 0x6f, 0x6e, 0x67,	/* payload */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,	/* padding */
	0x00, 0x00,
};

static const uint8_t V4_OPTS_UDP[] = {
	0xa8, 0x40, 0x25, 0xff, 0x00, 0x01, 0xa8, 0x40,	/* eth */
	0x25, 0xf0, 0x00, 0x05, 0x08, 0x00,
	0x46, 0x00, 0x00, 0x24, 0x1c, 0x46, 0x40, 0x00,	/* ipv4, router alert option */
	0x40, 0x11, 0xb3, 0x13, 0xac, 0x1e, 0x00, 0x05,
	0xc6, 0x33, 0x64, 0x14, 0x94, 0x04, 0x00, 0x00,
	0xa0, 0x29, 0x1b, 0x59, 0x00, 0x0c, 0x8a, 0x04,	/* udp */
	0x6f, 0x70, 0x74, 0x73,			/* payload */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,	/* padding */
	0x00, 0x00,
};

static const uint8_t VLAN_V4_UDP[] = {
	0xa8, 0x40, 0x25, 0xff, 0x00, 0x01, 0xa8, 0x40,	/* eth + 802.1Q */
	0x25, 0xf0, 0x00, 0x05, 0x81, 0x00, 0x00, 0x64,
	0x08, 0x00,
	0x45, 0x00, 0x00, 0x20, 0x1c, 0x46, 0x40, 0x00,	/* ipv4 */
	0x40, 0x11, 0x48, 0x1c, 0xac, 0x1e, 0x00, 0x05,
	0xc6, 0x33, 0x64, 0x14,
	0xa0, 0x28, 0x1b, 0x58, 0x00, 0x0c, 0xa9, 0x23,	/* udp */
	0x61, 0x62, 0x63, 0x64,			/* payload */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,	/* padding */
	0x00, 0x00,
};

static const uint8_t V6_TCP[] = {
	0xa8, 0x40, 0x25, 0xff, 0x00, 0x01, 0xa8, 0x40,	/* eth */
	0x25, 0xf0, 0x00, 0x05, 0x86, 0xdd,
	0x60, 0x01, 0x23, 0x45, 0x00, 0x16, 0x06, 0x40,	/* ipv6 */
	0xfd, 0x77, 0xe9, 0xd2, 0x9c, 0xd9, 0x00, 0x02,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20,
	0xc3, 0x50, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04,	/* tcp */
	0x0a, 0x0b, 0x0c, 0x0d, 0x50, 0x18, 0xfa, 0xf0,
	0xbc, 0xad, 0x00, 0x00,
	0x68, 0x69,				/* payload */
};

static const uint8_t V6_UDP[] = {
	0xa8, 0x40, 0x25, 0xff, 0x00, 0x01, 0xa8, 0x40,	/* eth */
	0x25, 0xf0, 0x00, 0x05, 0x86, 0xdd,
	0x60, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x11, 0x40,	/* ipv6 */
	0xfd, 0x77, 0xe9, 0xd2, 0x9c, 0xd9, 0x00, 0x02,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20,
	0x9c, 0x41, 0x1b, 0x58, 0x00, 0x0c, 0xd1, 0x71,	/* udp */
	0x61, 0x62, 0x63, 0x64,			/* payload */
};

static const uint8_t V6_ICMP6_ECHO[] = {
	0xa8, 0x40, 0x25, 0xff, 0x00, 0x01, 0xa8, 0x40,	/* eth */
	0x25, 0xf0, 0x00, 0x05, 0x86, 0xdd,
	0x60, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x3a, 0x40,	/* ipv6 */
	0xfd, 0x77, 0xe9, 0xd2, 0x9c, 0xd9, 0x00, 0x02,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20,
	0x80, 0x00, 0x2f, 0xed, 0xbe, 0xef, 0x00, 0x07,	/* icmpv6 echo request */
	0x70, 0x69, 0x6e, 0x67,			/* payload */
};

static const uint8_t V6_HBH_DST_UDP[] = {
	0xa8, 0x40, 0x25, 0xff, 0x00, 0x01, 0xa8, 0x40,	/* eth */
	0x25, 0xf0, 0x00, 0x05, 0x86, 0xdd,
	0x60, 0x00, 0x00, 0x00, 0x00, 0x1c, 0x00, 0x40,	/* ipv6 */
	0xfd, 0x77, 0xe9, 0xd2, 0x9c, 0xd9, 0x00, 0x02,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20,
	0x3c, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00,	/* hop-by-hop */
	0x11, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00,	/* destination options */
	0x04, 0xd2, 0x16, 0x2e, 0x00, 0x0c, 0x58, 0xe6,	/* udp */
	0x65, 0x78, 0x74, 0x73,			/* payload */
};

static const uint8_t V6_AH_UDP[] = {
	0xa8, 0x40, 0x25, 0xff, 0x00, 0x01, 0xa8, 0x40,	/* eth */
	0x25, 0xf0, 0x00, 0x05, 0x86, 0xdd,
	0x60, 0x00, 0x00, 0x00, 0x00, 0x24, 0x33, 0x40,	/* ipv6 */
	0xfd, 0x77, 0xe9, 0xd2, 0x9c, 0xd9, 0x00, 0x02,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20,
	0x11, 0x04, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00,	/* authentication header */
	0x00, 0x00, 0x00, 0x01, 0xa0, 0xa1, 0xa2, 0xa3,
	0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab,
	0x04, 0xd2, 0x16, 0x2e, 0x00, 0x0c, 0x5c, 0xf4,	/* udp */
	0x61, 0x75, 0x74, 0x68,			/* payload */
};

static const uint8_t V6_FRAG_UDP[] = {
	0xa8, 0x40, 0x25, 0xff, 0x00, 0x01, 0xa8, 0x40,	/* eth */
	0x25, 0xf0, 0x00, 0x05, 0x86, 0xdd,
	0x60, 0x00, 0x00, 0x00, 0x00, 0x14, 0x2c, 0x40,	/* ipv6 */
	0xfd, 0x77, 0xe9, 0xd2, 0x9c, 0xd9, 0x00, 0x02,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20,
	0x11, 0x00, 0x00, 0x01, 0x00, 0x00, 0xab, 0xcd,	/* fragment, offset 0, M */
	0x04, 0xd2, 0x16, 0x2e, 0x00, 0x0c, 0x6a, 0xf8,	/* udp */
	0x66, 0x72, 0x61, 0x67,			/* payload */
};

static const uint8_t ARP[] = {
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xa8, 0x40,	/* eth */
	0x25, 0xf0, 0x00, 0x05, 0x08, 0x06,
	0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,	/* arp request */
	0xa8, 0x40, 0x25, 0xf0, 0x00, 0x05, 0xac, 0x1e,
	0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xac, 0x1e, 0x00, 0x01,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,	/* padding */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00,
};

static const uint8_t GNV_PLAIN[] = {
	0x02, 0x08, 0x20, 0x01, 0x01, 0x01, 0x02, 0x00,	/* eth */
	0x00, 0x00, 0x00, 0x0a, 0x86, 0xdd,
	0x60, 0x05, 0xa5, 0xa5, 0x00, 0x3e, 0x11, 0x40,	/* ipv6 */
	0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0xfd, 0x00, 0x00, 0x00, 0x00, 0xf7, 0x01, 0x01,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0xc8, 0x22, 0x17, 0xc1, 0x00, 0x3e, 0x00, 0x00,	/* udp, checksum 0 */
	0x00, 0x00, 0x65, 0x58, 0x00, 0xab, 0xcd, 0x00,	/* geneve */
	0xa8, 0x40, 0x25, 0xf0, 0x00, 0x05, 0xa8, 0x40,	/* inner eth */
	0x25, 0x77, 0x77, 0x77, 0x08, 0x00,
	0x45, 0x00, 0x00, 0x20, 0x1c, 0x46, 0x40, 0x00,	/* inner ipv4 */
	0x40, 0x11, 0x48, 0x1c, 0xc6, 0x33, 0x64, 0x14,
	0xac, 0x1e, 0x00, 0x05,
	0x1b, 0x58, 0xa0, 0x28, 0x00, 0x0c, 0x7c, 0xf7,	/* inner udp */
	0x77, 0x78, 0x79, 0x7a,			/* payload */
};

static const uint8_t GNV_EXTERNAL_CSUM[] = {
	0x02, 0x08, 0x20, 0x01, 0x01, 0x01, 0x02, 0x00,	/* eth */
	0x00, 0x00, 0x00, 0x0a, 0x86, 0xdd,
	0x60, 0x05, 0xa5, 0xa5, 0x00, 0x42, 0x11, 0x40,	/* ipv6 */
	0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0xfd, 0x00, 0x00, 0x00, 0x00, 0xf7, 0x01, 0x01,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0xc8, 0x22, 0x17, 0xc1, 0x00, 0x42, 0xa8, 0xe8,	/* udp */
	0x01, 0x00, 0x65, 0x58, 0x00, 0xab, 0xcd, 0x00,	/* geneve */
	0x01, 0x29, 0x00, 0x00,			/* oxide external */
	0xa8, 0x40, 0x25, 0xf0, 0x00, 0x05, 0xa8, 0x40,	/* inner eth */
	0x25, 0x77, 0x77, 0x77, 0x08, 0x00,
	0x45, 0x00, 0x00, 0x20, 0x1c, 0x46, 0x40, 0x00,	/* inner ipv4 */
	0x40, 0x11, 0x48, 0x1c, 0xc6, 0x33, 0x64, 0x14,
	0xac, 0x1e, 0x00, 0x05,
	0x1b, 0x58, 0xa0, 0x28, 0x00, 0x0c, 0x7c, 0xf7,	/* inner udp */
	0x77, 0x78, 0x79, 0x7a,			/* payload */
};

static const uint8_t GNV_HBH_CSUM[] = {
	0x02, 0x08, 0x20, 0x01, 0x01, 0x01, 0x02, 0x00,	/* eth */
	0x00, 0x00, 0x00, 0x0a, 0x86, 0xdd,
	0x60, 0x05, 0xa5, 0xa5, 0x00, 0x46, 0x00, 0x40,	/* ipv6 */
	0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0xfd, 0x00, 0x00, 0x00, 0x00, 0xf7, 0x01, 0x01,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x11, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00,	/* hop-by-hop */
	0xc8, 0x22, 0x17, 0xc1, 0x00, 0x3e, 0xab, 0x19,	/* udp */
	0x00, 0x00, 0x65, 0x58, 0x00, 0xab, 0xcd, 0x00,	/* geneve */
	0xa8, 0x40, 0x25, 0xf0, 0x00, 0x05, 0xa8, 0x40,	/* inner eth */
	0x25, 0x77, 0x77, 0x77, 0x08, 0x00,
	0x45, 0x00, 0x00, 0x20, 0x1c, 0x46, 0x40, 0x00,	/* inner ipv4 */
	0x40, 0x11, 0x48, 0x1c, 0xc6, 0x33, 0x64, 0x14,
	0xac, 0x1e, 0x00, 0x05,
	0x1b, 0x58, 0xa0, 0x28, 0x00, 0x0c, 0x7c, 0xf7,	/* inner udp */
	0x77, 0x78, 0x79, 0x7a,			/* payload */
};

static const uint8_t GNV_MCAST_MSS[] = {
	0x02, 0x08, 0x20, 0x01, 0x01, 0x01, 0x02, 0x00,	/* eth */
	0x00, 0x00, 0x00, 0x0a, 0x86, 0xdd,
	0x60, 0x05, 0xa5, 0xa5, 0x00, 0x56, 0x11, 0x40,	/* ipv6 */
	0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0xfd, 0x00, 0x00, 0x00, 0x00, 0xf7, 0x01, 0x01,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0xc8, 0x22, 0x17, 0xc1, 0x00, 0x56, 0x00, 0x00,	/* udp, checksum 0 */
	0x06, 0x00, 0x65, 0x58, 0x00, 0xab, 0xcd, 0x00,	/* geneve */
	0x01, 0x29, 0x01, 0x01, 0x00, 0x00, 0x00, 0x02,	/* oxide multicast */
	0x01, 0x29, 0x02, 0x01, 0x00, 0x00, 0x05, 0xa0,	/* oxide mss 1440 */
	0x01, 0x01, 0x05, 0x01, 0xde, 0xad, 0xbe, 0xef,	/* ovs class, type 5 */
	0xa8, 0x40, 0x25, 0xf0, 0x00, 0x05, 0xa8, 0x40,	/* inner eth */
	0x25, 0x77, 0x77, 0x77, 0x08, 0x00,
	0x45, 0x00, 0x00, 0x20, 0x1c, 0x46, 0x40, 0x00,	/* inner ipv4 */
	0x40, 0x11, 0x48, 0x1c, 0xc6, 0x33, 0x64, 0x14,
	0xac, 0x1e, 0x00, 0x05,
	0x1b, 0x58, 0xa0, 0x28, 0x00, 0x0c, 0x7c, 0xf7,	/* inner udp */
	0x77, 0x78, 0x79, 0x7a,			/* payload */
};

static const uint8_t GNV_VLAN[] = {
	0x02, 0x08, 0x20, 0x01, 0x01, 0x01, 0x02, 0x00,	/* eth + 802.1Q */
	0x00, 0x00, 0x00, 0x0a, 0x81, 0x00, 0x00, 0x04,
	0x86, 0xdd,
	0x60, 0x05, 0xa5, 0xa5, 0x00, 0x3e, 0x11, 0x40,	/* ipv6 */
	0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0xfd, 0x00, 0x00, 0x00, 0x00, 0xf7, 0x01, 0x01,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0xc8, 0x22, 0x17, 0xc1, 0x00, 0x3e, 0x00, 0x00,	/* udp, checksum 0 */
	0x00, 0x00, 0x65, 0x58, 0x00, 0xab, 0xcd, 0x00,	/* geneve */
	0xa8, 0x40, 0x25, 0xf0, 0x00, 0x05, 0xa8, 0x40,	/* inner eth */
	0x25, 0x77, 0x77, 0x77, 0x08, 0x00,
	0x45, 0x00, 0x00, 0x20, 0x1c, 0x46, 0x40, 0x00,	/* inner ipv4 */
	0x40, 0x11, 0x48, 0x1c, 0xc6, 0x33, 0x64, 0x14,
	0xac, 0x1e, 0x00, 0x05,
	0x1b, 0x58, 0xa0, 0x28, 0x00, 0x0c, 0x7c, 0xf7,	/* inner udp */
	0x77, 0x78, 0x79, 0x7a,			/* payload */
};

static const uint8_t GNV_FRAG[] = {
	0x02, 0x08, 0x20, 0x01, 0x01, 0x01, 0x02, 0x00,	/* eth */
	0x00, 0x00, 0x00, 0x0a, 0x86, 0xdd,
	0x60, 0x05, 0xa5, 0xa5, 0x00, 0x46, 0x2c, 0x40,	/* ipv6 */
	0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0xfd, 0x00, 0x00, 0x00, 0x00, 0xf7, 0x01, 0x01,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x11, 0x00, 0x00, 0x01, 0x00, 0x00, 0x12, 0x34,	/* fragment, offset 0, M */
	0xc8, 0x22, 0x17, 0xc1, 0x00, 0x3e, 0x00, 0x00,	/* udp, checksum 0 */
	0x00, 0x00, 0x65, 0x58, 0x00, 0xab, 0xcd, 0x00,	/* geneve */
	0xa8, 0x40, 0x25, 0xf0, 0x00, 0x05, 0xa8, 0x40,	/* inner eth */
	0x25, 0x77, 0x77, 0x77, 0x08, 0x00,
	0x45, 0x00, 0x00, 0x20, 0x1c, 0x46, 0x40, 0x00,	/* inner ipv4 */
	0x40, 0x11, 0x48, 0x1c, 0xc6, 0x33, 0x64, 0x14,
	0xac, 0x1e, 0x00, 0x05,
	0x1b, 0x58, 0xa0, 0x28, 0x00, 0x0c, 0x7c, 0xf7,	/* inner udp */
	0x77, 0x78, 0x79, 0x7a,			/* payload */
};


/* Host-order ports; IPv4 v4-mapped; padding and vni zero. */
#define V4MAPPED(a, b, c, d)	{ [10] = 0xff, [11] = 0xff, a, b, c, d }
#define GUEST6	{ 0xfd, 0x77, 0xe9, 0xd2, 0x9c, 0xd9, 0x00, 0x02, [15] = 0x05 }
#define REMOTE6	{ 0x20, 0x01, 0x0d, 0xb8, [15] = 0x20 }

static const struct of_flow_key KEY_V4_TCP = {
	.proto = IPPROTO_TCP,
	.src = V4MAPPED(172, 30, 0, 5), .dst = V4MAPPED(198, 51, 100, 20),
	.src_port = 40000, .dst_port = 443,
};
static const struct of_flow_key KEY_V4_UDP = {
	.proto = IPPROTO_UDP,
	.src = V4MAPPED(172, 30, 0, 5), .dst = V4MAPPED(198, 51, 100, 20),
	.src_port = 41000, .dst_port = 7000,
};
static const struct of_flow_key KEY_V4_ICMP_ECHO = {
	.proto = IPPROTO_ICMP,
	.src = V4MAPPED(172, 30, 0, 5), .dst = V4MAPPED(198, 51, 100, 20),
	.src_port = 0x1234,
};
static const struct of_flow_key KEY_V4_OPTS_UDP = {
	.proto = IPPROTO_UDP,
	.src = V4MAPPED(172, 30, 0, 5), .dst = V4MAPPED(198, 51, 100, 20),
	.src_port = 41001, .dst_port = 7001,
};
static const struct of_flow_key KEY_V6_TCP = {
	.proto = IPPROTO_TCP, .src = GUEST6, .dst = REMOTE6,
	.src_port = 50000, .dst_port = 80,
};
static const struct of_flow_key KEY_V6_UDP = {
	.proto = IPPROTO_UDP, .src = GUEST6, .dst = REMOTE6,
	.src_port = 40001, .dst_port = 7000,
};
static const struct of_flow_key KEY_V6_ICMP6_ECHO = {
	.proto = IPPROTO_ICMPV6, .src = GUEST6, .dst = REMOTE6,
	.src_port = 0xbeef,
};
static const struct of_flow_key KEY_V6_EXT_UDP = {
	.proto = IPPROTO_UDP, .src = GUEST6, .dst = REMOTE6,
	.src_port = 1234, .dst_port = 5678,
};
/* the inner frame of the GNV_* frames, from boundary services to the guest */
static const struct of_flow_key KEY_GNV_INNER = {
	.proto = IPPROTO_UDP,
	.src = V4MAPPED(198, 51, 100, 20), .dst = V4MAPPED(172, 30, 0, 5),
	.src_port = 7000, .dst_port = 41000,
};

static const uint8_t SLED[16] = { 0xfd, 0x00, 0x00, 0x00, 0x00, 0xf7, 0x01, 0x01, [15] = 0x01 };
static const uint8_t OTHER_SLED[16] = { 0xfd, 0x00, 0x00, 0x00, 0x00, 0xf7, 0x01, 0x02, [15] = 0x01 };

typedef int (*inner_parser)(const uint8_t *, uint32_t, struct of_inner_meta *);

/* A heap copy of exactly n bytes: ASan reports any read at or past n. */
static uint8_t *
exact_copy(const uint8_t *frame, uint32_t n)
{
	uint8_t *copy = malloc(n ? n : 1);

	memcpy(copy, frame, n);
	return copy;
}

static int
parse_inner_exact(inner_parser parse, const uint8_t *frame, uint32_t len, struct of_inner_meta *m)
{
	uint8_t *copy = exact_copy(frame, len);
	int rc = parse(copy, len, m);

	free(copy);
	return rc;
}

/* The inbound path's inlined parse gives the full parses' answer, field for field. */
static void
check_inbound_fast(const uint8_t *frame, uint32_t len, int verify)
{
	struct of_geneve_meta m, fast;
	struct of_inner_meta im, fast_im;
	int rc = of_parse_geneve(frame, len, SLED, verify, &m);

	if (rc == OF_OK)
		rc = of_parse_inner_inbound(frame + m.outer_len, m.inner_len, &im);
	CHECK_EQ(of_parse_inbound_fast(frame, len, SLED, verify, &fast, &fast_im, 0), rc);
	if (rc == OF_OK) {
		CHECK_EQ(fast.vni, m.vni);
		CHECK_EQ(fast.outer_len, m.outer_len);
		CHECK_EQ(fast.inner_len, m.inner_len);
		CHECK_EQ(fast_im.l2_len, im.l2_len);
	}
	CHECK_EQ(of_parse_inbound_fast(frame, len, SLED, verify, &fast, &fast_im, 1), rc);
	if (rc != OF_OK)
		return;
	CHECK_EQ(fast.vni, m.vni);
	CHECK_EQ(fast.outer_len, m.outer_len);
	CHECK_EQ(fast.ip6_off, m.ip6_off);
	CHECK_EQ(fast.udp_off, m.udp_off);
	CHECK_EQ(fast.inner_len, m.inner_len);
	CHECK_EQ(fast.external, m.external);
	CHECK_EQ(fast.has_mss, m.has_mss);
	CHECK_EQ(fast.has_mcast, m.has_mcast);
	CHECK_EQ(fast.mss, m.mss);
	CHECK_EQ(fast.mcast, m.mcast);
	CHECK_MEM(&fast_im.key, &im.key, sizeof(im.key));
	CHECK_EQ(fast_im.l2_len, im.l2_len);
	CHECK_EQ(fast_im.l3_len, im.l3_len);
	CHECK_EQ(fast_im.is_ipv6, im.is_ipv6);
	CHECK_EQ(fast_im.tcp_flags, im.tcp_flags);
}

static int
parse_geneve_exact(const uint8_t *frame, uint32_t len, int verify, struct of_geneve_meta *m)
{
	uint8_t *copy = exact_copy(frame, len);
	int rc = of_parse_geneve(copy, len, SLED, verify, m);

	check_inbound_fast(copy, len, verify);
	free(copy);
	return rc;
}

static int
inner_rc(const uint8_t *frame, uint32_t len)
{
	struct of_inner_meta m;

	return parse_inner_exact(of_parse_inner, frame, len, &m);
}

static int
geneve_rc(const uint8_t *frame, uint32_t len, int verify)
{
	struct of_geneve_meta m;

	return parse_geneve_exact(frame, len, verify, &m);
}

/* The packet path's inlined parse, as a function to pass around. */
static int
parse_inner_fast(const uint8_t *frame, uint32_t len, struct of_inner_meta *m)
{
	return of_parse_inner_fast(frame, len, m);
}

static void
check_inner(const uint8_t *frame, uint32_t len, const struct of_flow_key *key,
	    uint16_t l2_len, uint16_t l3_len, uint8_t is_ipv6, uint8_t tcp_flags)
{
	struct of_inner_meta m;

	for (unsigned fast = 0; fast <= 1; fast++) {
		CHECK_EQ(parse_inner_exact(fast ? parse_inner_fast : of_parse_inner, frame, len, &m), OF_OK);
		CHECK_MEM(&m.key, key, sizeof(*key));
		CHECK_EQ(m.l2_len, l2_len);
		CHECK_EQ(m.l3_len, l3_len);
		CHECK_EQ(m.is_ipv6, is_ipv6);
		CHECK_EQ(m.tcp_flags, tcp_flags);
	}
}

/*
 * Cut a valid frame at every length: inside its headers (before hdr_end)
 * it is truncated; past them but before the IP packet's end (ip_end) the
 * IP length runs past the frame, a bad header; from ip_end on, what is cut
 * is Ethernet padding and the frame still parses.
 */
static void
check_inner_cuts(inner_parser parse, const uint8_t *frame, uint32_t len, uint32_t hdr_end,
		 uint32_t ip_end, int truncated, int bad_header)
{
	struct of_inner_meta m;
	uint32_t cut;
	int rc, want;

	for (cut = 0; cut <= len; cut++) {
		want = cut < hdr_end ? truncated : cut < ip_end ? bad_header : OF_OK;
		rc = parse_inner_exact(parse, frame, cut, &m);
		if (rc != want) {
			fprintf(stderr, "%s:%d: cut at %u: got %d, want %d\n",
				__FILE__, __LINE__, cut, rc, want);
			check_failures++;
		}
	}
}

static void
test_inner_ipv4(void)
{
	check_inner(V4_TCP, sizeof(V4_TCP), &KEY_V4_TCP, 14, 20, 0, RTE_TCP_SYN_FLAG);
	check_inner(V4_UDP, sizeof(V4_UDP), &KEY_V4_UDP, 14, 20, 0, 0);
	check_inner(V4_ICMP_ECHO, sizeof(V4_ICMP_ECHO), &KEY_V4_ICMP_ECHO, 14, 20, 0, 0);
	check_inner(V4_OPTS_UDP, sizeof(V4_OPTS_UDP), &KEY_V4_OPTS_UDP, 14, 24, 0, 0);
}

static void
test_inner_ipv6(void)
{
	check_inner(V6_TCP, sizeof(V6_TCP), &KEY_V6_TCP, 14, 40, 1,
		    RTE_TCP_PSH_FLAG | RTE_TCP_ACK_FLAG);
	check_inner(V6_UDP, sizeof(V6_UDP), &KEY_V6_UDP, 14, 40, 1, 0);
	check_inner(V6_ICMP6_ECHO, sizeof(V6_ICMP6_ECHO), &KEY_V6_ICMP6_ECHO, 14, 40, 1, 0);
}

static void
test_inner_vlan(void)
{
	check_inner(VLAN_V4_UDP, sizeof(VLAN_V4_UDP), &KEY_V4_UDP, 18, 20, 0, 0);
}

static void
test_inner_ipv6_extension_headers(void)
{
	uint8_t f[sizeof(V6_HBH_DST_UDP)];

	check_inner(V6_HBH_DST_UDP, sizeof(V6_HBH_DST_UDP), &KEY_V6_EXT_UDP, 14, 56, 1, 0);
	check_inner(V6_AH_UDP, sizeof(V6_AH_UDP), &KEY_V6_EXT_UDP, 14, 64, 1, 0);
	/* a Routing header in place of the Destination Options */
	memcpy(f, V6_HBH_DST_UDP, sizeof(f));
	f[54] = IPPROTO_ROUTING;
	check_inner(f, sizeof(f), &KEY_V6_EXT_UDP, 14, 56, 1, 0);
}

/* V6_UDP with n Destination Options headers of 8 bytes before the UDP header. */
static uint32_t
v6_udp_with_dstopts(uint8_t *f, unsigned int n)
{
	const uint32_t l4 = 14 + 40;
	unsigned int i;

	memcpy(f, V6_UDP, l4);
	f[14 + 6] = IPPROTO_DSTOPTS;
	f[14 + 5] += 8 * n;	/* payload length, low byte: room enough */
	for (i = 0; i < n; i++) {
		uint8_t *h = f + l4 + 8 * i;

		memset(h, 0, 8);
		h[0] = i + 1 < n ? IPPROTO_DSTOPTS : IPPROTO_UDP;
		h[2] = 1;	/* PadN over the remaining 6 bytes */
		h[3] = 4;
	}
	memcpy(f + l4 + 8 * n, V6_UDP + l4, sizeof(V6_UDP) - l4);
	return sizeof(V6_UDP) + 8 * n;
}

static void
test_inner_ipv6_extension_limit(void)
{
	uint8_t f[sizeof(V6_UDP) + 8 * (OF_IP6_MAX_EXT_HDRS + 1)];
	uint32_t len;

	len = v6_udp_with_dstopts(f, OF_IP6_MAX_EXT_HDRS);
	check_inner(f, len, &KEY_V6_UDP, 14, 40 + 8 * OF_IP6_MAX_EXT_HDRS, 1, 0);
	len = v6_udp_with_dstopts(f, OF_IP6_MAX_EXT_HDRS + 1);
	CHECK_EQ(inner_rc(f, len), OF_C_IP_EXT_UNSUPPORTED);
}

static void
test_inner_icmp_kinds(void)
{
	struct of_flow_key key;
	uint8_t f[sizeof(V6_ICMP6_ECHO) > sizeof(V4_ICMP_ECHO) ? sizeof(V6_ICMP6_ECHO) : sizeof(V4_ICMP_ECHO)];

	/* echo reply: the identifier is the port as for a request */
	memcpy(f, V4_ICMP_ECHO, sizeof(V4_ICMP_ECHO));
	f[34] = OF_ICMP_ECHO_REPLY;
	check_inner(f, sizeof(V4_ICMP_ECHO), &KEY_V4_ICMP_ECHO, 14, 20, 0, 0);
	/* destination unreachable: ports 0 */
	f[34] = 3;
	key = KEY_V4_ICMP_ECHO;
	key.src_port = 0;
	check_inner(f, sizeof(V4_ICMP_ECHO), &key, 14, 20, 0, 0);

	memcpy(f, V6_ICMP6_ECHO, sizeof(V6_ICMP6_ECHO));
	f[54] = OF_ICMP6_ECHO_REPLY;
	check_inner(f, sizeof(V6_ICMP6_ECHO), &KEY_V6_ICMP6_ECHO, 14, 40, 1, 0);
	f[54] = 1;	/* destination unreachable */
	key = KEY_V6_ICMP6_ECHO;
	key.src_port = 0;
	check_inner(f, sizeof(V6_ICMP6_ECHO), &key, 14, 40, 1, 0);
}

static void
test_inner_vlan_stacked(void)
{
	uint8_t f[sizeof(VLAN_V4_UDP)];

	memcpy(f, VLAN_V4_UDP, sizeof(f));
	f[16] = 0x81;	/* 802.1Q in 802.1Q */
	f[17] = 0x00;
	CHECK_EQ(inner_rc(f, sizeof(f)), OF_C_VLAN_STACKED);
	f[16] = 0x88;	/* 802.1ad in 802.1Q */
	f[17] = 0xa8;
	CHECK_EQ(inner_rc(f, sizeof(f)), OF_C_VLAN_STACKED);
	f[12] = 0x88;	/* an 802.1ad tag first is QinQ too */
	f[13] = 0xa8;
	CHECK_EQ(inner_rc(f, sizeof(f)), OF_C_VLAN_STACKED);
	f[12] = 0x91;	/* so is the old 0x9100 QinQ tag */
	f[13] = 0x00;
	CHECK_EQ(inner_rc(f, sizeof(f)), OF_C_VLAN_STACKED);
}

static void
test_inner_not_ip(void)
{
	uint8_t f[sizeof(VLAN_V4_UDP)];

	CHECK_EQ(inner_rc(ARP, sizeof(ARP)), OF_C_NOT_IP);
	memcpy(f, VLAN_V4_UDP, sizeof(f));
	f[16] = 0x08;	/* ARP under a tag */
	f[17] = 0x06;
	CHECK_EQ(inner_rc(f, sizeof(f)), OF_C_NOT_IP);
}

static void
test_inner_ip_bad_header(void)
{
	uint8_t f4[sizeof(V4_UDP)], f6[sizeof(V6_UDP)], ft[sizeof(V6_TCP)];

	memcpy(f4, V4_UDP, sizeof(f4));
	f4[14] = 0x65;	/* version 6 in an IPv4 ethertype */
	CHECK_EQ(inner_rc(f4, sizeof(f4)), OF_C_IP_BAD_HEADER);
	f4[14] = 0x44;	/* IHL 4 */
	CHECK_EQ(inner_rc(f4, sizeof(f4)), OF_C_IP_BAD_HEADER);

	memcpy(f4, V4_UDP, sizeof(f4));
	f4[17] = 19;	/* total length below the header length */
	CHECK_EQ(inner_rc(f4, sizeof(f4)), OF_C_IP_BAD_HEADER);
	f4[17] = 60 - 14 + 1;	/* one past the frame */
	CHECK_EQ(inner_rc(f4, sizeof(f4)), OF_C_IP_BAD_HEADER);
	f4[17] = 60 - 14;	/* up to the frame's end: padding taken as payload */
	CHECK_EQ(inner_rc(f4, sizeof(f4)), OF_OK);

	memcpy(f6, V6_UDP, sizeof(f6));
	f6[14] = 0x40;	/* version 4 in an IPv6 ethertype */
	CHECK_EQ(inner_rc(f6, sizeof(f6)), OF_C_IP_BAD_HEADER);
	memcpy(f6, V6_UDP, sizeof(f6));
	f6[19] += 1;	/* payload length one past the frame */
	CHECK_EQ(inner_rc(f6, sizeof(f6)), OF_C_IP_BAD_HEADER);

	memcpy(ft, V6_TCP, sizeof(ft));
	ft[54 + 12] = 0x40;	/* TCP data offset 4 */
	CHECK_EQ(inner_rc(ft, sizeof(ft)), OF_C_IP_BAD_HEADER);
}

static void
test_inner_ip_fragment(void)
{
	uint8_t f[sizeof(V4_UDP)];

	memcpy(f, V4_UDP, sizeof(f));
	f[20] = 0x20;	/* MF */
	CHECK_EQ(inner_rc(f, sizeof(f)), OF_C_IP_FRAGMENT);
	f[20] = 0x40;	/* DF, offset 8 bytes */
	f[21] = 0x01;
	CHECK_EQ(inner_rc(f, sizeof(f)), OF_C_IP_FRAGMENT);
	f[21] = 0x00;	/* DF alone is not a fragment */
	CHECK_EQ(inner_rc(f, sizeof(f)), OF_OK);
	CHECK_EQ(inner_rc(V6_FRAG_UDP, sizeof(V6_FRAG_UDP)), OF_C_IP_FRAGMENT);
}

static void
test_inner_ip_ext_unsupported(void)
{
	uint8_t f[sizeof(V6_HBH_DST_UDP)];

	/* Destination Options first, Hop-by-Hop second */
	memcpy(f, V6_HBH_DST_UDP, sizeof(f));
	f[14 + 6] = IPPROTO_DSTOPTS;
	f[54] = IPPROTO_HOPOPTS;
	f[62] = IPPROTO_UDP;
	CHECK_EQ(inner_rc(f, sizeof(f)), OF_C_IP_EXT_UNSUPPORTED);
}

static void
test_inner_l4_unsupported(void)
{
	uint8_t f4[sizeof(V4_UDP)], f6[sizeof(V6_UDP)];

	memcpy(f4, V4_UDP, sizeof(f4));
	f4[23] = IPPROTO_GRE;
	CHECK_EQ(inner_rc(f4, sizeof(f4)), OF_C_L4_UNSUPPORTED);
	f4[23] = IPPROTO_ICMPV6;	/* ICMPv6 over IPv4 */
	CHECK_EQ(inner_rc(f4, sizeof(f4)), OF_C_L4_UNSUPPORTED);
	memcpy(f6, V6_UDP, sizeof(f6));
	f6[20] = IPPROTO_NONE;
	CHECK_EQ(inner_rc(f6, sizeof(f6)), OF_C_L4_UNSUPPORTED);
	f6[20] = IPPROTO_ICMP;	/* ICMP over IPv6 */
	CHECK_EQ(inner_rc(f6, sizeof(f6)), OF_C_L4_UNSUPPORTED);
}

static void
test_inner_truncated(void)
{
	uint8_t f[sizeof(V4_UDP)];

	check_inner_cuts(of_parse_inner, V4_TCP, sizeof(V4_TCP), 58, 58, OF_C_PARSE_TRUNCATED, OF_C_IP_BAD_HEADER);
	/* The inlined parse gives the same answer at every cut, where it parses and where it hands over. */
	check_inner_cuts(parse_inner_fast, V4_TCP, sizeof(V4_TCP), 58, 58, OF_C_PARSE_TRUNCATED, OF_C_IP_BAD_HEADER);
	check_inner_cuts(parse_inner_fast, V4_UDP, sizeof(V4_UDP), 42, 46, OF_C_PARSE_TRUNCATED, OF_C_IP_BAD_HEADER);
	check_inner_cuts(parse_inner_fast, V4_OPTS_UDP, sizeof(V4_OPTS_UDP), 46, 50, OF_C_PARSE_TRUNCATED,
			 OF_C_IP_BAD_HEADER);
	check_inner_cuts(parse_inner_fast, V6_TCP, sizeof(V6_TCP), 74, 76, OF_C_PARSE_TRUNCATED, OF_C_IP_BAD_HEADER);
	check_inner_cuts(of_parse_inner, V4_UDP, sizeof(V4_UDP), 42, 46, OF_C_PARSE_TRUNCATED, OF_C_IP_BAD_HEADER);
	check_inner_cuts(of_parse_inner, V4_ICMP_ECHO, sizeof(V4_ICMP_ECHO), 42, 50, OF_C_PARSE_TRUNCATED, OF_C_IP_BAD_HEADER);
	check_inner_cuts(of_parse_inner, V4_OPTS_UDP, sizeof(V4_OPTS_UDP), 46, 50, OF_C_PARSE_TRUNCATED, OF_C_IP_BAD_HEADER);
	check_inner_cuts(of_parse_inner, VLAN_V4_UDP, sizeof(VLAN_V4_UDP), 46, 50, OF_C_PARSE_TRUNCATED, OF_C_IP_BAD_HEADER);
	check_inner_cuts(of_parse_inner, V6_TCP, sizeof(V6_TCP), 74, 76, OF_C_PARSE_TRUNCATED, OF_C_IP_BAD_HEADER);
	check_inner_cuts(of_parse_inner, V6_UDP, sizeof(V6_UDP), 62, 66, OF_C_PARSE_TRUNCATED, OF_C_IP_BAD_HEADER);
	check_inner_cuts(of_parse_inner, V6_ICMP6_ECHO, sizeof(V6_ICMP6_ECHO), 62, 66, OF_C_PARSE_TRUNCATED, OF_C_IP_BAD_HEADER);
	check_inner_cuts(of_parse_inner, V6_HBH_DST_UDP, sizeof(V6_HBH_DST_UDP), 78, 82, OF_C_PARSE_TRUNCATED, OF_C_IP_BAD_HEADER);
	check_inner_cuts(of_parse_inner, V6_AH_UDP, sizeof(V6_AH_UDP), 86, 90, OF_C_PARSE_TRUNCATED, OF_C_IP_BAD_HEADER);

	/* the IP packet, not the frame, ends inside the UDP header: the rest is padding */
	memcpy(f, V4_UDP, sizeof(f));
	f[17] = 20 + 4;
	CHECK_EQ(inner_rc(f, sizeof(f)), OF_C_PARSE_TRUNCATED);
}

/* The inbound entry point: the same parse, reported with the INNER_* reasons. */
static void
test_inner_inbound_reasons(void)
{
	struct of_inner_meta m;
	uint8_t f[sizeof(VLAN_V4_UDP)];

	CHECK_EQ(parse_inner_exact(of_parse_inner_inbound, V4_UDP, sizeof(V4_UDP), &m), OF_OK);
	CHECK_MEM(&m.key, &KEY_V4_UDP, sizeof(m.key));
	check_inner_cuts(of_parse_inner_inbound, V6_HBH_DST_UDP, sizeof(V6_HBH_DST_UDP), 78, 82,
			 OF_C_INNER_TRUNCATED, OF_C_INNER_BAD_HEADER);
	CHECK_EQ(parse_inner_exact(of_parse_inner_inbound, ARP, sizeof(ARP), &m), OF_C_INNER_NOT_IP);
	CHECK_EQ(parse_inner_exact(of_parse_inner_inbound, V6_FRAG_UDP, sizeof(V6_FRAG_UDP), &m),
		 OF_C_INNER_IP_FRAGMENT);

	memcpy(f, VLAN_V4_UDP, sizeof(f));
	f[16] = 0x81;
	f[17] = 0x00;
	CHECK_EQ(parse_inner_exact(of_parse_inner_inbound, f, sizeof(f), &m), OF_C_INNER_NOT_IP);
	memcpy(f, V4_UDP, sizeof(V4_UDP));
	f[14] = 0x44;
	CHECK_EQ(parse_inner_exact(of_parse_inner_inbound, f, sizeof(V4_UDP), &m), OF_C_INNER_BAD_HEADER);
	f[14] = 0x45;
	f[23] = IPPROTO_GRE;
	CHECK_EQ(parse_inner_exact(of_parse_inner_inbound, f, sizeof(V4_UDP), &m), OF_C_INNER_BAD_HEADER);
}

/* Offsets in the GNV_* frames without VLAN tag or extension header. */
enum {
	GNV_IP6 = 14,
	GNV_PLEN = GNV_IP6 + 4,
	GNV_NH = GNV_IP6 + 6,
	GNV_UDP = GNV_IP6 + 40,
	GNV_UDP_LEN = GNV_UDP + 4,
	GNV_UDP_CSUM = GNV_UDP + 6,
	GNV_HDR = GNV_UDP + 8,
	GNV_OPT = GNV_HDR + 8,
};

static void
check_geneve_inner(const uint8_t *frame, const struct of_geneve_meta *m)
{
	struct of_inner_meta im;

	CHECK_EQ(parse_inner_exact(of_parse_inner_inbound, frame + m->outer_len, m->inner_len, &im), OF_OK);
	CHECK_MEM(&im.key, &KEY_GNV_INNER, sizeof(im.key));
}

static void
test_geneve_plain(void)
{
	struct of_geneve_meta m;
	int verify;

	for (verify = 0; verify <= 1; verify++) {	/* a zero checksum is accepted either way */
		CHECK_EQ(parse_geneve_exact(GNV_PLAIN, sizeof(GNV_PLAIN), verify, &m), OF_OK);
		CHECK_EQ(m.vni, 0xabcd);
		CHECK_EQ(m.outer_len, OF_OUTER_HDR_LEN);
		CHECK_EQ(m.ip6_off, 14);
		CHECK_EQ(m.udp_off, 54);
		CHECK_EQ(m.inner_len, sizeof(GNV_PLAIN) - OF_OUTER_HDR_LEN);
		CHECK_EQ(m.external, 0);
		CHECK_EQ(m.has_mss, 0);
		CHECK_EQ(m.has_mcast, 0);
		check_geneve_inner(GNV_PLAIN, &m);
	}
}

static void
test_geneve_external_checksum(void)
{
	struct of_geneve_meta m;
	uint8_t f[sizeof(GNV_EXTERNAL_CSUM)];

	CHECK_EQ(parse_geneve_exact(GNV_EXTERNAL_CSUM, sizeof(f), 1, &m), OF_OK);
	CHECK_EQ(m.vni, 0xabcd);
	CHECK_EQ(m.external, 1);
	CHECK_EQ(m.outer_len, OF_OUTER_HDR_LEN + 4);
	check_geneve_inner(GNV_EXTERNAL_CSUM, &m);

	/* wrong checksum: a drop only when verifying */
	memcpy(f, GNV_EXTERNAL_CSUM, sizeof(f));
	f[GNV_UDP_CSUM] ^= 0x01;
	CHECK_EQ(geneve_rc(f, sizeof(f), 1), OF_C_UDP_BAD_CHECKSUM);
	CHECK_EQ(geneve_rc(f, sizeof(f), 0), OF_OK);
	/* right checksum, damaged payload */
	memcpy(f, GNV_EXTERNAL_CSUM, sizeof(f));
	f[sizeof(f) - 1] ^= 0x80;
	CHECK_EQ(geneve_rc(f, sizeof(f), 1), OF_C_UDP_BAD_CHECKSUM);
}

static void
test_geneve_hop_by_hop(void)
{
	struct of_geneve_meta m;
	uint8_t f[sizeof(GNV_HBH_CSUM)];

	/* the checksum's pseudo-header length is the UDP length, not the IPv6 payload's */
	CHECK_EQ(parse_geneve_exact(GNV_HBH_CSUM, sizeof(GNV_HBH_CSUM), 1, &m), OF_OK);
	CHECK_EQ(m.ip6_off, 14);
	CHECK_EQ(m.udp_off, 54 + 8);
	CHECK_EQ(m.outer_len, OF_OUTER_HDR_LEN + 8);
	check_geneve_inner(GNV_HBH_CSUM, &m);

	/* Destination Options instead: the same */
	memcpy(f, GNV_HBH_CSUM, sizeof(f));
	f[GNV_NH] = IPPROTO_DSTOPTS;
	CHECK_EQ(geneve_rc(f, sizeof(f), 1), OF_OK);
	/* Hop-by-Hop after it: not walkable, left to the kernel */
	f[54] = IPPROTO_HOPOPTS;
	CHECK_EQ(geneve_rc(f, sizeof(f), 1), OF_PARSE_EXCEPTION);
	/* an IPv6 payload that ends inside the Hop-by-Hop header */
	memcpy(f, GNV_HBH_CSUM, sizeof(f));
	f[GNV_PLEN] = 0;
	f[GNV_PLEN + 1] = 4;
	CHECK_EQ(geneve_rc(f, sizeof(f), 0), OF_C_UDP_BAD_LENGTH);
}

static void
test_geneve_vlan(void)
{
	struct of_geneve_meta m;

	CHECK_EQ(parse_geneve_exact(GNV_VLAN, sizeof(GNV_VLAN), 1, &m), OF_OK);
	CHECK_EQ(m.ip6_off, 18);
	CHECK_EQ(m.udp_off, 58);
	CHECK_EQ(m.outer_len, OF_OUTER_HDR_LEN + 4);
	check_geneve_inner(GNV_VLAN, &m);
}

static void
test_geneve_oxide_options(void)
{
	struct of_geneve_meta m;

	/* Multicast, Mss, then an unknown non-critical option of another class */
	CHECK_EQ(parse_geneve_exact(GNV_MCAST_MSS, sizeof(GNV_MCAST_MSS), 1, &m), OF_OK);
	CHECK_EQ(m.external, 0);
	CHECK_EQ(m.has_mcast, 1);
	CHECK_EQ(m.mcast, 2);
	CHECK_EQ(m.has_mss, 1);
	CHECK_EQ(m.mss, 1440);
	CHECK_EQ(m.outer_len, OF_OUTER_HDR_LEN + 24);
	check_geneve_inner(GNV_MCAST_MSS, &m);
}

static void
test_geneve_option_types(void)
{
	struct of_geneve_meta m;
	uint8_t f[sizeof(GNV_EXTERNAL_CSUM)];

	memcpy(f, GNV_EXTERNAL_CSUM, sizeof(f));
	f[GNV_OPT + 2] = 0x80;	/* External with the critical bit: known */
	CHECK_EQ(parse_geneve_exact(f, sizeof(f), 0, &m), OF_OK);
	CHECK_EQ(m.external, 1);
	f[GNV_OPT + 2] = 0x05;	/* unknown Oxide type, not critical: skipped */
	CHECK_EQ(parse_geneve_exact(f, sizeof(f), 0, &m), OF_OK);
	CHECK_EQ(m.external, 0);
	f[GNV_OPT + 2] = 0x85;	/* unknown Oxide type, critical */
	CHECK_EQ(geneve_rc(f, sizeof(f), 0), OF_C_UNKNOWN_CRITICAL_OPTION);
	f[GNV_OPT + 0] = 0x01;	/* Open vSwitch class, type 0x80: unknown, critical */
	f[GNV_OPT + 1] = 0x01;
	f[GNV_OPT + 2] = 0x80;
	CHECK_EQ(geneve_rc(f, sizeof(f), 0), OF_C_UNKNOWN_CRITICAL_OPTION);
}

static void
test_geneve_bad_option(void)
{
	uint8_t f[sizeof(GNV_MCAST_MSS)];

	memcpy(f, GNV_EXTERNAL_CSUM, sizeof(GNV_EXTERNAL_CSUM));
	f[GNV_OPT + 3] = 1;	/* a 4-byte body in a 4-byte option area */
	CHECK_EQ(geneve_rc(f, sizeof(GNV_EXTERNAL_CSUM), 0), OF_C_GENEVE_BAD_OPTION);
	f[GNV_OPT + 3] = 0;
	f[GNV_OPT + 2] = OF_OXIDE_OPT_MSS;	/* Mss without its body */
	CHECK_EQ(geneve_rc(f, sizeof(GNV_EXTERNAL_CSUM), 0), OF_C_GENEVE_BAD_OPTION);

	memcpy(f, GNV_MCAST_MSS, sizeof(GNV_MCAST_MSS));
	f[GNV_OPT + 3] = 0;	/* External-sized Multicast */
	CHECK_EQ(geneve_rc(f, sizeof(f), 0), OF_C_GENEVE_BAD_OPTION);
	memcpy(f, GNV_MCAST_MSS, sizeof(GNV_MCAST_MSS));
	f[GNV_OPT + 2] = OF_OXIDE_OPT_EXTERNAL;	/* External with a 4-byte body */
	CHECK_EQ(geneve_rc(f, sizeof(f), 0), OF_C_GENEVE_BAD_OPTION);
	memcpy(f, GNV_MCAST_MSS, sizeof(GNV_MCAST_MSS));
	f[GNV_OPT + 8 + 3] = 2;	/* an 8-byte Mss, still inside the area */
	CHECK_EQ(geneve_rc(f, sizeof(f), 0), OF_C_GENEVE_BAD_OPTION);
	memcpy(f, GNV_MCAST_MSS, sizeof(GNV_MCAST_MSS));
	f[GNV_OPT + 16 + 3] = 2;	/* the unknown last option runs 4 bytes past the area */
	CHECK_EQ(geneve_rc(f, sizeof(f), 0), OF_C_GENEVE_BAD_OPTION);
}

static void
test_geneve_header_drops(void)
{
	uint8_t f[sizeof(GNV_PLAIN)];

	memcpy(f, GNV_PLAIN, sizeof(f));
	f[GNV_HDR] = 1 << OF_GENEVE_VER_SHIFT;
	CHECK_EQ(geneve_rc(f, sizeof(f), 0), OF_C_GENEVE_BAD_VERSION);

	memcpy(f, GNV_PLAIN, sizeof(f));
	f[GNV_HDR + 1] = OF_GENEVE_FLAG_OAM;
	CHECK_EQ(geneve_rc(f, sizeof(f), 0), OF_C_GENEVE_OAM);

	memcpy(f, GNV_PLAIN, sizeof(f));
	f[GNV_HDR] = 63;	/* 252 bytes of options in a 54-byte UDP payload */
	CHECK_EQ(geneve_rc(f, sizeof(f), 0), OF_C_GENEVE_OPTIONS_TRUNCATED);
	f[GNV_HDR] = (sizeof(f) - GNV_OPT) / 4 + 1;	/* 4 bytes past the end */
	CHECK_EQ(geneve_rc(f, sizeof(f), 0), OF_C_GENEVE_OPTIONS_TRUNCATED);

	memcpy(f, GNV_PLAIN, sizeof(f));
	f[GNV_HDR + 2] = 0x08;	/* IPv4 instead of Ethernet */
	f[GNV_HDR + 3] = 0x00;
	CHECK_EQ(geneve_rc(f, sizeof(f), 0), OF_C_GENEVE_BAD_PROTOCOL);
}

static void
test_geneve_udp_length(void)
{
	uint8_t f[sizeof(GNV_PLAIN)];

	memcpy(f, GNV_PLAIN, sizeof(f));
	f[GNV_UDP_LEN + 1] += 1;
	CHECK_EQ(geneve_rc(f, sizeof(f), 0), OF_C_UDP_BAD_LENGTH);
	f[GNV_UDP_LEN + 1] -= 2;
	CHECK_EQ(geneve_rc(f, sizeof(f), 0), OF_C_UDP_BAD_LENGTH);
	/* IPv6 payload too short for the UDP header it holds */
	memcpy(f, GNV_PLAIN, sizeof(f));
	f[GNV_PLEN] = 0;
	f[GNV_PLEN + 1] = 4;
	f[GNV_UDP_LEN] = 0;
	f[GNV_UDP_LEN + 1] = 4;
	CHECK_EQ(geneve_rc(f, sizeof(f), 0), OF_C_UDP_BAD_LENGTH);
}

/* GNV_PLAIN whose IPv6 packet ends inner bytes after the Geneve header. */
static uint32_t
gnv_plain_shortened(uint8_t *f, uint32_t inner)
{
	const uint32_t plen = 8 + 8 + inner;

	memcpy(f, GNV_PLAIN, OF_OUTER_HDR_LEN + inner);
	f[GNV_PLEN] = plen >> 8;
	f[GNV_PLEN + 1] = plen & 0xff;
	f[GNV_UDP_LEN] = plen >> 8;
	f[GNV_UDP_LEN + 1] = plen & 0xff;
	return OF_OUTER_HDR_LEN + inner;
}

static void
test_geneve_inner_length(void)
{
	struct of_geneve_meta m;
	uint8_t f[sizeof(GNV_PLAIN) + 4];
	uint32_t len;

	len = gnv_plain_shortened(f, 13);
	CHECK_EQ(geneve_rc(f, len, 0), OF_C_INNER_TRUNCATED);
	len = gnv_plain_shortened(f, 14);
	CHECK_EQ(parse_geneve_exact(f, len, 0, &m), OF_OK);
	CHECK_EQ(m.inner_len, 14);
	/* a UDP payload with less than a Geneve header */
	memcpy(f, GNV_PLAIN, sizeof(GNV_PLAIN));
	f[GNV_PLEN + 1] = f[GNV_UDP_LEN + 1] = 8 + 7;
	CHECK_EQ(geneve_rc(f, GNV_HDR + 7, 0), OF_C_OUTER_TRUNCATED);
	/* bytes after the IPv6 packet are not inner frame */
	memcpy(f, GNV_PLAIN, sizeof(GNV_PLAIN));
	memset(f + sizeof(GNV_PLAIN), 0xee, 4);
	CHECK_EQ(parse_geneve_exact(f, sizeof(f), 0, &m), OF_OK);
	CHECK_EQ(m.inner_len, sizeof(GNV_PLAIN) - OF_OUTER_HDR_LEN);
}

static void
test_geneve_fragment(void)
{
	CHECK_EQ(geneve_rc(GNV_FRAG, sizeof(GNV_FRAG), 0), OF_C_OUTER_IP_FRAGMENT);
}

static void
test_geneve_exceptions(void)
{
	struct of_geneve_meta m;
	uint8_t f[sizeof(GNV_PLAIN)];

	CHECK_EQ(geneve_rc(ARP, sizeof(ARP), 0), OF_PARSE_EXCEPTION);
	CHECK_EQ(geneve_rc(V4_UDP, sizeof(V4_UDP), 0), OF_PARSE_EXCEPTION);
	/* not our address */
	CHECK_EQ(of_parse_geneve(GNV_PLAIN, sizeof(GNV_PLAIN), OTHER_SLED, 0, &m), OF_PARSE_EXCEPTION);
	/* UDP to another port */
	memcpy(f, GNV_PLAIN, sizeof(f));
	f[GNV_UDP + 3] += 1;
	CHECK_EQ(geneve_rc(f, sizeof(f), 0), OF_PARSE_EXCEPTION);
	/* ICMPv6 (neighbor discovery, ping) and TCP (BGP) to us: the kernel's */
	memcpy(f, GNV_PLAIN, sizeof(f));
	f[GNV_NH] = IPPROTO_ICMPV6;
	CHECK_EQ(geneve_rc(f, sizeof(f), 0), OF_PARSE_EXCEPTION);
	f[GNV_NH] = IPPROTO_TCP;
	CHECK_EQ(geneve_rc(f, sizeof(f), 0), OF_PARSE_EXCEPTION);
	/* IPv6 ethertype, version 4 */
	memcpy(f, GNV_PLAIN, sizeof(f));
	f[GNV_IP6] = 0x40;
	CHECK_EQ(geneve_rc(f, sizeof(f), 0), OF_PARSE_EXCEPTION);
	/* two VLAN tags */
	memcpy(f, GNV_VLAN, sizeof(f));
	f[16] = 0x81;
	f[17] = 0x00;
	CHECK_EQ(geneve_rc(f, sizeof(f), 0), OF_PARSE_EXCEPTION);
}

/*
 * Cut a valid Geneve frame at every length. Before the UDP destination
 * port has been read whole (udp_off + 4), nothing says the frame is Geneve
 * for us: exception. From there on the frame ends before the IPv6 packet
 * does: OUTER_TRUNCATED.
 */
static void
check_geneve_cuts(const uint8_t *frame, uint32_t len, uint32_t udp_off)
{
	struct of_geneve_meta m;
	uint32_t cut;
	int rc, want;

	for (cut = 0; cut <= len; cut++) {
		want = cut < udp_off + 4 ? OF_PARSE_EXCEPTION :
		       cut < len ? OF_C_OUTER_TRUNCATED : OF_OK;
		rc = parse_geneve_exact(frame, cut, 1, &m);
		if (rc != want) {
			fprintf(stderr, "%s:%d: cut at %u: got %d, want %d\n",
				__FILE__, __LINE__, cut, rc, want);
			check_failures++;
		}
	}
}

static void
test_geneve_truncated(void)
{
	check_geneve_cuts(GNV_PLAIN, sizeof(GNV_PLAIN), 54);
	check_geneve_cuts(GNV_EXTERNAL_CSUM, sizeof(GNV_EXTERNAL_CSUM), 54);
	check_geneve_cuts(GNV_MCAST_MSS, sizeof(GNV_MCAST_MSS), 54);
	check_geneve_cuts(GNV_HBH_CSUM, sizeof(GNV_HBH_CSUM), 62);
	check_geneve_cuts(GNV_VLAN, sizeof(GNV_VLAN), 58);
}

static void
test_cksum_odd_length(void)
{
	/* RFC 1071's example words 0001 f203 f4f5 f6f7 sum to ddf2; an odd tail is padded with zero */
	static const uint8_t words[] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7, 0x01 };
	uint16_t sum = of_cksum_add(0, words, sizeof(words));

	CHECK_EQ(rte_be_to_cpu_16(sum), 0xddf2 + 0x0100);
	sum = of_cksum_add(0, words, 8);
	CHECK_EQ(rte_be_to_cpu_16(sum), 0xddf2);
}

/* A chained frame: only its first avail bytes readable (an exact heap copy, so ASan sees any read past them). */
static int
span_inner(const uint8_t *frame, uint32_t avail, uint32_t len, int inbound, struct of_inner_meta *m)
{
	uint8_t *copy = exact_copy(frame, avail);
	int rc = of_parse_inner_span(copy, avail, len, inbound, m);

	free(copy);
	return rc;
}

static void
test_inner_span(void)
{
	uint8_t f[sizeof(V6_UDP) + 8 * OF_IP6_MAX_EXT_HDRS];
	struct of_inner_meta whole, part;
	uint32_t len = v6_udp_with_dstopts(f, OF_IP6_MAX_EXT_HDRS);	/* UDP at 14 + 40 + 64 */

	/* headers in the readable part: the answer of the whole frame */
	CHECK_EQ(parse_inner_exact(of_parse_inner, V4_TCP, sizeof(V4_TCP), &whole), OF_OK);
	CHECK_EQ(span_inner(V4_TCP, 14 + 20 + 24, sizeof(V4_TCP), 0, &part), OF_OK);
	CHECK_MEM(&part, &whole, sizeof(whole));
	CHECK_EQ(parse_inner_exact(of_parse_inner, f, len, &whole), OF_OK);
	CHECK_EQ(span_inner(f, 14 + 40 + 64 + 8, len, 0, &part), OF_OK);
	CHECK_MEM(&part, &whole, sizeof(whole));
	/* an extension header, or the UDP header, past it while the frame goes on */
	CHECK_EQ(span_inner(f, 14 + 40 + 60, len, 0, &part), OF_C_HEADERS_BEYOND_SEGMENT);
	CHECK_EQ(span_inner(f, 14 + 40 + 64 + 4, len, 1, &part), OF_C_HEADERS_BEYOND_SEGMENT);
	/* a frame that really ends there is truncated, as ever */
	CHECK_EQ(span_inner(f, 14 + 40 + 60, 14 + 40 + 60, 0, &part), OF_C_PARSE_TRUNCATED);
	/* an IP packet longer than the whole frame is a bad header, as ever */
	CHECK_EQ(span_inner(f, 14 + 40 + 64 + 8, len - 1, 0, &part), OF_C_IP_BAD_HEADER);
}

static void
test_geneve_span(void)
{
	struct of_geneve_meta whole, part;
	uint8_t *copy;

	CHECK_EQ(parse_geneve_exact(GNV_PLAIN, sizeof(GNV_PLAIN), 0, &whole), OF_OK);
	for (uint32_t avail = OF_OUTER_HDR_LEN + 14; avail <= sizeof(GNV_PLAIN); avail++) {
		copy = exact_copy(GNV_PLAIN, avail);
		CHECK_EQ(of_parse_geneve_span(copy, avail, sizeof(GNV_PLAIN), SLED, &part), OF_OK);
		CHECK_MEM(&part, &whole, sizeof(whole));
		free(copy);
	}
	/* the inner Ethernet header past the readable part */
	copy = exact_copy(GNV_PLAIN, OF_OUTER_HDR_LEN + 13);
	CHECK_EQ(of_parse_geneve_span(copy, OF_OUTER_HDR_LEN + 13, sizeof(GNV_PLAIN), SLED, &part),
		 OF_C_HEADERS_BEYOND_SEGMENT);
	free(copy);
}

RUN_TESTS(
	TEST_ENTRY(test_inner_span),
	TEST_ENTRY(test_geneve_span),
	TEST_ENTRY(test_inner_ipv4),
	TEST_ENTRY(test_inner_ipv6),
	TEST_ENTRY(test_inner_vlan),
	TEST_ENTRY(test_inner_ipv6_extension_headers),
	TEST_ENTRY(test_inner_ipv6_extension_limit),
	TEST_ENTRY(test_inner_icmp_kinds),
	TEST_ENTRY(test_inner_vlan_stacked),
	TEST_ENTRY(test_inner_not_ip),
	TEST_ENTRY(test_inner_ip_bad_header),
	TEST_ENTRY(test_inner_ip_fragment),
	TEST_ENTRY(test_inner_ip_ext_unsupported),
	TEST_ENTRY(test_inner_l4_unsupported),
	TEST_ENTRY(test_inner_truncated),
	TEST_ENTRY(test_inner_inbound_reasons),
	TEST_ENTRY(test_geneve_plain),
	TEST_ENTRY(test_geneve_external_checksum),
	TEST_ENTRY(test_geneve_hop_by_hop),
	TEST_ENTRY(test_geneve_vlan),
	TEST_ENTRY(test_geneve_oxide_options),
	TEST_ENTRY(test_geneve_option_types),
	TEST_ENTRY(test_geneve_bad_option),
	TEST_ENTRY(test_geneve_header_drops),
	TEST_ENTRY(test_geneve_udp_length),
	TEST_ENTRY(test_geneve_inner_length),
	TEST_ENTRY(test_geneve_fragment),
	TEST_ENTRY(test_geneve_exceptions),
	TEST_ENTRY(test_geneve_truncated),
	TEST_ENTRY(test_cksum_odd_length),
)
