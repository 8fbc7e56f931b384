#define _GNU_SOURCE /* dup3 */
/* nofile: RLIMIT_NOFILE as a program sees it: the limit it sets is the one open, dup, dup2, dup3
 * and fcntl(F_DUPFD) obey. Errors print as errno names.
 *   nofile limits   print the initial limits, set soft 42 / hard 64, then check every way to
 *                   get an fd at and past the limit; exit 0 if all went as Linux says
 *   nofile hold     set soft 42 / hard 64, print "limit set", wait (poll, 100 ms at a time)
 *                   until stdin is readable or closed, then fill the fd table: "dup: up to fd
 *                   N, then ENAME", and "cpu N ms, wall N ms": the CPU time and the
 *                   CLOCK_MONOTONIC time since it began to set the limit (for a snapshot taken
 *                   while it waits)
 * The initial limits are the host's natively (ulimit -n), so only the lines after the first
 * are the same natively and in the sandbox. */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "errname.h"

static int failures;

static void check(const char *what, long got, int err, long want, int want_err)
{
	int ok = got == want && (want >= 0 || err == want_err);
	printf("%s: %s%s\n", what, got < 0 ? errname(err) : "ok", ok ? "" : " (unexpected)");
	if (!ok)
		failures++;
}

/* The call is made before errno is read. */
#define expect(what, call, want, want_err)                                                         \
	do {                                                                                       \
		long got_ = (call);                                                                \
		check(what, got_, errno, want, want_err);                                          \
	} while (0)

static int set_limit(rlim_t soft, rlim_t hard)
{
	struct rlimit r = {.rlim_cur = soft, .rlim_max = hard};
	return setrlimit(RLIMIT_NOFILE, &r);
}

/* dup(0) until it fails: the highest fd it gave and its error. Returns that fd. */
static int fill(void)
{
	int last = -1, fd;
	while ((fd = dup(0)) >= 0)
		last = fd;
	printf("dup: up to fd %d, then %s\n", last, errname(errno));
	return last;
}

static int limits(void)
{
	struct rlimit r;
	getrlimit(RLIMIT_NOFILE, &r);
	printf("initial soft %llu hard %llu\n", (unsigned long long)r.rlim_cur,
	       (unsigned long long)r.rlim_max);
	expect("setrlimit 42/64", set_limit(42, 64), 0, 0);
	getrlimit(RLIMIT_NOFILE, &r);
	printf("getrlimit: %llu/%llu\n", (unsigned long long)r.rlim_cur,
	       (unsigned long long)r.rlim_max);
	/* prlimit64 with the same buffer for new and old: old is the limit before. */
	r.rlim_cur = 40;
	r.rlim_max = 64;
	long e = syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &r, &r);
	expect("prlimit64 40/64", e, 0, 0);
	printf("prlimit64 old: %llu/%llu\n", (unsigned long long)r.rlim_cur,
	       (unsigned long long)r.rlim_max);
	expect("setrlimit 42/64 again", set_limit(42, 64), 0, 0);
	expect("setrlimit soft above hard", set_limit(65, 64), -1, EINVAL);
	int last = fill();
	if (last != 41)
		failures++;
	expect("dup2 to the limit", dup2(0, 42), -1, EBADF);
	expect("dup3 past the limit", dup3(0, 50, O_CLOEXEC), -1, EBADF);
	expect("F_DUPFD from the limit", fcntl(0, F_DUPFD, 42), -1, EINVAL);
	expect("F_DUPFD with all taken", fcntl(0, F_DUPFD, 5), -1, EMFILE);
	expect("open with all taken", open("/", O_RDONLY | O_DIRECTORY), -1, EMFILE);
	close(41);
	expect("dup2 just below the limit", dup2(0, 41), 41, 0);
	/* Lowering the limit leaves the fds above it open. */
	expect("setrlimit 10/64", set_limit(10, 64), 0, 0);
	expect("fd 41 after lowering", fcntl(41, F_GETFD), 0, 0);
	close(20);
	expect("dup2 to a free fd above the limit", dup2(0, 20), -1, EBADF);
	for (int fd = 3; fd <= 41; fd++)
		close(fd);
	expect("dup under the lower limit", dup(0), 3, 0);
	close(3);
	/* Raising the hard limit again takes CAP_SYS_RESOURCE: ok or EPERM, as natively. */
	expect("setrlimit 10/50", set_limit(10, 50), 0, 0);
	errno = 0;
	long raised = set_limit(10, 64);
	printf("raise hard 50 -> 64: %s\n", raised == 0 ? "ok" : errname(errno));
	return failures ? 1 : 0;
}

static long ms(clockid_t c)
{
	struct timespec t;
	clock_gettime(c, &t);
	return (long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int hold(void)
{
	long start = ms(CLOCK_MONOTONIC), cpu0 = ms(CLOCK_PROCESS_CPUTIME_ID);
	if (set_limit(42, 64) != 0) {
		printf("setrlimit: %s\n", errname(errno));
		return 1;
	}
	printf("limit set\n");
	fflush(stdout);
	struct pollfd p = {.fd = 0, .events = POLLIN};
	while (poll(&p, 1, 100) == 0)
		;
	int last = fill();
	printf("cpu %ld ms, wall %ld ms\n", ms(CLOCK_PROCESS_CPUTIME_ID) - cpu0,
	       ms(CLOCK_MONOTONIC) - start);
	return last == 41 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "limits") == 0)
		return limits();
	if (argc == 2 && strcmp(argv[1], "hold") == 0)
		return hold();
	fprintf(stderr, "usage: nofile limits|hold\n");
	return 2;
}
