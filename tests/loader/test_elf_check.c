/* Validation: every deliberately broken fixture is refused with the right reason, through both
 * entry points, before anything is written to guest RAM; the hand-made good ones load. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "loader_test.h"

/* Inline strings, not pointers: Criterion hands each parameter to a fresh process. */
struct bad_elf {
	char file[48];
	char expect[160]; /* substring of the error message */
};

/* Keep in step with tests/data/elf/make-bad-elfs.py; bad_files_all_listed checks it. */
static const struct bad_elf bad_elfs[] = {
    {"bad-empty.elf", "not an ELF file: the file is empty"},
    {"bad-random.elf", "not an ELF file"},
    {"bad-script.elf", "not an ELF file"},
    {"bad-truncated-ident.elf", "truncated ELF header: the file has 10 bytes"},
    {"bad-truncated-ehdr.elf", "truncated ELF header: the file has 40 bytes"},
    {"bad-class32.elf", "32-bit ELF (ELFCLASS32) is not supported: x86-64 only"},
    {"bad-class-invalid.elf", "ELF class 3 is invalid"},
    {"bad-big-endian.elf", "big-endian ELF (ELFDATA2MSB) is not supported"},
    {"bad-ident-version.elf", "ELF identification version 0 is not EV_CURRENT"},
    {"bad-machine-aarch64.elf", "ELF machine is AArch64 (183), not x86-64"},
    {"bad-machine-i386.elf", "ELF machine is Intel 80386 (3), not x86-64"},
    {"bad-type-rel.elf", "ELF type is ET_REL"},
    {"bad-type-core.elf", "ELF type is ET_CORE"},
    {"bad-type-unknown.elf", "ELF type 0x1234 is not ET_EXEC or ET_DYN"},
    {"bad-version.elf", "ELF version 0 is not EV_CURRENT"},
    {"bad-phentsize.elf", "e_phentsize is 32, not 56"},
    {"bad-phnum-xnum.elf", "e_phnum is PN_XNUM"},
    {"bad-phnum-huge.elf", "e_phnum is 200: more than 128 program headers"},
    {"bad-phnum-zero.elf", "no program headers"},
    {"bad-phoff-past-end.elf",
     "program header table 0x2000+0xa8 extends past the end of the file (0x2010 bytes)"},
    {"bad-phoff-overflow.elf", "program header table 0xffffffffffffff00+0xa8 extends past"},
    {"bad-interp-escape.elf", "PT_INTERP 2: the interpreter path /lib/\\x01\\xff\\x5cldxxx"},
    {"bad-interp-past-end.elf",
     "PT_INTERP 2: file range 0x10000+0x1c extends past the end of the file (0x2010 bytes)"},
    {"bad-interp-empty.elf", "PT_INTERP 2: the interpreter path is empty"},
    {"bad-interp-relative.elf",
     "PT_INTERP 2: the interpreter path ld-linux-x86-64.so.2 is not absolute"},
    {"bad-interp-inner-nul.elf",
     "PT_INTERP 2: the interpreter path /lib/ld.so has a NUL byte before its end"},
    {"bad-interp-long.elf", "has 0x138a bytes, more than 4096"},
    {"bad-interp-two.elf", "program header 3: a second PT_INTERP"},
    {"bad-load-past-end.elf",
     "PT_LOAD 1: file range 0x2000+0x50000 extends past the end of the file (0x2010 bytes)"},
    {"bad-load-offset-overflow.elf", "PT_LOAD 1: file range 0xfffffffffffff000+0x10 extends"},
    {"bad-load-filesz-gt-memsz.elf", "PT_LOAD 1: p_filesz 0x10 is larger than p_memsz 0x8"},
    {"bad-load-align.elf", "PT_LOAD 1: p_align 0x3000 is not 0, 1 or a power of two"},
    {"bad-load-congruence.elf", "PT_LOAD 1: p_vaddr 0x402100 and p_offset 0x2000 differ"},
    {"bad-load-wrap.elf", "PT_LOAD 1: p_vaddr 0xffffffffffffe000 + p_memsz 0x3000 wraps"},
    {"bad-load-below-min.elf",
     "PT_LOAD 1: pages 0x2000-0x5000 lie outside the allowed range 0x400000-0x4000000"},
    {"bad-load-above-max.elf", "PT_LOAD 1: pages 0x7f0000002000-0x7f0000005000 lie outside"},
    {"bad-load-overlap.elf",
     "PT_LOAD 0 (0x400000-0x40100c) overlaps PT_LOAD 1 (0x400000-0x401000)"},
    {"bad-no-load.elf", "no PT_LOAD segment"},
    {"bad-empty-loads.elf", "every PT_LOAD segment is empty"},
    {"bad-too-many-loads.elf", "more than 16 PT_LOAD segments"},
    {"bad-entry-outside.elf", "entry point 0x300000 is not inside any PT_LOAD segment"},
    {"bad-entry-not-exec.elf", "entry point 0x402000 lies in PT_LOAD 1, which is not executable"},
    {"bad-tls.elf", "PT_TLS 2: p_filesz 0x10 is larger than p_memsz 0x8"},
    {"bad-pie-align.elf", "lie outside the allowed range"},
};

ParameterizedTestParameters(elf_check, refuses)
{
	return cr_make_param_array(struct bad_elf, bad_elfs,
				   sizeof(bad_elfs) / sizeof(bad_elfs[0]));
}

ParameterizedTest(const struct bad_elf *bad, elf_check, refuses)
{
	struct loader_mem mem = test_mem_new(TEST_SENTINEL);
	struct loader_params params = test_params(&mem, 0);
	struct loader_image img;
	char path[4096], err[512] = "", err2[512] = "";
	size_t len;

	test_data_path(bad->file, path, sizeof(path));
	int rc = loader_load_file(path, &params, &mem, &img, err, sizeof(err));
	cr_expect_lt(rc, 0, "%s loaded", bad->file);
	cr_expect(strstr(err, bad->expect), "%s: got \"%s\", want \"%s\"", bad->file, err,
		  bad->expect);
	cr_expect(strchr(err, '\n') == NULL, "%s: one line", bad->file);

	uint8_t *buf = test_read_file(path, &len);
	rc = loader_load_mem(buf, len, &params, &mem, &img, err2, sizeof(err2));
	cr_expect_lt(rc, 0);
	cr_expect_str_eq(err2, err, "file and memory paths disagree for %s", bad->file);
	free(buf);

	cr_expect(test_all_bytes(mem.base, mem.size, TEST_SENTINEL),
		  "%s: guest RAM written before the checks passed", bad->file);
	test_mem_free(&mem);
}

Test(elf_check, bad_files_all_listed)
{
	DIR *d = opendir(SBX_ELF_DATA_DIR);
	struct dirent *de;
	unsigned seen = 0;

	cr_assert(d);
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "bad-", 4) != 0)
			continue;
		int found = 0;
		for (size_t i = 0; i < sizeof(bad_elfs) / sizeof(bad_elfs[0]); i++)
			found |= strcmp(bad_elfs[i].file, de->d_name) == 0;
		cr_expect(found, "%s has no row in the table", de->d_name);
		seen++;
	}
	closedir(d);
	cr_expect_eq(seen, sizeof(bad_elfs) / sizeof(bad_elfs[0]), "a table row has no file");
}

Test(elf_check, interp_recorded)
{
	struct test_env e;

	test_env_init(&e);
	cr_assert_eq(test_env_load(&e, "good-interp.elf", &e.img), 0, "%s", e.err);
	cr_expect_str_eq(e.img.interp, "/lib64/ld-linux-x86-64.so.2");
	cr_expect_eq(e.img.entry, 0x401000);
	cr_expect_eq(e.img.prog_entry, 0x401000);
	cr_expect_eq(e.img.interp_base, 0);
	cr_assert_eq(test_env_load(&e, "good-minimal.elf", &e.img), 0, "%s", e.err);
	cr_expect_str_eq(e.img.interp, "");
	test_env_free(&e);
}

Test(elf_check, long_interp_is_capped)
{
	struct test_env e;

	test_env_init(&e);
	test_env_load(&e, "bad-interp-escape.elf", &e.img);
	cr_expect(strstr(e.err, "x... is not NUL-terminated"), "%s", e.err);
	cr_expect_lt(strlen(e.err), 200);
	test_env_free(&e);
}

Test(elf_check, small_err_buffer_and_null_err)
{
	struct loader_mem mem = test_mem_new(0);
	struct loader_params params = test_params(&mem, 1);
	struct loader_image img;
	char path[4096], err[8];

	test_data_path("bad-interp-empty.elf", path, sizeof(path));
	cr_expect_eq(loader_load_file(path, &params, &mem, &img, err, sizeof(err)), -ENOEXEC);
	cr_expect_str_eq(err, "PT_INTE");
	cr_expect_eq(loader_load_file(path, &params, &mem, &img, NULL, 0), -ENOEXEC);
	test_mem_free(&mem);
}

Test(elf_check, missing_file_and_directory)
{
	struct loader_mem mem = test_mem_new(0);
	struct loader_params params = test_params(&mem, 1);
	struct loader_image img;
	char err[512];

	cr_expect_eq(loader_load_file("/nonexistent/prog", &params, &mem, &img, err, sizeof(err)),
		     -ENOENT);
	cr_expect(strstr(err, "cannot open /nonexistent/prog"), "%s", err);
	cr_expect_eq(loader_load_file(SBX_ELF_DATA_DIR, &params, &mem, &img, err, sizeof(err)),
		     -EACCES);
	cr_expect(strstr(err, "is not a regular file"), "%s", err);
	test_mem_free(&mem);
}

Test(elf_check, guest_ram_smaller_than_max_addr)
{
	struct test_env e;

	test_env_init(&e);
	e.mem.size = 0x403000; /* the data segment needs up to 0x405000 */
	int rc = test_env_load(&e, "good-minimal.elf", &e.img);
	e.mem.size = TEST_MEM_SIZE;
	cr_expect_eq(rc, -ENOEXEC);
	cr_expect(strstr(e.err, "PT_LOAD 1: pages 0x402000-0x405000 lie outside the allowed range "
				"0x400000-0x403000 (the end of guest RAM)"),
		  "%s", e.err);
	test_env_free(&e);
}

static void load_good(const char *name, struct loader_mem *mem, struct loader_params *params,
		      struct loader_image *img)
{
	char path[4096], err[512] = "";

	int rc = loader_load_file(test_data_path(name, path, sizeof(path)), params, mem, img, err,
				  sizeof(err));
	cr_assert_eq(rc, 0, "%s: %s", name, err);
}

static void expect_seg(const struct loader_image *img, unsigned i, uint64_t start, uint64_t end,
		       uint32_t prot)
{
	cr_assert_lt(i, img->nsegs);
	cr_expect_eq(img->segs[i].start, start, "seg %u start 0x%lx", i, img->segs[i].start);
	cr_expect_eq(img->segs[i].end, end, "seg %u end 0x%lx", i, img->segs[i].end);
	cr_expect_eq(img->segs[i].prot, prot, "seg %u prot %u", i, img->segs[i].prot);
}

/* exit(42) as the generator writes it. */
static const uint8_t exit42[] = {0xb8, 0x3c, 0, 0, 0, 0xbf, 0x2a, 0, 0, 0, 0x0f, 0x05};

Test(elf_check, good_minimal)
{
	struct loader_mem mem = test_mem_new(TEST_SENTINEL);
	struct loader_params params = test_params(&mem, 0);
	struct loader_image img;

	load_good("good-minimal.elf", &mem, &params, &img);
	cr_expect_eq(img.entry, 0x401000);
	cr_expect_eq(img.bias, 0);
	cr_expect_eq(img.phdr, 0x400040);
	cr_expect_eq(img.phnum, 3);
	cr_expect_eq(img.phent, 56);
	cr_expect_eq(img.lo, 0x400000);
	cr_expect_eq(img.hi, 0x405000);
	cr_expect_eq(img.brk, 0x405000);
	cr_expect_eq(img.is_pie, 0);
	cr_expect_eq(img.exec_stack, 0);
	cr_expect_eq(img.tls_memsz, 0);
	cr_expect_eq(img.nsegs, 2);
	expect_seg(&img, 0, 0x400000, 0x402000, PROT_READ | PROT_EXEC);
	expect_seg(&img, 1, 0x402000, 0x405000, PROT_READ | PROT_WRITE);
	cr_expect(memcmp(mem.base + 0x400000,
			 "\x7f"
			 "ELF",
			 4) == 0);
	cr_expect(memcmp(mem.base + 0x401000, exit42, sizeof(exit42)) == 0);
	cr_expect(memcmp(mem.base + 0x402000, "loader test data", 16) == 0);
	/* bss and the padding of every page the image touches are zero, nothing else is. */
	cr_expect(test_all_bytes(mem.base + 0x402010, 0x3000 - 0x10, 0));
	cr_expect(test_all_bytes(mem.base + 0x40100c, 0x1000 - 0xc, 0));
	cr_expect(test_all_bytes(mem.base + 0x405000, 0x1000, TEST_SENTINEL));
	cr_expect(test_all_bytes(mem.base + 0x3ff000, 0x1000, TEST_SENTINEL));
	test_mem_free(&mem);
}

Test(elf_check, mem_is_zero_skips_zeroing)
{
	struct loader_mem mem = test_mem_new(TEST_SENTINEL);
	struct loader_params params = test_params(&mem, 1);
	struct loader_image img;

	load_good("good-minimal.elf", &mem, &params, &img);
	cr_expect(memcmp(mem.base + 0x402000, "loader test data", 16) == 0);
	cr_expect(test_all_bytes(mem.base + 0x402010, 0x100, TEST_SENTINEL));
	test_mem_free(&mem);
}

Test(elf_check, good_pie)
{
	struct loader_mem mem = test_mem_new(0);
	struct loader_params params = test_params(&mem, 1);
	struct loader_image img;

	load_good("good-pie.elf", &mem, &params, &img);
	cr_expect_eq(img.is_pie, 1);
	cr_expect_eq(img.bias, 0x400000);
	cr_expect_eq(img.entry, 0x401000);
	cr_expect_eq(img.phdr, 0x400040, "PT_PHDR wins: 0x%lx", img.phdr);
	cr_expect_eq(img.phnum, 4);
	cr_expect(memcmp(mem.base + 0x401000, exit42, sizeof(exit42)) == 0);

	/* The base is rounded up to the 2 MiB p_align. */
	params.pie_base = 0x500000;
	load_good("good-pie.elf", &mem, &params, &img);
	cr_expect_eq(img.bias, 0x600000);
	cr_expect_eq(img.entry, 0x601000);
	cr_expect_eq(img.lo, 0x600000);
	cr_expect_eq(img.brk, 0x605000);
	test_mem_free(&mem);
}

Test(elf_check, shared_page_gets_union)
{
	struct loader_mem mem = test_mem_new(TEST_SENTINEL);
	struct loader_params params = test_params(&mem, 0);
	struct loader_image img;

	load_good("good-shared-page.elf", &mem, &params, &img);
	cr_expect_eq(img.nsegs, 3);
	expect_seg(&img, 0, 0x400000, 0x402000, PROT_READ | PROT_EXEC);
	expect_seg(&img, 1, 0x402000, 0x403000, PROT_READ | PROT_WRITE | PROT_EXEC);
	expect_seg(&img, 2, 0x403000, 0x406000, PROT_READ | PROT_WRITE);
	cr_expect_eq(img.brk, 0x406000);
	cr_expect(memcmp(mem.base + 0x401000, exit42, sizeof(exit42)) == 0);
	cr_expect(memcmp(mem.base + 0x402010, "loader test data", 16) == 0);
	cr_expect(test_all_bytes(mem.base + 0x402020, 0x3000 - 0x10, 0));
	test_mem_free(&mem);
}

Test(elf_check, load_mem_leaves_input_alone)
{
	struct loader_mem mem = test_mem_new(0);
	struct loader_params params = test_params(&mem, 1);
	struct loader_image img;
	char path[4096], err[256];
	size_t len;

	uint8_t *buf = test_read_file(test_data_path("good-minimal.elf", path, sizeof(path)), &len);
	uint8_t *orig = malloc(len);
	cr_assert(orig);
	memcpy(orig, buf, len);
	cr_expect_eq(loader_load_mem(buf, len, &params, &mem, &img, err, sizeof(err)), 0, "%s",
		     err);
	cr_expect(memcmp(buf, orig, len) == 0);
	cr_expect_eq(img.entry, 0x401000);
	free(orig);
	free(buf);
	test_mem_free(&mem);
}
