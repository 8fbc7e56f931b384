/* A program run many times from one snapshot whose runs change their page tables (tests of the
 * exec engine's resets): each maps pages, makes a page of its own read-only and leaves both
 * so. The next run must find the snapshot's address space, whatever translation a shadow of
 * the last run's tables could still hold:
 *   probe=0   the page the last run mapped at PROBE faults again (SIGSEGV),
 *   same=1    once mapped anew, what this run writes there is what the kernel reads back
 *             (a write(2) of it), not another page's bytes,
 *   ro=ok     the page the last run made read-only is writable again.
 * stdin: how many pages to map before PROBE (moves the page PROBE gets). */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PROBE ((char *)0x300000000ul)

static char page[4096] __attribute__((aligned(4096))) = {1};
static sigjmp_buf jb;

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(jb, 1);
}

static int mapped(volatile const char *p)
{
	if (sigsetjmp(jb, 1))
		return 0;
	(void)*p;
	return 1;
}

int main(void)
{
	char in[32] = "";
	ssize_t n = read(0, in, sizeof(in) - 1);
	int before = n > 0 ? atoi(in) : 0;
	signal(SIGSEGV, on_segv);
	int probe = mapped(PROBE);
	page[100] = (char)before; /* faults for good if the last run's read-only page stayed so */
	for (int i = 0; i < before; i++) {
		char *p =
		    mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return 2;
		memset(p, 0x5a, 4096);
	}
	char *x = mmap(PROBE, 4096, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (x != PROBE)
		return 3;
	int zero = x[0] == 0 && x[4095] == 0;
	snprintf(x, 64, "run with %d pages before", before);
	int fd[2];
	char back[64] = "";
	if (pipe(fd) || write(fd[1], x, sizeof(back)) != (ssize_t)sizeof(back) ||
	    read(fd[0], back, sizeof(back)) != (ssize_t)sizeof(back))
		return 4;
	int same = memcmp(back, x, sizeof(back)) == 0;
	if (mprotect(page, sizeof(page), PROT_READ))
		return 5;
	printf("probe=%d zero=%d same=%d ro=ok\n", probe, zero, same);
	return 0;
}
