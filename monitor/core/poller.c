/* The polling thread: one for all the processes of a sandbox, each process's vCPU 0 ring one of
 * its members. A thread per process would spin for every process that did I/O in the last
 * 300 us, each on a core the processes' vCPUs need; one thread spins once, for all of them.
 *
 * It serves no request that may wait on the host (sbx_ring_turn, hooks.may_wait), so that one
 * process's wait never stalls the others'. The member list has a lock of its own, held only to
 * pick the next member, never while a request is served. `cur` names the member being looked
 * at, so that a ring leaving the list waits until the poller is off it. */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "vm.h"

struct sbx_poller {
	pthread_mutex_t lock; /* vm, n, cap */
	struct sbx_vm **vm;
	unsigned n, cap;
	atomic_int refs;
	atomic_int wake; /* futex word: bumped to wake the thread */
	atomic_int stop;
	_Atomic(struct sbx_vm *) cur;
	pthread_t thread;
	int cpu;
};

static void futex_wait(atomic_int *w, int val)
{
	syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(atomic_int *w)
{
	syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* One look at every member; 1 if any wants the poller to go on spinning. A member that leaves
 * meanwhile shifts the rest down: one may miss this round, and is looked at in the next. */
static int round_all(struct sbx_poller *p)
{
	int busy = 0;
	for (unsigned i = 0;; i++) {
		pthread_mutex_lock(&p->lock);
		struct sbx_vm *vm = i < p->n ? p->vm[i] : NULL;
		int shared = p->n > 1;
		atomic_store(&p->cur, vm);
		pthread_mutex_unlock(&p->lock);
		if (!vm)
			break;
		busy |= sbx_ring_turn(vm, shared);
		atomic_store(&p->cur, NULL);
	}
	return busy;
}

static void *poller_main(void *arg)
{
	struct sbx_poller *p = arg;
	sbx_pin_cpu(p->cpu);
	while (!atomic_load(&p->stop)) {
		int wake = atomic_load(&p->wake);
		if (round_all(p))
			__builtin_ia32_pause();
		else if (!atomic_load(&p->stop))
			futex_wait(&p->wake, wake);
	}
	return NULL;
}

int sbx_poller_new(int cpu, struct sbx_poller **out, char *err, size_t errlen)
{
	struct sbx_poller *p = calloc(1, sizeof(*p));
	if (!p)
		return sbx_fail(err, errlen, -ENOMEM, "cannot allocate the ring's poller");
	pthread_mutex_init(&p->lock, NULL);
	atomic_store(&p->refs, 1);
	p->cpu = cpu;
	int e = pthread_create(&p->thread, NULL, poller_main, p);
	if (e) {
		pthread_mutex_destroy(&p->lock);
		free(p);
		return sbx_fail(err, errlen, -e, "cannot start the ring polling thread: %s",
				strerror(e));
	}
	*out = p;
	return 0;
}

struct sbx_poller *sbx_poller_ref(struct sbx_poller *p)
{
	atomic_fetch_add(&p->refs, 1);
	return p;
}

void sbx_poller_unref(struct sbx_poller *p)
{
	if (atomic_fetch_sub(&p->refs, 1) != 1)
		return;
	atomic_store(&p->stop, 1);
	atomic_fetch_add(&p->wake, 1);
	futex_wake(&p->wake);
	pthread_join(p->thread, NULL);
	pthread_mutex_destroy(&p->lock);
	free(p->vm);
	free(p);
}

void sbx_poller_wake(struct sbx_poller *p, struct sbx_vm *vm)
{
	atomic_fetch_add(&vm->proc.ring.wakes, 1);
	atomic_store(&vm->proc.ring.active, 1);
	atomic_fetch_add(&p->wake, 1);
	futex_wake(&p->wake);
}

int sbx_poller_attach(struct sbx_poller *p, struct sbx_vm *vm)
{
	pthread_mutex_lock(&p->lock);
	if (p->n == p->cap) {
		unsigned cap = p->cap ? p->cap * 2 : 4;
		struct sbx_vm **v = realloc(p->vm, cap * sizeof(*v));
		if (!v) {
			pthread_mutex_unlock(&p->lock);
			return -ENOMEM;
		}
		p->vm = v;
		p->cap = cap;
	}
	p->vm[p->n++] = vm;
	pthread_mutex_unlock(&p->lock);
	sbx_poller_wake(p, vm);
	return 0;
}

void sbx_poller_kick(struct sbx_poller *p, struct sbx_vm *vm)
{
	if (atomic_load(&p->cur) == vm)
		pthread_kill(p->thread, sbx_kick_signal());
}

void sbx_poller_detach(struct sbx_poller *p, struct sbx_vm *vm)
{
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < p->n; i++)
		if (p->vm[i] == vm) {
			memmove(&p->vm[i], &p->vm[i + 1], (p->n - i - 1) * sizeof(p->vm[0]));
			p->n--;
			break;
		}
	pthread_mutex_unlock(&p->lock);
	/* A host call the guest asked for (a read of an idle pipe) may hold the poller in this
	 * ring's handler: the kick interrupts it, and the guest is not resumed to see the EINTR
	 * (the caller set the ring's stop). Waits in slices end on it too. */
	while (atomic_load(&p->cur) == vm) {
		pthread_kill(p->thread, sbx_kick_signal());
		struct timespec t = {0, 200000};
		nanosleep(&t, NULL);
	}
}
