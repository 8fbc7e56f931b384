/* Live page tables: the memory syscalls make the page tables follow the table of mappings
 * (vma.c), so a PROT_NONE or unmapped page faults, a read-only page faults on write and an
 * executable mapping executes. The monitor built the tables before the first instruction
 * (identity mapping, 2 MiB pages where it could, in [SBX_PT_ADDR, SBX_PT_END)); here a 2 MiB
 * page is split into 4 KiB ones when a change covers part of it, with a page-table page
 * taken from what the monitor left free in that area.
 *
 * Under PVM the guest's page tables are shadowed by KVM: a new permission is honoured at the
 * next access (KVM's fault handler re-reads the entry), but a permission taken away is not,
 * until a TLB flush (invlpg or a CR3 load at CPL0). The kernel runs at CPL3 there, so it
 * reaches CPL0 through the breakpoint gate (entry.S, k_tlb_flush_cpl3), once per syscall that
 * took something away (docs/architecture.md, "The guest address space", has the figures). A
 * kernel at CPL0 (hardware KVM) flushes directly, after every change of a present entry, since
 * a real TLB may also keep a stale narrower entry. */
#include "kernel.h"

#define PTE_TABLE                                                                                  \
	(SBX_PTE_P | SBX_PTE_W | SBX_PTE_U | SBX_PTE_A) /* as the monitor writes non-leaf entries  \
							 */
#define HUGE (2ull << 20)
#define NPT ((SBX_PT_END - SBX_PT_ADDR) / SBX_PAGE_SIZE)

static uint8_t k_pt_used[NPT]; /* page-table pages in use, from the first scan on */
static int k_pt_scanned;
static unsigned k_pt_nfree;
/* The flush owed by this syscall: none, one page, or everything (read inline by k_pt_commit). */
int k_pt_flush_owed;
static uint64_t k_pt_flush_page;

void k_tlb_flush_cpl3(uint64_t page); /* entry.S: 0 flushes everything */

static inline uint64_t *table(uint64_t entry)
{
	return (uint64_t *)(entry & SBX_PTE_ADDR);
}

static int in_area(uint64_t pa)
{
	return pa >= SBX_PT_ADDR && pa < SBX_PT_END;
}

static void mark(uint64_t pa)
{
	if (in_area(pa))
		k_pt_used[(pa - SBX_PT_ADDR) / SBX_PAGE_SIZE] = 1;
}

/* Which pages of the area the tables use: the monitor allocated them from the bottom, and
 * the kernel's own splits since live in guest RAM with the tables. */
static void scan(void)
{
	if (k_pt_scanned)
		return;
	k_memset(k_pt_used, 0, sizeof(k_pt_used));
	mark(SBX_PT_ADDR);
	uint64_t *pml4 = (uint64_t *)SBX_PT_ADDR;
	for (int i = 0; i < 512; i++) {
		if (!(pml4[i] & SBX_PTE_P) || !in_area(pml4[i] & SBX_PTE_ADDR))
			continue;
		mark(pml4[i] & SBX_PTE_ADDR);
		uint64_t *pdpt = table(pml4[i]);
		for (int j = 0; j < 512; j++) {
			if (!(pdpt[j] & SBX_PTE_P) || (pdpt[j] & SBX_PTE_PS) ||
			    !in_area(pdpt[j] & SBX_PTE_ADDR))
				continue;
			mark(pdpt[j] & SBX_PTE_ADDR);
			uint64_t *pd = table(pdpt[j]);
			for (int k = 0; k < 512; k++)
				if ((pd[k] & SBX_PTE_P) && !(pd[k] & SBX_PTE_PS))
					mark(pd[k] & SBX_PTE_ADDR);
		}
	}
	k_pt_nfree = 0;
	for (unsigned i = 0; i < NPT; i++)
		k_pt_nfree += !k_pt_used[i];
	k_pt_scanned = 1;
}

unsigned k_pt_free_pages(void)
{
	scan();
	return k_pt_nfree;
}

static uint64_t *pt_alloc(void)
{
	for (unsigned i = 0; i < NPT; i++) {
		if (k_pt_used[i])
			continue;
		k_pt_used[i] = 1;
		k_pt_nfree--;
		uint64_t *p = (uint64_t *)(SBX_PT_ADDR + (uint64_t)i * SBX_PAGE_SIZE);
		k_memset(p, 0, SBX_PAGE_SIZE);
		return p;
	}
	return 0;
}

static int kernel_at_cpl0(void)
{
	uint16_t cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	return (cs & 3) == 0;
}

/* The leaf bits of a page with protection prot (0: not present). */
static uint64_t leaf_bits(unsigned prot)
{
	if (!(prot & (SBX_PROT_READ | SBX_PROT_WRITE | SBX_PROT_EXEC)))
		return 0;
	uint64_t e = SBX_PTE_P | SBX_PTE_A;
	if (!(BOOT->flags & SBX_BOOT_CPL0))
		e |= SBX_PTE_U;
	if (prot & SBX_PROT_WRITE)
		e |= SBX_PTE_W | SBX_PTE_D;
	if (!(prot & SBX_PROT_EXEC))
		e |= SBX_PTE_NX;
	return e;
}

/* Does going from old to new take a permission away (or, at CPL0, change one at all)? */
static int needs_flush(uint64_t old, uint64_t nw)
{
	if (!(old & SBX_PTE_P) || old == nw)
		return 0;
	if (kernel_at_cpl0())
		return 1;
	return !(nw & SBX_PTE_P) || ((old & SBX_PTE_W) && !(nw & SBX_PTE_W)) ||
	       (!(old & SBX_PTE_NX) && (nw & SBX_PTE_NX));
}

static void owe_flush(uint64_t va)
{
	if (k_pt_flush_owed == 0) {
		k_pt_flush_owed = 1;
		k_pt_flush_page = va;
	} else if (k_pt_flush_owed == 1 && k_pt_flush_page != va) {
		k_pt_flush_owed = 2;
	}
}

/* Writes an entry only when it changes: an unchanged page-table page stays clean, so a reset
 * need not put it back (and re-add the memslot). */
static void set_entry(uint64_t *e, uint64_t nw, uint64_t va)
{
	uint64_t old = *e;
	if (old == nw)
		return;
	if (needs_flush(old, nw))
		owe_flush(va);
	*e = nw;
}

/* The 2 MiB region at r as a table of 4 KiB entries, splitting a 2 MiB page (same
 * permissions, so nothing to flush) or filling an empty one with non-present entries. */
static uint64_t *split(uint64_t *pde, uint64_t r)
{
	uint64_t *pt = pt_alloc();
	if (!pt)
		return 0;
	uint64_t e = *pde;
	if (e & SBX_PTE_P) {
		uint64_t bits = e & ~(SBX_PTE_ADDR | SBX_PTE_PS);
		for (uint64_t k = 0; k < 512; k++)
			pt[k] = (r + k * SBX_PAGE_SIZE) | bits;
	}
	*pde = (uint64_t)pt | PTE_TABLE;
	return pt;
}

/* [start, end) inside the 2 MiB region at r gets protection prot. */
static int set_region(uint64_t r, uint64_t start, uint64_t end, unsigned prot)
{
	uint64_t *pml4 = (uint64_t *)SBX_PT_ADDR;
	uint64_t l4 = pml4[(r >> 39) & 511];
	if (!(l4 & SBX_PTE_P))
		return prot ? -ENOMEM : 0;
	uint64_t l3 = table(l4)[(r >> 30) & 511];
	if (!(l3 & SBX_PTE_P) || (l3 & SBX_PTE_PS))
		return prot ? -ENOMEM : 0;
	uint64_t *pde = &table(l3)[(r >> 21) & 511];
	uint64_t bits = leaf_bits(prot);
	if (!(*pde & SBX_PTE_P) || (*pde & SBX_PTE_PS)) {
		uint64_t want = bits ? r | bits | SBX_PTE_PS : 0;
		if (*pde == want || (start == r && end == r + HUGE)) {
			set_entry(pde, want, r);
			return 0;
		}
		if (!split(pde, r))
			return -ENOMEM;
	}
	uint64_t *pt = table(*pde);
	for (uint64_t va = start; va < end; va += SBX_PAGE_SIZE)
		set_entry(&pt[(va >> 12) & 511], bits ? va | bits : 0, va);
	return 0;
}

int k_pt_set(uint64_t start, uint64_t end, unsigned prot)
{
	scan();
	int ret = 0;
	for (uint64_t at = start; at < end;) {
		uint64_t r = at & ~(HUGE - 1);
		uint64_t e = r + HUGE < end ? r + HUGE : end;
		int x = set_region(r, at, e, prot);
		if (x < 0)
			ret = x; /* the rest still follows */
		at = e;
	}
	return ret;
}

int k_pt_follow(uint64_t start, uint64_t end)
{
	int ret = 0;
	for (uint64_t at = start; at < end;) {
		const struct k_vma *v = k_vma_find(at);
		uint64_t e;
		unsigned prot = 0;
		if (v) {
			e = v->end;
			prot = v->prot;
		} else {
			e = k_vma_next(at);
		}
		if (e > end)
			e = end;
		int x = k_pt_set(at, e, prot);
		if (x < 0)
			ret = x;
		at = e;
	}
	return ret;
}

void k_pt_flush(void)
{
	uint64_t page = k_pt_flush_owed == 1 ? k_pt_flush_page : 0;
	k_pt_flush_owed = 0;
	if (!kernel_at_cpl0()) {
		k_tlb_flush_cpl3(page);
	} else if (page) {
		__asm__ volatile("invlpg (%0)" ::"r"(page) : "memory");
	} else {
		uint64_t cr3;
		__asm__ volatile("mov %%cr3, %0\n\tmov %0, %%cr3" : "=r"(cr3)::"memory");
	}
}

/* Shared file mappings (shmap.c) map a range onto guest-physical memory the monitor placed
 * above RAM, where the monitor built no tables: the missing levels are made here, with
 * 4 KiB leaves (a window is page aligned, not 2 MiB aligned). The tables needed are counted
 * by the caller beforehand (k_pt_phys_need), so this fails only on a table the program broke. */
unsigned k_pt_phys_need(uint64_t va, uint64_t len)
{
	uint64_t first = va & ~(HUGE - 1), last = (va + len - 1) & ~(HUGE - 1);
	return (unsigned)((last - first) / HUGE) + 1 + 2; /* leaf tables, a directory and a PDPT */
}

static uint64_t *level(uint64_t *e)
{
	if (!(*e & SBX_PTE_P)) {
		uint64_t *t = pt_alloc();
		if (!t)
			return 0;
		*e = (uint64_t)t | PTE_TABLE;
	}
	return (*e & SBX_PTE_PS) ? 0 : table(*e);
}

int k_pt_map_phys(uint64_t va, uint64_t gpa, uint64_t len, unsigned prot)
{
	scan();
	uint64_t bits = leaf_bits(prot);
	for (uint64_t off = 0; off < len; off += SBX_PAGE_SIZE) {
		uint64_t v = va + off;
		uint64_t *pdpt = level(&((uint64_t *)SBX_PT_ADDR)[(v >> 39) & 511]);
		uint64_t *pd = pdpt ? level(&pdpt[(v >> 30) & 511]) : 0;
		uint64_t *pde = pd ? &pd[(v >> 21) & 511] : 0;
		if (!pde || ((*pde & SBX_PTE_PS) && !split(pde, v & ~(HUGE - 1))))
			return -ENOMEM;
		uint64_t *pt = level(pde);
		if (!pt)
			return -ENOMEM;
		set_entry(&pt[(v >> 12) & 511], bits ? (gpa + off) | bits : 0, v);
	}
	return 0;
}
