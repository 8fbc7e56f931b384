/* Processes as programs use them: fork, exec, wait, pipes between processes, signals between
 * them, process groups, posix_spawn and vfork. Each subcommand prints what it saw; run natively
 * and in the sandbox the output must be the same (tests/monitor/test_procs.c). The exec'd
 * program is this one again, through /proc/self/exe, so no other file needs to be shown.
 * Behaviour, compared with native:
 *   procs fork | pipe | exec | cloexec | kill | killparent | handler | sigchld | spawn | vfork |
 * wnohang procs pgrp | many N | segv | ids | threaded | shared | closerange | rusage | socketpair
 *   procs shm | locks | tids | execthreads | execlive | restart | vforkshare | ptimers
 *   procs orphan | procfs | forklend | maskwait | threadlend [exec|read|still] | affinity
 * Only in the sandbox (natively it would stop for good):
 *   procs selfstop               raise TSTP, TTIN, TTOU, then STOP, saying after each that
 *                                it went on
 * The sandbox's limits for all processes together:
 *   procs hog K M | spin K       K children hold M MiB each, or spin
 *   procs bigmem M fork|map|spawn touch M MiB, then fork; or map M MiB more; or posix_spawn
 *                                (a vfork: nothing copied) a child that checks its stack and
 *                                the parent's memory after: exit 1 if refused
 * Benchmarks, "OP N ns" (each) on stderr:
 *   procs bench N | execbench N  fork+_exit+wait, fork+exec+wait
 *   procs execlivebench N        fork, two threads, execve from the second while the other
 *                                waits in a futex, wait
 *   procs spawnbench N           posix_spawn+wait while two other threads run
 *   procs bigspawnbench N        posix_spawn+wait from a process of one thread holding 64 MiB
 *   procs bigforkbench N         fork+execve+wait from the same
 *   procs bigthreadspawnbench N  the two above from a process with two idle threads (a
 *   procs bigthreadforkbench N   runtime's workers in a condition wait)
 *   procs bigreadforkbench N     bigthreadforkbench with a third thread waiting in a pipe read
 *   procs sockbench N            N sends of 64 KiB over a socketpair to a child
 *   procs shmbench N             N round trips of two process-shared semaphores
 *   procs lockbench N            N fcntl and N flock lock+unlock pairs, uncontended
 * What the exec'd copy does:
 *   procs echo ARGS... | fds | true | threadsagain | execd LABEL | sleepwrite FD |
 *   affinityexec CPU (exit 7 when its affinity is that CPU alone) */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/fsuid.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <semaphore.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "errname.h"

extern char **environ;

static const char *self = "/proc/self/exe";

static void status(const char *what, int st)
{
	if (WIFEXITED(st))
		printf("%s: exited %d\n", what, WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		printf("%s: killed by signal %d\n", what, WTERMSIG(st));
	else
		printf("%s: status 0x%x\n", what, st);
	fflush(stdout);
}

static int reap(pid_t pid, const char *what)
{
	int st;
	pid_t r;
	while ((r = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
		;
	if (r != pid) {
		printf("%s: waitpid gave %d (%s)\n", what, (int)r, strerror(errno));
		return -1;
	}
	status(what, st);
	return st;
}

static int do_fork(void)
{
	pid_t me = getpid();
	fflush(stdout);
	pid_t c = fork();
	if (c < 0) {
		perror("fork");
		return 1;
	}
	if (c == 0) {
		printf("child: ppid %s, pid %s\n", getppid() == me ? "is the parent" : "WRONG",
		       getpid() != me ? "its own" : "WRONG");
		fflush(stdout);
		_exit(7);
	}
	reap(c, "child");
	int st;
	printf("again: %s\n", waitpid(-1, &st, 0) < 0 && errno == ECHILD ? "ECHILD" : "WRONG");
	/* Memory is the child's own: a write there does not reach the parent. */
	static volatile int shared = 1;
	fflush(stdout);
	c = fork();
	if (c == 0) {
		shared = 2;
		_exit(shared);
	}
	reap(c, "writer");
	printf("parent still sees %d\n", shared);
	return 0;
}

/* A fork's child that does not exec. In the sandbox it first runs on its parent's RAM, which
 * the parent leaves to it once it has waited a little (docs/architecture.md, "Processes"):
 * each side's writes stay its own through that. The child waits on a pipe the parent writes
 * only after its fork returned and after writing 8 MiB and a word; the child reads the old
 * ones, writes its own, makes a thread that reads them, and forks a grandchild that does. */
#define FORKLEND_BYTES (8u << 20)
static unsigned char *forklend_big;
static volatile int forklend_word = 1;

static void *forklend_thread(void *arg)
{
	(void)arg;
	int ok = forklend_word == 3 && forklend_big[FORKLEND_BYTES / 2] == 0x33;
	forklend_big[0] = 0x44;
	return (void *)(intptr_t)ok;
}

static int forklend_child(int in)
{
	int bad = 0;
	char b;
	if (read(in, &b, 1) != 1)
		bad |= 1;
	if (forklend_word != 1)
		bad |= 2;
	for (size_t i = 0; i < FORKLEND_BYTES; i += 4096)
		if (forklend_big[i] != 0x11) {
			bad |= 4;
			break;
		}
	memset(forklend_big, 0x33, FORKLEND_BYTES);
	forklend_word = 3;
	pthread_t t;
	void *ok = NULL;
	if (pthread_create(&t, NULL, forklend_thread, NULL) || pthread_join(t, &ok) || !ok ||
	    forklend_big[0] != 0x44)
		bad |= 8;
	pid_t g = fork();
	if (g == 0)
		_exit(forklend_word == 3 && forklend_big[1] == 0x33 && forklend_big[0] == 0x44 ? 0
											       : 1);
	int st;
	if (g < 0 || waitpid(g, &st, 0) != g || !WIFEXITED(st) || WEXITSTATUS(st))
		bad |= 16;
	/* 128 MiB written and given back 8 MiB at a time: what a lent child holds stays within
	 * --mem (the test runs it under --mem 64M). */
	for (int i = 0; i < 16; i++) {
		char *m = mmap(NULL, 8u << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			       -1, 0);
		if (m == MAP_FAILED) {
			bad |= 32;
			break;
		}
		memset(m, i, 8u << 20);
		munmap(m, 8u << 20);
	}
	return bad;
}

static int do_forklend(void)
{
	forklend_big = malloc(FORKLEND_BYTES);
	int p[2];
	if (!forklend_big || pipe(p) < 0)
		return 1;
	memset(forklend_big, 0x11, FORKLEND_BYTES);
	fflush(stdout);
	pid_t c = fork();
	if (c < 0) {
		perror("fork");
		return 1;
	}
	if (c == 0) {
		close(p[1]);
		_exit(forklend_child(p[0]));
	}
	close(p[0]);
	forklend_word = 5;
	memset(forklend_big, 0x22, FORKLEND_BYTES);
	if (write(p[1], "g", 1) != 1)
		return 1;
	close(p[1]);
	int st;
	waitpid(c, &st, 0);
	printf("forklend: child exit %d, parent sees %d and %s\n",
	       WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), forklend_word,
	       forklend_big[0] == 0x22 && forklend_big[FORKLEND_BYTES - 1] == 0x22 ? "its own bytes"
										   : "WRONG bytes");
	/* And again, from a parent whose last child kept its RAM: one that ends at once. */
	fflush(stdout);
	c = fork();
	if (c == 0)
		_exit(forklend_word == 5 && forklend_big[7] == 0x22 ? 9 : 1);
	waitpid(c, &st, 0);
	printf("forklend: second child exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	return 0;
}

/* Forks from a process whose other threads keep writing its memory. In the sandbox such a
 * parent lends its RAM as one of a single thread does, its threads held meanwhile
 * (docs/architecture.md, "Processes"): children that exec at once, one that does not and
 * watches the words the threads write (they must not move in its copy), and one forked while
 * a thread waits in a read whose bytes must land in the parent only. */
static atomic_long threadlend_tick;
static atomic_int threadlend_stop;
static volatile unsigned char threadlend_buf[64 << 10];
static char threadlend_rbuf[64];

static void *threadlend_spin(void *arg)
{
	(void)arg;
	for (long i = 0; !atomic_load(&threadlend_stop); i++) {
		atomic_store_explicit(&threadlend_tick, i, memory_order_relaxed);
		threadlend_buf[(i * 4096) % sizeof(threadlend_buf)] = (unsigned char)i;
	}
	return NULL;
}

static void *threadlend_read(void *arg)
{
	return (void *)(intptr_t)read(*(int *)arg, threadlend_rbuf, sizeof(threadlend_rbuf));
}

/* In the child: nothing moves for 40 ms and more (the parent's wait for it is 20 ms). */
static int threadlend_still(void)
{
	long t0 = atomic_load(&threadlend_tick);
	unsigned char b0[16];
	for (int k = 0; k < 16; k++)
		b0[k] = threadlend_buf[k * 4096];
	for (int i = 0; i < 20; i++) {
		usleep(2000);
		if (atomic_load(&threadlend_tick) != t0)
			return 1;
		for (int k = 0; k < 16; k++)
			if (threadlend_buf[k * 4096] != b0[k])
				return 2;
	}
	return 0;
}

static int do_threadlend(const char *part)
{
	int all = !part;
	pthread_t sp[2], rd;
	/* What a runtime holds (the sandbox copies a parent below 2 MiB rather than lend it). */
	char *held = malloc(8u << 20);
	if (!held)
		return 1;
	memset(held, 1, 8u << 20);
	for (int i = 0; i < 2; i++)
		if (pthread_create(&sp[i], NULL, threadlend_spin, NULL))
			return 1;
	while (atomic_load(&threadlend_tick) < 1000)
		sched_yield();
	fflush(stdout);
	pid_t c[5], s;
	int st, ok = 0;
	for (int i = 0; (all || !strcmp(part, "exec")) && i < 5; i++) {
		c[i] = fork();
		if (c[i] == 0) {
			execl("/proc/self/exe", "procs", "true", (char *)NULL);
			_exit(126);
		}
	}
	for (int i = 0; (all || !strcmp(part, "exec")) && i < 5; i++)
		ok += c[i] > 0 && waitpid(c[i], &st, 0) == c[i] && WIFEXITED(st) &&
		      WEXITSTATUS(st) == 0;
	if (all || !strcmp(part, "exec"))
		printf("threadlend: %d of 5 children exec'd\n", ok);
	/* posix_spawn's child reports a failed execve in the memory it shares with its parent
	 * (a vfork): from a threaded parent too. */
	if (all || !strcmp(part, "exec")) {
		char *av[] = {"procs", "true", NULL};
		pid_t sc;
		int e1 = posix_spawn(&sc, "/nonexistent/prog", NULL, NULL, av, environ);
		int e2 = posix_spawn(&sc, "/proc/self/exe", NULL, NULL, av, environ);
		int ok2 = e2 == 0 && waitpid(sc, &st, 0) == sc && WIFEXITED(st) && !WEXITSTATUS(st);
		printf("threadlend: posix_spawn of a missing program: %s, of this one: %s\n",
		       strerror(e1), ok2 ? "ran" : "FAILED");
	}
	/* A thread waits in a read, whose bytes a process exec'd meanwhile writes 10 ms later,
	 * while the parent's next fork may still be waiting for its child. */
	int p[2];
	if (!all && strcmp(part, "read"))
		goto still;
	if (pipe(p) < 0)
		return 1;
	memset(threadlend_rbuf, 'a', sizeof(threadlend_rbuf));
	if (pthread_create(&rd, NULL, threadlend_read, &p[0]))
		return 1;
	usleep(20000); /* into its read */
	fflush(stdout);
	pid_t h = fork();
	if (h == 0) {
		char fd[16];
		snprintf(fd, sizeof(fd), "%d", p[1]);
		execl("/proc/self/exe", "procs", "sleepwrite", fd, (char *)NULL);
		_exit(126);
	}
	close(p[1]);
	s = fork();
	if (s == 0) {
		usleep(60000);
		_exit(threadlend_rbuf[0] == 'a' ? 0 : 1);
	}
	void *n;
	pthread_join(rd, &n);
	waitpid(s, &st, 0);
	int hs;
	waitpid(h, &hs, 0);
	printf("threadlend: read %ld in the parent (%c), the child saw its old bytes: %s\n",
	       (long)(intptr_t)n, threadlend_rbuf[0],
	       WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "yes" : "NO");
still:
	if (!all && strcmp(part, "still"))
		goto out;
	s = fork();
	if (s == 0)
		_exit(threadlend_still());
	long t1 = atomic_load(&threadlend_tick);
	usleep(10000);
	int moves = atomic_load(&threadlend_tick) != t1;
	waitpid(s, &st, 0);
	printf("threadlend: the child's copy stood still: %s, the parent's threads went on: %s\n",
	       WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "yes" : "NO", moves ? "yes" : "NO");
out:
	atomic_store(&threadlend_stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(sp[i], NULL);
	free(held);
	return 0;
}

static int do_pipe(void)
{
	int p[2];
	if (pipe(p) < 0)
		return 1;
	fflush(stdout);
	pid_t w[2];
	for (int i = 0; i < 2; i++) {
		w[i] = fork();
		if (w[i] == 0) {
			close(p[0]);
			for (int k = 0; k < 1000; k++)
				if (write(p[1], "hello\n", 6) != 6)
					_exit(1);
			_exit(0);
		}
	}
	close(p[1]);
	char buf[4096];
	long total = 0;
	ssize_t n;
	while ((n = read(p[0], buf, sizeof(buf))) > 0)
		total += n;
	printf("read %ld bytes, then EOF\n", total);
	reap(w[0], "writer 1");
	reap(w[1], "writer 2");
	return 0;
}

static int do_exec(void)
{
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		execl(self, "procs", "echo", "a b", "c", (char *)NULL);
		_exit(127);
	}
	reap(c, "exec");
	c = fork();
	if (c == 0) {
		execl("/nonexistent", "x", (char *)NULL);
		printf("execve of a missing file: %s\n", strerror(errno));
		fflush(stdout);
		_exit(3);
	}
	reap(c, "missing");
	return 0;
}

static int do_cloexec(void)
{
	int a[2], b[2];
	if (pipe(a) < 0 || pipe2(b, O_CLOEXEC) < 0)
		return 1;
	if (dup2(a[1], 20) < 0 || dup2(b[1], 21) < 0 || fcntl(21, F_SETFD, FD_CLOEXEC) < 0)
		return 1;
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		execl(self, "procs", "fds", (char *)NULL);
		_exit(127);
	}
	reap(c, "fds");
	return 0;
}

static int do_kill(void)
{
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		for (;;)
			pause();
	}
	printf("kill: %d\n", kill(c, SIGTERM));
	reap(c, "paused child");
	printf("kill of it now: %s\n", kill(c, 0) < 0 && errno == ESRCH ? "ESRCH" : "WRONG");
	/* tkill and tgkill reach another process's thread by its id, as Linux's do (musl's
	 * raise() in a vfork child names the parent's). */
	fflush(stdout);
	c = fork();
	if (c == 0) {
		for (;;)
			pause();
	}
	printf("tkill of a child: %ld\n",
	       syscall(SYS_tkill, c, 0) == 0 ? syscall(SYS_tkill, c, SIGTERM) : -1L);
	reap(c, "paused child");
	printf("tkill of it now: %s\n",
	       syscall(SYS_tkill, c, 0) < 0 && errno == ESRCH ? "ESRCH" : "WRONG");
	fflush(stdout);
	c = fork();
	if (c == 0) {
		for (;;)
			pause();
	}
	printf("tgkill of a child: %ld\n", syscall(SYS_tgkill, c, c, SIGUSR2));
	reap(c, "paused child");
	return 0;
}

/* A child ends its parent, the first process, with SIGTERM: natively the program dies of it,
 * and so it does in the sandbox. */
static int do_killparent(void)
{
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		kill(getppid(), SIGTERM);
		_exit(0);
	}
	for (;;)
		pause();
}

/* An orphan: the moment its parent ends it reads another parent from getppid, and the signal
 * it asked for with PR_SET_PDEATHSIG comes, sent by the parent that ended. Natively the new
 * parent is init or a subreaper, so only "another" is printed. */
static volatile sig_atomic_t death_sig, death_from;
static void on_death(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	death_sig = sig;
	death_from = si->si_pid;
}

static int do_orphan(void)
{
	int go[2], out[2];
	if (pipe(go) < 0 || pipe(out) < 0)
		return 1;
	fflush(stdout);
	pid_t a = fork();
	if (a == 0) {
		pid_t mid = getpid();
		close(out[0]);
		pid_t g = fork();
		if (g == 0) {
			close(go[0]);
			sigset_t usr1, old;
			sigemptyset(&usr1);
			sigaddset(&usr1, SIGUSR1);
			sigprocmask(SIG_BLOCK, &usr1, &old);
			struct sigaction sa = {.sa_sigaction = on_death, .sa_flags = SA_SIGINFO};
			sigaction(SIGUSR1, &sa, NULL);
			int set = prctl(PR_SET_PDEATHSIG, SIGUSR1), got = -1;
			prctl(PR_GET_PDEATHSIG, &got);
			dprintf(out[1], "PR_SET_PDEATHSIG: %d, PR_GET_PDEATHSIG: %s\n", set,
				got == SIGUSR1 ? "SIGUSR1" : "other");
			pid_t h = fork(); /* a fork's child asks for none */
			if (h == 0) {
				got = -1;
				prctl(PR_GET_PDEATHSIG, &got);
				dprintf(out[1], "its child's PR_GET_PDEATHSIG: %d\n", got);
				_exit(0);
			}
			waitpid(h, NULL, 0);
			dprintf(out[1], "parent before: %s\n",
				getppid() == mid ? "the middle" : "other");
			close(go[1]); /* the middle may end now */
			alarm(20);
			while (!death_sig)
				sigsuspend(&old);
			dprintf(
			    out[1],
			    "after its parent ended: getppid names another: %s, signal: %s, from "
			    "the parent that ended: %s\n",
			    getppid() != mid ? "yes" : "no",
			    death_sig == SIGUSR1 ? "SIGUSR1" : "other",
			    death_from == mid ? "yes" : "no");
			_exit(0);
		}
		close(go[1]);
		close(out[1]);
		char c;
		while (read(go[0], &c, 1) > 0)
			;
		_exit(0);
	}
	close(go[0]);
	close(go[1]);
	close(out[1]);
	reap(a, "middle");
	char buf[512];
	ssize_t n;
	while ((n = read(out[0], buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)n, stdout);
	return 0;
}

/* /proc as ps and pgrep read it: the caller's ids in stat and status as the calls give them,
 * its parent's and child's directories while they run, and a reaped child's gone. */
static int field(const char *path, int n, char *out, size_t len)
{
	char buf[4096];
	int fd = open(path, O_RDONLY);
	ssize_t r = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (r <= 0)
		return -1;
	buf[r] = 0;
	if (n == 1) {
		snprintf(out, len, "%.*s", (int)strcspn(buf, " "), buf);
		return 0;
	}
	if (n == 2) { /* the name, between the first '(' and the last ')' */
		char *o = strchr(buf, '('), *e = strrchr(buf, ')');
		if (!o || !e || e < o)
			return -1;
		snprintf(out, len, "%.*s", (int)(e - o - 1), o + 1);
		return 0;
	}
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	p += 2;
	for (int i = 3; i < n && p; i++) {
		p = strchr(p, ' ');
		p = p ? p + 1 : NULL;
	}
	if (!p)
		return -1;
	snprintf(out, len, "%.*s", (int)strcspn(p, " \n"), p);
	return 0;
}

static long field_l(const char *path, int n)
{
	char v[64];
	return field(path, n, v, sizeof(v)) < 0 ? -1 : atol(v);
}

static int listed(pid_t pid)
{
	DIR *d = opendir("/proc");
	int found = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		found |= atol(e->d_name) == pid;
	if (d)
		closedir(d);
	return found;
}

static int do_procfs(void)
{
	char path[64], name[64];
	printf("stat: pid %s, ppid %s, pgrp %s, session %s\n",
	       field_l("/proc/self/stat", 1) == getpid() ? "yes" : "no",
	       field_l("/proc/self/stat", 4) == getppid() ? "yes" : "no",
	       field_l("/proc/self/stat", 5) == getpgrp() ? "yes" : "no",
	       field_l("/proc/self/stat", 6) == getsid(0) ? "yes" : "no");
	char self[32] = "";
	readlink("/proc/self", self, sizeof(self) - 1);
	printf("/proc/self names the pid: %s\n", atol(self) == getpid() ? "yes" : "no");
	prctl(PR_SET_NAME, "renamed");
	field("/proc/self/stat", 2, name, sizeof(name));
	printf("PR_SET_NAME shows in stat: %s\n", name);
	int ready[2], hold[2];
	if (pipe(ready) < 0 || pipe(hold) < 0)
		return 1;
	fflush(stdout);
	pid_t parent = getpid(), c = fork();
	if (c == 0) {
		close(ready[0]);
		close(hold[1]);
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)parent);
		field(path, 2, name, sizeof(name));
		printf("child: its parent's name: %s, listed: %s, pid in its stat: %s\n", name,
		       listed(parent) ? "yes" : "no",
		       field_l(path, 1) == parent ? "its pid" : "another");
		snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)parent);
		int fd = open(path, O_RDONLY);
		char cmd[256] = "";
		ssize_t n = fd < 0 ? -1 : read(fd, cmd, sizeof(cmd) - 1);
		printf("child: its parent's cmdline: %s\n",
		       n > 0 && strstr(cmd + strlen(cmd) + 1, "procfs") ? "has procfs" : "wrong");
		if (fd >= 0)
			close(fd);
		fflush(stdout);
		close(ready[1]);
		char b;
		read(hold[0], &b, 1); /* until the parent has looked at us */
		_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	char b;
	read(ready[0], &b, 1);
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)c);
	printf("parent: the child listed: %s, its ppid: %s\n", listed(c) ? "yes" : "no",
	       field_l(path, 4) == parent ? "us" : "another");
	close(hold[1]);
	reap(c, "child");
	printf("parent: the reaped child's stat: %s\n",
	       access(path, F_OK) < 0 && errno == ENOENT ? "gone" : "there");
	return 0;
}

static int do_bigmem(int m, const char *what)
{
	size_t len = (size_t)m << 20;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	memset(p, 1, len);
	if (!strcmp(what, "map")) {
		void *q =
		    mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (q == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
		memset(q, 1, len);
		return 0;
	}
	fflush(stdout);
	if (!strcmp(what, "spawn")) {
		char *argv[] = {"procs", "echo", "spawned", NULL};
		pid_t c;
		int e = posix_spawn(&c, self, NULL, NULL, argv, environ);
		if (e) {
			printf("posix_spawn: %s\n", strerror(e));
			return 1;
		}
		/* The parent's memory is its own again, written after the child's start. */
		memset(p, 3, len);
		int r = reap(c, "spawned");
		for (size_t i = 0; i < len; i += 4096)
			if (p[i] != 3) {
				printf("parent: byte %zu is %d\n", i, p[i]);
				return 1;
			}
		return r < 0;
	}
	pid_t c = fork();
	if (c < 0) {
		perror("fork");
		return 1;
	}
	if (c == 0)
		_exit(p[len - 1] == 1 ? 0 : 2);
	return reap(c, "child");
}

static int note[2];
static volatile sig_atomic_t got_usr1;
static void on_usr1(int sig)
{
	(void)sig;
	got_usr1 = 1;
}

static int do_handler(void)
{
	int ready[2], never[2];
	if (pipe(note) < 0 || pipe(ready) < 0 || pipe(never) < 0)
		return 1;
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		struct sigaction sa = {.sa_handler = on_usr1};
		sigaction(SIGUSR1, &sa, NULL);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		char x;
		/* Blocked in a read the signal cuts short (no SA_RESTART): EINTR after the
		 * handler ran. A signal that came before the read ran the handler then; the
		 * parent sends another. */
		ssize_t n;
		while ((n = read(never[0], &x, 1)) < 0 && !(errno == EINTR && got_usr1))
			;
		printf("child's read: %s\n", n < 0 && errno == EINTR ? "EINTR" : "data");
		fflush(stdout);
		if (write(note[1], "x", 1) != 1)
			_exit(9);
		_exit(0);
	}
	char x;
	if (read(ready[0], &x, 1) != 1)
		return 1;
	/* Sent again until the child's read has ended with EINTR after its handler. */
	struct pollfd pf = {.fd = note[0], .events = POLLIN};
	do
		kill(c, SIGUSR1);
	while (poll(&pf, 1, 200) == 0);
	int ran = read(note[0], &x, 1) == 1;
	reap(c, "handler child"); /* first: the child prints too */
	printf("read cut short in the child: %s\n", ran ? "yes" : "no");
	return 0;
}

static volatile sig_atomic_t chld;
static siginfo_t got_info[2]; /* SIGCHLD's, SIGUSR1's */

static void on_info(int sig, siginfo_t *i, void *uc)
{
	(void)uc;
	got_info[sig == SIGUSR1] = *i;
}
static void on_chld(int sig)
{
	(void)sig;
	chld = 1;
}

/* ---- maskwait: waits whose mask lets SIGCHLD through, as GNU make's jobserver wait ---- */

static volatile sig_atomic_t mw_got, mw_usr2_blocked;
static void on_mw(int sig)
{
	(void)sig;
	mw_got++;
	/* The handler runs under the wait's mask (plus its own signal), not the thread's. */
	sigset_t cur;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	mw_usr2_blocked = sigismember(&cur, SIGUSR2);
}

/* One wait on fd (never ready unless written) for up to 10 s, SIGCHLD let through. */
static int mw_wait(int how, int fd, int ep)
{
	sigset_t empty;
	sigemptyset(&empty);
	struct timespec ts = {10, 0};
	if (how == 0) {
		fd_set rd;
		FD_ZERO(&rd);
		FD_SET(fd, &rd);
		return pselect(fd + 1, &rd, NULL, NULL, &ts, &empty);
	}
	if (how == 1) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		return ppoll(&pf, 1, &ts, &empty);
	}
	struct epoll_event ev;
	return epoll_pwait(ep, &ev, 1, 10000, &empty);
}

/* Until SIGCHLD is pending (blocked): the child has ended. */
static void mw_pending(void)
{
	sigset_t p;
	for (int i = 0; i < 10000; i++) {
		sigpending(&p);
		if (sigismember(&p, SIGCHLD))
			return;
		usleep(1000);
	}
	printf("SIGCHLD never became pending\n");
}

/* pselect, ppoll and epoll_pwait with SIGCHLD blocked but for the wait: a child's end ends
 * each with EINTR and the handler run (under the wait's mask, not the thread's, which blocks
 * SIGUSR2 too), whether SIGCHLD comes during the wait or was pending before it; the mask is
 * the old one after; a ready descriptor wins over a pending signal. */
static int do_maskwait(void)
{
	struct sigaction sa = {.sa_handler = on_mw};
	sigaction(SIGCHLD, &sa, NULL);
	sigset_t block, cur;
	sigemptyset(&block);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, NULL);
	sigset_t usr2;
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	sigprocmask(SIG_BLOCK, &usr2, NULL);
	int p[2], ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN};
	if (pipe(p) < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) < 0) {
		printf("maskwait: setup failed: %s\n", strerror(errno));
		return 1;
	}
	const char *name[3] = {"pselect", "ppoll", "epoll_pwait"};
	for (int before = 0; before < 3; before++)
		for (int how = 0; how < 3; how++) {
			mw_got = 0;
			fflush(stdout);
			pid_t c = fork();
			if (c == 0) {
				if (!before)
					usleep(50000);
				_exit(0);
			}
			if (before)
				mw_pending();
			if (before == 2 && write(p[1], "x", 1) != 1)
				printf("write failed\n");
			errno = 0;
			int r = mw_wait(how, p[0], ep), e = errno;
			int got = mw_got;
			sigprocmask(SIG_SETMASK, NULL, &cur);
			printf(
			    "%s, SIGCHLD %s: %s, handler ran %d time(s)%s, SIGCHLD blocked after: "
			    "%s\n",
			    name[how],
			    before == 2	  ? "pending and the pipe ready"
			    : before == 1 ? "pending before the wait"
					  : "during the wait",
			    r > 0		  ? "ready"
			    : r < 0 && e == EINTR ? "EINTR"
			    : r < 0		  ? strerror(e)
						  : "timed out",
			    got, got && mw_usr2_blocked ? " with SIGUSR2 blocked" : "",
			    sigismember(&cur, SIGCHLD) ? "yes" : "no");
			char b;
			if (before == 2 && read(p[0], &b, 1) != 1)
				printf("read failed\n");
			/* A SIGCHLD left pending runs its handler here, not later in another wait.
			 */
			sigprocmask(SIG_UNBLOCK, &block, NULL);
			sigprocmask(SIG_BLOCK, &block, NULL);
			reap(c, "child");
		}
	return 0;
}

static int do_sigchld(void)
{
	struct sigaction sa = {.sa_handler = on_chld};
	sigaction(SIGCHLD, &sa, NULL);
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &old);
	fflush(stdout);
	pid_t c = fork();
	if (c == 0)
		_exit(5);
	while (!chld)
		sigsuspend(&old);
	printf("SIGCHLD came\n");
	reap(c, "child");
	/* What SA_SIGINFO handlers learn: who ended and how, who sent a kill. */
	struct sigaction si = {.sa_sigaction = on_info, .sa_flags = SA_SIGINFO};
	sigaction(SIGCHLD, &si, NULL);
	sigaction(SIGUSR1, &si, NULL);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, NULL);
	for (int how = 0; how < 3; how++) {
		memset(got_info, 0, sizeof(got_info));
		fflush(stdout);
		c = fork();
		if (c == 0) {
			if (how == 2)
				kill(getppid(), SIGUSR1);
			else if (how == 1)
				raise(SIGTERM);
			_exit(how == 2 ? 0 : 3);
		}
		int want = how == 2 ? SIGUSR1 : SIGCHLD;
		while (got_info[want == SIGUSR1].si_signo != want)
			sigsuspend(&old);
		siginfo_t i = got_info[want == SIGUSR1];
		printf("%s: code %s, from the child: %s, status %d\n",
		       want == SIGCHLD ? "SIGCHLD" : "SIGUSR1",
		       i.si_code == CLD_EXITED	 ? "CLD_EXITED"
		       : i.si_code == CLD_KILLED ? "CLD_KILLED"
		       : i.si_code == SI_USER	 ? "SI_USER"
						 : "other",
		       i.si_pid == c ? "yes" : "no", want == SIGCHLD ? i.si_status : 0);
		reap(c, "child");
	}
	return 0;
}

static int do_spawn(void)
{
	pid_t c;
	char *argv[] = {"procs", "echo", "spawned", NULL};
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	fflush(stdout);
	int e = posix_spawn(&c, self, &fa, NULL, argv, environ);
	if (!e)
		reap(c, "spawned"); /* first: the child prints too */
	printf("posix_spawn: %s\n", e ? strerror(e) : "ok");
	return 0;
}

static int do_vfork(void)
{
	fflush(stdout);
	pid_t c = vfork();
	if (c == 0) {
		execl(self, "procs", "echo", "from vfork", (char *)NULL);
		_exit(127);
	}
	reap(c, "vfork child");
	return 0;
}

/* vforkshare: what a vfork's child writes before its _exit is its parent's, as the memory
 * they share on Linux; so posix_spawn (glibc's child reports a failed execve that way) says
 * ENOENT for a program that is not there, and still runs one that is. */
static int do_vforkshare(void)
{
	volatile int x = 0;
	volatile char word[8] = "parent";
	fflush(stdout);
	pid_t c = vfork();
	if (c == 0) {
		x = 42;
		word[0] = 'c';
		word[1] = 'h';
		_exit(0);
	}
	reap(c, "vfork child");
	printf("its writes: x=%d word=%s\n", x, (const char *)word);
	char *argv[] = {"prog", NULL}, *ok[] = {"procs", "echo", "spawned", NULL};
	int e = posix_spawn(&c, "/nonexistent/prog", NULL, NULL, argv, environ);
	printf("posix_spawn of a missing program: %s\n", e ? strerror(e) : "ok");
	if (!e)
		reap(c, "spawned");
	fflush(stdout);
	e = posix_spawn(&c, self, NULL, NULL, ok, environ);
	if (!e)
		reap(c, "spawned");
	printf("posix_spawn of one that is there: %s\n", e ? strerror(e) : "ok");
	return 0;
}

static int do_wnohang(void)
{
	int p[2];
	if (pipe(p) < 0)
		return 1;
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		char x;
		_exit(read(p[0], &x, 1) == 1 ? x : 1);
	}
	int st;
	printf("WNOHANG before: %d\n", (int)waitpid(c, &st, WNOHANG));
	if (write(p[1], "\x0b", 1) != 1)
		return 1;
	reap(c, "reader");
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	printf("waitid with none: %s\n",
	       waitid(P_ALL, 0, &si, WEXITED | WNOHANG) < 0 && errno == ECHILD ? "ECHILD"
									       : "WRONG");
	return 0;
}

static int do_pgrp(void)
{
	int p[2];
	if (pipe(p) < 0)
		return 1;
	printf("own group: %s\n", getpgrp() == getpgid(0) ? "yes" : "WRONG");
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		int r = setpgid(0, 0);
		printf("child setpgid: %d, leads its group: %s\n", r,
		       getpgrp() == getpid() ? "yes" : "WRONG");
		fflush(stdout);
		if (write(p[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	char x;
	if (read(p[0], &x, 1) != 1)
		return 1;
	printf("child's group from here: %s\n", getpgid(c) == c ? "its pid" : "WRONG");
	printf("kill of the group: %d\n", kill(-c, SIGTERM));
	reap(c, "group leader");
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	fflush(stdout);
	c = fork();
	if (c == 0)
		_exit(4);
	if (waitid(P_PID, (id_t)c, &si, WEXITED) == 0)
		printf("waitid: code %s, status %d, pid %s\n",
		       si.si_code == CLD_EXITED ? "CLD_EXITED" : "WRONG", si.si_status,
		       si.si_pid == c ? "right" : "WRONG");
	return 0;
}

static int do_many(int n)
{
	fflush(stdout);
	for (int i = 0; i < n; i++) {
		pid_t c = fork();
		if (c < 0) {
			perror("fork");
			return 1;
		}
		if (c == 0)
			_exit(i & 0x7f);
	}
	int sum = 0, st;
	pid_t r;
	while ((r = wait(&st)) > 0)
		sum += WEXITSTATUS(st);
	printf("%d children, statuses sum to %d\n", n, sum);
	return 0;
}

/* K children each touch M MiB and hold it until all have (each says so on a pipe of its own,
 * or its pipe's end tells it died): over a sandbox's --mem for all of them together, some are
 * killed (SIGKILL), as by an OOM killer. No timing: the parent waits for each child's word. */
static int do_hog(int k, int m)
{
	int go[2], ready[64];
	if (k > 64 || pipe(go) < 0)
		return 1;
	fflush(stdout);
	for (int i = 0; i < k; i++) {
		int p[2];
		if (pipe(p) < 0)
			return 1;
		pid_t c = fork();
		if (c < 0) {
			perror("fork");
			return 1;
		}
		if (c == 0) {
			close(go[1]);
			close(p[0]);
			volatile char *mem = malloc((size_t)m << 20);
			for (size_t o = 0; mem && o < (size_t)m << 20; o += 4096)
				mem[o] = 1;
			char b = 'r', x;
			if (write(p[1], &b, 1) != 1)
				_exit(2);
			while (read(go[0], &x, 1) < 0 && errno == EINTR)
				;
			_exit(mem ? 0 : 1);
		}
		close(p[1]);
		ready[i] = p[0];
	}
	close(go[0]);
	for (int i = 0; i < k; i++) {
		char b;
		while (read(ready[i], &b, 1) < 0 && errno == EINTR)
			;
		close(ready[i]);
	}
	close(go[1]);
	int exited = 0, killed = 0, st;
	while (wait(&st) > 0) {
		exited += WIFEXITED(st) && WEXITSTATUS(st) == 0;
		killed += WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
	}
	printf("%d children: %d exited, %d killed\n", k, exited, killed);
	return 0;
}

/* The set*id calls that keep the ids (a sandbox has one user), and posix_spawn with
 * POSIX_SPAWN_RESETIDS (GNU make spawns its commands so), which calls one of them. */
static int do_ids(void)
{
	uid_t r, e, sv;
	gid_t gr, ge, gs;
	uid_t u = getuid();
	gid_t g = getgid();
	printf("getresuid %d, same %d\n", getresuid(&r, &e, &sv), r == u && e == u && sv == u);
	printf("getresgid %d, same %d\n", getresgid(&gr, &ge, &gs), gr == g && ge == g && gs == g);
	printf("setresuid %d setresgid %d setreuid %d setregid %d setuid %d setgid %d\n",
	       setresuid(-1, u, -1), setresgid(g, -1, g), setreuid(-1, -1), setregid(g, g),
	       setuid(u), setgid(g));
	printf("setfsuid gives uid %d\n", setfsuid(-1) == (int)u);
	/* A daemon's drop to its user begins with no supplementary groups: root's call, taken
	 * in the sandbox as the ids a process has are (a non-root run would see EPERM). */
	if (u == 0)
		printf("setgroups of none: %d\n", setgroups(0, NULL));
	posix_spawnattr_t a;
	posix_spawnattr_init(&a);
	posix_spawnattr_setflags(&a, POSIX_SPAWN_RESETIDS);
	char *args[] = {"procs", "echo", "reset", NULL};
	pid_t c;
	fflush(stdout);
	int e2 = posix_spawn(&c, self, NULL, &a, args, environ);
	printf("spawn: %s\n", e2 ? strerror(e2) : "ok");
	if (!e2)
		reap(c, "resetids child");
	posix_spawnattr_destroy(&a);
	return 0;
}

/* K children spin for ever: only a limit on them all ends this. */
/* threaded: fork, vfork and posix_spawn from a process whose other threads keep calling the
 * kernel and allocating meanwhile (Go's os/exec, a threaded program's subprocess), from the
 * main thread and from a second one. A plain fork's child has the caller's thread only, with
 * the pid as its tid; it allocates, starts a thread of its own, and handles a fault. */
static atomic_int busy_stop;

static void *busy(void *arg)
{
	unsigned n = (unsigned)(uintptr_t)arg;
	while (!atomic_load(&busy_stop)) {
		free(malloc(64 + (n++ % 8192)));
		getppid();
	}
	return NULL;
}

static void *child_thread(void *arg)
{
	return arg;
}

static sigjmp_buf child_jmp;

static void child_segv(int sig)
{
	siglongjmp(child_jmp, sig);
}

static void forked_child(const char *who)
{
	char *m = malloc(1 << 20);
	memset(m, 7, 1 << 20);
	pthread_t t;
	void *got = NULL;
	int e = pthread_create(&t, NULL, child_thread, m);
	if (!e)
		pthread_join(t, &got);
	struct sigaction sa = {.sa_handler = child_segv};
	sigaction(SIGSEGV, &sa, NULL);
	int faulted = sigsetjmp(child_jmp, 1);
	int *volatile bad = (int *)(uintptr_t)16;
	if (!faulted)
		*bad = 1;
	printf("%s: fork child: tid is pid: %s, malloc'd %d, its thread: %s, fault handled: %s\n",
	       who, syscall(SYS_gettid) == getpid() ? "yes" : "no", m[12345],
	       e	  ? strerror(e)
	       : got == m ? "ran"
			  : "wrong",
	       faulted == SIGSEGV ? "yes" : "no");
	fflush(stdout);
	_exit(5);
}

static void spawn_all(const char *who)
{
	char tag[64];
	snprintf(tag, sizeof(tag), "%s: posix_spawn", who);
	char *argv[] = {"procs", "echo", tag, NULL};
	pid_t c;
	fflush(stdout);
	int e = posix_spawn(&c, self, NULL, NULL, argv, environ);
	if (e)
		printf("%s: %s\n", tag, strerror(e));
	else
		reap(c, tag);
	for (int k = 0; k < 2; k++) {
		snprintf(tag, sizeof(tag), k ? "%s: fork+exec" : "%s: vfork", who);
		fflush(stdout);
		c = k ? fork() : vfork();
		if (c == 0) {
			execl(self, "procs", "echo", tag, (char *)NULL);
			_exit(127);
		}
		reap(c, tag);
	}
	snprintf(tag, sizeof(tag), "%s: fork", who);
	c = fork();
	if (c == 0)
		forked_child(who);
	reap(c, tag);
}

static void *spawner(void *arg)
{
	spawn_all(arg);
	return NULL;
}

static int do_threaded(void)
{
	pthread_t b[2], s;
	for (int i = 0; i < 2; i++)
		pthread_create(&b[i], NULL, busy, (void *)(uintptr_t)(i * 1000));
	spawn_all("main thread");
	pthread_create(&s, NULL, spawner, "second thread");
	pthread_join(s, NULL);
	atomic_store(&busy_stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(b[i], NULL);
	printf("threaded: done\n");
	return 0;
}

/* shared: MAP_SHARED file mappings across fork (glibc's iconv maps its gconv cache so, and
 * Python's subprocess forks with it): a file in /tmp mapped read-only, as iconv does, and
 * writable, which parent and child both write, each seeing the other's bytes. */
static int do_shared(void)
{
	char path[] = "/tmp/procs-shared-XXXXXX";
	int wfd = mkstemp(path);
	if (wfd < 0 || ftruncate(wfd, 8192) < 0 ||
	    pwrite(wfd,
		   "\x7f"
		   "ELF",
		   4, 4000) != 4) {
		printf("shared: setting up: %s\n", strerror(errno));
		return 1;
	}
	int fd = open(path, O_RDONLY);
	const char *ro = fd < 0 ? MAP_FAILED : mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	unlink(path);
	if (ro == MAP_FAILED) {
		printf("shared: read-only mmap: %s\n", strerror(errno));
		return 1;
	}
	ro += 4000;
	char *rw = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, wfd, 0);
	if (rw == MAP_FAILED) {
		printf("shared: mmap: %s\n", strerror(errno));
		return 1;
	}
	strcpy(rw, "parent before fork");
	int go[2];
	if (pipe(go) < 0)
		return 1;
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		printf("child: read-only mapping starts %.3s, writable one says \"%s\"\n", ro + 1,
		       rw);
		fflush(stdout); /* before the parent, which waits for the bytes, prints */
		strcpy(rw + 4096, "written by the child");
		char b;
		if (read(go[0], &b, 1) != 1)
			_exit(1);
		printf("child: after the parent wrote: \"%s\"\n", rw);
		fflush(stdout);
		_exit(0);
	}
	close(go[0]);
	while (!((volatile char *)rw)[4096])
		usleep(1000);
	printf("parent: the child wrote \"%s\"\n", rw + 4096);
	strcpy(rw, "parent after fork");
	fflush(stdout);
	if (write(go[1], "x", 1) != 1)
		return 1;
	reap(c, "child");
	char buf[32] = "";
	if (pread(wfd, buf, sizeof(buf) - 1, 4096) < 0)
		return 1;
	printf("parent: the file says \"%s\"\n", buf);
	return 0;
}

/* shm: memory that processes share and the locks in it, as Python's multiprocessing, a
 * pre-forking server or a test harness use them: POSIX semaphores (sem_open, in /dev/shm),
 * shm_open, MAP_SHARED | MAP_ANONYMOUS memory with process-shared mutexes and condition
 * variables, timed waits, and a wait that a signal cuts short. */
struct shm_area {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int ready;
	long count;
	sem_t sem;
};

static void shm_on_usr1(int sig)
{
	(void)sig;
}

static void shm_fill(struct shm_area *a, int rounds)
{
	for (int i = 0; i < rounds; i++) {
		pthread_mutex_lock(&a->mu);
		a->count++;
		pthread_mutex_unlock(&a->mu);
	}
}

static int do_shm(void)
{
	struct statvfs vfs;
	printf("statvfs /dev/shm: %s\n", statvfs("/dev/shm", &vfs) == 0 ? "ok" : strerror(errno));
	/* A named semaphore that a child posts after writing to shm_open's memory. */
	char name[64], oname[64]; /* musl's semaphores and objects share one namespace */
	snprintf(name, sizeof(name), "/procs-sem-%d", (int)getpid());
	snprintf(oname, sizeof(oname), "/procs-shm-%d", (int)getpid());
	sem_t *s = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
	int fd = shm_open(oname, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (s == SEM_FAILED || fd < 0 || ftruncate(fd, 4096) < 0) {
		printf("sem_open/shm_open: %s\n", strerror(errno));
		return 1;
	}
	char *obj = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (obj == MAP_FAILED)
		return 1;
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		sem_t *cs = sem_open(name, 0);
		strcpy(obj, "from the child, through shm_open");
		_exit(cs != SEM_FAILED && sem_post(cs) == 0 ? 0 : 1);
	}
	int w = sem_wait(s);
	printf("sem_wait: %d; the object says \"%s\"\n", w, obj);
	reap(c, "poster");
	sem_close(s);
	printf("sem_unlink: %d, shm_unlink: %d\n", sem_unlink(name), shm_unlink(oname));
	printf("sem_open after unlink: %s\n",
	       sem_open(name, 0) == SEM_FAILED ? strerror(errno) : "opened");

	/* Shared anonymous memory: two children count under one process-shared mutex. */
	struct shm_area *a =
	    mmap(NULL, sizeof(*a), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		return 1;
	pthread_mutexattr_t ma;
	pthread_condattr_t ca;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_condattr_init(&ca);
	pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
	pthread_mutex_init(&a->mu, &ma);
	pthread_cond_init(&a->cv, &ca);
	sem_init(&a->sem, 1, 0);
	fflush(stdout);
	pid_t k[2];
	for (int i = 0; i < 2; i++)
		if ((k[i] = fork()) == 0) {
			shm_fill(a, 20000);
			_exit(0);
		}
	shm_fill(a, 20000);
	reap(k[0], "counter 1");
	reap(k[1], "counter 2");
	printf("count: %ld (three processes, 20000 each)\n", a->count);

	/* A condition variable: the child waits for the parent's signal, in another process. */
	fflush(stdout);
	c = fork();
	if (c == 0) {
		pthread_mutex_lock(&a->mu);
		while (!a->ready)
			pthread_cond_wait(&a->cv, &a->mu);
		pthread_mutex_unlock(&a->mu);
		_exit(a->ready);
	}
	usleep(20000);
	pthread_mutex_lock(&a->mu);
	a->ready = 5;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	reap(c, "condition waiter");

	/* An unnamed semaphore in shared memory: a timed wait ends, a post wakes another
	 * process's wait, and a signal with a handler cuts a wait short (EINTR). */
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_nsec += 50000000;
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}
	int tw = sem_timedwait(&a->sem, &dl);
	printf("sem_timedwait: %d (%s)\n", tw, tw ? strerror(errno) : "posted");
	fflush(stdout);
	c = fork();
	if (c == 0)
		_exit(sem_wait(&a->sem) == 0 ? 6 : 1);
	usleep(20000);
	sem_post(&a->sem);
	reap(c, "semaphore waiter");
	fflush(stdout);
	c = fork();
	if (c == 0) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = shm_on_usr1;
		sigaction(SIGUSR1, &sa, NULL);
		a->ready = 0;
		int r = sem_wait(&a->sem);
		_exit(r < 0 && errno == EINTR ? 7 : 1);
	}
	/* Until it is over: a signal that comes before the wait only runs the handler, and
	 * the next one cuts the wait, however slow the machine. */
	int st;
	while (waitpid(c, &st, WNOHANG) == 0) {
		if (!a->ready)
			kill(c, SIGUSR1);
		usleep(10000);
	}
	status("interrupted waiter", st);

	/* /proc/self/maps names shared anonymous memory as Linux does. */
	FILE *m = fopen("/proc/self/maps", "r");
	char line[512];
	int named = 0;
	while (m && fgets(line, sizeof(line), m))
		named |= strstr(line, "/dev/zero (deleted)") != NULL;
	if (m)
		fclose(m);
	printf("maps: %s\n", named ? "/dev/zero (deleted)" : "not named");
	return 0;
}

/* locks: record locks (fcntl) and flock between processes, as sqlite, make's jobserver
 * clients, cargo and the flock command take them: who owns a lock, what a child inherits, a
 * close that drops them, waits that end when the holder lets go. */
static int lk(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
	return fcntl(fd, cmd, &fl) == 0 ? 0 : -errno;
}

static const char *lkres(int r)
{
	return r == 0 ? "granted" : strerror(-r);
}

/* A child waits for the lock the parent holds on held_fd (F_SETLKW, or flock), which the
 * parent lets go 50 ms after the child said it was about to wait. */
static int wait_for_release(const char *path, int use_flock, int held_fd)
{
	int go[2];
	char b;
	if (pipe(go) < 0)
		return 1;
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		int own = open(path, O_RDWR);
		close(go[0]);
		if (write(go[1], "w", 1) != 1)
			_exit(1);
		int r = use_flock ? (flock(own, LOCK_SH) ? -errno : 0)
				  : lk(own, F_SETLKW, F_WRLCK, 0, 0);
		printf("child's %s: %s\n", use_flock ? "waiting flock" : "F_SETLKW", lkres(r));
		fflush(stdout);
		_exit(r == 0 ? 0 : 1);
	}
	close(go[1]);
	if (read(go[0], &b, 1) != 1)
		return 1;
	close(go[0]);
	usleep(50000);
	if (use_flock)
		flock(held_fd, LOCK_UN);
	else
		lk(held_fd, F_SETLK, F_UNLCK, 0, 0);
	return reap(c, "waiter");
}

/* tids: thread ids and pids are one space. The first process starts a thread, then forks: a
 * child whose pid were that thread's id would own a process-shared recursive mutex as if it
 * were that thread, which would then take it as its own. */
struct tid_arena {
	pthread_mutex_t mu;
	atomic_int locked, release, n;
	pid_t ids[8];
};

static struct tid_arena *tida;

static void tid_note(pid_t id)
{
	tida->ids[atomic_fetch_add(&tida->n, 1) % 8] = id;
}

static void *tid_noter(void *arg)
{
	(void)arg;
	tid_note((pid_t)syscall(SYS_gettid));
	return NULL;
}

static void *tid_contender(void *arg)
{
	*(pid_t *)arg = (pid_t)syscall(SYS_gettid);
	tid_note(*(pid_t *)arg);
	while (!atomic_load(&tida->locked))
		usleep(1000);
	int r = pthread_mutex_trylock(&tida->mu);
	if (r == 0)
		pthread_mutex_unlock(&tida->mu);
	return (void *)(intptr_t)r;
}

static int do_tids(void)
{
	tida = mmap(NULL, sizeof(*tida), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (tida == MAP_FAILED) {
		printf("tids: mmap: %s\n", strerror(errno));
		return 1;
	}
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&tida->mu, &ma);
	tid_note(getpid());
	pid_t ttid = 0;
	pthread_t t;
	if (pthread_create(&t, NULL, tid_contender, &ttid)) {
		printf("tids: pthread_create failed\n");
		return 1;
	}
	while (!atomic_load(&tida->n) || !__atomic_load_n(&ttid, __ATOMIC_ACQUIRE))
		usleep(1000);
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		tid_note(getpid());
		pthread_t u;
		if (!pthread_create(&u, NULL, tid_noter, NULL))
			pthread_join(u, NULL);
		/* The first process's thread, by its id: a signal 0 finds its process. */
		int k = kill(ttid, 0);
		pthread_mutex_lock(&tida->mu);
		atomic_store(&tida->locked, 1);
		while (!atomic_load(&tida->release))
			usleep(1000);
		pthread_mutex_unlock(&tida->mu);
		_exit(k == 0 ? 0 : 3);
	}
	void *got;
	pthread_join(t, &got);
	atomic_store(&tida->release, 1);
	int st = 0;
	waitpid(c, &st, 0);
	int n = atomic_load(&tida->n), distinct = n == 4;
	for (int i = 0; i < n && i < 8; i++)
		for (int j = 0; j < i; j++)
			distinct &= tida->ids[i] != tida->ids[j];
	printf("tids: %d ids, distinct: %s\n", n, distinct ? "yes" : "no");
	printf("tids: the first process's thread tries the child's lock: %s\n",
	       strerror((int)(intptr_t)got));
	printf("tids: kill(thread id, 0) from the child: %s\n",
	       WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "found" : "not found");
	/* Past any pid_max, so that no host process has it either. */
	printf("tids: kill(unused id, 0): %s\n", kill(2000000000, 0) < 0 ? strerror(errno) : "ok");
	return 0;
}

/* execthreads: execve once the other threads have ended, as Linux allows (it would end them
 * itself). Threads start again after a failed execve, and in the new image. */
static void *tid_of(void *arg)
{
	*(pid_t *)arg = (pid_t)syscall(SYS_gettid);
	return arg;
}

static int threads_ran(int n)
{
	pthread_t t[4];
	pid_t ids[4] = {0};
	int ok = 1;
	for (int i = 0; i < n && i < 4; i++)
		ok &= pthread_create(&t[i], NULL, tid_of, &ids[i]) == 0;
	for (int i = 0; ok && i < n && i < 4; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; ok && i < n && i < 4; i++)
		ok &= ids[i] > 0 && ids[i] != getpid();
	return ok;
}

static int do_execthreads(void)
{
	printf("before execve: %s\n", threads_ran(2) ? "2 threads ran" : "threads failed");
	char path[] = "/tmp/procs-badelf-XXXXXX";
	int fd = mkstemp(path);
	char head[64] = "\x7f"
			"ELF";
	if (fd < 0 || write(fd, head, sizeof(head)) != (ssize_t)sizeof(head) ||
	    fchmod(fd, 0700) < 0) {
		printf("execthreads: setting up: %s\n", strerror(errno));
		return 1;
	}
	close(fd);
	fflush(stdout);
	execl(path, "bad", (char *)NULL);
	printf("execve of a bad ELF: %s\n", strerror(errno));
	unlink(path);
	printf("after it: %s\n", threads_ran(3) ? "3 threads ran" : "threads failed");
	fflush(stdout);
	execl(self, "procs", "threadsagain", (char *)NULL);
	printf("execve: %s\n", strerror(errno));
	return 1;
}

/* execlive: execve while other threads still run, as Linux allows: they end (in a futex wait,
 * a read of a pipe, a sleep with every signal blocked, their own code, waitpid), the caller
 * goes on in the new image as the main thread, with its own signal mask. From the main thread,
 * from a second one while main waits to join it, after main has ended, and from two threads at
 * once; a failed execve leaves every thread running. Each case runs in a child of its own. */
static pthread_mutex_t el_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t el_cond = PTHREAD_COND_INITIALIZER;
static int el_pipe[2], el_gate[2];
static atomic_int el_ready, el_spin = 1;

static void *el_waiter(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&el_lock);
	atomic_fetch_add(&el_ready, 1);
	for (;;)
		pthread_cond_wait(&el_cond, &el_lock);
	return NULL;
}

static void *el_reader(void *arg)
{
	(void)arg;
	char c;
	atomic_fetch_add(&el_ready, 1);
	return read(el_pipe[0], &c, 1) == 0 ? NULL : arg;
}

static void *el_spinner(void *arg)
{
	atomic_fetch_add(&el_ready, 1);
	while (atomic_load(&el_spin))
		;
	return arg;
}

static void *el_sleeper(void *arg)
{
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	atomic_fetch_add(&el_ready, 1);
	struct timespec ts = {100, 0};
	nanosleep(&ts, NULL);
	return arg;
}

/* Waits for a child that ends at the execve, whose close-on-exec pipe it reads. */
static void *el_reaper(void *arg)
{
	pid_t pid = *(pid_t *)arg;
	atomic_fetch_add(&el_ready, 1);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return NULL;
}

static void el_start(pthread_t *t, int n)
{
	static pid_t child;
	atomic_store(&el_ready, 0);
	if (pipe(el_pipe) < 0 || pipe2(el_gate, O_CLOEXEC) < 0)
		exit(90);
	child = fork();
	if (child == 0) {
		close(el_gate[1]);
		close(el_pipe[1]);
		char c;
		_exit(read(el_gate[0], &c, 1) == 0 ? 0 : 1);
	}
	void *(*fn[5])(void *) = {el_waiter, el_reader, el_spinner, el_sleeper, el_reaper};
	for (int i = 0; i < n && i < 5; i++)
		if (pthread_create(&t[i], NULL, fn[i], i == 4 ? (void *)&child : NULL) != 0)
			exit(91);
	while (atomic_load(&el_ready) < n)
		usleep(1000);
	usleep(20000); /* into their waits */
}

static char el_path[4096]; /* not /proc/self/exe: once main has ended, Linux has none */

static void el_exec(const char *label)
{
	fflush(stdout);
	execl(el_path, "procs", "execd", label, (char *)NULL);
	printf("%s: execve: %s\n", label, strerror(errno));
	fflush(stdout);
	_exit(1);
}

static void *el_second(void *arg)
{
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL); /* the new image keeps this thread's mask */
	el_exec(arg);
	return NULL;
}

static void *el_second_after_main(void *arg)
{
	usleep(50000); /* main has ended by then */
	el_exec(arg);
	return NULL;
}

static void *el_racer(void *arg)
{
	while (atomic_load(&el_spin) == 1)
		;
	el_exec(arg);
	return NULL;
}

static int el_case(int which)
{
	pid_t pid = fork();
	if (pid != 0) {
		if (pid < 0)
			return 1;
		reap(pid, "execlive");
		return 0;
	}
	pthread_t t[7];
	el_start(t, 5);
	switch (which) {
	case 0:
		el_exec("from main");
		break;
	case 1:
		if (pthread_create(&t[5], NULL, el_second, "from a second thread") != 0)
			_exit(92);
		pthread_join(t[5], NULL);
		break;
	case 2:
		if (pthread_create(&t[5], NULL, el_second_after_main, "after main ended") != 0)
			_exit(92);
		pthread_exit(NULL);
		break;
	case 3:
		/* Both wait for the word, then race: one execve wins, the other thread ends. */
		atomic_store(&el_spin, 2);
		if (pthread_create(&t[5], NULL, el_racer, "from two threads") != 0 ||
		    pthread_create(&t[6], NULL, el_racer, "from two threads") != 0)
			_exit(92);
		usleep(10000);
		atomic_store(&el_spin, 3);
		pthread_join(t[5], NULL);
		break;
	case 4: {
		/* Failures from a second thread keep every thread. */
		char path[] = "/tmp/procs-noexec-XXXXXX";
		int fd = mkstemp(path);
		if (fd < 0)
			_exit(93);
		close(fd);
		errno = 0;
		execl("/nonexistent/prog", "x", (char *)NULL);
		int e1 = errno;
		execl(path, "x", (char *)NULL);
		int e2 = errno;
		unlink(path);
		atomic_store(&el_spin, 0);
		close(el_pipe[1]);
		printf("failed execve: %s, %s; the spinner and reader end: %s\n", strerror(e1),
		       strerror(e2),
		       !pthread_join(t[1], NULL) && !pthread_join(t[2], NULL) ? "yes" : "no");
		fflush(stdout);
		_exit(0);
	}
	}
	_exit(1);
}

static int do_execlive(void)
{
	ssize_t n = readlink(self, el_path, sizeof(el_path) - 1);
	if (n <= 0)
		return 1;
	el_path[n] = 0;
	for (int i = 0; i < 5; i++)
		if (el_case(i))
			return 1;
	return 0;
}

/* restart: a handler's SA_RESTART makes a blocking waitpid or an untimed futex wait go on
 * after the handler, as Linux does (no EINTR); without it, or with a timeout, EINTR. The
 * alarm's handler kills the child being waited for, as a test harness's watchdog does. */
#define RS_FUTEX_WAIT 128 /* FUTEX_WAIT_PRIVATE: musl has no <linux/futex.h> */
#define RS_FUTEX_WAKE 129
static volatile sig_atomic_t rs_child, rs_ran;
static atomic_int rs_word;

static void rs_kill_child(int sig)
{
	(void)sig;
	rs_ran++;
	if (rs_child > 0)
		kill(rs_child, SIGKILL);
}

static void rs_count(int sig)
{
	(void)sig;
	rs_ran++;
}

static void rs_on(int sig, void (*fn)(int), int flags)
{
	struct sigaction sa = {.sa_handler = fn, .sa_flags = flags};
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

static void rs_waitpid(int flags)
{
	rs_on(SIGALRM, rs_kill_child, flags);
	rs_ran = 0;
	pid_t pid = fork();
	if (pid == 0) {
		sleep(5); /* the handler ends it first */
		_exit(7);
	}
	rs_child = pid;
	struct itimerval it = {.it_value = {0, 100000}};
	setitimer(ITIMER_REAL, &it, NULL);
	int st = 0;
	pid_t r = waitpid(pid, &st, 0);
	int e = errno;
	printf("waitpid%s: %s", flags ? " (SA_RESTART)" : "", r == pid ? "the child" : strerror(e));
	if (r != pid)
		waitpid(pid, &st, 0);
	printf(" %s %d, the handler ran %d time(s)\n", WIFSIGNALED(st) ? "killed by" : "exited",
	       WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), (int)rs_ran);
}

struct rs_futex {
	int flags, timed;
	long r;
	int e;
};

static void *rs_futex_wait(void *arg)
{
	struct rs_futex *w = arg;
	struct timespec ts = {5, 0};
	errno = 0;
	w->r = syscall(SYS_futex, &rs_word, RS_FUTEX_WAIT, 0, w->timed ? &ts : NULL, NULL, 0);
	w->e = errno;
	return NULL;
}

static void rs_futex(int flags, int timed)
{
	rs_on(SIGUSR1, rs_count, flags);
	rs_ran = 0;
	atomic_store(&rs_word, 0);
	struct rs_futex w = {flags, timed, 0, 0};
	pthread_t t;
	if (pthread_create(&t, NULL, rs_futex_wait, &w) != 0)
		return;
	usleep(100000); /* in its wait */
	pthread_kill(t, SIGUSR1);
	for (int i = 0; i < 500 && !rs_ran; i++)
		usleep(10000);
	usleep(100000); /* back in its wait, unless it returned */
	atomic_store(&rs_word, 1);
	syscall(SYS_futex, &rs_word, RS_FUTEX_WAKE, 1, NULL, NULL, 0);
	pthread_join(t, NULL);
	printf("futex wait%s%s: %s, the handler ran %d time(s)\n", timed ? " with a timeout" : "",
	       flags ? " (SA_RESTART)" : "", w.r == 0 ? "woken" : strerror(w.e), (int)rs_ran);
}

static int do_restart(void)
{
	rs_waitpid(SA_RESTART);
	rs_waitpid(0);
	rs_futex(SA_RESTART, 0);
	rs_futex(0, 0);
	rs_futex(SA_RESTART, 1);
	return 0;
}

/* ptimers: POSIX timers with a signal, an interval, an absolute time and none (SIGEV_NONE);
 * what Linux refuses; a fork's child has none of them. */
static volatile sig_atomic_t pt_count, pt_code, pt_value, pt_alrm;

static void pt_handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (sig == SIGALRM) {
		pt_alrm++;
		return;
	}
	pt_count++;
	pt_code = si->si_code;
	pt_value = si->si_value.sival_int;
}

static int do_ptimers(void)
{
	struct sigaction sa = {.sa_sigaction = pt_handler, .sa_flags = SA_SIGINFO | SA_RESTART};
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
	ev.sigev_value.sival_int = 77;
	timer_t t;
	if (timer_create(CLOCK_MONOTONIC, &ev, &t) < 0) {
		printf("timer_create: %s\n", strerror(errno));
		return 1;
	}
	struct itimerspec its = {{0, 5000000}, {0, 5000000}}, cur;
	timer_settime(t, 0, &its, NULL);
	while (pt_count < 3)
		usleep(1000);
	timer_gettime(t, &cur);
	printf("ptimers: 3 ticks, si_code SI_TIMER: %s, si_value %d, interval %ld ms\n",
	       pt_code == SI_TIMER ? "yes" : "no", (int)pt_value,
	       cur.it_interval.tv_nsec / 1000000);
	printf("ptimers: overrun: %s\n", timer_getoverrun(t) >= 0 ? "a count" : strerror(errno));
	printf("ptimers: delete %d\n", timer_delete(t));
	int n = pt_count;
	usleep(30000);
	printf("ptimers: none after the delete: %s\n", pt_count == n ? "yes" : "no");

	/* No sigevent: SIGALRM; an absolute time on the real-time clock. */
	timer_t r;
	timer_create(CLOCK_REALTIME, NULL, &r);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	its = (struct itimerspec){{0, 0}, {now.tv_sec, now.tv_nsec + 20000000}};
	if (its.it_value.tv_nsec >= 1000000000) {
		its.it_value.tv_sec++;
		its.it_value.tv_nsec -= 1000000000;
	}
	timer_settime(r, TIMER_ABSTIME, &its, NULL);
	while (!pt_alrm)
		usleep(1000);
	printf("ptimers: absolute real time: SIGALRM\n");
	timer_delete(r);

	/* SIGEV_NONE: it counts down and says nothing. */
	struct sigevent none = {.sigev_notify = SIGEV_NONE};
	timer_t q;
	timer_create(CLOCK_BOOTTIME, &none, &q);
	its = (struct itimerspec){{0, 0}, {5, 0}};
	timer_settime(q, 0, &its, NULL);
	timer_gettime(q, &cur);
	printf("ptimers: SIGEV_NONE counts down: %s\n",
	       (cur.it_value.tv_sec > 0 || cur.it_value.tv_nsec > 0) && cur.it_value.tv_sec <= 5
		   ? "yes"
		   : "no");
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		printf("ptimers: the child has its parent's timer: %s\n",
		       timer_gettime(q, &cur) < 0 && errno == EINVAL ? "no" : "yes");
		fflush(stdout);
		_exit(0);
	}
	reap(c, "ptimers child");
	timer_delete(q);

	struct sigevent bad = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = 99};
	printf("ptimers: signal 99: %s\n",
	       timer_create(CLOCK_MONOTONIC, &bad, &t) < 0 ? strerror(errno) : "ok");
	printf("ptimers: clock 42: %s\n", timer_create(42, NULL, &t) < 0 ? strerror(errno) : "ok");
	return 0;
}

static int do_locks(void)
{
	char path[] = "/tmp/procs-locks-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0 || ftruncate(fd, 100) < 0)
		return 1;
	printf("parent write-locks 0-9: %s\n", lkres(lk(fd, F_SETLK, F_WRLCK, 0, 10)));
	int again = open(path, O_RDWR);
	printf("parent, another descriptor, same range: %s\n",
	       lkres(lk(again, F_SETLK, F_WRLCK, 0, 10)));
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		int own = open(path, O_RDWR);
		struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 5};
		fcntl(own, F_GETLK, &q);
		printf("child: F_GETLK says %s at %lld, %lld bytes, held by the parent: %s\n",
		       q.l_type == F_WRLCK ? "write lock" : "other", (long long)q.l_start,
		       (long long)q.l_len, q.l_pid == getppid() ? "yes" : "no");
		printf("child, its own open: %s\n", lkres(lk(own, F_SETLK, F_WRLCK, 0, 10)));
		printf("child, the inherited descriptor: %s\n",
		       lkres(lk(fd, F_SETLK, F_RDLCK, 0, 1)));
		printf("child, bytes 10-19: %s\n", lkres(lk(own, F_SETLK, F_WRLCK, 10, 10)));
		fflush(stdout);
		_exit(0);
	}
	reap(c, "child");
	/* An unlock in the middle leaves two locks: F_GETLK names the parent for each. */
	printf("parent unlocks 3-5: %s\n", lkres(lk(fd, F_SETLK, F_UNLCK, 3, 3)));
	fflush(stdout);
	c = fork();
	if (c == 0) {
		int own = open(path, O_RDWR);
		for (int at = 1; at < 10; at += 3) {
			struct flock q = {
			    .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = at, .l_len = 1};
			fcntl(own, F_GETLK, &q);
			printf("child: byte %d: %s, held by the parent: %s\n", at,
			       q.l_type == F_UNLCK ? "free" : "locked",
			       q.l_type != F_UNLCK && q.l_pid == getppid() ? "yes" : "no");
		}
		fflush(stdout);
		_exit(0);
	}
	reap(c, "child");
	/* Closing any descriptor of the file drops the process's locks on it. */
	close(again);
	fflush(stdout);
	c = fork();
	if (c == 0) {
		int own = open(path, O_RDWR);
		printf("child after the parent's close: %s\n",
		       lkres(lk(own, F_SETLK, F_WRLCK, 0, 10)));
		fflush(stdout);
		_exit(0);
	}
	reap(c, "child");
	/* A wait that ends when the holder unlocks. */
	printf("parent locks again: %s\n", lkres(lk(fd, F_SETLK, F_WRLCK, 0, 0)));
	if (wait_for_release(path, 0, fd) != 0)
		return 1;
	int ro = open(path, O_RDONLY);
	printf("write lock on a read-only descriptor: %s\n", lkres(lk(ro, F_SETLK, F_WRLCK, 0, 1)));
	int tl = lockf(fd, F_TLOCK, 0);
	printf("lockf F_TLOCK: %d, F_ULOCK: %d\n", tl, lockf(fd, F_ULOCK, 0));
	/* lockf locks from the current position. */
	lseek(fd, 100, SEEK_SET);
	tl = lockf(fd, F_TLOCK, 10);
	fflush(stdout);
	c = fork();
	if (c == 0) {
		int own = open(path, O_RDWR);
		int low = lk(own, F_SETLK, F_WRLCK, 0, 10), mid = lk(own, F_SETLK, F_WRLCK, 105, 1);
		printf("lockf at 100: %d; child, bytes 0-9: %s, byte 105: %s\n", tl, lkres(low),
		       lkres(mid));
		fflush(stdout);
		_exit(0);
	}
	reap(c, "child");
	lockf(fd, F_ULOCK, 10);
	lseek(fd, 0, SEEK_SET);

	/* Open file description locks: two opens conflict even in one process. */
	int o1 = open(path, O_RDWR), o2 = open(path, O_RDWR);
	printf("OFD lock: %s, ", lkres(lk(o1, F_OFD_SETLK, F_WRLCK, 50, 1)));
	printf("from another open: %s\n", lkres(lk(o2, F_OFD_SETLK, F_WRLCK, 50, 1)));
	close(o1);
	close(o2);

	/* flock belongs to the open file description: a child shares its parent's. */
	int f1 = open(path, O_RDWR);
	printf("flock LOCK_EX: %d\n", flock(f1, LOCK_EX));
	fflush(stdout);
	c = fork();
	if (c == 0) {
		int own = open(path, O_RDWR);
		int r = flock(own, LOCK_EX | LOCK_NB);
		printf("child's own open, LOCK_NB: %s\n", r ? strerror(errno) : "granted");
		printf("child, the inherited description: %d\n", flock(f1, LOCK_EX | LOCK_NB));
		fflush(stdout);
		_exit(0);
	}
	reap(c, "child");
	if (wait_for_release(path, 1, f1) != 0)
		return 1;
	printf("flock with no operation: %s\n", flock(f1, 0) ? strerror(errno) : "granted");
	unlink(path);
	return 0;
}

/* closerange: close_range(2), as Python's subprocess calls it in the child before exec. */
static int do_closerange(void)
{
	for (int fd = 20; fd < 25; fd++)
		dup2(1, fd);
	long a = syscall(SYS_close_range, 21, 22, 0);
	long b = syscall(SYS_close_range, 23, ~0u, 4 /* CLOSE_RANGE_CLOEXEC */);
	long c = syscall(SYS_close_range, 30, 29, 0);
	int ce = errno;
	long d = syscall(SYS_close_range, 20, 20, 1 << 8);
	printf("close_range: %ld %ld %ld (%s) %ld (%s)\n", a, b, c, strerror(ce), d,
	       strerror(errno));
	for (int fd = 20; fd < 25; fd++) {
		int fl = fcntl(fd, F_GETFD);
		printf("fd %d: %s\n", fd,
		       fl < 0		   ? "closed"
		       : (fl & FD_CLOEXEC) ? "open, close-on-exec"
					   : "open");
	}
	return 0;
}

/* rusage: a child that burns ~0.2 s of CPU, then a grandchild's, reach the parent through
 * wait4's rusage, getrusage(RUSAGE_CHILDREN) and times(); WNOHANG with none ended gives 0. */
static void burn(double s)
{
	struct timespec a, b;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
	do
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
	while ((double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9 < s);
}

static double tv_s(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static int do_rusage(void)
{
	struct rusage ru, ch;
	getrusage(RUSAGE_CHILDREN, &ch);
	printf("before: children's CPU %s\n",
	       tv_s(ch.ru_utime) + tv_s(ch.ru_stime) < 0.05 ? "none" : "some");
	pid_t c = fork();
	if (c == 0) {
		pid_t g = fork();
		if (g == 0) {
			burn(0.2);
			_exit(0);
		}
		waitpid(g, NULL, 0);
		burn(0.2);
		_exit(3);
	}
	int st;
	pid_t w = wait4(c, &st, 0, &ru);
	double used = tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
	printf("wait4: %s, status %d, CPU %s\n", w == c ? "the child" : "WRONG", WEXITSTATUS(st),
	       used >= 0.3 && used < 5 ? "0.4 s (the child and its own)" : "WRONG");
	getrusage(RUSAGE_CHILDREN, &ch);
	used = tv_s(ch.ru_utime) + tv_s(ch.ru_stime);
	printf("RUSAGE_CHILDREN: CPU %s\n", used >= 0.3 && used < 5 ? "0.4 s" : "WRONG");
	struct tms t;
	times(&t);
	printf("times: children %s\n", t.tms_cutime + t.tms_cstime >= 30 ? ">= 0.3 s" : "WRONG");
	errno = 0;
	printf("getrusage(7): %s\n", getrusage(7, &ch) < 0 && errno == EINVAL ? "EINVAL" : "WRONG");
	return 0;
}

/* socketpair: a connected pair of local sockets between a parent and its child, as asyncio,
 * multiprocessing and libuv use them. */
static int do_socketpair(void)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		printf("socketpair: %s\n", strerror(errno));
		return 1;
	}
	int type = 0;
	socklen_t tl = sizeof(type);
	getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &type, &tl);
	struct sockaddr_storage sa;
	socklen_t sl = sizeof(sa);
	getsockname(sv[0], (struct sockaddr *)&sa, &sl);
	printf("SO_TYPE %s, family %s\n", type == SOCK_STREAM ? "stream" : "?",
	       sa.ss_family == AF_UNIX ? "unix" : "?");
	pid_t c = fork();
	if (c == 0) {
		close(sv[0]);
		char b[64];
		ssize_t n = recv(sv[1], b, sizeof(b), 0);
		/* Two buffers out in one message. */
		struct iovec io[2] = {{"re: ", 4}, {b, (size_t)(n > 0 ? n : 0)}};
		struct msghdr m = {.msg_iov = io, .msg_iovlen = 2};
		sendmsg(sv[1], &m, 0);
		shutdown(sv[1], SHUT_WR);
		_exit(0);
	}
	close(sv[1]);
	char b[64] = {0};
	errno = 0;
	ssize_t n = recv(sv[0], b, sizeof(b), MSG_DONTWAIT);
	printf("recv with nothing there, MSG_DONTWAIT: %zd %s\n", n,
	       errno == EAGAIN ? "EAGAIN" : "?");
	send(sv[0], "ping", 4, 0);
	struct pollfd p = {.fd = sv[0], .events = POLLIN};
	poll(&p, 1, 5000);
	n = recv(sv[0], b, 3, MSG_PEEK);
	printf("peek: %zd %.3s\n", n, b);
	memset(b, 0, sizeof(b));
	struct iovec io = {b, sizeof(b) - 1};
	struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1};
	size_t got = 0;
	while ((n = recvmsg(sv[0], &m, MSG_WAITALL)) > 0) {
		got += (size_t)n;
		io.iov_base = b + got;
		io.iov_len = sizeof(b) - 1 - got;
	}
	printf("recvmsg: %s, then end of stream %zd\n", b, n);
	waitpid(c, NULL, 0);
	errno = 0;
	n = send(sv[0], "x", 1, MSG_NOSIGNAL);
	printf("send to a closed peer with MSG_NOSIGNAL: %zd %s\n", n,
	       errno == EPIPE ? "EPIPE" : strerror(errno));
	close(sv[0]);

	/* Datagrams keep their bounds. */
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) < 0)
		return 1;
	send(sv[0], "one", 3, 0);
	send(sv[0], "three", 5, 0);
	char d[16] = {0};
	ssize_t a = recv(sv[1], d, sizeof(d), 0), z = recv(sv[1], d + 8, sizeof(d) - 8, 0);
	printf("datagrams: %zd %.3s, %zd %.5s\n", a, d, z, d + 8);
	errno = 0;
	printf("recv of a closed fd: %s\n",
	       recv(sv[1] + 100, d, 1, 0) < 0 && errno == EBADF ? "EBADF" : "?");
	int pp[2];
	if (pipe(pp) == 0) {
		errno = 0;
		printf("send on a pipe: %s\n",
		       send(pp[1], "x", 1, 0) < 0 && errno == ENOTSOCK ? "ENOTSOCK" : "?");
	}
	errno = 0;
	printf("socketpair(AF_INET): %s\n",
	       socketpair(AF_INET, SOCK_STREAM, 0, sv) < 0 ? "refused" : "made");
	return 0;
}

/* "OP N ns" on stderr, ns each of n from a to b: what bench/run.py reads. */
static void bench_line(const char *op, int n, const struct timespec *a, const struct timespec *b)
{
	double ns = (double)(b->tv_sec - a->tv_sec) * 1e9 + (double)(b->tv_nsec - a->tv_nsec);
	fprintf(stderr, "%s %d %.0f\n", op, n, ns / n);
}

/* sockbench N: N sends of 64 KiB from a parent to its child over a socketpair, the child
 * reading to the end: "socketpair_64k N ns" (each) on stderr. */
static int sockbench(int n)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 1;
	static char buf[65536];
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	pid_t c = fork();
	if (c == 0) {
		close(sv[0]);
		while (read(sv[1], buf, sizeof(buf)) > 0)
			;
		_exit(0);
	}
	close(sv[1]);
	for (int i = 0; i < n; i++)
		for (size_t off = 0; off < sizeof(buf);) {
			ssize_t w = send(sv[0], buf + off, sizeof(buf) - off, 0);
			if (w <= 0)
				return 1;
			off += (size_t)w;
		}
	close(sv[0]);
	waitpid(c, NULL, 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	bench_line("socketpair_64k", n, &a, &b);
	return 0;
}

/* Two processes take turns through two process-shared semaphores in MAP_SHARED |
 * MAP_ANONYMOUS memory: each turn is a post that wakes the other's wait (the host's futex in
 * the sandbox). */
static int shmbench(int n)
{
	sem_t *s = mmap(NULL, 2 * sizeof(sem_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			-1, 0);
	if (s == MAP_FAILED || sem_init(&s[0], 1, 0) < 0 || sem_init(&s[1], 1, 0) < 0)
		return 1;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	pid_t c = fork();
	if (c == 0) {
		for (int i = 0; i < n; i++) {
			sem_wait(&s[0]);
			sem_post(&s[1]);
		}
		_exit(0);
	}
	for (int i = 0; i < n; i++) {
		sem_post(&s[0]);
		sem_wait(&s[1]);
	}
	waitpid(c, NULL, 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	bench_line("shm_sem_pingpong", n, &a, &b);
	return 0;
}

/* Uncontended record locks and flock on a file in /dev/shm: lock and unlock, each. */
static int lockbench(int n)
{
	char path[64];
	snprintf(path, sizeof(path), "/dev/shm/procs-lockbench-%d", (int)getpid());
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		return 1;
	unlink(path);
	struct timespec a, b, c;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < n; i++)
		if (lk(fd, F_SETLK, F_WRLCK, 0, 1) || lk(fd, F_SETLK, F_UNLCK, 0, 1))
			return 1;
	clock_gettime(CLOCK_MONOTONIC, &b);
	for (int i = 0; i < n; i++)
		if (flock(fd, LOCK_EX) || flock(fd, LOCK_UN))
			return 1;
	clock_gettime(CLOCK_MONOTONIC, &c);
	bench_line("fcntl_lock_unlock", n, &a, &b);
	bench_line("flock_lock_unlock", n, &b, &c);
	return 0;
}

static int do_spin(int k)
{
	fflush(stdout);
	for (int i = 0; i < k; i++) {
		pid_t c = fork();
		if (c < 0) {
			perror("fork");
			return 1;
		}
		if (c == 0)
			for (volatile unsigned long x = 0;; x++)
				;
	}
	while (wait(NULL) > 0)
		;
	return 0;
}

/* A child dies of SIGSEGV; the parent goes on. */
static int do_segv(void)
{
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		int *volatile bad = (int *)(uintptr_t)16;
		*bad = 1;
		_exit(0);
	}
	reap(c, "child");
	return 0;
}

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void *lb_exec(void *arg)
{
	execl(arg, "procs", "true", (char *)NULL);
	_exit(1);
}

/* exec: 0 none, 1 from the only thread, 2 from a second thread while main waits to join it. */
static int bench(int n, int exec)
{
	char path[4096];
	ssize_t len = readlink(self, path, sizeof(path) - 1);
	if (len <= 0)
		return 1;
	path[len] = 0;
	double t0 = now_us();
	for (int i = 0; i < n; i++) {
		pid_t c = fork();
		if (c == 0) {
			pthread_t t;
			if (exec == 2 && pthread_create(&t, NULL, lb_exec, path) == 0)
				pthread_join(t, NULL);
			if (exec)
				execl(self, "procs", "true", (char *)NULL);
			_exit(0);
		}
		int st;
		if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st))
			return 1;
	}
	/* "op N ns-each" on stderr, as bench/run.py reads the samples' timings. */
	fprintf(stderr, "%s %d %.0f\n",
		exec == 2 ? "fork_thread_exec_wait"
		: exec	  ? "fork_exec_wait"
			  : "fork_wait",
		n, (now_us() - t0) * 1e3 / n);
	return 0;
}

/* posix_spawn (CLONE_VM | CLONE_VFORK, then execve) of this program's `true` from a process
 * whose two other threads keep calling the kernel: what os/exec and subprocess cost. */
static int spawnbench(int n)
{
	pthread_t b[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&b[i], NULL, busy, (void *)(uintptr_t)(i * 1000));
	char *argv[] = {"procs", "true", NULL};
	double t0 = now_us();
	int bad = 0;
	for (int i = 0; i < n && !bad; i++) {
		pid_t c;
		int st;
		bad = posix_spawn(&c, self, NULL, NULL, argv, environ) != 0 ||
		      waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st);
	}
	double t1 = now_us();
	atomic_store(&busy_stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(b[i], NULL);
	if (bad)
		return 1;
	fprintf(stderr, "spawn_threaded_wait %d %.0f\n", n, (t1 - t0) * 1e3 / n);
	return 0;
}

/* No job control in the sandbox: a stop signal's default action leaves the process running. */
static int do_selfstop(void)
{
	const int sigs[] = {SIGTSTP, SIGTTIN, SIGTTOU, SIGSTOP};
	const char *names[] = {"TSTP", "TTIN", "TTOU", "STOP"};
	for (int i = 0; i < 4; i++) {
		raise(sigs[i]);
		printf("went on after SIG%s\n", names[i]);
		fflush(stdout); /* a stop that holds ends in a kill */
	}
	return 0;
}

/* posix_spawn from a process of one thread that holds 64 MiB (a compiler driver, a build
 * tool, an interpreter with a heap): what a vfork costs when the parent is big. */
/* From a process of one thread holding 64 MiB: posix_spawn (a vfork), or fork and execve. */
static pthread_mutex_t idle_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cv = PTHREAD_COND_INITIALIZER;
static int idle_done;

/* A runtime's idle worker: waits on a condition variable until told to end. */
static void *idle_worker(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&idle_mu);
	while (!idle_done)
		pthread_cond_wait(&idle_cv, &idle_mu);
	pthread_mutex_unlock(&idle_mu);
	return NULL;
}

/* threads: that many idle workers beside the caller (a Go, Node or JVM process). */
static void *pipe_reader(void *arg)
{
	char b[4096];
	return (void *)(intptr_t)read(*(int *)arg, b, sizeof(b));
}

/* `reading`: a third thread waits in a read of a pipe meanwhile (an output pump's). */
static int bigspawnbench(int n, int use_fork, int threads, int reading)
{
	size_t len = 64u << 20;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 1;
	memset(p, 1, len);
	pthread_t w[4], rd;
	for (int i = 0; i < threads && i < 4; i++)
		if (pthread_create(&w[i], NULL, idle_worker, NULL))
			return 1;
	int rp[2];
	if (reading && (pipe2(rp, O_CLOEXEC) < 0 || pthread_create(&rd, NULL, pipe_reader, rp)))
		return 1;
	char *argv[] = {"procs", "true", NULL};
	double t0 = now_us();
	for (int i = 0; i < n; i++) {
		pid_t c = -1;
		int st;
		if (use_fork) {
			c = fork();
			if (c == 0) {
				execve(self, argv, environ);
				_exit(127);
			}
		} else if (posix_spawn(&c, self, NULL, NULL, argv, environ) != 0) {
			return 1;
		}
		if (c < 0 || waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st))
			return 1;
	}
	fprintf(stderr, "%s%s %d %.0f\n", use_fork ? "fork_exec_big_wait" : "spawn_big_wait",
		reading	  ? "_reading"
		: threads ? "_threaded"
			  : "",
		n, (now_us() - t0) * 1e3 / n);
	void *got;
	if (reading && (write(rp[1], "x", 1) != 1 || pthread_join(rd, &got) || got != (void *)1))
		return 1;
	pthread_mutex_lock(&idle_mu);
	idle_done = 1;
	pthread_cond_broadcast(&idle_cv);
	pthread_mutex_unlock(&idle_mu);
	for (int i = 0; i < threads && i < 4; i++)
		pthread_join(w[i], NULL);
	return p[len - 1] != 1;
}

/* sched_setaffinity as `taskset -c N prog` and thread pools use it: the set reads back in the
 * thread, in a thread it makes, in a fork's child and in the image an execve makes; the
 * errors Linux gives; and the parent is there for kill(getppid(), 0). */
static int affinity_one(cpu_set_t *m)
{
	int first = -1;
	for (int i = 0; i < CPU_SETSIZE && first < 0; i++)
		if (CPU_ISSET(i, m))
			first = i;
	return first;
}

static void *affinity_thread(void *arg)
{
	cpu_set_t m;
	*(int *)arg = sched_getaffinity(0, sizeof(m), &m) == 0 && CPU_COUNT(&m) == 1 &&
		      affinity_one(&m) == *(int *)arg;
	return NULL;
}

static int do_affinity(void)
{
	cpu_set_t all, one, got;
	if (sched_getaffinity(0, sizeof(all), &all) != 0)
		return printf("sched_getaffinity: %s\n", strerror(errno)), 1;
	int c = affinity_one(&all);
	CPU_ZERO(&one);
	CPU_SET(c, &one);
	printf("set to one CPU: %s\n",
	       sched_setaffinity(0, sizeof(one), &one) == 0 ? "ok" : "WRONG");
	sched_getaffinity(0, sizeof(got), &got);
	printf("read back: %s\n", CPU_EQUAL(&got, &one) ? "that CPU" : "WRONG");
	pthread_t t;
	int in_thread = c;
	pthread_create(&t, NULL, affinity_thread, &in_thread);
	pthread_join(t, NULL);
	printf("a new thread has it: %s\n", in_thread ? "yes" : "WRONG");
	fflush(stdout);
	pid_t k = fork();
	if (k == 0) {
		sched_getaffinity(0, sizeof(got), &got);
		printf("a fork's child has it: %s\n", CPU_EQUAL(&got, &one) ? "yes" : "WRONG");
		fflush(stdout);
		char arg[16];
		snprintf(arg, sizeof(arg), "%d", c);
		execl(self, "procs", "affinityexec", arg, (char *)NULL);
		_exit(127);
	}
	int st;
	waitpid(k, &st, 0);
	printf("the exec'd image: exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	errno = 0;
	printf("pid -1: %s\n",
	       sched_getaffinity(-1, sizeof(got), &got) < 0 ? errname(errno) : "WRONG");
	CPU_ZERO(&got);
	printf("an empty set: %s\n",
	       sched_setaffinity(0, sizeof(got), &got) < 0 ? errname(errno) : "WRONG");
	printf("back to all: %s\n", sched_setaffinity(0, sizeof(all), &all) == 0 &&
					    sched_getaffinity(0, sizeof(got), &got) == 0 &&
					    CPU_EQUAL(&got, &all)
					? "ok"
					: "WRONG");
	printf("the parent is there: %s\n", kill(getppid(), 0) == 0 ? "yes" : errname(errno));
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	const char *c = argc > 1 ? argv[1] : "";
	int n = argc > 2 ? atoi(argv[2]) : 0;
	if (!strcmp(c, "echo")) {
		for (int i = 2; i < argc; i++)
			printf("arg %d: [%s]\n", i - 1, argv[i]);
		printf("argv[0]: %s\n", argv[0]);
		return 3;
	}
	if (!strcmp(c, "fds")) {
		printf("fd 20: %s, fd 21: %s\n", fcntl(20, F_GETFD) >= 0 ? "open" : "closed",
		       fcntl(21, F_GETFD) >= 0 ? "open" : "closed");
		return 0;
	}
	if (!strcmp(c, "true"))
		return 0;
	if (!strcmp(c, "affinityexec") && argc > 2) {
		cpu_set_t m;
		return sched_getaffinity(0, sizeof(m), &m) == 0 && CPU_COUNT(&m) == 1 &&
			       CPU_ISSET(atoi(argv[2]), &m)
			   ? 7
			   : 1;
	}
	if (!strcmp(c, "sleepwrite") && argc > 2) {
		usleep(10000);
		return write(atoi(argv[2]), "zzzz", 4) == 4 ? 0 : 1;
	}
	if (!strcmp(c, "threadsagain")) {
		printf("the new image: %s, tid is pid: %s\n",
		       threads_ran(4) ? "4 threads ran" : "threads failed",
		       syscall(SYS_gettid) == getpid() ? "yes" : "no");
		return 0;
	}
	if (!strcmp(c, "execd") && argc > 2) {
		sigset_t cur;
		sigprocmask(SIG_SETMASK, NULL, &cur);
		printf("%s: the new image, tid is pid: %s, SIGUSR1 blocked: %s, %s\n", argv[2],
		       syscall(SYS_gettid) == getpid() ? "yes" : "no",
		       sigismember(&cur, SIGUSR1) ? "yes" : "no",
		       threads_ran(2) ? "2 threads ran" : "threads failed");
		return 0;
	}
	int r = !strcmp(c, "fork")	    ? do_fork()
		: !strcmp(c, "forklend")    ? do_forklend()
		: !strcmp(c, "threadlend")  ? do_threadlend(argc > 2 ? argv[2] : NULL)
		: !strcmp(c, "pipe")	    ? do_pipe()
		: !strcmp(c, "affinity")    ? do_affinity()
		: !strcmp(c, "exec")	    ? do_exec()
		: !strcmp(c, "cloexec")	    ? do_cloexec()
		: !strcmp(c, "execlive")    ? do_execlive()
		: !strcmp(c, "vforkshare")  ? do_vforkshare()
		: !strcmp(c, "restart")	    ? do_restart()
		: !strcmp(c, "kill")	    ? do_kill()
		: !strcmp(c, "killparent")  ? do_killparent()
		: !strcmp(c, "orphan")	    ? do_orphan()
		: !strcmp(c, "selfstop")    ? do_selfstop()
		: !strcmp(c, "procfs")	    ? do_procfs()
		: !strcmp(c, "handler")	    ? do_handler()
		: !strcmp(c, "sigchld")	    ? do_sigchld()
		: !strcmp(c, "maskwait")    ? do_maskwait()
		: !strcmp(c, "spawn")	    ? do_spawn()
		: !strcmp(c, "vfork")	    ? do_vfork()
		: !strcmp(c, "wnohang")	    ? do_wnohang()
		: !strcmp(c, "pgrp")	    ? do_pgrp()
		: !strcmp(c, "many")	    ? do_many(n > 0 ? n : 20)
		: !strcmp(c, "hog")	    ? do_hog(n > 0 ? n : 3, argc > 3 ? atoi(argv[3]) : 24)
		: !strcmp(c, "spin")	    ? do_spin(n > 0 ? n : 2)
		: !strcmp(c, "bigmem")	    ? do_bigmem(n > 0 ? n : 8, argc > 3 ? argv[3] : "fork")
		: !strcmp(c, "segv")	    ? do_segv()
		: !strcmp(c, "ids")	    ? do_ids()
		: !strcmp(c, "threaded")    ? do_threaded()
		: !strcmp(c, "shared")	    ? do_shared()
		: !strcmp(c, "shm")	    ? do_shm()
		: !strcmp(c, "locks")	    ? do_locks()
		: !strcmp(c, "tids")	    ? do_tids()
		: !strcmp(c, "ptimers")	    ? do_ptimers()
		: !strcmp(c, "execthreads") ? do_execthreads()
		: !strcmp(c, "closerange")  ? do_closerange()
		: !strcmp(c, "rusage")	    ? do_rusage()
		: !strcmp(c, "socketpair")  ? do_socketpair()
		: !strcmp(c, "sockbench")   ? sockbench(n > 0 ? n : 2000)
		: !strcmp(c, "shmbench")    ? shmbench(n > 0 ? n : 2000)
		: !strcmp(c, "lockbench")   ? lockbench(n > 0 ? n : 2000)
		: !strcmp(c, "spawnbench")  ? spawnbench(n > 0 ? n : 100)
		: !strcmp(c, "bigspawnbench")	    ? bigspawnbench(n > 0 ? n : 100, 0, 0, 0)
		: !strcmp(c, "bigforkbench")	    ? bigspawnbench(n > 0 ? n : 100, 1, 0, 0)
		: !strcmp(c, "bigthreadspawnbench") ? bigspawnbench(n > 0 ? n : 100, 0, 2, 0)
		: !strcmp(c, "bigthreadforkbench")  ? bigspawnbench(n > 0 ? n : 100, 1, 2, 0)
		: !strcmp(c, "bigreadforkbench")    ? bigspawnbench(n > 0 ? n : 100, 1, 2, 1)
		: !strcmp(c, "bench")		    ? bench(n > 0 ? n : 100, 0)
		: !strcmp(c, "execbench")	    ? bench(n > 0 ? n : 100, 1)
		: !strcmp(c, "execlivebench")
		    ? bench(n > 0 ? n : 100, 2)
		    : (fprintf(stderr, "usage: procs SUBCOMMAND (see the source)\n"), 2);
	fflush(stdout);
	return r;
}
