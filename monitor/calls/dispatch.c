/* The hypercall table: one handler per call number. Each handler gets the slot already copied
 * out of guest memory, validates it, acts, and returns one result (>= 0 or -errno). */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "calls.h"

/* The statuses the kernel may send: 0..255, a fatal signal 1..64 with SBX_EXIT_SIGNALED or
 * SBX_EXIT_NODELIVER, or SBX_EXIT_DEADLOCK alone. */
static int exit_status_ok(uint64_t st)
{
	uint64_t kind = st & ~0xffull, sig = st & 0xff;
	if (kind == 0 || st == SBX_EXIT_DEADLOCK)
		return 1;
	return (kind == SBX_EXIT_SIGNALED || kind == SBX_EXIT_NODELIVER) && sig >= 1 && sig <= 64;
}

static int64_t hc_exit(struct sbx_vm *vm, const struct sbx_slot *s)
{
	uint64_t st = s->u.a[0];
	uint32_t sig = (uint32_t)(st & 0xff);
	/* A thread's exit (abort() in it, say): the report reads that thread's frame. */
	struct sbx_stop_who who;
	const struct sbx_stop_who *w = sbx_thread_who(vm, &who) ? &who : NULL;
	if (!exit_status_ok(st)) {
		/* Not a program's end but a kernel breaking the contract: no status to pass on. */
		sbx_vm_kill(vm, SBX_END_ERROR, SBX_STATUS_ERROR, 0,
			    "guest ABI violation: exit status 0x%llx is not 0..255, "
			    "SIGNALED|NODELIVER with a signal 1..64, or DEADLOCK",
			    (unsigned long long)st);
		return -EINVAL;
	}
	if (st & SBX_EXIT_SIGNALED)
		sbx_vm_kill_by(vm, w, SBX_END_SIGNAL, 128 + (int)sig, (int)sig,
			       "killed by SIG%s (signal %u)",
			       sigabbrev_np((int)sig) ? sigabbrev_np((int)sig) : "?", sig);
	else if (st & SBX_EXIT_NODELIVER) {
		/* The frame would go where the program may not write, or the thread blocks the
		 * fault's signal: Linux kills with SIGSEGV (with the fault's signal). */
		sbx_vm_kill_by(
		    vm, w, SBX_END_SIGNAL, 128 + SIGSEGV, SIGSEGV,
		    "SIG%s could not be delivered: blocked, or no room for the signal frame",
		    sigabbrev_np((int)sig) ? sigabbrev_np((int)sig) : "?");
		vm->life.stop.nodeliver = 1;
	} else if (st & SBX_EXIT_DEADLOCK)
		sbx_vm_kill_by(
		    vm, w, SBX_END_SIGNAL, 128 + 9, 9,
		    "deadlock: futex wait with no timeout and no other thread to wake it");
	else
		sbx_vm_kill_by(vm, w, SBX_END_EXIT, (int)(st & 0xff), 0, "exited with status %u",
			       (unsigned)(st & 0xff));
	/* Only if this exit was the first reason to stop (sbx_vm_kill keeps the first). */
	vm->life.stop.status_set_by_exit = vm->life.stop.end == SBX_END_EXIT && !(st & ~0xffull);
	return 0;
}

static int64_t hc_random(struct sbx_vm *vm, const struct sbx_slot *s)
{
	uint64_t len = s->u.rw.len;
	if (len > 1 << 20)
		len = 1 << 20; /* getrandom returns short counts for big requests too */
	uint8_t *p = sbx_gptr(vm, s->u.rw.buf, len);
	if (!p)
		return -EFAULT;
	return sbx_random_fill(vm, p, len);
}

int64_t sbx_random_fill(struct sbx_vm *vm, uint8_t *p, uint64_t len)
{
	if (len > 1 << 20)
		len = 1 << 20;
	if (vm->opts.det_random) {
		/* A fuzzing run's randomness is part of its input: splitmix64 from the run's seed.
		 */
		for (uint64_t i = 0; i < len; i++) {
			if (i % 8 == 0) {
				uint64_t z = (vm->opts.det_state += 0x9e3779b97f4a7c15ull);
				z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
				z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
				vm->opts.det_out = z ^ (z >> 31);
			}
			p[i] = (uint8_t)(vm->opts.det_out >> (8 * (i % 8)));
		}
		return (int64_t)len;
	}
	ssize_t n = getrandom(p, len, 0);
	return n < 0 ? -errno : n;
}

static int64_t hc_trace(struct sbx_vm *vm, const struct sbx_slot *s)
{
	uint64_t args[6];
	if (sbx_copy_from_guest(vm, args, s->u.a[2], sizeof(args)) < 0)
		memset(args, 0, sizeof(args));
	sbx_strace(vm, s->u.a[0], (int64_t)s->u.a[1], args);
	return 0;
}

static int64_t hc_discard(struct sbx_vm *vm, const struct sbx_slot *s)
{
	uint64_t addr = s->u.a[0], len = s->u.a[1];
	/* Only user pages, whole pages: the kernel area and page tables are never given back. */
	if ((addr | len) & (SBX_PAGE_SIZE - 1) || addr < SBX_USER_ADDR || !sbx_gptr(vm, addr, len))
		return -EINVAL;
	sbx_ring_forget_populate(vm, addr, len);
	if (vm->proc.mem.fd < 0) {
		/* RAM is a private mapping of a snapshot (lazy restore): dropping pages would
		 * bring the file's bytes back, so map fresh zero pages over them instead. */
		/* A lent fork child holds these pages no more (its log counts what it holds):
		 * forgotten first, so that a write racing the discard is logged again. */
		if (vm->proc.mem.lender_fd >= 3)
			sbx_dirty_forget(vm, addr, len);
		void *p = mmap(vm->proc.mem.base + addr, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
		return p == MAP_FAILED ? -errno : 0;
	}
	if (fallocate(vm->proc.mem.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)addr,
		      (off_t)len) < 0)
		return -errno;
	return 0;
}

static int64_t hc_populate(struct sbx_vm *vm, const struct sbx_slot *s)
{
	uint64_t addr = s->u.a[0], len = s->u.a[1];
	/* A hint: whole user pages, at most 64 MiB, inside RAM; anything else is ignored. */
	if ((addr | len) & (SBX_PAGE_SIZE - 1) || addr < SBX_USER_ADDR || len > (64ull << 20) ||
	    !sbx_gptr(vm, addr, len))
		return -EINVAL;
	/* The vCPU (after a doorbell) or the ring (served by the poller) would wait for it (~1-3
	 * us a page of fresh host memory): the poller backs the range a piece at a time between
	 * requests, on the other CPU, while the guest goes on. */
	if (sbx_ring_defer_populate(vm, addr, len) == 0)
		return 0;
	/* The poller, its queue full: a hint it drops rather than keep the other rings waiting
	 * through 64 MiB. The pages come at their first touch. */
	if (!sbx_ring_may_wait())
		return 0;
	/* Here, without ring_lock where it may go: the other threads' requests need not wait
	 * for this vCPU's hint. Backing changes no byte, so nothing guards it. */
	int released = sbx_threads_count(vm) ? sbx_ring_release(vm) : 0;
	int r = madvise(vm->proc.mem.base + addr, len, MADV_POPULATE_WRITE) < 0 ? -errno : 0;
	sbx_ring_reacquire(vm, released);
	return r;
}

static int64_t hc_sleep(struct sbx_vm *vm, const struct sbx_slot *s)
{
	const uint64_t year_ns = 1000000000ull * 3600 * 24 * 365;
	int64_t end =
	    sbx_now_ns(CLOCK_MONOTONIC) + (int64_t)(s->u.a[0] < year_ns ? s->u.a[0] : year_ns);
	/* Wait on the stop word, so that ending the sandbox ends the sleep too; a pause or a
	 * nudge (a migration round wanting ring_lock) ends it early, and the guest kernel
	 * sleeps again for the rest by its own clock. */
	int nudge = atomic_load(&vm->life.nudge), released = sbx_ring_release(vm);
	while (!atomic_load(&vm->life.stopping) && !atomic_load(&vm->life.pause_req) &&
	       atomic_load(&vm->life.nudge) == nudge && !sbx_threads_ending(vm)) {
		int64_t left = end - sbx_now_ns(CLOCK_MONOTONIC);
		if (left <= 0)
			break;
		struct timespec rel = {.tv_sec = (time_t)(left / 1000000000ll),
				       .tv_nsec = (long)(left % 1000000000ll)};
		syscall(SYS_futex, &vm->life.stopping, FUTEX_WAIT_PRIVATE, 0, &rel, NULL, 0);
	}
	sbx_ring_reacquire(vm, released);
	return 0;
}

static int64_t hc_point(struct sbx_vm *vm, const struct sbx_slot *s)
{
	(void)s;
	return vm->hooks.point ? vm->hooks.point(vm) : -ENOSYS;
}

typedef int64_t (*sbx_hc_fn)(struct sbx_vm *vm, const struct sbx_slot *s);

/* Every call, from its one line in sbx_calls.h. */
static const struct sbx_call_desc {
	sbx_hc_fn fn;
	const char *name;
	unsigned flags;
} sbx_calls[SBX_CALL_COUNT] = {
#define SBX_CALL_DESC(NAME, nr, name, fn, flags, args) [SBX_CALL_##NAME] = {fn, #name, flags},
    SBX_CALLS(SBX_CALL_DESC)
#undef SBX_CALL_DESC
};

const char *sbx_call_name(int nr)
{
	return nr > 0 && nr < SBX_CALL_COUNT ? sbx_calls[nr].name : NULL;
}

/* How a call's time counts for the guest's CPU-time clocks (the boot page's waited_ns, which
 * the kernel takes off them): a sleep or a poll is all waiting; a read or write of the
 * monitor's stdio (a pipe, a terminal) waits for as long as it was off the CPU; the rest is
 * work the guest would do in its own kernel. A FIFO inside a mount is not told apart. */
enum sbx_wait { SBX_WAIT_NONE, SBX_WAIT_ALL, SBX_WAIT_OFF_CPU };

/* Timing a wait off the CPU takes the thread's CPU clock twice, two host syscalls of ~1 us
 * each (as much as the rest of a polled write): only for stdio that can block at all. */
int sbx_handle_may_block(struct sbx_handle *h)
{
	if (!h->may_block) {
		struct stat st;
		int ok = fstat(h->fd, &st) == 0;
		h->may_block = ok && S_ISCHR(st.st_mode) && isatty(h->fd)	     ? 3
			       : !ok || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) ? 2
										     : 1;
	}
	return h->may_block >= 2;
}

int sbx_wait_over(struct sbx_vm *vm, int nudge)
{
	const struct sbx_bootinfo *b = sbx_gptr_ro(vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	return atomic_load(&vm->life.stopping) || atomic_load(&vm->life.pause_req) ||
	       atomic_load(&vm->life.nudge) != nudge || sbx_threads_ending(vm) ||
	       (b && __atomic_load_n(&b->sig_incoming, __ATOMIC_SEQ_CST));
}

int sbx_wait_sliced(struct sbx_vm *vm, int timeout_ms, int (*wait)(void *ctx, int ms), void *ctx)
{
	int nudge = atomic_load(&vm->life.nudge);
	int64_t end = timeout_ms > 0 ? sbx_now_ns(CLOCK_MONOTONIC) + timeout_ms * SBX_NS_PER_MS : 0;
	/* What is ready now is answered first, as Linux's poll answers it whatever is pending. */
	int r0 = wait(ctx, 0);
	if (r0 != 0 || timeout_ms == 0)
		return r0;
	/* The poller must not wait here (hc_may_wait let the request through, and another
	 * process took what was ready): nothing has moved, and the request goes to the vCPU's
	 * thread (sbx_ring_would_wait). */
	if (!sbx_ring_may_wait()) {
		sbx_ring_would_wait();
		errno = EINTR; /* the answer no one sees */
		return -1;
	}
	for (;;) {
		if (sbx_wait_over(vm, nudge)) {
			errno = EINTR;
			return -1;
		}
		int ms = 20;
		if (timeout_ms > 0) {
			int64_t left =
			    (end - sbx_now_ns(CLOCK_MONOTONIC) + SBX_NS_PER_MS - 1) / SBX_NS_PER_MS;
			ms = left <= 0 ? 0 : left < ms ? (int)left : ms;
		}
		int r = wait(ctx, ms);
		if (r != 0 || (timeout_ms > 0 && ms < 20))
			return r;
	}
}

static enum sbx_wait wait_kind(struct sbx_vm *vm, const struct sbx_slot *s)
{
	unsigned f = sbx_calls[s->nr].flags;
	if (f & SBX_CF_WAIT)
		return SBX_WAIT_ALL;
	if (f & SBX_CF_WAIT_STDIO) {
		struct sbx_handle *h = sbx_fd_get(vm, s->u.rw.fd);
		return h && (h->stdio >= 0 || h->obj != SBX_O_FILE) && h->kind == SBX_H_HOST &&
			       sbx_handle_may_block(h)
			   ? SBX_WAIT_OFF_CPU
			   : SBX_WAIT_NONE;
	}
	return SBX_WAIT_NONE;
}

/* For the poller (core/ring.c), which must not wait on the host: may this request wait? Only
 * a call marked quick is served there, and a read or write of a pipe or socket only when it
 * cannot wait: the guest's descriptor is non-blocking, or ready, and a write fits what
 * readiness promises (a pipe takes PIPE_BUF bytes whole); not a terminal's (no transfer of its
 * is tried without waiting), nor a receive that waits for all it asked. */
static int hc_may_wait(struct sbx_vm *vm, const struct sbx_slot *s)
{
	if (s->nr == 0 || s->nr >= SBX_CALL_COUNT)
		return 0; /* answered at once: no such call */
	unsigned f = sbx_calls[s->nr].flags;
	if (!(f & SBX_CF_QUICK))
		return SBX_WAITS;
	if (s->nr == SBX_CALL_IOCTL) {
		/* These wait until the terminal's output has drained. */
		uint64_t req = s->u.a[1];
		return req == TCSBRK || req == TCSBRKP || req == TCSETSW || req == TCSETSF ||
			       req == TCSETAW || req == TCSETAF
			   ? SBX_WAITS
			   : 0;
	}
	if (!(f & SBX_CF_WAIT_STDIO))
		return 0;
	struct sbx_handle *h = sbx_fd_get(vm, s->u.rw.fd);
	if (!h || h->kind != SBX_H_HOST || h->obj == SBX_O_SIGNALFD || !sbx_handle_may_block(h))
		return 0; /* answered at once */
	int is_write = s->nr == SBX_CALL_WRITE || s->nr == SBX_CALL_WRITEV;
	int vec = s->nr == SBX_CALL_READV || s->nr == SBX_CALL_WRITEV;
	uint64_t sf = vec ? (uint64_t)s->u.rw.off : 0;
	if ((sf & SBX_RW_SOCK) && (sf & MSG_DONTWAIT))
		return 0;
	if ((sf & SBX_RW_SOCK) && (sf & MSG_WAITALL))
		return SBX_WAITS;
	if (h->may_block == 3)
		return SBX_WAITS;
	/* Non-blocking as the guest sees it: EAGAIN at once, if nothing is there. But stdio's
	 * host descriptor blocks whatever the guest set: its writes stay within PIPE_BUF. */
	int nb = sbx_handle_nonblocking(h, h->stdio >= 0 ? -1 : fcntl(h->fd, F_GETFL));
	if (nb && (h->stdio < 0 || !is_write))
		return 0;
	if (is_write) {
		uint64_t total = vec ? 0 : s->u.rw.len;
		struct sbx_iovec v[SBX_IOV_MAX];
		if (vec &&
		    (s->u.rw.len > SBX_IOV_MAX ||
		     sbx_copy_from_guest(vm, v, s->u.rw.buf, s->u.rw.len * sizeof(v[0])) < 0))
			return 0; /* refused at once */
		for (uint64_t i = 0; vec && i < s->u.rw.len; i++) {
			if (v[i].len > PIPE_BUF - total)
				return SBX_WAITS;
			total += v[i].len;
		}
		if (total > PIPE_BUF)
			return SBX_WAITS;
		if (nb)
			return 0;
	}
	struct pollfd p = {.fd = h->fd, .events = is_write ? POLLOUT : POLLIN};
	return poll(&p, 1, 0) == 1 ? 0 : SBX_WAITS_UNTIL_READY;
}

/* Before the reply is published: the kernel reads waited_ns once the request is done. */
static void note_wait(struct sbx_vm *vm, enum sbx_wait k, int64_t wall0, int64_t cpu0)
{
	int64_t d = sbx_now_ns(CLOCK_MONOTONIC) - wall0;
	if (k == SBX_WAIT_OFF_CPU)
		d -= sbx_now_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
	if (d <= 0)
		return;
	volatile struct sbx_bootinfo *b = sbx_gptr(vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	b->waited_ns += (uint64_t)d;
}

/* Might this call have changed a file on a writable mount? (Writes to stdio do not.) */
static int sbx_hc_changes_fs(struct sbx_vm *vm, const struct sbx_slot *s)
{
	unsigned f = sbx_calls[s->nr].flags;
	if (f & SBX_CF_FS_HANDLE) {
		const struct sbx_handle *h = sbx_fd_get(vm, s->u.rw.fd);
		/* /dev/null is no file of a mount, nor a memfd */
		return h && h->gpath && h->kind == SBX_H_HOST && h->obj == SBX_O_FILE;
	}
	if (f & SBX_CF_FS_OPEN)
		return (s->u.path.flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) != 0;
	return (f & SBX_CF_FS) != 0;
}

int64_t sbx_hypercall(struct sbx_vm *vm, const struct sbx_slot *s)
{
	if (s->nr >= SBX_CALL_COUNT || !sbx_calls[s->nr].fn) {
		sbx_vm_kill(vm, SBX_END_ERROR, SBX_STATUS_ERROR, 0,
			    "guest ABI violation: unknown hypercall %u", s->nr);
		return -ENOSYS;
	}
	vm->stats.calls++;
	vm->call_count[s->nr]++;
	if (__builtin_expect(vm->life.first_call_pending, 0)) {
		/* For the restore benchmark: time to the first hypercall after a resume. */
		clock_gettime(CLOCK_MONOTONIC, &vm->life.first_call_at);
		__atomic_store_n(&vm->life.first_call_pending, 0, __ATOMIC_RELEASE);
	}
	/* Before the call and whatever it returns: a call may change a directory and still
	 * fail (a file created, then no handle left for it). */
	if (!vm->opts.fs_changed)
		vm->opts.fs_changed = sbx_hc_changes_fs(vm, s);
	enum sbx_wait wk = wait_kind(vm, s);
	int64_t wall0 = wk ? sbx_now_ns(CLOCK_MONOTONIC) : 0;
	int64_t cpu0 = wk == SBX_WAIT_OFF_CPU ? sbx_now_ns(CLOCK_THREAD_CPUTIME_ID) : 0;
	vm->audit->outside = 0;
	int64_t ret = sbx_calls[s->nr].fn(vm, s);
	if (sbx_ring_refused()) {
		/* Not served: its vCPU's thread serves it, and counts it, next. */
		vm->stats.calls--;
		vm->call_count[s->nr]--;
		return ret;
	}
	if (wk)
		note_wait(vm, wk, wall0, cpu0);
	if (vm->audit->outside)
		sbx_missing_note(vm, ret);
	if (vm->cfg.audit)
		sbx_audit_record(vm, s, sbx_call_name((int)s->nr), ret);
	return ret;
}

/* parent: a fork's, whose handles the new table copies; NULL: stdio only. */
static int attach(struct sbx_vm *vm, struct sbx_vm *parent, char *err, size_t errlen)
{
	vm->proc.files = calloc(1, sizeof(*vm->proc.files));
	vm->limits = calloc(1, sizeof(*vm->limits));
	vm->audit = calloc(1, sizeof(*vm->audit));
	if (!vm->proc.files || !vm->limits || !vm->audit)
		return sbx_fail(err, errlen, -ENOMEM, "out of memory");
	sbx_memfds_init(&vm->limits->memfds);
	sbx_socks_init(&vm->limits->socks);
	sbx_ptys_init(&vm->limits->ptys);
	if (!parent) {
		sbx_fd_init(vm);
		if (!(vm->proc.files->owners = sbx_lockreg_new()))
			return sbx_fail(err, errlen, -ENOMEM, "out of memory");
		vm->proc.files->owners_own = 1;
	} else {
		vm->proc.files->owners = parent->proc.files->owners;
		vm->limits->tree = parent->limits->tree ? parent->limits->tree : parent->limits;
		vm->limits->first = parent->limits->first ? parent->limits->first : parent;
		int r = sbx_fd_fork(vm, parent);
		if (r < 0)
			return sbx_fail(err, errlen, r, "copying the handle table: %s",
					strerror(-r));
	}
	vm->opts.nofile = sbx_fd_ceiling(vm);
	vm->hooks.dispatch = sbx_hypercall;
	vm->hooks.may_wait = hc_may_wait;
	vm->hooks.ref_hold = sbx_memfd_ref_hold;
	return 0;
}

int sbx_calls_attach(struct sbx_vm *vm, char *err, size_t errlen)
{
	return attach(vm, NULL, err, errlen);
}

int sbx_calls_attach_fork(struct sbx_vm *vm, struct sbx_vm *parent, char *err, size_t errlen)
{
	return attach(vm, parent, err, errlen);
}

void sbx_calls_detach(struct sbx_vm *vm)
{
	/* A window onto a memfd holds the memfd's entry in the first process's limits, which
	 * go below. */
	sbx_shmap_clear(vm);
	if (vm->proc.files) {
		sbx_fd_close_all(vm);
		if (vm->proc.files->owners_own)
			sbx_lockreg_free(vm->proc.files->owners);
	}
	if (vm->audit)
		sbx_missing_free(vm);
	free(vm->proc.files);
	if (vm->limits) {
		sbx_memfds_free(&vm->limits->memfds);
		sbx_socks_free(&vm->limits->socks);
		sbx_ptys_free(&vm->limits->ptys);
	}
	free(vm->limits);
	free(vm->audit);
	vm->proc.files = NULL;
	vm->limits = NULL;
	vm->audit = NULL;
}
