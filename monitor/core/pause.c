/* Pausing a running sandbox. Another thread (the control socket's) asks; the vCPU thread
 * stops where the state is whole: KVM has finished the instruction of the last exit (a
 * KVM_RUN with immediate_exit completes a pending port or MMIO access and returns at once),
 * and the ring is quiesced (it holds ring_lock, so the poller serves nothing until resume).
 * The asking thread may then read and write vCPU state and guest RAM. */
#include <errno.h>
#include <stdio.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <time.h>

#include "vm.h"

void sbx_vcpu_complete_fd(struct sbx_vm *vm, int fd, struct kvm_run *run)
{
	run->immediate_exit = 1;
	while (ioctl(fd, KVM_RUN, 0) == 0)
		; /* cannot happen with immediate_exit; EINTR is the answer */
	/* A kill meanwhile keeps the next KVM_RUN from entering the guest. */
	run->immediate_exit = atomic_load(&vm->life.stopping);
}

void sbx_vcpu_complete(struct sbx_vm *vm)
{
	sbx_vcpu_complete_fd(vm, vm->proc.vcpu.fd, vm->proc.vcpu.run);
}

void sbx_pause_wait(struct sbx_vm *vm, atomic_int *quit)
{
	/* A kill (a time limit) ends the pause, but not while a snapshot or migration holds
	 * it: they read the state this thread would tear down. */
	/* Timed: sbx_vm_interrupt, run from a signal handler, cannot signal the condition. */
	while (((atomic_load(&vm->life.pause_req) && !atomic_load(&vm->life.stopping)) ||
		vm->life.pause_hold) &&
	       !(quit && atomic_load(quit)) && (quit || vm->life.job_gen == vm->life.job_told)) {
		struct timespec dl;
		sbx_deadline(&dl, 50 * SBX_NS_PER_MS);
		pthread_cond_timedwait(&vm->life.pause_cond, &vm->life.pause_lock, &dl);
	}
}

/* vCPU 0's pause point: the pause holds once every thread's vCPU is at its own (threads.c)
 * with ring_lock held here, so that none is serving a request and none can start. */
static int gather(struct sbx_vm *vm)
{
	for (;;) {
		pthread_mutex_lock(&vm->proc.ring.lock);
		pthread_mutex_lock(&vm->life.pause_lock);
		if (!atomic_load(&vm->life.pause_req) || atomic_load(&vm->life.stopping))
			break;
		/* Under ring_lock no THREAD_START or THREAD_RUN is served: the set is whole. */
		if (sbx_threads_all_paused(vm))
			return 1;
		/* A thread may be waiting for ring_lock to serve its last request. */
		pthread_mutex_unlock(&vm->proc.ring.lock);
		sbx_threads_kick(vm);
		struct timespec dl;
		sbx_deadline(&dl, 2 * SBX_NS_PER_MS);
		pthread_cond_timedwait(&vm->life.pause_cond, &vm->life.pause_lock, &dl);
		pthread_mutex_unlock(&vm->life.pause_lock);
	}
	/* The pause was given up (timed out) or the run is ending. */
	pthread_mutex_unlock(&vm->life.pause_lock);
	pthread_mutex_unlock(&vm->proc.ring.lock);
	return 0;
}

void sbx_pause_point(struct sbx_vm *vm)
{
	sbx_vcpu_complete(vm);
	clock_gettime(CLOCK_REALTIME, &vm->life.last_exit_at);
	if (!gather(vm))
		return;
	vm->life.paused = 1;
	pthread_cond_broadcast(&vm->life.pause_cond);
	/* A stop is told (the parent's wait, SIGCHLD) once every thread has stopped, as Linux
	 * tells it once the whole group has; and a next one that came before this thread saw
	 * the last one end. Without pause_lock: the tree's lock is taken before it. The wait
	 * (vCPU 0's: quit NULL) returns for a stop not told yet. */
	for (;;) {
		if (vm->life.job_gen != vm->life.job_told) {
			vm->life.job_told = vm->life.job_gen;
			if ((atomic_load(&vm->life.pause_req) & SBX_PAUSE_JOB) &&
			    vm->hooks.job_stopped) {
				pthread_mutex_unlock(&vm->life.pause_lock);
				vm->hooks.job_stopped(vm);
				pthread_mutex_lock(&vm->life.pause_lock);
			}
		}
		sbx_pause_wait(vm, NULL);
		if (vm->life.job_gen == vm->life.job_told)
			break;
	}
	vm->life.paused = 0;
	pthread_cond_broadcast(&vm->life.pause_cond);
	pthread_mutex_unlock(&vm->life.pause_lock);
	pthread_mutex_unlock(&vm->proc.ring.lock);
}

int sbx_vm_pause(struct sbx_vm *vm, int timeout_ms)
{
	int64_t end = sbx_now_ns(CLOCK_REALTIME) + timeout_ms * SBX_NS_PER_MS;
	pthread_mutex_lock(&vm->life.pause_lock);
	if (!vm->life.running || atomic_load(&vm->life.stopping)) {
		pthread_mutex_unlock(&vm->life.pause_lock);
		return -ESRCH;
	}
	atomic_fetch_or(&vm->life.pause_req, SBX_PAUSE_CTL);
	/* A SLEEP in progress returns early (the guest sleeps again for what is left). */
	sbx_wake_sleepers(vm);
	int64_t left = end - sbx_now_ns(CLOCK_REALTIME);
	while (!vm->life.paused && !atomic_load(&vm->life.stopping) && left > 0) {
		/* Threads' vCPUs waiting in PARK return on the kick. */
		sbx_vcpus_kick(vm);
		struct timespec step;
		sbx_deadline(&step, left < 2 * SBX_NS_PER_MS ? left : 2 * SBX_NS_PER_MS);
		pthread_cond_timedwait(&vm->life.pause_cond, &vm->life.pause_lock, &step);
		left = end - sbx_now_ns(CLOCK_REALTIME);
	}
	int paused = vm->life.paused;
	if (!paused) {
		atomic_fetch_and(&vm->life.pause_req, ~SBX_PAUSE_CTL);
		pthread_cond_broadcast(&vm->life.pause_cond); /* the threads that stopped go on */
	}
	pthread_mutex_unlock(&vm->life.pause_lock);
	if (paused)
		return 0;
	return atomic_load(&vm->life.stopping) ? -ESRCH : -ETIMEDOUT;
}

void sbx_vm_resume(struct sbx_vm *vm)
{
	pthread_mutex_lock(&vm->life.pause_lock);
	atomic_fetch_and(&vm->life.pause_req, ~SBX_PAUSE_CTL);
	vm->life.pause_hold = 0;
	pthread_cond_broadcast(&vm->life.pause_cond);
	/* A stopped process stays where it is until its SIGCONT. */
	while (vm->life.paused && !(atomic_load(&vm->life.pause_req) & SBX_PAUSE_JOB))
		pthread_cond_wait(&vm->life.pause_cond, &vm->life.pause_lock);
	pthread_mutex_unlock(&vm->life.pause_lock);
}

void sbx_vm_job_stop(struct sbx_vm *vm)
{
	pthread_mutex_lock(&vm->life.pause_lock);
	atomic_fetch_or(&vm->life.pause_req, SBX_PAUSE_JOB);
	vm->life.job_gen++;
	pthread_cond_broadcast(&vm->life.pause_cond);
	pthread_mutex_unlock(&vm->life.pause_lock);
	/* Its waits end (the guest's kernel makes them again once it goes on), the poller's
	 * host call too, and every vCPU leaves the guest for its pause point. */
	sbx_ring_nudge(vm, SBX_RING_KICK);
	sbx_vcpus_kick(vm);
}

void sbx_vm_job_continue(struct sbx_vm *vm)
{
	pthread_mutex_lock(&vm->life.pause_lock);
	atomic_fetch_and(&vm->life.pause_req, ~SBX_PAUSE_JOB);
	pthread_cond_broadcast(&vm->life.pause_cond);
	pthread_mutex_unlock(&vm->life.pause_lock);
}

int sbx_vm_job_stopped(struct sbx_vm *vm)
{
	return (atomic_load(&vm->life.pause_req) & SBX_PAUSE_JOB) != 0;
}

int sbx_pause_hold(struct sbx_vm *vm, int timeout_ms, int *was_paused)
{
	pthread_mutex_lock(&vm->life.pause_lock);
	*was_paused = vm->life.paused && (atomic_load(&vm->life.pause_req) & SBX_PAUSE_CTL);
	if (*was_paused)
		vm->life.pause_hold = 1;
	pthread_mutex_unlock(&vm->life.pause_lock);
	if (*was_paused)
		return 0;
	int r = sbx_vm_pause(vm, timeout_ms);
	if (r == 0) {
		pthread_mutex_lock(&vm->life.pause_lock);
		/* A kill that came in between may have ended the pause already (the threads'
		 * host threads joined): there is nothing whole to hold. From here on a kill waits
		 * for the release. */
		if (vm->life.paused)
			vm->life.pause_hold = 1;
		else
			r = -ESRCH;
		pthread_mutex_unlock(&vm->life.pause_lock);
	}
	return r;
}

void sbx_pause_release(struct sbx_vm *vm, int was_paused)
{
	if (!was_paused) {
		sbx_vm_resume(vm);
		return;
	}
	/* The operator's pause goes on; a kill that waited for us may proceed. */
	pthread_mutex_lock(&vm->life.pause_lock);
	vm->life.pause_hold = 0;
	pthread_cond_broadcast(&vm->life.pause_cond);
	pthread_mutex_unlock(&vm->life.pause_lock);
}
