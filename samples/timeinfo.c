/* timeinfo: sanity checks of the clocks, sleeping, random bytes and uname. Prints "ok" or
 * "fail" per check, never the values themselves (they differ from run to run); exits 1 if any
 * check failed. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <time.h>

static int failures;

static void check(const char *what, int ok)
{
	printf("%s: %s\n", what, ok ? "ok" : "fail");
	if (!ok)
		failures++;
}

static int64_t ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

static int valid(const struct timespec *t)
{
	return t->tv_sec >= 0 && t->tv_nsec >= 0 && t->tv_nsec < 1000000000;
}

int main(void)
{
	struct timespec rt, m1, m2, c1, c2;

	int r = clock_gettime(CLOCK_REALTIME, &rt);
	time_t now = time(NULL);
	check("clock_gettime REALTIME", r == 0 && valid(&rt));
	check("REALTIME within a day of time()",
	      rt.tv_sec > now - 86400 && rt.tv_sec < now + 86400);
	check("time() after 2020", now > 1577836800);

	struct timeval tv;
	r = gettimeofday(&tv, NULL);
	check("gettimeofday", r == 0 && tv.tv_usec >= 0 && tv.tv_usec < 1000000);
	check("gettimeofday within a day of REALTIME",
	      tv.tv_sec > rt.tv_sec - 86400 && tv.tv_sec < rt.tv_sec + 86400);

	r = clock_gettime(CLOCK_MONOTONIC, &m1);
	check("clock_gettime MONOTONIC", r == 0 && valid(&m1));
	r = clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	check("clock_gettime PROCESS_CPUTIME_ID", r == 0 && valid(&c1));

	/* some work, so that both clocks should move */
	volatile uint64_t x = 1;
	for (int i = 0; i < 2000000; i++)
		x = x * 6364136223846793005ull + 1442695040888963407ull;
	clock_gettime(CLOCK_MONOTONIC, &m2);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c2);
	check("MONOTONIC increases", ns(&m2) > ns(&m1));
	check("PROCESS_CPUTIME_ID does not go back", ns(&c2) >= ns(&c1));

	int backwards = 0;
	for (int i = 0; i < 1000; i++) {
		clock_gettime(CLOCK_MONOTONIC, &m2);
		if (ns(&m2) < ns(&m1))
			backwards++;
		m1 = m2;
	}
	check("MONOTONIC never goes back (1000 reads)", backwards == 0);

	struct timespec req = {0, 20 * 1000 * 1000};
	clock_gettime(CLOCK_MONOTONIC, &m1);
	r = nanosleep(&req, NULL);
	clock_gettime(CLOCK_MONOTONIC, &m2);
	check("nanosleep 20 ms", r == 0);
	check("nanosleep slept >= 20 ms", ns(&m2) - ns(&m1) >= 20 * 1000 * 1000);
	check("nanosleep slept < 5 s", ns(&m2) - ns(&m1) < 5000LL * 1000 * 1000);

	unsigned char rnd[32], rnd2[32];
	memset(rnd, 0, sizeof(rnd));
	memset(rnd2, 0, sizeof(rnd2));
	ssize_t n = getrandom(rnd, sizeof(rnd), 0);
	ssize_t n2 = getrandom(rnd2, sizeof(rnd2), 0);
	int nonzero = 0;
	for (size_t i = 0; i < sizeof(rnd); i++)
		nonzero |= rnd[i];
	check("getrandom 32 bytes", n == 32 && n2 == 32);
	check("getrandom not all zero", nonzero != 0);
	check("getrandom twice differs", memcmp(rnd, rnd2, sizeof(rnd)) != 0);

	struct utsname u;
	r = uname(&u);
	check("uname", r == 0);
	check("uname sysname Linux", r == 0 && strcmp(u.sysname, "Linux") == 0);
	check("uname machine x86_64", r == 0 && strcmp(u.machine, "x86_64") == 0);

	printf("%s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
