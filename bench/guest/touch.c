/* touch MIB: first-touch cost of fresh anonymous memory. Maps MIB MiB (mmap, private,
 * anonymous), writes one byte per 4 KiB page, and prints "touch MIB ns_total" to stderr, timed
 * with CLOCK_MONOTONIC around the touching loop only. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static long long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000000000 + t.tv_nsec;
}

int main(int argc, char **argv)
{
	long mib = argc > 1 ? atol(argv[1]) : 0;
	if (mib <= 0) {
		fprintf(stderr, "usage: touch MIB\n");
		return 2;
	}
	size_t len = (size_t)mib << 20;
	volatile char *p =
	    mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("touch: mmap");
		return 1;
	}
	long long t0 = now_ns();
	for (size_t off = 0; off < len; off += 4096)
		p[off] = 1;
	long long t1 = now_ns();
	fprintf(stderr, "touch %ld %lld\n", mib, t1 - t0);
	munmap((void *)p, len);
	return 0;
}
