/* events: pipes, eventfds and epoll as a program sees them (tests/monitor/test_events.c,
 * bench/run.py). Every subcommand prints lines that are the same natively and sandboxed and exits
 * 0 when every check holds; a check that fails prints "WRONG: <what>" and the exit status is 1.
 *
 *   pipe          pipe/pipe2: bytes through, EOF, EAGAIN, EPIPE, status flags, sizes
 *                 (F_GETPIPE_SZ, F_SETPIPE_SZ), bad arguments
 *   pipebudget    pipes grown to 1 MiB until a grow is refused: "grown N, then ENAME"
 *   eventfd       counting and semaphore modes, EAGAIN, the overflow limit, bad arguments
 *   timerfd       relative and absolute timers on three clocks, intervals counted, blocking
 *                 and non-blocking reads, poll and epoll of one, the old value, bad arguments
 *   epoll [FILE]  interest list (ADD, MOD, DEL and their errors), level and edge triggering,
 *                 EPOLLONESHOT, timeouts, maxevents, epoll_pwait2, an epoll inside an epoll;
 *                 FILE (default: the program) is a regular file to be refused
 *   threads [FILE]  a thread asleep in epoll_wait woken by another's eventfd write; 4 MiB
 *                 through a pipe between two threads (the writer blocks on a full pipe); a
 *                 thread blocked in read woken by a write and then by the writer's close;
 *                 with FILE, sendfile of it into a pipe another thread drains
 *   hold          holds a pipe and an epoll, waiting 10 times 300 ms in epoll_wait (for pauses
 *                 and snapshots)
 *   snap N [HOLD] pipes (one with bytes in flight, one grown to 256 KiB holding 200,000
 *                 bytes, one without a reader), an eventfd and a dup of it, an epoll watching
 *                 them, socket pairs (bytes queued in a stream one); N beats of 1 ms, the last
 *                 held until the file HOLD exists; then what each holds (a snapshot taken
 *                 meanwhile keeps it all)
 *   pingpong N    N round trips of one byte between two threads over two pipes, and N eventfd
 *                 wakeups through epoll_wait: "pipe_rtt N NS" and "epoll_wake N NS" (ns per
 *                 round trip) on stderr, for bench/run.py; and N/100 one-shot timerfds 200 us
 *                 ahead, each read when it fires: "timer_late N NS", how late the reader woke */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "errname.h"
#include "wrong.h"

#ifndef SYS_epoll_pwait2
#define SYS_epoll_pwait2 441
#endif

/* A call that must succeed (r >= 0): names it and errno otherwise, and stops. */
static long must(long r, const char *what)
{
	if (r < 0) {
		wrong("%s: %s", what, errname(errno));
		fflush(stdout);
		exit(1);
	}
	return r;
}

/* A call that must fail with errno `want`: prints "what: ENAME". */
static void fails(long r, int want, const char *what)
{
	int e = errno;
	if (r >= 0)
		wrong("%s: succeeded (%ld), wanted %s", what, r, errname(want));
	else if (e != want)
		wrong("%s: %s, wanted %s", what, errname(e), errname(want));
	else
		printf("%s: %s\n", what, errname(e));
}

static void expect(long got, long want, const char *what)
{
	if (got != want)
		wrong("%s: %ld, wanted %ld", what, got, want);
}

static long long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void sleep_ms(long ms)
{
	struct timespec t = {ms / 1000, (ms % 1000) * 1000000};
	while (nanosleep(&t, &t) != 0 && errno == EINTR)
		;
}

/* An address no mapping holds. */
static void *unmapped(void)
{
	void *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(p, 4096);
	return p;
}

static int cmd_pipe(void)
{
	int p[2];
	must(pipe(p), "pipe");
	struct stat st;
	must(fstat(p[0], &st), "fstat");
	printf("fifo: %s\n", S_ISFIFO(st.st_mode) ? "yes" : "no");
	expect(fcntl(p[0], F_GETFD), 0, "pipe: FD_CLOEXEC");
	expect(fcntl(p[0], F_GETFL) & O_ACCMODE, O_RDONLY, "read end O_RDONLY");
	expect(fcntl(p[1], F_GETFL) & O_ACCMODE, O_WRONLY, "write end O_WRONLY");
	expect(write(p[1], "hello", 5), 5, "write");
	char buf[64] = {0};
	expect(read(p[0], buf, sizeof(buf)), 5, "read");
	printf("read: %s\n", buf);
	fails(write(p[0], "x", 1), EBADF, "write to the read end");
	fails(read(p[1], buf, 1), EBADF, "read from the write end");
	close(p[1]);
	expect(read(p[0], buf, sizeof(buf)), 0, "read at EOF");
	printf("eof: yes\n");
	close(p[0]);

	must(pipe2(p, O_CLOEXEC | O_NONBLOCK), "pipe2");
	expect(fcntl(p[0], F_GETFD), FD_CLOEXEC, "pipe2: FD_CLOEXEC");
	expect((fcntl(p[1], F_GETFL) & O_NONBLOCK) != 0, 1, "pipe2: O_NONBLOCK");
	fails(read(p[0], buf, 1), EAGAIN, "empty nonblocking read");
	/* Fill it: the default pipe holds 64 KiB. */
	long total = 0, n;
	static char big[65536];
	while ((n = write(p[1], big, sizeof(big))) > 0)
		total += n;
	if (errno != EAGAIN)
		wrong("filling: %s", errname(errno));
	printf("full at: %ld\n", total);
	must(fcntl(p[1], F_SETFL, 0), "F_SETFL 0");
	expect(fcntl(p[1], F_GETFL) & O_NONBLOCK, 0, "O_NONBLOCK cleared");
	close(p[0]);
	signal(SIGPIPE, SIG_IGN);
	fails(write(p[1], "x", 1), EPIPE, "write with no reader");
	close(p[1]);

	/* The generic ioctls libuv uses instead of fcntl. */
	must(pipe(p), "pipe");
	int one = 1, zero = 0;
	must(ioctl(p[0], FIONBIO, &one), "FIONBIO on");
	expect((fcntl(p[0], F_GETFL) & O_NONBLOCK) != 0, 1, "FIONBIO sets O_NONBLOCK");
	fails(read(p[0], buf, 1), EAGAIN, "read after FIONBIO");
	must(ioctl(p[0], FIONBIO, &zero), "FIONBIO off");
	expect(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0, "FIONBIO clears O_NONBLOCK");
	must(ioctl(p[1], FIOCLEX), "FIOCLEX");
	expect(fcntl(p[1], F_GETFD), FD_CLOEXEC, "FIOCLEX sets FD_CLOEXEC");
	must(ioctl(p[1], FIONCLEX), "FIONCLEX");
	expect(fcntl(p[1], F_GETFD), 0, "FIONCLEX clears it");
	char link[64], path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", p[0]);
	n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	printf("/proc/self/fd of a pipe: %.6s\n", link);
	close(p[0]);
	close(p[1]);
	printf("ioctls: FIONBIO, FIOCLEX, FIONCLEX\n");

	/* Its size, as Python's test_fcntl and pipe-heavy tools ask for it. */
	must(pipe2(p, O_NONBLOCK), "pipe2");
	printf("F_GETPIPE_SZ: %ld\n", must(fcntl(p[1], F_GETPIPE_SZ), "F_GETPIPE_SZ"));
	printf("F_SETPIPE_SZ 100000: %ld\n",
	       must(fcntl(p[1], F_SETPIPE_SZ, 100000), "F_SETPIPE_SZ 100000"));
	expect(fcntl(p[0], F_GETPIPE_SZ), 131072, "the read end's size after the set");
	for (total = 0; (n = write(p[1], big, sizeof(big))) > 0;)
		total += n;
	printf("full at: %ld\n", total);
	fails(fcntl(p[1], F_SETPIPE_SZ, 4096), EBUSY, "F_SETPIPE_SZ below what it holds");
	fails(fcntl(p[1], F_SETPIPE_SZ, 1ul << 32 | 3ul << 30), EINVAL, "F_SETPIPE_SZ 3 GiB");
	printf("F_SETPIPE_SZ 1 MiB: %ld\n",
	       must(fcntl(p[1], F_SETPIPE_SZ, 1 << 20), "F_SETPIPE_SZ 1 MiB"));
	close(p[0]);
	close(p[1]);
	int ev = (int)must(eventfd(0, 0), "eventfd");
	fails(fcntl(ev, F_GETPIPE_SZ), EBADF, "F_GETPIPE_SZ of an eventfd");
	close(ev);

	fails(pipe2(p, 0x40), EINVAL, "pipe2 with O_CREAT");
	fails(pipe(unmapped()), EFAULT, "pipe into an unmapped array");
	/* dup2 of an end keeps the pipe open. */
	must(pipe(p), "pipe");
	int d = (int)must(dup(p[1]), "dup");
	close(p[1]);
	expect(write(d, "ab", 2), 2, "write through the dup");
	close(d);
	expect(read(p[0], buf, sizeof(buf)), 2, "read after the dup's write");
	expect(read(p[0], buf, sizeof(buf)), 0, "EOF once every write end closed");
	close(p[0]);
	return failures ? 1 : 0;
}

/* What /proc/self/fd says fd is. */
static void show_link(int fd)
{
	char link[64], path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	long n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	printf("/proc/self/fd: %s\n", link);
}

static int cmd_eventfd(void)
{
	int e = (int)must(eventfd(3, 0), "eventfd");
	uint64_t v = 0;
	expect(read(e, &v, 8), 8, "read");
	printf("count: %llu\n", (unsigned long long)v);
	v = 5;
	expect(write(e, &v, 8), 8, "write 5");
	v = 7;
	expect(write(e, &v, 8), 8, "write 7");
	expect(read(e, &v, 8), 8, "read");
	printf("sum: %llu\n", (unsigned long long)v);
	fails(read(e, &v, 4), EINVAL, "read of 4 bytes");
	v = UINT64_MAX;
	fails(write(e, &v, 8), EINVAL, "write of 2^64-1");
	close(e);

	e = (int)must(eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC), "eventfd2");
	expect(fcntl(e, F_GETFD), FD_CLOEXEC, "EFD_CLOEXEC");
	for (int i = 0; i < 2; i++) {
		expect(read(e, &v, 8), 8, "semaphore read");
		printf("semaphore: %llu\n", (unsigned long long)v);
	}
	fails(read(e, &v, 8), EAGAIN, "read of a zero count");
	/* UINT64_MAX - 1 is the most it holds: a write past it would wait. */
	v = UINT64_MAX - 2;
	expect(write(e, &v, 8), 8, "write up to the limit");
	v = 1;
	expect(write(e, &v, 8), 8, "write to the limit");
	fails(write(e, &v, 8), EAGAIN, "write past the limit");
	close(e);
	fails(eventfd(0, 0x10), EINVAL, "eventfd2 with an unknown flag");
	e = (int)must(eventfd(0, 0), "eventfd");
	int ep = (int)must(epoll_create1(0), "epoll_create1");
	show_link(e);
	show_link(ep);
	close(e);
	close(ep);
	return failures ? 1 : 0;
}

static long long ts_ns(struct timespec t)
{
	return (long long)t.tv_sec * 1000000000 + t.tv_nsec;
}

static struct itimerspec tspec(long long value_ns, long long interval_ns)
{
	return (struct itimerspec){{interval_ns / 1000000000, interval_ns % 1000000000},
				   {value_ns / 1000000000, value_ns % 1000000000}};
}

/* Whether fd becomes readable within ms, through poll or through an epoll. */
static int ready_within(int fd, int ms, int use_epoll)
{
	if (!use_epoll) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
	}
	int ep = (int)must(epoll_create1(EPOLL_CLOEXEC), "epoll_create1");
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 7};
	must(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), "epoll_ctl ADD timerfd");
	int n = epoll_wait(ep, &ev, 1, ms);
	close(ep);
	return n == 1 && ev.data.u64 == 7;
}

static int cmd_timerfd(void)
{
	int t = (int)must(timerfd_create(CLOCK_MONOTONIC, 0), "timerfd_create");
	struct itimerspec cur, old;
	must(timerfd_gettime(t, &cur), "timerfd_gettime");
	printf("new timer disarmed: %s\n",
	       ts_ns(cur.it_value) || ts_ns(cur.it_interval) ? "no" : "yes");
	struct itimerspec nv = tspec(30000000, 10000000);
	long long t0 = now_ns();
	must(timerfd_settime(t, 0, &nv, &old), "timerfd_settime");
	expect(ts_ns(old.it_value), 0, "the old value of a disarmed timer");
	uint64_t v = 0;
	expect(read(t, &v, 8), 8, "a blocking read");
	if (now_ns() - t0 < 25000000)
		wrong("a 30 ms timer fired after %lld ns", now_ns() - t0);
	printf("fired: %s\n", v >= 1 ? "yes" : "no");
	usleep(35000);
	expect(read(t, &v, 8), 8, "a read after 35 ms");
	printf("ticks of a 10 ms interval in 35 ms counted: %s\n", v >= 2 ? "yes" : "no");
	must(timerfd_gettime(t, &cur), "timerfd_gettime");
	printf("interval %lld ms, next within it: %s\n", ts_ns(cur.it_interval) / 1000000,
	       ts_ns(cur.it_value) > 0 && ts_ns(cur.it_value) <= 10000000 ? "yes" : "no");
	nv = tspec(0, 0);
	must(timerfd_settime(t, 0, &nv, &old), "disarming");
	printf("disarming gives the old interval: %lld ms\n", ts_ns(old.it_interval) / 1000000);
	must(fcntl(t, F_SETFL, O_NONBLOCK), "F_SETFL O_NONBLOCK");
	fails(read(t, &v, 8), EAGAIN, "read of a disarmed timer");
	fails(read(t, &v, 4), EINVAL, "read of 4 bytes");
	close(t);

	/* Absolute times, on each clock; a time gone by fires at once. */
	const clockid_t clocks[3] = {CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME};
	const char *names[3] = {"CLOCK_MONOTONIC", "CLOCK_REALTIME", "CLOCK_BOOTTIME"};
	for (int i = 0; i < 3; i++) {
		t = (int)must(timerfd_create(clocks[i], TFD_NONBLOCK | TFD_CLOEXEC), names[i]);
		expect(fcntl(t, F_GETFD), FD_CLOEXEC, "TFD_CLOEXEC");
		fails(read(t, &v, 8), EAGAIN, "read before it fires");
		struct timespec now;
		t0 = now_ns(); /* before: time lost after the clock's reading counts toward 40 ms */
		clock_gettime(clocks[i], &now);
		nv = tspec(ts_ns(now) + 40000000, 0);
		must(timerfd_settime(t, TFD_TIMER_ABSTIME, &nv, NULL), "TFD_TIMER_ABSTIME");
		int ok = ready_within(t, 2000, i == 1);
		long long dt = now_ns() - t0;
		if (dt < 30000000)
			wrong("%s: an absolute time 40 ms ahead fired after %lld ns", names[i], dt);
		printf("%s: absolute time 40 ms ahead fired: %s\n", names[i], ok ? "yes" : "no");
		expect(read(t, &v, 8), 8, "read");
		nv = tspec(ts_ns(now) - 1000000000ll, 0);
		must(timerfd_settime(t, TFD_TIMER_ABSTIME, &nv, NULL), "an absolute time gone by");
		printf("%s: a time gone by fires at once: %s\n", names[i],
		       ready_within(t, 1000, 0) ? "yes" : "no");
		close(t);
	}

	/* What Linux refuses. */
	fails(timerfd_create(42, 0), EINVAL, "timerfd_create of clock 42");
	fails(timerfd_create(CLOCK_MONOTONIC, 0x10), EINVAL, "timerfd_create with an unknown flag");
	t = (int)must(timerfd_create(CLOCK_MONOTONIC, 0), "timerfd_create");
	nv = tspec(1000000000, 0);
	fails(timerfd_settime(t, 0x10, &nv, NULL), EINVAL, "timerfd_settime with an unknown flag");
	nv.it_value.tv_nsec = 1000000000;
	fails(timerfd_settime(t, 0, &nv, NULL), EINVAL, "timerfd_settime of 10^9 ns");
	nv.it_value = (struct timespec){-1, 0};
	fails(timerfd_settime(t, 0, &nv, NULL), EINVAL, "timerfd_settime of -1 s");
	fails(timerfd_settime(t, 0, (void *)16, NULL), EFAULT, "timerfd_settime of a bad address");
	int e = (int)must(eventfd(0, 0), "eventfd");
	fails(timerfd_gettime(e, &cur), EINVAL, "timerfd_gettime of an eventfd");
	fails(timerfd_gettime(999, &cur), EBADF, "timerfd_gettime of a closed fd");
	show_link(t);
	close(e);
	close(t);
	return failures ? 1 : 0;
}

/* The events epoll_wait reports now, as "name=events:data" in order of the data. */
static void show(int ep, int max, int ms, const char *what)
{
	struct epoll_event ev[8];
	int n = epoll_wait(ep, ev, max, ms);
	if (n < 0) {
		wrong("%s: epoll_wait: %s", what, errname(errno));
		return;
	}
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (ev[j].data.u64 < ev[i].data.u64) {
				struct epoll_event t = ev[i];
				ev[i] = ev[j];
				ev[j] = t;
			}
	printf("%s: %d", what, n);
	for (int i = 0; i < n; i++)
		printf(" %#x:%llx", ev[i].events, (unsigned long long)ev[i].data.u64);
	printf("\n");
}

static int cmd_epoll(const char *self)
{
	fails(syscall(SYS_epoll_create, 0), EINVAL, "epoll_create(0)"); /* musl: epoll_create1 */
	expect(syscall(SYS_epoll_create, 1) >= 0, 1, "epoll_create(1)");
	fails(epoll_create1(1), EINVAL, "epoll_create1 with an unknown flag");
	int ep = (int)must(epoll_create1(EPOLL_CLOEXEC), "epoll_create1");
	expect(fcntl(ep, F_GETFD), FD_CLOEXEC, "EPOLL_CLOEXEC");
	int p[2], q[2];
	must(pipe2(p, O_NONBLOCK), "pipe2");
	must(pipe2(q, O_NONBLOCK), "pipe2");
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x1122334455667788ull};
	must(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev), "ADD p");
	fails(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev), EEXIST, "ADD twice");
	fails(epoll_ctl(ep, EPOLL_CTL_MOD, q[0], &ev), ENOENT, "MOD of an fd not added");
	fails(epoll_ctl(ep, EPOLL_CTL_DEL, q[0], NULL), ENOENT, "DEL of an fd not added");
	fails(epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev), EINVAL, "ADD of itself");
	fails(epoll_ctl(p[0], EPOLL_CTL_ADD, q[0], &ev), EINVAL, "epfd not an epoll");
	fails(epoll_ctl(ep, 99, q[0], &ev), EINVAL, "unknown op");
	fails(epoll_ctl(ep, EPOLL_CTL_ADD, 999, &ev), EBADF, "ADD of a closed fd");
	fails(epoll_ctl(999, EPOLL_CTL_ADD, q[0], &ev), EBADF, "closed epfd");
	fails(epoll_ctl(ep, EPOLL_CTL_ADD, q[0], unmapped()), EFAULT, "event unmapped");
	int f = (int)must(open(self, O_RDONLY), "open of the program");
	fails(epoll_ctl(ep, EPOLL_CTL_ADD, f, &ev), EPERM, "ADD of a regular file");
	close(f);
	f = (int)must(open("/dev/null", O_RDONLY), "open /dev/null");
	fails(epoll_ctl(ep, EPOLL_CTL_ADD, f, &ev), EPERM, "ADD of /dev/null");
	close(f);
	struct epoll_event out[4];
	fails(epoll_wait(ep, out, 0, 0), EINVAL, "maxevents 0");
	fails(epoll_wait(p[0], out, 1, 0), EINVAL, "wait on a pipe");

	show(ep, 4, 0, "nothing ready");
	long long t0 = now_ns();
	show(ep, 4, 60, "60 ms timeout");
	if (now_ns() - t0 < 55000000)
		wrong("the 60 ms wait ended after %lld ns", now_ns() - t0);
	expect(write(p[1], "ab", 2), 2, "write p");
	show(ep, 4, -1, "level p");
	show(ep, 4, -1, "level p again");
	ev.events = EPOLLIN | EPOLLET;
	ev.data.u64 = 2;
	must(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev), "MOD p to edge");
	show(ep, 4, 0, "edge p");
	show(ep, 4, 0, "edge p again");
	expect(write(p[1], "c", 1), 1, "write p");
	show(ep, 4, 0, "edge p after a write");
	ev.events = EPOLLIN | EPOLLONESHOT;
	ev.data.u64 = 3;
	must(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev), "MOD p to oneshot");
	show(ep, 4, 0, "oneshot p");
	show(ep, 4, 0, "oneshot p disarmed");
	ev.events = EPOLLOUT;
	ev.data.u64 = 4;
	must(epoll_ctl(ep, EPOLL_CTL_ADD, q[1], &ev), "ADD q out");
	ev.events = EPOLLIN;
	ev.data.u64 = 5;
	must(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev), "rearm p");
	fails(epoll_wait(ep, unmapped(), 1, 0), EFAULT, "events for an unmapped array");
	show(ep, 4, 0, "p in and q out");
	/* Which one comes first is the ready list's order (Linux puts events back at its head
	 * after a failed copy, the sandbox's host at its tail): the count alone. */
	expect(epoll_wait(ep, out, 1, 0), 1, "maxevents 1");
	must(epoll_ctl(ep, EPOLL_CTL_DEL, q[1], NULL), "DEL q");
	close(p[1]);
	char buf[8];
	expect(read(p[0], buf, sizeof(buf)), 3, "drain p");
	show(ep, 4, 0, "p after its writer closed");
	/* A closed fd leaves the interest list by itself. */
	close(p[0]);
	show(ep, 4, 0, "after p closed");
	/* epoll_pwait2's timespec. */
	struct timespec ts = {0, 30000000};
	t0 = now_ns();
	long r = syscall(SYS_epoll_pwait2, ep, out, 4, &ts, NULL, 8);
	if (r < 0 && errno == ENOSYS)
		printf("epoll_pwait2: 0\n"); /* a host kernel before 5.11 */
	else
		printf("epoll_pwait2: %ld\n", r);
	if (r == 0 && now_ns() - t0 < 25000000)
		wrong("epoll_pwait2's 30 ms wait ended after %lld ns", now_ns() - t0);
	/* An epoll inside an epoll: readable when the inner one has events. */
	int outer = (int)must(epoll_create1(0), "epoll_create1");
	ev.events = EPOLLIN;
	ev.data.u64 = 6;
	must(epoll_ctl(outer, EPOLL_CTL_ADD, ep, &ev), "ADD an epoll");
	int e = (int)must(eventfd(0, EFD_NONBLOCK), "eventfd");
	ev.data.u64 = 7;
	must(epoll_ctl(ep, EPOLL_CTL_ADD, e, &ev), "ADD eventfd");
	show(outer, 4, 0, "outer, inner idle");
	uint64_t one = 1;
	expect(write(e, &one, 8), 8, "eventfd write");
	show(outer, 4, 0, "outer, inner ready");
	show(ep, 4, 0, "inner");
	fails(epoll_ctl(ep, EPOLL_CTL_ADD, outer, &ev), ELOOP, "a loop of epolls");
	/* An edge-triggered event survives a wait that could not write it out. */
	int et = (int)must(eventfd(0, EFD_NONBLOCK), "eventfd");
	ev.events = EPOLLIN | EPOLLET;
	ev.data.u64 = 8;
	must(epoll_ctl(outer, EPOLL_CTL_ADD, et, &ev), "ADD edge-triggered");
	expect(write(et, &one, 8), 8, "eventfd write");
	fails(epoll_wait(outer, unmapped(), 4, 0), EFAULT, "edge event for an unmapped array");
	show(outer, 4, 0, "the edge event after the failed wait");
	close(et);
	close(outer);
	close(e);
	close(q[0]);
	close(q[1]);
	close(ep);
	return failures ? 1 : 0;
}

struct waiter {
	int ep;
	int n;
	uint64_t data;
};

static void *epoll_waiter(void *arg)
{
	struct waiter *w = arg;
	struct epoll_event ev;
	w->n = epoll_wait(w->ep, &ev, 1, -1);
	w->data = ev.data.u64;
	return NULL;
}

#define PIPE_BYTES (4 << 20)

static void *pipe_writer(void *arg)
{
	int fd = *(int *)arg;
	static char chunk[100000];
	long sent = 0;
	while (sent < PIPE_BYTES) {
		long n = PIPE_BYTES - sent < (long)sizeof(chunk) ? PIPE_BYTES - sent
								 : (long)sizeof(chunk);
		for (long i = 0; i < n; i++)
			chunk[i] = (char)((sent + i) * 7);
		n = write(fd, chunk, (size_t)n);
		if (n <= 0)
			break;
		sent += n;
	}
	close(fd);
	return (void *)sent;
}

static void *reader(void *arg)
{
	int fd = *(int *)arg;
	char buf[16];
	long n = read(fd, buf, sizeof(buf));
	long m = read(fd, buf, sizeof(buf)); /* EOF when the writer closes */
	return (void *)(n * 100 + m);
}

static void *drain(void *arg)
{
	int fd = *(int *)arg;
	static char buf[65536];
	long got = 0, n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		got += n;
	return (void *)got;
}

static int cmd_threads(const char *file)
{
	/* A thread asleep in epoll_wait, woken by an eventfd write from another. */
	int ep = (int)must(epoll_create1(0), "epoll_create1");
	int e = (int)must(eventfd(0, EFD_NONBLOCK), "eventfd");
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 42};
	must(epoll_ctl(ep, EPOLL_CTL_ADD, e, &ev), "ADD");
	struct waiter w = {.ep = ep};
	pthread_t t;
	must(-pthread_create(&t, NULL, epoll_waiter, &w), "pthread_create");
	sleep_ms(50);
	uint64_t one = 1;
	expect(write(e, &one, 8), 8, "eventfd write");
	pthread_join(t, NULL);
	printf("woken: %d event, data %llu\n", w.n, (unsigned long long)w.data);
	close(e);
	close(ep);

	/* 4 MiB through a 64 KiB pipe: the writer waits on a full pipe while the reader reads. */
	int p[2];
	must(pipe(p), "pipe");
	must(-pthread_create(&t, NULL, pipe_writer, &p[1]), "pthread_create");
	static char buf[65536];
	long got = 0, bad = -1, n;
	while ((n = read(p[0], buf, sizeof(buf))) > 0) {
		for (long i = 0; i < n && bad < 0; i++)
			if (buf[i] != (char)((got + i) * 7))
				bad = got + i;
		got += n;
	}
	void *sent;
	pthread_join(t, &sent);
	close(p[0]);
	printf("pipe: %ld bytes sent, %ld received\n", (long)sent, got);
	if (bad >= 0)
		wrong("byte %ld differs", bad);

	/* A thread blocked in read: the write wakes it, then the writer's close gives EOF. */
	must(pipe(p), "pipe");
	must(-pthread_create(&t, NULL, reader, &p[0]), "pthread_create");
	sleep_ms(30);
	expect(write(p[1], "wake", 4), 4, "write");
	sleep_ms(30);
	close(p[1]);
	void *rr;
	pthread_join(t, &rr);
	printf("reader: %ld bytes, then %ld\n", (long)rr / 100, (long)rr % 100);
	close(p[0]);

	/* sendfile of a whole file into a pipe that another thread drains. */
	if (file) {
		int f = (int)must(open(file, O_RDONLY), "open");
		struct stat st;
		must(fstat(f, &st), "fstat");
		must(pipe(p), "pipe");
		must(-pthread_create(&t, NULL, drain, &p[0]), "pthread_create");
		long sent = 0;
		while (sent < st.st_size) {
			long m = (long)sendfile(p[1], f, NULL, (size_t)(st.st_size - sent));
			if (m <= 0) {
				wrong("sendfile: %s", errname(errno));
				break;
			}
			sent += m;
		}
		close(p[1]);
		void *got;
		pthread_join(t, &got);
		close(p[0]);
		close(f);
		printf("sendfile: the whole file through a pipe: %s\n",
		       sent == st.st_size && (long)got == sent ? "yes" : "no");
	}
	return failures ? 1 : 0;
}

static int cmd_hold(void)
{
	int p[2];
	must(pipe(p), "pipe");
	int ep = (int)must(epoll_create1(0), "epoll_create1");
	struct epoll_event ev = {.events = EPOLLIN};
	must(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev), "ADD");
	printf("holding a pipe\n");
	int shorter = 0;
	for (int i = 0; i < 10; i++) {
		long long t0 = now_ns();
		if (epoll_wait(ep, &ev, 1, 300) != 0)
			wrong("wait %d: %s", i, errname(errno));
		shorter += now_ns() - t0 < 295000000;
	}
	printf("10 waits of 300 ms, %d short\n", shorter);
	return failures ? 1 : 0;
}

/* snap N HOLD: a pipe with bytes in flight, a pipe whose reader is gone, an eventfd with a
 * count and a dup of it, an epoll watching them; N beats of 1 ms, the last held until the file
 * HOLD exists (a test takes a snapshot meanwhile); then what each object holds, which a
 * restore must have kept. */
static int cmd_snap(long n, const char *hold)
{
	signal(SIGPIPE, SIG_IGN);
	int p[2], q[2];
	must(pipe(p), "pipe");
	must(pipe2(q, O_NONBLOCK), "pipe2");
	close(q[0]);
	int e = (int)must(eventfd(0, EFD_NONBLOCK), "eventfd");
	int e2 = (int)must(dup(e), "dup");
	int ep = (int)must(epoll_create1(EPOLL_CLOEXEC), "epoll_create1");
	int sv[2], dg[2];
	must(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair");
	must(socketpair(AF_UNIX, SOCK_DGRAM, 0, dg), "socketpair");
	if (write(sv[0], "ping", 4) != 4)
		wrong("socket write: %s", errname(errno));
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x1111};
	must(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev), "ADD pipe");
	ev.data.u64 = 0x2222;
	must(epoll_ctl(ep, EPOLL_CTL_ADD, e, &ev), "ADD eventfd");
	/* A registration on a descriptor closed since: gone with it. */
	int gone = (int)must(eventfd(1, 0), "eventfd");
	ev.data.u64 = 0x3333;
	must(epoll_ctl(ep, EPOLL_CTL_ADD, gone, &ev), "ADD gone");
	close(gone);
	if (write(p[1], "in flight", 9) != 9)
		wrong("write: %s", errname(errno));
	/* A pipe grown past Linux's default holding more than the default's 64 KiB. */
	int g[2];
	static char big[200000];
	must(pipe2(g, O_NONBLOCK), "pipe2");
	must(fcntl(g[1], F_SETPIPE_SZ, 256 << 10), "F_SETPIPE_SZ");
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7 + i / 251);
	expect(write(g[1], big, sizeof(big)), sizeof(big), "write into the grown pipe");
	uint64_t v = 5;
	if (write(e2, &v, 8) != 8)
		wrong("eventfd write: %s", errname(errno));
	for (long i = 1; i <= n; i++) {
		printf("beat %ld\n", i);
		while (hold && i == n - 1 && access(hold, F_OK) != 0)
			usleep(1000);
		usleep(1000);
	}
	struct epoll_event out[4];
	int k = epoll_wait(ep, out, 4, 0);
	uint64_t sum = 0;
	for (int i = 0; i < k; i++)
		sum += out[i].data.u64;
	printf("ready %d, data sum 0x%llx\n", k, (unsigned long long)sum);
	char buf[32] = "";
	ssize_t r = read(p[0], buf, sizeof(buf) - 1);
	printf("pipe: %zd \"%s\"\n", r, r > 0 ? buf : "");
	v = 2;
	if (write(e, &v, 8) != 8 || read(e2, &v, 8) != 8)
		wrong("eventfd: %s", errname(errno));
	printf("eventfd count %llu through its dup\n", (unsigned long long)v);
	r = write(q[1], "x", 1);
	printf("pipe without a reader: %s\n", r < 0 ? errname(errno) : "written");
	int fl = fcntl(q[1], F_GETFL);
	printf("its O_NONBLOCK: %s\n", fl >= 0 && (fl & O_NONBLOCK) ? "kept" : "lost");
	char d = 0;
	int dgram = send(dg[0], "d", 1, 0) == 1 && recv(dg[1], &d, 1, 0) == 1 && d == 'd';
	memset(buf, 0, sizeof(buf));
	r = read(sv[1], buf, sizeof(buf) - 1);
	printf("socket pair: %zd \"%s\", datagram pair %s\n", r, r > 0 ? buf : "",
	       dgram ? "works" : "broken");
	close(p[1]);
	r = read(p[0], buf, sizeof(buf));
	printf("pipe after its writer closed: %zd\n", r);
	static char back[sizeof(big) + 1];
	size_t got = 0;
	while (got < sizeof(back) && (r = read(g[0], back + got, sizeof(back) - got)) > 0)
		got += (size_t)r;
	printf("grown pipe: size %d, %zu bytes %s\n", fcntl(g[0], F_GETPIPE_SZ), got,
	       got == sizeof(big) && !memcmp(back, big, got) ? "as written" : "changed");
	return failures ? 1 : 0;
}

struct pong {
	int in, out;
	long iters;
};

static void *ponger(void *arg)
{
	struct pong *p = arg;
	char c;
	for (long i = 0; i < p->iters; i++)
		if (read(p->in, &c, 1) != 1 || write(p->out, &c, 1) != 1)
			break;
	return NULL;
}

static void *epoll_echo(void *arg)
{
	struct pong *p = arg; /* in: an epoll on an eventfd; out: the eventfd back */
	struct epoll_event ev;
	uint64_t v;
	for (long i = 0; i < p->iters; i++) {
		if (epoll_wait(p->in, &ev, 1, -1) != 1)
			break;
		if (read((int)ev.data.u64, &v, 8) != 8 || write(p->out, &v, 8) != 8)
			break;
	}
	return NULL;
}

static int cmd_pingpong(long iters)
{
	int a[2], b[2];
	must(pipe(a), "pipe");
	must(pipe(b), "pipe");
	struct pong pg = {a[0], b[1], iters};
	pthread_t t;
	must(-pthread_create(&t, NULL, ponger, &pg), "pthread_create");
	char c = 'x';
	long long t0 = now_ns();
	for (long i = 0; i < iters; i++)
		if (write(a[1], &c, 1) != 1 || read(b[0], &c, 1) != 1)
			wrong("round trip %ld", i);
	long long dt = now_ns() - t0;
	pthread_join(t, NULL);
	fprintf(stderr, "pipe_rtt %ld %lld\n", iters, dt / iters);

	int ep = (int)must(epoll_create1(0), "epoll_create1");
	int there = (int)must(eventfd(0, EFD_NONBLOCK), "eventfd");
	int back = (int)must(eventfd(0, 0), "eventfd");
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)there};
	must(epoll_ctl(ep, EPOLL_CTL_ADD, there, &ev), "ADD");
	struct pong pe = {ep, back, iters};
	must(-pthread_create(&t, NULL, epoll_echo, &pe), "pthread_create");
	uint64_t v = 1;
	t0 = now_ns();
	for (long i = 0; i < iters; i++)
		if (write(there, &v, 8) != 8 || read(back, &v, 8) != 8)
			wrong("wakeup %ld", i);
	dt = now_ns() - t0;
	pthread_join(t, NULL);
	fprintf(stderr, "epoll_wake %ld %lld\n", iters, dt / iters);

	/* A one-shot timerfd 200 us ahead and a blocking read of it: how late the reader wakes. */
	long shots = iters / 100 > 0 ? iters / 100 : 1;
	int tf = (int)must(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC), "timerfd_create");
	struct itimerspec its = tspec(200000, 0);
	long long late = 0;
	for (long i = 0; i < shots; i++) {
		t0 = now_ns();
		if (timerfd_settime(tf, 0, &its, NULL) < 0 || read(tf, &v, 8) != 8)
			wrong("timer shot %ld", i);
		late += now_ns() - t0 - 200000;
	}
	close(tf);
	fprintf(stderr, "timer_late %ld %lld\n", shots, late / shots);
	printf("pingpong: %ld round trips each\n", iters);
	return failures ? 1 : 0;
}

/* Pipes grown to 1 MiB, each, until a grow is refused (at most 200): "grown N, then ENAME". In
 * the sandbox a process's pipes hold 64 MiB at most; natively that depends on privilege. */
static int cmd_pipebudget(void)
{
	int n = 0, e = 0;
	for (; n < 200; n++) {
		int p[2];
		if (pipe(p) < 0) {
			e = errno;
			break;
		}
		if (fcntl(p[1], F_SETPIPE_SZ, 1 << 20) < 0) {
			e = errno;
			break;
		}
	}
	printf("grown %d, then %s\n", n, e ? errname(e) : "none");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *c = argc > 1 ? argv[1] : "";
	long n = argc > 2 ? atol(argv[2]) : 1000;
	if (!strcmp(c, "pipebudget"))
		return cmd_pipebudget();
	if (!strcmp(c, "pipe"))
		return cmd_pipe();
	if (!strcmp(c, "eventfd"))
		return cmd_eventfd();
	if (!strcmp(c, "timerfd"))
		return cmd_timerfd();
	if (!strcmp(c, "epoll"))
		return cmd_epoll(argc > 2 ? argv[2] : argv[0]);
	if (!strcmp(c, "threads"))
		return cmd_threads(argc > 2 ? argv[2] : NULL);
	if (!strcmp(c, "hold"))
		return cmd_hold();
	if (!strcmp(c, "pingpong"))
		return cmd_pingpong(n > 0 ? n : 1000);
	if (!strcmp(c, "snap"))
		return cmd_snap(n > 2 ? n : 3, argc > 3 ? argv[3] : NULL);
	fprintf(stderr,
		"usage: events pipe|eventfd|timerfd|epoll|threads|hold|pingpong [N] | snap N "
		"[HOLD]\n");
	return 2;
}
