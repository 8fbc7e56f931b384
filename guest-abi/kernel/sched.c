/* Scheduling: a program's view of it, for the calls build tools and runtimes make on the way
 * (`nice make`, Python's os.nice, a runtime pinning its threads). The host schedules each vCPU
 * thread as it likes, so what a program sets here changes no host decision: nice values are
 * kept (and inherited by fork) and read back, policies other than the normal ones are refused
 * as for a process without CAP_SYS_NICE, and an affinity naming one of the vCPUs is taken and
 * read back (thread.c). */
#include "kernel.h"

#define PRIO_PROCESS 0
#define PRIO_PGRP 1
#define PRIO_USER 2
#define SCHED_OTHER 0
#define SCHED_FIFO 1
#define SCHED_RR 2
#define SCHED_BATCH 3
#define SCHED_IDLE 5
#define SCHED_RESET_ON_FORK 0x40000000

/* The nice value, -20..19, is the boot page's: fork's child has its parent's, and the monitor
 * keeps it across execve. */
#define k_nice (BOOT->nice)

/* 0: pid 0, the caller or a thread of its own; 1: another process of the sandbox; or an
 * error. pid 0 is the caller; a thread of its own is its (pthread_setaffinity_np names one by its
 * tid); another pid of the sandbox is asked of the monitor (kill's check). */
long k_pid_ok(uint64_t arg)
{
	int64_t pid = (int32_t)arg;
	if (pid < 0)
		return -EINVAL;
	if (pid == 0 || pid == (int64_t)BOOT->pid || k_signal_thread((uint32_t)pid, 0))
		return 0;
	return k_proc_kill(pid, 0) < 0 ? -ESRCH : 1;
}

static long prio_who(uint64_t which, uint64_t who)
{
	uint32_t w = (uint32_t)who;
	switch ((int32_t)which) {
	case PRIO_PROCESS:
		return w == 0 || w == BOOT->pid ? 0 : -ESRCH;
	case PRIO_PGRP:
		return w == 0 || w == BOOT->pgid ? 0 : -ESRCH;
	case PRIO_USER:
		return w == 0 || w == BOOT->uid ? 0 : -ESRCH;
	}
	return -EINVAL;
}

/* The raw call answers 20 - nice (1..40), as Linux's does; libc turns it back. */
long k_sys_getpriority(struct k_frame *f)
{
	long r = prio_who(f->rdi, f->rsi);
	return r < 0 ? r : 20 - k_nice;
}

long k_sys_setpriority(struct k_frame *f)
{
	long r = prio_who(f->rdi, f->rsi);
	if (r < 0)
		return r;
	int32_t n = (int32_t)f->rdx;
	n = n < -20 ? -20 : n > 19 ? 19 : n;
	if (n < k_nice)
		return -EACCES; /* RLIMIT_NICE 0: a user may only lower its priority */
	k_nice = n;
	return 0;
}

/* I/O priorities (ionice, a build tool lowering its own): kept like the nice value, read back,
 * and changing nothing on the host. Who may be the caller, its process group or its user, as
 * getpriority's; the real-time class needs CAP_SYS_ADMIN, which a sandboxed program lacks. */
#define IOPRIO_WHO_PROCESS 1
#define IOPRIO_WHO_PGRP 2
#define IOPRIO_WHO_USER 3
#define IOPRIO_CLASS_SHIFT 13
#define IOPRIO_CLASS_RT 1
#define IOPRIO_CLASS_IDLE 3

static long ioprio_who(uint64_t which, uint64_t who)
{
	int32_t w = (int32_t)which;
	if (w < IOPRIO_WHO_PROCESS || w > IOPRIO_WHO_USER)
		return -EINVAL;
	/* PRIO_* are IOPRIO_WHO_* less one. */
	return prio_who((uint64_t)(w - 1), who);
}

long k_sys_ioprio_get(struct k_frame *f)
{
	long r = ioprio_who(f->rdi, f->rsi);
	return r < 0 ? r : (long)BOOT->ioprio;
}

long k_sys_ioprio_set(struct k_frame *f)
{
	uint32_t v = (uint32_t)f->rdx, cls = v >> IOPRIO_CLASS_SHIFT, data = v & 0x1fff;
	/* Linux's order: the value first (the real-time class's EPERM before its level), then
	 * who. A class it knows; a level of 0..7 for the best-effort one; none for "none". */
	if (cls == IOPRIO_CLASS_RT)
		return -EPERM;
	if (cls > IOPRIO_CLASS_IDLE || (cls == 0 && data) ||
	    (cls && cls < IOPRIO_CLASS_IDLE && data > 7))
		return -EINVAL;
	long r = ioprio_who(f->rdi, f->rsi);
	if (r < 0)
		return r;
	BOOT->ioprio = v;
	return 0;
}

/* The caller's policy: SCHED_OTHER, or the BATCH or IDLE it chose (kept like the nice value). */
static uint32_t k_policy;

long k_sys_sched_getscheduler(struct k_frame *f)
{
	long r = k_pid_ok(f->rdi);
	return r < 0 ? r : r == 0 ? (long)k_policy : SCHED_OTHER;
}

long k_sys_sched_getparam(struct k_frame *f)
{
	long r = k_pid_ok(f->rdi);
	int32_t prio = 0;
	if (r < 0)
		return r;
	return f->rsi ? k_copy_to_user(f->rsi, &prio, sizeof(prio)) : -EINVAL;
}

static long param_ok(uint64_t policy, uint64_t p)
{
	int32_t prio;
	if (!p)
		return -EINVAL;
	if (k_copy_from_user(&prio, p, sizeof(prio)) < 0)
		return -EFAULT;
	if (policy == SCHED_FIFO || policy == SCHED_RR)
		return prio < 1 || prio > 99 ? -EINVAL : -EPERM;
	return prio != 0 ? -EINVAL : 0;
}

long k_sys_sched_setscheduler(struct k_frame *f)
{
	uint64_t policy = (uint32_t)f->rsi & ~(uint32_t)SCHED_RESET_ON_FORK;
	if ((int32_t)f->rsi < 0 ||
	    (policy != SCHED_OTHER && policy != SCHED_FIFO && policy != SCHED_RR &&
	     policy != SCHED_BATCH && policy != SCHED_IDLE))
		return -EINVAL;
	long r = k_pid_ok(f->rdi);
	if (r < 0 || (r = param_ok(policy, f->rdx)) < 0)
		return r;
	if (k_pid_ok(f->rdi) == 0)
		k_policy = (uint32_t)policy;
	return 0;
}

long k_sys_sched_setparam(struct k_frame *f)
{
	long r = k_pid_ok(f->rdi);
	return r < 0 ? r : param_ok(SCHED_OTHER, f->rsi);
}

long k_sys_sched_get_priority_max(struct k_frame *f)
{
	uint64_t p = f->rdi;
	if (p == SCHED_FIFO || p == SCHED_RR)
		return 99;
	return p == SCHED_OTHER || p == SCHED_BATCH || p == SCHED_IDLE ? 0 : -EINVAL;
}

long k_sys_sched_get_priority_min(struct k_frame *f)
{
	uint64_t p = f->rdi;
	if (p == SCHED_FIFO || p == SCHED_RR)
		return 1;
	return p == SCHED_OTHER || p == SCHED_BATCH || p == SCHED_IDLE ? 0 : -EINVAL;
}

long k_sys_sched_rr_get_interval(struct k_frame *f)
{
	long r = k_pid_ok(f->rdi);
	int64_t ts[2] = {0, 0}; /* SCHED_OTHER has no round-robin slice */
	return r < 0 ? r : k_copy_to_user(f->rsi, ts, sizeof(ts));
}

long k_sys_getcpu(struct k_frame *f)
{
	uint32_t cpu = K_CPU->index, node = 0;
	if (f->rdi && k_copy_to_user(f->rdi, &cpu, sizeof(cpu)) < 0)
		return -EFAULT;
	return f->rsi ? k_copy_to_user(f->rsi, &node, sizeof(node)) : 0;
}
