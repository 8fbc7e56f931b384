/* What giving a child process its RAM costs the monitor, host side only (no VM needed): the
 * parent's guest RAM is a memfd of --mem bytes of which HELD MiB are written; the child gets
 *   memcpy   a fresh memfd, each extent stored through the child's mapping (before session 40:
 *            a page fault and a page of zeros per page)
 *   pwrite   a fresh memfd, each extent written into it from the parent's mapping (fork now)
 *   lend     a private mapping of the parent's memfd (a vfork's child now: nothing copied)
 * Medians of 9, ms, with each against memcpy.
 * Usage: ramcopy_bench [HELD_MIB...]   (default: 8 64) */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define RAM (256ull << 20)
#define RUNS 9

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int ram(char **map, int shared, int from)
{
	int fd = from >= 0 ? from : memfd_create("ramcopy", MFD_CLOEXEC);
	if (fd < 0 || (from < 0 && ftruncate(fd, (off_t)RAM) < 0))
		return -1;
	*map = mmap(NULL, RAM, PROT_READ | PROT_WRITE,
		    (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_NORESERVE, fd, 0);
	return *map == MAP_FAILED ? -1 : fd;
}

/* One child's RAM made by `how`, timed; the child then reads its last held page. */
static double one(int pfd, const char *p, size_t held, int how)
{
	char *c;
	double t0 = now_ms();
	int cfd = ram(&c, how != 2, how == 2 ? pfd : -1);
	if (cfd < 0)
		return -1;
	for (off_t off = 0; how != 2 && off < (off_t)RAM;) {
		off_t d = lseek(pfd, off, SEEK_DATA), h;
		if (d < 0)
			break;
		h = lseek(pfd, d, SEEK_HOLE);
		if (how == 0)
			memcpy(c + d, p + d, (size_t)(h - d));
		else if (pwrite(cfd, p + d, (size_t)(h - d), d) != h - d)
			return -1;
		off = h;
	}
	double t = now_ms() - t0;
	int ok = c[held - 1] == 1;
	munmap(c, RAM);
	if (how != 2)
		close(cfd);
	return ok ? t : -1;
}

int main(int argc, char **argv)
{
	const char *names[] = {"memcpy", "pwrite", "lend"};
	int n = argc > 1 ? argc - 1 : 2;
	printf("%-28s %10s %10s\n", "child's RAM (of 256 MiB)", "median ms", "vs memcpy");
	for (int k = 0; k < n; k++) {
		size_t held = (size_t)(argc > 1 ? atol(argv[k + 1]) : k ? 64 : 8) << 20;
		char *p;
		int pfd = ram(&p, 1, -1);
		if (pfd < 0 || !held || held > RAM) {
			fprintf(stderr, "ramcopy_bench: cannot make %zu MiB of RAM\n", held >> 20);
			return 1;
		}
		memset(p, 1, held);
		double med[3];
		for (int how = 0; how < 3; how++) {
			double t[RUNS];
			for (int i = 0; i < RUNS; i++)
				if ((t[i] = one(pfd, p, held, how)) < 0) {
					fprintf(stderr, "ramcopy_bench: %s failed\n", names[how]);
					return 1;
				}
			qsort(t, RUNS, sizeof(t[0]), cmp);
			med[how] = t[RUNS / 2];
			char what[64];
			snprintf(what, sizeof(what), "%zu MiB held, %s", held >> 20, names[how]);
			printf("%-28s %10.3f %9.3fx\n", what, med[how], med[how] / med[0]);
		}
		munmap(p, RAM);
		close(pfd);
	}
	return 0;
}
