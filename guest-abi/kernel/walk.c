/* Reading the page tables: which guest-physical page backs a virtual address. The kernel runs
 * on the program's own tables, so it reads and writes user memory by its virtual address; only
 * what it hands the monitor (ring requests) must be guest-physical. Apart from pt.c, which
 * writes the tables; a page of a mapping with pages on first touch that the program has not
 * touched yet gets its page here (k_pt_fault_in), since the monitor touches it instead. */
#include "kernel.h"

int k_physmap_on;

static uint64_t *next(uint64_t e)
{
	return (uint64_t *)k_phys(e & SBX_PTE_ADDR);
}

uint64_t *k_pt_leaf(uint64_t va, uint64_t *size)
{
	if (va >> 47)
		return 0;
	uint64_t *e = &((uint64_t *)k_phys(SBX_PT_ADDR))[(va >> 39) & 511];
	if (!(*e & SBX_PTE_P))
		return 0;
	for (int shift = 30; shift >= 12; shift -= 9) {
		e = &next(*e)[(va >> shift) & 511];
		*size = 1ull << shift;
		if (shift == 12)
			return (*e & (SBX_PTE_P | SBX_PTE_KEEP)) ? e : 0;
		if (!(*e & SBX_PTE_P))
			return 0;
		if (*e & SBX_PTE_PS)
			return e;
	}
	return 0;
}

/* The guest-physical address of va, or UINT64_MAX; *left: bytes to the end of its page. */
static uint64_t gpa_of(uint64_t va, uint64_t *left)
{
	uint64_t size = 0, *e = k_pt_leaf(va, &size);
	if (!e)
		return UINT64_MAX;
	*left = size - (va & (size - 1));
	return (*e & SBX_PTE_ADDR & ~(size - 1)) + (va & (size - 1));
}

uint64_t k_gpa_run(uint64_t va, uint64_t len, uint64_t *gpa)
{
	if (!k_physmap_on) {
		*gpa = va;
		return len;
	}
	uint64_t left, g = gpa_of(va, &left);
	if (g == UINT64_MAX && k_pt_fault_in(va, 0) > 0)
		g = gpa_of(va, &left);
	if (g == UINT64_MAX)
		return 0;
	*gpa = g;
	uint64_t n = left;
	while (n < len) {
		uint64_t l = 0, h = gpa_of(va + n, &l);
		if (h == UINT64_MAX && k_pt_fault_in(va + n, 0) > 0)
			h = gpa_of(va + n, &l);
		if (h != g + n)
			break;
		n += l;
	}
	return n < len ? n : len;
}
