/* clockgap COUNT [HOLD]: COUNT beats a millisecond apart, printing each; at the end the largest
 * gap between two beats by CLOCK_MONOTONIC, by CLOCK_REALTIME and by CLOCK_BOOTTIME, the
 * process's CPU time, and the most realtime ran ahead of monotonic and of boottime over one
 * gap, in milliseconds. A sandbox stopped at a snapshot and restored later shows the time it
 * sat on disk in realtime only (docs/snapshots.md, "Clocks"): in that gap realtime runs ahead
 * of the others by that time. With HOLD, the last beat waits until the file HOLD exists,
 * looking every millisecond (each look a beat for the gaps, unprinted): a test decides when
 * the program ends, so a snapshot it takes is certain to find it running. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(clockid_t c)
{
	struct timespec t;
	clock_gettime(c, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static const clockid_t ids[3] = {CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME};
static int64_t last[3], gap[3], ahead[2];

static void beat(void)
{
	struct timespec ms = {0, 1000000};
	nanosleep(&ms, NULL);
	int64_t d[3];
	for (int c = 0; c < 3; c++) {
		int64_t t = now_ms(ids[c]);
		d[c] = t - last[c];
		if (d[c] > gap[c])
			gap[c] = d[c];
		if (t < last[c])
			gap[c] = -1000000; /* went backwards: never fine */
		last[c] = t;
	}
	if (d[1] - d[0] > ahead[0])
		ahead[0] = d[1] - d[0];
	if (d[1] - d[2] > ahead[1])
		ahead[1] = d[1] - d[2];
}

int main(int argc, char **argv)
{
	long count = argc > 1 ? atol(argv[1]) : 1000;
	const char *hold = argc > 2 ? argv[2] : NULL;
	for (int c = 0; c < 3; c++)
		last[c] = now_ms(ids[c]);
	for (long i = 1; i <= count; i++) {
		while (hold && i == count && access(hold, F_OK) != 0)
			beat();
		beat();
		printf("%ld\n", i);
		fflush(stdout);
	}
	printf("gaps monotonic %lld realtime %lld boottime %lld cpu %lld realtime-ahead monotonic "
	       "%lld boottime %lld\n",
	       (long long)gap[0], (long long)gap[1], (long long)gap[2],
	       (long long)now_ms(CLOCK_PROCESS_CPUTIME_ID), (long long)ahead[0],
	       (long long)ahead[1]);
	return 0;
}
