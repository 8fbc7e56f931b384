/* Guest RAM: one memfd, mapped shared in the monitor. Every access from monitor code goes
 * through sbx_gptr(), which refuses anything not wholly inside RAM. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vm.h"

/* A memfd of size bytes for guest RAM: the fd, or -errno with err set. */
static int ram_fd(uint64_t size, char *err, size_t errlen)
{
	int fd = memfd_create("sandbox-ram", MFD_CLOEXEC);
	if (fd < 0)
		return sbx_fail(err, errlen, -errno, "memfd_create: %s", strerror(errno));
	if (ftruncate(fd, (off_t)size) < 0) {
		int e = errno;
		close(fd);
		return sbx_fail(err, errlen, -e, "cannot size guest RAM to %llu bytes: %s",
				(unsigned long long)size, strerror(e));
	}
	return fd;
}

/* fd's first size bytes at at (NULL: anywhere), shared, or privately (a lent RAM). */
static void *ram_map(void *at, uint64_t size, int fd, int shared, char *err, size_t errlen)
{
	int flags = (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_NORESERVE | (at ? MAP_FIXED : 0);
	void *p = mmap(at, size, PROT_READ | PROT_WRITE, flags, fd, 0);
	if (p == MAP_FAILED) {
		sbx_fail(err, errlen, -errno, "cannot map %llu bytes of guest RAM: %s",
			 (unsigned long long)size, strerror(errno));
		return NULL;
	}
	return p;
}

int sbx_mem_create(struct sbx_vm *vm, uint64_t size, char *err, size_t errlen)
{
	int fd = ram_fd(size, err, errlen);
	if (fd < 0)
		return fd;
	vm->proc.mem.fd = fd;
	void *p = ram_map(NULL, size, fd, 1, err, errlen);
	if (!p)
		return -ENOMEM;
	vm->proc.mem.base = p;
	vm->proc.mem.size = size;
	return 0;
}

/* The parent's memfd's extents (at most SBX_LEND_EXTENTS_MAX) privately over anonymous memory
 * at p: 0, or -1 (too many, or a mapping failed: p is as it was then). A private mapping of a
 * whole memfd would not do: the first touch of a hole allocates a page of zeros in the
 * memfd (shmem has no shared zero page for faults), so the child's new pages would grow its
 * parent's RAM as well as its own. */
#define SBX_LEND_EXTENTS_MAX 256
static int lend_extents(uint8_t *p, int fd, uint64_t size)
{
	off_t at = 0, end = (off_t)size;
	unsigned n = 0;
	while (at < end) {
		off_t d = lseek(fd, at, SEEK_DATA);
		if (d < 0 && errno == ENXIO)
			break;
		if (d < 0 || ++n > SBX_LEND_EXTENTS_MAX)
			return -1;
		if (d >= end)
			break;
		off_t h = lseek(fd, d, SEEK_HOLE);
		if (h < 0 || h > end)
			h = end;
		if (mmap(p + d, (size_t)(h - d), PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, fd, d) == MAP_FAILED)
			return -1;
		at = h;
	}
	return 0;
}

int sbx_mem_lend(struct sbx_vm *child, const struct sbx_vm *parent, int how, char *err,
		 size_t errlen)
{
	if (parent->proc.mem.fd < 0)
		return sbx_fail(err, errlen, -EINVAL, "the parent's RAM has no memfd to lend");
	uint64_t size = parent->proc.mem.size;
	void *p = how == SBX_LEND_EXTENTS ? mmap(NULL, size, PROT_READ | PROT_WRITE,
						 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
					  : MAP_FAILED;
	/* Else all of it privately (correct, only larger). */
	if (p != MAP_FAILED && lend_extents(p, parent->proc.mem.fd, size) < 0) {
		void *whole = ram_map(p, size, parent->proc.mem.fd, 0, err, errlen);
		if (!whole)
			munmap(p, size);
		p = whole;
	} else if (p == MAP_FAILED)
		p = ram_map(NULL, size, parent->proc.mem.fd, 0, err, errlen);
	if (!p)
		return -ENOMEM;
	child->proc.mem.base = p;
	child->proc.mem.size = parent->proc.mem.size;
	atomic_store(&child->proc.mem.lent, 1);
	return 0;
}

int sbx_mem_own_fd(struct sbx_vm *vm, char *err, size_t errlen)
{
	return atomic_load(&vm->proc.mem.lent) ? ram_fd(vm->proc.mem.size, err, errlen) : -1;
}

int sbx_mem_own(struct sbx_vm *vm, int fd, char *err, size_t errlen)
{
	/* At the same address, where KVM's memslot and every pointer handed out stay valid:
	 * mapped elsewhere, then moved over the lent mapping. */
	void *p = ram_map(NULL, vm->proc.mem.size, fd, 1, err, errlen);
	if (p && mremap(p, vm->proc.mem.size, vm->proc.mem.size, MREMAP_MAYMOVE | MREMAP_FIXED,
			vm->proc.mem.base) == MAP_FAILED) {
		sbx_fail(err, errlen, -errno, "cannot move guest RAM's own memfd into place: %s",
			 strerror(errno));
		munmap(p, vm->proc.mem.size);
		/* The move may have unmapped the old RAM first: zero pages keep the range the
		 * monitor's until the process, now lost, is gone (its ring is written yet). */
		mmap(vm->proc.mem.base, vm->proc.mem.size, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
		p = NULL;
	}
	if (!p) {
		close(fd);
		return -ENOMEM;
	}
	vm->proc.mem.fd = fd;
	atomic_store_explicit(&vm->proc.mem.lent, 0, memory_order_release);
	if (vm->proc.mem.lender_fd >= 3)
		close(vm->proc.mem.lender_fd);
	vm->proc.mem.lender_fd = -1;
	atomic_store(&vm->proc.mem.lender_bytes, 0);
	return 0;
}

int sbx_mem_keep_lender(struct sbx_vm *child, const struct sbx_vm *parent)
{
	int fd = fcntl(parent->proc.mem.fd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return -errno;
	child->proc.mem.lender_fd = fd;
	return 0;
}

int sbx_mem_write_out(struct sbx_vm *vm, int fd, uint64_t at, uint64_t len)
{
	while (len) {
		ssize_t n = pwrite(fd, vm->proc.mem.base + at, len > (1u << 30) ? (1u << 30) : len,
				   (off_t)at);
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		at += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

/* Each extent of the memfd `from` holds (SEEK_DATA, SEEK_HOLE), written out of vm's RAM. */
static int write_extents(struct sbx_vm *vm, int from, int to)
{
	off_t at = 0, end = (off_t)vm->proc.mem.size;
	while (at < end) {
		off_t d = lseek(from, at, SEEK_DATA);
		if (d < 0 && errno == ENXIO)
			return 0;
		if (d < 0)
			return -errno;
		if (d >= end)
			return 0;
		off_t h = lseek(from, d, SEEK_HOLE);
		if (h < 0 || h > end)
			h = end;
		int r = sbx_mem_write_out(vm, to, (uint64_t)d, (uint64_t)(h - d));
		if (r < 0)
			return r;
		at = h;
	}
	return 0;
}

int sbx_mem_copy_view(struct sbx_vm *from, struct sbx_vm *to)
{
	if (!atomic_load(&from->proc.mem.lent) || from->proc.mem.lender_fd < 3 ||
	    to->proc.mem.fd < 0 || to->proc.mem.size != from->proc.mem.size)
		return -EINVAL;
	uint64_t pages = from->proc.mem.size / SBX_PAGE_SIZE,
		 *dirty = calloc(sbx_dirty_words(from), sizeof(uint64_t));
	if (!dirty)
		return -ENOMEM;
	/* The pages the fork wrote for it (before its log), its lender's, then its own writes. */
	int r = sbx_mem_write_out(from, to->proc.mem.fd, 0, SBX_PT_ADDR);
	if (r == 0)
		r = write_extents(from, from->proc.mem.lender_fd, to->proc.mem.fd);
	if (r == 0 && sbx_dirty_peek_map(from, dirty) < 0)
		r = -EIO;
	for (uint64_t p = 0; r == 0 && p < pages;) {
		if (!(dirty[p / 64] >> (p % 64) & 1)) {
			p++;
			continue;
		}
		uint64_t q = p + 1;
		while (q < pages && (dirty[q / 64] >> (q % 64) & 1))
			q++;
		r = sbx_mem_write_out(from, to->proc.mem.fd, p * SBX_PAGE_SIZE,
				      (q - p) * SBX_PAGE_SIZE);
		p = q;
	}
	free(dirty);
	return r;
}

uint64_t sbx_mem_view_bytes(struct sbx_vm *vm)
{
	struct stat st;
	int64_t n = sbx_dirty_peek(vm);
	uint64_t lender = vm->proc.mem.lender_fd >= 3 && fstat(vm->proc.mem.lender_fd, &st) == 0
			      ? (uint64_t)st.st_blocks * 512
			      : vm->proc.mem.size;
	return lender + (n > 0 ? (uint64_t)n * SBX_PAGE_SIZE : 0) + SBX_PT_ADDR;
}

int sbx_mem_unshare_copy(struct sbx_vm *vm, char *err, size_t errlen)
{
	if (vm->proc.mem.fd < 0)
		return sbx_fail(err, errlen, -EBADF, "the parent's RAM has no memfd");
	int fd = ram_fd(vm->proc.mem.size, err, errlen);
	if (fd < 0)
		return fd;
	int r = write_extents(vm, vm->proc.mem.fd, fd);
	if (r < 0) {
		close(fd);
		return sbx_fail(err, errlen, r, "copying a fork's parent's RAM: %s", strerror(-r));
	}
	return fd;
}

int64_t sbx_mem_unshare_commit(struct sbx_vm *vm, int fd, char *err, size_t errlen)
{
	struct stat st;
	int old = vm->proc.mem.fd, r = sbx_mem_write_out(vm, fd, 0, SBX_PT_ADDR);
	if (r < 0 || fstat(old, &st) < 0) {
		close(fd);
		return sbx_fail(err, errlen, r < 0 ? r : -errno,
				"copying a fork's parent's RAM: %s", strerror(r < 0 ? -r : errno));
	}
	if ((r = sbx_mem_own(vm, fd, err, errlen)) < 0)
		return r;
	close(old);
	return (int64_t)st.st_blocks * 512;
}

void sbx_mem_destroy(struct sbx_vm *vm)
{
	if (vm->proc.mem.base)
		munmap(vm->proc.mem.base, vm->proc.mem.size);
	if (vm->proc.mem.fd >= 0)
		close(vm->proc.mem.fd);
	if (vm->proc.mem.lender_fd >= 3)
		close(vm->proc.mem.lender_fd);
	vm->proc.mem.base = NULL;
	vm->proc.mem.fd = vm->proc.mem.lender_fd = -1;
}

void *sbx_gptr(struct sbx_vm *vm, uint64_t gpa, uint64_t len)
{
	if (gpa >= vm->proc.mem.size || len > vm->proc.mem.size - gpa)
		return NULL;
	/* Any pointer handed out may be written through: with dirty tracking on, the pages
	 * count as the monitor's writes (a read-only use costs a needless page copy at most). */
	sbx_mem_dirty(vm, gpa, len);
	return vm->proc.mem.base + gpa;
}

const void *sbx_gptr_ro(struct sbx_vm *vm, uint64_t gpa, uint64_t len)
{
	if (gpa >= vm->proc.mem.size || len > vm->proc.mem.size - gpa)
		return NULL;
	return vm->proc.mem.base + gpa;
}

int sbx_copy_from_guest(struct sbx_vm *vm, void *dst, uint64_t gpa, uint64_t len)
{
	const void *p = sbx_gptr_ro(vm, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

int sbx_copy_to_guest(struct sbx_vm *vm, uint64_t gpa, const void *src, uint64_t len)
{
	void *p = sbx_gptr(vm, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	/* Marked again after the write too: a writer outside ring_lock (the vCPU thread
	 * delivering a signal) could otherwise lose its mark to a migration round. */
	sbx_mem_dirty(vm, gpa, len);
	return 0;
}

int sbx_mem_extents(struct sbx_vm *vm, uint64_t from,
		    int (*fn)(void *ctx, uint64_t gpa, uint64_t len), void *ctx)
{
	off_t at = (off_t)from, end = (off_t)vm->proc.mem.size;
	/* RAM mapped from a snapshot (lazy restore) has no memfd: all of it counts. */
	if (vm->proc.mem.fd < 0)
		return at < end ? fn(ctx, (uint64_t)at, (uint64_t)(end - at)) : 0;
	while (at < end) {
		off_t d = lseek(vm->proc.mem.fd, at, SEEK_DATA);
		if (d < 0 || d >= end)
			break;
		off_t h = lseek(vm->proc.mem.fd, d, SEEK_HOLE);
		if (h < 0 || h > end)
			h = end;
		int r = fn(ctx, (uint64_t)d, (uint64_t)(h - d));
		if (r)
			return r;
		at = h;
	}
	return 0;
}

uint64_t sbx_mem_next_data(struct sbx_vm *vm, uint64_t gpa, uint64_t *data_end)
{
	*data_end = vm->proc.mem.size;
	if (vm->proc.mem.fd < 0 || gpa >= vm->proc.mem.size)
		return gpa;
	off_t d = lseek(vm->proc.mem.fd, (off_t)gpa, SEEK_DATA);
	if (d < 0)
		return vm->proc.mem.size;
	off_t h = lseek(vm->proc.mem.fd, d, SEEK_HOLE);
	if (h > d && (uint64_t)h < vm->proc.mem.size)
		*data_end = (uint64_t)h;
	return (uint64_t)d;
}

static int count_pages(void *ctx, uint64_t gpa, uint64_t len)
{
	(void)gpa;
	*(uint64_t *)ctx += len / SBX_PAGE_SIZE;
	return 0;
}

uint64_t sbx_resident_pages(struct sbx_vm *vm)
{
	uint64_t n = 0;
	sbx_mem_extents(vm, 0, count_pages, &n);
	return n;
}

uint64_t sbx_mem_ram_bytes(struct sbx_vm *vm)
{
	struct stat st;
	/* A lent RAM holds only the pages written since the fork: its dirty log counts them
	 * (all of it, without the log). An execve may end the lending meanwhile, and then the
	 * log: looked at again when the log says nothing. */
	if (atomic_load_explicit(&vm->proc.mem.lent, memory_order_acquire)) {
		int64_t n = sbx_dirty_peek(vm);
		if (n >= 0)
			return (uint64_t)n * SBX_PAGE_SIZE +
			       atomic_load(&vm->proc.mem.lender_bytes);
		if (atomic_load_explicit(&vm->proc.mem.lent, memory_order_acquire))
			return vm->proc.mem.size;
	}
	if (vm->proc.mem.fd < 0 || fstat(vm->proc.mem.fd, &st) < 0)
		return 0;
	return (uint64_t)st.st_blocks * 512;
}

uint64_t sbx_mem_held_bytes(struct sbx_vm *vm)
{
	return sbx_mem_ram_bytes(vm) + sbx_shmap_anon_bytes(vm);
}
