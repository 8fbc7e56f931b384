/* Many runs of one program from one snapshot: the engine behind sandbox-serve and
 * sandbox-fuzz (docs/exec.md). The program runs to its point, where the guest kernel parks it
 * (struct sbx_exec_ctl in sbx_abi.h) and the snapshot is taken. Each run: put back the pages
 * the last run wrote, set up this run (stdio, stack or input), let the kernel go on.
 *
 * Three ways a run ends and the next begins, cheapest first:
 * - fast (opts.fast): the kernel spins in its park loop while this thread resets the pages
 *   under it and bumps `go`; the kernel restores its own registers. No VM exit at all.
 * - parked: the kernel rang the doorbell and the vCPU thread holds the vCPU in that exit
 *   (sbx_exec_doorbell). With the vCPU stopped the monitor may also put back page tables and,
 *   unless fast, the vCPU's registers: nothing of a run, not even a register, reaches the next.
 * - stopped: the run ended otherwise (a crash, a signal, a limit, a kill): sbx_vm_run returned
 *   on the vCPU thread; a full reset, and sbx_vm_run again. */
#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "calls.h"
#include "exec.h"
#include "persist.h"

struct sbx_exec {
	struct sbx_vm *vm;
	struct sbx_exec_opts o;
	struct policy pol; /* cfg's, with the time limits taken over per run */
	struct sbx_snap *snap;
	pthread_t thread;
	int thread_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int parked, run_req, stopped, quit; /* under lock */
	struct sbx_result res;		    /* the last sbx_vm_run's */
	uint64_t done_seen;		    /* ctl->done when the current run was started */
	uint64_t gen;			    /* the last `go` written */
	uint64_t counters, ncounters, input, input_max;
	uint64_t runs;
	int64_t tsc_offset; /* guest TSC - host TSC, for deterministic clocks */
	double open_ms;
	uint64_t snap_pages;
	char **tmp_saved; /* the --tmp directories at the snapshot */
	int running;	  /* a run is under way (under lock): kills apply to it only */
	/* Fast runs with a core for each of the vCPU and the waiting thread: the waiting thread
	 * spins (no exit). On one core it would only take the vCPU's time: runs park in an exit
	 * then, and the registers are still the guest kernel's to restore. */
	int spin;
	int broken; /* a reset failed: no more runs */
	/* Untrusted runs: every MSR the vCPU has, as at the snapshot, put back in one ioctl. */
	struct kvm_msrs *msrs;
	uint32_t enomem; /* the boot page's count at the snapshot */
};

static volatile struct sbx_exec_ctl *ctl_of(struct sbx_vm *vm)
{
	/* The mailbox page is never put back, so writing it needs no dirty mark. */
	return (volatile struct sbx_exec_ctl *)(vm->proc.mem.base + SBX_EXEC_ADDR);
}

static double us_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e6 + (double)(t.tv_nsec - t0->tv_nsec) / 1e3;
}

static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

enum sbx_action sbx_exec_doorbell(struct sbx_vm *vm)
{
	struct sbx_exec *x = vm->exec;
	if (atomic_load(&vm->life.stopping))
		return SBX_ACT_STOP;
	if (__atomic_load_n(&ctl_of(vm)->done, __ATOMIC_ACQUIRE) == x->done_seen)
		return SBX_ACT_CONTINUE; /* an ordinary doorbell */
	/* Parked. Finish the doorbell's instruction first, so the vCPU's state is whole for a
	 * snapshot or a reset of its registers. */
	vm->proc.vcpu.run->immediate_exit = 1;
	while (ioctl(vm->proc.vcpu.fd, KVM_RUN, 0) == 0)
		; /* cannot happen with immediate_exit; EINTR is the answer */
	vm->proc.vcpu.run->immediate_exit = atomic_load(&vm->life.stopping);
	pthread_mutex_lock(&x->lock);
	vm->proc.vcpu.parked = 1;
	x->parked = 1;
	pthread_cond_broadcast(&x->cond);
	while (x->parked && !atomic_load(&vm->life.stopping))
		pthread_cond_wait(&x->cond, &x->lock);
	x->parked = 0;
	vm->proc.vcpu.parked = 0;
	pthread_mutex_unlock(&x->lock);
	return atomic_load(&vm->life.stopping) ? SBX_ACT_STOP : SBX_ACT_CONTINUE;
}

static void *vcpu_main(void *arg)
{
	struct sbx_exec *x = arg;
	pthread_mutex_lock(&x->lock);
	for (;;) {
		while (!x->run_req && !x->quit)
			pthread_cond_wait(&x->cond, &x->lock);
		if (x->quit)
			break;
		x->run_req = 0;
		pthread_mutex_unlock(&x->lock);
		struct sbx_result res;
		memset(&res, 0, sizeof(res));
		sbx_vm_run(x->vm, &res);
		pthread_mutex_lock(&x->lock);
		x->res = res;
		x->stopped = 1;
		pthread_cond_broadcast(&x->cond);
	}
	pthread_mutex_unlock(&x->lock);
	return NULL;
}

/* Waits until the vCPU thread is parked or stopped; 1 if parked. With a time limit (ms), a
 * sandbox that takes longer is killed (and so stops). */
static int wait_parked_for(struct sbx_exec *x, uint64_t ms)
{
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += (time_t)(ms / 1000);
	dl.tv_nsec += (long)(ms % 1000) * 1000000;
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&x->lock);
	while (!x->parked && !x->stopped) {
		if (!ms) {
			pthread_cond_wait(&x->cond, &x->lock);
		} else if (pthread_cond_timedwait(&x->cond, &x->lock, &dl) == ETIMEDOUT) {
			pthread_mutex_unlock(&x->lock);
			char why[96];
			snprintf(why, sizeof(why), "wall-clock limit reached: --timeout %llu ms",
				 (unsigned long long)ms);
			sbx_exec_kill(x, SBX_END_LIMIT, SBX_STATUS_LIMIT_TIME, why);
			pthread_mutex_lock(&x->lock);
			ms = 0;
		}
	}
	int parked = x->parked;
	pthread_mutex_unlock(&x->lock);
	return parked;
}

static int wait_parked(struct sbx_exec *x)
{
	return wait_parked_for(x, 0);
}

void sbx_exec_kill(struct sbx_exec *x, enum sbx_end end, int status, const char *why)
{
	/* Only a run under way: a kill meant for a run that has ended must not reach the state
	 * the next reset is putting back, nor the next run. */
	pthread_mutex_lock(&x->lock);
	if (x->running) {
		sbx_vm_kill(x->vm, end, status, 0, "%s", why);
		pthread_cond_broadcast(&x->cond);
	}
	pthread_mutex_unlock(&x->lock);
}

/* ring_lock, even from a poller blocked in a host call the guest asked for (a SLEEP, a poll
 * with no end): cut it short. Only while the sandbox's threads are alive (parked or
 * spinning, not stopped). */
static void lock_ring(struct sbx_vm *vm)
{
	if (pthread_mutex_trylock(&vm->proc.ring.lock) == 0)
		return;
	for (;;) {
		atomic_fetch_add(&vm->life.nudge, 1);
		syscall(SYS_futex, &vm->life.stopping, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL,
			0);
		if (vm->proc.ring.poller_started)
			pthread_kill(vm->proc.ring.poller, sbx_kick_signal());
		struct timespec dl;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_nsec += 10000000;
		if (dl.tv_nsec >= 1000000000) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000;
		}
		if (pthread_mutex_timedlock(&vm->proc.ring.lock, &dl) == 0)
			return;
	}
}

/* Every MSR KVM lists for the vCPU that reads and writes back as it is now (at the point),
 * but the clock's. A program that reaches CPL0 could leave any of them for the next run. */
static int msrs_capture(struct sbx_exec *x, char *err, size_t errlen)
{
	int kfd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	struct kvm_msr_list probe = {.nmsrs = 0}, *list = NULL;
	if (kfd < 0)
		return fail(err, errlen, -errno, "/dev/kvm: %s", strerror(errno));
	if (ioctl(kfd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG) {
		close(kfd);
		return fail(err, errlen, -errno, "KVM_GET_MSR_INDEX_LIST: %s", strerror(errno));
	}
	list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(uint32_t));
	x->msrs = calloc(1, sizeof(*x->msrs) + probe.nmsrs * sizeof(struct kvm_msr_entry));
	if (!list || !x->msrs) {
		close(kfd);
		free(list);
		return fail(err, errlen, -ENOMEM, "out of memory");
	}
	list->nmsrs = probe.nmsrs;
	int r = ioctl(kfd, KVM_GET_MSR_INDEX_LIST, list);
	close(kfd);
	if (r < 0) {
		free(list);
		return fail(err, errlen, -errno, "KVM_GET_MSR_INDEX_LIST: %s", strerror(errno));
	}
	unsigned n = 0;
	for (uint32_t i = 0; i < list->nmsrs; i++) {
		uint32_t idx = list->indices[i];
		uint64_t v;
		/* Time (TSC, its adjust and deadline) goes on; kvmclock's MSRs make KVM write
		 * guest memory. */
		if (idx == 0x10 || idx == 0x3b || idx == 0x6e0 || idx == 0x11 || idx == 0x12 ||
		    (idx >= 0x4b564d00 && idx <= 0x4b564dff))
			continue;
		if (sbx_kvm_msrs(x->vm, 0, &idx, &v, 1) != 1)
			continue;
		x->msrs->entries[n].index = idx;
		x->msrs->entries[n].data = v;
		n++;
	}
	free(list);
	/* Keep those that also write back: KVM stops at the first it refuses. */
	for (;;) {
		x->msrs->nmsrs = n;
		r = ioctl(x->vm->proc.vcpu.fd, KVM_SET_MSRS, x->msrs);
		if (r < 0)
			return fail(err, errlen, -errno, "KVM_SET_MSRS: %s", strerror(errno));
		if ((unsigned)r >= n)
			break;
		memmove(&x->msrs->entries[r], &x->msrs->entries[r + 1],
			(n - (unsigned)r - 1) * sizeof(x->msrs->entries[0]));
		n--;
	}
	return 0;
}

/* The point's arguments come from the guest: the counters and the input buffer must be user
 * memory inside RAM. */
static int check_point(struct sbx_exec *x, char *err, size_t errlen)
{
	struct sbx_vm *vm = x->vm;
	volatile struct sbx_exec_ctl *c = ctl_of(vm);
	if (c->status != SBX_EXEC_AT_POINT)
		return fail(err, errlen, -ECANCELED,
			    "%s ended before its snapshot point: exited with status %u",
			    vm->cfg.name ? vm->cfg.name : vm->cfg.prog, c->status & 0xff);
	/* Only the fuzz driver's point names counters and a buffer: a program at another point
	 * must not choose pages the reset would leave alone. */
	if (x->o.point != SBX_POINT_CALL)
		return 0;
	x->counters = c->counters;
	x->ncounters = c->ncounters;
	x->input = c->input;
	x->input_max = c->input_max;
	if (x->ncounters &&
	    (x->counters < SBX_USER_ADDR || !sbx_gptr_ro(vm, x->counters, x->ncounters)))
		return fail(
		    err, errlen, -EINVAL,
		    "the fuzz driver's coverage counters [0x%llx, +%llu) are not user memory",
		    (unsigned long long)x->counters, (unsigned long long)x->ncounters);
	if (!x->input_max || x->input < SBX_USER_ADDR || !sbx_gptr_ro(vm, x->input, x->input_max))
		return fail(err, errlen, -EINVAL,
			    "the fuzz driver's input buffer [0x%llx, +%llu) is not user memory",
			    (unsigned long long)x->input, (unsigned long long)x->input_max);
	return 0;
}

static uint64_t host_tsc(void)
{
	return __rdtsc();
}

int sbx_exec_open(const struct sbx_config *cfg, const struct sbx_exec_opts *o,
		  struct sbx_exec **out, char *err, size_t errlen)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	*out = NULL;
	struct sbx_exec *x = calloc(1, sizeof(*x));
	if (!x)
		return fail(err, errlen, -ENOMEM, "out of memory");
	x->o = *o;
	pthread_mutex_init(&x->lock, NULL);
	pthread_cond_init(&x->cond, NULL);
	struct sbx_config c = *cfg;
	if (cfg->policy) {
		/* --timeout and --cpu-time apply to each run, enforced here. */
		x->pol = *cfg->policy;
		if (!x->o.timeout_ms)
			x->o.timeout_ms =
			    x->pol.lim.wall_ms ? x->pol.lim.wall_ms : x->pol.lim.cpu_ms;
		x->pol.lim.wall_ms = 0;
		x->pol.lim.cpu_ms = 0;
		c.policy = &x->pol;
	}
	c.control_path = NULL;
	cpu_set_t cpus;
	x->spin =
	    o->fast && (sched_getaffinity(0, sizeof(cpus), &cpus) < 0 || CPU_COUNT(&cpus) > 1);
	/* The thread waiting for a run's end serves the ring itself: no poller. */
	if (x->spin || o->poll_run)
		c.poll = SBX_POLL_OFF;
	int r = sbx_vm_create(&c, &x->vm, err, errlen);
	if (r < 0) {
		sbx_exec_close(x);
		return r;
	}
	struct sbx_vm *vm = x->vm;
	vm->exec = x;
	vm->hooks.doorbell = sbx_exec_doorbell;
	vm->opts.confine_thread = 1;
	if (x->spin)
		vm->opts.spin_us = 1000;
	if (!o->fast)
		vm->opts.full_reset = 1; /* the program may be hostile: it may reach CPL0 */
	vm->opts.boot_flags = SBX_BOOT_EXEC | (o->point == SBX_POINT_STDIN ? SBX_BOOT_WARM : 0) |
			      (o->point != SBX_POINT_CALL ? SBX_BOOT_EXIT_PARKS : 0);
	if ((r = sbx_vm_load(vm, err, errlen)) < 0) {
		sbx_exec_close(x);
		return r;
	}
	if (!vm->proc.image.khdr.exec_start) {
		sbx_exec_close(x);
		return fail(err, errlen, -ENOTSUP, "the guest kernel cannot run from a snapshot");
	}
	volatile struct sbx_exec_ctl *ctl = ctl_of(vm);
	memset((void *)ctl, 0, sizeof(*ctl));
	ctl->flags = SBX_EXEC_NEED_WAKEUP; /* the point always parks in an exit */
	x->done_seen = 0;
	if (o->point == SBX_POINT_ENTRY) {
		/* The kernel saves the start's extended state and parks at once; every run then
		 * starts at the entry on a stack of its own. */
		struct kvm_regs regs;
		if (ioctl(vm->proc.vcpu.fd, KVM_GET_REGS, &regs) < 0 ||
		    (regs.rip = vm->proc.image.khdr.exec_start,
		     ioctl(vm->proc.vcpu.fd, KVM_SET_REGS, &regs) < 0)) {
			r = -errno;
			sbx_exec_close(x);
			return fail(err, errlen, r, "setting the vCPU's start: %s", strerror(-r));
		}
	}
	if (o->deterministic) {
		uint32_t msr = 0x10; /* IA32_TSC */
		uint64_t tsc = 0;
		uint64_t h = host_tsc();
		if (sbx_kvm_msrs(vm, 0, &msr, &tsc, 1) == 1)
			x->tsc_offset = (int64_t)(tsc - h);
	}
	/* The front end's signals (SIGALRM for libFuzzer's timeouts, SIGTERM and SIGHUP for a
	 * server) go to its own threads, never to the sandbox's. */
	sigset_t block, old;
	sigemptyset(&block);
	int sigs[] = {SIGALRM, SIGINT,	SIGTERM, SIGHUP, SIGUSR1,
		      SIGUSR2, SIGCHLD, SIGPIPE, SIGXFSZ};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&block, sigs[i]);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	int e = pthread_create(&x->thread, NULL, vcpu_main, x);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e) {
		sbx_exec_close(x);
		return fail(err, errlen, -e, "cannot start the vCPU thread: %s", strerror(e));
	}
	x->thread_started = 1;
	pthread_mutex_lock(&x->lock);
	x->run_req = 1;
	pthread_cond_broadcast(&x->cond);
	pthread_mutex_unlock(&x->lock);
	/* The way to the point is bounded like a run (a program that never reaches it). */
	if (!wait_parked_for(x, x->o.timeout_ms)) {
		r = fail(err, errlen, -ECANCELED, "%s ended before its snapshot point: %s",
			 cfg->name ? cfg->name : cfg->prog, x->res.reason);
		sbx_exec_close(x);
		return r;
	}
	if ((r = check_point(x, err, errlen)) < 0) {
		sbx_exec_close(x);
		return r;
	}
	/* The snapshot's counters are zero, as every run's start: a reset compares equal. */
	if (x->o.point == SBX_POINT_CALL && x->ncounters)
		memset(vm->proc.mem.base + x->counters, 0, x->ncounters);
	if ((r = sbx_snapshot_take(vm, &x->snap, err, errlen)) < 0) {
		sbx_exec_close(x);
		return r;
	}
	/* Whole pages of counters are zeroed before each run rather than put back; pages they
	 * share with other data are put back, then their counters zeroed. */
	uint64_t klo = (x->counters + SBX_PAGE_SIZE - 1) & ~(SBX_PAGE_SIZE - 1);
	uint64_t khi = (x->counters + x->ncounters) & ~(SBX_PAGE_SIZE - 1);
	sbx_snapshot_keep(x->snap, x->ncounters ? klo : 0, x->ncounters ? khi : 0, SBX_EXEC_ADDR);
	if (!o->fast && (r = msrs_capture(x, err, errlen)) < 0) {
		sbx_exec_close(x);
		return r;
	}
	if ((r = sbx_tmp_save(vm, &x->tmp_saved, err, errlen)) < 0) {
		sbx_exec_close(x);
		return r;
	}
	vm->opts.fs_changed = 0;
	x->enomem = ((const struct sbx_bootinfo *)(vm->proc.mem.base + SBX_BOOTINFO_ADDR))->enomem;
	x->done_seen = ctl->done;
	x->snap_pages = sbx_resident_pages(vm);
	x->open_ms = us_since(&t0) / 1e3;
	*out = x;
	return 0;
}

/* This run's stdio: the run's own fds where given. */
static int set_stdio(struct sbx_vm *vm, const struct sbx_exec_run *run, char *err, size_t errlen)
{
	const int fds[3] = {run->stdin_fd, run->stdout_fd, run->stderr_fd};
	for (int i = 0; i < 3; i++) {
		if (fds[i] < 0)
			continue;
		if (vm->proc.files->fds[i].kind != SBX_H_FREE)
			sbx_fd_release(vm, i);
		int d = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
		if (d < 0)
			return fail(err, errlen, -errno, "run: fd %d: %s", i, strerror(errno));
		vm->proc.files->fds[i] =
		    (struct sbx_handle){.kind = SBX_H_HOST, .fd = d, .writable = i > 0, .stdio = i};
	}
	return 0;
}

/* A stack of this run's own: argv, envp and fresh AT_RANDOM bytes, as exec would give. */
static int set_stack(struct sbx_exec *x, const struct sbx_exec_run *run, char *err, size_t errlen)
{
	struct sbx_vm *vm = x->vm;
	char *const *argv = run->argv ? run->argv : vm->cfg.argv;
	struct loader_stack_args sa;
	sbx_stack_args(vm, argv, run->envp, &sa);
	if (x->o.deterministic) {
		for (int i = 0; i < 16; i++)
			sa.random[i] = (uint8_t)(run->seed >> (8 * (i % 8))) ^ (uint8_t)i;
	} else if (getrandom(sa.random, sizeof(sa.random), 0) != (ssize_t)sizeof(sa.random)) {
		return fail(err, errlen, -EIO, "getrandom: %s", strerror(errno));
	}
	struct loader_mem lm = {.base = vm->proc.mem.base, .size = vm->proc.mem.size};
	uint64_t rsp;
	char lerr[300];
	int r = loader_build_stack(&lm, &vm->proc.image.img, &sa, &rsp, lerr, sizeof(lerr));
	if (r < 0)
		return fail(err, errlen, r, "run: building the stack: %s", lerr);
	/* Written behind KVM's back: put back before the next run like the guest's writes. */
	sbx_mem_dirty(vm, rsp & ~(SBX_PAGE_SIZE - 1),
		      vm->proc.mem.size - (rsp & ~(SBX_PAGE_SIZE - 1)));
	volatile struct sbx_exec_ctl *c = ctl_of(vm);
	c->entry_rsp = rsp;
	c->entry_rip = vm->proc.image.img.entry;
	return 0;
}

static int set_input(struct sbx_exec *x, const struct sbx_exec_run *run, char *err, size_t errlen)
{
	struct sbx_vm *vm = x->vm;
	if (run->input_len > x->input_max)
		return fail(err, errlen, -E2BIG, "run: input of %zu bytes, the guest takes %llu",
			    run->input_len, (unsigned long long)x->input_max);
	if (run->input_len && sbx_copy_to_guest(vm, x->input + x->input_max - run->input_len,
						run->input, run->input_len) < 0)
		return fail(err, errlen, -EFAULT, "run: the input buffer left guest RAM");
	if (x->ncounters) {
		uint8_t *cnt = vm->proc.mem.base + x->counters;
		memset(cnt, 0, x->ncounters);
	}
	ctl_of(vm)->input_len = run->input_len;
	return 0;
}

/* Deterministic runs: every run's clocks start at the same instant. */
static void set_clock(struct sbx_exec *x)
{
	struct sbx_vm *vm = x->vm;
	struct sbx_bootinfo *b = sbx_gptr(vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	b->tsc_at_boot = host_tsc() + (uint64_t)x->tsc_offset;
	b->realtime_ns = 1700000000ll * 1000000000ll;
	b->monotonic_ns = 1000000000ll;
	b->start_ns = b->monotonic_ns;
	b->idle_ns = 0; /* CPU time too starts at zero (waited_ns goes on, as the kernel saw it) */
	b->clock_seq += 2;
}

/* Everything of a run but the pages: monitor state, then this run's own setup. */
static int prepare(struct sbx_exec *x, struct sbx_exec_run *run, char *err, size_t errlen)
{
	struct sbx_vm *vm = x->vm;
	/* The mailbox as at the snapshot, but for the words the parked kernel may be reading
	 * (go, done, flags): nothing a run leaves there reaches the next. */
	uint8_t *mb = vm->proc.mem.base + SBX_EXEC_ADDR;
	const uint8_t *sp = sbx_snapshot_page(x->snap, SBX_EXEC_ADDR);
	memcpy(mb + SBX_EXEC_STATUS, sp + SBX_EXEC_STATUS, SBX_PAGE_SIZE - SBX_EXEC_STATUS);
	int r = sbx_reset_monitor(vm, x->snap, err, errlen);
	if (r == 0 && vm->opts.fs_changed && x->tmp_saved) {
		/* The handles are closed: put the --tmp directories back as they were. A failure
		 * is the sandbox's: its next run would see this one's files. */
		r = sbx_tmp_restore(vm, x->tmp_saved, err, errlen);
		if (r == 0)
			vm->opts.fs_changed = 0;
		else
			x->broken = 1;
	}
	if (r == 0)
		r = set_stdio(vm, run, err, errlen);
	if (r == 0 && x->o.point == SBX_POINT_ENTRY)
		r = set_stack(x, run, err, errlen);
	if (r == 0 && x->o.point == SBX_POINT_CALL)
		r = set_input(x, run, err, errlen);
	if (r == 0 && x->o.deterministic) {
		set_clock(x);
		vm->opts.det_random = 1;
		vm->opts.det_state = run->seed;
	}
	return r;
}

static void go(struct sbx_exec *x)
{
	volatile struct sbx_exec_ctl *c = ctl_of(x->vm);
	if (x->spin || x->o.poll_run) {
		/* We poll the ring while the run lasts: no doorbells. */
		volatile struct sbx_ring *ring = sbx_gptr(x->vm, SBX_RING_ADDR, sizeof(*ring));
		__atomic_and_fetch(&ring->flags, ~SBX_RING_NEED_WAKEUP, __ATOMIC_SEQ_CST);
	}
	c->flags = x->spin ? 0 : SBX_EXEC_NEED_WAKEUP;
	x->done_seen = __atomic_load_n(&c->done, __ATOMIC_ACQUIRE);
	pthread_mutex_lock(&x->lock);
	x->running = 1;
	pthread_mutex_unlock(&x->lock);
	__atomic_store_n(&c->go, ++x->gen, __ATOMIC_RELEASE);
}

/* The vCPU is held (parked or stopped): any reset is safe. */
static int reset_stopped(struct sbx_exec *x, struct sbx_exec_run *run, int stopped, char *err,
			 size_t errlen)
{
	struct sbx_vm *vm = x->vm;
	int pt = 0, r;
	/* The poller writes the ring's flags under ring_lock: not while pages go back. */
	if (stopped)
		pthread_mutex_lock(&vm->proc.ring.lock);
	else
		lock_ring(vm);
	r = sbx_reset_pages(vm, x->snap, 1, &run->reset_pages, &pt, err, errlen);
	/* After a crash the registers are wherever it left them; without trust in the
	 * program they are put back every time, all of them. */
	if (r == 0 && (stopped || !x->o.fast))
		r = sbx_reset_vcpu(vm, x->snap, err, errlen);
	if (r == 0 && x->msrs &&
	    ioctl(vm->proc.vcpu.fd, KVM_SET_MSRS, x->msrs) != (int)x->msrs->nmsrs)
		r = fail(err, errlen, -EIO, "reset: KVM_SET_MSRS refused an MSR it took before");
	if (r == 0)
		r = prepare(x, run, err, errlen);
	if (r == 0)
		go(x);
	pthread_mutex_unlock(&vm->proc.ring.lock);
	if (r < 0) {
		x->broken = 1;
		return r;
	}
	run->slow = 1;
	pthread_mutex_lock(&x->lock);
	if (stopped) {
		x->stopped = 0;
		x->run_req = 1;
	} else {
		x->parked = 0;
	}
	pthread_cond_broadcast(&x->cond);
	pthread_mutex_unlock(&x->lock);
	return 0;
}

/* The vCPU spins in the park loop: reset under it. -EAGAIN when it must be stopped first. */
static int reset_spinning(struct sbx_exec *x, struct sbx_exec_run *run, char *err, size_t errlen)
{
	struct sbx_vm *vm = x->vm;
	volatile struct sbx_ring *ring = sbx_gptr(vm, SBX_RING_ADDR, sizeof(*ring));
	int pt = 0;
	/* The poller must not be serving anything while the ring's page goes back. */
	lock_ring(vm);
	/* A request published after the run's end is not served (it could block this thread):
	 * the reset waits for the vCPU to stop, and the ring goes back with its page. */
	if (__atomic_load_n(&ring->head, __ATOMIC_ACQUIRE) != vm->proc.ring.tail) {
		pthread_mutex_unlock(&vm->proc.ring.lock);
		return -EAGAIN;
	}
	int r = sbx_reset_pages(vm, x->snap, 0, &run->reset_pages, &pt, err, errlen);
	if (r == 0)
		r = prepare(x, run, err, errlen);
	if (r == 0)
		go(x);
	pthread_mutex_unlock(&vm->proc.ring.lock);
	if (r < 0 && r != -EAGAIN)
		x->broken = 1;
	return r;
}

/* How long a parked run's waiting thread serves the ring before the guest rings instead. */
#define SBX_POLL_RUN_US 2000.0

/* We stop serving the ring: the guest rings from now on (the poller's going-idle dance: a
 * request published before the flag was seen is served here). */
static void ring_idle(struct sbx_vm *vm)
{
	volatile struct sbx_ring *ring = sbx_gptr(vm, SBX_RING_ADDR, sizeof(*ring));
	pthread_mutex_lock(&vm->proc.ring.lock);
	__atomic_or_fetch(&ring->flags, SBX_RING_NEED_WAKEUP, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&ring->head, __ATOMIC_SEQ_CST) != vm->proc.ring.tail)
		vm->stats.polled += (uint64_t)sbx_ring_serve(vm);
	pthread_mutex_unlock(&vm->proc.ring.lock);
}

/* Waits for the run to end: 0 ended by parking, 1 stopped, with the time limit applied. */
static int wait_end(struct sbx_exec *x)
{
	struct sbx_vm *vm = x->vm;
	volatile struct sbx_exec_ctl *c = ctl_of(vm);
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	uint64_t ms = x->o.timeout_ms;
	dl.tv_sec += (time_t)(ms / 1000);
	dl.tv_nsec += (long)(ms % 1000) * 1000000;
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}
	if (x->spin || x->o.poll_run) {
		/* The run is short and a core is ours: spin on the mailbox and serve the ring,
		 * no exit. Parked runs: for SBX_POLL_RUN_US at most, then the guest rings. */
		const volatile struct sbx_ring *ring =
		    (const volatile struct sbx_ring *)(vm->proc.mem.base + SBX_RING_ADDR);
		struct timespec t0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (uint64_t i = 0;; i++) {
			if (__atomic_load_n(&c->done, __ATOMIC_ACQUIRE) != x->done_seen) {
				if (x->spin)
					return 0;
				break; /* the kernel is ringing to park: wait for it below */
			}
			if (__atomic_load_n(&ring->head, __ATOMIC_ACQUIRE) !=
			    __atomic_load_n(&vm->proc.ring.tail, __ATOMIC_ACQUIRE)) {
				pthread_mutex_lock(&vm->proc.ring.lock);
				vm->stats.polled += (uint64_t)sbx_ring_serve(vm);
				pthread_mutex_unlock(&vm->proc.ring.lock);
				continue;
			}
			if ((i & 1023) == 1023) {
				/* Some 40 us of spinning: let a thread that shares our core run
				 * (the vCPU's, when the machine is busier than its cores). */
				sched_yield();
				pthread_mutex_lock(&x->lock);
				int st = x->stopped, pk = x->parked;
				pthread_mutex_unlock(&x->lock);
				if (st)
					return 1;
				if (pk)
					return 0;
				if (!x->spin && us_since(&t0) > SBX_POLL_RUN_US) {
					ring_idle(vm);
					break;
				}
				if (ms) {
					struct timespec now;
					clock_gettime(CLOCK_REALTIME, &now);
					if (now.tv_sec > dl.tv_sec ||
					    (now.tv_sec == dl.tv_sec && now.tv_nsec >= dl.tv_nsec))
						goto timeout;
				}
			}
			__builtin_ia32_pause();
		}
	}
	if (!x->spin) {
		pthread_mutex_lock(&x->lock);
		int w = 0;
		while (!x->parked && !x->stopped && w != ETIMEDOUT)
			w = ms ? pthread_cond_timedwait(&x->cond, &x->lock, &dl)
			       : pthread_cond_wait(&x->cond, &x->lock);
		int st = x->stopped, pk = x->parked;
		pthread_mutex_unlock(&x->lock);
		if (st)
			return 1;
		if (pk)
			return 0;
	}
timeout:;
	char why[96];
	snprintf(why, sizeof(why), "wall-clock limit reached: --timeout %llu ms",
		 (unsigned long long)ms);
	sbx_vm_kill(vm, SBX_END_LIMIT, SBX_STATUS_LIMIT_TIME, 0, "%s", why);
	pthread_mutex_lock(&x->lock);
	while (!x->stopped && !x->parked)
		pthread_cond_wait(&x->cond, &x->lock);
	if (x->parked) {
		/* Parked just as the time ran out: the kill ends it. */
		pthread_cond_broadcast(&x->cond);
		while (!x->stopped)
			pthread_cond_wait(&x->cond, &x->lock);
	}
	pthread_mutex_unlock(&x->lock);
	return 1;
}

int sbx_exec_one(struct sbx_exec *x, struct sbx_exec_run *run, char *err, size_t errlen)
{
	struct sbx_vm *vm = x->vm;
	memset(&run->res, 0, sizeof(run->res));
	if (x->broken)
		return fail(err, errlen, -EIO, "this sandbox failed a reset earlier");
	run->reset_pages = 0;
	run->slow = 0;
	run->parked = 0;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* Before the run can start: a short one may be over before we look again. */
	uint64_t exits0 = vm->stats.exits;
	pthread_mutex_lock(&x->lock);
	/* A kill for the last run that came after it had ended, before `running` was cleared
	 * (its watcher a moment late) has the vCPU thread stopping: the stopped reset clears it,
	 * where it would otherwise end this run. */
	if (atomic_load(&vm->life.stopping) && !x->stopped) {
		pthread_cond_broadcast(&x->cond); /* a vCPU thread parked in an exit waits on it */
		while (atomic_load(&vm->life.stopping) && !x->stopped)
			pthread_cond_wait(&x->cond, &x->lock);
	}
	int stopped = x->stopped, parked = x->parked;
	pthread_mutex_unlock(&x->lock);
	int r;
	if (!stopped && !parked) {
		/* Fast: the last run parked spinning. */
		r = reset_spinning(x, run, err, errlen);
		if (r == -EAGAIN) {
			/* Page tables among the pages: have the kernel ring, then reset held. */
			ctl_of(vm)->flags = SBX_EXEC_NEED_WAKEUP;
			parked = wait_parked(x);
			stopped = !parked;
			r = reset_stopped(x, run, stopped, err, errlen);
		}
	} else {
		r = reset_stopped(x, run, stopped, err, errlen);
	}
	if (r < 0)
		return r;
	run->reset_us = us_since(&t0);
	x->runs++;
	int ended = wait_end(x);
	pthread_mutex_lock(&x->lock);
	x->running = 0;
	pthread_mutex_unlock(&x->lock);
	run->exits = vm->stats.exits - exits0;
	run->oom = ((const volatile struct sbx_bootinfo *)(vm->proc.mem.base + SBX_BOOTINFO_ADDR))
		       ->enomem != x->enomem;
	if (ended == 0) {
		uint32_t st = ctl_of(vm)->status;
		run->parked = 1;
		run->res.end = SBX_END_EXIT;
		run->res.status = (int)(st & 0xff);
		snprintf(run->res.reason, sizeof(run->res.reason), "exited with status %u",
			 st & 0xff);
	} else {
		pthread_mutex_lock(&x->lock);
		run->res = x->res;
		pthread_mutex_unlock(&x->lock);
		/* A guest that broke the hypercall ABI (a wild write over its ring) ended its own
		 * run: a result like a crash, and the next run starts from a full reset. */
	}
	if (x->o.verify_every && x->runs % x->o.verify_every == 0) {
		/* The debug compare needs the next reset done with the vCPU held. */
		ctl_of(vm)->flags = SBX_EXEC_NEED_WAKEUP;
		int p = ended == 0 ? wait_parked(x) : 0;
		uint64_t pages;
		int pt;
		if (p)
			lock_ring(vm);
		else
			pthread_mutex_lock(&vm->proc.ring.lock);
		r = sbx_reset_pages(vm, x->snap, 1, &pages, &pt, err, errlen);
		if (r == 0)
			r = sbx_reset_verify(vm, x->snap, err, errlen);
		pthread_mutex_unlock(&vm->proc.ring.lock);
		if (r < 0)
			return r;
	}
	return 0;
}

void sbx_exec_info(const struct sbx_exec *x, struct sbx_exec_info *info)
{
	memset(info, 0, sizeof(*info));
	if (x->o.point == SBX_POINT_CALL && x->ncounters) {
		info->counters = x->vm->proc.mem.base + x->counters;
		info->ncounters = x->ncounters;
	}
	info->input_max = x->input_max;
	info->open_ms = x->open_ms;
	info->snapshot_pages = x->snap_pages;
}

struct sbx_vm *sbx_exec_vm(struct sbx_exec *x)
{
	return x->vm;
}

void sbx_exec_close(struct sbx_exec *x)
{
	if (!x)
		return;
	if (x->thread_started) {
		sbx_vm_kill(x->vm, SBX_END_ERROR, SBX_STATUS_ERROR, 0, "closed");
		pthread_mutex_lock(&x->lock);
		x->quit = 1;
		pthread_cond_broadcast(&x->cond);
		pthread_mutex_unlock(&x->lock);
		pthread_join(x->thread, NULL);
	}
	sbx_snapshot_free(x->snap);
	sbx_tmp_free(x->tmp_saved);
	free(x->msrs);
	sbx_vm_destroy(x->vm);
	pthread_mutex_destroy(&x->lock);
	pthread_cond_destroy(&x->cond);
	free(x);
}
