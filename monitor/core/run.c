/* The run loop: KVM_RUN, EINTR, and one exit handler that dispatches through a table. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "report.h"
#include "vm.h"

/* The doorbell (an `out` at CPL0, an MMIO write at CPL3): serve the ring; a request for more
 * extended state rides on it, since only this thread may change the vCPU. */
static enum sbx_action doorbell(struct sbx_vm *vm)
{
	sbx_ring_doorbell(vm);
	sbx_xstate_doorbell(vm);
	if (vm->exec)
		return sbx_exec_doorbell(vm);
	return atomic_load(&vm->stopping) ? SBX_ACT_STOP : SBX_ACT_CONTINUE;
}

static enum sbx_action exit_io(struct sbx_vm *vm, struct kvm_run *run)
{
	uint16_t port = run->io.port;
	if (run->io.direction == KVM_EXIT_IO_OUT && run->io.size == 1 && run->io.count == 1) {
		if (port == SBX_PORT_DOORBELL)
			return doorbell(vm);
		if (port >= SBX_PORT_FAULT_BASE && port < SBX_PORT_FAULT_BASE + 32) {
			vm->stop.vector = port - SBX_PORT_FAULT_BASE;
			sbx_vm_kill(vm, SBX_END_FAULT, 0, 0, "CPU exception %d", vm->stop.vector);
			return SBX_ACT_STOP;
		}
	}
	sbx_vm_kill(vm, SBX_END_VM, SBX_STATUS_ERROR, 0,
		    "stray port I/O: %s of %u byte(s) at port 0x%x",
		    run->io.direction == KVM_EXIT_IO_OUT ? "write" : "read", run->io.size, port);
	return SBX_ACT_STOP;
}

static enum sbx_action exit_mmio(struct sbx_vm *vm, struct kvm_run *run)
{
	uint64_t a = run->mmio.phys_addr;
	if (run->mmio.is_write && a >= SBX_DOORBELL_GPA && a < SBX_DOORBELL_GPA + SBX_PAGE_SIZE)
		return doorbell(vm);
	sbx_vm_kill(vm, SBX_END_VM, SBX_STATUS_ERROR, 0, "stray MMIO %s of %u byte(s) at 0x%llx",
		    run->mmio.is_write ? "write" : "read", run->mmio.len, (unsigned long long)a);
	return SBX_ACT_STOP;
}

static enum sbx_action exit_hlt(struct sbx_vm *vm, struct kvm_run *run)
{
	(void)run;
	sbx_vm_kill(vm, SBX_END_VM, SBX_STATUS_ERROR, 0, "guest executed HLT");
	return SBX_ACT_STOP;
}

static enum sbx_action exit_shutdown(struct sbx_vm *vm, struct kvm_run *run)
{
	(void)run;
	vm->stop.shutdown = 1;
	sbx_vm_kill(
	    vm, SBX_END_VM, SBX_STATUS_ERROR, 0,
	    "triple fault: the vCPU shut down (an exception while delivering an exception)");
	return SBX_ACT_STOP;
}

static enum sbx_action exit_fail_entry(struct sbx_vm *vm, struct kvm_run *run)
{
	sbx_vm_kill(vm, SBX_END_VM, SBX_STATUS_ERROR, 0, "VM entry failed: hardware reason 0x%llx",
		    (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
	return SBX_ACT_STOP;
}

static enum sbx_action exit_internal(struct sbx_vm *vm, struct kvm_run *run)
{
	static const char *const why[] = {
	    [KVM_INTERNAL_ERROR_EMULATION] = "instruction emulation failed",
	    [KVM_INTERNAL_ERROR_SIMUL_EX] = "exception while delivering an exception",
	    [KVM_INTERNAL_ERROR_DELIVERY_EV] = "event delivery failed",
	    [KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON] = "unexpected exit reason",
	};
	uint32_t sub = run->internal.suberror;
	const char *w = sub < sizeof(why) / sizeof(why[0]) && why[sub] ? why[sub] : "unknown";
	sbx_vm_kill(vm, SBX_END_VM, SBX_STATUS_ERROR, 0, "KVM internal error %u: %s%s", sub, w,
		    sub == KVM_INTERNAL_ERROR_EMULATION && vm->cpl == 0 && vm->is_pvm
			? " (PVM emulates CPL0 code and cannot run SSE or AVX there: use --cpl 3)"
			: "");
	return SBX_ACT_STOP;
}

static enum sbx_action exit_intr(struct sbx_vm *vm, struct kvm_run *run)
{
	(void)run;
	return atomic_load(&vm->stopping) ? SBX_ACT_STOP : SBX_ACT_CONTINUE;
}

typedef enum sbx_action (*sbx_exit_fn)(struct sbx_vm *vm, struct kvm_run *run);

static const sbx_exit_fn sbx_exit_table[] = {
    [KVM_EXIT_IO] = exit_io,
    [KVM_EXIT_MMIO] = exit_mmio,
    [KVM_EXIT_HLT] = exit_hlt,
    [KVM_EXIT_SHUTDOWN] = exit_shutdown,
    [KVM_EXIT_FAIL_ENTRY] = exit_fail_entry,
    [KVM_EXIT_INTERNAL_ERROR] = exit_internal,
    [KVM_EXIT_INTR] = exit_intr,
};

enum sbx_action sbx_handle_exit(struct sbx_vm *vm, struct kvm_run *run)
{
	uint32_t r = run->exit_reason;
	if (r < sizeof(sbx_exit_table) / sizeof(sbx_exit_table[0]) && sbx_exit_table[r])
		return sbx_exit_table[r](vm, run);
	sbx_vm_kill(vm, SBX_END_VM, SBX_STATUS_ERROR, 0, "unexpected KVM exit reason %u", r);
	return SBX_ACT_STOP;
}

/* The signals whose default action writes a core file on Linux get a report (abort(), a
 * raise(SIGSEGV)); the others (SIGTERM, SIGPIPE...) end the program as quietly as natively. */
static int dumps_core(int sig)
{
	return sig == SIGQUIT || sig == SIGILL || sig == SIGTRAP || sig == SIGABRT ||
	       sig == SIGBUS || sig == SIGFPE || sig == SIGSEGV || sig == SIGXCPU ||
	       sig == SIGXFSZ || sig == SIGSYS;
}

static void report_nosys(struct sbx_vm *vm, struct sbx_result *res)
{
	const struct sbx_bootinfo *b = sbx_gptr(vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	char line[512];
	size_t o = 0;
	line[0] = 0;
	for (int i = 0; i < SBX_MAX_SYSCALL; i++) {
		uint32_t n = b->nosys_count[i];
		if (!n)
			continue;
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
	if (o)
		fprintf(vm->cfg.log,
			"sandbox-run: %s: unimplemented syscalls called (returned ENOSYS): %s\n",
			vm->cfg.name ? vm->cfg.name : vm->cfg.prog, line);
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

static void sbx_kick_handler(int sig)
{
	(void)sig;
}

static void sbx_kick_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sbx_kick_handler; /* no SA_RESTART: blocking calls return EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(sbx_kick_signal(), &sa, NULL);
}

int sbx_kick_signal(void)
{
	return SIGRTMIN;
}

int sbx_vm_run(struct sbx_vm *vm, struct sbx_result *res)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	char err[256];
	pthread_once(&once, sbx_kick_install);
	vm->vcpu_thread = pthread_self();
	vm->vcpu_thread_set = 1;
	/* The monitor confines itself before the guest's first instruction, and before it starts
	 * its other threads: they inherit the filter and the Landlock domain, so nothing has to
	 * be synchronised across threads (which costs ~0.5 ms). */
	if (vm->cfg.control_path && vm->control_fd < 0 &&
	    sbx_control_start(vm, err, sizeof(err)) < 0)
		sbx_vm_kill(vm, SBX_END_ERROR, SBX_STATUS_ERROR, 0, "%s", err);
	/* Once: a second run after a reset is already confined (a filter cannot be removed).
	 * What the run reads of the host is read now (a restore named its program late). */
	if (!vm->confined)
		sbx_host_facts(vm);
	if (!vm->cfg.no_confine && !vm->confined && sbx_confine(vm, err, sizeof(err)) < 0)
		sbx_vm_kill(vm, SBX_END_ERROR, SBX_STATUS_ERROR, 0, "%s", err);
	vm->confined = 1;
	if (sbx_ring_start(vm, err, sizeof(err)) < 0)
		sbx_log(vm, 1, "%s; serving the ring from doorbells only", err);
	if (sbx_limits_start(vm) < 0)
		sbx_vm_kill(vm, SBX_END_ERROR, SBX_STATUS_ERROR, 0,
			    "cannot start the thread that enforces the time limits");

	pthread_mutex_lock(&vm->pause_lock);
	atomic_store(&vm->pause_req, 0);
	vm->pause_hold = 0;
	vm->running = 1;
	pthread_mutex_unlock(&vm->pause_lock);
	if (vm->control_fd >= 0 && !vm->control_started &&
	    sbx_control_run(vm, err, sizeof(err)) < 0)
		sbx_log(vm, 0, "%s", err);
	clock_gettime(CLOCK_REALTIME, &vm->first_run_at);
	if (vm->on_first_run) {
		/* Called even when setup already ended the run: it must say so to its peer. */
		vm->on_first_run(vm);
		vm->on_first_run = NULL;
	}

	struct sbx_fault f;
	for (;;) {
		while (!atomic_load(&vm->stopping)) {
			if (atomic_load(&vm->pause_req)) {
				sbx_pause_point(vm);
				continue;
			}
			if (ioctl(vm->vcpu_fd, KVM_RUN, 0) < 0) {
				if (errno == EINTR || errno == EAGAIN) {
					vm->run->immediate_exit = atomic_load(&vm->stopping);
					continue;
				}
				sbx_vm_kill(vm, SBX_END_VM, SBX_STATUS_ERROR, 0, "KVM_RUN: %s",
					    strerror(errno));
				break;
			}
			vm->stats.exits++;
			vm->exit_count[vm->run->exit_reason & 63]++;
			if (sbx_handle_exit(vm, vm->run) == SBX_ACT_STOP)
				break;
		}
		/* A fault whose signal the program handles goes back to it, and the run goes on. */
		if (vm->stop.end != SBX_END_FAULT)
			break;
		sbx_fault_from_cpu(vm, vm->stop.vector, &f);
		if (!sbx_signal_upcall(vm, &f))
			break;
		memset(&vm->stop, 0, sizeof(vm->stop));
		vm->stop.vector = -1;
		atomic_store(&vm->stopping, 0);
	}
	pthread_mutex_lock(&vm->pause_lock);
	vm->running = 0;
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
	/* A snapshot or migration in progress finishes (or fails) before anything goes away. */
	sbx_control_stop(vm);
	sbx_limits_stop(vm);
	sbx_ring_stop(vm);
	struct timespec r0, r1;
	clock_gettime(CLOCK_MONOTONIC, &r0);
	if (vm->stop.end == SBX_END_FAULT) {
		/* A fault inside the kernel while it delivered a signal: the original one counts.
		 */
		if (vm->upcall_pending && sbx_in_kernel(f.r[SBX_R_RIP]))
			f = vm->upcall_fault;
		vm->stop.signal = f.signal;
		vm->stop.status = 128 + f.signal;
		sbx_report(vm, &f);
	} else if (vm->stop.end == SBX_END_SIGNAL && vm->stop.nodeliver && vm->upcall_pending) {
		/* The fault's handler could not run (no room for its frame): reported as the fault,
		 * but, as on Linux, the program dies of SIGSEGV. */
		f = vm->upcall_fault;
		if (f.signal != SIGSEGV) {
			char cause[sizeof(f.cause)];
			snprintf(cause, sizeof(cause),
				 "%.*s; no room for the SIG%s handler's frame",
				 (int)sizeof(cause) / 2, f.cause,
				 sigabbrev_np(f.signal) ? sigabbrev_np(f.signal) : "?");
			memcpy(f.cause, cause, sizeof(cause));
			f.signal = SIGSEGV;
		}
		vm->stop.signal = SIGSEGV;
		vm->stop.status = 128 + SIGSEGV;
		sbx_report(vm, &f);
	} else if (vm->stop.end == SBX_END_SIGNAL && dumps_core(vm->stop.signal)) {
		sbx_fault_from_syscall(vm, vm->stop.signal, &f);
		snprintf(f.cause, sizeof(f.cause), "%.*s", (int)sizeof(f.cause) - 1,
			 vm->stop.reason);
		sbx_report(vm, &f);
	} else if (vm->stop.end == SBX_END_VM && vm->stop.shutdown) {
		/* The guest wrecked its own descriptor tables, IST stacks or page tables: a crash
		 * of the program, reported with whatever the vCPU still shows. */
		sbx_fault_from_regs(vm, SIGSEGV,
				    "triple fault: an exception while delivering an exception (the "
				    "guest overwrote its descriptor tables, stacks or page tables)",
				    &f);
		vm->stop.signal = SIGSEGV;
		vm->stop.status = 128 + SIGSEGV;
		vm->stop.end = SBX_END_FAULT;
		sbx_report(vm, &f);
	} else if (vm->stop.end == SBX_END_VM) {
		struct kvm_regs regs;
		if (ioctl(vm->vcpu_fd, KVM_GET_REGS, &regs) == 0) {
			size_t l = strlen(vm->stop.reason);
			snprintf(vm->stop.reason + l, sizeof(vm->stop.reason) - l, " at rip 0x%llx",
				 (unsigned long long)regs.rip);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &r1);
	if (vm->stop.reported)
		res->stats.report_ms =
		    (double)(r1.tv_sec - r0.tv_sec) * 1e3 + (double)(r1.tv_nsec - r0.tv_nsec) / 1e6;
	report_nosys(vm, res);
	if (vm->cfg.stats)
		measure_rss(res);
	res->end = vm->stop.end;
	res->status = vm->stop.status;
	res->signal = vm->stop.signal;
	res->reported = vm->stop.reported;
	snprintf(res->reason, sizeof(res->reason), "%s", vm->stop.reason);
	snprintf(res->dedup, sizeof(res->dedup), "%s", vm->stop.dedup);
	snprintf(res->summary, sizeof(res->summary), "%s", vm->stop.summary);
	res->stats.exits = vm->stats.exits;
	res->stats.doorbells = vm->stats.doorbells;
	res->stats.polled = vm->stats.polled;
	res->stats.calls = vm->stats.calls;
	return 0;
}
