/* Capturing a fault: the monitor reads the vCPU and the frame the CPU itself pushed on the IST
 * stack (the stub that reported it is one `out` instruction, so nothing in the guest could
 * have changed the frame in between). A program that ends itself (abort) is described from
 * the registers the kernel's syscall entry saved: the guest's own account, and said so. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vm.h"

static const struct {
	const char *name;
	int sig;
	int has_error_code;
} sbx_vectors[32] = {
    [0] = {"integer divide by zero (#DE)", SIGFPE, 0},
    [1] = {"debug trap (#DB)", SIGTRAP, 0},
    [2] = {"NMI", SIGSEGV, 0},
    [3] = {"breakpoint trap (#BP, int3)", SIGTRAP, 0},
    [4] = {"overflow (#OF)", SIGSEGV, 0},
    [5] = {"bound range exceeded (#BR)", SIGSEGV, 0},
    [6] = {"illegal instruction (#UD)", SIGILL, 0},
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

/* Segment selectors and bases, from the vCPU itself. */
static void fill_segments(const struct kvm_sregs *sr, struct sbx_fault *f)
{
	f->cs = sr->cs.selector;
	f->ss = sr->ss.selector;
	f->fs_base = sr->fs.base;
	f->gs_base = sr->gs.base;
	f->cr3 = sr->cr3;
}

/* A fault of `vector` (-1: none) that Linux would deliver as `sig`, its cause to be told. */
static void fault_start(struct sbx_fault *f, int vector, int sig, int from_cpu)
{
	memset(f, 0, sizeof(*f));
	f->vector = vector;
	f->signal = sig;
	f->from_cpu = from_cpu;
}

/* The general registers in DWARF order, rsp and rip as given (the CPU-pushed frame's, after
 * an exception). */
static void fill_gprs(const struct kvm_regs *r, uint64_t rsp, uint64_t rip, struct sbx_fault *f)
{
	const uint64_t gpr[SBX_NREGS] = {r->rax, r->rdx, r->rcx, r->rbx, r->rsi, r->rdi,
					 r->rbp, rsp,	 r->r8,	 r->r9,	 r->r10, r->r11,
					 r->r12, r->r13, r->r14, r->r15, rip};
	memcpy(f->r, gpr, sizeof(gpr));
}

/* The program's registers at its latest syscall (the kernel's frame of it): syscall left rip
 * in rcx and rflags in r11; a patched site's call may return through its record, which is
 * named by the site. */
static void fill_from_frame(struct sbx_vm *vm, const struct sbx_syscall_frame *sf,
			    struct sbx_fault *f)
{
	uint64_t rip = sbx_patch_site_of(vm, sf->rip);
	const uint64_t gpr[SBX_NREGS] = {sf->rax, sf->rdx, sf->rip, sf->rbx, sf->rsi, sf->rdi,
					 sf->rbp, sf->rsp, sf->r8,  sf->r9,  sf->r10, sf->rflags,
					 sf->r12, sf->r13, sf->r14, sf->r15, rip};
	memcpy(f->r, gpr, sizeof(gpr));
	f->rflags = sf->rflags;
}

/* The kernel's mapping at a, if it takes its pages on first touch: its protection (SBX_PROT_*,
 * with 0x80 set so that PROT_NONE still says "found"), or 0. The guest's own table: it only
 * words the report and the program's own siginfo. */
static unsigned lazy_prot(struct sbx_vm *vm, uint64_t a)
{
	struct sbx_vma *v;
	unsigned n = sbx_guest_vmas(vm, &v), prot = 0;
	for (unsigned i = 0; i < n && v[i].start <= a; i++)
		if (a < v[i].end && (v[i].flags & SBX_VMA_F_LAZY))
			prot = 0x80 | v[i].prot;
	free(v);
	return prot;
}

static void page_fault_cause(struct sbx_vm *vm, struct sbx_fault *f)
{
	uint64_t a = f->cr2, e = f->err;
	const char *null = a < 4096 ? " (null pointer)" : "";
	unsigned lazy = (e & SBX_PF_PRESENT) ? 0 : lazy_prot(vm, a);
	if (lazy && (lazy & SBX_PF_NEED(e))) {
		/* The kernel found no page for a first touch: Linux's OOM killer would end the
		 * program, with SIGKILL. */
		snprintf(
		    f->cause, sizeof(f->cause),
		    "out of memory: the first touch of 0x%llx found all %llu MiB of RAM in use "
		    "(--mem; memory mapped with MAP_NORESERVE counts as it is touched)",
		    (unsigned long long)a, (unsigned long long)(vm->proc.mem.size >> 20));
		f->signal = SIGKILL;
		return;
	}
	f->accerr = lazy != 0;
	if (lazy)
		e |= SBX_PF_PRESENT; /* the mapping forbids the access: worded as for a present page
				      */
	if (a >= vm->proc.image.stack_guard && a < vm->proc.image.stack_guard + SBX_PAGE_SIZE)
		snprintf(f->cause, sizeof(f->cause),
			 "stack overflow: %s at 0x%llx hit the guard page below the stack",
			 (e & 2) ? "write" : "read", (unsigned long long)a);
	else if (e & 0x10)
		snprintf(f->cause, sizeof(f->cause), "jump into %s memory at 0x%llx%s",
			 (e & 1) ? "non-executable" : "unmapped", (unsigned long long)a, null);
	else if (e & 1)
		snprintf(f->cause, sizeof(f->cause), "%s 0x%llx: the page is read-only",
			 (e & 2) ? "write to" : "read of", (unsigned long long)a);
	else
		snprintf(f->cause, sizeof(f->cause), "%s unmapped address 0x%llx%s",
			 (e & 2) ? "write to" : "read of", (unsigned long long)a, null);
}

void sbx_fault_from_cpu(struct sbx_vm *vm, int vector, struct sbx_fault *f)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	fault_start(f, vector, SIGSEGV, 1);
	const char *name = "unknown exception";
	int has_err = 0;
	if (vector >= 0 && vector < 32 && sbx_vectors[vector].name) {
		name = sbx_vectors[vector].name;
		f->signal = sbx_vectors[vector].sig;
		has_err = sbx_vectors[vector].has_error_code;
	}
	if (vector == SBX_VEC_SHMAP_BUS) {
		/* No exception frame: KVM_RUN failed at the instruction itself. */
		uint64_t a = vm->proc.shmaps.bus_addr;
		char cause[sizeof(f->cause)];
		const struct sbx_shmap *m = sbx_shmap_find(vm, a);
		snprintf(cause, sizeof(cause), "bus error: access to 0x%llx, past the end of %s",
			 (unsigned long long)a, m && m->gpath ? m->gpath : "a mapped file");
		sbx_fault_from_regs(vm, SIGBUS, cause, f);
		f->vector = vector;
		f->cr2 = a;
		return;
	}
	snprintf(f->cause, sizeof(f->cause), "%s", name);
	int fd = sbx_fault_fd(vm);
	if (ioctl(fd, KVM_GET_REGS, &regs) < 0 || ioctl(fd, KVM_GET_SREGS, &sregs) < 0) {
		snprintf(f->cause, sizeof(f->cause), "%s (vCPU state unreadable)", name);
		return;
	}
	/* [error code,] rip, cs, rflags, rsp, ss as the CPU pushed them on the IST stack. */
	uint64_t frame[6] = {0};
	/* The IST stack is in the vCPU's window: read through its own page tables. */
	if (sbx_gva_read(vm, sregs.cr3, regs.rsp, frame, sizeof(frame)) < 0) {
		snprintf(f->cause, sizeof(f->cause), "%s; its frame at 0x%llx is outside RAM", name,
			 (unsigned long long)regs.rsp);
		return;
	}
	const uint64_t *fr = has_err ? frame + 1 : frame;
	f->err = has_err ? frame[0] : 0;
	f->cr2 = sregs.cr2;
	fill_gprs(&regs, fr[3], fr[0], f);
	fill_segments(&sregs, f);
	sbx_set_guest_root(vm, sregs.cr3);
	f->cs = (uint16_t)fr[1];
	f->rflags = fr[2];
	f->ss = (uint16_t)fr[4];
	if (vector == 14)
		page_fault_cause(vm, f);
	else if (vector == 13 && f->err)
		snprintf(f->cause, sizeof(f->cause), "%s, error code 0x%llx", name,
			 (unsigned long long)f->err);
	else if (vector == 13)
		snprintf(f->cause, sizeof(f->cause),
			 "%s: a privileged instruction or a non-canonical address", name);
}

/* After a triple fault only the vCPU's current registers are left to describe it. */
void sbx_fault_from_regs(struct sbx_vm *vm, int sig, const char *cause, struct sbx_fault *f)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	fault_start(f, -1, sig, 1);
	snprintf(f->cause, sizeof(f->cause), "%s", cause);
	int fd = sbx_fault_fd(vm);
	if (ioctl(fd, KVM_GET_REGS, &regs) < 0 || ioctl(fd, KVM_GET_SREGS, &sregs) < 0)
		return;
	fill_gprs(&regs, regs.rsp, regs.rip, f);
	f->rflags = regs.rflags;
	fill_segments(&sregs, f);
	f->cr2 = sregs.cr2;
}

void sbx_fault_from_syscall(struct sbx_vm *vm, int sig, struct sbx_fault *f)
{
	struct sbx_syscall_frame sf;
	struct kvm_sregs sregs;
	fault_start(f, -1, sig, 0);
	snprintf(f->cause, sizeof(f->cause), "%s sent by the program to itself",
		 sig == SIGABRT ? "abort()" : "a fatal signal");
	/* The frame of the thread that ended the program, in its window. */
	uint64_t root =
	    vm->life.stop.thread_index > 0 ? vm->life.stop.thread_cr3 : vm->proc.vcpu.home_root;
	if (root ? sbx_gva_read(vm, root, SBX_WINDOW_VA + SBX_SYSCALL_FRAME_ADDR, &sf, sizeof(sf)) <
		       0
		 : sbx_copy_from_guest(vm, &sf, SBX_SYSCALL_FRAME_ADDR, sizeof(sf)) < 0)
		return;
	fill_from_frame(vm, &sf, f);
	if (ioctl(sbx_fault_fd(vm), KVM_GET_SREGS, &sregs) == 0)
		fill_segments(&sregs, f);
}

int sbx_thread_regs(struct sbx_vm *vm, unsigned i, struct sbx_fault *f, uint32_t *tid)
{
	int fd;
	uint64_t root;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	if (sbx_thread_vcpu(vm, i, &fd, &root, tid) < 0 || !*tid)
		return -ENOENT;
	if (ioctl(fd, KVM_GET_REGS, &regs) < 0 || ioctl(fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	fault_start(f, -1, 0, 1);
	struct sbx_syscall_frame sf;
	/* In a patched site's record the registers are the program's (but %rsp and %rbx past
	 * a cpuid record's switch of stacks), and rip names the site. */
	if (regs.rip >= SBX_PATCH_ADDR && regs.rip < SBX_PATCH_ADDR + SBX_PATCH_BYTES) {
		fill_gprs(&regs, regs.rsp, sbx_patch_site_of(vm, regs.rip), f);
		f->rflags = regs.rflags;
	} else if (sbx_in_kernel(regs.rip) &&
		   sbx_gva_read(vm, root, SBX_WINDOW_VA + SBX_SYSCALL_FRAME_ADDR, &sf,
				sizeof(sf)) == 0) {
		fill_from_frame(vm, &sf, f);
		f->from_cpu = 0;
		f->outside = sf.rip == 0;
	} else {
		fill_gprs(&regs, regs.rsp, regs.rip, f);
		f->rflags = regs.rflags;
	}
	fill_segments(&sregs, f);
	return 0;
}
