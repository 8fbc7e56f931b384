/* Between two runs of an exec sandbox: the pages the last run wrote go back, and with the vCPU
 * held its registers too; then this run is set up and let go. Page-table pages that go back
 * are listed for the kernel to write again before the run (KVM shadows them and does not see
 * the monitor's copies); held, any reset is safe, with the memslot re-added where the list
 * cannot serve (threads, a list too long, the kernel's own mappings changed). */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "exec_priv.h"
#include "persist.h"

/* ring_lock for a reset: the poller writes the ring's flags under it, so nothing it serves
 * may overlap pages going back. A poller still blocked in a host call for the last run is cut
 * short (that run is over). */
static void lock_ring(struct sbx_exec *x, int stopped)
{
	if (stopped)
		pthread_mutex_lock(&x->vm->proc.ring.lock);
	else
		sbx_ring_lock(x->vm, SBX_RING_KICK, 0);
}

/* The vCPU registers and MSRs as at the snapshot: after a crash they are wherever it left
 * them; without trust in the program they are put back every time, all of them. */
static int reset_registers(struct sbx_exec *x, int stopped, char *err, size_t errlen)
{
	struct sbx_vm *vm = x->vm;
	int r = 0;
	if (stopped || !x->o.fast)
		r = sbx_reset_vcpu(vm, x->snap, err, errlen);
	if (r == 0 && x->msrs &&
	    ioctl(vm->proc.vcpu.fd, KVM_SET_MSRS, x->msrs) != (int)x->msrs->nmsrs)
		r = sbx_fail(err, errlen, -EIO,
			     "reset: KVM_SET_MSRS refused an MSR it took before");
	/* The capture leaves out the MSRs that make KVM write guest memory: put off here. */
	if (r == 0 && x->msrs)
		sbx_x86_pv_msrs_off(vm, vm->proc.vcpu.fd, 1);
	return r;
}

/* Every MSR of each thread's vCPU as at a point taken with threads (untrusted runs), once
 * sbx_reset_threads has put the threads back. */
static int reset_thread_msrs(struct sbx_exec *x, char *err, size_t errlen)
{
	for (unsigned i = 1; i < SBX_MAX_VCPUS; i++) {
		int fd;
		uint64_t root;
		uint32_t tid;
		if (x->tmsrs[i] &&
		    (sbx_thread_vcpu(x->vm, i, &fd, &root, &tid) < 0 ||
		     ioctl(fd, KVM_SET_MSRS, x->tmsrs[i]) != (int)x->tmsrs[i]->nmsrs))
			return sbx_fail(err, errlen, -EIO,
					"reset: thread on vCPU %u: KVM_SET_MSRS refused an MSR it "
					"took before",
					i);
		if (x->tmsrs[i])
			sbx_x86_pv_msrs_off(x->vm, fd, 0);
	}
	return 0;
}

/* Lets the held vCPU thread go on: a stopped one runs the sandbox again. */
static void release(struct sbx_exec *x, int stopped)
{
	pthread_mutex_lock(&x->lock);
	if (stopped) {
		x->stopped = 0;
		x->run_req = 1;
	} else {
		x->parked = 0;
	}
	pthread_cond_broadcast(&x->cond);
	pthread_mutex_unlock(&x->lock);
}

/* The vCPU is held (parked or stopped): any reset is safe. */
static int reset_held(struct sbx_exec *x, struct sbx_exec_run *run, int stopped, char *err,
		      size_t errlen)
{
	struct sbx_vm *vm = x->vm;
	int pt = 0;
	uint32_t nfix = 0;
	lock_ring(x, stopped);
	/* Without threads the vCPU goes on in the park loop (from where it rang, or from the
	 * snapshot's registers), which writes the listed tables again before the run. A list the
	 * last run left unfinished (stopped before the kernel was through) is made good by
	 * re-adding the memslot: its pages may equal the snapshot's by now. */
	int launched = sbx_threads_launches(vm) != x->launches;
	int unfinished = sbx_exec_ctl(vm)->nfix != 0;
	int guest = !x->paused && !launched && !unfinished;
	int r = sbx_reset_pages(vm, x->snap, SBX_RESET_PT_RELOAD | (guest ? SBX_RESET_PT_GUEST : 0),
				&run->reset_pages, &pt, &nfix, err, errlen);
	/* KVM's shadow of the windows' tables goes with them (sbx_reset_pages re-adds the
	 * memslot for the tables it knows). */
	if (r == 0 && !pt && (launched || unfinished) && (r = sbx_memslot_reload(vm)) < 0)
		sbx_fail(err, errlen, r, "reset: re-adding the memslot: %s", strerror(-r));
	run->reset_tables = nfix;
	run->reset_reload = pt == 2 || (!pt && (launched || unfinished));
	if (r == 0)
		r = reset_registers(x, stopped, err, errlen);
	/* A snapshot with threads: every run ends stopped (with threads the kernel never
	 * parks), and they start again with it. */
	if (r == 0 && stopped)
		r = sbx_reset_threads(vm, x->snap, err, errlen);
	if (r == 0 && stopped)
		r = reset_thread_msrs(x, err, errlen);
	if (r == 0)
		r = sbx_exec_prepare(x, run, err, errlen);
	if (r == 0)
		sbx_exec_go(x, nfix);
	pthread_mutex_unlock(&vm->proc.ring.lock);
	if (r < 0) {
		x->broken = 1;
		return r;
	}
	run->slow = 1;
	release(x, stopped);
	return 0;
}

/* The vCPU spins in the park loop: reset under it. -EAGAIN when it must be stopped first. */
static int reset_spinning(struct sbx_exec *x, struct sbx_exec_run *run, char *err, size_t errlen)
{
	struct sbx_vm *vm = x->vm;
	int pt = 0;
	if (sbx_threads_launches(vm) != x->launches)
		return -EAGAIN; /* a thread's window: page tables the check does not see */
	if (sbx_exec_ctl(vm)->nfix)
		return -EAGAIN; /* the last list unfinished: a re-added memslot makes it good */
	/* The poller must not be serving anything while the ring's page goes back. */
	lock_ring(x, 0);
	/* A request published after the run's end is not served (it could block this thread):
	 * the reset waits for the vCPU to stop, and the ring goes back with its page. */
	if (sbx_ring_pending(vm)) {
		pthread_mutex_unlock(&vm->proc.ring.lock);
		return -EAGAIN;
	}
	uint32_t nfix = 0;
	int r = sbx_reset_pages(vm, x->snap, SBX_RESET_PT_GUEST, &run->reset_pages, &pt, &nfix, err,
				errlen);
	run->reset_tables = nfix;
	if (r == 0)
		r = sbx_exec_prepare(x, run, err, errlen);
	if (r == 0)
		sbx_exec_go(x, nfix);
	pthread_mutex_unlock(&vm->proc.ring.lock);
	if (r < 0 && r != -EAGAIN)
		x->broken = 1;
	return r;
}

int sbx_exec_reset(struct sbx_exec *x, struct sbx_exec_run *run, char *err, size_t errlen)
{
	pthread_mutex_lock(&x->lock);
	/* A point taken with threads is put back by the stopped reset only (its threads start
	 * with the run); the kernel never parks such a run, but a hostile one could ring as if
	 * parked. It is stopped instead, below. */
	if (x->paused && !x->stopped)
		sbx_vm_kill(x->vm, SBX_END_ERROR, SBX_STATUS_ERROR, 0,
			    "a run of a program with threads parked");
	/* A kill for the last run that came after it had ended, before `running` was cleared
	 * (its watcher a moment late) has the vCPU thread stopping: the stopped reset clears it,
	 * where it would otherwise end this run. */
	if (atomic_load(&x->vm->life.stopping) && !x->stopped) {
		pthread_cond_broadcast(&x->cond); /* a vCPU thread parked in an exit waits on it */
		while (atomic_load(&x->vm->life.stopping) && !x->stopped)
			pthread_cond_wait(&x->cond, &x->lock);
	}
	int stopped = x->stopped, parked = x->parked;
	pthread_mutex_unlock(&x->lock);
	if (stopped || parked)
		return reset_held(x, run, stopped, err, errlen);
	/* Fast: the last run parked spinning. */
	int r = reset_spinning(x, run, err, errlen);
	if (r != -EAGAIN)
		return r;
	/* Page tables the kernel cannot be left to put right, or a request in flight: have the
	 * kernel ring, then reset held. */
	sbx_exec_ctl(x->vm)->flags = SBX_EXEC_NEED_WAKEUP;
	return reset_held(x, run, sbx_exec_wait_parked(x, 0) == 0, err, errlen);
}

int sbx_exec_verify(struct sbx_exec *x, int parked, char *err, size_t errlen)
{
	/* The debug compare needs the next reset done with the vCPU held. */
	sbx_exec_ctl(x->vm)->flags = SBX_EXEC_NEED_WAKEUP;
	int p = parked ? sbx_exec_wait_parked(x, 0) : 0;
	uint64_t pages;
	int pt;
	lock_ring(x, !p);
	int r =
	    sbx_reset_pages(x->vm, x->snap, SBX_RESET_PT_RELOAD, &pages, &pt, NULL, err, errlen);
	if (r == 0)
		r = sbx_reset_verify(x->vm, x->snap, err, errlen);
	pthread_mutex_unlock(&x->vm->proc.ring.lock);
	return r;
}

void sbx_exec_learn_sites(struct sbx_exec *x)
{
	/* With threads the kernel would need the monitor's hold for each (PATCH): it leaves them
	 * to their traps. */
	if (x->paused || x->vm->cfg.no_patch)
		return;
	/* The kernel hands records out in order from the window's start (the cpuid sites' are
	 * at its top): its own end at the first empty one. Guest RAM: a site named here is only
	 * a hint, which the kernel checks as it checks a trap. */
	for (uint64_t a = SBX_PATCH_ADDR; a < SBX_PATCH_ADDR + SBX_PATCH_BYTES;
	     a += SBX_PATCH_REC) {
		const struct sbx_patch_rec *r =
		    (const struct sbx_patch_rec *)(x->vm->proc.mem.base + a);
		if (!r->code_addr)
			break;
		if (r->code[0] == SBX_PATCH_FORM_CPUID || r->site < SBX_USER_ADDR)
			continue;
		/* A site the monitor gave its own bytes back (code jumped into it) would cost
		 * that exit in every run: only sites that still jump to a record of theirs. */
		struct sbx_patch_rec rec;
		if (sbx_patch_record_at(x->vm, r->site, &rec) < 0)
			continue;
		uint32_t i = 0;
		while (i < x->nsites && x->sites[i] != r->site)
			i++;
		if (i == x->nsites && x->nsites < SBX_EXEC_SITES_MAX)
			x->sites[x->nsites++] = r->site;
	}
}
