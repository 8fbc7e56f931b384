/* All machine setup, done by the monitor before the first guest instruction: page tables,
 * GDT/TSS/IDT, control registers, MSRs, CPUID, XCR0 and the FPU. No guest code runs at CPL0
 * for any of it (under PVM every CPL0 instruction is emulated). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "vm.h"

#define PAGE 0x1000ull
#define HUGE 0x200000ull

#define MSR_EFER 0xc0000080
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SFMASK 0xc0000084
#define MSR_FS_BASE 0xc0000100
#define MSR_GS_BASE 0xc0000101
#define MSR_KERNEL_GS_BASE 0xc0000102
#define MSR_TSC 0x10
#define MSR_TSC_AUX 0xc0000103
#define MSR_IA32_CR_PAT 0x277
#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176

#define EFER_SCE 0x1ull
#define EFER_LME 0x100ull
#define EFER_LMA 0x400ull
#define EFER_NXE 0x800ull
#define CR0_PE 0x1ull
#define CR0_MP 0x2ull
#define CR0_ET 0x10ull
#define CR0_NE 0x20ull
#define CR0_WP 0x10000ull
#define CR0_AM 0x40000ull
#define CR0_PG 0x80000000ull
#define CR4_PAE 0x20ull
#define CR4_OSFXSR 0x200ull
#define CR4_OSXMMEXCPT 0x400ull
#define CR4_FSGSBASE 0x10000ull
#define CR4_OSXSAVE 0x40000ull

struct pt_alloc {
	struct sbx_vm *vm;
	uint64_t next;
};

static uint64_t *pt_page(struct sbx_vm *vm, uint64_t gpa)
{
	return sbx_gptr(vm, gpa, PAGE);
}

static int pt_new(struct pt_alloc *a, uint64_t *gpa)
{
	if (a->next >= SBX_PT_END)
		return -ENOMEM;
	*gpa = a->next;
	a->next += PAGE;
	memset(pt_page(a->vm, *gpa), 0, PAGE);
	return 0;
}

/* The leaf entry for one 4 KiB page at `va` (identity-mapped except the doorbell). */
static uint64_t page_entry(struct sbx_vm *vm, uint64_t va)
{
	uint64_t user = vm->proc.vcpu.cpl == 3 ? SBX_PTE_U : 0;
	uint64_t base = SBX_PTE_P | SBX_PTE_A | user;
	if (va < SBX_MIN_ADDR || va >= vm->proc.mem.size || va == vm->proc.image.stack_guard)
		return 0;
	if (va == SBX_DOORBELL_VA)
		return SBX_DOORBELL_GPA | base | SBX_PTE_W | SBX_PTE_D | SBX_PTE_NX;
	if (va < SBX_USER_ADDR) {
		/* The kernel image and the vDSO are executable; data, stacks and tables not. */
		int text = va >= SBX_KERNEL_ADDR && va < SBX_VDSO_END;
		return va | base | SBX_PTE_W | SBX_PTE_D | (text ? 0 : SBX_PTE_NX);
	}
	uint32_t prot = 0;
	int in_seg = 0;
	for (unsigned i = 0; i < vm->proc.image.img.nsegs; i++) {
		const struct loader_segment *s = &vm->proc.image.img.segs[i];
		if (va >= s->start && va < s->end) {
			prot |= s->prot;
			in_seg = 1;
		}
	}
	if (!in_seg)
		return va | base | SBX_PTE_W | SBX_PTE_D | SBX_PTE_NX;
	return va | base | ((prot & PROT_WRITE) ? SBX_PTE_W | SBX_PTE_D : 0) |
	       ((prot & PROT_EXEC) ? 0 : SBX_PTE_NX);
}

/* Does anything in [r, r + 2 MiB) differ from plain anonymous memory? */
static int region_special(struct sbx_vm *vm, uint64_t r)
{
	uint64_t e = r + HUGE;
	if (r < SBX_USER_ADDR || e > vm->proc.mem.size)
		return 1;
	if (vm->proc.image.stack_guard >= r && vm->proc.image.stack_guard < e)
		return 1;
	for (unsigned i = 0; i < vm->proc.image.img.nsegs; i++)
		if (vm->proc.image.img.segs[i].start < e && vm->proc.image.img.segs[i].end > r)
			return 1;
	return 0;
}

static int build_page_tables(struct sbx_vm *vm, char *err, size_t errlen)
{
	struct pt_alloc a = {.vm = vm, .next = SBX_PT_ADDR};
	uint64_t pml4, pdpt;
	const uint64_t table = SBX_PTE_P | SBX_PTE_W | SBX_PTE_U | SBX_PTE_A;
	if (pt_new(&a, &pml4) || pt_new(&a, &pdpt))
		goto full;
	pt_page(vm, pml4)[0] = pdpt | table;
	/* vCPU 0's window: guest-physical [0, 2 MiB) in one large page, executable for the
	 * per-CPU page's stub (the kernel's stacks are in it). */
	uint64_t wpdpt, wpd;
	if (pt_new(&a, &wpdpt) || pt_new(&a, &wpd))
		goto full;
	pt_page(vm, pml4)[(SBX_WINDOW_VA >> 39) & 511] = wpdpt | table;
	pt_page(vm, wpdpt)[(SBX_WINDOW_VA >> 30) & 511] = wpd | table;
	pt_page(vm, wpd)[0] = SBX_PTE_P | SBX_PTE_W | SBX_PTE_A | SBX_PTE_D | SBX_PTE_PS |
			      (vm->proc.vcpu.cpl == 3 ? SBX_PTE_U : 0);
	uint64_t ngib = (vm->proc.mem.size + (1ull << 30) - 1) >> 30;
	for (uint64_t g = 0; g < ngib; g++) {
		uint64_t pd;
		if (pt_new(&a, &pd))
			goto full;
		pt_page(vm, pdpt)[g] = pd | table;
		for (uint64_t j = 0; j < 512; j++) {
			uint64_t r = (g << 30) + j * HUGE;
			if (r >= vm->proc.mem.size)
				break;
			if (!region_special(vm, r)) {
				pt_page(vm, pd)[j] = page_entry(vm, r) | SBX_PTE_PS;
				continue;
			}
			uint64_t pt;
			if (pt_new(&a, &pt))
				goto full;
			uint64_t *e = pt_page(vm, pt);
			for (uint64_t k = 0; k < 512; k++)
				e[k] = page_entry(vm, r + k * PAGE);
			pt_page(vm, pd)[j] = pt | table;
		}
	}
	return 0;
full:
	return sbx_fail(err, errlen, -ENOMEM,
			"page tables for %llu MiB of RAM do not fit in the page-table area",
			(unsigned long long)(vm->proc.mem.size >> 20));
}

static uint64_t gdt_entry(uint32_t flags_access)
{
	/* flags_access: access byte in bits 0..7, flags nibble in bits 12..15 */
	uint64_t access = flags_access & 0xff, flags = (flags_access >> 12) & 0xf;
	return 0xffffull | (access << 40) | (0xfull << 48) | (flags << 52);
}

static void build_descriptor_tables(struct sbx_vm *vm)
{
	uint64_t *gdt = sbx_gptr(vm, SBX_GDT_ADDR, PAGE);
	memset(gdt, 0, PAGE);
	gdt[SBX_SEL_KCODE >> 3] = gdt_entry(0xa09a); /* L, P, DPL0, code */
	gdt[SBX_SEL_KDATA >> 3] = gdt_entry(0xc092); /* G, D/B, P, DPL0, data */
	gdt[SBX_SEL_UDATA >> 3] = gdt_entry(0xc0f2); /* DPL3 data */
	gdt[SBX_SEL_UCODE >> 3] = gdt_entry(0xa0fa); /* L, DPL3 code */
	uint64_t tss = SBX_TSS_ADDR, limit = 103;
	gdt[SBX_SEL_TSS >> 3] = (limit & 0xffff) | ((tss & 0xffffff) << 16) | (0x89ull << 40) |
				((tss >> 24) & 0xff) << 56;
	gdt[(SBX_SEL_TSS >> 3) + 1] = tss >> 32;

	uint8_t *t = sbx_gptr(vm, SBX_TSS_ADDR, PAGE);
	memset(t, 0, PAGE);
	uint64_t ist[SBX_IST_COUNT];
	for (int i = 0; i < SBX_IST_COUNT; i++) {
		ist[i] = SBX_WINDOW_IST_TOP(i + 1); /* each vCPU's own */
		memcpy(t + 36 + 8 * i, &ist[i], 8);
	}
	memcpy(t + 4, &ist[0], 8); /* rsp0 */
	uint16_t iomap = 104;	   /* no I/O bitmap: `out` at CPL3 faults */
	memcpy(t + 102, &iomap, 2);

	uint64_t *idt = sbx_gptr(vm, SBX_IDT_ADDR, PAGE);
	memset(idt, 0, PAGE);
	for (uint32_t v = 0; v < vm->proc.image.khdr.nvectors && v < 32; v++) {
		uint64_t off =
		    vm->proc.image.khdr.vectors + (uint64_t)v * vm->proc.image.khdr.vector_stride;
		uint64_t dpl = (v == 3 || v == 4) ? 3 : 0; /* int3 and into work from user code */
		uint64_t istn = v == 8 ? 2 : (v == 2 || v == 18) ? 3 : 1;
		idt[2 * v] = (off & 0xffff) | ((uint64_t)SBX_SEL_KCODE << 16) | (istn << 32) |
			     ((0x8eull | (dpl << 5)) << 40) | ((off >> 16) & 0xffff) << 48;
		idt[2 * v + 1] = off >> 32;
	}
}

static void seg(struct kvm_segment *s, uint16_t sel, int code)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->limit = 0xffffffff;
	s->present = 1;
	s->dpl = sel & 3;
	s->s = 1;
	s->g = 1;
	if (code) {
		s->type = 11;
		s->l = 1;
	} else {
		s->type = 3;
		s->db = 1;
	}
}

static int set_sregs(struct sbx_vm *vm, int fd, uint64_t cr3, char *err, size_t errlen)
{
	struct kvm_sregs sr;
	if (ioctl(fd, KVM_GET_SREGS, &sr) < 0)
		goto fail;
	int u = vm->proc.vcpu.cpl == 3;
	seg(&sr.cs, u ? SBX_SEL_UCODE : SBX_SEL_KCODE, 1);
	seg(&sr.ss, u ? SBX_SEL_UDATA : SBX_SEL_KDATA, 0);
	sr.ds = sr.es = sr.fs = sr.gs = sr.ss;
	memset(&sr.tr, 0, sizeof(sr.tr));
	sr.tr.selector = SBX_SEL_TSS;
	sr.tr.base = SBX_TSS_ADDR;
	sr.tr.limit = 103;
	sr.tr.type = 11; /* busy 64-bit TSS */
	sr.tr.present = 1;
	memset(&sr.ldt, 0, sizeof(sr.ldt));
	sr.ldt.unusable = 1;
	sr.gdt.base = SBX_GDT_ADDR;
	sr.gdt.limit = 8 * 8 - 1;
	sr.idt.base = SBX_IDT_ADDR;
	sr.idt.limit = 256 * 16 - 1;
	sr.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG;
	sr.cr3 = cr3;
	sr.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_FSGSBASE | CR4_OSXSAVE;
	sr.efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
	if (ioctl(fd, KVM_SET_SREGS, &sr) < 0)
		goto fail;
	return 0;
fail:
	return sbx_fail(err, errlen, -errno, "setting segment/control registers: %s",
			strerror(errno));
}

static int set_msrs(struct sbx_vm *vm, int fd, char *err, size_t errlen)
{
	const uint32_t idx[7] = {MSR_STAR,    MSR_LSTAR,   MSR_CSTAR,	      MSR_SFMASK,
				 MSR_FS_BASE, MSR_GS_BASE, MSR_KERNEL_GS_BASE};
	uint64_t val[7] = {
	    ((uint64_t)(SBX_SEL_UDATA - 8 - 3) << 48) | ((uint64_t)SBX_SEL_KCODE << 32),
	    vm->proc.image.khdr.syscall_entry,
	    0,
	    SBX_SFMASK_BITS,
	    0,
	    0,
	    0,
	};
	int n = sbx_kvm_msrs_fd(fd, 1, idx, val, 7);
	if (n != 7)
		return sbx_fail(err, errlen, -EINVAL, "KVM_SET_MSRS set %d of 7 (MSR 0x%x): %s", n,
				n >= 0 && n < 7 ? idx[n] : 0, n < 0 ? strerror(-n) : "refused");
	return 0;
}

static int set_cpuid(struct sbx_vm *vm, uint64_t *xcr0, char *err, size_t errlen)
{
	int nent = 256;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + (size_t)nent * sizeof(c->entries[0]));
	if (!c)
		return -ENOMEM;
	c->nent = (uint32_t)nent;
	if (ioctl(vm->proc.kvm.kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		snprintf(err, errlen, "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		free(c);
		return -errno;
	}
	sbx_xstate_from_cpuid(&vm->proc.kvm.xs, c->entries, c->nent);
	*xcr0 = sbx_xstate_default(&vm->proc.kvm.xs);
	if (ioctl(vm->proc.vcpu.fd, KVM_SET_CPUID2, c) < 0) {
		snprintf(err, errlen, "KVM_SET_CPUID2: %s", strerror(errno));
		free(c);
		return -errno;
	}
	free(vm->proc.kvm.cpuid);
	vm->proc.kvm.cpuid = c;
	return 0;
}

static int set_fpu(int fd, char *err, size_t errlen)
{
	struct kvm_fpu f;
	memset(&f, 0, sizeof(f));
	f.fcw = 0x37f; /* what Linux gives a new process; the reset value 0x40 is not it */
	f.mxcsr = 0x1f80;
	if (ioctl(fd, KVM_SET_FPU, &f) < 0)
		return sbx_fail(err, errlen, -errno, "KVM_SET_FPU: %s", strerror(errno));
	return 0;
}

static int set_fpu_xcr(struct sbx_vm *vm, uint64_t xcr0, char *err, size_t errlen)
{
	/* x87, SSE, AVX and the AVX-512 states when offered; AMX only once the program asks
	 * (xstate.c). */
	int r = sbx_xstate_set_xcr0(vm, xcr0);
	if (r < 0)
		return sbx_fail(err, errlen, r, "KVM_SET_XCRS (XCR0=0x%llx): %s",
				(unsigned long long)xcr0, strerror(-r));
	return set_fpu(vm->proc.vcpu.fd, err, errlen);
}

static int set_regs(int fd, uint64_t rip, uint64_t rsp, char *err, size_t errlen)
{
	struct kvm_regs r;
	memset(&r, 0, sizeof(r));
	r.rip = rip;
	r.rsp = rsp;
	r.rflags = 0x2 | SBX_RFLAGS_IF;
	if (ioctl(fd, KVM_SET_REGS, &r) < 0)
		return sbx_fail(err, errlen, -errno, "KVM_SET_REGS: %s", strerror(errno));
	return 0;
}

int sbx_x86_build_tables(struct sbx_vm *vm, char *err, size_t errlen)
{
	int r = build_page_tables(vm, err, errlen);
	if (r < 0)
		return r;
	build_descriptor_tables(vm);
	return 0;
}

int sbx_x86_publish_cpuid(struct sbx_vm *vm, int fd)
{
	size_t len = sizeof(struct kvm_cpuid2) + SBX_CPUID_ENTS * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *c = calloc(1, len);
	struct sbx_cpuid_table *t = malloc(sizeof(*t));
	uint32_t *seqp = sbx_gptr(vm, SBX_CPUID_ADDR + offsetof(struct sbx_cpuid_table, seq), 4);
	const struct sbx_cpuid_table *cur = sbx_gptr(vm, SBX_CPUID_ADDR, sizeof(*cur));
	int r = !c || !t ? -ENOMEM : !seqp || !cur ? -EFAULT : 0;
	if (r < 0)
		goto out;
	c->nent = SBX_CPUID_ENTS;
	r = ioctl(fd, KVM_GET_CPUID2, c) < 0 ? -errno : 0;
	/* A table that cannot be read leaves every leaf to a real cpuid. */
	uint32_t n = r == 0 ? c->nent : 0;
	memset(t, 0, sizeof(*t));
	for (uint32_t i = 0; i < n; i++) {
		const struct kvm_cpuid_entry2 *e = &c->entries[i];
		t->e[i] = (struct sbx_cpuid_ent){
		    .function = e->function,
		    .index = e->index,
		    .flags = e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX
				 ? SBX_CPUID_SIGNIFICANT_INDEX
				 : 0,
		    .eax = e->eax,
		    .ebx = e->ebx,
		    .ecx = e->ecx,
		    .edx = e->edx,
		};
	}
	/* Other vCPUs may be reading it (a thread's AMX request changes XCR0): a sequence lock,
	 * odd while the entries change. Each write marks the page dirty after it (a migration
	 * round copying meanwhile). */
	/* Unchanged (a restore on the host it was taken on): RAM stays byte for byte as it was. */
	if (cur->n == n && !memcmp(cur->e, t->e, n * sizeof(t->e[0])))
		goto out;
	uint32_t seq = __atomic_load_n(seqp, __ATOMIC_RELAXED) | 1; /* odd */
	__atomic_store_n(seqp, seq, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	sbx_copy_to_guest(vm, SBX_CPUID_ADDR + offsetof(struct sbx_cpuid_table, e), t->e,
			  n * sizeof(t->e[0]));
	sbx_copy_to_guest(vm, SBX_CPUID_ADDR, &n, sizeof(n));
	__atomic_store_n(seqp, seq + 1, __ATOMIC_RELEASE);
	sbx_mem_dirty(vm, SBX_CPUID_ADDR, sizeof(*t));
out:
	free(t);
	free(c);
	return r;
}

int sbx_x86_set_cpuid(struct sbx_vm *vm, char *err, size_t errlen)
{
	return set_cpuid(vm, &vm->proc.vcpu.xcr0, err, errlen);
}

int sbx_x86_enter(struct sbx_vm *vm, uint64_t rip, uint64_t rsp)
{
	struct kvm_regs r;
	memset(&r, 0, sizeof(r));
	r.rip = rip;
	r.rsp = rsp;
	r.rflags = 0x2 | SBX_RFLAGS_IF;
	return sbx_x86_resume(vm, &r);
}

int sbx_x86_resume(struct sbx_vm *vm, const struct kvm_regs *r)
{
	return sbx_x86_resume_fd(vm, sbx_fault_fd(vm), r);
}

int sbx_x86_resume_fd(struct sbx_vm *vm, int fd, const struct kvm_regs *r)
{
	struct kvm_sregs sr;
	if (ioctl(fd, KVM_GET_SREGS, &sr) < 0)
		return -errno;
	int u = vm->proc.vcpu.cpl == 3;
	seg(&sr.cs, u ? SBX_SEL_UCODE : SBX_SEL_KCODE, 1);
	seg(&sr.ss, u ? SBX_SEL_UDATA : SBX_SEL_KDATA, 0);
	/* fs and gs keep their bases: the program's TLS. */
	uint64_t fsb = sr.fs.base, gsb = sr.gs.base;
	sr.ds = sr.es = sr.fs = sr.gs = sr.ss;
	sr.fs.base = fsb;
	sr.gs.base = gsb;
	if (ioctl(fd, KVM_SET_SREGS, &sr) < 0)
		return -errno;
	return ioctl(fd, KVM_SET_REGS, r) < 0 ? -errno : 0;
}

#define MSR_KVM_STEAL_TIME 0x4b564d03

void sbx_x86_pv_msrs_off(struct sbx_vm *vm, int fd, int main)
{
	/* kvmclock (both numbers), async page faults, steal time, PV EOI and the async-#PF
	 * vector: each makes KVM write guest memory at an address the guest gave, for as long as
	 * it is set. A refused one (no such feature) the guest could not set either. */
	const uint32_t idx[6] = {0x12,	     0x4b564d01, 0x4b564d02, MSR_KVM_STEAL_TIME,
				 0x4b564d04, 0x4b564d06};
	uint64_t val[6] = {0};
	sbx_kvm_msrs_set_known(fd, idx, val, 6);
	if (main)
		sbx_x86_steal_time(vm, fd);
}

int sbx_x86_steal_time(struct sbx_vm *vm, int fd)
{
	/* A kernel before 1.23 (a snapshot's) has reserved bytes there, and reads nothing. */
	uint32_t abi = vm->proc.image.khdr.abi_version;
	if (!sbx_abi_ok(abi) || (abi & 0xffff) < 23)
		return -EOPNOTSUPP;
	uint32_t idx = MSR_KVM_STEAL_TIME;
	uint64_t val = (SBX_BOOTINFO_ADDR + offsetof(struct sbx_bootinfo, steal)) | 1;
	int n = sbx_kvm_msrs_fd(fd, 1, &idx, &val, 1);
	if (n != 1 && !vm->proc.kvm.steal_told) {
		vm->proc.kvm.steal_told = 1;
		sbx_log(vm, 1,
			"steal time: off (KVM_SET_MSRS of MSR_KVM_STEAL_TIME: %s): the guest's "
			"CPU-time clocks count the time its vCPU waited for a host CPU",
			n < 0 ? strerror(-n) : "refused");
	}
	return n == 1 ? 0 : -EOPNOTSUPP;
}

int sbx_x86_set_vcpu(struct sbx_vm *vm, char *err, size_t errlen)
{
	int r, fd = vm->proc.vcpu.fd;
	if ((r = set_sregs(vm, fd, SBX_PT_ADDR, err, errlen)) < 0 ||
	    (r = set_msrs(vm, fd, err, errlen)) < 0 ||
	    (r = set_fpu_xcr(vm, vm->proc.vcpu.xcr0, err, errlen)) < 0 ||
	    (r = set_regs(fd, vm->proc.image.img.entry, vm->proc.image.entry_rsp, err, errlen)) < 0)
		return r;
	sbx_x86_steal_time(vm, fd);
	sbx_set_guest_root(vm, SBX_PT_ADDR);
	return 0;
}

/* A vCPU taken again for a new thread (after an execve, or by a run after the one that made
 * it) starts as a new one would, whatever its last thread did there with the kernel's
 * privilege (the guest kernel's CPL0 under hardware KVM; under PVM a program that rewrites its
 * page tables gets as far): extended registers in their initial state (YMM's upper halves,
 * AVX-512, PKRU, AMX tiles), no breakpoint in the debug registers, no event pending, and the
 * MSRs a snapshot keeps that set_msrs does not write at their reset values (XCR0 is given to
 * every thread's vCPU). Otherwise a request's thread could read another request's registers,
 * or leave it a breakpoint. */
static int set_fresh(struct sbx_vm *vm, int fd, char *err, size_t errlen)
{
	/* XSTATE_BV 0 puts every component in its initial state, and set_fpu then gives FCW and
	 * MXCSR Linux's values. */
	void *xs = calloc(1, sbx_kvm_xsave_bytes(vm));
	if (!xs)
		return sbx_fail(err, errlen, -ENOMEM, "no memory for a vCPU's XSAVE area");
	int r = ioctl(fd, KVM_SET_XSAVE, xs) < 0 ? -errno : 0;
	free(xs);
	if (r < 0)
		return sbx_fail(err, errlen, r, "KVM_SET_XSAVE: %s", strerror(-r));
	struct kvm_debugregs d;
	memset(&d, 0, sizeof(d));
	d.dr6 = 0xffff0ff0;
	d.dr7 = 0x400;
	if (ioctl(fd, KVM_SET_DEBUGREGS, &d) < 0)
		return sbx_fail(err, errlen, -errno, "KVM_SET_DEBUGREGS: %s", strerror(errno));
	struct kvm_vcpu_events ev;
	memset(&ev, 0, sizeof(ev));
	ev.flags = KVM_VCPUEVENT_VALID_NMI_PENDING;
	if (ioctl(fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
		return sbx_fail(err, errlen, -errno, "KVM_SET_VCPU_EVENTS: %s", strerror(errno));
	/* A host may refuse one (TSC_AUX without RDTSCP or RDPID). */
	const uint32_t idx[5] = {MSR_TSC_AUX, MSR_IA32_CR_PAT, MSR_IA32_SYSENTER_CS,
				 MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP};
	uint64_t val[5] = {0, 0x0007040600070406ull, 0, 0, 0};
	sbx_kvm_msrs_set_known(fd, idx, val, 5);
	sbx_x86_pv_msrs_off(vm, fd, 0);
	return 0;
}

int sbx_x86_thread_vcpu(struct sbx_vm *vm, int fd, uint64_t cr3, uint64_t rip, uint64_t rsp,
			int again, char *err, size_t errlen)
{
	if (!vm->proc.kvm.cpuid)
		return sbx_fail(err, errlen, -EINVAL, "no CPUID to give a new vCPU");
	/* A vCPU that has run keeps its CPUID (the same for every image): some host kernels
	 * refuse KVM_SET_CPUID2 once it has. XCR0 is given again: its last thread may have
	 * changed it with CPL0's powers (set_fresh). */
	if (!again && ioctl(fd, KVM_SET_CPUID2, vm->proc.kvm.cpuid) < 0)
		return sbx_fail(err, errlen, -errno, "KVM_SET_CPUID2: %s", strerror(errno));
	struct kvm_xcrs xc;
	memset(&xc, 0, sizeof(xc));
	xc.nr_xcrs = 1;
	xc.xcrs[0].value = vm->proc.vcpu.xcr0;
	if (ioctl(fd, KVM_SET_XCRS, &xc) < 0)
		return sbx_fail(err, errlen, -errno, "KVM_SET_XCRS: %s", strerror(errno));
	int r;
	if ((again && (r = set_fresh(vm, fd, err, errlen)) < 0) ||
	    (r = set_sregs(vm, fd, cr3, err, errlen)) < 0 ||
	    (r = set_msrs(vm, fd, err, errlen)) < 0 || (r = set_fpu(fd, err, errlen)) < 0 ||
	    (r = set_regs(fd, rip, rsp, err, errlen)) < 0)
		return r;
	return 0;
}
