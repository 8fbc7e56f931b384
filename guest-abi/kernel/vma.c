/* The program's mappings, kept as Linux keeps its VMAs: page ranges sorted by address, each with
 * its protection and what it is (ELF segment, vDSO, heap, stack, anonymous or file mmap). The
 * memory syscalls keep it (mem.c); every buffer a syscall reads or writes is checked against it
 * before anyone touches it, so a bad pointer is EFAULT as on Linux (the monitor writes guest RAM
 * behind the page tables' back, so they alone would not stop it), and the kernel never faults on
 * a pointer it was given. The kernel's own pages are in no mapping.
 *
 * The table is built from the boot page at first use and lives in the kernel's .bss: snapshots,
 * resets and repeated runs carry it along with the rest of guest RAM. */
#include "kernel.h"

#define PAGE SBX_PAGE_SIZE
#define RWX (SBX_PROT_READ | SBX_PROT_WRITE | SBX_PROT_EXEC)
#define RW (SBX_PROT_READ | SBX_PROT_WRITE)
#define K_MAX_VMAS SBX_MAX_VMAS

static struct k_vma k_vmas[K_MAX_VMAS]; /* sorted, disjoint */
static uint32_t k_nvmas;
static unsigned k_hint; /* the previous lookup's mapping: a program's buffers come in runs */
static int k_vma_ready;

static void vma_push(uint64_t start, uint64_t end, unsigned prot, unsigned ptprot,
		     enum k_vma_kind kind)
{
	struct k_vma *v = &k_vmas[k_nvmas++];
	v->start = start;
	v->end = end;
	v->prot = (uint8_t)prot;
	v->ptprot = (uint8_t)ptprot;
	v->kind = (uint8_t)kind;
	v->flags = 0;
}

/* The layout the monitor set up before the first instruction (sbx_bootinfo, 1.3), taking only
 * what is sorted, disjoint and in user space. */
void k_vma_reset(volatile struct sbx_bootinfo *b)
{
	k_nvmas = 0;
	k_hint = 0;
	/* Where the monitor finds the table for /proc/self/maps (1.4). */
	b->vma_table = (uint64_t)k_vmas;
	b->vma_count = (uint64_t)&k_nvmas;
	uint64_t vend = b->vdso_end;
	if (vend > SBX_VDSO_ADDR && vend <= SBX_VDSO_END)
		vma_push(SBX_VDSO_ADDR, vend, SBX_PROT_READ | SBX_PROT_EXEC, RWX, K_VMA_VDSO);
	uint64_t lo = SBX_USER_ADDR, top = b->mmap_top;
	uint32_t n = b->nsegs < SBX_BOOT_MAX_SEGS ? b->nsegs : SBX_BOOT_MAX_SEGS;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t s = (uint64_t)b->segs[i].page * PAGE;
		uint64_t e = s + (uint64_t)b->segs[i].npages * PAGE;
		if (s < lo || e <= s || e > top)
			continue;
		vma_push(s, e, b->segs[i].prot & RWX, b->segs[i].prot & RWX, K_VMA_ELF);
		lo = e;
	}
	/* The whole stack area is mapped: Linux grows the stack on demand into the same range. */
	uint64_t s = top + PAGE, e = b->stack_top;
	if (s > lo && e > s && e <= b->mem_size)
		vma_push(s, e, b->stack_prot & RWX, RW, K_VMA_STACK);
	k_vma_ready = 1;
}

static inline void ready(void)
{
	if (__builtin_expect(!k_vma_ready, 0))
		k_vma_reset(BOOT);
}

/* Index of the first mapping that ends above addr (k_nvmas if none). */
static unsigned vma_upper(uint64_t addr)
{
	unsigned lo = 0, hi = k_nvmas;
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		if (k_vmas[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int vma_lookup(uint64_t addr, unsigned *idx)
{
	ready();
	unsigned i = k_hint;
	if (i < k_nvmas && k_vmas[i].start <= addr && addr < k_vmas[i].end) {
		*idx = i;
		return 1;
	}
	i = vma_upper(addr);
	if (i == k_nvmas || k_vmas[i].start > addr)
		return 0;
	k_hint = i;
	*idx = i;
	return 1;
}

static int allows(const struct k_vma *v, unsigned need)
{
	if (need & K_WRITE)
		return (v->prot & v->ptprot & SBX_PROT_WRITE) != 0;
	return v->prot != 0; /* on x86 every mapping but PROT_NONE can be read */
}

static uint64_t span_slow(uint64_t p, uint64_t n, unsigned need)
{
	unsigned i;
	if (!n || !vma_lookup(p, &i))
		return 0;
	uint64_t good = p;
	for (;;) {
		const struct k_vma *v = &k_vmas[i];
		if (!allows(v, need))
			break;
		if (v->end - p >= n)
			return n;
		good = v->end;
		if (++i == k_nvmas || k_vmas[i].start != good)
			break;
	}
	return good - p;
}

uint64_t k_user_span(uint64_t p, uint64_t n, unsigned need)
{
	/* The common case, in a few compares: all of it inside the last lookup's mapping. (An
	 * empty table, before the first lookup built it, has no such mapping.) */
	const struct k_vma *v = &k_vmas[k_hint];
	if (k_hint < k_nvmas && p >= v->start && p < v->end && v->end - p >= n && allows(v, need))
		return n;
	return span_slow(p, n, need);
}

int k_user_ok(uint64_t p, uint64_t n, unsigned need)
{
	return n == 0 || k_user_span(p, n, need) == n;
}

long k_user_strlen(uint64_t p, uint64_t max)
{
	uint64_t ok = k_user_span(p, max, K_READ);
	const char *s = (const char *)p;
	for (uint64_t i = 0; i < ok; i++)
		if (!s[i])
			return (long)i;
	return ok < max ? -EFAULT : -ENAMETOOLONG;
}

long k_copy_from_user(void *dst, uint64_t src, uint64_t n)
{
	if (!k_user_ok(src, n, K_READ))
		return -EFAULT;
	k_memcpy(dst, (const void *)src, n);
	return 0;
}

long k_copy_to_user(uint64_t dst, const void *src, uint64_t n)
{
	if (!k_user_ok(dst, n, K_WRITE))
		return -EFAULT;
	k_memcpy((void *)dst, src, n);
	return 0;
}

const struct k_vma *k_vma_find(uint64_t addr)
{
	unsigned i;
	return vma_lookup(addr, &i) ? &k_vmas[i] : NULL;
}

/* Is addr strictly inside a mapping (unmapping or reprotecting there splits it)? */
static int vma_inside(uint64_t addr)
{
	unsigned i = vma_upper(addr);
	return i < k_nvmas && k_vmas[i].start < addr;
}

uint64_t k_vma_next(uint64_t addr)
{
	ready();
	unsigned i = vma_upper(addr);
	if (i < k_nvmas && k_vmas[i].start < addr)
		i++;
	return i < k_nvmas ? k_vmas[i].start : UINT64_MAX;
}

int k_vma_free(uint64_t start, uint64_t end)
{
	ready();
	unsigned i = vma_upper(start);
	return i == k_nvmas || k_vmas[i].start >= end;
}

uint64_t k_vma_gap(uint64_t floor, uint64_t top, uint64_t len)
{
	ready();
	unsigned i = vma_upper(top); /* k_vmas[0, i) end at or below top */
	uint64_t hi = top;
	if (i < k_nvmas && k_vmas[i].start < hi)
		hi = k_vmas[i].start;
	for (;;) {
		uint64_t lo = i ? k_vmas[i - 1].end : 0;
		if (lo < floor)
			lo = floor;
		if (hi > lo && hi - lo >= len)
			return hi - len;
		if (!i || k_vmas[i - 1].start <= floor)
			return 0;
		hi = k_vmas[--i].start;
	}
}

static void vma_remove_at(unsigned i, unsigned n)
{
	for (unsigned j = i; j + n < k_nvmas; j++)
		k_vmas[j] = k_vmas[j + n];
	k_nvmas -= n;
	k_hint = 0;
}

static int vma_insert_at(unsigned i, const struct k_vma *v)
{
	if (k_nvmas == K_MAX_VMAS)
		return -ENOMEM;
	for (unsigned j = k_nvmas; j > i; j--)
		k_vmas[j] = k_vmas[j - 1];
	k_vmas[i] = *v;
	k_nvmas++;
	k_hint = 0;
	return 0;
}

/* Can b follow a as one mapping? */
static int alike(const struct k_vma *a, const struct k_vma *b)
{
	return a->end == b->start && a->prot == b->prot && a->ptprot == b->ptprot &&
	       a->kind == b->kind && a->flags == b->flags;
}

static void merge_with_prev(unsigned i)
{
	if (i > 0 && i < k_nvmas && alike(&k_vmas[i - 1], &k_vmas[i])) {
		k_vmas[i - 1].end = k_vmas[i].end;
		vma_remove_at(i, 1);
	}
}

int k_vma_map(uint64_t start, uint64_t end, unsigned prot, unsigned ptprot, enum k_vma_kind kind,
	      unsigned flags)
{
	ready();
	unsigned i = vma_upper(start);
	if (end <= start || start & (PAGE - 1) || end & (PAGE - 1) ||
	    (i < k_nvmas && k_vmas[i].start < end))
		return -EINVAL;
	struct k_vma v = {.start = start,
			  .end = end,
			  .prot = (uint8_t)(prot & RWX),
			  .ptprot = (uint8_t)(ptprot & RWX),
			  .kind = (uint8_t)kind,
			  .flags = (uint8_t)flags};
	int prev = i > 0 && alike(&k_vmas[i - 1], &v), next = i < k_nvmas && alike(&v, &k_vmas[i]);
	if (prev && next) {
		k_vmas[i - 1].end = k_vmas[i].end;
		vma_remove_at(i, 1);
	} else if (prev) {
		k_vmas[i - 1].end = end;
	} else if (next) {
		k_vmas[i].start = start;
	} else {
		return vma_insert_at(i, &v);
	}
	k_hint = 0;
	return 0;
}

/* Makes addr a boundary: a mapping across it becomes two. The caller made room. */
static void vma_split(uint64_t addr)
{
	unsigned i = vma_upper(addr);
	if (i == k_nvmas || k_vmas[i].start >= addr)
		return;
	struct k_vma hi = k_vmas[i];
	hi.start = addr;
	k_vmas[i].end = addr;
	vma_insert_at(i + 1, &hi);
}

static int vma_split_both(uint64_t start, uint64_t end)
{
	if (k_nvmas + (unsigned)vma_inside(start) + (unsigned)vma_inside(end) > K_MAX_VMAS)
		return -ENOMEM;
	vma_split(start);
	vma_split(end);
	return 0;
}

/* Memory a program can map again, which must read as zero when it does, released here: the
 * heap's (identity-mapped). An mmap'ed range's pages go back when the page tables follow
 * (pt.c), since only they know which pages those are. */
static int releasable(const struct k_vma *v)
{
	return v->kind == K_VMA_HEAP;
}

int k_vma_unmap(uint64_t start, uint64_t end)
{
	ready();
	if (end <= start)
		return 0;
	if (vma_split_both(start, end) < 0)
		return -ENOMEM;
	unsigned i = vma_upper(start), j = i;
	for (; j < k_nvmas && k_vmas[j].start < end; j++)
		if (releasable(&k_vmas[j]))
			k_mem_release(k_vmas[j].start, k_vmas[j].end,
				      k_vmas[j].ptprot & SBX_PROT_WRITE);
	vma_remove_at(i, j - i);
	return 0;
}

/* Is all of [start, end) mapped, without a hole? */
static int vma_covered(uint64_t start, uint64_t end)
{
	uint64_t at = start;
	for (unsigned j = vma_upper(start); at < end; j++) {
		if (j == k_nvmas || k_vmas[j].start > at)
			return 0;
		at = k_vmas[j].end;
	}
	return 1;
}

int k_vma_protect(uint64_t start, uint64_t end, unsigned prot)
{
	ready();
	if (!vma_covered(start, end) || vma_split_both(start, end) < 0)
		return -ENOMEM;
	unsigned i = vma_upper(start), j = i;
	/* The memory syscalls make the page tables follow (pt.c). */
	for (; j < k_nvmas && k_vmas[j].start < end; j++)
		k_vmas[j].prot = k_vmas[j].ptprot = (uint8_t)(prot & RWX);
	/* What became alike merges, from the one after the range down to the first in it. */
	for (unsigned m = j < k_nvmas ? j : j - 1; m >= i && m > 0; m--)
		merge_with_prev(m);
	k_hint = 0;
	return 0;
}

int k_vma_discard(uint64_t start, uint64_t end)
{
	ready();
	if (!vma_covered(start, end))
		return -ENOMEM;
	for (unsigned j = vma_upper(start); j < k_nvmas && k_vmas[j].start < end; j++) {
		if (!releasable(&k_vmas[j]))
			continue;
		uint64_t lo = k_vmas[j].start > start ? k_vmas[j].start : start;
		uint64_t hi = k_vmas[j].end < end ? k_vmas[j].end : end;
		k_mem_release(lo, hi, k_vmas[j].ptprot & SBX_PROT_WRITE);
	}
	return 0;
}
