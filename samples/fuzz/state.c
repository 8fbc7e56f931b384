/* A target that keeps state it should not: a global counter, a heap leak, a file on a --tmp
 * mount (/tmp) appended to on every input, an environment variable. Under the reset every
 * input sees the same world as the first: it aborts when it sees a trace of an earlier input,
 * and an input "P" prints what it sees, so a test can compare input 1 with input 100,000.
 * With STATE_COMMANDS=1 in its environment, inputs starting with 'E' call exit(3), 'Z' exit(0),
 * 'A' abort(),
 * 'L' loop forever, 'M' allocate without end, 'C' write through a null pointer, 'F' start
 * two children (one that never ends: it must end with the input), 'R' leave a
 * page of its data read-only (a page-table change the reset must undo), 'S' sleep 300 ms and
 * return (an input slow enough to meet a fuzzer's time limit), 'W' write to stderr, then seek
 * it a terabyte on and write again, and abort if it can read its stderr back (under
 * sandbox-fuzz, where the monitor's own report goes), 'T' start a thread and join it, 'U' leave
 * threads running (one spinning on a global, one asleep, one waiting on a futex): they must end
 * with the input, and no later input may see their writes. With STATE_INIT_THREAD set a thread
 * asleep, with STATE_INIT_POOL a worker waiting on a condition variable, start before the fuzz
 * point (in LLVMFuzzerInitialize, as a library's pool or a Go runtime's threads would), and with
 * STATE_INIT_JOINED one that ends there, joined, so that none runs at the point: 'Q'
 * hands the input to the worker and waits for it, with or without STATE_COMMANDS ('QC' with it:
 * the worker writes through a null pointer); the worker aborts if it sees an earlier input's
 * job. STATE_INIT_NOSYS makes a call the sandbox does not implement before the point. */
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sbx_fuzz.h"

static int counter;
static volatile long spun; /* 'U''s spinning thread's count: 0 at every input's start */
static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;

static void *sum_to(void *arg)
{
	long n = (long)arg, s = 0;
	for (long i = 1; i <= n; i++)
		s += i;
	return (void *)s;
}

static void *spin_on(void *arg)
{
	for (;;)
		spun++;
	return arg;
}

static void *sleep_long(void *arg)
{
	struct timespec t = {3600, 0};
	nanosleep(&t, NULL);
	spun = -1;
	return arg;
}

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cond = PTHREAD_COND_INITIALIZER;
static int pool_started, pool_job, pool_done, pool_jobs_seen;
static uint8_t pool_arg;

static void *pool_worker(void *arg)
{
	pthread_mutex_lock(&pool_lock);
	for (;;) {
		while (!pool_job)
			pthread_cond_wait(&pool_cond, &pool_lock);
		pool_job = 0;
		if (pool_jobs_seen++ != 0)
			abort(); /* an earlier input's job survived */
		if (pool_arg == 'C')
			*(volatile int *)(uintptr_t)(pool_arg * 0 + 8) = 1;
		pool_done = 1;
		pthread_cond_broadcast(&pool_cond);
	}
	return arg;
}

/* Threads started before the fuzz point, which every input finds as they were there. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	pthread_t t;
	if (getenv("STATE_INIT_THREAD") && pthread_create(&t, NULL, sleep_long, NULL) == 0)
		pthread_detach(t);
	void *r;
	/* STATE_INIT_NOSYS: a call the sandbox does not implement, said once, not per input. */
	if (getenv("STATE_INIT_NOSYS"))
		syscall(216 /* remap_file_pages */, 0, 0, 0, 0, 0);
	if (getenv("STATE_INIT_JOINED") &&
	    (pthread_create(&t, NULL, sum_to, (void *)10l) != 0 || pthread_join(t, &r) != 0))
		abort();
	if (getenv("STATE_INIT_POOL") && pthread_create(&t, NULL, pool_worker, NULL) == 0) {
		pthread_detach(t);
		pool_started = 1;
	}
	return 0;
}

static void *lock_held(void *arg)
{
	pthread_mutex_lock(&held); /* the input holds it: a futex wait */
	spun = -2;
	return arg;
}
static char *volatile sink;
static char page[2 * 4096] __attribute__((aligned(4096)));

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (counter != 0 || getenv("STATE_SEEN") || spun != 0)
		abort(); /* an earlier input's global, environment or thread survived */
	counter++;
	page[0] = 1; /* faults if an earlier 'R' survived */
	setenv("STATE_SEEN", "1", 1);
	char *leak = malloc(4096); /* never freed */
	memset(leak, 0x5a, 4096);
	long size_before = -1;
	int fd = open("/tmp/state.txt", O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd >= 0) {
		size_before = lseek(fd, 0, SEEK_END);
		if (size_before != 0)
			abort(); /* an earlier input's write survived */
		if (write(fd, "x", 1) != 1)
			abort();
		close(fd);
	}
	if (size > 0 && data[0] == 'P') {
		printf("state: counter=%d heap=%p file=%ld\n", counter, (void *)leak, size_before);
		fflush(stdout);
	}
	if (size > 0 && data[0] == 'Q' && pool_started) {
		pthread_mutex_lock(&pool_lock);
		pool_arg = size > 1 && getenv("STATE_COMMANDS") ? data[1] : 0;
		pool_job = 1;
		pthread_cond_broadcast(&pool_cond);
		while (!pool_done)
			pthread_cond_wait(&pool_cond, &pool_lock);
		pthread_mutex_unlock(&pool_lock);
	}
	if (size == 0 || !getenv("STATE_COMMANDS"))
		return 0;
	switch (data[0]) {
	case 'E':
		exit(3);
	case 'Z':
		exit(0);
	case 'A':
		abort();
	case 'L':
		for (volatile int spin = 1; spin;)
			;
		break;
	case 'M':
		for (;;) {
			char *q = malloc(1 << 20);
			if (!q)
				abort();
			memset(q, 1, 1 << 20);
			sink = q; /* escapes: the compiler may not elide the allocation */
		}
	case 'R':
		if (mprotect(page, 4096, PROT_READ) != 0)
			abort();
		break;
	case 'C':
		*(volatile int *)(uintptr_t)(size * 0 + 8) = 1;
		break;
	case 'S': {
		struct timespec t = {0, 300 * 1000000};
		nanosleep(&t, NULL);
		break;
	}
	case 'F': {
		/* Children: one spins for ever, one exits 7. They must end with the input, so
		 * every input's are numbered alike, the two pids after the target's own, and find
		 * room under --max-procs. */
		pid_t spin = fork();
		if (spin == 0)
			for (volatile int x = 1; x;)
				;
		pid_t quick = fork();
		if (quick == 0)
			_exit(7);
		int st = 0;
		if (spin != getpid() + 1 || quick != getpid() + 2 ||
		    waitpid(quick, &st, 0) != quick || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
			abort();
		break;
	}
	case 'T': {
		pthread_t t;
		void *r = NULL;
		if (pthread_create(&t, NULL, sum_to, (void *)1000l) != 0 ||
		    pthread_join(t, &r) != 0 || (long)r != 500500)
			abort();
		break;
	}
	case 'U': {
		pthread_t t[3];
		pthread_mutex_lock(&held);
		if (pthread_create(&t[0], NULL, spin_on, NULL) != 0 ||
		    pthread_create(&t[1], NULL, sleep_long, NULL) != 0 ||
		    pthread_create(&t[2], NULL, lock_held, NULL) != 0)
			abort();
		while (spun < 1000)
			;
		break; /* held stays locked: the reset puts it back */
	}
	case 'W': {
		char back[64];
		dprintf(2, "state: stderr\n");
		lseek(2, 1ll << 40, SEEK_SET);
		dprintf(2, "state: far\n");
		if (pread(2, back, sizeof(back), 0) > 0 || read(2, back, sizeof(back)) > 0)
			abort();
		break;
	}
	}
	return 0;
}
