/*
 * The flow hash: a keyed multiply-mix over the 48-byte flow key.
 *
 * Every path choice (TEP bucket, nexthop bucket, worker, UDP source port,
 * flow label) comes from this hash, so a tenant who could predict it could
 * put all its flows on one switch. The key is secret (random at first
 * start, kept under --state-dir), and the hash is the 48-byte block of
 * wyhash (as in Go's seeded map hash): each pair of key words, each xored
 * with its own secret word, is multiplied 64x64->128 and folded; the three
 * folds are xored and mixed once more. Unlike a CRC it is not linear, so
 * flows that differ by one port do not land on predictable buckets.
 * SipHash-1-3 would be the cryptographic choice but costs about 45 cycles
 * a flow against about 5 more than CRC32C for this (bench/flow_hash.c).
 */
#ifndef OF_FLOW_HASH_H
#define OF_FLOW_HASH_H

#include <stdint.h>
#include <string.h>

#include "flow_key.h"
#include "dp_types.h"

#define OF_HASH_KEY_WORDS (OF_HASH_KEY_LEN / 8)

static inline uint64_t
of_mum(uint64_t a, uint64_t b)
{
	__uint128_t r = (__uint128_t)a * b;

	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* k: OF_HASH_KEY_WORDS secret words, the last one odd (of_hash_key_words). */
static inline uint32_t
of_flow_hash(const struct of_flow_key *key, const uint64_t *k)
{
	const uint8_t *b = (const uint8_t *)key;
	uint64_t w[6];
	uint64_t h;

	/* Word by word, straight into registers: one 48-byte memcpy went through the stack. */
	for (unsigned i = 0; i < 6; i++)
		memcpy(&w[i], b + 8 * i, sizeof(w[i]));
	h = of_mum(w[0] ^ k[0], w[1] ^ k[1]) ^ of_mum(w[2] ^ k[2], w[3] ^ k[3]) ^ of_mum(w[4] ^ k[4], w[5] ^ k[5]);
	h = of_mum(h ^ k[6], k[7]);
	return (uint32_t)(h ^ (h >> 32));
}

/* The key's bytes as words, little-endian; the last one made odd so the final multiply loses no bit. */
static inline void
of_hash_key_words(const uint8_t bytes[OF_HASH_KEY_LEN], uint64_t *k)
{
	for (unsigned i = 0; i < OF_HASH_KEY_WORDS; i++) {
		k[i] = 0;
		for (unsigned j = 0; j < 8; j++)
			k[i] |= (uint64_t)bytes[8 * i + j] << (8 * j);
	}
	k[OF_HASH_KEY_WORDS - 1] |= 1;
}

_Static_assert(sizeof(struct of_flow_key) == 6 * sizeof(uint64_t), "the hash reads the key as six words");
_Static_assert(OF_HASH_KEY_WORDS == 8, "six key words, one to mix, one to multiply");

#endif
