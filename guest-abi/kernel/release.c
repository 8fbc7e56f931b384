/* Giving memory back: what the program unmaps or discards reads as zeros again. Large ranges go
 * back to the host (a hole in guest RAM's memfd), small ones are zeroed here. Apart from the
 * table of mappings (vma.c) that calls it, so that its unit test can watch what is released. */
#include "kernel.h"

/* Releasing this much or more goes back to the host instead of being zeroed in the guest. */
#define K_DISCARD_MIN (256 * 1024ull)

void k_mem_release(uint64_t start, uint64_t end, int writable)
{
	if (end <= start)
		return;
	/* The kernel zeroes through the program's own page tables, so a range they do not let
	 * it write goes to the host whatever its size (a hole in RAM's memfd, which the monitor
	 * refuses only for what is not whole user pages: never a mapping's range). */
	if (!writable || end - start >= K_DISCARD_MIN) {
		uint64_t a[2] = {start, end - start};
		if (k_call(SBX_CALL_DISCARD, a, 2) == 0 || !writable)
			return;
	}
	k_memset((void *)start, 0, end - start);
}
