/*
 * BFD control packets and the session state machine; the contract is in
 * bfd.h. Section numbers are RFC 5880's unless named otherwise.
 */
#include <netinet/in.h>
#include <string.h>

/* OpenSSL 3's EVP allocates a context at every EVP_DigestInit (test_bfd.c counts it); the low-level SHA1
 * functions, deprecated for EVP, hash on the stack and allocate nothing. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <rte_ip.h>
#include <rte_udp.h>

#include "bfd.h"
#include "parse.h"
#include "wire.h"

#define NS_PER_US 1000u

/* Offset of the UDP header of an IPv6/UDP frame (no extension headers), with its IPv6 header; 0 if none. */
static uint32_t
udp_off(const uint8_t *frame, uint32_t len, const struct rte_ipv6_hdr **ip6)
{
	rte_be16_t type;
	uint32_t l3 = of_eth_l3_off(frame, len, &type);

	if (l3 == 0 || type != RTE_BE16(RTE_ETHER_TYPE_IPV6) ||
	    len - l3 < sizeof(struct rte_ipv6_hdr) + sizeof(struct rte_udp_hdr))
		return 0;
	*ip6 = (const struct rte_ipv6_hdr *)(frame + l3);
	if ((frame[l3] >> 4) != 6 || (*ip6)->proto != IPPROTO_UDP)
		return 0;
	return l3 + sizeof(struct rte_ipv6_hdr);
}

enum of_bfd_kind
of_bfd_classify(const uint8_t *frame, uint32_t len, const uint8_t *link_local, const uint8_t underlay[16])
{
	const struct rte_ipv6_hdr *ip6;
	const struct rte_udp_hdr *udp;
	uint32_t l4 = udp_off(frame, len, &ip6);

	if (l4 == 0)
		return OF_BFD_NOT_BFD;
	udp = (const struct rte_udp_hdr *)(frame + l4);
	if (udp->dst_port == RTE_BE16(OF_BFD_SINGLE_HOP_PORT))
		return link_local != NULL && ip6->hop_limits == OF_BFD_HOP_LIMIT &&
		       memcmp(&ip6->dst_addr, link_local, 16) == 0 ? OF_BFD_SINGLE_HOP : OF_BFD_NOT_BFD;
	if (udp->dst_port == RTE_BE16(OF_BFD_MULTI_HOP_PORT))
		return memcmp(&ip6->dst_addr, underlay, 16) == 0 ? OF_BFD_MULTI_HOP : OF_BFD_NOT_BFD;
	return OF_BFD_NOT_BFD;
}

enum of_bfd_rx_error
of_bfd_parse(const uint8_t *frame, uint32_t len, struct of_bfd_rx *rx)
{
	const struct rte_ipv6_hdr *ip6;
	const struct rte_udp_hdr *udp;
	const struct of_bfd_ctrl *c;
	uint32_t l4 = udp_off(frame, len, &ip6), plen, ulen;

	if (l4 == 0)
		return OF_BFD_RX_MALFORMED;
	udp = (const struct rte_udp_hdr *)(frame + l4);
	plen = rte_be_to_cpu_16(ip6->payload_len);
	ulen = rte_be_to_cpu_16(udp->dgram_len);
	/* Trailing Ethernet padding is allowed; a short or lying length is not. */
	if (plen > len - l4 || ulen != plen || ulen < sizeof(*udp) + sizeof(*c))
		return OF_BFD_RX_MALFORMED;
	if (udp->dst_port == RTE_BE16(OF_BFD_SINGLE_HOP_PORT))
		rx->kind = OF_BFD_SINGLE_HOP;
	else if (udp->dst_port == RTE_BE16(OF_BFD_MULTI_HOP_PORT))
		rx->kind = OF_BFD_MULTI_HOP;
	else
		return OF_BFD_RX_MALFORMED;
	if (udp->dgram_cksum == 0 || of_cksum_ip6_l4(ip6, (const uint8_t *)udp, ulen, IPPROTO_UDP) != 0xffff)
		return OF_BFD_RX_BAD_CHECKSUM;
	rx->hop_limit = ip6->hop_limits;
	if (rx->hop_limit < (rx->kind == OF_BFD_SINGLE_HOP ? OF_BFD_HOP_LIMIT : OF_BFD_MULTI_HOP_MIN_HOP_LIMIT))
		return OF_BFD_RX_BAD_HOP_LIMIT;

	/* 6.8.6: the checks every packet must pass before any session is looked at */
	c = (const struct of_bfd_ctrl *)(udp + 1);
	rx->state = c->state_flags >> 6;
	rx->flags = c->state_flags & 0x3f;
	rx->diag = c->vers_diag & 0x1f;
	rx->detect_mult = c->detect_mult;
	rx->my_disc = rte_be_to_cpu_32(c->my_disc);
	rx->your_disc = rte_be_to_cpu_32(c->your_disc);
	rx->desired_min_tx_us = rte_be_to_cpu_32(c->desired_min_tx);
	rx->required_min_rx_us = rte_be_to_cpu_32(c->required_min_rx);
	memcpy(rx->src, &ip6->src_addr, 16);
	memcpy(rx->dst, &ip6->dst_addr, 16);
	if ((c->vers_diag >> 5) != OF_BFD_VERSION || c->length < sizeof(*c) ||
	    c->length > ulen - sizeof(*udp) || rx->detect_mult == 0 || (rx->flags & OF_BFD_FLAG_MULTIPOINT) ||
	    rx->my_disc == 0 ||
	    (rx->your_disc == 0 && rx->state != OF_BFD_DOWN && rx->state != OF_BFD_ADMIN_DOWN) ||
	    ((rx->flags & OF_BFD_FLAG_POLL) && (rx->flags & OF_BFD_FLAG_FINAL)))
		return OF_BFD_RX_INVALID;
	rx->ctrl = (const uint8_t *)c;
	rx->ctrl_len = c->length;
	rx->auth_type = rx->auth_len = rx->auth_key_id = 0;
	rx->auth_seq = 0;
	if (rx->flags & OF_BFD_FLAG_AUTH) {
		const uint8_t *a = (const uint8_t *)(c + 1);

		/* 6.8.6: at least Auth Type and Len, and the section inside Length */
		if (c->length < sizeof(*c) + 2 || a[1] < 2 || a[1] > c->length - sizeof(*c))
			return OF_BFD_RX_INVALID;
		rx->auth_type = a[0];
		rx->auth_len = a[1];
		if (rx->auth_len >= sizeof(struct of_bfd_auth_sha1)) {
			const struct of_bfd_auth_sha1 *sha = (const struct of_bfd_auth_sha1 *)a;

			rx->auth_key_id = sha->key_id;
			rx->auth_seq = rte_be_to_cpu_32(sha->seq);
		}
	}
	return OF_BFD_RX_OK;
}

/* SHA1 of the control packet pkt (len bytes) with the key, zero-padded, in place of the digest (6.7.4): into
 * the digest field (sign), or into out with the field left as it was (check). */
static void
sha1_digest(const struct of_bfd_auth *auth, uint8_t *pkt, uint32_t len, uint8_t *out)
{
	struct of_bfd_auth_sha1 *a = (struct of_bfd_auth_sha1 *)(pkt + sizeof(struct of_bfd_ctrl));
	uint8_t sent[SHA_DIGEST_LENGTH];
	SHA_CTX ctx;

	memcpy(sent, a->digest, sizeof(sent));
	memcpy(a->digest, auth->key, sizeof(a->digest));
	SHA1_Init(&ctx);
	SHA1_Update(&ctx, pkt, len);
	if (out == NULL) {
		SHA1_Final(a->digest, &ctx);
	} else {
		SHA1_Final(out, &ctx);
		memcpy(a->digest, sent, sizeof(sent));
	}
}

/* Whether seq lies in from..from+span, in the circular space of 32-bit numbers (6.7.4) */
static int
seq_within(uint32_t seq, uint32_t from, uint32_t span)
{
	return seq - from <= span;
}

enum of_bfd_rx_error
of_bfd_session_auth(struct of_bfd_session *s, const struct of_bfd_rx *rx, uint64_t now_ns)
{
	int meticulous = s->auth.type == OF_BFD_AUTH_METICULOUS_KEYED_SHA1;
	uint8_t pkt[UINT8_MAX], digest[SHA_DIGEST_LENGTH];
	uint32_t first;

	if (!(rx->flags & OF_BFD_FLAG_AUTH))
		return s->auth.type == OF_BFD_AUTH_NONE ? OF_BFD_RX_OK : OF_BFD_RX_AUTH_MISSING;
	if (s->auth.type == OF_BFD_AUTH_NONE)
		return OF_BFD_RX_AUTH_UNEXPECTED;
	if (rx->auth_type != s->auth.type || rx->auth_len != sizeof(struct of_bfd_auth_sha1))
		return OF_BFD_RX_AUTH_BAD_TYPE;
	if (rx->auth_key_id != s->auth.key_id)
		return OF_BFD_RX_AUTH_BAD_KEY_ID;
	/* 2 x the detection time without an authenticated packet: any sequence number is new again */
	if (s->auth_seq_known &&
	    now_ns - s->auth_rx_ns > 2 * of_bfd_session_detect_us(s) * NS_PER_US)
		s->auth_seq_known = 0;
	/* Meticulous: never the same number twice. The window is the sender's multiplier: as many packets as
	 * may go missing before we would call the session down. */
	first = s->rcv_auth_seq + (uint32_t)meticulous;
	if (s->auth_seq_known && !seq_within(rx->auth_seq, first, 3u * rx->detect_mult - (uint32_t)meticulous))
		return OF_BFD_RX_AUTH_BAD_SEQ;
	memcpy(pkt, rx->ctrl, rx->ctrl_len);
	sha1_digest(&s->auth, pkt, rx->ctrl_len, digest);
	if (CRYPTO_memcmp(digest, ((const struct of_bfd_auth_sha1 *)(pkt + sizeof(struct of_bfd_ctrl)))->digest,
			   sizeof(digest)) != 0)
		return OF_BFD_RX_AUTH_BAD_DIGEST;
	s->rcv_auth_seq = rx->auth_seq;
	s->auth_seq_known = 1;
	s->auth_rx_ns = now_ns;
	return OF_BFD_RX_OK;
}

/* 6.8.3: while not Up, DesiredMinTxInterval is at least one second. */
static uint32_t
desired_tx_for(const struct of_bfd_session *s, uint8_t state)
{
	return state == OF_BFD_UP ? s->cfg_tx_us : RTE_MAX(s->cfg_tx_us, (uint32_t)OF_BFD_SLOW_TX_US);
}

/*
 * Advertise new intervals. A faster TX or a slower RX is safe to use at once; a slower TX and a
 * faster RX wait for the peer's Final, which says it has seen them (6.8.3). While Up, a Poll
 * Sequence carries the change; otherwise the peer just takes the next packet's values.
 */
static void
advertise(struct of_bfd_session *s, uint32_t tx_us, uint32_t rx_us, uint64_t now_ns)
{
	if (tx_us == s->desired_tx_us && rx_us == s->required_rx_us)
		return;
	s->desired_tx_us = tx_us;
	s->required_rx_us = rx_us;
	if (s->state == OF_BFD_UP) {
		s->poll = 1;
		s->tx_in_use_us = RTE_MIN(s->tx_in_use_us, tx_us);
		s->rx_in_use_us = RTE_MAX(s->rx_in_use_us, rx_us);
		s->next_tx_ns = now_ns;		/* the poll leaves at once */
	} else {
		s->poll = 0;
		s->tx_in_use_us = tx_us;
		s->rx_in_use_us = rx_us;
	}
}

static void
set_state(struct of_bfd_session *s, uint8_t state, uint8_t diag, uint64_t now_ns)
{
	if (state == OF_BFD_UP) {
		s->been_up = 1;
		s->ups++;
	} else if (s->state == OF_BFD_UP) {
		s->downs++;
	}
	s->state = state;
	s->diag = diag;
	s->changed_ns = now_ns;
	s->next_tx_ns = now_ns;		/* tell the peer at once */
	if (state == OF_BFD_UP) {
		advertise(s, desired_tx_for(s, state), s->cfg_rx_us, now_ns);
	} else {
		/* Down: back to the slow rate at once; nothing to poll for on a dead path. */
		s->poll = 0;
		s->desired_tx_us = s->tx_in_use_us = desired_tx_for(s, state);
		s->required_rx_us = s->rx_in_use_us = s->cfg_rx_us;
	}
}

void
of_bfd_session_init(struct of_bfd_session *s, uint32_t local_disc, uint32_t auth_seq, uint64_t now_ns)
{
	s->state = OF_BFD_DOWN;
	s->remote_state = OF_BFD_DOWN;
	s->diag = OF_BFD_DIAG_NONE;
	s->local_disc = local_disc;
	s->remote_disc = 0;
	s->desired_tx_us = s->tx_in_use_us = desired_tx_for(s, OF_BFD_DOWN);
	s->required_rx_us = s->rx_in_use_us = s->cfg_rx_us;
	s->remote_min_rx_us = 1;	/* 6.8.1: initialised to 1 */
	s->remote_min_tx_us = 0;
	s->remote_mult = 0;
	s->remote_diag = 0;
	s->poll = 0;
	s->final_due = 0;
	s->next_tx_ns = now_ns;
	s->detect_ns = 0;
	s->xmit_auth_seq = auth_seq;
	s->rcv_auth_seq = 0;
	s->auth_seq_known = 0;
	s->auth_rx_ns = 0;
	s->been_up = 0;
	s->changed_ns = now_ns;
	s->rx_packets = s->tx_packets = 0;
	s->ups = s->downs = 0;
}

void
of_bfd_session_configure(struct of_bfd_session *s, uint32_t tx_us, uint32_t rx_us, uint8_t mult, uint64_t now_ns)
{
	s->cfg_tx_us = tx_us;
	s->cfg_rx_us = rx_us;
	s->cfg_mult = mult;
	advertise(s, desired_tx_for(s, s->state), rx_us, now_ns);
}

uint32_t
of_bfd_session_tx_interval_us(const struct of_bfd_session *s)
{
	return RTE_MAX(s->tx_in_use_us, s->remote_min_rx_us);
}

uint64_t
of_bfd_session_detect_us(const struct of_bfd_session *s)
{
	return (uint64_t)s->remote_mult * RTE_MAX(s->rx_in_use_us, s->remote_min_tx_us);
}

int
of_bfd_session_rx(struct of_bfd_session *s, const struct of_bfd_rx *rx, uint64_t now_ns)
{
	uint8_t before = s->state;

	s->rx_packets++;
	s->remote_disc = rx->my_disc;
	s->remote_state = rx->state;
	s->remote_diag = rx->diag;
	s->remote_mult = rx->detect_mult;
	s->remote_min_rx_us = rx->required_min_rx_us;
	s->remote_min_tx_us = rx->desired_min_tx_us;
	if ((rx->flags & OF_BFD_FLAG_FINAL) && s->poll) {
		s->poll = 0;
		s->tx_in_use_us = s->desired_tx_us;
		s->rx_in_use_us = s->required_rx_us;
	}
	/* A packet from a live peer restarts the detection time, in any state (6.8.4). */
	s->detect_ns = now_ns + of_bfd_session_detect_us(s) * NS_PER_US;
	if (s->state == OF_BFD_ADMIN_DOWN)
		return 0;
	if (rx->state == OF_BFD_ADMIN_DOWN) {
		if (s->state != OF_BFD_DOWN)
			set_state(s, OF_BFD_DOWN, OF_BFD_DIAG_NEIGHBOR_DOWN, now_ns);
	} else if (s->state == OF_BFD_DOWN) {
		if (rx->state == OF_BFD_DOWN)	/* the reason of the last Down stays until Up, as FRR keeps it */
			set_state(s, OF_BFD_INIT, s->diag, now_ns);
		else if (rx->state == OF_BFD_INIT)
			set_state(s, OF_BFD_UP, OF_BFD_DIAG_NONE, now_ns);
	} else if (s->state == OF_BFD_INIT) {
		if (rx->state == OF_BFD_INIT || rx->state == OF_BFD_UP)
			set_state(s, OF_BFD_UP, OF_BFD_DIAG_NONE, now_ns);
	} else if (rx->state == OF_BFD_DOWN) {	/* Up */
		set_state(s, OF_BFD_DOWN, OF_BFD_DIAG_NEIGHBOR_DOWN, now_ns);
	}
	if (rx->flags & OF_BFD_FLAG_POLL)
		s->final_due = 1;
	/* A peer that lets us be faster (a smaller RemoteMinRx) hears from us within the new interval. */
	if (s->next_tx_ns > now_ns + (uint64_t)of_bfd_session_tx_interval_us(s) * NS_PER_US)
		s->next_tx_ns = now_ns + (uint64_t)of_bfd_session_tx_interval_us(s) * NS_PER_US;
	return s->state != before;
}

int
of_bfd_session_expire(struct of_bfd_session *s, uint64_t now_ns)
{
	uint8_t before = s->state;

	if (s->detect_ns == 0 || now_ns < s->detect_ns)
		return 0;
	s->detect_ns = 0;
	s->remote_disc = 0;	/* 6.8.1: the peer is gone */
	s->remote_state = OF_BFD_DOWN;
	s->remote_min_rx_us = 1;
	if (s->state == OF_BFD_INIT || s->state == OF_BFD_UP)
		set_state(s, OF_BFD_DOWN, OF_BFD_DIAG_DETECT_EXPIRED, now_ns);
	return s->state != before;
}

/* x * rnd / 2^32, without overflow for any interval a peer may ask for */
static uint64_t
scale(uint64_t x, uint32_t rnd)
{
	return (uint64_t)((unsigned __int128)x * rnd >> 32);
}

void
of_bfd_session_sent(struct of_bfd_session *s, uint64_t now_ns, uint32_t rnd)
{
	uint64_t interval_ns = (uint64_t)of_bfd_session_tx_interval_us(s) * NS_PER_US;
	/* 6.8.7: reduce by 0-25%; with a multiplier of 1, send at 75-90% */
	uint64_t cut = s->cfg_mult == 1 ? interval_ns / 10 + scale(interval_ns * 15 / 100, rnd)
					: scale(interval_ns / 4, rnd);

	s->next_tx_ns = now_ns + interval_ns - cut;
}

/* Ethernet, IPv6 and UDP headers from the session's addresses to its peer, the UDP checksum zero. */
static void
put_eth_ip6_udp(const struct of_bfd_session *s, uint8_t *frame, uint32_t tc_flow_label, uint8_t hop_limit,
		uint16_t sport, uint16_t dport, uint16_t udp_len)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)frame;
	struct rte_ipv6_hdr *ip6 = (struct rte_ipv6_hdr *)(eth + 1);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip6 + 1);

	memcpy(&eth->dst_addr, s->dst_mac, 6);
	memcpy(&eth->src_addr, s->src_mac, 6);
	eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV6);
	ip6->vtc_flow = rte_cpu_to_be_32(6u << 28 | tc_flow_label);
	ip6->payload_len = rte_cpu_to_be_16(udp_len);
	ip6->proto = IPPROTO_UDP;
	ip6->hop_limits = hop_limit;
	memcpy(&ip6->src_addr, s->local, 16);
	memcpy(&ip6->dst_addr, s->peer, 16);
	udp->src_port = rte_cpu_to_be_16(sport);
	udp->dst_port = rte_cpu_to_be_16(dport);
	udp->dgram_len = rte_cpu_to_be_16(udp_len);
	udp->dgram_cksum = 0;
}

/* The frame of_bfd_build makes: with the Authentication Section or without */
static uint32_t
plain_len(const struct of_bfd_session *s)
{
	return s->auth.type != OF_BFD_AUTH_NONE ? OF_BFD_AUTH_FRAME_LEN : OF_BFD_FRAME_LEN;
}

uint32_t
of_bfd_frame_len(const struct of_bfd_session *s)
{
	return (s->geneve ? OF_BFD_GENEVE_LEN : 0) + plain_len(s);
}

uint32_t
of_bfd_build(struct of_bfd_session *s, uint8_t *frame, uint32_t room, int final)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)frame;
	struct rte_ipv6_hdr *ip6 = (struct rte_ipv6_hdr *)(eth + 1);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip6 + 1);
	struct of_bfd_ctrl *c = (struct of_bfd_ctrl *)(udp + 1);
	struct of_bfd_auth_sha1 *a = (struct of_bfd_auth_sha1 *)(c + 1);
	const int auth = s->auth.type != OF_BFD_AUTH_NONE;
	const uint8_t ctrl_len = sizeof(*c) + (auth ? sizeof(*a) : 0);
	const uint32_t len = OF_BFD_FRAME_LEN - sizeof(*c) + ctrl_len;
	uint8_t flags = (final ? OF_BFD_FLAG_FINAL : s->poll ? OF_BFD_FLAG_POLL : 0) | (auth ? OF_BFD_FLAG_AUTH : 0);

	if (room < len)
		return 0;
	put_eth_ip6_udp(s, frame, (uint32_t)OF_BFD_TRAFFIC_CLASS << 20, OF_BFD_HOP_LIMIT, s->sport,
			s->multihop ? OF_BFD_MULTI_HOP_PORT : OF_BFD_SINGLE_HOP_PORT, sizeof(*udp) + ctrl_len);
	c->vers_diag = (uint8_t)(OF_BFD_VERSION << 5 | (s->diag & 0x1f));
	c->state_flags = (uint8_t)(s->state << 6 | flags);
	c->detect_mult = s->cfg_mult;
	c->length = ctrl_len;
	c->my_disc = rte_cpu_to_be_32(s->local_disc);
	c->your_disc = rte_cpu_to_be_32(s->remote_disc);
	c->desired_min_tx = rte_cpu_to_be_32(s->desired_tx_us);
	c->required_min_rx = rte_cpu_to_be_32(s->required_rx_us);
	c->required_min_echo_rx = 0;	/* no echo function */
	if (auth) {
		a->type = s->auth.type;
		a->len = sizeof(*a);
		a->key_id = s->auth.key_id;
		a->reserved = 0;
		a->seq = rte_cpu_to_be_32(s->xmit_auth_seq++);
		sha1_digest(&s->auth, (uint8_t *)c, ctrl_len, NULL);
	}
	udp->dgram_cksum = rte_ipv6_udptcp_cksum(ip6, udp);	/* a zero sum sent as all ones */
	return len;
}

uint32_t
of_bfd_build_geneve(struct of_bfd_session *s, uint8_t *frame, uint32_t room, int final)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)frame;
	struct rte_ipv6_hdr *ip6 = (struct rte_ipv6_hdr *)(eth + 1);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip6 + 1);
	struct of_geneve_hdr *gnv = (struct of_geneve_hdr *)(udp + 1);
	uint8_t *inner = (uint8_t *)(gnv + 1);
	const uint32_t len = OF_BFD_GENEVE_LEN + plain_len(s);
	const uint16_t udp_len = (uint16_t)(sizeof(*udp) + sizeof(*gnv) + plain_len(s));

	if (room < len)
		return 0;
	of_bfd_build(s, inner, plain_len(s), final);
	memcpy(inner, s->tunnel.inner_dst_mac, 6);
	/* traffic class 0 and the flow label the data plane's frames carry */
	put_eth_ip6_udp(s, frame, s->tunnel.flow_label & 0xfffff, s->tunnel.hop_limit, s->tunnel.sport,
			OF_GENEVE_PORT, udp_len);
	gnv->ver_opt_len = 0;
	gnv->flags = 0;
	gnv->protocol = RTE_BE16(OF_GENEVE_PROTO_ETHER);
	gnv->vni[0] = (uint8_t)(s->tunnel.vni >> 16);
	gnv->vni[1] = (uint8_t)(s->tunnel.vni >> 8);
	gnv->vni[2] = (uint8_t)s->tunnel.vni;
	gnv->reserved = 0;
	if (s->tunnel.udp_checksum)
		udp->dgram_cksum = rte_ipv6_udptcp_cksum(ip6, udp);
	return len;
}
