/*
 * Inbound: uplink frame -> validated Geneve -> (VNI, inner dst MAC) ->
 * guest port, outer headers stripped, inner src MAC set to the gateway's.
 * Frames that are not Geneve for this sled go to the uplink's kernel tap
 * (exception path); neighbor solicitations for the underlay address are
 * answered here so switches can resolve the sled without a kernel.
 */
#include <stddef.h>
#include <string.h>

#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>

#include "bfd_io.h"
#include "chain.h"
#include "dp.h"
#include "inbound.h"
#include "lcore.h"
#include "ndp.h"
#include "parse.h"
#include "strict.h"
#include "tables.h"
#include "trace.h"
#include "tx.h"

#define PREFETCH_OFFSET 4

/* Not Geneve for us: answer NDP for our address, else punt to the kernel, else drop. */
static void
exception(struct of_dp *dp, struct of_lcore *lc, uint16_t port, struct rte_mbuf *m)
{
	const struct of_port *uplink = &dp->ports[port];
	uint8_t *data = rte_pktmbuf_mtod(m, uint8_t *);
	uint32_t len = rte_pktmbuf_data_len(m);

	if (of_bfd_input(dp, lc, port, m))
		return;
	if (rte_pktmbuf_is_contiguous(m) && of_ndp_is_solicit_for(data, len, dp->cfg.underlay_addr)) {
		uint32_t room = len + rte_pktmbuf_tailroom(m);
		uint32_t reply_len = of_ndp_build_advert(data, len, room, uplink->mac.addr_bytes,
							 dp->cfg.underlay_addr);

		if (reply_len != 0) {
			m->data_len = (uint16_t)reply_len;
			m->pkt_len = reply_len;
			of_count(lc, OF_C_NDP_REPLIES);
			of_tx_enqueue(dp, lc, port, m);
			return;
		}
	}
	if (uplink->exception == OF_NO_ID) {
		of_drop(lc, OF_C_NOT_GENEVE, m);
		return;
	}
	of_tx_enqueue(dp, lc, uplink->exception, m);
}

/*
 * One pass per packet: the guest index is an inline lookup (tables.h), so a
 * frame's lines are touched once, while its prefetch is still fresh.
 * traced: a constant, so the plain copy has no trace code at all (trace.h).
 */
static __rte_always_inline void
inbound_burst(struct of_dp *dp, struct of_lcore *lc, const struct of_tables *t,
	      uint16_t port, struct rte_mbuf **pkts, uint16_t n, const int traced)
{
	/* Read once a burst: the packet loop's stores may alias dp->cfg. The inner flow key only for
	 * strict underlay and tracing, which read it. */
	const int strict = dp->cfg.strict_underlay, verify = dp->cfg.verify_udp_checksum;
	const int keyed = traced || strict;

	lc->counters[OF_C_RX_UPLINK] += n;
	for (uint16_t i = 0; i < PREFETCH_OFFSET && i < n; i++)
		rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		const uint8_t *data = rte_pktmbuf_mtod(m, const uint8_t *);
		uint32_t len = rte_pktmbuf_data_len(m);
		const uint8_t *sender, *inner;
		struct of_geneve_meta gm;
		struct of_inner_meta im;
		struct rte_ether_hdr *eth;
		uint16_t guest;
		int rc, want = 0;

		if (i + PREFETCH_OFFSET < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + PREFETCH_OFFSET], void *));
		if (likely(m->nb_segs == 1)) {
			if (keyed)
				rc = of_parse_inbound_fast(data, len, dp->cfg.underlay_addr, verify, &gm, &im, 1);
			else
				rc = of_parse_inbound_fast(data, len, dp->cfg.underlay_addr, verify, &gm, &im, 0);
		} else {	/* a jumbo frame in segments: its headers pulled into the first (chain.h) */
			rc = of_chain_parse_underlay(m, dp->cfg.underlay_addr, verify, &gm, &im);
			data = rte_pktmbuf_mtod(m, const uint8_t *);
		}
		if (rc == OF_PARSE_EXCEPTION) {
			exception(dp, lc, port, m);
			continue;
		}
		if (unlikely(rc != OF_OK)) {
			of_drop(lc, (enum of_counter)rc, m);
			continue;
		}
		/* The outer headers stay in the first segment's bytes after the adj below. */
		sender = data + gm.ip6_off + offsetof(struct rte_ipv6_hdr, src_addr);
		inner = data + gm.outer_len;
		if (traced) {
			im.key.vni = gm.vni;
			want = of_trace_wants(dp, &im.key, OF_TRACE_IN);
		}
		if (strict && !of_underlay_source_ok(t, sender, gm.vni, im.key.src)) {
			if (traced && want)
				of_trace_inbound(dp, lc, port, &im.key, sender, inner, OF_NO_ID,
						 OF_C_UNDERLAY_SOURCE_UNKNOWN);
			of_drop(lc, OF_C_UNDERLAY_SOURCE_UNKNOWN, m);
			continue;
		}
		/* Keep the inner frame only: no outer headers, no trailing padding. */
		rte_pktmbuf_adj(m, gm.outer_len);
		if (likely(m->nb_segs == 1)) {
			m->data_len = (uint16_t)gm.inner_len;
			m->pkt_len = gm.inner_len;
		} else {
			of_chain_truncate(m, gm.inner_len);
		}

		guest = of_guest_lookup(t, gm.vni, of_mac_word(inner));
		if (guest == OF_NO_ID) {
			/* no guest's: a TEP's BFD answer from inside the tunnel, or a drop */
			if (of_bfd_input_geneve(dp, lc, port, m))
				continue;
			if (traced && want)
				of_trace_inbound(dp, lc, port, &im.key, sender, inner, OF_NO_ID, OF_C_VNI_MAC_UNKNOWN);
			of_drop(lc, OF_C_VNI_MAC_UNKNOWN, m);
			continue;
		}
		/* No larger than the guest's own MTU, which its NIC was told (DHCP, RA) and drops beyond:
		 * the sender is across the tunnel, where a packet too big would have to be sent back. */
		if (unlikely(gm.inner_len - im.l2_len > t->guests[guest].net.mtu)) {
			if (traced && want)
				of_trace_inbound(dp, lc, port, &im.key, sender, inner, guest, OF_C_INNER_OVER_GUEST_MTU);
			of_drop(lc, OF_C_INNER_OVER_GUEST_MTU, m);
			continue;
		}
		if (traced && want)
			of_trace_inbound(dp, lc, port, &im.key, sender, inner, guest, OF_OK);
		eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
		memcpy(&eth->src_addr, t->guests[guest].gw_mac, 6);
		of_tx_enqueue(dp, lc, guest, m);
	}
}

static __rte_noinline void
inbound_traced(struct of_dp *dp, struct of_lcore *lc, const struct of_tables *t,
	       uint16_t port, struct rte_mbuf **pkts, uint16_t n)
{
	inbound_burst(dp, lc, t, port, pkts, n, 1);
}

/* The one branch a burst pays for tracing; the plain copy is inlined here. */
void
of_inbound_burst(struct of_dp *dp, struct of_lcore *lc, const struct of_tables *t,
		 uint16_t port, struct rte_mbuf **pkts, uint16_t n)
{
	if (unlikely(__atomic_load_n(&dp->trace_armed, __ATOMIC_ACQUIRE))) {
		inbound_traced(dp, lc, t, port, pkts, n);
		return;
	}
	inbound_burst(dp, lc, t, port, pkts, n, 0);
}

/* Frames the kernel sends on an uplink's tap go out that uplink unchanged. */
void
of_exception_burst(struct of_dp *dp, struct of_lcore *lc, uint16_t port, struct rte_mbuf **pkts, uint16_t n)
{
	uint16_t uplink = dp->ports[port].uplink;

	lc->counters[OF_C_RX_EXCEPTION] += n;
	for (uint16_t i = 0; i < n; i++)
		of_tx_enqueue(dp, lc, uplink, pkts[i]);
}
