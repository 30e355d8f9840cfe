/*
 * The keyed flow hash (flow_hash.h): the values tests/support/flowhash.py computes for the
 * same keys and secret, and a key that changes any bit of its input changes the hash.
 */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "flow_hash.h"

static uint64_t key_words[OF_HASH_KEY_WORDS];

/* tests/support/flowhash.py TEST_HASH_KEY: bytes 0x40..0x7f */
static void
setup(void)
{
	uint8_t secret[OF_HASH_KEY_LEN];

	for (unsigned i = 0; i < sizeof(secret); i++)
		secret[i] = (uint8_t)(0x40 + i);
	of_hash_key_words(secret, key_words);
}

static struct of_flow_key
v4_key(uint8_t proto, const uint8_t src[4], const uint8_t dst[4], uint16_t sport, uint16_t dport)
{
	struct of_flow_key k;

	memset(&k, 0, sizeof(k));
	k.vni = 7;
	k.proto = proto;
	k.src[10] = k.src[11] = k.dst[10] = k.dst[11] = 0xff;
	memcpy(&k.src[12], src, 4);
	memcpy(&k.dst[12], dst, 4);
	k.src_port = sport;
	k.dst_port = dport;
	return k;
}

static void
test_same_values_as_the_python_model(void)
{
	static const uint8_t guest[4] = { 10, 0, 0, 2 }, dst[4] = { 93, 184, 216, 34 };
	struct of_flow_key a = v4_key(17, guest, dst, 40000, 443), b = v4_key(17, guest, dst, 40001, 443);
	struct of_flow_key v6;

	setup();
	CHECK_EQ(of_flow_hash(&a, key_words), 0xfd51051fu);
	CHECK_EQ(of_flow_hash(&b, key_words), 0xe6d75b75u);
	memset(&v6, 0, sizeof(v6));
	v6.vni = 7;
	v6.proto = 6;
	v6.src[0] = 0xfd;
	v6.src[15] = 2;
	memcpy(v6.dst, "\x20\x01\x0d\xb8", 4);
	v6.dst[15] = 1;
	v6.src_port = 1;
	v6.dst_port = 2;
	CHECK_EQ(of_flow_hash(&v6, key_words), 0x38d92b3fu);
}

static void
test_every_input_bit_changes_the_hash(void)
{
	static const uint8_t guest[4] = { 10, 0, 0, 2 }, dst[4] = { 93, 184, 216, 34 };
	struct of_flow_key k = v4_key(17, guest, dst, 40000, 443);
	uint32_t h;

	setup();
	h = of_flow_hash(&k, key_words);
	for (unsigned bit = 0; bit < 8 * sizeof(k); bit++) {
		struct of_flow_key flipped = k;

		((uint8_t *)&flipped)[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		CHECK(of_flow_hash(&flipped, key_words) != h);
	}
}

RUN_TESTS(
	TEST_ENTRY(test_same_values_as_the_python_model),
	TEST_ENTRY(test_every_input_bit_changes_the_hash),
)
