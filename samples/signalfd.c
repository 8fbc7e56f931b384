/* signalfd as event loops and util-linux's `script` use it: blocked signals read as
 * struct signalfd_siginfo, poll, epoll and a blocking read woken by a signal another process
 * sends (a child's SIGCHLD, a kill), signals pending before the signalfd was made, a new
 * mask, a fork's child seeing its own signals only, and Linux's errors. Prints what is the
 * same natively and in the sandbox (no pids). tests/monitor/test_e2e.c compares. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *err(int e)
{
	return e == EAGAIN ? "EAGAIN" : e == EINVAL ? "EINVAL" : e == EBADF ? "EBADF" : strerror(e);
}

static int readable(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

static void take(const char *what, int fd, pid_t from)
{
	struct signalfd_siginfo si[4];
	ssize_t n = read(fd, si, sizeof(si));
	if (n < 0) {
		printf("%s: %s\n", what, err(errno));
		return;
	}
	printf("%s: %zd bytes:", what, n);
	for (ssize_t i = 0; i < n / (ssize_t)sizeof(si[0]); i++)
		printf(" %s code %d%s status %d", strsignal((int)si[i].ssi_signo), si[i].ssi_code,
		       from && (pid_t)si[i].ssi_pid == from ? " from the expected pid"
							    : (si[i].ssi_pid ? "" : " no pid"),
		       si[i].ssi_status);
	printf("\n");
}

/* A child that sends sig to its parent after a while, then waits until hold[1] closes, so
 * that its SIGCHLD comes only then. */
static pid_t killer(int sig, int hold[2])
{
	pid_t parent = getpid();
	pipe(hold);
	pid_t c = fork();
	if (c == 0) {
		close(hold[1]);
		usleep(200000);
		kill(parent, sig);
		char b;
		read(hold[0], &b, 1);
		_exit(0);
	}
	close(hold[0]);
	return c;
}

static void bench_line(const char *op, int n, const struct timespec *a, const struct timespec *b)
{
	double ns = (double)(b->tv_sec - a->tv_sec) * 1e9 + (double)(b->tv_nsec - a->tv_nsec);
	fprintf(stderr, "%s %d %.0f\n", op, n, ns / n);
}

/* bench N: N raise + read of a signalfd ("signalfd_self N ns" each, on stderr), then N
 * signals from a child, each waited for by poll on the signalfd and read, the child sending
 * the next once told through a pipe ("signalfd_wake N ns": a round trip). */
static int bench(int n)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int fd = signalfd(-1, &set, 0);
	struct signalfd_siginfo si;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < n; i++)
		if (raise(SIGUSR1) != 0 || read(fd, &si, sizeof(si)) != sizeof(si))
			return 1;
	clock_gettime(CLOCK_MONOTONIC, &b);
	bench_line("signalfd_self", n, &a, &b);
	int go[2];
	pipe(go);
	pid_t parent = getpid(), c = fork();
	if (c == 0) {
		char t;
		for (int i = 0; i < n; i++)
			if (read(go[0], &t, 1) != 1 || kill(parent, SIGUSR1) != 0)
				_exit(1);
		_exit(0);
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < n; i++) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (write(go[1], "g", 1) != 1 || poll(&p, 1, 10000) != 1 ||
		    read(fd, &si, sizeof(si)) != sizeof(si))
			return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	bench_line("signalfd_wake", n, &a, &b);
	int st;
	waitpid(c, &st, 0);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "bench") == 0)
		return bench(atoi(argv[2]) > 0 ? atoi(argv[2]) : 2000);
	setvbuf(stdout, NULL, _IOLBF, 0);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sigdelset(&set, SIGUSR2);
	int fd = signalfd(-1, &set, SFD_CLOEXEC);
	int nb = signalfd(-1, &set, SFD_NONBLOCK);
	char link[64] = "";
	char path[32];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t l = readlink(path, link, sizeof(link) - 1);
	link[l > 0 ? l : 0] = 0;
	printf("made: %s, %s; readable now: %d\n", fd >= 0 ? "yes" : err(errno), link,
	       readable(fd, 0));
	printf("nonblocking read, none: ");
	take("", nb, 0);
	char small[64];
	printf("short buffer: %s\n", read(fd, small, sizeof(small)) < 0 ? err(errno) : "read");
	printf("bad flags: %s\n", signalfd(-1, &set, 0x4) < 0 ? err(errno) : "made");
	printf("not a signalfd: %s\n", signalfd(0, &set, 0) < 0 ? err(errno) : "changed");

	raise(SIGUSR1);
	printf("after raise: readable %d\n", readable(fd, 1000));
	take("raise", fd, getpid());
	printf("after the read: readable %d\n", readable(fd, 0));

	/* Pending before the mask covered it: readable once it does. */
	kill(getpid(), SIGUSR2);
	printf("USR2 pending, not in the mask: readable %d\n", readable(fd, 0));
	sigaddset(&set, SIGUSR2);
	printf("mask changed: %s, readable %d\n",
	       signalfd(fd, &set, 0) == fd ? "same fd" : err(errno), readable(fd, 0));
	kill(getpid(), SIGUSR1);
	take("two at once", fd, getpid());

	/* A child's end wakes a poll on the signalfd and a pipe. */
	int p[2];
	pipe(p);
	pid_t c = fork();
	if (c == 0) {
		usleep(200000);
		_exit(5);
	}
	struct pollfd pf[2] = {{.fd = p[0], .events = POLLIN}, {.fd = fd, .events = POLLIN}};
	int r = poll(pf, 2, 20000);
	printf("poll: %d, signalfd %s, pipe %s\n", r, pf[1].revents & POLLIN ? "readable" : "not",
	       pf[0].revents ? "ready" : "quiet");
	take("child ended", fd, c);
	waitpid(c, NULL, 0);

	/* epoll, woken by a kill from another process. */
	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 7}, out;
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	int hold[2];
	c = killer(SIGUSR1, hold);
	r = epoll_wait(ep, &out, 1, 20000);
	printf("epoll: %d, data %u\n", r, r == 1 ? out.data.u32 : 0);
	take("kill from a child", fd, c);
	close(hold[1]);
	waitpid(c, NULL, 0);
	take("its SIGCHLD", fd, c);

	/* A blocking read, woken by a child's kill. */
	c = killer(SIGUSR2, hold);
	take("blocking read", fd, c);
	close(hold[1]);
	waitpid(c, NULL, 0);
	take("then its SIGCHLD", fd, c);

	/* A fork's child reads its own signals, not its parent's. */
	raise(SIGUSR1);
	c = fork();
	if (c == 0) {
		printf("child: readable %d (the parent's USR1 is the parent's)\n", readable(fd, 0));
		raise(SIGUSR2);
		printf("child: after its own raise, readable %d\n", readable(fd, 1000));
		take("child reads", fd, getpid());
		_exit(0);
	}
	waitpid(c, NULL, 0);
	take("parent reads", fd, 0);
	return 0;
}
