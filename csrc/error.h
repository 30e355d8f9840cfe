/*
 * Errors: a function that fails returns a negative errno and leaves a one-line
 * message for of_last_error(), per thread. A leaf: calls nothing of the data plane.
 */
#ifndef OF_ERROR_H
#define OF_ERROR_H

#include <rte_common.h>

const char *of_last_error(void);

/* Internal: the message of_last_error() returns next. */
void of_set_error(const char *fmt, ...) __rte_format_printf(1, 2);

#endif
