/* Time is answered in the guest from the TSC, scaled with the frequency and the clock
 * readings the monitor took at boot: no exit, no ring round trip. */
#include "kernel.h"

#define CLOCK_REALTIME 0
#define CLOCK_MONOTONIC 1
#define CLOCK_PROCESS_CPUTIME_ID 2
#define CLOCK_THREAD_CPUTIME_ID 3
#define CLOCK_MONOTONIC_RAW 4
#define CLOCK_REALTIME_COARSE 5
#define CLOCK_MONOTONIC_COARSE 6
#define CLOCK_BOOTTIME 7
#define TIMER_ABSTIME 1
#define NSEC 1000000000ll

struct k_timespec {
	int64_t sec, nsec;
};

static uint64_t k_mult; /* ns per tick, 32.32 fixed point */

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

int64_t k_now_ns(int realtime)
{
	if (!k_mult)
		k_mult = ((uint64_t)NSEC << 32) / (BOOT->tsc_hz ? BOOT->tsc_hz : 1);
	uint64_t d = rdtsc() - BOOT->tsc_at_boot;
	int64_t ns = (int64_t)(((unsigned __int128)d * k_mult) >> 32);
	return ns + (realtime ? BOOT->realtime_ns : BOOT->monotonic_ns);
}

/* Returns 1 for the realtime family, 0 for the monotonic family, -1 for an unknown clock. */
static int clock_kind(uint64_t id)
{
	switch (id) {
	case CLOCK_REALTIME:
	case CLOCK_REALTIME_COARSE:
		return 1;
	case CLOCK_MONOTONIC:
	case CLOCK_MONOTONIC_RAW:
	case CLOCK_MONOTONIC_COARSE:
	case CLOCK_BOOTTIME:
	case CLOCK_PROCESS_CPUTIME_ID:
	case CLOCK_THREAD_CPUTIME_ID:
		return 0;
	}
	return -1;
}

static int64_t clock_ns(int kind, uint64_t id)
{
	int64_t ns = k_now_ns(kind);
	/* The guest runs alone on its vCPU from boot on, so its CPU time is its run time. */
	if (id == CLOCK_PROCESS_CPUTIME_ID || id == CLOCK_THREAD_CPUTIME_ID)
		ns -= BOOT->monotonic_ns;
	return ns;
}

long k_sys_clock_gettime(struct k_frame *f)
{
	int kind = clock_kind(f->rdi);
	if (kind < 0)
		return -EINVAL;
	if (!k_user_ok(f->rsi, sizeof(struct k_timespec)))
		return -EFAULT;
	int64_t ns = clock_ns(kind, f->rdi);
	struct k_timespec *ts = (struct k_timespec *)f->rsi;
	ts->sec = ns / NSEC;
	ts->nsec = ns % NSEC;
	return 0;
}

long k_sys_clock_getres(struct k_frame *f)
{
	if (clock_kind(f->rdi) < 0)
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
	int kind = clock_kind(f->rdi);
	if (kind < 0 || f->rdi == CLOCK_THREAD_CPUTIME_ID)
		return -EINVAL;
	int64_t ns;
	long r = read_ts(f->rdx, &ns);
	if (r < 0)
		return r;
	int64_t deadline = (f->rsi & TIMER_ABSTIME) ? ns : k_now_ns(kind) + ns;
	return sleep_until(kind, deadline);
}
