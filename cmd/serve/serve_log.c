/* sandbox-serve's log: one line a message, "sandbox-serve: " first, whole lines from any
 * thread. */
#include <stdarg.h>

#include "serve.h"

void serve_vlogf(FILE *log, const char *fmt, va_list ap)
{
	flockfile(log);
	fputs("sandbox-serve: ", log);
	vfprintf(log, fmt, ap);
	fputc('\n', log);
	funlockfile(log);
	fflush(log);
}

void serve_logf(FILE *log, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	serve_vlogf(log, fmt, ap);
	va_end(ap);
}
