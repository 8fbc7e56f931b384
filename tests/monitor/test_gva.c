/* The monitor's walk of the guest's page tables (monitor/core/gva.c) and its reader of the
 * dynamic linker's list (linkmap.c), on tables and lists built by hand in the RAM of a VM
 * without KVM: identity, a high window mapped to scattered pages, huge pages, and hostile
 * entries. */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <string.h>

#include "helpers.h"

static struct test_vm T;

#define ROOT 0x20000ull /* PML4 */
#define PDPT 0x21000ull
#define PD 0x22000ull
#define PT_HI 0x23000ull /* a 4 KiB table for the high window */
#define PD_HI 0x24000ull
#define PDPT_HI 0x25000ull
#define TBL (SBX_PTE_P | SBX_PTE_W | SBX_PTE_U)
#define HI_VA 0x10000000000ull /* 1 TiB: far above the 16 MiB of RAM, its own PML4 entry */

static uint64_t *entry(uint64_t table, unsigned i)
{
	return (uint64_t *)sbx_gptr(T.vm, table + 8ull * i, 8);
}

/* Identity for the first 16 MiB in 2 MiB pages, and 4 pages at HI_VA mapped to scattered,
 * descending physical pages. */
static void setup(void)
{
	test_vm_setup(&T);
	memset(sbx_gptr(T.vm, ROOT, 0x6000), 0, 0x6000);
	*entry(ROOT, 0) = PDPT | TBL;
	*entry(PDPT, 0) = PD | TBL;
	for (unsigned i = 0; i < 8; i++)
		*entry(PD, i) = ((uint64_t)i << 21) | TBL | SBX_PTE_PS;
	*entry(ROOT, (HI_VA >> 39) & 511) = PDPT_HI | TBL;
	*entry(PDPT_HI, (HI_VA >> 30) & 511) = PD_HI | TBL;
	*entry(PD_HI, (HI_VA >> 21) & 511) = PT_HI | TBL;
	for (unsigned i = 0; i < 4; i++)
		*entry(PT_HI, i) = (0x900000ull - 0x3000ull * i) | TBL;
}

static void teardown(void)
{
	test_vm_teardown(&T);
}

TestSuite(gva, .init = setup, .fini = teardown);

static int xlate(uint64_t va, unsigned access, uint64_t *gpa)
{
	uint64_t span;
	return sbx_gva_translate(T.vm, ROOT, va, access, gpa, &span);
}

Test(gva, identity_reads_what_the_physical_address_holds)
{
	char *p = sbx_gptr(T.vm, 0x5ff000, 0x2000);
	for (int i = 0; i < 0x2000; i++)
		p[i] = (char)(i * 7);
	char buf[0x2000];
	/* Across a 4 KiB and a 2 MiB boundary at once (0x600000). */
	cr_assert_eq(sbx_gva_read(T.vm, ROOT, 0x5ff000, buf, sizeof(buf)), 0);
	cr_assert_eq(memcmp(buf, p, sizeof(buf)), 0);
	uint64_t gpa, span;
	cr_assert_eq(sbx_gva_translate(T.vm, ROOT, 0x5ff123, 0, &gpa, &span), 0);
	cr_assert_eq(gpa, 0x5ff123);
	cr_assert_eq(span, 0x600000 - 0x5ff123, "a 2 MiB leaf maps to its end");
	/* The CR3 bits below the table address (PCID, PWT, PCD) are not part of it. */
	cr_assert_eq(sbx_gva_translate(T.vm, ROOT | 0x18, 0x5ff123, 0, &gpa, &span), 0);
}

Test(gva, a_high_window_reads_and_writes_scattered_pages)
{
	for (unsigned i = 0; i < 4; i++)
		memset(sbx_gptr(T.vm, 0x900000 - 0x3000ull * i, 0x1000), 'a' + (int)i, 0x1000);
	char buf[0x2000];
	cr_assert_eq(sbx_gva_read(T.vm, ROOT, HI_VA + 0x800, buf, sizeof(buf)), 0);
	cr_assert_eq(buf[0], 'a');
	cr_assert_eq(buf[0x7ff], 'a');
	cr_assert_eq(buf[0x800], 'b');
	cr_assert_eq(buf[0x17ff], 'b');
	cr_assert_eq(buf[0x1800], 'c');
	uint64_t gpa;
	cr_assert_eq(xlate(HI_VA + 0x2010, 0, &gpa), 0);
	cr_assert_eq(gpa, 0x900000 - 0x6000 + 0x10);
	cr_assert_eq(sbx_gva_write(T.vm, ROOT, HI_VA + 0xffe, "XYZW", 4), 0);
	cr_assert_eq(memcmp(sbx_gptr(T.vm, 0x900ffe, 2), "XY", 2), 0);
	cr_assert_eq(memcmp(sbx_gptr(T.vm, 0x900000 - 0x3000, 2), "ZW", 2), 0);
	/* The fifth page is not mapped: a range reaching it is refused whole, and the reader
	 * that takes what there is stops there. */
	cr_assert_eq(sbx_gva_read(T.vm, ROOT, HI_VA + 0x3ff0, buf, 0x20), -EFAULT);
	cr_assert_eq(sbx_gva_read_max(T.vm, ROOT, HI_VA + 0x3ff0, buf, 0x20), 0x10);
	cr_assert_eq(xlate(HI_VA - 1, 0, &gpa), -EFAULT);
	/* Runs: the scattered pages are one page each; identity is one run across leaves. */
	uint64_t run;
	cr_assert_eq(sbx_gva_run(T.vm, ROOT, HI_VA + 0x10, 0x3000, &gpa, &run), 0);
	cr_assert_eq(run, 0xff0);
	cr_assert_eq(sbx_gva_run(T.vm, ROOT, 0x1ff000, 0x401000, &gpa, &run), 0);
	cr_assert_eq(gpa, 0x1ff000);
	cr_assert_eq(run, 0x401000);
	char s[8];
	memcpy(sbx_gptr(T.vm, 0x900000 - 0x3000, 4), "ok\0", 3);
	cr_assert_eq(sbx_gva_string(T.vm, ROOT, HI_VA + 0x1000, s, sizeof(s)), 0);
	cr_assert_str_eq(s, "ok");
	cr_assert_eq(sbx_gva_string(T.vm, ROOT, HI_VA, s, sizeof(s)), -ENAMETOOLONG);
	cr_assert_eq(strlen(s), 7);
}

Test(gva, a_1g_leaf_maps_what_of_it_is_ram)
{
	*entry(PDPT, 1) = 0 | TBL | SBX_PTE_PS; /* 1 GiB .. 2 GiB -> GPA 0 */
	uint64_t gpa, span;
	cr_assert_eq(sbx_gva_translate(T.vm, ROOT, (1ull << 30) + 0x123456, 0, &gpa, &span), 0);
	cr_assert_eq(gpa, 0x123456);
	cr_assert_eq(span, (16ull << 20) - 0x123456, "clipped to RAM");
	cr_assert_eq(xlate((1ull << 30) + (16ull << 20), 0, &gpa), -EFAULT, "past RAM");
}

Test(gva, permissions_are_the_and_of_every_level)
{
	uint64_t gpa;
	*entry(PD, 3) &= ~SBX_PTE_W;
	cr_assert_eq(xlate(0x600000, 0, &gpa), 0);
	cr_assert_eq(xlate(0x600000, SBX_GVA_WRITE, &gpa), -EFAULT);
	cr_assert_eq(sbx_gva_write(T.vm, ROOT, 0x5ffffe, "abcd", 4), -EFAULT);
	*entry(PDPT, 0) &= ~SBX_PTE_U; /* an upper level takes U away from all below */
	cr_assert_eq(xlate(0x100000, SBX_GVA_USER, &gpa), -EFAULT);
	cr_assert_eq(xlate(0x100000, 0, &gpa), 0);
	*entry(PD, 1) |= SBX_PTE_NX;
	cr_assert_eq(xlate(0x200000, SBX_GVA_EXEC, &gpa), -EFAULT);
	cr_assert_eq(xlate(0x400000, SBX_GVA_EXEC, &gpa), 0);
	*entry(PD, 2) &= ~SBX_PTE_P;
	cr_assert_eq(xlate(0x400000, 0, &gpa), -EFAULT);
}

Test(gva, hostile_tables_end_the_walk)
{
	uint64_t gpa;
	char buf[16];
	/* Not canonical. */
	cr_assert_eq(xlate(0x0000800000000000ull, 0, &gpa), -EFAULT);
	cr_assert_eq(xlate(0xffff800000000000ull, 0, &gpa), -EFAULT, "nothing mapped there");
	/* A table outside RAM, at every level. */
	*entry(PD_HI, (HI_VA >> 21) & 511) = (64ull << 20) | TBL;
	cr_assert_eq(sbx_gva_read(T.vm, ROOT, HI_VA, buf, 8), -EFAULT);
	*entry(ROOT, 0) = 0xfffffff000ull | TBL;
	cr_assert_eq(xlate(0x400000, 0, &gpa), -EFAULT);
	cr_assert_eq(sbx_gva_translate(T.vm, ~0ull, 0, 0, &gpa, &(uint64_t){0}), -EFAULT,
		     "a root outside RAM");
	*entry(ROOT, 0) = PDPT | TBL;
	/* A leaf outside RAM (the doorbell's MMIO page, or anything past the end). */
	*entry(PT_HI, 0) = 0xfffffff000ull | TBL;
	cr_assert_eq(xlate(HI_VA, 0, &gpa), -EFAULT);
	/* PS in a PML4 entry is reserved; so are the low address bits of a huge leaf. */
	*entry(ROOT, 0) = 0 | TBL | SBX_PTE_PS;
	cr_assert_eq(xlate(0x400000, 0, &gpa), -EFAULT);
	*entry(ROOT, 0) = PDPT | TBL;
	*entry(PD, 2) = 0x400000 | 0x2000 | TBL | SBX_PTE_PS;
	cr_assert_eq(xlate(0x400000, 0, &gpa), -EFAULT);
	*entry(PDPT, 1) = 0x200000 | TBL | SBX_PTE_PS;
	cr_assert_eq(xlate(1ull << 30, 0, &gpa), -EFAULT);
	/* A table that points at itself ends after four levels: it reads its own page. */
	*entry(ROOT, 1) = ROOT | TBL;
	cr_assert_eq(xlate((1ull << 39) | (1ull << 30) | (1ull << 21) | (1ull << 12), 0, &gpa), 0);
	cr_assert_eq(gpa, ROOT);
	/* A range that would wrap around the address space. */
	cr_assert_eq(sbx_gva_read(T.vm, ROOT, ~0ull - 3, buf, 8), -EFAULT);
}

/* ---- the link map ---------------------------------------------------------------------- */

#define PHDR 0x400040ull
#define DYN 0x401000ull
#define RDEBUG 0x402000ull
#define LM 0x403000ull
#define NAMES 0x404000ull
#define LIB 0x600000ull /* a shared object's ELF header, at its l_addr */

static void put(uint64_t va, const void *p, size_t n)
{
	cr_assert_eq(sbx_gva_write(T.vm, ROOT, va, p, n), 0);
}

static void plant_program(void)
{
	struct loader_image *img = &T.vm->proc.image.img;
	strcpy(T.vm->proc.image.exe_path, "/bin/prog");
	img->phdr = PHDR;
	img->phnum = 2;
	img->bias = 0;
	Elf64_Phdr ph[2] = {
	    {.p_type = PT_LOAD, .p_flags = PF_R | PF_X, .p_vaddr = 0x400000, .p_memsz = 0x5000},
	    {.p_type = PT_DYNAMIC, .p_vaddr = DYN, .p_memsz = 0x100}};
	put(PHDR, ph, sizeof(ph));
	Elf64_Dyn d[3] = {{DT_NEEDED, {1}}, {DT_DEBUG, {RDEBUG}}, {DT_NULL, {0}}};
	put(DYN, d, sizeof(d));
	uint64_t r_debug[2] = {1, LM};
	put(RDEBUG, r_debug, sizeof(r_debug));
	Elf64_Ehdr eh = {.e_ident = {ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64},
			 .e_phoff = 64,
			 .e_phentsize = sizeof(Elf64_Phdr),
			 .e_phnum = 2};
	put(LIB, &eh, sizeof(eh));
	Elf64_Phdr lph[2] = {
	    {.p_type = PT_LOAD, .p_flags = PF_R | PF_X, .p_vaddr = 0, .p_memsz = 0x1800},
	    {.p_type = PT_LOAD,
	     .p_flags = PF_R | PF_W,
	     .p_offset = 0x1800,
	     .p_vaddr = 0x3800,
	     .p_memsz = 0x100}};
	put(LIB + 64, lph, sizeof(lph));
}

Test(gva, the_link_map_names_each_object_and_its_ranges)
{
	plant_program();
	/* program -> libfoo -> an entry without a name (skipped) -> end */
	uint64_t lm[3][5] = {{0, NAMES, DYN, LM + 40, 0},
			     {LIB, NAMES + 1, 0, LM + 80, LM},
			     {0x700000, 0, 0, 0, LM + 40}};
	put(LM, lm, sizeof(lm));
	put(NAMES, "\0/lib/libfoo.so.1", 18);
	struct sbx_object o[8];
	int n = sbx_link_map(T.vm, ROOT, o, 8);
	cr_assert_eq(n, 2);
	cr_assert(o[0].is_main);
	cr_assert_str_eq(o[0].name, "/bin/prog");
	cr_assert_eq(o[0].nloads, 1);
	cr_assert_str_eq(o[1].name, "/lib/libfoo.so.1");
	cr_assert_eq(o[1].nloads, 2);
	cr_assert_eq(o[1].loads[1].start, LIB + 0x3000);
	cr_assert_eq(o[1].loads[1].end, LIB + 0x4000);
	cr_assert_eq(o[1].loads[1].offset, 0x1000);
	cr_assert_eq(sbx_object_at(o, n, LIB + 0x1234), &o[1]);
	cr_assert_eq(sbx_object_at(o, n, LIB + 0x2000), NULL, "between its segments");
	cr_assert_eq(sbx_object_at(o, n, 0x401000), &o[0]);
}

Test(gva, a_hostile_link_map_is_cut_short)
{
	plant_program();
	/* A cycle back to the second entry, and a name with no end. */
	uint64_t lm[3][5] = {{0, 0, 0, LM + 40, 0},
			     {LIB, NAMES, 0, LM + 80, LM},
			     {LIB + 0x100000, 0xdead0000000ull, 0, LM + 40, LM + 40}};
	put(LM, lm, sizeof(lm));
	char longname[600];
	memset(longname, 'x', sizeof(longname));
	longname[0] = '/';
	put(NAMES, longname, sizeof(longname));
	struct sbx_object o[SBX_MAX_OBJECTS];
	int n = sbx_link_map(T.vm, ROOT, o, SBX_MAX_OBJECTS);
	cr_assert_eq(n, 2, "the cycle ends the list; the unreadable name drops its entry");
	cr_assert_eq(strlen(o[1].name), sizeof(o[1].name) - 1);
	/* r_map itself unreadable: the objects the monitor loaded. */
	uint64_t bad[2] = {1, 0xdead0000000ull};
	put(RDEBUG, bad, sizeof(bad));
	n = sbx_link_map(T.vm, ROOT, o, SBX_MAX_OBJECTS);
	cr_assert_eq(n, 1);
	cr_assert(o[0].is_main);
	/* A list longer than the cap (every entry its own, no cycle) stops at the cap. */
	const uint64_t list = 0x800000;
	uint64_t r_debug[2] = {1, list};
	put(RDEBUG, r_debug, sizeof(r_debug));
	for (unsigned i = 0; i < 400; i++) {
		uint64_t e[5] = {LIB, NAMES, 0, list + 40ull * (i + 1), 0};
		put(list + 40ull * i, e, sizeof(e));
	}
	n = sbx_link_map(T.vm, ROOT, o, SBX_MAX_OBJECTS);
	cr_assert_eq(n, SBX_MAX_OBJECTS);
	/* A dynamic section without DT_NULL is read only so far. */
	Elf64_Dyn d = {DT_NEEDED, {1}};
	for (unsigned i = 0; i < 2048; i++)
		put(DYN + i * sizeof(d), &d, sizeof(d));
	n = sbx_link_map(T.vm, ROOT, o, SBX_MAX_OBJECTS);
	cr_assert_eq(n, 1);
}
