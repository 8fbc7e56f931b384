/* The run loop: KVM_RUN, EINTR, and one exit handler that dispatches through a table. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "vm.h"

/* The doorbell (an `out` at CPL0, an MMIO write at CPL3): serve the ring; a request for more
 * extended state rides on it, since only this thread may change the vCPU. */
static enum sbx_action doorbell(struct sbx_vm *vm)
{
	sbx_ring_doorbell(vm);
	sbx_xstate_doorbell(vm);
	if (vm->hooks.doorbell)
		return vm->hooks.doorbell(vm);
	return atomic_load(&vm->life.stopping) ? SBX_ACT_STOP : SBX_ACT_CONTINUE;
}

/* vCPU 0 stopped at a CPU fault (the kernel's exception entry, at its port write): the run stops
 * for it, or, when another thread's fault stopped it first, it is reported again once that one is
 * dealt with. */
static void fault_stop(struct sbx_vm *vm, int vector)
{
	struct sbx_stop_who who = {.fd = vm->proc.vcpu.fd, .vector = vector};
	if (!sbx_vm_kill_by(vm, &who, SBX_END_FAULT, 0, 0, "CPU exception %d", vector))
		vm->proc.vcpu.refault = vector + 1;
}

static enum sbx_action exit_io(struct sbx_vm *vm, struct kvm_run *run)
{
	uint16_t port = run->io.port;
	if (run->io.direction == KVM_EXIT_IO_OUT && run->io.size == 1 && run->io.count == 1) {
		if (port == SBX_PORT_DOORBELL)
			return doorbell(vm);
		if (port >= SBX_PORT_FAULT_BASE && port < SBX_PORT_FAULT_BASE + 32) {
			fault_stop(vm, (int)port - SBX_PORT_FAULT_BASE);
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
	vm->life.stop.shutdown = 1;
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
		    sub == KVM_INTERNAL_ERROR_EMULATION && vm->proc.vcpu.cpl == 0 &&
			    vm->proc.kvm.is_pvm
			? " (PVM emulates CPL0 code and cannot run SSE or AVX there: use --cpl 3)"
			: "");
	return SBX_ACT_STOP;
}

static enum sbx_action exit_intr(struct sbx_vm *vm, struct kvm_run *run)
{
	(void)run;
	return atomic_load(&vm->life.stopping) ? SBX_ACT_STOP : SBX_ACT_CONTINUE;
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

void sbx_core_enter(struct sbx_vm *vm)
{
	sbx_kick_install();
	vm->proc.vcpu.thread = pthread_self();
	vm->proc.vcpu.thread_set = 1;
}

void sbx_core_run(struct sbx_vm *vm, struct sbx_fault *f)
{
	pthread_mutex_lock(&vm->life.pause_lock);
	/* A stop signal sent to a new process before its run began holds (sandbox/procs.c);
	 * a reset clears it for a repeated run. */
	atomic_fetch_and(&vm->life.pause_req, SBX_PAUSE_JOB);
	vm->life.pause_hold = 0;
	vm->life.running = 1;
	pthread_mutex_unlock(&vm->life.pause_lock);
	if (vm->hooks.run_start) {
		char err[256];
		if (vm->hooks.run_start(vm, err, sizeof(err)) < 0)
			sbx_log(vm, 0, "%s", err);
	}
	clock_gettime(CLOCK_REALTIME, &vm->life.first_run_at);
	/* A restored snapshot's threads, before a migration's destination says it runs. */
	char terr[256];
	if (sbx_threads_launch(vm, terr, sizeof(terr)) < 0)
		sbx_vm_kill(vm, SBX_END_VM, SBX_STATUS_ERROR, 0, "%s", terr);
	if (vm->hooks.first_run) {
		/* Called even when setup already ended the run: it must say so to its peer. */
		vm->hooks.first_run(vm);
		vm->hooks.first_run = NULL;
	}
	for (;;) {
		while (!atomic_load(&vm->life.stopping)) {
			if (atomic_load(&vm->life.pause_req)) {
				sbx_pause_point(vm);
				continue;
			}
			if (__builtin_expect(atomic_load(&vm->proc.threads.repin0), 0))
				sbx_threads_repin0(vm);
			if (__builtin_expect(vm->proc.vcpu.refault != 0, 0)) {
				int v = vm->proc.vcpu.refault - 1;
				vm->proc.vcpu.refault = 0;
				fault_stop(vm, v);
				continue;
			}
			if (sbx_tlb_enter(vm, vm->proc.vcpu.fd, &vm->proc.vcpu.tlb) < 0)
				continue;
			sbx_vcpu_async(vm, &vm->proc.vcpu.tlb, 0, vm->proc.vcpu.fd,
				       sbx_vcpu0_root(vm));
			int r = ioctl(vm->proc.vcpu.fd, KVM_RUN, 0);
			sbx_tlb_leave(vm, &vm->proc.vcpu.tlb);
			if (r < 0) {
				if (errno == EINTR || errno == EAGAIN) {
					vm->proc.vcpu.run->immediate_exit =
					    atomic_load(&vm->life.stopping);
					continue;
				}
				/* KVM could not fault in a host page: under PVM a plain EFAULT, no
				 * address. A shared window's page past its file's end is SIGBUS. */
				if (errno == EFAULT &&
				    sbx_shmap_bus(vm, &vm->proc.shmaps.bus_addr)) {
					struct sbx_stop_who who = {.fd = vm->proc.vcpu.fd,
								   .vector = SBX_VEC_SHMAP_BUS};
					sbx_vm_kill_by(vm, &who, SBX_END_FAULT, 0, 0,
						       "access past the end of a mapped file");
					break;
				}
				sbx_vm_kill(vm, SBX_END_VM, SBX_STATUS_ERROR, 0, "KVM_RUN: %s",
					    strerror(errno));
				break;
			}
			vm->stats.exits++;
			vm->proc.vcpu.exit_count[vm->proc.vcpu.run->exit_reason & 63]++;
			if (sbx_handle_exit(vm, vm->proc.vcpu.run) == SBX_ACT_STOP)
				break;
		}
		/* A fault whose signal the program handles goes back to it, and the run goes on. */
		sbx_stop_settle(vm);
		if (vm->life.stop.end != SBX_END_FAULT)
			break;
		/* Any thread's: the faulting vCPU waits in its loop while this one sets it to
		 * deliver the signal (sbx_fault_fd). */
		sbx_fault_from_cpu(vm, vm->life.stop.vector, f);
		if (!sbx_patch_resume(vm, f) && !sbx_signal_upcall(vm, f))
			break;
		if (sbx_stop_take_late(vm))
			continue;
		memset(&vm->life.stop, 0, sizeof(vm->life.stop));
		vm->life.stop.vector = -1;
		atomic_store(&vm->life.stopping, 0);
		sbx_wake_sleepers(vm); /* the threads' vCPUs wait for this */
	}
	sbx_threads_end(vm);
	sbx_vcpu_async_end(&vm->proc.vcpu.tlb);
	pthread_mutex_lock(&vm->life.pause_lock);
	vm->life.running = 0;
	pthread_cond_broadcast(&vm->life.pause_cond);
	pthread_mutex_unlock(&vm->life.pause_lock);
	/* A snapshot or migration in progress finishes (or fails) before anything goes away. */
	if (vm->hooks.run_end)
		vm->hooks.run_end(vm);
}
