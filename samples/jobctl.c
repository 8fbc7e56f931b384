/* Job control between processes as shells and process managers use it: SIGSTOP, SIGTSTP and
 * SIGCONT from another process and a child's raise(SIGSTOP), waitpid with WUNTRACED and
 * WCONTINUED, waitid with WSTOPPED, WCONTINUED and WNOWAIT, SIGCHLD's CLD_STOPPED and
 * CLD_CONTINUED (and none with SA_NOCLDSTOP), a stopped process making no progress (both of
 * its threads), a handled signal and a fatal one held until the SIGCONT, a handled SIGTSTP,
 * /proc's state letter, SIGHUP and SIGCONT to a stopped job its parent's end orphans; on a
 * pseudo-terminal, as a shell sees them, a background job's read (SIGTTIN, or EIO when it
 * ignores it), its write with TOSTOP (SIGTTOU) and ^Z (SIGTSTP).
 * Prints what is the same natively and in the sandbox (no pids). tests/monitor/test_e2e.c
 * compares. `jobctl bench N`: N rounds of SIGSTOP, wait, SIGCONT, wait to a child of two
 * threads ("stop_continue N ns" each, on stderr). */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static const char *signame(int sig)
{
	static const char *const names[] = {
	    [SIGCHLD] = "CHLD", [SIGCONT] = "CONT", [SIGSTOP] = "STOP", [SIGTSTP] = "TSTP",
	    [SIGTERM] = "TERM", [SIGKILL] = "KILL", [SIGTTIN] = "TTIN", [SIGTTOU] = "TTOU"};
	return sig > 0 && sig < (int)(sizeof(names) / sizeof(names[0])) && names[sig] ? names[sig]
										      : "?";
}

static volatile sig_atomic_t chld_code, chld_status, chld_count;

static void on_chld(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	chld_code = si->si_code;
	chld_status = si->si_status;
	chld_count++;
}

static void catch_chld(int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_chld;
	sa.sa_flags = SA_SIGINFO | SA_RESTART | flags;
	sigaction(SIGCHLD, &sa, NULL);
}

static int readable(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, ms) == 1 && (p.revents & (POLLIN | POLLHUP));
}

/* What should come comes within this, on a host however slow or loaded (each wait ends as
 * soon as it comes). */
#define LONG_MS 30000

/* Until the other end closes the pipe, through the signals that cut the read short. */
static void until_closed(int fd)
{
	char c;
	while (read(fd, &c, 1) < 0 && errno == EINTR)
		;
}

/* Whatever the pipe holds now. */
static void drain(int fd)
{
	char buf[4096];
	while (readable(fd, 0) && read(fd, buf, sizeof(buf)) > 0)
		;
}

static const char *status(int st)
{
	static char s[64];
	if (WIFEXITED(st))
		snprintf(s, sizeof(s), "exited %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(s, sizeof(s), "killed by %s", signame(WTERMSIG(st)));
	else if (WIFSTOPPED(st))
		snprintf(s, sizeof(s), "stopped by %s", signame(WSTOPSIG(st)));
	else if (WIFCONTINUED(st))
		snprintf(s, sizeof(s), "continued");
	else
		snprintf(s, sizeof(s), "? %#x", st);
	return s;
}

static void wait_for(const char *what, pid_t pid, int opts)
{
	int st = 0;
	pid_t r = waitpid(pid, &st, opts);
	if (r < 0)
		printf("%s: waitpid: %s\n", what, strerror(errno));
	else if (r == 0)
		printf("%s: nothing to report\n", what);
	else
		printf("%s: %s%s\n", what, status(st), r == pid ? "" : " (another pid)");
}

static char state_of(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return '?';
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : '?';
}

static int out_fd;

static void *ticker(void *arg)
{
	(void)arg;
	for (;;) {
		if (write(out_fd, "t", 1) < 0)
			_exit(3);
		usleep(5000);
	}
	return NULL;
}

/* A child that writes to the pipe every 5 ms from two threads until it is killed. */
static pid_t start_ticking(int *rd)
{
	int p[2];
	if (pipe(p) < 0)
		exit(1);
	pid_t pid = fork();
	if (pid == 0) {
		/* A group of its own, whose parent is in another group of the session: never
		 * orphaned, so that SIGTSTP stops it wherever the test runs. */
		setpgid(0, 0);
		close(p[0]);
		out_fd = p[1];
		pthread_t t;
		pthread_create(&t, NULL, ticker, NULL);
		ticker(NULL);
	}
	close(p[1]);
	*rd = p[0];
	return pid;
}

static void stop_and_go(void)
{
	int rd;
	pid_t pid = start_ticking(&rd);
	if (!readable(rd, LONG_MS))
		printf("ticking: never started\n");
	kill(pid, SIGSTOP);
	wait_for("SIGSTOP", pid, WUNTRACED);
	printf("state while stopped: %c\n", state_of(pid));
	drain(rd);
	printf("ticks while stopped: %s\n", readable(rd, 200) ? "yes" : "none");
	kill(pid, SIGSTOP);
	wait_for("a second SIGSTOP", pid, WUNTRACED | WNOHANG);
	kill(pid, SIGCONT);
	wait_for("SIGCONT", pid, WCONTINUED);
	printf("ticks after SIGCONT: %s\n", readable(rd, LONG_MS) ? "yes" : "none");
	wait_for("SIGCONT told once", pid, WCONTINUED | WNOHANG);
	kill(pid, SIGTSTP);
	wait_for("SIGTSTP", pid, WUNTRACED);
	/* A fatal signal waits for the SIGCONT, as on Linux (a shell's kill sends both). */
	kill(pid, SIGTERM);
	wait_for("SIGTERM while stopped", pid, WNOHANG);
	kill(pid, SIGCONT);
	wait_for("then SIGCONT", pid, 0);
	close(rd);
}

static void self_stop(void)
{
	int p[2], go[2];
	if (pipe(p) < 0 || pipe(go) < 0)
		exit(1);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		close(go[1]);
		raise(SIGSTOP);
		if (write(p[1], "after", 5) < 0)
			_exit(3);
		/* Its end waits for the parent, whose wait for the continue would otherwise race
		 * with it (an ended child is told first, on Linux too). */
		until_closed(go[0]);
		_exit(7);
	}
	close(p[1]);
	close(go[0]);
	wait_for("raise(SIGSTOP)", pid, WUNTRACED);
	printf("wrote before SIGCONT: %s\n", readable(p[0], 200) ? "yes" : "no");
	kill(pid, SIGCONT);
	wait_for("then SIGCONT", pid, WUNTRACED | WCONTINUED);
	close(go[1]);
	wait_for("then its end", pid, 0);
	char buf[8] = {0};
	printf("it wrote: %s\n", read(p[0], buf, sizeof(buf) - 1) > 0 ? buf : "nothing");
	close(p[0]);
}

static int said_fd;

/* A handled signal says its name on said_fd, in four bytes. */
static void say_signal(int sig)
{
	const char *name = sig == SIGUSR1 ? "usr1" : sig == SIGTSTP ? "tstp" : "hup ";
	if (write(said_fd, name, 4) < 0)
		_exit(3);
}

/* A handled signal to a stopped process runs once it goes on; a handled SIGTSTP does not
 * stop it. */
static void held_signal(void)
{
	int p[2], go[2];
	if (pipe(p) < 0 || pipe(go) < 0)
		exit(1);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		close(go[1]);
		said_fd = p[1];
		signal(SIGUSR1, say_signal);
		signal(SIGTSTP, say_signal);
		if (write(p[1], "ready", 5) < 0)
			_exit(3);
		until_closed(go[0]);
		_exit(0);
	}
	close(p[1]);
	close(go[0]);
	char buf[16] = {0};
	if (read(p[0], buf, 5) != 5)
		printf("held: no ready\n");
	kill(pid, SIGTSTP);
	memset(buf, 0, sizeof(buf));
	printf("handled SIGTSTP: %s\n",
	       readable(p[0], LONG_MS) && read(p[0], buf, 4) == 4 ? buf : "nothing");
	wait_for("handled SIGTSTP", pid, WUNTRACED | WNOHANG);
	kill(pid, SIGSTOP);
	wait_for("stopped", pid, WUNTRACED);
	kill(pid, SIGUSR1);
	printf("SIGUSR1 handled while stopped: %s\n", readable(p[0], 200) ? "yes" : "no");
	kill(pid, SIGCONT);
	memset(buf, 0, sizeof(buf));
	printf("after SIGCONT: %s\n",
	       readable(p[0], LONG_MS) && read(p[0], buf, 4) == 4 ? buf : "nothing");
	close(go[1]);
	wait_for("its end", pid, 0);
	close(p[0]);
}

/* A stopped job whose group its parent's end orphans gets SIGHUP and SIGCONT. */
static void orphaned(void)
{
	int p[2];
	if (pipe(p) < 0)
		exit(1);
	pid_t c = fork();
	if (c == 0) {
		pid_t g = fork();
		if (g == 0) {
			setpgid(0, 0);
			said_fd = p[1];
			signal(SIGHUP, say_signal);
			raise(SIGSTOP);
			if (write(p[1], "continued", 9) < 0)
				_exit(3);
			_exit(0);
		}
		close(p[1]);
		setpgid(g, g);
		int st;
		waitpid(g, &st, WUNTRACED);
		_exit(WIFSTOPPED(st) ? 0 : 1);
	}
	close(p[1]);
	int st;
	waitpid(c, &st, 0);
	char buf[64];
	size_t got = 0;
	while (got < sizeof(buf) - 1 && readable(p[0], LONG_MS)) {
		ssize_t n = read(p[0], buf + got, sizeof(buf) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	buf[got] = 0;
	printf("orphaned stopped job (its parent %s): %s\n", status(st), got ? buf : "nothing");
	close(p[0]);
}

/* waitid's reports and SIGCHLD's codes, then none with SA_NOCLDSTOP. */
static void reports(void)
{
	int rd;
	catch_chld(0);
	pid_t pid = start_ticking(&rd);
	readable(rd, LONG_MS);
	kill(pid, SIGSTOP);
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	int r = waitid(P_PID, (id_t)pid, &si, WSTOPPED | WNOWAIT);
	printf("waitid WSTOPPED|WNOWAIT: %d code %s status %s\n", r,
	       si.si_code == CLD_STOPPED ? "CLD_STOPPED" : "?", signame(si.si_status));
	memset(&si, 0, sizeof(si));
	r = waitid(P_PID, (id_t)pid, &si, WSTOPPED);
	printf("waitid WSTOPPED again: %d code %s pid %s\n", r,
	       si.si_code == CLD_STOPPED ? "CLD_STOPPED" : "?",
	       si.si_pid == pid ? "right" : "wrong");
	memset(&si, 0, sizeof(si));
	r = waitid(P_PID, (id_t)pid, &si, WSTOPPED | WNOHANG);
	printf("waitid WSTOPPED once more: %d pid %d\n", r, (int)si.si_pid);
	for (int i = 0; i < LONG_MS / 10 && chld_count == 0; i++)
		usleep(10000);
	printf("SIGCHLD: %s %s\n", chld_code == CLD_STOPPED ? "CLD_STOPPED" : "?",
	       signame(chld_status));
	chld_count = 0;
	kill(pid, SIGCONT);
	memset(&si, 0, sizeof(si));
	r = waitid(P_PID, (id_t)pid, &si, WCONTINUED);
	printf("waitid WCONTINUED: %d code %s status %s\n", r,
	       si.si_code == CLD_CONTINUED ? "CLD_CONTINUED" : "?", signame(si.si_status));
	for (int i = 0; i < LONG_MS / 10 && chld_count == 0; i++)
		usleep(10000);
	printf("SIGCHLD: %s %s\n", chld_code == CLD_CONTINUED ? "CLD_CONTINUED" : "?",
	       signame(chld_status));
	/* With SA_NOCLDSTOP a stop and a continue send nothing; the waits still see them. */
	catch_chld(SA_NOCLDSTOP);
	chld_count = 0;
	kill(pid, SIGSTOP);
	wait_for("SA_NOCLDSTOP stop", pid, WUNTRACED);
	kill(pid, SIGCONT);
	wait_for("SA_NOCLDSTOP continue", pid, WCONTINUED);
	usleep(100000);
	printf("SIGCHLD with SA_NOCLDSTOP: %d\n", (int)chld_count);
	kill(pid, SIGKILL);
	wait_for("SIGKILL", pid, 0);
	printf("SIGCHLD for the end: %s\n", chld_count == 1 ? "one" : "not one");
	signal(SIGCHLD, SIG_DFL);
	close(rd);
}

/* ---- A terminal's job control: a session leader (a shell) and a job in a group of its own. */

static int say_fd;

static void say(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (write(say_fd, line, (size_t)n) < 0)
		_exit(3);
}

static void wait_say(const char *what, pid_t pid, int opts)
{
	int st = 0;
	pid_t r = waitpid(pid, &st, opts);
	say("%s: %s\n", what, r == pid ? status(st) : strerror(errno));
}

/* The job: reads orders from a pipe, and does each on the terminal. */
static int job(int tty, int orders, int ack)
{
	char c, buf[64];
	while (read(orders, &c, 1) == 1) {
		ssize_t n;
		switch (c) {
		case 'r':
			n = read(tty, buf, sizeof(buf) - 1);
			buf[n > 0 ? n : 0] = 0;
			if (n < 0)
				say("job's read: %s\n", errno == EIO ? "EIO" : strerror(errno));
			else
				say("job's read: %zd: %s", n, buf);
			break;
		case 'w':
			n = write(tty, "out\n", 4);
			say("job's write: %zd\n", n);
			break;
		case 'i':
			signal(SIGTTIN, SIG_IGN);
			say("job ignores SIGTTIN\n");
			break;
		case 'x':
			return 0;
		}
		if (write(ack, "k", 1) < 0)
			return 3;
	}
	return 1;
}

static void order(int fd, char c)
{
	if (write(fd, &c, 1) < 0)
		_exit(3);
}

static void acked(int fd)
{
	char c;
	if (read(fd, &c, 1) != 1)
		say("no answer from the job\n");
}

static void take_terminal(int tty)
{
	signal(SIGTTOU, SIG_IGN); /* as a shell: from the background */
	say("leader takes the terminal: %s\n", tcsetpgrp(tty, getpgrp()) == 0 ? "ok" : "failed");
	signal(SIGTTOU, SIG_DFL);
}

static int leader(int tty)
{
	setsid();
	if (ioctl(tty, TIOCSCTTY, 0) < 0)
		say("TIOCSCTTY: %s\n", strerror(errno));
	struct termios t;
	tcgetattr(tty, &t);
	t.c_lflag &= ~(tcflag_t)ECHO;
	tcsetattr(tty, TCSANOW, &t);
	int orders[2], ack[2];
	if (pipe(orders) < 0 || pipe(ack) < 0)
		return 2;
	pid_t j = fork();
	if (j == 0) {
		setpgid(0, 0);
		close(orders[1]);
		close(ack[0]);
		_exit(job(tty, orders[0], ack[1]));
	}
	setpgid(j, j);
	close(orders[0]);
	close(ack[1]);
	/* A read from the background stops the job (SIGTTIN); in the foreground it reads. */
	say("type\n");
	order(orders[1], 'r');
	wait_say("background read", j, WUNTRACED);
	tcsetpgrp(tty, j);
	kill(j, SIGCONT);
	/* Told after the job's own line: it may come first. */
	int st = 0;
	waitpid(j, &st, WCONTINUED);
	acked(ack[0]);
	say("made the foreground: %s\n", status(st));
	/* ^Z stops the foreground job (SIGTSTP); the leader takes the terminal back. */
	say("^Z\n");
	wait_say("^Z", j, WUNTRACED);
	take_terminal(tty);
	/* With TOSTOP a write from the background stops the job (SIGTTOU), again after each
	 * SIGCONT, until it is in the foreground. */
	tcgetattr(tty, &t);
	t.c_lflag |= TOSTOP;
	tcsetattr(tty, TCSANOW, &t);
	kill(j, SIGCONT);
	wait_say("bg", j, WCONTINUED);
	order(orders[1], 'w');
	wait_say("background write with TOSTOP", j, WUNTRACED);
	/* Its write is made again, and stops it again (the continue's report may be gone by
	 * then, on Linux too: no wait for it). */
	kill(j, SIGCONT);
	wait_say("still in the background", j, WUNTRACED);
	tcsetpgrp(tty, j);
	kill(j, SIGCONT);
	waitpid(j, &st, WCONTINUED);
	acked(ack[0]);
	say("fg: %s\n", status(st));
	take_terminal(tty);
	/* A background read with SIGTTIN ignored: EIO. */
	order(orders[1], 'i');
	acked(ack[0]);
	order(orders[1], 'r');
	acked(ack[0]);
	order(orders[1], 'x');
	wait_say("the job's end", j, 0);
	return 0;
}

static void terminal(void)
{
	int m, s, rp[2];
	if (openpty(&m, &s, NULL, NULL, NULL) < 0 || pipe(rp) < 0) {
		printf("openpty: %s\n", strerror(errno));
		return;
	}
	pid_t l = fork();
	if (l == 0) {
		close(m);
		close(rp[0]);
		say_fd = rp[1];
		_exit(leader(s));
	}
	close(s);
	close(rp[1]);
	/* What the leader and its job say, in order; two lines are the leader's asks of the
	 * terminal's other end: type a line, type ^Z. */
	FILE *in = fdopen(rp[0], "r");
	char line[256];
	while (in && fgets(line, sizeof(line), in)) {
		if (strcmp(line, "type\n") == 0) {
			if (write(m, "typed\n", 6) < 0)
				printf("master: %s\n", strerror(errno));
		} else if (strcmp(line, "^Z\n") == 0) {
			if (write(m, "\032", 1) < 0)
				printf("master: %s\n", strerror(errno));
		} else {
			fputs(line, stdout);
		}
	}
	if (in)
		fclose(in);
	int st;
	waitpid(l, &st, 0);
	printf("terminal: the leader %s\n", status(st));
	close(m);
}

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int bench(int n)
{
	int rd;
	pid_t pid = start_ticking(&rd);
	readable(rd, LONG_MS);
	double t0 = now_us();
	for (int i = 0; i < n; i++) {
		int st;
		kill(pid, SIGSTOP);
		waitpid(pid, &st, WUNTRACED);
		kill(pid, SIGCONT);
		waitpid(pid, &st, WCONTINUED);
		drain(rd);
	}
	/* As the other samples' bench lines (bench/run.py reads them): op, rounds, ns each. */
	fprintf(stderr, "stop_continue %d %.0f\n", n, (now_us() - t0) * 1000 / n);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 2 && strcmp(argv[1], "bench") == 0)
		return bench(atoi(argv[2]));
	stop_and_go();
	self_stop();
	held_signal();
	reports();
	orphaned();
	terminal();
	return 0;
}
