/* What each run of an exec sandbox gets of its own, once its pages are back: the monitor's
 * state as at the snapshot, this run's stdio, its stack (at the entry) or input (at the fuzz
 * driver's call), its clocks when runs are deterministic; and the word that lets it go. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <x86intrin.h>

#include "calls.h"
#include "exec_priv.h"
#include "persist.h"

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
			return sbx_fail(err, errlen, -errno, "run: fd %d: %s", i, strerror(errno));
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
		return sbx_fail(err, errlen, -EIO, "getrandom: %s", strerror(errno));
	}
	struct loader_mem lm = {.base = vm->proc.mem.base, .size = vm->proc.mem.size};
	uint64_t rsp;
	char lerr[300];
	int r = loader_build_stack(&lm, &vm->proc.image.img, &sa, &rsp, lerr, sizeof(lerr));
	if (r < 0)
		return sbx_fail(err, errlen, r, "run: building the stack: %s", lerr);
	/* Written behind KVM's back: put back before the next run like the guest's writes. */
	sbx_mem_dirty(vm, rsp & ~(SBX_PAGE_SIZE - 1),
		      vm->proc.mem.size - (rsp & ~(SBX_PAGE_SIZE - 1)));
	volatile struct sbx_exec_ctl *c = sbx_exec_ctl(vm);
	c->entry_rsp = rsp;
	c->entry_rip = vm->proc.image.img.entry;
	return 0;
}

static int set_input(struct sbx_exec *x, const struct sbx_exec_run *run, char *err, size_t errlen)
{
	struct sbx_vm *vm = x->vm;
	if (run->input_len > x->input_max)
		return sbx_fail(err, errlen, -E2BIG,
				"run: input of %zu bytes, the guest takes %llu", run->input_len,
				(unsigned long long)x->input_max);
	if (run->input_len && sbx_copy_to_guest(vm, x->input + x->input_max - run->input_len,
						run->input, run->input_len) < 0)
		return sbx_fail(err, errlen, -EFAULT, "run: the input buffer left guest RAM");
	if (x->ncounters)
		memset(vm->proc.mem.base + x->counters, 0, x->ncounters);
	sbx_exec_ctl(vm)->input_len = run->input_len;
	return 0;
}

/* Deterministic runs: every run's clocks start at the same instant. */
static void set_clock(struct sbx_exec *x)
{
	struct sbx_vm *vm = x->vm;
	struct sbx_bootinfo *b = sbx_gptr(vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	b->tsc_at_boot = __rdtsc() + (uint64_t)x->tsc_offset;
	b->realtime_ns = 1700000000ll * 1000000000ll;
	b->monotonic_ns = 1000000000ll;
	b->start_ns = b->monotonic_ns;
	b->idle_ns = 0; /* CPU time too starts at zero (waited_ns goes on, as the kernel saw it) */
	b->steal.steal = 0; /* KVM adds to it what comes next (1.23) */
	b->clock_seq += 2;
}

/* The monitor's state as at the snapshot: the mailbox, the handles, and the --tmp
 * directories if a run may have changed them. */
static int reset_monitor(struct sbx_exec *x, char *err, size_t errlen)
{
	struct sbx_vm *vm = x->vm;
	/* The mailbox as at the snapshot, but for the words the parked kernel may be reading
	 * (go, done, flags): nothing a run leaves there reaches the next. */
	uint8_t *mb = vm->proc.mem.base + SBX_EXEC_ADDR;
	const uint8_t *sp = sbx_snapshot_page(x->snap, SBX_EXEC_ADDR);
	memcpy(mb + SBX_EXEC_STATUS, sp + SBX_EXEC_STATUS, SBX_PAGE_SIZE - SBX_EXEC_STATUS);
	int r = sbx_reset_monitor(vm, x->snap, err, errlen);
	if (r < 0 || !vm->opts.fs_changed || !x->tmp_saved)
		return r;
	/* The handles are closed: put the --tmp directories back as they were. A failure is the
	 * sandbox's: its next run would see this one's files. */
	r = sbx_tmp_restore(vm, x->tmp_saved, err, errlen);
	if (r == 0)
		vm->opts.fs_changed = 0;
	else
		x->broken = 1;
	return r;
}

int sbx_exec_prepare(struct sbx_exec *x, struct sbx_exec_run *run, char *err, size_t errlen)
{
	struct sbx_vm *vm = x->vm;
	int r = reset_monitor(x, err, errlen);
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

void sbx_exec_go(struct sbx_exec *x, uint32_t nfix)
{
	volatile struct sbx_exec_ctl *c = sbx_exec_ctl(x->vm);
	c->nfix = nfix;
	/* Written behind KVM's back like the list of tables: put back at the next reset. */
	if (x->nsites) {
		uint64_t len = x->nsites * sizeof(x->sites[0]);
		memcpy(x->vm->proc.mem.base + SBX_EXEC_SITES_ADDR, x->sites, len);
		sbx_mem_dirty(x->vm, SBX_EXEC_SITES_ADDR, len);
	}
	c->nsites = x->nsites;
	if (x->spin || x->o.poll_run)
		sbx_ring_need_wakeup(x->vm, 0); /* we poll the ring while the run lasts */
	c->flags = x->spin ? 0 : SBX_EXEC_NEED_WAKEUP;
	x->done_seen = __atomic_load_n(&c->done, __ATOMIC_ACQUIRE);
	x->launches = sbx_threads_launches(x->vm);
	pthread_mutex_lock(&x->lock);
	x->running = 1;
	pthread_mutex_unlock(&x->lock);
	__atomic_store_n(&c->go, ++x->gen, __ATOMIC_RELEASE);
}
