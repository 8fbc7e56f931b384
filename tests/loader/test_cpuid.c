/* cpuid sites (loader/cpuid_sites.c) and the instruction decoder under them (x86_decode.c):
 * the decoder against capstone over real code, the finder on hand-made functions that each
 * break one rule, and on real images (a static glibc program, a stripped ld.so). */
#include <capstone/capstone.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loader_priv.h"
#include "loader_test.h"

/* Decodes every executable section of path with both decoders, in step: where capstone says
 * the bytes are no instruction both skip one byte. Lengths and branch targets must agree;
 * the few encodings this decoder leaves alone are counted and must stay rare. */
static void same_as_capstone(const char *path, unsigned long *insns, unsigned long *unknown)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return; /* not on this machine */
	elf_version(EV_CURRENT);
	Elf *e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	cr_assert_not_null(e, "%s", path);
	csh h;
	cr_assert_eq(cs_open(CS_ARCH_X86, CS_MODE_64, &h), CS_ERR_OK);
	cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);
	cs_insn *ci = cs_malloc(h);
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
		    !(sh.sh_flags & SHF_EXECINSTR) || !(d = elf_getdata(scn, NULL)) || !d->d_buf)
			continue;
		const uint8_t *code = d->d_buf;
		size_t n = d->d_size;
		for (size_t off = 0; off < n;) {
			const uint8_t *p = code + off;
			size_t left = n - off;
			uint64_t a = sh.sh_addr + off;
			struct loader_insn in;
			unsigned mine = loader_x86_decode(code + off, n - off, &in);
			if (!cs_disasm_iter(h, &p, &left, &a, ci)) {
				off++;
				continue;
			}
			(*insns)++;
			if (!mine) {
				(*unknown)++;
				off += ci->size;
				continue;
			}
			cr_assert_eq(mine, ci->size, "%s+0x%lx: length %u, capstone %u (%s %s)",
				     path, (unsigned long)(sh.sh_addr + off), mine, ci->size,
				     ci->mnemonic, ci->op_str);
			int rel_branch = 0;
			for (uint8_t g = 0; g < ci->detail->groups_count; g++)
				rel_branch |= ci->detail->groups[g] == CS_GRP_BRANCH_RELATIVE;
			cr_assert_eq(in.branch, rel_branch, "%s+0x%lx: %s %s: branch %d", path,
				     (unsigned long)(sh.sh_addr + off), ci->mnemonic, ci->op_str,
				     in.branch);
			if (in.branch && ci->detail->x86.op_count == 1 &&
			    ci->detail->x86.operands[0].type == X86_OP_IMM)
				cr_assert_eq(sh.sh_addr + off + mine + (uint64_t)(int64_t)in.rel,
					     (uint64_t)ci->detail->x86.operands[0].imm,
					     "%s+0x%lx: %s %s", path,
					     (unsigned long)(sh.sh_addr + off), ci->mnemonic,
					     ci->op_str);
			off += mine;
		}
	}
	cs_free(ci, 1);
	cs_close(&h);
	elf_end(e);
	close(fd);
}

Test(cpuid, the_decoder_agrees_with_capstone_on_real_code)
{
	const char *files[] = {SBX_HELLO_GLIBC,
			       "/lib64/ld-linux-x86-64.so.2",
			       "/lib/x86_64-linux-gnu/libc.so.6",
			       "/lib/x86_64-linux-gnu/libm.so.6",
			       "/lib/x86_64-linux-gnu/libstdc++.so.6",
			       "/lib/x86_64-linux-gnu/libcrypto.so.3",
			       "/usr/bin/bash",
			       "/usr/bin/perl",
			       "/proc/self/exe"};
	unsigned long insns = 0, unknown = 0;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		same_as_capstone(files[i], &insns, &unknown);
	cr_assert_gt(insns, 100000, "only %lu instructions found to compare", insns);
	cr_assert_lt(unknown * 1000, insns, "%lu of %lu instructions not decoded", unknown, insns);
}

/* The sites loader_cpuid_scan finds in the function `code`, at 0x401000. */
static int scan(const uint8_t *code, size_t n, struct loader_cpuid_site *out)
{
	return loader_cpuid_scan(code, n, 0x401000, out, 8);
}

Test(cpuid, the_common_form_is_a_site)
{
	/* push %rbx; mov $7, %eax; cpuid; pop %rbx; ret */
	const uint8_t f[] = {0x53, 0xb8, 7, 0, 0, 0, 0x0f, 0xa2, 0x5b, 0xc3};
	struct loader_cpuid_site s[8];
	cr_assert_eq(scan(f, sizeof(f), s), 1);
	cr_assert_eq(s[0].site, 0x401001);
	cr_assert_eq(s[0].len, 7);
	cr_assert_eq(s[0].pre, 5);
	cr_assert_eq(s[0].special, 0);
	cr_assert_arr_eq(s[0].orig, f + 1, 7);
}

Test(cpuid, an_instruction_3_bytes_in_needs_a_special_record)
{
	/* lea 0(%rsi), %ecx; mov %edi, %eax; cpuid; ret */
	const uint8_t f[] = {0x8d, 0x4e, 0x00, 0x89, 0xf8, 0x0f, 0xa2, 0xc3};
	struct loader_cpuid_site s[8];
	cr_assert_eq(scan(f, sizeof(f), s), 1);
	cr_assert_eq(s[0].pre, 5);
	cr_assert_eq(s[0].special, 1);
}

Test(cpuid, windows_whose_instructions_start_where_a_jump_would_not_trap_are_refused)
{
	/* mov %edi, %eax; mov %esi, %ecx; cpuid: starts at 2 and 4, nothing longer before */
	const uint8_t a[] = {0x89, 0xf8, 0x89, 0xf1, 0x0f, 0xa2, 0xc3};
	/* lea 1(%rcx), %edi; mov %r12d, %eax; cpuid: the cpuid 6 bytes in */
	const uint8_t b[] = {0x8d, 0x79, 0x01, 0x44, 0x89, 0xe0, 0x0f, 0xa2, 0xc3};
	struct loader_cpuid_site s[8];
	cr_assert_eq(scan(a, sizeof(a), s), 0);
	cr_assert_eq(scan(b, sizeof(b), s), 0);
}

Test(cpuid, code_that_cannot_move_is_never_in_a_window)
{
	/* lea 0(%rip), %rax: RIP-relative, then cpuid 7 bytes in */
	const uint8_t rip[] = {0x48, 0x8d, 0x05, 0, 0, 0, 0, 0x0f, 0xa2, 0xc3};
	/* call next; cpuid */
	const uint8_t call[] = {0xe8, 0, 0, 0, 0, 0x0f, 0xa2, 0xc3};
	/* jz +0; nop; cpuid: the window would hold the jcc */
	const uint8_t jcc[] = {0x0f, 0x84, 0, 0, 0, 0, 0x90, 0x0f, 0xa2, 0xc3};
	struct loader_cpuid_site s[8];
	cr_assert_eq(scan(rip, sizeof(rip), s), 0);
	cr_assert_eq(scan(call, sizeof(call), s), 0);
	cr_assert_eq(scan(jcc, sizeof(jcc), s), 0);
}

/* A moved instruction runs at an address in the kernel's range, where a fault would not reach
 * the program's signal handler: only what cannot fault moves. */
Test(cpuid, instructions_that_may_fault_are_never_moved)
{
	/* mov (%rdi), %eax; xor %ecx, %ecx; mov %eax, %eax: 7 bytes, a load first */
	const uint8_t load[] = {0x8b, 0x07, 0x31, 0xc9, 0x89, 0xc0, 0x90, 0x0f, 0xa2, 0xc3};
	/* div %ecx (#DE on zero); mov $7, %eax */
	const uint8_t div[] = {0xf7, 0xf1, 0xb8, 7, 0, 0, 0, 0x0f, 0xa2, 0xc3};
	/* push %rbx; nop x4; mov %esi, %ecx... : push writes the stack */
	const uint8_t push[] = {0x53, 0x90, 0x90, 0x90, 0x90, 0x89, 0xf1, 0x0f, 0xa2, 0xc3};
	struct loader_cpuid_site s[8];
	cr_assert_eq(scan(load, sizeof(load), s), 0);
	cr_assert_eq(scan(div, sizeof(div), s), 1, "the mov alone makes a window");
	cr_assert_eq(s[0].pre, 5);
	cr_assert_eq(scan(push, sizeof(push), s), 0);
}

/* `mov $0, %eax; cpuid` is the serializing fence idiom (cpuid; rdtsc): left as it is. */
Test(cpuid, leaf_0_asked_as_a_fence_is_left_alone)
{
	const uint8_t f[] = {0xb8, 0, 0, 0, 0, 0x0f, 0xa2, 0x0f, 0x31, 0xc3};
	/* mov %rbx, %rsi; xor %eax, %eax; cpuid: how a compiler writes a constant 0 */
	const uint8_t x[] = {0x48, 0x89, 0xde, 0x31, 0xc0, 0x0f, 0xa2, 0xc3};
	struct loader_cpuid_site s[8];
	cr_assert_eq(scan(f, sizeof(f), s), 0);
	cr_assert_eq(scan(x, sizeof(x), s), 0);
}

Test(cpuid, a_branch_into_the_window_keeps_it_as_it_is)
{
	/* mov $0, %ecx; or %esi, %ecx; cpuid; jmp back to the `or` */
	const uint8_t f[] = {0xb9, 0, 0, 0, 0, 0x09, 0xf1, 0x0f, 0xa2, 0xeb, 0xfa, 0xc3};
	struct loader_cpuid_site s[8];
	cr_assert_eq(scan(f, sizeof(f), s), 0);
	/* The same jumping to the window's first instruction is fine. */
	uint8_t g[sizeof(f)];
	memcpy(g, f, sizeof(f));
	g[10] = 0xf5;
	cr_assert_eq(scan(g, sizeof(g), s), 1);
	cr_assert_eq(s[0].pre, 7);
}

Test(cpuid, bytes_0f_a2_inside_another_instruction_are_no_cpuid)
{
	/* mov $0xa20f, %eax; mov $0xa20f0000, %eax; ret */
	const uint8_t f[] = {0xb8, 0x0f, 0xa2, 0, 0, 0xb8, 0, 0, 0x0f, 0xa2, 0xc3};
	struct loader_cpuid_site s[8];
	cr_assert_eq(scan(f, sizeof(f), s), 0);
}

Test(cpuid, a_function_that_does_not_decode_is_left_alone)
{
	/* mov $7, %eax; cpuid; then 0x06, no instruction in 64-bit mode */
	const uint8_t f[] = {0xb8, 7, 0, 0, 0, 0x0f, 0xa2, 0x06, 0xc3};
	struct loader_cpuid_site s[8];
	cr_assert_eq(scan(f, sizeof(f), s), 0);
}

/* Every site of an image: a cpuid of one of its executable pages, as loaded. */
static void sites_of(const char *path, unsigned at_least)
{
	struct test_env e;
	test_env_init(&e);
	e.p.cpuid_sites = 1;
	int r = loader_load_file(path, &e.p, &e.mem, &e.img, e.err, sizeof(e.err));
	cr_assert_eq(r, 0, "%s: %s", path, e.err);
	cr_assert_geq(e.img.ncpuid, at_least, "%s: %u sites", path, e.img.ncpuid);
	for (unsigned i = 0; i < e.img.ncpuid; i++) {
		const struct loader_cpuid_site *s = &e.img.cpuid[i];
		cr_assert(s->pre == 5 || s->pre >= 7);
		cr_assert_eq(s->len, s->pre + 2);
		cr_assert(s->orig[s->pre] == 0x0f && s->orig[s->pre + 1] == 0xa2);
		cr_assert_arr_eq(e.mem.base + s->site, s->orig, s->len);
		int in_text = 0;
		for (unsigned k = 0; k < e.img.nsegs; k++)
			in_text |= s->site >= e.img.segs[k].start &&
				   s->site + s->len <= e.img.segs[k].end &&
				   (e.img.segs[k].prot & 4 /* PROT_EXEC */);
		cr_assert(in_text, "%s: site 0x%lx outside the text", path, (unsigned long)s->site);
	}
	e.p.cpuid_sites = 0;
	test_env_free(&e);
	test_env_init(&e);
	cr_assert_eq(loader_load_file(path, &e.p, &e.mem, &e.img, e.err, sizeof(e.err)), 0);
	cr_assert_eq(e.img.ncpuid, 0, "found only when asked");
	test_env_free(&e);
}

Test(cpuid, glibc_s_start_up_sites_are_found_by_its_symbols)
{
	sites_of(SBX_HELLO_GLIBC, 10);
}

Test(cpuid, a_stripped_ld_so_s_sites_are_found_by_its_cfi)
{
	if (access("/lib64/ld-linux-x86-64.so.2", R_OK))
		cr_skip_test("no /lib64/ld-linux-x86-64.so.2 on this machine");
	sites_of("/lib64/ld-linux-x86-64.so.2", 10);
}

/* Stripped files: the .eh_frame reader (tests/data/elf/make-eh-frame-elfs.py). A good FDE gives
 * the function; a last FDE too short for its pointers and a CIE with a 4000-byte augmentation
 * string that 1500 FDEs point at are passed over, quickly and inside the section. */
static unsigned sites_in_fixture(const char *name)
{
	struct test_env e;
	struct loader_image img;
	test_env_init(&e);
	e.p.cpuid_sites = 1;
	cr_assert_eq(test_env_load(&e, name, &img), 0, "%s: %s", name, e.err);
	unsigned n = img.ncpuid;
	if (n)
		cr_assert_eq(img.cpuid[0].site, 0x400200, "%s", name);
	test_env_free(&e);
	return n;
}

Test(cpuid, an_eh_frame_gives_a_stripped_function_its_bounds)
{
	cr_assert_eq(sites_in_fixture("eh-frame-good.elf"), 1);
	cr_assert_eq(sites_in_fixture("eh-frame-short.elf"), 1);
	cr_assert_eq(sites_in_fixture("eh-frame-longaug.elf"), 0);
}
