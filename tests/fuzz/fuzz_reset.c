/* libFuzzer target for a reset's reading of the guest's page tables (monitor/persist/reset.c,
 * sbx_reset_kernel_maps_alike): at a reset of repeated runs the program has had the run to
 * write its tables, the kernel's included, and the monitor walks both the run's and the
 * snapshot's over the kernel's ranges. Each input is two images of the page-table area (the
 * run's, the snapshot's) in 1 MiB of RAM, the rest of RAM zero, so entries may point anywhere
 * in it, at each other, or outside it. The walk must stay inside RAM, end within its budget
 * (tables that share subtables), and never crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "persist.h"

const uint8_t sbx_kernel_blob[1], sbx_kernel_blob_end[1], sbx_vdso_blob[1], sbx_vdso_blob_end[1];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RAM (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *now, *then;
	if (!now && (!(now = malloc(RAM)) || !(then = malloc(RAM))))
		abort();
	size_t half = size / 2, area = SBX_PT_END - SBX_PT_ADDR;
	if (half > area)
		half = area;
	memset(now, 0, RAM);
	memset(then, 0, RAM);
	memcpy(now + SBX_PT_ADDR, data, half);
	memcpy(then + SBX_PT_ADDR, data + size / 2, half);
	/* The same tables too: the walk that finds no difference goes deepest. */
	sbx_reset_kernel_maps_alike(now, now, RAM);
	sbx_reset_kernel_maps_alike(now, then, RAM);
	return 0;
}
