/*
 * The BFD thread: one pthread per data plane, never a worker, runs every
 * session (bfd.h) on its own clock.
 *
 * Workers only classify: an uplink frame that is not Geneve and is BFD for
 * our addresses is copied (86 bytes, 114 authenticated) to a multi-producer ring of frames
 * (full: counted drop) and freed by the worker. So is the inner frame of a
 * Geneve packet that no guest port takes and that is multi-hop BFD to the
 * underlay address: a TEP's answer to a session sent through the tunnel.
 * The BFD thread allocates what it sends from a pool of its own and frees
 * nothing of the workers':
 * a DPDK ring or mempool operation waits for another thread's unfinished
 * one, and a SCHED_FIFO thread waiting on a preempted worker of the same
 * CPU waits until RT throttling lets the worker run (hundreds of ms seen). The thread sleeps until the next deadline of any session
 * (a periodic packet, a detection time) or 1 ms, whichever is first, with
 * pthread_cond_timedwait on CLOCK_MONOTONIC with an absolute time (as
 * clock_nanosleep TIMER_ABSTIME, and the control thread can wake it when the
 * sessions change). Each wake-up drains the ring first, so a packet that
 * arrived is always counted before a detection time is judged, then expires
 * and sends. It sends on a TX queue of its own on each uplink (port.c gives
 * uplinks one more than the workers use), so it shares no queue and no lock
 * with a worker. net_tap cannot have that queue (it wants as many RX queues
 * as TX queues): for such an uplink the frame goes on a ring that worker 0
 * empties into its own queue in its next loop iteration, microseconds later.
 * It asks for SCHED_FIFO, so a busy CPU does not delay it;
 * without the privilege it runs as SCHED_OTHER and says so in its stats.
 * State changes are signalled on an eventfd; the control plane reads the
 * sessions and marks nexthops and TEPs down (opte_fast/controlplane/bfd.py).
 */
#define _GNU_SOURCE	/* pthread_setname_np */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <rte_ethdev.h>
#include <rte_malloc.h>
#include <rte_ring.h>

#include "bfd.h"
#include "bfd_api.h"
#include "bfd_io.h"
#include "clock.h"
#include "counters.h"
#include "dp.h"
#include "error.h"
#include "gateway.h"
#include "lcore.h"
#include "tx.h"
#include "ndp.h"
#include "wire.h"

#define RX_RING_SIZE	1024
#define POOL_SIZE	1023
#define FRAME_ROOM	128	/* a BFD frame with a tag and the longest authentication section is 118 */
#define TX_ROOM		(OF_OUTER_HDR_LEN + FRAME_ROOM)	/* what the thread sends: the frame, maybe in Geneve */

/* A received frame as workers pass it: a copy, so the BFD thread never frees into the workers' pool. */
struct bfd_frame {
	uint16_t port;
	uint16_t len;
	uint8_t geneve;			/* the inner frame of a Geneve packet */
	uint8_t pad[3];			/* ring elements are multiples of 4 bytes */
	uint8_t data[FRAME_ROOM];
};
#define RX_BURST	32
#define RX_POLL_NS	1000000ull	/* the ring is drained at least this often */
#define LATE_NS		1000000ull

struct bfd_slot {
	uint8_t in_use;
	uint16_t order;			/* position in the last of_dp_bfd_set */
	struct of_bfd_session s;
};

struct of_bfd {
	struct rte_ring *rx;		/* struct bfd_frame from the workers (MP/SC) */
	struct rte_ring *tx;		/* mbufs to worker 0, for uplinks without a BFD TX queue (SP/SC) */
	struct rte_mempool *pool;	/* the BFD thread's mbufs: it is this pool's only getter */
	int event_fd;
	/* Per port, read by workers: single-hop BFD speaks from link_local on it. */
	struct {
		uint8_t single_hop;
		uint8_t link_local[16];
	} port[OF_MAX_PORTS];
	uint32_t n_sessions;		/* read by workers: no session, no frame taken */
	uint32_t n_geneve;		/* read by workers: sessions through the tunnel */

	pthread_mutex_t lock;		/* sessions and stats; the thread holds it while awake */
	pthread_cond_t wake;
	pthread_t thread;
	int started;
	int stopping;
	struct bfd_slot slot[OF_BFD_MAX_SESSIONS];
	struct of_bfd_stats stats;
	uint64_t rng;
};

static uint32_t
next_random(struct of_bfd *b)
{
	/* xorshift64*: jitter and discriminators need spread, not secrecy */
	b->rng ^= b->rng >> 12;
	b->rng ^= b->rng << 25;
	b->rng ^= b->rng >> 27;
	return (uint32_t)((b->rng * 0x2545F4914F6CDD1Dull) >> 32);
}

int
of_bfd_create(struct of_dp *dp)
{
	char name[RTE_RING_NAMESIZE];
	struct of_bfd *b = rte_zmalloc("of_bfd", sizeof(*b), RTE_CACHE_LINE_SIZE);
	pthread_condattr_t attr;
	pthread_mutexattr_t mattr;

	if (b == NULL) {
		of_set_error("out of memory for BFD state");
		return -ENOMEM;
	}
	b->event_fd = -1;
	dp->bfd = b;
	snprintf(name, sizeof(name), "of%u_bfd", dp->instance);
	b->rx = rte_ring_create_elem(name, sizeof(struct bfd_frame), RX_RING_SIZE, SOCKET_ID_ANY, RING_F_SC_DEQ);
	snprintf(name, sizeof(name), "of%u_bfd_tx", dp->instance);
	b->tx = rte_ring_create(name, RX_RING_SIZE, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	snprintf(name, sizeof(name), "of%u_bfd_pool", dp->instance);
	b->pool = rte_pktmbuf_pool_create(name, POOL_SIZE, 0, 0, RTE_PKTMBUF_HEADROOM + TX_ROOM, SOCKET_ID_ANY);
	b->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->rx == NULL || b->tx == NULL || b->pool == NULL || b->event_fd < 0) {
		of_set_error("cannot create BFD's ring or eventfd");
		return -ENOMEM;
	}
	if (getrandom(&b->rng, sizeof(b->rng), 0) != sizeof(b->rng) || b->rng == 0)
		b->rng = of_monotonic_ns() | 1;
	/* The BFD thread runs SCHED_FIFO and the control thread does not: a control thread preempted while
	 * it holds the lock would hold the BFD thread up, for as long as a busy machine leaves it waiting
	 * (100 ms seen under a load of 15 on two CPUs). Priority inheritance lends it the BFD thread's
	 * priority until it lets go. */
	pthread_mutexattr_init(&mattr);
	pthread_mutexattr_setprotocol(&mattr, PTHREAD_PRIO_INHERIT);
	pthread_mutex_init(&b->lock, &mattr);
	pthread_mutexattr_destroy(&mattr);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&b->wake, &attr);
	pthread_condattr_destroy(&attr);
	return 0;
}

static void
drain(struct rte_ring *r)
{
	struct rte_mbuf *m;

	while (r != NULL && rte_ring_dequeue(r, (void **)&m) == 0)
		rte_pktmbuf_free(m);
}

void
of_bfd_destroy(struct of_dp *dp)
{
	struct of_bfd *b = dp->bfd;

	if (b == NULL)
		return;
	drain(b->tx);
	rte_ring_free(b->rx);
	rte_ring_free(b->tx);
	rte_mempool_free(b->pool);
	if (b->rx != NULL && b->tx != NULL && b->pool != NULL && b->event_fd >= 0) {
		pthread_mutex_destroy(&b->lock);
		pthread_cond_destroy(&b->wake);
	}
	if (b->event_fd >= 0)
		close(b->event_fd);
	rte_free(b);
	dp->bfd = NULL;
}

/* --- the workers' side --------------------------------------------------------------------- */

/* A copy of the frame for the BFD thread's ring (full: a counted drop); the mbuf is the worker's to free. */
static void
to_thread(struct of_bfd *b, struct of_lcore *lc, uint16_t port, uint8_t geneve, struct rte_mbuf *m)
{
	uint32_t len = rte_pktmbuf_data_len(m);
	struct bfd_frame f = { .port = port, .len = (uint16_t)RTE_MIN(len, (uint32_t)FRAME_ROOM), .geneve = geneve };

	memcpy(f.data, rte_pktmbuf_mtod(m, uint8_t *), f.len);
	if (rte_ring_enqueue_elem(b->rx, &f, sizeof(f)) != 0) {
		of_drop(lc, OF_C_BFD_RING_FULL, m);
	} else {
		of_count(lc, OF_C_BFD_RX);
		rte_pktmbuf_free(m);
	}
}

int
of_bfd_input_geneve(struct of_dp *dp, struct of_lcore *lc, uint16_t port, struct rte_mbuf *m)
{
	struct of_bfd *b = dp->bfd;

	if (__atomic_load_n(&b->n_geneve, __ATOMIC_RELAXED) == 0 ||
	    of_bfd_classify(rte_pktmbuf_mtod(m, const uint8_t *), rte_pktmbuf_data_len(m), NULL,
			    dp->cfg.underlay_addr) != OF_BFD_MULTI_HOP)
		return 0;
	to_thread(b, lc, port, 1, m);
	return 1;
}

int
of_bfd_input(struct of_dp *dp, struct of_lcore *lc, uint16_t port, struct rte_mbuf *m)
{
	struct of_bfd *b = dp->bfd;
	const uint8_t *ll = b->port[port].single_hop ? b->port[port].link_local : NULL;
	uint8_t *data = rte_pktmbuf_mtod(m, uint8_t *);
	uint32_t len = rte_pktmbuf_data_len(m);

	if (__atomic_load_n(&b->n_sessions, __ATOMIC_RELAXED) == 0 || !rte_pktmbuf_is_contiguous(m))
		return 0;
	if (of_bfd_classify(data, len, ll, dp->cfg.underlay_addr) != OF_BFD_NOT_BFD) {
		to_thread(b, lc, port, 0, m);
		return 1;
	}
	/* The switch resolves the address we speak single-hop BFD from before it answers. */
	if (ll != NULL && of_ndp_is_solicit_for(data, len, ll)) {
		uint32_t n = of_ndp_build_advert(data, len, len + rte_pktmbuf_tailroom(m),
						 dp->ports[port].mac.addr_bytes, ll);

		if (n != 0) {
			m->data_len = (uint16_t)n;
			m->pkt_len = n;
			of_count(lc, OF_C_NDP_REPLIES);
			of_tx_enqueue(dp, lc, port, m);
			return 1;
		}
	}
	return 0;
}

void
of_bfd_worker_tx(struct of_dp *dp, struct of_lcore *lc)
{
	struct rte_mbuf *pkts[RX_BURST];
	unsigned n = rte_ring_dequeue_burst(dp->bfd->tx, (void **)pkts, RX_BURST, NULL);

	for (unsigned i = 0; i < n; i++)
		of_tx_enqueue(dp, lc, (uint16_t)pkts[i]->hash.usr, pkts[i]);
}

/* --- the thread ---------------------------------------------------------------------------- */

static void
send_packet(struct of_dp *dp, struct of_bfd_session *s, int final)
{
	struct of_bfd *b = dp->bfd;
	const struct of_port *p = &dp->ports[s->uplink];
	struct rte_mbuf *m = rte_pktmbuf_alloc(b->pool);
	uint16_t len = (uint16_t)of_bfd_frame_len(s);
	uint8_t *frame;

	if (m == NULL || (frame = (uint8_t *)rte_pktmbuf_append(m, len)) == NULL) {
		rte_pktmbuf_free(m);
		b->stats.tx_failed++;
		return;
	}
	if (s->geneve)
		of_bfd_build_geneve(s, frame, len, final);
	else
		of_bfd_build(s, frame, len, final);
	m->hash.usr = s->uplink;
	/* the queue past the workers' (port.c), or worker 0's in its next iteration */
	if (p->bfd_txq ? rte_eth_tx_burst(p->port_id, (uint16_t)dp->n_workers, &m, 1) != 1
		       : rte_ring_enqueue(b->tx, m) != 0) {
		rte_pktmbuf_free(m);
		b->stats.tx_failed++;
		return;
	}
	b->stats.tx_packets++;
	s->tx_packets++;
}

static void
changed(struct of_bfd *b)
{
	b->stats.state_changes++;
	eventfd_write(b->event_fd, 1);
}

static struct of_bfd_session *
find_session(struct of_bfd *b, const struct of_bfd_rx *rx, uint16_t port)
{
	for (unsigned i = 0; i < OF_BFD_MAX_SESSIONS; i++) {
		struct of_bfd_session *s = &b->slot[i].s;

		if (!b->slot[i].in_use || s->multihop != (rx->kind == OF_BFD_MULTI_HOP) || s->geneve != rx->geneve ||
		    memcmp(s->peer, rx->src, 16) != 0 || (!s->multihop && s->uplink != port))
			continue;
		/* 6.8.6: by Your Discriminator when the peer knows it */
		if (rx->your_disc == 0 || rx->your_disc == s->local_disc)
			return s;
	}
	return NULL;
}

static void
receive(struct of_dp *dp, const struct bfd_frame *f, uint64_t now)
{
	struct of_bfd *b = dp->bfd;
	uint64_t *error_count[OF_BFD_RX_N_ERRORS] = {
		[OF_BFD_RX_MALFORMED] = &b->stats.rx_malformed,
		[OF_BFD_RX_BAD_CHECKSUM] = &b->stats.rx_bad_checksum,
		[OF_BFD_RX_BAD_HOP_LIMIT] = &b->stats.rx_bad_hop_limit,
		[OF_BFD_RX_INVALID] = &b->stats.rx_invalid,
		[OF_BFD_RX_AUTH_MISSING] = &b->stats.rx_auth_missing,
		[OF_BFD_RX_AUTH_UNEXPECTED] = &b->stats.rx_auth_unexpected,
		[OF_BFD_RX_AUTH_BAD_TYPE] = &b->stats.rx_auth_bad_type,
		[OF_BFD_RX_AUTH_BAD_KEY_ID] = &b->stats.rx_auth_bad_key_id,
		[OF_BFD_RX_AUTH_BAD_SEQ] = &b->stats.rx_auth_bad_seq,
		[OF_BFD_RX_AUTH_BAD_DIGEST] = &b->stats.rx_auth_bad_digest,
	};
	struct of_bfd_session *s;
	struct of_bfd_rx rx;
	enum of_bfd_rx_error rc;

	b->stats.rx_packets++;
	b->stats.rx_geneve_packets += f->geneve;
	rc = of_bfd_parse(f->data, f->len, &rx);
	rx.geneve = f->geneve;
	if (rc != OF_BFD_RX_OK) {
		(*error_count[rc])++;
		return;
	}
	s = find_session(b, &rx, f->port);
	if (s == NULL) {
		b->stats.rx_no_session++;
		return;
	}
	rc = of_bfd_session_auth(s, &rx, now);
	if (rc != OF_BFD_RX_OK) {
		(*error_count[rc])++;
		return;
	}
	if (of_bfd_session_rx(s, &rx, now))
		changed(b);
	if (s->final_due) {
		s->final_due = 0;
		send_packet(dp, s, 1);
	}
}

/* One pass: the ring, then every session's timers. The next deadline. */
static uint64_t
run_once(struct of_dp *dp, uint64_t now)
{
	struct of_bfd *b = dp->bfd;
	struct bfd_frame frames[RX_BURST];
	uint64_t next = UINT64_MAX;
	unsigned n;

	while ((n = rte_ring_dequeue_burst_elem(b->rx, frames, sizeof(frames[0]), RX_BURST, NULL)) != 0)
		for (unsigned i = 0; i < n; i++)
			receive(dp, &frames[i], now);
	for (unsigned i = 0; i < OF_BFD_MAX_SESSIONS; i++) {
		struct of_bfd_session *s = &b->slot[i].s;

		if (!b->slot[i].in_use)
			continue;
		if (of_bfd_session_expire(s, now))
			changed(b);
		/* 6.8.7: nothing periodic to a peer that asked for no packets */
		if (s->next_tx_ns <= now && s->remote_min_rx_us != 0) {
			send_packet(dp, s, 0);
			of_bfd_session_sent(s, now, next_random(b));
		}
		next = RTE_MIN(next, s->next_tx_ns);
		if (s->detect_ns != 0)
			next = RTE_MIN(next, s->detect_ns);
	}
	return next;
}

static void *
bfd_main(void *arg)
{
	struct of_dp *dp = arg;
	struct of_bfd *b = dp->bfd;
	uint64_t deadline = 0;

	pthread_mutex_lock(&b->lock);
	while (!b->stopping) {
		uint64_t now = of_monotonic_ns(), next;
		struct timespec ts;

		b->stats.wakeups++;
		if (deadline != 0 && now > deadline) {
			b->stats.late_max_ns = RTE_MAX(b->stats.late_max_ns, now - deadline);
			b->stats.late_over_1ms += now - deadline > LATE_NS;
		}
		next = run_once(dp, now);
		if (b->n_sessions == 0) {
			deadline = 0;
			pthread_cond_wait(&b->wake, &b->lock);
			continue;
		}
		/* a deadline in the past (sending took long) is a wake-up at once, not a late one */
		deadline = RTE_MAX(RTE_MIN(next, now + RX_POLL_NS), of_monotonic_ns());
		ts.tv_sec = (time_t)(deadline / 1000000000u);
		ts.tv_nsec = (long)(deadline % 1000000000u);
		pthread_cond_timedwait(&b->wake, &b->lock, &ts);
	}
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

int
of_bfd_start(struct of_dp *dp)
{
	struct of_bfd *b = dp->bfd;
	struct sched_param param = { .sched_priority = 1 };
	int rc;

	b->stopping = 0;
	dp->bfd_via_worker = 0;
	for (uint16_t i = 0; i < dp->n_ports; i++)
		dp->bfd_via_worker |= dp->ports[i].role == OF_ROLE_UPLINK && !dp->ports[i].bfd_txq;
	rc = pthread_create(&b->thread, NULL, bfd_main, dp);
	if (rc != 0) {
		of_set_error("cannot start the BFD thread: %s", strerror(rc));
		return -rc;
	}
	pthread_setname_np(b->thread, "opte-fast-bfd");
	b->stats.realtime = pthread_setschedparam(b->thread, SCHED_FIFO, &param) == 0;
	b->stats.running = 1;
	b->started = 1;
	return 0;
}

void
of_bfd_stop(struct of_dp *dp)
{
	struct of_bfd *b = dp->bfd;

	if (b == NULL || !b->started)
		return;
	pthread_mutex_lock(&b->lock);
	b->stopping = 1;
	pthread_cond_signal(&b->wake);
	pthread_mutex_unlock(&b->lock);
	pthread_join(b->thread, NULL);
	b->started = 0;
	b->stats.running = 0;
	drain(b->tx);
}

/* --- the control thread's side ------------------------------------------------------------- */

int
of_dp_bfd_port_ready(const struct of_dp *dp, uint16_t port)
{
	return port < dp->n_ports && dp->ports[port].bfd_txq;
}

static int
same_key(const struct of_bfd_session *s, const struct of_bfd_peer *p)
{
	return s->multihop == p->multihop && s->geneve == p->geneve && memcmp(s->peer, p->peer, 16) == 0 &&
	       (p->multihop || s->uplink == p->uplink);
}

static int
check_peers(const struct of_dp *dp, const struct of_bfd_peer *peers, unsigned n)
{
	if (n > OF_BFD_MAX_SESSIONS) {
		of_set_error("at most %d BFD sessions, %u asked for", OF_BFD_MAX_SESSIONS, n);
		return -EINVAL;
	}
	for (unsigned i = 0; i < n; i++) {
		const struct of_bfd_peer *p = &peers[i];

		if (p->uplink >= dp->n_ports || dp->ports[p->uplink].role != OF_ROLE_UPLINK) {
			of_set_error("BFD session %u: port %u is not an uplink", i, p->uplink);
			return -EINVAL;
		}
		if (p->desired_min_tx_us < OF_BFD_MIN_INTERVAL_US || p->required_min_rx_us < OF_BFD_MIN_INTERVAL_US ||
		    p->detect_mult == 0) {
			of_set_error("BFD session %u: intervals of at least %d us and a multiplier of at least 1",
				     i, OF_BFD_MIN_INTERVAL_US);
			return -EINVAL;
		}
		if ((p->auth_type != OF_BFD_AUTH_NONE && p->auth_type != OF_BFD_AUTH_KEYED_SHA1 &&
		     p->auth_type != OF_BFD_AUTH_METICULOUS_KEYED_SHA1) ||
		    (p->auth_type != OF_BFD_AUTH_NONE && (p->auth_key_len == 0 || p->auth_key_len > OF_BFD_SHA1_KEY_MAX))) {
			of_set_error("BFD session %u: authentication none, keyed SHA1 (4) or meticulous keyed SHA1 (5), "
				     "with a key of 1 to %d bytes", i, OF_BFD_SHA1_KEY_MAX);
			return -EINVAL;
		}
		if (p->geneve && (!p->multihop || p->vni > 0xffffff)) {
			of_set_error("BFD session %u: through Geneve only multi-hop, with a VNI below 2^24", i);
			return -EINVAL;
		}
		for (unsigned j = 0; j < i; j++)
			if (peers[j].multihop == p->multihop && memcmp(peers[j].peer, p->peer, 16) == 0 &&
			    (p->multihop || peers[j].uplink == p->uplink)) {
				of_set_error("BFD session %u duplicates session %u", i, j);
				return -EINVAL;
			}
	}
	return 0;
}

static uint32_t
new_discriminator(struct of_bfd *b)
{
	for (;;) {
		uint32_t d = next_random(b);
		unsigned i;

		for (i = 0; i < OF_BFD_MAX_SESSIONS; i++)
			if (b->slot[i].in_use && b->slot[i].s.local_disc == d)
				break;
		if (d != 0 && i == OF_BFD_MAX_SESSIONS)
			return d;
	}
}

/* The outer headers of a session through Geneve, as outbound.c builds them for a guest's flow to the TEP: the
 * entropy (UDP source port, flow label) is the session's own, a fixed point in the data plane's range. */
static void
set_tunnel(const struct of_dp *dp, struct of_bfd_session *s, uint32_t vni)
{
	static const uint8_t boundary_services_mac[6] = OF_BOUNDARY_MAC_INIT;
	const struct of_dp_config *cfg = &dp->cfg;
	uint32_t range = (uint32_t)cfg->udp_sport_max - cfg->udp_sport_min + 1;
	uint32_t entropy = (uint32_t)s->sport - OF_BFD_SPORT_MIN;

	s->tunnel.vni = vni;
	s->tunnel.sport = (uint16_t)(cfg->udp_sport_min + entropy % range);
	s->tunnel.flow_label = cfg->flow_label ? (entropy * 2654435761u) >> 12 : 0;
	s->tunnel.hop_limit = cfg->hop_limit;
	s->tunnel.udp_checksum = cfg->udp_checksum;
	memcpy(s->tunnel.inner_dst_mac, boundary_services_mac, 6);
}

/* A session's authentication as asked for; a key changes at once (6.7.1), the sequence numbers go on. */
static void
set_auth(struct of_bfd_session *s, const struct of_bfd_peer *p)
{
	memset(&s->auth, 0, sizeof(s->auth));
	s->auth.type = p->auth_type;
	if (p->auth_type == OF_BFD_AUTH_NONE)
		return;
	s->auth.key_id = p->auth_key_id;
	s->auth.key_len = p->auth_key_len;
	memcpy(s->auth.key, p->auth_key, p->auth_key_len);
}

/* The path of a session: where it is sent from and to. */
static void
set_path(struct of_dp *dp, struct of_bfd_session *s, const struct of_bfd_peer *p)
{
	const struct of_port *uplink = &dp->ports[p->uplink];

	s->uplink = p->uplink;
	memcpy(s->dst_mac, p->dst_mac, 6);
	memcpy(s->src_mac, uplink->mac.addr_bytes, 6);
	if (p->multihop)
		memcpy(s->local, dp->cfg.underlay_addr, 16);
	else
		of_link_local_of(uplink->mac.addr_bytes, s->local);
	if (s->geneve)
		set_tunnel(dp, s, p->vni);
}

int
of_dp_bfd_set(struct of_dp *dp, const struct of_bfd_peer *peers, unsigned n)
{
	struct of_bfd *b = dp->bfd;
	uint8_t wanted[OF_BFD_MAX_SESSIONS] = { 0 };
	uint32_t n_geneve = 0;
	uint64_t now = of_monotonic_ns();
	int rc = check_peers(dp, peers, n);

	if (rc != 0)
		return rc;
	pthread_mutex_lock(&b->lock);
	for (unsigned i = 0; i < n; i++) {
		const struct of_bfd_peer *p = &peers[i];
		struct bfd_slot *slot = NULL;

		for (unsigned k = 0; k < OF_BFD_MAX_SESSIONS && slot == NULL; k++)
			if (b->slot[k].in_use && !wanted[k] && same_key(&b->slot[k].s, p))
				slot = &b->slot[k];
		if (slot == NULL) {	/* a new one, in the first free slot (one is: n <= the maximum) */
			unsigned k = 0;

			while (b->slot[k].in_use || wanted[k])
				k++;
			slot = &b->slot[k];
			memset(slot, 0, sizeof(*slot));
			slot->s.multihop = p->multihop;
			slot->s.geneve = p->geneve;
			memcpy(slot->s.peer, p->peer, 16);
			slot->s.sport = (uint16_t)(OF_BFD_SPORT_MIN + k);
			slot->s.cfg_tx_us = p->desired_min_tx_us;
			slot->s.cfg_rx_us = p->required_min_rx_us;
			slot->s.cfg_mult = p->detect_mult;
			set_path(dp, &slot->s, p);
			set_auth(&slot->s, p);
			of_bfd_session_init(&slot->s, new_discriminator(b), next_random(b), now);
		} else {
			set_path(dp, &slot->s, p);
			set_auth(&slot->s, p);
			of_bfd_session_configure(&slot->s, p->desired_min_tx_us, p->required_min_rx_us, p->detect_mult,
						 now);
		}
		wanted[slot - b->slot] = 1;
		slot->order = (uint16_t)i;
		n_geneve += p->geneve;
	}
	for (unsigned k = 0; k < OF_BFD_MAX_SESSIONS; k++)
		if (b->slot[k].in_use && !wanted[k]) {
			/* tell the peer it was us, not the path (6.8.16) */
			b->slot[k].s.state = OF_BFD_ADMIN_DOWN;
			b->slot[k].s.diag = OF_BFD_DIAG_ADMIN_DOWN;
			if (b->started)
				send_packet(dp, &b->slot[k].s, 0);
		}
	for (unsigned k = 0; k < OF_BFD_MAX_SESSIONS; k++)
		b->slot[k].in_use = wanted[k];
	for (uint16_t port = 0; port < dp->n_ports; port++) {
		int single_hop = 0;

		for (unsigned i = 0; i < n; i++)
			single_hop |= !peers[i].multihop && peers[i].uplink == port;
		of_link_local_of(dp->ports[port].mac.addr_bytes, b->port[port].link_local);
		__atomic_store_n(&b->port[port].single_hop, (uint8_t)single_hop, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&b->n_geneve, n_geneve, __ATOMIC_RELEASE);
	__atomic_store_n(&b->n_sessions, n, __ATOMIC_RELEASE);
	pthread_cond_signal(&b->wake);
	pthread_mutex_unlock(&b->lock);
	return 0;
}

unsigned
of_dp_bfd_sessions(struct of_dp *dp, struct of_bfd_info *out, unsigned max)
{
	struct of_bfd *b = dp->bfd;
	unsigned n = 0;

	pthread_mutex_lock(&b->lock);
	for (unsigned k = 0; k < OF_BFD_MAX_SESSIONS; k++) {
		const struct of_bfd_session *s = &b->slot[k].s;
		struct of_bfd_info *f;
		unsigned at = b->slot[k].order;

		if (!b->slot[k].in_use || at >= max)
			continue;
		f = &out[at];
		memset(f, 0, sizeof(*f));
		f->multihop = s->multihop;
		f->geneve = s->geneve;
		f->vni = s->tunnel.vni;
		memcpy(f->peer, s->peer, 16);
		memcpy(f->local, s->local, 16);
		f->uplink = s->uplink;
		f->state = s->state;
		f->remote_state = s->remote_state;
		f->diag = s->diag;
		f->remote_diag = s->remote_diag;
		f->been_up = s->been_up;
		f->poll = s->poll;
		f->detect_mult = s->cfg_mult;
		f->remote_mult = s->remote_mult;
		f->local_disc = s->local_disc;
		f->remote_disc = s->remote_disc;
		f->desired_min_tx_us = s->desired_tx_us;
		f->required_min_rx_us = s->required_rx_us;
		f->remote_min_tx_us = s->remote_min_tx_us;
		f->remote_min_rx_us = s->remote_min_rx_us;
		f->tx_interval_us = of_bfd_session_tx_interval_us(s);
		f->detect_us = of_bfd_session_detect_us(s);
		f->changed_ns = s->changed_ns;
		f->rx_packets = s->rx_packets;
		f->tx_packets = s->tx_packets;
		f->ups = s->ups;
		f->downs = s->downs;
		f->auth_type = s->auth.type;
		f->auth_key_id = s->auth.key_id;
		n = RTE_MAX(n, at + 1);
	}
	pthread_mutex_unlock(&b->lock);
	return n;
}

void
of_dp_bfd_stats(struct of_dp *dp, struct of_bfd_stats *out)
{
	pthread_mutex_lock(&dp->bfd->lock);
	*out = dp->bfd->stats;
	pthread_mutex_unlock(&dp->bfd->lock);
}

int
of_dp_bfd_event_fd(const struct of_dp *dp)
{
	return dp->bfd->event_fd;
}
