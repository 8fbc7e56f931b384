/* threads: POSIX threads as a program sees them (tests/monitor/test_threads.c, bench/run.py).
 * Every subcommand prints lines that are the same natively and sandboxed (no tids, addresses or
 * times on stdout) and exits 0 when every check holds; a check that fails prints
 * "WRONG: <what>" and the exit status is 1.
 *
 *   create N            N threads, each a known sum from its index; every result and the total.
 *                       A pthread_create failure stops the loop: "created K of N", "create
 *                       failed: ENAME", the K threads joined, exit 2 (for --max-threads)
 *   mutex N ITERS       N threads add 1 to a counter under a mutex ITERS times each
 *   condvar ITERS       two threads hand a turn back and forth through a mutex and a condvar
 *   tls                 __thread variables and pthread keys are per thread; key destructors run
 *   ids                 getpid, gettid and pthread_self across threads
 *   detach N            N detached threads, waited for through a semaphore
 *   exit_in_thread      a thread calls exit(3) while main is in pthread_join: status 3
 *   exitgroup_main      main returns 0 while one thread spins and one waits forever: status 0
 *   timedwait           cond, sem and mutex waits with deadlines give ETIMEDOUT
 *   many N              N threads in batches of 16, each batch joined
 *   stacks              threads on a 64 KiB stack and on a stack of the program's own
 *   parallel N WORK     N threads, WORK rounds of arithmetic each, no syscalls; a checksum
 *                       (not checked here: compare it with a native run's)
 *   pingpong ITERS      condvar round trips between two threads; "pingpong ITERS NS" on stderr
 *   createjoin ITERS    pthread_create + pthread_join; "createjoin ITERS NS" on stderr
 *   syscalls N ITERS    N threads, started before any calls getppid, each make ITERS getppid()
 *                       and syscall(SYS_getppid); "syscalls ITERS NS" (ns per call) on stderr
 *   rawclone            clone flag sets Linux refuses: the errno of each
 *   rawclone3           the same through clone3, and clone3 arguments Linux refuses
 *   cancel              pthread_cancel of threads in pthread_cond_wait and in nanosleep
 *   robust              robust mutexes whose owner exits holding them
 *   pi                  priority-inheritance mutexes (FUTEX_LOCK_PI and the rest): exclusion
 *                       between 4 threads, relock and foreign unlock by type, trylock, timed
 *                       lock, an owner that ends holding a robust one and a plain one while
 *                       main waits; then the raw futex calls' errors
 *   sigthread           pthread_kill reaches its thread; kill() the one thread not blocking it
 *   sigqueue            real-time signals queue (each sent one runs the handler; a standard one
 *                       sent while blocked runs once), from the thread itself and from another;
 *                       sigwait, sigwaitinfo and sigtimedwait take signals from the thread
 *                       itself, another thread and a child process (a blocked SIGCHLD with
 *                       its default action included), or time out
 *   interrupt           a handled signal ends a thread's read and poll of an idle pipe (EINTR),
 *                       an SA_RESTART one lets the read go on; pthread_cancel ends a read
 *   segvthreads         4 threads each handle 50 SIGSEGVs at once (siglongjmp out), half of
 *                       them on an alternate stack of their own
 *   segvblocked         a thread faults with SIGSEGV blocked: the process dies of SIGSEGV
 *   sigspin             3 threads compute without syscalls until each has handled 3 signals
 *                       that main sends it; then main computes while a thread signals it
 *   cgi N               a CGI handler: a header, "query QUERY_STRING", then create N and ids;
 *                       with QUERY_STRING "spin", threads that never end (a request's limit)
 *   unmapread           a thread's read of an idle pipe into a shared mapping that another
 *                       thread unmaps meanwhile, then starts threads, then writes the pipe:
 *                       the read ends in the mapping's file or with EFAULT, and nothing else
 *                       is written (the monitor's buffer must not outlive the window)
 *   waitreads           reads that wait for their bytes: a readv over three buffers, a
 *                       datagram longer than the buffer, 1 MiB reads of a pipe fed 600 KiB,
 *                       a MSG_WAITALL receive of 300 KiB
 *   beat N ROUNDS [HOLD] N threads and main meet at a barrier twice a round, a millisecond
 *                       apart; main prints "ROUND VALUE" from every thread's state each round
 *                       and "checksum C" at the end. With HOLD, the last round waits until the
 *                       file HOLD exists (tests/monitor/migrate.sh, snapshots of threads)
 * The stderr lines of pingpong, createjoin and syscalls are bench/run.py's "OP N value" (ns per
 * op); parallel prints "parallel N NS" (the whole job, in ns) there too. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "errname.h"
#include "wrong.h"

#ifndef SYS_clone3
#define SYS_clone3 435
#endif
/* linux/futex.h's, which musl's headers lack. */
#define FUTEX_LOCK_PI 6
#define FUTEX_UNLOCK_PI 7
#define FUTEX_TRYLOCK_PI 8
#define FUTEX_CLOCK_REALTIME 256

/* errname() with the errors of threads that errname.h does not know. */
static const char *ename(int e)
{
	switch (e) {
	case EOWNERDEAD:
		return "EOWNERDEAD";
	case ENOTRECOVERABLE:
		return "ENOTRECOVERABLE";
	case EDEADLK:
		return "EDEADLK";
	}
	return errname(e);
}

/* A pthread call that must work: names it and its error otherwise. */
static int ok(int r, const char *what)
{
	if (r != 0)
		wrong("%s: %s", what, ename(r));
	return r == 0;
}

static void must(int r, const char *what)
{
	if (!ok(r, what)) {
		fflush(stdout);
		exit(1);
	}
}

static void spawn(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	must(pthread_create(t, attr, fn, arg), "pthread_create");
}

static void *join(pthread_t t)
{
	void *ret;
	must(pthread_join(t, &ret), "pthread_join");
	return ret;
}

static long gettid_(void)
{
	return syscall(SYS_gettid);
}

static long long now_ns(clockid_t clk)
{
	struct timespec t;
	clock_gettime(clk, &t);
	return (long long)t.tv_sec * 1000000000 + t.tv_nsec;
}

static struct timespec deadline_in(clockid_t clk, long ms)
{
	struct timespec t;
	clock_gettime(clk, &t);
	t.tv_nsec += ms * 1000000;
	t.tv_sec += t.tv_nsec / 1000000000;
	t.tv_nsec %= 1000000000;
	return t;
}

static void sleep_ms(long ms)
{
	struct timespec t = {ms / 1000, (ms % 1000) * 1000000};
	while (nanosleep(&t, &t) != 0 && errno == EINTR)
		;
}

static const char *yes(int b)
{
	return b ? "yes" : "no";
}

/* A one-shot gate threads wait at until main opens it. */
struct gate {
	pthread_mutex_t m;
	pthread_cond_t c;
	int open;
};
#define GATE_INIT                                                                                  \
	{                                                                                          \
		PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0                             \
	}

static void gate_wait(struct gate *g)
{
	pthread_mutex_lock(&g->m);
	while (!g->open)
		pthread_cond_wait(&g->c, &g->m);
	pthread_mutex_unlock(&g->m);
}

static void gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->m);
	g->open = 1;
	pthread_cond_broadcast(&g->c);
	pthread_mutex_unlock(&g->m);
}

static long arg_long(const char *s, long min)
{
	char *end;
	long v = s ? strtol(s, &end, 10) : 0;
	if (!s || *end || v < min) {
		fprintf(stderr, "threads: bad number '%s' (at least %ld)\n", s ? s : "", min);
		exit(64);
	}
	return v;
}

/* ---- create ---- */

static struct gate create_gate = GATE_INIT;

static unsigned long long sum_to(long n)
{
	return (unsigned long long)n * (unsigned long long)(n + 1) / 2;
}

static void *create_fn(void *arg)
{
	long i = (long)(intptr_t)arg;
	/* Every thread stays alive until all are created, so that a thread limit counts them
	 * all whatever the order they run in. */
	gate_wait(&create_gate);
	unsigned long long s = 0;
	for (long k = 1; k <= 1000 * (i + 1); k++)
		s += (unsigned long long)k;
	return (void *)(uintptr_t)s;
}

static int cmd_create(long n)
{
	pthread_t *t = calloc((size_t)n, sizeof(*t));
	long made = 0;
	int err = 0;
	for (; made < n; made++) {
		err = pthread_create(&t[made], NULL, create_fn, (void *)(intptr_t)made);
		if (err)
			break;
	}
	gate_open(&create_gate);
	if (err) {
		printf("created %ld of %ld\n", made, n);
		printf("create failed: %s\n", ename(err));
	}
	unsigned long long total = 0;
	for (long i = 0; i < made; i++) {
		unsigned long long s = (unsigned long long)(uintptr_t)join(t[i]);
		printf("thread %ld: %llu\n", i, s);
		if (s != sum_to(1000 * (i + 1)))
			wrong("thread %ld: want %llu", i, sum_to(1000 * (i + 1)));
		total += s;
	}
	printf("total: %llu\n", total);
	free(t);
	return err ? 2 : 0;
}

/* ---- mutex ---- */

static pthread_mutex_t counter_lock = PTHREAD_MUTEX_INITIALIZER;
static long counter, mutex_iters;

static void *mutex_fn(void *arg)
{
	(void)arg;
	for (long i = 0; i < mutex_iters; i++) {
		pthread_mutex_lock(&counter_lock);
		/* A read and a write apart, so that a lock that does not exclude loses counts. */
		long v = *(volatile long *)&counter;
		*(volatile long *)&counter = v + 1;
		pthread_mutex_unlock(&counter_lock);
	}
	return NULL;
}

static int cmd_mutex(long n, long iters)
{
	pthread_t *t = calloc((size_t)n, sizeof(*t));
	mutex_iters = iters;
	for (long i = 0; i < n; i++)
		spawn(&t[i], NULL, mutex_fn, NULL);
	for (long i = 0; i < n; i++)
		join(t[i]);
	printf("counter: %ld\n", counter);
	if (counter != n * iters)
		wrong("counter: want %ld", n * iters);
	free(t);
	return 0;
}

/* ---- condvar, pingpong: a turn handed back and forth ---- */

struct turns {
	pthread_mutex_t m;
	pthread_cond_t c;
	int turn; /* 1: the partner's, 0: main's */
	long iters, partner_rounds;
};

static void *partner_fn(void *arg)
{
	struct turns *p = arg;
	pthread_mutex_lock(&p->m);
	for (long i = 0; i < p->iters; i++) {
		while (p->turn != 1)
			pthread_cond_wait(&p->c, &p->m);
		p->turn = 0;
		p->partner_rounds++;
		pthread_cond_signal(&p->c);
	}
	pthread_mutex_unlock(&p->m);
	return NULL;
}

/* Runs iters round trips; returns the ns they took. */
static long long round_trips(long iters)
{
	static struct turns p = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};
	p.iters = iters;
	pthread_t t;
	spawn(&t, NULL, partner_fn, &p);
	long mine = 0;
	long long t0 = now_ns(CLOCK_MONOTONIC);
	pthread_mutex_lock(&p.m);
	for (long i = 0; i < iters; i++) {
		p.turn = 1;
		pthread_cond_signal(&p.c);
		while (p.turn != 0)
			pthread_cond_wait(&p.c, &p.m);
		mine++;
	}
	pthread_mutex_unlock(&p.m);
	long long ns = now_ns(CLOCK_MONOTONIC) - t0;
	join(t);
	printf("round trips: %ld\n", mine);
	if (mine != iters || p.partner_rounds != iters)
		wrong("round trips: main %ld, partner %ld, want %ld", mine, p.partner_rounds,
		      iters);
	return ns;
}

static int cmd_condvar(long iters)
{
	round_trips(iters);
	return 0;
}

static int cmd_pingpong(long iters)
{
	long long ns = round_trips(iters);
	fprintf(stderr, "pingpong %ld %.1f\n", iters, (double)ns / (double)iters);
	return 0;
}

/* ---- tls ---- */

#define TLS_THREADS 4
static __thread int tls_var = 42;
static pthread_key_t tls_key;
static atomic_int dtor_runs, dtor_bad;
static pthread_barrier_t tls_barrier;

struct tls_rec {
	int index, initial, after, key_own, slot;
	int *addr;
};

static void tls_dtor(void *v)
{
	struct tls_rec *r = v;
	if (r->slot != r->index + 100)
		atomic_fetch_add(&dtor_bad, 1);
	atomic_fetch_add(&dtor_runs, 1);
}

static void *tls_fn(void *arg)
{
	struct tls_rec *r = arg;
	r->initial = tls_var;
	r->addr = &tls_var;
	tls_var = r->index * 10 + 1;
	r->slot = r->index + 100;
	pthread_setspecific(tls_key, r);
	/* Everyone has written their own values before anyone reads them back. */
	pthread_barrier_wait(&tls_barrier);
	r->after = tls_var;
	r->key_own = pthread_getspecific(tls_key) == r;
	pthread_barrier_wait(&tls_barrier);
	return NULL;
}

static int cmd_tls(void)
{
	struct tls_rec rec[TLS_THREADS];
	pthread_t t[TLS_THREADS];
	int main_slot = 7;
	must(pthread_key_create(&tls_key, tls_dtor), "pthread_key_create");
	must(pthread_barrier_init(&tls_barrier, NULL, TLS_THREADS), "pthread_barrier_init");
	tls_var = 7;
	pthread_setspecific(tls_key, &main_slot);
	for (int i = 0; i < TLS_THREADS; i++) {
		memset(&rec[i], 0, sizeof(rec[i]));
		rec[i].index = i;
		spawn(&t[i], NULL, tls_fn, &rec[i]);
	}
	for (int i = 0; i < TLS_THREADS; i++)
		join(t[i]);
	int initial = 1, own = 1, key_own = 1, distinct = 1;
	for (int i = 0; i < TLS_THREADS; i++) {
		initial &= rec[i].initial == 42;
		own &= rec[i].after == i * 10 + 1;
		key_own &= rec[i].key_own;
		for (int j = 0; j < i; j++)
			distinct &= rec[i].addr != rec[j].addr;
		distinct &= rec[i].addr != &tls_var;
	}
	printf("tls initial value in every thread: %s\n", yes(initial));
	printf("tls own value in every thread: %s\n", yes(own));
	printf("tls addresses distinct: %s\n", yes(distinct));
	printf("main's tls value kept: %s\n", yes(tls_var == 7));
	printf("key own value in every thread: %s\n", yes(key_own));
	printf("main's key value kept: %s\n", yes(pthread_getspecific(tls_key) == &main_slot));
	printf("key destructors run: %d\n", atomic_load(&dtor_runs));
	if (!initial || !own || !distinct || tls_var != 7 || !key_own ||
	    pthread_getspecific(tls_key) != &main_slot)
		wrong("a thread saw another's thread-local value");
	if (atomic_load(&dtor_runs) != TLS_THREADS || atomic_load(&dtor_bad))
		wrong("key destructors: %d run, %d with a wrong value, want %d",
		      atomic_load(&dtor_runs), atomic_load(&dtor_bad), TLS_THREADS);
	return 0;
}

/* ---- ids ---- */

#define ID_THREADS 4
static pthread_barrier_t id_barrier;

struct id_rec {
	long pid, tid;
	pthread_t self;
};

static void *id_fn(void *arg)
{
	struct id_rec *r = arg;
	r->pid = getpid();
	r->tid = gettid_();
	r->self = pthread_self();
	/* All alive at once when they were recorded, so that no tid was reused. */
	pthread_barrier_wait(&id_barrier);
	return NULL;
}

static int cmd_ids(void)
{
	struct id_rec rec[ID_THREADS];
	pthread_t t[ID_THREADS];
	must(pthread_barrier_init(&id_barrier, NULL, ID_THREADS + 1), "pthread_barrier_init");
	for (int i = 0; i < ID_THREADS; i++)
		spawn(&t[i], NULL, id_fn, &rec[i]);
	pthread_barrier_wait(&id_barrier);
	for (int i = 0; i < ID_THREADS; i++)
		join(t[i]);
	long pid = getpid(), mtid = gettid_();
	int same_pid = 1, distinct = 1, not_pid = 1, self_distinct = 1, self_matches = 1;
	for (int i = 0; i < ID_THREADS; i++) {
		same_pid &= rec[i].pid == pid;
		not_pid &= rec[i].tid != pid && rec[i].tid > 0;
		self_distinct &= !pthread_equal(rec[i].self, pthread_self());
		self_matches &= pthread_equal(rec[i].self, t[i]) != 0;
		for (int j = 0; j < i; j++) {
			distinct &= rec[i].tid != rec[j].tid;
			self_distinct &= !pthread_equal(rec[i].self, rec[j].self);
		}
	}
	printf("getpid same in every thread: %s\n", yes(same_pid));
	printf("main's tid is the pid: %s\n", yes(mtid == pid));
	printf("thread tids distinct: %s\n", yes(distinct));
	printf("thread tids differ from the pid: %s\n", yes(not_pid));
	printf("pthread_self distinct: %s\n", yes(self_distinct));
	printf("pthread_self is what pthread_create gave: %s\n", yes(self_matches));
	if (!same_pid || mtid != pid || !distinct || !not_pid || !self_distinct || !self_matches)
		wrong("thread ids");
	return 0;
}

/* ---- detach ---- */

static sem_t detach_sem;
static atomic_long detach_done;

static void *detach_fn(void *arg)
{
	long i = (long)(intptr_t)arg;
	volatile unsigned long x = (unsigned long)i;
	for (int k = 0; k < 1000; k++)
		x = x * 33 + 1;
	atomic_fetch_add(&detach_done, 1);
	sem_post(&detach_sem);
	return NULL;
}

static int cmd_detach(long n)
{
	pthread_attr_t attr;
	must(sem_init(&detach_sem, 0, 0) ? errno : 0, "sem_init");
	pthread_attr_init(&attr);
	must(pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED), "setdetachstate");
	/* Half detached at creation, half by pthread_detach afterwards. */
	for (long i = 0; i < n; i++) {
		pthread_t t;
		spawn(&t, i % 2 ? NULL : &attr, detach_fn, (void *)(intptr_t)i);
		if (i % 2)
			must(pthread_detach(t), "pthread_detach");
	}
	pthread_attr_destroy(&attr);
	for (long i = 0; i < n; i++)
		while (sem_wait(&detach_sem) != 0)
			if (errno != EINTR)
				must(errno, "sem_wait");
	printf("detached threads done: %ld\n", atomic_load(&detach_done));
	if (atomic_load(&detach_done) != n)
		wrong("detached threads done: want %ld", n);
	return 0;
}

/* ---- exit_in_thread, exitgroup_main ---- */

static void *sleep_forever_fn(void *arg)
{
	(void)arg;
	for (;;)
		sleep_ms(3600 * 1000);
	return NULL;
}

static void *exit3_fn(void *arg)
{
	(void)arg;
	/* Likely (not needed) to find main in pthread_join already. */
	sleep_ms(20);
	printf("a thread calls exit(3)\n");
	exit(3);
}

static int cmd_exit_in_thread(void)
{
	pthread_t sleeper, exiter;
	printf("main joins a thread that sleeps forever\n");
	spawn(&sleeper, NULL, sleep_forever_fn, NULL);
	spawn(&exiter, NULL, exit3_fn, NULL);
	join(sleeper);
	wrong("pthread_join of a thread that sleeps forever returned");
	return 1;
}

static atomic_int spinner_started;
static struct gate never = GATE_INIT;

static void *spin_forever_fn(void *arg)
{
	(void)arg;
	atomic_store(&spinner_started, 1);
	for (volatile unsigned long x = 0;; x++)
		;
	return NULL;
}

static void *wait_forever_fn(void *arg)
{
	(void)arg;
	gate_wait(&never);
	return NULL;
}

static int cmd_exitgroup_main(void)
{
	pthread_t spinner, waiter;
	spawn(&spinner, NULL, spin_forever_fn, NULL);
	spawn(&waiter, NULL, wait_forever_fn, NULL);
	while (!atomic_load(&spinner_started))
		sched_yield();
	printf("main returns 0 while a thread spins and one waits\n");
	return 0;
}

/* ---- timedwait ---- */

static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
static struct gate held_taken = GATE_INIT, held_release = GATE_INIT;

static void *holder_fn(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&held);
	gate_open(&held_taken);
	gate_wait(&held_release);
	pthread_mutex_unlock(&held);
	return NULL;
}

/* Prints what a wait with a 50 ms deadline returned and checks it waited that long. */
static void timed(const char *what, int err, long long t0)
{
	long long waited = now_ns(CLOCK_MONOTONIC) - t0;
	printf("%s: %s\n", what, ename(err));
	if (err != ETIMEDOUT)
		wrong("%s: want ETIMEDOUT", what);
	/* 1 ms of slack for CLOCK_REALTIME being slewed against CLOCK_MONOTONIC. */
	if (waited < 49000000)
		wrong("%s returned after %lld us, before its 50 ms deadline", what, waited / 1000);
}

static int cmd_timedwait(void)
{
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t c = PTHREAD_COND_INITIALIZER, cm;
	pthread_condattr_t ca;
	sem_t s;

	pthread_mutex_lock(&m);
	struct timespec dl = deadline_in(CLOCK_REALTIME, 50);
	long long t0 = now_ns(CLOCK_MONOTONIC);
	int r;
	do
		r = pthread_cond_timedwait(&c, &m, &dl);
	while (r == 0); /* a spurious wake-up */
	timed("pthread_cond_timedwait CLOCK_REALTIME", r, t0);

	pthread_condattr_init(&ca);
	must(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC), "pthread_condattr_setclock");
	must(pthread_cond_init(&cm, &ca), "pthread_cond_init");
	dl = deadline_in(CLOCK_MONOTONIC, 50);
	t0 = now_ns(CLOCK_MONOTONIC);
	do
		r = pthread_cond_timedwait(&cm, &m, &dl);
	while (r == 0);
	timed("pthread_cond_timedwait CLOCK_MONOTONIC", r, t0);
	pthread_mutex_unlock(&m);

	must(sem_init(&s, 0, 0) ? errno : 0, "sem_init");
	dl = deadline_in(CLOCK_REALTIME, 50);
	t0 = now_ns(CLOCK_MONOTONIC);
	while ((r = sem_timedwait(&s, &dl) ? errno : 0) == EINTR)
		;
	timed("sem_timedwait", r, t0);

	/* A mutex another thread holds. */
	pthread_t holder;
	spawn(&holder, NULL, holder_fn, NULL);
	gate_wait(&held_taken);
	dl = deadline_in(CLOCK_REALTIME, 50);
	t0 = now_ns(CLOCK_MONOTONIC);
	r = pthread_mutex_timedlock(&held, &dl);
	timed("pthread_mutex_timedlock", r, t0);
	if (r == 0)
		pthread_mutex_unlock(&held);
	gate_open(&held_release);
	join(holder);
	/* And once it is free, it is taken at once. */
	dl = deadline_in(CLOCK_REALTIME, 50);
	r = pthread_mutex_timedlock(&held, &dl);
	printf("pthread_mutex_timedlock once released: %s\n", ename(r));
	if (r != 0)
		wrong("pthread_mutex_timedlock of a free mutex: want 0");
	else
		pthread_mutex_unlock(&held);
	return 0;
}

/* ---- many ---- */

static void *index_fn(void *arg)
{
	return (void *)((intptr_t)arg + 1);
}

static int cmd_many(long n)
{
	pthread_t t[16];
	long joined = 0;
	unsigned long long sum = 0;
	for (long base = 0; base < n; base += 16) {
		long k = n - base < 16 ? n - base : 16;
		for (long i = 0; i < k; i++)
			spawn(&t[i], NULL, index_fn, (void *)(intptr_t)(base + i));
		for (long i = 0; i < k; i++) {
			sum += (unsigned long long)(intptr_t)join(t[i]);
			joined++;
		}
	}
	printf("threads created and joined: %ld\n", joined);
	printf("sum of their results: %llu\n", sum);
	if (joined != n || sum != sum_to(n))
		wrong("many: want %ld joined, sum %llu", n, sum_to(n));
	return 0;
}

/* ---- stacks ---- */

struct stack_job {
	char *lo, *hi; /* the stack the thread must be on, when known */
	int on_it;
	unsigned long sum;
};

static void *stack_fn(void *arg)
{
	struct stack_job *j = arg;
	volatile unsigned char buf[32 * 1024];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)i;
	unsigned long s = 0;
	for (size_t i = 0; i < sizeof(buf); i += 64)
		s += buf[i];
	j->sum = s;
	char *here = (char *)&s;
	j->on_it = !j->lo || (here >= j->lo && here < j->hi);
	return NULL;
}

static int cmd_stacks(void)
{
	unsigned long want = 0;
	for (size_t i = 0; i < 32 * 1024; i += 64)
		want += (unsigned char)i;

	pthread_attr_t attr;
	pthread_t t;
	struct stack_job small = {0}, own = {0};
	pthread_attr_init(&attr);
	must(pthread_attr_setstacksize(&attr, 64 * 1024), "pthread_attr_setstacksize 64 KiB");
	spawn(&t, &attr, stack_fn, &small);
	join(t);
	pthread_attr_destroy(&attr);
	printf("64 KiB stack: ran, sum %s\n", small.sum == want ? "right" : "WRONG");
	if (small.sum != want)
		wrong("64 KiB stack: sum %lu, want %lu", small.sum, want);

	size_t size = 256 * 1024;
	char *stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (stack == MAP_FAILED)
		must(errno, "mmap of a stack");
	own.lo = stack;
	own.hi = stack + size;
	pthread_attr_init(&attr);
	must(pthread_attr_setstack(&attr, stack, size), "pthread_attr_setstack");
	spawn(&t, &attr, stack_fn, &own);
	join(t);
	pthread_attr_destroy(&attr);
	printf("own stack: ran, sum %s, on that stack: %s\n", own.sum == want ? "right" : "WRONG",
	       yes(own.on_it));
	if (own.sum != want || !own.on_it)
		wrong("own stack: sum %lu (want %lu), on it %d", own.sum, want, own.on_it);
	munmap(stack, size);
	return 0;
}

/* ---- parallel ---- */

struct work {
	unsigned long long seed, out;
	long rounds;
};

static void *work_fn(void *arg)
{
	struct work *w = arg;
	unsigned long long x = w->seed;
	for (long i = 0; i < w->rounds; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		x += (unsigned long long)i;
	}
	w->out = x;
	return NULL;
}

static int cmd_parallel(long n, long rounds)
{
	pthread_t *t = calloc((size_t)n, sizeof(*t));
	struct work *w = calloc((size_t)n, sizeof(*w));
	long long t0 = now_ns(CLOCK_MONOTONIC);
	for (long i = 0; i < n; i++) {
		w[i].seed = 0x9e3779b97f4a7c15ULL * (unsigned long long)(i + 1);
		w[i].rounds = rounds;
		spawn(&t[i], NULL, work_fn, &w[i]);
	}
	for (long i = 0; i < n; i++)
		join(t[i]);
	long long ns = now_ns(CLOCK_MONOTONIC) - t0;
	/* Not recomputed on one thread to check it: that would double the time bench/run.py
	 * measures. The tests compare it with the native run's. */
	unsigned long long sum = 0;
	for (long i = 0; i < n; i++)
		sum = sum * 31 + w[i].out;
	printf("parallel %ld threads x %ld rounds: checksum %016llx\n", n, rounds, sum);
	fprintf(stderr, "parallel %ld %lld\n", n, ns);
	free(t);
	free(w);
	return 0;
}

/* ---- syscalls: calls from threads that all started before the first ---- */

struct sysloop {
	pthread_barrier_t *go;
	long iters, wrong;
	long long ns;
};

static void *sysloop_fn(void *arg)
{
	struct sysloop *l = arg;
	long ppid = getppid(); /* the first call of getppid's site, from a thread */
	pthread_barrier_wait(l->go);
	long long t0 = now_ns(CLOCK_MONOTONIC);
	for (long i = 0; i < l->iters; i++) {
		l->wrong += getppid() != ppid;		  /* glibc: mov $110, %eax; syscall */
		l->wrong += syscall(SYS_getppid) != ppid; /* syscall(): syscall; cmp; jcc; ret */
	}
	l->ns = now_ns(CLOCK_MONOTONIC) - t0;
	return NULL;
}

static int cmd_syscalls(long n, long iters)
{
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, (unsigned)n);
	pthread_t *t = calloc((size_t)n, sizeof(*t));
	struct sysloop *l = calloc((size_t)n, sizeof(*l));
	for (long i = 0; i < n; i++) {
		l[i] = (struct sysloop){.go = &go, .iters = iters};
		spawn(&t[i], NULL, sysloop_fn, &l[i]);
	}
	long wrong_results = 0;
	double ns = 0;
	for (long i = 0; i < n; i++) {
		join(t[i]);
		wrong_results += l[i].wrong;
		ns += (double)l[i].ns / (double)(2 * iters);
	}
	printf("syscalls %ld threads x %ld: wrong results %ld\n", n, iters, wrong_results);
	if (wrong_results)
		wrong("%ld calls gave another result than the first", wrong_results);
	fprintf(stderr, "syscalls %ld %.1f\n", iters, ns / (double)n);
	free(t);
	free(l);
	return 0;
}

/* ---- createjoin ---- */

static void *empty_fn(void *arg)
{
	return arg;
}

static int cmd_createjoin(long iters)
{
	long long t0 = now_ns(CLOCK_MONOTONIC);
	long right = 0;
	for (long i = 0; i < iters; i++) {
		pthread_t t;
		spawn(&t, NULL, empty_fn, (void *)(intptr_t)i);
		right += join(t) == (void *)(intptr_t)i;
	}
	long long ns = now_ns(CLOCK_MONOTONIC) - t0;
	printf("created and joined: %ld\n", right);
	if (right != iters)
		wrong("created and joined: want %ld", iters);
	fprintf(stderr, "createjoin %ld %.1f\n", iters, (double)ns / (double)iters);
	return 0;
}

/* ---- rawclone, rawclone3 ---- */

/* clone and clone3 with the child's path in assembly: should a call that must fail make a
 * child after all, the child exits at once (status 99) without touching memory or the stack
 * it shares, and the parent reports it. Returns the syscall's result (-errno on failure). */
long raw_clone(unsigned long flags, void *stack, int *ptid, int *ctid, unsigned long tls);
long raw_clone3(void *args, unsigned long size);
__asm__(".text\n"
	".globl raw_clone\n"
	".type raw_clone, @function\n"
	"raw_clone:\n"
	"	mov %rcx, %r10\n"
	"	mov $56, %eax\n"
	"	jmp 1f\n"
	".globl raw_clone3\n"
	".type raw_clone3, @function\n"
	"raw_clone3:\n"
	"	mov $435, %eax\n"
	"1:	syscall\n"
	"	test %rax, %rax\n"
	"	jnz 2f\n"
	"	mov $60, %eax\n"
	"	mov $99, %edi\n"
	"	syscall\n"
	"	ud2\n"
	"2:	ret\n");

struct clone_args_v0 {
	unsigned long long flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

static void clone_refused(const char *what, long r, int want)
{
	if (r > 0) {
		/* A child was made (and has exited, status 99): nothing of it to wait for. */
		printf("%s: made a child\n", what);
		wrong("%s: made a child, want %s", what, ename(want));
		return;
	}
	printf("%s: %s\n", what, ename((int)-r));
	if (-r != want)
		wrong("%s: want %s", what, ename(want));
}

#define THREAD_FLAGS                                                                               \
	(CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM)

static int cmd_rawclone(void)
{
	static const struct {
		const char *what;
		unsigned long flags;
	} cases[] = {
	    {"CLONE_THREAD", CLONE_THREAD},
	    {"CLONE_SIGHAND", CLONE_SIGHAND},
	    {"CLONE_THREAD|CLONE_SIGHAND", CLONE_THREAD | CLONE_SIGHAND},
	    {"CLONE_THREAD|CLONE_VM", CLONE_THREAD | CLONE_VM},
	    {"CLONE_THREAD|CLONE_SIGHAND|CLONE_FS|CLONE_FILES",
	     CLONE_THREAD | CLONE_SIGHAND | CLONE_FS | CLONE_FILES},
	    {"CLONE_SIGHAND|CLONE_FILES", CLONE_SIGHAND | CLONE_FILES},
	    {"CLONE_FS|CLONE_NEWNS", CLONE_FS | CLONE_NEWNS},
	    {"thread flags|CLONE_NEWPID", THREAD_FLAGS | CLONE_NEWPID},
	    {"thread flags|CLONE_NEWUSER", THREAD_FLAGS | CLONE_NEWUSER},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		clone_refused(cases[i].what, raw_clone(cases[i].flags, NULL, NULL, NULL, 0),
			      EINVAL);
	return 0;
}

static int cmd_rawclone3(void)
{
	struct clone_args_v0 a;
	memset(&a, 0, sizeof(a));
	a.flags = CLONE_THREAD;
	clone_refused("clone3 CLONE_THREAD", raw_clone3(&a, sizeof(a)), EINVAL);
	a.flags = CLONE_THREAD | CLONE_SIGHAND;
	clone_refused("clone3 CLONE_THREAD|CLONE_SIGHAND", raw_clone3(&a, sizeof(a)), EINVAL);
	a.flags = THREAD_FLAGS;
	a.exit_signal = SIGCHLD;
	clone_refused("clone3 thread flags with an exit signal", raw_clone3(&a, sizeof(a)), EINVAL);
	a.exit_signal = 0;
	a.flags = 1ULL << 40;
	clone_refused("clone3 an unknown flag", raw_clone3(&a, sizeof(a)), EINVAL);
	a.flags = THREAD_FLAGS;
	clone_refused("clone3 size 32", raw_clone3(&a, 32), EINVAL);
	a.stack = 0x10000;
	a.stack_size = 0;
	clone_refused("clone3 a stack of size 0", raw_clone3(&a, sizeof(a)), EINVAL);
	clone_refused("clone3 arguments at NULL", raw_clone3(NULL, sizeof(a)), EFAULT);
	return 0;
}

/* ---- cancel ---- */

static pthread_mutex_t cancel_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cancel_c = PTHREAD_COND_INITIALIZER;
static int cancel_waiting;
static atomic_int cleanups;
static sem_t cancel_sleeping;

static void unlock_cleanup(void *m)
{
	atomic_fetch_add(&cleanups, 1);
	pthread_mutex_unlock(m);
}

static void count_cleanup(void *unused)
{
	(void)unused;
	atomic_fetch_add(&cleanups, 1);
}

static void *cond_waiter_fn(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&cancel_m);
	pthread_cleanup_push(unlock_cleanup, &cancel_m);
	cancel_waiting = 1;
	pthread_cond_broadcast(&cancel_c);
	for (;;) /* nobody signals c for this thread */
		pthread_cond_wait(&cancel_c, &cancel_m);
	pthread_cleanup_pop(1);
	return NULL;
}

static void *sleeper_fn(void *arg)
{
	(void)arg;
	pthread_cleanup_push(count_cleanup, NULL);
	sem_post(&cancel_sleeping);
	for (;;)
		sleep_ms(3600 * 1000);
	pthread_cleanup_pop(1);
	return NULL;
}

static int cmd_cancel(void)
{
	pthread_t waiter, sleeper;
	must(sem_init(&cancel_sleeping, 0, 0) ? errno : 0, "sem_init");
	spawn(&waiter, NULL, cond_waiter_fn, NULL);
	pthread_mutex_lock(&cancel_m);
	while (!cancel_waiting)
		pthread_cond_wait(&cancel_c, &cancel_m);
	/* The waiter is in pthread_cond_wait (it released the mutex we now hold) or about to be:
	 * either way it acts on the cancel there. */
	pthread_mutex_unlock(&cancel_m);
	must(pthread_cancel(waiter), "pthread_cancel of the condvar waiter");
	void *r = join(waiter);
	printf("thread in pthread_cond_wait: %s\n", r == PTHREAD_CANCELED ? "canceled" : "WRONG");
	if (r != PTHREAD_CANCELED)
		wrong("pthread_cond_wait thread was not canceled");
	int tr = pthread_mutex_trylock(&cancel_m);
	printf("its mutex released by its cleanup handler: %s\n", yes(tr == 0));
	if (tr != 0)
		wrong("mutex left locked: trylock %s", ename(tr));
	else
		pthread_mutex_unlock(&cancel_m);

	spawn(&sleeper, NULL, sleeper_fn, NULL);
	while (sem_wait(&cancel_sleeping) != 0)
		;
	must(pthread_cancel(sleeper), "pthread_cancel of the sleeper");
	r = join(sleeper);
	printf("thread in nanosleep: %s\n", r == PTHREAD_CANCELED ? "canceled" : "WRONG");
	if (r != PTHREAD_CANCELED)
		wrong("nanosleep thread was not canceled");
	printf("cleanup handlers run: %d\n", atomic_load(&cleanups));
	if (atomic_load(&cleanups) != 2)
		wrong("cleanup handlers run: want 2");
	return 0;
}

/* ---- robust ---- */

static pthread_mutex_t robust_m;
static sem_t robust_locked;

static void *lock_and_exit_fn(void *arg)
{
	long delay_ms = (long)(intptr_t)arg;
	int r = pthread_mutex_lock(&robust_m);
	if (r != 0)
		printf("owner's pthread_mutex_lock: %s\n", ename(r));
	sem_post(&robust_locked);
	/* Likely (not needed) to have main waiting for the mutex when this thread exits. */
	if (delay_ms)
		sleep_ms(delay_ms);
	return NULL;
}

static void robust_case(const char *what, long delay_ms)
{
	pthread_t t;
	spawn(&t, NULL, lock_and_exit_fn, (void *)(intptr_t)delay_ms);
	while (sem_wait(&robust_locked) != 0)
		;
	if (!delay_ms)
		join(t);
	int r = pthread_mutex_lock(&robust_m);
	printf("%s: lock %s\n", what, ename(r));
	if (r != EOWNERDEAD)
		wrong("%s: want EOWNERDEAD", what);
	if (delay_ms)
		join(t);
}

static int cmd_robust(void)
{
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	must(pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST), "pthread_mutexattr_setrobust");
	must(pthread_mutex_init(&robust_m, &a), "pthread_mutex_init");
	must(sem_init(&robust_locked, 0, 0) ? errno : 0, "sem_init");

	/* Owner gone before the lock; made consistent, the mutex works again. */
	robust_case("owner exited", 0);
	int r = pthread_mutex_consistent(&robust_m);
	printf("pthread_mutex_consistent: %s\n", ename(r));
	ok(r, "pthread_mutex_consistent");
	ok(pthread_mutex_unlock(&robust_m), "unlock after consistent");
	r = pthread_mutex_lock(&robust_m);
	printf("lock again: %s\n", ename(r));
	ok(r, "lock after consistent");
	ok(pthread_mutex_unlock(&robust_m), "unlock");

	/* Owner exits while main waits (likely) for the mutex. */
	robust_case("owner exited while main waited", 30);
	/* Unlocked without pthread_mutex_consistent: unusable for good. */
	ok(pthread_mutex_unlock(&robust_m), "unlock without consistent");
	r = pthread_mutex_lock(&robust_m);
	printf("lock after an unlock without consistent: %s\n", ename(r));
	if (r != ENOTRECOVERABLE)
		wrong("lock after an unlock without consistent: want ENOTRECOVERABLE");
	return 0;
}

/* ---- pi ---- */

#define PI_THREADS 4
#define PI_ITERS 3000
static pthread_mutex_t pi_m;
static long pi_counter;
static sem_t pi_sem, pi_go;

/* The mutex's futex word, to see a waiter queued in the kernel (FUTEX_WAITERS) without a
 * sleep that a slow host could outlast: glibc keeps it first, musl second. */
static volatile unsigned *pi_word(pthread_mutex_t *m)
{
#ifdef __GLIBC__
	return (volatile unsigned *)m;
#else
	return (volatile unsigned *)m + 1;
#endif
}

static void pi_init(pthread_mutex_t *m, int type, int robust)
{
	pthread_mutexattr_t a;
	must(pthread_mutexattr_init(&a), "pthread_mutexattr_init");
	must(pthread_mutexattr_settype(&a, type), "pthread_mutexattr_settype");
	must(pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT),
	     "pthread_mutexattr_setprotocol(PTHREAD_PRIO_INHERIT)");
	if (robust)
		must(pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST),
		     "pthread_mutexattr_setrobust");
	must(pthread_mutex_init(m, &a), "pthread_mutex_init");
	pthread_mutexattr_destroy(&a);
}

static void *pi_adder(void *arg)
{
	(void)arg;
	for (int i = 0; i < PI_ITERS; i++) {
		ok(pthread_mutex_lock(&pi_m), "pi lock");
		long v = pi_counter;
		if (i % 64 == 0)
			sched_yield(); /* held a while, so that the others queue in the kernel */
		pi_counter = v + 1;
		ok(pthread_mutex_unlock(&pi_m), "pi unlock");
	}
	return NULL;
}

static void *pi_other_unlocks(void *arg)
{
	return (void *)(intptr_t)pthread_mutex_unlock(arg);
}

/* Holds the mutex until main waits for it in the kernel, then ends without unlocking. */
static void *pi_hold_and_end(void *arg)
{
	pthread_mutex_t *m = arg;
	int r = pthread_mutex_lock(m);
	if (r)
		printf("owner's lock: %s\n", ename(r));
	sem_post(&pi_sem);
	while (!(*pi_word(m) & 0x80000000u))
		sched_yield();
	return NULL;
}

static void *pi_hold(void *arg)
{
	ok(pthread_mutex_lock(arg), "holder's lock");
	sem_post(&pi_sem);
	while (sem_wait(&pi_go) != 0)
		;
	ok(pthread_mutex_unlock(arg), "holder's unlock");
	return NULL;
}

static long raw_futex(void *w, int op, unsigned val, const struct timespec *ts)
{
	long r = syscall(SYS_futex, w, op, val, ts, NULL, 0);
	return r < 0 ? -errno : r;
}

static int cmd_pi(void)
{
	pthread_t t[PI_THREADS];
	must(sem_init(&pi_sem, 0, 0) || sem_init(&pi_go, 0, 0) ? errno : 0, "sem_init");

	pi_init(&pi_m, PTHREAD_MUTEX_NORMAL, 0);
	for (int i = 0; i < PI_THREADS; i++)
		spawn(&t[i], NULL, pi_adder, NULL);
	for (int i = 0; i < PI_THREADS; i++)
		join(t[i]);
	printf("counter %ld (want %d)\n", pi_counter, PI_THREADS * PI_ITERS);
	if (pi_counter != PI_THREADS * PI_ITERS)
		wrong("a PI mutex let two threads in");

	static const struct {
		int type;
		const char *name;
	} types[] = {{PTHREAD_MUTEX_ERRORCHECK, "errorcheck"},
		     {PTHREAD_MUTEX_RECURSIVE, "recursive"}};
	for (unsigned i = 0; i < 2; i++) {
		pthread_mutex_t m;
		pi_init(&m, types[i].type, 0);
		ok(pthread_mutex_lock(&m), "lock");
		int r = pthread_mutex_lock(&m);
		printf("%s relock: %s\n", types[i].name, ename(r));
		if (r == 0)
			pthread_mutex_unlock(&m);
		pthread_t o;
		spawn(&o, NULL, pi_other_unlocks, &m);
		printf("%s unlock by another thread: %s\n", types[i].name,
		       ename((int)(intptr_t)join(o)));
		ok(pthread_mutex_unlock(&m), "unlock");
		spawn(&o, NULL, pi_other_unlocks, &m);
		printf("%s unlock of an unlocked one: %s\n", types[i].name,
		       ename((int)(intptr_t)join(o)));
		pthread_mutex_destroy(&m);
	}

	/* Held by another thread: trylock is EBUSY, a timed lock times out on either clock. */
	pthread_mutex_t h;
	pi_init(&h, PTHREAD_MUTEX_NORMAL, 0);
	pthread_t ht;
	spawn(&ht, NULL, pi_hold, &h);
	while (sem_wait(&pi_sem) != 0)
		;
	printf("trylock of a held one: %s\n", ename(pthread_mutex_trylock(&h)));
	struct timespec dl = deadline_in(CLOCK_REALTIME, 50);
	printf("timedlock of a held one: %s\n", ename(pthread_mutex_timedlock(&h, &dl)));
	sem_post(&pi_go);
	join(ht);
	printf("lock once free: %s\n", ename(pthread_mutex_lock(&h)));
	pthread_mutex_unlock(&h);

	/* The owner ends holding a robust one while main waits in the kernel: it comes to main
	 * with EOWNERDEAD. (A plain one comes with OWNER_DIED too, as Linux hands it over, which
	 * glibc takes for a broken mutex and aborts.) */
	pthread_mutex_t rm;
	pi_init(&rm, PTHREAD_MUTEX_NORMAL, 1);
	spawn(&ht, NULL, pi_hold_and_end, &rm);
	while (sem_wait(&pi_sem) != 0)
		;
	int r = pthread_mutex_lock(&rm);
	printf("robust PI mutex, owner ended: lock %s\n", ename(r));
	if (r == EOWNERDEAD)
		ok(pthread_mutex_consistent(&rm), "pthread_mutex_consistent");
	join(ht);
	ok(pthread_mutex_unlock(&rm), "unlock after the owner ended");

	/* The calls themselves. */
	unsigned w = 0;
	printf("UNLOCK_PI of a free word: %s\n", ename((int)-raw_futex(&w, FUTEX_UNLOCK_PI, 0, 0)));
	int e = (int)-raw_futex(&w, FUTEX_LOCK_PI, 0, 0);
	printf("LOCK_PI of a free word: %s, word is the tid: %s\n", ename(e),
	       w == (unsigned)gettid_() ? "yes" : "no");
	printf("LOCK_PI of one's own: %s\n", ename((int)-raw_futex(&w, FUTEX_LOCK_PI, 0, 0)));
	e = (int)-raw_futex(&w, FUTEX_UNLOCK_PI, 0, 0);
	printf("UNLOCK_PI of one's own: %s, word %u\n", ename(e), w);
	w = 0x3ffffff0u; /* no such thread */
	printf("LOCK_PI owned by no thread: %s\n", ename((int)-raw_futex(&w, FUTEX_LOCK_PI, 0, 0)));
	printf("TRYLOCK_PI owned by no thread: %s\n",
	       ename((int)-raw_futex(&w, FUTEX_TRYLOCK_PI, 0, 0)));
	printf("UNLOCK_PI of another's: %s\n", ename((int)-raw_futex(&w, FUTEX_UNLOCK_PI, 0, 0)));
	w = 0;
	printf("LOCK_PI with FUTEX_CLOCK_REALTIME: %s\n",
	       ename((int)-raw_futex(&w, FUTEX_LOCK_PI | FUTEX_CLOCK_REALTIME, 0, 0)));
	printf("LOCK_PI of an unmapped word: %s\n",
	       ename((int)-raw_futex((void *)16, FUTEX_LOCK_PI, 0, 0)));
	return 0;
}

/* ---- sigqueue ---- */

static atomic_int rt_count, usr_count;
static sem_t sq_ready, sq_go;

static void on_rt(int sig)
{
	(void)sig;
	atomic_fetch_add(&rt_count, 1);
}

static void on_usr(int sig)
{
	(void)sig;
	atomic_fetch_add(&usr_count, 1);
}

static void block(int sig, int how)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	must(pthread_sigmask(how, &s, NULL), "pthread_sigmask");
}

/* Blocks SIGRTMIN, says so, and unblocks it once main has sent them all. */
static void *rt_receiver(void *arg)
{
	(void)arg;
	block(SIGRTMIN, SIG_BLOCK);
	sem_post(&sq_ready);
	while (sem_wait(&sq_go) != 0)
		;
	block(SIGRTMIN, SIG_UNBLOCK);
	return NULL;
}

static void *send_usr2_to(void *arg)
{
	sleep_ms(20);
	pthread_kill(*(pthread_t *)arg, SIGUSR2);
	return NULL;
}

/* Takes SIGTERM twice through sigwait, saying so after the first. */
static void *term_waiter(void *arg)
{
	(void)arg;
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGTERM);
	long got = 0;
	for (int i = 0; i < 2; i++) {
		int sig = 0;
		if (sigwait(&s, &sig) == 0 && sig == SIGTERM)
			got++;
		sem_post(&sq_ready);
	}
	return (void *)got;
}

static int cmd_sigqueue(void)
{
	struct sigaction sa = {.sa_handler = on_rt};
	sigaction(SIGRTMIN, &sa, NULL);
	sigaction(SIGRTMIN + 1, &sa, NULL);
	sa.sa_handler = on_usr;
	sigaction(SIGUSR1, &sa, NULL);

	/* From the thread itself, blocked meanwhile. */
	block(SIGRTMIN + 1, SIG_BLOCK);
	block(SIGUSR1, SIG_BLOCK);
	for (int i = 0; i < 5; i++) {
		raise(SIGRTMIN + 1);
		raise(SIGUSR1);
	}
	block(SIGRTMIN + 1, SIG_UNBLOCK);
	block(SIGUSR1, SIG_UNBLOCK);
	printf("raised 5 times while blocked: real-time handler ran %d, SIGUSR1's %d\n",
	       atomic_load(&rt_count), atomic_load(&usr_count));

	/* From another thread. */
	atomic_store(&rt_count, 0);
	must(sem_init(&sq_ready, 0, 0) || sem_init(&sq_go, 0, 0) ? errno : 0, "sem_init");
	pthread_t t;
	spawn(&t, NULL, rt_receiver, NULL);
	while (sem_wait(&sq_ready) != 0)
		;
	for (int i = 0; i < 50; i++)
		ok(pthread_kill(t, SIGRTMIN), "pthread_kill");
	sem_post(&sq_go);
	join(t);
	printf("pthread_kill 50 times: handler ran %d\n", atomic_load(&rt_count));

	/* sigwait and its kin take signals the thread blocks. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGRTMIN + 2);
	sigaddset(&set, SIGCHLD);
	must(pthread_sigmask(SIG_BLOCK, &set, NULL), "pthread_sigmask");
	raise(SIGRTMIN + 2);
	raise(SIGRTMIN + 2);
	siginfo_t si;
	int a = sigwaitinfo(&set, &si), b = sigwaitinfo(&set, &si);
	/* (Not si_code: hosts differ on what tgkill, glibc's raise, says there.) */
	printf("sigwaitinfo twice: %s %s, from this process: %s\n",
	       a == SIGRTMIN + 2 ? "SIGRTMIN+2" : "other",
	       b == SIGRTMIN + 2 ? "SIGRTMIN+2" : "other", si.si_pid == getpid() ? "yes" : "no");
	pthread_t self = pthread_self(), s2;
	spawn(&s2, NULL, send_usr2_to, &self);
	int sig = 0;
	ok(sigwait(&set, &sig), "sigwait");
	printf("sigwait for another thread's: %s\n", sig == SIGUSR2 ? "SIGUSR2" : "other");
	join(s2);
	struct timespec ts = {0, 20 * 1000 * 1000};
	int r = sigtimedwait(&set, &si, &ts);
	printf("sigtimedwait with nothing sent: %s\n", r < 0 ? ename(errno) : "a signal");
	fflush(stdout);
	pid_t c = fork();
	if (c == 0)
		_exit(7);
	ts.tv_sec = 10;
	r = sigtimedwait(&set, &si, &ts);
	printf("sigtimedwait for a child's end, SIGCHLD blocked with its default action: %s, "
	       "from the child: %s, status %d\n",
	       r == SIGCHLD ? "SIGCHLD"
	       : r < 0	    ? ename(errno)
			    : "other",
	       si.si_pid == c ? "yes" : "no", si.si_status);
	waitpid(c, NULL, 0);
	/* The classic pattern: every thread blocks SIGTERM and one waits for it in sigwait;
	 * kill() of the process reaches it, sent from the process before the thread waits, and
	 * from a child while it waits. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	must(pthread_sigmask(SIG_BLOCK, &set, NULL), "pthread_sigmask");
	kill(getpid(), SIGTERM);
	pthread_t tw;
	spawn(&tw, NULL, term_waiter, NULL);
	while (sem_wait(&sq_ready) != 0)
		;
	fflush(stdout);
	c = fork();
	if (c == 0) {
		kill(getppid(), SIGTERM);
		_exit(0);
	}
	waitpid(c, NULL, 0);
	printf("the sigwait thread took SIGTERM from kill(): %ld of 2\n", (long)join(tw));
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	printf("sigtimedwait with a bad timeout: %s\n",
	       sigtimedwait(&set, &si, &(struct timespec){0, 1000000000}) < 0 ? ename(errno)
									      : "a signal");
	return 0;
}

/* ---- sigthread ---- */

#define SIG_THREADS 3
static atomic_long usr1_tid, usr2_tid;
static atomic_int usr1_count, usr2_count, sig_stop;
static pthread_barrier_t sig_barrier;

struct sig_rec {
	int index;
	long tid;
	int mask_own;
};

static void on_usr1(int sig)
{
	(void)sig;
	atomic_store(&usr1_tid, gettid_());
	atomic_fetch_add(&usr1_count, 1);
}

static void on_usr2(int sig)
{
	(void)sig;
	atomic_store(&usr2_tid, gettid_());
	atomic_fetch_add(&usr2_count, 1);
}

static void *sig_fn(void *arg)
{
	struct sig_rec *r = arg;
	r->tid = gettid_();
	/* Every thread but the last keeps SIGUSR2 blocked (inherited from main); each also blocks
	 * a signal of its own (SIGRTMIN+i): masks are per thread. */
	sigset_t set, cur;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	if (r->index == SIG_THREADS - 1)
		pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN + r->index);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pthread_barrier_wait(&sig_barrier);
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	r->mask_own = 1;
	for (int i = 0; i < SIG_THREADS; i++)
		r->mask_own &= sigismember(&cur, SIGRTMIN + i) == (i == r->index);
	r->mask_own &= sigismember(&cur, SIGUSR2) == (r->index != SIG_THREADS - 1);
	pthread_barrier_wait(&sig_barrier);
	while (!atomic_load(&sig_stop))
		sleep_ms(1);
	return NULL;
}

static int cmd_sigthread(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_usr2;
	sigaction(SIGUSR2, &sa, NULL);
	sigset_t usr2;
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &usr2, NULL);

	struct sig_rec rec[SIG_THREADS];
	pthread_t t[SIG_THREADS];
	must(pthread_barrier_init(&sig_barrier, NULL, SIG_THREADS + 1), "pthread_barrier_init");
	for (int i = 0; i < SIG_THREADS; i++) {
		rec[i].index = i;
		spawn(&t[i], NULL, sig_fn, &rec[i]);
	}
	pthread_barrier_wait(&sig_barrier);
	pthread_barrier_wait(&sig_barrier);
	int masks = 1;
	for (int i = 0; i < SIG_THREADS; i++)
		masks &= rec[i].mask_own;
	printf("signal masks per thread: %s\n", yes(masks));
	if (!masks)
		wrong("a thread's signal mask is not its own");

	/* pthread_kill of the middle thread: its handler runs there. */
	must(pthread_kill(t[1], SIGUSR1), "pthread_kill");
	while (atomic_load(&usr1_count) == 0)
		sleep_ms(1);
	int right = atomic_load(&usr1_tid) == rec[1].tid;
	printf("pthread_kill SIGUSR1 handled by its target: %s\n", yes(right));
	if (!right)
		wrong("SIGUSR1 handled by another thread than pthread_kill's target");

	/* kill() of the process: only the last thread does not block SIGUSR2. */
	kill(getpid(), SIGUSR2);
	while (atomic_load(&usr2_count) == 0)
		sleep_ms(1);
	right = atomic_load(&usr2_tid) == rec[SIG_THREADS - 1].tid;
	printf("kill SIGUSR2 handled by the one thread not blocking it: %s\n", yes(right));
	if (!right)
		wrong("SIGUSR2 handled by a thread that blocks it");

	atomic_store(&sig_stop, 1);
	for (int i = 0; i < SIG_THREADS; i++)
		join(t[i]);
	printf("handled: SIGUSR1 %d, SIGUSR2 %d\n", atomic_load(&usr1_count),
	       atomic_load(&usr2_count));
	if (atomic_load(&usr1_count) != 1 || atomic_load(&usr2_count) != 1)
		wrong("each signal handled once");
	return 0;
}

/* ---- interrupt: signals and cancellation reach threads waiting in read and poll ---- */

static atomic_int intr_handled;

static void on_intr(int sig)
{
	(void)sig;
	atomic_fetch_add(&intr_handled, 1);
}

struct intr_wait {
	int fd, poll; /* poll(fd) instead of read(fd) */
	atomic_int started;
	long result;
	int err;
};

static void *intr_fn(void *arg)
{
	struct intr_wait *w = arg;
	char c;
	atomic_store(&w->started, 1);
	if (w->poll) {
		struct pollfd p = {.fd = w->fd, .events = POLLIN};
		w->result = poll(&p, 1, -1);
	} else {
		w->result = read(w->fd, &c, 1);
	}
	w->err = w->result < 0 ? errno : 0;
	return NULL;
}

/* A thread is started into its wait, given time to be there (nothing ends it but us). */
static void intr_start(pthread_t *t, struct intr_wait *w, int fd, int poll)
{
	*w = (struct intr_wait){.fd = fd, .poll = poll};
	spawn(t, NULL, intr_fn, w);
	while (!atomic_load(&w->started))
		sleep_ms(1);
	sleep_ms(200);
}

static int cmd_interrupt(void)
{
	int p[2];
	must(pipe(p), "pipe");
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_intr; /* no SA_RESTART: the wait ends with EINTR */
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_flags = SA_RESTART; /* the read goes on after the handler */
	sigaction(SIGUSR2, &sa, NULL);
	struct intr_wait w;
	pthread_t t;
	const char *what[] = {"read", "poll"};
	for (int k = 0; k < 2; k++) {
		intr_start(&t, &w, p[0], k);
		must(pthread_kill(t, SIGUSR1), "pthread_kill");
		join(t);
		printf("%s interrupted by a handled signal: %ld %s\n", what[k], w.result,
		       errname(w.err));
		if (w.result != -1 || w.err != EINTR)
			wrong("%s: want -1 EINTR", what[k]);
	}
	int before = atomic_load(&intr_handled);
	intr_start(&t, &w, p[0], 0);
	must(pthread_kill(t, SIGUSR2), "pthread_kill");
	while (atomic_load(&intr_handled) == before)
		sleep_ms(1);
	sleep_ms(50);
	if (write(p[1], "x", 1) != 1)
		wrong("write: %s", errname(errno));
	join(t);
	printf("SA_RESTART read after its handler: %ld\n", w.result);
	if (w.result != 1)
		wrong("restarted read: want 1");
	intr_start(&t, &w, p[0], 0);
	must(pthread_cancel(t), "pthread_cancel");
	void *ret = join(t);
	printf("read cancelled: %s\n", yes(ret == PTHREAD_CANCELED));
	if (ret != PTHREAD_CANCELED)
		wrong("pthread_cancel of a thread in read");
	printf("handlers run: %d\n", atomic_load(&intr_handled));
	return 0;
}

/* ---- unmapped: another thread's view of a munmap ---- */

static _Atomic(volatile int *) unmapped_page;
static atomic_int unmapped_phase;

/* Reads the page until it is gone: once main has unmapped it, the read must fault (SIGSEGV
 * ends the program); one that succeeds used a translation the unmap should have dropped. */
static void *unmapped_reader(void *arg)
{
	(void)arg;
	for (;;) {
		int ph = atomic_load(&unmapped_phase);
		volatile int *p = atomic_load(&unmapped_page);
		if (p)
			(void)*p;
		if (ph == 2) {
			printf("WRONG: a read of the unmapped page succeeded\n");
			fflush(stdout);
			_exit(1);
		}
	}
}

static int cmd_unmapped(void)
{
	pthread_t t;
	int *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		wrong("mmap");
	*m = 1;
	atomic_store(&unmapped_page, m);
	must(pthread_create(&t, NULL, unmapped_reader, NULL), "pthread_create");
	struct timespec d = {0, 20 * 1000 * 1000};
	nanosleep(&d, NULL); /* the reader has the page in its TLB by now */
	printf("unmapping a page another thread reads\n");
	fflush(stdout);
	munmap(m, 4096);
	atomic_store(&unmapped_phase, 2);
	nanosleep(&d, NULL);
	nanosleep(&d, NULL);
	printf("WRONG: the reader did not fault\n");
	return 1;
}

/* ---- hold: a multithreaded program that waits (for sandbox-ctl) ---- */

static void *hold_thread(void *arg)
{
	(void)arg;
	while (1)
		pause();
	return NULL;
}

static int cmd_hold(long secs)
{
	pthread_t t;
	must(pthread_create(&t, NULL, hold_thread, NULL), "pthread_create");
	printf("two threads holding\n");
	fflush(stdout);
	struct timespec d = {secs, 0};
	nanosleep(&d, NULL);
	return 0;
}

/* ---- beat: a multithreaded heartbeat, for snapshots and migration ---- */

#define BEAT_MAX 16
static long beat_rounds;
static int beat_n;
static const char *beat_hold;
static uint64_t beat_acc[BEAT_MAX];
static __thread uint64_t beat_mine; /* the same value in TLS: each vCPU's FS base kept */
static pthread_barrier_t beat_bar;
static pthread_mutex_t beat_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t beat_shared;

static void *beat_fn(void *arg)
{
	int id = (int)(intptr_t)arg;
	long tid = gettid_();
	for (long r = 1; r <= beat_rounds; r++) {
		beat_mine = beat_mine * 6364136223846793005ull + (uint64_t)(r * (id + 1));
		beat_acc[id] = beat_mine;
		pthread_mutex_lock(&beat_lock);
		beat_shared += (uint64_t)r ^ (uint64_t)id;
		pthread_mutex_unlock(&beat_lock);
		pthread_barrier_wait(&beat_bar); /* round r computed */
		pthread_barrier_wait(&beat_bar); /* printed: the next round may start */
	}
	if (beat_mine != beat_acc[id])
		wrong("thread %d: its thread-local value changed", id);
	if (gettid_() != tid)
		wrong("thread %d: its thread id changed", id);
	return NULL;
}

static int cmd_beat(long n, long rounds, const char *hold)
{
	if (n > BEAT_MAX)
		n = BEAT_MAX;
	beat_n = (int)n;
	beat_rounds = rounds;
	beat_hold = hold;
	setvbuf(stdout, NULL, _IOLBF, 0);
	must(pthread_barrier_init(&beat_bar, NULL, (unsigned)n + 1), "pthread_barrier_init");
	pthread_t t[BEAT_MAX];
	for (int i = 0; i < beat_n; i++)
		spawn(&t[i], NULL, beat_fn, (void *)(intptr_t)i);
	for (long r = 1; r <= rounds; r++) {
		pthread_barrier_wait(&beat_bar);
		uint64_t x = 0;
		for (int i = 0; i < beat_n; i++)
			x += beat_acc[i];
		printf("%ld %llu\n", r, (unsigned long long)(x & 0xffffffffu));
		/* The last round waits for the gate: a test decides when the program ends. */
		while (hold && r == rounds - 1 && access(hold, F_OK) != 0)
			sleep_ms(1);
		sleep_ms(1);
		pthread_barrier_wait(&beat_bar);
	}
	for (int i = 0; i < beat_n; i++)
		join(t[i]);
	printf("checksum %llu\n", (unsigned long long)beat_shared);
	/* A fork at the end: after a restore or a migration, the child's vCPU is given the
	 * restored process's CPUID table (a monitor without one crashed here). */
	pid_t c = fork();
	if (c == 0)
		_exit(7);
	int st = 0;
	printf("forked child %d\n",
	       c > 0 && waitpid(c, &st, 0) == c && WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	return 0;
}

/* ---- cgi: a CGI handler with threads (sandbox-serve) ---- */

static int cmd_cgi(long n)
{
	const char *q = getenv("QUERY_STRING");
	printf("Content-Type: text/plain\r\n\r\nquery %s\n", q ? q : "");
	fflush(stdout);
	if (q && !strcmp(q, "spin")) {
		/* Threads that never end: the request's time limit must end them all. */
		pthread_t t;
		spawn(&t, NULL, spin_forever_fn, NULL);
		spawn(&t, NULL, wait_forever_fn, NULL);
		spin_forever_fn(NULL);
	}
	int r = cmd_create(n);
	r |= cmd_ids();
	return r;
}

/* ---- blockedread: one thread waits for input, the others go on ---- */

static void *blockedread_thread(void *arg)
{
	(void)arg;
	char buf[256];
	ssize_t n = read(0, buf, sizeof(buf));
	if (n < 0)
		wrong("read: %s", errname(errno));
	printf("the reader got: %.*s", (int)(n > 0 ? n : 0), buf);
	return NULL;
}

/* A thread in read(0) must not hold up the others' syscalls: main writes to stdout while the
 * reader waits (the input comes only once main's line is out). */
static int cmd_blockedread(void)
{
	pthread_t t;
	must(pthread_create(&t, NULL, blockedread_thread, NULL), "pthread_create");
	struct timespec d = {0, 50 * 1000 * 1000};
	nanosleep(&d, NULL);
	printf("main wrote while a thread waited for input\n");
	fflush(stdout);
	join(t);
	return 0;
}

/* ---- waitreads: reads that wait for their bytes, each in its own shape ---- */

struct wr_feed {
	int fd;
	const char *bytes;
	size_t len, chunk; /* written chunk by chunk (0: at once) */
	int dgram;	   /* each chunk a datagram of its own */
};

static void *wr_feeder(void *arg)
{
	struct wr_feed *f = arg;
	struct timespec d = {0, 30 * 1000 * 1000};
	nanosleep(&d, NULL); /* the reader waits by now */
	size_t chunk = f->chunk ? f->chunk : f->len;
	for (size_t off = 0; off < f->len; off += chunk) {
		size_t l = f->len - off < chunk ? f->len - off : chunk;
		ssize_t w =
		    f->dgram ? send(f->fd, f->bytes + off, l, 0) : write(f->fd, f->bytes + off, l);
		if (w != (ssize_t)l)
			wrong("waitreads: write of %zu: %zd (%s)", l, w, errname(errno));
	}
	return NULL;
}

static pthread_t wr_feed(struct wr_feed *f)
{
	pthread_t t;
	spawn(&t, NULL, wr_feeder, f);
	return t;
}

/* In a process of threads the sandbox reads a wait's bytes into a buffer of its own and copies
 * them after (so that a fork meanwhile can lend its RAM): scattered over a readv's buffers,
 * a datagram cut at the buffer as Linux cuts it, a read longer than that buffer on a pipe, a
 * MSG_WAITALL receive longer than it, which gets all it asked for. */
static int cmd_waitreads(void)
{
	int p[2], sv[2];
	must(pipe(p) < 0 ? errno : 0, "pipe");
	struct wr_feed f = {p[1], "abcdefghijklmnop", 16, 0, 0};
	pthread_t t = wr_feed(&f);
	char a[3], b[5], c[100];
	struct iovec iov[3] = {{a, sizeof(a)}, {b, sizeof(b)}, {c, sizeof(c)}};
	ssize_t n = readv(p[0], iov, 3);
	join(t);
	printf("readv: %zd: [%.3s] [%.5s] [%.*s]\n", n, a, b, n > 8 ? (int)n - 8 : 0, c);

	must(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) < 0 ? errno : 0, "socketpair");
	struct wr_feed g = {sv[1],
			    "0123456789ABCDEFGHIJ"
			    "second",
			    26, 20, 1};
	t = wr_feed(&g);
	char d[10];
	n = recv(sv[0], d, sizeof(d), 0);
	printf("datagram: %zd [%.*s]", n, n > 0 ? (int)n : 0, d);
	n = recv(sv[0], d, sizeof(d), 0);
	printf(", then %zd [%.*s]\n", n, n > 0 ? (int)n : 0, d);
	join(t);
	close(sv[0]);
	close(sv[1]);

	const size_t big = 600 << 10, want = 300 << 10;
	char *src = malloc(big), *dst = malloc(1 << 20);
	if (!src || !dst)
		return 1;
	for (size_t i = 0; i < big; i++)
		src[i] = (char)(i * 7 + i / 4096);
	struct wr_feed h = {p[1], src, big, 48 << 10, 0};
	t = wr_feed(&h);
	size_t got = 0, bad = 0;
	while (got < big) {
		n = read(p[0], dst, 1 << 20);
		if (n <= 0) {
			wrong("waitreads: pipe read: %zd (%s)", n, errname(errno));
			break;
		}
		bad += memcmp(dst, src + got, (size_t)n) != 0;
		got += (size_t)n;
	}
	join(t);
	printf("pipe, 1 MiB reads: %zu bytes, %s\n", got, bad ? "WRONG bytes" : "all in order");

	must(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0 ? errno : 0, "socketpair");
	struct wr_feed k = {sv[1], src, want, 32 << 10, 0};
	t = wr_feed(&k);
	n = recv(sv[0], dst, want, MSG_WAITALL);
	join(t);
	printf("MSG_WAITALL of %zu: %zd, %s\n", want, n,
	       n == (ssize_t)want && !memcmp(dst, src, want) ? "all in order" : "WRONG bytes");
	free(src);
	free(dst);
	return 0;
}

/* ---- unmapread: a blocked read whose buffer's mapping goes away ---- */

#define UM_WIN (16 << 20)
#define UM_LEN 65536
/* Near the window's top: where a thread stack mapped over it afterwards keeps its frames. */
#define UM_OFF (UM_WIN - UM_LEN)
static int um_pipe[2];
static char *um_buf;
static ssize_t um_n;
static int um_errno;
static sem_t um_go;

static void *um_reader(void *arg)
{
	(void)arg;
	um_n = read(um_pipe[0], um_buf + UM_OFF, UM_LEN);
	um_errno = errno;
	return NULL;
}

static void *um_idle(void *arg)
{
	(void)arg;
	sem_wait(&um_go);
	return NULL;
}

static int cmd_unmapread(void)
{
	int fd = memfd_create("unmapread", 0);
	must(fd < 0 || ftruncate(fd, UM_WIN) < 0 ? errno : 0, "memfd");
	um_buf = mmap(NULL, UM_WIN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	must(um_buf == MAP_FAILED ? errno : 0, "mmap");
	must(pipe(um_pipe) < 0 ? errno : 0, "pipe");
	must(sem_init(&um_go, 0, 0) < 0 ? errno : 0, "sem_init");
	pthread_t r, t[4];
	must(pthread_create(&r, NULL, um_reader, NULL), "pthread_create");
	struct timespec d = {0, 100 * 1000 * 1000};
	nanosleep(&d, NULL); /* the reader waits for input by now */
	munmap(um_buf, UM_WIN);
	/* Natively the read now fails with EFAULT; without this, the new threads' stacks could
	 * be mapped there and the read write over them. */
	must(mmap(um_buf, UM_WIN, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
		     MAP_FAILED
		 ? errno
		 : 0,
	     "mmap PROT_NONE");
	/* New threads: in the sandbox, host threads for their vCPUs, whose stacks the host may
	 * map where the window was. */
	for (int i = 0; i < 4; i++)
		must(pthread_create(&t[i], NULL, um_idle, NULL), "pthread_create");
	/* Less than any pipe holds: the write never waits for a reader that took only part. */
	static char msg[4096];
	memset(msg, 'u', sizeof(msg));
	if (write(um_pipe[1], msg, sizeof(msg)) != (ssize_t)sizeof(msg))
		wrong("unmapread: write: %s", strerror(errno));
	join(r);
	for (int i = 0; i < 4; i++)
		sem_post(&um_go);
	for (int i = 0; i < 4; i++)
		join(t[i]);
	char back[16] = {0};
	ssize_t b = pread(fd, back, sizeof(back), UM_OFF);
	size_t want = um_n > 16 ? 16 : um_n > 0 ? (size_t)um_n : 0;
	if (um_n > 0 && b >= (ssize_t)want && !memcmp(back, msg, want))
		printf("unmapread: the read ended\n");
	else if (um_n < 0 && um_errno == EFAULT)
		printf("unmapread: the read ended\n");
	else
		wrong("unmapread: read gave %zd (%s), the file has %.*s", um_n,
		      um_n < 0 ? strerror(um_errno) : "bytes", (int)(b > 0 ? b : 0), back);
	return 0;
}

/* The program's SIGSEGV handler: fn with SA_SIGINFO and flags. */
static void on_segv(void (*fn)(int, siginfo_t *, void *), int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = fn;
	sa.sa_flags = SA_SIGINFO | flags;
	sigaction(SIGSEGV, &sa, NULL);
}

/* ---- segvmain: the main thread handles its own faults while another thread runs ---- */

static volatile char *segv_page;
static atomic_int segv_handled, segv_done;
static atomic_long segv_rounds;

static void segv_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if ((volatile char *)si->si_addr != segv_page)
		_exit(3);
	atomic_fetch_add(&segv_handled, 1);
	mprotect((void *)segv_page, 4096, PROT_READ | PROT_WRITE);
}

static void *segv_worker(void *arg)
{
	(void)arg;
	/* Mostly asleep: in the kernel (and the monitor) when main's faults stop the run. */
	struct timespec d = {0, 200 * 1000};
	while (!atomic_load(&segv_done)) {
		nanosleep(&d, NULL);
		atomic_fetch_add(&segv_rounds, 1);
	}
	return NULL;
}

/* Until the worker has made more than `past` rounds: 1, or 0 after ten seconds. */
static int segv_worker_past(long past)
{
	struct timespec d = {0, 1000 * 1000};
	for (int i = 0; i < 10000; i++) {
		if (atomic_load(&segv_rounds) > past)
			return 1;
		nanosleep(&d, NULL);
	}
	return 0;
}

static int cmd_segvmain(void)
{
	on_segv(segv_handler, 0);
	segv_page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (segv_page == MAP_FAILED)
		wrong("mmap");
	pthread_t t;
	must(pthread_create(&t, NULL, segv_worker, NULL), "pthread_create");
	int before = segv_worker_past(0);
	for (int i = 0; i < 5; i++) {
		segv_page[0] = (char)i; /* faults, the handler makes it writable */
		mprotect((void *)segv_page, 4096, PROT_READ);
	}
	int after = segv_worker_past(atomic_load(&segv_rounds) + 10);
	atomic_store(&segv_done, 1);
	join(t);
	printf("main handled %d faults; the other thread ran before: %s, after: %s\n",
	       atomic_load(&segv_handled), before ? "yes" : "no", after ? "yes" : "no");
	if (!before || !after)
		wrong("the other thread stopped");
	return 0;
}

/* ---- sigbeforewait: a signal sent while its thread computes, then a wait ---- */

static atomic_int sbw_go, sbw_handled;

static void sbw_handler(int sig)
{
	(void)sig;
	atomic_store(&sbw_handled, 1);
}

/* Spins (no syscall) while main signals it, then waits for what only the handler does: the
 * handler must run, before the wait or out of it. */
static void *sbw_thread(void *arg)
{
	(void)arg;
	while (!atomic_load(&sbw_go))
		;
	while (!atomic_load(&sbw_handled))
		syscall(SYS_futex, &sbw_handled, 0 /* FUTEX_WAIT */, 0, NULL, NULL, 0);
	return NULL;
}

static int cmd_sigbeforewait(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sbw_handler;
	sigaction(SIGUSR1, &sa, NULL);
	pthread_t t;
	must(pthread_create(&t, NULL, sbw_thread, NULL), "pthread_create");
	struct timespec d = {0, 20 * 1000 * 1000};
	nanosleep(&d, NULL);
	must(pthread_kill(t, SIGUSR1), "pthread_kill");
	nanosleep(&d, NULL);
	atomic_store(&sbw_go, 1);
	join(t);
	printf("the handler ran and the waiting thread was joined\n");
	return 0;
}

/* ---- segvthreads: faults every thread handles, several at once ---- */

#define SEGV_THREADS 4
#define SEGV_ROUNDS 50

static __thread sigjmp_buf segv_jmp;
static __thread volatile int segv_mine;
static __thread char *segv_alt; /* this thread's alternate stack */
static atomic_int segv_on_alt;
/* Through a variable the compiler cannot see through: the fault is the point. */
static volatile int *volatile segv_bad = (volatile int *)0x10;

static void segv_jump(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	int x;
	if (segv_alt && (char *)&x >= segv_alt && (char *)&x < segv_alt + 65536)
		atomic_fetch_add(&segv_on_alt, 1);
	if (si->si_addr != (void *)(uintptr_t)0x10)
		wrong("si_addr %p, wanted 0x10", si->si_addr);
	segv_mine++;
	siglongjmp(segv_jmp, 1);
}

static void *segv_faulter(void *arg)
{
	long i = (long)arg;
	/* Half the threads take the signal on an alternate stack of their own. */
	if (i % 2) {
		segv_alt = malloc(65536);
		stack_t ss = {.ss_sp = segv_alt, .ss_size = 65536};
		if (sigaltstack(&ss, NULL) != 0)
			wrong("sigaltstack: %s", ename(errno));
	}
	for (int r = 0; r < SEGV_ROUNDS; r++)
		if (!sigsetjmp(segv_jmp, 1))
			*segv_bad = r; /* faults: the handler jumps back */
	return (void *)(long)segv_mine;
}

static void *segv_pipe_reader(void *arg)
{
	char c;
	long n = read(*(int *)arg, &c, 1);
	return (void *)(n < 0 ? -(long)errno : n);
}

static int cmd_segvthreads(void)
{
	on_segv(segv_jump, SA_ONSTACK | SA_NODEFER);
	/* A thread waiting in read() all along: the others' faults are none of its business. */
	int p[2];
	if (pipe(p) != 0)
		wrong("pipe: %s", ename(errno));
	pthread_t t[SEGV_THREADS], rd;
	spawn(&rd, NULL, segv_pipe_reader, &p[0]);
	for (long i = 0; i < SEGV_THREADS; i++)
		spawn(&t[i], NULL, segv_faulter, (void *)i);
	long total = 0;
	for (int i = 0; i < SEGV_THREADS; i++)
		total += (long)join(t[i]);
	printf("%d threads handled %ld faults, %d of them on an alternate stack\n", SEGV_THREADS,
	       total, atomic_load(&segv_on_alt));
	if (write(p[1], "x", 1) != 1)
		wrong("write: %s", ename(errno));
	long got = (long)join(rd);
	printf("a read waiting meanwhile got %s\n", got == 1 ? "its byte" : ename((int)-got));
	return 0;
}

/* ---- segvblocked: a thread that blocks SIGSEGV faults: the process dies of it ---- */

static void *segv_blocked(void *arg)
{
	(void)arg;
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGSEGV);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
	*segv_bad = 1;
	return NULL;
}

static int cmd_segvblocked(void)
{
	on_segv(segv_jump, 0);
	printf("a thread faults with SIGSEGV blocked\n");
	fflush(stdout);
	pthread_t t;
	spawn(&t, NULL, segv_blocked, NULL);
	join(t);
	printf("still alive\n");
	return 0;
}

/* ---- sigspin: signals reach threads that run their own code, no syscalls ---- */

#define SPIN_THREADS 3
static atomic_int spin_started, spin_handled[SPIN_THREADS + 1]; /* the last: main's */
static __thread int spin_me = -1;

static void spin_handler(int sig)
{
	(void)sig;
	if (spin_me >= 0)
		atomic_fetch_add(&spin_handled[spin_me], 1);
}

/* Computes until its handler has run 3 times: no syscall, so only an interrupt of the code
 * itself delivers the signals. */
static void *spinner(void *arg)
{
	spin_me = (int)(long)arg;
	atomic_fetch_add(&spin_started, 1);
	volatile uint64_t x = 0;
	while (atomic_load(&spin_handled[spin_me]) < 3)
		x = x * 6364136223846793005ull + 1;
	return NULL;
}

/* Sends main 3 signals while it computes, each once the last arrived. */
static void *spin_sender(void *arg)
{
	pthread_t main_thread = *(pthread_t *)arg;
	for (int round = 0; round < 3; round++) {
		int before = atomic_load(&spin_handled[SPIN_THREADS]);
		must(pthread_kill(main_thread, SIGUSR1), "pthread_kill of main");
		while (atomic_load(&spin_handled[SPIN_THREADS]) == before)
			sched_yield();
	}
	return NULL;
}

static int cmd_sigspin(void)
{
	signal(SIGUSR1, spin_handler);
	pthread_t t[SPIN_THREADS];
	for (long i = 0; i < SPIN_THREADS; i++)
		spawn(&t[i], NULL, spinner, (void *)i);
	while (atomic_load(&spin_started) < SPIN_THREADS)
		sched_yield();
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < SPIN_THREADS; i++) {
			int before = atomic_load(&spin_handled[i]);
			must(pthread_kill(t[i], SIGUSR1), "pthread_kill");
			/* The next only once this one arrived: signals do not queue. */
			while (atomic_load(&spin_handled[i]) == before)
				sched_yield();
		}
	for (int i = 0; i < SPIN_THREADS; i++)
		join(t[i]);
	printf("%d spinning threads each handled 3 signals\n", SPIN_THREADS);
	/* The main thread computing, another sending it the signals. */
	spin_me = SPIN_THREADS;
	pthread_t self = pthread_self(), s;
	spawn(&s, NULL, spin_sender, &self);
	volatile uint64_t x = 0;
	while (atomic_load(&spin_handled[SPIN_THREADS]) < 3)
		x = x * 6364136223846793005ull + 1;
	join(s);
	printf("the main thread, computing, handled 3 signals from another\n");
	return 0;
}

/* ---- main ---- */

static int usage(void)
{
	fprintf(stderr,
		"usage: threads create N | mutex N ITERS | condvar ITERS | tls | ids | "
		"detach N | exit_in_thread | exitgroup_main | timedwait | many N | stacks | "
		"parallel N WORK | pingpong ITERS | createjoin ITERS | syscalls N ITERS | "
		"rawclone | rawclone3 | "
		"cancel | robust | sigthread | interrupt | unmapped | hold SECONDS | blockedread | "
		"unmapread | waitreads | "
		"segvmain | sigbeforewait | segvthreads | segvblocked | sigspin | "
		"beat N ROUNDS [HOLD] | cgi N\n");
	return 64;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	const char *op = argv[1], *a1 = argc > 2 ? argv[2] : NULL, *a2 = argc > 3 ? argv[3] : NULL;
	int r;
	if (!strcmp(op, "create"))
		r = cmd_create(arg_long(a1, 1));
	else if (!strcmp(op, "mutex"))
		r = cmd_mutex(arg_long(a1, 1), arg_long(a2, 0));
	else if (!strcmp(op, "condvar"))
		r = cmd_condvar(arg_long(a1, 1));
	else if (!strcmp(op, "tls"))
		r = cmd_tls();
	else if (!strcmp(op, "ids"))
		r = cmd_ids();
	else if (!strcmp(op, "detach"))
		r = cmd_detach(arg_long(a1, 1));
	else if (!strcmp(op, "exit_in_thread"))
		r = cmd_exit_in_thread();
	else if (!strcmp(op, "exitgroup_main"))
		r = cmd_exitgroup_main();
	else if (!strcmp(op, "timedwait"))
		r = cmd_timedwait();
	else if (!strcmp(op, "many"))
		r = cmd_many(arg_long(a1, 1));
	else if (!strcmp(op, "stacks"))
		r = cmd_stacks();
	else if (!strcmp(op, "parallel"))
		r = cmd_parallel(arg_long(a1, 1), arg_long(a2, 0));
	else if (!strcmp(op, "pingpong"))
		r = cmd_pingpong(arg_long(a1, 1));
	else if (!strcmp(op, "createjoin"))
		r = cmd_createjoin(arg_long(a1, 1));
	else if (!strcmp(op, "syscalls"))
		r = cmd_syscalls(arg_long(a1, 1), arg_long(a2, 1));
	else if (!strcmp(op, "rawclone"))
		r = cmd_rawclone();
	else if (!strcmp(op, "rawclone3"))
		r = cmd_rawclone3();
	else if (!strcmp(op, "cancel"))
		r = cmd_cancel();
	else if (!strcmp(op, "robust"))
		r = cmd_robust();
	else if (!strcmp(op, "pi"))
		r = cmd_pi();
	else if (!strcmp(op, "sigqueue"))
		r = cmd_sigqueue();
	else if (!strcmp(op, "sigthread"))
		r = cmd_sigthread();
	else if (!strcmp(op, "unmapped"))
		r = cmd_unmapped();
	else if (!strcmp(op, "interrupt"))
		r = cmd_interrupt();
	else if (!strcmp(op, "hold"))
		r = cmd_hold(arg_long(a1, 1));
	else if (!strcmp(op, "cgi"))
		r = cmd_cgi(arg_long(a1, 1));
	else if (!strcmp(op, "beat"))
		r = cmd_beat(arg_long(a1, 1), arg_long(a2, 2), argc > 4 ? argv[4] : NULL);
	else if (!strcmp(op, "unmapread"))
		r = cmd_unmapread();
	else if (!strcmp(op, "waitreads"))
		r = cmd_waitreads();
	else if (!strcmp(op, "blockedread"))
		r = cmd_blockedread();
	else if (!strcmp(op, "segvmain"))
		r = cmd_segvmain();
	else if (!strcmp(op, "segvthreads"))
		r = cmd_segvthreads();
	else if (!strcmp(op, "segvblocked"))
		r = cmd_segvblocked();
	else if (!strcmp(op, "sigspin"))
		r = cmd_sigspin();
	else if (!strcmp(op, "sigbeforewait"))
		r = cmd_sigbeforewait();
	else
		return usage();
	return failures ? 1 : r;
}
