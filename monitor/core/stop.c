/* Ending a run: from the vCPU thread, another thread of the monitor, or a signal handler; and
 * the means to wake the threads that wait: the futex word a SLEEP waits on, and the kick
 * signal that interrupts KVM_RUN and blocking host calls. */
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vm.h"

static void kick_handler(int sig)
{
	(void)sig;
}

static void kick_handler_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler; /* no SA_RESTART: blocking calls return EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(sbx_kick_signal(), &sa, NULL);
}

void sbx_kick_install(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, kick_handler_install);
}

int sbx_kick_signal(void)
{
	return SIGRTMIN;
}

void sbx_wake_sleepers(struct sbx_vm *vm)
{
	/* A raw syscall: async-signal-safe (sbx_vm_interrupt). */
	syscall(SYS_futex, &vm->life.stopping, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

static int vkill(struct sbx_vm *vm, const struct sbx_stop_who *who, enum sbx_end end, int status,
		 int sig, const char *fmt, va_list ap)
{
	/* The first reason wins: later ones are consequences, but for an end that comes while
	 * a fault stops the run for the program's handler: kept for when the run goes on. */
	int expected = 0;
	if (!atomic_compare_exchange_strong(&vm->life.stopping, &expected, 1)) {
		if (end == SBX_END_FAULT)
			return 0;
		pthread_mutex_lock(&vm->life.late_lock);
		if (!vm->life.late_set) {
			vm->life.late_set = 1;
			vm->life.late =
			    (struct sbx_stop){.end = end, .status = status, .signal = sig};
			vm->life.late.vector = -1;
			vm->life.late_has_who = who != NULL;
			if (who)
				vm->life.late_who = *who;
			vsnprintf(vm->life.late.reason, sizeof(vm->life.late.reason), fmt, ap);
		}
		pthread_mutex_unlock(&vm->life.late_lock);
		return 0;
	}
	vm->life.stop.end = end;
	vm->life.stop.status = status;
	vm->life.stop.signal = sig;
	/* Only the winner says which thread: a report reads that thread's vCPU. */
	if (who) {
		vm->life.stop.thread_fd = who->fd;
		vm->life.stop.thread_cr3 = who->cr3;
		vm->life.stop.thread_index = who->index;
		if (who->vector >= 0)
			vm->life.stop.vector = who->vector;
	}
	vsnprintf(vm->life.stop.reason, sizeof(vm->life.stop.reason), fmt, ap);
	atomic_store_explicit(&vm->life.stop.ready, 1, memory_order_release);
	/* Wake whatever waits: a SLEEP, and a vCPU still in KVM_RUN (a kill decided on the
	 * polling thread would otherwise wait for the guest's next exit, which may never come). */
	sbx_wake_sleepers(vm);
	if (vm->proc.vcpu.thread_set && !pthread_equal(pthread_self(), vm->proc.vcpu.thread)) {
		if (vm->proc.vcpu.run)
			vm->proc.vcpu.run->immediate_exit = 1;
		pthread_kill(vm->proc.vcpu.thread, sbx_kick_signal());
	}
	sbx_threads_kick(vm);
	/* A paused vCPU thread waits for resume or for this. */
	pthread_mutex_lock(&vm->life.pause_lock);
	pthread_cond_broadcast(&vm->life.pause_cond);
	pthread_mutex_unlock(&vm->life.pause_lock);
	return 1;
}

int sbx_stop_for_good(struct sbx_vm *vm)
{
	if (!atomic_load(&vm->life.stopping))
		return 0;
	sbx_stop_settle(vm);
	if (vm->life.stop.end != SBX_END_FAULT)
		return 1;
	pthread_mutex_lock(&vm->life.late_lock);
	int late = vm->life.late_set;
	pthread_mutex_unlock(&vm->life.late_lock);
	return late;
}

void sbx_stop_settle(struct sbx_vm *vm)
{
	/* The writer is between its CAS and its last field: a few stores away. */
	while (atomic_load(&vm->life.stopping) &&
	       !atomic_load_explicit(&vm->life.stop.ready, memory_order_acquire))
		__builtin_ia32_pause();
}

int sbx_stop_take_late(struct sbx_vm *vm)
{
	int sig = atomic_exchange(&vm->life.late_sig, 0);
	pthread_mutex_lock(&vm->life.late_lock);
	struct sbx_stop l = vm->life.late;
	struct sbx_stop_who w = vm->life.late_who;
	int set = vm->life.late_set, has_who = vm->life.late_has_who;
	vm->life.late_set = 0;
	pthread_mutex_unlock(&vm->life.late_lock);
	if (!set && !sig)
		return 0;
	memset(&vm->life.stop, 0, sizeof(vm->life.stop));
	vm->life.stop.vector = -1;
	atomic_store(&vm->life.stopping, 0);
	if (sig)
		sbx_vm_interrupt(vm, sig);
	else
		sbx_vm_kill_by(vm, has_who ? &w : NULL, l.end, l.status, l.signal, "%s", l.reason);
	return 1;
}

void sbx_vm_kill(struct sbx_vm *vm, enum sbx_end end, int status, int sig, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vkill(vm, NULL, end, status, sig, fmt, ap);
	va_end(ap);
}

int sbx_vm_kill_by(struct sbx_vm *vm, const struct sbx_stop_who *who, enum sbx_end end, int status,
		   int sig, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int won = vkill(vm, who, end, status, sig, fmt, ap);
	va_end(ap);
	return won;
}

void sbx_vm_interrupt(struct sbx_vm *vm, int sig)
{
	/* Only what a signal handler may do: atomics, plain stores, two syscalls. */
	int expected = 0;
	if (!atomic_compare_exchange_strong(&vm->life.stopping, &expected, 1)) {
		atomic_store(&vm->life.late_sig, sig); /* sbx_stop_take_late */
		return;
	}
	vm->life.stop.end = SBX_END_KILLED;
	vm->life.stop.status = 128 + sig;
	vm->life.stop.signal = sig;
	static const char why[] = "stopped by a signal to the monitor";
	memcpy(vm->life.stop.reason, why, sizeof(why));
	atomic_store_explicit(&vm->life.stop.ready, 1, memory_order_release);
	sbx_wake_sleepers(vm);
	sbx_vcpus_kick(vm);
}

void sbx_vcpus_kick(struct sbx_vm *vm)
{
	/* immediate_exit covers a kick that lands just before KVM_RUN. */
	if (vm->proc.vcpu.run)
		vm->proc.vcpu.run->immediate_exit = 1;
	if (vm->proc.vcpu.thread_set)
		pthread_kill(vm->proc.vcpu.thread, sbx_kick_signal());
	sbx_threads_kick(vm);
}
