/* Live page tables: the memory syscalls make the page tables follow the table of mappings
 * (vma.c), so a PROT_NONE or unmapped page faults, a read-only page faults on write and an
 * executable mapping executes. The monitor built the tables before the first instruction
 * (identity mapping of RAM, 2 MiB pages where it could, in [SBX_PT_ADDR, SBX_PT_END)).
 *
 * The image, the heap and the stack stay identity-mapped; an mmap'ed range has virtual
 * addresses of its own (anywhere below SBX_USER_TOP) and its pages come from the allocator
 * (phys.c), one 4 KiB entry each, marked SBX_PTE_OWNED. A PROT_NONE page keeps its page in an
 * entry that is not present (SBX_PTE_KEEP); a reservation that never had a protection has no
 * pages at all, so reserving costs nothing but its entry in the table of mappings. At first use
 * the kernel maps all of RAM at SBX_PHYSMAP_VA (its way to page tables and free pages), puts
 * the pages nobody owns in the allocator, and unmaps them from the identity map. A 2 MiB page
 * is split into 4 KiB ones when a change covers part of it; page-table pages come from what
 * the monitor left free in [SBX_PT_ADDR, SBX_PT_END), then from the allocator (listed in the
 * boot page's pt_table, so that a reset knows them).
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
#define PAGE SBX_PAGE_SIZE
#define HUGE (2ull << 20)
#define NPT ((SBX_PT_END - SBX_PT_ADDR) / SBX_PAGE_SIZE)
/* Page-table pages the allocator may give: 64 MiB of them, enough to map 32 GiB in 4 KiB. */
#define K_MAX_PT 16384

static uint8_t k_pt_used[NPT]; /* page-table pages in use, from the first scan on */
static int k_pt_scanned;
static unsigned k_pt_nfree;
/* Page-table pages from the allocator, by page number (the boot page's pt_table, 1.5). */
static uint32_t k_pt_list[K_MAX_PT];
static uint32_t k_pt_nlist;
/* The flush owed by this syscall: none, one page, or everything (read inline by k_pt_commit). */
int k_pt_flush_owed;
static uint64_t k_pt_flush_page;

void k_tlb_flush_cpl3(uint64_t page); /* entry.S: 0 flushes everything */

static inline uint64_t *table(uint64_t entry)
{
	return (uint64_t *)k_phys(entry & SBX_PTE_ADDR);
}

static uint64_t *pml4(void)
{
	return (uint64_t *)k_phys(SBX_PT_ADDR);
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

static void init_phys(void);

/* Which pages of the area the tables use: the monitor allocated them from the bottom, and
 * the kernel's own splits since live in guest RAM with the tables. */
static void scan(void)
{
	if (k_pt_scanned)
		return;
	k_memset(k_pt_used, 0, sizeof(k_pt_used));
	mark(SBX_PT_ADDR);
	uint64_t *l4 = pml4();
	for (int i = 0; i < 512; i++) {
		if (!(l4[i] & SBX_PTE_P) || !in_area(l4[i] & SBX_PTE_ADDR))
			continue;
		mark(l4[i] & SBX_PTE_ADDR);
		uint64_t *pdpt = table(l4[i]);
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
	if (!k_physmap_on)
		init_phys();
}

unsigned k_pt_free_pages(void)
{
	scan();
	uint64_t n = k_pt_nfree + k_frames_nfree();
	return n > 0xffffffffu ? 0xffffffffu : (unsigned)n;
}

/* Before the allocator exists (init_phys), page-table pages come from the top of the highest
 * free range, while it is still identity-mapped: [k_boot_lo, k_boot_hi) is what was taken. */
static uint64_t k_boot_lo, k_boot_hi, k_boot_floor;

static uint64_t boot_page(void)
{
	if (k_boot_lo < k_boot_floor + PAGE || k_vma_find(k_boot_lo - PAGE))
		return 0;
	k_boot_lo -= PAGE;
	return k_boot_lo;
}

/* A zeroed page for a page table (its guest-physical address), or 0. */
static uint64_t pt_alloc(void)
{
	for (unsigned i = 0; i < NPT; i++) {
		if (k_pt_used[i])
			continue;
		k_pt_used[i] = 1;
		k_pt_nfree--;
		uint64_t pa = SBX_PT_ADDR + (uint64_t)i * SBX_PAGE_SIZE;
		k_memset(k_phys(pa), 0, SBX_PAGE_SIZE);
		return pa;
	}
	if (k_pt_nlist == K_MAX_PT)
		return 0;
	uint64_t pa = k_physmap_on ? k_frame_alloc() : boot_page();
	if (!pa)
		return 0;
	if (!k_physmap_on)
		k_memset((void *)pa, 0, SBX_PAGE_SIZE);
	k_pt_list[k_pt_nlist++] = (uint32_t)(pa / SBX_PAGE_SIZE);
	return pa;
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

/* Does going from old to new take a permission away or move the page (or, at CPL0, change
 * anything at all)? */
static int needs_flush(uint64_t old, uint64_t nw)
{
	if (!(old & SBX_PTE_P) || old == nw)
		return 0;
	if (kernel_at_cpl0())
		return 1;
	return !(nw & SBX_PTE_P) || ((old ^ nw) & SBX_PTE_ADDR) ||
	       ((old & SBX_PTE_W) && !(nw & SBX_PTE_W)) ||
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

/* A 2 MiB region as a table of 4 KiB entries, splitting a 2 MiB page (same
 * permissions, so nothing to flush) or filling an empty one with non-present entries. */
static uint64_t *split(uint64_t *pde)
{
	uint64_t pa = pt_alloc();
	if (!pa)
		return 0;
	uint64_t *pt = (uint64_t *)k_phys(pa);
	uint64_t e = *pde;
	if (e & SBX_PTE_P) {
		uint64_t bits = e & ~(SBX_PTE_ADDR | SBX_PTE_PS);
		uint64_t base = e & SBX_PTE_ADDR & ~(HUGE - 1);
		for (uint64_t k = 0; k < 512; k++)
			pt[k] = (base + k * SBX_PAGE_SIZE) | bits;
	}
	*pde = pa | PTE_TABLE;
	return pt;
}

/* The table an entry points to, made (empty) if there is none; NULL if it maps a large page
 * or no page-table page is left. */
static uint64_t *below(uint64_t *e)
{
	if (*e & SBX_PTE_P)
		return (*e & SBX_PTE_PS) ? 0 : table(*e);
	uint64_t pa = pt_alloc();
	if (!pa)
		return 0;
	*e = pa | PTE_TABLE; /* was not present: nothing to flush */
	/* A new top-level entry of the master root: the other vCPUs' roots copy it. */
	uint64_t *root = pml4();
	if (e >= root && e < root + 512)
		k_cpu_root_set((unsigned)(e - root), *e);
	return table(*e);
}

/* The entry of the 2 MiB region holding va, or NULL (no table above it, unless create). */
static uint64_t *pde_of(uint64_t va, int create)
{
	if (va >> 47)
		return 0;
	uint64_t *e = &pml4()[(va >> 39) & 511];
	for (int shift = 30; shift >= 21; shift -= 9) {
		uint64_t *t;
		if (create)
			t = below(e);
		else
			t = (*e & SBX_PTE_P) && !(*e & SBX_PTE_PS) ? table(*e) : 0;
		if (!t)
			return 0;
		e = &t[(va >> shift) & 511];
	}
	return e;
}

/* The size of the aligned block around va that has no page table at some level above the
 * 4 KiB ones (512 GiB or 1 GiB), or 0: how far a walk over a sparse range, such as a
 * reservation of terabytes, may skip at once. */
static uint64_t hole_size(uint64_t va)
{
	if (va >> 47)
		return 0;
	uint64_t e = pml4()[(va >> 39) & 511];
	if (!(e & SBX_PTE_P))
		return 1ull << 39;
	if (e & SBX_PTE_PS)
		return 0;
	if (!(table(e)[(va >> 30) & 511] & SBX_PTE_P))
		return 1ull << 30;
	return 0;
}

/* The 4 KiB entry of va: NULL if there is no table for it (made if create, splitting a 2 MiB
 * page, when page-table pages are left). */
static uint64_t *pte_of(uint64_t va, int create)
{
	uint64_t *pde = pde_of(va, create);
	if (!pde)
		return 0;
	if ((*pde & SBX_PTE_PS) || !(*pde & SBX_PTE_P)) {
		if (!create || !split(pde))
			return 0;
	}
	return &table(*pde)[(va >> 12) & 511];
}

/* [start, end) inside the 2 MiB region at r gets protection prot, mapped to itself. */
static int set_region(uint64_t r, uint64_t start, uint64_t end, unsigned prot)
{
	uint64_t *pde = pde_of(r, 0);
	if (!pde)
		return prot ? -ENOMEM : 0;
	uint64_t bits = leaf_bits(prot);
	if (!(*pde & SBX_PTE_P) || (*pde & SBX_PTE_PS)) {
		uint64_t want = bits ? r | bits | SBX_PTE_PS : 0;
		if (*pde == want || (start == r && end == r + HUGE)) {
			set_entry(pde, want, r);
			return 0;
		}
		if (!split(pde))
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

/* Pages of the allocator being given back, gathered into runs (one DISCARD for a run). */
struct k_run {
	uint64_t gpa, n;
};

static void run_add(struct k_run *r, uint64_t gpa)
{
	if (r->n && gpa == r->gpa + r->n * PAGE) {
		r->n++;
		return;
	}
	k_frames_free(r->gpa, r->n, 0);
	r->gpa = gpa;
	r->n = 1;
}

static void run_end(struct k_run *r)
{
	k_frames_free(r->gpa, r->n, 0);
	r->n = 0;
}

/* Nothing is mapped in [start, end): the allocator's pages there go back to it. */
static void clear(uint64_t start, uint64_t end)
{
	struct k_run run = {0, 0};
	for (uint64_t at = start; at < end;) {
		uint64_t r = at & ~(HUGE - 1);
		uint64_t e = r + HUGE < end ? r + HUGE : end;
		uint64_t *pde = pde_of(r, 0);
		if (!pde) {
			/* No table: nothing mapped (skip as far as the missing level reaches). */
			uint64_t h = hole_size(at), b = (at & ~(h - 1)) + h;
			if (h)
				e = b < end ? b : end;
			at = e;
			continue;
		}
		if (!(*pde & SBX_PTE_P) || (*pde & SBX_PTE_PS)) {
			set_region(r, at, e, 0);
		} else {
			uint64_t *pt = table(*pde);
			for (uint64_t va = at; va < e; va += PAGE) {
				uint64_t *pte = &pt[(va >> 12) & 511];
				if (*pte & SBX_PTE_OWNED)
					run_add(&run, *pte & SBX_PTE_ADDR);
				set_entry(pte, 0, va);
			}
		}
		at = e;
	}
	run_end(&run);
}

/* A page of an mmap'ed range: the page it has or, when `fill`, a new one from the allocator
 * (0: none). */
static uint64_t page_entry(uint64_t old, uint64_t bits, int fill)
{
	uint64_t page = old & SBX_PTE_ADDR, own = old & SBX_PTE_OWNED;
	if (!(old & (SBX_PTE_P | SBX_PTE_KEEP))) {
		if (!fill || !(page = k_frame_alloc()))
			return 0;
		own = SBX_PTE_OWNED;
	}
	return page | own | (bits ? bits : SBX_PTE_KEEP);
}

/* The pages of an mmap'ed range get protection prot, keeping the page each has; one that has
 * none gets one when `fill` says so. Top down: the allocator hands pages out from the top,
 * so the range's pages come out in ascending order, contiguous for the monitor's I/O. A new
 * page table is filled before it is linked: under PVM a write to a linked one costs a shadow
 * page fault (~6 us) the first time. */
static int paged_set(uint64_t start, uint64_t end, unsigned prot, int fill)
{
	/* The new tables first, so that they do not cut the pages into runs of 2 MiB. */
	uint64_t pre[64];
	unsigned npre = 0, used = 0;
	for (uint64_t re = end; fill && re > start && npre < 64;) {
		uint64_t r = (re - 1) & ~(HUGE - 1), *pde = pde_of(r, 1);
		if (pde && *pde == 0 && !(pre[npre++] = pt_alloc()))
			return -ENOMEM;
		re = r > start ? r : start;
	}
	uint64_t bits = leaf_bits(prot);
	for (uint64_t re = end; re > start;) {
		uint64_t r = (re - 1) & ~(HUGE - 1), rs = r > start ? r : start;
		uint64_t *pde = pde_of(r, fill), *pt = 0, pa = 0;
		if (!pde) {
			if (fill)
				return -ENOMEM;
			/* Going down: to the bottom of the missing level, or of its region. */
			uint64_t h = hole_size(r), b = r & ~(h - 1);
			if (h)
				re = b > start ? b : start;
			else
				re = rs;
			continue;
		}
		if (*pde == 0 && fill) {
			if (!(pa = used < npre ? pre[used++] : pt_alloc()))
				return -ENOMEM;
			pt = (uint64_t *)k_phys(pa);
		} else if ((*pde & SBX_PTE_P) && !(*pde & SBX_PTE_PS)) {
			pt = table(*pde);
		} else if (fill) {
			if (!split(pde))
				return -ENOMEM;
			pt = table(*pde);
		}
		int ret = 0;
		for (uint64_t va = re; pt && va > rs;) {
			va -= PAGE;
			uint64_t *e = &pt[(va >> 12) & 511], nw = page_entry(*e, bits, fill);
			if (!nw) {
				ret = fill ? -ENOMEM : 0;
				continue;
			}
			if (pa)
				*e = nw; /* not linked yet */
			else
				set_entry(e, nw, va);
		}
		if (pa)
			*pde = pa | PTE_TABLE;
		if (ret < 0)
			return ret;
		re = rs;
	}
	return 0;
}

/* Does an mmap'ed mapping with protection prot have its pages now? A PROT_NONE anonymous
 * range is a reservation (none until a protection is given); a file's bytes are read in at
 * mmap, so its pages exist whatever the protection; a mapping with pages on first touch gets
 * each at its fault (k_pt_fault_in). */
static int filled(unsigned prot, const struct k_vma *v)
{
	return !(v->flags & K_VMA_LAZY) && (prot != 0 || v->kind == K_VMA_FILE);
}

int k_pt_follow(uint64_t start, uint64_t end)
{
	scan();
	int ret = 0;
	for (uint64_t at = start; at < end;) {
		const struct k_vma *v = k_vma_find(at);
		uint64_t e;
		int x = 0;
		if (v) {
			e = v->end < end ? v->end : end;
			if (k_vma_paged(v))
				x = paged_set(at, e, v->prot, filled(v->prot, v));
			else
				x = k_pt_set(at, e, v->prot);
		} else {
			e = k_vma_next(at);
			if (e > end)
				e = end;
			clear(at, e);
		}
		if (x < 0)
			ret = x;
		at = e;
	}
	return ret;
}

int k_pt_map(uint64_t va, uint64_t gpa, uint64_t len, unsigned prot)
{
	scan();
	struct k_run run = {0, 0};
	uint64_t bits = leaf_bits(prot);
	int ret = 0;
	for (uint64_t off = 0; off < len; off += PAGE) {
		uint64_t *e = pte_of(va + off, 1);
		if (!e) {
			ret = -ENOMEM;
			break;
		}
		if (*e & SBX_PTE_OWNED)
			run_add(&run, *e & SBX_PTE_ADDR);
		set_entry(e, (gpa + off) | (bits ? bits : SBX_PTE_KEEP), va + off);
	}
	run_end(&run);
	return ret;
}

int k_pt_make_run(uint64_t va, uint64_t len)
{
	uint64_t n = len / PAGE;
	for (uint64_t i = 0; i < n; i++) {
		k_pt_fault_in(va + i * PAGE, SBX_PF_WRITE);
		uint64_t *e = pte_of(va + i * PAGE, 0);
		if (!e || !(*e & SBX_PTE_OWNED))
			return -EINVAL;
	}
	uint64_t base = k_frames_run(n);
	if (!base)
		return -ENOMEM;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t *e = pte_of(va + i * PAGE, 0), old = *e & SBX_PTE_ADDR,
			 to = base + i * PAGE;
		k_memcpy(k_phys(to), k_phys(old), PAGE);
		set_entry(e, (*e & ~SBX_PTE_ADDR) | to, va + i * PAGE);
		k_frames_free(old, 1, 0);
	}
	return 0;
}

uint64_t k_pt_need(uint64_t start, uint64_t end, unsigned prot)
{
	scan();
	/* The tables above: a PD per GiB, a PDPT per 512 GiB, and the splits at both ends. */
	uint64_t tables = (end - start) / (1ull << 30) + 6, most = (end - start) / PAGE * 2;
	if (k_frames_nfree() >= most + tables)
		return most + tables; /* enough even if every page needed one: no need to look */
	uint64_t n = 0;
	for (uint64_t at = start; at < end;) {
		const struct k_vma *v = k_vma_find(at);
		uint64_t e = v ? v->end : k_vma_next(at);
		if (e > end)
			e = end;
		if (v && k_vma_paged(v) && filled(prot, v)) {
			for (uint64_t va = at; va < e;) {
				uint64_t *pde = pde_of(va, 0), r = (va & ~(HUGE - 1)) + HUGE;
				uint64_t stop = r < e ? r : e;
				if (!pde || !(*pde & SBX_PTE_P) || (*pde & SBX_PTE_PS)) {
					n += (stop - va) / PAGE + 1; /* the pages and their table */
				} else {
					uint64_t *pt = table(*pde);
					for (uint64_t p = va; p < stop; p += PAGE)
						n += !(pt[(p >> 12) & 511] &
						       (SBX_PTE_P | SBX_PTE_KEEP));
				}
				va = stop;
			}
		}
		at = e;
	}
	return n + tables;
}

int k_pt_move(uint64_t from, uint64_t to, uint64_t len)
{
	scan();
	for (uint64_t off = 0; off < len; off += PAGE) {
		uint64_t size, *src = k_pt_leaf(from + off, &size);
		if (src && !pte_of(to + off, 1))
			return -ENOMEM;
	}
	for (uint64_t off = 0; off < len; off += PAGE) {
		uint64_t *src = pte_of(from + off, 0);
		if (!src || !(*src & (SBX_PTE_P | SBX_PTE_KEEP)))
			continue;
		uint64_t v = *src;
		set_entry(src, 0, from + off);
		set_entry(pte_of(to + off, 0), v, to + off);
	}
	return 0;
}

/* The allocator's pages of [start, end) zeroed in place, in runs. */
static void zero_owned(uint64_t start, uint64_t end)
{
	uint64_t gpa = 0, n = 0;
	for (uint64_t va = start; va < end;) {
		uint64_t *pde = pde_of(va, 0), r = (va & ~(HUGE - 1)) + HUGE, h;
		if (!pde && (h = hole_size(va))) {
			va = (va & ~(h - 1)) + h; /* no tables: no pages */
			continue;
		}
		for (uint64_t stop = r < end ? r : end; va < stop; va += PAGE) {
			uint64_t *e = pde && (*pde & SBX_PTE_P) && !(*pde & SBX_PTE_PS)
					  ? &table(*pde)[(va >> 12) & 511]
					  : 0;
			uint64_t g = e && (*e & SBX_PTE_OWNED) ? *e & SBX_PTE_ADDR : 0;
			if (n && g == gpa + n * PAGE) {
				n++;
				continue;
			}
			k_frames_zero(gpa, n);
			gpa = g;
			n = g != 0;
		}
	}
	k_frames_zero(gpa, n);
}

void k_pt_discard(uint64_t start, uint64_t end)
{
	scan();
	/* A mapping with pages on first touch gives its pages back, as Linux's anonymous memory
	 * does; the others keep theirs, zeroed. */
	for (uint64_t at = start; at < end;) {
		const struct k_vma *v = k_vma_find(at);
		uint64_t e = v ? v->end : k_vma_next(at);
		if (e > end)
			e = end;
		if (v && (v->flags & K_VMA_LAZY) && k_vma_paged(v))
			clear(at, e);
		else if (v)
			zero_owned(at, e);
		at = e;
	}
}

/* Pages a first touch maps at once: the faulting one and the rest of its aligned 64 KiB that
 * its mapping covers and lacks. A fault costs ~46 us under PVM (measured: bench/dynamic.py),
 * a page ~1-3 us, and memory is touched in runs (an ASan shadow, an arena); Linux maps 2 MiB
 * at a first touch with THP. */
#define K_FAULT_AROUND 16
/* Pages kept back from fault-around: the last of RAM goes a page at a time. */
#define K_FAULT_RESERVE 1024

void k_pt_fill_lazy(uint64_t max_each, uint64_t budget)
{
	for (uint64_t at = SBX_USER_ADDR; at < SBX_USER_TOP;) {
		const struct k_vma *v = k_vma_find(at);
		if (!v) {
			at = k_vma_next(at);
			continue;
		}
		uint64_t s = v->start, e = v->end;
		if ((v->flags & K_VMA_LAZY) && (v->prot & SBX_PROT_WRITE) && k_vma_paged(v) &&
		    e - s <= max_each && e - s <= budget) {
			for (uint64_t a = s; a < e; a += PAGE)
				if (k_pt_fault_in(a, SBX_PF_WRITE) < 0)
					return;
			budget -= e - s;
		}
		at = e;
	}
}

/* Pages of [lo, hi) its entries (from e, the entry of va) lack, from the top down so that
 * they come out of the allocator in ascending order: one run of guest-physical pages, whose
 * host backing a polling monitor makes while the program goes on (`hint`: not while the kernel
 * may be in the middle of a ring request of its own). */
static void fault_around(uint64_t *e, uint64_t va, uint64_t lo, uint64_t hi, uint64_t bits,
			 int hint)
{
	uint64_t run = 0, n = 0;
	for (uint64_t a = hi; a > lo;) {
		a -= PAGE;
		uint64_t *x = e + (int64_t)(a - va) / (int64_t)PAGE, page;
		if (a == va || (*x & (SBX_PTE_P | SBX_PTE_KEEP)))
			continue;
		if (!(page = k_frame_alloc()))
			break;
		*x = page | bits;
		if (n && page == run - PAGE) {
			run = page;
			n++;
		} else if (!n) {
			run = page;
			n = 1;
		}
	}
	if (hint && n >= K_FAULT_AROUND / 2) {
		uint64_t args[2] = {run, n * PAGE};
		k_call_async(SBX_CALL_POPULATE, args, 2);
	}
}

static int fault_in(uint64_t va, uint64_t err, int hint)
{
	if (!k_physmap_on)
		return 0;
	const struct k_vma *v = k_vma_find(va);
	if (!v || !(v->flags & K_VMA_LAZY) || !k_vma_paged(v) || (err & SBX_PF_PRESENT))
		return 0;
	if (!(v->prot & SBX_PF_NEED(err)))
		return 0;
	va &= ~(PAGE - 1);
	uint64_t *e = pte_of(va, 1);
	if (!e) {
		BOOT->enomem++;
		return -ENOMEM;
	}
	if (*e & SBX_PTE_P)
		return 1; /* mapped already (the monitor's I/O got here first) */
	if (*e & SBX_PTE_KEEP)
		return 0; /* a kept page the table of mappings disagrees with: the program's fault
			   */
	uint64_t bits = leaf_bits(v->prot) | SBX_PTE_OWNED, page = k_frame_alloc();
	if (!page) {
		BOOT->enomem++;
		return -ENOMEM;
	}
	*e = page | bits; /* not present before: nothing to flush */
	if (k_frames_nfree() <= K_FAULT_RESERVE)
		return 1;
	/* The block is inside one aligned 2 MiB, so its entries are e's neighbours. */
	uint64_t blk = K_FAULT_AROUND * PAGE, lo = va & ~(blk - 1), hi = lo + blk;
	fault_around(e, va, lo > v->start ? lo : v->start, hi < v->end ? hi : v->end, bits, hint);
	return 1;
}

int k_pt_fault_in(uint64_t va, uint64_t err)
{
	return fault_in(va, err, 0);
}

int k_pf_fault(uint64_t va, uint64_t err, uint64_t rip)
{
	struct k_cpu *c = K_CPU;
	if (__builtin_expect(!c->tramp_ready, 0))
		k_cpu_tramp(c);
	k_lock();
	int r = fault_in(va, err, rip < SBX_KERNEL_ADDR || rip >= SBX_VDSO_ADDR);
	k_unlock();
	return r;
}

/* All of RAM mapped at SBX_PHYSMAP_VA, in 2 MiB pages. Its tables come from the area, else
 * from the top of the free range (boot_page). */
static int build_physmap(uint64_t mem)
{
	uint64_t *pdpt = below(&pml4()[(SBX_PHYSMAP_VA >> 39) & 511]);
	if (!pdpt)
		return -ENOMEM;
	uint64_t leaf = leaf_bits(SBX_PROT_READ | SBX_PROT_WRITE) | SBX_PTE_PS;
	for (uint64_t g = 0; g < mem; g += HUGE) {
		uint64_t *pd = below(&pdpt[(g >> 30) & 511]);
		if (!pd)
			return -ENOMEM;
		pd[(g >> 21) & 511] = g | leaf; /* new entries: nothing to flush */
	}
	return 0;
}

/* Is the page at va one nobody owns (init_phys)? */
static int unowned(uint64_t va, uint64_t top)
{
	return va >= SBX_USER_ADDR && va < top && !k_vma_find(va);
}

/* Takes the pages nobody owns below top off the identity map. Writing a directory KVM shadows
 * traps, one entry at a time (~1.6 ms for 256 MiB of RAM), so each GiB gets a new directory,
 * built before it is linked, and one write links it; then one full flush. */
static void unmap_free(uint64_t top)
{
	for (uint64_t g = SBX_USER_ADDR & ~((1ull << 30) - 1); g < top; g += 1ull << 30) {
		uint64_t *l4 = &pml4()[(g >> 39) & 511];
		if (!(*l4 & SBX_PTE_P))
			return;
		uint64_t *pdpte = &table(*l4)[(g >> 30) & 511], pa = 0;
		if (!(*pdpte & SBX_PTE_P) || (*pdpte & SBX_PTE_PS) || !(pa = pt_alloc()))
			return;
		uint64_t *old = table(*pdpte), *pd = (uint64_t *)k_phys(pa);
		k_memcpy(pd, old, SBX_PAGE_SIZE);
		for (uint64_t k = 0; k < 512; k++) {
			uint64_t r = g + k * HUGE, e = pd[k];
			if (r + HUGE <= SBX_USER_ADDR || r >= top || !(e & SBX_PTE_P))
				continue;
			if (r >= SBX_USER_ADDR && r + HUGE <= top && k_vma_free(r, r + HUGE)) {
				pd[k] = 0;
				continue;
			}
			uint64_t *pt, tpa = 0;
			if (e & SBX_PTE_PS) {
				if (!(tpa = pt_alloc()))
					continue;
				pt = (uint64_t *)k_phys(tpa);
				uint64_t bits = e & ~(SBX_PTE_ADDR | SBX_PTE_PS);
				for (uint64_t i = 0; i < 512; i++)
					pt[i] =
					    ((e & SBX_PTE_ADDR & ~(HUGE - 1)) + i * PAGE) | bits;
			} else {
				pt = table(
				    e); /* linked already: its writes trap, but they are few */
			}
			for (uint64_t i = 0; i < 512; i++)
				if (unowned(r + i * PAGE, top))
					set_entry(&pt[i], 0, r + i * PAGE);
			if (tpa)
				pd[k] = tpa | PTE_TABLE;
		}
		/* The old directory stays unused: a paging-structure cache may hold it until the
		 * flush, so it is not handed out again. */
		*pdpte = pa | PTE_TABLE;
		k_pt_flush_owed = 2;
	}
}

/* At first use: the map of RAM, the allocator (its bitmap at the top of the highest free
 * range) holding every page below the stack that no mapping owns, and those pages unmapped
 * from the identity map, so that the program faults there as on Linux. Without a map of RAM
 * (no page for its tables) the kernel stays as it was: mmap'ed memory then gets no pages. */
static void init_phys(void)
{
	volatile struct sbx_bootinfo *b = BOOT;
	b->pt_table = (uint64_t)k_pt_list;
	b->pt_count = (uint64_t)&k_pt_nlist;
	uint64_t mem = b->mem_size & ~(HUGE - 1), top = b->mmap_top;
	if (top > mem || top <= SBX_USER_ADDR)
		return;
	uint64_t hi = top;
	for (const struct k_vma *v; hi > SBX_USER_ADDR && (v = k_vma_find(hi - PAGE));)
		hi = v->start;
	k_boot_lo = k_boot_hi = hi;
	k_boot_floor = SBX_USER_ADDR;
	if (build_physmap(mem) < 0)
		return;
	uint64_t npages = mem / PAGE, nb = ((npages + 63) / 64 * 8 + PAGE - 1) / PAGE;
	for (uint64_t i = 0; i < nb; i++)
		if (!boot_page())
			return;
	k_physmap_on = 1;
	k_boot_floor = k_boot_lo; /* from here on page tables come from the allocator */
	k_memset(k_phys(k_boot_lo), 0, nb * PAGE);
	k_frames_init(k_boot_lo, npages);
	for (uint64_t at = SBX_USER_ADDR; at < top;) {
		const struct k_vma *v = k_vma_find(at);
		if (v) {
			at = v->end;
			continue;
		}
		uint64_t e = k_vma_next(at);
		if (e > top)
			e = top;
		if (at < k_boot_lo)
			k_frames_add(at, ((e < k_boot_lo ? e : k_boot_lo) - at) / PAGE);
		if (e > k_boot_hi)
			k_frames_add(at > k_boot_hi ? at : k_boot_hi,
				     (e - (at > k_boot_hi ? at : k_boot_hi)) / PAGE);
		at = e;
	}
	unmap_free(top);
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
	/* The other threads' vCPUs, before the pages this change freed are handed out again. */
	/* Any vCPU that ever ran a thread may hold translations, parked or not. */
	if ((BOOT->flags & SBX_BOOT_SHOOTDOWN) && BOOT->threads_started)
		k_call(SBX_CALL_TLB_SHOOTDOWN, 0, 0);
}

/* Shared file mappings (shmap.c) map a range onto guest-physical memory the monitor placed
 * above RAM (k_pt_map, which makes the levels it lacks, with 4 KiB leaves). The tables needed
 * are counted by the caller beforehand, so that mapping fails only on a table the program
 * broke. */
unsigned k_pt_phys_need(uint64_t va, uint64_t len)
{
	uint64_t first = va & ~(HUGE - 1), last = (va + len - 1) & ~(HUGE - 1);
	return (unsigned)((last - first) / HUGE) + 1 + 2; /* leaf tables, a directory and a PDPT */
}
