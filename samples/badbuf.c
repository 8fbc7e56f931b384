/* badbuf: hands system calls buffers they may not use (text, rodata, read-only and PROT_NONE
 * mappings, a munmap'd hole, low and unmapped addresses, the sandbox kernel's own pages, a range
 * running off the end of a mapping, a bad iovec element) and buffers they may (stack, heap, brk,
 * data, mmap, mprotect'd back to RW), with raw syscall(2), and prints the result of each:
 * EFAULT on Linux for every bad one. `badbuf DIR`: DIR is a directory to stat and list, and
 * stdin must be a regular file of at least 64 bytes (read with read/readv and pread at offset
 * 0). `badbuf sigframe` and `badbuf sigframe-fault`: a signal (SIGUSR1 it sends itself, or
 * SIGFPE from a division by zero) whose frame would go to a read-only alternate stack; Linux
 * kills the program with SIGSEGV. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include "errname.h"

#define PAGE 4096
#define FUTEX_WAIT_PRIVATE 128 /* FUTEX_WAIT | FUTEX_PRIVATE_FLAG (musl has no linux/futex.h) */

static const char ro_data[2 * PAGE] __attribute__((aligned(PAGE))) = {1};
static char rw_data[PAGE] __attribute__((aligned(64))) = {1};
static char bss[PAGE] __attribute__((aligned(64)));

/* The result of a raw system call, never an address or a host-specific number. */
static void show(const char *what, const char *where, long r)
{
	if (r < 0)
		printf("%s %s: %s\n", what, where, errname(errno));
	else
		printf("%s %s: ok\n", what, where);
}

static uint32_t sum(const void *p, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ ((const unsigned char *)p)[i]) * 16777619u;
	return h;
}

static void *map(int prot)
{
	void *p = mmap(NULL, PAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("badbuf: mmap");
		exit(2);
	}
	return p;
}

static const char *dir;
static int dir_fd;

/* Every call that writes into its buffer, on buffer a. */
static void writers(const char *where, void *a)
{
	long p = (long)a;
	struct iovec iov = {a, 4};
	show("read", where, syscall(SYS_read, 0, p, 4));
	show("pread", where, syscall(SYS_pread64, 0, p, 16, 0));
	show("readv", where, syscall(SYS_readv, 0, &iov, 1));
	show("fstat", where, syscall(SYS_fstat, 0, p));
	show("stat", where, syscall(SYS_stat, dir, p));
	show("newfstatat", where, syscall(SYS_newfstatat, AT_FDCWD, dir, p, 0));
	show("statx", where, syscall(SYS_statx, AT_FDCWD, dir, 0, 0x7ff, p));
	show("statfs", where, syscall(SYS_statfs, dir, p));
	show("fstatfs", where, syscall(SYS_fstatfs, 0, p));
	show("getdents64", where, syscall(SYS_getdents64, dir_fd, p, 4096));
	show("readlink", where, syscall(SYS_readlink, "/proc/self/exe", p, 16));
	show("getcwd", where, syscall(SYS_getcwd, p, 4096));
	show("getrandom", where, syscall(SYS_getrandom, p, 4, 0));
	show("clock_gettime", where, syscall(SYS_clock_gettime, CLOCK_MONOTONIC, p));
	show("clock_getres", where, syscall(SYS_clock_getres, CLOCK_MONOTONIC, p));
	show("gettimeofday", where, syscall(SYS_gettimeofday, p, NULL));
	show("time", where, syscall(SYS_time, p));
	show("uname", where, syscall(SYS_uname, p));
	show("sysinfo", where, syscall(SYS_sysinfo, p));
	show("times", where, syscall(SYS_times, p));
	show("getrusage", where, syscall(SYS_getrusage, RUSAGE_SELF, p));
	show("getrlimit", where, syscall(SYS_getrlimit, RLIMIT_NOFILE, p));
	show("prlimit64 old", where, syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, p));
	show("rt_sigaction old", where, syscall(SYS_rt_sigaction, SIGUSR2, NULL, p, 8));
	show("rt_sigprocmask old", where, syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, p, 8));
	show("sigaltstack old", where, syscall(SYS_sigaltstack, NULL, p));
	show("sched_getaffinity", where, syscall(SYS_sched_getaffinity, 0, 128, p));
	show("poll", where, syscall(SYS_poll, p, 1, 0));
	struct timeval zero = {0, 0};
	show("select", where, syscall(SYS_select, 1, p, NULL, NULL, &zero));
	show("arch_prctl", where, syscall(SYS_arch_prctl, 0x1003 /* ARCH_GET_FS */, p));
	show("prctl", where, syscall(SYS_prctl, PR_GET_NAME, p));
}

/* Calls that only read their buffer, on a buffer that cannot be read. */
static void readers(const char *where, void *a)
{
	long p = (long)a;
	struct iovec iov = {a, 4};
	struct timespec ms = {0, 1000000};
	show("write", where, syscall(SYS_write, 1, p, 4));
	show("writev", where, syscall(SYS_writev, 1, &iov, 1));
	show("writev iov", where, syscall(SYS_writev, 1, p, 1));
	show("open", where, syscall(SYS_open, p, O_RDONLY));
	show("access", where, syscall(SYS_access, p, F_OK));
	show("rt_sigaction new", where, syscall(SYS_rt_sigaction, SIGUSR2, p, NULL, 8));
	show("rt_sigprocmask new", where, syscall(SYS_rt_sigprocmask, SIG_BLOCK, p, NULL, 8));
	show("sigaltstack new", where, syscall(SYS_sigaltstack, p, NULL));
	show("nanosleep", where, syscall(SYS_nanosleep, p, NULL));
	show("clock_nanosleep", where, syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, p, NULL));
	show("prlimit64 new", where, syscall(SYS_prlimit64, 0, RLIMIT_CORE, p, NULL));
	show("utimensat", where, syscall(SYS_utimensat, AT_FDCWD, "/nonexistent", p, 0));
	show("select timeout", where, syscall(SYS_select, 0, NULL, NULL, NULL, p));
	show("ppoll timeout", where, syscall(SYS_ppoll, NULL, 0, p, NULL, 8));
	show("futex", where, syscall(SYS_futex, p, FUTEX_WAIT_PRIVATE, 0x12345678, &ms));
}

/* A frame on a read-only alternate stack: Linux kills with SIGSEGV. */
static void on_signal(int sig)
{
	printf("handler ran\n");
	_exit(sig);
}

static volatile int zero, seven = 7;

static int sigframe(int fault)
{
	char *alt = mmap(NULL, 4 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	stack_t ss = {.ss_sp = alt, .ss_size = 4 * PAGE};
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_ONSTACK;
	int sig = fault ? SIGFPE : SIGUSR1;
	if (alt == MAP_FAILED || sigaltstack(&ss, NULL) < 0 || sigaction(sig, &sa, NULL) < 0) {
		printf("setup failed\n");
		return 2;
	}
	printf("raising %s\n", fault ? "SIGFPE" : "SIGUSR1");
	if (fault)
		printf("%d\n", seven / zero);
	else
		raise(SIGUSR1);
	printf("survived\n");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0); /* raw writes to fd 1 go in order with the lines */
	if (argc > 1 && !strncmp(argv[1], "sigframe", 8))
		return sigframe(!strcmp(argv[1], "sigframe-fault"));
	dir = argc > 1 ? argv[1] : ".";
	dir_fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (dir_fd < 0) {
		printf("badbuf: %s: %s\n", dir, errname(errno));
		return 2;
	}

	char *rmap = map(PROT_READ), *nmap = map(PROT_NONE), *pmap = map(PROT_READ | PROT_WRITE);
	strcpy(pmap, "readonly\n");
	mprotect(pmap, PAGE, PROT_READ);
	/* A hole: the middle page of three, unmapped. */
	char *three =
	    mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(three + PAGE, PAGE);
	/* A RW page followed by a PROT_NONE one: the last 8 bytes of the first, and 8 beyond. */
	char *edge =
	    mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mprotect(edge + PAGE, PAGE, PROT_NONE);
	char *straddle = edge + PAGE - 8;

	struct {
		const char *name;
		void *a;
	} unwritable[] =
	    {
		{"text", (void *)main},	       {"rodata", (void *)ro_data},
		{"PROT_READ-mmap", rmap},      {"mprotect-PROT_READ", pmap},
		{"PROT_NONE", nmap},	       {"munmapped", three + PAGE},
		{"0x40", (void *)0x40},	       {"0x13000", (void *)0x13000},
		{"0x14000", (void *)0x14000},  {"0x200000", (void *)0x200000},
		{"4GiB", (void *)0x100000000},
	    },
	  unreadable[] = {
	      {"PROT_NONE", nmap},	     {"munmapped", three + PAGE},
	      {"0x40", (void *)0x40},	     {"0x13000", (void *)0x13000},
	      {"0x14000", (void *)0x14000},  {"0x200000", (void *)0x200000},
	      {"4GiB", (void *)0x100000000},
	  };
	for (size_t i = 0; i < sizeof(unwritable) / sizeof(unwritable[0]); i++)
		writers(unwritable[i].name, unwritable[i].a);
	for (size_t i = 0; i < sizeof(unreadable) / sizeof(unreadable[0]); i++)
		readers(unreadable[i].name, unreadable[i].a);

	/* Reading is fine where writing is not. */
	struct timespec ms = {0, 1000000};
	show("write", "mprotect-PROT_READ", syscall(SYS_write, 1, pmap, 9));
	show("futex", "text", syscall(SYS_futex, (long)main, FUTEX_WAIT_PRIVATE, 0x12345678, &ms));
	show("futex", "rodata", syscall(SYS_futex, ro_data, FUTEX_WAIT_PRIVATE, 0x12345678, &ms));
	show("rt_sigaction new", "rodata", syscall(SYS_rt_sigaction, SIGUSR2, ro_data, NULL, 8));

	/* A bad fd or an fd that cannot seek is reported before a bad buffer. */
	show("read", "bad-fd-and-0x40", syscall(SYS_read, 99, 0x40, 4));
	show("writev", "bad-fd-and-0x40", syscall(SYS_writev, 99, 0x40, 1));
	show("pwrite", "stdout-and-0x40", syscall(SYS_pwrite64, 1, 0x40, 4, 0));

	/* Straddling the end of a mapping: a struct is all or nothing; a read stops at the end. */
	show("fstat", "straddling", syscall(SYS_fstat, 0, straddle));
	show("clock_gettime", "straddling", syscall(SYS_clock_gettime, CLOCK_MONOTONIC, straddle));
	long n = syscall(SYS_pread64, 0, straddle, 16, 0);
	printf("pread straddling: %s\n", n < 0 ? errname(errno) : n == 8 ? "8 bytes" : "other");
	memset(straddle, 'a', 8);
	show("open", "straddling", syscall(SYS_open, straddle, O_RDONLY));
	strcpy(edge + PAGE - 3, "/x");
	show("open", "ends-before-the-edge", syscall(SYS_open, edge + PAGE - 3, O_RDONLY));

	/* Vectors: an element that cannot be used stops the transfer there. */
	char buf[8];
	struct iovec bad_first[2] = {{(void *)0x40, 4}, {buf, 4}};
	struct iovec bad_second[2] = {{buf, 4}, {(void *)0x40, 4}};
	/* (Not a bad second element to stdout: a pipe drops what it took of the first.) */
	struct iovec out[2] = {{(void *)0x40, 4}, {"iov\n", 4}};
	show("readv", "bad-first-element", syscall(SYS_readv, 0, bad_first, 2));
	n = syscall(SYS_readv, 0, bad_second, 2);
	printf("readv bad-second-element: %ld\n", n < 0 ? -errno : n);
	show("writev", "bad-first-element", syscall(SYS_writev, 1, out, 2));

	/* NULL: an error where Linux requires a buffer, fine where it is optional. */
	show("clock_gettime", "NULL", syscall(SYS_clock_gettime, CLOCK_MONOTONIC, NULL));
	show("fstat", "NULL", syscall(SYS_fstat, 0, NULL));
	show("uname", "NULL", syscall(SYS_uname, NULL));
	show("read 0 bytes", "NULL", syscall(SYS_read, 0, NULL, 0));
	show("rt_sigaction", "NULL", syscall(SYS_rt_sigaction, SIGUSR1, NULL, NULL, 8));
	show("rt_sigprocmask", "NULL", syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, NULL, 8));
	show("gettimeofday", "NULL", syscall(SYS_gettimeofday, NULL, NULL));
	show("clock_getres", "NULL", syscall(SYS_clock_getres, CLOCK_MONOTONIC, NULL));
	show("time", "NULL", syscall(SYS_time, NULL));

	/* Buffers that are fine. */
	char stack[PAGE];
	char *heap = malloc(PAGE);
	char *anon = map(PROT_READ | PROT_WRITE);
	char *back = map(PROT_READ | PROT_WRITE);
	mprotect(back, PAGE, PROT_READ);
	mprotect(back, PAGE, PROT_READ | PROT_WRITE);
	/* Two mappings of different protections, side by side: one buffer across both. */
	char *two =
	    mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mprotect(two, PAGE, PROT_READ | PROT_WRITE | PROT_EXEC);
	/* A mapping moved by mremap keeps its protection. */
	char *moved = mremap(map(PROT_READ | PROT_WRITE), PAGE, 64 * PAGE, MREMAP_MAYMOVE);
	char *moved_ro = mremap(map(PROT_READ), PAGE, 64 * PAGE, MREMAP_MAYMOVE);
	uintptr_t cur = (uintptr_t)syscall(SYS_brk, 0);
	char *brk = (char *)((cur + PAGE - 1) & ~(uintptr_t)(PAGE - 1));
	if ((uintptr_t)syscall(SYS_brk, brk + 2 * PAGE) != (uintptr_t)(brk + 2 * PAGE))
		brk = heap; /* no room: the test of the heap stands in */
	struct {
		const char *name;
		char *a;
	} good[] = {
	    {"stack", stack},
	    {"heap", heap},
	    {"brk", brk},
	    {"data", rw_data},
	    {"bss", bss},
	    {"mmap", anon},
	    {"mprotect-back-to-RW", back},
	    {"across-two-mappings", two + PAGE - 8},
	    {"mremap", moved + 63 * PAGE},
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char *a = good[i].a;
		n = syscall(SYS_pread64, 0, a, 16, 0);
		printf("pread %s: %ld %08x\n", good[i].name, n, sum(a, 16));
		show("fstat", good[i].name, syscall(SYS_fstat, 0, a));
		show("clock_gettime", good[i].name, syscall(SYS_clock_gettime, CLOCK_REALTIME, a));
		show("uname", good[i].name, syscall(SYS_uname, a));
		printf("uname sysname: %s\n", a);
		show("getcwd", good[i].name, syscall(SYS_getcwd, a, 4096));
		show("rt_sigaction old", good[i].name,
		     syscall(SYS_rt_sigaction, SIGUSR2, NULL, a, 8));
		struct iovec v[2] = {{a, 3}, {a + 8, 5}};
		n = syscall(SYS_readv, 0, v, 2);
		printf("readv %s: %ld\n", good[i].name, n);
		strcpy(a, "/nonexistent");
		show("open", good[i].name, syscall(SYS_open, a, O_RDONLY));
	}
	show("pread", "mremap-PROT_READ", syscall(SYS_pread64, 0, moved_ro + 63 * PAGE, 16, 0));
	printf("badbuf: done\n");
	return 0;
}
