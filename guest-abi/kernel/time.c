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
	int64_t ns = sbx_clock_ns(BOOT, kind, f->rdi);
	struct k_timespec ts = {ns / NSEC, ns % NSEC};
	return k_copy_to_user(f->rsi, &ts, sizeof(ts));
}

long k_sys_clock_getres(struct k_frame *f)
{
	if (sbx_clock_kind(f->rdi) < 0)
		return -EINVAL;
	struct k_timespec ts = {0, 1};
	return f->rsi ? k_copy_to_user(f->rsi, &ts, sizeof(ts)) : 0;
}

long k_sys_gettimeofday(struct k_frame *f)
{
	if (f->rdi) {
		int64_t ns = k_now_ns(1);
		int64_t tv[2] = {ns / NSEC, (ns % NSEC) / 1000};
		if (k_copy_to_user(f->rdi, tv, sizeof(tv)) < 0)
			return -EFAULT;
	}
	uint64_t tz = 0; /* struct timezone: UTC, no DST */
	return f->rsi ? k_copy_to_user(f->rsi, &tz, sizeof(tz)) : 0;
}

long k_sys_time(struct k_frame *f)
{
	int64_t s = k_now_ns(1) / NSEC;
	if (f->rdi && k_copy_to_user(f->rdi, &s, sizeof(s)) < 0)
		return -EFAULT;
	return s;
}

/* Sleeps on the host: the vCPU waits in one exit instead of spinning. */
static long sleep_until(int kind, int64_t deadline)
{
	for (;;) {
		int64_t now = k_now_ns(kind);
		if (now >= deadline)
			return 0;
		/* A park on this thread's own word, which a signal for it sets: the sleep then
		 * ends with EINTR and the handler runs. */
		if (k_signal_waiting())
			return -EINTR;
		uint64_t a[3] = {(uint64_t)k_kick_word(), 0, (uint64_t)(deadline - now)};
		long r = k_call_own(SBX_CALL_PARK, a, 3);
		if (r < 0)
			return r;
		if (k_thread_interrupted())
			return -EINTR;
	}
}

long k_sleep_a_while(void)
{
	return sleep_until(0, k_now_ns(0) + NSEC);
}

static long read_ts(uint64_t p, int64_t *ns)
{
	struct k_timespec ts;
	if (k_copy_from_user(&ts, p, sizeof(ts)) < 0)
		return -EFAULT;
	if (ts.sec < 0 || ts.nsec < 0 || ts.nsec >= NSEC)
		return -EINVAL;
	*ns = ts.sec > (INT64_MAX / NSEC - 1) ? INT64_MAX / 2 : ts.sec * NSEC + ts.nsec;
	return 0;
}

/* The remaining time (rem) is written when a signal cuts the sleep short. */
static long cut_short(uint64_t rem, int64_t left)
{
	if (rem) {
		if (left < 0)
			left = 0;
		struct k_timespec ts = {left / NSEC, left % NSEC};
		if (k_copy_to_user(rem, &ts, sizeof(ts)) < 0)
			return -EFAULT;
	}
	return -EINTR;
}

long k_sys_nanosleep(struct k_frame *f)
{
	int64_t ns;
	long r = read_ts(f->rdi, &ns);
	if (r < 0)
		return r;
	int64_t deadline = k_now_ns(0) + ns;
	r = sleep_until(0, deadline);
	return r == -EINTR ? cut_short(f->rsi, deadline - k_now_ns(0)) : r;
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
	r = sleep_until(kind, deadline);
	if (r == -EINTR && !(f->rsi & TIMER_ABSTIME))
		return cut_short(f->r10, deadline - k_now_ns(kind));
	return r;
}

/* alarm, setitimer and getitimer. ITIMER_REAL is the monitor's: a timer of the process that
 * goes on across execve and that fork does not copy, whose SIGALRM comes as another process's
 * kill does, into a wait or into running code. The CPU-time timers (ITIMER_VIRTUAL,
 * ITIMER_PROF: profilers) are not kept; they are counted with the missing calls. */
#define ITIMER_REAL 0
#define ITIMER_PROF 2
#define NR_SETITIMER 38
#define USEC 1000000

struct k_timeval {
	int64_t sec, usec;
};

static long itimer(int set, struct sbx_itimer *io)
{
	uint64_t a[2] = {k_kaddr((uint64_t)io), (uint64_t)set};
	return k_call_own(SBX_CALL_ITIMER, a, 2);
}

static long timeval_ns(const struct k_timeval *tv, int64_t *ns)
{
	if (tv->sec < 0 || tv->usec < 0 || tv->usec >= USEC)
		return -EINVAL;
	*ns = tv->sec > INT64_MAX / NSEC - 1 ? INT64_MAX / 2 : tv->sec * NSEC + tv->usec * 1000;
	return 0;
}

/* Rounded up: an armed timer never reads as 0. */
static struct k_timeval ns_timeval(int64_t ns)
{
	int64_t us = (ns + 999) / 1000;
	return (struct k_timeval){us / USEC, us % USEC};
}

static long itimer_out(uint64_t p, const struct sbx_itimer *t)
{
	struct k_timeval v[2] = {ns_timeval(t->interval_ns), ns_timeval(t->value_ns)};
	return p ? k_copy_to_user(p, v, sizeof(v)) : 0;
}

static long which_ok(uint64_t which)
{
	if ((int32_t)which == ITIMER_REAL)
		return 0;
	if ((uint32_t)which > ITIMER_PROF)
		return -EINVAL;
	BOOT->nosys_count[NR_SETITIMER]++;
	return -ENOSYS;
}

/* The CPU-time timers read as disarmed: none can be set. */
long k_sys_getitimer(struct k_frame *f)
{
	if ((uint32_t)f->rdi > ITIMER_PROF)
		return -EINVAL;
	struct sbx_itimer t = {0, 0};
	long r = (int32_t)f->rdi == ITIMER_REAL ? itimer(0, &t) : 0;
	return r < 0 ? r : f->rsi ? itimer_out(f->rsi, &t) : -EFAULT;
}

/* Set by this image when it arms the timer, so that a repeated run's end disarms it (one
 * exit, for programs that use one). */
static int k_alarm_set;

int k_itimer_armed(void)
{
	struct sbx_itimer t = {0, 0};
	return itimer(0, &t) == 0 && t.value_ns != 0;
}

void k_itimer_disarm(void)
{
	if (!k_alarm_set)
		return;
	struct sbx_itimer t = {0, 0};
	itimer(1, &t);
	k_alarm_set = 0;
}

long k_sys_setitimer(struct k_frame *f)
{
	long r = which_ok(f->rdi);
	if (r < 0)
		return r;
	/* No new value disarms it, as Linux takes it. */
	struct k_timeval v[2] = {{0, 0}, {0, 0}};
	if (f->rsi && k_copy_from_user(v, f->rsi, sizeof(v)) < 0)
		return -EFAULT;
	struct sbx_itimer t;
	if ((r = timeval_ns(&v[0], &t.interval_ns)) < 0 || (r = timeval_ns(&v[1], &t.value_ns)) < 0)
		return r;
	if (f->rdx && !k_user_ok(f->rdx, sizeof(v), K_WRITE))
		return -EFAULT;
	k_alarm_set |= t.value_ns != 0;
	if ((r = itimer(1, &t)) < 0)
		return r;
	return itimer_out(f->rdx, &t);
}

/* The seconds left of the previous alarm, rounded to the nearest and never 0 for one armed. */
long k_sys_alarm(struct k_frame *f)
{
	struct sbx_itimer t = {(int64_t)(uint32_t)f->rdi * NSEC, 0};
	k_alarm_set |= t.value_ns != 0;
	long r = itimer(1, &t);
	if (r < 0)
		return r;
	int64_t s = (t.value_ns + NSEC / 2) / NSEC;
	return t.value_ns && !s ? 1 : s;
}
