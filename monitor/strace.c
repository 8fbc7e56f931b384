/* --strace: one strace-style line per guest syscall, printed after it returned. Arguments are
 * read from guest memory here, for display only; escaping keeps guest bytes off the terminal. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vm.h"

/* Argument kinds: d int, u unsigned, x hex, p pointer, s path string, D dirfd,
 * w write buffer (length in the next argument), r read buffer (length = return value). */
static const struct {
	const char *name;
	const char *args;
} sbx_sys[SBX_MAX_SYSCALL] = {
    [0] = {"read", "dru"},
    [1] = {"write", "dwu"},
    [2] = {"open", "sxx"},
    [3] = {"close", "d"},
    [4] = {"stat", "sp"},
    [5] = {"fstat", "dp"},
    [6] = {"lstat", "sp"},
    [7] = {"poll", "pdd"},
    [8] = {"lseek", "ddd"},
    [9] = {"mmap", "pxxxdx"},
    [10] = {"mprotect", "pxx"},
    [11] = {"munmap", "px"},
    [12] = {"brk", "p"},
    [13] = {"rt_sigaction", "dppu"},
    [14] = {"rt_sigprocmask", "dppu"},
    [15] = {"rt_sigreturn", ""},
    [16] = {"ioctl", "dxp"},
    [17] = {"pread64", "drud"},
    [18] = {"pwrite64", "dwud"},
    [19] = {"readv", "dpd"},
    [20] = {"writev", "dpd"},
    [21] = {"access", "sx"},
    [22] = {"pipe", "p"},
    [23] = {"select", "dpppp"},
    [24] = {"sched_yield", ""},
    [25] = {"mremap", "pxxxp"},
    [28] = {"madvise", "pxd"},
    [32] = {"dup", "d"},
    [33] = {"dup2", "dd"},
    [35] = {"nanosleep", "pp"},
    [39] = {"getpid", ""},
    [41] = {"socket", "ddd"},
    [42] = {"connect", "dpd"},
    [56] = {"clone", "xpppp"},
    [57] = {"fork", ""},
    [58] = {"vfork", ""},
    [59] = {"execve", "spp"},
    [60] = {"exit", "d"},
    [61] = {"wait4", "dpdp"},
    [62] = {"kill", "dd"},
    [63] = {"uname", "p"},
    [72] = {"fcntl", "ddx"},
    [73] = {"flock", "dd"},
    [74] = {"fsync", "d"},
    [75] = {"fdatasync", "d"},
    [76] = {"truncate", "sd"},
    [77] = {"ftruncate", "dd"},
    [78] = {"getdents", "dpu"},
    [79] = {"getcwd", "pu"},
    [80] = {"chdir", "s"},
    [81] = {"fchdir", "d"},
    [82] = {"rename", "ss"},
    [83] = {"mkdir", "sx"},
    [84] = {"rmdir", "s"},
    [85] = {"creat", "sx"},
    [86] = {"link", "ss"},
    [87] = {"unlink", "s"},
    [88] = {"symlink", "ss"},
    [89] = {"readlink", "spu"},
    [90] = {"chmod", "sx"},
    [91] = {"fchmod", "dx"},
    [92] = {"chown", "sdd"},
    [95] = {"umask", "x"},
    [96] = {"gettimeofday", "pp"},
    [97] = {"getrlimit", "dp"},
    [98] = {"getrusage", "dp"},
    [99] = {"sysinfo", "p"},
    [100] = {"times", "p"},
    [101] = {"ptrace", "dddp"},
    [102] = {"getuid", ""},
    [104] = {"getgid", ""},
    [107] = {"geteuid", ""},
    [108] = {"getegid", ""},
    [110] = {"getppid", ""},
    [111] = {"getpgrp", ""},
    [115] = {"getgroups", "dp"},
    [131] = {"sigaltstack", "pp"},
    [137] = {"statfs", "sp"},
    [138] = {"fstatfs", "dp"},
    [157] = {"prctl", "dxxxx"},
    [158] = {"arch_prctl", "xp"},
    [186] = {"gettid", ""},
    [200] = {"tkill", "dd"},
    [201] = {"time", "p"},
    [202] = {"futex", "pdxpp"},
    [204] = {"sched_getaffinity", "dup"},
    [217] = {"getdents64", "dpu"},
    [218] = {"set_tid_address", "p"},
    [228] = {"clock_gettime", "dp"},
    [229] = {"clock_getres", "dp"},
    [230] = {"clock_nanosleep", "dxpp"},
    [231] = {"exit_group", "d"},
    [232] = {"epoll_wait", "dpdd"},
    [234] = {"tgkill", "ddd"},
    [257] = {"openat", "Dsxx"},
    [258] = {"mkdirat", "Dsx"},
    [262] = {"newfstatat", "Dspx"},
    [263] = {"unlinkat", "Dsx"},
    [264] = {"renameat", "DsDs"},
    [267] = {"readlinkat", "Dspu"},
    [269] = {"faccessat", "Dsx"},
    [270] = {"pselect6", "dpppp"},
    [271] = {"ppoll", "pdpp"},
    [273] = {"set_robust_list", "pu"},
    [281] = {"epoll_pwait", "dpddp"},
    [290] = {"eventfd2", "ux"},
    [291] = {"epoll_create1", "x"},
    [292] = {"dup3", "ddx"},
    [293] = {"pipe2", "px"},
    [302] = {"prlimit64", "ddpp"},
    [316] = {"renameat2", "DsDsx"},
    [318] = {"getrandom", "pux"},
    [319] = {"memfd_create", "sx"},
    [322] = {"execveat", "Dsppx"},
    [332] = {"statx", "Dsxxp"},
    [334] = {"rseq", "puxx"},
    [425] = {"io_uring_setup", "up"},
    [435] = {"clone3", "pu"},
    [439] = {"faccessat2", "Dsxx"},
};

const char *sbx_syscall_name(uint64_t nr)
{
	return nr < SBX_MAX_SYSCALL ? sbx_sys[nr].name : NULL;
}

static size_t put_escaped(char *out, size_t cap, const uint8_t *s, size_t n, int stop_at_nul)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 5 < cap; i++) {
		uint8_t c = s[i];
		if (stop_at_nul && !c)
			break;
		if (c == '"' || c == '\\')
			o += (size_t)snprintf(out + o, cap - o, "\\%c", c);
		else if (c == '\n')
			o += (size_t)snprintf(out + o, cap - o, "\\n");
		else if (isprint(c))
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
	}
	out[o] = 0;
	return o;
}

static void fmt_buf(struct sbx_vm *vm, char *out, size_t cap, uint64_t addr, uint64_t len,
		    int string)
{
	uint64_t show = len > 32 ? 32 : len;
	const uint8_t *p = string ? NULL : sbx_gptr(vm, addr, show);
	if (string) {
		/* A path: up to 256 bytes or the end of RAM, whichever comes first. */
		uint64_t n = 256;
		if (addr < vm->mem_size && vm->mem_size - addr < n)
			n = vm->mem_size - addr;
		p = sbx_gptr(vm, addr, n);
		show = n;
	}
	if (!p) {
		snprintf(out, cap, "0x%llx", (unsigned long long)addr);
		return;
	}
	char esc[300];
	put_escaped(esc, sizeof(esc), p, show, string);
	snprintf(out, cap, "\"%s\"%s", esc, (!string && len > show) ? "..." : "");
}

void sbx_strace(struct sbx_vm *vm, uint64_t nr, int64_t ret, const uint64_t a[6])
{
	char line[1024], arg[400];
	const char *name = sbx_syscall_name(nr);
	const char *kinds = name ? sbx_sys[nr].args : "xxxxxx";
	size_t o = 0;
	if (name)
		o += (size_t)snprintf(line, sizeof(line), "%s(", name);
	else
		o += (size_t)snprintf(line, sizeof(line), "syscall_%llu(", (unsigned long long)nr);
	for (int i = 0; kinds[i] && i < 6 && o < sizeof(line); i++) {
		uint64_t v = a[i];
		switch (kinds[i]) {
		case 'd':
			snprintf(arg, sizeof(arg), "%lld", (long long)(int32_t)v);
			break;
		case 'D':
			if ((int32_t)v == SBX_AT_FDCWD)
				snprintf(arg, sizeof(arg), "AT_FDCWD");
			else
				snprintf(arg, sizeof(arg), "%d", (int32_t)v);
			break;
		case 'u':
			snprintf(arg, sizeof(arg), "%llu", (unsigned long long)v);
			break;
		case 's':
			fmt_buf(vm, arg, sizeof(arg), v, 0, 1);
			break;
		case 'w':
			fmt_buf(vm, arg, sizeof(arg), v, i < 5 ? a[i + 1] : 0, 0);
			break;
		case 'r':
			if (ret >= 0)
				fmt_buf(vm, arg, sizeof(arg), v, (uint64_t)ret, 0);
			else
				snprintf(arg, sizeof(arg), "0x%llx", (unsigned long long)v);
			break;
		case 'p':
			if (v)
				snprintf(arg, sizeof(arg), "0x%llx", (unsigned long long)v);
			else
				snprintf(arg, sizeof(arg), "NULL");
			break;
		default:
			snprintf(arg, sizeof(arg), "0x%llx", (unsigned long long)v);
		}
		o += (size_t)snprintf(line + o, sizeof(line) - o, "%s%s", i ? ", " : "", arg);
	}
	if (o >= sizeof(line))
		o = sizeof(line) - 1;
	if (nr == 60 || nr == 231)
		snprintf(line + o, sizeof(line) - o, ") = ?");
	else if (ret < 0 && ret > -4096)
		snprintf(line + o, sizeof(line) - o, ") = -1 %s (%s)",
			 strerrorname_np((int)-ret) ? strerrorname_np((int)-ret) : "E?",
			 strerror((int)-ret));
	else if (nr == 9 || nr == 12 || nr == 25)
		snprintf(line + o, sizeof(line) - o, ") = 0x%llx", (unsigned long long)ret);
	else
		snprintf(line + o, sizeof(line) - o, ") = %lld", (long long)ret);
	fprintf(vm->cfg.log, "[sandbox] %s\n", line);
}
