/* Giving the heap's memory back: what the program unmaps or discards reads as zeros again.
 * Large ranges go back to the host (a hole in guest RAM's memfd), small ones are zeroed here
 * (k_frames_zero: the heap is identity-mapped, so its addresses are its pages'). Apart from the
 * table of mappings (vma.c) that calls it, so that its unit test can watch what is released. */
#include "kernel.h"

void k_mem_release(uint64_t start, uint64_t end, int writable)
{
	if (end <= start)
		return;
	/* Zeroed through the kernel's map of RAM, or, before it exists, through the program's
	 * page tables, which must then let the kernel write the range: if they do not, it goes
	 * to the host whatever its size (a hole in RAM's memfd, which the monitor refuses only
	 * for what is not whole user pages: never a mapping's range). */
	if (k_physmap_on || writable) {
		k_frames_zero(start, (end - start) / SBX_PAGE_SIZE);
		return;
	}
	uint64_t a[2] = {start, end - start};
	k_call(SBX_CALL_DISCARD, a, 2);
}
