/*
 * The flow hash alone: cycles per 48-byte flow key, hashed a burst of 32 at a time as
 * outbound.c does (-O2, as setup.py builds it), for the keyed hash of csrc/flow_hash.h, the CRC32C it replaced, and
 * SipHash-1-3 (the cryptographic alternative).
 *
 *   gcc -O2 -Icsrc $(pkg-config --cflags libdpdk) bench/flow_hash.c -o /tmp/flow_hash \
 *       $(pkg-config --libs libdpdk) && /tmp/flow_hash
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <rte_hash_crc.h>
#include <x86intrin.h>

#include "flow_hash.h"

#define N_KEYS 4096
#define BURST 32
#define ROUNDS 2000

static struct of_flow_key keys[N_KEYS];
static uint32_t out[N_KEYS];
static uint64_t key_words[OF_HASH_KEY_WORDS];

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND do { \
	v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
	v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2; \
	v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0; \
	v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
} while (0)

static inline uint32_t
siphash13(const struct of_flow_key *key, const uint64_t *k)
{
	uint64_t v0 = 0x736f6d6570736575ULL ^ k[0], v1 = 0x646f72616e646f6dULL ^ k[1];
	uint64_t v2 = 0x6c7967656e657261ULL ^ k[0], v3 = 0x7465646279746573ULL ^ k[1];
	uint64_t w[6], last = (uint64_t)sizeof(*key) << 56, h;

	memcpy(w, key, sizeof(w));
	for (unsigned i = 0; i < 6; i++) {
		v3 ^= w[i];
		SIPROUND;
		v0 ^= w[i];
	}
	v3 ^= last;
	SIPROUND;
	v0 ^= last;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	h = v0 ^ v1 ^ v2 ^ v3;
	return (uint32_t)(h ^ (h >> 32));
}

static __attribute__((noinline)) void
burst_keyed(const struct of_flow_key *k, uint32_t *o)
{
	for (unsigned i = 0; i < BURST; i++)
		o[i] = of_flow_hash(&k[i], key_words);
}

static __attribute__((noinline)) void
burst_crc32c(const struct of_flow_key *k, uint32_t *o)
{
	for (unsigned i = 0; i < BURST; i++)
		o[i] = rte_hash_crc(&k[i], sizeof(k[i]), 0x12345678);
}

static __attribute__((noinline)) void
burst_siphash13(const struct of_flow_key *k, uint32_t *o)
{
	for (unsigned i = 0; i < BURST; i++)
		o[i] = siphash13(&k[i], key_words);
}

/* The fastest of ROUNDS passes over the keys: a pass takes tens of microseconds, so on a
 * shared machine most are not preempted, and the minimum is the hash's own cost. */
static double
cycles_per_hash(void (*burst)(const struct of_flow_key *, uint32_t *))
{
	uint64_t best = UINT64_MAX;

	for (unsigned r = 0; r < ROUNDS; r++) {
		uint64_t t = __rdtsc();

		for (unsigned i = 0; i < N_KEYS; i += BURST)
			burst(&keys[i], &out[i]);
		__asm__ volatile("" ::: "memory");
		t = __rdtsc() - t;
		if (t < best)
			best = t;
	}
	return (double)best / N_KEYS;
}

int
main(void)
{
	uint8_t secret[OF_HASH_KEY_LEN];

	for (unsigned i = 0; i < sizeof(secret); i++)
		secret[i] = (uint8_t)(i * 151 + 7);
	of_hash_key_words(secret, key_words);
	for (unsigned i = 0; i < N_KEYS; i++) {
		keys[i].vni = 7;
		keys[i].proto = 17;
		keys[i].src[10] = keys[i].src[11] = keys[i].dst[10] = keys[i].dst[11] = 0xff;
		memcpy(&keys[i].dst[12], "\x5d\xb8\xd8\x22", 4);
		keys[i].src_port = (uint16_t)(20000 + i);
		keys[i].dst_port = 443;
	}
	printf("cycles per flow hash (TSC), fastest pass over %u keys in bursts of %u:\n", N_KEYS, BURST);
	struct { const char *name; void (*burst)(const struct of_flow_key *, uint32_t *); } kinds[] = {
		{ "crc32c (before)", burst_crc32c }, { "keyed multiply-mix", burst_keyed },
		{ "siphash-1-3", burst_siphash13 },
	};
	for (unsigned k = 0; k < 3; k++)
		printf("  %-20s %6.1f\n", kinds[k].name, cycles_per_hash(kinds[k].burst));
	return 0;
}
