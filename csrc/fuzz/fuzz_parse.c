/*
 * libFuzzer entry for the packet parsers and the NDP and gateway responders:
 * any input gets a result without a read or write past its end, and
 * whatever a parser reports lies inside the input.
 *
 *   clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined \
 *	$(pkg-config --cflags libdpdk) -Icsrc csrc/fuzz/fuzz_parse.c \
 *	csrc/parse.c csrc/ndp.c csrc/gateway.c csrc/counters.c -o /tmp/fuzz_parse
 *   /tmp/fuzz_parse -max_total_time=30 [corpus dir]
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "ndp.h"
#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t SLED[16] = { 0xfd, 0x00, 0x00, 0x00, 0x00, 0xf7, 0x01, 0x01, [15] = 0x01 };
static const uint8_t SLED_MAC[6] = { 0x02, 0x08, 0x20, 0x01, 0x01, 0x01 };
static const uint8_t GATEWAY_MAC[6] = { 0xa8, 0x40, 0x25, 0xff, 0x00, 0x01 };

/* Where an untagged frame holds the IPv6 destination and the NS target. */
enum { IP6_DST_OFF = 14 + 24, ND_TARGET_OFF = 14 + 40 + 8 };

#define EXPECT(cond) do { if (!(cond)) __builtin_trap(); } while (0)

static void
fuzz_inner(const uint8_t *frame, uint32_t len)
{
	struct of_inner_meta m, fast;
	int rc = of_parse_inner(frame, len, &m);

	if (rc == OF_OK)
		EXPECT(m.l2_len + m.l3_len <= len && m.key.vni == 0);
	/* The inlined parse of the packet path gives the same answer, key for key. */
	EXPECT(of_parse_inner_fast(frame, len, &fast) == rc);
	if (rc == OF_OK)
		EXPECT(memcmp(&fast.key, &m.key, sizeof(m.key)) == 0 && fast.l2_len == m.l2_len &&
		       fast.l3_len == m.l3_len && fast.is_ipv6 == m.is_ipv6 && fast.tcp_flags == m.tcp_flags);
	if (of_parse_inner_inbound(frame, len, &m) == OF_OK)
		EXPECT(m.l2_len + m.l3_len <= len);
}

static void
fuzz_geneve(const uint8_t *frame, uint32_t len, const uint8_t addr[16])
{
	struct of_geneve_meta m;
	int verify;

	for (verify = 0; verify <= 1; verify++) {
		if (of_parse_geneve(frame, len, addr, verify, &m) != OF_OK)
			continue;
		EXPECT(m.ip6_off < m.udp_off && m.udp_off < m.outer_len);
		EXPECT(m.inner_len >= 14 && (uint32_t)m.outer_len + m.inner_len <= len);
		fuzz_inner(frame + m.outer_len, m.inner_len);
	}
}

static void
fuzz_ndp(const uint8_t *frame, uint32_t len, const uint8_t addr[16])
{
	int is_solicit = of_ndp_is_solicit_for(frame, len, addr);
	uint8_t *buf = malloc(len ? len : 1);	/* room == len: ASan sees a write past it */
	uint32_t n;

	memcpy(buf, frame, len);
	n = of_ndp_build_advert(buf, len, len, SLED_MAC, addr);
	if (n == 0) {
		EXPECT(memcmp(buf, frame, len) == 0);
	} else {
		EXPECT(is_solicit && n <= len);
		EXPECT(!of_ndp_is_solicit_for(buf, n, addr));
	}
	free(buf);
}

/* The guest's gateway, with the input's own source MAC as the guest's so the sender checks pass. */
static void
fuzz_gateway(const uint8_t *frame, uint32_t len)
{
	struct of_inner_meta m;
	uint8_t *buf;
	uint32_t n = 0;
	int rc;

	if (len < 12)
		return;
	buf = malloc(len);	/* room == len: ASan sees a write past it */
	memcpy(buf, frame, len);
	rc = of_gateway_arp(buf, len, len, frame + 6, GATEWAY_MAC, &n);
	EXPECT(rc == OF_C_GATEWAY_ARP_REPLIES ? n > 0 && n <= len : memcmp(buf, frame, len) == 0);
	memcpy(buf, frame, len);
	if (of_parse_inner(frame, len, &m) == OF_OK && m.key.proto == IPPROTO_ICMPV6) {
		rc = of_gateway_ndp(buf, len, len, m.l2_len + m.l3_len, frame + 6, GATEWAY_MAC, &n);
		EXPECT(rc != OF_C_GATEWAY_NDP_REPLIES || (n > 0 && n <= len));
	}
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint32_t len = size;

	if (size > UINT16_MAX)
		return 0;
	fuzz_inner(data, len);
	fuzz_gateway(data, len);

	/* the sled's address, and the input's own destination and target, so
	 * the paths past the address checks are reached without guessing it */
	fuzz_geneve(data, len, SLED);
	if (len >= IP6_DST_OFF + 16)
		fuzz_geneve(data, len, data + IP6_DST_OFF);
	fuzz_ndp(data, len, SLED);
	if (len >= ND_TARGET_OFF + 16) {
		uint8_t target[16];

		memcpy(target, data + ND_TARGET_OFF, sizeof(target));
		fuzz_ndp(data, len, target);
	}
	return 0;
}
