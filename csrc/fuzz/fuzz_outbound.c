/*
 * libFuzzer over the whole outbound path (of_outbound_burst) of a sled with
 * real tables (sled.h): guest frames in, and every frame sent must be a
 * well-formed Geneve/IPv6 encapsulation of one of them, to a live TEP or the
 * peer sled, through a live nexthop of the route that covers it, on that
 * nexthop's uplink; or the gateway's answer back to the guest (guest 0 has
 * addresses, sled.h: its frames pass the source checks and reach encap).
 * Built by ci/fuzz-build.sh, run by ci/fuzz.sh.
 */
#include "sled.h"

/* The UDP checksum over the IPv6 pseudo-header and the datagram, RFC 1071, apart from the code under test. */
static int
udp6_checksum_ok(const uint8_t *f, uint32_t len)
{
	uint32_t plen = len - 54, sum = plen + IPPROTO_UDP, i;

	for (i = 22; i < 54; i += 2)
		sum += (uint32_t)f[i] << 8 | f[i + 1];
	for (i = 54; i < len; i += 2)
		sum += (uint32_t)f[i] << 8 | (i + 1 < len ? f[i + 1] : 0);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

static int
nexthop_of(const uint8_t mac[6])
{
	for (int nh = 1; nh <= 4; nh++)
		if (memcmp(mac, NH_MAC[nh], 6) == 0)
			return nh;
	return 0;
}

static void
check_encap(struct sled *s, uint16_t port, const uint8_t *f, uint32_t len, const struct sled_frame *in)
{
	const uint8_t *dst = f + 38;
	int to_peer = memcmp(dst, PEER_SLED, 16) == 0;
	int tep = memcmp(dst, TEP_ADDR[1], 16) == 0 ? 1 : memcmp(dst, TEP_ADDR[2], 16) == 0 ? 2 : 0;
	int nh = nexthop_of(f);
	uint32_t plen, vni;

	EXPECT(len >= OF_OUTER_HDR_LEN + RTE_ETHER_HDR_LEN);
	/* Ethernet: a live nexthop of the route to the destination, on its own uplink */
	EXPECT(memcmp(f + 6, s->dp->ports[port].mac.addr_bytes, 6) == 0);
	EXPECT(f[12] == 0x86 && f[13] == 0xdd);
	EXPECT(to_peer || tep == 1 || (tep == 2 && !s->tep2_down));
	if (tep == 2 && s->route_flapped)
		EXPECT(nh == 4);
	else
		EXPECT(nh == 1 || (nh == 2 && !s->nh2_down));
	EXPECT(port == s->uplink[nh == 2 ? 1 : 0]);
	/* IPv6: version 6, traffic class 0, lengths, UDP, hop limit, from this sled */
	plen = (uint32_t)f[18] << 8 | f[19];
	EXPECT(f[14] == 0x60 && (f[15] & 0xf0) == 0);
	EXPECT(plen == len - 54);
	EXPECT(f[20] == IPPROTO_UDP && f[21] == 128);
	EXPECT(memcmp(f + 22, UNDERLAY, 16) == 0);
	/* UDP: entropy port, Geneve port, the length again, a right checksum */
	EXPECT(((uint32_t)f[54] << 8 | f[55]) >= 49152);
	EXPECT(f[56] == OF_GENEVE_PORT >> 8 && f[57] == (OF_GENEVE_PORT & 0xff));
	EXPECT(((uint32_t)f[58] << 8 | f[59]) == plen);
	EXPECT(udp6_checksum_ok(f, len));
	/* Geneve: version 0, no options, no flags, Ethernet, the VNI of the destination */
	vni = (uint32_t)f[66] << 16 | (uint32_t)f[67] << 8 | f[68];
	EXPECT(f[62] == 0 && f[63] == 0 && f[64] == 0x65 && f[65] == 0x58 && f[69] == 0);
	EXPECT(vni == (to_peer ? GUEST_VNI : BOUNDARY_VNI));
	/* the guest's frame, its destination MAC rewritten */
	EXPECT(memcmp(f + 70, to_peer ? PEER_MAC : BOUNDARY_MAC, 6) == 0);
	EXPECT(sled_holds(in, f + 70, len - 70, 0, 1, 0, 6));
}

/* To the guest itself; or DHCPv4's broadcast (the client's flag asks for it), or a router
 * advertisement to all nodes (a solicitation from ::), each only for that answer. */
static int
answer_dst_ok(const uint8_t *f, uint32_t len)
{
	static const uint8_t broadcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	static const uint8_t all_nodes[6] = { 0x33, 0x33, 0, 0, 0, 0x01 };

	if (memcmp(f, GUEST_MAC, 6) == 0)
		return 1;
	if (memcmp(f, broadcast, 6) == 0)
		return len >= 14 + 20 + 8 && f[12] == 0x08 && f[13] == 0x00 && f[14] == 0x45 &&
		       f[23] == IPPROTO_UDP && f[36] == 0 && f[37] == 68;
	if (memcmp(f, all_nodes, 6) == 0)
		return len >= 14 + 40 + 4 && f[12] == 0x86 && f[13] == 0xdd && f[20] == IPPROTO_ICMPV6 && f[54] == 134;
	return 0;
}

static void
check_sent(struct sled *s, uint16_t port, const uint8_t *f, uint32_t len, const struct sled_frame *in)
{
	if (port == s->uplink[0] || port == s->uplink[1]) {
		check_encap(s, port, f, len, in);
		return;
	}
	/* The gateway's answer (ARP, NDP, DHCP, router advertisement, ICMP too big), from the gateway
	 * to the guest that asked. */
	EXPECT(port == s->guest[0] && s->port == s->guest[0]);
	EXPECT(len >= RTE_ETHER_HDR_LEN);
	EXPECT(answer_dst_ok(f, len) && memcmp(f + 6, GATEWAY_MAC, 6) == 0);
	EXPECT(in->len >= RTE_ETHER_HDR_LEN && memcmp(in->bytes + 6, GUEST_MAC, 6) == 0);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	sled_init(1);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sled_run(&sled, data, size);
	return 0;
}
