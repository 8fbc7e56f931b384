/* Signal handlers a program installs itself: SIGSEGV recovered with siglongjmp (also on an
 * alternate stack after a stack overflow), SIGTRAP returning, SIGABRT, SA_RESETHAND, then a
 * fatal fault. Output is the same natively and in the sandbox. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Bad addresses the compiler cannot see through. */
static int *volatile low16 = (int *)16, *volatile low7 = (int *)7, *volatile low24 = (int *)24;
static volatile int forever = 1;
static sigjmp_buf jb;
static volatile int hits;
static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	hits++;
	printf("handler: sig %d code %d%s\n", sig, si->si_code,
	       (unsigned long)si->si_addr < 4096 ? " (low address)" : "");
	siglongjmp(jb, 1);
}
static void on_trap(int sig)
{
	hits++;
	printf("trap handler %d, returning\n", sig);
}
static void on_abrt(int sig)
{
	printf("abort handler %d\n", sig);
	siglongjmp(jb, 2);
}
static int depth(int n)
{
	volatile char b[512];
	b[0] = (char)n;
	return forever ? depth(n + 1) + b[0] : b[0];
}
int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSEGV, &sa, NULL);
	if (!sigsetjmp(jb, 1)) {
		*low16 = 1;
		puts("not reached");
	}
	printf("recovered 1, hits %d\n", hits);
	if (!sigsetjmp(jb, 1)) {
		*low7 = 1;
	}
	printf("recovered 2 (mask restored), hits %d\n", hits);
	signal(SIGTRAP, on_trap);
	__asm__ volatile("int3");
	printf("after int3, hits %d\n", hits);
	signal(SIGABRT, on_abrt);
	if (sigsetjmp(jb, 1) == 0)
		abort();
	printf("recovered from abort\n");
	/* stack overflow on an alternate stack */
	stack_t ss = {.ss_sp = malloc(65536), .ss_size = 65536};
	sigaltstack(&ss, NULL);
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigaction(SIGSEGV, &sa, NULL);
	if (!sigsetjmp(jb, 1))
		depth(0);
	printf("recovered from stack overflow on the altstack, hits %d\n", hits);
	sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
	sigaction(SIGSEGV, &sa, NULL);
	if (!sigsetjmp(jb, 1))
		*low16 = 1;
	printf("one-shot handler ran; the next fault is fatal\n");
	*low24 = 1;
	return 0;
}
