/* ptflush probe | ptflush mprotect PAGES ROUNDS: what it costs to change a live mapping.
 *
 * "probe" is white-box and only means something in the sandbox at CPL3 under PVM, where the
 * program may write its own page tables and IDT (identity-mapped, [0x20000, 0x100000) and
 * 0x12000): it times (a) a PTE write with no flush, (b) a CPL0 gate reached through the
 * breakpoint vector doing nothing, one invlpg, eight, or a CR3 load, and checks after each
 * that taking write, present or execute away really faults, and that giving them back needs no
 * flush. The gate is the program's own for the probe; the kernel's is put back at the end.
 *
 * "mprotect PAGES ROUNDS" is portable: the mean cost of mprotect(PROT_READ) then
 * mprotect(PROT_READ|PROT_WRITE) of PAGES touched pages, each followed by a write (which must
 * not fault), natively or in the sandbox. Prints "mprotect PAGES ns_per_call". */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static sigjmp_buf jb;
static volatile int faulted;

static void on_fault(int s, siginfo_t *si, void *u)
{
	(void)si;
	(void)u;
	faulted = s;
	siglongjmp(jb, 1);
}

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

#define NP 1024
static __attribute__((aligned(2 << 20))) volatile char buf[NP * 4096];

static uint64_t *pte_of(uint64_t va)
{
	uint64_t *t = (uint64_t *)0x20000;
	for (int lvl = 3; lvl > 0; lvl--) {
		uint64_t e = t[(va >> (12 + 9 * lvl)) & 511];
		if (!(e & 1) || (e & 0x80))
			return NULL;
		t = (uint64_t *)(e & 0x000ffffffffff000ull);
	}
	return &t[(va >> 12) & 511];
}

static int try_write(volatile char *p)
{
	faulted = 0;
	if (!sigsetjmp(jb, 1))
		*p = 1;
	return faulted != 0;
}

static int try_read(volatile char *p)
{
	faulted = 0;
	if (!sigsetjmp(jb, 1))
		(void)*p;
	return faulted != 0;
}

static int try_exec(volatile char *p)
{
	faulted = 0;
	if (!sigsetjmp(jb, 1))
		((void (*)(void))(uintptr_t)p)();
	return faulted != 0;
}

extern char g_nop[], g_invlpg[], g_inv8[], g_cr3[];
__asm__(".text\n"
	"g_nop: iretq\n"
	"g_invlpg: invlpg (%rdi)\n iretq\n"
	"g_inv8: invlpg (%rdi)\n invlpg 4096(%rdi)\n invlpg 8192(%rdi)\n invlpg 12288(%rdi)\n"
	" invlpg 16384(%rdi)\n invlpg 20480(%rdi)\n invlpg 24576(%rdi)\n invlpg 28672(%rdi)\n"
	" iretq\n"
	"g_cr3: mov %cr3, %rax\n mov %rax, %cr3\n iretq\n");

static void set_gate(void *fn)
{
	uint64_t *idt = (uint64_t *)0x12000, off = (uint64_t)fn;
	idt[6] = (off & 0xffff) | (0x08ull << 16) | (1ull << 32) | ((0x8eull | (3ull << 5)) << 40) |
		 ((off >> 16) & 0xffff) << 48;
	idt[7] = off >> 32;
}

static void gate(volatile char *a)
{
	__asm__ volatile("int3" ::"D"(a) : "rax", "memory");
}

static int probe(void)
{
	uint64_t *pt = pte_of((uint64_t)buf);
	if (!pt) {
		fprintf(stderr,
			"ptflush: no 4 KiB page table for %p (not in the sandbox at CPL3?)\n",
			(void *)buf);
		return 1;
	}
	for (int i = 0; i < NP; i++)
		buf[i * 4096] = 1;
	double t0 = now_ns();
	pt[1] &= ~2ull;
	double t1 = now_ns();
	for (int i = 2; i < 258; i++)
		pt[i] &= ~2ull;
	double t2 = now_ns();
	printf("(a) PTE write, first in its page-table page   %8.0f ns\n", t1 - t0);
	printf("(a) PTE write, next ones                       %8.0f ns\n", (t2 - t1) / 256);
	printf("(a) write access after taking W, no flush      %s\n",
	       try_write(buf + 4096) ? "faults" : "does NOT fault");
	for (int i = 1; i < 258; i++)
		pt[i] |= 2;
	uint64_t *idt = (uint64_t *)0x12000, saved[2] = {idt[6], idt[7]};
	struct {
		const char *name;
		void *fn;
	} g[] = {
	    {"nothing", g_nop}, {"invlpg", g_invlpg}, {"8 x invlpg", g_inv8}, {"CR3 load", g_cr3}};
	for (unsigned k = 0; k < sizeof(g) / sizeof(g[0]); k++) {
		set_gate(g[k].fn);
		gate(buf);
		t0 = now_ns();
		for (int i = 0; i < 100; i++)
			gate(buf + 4096 * (8 * i));
		t1 = now_ns();
		printf("(b) CPL0 gate (int3) doing %-19s %8.0f ns\n", g[k].name, (t1 - t0) / 100);
		if (g[k].fn == g_nop)
			continue;
		volatile char *p = buf + 4096 * (900 + 3 * k);
		pt[900 + 3 * k] &= ~2ull;
		gate(p);
		int w = try_write(p);
		pt[900 + 3 * k] |= 2ull;
		int w2 = try_write(p);
		pt[901 + 3 * k] &= ~1ull;
		gate(p + 4096);
		int r = try_read(p + 4096);
		pt[901 + 3 * k] |= 1ull;
		int r2 = try_read(p + 4096);
		p[8192] = (char)0xc3;
		int x0 = try_exec(p + 8192);
		pt[902 + 3 * k] &= ~(1ull << 63);
		int x1 = try_exec(p + 8192);
		pt[902 + 3 * k] |= 1ull << 63;
		gate(p + 8192);
		int x2 = try_exec(p + 8192);
		printf("    after it: W taken %s, given back %s; P taken %s, given back %s; "
		       "NX %s, cleared %s, set again %s\n",
		       w ? "faults" : "NO FAULT", w2 ? "FAULTS" : "ok", r ? "faults" : "NO FAULT",
		       r2 ? "FAULTS" : "ok", x0 ? "faults" : "NO FAULT", x1 ? "FAULTS" : "ok",
		       x2 ? "faults" : "NO FAULT");
	}
	idt[6] = saved[0];
	idt[7] = saved[1];
	return 0;
}

static int bench_mprotect(long pages, long rounds)
{
	size_t len = (size_t)pages * 4096;
	volatile char *p =
	    mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("ptflush: mmap");
		return 1;
	}
	for (size_t i = 0; i < len; i += 4096)
		p[i] = 1;
	double t0 = now_ns();
	for (long r = 0; r < rounds; r++) {
		if (mprotect((void *)p, len, PROT_READ) ||
		    mprotect((void *)p, len, PROT_READ | PROT_WRITE)) {
			perror("ptflush: mprotect");
			return 1;
		}
		p[0] = 1;
	}
	double t1 = now_ns();
	printf("mprotect %ld %.0f\n", pages, (t1 - t0) / (double)rounds / 2);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	if (argc == 2 && !strcmp(argv[1], "probe"))
		return probe();
	if (argc == 4 && !strcmp(argv[1], "mprotect"))
		return bench_mprotect(atol(argv[2]), atol(argv[3]));
	fprintf(stderr, "usage: ptflush probe | ptflush mprotect PAGES ROUNDS\n");
	return 2;
}
