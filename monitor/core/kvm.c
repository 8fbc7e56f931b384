/* /dev/kvm: version and capability checks, the VM, its one memslot and its one vCPU. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vm.h"

int sbx_kvm_is_pvm(void)
{
	return access("/sys/module/kvm_pvm", F_OK) == 0;
}

static const struct {
	int cap;
	const char *name;
} sbx_kvm_caps[] = {
    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
    {KVM_CAP_XCRS, "KVM_CAP_XCRS"},
    {KVM_CAP_GET_TSC_KHZ, "KVM_CAP_GET_TSC_KHZ"},
    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
};

int sbx_kvm_ioctl(int fd, unsigned long req, unsigned long arg)
{
	int r, tries = 0;
	while ((r = ioctl(fd, req, arg)) < 0 && errno == EINTR && ++tries < 10000)
		;
	return r;
}

int sbx_kvm_open(struct sbx_vm *vm, char *err, size_t errlen)
{
	vm->proc.kvm.kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->proc.kvm.kvm_fd < 0) {
		int e = errno;
		return sbx_fail(err, errlen, -e, "cannot open /dev/kvm: %s%s", strerror(e),
				e == ENOENT   ? " (no KVM on this machine)"
				: e == EACCES ? " (add yourself to the kvm group)"
					      : "");
	}
	int v = ioctl(vm->proc.kvm.kvm_fd, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION)
		return sbx_fail(err, errlen, -ENOTSUP, "/dev/kvm API version %d, need %d", v,
				KVM_API_VERSION);
	for (size_t i = 0; i < sizeof(sbx_kvm_caps) / sizeof(sbx_kvm_caps[0]); i++) {
		if (ioctl(vm->proc.kvm.kvm_fd, KVM_CHECK_EXTENSION, sbx_kvm_caps[i].cap) <= 0)
			return sbx_fail(err, errlen, -ENOTSUP, "/dev/kvm lacks %s",
					sbx_kvm_caps[i].name);
	}
	sbx_xstate_prepare();
	vm->proc.kvm.vm_fd = sbx_kvm_ioctl(vm->proc.kvm.kvm_fd, KVM_CREATE_VM, 0);
	if (vm->proc.kvm.vm_fd < 0) {
		int e = errno;
		return sbx_fail(err, errlen, -e, "KVM_CREATE_VM: %s", strerror(e));
	}
	struct kvm_userspace_memory_region region = {
	    .slot = 0,
	    .guest_phys_addr = 0,
	    .memory_size = vm->proc.mem.size,
	    .userspace_addr = (uint64_t)(uintptr_t)vm->proc.mem.base,
	};
	if (ioctl(vm->proc.kvm.vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
		int e = errno;
		return sbx_fail(err, errlen, -e, "KVM_SET_USER_MEMORY_REGION (%llu bytes): %s",
				(unsigned long long)vm->proc.mem.size, strerror(e));
	}
	return 0;
}

int sbx_kvm_create_vcpu(struct sbx_vm *vm, char *err, size_t errlen)
{
	vm->proc.vcpu.fd = sbx_kvm_ioctl(vm->proc.kvm.vm_fd, KVM_CREATE_VCPU, 0);
	if (vm->proc.vcpu.fd < 0) {
		int e = errno;
		return sbx_fail(err, errlen, -e, "KVM_CREATE_VCPU: %s", strerror(e));
	}
	int sz = ioctl(vm->proc.kvm.kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (sz < (int)sizeof(struct kvm_run))
		return sbx_fail(err, errlen, -EINVAL, "KVM_GET_VCPU_MMAP_SIZE: %d", sz);
	void *run = mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE, MAP_SHARED, vm->proc.vcpu.fd, 0);
	if (run == MAP_FAILED) {
		int e = errno;
		return sbx_fail(err, errlen, -e, "mmap of kvm_run: %s", strerror(e));
	}
	vm->proc.vcpu.run = run;
	vm->proc.vcpu.run_size = (size_t)sz;
	return 0;
}

struct kvm_cpuid2 *sbx_cpuid_copy(const struct kvm_cpuid2 *c)
{
	size_t len = sizeof(*c) + c->nent * sizeof(c->entries[0]);
	struct kvm_cpuid2 *d = malloc(len);
	if (d)
		memcpy(d, c, len);
	return d;
}

void sbx_kvm_close(struct sbx_vm *vm)
{
	free(vm->proc.kvm.cpuid);
	vm->proc.kvm.cpuid = NULL;
	if (vm->proc.vcpu.run)
		munmap(vm->proc.vcpu.run, vm->proc.vcpu.run_size);
	vm->proc.vcpu.run = NULL;
	if (vm->proc.vcpu.fd >= 0)
		close(vm->proc.vcpu.fd);
	if (vm->proc.kvm.vm_fd >= 0)
		close(vm->proc.kvm.vm_fd);
	if (vm->proc.kvm.kvm_fd >= 0 && !vm->proc.kvm.kvm_fd_borrowed)
		close(vm->proc.kvm.kvm_fd);
	vm->proc.vcpu.fd = vm->proc.kvm.vm_fd = vm->proc.kvm.kvm_fd = -1;
}

int sbx_kvm_msrs(struct sbx_vm *vm, int set, const uint32_t *idx, uint64_t *val, unsigned n)
{
	return sbx_kvm_msrs_fd(vm->proc.vcpu.fd, set, idx, val, n);
}

int sbx_kvm_msrs_fd(int fd, int set, const uint32_t *idx, uint64_t *val, unsigned n)
{
	/* struct kvm_msrs ends in a flexible array: build it in an aligned buffer. */
	union {
		struct kvm_msrs h;
		uint8_t b[sizeof(struct kvm_msrs) + 16 * sizeof(struct kvm_msr_entry)];
	} m;
	if (n > 16)
		return -EINVAL;
	memset(&m, 0, sizeof(m));
	m.h.nmsrs = n;
	for (unsigned i = 0; i < n; i++) {
		m.h.entries[i].index = idx[i];
		m.h.entries[i].data = set ? val[i] : 0;
	}
	int r = ioctl(fd, set ? KVM_SET_MSRS : KVM_GET_MSRS, &m);
	if (r < 0)
		return -errno;
	if (!set)
		for (unsigned i = 0; i < n; i++)
			val[i] = m.h.entries[i].data;
	return r; /* how many were processed */
}

/* KVM objects once RAM is in place (its mapping is what the memslot points at). */
int sbx_vm_empty_kvm(struct sbx_vm *vm, char *err, size_t errlen)
{
	int r = sbx_kvm_open(vm, err, errlen);
	if (r == 0)
		r = sbx_kvm_create_vcpu(vm, err, errlen);
	return r;
}

void sbx_kvm_msrs_set_known(int fd, const uint32_t *idx, uint64_t *val, unsigned n)
{
	for (unsigned done = 0; done < n;) {
		int k = sbx_kvm_msrs_fd(fd, 1, idx + done, val + done, n - done);
		done += (k > 0 ? (unsigned)k : 0) + 1; /* past the one refused, if any */
	}
}

size_t sbx_kvm_xsave_bytes(struct sbx_vm *vm)
{
	int n = ioctl(vm->proc.kvm.vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	return n > (int)sizeof(struct kvm_xsave) ? (size_t)n : sizeof(struct kvm_xsave);
}

/* The MSR indices KVM lists for a vCPU (a list the caller frees), or NULL with err set. */
static struct kvm_msr_list *msr_index_list(char *err, size_t errlen)
{
	int kfd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	struct kvm_msr_list probe = {.nmsrs = 0}, *list = NULL;
	if (kfd < 0) {
		sbx_fail(err, errlen, -errno, "/dev/kvm: %s", strerror(errno));
		return NULL;
	}
	if (ioctl(kfd, KVM_GET_MSR_INDEX_LIST, &probe) == 0 || errno == E2BIG)
		list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(uint32_t));
	if (list && (list->nmsrs = probe.nmsrs, ioctl(kfd, KVM_GET_MSR_INDEX_LIST, list) < 0)) {
		int e = errno;
		free(list);
		list = NULL;
		errno = e;
	}
	if (!list)
		sbx_fail(err, errlen, -errno, "KVM_GET_MSR_INDEX_LIST: %s", strerror(errno));
	close(kfd);
	return list;
}

int sbx_kvm_msrs_capture(int fd, struct kvm_msrs **out, char *err, size_t errlen)
{
	struct kvm_msr_list *list = msr_index_list(err, errlen);
	if (!list)
		return -EIO;
	struct kvm_msrs *m = calloc(1, sizeof(*m) + list->nmsrs * sizeof(struct kvm_msr_entry));
	*out = m;
	if (!m) {
		free(list);
		return sbx_fail(err, errlen, -ENOMEM, "out of memory");
	}
	unsigned n = 0;
	for (uint32_t i = 0; i < list->nmsrs; i++) {
		uint32_t idx = list->indices[i];
		uint64_t v;
		/* Time (TSC, its adjust and deadline) goes on; kvmclock's MSRs make KVM write
		 * guest memory. */
		if (idx == 0x10 || idx == 0x3b || idx == 0x6e0 || idx == 0x11 || idx == 0x12 ||
		    (idx >= 0x4b564d00 && idx <= 0x4b564dff))
			continue;
		if (sbx_kvm_msrs_fd(fd, 0, &idx, &v, 1) != 1)
			continue;
		m->entries[n].index = idx;
		m->entries[n].data = v;
		n++;
	}
	free(list);
	/* Keep those that also write back: KVM stops at the first it refuses. */
	for (;;) {
		m->nmsrs = n;
		int r = ioctl(fd, KVM_SET_MSRS, m);
		if (r < 0)
			return sbx_fail(err, errlen, -errno, "KVM_SET_MSRS: %s", strerror(errno));
		if ((unsigned)r >= n)
			return 0;
		memmove(&m->entries[r], &m->entries[r + 1],
			(n - (unsigned)r - 1) * sizeof(m->entries[0]));
		n--;
	}
}
