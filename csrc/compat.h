/*
 * The differences between the DPDK releases opte-fast builds against:
 * 22.11 (Debian 12) and 24.11 (Debian 13, where IPv6 addresses became
 * struct rte_ipv6_addr and the unsigned telemetry values were renamed).
 * Everything else uses byte arrays for IPv6 addresses and calls these
 * wrappers.
 */
#ifndef OF_COMPAT_H
#define OF_COMPAT_H

#include <stdint.h>
#include <rte_version.h>
#include <rte_lpm6.h>
#include <rte_telemetry.h>

#if RTE_VERSION >= RTE_VERSION_NUM(24, 11, 0, 0)
#define OF_LPM6_ADDR(p) ((const struct rte_ipv6_addr *)(const void *)(p))
#else
#define OF_LPM6_ADDR(p) ((const uint8_t *)(p))
#endif

static inline int
of_lpm6_add(struct rte_lpm6 *lpm, const uint8_t ip[16], uint8_t depth, uint32_t next_hop)
{
	return rte_lpm6_add(lpm, OF_LPM6_ADDR(ip), depth, next_hop);
}

static inline int
of_lpm6_lookup(const struct rte_lpm6 *lpm, const uint8_t ip[16], uint32_t *next_hop)
{
	return rte_lpm6_lookup(lpm, OF_LPM6_ADDR(ip), next_hop);
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
