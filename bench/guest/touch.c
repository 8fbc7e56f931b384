/* touch MIB [noreserve [STRIDE]]: first-touch cost of fresh anonymous memory. Maps MIB MiB
 * (mmap, private, anonymous; with `noreserve`, MAP_NORESERVE: in the sandbox its pages come at
 * first touch, from the guest kernel's page-fault handler), writes one byte every STRIDE bytes
 * (default 4096: every page), and prints "touches N" then "touch MIB ns_total" to stderr, timed
 * with CLOCK_MONOTONIC around the touching loop only. A STRIDE of 65536 makes every touch a fault
 * of its own in the sandbox (it maps 64 KiB at a fault). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	int noreserve = argc > 2 && !strcmp(argv[2], "noreserve");
	long stride = argc > 3 ? atol(argv[3]) : 4096;
	if (mib <= 0 || stride <= 0) {
		fprintf(stderr, "usage: touch MIB [noreserve [STRIDE]]\n");
		return 2;
	}
	size_t len = (size_t)mib << 20;
	volatile char *p =
	    mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | (noreserve ? MAP_NORESERVE : 0), -1, 0);
	if (p == MAP_FAILED) {
		perror("touch: mmap");
		return 1;
	}
	long long t0 = now_ns(), n = 0;
	for (size_t off = 0; off < len; off += (size_t)stride, n++)
		p[off] = 1;
	long long t1 = now_ns();
	fprintf(stderr, "touches %lld\ntouch %ld %lld\n", n, mib, t1 - t0);
	munmap((void *)p, len);
	return 0;
}
