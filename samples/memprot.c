/* memprot [FILE | guard]: page protections that must hold as on Linux. A guard page (PROT_NONE)
 * faults, a read-only page faults on write, a W^X JIT (mmap RW, write code, mprotect RX, call)
 * runs, memory faults after munmap, mprotect goes back and forth, MAP_FIXED PROT_NONE over a
 * mapping, mremap keeps contents and protection, MADV_DONTNEED zeroes even a read-only page,
 * and the heap faults above a lowered break. With FILE (this program's own binary), a file
 * mapped PROT_EXEC runs the code in it and one mapped without PROT_EXEC does not. Each check
 * prints one line, the same natively and in the sandbox; the exit status is the number of
 * checks that failed. "memprot guard" reads a PROT_NONE page with no handler: killed by SIGSEGV,
 * with a crash report in the sandbox. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static sigjmp_buf jb;
static volatile int got_sig, got_code;
static volatile uintptr_t got_addr;
static int failures;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	got_sig = sig;
	got_code = si->si_code;
	got_addr = (uintptr_t)si->si_addr;
	siglongjmp(jb, 1);
}

enum access { READ, WRITE, CALL };

/* "ok" or the signal and si_code; the address is checked, not printed (it differs). */
static const char *try_access(volatile char *p, enum access how, int *value)
{
	static char buf[64];
	got_sig = 0;
	if (!sigsetjmp(jb, 1)) {
		if (how == READ)
			*value = *p;
		else if (how == WRITE)
			*p = 1;
		else
			*value = ((int (*)(void))(uintptr_t)p)();
		return "ok";
	}
	const char *code = got_code == SEGV_MAPERR   ? "SEGV_MAPERR"
			   : got_code == SEGV_ACCERR ? "SEGV_ACCERR"
						     : "other";
	snprintf(buf, sizeof(buf), "%s %s%s", got_sig == SIGSEGV ? "SIGSEGV" : "other signal", code,
		 got_addr == (uintptr_t)p ? "" : " (wrong address)");
	return buf;
}

static void expect(const char *what, volatile char *p, enum access how, const char *want)
{
	int v = 0;
	const char *got = try_access(p, how, &v);
	int ok = strcmp(got, want) == 0;
	failures += !ok;
	printf("%-44s %s%s\n", what, got, ok ? "" : "  <-- unexpected");
}

static void expect_value(const char *what, long got, long want)
{
	failures += got != want;
	printf("%-44s %ld%s\n", what, got, got == want ? "" : "  <-- unexpected");
}

/* mov $0x5eed1234, %eax; ret: position-independent, and found again in the file by its bytes. */
static const unsigned char jit_code[] = {0xb8, 0x34, 0x12, 0xed, 0x5e, 0xc3};
__asm__(".text\n.globl memprot_marker\nmemprot_marker:\n.byte 0xb8, 0x34, 0x12, 0xed, 0x5e, "
	"0xc3\n");

static void file_exec(const char *path, long pg)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		printf("open %s failed\n", path);
		failures++;
		return;
	}
	size_t len = (size_t)st.st_size;
	char *x = mmap(NULL, len, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
	char *r = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (x == MAP_FAILED || r == MAP_FAILED) {
		printf("mmap of the file failed\n");
		failures++;
		return;
	}
	char *at = memmem(x, len, jit_code, sizeof(jit_code));
	if (!at) {
		printf("code not found in the file\n");
		failures++;
		return;
	}
	int v = 0;
	const char *got = try_access(at, CALL, &v);
	printf("%-44s %s\n", "call code in a PROT_EXEC file mapping", got);
	failures += strcmp(got, "ok") != 0;
	expect_value("  it returned", v, 0x5eed1234);
	expect("call code in a PROT_READ file mapping", r + (at - x), CALL, "SIGSEGV SEGV_ACCERR");
	munmap(x, len);
	munmap(r, len);
	(void)pg;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	long pg = sysconf(_SC_PAGESIZE);
	if (argc > 1 && strcmp(argv[1], "guard") == 0) {
		char *p =
		    mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		mprotect(p + pg, pg, PROT_NONE);
		printf("reading the guard page\n");
		return *(volatile char *)(p + pg);
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);

	/* A guard page between two writable pages. */
	char *g = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	g[0] = g[2 * pg] = 7;
	expect_value("mprotect guard page PROT_NONE", mprotect(g + pg, pg, PROT_NONE), 0);
	expect("read guard page", g + pg, READ, "SIGSEGV SEGV_ACCERR");
	expect("write guard page", g + pg + 100, WRITE, "SIGSEGV SEGV_ACCERR");
	expect("write page below the guard", g + pg - 1, WRITE, "ok");
	expect("write page above the guard", g + 2 * pg, WRITE, "ok");

	/* Back and forth. */
	expect_value("mprotect guard page PROT_READ", mprotect(g + pg, pg, PROT_READ), 0);
	expect("read it", g + pg, READ, "ok");
	expect("write it", g + pg, WRITE, "SIGSEGV SEGV_ACCERR");
	expect_value("mprotect all PROT_READ|PROT_WRITE",
		     mprotect(g, 3 * pg, PROT_READ | PROT_WRITE), 0);
	expect("write it", g + pg, WRITE, "ok");
	expect_value("mprotect all PROT_NONE", mprotect(g, 3 * pg, PROT_NONE), 0);
	expect("read first page", g, READ, "SIGSEGV SEGV_ACCERR");
	expect("read last page", g + 3 * pg - 1, READ, "SIGSEGV SEGV_ACCERR");
	expect_value("mprotect all PROT_READ", mprotect(g, 3 * pg, PROT_READ), 0);
	expect_value("  contents kept", g[0] + g[pg] + g[2 * pg], 7 + 1 + 1);

	/* A read-only mapping from the start. */
	char *ro = mmap(NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	expect("read a PROT_READ mapping", ro, READ, "ok");
	expect("write a PROT_READ mapping", ro, WRITE, "SIGSEGV SEGV_ACCERR");
	expect("call into it", ro, CALL, "SIGSEGV SEGV_ACCERR");

	/* A W^X JIT. */
	char *jit = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memcpy(jit, jit_code, sizeof(jit_code));
	expect("call JIT code while it is RW", jit, CALL, "SIGSEGV SEGV_ACCERR");
	expect_value("mprotect JIT page PROT_READ|PROT_EXEC",
		     mprotect(jit, pg, PROT_READ | PROT_EXEC), 0);
	int v = 0;
	const char *got = try_access(jit, CALL, &v);
	printf("%-44s %s\n", "call JIT code", got);
	failures += strcmp(got, "ok") != 0;
	expect_value("  it returned", v, 0x5eed1234);
	expect("write JIT page while RX", jit, WRITE, "SIGSEGV SEGV_ACCERR");
	/* An RWX mapping works too (old JITs). */
	char *rwx =
	    mmap(NULL, pg, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memcpy(rwx, jit_code, sizeof(jit_code));
	expect("call code in an RWX mapping", rwx, CALL, "ok");

	/* munmap, then touch. */
	char *m = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(m, 1, 4 * pg);
	expect_value("munmap two middle pages", munmap(m + pg, 2 * pg), 0);
	expect("read unmapped page", m + pg, READ, "SIGSEGV SEGV_MAPERR");
	expect("write unmapped page", m + 3 * pg - 1, WRITE, "SIGSEGV SEGV_MAPERR");
	expect("write the page kept below", m, WRITE, "ok");
	expect("write the page kept above", m + 3 * pg, WRITE, "ok");
	char *again = mmap(m + pg, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	expect_value("mapped again PROT_READ, reads zero", again == m + pg ? m[pg] : -1, 0);
	expect("write it", m + pg, WRITE, "SIGSEGV SEGV_ACCERR");

	/* MAP_FIXED PROT_NONE over a writable mapping (how reservations are made and kept). */
	char *f = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	f[pg] = 3;
	mmap(f + pg, pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	expect("read MAP_FIXED PROT_NONE page", f + pg, READ, "SIGSEGV SEGV_ACCERR");
	mprotect(f + pg, pg, PROT_READ);
	expect_value("made readable, it reads zero", f[pg], 0);

	/* mremap keeps contents and protection. */
	char *a = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	a[10] = 42;
	mprotect(a, pg, PROT_READ);
	char *b = mremap(a, pg, 64 * pg, MREMAP_MAYMOVE);
	expect_value("mremap grew a read-only mapping", b != MAP_FAILED, 1);
	expect_value("  contents kept", b[10], 42);
	expect("  write it", b + 10, WRITE, "SIGSEGV SEGV_ACCERR");
	expect("  write its new part", b + 63 * pg, WRITE, "SIGSEGV SEGV_ACCERR");
	if (b != a)
		expect("  read the old place", a, READ, "SIGSEGV SEGV_MAPERR");

	/* MADV_DONTNEED on a read-only private anonymous page zeroes it. */
	char *d = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	d[5] = 9;
	mprotect(d, pg, PROT_READ);
	expect_value("madvise(MADV_DONTNEED) a read-only page", madvise(d, pg, MADV_DONTNEED), 0);
	expect_value("  it reads zero", d[5], 0);
	expect("  still read-only", d, WRITE, "SIGSEGV SEGV_ACCERR");

	/* The heap above a lowered break. */
	char *cur = sbrk(0);
	char *top = (char *)(((uintptr_t)cur + pg - 1) & ~(uintptr_t)(pg - 1));
	if (brk(top + 4 * pg) == 0) {
		top[3 * pg] = 1;
		brk(top + pg);
		expect("write above a lowered break", top + 3 * pg, WRITE, "SIGSEGV SEGV_MAPERR");
		expect("write below it", top, WRITE, "ok");
	}

	if (argc > 1)
		file_exec(argv[1], pg);
	printf("%d unexpected\n", failures);
	return failures;
}
