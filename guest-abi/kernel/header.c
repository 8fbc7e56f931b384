/* The image header the monitor reads to find the kernel's entry points. */
#include "kernel.h"

extern char sbx_syscall_entry[], sbx_vectors[], __image_end[], __bss_end[], sbx_upcall_entry[],
    sbx_exec_start[], k_cpuid_entry[];

__attribute__((section(".header"), used)) const struct sbx_kernel_header sbx_kernel_header = {
    .magic = SBX_KERNEL_MAGIC,
    .abi_version = SBX_ABI_VERSION,
    .header_size = sizeof(struct sbx_kernel_header),
    .syscall_entry = (uint64_t)sbx_syscall_entry,
    .vectors = (uint64_t)sbx_vectors,
    .vector_stride = 16,
    .nvectors = 32,
    .image_end = (uint64_t)__image_end,
    .bss_end = (uint64_t)__bss_end,
    .upcall_entry = (uint64_t)sbx_upcall_entry,
    .exec_start = (uint64_t)sbx_exec_start,
    .cpuid_entry = (uint64_t)k_cpuid_entry,
};
