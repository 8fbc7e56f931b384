/* Pipes, eventfds, timerfds and epoll instances: host objects behind handles. A wait on them is the
 * host's own, so a thread blocked in epoll_wait wakes when another writes the eventfd without
 * the monitor relaying anything; Go's netpoller and a program's pipes between its threads
 * work as they do natively. Their bytes never leave the sandbox: no output limit counts them,
 * and no path reopens them (snapshots refuse them, state.c). */
#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "calls.h"

const char *sbx_handle_obj_name(enum sbx_handle_obj o)
{
	switch (o) {
	case SBX_O_PIPE:
		return "a pipe";
	case SBX_O_EVENTFD:
		return "an eventfd";
	case SBX_O_EPOLL:
		return "an epoll instance";
	case SBX_O_SOCKET:
		return "a socket";
	case SBX_O_TIMERFD:
		return "a timerfd";
	case SBX_O_MEMFD:
		return "a memfd";
	case SBX_O_INOTIFY:
		return "an inotify instance";
	case SBX_O_PTY:
		return "a pseudo-terminal";
	case SBX_O_SIGNALFD:
		return "a signalfd";
	case SBX_O_USOCK:
		return "a socket of socket() (local, or of the loopback)";
	default:
		return "a file";
	}
}

/* A guest handle for host fd `fd` (which it takes over): its number, or -errno (fd closed). */
int64_t sbx_handle_add(struct sbx_vm *vm, int fd, enum sbx_handle_obj obj, int cloexec,
		       int writable)
{
	int n = sbx_fd_alloc(vm, 0);
	if (n < 0) {
		close(fd);
		return n;
	}
	vm->proc.files->fds[n] = (struct sbx_handle){.kind = SBX_H_HOST,
						     .fd = fd,
						     .oid = ++vm->proc.files->next_oid,
						     .obj = obj,
						     .cloexec = cloexec,
						     .writable = writable,
						     .stdio = -1,
						     .may_block = obj == SBX_O_EPOLL ? 1 : 2};
	return n;
}

int64_t sbx_hc_pipe(struct sbx_vm *vm, const struct sbx_slot *s)
{
	uint64_t fl = s->u.a[0];
	if (fl & ~(uint64_t)(O_CLOEXEC | O_NONBLOCK | O_DIRECT))
		return -EINVAL;
	int p[2];
	if (pipe2(p, O_CLOEXEC | (int)(fl & (O_NONBLOCK | O_DIRECT))) < 0)
		return -errno;
	return sbx_handle_add_pair(vm, p, SBX_O_PIPE, (fl & O_CLOEXEC) != 0, 0);
}

int64_t sbx_handle_add_pair(struct sbx_vm *vm, const int p[2], enum sbx_handle_obj obj, int cloexec,
			    int first_writable)
{
	int64_t a = sbx_handle_add(vm, p[0], obj, cloexec, first_writable);
	if (a < 0) {
		close(p[1]);
		return a;
	}
	int64_t b = sbx_handle_add(vm, p[1], obj, cloexec, 1);
	if (b < 0) {
		sbx_fd_release(vm, (int)a);
		return b;
	}
	/* One object, two ends (a socket pair's; a pipe is known by its inode). */
	vm->proc.files->fds[b].oid = vm->proc.files->fds[a].oid;
	vm->proc.files->fds[b].end = 1;
	return a | b << 32;
}

int64_t sbx_hc_eventfd(struct sbx_vm *vm, const struct sbx_slot *s)
{
	uint64_t init = s->u.a[0], fl = s->u.a[1];
	if (init > UINT32_MAX || fl & ~(uint64_t)(EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE))
		return -EINVAL;
	int fd = eventfd((unsigned)init, EFD_CLOEXEC | (int)(fl & (EFD_NONBLOCK | EFD_SEMAPHORE)));
	if (fd < 0)
		return -errno;
	int64_t n = sbx_handle_add(vm, fd, SBX_O_EVENTFD, (fl & EFD_CLOEXEC) != 0, 1);
	if (n >= 0)
		vm->proc.files->fds[n].sema = (fl & EFD_SEMAPHORE) != 0;
	return n;
}

static struct timespec ns_ts(int64_t ns)
{
	return (struct timespec){.tv_sec = ns / 1000000000ll, .tv_nsec = ns % 1000000000ll};
}

static int64_t sat_add(int64_t a, int64_t b)
{
	int64_t r;
	return !__builtin_add_overflow(a, b, &r) ? r : b > 0 ? INT64_MAX : INT64_MIN;
}

/* The host's times fit: it gives none past its own limits. */
static int64_t ts_ns(struct timespec t)
{
	int64_t ns;
	if (__builtin_mul_overflow((int64_t)t.tv_sec, 1000000000ll, &ns))
		return INT64_MAX;
	return sat_add(ns, t.tv_nsec);
}

static int64_t timerfd_create_(struct sbx_vm *vm, uint64_t clock, uint64_t fl)
{
	if (fl & ~(uint64_t)(TFD_CLOEXEC | TFD_NONBLOCK))
		return -EINVAL;
	/* The alarm clocks wake a suspended machine: CAP_WAKE_ALARM, which the sandbox has not. */
	if (clock == CLOCK_REALTIME_ALARM || clock == CLOCK_BOOTTIME_ALARM)
		return -EPERM;
	if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC && clock != CLOCK_BOOTTIME)
		return -EINVAL;
	int fd = timerfd_create((int)clock, TFD_CLOEXEC | (int)(fl & TFD_NONBLOCK));
	if (fd < 0)
		return -errno;
	int64_t h = sbx_handle_add(vm, fd, SBX_O_TIMERFD, (fl & TFD_CLOEXEC) != 0, 0);
	if (h >= 0)
		sbx_fd_get(vm, h)->clock = (int)clock;
	return h;
}

int64_t sbx_hc_timerfd(struct sbx_vm *vm, const struct sbx_slot *s)
{
	uint64_t op = s->u.a[0];
	if (op == SBX_TIMERFD_CREATE)
		return timerfd_create_(vm, s->u.a[1], s->u.a[2]);
	if (op != SBX_TIMERFD_SETTIME && op != SBX_TIMERFD_GETTIME)
		return -EINVAL;
	uint64_t fl = s->u.a[2];
	if (op == SBX_TIMERFD_SETTIME &&
	    (fl & ~(uint64_t)(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET)))
		return -EINVAL;
	struct sbx_handle *h = sbx_fd_get(vm, (int64_t)s->u.a[1]);
	if (!h)
		return -EBADF;
	if (h->kind != SBX_H_HOST || h->obj != SBX_O_TIMERFD)
		return -EINVAL;
	/* The guest's buffer may be anywhere in RAM, unaligned: copied once each way. */
	uint8_t *io = sbx_gptr(vm, s->u.a[3], sizeof(struct sbx_itimer));
	if (!io)
		return -EFAULT;
	struct itimerspec old;
	if (op == SBX_TIMERFD_GETTIME) {
		if (timerfd_gettime(h->fd, &old) < 0)
			return -errno;
	} else {
		struct sbx_itimer in;
		memcpy(&in, io, sizeof(in));
		if (in.value_ns < 0 || in.interval_ns < 0)
			return -EINVAL;
		int64_t value = in.value_ns;
		int hflags = 0;
		/* An absolute time is on the guest's clock, which a snapshot, a migration or a
		 * repeated run sets apart from the host's: made relative, except a real-time one
		 * that asks to hear of clock changes, which only the host's absolute timer can.
		 * The guest's times may be anything: the sums saturate. */
		if ((fl & TFD_TIMER_ABSTIME) && value) {
			int64_t gnow =
			    (int64_t)(h->clock == CLOCK_REALTIME ? s->u.a[5] : s->u.a[4]);
			int64_t rel;
			if (__builtin_sub_overflow(value, gnow, &rel))
				rel = gnow < 0 ? INT64_MAX : INT64_MIN;
			if (h->clock == CLOCK_REALTIME && (fl & TFD_TIMER_CANCEL_ON_SET)) {
				hflags = TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET;
				value = sat_add(sbx_now_ns(CLOCK_REALTIME), rel);
			} else {
				value = rel;
			}
			if (value <= 0)
				value = 1; /* gone by: it fires at once */
		}
		struct itimerspec nv = {ns_ts(in.interval_ns), ns_ts(value)};
		if (timerfd_settime(h->fd, hflags, &nv, &old) < 0)
			return -errno;
	}
	struct sbx_itimer out = {ts_ns(old.it_value), ts_ns(old.it_interval)};
	memcpy(io, &out, sizeof(out));
	return 0;
}

int64_t sbx_hc_epoll_create(struct sbx_vm *vm, const struct sbx_slot *s)
{
	if (s->u.a[0] & ~(uint64_t)EPOLL_CLOEXEC)
		return -EINVAL;
	int fd = epoll_create1(EPOLL_CLOEXEC);
	if (fd < 0)
		return -errno;
	return sbx_handle_add(vm, fd, SBX_O_EPOLL, s->u.a[0] != 0, 0);
}

static struct sbx_handle *epoll_handle(struct sbx_vm *vm, uint64_t fd, int64_t *err)
{
	struct sbx_handle *h = sbx_fd_get(vm, (int64_t)fd);
	*err = !h ? -EBADF : h->kind != SBX_H_HOST || h->obj != SBX_O_EPOLL ? -EINVAL : 0;
	return *err ? NULL : h;
}

int64_t sbx_hc_epoll_ctl(struct sbx_vm *vm, const struct sbx_slot *s)
{
	struct sbx_handle *ep = sbx_fd_get(vm, (int64_t)s->u.a[0]);
	struct sbx_handle *t = sbx_fd_get(vm, (int64_t)s->u.a[2]);
	if (!ep || !t)
		return -EBADF;
	/* A directory or virtual file of the sandbox is always ready, as a regular file is:
	 * Linux refuses to watch those with EPERM, and so does the host for a mount's files. */
	if (t->kind != SBX_H_HOST)
		return -EPERM;
	if (ep == t || ep->kind != SBX_H_HOST || ep->obj != SBX_O_EPOLL)
		return -EINVAL;
	if (s->u.a[1] > INT32_MAX || s->u.a[3] > UINT32_MAX)
		return -EINVAL;
	/* The registration is keyed by the host fd behind the guest's number, which stays the
	 * same while the guest's number names it: ADD, MOD and DEL find the same entry. */
	struct epoll_event ev = {.events = (uint32_t)s->u.a[3], .data.u64 = s->u.a[4]};
	return epoll_ctl(ep->fd, (int)s->u.a[1], t->fd, &ev) < 0 ? -errno : 0;
}

struct epoll_slice {
	int fd;
	struct epoll_event *ev;
	int n;
};

static int epoll_slice(void *ctx, int ms)
{
	struct epoll_slice *w = ctx;
	return epoll_wait(w->fd, w->ev, w->n, ms);
}

int64_t sbx_hc_epoll_wait(struct sbx_vm *vm, const struct sbx_slot *s)
{
	int64_t err;
	struct sbx_handle *ep = epoll_handle(vm, s->u.a[0], &err);
	if (!ep)
		return err;
	uint64_t n = s->u.a[2];
	int64_t ms = (int64_t)s->u.a[3];
	if (n == 0 || n > SBX_EPOLL_BATCH)
		return -EINVAL;
	struct epoll_event ev[SBX_EPOLL_BATCH];
	_Static_assert(sizeof(ev[0]) == 12, "the guest's struct epoll_event is packed");
	int timeout = ms < 0 ? -1 : ms > 3600000 ? 3600000 : (int)ms;
	/* A look without waiting keeps the lock. A wait lets the other threads' requests go on
	 * (the one that will wake it, say), on a duplicate of the instance, which another thread
	 * may close meanwhile; out of descriptors, on the instance's own. */
	int fd = ep->fd, dfd = -1, released = 0;
	if (timeout != 0 && sbx_threads_count(vm)) {
		dfd = fcntl(ep->fd, F_DUPFD_CLOEXEC, 0);
		released = sbx_ring_release(vm);
		fd = dfd >= 0 ? dfd : fd;
	}
	struct epoll_slice w = {fd, ev, (int)n};
	int r = sbx_wait_sliced(vm, timeout, epoll_slice, &w), e = errno;
	sbx_ring_reacquire(vm, released);
	if (dfd >= 0)
		close(dfd);
	if (r < 0)
		return -e;
	if (r && sbx_copy_to_guest(vm, s->u.a[1], ev, (uint64_t)r * sizeof(ev[0])) < 0)
		return -EFAULT;
	return r;
}
