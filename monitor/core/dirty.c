/* Dirty-page tracking for reset and live migration: KVM's log covers what the guest wrote,
 * and a bitmap of our own covers what the monitor wrote into guest RAM (read() buffers, ring
 * completions, the boot page), which KVM never sees. With manual protection
 * (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) reading the log does not re-protect pages: we clear
 * exactly the bits we took, so a page written meanwhile is never lost. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vm.h"

uint64_t sbx_dirty_words(const struct sbx_vm *vm)
{
	return (vm->proc.mem.size / SBX_PAGE_SIZE + 63) / 64;
}

static int set_slot(struct sbx_vm *vm, uint32_t flags, uint64_t size)
{
	struct kvm_userspace_memory_region region = {
	    .slot = 0,
	    .flags = flags,
	    .guest_phys_addr = 0,
	    .memory_size = size,
	    .userspace_addr = (uint64_t)(uintptr_t)vm->proc.mem.base,
	};
	return ioctl(vm->proc.kvm.vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0 ? -errno : 0;
}

int sbx_dirty_start(struct sbx_vm *vm, char *err, size_t errlen)
{
	if (vm->proc.mem.dirty_logging)
		return 0;
	if (!vm->proc.mem.mon_dirty &&
	    !(vm->proc.mem.mon_dirty = calloc(sbx_dirty_words(vm), sizeof(uint64_t))))
		return sbx_fail(err, errlen, -ENOMEM, "out of memory for the dirty bitmap");
	/* Manual protection must be enabled before logging starts. */
	if (!vm->proc.mem.manual_protect &&
	    ioctl(vm->proc.kvm.vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) > 0) {
		struct kvm_enable_cap cap = {.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
					     .args = {KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE}};
		vm->proc.mem.manual_protect = ioctl(vm->proc.kvm.vm_fd, KVM_ENABLE_CAP, &cap) == 0;
	}
	int r = set_slot(vm, KVM_MEM_LOG_DIRTY_PAGES, vm->proc.mem.size);
	if (r < 0)
		return sbx_fail(err, errlen, r, "KVM_SET_USER_MEMORY_REGION with dirty logging: %s",
				strerror(-r));
	vm->proc.mem.dirty_logging = 1;
	atomic_store(&vm->proc.mem.tracking, 1);
	/* Start from a clean log: what happened before this point is not "since". */
	uint64_t *scratch = calloc(sbx_dirty_words(vm), sizeof(uint64_t));
	if (scratch) {
		sbx_dirty_collect(vm, scratch, 1);
		free(scratch);
	}
	memset(vm->proc.mem.mon_dirty, 0, sbx_dirty_words(vm) * sizeof(uint64_t));
	return 0;
}

void sbx_dirty_stop(struct sbx_vm *vm)
{
	if (vm->proc.mem.dirty_logging && vm->proc.kvm.vm_fd >= 0)
		set_slot(vm, 0, vm->proc.mem.size);
	vm->proc.mem.dirty_logging = 0;
	/* Other threads may be marking right now: the bitmap stays until sbx_vm_destroy. */
	atomic_store(&vm->proc.mem.tracking, 0);
}

int64_t sbx_dirty_collect(struct sbx_vm *vm, uint64_t *bitmap, int take_mon)
{
	return sbx_dirty_collect_keep(vm, bitmap, take_mon, NULL);
}

int64_t sbx_dirty_collect_keep(struct sbx_vm *vm, uint64_t *bitmap, int take_mon,
			       const uint64_t *writable)
{
	uint64_t nw = sbx_dirty_words(vm);
	/* KVM writes the whole bitmap: no need to clear it first. */
	if (!vm->proc.mem.dirty_buf && !(vm->proc.mem.dirty_buf = malloc(nw * sizeof(uint64_t))))
		return -ENOMEM;
	uint64_t *log = vm->proc.mem.dirty_buf;
	struct kvm_dirty_log dl = {.slot = 0, .dirty_bitmap = log};
	if (ioctl(vm->proc.kvm.vm_fd, KVM_GET_DIRTY_LOG, &dl) < 0)
		return -errno;
	int64_t n = 0;
	uint64_t first = nw, last = 0;
	for (uint64_t i = 0; i < nw; i++) {
		/* A plain load first: the exchange (a locked instruction) only where bits are. */
		uint64_t m = vm->proc.mem.mon_dirty
				 ? __atomic_load_n(&vm->proc.mem.mon_dirty[i], __ATOMIC_ACQUIRE)
				 : 0;
		if (m && take_mon)
			m = __atomic_exchange_n(&vm->proc.mem.mon_dirty[i], 0, __ATOMIC_ACQ_REL);
		uint64_t w = log[i] | m;
		n += __builtin_popcountll(w & ~bitmap[i]);
		bitmap[i] |= w;
		if (writable)
			log[i] &= ~writable[i]; /* not cleared: not protected again */
		if (log[i]) {
			if (first == nw)
				first = i;
			last = i;
		}
	}
	if (vm->proc.mem.manual_protect && first < nw) {
		/* The range must start at a multiple of 64 pages; clear only what we read. */
		struct kvm_clear_dirty_log cl = {.slot = 0,
						 .first_page = first * 64,
						 .num_pages = (uint32_t)((last - first + 1) * 64),
						 .dirty_bitmap = log + first};
		uint64_t pages = vm->proc.mem.size / SBX_PAGE_SIZE;
		if (cl.first_page + cl.num_pages > pages)
			cl.num_pages = (uint32_t)(pages - cl.first_page);
		if (ioctl(vm->proc.kvm.vm_fd, KVM_CLEAR_DIRTY_LOG, &cl) < 0)
			return -errno;
	}
	return n;
}

/* Bits [p0, p1) of a page bitmap set (or cleared), a word at a time: an execve marks all of
 * RAM (65,536 pages for 256 MiB) in 1,024 operations, not one a page. */
static void bits_range(uint64_t *map, uint64_t p0, uint64_t p1, int set)
{
	while (p0 < p1) {
		uint64_t n = 64 - p0 % 64 < p1 - p0 ? 64 - p0 % 64 : p1 - p0;
		uint64_t mask = (n == 64 ? ~0ull : (1ull << n) - 1) << (p0 % 64);
		if (set)
			__atomic_fetch_or(&map[p0 / 64], mask, __ATOMIC_RELAXED);
		else
			__atomic_fetch_and(&map[p0 / 64], ~mask, __ATOMIC_RELAXED);
		p0 += n;
	}
}

void sbx_mem_dirty(struct sbx_vm *vm, uint64_t gpa, uint64_t len)
{
	if (!atomic_load_explicit(&vm->proc.mem.tracking, memory_order_relaxed) || !len ||
	    gpa >= vm->proc.mem.size)
		return;
	uint64_t end = len > vm->proc.mem.size - gpa ? vm->proc.mem.size : gpa + len;
	bits_range(vm->proc.mem.mon_dirty, gpa / SBX_PAGE_SIZE,
		   (end + SBX_PAGE_SIZE - 1) / SBX_PAGE_SIZE, 1);
}

int sbx_memslot_reload(struct sbx_vm *vm)
{
	uint32_t flags = vm->proc.mem.dirty_logging ? KVM_MEM_LOG_DIRTY_PAGES : 0;
	int r = set_slot(vm, 0, 0);
	return r < 0 ? r : set_slot(vm, flags, vm->proc.mem.size);
}

int sbx_dirty_peekable(struct sbx_vm *vm)
{
	return ioctl(vm->proc.kvm.vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) >
	       0;
}

void sbx_dirty_forget(struct sbx_vm *vm, uint64_t gpa, uint64_t len)
{
	uint64_t pages = vm->proc.mem.size / SBX_PAGE_SIZE, p0 = gpa / SBX_PAGE_SIZE,
		 p1 = (gpa + len) / SBX_PAGE_SIZE;
	if (!vm->proc.mem.dirty_logging || !vm->proc.mem.manual_protect || p0 >= p1 || p1 > pages)
		return;
	bits_range(vm->proc.mem.mon_dirty, p0, p1, 0);
	/* KVM's range starts at a multiple of 64 pages; only the range's own bits are set. */
	uint64_t first = p0 / 64 * 64, words = (p1 - first + 63) / 64;
	uint64_t *bits = calloc(words, sizeof(uint64_t));
	if (!bits)
		return;
	bits_range(bits, p0 - first, p1 - first, 1);
	struct kvm_clear_dirty_log cl = {.slot = 0,
					 .first_page = first,
					 .num_pages = (uint32_t)(words * 64),
					 .dirty_bitmap = bits};
	if (cl.first_page + cl.num_pages > pages)
		cl.num_pages = (uint32_t)(pages - cl.first_page);
	ioctl(vm->proc.kvm.vm_fd, KVM_CLEAR_DIRTY_LOG, &cl);
	free(bits);
}

int sbx_dirty_peek_map(struct sbx_vm *vm, uint64_t *bitmap)
{
	if (!vm->proc.mem.dirty_logging || !vm->proc.mem.manual_protect)
		return -1;
	/* With manual protection a read of the log takes nothing away. */
	struct kvm_dirty_log dl = {.slot = 0, .dirty_bitmap = bitmap};
	if (ioctl(vm->proc.kvm.vm_fd, KVM_GET_DIRTY_LOG, &dl) < 0)
		return -1;
	for (uint64_t i = 0, nw = sbx_dirty_words(vm); i < nw; i++)
		bitmap[i] |= __atomic_load_n(&vm->proc.mem.mon_dirty[i], __ATOMIC_RELAXED);
	return 0;
}

int64_t sbx_dirty_peek(struct sbx_vm *vm)
{
	uint64_t nw = sbx_dirty_words(vm);
	uint64_t *log = calloc(nw, sizeof(uint64_t));
	int64_t n = -1;
	if (log && sbx_dirty_peek_map(vm, log) == 0) {
		n = 0;
		for (uint64_t i = 0; i < nw; i++)
			n += __builtin_popcountll(log[i]);
	}
	free(log);
	return n;
}
