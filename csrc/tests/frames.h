/* Frame helpers shared by the C tests, written apart from the code under test. */
#ifndef OF_TESTS_FRAMES_H
#define OF_TESTS_FRAMES_H

#include <stdint.h>
#include <string.h>

/* The frame with an 802.1Q tag (VLAN 42) after its MAC addresses, into out; the new length. */
static inline uint32_t
with_vlan(uint8_t *out, const uint8_t *frame, uint32_t len)
{
	static const uint8_t tag[4] = { 0x81, 0x00, 0x00, 0x2a };

	memcpy(out, frame, 12);
	memcpy(out + 12, tag, sizeof(tag));
	memcpy(out + 16, frame + 12, len - 12);
	return len + sizeof(tag);
}

/*
 * Make the ICMPv6 checksum of a mutated frame right again, RFC 1071 byte by
 * byte, independently of the code under test. l3: offset of the IPv6 header,
 * which must be followed directly by the ICMPv6 message.
 */
static inline void
icmp6_fix_checksum(uint8_t *f, uint32_t l3)
{
	const uint32_t src = l3 + 8, icmp = l3 + 40;
	uint32_t plen = (uint32_t)f[l3 + 4] << 8 | f[l3 + 5];
	uint32_t sum = plen + 58, i;

	f[icmp + 2] = f[icmp + 3] = 0;
	for (i = src; i < icmp; i += 2)
		sum += (uint32_t)f[i] << 8 | f[i + 1];
	for (i = 0; i < plen; i += 2)
		sum += (uint32_t)f[icmp + i] << 8 | (i + 1 < plen ? f[icmp + i + 1] : 0);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	f[icmp + 2] = (uint8_t)(~sum >> 8);
	f[icmp + 3] = (uint8_t)(~sum & 0xff);
}

#endif
