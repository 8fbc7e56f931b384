/* The in-guest kernel, built by guest-abi/ and embedded here as bytes. */
	.section .rodata
	.balign 16
	.globl sbx_kernel_blob
sbx_kernel_blob:
	.incbin SBX_KERNEL_BIN
	.globl sbx_kernel_blob_end
sbx_kernel_blob_end:
	.section .note.GNU-stack, "", @progbits
