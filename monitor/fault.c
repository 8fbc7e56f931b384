/* Turning a CPU exception into the one-line reason a user reads. The monitor reads the vCPU
 * and the frame the CPU itself pushed on the IST stack (the stub that reported it is one `out`
 * instruction, so nothing in the guest could have changed the frame in between). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vm.h"

static const struct {
	const char *name;
	int sig;
	int has_error_code;
} sbx_vectors[32] = {
    [0] = {"divide error (#DE)", SIGFPE, 0},
    [1] = {"debug trap (#DB)", SIGTRAP, 0},
    [2] = {"NMI", SIGSEGV, 0},
    [3] = {"breakpoint (#BP, int3)", SIGTRAP, 0},
    [4] = {"overflow (#OF)", SIGSEGV, 0},
    [5] = {"bound range exceeded (#BR)", SIGSEGV, 0},
    [6] = {"invalid opcode (#UD)", SIGILL, 0},
    [7] = {"device not available (#NM)", SIGFPE, 0},
    [8] = {"double fault (#DF)", SIGSEGV, 1},
    [10] = {"invalid TSS (#TS)", SIGSEGV, 1},
    [11] = {"segment not present (#NP)", SIGSEGV, 1},
    [12] = {"stack-segment fault (#SS)", SIGBUS, 1},
    [13] = {"general protection fault (#GP)", SIGSEGV, 1},
    [14] = {"page fault (#PF)", SIGSEGV, 1},
    [16] = {"x87 floating-point error (#MF)", SIGFPE, 0},
    [17] = {"alignment check (#AC)", SIGBUS, 1},
    [18] = {"machine check (#MC)", SIGBUS, 0},
    [19] = {"SIMD floating-point error (#XM)", SIGFPE, 0},
    [21] = {"control protection (#CP)", SIGSEGV, 1},
};

void sbx_fault_describe(struct sbx_vm *vm, int vector)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	int sig = SIGSEGV;
	const char *name = "unknown exception";
	int has_err = 0;
	if (vector >= 0 && vector < 32 && sbx_vectors[vector].name) {
		name = sbx_vectors[vector].name;
		sig = sbx_vectors[vector].sig;
		has_err = sbx_vectors[vector].has_error_code;
	}
	vm->stop.signal = sig;
	vm->stop.status = 128 + sig;
	if (ioctl(vm->vcpu_fd, KVM_GET_REGS, &regs) < 0 ||
	    ioctl(vm->vcpu_fd, KVM_GET_SREGS, &sregs) < 0) {
		snprintf(vm->stop.reason, sizeof(vm->stop.reason),
			 "SIG%s: %s (vCPU state unreadable)", sigabbrev_np(sig), name);
		return;
	}
	/* [error code,] rip, cs, rflags, rsp, ss as the CPU pushed them. */
	uint64_t frame[6] = {0};
	uint64_t fa = regs.rsp;
	if (sbx_copy_from_guest(vm, frame, fa, sizeof(frame)) < 0) {
		snprintf(vm->stop.reason, sizeof(vm->stop.reason),
			 "SIG%s: %s; exception frame at 0x%llx is outside RAM", sigabbrev_np(sig),
			 name, (unsigned long long)fa);
		return;
	}
	uint64_t err = has_err ? frame[0] : 0;
	const uint64_t *f = has_err ? frame + 1 : frame;
	uint64_t rip = f[0], rsp = f[3];
	char what[200] = "";
	if (vector == 14) {
		uint64_t a = sregs.cr2;
		const char *kind = (err & 0x10) ? "execute" : (err & 2) ? "write" : "read";
		const char *why = (err & 1) ? "protection violation" : "not mapped";
		if (a >= vm->stack_guard && a < vm->stack_guard + SBX_PAGE_SIZE)
			snprintf(what, sizeof(what),
				 ": stack overflow (%s at 0x%llx hit the guard page)", kind,
				 (unsigned long long)a);
		else if ((err & 0x11) == 0x11)
			snprintf(what, sizeof(what), ": jump into non-executable memory at 0x%llx",
				 (unsigned long long)a);
		else
			snprintf(what, sizeof(what), ": %s of address 0x%llx (%s)", kind,
				 (unsigned long long)a, why);
	} else if (has_err && err) {
		snprintf(what, sizeof(what), " (error code 0x%llx)", (unsigned long long)err);
	}
	snprintf(vm->stop.reason, sizeof(vm->stop.reason), "SIG%s: %s%s at rip 0x%llx (rsp 0x%llx)",
		 sigabbrev_np(sig), name, what, (unsigned long long)rip, (unsigned long long)rsp);
}
