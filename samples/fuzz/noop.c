/* The cheapest target there is: what a fuzzer's executor costs by itself. With NOOP_THREADS=N
 * in its environment, N threads start before the point and wait on a condition variable (a
 * pool a library starts at initialisation, a runtime's own): what holding them costs an input. */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "sbx_fuzz.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;

static void *idle(void *arg)
{
	pthread_mutex_lock(&lock);
	for (;;)
		pthread_cond_wait(&never, &lock);
	return arg;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *e = getenv("NOOP_THREADS");
	for (long i = 0, n = e ? strtol(e, NULL, 10) : 0; i < n && i < 64; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, idle, NULL) == 0)
			pthread_detach(t);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	(void)data;
	(void)size;
	return 0;
}
