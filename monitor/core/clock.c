/* Clock readings and deadlines, one way for the whole monitor. */
#include <time.h>

#include "vm.h"

int64_t sbx_ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000ll + t->tv_nsec;
}

int64_t sbx_now_ns(clockid_t c)
{
	struct timespec t;
	if (clock_gettime(c, &t) < 0)
		return 0;
	return sbx_ts_ns(&t);
}

double sbx_ms_since(const struct timespec *t0)
{
	return (double)(sbx_now_ns(CLOCK_MONOTONIC) - sbx_ts_ns(t0)) / 1e6;
}

void sbx_deadline(struct timespec *dl, int64_t ns)
{
	int64_t at = sbx_now_ns(CLOCK_REALTIME) + (ns > 0 ? ns : 0);
	dl->tv_sec = (time_t)(at / 1000000000ll);
	dl->tv_nsec = (long)(at % 1000000000ll);
}
