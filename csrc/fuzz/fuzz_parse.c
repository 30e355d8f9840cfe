/*
 * libFuzzer entry for the packet parsers, the NDP, gateway, DHCP, router
 * advertisement and ICMP too-big responders, and BFD's receive path (classify,
 * parse, a session taking the packet, also for a Geneve packet's inner frame):
 * any input gets a result without a read or write past its end, and
 * whatever a parser reports lies inside the input.
 *
 *   clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined \
 *	$(pkg-config --cflags libdpdk) -Icsrc csrc/fuzz/fuzz_parse.c \
 *	csrc/parse.c csrc/ndp.c csrc/gateway.c csrc/guest.c csrc/guest_net.c csrc/dhcp.c \
 *	csrc/ra.c csrc/mtu.c csrc/counters.c csrc/bfd.c -o /tmp/fuzz_parse
 *   /tmp/fuzz_parse -max_total_time=30 [corpus dir]
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bfd.h"
#include "gateway.h"
#include "guest.h"
#include "mtu.h"
#include "ndp.h"
#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t SLED[16] = { 0xfd, 0x00, 0x00, 0x00, 0x00, 0xf7, 0x01, 0x01, [15] = 0x01 };
static const uint8_t SLED_MAC[6] = { 0x02, 0x08, 0x20, 0x01, 0x01, 0x01 };
static const uint8_t GATEWAY_MAC[6] = { 0xa8, 0x40, 0x25, 0xff, 0x00, 0x01 };

/* Where an untagged frame holds the IPv6 destination and the NS target. */
enum { IP6_DST_OFF = 14 + 24, ND_TARGET_OFF = 14 + 40 + 8 };

#define EXPECT(cond) do { if (!(cond)) __builtin_trap(); } while (0)

static void fuzz_bfd(const uint8_t *frame, uint32_t len);

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
	struct of_geneve_meta m, fast;
	struct of_inner_meta im, fast_im;
	int verify, rc;

	for (verify = 0; verify <= 1; verify++) {
		rc = of_parse_geneve(frame, len, addr, verify, &m);
		if (rc == OF_OK)
			rc = of_parse_inner_inbound(frame + m.outer_len, m.inner_len, &im);
		/* The inlined parse of the inbound path gives the same answer, field for field. */
		EXPECT(of_parse_inbound_fast(frame, len, addr, verify, &fast, &fast_im, 0) == rc);
		if (rc == OF_OK)	/* without the key: the verdict, the Geneve fields and l2_len */
			EXPECT(fast.vni == m.vni && fast.outer_len == m.outer_len && fast.inner_len == m.inner_len &&
			       fast_im.l2_len == im.l2_len);
		EXPECT(of_parse_inbound_fast(frame, len, addr, verify, &fast, &fast_im, 1) == rc);
		if (rc == OF_OK)
			EXPECT(fast.vni == m.vni && fast.outer_len == m.outer_len && fast.ip6_off == m.ip6_off &&
			       fast.udp_off == m.udp_off && fast.inner_len == m.inner_len && fast.external == m.external &&
			       fast.has_mss == m.has_mss && fast.has_mcast == m.has_mcast && fast.mss == m.mss &&
			       fast.mcast == m.mcast && memcmp(&fast_im.key, &im.key, sizeof(im.key)) == 0 &&
			       fast_im.l2_len == im.l2_len && fast_im.l3_len == im.l3_len &&
			       fast_im.is_ipv6 == im.is_ipv6 && fast_im.tcp_flags == im.tcp_flags);
		if (of_parse_geneve(frame, len, addr, verify, &m) != OF_OK)
			continue;
		EXPECT(m.ip6_off < m.udp_off && m.udp_off < m.outer_len);
		EXPECT(m.inner_len >= 14 && (uint32_t)m.outer_len + m.inner_len <= len);
		fuzz_inner(frame + m.outer_len, m.inner_len);
		fuzz_bfd(frame + m.outer_len, m.inner_len);	/* a TEP's answer from inside the tunnel */
	}
}

/*
 * A chained frame's parse, its first avail bytes readable (an exact heap copy), avail at least
 * min(len, 200) as the caller's window (chain.h) guarantees: the whole frame's answer, or
 * HEADERS_BEYOND_SEGMENT.
 */
static void
fuzz_span(const uint8_t *frame, uint32_t len, const uint8_t addr[16])
{
	for (uint32_t k = 1; k <= 3; k++) {
		uint32_t avail = RTE_MAX(len * k / 4, RTE_MIN(len, 200u));
		uint8_t *copy = malloc(avail ? avail : 1);
		struct of_geneve_meta ga, gb;
		struct of_inner_meta a, b;

		memcpy(copy, frame, avail);
		for (int inbound = 0; inbound <= 1; inbound++) {
			int rs = of_parse_inner_span(copy, avail, len, inbound, &a);
			int rw = inbound ? of_parse_inner_inbound(frame, len, &b) : of_parse_inner(frame, len, &b);

			EXPECT(rs == rw || rs == OF_C_HEADERS_BEYOND_SEGMENT);
			EXPECT(rs != OF_OK || memcmp(&a, &b, sizeof(a)) == 0);
		}
		{
			int rs = of_parse_geneve_span(copy, avail, len, addr, &ga);
			int rw = of_parse_geneve(frame, len, addr, 0, &gb);

			EXPECT(rs == rw || rs == OF_C_HEADERS_BEYOND_SEGMENT);
			EXPECT(rs != OF_OK || (memcmp(&ga, &gb, sizeof(ga)) == 0 && ga.outer_len <= avail));
		}
		free(copy);
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

/*
 * A guest port's checks and services, its MAC the input's source so they are reached, with room
 * for an answer longer than the request (DHCP): an answer must fit in room, anything else leaves
 * the frame as it was.
 */
static void
fuzz_guest(const uint8_t *frame, uint32_t len)
{
	static const uint8_t ipv6[16] = { 0xfd, 0x77, [15] = 0x02 };
	static const uint8_t dns6[16] = { 0xfd, 0x77, [14] = 0x00, [15] = 0x53 };
	struct of_guest g = { .vni = 7, .valid = 1 };
	struct of_inner_meta m, slow;
	const uint32_t room = len + 1024;
	uint8_t *buf;
	uint32_t n = 0;
	int rc;

	if (len < 14)
		return;
	of_guest_net_default(&g.net);
	memcpy(g.mac, frame + 6, 6);
	memcpy(g.gw_mac, GATEWAY_MAC, 6);
	g.net.has_ipv4 = g.net.has_ipv6 = 1;
	memcpy(g.net.ipv4, (const uint8_t[]){ 10, 0, 0, 2 }, 4);
	memcpy(g.net.ipv4_gateway, (const uint8_t[]){ 10, 0, 0, 1 }, 4);
	g.net.ipv4_prefix_len = 24;
	memcpy(g.net.ipv6, ipv6, 16);
	g.net.n_dns4 = 1;
	memcpy(g.net.dns4[0], (const uint8_t[]){ 10, 0, 0, 53 }, 4);
	g.net.n_dns6 = 1;
	memcpy(g.net.dns6[0], dns6, 16);
	strcpy(g.net.domain, "vpc.example");
	g.net.lease_s = 3600;
	g.net.ra_managed = 1;
	g.net.ra_router_lifetime_s = 1800;
	g.net.has_ra_prefix = 1;
	memcpy(g.net.ra_prefix.addr, ipv6, 8);
	g.net.ra_prefix.depth = 64;
	g.net.n_allowed = 1;
	memcpy(g.net.allowed[0].addr, (const uint8_t[]){ [10] = 0xff, [11] = 0xff, 192, 168 }, 16);
	g.net.allowed[0].depth = 96 + 16;

	buf = malloc(room);
	memcpy(buf, frame, len);
	rc = of_guest_arp(buf, len, room, &g, &n);
	EXPECT(of_guest_answered(rc) ? n > 0 && n <= room : memcmp(buf, frame, len) == 0);
	/* The packet path parses with the inlined parse: its anti-spoofing and service verdicts are the
	 * full parse's, frame for frame. */
	rc = of_parse_inner_fast(frame, len, &m);
	EXPECT(rc == of_parse_inner(frame, len, &slow));
	if (rc == OF_OK) {
		EXPECT(of_guest_src_ok(&g.net, &m) == of_guest_src_ok(&g.net, &slow));
		EXPECT(of_guest_maybe_service(&m) == of_guest_maybe_service(&slow));
		memcpy(buf, frame, len);
		n = of_icmp_too_big(buf, len, &m, &g, 1430);
		EXPECT(n <= len);
		if (of_guest_maybe_service(&m)) {
			memcpy(buf, frame, len);
			rc = of_guest_service(buf, len, room, &m, &g, &n);
			EXPECT(of_guest_answered(rc) ? n > 0 && n <= room : memcmp(buf, frame, len) == 0);
		}
	}
	free(buf);
}

/* Whatever parses goes into a session, authenticated or not as the packet asks (so that the digest is
 * checked, and a packet that passes is taken), which then still builds frames of the fixed lengths. */
static void
fuzz_bfd(const uint8_t *frame, uint32_t len)
{
	struct of_bfd_session s = { .cfg_tx_us = 10000, .cfg_rx_us = 10000, .cfg_mult = 3 };
	struct of_bfd_rx rx;
	uint8_t out[OF_BFD_AUTH_FRAME_LEN], tunnel[OF_BFD_GENEVE_LEN + OF_BFD_AUTH_FRAME_LEN];
	uint32_t want;

	if (len >= IP6_DST_OFF + 16)
		(void)of_bfd_classify(frame, len, frame + IP6_DST_OFF, SLED);
	(void)of_bfd_classify(frame, len, NULL, SLED);
	if (of_bfd_parse(frame, len, &rx) != OF_BFD_RX_OK)
		return;
	EXPECT(rx.detect_mult != 0 && rx.my_disc != 0 && rx.kind != OF_BFD_NOT_BFD);
	if (rx.flags & OF_BFD_FLAG_AUTH)
		s.auth = (struct of_bfd_auth){ .type = rx.auth_type == OF_BFD_AUTH_METICULOUS_KEYED_SHA1 ?
							       OF_BFD_AUTH_METICULOUS_KEYED_SHA1 : OF_BFD_AUTH_KEYED_SHA1,
					       .key_id = rx.auth_key_id, .key_len = 4, .key = "fuzz" };
	of_bfd_session_init(&s, 1, 7, 0);
	if (of_bfd_session_auth(&s, &rx, 1000) == OF_BFD_RX_OK)
		of_bfd_session_rx(&s, &rx, 1000);
	of_bfd_session_expire(&s, UINT64_MAX);
	EXPECT(s.state <= OF_BFD_UP);
	want = s.auth.type != OF_BFD_AUTH_NONE ? OF_BFD_AUTH_FRAME_LEN : OF_BFD_FRAME_LEN;
	EXPECT(of_bfd_build(&s, out, sizeof(out), 1) == want);
	EXPECT(of_bfd_build_geneve(&s, tunnel, sizeof(tunnel), 0) == OF_BFD_GENEVE_LEN + want);
	of_bfd_session_sent(&s, 0, UINT32_MAX);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint32_t len = size;

	if (size > UINT16_MAX)
		return 0;
	fuzz_inner(data, len);
	fuzz_gateway(data, len);
	fuzz_guest(data, len);
	fuzz_bfd(data, len);

	/* the sled's address, and the input's own destination and target, so
	 * the paths past the address checks are reached without guessing it */
	fuzz_geneve(data, len, SLED);
	if (len >= IP6_DST_OFF + 16) {
		fuzz_geneve(data, len, data + IP6_DST_OFF);
		fuzz_span(data, len, data + IP6_DST_OFF);
	}
	fuzz_span(data, len, SLED);
	fuzz_ndp(data, len, SLED);
	if (len >= ND_TARGET_OFF + 16) {
		uint8_t target[16];

		memcpy(target, data + ND_TARGET_OFF, sizeof(target));
		fuzz_ndp(data, len, target);
	}
	return 0;
}
