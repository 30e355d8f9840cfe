/*
 * BFD, the protocol (RFC 5880 asynchronous mode; RFC 5881 single hop and
 * RFC 5883 multi-hop over IPv6): the control packet, frames in and out, and
 * one session's state machine and timers as functions of the time given.
 * No threads, no DPDK objects: bfd_io.c runs sessions, the unit tests
 * (csrc/tests/test_bfd.c) drive these with exact packets and made-up clocks.
 * Times are CLOCK_MONOTONIC nanoseconds; intervals microseconds, as on the
 * wire. Authentication: none, Keyed SHA1 or Meticulous Keyed SHA1 (6.7.4),
 * per session; the digest is OpenSSL's SHA1 (libcrypto), on the stack.
 */
#ifndef OF_BFD_H
#define OF_BFD_H

#include <stdint.h>

#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_ether.h>

#define OF_BFD_SINGLE_HOP_PORT	3784	/* RFC 5881 */
#define OF_BFD_MULTI_HOP_PORT	4784	/* RFC 5883 */
#define OF_BFD_SPORT_MIN	49152	/* source ports 49152..65535 (RFC 5881 4) */
#define OF_BFD_HOP_LIMIT	255	/* sent; single hop requires it received (RFC 5881 5) */
#define OF_BFD_MULTI_HOP_MIN_HOP_LIMIT 254	/* at most one router between (FRR's default) */
#define OF_BFD_VERSION		1
#define OF_BFD_SLOW_TX_US	1000000	/* 6.8.3: not less than 1 s while not Up */
#define OF_BFD_MIN_INTERVAL_US	10000	/* the fastest we offer: 10 ms */
#define OF_BFD_TRAFFIC_CLASS	0xc0	/* CS6, network control, as FRR sends */

/* The mandatory section of a control packet (RFC 5880 4.1), 24 bytes. */
struct of_bfd_ctrl {
	uint8_t vers_diag;		/* version (3 bits) | diagnostic (5 bits) */
	uint8_t state_flags;		/* state (2 bits) | P F C A D M */
	uint8_t detect_mult;
	uint8_t length;
	rte_be32_t my_disc;
	rte_be32_t your_disc;
	rte_be32_t desired_min_tx;	/* microseconds */
	rte_be32_t required_min_rx;
	rte_be32_t required_min_echo_rx;
} __rte_packed;

#define OF_BFD_FLAG_POLL	0x20
#define OF_BFD_FLAG_FINAL	0x10
#define OF_BFD_FLAG_CPI		0x08
#define OF_BFD_FLAG_AUTH	0x04
#define OF_BFD_FLAG_DEMAND	0x02
#define OF_BFD_FLAG_MULTIPOINT	0x01

#define OF_BFD_AUTH_NONE			0
#define OF_BFD_AUTH_KEYED_SHA1			4
#define OF_BFD_AUTH_METICULOUS_KEYED_SHA1	5
#define OF_BFD_SHA1_KEY_MAX			20	/* a key is 1..20 bytes, zero-padded to 20 (6.7.4) */

/* The Keyed SHA1 and Meticulous Keyed SHA1 Authentication Section (4.4), 28 bytes after the mandatory one. */
struct of_bfd_auth_sha1 {
	uint8_t type;
	uint8_t len;			/* 28 */
	uint8_t key_id;
	uint8_t reserved;
	rte_be32_t seq;
	uint8_t digest[20];		/* SHA1 of the whole packet with the key in this field */
} __rte_packed;

/* Ethernet + IPv6 + UDP + control packet: every frame we send outside a tunnel, without authentication. */
#define OF_BFD_FRAME_LEN	(14 + 40 + 8 + 24)
/* The same with the SHA1 Authentication Section: the longest we send. */
#define OF_BFD_AUTH_FRAME_LEN	(OF_BFD_FRAME_LEN + 28)
/* Outer Ethernet, IPv6, UDP and Geneve without options, in front of either when sent through the tunnel. */
#define OF_BFD_GENEVE_LEN	70
#define OF_BFD_GENEVE_FRAME_LEN	(OF_BFD_GENEVE_LEN + OF_BFD_FRAME_LEN)

enum of_bfd_state {
	OF_BFD_ADMIN_DOWN = 0,
	OF_BFD_DOWN = 1,
	OF_BFD_INIT = 2,
	OF_BFD_UP = 3,
};

enum of_bfd_diag {
	OF_BFD_DIAG_NONE = 0,
	OF_BFD_DIAG_DETECT_EXPIRED = 1,		/* control detection time expired */
	OF_BFD_DIAG_NEIGHBOR_DOWN = 3,		/* neighbor signaled session down */
	OF_BFD_DIAG_ADMIN_DOWN = 7,		/* administratively down */
};

enum of_bfd_kind {
	OF_BFD_NOT_BFD = 0,
	OF_BFD_SINGLE_HOP = 1,
	OF_BFD_MULTI_HOP = 2,
};

/*
 * Which BFD a frame an uplink received is, from its headers alone, for the
 * workers (the frame goes to the BFD thread, which checks the rest):
 * Ethernet (one 802.1Q tag at most), IPv6 with UDP as next header, then
 * destination port 3784 to `link_local` (the uplink's address) with hop
 * limit 255, or destination port 4784 to `underlay`. link_local NULL: the
 * uplink runs no single-hop BFD.
 */
enum of_bfd_kind of_bfd_classify(const uint8_t *frame, uint32_t len, const uint8_t *link_local,
				 const uint8_t underlay[16]);

/* Why a received frame was not taken (bfd_io.c counts each). */
enum of_bfd_rx_error {
	OF_BFD_RX_OK = 0,
	OF_BFD_RX_MALFORMED,		/* not Ethernet/IPv6/UDP/BFD whole, or UDP length wrong */
	OF_BFD_RX_BAD_CHECKSUM,		/* UDP checksum wrong or zero (IPv6 requires one) */
	OF_BFD_RX_BAD_HOP_LIMIT,	/* single hop below 255, multi-hop below 254 */
	OF_BFD_RX_INVALID,		/* 6.8.6: version, length, multiplier, M bit, discriminators */
	/* of_bfd_session_auth: the packet against its session's authentication (6.7.4) */
	OF_BFD_RX_AUTH_MISSING,		/* no A bit, the session authenticates */
	OF_BFD_RX_AUTH_UNEXPECTED,	/* the A bit, the session does not authenticate */
	OF_BFD_RX_AUTH_BAD_TYPE,	/* another Auth Type than the session's, or an Auth Len not 28 */
	OF_BFD_RX_AUTH_BAD_KEY_ID,	/* a key ID not the session's */
	OF_BFD_RX_AUTH_BAD_SEQ,		/* the sequence number outside the window: a replay, or too far ahead */
	OF_BFD_RX_AUTH_BAD_DIGEST,	/* the SHA1 does not match: another key, or the packet changed */
	OF_BFD_RX_N_ERRORS,
};

/* A received control packet, checked and decoded. */
struct of_bfd_rx {
	uint8_t kind;			/* enum of_bfd_kind, by destination port */
	uint8_t geneve;			/* decapsulated from Geneve by a worker (set by the caller, not the parse) */
	uint8_t src[16], dst[16];
	uint8_t hop_limit;
	uint8_t state, diag, flags, detect_mult;
	uint32_t my_disc, your_disc;
	uint32_t desired_min_tx_us, required_min_rx_us;
	/* the A bit: the Authentication Section, its fixed fields whole (Auth Len may still be wrong) */
	uint8_t auth_type, auth_len, auth_key_id;
	uint32_t auth_seq;
	const uint8_t *ctrl;		/* the control packet in the frame parsed (for the digest; as long as the frame) */
	uint8_t ctrl_len;		/* its Length field */
};

/* Check frame as RFC 5881/5883/5880 6.8.6 ask, up to the session lookup. */
enum of_bfd_rx_error of_bfd_parse(const uint8_t *frame, uint32_t len, struct of_bfd_rx *rx);

/*
 * The tunnel of a multi-hop session sent through Geneve to its TEP (in the
 * spirit of RFC 9521): the outer headers as the data plane puts them in
 * front of a guest's frame toward that TEP (no options, the TEP's VNI, the
 * underlay hop limit, UDP checksum zero or full as configured), and the
 * inner Ethernet destination boundary services expects. Inside: Ethernet
 * from the uplink's MAC, then IPv6 from the underlay address to the TEP's,
 * hop limit 255, UDP 4784, the control packet.
 */
struct of_bfd_geneve {
	uint32_t vni;
	uint32_t flow_label;			/* 20 bits; 0 when the data plane sends 0 */
	uint16_t sport;				/* outer UDP source port, inside the data plane's range */
	uint8_t hop_limit;
	uint8_t udp_checksum;			/* 1: full outer UDP checksum, 0: zero (RFC 6935) */
	uint8_t inner_dst_mac[6];
};

/* A session's authentication, as configured (6.7.1). */
struct of_bfd_auth {
	uint8_t type;				/* OF_BFD_AUTH_* */
	uint8_t key_id;
	uint8_t key_len;			/* 1..20 unless type is none */
	uint8_t key[OF_BFD_SHA1_KEY_MAX];	/* zero past key_len */
};

/* One session (RFC 5880 6.8.1 state, plus what it is sent with and what was seen). */
struct of_bfd_session {
	/* the path: set by the owner, may change (a multi-hop session's nexthop) */
	uint8_t multihop;
	uint8_t geneve;				/* multi-hop through the tunnel: `tunnel` holds its outer headers */
	struct of_bfd_geneve tunnel;
	uint16_t uplink;			/* port index it is sent on */
	uint8_t peer[16], local[16];		/* IPv6 destination and source */
	uint8_t dst_mac[6], src_mac[6];
	uint16_t sport;
	/* configured */
	uint32_t cfg_tx_us, cfg_rx_us;
	uint8_t cfg_mult;
	struct of_bfd_auth auth;
	/* RFC 5880 6.8.1 */
	uint8_t state, remote_state, diag;
	uint32_t local_disc, remote_disc;
	uint32_t desired_tx_us;			/* bfd.DesiredMinTxInterval, as sent */
	uint32_t required_rx_us;		/* bfd.RequiredMinRxInterval, as sent */
	uint32_t tx_in_use_us, rx_in_use_us;	/* the two above as timers use them (6.8.3) */
	uint32_t remote_min_rx_us, remote_min_tx_us;
	uint8_t remote_mult, remote_diag;
	uint8_t poll;				/* our Poll Sequence is outstanding */
	uint8_t final_due;			/* the peer polled: answer with F at once */
	uint64_t next_tx_ns;			/* periodic transmission */
	uint64_t detect_ns;			/* detection time runs out; 0: not running */
	uint32_t xmit_auth_seq;			/* bfd.XmitAuthSeq: of the next packet sent */
	uint32_t rcv_auth_seq;			/* bfd.RcvAuthSeq */
	uint8_t auth_seq_known;			/* bfd.AuthSeqKnown */
	uint64_t auth_rx_ns;			/* the last authenticated packet: AuthSeqKnown lapses 2 x detection time on */
	/* seen */
	uint8_t been_up;
	uint64_t changed_ns;			/* last state change (or creation) */
	uint64_t rx_packets, tx_packets;
	uint32_t ups, downs;
};

/* A new session in state Down that sends at once, from the path and configuration fields already set;
 * auth_seq, a random number, is its first sequence number (6.8.1). */
void of_bfd_session_init(struct of_bfd_session *s, uint32_t local_disc, uint32_t auth_seq, uint64_t now_ns);

/* New intervals or multiplier; while Up, a Poll Sequence carries them (6.8.3). */
void of_bfd_session_configure(struct of_bfd_session *s, uint32_t tx_us, uint32_t rx_us, uint8_t mult,
			      uint64_t now_ns);

/*
 * Whether a packet parsed for this session passes its authentication (6.7.4, 6.8.6): the A bit as the
 * session wants it, the Auth Type and Len, the key ID, the sequence number within
 * bfd.RcvAuthSeq..+3 x the packet's Detect Mult (+1.. for Meticulous, which must not repeat one) once
 * bfd.AuthSeqKnown, and the digest. OF_BFD_RX_OK takes the sequence number as bfd.RcvAuthSeq; any
 * other answer leaves it as it was. bfd.AuthSeqKnown lapses after 2 x the detection time without an
 * authenticated packet (judged here, when the next one comes: no timer needed).
 */
enum of_bfd_rx_error of_bfd_session_auth(struct of_bfd_session *s, const struct of_bfd_rx *rx, uint64_t now_ns);

/* A packet parsed for this session (6.8.6 from "bfd.RemoteDiscr = My Discriminator" on). Returns 1 if the
 * state changed. Sets final_due if the peer polled. */
int of_bfd_session_rx(struct of_bfd_session *s, const struct of_bfd_rx *rx, uint64_t now_ns);

/* The detection time ran out by now_ns: Init or Up go Down with diag 1 (6.8.4). Returns 1 if the state changed. */
int of_bfd_session_expire(struct of_bfd_session *s, uint64_t now_ns);

/* Time between periodic packets before jitter: max(DesiredMinTx in use, RemoteMinRx) (6.8.7). */
uint32_t of_bfd_session_tx_interval_us(const struct of_bfd_session *s);

/* Detection time: remote multiplier x max(RequiredMinRx in use, remote DesiredMinTx) (6.8.4). */
uint64_t of_bfd_session_detect_us(const struct of_bfd_session *s);

/* A periodic packet was sent at now_ns: the next one 75-100% of the interval later (75-90% with a
 * multiplier of 1), by rnd, a uniform 32-bit random number (6.8.7). */
void of_bfd_session_sent(struct of_bfd_session *s, uint64_t now_ns, uint32_t rnd);

/* The length of the session's frames: OF_BFD_FRAME_LEN, or OF_BFD_AUTH_FRAME_LEN when it authenticates, after
 * OF_BFD_GENEVE_LEN when it goes through Geneve. */
uint32_t of_bfd_frame_len(const struct of_bfd_session *s);

/* The session's next packet as a whole frame into frame (room bytes): Final set if final, else Poll while
 * a Poll Sequence is outstanding; when the session authenticates, with the Authentication Section and
 * bfd.XmitAuthSeq, which then advances (every packet, for both types: 6.7.4 allows it for Keyed SHA1).
 * Returns the frame's length, or 0 if room is too small (nothing advances). */
uint32_t of_bfd_build(struct of_bfd_session *s, uint8_t *frame, uint32_t room, int final);

/* The same control packet inside Geneve toward the TEP (s->geneve, s->tunnel): Ethernet (dst_mac, src_mac),
 * IPv6 local -> peer, UDP to 6081, Geneve, then the frame of_bfd_build makes with the inner destination MAC
 * of s->tunnel. Returns OF_BFD_GENEVE_LEN + the length of that frame, or 0 if room is too small. */
uint32_t of_bfd_build_geneve(struct of_bfd_session *s, uint8_t *frame, uint32_t room, int final);

#endif
