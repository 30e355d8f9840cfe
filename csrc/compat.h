/*
 * The differences between the DPDK releases opte-fast builds against:
 * 22.11 (Debian 12) and 24.11 (Debian 13, where IPv6 addresses became
 * struct rte_ipv6_addr in rte_fib6 and the unsigned telemetry values were renamed).
 * Everything else uses byte arrays for IPv6 addresses and calls these
 * wrappers.
 */
#ifndef OF_COMPAT_H
#define OF_COMPAT_H

#include <stdint.h>
#include <rte_version.h>
#include <rte_fib6.h>
#include <rte_telemetry.h>

#if RTE_VERSION >= RTE_VERSION_NUM(24, 11, 0, 0)
#define OF_FIB6_ADDR(p) ((const struct rte_ipv6_addr *)(const void *)(p))
#define OF_FIB6_ADDRS(p) ((const struct rte_ipv6_addr *)(const void *)(p))
#else
#define OF_FIB6_ADDR(p) ((const uint8_t *)(p))
/* 22.11 takes the addresses to look up as a non-const array; it only reads them. */
#define OF_FIB6_ADDRS(p) ((uint8_t (*)[16])(uintptr_t)(p))
#endif

static inline int
of_fib6_add(struct rte_fib6 *fib, const uint8_t ip[16], uint8_t depth, uint64_t next_hop)
{
	return rte_fib6_add(fib, OF_FIB6_ADDR(ip), depth, next_hop);
}

static inline int
of_fib6_delete(struct rte_fib6 *fib, const uint8_t ip[16], uint8_t depth)
{
	return rte_fib6_delete(fib, OF_FIB6_ADDR(ip), depth);
}

/* One address: the bulk call with n = 1 (rte_fib6 has no single lookup). */
static inline void
of_fib6_lookup(struct rte_fib6 *fib, const uint8_t ip[16], uint64_t *next_hop)
{
	if (rte_fib6_lookup_bulk(fib, OF_FIB6_ADDRS(ip), next_hop, 1) < 0)
		*next_hop = UINT64_MAX;		/* only for a NULL fib */
}

/* 23.03 renamed the unsigned telemetry values; the u64 names are deprecated from then on. */
static inline int
of_tel_dict_add_u64(struct rte_tel_data *d, const char *name, uint64_t val)
{
#if RTE_VERSION >= RTE_VERSION_NUM(23, 3, 0, 0)
	return rte_tel_data_add_dict_uint(d, name, val);
#else
	return rte_tel_data_add_dict_u64(d, name, val);
#endif
}

#endif
