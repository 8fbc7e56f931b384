/* Reset to a snapshot kept in memory: the serve and fuzz loops' primitive. Taking one copies
 * the RAM the guest has (once) and starts dirty tracking; a reset puts back only the pages
 * written since (KVM's log plus the monitor's own writes), the vCPU, and the handle table, so
 * its cost follows what the run touched, not the size of RAM. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "calls.h"
#include "persist.h"

/* Runs in a row a page must be written in to stay writable; resets between two reviews of
 * the hot set (all protected again, so pages no longer written leave it). */
#define RESET_HOT_RUNS 3
#define RESET_HOT_REVIEW 256

struct sbx_snap {
	uint64_t mem_size;
	uint8_t *ram;	     /* private anonymous copy; never-touched ranges stay unbacked zeros */
	uint64_t *dirty;     /* scratch bitmap for a reset */
	struct sbx_sio vcpu; /* the vCPU, as sbx_state_vcpu saves it */
	struct sbx_handle fds[SBX_MAX_FDS]; /* fds are our own dups */
	int64_t offs[SBX_MAX_FDS];
	struct sbx_sio mon;	/* the rest of the monitor's state, as sbx_state_monitor saves it */
	struct sbx_sio threads; /* the other vCPUs, as sbx_state_threads saves them (len 0: none) */
	/* The pipes, eventfds, epoll instances, socket pairs and timerfds, as sbx_state_objects
	 * saves them (len 0: none): made afresh at each reset, since a dup would share the
	 * last run's. Their handles are not in fds. */
	struct sbx_sio objects;
	uint64_t keep_lo, keep_hi, keep_page; /* never put back (sbx_snapshot_keep) */
	/* Pages written in each of the last RESET_HOT_RUNS runs are copied back at every reset
	 * without being write-protected again: a 4 KiB copy costs ~0.1 us, a write-protection
	 * fault 5-20 us under PVM. seen[k]: the pages of the run k+1 resets ago. */
	uint64_t *hot, *seen[RESET_HOT_RUNS - 1];
	uint64_t resets;
	/* The page-table pages of this reset for the guest kernel to write again
	 * (SBX_RESET_PT_GUEST), built before anything is copied. */
	struct sbx_exec_fix fix[SBX_EXEC_FIX_MAX];
	uint32_t nfix;
};

void sbx_snapshot_free(struct sbx_snap *s)
{
	if (!s)
		return;
	if (s->ram)
		munmap(s->ram, s->mem_size);
	for (int i = 0; i < SBX_MAX_FDS; i++) {
		sbx_fd_drop(&s->fds[i]);
	}
	free(s->dirty);
	free(s->hot);
	for (int k = 0; k < RESET_HOT_RUNS - 1; k++)
		free(s->seen[k]);
	free(s->vcpu.buf);
	free(s->mon.buf);
	free(s->threads.buf);
	free(s->objects.buf);
	free(s);
}

struct copy_ctx {
	uint8_t *dst;
	const uint8_t *src;
};

static int copy_range(void *ctx, uint64_t gpa, uint64_t len)
{
	struct copy_ctx *c = ctx;
	memcpy(c->dst + gpa, c->src + gpa, len);
	return 0;
}

int sbx_snapshot_take(struct sbx_vm *vm, struct sbx_snap **out, char *err, size_t errlen)
{
	*out = NULL;
	if (vm->life.running && !vm->life.paused && !vm->proc.vcpu.parked)
		return sbx_fail(err, errlen, -EBUSY,
				"snapshot: the vCPU is running (pause it first)");
	/* Threads are taken with every vCPU paused at its pause point (sbx_pause_hold), where
	 * none is inside a request: parked, vCPU 0 alone is whole. */
	struct sbx_thread_rec one;
	int threads = sbx_threads_count(vm) && sbx_threads_records(vm, &one, 1);
	if (threads && !vm->life.paused)
		return sbx_fail(err, errlen, -EBUSY,
				"snapshot: the program has threads: pause every vCPU first");
	struct sbx_snap *s = calloc(1, sizeof(*s));
	if (!s)
		return sbx_fail(err, errlen, -ENOMEM, "out of memory");
	s->mem_size = vm->proc.mem.size;
	s->ram = mmap(NULL, vm->proc.mem.size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	s->dirty = calloc(sbx_dirty_words(vm), sizeof(uint64_t));
	int nomem = !(s->hot = calloc(sbx_dirty_words(vm), sizeof(uint64_t)));
	for (int k = 0; k < RESET_HOT_RUNS - 1; k++)
		nomem |= !(s->seen[k] = calloc(sbx_dirty_words(vm), sizeof(uint64_t)));
	if (s->ram == MAP_FAILED || !s->dirty || nomem) {
		s->ram = s->ram == MAP_FAILED ? NULL : s->ram;
		sbx_snapshot_free(s);
		return sbx_fail(err, errlen, -ENOMEM,
				"out of memory for a copy of %llu MiB of guest RAM",
				(unsigned long long)(vm->proc.mem.size >> 20));
	}
	/* Only what the host holds: holes of the memfd are zeros in the copy already. */
	struct copy_ctx c = {s->ram, vm->proc.mem.base};
	sbx_mem_extents(vm, 0, copy_range, &c);
	int r = sbx_state_vcpu(vm, &s->vcpu, 0);
	if (r < 0) {
		snprintf(err, errlen, "snapshot: %s", s->vcpu.msg);
		sbx_snapshot_free(s);
		return r;
	}
	int objects = 0;
	for (int i = 0; i < SBX_MAX_FDS && r == 0; i++) {
		if (vm->proc.files->fds[i].kind == SBX_H_FREE)
			continue;
		if (sbx_handle_is_object(&vm->proc.files->fds[i])) {
			objects = 1;
			continue;
		}
		/* Its bytes would go from one run into the next. */
		if (vm->proc.files->fds[i].obj == SBX_O_MEMFD) {
			r = sbx_fail(
			    err, errlen, -EINVAL,
			    "snapshot: fd %d is a memfd, whose bytes a reset cannot put back yet",
			    i);
			break;
		}
		/* Its events, connections or bytes would go from one run into the next. */
		const struct sbx_handle *h = &vm->proc.files->fds[i];
		if (h->kind == SBX_H_HOST && h->obj != SBX_O_FILE && h->stdio < 0) {
			r = sbx_fail(err, errlen, -EINVAL,
				     "snapshot: fd %d is %s%s, whose state a reset cannot put back "
				     "yet",
				     i, sbx_handle_obj_name(h->obj),
				     h->passed ? " passed with SCM_RIGHTS" : "");
			break;
		}
		r = sbx_fd_copy(&s->fds[i], &vm->proc.files->fds[i]);
		s->offs[i] = vm->proc.files->fds[i].kind == SBX_H_HOST
				 ? lseek(vm->proc.files->fds[i].fd, 0, SEEK_CUR)
				 : -1;
	}
	s->mon.reset = 1;
	if (r == 0 && sbx_state_monitor(vm, &s->mon) < 0) {
		snprintf(err, errlen, "snapshot: %s", s->mon.msg);
		r = s->mon.err;
	}
	if (r == 0 && objects && sbx_state_objects(vm, &s->objects) < 0) {
		snprintf(err, errlen, "snapshot: %s", s->objects.msg);
		r = s->objects.err;
	}
	if (r == 0 && threads && sbx_state_threads(vm, &s->threads) < 0) {
		snprintf(err, errlen, "snapshot: %s", s->threads.msg);
		r = s->threads.err;
	}
	if (r < 0 || (r = sbx_dirty_start(vm, err, errlen)) < 0) {
		if (!err[0])
			snprintf(err, errlen, "snapshot: copying the handle table: %s",
				 strerror(-r));
		sbx_snapshot_free(s);
		return r;
	}
	/* From here on the log counts from this point. */
	memset(s->dirty, 0, sbx_dirty_words(vm) * sizeof(uint64_t));
	sbx_dirty_collect(vm, s->dirty, 1);
	memset(s->dirty, 0, sbx_dirty_words(vm) * sizeof(uint64_t));
	*out = s;
	return 0;
}

/* A dirty page-table page: one that differs from the snapshot's needs KVM told (*pt): its
 * changed entries go on the guest's list while there is room (fix), else *pt = 2 (the memslot
 * must be re-added); one that does not needs nothing, not even a copy. */
static void pt_page(struct sbx_vm *vm, struct sbx_snap *s, uint64_t nw, uint64_t p, int *pt,
		    int fix)
{
	if (p / 64 >= nw || !(s->dirty[p / 64] >> (p % 64) & 1))
		return;
	uint64_t gpa = p * SBX_PAGE_SIZE;
	if (memcmp(vm->proc.mem.base + gpa, s->ram + gpa, SBX_PAGE_SIZE) == 0) {
		s->dirty[p / 64] &= ~(1ull << (p % 64));
		return;
	}
	for (uint32_t i = 0; i < s->nfix; i++)
		if (s->fix[i].gpa == gpa)
			return; /* in both lists of tables taken from RAM */
	if (!fix || s->nfix == SBX_EXEC_FIX_MAX) {
		*pt = 2;
		return;
	}
	*pt = *pt ? *pt : 1;
	struct sbx_exec_fix *f = &s->fix[s->nfix++];
	const uint64_t *now = (const uint64_t *)(vm->proc.mem.base + gpa),
		       *then = (const uint64_t *)(s->ram + gpa);
	f->gpa = gpa;
	memset(f->changed, 0, sizeof(f->changed));
	for (unsigned i = 0; i < SBX_PAGE_SIZE / 8; i++)
		if (now[i] != then[i])
			f->changed[i / 64] |= 1ull << (i % 64);
}

/* Whether the run's tables and the snapshot's (both rooted at SBX_PT_ADDR) map [lo, hi) alike,
 * entry for entry: the table at `t` maps `span` bytes an entry from `base`. The kernel writes
 * the listed entries through these translations (its code, stacks, the mailbox, the physical
 * map) while KVM may still hold either, so they must be the same in both. Guest values: a
 * table outside RAM counts as a difference. */
static int maps_alike(const uint8_t *now, const uint8_t *then, uint64_t size, uint64_t t,
		      uint64_t span, uint64_t base, uint64_t lo, uint64_t hi, uint64_t *budget)
{
	if (t > size - SBX_PAGE_SIZE)
		return 0;
	for (unsigned i = 0; i < SBX_PAGE_SIZE / 8; i++) {
		uint64_t va = base + i * span, a, b;
		if (va + span <= lo || va >= hi)
			continue;
		/* Tables a program wrote through the map of RAM could share subtables enough to
		 * make this walk 512^3 entries: past the budget they count as different. */
		if (!(*budget)--)
			return 0;
		memcpy(&a, now + t + i * 8, sizeof(a));
		memcpy(&b, then + t + i * 8, sizeof(b));
		if (a != b)
			return 0;
		if ((a & SBX_PTE_P) && span > SBX_PAGE_SIZE && !(a & SBX_PTE_PS) &&
		    !maps_alike(now, then, size, a & SBX_PTE_ADDR, span / 512, va, lo, hi, budget))
			return 0;
	}
	return 1;
}

int sbx_reset_kernel_maps_alike(const uint8_t *now, const uint8_t *then, uint64_t size)
{
	uint64_t top = SBX_PAGE_SIZE << 36; /* 2^48: the PML4's reach */
	/* A map of RAM in 4 KiB pages has one entry a page, and a few more levels. */
	uint64_t budget = 2 * (size / SBX_PAGE_SIZE) + 65536;
	return size >= SBX_PT_END &&
	       maps_alike(now, then, size, SBX_PT_ADDR, top / 512, 0, 0, SBX_USER_ADDR, &budget) &&
	       maps_alike(now, then, size, SBX_PT_ADDR, top / 512, 0, SBX_PHYSMAP_VA, top / 2,
			  &budget);
}

/* The page-table pages a 1.5 kernel took from RAM, as the RAM at `ram` lists them (the boot
 * page's pt_table and pt_count: guest values, checked against RAM, used only to decide which
 * pages are page tables). */
static void kernel_pt_pages(struct sbx_vm *vm, struct sbx_snap *s, const uint8_t *ram, uint64_t nw,
			    int *pt, int fix)
{
	const struct sbx_bootinfo *b = (const struct sbx_bootinfo *)(ram + SBX_BOOTINFO_ADDR);
	uint64_t size = vm->proc.mem.size, table = b->pt_table, count = b->pt_count;
	uint32_t n;
	if (!table || count > size - sizeof(n) || table > size)
		return;
	memcpy(&n, ram + count, sizeof(n));
	if (n > (size - table) / sizeof(uint32_t))
		return;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t p;
		memcpy(&p, ram + table + (uint64_t)i * sizeof(p), sizeof(p));
		if ((uint64_t)p < size / SBX_PAGE_SIZE)
			pt_page(vm, s, nw, p, pt, fix);
	}
}

/* Puts back the pages written since the last reset. Page-table pages among them that differ
 * from the snapshot's (*pt set) need KVM's shadow of them dropped: with SBX_RESET_PT_GUEST
 * their changed entries are listed at SBX_EXEC_FIX_ADDR for the parked kernel to write again
 * (*nfix of them), where that is safe; else with SBX_RESET_PT_RELOAD the memslot is re-added;
 * else -EAGAIN before anything is copied (the caller stops the vCPU and tries again), the pages
 * taken staying in s->dirty. */
int sbx_reset_pages(struct sbx_vm *vm, struct sbx_snap *s, int how, uint64_t *pages, int *pt,
		    uint32_t *nfix, char *err, size_t errlen)
{
	uint64_t nw = sbx_dirty_words(vm), n = 0;
	if (++s->resets % RESET_HOT_REVIEW == 0)
		memset(s->hot, 0, nw * sizeof(uint64_t));
	int64_t r = sbx_dirty_collect_keep(vm, s->dirty, 1, s->hot);
	if (r < 0)
		return sbx_fail(err, errlen, (int)r, "reset: KVM_GET_DIRTY_LOG: %s",
				strerror((int)-r));
	for (uint64_t i = 0; i < nw; i++) {
		uint64_t every = s->dirty[i];
		for (int k = RESET_HOT_RUNS - 2; k >= 0; k--) {
			every &= s->seen[k][i];
			s->seen[k][i] = k ? s->seen[k - 1][i] : s->dirty[i];
		}
		s->hot[i] |= every;
	}
	*pt = 0;
	s->nfix = 0;
	int fix = (how & SBX_RESET_PT_GUEST) != 0;
	/* The guest kernel writes page tables (guest-abi/kernel/pt.c), and a run often leaves
	 * them as it found them (mprotect there and back): such a page needs neither a copy nor
	 * KVM told, since KVM saw the guest's own writes. */
	for (uint64_t p = SBX_PT_ADDR / SBX_PAGE_SIZE; p < SBX_PT_END / SBX_PAGE_SIZE; p++)
		pt_page(vm, s, nw, p, pt, fix);
	/* Those the kernel took from RAM since (1.5), and before the run (freed in it). */
	kernel_pt_pages(vm, s, vm->proc.mem.base, nw, pt, fix);
	kernel_pt_pages(vm, s, s->ram, nw, pt, fix);
	if (*pt == 1 && !sbx_reset_kernel_maps_alike(vm->proc.mem.base, s->ram, vm->proc.mem.size))
		*pt = 2;
	if (*pt == 2)
		s->nfix = 0;
	if (*pt == 2 && !(how & SBX_RESET_PT_RELOAD))
		return -EAGAIN;
	/* Pages the caller keeps as they are (the exec mailbox, whole pages of coverage
	 * counters): never put back. */
	for (uint64_t p = s->keep_lo / SBX_PAGE_SIZE; p < s->keep_hi / SBX_PAGE_SIZE; p++)
		s->dirty[p / 64] &= ~(1ull << (p % 64));
	if (s->keep_page) {
		uint64_t p = s->keep_page / SBX_PAGE_SIZE;
		s->dirty[p / 64] &= ~(1ull << (p % 64));
	}
	for (uint64_t i = 0; i < nw; i++) {
		while (s->dirty[i]) {
			uint64_t p = i * 64 + (uint64_t)__builtin_ctzll(s->dirty[i]);
			s->dirty[i] &= s->dirty[i] - 1;
			uint64_t gpa = p * SBX_PAGE_SIZE;
			memcpy(vm->proc.mem.base + gpa, s->ram + gpa, SBX_PAGE_SIZE);
			sbx_log(vm, 3, "reset: page 0x%llx", (unsigned long long)gpa);
			n++;
		}
	}
	/* Our own copies just now were monitor writes too; KVM did not log them, and they
	 * are what the snapshot holds, so nothing is left to track. */
	memset(vm->proc.mem.mon_dirty, 0, nw * sizeof(uint64_t));
	/* Under PVM KVM keeps shadowing the page tables it saw: the kernel's own writes of the
	 * entries put back, or else re-adding the memslot, make it read them
	 * (docs/architecture.md, "The guest address space"). The list is written behind KVM's
	 * back too, so it goes back at the next reset. */
	if (*pt == 2 && (r = sbx_memslot_reload(vm)) < 0)
		return sbx_fail(err, errlen, (int)r, "reset: re-adding the memslot: %s",
				strerror((int)-r));
	if (s->nfix) {
		uint64_t len = s->nfix * sizeof(struct sbx_exec_fix);
		memcpy(vm->proc.mem.base + SBX_EXEC_FIX_ADDR, s->fix, len);
		sbx_mem_dirty(vm, SBX_EXEC_FIX_ADDR, len);
	}
	if (nfix)
		*nfix = s->nfix;
	*pages = n;
	return 0;
}

int sbx_reset_vcpu(struct sbx_vm *vm, struct sbx_snap *s, char *err, size_t errlen)
{
	struct sbx_sio io = {.load = 1, .buf = s->vcpu.buf, .len = s->vcpu.len};
	int r = sbx_state_vcpu(vm, &io, 1);
	if (r < 0)
		snprintf(err, errlen, "reset: %s", io.msg);
	return r;
}

int sbx_snapshot_threads(const struct sbx_snap *s)
{
	return s->threads.len != 0;
}

int sbx_reset_threads(struct sbx_vm *vm, struct sbx_snap *s, char *err, size_t errlen)
{
	if (!sbx_snapshot_threads(s))
		return 0;
	if (sbx_threads_running(vm))
		return sbx_fail(err, errlen, -EBUSY, "reset: the last run's threads still run");
	struct sbx_sio io = {.load = 1, .buf = s->threads.buf, .len = s->threads.len};
	if (sbx_state_threads(vm, &io) < 0)
		return sbx_fail(err, errlen, io.err, "reset: %s", io.msg);
	/* The thread id the guest holds for its next thread was this monitor's at the
	 * snapshot; the pid space counts afresh for each run (sbx_threads_reset): the kernel
	 * asks for one again. */
	struct sbx_bootinfo *b = sbx_gptr(vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	b->tid_next = atomic_load(&vm->proc.threads.tid_next);
	sbx_mem_dirty(vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	return 0;
}

int sbx_reset_monitor(struct sbx_vm *vm, struct sbx_snap *s, char *err, size_t errlen)
{
	sbx_locks_reset(vm);
	sbx_fd_transient_free(vm->proc.files);
	/* The handle table as it was, with its offsets. */
	for (int i = 0; i < SBX_MAX_FDS; i++) {
		if (vm->proc.files->fds[i].kind != SBX_H_FREE)
			sbx_fd_release(vm, i);
		if (s->fds[i].kind == SBX_H_FREE)
			continue;
		int r = sbx_fd_copy(&vm->proc.files->fds[i], &s->fds[i]);
		if (r < 0)
			return sbx_fail(err, errlen, r, "reset: fd %d: %s", i, strerror(-r));
		/* Not the monitor's own stdio: its output so far stays where it went. */
		if (s->offs[i] >= 0 && s->fds[i].stdio < 0)
			lseek(vm->proc.files->fds[i].fd, s->offs[i], SEEK_SET);
	}
	/* New objects with what the old held at the snapshot (bytes in a pipe, a count, the
	 * registrations, a timer), onto the handles left free above. */
	if (s->objects.len) {
		struct sbx_sio io = {.load = 1, .buf = s->objects.buf, .len = s->objects.len};
		if (sbx_state_objects(vm, &io) < 0)
			return sbx_fail(err, errlen, io.err, "reset: %s", io.msg);
	}
	struct sbx_sio mon = {.load = 1, .reset = 1, .buf = s->mon.buf, .len = s->mon.len};
	if (sbx_state_monitor(vm, &mon) < 0)
		return sbx_fail(err, errlen, mon.err, "reset: %s", mon.msg);
	atomic_store(&vm->life.pause_req, 0);
	memset(&vm->life.stop, 0, sizeof(vm->life.stop));
	vm->life.stop.vector = -1;
	vm->proc.vcpu.upcall.pending = 0;
	vm->proc.vcpu.refault = 0;
	vm->life.late_set = 0; /* ends that came after the last run's end: consequences */
	atomic_store(&vm->life.late_sig, 0);
	atomic_store(&vm->proc.vcpu.tlb.async, 0);
	vm->limits->hit = 0;
	if (vm->proc.vcpu.run)
		vm->proc.vcpu.run->immediate_exit = 0;
	atomic_store(&vm->life.stopping, 0);
	return 0;
}

const uint8_t *sbx_snapshot_page(const struct sbx_snap *s, uint64_t gpa)
{
	return gpa + SBX_PAGE_SIZE <= s->mem_size ? s->ram + gpa : NULL;
}

void sbx_snapshot_keep(struct sbx_snap *s, uint64_t lo, uint64_t hi, uint64_t page)
{
	s->keep_lo = lo;
	s->keep_hi = hi > lo ? hi : lo;
	s->keep_page = page;
}

int sbx_reset(struct sbx_vm *vm, struct sbx_snap *s, struct sbx_reset_stats *st, char *err,
	      size_t errlen)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (vm->life.running && !vm->life.paused)
		return sbx_fail(err, errlen, -EBUSY, "reset: the vCPU is running (pause it first)");
	/* Paused threads still have their host threads, which a load would run over. */
	if (sbx_snapshot_threads(s))
		return sbx_fail(err, errlen, -ENOTSUP,
				"reset: the snapshot holds threads, which only a stopped sandbox "
				"takes back");
	if (s->mem_size != vm->proc.mem.size || !vm->proc.mem.dirty_logging)
		return sbx_fail(err, errlen, -EINVAL,
				"reset: this snapshot was not taken of this sandbox");
	uint64_t pages = 0;
	int pt = 0, r;
	if ((r = sbx_reset_pages(vm, s, SBX_RESET_PT_RELOAD, &pages, &pt, NULL, err, errlen)) < 0 ||
	    (r = sbx_reset_vcpu(vm, s, err, errlen)) < 0 ||
	    (r = sbx_reset_monitor(vm, s, err, errlen)) < 0)
		return r;
	if (st) {
		st->pages = pages;
		st->slot_reload = pt != 0;
		st->us = sbx_ms_since(&t0) * 1e3;
	}
	return 0;
}

int sbx_reset_verify(struct sbx_vm *vm, const struct sbx_snap *s, char *err, size_t errlen)
{
	for (uint64_t gpa = 0; gpa < vm->proc.mem.size; gpa += SBX_PAGE_SIZE) {
		if ((gpa >= s->keep_lo && gpa < s->keep_hi) ||
		    (s->keep_page && gpa == s->keep_page))
			continue;
		if (memcmp(vm->proc.mem.base + gpa, s->ram + gpa, SBX_PAGE_SIZE)) {
			snprintf(err, errlen,
				 "reset check: guest page 0x%llx differs from the snapshot",
				 (unsigned long long)gpa);
			return -EIO;
		}
	}
	return 0;
}
