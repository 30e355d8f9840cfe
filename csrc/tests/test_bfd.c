/*
 * Tests of BFD's packets and session state machine (bfd.h). FRR_* are the
 * frames FRR 8.4.4's bfdd sent between two namespaces over a veth pair
 * (fe80::1 at 02:00:00:00:00:0a and fe80::2 at 02:00:00:00:00:0b, 10 ms x 3),
 * captured with tshark while the session came up: fe80::1's Down, fe80::2's
 * Init, fe80::1's Up with Poll and its Final. The veth left their UDP
 * checksums partial (offload); udp6_fix_checksum completes them, byte by
 * byte, apart from the code under test. The session plays fe80::2 against
 * those frames; what it sends is written out field by field.
 *
 * Authentication (RFC 5880 6.7.4): the digests in OUR_*_SHA1 were computed
 * apart from this code, with Python's hashlib, as
 *   hashlib.sha1(ctrl + auth_fixed + b"opte-fast".ljust(20, b"\0")).digest()
 * over the 24 bytes of the control packet (Length 52, the A bit set) and
 * the 8 fixed bytes of the Authentication Section (type, 28, key ID 7, 0,
 * the sequence number): the key, zero-padded to 20 bytes, in the digest's
 * place. The receive side is driven with a peer session's packets, each
 * refusal changing one thing of an otherwise good packet.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "bfd.h"
#include "check.h"
#include "parse.h"

#define MS 1000000ull	/* ns */

/* OpenSSL's allocations, counted from test_openssl_counted, the first test, on. */
static unsigned long openssl_allocs;

static const uint8_t MAC_A[6] = { 0x02, 0, 0, 0, 0, 0x0a };
static const uint8_t MAC_B[6] = { 0x02, 0, 0, 0, 0, 0x0b };
static const uint8_t LL_A[16] = { 0xfe, 0x80, [15] = 0x01 };
static const uint8_t LL_B[16] = { 0xfe, 0x80, [15] = 0x02 };
static const uint8_t UNDERLAY[16] = { 0xfd, 0x00, 0x00, 0x00, 0x00, 0xf7, 0x01, 0x01, [15] = 0x01 };

#define FRR_HEADERS(state_flags, diag) \
	0x02, 0x00, 0x00, 0x00, 0x00, 0x0b, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x86, 0xdd, \
	0x6c, 0x02, 0x02, 0x21, 0x00, 0x20, 0x11, 0xff, \
	0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, \
	0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, \
	0xc0, 0x00, 0x0e, 0xc8, 0x00, 0x20, 0x00, 0x00, \
	0x20 | (diag), (state_flags), 0x03, 0x18

/* fe80::1: Down, diag 1 (a previous session timed out), My 0xd88675a7, Your 0, 1 s / 1 s, echo 50 ms */
static const uint8_t FRR_DOWN[] = {
	FRR_HEADERS(0x40, 0x01),
	0xd8, 0x86, 0x75, 0xa7, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x0f, 0x42, 0x40, 0x00, 0x0f, 0x42, 0x40, 0x00, 0x00, 0xc3, 0x50,
};

/* fe80::1: Up with Poll, Your 0xf2677b3e, 10 ms / 10 ms */
static const uint8_t FRR_UP_POLL[] = {
	FRR_HEADERS(0xe0, 0x00),
	0xd8, 0x86, 0x75, 0xa7, 0xf2, 0x67, 0x7b, 0x3e,
	0x00, 0x00, 0x27, 0x10, 0x00, 0x00, 0x27, 0x10, 0x00, 0x00, 0xc3, 0x50,
};

/* fe80::1: Up with Final */
static const uint8_t FRR_UP_FINAL[] = {
	FRR_HEADERS(0xd0, 0x00),
	0xd8, 0x86, 0x75, 0xa7, 0xf2, 0x67, 0x7b, 0x3e,
	0x00, 0x00, 0x27, 0x10, 0x00, 0x00, 0x27, 0x10, 0x00, 0x00, 0xc3, 0x50,
};

/* Our frames to fe80::1: traffic class CS6, flow label 0, hop limit 255, from port 49153. */
#define OUR_HEADERS(state_flags) \
	0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0b, 0x86, 0xdd, \
	0x6c, 0x00, 0x00, 0x00, 0x00, 0x20, 0x11, 0xff, \
	0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, \
	0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, \
	0xc0, 0x01, 0x0e, 0xc8, 0x00, 0x20, 0x00, 0x00, \
	0x20, (state_flags), 0x03, 0x18, \
	0xf2, 0x67, 0x7b, 0x3e, 0xd8, 0x86, 0x75, 0xa7

/* Init (answering FRR_DOWN): 1 s TX while not Up, 10 ms RX, no echo */
static const uint8_t OUR_INIT[] = {
	OUR_HEADERS(0x80),
	0x00, 0x0f, 0x42, 0x40, 0x00, 0x00, 0x27, 0x10, 0x00, 0x00, 0x00, 0x00,
};

/* Up with Final (answering FRR_UP_POLL), 10 ms / 10 ms */
static const uint8_t OUR_UP_FINAL[] = {
	OUR_HEADERS(0xd0),
	0x00, 0x00, 0x27, 0x10, 0x00, 0x00, 0x27, 0x10, 0x00, 0x00, 0x00, 0x00,
};

/* Up with Poll: our own change from 1 s to 10 ms */
static const uint8_t OUR_UP_POLL[] = {
	OUR_HEADERS(0xe0),
	0x00, 0x00, 0x27, 0x10, 0x00, 0x00, 0x27, 0x10, 0x00, 0x00, 0x00, 0x00,
};

/* A new session's first packet, keyed SHA1 (key ID 7, "opte-fast"), sequence number 0x01020304: Down with
 * the A bit, Your 0, 1 s / 10 ms; IPv6 payload and UDP length 8 + 52 */
#define OUR_DOWN_SHA1_HEADERS(auth_type) \
	0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0b, 0x86, 0xdd, \
	0x6c, 0x00, 0x00, 0x00, 0x00, 0x3c, 0x11, 0xff, \
	0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, \
	0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, \
	0xc0, 0x01, 0x0e, 0xc8, 0x00, 0x3c, 0x00, 0x00, \
	0x20, 0x44, 0x03, 0x34, \
	0xf2, 0x67, 0x7b, 0x3e, 0x00, 0x00, 0x00, 0x00, \
	0x00, 0x0f, 0x42, 0x40, 0x00, 0x00, 0x27, 0x10, 0x00, 0x00, 0x00, 0x00, \
	(auth_type), 0x1c, 0x07, 0x00

static const uint8_t OUR_DOWN_SHA1[] = {
	OUR_DOWN_SHA1_HEADERS(OF_BFD_AUTH_KEYED_SHA1), 0x01, 0x02, 0x03, 0x04,
	0xd3, 0xef, 0xe8, 0xd0, 0xd8, 0x28, 0x52, 0xab, 0x50, 0x21,
	0x93, 0xbc, 0x5f, 0x95, 0x70, 0xf2, 0xe7, 0x2f, 0x2d, 0xdb,
};

/* The next: sequence number 0x01020305 (every packet advances it, Keyed SHA1 too) */
static const uint8_t OUR_DOWN_SHA1_NEXT[] = {
	OUR_DOWN_SHA1_HEADERS(OF_BFD_AUTH_KEYED_SHA1), 0x01, 0x02, 0x03, 0x05,
	0xec, 0xc0, 0xa0, 0xed, 0xe2, 0x0a, 0x1c, 0xe0, 0x6b, 0x48,
	0xe3, 0xa9, 0x64, 0xee, 0xe8, 0xaf, 0x71, 0x09, 0xad, 0x4e,
};

/* The first again as Meticulous Keyed SHA1 (Auth Type 5) */
static const uint8_t OUR_DOWN_METICULOUS_SHA1[] = {
	OUR_DOWN_SHA1_HEADERS(OF_BFD_AUTH_METICULOUS_KEYED_SHA1), 0x01, 0x02, 0x03, 0x04,
	0xdf, 0xb1, 0x1c, 0x66, 0x35, 0x5a, 0x04, 0x45, 0x73, 0x6c,
	0xa8, 0x7f, 0xbc, 0xa1, 0x29, 0x05, 0x23, 0x99, 0x97, 0x88,
};

/* The UDP checksum of an Ethernet/IPv6/UDP frame, RFC 1071 over the pseudo-header and datagram. */
static void
udp6_fix_checksum(uint8_t *f)
{
	const uint32_t l3 = 14, l4 = 54;
	uint32_t len = (uint32_t)f[l3 + 4] << 8 | f[l3 + 5], sum = len + 17, i;

	f[l4 + 6] = f[l4 + 7] = 0;
	for (i = l3 + 8; i < l4; i += 2)
		sum += (uint32_t)f[i] << 8 | f[i + 1];
	for (i = 0; i < len; i += 2)
		sum += (uint32_t)f[l4 + i] << 8 | (i + 1 < len ? f[l4 + i + 1] : 0);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	sum = ~sum & 0xffff;
	f[l4 + 6] = (uint8_t)((sum ? sum : 0xffff) >> 8);
	f[l4 + 7] = (uint8_t)((sum ? sum : 0xffff) & 0xff);
}

/* frame (an FRR_* or OUR_* array) with its checksum completed, into out */
static uint32_t
fixed(uint8_t *out, const uint8_t *frame, uint32_t len)
{
	memcpy(out, frame, len);
	udp6_fix_checksum(out);
	return len;
}

/* The session that plays fe80::2: 10 ms x 3, created at t = 0. */
static void
session_b(struct of_bfd_session *s)
{
	memset(s, 0, sizeof(*s));
	s->uplink = 1;
	memcpy(s->peer, LL_A, 16);
	memcpy(s->local, LL_B, 16);
	memcpy(s->dst_mac, MAC_A, 6);
	memcpy(s->src_mac, MAC_B, 6);
	s->sport = 49153;
	s->cfg_tx_us = s->cfg_rx_us = 10000;
	s->cfg_mult = 3;
	of_bfd_session_init(s, 0xf2677b3e, 0, 0);
}

static int
rx_frame(struct of_bfd_session *s, const uint8_t *frame, uint32_t len, uint64_t now)
{
	uint8_t f[128];
	struct of_bfd_rx rx;

	fixed(f, frame, len);
	CHECK_EQ(of_bfd_parse(f, len, &rx), OF_BFD_RX_OK);
	return of_bfd_session_rx(s, &rx, now);
}

static void
test_parse_frr_down(void)
{
	uint8_t f[128];
	struct of_bfd_rx rx;

	fixed(f, FRR_DOWN, sizeof(FRR_DOWN));
	CHECK_EQ(of_bfd_parse(f, sizeof(FRR_DOWN), &rx), OF_BFD_RX_OK);
	CHECK_EQ(rx.kind, OF_BFD_SINGLE_HOP);
	CHECK_MEM(rx.src, LL_A, 16);
	CHECK_MEM(rx.dst, LL_B, 16);
	CHECK_EQ(rx.hop_limit, 255);
	CHECK_EQ(rx.state, OF_BFD_DOWN);
	CHECK_EQ(rx.diag, OF_BFD_DIAG_DETECT_EXPIRED);
	CHECK_EQ(rx.flags, 0);
	CHECK_EQ(rx.detect_mult, 3);
	CHECK_EQ(rx.my_disc, 0xd88675a7u);
	CHECK_EQ(rx.your_disc, 0);
	CHECK_EQ(rx.desired_min_tx_us, 1000000);
	CHECK_EQ(rx.required_min_rx_us, 1000000);
	/* with Ethernet padding after it */
	f[sizeof(FRR_DOWN)] = 0;
	CHECK_EQ(of_bfd_parse(f, sizeof(FRR_DOWN) + 1, &rx), OF_BFD_RX_OK);
}

static void
test_classify(void)
{
	uint8_t f[128], ll_other[16];

	memcpy(f, FRR_DOWN, sizeof(FRR_DOWN));
	memcpy(ll_other, LL_B, 16);
	ll_other[15] = 3;
	CHECK_EQ(of_bfd_classify(f, sizeof(FRR_DOWN), LL_B, UNDERLAY), OF_BFD_SINGLE_HOP);
	CHECK_EQ(of_bfd_classify(f, sizeof(FRR_DOWN), ll_other, UNDERLAY), OF_BFD_NOT_BFD);
	CHECK_EQ(of_bfd_classify(f, sizeof(FRR_DOWN), NULL, UNDERLAY), OF_BFD_NOT_BFD);
	CHECK_EQ(of_bfd_classify(f, 60, LL_B, UNDERLAY), OF_BFD_NOT_BFD);	/* ends inside UDP */
	f[21] = 254;	/* off-link: a single-hop packet must have come with hop limit 255 */
	CHECK_EQ(of_bfd_classify(f, sizeof(FRR_DOWN), LL_B, UNDERLAY), OF_BFD_NOT_BFD);
	f[21] = 255;
	/* multi-hop: port 4784 to the underlay address, any hop limit (the BFD thread checks it) */
	f[57] = 0xb0;	/* 4784 = 0x12b0 */
	f[56] = 0x12;
	CHECK_EQ(of_bfd_classify(f, sizeof(FRR_DOWN), LL_B, UNDERLAY), OF_BFD_NOT_BFD);
	memcpy(f + 38, UNDERLAY, 16);
	CHECK_EQ(of_bfd_classify(f, sizeof(FRR_DOWN), LL_B, UNDERLAY), OF_BFD_MULTI_HOP);
	f[57] = 0xc9;	/* 3785: echo, which we do not run */
	f[56] = 0x0e;
	CHECK_EQ(of_bfd_classify(f, sizeof(FRR_DOWN), LL_B, UNDERLAY), OF_BFD_NOT_BFD);
}

static void
test_parse_refusals(void)
{
	uint8_t f[128];
	struct of_bfd_rx rx;
	const uint32_t n = sizeof(FRR_UP_POLL);

	memcpy(f, FRR_UP_POLL, n);	/* the capture's partial checksum */
	CHECK_EQ(of_bfd_parse(f, n, &rx), OF_BFD_RX_BAD_CHECKSUM);
	fixed(f, FRR_UP_POLL, n);
	f[60] = f[61] = 0;		/* IPv6 forbids a zero checksum */
	CHECK_EQ(of_bfd_parse(f, n, &rx), OF_BFD_RX_BAD_CHECKSUM);
	CHECK_EQ(of_bfd_parse(f, n - 1, &rx), OF_BFD_RX_MALFORMED);
	fixed(f, FRR_UP_POLL, n);
	f[21] = 254;
	CHECK_EQ(of_bfd_parse(f, n, &rx), OF_BFD_RX_BAD_HOP_LIMIT);
	fixed(f, FRR_UP_POLL, n);
	f[62] = 0x40;			/* version 2 */
	udp6_fix_checksum(f);
	CHECK_EQ(of_bfd_parse(f, n, &rx), OF_BFD_RX_INVALID);
	fixed(f, FRR_UP_POLL, n);
	f[64] = 0;			/* detect multiplier 0 */
	udp6_fix_checksum(f);
	CHECK_EQ(of_bfd_parse(f, n, &rx), OF_BFD_RX_INVALID);
	fixed(f, FRR_UP_POLL, n);
	memset(f + 70, 0, 4);		/* Your Discriminator 0 while Up */
	udp6_fix_checksum(f);
	CHECK_EQ(of_bfd_parse(f, n, &rx), OF_BFD_RX_INVALID);
	fixed(f, FRR_UP_POLL, n);
	f[63] = 0xf0;			/* Poll and Final at once */
	udp6_fix_checksum(f);
	CHECK_EQ(of_bfd_parse(f, n, &rx), OF_BFD_RX_INVALID);
	fixed(f, FRR_UP_POLL, n);
	f[65] = 23;			/* a length shorter than the mandatory section */
	udp6_fix_checksum(f);
	CHECK_EQ(of_bfd_parse(f, n, &rx), OF_BFD_RX_INVALID);
	fixed(f, FRR_UP_POLL, n);
	f[63] |= OF_BFD_FLAG_AUTH;	/* the A bit with a Length of 24: no room for the section (6.8.6) */
	udp6_fix_checksum(f);
	CHECK_EQ(of_bfd_parse(f, n, &rx), OF_BFD_RX_INVALID);
	fixed(f, FRR_UP_POLL, n);
	f[19] = 0x21;			/* IPv6 payload and UDP length 33, in a frame that carries 32 */
	f[59] = 0x21;
	CHECK_EQ(of_bfd_parse(f, n, &rx), OF_BFD_RX_MALFORMED);
}

/* The three-way handshake against FRR's frames, and the Poll Sequences both sides start once Up. */
static void
test_handshake_with_frr(void)
{
	struct of_bfd_session s;
	uint8_t out[128], want[128];

	session_b(&s);
	CHECK_EQ(s.state, OF_BFD_DOWN);
	CHECK_EQ(s.next_tx_ns, 0);		/* a new session speaks at once */
	CHECK_EQ(of_bfd_session_tx_interval_us(&s), 1000000);

	CHECK_EQ(rx_frame(&s, FRR_DOWN, sizeof(FRR_DOWN), 5 * MS), 1);
	CHECK_EQ(s.state, OF_BFD_INIT);
	CHECK_EQ(s.remote_disc, 0xd88675a7u);
	CHECK_EQ(s.next_tx_ns, 5 * MS);		/* a change is told at once */
	CHECK_EQ(of_bfd_session_detect_us(&s), 3000000);	/* 3 x FRR's 1 s */
	CHECK_EQ(s.detect_ns, 3005 * MS);
	CHECK_EQ(of_bfd_build(&s, out, sizeof(out), 0), OF_BFD_FRAME_LEN);
	CHECK_MEM(out, want, fixed(want, OUR_INIT, sizeof(OUR_INIT)));
	CHECK_EQ(sizeof(OUR_INIT), OF_BFD_FRAME_LEN);
	of_bfd_session_sent(&s, 5 * MS, 0);
	CHECK_EQ(s.next_tx_ns, 1005 * MS);

	CHECK_EQ(rx_frame(&s, FRR_UP_POLL, sizeof(FRR_UP_POLL), 7 * MS), 1);
	CHECK_EQ(s.state, OF_BFD_UP);
	CHECK_EQ(s.ups, 1);
	CHECK_EQ(s.final_due, 1);
	CHECK_EQ(s.poll, 1);			/* ours: 1 s down to 10 ms */
	CHECK_EQ(s.tx_in_use_us, 10000);	/* faster at once */
	CHECK_EQ(of_bfd_session_detect_us(&s), 30000);
	CHECK_EQ(of_bfd_build(&s, out, sizeof(out), 1), OF_BFD_FRAME_LEN);
	CHECK_MEM(out, want, fixed(want, OUR_UP_FINAL, sizeof(OUR_UP_FINAL)));
	CHECK_EQ(of_bfd_build(&s, out, sizeof(out), 0), OF_BFD_FRAME_LEN);
	CHECK_MEM(out, want, fixed(want, OUR_UP_POLL, sizeof(OUR_UP_POLL)));

	CHECK_EQ(rx_frame(&s, FRR_UP_FINAL, sizeof(FRR_UP_FINAL), 8 * MS), 0);
	CHECK_EQ(s.poll, 0);
	CHECK_EQ(s.state, OF_BFD_UP);
	CHECK_EQ(s.detect_ns, 38 * MS);
	CHECK(of_bfd_build(&s, out, sizeof(out), 0) == OF_BFD_FRAME_LEN && out[63] == 0xc0);	/* Up, no flags */
	CHECK_EQ(of_bfd_build(&s, out, OF_BFD_FRAME_LEN - 1, 0), 0);
}

static void
up_session(struct of_bfd_session *s)
{
	session_b(s);
	rx_frame(s, FRR_DOWN, sizeof(FRR_DOWN), 0);
	rx_frame(s, FRR_UP_POLL, sizeof(FRR_UP_POLL), 0);
	rx_frame(s, FRR_UP_FINAL, sizeof(FRR_UP_FINAL), 0);
	s->final_due = 0;
}

/* Detection time: 3 x 10 ms without a packet takes an Up session Down with diag 1, and no sooner. */
static void
test_detection(void)
{
	struct of_bfd_session s;

	up_session(&s);
	CHECK_EQ(rx_frame(&s, FRR_UP_FINAL, sizeof(FRR_UP_FINAL), 100 * MS), 0);
	CHECK_EQ(of_bfd_session_expire(&s, 130 * MS - 1), 0);
	CHECK_EQ(s.state, OF_BFD_UP);
	CHECK_EQ(of_bfd_session_expire(&s, 130 * MS), 1);
	CHECK_EQ(s.state, OF_BFD_DOWN);
	CHECK_EQ(s.diag, OF_BFD_DIAG_DETECT_EXPIRED);
	CHECK_EQ(s.changed_ns, 130 * MS);
	CHECK_EQ(s.downs, 1);
	CHECK_EQ(s.remote_disc, 0);
	CHECK_EQ(s.detect_ns, 0);
	CHECK_EQ(s.been_up, 1);
	CHECK_EQ(s.desired_tx_us, 1000000);	/* slow again while Down */
	CHECK_EQ(s.next_tx_ns, 130 * MS);
	CHECK_EQ(of_bfd_session_expire(&s, 500 * MS), 0);
}

static void
test_neighbor_down(void)
{
	struct of_bfd_session s;
	uint8_t f[128];

	/* FRR stopping a session says AdminDown: not a failure of the path, but the session is Down */
	up_session(&s);
	memcpy(f, FRR_UP_FINAL, sizeof(FRR_UP_FINAL));
	f[62] = 0x27;			/* diag 7 */
	f[63] = 0x00;			/* AdminDown */
	CHECK_EQ(rx_frame(&s, f, sizeof(FRR_UP_FINAL), 50 * MS), 1);
	CHECK_EQ(s.state, OF_BFD_DOWN);
	CHECK_EQ(s.diag, OF_BFD_DIAG_NEIGHBOR_DOWN);
	CHECK_EQ(s.remote_state, OF_BFD_ADMIN_DOWN);
	CHECK_EQ(s.remote_diag, 7);

	up_session(&s);
	memcpy(f, FRR_DOWN, sizeof(FRR_DOWN));	/* FRR restarted: Down, Your 0 */
	CHECK_EQ(rx_frame(&s, f, sizeof(FRR_DOWN), 50 * MS), 1);
	CHECK_EQ(s.state, OF_BFD_DOWN);
	CHECK_EQ(s.diag, OF_BFD_DIAG_NEIGHBOR_DOWN);
	/* and the next Down brings us to Init again */
	CHECK_EQ(rx_frame(&s, f, sizeof(FRR_DOWN), 60 * MS), 1);
	CHECK_EQ(s.state, OF_BFD_INIT);
	CHECK_EQ(s.diag, OF_BFD_DIAG_NEIGHBOR_DOWN);	/* why it went down, until it is Up again */
}

/* 6.8.7: 75-100% of the interval, 75-90% with a multiplier of 1 */
static void
test_jitter(void)
{
	struct of_bfd_session s;

	up_session(&s);
	of_bfd_session_sent(&s, 0, 0);
	CHECK_EQ(s.next_tx_ns, 10 * MS);
	of_bfd_session_sent(&s, 0, UINT32_MAX);
	CHECK_EQ(s.next_tx_ns, 7500001);
	of_bfd_session_sent(&s, 0, 1u << 31);
	CHECK_EQ(s.next_tx_ns, 8750000);
	s.cfg_mult = 1;
	of_bfd_session_sent(&s, 0, 0);
	CHECK_EQ(s.next_tx_ns, 9 * MS);
	of_bfd_session_sent(&s, 0, UINT32_MAX);
	CHECK_EQ(s.next_tx_ns, 7500001);
	/* a peer that wants packets no faster than 50 ms gets them so */
	s.remote_min_rx_us = 50000;
	of_bfd_session_sent(&s, 0, 0);
	CHECK_EQ(s.next_tx_ns, 45 * MS);
}

/* A slower TX while Up is advertised with Poll and used only after the peer's Final (6.8.3). */
static void
test_poll_on_change(void)
{
	struct of_bfd_session s;
	uint8_t out[128];

	up_session(&s);
	of_bfd_session_configure(&s, 50000, 50000, 3, 200 * MS);
	CHECK_EQ(s.poll, 1);
	CHECK_EQ(s.desired_tx_us, 50000);
	CHECK_EQ(s.tx_in_use_us, 10000);	/* until the Final */
	CHECK_EQ(s.rx_in_use_us, 50000);	/* slower RX: at once */
	CHECK_EQ(s.next_tx_ns, 200 * MS);
	of_bfd_build(&s, out, sizeof(out), 0);
	CHECK_EQ(out[63], 0xe0);
	CHECK_EQ(out[76], 0xc3);		/* Desired Min TX 50000 = 0xc350 */
	rx_frame(&s, FRR_UP_FINAL, sizeof(FRR_UP_FINAL), 210 * MS);
	CHECK_EQ(s.poll, 0);
	CHECK_EQ(s.tx_in_use_us, 50000);
	CHECK_EQ(of_bfd_session_detect_us(&s), 150000);
	/* the same values again: nothing to poll for */
	of_bfd_session_configure(&s, 50000, 50000, 3, 220 * MS);
	CHECK_EQ(s.poll, 0);
}

/* A TEP's session through the tunnel: the outer headers a guest frame to the TEP gets, then the session's own frame
 * with boundary services' inner MAC; a full outer UDP checksum when the data plane sends one. */
static void
test_build_geneve(void)
{
	static const uint8_t TEP[16] = { 0xfd, 0x00, 0x00, 0x99, [15] = 0x01 };
	static const uint8_t OUTER[70] = {
		0x02, 0, 0, 0, 0, 0x0a, 0x02, 0, 0, 0, 0, 0x0b, 0x86, 0xdd,		/* nexthop <- uplink */
		0x60, 0x01, 0x23, 0x45, 0x00, 0x66, 0x11, 0x80,			/* tc 0, label 0x12345, 102 B, hop 128 */
		0xfd, 0x00, 0x00, 0x00, 0x00, 0xf7, 0x01, 0x01, 0, 0, 0, 0, 0, 0, 0, 0x01,
		0xfd, 0x00, 0x00, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
		0xc3, 0x51, 0x17, 0xc1, 0x00, 0x66, 0x00, 0x00,			/* 50001 -> 6081, checksum 0 */
		0x00, 0x00, 0x65, 0x58, 0x00, 0x00, 0x63, 0x00,			/* no options, Ethernet, VNI 99 */
	};
	static const uint8_t BOUNDARY_MAC[6] = { 0xa8, 0x40, 0x25, 0x77, 0x77, 0x77 };
	struct of_bfd_session s;
	struct of_bfd_rx rx;
	uint8_t frame[OF_BFD_GENEVE_FRAME_LEN], plain[OF_BFD_FRAME_LEN];

	session_b(&s);
	s.multihop = s.geneve = 1;
	memcpy(s.peer, TEP, 16);
	memcpy(s.local, UNDERLAY, 16);
	s.tunnel = (struct of_bfd_geneve){ .vni = 99, .flow_label = 0x12345, .sport = 50001, .hop_limit = 128,
					   .inner_dst_mac = { 0xa8, 0x40, 0x25, 0x77, 0x77, 0x77 } };
	CHECK_EQ(of_bfd_build_geneve(&s, frame, sizeof(frame) - 1, 0), 0);
	CHECK_EQ(of_bfd_build_geneve(&s, frame, sizeof(frame), 0), OF_BFD_GENEVE_FRAME_LEN);
	CHECK_MEM(frame, OUTER, sizeof(OUTER));
	/* inside: what the session sends outside a tunnel, to boundary services' MAC, multi-hop to the TEP */
	CHECK_EQ(of_bfd_build(&s, plain, sizeof(plain), 0), OF_BFD_FRAME_LEN);
	CHECK_MEM(frame + 70, BOUNDARY_MAC, 6);
	CHECK_MEM(frame + 76, plain + 6, OF_BFD_FRAME_LEN - 6);
	CHECK_EQ(frame[70 + 54 + 2] << 8 | frame[70 + 54 + 3], OF_BFD_MULTI_HOP_PORT);
	CHECK_EQ(of_bfd_parse(frame + 70, OF_BFD_FRAME_LEN, &rx), OF_BFD_RX_OK);
	CHECK_EQ(rx.kind, OF_BFD_MULTI_HOP);
	CHECK_MEM(rx.dst, TEP, 16);

	s.tunnel.udp_checksum = 1;
	of_bfd_build_geneve(&s, frame, sizeof(frame), 1);
	CHECK(frame[60] != 0 || frame[61] != 0);
	CHECK_EQ(of_cksum_ip6_l4((const struct rte_ipv6_hdr *)(frame + 14), frame + 54, 102, 17), 0xffff);
	CHECK_EQ(frame[70 + 63] & 0x3f, OF_BFD_FLAG_FINAL);
}

/* OpenSSL's allocations, counted: a packet built or checked must allocate nothing. */
static void *
count_malloc(size_t n, const char *file, int line)
{
	(void)file, (void)line;
	openssl_allocs++;
	return malloc(n);
}

static void *
count_realloc(void *p, size_t n, const char *file, int line)
{
	(void)file, (void)line;
	openssl_allocs++;
	return realloc(p, n);
}

static void
count_free(void *p, const char *file, int line)
{
	(void)file, (void)line;
	free(p);
}

static void
test_openssl_counted(void)
{
	CHECK(CRYPTO_set_mem_functions(count_malloc, count_realloc, count_free));
	OPENSSL_free(OPENSSL_malloc(1));
	CHECK_EQ(openssl_allocs, 1);	/* the count works */
}

static const struct of_bfd_auth KEY7 = { .type = OF_BFD_AUTH_KEYED_SHA1, .key_id = 7, .key_len = 9,
					 .key = "opte-fast" };

/* fe80::2's session with auth, its first sequence number seq */
static void
auth_session_b(struct of_bfd_session *s, const struct of_bfd_auth *auth, uint32_t seq)
{
	session_b(s);
	s->auth = *auth;
	of_bfd_session_init(s, 0xf2677b3e, seq, 0);
}

/* The peer, fe80::1 (discriminator 0xd88675a7), with auth: its frames are what the tests receive. */
static void
auth_session_a(struct of_bfd_session *s, const struct of_bfd_auth *auth, uint32_t seq)
{
	memset(s, 0, sizeof(*s));
	memcpy(s->peer, LL_B, 16);
	memcpy(s->local, LL_A, 16);
	memcpy(s->dst_mac, MAC_B, 6);
	memcpy(s->src_mac, MAC_A, 6);
	s->sport = 49152;
	s->cfg_tx_us = s->cfg_rx_us = 10000;
	s->cfg_mult = 3;
	s->auth = *auth;
	of_bfd_session_init(s, 0xd88675a7, seq, 0);
}

/* Keyed and Meticulous Keyed SHA1 on the wire: the A bit, Length 52, the section, the digest; the UDP
 * checksum over all of it; the sequence number advancing with every packet. */
static void
test_auth_build(void)
{
	struct of_bfd_session s;
	struct of_bfd_auth meticulous = KEY7;
	uint8_t out[128], want[128];

	CHECK_EQ(sizeof(OUR_DOWN_SHA1), OF_BFD_AUTH_FRAME_LEN);
	auth_session_b(&s, &KEY7, 0x01020304);
	CHECK_EQ(of_bfd_frame_len(&s), OF_BFD_AUTH_FRAME_LEN);
	CHECK_EQ(of_bfd_build(&s, out, OF_BFD_AUTH_FRAME_LEN - 1, 0), 0);
	CHECK_EQ(s.xmit_auth_seq, 0x01020304);		/* nothing sent, nothing used */
	CHECK_EQ(of_bfd_build(&s, out, sizeof(out), 0), OF_BFD_AUTH_FRAME_LEN);
	CHECK_MEM(out, want, fixed(want, OUR_DOWN_SHA1, sizeof(OUR_DOWN_SHA1)));
	CHECK_EQ(of_bfd_build(&s, out, sizeof(out), 0), OF_BFD_AUTH_FRAME_LEN);
	CHECK_MEM(out, want, fixed(want, OUR_DOWN_SHA1_NEXT, sizeof(OUR_DOWN_SHA1_NEXT)));

	meticulous.type = OF_BFD_AUTH_METICULOUS_KEYED_SHA1;
	auth_session_b(&s, &meticulous, 0x01020304);
	CHECK_EQ(of_bfd_build(&s, out, sizeof(out), 0), OF_BFD_AUTH_FRAME_LEN);
	CHECK_MEM(out, want, fixed(want, OUR_DOWN_METICULOUS_SHA1, sizeof(OUR_DOWN_METICULOUS_SHA1)));
}

/* Through Geneve: the authenticated frame inside, the outer lengths 28 bytes longer. */
static void
test_auth_build_geneve(void)
{
	struct of_bfd_session s;
	uint8_t frame[OF_BFD_GENEVE_LEN + OF_BFD_AUTH_FRAME_LEN], want[128];
	struct of_bfd_rx rx;

	auth_session_b(&s, &KEY7, 0x01020304);
	s.geneve = 1;	/* the path as of_bfd_build made it; only the lengths and the inner frame matter here */
	CHECK_EQ(of_bfd_frame_len(&s), sizeof(frame));
	CHECK_EQ(of_bfd_build_geneve(&s, frame, sizeof(frame) - 1, 0), 0);
	CHECK_EQ(of_bfd_build_geneve(&s, frame, sizeof(frame), 0), sizeof(frame));
	CHECK_EQ(frame[18] << 8 | frame[19], 8 + 8 + OF_BFD_AUTH_FRAME_LEN);	/* outer IPv6 payload */
	CHECK_EQ(frame[58] << 8 | frame[59], 8 + 8 + OF_BFD_AUTH_FRAME_LEN);	/* outer UDP length */
	fixed(want, OUR_DOWN_SHA1, sizeof(OUR_DOWN_SHA1));
	CHECK_MEM(frame + 76, want + 6, OF_BFD_AUTH_FRAME_LEN - 6);
	CHECK_EQ(of_bfd_parse(frame + 70, OF_BFD_AUTH_FRAME_LEN, &rx), OF_BFD_RX_OK);
	CHECK_EQ(rx.auth_type, OF_BFD_AUTH_KEYED_SHA1);
	CHECK_EQ(rx.auth_seq, 0x01020304);
}

/* The peer's next frame, parsed, checked by s at now: what of_bfd_session_auth says, and the packet
 * taken (as bfd_io.c does) when it passes. */
static enum of_bfd_rx_error
auth_rx(struct of_bfd_session *s, struct of_bfd_session *peer, uint64_t now, uint8_t *f)
{
	struct of_bfd_rx rx;
	enum of_bfd_rx_error rc;
	uint32_t len = of_bfd_build(peer, f, 128, 0);

	CHECK_EQ(of_bfd_parse(f, len, &rx), OF_BFD_RX_OK);
	rc = of_bfd_session_auth(s, &rx, now);
	if (rc == OF_BFD_RX_OK)
		of_bfd_session_rx(s, &rx, now);
	return rc;
}

/* The same frame again (f as auth_rx left it), as a replaying attacker would send it. */
static enum of_bfd_rx_error
replay(struct of_bfd_session *s, const uint8_t *f, uint64_t now)
{
	struct of_bfd_rx rx;

	CHECK_EQ(of_bfd_parse(f, OF_BFD_AUTH_FRAME_LEN, &rx), OF_BFD_RX_OK);
	return of_bfd_session_auth(s, &rx, now);
}

/* Each refusal of 6.7.4, one changed thing at a time; none moves bfd.RcvAuthSeq. */
static void
test_auth_refusals(void)
{
	struct of_bfd_session s, peer;
	struct of_bfd_auth other = KEY7, none = { 0 };
	uint8_t f[128];
	struct of_bfd_rx rx;

	auth_session_b(&s, &KEY7, 1);
	auth_session_a(&peer, &KEY7, 500);
	CHECK_EQ(auth_rx(&s, &peer, 1 * MS, f), OF_BFD_RX_OK);
	CHECK(s.auth_seq_known && s.rcv_auth_seq == 500);
	CHECK_EQ(s.state, OF_BFD_INIT);

	/* another key */
	memcpy(other.key, "opte-slow", 9);
	auth_session_a(&peer, &other, 501);
	CHECK_EQ(auth_rx(&s, &peer, 2 * MS, f), OF_BFD_RX_AUTH_BAD_DIGEST);
	/* the same key, shorter: zero padding is part of the key (opte-fas\0 is not opte-fast) */
	other = KEY7;
	other.key_len = 8;
	other.key[8] = 0;
	auth_session_a(&peer, &other, 501);
	CHECK_EQ(auth_rx(&s, &peer, 2 * MS, f), OF_BFD_RX_AUTH_BAD_DIGEST);
	/* another key ID */
	other = KEY7;
	other.key_id = 8;
	auth_session_a(&peer, &other, 501);
	CHECK_EQ(auth_rx(&s, &peer, 2 * MS, f), OF_BFD_RX_AUTH_BAD_KEY_ID);
	/* another type */
	other = KEY7;
	other.type = OF_BFD_AUTH_METICULOUS_KEYED_SHA1;
	auth_session_a(&peer, &other, 501);
	CHECK_EQ(auth_rx(&s, &peer, 2 * MS, f), OF_BFD_RX_AUTH_BAD_TYPE);
	/* no authentication at all: the session never takes it */
	auth_session_a(&peer, &none, 0);
	CHECK_EQ(auth_rx(&s, &peer, 2 * MS, f), OF_BFD_RX_AUTH_MISSING);
	/* a good packet changed in flight (Required Min RX), its UDP checksum made good again */
	auth_session_a(&peer, &KEY7, 501);
	of_bfd_build(&peer, f, sizeof(f), 0);
	f[62 + 19] ^= 1;
	udp6_fix_checksum(f);
	CHECK_EQ(replay(&s, f, 2 * MS), OF_BFD_RX_AUTH_BAD_DIGEST);
	/* an Auth Len of 24 (MD5's) in a section of 28 */
	of_bfd_build(&peer, f, sizeof(f), 0);
	f[62 + 25] = 24;
	udp6_fix_checksum(f);
	CHECK_EQ(replay(&s, f, 2 * MS), OF_BFD_RX_AUTH_BAD_TYPE);
	/* an Auth Len past Length: not a packet at all (6.8.6) */
	f[62 + 25] = 29;
	udp6_fix_checksum(f);
	CHECK_EQ(of_bfd_parse(f, OF_BFD_AUTH_FRAME_LEN, &rx), OF_BFD_RX_INVALID);
	CHECK(s.auth_seq_known && s.rcv_auth_seq == 500);

	/* a session without authentication never takes an authenticated packet */
	auth_session_b(&s, &none, 0);
	auth_session_a(&peer, &KEY7, 1);
	CHECK_EQ(auth_rx(&s, &peer, 1 * MS, f), OF_BFD_RX_AUTH_UNEXPECTED);
	CHECK_EQ(s.rx_packets, 0);
}

/* The sequence number window (6.7.4): Keyed takes bfd.RcvAuthSeq again and up to 3 x Detect Mult (3 here)
 * past it; Meticulous one past it to the same end; both across 2^32. */
static void
test_auth_sequence(void)
{
	struct of_bfd_session s, peer;
	struct of_bfd_auth meticulous = KEY7;
	uint8_t f[128];

	auth_session_b(&s, &KEY7, 1);
	auth_session_a(&peer, &KEY7, UINT32_MAX - 1);
	CHECK_EQ(auth_rx(&s, &peer, 1 * MS, f), OF_BFD_RX_OK);
	CHECK_EQ(replay(&s, f, 1 * MS), OF_BFD_RX_OK);		/* Keyed: the same number again */
	peer.xmit_auth_seq = UINT32_MAX - 1 + 9;		/* 7, across the wrap: the end of the window */
	CHECK_EQ(auth_rx(&s, &peer, 2 * MS, f), OF_BFD_RX_OK);
	CHECK_EQ(s.rcv_auth_seq, 7);
	peer.xmit_auth_seq = 7 + 10;				/* one past it */
	CHECK_EQ(auth_rx(&s, &peer, 3 * MS, f), OF_BFD_RX_AUTH_BAD_SEQ);
	peer.xmit_auth_seq = 6;					/* behind */
	CHECK_EQ(auth_rx(&s, &peer, 3 * MS, f), OF_BFD_RX_AUTH_BAD_SEQ);
	CHECK_EQ(s.rcv_auth_seq, 7);

	meticulous.type = OF_BFD_AUTH_METICULOUS_KEYED_SHA1;
	auth_session_b(&s, &meticulous, 1);
	auth_session_a(&peer, &meticulous, UINT32_MAX);
	CHECK_EQ(auth_rx(&s, &peer, 1 * MS, f), OF_BFD_RX_OK);
	CHECK_EQ(replay(&s, f, 1 * MS), OF_BFD_RX_AUTH_BAD_SEQ);	/* Meticulous: never twice */
	CHECK_EQ(auth_rx(&s, &peer, 2 * MS, f), OF_BFD_RX_OK);		/* 0, across the wrap */
	peer.xmit_auth_seq = 9;
	CHECK_EQ(auth_rx(&s, &peer, 3 * MS, f), OF_BFD_RX_OK);		/* 0 + 3 x 3 */
	peer.xmit_auth_seq = 9 + 10;
	CHECK_EQ(auth_rx(&s, &peer, 4 * MS, f), OF_BFD_RX_AUTH_BAD_SEQ);
	CHECK_EQ(s.rcv_auth_seq, 9);
}

/* bfd.AuthSeqKnown lapses after 2 x the detection time without an authenticated packet: a peer that
 * restarted, with a new random sequence number, is taken again; until then it is not. */
static void
test_auth_sequence_known_lapses(void)
{
	struct of_bfd_session s, peer;
	uint8_t f[128];
	uint64_t detect_ns;

	auth_session_b(&s, &KEY7, 1);
	auth_session_a(&peer, &KEY7, 1000);
	CHECK_EQ(auth_rx(&s, &peer, 10 * MS, f), OF_BFD_RX_OK);
	detect_ns = of_bfd_session_detect_us(&s) * 1000;
	CHECK_EQ(detect_ns, 3000 * MS);				/* 3 x the peer's 1 s while Down */
	peer.xmit_auth_seq = 5;
	CHECK_EQ(auth_rx(&s, &peer, 10 * MS + 2 * detect_ns, f), OF_BFD_RX_AUTH_BAD_SEQ);
	CHECK_EQ(auth_rx(&s, &peer, 10 * MS + 2 * detect_ns + 1, f), OF_BFD_RX_OK);
	CHECK_EQ(s.rcv_auth_seq, 6);
}

/* A packet built and a packet checked allocate nothing (the BFD thread keeps to that, as workers do). */
static void
test_auth_allocates_nothing(void)
{
	struct of_bfd_session s, peer;
	struct of_bfd_auth meticulous = KEY7;
	uint8_t f[128];
	unsigned long before = openssl_allocs;

	meticulous.type = OF_BFD_AUTH_METICULOUS_KEYED_SHA1;
	auth_session_b(&s, &meticulous, 1);
	auth_session_a(&peer, &meticulous, 1);
	for (int i = 0; i < 100; i++)
		CHECK_EQ(auth_rx(&s, &peer, (uint64_t)(i + 1) * MS, f), OF_BFD_RX_OK);
	CHECK_EQ(openssl_allocs, before);
}

RUN_TESTS(
	TEST_ENTRY(test_openssl_counted),
	TEST_ENTRY(test_parse_frr_down),
	TEST_ENTRY(test_classify),
	TEST_ENTRY(test_parse_refusals),
	TEST_ENTRY(test_handshake_with_frr),
	TEST_ENTRY(test_detection),
	TEST_ENTRY(test_neighbor_down),
	TEST_ENTRY(test_jitter),
	TEST_ENTRY(test_poll_on_change),
	TEST_ENTRY(test_build_geneve),
	TEST_ENTRY(test_auth_build),
	TEST_ENTRY(test_auth_build_geneve),
	TEST_ENTRY(test_auth_refusals),
	TEST_ENTRY(test_auth_sequence),
	TEST_ENTRY(test_auth_sequence_known_lapses),
	TEST_ENTRY(test_auth_allocates_nothing),
)
