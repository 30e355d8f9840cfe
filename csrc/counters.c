#include "counters.h"

const char *const of_counter_names[OF_N_COUNTERS] = {
#define OF_COUNTER(id, name, help) [OF_C_##id] = name,
#include "counters.def"
};

const char *const of_counter_help[OF_N_COUNTERS] = {
#define OF_COUNTER(id, name, help) [OF_C_##id] = help,
#include "counters.def"
};

const uint8_t of_counter_is_drop[OF_N_COUNTERS] = {
#define OF_COUNTER(id, name, help) [OF_C_##id] = 0,
#define OF_DROP(id, name, help) [OF_C_##id] = 1,
#include "counters.def"
};
