/* The per-thread message of the last failure (error.h). */
#include <stdarg.h>
#include <stdio.h>

#include "error.h"

static __thread char last_error[256];

void
of_set_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
}

const char *
of_last_error(void)
{
	return last_error;
}
