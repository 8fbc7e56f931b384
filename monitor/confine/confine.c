/* Confinement: once the guest is loaded and before its first instruction, the monitor gives up
 * what it no longer needs, so that a bug in it still cannot reach beyond the policy. Two layers:
 * - seccomp: an allowlist of the syscalls the run, the hypercalls, the reports and the teardown
 *   make; anything else kills the whole process (SIGSYS). One table, one reason per entry.
 * - Landlock: the file system shrinks to the mount roots (read, or read-write for rw mounts),
 *   the program and debug files (read) and the directories a crash report writes into. It
 *   cannot hold a read-only mount nested in a read-write one: the monitor's own check does.
 * docs/confinement.md lists both and says how to debug a SIGSYS. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/socket.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "calls.h"
#include "confine.h"
#include "confine_priv.h"

/* clang before 15 says "ASan" only through __has_feature. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SBX_CLANG_ASAN 1
#endif
#endif
#ifndef SBX_CLANG_ASAN
#define SBX_CLANG_ASAN 0
#endif

/* Older distributions' headers lack these (the table below names the first). */
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif
#ifndef SECCOMP_FILTER_FLAG_TSYNC_ESRCH
#define SECCOMP_FILTER_FLAG_TSYNC_ESRCH (1UL << 4) /* Linux 5.7 */
#endif

/* ---- The seccomp allowlist -------------------------------------------------------------- */

/* How an entry narrows its arguments. */
enum sbx_arg {
	ARG_ANY,
	ARG_NO_EXEC,	   /* mmap, mprotect: without PROT_EXEC (arg 2) */
	ARG_EXEC,	   /* mmap, mprotect: with PROT_EXEC */
	ARG_THREAD,	   /* clone: CLONE_THREAD only, so no new process (arg 0) */
	ARG_CALLER,	   /* pid 0: sched_setaffinity's caller, kill's own group */
	ARG_OWN_PROCESS,   /* tgkill: threads of this process only (tgid) */
	ARG_FCNTL,	   /* fcntl: the commands in sbx_fcntl_cmds */
	ARG_IOCTL,	   /* ioctl: sbx_tty_ioctls on any fd, sbx_vcpu_ioctls on the vCPU fd */
	ARG_VERSION_QUERY, /* landlock_create_ruleset: the ABI version query only */
	ARG_UNIX,	   /* socketpair: AF_UNIX only (arg 0) */
	ARG_IS_UNIX,  /* socket: AF_UNIX (arg 0, all of it: the rule below is its complement) */
	ARG_NOT_UNIX, /* socket: any family but AF_UNIX (arg 0) */
};

static const struct sbx_rule {
	int nr;
	enum sbx_arg arg;
	int err; /* 0: allowed; else refused with this errno (and the process lives) */
	const char *why;
} sbx_rules[] = {
    /* The run loop and the vCPU */
    {SYS_ioctl, ARG_IOCTL, 0, "KVM_RUN and the vCPU register ioctls; terminal queries"},
    {SYS_futex, ARG_ANY, 0, "ring wakeups, SLEEP, mutexes, pthread_join"},
    {SYS_tgkill, ARG_OWN_PROCESS, 0, "the kick signal between vCPU, poller, watchdog"},
    {SYS_kill, ARG_CALLER, 0,
     "job control: the first process stops, and the monitor stops its own group with it"},
    {SYS_rt_sigreturn, ARG_ANY, 0, "return from the kick handler"},
    {SYS_rt_sigprocmask, ARG_ANY, 0, "glibc masks signals around thread start/exit"},
    {SYS_rt_sigaction, ARG_ANY, 0, "the kick handler is (re)installed once per run"},
    {SYS_restart_syscall, ARG_ANY, 0, "a futex/nanosleep resumed after the kick"},
    {SYS_sched_yield, ARG_ANY, 0, "spinning poller and glibc locks"},
    {SYS_sched_getaffinity, ARG_ANY, 0, "glibc malloc sizes arenas by it"},
    {SYS_sched_setaffinity, ARG_CALLER, 0, "the poller pins itself to its CPU"},
    {SYS_clone, ARG_THREAD, 0, "threads started after confinement (watchdog, poller)"},
    {SYS_clone3, ARG_ANY, ENOSYS, "its flags are out of reach: glibc falls back to clone"},
    {SYS_set_robust_list, ARG_ANY, 0, "a new thread registers its robust futex list"},
    {SYS_rseq, ARG_ANY, 0, "a new thread registers its rseq area"},
    {SYS_gettid, ARG_ANY, 0, "glibc and the thread bookkeeping"},
    {SYS_getpid, ARG_ANY, 0, "raise/pthread_kill, jansson's hash seed"},
    {SYS_exit, ARG_ANY, 0, "a thread ends (poller, watchdog)"},
    {SYS_exit_group, ARG_ANY, 0, "the process ends"},
    /* Time */
    {SYS_clock_gettime, ARG_ANY, 0, "CPU clocks (watchdog) and vDSO fallbacks"},
    {SYS_gettimeofday, ARG_ANY, 0, "vDSO fallback"},
    {SYS_clock_nanosleep, ARG_ANY, 0, "glibc nanosleep"},
    {SYS_nanosleep, ARG_ANY, 0, "sleeps in libraries"},
    {SYS_timer_create, ARG_ANY, 0, "a vCPU thread's re-kick timer (threads.c)"},
    {SYS_timer_settime, ARG_ANY, 0, "arming and disarming it"},
    {SYS_timer_delete, ARG_ANY, 0, "at the vCPU thread's end"},
    /* Memory of the monitor itself */
    {SYS_mmap, ARG_NO_EXEC, 0, "malloc, libdw/libelf reading ELF files, thread stacks"},
    {SYS_mmap, ARG_EXEC, EPERM, "no new code: a lazy dlopen (libdebuginfod) fails"},
    {SYS_munmap, ARG_ANY, 0, "free, teardown of guest RAM and kvm_run"},
    {SYS_mprotect, ARG_NO_EXEC, 0, "malloc arenas, thread stack guards"},
    {SYS_mprotect, ARG_EXEC, EPERM, "no new code"},
    {SYS_mremap, ARG_ANY, 0, "realloc of large blocks"},
    {SYS_madvise, ARG_ANY, 0,
     "free and thread exit give memory back; backing guest pages ahead (POPULATE)"},
    {SYS_brk, ARG_ANY, 0, "malloc"},
    /* Hypercalls on handles (hc_io.c) */
    {SYS_read, ARG_ANY, 0, "READ; reports read ELF and /proc files"},
    {SYS_write, ARG_ANY, 0, "WRITE; the log, --strace, reports"},
    {SYS_readv, ARG_ANY, 0, "READV"},
    {SYS_preadv2, ARG_ANY, 0, "READ of a pipe or eventfd tried first without waiting (RWF_NOWAIT)"},
    {SYS_pwritev2, ARG_ANY, 0, "WRITE of a pipe by the poller, which never waits (RWF_NOWAIT)"},
    {SYS_writev, ARG_ANY, 0, "WRITEV; stdio"},
    {SYS_pread64, ARG_ANY, 0, "PREAD; libelf"},
    {SYS_pwrite64, ARG_ANY, 0, "PWRITE; the core file"},
    {SYS_lseek, ARG_ANY, 0, "LSEEK; stdio and libelf"},
    {SYS_close, ARG_ANY, 0, "CLOSE, O_PATH fds of path calls, report files"},
    {SYS_fstat, ARG_ANY, 0, "FSTAT; stdio"},
    {SYS_newfstatat, ARG_ANY, 0,
     "STAT (fstatat on an O_PATH fd); glibc stat/fstat; a path's last component beneath a "
     "mount holding another"},
    {SYS_statx, ARG_ANY, 0, "libraries that stat with statx"},
    {SYS_getdents64, ARG_ANY, 0, "GETDENTS; removing --tmp directories"},
    {SYS_ftruncate, ARG_ANY, 0, "FTRUNCATE"},
    {SYS_flock, ARG_ANY, 0, "FLOCK"},
    {SYS_fsync, ARG_ANY, 0, "FSYNC; the core file"},
    {SYS_fdatasync, ARG_ANY, 0, "FDATASYNC"},
    {SYS_msync, ARG_ANY, 0, "MSYNC: writing back a shared file mapping"},
    {SYS_fcntl, ARG_FCNTL, 0, "FCNTL and DUP (F_DUPFD_CLOEXEC), O_NONBLOCK on open"},
    {SYS_poll, ARG_ANY, 0, "POLL"},
    {SYS_ppoll, ARG_ANY, 0, "POLL (glibc may use ppoll)"},
    {SYS_fstatfs, ARG_ANY, 0, "STATFS"},
    /* Pipes, eventfds and epoll (hc_event.c): objects of the program's own */
    {SYS_pipe2, ARG_ANY, 0, "PIPE"},
    {SYS_eventfd2, ARG_ANY, 0, "EVENTFD"},
    {SYS_timerfd_create, ARG_ANY, 0, "TIMERFD"},
    {SYS_timerfd_settime, ARG_ANY, 0, "TIMERFD"},
    {SYS_timerfd_gettime, ARG_ANY, 0, "TIMERFD"},
    {SYS_tee, ARG_ANY, 0, "a snapshot copies a pipe's bytes, leaving them (objects.c)"},
    {SYS_epoll_create1, ARG_ANY, 0, "EPOLL_CREATE"},
    {SYS_epoll_ctl, ARG_ANY, 0, "EPOLL_CTL"},
    {SYS_epoll_wait, ARG_ANY, 0, "EPOLL_WAIT"},
    {SYS_epoll_pwait, ARG_ANY, 0, "EPOLL_WAIT (a libc may use epoll_pwait)"},
    {SYS_fallocate, ARG_ANY, 0, "DISCARD punches holes in guest RAM"},
    {SYS_getrandom, ARG_ANY, 0, "RANDOM"},
    /* Hypercalls on paths (hc_path.c): resolved beneath a mount's root fd */
    {SYS_openat2, ARG_ANY, 0, "OPEN, STAT, ...: RESOLVE_BENEATH below a mount root"},
    {SYS_openat, ARG_ANY, 0,
     "reports open the ELF, --debug-file, /proc/self/status; nested mounts walk \"..\" up to "
     "a mount root (O_PATH)"},
    {SYS_readlinkat, ARG_ANY, 0,
     "READLINK; a symlink followed by the monitor beneath a mount holding another"},
    {SYS_readlink, ARG_ANY, 0, "libdw's realpath() of the program in a report"},
    {SYS_mkdirat, ARG_ANY, 0, "MKDIR"},
    {SYS_mknodat, ARG_ANY, 0, "MKNOD: FIFOs, files and socket files (no devices)"},
    {SYS_inotify_init1, ARG_ANY, 0, "INOTIFY: an instance"},
    {SYS_inotify_add_watch, ARG_ANY, 0, "INOTIFY_WATCH, through /proc/self/fd/N"},
    {SYS_inotify_rm_watch, ARG_ANY, 0, "INOTIFY"},
    {SYS_unlinkat, ARG_ANY, 0, "UNLINK"},
    {SYS_renameat, ARG_ANY, 0, "RENAME"},
    {SYS_renameat2, ARG_ANY, 0, "RENAME (glibc may use renameat2)"},
    {SYS_symlinkat, ARG_ANY, 0, "SYMLINK"},
    {SYS_linkat, ARG_ANY, 0, "LINK"},
    {SYS_faccessat2, ARG_ANY, 0, "ACCESS"},
    {SYS_fchmod, ARG_ANY, 0, "CHMOD on a handle"},
    {SYS_chmod, ARG_ANY, 0, "CHMOD on a path, through /proc/self/fd/N"},
    {SYS_fchmodat, ARG_ANY, 0, "CHMOD (glibc may use fchmodat)"},
    {SYS_utimensat, ARG_ANY, 0, "UTIMENS, through /proc/self/fd/N or a handle"},
    {SYS_fchown, ARG_ANY, 0, "CHOWN on a handle"},
    {SYS_fchownat, ARG_ANY, 0, "CHOWN on a path's O_PATH descriptor (AT_EMPTY_PATH)"},
    /* Reports and teardown */
    {SYS_rename, ARG_ANY, 0, "the core file is renamed into place"},
    {SYS_unlink, ARG_ANY, 0, "a failed core file is removed; --tmp cleanup"},
    {SYS_rmdir, ARG_ANY, 0, "--tmp directories are removed at the end"},
    {SYS_sysinfo, ARG_ANY, 0, "glibc qsort sizes its buffer by it (libdw symbols)"},
    {SYS_landlock_create_ruleset, ARG_VERSION_QUERY, 0, "sbx_confine_landlock_abi()"},
    {SYS_socketpair, ARG_UNIX, 0, "SOCKETPAIR: a connected pair, no network"},
    {SYS_socket, ARG_IS_UNIX, 0, "SOCKET: a local socket of the guest's"},
    {SYS_socket, ARG_NOT_UNIX, EACCES, "libdw's debuginfod client: no network, no crash"},
    {SYS_bind, ARG_ANY, 0, "SOCKOP BIND: a local socket (only AF_UNIX ones are made)"},
    {SYS_listen, ARG_ANY, 0, "SOCKOP LISTEN"},
    {SYS_connect, ARG_ANY, 0, "SOCKOP CONNECT: a local socket the sandbox bound"},
    /* The control socket and the migration stream: bound or connected before confinement
     * (or handed over by sandbox-ctl), so no socket, bind or connect is needed here. */
    {SYS_accept4, ARG_ANY, 0, "a sandbox-ctl client on the control socket"},
    {SYS_recvmsg, ARG_ANY, 0, "control commands and the fd sandbox-ctl hands over"},
    {SYS_sendmsg, ARG_ANY, 0, "the migration stream"},
    {SYS_sendto, ARG_ANY, 0, "control replies, the migration stream"},
    {SYS_recvfrom, ARG_ANY, 0, "the migration stream; sandbox-ctl: a snapshot is in place"},
    {SYS_setsockopt, ARG_ANY, 0, "TCP_NODELAY on a migration stream handed over"},
    {SYS_getsockopt, ARG_ANY, 0, "the migration stream's socket type"},
    {SYS_getsockname, ARG_ANY, 0, "the migration stream: TCP or unix"},
    {SYS_getpeername, ARG_ANY, 0, "the migration stream's peer, for messages"},
    {SYS_shutdown, ARG_ANY, 0, "the end of a migration stream"},
    {SYS_memfd_create, ARG_ANY, 0, "the state of a migration, built in memory"},
#if defined(__SANITIZE_ADDRESS__) || SBX_CLANG_ASAN
    /* Sanitizer builds only: what the ASan runtime itself calls. */
    {SYS_sigaltstack, ARG_ANY, 0, "ASan: an alternate signal stack per thread"},
#endif
};

/* The fcntl commands the hypercalls and glibc use. */
static const unsigned long sbx_fcntl_cmds[] = {
    F_DUPFD_CLOEXEC, F_GETFD,	   F_SETFD,	F_GETFL,     F_SETFL,
    F_GETLK,	     F_SETLK,	   F_SETLKW,	F_OFD_GETLK, F_OFD_SETLK,
    F_GETPIPE_SZ,    F_SETPIPE_SZ, F_ADD_SEALS, F_GET_SEALS};
/* The terminal queries and mode changes of the IOCTL hypercall and of stdio (isatty), and
 * sandbox-run's own restoring of the modes at the end (tcgetpgrp: only as the foreground
 * job), on any fd: on anything but a terminal the file refuses them itself. The rest are the
 * sandbox's pseudo-terminals' (calls/pty.c: made, unlocked, their slaves opened from the
 * master), which the monitor asks only of those. Never TIOCSTI. */
static const unsigned long sbx_tty_ioctls[] = {
    TCGETS, TCSETS, TCSETSW, TCSETSF,  TIOCGWINSZ, FIONREAD, TIOCGPGRP,	 TIOCSWINSZ, TCSBRK,
    TCXONC, TCFLSH, TCSBRKP, TIOCOUTQ, TIOCPKT,	   TIOCGPKT, TIOCSPTLCK, TIOCGPTPEER};
/* The vCPU ioctls of the run loop (run.c), fault reports (fault.c) and signal delivery
 * (signal.c, x86_setup.c sbx_x86_enter), on the vCPU fd only. */
static const unsigned long sbx_vcpu_ioctls[] = {
    KVM_RUN, KVM_GET_REGS, KVM_SET_REGS, KVM_GET_SREGS, KVM_SET_SREGS,
    /* A snapshot (control socket, migration) reads the whole vCPU; a reset writes it back
     * (state.c). CPUID is only ever set before confinement. */
    KVM_GET_CPUID2, KVM_GET_MP_STATE, KVM_SET_MP_STATE, KVM_GET_XSAVE, KVM_GET_XSAVE2,
    KVM_SET_XSAVE, KVM_GET_XCRS, KVM_SET_XCRS, KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS, KVM_GET_MSRS,
    KVM_SET_MSRS, KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, KVM_GET_TSC_KHZ,
    /* A guest thread's new vCPU is set up after confinement (threads.c). */
    KVM_SET_CPUID2, KVM_SET_FPU};
/* On a VM fd: dirty-page tracking for reset and live migration (dirty.c), which toggles the
 * memslot's logging flag and re-adds it after page tables were put back; a fork's child VM
 * gets its memslot and vCPU (fork.c), and an execve re-adds the memslot. */
static const unsigned long sbx_vm_ioctls[] = {KVM_CHECK_EXTENSION,	  KVM_ENABLE_CAP,
					      KVM_GET_DIRTY_LOG,	  KVM_CLEAR_DIRTY_LOG,
					      KVM_SET_USER_MEMORY_REGION, KVM_CREATE_VCPU};

/* On /dev/kvm: a fork's child VM (fork.c). */
static const unsigned long sbx_kvm_ioctls[] = {KVM_CREATE_VM, KVM_GET_VCPU_MMAP_SIZE,
					       KVM_CHECK_EXTENSION};

/* fds and ioctl commands are ints to the kernel: compare the low 32 bits only. */
#define LOW32 0xffffffffull

#define LL_CREATE_RULESET_VERSION (1u << 0)

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* The table's entries as rules, appended to a growing array. */
struct rules {
	struct sbx_confine_rule *r;
	size_t n, cap;
};

static int rules_push(struct rules *l, int nr, uint32_t action, unsigned nargs,
		      const struct sbx_confine_arg *a)
{
	struct sbx_confine_rule *all = sbx_confine_grow(l->r, &l->cap, l->n, sizeof(*all));
	if (!all)
		return -ENOMEM;
	l->r = all;
	struct sbx_confine_rule *r = &l->r[l->n++];
	*r = (struct sbx_confine_rule){.nr = nr, .action = action, .nargs = nargs};
	for (unsigned i = 0; i < nargs; i++)
		r->a[i] = a[i];
	return 0;
}

/* Argument i: (arg & mask) == val. */
#define MASKED(i, m, v)                                                                            \
	((struct sbx_confine_arg){                                                                 \
	    .arg = (i), .cmp = SBX_CONFINE_MASKED_EQ, .mask = (m), .val = (v)})

/* One rule for each command in cmds (argument 1: an fcntl or ioctl command), on the file
 * descriptor fd only when fd >= 0. */
static int add_each(struct rules *l, uint32_t act, int nr, int fd, const unsigned long *cmds,
		    size_t n)
{
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct sbx_confine_arg c[2] = {MASKED(1, LOW32, cmds[i]),
					       MASKED(0, LOW32, (uint64_t)fd)};
		rc = rules_push(l, nr, act, fd >= 0 ? 2 : 1, c);
	}
	return rc;
}

static int add_rule(struct rules *l, const struct sbx_rule *r, const struct sbx_vm *vm)
{
	uint32_t act =
	    r->err ? SECCOMP_RET_ERRNO | ((uint32_t)r->err & SECCOMP_RET_DATA) : SECCOMP_RET_ALLOW;
	struct sbx_confine_arg c[3];
	int rc = 0;
	switch (r->arg) {
	case ARG_ANY:
		return rules_push(l, r->nr, act, 0, NULL);
	case ARG_NO_EXEC:
		c[0] = MASKED(2, PROT_EXEC, 0);
		return rules_push(l, r->nr, act, 1, c);
	case ARG_EXEC:
		c[0] = MASKED(2, PROT_EXEC, PROT_EXEC);
		return rules_push(l, r->nr, act, 1, c);
	case ARG_THREAD:
		c[0] = MASKED(0, CLONE_THREAD, CLONE_THREAD);
		return rules_push(l, r->nr, act, 1, c);
	case ARG_CALLER:
		c[0] = MASKED(0, LOW32, 0);
		return rules_push(l, r->nr, act, 1, c);
	case ARG_UNIX:
		c[0] = MASKED(0, LOW32, AF_UNIX);
		return rules_push(l, r->nr, act, 1, c);
	case ARG_IS_UNIX:
		c[0] = (struct sbx_confine_arg){.arg = 0, .cmp = SBX_CONFINE_EQ, .val = AF_UNIX};
		return rules_push(l, r->nr, act, 1, c);
	case ARG_NOT_UNIX:
		c[0] = (struct sbx_confine_arg){.arg = 0, .cmp = SBX_CONFINE_NE, .val = AF_UNIX};
		return rules_push(l, r->nr, act, 1, c);
	case ARG_OWN_PROCESS:
		c[0] = MASKED(0, LOW32, (uint64_t)getpid());
		return rules_push(l, r->nr, act, 1, c);
	case ARG_VERSION_QUERY:
		c[0] = (struct sbx_confine_arg){.arg = 0, .cmp = SBX_CONFINE_EQ, .val = 0};
		c[1] = (struct sbx_confine_arg){.arg = 1, .cmp = SBX_CONFINE_EQ, .val = 0};
		c[2] = MASKED(2, LOW32, LL_CREATE_RULESET_VERSION);
		return rules_push(l, r->nr, act, 3, c);
	case ARG_FCNTL:
		return add_each(l, act, r->nr, -1, sbx_fcntl_cmds, N_OF(sbx_fcntl_cmds));
	case ARG_IOCTL:
		/* KVM_RUN first: the program tries an ioctl's rules in order, and it is the
		 * monitor's most frequent call. A bare VM (tests, fuzzers) has no vCPU fd. The
		 * vCPUs of guest threads come later, with fds unknown now: their ioctls are
		 * allowed on any fd (on anything but a vCPU, KVM's ioctl numbers are refused by
		 * the file itself). */
		if (vm->proc.vcpu.fd >= 0)
			rc = add_each(l, act, r->nr, -1, sbx_vcpu_ioctls, N_OF(sbx_vcpu_ioctls));
		if (rc == 0)
			rc = add_each(l, act, r->nr, -1, sbx_tty_ioctls, N_OF(sbx_tty_ioctls));
		/* Every process's VM fd: a fork's child VMs come later, with fds unknown now. */
		if (rc == 0 && vm->proc.kvm.vm_fd >= 0)
			rc = add_each(l, act, r->nr, -1, sbx_vm_ioctls, N_OF(sbx_vm_ioctls));
		/* /dev/kvm stays open for the forks: a new VM, and what its vCPU needs. */
		if (rc == 0 && vm->proc.kvm.kvm_fd >= 0)
			rc = add_each(l, act, r->nr, vm->proc.kvm.kvm_fd, sbx_kvm_ioctls,
				      N_OF(sbx_kvm_ioctls));
		return rc;
	}
	return -EINVAL;
}

int sbx_confine_rules(const struct sbx_vm *vm, struct sbx_confine_rule **out, size_t *n)
{
	struct rules l = {0};
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < N_OF(sbx_rules); i++)
		rc = add_rule(&l, &sbx_rules[i], vm);
	if (rc < 0) {
		free(l.r);
		return rc;
	}
	*out = l.r;
	*n = l.n;
	return 0;
}

/* A syscall off the list traps here: the monitor says which one and dies of SIGSYS. Only
 * async-signal-safe work: fixed strings, digits by hand, write, tgkill. The handler has no
 * context: the front end's name (a string that lives as long as the process) is set with it. */
static const char *volatile sigsys_tool = "sandbox-run";
static void sigsys_report(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	char num[16];
	int i = sizeof(num), nr = si->si_syscall;
	do {
		num[--i] = (char)('0' + nr % 10);
		nr /= 10;
	} while (nr > 0 && i > 0);
	const char *name = sbx_syscall_name((uint64_t)si->si_syscall);
	static const char a[] = ": the monitor made syscall ",
			  b[] = ", which its seccomp filter forbids (monitor/confine.c): killed\n";
	const char *tool = sigsys_tool;
	(void)!write(2, tool, strlen(tool));
	(void)!write(2, a, sizeof(a) - 1);
	(void)!write(2, num + i, sizeof(num) - (size_t)i);
	if (name) {
		(void)!write(2, " (", 2);
		(void)!write(2, name, strlen(name));
		(void)!write(2, ")", 1);
	}
	(void)!write(2, b, sizeof(b) - 1);
	/* SA_RESETHAND made SIGSYS fatal again; SA_NODEFER lets it arrive at once. */
	syscall(SYS_tgkill, getpid(), gettid(), sig);
}

static int seccomp_build(struct sbx_vm *vm, struct sbx_confine_prog *out, char *err, size_t errlen)
{
	/* CONFIG_SECCOMP_FILTER: PR_GET_SECCOMP fails with EINVAL without CONFIG_SECCOMP; the
	 * action query needs Linux 4.14, which has KILL_PROCESS and TSYNC. */
	uint32_t kill = SECCOMP_RET_KILL_PROCESS;
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0 ||
	    syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &kill) < 0) {
		snprintf(err, errlen,
			 "this kernel has no seccomp filters with KILL_PROCESS and TSYNC (Linux "
			 "4.14 or later with CONFIG_SECCOMP_FILTER): the monitor cannot confine "
			 "itself (--no-confine runs without it)");
		return -ENOSYS;
	}
	struct sbx_confine_rule *r;
	size_t n;
	/* A trap, not a silent kill, so that a violation is named before the monitor dies. */
	int rc = sbx_confine_rules(vm, &r, &n);
	if (rc == 0) {
		rc = sbx_confine_bpf_build(r, n, SECCOMP_RET_TRAP, SECCOMP_RET_KILL_PROCESS, out);
		free(r);
	}
	if (rc < 0)
		return sbx_fail(err, errlen, rc, "seccomp: building the filter: %s", strerror(-rc));
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sigsys_tool = sbx_config_tool(&vm->cfg);
	sa.sa_sigaction = sigsys_report;
	sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER;
	sigaction(SIGSYS, &sa, NULL);
	return 0;
}

/* ---- Landlock ------------------------------------------------------------------------- */

#define LL_EXECUTE (1ull << 0)
#define LL_WRITE_FILE (1ull << 1)
#define LL_READ_FILE (1ull << 2)
#define LL_READ_DIR (1ull << 3)
#define LL_REMOVE_DIR (1ull << 4)
#define LL_REMOVE_FILE (1ull << 5)
#define LL_MAKE_CHAR (1ull << 6)
#define LL_MAKE_DIR (1ull << 7)
#define LL_MAKE_REG (1ull << 8)
#define LL_MAKE_SOCK (1ull << 9)
#define LL_MAKE_FIFO (1ull << 10)
#define LL_MAKE_BLOCK (1ull << 11)
#define LL_MAKE_SYM (1ull << 12)
#define LL_REFER (1ull << 13)	  /* ABI 2 */
#define LL_TRUNCATE (1ull << 14)  /* ABI 3 */
#define LL_IOCTL_DEV (1ull << 15) /* ABI 5 */
#define LL_NET_BIND_TCP (1ull << 0)
#define LL_NET_CONNECT_TCP (1ull << 1)
#define LL_RULE_PATH_BENEATH 1

/* What a rule may grant on a file (the rest only makes sense on a directory). */
#define LL_FILE_RIGHTS (LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE | LL_TRUNCATE | LL_IOCTL_DEV)
#define LL_RO (LL_READ_FILE | LL_READ_DIR)
#define LL_RW                                                                                      \
	(LL_RO | LL_WRITE_FILE | LL_REMOVE_DIR | LL_REMOVE_FILE | LL_MAKE_DIR | LL_MAKE_REG |      \
	 LL_MAKE_SYM | LL_MAKE_FIFO | LL_MAKE_SOCK | LL_REFER | LL_TRUNCATE)

struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net; /* ABI 4 */
};

struct ll_path_beneath {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));

int sbx_confine_landlock_abi(void)
{
	long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
	return v > 0 ? (int)v : 0; /* ENOSYS: not built in; EOPNOTSUPP: disabled at boot */
}

/* Every file-system right the kernel's ABI knows: all of them are denied unless a rule grants
 * them. */
static uint64_t ll_handled(int abi)
{
	if (abi >= 5)
		return (LL_IOCTL_DEV << 1) - 1;
	if (abi >= 3)
		return (LL_TRUNCATE << 1) - 1;
	if (abi == 2)
		return (LL_REFER << 1) - 1;
	return (LL_REFER)-1;
}

struct ll {
	int fd; /* the ruleset */
	int abi;
	uint64_t handled;
	int nrules;
};

/* Grants `access` beneath the object `fd` names (an O_PATH fd is enough). */
static int ll_allow_fd(struct ll *l, int fd, uint64_t access, const char *what, char *err,
		       size_t errlen)
{
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		return sbx_fail(err, errlen, -e, "Landlock: %s: %s", what, strerror(e));
	}
	if (!S_ISDIR(st.st_mode))
		access &= LL_FILE_RIGHTS;
	struct ll_path_beneath pb = {.allowed_access = access & l->handled, .parent_fd = fd};
	if (!pb.allowed_access)
		return 0;
	if (syscall(SYS_landlock_add_rule, l->fd, LL_RULE_PATH_BENEATH, &pb, 0) < 0) {
		int e = errno;
		return sbx_fail(err, errlen, -e, "Landlock: cannot add a rule for %s: %s", what,
				strerror(e));
	}
	l->nrules++;
	return 0;
}

/* A path the monitor itself opens later. A file that does not exist (yet) gets no rule: the
 * later open fails as it would have without Landlock. */
static int ll_allow_path(struct ll *l, const char *path, uint64_t access, char *err, size_t errlen)
{
	int fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return 0;
	int r = ll_allow_fd(l, fd, access, path, err, errlen);
	close(fd);
	return r;
}

/* The directory a report file will be created in (its name may not exist yet). */
static int ll_allow_parent(struct ll *l, const char *path, uint64_t access, char *err,
			   size_t errlen)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	return ll_allow_path(l, dir, access, err, errlen);
}

/* Landlock's rules only ever add up: a read-only mount nested in a read-write one gets the
 * read-write rights of its parent's rule too, since Landlock cannot say "read-write except
 * this subtree" (and a read-write mount nested in a read-only one needs its own rule to be
 * writable). These rules are the outer wall, the mount roots; which mount's rule holds for an
 * object is decided by the monitor on every call, on the object the path finally reaches
 * (policy/nesting.c, docs/policy.md "Nested mounts"). */
static int ll_rules(struct sbx_vm *vm, struct ll *l, char *err, size_t errlen)
{
	const struct policy *p = vm->cfg.policy;
	int r = 0;
	for (size_t i = 0; r == 0 && p && i < p->nmounts; i++) {
		const struct policy_mount *m = &p->mounts[i];
		uint64_t acc = m->rw ? LL_RW : LL_RO;
		if (m->is_dir) {
			r = ll_allow_fd(l, m->root_fd, acc, m->host, err, errlen);
			continue;
		}
		/* A file mount: the file only, not the directory it sits in. */
		int fd = openat(m->root_fd, m->leaf, O_PATH | O_CLOEXEC);
		if (fd < 0) {
			int e = errno;
			return sbx_fail(err, errlen, -e, "Landlock: mount %s: %s", m->host,
					strerror(e));
		}
		r = ll_allow_fd(l, fd, acc, m->host, err, errlen);
		close(fd);
	}
	/* --tmp directories are removed when the policy is freed: their run directory with its
	 * lock file, and the run directory itself from its parent. */
	if (r == 0 && p && p->tmp_run)
		r = ll_allow_path(l, p->tmp_run, LL_READ_DIR | LL_REMOVE_DIR | LL_REMOVE_FILE, err,
				  errlen);
	if (r == 0 && p && p->tmp_run)
		r = ll_allow_parent(l, p->tmp_run, LL_REMOVE_DIR, err, errlen);
	/* Reports read the program's symbols and DWARF, and the separate debug file. */
	if (r == 0 && vm->cfg.prog)
		r = ll_allow_path(l, vm->cfg.prog, LL_READ_FILE, err, errlen);
	if (r == 0 && vm->cfg.debug_file)
		r = ll_allow_path(l, vm->cfg.debug_file, LL_READ_FILE, err, errlen);
	/* The core file: mkstemp beside it (O_RDWR), then rename over it, or unlink. */
	if (r == 0 && vm->cfg.core_file)
		r = ll_allow_parent(l, vm->cfg.core_file,
				    LL_MAKE_REG | LL_READ_FILE | LL_WRITE_FILE | LL_REMOVE_FILE,
				    err, errlen);
	/* The JSON report: fopen(path, "w"). */
	if (r == 0 && vm->cfg.report_json)
		r = ll_allow_parent(l, vm->cfg.report_json,
				    LL_MAKE_REG | LL_WRITE_FILE | LL_TRUNCATE, err, errlen);
	/* --stats reads the monitor's RSS from /proc/self/status at the end. A proc inode is
	 * made anew whenever its dentry is, and the rule belongs to the inode: the O_PATH fd is
	 * kept open on purpose, for the life of the process, so that the dentry stays. */
	if (r == 0 && vm->cfg.stats) {
		int fd = open("/proc/self/status", O_PATH | O_CLOEXEC);
		if (fd >= 0)
			r = ll_allow_fd(l, fd, LL_READ_FILE, "/proc/self/status", err, errlen);
	}
	/* The sandbox's pseudo-terminals (calls/pty.c): /dev/ptmx makes each, and its slave is
	 * opened from the master, which Landlock checks as an open of /dev/pts/N. The guest
	 * names only the sandbox's own; the rule would let a monitor taken over open the
	 * user's other terminals, not type into them (TIOCSTI is refused above). */
	if (r == 0 && sbx_vfs_enabled(vm))
		r = ll_allow_path(l, "/dev/ptmx", LL_READ_FILE | LL_WRITE_FILE | LL_IOCTL_DEV, err,
				  errlen);
	if (r == 0 && sbx_vfs_enabled(vm))
		r = ll_allow_path(l, "/dev/pts", LL_READ_FILE | LL_WRITE_FILE | LL_IOCTL_DEV, err,
				  errlen);
	/* A snapshot reads an eventfd's count and an epoll's registrations from the host's
	 * /proc/self/fdinfo/N (persist/objects.c): kept open for the same reason. */
	if (r == 0) {
		int fd = open("/proc/self/fdinfo", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0)
			r = ll_allow_fd(l, fd, LL_READ_FILE, "/proc/self/fdinfo", err, errlen);
	}
	return r;
}

/* Landlock domains are per thread and the kernel has no TSYNC for them (before ABI 8): every
 * other thread of the process is asked, by a signal whose handler calls landlock_restrict_self
 * itself, to take the same ruleset. */
#define LL_MAX_THREADS 256

struct ll_sync {
	int ruleset_fd;
	atomic_int done; /* futex word: threads that ran the handler */
	atomic_int failed;
	atomic_int nanswered;
	atomic_int answered[LL_MAX_THREADS]; /* their tids */
};

static void ll_sync_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	/* Only our own request: rt_tgsigqueueinfo from this process. */
	if (si->si_code != SI_QUEUE || si->si_pid != getpid())
		return;
	struct ll_sync *s = si->si_value.sival_ptr;
	int e = errno;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    syscall(SYS_landlock_restrict_self, s->ruleset_fd, 0) < 0)
		atomic_fetch_add(&s->failed, 1);
	int i = atomic_fetch_add(&s->nanswered, 1);
	if (i < LL_MAX_THREADS)
		atomic_store(&s->answered[i], gettid());
	atomic_fetch_add(&s->done, 1);
	syscall(SYS_futex, &s->done, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
	errno = e;
}

/* A real-time signal nobody handles, borrowed for the duration. */
static int ll_pick_signal(struct sigaction *old)
{
	for (int sig = SIGRTMAX; sig > SIGRTMIN; sig--) {
		if (sig == sbx_kick_signal())
			continue;
		if (sigaction(sig, NULL, old) == 0 && !(old->sa_flags & SA_SIGINFO) &&
		    old->sa_handler == SIG_DFL)
			return sig;
	}
	return -1;
}

/* Threads that did not answer and no longer exist. A thread just joined is still listed in
 * /proc/self/task (and takes signals) until the kernel releases it, but it never runs a
 * handler again: it needs no restrictions, and waiting for it would fail confinement. */
static int ll_gone(struct ll_sync *s, const pid_t *tids, int n)
{
	int gone = 0, answered = atomic_load(&s->nanswered);
	if (answered > LL_MAX_THREADS)
		answered = LL_MAX_THREADS;
	for (int i = 0; i < n; i++) {
		int a = 0;
		for (int k = 0; k < answered && !a; k++)
			a = atomic_load(&s->answered[k]) == tids[i];
		if (!a && syscall(SYS_tgkill, getpid(), tids[i], 0) < 0 && errno == ESRCH)
			gone++;
	}
	return gone;
}

/* The monitor's threads but the calling one, by tid. */
static int ll_list_threads(pid_t *tids, int max, char *err, size_t errlen)
{
	pid_t self = gettid();
	int n = 0;
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return sbx_fail(err, errlen, -errno,
				"Landlock: cannot list the monitor's threads: %s", strerror(errno));
	struct dirent *de;
	while ((de = readdir(d))) {
		pid_t t = (pid_t)atoi(de->d_name);
		if (t <= 0 || t == self)
			continue;
		if (n == max) {
			closedir(d);
			return sbx_fail(err, errlen, -E2BIG,
					"Landlock: the monitor has too many threads");
		}
		tids[n++] = t;
	}
	closedir(d);
	return n;
}

/* Asks each thread, by sig, to take the ruleset; keeps in tids those that were asked (one
 * that has ended meanwhile is not). Returns how many. */
static int ll_ask_threads(struct ll_sync *s, int sig, pid_t *tids, int n)
{
	pid_t pid = getpid();
	int want = 0;
	for (int i = 0; i < n; i++) {
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		si.si_signo = sig;
		si.si_code = SI_QUEUE;
		si.si_pid = pid;
		si.si_uid = getuid();
		si.si_value.sival_ptr = s;
		if (syscall(SYS_rt_tgsigqueueinfo, pid, tids[i], sig, &si) == 0)
			tids[want++] = tids[i];
	}
	return want;
}

/* Waits up to 2 s for the `want` threads asked to answer or be gone; returns how many did. */
static int ll_wait_answers(struct ll_sync *s, const pid_t *tids, int want)
{
	int64_t end = sbx_now_ns(CLOCK_MONOTONIC) + 2000 * SBX_NS_PER_MS;
	int done;
	while ((done = atomic_load(&s->done)) + ll_gone(s, tids, want) < want &&
	       sbx_now_ns(CLOCK_MONOTONIC) < end) {
		struct timespec rel = {.tv_sec = 0, .tv_nsec = 5000000};
		syscall(SYS_futex, &s->done, FUTEX_WAIT_PRIVATE, done, &rel, NULL, 0);
	}
	return done + ll_gone(s, tids, want);
}

static int ll_sync_threads(int ruleset_fd, char *err, size_t errlen)
{
	pid_t tids[LL_MAX_THREADS];
	int n = ll_list_threads(tids, LL_MAX_THREADS, err, errlen);
	if (n <= 0)
		return n;
	struct sigaction old, sa;
	int sig = ll_pick_signal(&old);
	if (sig < 0)
		return sbx_fail(err, errlen, -EBUSY,
				"Landlock: no free real-time signal to reach the threads");
	/* Heap, not stack: a thread that answers after the timeout must not write a dead frame.
	 * It is leaked in that case. */
	struct ll_sync *s = calloc(1, sizeof(*s));
	if (!s)
		return sbx_fail(err, errlen, -ENOMEM, "out of memory");
	s->ruleset_fd = ruleset_fd;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = ll_sync_handler;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigfillset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
	int want = ll_ask_threads(s, sig, tids, n);
	int done = ll_wait_answers(s, tids, want);
	/* SIG_IGN discards what is still pending, so no late delivery meets SIG_DFL (which would
	 * end the process). */
	struct sigaction ign;
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigaction(sig, &ign, NULL);
	sigaction(sig, &old, NULL);
	int failed = atomic_load(&s->failed);
	if (done >= want)
		free(s);
	if (done < want || failed)
		return sbx_fail(err, errlen, -EPERM,
				"Landlock: %d of the monitor's %d other threads did not take the "
				"restrictions%s",
				want - done + failed, n,
				done < want ? " (they block signals)" : "");
	return 0;
}

/* Returns the ABI version in force (0: no Landlock in this kernel, not an error). */
static int landlock_apply(struct sbx_vm *vm, char *err, size_t errlen)
{
	struct ll l = {.fd = -1, .abi = sbx_confine_landlock_abi()};
	if (l.abi <= 0)
		return 0;
	l.handled = ll_handled(l.abi);
	struct ll_ruleset_attr attr = {.handled_access_fs = l.handled};
	size_t attr_size = sizeof(attr.handled_access_fs);
	if (l.abi >= 4) {
		/* No TCP at all (seccomp refuses sockets already; this is the second wall). */
		attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
		attr_size = sizeof(attr);
	}
	l.fd = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
	if (l.fd < 0) {
		int e = errno;
		return sbx_fail(err, errlen, -e, "Landlock: cannot create a ruleset (ABI %d): %s",
				l.abi, strerror(e));
	}
	int r = ll_rules(vm, &l, err, errlen);
	if (r == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		r = -errno;
		snprintf(err, errlen, "prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(-r));
	}
	if (r == 0 && !vm->opts.confine_thread)
		r = ll_sync_threads(l.fd, err, errlen);
	if (r == 0 && syscall(SYS_landlock_restrict_self, l.fd, 0) < 0) {
		r = -errno;
		snprintf(err, errlen, "Landlock: landlock_restrict_self: %s", strerror(-r));
	}
	close(l.fd);
	if (r < 0)
		return r;
	sbx_log(vm, 2, "Landlock ABI %d, rules: %d", l.abi, l.nrules);
	return l.abi;
}

/* ---- Both ------------------------------------------------------------------------------ */

/* Loads a built filter (and frees it either way): on every thread of the monitor at once
 * (TSYNC: the poller and the watchdog get it too), or on the calling one alone. */
static int seccomp_install(struct sbx_confine_prog *p, int thread_only, char *err, size_t errlen)
{
	struct sock_fprog fp = {.len = (unsigned short)p->n, .filter = p->ins};
	unsigned flags =
	    thread_only ? 0 : SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
	long r = prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	if (r == 0)
		r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &fp);
	/* Before Linux 5.7 TSYNC names the thread that could not follow instead. */
	if (r < 0 && errno == EINVAL && !thread_only)
		r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fp);
	int e = errno;
	free(p->ins);
	*p = (struct sbx_confine_prog){0};
	if (r > 0 || (r < 0 && e == ESRCH)) {
		snprintf(err, errlen,
			 "seccomp: another thread of the monitor has a filter of its own");
		return -ESRCH;
	}
	if (r < 0)
		return sbx_fail(err, errlen, -e, "seccomp: loading the filter: %s", strerror(e));
	return 0;
}

int sbx_confine(struct sbx_vm *vm, char *err, size_t errlen)
{
#if defined(__SANITIZE_ADDRESS__)
	/* LeakSanitizer's exit-time check reads /proc/PID/task and ptraces the process from a
	 * helper it clones: sanitizer builds run unconfined (the gcc build's tests cover it). */
	(void)vm;
	(void)err;
	(void)errlen;
	return 0;
#endif
	struct sbx_confine_prog prog;
	/* Everything that can fail for want of memory or support fails before the first
	 * restriction, so that an error leaves the process as it was. */
	int r = seccomp_build(vm, &prog, err, errlen);
	if (r < 0)
		return r;
	int abi = landlock_apply(vm, err, errlen);
	if (abi < 0) {
		free(prog.ins);
		return abi;
	}
	/* Last, since it forbids what Landlock needed. TSYNC: the poller and the watchdog get the
	 * same filter (and NO_NEW_PRIVS) at once. */
	if ((r = seccomp_install(&prog, vm->opts.confine_thread, err, errlen)) < 0)
		return r;
	sbx_log(vm, 1, "confined: seccomp allowlist (%zu entries); %s", N_OF(sbx_rules),
		abi ? "Landlock on the mount roots" : "no Landlock in this kernel");
	return 0;
}

int sbx_confine_seccomp(struct sbx_vm *vm, char *err, size_t errlen)
{
	struct sbx_confine_prog prog;
	int r = seccomp_build(vm, &prog, err, errlen);
	return r < 0 ? r : seccomp_install(&prog, vm->opts.confine_thread, err, errlen);
}
