/* The vCPU thread of an exec sandbox, and the waits for it. The thread runs the sandbox
 * (sbx_vm_run) whenever it is asked to, and between runs parks in the doorbell's exit, or
 * spins in the guest's park loop (fast runs); the thread that asked for a run waits here for
 * its end, serving the ring meanwhile when it has a core to spin on. */
#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "exec_priv.h"

enum sbx_action sbx_exec_doorbell(struct sbx_vm *vm)
{
	struct sbx_exec *x = vm->exec;
	if (atomic_load(&vm->life.stopping))
		return SBX_ACT_STOP;
	if (__atomic_load_n(&sbx_exec_ctl(vm)->done, __ATOMIC_ACQUIRE) == x->done_seen)
		return SBX_ACT_CONTINUE; /* an ordinary doorbell */
	/* Parked. Finish the doorbell's instruction first, so the vCPU's state is whole for a
	 * snapshot or a reset of its registers. */
	sbx_vcpu_complete(vm);
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
		/* A run that started threads ended here (never parked): theirs end with it. */
		sbx_threads_reset(x->vm);
		pthread_mutex_lock(&x->lock);
		x->res = res;
		x->stopped = 1;
		pthread_cond_broadcast(&x->cond);
	}
	pthread_mutex_unlock(&x->lock);
	return NULL;
}

int sbx_exec_start_vcpu(struct sbx_exec *x, char *err, size_t errlen)
{
	/* The front end's signals (SIGALRM for libFuzzer's timeouts, SIGTERM and SIGHUP for a
	 * server) go to its own threads, never to the sandbox's. */
	static const int sigs[] = {SIGALRM, SIGINT,  SIGTERM, SIGHUP, SIGUSR1,
				   SIGUSR2, SIGCHLD, SIGPIPE, SIGXFSZ};
	sigset_t block, old;
	sigemptyset(&block);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&block, sigs[i]);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	int e = pthread_create(&x->thread, NULL, vcpu_main, x);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e)
		return sbx_fail(err, errlen, -e, "cannot start the vCPU thread: %s", strerror(e));
	x->thread_started = 1;
	pthread_mutex_lock(&x->lock);
	x->run_req = 1;
	pthread_cond_broadcast(&x->cond);
	pthread_mutex_unlock(&x->lock);
	return 0;
}

void sbx_exec_stop_vcpu(struct sbx_exec *x)
{
	if (!x->thread_started)
		return;
	sbx_vm_kill(x->vm, SBX_END_ERROR, SBX_STATUS_ERROR, 0, "closed");
	pthread_mutex_lock(&x->lock);
	x->quit = 1;
	pthread_cond_broadcast(&x->cond);
	pthread_mutex_unlock(&x->lock);
	pthread_join(x->thread, NULL);
	x->thread_started = 0;
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

/* The time limit ran out: the sandbox is stopped (caller holds x->lock). */
static void kill_for_time(struct sbx_exec *x, uint64_t ms)
{
	sbx_vm_kill(x->vm, SBX_END_LIMIT, SBX_STATUS_LIMIT_TIME, 0,
		    "wall-clock limit reached: --timeout %llu ms", (unsigned long long)ms);
	pthread_cond_broadcast(&x->cond);
}

/* Waits under x->lock until the vCPU thread parks or stops, a thread asks for the snapshot, or
 * the deadline passes (dl NULL: none). 1 parked, 0 stopped, 2 asked, -ETIMEDOUT. */
static int wait_locked(struct sbx_exec *x, const struct timespec *dl)
{
	int w = 0;
	/* Only while there is no snapshot yet: a guest that asked and then parked anyway has
	 * its snapshot taken parked. */
	while (!x->parked && !x->stopped && !(x->point_wanted && !x->snap) && w != ETIMEDOUT)
		w = dl ? pthread_cond_timedwait(&x->cond, &x->lock, dl)
		       : pthread_cond_wait(&x->cond, &x->lock);
	return x->parked ? 1 : x->stopped ? 0 : x->point_wanted && !x->snap ? 2 : -ETIMEDOUT;
}

int64_t sbx_exec_point(struct sbx_vm *vm)
{
	struct sbx_exec *x = vm->exec;
	/* --warm's point, and the fuzz driver's in a program that has had threads (which the
	 * kernel asks from the main thread's SBX_EXEC_OP_POINT): the entry's is the kernel's. */
	if (x->o.point == SBX_POINT_ENTRY)
		return -EINVAL;
	pthread_mutex_lock(&x->lock);
	int taken = x->snap != NULL;
	if (!taken) {
		x->point_wanted = 1;
		pthread_cond_broadcast(&x->cond);
	}
	pthread_mutex_unlock(&x->lock);
	if (taken)
		return 0; /* a run from the snapshot: its read of stdin goes on */
	/* The front end now pauses every vCPU, which ends this wait (as a SLEEP's): the snapshot
	 * holds this thread asking again. Bounded, so that nothing depends on the wake. */
	int released = sbx_ring_release(vm);
	struct timespec rel = {0, 10 * 1000 * 1000};
	if (!atomic_load(&vm->life.stopping) && !atomic_load(&vm->life.pause_req))
		syscall(SYS_futex, &vm->life.stopping, FUTEX_WAIT_PRIVATE, 0, &rel, NULL, 0);
	sbx_ring_reacquire(vm, released);
	return -EAGAIN;
}

int sbx_exec_wait_parked(struct sbx_exec *x, uint64_t ms)
{
	struct timespec dl;
	sbx_deadline(&dl, (int64_t)ms * SBX_NS_PER_MS);
	pthread_mutex_lock(&x->lock);
	int r = wait_locked(x, ms ? &dl : NULL);
	if (r == -ETIMEDOUT) {
		kill_for_time(x, ms);
		r = wait_locked(x, NULL);
	}
	pthread_mutex_unlock(&x->lock);
	return r;
}

/* How long a parked run's waiting thread serves the ring before the guest rings instead. */
#define SBX_POLL_RUN_MS 2.0

/* We stop serving the ring: the guest rings from now on (the poller's going-idle dance: a
 * request published before the flag was seen is served here). */
static void ring_idle(struct sbx_vm *vm)
{
	pthread_mutex_lock(&vm->proc.ring.lock);
	sbx_ring_need_wakeup(vm, 1);
	if (sbx_ring_pending(vm))
		vm->stats.polled += (uint64_t)sbx_ring_serve(vm);
	pthread_mutex_unlock(&vm->proc.ring.lock);
}

/* The run is short and a core is ours: spin on the mailbox and serve the ring, no exit.
 * Parked runs spin for SBX_POLL_RUN_MS at most, then the guest rings. 1 parked, 0 stopped,
 * -EAGAIN: go on waiting in the exit, -ETIMEDOUT. */
static int spin_end(struct sbx_exec *x, const struct timespec *dl)
{
	struct sbx_vm *vm = x->vm;
	volatile struct sbx_exec_ctl *c = sbx_exec_ctl(vm);
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int rings = 0;
	for (uint64_t i = 0;; i++) {
		if (__atomic_load_n(&c->done, __ATOMIC_ACQUIRE) != x->done_seen)
			return x->spin ? 1 : -EAGAIN; /* not spinning: the kernel rings to park */
		/* Once the input started a thread, vCPU 0 serves its own ring after doorbells
		 * (the poller retired): it is told to ring at once, and nothing is served here. */
		if (!rings && atomic_load(&vm->proc.ring.retired)) {
			pthread_mutex_lock(&vm->proc.ring.lock);
			sbx_ring_need_wakeup(vm, 1);
			pthread_mutex_unlock(&vm->proc.ring.lock);
			rings = 1;
		}
		if (!rings && sbx_ring_pending(vm)) {
			sbx_ring_poll(vm);
			continue;
		}
		if ((i & 1023) == 1023) {
			/* Some 40 us of spinning: let a thread that shares our core run (the
			 * vCPU's, when the machine is busier than its cores). */
			sched_yield();
			pthread_mutex_lock(&x->lock);
			int r = x->parked ? 1 : x->stopped ? 0 : -EAGAIN;
			pthread_mutex_unlock(&x->lock);
			if (r >= 0)
				return r;
			if (!x->spin && sbx_ms_since(&t0) > SBX_POLL_RUN_MS) {
				ring_idle(vm);
				return -EAGAIN;
			}
			if (dl && sbx_now_ns(CLOCK_REALTIME) >= sbx_ts_ns(dl))
				return -ETIMEDOUT;
		}
		__builtin_ia32_pause();
	}
}

int sbx_exec_wait_end(struct sbx_exec *x)
{
	uint64_t ms = x->o.timeout_ms;
	struct timespec dl;
	sbx_deadline(&dl, (int64_t)ms * SBX_NS_PER_MS);
	int r = x->spin || x->o.poll_run ? spin_end(x, ms ? &dl : NULL) : -EAGAIN;
	pthread_mutex_lock(&x->lock);
	if (r == -EAGAIN && !x->spin)
		r = wait_locked(x, ms ? &dl : NULL);
	if (r < 0) {
		kill_for_time(x, ms);
		/* Parked just as the time ran out: the kill ends it. */
		while (!x->stopped)
			pthread_cond_wait(&x->cond, &x->lock);
		r = 0;
	}
	pthread_mutex_unlock(&x->lock);
	/* Parked (a fuzz input done) with threads the input started still running: they must
	 * not run on under the reset. vCPU 0 waits in its park meanwhile, holding the guest's
	 * kernel lock, so the others are in the program's code, spinning for the lock, or in a
	 * host call, which the kicks end; their vCPUs wait for the next input's THREAD_START. */
	if (r == 1 && sbx_threads_running(x->vm))
		sbx_threads_reset(x->vm);
	return r ? 0 : 1;
}
