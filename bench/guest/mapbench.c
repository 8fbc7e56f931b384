/* mapbench DIR [ROUNDS]: the costs of shared file mappings, for docs/architecture.md ("Shared
 * file mappings"). Medians of ROUNDS (default 200), in microseconds:
 *   map+unmap    mmap(MAP_SHARED) of one page of DIR/bench.dat and munmap (in the sandbox: a
 *                memslot added and removed)
 *   first touch  a write to a page of a fresh 256-page mapping, per page
 *   write+msync  one byte written through the mapping, then msync(MS_SYNC) of its page
 *   pwrite       the same through pwrite + fdatasync, for comparison */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define TOUCH_PAGES 256

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	return v[n / 2];
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	int rounds = argc > 2 ? atoi(argv[2]) : 200;
	char path[4096];
	snprintf(path, sizeof(path), "%s/bench.dat", argv[1]);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, TOUCH_PAGES * PAGE) < 0)
		return 1;
	double *t = calloc((size_t)rounds, sizeof(*t));
	for (int i = 0; i < rounds; i++) {
		double a = now_us();
		char *m = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m == MAP_FAILED)
			return 1;
		munmap(m, PAGE);
		t[i] = now_us() - a;
	}
	printf("map+unmap    %8.1f us\n", median(t, rounds));
	for (int i = 0; i < rounds / 10 + 1; i++) {
		char *m = mmap(NULL, TOUCH_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		double a = now_us();
		for (int p = 0; p < TOUCH_PAGES; p++)
			m[p * PAGE] = (char)i;
		t[i] = (now_us() - a) / TOUCH_PAGES;
		munmap(m, TOUCH_PAGES * PAGE);
	}
	printf("first touch  %8.2f us a page\n", median(t, rounds / 10 + 1));
	char *m = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	for (int i = 0; i < rounds; i++) {
		double a = now_us();
		m[i % PAGE] = (char)i;
		msync(m, PAGE, MS_SYNC);
		t[i] = now_us() - a;
	}
	printf("write+msync  %8.1f us\n", median(t, rounds));
	for (int i = 0; i < rounds; i++) {
		char c = (char)i;
		double a = now_us();
		if (pwrite(fd, &c, 1, i % PAGE) != 1)
			return 1;
		fdatasync(fd);
		t[i] = now_us() - a;
	}
	printf("pwrite+sync  %8.1f us\n", median(t, rounds));
	munmap(m, PAGE);
	close(fd);
	unlink(path);
	return 0;
}
