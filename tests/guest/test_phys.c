/* The guest kernel's page allocator (guest-abi/kernel/phys.c), compiled for the host: pages are
 * handed out from the top down, a heap's claim fails on a page given away, and what is freed
 * comes back. No KVM: the bitmap is a host buffer (the kernel reaches it by its guest-physical
 * address, which is the host address here, with no map of RAM). */
#include <criterion/criterion.h>
#include <string.h>

#include "../../guest-abi/kernel/phys.c"

int k_physmap_on;
static unsigned ncalls;

long k_call(uint32_t nr, const uint64_t *args, unsigned nargs)
{
	(void)nr, (void)args, (void)nargs;
	ncalls++;
	return -1;
}

void *k_memset(void *d, int c, size_t n)
{
	return memset(d, c, n);
}

#define P SBX_PAGE_SIZE
static uint64_t bitmap[4]; /* 256 pages */

static void setup(void)
{
	memset(bitmap, 0, sizeof(bitmap));
	k_frames_init((uint64_t)bitmap, 256);
	k_frames_add(16 * P, 8);   /* pages 16..23 */
	k_frames_add(100 * P, 28); /* pages 100..127 */
}

TestSuite(phys, .init = setup);

Test(phys, pages_come_from_the_top_down_and_run_out)
{
	cr_expect_eq(k_frames_nfree(), 36);
	cr_expect_eq(k_frame_alloc(), 127 * P);
	cr_expect_eq(k_frame_alloc(), 126 * P, "the next one down: a mapping's pages in order");
	for (int i = 0; i < 26; i++)
		k_frame_alloc();
	cr_expect_eq(k_frame_alloc(), 23 * P, "past the gap between the two ranges");
	for (int i = 0; i < 7; i++)
		cr_expect_neq(k_frame_alloc(), 0);
	cr_expect_eq(k_frames_nfree(), 0);
	cr_expect_eq(k_frame_alloc(), 0, "none left");
}

Test(phys, freed_pages_come_back_first)
{
	uint64_t a = k_frame_alloc(), b = k_frame_alloc();
	k_frames_free(a, 1, 1);
	cr_expect_eq(k_frames_nfree(), 35);
	cr_expect_eq(k_frame_alloc(), a, "the highest free page again");
	k_frames_free(b, 1, 1);
	k_frames_free(a, 1, 1);
	cr_expect_eq(k_frames_nfree(), 36);
	k_frames_free(a, 1, 1);
	cr_expect_eq(k_frames_nfree(), 36, "freeing a free page changes nothing");
	cr_expect_eq(ncalls, 0, "pages freed as zero are neither zeroed nor given to the host");
}

Test(phys, the_heap_claims_only_free_pages)
{
	cr_expect_eq(k_frames_claim(16 * P, 4), 0);
	cr_expect_eq(k_frames_nfree(), 32);
	cr_expect_eq(k_frames_claim(18 * P, 4), -ENOMEM, "two of them are the heap's already");
	cr_expect_eq(k_frames_nfree(), 32, "nothing taken");
	cr_expect_eq(k_frames_claim(24 * P, 1), -ENOMEM, "never free");
	cr_expect_eq(k_frames_claim(255 * P, 2), -ENOMEM, "beyond RAM");
	k_frames_free(16 * P, 4, 1);
	cr_expect_eq(k_frames_nfree(), 36);
}

Test(phys, freeing_zeroes_small_runs_here)
{
	static uint8_t page[2 * 4096] __attribute__((aligned(4096)));
	k_fpages = 1ull << 40; /* the buffer's address as a page number must fit */
	memset(page, 0xaa, sizeof(page));
	k_frames_zero((uint64_t)page, 2);
	cr_expect(page[0] == 0 && page[sizeof(page) - 1] == 0);
	cr_expect_eq(ncalls, 0, "8 KiB is zeroed, not given to the host");
}

/* A buffer the monitor addresses as one block: the highest run of free pages long enough,
 * past holes a loader left; none when no run is that long. */
Test(phys, a_run_of_pages_skips_the_holes)
{
	k_frames_claim(120 * P, 1); /* a hole: 100..119 and 121..127 stay free */
	cr_expect_eq(k_frames_run(7), 121 * P, "121..127 fit 7");
	cr_expect_eq(k_frames_run(8), 112 * P, "8 need the range below the hole: 112..119");
	cr_expect_eq(k_frames_nfree(), 35 - 15);
	cr_expect_eq(k_frames_run(13), 0, "100..111 is 12 long, 16..23 is 8");
	cr_expect_eq(k_frames_run(12), 100 * P);
	cr_expect_eq(k_frames_run(0), 0);
	cr_expect_eq(k_frames_nfree(), 8);
}
