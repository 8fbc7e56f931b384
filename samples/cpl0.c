/* cpl0 [ud2]: a freestanding guest (no libc) small enough to run with the in-guest kernel at
 * CPL0 under PVM, whose instruction emulator cannot run SSE or rep string instructions. Built
 * with -ffreestanding -nostdlib -mgeneral-regs-only; the build checks the disassembly.
 *
 * Writes "cpl0: hello", calls getpid, reads CLOCK_MONOTONIC twice and checks it did not go
 * back, writes "cpl0: ok" and exits with status 7 through exit_group. "cpl0 ud2" executes ud2
 * after the first line instead, and must die with SIGILL. */

#define SYS_write 1
#define SYS_getpid 39
#define SYS_clock_gettime 228
#define SYS_exit_group 231
#define CLOCK_MONOTONIC 1

struct timespec {
	long tv_sec;
	long tv_nsec;
};

static long sys1(long nr, long a)
{
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a) : "rcx", "r11", "memory");
	return r;
}

static long sys2(long nr, long a, long b)
{
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b) : "rcx", "r11", "memory");
	return r;
}

static long sys3(long nr, long a, long b, long c)
{
	long r;
	__asm__ volatile("syscall"
			 : "=a"(r)
			 : "a"(nr), "D"(a), "S"(b), "d"(c)
			 : "rcx", "r11", "memory");
	return r;
}

static void say(const char *s)
{
	long n = 0;
	while (s[n])
		n++;
	sys3(SYS_write, 1, (long)s, n);
}

static __attribute__((noreturn)) void exit_group(int status)
{
	for (;;)
		sys1(SYS_exit_group, status);
}

static int streq(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

void cpl0_main(long *sp);

/* the entry point: %rsp points at argc, then argv[], as Linux and the loader set it up */
__asm__(".text\n"
	".globl _start\n"
	".type _start, @function\n"
	"_start:\n"
	"	xor %ebp, %ebp\n"
	"	mov %rsp, %rdi\n"
	"	and $-16, %rsp\n"
	"	call cpl0_main\n"
	"	ud2\n");

void cpl0_main(long *sp)
{
	long argc = sp[0];
	char **argv = (char **)(sp + 1);

	say("cpl0: hello\n");
	if (argc > 1 && streq(argv[1], "ud2"))
		__asm__ volatile("ud2");

	long pid = sys1(SYS_getpid, 0);
	if (pid <= 0) {
		say("cpl0: getpid failed\n");
		exit_group(1);
	}

	struct timespec a, b;
	long r1 = sys2(SYS_clock_gettime, CLOCK_MONOTONIC, (long)&a);
	long r2 = sys2(SYS_clock_gettime, CLOCK_MONOTONIC, (long)&b);
	if (r1 != 0 || r2 != 0) {
		say("cpl0: clock_gettime failed\n");
		exit_group(1);
	}
	if (b.tv_sec < a.tv_sec || (b.tv_sec == a.tv_sec && b.tv_nsec < a.tv_nsec)) {
		say("cpl0: clock went backwards\n");
		exit_group(1);
	}
	say("cpl0: ok\n");
	exit_group(7);
}
