/* patch: the guest kernel's syscall-site patching as a program sees it
 * (tests/monitor/test_patch.c). Prints one line per check and exits 0 only when every result is
 * what Linux gives. patch sites     a `mov $39, %eax; syscall` site called 3 times (patched after
 * the first), and a `syscall; cmp $-4095, %rax` site with %eax set before it patch jump      code
 * that jumps straight to a patched site's `syscall` with its own %eax patch smc self-modifying
 * code: anonymous RWX code is run, rewritten and run again; a patched site of the program's own
 * text is rewritten and run again patch later [SELF]  code mapped after start-up from a file (the
 * program's own ELF, SELF or /proc/self/exe, private, PROT_EXEC) is patched too patch loop N    N
 * calls through a patched site (for timing and trap counts) Each check also says whether the site's
 * bytes were rewritten ("patched yes|no"), which is the kernel's business: --no-patch makes it "no"
 * and every result stays the same. */
#include <elf.h>
#include <fcntl.h>
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

static int failures;

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

int main(int argc, char **argv)
{
	const char *op = argc > 1 ? argv[1] : "";
	if (strcmp(op, "sites") == 0)
		sites();
	else if (strcmp(op, "jump") == 0)
		jump();
	else if (strcmp(op, "smc") == 0)
		smc();
	else if (strcmp(op, "later") == 0)
		later(argc > 2 ? argv[2] : "/proc/self/exe");
	else if (strcmp(op, "loop") == 0 && argc > 2) {
		long n = atol(argv[2]), pid = getpid(), bad = 0;
		for (long i = 0; i < n; i++)
			bad += site_getpid() != pid;
		check("loop wrong results", bad, 0);
	} else {
		fprintf(stderr, "usage: patch sites|jump|smc|later [SELF]|loop N\n");
		return 2;
	}
	return failures ? 1 : 0;
}
