/* step(): prints "what: ok" or "what: ENAME" (errname.h) for a sample's checks, counts the
 * failures in step_failures, and returns ok. */
#ifndef SAMPLES_STEP_H
#define SAMPLES_STEP_H

#include <stdio.h>

#include "errname.h"

static int step_failures;

static inline int step(const char *what, int ok)
{
	printf("%s: %s\n", what, ok ? "ok" : errname(errno));
	if (!ok)
		step_failures++;
	return ok;
}

#endif
