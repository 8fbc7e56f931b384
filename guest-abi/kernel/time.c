/* Time is answered in the guest from the TSC, scaled with the frequency and the clock
 * readings the monitor took at boot: no exit, no ring round trip. */
#include "clock.h"
#include "kernel.h"

#define TIMER_ABSTIME 1
#define NSEC SBX_NSEC

struct k_timespec {
	int64_t sec, nsec;
};

int64_t k_now_ns(int realtime)
{
	return sbx_clock_now(BOOT, realtime);
}

long k_sys_clock_gettime(struct k_frame *f)
{
	int kind = sbx_clock_kind(f->rdi);
	if (kind < 0)
		return -EINVAL;
	if (!k_user_ok(f->rsi, sizeof(struct k_timespec)))
		return -EFAULT;
	int64_t ns = sbx_clock_ns(BOOT, kind, f->rdi);
	struct k_timespec *ts = (struct k_timespec *)f->rsi;
	ts->sec = ns / NSEC;
	ts->nsec = ns % NSEC;
	return 0;
}

long k_sys_clock_getres(struct k_frame *f)
{
	if (sbx_clock_kind(f->rdi) < 0)
		return -EINVAL;
	if (f->rsi) {
		if (!k_user_ok(f->rsi, sizeof(struct k_timespec)))
			return -EFAULT;
		struct k_timespec *ts = (struct k_timespec *)f->rsi;
		ts->sec = 0;
		ts->nsec = 1;
	}
	return 0;
}

long k_sys_gettimeofday(struct k_frame *f)
{
	if (f->rdi) {
		if (!k_user_ok(f->rdi, 16))
			return -EFAULT;
		int64_t ns = k_now_ns(1);
		int64_t *tv = (int64_t *)f->rdi;
		tv[0] = ns / NSEC;
		tv[1] = (ns % NSEC) / 1000;
	}
	if (f->rsi) {
		if (!k_user_ok(f->rsi, 8))
			return -EFAULT;
		k_memset((void *)f->rsi, 0, 8);
	}
	return 0;
}

long k_sys_time(struct k_frame *f)
{
	int64_t s = k_now_ns(1) / NSEC;
	if (f->rdi) {
		if (!k_user_ok(f->rdi, 8))
			return -EFAULT;
		*(int64_t *)f->rdi = s;
	}
	return s;
}

/* Sleeps on the host: the vCPU waits in one exit instead of spinning. */
static long sleep_until(int kind, int64_t deadline)
{
	for (;;) {
		int64_t now = k_now_ns(kind);
		if (now >= deadline)
			return 0;
		uint64_t a[1] = {(uint64_t)(deadline - now)};
		long r = k_call(SBX_CALL_SLEEP, a, 1);
		if (r < 0)
			return r;
	}
}

static long read_ts(uint64_t p, int64_t *ns)
{
	if (!k_user_ok(p, sizeof(struct k_timespec)))
		return -EFAULT;
	const struct k_timespec *ts = (const struct k_timespec *)p;
	if (ts->sec < 0 || ts->nsec < 0 || ts->nsec >= NSEC)
		return -EINVAL;
	*ns = ts->sec > (INT64_MAX / NSEC - 1) ? INT64_MAX / 2 : ts->sec * NSEC + ts->nsec;
	return 0;
}

long k_sys_nanosleep(struct k_frame *f)
{
	int64_t ns;
	long r = read_ts(f->rdi, &ns);
	if (r < 0)
		return r;
	return sleep_until(0, k_now_ns(0) + ns);
}

long k_sys_clock_nanosleep(struct k_frame *f)
{
	int kind = sbx_clock_kind(f->rdi);
	if (kind < 0 || f->rdi == SBX_CLOCK_THREAD_CPUTIME_ID)
		return -EINVAL;
	int64_t ns;
	long r = read_ts(f->rdx, &ns);
	if (r < 0)
		return r;
	int64_t deadline = (f->rsi & TIMER_ABSTIME) ? ns : k_now_ns(kind) + ns;
	return sleep_until(kind, deadline);
}
