/* Real toolchain output: static glibc, static-PIE glibc and static musl programs load with
 * every expectation computed independently from the file with libelf, as `readelf -l` shows. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <gelf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "loader_test.h"

#define PAGE 0x1000ull

static uint64_t page_down(uint64_t a)
{
	return a & ~(PAGE - 1);
}

static uint64_t page_up(uint64_t a)
{
	return (a + PAGE - 1) & ~(PAGE - 1);
}

/* The protection the loader reported for the page holding `a`, or -1 if unmapped. */
static int prot_at(const struct loader_image *img, uint64_t a)
{
	for (unsigned i = 0; i < img->nsegs; i++)
		if (img->segs[i].start <= a && a < img->segs[i].end)
			return (int)img->segs[i].prot;
	return -1;
}

static void check_binary(const char *path, int want_pie)
{
	struct loader_mem mem = test_mem_new(TEST_SENTINEL);
	struct loader_params params = test_params(&mem, 0);
	struct loader_image img;
	char err[512] = "";
	size_t len;

	int rc = loader_load_file(path, &params, &mem, &img, err, sizeof(err));
	cr_assert_eq(rc, 0, "%s: %s", path, err);

	uint8_t *file = test_read_file(path, &len);
	cr_assert_neq(elf_version(EV_CURRENT), EV_NONE);
	Elf *e = elf_memory((char *)file, len);
	cr_assert(e);
	GElf_Ehdr eh;
	cr_assert(gelf_getehdr(e, &eh));
	cr_expect_eq(img.is_pie, want_pie);
	cr_expect_eq(eh.e_type, want_pie ? ET_DYN : ET_EXEC);
	cr_expect_eq(img.bias, want_pie ? TEST_MIN_ADDR : 0, "bias 0x%lx", img.bias);
	cr_expect_eq(img.entry, eh.e_entry + img.bias);
	cr_expect_eq(img.phnum, eh.e_phnum);
	cr_expect_eq(img.phent, sizeof(Elf64_Phdr));

	uint64_t want_phdr = 0, lo = UINT64_MAX, hi = 0, tls = 0;
	int entry_exec = 0, have_pt_phdr = 0;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		GElf_Phdr ph;
		cr_assert(gelf_getphdr(e, (int)i, &ph));
		if (ph.p_type == PT_PHDR) {
			want_phdr = ph.p_vaddr + img.bias;
			have_pt_phdr = 1;
		}
		if (ph.p_type == PT_TLS)
			tls = ph.p_memsz;
		if (ph.p_type != PT_LOAD)
			continue;
		uint64_t va = ph.p_vaddr + img.bias;
		if (!have_pt_phdr && ph.p_offset <= eh.e_phoff &&
		    eh.e_phoff < ph.p_offset + ph.p_filesz && want_phdr == 0)
			want_phdr = eh.e_phoff - ph.p_offset + va;
		cr_expect(memcmp(mem.base + va, file + ph.p_offset, ph.p_filesz) == 0,
			  "PT_LOAD %u bytes in place", i);
		cr_expect(test_all_bytes(mem.base + va + ph.p_filesz, ph.p_memsz - ph.p_filesz, 0),
			  "PT_LOAD %u bss zero", i);
		lo = va < lo ? va : lo;
		hi = va + ph.p_memsz > hi ? va + ph.p_memsz : hi;
		int want = (ph.p_flags & PF_R ? PROT_READ : 0) |
			   (ph.p_flags & PF_W ? PROT_WRITE : 0) |
			   (ph.p_flags & PF_X ? PROT_EXEC : 0);
		for (uint64_t a = page_down(va); a < va + ph.p_memsz; a += PAGE) {
			int got = prot_at(&img, a);
			cr_expect(got >= 0 && (got & want) == want, "PT_LOAD %u page 0x%lx prot %d",
				  i, a, got);
		}
		if ((ph.p_flags & PF_X) && va <= img.entry && img.entry < va + ph.p_memsz)
			entry_exec = 1;
	}
	cr_expect(entry_exec, "entry 0x%lx inside an executable PT_LOAD", img.entry);
	cr_expect_neq(want_phdr, 0);
	cr_expect_eq(img.phdr, want_phdr, "phdr 0x%lx want 0x%lx", img.phdr, want_phdr);
	/* The program headers a libc reads through AT_PHDR are the file's own. */
	cr_expect(memcmp(mem.base + img.phdr, file + eh.e_phoff, eh.e_phnum * sizeof(Elf64_Phdr)) ==
		  0);
	cr_expect_eq(img.lo, page_down(lo));
	cr_expect_eq(img.hi, page_up(hi));
	cr_expect_eq(img.brk, page_up(hi));
	cr_expect_eq(img.tls_memsz, tls);
	cr_expect_gt(img.nsegs, 0);
	for (unsigned i = 0; i < img.nsegs; i++) {
		cr_expect_eq(img.segs[i].start % PAGE, 0);
		cr_expect_eq(img.segs[i].end % PAGE, 0);
		cr_expect_lt(img.segs[i].start, img.segs[i].end);
		if (i > 0)
			cr_expect_leq(img.segs[i - 1].end, img.segs[i].start, "sorted, disjoint");
	}
	/* Nothing outside the image was written. */
	cr_expect(test_all_bytes(mem.base, img.lo, TEST_SENTINEL));
	cr_expect(test_all_bytes(mem.base + img.hi, mem.size - img.hi, TEST_SENTINEL));
	elf_end(e);
	free(file);
	test_mem_free(&mem);
}

Test(elf_load, static_glibc)
{
	check_binary(SBX_HELLO_GLIBC, 0);
}

Test(elf_load, static_pie_glibc)
{
	check_binary(SBX_HELLO_GLIBC_PIE, 1);
}

Test(elf_load, static_musl)
{
	if (!SBX_HELLO_MUSL[0])
		cr_skip_test("musl-gcc not found");
	check_binary(SBX_HELLO_MUSL, 0);
}

Test(elf_load, load_mem_matches_load_file)
{
	struct loader_mem m1 = test_mem_new(0), m2 = test_mem_new(0);
	struct loader_params params = test_params(&m1, 1);
	struct loader_image a, b;
	char err[512] = "";
	size_t len;

	uint8_t *file = test_read_file(SBX_HELLO_GLIBC_PIE, &len);
	cr_assert_eq(loader_load_file(SBX_HELLO_GLIBC_PIE, &params, &m1, &a, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(loader_load_mem(file, len, &params, &m2, &b, err, sizeof(err)), 0, "%s", err);
	/* Field by field: struct copies need not carry padding bytes. */
	cr_expect(a.entry == b.entry && a.bias == b.bias && a.phdr == b.phdr &&
		  a.phnum == b.phnum && a.phent == b.phent && a.lo == b.lo && a.hi == b.hi &&
		  a.brk == b.brk && a.nsegs == b.nsegs && a.is_pie == b.is_pie &&
		  a.exec_stack == b.exec_stack && a.tls_memsz == b.tls_memsz &&
		  a.tls_align == b.tls_align);
	for (unsigned i = 0; i < a.nsegs; i++)
		cr_expect(a.segs[i].start == b.segs[i].start && a.segs[i].end == b.segs[i].end &&
			  a.segs[i].prot == b.segs[i].prot);
	cr_expect(memcmp(m1.base + a.lo, m2.base + a.lo, a.hi - a.lo) == 0);
	free(file);
	test_mem_free(&m1);
	test_mem_free(&m2);
}

Test(elf_load, truncated_real_binary)
{
	struct test_env e;
	size_t len;

	test_env_init(&e);
	uint8_t *file = test_read_file(SBX_HELLO_GLIBC, &len);
	cr_expect_eq(loader_load_mem(file, len / 2, &e.p, &e.mem, &e.img, e.err, sizeof(e.err)),
		     -ENOEXEC);
	cr_expect(strstr(e.err, "extends past the end of the file"), "%s", e.err);
	free(file);
	test_env_free(&e);
}
