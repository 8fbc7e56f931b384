/* Syscall entry and exception stubs. The same code serves CPL0 and CPL3: `syscall` is a jump
 * to LSTAR at the program's own level (PVM keeps CPL3; at CPL0 it stays CPL0). */
#include "cpu.h"

/* The frame of struct sbx_syscall_frame and struct k_resume, in two halves: the registers a
 * syscall takes its arguments in (and rcx), and those a call preserves. */
.macro push_call_regs
	pushq %rcx
	pushq %rdi
	pushq %rsi
	pushq %rdx
	pushq %r10
	pushq %r8
	pushq %r9
.endm
.macro pop_call_regs
	popq %r9
	popq %r8
	popq %r10
	popq %rdx
	popq %rsi
	popq %rdi
	popq %rcx
.endm
.macro push_saved_regs
	pushq %rbx
	pushq %rbp
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
.endm
.macro pop_saved_regs
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbp
	popq %rbx
.endm

/* Onto this vCPU's syscall stack, the user's %rsp pushed first. Its window is reached by
 * absolute 64-bit addresses, which only %rax can load and store: %rax waits in the per-CPU
 * page meanwhile. */
.macro enter_kernel_stack
	movabs %rax, SBX_CPU_VA + K_CPU_SCRATCH
	movq %rsp, %rax
	movabsq $SBX_WINDOW_SYSCALL_TOP, %rsp
	pushq %rax
	movabs SBX_CPU_VA + K_CPU_SCRATCH, %rax
.endm

	.text
	.globl sbx_syscall_entry
	.type sbx_syscall_entry, @function
	.align 16
sbx_syscall_entry:
	/* Never touch the user's stack: the 128 bytes below %rsp are its red zone. */
	enter_kernel_stack
	pushq %r11
	push_call_regs
	/* The rest too, so the monitor can report the registers of a program that ends itself
	 * (abort) from struct sbx_syscall_frame at a fixed address. 16 words: aligned. */
	pushq %rax
	push_saved_regs
	movl $1, %edx /* came by a trap: the site may be patched */
k_syscall_call:
	movq %rax, %rdi
	movq %rsp, %rsi
	call k_syscall
	pop_saved_regs
	addq $8, %rsp /* rax holds the result */
	pop_call_regs
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

/* A patched syscall site's way in (patch.c): its record's code jumps here with %eax the call's
 * number, %rcx where to return and the program's flags as they were, at the program's level,
 * without a trap. %r11 is free (a syscall clobbers it). The frame is the one a `syscall` makes,
 * so everything after is shared: rflags are pushed where %r11 would be, and SFMASK's work (no
 * TF, DF or AC in the kernel) done by popfq. */
	.globl k_fast_entry
	.type k_fast_entry, @function
	.align 16
k_fast_entry:
	enter_kernel_stack
	pushfq
	movq (%rsp), %r11
	push_call_regs
	pushq %rax
	push_saved_regs
	andq $~SBX_SFMASK_BITS, %r11
	pushq %r11
	popfq
	xorl %edx, %edx
	jmp k_syscall_call
	.size k_fast_entry, . - k_fast_entry

/* A patched cpuid site's record calls here (sbx_kernel_header.cpuid_entry), at the program's
 * level, already on this vCPU's syscall stack with the program's %rsp and flags pushed: %eax
 * and %ecx the leaf and subleaf. Leaves %eax-%edx as cpuid would (32-bit writes, so the upper
 * halves are zero as cpuid leaves them) and every other register as it was; the record's
 * popfq puts the program's flags back, DF included, which the C code needs clear. */
	.globl k_cpuid_entry
	.type k_cpuid_entry, @function
	.align 16
k_cpuid_entry:
	pushq %rdi
	pushq %rsi
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	subq $24, %rsp /* the answer, 16 bytes, and %rsp 16-byte aligned at the call */
	cld
	movl %eax, %edi
	movl %ecx, %esi
	movq %rsp, %rdx
	call k_cpuid
	movl (%rsp), %eax
	movl 4(%rsp), %ebx
	movl 8(%rsp), %ecx
	movl 12(%rsp), %edx
	addq $24, %rsp
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rsi
	popq %rdi
	/* cpuid serializes; this orders at least as lfence does (a `cpuid; rdtsc`). */
	lfence
	ret
	.size k_cpuid_entry, . - k_cpuid_entry

/* A thread's vCPU starts here (THREAD_START), and an exiting thread's comes back here: onto its
 * window's syscall stack, to wait for the next thread to run. Below the syscall frame, whose rip
 * is cleared: no syscall is in flight, which a crash report reads there. */
	.globl k_thread_entry
	.type k_thread_entry, @function
k_thread_entry:
	movabsq $(SBX_WINDOW_VA + SBX_SYSCALL_FRAME_ADDR), %rsp
	movq $0, SBX_SYSCALL_FRAME_RIP(%rsp)
	call k_thread_main
	ud2
	.size k_thread_entry, . - k_thread_entry

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
	movabsq $(SBX_CPU_VA + K_CPU_RESUME), %rsp
	pop_saved_regs
	popq %rax
	pop_call_regs
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
	.if vec == 3
	jmp k_breakpoint
	.elseif vec == 14
	jmp k_page_fault
	.else
	outb %al, $(SBX_PORT_FAULT_BASE + vec)
2:	hlt
	jmp 2b
	.endif
	.set vec, vec + 1
	.endr
	.globl sbx_vectors_end
sbx_vectors_end:

/* A TLB flush for a kernel at CPL3 (PVM), which may not execute invlpg or load CR3: the
 * breakpoint gate (DPL 3) is the one way to CPL0 that needs no exit to the monitor. %rdi: the
 * page to flush, or 0 for all of them. Measured on PVM: ~10.5 us for the gate alone, +~2 us
 * for an invlpg or a CR3 load, each emulated (pt.c). */
	.globl k_tlb_flush_cpl3
	.type k_tlb_flush_cpl3, @function
k_tlb_flush_cpl3:
	int3
k_tlb_flush_site:
	ret
	.size k_tlb_flush_cpl3, . - k_tlb_flush_cpl3

/* Vector 3: the kernel's flush when it comes from k_tlb_flush_cpl3, otherwise a breakpoint
 * reported like every other exception, with the CPU-pushed frame untouched. */
k_breakpoint:
	cmpq $k_tlb_flush_site, (%rsp)
	jne 2f
	testq %rdi, %rdi
	jz 1f
	invlpg (%rdi)
	iretq
1:	pushq %rax
	movq %cr3, %rax
	movq %rax, %cr3
	popq %rax
	iretq
2:	outb %al, $(SBX_PORT_FAULT_BASE + 3)
3:	hlt
	jmp 3b

/* Vector 14. A first touch of a page of a mapping with pages on first touch gets its page (and
 * its neighbours: k_pf_fault) and the access is retried; any other page fault is reported
 * like every exception, with the frame and every register as the CPU left them. Under PVM each
 * instruction at CPL0 is emulated (~1.2 us), so this entry does the least that needs CPL0 (read
 * CR2, 14 instructions) and hands the rest to k_pf_handler at the privilege level that faulted,
 * on a stack of its own below the frame. That returns straight to the faulting instruction, at
 * its level, without iretq. When it declines, the access faults again and k_pf_decline sends
 * that second fault to the monitor, the frame untouched. All of this runs with one vCPU. */
	.text
k_page_fault:
	testq $SBX_PF_PRESENT, (%rsp)
	jnz 2f
	movabs %rax, SBX_CPU_VA + K_CPU_PF_RAX
	movabs SBX_CPU_VA + K_CPU_PF_DECLINE, %al
	testb %al, %al
	jnz 1f
	movq %cr2, %rax
	movabs %rax, SBX_CPU_VA + K_CPU_PF_ADDR
	/* An iret frame to k_pf_handler at the faulting level: ss, rsp, rflags, cs, rip. */
	pushq 40(%rsp)
	movabsq $K_PF_STACK, %rax
	pushq %rax
	pushq 40(%rsp)
	andq $~0x40100, (%rsp) /* no TF, no AC in the handler (SFMASK's job on a syscall) */
	pushq 40(%rsp)
	pushq $k_pf_handler
	iretq
1:	xorl %eax, %eax
	movabs %al, SBX_CPU_VA + K_CPU_PF_DECLINE
	movabs SBX_CPU_VA + K_CPU_PF_RAX, %rax
2:	outb %al, $(SBX_PORT_FAULT_BASE + 14)
3:	hlt
	jmp 3b

k_pf_handler:
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	cld
	movabs SBX_CPU_VA + K_CPU_PF_ADDR, %rax
	movq %rax, %rdi
	movabsq $K_PF_FRAME, %rax
	movq (%rax), %rsi
	movq 8(%rax), %rdx
	call k_pf_fault
	cmpl $1, %eax
	je 1f
	movb $1, %al
	movabs %al, SBX_CPU_VA + K_CPU_PF_DECLINE
1:	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	/* The faulting context's flags, %rsp and %rip, from the frame the CPU pushed; %rax and
	 * the jump back come from the per-CPU trampoline (k_cpu_tramp), which addresses this vCPU's
	 * frame and page rip-relative, as no register is left for an absolute address. */
	movabsq $K_PF_FRAME, %rax
	pushq 24(%rax)
	popfq
	movq 32(%rax), %rsp
	movabsq $(SBX_CPU_VA + K_CPU_TRAMP), %rax
	jmpq *%rax

/* ---- Repeated runs from one snapshot (struct sbx_exec_ctl) ----------------------------- */
#define CTX_RBX 0
#define CTX_RBP 8
#define CTX_R12 16
#define CTX_R13 24
#define CTX_R14 32
#define CTX_R15 40
#define CTX_RSP 48
#define CTX_RIP 56
#define CTX_FS 64
#define CTX_GS 72
#define CTX_VALID 80
#define K_XSAVE_BYTES 16384

/* The registers a call preserves, to or from the point's context. */
.macro movq_to_ctx reg, off
	movq %\reg, k_exec_ctx + \off(%rip)
.endm
.macro movq_from_ctx reg, off
	movq k_exec_ctx + \off(%rip), %\reg
.endm
.macro ctx_saved_regs op
	\op rbx, CTX_RBX
	\op rbp, CTX_RBP
	\op r12, CTX_R12
	\op r13, CTX_R13
	\op r14, CTX_R14
	\op r15, CTX_R15
.endm

	.section .bss
	.align 64
	.globl k_exec_xsave
k_exec_xsave:
	.skip K_XSAVE_BYTES
	.globl k_exec_ctx
k_exec_ctx:
	.skip 88
	/* k_exec_before_run's stack: the one the kernel parked on may hold the point's frames
	 * (below its context's %rsp) or this run's arguments (the entry's stack). */
	.align 16
	.skip 1024
k_exec_fix_stack:

	.text
/* Saves the point's context, setjmp-style: returns 0 now, and 1 each time a run starts here.
 * The extended state is the program's own at its syscall (the kernel never touches it). */
	.globl k_exec_save
	.type k_exec_save, @function
k_exec_save:
	ctx_saved_regs movq_to_ctx
	leaq 8(%rsp), %rax
	movq %rax, k_exec_ctx + CTX_RSP(%rip)
	movq (%rsp), %rax
	movq %rax, k_exec_ctx + CTX_RIP(%rip)
	rdfsbase %rax
	movq %rax, k_exec_ctx + CTX_FS(%rip)
	rdgsbase %rax
	movq %rax, k_exec_ctx + CTX_GS(%rip)
	movl SBX_BOOTINFO_ADDR + SBX_BOOT_XFEATURES, %eax
	movl SBX_BOOTINFO_ADDR + SBX_BOOT_XFEATURES + 4, %edx
	xsave64 k_exec_xsave(%rip)
	movq $1, k_exec_ctx + CTX_VALID(%rip)
	xorl %eax, %eax
	ret
	.size k_exec_save, . - k_exec_save

/* Where the vCPU starts when the point is the program's entry: the extended state as the
 * monitor set it up is what every run starts with. The kernel's first-use work is done here,
 * once, through its own syscall (the kernel may need CPL0 for it): a run that had to do it
 * would pay ~0.6 ms and leave a new page directory behind for every reset to put back. */
	.globl sbx_exec_start
	.type sbx_exec_start, @function
sbx_exec_start:
	movl $SBX_SYS_EXEC, %eax
	movl $SBX_EXEC_OP_READY, %edi
	syscall
	movl SBX_BOOTINFO_ADDR + SBX_BOOT_XFEATURES, %eax
	movl SBX_BOOTINFO_ADDR + SBX_BOOT_XFEATURES + 4, %edx
	xsave64 k_exec_xsave(%rip)
	movl $SBX_EXEC_AT_POINT, %edi
	jmp k_exec_park
	.size sbx_exec_start, . - sbx_exec_start

/* A run is over (%edi: its status). Writes nothing but the control page and uses no stack
 * until `go` changes: the monitor puts the run's pages back while this spins. */
	.globl k_exec_park
	.type k_exec_park, @function
k_exec_park:
	movq SBX_EXEC_ADDR + SBX_EXEC_GO, %rbx
	movl %edi, SBX_EXEC_ADDR + SBX_EXEC_STATUS
	lock incq SBX_EXEC_ADDR + SBX_EXEC_DONE
1:	cmpq SBX_EXEC_ADDR + SBX_EXEC_GO, %rbx
	jne 4f
	testl $SBX_EXEC_NEED_WAKEUP, SBX_EXEC_ADDR + SBX_EXEC_FLAGS
	jnz 2f
	pause
	jmp 1b
	/* The monitor holds the vCPU in this exit until the next run. */
2:	testl $SBX_BOOT_CPL0, SBX_BOOTINFO_ADDR + 4
	jnz 3f
	movb $0, SBX_DOORBELL_VA
	jmp 1b
3:	outb %al, $SBX_PORT_DOORBELL
	jmp 1b
	/* The next run: the point's context, or the program's entry on the stack the monitor
	 * built for this run, with every register as Linux leaves it at exec. First the page
	 * tables the monitor put back and the sites earlier runs patched, if any (exec.c). */
4:	cmpq $0, SBX_EXEC_ADDR + SBX_EXEC_NFIX
	je 6f
	leaq k_exec_fix_stack(%rip), %rsp
	call k_exec_before_run
	/* All ones: every component XCR0 really enables and the point did not save is reset to
	 * its initial state, so no run sees another's (PVM may leave AMX on in XCR0). */
6:	movl $-1, %eax
	movl $-1, %edx
	xrstor64 k_exec_xsave(%rip)
	cmpq $0, k_exec_ctx + CTX_VALID(%rip)
	je 5f
	movq k_exec_ctx + CTX_FS(%rip), %rax
	wrfsbase %rax
	movq k_exec_ctx + CTX_GS(%rip), %rax
	wrgsbase %rax
	ctx_saved_regs movq_from_ctx
	movq k_exec_ctx + CTX_RSP(%rip), %rsp
	movl $1, %eax
	jmpq *k_exec_ctx + CTX_RIP(%rip)
5:	xorl %eax, %eax
	wrfsbase %rax
	wrgsbase %rax
	movq SBX_EXEC_ADDR + SBX_EXEC_ENTRY_RSP, %rsp
	xorl %ebx, %ebx
	xorl %ecx, %ecx
	xorl %edx, %edx
	xorl %esi, %esi
	xorl %edi, %edi
	xorl %ebp, %ebp
	xorl %r8d, %r8d
	xorl %r9d, %r9d
	xorl %r10d, %r10d
	xorl %r11d, %r11d
	xorl %r12d, %r12d
	xorl %r13d, %r13d
	xorl %r14d, %r14d
	xorl %r15d, %r15d
	jmpq *SBX_EXEC_ADDR + SBX_EXEC_ENTRY_RIP
	.size k_exec_park, . - k_exec_park

	.section .note.GNU-stack, "", @progbits
