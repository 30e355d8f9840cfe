/*
 * Tests of the guest's gateway: ARP replies and neighbor advertisements,
 * and what it leaves unanswered. The frames were built apart from this code
 * with scapy 2.8 (requests and the answers RFC 826 and RFC 4861 7.2.4 call
 * for, checksums computed by scapy); the guest is 02:08:20:aa:bb:01
 * (fe80::8:20ff:feaa:bb01), its gateway a8:40:25:ff:00:01
 * (fe80::aa40:25ff:feff:1). Every run goes through a heap buffer of exactly
 * the bytes the function may touch, so ASan reports any access past them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "check.h"
#include "frames.h"
#include "gateway.h"
#include "parse.h"

static const uint8_t ARP_REQUEST[] = {	/* who has 93.184.216.34, tell 172.30.0.5 */
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x08,	/* eth */
	0x20, 0xaa, 0xbb, 0x01, 0x08, 0x06,
	0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,	/* arp */
	0x02, 0x08, 0x20, 0xaa, 0xbb, 0x01, 0xac, 0x1e,	/* sender */
	0x00, 0x05,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x5d, 0xb8,	/* target */
	0xd8, 0x22,
};

static const uint8_t ARP_REPLY[] = {	/* 93.184.216.34 is at the gateway MAC */
	0x02, 0x08, 0x20, 0xaa, 0xbb, 0x01, 0xa8, 0x40,	/* eth */
	0x25, 0xff, 0x00, 0x01, 0x08, 0x06,
	0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02,	/* arp */
	0xa8, 0x40, 0x25, 0xff, 0x00, 0x01, 0x5d, 0xb8,	/* sender */
	0xd8, 0x22,
	0x02, 0x08, 0x20, 0xaa, 0xbb, 0x01, 0xac, 0x1e,	/* target */
	0x00, 0x05,
};

static const uint8_t NS_UNICAST[] = {	/* from the guest's link-local to the gateway's, for it */
	0xa8, 0x40, 0x25, 0xff, 0x00, 0x01, 0x02, 0x08,	/* eth */
	0x20, 0xaa, 0xbb, 0x01, 0x86, 0xdd,
	0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff,	/* ipv6 */
	0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x08, 0x20, 0xff, 0xfe, 0xaa, 0xbb, 0x01,
	0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xaa, 0x40, 0x25, 0xff, 0xfe, 0xff, 0x00, 0x01,
	0x87, 0x00, 0x25, 0x38, 0x00, 0x00, 0x00, 0x00,	/* icmpv6 */
	0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xaa, 0x40, 0x25, 0xff, 0xfe, 0xff, 0x00, 0x01,
	0x01, 0x01, 0x02, 0x08, 0x20, 0xaa, 0xbb, 0x01,	/* option */
};

static const uint8_t NA_UNICAST[] = {
	0x02, 0x08, 0x20, 0xaa, 0xbb, 0x01, 0xa8, 0x40,	/* eth */
	0x25, 0xff, 0x00, 0x01, 0x86, 0xdd,
	0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff,	/* ipv6 */
	0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xaa, 0x40, 0x25, 0xff, 0xfe, 0xff, 0x00, 0x01,
	0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x08, 0x20, 0xff, 0xfe, 0xaa, 0xbb, 0x01,
	0x88, 0x00, 0x52, 0xaa, 0xe0, 0x00, 0x00, 0x00,	/* icmpv6 */
	0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xaa, 0x40, 0x25, 0xff, 0xfe, 0xff, 0x00, 0x01,
	0x02, 0x01, 0xa8, 0x40, 0x25, 0xff, 0x00, 0x01,	/* option */
};

static const uint8_t NS_MULTICAST[] = {	/* from fd00:1122:3344:101::5 to ff02::1:ff00:7, for fd00:1122:3344:101::7 */
	0x33, 0x33, 0xff, 0x00, 0x00, 0x07, 0x02, 0x08,	/* eth */
	0x20, 0xaa, 0xbb, 0x01, 0x86, 0xdd,
	0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff,	/* ipv6 */
	0xfd, 0x00, 0x11, 0x22, 0x33, 0x44, 0x01, 0x01,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
	0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x01, 0xff, 0x00, 0x00, 0x07,
	0x87, 0x00, 0x17, 0x08, 0x00, 0x00, 0x00, 0x00,	/* icmpv6 */
	0xfd, 0x00, 0x11, 0x22, 0x33, 0x44, 0x01, 0x01,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07,
	0x01, 0x01, 0x02, 0x08, 0x20, 0xaa, 0xbb, 0x01,	/* option */
};

static const uint8_t NA_MULTICAST[] = {
	0x02, 0x08, 0x20, 0xaa, 0xbb, 0x01, 0xa8, 0x40,	/* eth */
	0x25, 0xff, 0x00, 0x01, 0x86, 0xdd,
	0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff,	/* ipv6 */
	0xfd, 0x00, 0x11, 0x22, 0x33, 0x44, 0x01, 0x01,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07,
	0xfd, 0x00, 0x11, 0x22, 0x33, 0x44, 0x01, 0x01,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
	0x88, 0x00, 0x00, 0x17, 0xe0, 0x00, 0x00, 0x00,	/* icmpv6 */
	0xfd, 0x00, 0x11, 0x22, 0x33, 0x44, 0x01, 0x01,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07,
	0x02, 0x01, 0xa8, 0x40, 0x25, 0xff, 0x00, 0x01,	/* option */
};

static const uint8_t NS_DAD_GATEWAY[] = {	/* from :: to ff02::1:ffff:1, for the gateway's link-local */
	0x33, 0x33, 0xff, 0xff, 0x00, 0x01, 0x02, 0x08,	/* eth */
	0x20, 0xaa, 0xbb, 0x01, 0x86, 0xdd,
	0x60, 0x00, 0x00, 0x00, 0x00, 0x18, 0x3a, 0xff,	/* ipv6 */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x01, 0xff, 0xff, 0x00, 0x01,
	0x87, 0x00, 0xab, 0xe6, 0x00, 0x00, 0x00, 0x00,	/* icmpv6 */
	0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xaa, 0x40, 0x25, 0xff, 0xfe, 0xff, 0x00, 0x01,
};

static const uint8_t NA_DAD_GATEWAY[] = {
	0x33, 0x33, 0x00, 0x00, 0x00, 0x01, 0xa8, 0x40,	/* eth */
	0x25, 0xff, 0x00, 0x01, 0x86, 0xdd,
	0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff,	/* ipv6 */
	0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xaa, 0x40, 0x25, 0xff, 0xfe, 0xff, 0x00, 0x01,
	0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x88, 0x00, 0x6c, 0xdb, 0xa0, 0x00, 0x00, 0x00,	/* icmpv6 */
	0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xaa, 0x40, 0x25, 0xff, 0xfe, 0xff, 0x00, 0x01,
	0x02, 0x01, 0xa8, 0x40, 0x25, 0xff, 0x00, 0x01,	/* option */
};

static const uint8_t NS_DAD_GUEST[] = {	/* from :: to ff02::1:ffaa:bb01, for the guest's own link-local */
	0x33, 0x33, 0xff, 0xaa, 0xbb, 0x01, 0x02, 0x08,	/* eth */
	0x20, 0xaa, 0xbb, 0x01, 0x86, 0xdd,
	0x60, 0x00, 0x00, 0x00, 0x00, 0x18, 0x3a, 0xff,	/* ipv6 */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x01, 0xff, 0xaa, 0xbb, 0x01,
	0x87, 0x00, 0xe5, 0xc7, 0x00, 0x00, 0x00, 0x00,	/* icmpv6 */
	0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x08, 0x20, 0xff, 0xfe, 0xaa, 0xbb, 0x01,
};

/* NS_MULTICAST behind an (empty) Destination Options header */
static const uint8_t NS_DSTOPT[] = {
	0x33, 0x33, 0xff, 0x00, 0x00, 0x07, 0x02, 0x08,
	0x20, 0xaa, 0xbb, 0x01, 0x86, 0xdd, 0x60, 0x00,
	0x00, 0x00, 0x00, 0x28, 0x3c, 0xff, 0xfd, 0x00,
	0x11, 0x22, 0x33, 0x44, 0x01, 0x01, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0xff, 0x02,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x01, 0xff, 0x00, 0x00, 0x07, 0x3a, 0x00,
	0x01, 0x04, 0x00, 0x00, 0x00, 0x00, 0x87, 0x00,
	0x17, 0x08, 0x00, 0x00, 0x00, 0x00, 0xfd, 0x00,
	0x11, 0x22, 0x33, 0x44, 0x01, 0x01, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x01, 0x01,
	0x02, 0x08, 0x20, 0xaa, 0xbb, 0x01,
};

static const uint8_t GUEST_MAC[6] = { 0x02, 0x08, 0x20, 0xaa, 0xbb, 0x01 };
static const uint8_t GW_MAC[6] = { 0xa8, 0x40, 0x25, 0xff, 0x00, 0x01 };
static const uint8_t OTHER_MAC[6] = { 0x02, 0x08, 0x20, 0xaa, 0xbb, 0x02 };

enum {
	ETH_DST = 0,
	ETH_SRC = 6,
	L3 = 14,
	/* ARP */
	ARP_HRD = L3, ARP_PRO = L3 + 2, ARP_HLN = L3 + 4, ARP_PLN = L3 + 5, ARP_OP = L3 + 6,
	ARP_SHA = L3 + 8, ARP_SPA = L3 + 14, ARP_THA = L3 + 18, ARP_TPA = L3 + 24,
	ARP_LEN = L3 + 28,
	/* IPv6 and ICMPv6 */
	HOP_LIMIT = L3 + 7, SRC = L3 + 8, DST = L3 + 24, ICMP = L3 + 40, TARGET = ICMP + 8,
	ND_LEN = ICMP + 24 + 8,	/* a solicitation or advertisement with one link-layer option */
	ROOM = 256,
};

struct result {
	int rc;
	uint32_t len;		/* of the answer, 0 if none */
	uint8_t frame[ROOM];	/* the answer */
};

/*
 * What the data plane does with a guest frame that is not IP: the parse says
 * so, then the gateway gets it, with room bytes for its answer (0: a chained
 * mbuf, answered nowhere). The buffer ends at the frame's end or the room's,
 * whichever is further. A frame not answered must come back untouched.
 */
static struct result
arp(const uint8_t *frame, uint32_t len, uint32_t room)
{
	struct result r = { 0 };
	struct of_inner_meta m;
	uint8_t *buf = malloc(len > room ? len : room);
	uint32_t reply_len = 0;

	memcpy(buf, frame, len);
	CHECK_EQ(of_parse_inner(buf, len, &m), OF_C_NOT_IP);
	r.rc = of_gateway_arp(buf, len, room, GUEST_MAC, GW_MAC, &reply_len);
	if (r.rc == OF_C_GATEWAY_ARP_REPLIES) {
		CHECK(reply_len > 0 && reply_len <= room && reply_len <= sizeof(r.frame));
		r.len = reply_len;
		memcpy(r.frame, buf, reply_len);
	} else {
		CHECK_MEM(buf, frame, len);
	}
	free(buf);
	return r;
}

/* The same for an IPv6 frame the parse finds ICMPv6: the gateway gets the ICMPv6 header's offset. */
static struct result
ndp(const uint8_t *frame, uint32_t len, uint32_t room)
{
	struct result r = { 0 };
	struct of_inner_meta m;
	uint8_t *buf = malloc(len > room ? len : room);
	uint32_t reply_len = 0;

	memcpy(buf, frame, len);
	CHECK_EQ(of_parse_inner(buf, len, &m), OF_OK);
	CHECK_EQ(m.key.proto, IPPROTO_ICMPV6);
	r.rc = of_gateway_ndp(buf, len, room, m.l2_len + m.l3_len, GUEST_MAC, GW_MAC, &reply_len);
	if (r.rc == OF_C_GATEWAY_NDP_REPLIES) {
		CHECK(reply_len > 0 && reply_len <= room && reply_len <= sizeof(r.frame));
		r.len = reply_len;
		memcpy(r.frame, buf, reply_len);
	} else {
		CHECK_MEM(buf, frame, len);
	}
	free(buf);
	return r;
}

static void
check_answer(struct result r, int rc, const uint8_t *expected, uint32_t len)
{
	CHECK_EQ(r.rc, rc);
	CHECK_EQ(r.len, len);
	if (r.len == len)
		CHECK_MEM(r.frame, expected, len);
}

/* -- ARP ----------------------------------------------------------------------------------------- */

static void
test_arp_request(void)
{
	check_answer(arp(ARP_REQUEST, sizeof(ARP_REQUEST), sizeof(ARP_REQUEST)),
		     OF_C_GATEWAY_ARP_REPLIES, ARP_REPLY, sizeof(ARP_REPLY));
}

static void
test_arp_padding_cut(void)
{
	uint8_t f[60] = { 0 };	/* the minimum Ethernet frame, as most stacks send it */

	memcpy(f, ARP_REQUEST, sizeof(ARP_REQUEST));
	check_answer(arp(f, sizeof(f), sizeof(f)), OF_C_GATEWAY_ARP_REPLIES, ARP_REPLY, sizeof(ARP_REPLY));
}

static void
test_arp_vlan(void)
{
	uint8_t req[ARP_LEN + 4], rep[ARP_LEN + 4];
	uint32_t req_len = with_vlan(req, ARP_REQUEST, sizeof(ARP_REQUEST));
	uint32_t rep_len = with_vlan(rep, ARP_REPLY, sizeof(ARP_REPLY));

	check_answer(arp(req, req_len, req_len), OF_C_GATEWAY_ARP_REPLIES, rep, rep_len);
}

static void
test_arp_unicast_to_gateway(void)
{
	uint8_t f[ARP_LEN];

	/* a cached entry being confirmed (Linux: unicast while in PROBE state) */
	memcpy(f, ARP_REQUEST, sizeof(f));
	memcpy(f + ETH_DST, GW_MAC, 6);
	check_answer(arp(f, sizeof(f), sizeof(f)), OF_C_GATEWAY_ARP_REPLIES, ARP_REPLY, sizeof(ARP_REPLY));
}

static void
test_arp_any_target(void)
{
	static const uint8_t gw_ip[4] = { 172, 30, 0, 1 };
	uint8_t f[ARP_LEN], rep[ARP_LEN];

	/* the gateway's own address is one target among the others */
	memcpy(f, ARP_REQUEST, sizeof(f));
	memcpy(f + ARP_TPA, gw_ip, 4);
	memcpy(rep, ARP_REPLY, sizeof(rep));
	memcpy(rep + ARP_SPA, gw_ip, 4);
	check_answer(arp(f, sizeof(f), sizeof(f)), OF_C_GATEWAY_ARP_REPLIES, rep, sizeof(rep));
}

/* One field of ARP_REQUEST changed: not answered. */
static void
check_arp_ignored(uint32_t off, const void *value, uint32_t n)
{
	uint8_t f[ARP_LEN];
	struct result r;

	memcpy(f, ARP_REQUEST, sizeof(f));
	memcpy(f + off, value, n);
	r = arp(f, sizeof(f), sizeof(f));
	CHECK_EQ(r.rc, OF_C_GATEWAY_ARP_IGNORED);
	CHECK_EQ(r.len, 0);
}

static void
test_arp_not_answered(void)
{
	static const uint8_t zero_ip[4] = { 0 };
	static const uint8_t be16_reply[2] = { 0, 2 }, be16_hrd_ieee802[2] = { 0, 6 };
	static const uint8_t be16_ipv6[2] = { 0x86, 0xdd }, eight = 8, sixteen = 16;

	check_arp_ignored(ARP_TPA, &ARP_REQUEST[ARP_SPA], 4);	/* announcement: target = sender */
	check_arp_ignored(ARP_SPA, zero_ip, 4);			/* probe (RFC 5227) */
	check_arp_ignored(ETH_SRC, OTHER_MAC, 6);		/* another MAC on the guest port */
	check_arp_ignored(ARP_SHA, OTHER_MAC, 6);		/* asking for somebody else */
	check_arp_ignored(ETH_DST, OTHER_MAC, 6);		/* unicast to another MAC */
	check_arp_ignored(ARP_OP, be16_reply, 2);		/* a reply from the guest */
	check_arp_ignored(ARP_HRD, be16_hrd_ieee802, 2);
	check_arp_ignored(ARP_PRO, be16_ipv6, 2);
	check_arp_ignored(ARP_HLN, &eight, 1);
	check_arp_ignored(ARP_PLN, &sixteen, 1);
}

static void
test_arp_no_room(void)
{
	/* room 0: a chained frame, whose answer could not be built in place */
	struct result r = arp(ARP_REQUEST, sizeof(ARP_REQUEST), 0);

	CHECK_EQ(r.rc, OF_C_GATEWAY_ARP_IGNORED);
}

static void
test_not_arp(void)
{
	uint8_t f[60] = { 0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e, 0x02, 0x08, 0x20, 0xaa, 0xbb, 0x01, 0x88, 0xcc };
	uint8_t ip[ND_LEN];
	uint32_t reply_len = 0;

	/* LLDP: not IP, not ARP, so still not_ip */
	CHECK_EQ(arp(f, sizeof(f), sizeof(f)).rc, OF_C_NOT_IP);
	/* and an IP frame is none of the ARP side's business */
	memcpy(ip, NS_MULTICAST, sizeof(ip));
	CHECK_EQ(of_gateway_arp(ip, sizeof(ip), sizeof(ip), GUEST_MAC, GW_MAC, &reply_len), OF_C_NOT_IP);
	CHECK_MEM(ip, NS_MULTICAST, sizeof(ip));
	CHECK_EQ(reply_len, 0);
}

/*
 * Every cut of the request: not answered and untouched, in exactly that many
 * bytes (nothing read past them), and with the rest of the request still in
 * the buffer after them (nothing of it taken for the frame's).
 */
static void
check_arp_truncated(const uint8_t *frame, uint32_t len, uint32_t l3)
{
	for (uint32_t cut = 0; cut < len; cut++) {
		uint8_t *buf = malloc(cut ? cut : 1), whole[ROOM];
		uint32_t reply_len = 0;

		memcpy(buf, frame, cut);
		CHECK_EQ(of_gateway_arp(buf, cut, cut, GUEST_MAC, GW_MAC, &reply_len),
			 cut < l3 ? OF_C_NOT_IP : OF_C_GATEWAY_ARP_IGNORED);
		CHECK_MEM(buf, frame, cut);
		free(buf);
		memcpy(whole, frame, len);
		CHECK_EQ(of_gateway_arp(whole, cut, sizeof(whole), GUEST_MAC, GW_MAC, &reply_len),
			 cut < l3 ? OF_C_NOT_IP : OF_C_GATEWAY_ARP_IGNORED);
		CHECK_MEM(whole, frame, len);
		CHECK_EQ(reply_len, 0);
	}
}

static void
test_arp_truncated(void)
{
	uint8_t tagged[ARP_LEN + 4];
	uint32_t tagged_len = with_vlan(tagged, ARP_REQUEST, sizeof(ARP_REQUEST));

	check_arp_truncated(ARP_REQUEST, sizeof(ARP_REQUEST), L3);
	check_arp_truncated(tagged, tagged_len, L3 + 4);
}

/* -- neighbor discovery ---------------------------------------------------------------------------- */

static void
test_ns_unicast(void)
{
	check_answer(ndp(NS_UNICAST, sizeof(NS_UNICAST), sizeof(NS_UNICAST)),
		     OF_C_GATEWAY_NDP_REPLIES, NA_UNICAST, sizeof(NA_UNICAST));
}

static void
test_ns_multicast_any_target(void)
{
	check_answer(ndp(NS_MULTICAST, sizeof(NS_MULTICAST), sizeof(NS_MULTICAST)),
		     OF_C_GATEWAY_NDP_REPLIES, NA_MULTICAST, sizeof(NA_MULTICAST));
}

static void
test_ns_vlan(void)
{
	uint8_t ns[ND_LEN + 4], na[ND_LEN + 4];
	uint32_t ns_len = with_vlan(ns, NS_MULTICAST, sizeof(NS_MULTICAST));
	uint32_t na_len = with_vlan(na, NA_MULTICAST, sizeof(NA_MULTICAST));

	check_answer(ndp(ns, ns_len, ns_len), OF_C_GATEWAY_NDP_REPLIES, na, na_len);
}

static void
test_dad_of_the_gateway_address(void)
{
	/* the probe has no option and its answer has one: it takes room past the frame */
	check_answer(ndp(NS_DAD_GATEWAY, sizeof(NS_DAD_GATEWAY), ROOM),
		     OF_C_GATEWAY_NDP_REPLIES, NA_DAD_GATEWAY, sizeof(NA_DAD_GATEWAY));
	CHECK_EQ(ndp(NS_DAD_GATEWAY, sizeof(NS_DAD_GATEWAY), sizeof(NA_DAD_GATEWAY)).rc,
		 OF_C_GATEWAY_NDP_REPLIES);
	/* one byte short of that room: not answered, untouched */
	CHECK_EQ(ndp(NS_DAD_GATEWAY, sizeof(NS_DAD_GATEWAY), sizeof(NA_DAD_GATEWAY) - 1).rc,
		 OF_C_GATEWAY_NDP_IGNORED);
}

static void
test_dad_of_another_address(void)
{
	/* the guest testing its own address: an answer would make it give the address up */
	struct result r = ndp(NS_DAD_GUEST, sizeof(NS_DAD_GUEST), ROOM);

	CHECK_EQ(r.rc, OF_C_GATEWAY_NDP_IGNORED);
	CHECK_EQ(r.len, 0);
}

static void
test_other_nd_messages(void)
{
	uint8_t f[ND_LEN];

	/* router solicitation (no advertisement is sent), router and neighbor advertisement, redirect */
	for (uint8_t type = 133; type <= 137; type++) {
		if (type == 135)
			continue;
		memcpy(f, NS_UNICAST, sizeof(f));
		f[ICMP] = type;
		icmp6_fix_checksum(f, L3);
		CHECK_EQ(ndp(f, sizeof(f), ROOM).rc, OF_C_GATEWAY_NDP_IGNORED);
	}
	/* ICMPv6 that is not neighbor discovery goes on as any packet */
	for (unsigned type = 0; type <= 255; type++) {
		if (type >= 133 && type <= 137)
			continue;
		memcpy(f, NS_UNICAST, sizeof(f));
		f[ICMP] = (uint8_t)type;
		icmp6_fix_checksum(f, L3);
		CHECK_EQ(ndp(f, sizeof(f), ROOM).rc, OF_OK);
	}
}

/* NS_MULTICAST with n bytes at off changed, the checksum made right unless told: not answered. */
static void
check_ns_ignored(uint32_t off, const void *value, uint32_t n, int fix)
{
	uint8_t f[ND_LEN];
	struct result r;

	memcpy(f, NS_MULTICAST, sizeof(f));
	memcpy(f + off, value, n);
	if (fix)
		icmp6_fix_checksum(f, L3);
	r = ndp(f, sizeof(f), ROOM);
	CHECK_EQ(r.rc, OF_C_GATEWAY_NDP_IGNORED);
	CHECK_EQ(r.len, 0);
}

static void
test_ns_not_answered(void)
{
	static const uint8_t hop_limit = 254, bad_cksum = 0x09, other_group = 0x09, zero[16] = { 0 };
	static const uint8_t all_nodes[16] = { 0xff, 0x02, [15] = 0x01 };
	uint8_t f[ND_LEN];

	check_ns_ignored(ETH_SRC, OTHER_MAC, 6, 1);		/* not from the guest's MAC */
	check_ns_ignored(HOP_LIMIT, &hop_limit, 1, 1);		/* may come from off-link */
	check_ns_ignored(ICMP + 3, &bad_cksum, 1, 0);		/* checksum wrong */
	check_ns_ignored(SRC, all_nodes, 16, 1);		/* from a multicast address */
	check_ns_ignored(DST + 15, &other_group, 1, 1);		/* another target's group */

	/* for a multicast address, and for ::, each sent so that only the target is wrong */
	memcpy(f, NS_MULTICAST, sizeof(f));
	memcpy(f + DST, all_nodes, 16);
	memcpy(f + TARGET, all_nodes, 16);
	icmp6_fix_checksum(f, L3);
	CHECK_EQ(ndp(f, sizeof(f), ROOM).rc, OF_C_GATEWAY_NDP_IGNORED);
	memcpy(f, NS_MULTICAST, sizeof(f));
	memcpy(f + DST + 13, zero, 3);	/* ff02::1:ff00:0 */
	memcpy(f + TARGET, zero, 16);
	icmp6_fix_checksum(f, L3);
	CHECK_EQ(ndp(f, sizeof(f), ROOM).rc, OF_C_GATEWAY_NDP_IGNORED);

	/* behind an extension header */
	CHECK_EQ(ndp(NS_DSTOPT, sizeof(NS_DSTOPT), ROOM).rc, OF_C_GATEWAY_NDP_IGNORED);
	/* room 0: a chained frame */
	CHECK_EQ(ndp(NS_MULTICAST, sizeof(NS_MULTICAST), 0).rc, OF_C_GATEWAY_NDP_IGNORED);
}

/* Every cut of a solicitation, as check_arp_truncated does it. */
static void
check_ns_truncated(const uint8_t *frame, uint32_t len, uint32_t l4)
{
	for (uint32_t cut = 0; cut < len; cut++) {
		uint8_t *buf = malloc(cut ? cut : 1), whole[ROOM];
		uint32_t reply_len = 0;

		memcpy(buf, frame, cut);
		CHECK_EQ(of_gateway_ndp(buf, cut, cut, l4, GUEST_MAC, GW_MAC, &reply_len),
			 cut <= l4 ? OF_OK : OF_C_GATEWAY_NDP_IGNORED);
		CHECK_MEM(buf, frame, cut);
		free(buf);
		memcpy(whole, frame, len);
		CHECK_EQ(of_gateway_ndp(whole, cut, sizeof(whole), l4, GUEST_MAC, GW_MAC, &reply_len),
			 cut <= l4 ? OF_OK : OF_C_GATEWAY_NDP_IGNORED);
		CHECK_MEM(whole, frame, len);
		CHECK_EQ(reply_len, 0);
	}
}

static void
test_ns_truncated(void)
{
	uint8_t tagged[ND_LEN + 4];
	uint32_t tagged_len = with_vlan(tagged, NS_MULTICAST, sizeof(NS_MULTICAST));

	check_ns_truncated(NS_MULTICAST, sizeof(NS_MULTICAST), ICMP);
	check_ns_truncated(NS_UNICAST, sizeof(NS_UNICAST), ICMP);
	check_ns_truncated(NS_DAD_GATEWAY, sizeof(NS_DAD_GATEWAY), ICMP);
	check_ns_truncated(tagged, tagged_len, ICMP + 4);
}

/* The address the gateway, and single-hop BFD on an uplink, speak from: universal/local bit flipped. */
static void
test_link_local_of(void)
{
	static const uint8_t uplink_mac[6] = { 0x02, 0x5e, 0x00, 0x00, 0x00, 0x01 };
	static const uint8_t uplink_ll[16] = { 0xfe, 0x80, 0, 0, 0, 0, 0, 0,
					       0x00, 0x5e, 0x00, 0xff, 0xfe, 0x00, 0x00, 0x01 };
	static const uint8_t gw_ll[16] = { 0xfe, 0x80, 0, 0, 0, 0, 0, 0,
					   0xaa, 0x40, 0x25, 0xff, 0xfe, 0xff, 0x00, 0x01 };
	uint8_t ll[16];

	of_link_local_of(uplink_mac, ll);
	CHECK_MEM(ll, uplink_ll, 16);
	of_link_local_of(GW_MAC, ll);
	CHECK_MEM(ll, gw_ll, 16);
}

RUN_TESTS(
	TEST_ENTRY(test_arp_request),
	TEST_ENTRY(test_arp_padding_cut),
	TEST_ENTRY(test_arp_vlan),
	TEST_ENTRY(test_arp_unicast_to_gateway),
	TEST_ENTRY(test_arp_any_target),
	TEST_ENTRY(test_arp_not_answered),
	TEST_ENTRY(test_arp_no_room),
	TEST_ENTRY(test_not_arp),
	TEST_ENTRY(test_arp_truncated),
	TEST_ENTRY(test_ns_unicast),
	TEST_ENTRY(test_ns_multicast_any_target),
	TEST_ENTRY(test_ns_vlan),
	TEST_ENTRY(test_dad_of_the_gateway_address),
	TEST_ENTRY(test_dad_of_another_address),
	TEST_ENTRY(test_other_nd_messages),
	TEST_ENTRY(test_ns_not_answered),
	TEST_ENTRY(test_ns_truncated),
	TEST_ENTRY(test_link_local_of),
)
