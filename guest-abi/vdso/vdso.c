/* The vDSO: clock_gettime and friends answered in user mode from the TSC, without even the
 * in-guest kernel's syscall trap (1.6 us on PVM). Reads only the monitor's boot page; for a
 * clock it does not keep it makes the real syscall. Built -mgeneral-regs-only like the kernel,
 * so it runs under PVM's CPL0 emulator too. */
#include "clock.h"

#define BOOT ((const volatile struct sbx_bootinfo *)SBX_BOOTINFO_ADDR)

struct vdso_timespec {
	int64_t sec, nsec;
};

struct vdso_timeval {
	int64_t sec, usec;
};

static long vdso_syscall2(long nr, long a, long b)
{
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b) : "rcx", "r11", "memory");
	return ret;
}

int __vdso_clock_gettime(long clk, struct vdso_timespec *ts);
int __vdso_clock_gettime(long clk, struct vdso_timespec *ts)
{
	int kind = sbx_clock_kind((uint64_t)clk);
	if (kind < 0)
		return (int)vdso_syscall2(228, clk, (long)ts);
	int64_t ns = sbx_clock_ns(BOOT, kind, (uint64_t)clk);
	ts->sec = ns / SBX_NSEC;
	ts->nsec = ns % SBX_NSEC;
	return 0;
}

int __vdso_clock_getres(long clk, struct vdso_timespec *ts);
int __vdso_clock_getres(long clk, struct vdso_timespec *ts)
{
	if (sbx_clock_kind((uint64_t)clk) < 0)
		return (int)vdso_syscall2(229, clk, (long)ts);
	if (ts) {
		ts->sec = 0;
		ts->nsec = 1;
	}
	return 0;
}

int __vdso_gettimeofday(struct vdso_timeval *tv, void *tz);
int __vdso_gettimeofday(struct vdso_timeval *tv, void *tz)
{
	if (tv) {
		int64_t ns = sbx_clock_now(BOOT, 1);
		tv->sec = ns / SBX_NSEC;
		tv->usec = (ns % SBX_NSEC) / 1000;
	}
	if (tz) {
		((int32_t *)tz)[0] = 0;
		((int32_t *)tz)[1] = 0;
	}
	return 0;
}

long __vdso_time(long *t);
long __vdso_time(long *t)
{
	long s = (long)(sbx_clock_now(BOOT, 1) / SBX_NSEC);
	if (t)
		*t = s;
	return s;
}

long __vdso_getcpu(unsigned *cpu, unsigned *node, void *unused);
long __vdso_getcpu(unsigned *cpu, unsigned *node, void *unused)
{
	(void)unused;
	if (cpu)
		*cpu = 0;
	if (node)
		*node = 0;
	return 0;
}

/* The unprefixed names some libcs look up. */
int clock_gettime(long clk, struct vdso_timespec *ts)
    __attribute__((weak, alias("__vdso_clock_gettime")));
int clock_getres(long clk, struct vdso_timespec *ts)
    __attribute__((weak, alias("__vdso_clock_getres")));
int gettimeofday(struct vdso_timeval *tv, void *tz)
    __attribute__((weak, alias("__vdso_gettimeofday")));
long time(long *t) __attribute__((weak, alias("__vdso_time")));
long getcpu(unsigned *cpu, unsigned *node, void *unused)
    __attribute__((weak, alias("__vdso_getcpu")));
