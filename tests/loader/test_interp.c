/* A dynamic program and its interpreter: the interpreter placed top-down, the two page lists
 * joined, and the initial stack telling ld.so where everything is (AT_BASE, AT_ENTRY, AT_PHDR). */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "loader_test.h"

#define TOP 0x3000000ull /* where the interpreter must end, as below a stack guard */

static void load(struct test_env *e, const char *name, struct loader_image *img)
{
	int rc = test_env_load(e, name, img);
	cr_assert_eq(rc, 0, "%s: %s", name, e->err);
}

static uint64_t aux_of(const struct loader_mem *mem, uint64_t rsp, uint64_t type)
{
	uint64_t p = rsp, v;
	memcpy(&v, mem->base + p, 8);
	p += 8 * (v + 2); /* argc, argv[], NULL */
	do {
		memcpy(&v, mem->base + p, 8);
		p += 8;
	} while (v);
	for (;; p += 16) {
		uint64_t t, val;
		memcpy(&t, mem->base + p, 8);
		memcpy(&val, mem->base + p + 8, 8);
		if (t == type)
			return val;
		cr_assert_neq(t, AT_NULL, "AT_%lu missing", type);
	}
}

Test(interp, placed_top_down_and_joined)
{
	struct test_env e;
	struct loader_image prog, in;

	test_env_init(&e);
	load(&e, "good-interp.elf", &prog);
	cr_assert_str_eq(prog.interp, "/lib64/ld-linux-x86-64.so.2");
	e.p.pie_top = TOP;
	load(&e, "good-pie.elf", &in);
	/* good-pie.elf spans 0..0x5000 with 2 MiB alignment: the highest aligned base whose
	 * end stays at or below TOP. */
	cr_expect_eq(in.bias, TOP - 0x200000, "bias 0x%lx", in.bias);
	cr_expect_leq(in.hi, TOP);
	cr_assert_eq(loader_add_interp(&prog, &in, "ld.so", e.err, sizeof(e.err)), 0, "%s", e.err);
	cr_expect_eq(prog.entry, in.entry);
	cr_expect_eq(prog.prog_entry, 0x401000);
	cr_expect_eq(prog.interp_base, in.bias);
	cr_expect_eq(prog.brk, 0x405000, "brk stays the program's");
	cr_expect_eq(prog.phdr, 0x400040);
	cr_expect_eq(prog.nsegs, 4);
	for (unsigned i = 1; i < prog.nsegs; i++)
		cr_expect_leq(prog.segs[i - 1].end, prog.segs[i].start, "sorted and disjoint");
	cr_expect_eq(prog.segs[2].start, in.bias);
	cr_expect_eq(prog.segs[2].prot, PROT_READ | PROT_EXEC);
	cr_expect_eq(prog.lo, 0x400000);
	cr_expect_eq(prog.hi, in.hi);

	const char *const argv[] = {"/bin/prog", NULL};
	struct loader_stack_args a = {.argv = argv,
				      .clktck = 100,
				      .stack_top = e.mem.size,
				      .stack_limit = e.mem.size - 0x100000};
	uint64_t rsp;
	cr_assert_eq(loader_build_stack(&e.mem, &prog, &a, &rsp, e.err, sizeof(e.err)), 0, "%s",
		     e.err);
	cr_expect_eq(aux_of(&e.mem, rsp, AT_BASE), in.bias);
	cr_expect_eq(aux_of(&e.mem, rsp, AT_ENTRY), 0x401000);
	cr_expect_eq(aux_of(&e.mem, rsp, AT_PHDR), 0x400040);
	test_env_free(&e);
}

Test(interp, static_program_has_no_base)
{
	struct test_env e;

	test_env_init(&e);
	load(&e, "good-minimal.elf", &e.img);
	const char *const argv[] = {"/bin/prog", NULL};
	struct loader_stack_args a = {
	    .argv = argv, .stack_top = e.mem.size, .stack_limit = e.mem.size - 0x100000};
	uint64_t rsp;
	cr_assert_eq(loader_build_stack(&e.mem, &e.img, &a, &rsp, e.err, sizeof(e.err)), 0, "%s",
		     e.err);
	cr_expect_eq(aux_of(&e.mem, rsp, AT_BASE), 0);
	cr_expect_eq(aux_of(&e.mem, rsp, AT_ENTRY), e.img.entry);
	test_env_free(&e);
}

Test(interp, refused_joins)
{
	struct test_env e;
	struct loader_image prog, in, before;
	char *err = e.err;
	size_t errlen = sizeof(e.err);

	test_env_init(&e);
	load(&e, "good-interp.elf", &prog);
	before = prog;
	/* An "interpreter" at the program's own fixed address. */
	load(&e, "good-minimal.elf", &in);
	cr_expect_eq(loader_add_interp(&prog, &in, "/lib/x.so", err, errlen), -ENOEXEC);
	cr_expect(strstr(err, "the interpreter /lib/x.so at 0x400000-0x402000 overlaps the "
			      "program at 0x400000-0x402000"),
		  "%s", err);
	cr_expect(memcmp(&prog, &before, sizeof(prog)) == 0, "nothing changed");
	/* An interpreter that names an interpreter of its own. */
	e.p.pie_top = TOP;
	load(&e, "good-interp-dyn.elf", &in);
	cr_expect_eq(loader_add_interp(&prog, &in, "/lib/y.so", err, errlen), -ENOEXEC);
	cr_expect(strstr(err, "the interpreter /lib/y.so has a PT_INTERP of its own"), "%s", err);
	/* Too many page ranges between them. */
	in.interp[0] = 0;
	in.nsegs = LOADER_MAX_RANGES;
	cr_expect_eq(loader_add_interp(&prog, &in, "/lib/z.so", err, errlen), -ENOEXEC);
	cr_expect(strstr(err, "more than 32"), "%s", err);
	test_env_free(&e);
}

Test(interp, top_placement_that_cannot_fit)
{
	struct test_env e;

	test_env_init(&e);
	e.p.pie_top = 0x4000; /* smaller than the image */
	cr_expect_eq(test_env_load(&e, "good-pie.elf", &e.img), -ENOEXEC);
	cr_expect(strstr(e.err, "more than fit below 0x4000"), "%s", e.err);
	e.p.pie_top = 0x300000; /* fits, but not above min_addr */
	cr_expect_eq(test_env_load(&e, "good-pie.elf", &e.img), -ENOEXEC);
	cr_expect(strstr(e.err, "lie outside the allowed range"), "%s", e.err);
	test_env_free(&e);
}
