/*
 * Tests of BFD's packets and session state machine (bfd.h). FRR_* are the
 * frames FRR 8.4.4's bfdd sent between two namespaces over a veth pair
 * (fe80::1 at 02:00:00:00:00:0a and fe80::2 at 02:00:00:00:00:0b, 10 ms x 3),
 * captured with tshark while the session came up: fe80::1's Down, fe80::2's
 * Init, fe80::1's Up with Poll and its Final. The veth left their UDP
 * checksums partial (offload); udp6_fix_checksum completes them, byte by
 * byte, apart from the code under test. The session plays fe80::2 against
 * those frames; what it sends is written out field by field.
 */
#include <stdint.h>
#include <string.h>

#include "bfd.h"
#include "check.h"

#define MS 1000000ull	/* ns */

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
	of_bfd_session_init(s, 0xf2677b3e, 0);
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
	f[63] |= OF_BFD_FLAG_AUTH;
	udp6_fix_checksum(f);
	CHECK_EQ(of_bfd_parse(f, n, &rx), OF_BFD_RX_AUTH);
	fixed(f, FRR_UP_POLL, n);
	f[19] = 0x21;			/* IPv6 payload and UDP length 33, in a frame that carries 32 */
	f[59] = 0x21;
	CHECK_EQ(of_bfd_parse(f, n, &rx), OF_BFD_RX_MALFORMED);
}

static void
test_link_local(void)
{
	static const uint8_t mac[6] = { 0x02, 0x5e, 0x00, 0x00, 0x00, 0x01 };
	static const uint8_t want[16] = { 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x00, 0x5e, 0x00, 0xff, 0xfe, 0x00, 0x00, 0x01 };
	uint8_t ll[16];

	of_bfd_link_local(mac, ll);
	CHECK_MEM(ll, want, 16);
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

RUN_TESTS(
	TEST_ENTRY(test_parse_frr_down),
	TEST_ENTRY(test_classify),
	TEST_ENTRY(test_parse_refusals),
	TEST_ENTRY(test_link_local),
	TEST_ENTRY(test_handshake_with_frr),
	TEST_ENTRY(test_detection),
	TEST_ENTRY(test_neighbor_down),
	TEST_ENTRY(test_jitter),
	TEST_ENTRY(test_poll_on_change),
)
