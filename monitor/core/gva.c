/* Guest-virtual addresses: the monitor's own walk of the guest's 4-level page tables, for
 * everything that names the program's memory by the address the program uses (crash reports,
 * core files, the link map, /proc/self/maps). The ring carries guest-physical addresses and
 * stays on sbx_gptr. The tables live in guest RAM and the guest writes them: every table
 * address is checked against RAM, reserved bits end the walk, and four levels bound it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vm.h"

/* Bits of a paging-structure entry that must be zero whatever MAXPHYADDR is: 51:52 would be
 * above any guest RAM anyway (checked below), so only the huge-page alignment bits remain. */
#define PS_1G_RSVD 0x3fffe000ull /* bits 29:13 of a 1 GiB leaf */
#define PS_2M_RSVD 0x1fe000ull	 /* bits 20:13 of a 2 MiB leaf */

/* Set on the vCPU thread, read by whichever thread serves the ring (/proc/self/maps). */
uint64_t sbx_guest_root(struct sbx_vm *vm)
{
	uint64_t cr3 = __atomic_load_n(&vm->proc.vcpu.cr3, __ATOMIC_RELAXED);
	return cr3 ? cr3 : SBX_PT_ADDR;
}

uint64_t sbx_vcpu0_root(struct sbx_vm *vm)
{
	return vm->proc.vcpu.home_root ? vm->proc.vcpu.home_root : SBX_PT_ADDR;
}

void sbx_set_guest_root(struct sbx_vm *vm, uint64_t cr3)
{
	__atomic_store_n(&vm->proc.vcpu.cr3, cr3, __ATOMIC_RELAXED);
}

int sbx_gva_translate(struct sbx_vm *vm, uint64_t root, uint64_t va, unsigned access, uint64_t *gpa,
		      uint64_t *span)
{
	/* Canonical: bits 63:47 all equal. */
	if ((uint64_t)((int64_t)(va << 16) >> 16) != va)
		return -EFAULT;
	uint64_t table = root & SBX_PTE_ADDR, rights = SBX_PTE_W | SBX_PTE_U, nx = 0;
	for (int level = 3; level >= 0; level--) {
		unsigned shift = 12 + 9 * (unsigned)level;
		uint64_t e;
		if (sbx_copy_from_guest(vm, &e, table + ((va >> shift) & 511) * 8, sizeof(e)) < 0)
			return -EFAULT;
		if (!(e & SBX_PTE_P))
			return -EFAULT;
		rights &= e;
		nx |= e & SBX_PTE_NX;
		int leaf = level == 0 || (e & SBX_PTE_PS);
		if (leaf && level == 3)
			return -EFAULT; /* PS is reserved in a PML4 entry */
		if (leaf && ((level == 2 && (e & PS_1G_RSVD)) || (level == 1 && (e & PS_2M_RSVD))))
			return -EFAULT;
		if (!leaf) {
			table = e & SBX_PTE_ADDR;
			continue;
		}
		if (((access & SBX_GVA_WRITE) && !(rights & SBX_PTE_W)) ||
		    ((access & SBX_GVA_USER) && !(rights & SBX_PTE_U)) ||
		    ((access & SBX_GVA_EXEC) && nx))
			return -EFAULT;
		uint64_t size = 1ull << shift, mask = size - 1;
		uint64_t base = e & SBX_PTE_ADDR & ~mask;
		*gpa = base | (va & mask);
		*span = size - (va & mask);
		/* The page must be RAM: a leaf pointing at MMIO (the doorbell) or past the end
		 * is not memory the monitor can read. */
		if (*gpa >= vm->proc.mem.size)
			return -EFAULT;
		if (*span > vm->proc.mem.size - *gpa)
			*span = vm->proc.mem.size - *gpa;
		return 0;
	}
	return -EFAULT;
}

int sbx_gva_run(struct sbx_vm *vm, uint64_t root, uint64_t va, uint64_t len, uint64_t *gpa,
		uint64_t *run)
{
	uint64_t span;
	int r = sbx_gva_translate(vm, root, va, 0, gpa, &span);
	if (r < 0)
		return r;
	*run = span;
	uint64_t next, nspan;
	while (*run < len && va + *run > va &&
	       sbx_gva_translate(vm, root, va + *run, 0, &next, &nspan) == 0 && next == *gpa + *run)
		*run += nspan;
	if (*run > len)
		*run = len;
	return 0;
}

/* Copies len bytes at va, page by page; out is the host side, to_guest the direction. */
static int gva_copy(struct sbx_vm *vm, uint64_t root, uint64_t va, void *host, uint64_t len,
		    int to_guest)
{
	uint8_t *h = host;
	while (len) {
		uint64_t gpa, span;
		if (sbx_gva_translate(vm, root, va, to_guest ? SBX_GVA_WRITE : 0, &gpa, &span) < 0)
			return -EFAULT;
		uint64_t n = span < len ? span : len;
		int r = to_guest ? sbx_copy_to_guest(vm, gpa, h, n)
				 : sbx_copy_from_guest(vm, h, gpa, n);
		if (r < 0)
			return r;
		h += n;
		va += n;
		len -= n;
		if (len && va == 0)
			return -EFAULT; /* wrapped around the address space */
	}
	return 0;
}

int sbx_gva_read(struct sbx_vm *vm, uint64_t root, uint64_t va, void *buf, uint64_t len)
{
	return gva_copy(vm, root, va, buf, len, 0);
}

int sbx_gva_write(struct sbx_vm *vm, uint64_t root, uint64_t va, const void *buf, uint64_t len)
{
	return gva_copy(vm, root, va, (void *)buf, len, 1);
}

uint64_t sbx_gva_read_max(struct sbx_vm *vm, uint64_t root, uint64_t va, void *buf, uint64_t len)
{
	uint8_t *h = buf;
	uint64_t done = 0;
	while (done < len) {
		uint64_t gpa, span;
		if (sbx_gva_translate(vm, root, va + done, 0, &gpa, &span) < 0)
			break;
		uint64_t n = span < len - done ? span : len - done;
		if (sbx_copy_from_guest(vm, h + done, gpa, n) < 0)
			break;
		done += n;
	}
	return done;
}

int sbx_gva_string(struct sbx_vm *vm, uint64_t root, uint64_t va, char *out, size_t outlen)
{
	if (!outlen)
		return -EINVAL;
	for (size_t got = 0; got < outlen;) {
		uint64_t gpa, span;
		const char *p;
		if (sbx_gva_translate(vm, root, va + got, 0, &gpa, &span) < 0 ||
		    !(p = sbx_gptr_ro(vm, gpa, span < outlen - got ? span : outlen - got))) {
			out[got] = 0;
			return -EFAULT;
		}
		size_t n = span < outlen - got ? (size_t)span : outlen - got;
		const char *z = memchr(p, 0, n);
		memcpy(out + got, p, z ? (size_t)(z - p) + 1 : n);
		if (z)
			return 0;
		got += n;
	}
	out[outlen - 1] = 0;
	return -ENAMETOOLONG;
}

/* The kernel's table of mappings (the boot page's vma_table, 1.4), copied out once and cut
 * to the entries that are sorted, disjoint, page aligned and in user space. The table is the
 * kernel's data, identity-mapped: its addresses are guest-physical. */
unsigned sbx_guest_vmas(struct sbx_vm *vm, struct sbx_vma **out)
{
	*out = NULL;
	const volatile struct sbx_bootinfo *b = sbx_gptr_ro(vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	if (!b)
		return 0;
	uint64_t table = b->vma_table, count_at = b->vma_count;
	uint32_t n;
	if (!table || sbx_copy_from_guest(vm, &n, count_at, sizeof(n)) < 0)
		return 0;
	if (n > SBX_MAX_VMAS)
		n = SBX_MAX_VMAS;
	struct sbx_vma *v = calloc(n ? n : 1, sizeof(*v));
	if (!v || (n && sbx_copy_from_guest(vm, v, table, (uint64_t)n * sizeof(*v)) < 0)) {
		free(v);
		return 0;
	}
	unsigned kept = 0;
	uint64_t prev_end = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (v[i].start >= v[i].end || ((v[i].start | v[i].end) & (SBX_PAGE_SIZE - 1)) ||
		    v[i].start < prev_end || v[i].end > (1ull << 47))
			continue;
		prev_end = v[i].end;
		v[kept++] = v[i];
	}
	*out = v;
	return kept;
}

/* One table of the walk, mapping from va: entries whose rights so far (W, and U where the
 * program runs at CPL3) let the program write, inside its half [SBX_USER_ADDR, SBX_USER_TOP).
 * Depth-bounded, so a table that names itself ends; *budget bounds the entries and pages
 * looked at, since tables that all name one table would multiply them. */
static int each_writable(struct sbx_vm *vm, uint64_t table, int level, uint64_t va, uint64_t need,
			 int (*fn)(void *ctx, uint64_t gpa), void *ctx, uint64_t *budget)
{
	unsigned shift = 12 + 9 * (unsigned)level;
	for (unsigned i = 0; i < 512; i++) {
		uint64_t lo = va + ((uint64_t)i << shift), hi = lo + (1ull << shift);
		if (hi <= SBX_USER_ADDR || lo >= SBX_USER_TOP)
			continue;
		if (!*budget)
			return -E2BIG;
		(*budget)--;
		uint64_t e;
		if (sbx_copy_from_guest(vm, &e, (table & SBX_PTE_ADDR) + i * 8, sizeof(e)) < 0)
			return 0;
		if ((e & need) != need)
			continue;
		if (level > 0 && !(level < 3 && (e & SBX_PTE_PS))) {
			int r = each_writable(vm, e, level - 1, lo, need, fn, ctx, budget);
			if (r)
				return r;
			continue;
		}
		uint64_t base = e & SBX_PTE_ADDR & ~((1ull << shift) - 1);
		for (uint64_t p = 0; p < (1ull << shift); p += SBX_PAGE_SIZE) {
			if (base + p + SBX_PAGE_SIZE > vm->proc.mem.size)
				break;
			if (lo + p < SBX_USER_ADDR || lo + p >= SBX_USER_TOP)
				continue;
			if (!*budget)
				return -E2BIG;
			(*budget)--;
			int r = fn(ctx, base + p);
			if (r)
				return r;
		}
	}
	return 0;
}

int sbx_gva_each_writable(struct sbx_vm *vm, uint64_t root, int (*fn)(void *ctx, uint64_t gpa),
			  void *ctx)
{
	/* Every page mapped four times over, and as many table entries: far more than a
	 * program's own tables hold. */
	uint64_t budget = vm->proc.mem.size / SBX_PAGE_SIZE * 8 + (1u << 20);
	uint64_t need = SBX_PTE_P | SBX_PTE_W | (vm->proc.vcpu.cpl == 0 ? 0 : SBX_PTE_U);
	return each_writable(vm, root, 3, 0, need, fn, ctx, &budget);
}
