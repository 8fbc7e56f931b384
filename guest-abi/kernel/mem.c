/* Memory syscalls are bookkeeping: the monitor mapped all of RAM before the first instruction
 * (page tables never change on these paths), so brk/mmap only hand out address ranges. Freed
 * ranges are zeroed (or given back to the host) when released, so every free byte is zero and
 * a new anonymous mapping needs no work at all. */
#include "kernel.h"

#define PROT_WRITE 2
#define MAP_SHARED 0x01
#define MAP_FIXED 0x10
#define MAP_ANONYMOUS 0x20
#define MAP_FIXED_NOREPLACE 0x100000
#define MREMAP_MAYMOVE 1
#define MREMAP_FIXED 2
#define MADV_DONTNEED 4
#define MADV_FREE 8
#define MADV_REMOVE 9
#define PAGE 4096ull
#define K_MAX_MAPS 2048
/* Releasing this much or more goes back to the host instead of being zeroed in the guest. */
#define K_DISCARD_MIN (256 * 1024ull)

struct k_map {
	uint64_t start, end;
};

static struct k_map k_maps[K_MAX_MAPS]; /* sorted, disjoint, non-adjacent */
static unsigned k_nmaps;
static uint64_t k_brk; /* current break as the program set it */

static uint64_t page_up(uint64_t x)
{
	return (x + PAGE - 1) & ~(PAGE - 1);
}

static uint64_t cur_brk(void)
{
	if (!k_brk)
		k_brk = BOOT->brk_start;
	return k_brk;
}

/* Lowest address mmap may use: above the break's page. */
static uint64_t mmap_floor(void)
{
	uint64_t b = page_up(cur_brk());
	return b > BOOT->mmap_base ? b : BOOT->mmap_base;
}

/* Under PVM a guest's first touch of a page costs ~5 us, but ~1 us when the host page already
 * exists: for big new mappings, ask a polling monitor to back them while we go on. */
#define K_POPULATE_MIN (1024 * 1024ull)
#define K_POPULATE_MAX (64 * 1024 * 1024ull)

static void k_populate(uint64_t start, uint64_t len)
{
	if (len < K_POPULATE_MIN)
		return;
	uint64_t a[2] = {start, len < K_POPULATE_MAX ? len : K_POPULATE_MAX};
	/* Waiting for it still wins: ~0.3 us a page on the host, then ~1 us a touch, against ~5 us
	 * a touch without it. */
	if (k_call_async(SBX_CALL_POPULATE, a, 2) < 0)
		k_call(SBX_CALL_POPULATE, a, 2);
}

static void k_release(uint64_t start, uint64_t end)
{
	if (end <= start)
		return;
	if (end - start >= K_DISCARD_MIN) {
		uint64_t a[2] = {start, end - start};
		if (k_call(SBX_CALL_DISCARD, a, 2) == 0)
			return;
	}
	k_memset((void *)start, 0, end - start);
}

static void map_remove_at(unsigned i)
{
	for (; i + 1 < k_nmaps; i++)
		k_maps[i] = k_maps[i + 1];
	k_nmaps--;
}

static int map_insert_at(unsigned i, uint64_t start, uint64_t end)
{
	if (k_nmaps == K_MAX_MAPS)
		return -ENOMEM;
	for (unsigned j = k_nmaps; j > i; j--)
		k_maps[j] = k_maps[j - 1];
	k_maps[i].start = start;
	k_maps[i].end = end;
	k_nmaps++;
	return 0;
}

/* Adds [start, end), which must be free, merging with neighbours. */
static int map_add(uint64_t start, uint64_t end)
{
	unsigned i = 0;
	while (i < k_nmaps && k_maps[i].start < start)
		i++;
	int merge_prev = i > 0 && k_maps[i - 1].end == start;
	int merge_next = i < k_nmaps && k_maps[i].start == end;
	if (merge_prev && merge_next) {
		k_maps[i - 1].end = k_maps[i].end;
		map_remove_at(i);
	} else if (merge_prev) {
		k_maps[i - 1].end = end;
	} else if (merge_next) {
		k_maps[i].start = start;
	} else {
		return map_insert_at(i, start, end);
	}
	return 0;
}

/* Removes [start, end) from the map list and releases the memory that was mapped there. */
static int map_remove(uint64_t start, uint64_t end)
{
	for (unsigned i = 0; i < k_nmaps;) {
		struct k_map *m = &k_maps[i];
		if (m->end <= start || m->start >= end) {
			i++;
			continue;
		}
		uint64_t lo = m->start > start ? m->start : start;
		uint64_t hi = m->end < end ? m->end : end;
		k_release(lo, hi);
		if (m->start < start && m->end > end) {
			uint64_t old_end = m->end;
			m->end = start;
			if (map_insert_at(i + 1, end, old_end) < 0)
				return -ENOMEM;
			return 0;
		}
		if (m->start < start) {
			m->end = start;
			i++;
		} else if (m->end > end) {
			m->start = end;
			i++;
		} else {
			map_remove_at(i);
		}
	}
	return 0;
}

static int range_free(uint64_t start, uint64_t end)
{
	if (start < mmap_floor() || end > BOOT->mmap_top || end < start)
		return 0;
	for (unsigned i = 0; i < k_nmaps; i++)
		if (k_maps[i].start < end && k_maps[i].end > start)
			return 0;
	return 1;
}

/* Top-down first fit below mmap_top, as Linux's default layout does. */
static uint64_t find_gap(uint64_t len)
{
	uint64_t top = BOOT->mmap_top, floor = mmap_floor();
	for (unsigned n = k_nmaps; n > 0; n--) {
		struct k_map *m = &k_maps[n - 1];
		if (top >= m->end + len && top - len >= floor)
			return top - len;
		top = m->start;
	}
	if (top >= floor + len)
		return top - len;
	return 0;
}

static int map_contains(uint64_t start, uint64_t end)
{
	for (unsigned i = 0; i < k_nmaps; i++)
		if (k_maps[i].start <= start && k_maps[i].end >= end)
			return 1;
	return 0;
}

static long map_fill_from_file(uint64_t addr, uint64_t len, int32_t fd, int64_t off)
{
	uint64_t done = 0;
	while (done < len) {
		long n =
		    k_call_rw(SBX_CALL_PREAD, fd, addr + done, len - done, off + (int64_t)done);
		if (n < 0)
			return n;
		if (n == 0)
			break;
		done += (uint64_t)n;
	}
	return 0;
}

long k_sys_mmap(struct k_frame *f)
{
	uint64_t addr = f->rdi, len = f->rsi, prot = f->rdx, flags = f->r10;
	int32_t fd = (int32_t)f->r8;
	int64_t off = (int64_t)f->r9;
	if (len == 0 || (addr & (PAGE - 1)) || (off & (int64_t)(PAGE - 1)) || off < 0)
		return -EINVAL;
	uint64_t plen = page_up(len);
	if (plen < len)
		return -ENOMEM;
	int anon = (flags & MAP_ANONYMOUS) != 0;
	if (!anon && (flags & MAP_SHARED) && (prot & PROT_WRITE))
		return -ENODEV; /* shared writable file mappings need a page cache we do not have */
	uint64_t start;
	if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
		if (addr + plen < addr || addr < BOOT->mmap_base || addr + plen > BOOT->mmap_top)
			return -ENOMEM;
		if (addr < page_up(cur_brk()))
			return -ENOMEM;
		if ((flags & MAP_FIXED_NOREPLACE) && !range_free(addr, addr + plen))
			return -EEXIST;
		long r = map_remove(addr, addr + plen);
		if (r < 0)
			return r;
		start = addr;
	} else if (addr && range_free(addr, addr + plen)) {
		start = addr;
	} else {
		start = find_gap(plen);
		if (!start) {
			BOOT->enomem++;
			return -ENOMEM;
		}
	}
	long r = map_add(start, start + plen);
	if (r < 0)
		return r;
	if (!anon) {
		r = map_fill_from_file(start, len, fd, off);
		if (r < 0) {
			map_remove(start, start + plen);
			return r;
		}
	} else {
		k_populate(start, plen);
	}
	return (long)start;
}

long k_sys_munmap(struct k_frame *f)
{
	uint64_t addr = f->rdi, len = page_up(f->rsi);
	if ((addr & (PAGE - 1)) || len == 0 || addr + len < addr)
		return -EINVAL;
	return map_remove(addr, addr + len);
}

long k_sys_mprotect(struct k_frame *f)
{
	/* Permissions are fixed when the monitor builds the page tables (text RX, data NX); a
	 * change here is recorded by nobody, which static programs (RELRO) tolerate. */
	if (f->rdi & (PAGE - 1))
		return -EINVAL;
	if (f->rsi && !k_user_ok(f->rdi, f->rsi))
		return -ENOMEM;
	return 0;
}

long k_sys_mremap(struct k_frame *f)
{
	uint64_t old = f->rdi, olen = page_up(f->rsi), nlen = page_up(f->rdx), flags = f->r10;
	if ((old & (PAGE - 1)) || nlen == 0 || (flags & ~(uint64_t)(MREMAP_MAYMOVE | MREMAP_FIXED)))
		return -EINVAL;
	if (!map_contains(old, old + olen))
		return -EFAULT;
	if (flags & MREMAP_FIXED) {
		uint64_t to = f->r8;
		if (!(flags & MREMAP_MAYMOVE) || (to & (PAGE - 1)) || to + nlen < to ||
		    to < mmap_floor() || to + nlen > BOOT->mmap_top ||
		    (to < old + olen && to + nlen > old))
			return -EINVAL;
		map_remove(to, to + nlen);
		long r = map_add(to, to + nlen);
		if (r < 0)
			return r;
		k_memcpy((void *)to, (void *)old, olen < nlen ? olen : nlen);
		map_remove(old, old + olen);
		return (long)to;
	}
	if (nlen <= olen) {
		map_remove(old + nlen, old + olen);
		return (long)old;
	}
	if (range_free(old + olen, old + nlen)) {
		long r = map_add(old + olen, old + nlen);
		return r < 0 ? r : (long)old;
	}
	if (!(flags & MREMAP_MAYMOVE))
		return -ENOMEM;
	uint64_t to = find_gap(nlen);
	if (!to)
		return -ENOMEM;
	long r = map_add(to, to + nlen);
	if (r < 0)
		return r;
	k_memcpy((void *)to, (void *)old, olen);
	map_remove(old, old + olen);
	return (long)to;
}

long k_sys_madvise(struct k_frame *f)
{
	uint64_t addr = f->rdi, len = page_up(f->rsi);
	if (addr & (PAGE - 1))
		return -EINVAL;
	if (f->rdx == MADV_DONTNEED || f->rdx == MADV_FREE || f->rdx == MADV_REMOVE) {
		if (!map_contains(addr, addr + len))
			return -EINVAL;
		k_release(addr, addr + len);
	}
	return 0;
}

long k_sys_brk(struct k_frame *f)
{
	uint64_t want = f->rdi, cur = cur_brk();
	if (want < BOOT->brk_start)
		return (long)cur;
	uint64_t limit = k_nmaps ? k_maps[0].start : BOOT->mmap_top;
	if (page_up(want) > limit || page_up(want) < want) {
		BOOT->enomem++;
		return (long)cur;
	}
	if (page_up(want) < page_up(cur))
		k_release(page_up(want), page_up(cur));
	else
		k_populate(page_up(cur), page_up(want) - page_up(cur));
	k_brk = want;
	return (long)want;
}
