/* The RAM pages nobody else owns, handed out one at a time for mmap'ed memory and page tables:
 * a bitmap (a set bit: the page is free) in RAM of its own, searched from the top down, so the
 * heap growing up from the image rarely finds its pages taken. A free page reads as zero: a page
 * is zeroed, or given back to the host, when it is freed, so handing one out costs nothing. The
 * bitmap and the counters live in guest RAM, so snapshots, resets and repeated runs carry them. */
#include "kernel.h"

/* Freeing this much at once goes back to the host instead of being zeroed here. */
#define K_DISCARD_MIN (256 * 1024ull)
#define PAGE SBX_PAGE_SIZE

static uint64_t k_fbits; /* guest-physical address of the bitmap */
static uint64_t k_fpages, k_fnfree;
static uint64_t k_ftop; /* no page at or above this index is free */

static uint64_t *bits(void)
{
	return (uint64_t *)k_phys(k_fbits);
}

void k_frames_init(uint64_t bitmap_gpa, uint64_t npages)
{
	k_fbits = bitmap_gpa;
	k_fpages = npages;
	k_fnfree = 0;
	k_ftop = 0;
}

void k_frames_add(uint64_t gpa, uint64_t n)
{
	uint64_t p = gpa / PAGE;
	for (uint64_t i = p; i < p + n && i < k_fpages; i++) {
		if (!(bits()[i / 64] >> (i % 64) & 1))
			k_fnfree++;
		bits()[i / 64] |= 1ull << (i % 64);
	}
	if (p + n > k_ftop)
		k_ftop = p + n < k_fpages ? p + n : k_fpages;
}

uint64_t k_frame_alloc(void)
{
	if (!k_fnfree)
		return 0;
	uint64_t *b = bits();
	for (uint64_t w = (k_ftop + 63) / 64; w-- > 0;) {
		if (!b[w])
			continue;
		uint64_t i = w * 64 + 63 - (uint64_t)__builtin_clzll(b[w]);
		b[w] &= ~(1ull << (i % 64));
		k_fnfree--;
		k_ftop = i;
		return i * PAGE;
	}
	return 0;
}

void k_frames_zero(uint64_t gpa, uint64_t n)
{
	if (!n)
		return;
	uint64_t a[2] = {gpa, n * PAGE};
	if (n * PAGE < K_DISCARD_MIN || k_call(SBX_CALL_DISCARD, a, 2) != 0)
		k_memset(k_phys(gpa), 0, n * PAGE);
}

void k_frames_free(uint64_t gpa, uint64_t n, int zeroed)
{
	if (!n)
		return;
	if (!zeroed)
		k_frames_zero(gpa, n);
	k_frames_add(gpa, n);
}

int k_frames_claim(uint64_t gpa, uint64_t n)
{
	uint64_t p = gpa / PAGE;
	if (!k_fpages)
		return 0; /* no allocator (pt.c could not map RAM): nobody else takes pages */
	if (p + n > k_fpages)
		return -ENOMEM;
	for (uint64_t i = p; i < p + n; i++)
		if (!(bits()[i / 64] >> (i % 64) & 1))
			return -ENOMEM;
	for (uint64_t i = p; i < p + n; i++)
		bits()[i / 64] &= ~(1ull << (i % 64));
	k_fnfree -= n;
	return 0;
}

uint64_t k_frames_run(uint64_t n)
{
	if (!n || n > k_fnfree)
		return 0;
	/* The highest n free pages in a row, as k_frame_alloc would start there. */
	uint64_t len = 0;
	for (uint64_t i = k_ftop; i-- > 0;) {
		len = (bits()[i / 64] >> (i % 64) & 1) ? len + 1 : 0;
		if (len == n)
			return k_frames_claim(i * PAGE, n) == 0 ? i * PAGE : 0;
	}
	return 0;
}

uint64_t k_frames_nfree(void)
{
	return k_fnfree;
}
