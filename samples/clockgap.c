/* clockgap COUNT: COUNT beats a millisecond apart, printing each; at the end the largest gap
 * between two beats by CLOCK_MONOTONIC, by CLOCK_REALTIME and by CLOCK_BOOTTIME, and the
 * process's CPU time, in milliseconds. A sandbox stopped at a snapshot and restored later
 * shows the time it sat on disk in realtime only (docs/snapshots.md, "Clocks"). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int64_t now_ms(clockid_t c)
{
	struct timespec t;
	clock_gettime(c, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	long count = argc > 1 ? atol(argv[1]) : 1000;
	const clockid_t ids[3] = {CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME};
	int64_t last[3], gap[3] = {0, 0, 0};
	for (int c = 0; c < 3; c++)
		last[c] = now_ms(ids[c]);
	struct timespec ms = {0, 1000000};
	for (long i = 1; i <= count; i++) {
		nanosleep(&ms, NULL);
		for (int c = 0; c < 3; c++) {
			int64_t t = now_ms(ids[c]);
			if (t - last[c] > gap[c])
				gap[c] = t - last[c];
			if (t < last[c])
				gap[c] = -1000000; /* went backwards: never fine */
			last[c] = t;
		}
		printf("%ld\n", i);
		fflush(stdout);
	}
	printf("gaps monotonic %lld realtime %lld boottime %lld cpu %lld\n", (long long)gap[0],
	       (long long)gap[1], (long long)gap[2], (long long)now_ms(CLOCK_PROCESS_CPUTIME_ID));
	return 0;
}
