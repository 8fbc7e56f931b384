/* futex(2) between the program's threads, inside the guest: waiters are a list under the big
 * kernel lock, keyed by the word's address (one process: private and shared futexes alike). A
 * waiter spins a little with the lock released, then parks its vCPU in the monitor on its own
 * state word; a waker that finds it parked has the monitor wake it (UNPARK). An uncontended
 * lock or unlock never gets here at all (the C library's fast path is one atomic). */
#include "clock.h"
#include "kernel.h"

#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define FUTEX_REQUEUE 3
#define FUTEX_CMP_REQUEUE 4
#define FUTEX_WAKE_OP 5
#define FUTEX_LOCK_PI 6
#define FUTEX_UNLOCK_PI 7
#define FUTEX_TRYLOCK_PI 8
#define FUTEX_WAIT_BITSET 9
#define FUTEX_WAKE_BITSET 10
#define FUTEX_LOCK_PI2 13
#define FUTEX_PRIVATE_FLAG 128
#define FUTEX_CLOCK_REALTIME 256
#define FUTEX_CMD_MASK 0x7f

/* A waiter's state, the word its vCPU parks on. */
#define K_FW_NONE 0
#define K_FW_WAIT 1	/* queued, spinning */
#define K_FW_PARKED 2	/* queued, its vCPU parked in the monitor: a waker must UNPARK it */
#define K_FW_WOKEN 3	/* taken off the queue by a waker */
#define K_SPIN_NS 30000 /* about an exit's round trip: a wake that soon costs no exit */

static struct k_futex_wait *k_fq;
/* How many of k_fq's waiters are PI ones (no bits): none, and a plain wait looks for none. */
static unsigned k_pi_queued;

void k_futex_forget_all(void)
{
	k_fq = 0;
	k_pi_queued = 0;
}

static void fq_add(struct k_futex_wait *w)
{
	w->prev = 0;
	w->next = k_fq;
	if (k_fq)
		k_fq->prev = w;
	k_fq = w;
}

static void fq_del(struct k_futex_wait *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		k_fq = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->next = w->prev = 0;
	if (!w->bits)
		k_pi_queued--;
}

/* The PI waiter on uaddr queued first (fq_add puts the newest first), or NULL. */
static struct k_futex_wait *pi_oldest(uint64_t uaddr)
{
	struct k_futex_wait *o = 0;
	if (!k_pi_queued)
		return 0; /* the plain wait's path: no walk of the queue */
	for (struct k_futex_wait *w = k_fq; w; w = w->next)
		if (w->key == uaddr && !w->bits)
			o = w;
	return o;
}

static void wake_one(struct k_futex_wait *w)
{
	fq_del(w);
	uint32_t old = __atomic_exchange_n(&w->state, K_FW_WOKEN, __ATOMIC_SEQ_CST);
	if (old == K_FW_PARKED) {
		uint64_t a[1] = {(uint64_t)&w->state};
		k_call(SBX_CALL_UNPARK, a, 1);
	}
}

/* Linux wakes one even when asked for none or fewer. */
static long wake_key(uint64_t uaddr, int32_t n, uint32_t bits)
{
	long woke = 0;
	for (struct k_futex_wait *w = k_fq, *next; w; w = next) {
		next = w->next;
		if (w->key != uaddr || !(w->bits & bits))
			continue;
		wake_one(w);
		if (++woke >= n)
			break;
	}
	return woke;
}

void k_futex_cancel(struct k_futex_wait *w)
{
	uint32_t s = w->state;
	if (s == K_FW_WAIT || s == K_FW_PARKED) {
		w->cancelled = 1;
		wake_one(w);
	}
}

/* The kernel's own wakes (a thread's clear_tid, a robust mutex's owner gone) of a word in
 * shared memory wake other processes' waiters too. */
long k_futex_wake(uint64_t uaddr, uint32_t n, uint32_t bits)
{
	if (__builtin_expect(k_shmap_holds(uaddr), 0)) {
		uint64_t a[6] = {
		    FUTEX_WAKE_BITSET, uaddr, n > 0x7fffffffu ? 0x7fffffffu : n, 0, 0, bits};
		return k_call(SBX_CALL_FUTEX, a, 6);
	}
	return wake_key(uaddr, (int32_t)(n > 0x7fffffffu ? 0x7fffffffu : n), bits);
}

/* A wait a signal for the thread cut short: EINTR, or, for a wait without a timeout whose
 * signal's handler has SA_RESTART, the call made again after the handler (ERESTARTSYS), as
 * Linux does; a timed one is EINTR after any handler (Linux's restart block). A signal that
 * went meanwhile (another path took it) leaves a spurious wake-up, 0. */
static long cut(int64_t deadline)
{
	if (!k_signal_waiting())
		return 0;
	return deadline < 0 && !k_signal_interrupts() ? -K_ERESTARTSYS : -EINTR;
}

/* Sleeps on w, which the caller has just queued: until a waker takes it off the queue (0), the
 * deadline (-ETIMEDOUT), or a signal (-EINTR, or a spurious wake-up, 0, when its signal went
 * to another thread); a waker that came first wins over both. deadline: ns on the clock
 * `realtime` names, or -1 for none. */
static long sleep_queued(struct k_futex_wait *w, int64_t deadline, int realtime)
{
	uint32_t depth = k_unlock_all();
	long ret = 0;
	int incoming = 0;
	uint64_t spin_end = sbx_rdtsc() + sbx_tsc_ticks(BOOT, K_SPIN_NS);
	for (;;) {
		if (__atomic_load_n(&w->state, __ATOMIC_ACQUIRE) == K_FW_WOKEN)
			break;
		int64_t left = deadline < 0 ? -1 : deadline - k_now_ns(realtime);
		if (deadline >= 0 && left <= 0) {
			ret = -ETIMEDOUT;
			break;
		}
		if (sbx_rdtsc() < spin_end && k_nthreads > 1) {
			__asm__ volatile("pause");
			continue;
		}
		uint32_t exp = K_FW_WAIT;
		if (!__atomic_compare_exchange_n(&w->state, &exp, K_FW_PARKED, 0, __ATOMIC_SEQ_CST,
						 __ATOMIC_SEQ_CST))
			continue; /* woken meanwhile */
		uint64_t a[3] = {(uint64_t)&w->state, K_FW_PARKED,
				 left < 0 ? ~0ull : (uint64_t)left};
		k_call_own(SBX_CALL_PARK, a, 3);
		exp = K_FW_PARKED;
		__atomic_compare_exchange_n(&w->state, &exp, K_FW_WAIT, 0, __ATOMIC_SEQ_CST,
					    __ATOMIC_SEQ_CST);
		/* Another process's signal, or the alarm's: looked at under the lock below. */
		if (__atomic_load_n(&BOOT->sig_incoming, __ATOMIC_SEQ_CST)) {
			incoming = 1;
			break;
		}
	}
	k_relock(depth);
	if (ret == -ETIMEDOUT || incoming) {
		if (w->state == K_FW_WOKEN)
			ret = 0; /* its waker counted it */
		else
			fq_del(w);
		/* A handler to run cuts the wait (EINTR); else it is a spurious wake-up, which
		 * every futex caller takes (another thread may have taken the signal). */
		if (incoming && ret == 0 && w->state != K_FW_WOKEN && k_signal_interrupts())
			ret = -EINTR;
	}
	w->state = K_FW_NONE;
	/* Woken for a signal (k_signal_thread's cancel): its handler runs as this call returns.
	 * A FUTEX_WAKE that took it first is a wake, as on Linux, whatever else is pending. */
	int intr = k_thread_interrupted();
	if (ret == 0 && intr && w->cancelled)
		ret = -EINTR;
	return ret;
}

static void queue_self(struct k_futex_wait *w, uint64_t uaddr, uint32_t bits)
{
	w->key = uaddr;
	w->bits = bits;
	w->tid = K_CPU_TID;
	w->cancelled = 0;
	w->state = K_FW_WAIT;
	fq_add(w);
	if (!bits)
		k_pi_queued++;
}

static long wait(uint64_t uaddr, uint32_t val, int64_t deadline, int realtime, uint32_t bits)
{
	uint32_t cur;
	if (!bits)
		return -EINVAL;
	if (!k_user_ok(uaddr, 4, K_READ))
		return -EFAULT;
	cur = __atomic_load_n((const uint32_t *)uaddr, __ATOMIC_SEQ_CST);
	if (cur != val)
		return -EAGAIN;
	if (pi_oldest(uaddr))
		return -EINVAL; /* as Linux: a PI futex's waiters are not a plain futex's */
	/* A signal already sent to this thread: its handler runs first, as on Linux. */
	if (k_signal_waiting())
		return cut(deadline);
	/* No other thread exists to wake us: Linux would hang forever. Say so instead; unless
	 * an alarm is to come (alarm(5); sem_wait(): its SIGALRM ends the wait). */
	if (k_nthreads == 1 && deadline < 0 && !k_itimer_armed())
		k_exit(SBX_EXIT_DEADLOCK);
	struct k_futex_wait *w = k_self_waiter();
	queue_self(w, uaddr, bits);
	long ret = sleep_queued(w, deadline, realtime);
	return ret == -EINTR ? cut(deadline) : ret;
}

/* Priority-inheritance futexes (FUTEX_LOCK_PI and the rest): the word is the lock, its owner's
 * tid with FUTEX_WAITERS while threads wait in the kernel and FUTEX_OWNER_DIED once a holder
 * ended without unlocking. The sandbox's threads have no priorities to lend, so what is left
 * is the protocol the C library relies on: the unlock hands the lock to the oldest waiter,
 * writing its tid into the word; a lock of one's own lock is EDEADLK, an unlock of another's
 * EPERM, a lock whose owner is no thread ESRCH. PI waiters queue with no bits, so that no
 * plain wake takes one. */
static long lock_pi(uint64_t uaddr, int64_t deadline, int realtime, int try)
{
	if (!k_user_ok(uaddr, 4, K_READ | K_WRITE))
		return -EFAULT;
	uint32_t *p = (uint32_t *)uaddr, me = K_CPU_TID;
	struct k_futex_wait *w = k_self_waiter();
	for (;;) {
		uint32_t v = __atomic_load_n(p, __ATOMIC_SEQ_CST), owner = v & FUTEX_TID_MASK;
		if (owner == me)
			return -EDEADLK;
		if (!owner) {
			/* Free, or its holder died: taken, OWNER_DIED kept for the C library to
			 * report (EOWNERDEAD), WAITERS kept while others still queue. */
			uint32_t nv =
			    me | (v & FUTEX_OWNER_DIED) | (pi_oldest(uaddr) ? FUTEX_WAITERS : 0);
			if (__atomic_compare_exchange_n(p, &v, nv, 0, __ATOMIC_SEQ_CST,
							__ATOMIC_SEQ_CST))
				return 0;
			continue;
		}
		if (!k_thread_live(owner))
			return -ESRCH;
		if (try)
			return -EAGAIN;
		if (!(v & FUTEX_WAITERS) &&
		    !__atomic_compare_exchange_n(p, &v, v | FUTEX_WAITERS, 0, __ATOMIC_SEQ_CST,
						 __ATOMIC_SEQ_CST))
			continue;
		/* A signal's handler runs first and the lock is asked again after it (Linux's
		 * ERESTARTNOINTR: whatever SA_RESTART says; the timeout is absolute). */
		if (k_signal_waiting())
			return -K_ERESTARTSYS;
		queue_self(w, uaddr, 0);
		long r = sleep_queued(w, deadline, realtime);
		if ((__atomic_load_n(p, __ATOMIC_SEQ_CST) & FUTEX_TID_MASK) == me)
			return 0; /* handed over, whatever else happened meanwhile */
		if (r == -ETIMEDOUT)
			return r;
		if (r == -EINTR)
			return -K_ERESTARTSYS;
		/* A spurious wake-up: ask again. */
	}
}

static long unlock_pi(uint64_t uaddr)
{
	if (!k_user_ok(uaddr, 4, K_READ | K_WRITE))
		return -EFAULT;
	uint32_t *p = (uint32_t *)uaddr, me = K_CPU_TID;
	uint32_t v = __atomic_load_n(p, __ATOMIC_SEQ_CST);
	for (;;) {
		if ((v & FUTEX_TID_MASK) != me)
			return -EPERM;
		struct k_futex_wait *w = pi_oldest(uaddr);
		/* As Linux: the new owner's word says WAITERS, so its unlock comes here. */
		uint32_t nv = w ? w->tid | FUTEX_WAITERS : 0;
		if (!__atomic_compare_exchange_n(p, &v, nv, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
			continue;
		if (w)
			wake_one(w);
		return 0;
	}
}

/* A PI lock its holder left behind: the oldest waiter gets it marked OWNER_DIED, robust or
 * not, as Linux's exit hands it over (the C library's EOWNERDEAD). The word may say the holder
 * or nobody: musl marks a robust one's word OWNER_DIED itself before the thread ends, and only
 * a FUTEX_WAKE follows, which no PI waiter takes (Linux's exit hands it over then too). 1 if
 * one got it. */
static int pi_hand_over(uint64_t uaddr, uint32_t holder)
{
	struct k_futex_wait *to = pi_oldest(uaddr);
	if (!to || !k_user_ok(uaddr, 4, K_READ | K_WRITE))
		return 0;
	uint32_t *p = (uint32_t *)uaddr, v = __atomic_load_n(p, __ATOMIC_SEQ_CST);
	do {
		if ((v & FUTEX_TID_MASK) != holder && (v & FUTEX_TID_MASK))
			return 0;
	} while (!__atomic_compare_exchange_n(p, &v, to->tid | FUTEX_WAITERS | FUTEX_OWNER_DIED, 0,
					      __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
	wake_one(to);
	return 1;
}

/* Linux's handle_futex_death, for each robust mutex a thread still held at its end: marked
 * OWNER_DIED; then a PI one goes to its oldest waiter, a plain one wakes one (either then
 * gets EOWNERDEAD from the C library). */
void k_futex_death(uint64_t uaddr, uint32_t tid, int pi)
{
	if ((uaddr & 3) || !k_user_ok(uaddr, 4, K_READ | K_WRITE))
		return;
	uint32_t *p = (uint32_t *)uaddr, v = __atomic_load_n(p, __ATOMIC_SEQ_CST);
	do {
		if ((v & FUTEX_TID_MASK) != tid)
			return;
	} while (!__atomic_compare_exchange_n(p, &v, (v & FUTEX_WAITERS) | FUTEX_OWNER_DIED, 0,
					      __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
	if (pi && !k_shmap_holds(uaddr))
		pi_hand_over(uaddr, 0);
	else if (v & FUTEX_WAITERS)
		k_futex_wake(uaddr, 1, ~0u);
}

/* After the robust walk: any other PI lock the ended thread holds with threads waiting for it
 * goes to the oldest (Linux's exit_pi_state_list and its waiter's fixup); a handover changes the
 * queue, so the walk starts over, and each takes one waiter off. */
void k_futex_pi_exit(uint32_t tid)
{
	for (struct k_futex_wait *w = k_fq; w;)
		w = !w->bits && pi_hand_over(w->key, tid) ? k_fq : w->next;
}

/* FUTEX_REQUEUE and FUTEX_CMP_REQUEUE: wake n, move up to m more to uaddr2. */
static long requeue(uint64_t uaddr, int32_t n, int32_t m, uint64_t uaddr2, int cmp, uint32_t val3)
{
	if (n < 0 || m < 0)
		return -EINVAL;
	if (cmp) {
		if (!k_user_ok(uaddr, 4, K_READ))
			return -EFAULT;
		if (__atomic_load_n((const uint32_t *)uaddr, __ATOMIC_SEQ_CST) != val3)
			return -EAGAIN;
	}
	long woke = 0, moved = 0;
	for (struct k_futex_wait *w = k_fq, *next; w; w = next) {
		next = w->next;
		if (w->key != uaddr || !w->bits) /* a PI waiter is the lock's, never moved */
			continue;
		if (woke < n) {
			wake_one(w);
			woke++;
		} else if (moved < m) {
			w->key = uaddr2;
			moved++;
		} else {
			break;
		}
	}
	return cmp ? woke + moved : woke;
}

/* FUTEX_WAKE_OP: *uaddr2 changed atomically by the op encoded in val3; wake n on uaddr, and m
 * on uaddr2 when the old value meets the comparison. */
static long wake_op(uint64_t uaddr, int32_t n, int32_t m, uint64_t uaddr2, uint32_t val3)
{
	uint32_t op = (val3 >> 28) & 7, cmp = (val3 >> 24) & 15;
	uint32_t oparg = (val3 >> 12) & 0xfff, cmparg = val3 & 0xfff;
	if ((val3 >> 28) & 8) /* FUTEX_OP_OPARG_SHIFT */
		oparg = oparg > 31 ? 0 : 1u << oparg;
	if (op > 4 || cmp > 5)
		return -ENOSYS;
	if (!k_user_ok(uaddr2, 4, K_READ | K_WRITE))
		return -EFAULT;
	uint32_t *p = (uint32_t *)uaddr2, old = __atomic_load_n(p, __ATOMIC_SEQ_CST), nv;
	do {
		switch (op) {
		case 0:
			nv = oparg;
			break;
		case 1:
			nv = old + oparg;
			break;
		case 2:
			nv = old | oparg;
			break;
		case 3:
			nv = old & ~oparg;
			break;
		default:
			nv = old ^ oparg;
			break;
		}
	} while (!__atomic_compare_exchange_n(p, &old, nv, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
	long woke = wake_key(uaddr, n, ~0u);
	int32_t o = (int32_t)old, c = (int32_t)cmparg;
	int hit = cmp == 0   ? o == c
		  : cmp == 1 ? o != c
		  : cmp == 2 ? o < c
		  : cmp == 3 ? o <= c
		  : cmp == 4 ? o > c
			     : o >= c;
	if (hit)
		woke += wake_key(uaddr2, m, ~0u);
	return woke;
}

/* A timeout argument as a deadline on the clock the wait uses: -1 for none. */
static long deadline_of(uint64_t ts, int absolute, int realtime, int64_t *out)
{
	int64_t t[2];
	*out = -1;
	if (!ts)
		return 0;
	if (k_copy_from_user(t, ts, sizeof(t)) < 0)
		return -EFAULT;
	if (t[0] < 0 || t[1] < 0 || t[1] >= 1000000000)
		return -EINVAL;
	int64_t ns = t[0] > 9000000000ll ? 9000000000ll * 1000000000ll : t[0] * 1000000000ll + t[1];
	*out = absolute ? ns : k_now_ns(realtime) + ns;
	return 0;
}

/* A futex in a shared window (k_shmap_holds): other processes may wait on it or wake it, so
 * it is the host's futex, keyed by the file's page, whether the program said private or not.
 * Both words of a requeue or wake-op must be in windows (EINVAL otherwise). */
static long host_futex(struct k_frame *f, unsigned cmd, int rt)
{
	uint64_t a[6] = {cmd, f->rdi, (uint32_t)f->rdx, f->r10, f->r8, (uint32_t)f->r9};
	if (cmd != FUTEX_WAIT && cmd != FUTEX_WAIT_BITSET)
		return k_call(SBX_CALL_FUTEX, a, 6);
	int64_t dl;
	long r = deadline_of(f->r10, cmd == FUTEX_WAIT_BITSET, cmd == FUTEX_WAIT ? 0 : rt, &dl);
	if (r < 0)
		return r;
	/* As Linux and the guest's own waits: a changed word first, then a signal waiting. */
	if (!k_user_ok(f->rdi, 4, K_READ))
		return -EFAULT;
	if (__atomic_load_n((const uint32_t *)f->rdi, __ATOMIC_SEQ_CST) != (uint32_t)f->rdx)
		return -EAGAIN;
	if (k_signal_waiting())
		return cut(dl);
	int64_t left = dl < 0 ? -1 : dl - k_now_ns(cmd == FUTEX_WAIT ? 0 : rt);
	if (dl >= 0 && left <= 0)
		return -ETIMEDOUT;
	a[3] = left < 0 ? ~0ull : (uint64_t)left;
	r = k_call_own(SBX_CALL_FUTEX, a, 6);
	/* Cut short by a signal or a pause: as the signal's handler says (cut), or, for a
	 * pause, a spurious wake-up, which every futex caller takes. A wake is a wake. */
	int intr = k_thread_interrupted();
	if (r == -EINTR)
		return intr || k_signal_interrupts() ? cut(dl) : 0;
	return r;
}

long k_sys_futex(struct k_frame *f)
{
	uint64_t uaddr = f->rdi, uaddr2 = f->r8;
	unsigned op = (unsigned)f->rsi, cmd = op & FUTEX_CMD_MASK;
	uint32_t val = (uint32_t)f->rdx, val3 = (uint32_t)f->r9;
	int rt = (op & FUTEX_CLOCK_REALTIME) != 0;
	int64_t dl;
	long r;
	if (uaddr & 3)
		return -EINVAL;
	int pi = cmd == FUTEX_LOCK_PI || cmd == FUTEX_LOCK_PI2 || cmd == FUTEX_TRYLOCK_PI ||
		 cmd == FUTEX_UNLOCK_PI;
	if (rt && cmd != FUTEX_WAIT && cmd != FUTEX_WAIT_BITSET && cmd != FUTEX_LOCK_PI2)
		return -ENOSYS;
	if (__builtin_expect(k_shmap_holds(uaddr), 0)) {
		/* A PI lock between processes would need the host to know the sandbox's tids. */
		if (pi) {
			BOOT->nosys_count[202]++;
			return -ENOSYS;
		}
		return host_futex(f, cmd, rt);
	}
	switch (cmd) {
	case FUTEX_WAIT:
	case FUTEX_WAIT_BITSET:
		/* FUTEX_WAIT's timeout is relative, on the monotonic clock whatever the flag. */
		if (cmd == FUTEX_WAIT)
			rt = 0;
		if ((r = deadline_of(f->r10, cmd == FUTEX_WAIT_BITSET, rt, &dl)) < 0)
			return r;
		return wait(uaddr, val, dl, rt, cmd == FUTEX_WAIT ? ~0u : val3);
	case FUTEX_WAKE:
	case FUTEX_WAKE_BITSET:
		/* A private futex is only a key to Linux; a shared one must be mapped. */
		if (!(op & FUTEX_PRIVATE_FLAG) && !k_user_ok(uaddr, 4, K_READ))
			return -EFAULT;
		if (cmd == FUTEX_WAKE_BITSET && !val3)
			return -EINVAL;
		return wake_key(uaddr, (int32_t)val, cmd == FUTEX_WAKE ? ~0u : val3);
	case FUTEX_REQUEUE:
	case FUTEX_CMP_REQUEUE:
		if (uaddr2 & 3)
			return -EINVAL;
		return requeue(uaddr, (int32_t)val, (int32_t)f->r10, uaddr2,
			       cmd == FUTEX_CMP_REQUEUE, val3);
	case FUTEX_WAKE_OP:
		if (uaddr2 & 3)
			return -EINVAL;
		return wake_op(uaddr, (int32_t)val, (int32_t)f->r10, uaddr2, val3);
	case FUTEX_LOCK_PI:
	case FUTEX_LOCK_PI2:
		/* Absolute: LOCK_PI's on the realtime clock, LOCK_PI2's on the monotonic one
		 * unless FUTEX_CLOCK_REALTIME says otherwise. */
		rt = rt || cmd == FUTEX_LOCK_PI;
		if ((r = deadline_of(f->r10, 1, rt, &dl)) < 0)
			return r;
		return lock_pi(uaddr, dl, rt, 0);
	case FUTEX_TRYLOCK_PI:
		return lock_pi(uaddr, -1, 0, 1);
	case FUTEX_UNLOCK_PI:
		return unlock_pi(uaddr);
	default:
		/* The requeues to a PI futex (WAIT_REQUEUE_PI, CMP_REQUEUE_PI), which neither
		 * glibc's nor musl's condition variables use: not implemented, and counted so. */
		BOOT->nosys_count[202]++;
		return -ENOSYS;
	}
}
