/* Named counters: the enum and name tables generated from counters.def. */
#ifndef OF_COUNTERS_H
#define OF_COUNTERS_H

#include <stdint.h>

enum of_counter {
	OF_OK = -1,	/* not a counter: "no drop" as a return value */
#define OF_COUNTER(id, name, help) OF_C_##id,
#include "counters.def"
	OF_N_COUNTERS
};

extern const char *const of_counter_names[OF_N_COUNTERS];
extern const char *const of_counter_help[OF_N_COUNTERS];
extern const uint8_t of_counter_is_drop[OF_N_COUNTERS];

#endif
