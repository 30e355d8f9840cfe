/*
 * CLOCK_MONOTONIC in nanoseconds: the clock of every time the control plane
 * reads from C (link changes, BFD state changes), so Python compares them
 * with time.monotonic_ns() directly.
 */
#ifndef OF_CLOCK_H
#define OF_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t
of_monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif /* OF_CLOCK_H */
