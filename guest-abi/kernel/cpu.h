/* Each vCPU's own data, at the same address on every vCPU (SBX_CPU_VA: its page tables map the
 * window onto its own pages). Included by entry.S for the offsets, so plain defines first. */
#ifndef SBX_KERNEL_CPU_H
#define SBX_KERNEL_CPU_H

#include "sbx_abi.h"

#define K_CPU_SCRATCH 0	    /* the entry's %rax while it switches stacks */
#define K_CPU_PF_RAX 8	    /* the page-fault entry's %rax, restored by the trampoline */
#define K_CPU_PF_ADDR 16    /* %cr2 of that fault */
#define K_CPU_PF_DECLINE 24 /* byte: the next fault of the program goes to the monitor */
#define K_CPU_RESUME 64	    /* struct k_resume: k_resume_full's registers */
#define K_CPU_TRAMP 256	    /* code: restores %rax and jumps back to the faulting rip */
#define K_CPU_TRAMP_BYTES 16
/* The page-fault entry's frame (IST1) and the handler's stack below it. */
#define K_PF_FRAME (SBX_WINDOW_IST_TOP(1) - 48)
#define K_PF_STACK (K_PF_FRAME - 64)

#ifndef __ASSEMBLER__
#include <stdint.h>

struct k_thread;
struct k_resume {
	uint64_t r15, r14, r13, r12, rbp, rbx, rax, r9, r8, r10, rdx, rsi, rdi, rcx, r11;
	uint64_t rip, cs, rflags, rsp, ss;
};

struct k_cpu {
	uint64_t scratch, pf_rax, pf_addr;
	uint8_t pf_decline;
	uint8_t tramp_ready;
	uint8_t pad0[2];
	uint32_t index;	       /* the vCPU: 0 for the first thread */
	uint64_t ring;	       /* the address of this vCPU's request ring */
	uint64_t seq;	       /* its requests' sequence */
	struct k_thread *self; /* the thread this vCPU runs */
	uint32_t bkl_depth;    /* the big kernel lock, held this many times over */
	uint32_t gone;	       /* the tid of a thread that ended here, for the monitor to forget */
	struct k_resume resume;
	uint64_t
	    window_gpa; /* guest-physical address of window offset 0 (its stacks are one run) */
	/* The mask the next handler's frame saves for its return, when it is not the current
	 * one (sigsuspend's, a masked wait's): set by deliver_first, taken by k_deliver. */
	uint64_t sig_restore;
	uint64_t sig_restore_on;
	uint8_t unused[K_CPU_TRAMP - K_CPU_RESUME - sizeof(struct k_resume) - 24];
	uint8_t tramp[K_CPU_TRAMP_BYTES];
};
_Static_assert(__builtin_offsetof(struct k_cpu, pf_decline) == K_CPU_PF_DECLINE, "k_cpu");
_Static_assert(__builtin_offsetof(struct k_cpu, resume) == K_CPU_RESUME, "k_cpu");
_Static_assert(__builtin_offsetof(struct k_cpu, tramp) == K_CPU_TRAMP, "k_cpu");
_Static_assert(sizeof(struct k_cpu) <= SBX_CPU_TID_OFF, "the tid word is past k_cpu");
/* The tid the monitor reads (SBX_CPU_TID_OFF). */
#define K_CPU_TID (*(volatile uint32_t *)(SBX_CPU_VA + SBX_CPU_TID_OFF))

#define K_CPU ((struct k_cpu *)SBX_CPU_VA)

/* The trampoline's bytes for the vCPU whose per-CPU page is at SBX_CPU_VA (rip-relative, so the
 * same bytes on every vCPU): movq pf_rax(%rip), %rax; jmpq *(K_PF_FRAME + 8)(%rip). */
void k_cpu_tramp(struct k_cpu *c);
#endif
#endif
