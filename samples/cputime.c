/* cputime: the CPU-time clocks after waiting or working. Prints each clock's reading in
 * milliseconds (the values differ from run to run: a test compares them with bounds):
 *   cputime sleep MS   nanosleep MS milliseconds
 *   cputime poll MS    poll stdin for MS milliseconds (give it a pipe nobody writes to)
 *   cputime read       print "reading", then read stdin to its end
 *   cputime busy MS    compute until the process's CPU clock has moved MS milliseconds (on
 *                      a loaded host that takes longer: another thread's time is not its),
 *                      then print "backwards N": how many of its reads went back
 * then "process N", "thread N" (clock_gettime), "rusage N" (ru_utime + ru_stime), "times N"
 * (tms_utime + tms_stime), "clock N" (clock()), one a line, and "span cpu N wall N": the CPU
 * time and the CLOCK_MONOTONIC time that passed from the start of main() to here. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/times.h>
#include <time.h>
#include <unistd.h>

/* A global so the busy loop is not optimised away (and clang does not call it unused). */
static volatile unsigned long cputime_sink;

static long clock_ns(clockid_t c)
{
	struct timespec t;
	clock_gettime(c, &t);
	return (long)t.tv_sec * 1000000000 + t.tv_nsec;
}

static long clock_ms(clockid_t c)
{
	return clock_ns(c) / 1000000;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: cputime sleep|poll|busy MS | cputime read\n");
		return 2;
	}
	long ms = argc > 2 ? atol(argv[2]) : 0;
	long cpu0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID), wall0 = clock_ms(CLOCK_MONOTONIC);
	if (strcmp(argv[1], "sleep") == 0) {
		struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000};
		while (nanosleep(&t, &t) != 0)
			;
	} else if (strcmp(argv[1], "poll") == 0) {
		struct pollfd p = {.fd = 0, .events = POLLIN};
		poll(&p, 1, (int)ms);
	} else if (strcmp(argv[1], "read") == 0) {
		char buf[256];
		printf("reading\n");
		fflush(stdout);
		while (read(0, buf, sizeof(buf)) > 0)
			;
	} else if (strcmp(argv[1], "busy") == 0) {
		long now = clock_ns(CLOCK_PROCESS_CPUTIME_ID), end = now + ms * 1000000, back = 0;
		while (now < end) {
			for (int i = 0; i < 10000; i++)
				cputime_sink += (unsigned long)i;
			long t = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
			back += t < now;
			now = t > now ? t : now;
		}
		printf("backwards %ld\n", back);
	} else {
		return 2;
	}
	struct rusage ru;
	struct tms tm;
	getrusage(RUSAGE_SELF, &ru);
	times(&tm);
	long hz = sysconf(_SC_CLK_TCK);
	printf("process %ld\n", clock_ms(CLOCK_PROCESS_CPUTIME_ID));
	printf("thread %ld\n", clock_ms(CLOCK_THREAD_CPUTIME_ID));
	printf("rusage %ld\n", (long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
				   (long)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000);
	printf("times %ld\n", (long)(tm.tms_utime + tm.tms_stime) * 1000 / hz);
	printf("clock %ld\n", (long)(clock() / (CLOCKS_PER_SEC / 1000)));
	long cpu1 = clock_ms(CLOCK_PROCESS_CPUTIME_ID), wall1 = clock_ms(CLOCK_MONOTONIC);
	printf("span cpu %ld wall %ld\n", cpu1 - cpu0, wall1 - wall0);
	return 0;
}
