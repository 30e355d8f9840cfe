/*
 * opte-fast: the data plane's public interface, for the Cython bindings.
 *
 * One control thread (the caller of everything here) is the single writer
 * of the forwarding tables; worker lcores only read them. Functions return
 * 0 or a negative errno and leave a message for of_last_error().
 *
 * This header is the life cycle (dataplane.c); the interface's other parts
 * have a header each, included here, so that a file below the life cycle
 * includes only the part it implements or calls.
 */
#ifndef OPTE_FAST_H
#define OPTE_FAST_H

#include <stdint.h>

#include "builder.h"
#include "capture.h"
#include "dp_types.h"
#include "error.h"
#include "inspect.h"
#include "link.h"
#include "memory.h"
#include "port.h"
#include "ring_io.h"
#include "telemetry.h"
#include "trace.h"

/* EAL: once per process; a second call fails with -EALREADY. */
int of_eal_init(int argc, char **argv);
int of_eal_cleanup(void);
uint64_t of_tsc_hz(void);

struct of_dp *of_dp_create(const struct of_dp_config *cfg);
void of_dp_destroy(struct of_dp *dp);	/* stops, closes ports, frees */

/* Workers: configure and start every port, launch the poll loop on each lcore. */
int of_dp_start(struct of_dp *dp, const unsigned *lcores, unsigned n_lcores);
int of_dp_stop(struct of_dp *dp);	/* waits for the lcores, flushes, stops ports */
/* Wait until every worker has finished the loop iteration it is in (its frames flushed). */
void of_dp_quiesce(struct of_dp *dp);

#endif
