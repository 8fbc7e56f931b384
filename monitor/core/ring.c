/* The monitor side of the request rings. vCPU 0's requests are served either by a polling
 * thread (poller.c; no VM exit: the guest spins on the completion) or, after a doorbell exit,
 * by the vCPU thread itself; a thread's vCPU has a ring of its own, served after its doorbells
 * by its own host thread (threads.c). `ring_lock` makes them all take turns: the handlers share
 * the handle table and the policy. Each ring has at most one request in flight. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "vm.h"

/* How long the poller keeps spinning after the last request before it asks for doorbells. */
#define SBX_POLL_IDLE_NS 300000ll
/* How long it looks again at a request whose descriptor is not ready before it leaves it to
 * the vCPU's thread: below the guest's own spin (spin_us, 50 us), after which it rings anyway. */
#define SBX_POLL_READY_NS 40000ll
/* How long it spins on a ring whose lock someone else holds (a pause, a request its vCPU's
 * thread serves) before it stops looking at that ring until its next doorbell. */
#define SBX_POLL_HELD_NS 3000000ll

uint64_t sbx_ring_gpa(struct sbx_vm *vm)
{
	return vm->proc.ring.gpa ? vm->proc.ring.gpa : SBX_RING_ADDR;
}

static volatile struct sbx_ring *ring_of(struct sbx_vm *vm)
{
	return sbx_gptr(vm, sbx_ring_gpa(vm), sizeof(struct sbx_ring));
}

/* During a request's handler: may this thread release ring_lock around a wait (no other
 * thread would serve the request's slot meanwhile)? */
static __thread int ring_may_release, ring_released;
/* Set while the poller serves a ring: nothing may wait on the host. ring_refused: a handler
 * found it would, before anything moved (sbx_ring_would_wait). */
static __thread int ring_shared, ring_refused;

int sbx_ring_may_wait(void)
{
	return !ring_shared;
}

void sbx_ring_would_wait(void)
{
	ring_refused = ring_shared;
}

int sbx_ring_refused(void)
{
	return ring_refused;
}

int sbx_ring_release_on(struct sbx_vm *vm, pthread_cond_t *cond)
{
	if (!ring_may_release)
		return 0;
	ring_released = 1;
	pthread_mutex_unlock(&vm->proc.ring.lock);
	sbx_vcpu_waiting(vm, 1, cond);
	return 1;
}

int sbx_ring_release(struct sbx_vm *vm)
{
	return sbx_ring_release_on(vm, NULL);
}

void sbx_ring_reacquire(struct sbx_vm *vm, int released)
{
	if (!released)
		return;
	sbx_vcpu_waiting(vm, 0, NULL);
	pthread_mutex_lock(&vm->proc.ring.lock);
}

/* Serves every published request of the ring at gpa, whose tail the caller keeps. Caller holds
 * ring_lock. A request marked SBX_SLOT_OWN waits (PARK, SLEEP): only the calling vCPU's thread
 * serves it (own); the poller leaves it where it is. The vCPU's own thread may release the lock
 * while a handler waits (sbx_ring_release): for such a request, on a thread's ring (nobody else
 * serves it), or once the poller has retired. Returns the number served. */
int sbx_ring_serve_at(struct sbx_vm *vm, uint64_t gpa, uint32_t *tailp, int own)
{
	volatile struct sbx_ring *r = sbx_gptr(vm, gpa, sizeof(struct sbx_ring));
	int served = 0;
	if (!r)
		return 0;
	uint32_t abi = __atomic_load_n(&r->abi_version, __ATOMIC_ACQUIRE);
	if (!sbx_abi_ok(abi) && r->head != *tailp) {
		/* The kernel announces its ABI with its first request; a guest may bring its own.
		 */
		sbx_vm_kill(vm, SBX_END_ERROR, SBX_STATUS_ERROR, 0,
			    "guest kernel speaks hypercall ABI %u.%u, the monitor %u.%u", abi >> 16,
			    abi & 0xffff, SBX_ABI_MAJOR, SBX_ABI_MINOR);
		return 0;
	}
	while (!atomic_load(&vm->life.stopping)) {
		uint32_t tail = *tailp;
		uint32_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
		uint32_t pending = head - tail;
		if (pending == 0)
			break;
		if (pending > SBX_RING_SLOTS) {
			sbx_vm_kill(
			    vm, SBX_END_ERROR, SBX_STATUS_ERROR, 0,
			    "guest ABI violation: ring head %u is %u slots past tail %u (ring "
			    "has %u)",
			    head, pending, tail, SBX_RING_SLOTS);
			break;
		}
		volatile struct sbx_slot *gs = &r->slots[tail % SBX_RING_SLOTS];
		/* One copy out of guest memory: every check below sees these bytes only. */
		struct sbx_slot s;
		memcpy(&s, (const void *)gs, sizeof(s));
		if ((s.pad & SBX_SLOT_OWN) && !own)
			break;
		/* The poller leaves a request that may wait to the vCPU's own thread, after the
		 * doorbell this asks for; one whose descriptor is not ready yet, after looking at
		 * it again for SBX_POLL_READY_NS (data that comes meanwhile costs no exit, and no
		 * other ring waits for it). */
		int mw = ring_shared && vm->hooks.may_wait ? vm->hooks.may_wait(vm, &s) : 0;
		if (mw == SBX_WAITS_UNTIL_READY) {
			struct sbx_ring_srv *rs = &vm->proc.ring;
			int64_t now = sbx_now_ns(CLOCK_MONOTONIC);
			if (!rs->unready_since || rs->unready_seq != s.seq) {
				rs->unready_since = now;
				rs->unready_seq = s.seq;
			}
			if (now - rs->unready_since < SBX_POLL_READY_NS)
				break;
		}
		vm->proc.ring.unready_since = 0;
		if (mw) {
			__atomic_store_n(&gs->done, s.seq | SBX_DONE_RING, __ATOMIC_RELEASE);
			break;
		}
		ring_may_release = own && ((s.pad & SBX_SLOT_OWN) || gpa != sbx_ring_gpa(vm) ||
					   atomic_load(&vm->proc.ring.retired));
		int64_t ret = vm->hooks.dispatch ? vm->hooks.dispatch(vm, &s) : -ENOSYS;
		ring_may_release = 0;
		if (ring_refused) {
			/* What looked ready was gone (another process took it): the handler found
			 * it would wait before anything moved, and the request is left as above,
			 * unanswered. */
			ring_refused = 0;
			__atomic_store_n(&gs->done, s.seq | SBX_DONE_RING, __ATOMIC_RELEASE);
			break;
		}
		if (__builtin_expect(vm->proc.ring.reimaged, 0)) {
			/* An execve: this ring is the new image's, empty, and *tailp its start. */
			vm->proc.ring.reimaged = 0;
			ring_released = 0;
			*tailp = 0;
			served++;
			break;
		}
		/* Without the lock, a migration round may have taken this page's dirty mark (made
		 * when the pointer was handed out) and copied it: the reply about to be written
		 * needs a mark of its own, or the destination resumes with the request unanswered
		 * and the monitor's tail past it. */
		if (ring_released) {
			ring_released = 0;
			sbx_mem_dirty(vm, gpa, sizeof(struct sbx_ring));
		}
		gs->ret = ret;
		__atomic_store_n(&gs->done, s.seq, __ATOMIC_RELEASE);
		__atomic_store_n(tailp, tail + 1, __ATOMIC_RELEASE);
		__atomic_store_n(&r->tail, tail + 1, __ATOMIC_RELEASE);
		if (__builtin_expect(
			atomic_load_explicit(&vm->proc.mem.remark_all, memory_order_relaxed), 0) &&
		    atomic_exchange(&vm->proc.mem.remark_all, 0))
			sbx_mem_dirty(vm, 0, vm->proc.mem.size);
		served++;
	}
	return served;
}

int sbx_ring_serve(struct sbx_vm *vm)
{
	return sbx_ring_serve_at(vm, sbx_ring_gpa(vm), &vm->proc.ring.tail, 0);
}

/* The poller peeks at the tail without the lock; the writer holds it. */
static uint32_t tail_of(struct sbx_vm *vm)
{
	return __atomic_load_n(&vm->proc.ring.tail, __ATOMIC_ACQUIRE);
}

/* The request at the tail is one the poller left to the vCPU's thread (SBX_DONE_RING): not
 * looked at again. Its own bytes say so, whatever reset or execve rewrote the ring since. */
static int left_to_vcpu(struct sbx_vm *vm)
{
	const volatile struct sbx_ring *r = sbx_gptr_ro(vm, sbx_ring_gpa(vm), sizeof(*r));
	const volatile struct sbx_slot *s = &r->slots[tail_of(vm) % SBX_RING_SLOTS];
	uint64_t seq = s->seq;
	return s->done == (seq | SBX_DONE_RING);
}

void sbx_ring_need_wakeup(struct sbx_vm *vm, int on)
{
	volatile struct sbx_ring *r = ring_of(vm);
	if (on)
		__atomic_or_fetch(&r->flags, SBX_RING_NEED_WAKEUP, __ATOMIC_SEQ_CST);
	else
		__atomic_and_fetch(&r->flags, ~SBX_RING_NEED_WAKEUP, __ATOMIC_SEQ_CST);
}

int sbx_ring_pending(struct sbx_vm *vm)
{
	/* A read only: no dirty mark, which a polling thread would make at every turn. */
	const volatile struct sbx_ring *r = sbx_gptr_ro(vm, sbx_ring_gpa(vm), sizeof(*r));
	uint32_t tail = tail_of(vm);
	if (__atomic_load_n(&r->head, __ATOMIC_SEQ_CST) == tail)
		return 0;
	/* A request only the vCPU's own thread serves is not the poller's to spin on. */
	return !(r->slots[tail % SBX_RING_SLOTS].pad & SBX_SLOT_OWN);
}

void sbx_ring_poll(struct sbx_vm *vm)
{
	pthread_mutex_lock(&vm->proc.ring.lock);
	/* Retired (threads): vCPU 0's own thread serves, and may release the lock meanwhile. */
	if (!atomic_load(&vm->proc.ring.retired))
		vm->stats.polled += (uint64_t)sbx_ring_serve(vm);
	pthread_mutex_unlock(&vm->proc.ring.lock);
}

/* Backs the next piece of the ranges left for this thread: outside the lock, since a range
 * takes ~1-3 us a page of fresh host memory and the vCPU thread may want the lock meanwhile;
 * a piece at a time between looks at the ring, so that a request never waits behind a big
 * range (Go's runtime maps 32 MiB at start-up and touches a few pages of it). Backing changes
 * no byte (a page reads the same before and after), so nothing guards it. */
#define SBX_POP_PIECE (512ull << 10)
/* Shared by several rings: each piece keeps the others waiting (~30-100 us here). */
#define SBX_POP_PIECE_SHARED (64ull << 10)
static int populate_queued(struct sbx_vm *vm, int shared)
{
	struct sbx_ring_srv *rs = &vm->proc.ring;
	if (!__atomic_load_n(&rs->npop, __ATOMIC_ACQUIRE))
		return 0;
	/* Not waiting for the lock: the vCPU's thread may hold it through a long request. */
	if (pthread_mutex_trylock(&rs->lock))
		return 0;
	unsigned n = rs->npop;
	uint64_t gpa = n ? rs->pop[0].gpa : 0, len = 0,
		 piece = shared ? SBX_POP_PIECE_SHARED : SBX_POP_PIECE;
	if (n) {
		len = rs->pop[0].len < piece ? rs->pop[0].len : piece;
		rs->pop[0].gpa += len;
		rs->pop[0].len -= len;
		if (!rs->pop[0].len) {
			memmove(&rs->pop[0], &rs->pop[1], (n - 1) * sizeof(rs->pop[0]));
			__atomic_store_n(&rs->npop, n - 1, __ATOMIC_RELEASE);
		}
	}
	pthread_mutex_unlock(&rs->lock);
	if (len)
		madvise(vm->proc.mem.base + gpa, len, MADV_POPULATE_WRITE);
	return len != 0;
}

void sbx_ring_forget_populate(struct sbx_vm *vm, uint64_t gpa, uint64_t len)
{
	struct sbx_ring_srv *rs = &vm->proc.ring;
	unsigned n = rs->npop, k = 0;
	for (unsigned i = 0; i < n; i++) {
		uint64_t a = rs->pop[i].gpa, e = a + rs->pop[i].len, end = gpa + len;
		if (e <= gpa || a >= end) {
			rs->pop[k++] = rs->pop[i];
			continue;
		}
		/* What lies before the hole stays; what lies after it too, in the same slot if
		 * nothing lies before (a range the hole splits keeps its first part). */
		if (a < gpa)
			rs->pop[k++] = (__typeof__(rs->pop[0])){.gpa = a, .len = gpa - a};
		else if (e > end)
			rs->pop[k++] = (__typeof__(rs->pop[0])){.gpa = end, .len = e - end};
	}
	__atomic_store_n(&rs->npop, k, __ATOMIC_RELEASE);
}

int sbx_ring_defer_populate(struct sbx_vm *vm, uint64_t gpa, uint64_t len)
{
	struct sbx_ring_srv *rs = &vm->proc.ring;
	if (!(rs->attached || rs->polling) || atomic_load(&rs->retired) ||
	    rs->npop == SBX_RING_POP_MAX)
		return -EAGAIN;
	rs->pop[rs->npop].gpa = gpa;
	rs->pop[rs->npop].len = len;
	__atomic_store_n(&rs->npop, rs->npop + 1, __ATOMIC_RELEASE);
	if (rs->attached)
		sbx_poller_wake(rs->poller, vm);
	return 0;
}

int sbx_ring_turn(struct sbx_vm *vm, int shared)
{
	struct sbx_ring_srv *rs = &vm->proc.ring;
	int wakes = atomic_load(&rs->wakes);
	if (!atomic_load(&rs->active))
		return 0;
	if (atomic_load(&rs->stop) || atomic_load(&vm->life.stopping)) {
		atomic_store(&rs->active, 0);
		rs->awake = 0;
		return 0;
	}
	int64_t now = sbx_now_ns(CLOCK_MONOTONIC);
	if (!rs->awake) {
		/* Every write to guest RAM under ring_lock, even this flag: a paused sandbox
		 * holds the lock, and its RAM must not change while a snapshot reads it. */
		if (pthread_mutex_trylock(&rs->lock))
			goto held;
		sbx_ring_need_wakeup(vm, 0);
		pthread_mutex_unlock(&rs->lock);
		rs->awake = 1;
		rs->idle_since = now;
		rs->held_since = 0;
	}
	int retired = atomic_load(&rs->retired);
	if (retired)
		rs->idle_since = 0; /* idle at once, for good */
	else if (populate_queued(vm, shared))
		rs->idle_since = now;
	if (!retired && sbx_ring_pending(vm) && !left_to_vcpu(vm) &&
	    pthread_mutex_trylock(&rs->lock) == 0) {
		ring_shared = 1;
		/* Retired meanwhile: vCPU 0's own thread serves, and may release the lock while
		 * it does. */
		if (!atomic_load(&rs->retired))
			vm->stats.polled += (uint64_t)sbx_ring_serve(vm);
		ring_shared = 0;
		pthread_mutex_unlock(&rs->lock);
		rs->idle_since = now;
		rs->held_since = 0;
		return 1;
	}
	if (now - rs->idle_since < SBX_POLL_IDLE_NS ||
	    (__atomic_load_n(&rs->npop, __ATOMIC_ACQUIRE) && !retired))
		return 1;
	/* Going idle: ask for doorbells, then look once more, since a request published before
	 * the flag was visible would otherwise wait forever. `active` goes first: a doorbell's
	 * wake-up from here on is not lost. */
	if (pthread_mutex_trylock(&rs->lock))
		goto held;
	rs->held_since = 0;
	atomic_store(&rs->active, 0);
	rs->awake = 0;
	sbx_ring_need_wakeup(vm, 1);
	int more = sbx_ring_pending(vm) && !left_to_vcpu(vm);
	if (more) {
		sbx_ring_need_wakeup(vm, 0);
		rs->awake = 1;
		atomic_store(&rs->active, 1);
	}
	pthread_mutex_unlock(&rs->lock);
	return more;
held:
	/* The vCPU's thread holds ring_lock through a long request, or a pause does: not spun on
	 * for long. With NEED_WAKEUP still clear the guest spins for spin_tsc, then rings, and
	 * the doorbell makes the ring active again. */
	if (!rs->held_since)
		rs->held_since = now;
	if (now - rs->held_since < SBX_POLL_HELD_NS)
		return 1;
	rs->held_since = 0;
	rs->awake = 0;
	atomic_store(&rs->active, 0);
	/* A doorbell's wake-up since this look began is not lost. */
	if (atomic_load(&rs->wakes) != wakes)
		atomic_store(&rs->active, 1);
	return 0;
}

void sbx_ring_nudge(struct sbx_vm *vm, int how)
{
	atomic_fetch_add(&vm->life.nudge, 1);
	sbx_wake_sleepers(vm);
	if ((how & SBX_RING_KICK) && vm->proc.ring.attached)
		sbx_poller_kick(vm->proc.ring.poller, vm);
}

int sbx_ring_lock(struct sbx_vm *vm, int how, int timeout_ms)
{
	if (pthread_mutex_trylock(&vm->proc.ring.lock) == 0)
		return 0;
	int64_t end = sbx_now_ns(CLOCK_MONOTONIC) + timeout_ms * SBX_NS_PER_MS;
	for (;;) {
		if (how & (SBX_RING_NUDGE | SBX_RING_KICK))
			sbx_ring_nudge(vm, how);
		int64_t step = 10 * SBX_NS_PER_MS, left = end - sbx_now_ns(CLOCK_MONOTONIC);
		if (timeout_ms && left <= 0)
			return -ETIMEDOUT;
		struct timespec dl;
		sbx_deadline(&dl, timeout_ms && left < step ? left : step);
		if (pthread_mutex_timedlock(&vm->proc.ring.lock, &dl) == 0)
			return 0;
		if ((how & SBX_RING_UNLESS_STOPPING) && atomic_load(&vm->life.stopping))
			return -ESRCH;
	}
}

void sbx_ring_doorbell(struct sbx_vm *vm)
{
	/* The poller may be blocked in a host call the guest asked for (a poll with no end)
	 * while it holds the lock: a kill must still get this thread out. */
	if (sbx_ring_lock(vm, SBX_RING_UNLESS_STOPPING, 0) < 0)
		return;
	sbx_ring_serve_at(vm, sbx_ring_gpa(vm), &vm->proc.ring.tail, 1);
	/* The poller may have stopped looking at a retired ring with the flag clear (its lock
	 * held for long): doorbells from now on, without spinning first. */
	if (atomic_load(&vm->proc.ring.retired))
		sbx_ring_need_wakeup(vm, 1);
	pthread_mutex_unlock(&vm->proc.ring.lock);
	vm->stats.doorbells++;
	/* Calls are coming again: let the poller take the next ones without exits. */
	if (vm->proc.ring.attached && !atomic_load(&vm->proc.ring.retired))
		sbx_poller_wake(vm->proc.ring.poller, vm);
}

void sbx_ring_unretire(struct sbx_vm *vm)
{
	/* An idle poller waits for a doorbell: this one stands for the next run's first. */
	if (atomic_exchange(&vm->proc.ring.retired, 0) && vm->proc.ring.attached)
		sbx_poller_wake(vm->proc.ring.poller, vm);
}

void sbx_ring_share(struct sbx_vm *child, struct sbx_vm *parent)
{
	if (child->proc.ring.polling && parent->proc.ring.poller && !child->proc.ring.poller)
		child->proc.ring.poller = sbx_poller_ref(parent->proc.ring.poller);
}

int sbx_ring_start(struct sbx_vm *vm, char *err, size_t errlen)
{
	struct sbx_ring_srv *rs = &vm->proc.ring;
	sbx_ring_need_wakeup(vm, 1);
	if (!rs->polling)
		return 0;
	sbx_pin_cpu(vm->proc.vcpu.cpu);
	int r = rs->poller ? 0 : sbx_poller_new(rs->cpu, &rs->poller, err, errlen);
	atomic_store(&rs->stop, 0);
	rs->awake = 0;
	rs->held_since = 0;
	rs->attached = r == 0;
	if (r == 0 && (r = sbx_poller_attach(rs->poller, vm)) < 0)
		snprintf(err, errlen, "cannot join the ring's polling thread: %s", strerror(-r));
	if (r < 0) {
		rs->attached = 0;
		if (rs->poller)
			sbx_poller_unref(rs->poller);
		rs->poller = NULL;
		rs->polling = 0;
		/* What was queued for it before the run (populate_data) is backed here. */
		while (__atomic_load_n(&rs->npop, __ATOMIC_ACQUIRE))
			populate_queued(vm, 0);
		return r;
	}
	return 0;
}

void sbx_ring_stop(struct sbx_vm *vm)
{
	struct sbx_ring_srv *rs = &vm->proc.ring;
	if (rs->attached) {
		atomic_store(&rs->stop, 1);
		sbx_poller_detach(rs->poller, vm);
		rs->attached = 0;
		rs->npop = 0; /* hints for a run that is over */
	}
	if (rs->poller) {
		sbx_poller_unref(rs->poller);
		rs->poller = NULL;
	}
}
