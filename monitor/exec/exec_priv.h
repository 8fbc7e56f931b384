/* Inside the exec engine (docs/exec.md): its state, and what its files share. One way through
 * them, top to bottom:
 *   exec_open.c   the sandbox, run to its point, the snapshot there; closing it
 *   exec_run.c    one run: reset, go, wait for its end, tell how it ended
 *   exec_reset.c  putting the sandbox back between runs, with the vCPU spinning or held
 *   exec_setup.c  what each run gets of its own: stdio, stack or input, clocks
 *   exec_wait.c   the vCPU thread, where it parks, the waits for a run's end, and POINT
 *   exec_fs.c     the --tmp directories put back
 *
 * Three ways a run ends and the next begins, cheapest first:
 * - fast (opts.fast): the kernel spins in its park loop while this thread resets the pages
 *   under it and bumps `go`; the kernel restores its own registers. No VM exit at all.
 * - parked: the kernel rang the doorbell and the vCPU thread holds the vCPU in that exit
 *   (sbx_exec_doorbell). With the vCPU stopped the monitor may also put back page tables and,
 *   unless fast, the vCPU's registers: nothing of a run, not even a register, reaches the next.
 * - stopped: the run ended otherwise (a crash, a signal, a limit, a kill, or the exit of a
 *   program with threads, so every run from a point taken with threads): sbx_vm_run returned
 *   on the vCPU thread; a full reset (the threads' vCPUs too), and sbx_vm_run again. */
#ifndef SBX_EXEC_PRIV_H
#define SBX_EXEC_PRIV_H

#include "exec.h"

struct sbx_snap;
struct sbx_exec {
	struct sbx_vm *vm;
	struct sbx_exec_opts o;
	struct policy pol; /* cfg's, with the time limits taken over per run */
	struct sbx_snap *snap;
	pthread_t thread;
	int thread_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int parked, run_req, stopped, quit; /* under lock */
	/* A thread of a program with threads reached the point (POINT): the snapshot is taken
	 * with every vCPU paused (under lock; only before the snapshot). */
	int point_wanted;
	/* The snapshot was taken so (snapshot_paused): every run ends stopped, its vCPU 0 goes on
	 * from the question, never from the park loop, and the threads come back with it. */
	int paused;
	struct sbx_result res; /* the last sbx_vm_run's */
	/* sbx_threads_launches when the run was let go: a run that started a thread took
	 * page-table pages for its window that the reset's page-table check does not list. */
	unsigned launches;
	uint64_t done_seen; /* ctl->done when the current run was started */
	uint64_t gen;	    /* the last `go` written */
	uint64_t counters, ncounters, input, input_max;
	uint64_t runs;
	int verify_due; /* the next run starts with the debug compare (verify_every) */
	int verify_parked;
	int64_t tsc_offset; /* guest TSC - host TSC, for deterministic clocks */
	double open_ms;
	uint64_t snap_pages;
	char **tmp_saved; /* the --tmp directories at the snapshot */
	int running;	  /* a run is under way (under lock): kills apply to it only */
	/* Fast runs with a core for each of the vCPU and the waiting thread: the waiting thread
	 * spins (no exit). On one core it would only take the vCPU's time: runs park in an exit
	 * then, and the registers are still the guest kernel's to restore. */
	int spin;
	int broken; /* a reset failed: no more runs */
	/* Untrusted runs: every MSR the vCPU has, as at the snapshot, put back in one ioctl; and
	 * each thread's of a point taken with threads, by vCPU index (NULL: none there). */
	struct kvm_msrs *msrs;
	struct kvm_msrs *tmsrs[SBX_MAX_VCPUS];
	uint32_t enomem; /* the boot page's count at the snapshot */
	/* Syscall sites the runs patched (read from the kernel's records after each run): the
	 * kernel patches them again before every run (SBX_EXEC_SITES_ADDR), since each reset
	 * puts the snapshot's code back. */
	uint64_t sites[SBX_EXEC_SITES_MAX];
	uint32_t nsites;
};

/* The mailbox of repeated runs. It is never put back, so writing it needs no dirty mark. */
static inline volatile struct sbx_exec_ctl *sbx_exec_ctl(struct sbx_vm *vm)
{
	return (volatile struct sbx_exec_ctl *)(vm->proc.mem.base + SBX_EXEC_ADDR);
}

/* exec_wait.c: the vCPU thread runs the sandbox (sbx_vm_run) each time it is asked, and parks
 * in the doorbell between runs. */
enum sbx_action sbx_exec_doorbell(struct sbx_vm *vm);
int sbx_exec_start_vcpu(struct sbx_exec *x, char *err, size_t errlen);
void sbx_exec_stop_vcpu(struct sbx_exec *x);
/* Until the vCPU thread is parked or stopped: 1 if parked, 0 stopped, and before the snapshot
 * 2 when a thread asked for it (POINT). A time limit (ms, 0: none) kills a sandbox that takes
 * longer (and so stops it). */
int sbx_exec_wait_parked(struct sbx_exec *x, uint64_t ms);
/* POINT (hooks.point): 0 once the snapshot is taken, -EAGAIN before (the guest asks again). */
int64_t sbx_exec_point(struct sbx_vm *vm);
/* Until the run ends, with its time limit: 0 it parked, 1 it stopped. */
int sbx_exec_wait_end(struct sbx_exec *x);

/* exec_reset.c: the sandbox as at the snapshot, this run set up, and go (0 or -errno; a
 * failure leaves the sandbox broken). verify: the debug compare of all of RAM after a run
 * that ended parked (1) or stopped (0). */
int sbx_exec_reset(struct sbx_exec *x, struct sbx_exec_run *run, char *err, size_t errlen);
/* After a trusted run that parked (run->learn_sites): the sites it patched join x->sites. */
void sbx_exec_learn_sites(struct sbx_exec *x);
int sbx_exec_verify(struct sbx_exec *x, int parked, char *err, size_t errlen);

/* exec_setup.c: everything of a run but the pages (monitor state, then this run's own), and
 * the word that starts it, with the page-table pages the kernel is to write first (nfix of
 * them listed) and the sites it is to patch. */
int sbx_exec_prepare(struct sbx_exec *x, struct sbx_exec_run *run, char *err, size_t errlen);
void sbx_exec_go(struct sbx_exec *x, uint32_t nfix);

/* exec_fs.c: the --tmp directories as they were at the snapshot (NULL-terminated paths of
 * copies), put back after a run that changed the file system. */
int sbx_tmp_save(struct sbx_vm *vm, char ***saved, char *err, size_t errlen);
int sbx_tmp_restore(struct sbx_vm *vm, char **saved, char *err, size_t errlen);
void sbx_tmp_free(char **saved);

#endif
