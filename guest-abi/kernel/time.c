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

/* The CPU-time clock of a thread or process by its id (pthread_getcpuclockid,
 * clock_getcpuclockid: a negative id, ~pid << 3 | thread 4 | PROF 0, VIRT 1 or SCHED 2): the
 * caller's own thread or process reads as CLOCK_THREAD_CPUTIME_ID or CLOCK_PROCESS_CPUTIME_ID;
 * any other id is left as it is (EINVAL: the other threads' clocks are not kept apart). */
static uint64_t own_cpu_clock(uint64_t id)
{
	int32_t c = (int32_t)id;
	if (c >= 0 || (c & 3) == 3)
		return id;
	uint32_t pid = (uint32_t) ~(c >> 3);
	if ((c & 4) && pid == K_CPU_TID)
		return SBX_CLOCK_THREAD_CPUTIME_ID;
	if (!(c & 4) && pid == BOOT->pid)
		return SBX_CLOCK_PROCESS_CPUTIME_ID;
	return id;
}

long k_sys_clock_gettime(struct k_frame *f)
{
	uint64_t id = own_cpu_clock(f->rdi);
	int kind = sbx_clock_kind(id);
	if (kind < 0)
		return -EINVAL;
	int64_t ns = sbx_clock_ns(BOOT, kind, id);
	struct k_timespec ts = {ns / NSEC, ns % NSEC};
	return k_copy_to_user(f->rsi, &ts, sizeof(ts));
}

long k_sys_clock_getres(struct k_frame *f)
{
	if (sbx_clock_kind(own_cpu_clock(f->rdi)) < 0)
		return -EINVAL;
	struct k_timespec ts = {0, 1};
	return f->rsi ? k_copy_to_user(f->rsi, &ts, sizeof(ts)) : 0;
}

/* Setting the clock takes CAP_SYS_TIME, which a sandboxed program lacks: EPERM for the one
 * clock that can be set, EINVAL for the others, as Linux answers after reading the time. */
long k_sys_clock_settime(struct k_frame *f)
{
	struct k_timespec ts;
	if (sbx_clock_kind(own_cpu_clock(f->rdi)) < 0)
		return -EINVAL;
	if (k_copy_from_user(&ts, f->rsi, sizeof(ts)) < 0)
		return -EFAULT;
	if ((int32_t)f->rdi != SBX_CLOCK_REALTIME || ts.sec < 0 || ts.nsec < 0 || ts.nsec >= NSEC)
		return -EINVAL;
	return -EPERM;
}

long k_sys_settimeofday(struct k_frame *f)
{
	int64_t tv[2], tz[2];
	if (f->rdi && k_copy_from_user(tv, f->rdi, sizeof(tv)) < 0)
		return -EFAULT;
	if (f->rsi && k_copy_from_user(tz, f->rsi, sizeof(tz)) < 0)
		return -EFAULT;
	return f->rdi || f->rsi ? -EPERM : 0;
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

static int ptimers_signal(void);
static void ptimers_disarm(void);

/* A timer whose signal may come: the alarm, or a POSIX timer with a signal. */
int k_itimer_armed(void)
{
	struct sbx_itimer t = {0, 0};
	return ptimers_signal() || (itimer(0, &t) == 0 && t.value_ns != 0);
}

void k_itimer_disarm(void)
{
	ptimers_disarm();
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

/* POSIX timers (timer_create): the monitor's keeper fires them as it fires ITIMER_REAL, each
 * with its own signal, si_code SI_TIMER, its id and si_value's int; this kernel keeps each
 * one's clock and notification. GHC's runtime ticks on one. Only a signal to the process (or
 * none) is kept: SIGEV_THREAD_ID, glibc's way to SIGEV_THREAD, needs a thread target and
 * si_value's whole pointer, which the monitor does not carry (counted, EINVAL). They end at
 * execve and a fork's child has none, as on Linux. */
#define SIGEV_SIGNAL 0
#define SIGEV_NONE 1
#define SIGEV_THREAD_ID 4
#define K_SIGALRM 14
#define K_CLOCK_REALTIME_ALARM 8
#define K_CLOCK_BOOTTIME_ALARM 9
#define NR_TIMER_CREATE 222

struct k_sigevent {
	uint64_t value;
	int32_t signo, notify;
};

static struct k_ptimer {
	int used;
	int kind; /* sbx_clock_kind: 1 real time */
	uint32_t signo, value;
} k_ptimers[SBX_PTIMERS];

void k_ptimers_forget(void)
{
	k_memset(k_ptimers, 0, sizeof(k_ptimers));
}

static long ptimer(int set, unsigned id, struct sbx_itimer *io)
{
	uint64_t a[5] = {k_kaddr((uint64_t)io), (uint64_t)set, id + 1, k_ptimers[id].signo,
			 k_ptimers[id].value};
	return k_call_own(SBX_CALL_ITIMER, a, 5);
}

static int ptimers_signal(void)
{
	for (unsigned i = 0; i < SBX_PTIMERS; i++)
		if (k_ptimers[i].used && k_ptimers[i].signo)
			return 1;
	return 0;
}

/* A repeated run's end: no signal into the parked process or the next run. */
static void ptimers_disarm(void)
{
	for (unsigned i = 0; i < SBX_PTIMERS; i++) {
		struct sbx_itimer t = {0, 0};
		if (k_ptimers[i].used)
			ptimer(1, i, &t);
	}
}

static struct k_ptimer *ptimer_of(uint64_t id)
{
	return (uint64_t)(int64_t)(int32_t)id < SBX_PTIMERS && k_ptimers[(uint32_t)id].used
		   ? &k_ptimers[(uint32_t)id]
		   : 0;
}

long k_sys_timer_create(struct k_frame *f)
{
	int32_t clock = (int32_t)f->rdi;
	if (clock == K_CLOCK_REALTIME_ALARM || clock == K_CLOCK_BOOTTIME_ALARM)
		return -EPERM;
	/* CPU-time clocks (a profiler's) are not kept: counted with the missing calls. */
	if (clock == SBX_CLOCK_PROCESS_CPUTIME_ID || clock == SBX_CLOCK_THREAD_CPUTIME_ID ||
	    clock < 0) {
		BOOT->nosys_count[NR_TIMER_CREATE]++;
		return -EINVAL;
	}
	if (clock != SBX_CLOCK_REALTIME && clock != SBX_CLOCK_MONOTONIC &&
	    clock != SBX_CLOCK_BOOTTIME)
		return -EINVAL;
	struct k_sigevent ev = {0, K_SIGALRM, SIGEV_SIGNAL};
	if (f->rsi && k_copy_from_user(&ev, f->rsi, sizeof(ev)) < 0)
		return -EFAULT;
	if (ev.notify == SIGEV_THREAD_ID) {
		BOOT->nosys_count[NR_TIMER_CREATE]++;
		return -EINVAL;
	}
	if ((ev.notify != SIGEV_SIGNAL && ev.notify != SIGEV_NONE) ||
	    (ev.notify == SIGEV_SIGNAL && (ev.signo < 1 || ev.signo > 64)))
		return -EINVAL;
	unsigned id = 0;
	while (id < SBX_PTIMERS && k_ptimers[id].used)
		id++;
	if (id == SBX_PTIMERS)
		return -EAGAIN;
	int32_t out = (int32_t)id;
	if (k_copy_to_user(f->rdx, &out, sizeof(out)) < 0)
		return -EFAULT;
	k_ptimers[id] = (struct k_ptimer){1, sbx_clock_kind((uint64_t)(int64_t)clock),
					  ev.notify == SIGEV_NONE ? 0 : (uint32_t)ev.signo,
					  f->rsi ? (uint32_t)ev.value : id};
	/* Disarmed, whatever a delete racing another thread left in the monitor's slot. */
	struct sbx_itimer t = {0, 0};
	return ptimer(1, id, &t) < 0 ? -EAGAIN : 0;
}

long k_sys_timer_settime(struct k_frame *f)
{
	struct k_ptimer *p = ptimer_of(f->rdi);
	if (!p)
		return -EINVAL;
	if (!f->rdx)
		return -EINVAL; /* Linux ignores flags it does not know */
	struct sbx_itimer t;
	long r = k_itimerspec_in(f->rdx, &t);
	if (r < 0)
		return r;
	if ((f->rsi & TIMER_ABSTIME) && t.value_ns) {
		int64_t now = k_now_ns(p->kind), rel;
		if (__builtin_sub_overflow(t.value_ns, now, &rel))
			rel = INT64_MAX;
		t.value_ns = rel > 0 ? rel : 1; /* gone by: at once */
	}
	if ((r = ptimer(1, (unsigned)(p - k_ptimers), &t)) < 0)
		return r;
	return f->r10 ? k_itimerspec_out(f->r10, &t) : 0;
}

long k_sys_timer_gettime(struct k_frame *f)
{
	struct k_ptimer *p = ptimer_of(f->rdi);
	if (!p)
		return -EINVAL;
	struct sbx_itimer t = {0, 0};
	long r = ptimer(0, (unsigned)(p - k_ptimers), &t);
	return r < 0 ? r : k_itimerspec_out(f->rsi, &t);
}

/* The keeper sends one signal for the ticks missed and does not count them. */
long k_sys_timer_getoverrun(struct k_frame *f)
{
	return ptimer_of(f->rdi) ? 0 : -EINVAL;
}

long k_sys_timer_delete(struct k_frame *f)
{
	struct k_ptimer *p = ptimer_of(f->rdi);
	if (!p)
		return -EINVAL;
	/* Free first: the call lets the kernel's lock go, and no other thread may arm it. */
	p->used = 0;
	struct sbx_itimer t = {0, 0};
	ptimer(1, (unsigned)(p - k_ptimers), &t);
	return 0;
}
