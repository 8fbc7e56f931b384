/* heartbeat COUNT [DIRTY_MB_PER_S] [TOUCH_MB] [FILE|-] [HOLD]: prints a sequence number every
 * millisecond, COUNT times, while writing DIRTY_MB_PER_S (default 10) megabytes a second into a
 * buffer of TOUCH_MB (default 64) megabytes, all of it touched first. At the end it prints a
 * checksum of the buffer (which depends on COUNT only, not on timing) and the largest gap it saw
 * between two beats, by CLOCK_REALTIME: a pause of the sandbox (a snapshot, a migration) shows
 * there. With FILE (not "-"), each beat also reads one line of it and prints it after the
 * number, so a restore that lost the file's offset shows. With HOLD, the last beat waits until
 * the file HOLD exists, looking once a millisecond: a test decides when the program ends, so a
 * snapshot or a migration it starts is certain to find it running, however slow the host. The
 * migration tests and benchmark run it: every number must appear exactly once, in order. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(clockid_t c)
{
	struct timespec t;
	clock_gettime(c, &t);
	return (int64_t)t.tv_sec * 1000000000ll + t.tv_nsec;
}

int main(int argc, char **argv)
{
	long count = argc > 1 ? atol(argv[1]) : 1000;
	double rate = argc > 2 ? atof(argv[2]) : 10;
	long touch = argc > 3 ? atol(argv[3]) : 64;
	if (count < 1 || rate < 0 || touch < 1) {
		fprintf(stderr,
			"usage: heartbeat COUNT [DIRTY_MB_PER_S] [TOUCH_MB] [FILE|-] [HOLD]\n");
		return 2;
	}
	size_t size = (size_t)touch << 20, pages = size / 4096;
	int with_file = argc > 4 && strcmp(argv[4], "-") != 0;
	const char *hold = argc > 5 ? argv[5] : NULL;
	FILE *in = with_file ? fopen(argv[4], "r") : NULL;
	if (with_file && !in) {
		perror(argv[4]);
		return 1;
	}
	uint8_t *buf = malloc(size);
	if (!buf) {
		fprintf(stderr, "heartbeat: out of memory\n");
		return 1;
	}
	memset(buf, 1, size);
	/* Pages to dirty per beat (1 ms), carried over as a fraction. */
	double per_beat = rate * 1048576.0 / 4096 / 1000, owed = 0;
	size_t next = 0;
	int64_t last = now_ns(CLOCK_REALTIME), gap = 0;
	int64_t start = now_ns(CLOCK_MONOTONIC);
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (long i = 1; i <= count; i++) {
		while (hold && i == count && access(hold, F_OK) != 0) {
			struct timespec ms = {0, 1000000};
			nanosleep(&ms, NULL);
		}
		for (owed += per_beat; owed >= 1; owed--) {
			/* One write per page; the value depends on i only. */
			buf[next * 4096 + (size_t)(i % 4096)] = (uint8_t)(i * 31 + next);
			next = (next + 1) % pages;
		}
		char line[256] = "";
		if (in && fgets(line, sizeof(line), in))
			line[strcspn(line, "\n")] = 0;
		if (in)
			printf("%ld %s\n", i, line);
		else
			printf("%ld\n", i);
		int64_t t = now_ns(CLOCK_REALTIME);
		if (t - last > gap)
			gap = t - last;
		last = t;
		/* Beats on a fixed schedule, so time lost to a pause is not made up. */
		int64_t due = start + i * 1000000ll, m = now_ns(CLOCK_MONOTONIC);
		if (due > m) {
			struct timespec d = {0, (long)(due - m)};
			nanosleep(&d, NULL);
		}
	}
	uint64_t h = 1469598103934665603ull;
	for (size_t j = 0; j < size; j += 8) {
		uint64_t w;
		memcpy(&w, buf + j, 8);
		h = (h ^ w) * 1099511628211ull;
	}
	printf("checksum %016llx max-gap-us %lld\n", (unsigned long long)h,
	       (long long)(gap / 1000));
	return 0;
}
