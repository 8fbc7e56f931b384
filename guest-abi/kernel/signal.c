/* Signal delivery, Linux-style: an rt_sigframe (siginfo_t, ucontext_t) on the user stack or
 * the alternate stack, the handler entered with every other register as it was, and
 * rt_sigreturn restoring them all. Two sources: a signal the program sends itself (from the
 * syscall path) and a CPU fault the monitor hands back (sbx_upcall_entry). */
#include "kernel.h"

#define UPCALL ((const volatile struct sbx_upcall *)SBX_UPCALL_ADDR)
#define SA_SIGINFO 4
#define SA_ONSTACK 0x08000000
#define SA_RESTART 0x10000000
#define SA_NODEFER 0x40000000
#define SA_RESETHAND 0x80000000ull
#define SS_ONSTACK 1
#define SS_DISABLE 2
#define SIGKILL 9
#define SIGSTOP 19
#define K_O_NONBLOCK 04000
#define K_O_CLOEXEC 02000000

struct k_sigcontext {
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip;
	uint64_t eflags;
	uint16_t cs, gs, fs, ss;
	uint64_t err, trapno, oldmask, cr2, fpstate, reserved1[8];
};
_Static_assert(sizeof(struct k_sigcontext) == 256, "sigcontext");

struct k_ucontext {
	uint64_t uc_flags, uc_link;
	uint64_t ss_sp;
	int32_t ss_flags;
	uint32_t pad;
	uint64_t ss_size;
	struct k_sigcontext mc;
	uint64_t uc_sigmask;
};

struct k_siginfo {
	int32_t si_signo, si_errno, si_code, pad;
	uint64_t si_addr; /* or, for SI_TKILL: pid (low 32) and uid (high 32) */
	uint8_t rest[128 - 24];
};
_Static_assert(sizeof(struct k_siginfo) == 128, "siginfo");

struct k_rt_sigframe {
	uint64_t pretcode;
	struct k_ucontext uc;
	struct k_siginfo info;
};

static uint16_t cur_cs(void)
{
	uint16_t v;
	__asm__ volatile("mov %%cs, %0" : "=r"(v));
	return v;
}

static uint16_t cur_ss(void)
{
	uint16_t v;
	__asm__ volatile("mov %%ss, %0" : "=r"(v));
	return v;
}

/* The extended state goes by what the monitor enabled (BOOT->xfeatures) and sized, never by
 * XCR0 as `xgetbv` reads it: under PVM that can be the host's, AMX included. */
static void xsave(uint64_t area)
{
	uint64_t m = BOOT->xfeatures;
	__asm__ volatile("xsave64 (%0)" ::"r"(area), "a"((uint32_t)m), "d"((uint32_t)(m >> 32))
			 : "memory");
}

static void xrstor(uint64_t area)
{
	uint64_t m = BOOT->xfeatures;
	__asm__ volatile("xrstor64 (%0)" ::"r"(area), "a"((uint32_t)m), "d"((uint32_t)(m >> 32))
			 : "memory");
}

/* Linux's software-reserved words of the FXSAVE area (struct _fpx_sw_bytes): how a handler,
 * or a debugger, knows the frame has extended state and how large it is. */
#define FP_XSTATE_MAGIC1 0x46505853u
#define FP_XSTATE_MAGIC2 0x46505845u
#define UC_FP_XSTATE 1
struct k_fpx_sw_bytes {
	uint32_t magic1, extended_size;
	uint64_t xfeatures;
	uint32_t xstate_size, padding[7];
};
_Static_assert(sizeof(struct k_fpx_sw_bytes) == 48, "fpx_sw_bytes");

static void xsave_frame(uint64_t fp, uint32_t bytes)
{
	k_memset((void *)fp, 0, 576); /* legacy area + XSAVE header must start clean */
	xsave(fp);
	struct k_fpx_sw_bytes *sw = (struct k_fpx_sw_bytes *)(fp + 464);
	sw->magic1 = FP_XSTATE_MAGIC1;
	sw->extended_size = bytes + 4;
	sw->xfeatures = BOOT->xfeatures;
	sw->xstate_size = bytes;
	*(volatile uint32_t *)(fp + bytes) = FP_XSTATE_MAGIC2;
}

static int on_altstack(uint64_t sp)
{
	return TSIG->ss_size && sp > TSIG->ss_sp && sp - TSIG->ss_sp <= TSIG->ss_size;
}

int k_signal_has_handler(uint64_t sig)
{
	return sig >= 1 && sig <= 64 && SIGS->act[sig].handler > 1;
}

/* Who sent the signals taken from other processes (k_signal_take_incoming), kept until each
 * is delivered: its siginfo says so (a SIGCHLD's child and how it ended, a kill's sender). */
#define K_SIGCHLD 17
#define K_SI_FROM (-1000) /* k_deliver's code for such a signal: not one of Linux's */
#define K_SI_TIMER (-2)
static struct sbx_sigfrom k_sig_from[65];
static uint64_t k_sig_from_set;

void k_signal_note_from(uint32_t sig, struct sbx_sigfrom from)
{
	k_sig_from[sig] = from;
	k_sig_from_set |= 1ull << (sig - 1);
}

/* What the program's siginfo says of a signal (the frame's to a handler, sigtimedwait's). */
static void siginfo_of(struct k_siginfo *info, uint32_t sig, int32_t code, uint64_t addr)
{
	info->si_signo = (int32_t)sig;
	info->si_code = code;
	info->si_addr = code == -6 ? ((uint64_t)BOOT->uid << 32) | BOOT->pid : addr;
	if (code == K_SI_FROM) { /* si_pid, si_uid; SIGCHLD's si_status after them */
		struct sbx_sigfrom w = k_sig_from[sig];
		int32_t status = w.status;
		info->si_code = w.code;
		info->si_addr = ((uint64_t)BOOT->uid << 32) | w.pid;
		if (sig == K_SIGCHLD)
			k_memcpy(info->rest, &status, sizeof(status));
		if (w.code == K_SI_TIMER) { /* si_timerid, si_overrun 0, si_value */
			uint64_t value = w.pid;
			info->si_addr = (uint32_t)status;
			k_memcpy(info->rest, &value, sizeof(value));
		}
	}
}

/* The first pending signal of `set`, taken: its number, and how it came (K_SI_FROM, or
 * SI_TKILL). 0 if none. */
static uint32_t take_first(uint64_t set, int32_t *code)
{
	uint64_t ready = k_signal_pending() & set;
	if (!ready)
		return 0;
	uint32_t sig = (uint32_t)__builtin_ctzll(ready) + 1;
	uint64_t bit = 1ull << (sig - 1);
	*code = (k_sig_from_set & bit) ? K_SI_FROM : -6 /* SI_TKILL */;
	k_sig_from_set &= ~bit;
	k_signal_unpend(sig);
	return sig;
}

/* Back to the program with K_CPU->resume, letting the kernel lock go on the way. */
static void __attribute__((noreturn)) resume_user(void)
{
	k_patch_returning(K_CPU->resume.rip);
	k_unlock_all();
	k_resume_full();
}

void k_deliver(uint32_t sig, const struct k_resume *r, int32_t code, uint64_t addr, uint64_t err,
	       uint64_t trapno)
{
	struct sbx_sigaction a;
	k_memcpy(&a, (const void *)&SIGS->act[sig], sizeof(a));
	uint64_t sp = r->rsp;
	if ((a.flags & SA_ONSTACK) && TSIG->ss_size && !(TSIG->ss_flags & SS_DISABLE) &&
	    !on_altstack(sp))
		sp = TSIG->ss_sp + TSIG->ss_size;
	else
		sp -= 128; /* the red zone */
	/* The FPU/SSE/AVX state goes first (64-byte aligned, as XSAVE wants), then the frame:
	 * a handler that returns must find the interrupted code's vector registers intact. */
	uint32_t xbytes = BOOT->xsave_bytes;
	uint64_t fpsz = (uint64_t)xbytes + 4;
	uint64_t fp = (sp - fpsz) & ~63ull;
	sp = ((fp - sizeof(struct k_rt_sigframe)) & ~15ull) - 8;
	/* The frame goes only where the program may write (never the stack's guard page, the
	 * text, or the kernel); otherwise Linux kills with SIGSEGV, and so does the monitor. */
	if (!k_user_ok(sp, fp + fpsz - sp, K_WRITE) || sp > fp)
		k_exit(SBX_EXIT_NODELIVER | sig);
	xsave_frame(fp, xbytes);
	struct k_rt_sigframe *fr = (struct k_rt_sigframe *)sp;
	k_memset(fr, 0, sizeof(*fr));
	fr->pretcode = a.restorer;
	fr->uc.uc_flags = UC_FP_XSTATE;
	fr->uc.ss_sp = TSIG->ss_sp;
	fr->uc.ss_size = TSIG->ss_size;
	fr->uc.ss_flags = !TSIG->ss_size ? SS_DISABLE : on_altstack(r->rsp) ? SS_ONSTACK : 0;
	struct k_sigcontext *m = &fr->uc.mc;
	m->r8 = r->r8, m->r9 = r->r9, m->r10 = r->r10, m->r11 = r->r11, m->r12 = r->r12;
	m->r13 = r->r13, m->r14 = r->r14, m->r15 = r->r15, m->rdi = r->rdi, m->rsi = r->rsi;
	m->rbp = r->rbp, m->rbx = r->rbx, m->rdx = r->rdx, m->rax = r->rax, m->rcx = r->rcx;
	m->rsp = r->rsp, m->rip = r->rip, m->eflags = r->rflags;
	m->cs = (uint16_t)r->cs;
	m->ss = (uint16_t)r->ss;
	m->err = err;
	m->trapno = trapno;
	/* The handler runs under the current mask and its own additions; its return puts back
	 * the current one, or the one the thread had before a sigsuspend or a masked wait. */
	uint64_t back = K_CPU->sig_restore_on ? K_CPU->sig_restore : TSIG->blocked;
	K_CPU->sig_restore_on = 0;
	m->oldmask = back;
	m->cr2 = addr;
	m->fpstate = fp;
	fr->uc.uc_sigmask = back;
	siginfo_of(&fr->info, sig, code, addr);

	uint64_t add = a.mask | ((a.flags & SA_NODEFER) ? 0 : 1ull << (sig - 1));
	TSIG->blocked =
	    (TSIG->blocked | add) & ~((1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1)));
	if (a.flags & SA_RESETHAND)
		SIGS->act[sig].handler = 0;

	struct k_resume *kr = &K_CPU->resume;
	*kr = *r;
	kr->rip = a.handler;
	kr->rsp = sp;
	kr->rdi = sig;
	kr->rsi = (uint64_t)&fr->info;
	kr->rdx = (uint64_t)&fr->uc;
	kr->rax = 0;
	kr->rflags = (r->rflags & ~0x40500ull) | 0x202; /* clear TF, DF, AC */
	kr->cs = cur_cs();
	kr->ss = cur_ss();
	resume_user();
}

void k_fault_upcall(void);
void k_fault_upcall(void)
{
	struct sbx_upcall u;
	k_lock();
	/* vCPU 0's where it always was (a snapshot's kernel looks there); another's in its own
	 * per-CPU page. */
	k_memcpy(&u,
		 K_CPU->index ? (const void *)(SBX_CPU_VA + SBX_CPU_UPCALL_OFF)
			      : (const void *)UPCALL,
		 sizeof(u));
	struct k_resume r;
	/* DWARF order: rax rdx rcx rbx rsi rdi rbp rsp r8..r15 rip */
	r.rax = u.r[0], r.rdx = u.r[1], r.rcx = u.r[2], r.rbx = u.r[3], r.rsi = u.r[4];
	r.rdi = u.r[5], r.rbp = u.r[6], r.rsp = u.r[7], r.r8 = u.r[8], r.r9 = u.r[9];
	r.r10 = u.r[10], r.r11 = u.r[11], r.r12 = u.r[12], r.r13 = u.r[13], r.r14 = u.r[14];
	r.r15 = u.r[15], r.rip = k_patch_moved(u.r[16]), r.rflags = u.rflags;
	r.cs = cur_cs();
	r.ss = cur_ss();
	/* Signo 0: a KICK stopped the thread in its own code for a signal another thread sent
	 * it (Go preempts goroutines so): delivered here, or, if it went meanwhile (a syscall
	 * took it), straight back. */
	if (u.signo == 0) {
		if (BOOT->sig_incoming)
			k_signal_take_incoming();
		k_deliver_pending(&r);
		K_CPU->resume = r;
		resume_user();
	}
	/* The monitor checked the main thread's mask; a thread's own is here. Blocked, the
	 * fault's signal kills, as on Linux. */
	if (u.signo < 1 || u.signo > 64 || !k_signal_has_handler(u.signo) ||
	    (TSIG->blocked & (1ull << (u.signo - 1))))
		k_exit(SBX_EXIT_NODELIVER | (u.signo & 0xff));
	/* The CPU says "not present" for a PROT_NONE page too, where Linux says SEGV_ACCERR:
	 * only the table of mappings knows which. */
	if (u.signo == 11 && u.code == 1 /* SEGV_MAPERR */ && k_vma_find(u.addr))
		u.code = 2; /* SEGV_ACCERR */
	k_deliver(u.signo, &r, u.code, u.addr, u.err, u.trapno);
}

/* The registers of the syscall in progress, as the program will see them after it. */
void k_frame_regs(const struct k_frame *f, long ret, struct k_resume *r)
{
	r->r15 = f->r15, r->r14 = f->r14, r->r13 = f->r13, r->r12 = f->r12, r->rbp = f->rbp;
	r->rbx = f->rbx, r->rax = (uint64_t)ret, r->r9 = f->r9, r->r8 = f->r8, r->r10 = f->r10;
	r->rdx = f->rdx, r->rsi = f->rsi, r->rdi = f->rdi, r->rcx = f->rcx, r->r11 = f->rflags;
	r->rip = k_patch_moved(f->rcx), r->rflags = f->rflags, r->rsp = f->user_rsp;
	r->cs = cur_cs();
	r->ss = cur_ss();
}

int k_signal_default_ignored(uint32_t sig)
{
	/* CHLD CONT URG WINCH */
	return sig == 17 || sig == 18 || sig == 23 || sig == 28;
}

int k_signal_stops(uint32_t sig)
{
	/* STOP, and TSTP TTIN TTOU unless handled or ignored. */
	return sig == SIGSTOP || (sig >= 20 && sig <= 22 && SIGS->act[sig].handler == 0);
}

void k_job_stop(uint32_t sig)
{
	/* Without the monitor's process tree (nothing could continue it), it goes on at once. */
	uint64_t a[2] = {SBX_PGRP_STOP, sig};
	k_call_own(SBX_CALL_PGRP, a, 2);
}

/* The first pending signal the mask lets through: its handler entered (not returning), the
 * process ended for a fatal default, or nothing for an ignored one. saved: the mask the
 * handler's return puts back, when it is not the current one (sigsuspend's). */
static void deliver_first(const struct k_resume *r, const uint64_t *saved)
{
	/* Ignored ones (kept while they were blocked) are dropped on the way to the first that
	 * has a handler or ends the process. */
	for (;;) {
		uint64_t ready = k_signal_pending() & ~TSIG->blocked;
		if (!ready)
			return;
		/* Another thread's execve: this thread's SIGKILL ends it alone. */
		if (__builtin_expect(k_exec_ends_me(), 0))
			k_thread_exit();
		int32_t code = 0;
		uint32_t sig = take_first(ready, &code);
		uint64_t h = SIGS->act[sig].handler;
		if (k_signal_stops(sig)) {
			k_job_stop(sig);
			continue;
		}
		if (h == 0 && !k_signal_default_ignored(sig))
			k_exit(SBX_EXIT_SIGNALED | sig);
		if (h > 1) {
			/* Under the wait's mask, as Linux's signal_delivered; the frame keeps the
			 * thread's own for the handler's return. */
			if (saved) {
				K_CPU->sig_restore = *saved;
				K_CPU->sig_restore_on = 1;
			}
			k_deliver(sig, r, code, 0, 0, 0);
		}
	}
}

void k_deliver_pending(const struct k_resume *r)
{
	deliver_first(r, 0);
}

long k_wait_masked(struct k_frame *f, uint64_t set, uint64_t size, int64_t ms,
		   long (*wait)(struct k_frame *f, int64_t ms))
{
	uint64_t mask, keep = (1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1));
	if (!set)
		return wait(f, ms);
	if (size != 8)
		return -EINVAL;
	if (k_copy_from_user(&mask, set, 8) < 0)
		return -EFAULT;
	uint64_t old = TSIG->blocked;
	TSIG->blocked = mask & ~keep;
	long r;
	/* The monitor's wait would not see a signal pending already: a look, no wait; then
	 * EINTR, unless another thread took the signal meanwhile (the kernel lock is let go). */
	if (!k_signal_waiting())
		r = wait(f, ms);
	else if ((r = wait(f, 0)) == 0)
		r = k_signal_waiting() ? -EINTR : wait(f, ms);
	if (r == -EINTR) {
		struct k_resume res;
		k_frame_regs(f, -EINTR, &res);
		deliver_first(&res, &old);
	}
	TSIG->blocked = old;
	return r;
}

/* sigsuspend(2), pause(2): the mask replaced until a handler has run, which returns EINTR. */
static long __attribute__((noreturn)) suspend(struct k_frame *f, uint64_t mask)
{
	uint64_t old = TSIG->blocked, keep = (1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1));
	for (;;) {
		TSIG->blocked = mask & ~keep;
		while (!k_signal_waiting())
			k_sleep_a_while();
		struct k_resume r;
		k_frame_regs(f, -EINTR, &r);
		deliver_first(&r, &old);
	}
}

long k_sys_rt_sigsuspend(struct k_frame *f)
{
	uint64_t mask;
	if (f->rsi != 8)
		return -EINVAL;
	if (k_copy_from_user(&mask, f->rdi, 8) < 0)
		return -EFAULT;
	return suspend(f, mask);
}

/* rt_sigtimedwait(2) (sigwait, sigwaitinfo, sigtimedwait): a pending signal of the set is
 * taken without its handler; else the thread sleeps until one comes (k_signal_thread wakes it
 * even though it blocks them), the timeout (EAGAIN), or a signal outside the set that it does
 * not block (EINTR: its handler runs as this call returns). */
long k_sys_rt_sigtimedwait(struct k_frame *f)
{
	uint64_t set;
	int64_t ts[2]; /* struct timespec */
	if (f->r10 != 8)
		return -EINVAL;
	if (k_copy_from_user(&set, f->rdi, 8) < 0)
		return -EFAULT;
	set &= ~((1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1)));
	int64_t deadline = -1;
	if (f->rdx) {
		if (k_copy_from_user(ts, f->rdx, sizeof(ts)) < 0)
			return -EFAULT;
		if (ts[0] < 0 || ts[1] < 0 || ts[1] >= 1000000000)
			return -EINVAL;
		deadline = k_now_ns(0) + (ts[0] > 9000000000ll ? 9000000000ll * 1000000000ll
							       : ts[0] * 1000000000ll + ts[1]);
	}
	k_signal_waitset(set);
	long ret;
	int32_t code = 0;
	for (;;) {
		if (BOOT->sig_incoming)
			k_signal_take_incoming();
		uint32_t sig = take_first(set, &code);
		if (sig) {
			ret = sig;
			break;
		}
		if (k_signal_pending() & ~TSIG->blocked) {
			ret = -EINTR;
			break;
		}
		int64_t left = deadline < 0 ? 1000000000ll : deadline - k_now_ns(0);
		if (left <= 0) {
			ret = -EAGAIN;
			break;
		}
		uint64_t a[3] = {(uint64_t)k_kick_word(), 0, (uint64_t)left};
		k_call_own(SBX_CALL_PARK, a, 3);
		k_thread_interrupted();
	}
	k_signal_waitset(0);
	if (ret > 0 && f->rsi) {
		struct k_siginfo info;
		k_memset(&info, 0, sizeof(info));
		siginfo_of(&info, (uint32_t)ret, code, 0);
		if (k_copy_to_user(f->rsi, &info, sizeof(info)) < 0)
			return -EFAULT;
	}
	return ret;
}

/* signalfd4(2), signalfd(2): the mask goes to the monitor, which keeps it with the open file
 * description and an eventfd of the host that a poll sees readable while one of its signals
 * is pending (k_sigfd_sync says when). */
long k_sys_signalfd4(struct k_frame *f)
{
	uint64_t mask;
	if (f->rdx != 8 || (f->r10 & ~(uint64_t)(K_O_NONBLOCK | K_O_CLOEXEC)))
		return -EINVAL;
	if (k_copy_from_user(&mask, f->rsi, 8) < 0)
		return -EFAULT;
	mask &= ~((1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1)));
	if (BOOT->sig_incoming)
		k_signal_take_incoming();
	uint64_t a[5] = {SBX_SIGFD_MAKE, (uint64_t)(int64_t)(int32_t)f->rdi, mask, f->r10,
			 k_signal_pending()};
	long r = k_call(SBX_CALL_SIGNALFD, a, 5);
	if (r >= 0) {
		k_sigfd_on = 1;
		k_sigfd_union |= mask;
		k_sigfd_told = k_signal_pending() & k_sigfd_union;
	}
	return r;
}

long k_sys_signalfd(struct k_frame *f)
{
	f->r10 = 0;
	return k_sys_signalfd4(f);
}

/* struct signalfd_siginfo, 128 bytes, from what siginfo_of says. */
struct k_ssi {
	uint32_t signo;
	int32_t err, code;
	uint32_t pid, uid;
	int32_t fd;
	uint32_t tid, band, overrun, trapno;
	int32_t status, ival;
	uint64_t ptr, utime, stime, addr;
	uint8_t pad[128 - 80];
};
_Static_assert(sizeof(struct k_ssi) == 128, "signalfd_siginfo");

static void ssi_of(struct k_ssi *o, const struct k_siginfo *i)
{
	k_memset(o, 0, sizeof(*o));
	o->signo = (uint32_t)i->si_signo;
	o->code = i->si_code;
	if (i->si_code == -2) { /* SI_TIMER: the timer, its overrun, its value */
		o->tid = (uint32_t)i->si_addr;
		o->overrun = (uint32_t)(i->si_addr >> 32);
		k_memcpy(&o->ptr, i->rest, sizeof(o->ptr));
		o->ival = (int32_t)o->ptr;
	} else if (i->si_code <= 0 || i->si_signo == K_SIGCHLD) { /* a sender, or a child */
		o->pid = (uint32_t)i->si_addr;
		o->uid = (uint32_t)(i->si_addr >> 32);
		if (i->si_signo == K_SIGCHLD)
			k_memcpy(&o->status, i->rest, sizeof(o->status));
	}
}

/* A read of a signalfd: the pending signals of its mask, taken as sigtimedwait takes them, as
 * many as fit; with none, EAGAIN for O_NONBLOCK, else a wait as sigtimedwait's. */
long k_signalfd_read(int32_t fd, uint64_t buf, uint64_t len)
{
	uint64_t mask = 0;
	uint64_t a[3] = {SBX_SIGFD_ASK, (uint64_t)(int64_t)fd, k_kaddr((uint64_t)&mask)};
	long nonblock = k_call(SBX_CALL_SIGNALFD, a, 3);
	if (nonblock < 0)
		return nonblock;
	if (len < sizeof(struct k_ssi))
		return -EINVAL;
	mask &= ~((1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1)));
	uint64_t got = 0;
	long ret = 0;
	k_signal_waitset(mask);
	for (;;) {
		if (BOOT->sig_incoming)
			k_signal_take_incoming();
		int32_t code = 0;
		uint32_t sig = take_first(mask, &code);
		if (sig) {
			struct k_siginfo info;
			struct k_ssi o;
			k_memset(&info, 0, sizeof(info));
			siginfo_of(&info, sig, code, 0);
			ssi_of(&o, &info);
			if (k_copy_to_user(buf + got, &o, sizeof(o)) < 0) {
				ret = -EFAULT;
				break;
			}
			got += sizeof(o);
			if (len - got < sizeof(o))
				break;
			continue;
		}
		if (got)
			break;
		if (nonblock) {
			ret = -EAGAIN;
			break;
		}
		if (k_signal_pending() & ~TSIG->blocked) {
			ret = k_signal_interrupts() ? -EINTR : -K_ERESTARTSYS;
			break;
		}
		uint64_t p[3] = {(uint64_t)k_kick_word(), 0, 1000000000ull};
		k_call_own(SBX_CALL_PARK, p, 3);
		k_thread_interrupted();
	}
	k_signal_waitset(0);
	k_sigfd_sync();
	return got ? (long)got : ret;
}

long k_sys_pause(struct k_frame *f)
{
	return suspend(f, TSIG->blocked);
}

long k_sys_rt_sigreturn(struct k_frame *f)
{
	uint64_t ucp = f->user_rsp; /* the handler's `ret` popped pretcode */
	if (!k_user_ok(ucp, sizeof(struct k_ucontext), K_READ))
		k_exit(SBX_EXIT_SIGNALED | 11);
	const struct k_ucontext *uc = (const struct k_ucontext *)ucp;
	const struct k_sigcontext *m = &uc->mc;
	struct k_resume r;
	r.r8 = m->r8, r.r9 = m->r9, r.r10 = m->r10, r.r11 = m->r11, r.r12 = m->r12;
	r.r13 = m->r13, r.r14 = m->r14, r.r15 = m->r15, r.rdi = m->rdi, r.rsi = m->rsi;
	r.rbp = m->rbp, r.rbx = m->rbx, r.rdx = m->rdx, r.rax = m->rax, r.rcx = m->rcx;
	/* Saved before a site there was patched: it goes on in the site's record. */
	r.rsp = m->rsp, r.rip = k_patch_moved(m->rip);
	/* Only the flags a program may change; IF stays set. */
	r.rflags = (m->eflags & 0x40dd5ull) | 0x202;
	r.cs = cur_cs();
	r.ss = cur_ss();
	TSIG->blocked = uc->uc_sigmask & ~((1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1)));
	/* A bad fpstate faults here, in the kernel: the monitor then reports the crash. */
	if (m->fpstate && (m->fpstate & 63) == 0 &&
	    k_user_ok(m->fpstate, BOOT->xsave_bytes, K_READ))
		xrstor(m->fpstate);
	k_deliver_pending(&r);
	K_CPU->resume = r;
	resume_user();
}
