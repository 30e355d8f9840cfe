/*
 * Outbound: guest frame -> flow -> path -> Geneve/IPv6 -> uplink.
 *
 * Per burst: parse and hash every frame, one bulk flow-table lookup, then
 * per packet a check of the pinned path (the two members' generations and
 * the route epoch: three loads), a path resolution only on a miss, a dead
 * member, a routing change or an idle rebalance, and an encap that copies
 * its uplink's 70-byte header template and writes the flow's own fields
 * over it (nexthop MAC, destination, flow label, source port, VNI).
 */
#include <stddef.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_hash.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "chain.h"
#include "compat.h"
#include "dp.h"
#include "flow.h"
#include "gso.h"
#include "guest.h"
#include "mtu.h"
#include "outbound_mtu.h"
#include "handoff.h"
#include "lcore.h"
#include "outbound.h"
#include "parse.h"
#include "tables.h"
#include "trace.h"
#include "tx.h"
#include "wire.h"

#define PREFETCH_OFFSET 4		/* packets ahead whose data is prefetched */
#define ENTRY_PREFETCH_OFFSET 16		/* flow entries ahead: a table miss costs more than a packet */

static inline uint16_t
udp_source_port(const struct of_dp_config *cfg, uint32_t hash)
{
	uint32_t range = (uint32_t)cfg->udp_sport_max - cfg->udp_sport_min + 1;

	/* Multiply-shift maps the hash onto the range without a division. */
	return (uint16_t)(cfg->udp_sport_min + (((uint64_t)hash * range) >> 32));
}

/* The path's own part of the outer headers; the rest is its uplink's template (port.c). */
static void
set_outer(const struct of_dp *dp, const struct of_tables *t, struct of_path *p,
	  const uint8_t dst[16], uint32_t hash)
{
	const struct of_nexthop *nh = &t->nhs[p->nh];

	memcpy(p->dst, dst, 16);
	p->uplink = nh->uplink;
	memcpy(p->nh_mac, nh->mac, 6);
	p->udp_sport = udp_source_port(&dp->cfg, hash);
}

/* A TEP path's VNI (the union's other side is a V2P path's inner destination MAC). */
static inline uint32_t
path_vni(const struct of_path *p)
{
	return (uint32_t)p->vni[0] << 16 | (uint32_t)p->vni[1] << 8 | p->vni[2];
}

/* The live TEP of set r that `keep` is sent to (same address and VNI), or OF_NO_ID. */
static uint16_t
live_tep_of(const struct of_tables *t, const struct of_resilient *r, const struct of_path *keep)
{
	for (uint16_t i = 0; i < r->n_members; i++) {
		const struct of_tep *tep = &t->teps[r->members[i]];

		if (tep->vni == path_vni(keep) && memcmp(tep->addr, keep->dst, 16) == 0)
			return r->members[i];
	}
	return OF_NO_ID;
}

/* The live nexthop of group r that `keep` leaves through (same uplink and MAC), or OF_NO_ID. */
static uint16_t
live_nexthop_of(const struct of_tables *t, const struct of_resilient *r, const struct of_path *keep)
{
	for (uint16_t i = 0; i < r->n_members; i++) {
		const struct of_nexthop *nh = &t->nhs[r->members[i]];

		if (nh->uplink == keep->uplink && memcmp(nh->mac, keep->nh_mac, RTE_ETHER_ADDR_LEN) == 0)
			return r->members[i];
	}
	return OF_NO_ID;
}

/*
 * Resolve the path of a flow from the current tables; OF_OK or a drop reason.
 * With `keep` (the flow's live path, when only the routing changed), a TEP or
 * nexthop `keep` already uses stays chosen wherever it is a live member of the
 * new answer: a flow moves only when its answer changed, never to follow a
 * bucket that moved while it was busy. Members are then looked up by what
 * they are (address, uplink and MAC), as ids may stand for others after a
 * routing change.
 */
static int
resolve_path(const struct of_dp *dp, const struct of_tables *t, const struct of_flow_key *key,
	     uint32_t hash, const struct of_path *keep, struct of_path *p)
{
	struct of_v2p_key vk = { .vni = key->vni };
	const uint8_t *dst;
	uint32_t target;
	int32_t pos;

	memset(p, 0, sizeof(*p));	/* path_moved compares the union's unused bytes too */
	memcpy(vk.ip, key->dst, 16);
	pos = rte_hash_lookup(t->v2p->hash, &vk);
	if (pos >= 0) {
		/* A guest on another sled: straight to that sled, in the VPC's VNI. */
		dst = t->v2p->vals[pos].underlay;
		p->tep = 0;
		memcpy(p->inner_dst_mac, t->v2p->vals[pos].mac, 6);
	} else {
		if (of_prefix_match(t->v2b, key->dst, &target) != 0)
			return OF_C_NO_V2B_MATCH;
		p->tep = keep != NULL && keep->tep != 0 ? live_tep_of(t, t->tep_sets[target], keep) : OF_NO_ID;
		if (p->tep == OF_NO_ID)
			p->tep = of_resilient_pick(t->tep_sets[target], hash);
		if (p->tep == OF_NO_ID)
			return OF_C_NO_LIVE_TEP;
		dst = t->teps[p->tep].addr;
		p->vni[0] = (uint8_t)(t->teps[p->tep].vni >> 16);
		p->vni[1] = (uint8_t)(t->teps[p->tep].vni >> 8);
		p->vni[2] = (uint8_t)t->teps[p->tep].vni;
	}
	p->tep_gen = t->teps[p->tep].gen;

	if (of_prefix_match(t->routes, dst, &target) != 0)
		return OF_C_NO_ROUTE;
	p->nh = keep != NULL ? live_nexthop_of(t, t->nh_groups[target], keep) : OF_NO_ID;
	if (p->nh == OF_NO_ID)
		p->nh = of_resilient_pick(t->nh_groups[target], of_nexthop_hash(hash));
	if (p->nh == OF_NO_ID)
		return OF_C_NO_LIVE_NEXTHOP;
	p->nh_gen = t->nhs[p->nh].gen;
	p->route_epoch = t->route_epoch;
	set_outer(dp, t, p, dst, hash);
	return OF_OK;
}

static inline int
path_is_live(const struct of_tables *t, const struct of_path *p)
{
	return t->teps[p->tep].gen == p->tep_gen && t->nhs[p->nh].gen == p->nh_gen;
}

/* Whether two paths of one flow leave differently: another uplink, or any other byte of the headers
 * put in front of the guest's frame (nexthop MAC, TEP or peer sled, VNI, the peer guest's MAC). */
static inline int
path_moved(const struct of_path *a, const struct of_path *b)
{
	return a->uplink != b->uplink || (a->tep == 0) != (b->tep == 0) ||
	       memcmp(a->nh_mac, b->nh_mac, RTE_ETHER_ADDR_LEN) != 0 || memcmp(a->dst, b->dst, 16) != 0 ||
	       a->udp_sport != b->udp_sport || memcmp(a->inner_dst_mac, b->inner_dst_mac, RTE_ETHER_ADDR_LEN) != 0;
}

/* The flow takes `fresh`, and the per-member flow counts follow it. */
static inline void
path_repin(struct of_lcore *lc, struct of_flow_entry *e, const struct of_path *fresh)
{
	of_count_path_flows(lc, &e->path, -1);
	e->path = *fresh;
	of_count_path_flows(lc, &e->path, 1);
}

/*
 * The path for a packet of a known flow, re-pinned when
 *  - a member went down (migrated);
 *  - the routing changed and gives the flow another answer: a new, more
 *    specific V2B prefix, V2P entry or underlay route (rerouted). A flow whose
 *    answer is the same keeps its path, and only takes the new epoch;
 *  - under the idle policy, the flow was idle long enough that nothing of it
 *    can be in flight (rebalanced).
 * Moves are compared by where packets go, not by id: a replaced member may reuse the id of
 * the one it replaces (and inherit its buckets), and a member that went down and came back
 * before the flow's next packet may take the flow again. OF_OK or a drop reason.
 */
static __rte_noinline int
repin_path(struct of_dp *dp, struct of_lcore *lc, const struct of_tables *t, struct of_flow_entry *e)
{
	int live = path_is_live(t, &e->path);
	int route_changed = e->path.route_epoch != t->route_epoch;
	int idle = lc->now - e->last_tsc > dp->rebalance_tsc;
	struct of_path fresh;
	int rc;

	if (live && route_changed) {
		rc = resolve_path(dp, t, &e->key, e->hash, &e->path, &fresh);
		if (rc != OF_OK)
			return rc;
		if (path_moved(&fresh, &e->path)) {
			of_count(lc, OF_C_FLOWS_REROUTED);
			path_repin(lc, e, &fresh);
			return OF_OK;
		}
		path_repin(lc, e, &fresh);	/* same wire, perhaps other ids */
		if (!idle)
			return OF_OK;
	}
	rc = resolve_path(dp, t, &e->key, e->hash, NULL, &fresh);
	if (rc != OF_OK)
		return rc;
	if (path_moved(&fresh, &e->path))
		of_count(lc, live ? OF_C_FLOWS_REBALANCED : OF_C_FLOWS_MIGRATED);
	path_repin(lc, e, &fresh);
	return OF_OK;
}

/* The check every packet of a known flow pays, inlined; repin_path only when the path must change. */
static __rte_always_inline int
refresh_path(struct of_dp *dp, struct of_lcore *lc, const struct of_tables *t, struct of_flow_entry *e)
{
	if (likely(path_is_live(t, &e->path) && e->path.route_epoch == t->route_epoch &&
		   lc->now - e->last_tsc <= dp->rebalance_tsc))
		return OF_OK;
	return repin_path(dp, lc, t, e);
}

/* The line of a flow entry after the first, which the lookup read: the path and the flow's packet and
 * byte counts (see flow.h). */
static inline void
prefetch_entry(const struct of_flow_entry *e)
{
	if (e == NULL)
		return;
	rte_prefetch0((const uint8_t *)e + RTE_CACHE_LINE_SIZE);
}

/*
 * Inlined into both callers: out of line, its register saves cost a fifth of it. hash: the flow's
 * (the flow label); vni: the flow's, which a V2P path keeps. flow_label, udp_cksum: dp->cfg's, read
 * once a burst.
 */
static __rte_always_inline void
encap_and_send(struct of_dp *dp, struct of_lcore *lc, const struct of_path *p, uint32_t hash, uint32_t vni,
	       int flow_label, int udp_cksum, struct rte_mbuf *m)
{
	uint32_t inner_len = rte_pktmbuf_pkt_len(m);
	uint8_t *hdr = (uint8_t *)rte_pktmbuf_prepend(m, OF_OUTER_HDR_LEN);
	struct rte_ether_hdr *eth;
	struct rte_ipv6_hdr *ip6;
	struct rte_udp_hdr *udp;
	struct of_geneve_hdr *gnv;
	/* inner_len + 56 <= the underlay MTU <= OF_UNDERLAY_MTU_MAX: checked in outbound_burst */
	uint16_t udp_len = (uint16_t)(inner_len + sizeof(*udp) + sizeof(struct of_geneve_hdr));

	if (unlikely(hdr == NULL)) {
		of_drop(lc, OF_C_NO_HEADROOM, m);
		return;
	}
	/* A constant size: the compiler's inline copy, without rte_memcpy's alignment branch. */
	memcpy(hdr, dp->ports[p->uplink].outer, sizeof(dp->ports[p->uplink].outer));
	eth = (struct rte_ether_hdr *)hdr;
	ip6 = (struct rte_ipv6_hdr *)(eth + 1);
	udp = (struct rte_udp_hdr *)(ip6 + 1);
	gnv = (struct of_geneve_hdr *)(udp + 1);
	memcpy(&eth->dst_addr, p->nh_mac, RTE_ETHER_ADDR_LEN);
	if (flow_label)
		ip6->vtc_flow |= rte_cpu_to_be_32(hash & 0xFFFFF);
	memcpy(&ip6->dst_addr, p->dst, 16);
	udp->src_port = rte_cpu_to_be_16(p->udp_sport);
	if (p->tep == 0) {
		gnv->vni[0] = (uint8_t)(vni >> 16);
		gnv->vni[1] = (uint8_t)(vni >> 8);
		gnv->vni[2] = (uint8_t)vni;
		memcpy(hdr + OF_OUTER_HDR_LEN, p->inner_dst_mac, RTE_ETHER_ADDR_LEN);
	} else {
		/* The header's last four bytes: VNI and reserved. The template holds boundary services' MAC. */
		memcpy(hdr + OF_OUTER_HDR_LEN - sizeof(p->vni), p->vni, sizeof(p->vni));
	}
	ip6->payload_len = rte_cpu_to_be_16(udp_len);
	udp->dgram_len = ip6->payload_len;
	if (udp_cksum)
		udp->dgram_cksum = of_chain_l4_cksum(m, sizeof(*eth), sizeof(*eth) + sizeof(*ip6), udp_len, 1, IPPROTO_UDP);
	lc->tep[p->tep].packets++;
	lc->tep[p->tep].bytes += inner_len;
	lc->nh[p->nh].packets++;
	lc->nh[p->nh].bytes += inner_len;
	of_tx_enqueue(dp, lc, p->uplink, m);
}

/*
 * What the guest's gateway made of a frame, rc from of_guest_arp or
 * of_guest_service: its answer goes back out the guest port, a frame it keeps
 * without an answer is dropped. 1 if the gateway consumed the frame (either
 * way), 0 if the frame is none of its business (not ARP, not its IP services).
 */
static int
gateway_consumed(struct of_dp *dp, struct of_lcore *lc, uint16_t port, struct rte_mbuf *m,
		 int rc, uint32_t reply_len)
{
	if (rc == OF_OK || rc == OF_C_NOT_IP)
		return 0;
	if (!of_guest_answered(rc)) {
		of_drop(lc, (enum of_counter)rc, m);
		return 1;
	}
	m->data_len = (uint16_t)reply_len;
	m->pkt_len = reply_len;
	of_count(lc, (enum of_counter)rc);
	of_tx_enqueue(dp, lc, port, m);
	return 1;
}

/* Bytes an answer may use in place: none in a chained frame, whose first segment is not all of it. */
static inline uint32_t
gateway_room(const struct rte_mbuf *m)
{
	return rte_pktmbuf_is_contiguous(m) ? rte_pktmbuf_data_len(m) + rte_pktmbuf_tailroom(m) : 0;
}

/* What refresh_path did to a flow's path, read from the counters it moved (traced copy only). */
static inline enum of_trace_why
refresh_why(const struct of_lcore *lc, const uint64_t before[3])
{
	if (lc->counters[OF_C_FLOWS_MIGRATED] != before[0])
		return OF_TRACE_MIGRATED;
	if (lc->counters[OF_C_FLOWS_REBALANCED] != before[1])
		return OF_TRACE_REBALANCED;
	return lc->counters[OF_C_FLOWS_REROUTED] != before[2] ? OF_TRACE_REROUTED : OF_TRACE_PINNED;
}

/*
 * handed_off: frames another worker received, counted and hashed (handoff.h). traced: a
 * constant, so the plain copy has no trace code at all (trace.h). Inlined only into those two
 * copies, which both callers share.
 */
static __rte_always_inline void
outbound_burst(struct of_dp *dp, struct of_lcore *lc, const struct of_tables *t,
	       uint16_t port, struct rte_mbuf **pkts, uint16_t n, int handed_off, const int traced)
{
	const struct of_guest *guest = &t->guests[port];
	struct of_inner_meta meta[OF_MAX_BURST];
	const struct of_flow_key *keys[OF_MAX_BURST];
	uint32_t hashes[OF_MAX_BURST];
	struct of_flow_entry *entries[OF_MAX_BURST];
	struct rte_mbuf *ok[OF_MAX_BURST];
	uint16_t n_ok = 0;
	int removed = 0;	/* a flow was removed in this burst: entries[] may be stale */
	/* Read once a burst, anti-spoofing's as words: the packet loop's stores may alias any of them. */
	const uint32_t vni = guest->vni;
	const uint32_t underlay_mtu = dp->cfg.underlay_mtu;
	const int flow_label = dp->cfg.flow_label, udp_cksum = dp->cfg.udp_checksum;
	const uint64_t mac = of_mac_word(guest->mac);
	uint64_t src4 = 0;

	if (unlikely(!guest->valid)) {
		for (uint16_t i = 0; i < n; i++)
			of_drop(lc, OF_C_GUEST_UNCONFIGURED, pkts[i]);
		return;
	}
	/* The key's third word for an IPv4 source: ::ffff:a.b.c.d's last eight bytes. Without an IPv4
	 * address, 0, which no IPv4 key has. */
	if (guest->net.has_ipv4) {
		uint8_t b[8] = { 0, 0, 0xff, 0xff };

		memcpy(b + 4, guest->net.ipv4, 4);
		memcpy(&src4, b, sizeof(src4));
	}

	for (uint16_t i = 0; i < PREFETCH_OFFSET && i < n; i++)
		rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		struct of_inner_meta *mt = &meta[n_ok];
		uint8_t *data = rte_pktmbuf_mtod(m, uint8_t *);
		uint32_t len = rte_pktmbuf_data_len(m);
		uint32_t reply_len = 0;
		uint64_t w;
		int rc;

		if (i + PREFETCH_OFFSET < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + PREFETCH_OFFSET], void *));
		/* Anti-spoofing (guest.h) before anything else: no flow, no answer for another's MAC. */
		if (unlikely(len < RTE_ETHER_HDR_LEN)) {
			of_drop(lc, OF_C_PARSE_TRUNCATED, m);
			continue;
		}
		if (unlikely(!of_guest_mac_is(mac, data))) {
			of_drop(lc, OF_C_SPOOF_SRC_MAC, m);
			continue;
		}
		/* pkt_len: a chained frame's headers are in its first segment (of_guest_frame_prepare) */
		rc = of_parse_inner_fast(data, rte_pktmbuf_pkt_len(m), mt);
		/* The gateway looks only at frames the parse found not IP (ARP), ICMPv6 (neighbor
		 * discovery) or UDP to a DHCP server port; every other IP frame pays two compares
		 * on bytes the parse just wrote. */
		if (unlikely(rc != OF_OK)) {
			if (rc == OF_C_NOT_IP) {
				rc = of_guest_arp(data, len, gateway_room(m), guest, &reply_len);
				if (gateway_consumed(dp, lc, port, m, rc, reply_len))
					continue;
			}
			of_drop(lc, (enum of_counter)rc, m);
			continue;
		}
		if (unlikely(of_guest_maybe_service(mt))) {
			rc = of_guest_service(data, len, gateway_room(m), mt, guest, &reply_len);
			if (gateway_consumed(dp, lc, port, m, rc, reply_len))
				continue;
		}
		/* The guest's own IPv4 address, one compare; anything else (IPv6, allowed prefixes) in full. */
		memcpy(&w, mt->key.src + 8, sizeof(w));
		if (unlikely((mt->is_ipv6 || w != src4) && !of_guest_src_ok(&guest->net, mt))) {
			of_drop(lc, OF_C_SPOOF_SRC_IP, m);
			continue;
		}
		/* Too big once encapsulated: an ICMP error back to the guest, or a drop (mtu.h). This
		 * also bounds every length encap_and_send writes into 16-bit fields. */
		if (unlikely(rte_pktmbuf_pkt_len(m) + OF_ENCAP_IP_OVERHEAD > underlay_mtu)) {
			of_outbound_too_big(dp, lc, port, m, mt, guest);
			continue;
		}
		mt->key.vni = vni;
		keys[n_ok] = &mt->key;
		ok[n_ok++] = m;
	}
	if (n_ok == 0)
		return;
	/*
	 * Hashing in a loop of its own: right after the parse, the key's bytes are still in
	 * the store buffer in pieces, and the hash's 8-byte loads would stall on forwarding.
	 */
	for (uint16_t i = 0; i < n_ok; i++) {
		const uint8_t *data = rte_pktmbuf_mtod(ok[i], const uint8_t *);

		hashes[i] = handed_off ? ok[i]->hash.rss : of_flow_hash(keys[i], dp->hash_key);
		/* The outer header goes into headroom no one has touched yet: fetch it for writing
		 * (rte_prefetch0_write is still experimental in 22.11). */
		__builtin_prefetch(data - OF_OUTER_HDR_LEN, 1, 3);
		__builtin_prefetch(data - 1, 1, 3);
	}
	/* Several workers: only the flow's owner keeps a flow entry and forwards the flow's frames. */
	if (!handed_off && dp->handoff != NULL)
		n_ok = of_handoff_split(dp, lc, port, ok, meta, hashes, n_ok);
	of_flow_lookup_bulk(lc->flows, keys, hashes, n_ok, entries);

	for (uint16_t i = 0; i < ENTRY_PREFETCH_OFFSET && i < n_ok; i++)
		prefetch_entry(entries[i]);
	for (uint16_t i = 0; i < n_ok; i++) {
		struct rte_mbuf *m = ok[i];
		struct of_flow_entry *e = entries[i];
		struct of_path stateless;
		int created = 0;
		int rc;
		/* Folded away in the plain copy; one compare of the key in the traced one. */
		const int want = traced && of_trace_wants(dp, keys[i], OF_TRACE_OUT);

		if (i + ENTRY_PREFETCH_OFFSET < n_ok)
			prefetch_entry(entries[i + ENTRY_PREFETCH_OFFSET]);

		/* The bulk lookup ran before this burst removed flows: an entry it found may have been
		 * removed since (and its slot even reused by another flow). Removing it again would
		 * underflow the flow and path counts. */
		if (e != NULL && unlikely(removed) &&
		    (!e->in_use || e->hash != hashes[i] || memcmp(&e->key, keys[i], sizeof(e->key)) != 0))
			e = NULL;
		if (e == NULL)
			e = of_flow_insert(lc->flows, keys[i], hashes[i], &created);
		if (unlikely(e == NULL)) {
			/* Table full: the bucket tables still give every packet of the flow the same path. */
			rc = resolve_path(dp, t, keys[i], hashes[i], NULL, &stateless);
			if (want)
				of_trace_outbound(dp, lc, t, keys[i], hashes[i], OF_TRACE_TABLE_FULL,
						  rc == OF_OK ? OF_TRACE_STATELESS : OF_TRACE_DROPPED, rc,
						  rc == OF_OK ? &stateless : NULL, NULL);
			if (rc != OF_OK) {
				of_drop(lc, (enum of_counter)rc, m);
				continue;
			}
			of_count(lc, OF_C_FLOW_TABLE_FULL);
			encap_and_send(dp, lc, &stateless, hashes[i], vni, flow_label, udp_cksum, m);
			continue;
		}
		if (created) {
			rc = resolve_path(dp, t, keys[i], hashes[i], NULL, &e->path);
			if (want)
				of_trace_outbound(dp, lc, t, keys[i], hashes[i], OF_TRACE_MISS,
						  rc == OF_OK ? OF_TRACE_NEW : OF_TRACE_DROPPED, rc,
						  rc == OF_OK ? &e->path : NULL, NULL);
			if (rc == OF_OK) {
				of_count_path_flows(lc, &e->path, 1);
				of_count(lc, OF_C_FLOWS_CREATED);
			} else {
				of_flow_remove(lc->flows, e);
				removed = 1;
			}
		} else {
			struct of_path before;
			uint64_t moves[3] = { 0 };

			if (want) {
				before = e->path;
				moves[0] = lc->counters[OF_C_FLOWS_MIGRATED];
				moves[1] = lc->counters[OF_C_FLOWS_REBALANCED];
				moves[2] = lc->counters[OF_C_FLOWS_REROUTED];
			}
			rc = refresh_path(dp, lc, t, e);
			if (want) {
				enum of_trace_why why = rc != OF_OK ? OF_TRACE_DROPPED : refresh_why(lc, moves);

				of_trace_outbound(dp, lc, t, keys[i], hashes[i], OF_TRACE_HIT, why, rc,
						  rc == OF_OK ? &e->path : NULL, why == OF_TRACE_PINNED ? NULL : &before);
			}
			if (rc != OF_OK) {
				of_count_path_flows(lc, &e->path, -1);
				of_flow_remove(lc->flows, e);
				removed = 1;
			}
		}
		if (unlikely(rc != OF_OK)) {
			of_drop(lc, (enum of_counter)rc, m);
			continue;
		}
		e->last_tsc = lc->now;
		e->packets++;
		e->bytes += rte_pktmbuf_pkt_len(m);
		if (keys[i]->proto == IPPROTO_TCP)
			e->closing = (meta[i].tcp_flags & (RTE_TCP_FIN_FLAG | RTE_TCP_RST_FLAG)) ? 1 :
				     (meta[i].tcp_flags & RTE_TCP_SYN_FLAG) ? 0 : e->closing;
		encap_and_send(dp, lc, &e->path, hashes[i], vni, flow_label, udp_cksum, m);
	}
}

static __rte_noinline void
outbound_plain(struct of_dp *dp, struct of_lcore *lc, const struct of_tables *t,
	       uint16_t port, struct rte_mbuf **pkts, uint16_t n, int handed_off)
{
	outbound_burst(dp, lc, t, port, pkts, n, handed_off, 0);
}

static __rte_noinline void
outbound_traced(struct of_dp *dp, struct of_lcore *lc, const struct of_tables *t,
		uint16_t port, struct rte_mbuf **pkts, uint16_t n, int handed_off)
{
	outbound_burst(dp, lc, t, port, pkts, n, handed_off, 1);
}

/* The one branch a burst pays for tracing. */
static inline void
outbound(struct of_dp *dp, struct of_lcore *lc, const struct of_tables *t,
	 uint16_t port, struct rte_mbuf **pkts, uint16_t n, int handed_off)
{
	if (unlikely(__atomic_load_n(&dp->trace_armed, __ATOMIC_ACQUIRE)))
		outbound_traced(dp, lc, t, port, pkts, n, handed_off);
	else
		outbound_plain(dp, lc, t, port, pkts, n, handed_off);
}

/* A TSO frame's segments (gso.h), as frames the guest sent, in order. */
static __rte_noinline void
outbound_segments(struct of_dp *dp, struct of_lcore *lc, const struct of_tables *t, uint16_t port,
		  struct of_gso *gso)
{
	struct rte_mbuf *segs[OF_GSO_CHUNK];
	unsigned n;

	while ((n = of_gso_next(lc, gso, dp->pool, segs, OF_GSO_CHUNK)) != 0)
		outbound(dp, lc, t, port, segs, (uint16_t)n, 0);
}

void
of_outbound_burst(struct of_dp *dp, struct of_lcore *lc, const struct of_tables *t,
		  uint16_t port, struct rte_mbuf **pkts, uint16_t n)
{
	const struct of_guest *guest = &t->guests[port];
	const uint32_t frame_max = (uint32_t)guest->net.mtu + RTE_ETHER_HDR_LEN;
	uint16_t start = 0;

	lc->counters[OF_C_RX_GUEST] += n;
	/* Chained frames, guest offloads and frames over the port's MTU (gso.h): one branch a frame.
	 * A frame dropped or cut into segments splits the burst, so frames leave in their order. */
	for (uint16_t i = 0; i < n; i++) {
		enum of_guest_frame what;
		struct of_gso gso;

		if (likely(!of_guest_frame_special(pkts[i], frame_max)) || !guest->valid)
			continue;
		what = of_guest_frame_prepare(lc, guest, dp->cfg.underlay_mtu, pkts[i], &gso);
		if (what == OF_FRAME_FORWARD)
			continue;
		if (i > start)
			outbound(dp, lc, t, port, &pkts[start], (uint16_t)(i - start), 0);
		start = (uint16_t)(i + 1);
		if (what == OF_FRAME_SEGMENT)
			outbound_segments(dp, lc, t, port, &gso);
	}
	if (start < n)
		outbound(dp, lc, t, port, &pkts[start], (uint16_t)(n - start), 0);
}

unsigned
of_outbound_handed_off(struct of_dp *dp, struct of_lcore *lc, const struct of_tables *t)
{
	struct rte_mbuf *pkts[OF_MAX_BURST];
	unsigned n = of_handoff_receive(dp, lc, pkts);

	/* In runs of one guest port, run after run: a flow's frames leave in the order they came. */
	for (unsigned start = 0, end; start < n; start = end) {
		uint16_t ethdev = pkts[start]->port;

		for (end = start + 1; end < n && pkts[end]->port == ethdev; end++)
			;
		outbound(dp, lc, t, dp->handoff->port_of_ethdev[ethdev], &pkts[start], (uint16_t)(end - start), 1);
	}
	return n;
}
