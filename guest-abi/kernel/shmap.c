/* Shared file mappings: the monitor maps the file MAP_SHARED on the host and makes that
 * mapping guest-physical memory in a window above RAM (SBX_CALL_MMAP_SHARED); the program's
 * pages are the window itself (VA == GPA), so its loads and stores reach the host page cache,
 * coherent with read() and write() of the file, in the sandbox and outside. The table of
 * mappings holds them as K_VMA_SHARED: never zeroed on release (they are the file), and
 * outside the mmap area, so gap searches and MAP_FIXED never meet them. This table keeps what
 * the monitor needs back: where each window starts, how long it is, whether it may be made
 * writable. */
#include "kernel.h"

#define PAGE SBX_PAGE_SIZE
#define MAP_FIXED 0x10
#define MAP_FIXED_NOREPLACE 0x100000
#define MS_ASYNC 1
#define MS_INVALIDATE 2
#define MS_SYNC 4
#define K_MAX_SHMAPS 64 /* the monitor's SBX_SHMAP_MAX */

static struct {
	uint64_t start, end; /* end 0: a free entry */
	int may_write;
} k_shmaps[K_MAX_SHMAPS];
static unsigned k_nshmaps; /* entries in use: most programs have none */

long k_shmap_mmap(uint64_t len, unsigned prot, uint64_t flags, int32_t fd, int64_t off)
{
	/* A window's address is the monitor's to choose. */
	if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE))
		return -EINVAL;
	unsigned slot = 0;
	while (slot < K_MAX_SHMAPS && k_shmaps[slot].end)
		slot++;
	if (slot == K_MAX_SHMAPS)
		return -ENOMEM;
	uint64_t plen = (len + PAGE - 1) & ~(PAGE - 1);
	uint64_t a[4] = {(uint64_t)(int64_t)fd, (uint64_t)off, len, prot};
	long g = k_call(SBX_CALL_MMAP_SHARED, a, 4);
	if (g <= 0)
		return g;
	/* The low bit says the file is open for writing on a writable mount. */
	uint64_t start = (uint64_t)g & ~(PAGE - 1);
	int may_write = (int)((uint64_t)g & 1);
	long r = -ENOMEM;
	if (k_pt_free_pages() >= k_pt_phys_need(start, plen) + 2 &&
	    (r = k_vma_map(start, start + plen, prot, prot, K_VMA_SHARED, 0)) == 0) {
		r = k_pt_map(start, start, plen, prot);
		if (r < 0) {
			k_vma_unmap(start, start + plen);
			k_pt_follow(start, start + plen);
		}
	}
	if (r < 0) {
		uint64_t u = start;
		k_call(SBX_CALL_MUNMAP_SHARED, &u, 1);
		return r;
	}
	k_nshmaps++;
	k_shmaps[slot].start = start;
	k_shmaps[slot].end = start + plen;
	k_shmaps[slot].may_write = may_write;
	return (long)start;
}

int k_shmap_holds(uint64_t addr)
{
	for (unsigned i = 0; k_nshmaps && i < K_MAX_SHMAPS; i++)
		if (k_shmaps[i].end && addr >= k_shmaps[i].start && addr < k_shmaps[i].end)
			return 1;
	return 0;
}

/* Is any page of [start, end) still a shared mapping? */
static int any_mapped(uint64_t start, uint64_t end)
{
	for (uint64_t at = start; at < end;) {
		const struct k_vma *v = k_vma_find(at);
		if (v)
			return 1;
		at = k_vma_next(at);
	}
	return 0;
}

void k_shmap_unmapped(uint64_t start, uint64_t end)
{
	for (unsigned i = 0; i < K_MAX_SHMAPS; i++) {
		if (!k_shmaps[i].end || k_shmaps[i].end <= start || k_shmaps[i].start >= end ||
		    any_mapped(k_shmaps[i].start, k_shmaps[i].end))
			continue;
		uint64_t u = k_shmaps[i].start;
		k_call(SBX_CALL_MUNMAP_SHARED, &u, 1);
		k_shmaps[i].end = 0;
		k_nshmaps--;
	}
}

long k_shmap_protect_ok(uint64_t start, uint64_t end, unsigned prot)
{
	if (!(prot & SBX_PROT_WRITE))
		return 0;
	for (unsigned i = 0; i < K_MAX_SHMAPS; i++)
		if (k_shmaps[i].end && k_shmaps[i].end > start && k_shmaps[i].start < end &&
		    !k_shmaps[i].may_write)
			return -EACCES;
	return 0;
}

long k_sys_msync(struct k_frame *f)
{
	uint64_t addr = f->rdi, len = (f->rsi + PAGE - 1) & ~(PAGE - 1), flags = f->rdx;
	if ((addr & (PAGE - 1)) || (flags & ~(uint64_t)(MS_ASYNC | MS_INVALIDATE | MS_SYNC)) ||
	    ((flags & MS_ASYNC) && (flags & MS_SYNC)))
		return -EINVAL;
	if (addr + len < addr)
		return -ENOMEM;
	long ret = 0;
	for (uint64_t at = addr; at < addr + len;) {
		const struct k_vma *v = k_vma_find(at);
		if (!v) {
			ret = -ENOMEM; /* as Linux: a hole is ENOMEM, the rest is still synced */
			at = k_vma_next(at);
			continue;
		}
		uint64_t e = v->end < addr + len ? v->end : addr + len;
		if (v->kind == K_VMA_SHARED && (flags & MS_SYNC)) {
			uint64_t a[2] = {at, e - at};
			long r = k_call(SBX_CALL_MSYNC, a, 2);
			if (r < 0)
				ret = r;
		}
		at = e;
	}
	return ret;
}
