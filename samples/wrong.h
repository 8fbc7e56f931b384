/* wrong(): a sample's failed check, "WRONG: <what>" on stdout, counted in `failures` (the
 * sample's exit status is 1 when any failed). */
#ifndef SAMPLES_WRONG_H
#define SAMPLES_WRONG_H

#include <stdarg.h>
#include <stdio.h>

static int failures;

static void wrong(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void wrong(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("WRONG: ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
	failures++;
}

#endif
