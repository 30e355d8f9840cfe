/*
 * A guest port's network: defaults, check, allowed source prefixes; the
 * contract is in guest_net.h.
 */
#include <stdint.h>
#include <string.h>

#include "guest_net.h"

static const uint8_t v4_mapped_prefix[12] = { [10] = 0xff, [11] = 0xff };

void
of_guest_net_default(struct of_guest_net *n)
{
	memset(n, 0, sizeof(*n));
	n->mtu = OF_GUEST_MTU_DEFAULT;
}

static int
is_v4_mapped(const uint8_t a[16])
{
	return memcmp(a, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0;
}

static int
prefix_has_host_bits(const struct of_prefix *p)
{
	for (unsigned bit = p->depth; bit < 128; bit++)
		if (p->addr[bit / 8] & (0x80 >> (bit % 8)))
			return 1;
	return 0;
}

const char *
of_guest_net_problem(const struct of_guest_net *n)
{
	if (n->mtu < OF_GUEST_MTU_MIN || n->mtu > OF_GUEST_MTU_MAX)
		return "guest MTU must be 1280 to 9000 bytes";
	if (n->n_dns4 > OF_GUEST_MAX_DNS || n->n_dns6 > OF_GUEST_MAX_DNS)
		return "at most 4 DNS servers per address family";
	if (n->n_allowed > OF_GUEST_MAX_PREFIXES)
		return "at most 8 allowed source prefixes per guest";
	if (memchr(n->domain, '\0', sizeof(n->domain)) == NULL)
		return "guest domain name is not NUL-terminated within 254 bytes";
	if (n->has_ipv4 && (n->ipv4_prefix_len < 1 || n->ipv4_prefix_len > 32))
		return "guest IPv4 prefix length must be 1 to 32";
	if (n->has_ipv4 && memcmp(n->ipv4, n->ipv4_gateway, 4) == 0)
		return "guest IPv4 address and its gateway are the same";
	if (n->has_ra_prefix && (n->ra_prefix.depth != 64 || prefix_has_host_bits(&n->ra_prefix)))
		return "router advertisement prefix must be a /64 with no host bits";
	for (unsigned i = 0; i < n->n_allowed && i < OF_GUEST_MAX_PREFIXES; i++) {
		const struct of_prefix *p = &n->allowed[i];

		if (p->depth > 128 || prefix_has_host_bits(p) || (is_v4_mapped(p->addr) && p->depth < 96))
			return "allowed prefix has host bits set, or an IPv4 depth under 96";
	}
	return NULL;
}

int
of_guest_src_in_allowed(const struct of_guest_net *n, const uint8_t src[16], int is_ipv6)
{
	for (unsigned i = 0; i < n->n_allowed; i++) {
		const struct of_prefix *p = &n->allowed[i];
		unsigned full = p->depth / 8, rest = p->depth % 8;

		/* an IPv4 prefix covers IPv4 packets only, not IPv6 from v4-mapped sources */
		if ((p->depth >= 96 && is_v4_mapped(p->addr)) == is_ipv6)
			continue;
		if (memcmp(src, p->addr, full) != 0)
			continue;
		if (rest == 0 || ((src[full] ^ p->addr[full]) & (uint8_t)(0xff00 >> rest)) == 0)
			return 1;
	}
	return 0;
}
