/* Shared file mappings (MAP_SHARED of a file): the guest's handle, checked against how it was
 * opened and the policy, becomes a window of guest-physical memory onto the host file
 * (core/shmap.c). docs/architecture.md, "Shared file mappings", has the design and costs. */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "calls.h"

int sbx_shmap_check(uint64_t off, uint64_t len, uint64_t prot, int accmode, int mount_writable)
{
	if (prot & ~(uint64_t)(SBX_PROT_READ | SBX_PROT_WRITE | SBX_PROT_EXEC))
		return -EINVAL;
	if (!len || (off & (SBX_PAGE_SIZE - 1)) || off > INT64_MAX - SBX_SHMAP_WINDOW)
		return -EINVAL;
	if (len > SBX_SHMAP_WINDOW)
		return -ENOMEM;
	if (accmode == O_WRONLY)
		return -EACCES; /* as Linux: every mapping reads */
	if ((prot & SBX_PROT_WRITE) && (accmode != O_RDWR || !mount_writable))
		return -EACCES;
	return 0;
}

int64_t sbx_hc_mmap_shared(struct sbx_vm *vm, const struct sbx_slot *s)
{
	uint64_t off = s->u.a[1], prot = s->u.a[3];
	uint64_t len = (s->u.a[2] + SBX_PAGE_SIZE - 1) & ~(SBX_PAGE_SIZE - 1);
	if (len < s->u.a[2])
		return -ENOMEM;
	struct sbx_handle *h = sbx_fd_get(vm, (int64_t)s->u.a[0]);
	if ((int64_t)s->u.a[0] == -1 || (h && h->kind == SBX_H_VFILE && h->vnode == SBX_V_ZERO)) {
		/* Shared anonymous memory: a fork's child shares it. A repeated run's reset could
		 * not put it back, so there it stays private, as it is for one process. */
		if (vm->opts.boot_flags & SBX_BOOT_EXEC)
			return 0;
		uint64_t gpa = 0;
		int r = sbx_shmap_add_anon(vm, len, &gpa);
		if (r == -ENOMEM || r == -ENODEV) {
			/* The guest makes it private: shared with no child after a fork. */
			sbx_log(vm, 1,
				"shared anonymous memory of %llu KiB is private: no window for it "
				"(%s)",
				(unsigned long long)(len >> 10),
				r == -ENODEV ? "no KVM memslots" : "the windows are full");
			return h ? 0 : r; /* /dev/zero answers 0: private memory */
		}
		return r < 0 ? r : (int64_t)(gpa | 1);
	}
	if (!h)
		return -EBADF;
	/* stdio is the user's own file, not the guest's to map. */
	if (h->kind != SBX_H_HOST || h->stdio >= 0)
		return -ENODEV;
	struct stat st;
	if (fstat(h->fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -ENODEV;
	int fl = fcntl(h->fd, F_GETFL);
	if (fl < 0)
		return -errno;
	int r = sbx_shmap_check(off, len, prot, fl & O_ACCMODE, h->writable);
	if (r < 0)
		return r;
	/* Writable on the host whenever the guest may make it writable later (mprotect); not a
	 * memfd sealed against writes, which the host would refuse to map so. */
	int seals = h->memfd ? fcntl(h->fd, F_GET_SEALS) : 0;
	int sealed = seals > 0 && (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE));
	if (sealed && (prot & SBX_PROT_WRITE))
		return -EPERM;
	int may_write = (fl & O_ACCMODE) == O_RDWR && h->writable && !sealed;
	uint64_t gpa = 0;
	r = sbx_shmap_add(vm, h->fd, off, len, may_write, h->gpath, &gpa);
	if (r == 0 && h->memfd) {
		sbx_memfd_hold(h->memfd);
		sbx_shmap_at(vm, gpa)->ref = h->memfd;
	}
	return r < 0 ? r : (int64_t)(gpa | (uint64_t)may_write);
}

int64_t sbx_hc_munmap_shared(struct sbx_vm *vm, const struct sbx_slot *s)
{
	struct sbx_shmap *m = sbx_shmap_at(vm, s->u.a[0]);
	if (!m)
		return -EINVAL;
	sbx_shmap_remove(vm, m);
	return 0;
}

int64_t sbx_hc_msync(struct sbx_vm *vm, const struct sbx_slot *s)
{
	uint64_t gpa = s->u.a[0], len = s->u.a[1];
	struct sbx_shmap *m = sbx_shmap_find(vm, gpa);
	if (!m || (gpa & (SBX_PAGE_SIZE - 1)))
		return -ENOMEM;
	uint64_t at = gpa - m->gpa;
	if (len > m->len - at)
		return -ENOMEM;
	return msync(m->host + at, len, MS_SYNC) < 0 ? -errno : 0;
}

/* The window holding a futex word (4-byte aligned), or NULL. */
static struct sbx_shmap *futex_window(struct sbx_vm *vm, uint64_t gpa)
{
	return (gpa & 3) ? NULL : sbx_shmap_find(vm, gpa);
}

/* A futex word inside a window: its address in the monitor's mapping of the file. */
static uint32_t *futex_word(struct sbx_vm *vm, uint64_t gpa)
{
	struct sbx_shmap *m = futex_window(vm, gpa);
	return m ? (uint32_t *)(void *)(m->host + (gpa - m->gpa)) : NULL;
}

/* A wait lets go of ring_lock, and another thread may unmap the window meanwhile: it waits on
 * a mapping of the word's page of its own (the host keys a shared futex by the file's page,
 * so it is the same futex), which nothing else unmaps. */
static uint32_t *futex_pin(struct sbx_vm *vm, uint64_t gpa, void **page)
{
	struct sbx_shmap *m = futex_window(vm, gpa);
	if (!m)
		return NULL;
	uint64_t in = (gpa - m->gpa) & ~(uint64_t)(SBX_PAGE_SIZE - 1);
	*page = mmap(NULL, SBX_PAGE_SIZE, PROT_READ, MAP_SHARED, m->fd, (off_t)(m->off + in));
	if (*page == MAP_FAILED)
		return NULL;
	return (uint32_t *)(void *)((uint8_t *)*page + ((gpa - m->gpa) & (SBX_PAGE_SIZE - 1)));
}

/* The host's futex, shared (not FUTEX_PRIVATE_FLAG): keyed by the file's page, so processes,
 * each with its own mapping of the file, meet on it. In slices, as PARK, so that a kick that
 * lands just before the wait is not lost for long. */
static int64_t futex_wait(struct sbx_vm *vm, uint32_t *w, uint32_t val, uint64_t ns, uint32_t bits)
{
	const uint64_t year_ns = 1000000000ull * 3600 * 24 * 365;
	int64_t end = sbx_now_ns(CLOCK_MONOTONIC) + (int64_t)(ns < year_ns ? ns : year_ns);
	int released = sbx_ring_release(vm);
	const struct sbx_bootinfo *b = sbx_gptr_ro(vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	int64_t r;
	for (int first = 1;; first = 0) {
		if (atomic_load(&vm->life.stopping) || atomic_load(&vm->life.pause_req) ||
		    __atomic_load_n(&b->sig_incoming, __ATOMIC_RELAXED)) {
			r = -EINTR;
			break;
		}
		int64_t now = sbx_now_ns(CLOCK_MONOTONIC), left = end - now;
		if (left <= 0) {
			r = -ETIMEDOUT;
			break;
		}
		int64_t until = now + (left < 50 * SBX_NS_PER_MS ? left : 50 * SBX_NS_PER_MS);
		struct timespec abs = {.tv_sec = (time_t)(until / 1000000000ll),
				       .tv_nsec = (long)(until % 1000000000ll)};
		if (syscall(SYS_futex, w, FUTEX_WAIT_BITSET, val, &abs, NULL, bits) == 0) {
			r = 0;
			break;
		}
		if (errno == ETIMEDOUT)
			continue;
		/* After a slice, a changed word means a waker came between two: a wake-up. */
		r = errno == EAGAIN && !first ? 0 : -errno;
		break;
	}
	sbx_ring_reacquire(vm, released);
	return r;
}

int64_t sbx_hc_futex(struct sbx_vm *vm, const struct sbx_slot *s)
{
	uint64_t op = s->u.a[0], val2 = s->u.a[3];
	uint32_t *w = futex_word(vm, s->u.a[1]), *w2 = NULL;
	if (!w || s->u.a[2] > UINT32_MAX || s->u.a[5] > UINT32_MAX)
		return -EINVAL;
	uint32_t val = (uint32_t)s->u.a[2], val3 = (uint32_t)s->u.a[5];
	switch (op) {
	case FUTEX_WAIT:
	case FUTEX_WAIT_BITSET:
		/* Only the vCPU's own thread may wait: the poller would hold ring_lock. */
		if (!(s->pad & SBX_SLOT_OWN) || (op == FUTEX_WAIT_BITSET && !val3))
			return -EINVAL;
		void *page;
		uint32_t *pw = futex_pin(vm, s->u.a[1], &page);
		if (!pw)
			return -EFAULT; /* past the file's end: no page to wait on */
		int64_t r =
		    futex_wait(vm, pw, val, val2, op == FUTEX_WAIT ? FUTEX_BITSET_MATCH_ANY : val3);
		munmap(page, SBX_PAGE_SIZE);
		return r;
	case FUTEX_WAKE:
	case FUTEX_WAKE_BITSET:
		break;
	case FUTEX_REQUEUE:
	case FUTEX_CMP_REQUEUE:
	case FUTEX_WAKE_OP:
		/* Both words must be in windows: a waiter in RAM is the guest kernel's. */
		if (!(w2 = futex_word(vm, s->u.a[4])) || val2 > INT32_MAX)
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	long r =
	    syscall(SYS_futex, w, (int)op, val, (const struct timespec *)(uintptr_t)val2, w2, val3);
	return r < 0 ? -errno : r;
}
