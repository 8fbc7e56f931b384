/* The initial stack, walked back from rsp the way a libc's start code reads it. */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <string.h>

#include "loader_test.h"

#ifndef AT_MINSIGSTKSZ
#define AT_MINSIGSTKSZ 51
#endif

#define STACK_TOP 0x3000000ull
#define STACK_LIMIT (STACK_TOP - 0x100000)

struct walk {
	uint64_t argc;
	const char *argv[16];
	const char *envp[16];
	uint64_t nenv;
	uint64_t aux[64]; /* value by AT_* type, for types < 64 */
	int has[64];
	unsigned naux;
	uint64_t lowest_string;
};

static uint64_t rd64(const struct loader_mem *mem, uint64_t a)
{
	uint64_t v;
	cr_assert_leq(a + 8, mem->size, "read 0x%lx outside RAM", a);
	memcpy(&v, mem->base + a, 8);
	return v;
}

static const char *str_at(const struct loader_mem *mem, uint64_t a, struct walk *w)
{
	cr_assert(a >= STACK_LIMIT && a < STACK_TOP, "string pointer 0x%lx outside the stack", a);
	cr_assert(memchr(mem->base + a, 0, STACK_TOP - a), "unterminated string at 0x%lx", a);
	if (a < w->lowest_string)
		w->lowest_string = a;
	return (const char *)mem->base + a;
}

static void walk_stack(const struct loader_mem *mem, uint64_t rsp, struct walk *w)
{
	memset(w, 0, sizeof(*w));
	w->lowest_string = UINT64_MAX;
	uint64_t p = rsp;
	w->argc = rd64(mem, p);
	p += 8;
	cr_assert_lt(w->argc, 16);
	for (uint64_t i = 0; i < w->argc; i++, p += 8)
		w->argv[i] = str_at(mem, rd64(mem, p), w);
	cr_expect_eq(rd64(mem, p), 0, "argv NULL terminator");
	p += 8;
	for (; rd64(mem, p); p += 8) {
		cr_assert_lt(w->nenv, 16);
		w->envp[w->nenv++] = str_at(mem, rd64(mem, p), w);
	}
	p += 8;
	for (;; p += 16) {
		uint64_t t = rd64(mem, p), v = rd64(mem, p + 8);
		cr_assert_lt(w->naux, 40, "auxv without AT_NULL");
		w->naux++;
		if (t == AT_NULL)
			break;
		cr_assert_lt(t, 64);
		cr_expect(!w->has[t], "AT_%lu twice", t);
		w->has[t] = 1;
		w->aux[t] = v;
	}
	cr_expect_lt(p + 16, w->lowest_string, "vectors end below the strings");
}

static struct loader_image fake_image(void)
{
	return (struct loader_image){.entry = 0x401000,
				     .prog_entry = 0x401000,
				     .phdr = 0x400040,
				     .phnum = 3,
				     .phent = 56,
				     .brk = 0x405000};
}

static struct loader_stack_args default_args(const char *const *argv, const char *const *envp)
{
	struct loader_stack_args a = {.argv = argv,
				      .envp = envp,
				      .execfn = "/bin/prog",
				      .hwcap = 0x178bfbff,
				      .hwcap2 = 2,
				      .uid = 1000,
				      .euid = 1001,
				      .gid = 100,
				      .egid = 101,
				      .secure = 0,
				      .clktck = 100,
				      .minsigstksz = 3632,
				      .stack_top = STACK_TOP,
				      .stack_limit = STACK_LIMIT};
	for (int i = 0; i < 16; i++)
		a.random[i] = (uint8_t)(0xc0 + i);
	return a;
}

Test(stack, walk_back)
{
	struct loader_mem mem = test_mem_new(TEST_SENTINEL);
	struct loader_image img = fake_image();
	const char *const argv[] = {"prog", "first arg", "", "last", NULL};
	const char *const envp[] = {"HOME=/home/u", "PATH=/bin", NULL};
	struct loader_stack_args a = default_args(argv, envp);
	struct walk w;
	char err[256] = "";
	uint64_t rsp = 0;

	cr_assert_eq(loader_build_stack(&mem, &img, &a, &rsp, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(rsp % 16, 0, "rsp 0x%lx aligned", rsp);
	cr_expect(rsp >= STACK_LIMIT && rsp < STACK_TOP);
	walk_stack(&mem, rsp, &w);
	cr_expect_eq(w.argc, 4);
	for (int i = 0; i < 4; i++)
		cr_expect_str_eq(w.argv[i], argv[i]);
	cr_expect_eq(w.nenv, 2);
	cr_expect_str_eq(w.envp[0], envp[0]);
	cr_expect_str_eq(w.envp[1], envp[1]);
	/* Linux's order: argv strings lowest, then envp, then execfn just below the zero word. */
	cr_expect_lt((uintptr_t)w.argv[3], (uintptr_t)w.envp[0]);
	cr_expect_eq(rd64(&mem, STACK_TOP - 8), 0);
	cr_expect_str_eq((const char *)mem.base + STACK_TOP - 8 - sizeof("/bin/prog"), "/bin/prog");

	cr_expect_eq(w.aux[AT_PHDR], img.phdr);
	cr_expect_eq(w.aux[AT_PHENT], 56);
	cr_expect_eq(w.aux[AT_PHNUM], 3);
	cr_expect_eq(w.aux[AT_PAGESZ], 4096);
	cr_expect(w.has[AT_BASE] && w.aux[AT_BASE] == 0);
	cr_expect(w.has[AT_FLAGS] && w.aux[AT_FLAGS] == 0);
	cr_expect_eq(w.aux[AT_ENTRY], img.entry);
	cr_expect_eq(w.aux[AT_UID], 1000);
	cr_expect_eq(w.aux[AT_EUID], 1001);
	cr_expect_eq(w.aux[AT_GID], 100);
	cr_expect_eq(w.aux[AT_EGID], 101);
	cr_expect(w.has[AT_SECURE] && w.aux[AT_SECURE] == 0);
	cr_expect_eq(w.aux[AT_HWCAP], 0x178bfbff);
	cr_expect_eq(w.aux[AT_HWCAP2], 2);
	cr_expect_eq(w.aux[AT_CLKTCK], 100);
	cr_expect_eq(w.aux[AT_MINSIGSTKSZ], 3632);
	cr_expect_eq(w.naux, 20, "19 entries and AT_NULL");

	uint64_t r = w.aux[AT_RANDOM];
	cr_assert(r >= rsp && r + 16 <= STACK_TOP);
	cr_expect(memcmp(mem.base + r, a.random, 16) == 0);
	cr_expect_str_eq(str_at(&mem, w.aux[AT_EXECFN], &w), "/bin/prog");
	cr_expect_str_eq(str_at(&mem, w.aux[AT_PLATFORM], &w), "x86_64");
	cr_expect_eq(w.aux[AT_RANDOM] + 16, w.aux[AT_PLATFORM], "random bytes right below");
	cr_expect_eq((w.aux[AT_PLATFORM] + 7) % 16, 0, "platform string ends aligned");
	/* Nothing below rsp was touched. */
	cr_expect(test_all_bytes(mem.base + STACK_LIMIT, rsp - STACK_LIMIT, TEST_SENTINEL));
	test_mem_free(&mem);
}

Test(stack, empty_argv_and_env)
{
	struct loader_mem mem = test_mem_new(0);
	struct loader_image img = fake_image();
	struct loader_stack_args a = default_args(NULL, NULL);
	struct walk w;
	uint64_t rsp;

	a.execfn = NULL;
	a.minsigstksz = 0;
	cr_assert_eq(loader_build_stack(&mem, &img, &a, &rsp, NULL, 0), 0);
	cr_expect_eq(rsp % 16, 0);
	walk_stack(&mem, rsp, &w);
	cr_expect_eq(w.argc, 1, "Linux turns an empty argv into { \"\" }");
	cr_expect_str_eq(w.argv[0], "");
	cr_expect_eq(w.nenv, 0);
	cr_expect(!w.has[AT_MINSIGSTKSZ]);
	cr_expect_eq(w.naux, 19);
	cr_expect_str_eq(str_at(&mem, w.aux[AT_EXECFN], &w), "");
	test_mem_free(&mem);
}

/* Every argc parity and string length ends on a 16-byte aligned rsp. */
Test(stack, alignment_all_shapes)
{
	struct loader_mem mem = test_mem_new(0);
	struct loader_image img = fake_image();
	const char *const pool[] = {"a", "bb", "ccc", "dddd", "eeeee", "ffffff", "g", NULL};
	struct walk w;

	for (int na = 1; na <= 7; na++)
		for (int ne = 0; ne <= 7; ne++) {
			const char *argv[8] = {0}, *envp[8] = {0};
			for (int i = 0; i < na; i++)
				argv[i] = pool[i];
			for (int i = 0; i < ne; i++)
				envp[i] = pool[6 - i];
			struct loader_stack_args a = default_args(argv, envp);
			a.minsigstksz = (uint64_t)(na & 1);
			uint64_t rsp;
			cr_assert_eq(loader_build_stack(&mem, &img, &a, &rsp, NULL, 0), 0);
			cr_expect_eq(rsp % 16, 0, "argc %d envc %d", na, ne);
			walk_stack(&mem, rsp, &w);
			cr_expect_eq(w.argc, (uint64_t)na);
			cr_expect_eq(w.nenv, (uint64_t)ne);
		}
	test_mem_free(&mem);
}

Test(stack, too_big)
{
	struct loader_mem mem = test_mem_new(TEST_SENTINEL);
	struct loader_image img = fake_image();
	static char big[5000];
	const char *const argv[] = {"prog", big, NULL};
	struct loader_stack_args a = default_args(argv, NULL);
	char err[256] = "";
	uint64_t rsp = 0;

	memset(big, 'x', sizeof(big) - 1);
	a.stack_limit = STACK_TOP - 4096;
	cr_expect_eq(loader_build_stack(&mem, &img, &a, &rsp, err, sizeof(err)), -E2BIG);
	cr_expect(strstr(err, "initial stack needs more than 0x1000 bytes"), "%s", err);
	cr_expect(strstr(err, "but only 0x1000 fit"), "%s", err);

	/* Strings that fit but leave no room for the vectors: the exact size is reported. */
	big[4000] = 0;
	a.stack_limit = STACK_TOP - 4096;
	cr_expect_eq(loader_build_stack(&mem, &img, &a, &rsp, err, sizeof(err)), -E2BIG);
	cr_expect(strstr(err, "initial stack needs 0x"), "%s", err);
	cr_expect(strstr(err, "(2 argv and 0 envp strings, 0xfb0 bytes of strings)"), "%s", err);
	big[4000] = 'x';
	cr_expect(test_all_bytes(mem.base + STACK_TOP - 0x2000, 0x2000, TEST_SENTINEL));

	/* Exactly what it asked for is enough. */
	a.stack_limit = STACK_TOP - 0x2000;
	cr_assert_eq(loader_build_stack(&mem, &img, &a, &rsp, err, sizeof(err)), 0, "%s", err);
	uint64_t need = STACK_TOP - rsp;
	a.stack_limit = rsp;
	cr_expect_eq(loader_build_stack(&mem, &img, &a, &rsp, err, sizeof(err)), 0, "%s", err);
	a.stack_limit = rsp + 1;
	cr_expect_eq(loader_build_stack(&mem, &img, &a, &rsp, err, sizeof(err)), -E2BIG);
	cr_expect_gt(need, 5000);
	test_mem_free(&mem);
}

Test(stack, bad_window)
{
	struct loader_mem mem = test_mem_new(0);
	struct loader_image img = fake_image();
	struct loader_stack_args a = default_args(NULL, NULL);
	char err[256];
	uint64_t rsp;

	a.stack_top = STACK_TOP + 8;
	cr_expect_eq(loader_build_stack(&mem, &img, &a, &rsp, err, sizeof(err)), -EINVAL);
	a.stack_top = mem.size + 16;
	cr_expect_eq(loader_build_stack(&mem, &img, &a, &rsp, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "bad stack window"), "%s", err);
	a.stack_top = STACK_TOP;
	a.stack_limit = STACK_TOP;
	cr_expect_eq(loader_build_stack(&mem, &img, &a, &rsp, err, sizeof(err)), -EINVAL);
	a.stack_limit = STACK_LIMIT;
	img.lo = 0x400000;
	img.hi = STACK_LIMIT + 0x1000;
	cr_expect_eq(loader_build_stack(&mem, &img, &a, &rsp, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "overlaps the program's segments"), "%s", err);
	img.hi = STACK_LIMIT;
	cr_expect_eq(loader_build_stack(&mem, &img, &a, &rsp, err, sizeof(err)), 0, "%s", err);
	test_mem_free(&mem);
}
