/* Guest threads: each on a vCPU of its own, run by a host thread of its own, so that they run in
 * parallel. vCPU 0 (proc.vcpu) is the main thread's and keeps the run loop of run.c; the others
 * are created when the guest kernel asks (THREAD_START) and run the short loop below: KVM_RUN,
 * their own ring on a doorbell, and the end of the run. Anything else they meet ends the run,
 * reported as that thread's. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vm.h"

struct sbx_tvcpu {
	struct sbx_vm *vm;
	struct sbx_tlb_cpu tlb;
	int index, fd;
	struct kvm_run *run;
	size_t run_size;
	uint64_t cr3, ring_gpa;
	uint32_t tail;
	pthread_t thread;
	int thread_started;
	int launched;	 /* thread_started is set: its thread may enter the guest (thread_main) */
	clockid_t clock; /* its host thread's CPU clock, for --cpu-time */
	atomic_int clock_set;
	struct sbx_upcall_state upcall;
	/* A fault of this vCPU that came while another reason stopped the run: reported again
	 * once that one is dealt with and the run goes on (-1: none). */
	int refault;
	/* Its host thread ended at an execve, whose new image has not started it afresh: the
	 * old image's state may not run (sbx_thread_resume). */
	int stale;
	/* Made from a snapshot: its host thread starts with the run (sbx_threads_launch). */
	int restored;
	atomic_int at_pause; /* stopped at its pause point (thread_pause) */
};

/* The vCPU index of the thread serving a request here, 0 on any other monitor thread. */
static __thread int sbx_cur_index;

int sbx_thread_current(void)
{
	return sbx_cur_index;
}

int sbx_thread_who(struct sbx_vm *vm, struct sbx_stop_who *who)
{
	struct sbx_threads *th = &vm->proc.threads;
	int i = sbx_cur_index;
	if (i <= 0 || i >= SBX_MAX_VCPUS || !th->v[i])
		return 0;
	*who = (struct sbx_stop_who){
	    .fd = th->v[i]->fd, .cr3 = th->v[i]->cr3, .index = i, .vector = -1};
	return 1;
}

void sbx_threads_init(struct sbx_vm *vm)
{
	struct sbx_threads *th = &vm->proc.threads;
	pthread_mutex_init(&th->lock, NULL);
	pthread_mutex_init(&th->join_lock, NULL);
	pthread_mutex_init(&th->hold_lock, NULL);
	atomic_store(&th->hold, 0);
	atomic_store(&th->ram_writers, 0);
	memset(th->v, 0, sizeof(th->v));
	th->nv = 0;
	atomic_store(&th->started, 0);
	atomic_store(&th->end, 0);
	atomic_store(&th->tid_next, 0);
	for (unsigned i = 0; i < SBX_MAX_VCPUS; i++)
		atomic_store(&th->tid[i], 0);
	atomic_store(&th->tid_hi, 0);
	atomic_store(&th->ended_cpu_ns, 0);
	th->tid_count = 0;
	th->max = vm->cfg.max_threads ? (uint32_t)vm->cfg.max_threads : 256;
	if (th->max > SBX_MAX_VCPUS)
		th->max = SBX_MAX_VCPUS;
	int n = sbx_cpu_count();
	th->ncpus = vm->cfg.cpus && (int)vm->cfg.cpus < n ? (uint32_t)vm->cfg.cpus
							  : (uint32_t)(n > 0 ? n : 1);
	/* The first ncpus CPUs the process may use, taken now: later threads are made by threads
	 * pinned to one CPU (vCPU 0's, the poller's), whose own sets are no guide. */
	cpu_set_t all, set;
	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(all), &all) == 0) {
		uint32_t k = 0;
		for (int i = 0; i < CPU_SETSIZE && k < th->ncpus; i++)
			if (CPU_ISSET(i, &all)) {
				CPU_SET(i, &set);
				k++;
			}
	}
	_Static_assert(sizeof(set) == sizeof(th->cpuset), "a cpu_set_t");
	memcpy(th->cpuset, &set, sizeof(set));
	/* The shootdown's own test knob: PVM does not need it, and CI runs there. */
	const char *sd = getenv("SBX_SHOOTDOWN");
	th->shootdown = sd && !strcmp(sd, "always");
	atomic_store(&th->tlb_gen, 0);
}

/* Drops every translation the vCPU holds: a new page-table root makes KVM load its MMU again,
 * which flushes the vCPU's TLB context (its write-through bit flipped, then put back). */
static void tlb_flush(int fd)
{
	struct kvm_sregs sr;
	if (ioctl(fd, KVM_GET_SREGS, &sr) < 0)
		return;
	uint64_t cr3 = sr.cr3;
	sr.cr3 ^= 8; /* PWT */
	if (ioctl(fd, KVM_SET_SREGS, &sr) < 0)
		return;
	sr.cr3 = cr3;
	ioctl(fd, KVM_SET_SREGS, &sr);
}

/* A vCPU that found the guest held: until the release (or the run's end, or a stop). */
static void hold_wait(struct sbx_vm *vm)
{
	struct sbx_threads *th = &vm->proc.threads;
	while (atomic_load(&th->hold) && !atomic_load(&th->end) &&
	       !atomic_load(&vm->life.stopping)) {
		struct timespec rel = {0, 10 * 1000 * 1000};
		syscall(SYS_futex, &th->hold, FUTEX_WAIT_PRIVATE, 1, &rel, NULL, 0);
	}
}

int sbx_tlb_enter(struct sbx_vm *vm, int fd, struct sbx_tlb_cpu *c)
{
	struct sbx_threads *th = &vm->proc.threads;
	uint64_t g = 0;
	if (th->shootdown) {
		g = atomic_load(&th->tlb_gen);
		if (atomic_load(&c->flushed) != g) {
			tlb_flush(fd);
			atomic_store(&c->flushed, g);
		}
	}
	/* Kept without shootdowns too: a KICK interrupts a vCPU only while it is in the guest
	 * (not a host call of its thread's, which would end with EINTR). Set, then the hold
	 * looked at; the holder sets the hold, then looks at in_run: one sees the other. */
	atomic_store(&c->in_run, 1);
	if (__builtin_expect(atomic_load(&th->hold) != 0, 0)) {
		atomic_store(&c->in_run, 0);
		hold_wait(vm);
		return -1;
	}
	/* A shootdown that came before in_run was visible did not wait for us: look again. */
	if (th->shootdown && atomic_load(&th->tlb_gen) != g) {
		atomic_store(&c->in_run, 0);
		return -1;
	}
	return 0;
}

void sbx_tlb_leave(struct sbx_vm *vm, struct sbx_tlb_cpu *c)
{
	(void)vm;
	atomic_store(&c->in_run, 0);
	/* Only KVM_RUN may be interrupted: never a host call of this thread's (EINTR). A fire
	 * before this only runs the kick's empty handler. */
	if (c->rekick_armed) {
		struct itimerspec off = {0};
		timer_settime(c->rekick, 0, &off, NULL);
		c->rekick_armed = 0;
	}
}

/* Until c has left the guest or flushed for generation g (UINT64_MAX: left it), or *quit. One
 * kick, then again every 2 ms: a vCPU may take long to leave the guest (a slow host), and a
 * storm of signals only slows it further (kicks every 20 us stalled a nested VM's whole events
 * suite). */
static void kick_out(struct sbx_tlb_cpu *c, struct kvm_run *run, pthread_t t, uint64_t g,
		     atomic_int *quit)
{
	for (unsigned i = 0;
	     atomic_load(&c->in_run) && atomic_load(&c->flushed) < g && !atomic_load(quit); i++) {
		if (i % 40 == 0) {
			run->immediate_exit = 1;
			pthread_kill(t, sbx_kick_signal());
		}
		struct timespec ts = {0, 50000};
		nanosleep(&ts, NULL);
	}
}

int sbx_tlb_shootdown(struct sbx_vm *vm)
{
	struct sbx_threads *th = &vm->proc.threads;
	if (!th->shootdown)
		return 0;
	uint64_t g = atomic_fetch_add(&th->tlb_gen, 1) + 1;
	int me = sbx_cur_index;
	if (me != 0 && vm->proc.vcpu.thread_set)
		kick_out(&vm->proc.vcpu.tlb, vm->proc.vcpu.run, vm->proc.vcpu.thread, g,
			 &vm->life.stopping);
	for (unsigned i = 1; i < th->nv && i < SBX_MAX_VCPUS; i++) {
		struct sbx_tvcpu *t = __atomic_load_n(&th->v[i], __ATOMIC_ACQUIRE);
		if (t && t->thread_started && (int)i != me)
			kick_out(&t->tlb, t->run, t->thread, g, &vm->life.stopping);
	}
	return 0;
}

void sbx_threads_hold(struct sbx_vm *vm)
{
	struct sbx_threads *th = &vm->proc.threads;
	pthread_mutex_lock(&th->hold_lock);
	atomic_store(&th->hold, 1);
	if (vm->proc.vcpu.thread_set)
		kick_out(&vm->proc.vcpu.tlb, vm->proc.vcpu.run, vm->proc.vcpu.thread, UINT64_MAX,
			 &vm->proc.threads.end);
	/* Entries are only added. One added after this loop is started by a THREAD_START,
	 * served under ring_lock, which a PATCH holder holds; during a stop (sbx_patch_resume's
	 * hold) none is started. */
	for (unsigned i = 1; i < th->nv && i < SBX_MAX_VCPUS; i++) {
		struct sbx_tvcpu *t = __atomic_load_n(&th->v[i], __ATOMIC_ACQUIRE);
		if (t && __atomic_load_n(&t->thread_started, __ATOMIC_SEQ_CST))
			kick_out(&t->tlb, t->run, t->thread, UINT64_MAX, &vm->proc.threads.end);
	}
}

void sbx_threads_release(struct sbx_vm *vm)
{
	struct sbx_threads *th = &vm->proc.threads;
	atomic_store(&th->hold, 0);
	syscall(SYS_futex, &th->hold, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
	pthread_mutex_unlock(&th->hold_lock);
}

void sbx_threads_ram_write(struct sbx_vm *vm, int on)
{
	if (on)
		atomic_fetch_add(&vm->proc.threads.ram_writers, 1);
	else
		atomic_fetch_sub(&vm->proc.threads.ram_writers, 1);
}

unsigned sbx_threads_ram_writers(struct sbx_vm *vm)
{
	return atomic_load(&vm->proc.threads.ram_writers);
}

static void move_rip(int fd, uint64_t from, uint64_t to)
{
	struct kvm_regs r;
	if (ioctl(fd, KVM_GET_REGS, &r) == 0 && r.rip == from) {
		r.rip = to;
		ioctl(fd, KVM_SET_REGS, &r);
	}
}

void sbx_threads_move_rip(struct sbx_vm *vm, uint64_t from, uint64_t to)
{
	struct sbx_threads *th = &vm->proc.threads;
	move_rip(vm->proc.vcpu.fd, from, to);
	/* Every vCPU made, running a thread or not: a stale one's state may run again. */
	for (unsigned i = 1; i < th->nv && i < SBX_MAX_VCPUS; i++) {
		struct sbx_tvcpu *t = __atomic_load_n(&th->v[i], __ATOMIC_ACQUIRE);
		if (t)
			move_rip(t->fd, from, to);
	}
}

int sbx_thread_vcpu(struct sbx_vm *vm, unsigned i, int *fd, uint64_t *root, uint32_t *tid)
{
	struct sbx_threads *th = &vm->proc.threads;
	if (i == 0) {
		*fd = vm->proc.vcpu.fd;
		*root = sbx_vcpu0_root(vm);
	} else if (i < th->nv && i < SBX_MAX_VCPUS && th->v[i]) {
		*fd = th->v[i]->fd;
		*root = th->v[i]->cr3;
	} else {
		return -ENOENT;
	}
	*tid = 0;
	if (sbx_gva_read(vm, *root, SBX_CPU_VA + SBX_CPU_TID_OFF, tid, sizeof(*tid)) < 0)
		*tid = 0;
	return 0;
}

int sbx_thread_fork_src(struct sbx_vm *vm, struct sbx_fork_src *src)
{
	struct sbx_threads *th = &vm->proc.threads;
	int i = sbx_cur_index;
	if (i <= 0) {
		*src = (struct sbx_fork_src){.fd = vm->proc.vcpu.fd,
					     .run = vm->proc.vcpu.run,
					     .root = vm->proc.vcpu.home_root,
					     .ring_gpa = sbx_ring_gpa(vm),
					     .tail = vm->proc.ring.tail};
		return 0;
	}
	/* A started thread's entry stays until the VM goes: no lock needed on its own thread. */
	struct sbx_tvcpu *t =
	    i < SBX_MAX_VCPUS ? __atomic_load_n(&th->v[i], __ATOMIC_ACQUIRE) : NULL;
	if (!t)
		return -ENOENT;
	*src = (struct sbx_fork_src){.index = i,
				     .fd = t->fd,
				     .run = t->run,
				     .root = t->cr3,
				     .ring_gpa = t->ring_gpa,
				     .tail = t->tail};
	return 0;
}

unsigned sbx_threads_limit(struct sbx_vm *vm)
{
	return vm->proc.threads.nv ? vm->proc.threads.nv : 1;
}

unsigned sbx_threads_launches(struct sbx_vm *vm)
{
	return atomic_load(&vm->proc.threads.launches);
}

int sbx_threads_ending(struct sbx_vm *vm)
{
	return atomic_load(&vm->proc.threads.end);
}

int sbx_threads_count(struct sbx_vm *vm)
{
	return atomic_load(&vm->proc.threads.started);
}

int sbx_fault_fd(struct sbx_vm *vm)
{
	return vm->life.stop.thread_index > 0 ? vm->life.stop.thread_fd : vm->proc.vcpu.fd;
}

/* vCPU index's part in kicks and shootdowns, or NULL. */
static struct sbx_tlb_cpu *cpu_of(struct sbx_vm *vm, int index)
{
	if (index == 0)
		return &vm->proc.vcpu.tlb;
	struct sbx_tvcpu *t = index > 0 && index < SBX_MAX_VCPUS
				  ? __atomic_load_n(&vm->proc.threads.v[index], __ATOMIC_ACQUIRE)
				  : NULL;
	return t ? &t->tlb : NULL;
}

void sbx_vcpu_waiting(struct sbx_vm *vm, int on, pthread_cond_t *cond)
{
	struct sbx_tlb_cpu *c = cpu_of(vm, sbx_cur_index);
	if (!c)
		return;
	/* The condition is there before the wait is seen, and the wait gone before it goes. */
	if (on)
		atomic_store(&c->wait_cond, cond);
	atomic_store(&c->waiting, on);
	if (!on)
		atomic_store(&c->wait_cond, NULL);
}

int sbx_vcpu_kick(struct sbx_vm *vm, unsigned index)
{
	struct sbx_tlb_cpu *c;
	struct kvm_run *run;
	pthread_t thr;
	if (index == 0 && vm->proc.vcpu.thread_set) {
		c = &vm->proc.vcpu.tlb;
		run = vm->proc.vcpu.run;
		thr = vm->proc.vcpu.thread;
	} else {
		struct sbx_tvcpu *t =
		    index > 0 && index < SBX_MAX_VCPUS
			? __atomic_load_n(&vm->proc.threads.v[index], __ATOMIC_ACQUIRE)
			: NULL;
		if (!t || !t->thread_started)
			return -EINVAL;
		c = &t->tlb;
		run = t->run;
		thr = t->thread;
	}
	/* Flag first, then look (the vCPU sets in_run, then looks at the flag): one of the two
	 * sees the other. Only a vCPU in KVM_RUN is interrupted; one in a host call of its
	 * thread sees the flag before it enters the guest again. */
	atomic_store(&c->async, 1);
	if (atomic_load(&c->in_run)) {
		run->immediate_exit = 1;
		pthread_kill(thr, sbx_kick_signal());
		return 0;
	}
	/* Waiting on a condition (wait4, a fork's parent): woken, it looks at its signals once it
	 * has the condition's lock, which the caller may hold (a SIGCHLD's delivery): kicks
	 * meanwhile would only be lost (they cost a child's end 2-4 ms each). Read in the order
	 * opposite to the waiter's writes, and again after the broadcast: a waiter that has gone
	 * on to a wait a signal ends (a pipe's read) gets the signals below. */
	pthread_cond_t *wc = atomic_load(&c->waiting) ? atomic_load(&c->wait_cond) : NULL;
	if (wc) {
		pthread_cond_broadcast(wc);
		if (atomic_load(&c->waiting) && atomic_load(&c->wait_cond) == wc)
			return 0;
	}
	/* Waiting on the host for the guest (a read of a pipe, a poll, an accept): the kick's
	 * EINTR ends the wait, and the guest kernel, seeing the signal, returns EINTR or
	 * restarts the call (SA_RESTART), as Linux does. A kick that lands just before the wait
	 * begins is lost: kicked again while the wait lasts, for 2 ms at most (a wait that no
	 * signal ends, a vfork's, goes on). */
	for (int i = 0; i < 20 && atomic_load(&c->waiting) && atomic_load(&c->async); i++) {
		pthread_kill(thr, sbx_kick_signal());
		struct timespec ts = {0, 100 * 1000};
		nanosleep(&ts, NULL);
	}
	return 0;
}

void sbx_vcpu_async(struct sbx_vm *vm, struct sbx_tlb_cpu *c, int index, int fd, uint64_t cr3)
{
	if (__builtin_expect(!atomic_load(&c->async), 1))
		return;
	if (sbx_signal_async(vm, index, fd, cr3) != 0) {
		atomic_store(&c->async, 0); /* delivered, or no vCPU to look at */
		return;
	}
	/* In the kernel: its way out delivers pending signals, unless it is past its last look
	 * already (a rt_sigreturn returning). Look again soon, in the program's code by then. */
	if (!c->rekick_made) {
		struct sigevent ev = {.sigev_notify = SIGEV_THREAD_ID,
				      .sigev_signo = sbx_kick_signal()};
		ev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
		c->rekick_made = timer_create(CLOCK_MONOTONIC, &ev, &c->rekick) == 0;
	}
	struct itimerspec in = {.it_value = {0, 200 * 1000}};
	if (c->rekick_made && timer_settime(c->rekick, 0, &in, NULL) == 0)
		c->rekick_armed = 1;
	else
		atomic_store(&c->async, 0);
}

void sbx_vcpu_async_end(struct sbx_tlb_cpu *c)
{
	if (c->rekick_made)
		timer_delete(c->rekick);
	c->rekick_made = c->rekick_armed = 0;
	atomic_store(&c->async, 0);
}

struct sbx_upcall_state *sbx_upcall_state_of(struct sbx_vm *vm, int index)
{
	if (index == 0)
		return &vm->proc.vcpu.upcall;
	struct sbx_tvcpu *t = index > 0 && index < SBX_MAX_VCPUS
				  ? __atomic_load_n(&vm->proc.threads.v[index], __ATOMIC_ACQUIRE)
				  : NULL;
	return t ? &t->upcall : NULL;
}

/* The first ncpus host CPUs this process may use: where every vCPU thread runs (--cpus). */
static void pin_threads(struct sbx_vm *vm)
{
	cpu_set_t set;
	memcpy(&set, vm->proc.threads.cpuset, sizeof(set));
	if (CPU_COUNT(&set))
		sched_setaffinity(0, sizeof(set), &set);
}

void sbx_threads_repin0(struct sbx_vm *vm)
{
	if (atomic_exchange(&vm->proc.threads.repin0, 0))
		pin_threads(vm);
}

/* The run ends for what this thread's vCPU met, described as its own (if this is the first
 * reason: the fields are the winner's, set under stop_lock). */
static void thread_kill(struct sbx_tvcpu *t, enum sbx_end end, int vector, const char *what)
{
	struct sbx_vm *vm = t->vm;
	struct sbx_stop_who who = {.fd = t->fd, .cr3 = t->cr3, .index = t->index, .vector = vector};
	if (end == SBX_END_FAULT) {
		if (!sbx_vm_kill_by(vm, &who, SBX_END_FAULT, 0, 0, "CPU exception %d in thread %d",
				    vector, t->index))
			t->refault = vector;
	} else
		sbx_vm_kill_by(vm, &who, SBX_END_VM, SBX_STATUS_ERROR, 0, "thread %d: %s", t->index,
			       what);
}

static void doorbell(struct sbx_tvcpu *t)
{
	struct sbx_vm *vm = t->vm;
	if (sbx_ring_lock(vm, SBX_RING_UNLESS_STOPPING, 0) < 0)
		return;
	sbx_ring_serve_at(vm, t->ring_gpa, &t->tail, 1);
	vm->stats.doorbells++;
	pthread_mutex_unlock(&vm->proc.ring.lock);
}

/* 0: go on; -1: the run is over for this vCPU. */
static int handle_exit(struct sbx_tvcpu *t)
{
	struct kvm_run *run = t->run;
	switch (run->exit_reason) {
	case KVM_EXIT_MMIO:
		if (run->mmio.is_write && run->mmio.phys_addr >= SBX_DOORBELL_GPA &&
		    run->mmio.phys_addr < SBX_DOORBELL_GPA + SBX_PAGE_SIZE) {
			doorbell(t);
			return 0;
		}
		thread_kill(t, SBX_END_VM, -1, "stray MMIO");
		return -1;
	case KVM_EXIT_IO:
		if (run->io.direction == KVM_EXIT_IO_OUT && run->io.size == 1) {
			if (run->io.port == SBX_PORT_DOORBELL) {
				doorbell(t);
				return 0;
			}
			/* The vCPU waits in its loop: vCPU 0's thread hands the fault to a
			 * handler of the program's, or the run ends. */
			if (run->io.port >= SBX_PORT_FAULT_BASE &&
			    run->io.port < SBX_PORT_FAULT_BASE + 32) {
				thread_kill(t, SBX_END_FAULT, run->io.port - SBX_PORT_FAULT_BASE,
					    NULL);
				return 0;
			}
		}
		thread_kill(t, SBX_END_VM, -1, "stray port I/O");
		return -1;
	case KVM_EXIT_INTR:
		return 0;
	case KVM_EXIT_SHUTDOWN:
		thread_kill(t, SBX_END_VM, -1,
			    "triple fault: the vCPU shut down (an exception while delivering an "
			    "exception)");
		return -1;
	default:
		thread_kill(t, SBX_END_VM, -1, "unexpected KVM exit");
		return -1;
	}
}

/* Where a pause finds this vCPU (pause.c): its last exit finished, nothing of its ring in
 * service, until the pause ends. vCPU 0's pause point waits for every started one. */
static void thread_pause(struct sbx_tvcpu *t)
{
	struct sbx_vm *vm = t->vm;
	sbx_vcpu_complete_fd(vm, t->fd, t->run);
	pthread_mutex_lock(&vm->life.pause_lock);
	atomic_store(&t->at_pause, 1);
	pthread_cond_broadcast(&vm->life.pause_cond);
	/* An execve or the run's end joins the threads: a pause waits for no one then. */
	sbx_pause_wait(vm, &vm->proc.threads.end);
	atomic_store(&t->at_pause, 0);
	pthread_mutex_unlock(&vm->life.pause_lock);
}

/* Started host threads; only those not at their pause point (running). */
static unsigned count_started(struct sbx_vm *vm, int running)
{
	struct sbx_threads *th = &vm->proc.threads;
	unsigned n = 0;
	/* The exec engine asks at every run's end: a program that never had a thread pays one
	 * load, not the lock. */
	if (!atomic_load(&th->started))
		return 0;
	pthread_mutex_lock(&th->lock);
	for (unsigned i = 1; i < th->nv; i++)
		if (th->v[i] && th->v[i]->thread_started &&
		    !(running && atomic_load(&th->v[i]->at_pause)))
			n++;
	pthread_mutex_unlock(&th->lock);
	return n;
}

int sbx_threads_all_paused(struct sbx_vm *vm)
{
	return count_started(vm, 1) == 0;
}

unsigned sbx_threads_running(struct sbx_vm *vm)
{
	return count_started(vm, 0);
}

static void *thread_main(void *arg)
{
	struct sbx_tvcpu *t = arg;
	struct sbx_vm *vm = t->vm;
	sbx_cur_index = t->index;
	/* Not into the guest before the kickers can see this thread: a hold (a PATCH on another
	 * vCPU) that looked meanwhile would leave it running, and wait for ever in KVM_GET_REGS
	 * on its vCPU (a restored run's threads are launched while others run: a live migration
	 * hung so in CI). */
	while (!__atomic_load_n(&t->launched, __ATOMIC_ACQUIRE))
		syscall(SYS_futex, &t->launched, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	if (pthread_getcpuclockid(pthread_self(), &t->clock) == 0)
		atomic_store(&t->clock_set, 1);
	pin_threads(vm);
	/* A stop is not always the end: a fault a thread's program handles stops the run until
	 * its signal is delivered, and the other threads wait meanwhile, stopped, as Linux's
	 * would not notice. */
	while (!atomic_load(&vm->proc.threads.end)) {
		if (atomic_load(&vm->life.stopping)) {
			struct timespec rel = {0, 10 * 1000 * 1000};
			syscall(SYS_futex, &vm->life.stopping, FUTEX_WAIT_PRIVATE, 1, &rel, NULL,
				0);
			continue;
		}
		if (atomic_load(&vm->life.pause_req)) {
			thread_pause(t);
			continue;
		}
		if (t->refault >= 0) {
			int v = t->refault;
			t->refault = -1;
			thread_kill(t, SBX_END_FAULT, v, NULL);
			continue;
		}
		if (sbx_tlb_enter(vm, t->fd, &t->tlb) < 0)
			continue;
		sbx_vcpu_async(vm, &t->tlb, t->index, t->fd, t->cr3);
		int r = ioctl(t->fd, KVM_RUN, 0);
		sbx_tlb_leave(vm, &t->tlb);
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				t->run->immediate_exit = atomic_load(&vm->life.stopping);
				continue;
			}
			thread_kill(t, SBX_END_VM, -1, "KVM_RUN failed");
			break;
		}
		atomic_fetch_add(&vm->proc.threads.exits, 1);
		__atomic_fetch_add(&vm->proc.vcpu.exit_count[t->run->exit_reason & 63], 1,
				   __ATOMIC_RELAXED);
		if (handle_exit(t) < 0)
			break;
	}
	sbx_vcpu_async_end(&t->tlb);
	/* What it used stays counted (--cpu-time) once its clock is gone with it. */
	if (atomic_exchange(&t->clock_set, 0))
		atomic_fetch_add(&vm->proc.threads.ended_cpu_ns,
				 sbx_now_ns(CLOCK_THREAD_CPUTIME_ID));
	return NULL;
}

/* A new vCPU of this index and its run area; KVM makes each index once per VM. */
static int tvcpu_new(struct sbx_vm *vm, uint32_t index, struct sbx_tvcpu **out, char *err,
		     size_t errlen)
{
	struct sbx_tvcpu *t = calloc(1, sizeof(*t));
	if (!t)
		return sbx_fail(err, errlen, -ENOMEM, "out of memory");
	t->vm = vm;
	t->index = (int)index;
	t->refault = -1;
	t->fd = sbx_kvm_ioctl(vm->proc.kvm.vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (t->fd < 0) {
		int e = errno;
		free(t);
		return sbx_fail(err, errlen, -e, "KVM_CREATE_VCPU %u: %s", index, strerror(e));
	}
	t->run_size = vm->proc.vcpu.run_size;
	t->run = mmap(NULL, t->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, t->fd, 0);
	if (t->run == MAP_FAILED) {
		int e = errno;
		close(t->fd);
		free(t);
		return sbx_fail(err, errlen, -e, "mapping the vCPU's run area: %s", strerror(e));
	}
	*out = t;
	return 0;
}

/* A vCPU taken again for a thread (after an execve, or a reset to a snapshot with threads):
 * nothing the monitor kept of its last thread goes on, and neither do its translations, since
 * the new root may be at the old one's address, where no CR3 change would drop them. */
static void tvcpu_again(struct sbx_threads *th, struct sbx_tvcpu *t)
{
	tlb_flush(t->fd);
	atomic_store(&t->tlb.flushed, atomic_load(&th->tlb_gen));
	t->run->immediate_exit = 0;
	t->refault = -1;
	memset(&t->upcall, 0, sizeof(t->upcall));
	t->stale = 0;
}

static void tvcpu_free(struct sbx_tvcpu *t)
{
	munmap(t->run, t->run_size);
	close(t->fd);
	free(t);
}

/* The page-table root and ring of a thread's vCPU, from the guest or a snapshot. */
static int thread_where_ok(struct sbx_vm *vm, uint64_t cr3, uint64_t ring_gpa)
{
	return !((cr3 | ring_gpa) & (SBX_PAGE_SIZE - 1)) && cr3 >= SBX_PT_ADDR &&
	       sbx_gptr(vm, cr3, SBX_PAGE_SIZE) && ring_gpa >= SBX_USER_ADDR &&
	       sbx_gptr(vm, ring_gpa, SBX_PAGE_SIZE);
}

/* Nobody polls a thread's ring: every request comes with a doorbell. */
static void ring_take(struct sbx_vm *vm, struct sbx_tvcpu *t)
{
	volatile struct sbx_ring *ring = sbx_gptr(vm, t->ring_gpa, sizeof(struct sbx_ring));
	__atomic_or_fetch(&ring->flags, SBX_RING_NEED_WAKEUP, __ATOMIC_SEQ_CST);
	t->tail = ring->head;
}

/* The first thread: the poller stops spinning and vCPU 0 leaves its own CPU. */
static void first_thread(struct sbx_vm *vm)
{
	atomic_store(&vm->proc.ring.retired, 1);
	atomic_store(&vm->proc.threads.repin0, 1);
	if (vm->proc.vcpu.thread_set && !pthread_equal(pthread_self(), vm->proc.vcpu.thread))
		pthread_kill(vm->proc.vcpu.thread, sbx_kick_signal());
}

/* Its host thread, under th->lock; a kill that came meanwhile did not see it. */
static int thread_launch(struct sbx_vm *vm, struct sbx_tvcpu *t)
{
	/* The kickers take no lock: thread_started is set once t->thread holds the new id. */
	pthread_t id;
	__atomic_store_n(&t->launched, 0, __ATOMIC_RELAXED);
	int r = -pthread_create(&id, NULL, thread_main, t);
	if (r < 0)
		return r;
	t->thread = id;
	__atomic_store_n(&t->thread_started, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&t->launched, 1, __ATOMIC_RELEASE);
	syscall(SYS_futex, &t->launched, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	atomic_fetch_add(&vm->proc.threads.launches, 1);
	if (atomic_load(&vm->life.stopping)) {
		t->run->immediate_exit = 1;
		pthread_kill(t->thread, sbx_kick_signal());
	}
	return 0;
}

int sbx_thread_start(struct sbx_vm *vm, uint32_t index, uint64_t cr3, uint64_t rip, uint64_t rsp,
		     uint64_t ring_gpa)
{
	struct sbx_threads *th = &vm->proc.threads;
	/* Every value is the guest's: checked before anything is created. A bare VM (tests,
	 * fuzzers) has no vCPU 0 to copy. */
	if (index == 0 || index >= th->max || index >= SBX_MAX_VCPUS || vm->proc.vcpu.fd < 0 ||
	    !vm->proc.kvm.cpuid)
		return -EAGAIN;
	if (!thread_where_ok(vm, cr3, ring_gpa) || rip < SBX_KERNEL_ADDR || rip >= SBX_VDSO_ADDR ||
	    rsp != SBX_WINDOW_SYSCALL_TOP) {
		sbx_log(vm, 1,
			"guest ABI violation: THREAD_START %u with root 0x%llx, ring 0x%llx, rip "
			"0x%llx, rsp 0x%llx",
			index, (unsigned long long)cr3, (unsigned long long)ring_gpa,
			(unsigned long long)rip, (unsigned long long)rsp);
		return -EINVAL;
	}
	pthread_mutex_lock(&th->lock);
	struct sbx_tvcpu *t = th->v[index];
	/* A vCPU whose thread an execve stopped (sbx_threads_stop) is this image's to start
	 * again: KVM cannot take a vCPU away, nor make one with the same index twice. */
	int again = t != NULL;
	int r = -EEXIST;
	if (t && t->thread_started)
		goto out;
	r = -EAGAIN;
	if (atomic_load(&th->end))
		goto out; /* sbx_threads_end may be joining */
	char err[256] = "";
	if (!t && (r = tvcpu_new(vm, index, &t, err, sizeof(err))) < 0)
		goto fail;
	t->cr3 = cr3;
	t->ring_gpa = ring_gpa;
	r = sbx_x86_thread_vcpu(vm, t->fd, cr3, rip, rsp, again, err, sizeof(err));
	if (r < 0)
		goto fail;
	if (again)
		tvcpu_again(th, t);
	ring_take(vm, t);
	/* Where holds, kicks and stops see it before its thread may enter the guest (it waits for
	 * `launched`): published after, a stop's kick or a hold from outside ring_lock could miss
	 * it running. Once there it stays, with no thread if the launch fails (a later
	 * THREAD_START takes it again): the kickers read the table without the lock. */
	__atomic_store_n(&th->v[index], t, __ATOMIC_RELEASE);
	if (index >= th->nv)
		th->nv = index + 1;
	/* Counted with it: the ends, stops and resets that join threads look only when some
	 * vCPU beyond 0 was ever made, and a later launch of this entry is an `again`. */
	if (!again)
		atomic_fetch_add(&th->started, 1);
	r = thread_launch(vm, t);
	if (r < 0) {
		sbx_log(vm, 0, "thread %u not started: cannot start a host thread: %s", index,
			strerror(-r));
		r = r == -ENOMEM ? r : -EAGAIN;
		goto out;
	}
	/* The first thread of the image, or of a run from a snapshot (sbx_threads_reset). */
	if (!atomic_load(&vm->proc.ring.retired))
		first_thread(vm);
	r = 0;
	goto out;
fail:
	sbx_log(vm, 0, "thread %u not started: %s", index, err);
	if (!again && t)
		tvcpu_free(t);
	r = r == -ENOMEM || r == -EAGAIN ? r : -EAGAIN;
out:
	pthread_mutex_unlock(&th->lock);
	return r;
}

unsigned sbx_threads_records(struct sbx_vm *vm, struct sbx_thread_rec *out, unsigned max)
{
	struct sbx_threads *th = &vm->proc.threads;
	unsigned n = 0;
	pthread_mutex_lock(&th->lock);
	for (unsigned i = 1; i < th->nv && n < max; i++) {
		struct sbx_tvcpu *t = th->v[i];
		/* A stale vCPU (its image gone at an execve) has no thread to keep. */
		if (!t || (!t->thread_started && !t->restored))
			continue;
		out[n++] = (struct sbx_thread_rec){.index = i,
						   .tid = atomic_load(&th->tid[i]),
						   .tail = t->tail,
						   .cr3 = t->cr3,
						   .ring_gpa = t->ring_gpa,
						   .fd = t->fd};
	}
	pthread_mutex_unlock(&th->lock);
	return n;
}

int sbx_thread_restore(struct sbx_vm *vm, struct sbx_thread_rec *rec, char *err, size_t errlen)
{
	struct sbx_threads *th = &vm->proc.threads;
	uint32_t i = rec->index;
	if (i == 0 || i >= SBX_MAX_VCPUS)
		return sbx_fail(err, errlen, -EINVAL, "thread on vCPU %u (limit %u)", i,
				SBX_MAX_VCPUS - 1);
	if (i >= th->max)
		return sbx_fail(err, errlen, -EINVAL,
				"a thread on vCPU %u, more than --max-threads %u allows", i,
				th->max);
	if (!thread_where_ok(vm, rec->cr3, rec->ring_gpa))
		return sbx_fail(err, errlen, -EINVAL,
				"thread on vCPU %u: page-table root 0x%llx or ring 0x%llx outside "
				"guest RAM",
				i, (unsigned long long)rec->cr3, (unsigned long long)rec->ring_gpa);
	/* 0: an idle vCPU, whose thread ended, parked until THREAD_RUN gives it another. */
	if (rec->tid >= SBX_PID_LIMIT || (rec->tid && rec->tid == vm->proc.pid))
		return sbx_fail(err, errlen, -EINVAL, "thread on vCPU %u: thread id %u", i,
				rec->tid);
	const volatile struct sbx_ring *ring = sbx_gptr(vm, rec->ring_gpa, sizeof(*ring));
	if (ring->head - rec->tail > SBX_RING_SLOTS)
		return sbx_fail(err, errlen, -EINVAL,
				"thread on vCPU %u: ring tail %u is %u slots behind its head", i,
				rec->tail, ring->head - rec->tail);
	pthread_mutex_lock(&th->lock);
	struct sbx_tvcpu *t = th->v[i];
	/* A vCPU whose thread a reset stopped (the exec engine puts a snapshot's threads back
	 * before each run) is taken again: KVM makes each index once per VM. */
	int again = t && t->stale && !t->thread_started && !t->restored;
	int r = t && !again ? -EEXIST : 0;
	if (r < 0)
		snprintf(err, errlen, "two threads on vCPU %u", i);
	for (unsigned k = 1; k < th->nv && r == 0; k++)
		if (rec->tid && th->v[k] && k != i && !th->v[k]->stale &&
		    atomic_load(&th->tid[k]) == rec->tid)
			r = sbx_fail(err, errlen, -EEXIST, "two threads with id %u", rec->tid);
	if (r == 0 && !again)
		r = tvcpu_new(vm, i, &t, err, errlen);
	if (r == 0) {
		if (again)
			tvcpu_again(th, t); /* its registers come from the record next */
		t->cr3 = rec->cr3;
		t->ring_gpa = rec->ring_gpa;
		t->tail = rec->tail;
		t->restored = 1;
		rec->ran = again;
		th->v[i] = t;
		if (i >= th->nv)
			th->nv = i + 1;
		atomic_store(&th->tid[i], rec->tid);
		if (i >= atomic_load(&th->tid_hi))
			atomic_store(&th->tid_hi, i + 1);
		if (!again)
			atomic_fetch_add(&th->started, 1);
		if (!atomic_load(&vm->proc.ring.retired))
			first_thread(vm);
		rec->fd = t->fd;
	}
	pthread_mutex_unlock(&th->lock);
	return r;
}

int sbx_threads_launch(struct sbx_vm *vm, char *err, size_t errlen)
{
	struct sbx_threads *th = &vm->proc.threads;
	int r = 0;
	pthread_mutex_lock(&th->lock);
	for (unsigned i = 1; i < th->nv && r == 0; i++) {
		struct sbx_tvcpu *t = th->v[i];
		if (!t || !t->restored)
			continue;
		t->restored = 0;
		if ((r = thread_launch(vm, t)) < 0)
			snprintf(err, errlen, "thread on vCPU %u: cannot start a host thread: %s",
				 i, strerror(-r));
	}
	pthread_mutex_unlock(&th->lock);
	return r;
}

static uint32_t new_tid(struct sbx_vm *vm)
{
	if (vm->hooks.new_tid)
		return vm->hooks.new_tid(vm);
	return vm->proc.pid + 1 + vm->proc.threads.tid_count++;
}

/* The boot page says which id is held, so that a kernel that has none (a fork's child, a
 * restored snapshot) asks for one. */
static uint32_t hold_tid(struct sbx_vm *vm, uint32_t tid)
{
	atomic_store(&vm->proc.threads.tid_next, tid);
	struct sbx_bootinfo *b = sbx_gptr(vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	if (b)
		__atomic_store_n(&b->tid_next, tid, __ATOMIC_RELEASE);
	return tid;
}

int64_t sbx_thread_tid_next(struct sbx_vm *vm)
{
	uint32_t tid = atomic_load(&vm->proc.threads.tid_next);
	return hold_tid(vm, tid ? tid : new_tid(vm));
}

int64_t sbx_thread_tid_take(struct sbx_vm *vm, uint32_t index, uint64_t tid)
{
	struct sbx_threads *th = &vm->proc.threads;
	if (index == 0 || index >= SBX_MAX_VCPUS || !tid || tid != atomic_load(&th->tid_next))
		return -EINVAL;
	atomic_store(&th->tid[index], (uint32_t)tid);
	unsigned hi = atomic_load(&th->tid_hi);
	while (hi <= index && !atomic_compare_exchange_weak(&th->tid_hi, &hi, index + 1))
		;
	return hold_tid(vm, new_tid(vm));
}

void sbx_thread_tid_gone(struct sbx_vm *vm, uint64_t tid)
{
	/* Only the vCPU's own record: another's thread may still be alive. */
	int i = sbx_cur_index;
	unsigned want = (unsigned)tid;
	if (i > 0 && i < SBX_MAX_VCPUS && tid && tid <= UINT32_MAX)
		atomic_compare_exchange_strong(&vm->proc.threads.tid[i], &want, 0);
}

int sbx_thread_has_tid(struct sbx_vm *vm, uint32_t tid, int held)
{
	struct sbx_threads *th = &vm->proc.threads;
	if (!tid)
		return 0;
	if (held && atomic_load(&th->tid_next) == tid)
		return 1;
	unsigned hi = atomic_load(&th->tid_hi);
	for (unsigned i = 1; i < hi && i < SBX_MAX_VCPUS; i++)
		if (atomic_load(&th->tid[i]) == tid)
			return 1;
	return 0;
}

int64_t sbx_process_cpu_ns(struct sbx_vm *vm)
{
	return (vm->proc.vcpu.clock_set ? sbx_now_ns(vm->proc.vcpu.clock) : 0) +
	       sbx_threads_cpu_ns(vm);
}

unsigned sbx_threads_live(struct sbx_vm *vm)
{
	struct sbx_threads *th = &vm->proc.threads;
	unsigned hi = atomic_load(&th->tid_hi), n = 0;
	for (unsigned i = 1; i < hi && i < SBX_MAX_VCPUS; i++)
		n += atomic_load(&th->tid[i]) != 0;
	return n;
}

int64_t sbx_threads_cpu_ns(struct sbx_vm *vm)
{
	struct sbx_threads *th = &vm->proc.threads;
	int64_t ns = atomic_load(&th->ended_cpu_ns);
	for (unsigned i = 1; i < th->nv && i < SBX_MAX_VCPUS; i++) {
		struct sbx_tvcpu *t = __atomic_load_n(&th->v[i], __ATOMIC_ACQUIRE);
		if (t && atomic_load(&t->clock_set))
			ns += sbx_now_ns(t->clock);
	}
	return ns;
}

void sbx_threads_kick(struct sbx_vm *vm)
{
	struct sbx_threads *th = &vm->proc.threads;
	/* No lock (a signal handler calls this): entries are only added, and read whole. */
	for (unsigned i = 1; i < th->nv && i < SBX_MAX_VCPUS; i++) {
		struct sbx_tvcpu *t = __atomic_load_n(&th->v[i], __ATOMIC_ACQUIRE);
		if (!t || !t->thread_started)
			continue;
		t->run->immediate_exit = 1;
		pthread_kill(t->thread, sbx_kick_signal());
	}
}

int sbx_thread_resume(struct sbx_vm *vm, uint32_t index)
{
	struct sbx_threads *th = &vm->proc.threads;
	if (index == 0 || index >= SBX_MAX_VCPUS)
		return -EINVAL;
	pthread_mutex_lock(&th->lock);
	struct sbx_tvcpu *t = th->v[index];
	int r = !t || t->stale		? -EINVAL
		: t->thread_started	? 0
		: atomic_load(&th->end) ? -EAGAIN
					: 1;
	if (r == 1)
		r = thread_launch(vm, t);
	pthread_mutex_unlock(&th->lock);
	return r < 0 ? r : 0;
}

static void join_all(struct sbx_vm *vm)
{
	struct sbx_threads *th = &vm->proc.threads;
	/* One at a time, without the lock: a thread being joined may be starting another (it
	 * then sees the stop and refuses). */
	atomic_store(&th->end, 1);
	for (;;) {
		pthread_mutex_lock(&th->lock);
		sbx_threads_kick(vm);
		struct sbx_tvcpu *t = NULL;
		for (unsigned i = 1; i < th->nv && !t; i++)
			if (th->v[i] && th->v[i]->thread_started)
				t = th->v[i];
		if (t)
			t->thread_started = 0;
		pthread_mutex_unlock(&th->lock);
		if (!t)
			break;
		/* Kicked again until it is gone: a kick may land just before a blocking call. */
		for (;;) {
			struct timespec dl;
			sbx_deadline(&dl, 50 * SBX_NS_PER_MS);
			if (pthread_timedjoin_np(t->thread, NULL, &dl) != ETIMEDOUT)
				break;
			t->run->immediate_exit = 1;
			pthread_kill(t->thread, sbx_kick_signal());
		}
	}
}

void sbx_threads_end(struct sbx_vm *vm)
{
	struct sbx_threads *th = &vm->proc.threads;
	if (!atomic_load(&th->started))
		return;
	pthread_mutex_lock(&th->join_lock);
	join_all(vm);
	pthread_mutex_unlock(&th->join_lock);
}

void sbx_threads_stop(struct sbx_vm *vm)
{
	struct sbx_threads *th = &vm->proc.threads;
	if (!atomic_load(&th->started))
		return;
	pthread_mutex_lock(&th->join_lock);
	join_all(vm);
	/* Their threads are gone, whether or not their ends reached PARK. */
	for (unsigned i = 0; i < SBX_MAX_VCPUS; i++)
		atomic_store(&th->tid[i], 0);
	pthread_mutex_lock(&th->lock);
	for (unsigned i = 1; i < th->nv; i++)
		if (th->v[i]) {
			th->v[i]->run->immediate_exit = 0;
			th->v[i]->stale = 1;
			/* One a failed launch left unstarted is as stale as the others. */
			th->v[i]->restored = 0;
		}
	/* A kill meanwhile is seen by every start (stopping) and ends them at the run's end. */
	atomic_store(&th->end, 0);
	pthread_mutex_unlock(&th->lock);
	pthread_mutex_unlock(&th->join_lock);
}

void sbx_threads_reset(struct sbx_vm *vm)
{
	struct sbx_threads *th = &vm->proc.threads;
	if (!atomic_load(&th->started))
		return;
	sbx_threads_stop(vm);
	/* The next run's ids come from a pid space counted from the start again. */
	atomic_store(&th->tid_next, 0);
	atomic_store(&th->tid_hi, 0);
	sbx_ring_unretire(vm);
}

void sbx_threads_keep(struct sbx_vm *vm)
{
	struct sbx_threads *th = &vm->proc.threads;
	pthread_mutex_lock(&th->lock);
	for (unsigned i = 1; i < th->nv; i++)
		if (th->v[i])
			th->v[i]->stale = 0;
	pthread_mutex_unlock(&th->lock);
}

/* After the report: the vCPUs go (their fds are what a report of a thread reads). */
void sbx_threads_free(struct sbx_vm *vm)
{
	struct sbx_threads *th = &vm->proc.threads;
	sbx_threads_end(vm);
	for (unsigned i = 1; i < th->nv; i++) {
		if (th->v[i])
			tvcpu_free(th->v[i]);
		th->v[i] = NULL;
	}
	th->nv = 0;
}
