/*
 * A minimal test harness for the C units, built with ASan and UBSan by
 * ci/c-tests.sh. Each test file defines TESTS(...) and gets a main() that
 * runs them and prints the closing line "N passed, N failed".
 */
#ifndef OF_CHECK_H
#define OF_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures;

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
		check_failures++; \
	} \
} while (0)

#define CHECK_EQ(a, b) do { \
	long long check_a_ = (long long)(a), check_b_ = (long long)(b); \
	if (check_a_ != check_b_) { \
		fprintf(stderr, "%s:%d: CHECK_EQ(%s, %s) failed: %lld != %lld\n", \
			__FILE__, __LINE__, #a, #b, check_a_, check_b_); \
		check_failures++; \
	} \
} while (0)

#define CHECK_MEM(a, b, n) do { \
	if (memcmp((a), (b), (n)) != 0) { \
		fprintf(stderr, "%s:%d: CHECK_MEM(%s, %s, %s) failed\n", \
			__FILE__, __LINE__, #a, #b, #n); \
		check_failures++; \
	} \
} while (0)

typedef void (*check_test_fn)(void);
struct check_test { const char *name; check_test_fn fn; };

#define TEST_ENTRY(fn) { #fn, fn }
#define RUN_TESTS(...) \
int main(void) \
{ \
	static const struct check_test tests_[] = { __VA_ARGS__ }; \
	int passed = 0, failed = 0; \
	for (size_t i = 0; i < sizeof(tests_) / sizeof(tests_[0]); i++) { \
		int before = check_failures; \
		tests_[i].fn(); \
		if (check_failures == before) { passed++; } \
		else { failed++; fprintf(stderr, "FAIL %s\n", tests_[i].name); } \
	} \
	printf("%d passed, %d failed\n", passed, failed); \
	return failed ? 1 : 0; \
}

#endif
