/* libFuzzer target for the monitor's reading of patched syscall sites (monitor/core/patch.c):
 * what a hostile guest controls there is its page tables, the bytes before a #UD and the
 * records in the window. Each input is a faulting rip, a page-table root, four pages of tables
 * (placed at that root and after it), the 7 bytes before rip's `syscall` as the guest's
 * translation finds them, and a record for the window. The monitor must never read or write
 * outside guest RAM nor crash, whatever it finds; without a vCPU (no KVM here) the resume itself
 * fails, after every check has run. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_vm.h"
#include "vm.h"

const uint8_t sbx_kernel_blob[1], sbx_kernel_blob_end[1], sbx_vdso_blob[1], sbx_vdso_blob_end[1];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sbx_vm *fuzz_vm(void)
{
	static struct sbx_vm *vm;
	static struct policy pol;
	static struct sbx_config cfg;
	char err[256];
	if (vm)
		return vm;
	policy_init(&pol);
	fuzz_config(&cfg, &pol);
	if (sbx_vm_create_bare(&cfg, &vm, err, sizeof(err)) < 0)
		abort();
	return vm;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sbx_vm *vm = fuzz_vm();
	uint64_t rip, root;
	if (size < 16)
		return 0;
	memcpy(&rip, data, 8);
	memcpy(&root, data + 8, 8);
	data += 16, size -= 16;
	uint8_t *ram = vm->proc.mem.base;
	uint64_t ramsz = vm->proc.mem.size;
	memset(ram, 0, 2 << 20);
	memset(ram + SBX_PATCH_ADDR, 0, SBX_PATCH_BYTES);
	/* Tables at the root (inside the first 2 MiB, where the input can fill them). */
	uint64_t t = (root & SBX_PTE_ADDR) % ((2 << 20) - 4 * 4096);
	size_t n = size < 4 * 4096 ? size : 4 * 4096;
	memcpy(ram + t, data, n);
	data += n, size -= n;
	sbx_set_guest_root(vm, t | (root & 0xfff));
	/* The site's bytes where an identity translation would find them, and a record. */
	uint64_t at = (rip - 5) % (ramsz - 16);
	n = size < 7 ? size : 7;
	memcpy(ram + at, data, n);
	data += n, size -= n;
	uint64_t rec = SBX_PATCH_ADDR + (rip % (SBX_PATCH_BYTES / SBX_PATCH_REC)) * SBX_PATCH_REC;
	memcpy(ram + rec, data, size < SBX_PATCH_REC ? size : SBX_PATCH_REC);
	struct sbx_fault f;
	memset(&f, 0, sizeof(f));
	f.vector = 6;
	f.from_cpu = 1;
	f.r[SBX_R_RIP] = rip;
	f.rflags = root ^ rip;
	sbx_patch_resume(vm, &f);
	sbx_patch_site_of(vm, rip);
	sbx_patch_site_of(vm, SBX_PATCH_ADDR + rip % SBX_PATCH_BYTES);
	return 0;
}
