/* One run of an exec sandbox: put it back as at the snapshot, let it go, wait for its end, and
 * tell how it ended. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "exec_priv.h"
#include "sandbox_priv.h"

/* How the run ended: where runs end (parked), or otherwise, as sbx_vm_run told. */
static void outcome(struct sbx_exec *x, struct sbx_exec_run *run, int ended)
{
	struct sbx_vm *vm = x->vm;
	run->oom = ((const volatile struct sbx_bootinfo *)(vm->proc.mem.base + SBX_BOOTINFO_ADDR))
		       ->enomem != x->enomem;
	if (ended == 0) {
		uint32_t st = sbx_exec_ctl(vm)->status;
		run->parked = 1;
		run->res.end = SBX_END_EXIT;
		run->res.status = (int)(st & 0xff);
		snprintf(run->res.reason, sizeof(run->res.reason), "exited with status %u",
			 st & 0xff);
		return;
	}
	/* A guest that broke the hypercall ABI (a wild write over its ring) ended its own run:
	 * a result like a crash, and the next run starts from a full reset. */
	pthread_mutex_lock(&x->lock);
	run->res = x->res;
	pthread_mutex_unlock(&x->lock);
	/* The driver's SBX_EXEC_OP_DONE after a point taken with threads: the kernel's EXIT
	 * carries the status it wrote (the guest's word, as a park is). */
	if (x->o.point == SBX_POINT_CALL && x->paused && run->res.end == SBX_END_EXIT &&
	    run->res.status == 0 && sbx_exec_ctl(vm)->status == SBX_EXEC_RUN_DONE)
		run->parked = 1;
}

int sbx_exec_one(struct sbx_exec *x, struct sbx_exec_run *run, char *err, size_t errlen)
{
	struct sbx_vm *vm = x->vm;
	memset(&run->res, 0, sizeof(run->res));
	if (x->broken)
		return sbx_fail(err, errlen, -EIO, "this sandbox failed a reset earlier");
	run->reset_pages = 0;
	run->reset_tables = 0;
	run->sites_patched = 0;
	run->reset_reload = 0;
	run->slow = 0;
	run->parked = 0;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* Before the run can start: a short one may be over before we look again. */
	uint64_t exits0 = vm->stats.exits;
	/* The debug compare of the run before, done now rather than when it ended: the caller
	 * has read that run's coverage counters since, which the compare's reset puts back. */
	if (x->verify_due) {
		x->verify_due = 0;
		int v = sbx_exec_verify(x, x->verify_parked, err, errlen);
		if (v < 0)
			return v;
	}
	int r = sbx_exec_reset(x, run, err, errlen);
	if (r < 0)
		return r;
	run->reset_us = sbx_ms_since(&t0) * 1e3;
	x->runs++;
	int ended = sbx_exec_wait_end(x);
	run->sites_patched = sbx_exec_ctl(vm)->repatched;
	if (run->learn_sites && ended == 0)
		sbx_exec_learn_sites(x);
	/* The processes the run started end with it (a CGI handler's children, a target's). */
	sbx_procs_reset(vm);
	pthread_mutex_lock(&x->lock);
	x->running = 0;
	pthread_mutex_unlock(&x->lock);
	run->exits = vm->stats.exits - exits0;
	outcome(x, run, ended);
	if (x->o.verify_every && x->runs % x->o.verify_every == 0) {
		x->verify_due = 1;
		x->verify_parked = ended == 0;
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
