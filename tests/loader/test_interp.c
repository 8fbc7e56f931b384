/* A dynamic program and its interpreter: the interpreter placed top-down, the two page lists
 * joined, and the initial stack telling ld.so where everything is (AT_BASE, AT_ENTRY, AT_PHDR). */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "loader_test.h"

#define TOP 0x3000000ull /* where the interpreter must end, as below a stack guard */

static void load(const char *name, const struct loader_params *p, struct loader_mem *mem,
		 struct loader_image *img)
{
	char path[4096], err[512] = "";
	int rc = loader_load_file(test_data_path(name, path, sizeof(path)), p, mem, img, err,
				  sizeof(err));
	cr_assert_eq(rc, 0, "%s: %s", name, err);
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
	struct loader_mem mem = test_mem_new(0);
	struct loader_params p = test_params(&mem, 1);
	struct loader_image prog, in;
	char err[512] = "";

	load("good-interp.elf", &p, &mem, &prog);
	cr_assert_str_eq(prog.interp, "/lib64/ld-linux-x86-64.so.2");
	p.pie_top = TOP;
	load("good-pie.elf", &p, &mem, &in);
	/* good-pie.elf spans 0..0x5000 with 2 MiB alignment: the highest aligned base whose
	 * end stays at or below TOP. */
	cr_expect_eq(in.bias, TOP - 0x200000, "bias 0x%lx", in.bias);
	cr_expect_leq(in.hi, TOP);
	cr_assert_eq(loader_add_interp(&prog, &in, "ld.so", err, sizeof(err)), 0, "%s", err);
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
	struct loader_stack_args a = {
	    .argv = argv, .clktck = 100, .stack_top = mem.size, .stack_limit = mem.size - 0x100000};
	uint64_t rsp;
	cr_assert_eq(loader_build_stack(&mem, &prog, &a, &rsp, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(aux_of(&mem, rsp, AT_BASE), in.bias);
	cr_expect_eq(aux_of(&mem, rsp, AT_ENTRY), 0x401000);
	cr_expect_eq(aux_of(&mem, rsp, AT_PHDR), 0x400040);
	test_mem_free(&mem);
}

Test(interp, static_program_has_no_base)
{
	struct loader_mem mem = test_mem_new(0);
	struct loader_params p = test_params(&mem, 1);
	struct loader_image prog;
	char err[512] = "";

	load("good-minimal.elf", &p, &mem, &prog);
	const char *const argv[] = {"/bin/prog", NULL};
	struct loader_stack_args a = {
	    .argv = argv, .stack_top = mem.size, .stack_limit = mem.size - 0x100000};
	uint64_t rsp;
	cr_assert_eq(loader_build_stack(&mem, &prog, &a, &rsp, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(aux_of(&mem, rsp, AT_BASE), 0);
	cr_expect_eq(aux_of(&mem, rsp, AT_ENTRY), prog.entry);
	test_mem_free(&mem);
}

Test(interp, refused_joins)
{
	struct loader_mem mem = test_mem_new(0);
	struct loader_params p = test_params(&mem, 1);
	struct loader_image prog, in, before;
	char err[512] = "";

	load("good-interp.elf", &p, &mem, &prog);
	before = prog;
	/* An "interpreter" at the program's own fixed address. */
	load("good-minimal.elf", &p, &mem, &in);
	cr_expect_eq(loader_add_interp(&prog, &in, "/lib/x.so", err, sizeof(err)), -ENOEXEC);
	cr_expect(strstr(err, "the interpreter /lib/x.so at 0x400000-0x402000 overlaps the "
			      "program at 0x400000-0x402000"),
		  "%s", err);
	cr_expect(memcmp(&prog, &before, sizeof(prog)) == 0, "nothing changed");
	/* An interpreter that names an interpreter of its own. */
	p.pie_top = TOP;
	load("good-interp-dyn.elf", &p, &mem, &in);
	cr_expect_eq(loader_add_interp(&prog, &in, "/lib/y.so", err, sizeof(err)), -ENOEXEC);
	cr_expect(strstr(err, "the interpreter /lib/y.so has a PT_INTERP of its own"), "%s", err);
	/* Too many page ranges between them. */
	in.interp[0] = 0;
	in.nsegs = LOADER_MAX_RANGES;
	cr_expect_eq(loader_add_interp(&prog, &in, "/lib/z.so", err, sizeof(err)), -ENOEXEC);
	cr_expect(strstr(err, "more than 32"), "%s", err);
	test_mem_free(&mem);
}

Test(interp, top_placement_that_cannot_fit)
{
	struct loader_mem mem = test_mem_new(0);
	struct loader_params p = test_params(&mem, 1);
	struct loader_image in;
	char path[4096], err[512] = "";

	p.pie_top = 0x4000; /* smaller than the image */
	int rc = loader_load_file(test_data_path("good-pie.elf", path, sizeof(path)), &p, &mem, &in,
				  err, sizeof(err));
	cr_expect_eq(rc, -ENOEXEC);
	cr_expect(strstr(err, "more than fit below 0x4000"), "%s", err);
	p.pie_top = 0x300000; /* fits, but not above min_addr */
	rc = loader_load_file(test_data_path("good-pie.elf", path, sizeof(path)), &p, &mem, &in,
			      err, sizeof(err));
	cr_expect_eq(rc, -ENOEXEC);
	cr_expect(strstr(err, "lie outside the allowed range"), "%s", err);
	test_mem_free(&mem);
}
