/* memory: the memory system calls behind malloc. malloc/free of many sizes (1 B .. 8 MiB) with a
 * pattern written and checked, calloc returning zeroed memory (also when it reuses a freed dirty
 * block), realloc growth keeping the contents, mmap of 64 MiB anonymous memory (every page
 * touched, then munmap), mremap growing a mapping, and brk moved up and back down. Prints one
 * line per part, a checksum of the patterns and "ok"; exits 1 on the first mismatch. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "errname.h"

static uint64_t sum = 0xcbf29ce484222325ull;

static unsigned char pat(size_t i, unsigned seed)
{
	return (unsigned char)((i * 2654435761u + seed) >> 7);
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pat(i, seed);
}

static int verify(const unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != pat(i, seed))
			return 0;
	/* fold a few bytes into the checksum */
	for (size_t i = 0; i < n; i += 4093)
		sum = (sum ^ p[i]) * 0x100000001b3ull;
	sum = (sum ^ p[n - 1]) * 0x100000001b3ull;
	return 1;
}

static int fail(const char *what)
{
	printf("%s: FAILED\n", what);
	return 1;
}

int main(void)
{
	/* malloc and free, sizes 1 B .. 8 MiB: powers of two and neighbours */
	static const long adjust[] = {-1, 0, 3, 100};
	int blocks = 0;
	for (size_t s = 1; s <= 8u << 20; s *= 2) {
		for (size_t k = 0; k < sizeof(adjust) / sizeof(adjust[0]); k++) {
			size_t n = (size_t)((long)s + adjust[k]);
			if (n == 0)
				continue;
			unsigned char *p = malloc(n);
			if (!p)
				return fail("malloc");
			fill(p, n, (unsigned)(s + k));
			if (!verify(p, n, (unsigned)(s + k)))
				return fail("malloc pattern");
			free(p);
			blocks++;
		}
	}
	/* many live blocks at once, freed in a different order */
	enum { LIVE = 2000 };
	static unsigned char *live[LIVE];
	for (int i = 0; i < LIVE; i++) {
		size_t n = 1 + (size_t)(i * 37 % 5000);
		live[i] = malloc(n);
		if (!live[i])
			return fail("malloc live");
		fill(live[i], n, (unsigned)i);
	}
	for (int i = 0; i < LIVE; i += 2)
		free(live[i]);
	for (int i = 1; i < LIVE; i += 2) {
		if (!verify(live[i], 1 + (size_t)(i * 37 % 5000), (unsigned)i))
			return fail("malloc live pattern");
		free(live[i]);
	}
	printf("malloc/free %d sizes + %d live blocks: ok\n", blocks, LIVE);

	/* calloc: zeroed, also right after freeing a dirty block of the same size */
	static const size_t csizes[] = {16, 1000, 100000, 4u << 20};
	for (size_t k = 0; k < sizeof(csizes) / sizeof(csizes[0]); k++) {
		size_t n = csizes[k];
		unsigned char *d = malloc(n);
		if (!d)
			return fail("malloc");
		memset(d, 0xa5, n);
		free(d);
		unsigned char *c = calloc(n, 1);
		if (!c)
			return fail("calloc");
		for (size_t i = 0; i < n; i++)
			if (c[i] != 0)
				return fail("calloc zeroed");
		free(c);
	}
	printf("calloc zeroed: ok\n");

	/* realloc growth from 16 B to 16 MiB, contents kept */
	size_t n = 16;
	unsigned char *p = malloc(n);
	if (!p)
		return fail("malloc");
	fill(p, n, 7);
	while (n < 16u << 20) {
		size_t nn = n * 4;
		unsigned char *q = realloc(p, nn);
		if (!q)
			return fail("realloc");
		if (!verify(q, n, 7))
			return fail("realloc kept contents");
		fill(q, nn, 7);
		p = q;
		n = nn;
	}
	p = realloc(p, 100);
	if (!p || !verify(p, 100, 7))
		return fail("realloc shrink");
	free(p);
	printf("realloc 16 B -> 16 MiB -> 100 B: ok\n");

	/* mmap 64 MiB anonymous, touch every page, check, munmap */
	size_t big = 64u << 20;
	unsigned char *m =
	    mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		printf("mmap 64 MiB: %s\n", errname(errno));
		return 1;
	}
	int zero = 1;
	for (size_t i = 0; i < big; i += 4096) {
		if (m[i] != 0 || m[i + 4095] != 0)
			zero = 0;
		m[i] = pat(i, 3);
		m[i + 4095] = pat(i + 4095, 3);
	}
	for (size_t i = 0; i < big; i += 4096)
		if (m[i] != pat(i, 3) || m[i + 4095] != pat(i + 4095, 3))
			return fail("mmap pattern");
	sum = (sum ^ m[big - 1]) * 0x100000001b3ull;
	if (!zero)
		return fail("mmap zeroed");
	if (munmap(m, big) != 0) {
		printf("munmap: %s\n", errname(errno));
		return 1;
	}
	printf("mmap 64 MiB, touch, munmap: ok\n");

	/* mremap: grow a 1 MiB mapping to 8 MiB, contents kept, new part zeroed */
	size_t small = 1u << 20, grown = 8u << 20;
	m = mmap(NULL, small, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return fail("mmap 1 MiB");
	fill(m, small, 11);
	unsigned char *g = mremap(m, small, grown, MREMAP_MAYMOVE);
	if (g == MAP_FAILED) {
		printf("mremap: %s\n", errname(errno));
		return 1;
	}
	if (!verify(g, small, 11))
		return fail("mremap kept contents");
	for (size_t i = small; i < grown; i += 4096)
		if (g[i] != 0)
			return fail("mremap new part zeroed");
	fill(g, grown, 12);
	if (!verify(g, grown, 12) || munmap(g, grown) != 0)
		return fail("mremap grown part");
	printf("mremap 1 MiB -> 8 MiB: ok\n");

	/* brk: sbrk(0) for the current break, then the raw system call to move it (musl's sbrk
	 * refuses non-zero increments), then back down */
	char *cur = sbrk(0);
	char *want = cur + (1 << 20);
	char *got = (char *)syscall(SYS_brk, want);
	if (got != want)
		return fail("brk up 1 MiB");
	fill((unsigned char *)cur, 1u << 20, 13);
	if (!verify((unsigned char *)cur, 1u << 20, 13))
		return fail("brk pattern");
	got = (char *)syscall(SYS_brk, cur);
	if (got != cur)
		return fail("brk back down");
	printf("brk up 1 MiB and back: ok\n");

	printf("checksum %016llx\n", (unsigned long long)sum);
	printf("ok\n");
	return 0;
}
