/* Guest side of the request rings, one per vCPU (K_CPU->ring), each with one request in flight
 * at a time: publish it, then either spin while a monitor thread polls (no exit) or ring the
 * doorbell (one exit) when the monitor asked for a wakeup or takes longer than spin_tsc. The
 * bounce buffers below are shared: they are used under the big kernel lock only. */
#include "clock.h"
#include "kernel.h"

static uint64_t k_waited_seen; /* BOOT->waited_ns when last taken into idle_ns */

void k_doorbell(void)
{
	RING->doorbells++;
	if (BOOT->flags & SBX_BOOT_CPL0)
		__asm__ volatile("outb %%al, %0" ::"i"(SBX_PORT_DOORBELL), "a"(0) : "memory");
	else
		*(volatile uint8_t *)SBX_DOORBELL_VA = 0;
}

/* CPU time leaves out what the guest spent waiting on the host. The monitor knows when it
 * waited for a request (a sleep, a poll, a read of a pipe) and adds that to waited_ns; the
 * guest can only see how long the whole request took, by its TSC. It takes the monitor's
 * figure capped at that duration into idle_ns, which the CPU-time clocks subtract: so they
 * stay correct across a restore (everything is in guest RAM, in nanoseconds), are still read
 * without an exit (vDSO too), and never go back although the two sides' clocks differ by a
 * few parts per million. */
void k_account_wait(uint64_t tsc_start, uint64_t steal_start)
{
	uint64_t w = BOOT->waited_ns, d = w - k_waited_seen, t = sbx_rdtsc();
	uint64_t cap = t > tsc_start
			   ? (uint64_t)(((unsigned __int128)(t - tsc_start) * BOOT->tsc_mult) >> 32)
			   : 0;
	uint64_t idle = d < cap ? d : cap;
	/* What of it the vCPU's host thread spent waiting for a CPU (its wake-up, on a loaded
	 * host) is steal time, which the clocks subtract too (1.23): not twice, or they would go
	 * back. vCPU 0's record, while it is the only thread (clock.h). */
	if (K_CPU->index == 0 && !BOOT->threads_started) {
		uint64_t st = BOOT->steal.steal - steal_start;
		idle = st < idle ? idle - st : 0;
	}
	BOOT->idle_ns += idle;
	k_waited_seen = w;
}

/* unlocked: the big kernel lock is released while the request is out (it may wait: a read of
 * a pipe), so that the other threads' syscalls go on. */
static long k_submit(volatile struct sbx_slot *s, int unlocked)
{
	uint32_t depth = unlocked ? k_unlock_all() : 0;
	volatile struct sbx_ring *r = RING;
	uint64_t seq = ++K_CPU->seq, tsc_start = sbx_rdtsc(), steal_start = BOOT->steal.steal;
	if (seq == 1)
		r->abi_version = SBX_ABI_VERSION;
	s->seq = seq;
	__atomic_store_n(&r->head, r->head + 1, __ATOMIC_RELEASE);
	/* Publishing head and reading NEED_WAKEUP must not be reordered (store->load). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&r->flags, __ATOMIC_ACQUIRE) & SBX_RING_NEED_WAKEUP) {
		k_doorbell();
	} else {
		uint64_t start = sbx_rdtsc(), limit = BOOT->spin_tsc, d;
		while ((d = __atomic_load_n(&s->done, __ATOMIC_ACQUIRE)) != seq) {
			/* The monitor blocks in the exit until the request is done: after spin_tsc,
			 * or at once when the poller leaves the request to the vCPU's thread. */
			if (d == (seq | SBX_DONE_RING) || sbx_rdtsc() - start > limit) {
				k_doorbell();
				break;
			}
			__asm__ volatile("pause");
		}
	}
	while (__atomic_load_n(&s->done, __ATOMIC_ACQUIRE) != seq)
		k_doorbell();
	long ret = s->ret;
	k_relock(depth);
	if (BOOT->waited_ns != k_waited_seen)
		k_account_wait(tsc_start, steal_start);
	return ret;
}

static volatile struct sbx_slot *k_slot(uint32_t nr)
{
	volatile struct sbx_slot *s = &RING->slots[RING->head % SBX_RING_SLOTS];
	s->nr = nr;
	s->pad = 0;
	return s;
}

static long call(uint32_t nr, const uint64_t *args, unsigned nargs, int unlocked)
{
	volatile struct sbx_slot *s = k_slot(nr);
	for (unsigned i = 0; i < 7; i++)
		s->u.a[i] = i < nargs ? args[i] : 0;
	return k_submit(s, unlocked);
}

long k_call(uint32_t nr, const uint64_t *args, unsigned nargs)
{
	return call(nr, args, nargs, 0);
}

long k_call_wait(uint32_t nr, const uint64_t *args, unsigned nargs)
{
	return call(nr, args, nargs, k_nthreads > 1);
}

long k_call_wait_ms(uint32_t nr, uint64_t *args, unsigned nargs, unsigned ms_arg)
{
	int64_t ms = (int64_t)args[ms_arg], end = ms > 0 ? k_now_ns(0) + ms * 1000000 : 0;
	for (;;) {
		long r = k_call_wait(nr, args, nargs);
		/* Nothing yet, but the monitor waits an hour at most in one request. */
		int more = r == 0 && ms > 0 && end - k_now_ns(0) > 0;
		if (!more && (r != -EINTR || k_signal_waiting()))
			return r;
		if (ms > 0) {
			int64_t left = end - k_now_ns(0);
			args[ms_arg] = left > 0 ? (uint64_t)((left + 999999) / 1000000) : 0;
		}
	}
}

static long call_own(uint32_t nr, const uint64_t *args, unsigned nargs, int keep)
{
	uint32_t depth = keep ? 0 : k_unlock_all();
	volatile struct sbx_ring *r = RING;
	volatile struct sbx_slot *s = k_slot(nr);
	s->pad = SBX_SLOT_OWN;
	for (unsigned i = 0; i < 7; i++)
		s->u.a[i] = i < nargs ? args[i] : 0;
	uint64_t seq = ++K_CPU->seq, tsc_start = sbx_rdtsc(), steal_start = BOOT->steal.steal;
	if (seq == 1)
		r->abi_version = SBX_ABI_VERSION;
	s->seq = seq;
	__atomic_store_n(&r->head, r->head + 1, __ATOMIC_RELEASE);
	/* No poller serves it: the doorbell at once, again if the exit ends early. */
	do
		k_doorbell();
	while (__atomic_load_n(&s->done, __ATOMIC_ACQUIRE) != seq);
	long ret = s->ret;
	k_relock(depth);
	if (depth && BOOT->waited_ns != k_waited_seen)
		k_account_wait(tsc_start, steal_start);
	return ret;
}

long k_call_own(uint32_t nr, const uint64_t *args, unsigned nargs)
{
	return call_own(nr, args, nargs, 0);
}

long k_call_own_locked(uint32_t nr, const uint64_t *args, unsigned nargs)
{
	return call_own(nr, args, nargs, 1);
}

static long submit_rw(uint32_t nr, int32_t fd, uint64_t buf, uint64_t len, int64_t off,
		      int unlocked)
{
	volatile struct sbx_slot *s = k_slot(nr);
	s->u.a[0] = 0;
	s->u.rw.fd = fd;
	s->u.rw.buf = buf;
	s->u.rw.len = len;
	s->u.rw.off = off;
	return k_submit(s, unlocked);
}

/* Requests carry guest-physical addresses (1.5). The kernel's own buffers are identity-mapped
 * below SBX_USER_ADDR, or on this vCPU's stack in its window (k_kaddr); a program's buffer is
 * translated through its page tables, and one that is not one run of RAM is split (a vector of
 * runs) or bounced. */
static int kernel_addr(uint64_t p)
{
	return p < SBX_USER_ADDR || p - SBX_WINDOW_VA < SBX_CPU_OFF;
}

uint64_t k_kaddr(uint64_t p)
{
	if (p - SBX_WINDOW_VA < SBX_CPU_OFF)
		return K_CPU->window_gpa + (p - SBX_WINDOW_VA);
	return p;
}

/* Shared, so used under the big kernel lock only; a request made without it has its own. */
static struct sbx_iovec k_xiov[SBX_IOV_MAX];
static uint8_t k_xbuf[65536];
static char k_xpath[2][SBX_PATH_MAX];

/* [base, base + len) as runs of RAM appended to xiov from *m: 0 when all of it went. */
static int add_runs(struct sbx_iovec *xiov, uint64_t base, uint64_t len, unsigned *m)
{
	while (len && *m < SBX_IOV_MAX) {
		uint64_t g = k_kaddr(base), n = len;
		if (!kernel_addr(base) && !(n = k_gpa_run(base, len, &g)))
			return -1;
		xiov[*m].base = g;
		xiov[(*m)++].len = n;
		base += n;
		len -= n;
	}
	return len ? -1 : 0;
}

/* READV/WRITEV: the kernel's checked copy of the vector, each element as its runs (cut where
 * the runs no longer fit: a shorter transfer, as Linux may do). */
static long rw_vector(struct sbx_iovec *xiov, uint32_t nr, int32_t fd, uint64_t iov, uint64_t cnt,
		      int64_t off, int unlocked)
{
	const struct sbx_iovec *v = (const struct sbx_iovec *)iov;
	unsigned m = 0;
	for (uint64_t i = 0; i < cnt; i++)
		if (add_runs(xiov, v[i].base, v[i].len, &m) < 0)
			break;
	if (!m && cnt)
		for (uint64_t i = 0; i < cnt; i++)
			if (v[i].len)
				return -EFAULT;
	return submit_rw(nr, fd, k_kaddr((uint64_t)xiov), m, off, unlocked);
}

/* A read or write that may wait (a pipe, a terminal): without the big kernel lock when other
 * threads exist, on a vector of runs of its own (on this vCPU's stack). */
static long rw_wait_once(uint32_t nr, int32_t fd, uint64_t buf, uint64_t len, int64_t off)
{
	if (k_nthreads == 1)
		return k_call_rw(nr, fd, buf, len, off);
	struct sbx_iovec xiov[SBX_IOV_MAX];
	if (nr == SBX_CALL_READV || nr == SBX_CALL_WRITEV)
		return rw_vector(xiov, nr, fd, buf, len, off, 1);
	uint64_t g = k_kaddr(buf);
	if (!len || kernel_addr(buf) || k_gpa_run(buf, len, &g) == len)
		return submit_rw(nr, fd, g, len, 0, 1);
	unsigned m = 0;
	add_runs(xiov, buf, len, &m);
	if (!m)
		return -EFAULT;
	return submit_rw(nr == SBX_CALL_READ ? SBX_CALL_READV : SBX_CALL_WRITEV, fd,
			 k_kaddr((uint64_t)xiov), m, 0, 1);
}

/* The monitor ends a wait early when the run stops for a while (a pause, another thread's
 * fault that goes to its handler): nothing moved then, and unless a signal for this thread
 * came, the call is made again, as Linux would not have noticed. */
long k_call_rw_wait(uint32_t nr, int32_t fd, uint64_t buf, uint64_t len)
{
	return k_call_rwf_wait(nr, fd, buf, len, 0);
}

long k_call_rwf_wait(uint32_t nr, int32_t fd, uint64_t buf, uint64_t len, int64_t off)
{
	long r;
	/* A signal to handle (another process's since this syscall began, or one taken into the
	 * pending set on the way here, as a restarted call's is): no wait begins, for nothing
	 * would cut it short; the handler runs, and the call is made again after it with
	 * SA_RESTART, as Linux's signal_pending() check has it. */
	if (k_signal_waiting())
		return k_signal_interrupts() ? -EINTR : -K_ERESTARTSYS;
	do
		r = rw_wait_once(nr, fd, buf, len, off);
	while (r == -EINTR && !k_signal_waiting());
	/* A signal with SA_RESTART: its handler runs now, and the call is made again after it
	 * (k_syscall), as on Linux; not once the transfer is over. */
	return r == -EINTR && !k_signal_interrupts() ? -K_ERESTARTSYS : r;
}

long k_call_rw(uint32_t nr, int32_t fd, uint64_t buf, uint64_t len, int64_t off)
{
	if (nr == SBX_CALL_READV || nr == SBX_CALL_WRITEV)
		return rw_vector(k_xiov, nr, fd, buf, len, off, 0);
	uint64_t g = k_kaddr(buf);
	if (!len || kernel_addr(buf) || k_gpa_run(buf, len, &g) == len)
		return submit_rw(nr, fd, g, len, off, 0);
	if (nr == SBX_CALL_READ || nr == SBX_CALL_WRITE) {
		unsigned m = 0;
		add_runs(k_xiov, buf, len, &m);
		if (!m)
			return -EFAULT;
		return submit_rw(nr == SBX_CALL_READ ? SBX_CALL_READV : SBX_CALL_WRITEV, fd,
				 (uint64_t)k_xiov, m, 0, 0);
	}
	if (nr == SBX_CALL_PREAD || nr == SBX_CALL_PWRITE) {
		/* A positioned transfer takes one buffer: one request per run, up to a short one.
		 */
		uint64_t done = 0;
		while (done < len) {
			uint64_t n = k_gpa_run(buf + done, len - done, &g);
			long r = n ? submit_rw(nr, fd, g, n, off + (int64_t)done, 0) : -EFAULT;
			if (r < 0)
				return done ? (long)done : r;
			done += (uint64_t)r;
			if ((uint64_t)r < n)
				break;
		}
		return (long)done;
	}
	/* GETDENTS, RANDOM: through a kernel buffer. */
	uint64_t n = len < sizeof(k_xbuf) ? len : sizeof(k_xbuf);
	long r = submit_rw(nr, fd, (uint64_t)k_xbuf, n, off, 0);
	if (r > 0)
		k_memcpy((void *)buf, k_xbuf, (uint64_t)r);
	return r;
}

/* A path the monitor reads: its guest-physical address, or a kernel copy of it. */
static uint64_t path_gpa(uint64_t p, uint64_t len, char *bounce)
{
	uint64_t g = k_kaddr(p);
	if (!len || kernel_addr(p) || k_gpa_run(p, len, &g) == len)
		return g;
	k_memcpy(bounce, (const void *)p, len < SBX_PATH_MAX ? len : SBX_PATH_MAX);
	return (uint64_t)bounce;
}

long k_call_path(uint32_t nr, const struct sbx_path *p)
{
	struct sbx_path x = *p;
	x.path = path_gpa(p->path, p->path_len, k_xpath[0]);
	x.path2 = path_gpa(p->path2, p->path2_len, k_xpath[1]);
	/* Results go to kernel buffers; anything else must be one run. */
	if (kernel_addr(x.buf))
		x.buf = k_kaddr(x.buf);
	else if (x.buf_len && k_gpa_run(p->buf, p->buf_len, &x.buf) != p->buf_len)
		return -EFAULT;
	volatile struct sbx_slot *s = k_slot(nr);
	const uint64_t *src = (const uint64_t *)&x;
	for (unsigned i = 0; i < 7; i++)
		s->u.a[i] = src[i];
	return k_submit(s, 0);
}

/* Publishes a request without waiting for it: only while a monitor thread is polling (else
 * the doorbell would make the vCPU wait for it after all). Returns 0 if it was sent. */
int k_call_async(uint32_t nr, const uint64_t *args, unsigned nargs)
{
	volatile struct sbx_ring *r = RING;
	if (__atomic_load_n(&r->flags, __ATOMIC_ACQUIRE) & SBX_RING_NEED_WAKEUP)
		return -1;
	if (r->head - __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE) >= SBX_RING_SLOTS / 2)
		return -1;
	volatile struct sbx_slot *s = k_slot(nr);
	for (unsigned i = 0; i < 7; i++)
		s->u.a[i] = i < nargs ? args[i] : 0;
	s->seq = ++K_CPU->seq;
	if (s->seq == 1)
		r->abi_version = SBX_ABI_VERSION;
	__atomic_store_n(&r->head, r->head + 1, __ATOMIC_RELEASE);
	return 0;
}

void k_exit(uint32_t status)
{
	/* Another thread's execve is ending this one: its exit_group, a fatal signal or a fault
	 * ends it alone, as on Linux once the execve has begun. */
	if (k_exec_ends_me())
		k_thread_exit();
	k_vfork_exit();
	uint64_t a = status;
	/* The monitor never resumes the vCPU after EXIT; ring the doorbell even while polled so
	 * the vCPU thread sees the end at once. */
	volatile struct sbx_slot *s = k_slot(SBX_CALL_EXIT);
	RING->abi_version = SBX_ABI_VERSION; /* exit may be the first request of all */
	s->u.a[0] = a;
	s->seq = ++K_CPU->seq;
	__atomic_store_n(&RING->head, RING->head + 1, __ATOMIC_RELEASE);
	for (;;)
		k_doorbell();
}
