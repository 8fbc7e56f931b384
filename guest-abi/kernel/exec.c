/* Repeated runs from one snapshot (struct sbx_exec_ctl in sbx_abi.h): the snapshot point and
 * the end of a run. The spinning and the restart are in entry.S, where no stack is used. */
#include "kernel.h"

#define CTL ((volatile struct sbx_exec_ctl *)SBX_EXEC_ADDR)
#define K_XSAVE_BYTES 16384

long k_exec_save(void) __attribute__((returns_twice));
void k_exec_park(uint32_t status) __attribute__((noreturn));
void k_exec_before_run(void);

static int k_point_taken;
static int k_point_paused; /* taken by the monitor, every vCPU paused (POINT) */

/* Where the snapshot is taken; every run returns from here. */
static int k_exec_point(void)
{
	/* The program's extended state must fit the save area, even once it has asked for
	 * every dynamic component (AMX's 8 KiB of tiles fit). */
	if (BOOT->xsave_bytes_max > K_XSAVE_BYTES || BOOT->xsave_bytes > K_XSAVE_BYTES)
		return -ENOMEM;
	/* The first-use work in the snapshot, not in every run (SBX_EXEC_OP_READY), its flush
	 * included. */
	k_pt_free_pages();
	k_pt_commit();
	k_patch_note_level();
	k_point_taken = 1;
	if (k_exec_save() == 0)
		k_exec_park(SBX_EXEC_AT_POINT);
	return 0;
}

/* The point of a program that has had threads: this vCPU cannot park the process, so the
 * monitor pauses every vCPU while this one asks and takes the snapshot there; each run then
 * begins with the question asked again, answered 0. */
static long k_exec_point_paused(void)
{
	long r;
	k_point_paused = 1;
	do
		r = k_call_own(SBX_CALL_POINT, 0, 0);
	while (r == -EAGAIN);
	if (r == 0)
		__atomic_store_n(&k_point_taken, 1, __ATOMIC_RELEASE);
	return r;
}

void k_exec_stdin_point(void)
{
	if (!(BOOT->flags & SBX_BOOT_WARM) || __atomic_load_n(&k_point_taken, __ATOMIC_ACQUIRE))
		return;
	if (BOOT->threads_peak <= 1) {
		k_exec_point();
		return;
	}
	/* Any thread reading fd 0 before the snapshot asks too. */
	k_exec_point_paused();
}

void k_exec_exit(uint32_t status)
{
	/* Parked, the other threads' vCPUs would run on under the reset: a run that started a
	 * thread ends by the exit hypercall, and the next starts from a full reset. */
	if ((BOOT->flags & SBX_BOOT_EXIT_PARKS) && BOOT->threads_peak <= 1) {
		k_itimer_disarm(); /* no SIGALRM into the parked process or the next run */
		k_exec_park(status & 0xff);
	}
}

/* Called by k_exec_park before a run when the monitor put back page-table pages under it or
 * earlier runs patched syscall sites. KVM shadows the tables and saw none of the monitor's
 * copies: a write of an entry by the guest is what it sees (a trap that drops its shadow entry,
 * or the write that unsyncs a last-level table, synced at the flush), so each changed entry is
 * written again, with the value it now has. A re-added memslot would drop every shadow entry
 * instead, and each page of the next run would fault again. The kernel's own mappings are the
 * same in both (the monitor checked). The sites went back with the snapshot's code: each
 * would trap at its first call again, so the kernel patches them now, checking each as a trap
 * would (a name in the list is only a hint). */
void k_exec_before_run(void)
{
	const struct sbx_exec_fix *fix = k_phys(SBX_EXEC_FIX_ADDR);
	uint32_t n = CTL->nfix;
	for (uint32_t i = 0; i < n && i < SBX_EXEC_FIX_MAX; i++) {
		uint64_t gpa = fix[i].gpa;
		if ((gpa & (SBX_PAGE_SIZE - 1)) || gpa >= BOOT->mem_size)
			continue;
		volatile uint64_t *t = k_phys(gpa);
		for (unsigned w = 0; w < 8; w++)
			for (uint64_t m = fix[i].changed[w]; m; m &= m - 1) {
				unsigned e = w * 64 + (unsigned)__builtin_ctzll(m);
				t[e] = t[e];
			}
	}
	if (n) {
		k_pt_flush_owed = 2;
		k_pt_flush();
	}
	const volatile uint64_t *sites = k_phys(SBX_EXEC_SITES_ADDR);
	uint32_t done = 0, ns = CTL->nsites;
	for (uint32_t i = 0; i < ns && i < SBX_EXEC_SITES_MAX; i++)
		done += k_patch_again(sites[i]) == 0;
	CTL->repatched = done;
	CTL->nsites = 0;
	/* Last, after the flush: a run stopped before this leaves nfix set, and the monitor
	 * re-adds the memslot at the next reset. */
	CTL->nfix = 0;
}

#define K_FILL_EACH (1ull << 20)
#define K_FILL_BUDGET (32ull << 20)

long k_sys_exec(struct k_frame *f)
{
	if (!(BOOT->flags & SBX_BOOT_EXEC))
		return -ENOSYS; /* a plain run: the driver runs its inputs itself */
	/* vCPU 0 parks: the monitor stops the other threads' vCPUs there before the reset. */
	if (!k_thread_is_main())
		return -EINVAL;
	switch (f->rdi) {
	case SBX_EXEC_OP_POINT: {
		if (__atomic_load_n(&k_point_taken, __ATOMIC_ACQUIRE))
			return -EBUSY;
		/* The monitor writes both before every run. */
		if (!k_user_ok(f->rsi, f->rdx, K_WRITE) || !k_user_ok(f->r10, f->r8, K_WRITE))
			return -EFAULT;
		/* ... at guest-physical addresses: each must be one run of pages. An mmap'ed
		 * buffer usually is, as the allocator hands its pages out in order, but not in
		 * RAM a dynamic program's loader left in holes: its pages are moved onto a run. */
		uint64_t counters = 0, input = 0;
		if (f->r8 && k_gpa_run(f->r10, f->r8, &input) != f->r8 &&
		    !(f->r10 & (SBX_PAGE_SIZE - 1)) && !(f->r8 & (SBX_PAGE_SIZE - 1)) &&
		    k_pt_make_run(f->r10, f->r8) == 0)
			k_pt_commit();
		if ((f->rdx && k_gpa_run(f->rsi, f->rdx, &counters) != f->rdx) ||
		    (f->r8 && k_gpa_run(f->r10, f->r8, &input) != f->r8))
			return -ENOMEM;
		/* Small arenas (ASan's allocator maps 64 KiB at a time) get their pages now, up
		 * to a quarter of the free RAM. */
		uint64_t quarter = k_frames_nfree() * SBX_PAGE_SIZE / 4;
		k_pt_fill_lazy(K_FILL_EACH, quarter < K_FILL_BUDGET ? quarter : K_FILL_BUDGET);
		k_pt_commit();
		CTL->counters = counters;
		CTL->ncounters = f->rdx;
		CTL->input = input;
		CTL->input_max = f->r8;
		long r;
		if (BOOT->threads_peak > 1) {
			/* A parked reset puts back vCPU 0 alone: with threads (a Go runtime's, a
			 * pool started in LLVMFuzzerInitialize) the monitor takes the point with
			 * every vCPU paused, and each input ends by a stop (SBX_EXEC_OP_DONE). */
			CTL->status = SBX_EXEC_AT_POINT;
			r = k_exec_point_paused();
		} else {
			r = k_exec_point();
		}
		if (r < 0)
			return r;
		/* The lock was let go while the monitor paused the threads: the buffers must
		 * still be the pages the snapshot names (another thread may have unmapped them).
		 * If not, the input went into pages that hold something else by now: the driver
		 * gets EFAULT rather than read another page as its input. */
		uint64_t c2 = 0, i2 = 0;
		if (k_point_paused &&
		    ((f->rdx && (k_gpa_run(f->rsi, f->rdx, &c2) != f->rdx || c2 != counters)) ||
		     (f->r8 && (k_gpa_run(f->r10, f->r8, &i2) != f->r8 || i2 != input))))
			return -EFAULT;
		uint64_t n = CTL->input_len;
		return (long)(n > f->r8 ? f->r8 : n);
	}
	case SBX_EXEC_OP_READY: /* at the program's entry, before its point (entry.S) */
		k_pt_free_pages();
		k_patch_note_level();
		return 0;
	case SBX_EXEC_OP_DONE:
		if (!k_point_taken)
			return -EINVAL;
		if (!k_point_paused)
			k_exec_park(0);
		/* A point taken with threads has no parked context to go back to: the run ends
		 * here, its threads stopped with it, and the next starts from a full reset. Not
		 * after --warm's point, whose runs end at the program's exit. */
		if (BOOT->flags & SBX_BOOT_WARM)
			return -EINVAL;
		CTL->status = SBX_EXEC_RUN_DONE;
		k_exit(0);
	}
	return -EINVAL;
}
