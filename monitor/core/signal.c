/* Signals a program handles itself. On a CPU fault the monitor reads the kernel's signal
 * dispositions; with a handler installed (and the signal not blocked) it hands the fault back:
 * struct sbx_upcall in guest RAM, the vCPU restarted at the kernel's upcall entry, at the
 * program's own level. The kernel then builds the Linux signal frame. Whatever the guest wrote
 * into its dispositions only decides its own fate. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vm.h"

int sbx_in_kernel(uint64_t rip)
{
	return rip >= SBX_KERNEL_ADDR && rip < SBX_VDSO_ADDR;
}

/* si_code and si_addr, as Linux fills them for each exception. */
static void siginfo_of(const struct sbx_fault *f, int32_t *code, uint64_t *addr)
{
	*addr = 0;
	*code = 0x80; /* SI_KERNEL */
	switch (f->vector) {
	case 14:
		*code = (f->err & 1) || f->accerr ? 2 : 1; /* SEGV_ACCERR : SEGV_MAPERR */
		*addr = f->cr2;
		break;
	case 6:
		*code = 2; /* ILL_ILLOPN */
		*addr = f->r[SBX_R_RIP];
		break;
	case 0:
		*code = 1; /* FPE_INTDIV */
		*addr = f->r[SBX_R_RIP];
		break;
	case 17:
		*code = 1; /* BUS_ADRALN */
		break;
	case SBX_VEC_SHMAP_BUS:
		*code = 2; /* BUS_ADRERR */
		*addr = f->cr2;
		break;
	}
}

int sbx_signal_upcall(struct sbx_vm *vm, const struct sbx_fault *f)
{
	const struct sbx_sigstate *ss = sbx_gptr(vm, SBX_SIGSTATE_ADDR, sizeof(*ss));
	int sig = f->signal, index = vm->life.stop.thread_index;
	struct sbx_upcall_state *us = sbx_upcall_state_of(vm, index);
	if (!f->from_cpu || sig < 1 || sig > 64 || !ss || !us || sbx_in_kernel(f->r[SBX_R_RIP]))
		return 0;
	struct sbx_sigaction a;
	memcpy(&a, &ss->act[sig], sizeof(a));
	uint64_t blocked;
	memcpy(&blocked, &ss->blocked, sizeof(blocked));
	/* Blocked or ignored synchronous faults kill, as on Linux. The signal page holds the
	 * main thread's mask; another thread's the kernel checks (k_fault_upcall). */
	if (a.handler <= 1 || (index == 0 && (blocked & (1ull << (sig - 1)))))
		return 0;
	/* vCPU 0 of a child forked by a second thread runs on that thread's window. */
	uint64_t home = index ? 0 : vm->proc.vcpu.home_root;
	int own = index == 0 && !home;
	struct sbx_upcall u;
	memset(&u, 0, sizeof(u));
	u.signo = (uint32_t)sig;
	siginfo_of(f, &u.code, &u.addr);
	u.err = f->err;
	u.trapno = f->vector == SBX_VEC_SHMAP_BUS ? 14 : (uint64_t)f->vector; /* Linux's */
	memcpy(u.r, f->r, sizeof(u.r));
	u.rflags = f->rflags;
	/* Another vCPU's goes to its own per-CPU page and stack, through its page tables: the
	 * same window addresses on every vCPU, so the kernel's entry needs no vCPU number. */
	int put = own ? sbx_copy_to_guest(vm, SBX_UPCALL_ADDR, &u, sizeof(u))
		      : sbx_gva_write(vm, index ? vm->life.stop.thread_cr3 : home,
				      SBX_CPU_VA + SBX_CPU_UPCALL_OFF, &u, sizeof(u));
	if (put < 0 || sbx_x86_enter(vm, vm->proc.image.khdr.upcall_entry,
				     own ? SBX_UPCALL_STACK_TOP : SBX_WINDOW_UPCALL_TOP) < 0)
		return 0;
	us->pending = 1;
	us->fault = *f;
	vm->stats.upcalls++;
	return 1;
}

int sbx_signal_async(struct sbx_vm *vm, int index, int fd, uint64_t cr3)
{
	struct kvm_regs r;
	if (ioctl(fd, KVM_GET_REGS, &r) < 0)
		return -errno;
	/* The program's own code only: the kernel (its image, its page-fault trampoline in the
	 * window) delivers pending signals itself on its way back to the program. */
	if (r.rip < SBX_USER_ADDR ? !(r.rip >= SBX_VDSO_ADDR && r.rip < SBX_VDSO_END)
				  : r.rip - SBX_WINDOW_VA < (1ull << 30))
		return 0;
	struct sbx_upcall u;
	memset(&u, 0, sizeof(u));
	const uint64_t gpr[17] = {r.rax, r.rdx, r.rcx, r.rbx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8,
				  r.r9,	 r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rip};
	memcpy(u.r, gpr, sizeof(gpr));
	u.rflags = r.rflags;
	int own = index == 0 && !vm->proc.vcpu.home_root;
	int put = own ? sbx_copy_to_guest(vm, SBX_UPCALL_ADDR, &u, sizeof(u))
		      : sbx_gva_write(vm, cr3, SBX_CPU_VA + SBX_CPU_UPCALL_OFF, &u, sizeof(u));
	struct kvm_regs e = {.rip = vm->proc.image.khdr.upcall_entry,
			     .rsp = own ? SBX_UPCALL_STACK_TOP : SBX_WINDOW_UPCALL_TOP,
			     .rflags = 0x2 | SBX_RFLAGS_IF};
	if (put < 0 || sbx_x86_resume_fd(vm, fd, &e) < 0)
		return -EFAULT;
	vm->stats.upcalls++;
	return 1;
}
