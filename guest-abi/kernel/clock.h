/* Guest time from the TSC, shared by the kernel's syscalls and the vDSO so both always agree:
 * ns = boot clock + (tsc - tsc_at_boot) * tsc_mult >> 32, all from the monitor's boot page. */
#ifndef SBX_CLOCK_H
#define SBX_CLOCK_H

#include <stdint.h>

#include "sbx_abi.h"

#define SBX_CLOCK_REALTIME 0
#define SBX_CLOCK_MONOTONIC 1
#define SBX_CLOCK_PROCESS_CPUTIME_ID 2
#define SBX_CLOCK_THREAD_CPUTIME_ID 3
#define SBX_CLOCK_MONOTONIC_RAW 4
#define SBX_CLOCK_REALTIME_COARSE 5
#define SBX_CLOCK_MONOTONIC_COARSE 6
#define SBX_CLOCK_BOOTTIME 7
#define SBX_NSEC 1000000000ll

static inline uint64_t sbx_rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* TSC ticks in ns nanoseconds: a spin's deadline is sbx_rdtsc() plus this. */
static inline uint64_t sbx_tsc_ticks(const volatile struct sbx_bootinfo *b, uint64_t ns)
{
	return ns * b->tsc_hz / (uint64_t)SBX_NSEC;
}

static inline int64_t sbx_clock_now(const volatile struct sbx_bootinfo *b, int realtime)
{
	/* A restore rewrites the clock fields while the guest is stopped, possibly between two
	 * of these loads: the sequence number tells, and the read starts over. */
	for (;;) {
		uint32_t seq = b->clock_seq;
		__asm__ volatile("" ::: "memory");
		uint64_t d = sbx_rdtsc() - b->tsc_at_boot;
		int64_t ns = (int64_t)(((unsigned __int128)d * b->tsc_mult) >> 32);
		ns += realtime ? b->realtime_ns : b->monotonic_ns;
		__asm__ volatile("" ::: "memory");
		if (seq == b->clock_seq)
			return ns;
	}
}

/* 1 for the realtime family, 0 for the monotonic family, -1 for a clock we do not keep. */
static inline int sbx_clock_kind(uint64_t id)
{
	switch (id) {
	case SBX_CLOCK_REALTIME:
	case SBX_CLOCK_REALTIME_COARSE:
		return 1;
	case SBX_CLOCK_MONOTONIC:
	case SBX_CLOCK_MONOTONIC_RAW:
	case SBX_CLOCK_MONOTONIC_COARSE:
	case SBX_CLOCK_BOOTTIME:
	case SBX_CLOCK_PROCESS_CPUTIME_ID:
	case SBX_CLOCK_THREAD_CPUTIME_ID:
		return 0;
	}
	return -1;
}

static inline int64_t sbx_clock_ns(const volatile struct sbx_bootinfo *b, int kind, uint64_t id)
{
	if (id != SBX_CLOCK_PROCESS_CPUTIME_ID && id != SBX_CLOCK_THREAD_CPUTIME_ID)
		return sbx_clock_now(b, kind);
	/* The guest runs alone on its vCPU, so its CPU time is its run time less the time it
	 * waited on the host (idle_ns: sleeps, polls, blocking reads; ring.c keeps it), and less
	 * the time its host thread waited for a host CPU (KVM's steal time): the CPU time the
	 * monitor counts (wait4's rusage) is its thread's. Never below zero. The steal only while
	 * the image has one thread: vCPU 0 also waits while its siblings run on the host CPUs the
	 * sandbox has (--cpus 1), which is the process's CPU time. The time and the steal are
	 * read with no preemption between them (KVM adds it as the vCPU comes back), or the
	 * clock would go back by it. */
	for (;;) {
		uint64_t st0 = b->steal.steal;
		__asm__ volatile("" ::: "memory");
		int64_t ns = sbx_clock_now(b, kind) - (b->start_ns + (int64_t)b->idle_ns);
		__asm__ volatile("" ::: "memory");
		int64_t st = (int64_t)b->steal.steal;
		if ((uint64_t)st != st0)
			continue;
		if (st > 0 && !b->threads_started)
			ns = st < ns ? ns - st : 0;
		return ns;
	}
}

#endif
