/*
 * libFuzzer over the whole inbound path (of_inbound_burst) of a sled with
 * real tables (sled.h): underlay frames in on uplink 0 (which has a kernel
 * tap) or uplink 1 (which has none), and every frame sent must be the inner
 * frame of one of them delivered to the guest it is for (under strict underlay
 * only from a TEP, or from the sled V2P maps its inner source to), an unchanged
 * frame punted to the tap, or a neighbor advertisement for the sled's address.
 * Built by ci/fuzz-build.sh, run by ci/fuzz.sh.
 */
#include "sled.h"

/* Where the IP header of an Ethernet frame of at least 14 bytes starts: after one VLAN tag at most. */
static uint32_t
l3_of(const uint8_t *f)
{
	uint16_t type = (uint16_t)(f[12] << 8 | f[13]);

	return type == 0x8100 || type == 0x88a8 || type == 0x9100 ? 18 : 14;
}

/* Strict underlay: the outer source is a TEP, or the peer sled for a guest V2P maps to it. */
static int
strict_source_ok(const uint8_t *outer_src, const uint8_t *inner, uint32_t len)
{
	uint32_t l2 = l3_of(inner);
	uint8_t src[16] = { [10] = 0xff, [11] = 0xff };

	for (int t = 1; t <= 4; t++)
		if (memcmp(outer_src, TEP_ADDR[t], 16) == 0)
			return 1;
	if (memcmp(outer_src, PEER_SLED, 16) != 0 || len < l2 + 1)
		return 0;
	if (inner[l2] >> 4 == 4 && len >= l2 + 16)
		memcpy(src + 12, inner + l2 + 12, 4);
	else if (inner[l2] >> 4 == 6 && len >= l2 + 24)
		memcpy(src, inner + l2 + 8, 16);
	else
		return 0;
	return memcmp(src, PEER_IP4, 16) == 0 || memcmp(src, PEER_IP6, 16) == 0;
}

static void
check_sent(struct sled *s, uint16_t port, const uint8_t *f, uint32_t len, const struct sled_frame *in)
{
	if (port == s->guest[0]) {
		/* the inner frame, after at least the outer Ethernet, IPv6, UDP and Geneve headers */
		uint32_t at = OF_OUTER_HDR_LEN;

		EXPECT(len >= RTE_ETHER_HDR_LEN);
		EXPECT(memcmp(f, GUEST_MAC, 6) == 0 && memcmp(f + 6, GATEWAY_MAC, 6) == 0);
		while (at + len <= in->len && !sled_holds(in, f, len, at, 0, 6, 12))
			at++;
		EXPECT(at + len <= in->len);
		EXPECT(!s->dp->cfg.strict_underlay ||
		       strict_source_ok(in->bytes + l3_of(in->bytes) + 8, f, len));
		/* Without IPv6 extension headers, the inner frame is exactly what the lengths say: from
		 * after the Geneve options to the end of the UDP datagram, no padding after it. */
		if (in->bytes[20] == IPPROTO_UDP) {
			uint32_t options = (in->bytes[62] & OF_GENEVE_OPT_LEN_MASK) * 4u;
			uint32_t payload = (uint32_t)in->bytes[18] << 8 | in->bytes[19];

			EXPECT(at == OF_OUTER_HDR_LEN + options);
			EXPECT(len == payload - 16 - options);
		}
	} else if (port == s->exception) {
		EXPECT(s->port == s->uplink[0]);
		EXPECT(sled_holds(in, f, len, 0, 1, 0, 0));
	} else {
		/* a neighbor advertisement for the sled's address, from the uplink it was asked on */
		EXPECT(port == s->port);
		EXPECT(len >= 14 + 40 + 24);
		EXPECT(memcmp(f + 6, s->dp->ports[port].mac.addr_bytes, 6) == 0);
		EXPECT(f[12] == 0x86 && f[13] == 0xdd && f[20] == IPPROTO_ICMPV6 && f[54] == OF_ICMP6_NEIGH_ADVERT);
		EXPECT(memcmp(f + 22, UNDERLAY, 16) == 0);
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	sled_init(0);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sled_run(&sled, data, size);
	return 0;
}
