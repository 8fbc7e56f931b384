/* sysbench: the cost of one system call, measured inside the guest.
 *   sysbench getpid N       raw getpid system call, N times
 *   sysbench clock N        clock_gettime(CLOCK_MONOTONIC), N times
 *   sysbench cpuid N        cpuid leaf 1 (what glibc's start-up asks dozens of times), N times,
 *                           at a site the monitor cannot rewrite (its loop jumps inside it)
 *   sysbench cpuidsite N    the same at a site of glibc's common form, `mov $1, %eax; cpuid`
 *   sysbench write N        write of 4 KiB to fd 1, N times (send stdout to /dev/null)
 *   sysbench pread FILE N   pread of 4 KiB at offset 0 of FILE, N times
 * Prints "OP N ns_per_op" to stderr, timed with CLOCK_MONOTONIC around the loop. */
#include <cpuid.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: sysbench getpid|clock|cpuid|cpuidsite|write N | sysbench pread FILE N\n");
	return 2;
}

int main(int argc, char **argv)
{
	static char buf[4096];
	if (argc < 3)
		return usage();
	const char *op = argv[1];
	int is_pread = strcmp(op, "pread") == 0;
	if (is_pread && argc < 4)
		return usage();
	long n = atol(argv[is_pread ? 3 : 2]);
	if (n <= 0)
		return usage();
	int fd = -1;
	if (is_pread) {
		fd = open(argv[2], O_RDONLY);
		if (fd < 0) {
			perror("sysbench: open");
			return 1;
		}
	}
	memset(buf, 'x', sizeof(buf));

	long long t0 = now_ns();
	if (strcmp(op, "getpid") == 0) {
		for (long i = 0; i < n; i++)
			syscall(SYS_getpid);
	} else if (strcmp(op, "clock") == 0) {
		struct timespec t;
		for (long i = 0; i < n; i++)
			clock_gettime(CLOCK_MONOTONIC, &t);
	} else if (strcmp(op, "cpuid") == 0) {
		unsigned a, b, c, d, sum = 0;
		for (long i = 0; i < n; i++) {
			__cpuid(1, a, b, c, d);
			sum += a ^ b ^ c ^ d;
		}
		if (sum == 1)
			fputc(' ', stderr);
	} else if (strcmp(op, "cpuidsite") == 0) {
		unsigned a, b, c, d, sum = 0;
		for (long i = 0; i < n; i++) {
			__asm__ volatile("mov $1, %%eax\n\tcpuid"
					 : "=a"(a), "=b"(b), "=c"(c), "=d"(d));
			sum += a ^ b ^ c ^ d;
		}
		if (sum == 1)
			fputc(' ', stderr);
	} else if (strcmp(op, "write") == 0) {
		for (long i = 0; i < n; i++)
			if (write(1, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) {
				perror("sysbench: write");
				return 1;
			}
	} else if (is_pread) {
		for (long i = 0; i < n; i++)
			if (pread(fd, buf, sizeof(buf), 0) < 0) {
				perror("sysbench: pread");
				return 1;
			}
	} else {
		return usage();
	}
	long long t1 = now_ns();

	fprintf(stderr, "%s %ld %.1f\n", op, n, (double)(t1 - t0) / (double)n);
	return 0;
}
