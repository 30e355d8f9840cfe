/*
 * BFD, the protocol (RFC 5880 asynchronous mode; RFC 5881 single hop and
 * RFC 5883 multi-hop over IPv6): the control packet, frames in and out, and
 * one session's state machine and timers as functions of the time given.
 * No threads, no DPDK objects: bfd_io.c runs sessions, the unit tests
 * (csrc/tests/test_bfd.c) drive these with exact packets and made-up clocks.
 * Times are CLOCK_MONOTONIC nanoseconds; intervals microseconds, as on the
 * wire. No authentication: a packet with the A bit is discarded (6.8.6).
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

/* Ethernet + IPv6 + UDP + control packet: every frame we send. */
#define OF_BFD_FRAME_LEN	(14 + 40 + 8 + 24)

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
	OF_BFD_RX_AUTH,			/* the A bit: we do no authentication */
	OF_BFD_RX_N_ERRORS,
};

/* A received control packet, checked and decoded. */
struct of_bfd_rx {
	uint8_t kind;			/* enum of_bfd_kind, by destination port */
	uint8_t src[16], dst[16];
	uint8_t hop_limit;
	uint8_t state, diag, flags, detect_mult;
	uint32_t my_disc, your_disc;
	uint32_t desired_min_tx_us, required_min_rx_us;
};

/* Check frame as RFC 5881/5883/5880 6.8.6 ask, up to the session lookup. */
enum of_bfd_rx_error of_bfd_parse(const uint8_t *frame, uint32_t len, struct of_bfd_rx *rx);

/* fe80::/64 with the modified EUI-64 interface identifier of mac (RFC 4291 2.5.1). */
void of_bfd_link_local(const uint8_t mac[6], uint8_t out[16]);

/* One session (RFC 5880 6.8.1 state, plus what it is sent with and what was seen). */
struct of_bfd_session {
	/* the path: set by the owner, may change (a multi-hop session's nexthop) */
	uint8_t multihop;
	uint16_t uplink;			/* port index it is sent on */
	uint8_t peer[16], local[16];		/* IPv6 destination and source */
	uint8_t dst_mac[6], src_mac[6];
	uint16_t sport;
	/* configured */
	uint32_t cfg_tx_us, cfg_rx_us;
	uint8_t cfg_mult;
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
	/* seen */
	uint8_t been_up;
	uint64_t changed_ns;			/* last state change (or creation) */
	uint64_t rx_packets, tx_packets;
	uint32_t ups, downs;
};

/* A new session in state Down that sends at once, from the path and configuration fields already set. */
void of_bfd_session_init(struct of_bfd_session *s, uint32_t local_disc, uint64_t now_ns);

/* New intervals or multiplier; while Up, a Poll Sequence carries them (6.8.3). */
void of_bfd_session_configure(struct of_bfd_session *s, uint32_t tx_us, uint32_t rx_us, uint8_t mult,
			      uint64_t now_ns);

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

/* The session's packet as a whole frame into frame (room bytes): Final set if final, else Poll while
 * a Poll Sequence is outstanding. Returns OF_BFD_FRAME_LEN, or 0 if room is too small. */
uint32_t of_bfd_build(const struct of_bfd_session *s, uint8_t *frame, uint32_t room, int final);

#endif
