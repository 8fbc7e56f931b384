/* How sandbox.c puts a sandbox together, for those inside the monitor that put one together
 * otherwise (a restore, persist/snapshot.c) and for white-box tests and fuzzers. */
#ifndef SBX_SANDBOX_PRIV_H
#define SBX_SANDBOX_PRIV_H

#include "sandbox.h"
#include "vm.h"

/* A sandbox with guest RAM and its host calls but no KVM: enough for the exit handler and the
 * hypercalls, so that tests and fuzzers drive them with made-up exits and requests. */
int sbx_vm_create_bare(const struct sbx_config *cfg, struct sbx_vm **out, char *err, size_t errlen);

/* procs.c: the process tree. Attached to the first process (sbx_vm_create); its end kills and
 * joins every other process. sbx_procs_count: processes alive (1 without a tree). */
int sbx_procs_attach(struct sbx_vm *vm, char *err, size_t errlen);
void sbx_procs_end(struct sbx_vm *vm);
/* Between two runs of the exec engine: every process but the first is killed and forgotten,
 * and pids start after the first's again. */
void sbx_procs_reset(struct sbx_vm *vm);
/* A restored first process keeps the ids its boot page gives (a kernel older than ABI 1.17
 * numbered it 1), where they are sane. */
void sbx_procs_adopt_ids(struct sbx_vm *vm);
/* At a process's run's start (again, for a repeated run's), it is in the tree to be
 * signalled; at its end, before its threads go, no signal reaches it any more. */
void sbx_procs_run_start(struct sbx_vm *vm);
void sbx_procs_run_over(struct sbx_vm *vm);
/* What the other processes whose run is over counted (--stats), into st's procs fields. */
void sbx_procs_stats(struct sbx_vm *vm, struct sbx_stats *st);
unsigned sbx_procs_count(struct sbx_vm *vm);
/* Tests: ids (pids and tids) below max from now on, so that they come round sooner. */
void sbx_procs_set_pid_max(struct sbx_vm *vm, uint32_t max);
/* 1 if vm's process has its ITIMER_REAL armed (alarm, setitimer). */
int sbx_procs_timer_armed(struct sbx_vm *vm);
/* What a process other than the first leaves for the first's report at the end of its run:
 * the counts of the calls it found missing, and the paths it looked for in vain (children's
 * own reports are said under -v only: a script's commands fail by design, and would say so
 * at every non-zero exit). sbx_procs_take_report gives the first process what they left since
 * it last took it, adding the counts into nosys: 1 if any process left something. */
void sbx_procs_leave_report(struct sbx_vm *vm, const uint32_t *nosys);
int sbx_procs_take_report(struct sbx_vm *vm, uint32_t *nosys);

/* sandbox.c: the calls refused so far, said now as at the program's end and then forgotten
 * (the boot page's counts zeroed), so that each run from a snapshot taken next says only its
 * own at its end (the exec engine's point: a run that ends by a stop, a crash or a time limit
 * after any point, and every run after a point taken with threads). */
void sbx_report_refused_so_far(struct sbx_vm *vm);

#endif
