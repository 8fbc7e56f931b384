/* cpuid sites the monitor rewrites at load (loader/cpuid_sites.c, "CPUID without a trap" in
 * docs/architecture.md): what they answer against a cpuid that is never rewritten (copied into
 * an anonymous executable page), for every leaf and subleaf, from one thread, from four at
 * once, and from a signal handler that lands while the loop runs; and a jump from elsewhere
 * into the middle of a rewritten site.
 *
 *   cpuid check     every leaf through three site forms; "wrong 0" and which were patched
 *   cpuid jump      a jump into a site's second instruction, then a call of the site
 *   cpuid threads N four threads compare N rounds each
 *   cpuid jumprace  four threads jump into the same site at once
 *   cpuid signals N N rounds with a 2 ms SIGALRM timer whose handler asks too */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <unistd.h>

typedef void cpuid_fn(uint32_t leaf, uint32_t sub, uint32_t out[4]);

/* Three forms (leaf in %edi, subleaf in %esi, out in %rdx), each with its site labelled:
 * - a: mov $7, %eax; cpuid (leaf 7 only): 5 bytes before, the common glibc form;
 * - b: lea 0(%rsi), %ecx; mov %edi, %eax; cpuid: an instruction 3 bytes in, which needs a
 *   record at a chosen address;
 * - c: mov $0, %ecx; or %esi, %ecx; cpuid: 7 bytes before, and `jump_c` jumps into it from
 *   outside, at the `or`. */
__asm__(".text\n"
	".globl form_a, site_a, form_b, site_b, form_c, site_c, mid_c, jump_c\n"
	".type form_a, @function\n"
	"form_a:\n"
	"  push %rbx\n"
	"  mov %rdx, %r8\n"
	"  mov %esi, %ecx\n"
	"site_a:\n"
	"  .byte 0xb8, 7, 0, 0, 0\n" /* mov $7, %eax */
	"  cpuid\n"
	"  jmp store\n"
	".size form_a, . - form_a\n"
	".type form_b, @function\n"
	"form_b:\n"
	"  push %rbx\n"
	"  mov %rdx, %r8\n"
	"site_b:\n"
	"  .byte 0x8d, 0x4e, 0x00\n" /* lea 0(%rsi), %ecx */
	"  .byte 0x89, 0xf8\n"	     /* mov %edi, %eax */
	"  cpuid\n"
	"  jmp store\n"
	".size form_b, . - form_b\n"
	".type form_c, @function\n"
	"form_c:\n"
	"  push %rbx\n"
	"  mov %rdx, %r8\n"
	"  mov %edi, %eax\n"
	"site_c:\n"
	"  .byte 0xb9, 0, 0, 0, 0\n" /* mov $0, %ecx */
	"mid_c:\n"
	"  .byte 0x09, 0xf1\n" /* or %esi, %ecx */
	"  cpuid\n"
	"  jmp store\n"
	".size form_c, . - form_c\n"
	".type store, @function\n"
	"store:\n"
	"  mov %eax, (%r8)\n"
	"  mov %ebx, 4(%r8)\n"
	"  mov %ecx, 8(%r8)\n"
	"  mov %edx, 12(%r8)\n"
	"  pop %rbx\n"
	"  ret\n"
	".size store, . - store\n"
	".type jump_c, @function\n"
	"jump_c:\n"
	"  push %rbx\n"
	"  mov %rdx, %r8\n"
	"  mov %edi, %eax\n"
	"  xor %ecx, %ecx\n"
	"  jmp mid_c\n"
	".size jump_c, . - jump_c\n");

extern cpuid_fn form_a, form_b, form_c, jump_c;
extern const uint8_t site_a[], site_b[], site_c[];

/* The reference: the same instructions as form b, copied to anonymous memory, which nothing
 * rewrites. */
static const uint8_t ref_code[] = {
    0x53,	      /* push %rbx */
    0x49, 0x89, 0xd0, /* mov %rdx, %r8 */
    0x89, 0xf1,	      /* mov %esi, %ecx */
    0x89, 0xf8,	      /* mov %edi, %eax */
    0x0f, 0xa2,	      /* cpuid */
    0x41, 0x89, 0x00, 0x41, 0x89, 0x58, 0x04, 0x41, 0x89,
    0x48, 0x08, 0x41, 0x89, 0x50, 0x0c, 0x5b, 0xc3, /* pop %rbx; ret */
};
static cpuid_fn *ref;

static const char *patched(const uint8_t *site)
{
	return site[0] == 0xff && site[1] == 0x24 && site[2] == 0x25 ? "yes" : "no";
}

/* The leaves and subleaves asked: every basic and extended leaf the CPU has and some past
 * them, the hypervisor's, subleaves 0-7 of each and 0-63 of leaf 0xd. */
#define MAX_ASKS 4096
static uint32_t asks[MAX_ASKS][2];
static unsigned nasks;

static void add(uint32_t leaf, uint32_t sub)
{
	if (nasks < MAX_ASKS)
		asks[nasks][0] = leaf, asks[nasks][1] = sub, nasks++;
}

static void make_asks(void)
{
	uint32_t r[4];
	ref(0, 0, r);
	uint32_t max = r[0] < 0x40 ? r[0] : 0x40;
	ref(0x80000000, 0, r);
	uint32_t emax = r[0] >= 0x80000000 && r[0] < 0x80000040 ? r[0] : 0x80000008;
	for (uint32_t l = 0; l <= max + 2; l++)
		for (uint32_t s = 0; s < (l == 0xd ? 64u : 8u); s++)
			add(l, s);
	for (uint32_t l = 0x80000000; l <= emax + 2; l++)
		for (uint32_t s = 0; s < 8; s++)
			add(l, s);
	for (uint32_t l = 0x40000000; l <= 0x40000010; l++)
		add(l, 0);
	add(0x1000, 0);
	add(0x8fffffff, 3);
	add(0xc0000000, 0);
	add(0xffffffff, 0xffffffff);
}

static unsigned compare(cpuid_fn *f, int all)
{
	unsigned wrong = 0;
	for (unsigned i = 0; i < nasks; i++) {
		uint32_t want[4], got[4];
		if (!all && asks[i][0] != 7)
			continue;
		ref(asks[i][0], asks[i][1], want);
		f(asks[i][0], asks[i][1], got);
		if (memcmp(want, got, sizeof(want))) {
			if (wrong++ < 5)
				printf(
				    "WRONG leaf 0x%x.%u: %08x %08x %08x %08x, want %08x %08x %08x "
				    "%08x\n",
				    asks[i][0], asks[i][1], got[0], got[1], got[2], got[3], want[0],
				    want[1], want[2], want[3]);
		}
	}
	return wrong;
}

static void *thread_main(void *arg)
{
	unsigned rounds = (unsigned)(uintptr_t)arg, wrong = 0;
	for (unsigned r = 0; r < rounds; r++)
		wrong += compare(form_b, 1) + compare(form_c, 1);
	return (void *)(uintptr_t)wrong;
}

/* Four threads released together into jump_c's site: each #UD is reported in turn, and
 * the first report gives the site its bytes back before the others' come. */
static atomic_int ready, go;

static void *race_main(void *arg)
{
	(void)arg;
	atomic_fetch_add(&ready, 1);
	while (!atomic_load(&go))
		;
	uint32_t want[4], got[4];
	jump_c(7, 0, got);
	ref(7, 0, want);
	return (void *)(uintptr_t)(memcmp(want, got, sizeof(want)) != 0);
}

static volatile sig_atomic_t handled, handler_wrong;

static void on_alarm(int sig)
{
	(void)sig;
	uint32_t want[4], got[4];
	ref(0xd, 1, want);
	form_b(0xd, 1, got);
	if (memcmp(want, got, sizeof(want)))
		handler_wrong++;
	handled++;
}

int main(int argc, char **argv)
{
	const char *op = argc > 1 ? argv[1] : "check";
	unsigned n = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 0) : 10;
	void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED)
		return 2;
	memcpy(page, ref_code, sizeof(ref_code));
	if (mprotect(page, 4096, PROT_READ | PROT_EXEC))
		return 2;
	ref = (cpuid_fn *)page;
	make_asks();
	if (!strcmp(op, "check")) {
		printf("form a patched %s\nform b patched %s\nform c patched %s\n", patched(site_a),
		       patched(site_b), patched(site_c));
		unsigned w = compare(form_a, 0) + compare(form_b, 1) + compare(form_c, 1);
		printf("asked %u leaves, wrong %u\n", nasks, w);
		return w != 0;
	}
	if (!strcmp(op, "jump")) {
		printf("before the jump patched %s\n", patched(site_c));
		unsigned w = compare(jump_c, 1);
		printf("after the jump patched %s\n", patched(site_c));
		w += compare(form_c, 1);
		printf("jump wrong %u\n", w);
		return w != 0;
	}
	if (!strcmp(op, "threads")) {
		pthread_t t[4];
		unsigned w = 0;
		for (int i = 0; i < 4; i++)
			if (pthread_create(&t[i], NULL, thread_main, (void *)(uintptr_t)n))
				return 2;
		for (int i = 0; i < 4; i++) {
			void *r;
			pthread_join(t[i], &r);
			w += (unsigned)(uintptr_t)r;
		}
		printf("threads wrong %u\n", w);
		return w != 0;
	}
	if (!strcmp(op, "jumprace")) {
		pthread_t t[4];
		unsigned w = 0;
		for (int i = 0; i < 4; i++)
			if (pthread_create(&t[i], NULL, race_main, NULL))
				return 2;
		/* Asleep meanwhile: the spinning threads keep the cores. */
		while (atomic_load(&ready) < 4)
			usleep(1000);
		atomic_store(&go, 1);
		for (int i = 0; i < 4; i++) {
			void *r;
			pthread_join(t[i], &r);
			w += (unsigned)(uintptr_t)r;
		}
		printf("jumprace wrong %u, patched %s\n", w, patched(site_c));
		return w != 0;
	}
	if (!strcmp(op, "signals")) {
		signal(SIGALRM, on_alarm);
		/* Longer than a handler takes on any host (a kick, an emulated cpuid, a trapped
		 * rt_sigreturn: ~0.2 ms on the slowest PVM host): a shorter period gives the
		 * handler the whole CPU, natively too once it costs more than the period. */
		struct itimerval it = {{0, 2000}, {0, 2000}};
		setitimer(ITIMER_REAL, &it, NULL);
		unsigned w = 0;
		/* A few signals at least, however fast the host runs the rounds. */
		for (unsigned r = 0; r < n || (handled < 3 && r < 1000 * n); r++)
			w += compare(form_b, 1);
		struct itimerval off = {{0, 0}, {0, 0}};
		setitimer(ITIMER_REAL, &off, NULL);
		printf("signals wrong %u, in handlers %d, handled %s\n", w, (int)handler_wrong,
		       handled > 0 ? "some" : "none");
		return w || handler_wrong;
	}
	fprintf(stderr, "cpuid: unknown op %s\n", op);
	return 2;
}
