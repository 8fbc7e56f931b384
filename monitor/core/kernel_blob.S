/* The in-guest kernel and the vDSO, built by guest-abi/ and embedded here as bytes. */
	.section .rodata
	.balign 16
	.globl sbx_kernel_blob
sbx_kernel_blob:
	.incbin SBX_KERNEL_BIN
	.globl sbx_kernel_blob_end
sbx_kernel_blob_end:
	.balign 16
	.globl sbx_vdso_blob
sbx_vdso_blob:
	.incbin SBX_VDSO_SO
	.globl sbx_vdso_blob_end
sbx_vdso_blob_end:
	.section .note.GNU-stack, "", @progbits
