/* The hypercalls of guest threads: starting a thread's vCPU, and parking a vCPU until a word
 * of guest RAM changes (a futex wait, an idle vCPU) or another vCPU wakes it. */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "calls.h"

int64_t sbx_hc_thread_start(struct sbx_vm *vm, const struct sbx_slot *s)
{
	uint64_t tid = s->u.a[5]; /* 0: a kernel before 1.13, which counts its own */
	if (s->u.a[0] > UINT32_MAX || (tid && tid != atomic_load(&vm->proc.threads.tid_next)))
		return -EINVAL;
	int r =
	    sbx_thread_start(vm, (uint32_t)s->u.a[0], s->u.a[1], s->u.a[2], s->u.a[3], s->u.a[4]);
	return r < 0 || !tid ? r : sbx_thread_tid_take(vm, (uint32_t)s->u.a[0], tid);
}

int64_t sbx_hc_tid(struct sbx_vm *vm, const struct sbx_slot *s)
{
	(void)s;
	return sbx_thread_tid_next(vm);
}

/* The word a PARK or UNPARK names: 4-byte aligned, inside RAM. */
static atomic_uint *park_word(struct sbx_vm *vm, uint64_t gpa)
{
	if (gpa & 3)
		return NULL;
	return (atomic_uint *)(uintptr_t)sbx_gptr_ro(vm, gpa, 4);
}

int64_t sbx_hc_park(struct sbx_vm *vm, const struct sbx_slot *s)
{
	atomic_uint *w = park_word(vm, s->u.a[0]);
	/* Only the vCPU's own thread serves a wait (the poller would hold ring_lock through it). */
	if (!w || s->u.a[1] > UINT32_MAX || !(s->pad & SBX_SLOT_OWN))
		return -EINVAL;
	uint32_t val = (uint32_t)s->u.a[1];
	sbx_thread_tid_gone(vm, s->u.a[3]);
	const uint64_t year_ns = 1000000000ull * 3600 * 24 * 365;
	int64_t end =
	    sbx_now_ns(CLOCK_MONOTONIC) + (int64_t)(s->u.a[2] < year_ns ? s->u.a[2] : year_ns);
	/* Served by this vCPU's own thread with ring_lock released (SBX_SLOT_OWN). Returns at a
	 * wake, at the deadline, and when the run pauses or ends (the kick's EINTR): the guest
	 * looks at its word and parks again if it must. */
	int released = sbx_ring_release(vm);
	const struct sbx_bootinfo *b = sbx_gptr_ro(vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	/* A signal from another process (sig_incoming) ends it too, however its kick fell. */
	while (!atomic_load(&vm->life.stopping) && !atomic_load(&vm->life.pause_req) &&
	       atomic_load(w) == val && !__atomic_load_n(&b->sig_incoming, __ATOMIC_RELAXED)) {
		/* In slices: a kick that lands just before the wait is not lost for long. */
		int64_t left = end - sbx_now_ns(CLOCK_MONOTONIC);
		if (left <= 0)
			break;
		if (left > 50 * SBX_NS_PER_MS)
			left = 50 * SBX_NS_PER_MS;
		struct timespec rel = {.tv_sec = (time_t)(left / 1000000000ll),
				       .tv_nsec = (long)(left % 1000000000ll)};
		if (syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, val, &rel, NULL, 0) < 0 &&
		    errno == EINTR)
			break;
	}
	sbx_ring_reacquire(vm, released);
	return 0;
}

int64_t sbx_hc_tlb_shootdown(struct sbx_vm *vm, const struct sbx_slot *s)
{
	(void)s;
	return sbx_tlb_shootdown(vm);
}

int64_t sbx_hc_patch(struct sbx_vm *vm, const struct sbx_slot *s)
{
	uint64_t va = s->u.a[0], gpa = s->u.a[1], n = s->u.a[3], from = s->u.a[4];
	uint8_t bytes[8];
	memcpy(bytes, &s->u.a[2], sizeof(bytes));
	uint64_t to = s->u.a[5];
	/* One page of RAM; `from` strictly inside the site, in the program's half; `to` in the
	 * records' window. */
	if (n < 1 || n > 8 || (gpa & 4095) + n > 4096 || va < SBX_USER_ADDR ||
	    va > UINT64_MAX - n ||
	    (from && (from <= va || from >= va + n || to < SBX_PATCH_ADDR ||
		      to >= SBX_PATCH_ADDR + SBX_PATCH_BYTES)))
		return -EINVAL;
	return sbx_patch_write(vm, gpa, bytes, n, from, to);
}

int64_t sbx_hc_unpark(struct sbx_vm *vm, const struct sbx_slot *s)
{
	atomic_uint *w = park_word(vm, s->u.a[0]);
	if (!w)
		return -EINVAL;
	syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
	return 0;
}

/* A parked vCPU runs a new thread, with the id held for it: one request for both. a0 is its
 * run word, which the kernel leaves 0 and this sets. */
int64_t sbx_hc_thread_run(struct sbx_vm *vm, const struct sbx_slot *s)
{
	struct sbx_threads *th = &vm->proc.threads;
	uint64_t i = s->u.a[1];
	if (!park_word(vm, s->u.a[0]) || i == 0 || i >= SBX_MAX_VCPUS ||
	    !__atomic_load_n(&th->v[i], __ATOMIC_ACQUIRE))
		return -EINVAL;
	if (!s->u.a[2] || s->u.a[2] != atomic_load(&th->tid_next))
		return -EINVAL;
	int r = sbx_thread_resume(vm, (uint32_t)i);
	if (r < 0)
		return r;
	int64_t next = sbx_thread_tid_take(vm, (uint32_t)i, s->u.a[2]);
	if (next < 0)
		return next;
	/* The run word is set here, once nothing can fail: the kernel takes the slot back
	 * after a failure, which a vCPU that saw it set could already be running. */
	atomic_uint *w = sbx_gptr(vm, s->u.a[0], 4);
	atomic_store(w, 1);
	sbx_hc_unpark(vm, s);
	return next;
}

int64_t sbx_hc_kick(struct sbx_vm *vm, const struct sbx_slot *s)
{
	return s->u.a[0] >= SBX_MAX_VCPUS ? -EINVAL : sbx_vcpu_kick(vm, (unsigned)s->u.a[0]);
}
