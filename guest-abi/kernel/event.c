/* Pipes, eventfds and epoll: the monitor makes them as host objects behind handles (its
 * hc_event.c), so waits on them are the host's and other threads' writes wake them. The kernel
 * checks the program's pointers and copies through its own stack. */
#include "clock.h"
#include "kernel.h"

#define O_NONBLOCK 04000
#define O_CLOEXEC 02000000
#define O_DIRECT 040000
#define EFD_SEMAPHORE 1
#define EPOLL_CTL_DEL 2
#define EPOLL_EVENT_BYTES 12 /* struct epoll_event is packed on x86-64 */
#define INT32_MAX_ 0x7fffffffll

static long make_pipe(uint64_t p, uint64_t flags)
{
	if (flags & ~(uint64_t)(O_CLOEXEC | O_NONBLOCK | O_DIRECT))
		return -EINVAL;
	if (!k_user_ok(p, 8, K_WRITE))
		return -EFAULT;
	uint64_t a[1] = {flags};
	return k_put_fd_pair(p, k_call(SBX_CALL_PIPE, a, 1));
}

long k_put_fd_pair(uint64_t p, long r)
{
	if (r < 0)
		return r;
	int32_t fds[2] = {(int32_t)(r & 0xffffffff), (int32_t)(r >> 32)};
	if (k_copy_to_user(p, fds, sizeof(fds)) < 0) {
		/* Another thread unmapped the array meanwhile: no descriptors it cannot name. */
		for (int i = 0; i < 2; i++) {
			uint64_t c[1] = {(uint64_t)fds[i]};
			k_call(SBX_CALL_CLOSE, c, 1);
		}
		return -EFAULT;
	}
	return 0;
}

long k_sys_pipe(struct k_frame *f)
{
	return make_pipe(f->rdi, 0);
}

long k_sys_pipe2(struct k_frame *f)
{
	return make_pipe(f->rdi, f->rsi);
}

long k_sys_eventfd(struct k_frame *f)
{
	uint64_t a[2] = {(uint32_t)f->rdi, 0};
	return k_call(SBX_CALL_EVENTFD, a, 2);
}

long k_sys_eventfd2(struct k_frame *f)
{
	uint64_t a[2] = {(uint32_t)f->rdi, (uint32_t)f->rsi};
	return k_call(SBX_CALL_EVENTFD, a, 2);
}

/* timerfds are host timerfds (ABI 1.13): a read, poll or epoll of one is the host's. The
 * kernel converts between the program's struct itimerspec and nanoseconds; an absolute time is
 * on the guest's clocks, which the monitor turns into the host's. */
#define TFD_TIMER_ABSTIME 1

struct k_itimerspec {
	int64_t interval_sec, interval_nsec, value_sec, value_nsec;
};

static int spec_ns(int64_t sec, int64_t nsec, int64_t *ns)
{
	if (sec < 0 || nsec < 0 || nsec >= SBX_NSEC)
		return -EINVAL;
	*ns = sec > (INT64_MAX - nsec) / SBX_NSEC ? INT64_MAX : sec * SBX_NSEC + nsec;
	return 0;
}

long k_itimerspec_in(uint64_t uaddr, struct sbx_itimer *t)
{
	struct k_itimerspec in;
	if (k_copy_from_user(&in, uaddr, sizeof(in)) < 0)
		return -EFAULT;
	if (spec_ns(in.value_sec, in.value_nsec, &t->value_ns) < 0 ||
	    spec_ns(in.interval_sec, in.interval_nsec, &t->interval_ns) < 0)
		return -EINVAL;
	return 0;
}

long k_itimerspec_out(uint64_t uaddr, const struct sbx_itimer *t)
{
	struct k_itimerspec o = {t->interval_ns / SBX_NSEC, t->interval_ns % SBX_NSEC,
				 t->value_ns / SBX_NSEC, t->value_ns % SBX_NSEC};
	return k_copy_to_user(uaddr, &o, sizeof(o)) < 0 ? -EFAULT : 0;
}

long k_sys_timerfd_create(struct k_frame *f)
{
	uint64_t a[3] = {SBX_TIMERFD_CREATE, (uint64_t)(int64_t)(int32_t)f->rdi, (uint32_t)f->rsi};
	return k_call(SBX_CALL_TIMERFD, a, 3);
}

long k_sys_timerfd_settime(struct k_frame *f)
{
	struct sbx_itimer t;
	long r = k_itimerspec_in(f->rdx, &t);
	if (r < 0)
		return r;
	uint64_t a[6] = {SBX_TIMERFD_SETTIME,	(uint64_t)(int64_t)(int32_t)f->rdi,
			 (uint32_t)f->rsi,	k_kaddr((uint64_t)&t),
			 (uint64_t)k_now_ns(0), (uint64_t)k_now_ns(1)};
	r = k_call(SBX_CALL_TIMERFD, a, 6);
	if (r < 0 || !f->r10)
		return r;
	return k_itimerspec_out(f->r10, &t);
}

long k_sys_timerfd_gettime(struct k_frame *f)
{
	struct sbx_itimer t = {0, 0};
	uint64_t a[4] = {SBX_TIMERFD_GETTIME, (uint64_t)(int64_t)(int32_t)f->rdi, 0,
			 k_kaddr((uint64_t)&t)};
	long r = k_call(SBX_CALL_TIMERFD, a, 4);
	return r < 0 ? r : k_itimerspec_out(f->rsi, &t);
}

long k_sys_epoll_create(struct k_frame *f)
{
	if ((int32_t)f->rdi <= 0)
		return -EINVAL;
	uint64_t a[1] = {0};
	return k_call(SBX_CALL_EPOLL_CREATE, a, 1);
}

long k_sys_epoll_create1(struct k_frame *f)
{
	uint64_t a[1] = {(uint32_t)f->rdi};
	return k_call(SBX_CALL_EPOLL_CREATE, a, 1);
}

long k_sys_epoll_ctl(struct k_frame *f)
{
	struct {
		uint32_t events;
		uint32_t data_lo, data_hi; /* packed: data is not 8-byte aligned */
	} ev = {0, 0, 0};
	/* DEL reads no event (Linux before 2.6.9 wanted one; NULL is fine since). */
	if ((uint32_t)f->rsi != EPOLL_CTL_DEL && k_copy_from_user(&ev, f->r10, sizeof(ev)) < 0)
		return -EFAULT;
	uint64_t a[5] = {(uint64_t)(int64_t)(int32_t)f->rdi, (uint32_t)f->rsi,
			 (uint64_t)(int64_t)(int32_t)f->rdx, ev.events,
			 ev.data_lo | (uint64_t)ev.data_hi << 32};
	return k_call(SBX_CALL_EPOLL_CTL, a, 5);
}

/* Up to SBX_EPOLL_BATCH events at a time, through this vCPU's stack (a wait goes without the
 * big kernel lock when there are threads); the rest stay ready on the host for the next call,
 * as Linux returns at most maxevents. */
static long wait_events(uint64_t epfd, uint64_t events, uint64_t maxevents, int64_t ms)
{
	int32_t max = (int32_t)maxevents;
	if (max <= 0 || max > INT32_MAX_ / EPOLL_EVENT_BYTES)
		return -EINVAL;
	/* Checked first: the host hands events out before the copy, and an edge-triggered one
	 * lost to a failed copy would not come again (Linux puts them back). */
	if (!k_user_ok(events, (uint64_t)max * EPOLL_EVENT_BYTES, K_WRITE))
		return -EFAULT;
	uint8_t buf[SBX_EPOLL_BATCH * EPOLL_EVENT_BYTES];
	uint64_t n = max < SBX_EPOLL_BATCH ? (uint64_t)max : SBX_EPOLL_BATCH;
	uint64_t a[4] = {(uint64_t)(int64_t)(int32_t)epfd, k_kaddr((uint64_t)buf), n, (uint64_t)ms};
	long r = k_call_wait_ms(SBX_CALL_EPOLL_WAIT, a, 4, 3);
	if (r > 0 && k_copy_to_user(events, buf, (uint64_t)r * EPOLL_EVENT_BYTES) < 0)
		return -EFAULT;
	return r;
}

long k_sys_epoll_wait(struct k_frame *f)
{
	return wait_events(f->rdi, f->rsi, f->rdx, (int32_t)f->r10);
}

static long pwait(struct k_frame *f, int64_t ms)
{
	return wait_events(f->rdi, f->rsi, f->rdx, ms);
}

long k_sys_epoll_pwait(struct k_frame *f)
{
	return k_wait_masked(f, f->r8, f->r9, (int32_t)f->r10, pwait);
}

long k_sys_epoll_pwait2(struct k_frame *f)
{
	int64_t ms;
	long r = k_ts_to_ms(f->r10, &ms);
	return r < 0 ? r : k_wait_masked(f, f->r8, f->r9, ms, pwait);
}
