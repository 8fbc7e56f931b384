/* vaspace [FILE [OUT]] | vaspace touch MiB: an address space larger than RAM, as on Linux.
 * Reservations of 8 GiB and 512 MiB (PROT_NONE) succeed under the sandbox's 256 MiB and cost
 * nothing until a protection is given (64 MiB of the second is then used); MAP_FIXED works far
 * above RAM; mapping and unmapping more than RAM in total leaks nothing; mremap keeps the bytes; a
 * page made PROT_NONE and back keeps its bytes; MADV_DONTNEED zeroes; FILE (this program's binary)
 * read with read, pread and readv into memory whose pages are scattered in RAM, and written from
 * there to OUT (created, read back and removed), arrives intact; a guard page and unmapped memory
 * still fault. MAP_NORESERVE takes pages on first touch: 16 TiB of it is mapped, written sparsely,
 * read into, discarded and made read-only. Each check prints one line, the same natively and in the
 * sandbox; the exit status is the number that failed. `touch MiB` writes every page of that much
 * MAP_NORESERVE memory (the sandbox ends it when RAM runs out, as Linux's OOM killer would). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#define PAGE 4096ul
#define MiB (1ul << 20)
#define GiB (1ul << 30)

static sigjmp_buf jb;
static volatile int got_sig, got_code;
static int failures;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	got_sig = sig;
	got_code = si->si_code;
	siglongjmp(jb, 1);
}

static void check(const char *what, int ok)
{
	printf("%-50s %s\n", what, ok ? "ok" : "FAILED");
	failures += !ok;
}

/* "ok", or the signal and its code, for a write to p. */
static const char *try_write(volatile char *p)
{
	got_sig = 0;
	if (!sigsetjmp(jb, 1)) {
		*p = 1;
		return "ok";
	}
	if (got_sig != SIGSEGV)
		return "other signal";
	return got_code == SEGV_MAPERR	 ? "SIGSEGV SEGV_MAPERR"
	       : got_code == SEGV_ACCERR ? "SIGSEGV SEGV_ACCERR"
					 : "SIGSEGV other";
}

static void expect_write(const char *what, volatile char *p)
{
	printf("%-50s %s\n", what, try_write(p));
}

static char *map(void *at, size_t len, int prot, int flags)
{
	char *p = mmap(at, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void reservations(void)
{
	char *big = map(NULL, 8 * GiB, PROT_NONE, 0);
	check("8 GiB PROT_NONE reservation", big != NULL);
	if (big) {
		expect_write("  a write inside it", big + 5 * GiB);
		check("  munmap", munmap(big, 8 * GiB) == 0);
	}
	char *r = map(NULL, 512 * MiB, PROT_NONE, 0);
	check("512 MiB PROT_NONE reservation", r != NULL);
	if (!r)
		return;
	char *use = r + 128 * MiB;
	int ok = mprotect(use, 64 * MiB, PROT_READ | PROT_WRITE) == 0;
	check("  mprotect 64 MiB of it read-write", ok);
	if (!ok) {
		munmap(r, 512 * MiB);
		return;
	}
	int zero = 1;
	for (size_t i = 0; i < 64 * MiB; i += PAGE)
		zero &= use[i] == 0;
	check("  it reads zero", zero);
	for (size_t i = 0; i < 64 * MiB; i += PAGE)
		use[i] = (char)(i / PAGE);
	int same = 1;
	for (size_t i = 0; i < 64 * MiB; i += PAGE)
		same &= use[i] == (char)(i / PAGE);
	check("  every page keeps what was written", same);
	expect_write("  a write just past it", use + 64 * MiB);
	expect_write("  a write just before it", use - 1);
	check("  PROT_NONE and back", mprotect(use, PAGE, PROT_NONE) == 0 &&
					  mprotect(use, PAGE, PROT_READ | PROT_WRITE) == 0);
	check("  keeps the bytes", use[0] == 0 && use[PAGE] == 1);
	check("  munmap", munmap(r, 512 * MiB) == 0);
}

static void fixed_high(void)
{
	static const uintptr_t at[] = {0x100000000000ul, 0x7e0000000000ul};
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		char *p = map((void *)at[i], 2 * MiB, PROT_READ | PROT_WRITE, MAP_FIXED_NOREPLACE);
		char what[64];
		snprintf(what, sizeof(what), "MAP_FIXED at 0x%lx", (unsigned long)at[i]);
		check(what, p == (char *)at[i]);
		if (p != (char *)at[i])
			continue;
		p[0] = 'a';
		p[2 * MiB - 1] = 'z';
		check("  holds what was written", p[0] == 'a' && p[2 * MiB - 1] == 'z');
		char *q = map(p + MiB, PAGE, PROT_READ | PROT_WRITE, MAP_FIXED);
		check("  MAP_FIXED over part of it reads zero", q == p + MiB && q[0] == 0);
		check("  munmap", munmap(p, 2 * MiB) == 0);
		expect_write("  a write after munmap", p);
	}
}

/* 2 GiB mapped and unmapped, 1 MiB at a time: more than RAM in the sandbox. */
static void cycles(void)
{
	int ok = 1;
	for (int i = 0; i < 2048 && ok; i++) {
		char *p = map(NULL, MiB, PROT_READ | PROT_WRITE, 0);
		if (!p) {
			ok = 0;
			break;
		}
		ok &= p[0] == 0 && p[MiB - 1] == 0 && p[MiB / 2] == 0;
		p[0] = p[MiB - 1] = p[MiB / 2] = (char)i;
		ok &= munmap(p, MiB) == 0;
	}
	check("2 GiB mapped and unmapped, 1 MiB at a time", ok);
	ok = 1;
	char *p = map(NULL, 32 * MiB, PROT_NONE, 0);
	for (int i = 0; i < 16 && p && ok; i++) {
		ok &= mprotect(p, 32 * MiB, PROT_READ | PROT_WRITE) == 0;
		ok &= ok && p[i * PAGE] == 0;
		for (size_t j = 0; ok && j < 32 * MiB; j += PAGE)
			p[j] = 1;
		ok &= madvise(p, 32 * MiB, MADV_DONTNEED) == 0;
		ok &= ok && p[0] == 0;
		ok &= mprotect(p, 32 * MiB, PROT_NONE) == 0;
	}
	check("512 MiB made read-write, written and discarded", p && ok);
	if (p)
		munmap(p, 32 * MiB);
}

static void remap(void)
{
	char *p = map(NULL, 4 * MiB, PROT_READ | PROT_WRITE, 0);
	if (!p) {
		check("mremap", 0);
		return;
	}
	for (size_t i = 0; i < 4 * MiB; i += PAGE)
		p[i] = (char)(i / PAGE + 1);
	map(p + 4 * MiB, PAGE, PROT_READ, MAP_FIXED); /* it cannot grow in place */
	char *q = mremap(p, 4 * MiB, 64 * MiB, MREMAP_MAYMOVE);
	int ok = q != MAP_FAILED && q != p;
	for (size_t i = 0; ok && i < 4 * MiB; i += PAGE)
		ok &= q[i] == (char)(i / PAGE + 1);
	check("mremap moves 4 MiB to 64 MiB with its bytes", ok);
	check("  the growth reads zero", ok && q[4 * MiB] == 0 && q[64 * MiB - 1] == 0);
	expect_write("  a write to the old place", p);
	if (ok) {
		char *r = mremap(q, 64 * MiB, MiB, 0);
		check("  shrinks in place", r == q && r[PAGE] == 2);
		munmap(r, MiB);
	}
	munmap(p + 4 * MiB, PAGE);
}

/* A buffer whose pages are scattered in RAM: the sandbox's I/O must take it piece by piece. */
static void scattered_io(const char *file, const char *out)
{
	enum { N = 64 };
	static char ref[N * PAGE], back[16 * PAGE];
	/* Pages mapped one at a time, every other one unmapped: the next mapping takes the RAM
	 * pages freed, which are not adjacent. */
	char *pages[2 * N];
	for (int i = 0; i < 2 * N; i++)
		pages[i] = map(NULL, PAGE, PROT_READ | PROT_WRITE, 0);
	for (int i = 0; i < 2 * N; i++)
		if (pages[i])
			pages[i][0] = 1;
	for (int i = 1; i < 2 * N; i += 2)
		munmap(pages[i], PAGE);
	char *buf = map(NULL, N * PAGE, PROT_READ | PROT_WRITE, 0);
	int fd = open(file, O_RDONLY);
	if (fd < 0 || !buf) {
		check("reading FILE", 0);
		return;
	}
	ssize_t n = 0;
	for (size_t at = 0; at < 48 * PAGE;) {
		ssize_t r = pread(fd, ref + at, PAGE, (off_t)at);
		if (r <= 0)
			break;
		at += (size_t)r;
		n = (ssize_t)at;
	}
	ssize_t got = read(fd, buf + 100, (size_t)n - 100);
	check("read into scattered pages", got == n - 100 && !memcmp(buf + 100, ref, (size_t)got));
	memset(buf, 0, N * PAGE);
	got = pread(fd, buf + 5, (size_t)n - 7, 7);
	check("pread into scattered pages", got == n - 7 && !memcmp(buf + 5, ref + 7, (size_t)got));
	memset(buf, 0, N * PAGE);
	struct iovec v[2] = {{buf + 3, 10 * PAGE}, {buf + 12 * PAGE + 9, (size_t)n - 10 * PAGE}};
	lseek(fd, 0, SEEK_SET);
	got = readv(fd, v, 2);
	check("readv into scattered pages",
	      got == n && !memcmp(buf + 3, ref, 10 * PAGE) &&
		  !memcmp(buf + 12 * PAGE + 9, ref + 10 * PAGE, (size_t)n - 10 * PAGE));
	close(fd);
	fd = out ? open(out, O_RDWR | O_CREAT | O_TRUNC, 0600) : -1;
	if (fd >= 0) {
		ssize_t w = write(fd, buf + 12 * PAGE + 9, sizeof(back) - 1);
		ssize_t r = pread(fd, back, sizeof(back), 0);
		check("written to OUT from scattered pages",
		      w == (ssize_t)sizeof(back) - 1 && r == w &&
			  !memcmp(back, ref + 10 * PAGE, (size_t)w));
		close(fd);
		unlink(out);
	}
	munmap(buf, N * PAGE);
	for (int i = 0; i < 2 * N; i += 2)
		munmap(pages[i], PAGE);
}

/* Pages on first touch: a reservation far larger than RAM whose touched pages alone count. */
static void noreserve(const char *file)
{
	const size_t big = 16ul << 40, step = big / 64;
	char *p = map(NULL, big, PROT_READ | PROT_WRITE, MAP_NORESERVE);
	check("16 TiB MAP_NORESERVE read-write", p != NULL);
	if (!p)
		return;
	for (size_t at = 0; at < big; at += step)
		p[at + 4095] = (char)(at / step + 1);
	int ok = 1;
	for (size_t at = 0; at < big; at += step)
		ok &= p[at + 4095] == (char)(at / step + 1) && p[at + 4094] == 0;
	check("  64 pages written far apart keep their bytes", ok);
	check("  an untouched page reads zero", p[5 * step + 3 * PAGE + 7] == 0);
	int fd = open(file, O_RDONLY);
	char head[64];
	ssize_t want = fd >= 0 ? pread(fd, head, sizeof(head), 0) : -1;
	char *dst = p + 7 * step + 10 * PAGE - 8; /* across untouched pages */
	ssize_t got = fd >= 0 ? pread(fd, dst, 3 * PAGE, 0) : -1;
	check("  pread into untouched pages", want == (ssize_t)sizeof(head) &&
						  got > 2 * (ssize_t)PAGE &&
						  !memcmp(dst, head, sizeof(head)));
	if (fd >= 0)
		close(fd);
	p[9 * step] = 9;
	check("  MADV_DONTNEED: reads zero again",
	      madvise(p + 9 * step, PAGE, MADV_DONTNEED) == 0 && p[9 * step] == 0);
	check("  mprotect read-only", mprotect(p + 11 * step, 16 * PAGE, PROT_READ) == 0);
	check("  an untouched read-only page reads zero", p[11 * step + 5 * PAGE] == 0);
	expect_write("  a write to an untouched read-only page", p + 11 * step + 6 * PAGE);
	check("  munmap", munmap(p, big) == 0);
}

/* Writes every page of mib MiB of MAP_NORESERVE memory. */
static int touch(size_t mib)
{
	char *p = map(NULL, mib * MiB, PROT_READ | PROT_WRITE, MAP_NORESERVE);
	if (!p)
		return 2;
	printf("mapped %zu MiB\n", mib);
	for (size_t at = 0; at < mib * MiB; at += PAGE)
		p[at] = 1;
	printf("touched %zu MiB\n", mib);
	return 0;
}

/* A file mapped whole, changed, and a part mapped again over it from the same descriptor (as
 * ld.so maps a library's segments): the new mapping shows the file as it is now. */
static void remap_after_write(const char *out)
{
	int fd = open(out, O_RDWR | O_CREAT | O_TRUNC, 0600);
	static char two[2 * PAGE];
	memset(two, 'a', sizeof(two));
	char *p = NULL;
	if (fd >= 0 && write(fd, two, sizeof(two)) == (ssize_t)sizeof(two))
		p = mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	int ok = p && p != MAP_FAILED && pwrite(fd, "b", 1, PAGE) == 1;
	char *q = ok ? mmap(p + PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, PAGE) : NULL;
	check("a segment mapped again after the file changed shows the change",
	      ok && q == p + PAGE && q[0] == 'b' && q[1] == 'a');
	if (p && p != MAP_FAILED)
		munmap(p, 2 * PAGE);
	if (fd >= 0)
		close(fd);
	unlink(out);
}

static void guards(void)
{
	char *p = map(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, 0);
	mprotect(p + PAGE, PAGE, PROT_NONE);
	expect_write("guard page", p + PAGE);
	expect_write("  the page before it", p + PAGE - 1);
	munmap(p, 3 * PAGE);
	expect_write("unmapped memory", p + 2 * PAGE);
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_sigaction = on_fault, .sa_flags = SA_SIGINFO | SA_NODEFER};
	sigaction(SIGSEGV, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 2 && !strcmp(argv[1], "touch"))
		return touch((size_t)atol(argv[2]));
	reservations();
	fixed_high();
	cycles();
	remap();
	if (argc > 1) {
		scattered_io(argv[1], argc > 2 ? argv[2] : NULL);
		noreserve(argv[1]);
		if (argc > 2)
			remap_after_write(argv[2]);
	}
	guards();
	return failures;
}
