/* traceme: a known number of one kind of VM exit, for the exit tracing tests
 * (docs/tracing.md).
 *   traceme write N     N writes of one byte to stdout (one doorbell each with --io-poll off)
 *   traceme getpid N    N raw getpid system calls (PVM traps each one in the kernel, with
 *                       --no-patch; else only the first, which patches the site)
 *   traceme pf N        first touches of N pages 64 KiB apart (a shadow page fault each), in
 *                       a mapping of the same size for every N up to 2048 (linking each 2 MiB
 *                       of a new mapping into the page tables is a shadow page fault too)
 *   traceme trap N      N int3 caught by a SIGTRAP handler (an exception each)
 *   traceme spin MS     compute for MS milliseconds, then exit
 *   traceme fchown N    N fchown(1, -1, -1) (changes nothing: for --strace's names) */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile long traps;

static void on_trap(int sig)
{
	(void)sig;
	traps++;
}

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: traceme write|getpid|pf|trap|spin|fchown N\n");
		return 2;
	}
	long n = atol(argv[2]);
	const char *op = argv[1];
	if (strcmp(op, "write") == 0) {
		for (long i = 0; i < n; i++)
			if (write(1, ".", 1) != 1)
				return 1;
	} else if (strcmp(op, "getpid") == 0) {
		for (long i = 0; i < n; i++)
			syscall(SYS_getpid);
	} else if (strcmp(op, "pf") == 0) {
		const size_t stride = 64 << 10;
		if (n > 2048)
			return 1;
		volatile char *p = mmap(NULL, 2048 * stride, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return 1;
		for (long i = 0; i < n; i++)
			p[(size_t)i * stride] = 1;
	} else if (strcmp(op, "trap") == 0) {
		signal(SIGTRAP, on_trap);
		for (long i = 0; i < n; i++)
			__asm__ volatile("int3");
		if (traps != n)
			return 1;
	} else if (strcmp(op, "spin") == 0) {
		double end = now_ms() + (double)n;
		volatile unsigned long x = 0;
		while (now_ms() < end)
			for (int i = 0; i < 100000; i++)
				x += (unsigned long)i;
		if (x == 1) /* never: x is used, so clang keeps the loop and warns of nothing */
			return 3;
	} else if (strcmp(op, "fchown") == 0) {
		for (long i = 0; i < n; i++)
			if (fchown(1, (uid_t)-1, (gid_t)-1) != 0)
				return 1;
	} else {
		return 2;
	}
	return 0;
}
