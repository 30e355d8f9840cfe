/*
 * BFD sessions of a data plane, for the Cython bindings (python/cbfd_api.pxd
 * mirrors this header). The control thread says which sessions it wants;
 * the BFD thread (bfd_io.c) runs them and signals every state change on an
 * eventfd; the control plane reads the sessions and marks members down.
 */
#ifndef OF_BFD_API_H
#define OF_BFD_API_H

#include <stdint.h>

#define OF_BFD_MAX_SESSIONS 256

struct of_dp;

/* One wanted session. */
struct of_bfd_peer {
	uint8_t multihop;		/* 0: RFC 5881 from the uplink's link-local; 1: RFC 5883 from the underlay address */
	uint8_t peer[16];		/* single hop: the nexthop's gateway; multi-hop: the TEP */
	uint16_t uplink;		/* port index it is sent on (multi-hop: the nexthop's, may change) */
	uint8_t dst_mac[6];		/* the nexthop's MAC */
	uint32_t desired_min_tx_us;	/* 10000 at least */
	uint32_t required_min_rx_us;	/* 10000 at least */
	uint8_t detect_mult;		/* 1 at least */
	/* multi-hop only: 1 sends the session through Geneve to the TEP, as guest traffic (bfd.h, of_bfd_geneve),
	 * and takes the TEP's answers decapsulated on the inbound path; 0 sends it plainly to the TEP's address */
	uint8_t geneve;
	uint32_t vni;			/* the TEP's VNI, for geneve */
	/* RFC 5880 6.7.4: 0 none, 4 Keyed SHA1, 5 Meticulous Keyed SHA1; the key (1..20 bytes) and its ID */
	uint8_t auth_type;
	uint8_t auth_key_id;
	uint8_t auth_key_len;
	uint8_t auth_key[20];
};

/*
 * Replace the set of sessions with peers[0..n). A session keeps its state and
 * discriminator while it is wanted, keyed by (multihop, geneve, peer, and the
 * uplink for single hop); its path and intervals follow the new entry (a change of
 * intervals while Up is a Poll Sequence), so does its authentication, at once (a new key, or none, is
 * what the next packet is sent and checked with). A session no longer wanted sends one
 * AdminDown packet and is gone. Refused as a whole (-EINVAL, message) for an
 * entry out of range (an authentication type or key length among them), a port that is not an
 * uplink, or a duplicate key. An uplink without a TX queue of its own for BFD sends through worker 0.
 */
int of_dp_bfd_set(struct of_dp *dp, const struct of_bfd_peer *peers, unsigned n);

struct of_bfd_info {
	uint8_t multihop;
	uint8_t geneve;				/* multi-hop through the tunnel */
	uint32_t vni;				/* its VNI */
	uint8_t peer[16];
	uint8_t local[16];
	uint16_t uplink;
	uint8_t state, remote_state;		/* 0 AdminDown, 1 Down, 2 Init, 3 Up */
	uint8_t diag, remote_diag;		/* of the last state change, and the peer's */
	uint8_t been_up;			/* the session was Up at least once */
	uint8_t poll;				/* a Poll Sequence is outstanding */
	uint8_t detect_mult, remote_mult;
	uint32_t local_disc, remote_disc;
	uint32_t desired_min_tx_us, required_min_rx_us;		/* as sent */
	uint32_t remote_min_tx_us, remote_min_rx_us;		/* as received */
	uint32_t tx_interval_us;		/* agreed: max(our TX in use, the peer's RX) */
	uint64_t detect_us;			/* the peer's multiplier x max(our RX in use, its TX) */
	uint64_t changed_ns;			/* CLOCK_MONOTONIC of the last state change */
	uint64_t rx_packets, tx_packets;
	uint32_t ups, downs;
	uint8_t auth_type, auth_key_id;		/* as configured; the key is never read back */
};

/* Up to max sessions, in the order given to of_dp_bfd_set; the count. */
unsigned of_dp_bfd_sessions(struct of_dp *dp, struct of_bfd_info *out, unsigned max);

/* The BFD thread's counters. */
struct of_bfd_stats {
	uint64_t rx_packets;			/* taken from the workers' ring */
	uint64_t rx_geneve_packets;		/* of those, decapsulated from Geneve (multi-hop through the tunnel) */
	uint64_t rx_malformed, rx_bad_checksum, rx_bad_hop_limit, rx_invalid;
	/* authentication failures (bfd.h, of_bfd_session_auth), each a drop of a packet for a session */
	uint64_t rx_auth_missing, rx_auth_unexpected, rx_auth_bad_type, rx_auth_bad_key_id, rx_auth_bad_seq;
	uint64_t rx_auth_bad_digest;
	uint64_t rx_no_session;			/* valid, but for no session of ours */
	uint64_t tx_packets, tx_failed;		/* tx_failed: no mbuf, or the TX queue full */
	uint64_t state_changes;
	uint64_t wakeups;
	uint64_t late_max_ns;			/* the latest a wake-up came after its deadline */
	uint64_t late_over_1ms;			/* wake-ups more than 1 ms late */
	uint8_t realtime;			/* the thread runs SCHED_FIFO (else SCHED_OTHER) */
	uint8_t running;
};
void of_dp_bfd_stats(struct of_dp *dp, struct of_bfd_stats *out);

/* Readable after any session changed state; read 8 bytes to rearm. */
int of_dp_bfd_event_fd(const struct of_dp *dp);

/* The port has a TX queue of its own for BFD (an uplink whose PMD has one more than the workers use). */
int of_dp_bfd_port_ready(const struct of_dp *dp, uint16_t port);

#endif
