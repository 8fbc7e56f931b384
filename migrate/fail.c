/* The one-line error of every migrate/ function. */
#include <stdarg.h>
#include <stdio.h>

#include "mig_internal.h"

int mig_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
		/* One line, whatever a caller-supplied string, host name or path held. */
		for (char *p = err; *p; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
	}
	return rc;
}
