/* A sandbox put together: the core VM with the host calls attached, run with the monitor
 * confined, its limits enforced, and its end told (a fault report, the ENOSYS summary). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "calls.h"
#include "confine.h"
#include "report.h"
#include "sandbox_priv.h"

int sbx_vm_create_bare(const struct sbx_config *cfg, struct sbx_vm **out, char *err, size_t errlen)
{
	int r = sbx_core_new(cfg, out, err, errlen);
	if (r == 0)
		r = sbx_calls_attach(*out, err, errlen);
	if (r == 0)
		(*out)->hooks.mem_operand = sbx_mem_operand;
	return r;
}

int sbx_vm_create(const struct sbx_config *cfg, struct sbx_vm **out, char *err, size_t errlen)
{
	int r = sbx_vm_create_bare(cfg, out, err, errlen);
	if (r == 0)
		r = sbx_procs_attach(*out, err, errlen);
	if (r == 0)
		sbx_core_start_kvm(*out);
	return r;
}

void sbx_vm_destroy(struct sbx_vm *vm)
{
	if (!vm)
		return;
	sbx_procs_end(vm);
	/* The control thread may be reading RAM and handles (a snapshot, a migration): it
	 * goes first. */
	if (vm->hooks.close)
		vm->hooks.close(vm);
	char err[sizeof(vm->proc.kvm.err)];
	sbx_core_join_kvm(vm, err, sizeof(err));
	sbx_ring_stop(vm);
	sbx_calls_detach(vm);
	sbx_core_free(vm);
}
const char *sbx_vm_program(const struct sbx_vm *vm)
{
	return vm->cfg.prog;
}

/* The signals whose default action writes a core file on Linux get a report (abort(), a
 * raise(SIGSEGV)); the others (SIGTERM, SIGPIPE...) end the program as quietly as natively. */
static int dumps_core(int sig)
{
	return sig == SIGQUIT || sig == SIGILL || sig == SIGTRAP || sig == SIGABRT ||
	       sig == SIGBUS || sig == SIGFPE || sig == SIGSEGV || sig == SIGXCPU ||
	       sig == SIGXFSZ || sig == SIGSYS;
}

/* The calls the guest kernel refused, counted per number in the boot page: a call it does not
 * have (ENOSYS), or socket() of a kind the sandbox's own loopback is not (raw, netlink,
 * packet...), which it refuses since the policy grants no network (EACCES; said only under -v:
 * a program that probes for a name service runs on unchanged). */
static int refused_by_policy(int nr)
{
	return nr == 41;
}

static void report_refused(struct sbx_vm *vm, const uint32_t *count, int all,
			   struct sbx_result *res, int policy)
{
	char line[512];
	size_t o = 0;
	line[0] = 0;
	for (int i = 0; i < SBX_MAX_SYSCALL; i++) {
		uint32_t n = count[i];
		if (!n || refused_by_policy(i) != policy)
			continue;
		if (!policy)
			res->stats.nosys += n;
		const char *name = sbx_syscall_name((uint64_t)i);
		int w =
		    name ? snprintf(line + o, sizeof(line) - o, "%s%s x%u", o ? ", " : "", name, n)
			 : snprintf(line + o, sizeof(line) - o, "%ssyscall %d x%u", o ? ", " : "",
				    i, n);
		if (w < 0 || (size_t)w >= sizeof(line) - o)
			break;
		o += (size_t)w;
	}
	const char *who = vm->cfg.name ? vm->cfg.name : vm->cfg.prog;
	const char *tree = all ? " (all processes)" : "";
	/* Another process's are the first's to say (sbx_procs_leave_report). */
	if (o && !policy && vm->proc.pid == SBX_FIRST_PID)
		sbx_logf(vm, "%s: unimplemented syscalls called%s (returned ENOSYS): %s", who, tree,
			 line);
	else if (o && !policy)
		sbx_log(vm, 1, "%s: unimplemented syscalls called (returned ENOSYS): %s", who,
			line);
	else if (o)
		sbx_log(vm, 1, "%s: network calls refused%s (the policy grants no network): %s",
			who, tree, line);
}

/* The calls the guest kernel refused, this process's and, for the first, those the others
 * left (their missing paths join this process's list), all counted into count; the boot
 * page, NULL if none. */
static struct sbx_bootinfo *say_refused(struct sbx_vm *vm, struct sbx_result *res,
					uint32_t count[SBX_MAX_SYSCALL])
{
	struct sbx_bootinfo *b = sbx_gptr(vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	memset(count, 0, SBX_MAX_SYSCALL * sizeof(count[0]));
	if (b)
		memcpy(count, (const void *)b->nosys_count, SBX_MAX_SYSCALL * sizeof(count[0]));
	int all = sbx_procs_take_report(vm, count);
	report_refused(vm, count, all, res, 0);
	report_refused(vm, count, all, res, 1);
	return b;
}

void sbx_report_refused_so_far(struct sbx_vm *vm)
{
	struct sbx_result res;
	memset(&res, 0, sizeof(res));
	uint32_t count[SBX_MAX_SYSCALL];
	struct sbx_bootinfo *b = say_refused(vm, &res, count);
	if (b)
		memset((void *)b->nosys_count, 0, sizeof(b->nosys_count));
}

/* The refused calls, then the paths looked for in vain, the other processes' among them. */
static void report_missing(struct sbx_vm *vm, struct sbx_result *res)
{
	uint32_t count[SBX_MAX_SYSCALL];
	const struct sbx_bootinfo *b = say_refused(vm, res, count);
	int failed = vm->life.stop.status != 0 || vm->life.stop.signal != 0;
	sbx_missing_report(vm, failed && vm->proc.pid == SBX_FIRST_PID);
	/* A program that failed after memory was refused it (a compiler's 200 MiB libraries in
	 * the default 256 MiB): the likely why, and the flag. */
	uint32_t refused = b ? b->enomem : 0;
	if (failed && refused)
		sbx_logf(
		    vm,
		    "%s: %u request%s for memory (mmap, brk) refused: the sandbox has %llu MiB "
		    "of guest RAM; give it more with --mem",
		    vm->cfg.name ? vm->cfg.name : vm->cfg.prog, refused, refused == 1 ? "" : "s",
		    (unsigned long long)(vm->proc.mem.size >> 20));
	sbx_procs_leave_report(vm, count);
}

/* Measured before teardown. Guest RAM is a shared memfd mapping, so it shows as RssShmem. */
static void measure_rss(struct sbx_result *res)
{
	long rss = 0, shmem = 0;
	char line[256];
	FILE *st = fopen("/proc/self/status", "r");
	while (st && fgets(line, sizeof(line), st)) {
		sscanf(line, "VmRSS: %ld", &rss);
		sscanf(line, "RssShmem: %ld", &shmem);
	}
	if (st)
		fclose(st);
	res->stats.monitor_rss_kib = (uint64_t)(rss - shmem);
	res->stats.guest_rss_kib = (uint64_t)shmem;
}

/* Before the guest's first instruction: the monitor confines itself, and before it starts its
 * other threads, which inherit the filter and the Landlock domain, so that nothing has to be
 * synchronised across threads (which costs ~0.5 ms). Once: a second run after a reset is
 * already confined (a filter cannot be removed). What the run reads of the host is read now (a
 * restore named its program late). */
static void start(struct sbx_vm *vm)
{
	char err[256];
	sbx_core_enter(vm);
	if (!vm->life.confined)
		sbx_host_facts(vm);
	if (!vm->cfg.no_confine && !vm->life.confined && sbx_confine(vm, err, sizeof(err)) < 0)
		sbx_vm_kill(vm, SBX_END_ERROR, SBX_STATUS_ERROR, 0, "%s", err);
	vm->life.confined = 1;
	if (sbx_ring_start(vm, err, sizeof(err)) < 0)
		sbx_log(vm, 1, "%s; serving the ring from doorbells only", err);
	if (sbx_limits_start(vm) < 0)
		sbx_vm_kill(vm, SBX_END_ERROR, SBX_STATUS_ERROR, 0,
			    "cannot start the thread that enforces the time limits");
}

/* The program died of sig with the fault f told: reported as a crash. */
static void crash(struct sbx_vm *vm, int sig, const struct sbx_fault *f)
{
	vm->life.stop.signal = sig;
	vm->life.stop.status = 128 + sig;
	sbx_report(vm, f);
}

/* A fault's handler could not run (no room for its frame): reported as the fault, but, as on
 * Linux, the program dies of SIGSEGV. */
static void undeliverable(struct sbx_vm *vm, const struct sbx_upcall_state *us, struct sbx_fault *f)
{
	*f = us->fault;
	if (f->signal != SIGSEGV) {
		char cause[sizeof(f->cause)];
		snprintf(cause, sizeof(cause), "%.*s; no room for the SIG%s handler's frame",
			 (int)sizeof(cause) / 2, f->cause,
			 sigabbrev_np(f->signal) ? sigabbrev_np(f->signal) : "?");
		memcpy(f->cause, cause, sizeof(cause));
		f->signal = SIGSEGV;
	}
	crash(vm, SIGSEGV, f);
}

/* How the run ended, told: a crash gets its report, a VM failure the place it happened. */
static void tell_end(struct sbx_vm *vm, struct sbx_fault *f)
{
	struct sbx_stop *st = &vm->life.stop;
	/* The thread that stopped the run: its last signal from a fault. */
	const struct sbx_upcall_state *us = sbx_upcall_state_of(vm, st->thread_index);
	int pending = us && us->pending;
	if (st->end == SBX_END_FAULT) {
		/* A fault inside the kernel while it delivered a signal: the original one counts.
		 */
		if (pending && sbx_in_kernel(f->r[SBX_R_RIP]))
			*f = us->fault;
		crash(vm, f->signal, f);
	} else if (st->end == SBX_END_SIGNAL && st->nodeliver && pending) {
		undeliverable(vm, us, f);
	} else if (st->end == SBX_END_SIGNAL && dumps_core(st->signal)) {
		sbx_fault_from_syscall(vm, st->signal, f);
		snprintf(f->cause, sizeof(f->cause), "%.*s", (int)sizeof(f->cause) - 1, st->reason);
		sbx_report(vm, f);
	} else if (st->end == SBX_END_VM && st->shutdown) {
		/* The guest wrecked its own descriptor tables, IST stacks or page tables: a crash
		 * of the program, reported with whatever the vCPU still shows. */
		sbx_fault_from_regs(vm, SIGSEGV,
				    "triple fault: an exception while delivering an exception (the "
				    "guest overwrote its descriptor tables, stacks or page tables)",
				    f);
		st->end = SBX_END_FAULT;
		crash(vm, SIGSEGV, f);
	} else if (st->end == SBX_END_VM) {
		struct kvm_regs regs;
		if (ioctl(vm->proc.vcpu.fd, KVM_GET_REGS, &regs) == 0) {
			size_t l = strlen(st->reason);
			snprintf(st->reason + l, sizeof(st->reason) - l, " at rip 0x%llx",
				 (unsigned long long)regs.rip);
		}
	}
}

static void fill_result(struct sbx_vm *vm, struct sbx_result *res)
{
	const struct sbx_stop *st = &vm->life.stop;
	res->end = st->end;
	res->status = st->status;
	res->signal = st->signal;
	res->reported = st->reported;
	snprintf(res->reason, sizeof(res->reason), "%s", st->reason);
	snprintf(res->dedup, sizeof(res->dedup), "%s", st->dedup);
	snprintf(res->summary, sizeof(res->summary), "%s", st->summary);
	res->stats.exits = vm->stats.exits;
	res->stats.doorbells = vm->stats.doorbells;
	res->stats.backed_kib = vm->stats.backed_kib;
	res->stats.polled = vm->stats.polled;
	res->stats.calls = vm->stats.calls;
	res->stats.patch_resumes = vm->stats.patch_resumes;
	res->stats.cpuid_sites = vm->proc.image.cpuid_patched;
	res->stats.thread_exits = atomic_load(&vm->proc.threads.exits);
	res->stats.parks = vm->call_count[SBX_CALL_PARK];
	res->stats.unparks = vm->call_count[SBX_CALL_UNPARK];
	res->stats.shootdowns = vm->call_count[SBX_CALL_TLB_SHOOTDOWN];
	sbx_procs_stats(vm, &res->stats);
	const struct sbx_bootinfo *b = sbx_gptr(vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	if (b) {
		res->stats.patched = b->patched;
		res->stats.patch_refused = b->patch_refused;
		res->stats.threads = b->threads_started;
		res->stats.threads_peak = b->threads_peak;
	}
}

int sbx_vm_run(struct sbx_vm *vm, struct sbx_result *res)
{
	sbx_procs_run_start(vm);
	start(vm);
	struct sbx_fault f;
	sbx_core_run(vm, &f);
	sbx_procs_run_over(vm); /* no other process signals its threads from here on */
	sbx_limits_stop(vm);
	sbx_ring_stop(vm);
	struct timespec r0;
	clock_gettime(CLOCK_MONOTONIC, &r0);
	tell_end(vm, &f);
	if (vm->life.stop.reported)
		res->stats.report_ms = sbx_ms_since(&r0);
	report_missing(vm, res);
	if (vm->cfg.stats)
		measure_rss(res);
	fill_result(vm, res);
	return 0;
}

int sbx_run_with(const struct sbx_config *cfg, struct sbx_result *res,
		 int (*hold)(struct sbx_vm *vm, void *ctx), void *ctx)
{
	struct sbx_vm *vm = NULL;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(res, 0, sizeof(*res));
	int r = sbx_vm_create(cfg, &vm, res->reason, sizeof(res->reason));
	if (r == 0 && hold)
		r = hold(vm, ctx);
	if (r == 0)
		r = sbx_vm_load(vm, res->reason, sizeof(res->reason));
	if (r < 0) {
		if (!res->reason[0])
			snprintf(res->reason, sizeof(res->reason), "%s", strerror(-r));
		res->end = SBX_END_ERROR;
		res->status = SBX_STATUS_ERROR;
	} else {
		double setup = sbx_ms_since(&t0);
		r = sbx_vm_run(vm, res);
		res->stats.setup_ms = setup;
		res->stats.run_ms = sbx_ms_since(&t0) - setup;
	}
	if (hold && vm)
		hold(NULL, ctx);
	sbx_vm_destroy(vm);
	return r;
}

int sbx_run(const struct sbx_config *cfg, struct sbx_result *res)
{
	return sbx_run_with(cfg, res, NULL, NULL);
}
