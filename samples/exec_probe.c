/* A program run many times from one snapshot (tests of sbx_exec): it prints what one run can
 * see of the others. Each run: argv, QUERY_STRING, its stdin, its AT_RANDOM bytes, a global
 * and a heap object it leaves behind, and whether it finds the previous run's secret in either,
 * or in the spare bytes of the repeated-runs mailbox page (0x15800, writable by a program as
 * by the guest kernel).
 * With "warm" as argv[1] it first builds a table (its own initialisation), then reads stdin:
 * the snapshot point of sandbox-serve --warm. "warmpool" also starts a pool of three threads
 * before that read, as a server's initialisation (or Go's runtime) does: one sleeps in a loop,
 * two wait on a condition variable for the request, which each hashes; "pool=ok" says each got
 * this run's request and nothing of another. "warmreader": the read (the point) is a pool
 * thread's, not main's. "warmobj" (and the two above) holds a pipe with bytes in it, an eventfd
 * with a count and an epoll instance watching the pipe at the point: "objects=ok" says each run
 * finds them as at the snapshot, whatever the last run read or wrote. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static char secret[300];
static char *heap_secret;
static unsigned table[4096];

/* The pool: the request goes to the workers under mu; each answers with its hash. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static char job[256];
static int have_job, answers, reader;
static unsigned answer[2], ticks;

static unsigned hash(const char *s, unsigned seed)
{
	unsigned h = seed * 2654435761u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static void *worker(void *arg)
{
	unsigned id = (unsigned)(size_t)arg;
	pthread_mutex_lock(&mu);
	if (reader && id == 0) {
		/* The snapshot point, on this thread. */
		pthread_mutex_unlock(&mu);
		size_t n = fread(job, 1, sizeof(job) - 1, stdin);
		pthread_mutex_lock(&mu);
		job[n] = 0;
		have_job = 1;
		pthread_cond_broadcast(&cv);
	}
	while (!have_job)
		pthread_cond_wait(&cv, &mu);
	answer[id] = hash(job, id + 1);
	answers++;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	return NULL;
}

static void *sleeper(void *arg)
{
	(void)arg;
	for (;;) {
		struct timespec ts = {0, 1000 * 1000};
		nanosleep(&ts, NULL);
		__atomic_fetch_add(&ticks, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static int obj_pipe[2], obj_efd = -1, obj_ep = -1;

/* Above stdio: a sandbox opened without stdio has fds 0-2 free until a run brings its own. */
static int high(int fd)
{
	int h = fd < 0 ? -1 : fcntl(fd, F_DUPFD, 10);
	if (fd >= 0)
		close(fd);
	return h;
}

static int objects_make(void)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x5eed};
	int p[2];
	if (pipe(p))
		return -1;
	obj_pipe[0] = high(p[0]);
	obj_pipe[1] = high(p[1]);
	obj_efd = high(eventfd(5, 0));
	obj_ep = high(epoll_create1(0));
	if (obj_pipe[0] < 0 || obj_pipe[1] < 0 || obj_efd < 0 || obj_ep < 0 ||
	    write(obj_pipe[1], "xyz", 3) != 3 || epoll_ctl(obj_ep, EPOLL_CTL_ADD, obj_pipe[0], &ev))
		return -1;
	return 0;
}

/* As at the snapshot, then used up and left otherwise for the next run to find. */
static const char *objects_check(void)
{
	struct epoll_event ev;
	char b[8];
	uint64_t n = 0;
	static char why[64];
	ev.data.u64 = 0;
	int got = epoll_wait(obj_ep, &ev, 1, 0);
	if (got != 1 || ev.data.u64 != 0x5eed) {
		snprintf(why, sizeof(why), "WRONG(epoll:%d:%llx:%d)", got,
			 (unsigned long long)ev.data.u64, got < 0 ? errno : 0);
		return why;
	}
	if (read(obj_pipe[0], b, sizeof(b)) != 3 || memcmp(b, "xyz", 3))
		return "WRONG(pipe)";
	if (read(obj_efd, &n, sizeof(n)) != sizeof(n) || n != 5)
		return "WRONG(eventfd)";
	n = 7;
	if (write(obj_pipe[1], "leak", 4) != 4 || write(obj_efd, &n, sizeof(n)) != sizeof(n))
		return "WRONG(write)";
	return "ok";
}

int main(int argc, char **argv)
{
	int pool = argc > 1 && (!strcmp(argv[1], "warmpool") || !strcmp(argv[1], "warmreader"));
	int objs = pool || (argc > 1 && !strcmp(argv[1], "warmobj"));
	int warm = objs || (argc > 1 && !strcmp(argv[1], "warm"));
	reader = argc > 1 && !strcmp(argv[1], "warmreader");
	if (warm)
		for (unsigned i = 0; i < 4096; i++)
			table[i] = i * 2654435761u;
	if (objs && objects_make())
		return 4;
	pthread_t t[3];
	if (pool) {
		for (size_t i = 0; i < 2; i++)
			if (pthread_create(&t[i], NULL, worker, (void *)i))
				return 3;
		if (pthread_create(&t[2], NULL, sleeper, NULL))
			return 3;
		/* The pool is waiting before the point: the snapshot holds it so. */
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	char in[256];
	if (reader) {
		pthread_mutex_lock(&mu);
		while (answers < 2)
			pthread_cond_wait(&cv, &mu);
		snprintf(in, sizeof(in), "%s", job);
		pthread_mutex_unlock(&mu);
	} else {
		size_t n = fread(in, 1, sizeof(in) - 1, stdin);
		in[n] = 0;
	}
	if (pool && !reader) {
		pthread_mutex_lock(&mu);
		snprintf(job, sizeof(job), "%s", in);
		have_job = 1;
		pthread_cond_broadcast(&cv);
		while (answers < 2)
			pthread_cond_wait(&cv, &mu);
		pthread_mutex_unlock(&mu);
	}
	if (pool) {
		int ok = answers == 2 && answer[0] == hash(in, 1) && answer[1] == hash(in, 2);
		for (int i = 0; i < 2; i++)
			pthread_join(t[i], NULL);
		printf("pool=%s ", ok ? "ok" : "WRONG");
	}
	if (objs)
		printf("objects=%s ", objects_check());
	const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
	unsigned char rnd[8] = {0};
	if (getentropy(rnd, sizeof(rnd)) != 0)
		return 2;
	const char *qs = getenv("QUERY_STRING");
	char *mailbox = (char *)0x15800;
	printf("argc=%d argv1=%s qs=%s in=%s leak=%s%s%s table=%u\n", argc,
	       argc > 1 ? argv[1] : "-", qs ? qs : "-", in, secret[0] ? "global" : "none",
	       heap_secret ? "+heap" : "", mailbox[0] ? "+mailbox" : "", table[4095]);
	printf("at_random=");
	for (int i = 0; i < 16; i++)
		printf("%02x", r[i]);
	printf(" getrandom=");
	for (int i = 0; i < 8; i++)
		printf("%02x", rnd[i]);
	printf("\n");
	snprintf(secret, sizeof(secret), "secret of %s", in);
	heap_secret = strdup(secret);
	if (getenv("EXEC_PROBE_MAILBOX"))
		strcpy(mailbox, secret);
	setenv("SECRET", secret, 1);
	fflush(stdout);
	return 0;
}
