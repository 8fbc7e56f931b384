/* Memory syscalls: they keep the table of mappings (vma.c), which decides what a syscall may
 * read or write, and the page tables follow it (pt.c): what is unmapped or PROT_NONE is not
 * present, read-only is read-only, only PROT_EXEC executes. Changes of one call cost at most
 * one TLB flush, at its end (k_pt_commit). The heap grows in place (identity-mapped RAM above
 * the image); mmap'ed ranges take their virtual addresses anywhere below SBX_USER_TOP (top
 * down, as Linux does) and their pages from the allocator (phys.c), at mmap or when a
 * PROT_NONE reservation gets a protection. Freed pages are zeroed (or given back to the host),
 * so every free page is zero and a new anonymous mapping needs no work but its entries. */
#include "kernel.h"

#define PROT_GROWSDOWN 0x01000000
#define PROT_GROWSUP 0x02000000
#define MAP_SHARED 0x01
#define MAP_FIXED 0x10
#define MAP_ANONYMOUS 0x20
#define MAP_NORESERVE 0x4000
#define MAP_STACK 0x20000
#define MAP_FIXED_NOREPLACE 0x100000
#define MREMAP_MAYMOVE 1
#define MREMAP_FIXED 2
#define MADV_DONTNEED 4
#define MADV_FREE 8
#define MADV_REMOVE 9
#define PAGE 4096ull
#define RWX (SBX_PROT_READ | SBX_PROT_WRITE | SBX_PROT_EXEC)
/* A split of a 2 MiB page at each end of the range: what one change may need. */
#define PT_PAGES_PER_CALL 2

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
	if (len > K_POPULATE_MAX)
		len = K_POPULATE_MAX;
	/* The monitor backs guest-physical pages: one hint per contiguous run of them (the
	 * allocator hands a mapping's pages out in order: one run, or a few). */
	for (uint64_t done = 0, runs = 0; done < len && runs < 4; runs++) {
		uint64_t g, n = k_gpa_run(start + done, len - done, &g);
		if (!n)
			return;
		uint64_t a[2] = {g, n};
		/* Waiting for it still wins: ~0.3 us a page on the host, then ~1 us a touch,
		 * against ~5 us a touch without it. */
		if (n >= K_POPULATE_MIN && k_call_async(SBX_CALL_POPULATE, a, 2) < 0)
			k_call(SBX_CALL_POPULATE, a, 2);
		done += n;
	}
}

/* May a mapping take [start, end)? Above the break's page, below SBX_USER_TOP, and not over
 * the stack or its guard page. */
static int user_range(uint64_t start, uint64_t end)
{
	return end > start && start >= mmap_floor() && end <= SBX_USER_TOP &&
	       (end <= BOOT->mmap_top || start >= BOOT->stack_top);
}

/* [start, end) out of the table of mappings, and the page tables following. */
static long unmap(uint64_t start, uint64_t end)
{
	long r = k_vma_unmap(start, end);
	k_pt_follow(start, end);
	return r;
}

static int range_free(uint64_t start, uint64_t end)
{
	return user_range(start, end) && k_vma_free(start, end);
}

/* Top-down first fit below SBX_USER_TOP, as Linux's default layout does. */
static uint64_t find_gap(uint64_t len)
{
	return k_vma_gap(mmap_floor(), SBX_USER_TOP, len);
}

/* RAM pages a new mapping of len bytes takes at once (its page tables included), when it
 * gets its pages at once: anything but an anonymous PROT_NONE reservation. */
static uint64_t pages_for(uint64_t len, unsigned prot, int anon)
{
	if (!prot && anon)
		return 0;
	return len / PAGE + len / (1ull << 30) + len / (512 * PAGE) + 6;
}

static int enough(uint64_t pages)
{
	if (pages <= k_frames_nfree())
		return 1;
	BOOT->enomem++;
	return 0;
}

/* The last private file mapping, while its pages still hold the file's bytes. ld.so maps a
 * library whole, read-only, then each segment MAP_FIXED over it from the same fd, with no
 * other syscall between: a segment keeps the pages read already instead of having them read
 * again (for libc, 430 of 910 pages of a dynamic program's start-up copying). Any syscall but
 * mmap forgets it (k_mem_syscall: the file, the fd or the pages may change then), and so do a
 * mapping over part of the range and a segment made writable. */
int k_lastmap_valid;
static struct {
	uint64_t start, end;
	int64_t off;
	int32_t fd;
} k_lastmap;

static void forget_range(uint64_t start, uint64_t end)
{
	if (start < k_lastmap.end && end > k_lastmap.start)
		k_lastmap_valid = 0;
}

/* Is [addr, addr + len) of fd at off the same bytes as the part of the last file mapping at
 * addr, still mapped read-only as one mapping? */
static int same_bytes(uint64_t addr, uint64_t len, int32_t fd, int64_t off)
{
	if (!k_lastmap_valid || fd != k_lastmap.fd || addr < k_lastmap.start ||
	    addr + len > k_lastmap.end || off - k_lastmap.off != (int64_t)(addr - k_lastmap.start))
		return 0;
	const struct k_vma *v = k_vma_find(addr);
	return v && v->kind == K_VMA_FILE && v->prot == SBX_PROT_READ && v->end >= addr + len;
}

/* A segment over the same bytes: only the protection changes, the pages stay. */
static long remap_same(uint64_t addr, uint64_t plen, unsigned prot)
{
	long r = k_vma_unmap(addr, addr + plen);
	if (r == 0)
		r = k_vma_map(addr, addr + plen, prot, prot, K_VMA_FILE, 0);
	if (r == 0 && k_pt_follow(addr, addr + plen) < 0)
		r = -ENOMEM;
	if (r < 0) {
		unmap(addr, addr + plen);
		k_lastmap_valid = 0;
		return r;
	}
	if (prot & SBX_PROT_WRITE)
		k_lastmap_valid = 0;
	return (long)addr;
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
	if (!anon && fd < 0)
		return -EBADF; /* the monitor takes fd -1 for shared anonymous memory */
	/* A read-only shared mapping the monitor cannot make a window of (a virtual file,
	 * MAP_FIXED, no window left) is a copy, as before windows existed: it misses later
	 * changes of the file. */
	int shared_copy = (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) && !(prot & SBX_PROT_WRITE);
	if (!anon && (flags & MAP_SHARED) && !shared_copy) {
		long g = k_shmap_mmap(len, (unsigned)prot & RWX, flags, fd, off);
		if (g == 0)
			anon = 1; /* /dev/zero */
		else if ((g != -ENODEV && g != -ENOMEM) || (prot & SBX_PROT_WRITE))
			return g;
	}
	/* Shared anonymous memory is a window onto a memfd, so that a fork's child shares it;
	 * where the monitor has no room for one (or in a repeated run) it is private, which it
	 * is all the same for one process. */
	if (anon && (flags & MAP_SHARED) && !(flags & (MAP_FIXED | MAP_FIXED_NOREPLACE))) {
		long g = k_shmap_mmap(len, (unsigned)prot & RWX, flags, -1, 0);
		if (g > 0 || (g != 0 && g != -ENODEV && g != -ENOMEM))
			return g;
	}
	if (k_pt_free_pages() < PT_PAGES_PER_CALL)
		return -ENOMEM;
	if (!anon && !(flags & MAP_SHARED) && (flags & MAP_FIXED) &&
	    same_bytes(addr, plen, fd, off))
		return remap_same(addr, plen, (unsigned)prot & RWX);
	/* Anonymous memory takes its pages on first touch only when the program says it need not
	 * be backed (MAP_NORESERVE: ASan's shadow and allocator, V8's reservations): the rest is
	 * accounted strictly, as under Linux's overcommit_memory=2, so that a program that runs
	 * out sees ENOMEM from mmap and brk, not a kill. A touch then costs a page fault in the
	 * guest (entry.S, k_pf_fault), dearer than a page taken at mmap. A thread's stack
	 * (MAP_STACK: glibc's are 8 MiB each, of which a few pages are used) is the same: fifty
	 * threads would otherwise need 400 MiB of RAM. */
	unsigned lazy = anon && (flags & (MAP_NORESERVE | MAP_STACK)) ? K_VMA_LAZY : 0;
	if (!lazy && !enough(pages_for(plen, (unsigned)prot & RWX, anon)))
		return -ENOMEM;
	uint64_t start;
	if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
		if (!user_range(addr, addr + plen))
			return -ENOMEM;
		if ((flags & MAP_FIXED_NOREPLACE) && !range_free(addr, addr + plen))
			return -EEXIST;
		long r = k_vma_unmap(addr, addr + plen);
		if (r < 0)
			return r;
		k_pt_follow(addr, addr + plen); /* the old pages go back: the new ones read zero */
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
	long r = k_vma_map(start, start + plen, (unsigned)prot & RWX, (unsigned)prot & RWX,
			   anon ? K_VMA_ANON : K_VMA_FILE, lazy);
	if (r < 0)
		return r;
	if (k_pt_follow(start, start + plen) < 0) {
		k_vma_unmap(start, start + plen);
		k_pt_follow(start, start + plen);
		return -ENOMEM;
	}
	/* The monitor writes a file's bytes into its pages directly, whatever the protection. */
	forget_range(start, start + plen);
	if (!anon) {
		r = map_fill_from_file(start, len, fd, off);
		if (r < 0) {
			unmap(start, start + plen);
			return r;
		}
		if (!(flags & MAP_SHARED) && !(prot & SBX_PROT_WRITE)) {
			k_lastmap = (__typeof__(k_lastmap)){start, start + plen, off, fd};
			k_lastmap_valid = 1;
		}
	} else if ((prot & RWX) && !lazy) {
		k_populate(start, plen);
	}
	return (long)start;
}

long k_sys_munmap(struct k_frame *f)
{
	uint64_t addr = f->rdi, len = page_up(f->rsi);
	if ((addr & (PAGE - 1)) || len == 0 || addr + len < addr)
		return -EINVAL;
	long r = k_vma_unmap(addr, addr + len);
	if (r == 0) {
		k_pt_follow(addr, addr + len); /* short of page-table pages: stays mapped, zeroed */
		k_shmap_unmapped(addr, addr + len);
	}
	return r;
}

long k_sys_mprotect(struct k_frame *f)
{
	uint64_t addr = f->rdi, len = page_up(f->rsi), prot = f->rdx;
	if ((addr & (PAGE - 1)) || (prot & ~(uint64_t)(RWX | PROT_GROWSDOWN | PROT_GROWSUP)))
		return -EINVAL;
	if (!f->rsi)
		return 0;
	if (!len || addr + len < addr || k_pt_free_pages() < PT_PAGES_PER_CALL)
		return -ENOMEM;
	/* A mapping that takes its pages on first touch needs none now (k_pt_need). */
	if (!enough(k_pt_need(addr, addr + len, (unsigned)prot & RWX)))
		return -ENOMEM;
	long r = k_shmap_protect_ok(addr, addr + len, (unsigned)prot & RWX);
	if (r == 0)
		r = k_vma_protect(addr, addr + len, (unsigned)prot & RWX);
	if (r == 0 && k_pt_follow(addr, addr + len) < 0)
		return -ENOMEM; /* the table says prot, the page tables only partly: rare */
	return r;
}

/* Memory protection keys: the vCPU offers no PKU (CPUID says so), so as Linux on such a CPU,
 * there is no key to allocate, only the default key -1 stands for, and pkey_mprotect with it
 * is mprotect. */
long k_sys_pkey_alloc(struct k_frame *f)
{
	return f->rdi || (f->rsi & ~(uint64_t)3) ? -EINVAL : -ENOSPC;
}
long k_sys_pkey_free(struct k_frame *f)
{
	(void)f;
	return -EINVAL;
}
long k_sys_pkey_mprotect(struct k_frame *f)
{
	return (int32_t)f->r10 == -1 ? k_sys_mprotect(f) : -EINVAL;
}

/* The move of mremap, once [to, to + nlen) is in the table: the pages move with their
 * entries (no byte is copied), then the rest of the old range goes and a longer new one gets
 * pages for its growth. */
static long move(uint64_t old, uint64_t olen, uint64_t to, uint64_t nlen)
{
	if (k_pt_move(old, to, olen < nlen ? olen : nlen) < 0) {
		unmap(to, to + nlen);
		return -ENOMEM;
	}
	unmap(old, old + olen);
	k_pt_follow(to, to + nlen);
	return (long)to;
}

/* mremap works on one anonymous or file mapping, as Linux's works on one VMA. */
long k_sys_mremap(struct k_frame *f)
{
	uint64_t old = f->rdi, olen = page_up(f->rsi), nlen = page_up(f->rdx), flags = f->r10;
	if ((old & (PAGE - 1)) || nlen == 0 || (flags & ~(uint64_t)(MREMAP_MAYMOVE | MREMAP_FIXED)))
		return -EINVAL;
	const struct k_vma *v = k_vma_find(old);
	if (!v || old + olen < old || old + olen > v->end)
		return -EFAULT;
	if (v->kind == K_VMA_SHARED) {
		/* A window onto a file stays where the monitor put it: it may lose its tail in
		 * place (Python's mmap.resize to less), as munmap takes it, not grow or move. */
		if (nlen > olen || (flags & MREMAP_FIXED))
			return -ENOMEM;
		long r = nlen < olen ? k_vma_unmap(old + nlen, old + olen) : 0;
		if (r == 0 && nlen < olen) {
			k_pt_follow(old + nlen, old + olen);
			k_shmap_unmapped(old + nlen, old + olen);
		}
		return r < 0 ? r : (long)old;
	}
	if (v->kind != K_VMA_ANON && v->kind != K_VMA_FILE)
		return -EFAULT;
	unsigned prot = v->prot, vflags = v->flags;
	enum k_vma_kind kind = (enum k_vma_kind)v->kind;
	/* The growth's pages, and page tables for the whole new range (at first touch instead,
	 * for a mapping that takes its pages then). */
	uint64_t more = nlen > olen ? nlen - olen : 0;
	if (!(vflags & K_VMA_LAZY) &&
	    !enough(pages_for(more, prot, kind == K_VMA_ANON) + nlen / (512 * PAGE) + 6))
		return -ENOMEM;
	if (flags & MREMAP_FIXED) {
		uint64_t to = f->r8;
		if (!(flags & MREMAP_MAYMOVE) || (to & (PAGE - 1)) || !user_range(to, to + nlen) ||
		    (to < old + olen && to + nlen > old))
			return -EINVAL;
		long r = k_vma_unmap(to, to + nlen);
		if (r == 0)
			k_pt_follow(to, to + nlen); /* what was there goes */
		if (r == 0)
			r = k_vma_map(to, to + nlen, prot, prot, kind, vflags);
		if (r < 0) {
			k_pt_follow(to, to + nlen);
			return r;
		}
		return move(old, olen, to, nlen);
	}
	if (nlen <= olen) {
		long r = unmap(old + nlen, old + olen);
		return r < 0 ? r : (long)old;
	}
	if (range_free(old + olen, old + nlen)) {
		long r = k_vma_map(old + olen, old + nlen, prot, prot, kind, vflags);
		if (r == 0 && k_pt_follow(old + olen, old + nlen) < 0) {
			unmap(old + olen, old + nlen);
			r = -ENOMEM;
		}
		return r < 0 ? r : (long)old;
	}
	if (!(flags & MREMAP_MAYMOVE))
		return -ENOMEM;
	uint64_t to = find_gap(nlen);
	if (!to)
		return -ENOMEM;
	long r = k_vma_map(to, to + nlen, prot, prot, kind, vflags);
	if (r < 0)
		return r;
	return move(old, olen, to, nlen);
}

long k_sys_madvise(struct k_frame *f)
{
	uint64_t addr = f->rdi, len = page_up(f->rsi);
	if (addr & (PAGE - 1))
		return -EINVAL;
	if ((f->rdx == MADV_DONTNEED || f->rdx == MADV_FREE || f->rdx == MADV_REMOVE) && len) {
		if (addr + len < addr)
			return -EINVAL;
		long r = k_vma_discard(addr, addr + len);
		if (r == 0)
			k_pt_discard(addr, addr + len);
		return r;
	}
	return 0;
}

long k_sys_brk(struct k_frame *f)
{
	uint64_t want = f->rdi, cur = cur_brk();
	if (want < BOOT->brk_start)
		return (long)cur;
	uint64_t oend = page_up(cur), nend = page_up(want);
	uint64_t limit = k_vma_next(oend);
	if (limit > BOOT->mmap_top)
		limit = BOOT->mmap_top;
	if (nend < want || nend > limit) {
		BOOT->enomem++;
		return (long)cur;
	}
	/* The heap is identity-mapped: it grows onto its own pages, which the allocator must
	 * have free (it hands pages out from the top of RAM, far from here). */
	k_pt_free_pages(); /* the allocator exists from here on */
	if (nend > oend) {
		const unsigned rw = SBX_PROT_READ | SBX_PROT_WRITE;
		if (k_frames_claim(oend, (nend - oend) / PAGE) < 0) {
			BOOT->enomem++;
			return (long)cur;
		}
		if (k_vma_map(oend, nend, rw, rw, K_VMA_HEAP, 0) < 0) {
			k_frames_free(oend, (nend - oend) / PAGE, 1);
			BOOT->enomem++;
			return (long)cur;
		}
		if (k_pt_follow(oend, nend) < 0) {
			unmap(oend, nend);
			k_frames_free(oend, (nend - oend) / PAGE, 1);
			BOOT->enomem++;
			return (long)cur;
		}
		k_populate(oend, nend - oend);
	} else if (nend < oend) {
		if (k_vma_unmap(nend, oend) < 0)
			return (long)cur;
		k_pt_follow(nend, oend);
		k_frames_free(nend, (oend - nend) / PAGE, 1); /* released: zero already */
	}
	k_brk = want;
	return (long)want;
}
