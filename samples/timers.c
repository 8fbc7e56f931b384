/* alarm and setitimer (ITIMER_REAL), and the calls programs make on the way that the sandbox
 * answers as Linux does for an unprivileged process: nice, I/O priorities, the scheduler's
 * policy, socket calls on files, personality, posix_fallocate. Its output is the same natively
 * and in the sandbox.
 *   timers            the checks below, one line each
 *   timers spin       alarm(1), then spin: killed by SIGALRM (status 142)
 *   timers exec       alarm(1), then execve of "timers pause": the alarm outlives the exec
 *   timers pause      pause() with SIGALRM's default action (ends by it)
 *   timers falloc N   posix_fallocate of N bytes in /tmp
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

static void handle(int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = flags;
	sigaction(SIGALRM, &sa, NULL);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void check(const char *what, int ok)
{
	printf("%s: %s\n", what, ok ? "ok" : "WRONG");
}

static void timers(char *self)
{
	(void)self;
	handle(0);
	/* A pause ends with the alarm's handler. */
	double t0 = now();
	alarm(1);
	int r = pause();
	double dt = now() - t0;
	check("alarm ends pause with EINTR after about 1 s",
	      r == -1 && errno == EINTR && alarms == 1 && dt > 0.9 && dt < 5);

	/* What alarm says is left of the previous one. */
	alarm(10);
	unsigned left = alarm(3);
	check("alarm tells the seconds left of the previous one", left == 10 || left == 9);
	check("alarm(0) disarms and tells", alarm(0) == 3);
	struct itimerval cur;
	getitimer(ITIMER_REAL, &cur);
	check("getitimer after disarm is zero",
	      cur.it_value.tv_sec == 0 && cur.it_value.tv_usec == 0);

	/* An interval timer: five ticks of 20 ms. */
	struct itimerval it = {{0, 20000}, {0, 20000}}, old;
	alarms = 0;
	t0 = now();
	setitimer(ITIMER_REAL, &it, NULL);
	sigset_t none;
	sigemptyset(&none);
	while (alarms < 5)
		sigsuspend(&none);
	dt = now() - t0;
	memset(&it, 0, sizeof(it));
	setitimer(ITIMER_REAL, &it, &old);
	check("interval timer ticks", dt >= 0.09 && dt < 5);
	check("setitimer gives the old interval",
	      old.it_interval.tv_sec == 0 && old.it_interval.tv_usec == 20000);

	it.it_value.tv_sec = 5;
	setitimer(ITIMER_REAL, &it, NULL);
	getitimer(ITIMER_REAL, &cur);
	check("getitimer counts down",
	      cur.it_value.tv_sec == 4 || (cur.it_value.tv_sec == 5 && cur.it_value.tv_usec == 0));
	/* A fork's child has no timer of its parent's. */
	pid_t pid = fork();
	if (pid == 0) {
		getitimer(ITIMER_REAL, &cur);
		_exit(cur.it_value.tv_sec || cur.it_value.tv_usec ? 1 : 0);
	}
	int st;
	waitpid(pid, &st, 0);
	check("fork's child has no timer", WIFEXITED(st) && WEXITSTATUS(st) == 0);
	memset(&it, 0, sizeof(it));
	setitimer(ITIMER_REAL, &it, NULL);

	it.it_value.tv_usec = 1000000;
	errno = 0;
	check("setitimer refuses a bad usec",
	      setitimer(ITIMER_REAL, &it, NULL) == -1 && errno == EINVAL);
	errno = 0;
	check("setitimer refuses a bad timer", setitimer(7, &it, NULL) == -1 && errno == EINVAL);

	/* A read cut short by the alarm: EINTR without SA_RESTART. */
	int p[2];
	if (pipe(p) < 0)
		return;
	char c;
	alarms = 0;
	alarm(1);
	ssize_t n = read(p[0], &c, 1);
	check("alarm cuts a read on an empty pipe", n == -1 && errno == EINTR && alarms == 1);
	/* With SA_RESTART the read goes on, and ends with the data a child writes later. */
	handle(SA_RESTART);
	alarms = 0;
	pid = fork();
	if (pid == 0) {
		usleep(1500000);
		_exit(write(p[1], "x", 1) == 1 ? 0 : 1);
	}
	alarm(1);
	n = read(p[0], &c, 1);
	waitpid(pid, &st, 0);
	check("SA_RESTART read goes on after the alarm", n == 1 && c == 'x' && alarms == 1);

	/* A wait on a semaphore nobody posts: the alarm ends it, no deadlock. */
	handle(0);
	alarms = 0;
	sem_t sem;
	sem_init(&sem, 0, 0);
	alarm(1);
	r = sem_wait(&sem);
	check("alarm cuts a sem_wait of a single thread", r == -1 && errno == EINTR && alarms == 1);

	/* nice: raised only, as an unprivileged process may. */
	errno = 0;
	int pr = getpriority(PRIO_PROCESS, 0);
	check("getpriority", pr == 0 && errno == 0);
	check("nice raises", nice(3) == 3 && getpriority(PRIO_PROCESS, 0) == 3);
	/* I/O priorities (ionice), kept and read back; no libc wraps them. Class << 13 | level. */
	check("ioprio_set idle, then best-effort 7, read back",
	      syscall(SYS_ioprio_set, 1, 0, 3 << 13) == 0 &&
		  syscall(SYS_ioprio_get, 1, 0) >> 13 == 3 &&
		  syscall(SYS_ioprio_set, 1, getpid(), 2 << 13 | 7) == 0 &&
		  syscall(SYS_ioprio_get, 1, 0) == (2 << 13 | 7));
	errno = 0;
	check("ioprio_set of a class Linux lacks is EINVAL",
	      syscall(SYS_ioprio_set, 1, 0, 5 << 13) == -1 && errno == EINVAL);
	errno = 0;
	check("ioprio_get of who 9 is EINVAL",
	      syscall(SYS_ioprio_get, 9, 0) == -1 && errno == EINVAL);
	/* Through syscall(): musl's wrappers of these two do not call the kernel. */
	check("the scheduler's policy", syscall(SYS_sched_getscheduler, 0) == SCHED_OTHER &&
					    sched_get_priority_max(SCHED_FIFO) == 99 &&
					    sched_get_priority_min(SCHED_OTHER) == 0);
	struct sched_param sp = {0};
	check("sched_getparam", syscall(SYS_sched_getparam, 0, &sp) == 0 && sp.sched_priority == 0);
	cpu_set_t set;
	CPU_ZERO(&set);
	check("sched_getaffinity then setaffinity with it",
	      sched_getaffinity(0, sizeof(set), &set) == 0 &&
		  sched_setaffinity(0, sizeof(set), &set) == 0);
	int cpu = sched_getcpu();
	check("getcpu names one of them", cpu >= 0 && CPU_ISSET(cpu, &set));

	/* Clocks: setting one is refused before privilege counts (a bad time, a clock that
	 * cannot be set); a thread's and a process's CPU clock by id read as their own. */
	struct timespec ts = {1, -1}, t1, t2;
	errno = 0;
	check("clock_settime of a bad time is EINVAL",
	      syscall(SYS_clock_settime, CLOCK_REALTIME, &ts) == -1 && errno == EINVAL);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	errno = 0;
	check("clock_settime of CLOCK_MONOTONIC is EINVAL",
	      syscall(SYS_clock_settime, CLOCK_MONOTONIC, &ts) == -1 && errno == EINVAL);
	clockid_t tc, pc;
	check("the thread's CPU clock by its id",
	      pthread_getcpuclockid(pthread_self(), &tc) == 0 && clock_gettime(tc, &t1) == 0 &&
		  clock_gettime(tc, &t2) == 0 &&
		  (t2.tv_sec > t1.tv_sec || (t2.tv_sec == t1.tv_sec && t2.tv_nsec >= t1.tv_nsec)) &&
		  clock_getres(tc, &ts) == 0);
	check("the process's CPU clock by its pid",
	      clock_getcpuclockid(getpid(), &pc) == 0 && clock_gettime(pc, &t1) == 0);

	/* Socket calls on a file descriptor that is not a socket. */
	struct sockaddr_storage sa;
	socklen_t sl = sizeof(sa);
	errno = 0;
	check("getpeername of a pipe is ENOTSOCK",
	      getpeername(p[0], (struct sockaddr *)&sa, &sl) == -1 && errno == ENOTSOCK);
	errno = 0;
	check("getsockname of a closed fd is EBADF",
	      getsockname(999, (struct sockaddr *)&sa, &sl) == -1 && errno == EBADF);
	errno = 0;
	check("shutdown of a pipe is ENOTSOCK",
	      shutdown(p[1], SHUT_RDWR) == -1 && errno == ENOTSOCK);

	check("personality is Linux's", personality(0xffffffff) == PER_LINUX);

	int fd = open("/tmp/timers-falloc", O_RDWR | O_CREAT | O_TRUNC, 0600);
	struct stat stt;
	check("posix_fallocate makes the file that long",
	      fd >= 0 && posix_fallocate(fd, 0, 100000) == 0 && fstat(fd, &stt) == 0 &&
		  stt.st_size == 100000);
	unlink("/tmp/timers-falloc");
	sync();
	check("syncfs", syncfs(fd) == 0);
	close(fd);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc > 1 && strcmp(argv[1], "spin") == 0) {
		alarm(1);
		for (volatile unsigned long i = 0;; i++)
			;
	}
	if (argc > 1 && strcmp(argv[1], "pause") == 0) {
		struct itimerval cur;
		getitimer(ITIMER_REAL, &cur);
		printf("after exec, the alarm is %s, nice %d\n",
		       cur.it_value.tv_sec || cur.it_value.tv_usec ? "still armed" : "gone",
		       getpriority(PRIO_PROCESS, 0));
		pause();
		return 0;
	}
	if (argc > 2 && strcmp(argv[1], "falloc") == 0) {
		int fd = open("/tmp/timers-falloc", O_RDWR | O_CREAT | O_TRUNC, 0600);
		int e = fd < 0 ? errno : posix_fallocate(fd, 0, atol(argv[2]));
		unlink("/tmp/timers-falloc");
		printf("posix_fallocate %s: %s\n", argv[2], e ? strerror(e) : "ok");
		return e != 0;
	}
	if (argc > 1 && strcmp(argv[1], "exec") == 0) {
		alarm(1);
		if (nice(2) != 2)
			return 1;
		execl("/proc/self/exe", argv[0], "pause", (char *)NULL);
		perror("execl");
		return 1;
	}
	timers(argv[0]);
	return 0;
}
