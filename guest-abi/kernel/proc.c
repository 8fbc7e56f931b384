/* Process identity, limits and signal state: all answered in the guest. */
#include "kernel.h"

#define ARCH_SET_GS 0x1001
#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003
#define ARCH_GET_GS 0x1004
#define ARCH_GET_XCOMP_SUPP 0x1021
#define ARCH_GET_XCOMP_PERM 0x1022
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18
#define XFEATURE_MAX 19
#define RLIMIT_STACK 3
#define RLIMIT_NOFILE 7
#define RLIM_NLIMITS 16
#define RLIM_INFINITY (~0ull)
#define NSIG 64
#define SIG_DFL 0
#define SIG_IGN 1
#define SIGKILL 9
#define SIGSTOP 19
#define SIG_BLOCK 0
#define SIG_UNBLOCK 1
#define SIG_SETMASK 2

#define SS_ONSTACK 1
#define SS_DISABLE 2

static uint32_t k_umask_set, k_umask_val;
static uint64_t k_rlim[RLIM_NLIMITS][2];
static uint64_t k_rlim_set; /* bit per limit set by the program */

/* Calls whose answer is one value: the process's ids from the boot page (one process, one
 * user). set_tid_address: Linux only stores the pointer (written when the thread exits,
 * failures ignored): not checked here either. */
#define K_ANSWER(name, value)                                                                      \
	long k_sys_##name(struct k_frame *f)                                                       \
	{                                                                                          \
		(void)f;                                                                           \
		return (value);                                                                    \
	}
K_ANSWER(zero, 0)
K_ANSWER(getpid, BOOT->pid)
K_ANSWER(getppid, BOOT->ppid)
K_ANSWER(getuid, BOOT->uid)
K_ANSWER(getgid, BOOT->gid)

/* The set*id calls: the sandbox has one user and one group, so a call that keeps every id as
 * it is (or leaves it, -1) succeeds, as glibc's posix_spawn with POSIX_SPAWN_RESETIDS and
 * programs that drop privileges they do not have expect; any other id is EPERM, as for a
 * process without CAP_SETUID. rdi, rsi, rdx: up to three ids. */
static long k_keep_ids(struct k_frame *f, int n, uint32_t cur)
{
	uint64_t id[3] = {f->rdi, f->rsi, f->rdx};
	for (int i = 0; i < n; i++)
		if ((uint32_t)id[i] != (uint32_t)-1 && (uint32_t)id[i] != cur)
			return -EPERM;
	return 0;
}
long k_sys_setuid(struct k_frame *f)
{
	return (uint32_t)f->rdi == (uint32_t)-1 ? -EINVAL : k_keep_ids(f, 1, BOOT->uid);
}
long k_sys_setgid(struct k_frame *f)
{
	return (uint32_t)f->rdi == (uint32_t)-1 ? -EINVAL : k_keep_ids(f, 1, BOOT->gid);
}
long k_sys_setreuid(struct k_frame *f)
{
	return k_keep_ids(f, 2, BOOT->uid);
}
long k_sys_setregid(struct k_frame *f)
{
	return k_keep_ids(f, 2, BOOT->gid);
}
long k_sys_setresuid(struct k_frame *f)
{
	return k_keep_ids(f, 3, BOOT->uid);
}
long k_sys_setresgid(struct k_frame *f)
{
	return k_keep_ids(f, 3, BOOT->gid);
}
/* Capabilities: the program has none, as a process of an unprivileged user has none (the
 * set*id calls above answer as such a process's would). header: version, pid; data: v1 one
 * {effective, permitted, inheritable}, v2 and v3 two (capabilities 0-31, 32-63). A version
 * the kernel does not know gets v3 written back and EINVAL, but 0 when data is NULL: how
 * libcap asks which version to use. */
#define K_CAP_V1 0x19980330u
#define K_CAP_V3 0x20080522u
static long cap_header(struct k_frame *f, int *structs)
{
	uint32_t h[2];
	if (k_copy_from_user(h, f->rdi, sizeof(h)) < 0)
		return -EFAULT;
	*structs = h[0] == K_CAP_V1 ? 1 : 2;
	if (h[0] != K_CAP_V1 && h[0] != 0x20071026u && h[0] != K_CAP_V3) {
		uint32_t v = K_CAP_V3;
		if (k_copy_to_user(f->rdi, &v, sizeof(v)) < 0)
			return -EFAULT;
		return f->rsi ? -EINVAL : 0;
	}
	long r = k_pid_ok(h[1]);
	return r < 0 ? r : r + 1; /* 1: itself; 2: another process, which has none either */
}
long k_sys_capget(struct k_frame *f)
{
	int n;
	long r = cap_header(f, &n);
	if (r <= 0 || !f->rsi)
		return r;
	uint32_t none[6] = {0};
	return k_copy_to_user(f->rsi, none, (uint64_t)n * 12);
}
/* Setting the empty sets it has is allowed; any capability is EPERM. */
long k_sys_capset(struct k_frame *f)
{
	int n;
	long r = cap_header(f, &n);
	if (r == -ESRCH || r == 2)
		return -EPERM; /* Linux: only the caller's own */
	if (r <= 0)
		return r == 0 ? -EINVAL : r;
	uint32_t want[6];
	if (k_copy_from_user(want, f->rsi, (uint64_t)n * 12) < 0)
		return -EFAULT;
	for (int i = 0; i < n * 3; i++)
		if (want[i])
			return -EPERM;
	return 0;
}

/* setfsuid/setfsgid never fail: they answer the id before the call, which stays. */
K_ANSWER(setfsuid, BOOT->uid)
K_ANSWER(setfsgid, BOOT->gid)

static long k_put_ids(struct k_frame *f, uint32_t id)
{
	uint64_t p[3] = {f->rdi, f->rsi, f->rdx};
	for (int i = 0; i < 3; i++)
		if (k_copy_to_user(p[i], &id, sizeof(id)) < 0)
			return -EFAULT;
	return 0;
}
long k_sys_getresuid(struct k_frame *f)
{
	return k_put_ids(f, BOOT->uid);
}
long k_sys_getresgid(struct k_frame *f)
{
	return k_put_ids(f, BOOT->gid);
}

long k_sys_exit(struct k_frame *f)
{
	k_exec_exit((uint32_t)f->rdi & 0xff);
	k_exit((uint32_t)f->rdi & 0xff);
}

/* exit(2): the calling thread's end; the program's when it is the last. */
long k_sys_exit_thread(struct k_frame *f)
{
	if (k_nthreads > 1)
		k_thread_exit();
	return k_sys_exit(f);
}

uint32_t k_cur_umask(void)
{
	return k_umask_set ? k_umask_val : BOOT->umask;
}

long k_sys_umask(struct k_frame *f)
{
	uint32_t old = k_cur_umask();
	k_umask_val = (uint32_t)f->rdi & 0777;
	k_umask_set = 1;
	return old;
}

static void put_field(char *dst, const char *src)
{
	size_t i = 0;
	for (; src[i] && i < 64; i++)
		dst[i] = src[i];
	for (; i < 65; i++)
		dst[i] = 0;
}

long k_sys_uname(struct k_frame *f)
{
	char u[6 * 65];
	char host[65];
	const volatile char *h = BOOT->hostname;
	size_t i = 0;
	for (; i < 64 && h[i]; i++)
		host[i] = h[i];
	host[i] = 0;
	put_field(u, "Linux");
	put_field(u + 65, host[0] ? host : "sandbox");
	put_field(u + 130, "6.1.0-sandbox");
	put_field(u + 195, "#1 SMP sandbox micro-VM");
	put_field(u + 260, "x86_64");
	put_field(u + 325, "(none)");
	return k_copy_to_user(f->rdi, u, sizeof(u));
}

long k_sys_sysinfo(struct k_frame *f)
{
	uint64_t s[14];
	k_memset(s, 0, sizeof(s));
	s[0] = (uint64_t)((k_now_ns(0) - BOOT->start_ns) / 1000000000ll); /* uptime */
	s[4] = BOOT->mem_size;						  /* totalram */
	s[5] = BOOT->mem_size / 2;					  /* freeram (estimate) */
	((uint16_t *)s)[40] = 1;					  /* procs */
	((uint32_t *)s)[26] = 1;					  /* mem_unit */
	return k_copy_to_user(f->rdi, s, sizeof(s));
}

/* AT_MINSIGSTKSZ's formula (the monitor's sbx_xstate_sigstack_min): the frame, the XSAVE area
 * and its magic word, with their alignments. */
static uint64_t sigframe_min(uint32_t xsave_bytes)
{
	return (440 + 15 + (uint64_t)xsave_bytes + 4 + 63 + 15) & ~15ull;
}

/* ARCH_REQ_XCOMP_PERM, as Linux answers it; the monitor enables the state at the doorbell. */
static long xcomp_request(uint64_t idx)
{
	if (idx >= XFEATURE_MAX)
		return -EINVAL;
	if (idx != XFEATURE_XTILEDATA || !(BOOT->xfeatures_dynamic & SBX_XFEATURES_AMX))
		return -EOPNOTSUPP;
	if ((BOOT->xfeatures & SBX_XFEATURES_AMX) == SBX_XFEATURES_AMX)
		return 0;
	/* The frames the larger state needs must fit an alternate stack already set. */
	if (TSIG->ss_size && TSIG->ss_size < sigframe_min(BOOT->xsave_bytes_max))
		return -ENOSPC;
	BOOT->xfeatures_request = BOOT->xfeatures | SBX_XFEATURES_AMX;
	k_doorbell();
	return (BOOT->xfeatures & SBX_XFEATURES_AMX) == SBX_XFEATURES_AMX ? 0 : -EOPNOTSUPP;
}

static long put_u64(uint64_t uaddr, uint64_t v)
{
	return k_copy_to_user(uaddr, &v, sizeof(v));
}

long k_sys_arch_prctl(struct k_frame *f)
{
	uint64_t v;
	switch (f->rdi) {
	case ARCH_GET_XCOMP_SUPP:
		return put_u64(f->rsi, BOOT->xfeatures | BOOT->xfeatures_dynamic | 3);
	case ARCH_GET_XCOMP_PERM:
		return put_u64(f->rsi, BOOT->xfeatures | 3);
	case ARCH_REQ_XCOMP_PERM:
		return xcomp_request(f->rsi);
	case ARCH_SET_FS:
		__asm__ volatile("wrfsbase %0" ::"r"(f->rsi));
		return 0;
	case ARCH_SET_GS:
		__asm__ volatile("wrgsbase %0" ::"r"(f->rsi));
		return 0;
	case ARCH_GET_FS:
		__asm__ volatile("rdfsbase %0" : "=r"(v));
		return k_copy_to_user(f->rsi, &v, sizeof(v));
	case ARCH_GET_GS:
		__asm__ volatile("rdgsbase %0" : "=r"(v));
		return k_copy_to_user(f->rsi, &v, sizeof(v));
	}
	return -EINVAL;
}

long k_sys_rseq(struct k_frame *f)
{
	/* One vCPU and no preemption: a critical section is never interrupted, so registration
	 * only has to publish cpu 0. */
	uint64_t rs = f->rdi, len = f->rsi;
	if (f->rdx & 1) /* RSEQ_FLAG_UNREGISTER */
		return 0;
	if (len < 32 || (rs & 31))
		return -EINVAL;
	/* Linux accepts any user address and, when it cannot write the area on the way back to
	 * the program, kills it with SIGSEGV. */
	uint32_t cpu[2] = {0, 0}; /* cpu_id_start, cpu_id */
	if (!k_user_ok(rs, len, K_WRITE) || k_copy_to_user(rs, cpu, sizeof(cpu)) < 0)
		k_exit(SBX_EXIT_SIGNALED | 11);
	return 0;
}

/* RLIMIT_NOFILE is the monitor's: it hands out the fd numbers, so it keeps and enforces the
 * limit (and a snapshot or reset carries it). The rest are bookkeeping here. */
static long nofile(int set, const uint64_t lim[2], uint64_t old[2])
{
	uint64_t a[4] = {(uint64_t)set, set ? lim[0] : 0, set ? lim[1] : 0,
			 old ? k_kaddr((uint64_t)old) : 0};
	return k_call(SBX_CALL_NOFILE, a, 4);
}

static long rlim_get(unsigned res, uint64_t out[2])
{
	if (res == RLIMIT_NOFILE)
		return nofile(0, NULL, out);
	if (k_rlim_set & (1ull << res)) {
		out[0] = k_rlim[res][0];
		out[1] = k_rlim[res][1];
		return 0;
	}
	out[0] = out[1] = RLIM_INFINITY;
	if (res == RLIMIT_STACK)
		out[0] = BOOT->stack_top - BOOT->mmap_top - SBX_PAGE_SIZE;
	return 0;
}

/* The new limits are read before the old ones are written: both may be one buffer. */
static long rlim_set(unsigned res, uint64_t new_at, uint64_t old_at)
{
	uint64_t n[2] = {0, 0}, o[2];
	if (new_at && k_copy_from_user(n, new_at, sizeof(n)) < 0)
		return -EFAULT;
	if (res >= RLIM_NLIMITS)
		return -EINVAL;
	if (new_at && n[0] > n[1])
		return -EINVAL;
	long r;
	if (res == RLIMIT_NOFILE) {
		r = nofile(new_at != 0, n, o);
	} else {
		r = rlim_get(res, o);
		if (r == 0 && new_at) {
			k_rlim[res][0] = n[0];
			k_rlim[res][1] = n[1];
			k_rlim_set |= 1ull << res;
		}
	}
	if (r == 0 && old_at)
		r = k_copy_to_user(old_at, o, sizeof(o));
	return r;
}

/* As Linux: the new limit is read first, the old one written last (after the new one took). */
long k_sys_prlimit64(struct k_frame *f)
{
	if (f->rdi != 0 && f->rdi != BOOT->pid)
		return -ESRCH;
	return rlim_set((unsigned)f->rsi, f->rdx, f->r10);
}

long k_sys_setrlimit(struct k_frame *f)
{
	if (!f->rsi)
		return -EFAULT;
	return rlim_set((unsigned)f->rdi, f->rsi, 0);
}

long k_sys_getrlimit(struct k_frame *f)
{
	if (f->rdi >= RLIM_NLIMITS)
		return -EINVAL;
	if (!f->rsi)
		return -EFAULT;
	return rlim_set((unsigned)f->rdi, 0, f->rsi);
}

/* In Linux's order: the new action is read, checked and installed, then the old one written
 * (EFAULT then, with the new action in place). */
long k_sys_rt_sigaction(struct k_frame *f)
{
	uint64_t sig = f->rdi;
	struct sbx_sigaction old, nw;
	if (f->r10 != 8)
		return -EINVAL;
	if (f->rsi && k_copy_from_user(&nw, f->rsi, sizeof(nw)) < 0)
		return -EFAULT;
	if (sig < 1 || sig > NSIG)
		return -EINVAL;
	if (f->rsi && (sig == SIGKILL || sig == SIGSTOP))
		return -EINVAL;
	k_memcpy(&old, (const void *)&SIGS->act[sig], sizeof(old));
	if (f->rsi)
		k_memcpy((void *)&SIGS->act[sig], &nw, sizeof(nw));
	return f->rdx ? k_copy_to_user(f->rdx, &old, sizeof(old)) : 0;
}

long k_sys_rt_sigprocmask(struct k_frame *f)
{
	if (f->r10 != 8)
		return -EINVAL;
	uint64_t old = TSIG->blocked, cur = old;
	if (f->rsi) {
		uint64_t set;
		if (k_copy_from_user(&set, f->rsi, sizeof(set)) < 0)
			return -EFAULT;
		switch (f->rdi) {
		case SIG_BLOCK:
			cur |= set;
			break;
		case SIG_UNBLOCK:
			cur &= ~set;
			break;
		case SIG_SETMASK:
			cur = set;
			break;
		default:
			return -EINVAL;
		}
		TSIG->blocked = cur & ~((1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1)));
	}
	if (f->rdx && k_copy_to_user(f->rdx, &old, sizeof(old)) < 0)
		return -EFAULT;
	if (k_signal_pending() & ~TSIG->blocked) {
		/* Unblocking a pending signal delivers it now, as this call returns. */
		struct k_resume r;
		k_frame_regs(f, 0, &r);
		k_deliver_pending(&r);
	}
	return 0;
}

/* The blocked signals that wait for this thread, with those another process sent meanwhile
 * (Linux: the thread's and the process's pending sets, masked by the blocked set). */
long k_sys_rt_sigpending(struct k_frame *f)
{
	if (f->rsi > 8)
		return -EINVAL;
	k_signal_take_incoming();
	uint64_t set = k_signal_pending() & TSIG->blocked;
	return k_copy_to_user(f->rdi, &set, f->rsi);
}

/* stack_t: ss_sp, ss_flags (int) and padding, ss_size. In Linux's order: the new one is read,
 * checked and set, then the old one written. */
long k_sys_sigaltstack(struct k_frame *f)
{
	/* The stack pointer of the code that called us: is it on the alternate stack? */
	uint64_t sp = f->user_rsp;
	int on = TSIG->ss_size && sp > TSIG->ss_sp && sp - TSIG->ss_sp <= TSIG->ss_size;
	uint64_t o[3] = {TSIG->ss_sp,
			 (uint32_t)(on		    ? SS_ONSTACK
				    : TSIG->ss_size ? 0
						    : SS_DISABLE),
			 TSIG->ss_size};
	if (f->rdi) {
		uint64_t n[3];
		if (k_copy_from_user(n, f->rdi, sizeof(n)) < 0)
			return -EFAULT;
		int32_t flags = (int32_t)n[1];
		if (on)
			return -EPERM;
		if (flags != 0 && flags != SS_ONSTACK && flags != SS_DISABLE)
			return -EINVAL; /* SS_ONSTACK means enable, as on Linux */
		if (flags & SS_DISABLE) {
			TSIG->ss_sp = 0;
			TSIG->ss_size = 0;
		} else {
			if (n[2] < 2048)
				return -ENOMEM;
			/* Linux checks the larger frames only once a dynamic feature is on. */
			if ((BOOT->xfeatures & SBX_XFEATURES_AMX) &&
			    n[2] < sigframe_min(BOOT->xsave_bytes))
				return -ENOMEM;
			TSIG->ss_sp = n[0];
			TSIG->ss_size = n[2];
		}
		TSIG->ss_flags = 0;
	}
	return f->rsi ? k_copy_to_user(f->rsi, o, sizeof(o)) : 0;
}

/* A signal sent to itself: ignored, delivered to its handler (with the registers the
 * program will have after this syscall), or fatal with the default action. */
long k_signal_self(struct k_frame *f, uint64_t sig, long ret)
{
	if (sig == 0)
		return ret;
	if (sig > NSIG)
		return -EINVAL;
	uint64_t h = SIGS->act[sig].handler;
	/* Blocked: pending until the mask lets it through, whatever its action (Linux never
	 * ignores a blocked signal: its action may change, or sigtimedwait take it). */
	if (TSIG->blocked & (1ull << (sig - 1)) && sig != SIGKILL && sig != SIGSTOP) {
		k_signal_pend((uint32_t)sig);
		return ret;
	}
	if (k_signal_stops((uint32_t)sig)) {
		k_job_stop((uint32_t)sig);
		return ret;
	}
	if (h == SIG_IGN || (h == SIG_DFL && k_signal_default_ignored((uint32_t)sig)))
		return ret;
	if (h != SIG_DFL) {
		struct k_resume r;
		k_frame_regs(f, ret, &r);
		k_deliver((uint32_t)sig, &r, -6 /* SI_TKILL */, 0, 0, 0);
	}
	k_exit(SBX_EXIT_SIGNALED | (uint32_t)sig);
}

static long send_self(struct k_frame *f, uint64_t sig)
{
	return k_signal_self(f, sig, 0);
}

/* A handled signal the caller blocks goes to another thread that does not block it. */
long k_sys_kill(struct k_frame *f)
{
	int64_t pid = (int32_t)f->rdi; /* a pid_t: the register's upper half is not Linux's */
	uint64_t sig = (uint32_t)f->rsi;
	if (sig > NSIG)
		return -EINVAL;
	/* Another process, a group, or all: the monitor's (the caller's own share of a group or
	 * of -1 comes back through sig_incoming, or ends it). */
	if (pid != (int64_t)BOOT->pid) {
		long r = k_proc_kill(pid, sig);
		if (r != 1)
			return r; /* 1: the caller is among those the group or -1 names */
	}
	/* Blocked by the caller: the process's signal goes to a thread that takes it (one in
	 * sigwait for it, or one that does not block it), whatever its action; else it waits in
	 * the process's set for whichever thread takes it, one made later too (as Linux's). Its
	 * siginfo then says kill()'s SI_USER and the caller's pid, not tkill's SI_TKILL. */
	if (sig >= 1 && sig <= NSIG && (TSIG->blocked & (1ull << (sig - 1)))) {
		k_signal_note_from((uint32_t)sig,
				   (struct sbx_sigfrom){.pid = BOOT->pid, .code = 0});
		if (k_nthreads == 1 || !k_signal_thread(0, (uint32_t)sig))
			k_signal_pend_shared((uint32_t)sig);
		return 0;
	}
	return send_self(f, sig);
}

/* To one thread: the caller itself, or another that runs its handler (a fatal or ignored
 * signal is the process's whichever thread it names). */
static long to_thread(struct k_frame *f, uint64_t tid, uint64_t sig)
{
	if ((int64_t)tid <= 0)
		return -EINVAL;
	if (tid == (uint64_t)k_sys_gettid(f))
		return send_self(f, sig);
	if (sig > NSIG)
		return -EINVAL;
	if (tid > 0x7fffffffull)
		return -ESRCH;
	if (!k_signal_thread((uint32_t)tid, 0)) {
		/* Not one of ours: Linux's tkill reaches any thread, so another process's (the
		 * monitor's kill knows threads' ids too) gets it, as its process's signal; musl's
		 * raise() in a vfork child names the parent's thread. 1: the caller's own id,
		 * which no thread has any more. */
		long r = k_proc_kill((int64_t)tid, sig);
		return r == 1 ? -ESRCH : r;
	}
	uint64_t h = sig ? SIGS->act[sig].handler : SIG_IGN;
	int blocked = sig && (k_thread_blocked((uint32_t)tid) & (1ull << (sig - 1)));
	if (!sig || (!blocked &&
		     (h == SIG_IGN || (h == SIG_DFL && k_signal_default_ignored((uint32_t)sig)))))
		return 0;
	/* A stop stops the whole process, whichever thread it names. */
	if (!blocked && k_signal_stops((uint32_t)sig)) {
		k_job_stop((uint32_t)sig);
		return 0;
	}
	/* The default action of any other is the end of the program, at once unless the
	 * thread blocks it (then pending, like a handled one). */
	if (h == SIG_DFL && (sig == SIGKILL || !blocked))
		k_exit(SBX_EXIT_SIGNALED | (uint32_t)sig);
	k_signal_thread((uint32_t)tid, (uint32_t)sig);
	return 0;
}

long k_sys_tgkill(struct k_frame *f)
{
	if ((int64_t)f->rdi <= 0 || (int64_t)f->rsi <= 0)
		return -EINVAL;
	if ((uint32_t)f->rdi != BOOT->pid)
		return (uint32_t)f->rdi == (uint32_t)f->rsi ? k_proc_kill((int32_t)f->rdi, f->rdx)
							    : -ESRCH;
	return to_thread(f, f->rsi, f->rdx);
}

long k_sys_tkill(struct k_frame *f)
{
	return to_thread(f, f->rdi, f->rsi);
}

#define PR_SET_PDEATHSIG 1
#define PR_GET_PDEATHSIG 2
#define PR_GET_DUMPABLE 3
#define PR_SET_DUMPABLE 4
#define PR_SET_NAME 15
#define PR_GET_NAME 16
#define PR_SET_NO_NEW_PRIVS 38
#define PR_GET_NO_NEW_PRIVS 39

static uint64_t k_dumpable = 1, k_no_new_privs;

long k_sys_prctl(struct k_frame *f)
{
	switch (f->rdi) {
	case PR_SET_NAME: {
		/* Up to 15 bytes or the NUL, as strncpy_from_user reads them. */
		char c[16] = {0};
		uint64_t ok = k_user_span(f->rsi, 15, K_READ);
		uint64_t i = 0;
		for (; i < ok && ((const char *)f->rsi)[i]; i++)
			c[i] = ((const char *)f->rsi)[i];
		if (i == ok && ok < 15)
			return -EFAULT;
		volatile char *to = k_thread_comm(1);
		for (unsigned k = 0; k < sizeof(c); k++)
			to[k] = c[k];
		return 0;
	}
	case PR_GET_NAME: {
		char c[16];
		const volatile char *from = k_thread_comm(0);
		for (unsigned k = 0; k < sizeof(c); k++)
			c[k] = from[k];
		c[15] = 0;
		return k_copy_to_user(f->rsi, c, 16);
	}
	case PR_SET_DUMPABLE:
		if (f->rsi > 1)
			return -EINVAL;
		k_dumpable = f->rsi;
		return 0;
	case PR_GET_DUMPABLE:
		return (long)k_dumpable;
	case PR_SET_NO_NEW_PRIVS:
		if (f->rsi != 1)
			return -EINVAL;
		k_no_new_privs = 1;
		return 0;
	case PR_GET_NO_NEW_PRIVS:
		return (long)k_no_new_privs;
	case PR_SET_PDEATHSIG:
		if (f->rsi > NSIG)
			return -EINVAL;
		BOOT->pdeathsig = (uint32_t)f->rsi; /* the monitor sends it (PR_SET_PDEATHSIG) */
		return 0;
	case PR_GET_PDEATHSIG: {
		int32_t sig = (int32_t)BOOT->pdeathsig;
		return k_copy_to_user(f->rsi, &sig, sizeof(sig));
	}
	}
	return -EINVAL;
}

/* The execution domain: Linux's own (PER_LINUX) with any of its flags, which are kept (across
 * execve too, by the monitor) and read back, and change nothing here (setarch -R's
 * ADDR_NO_RANDOMIZE: the sandbox's layout does not depend on it); the other domains would
 * change what the kernel answers (PER_LINUX32's uname, say) and are refused. */
long k_sys_personality(struct k_frame *f)
{
	uint32_t p = (uint32_t)f->rdi, old = BOOT->persona;
	if (p == 0xffffffffu)
		return old;
	if (p & 0xff)
		return -EINVAL;
	BOOT->persona = p;
	return old;
}
