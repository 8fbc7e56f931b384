/* A process's copy: fork makes the child a VM of its own holding a copy of the parent's RAM
 * and vCPU, stopped in the same FORK request (docs/architecture.md, "Processes"). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vm.h"

#define SBX_FORK_DROPS ((uint32_t)(SBX_BOOT_EXEC | SBX_BOOT_WARM | SBX_BOOT_EXIT_PARKS))

/* The MSRs a fork carries over: the syscall entry, the FS/GS bases, and the TSC last, so that
 * the child's clock goes on from the parent's. */
static const uint32_t fork_msrs[] = {0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084,
				     0xc0000102, 0xc0000100, 0xc0000101, 0x00000010};
#define FORK_NMSRS (sizeof(fork_msrs) / sizeof(fork_msrs[0]))

/* One extent of the parent's RAM into the child's, written into the child's memfd rather
 * than stored through its mapping: the kernel then fills the new pages without a page fault
 * (and a page of zeros) each, which is what the copy cost where a fault is dear (PVM: 64 MiB
 * in 242 ms by memcpy, 13 ms by pwrite; bench/ramcopy_bench). Only the pages the child then
 * touches get their host page-table entries, at that touch. The parent's pages are read
 * through its mapping, which KVM has faulted in. */
static int copy_extent(struct sbx_vm *parent, struct sbx_vm *child, uint64_t at, uint64_t len)
{
	if (child->proc.mem.fd < 0) {
		memcpy(child->proc.mem.base + at, parent->proc.mem.base + at, len);
		return 0;
	}
	return sbx_mem_write_out(parent, child->proc.mem.fd, at, len);
}

/* Only the pages the parent's RAM holds below end: a memfd's holes read as zeros and stay
 * holes. A shell's process holds a few MiB of its --mem. */
static int copy_ram(struct sbx_vm *parent, struct sbx_vm *child, uint64_t end_gpa, char *err,
		    size_t errlen)
{
	int fd = parent->proc.mem.fd, r = 0;
	off_t end = (off_t)end_gpa, off = 0;
	/* A fork's child on its parent's RAM: what it sees, where it can be (its own stays lent:
	 * with other threads, a copy of its own could lose a write a host call makes meanwhile). */
	if (fd < 0 && parent->proc.mem.lender_fd >= 3 && end_gpa == parent->proc.mem.size &&
	    atomic_load(&parent->proc.mem.lent)) {
		r = sbx_mem_copy_view(parent, child);
		return r < 0 ? sbx_fail(err, errlen, r, "copying guest RAM to the child: %s",
					strerror(-r))
			     : 0;
	}
	if (fd < 0) /* a snapshot's mapping (lazy restore): no extents to follow */
		r = copy_extent(parent, child, 0, end_gpa);
	while (fd >= 0 && off < end && r == 0) {
		off_t data = lseek(fd, off, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break;
		if (data < 0)
			return sbx_fail(err, errlen, -errno, "SEEK_DATA in guest RAM: %s",
					strerror(errno));
		off_t hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || hole > end)
			hole = end;
		r = copy_extent(parent, child, (uint64_t)data, (uint64_t)(hole - data));
		off = hole;
	}
	return r < 0 ? sbx_fail(err, errlen, r, "copying guest RAM to the child: %s", strerror(-r))
		     : 0;
}

static int copy_ioctl(int from, int to, unsigned long get, unsigned long set, void *buf,
		      const char *name, char *err, size_t errlen)
{
	if (ioctl(from, get, buf) < 0 || ioctl(to, set, buf) < 0)
		return sbx_fail(err, errlen, -errno, "copying %s to the child: %s", name,
				strerror(errno));
	return 0;
}

static int copy_vcpu(struct sbx_vm *parent, const struct sbx_fork_src *src, struct sbx_vm *child,
		     char *err, size_t errlen)
{
	int from = src->fd, to = child->proc.vcpu.fd, r;
	if (ioctl(to, KVM_SET_CPUID2, parent->proc.kvm.cpuid) < 0)
		return sbx_fail(err, errlen, -errno, "KVM_SET_CPUID2: %s", strerror(errno));
	/* KVM may still owe the doorbell's MMIO write: done first, so the state is whole. */
	sbx_vcpu_complete_fd(parent, src->fd, src->run);
	struct kvm_sregs sr;
	struct kvm_regs rg;
	struct kvm_xcrs xc;
	if ((r = copy_ioctl(from, to, KVM_GET_SREGS, KVM_SET_SREGS, &sr, "KVM_SREGS", err,
			    errlen)) < 0 ||
	    (r = copy_ioctl(from, to, KVM_GET_XCRS, KVM_SET_XCRS, &xc, "KVM_XCRS", err, errlen)) <
		0 ||
	    (r = copy_ioctl(from, to, KVM_GET_REGS, KVM_SET_REGS, &rg, "KVM_REGS", err, errlen)) <
		0)
		return r;
	size_t xlen = sbx_kvm_xsave_bytes(parent);
	void *xs = calloc(1, xlen);
	if (!xs)
		return sbx_fail(err, errlen, -ENOMEM, "out of memory");
	r = copy_ioctl(from, to, xlen > sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE,
		       KVM_SET_XSAVE, xs, "KVM_XSAVE", err, errlen);
	free(xs);
	if (r < 0)
		return r;
	uint64_t val[FORK_NMSRS];
	if (sbx_kvm_msrs_fd(from, 0, fork_msrs, val, FORK_NMSRS) != (int)FORK_NMSRS ||
	    sbx_kvm_msrs_fd(to, 1, fork_msrs, val, FORK_NMSRS) != (int)FORK_NMSRS)
		return sbx_fail(err, errlen, -EIO, "copying the MSRs to the child");
	child->proc.vcpu.xcr0 = parent->proc.vcpu.xcr0;
	sbx_set_guest_root(child, sr.cr3);
	return 0;
}

int sbx_core_fork(struct sbx_vm *parent, struct sbx_vm *child, uint64_t seq, char *err,
		  size_t errlen)
{
	int r;
	/* The caller's vCPU: vCPU 0, or a second thread's. The child's vCPU 0 goes on as that
	 * thread, on its window (page tables, kernel stacks, per-CPU page and ring) until it
	 * execs; the guest kernel forgets the other threads (k_thread_forked). The others were
	 * not stopped: the caller holds the kernel's lock, so the kernel's state is whole, and
	 * their own memory is copied as it is at that moment. */
	struct sbx_fork_src src;
	if (sbx_thread_fork_src(parent, &src) < 0)
		return sbx_fail(err, errlen, -EINVAL,
				"fork from a thread the monitor does not know");
	/* A lent RAM (a vfork's child) is copied only where the monitor writes the stopped
	 * parent's (its boot page: a signal's bit, a new ppid), which the child must not see. */
	uint64_t end = child->proc.mem.lent ? SBX_PT_ADDR : parent->proc.mem.size;
	if ((r = copy_ram(parent, child, end, err, errlen)) < 0)
		return r;
	struct sbx_kvm *k = &child->proc.kvm;
	k->kvm_fd = parent->proc.kvm.kvm_fd;
	k->kvm_fd_borrowed = 1;
	k->is_pvm = parent->proc.kvm.is_pvm;
	k->xs = parent->proc.kvm.xs;
	k->cpuid = sbx_cpuid_copy(parent->proc.kvm.cpuid);
	if (!k->cpuid)
		return sbx_fail(err, errlen, -ENOMEM, "out of memory");
	k->vm_fd = sbx_kvm_ioctl(k->kvm_fd, KVM_CREATE_VM, 0);
	if (k->vm_fd < 0)
		return sbx_fail(err, errlen, -errno, "KVM_CREATE_VM: %s", strerror(errno));
	struct kvm_userspace_memory_region region = {
	    .slot = 0,
	    .memory_size = child->proc.mem.size,
	    .userspace_addr = (uint64_t)(uintptr_t)child->proc.mem.base,
	};
	if (ioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return sbx_fail(err, errlen, -errno, "KVM_SET_USER_MEMORY_REGION: %s",
				strerror(errno));
	if ((r = sbx_shmap_fork(parent, child)) < 0)
		return sbx_fail(err, errlen, r, "sharing the parent's shared file mappings: %s",
				strerror(-r));
	if ((r = sbx_kvm_create_vcpu(child, err, errlen)) < 0 ||
	    (r = copy_vcpu(parent, &src, child, err, errlen)) < 0)
		return r;
	child->proc.vcpu.home_root = src.index ? src.root : parent->proc.vcpu.home_root;
	child->proc.ring.gpa = src.ring_gpa == SBX_RING_ADDR ? 0 : src.ring_gpa;
	child->proc.vcpu.cpl = parent->proc.vcpu.cpl;
	child->proc.threads.shootdown = parent->proc.threads.shootdown;
	child->proc.threads.max = parent->proc.threads.max;
	child->proc.threads.ncpus = parent->proc.threads.ncpus;
	child->proc.image = parent->proc.image;
	child->proc.other_image = parent->proc.other_image;
	/* The record is in the copied boot page: its count goes on from the parent's, as
	 * idle_ns's does. */
	child->proc.kvm.steal_told = parent->proc.kvm.steal_told;
	sbx_x86_steal_time(child, child->proc.vcpu.fd);
	memcpy(child->proc.cwd, parent->proc.cwd, sizeof(child->proc.cwd));
	child->host = parent->host;
	child->opts = parent->opts;
	/* A child of a repeated run's program (serve, fuzz) is a plain process: its exit ends it,
	 * and no snapshot point is its; after an execve too (the boot page is made again). */
	child->opts.boot_flags &= ~SBX_FORK_DROPS;
	child->life.confined = parent->life.confined;
	if (parent->proc.exec_path && !(child->proc.exec_path = strdup(parent->proc.exec_path)))
		return sbx_fail(err, errlen, -ENOMEM, "out of memory");
	if (parent->proc.exec_args && !(child->proc.exec_args = strdup(parent->proc.exec_args)))
		return sbx_fail(err, errlen, -ENOMEM, "out of memory");
	/* The request in the child's copy of the ring is answered 0; the monitor's tail moves
	 * past it as the parent's will. */
	uint32_t tail = src.tail;
	volatile struct sbx_ring *ring = sbx_gptr(child, src.ring_gpa, sizeof(*ring));
	if (!ring)
		return sbx_fail(err, errlen, -EINVAL, "the caller's ring is outside RAM");
	volatile struct sbx_slot *s = &ring->slots[tail % SBX_RING_SLOTS];
	s->ret = 0;
	__atomic_store_n(&s->done, seq, __ATOMIC_RELEASE);
	ring->tail = tail + 1;
	child->proc.ring.tail = tail + 1;
	struct sbx_bootinfo *b = sbx_gptr(child, SBX_BOOTINFO_ADDR, sizeof(*b));
	b->pid = child->proc.pid;
	b->tid_next = 0; /* the parent's is the parent's: the child asks for its own */
	b->ppid = child->proc.ppid;
	b->pdeathsig = 0; /* as Linux's fork: the parent's is not the child's */
	b->pgid = child->proc.pgid;
	b->sid = child->proc.sid;
	b->sig_incoming = 0;
	b->children_cpu_ns = b->children_maxrss_kib = 0; /* a new process has reaped none */
	/* A parent with threads did not subtract its steal (clock.h); its child, one thread,
	 * would subtract all of it: it counts its own from here. */
	if (b->threads_started)
		b->steal.steal = 0;
	b->flags &= ~SBX_FORK_DROPS;
	memset(b->nosys_count, 0, sizeof(b->nosys_count));
	return 0;
}
