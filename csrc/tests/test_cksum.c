/*
 * of_raw_cksum_mbuf (cksum.h): the sum over a chain of segments equals the
 * sum over the same bytes in one piece, wherever the chain is split and
 * wherever the sum starts, odd offsets included.
 */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "cksum.h"

#define MAX_LEN 96

/* RFC 1071 over bytes in network order, byte by byte, apart from the code under test. */
static uint16_t
reference_sum(const uint8_t *b, uint32_t len)
{
	uint32_t sum = 0;

	for (uint32_t i = 0; i < len; i += 2)
		sum += (uint32_t)b[i] << 8 | (i + 1 < len ? b[i + 1] : 0);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* Segments over data[0..len) split at a and b (a <= b), on mbufs that live on the stack. */
static void
chain(struct rte_mbuf seg[3], uint8_t *data, uint32_t len, uint32_t a, uint32_t b)
{
	const uint32_t ends[3] = { a, b, len };
	uint32_t start = 0;

	memset(seg, 0, 3 * sizeof(seg[0]));
	for (int i = 0; i < 3; i++) {
		seg[i].buf_addr = data + start;
		seg[i].data_off = 0;
		seg[i].data_len = (uint16_t)(ends[i] - start);
		seg[i].next = i < 2 ? &seg[i + 1] : NULL;
		start = ends[i];
	}
	seg[0].pkt_len = len;
	seg[0].nb_segs = 3;
}

/* Bytes that make every partial sum carry: the checksum 22.11's rte_raw_cksum_mbuf gets wrong. */
static void
test_every_split_and_offset(void)
{
	uint8_t data[MAX_LEN];
	struct rte_mbuf seg[3];
	uint16_t raw;

	for (uint32_t i = 0; i < MAX_LEN; i++)
		data[i] = (uint8_t)(0xff - (i * 7 % 13));
	for (uint32_t len = 1; len <= MAX_LEN; len += 5)
		for (uint32_t a = 0; a <= len; a++)
			for (uint32_t b = a; b <= len; b += 3)
				for (uint32_t off = 0; off < 4 && off < len; off++) {
					chain(seg, data, len, a, b);
					CHECK_EQ(of_raw_cksum_mbuf(seg, off, len - off, &raw), 0);
					CHECK_EQ(rte_cpu_to_be_16(raw), reference_sum(data + off, len - off));
				}
}

/* The frame the fuzzer found: a first segment of 175 bytes, the sum starting at byte 54. */
static void
test_odd_first_segment(void)
{
	uint8_t data[915];
	struct rte_mbuf seg[3];
	uint16_t raw;

	memset(data, 0xff, sizeof(data));
	chain(seg, data, sizeof(data), 175, 175);
	CHECK_EQ(of_raw_cksum_mbuf(seg, 54, sizeof(data) - 54, &raw), 0);
	CHECK_EQ(rte_cpu_to_be_16(raw), reference_sum(data + 54, sizeof(data) - 54));
}

static void
test_shorter_than_asked(void)
{
	uint8_t data[40] = { 0 };
	struct rte_mbuf seg[3];
	uint16_t raw;

	chain(seg, data, sizeof(data), 10, 20);
	CHECK_EQ(of_raw_cksum_mbuf(seg, 8, 33, &raw), -1);
	CHECK_EQ(of_raw_cksum_mbuf(seg, 8, 32, &raw), 0);
}

RUN_TESTS(TEST_ENTRY(test_every_split_and_offset), TEST_ENTRY(test_odd_first_segment),
	  TEST_ENTRY(test_shorter_than_asked))
