/* Shared file mappings: the monitor maps the host file MAP_SHARED and registers that mapping
 * as a memslot of its own, in a guest-physical window just above RAM. The guest's loads and
 * stores then land in the host page cache, the same pages the monitor's read() and write() of
 * the file use and any host process sees: coherence needs no copying. msync is the host's;
 * the host munmap (at the guest's munmap, or at the end) leaves the data in the page cache,
 * which the host writes back. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vm.h"

#define GIB (SBX_U64(1) << 30)

uint64_t sbx_shmap_base(const struct sbx_vm *vm)
{
	return (vm->proc.mem.size + GIB - 1) & ~(GIB - 1);
}

static int set_slot(struct sbx_vm *vm, const struct sbx_shmap *m, uint64_t size)
{
	struct kvm_userspace_memory_region r = {
	    .slot = m->slot,
	    .flags = (!m->writable && vm->proc.shmaps.readonly_mem) ? KVM_MEM_READONLY : 0,
	    .guest_phys_addr = m->gpa,
	    .memory_size = size,
	    .userspace_addr = (uint64_t)(uintptr_t)m->host,
	};
	return ioctl(vm->proc.kvm.vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0 ? -errno : 0;
}

/* First fit in the window: the lowest free range of len bytes at or above `at` (0: the
 * window's start); with `exact`, `at` itself or nothing. */
static uint64_t window_fit(struct sbx_vm *vm, uint64_t len, uint64_t at, int exact)
{
	uint64_t base = sbx_shmap_base(vm);
	if (at < base || (at & (SBX_PAGE_SIZE - 1)))
		at = exact ? 0 : base;
	if (!at)
		return 0;
	for (uint64_t first = at;;) {
		if (exact && at != first)
			return 0;
		int moved = 0;
		for (unsigned i = 0; i < SBX_SHMAP_MAX; i++) {
			const struct sbx_shmap *m = &vm->proc.shmaps.m[i];
			if (m->len && m->gpa < at + len && at < m->gpa + m->len) {
				at = m->gpa + m->len;
				moved = 1;
			}
		}
		if (at + len > base + SBX_SHMAP_WINDOW || at + len < at)
			return 0;
		if (!moved)
			return at;
	}
}

static int shmap_add(struct sbx_vm *vm, int fd, uint64_t off, uint64_t len, int writable,
		     const char *gpath, uint64_t *gpa)
{
	struct sbx_shmaps *s = &vm->proc.shmaps;
	if (!len || (len | off) & (SBX_PAGE_SIZE - 1) || len > SBX_SHMAP_WINDOW)
		return -EINVAL;
	if (vm->proc.kvm.vm_fd < 0)
		return -ENODEV; /* a VM without KVM (tests, fuzzers) has no memslots to add */
	if (!s->count) {
		s->readonly_mem =
		    ioctl(vm->proc.kvm.vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) > 0;
		/* Slot i + 1 for entry i: no more entries than KVM has slots beside RAM's. */
		int n = ioctl(vm->proc.kvm.vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
		s->max = n > SBX_SHMAP_MAX ? SBX_SHMAP_MAX : n > 1 ? (unsigned)n - 1 : 0;
	}
	struct sbx_shmap *m = NULL;
	for (unsigned i = 0; i < s->max && !m; i++)
		if (!s->m[i].len)
			m = &s->m[i];
	uint64_t at = window_fit(vm, len, *gpa, *gpa != 0);
	if (!m || !at)
		return -ENOMEM;
	void *host =
	    mmap(NULL, len, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, (off_t)off);
	if (host == MAP_FAILED)
		return -errno;
	int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	char *name = strdup(gpath ? gpath : "");
	*m = (struct sbx_shmap){.gpa = at,
				.len = len,
				.host = host,
				.fd = dfd,
				.writable = writable,
				.off = off,
				.slot = (uint32_t)(m - s->m) + 1,
				.gpath = name};
	int r = dfd < 0 || !name ? -ENOMEM : set_slot(vm, m, len);
	if (r < 0) {
		if (dfd >= 0)
			close(dfd);
		free(name);
		munmap(host, len);
		memset(m, 0, sizeof(*m));
		return r;
	}
	s->count++;
	*gpa = at;
	return 0;
}

int sbx_shmap_add(struct sbx_vm *vm, int fd, uint64_t off, uint64_t len, int writable,
		  const char *gpath, uint64_t *gpa)
{
	pthread_mutex_lock(&vm->proc.shmaps.lock);
	int r = shmap_add(vm, fd, off, len, writable, gpath, gpa);
	pthread_mutex_unlock(&vm->proc.shmaps.lock);
	return r;
}

int sbx_shmap_add_anon(struct sbx_vm *vm, uint64_t len, uint64_t *gpa)
{
	uint64_t held = 0;
	unsigned n = 0;
	for (unsigned i = 0; i < SBX_SHMAP_MAX; i++)
		if (vm->proc.shmaps.m[i].anon_holders) {
			held += vm->proc.shmaps.m[i].len;
			n++;
		}
	/* Half the slots at most: the rest stay for files (sqlite's -shm has no fallback). */
	if (len > vm->proc.mem.size || held > vm->proc.mem.size - len ||
	    len > SBX_SHMAP_WINDOW / 2 || n >= SBX_SHMAP_MAX / 2)
		return -ENOMEM;
	atomic_uint *holders = malloc(sizeof(*holders));
	int fd = memfd_create("sbx-shm", MFD_CLOEXEC);
	int r = !holders || fd < 0 ? -ENOMEM : ftruncate(fd, (off_t)len) < 0 ? -errno : 0;
	/* Linux names such a mapping so in /proc/PID/maps. */
	pthread_mutex_lock(&vm->proc.shmaps.lock);
	if (r == 0 && (r = shmap_add(vm, fd, 0, len, 1, "/dev/zero (deleted)", gpa)) == 0) {
		atomic_init(holders, 1);
		sbx_shmap_at(vm, *gpa)->anon_holders = holders;
		holders = NULL;
	}
	pthread_mutex_unlock(&vm->proc.shmaps.lock);
	if (fd >= 0)
		close(fd); /* the window keeps its own duplicate */
	free(holders);
	if (r == 0 && vm->hooks.mem_outside)
		vm->hooks.mem_outside(vm);
	return r;
}

uint64_t sbx_shmap_anon_bytes(struct sbx_vm *vm)
{
	uint64_t sum = 0;
	pthread_mutex_lock(&vm->proc.shmaps.lock);
	for (unsigned i = 0; i < SBX_SHMAP_MAX; i++) {
		const struct sbx_shmap *m = &vm->proc.shmaps.m[i];
		struct stat st;
		unsigned n = m->anon_holders ? atomic_load(m->anon_holders) : 0;
		if (n && fstat(m->fd, &st) == 0)
			sum += (uint64_t)st.st_blocks * 512 / n;
	}
	pthread_mutex_unlock(&vm->proc.shmaps.lock);
	return sum;
}

void *sbx_gptr_io(struct sbx_vm *vm, uint64_t gpa, uint64_t len, int into)
{
	if (gpa < vm->proc.mem.size)
		return sbx_gptr(vm, gpa, len);
	struct sbx_shmap *m = sbx_shmap_find(vm, gpa);
	if (!m || len > m->len - (gpa - m->gpa) || (into && !m->writable))
		return NULL;
	return m->host + (gpa - m->gpa);
}

void *sbx_shmap_hold(struct sbx_vm *vm, void *p, size_t len, struct sbx_shmap_hold *held)
{
	uint8_t *b = p;
	*held = (struct sbx_shmap_hold){0};
	if (!len || (b >= vm->proc.mem.base && b < vm->proc.mem.base + vm->proc.mem.size))
		return p;
	void *r = NULL;
	pthread_mutex_lock(&vm->proc.shmaps.lock);
	for (unsigned i = 0; i < SBX_SHMAP_MAX; i++) {
		const struct sbx_shmap *m = &vm->proc.shmaps.m[i];
		if (!m->len || b < m->host || (uint64_t)(b - m->host) >= m->len)
			continue;
		uint64_t in = (uint64_t)(b - m->host), pg = in & ~(uint64_t)(SBX_PAGE_SIZE - 1);
		if (len > m->len - in)
			break;
		size_t maplen =
		    (in + len - pg + SBX_PAGE_SIZE - 1) & ~(uint64_t)(SBX_PAGE_SIZE - 1);
		void *map = mmap(NULL, maplen, PROT_READ | (m->writable ? PROT_WRITE : 0),
				 MAP_SHARED, m->fd, (off_t)(m->off + pg));
		if (map != MAP_FAILED) {
			*held = (struct sbx_shmap_hold){map, maplen};
			r = (uint8_t *)map + (in - pg);
		}
		break;
	}
	pthread_mutex_unlock(&vm->proc.shmaps.lock);
	return r;
}

void sbx_shmap_let_go(struct sbx_shmap_hold *held)
{
	if (held->len)
		munmap(held->map, held->len);
	*held = (struct sbx_shmap_hold){0};
}

struct sbx_shmap *sbx_shmap_at(struct sbx_vm *vm, uint64_t gpa)
{
	struct sbx_shmap *m = sbx_shmap_find(vm, gpa);
	return m && m->gpa == gpa ? m : NULL;
}

struct sbx_shmap *sbx_shmap_find(struct sbx_vm *vm, uint64_t gpa)
{
	for (unsigned i = 0; i < SBX_SHMAP_MAX; i++) {
		struct sbx_shmap *m = &vm->proc.shmaps.m[i];
		if (m->len && gpa >= m->gpa && gpa - m->gpa < m->len)
			return m;
	}
	return NULL;
}

void sbx_shmap_remove(struct sbx_vm *vm, struct sbx_shmap *m)
{
	if (!m->len)
		return;
	pthread_mutex_lock(&vm->proc.shmaps.lock);
	if (vm->proc.kvm.vm_fd >= 0)
		set_slot(vm, m, 0); /* size 0 deletes the slot */
	munmap(m->host, m->len);
	if (m->fd >= 0)
		close(m->fd);
	if (m->anon_holders && atomic_fetch_sub(m->anon_holders, 1) == 1)
		free((void *)m->anon_holders);
	if (m->ref && vm->hooks.ref_hold)
		vm->hooks.ref_hold(m->ref, -1);
	free(m->gpath);
	memset(m, 0, sizeof(*m));
	vm->proc.shmaps.count--;
	pthread_mutex_unlock(&vm->proc.shmaps.lock);
}

int sbx_shmap_bus(struct sbx_vm *vm, uint64_t *addr)
{
	int found = 0;
	for (unsigned i = 0; i < SBX_SHMAP_MAX; i++) {
		const struct sbx_shmap *m = &vm->proc.shmaps.m[i];
		struct stat st;
		if (!m->len || fstat(m->fd, &st) < 0)
			continue;
		uint64_t size = (uint64_t)st.st_size, in = 0;
		if (size > m->off)
			in = (size - m->off + SBX_PAGE_SIZE - 1) & ~(SBX_PAGE_SIZE - 1);
		if (in >= m->len)
			continue;
		uint64_t lo = m->gpa + in, hi = m->gpa + m->len;
		if (vm->hooks.mem_operand && vm->hooks.mem_operand(vm, lo, hi, addr) == 0)
			return 1;
		if (!found) /* without a decoder: the page, not the byte */
			*addr = lo;
		found = 1;
	}
	return found && !vm->hooks.mem_operand;
}

int sbx_shmap_fork(struct sbx_vm *parent, struct sbx_vm *child)
{
	for (unsigned i = 0; i < SBX_SHMAP_MAX; i++) {
		const struct sbx_shmap *m = &parent->proc.shmaps.m[i];
		uint64_t gpa = m->gpa; /* exactly where the parent's page tables expect it */
		if (!m->len)
			continue;
		pthread_mutex_lock(&child->proc.shmaps.lock);
		int r = shmap_add(child, m->fd, m->off, m->len, m->writable, m->gpath, &gpa);
		if (r == 0 && m->anon_holders) { /* the same memory, now one holder more */
			atomic_fetch_add(m->anon_holders, 1);
			sbx_shmap_at(child, gpa)->anon_holders = m->anon_holders;
		}
		if (r == 0 && m->ref && child->hooks.ref_hold) {
			child->hooks.ref_hold(m->ref, 1);
			sbx_shmap_at(child, gpa)->ref = m->ref;
		}
		pthread_mutex_unlock(&child->proc.shmaps.lock);
		if (r < 0)
			return r;
	}
	return 0;
}

void sbx_shmap_clear(struct sbx_vm *vm)
{
	for (unsigned i = 0; i < SBX_SHMAP_MAX; i++)
		sbx_shmap_remove(vm, &vm->proc.shmaps.m[i]);
}
