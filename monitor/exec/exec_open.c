/* Opening an exec sandbox: created from the front end's config, run to its point (where the
 * guest kernel parks it: struct sbx_exec_ctl in sbx_abi.h; or, in a program with threads, where
 * the monitor pauses every vCPU: POINT), and snapshotted there; and closing it. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <x86intrin.h>

#include "exec_priv.h"
#include "persist.h"
#include "sandbox_priv.h"

/* The engine and its sandbox, configured for repeated runs (not started). */
static int exec_new(const struct sbx_config *cfg, const struct sbx_exec_opts *o, struct sbx_exec *x,
		    char *err, size_t errlen)
{
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
	x->spin = o->fast && sbx_cpu_count() != 1;
	/* The thread waiting for a run's end serves the ring itself: no poller. */
	if (x->spin || o->poll_run)
		c.poll = SBX_POLL_OFF;
	int r = sbx_vm_create(&c, &x->vm, err, errlen);
	if (r < 0)
		return r;
	struct sbx_vm *vm = x->vm;
	vm->exec = x;
	vm->hooks.doorbell = sbx_exec_doorbell;
	vm->hooks.point = sbx_exec_point;
	vm->opts.confine_thread = 1;
	if (x->spin)
		vm->opts.spin_us = 1000;
	if (!o->fast)
		vm->opts.full_reset = 1; /* the program may be hostile: it may reach CPL0 */
	vm->opts.boot_flags = SBX_BOOT_EXEC | (o->point == SBX_POINT_STDIN ? SBX_BOOT_WARM : 0) |
			      (o->point != SBX_POINT_CALL ? SBX_BOOT_EXIT_PARKS : 0);
	return 0;
}

/* Loads the program and sets the vCPU off towards its point. */
static int load(struct sbx_exec *x, char *err, size_t errlen)
{
	struct sbx_vm *vm = x->vm;
	int r = sbx_vm_load(vm, err, errlen);
	if (r < 0)
		return r;
	if (!vm->proc.image.khdr.exec_start)
		return sbx_fail(err, errlen, -ENOTSUP,
				"the guest kernel cannot run from a snapshot");
	volatile struct sbx_exec_ctl *ctl = sbx_exec_ctl(vm);
	memset((void *)ctl, 0, sizeof(*ctl));
	ctl->flags = SBX_EXEC_NEED_WAKEUP; /* the point always parks in an exit */
	x->done_seen = 0;
	if (x->o.point == SBX_POINT_ENTRY) {
		/* The kernel saves the start's extended state and parks at once; every run then
		 * starts at the entry on a stack of its own. */
		struct kvm_regs regs;
		if (ioctl(vm->proc.vcpu.fd, KVM_GET_REGS, &regs) < 0 ||
		    (regs.rip = vm->proc.image.khdr.exec_start,
		     ioctl(vm->proc.vcpu.fd, KVM_SET_REGS, &regs) < 0))
			return sbx_fail(err, errlen, -errno, "setting the vCPU's start: %s",
					strerror(errno));
	}
	if (x->o.deterministic) {
		uint32_t msr = 0x10; /* IA32_TSC */
		uint64_t tsc = 0;
		uint64_t h = __rdtsc();
		if (sbx_kvm_msrs(vm, 0, &msr, &tsc, 1) == 1)
			x->tsc_offset = (int64_t)(tsc - h);
	}
	return 0;
}

/* The point's arguments come from the guest: the counters and the input buffer must be user
 * memory inside RAM. */
static int check_point(struct sbx_exec *x, char *err, size_t errlen)
{
	struct sbx_vm *vm = x->vm;
	volatile struct sbx_exec_ctl *c = sbx_exec_ctl(vm);
	if (c->status != SBX_EXEC_AT_POINT)
		return sbx_fail(err, errlen, -ECANCELED,
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
		return sbx_fail(
		    err, errlen, -EINVAL,
		    "the fuzz driver's coverage counters [0x%llx, +%llu) are not user memory",
		    (unsigned long long)x->counters, (unsigned long long)x->ncounters);
	if (!x->input_max || x->input < SBX_USER_ADDR || !sbx_gptr_ro(vm, x->input, x->input_max))
		return sbx_fail(err, errlen, -EINVAL,
				"the fuzz driver's input buffer [0x%llx, +%llu) is not user memory",
				(unsigned long long)x->input, (unsigned long long)x->input_max);
	return 0;
}

/* Runs the program to its point, bounded like a run (a program that never reaches it): 1 the
 * kernel parked there, 2 a thread of a program with threads asked (POINT). */
static int run_to_point(struct sbx_exec *x, char *err, size_t errlen)
{
	int r = sbx_exec_start_vcpu(x, err, errlen);
	if (r < 0)
		return r;
	int w = sbx_exec_wait_parked(x, x->o.timeout_ms);
	if (w == 0)
		return sbx_fail(err, errlen, -ECANCELED, "%s ended before its snapshot point: %s",
				x->vm->cfg.name ? x->vm->cfg.name : x->vm->cfg.prog, x->res.reason);
	r = w == 1 ? check_point(x, err, errlen) : 0;
	return r < 0 ? r : w;
}

/* The snapshot at the point, and what each run compares with it. */
static int snapshot_point(struct sbx_exec *x, char *err, size_t errlen)
{
	struct sbx_vm *vm = x->vm;
	/* The snapshot's counters are zero, as every run's start: a reset compares equal. */
	if (x->o.point == SBX_POINT_CALL && x->ncounters)
		memset(vm->proc.mem.base + x->counters, 0, x->ncounters);
	/* The calls refused on the way here are said once, not again at the end of every run
	 * that ends by a stop (a crash, a time limit; every run after a point taken with
	 * threads), which says the counts it finds. */
	sbx_report_refused_so_far(vm);
	int r = sbx_snapshot_take(vm, &x->snap, err, errlen);
	if (r < 0)
		return r;
	/* Whole pages of counters are zeroed before each run rather than put back; pages they
	 * share with other data are put back, then their counters zeroed. */
	uint64_t klo = (x->counters + SBX_PAGE_SIZE - 1) & ~(SBX_PAGE_SIZE - 1);
	uint64_t khi = (x->counters + x->ncounters) & ~(SBX_PAGE_SIZE - 1);
	sbx_snapshot_keep(x->snap, x->ncounters ? klo : 0, x->ncounters ? khi : 0, SBX_EXEC_ADDR);
	if (!x->o.fast && (r = sbx_kvm_msrs_capture(vm->proc.vcpu.fd, &x->msrs, err, errlen)) < 0)
		return r;
	if ((r = sbx_tmp_save(vm, &x->tmp_saved, err, errlen)) < 0)
		return r;
	vm->opts.fs_changed = 0;
	x->enomem = ((const struct sbx_bootinfo *)(vm->proc.mem.base + SBX_BOOTINFO_ADDR))->enomem;
	x->done_seen = sbx_exec_ctl(vm)->done;
	x->snap_pages = sbx_resident_pages(vm);
	return 0;
}

static int capture_thread_msrs(struct sbx_exec *x, char *err, size_t errlen)
{
	struct sbx_thread_rec *recs = calloc(SBX_MAX_VCPUS, sizeof(*recs));
	if (!recs)
		return sbx_fail(err, errlen, -ENOMEM, "out of memory");
	unsigned n = sbx_threads_records(x->vm, recs, SBX_MAX_VCPUS);
	int r = 0;
	for (unsigned i = 0; i < n && r == 0; i++)
		r = sbx_kvm_msrs_capture(recs[i].fd, &x->tmsrs[recs[i].index], err, errlen);
	free(recs);
	return r;
}

/* The point of a program with threads: the kernel cannot park every thread, so the monitor
 * pauses every vCPU where the asking thread waits for its answer, takes the snapshot there, and
 * ends this run. Each run then starts from a full reset that puts every thread back
 * (sbx_reset_threads), the asking one to ask again and go on. */
static int snapshot_paused(struct sbx_exec *x, char *err, size_t errlen)
{
	struct sbx_vm *vm = x->vm;
	int was = 0;
	uint64_t ms = x->o.timeout_ms ? x->o.timeout_ms : 10000;
	int r = sbx_pause_hold(vm, ms > INT32_MAX ? INT32_MAX : (int)ms, &was);
	if (r < 0)
		return sbx_fail(err, errlen, r, "%s: pausing its threads at the snapshot point: %s",
				vm->cfg.name ? vm->cfg.name : vm->cfg.prog,
				r == -ETIMEDOUT ? "they did not stop in time" : "it ended");
	/* The fuzz driver's arguments, read once every vCPU is still (--warm's point has none,
	 * and its kernel writes no status). */
	r = x->o.point == SBX_POINT_CALL ? check_point(x, err, errlen) : 0;
	if (r == 0)
		r = snapshot_point(x, err, errlen);
	x->paused = r == 0;
	/* Untrusted runs put back every MSR of every vCPU: a handler that reaches CPL0 on a
	 * thread's vCPU could change more than the snapshot's threads section holds. */
	if (r == 0 && !x->o.fast)
		r = capture_thread_msrs(x, err, errlen);
	/* Nothing the threads would do from here reaches a run: the kill comes before they go on,
	 * and no one enters the guest again. */
	sbx_vm_kill(vm, SBX_END_ERROR, SBX_STATUS_ERROR, 0, "snapshot taken");
	sbx_pause_release(vm, was);
	pthread_mutex_lock(&x->lock);
	while (!x->stopped)
		pthread_cond_wait(&x->cond, &x->lock);
	x->point_wanted = 0;
	pthread_mutex_unlock(&x->lock);
	/* The pid space as every run after a reset has it: run 1's thread ids are run 2's. */
	sbx_procs_reset(vm);
	/* What the first request's reset would refuse (a vCPU that will not take its state back,
	 * an object the host cannot make again) fails the open instead, by name; the threads
	 * then stop again, as after a run. */
	if (r == 0 && (r = sbx_reset_threads(vm, x->snap, err, errlen)) == 0)
		r = sbx_reset_monitor(vm, x->snap, err, errlen);
	sbx_threads_reset(vm);
	return r;
}

int sbx_exec_open(const struct sbx_config *cfg, const struct sbx_exec_opts *o,
		  struct sbx_exec **out, char *err, size_t errlen)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	*out = NULL;
	struct sbx_exec *x = calloc(1, sizeof(*x));
	if (!x)
		return sbx_fail(err, errlen, -ENOMEM, "out of memory");
	int r;
	if ((r = exec_new(cfg, o, x, err, errlen)) < 0 || (r = load(x, err, errlen)) < 0 ||
	    (r = run_to_point(x, err, errlen)) < 0 ||
	    (r = r == 2 ? snapshot_paused(x, err, errlen) : snapshot_point(x, err, errlen)) < 0) {
		sbx_exec_close(x);
		return r;
	}
	x->open_ms = sbx_ms_since(&t0);
	*out = x;
	return 0;
}

void sbx_exec_close(struct sbx_exec *x)
{
	if (!x)
		return;
	sbx_exec_stop_vcpu(x);
	sbx_snapshot_free(x->snap);
	sbx_tmp_free(x->tmp_saved);
	free(x->msrs);
	for (unsigned i = 0; i < SBX_MAX_VCPUS; i++)
		free(x->tmsrs[i]);
	sbx_vm_destroy(x->vm);
	pthread_mutex_destroy(&x->lock);
	pthread_cond_destroy(&x->cond);
	free(x);
}
