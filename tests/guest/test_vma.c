/* The guest kernel's table of mappings (guest-abi/kernel/vma.c), compiled for the host: built
 * from a boot page, kept by map/unmap/protect, and the user-buffer checks every syscall makes.
 * No KVM: the kernel's few dependencies are stubbed here. */
#include <criterion/criterion.h>
#include <string.h>
#include <sys/mman.h>

#include "../../guest-abi/kernel/vma.c"

void *k_memcpy(void *d, const void *s, size_t n)
{
	return memcpy(d, s, n);
}

/* What k_vma_unmap/k_vma_discard gave back, in order. */
static uint64_t released[16][2];
static unsigned nreleased;

void k_mem_release(uint64_t start, uint64_t end, int writable)
{
	(void)writable;
	cr_assert_lt(nreleased, 16);
	released[nreleased][0] = start;
	released[nreleased][1] = end;
	nreleased++;
}

#define P 0x1000ull
#define R SBX_PROT_READ
#define W SBX_PROT_WRITE
#define X SBX_PROT_EXEC
#define MEM (256ull << 20)
#define GUARD (MEM - (8ull << 20) - P) /* mmap_top: the stack's guard page */

static struct sbx_bootinfo boot;

/* A static program: text RX, rodata R, data RW; then the heap; a 8 MiB stack at the top. */
static void setup(void)
{
	memset(&boot, 0, sizeof(boot));
	boot.mem_size = MEM;
	boot.brk_start = 0x500000;
	boot.mmap_base = 0x500000;
	boot.mmap_top = GUARD;
	boot.stack_top = MEM;
	boot.stack_prot = R | W;
	boot.vdso_end = SBX_VDSO_ADDR + 2 * P;
	const struct sbx_boot_seg segs[] = {
	    {0x400, 0x10, R | X}, {0x410, 0x8, R}, {0x418, 0x8, R | W}};
	memcpy(boot.segs, segs, sizeof(segs));
	boot.nsegs = 3;
	k_vma_reset(&boot);
	nreleased = 0;
}

TestSuite(vma, .init = setup);

static int writable(uint64_t p, uint64_t n)
{
	return k_user_ok(p, n, K_WRITE);
}

static int readable(uint64_t p, uint64_t n)
{
	return k_user_ok(p, n, K_READ);
}

Test(vma, the_boot_layout_is_the_program_and_nothing_of_the_kernel)
{
	cr_expect(readable(0x400000, 0x10000) && !writable(0x400000, 1), "text is RX");
	cr_expect(readable(0x410000, 0x8000) && !writable(0x410000, 1), "rodata is R");
	cr_expect(writable(0x418000, 0x8000), "data is RW");
	cr_expect(readable(0x400000, 0x20000), "one buffer across text, rodata and data");
	cr_expect(!writable(0x417ff8, 16), "rodata then data: not all writable");
	cr_expect_eq(k_user_span(0x41fff8, 16, K_WRITE), 8, "data ends where the heap would");
	cr_expect(readable(SBX_VDSO_ADDR, 2 * P) && !writable(SBX_VDSO_ADDR, 1), "vDSO is RX");
	cr_expect(!readable(SBX_VDSO_ADDR + 2 * P, 1), "past the vDSO image");
	cr_expect(writable(GUARD + P, MEM - GUARD - P), "the stack");
	cr_expect(!readable(GUARD, 1) && !readable(GUARD - P, 1), "the guard and mmap area");
	cr_expect(!readable(MEM, 1) && !readable(MEM - 8, 16), "beyond RAM");
	static const uint64_t kernel[] = {0,
					  0x40,
					  SBX_GDT_ADDR,
					  SBX_BOOTINFO_ADDR,
					  SBX_RING_ADDR,
					  SBX_EXEC_ADDR,
					  SBX_PT_ADDR,
					  SBX_KSTACK_ADDR,
					  SBX_KERNEL_ADDR,
					  SBX_DOORBELL_VA};
	for (size_t i = 0; i < sizeof(kernel) / sizeof(kernel[0]); i++)
		cr_expect(!readable(kernel[i], 1), "kernel page 0x%llx",
			  (unsigned long long)kernel[i]);
	cr_expect(!readable(UINT64_MAX - 3, 8) && !readable(0x418000, UINT64_MAX), "wraps");
	cr_expect(readable(0x40, 0) && writable(0x400000, 0), "nothing is always fine");
}

Test(vma, a_boot_page_with_bad_entries_gives_only_the_good_ones)
{
	boot.nsegs = 1000;	   /* more than there can be: the rest are zero, hence skipped */
	boot.segs[1].page = 0x100; /* below SBX_USER_ADDR */
	boot.segs[2].npages = 0;   /* empty */
	boot.segs[3] = (struct sbx_boot_seg){0x420, 1, R | W | X | 0xf0};
	boot.vdso_end = SBX_VDSO_END + P; /* too long */
	k_vma_reset(&boot);
	cr_expect(readable(0x400000, 0x10000));
	cr_expect(!readable(0x100000, 1) && !readable(0x418000, 1));
	cr_expect(writable(0x420000, P));
	cr_expect_eq(k_vma_find(0x420000)->prot, R | W | X, "unknown bits dropped");
	cr_expect(!readable(SBX_VDSO_ADDR, 1));
}

Test(vma, mappings_merge_split_and_keep_their_kind)
{
	cr_assert_eq(k_vma_map(0x1000000, 0x1002000, R | W, R | W, K_VMA_ANON, 0), 0);
	cr_assert_eq(k_vma_map(0x1002000, 0x1003000, R | W, R | W, K_VMA_ANON, 0), 0);
	const struct k_vma *v = k_vma_find(0x1001000);
	cr_assert(v);
	cr_expect(v->start == 0x1000000 && v->end == 0x1003000, "merged with its neighbour");
	cr_expect_eq(k_vma_map(0x1001000, 0x1004000, R, R | W, K_VMA_ANON, 0), -EINVAL, "overlap");
	cr_assert_eq(k_vma_map(0x1003000, 0x1004000, R | W, R | W, K_VMA_FILE, 0), 0);
	cr_expect_eq(k_vma_find(0x1003000)->start, 0x1003000, "another kind: its own mapping");
	cr_expect(writable(0x1000000, 0x4000), "one buffer across both");

	cr_assert_eq(k_vma_protect(0x1001000, 0x1002000, R), 0);
	cr_expect(!writable(0x1001000, 1) && writable(0x1000000, P) && writable(0x1002000, P));
	cr_expect_eq(k_user_span(0x1000800, 0x3000, K_WRITE), 0x800);
	cr_assert_eq(k_vma_protect(0x1001000, 0x1002000, R | W), 0);
	v = k_vma_find(0x1001000);
	cr_expect(v->start == 0x1000000 && v->end == 0x1003000, "merged back: %llx-%llx",
		  (unsigned long long)v->start, (unsigned long long)v->end);

	cr_expect_eq(k_vma_protect(0x1003000, 0x1006000, R), -ENOMEM, "a hole");
	cr_expect(writable(0x1003000, P), "nothing changed");

	cr_assert_eq(k_vma_unmap(0x1001000, 0x1002000), 0);
	cr_expect(!readable(0x1001000, 1) && writable(0x1000000, P) && writable(0x1002000, P));
	/* An mmap'ed range's pages go back when the page tables follow (pt.c), not here. */
	cr_expect_eq(nreleased, 0);
	cr_expect_eq(k_user_span(0x1000000, 0x3000, K_READ), P, "stops at the hole");
}

Test(vma, the_program_may_unmap_and_reprotect_its_image_but_its_memory_is_not_released)
{
	cr_assert_eq(k_vma_protect(0x418000, 0x419000, R), 0); /* RELRO */
	cr_expect(!writable(0x418000, 1) && writable(0x419000, 1));
	cr_assert_eq(k_vma_unmap(0x410000, 0x412000), 0);
	cr_expect(!readable(0x410000, 1) && readable(0x412000, 1));
	cr_expect_eq(nreleased, 0, "text and data are not handed out again");
	/* Made writable by mprotect: the page tables follow (pt.c), so buffers may go there. */
	cr_assert_eq(k_vma_protect(0x400000, 0x401000, R | W | X), 0);
	cr_expect(writable(0x400000, 1) && readable(0x400000, 1));
}

Test(vma, discard_releases_heap_and_mmap_memory_only)
{
	cr_assert_eq(k_vma_map(0x500000, 0x502000, R | W, R | W, K_VMA_HEAP, 0), 0);
	cr_expect_eq(k_vma_discard(0x418000, 0x502000), -ENOMEM, "a hole at 0x420000");
	cr_assert_eq(k_vma_discard(0x501000, 0x502000), 0);
	cr_expect(nreleased == 1 && released[0][0] == 0x501000 && released[0][1] == 0x502000);
	cr_expect(writable(0x500000, 0x2000), "still mapped");
	cr_assert_eq(k_vma_discard(0x418000, 0x420000), 0);
	cr_expect_eq(nreleased, 1, "data is not released");
}

Test(vma, gaps_are_found_top_down_between_mappings)
{
	uint64_t floor = 0x600000, top = GUARD;
	cr_expect_eq(k_vma_gap(floor, top, 0x3000), top - 0x3000);
	cr_assert_eq(k_vma_map(top - 0x3000, top, R | W, R | W, K_VMA_ANON, 0), 0);
	cr_assert_eq(k_vma_map(top - 0x6000, top - 0x4000, R, R | W, K_VMA_FILE, 0), 0);
	cr_expect_eq(k_vma_gap(floor, top, P), top - 0x4000, "the one-page hole");
	cr_expect_eq(k_vma_gap(floor, top, 0x2000), top - 0x8000, "below both");
	cr_expect_eq(k_vma_gap(floor, floor + 0x1000, 0x2000), 0, "no room");
	cr_expect(k_vma_free(top - 0x4000, top - 0x3000) && !k_vma_free(top - 0x5000, top));
	cr_expect_eq(k_vma_next(0x500000), top - 0x6000);
	cr_expect_eq(k_vma_next(GUARD), GUARD + P, "the stack");
	cr_expect_eq(k_vma_next(MEM), UINT64_MAX);
}

Test(vma, a_full_table_refuses_splits_and_changes_nothing)
{
	uint64_t a = 0x1000000;
	while (k_nvmas < K_MAX_VMAS) {
		unsigned kind = k_nvmas % 2 ? K_VMA_ANON : K_VMA_FILE; /* never merged */
		cr_assert_eq(k_vma_map(a, a + 2 * P, R | W, R | W, kind, 0), 0);
		a += 2 * P;
	}
	cr_expect_eq(k_vma_map(a + P, a + 2 * P, R, R | W, K_VMA_ANON, 0), -ENOMEM);
	cr_expect_eq(k_vma_protect(0x1000000 + P, 0x1000000 + 2 * P, R), -ENOMEM);
	cr_expect_eq(k_vma_unmap(0x1000000 + P, 0x1000000 + 2 * P), -ENOMEM);
	cr_expect(writable(0x1000000, 2 * P) && nreleased == 0, "nothing changed");
	unsigned kind = k_vma_find(a - P)->kind;
	cr_expect_eq(k_vma_map(a, a + P, R | W, R | W, kind, 0), 0, "a merge needs no entry");
	cr_expect_eq(k_vma_unmap(0x1000000, 0x1000000 + 2 * P), 0, "a whole one needs none");
}

Test(vma, strings_are_measured_up_to_the_first_byte_that_cannot_be_read)
{
	char *m = mmap((void *)0x7e0000000000, 2 * P, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (m == MAP_FAILED)
		cr_skip_test("no host memory at 0x7e0000000000");
	uint64_t a = (uint64_t)m;
	cr_assert_eq(k_vma_map(a, a + P, R, R, K_VMA_ANON, 0), 0);
	cr_assert_eq(k_vma_map(a + P, a + 2 * P, R | W, R | W, K_VMA_ANON, 0), 0);
	memset(m, 'x', 2 * P);
	strcpy(m + P + 10, "end");
	cr_expect_eq(k_user_strlen(a + P - 5, 4096), 18, "across two mappings");
	cr_expect_eq(k_user_strlen(a, 4096), -ENAMETOOLONG);
	cr_assert_eq(k_vma_unmap(a + P, a + 2 * P), 0);
	cr_expect_eq(k_user_strlen(a + P - 5, 4096), -EFAULT);
	char buf[8];
	cr_expect_eq(k_copy_from_user(buf, a + P - 4, 4), 0);
	cr_expect_eq(k_copy_from_user(buf, a + P - 4, 8), -EFAULT);
	cr_expect_eq(k_copy_to_user(a, "ab", 2), -EFAULT, "read-only");
	munmap(m, 2 * P);
}
