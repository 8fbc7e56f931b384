/* Job control between processes as shells and process managers use it: SIGSTOP, SIGTSTP and
 * SIGCONT from another process and a child's raise(SIGSTOP), waitpid with WUNTRACED and
 * WCONTINUED, waitid with WSTOPPED, WCONTINUED and WNOWAIT, SIGCHLD's CLD_STOPPED and
 * CLD_CONTINUED (and none with SA_NOCLDSTOP), a stopped process making no progress (both of
 * its threads), a handled signal and a fatal one held until the SIGCONT, a handled SIGTSTP, /proc's
 * state letter. Prints what is the same natively and in the sandbox (no pids).
 * tests/monitor/test_e2e.c compares. `jobctl bench N`: N rounds of SIGSTOP, wait, SIGCONT, wait to
 * a child, in µs a round. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *signame(int sig)
{
	static const char *const names[] = {
	    [SIGCHLD] = "CHLD", [SIGCONT] = "CONT", [SIGSTOP] = "STOP",
	    [SIGTSTP] = "TSTP", [SIGTERM] = "TERM", [SIGKILL] = "KILL"};
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
	if (!readable(rd, 5000))
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
	printf("ticks after SIGCONT: %s\n", readable(rd, 5000) ? "yes" : "none");
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
	int p[2];
	if (pipe(p) < 0)
		exit(1);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		raise(SIGSTOP);
		if (write(p[1], "after", 5) < 0)
			_exit(3);
		_exit(7);
	}
	close(p[1]);
	wait_for("raise(SIGSTOP)", pid, WUNTRACED);
	printf("wrote before SIGCONT: %s\n", readable(p[0], 200) ? "yes" : "no");
	kill(pid, SIGCONT);
	wait_for("then SIGCONT", pid, WUNTRACED | WCONTINUED);
	wait_for("then its end", pid, 0);
	char buf[8] = {0};
	printf("it wrote: %s\n", read(p[0], buf, sizeof(buf) - 1) > 0 ? buf : "nothing");
	close(p[0]);
}

static int usr1_fd;

static void on_usr1(int sig)
{
	(void)sig;
	if (write(usr1_fd, "usr1", 4) < 0)
		_exit(3);
}

static void on_tstp(int sig)
{
	(void)sig;
	if (write(usr1_fd, "tstp", 4) < 0)
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
		usr1_fd = p[1];
		signal(SIGUSR1, on_usr1);
		signal(SIGTSTP, on_tstp);
		if (write(p[1], "ready", 5) < 0)
			_exit(3);
		char c;
		while (read(go[0], &c, 1) < 0 && errno == EINTR)
			;
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
	       readable(p[0], 5000) && read(p[0], buf, 4) == 4 ? buf : "nothing");
	wait_for("handled SIGTSTP", pid, WUNTRACED | WNOHANG);
	kill(pid, SIGSTOP);
	wait_for("stopped", pid, WUNTRACED);
	kill(pid, SIGUSR1);
	printf("SIGUSR1 handled while stopped: %s\n", readable(p[0], 200) ? "yes" : "no");
	kill(pid, SIGCONT);
	memset(buf, 0, sizeof(buf));
	printf("after SIGCONT: %s\n",
	       readable(p[0], 5000) && read(p[0], buf, 4) == 4 ? buf : "nothing");
	close(go[1]);
	wait_for("its end", pid, 0);
	close(p[0]);
}

/* waitid's reports and SIGCHLD's codes, then none with SA_NOCLDSTOP. */
static void reports(void)
{
	int rd;
	catch_chld(0);
	pid_t pid = start_ticking(&rd);
	readable(rd, 5000);
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
	for (int i = 0; i < 500 && chld_count == 0; i++)
		usleep(10000);
	printf("SIGCHLD: %s %s\n", chld_code == CLD_STOPPED ? "CLD_STOPPED" : "?",
	       signame(chld_status));
	chld_count = 0;
	kill(pid, SIGCONT);
	memset(&si, 0, sizeof(si));
	r = waitid(P_PID, (id_t)pid, &si, WCONTINUED);
	printf("waitid WCONTINUED: %d code %s status %s\n", r,
	       si.si_code == CLD_CONTINUED ? "CLD_CONTINUED" : "?", signame(si.si_status));
	for (int i = 0; i < 500 && chld_count == 0; i++)
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
	readable(rd, 5000);
	double t0 = now_us();
	for (int i = 0; i < n; i++) {
		int st;
		kill(pid, SIGSTOP);
		waitpid(pid, &st, WUNTRACED);
		kill(pid, SIGCONT);
		waitpid(pid, &st, WCONTINUED);
		drain(rd);
	}
	printf("%.1f us a stop and continue\n", (now_us() - t0) / n);
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
	return 0;
}
