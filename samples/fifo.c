/* fifo DIR: named pipes as scripts and programs use them, between processes and threads. Each
 * step prints what it saw; the output is the same whoever comes first, so natively and in the
 * sandbox it must be the same (tests/monitor/test_e2e.c). DIR must exist and be writable; the
 * FIFOs made there are removed at the end.
 *   - mkfifo and mknod: a FIFO, a regular file, a socket file
 *   (fifo DIR device: mknod of devices, EPERM in the sandbox; natively root may make them)
 *   - the writer opens first, or the reader does: each open waits for the other end
 *   - two FIFOs opened in crossing order by two processes (a request and a reply channel)
 *   - O_NONBLOCK: a writer with no reader is ENXIO, a reader opens at once; O_RDWR never waits
 *   - a signal cuts a waiting open short (EINTR), or it is made again (SA_RESTART)
 *   - two threads of one process meet through a FIFO
 * fifo DIR bench N: round trips through two FIFOs opened in crossing order, timed (on stderr). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "errname.h"

static char a[512], b[512], c[512];

static void show(const char *what, long r)
{
	printf("%s: %s\n", what, r < 0 ? errname(errno) : "ok");
	fflush(stdout);
}

static void nap(long ms)
{
	struct timespec t = {ms / 1000, (ms % 1000) * 1000000};
	while (nanosleep(&t, &t) < 0 && errno == EINTR)
		;
}

static const char *type(const char *p)
{
	struct stat st;
	if (lstat(p, &st) < 0)
		return errname(errno);
	return S_ISFIFO(st.st_mode)   ? "fifo"
	       : S_ISREG(st.st_mode)  ? "regular"
	       : S_ISSOCK(st.st_mode) ? "socket"
				      : "other";
}

/* What one read gives: its bytes, EOF, or the error. */
static void show_read(const char *what, int fd)
{
	char buf[64];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		printf("%s: %s\n", what, errname(errno));
	else if (n == 0)
		printf("%s: end of file\n", what);
	else
		printf("%s: %.*s\n", what, (int)n, buf);
	fflush(stdout);
}

static int reap(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void make(void)
{
	char p[600];
	show("mkfifo", mkfifo(a, 0600));
	printf("type: %s\n", type(a));
	show("mkfifo again", mkfifo(a, 0600));
	snprintf(p, sizeof(p), "%s.reg", a);
	show("mknod regular", mknod(p, S_IFREG | 0600, 0));
	printf("type: %s\n", type(p));
	unlink(p);
	snprintf(p, sizeof(p), "%s.sock", a);
	show("mknod socket", mknod(p, S_IFSOCK | 0600, 0));
	printf("type: %s\n", type(p));
	unlink(p);
	show("mkfifo in a missing directory", mkfifo("/nonexistent-dir/f", 0600));
}

/* Only in the sandbox: natively root may make a device node. */
static int device(void)
{
	char p[600];
	snprintf(p, sizeof(p), "%s.dev", a);
	show("mknod device", mknod(p, S_IFCHR | 0600, makedev(1, 3)));
	show("mknod block device", mknod(p, S_IFBLK | 0600, makedev(7, 0)));
	printf("type: %s\n", type(p));
	return 0;
}

/* A child that opens `path` with flags after ms, writes msg (if any), and ends. */
static pid_t child_opens(const char *path, int flags, long ms, const char *msg)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		nap(ms);
		int fd = open(path, flags);
		if (fd < 0)
			_exit(10);
		if (msg && write(fd, msg, strlen(msg)) != (ssize_t)strlen(msg))
			_exit(11);
		_exit(0);
	}
	return pid;
}

static void orders(void)
{
	/* The writer waits in its open until the reader comes. */
	pid_t pid = child_opens(a, O_WRONLY, 0, "writer first");
	nap(200);
	int fd = open(a, O_RDONLY);
	show("open for reading, a writer waiting", fd);
	show_read("read", fd);
	show_read("read again", fd);
	close(fd);
	printf("writer: %d\n", reap(pid));
	/* The reader waits in its open until the writer comes. */
	pid = child_opens(a, O_WRONLY, 200, "reader first");
	fd = open(a, O_RDONLY);
	show("open for reading, then a writer", fd);
	show_read("read", fd);
	close(fd);
	printf("writer: %d\n", reap(pid));
	/* A reader that comes first and a writer that writes nothing: the open still returns. */
	pid = child_opens(a, O_WRONLY, 200, NULL);
	fd = open(a, O_RDONLY);
	show("open for reading, a silent writer", fd);
	show_read("read", fd);
	close(fd);
	printf("writer: %d\n", reap(pid));
	/* The reader comes first, the writer waits in its open for it. */
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		nap(200);
		int r = open(a, O_RDONLY);
		char buf[16];
		_exit(r < 0 ? 10 : read(r, buf, sizeof(buf)) == 6 ? 0 : 11);
	}
	fd = open(a, O_WRONLY);
	show("open for writing, then a reader", fd);
	show("write", write(fd, "to you", 6));
	close(fd);
	printf("reader: %d\n", reap(pid));
}

/* Requests on b, replies on c, each side opening in the order that deadlocks unless an open
 * returns as soon as the other end is there (before anything is written). */
static void crossing(void)
{
	mkfifo(b, 0600);
	mkfifo(c, 0600);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		int req = open(b, O_RDONLY), rep = open(c, O_WRONLY);
		char buf[16];
		ssize_t n = req < 0 || rep < 0 ? -1 : read(req, buf, sizeof(buf));
		_exit(n == 4 && write(rep, "pong", 4) == 4 ? 0 : 10);
	}
	int req = open(b, O_WRONLY);
	int rep = open(c, O_RDONLY);
	show("crossing opens", req < 0 || rep < 0 ? -1 : 0);
	show("request", write(req, "ping", 4));
	show_read("reply", rep);
	close(req);
	close(rep);
	printf("server: %d\n", reap(pid));
	unlink(b);
	unlink(c);
}

static void nonblocking(void)
{
	show("open for writing, O_NONBLOCK, no reader", open(a, O_WRONLY | O_NONBLOCK));
	int r = open(a, O_RDONLY | O_NONBLOCK);
	show("open for reading, O_NONBLOCK, no writer", r);
	show_read("read, no writer", r);
	int w = open(a, O_WRONLY | O_NONBLOCK);
	show("open for writing, O_NONBLOCK, a reader", w);
	show_read("read, a silent writer", r);
	close(w);
	close(r);
	int rw = open(a, O_RDWR);
	show("open for both", rw);
	show("write", write(rw, "self", 4));
	show_read("read", rw);
	close(rw);
}

static volatile sig_atomic_t alarms;
static int alarm_pipe[2] = {-1, -1}; /* the handler says it ran, for a child that waits */

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
	if (alarm_pipe[1] >= 0)
		write(alarm_pipe[1], "a", 1);
}

static void arm(int restart, long ms)
{
	struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = restart ? SA_RESTART : 0};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = {.it_value = {ms / 1000, (ms % 1000) * 1000}};
	setitimer(ITIMER_REAL, &it, NULL);
}

static void signals(void)
{
	alarms = 0;
	arm(0, 100);
	show("open for reading cut by a signal", open(a, O_RDONLY));
	arm(0, 100);
	show("open for writing cut by a signal", open(a, O_WRONLY));
	printf("handler ran: %d\n", alarms);
	alarms = 0;
	/* The writer opens once the handler has run: the open was cut and made again, however
	 * slow the machine. */
	if (pipe(alarm_pipe) < 0)
		return;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		char x;
		close(alarm_pipe[1]);
		int w = read(alarm_pipe[0], &x, 1) == 1 ? open(a, O_WRONLY) : -1;
		_exit(w >= 0 && write(w, "after the signal", 16) == 16 ? 0 : 10);
	}
	arm(1, 100);
	int fd = open(a, O_RDONLY);
	close(alarm_pipe[0]);
	close(alarm_pipe[1]);
	alarm_pipe[0] = alarm_pipe[1] = -1;
	show("open for reading with SA_RESTART", fd);
	printf("handler ran: %s\n", alarms ? "yes" : "no");
	show_read("read", fd);
	close(fd);
	printf("writer: %d\n", reap(pid));
	signal(SIGALRM, SIG_DFL);
}

static void *thread_writes(void *arg)
{
	(void)arg;
	nap(200);
	int fd = open(a, O_WRONLY);
	if (fd >= 0) {
		write(fd, "from a thread", 13);
		close(fd);
	}
	return NULL;
}

static void threads(void)
{
	pthread_t t;
	pthread_create(&t, NULL, thread_writes, NULL);
	int fd = open(a, O_RDONLY);
	show("thread: open for reading", fd);
	show_read("thread: read", fd);
	close(fd);
	pthread_join(t, NULL);
}

/* bench N: N one-byte round trips between two processes over a pair of FIFOs, each opened
 * by both in crossing order ("fifo_pingpong N ns", each, on stderr). */
static int bench(int n)
{
	mkfifo(b, 0600);
	mkfifo(c, 0600);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		int in = open(b, O_RDONLY), out = open(c, O_WRONLY);
		char x;
		for (int i = 0; i < n; i++)
			if (read(in, &x, 1) != 1 || write(out, &x, 1) != 1)
				_exit(1);
		_exit(0);
	}
	int out = open(b, O_WRONLY), in = open(c, O_RDONLY);
	struct timespec t0, t1;
	char x = 'x';
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < n; i++)
		if (write(out, &x, 1) != 1 || read(in, &x, 1) != 1)
			return 1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
	fprintf(stderr, "fifo_pingpong %d %.0f\n", n, ns / n);
	close(out);
	close(in);
	int st;
	waitpid(pid, &st, 0);
	unlink(b);
	unlink(c);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc != 2 && !(argc == 3 && strcmp(argv[2], "device") == 0) &&
	    !(argc == 4 && strcmp(argv[2], "bench") == 0)) {
		fprintf(stderr, "usage: fifo DIR [device | bench N]\n");
		return 2;
	}
	snprintf(a, sizeof(a), "%s/fifo-a", argv[1]);
	snprintf(b, sizeof(b), "%s/fifo-req", argv[1]);
	snprintf(c, sizeof(c), "%s/fifo-rep", argv[1]);
	unlink(a);
	unlink(b);
	unlink(c);
	if (argc == 3) {
		snprintf(a, sizeof(a), "%s/fifo-dev", argv[1]);
		return device();
	}
	if (argc == 4)
		return bench(atoi(argv[3]) > 0 ? atoi(argv[3]) : 2000);
	signal(SIGPIPE, SIG_IGN);
	make();
	orders();
	crossing();
	nonblocking();
	signals();
	threads();
	unlink(a);
	return 0;
}
