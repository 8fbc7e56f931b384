/* Syscall entry and exception stubs. The same code serves CPL0 and CPL3: `syscall` is a jump
 * to LSTAR at the program's own level (PVM keeps CPL3; at CPL0 it stays CPL0). */
#include "sbx_abi.h"

	.section .bss
	.align 8
k_user_rsp:
	.quad 0

	.text
	.globl sbx_syscall_entry
	.type sbx_syscall_entry, @function
	.align 16
sbx_syscall_entry:
	/* Never touch the user's stack: the 128 bytes below %rsp are its red zone. */
	movq %rsp, k_user_rsp(%rip)
	movq $SBX_SYSCALL_STACK_TOP, %rsp
	pushq k_user_rsp(%rip)
	pushq %r11
	pushq %rcx
	pushq %rdi
	pushq %rsi
	pushq %rdx
	pushq %r10
	pushq %r8
	pushq %r9
	/* The rest too, so the monitor can report the registers of a program that ends itself
	 * (abort) from struct sbx_syscall_frame at a fixed address. 16 words: aligned. */
	pushq %rax
	pushq %rbx
	pushq %rbp
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rax, %rdi
	movq %rsp, %rsi
	call k_syscall
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbp
	popq %rbx
	addq $8, %rsp /* rax holds the result */
	popq %r9
	popq %r8
	popq %r10
	popq %rdx
	popq %rsi
	popq %rdi
	popq %rcx
	/* At CPL3 (PVM) or with the program at CPL0 return by popfq + jmp; sysretq would #GP on
	 * PVM. Only a CPL3 program under a CPL0 kernel (hardware KVM, --cpl 3) uses sysretq. */
	movl %cs, %r11d
	testl $3, %r11d
	jnz 1f
	testl $SBX_BOOT_CPL0, SBX_BOOTINFO_ADDR + 4
	jnz 1f
	movq (%rsp), %r11
	movq 8(%rsp), %rsp
	sysretq
1:
	movq (%rsp), %r11
	popfq
	popq %rsp
	jmpq *%rcx
	.size sbx_syscall_entry, . - sbx_syscall_entry

/* A CPU fault whose signal has a handler: the monitor sets %rsp to SBX_UPCALL_STACK_TOP and
 * %rip here, at the program's privilege level, with struct sbx_upcall filled in. */
	.globl sbx_upcall_entry
	.type sbx_upcall_entry, @function
sbx_upcall_entry:
	call k_fault_upcall
	ud2
	.size sbx_upcall_entry, . - sbx_upcall_entry

/* Resume user code with every register as given (signal delivery, rt_sigreturn): the GPRs,
 * then an iret frame, from struct k_resume. iretq restores rip, cs, rflags, rsp and ss at once;
 * under PVM it traps, which is fine for these rare paths. */
	.globl k_resume_full
	.type k_resume_full, @function
k_resume_full:
	leaq k_resume(%rip), %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbp
	popq %rbx
	popq %rax
	popq %r9
	popq %r8
	popq %r10
	popq %rdx
	popq %rsi
	popq %rdi
	popq %rcx
	popq %r11
	iretq
	.size k_resume_full, . - k_resume_full

/* One 16-byte stub per vector: report to the monitor through a port whose number names the
 * vector, so no register is clobbered and the monitor reads the CPU-written frame itself. */
	.globl sbx_vectors
	.align 16
sbx_vectors:
	.set vec, 0
	.rept 32
	.align 16
	outb %al, $(SBX_PORT_FAULT_BASE + vec)
2:	hlt
	jmp 2b
	.set vec, vec + 1
	.endr
	.globl sbx_vectors_end
sbx_vectors_end:

	.section .note.GNU-stack, "", @progbits
