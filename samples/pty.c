/* Pseudo-terminals as `script`, `expect` and Python's pty module use them: a pair made with
 * posix_openpt and another with openpty, their names, modes and line discipline, a child in a
 * session of its own with the slave as its controlling terminal (/dev/tty, its foreground
 * group, the signals typed and a new window size send it), and the hangups each end sees.
 * Prints only what is the same natively and in the sandbox (no terminal numbers, no pids).
 * tests/monitor/test_e2e.c runs it both ways and compares. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <utmp.h>

static const char *err(int e)
{
	return e == EIO	     ? "EIO"
	       : e == ENXIO  ? "ENXIO"
	       : e == EAGAIN ? "EAGAIN"
	       : e == ENOTTY ? "ENOTTY"
	       : e == EPERM  ? "EPERM"
	       : e == EBADF  ? "EBADF"
			     : strerror(e);
}

/* n bytes a master read, with \r, \n and other control characters shown. */
static void show_bytes(const char *what, const char *buf, size_t n)
{
	char out[4200];
	size_t o = 0;
	for (size_t i = 0; i < n && o < sizeof(out) - 4; i++) {
		if (buf[i] == '\r')
			o += (size_t)snprintf(out + o, sizeof(out) - o, "\\r");
		else if (buf[i] == '\n')
			o += (size_t)snprintf(out + o, sizeof(out) - o, "\\n");
		else if ((unsigned char)buf[i] < 32)
			o += (size_t)snprintf(out + o, sizeof(out) - o, "^%c", buf[i] + '@');
		else
			out[o++] = buf[i];
	}
	out[o] = 0;
	printf("%s: \"%s\"\n", what, out);
}

/* What the master reads within a while, with \r and \n shown. */
static void show_master(const char *what, int m)
{
	char buf[256];
	struct pollfd p = {.fd = m, .events = POLLIN};
	ssize_t n = 0, got = 0;
	while (poll(&p, 1, 500) == 1 && got < (ssize_t)sizeof(buf) - 1) {
		n = read(m, buf + got, sizeof(buf) - 1 - (size_t)got);
		if (n <= 0)
			break;
		got += n;
		p.revents = 0;
		if (poll(&p, 1, 50) != 1)
			break;
	}
	show_bytes(what, buf, (size_t)got);
}

/* What the master reads until marker and the end of its line (NULL: until EOF or EIO, within
 * 20 s), shown as show_master does. */
static void until(int m, const char *what, const char *marker)
{
	char buf[1024];
	size_t got = 0;
	struct pollfd p = {.fd = m, .events = POLLIN};
	while (got < sizeof(buf) - 1 && poll(&p, 1, 20000) == 1) {
		ssize_t n = read(m, buf + got, sizeof(buf) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		buf[got] = 0;
		const char *at = marker ? strstr(buf, marker) : NULL;
		if (at && strchr(at, '\n'))
			break;
	}
	show_bytes(what, buf, got);
}

static volatile sig_atomic_t got_int, got_winch;
static int hup_fd = -1;
static void on_hup(int s)
{
	(void)s;
	write(hup_fd, "H", 1);
	_exit(9);
}
static void on_int(int s)
{
	(void)s;
	got_int++;
}
static void on_winch(int s)
{
	(void)s;
	got_winch++;
}

/* The child: a session of its own, the slave its controlling terminal and stdio. */
static int child(int m, int s)
{
	close(m);
	setsid();
	int t = open("/dev/tty", O_RDWR);
	printf("child: /dev/tty before TIOCSCTTY: %s\n", t < 0 ? err(errno) : "opened");
	fflush(stdout);
	if (login_tty(s) < 0)
		return 20;
	signal(SIGINT, on_int);
	signal(SIGWINCH, on_winch);
	char line[64];
	snprintf(line, sizeof(line), "tty %s, fg %s, sid %s\n", ttyname(0) ? "named" : "none",
		 tcgetpgrp(0) == getpgrp() ? "mine" : "other",
		 tcgetsid(0) == getsid(0) ? "mine" : "other");
	write(1, line, strlen(line));
	t = open("/dev/tty", O_RDWR);
	struct stat a, b;
	snprintf(line, sizeof(line), "/dev/tty: %s, same terminal %s\n",
		 t < 0 ? err(errno) : "opened",
		 t >= 0 && fstat(t, &a) == 0 && fstat(0, &b) == 0 && a.st_rdev == b.st_rdev ? "yes"
											    : "no");
	write(1, line, strlen(line));
	/* Ready: the parent types ^C, then resizes. No echo meanwhile: the ^C's would race the
	 * handler's output (on Linux too, where the echo is made by a worker thread). */
	struct termios m0, quiet;
	tcgetattr(0, &m0);
	quiet = m0;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	tcsetattr(0, TCSANOW, &quiet);
	write(t, "ready\n", 6);
	for (int i = 0; i < 3000 && !got_int; i++) /* 30 s at most */
		usleep(10000);
	write(1, got_int ? "got SIGINT\n" : "no SIGINT\n", got_int ? 11 : 10);
	for (int i = 0; i < 3000 && !got_winch; i++)
		usleep(10000);
	struct winsize w;
	ioctl(0, TIOCGWINSZ, &w);
	tcsetattr(0, TCSANOW, &m0);
	snprintf(line, sizeof(line), "%s, now %dx%d\n", got_winch ? "got SIGWINCH" : "no SIGWINCH",
		 w.ws_col, w.ws_row);
	write(1, line, strlen(line));
	/* A line typed at the terminal, read in canonical mode. */
	ssize_t n = read(0, line, sizeof(line) - 1);
	line[n > 0 ? n : 0] = 0;
	printf("child read %zd: %s", n, line);
	fflush(stdout);
	return 7;
}

static void bench_line(const char *op, int n, const struct timespec *a, const struct timespec *b)
{
	double ns = (double)(b->tv_sec - a->tv_sec) * 1e9 + (double)(b->tv_nsec - a->tv_nsec);
	fprintf(stderr, "%s %d %.0f\n", op, n, ns / n);
}

/* bench N: N one-byte round trips through a terminal, master to a child echoing on the raw
 * slave and back ("pty_pingpong N ns" each, on stderr), then N terminals made and closed
 * (posix_openpt, unlockpt, the slave's open: "pty_open N ns"). */
static int bench(int n)
{
	int m, s;
	struct termios raw;
	if (openpty(&m, &s, NULL, NULL, NULL) < 0)
		return 1;
	tcgetattr(s, &raw);
	cfmakeraw(&raw);
	tcsetattr(s, TCSANOW, &raw);
	pid_t pid = fork();
	if (pid == 0) {
		close(m);
		char b;
		for (int i = 0; i < n; i++)
			if (read(s, &b, 1) != 1 || write(s, &b, 1) != 1)
				_exit(1);
		_exit(0);
	}
	close(s);
	struct timespec a, b;
	char x = 'x';
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < n; i++)
		if (write(m, &x, 1) != 1 || read(m, &x, 1) != 1)
			return 1;
	clock_gettime(CLOCK_MONOTONIC, &b);
	bench_line("pty_pingpong", n, &a, &b);
	int st;
	waitpid(pid, &st, 0);
	close(m);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < n; i++) {
		int t = posix_openpt(O_RDWR | O_NOCTTY);
		if (t < 0 || unlockpt(t) < 0)
			return 1;
		int u = open(ptsname(t), O_RDWR | O_NOCTTY);
		if (u < 0)
			return 1;
		close(u);
		close(t);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	bench_line("pty_open", n, &a, &b);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "bench") == 0)
		return bench(atoi(argv[2]) > 0 ? atoi(argv[2]) : 2000);
	setvbuf(stdout, NULL, _IOLBF, 0);
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0) {
		printf("posix_openpt: %s\n", err(errno));
		return 1;
	}
	char *name = ptsname(m);
	printf("master: isatty %d, name %s\n", isatty(m),
	       name && !strncmp(name, "/dev/pts/", 9) ? "/dev/pts/N" : "?");
	int s = open(name, O_RDWR | O_NOCTTY);
	printf("slave before unlockpt: %s\n", s < 0 ? err(errno) : "opened");
	if (s >= 0)
		close(s);
	printf("grantpt %d unlockpt %d\n", grantpt(m), unlockpt(m));
	int n = -1;
	ioctl(m, TIOCGPTN, &n);
	printf("TIOCGPTN agrees with the name: %s\n", atoi(name + 9) == n ? "yes" : "no");
	s = open(name, O_RDWR | O_NOCTTY);
	struct stat a, b;
	printf("slave: isatty %d, ttyname %s, char %s, in /dev/pts: ", isatty(s),
	       ttyname(s) && !strcmp(ttyname(s), name) ? "same" : "other",
	       stat(name, &a) == 0 && S_ISCHR(a.st_mode) && major(a.st_rdev) == 136 &&
		       fstat(s, &b) == 0 && a.st_rdev == b.st_rdev
		   ? "136"
		   : "?");
	DIR *d = opendir("/dev/pts");
	struct dirent *de;
	int listed = 0;
	while (d && (de = readdir(d)))
		listed |= !strcmp(de->d_name, name + 9);
	printf("%s\n", listed ? "listed" : "not listed");
	if (d)
		closedir(d);
	printf("TIOCGPTN on the slave: %s\n", ioctl(s, TIOCGPTN, &n) < 0 ? err(errno) : "ok");

	/* The line discipline: output \n -> \r\n, input echoed and given a line at a time. */
	write(s, "hello\n", 6);
	show_master("slave wrote hello\\n, master reads", m);
	write(m, "abc\n", 4);
	char buf[64];
	ssize_t r = read(s, buf, sizeof(buf));
	printf("slave reads %zd\n", r);
	show_master("echo", m);
	struct termios t;
	tcgetattr(s, &t);
	printf("modes: ICANON %d ECHO %d ISIG %d ONLCR %d\n", !!(t.c_lflag & ICANON),
	       !!(t.c_lflag & ECHO), !!(t.c_lflag & ISIG), !!(t.c_oflag & ONLCR));
	struct termios raw = t;
	cfmakeraw(&raw);
	tcsetattr(s, TCSANOW, &raw);
	write(m, "x\003", 2);
	r = read(s, buf, sizeof(buf));
	printf("raw: slave reads %zd bytes, second ^%c\n", r, r == 2 ? buf[1] + '@' : '?');
	write(s, "a\nb", 3);
	show_master("raw output", m);
	tcsetattr(s, TCSANOW, &t);
	int fl = fcntl(m, F_GETFL);
	fcntl(m, F_SETFL, fl | O_NONBLOCK);
	r = read(m, buf, sizeof(buf));
	printf("empty master, O_NONBLOCK: %s\n", r < 0 ? err(errno) : "data");
	fcntl(m, F_SETFL, fl);
	struct winsize w = {.ws_row = 24, .ws_col = 80};
	ioctl(m, TIOCSWINSZ, &w);
	memset(&w, 0, sizeof(w));
	ioctl(s, TIOCGWINSZ, &w);
	printf("window %dx%d\n", w.ws_col, w.ws_row);
	printf("not our terminal: tcgetpgrp %s\n", tcgetpgrp(s) < 0 ? err(errno) : "ok");
	close(s);

	/* openpty, and a child in its own session on the slave. */
	int m2, s2;
	if (openpty(&m2, &s2, NULL, NULL, NULL) < 0) {
		printf("openpty: %s\n", err(errno));
		return 1;
	}
	printf("openpty: %s\n", isatty(s2) && ttyname(s2) ? "ok" : "?");
	pid_t pid = fork();
	if (pid == 0)
		_exit(child(m2, s2));
	close(s2);
	until(m2, "from the child", "ready");
	write(m2, "\003", 1);
	until(m2, "after ^C", "SIGINT");
	w.ws_col = 100;
	w.ws_row = 30;
	ioctl(m2, TIOCSWINSZ, &w);
	until(m2, "after the resize", "now");
	write(m2, "typed line\n", 11);
	until(m2, "the child's last words", NULL);
	int st;
	waitpid(pid, &st, 0);
	printf("child exited %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	r = read(m2, buf, sizeof(buf));
	printf("master after the slave's last close: %zd %s\n", r, r < 0 ? err(errno) : "");
	close(m2);

	/* The master's end hangs the slave up. */
	m = posix_openpt(O_RDWR | O_NOCTTY);
	grantpt(m);
	unlockpt(m);
	s = open(ptsname(m), O_RDWR | O_NOCTTY);
	close(m);
	r = read(s, buf, sizeof(buf));
	printf("slave after the master's close: read %zd", r);
	r = write(s, "x", 1);
	printf(", write %s\n", r < 0 ? err(errno) : "ok");
	close(s);

	/* A session leader whose terminal hangs up gets SIGHUP (and SIGCONT). */
	m = posix_openpt(O_RDWR | O_NOCTTY);
	grantpt(m);
	unlockpt(m);
	char sname[64];
	snprintf(sname, sizeof(sname), "%s", ptsname(m));
	int hup[2];
	pipe(hup);
	pid = fork();
	if (pid == 0) {
		close(m);
		close(hup[0]);
		setsid();
		int t = open(sname, O_RDWR); /* a leader's first terminal: its controlling one */
		signal(SIGHUP, on_hup);
		hup_fd = hup[1];
		write(hup[1], t >= 0 ? "r" : "x", 1);
		for (int i = 0; i < 2000; i++)
			usleep(10000);
		_exit(1);
	}
	close(hup[1]);
	char said[4] = "";
	read(hup[0], said, 1);
	close(m);
	ssize_t got = read(hup[0], said + 1, 2);
	said[1 + (got > 0 ? got : 0)] = 0;
	waitpid(pid, &st, 0);
	printf("the master's close: the leader said \"%s\", exited %d\n", said,
	       WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
	return 0;
}
