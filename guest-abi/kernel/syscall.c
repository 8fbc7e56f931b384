/* The Linux syscall personality: a table from x86-64 syscall numbers to handlers. Anything not
 * in the table returns -ENOSYS and is counted in the boot page for the monitor's summary. */
#include "kernel.h"

static const k_syscall_fn k_table[SBX_MAX_SYSCALL] = {
    [0] = k_sys_read,
    [1] = k_sys_write,
    [2] = k_sys_open,
    [3] = k_sys_close,
    [4] = k_sys_stat,
    [5] = k_sys_fstat,
    [6] = k_sys_lstat,
    [7] = k_sys_poll,
    [8] = k_sys_lseek,
    [9] = k_sys_mmap,
    [10] = k_sys_mprotect,
    [11] = k_sys_munmap,
    [12] = k_sys_brk,
    [13] = k_sys_rt_sigaction,
    [14] = k_sys_rt_sigprocmask,
    [15] = k_sys_rt_sigreturn,
    [16] = k_sys_ioctl,
    [17] = k_sys_pread64,
    [18] = k_sys_pwrite64,
    [19] = k_sys_readv,
    [20] = k_sys_writev,
    [21] = k_sys_access,
    [23] = k_sys_select,
    [24] = k_sys_zero, /* sched_yield: one thread, nothing to yield to */
    [25] = k_sys_mremap,
    [28] = k_sys_madvise,
    [32] = k_sys_dup,
    [33] = k_sys_dup2,
    [35] = k_sys_nanosleep,
    [39] = k_sys_getpid,
    [40] = k_sys_sendfile,
    [60] = k_sys_exit,
    [62] = k_sys_kill,
    [63] = k_sys_uname,
    [72] = k_sys_fcntl,
    [73] = k_sys_zero, /* flock: one process holds every lock */
    [74] = k_sys_fsync,
    [75] = k_sys_fdatasync,
    [76] = k_sys_truncate,
    [77] = k_sys_ftruncate,
    [79] = k_sys_getcwd,
    [80] = k_sys_chdir,
    [81] = k_sys_fchdir,
    [82] = k_sys_rename,
    [83] = k_sys_mkdir,
    [84] = k_sys_rmdir,
    [85] = k_sys_creat,
    [86] = k_sys_link,
    [87] = k_sys_unlink,
    [88] = k_sys_symlink,
    [89] = k_sys_readlink,
    [90] = k_sys_chmod,
    [91] = k_sys_fchmod,
    [92] = k_sys_chown,
    [93] = k_sys_chown,
    [94] = k_sys_chown,
    [95] = k_sys_umask,
    [96] = k_sys_gettimeofday,
    [97] = k_sys_getrlimit,
    [98] = k_sys_getrusage,
    [99] = k_sys_sysinfo,
    [100] = k_sys_times,
    [102] = k_sys_getuid,
    [104] = k_sys_getgid,
    [107] = k_sys_getuid, /* geteuid */
    [108] = k_sys_getgid, /* getegid */
    [109] = k_sys_zero,	  /* setpgid */
    [110] = k_sys_getppid,
    [111] = k_sys_getpgrp,
    [115] = k_sys_getgroups,
    [121] = k_sys_getpgrp, /* getpgid */
    [124] = k_sys_getpgrp, /* getsid */
    [131] = k_sys_sigaltstack,
    [132] = k_sys_utime,
    [137] = k_sys_statfs,
    [138] = k_sys_fstatfs,
    [157] = k_sys_prctl,
    [158] = k_sys_arch_prctl,
    [186] = k_sys_getpid, /* gettid: one thread, tid == pid */
    [200] = k_sys_tkill,
    [201] = k_sys_time,
    [202] = k_sys_futex,
    [204] = k_sys_sched_getaffinity,
    [217] = k_sys_getdents64,
    [218] = k_sys_set_tid_address,
    [221] = k_sys_zero, /* fadvise64: advice only */
    [228] = k_sys_clock_gettime,
    [229] = k_sys_clock_getres,
    [230] = k_sys_clock_nanosleep,
    [231] = k_sys_exit, /* exit_group */
    [234] = k_sys_tgkill,
    [235] = k_sys_utimes,
    [257] = k_sys_openat,
    [258] = k_sys_mkdirat,
    [260] = k_sys_fchownat,
    [261] = k_sys_futimesat,
    [262] = k_sys_newfstatat,
    [263] = k_sys_unlinkat,
    [264] = k_sys_renameat,
    [265] = k_sys_linkat,
    [266] = k_sys_symlinkat,
    [267] = k_sys_readlinkat,
    [268] = k_sys_fchmodat,
    [269] = k_sys_faccessat,
    [270] = k_sys_pselect6,
    [271] = k_sys_ppoll,
    [273] = k_sys_zero, /* set_robust_list: no other thread will ever need it */
    [280] = k_sys_utimensat,
    [292] = k_sys_dup3,
    [302] = k_sys_prlimit64,
    [316] = k_sys_renameat2,
    [318] = k_sys_getrandom,
    [332] = k_sys_statx,
    [334] = k_sys_rseq,
    [439] = k_sys_faccessat, /* faccessat2 */
    [452] = k_sys_fchmodat,  /* fchmodat2 */
};

long k_syscall(uint64_t nr, struct k_frame *f);
long k_syscall(uint64_t nr, struct k_frame *f)
{
	long ret;
	if ((BOOT->flags & SBX_BOOT_STRACE) && (nr == 60 || nr == 231)) {
		/* exit never returns: trace it on the way in. */
		uint64_t args[6] = {f->rdi, f->rsi, f->rdx, f->r10, f->r8, f->r9};
		uint64_t t[3] = {nr, 0, (uint64_t)args};
		k_call(SBX_CALL_TRACE, t, 3);
	}
	if (nr < SBX_MAX_SYSCALL && k_table[nr]) {
		ret = k_table[nr](f);
	} else if (nr == SBX_SYS_EXEC) {
		ret = k_sys_exec(f);
	} else {
		if (nr < SBX_MAX_SYSCALL)
			BOOT->nosys_count[nr]++;
		ret = -ENOSYS;
	}
	if (BOOT->flags & SBX_BOOT_STRACE) {
		uint64_t args[6] = {f->rdi, f->rsi, f->rdx, f->r10, f->r8, f->r9};
		uint64_t t[3] = {nr, (uint64_t)ret, (uint64_t)args};
		k_call(SBX_CALL_TRACE, t, 3);
	}
	return ret;
}
