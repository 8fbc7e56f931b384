/* Threads: each runs on a vCPU of its own, so they run in parallel on the host's cores. The
 * kernel's state is shared and its code was written for one CPU, so every entry (syscall, page
 * fault, signal upcall) takes one big lock, which a waiting thread (futex, sleep) releases.
 * What must differ per vCPU (the entry's stacks, its scratch words, the request ring) lives in
 * its window (SBX_WINDOW_VA), which each vCPU's page tables map onto its own pages. */
#include "clock.h"
#include "kernel.h"

#define CLONE_VM 0x100ull
#define CLONE_FS 0x200ull
#define CLONE_FILES 0x400ull
#define CLONE_SIGHAND 0x800ull
#define CLONE_THREAD 0x10000ull
#define CLONE_SYSVSEM 0x40000ull
#define CLONE_SETTLS 0x80000ull
#define CLONE_PARENT_SETTID 0x100000ull
#define CLONE_CHILD_CLEARTID 0x200000ull
#define CLONE_DETACHED 0x400000ull
#define CLONE_CHILD_SETTID 0x1000000ull
#define CLONE_NEWNS 0x20000ull
#define CLONE_NEWUSER 0x10000000ull
#define CLONE_NEWPID 0x20000000ull
#define CLONE_CLEAR_SIGHAND 0x100000000ull
#define CLONE_INTO_CGROUP 0x200000000ull
#define K_CLONE_NEED (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD)
#define K_CLONE_OK                                                                                 \
	(K_CLONE_NEED | CLONE_SYSVSEM | CLONE_SETTLS | CLONE_PARENT_SETTID |                       \
	 CLONE_CHILD_CLEARTID | CLONE_DETACHED | CLONE_CHILD_SETTID)

#define SIGKILL 9
#define K_MAX_THREADS 1024
#define PAGE SBX_PAGE_SIZE
#define K_RING_OFF (SBX_CPU_OFF - PAGE)

struct k_thread {
	uint32_t tid;		/* 0: the slot is free */
	volatile uint32_t run;	/* an idle vCPU parks on this word until a clone sets it */
	uint64_t clear_tid;	/* CLONE_CHILD_CLEARTID / set_tid_address */
	uint64_t fs, gs;	/* the bases it starts with */
	uint64_t root;		/* its vCPU's page-table root (0: never started) */
	uint64_t cpu;		/* its per-CPU page (guest-physical) */
	struct k_futex_wait fw; /* futex.c: this thread as a waiter */
	struct k_sigthr sig;	/* its mask, alternate stack, pending (thread 0: the page's) */
	volatile uint32_t kick; /* a sleep parks on it; a signal for the thread sets it */
	volatile uint32_t intr; /* a signal came for it: its wait ends with EINTR */
	uint64_t robust;	/* set_robust_list: its list's head, or 0 */
	uint64_t waitset;	/* rt_sigtimedwait: the signals it waits for, blocked or not */
	/* How many of each real-time signal (32-64) are pending: Linux queues each one sent,
	 * where a standard signal is one bit. */
	uint16_t rtq[33];
	/* PR_SET_NAME's name for a thread other than the main one ("": the process's). */
	char comm[16];
	/* sched_setaffinity's vCPUs for it, read back by sched_getaffinity; 0: all of them. */
	uint64_t aff;
};

static struct k_thread k_threads[K_MAX_THREADS];
/* Slots from here on were never taken, so are all zero: the scans stop here. A fork's child
 * that swept all 1,024 slots (64 pages) wrote each page once, a copy-on-write fault of ~17 us
 * apiece on PVM: a third of a single-threaded child's start. */
static unsigned k_threads_used = 1;
/* The process's pending signals (Linux's shared set): a kill() or another process's signal
 * that every thread blocks and none waits for in sigwait. Any thread takes one from here once
 * it unblocks it or waits for it; a real-time one is one bit here. */
static uint64_t k_shared_pending;
/* The thread whose signal state is the page's (struct sbx_sigstate): the first, or in a child
 * a second thread forked, that one. */
static struct k_thread *k_main = &k_threads[0];
uint32_t k_nthreads = 1;
/* The big kernel lock: 0, or the holder's vCPU index + 1. */
static volatile uint32_t k_bkl;
/* A vCPU that finds it taken spins this long, then gives its host CPU up in naps of
 * K_BKL_NAP_NS (a PARK on the word that no release wakes: the holder's release costs it
 * nothing), looking again between them. Longer than a holder's doorbell exit (26-85 us on PVM
 * hosts), which a spinner waits out; past that the holder is most likely off its host CPU (more
 * vCPU threads than cores), and spinning took the CPU from the very holder it waited for: Go's
 * start-up on 2 cores spent 74% of its guest time spinning here. */
#define K_BKL_SPIN_NS 100000ull
#define K_BKL_NAP_NS 100000ull
/* An execve with other threads (k_exec_threaded): its caller, and the call it hands to vCPU 0. */
static struct k_thread *k_exec_owner;
static uint64_t k_exec_args[6];
static volatile uint32_t k_exec_handed;
static void __attribute__((noreturn)) exec_final(uint64_t *a);

static uint64_t page_bits(int exec)
{
	uint64_t e = SBX_PTE_P | SBX_PTE_W | SBX_PTE_A | SBX_PTE_D;
	if (!(BOOT->flags & SBX_BOOT_CPL0))
		e |= SBX_PTE_U;
	return exec ? e : e | SBX_PTE_NX;
}

/* The first entry on vCPU 0: its per-CPU page (guest-physical, in the window's large page) is
 * zero until now. */
static void cpu0_init(struct k_cpu *c)
{
	c->index = 0;
	c->ring = SBX_RING_ADDR;
	c->self = &k_threads[0];
	k_threads[0].tid = BOOT->pid;
	k_threads[0].run = 1; /* it runs: tgkill and get_robust_list find it by its tid */
	K_CPU_TID = BOOT->pid;
	k_threads[0].root = SBX_PT_ADDR;
	k_threads[0].aff = BOOT->affinity; /* what the thread that called execve had */
}

void k_lock(void)
{
	struct k_cpu *c = K_CPU;
	if (__builtin_expect(!c->self, 0))
		cpu0_init(c);
	if (c->bkl_depth++)
		return;
	uint32_t me = c->index + 1;
	uint64_t spin_end = 0, nap_tsc = 0, nap_steal = 0;
	for (;;) {
		uint32_t v = __atomic_load_n(&k_bkl, __ATOMIC_RELAXED);
		if (!v) {
			if (!__atomic_compare_exchange_n(&k_bkl, &v, me, 0, __ATOMIC_ACQUIRE,
							 __ATOMIC_RELAXED))
				continue;
			/* The naps were waits: out of the CPU-time clocks, as a futex's. */
			if (nap_tsc)
				k_account_wait(nap_tsc, nap_steal);
			return;
		}
		if (!spin_end)
			spin_end = sbx_rdtsc() + sbx_tsc_ticks(BOOT, K_BKL_SPIN_NS);
		/* A PARK ends at once while another process's signal waits to be taken (only
		 * a holder of the lock takes it): spinning then, not a storm of exits. */
		if (sbx_rdtsc() < spin_end ||
		    __atomic_load_n(&BOOT->sig_incoming, __ATOMIC_RELAXED)) {
			__asm__ volatile("pause");
			continue;
		}
		if (!nap_tsc) {
			nap_tsc = sbx_rdtsc();
			nap_steal = BOOT->steal.steal;
		}
		/* The lock is not held: bkl_depth's count stays as it is (the call must not
		 * release what it does not hold). */
		uint64_t a[3] = {(uint64_t)&k_bkl, v, K_BKL_NAP_NS};
		k_call_own_locked(SBX_CALL_PARK, a, 3);
	}
}

void k_unlock(void)
{
	struct k_cpu *c = K_CPU;
	if (--c->bkl_depth == 0)
		__atomic_store_n(&k_bkl, 0, __ATOMIC_RELEASE);
}

uint32_t k_unlock_all(void)
{
	struct k_cpu *c = K_CPU;
	uint32_t d = c->bkl_depth;
	c->bkl_depth = 0;
	if (d)
		__atomic_store_n(&k_bkl, 0, __ATOMIC_RELEASE);
	return d;
}

void k_relock(uint32_t depth)
{
	if (!depth)
		return;
	k_lock();
	K_CPU->bkl_depth = depth;
}

void k_cpu_tramp(struct k_cpu *c)
{
	/* movq rel32(%rip), %rax; jmpq *rel32(%rip), addressed from where the trampoline runs. */
	uint64_t at = SBX_CPU_VA + K_CPU_TRAMP;
	int32_t d1 = (int32_t)((int64_t)(SBX_CPU_VA + K_CPU_PF_RAX) - (int64_t)(at + 7));
	int32_t d2 = (int32_t)((int64_t)(K_PF_FRAME + 8) - (int64_t)(at + 13));
	uint8_t code[13] = {0x48, 0x8b, 0x05, 0, 0, 0, 0, 0xff, 0x25, 0, 0, 0, 0};
	k_memcpy(code + 3, &d1, 4);
	k_memcpy(code + 9, &d2, 4);
	k_memcpy(c->tramp, code, sizeof(code));
	c->tramp_ready = 1;
}

void k_cpu_root_set(unsigned slot, uint64_t entry)
{
	if (slot == (SBX_WINDOW_VA >> 39) % 512)
		return;
	for (unsigned i = 1; i < k_threads_used; i++)
		if (k_threads[i].root)
			((uint64_t *)k_phys(k_threads[i].root))[slot] = entry;
}

/* A page of RAM for the window being built, zeroed (k_frame_alloc's pages are). */
static uint64_t take(uint64_t *got, unsigned *n)
{
	uint64_t pa = k_frame_alloc();
	if (pa)
		got[(*n)++] = pa;
	return pa;
}

/* Pages a window takes: root, its PDPT, directory and table, the per-CPU page, the ring, the
 * syscall stack's top and the IST stacks. */
#define K_STACK_PAGES ((SBX_CPU_STACK_BYTES + SBX_IST_COUNT * SBX_IST_STACK_BYTES) / PAGE)
#define K_WINDOW_PAGES 6

/* The page tables and pages of vCPU i: a copy of the master root whose window slot leads to
 * a copy of the map of RAM's PDPT whose last entry is this vCPU's own. 0 or -EAGAIN. */
static int build_window(unsigned i, uint64_t *ring_gpa)
{
	uint64_t got[K_WINDOW_PAGES];
	unsigned n = 0;
	uint64_t *master = k_phys(SBX_PT_ADDR);
	unsigned slot = (SBX_WINDOW_VA >> 39) % 512;
	if (!k_physmap_on || !(master[slot] & SBX_PTE_P))
		return -EAGAIN;
	/* The stacks are one run, so that a kernel buffer on them is one guest-physical block. */
	uint64_t stack = k_frames_run(K_STACK_PAGES);
	if (!stack)
		return -EAGAIN;
	uint64_t root = take(got, &n), pdpt = take(got, &n), pd = take(got, &n), pt = take(got, &n),
		 cpu = take(got, &n), ring = take(got, &n);
	if (n < 6) {
		for (unsigned k = 0; k < n; k++)
			k_frames_free(got[k], 1, 1);
		k_frames_free(stack, K_STACK_PAGES, 0);
		return -EAGAIN;
	}
	uint64_t table = SBX_PTE_P | SBX_PTE_W | SBX_PTE_U | SBX_PTE_A;
	k_memcpy(k_phys(root), master, PAGE);
	k_memcpy(k_phys(pdpt), k_phys(master[slot] & SBX_PTE_ADDR), PAGE);
	((uint64_t *)k_phys(root))[slot] = pdpt | (master[slot] & ~SBX_PTE_ADDR);
	((uint64_t *)k_phys(pdpt))[(SBX_WINDOW_VA >> 30) % 512] = pd | table;
	((uint64_t *)k_phys(pd))[0] = pt | table;
	uint64_t *e = k_phys(pt);
	e[SBX_CPU_OFF / PAGE] = cpu | page_bits(1);
	e[K_RING_OFF / PAGE] = ring | page_bits(0);
	uint64_t first = (SBX_SYSCALL_STACK_TOP - SBX_CPU_STACK_BYTES) / PAGE;
	for (unsigned k = 0; k < K_STACK_PAGES; k++)
		e[first + k] = (stack + k * PAGE) | page_bits(0);
	struct k_cpu *c = k_phys(cpu);
	c->index = i;
	c->ring = SBX_WINDOW_VA + K_RING_OFF;
	c->self = &k_threads[i];
	c->window_gpa = stack - first * PAGE;
	k_cpu_tramp(c);
	k_threads[i].root = root;
	k_threads[i].cpu = cpu;
	*ring_gpa = ring;
	return 0;
}

void k_thread_entry(void); /* entry.S: onto the window's stack, then k_thread_main */
void __attribute__((noreturn)) k_thread_main(void);

/* Where a vCPU waits for a thread to run, and whence it starts one: with every register of
 * the clone's child (set by the parent in this vCPU's K_CPU->resume). */
void k_thread_main(void)
{
	struct k_cpu *c = K_CPU;
	struct k_thread *t = c->self;
	while (!__atomic_load_n(&t->run, __ATOMIC_ACQUIRE)) {
		uint64_t a[4] = {(uint64_t)&t->run, 0, ~0ull, c->gone};
		k_call_own(SBX_CALL_PARK, a, 4);
		c->gone = 0;
	}
	if (t == k_main && k_exec_handed) {
		k_lock(); /* the caller's writes before it let go are seen */
		exec_final(k_exec_args);
	}
	K_CPU_TID = t->tid;
	__asm__ volatile("wrfsbase %0\n\twrgsbase %1" ::"r"(t->fs), "r"(t->gs));
	/* A new thread's extended state is the initial one (Linux copies the parent's). */
	static uint8_t k_xinit[4096] __attribute__((aligned(64))) = {[24] = 0x80, [25] = 0x1f};
	uint32_t lo = (uint32_t)BOOT->xfeatures, hi = (uint32_t)(BOOT->xfeatures >> 32);
	__asm__ volatile("xrstor64 %0" ::"m"(k_xinit), "a"(lo), "d"(hi));
	/* The clone's return address, taken before another thread may have patched its site;
	 * under the lock, as every return to the program is. */
	k_lock();
	c->resume.rip = k_patch_moved(c->resume.rip);
	k_patch_returning(c->resume.rip);
	k_unlock_all();
	k_resume_full();
}

struct k_futex_wait *k_self_waiter(void)
{
	return &K_CPU->self->fw;
}

static volatile struct k_sigthr *sig_of(struct k_thread *t)
{
	if (!t || t == k_main)
		return (volatile struct k_sigthr *)&(
			   (volatile struct sbx_sigstate *)SBX_SIGSTATE_ADDR)
		    ->blocked;
	return &t->sig;
}

/* The running thread with this tid, or NULL. */
static struct k_thread *find_tid(uint64_t tid)
{
	for (unsigned i = 0; i < k_threads_used; i++)
		if (k_threads[i].tid == tid && k_threads[i].run)
			return &k_threads[i];
	return 0;
}

int k_thread_live(uint32_t tid)
{
	return find_tid(tid) != 0;
}

uint64_t k_thread_blocked(uint32_t tid)
{
	struct k_thread *t = find_tid(tid);
	return t ? sig_of(t)->blocked : 0;
}

volatile struct k_sigthr *k_sig_self(void)
{
	return sig_of(K_CPU->self);
}

volatile uint32_t *k_kick_word(void)
{
	return &K_CPU->self->kick;
}

volatile uint32_t *k_intr_word(void)
{
	return &K_CPU->self->intr;
}

int k_signal_waiting(void)
{
	volatile struct k_sigthr *s = k_sig_self();
	if (__builtin_expect(BOOT->sig_incoming != 0, 0))
		k_signal_take_incoming();
	/* One that is ignored (kept while it was blocked) is dropped, as its delivery would:
	 * no wait ends for it. */
	for (uint64_t ready = k_signal_pending() & ~s->blocked; ready; ready &= ready - 1) {
		uint32_t sig = (uint32_t)__builtin_ctzll(ready) + 1;
		uint64_t h = SIGS->act[sig].handler;
		/* A stop ends no wait either: the process stops here, and the wait goes on
		 * once it is continued, as on Linux. */
		int stops = k_signal_stops(sig);
		if (stops || h == 1 || (h == 0 && k_signal_default_ignored(sig))) {
			s->pending &= ~(1ull << (sig - 1));
			k_shared_pending &= ~(1ull << (sig - 1));
			if (sig >= 32)
				K_CPU->self->rtq[sig - 32] = 0;
		}
		if (stops)
			k_job_stop(sig);
	}
	return (k_signal_pending() & ~s->blocked) != 0;
}

/* A signal that cuts a blocking call short: one whose handler lacks SA_RESTART, or one that
 * ends the process. Those with SA_RESTART run after the call completes instead (this kernel
 * restarts the wait itself). */
int k_signal_interrupts(void)
{
	if (!k_signal_waiting())
		return 0;
	volatile struct k_sigthr *s = k_sig_self();
	uint64_t ready = k_signal_pending() & ~s->blocked;
	while (ready) {
		uint32_t sig = (uint32_t)__builtin_ctzll(ready) + 1;
		ready &= ready - 1;
		uint64_t h = SIGS->act[sig].handler;
		if ((h > 1 && !(SIGS->act[sig].flags & K_SA_RESTART)) ||
		    (h == 0 && !k_signal_default_ignored(sig)))
			return 1;
	}
	return 0;
}

int k_thread_interrupted(void)
{
	struct k_thread *t = K_CPU->self;
	t->kick = 0;
	return __atomic_exchange_n(&t->intr, 0, __ATOMIC_SEQ_CST) != 0;
}

/* fork.c, in the child: the one thread left is the caller, with the child's pid as tid. */
void k_thread_forked(uint64_t clear_tid)
{
	struct k_thread *me = K_CPU->self;
	/* Linux's child has the calling thread only. The others' vCPUs are not in this VM: their
	 * slots are free again, and a new thread gets a new window (their pages stay taken).
	 * Slot 0 is never a clone's, so its root, the master's, may stay. */
	for (unsigned i = 0; i < k_threads_used; i++) {
		struct k_thread *t = &k_threads[i];
		if (t == me)
			continue;
		t->tid = 0;
		t->run = 0;
		t->robust = 0;
		t->waitset = 0;
		k_memset(t->rtq, 0, sizeof(t->rtq));
		k_memset(&t->fw, 0, sizeof(t->fw));
		if (i)
			t->root = 0;
	}
	k_futex_forget_all();
	k_nthreads = 1;
	BOOT->threads_started = 0;
	BOOT->threads_peak = 1;
	/* A second thread's mask and alternate stack become the page's, which the monitor reads
	 * (faults, execve) as the process's main thread's. */
	if (me != k_main) {
		/* Linux's child is named as the thread that forked it. */
		for (unsigned i = 0; me->comm[0] && i < sizeof(me->comm); i++)
			BOOT->comm[i] = me->comm[i];
		me->comm[0] = 0;
		volatile struct k_sigthr *page = sig_of(k_main);
		page->blocked = me->sig.blocked;
		page->ss_sp = me->sig.ss_sp;
		page->ss_flags = me->sig.ss_flags;
		page->ss_size = me->sig.ss_size;
		page->pending = 0;
		k_main = me;
	}
	me->tid = BOOT->pid;
	me->clear_tid = clear_tid;
	me->kick = 0;
	me->intr = 0;
	K_CPU_TID = BOOT->pid;
}

volatile char *k_thread_comm(int set)
{
	struct k_thread *me = K_CPU->self;
	return me == k_main || (!set && !me->comm[0]) ? BOOT->comm : me->comm;
}

uint64_t k_signal_pending(void)
{
	return k_sig_self()->pending | k_shared_pending;
}

int k_sigfd_on;
uint64_t k_sigfd_union, k_sigfd_told;

/* What a poll by this thread would see, as Linux's signalfd_poll looks at the poller's. */
void k_sigfd_sync(void)
{
	uint64_t p = k_signal_pending();
	if ((p & k_sigfd_union) == k_sigfd_told)
		return;
	k_sigfd_told = p & k_sigfd_union;
	uint64_t a[2] = {SBX_SIGFD_SYNC, p};
	k_call(SBX_CALL_SIGNALFD, a, 2);
}

void k_signal_pend_shared(uint32_t sig)
{
	k_shared_pending |= 1ull << (sig - 1);
}

/* Before an execve: the process's pending signals go on in the new image as the main
 * thread's (the page's, which the monitor carries over). */
void k_signal_shared_to_main(void)
{
	sig_of(k_main)->pending |= k_shared_pending;
	k_shared_pending = 0;
}

/* sig pending for t: its bit, and one more queued if it is a real-time signal (past 65535
 * queued, more are lost, where Linux would refuse them once RLIMIT_SIGPENDING is reached). */
static void pend(struct k_thread *t, uint32_t sig)
{
	sig_of(t)->pending |= 1ull << (sig - 1);
	if (sig >= 32 && t->rtq[sig - 32] < 0xffff)
		t->rtq[sig - 32]++;
}

void k_signal_pend(uint32_t sig)
{
	pend(K_CPU->self, sig);
}

/* One of sig taken for delivery: the bit goes with the last queued. */
void k_signal_unpend(uint32_t sig)
{
	struct k_thread *t = K_CPU->self;
	if (!(sig_of(t)->pending & (1ull << (sig - 1)))) {
		k_shared_pending &= ~(1ull << (sig - 1));
		return;
	}
	if (sig >= 32 && t->rtq[sig - 32] > 1) {
		t->rtq[sig - 32]--;
		return;
	}
	if (sig >= 32)
		t->rtq[sig - 32] = 0;
	sig_of(t)->pending &= ~(1ull << (sig - 1));
}

void k_signal_unpend_all(void)
{
	struct k_thread *t = K_CPU->self;
	sig_of(t)->pending = 0;
	k_shared_pending = 0;
	k_memset(t->rtq, 0, sizeof(t->rtq));
}

void k_signal_waitset(uint64_t set)
{
	K_CPU->self->waitset = set;
}

/* A signal is pending for t: out of a futex wait or a sleep, to its handler on the way out of
 * that syscall; a host wait (a read, a poll) the monitor cuts short. */
static void wake(struct k_thread *t, struct k_thread *me)
{
	__atomic_store_n(&t->intr, 1, __ATOMIC_SEQ_CST);
	k_futex_cancel(&t->fw);
	if (__atomic_exchange_n(&t->kick, 1, __ATOMIC_SEQ_CST) == 0) {
		uint64_t a[1] = {(uint64_t)&t->kick};
		k_call(SBX_CALL_UNPARK, a, 1);
	}
	/* A thread running its own code (no syscall to take it): the monitor stops its vCPU
	 * there and the kernel delivers it (k_fault_upcall, signo 0). */
	if (t != me) {
		/* The main thread of a child forked by a second thread runs on vCPU 0. */
		uint64_t k[1] = {t == k_main ? 0 : (uint64_t)(t - k_threads)};
		k_call(SBX_CALL_KICK, k, 1);
	}
}

int k_signal_thread(uint32_t tid, uint32_t sig)
{
	uint64_t bit = sig ? 1ull << (sig - 1) : 0;
	struct k_thread *me = K_CPU->self, *t = tid ? find_tid(tid) : 0;
	/* No tid: the process's signal, to a thread other than the caller that takes it: one
	 * waiting for it in sigwait first, as Linux's shared pending set gives it to one, then
	 * one that does not block it. */
	for (int pass = 0; pass < 2 && !tid && !t; pass++)
		for (unsigned i = 0; i < k_threads_used && !t; i++) {
			struct k_thread *c = &k_threads[i];
			/* Not one an execve is ending: the signal goes on with the caller. */
			if (c->tid && c->run && c != me &&
			    (pass ? !(sig_of(c)->blocked & bit) : (c->waitset & bit) != 0) &&
			    !(k_exec_owner && c != k_exec_owner))
				t = c;
		}
	if (!t || !sig)
		return t != 0;
	pend(t, sig);
	if ((sig_of(t)->blocked & bit) && !(t->waitset & bit))
		return 1; /* it runs when the thread unblocks it */
	wake(t, me);
	return 1;
}

void k_signal_exit(struct k_frame *f, long ret)
{
	volatile struct k_sigthr *s = k_sig_self();
	if (__builtin_expect(BOOT->sig_incoming != 0, 0))
		k_signal_take_incoming();
	if (__builtin_expect(k_sigfd_on, 0))
		k_sigfd_sync();
	if (__builtin_expect(!((s->pending | k_shared_pending) & ~s->blocked), 1))
		return;
	K_CPU->self->intr = 0;
	struct k_resume r;
	k_frame_regs(f, ret, &r);
	k_deliver_pending(&r);
}

/* execve in a process with other threads. Linux ends them at the point of no return (each
 * dies at its next way out of the kernel, as for SIGKILL, robust futexes and clear_tid
 * included) and the caller goes on as the main thread, the pid its tid. Here the new image
 * runs on vCPU 0, the main thread's: a caller on another vCPU hands the call over once the
 * main thread has ended and its vCPU waits in k_thread_main. */
int k_exec_ends_me(void)
{
	return k_exec_owner && K_CPU->self != k_exec_owner;
}

int k_thread_is_main(void)
{
	return K_CPU->self == k_main;
}

/* Each other thread gets SIGKILL's bit, which no mask blocks: every wait it may be in ends,
 * and its way out (deliver_first) sees that it is to end. Again while they take long, since a
 * kick that lands just before a host wait begins may be lost. */
static void end_others(struct k_thread *me)
{
	for (unsigned i = 0; i < k_threads_used; i++) {
		struct k_thread *t = &k_threads[i];
		if (t == me || !t->tid || !t->run)
			continue;
		sig_of(t)->pending |= 1ull << (SIGKILL - 1);
		wake(t, me);
	}
}

static void __attribute__((noreturn)) exec_final(uint64_t *a)
{
	a[4] |= SBX_EXECVE_FINAL;
	k_signal_shared_to_main();
	/* The page's signals go on into the new image: not the bit that ended the others. */
	sig_of(k_main)->pending &= ~(1ull << (SIGKILL - 1));
	k_call_own(SBX_CALL_EXECVE, a, 6);
	/* The monitor ends the process at a failure now; a refusal before that ends it too. */
	k_exit(SBX_EXIT_SIGNALED | SIGKILL);
}

long k_exec_threaded(uint64_t *a)
{
	struct k_thread *me = K_CPU->self;
	if (k_exec_owner)
		return -EINTR; /* another thread's execve ends this one on its way out */
	/* First whatever may fail for the file's sake: an execvp trying each PATH entry keeps
	 * its threads. The lock is let go meanwhile. */
	a[4] |= SBX_EXECVE_CHECK;
	long r = k_call_own(SBX_CALL_EXECVE, a, 6);
	a[4] &= ~(uint64_t)SBX_EXECVE_CHECK;
	if (r < 0 || k_exec_owner)
		return r < 0 ? r : -EINTR;
	k_exec_owner = me;
	/* Threads being started now are in k_threads already: they end too. The wakes again
	 * every 50 ms only: each KICK of a thread waiting on the host signals its host thread
	 * for up to 2 ms, and a storm of them stalled a nested VM. */
	for (int64_t last = 0; k_nthreads > 1;) {
		int64_t now = k_now_ns(0);
		if (!last || now - last >= 50 * 1000 * 1000) {
			end_others(me);
			last = now ? now : 1;
		}
		/* Another process's signals wait here for the new image; taken, they no longer
		 * end the park at once (PARK returns while any is incoming). */
		k_signal_take_incoming();
		uint64_t p[4] = {(uint64_t)&k_nthreads, k_nthreads, 10 * 1000 * 1000, 0};
		k_call_own(SBX_CALL_PARK, p, 4); /* k_thread_exit wakes it */
	}
	if (me == k_main)
		exec_final(a);
	for (unsigned i = 0; i < 6; i++)
		k_exec_args[i] = a[i];
	/* The new image keeps the caller's mask and pending signals, which the monitor reads
	 * from the page, the main thread's. */
	sig_of(k_main)->blocked = sig_of(me)->blocked;
	sig_of(k_main)->pending = sig_of(me)->pending;
	k_memcpy(k_main->rtq, me->rtq, sizeof(me->rtq));
	k_exec_handed = 1;
	/* Nothing of this thread goes on: its futex words are the old image's. */
	me->robust = 0;
	me->clear_tid = 0;
	__atomic_store_n(&k_main->run, 1, __ATOMIC_RELEASE);
	uint64_t w[1] = {(uint64_t)&k_main->run};
	k_call(SBX_CALL_UNPARK, w, 1);
	k_thread_exit();
}

long k_sys_gettid(struct k_frame *f)
{
	(void)f;
	return K_CPU->self->tid;
}

long k_sys_set_tid_address(struct k_frame *f)
{
	K_CPU->self->clear_tid = f->rdi;
	return K_CPU->self->tid;
}

static long do_clone(struct k_frame *f, uint64_t flags, uint64_t sp, uint64_t ptid, uint64_t ctid,
		     uint64_t tls)
{
	/* Linux's own checks of the combination come first, whatever the call would make. */
	if ((flags & (CLONE_NEWNS | CLONE_FS)) == (CLONE_NEWNS | CLONE_FS) ||
	    (flags & (CLONE_NEWUSER | CLONE_FS)) == (CLONE_NEWUSER | CLONE_FS))
		return -EINVAL;
	if ((flags & CLONE_THREAD) && !(flags & CLONE_SIGHAND))
		return -EINVAL;
	if ((flags & CLONE_SIGHAND) && !(flags & CLONE_VM))
		return -EINVAL;
	if ((flags & CLONE_THREAD) && (flags & (CLONE_NEWUSER | CLONE_NEWPID)))
		return -EINVAL;
	if ((flags & CLONE_SIGHAND) && (flags & CLONE_CLEAR_SIGHAND))
		return -EINVAL;
	if (!(flags & CLONE_THREAD))
		return k_proc_clone(f, flags, sp, ptid, ctid, tls); /* fork.c */
	/* A thread with its own working directory or descriptor table is not one we can run. */
	if ((flags & K_CLONE_NEED) != K_CLONE_NEED || (flags & ~(K_CLONE_OK | 0xffull)))
		return -EINVAL;
	if (k_exec_owner)
		return -EAGAIN; /* the caller ends on its way out, and would leave this one */
	uint32_t max = BOOT->max_threads;
	if (max > K_MAX_THREADS)
		max = K_MAX_THREADS;
	if (k_nthreads >= max)
		return -EAGAIN;
	unsigned i = 1;
	while (i < max && k_threads[i].tid)
		i++;
	if (i >= max)
		return -EAGAIN;
	struct k_thread *t = &k_threads[i];
	if (i >= k_threads_used)
		k_threads_used = i + 1;
	int fresh = !t->root;
	uint64_t ring_gpa = 0;
	if (fresh && build_window(i, &ring_gpa) < 0)
		return -EAGAIN;
	/* Its id is the monitor's, from the pid space of the whole sandbox, held for it ahead so
	 * that the ids are written before it runs, as Linux does. */
	uint32_t tid = __atomic_load_n(&BOOT->tid_next, __ATOMIC_ACQUIRE);
	if (!tid) {
		long r = k_call(SBX_CALL_TID, 0, 0);
		if (r <= 0 || r > FUTEX_TID_MASK)
			return -EAGAIN;
		tid = (uint32_t)r;
	}
	if ((flags & CLONE_PARENT_SETTID) && k_copy_to_user(ptid, &tid, 4) < 0)
		return -EFAULT;
	if ((flags & CLONE_CHILD_SETTID) && k_copy_to_user(ctid, &tid, 4) < 0)
		return -EFAULT;
	t->clear_tid = (flags & CLONE_CHILD_CLEARTID) ? ctid : 0;
	uint64_t fs, gs;
	__asm__ volatile("rdfsbase %0\n\trdgsbase %1" : "=r"(fs), "=r"(gs));
	t->fs = (flags & CLONE_SETTLS) ? tls : fs;
	t->gs = gs;
	/* The parent's mask; no alternate stack (Linux drops it for a CLONE_VM child). */
	k_memset(&t->sig, 0, sizeof(t->sig));
	t->sig.blocked = TSIG->blocked;
	k_memset(t->rtq, 0, sizeof(t->rtq)); /* a slot's last thread may have left some */
	t->waitset = 0;
	t->comm[0] = 0;
	t->aff = K_CPU->self->aff; /* Linux's child has its creator's affinity */
	t->intr = 0;
	t->kick = 0;
	/* The child's registers: the parent's at this syscall, 0 in %rax, its own stack. */
	struct k_resume r;
	k_frame_regs(f, 0, &r);
	if (sp)
		r.rsp = sp;
	struct k_cpu *c = k_phys(t->cpu);
	c->resume = r;
	t->tid = tid;
	k_nthreads++;
	BOOT->threads_started++;
	if (k_nthreads > BOOT->threads_peak)
		BOOT->threads_peak = k_nthreads;
	long e;
	if (fresh) {
		/* No vCPU can run it before the call: set first. */
		__atomic_store_n(&t->run, 1, __ATOMIC_RELEASE);
		uint64_t a[6] = {
		    i, t->root, (uint64_t)k_thread_entry, SBX_WINDOW_SYSCALL_TOP, ring_gpa, tid};
		e = k_call(SBX_CALL_THREAD_START, a, 6);
	} else {
		/* The monitor sets run once the thread is sure to start. */
		uint64_t a[3] = {(uint64_t)&t->run, i, tid};
		e = k_call(SBX_CALL_THREAD_RUN, a, 3);
	}
	if (e < 0) {
		/* The monitor would not start it (--max-threads, or no host thread). */
		t->tid = 0;
		t->run = 0;
		k_nthreads--;
		if (fresh)
			t->root = 0; /* its pages stay taken: a window is kept for reuse */
		return e == -ENOMEM ? -EAGAIN : e;
	}
	return tid;
}

long k_sys_clone(struct k_frame *f)
{
	/* x86-64 order: flags, stack, parent_tid, child_tid, tls. */
	return do_clone(f, f->rdi, f->rsi, f->rdx, f->r10, f->r8);
}

struct k_clone_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
	uint64_t set_tid, set_tid_size, cgroup;
};

long k_sys_clone3(struct k_frame *f)
{
	struct k_clone_args a;
	uint64_t size = f->rsi;
	if (size < 64 || size > 4096)
		return -EINVAL;
	k_memset(&a, 0, sizeof(a));
	if (k_copy_from_user(&a, f->rdi, size < sizeof(a) ? size : sizeof(a)) < 0)
		return -EFAULT;
	/* pidfd and cgroup mean something only with their flags (refused below); glibc leaves
	 * pidfd uninitialised. As Linux: no unknown flags, no CLONE_DETACHED or signal bits in
	 * the flags, and no exit signal for a thread. */
	if (a.set_tid || a.set_tid_size || (a.exit_signal & ~0xffull))
		return -EINVAL;
	if ((a.flags >> 32) & ~((CLONE_CLEAR_SIGHAND | CLONE_INTO_CGROUP) >> 32))
		return -EINVAL;
	if (a.flags & (CLONE_DETACHED | 0xffull))
		return -EINVAL;
	if ((a.flags & CLONE_THREAD) && a.exit_signal)
		return -EINVAL;
	if ((a.stack == 0) != (a.stack_size == 0))
		return -EINVAL;
	return do_clone(f, a.flags | a.exit_signal, a.stack ? a.stack + a.stack_size : 0,
			a.parent_tid, a.child_tid, a.tls);
}

/* set_robust_list(2): where the C library keeps the robust mutexes this thread holds. */
long k_sys_set_robust_list(struct k_frame *f)
{
	if (f->rsi != 24) /* sizeof(struct robust_list_head) */
		return -EINVAL;
	K_CPU->self->robust = f->rdi;
	return 0;
}

long k_sys_get_robust_list(struct k_frame *f)
{
	struct k_thread *t = f->rdi ? find_tid(f->rdi) : K_CPU->self;
	if (!t)
		return -ESRCH;
	uint64_t len = 24;
	if (k_copy_to_user(f->rsi, &t->robust, 8) < 0 || k_copy_to_user(f->rdx, &len, 8) < 0)
		return -EFAULT;
	return 0;
}

/* Linux's walk of the list at a thread's end: bounded, every pointer checked, the entry an
 * operation was pending on last. */
static void robust_exit(struct k_thread *t)
{
	uint64_t head = t->robust, h[3], next;
	if (!head || k_copy_from_user(h, head, sizeof(h)) < 0)
		return;
	int64_t off = (int64_t)h[1];
	uint64_t entry = h[0] & ~1ull, pending = h[2] & ~1ull;
	for (unsigned limit = 2048; entry != head && limit; limit--) {
		if (k_copy_from_user(&next, entry, 8) < 0)
			break;
		if (entry != pending)
			k_futex_death(entry + (uint64_t)off, t->tid, (int)(h[0] & 1));
		h[0] = next;
		entry = next & ~1ull;
	}
	if (pending)
		k_futex_death(pending + (uint64_t)off, t->tid, (int)(h[2] & 1));
}

void k_thread_exit(void)
{
	struct k_thread *t = K_CPU->self;
	robust_exit(t);
	t->robust = 0;
	k_futex_pi_exit(t->tid);
	if (t->clear_tid && k_user_ok(t->clear_tid, 4, K_WRITE)) {
		__atomic_store_n((uint32_t *)t->clear_tid, 0, __ATOMIC_SEQ_CST);
		k_futex_wake(t->clear_tid, 1, ~0u);
	}
	t->clear_tid = 0;
	t->run = 0;
	k_nthreads--;
	if (k_exec_owner) {
		uint64_t w[1] = {(uint64_t)&k_nthreads};
		k_call(SBX_CALL_UNPARK, w, 1);
	}
	/* The main thread keeps its slot: its tid is the pid, which stays. */
	if (t != k_main) {
		K_CPU->gone = t->tid;
		t->tid = 0;
	}
	k_pt_commit();
	K_CPU_TID = 0;
	k_unlock_all();
	k_thread_entry();
	__builtin_unreachable();
}

/* The thread whose affinity pid names: the caller (0), a thread of this process by its tid
 * (the pid: the main one), NULL for another process of the sandbox (its own kernel keeps its
 * affinity; it is taken and reads back as all), or an error: Linux's ESRCH for a pid it does
 * not find, a negative one included. */
static struct k_thread *aff_thread(uint64_t pid, long *err)
{
	*err = (int32_t)pid < 0 ? -ESRCH : k_pid_ok(pid);
	if (*err < 0)
		return 0;
	if ((int32_t)pid == 0)
		return K_CPU->self;
	return *err == 0 ? find_tid((uint32_t)pid) : 0;
}

/* The vCPUs (--cpus, as CPUs 0..n-1) a thread may run on. */
static uint64_t all_cpus(void)
{
	uint32_t n = BOOT->ncpus ? BOOT->ncpus : 1;
	return n >= 64 ? ~0ull : (1ull << n) - 1;
}

void k_thread_affinity_to_exec(void)
{
	BOOT->affinity = K_CPU->self->aff;
}

/* Read back as set; the host schedules each vCPU thread as it likes (sched.c). */
long k_sys_sched_getaffinity(struct k_frame *f)
{
	if (f->rsi < 8 || (f->rsi & 7))
		return -EINVAL;
	long r;
	struct k_thread *t = aff_thread(f->rdi, &r);
	if (r < 0)
		return r;
	uint64_t mask = t && t->aff ? t->aff : all_cpus();
	return k_copy_to_user(f->rdx, &mask, sizeof(mask)) < 0 ? -EFAULT : 8;
}

/* Taken when it names at least one of the vCPUs, as Linux takes a mask with one allowed CPU
 * in it; kept as the thread's, without the CPUs it does not have. */
long k_sys_sched_setaffinity(struct k_frame *f)
{
	/* Linux's order: the mask is read before the pid is looked for. */
	uint64_t mask = 0, n8 = f->rsi < sizeof(mask) ? f->rsi : sizeof(mask);
	if (k_copy_from_user(&mask, f->rdx, n8) < 0)
		return -EFAULT;
	long r;
	struct k_thread *t = aff_thread(f->rdi, &r);
	if (r < 0)
		return r;
	mask &= all_cpus();
	if (!mask)
		return -EINVAL;
	if (t)
		t->aff = mask == all_cpus() ? 0 : mask;
	return 0;
}
