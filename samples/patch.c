/* patch: the guest kernel's syscall-site patching as a program sees it
 * (tests/monitor/test_patch.c). Prints one line per check and exits 0 only when every result is
 * what Linux gives. patch sites     a `mov $39, %eax; syscall` site called 3 times (patched after
 * the first), and a `syscall; cmp $-4095, %rax` site with %eax set before it patch jump      code
 * that jumps straight to a patched site's `syscall` with its own %eax patch smc self-modifying
 * code: anonymous RWX code is run, rewritten and run again; a patched site of the program's own
 * text is rewritten and run again patch later [SELF]  code mapped after start-up from a file (the
 * program's own ELF, SELF or /proc/self/exe, private, PROT_EXEC) is patched too patch loop N    N
 * calls through a patched site (for timing and trap counts) patch race THREADS ITERS   THREADS
 * threads call 48 fresh sites (forms A and B, and Go's `cmp $-4095; jbe`) at once patch blocked
 * a thread waits in a read by a form B site another thread then patches, and returns through
 * it patch handler   the same for a signal handler's saved context (rt_sigreturn), the
 * handler of a signal that ended a pause() made by that site
 * Each check also says whether the site's
 * bytes were rewritten ("patched yes|no"), which is the kernel's business: --no-patch makes it "no"
 * and every result stays the same. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

long site_getpid(void);
long site_syscall_cmp(long nr);
long jump_in(long nr);
extern char site_syscall[], site_cmp_syscall[];

/* Form A, a `syscall` a caller may jump straight to, and form B; page aligned, so that the
 * smc and later checks find them at the start of a page of the file. */
__asm__(".text\n"
	".balign 4096\n"
	".globl site_getpid\n"
	"site_getpid:\n"
	"	mov $39, %eax\n"
	".globl site_syscall\n"
	"site_syscall:\n"
	"	syscall\n"
	"	ret\n"
	".globl jump_in\n"
	"jump_in:\n"
	"	mov %rdi, %rax\n"
	"	jmp site_syscall\n"
	".globl site_syscall_cmp\n"
	"site_syscall_cmp:\n"
	"	mov %rdi, %rax\n"
	".globl site_cmp_syscall\n"
	"site_cmp_syscall:\n"
	"	syscall\n"
	"	cmp $-4095, %rax\n"
	"	jae 1f\n"
	"	ret\n"
	"1:	ret\n"
	".balign 4096\n");

/* Fresh sites for the race: 16 of each form, each returning getpid for nr 39 (form B and Go's
 * take the number in %rdi), on a page of their own. */
__asm__(".text\n"
	".balign 4096\n"
	".irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
	"race_a\\n:\n"
	"	mov $39, %eax\n"
	"	syscall\n"
	"	ret\n"
	"race_b\\n:\n"
	"	mov %rdi, %rax\n"
	"	syscall\n"
	"	cmp $-4095, %rax\n"
	"	jae 1f\n"
	"	ret\n"
	"1:	ret\n"
	"race_g\\n:\n"
	"	mov %rdi, %rax\n"
	"	syscall\n"
	"	cmp $-4095, %rax\n"
	"	jbe 2f\n"
	"	neg %rax\n"
	"2:	ret\n"
	".endr\n"
	".balign 4096\n"
	/* read(fd, buf, n) or any call by a form B site, alone on its page (made writable) */
	".globl site_call3\n"
	"site_call3:\n"
	"	mov %rdi, %rax\n"
	"	mov %rsi, %rdi\n"
	"	mov %rdx, %rsi\n"
	"	mov %rcx, %rdx\n"
	".globl site_call3_syscall\n"
	"site_call3_syscall:\n"
	"	syscall\n"
	"	cmp $-4095, %rax\n"
	"	jae 1f\n"
	"	ret\n"
	"1:	ret\n"
	".balign 4096\n"
	".section .data.rel.ro,\"aw\"\n"
	".balign 8\n"
	"race_sites:\n"
	".irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
	"	.quad race_a\\n, race_b\\n, race_g\\n\n"
	".endr\n"
	".text\n");
extern long (*const race_sites[48])(long);
long site_call3(long nr, long a, long b, long c);
extern char site_call3_syscall[];

static int failures;

/* Where a site's `jmp` would start: form A at its first byte, the others after the mov. */
static const unsigned char *race_site(int i)
{
	return (const unsigned char *)race_sites[i] + (i % 3 ? 3 : 0);
}

static void check(const char *what, long got, long want)
{
	printf("%s: %ld%s\n", what, got, got == want ? "" : " WRONG");
	if (got != want) {
		printf("  want %ld\n", want);
		failures++;
	}
}

static void said_patched(const char *what, const void *code)
{
	printf("%s patched %s\n", what, *(const unsigned char *)code == 0xff ? "yes" : "no");
}

static void sites(void)
{
	long pid = getpid();
	for (int i = 0; i < 3; i++)
		check("form A getpid", site_getpid(), pid);
	said_patched("form A", (const void *)site_getpid);
	for (int i = 0; i < 3; i++)
		check("form B getuid", site_syscall_cmp(102), (long)getuid());
	check("form B getpid", site_syscall_cmp(39), pid);
	said_patched("form B", site_cmp_syscall);
	/* Go's shape: cmp $-4095 and jbe, whatever follows (here neg %rax for an error). */
	for (int i = 0; i < 3; i++)
		check("form B (Go) getuid", race_sites[2](102), (long)getuid());
	check("form B (Go) error", race_sites[2](-1), ENOSYS); /* Go's errno is positive */
	said_patched("form B (Go)", race_site(2));
}

static void jump(void)
{
	long pid = getpid();
	site_getpid(); /* patched now, unless --no-patch */
	site_getpid();
	said_patched("before the jumps", (const void *)site_getpid);
	check("jump getuid", jump_in(102), (long)getuid());
	check("jump getpid", jump_in(39), pid);
	check("jump getppid", jump_in(110), (long)getppid());
	check("after jump getpid", site_getpid(), pid);
	/* The first jump gave the site its bytes back: it traps as it did, for good. */
	said_patched("after the jumps", (const void *)site_getpid);
}

static void smc(void)
{
	static const unsigned char getpid_code[] = {0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0xc3};
	long pid = getpid(), uid = getuid();
	unsigned char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	memcpy(p, getpid_code, sizeof(getpid_code));
	long (*fn)(void) = (long (*)(void))p;
	for (int i = 0; i < 3; i++)
		check("anonymous code getpid", fn(), pid);
	check("anonymous code unchanged", memcmp(p, getpid_code, sizeof(getpid_code)), 0);
	p[1] = 102; /* now getuid */
	for (int i = 0; i < 3; i++)
		check("rewritten anonymous code getuid", fn(), uid);
	/* The program's own text, patched by now: made writable and given back its first form with
	 * another number, it is that call (a trap each time: a site is patched once). */
	for (int i = 0; i < 2; i++)
		check("text getpid", site_getpid(), pid);
	unsigned char *t = (unsigned char *)site_getpid;
	if (mprotect(t, 4096, PROT_READ | PROT_WRITE | PROT_EXEC) != 0) {
		perror("mprotect");
		exit(1);
	}
	memcpy(t, getpid_code, 7);
	t[1] = 102;
	mprotect(t, 4096, PROT_READ | PROT_EXEC);
	for (int i = 0; i < 3; i++)
		check("rewritten text getuid", site_getpid(), uid);
	said_patched("rewritten text", t);
}

/* The file offset of the program's own page holding `addr`, from its program headers. */
static long file_offset_of(const void *addr)
{
	const Elf64_Phdr *ph = (const Elf64_Phdr *)getauxval(AT_PHDR);
	unsigned long n = getauxval(AT_PHNUM), bias = 0;
	for (unsigned long i = 0; i < n; i++)
		if (ph[i].p_type == PT_PHDR)
			bias = (unsigned long)ph - ph[i].p_vaddr;
	for (unsigned long i = 0; i < n; i++) {
		unsigned long a = (unsigned long)addr - bias;
		if (ph[i].p_type == PT_LOAD && a >= ph[i].p_vaddr &&
		    a < ph[i].p_vaddr + ph[i].p_filesz)
			return (long)(ph[i].p_offset + (a - ph[i].p_vaddr));
	}
	return -1;
}

static void later(const char *self)
{
	long off = file_offset_of((const void *)site_getpid);
	int fd = open(self, O_RDONLY);
	if (off < 0 || (off & 4095) || fd < 0) {
		printf("cannot map the program's own text (offset %ld): %m\n", off);
		exit(1);
	}
	unsigned char *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, off);
	if (p == MAP_FAILED) {
		perror("mmap /proc/self/exe");
		exit(1);
	}
	close(fd);
	long (*fn)(void) = (long (*)(void))p;
	long pid = getpid();
	for (int i = 0; i < 3; i++)
		check("mapped later getpid", fn(), pid);
	said_patched("mapped later", p);
}

static atomic_int race_go, race_wrong, race_ready;
static long race_iters;

static void *racer(void *arg)
{
	int k = (int)(long)arg;
	long pid = getpid();
	atomic_fetch_add(&race_ready, 1);
	while (!atomic_load(&race_go))
		;
	for (long it = 0; it < race_iters; it++)
		for (int j = 0; j < 48; j++) {
			/* Every thread starts at the same site: the first calls race. */
			int i = (j + (int)(it % 3) * k) % 48;
			if (race_sites[i](39) != pid)
				atomic_fetch_add(&race_wrong, 1);
		}
	return NULL;
}

static void race(int n, long iters)
{
	pthread_t t[64];
	if (n < 1 || n > 64) {
		fprintf(stderr, "race: 1..64 threads\n");
		exit(2);
	}
	race_iters = iters;
	for (int i = 0; i < n; i++)
		pthread_create(&t[i], NULL, racer, (void *)(long)i);
	while (atomic_load(&race_ready) < n)
		;
	atomic_store(&race_go, 1);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	check("race wrong results", atomic_load(&race_wrong), 0);
	int patched = 0;
	for (int i = 0; i < 48; i++)
		patched += *race_site(i) == 0xff;
	printf("race sites patched %d of 48\n", patched);
}

/* The page of site_call3 made writable (not patched while so), or back to code. */
static void call3_page(int writable)
{
	void *pg = (void *)((unsigned long)site_call3 & ~4095ul);
	if (mprotect(pg, 4096, PROT_READ | PROT_EXEC | (writable ? PROT_WRITE : 0)) != 0) {
		perror("mprotect");
		exit(1);
	}
}

static int call3_fds[2];
static atomic_int call3_state;
static long call3_result;

static void *blocked_caller(void *arg)
{
	char c = 0;
	atomic_store(&call3_state, 1);
	if (arg) { /* pause(): a wait a signal ends (its handler runs first) */
		call3_result = site_call3(34, 0, 0, 0);
		return NULL;
	}
	call3_result = site_call3(0 /* read */, call3_fds[0], (long)&c, 1);
	if (call3_result == 1 && c != 'x')
		call3_result = -1000;
	return NULL;
}

/* Another thread patches the site while this one waits in its `syscall` (and then while this
 * one's handler runs, its saved context just after that `syscall`): it must come back as the
 * old bytes would have brought it. */
static void patched_under(int handler)
{
	long pid = getpid();
	if (pipe(call3_fds) != 0) {
		perror("pipe");
		exit(1);
	}
	call3_page(1);
	pthread_t t;
	pthread_create(&t, NULL, blocked_caller, (void *)(long)handler);
	while (!atomic_load(&call3_state))
		;
	usleep(300 * 1000); /* in the call by now, which nothing ends until we do */
	if (handler) {
		pthread_kill(t, SIGUSR1);
		while (atomic_load(&call3_state) != 2)
			;
	}
	call3_page(0);
	check("call by the site getpid", site_call3(39, 0, 0, 0), pid);
	said_patched(handler ? "under a handler" : "under a read", site_call3_syscall);
	if (handler)
		atomic_store(&call3_state, 3);
	else if (write(call3_fds[1], "x", 1) != 1)
		perror("write");
	pthread_join(t, NULL);
	check(handler ? "interrupted pause" : "read", call3_result, handler ? -EINTR : 1);
}

static void on_usr1(int sig)
{
	(void)sig;
	atomic_store(&call3_state, 2);
	while (atomic_load(&call3_state) != 3)
		;
}

int main(int argc, char **argv)
{
	const char *op = argc > 1 ? argv[1] : "";
	if (strcmp(op, "sites") == 0)
		sites();
	else if (strcmp(op, "jump") == 0)
		jump();
	else if (strcmp(op, "smc") == 0)
		smc();
	else if (strcmp(op, "race") == 0 && argc > 3)
		race(atoi(argv[2]), atol(argv[3]));
	else if (strcmp(op, "blocked") == 0)
		patched_under(0);
	else if (strcmp(op, "handler") == 0) {
		struct sigaction sa = {.sa_handler = on_usr1}; /* no SA_RESTART: EINTR */
		sigaction(SIGUSR1, &sa, NULL);
		patched_under(1);
	} else if (strcmp(op, "later") == 0)
		later(argc > 2 ? argv[2] : "/proc/self/exe");
	else if (strcmp(op, "loop") == 0 && argc > 2) {
		long n = atol(argv[2]), pid = getpid(), bad = 0;
		for (long i = 0; i < n; i++)
			bad += site_getpid() != pid;
		check("loop wrong results", bad, 0);
	} else {
		fprintf(
		    stderr,
		    "usage: patch sites|jump|smc|later [SELF]|loop N|race THREADS ITERS|blocked|"
		    "handler\n");
		return 2;
	}
	return failures ? 1 : 0;
}
