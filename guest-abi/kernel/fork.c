/* Processes: fork, vfork and process clones, execve, wait4/waitid, kill of another process,
 * process groups. Each process is a VM of its own (docs/architecture.md, "Processes"): the
 * monitor makes a child as a copy of this VM stopped inside the FORK call, so the child's
 * kernel returns 0 from the very call whose answer in the parent is the child's pid. */
#include "kernel.h"

#define CLONE_VM 0x100ull
#define CLONE_FS 0x200ull
#define CLONE_FILES 0x400ull
#define CLONE_SIGHAND 0x800ull
#define CLONE_PIDFD 0x1000ull
#define CLONE_PTRACE 0x2000ull
#define CLONE_VFORK 0x4000ull
#define CLONE_PARENT 0x8000ull
#define CLONE_SETTLS 0x80000ull
#define CLONE_PARENT_SETTID 0x100000ull
#define CLONE_CHILD_CLEARTID 0x200000ull
#define CLONE_CHILD_SETTID 0x1000000ull
#define CLONE_UNTRACED 0x800000ull
/* What a new process may ask for: posix_spawn's CLONE_VM | CLONE_VFORK (the child gets a
 * copy of the memory instead of sharing it: the parent waits until it execs, so only a child
 * that writes what the parent reads later can tell), glibc fork's tid words, a new stack. */
#define K_PROC_OK                                                                                  \
	(CLONE_VM | CLONE_VFORK | CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID |      \
	 CLONE_CHILD_SETTID | CLONE_UNTRACED | CLONE_PTRACE | 0xffull)
#define WNOHANG 1
#define WEXITED 4
#define WSTOPPED 2
#define WCONTINUED 8
#define WNOWAIT 0x01000000
#define K_WALL 0x40000000u
#define K_WCLONE 0x80000000u
#define K_WNOTHREAD 0x20000000u
#define P_ALL 0
#define P_PID 1
#define P_PGID 2
#define SIGCHLD 17

/* A vfork's child: 1 while its mappings are the parent's (what it
 * writes then goes back to the parent if it ends without an execve: VFORK_EXIT), 2 once it
 * changed one. */
uint32_t k_vfork_child;

void k_vfork_mapping(uint64_t nr)
{
	/* mmap, mprotect, munmap, brk, mremap, madvise, shmat, shmdt, remap_file_pages,
	 * pkey_mprotect */
	if (nr == 9 || nr == 10 || nr == 11 || nr == 12 || nr == 25 || nr == 28 || nr == 30 ||
	    nr == 67 || nr == 216 || nr == 329)
		k_vfork_child = 2;
}

void k_vfork_exit(void)
{
	if (k_vfork_child != 1)
		return;
	k_vfork_child = 0;
	k_call_own(SBX_CALL_VFORK_EXIT, 0, 0);
}

long k_proc_clone(struct k_frame *f, uint64_t flags, uint64_t sp, uint64_t ptid, uint64_t ctid,
		  uint64_t tls)
{
	if (flags & (CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_PIDFD | CLONE_PARENT)) {
		/* Two processes sharing a descriptor table or a cwd: not a thing VMs of their own
		 * can be. Counted and named in the summary as clone. */
		BOOT->nosys_count[56]++;
		return -ENOSYS;
	}
	if (flags & ~K_PROC_OK)
		return -EINVAL;
	if (k_exec_ends_me())
		return -EAGAIN; /* this thread ends on its way out: no child of its */
	/* With other threads (Go's os/exec, a threaded program's posix_spawn), the copy is made
	 * holding the kernel's lock: no thread is halfway through changing the kernel's state
	 * then, and the child's copy of the lock is its one thread's. A vfork's wait comes after,
	 * without the lock, so that the other threads go on meanwhile; its child's writes come
	 * back all the same while the monitor holds them (SBX_FORK_VFORK_APART, 1.27). */
	int threaded = k_nthreads > 1;
	uint64_t a[1] = {!threaded		 ? flags
			 : (flags & CLONE_VFORK) ? (flags & ~CLONE_VFORK) | SBX_FORK_VFORK_APART
						 : flags};
	long pid =
	    threaded ? k_call_own_locked(SBX_CALL_FORK, a, 1) : k_call_own(SBX_CALL_FORK, a, 1);
	if (pid < 0)
		return pid;
	uint32_t id = (uint32_t)pid;
	if (pid > 0) {
		if (threaded && (flags & CLONE_VFORK)) {
			uint64_t w[3] = {0, (uint64_t)pid, (uint64_t)k_intr_word()};
			/* Only another thread's execve ends this wait: Linux's is killable. */
			do
				k_thread_interrupted();
			while (k_call_own(SBX_CALL_FORK, w, 3) == -EINTR && !k_exec_ends_me());
		}
		/* The child exists: as Linux, a failed write is the caller's. */
		if (flags & CLONE_PARENT_SETTID)
			k_copy_to_user(ptid, &id, 4);
		return pid;
	}
	/* The child: the monitor wrote its ids into its boot page. */
	id = BOOT->pid;
	k_vfork_child = (flags & CLONE_VFORK) ? 1 : 0;
	k_thread_forked((flags & CLONE_CHILD_CLEARTID) ? ctid : 0);
	k_ptimers_forget();
	k_signal_unpend_all(); /* a child starts with no pending signal */
	k_sigfd_told = 0;      /* and its signalfds are eventfds of its own, none readable */
	if (sp)
		f->user_rsp = sp;
	if (flags & CLONE_SETTLS)
		__asm__ volatile("wrfsbase %0" ::"r"(tls));
	if (flags & CLONE_CHILD_SETTID)
		k_copy_to_user(ctid, &id, 4);
	return 0;
}

long k_sys_fork(struct k_frame *f)
{
	return k_proc_clone(f, SIGCHLD, 0, 0, 0, 0);
}

long k_sys_vfork(struct k_frame *f)
{
	return k_proc_clone(f, CLONE_VM | CLONE_VFORK | SIGCHLD, 0, 0, 0, 0);
}

static long exec_common(int32_t dirfd, uint64_t path, uint64_t argv, uint64_t envp, uint64_t flags)
{
	/* Only the AT_* flags (the monitor's own bits are above them). */
	if (flags > 0xffffffffull || (flags & (SBX_EXECVE_CHECK | SBX_EXECVE_FINAL)))
		return -EINVAL;
	uint64_t a[6] = {(uint64_t)(int64_t)dirfd, path, argv, envp, flags, k_cur_umask()};
	k_thread_affinity_to_exec();
	if (k_nthreads > 1 || !k_thread_is_main())
		return k_exec_threaded(a);
	k_signal_shared_to_main();
	return k_call_own(SBX_CALL_EXECVE, a, 6);
}

long k_sys_execve(struct k_frame *f)
{
	return exec_common(SBX_AT_FDCWD, f->rdi, f->rsi, f->rdx, 0);
}

long k_sys_execveat(struct k_frame *f)
{
	return exec_common((int32_t)f->rdi, f->rsi, f->rdx, f->r10, f->r8);
}

static long wait_call(int64_t pid, uint64_t opts, struct sbx_rusage *ru)
{
	uint64_t a[4] = {(uint64_t)pid,
			 opts & (WNOHANG | WNOWAIT | WSTOPPED | WCONTINUED | SBX_WAIT_NOEXIT),
			 ru ? k_kaddr((uint64_t)ru) : 0, (uint64_t)k_intr_word()};
	return k_call_own(SBX_CALL_WAIT, a, 4);
}

/* One wait: (status << 32) | pid, 0, or -errno. A signal for this thread ends it: EINTR, or,
 * when its handler has SA_RESTART, the call made again after the handler (ERESTARTSYS), as on
 * Linux, so that an alarm's handler may kill the child being waited for. A child that has
 * ended comes first, as on Linux: the SIGCHLD of the very child waited for is pending then, and
 * its handler (a shell's reaps with WNOHANG) must not take it from under the wait. */
static long wait_one(int64_t pid, uint64_t opts, struct sbx_rusage *ru)
{
	for (;;) {
		/* Cleared, then the look: a signal after it sets the word the monitor watches. */
		k_thread_interrupted();
		if (!(opts & WNOHANG) && k_signal_waiting()) {
			long r = wait_call(pid, opts | WNOHANG, ru);
			if (r != 0)
				return r;
			return k_signal_interrupts() ? -EINTR : -K_ERESTARTSYS;
		}
		long r = wait_call(pid, opts, ru);
		if (r != -EINTR)
			return r;
	}
}

/* The reaped child's usage, when the caller asks for it. */
static long put_rusage(uint64_t addr, long r, const struct sbx_rusage *ru)
{
	if (!addr)
		return 0;
	return r > 0 ? k_rusage_put(addr, ru->cpu_ns, ru->maxrss_kib) : k_rusage_put(addr, 0, 0);
}

long k_sys_wait4(struct k_frame *f)
{
	int64_t pid = (int32_t)f->rdi;
	uint64_t opts = f->rdx;
	if (opts &
	    ~(uint64_t)(WNOHANG | 2 /* WUNTRACED */ | WCONTINUED | K_WALL | K_WCLONE | K_WNOTHREAD))
		return -EINVAL;
	if (pid == -2147483648ll)
		return -ESRCH; /* INT_MIN: Linux refuses to negate it */
	struct sbx_rusage ru;
	long r = wait_one(pid, opts, f->r10 ? &ru : NULL);
	if (r <= 0)
		return r;
	uint32_t st = (uint32_t)((uint64_t)r >> 32);
	if (f->rsi && k_copy_to_user(f->rsi, &st, 4) < 0)
		return -EFAULT;
	if (put_rusage(f->r10, r, &ru) < 0)
		return -EFAULT;
	return r & 0xffffffff;
}

long k_sys_waitid(struct k_frame *f)
{
	uint64_t type = f->rdi, id = f->rsi, info = f->rdx, opts = f->r10;
	if (opts & ~(uint64_t)(WNOHANG | WEXITED | WSTOPPED | WCONTINUED | WNOWAIT | K_WALL |
			       K_WCLONE | K_WNOTHREAD))
		return -EINVAL;
	if (!(opts & (WEXITED | WSTOPPED | WCONTINUED)))
		return -EINVAL;
	int64_t pid;
	if (type == P_ALL)
		pid = -1;
	else if (type == P_PID && (int32_t)id > 0)
		pid = (int32_t)id;
	else if (type == P_PGID && (int32_t)id >= 0)
		pid = id ? -(int64_t)(int32_t)id : 0;
	else
		return -EINVAL;
	struct sbx_rusage ru;
	long r =
	    wait_one(pid, (opts & WEXITED) ? opts : opts | SBX_WAIT_NOEXIT, f->r8 ? &ru : NULL);
	if (r < 0)
		return r;
	/* siginfo_t: signo, errno, code, then pid, uid, status (the _sigchld member). */
	int32_t si[32];
	k_memset(si, 0, sizeof(si));
	if (r > 0) {
		uint32_t st = (uint32_t)((uint64_t)r >> 32);
		si[0] = SIGCHLD;
		si[2] = st == 0xffff	      ? 6 /* CLD_CONTINUED */
			: (st & 0xff) == 0x7f ? 5 /* CLD_STOPPED */
			: (st & 0x7f) == 0    ? 1 /* CLD_EXITED */
			: (st & 0x80)	      ? 3 /* CLD_DUMPED */
					      : 2 /* CLD_KILLED */;
		si[4] = (int32_t)(r & 0xffffffff);
		si[5] = (int32_t)BOOT->uid;
		si[6] = st == 0xffff	      ? 18 /* SIGCONT */
			: (st & 0xff) == 0x7f ? (int32_t)((st >> 8) & 0xff)
			: (st & 0x7f) == 0    ? (int32_t)((st >> 8) & 0xff)
					      : (int32_t)(st & 0x7f);
	}
	if (info && k_copy_to_user(info, si, sizeof(si)) < 0)
		return -EFAULT;
	if (put_rusage(f->r8, r, &ru) < 0)
		return -EFAULT;
	return 0;
}

/* kill(2) to a process other than the caller, or to a group: the monitor's. */
long k_proc_kill(int64_t pid, uint64_t sig)
{
	uint64_t a[2] = {(uint64_t)pid, sig};
	return k_call_own(SBX_CALL_PKILL, a, 2);
}

static long pgrp(uint64_t op, uint64_t a1, uint64_t a2)
{
	uint64_t a[3] = {op, a1, a2};
	return k_call_own(SBX_CALL_PGRP, a, 3);
}

long k_sys_setpgid(struct k_frame *f)
{
	return pgrp(0, (uint64_t)(int64_t)(int32_t)f->rdi, (uint64_t)(int64_t)(int32_t)f->rsi);
}

long k_sys_getpgid(struct k_frame *f)
{
	if ((int32_t)f->rdi == 0 || (uint32_t)f->rdi == BOOT->pid)
		return BOOT->pgid;
	return pgrp(1, (uint64_t)(int64_t)(int32_t)f->rdi, 0);
}

long k_sys_getpgrp(struct k_frame *f)
{
	(void)f;
	return BOOT->pgid;
}

long k_sys_setsid(struct k_frame *f)
{
	(void)f;
	return pgrp(2, 0, 0);
}

long k_sys_getsid(struct k_frame *f)
{
	if ((int32_t)f->rdi == 0 || (uint32_t)f->rdi == BOOT->pid)
		return BOOT->sid;
	return pgrp(3, (uint64_t)(int64_t)(int32_t)f->rdi, 0);
}

/* Signals from other processes, into this thread's pending set: at every syscall's end, in a
 * wait, when the monitor stops the program's code for them (signo 0 upcall), and while an
 * execve waits for the other threads to end. Ignored ones
 * go; the monitor already ended the process for one whose default action ends it. */
void k_signal_take_incoming(void)
{
	/* A thread another's execve is ending leaves them to the caller, whose new image gets
	 * them as Linux's would. */
	if (k_exec_ends_me())
		return;
	uint64_t in = __atomic_exchange_n(&BOOT->sig_incoming, 0, __ATOMIC_SEQ_CST);
	while (in) {
		uint32_t sig = (uint32_t)__builtin_ctzll(in) + 1;
		in &= in - 1;
		uint64_t h = SIGS->act[sig].handler;
		/* As Linux: a blocked signal is never ignored (its action may change before it is
		 * unblocked, or sigtimedwait take it). */
		if (!(TSIG->blocked & (1ull << (sig - 1))) &&
		    (h == 1 /* SIG_IGN */ || (h == 0 && k_signal_default_ignored(sig))))
			continue;
		k_signal_note_from(sig, BOOT->sig_from[sig - 1]);
		/* The process's: to another thread that takes it if this one blocks it, else to
		 * the process's set, for whichever thread takes it. */
		if (!(TSIG->blocked & (1ull << (sig - 1))))
			k_signal_pend(sig);
		else if (k_nthreads == 1 || !k_signal_thread(0, sig))
			k_signal_pend_shared(sig);
	}
	/* A poll that this cut short finds its signalfd readable when it is made again. */
	if (k_sigfd_on)
		k_sigfd_sync();
}
