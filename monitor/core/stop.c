/* Ending a run: from the vCPU thread, another thread of the monitor, or a signal handler. */
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

void sbx_vm_kill(struct sbx_vm *vm, enum sbx_end end, int status, int sig, const char *fmt, ...)
{
	/* The first reason wins: later ones are consequences. */
	int expected = 0;
	if (!atomic_compare_exchange_strong(&vm->life.stopping, &expected, 1))
		return;
	vm->life.stop.end = end;
	vm->life.stop.status = status;
	vm->life.stop.signal = sig;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(vm->life.stop.reason, sizeof(vm->life.stop.reason), fmt, ap);
	va_end(ap);
	/* Wake whatever waits: a SLEEP, and a vCPU still in KVM_RUN (a kill decided on the
	 * polling thread would otherwise wait for the guest's next exit, which may never come). */
	syscall(SYS_futex, &vm->life.stopping, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
	if (vm->proc.vcpu.thread_set && !pthread_equal(pthread_self(), vm->proc.vcpu.thread)) {
		if (vm->proc.vcpu.run)
			vm->proc.vcpu.run->immediate_exit = 1;
		pthread_kill(vm->proc.vcpu.thread, sbx_kick_signal());
	}
	/* A paused vCPU thread waits for resume or for this. */
	pthread_mutex_lock(&vm->life.pause_lock);
	pthread_cond_broadcast(&vm->life.pause_cond);
	pthread_mutex_unlock(&vm->life.pause_lock);
}

void sbx_vm_interrupt(struct sbx_vm *vm, int sig)
{
	/* Only what a signal handler may do: atomics, plain stores, two syscalls. */
	int expected = 0;
	if (!atomic_compare_exchange_strong(&vm->life.stopping, &expected, 1))
		return;
	vm->life.stop.end = SBX_END_KILLED;
	vm->life.stop.status = 128 + sig;
	vm->life.stop.signal = sig;
	static const char why[] = "stopped by a signal to the monitor";
	memcpy(vm->life.stop.reason, why, sizeof(why));
	syscall(SYS_futex, &vm->life.stopping, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
	if (vm->proc.vcpu.run)
		vm->proc.vcpu.run->immediate_exit = 1;
	if (vm->proc.vcpu.thread_set)
		pthread_kill(vm->proc.vcpu.thread, sbx_kick_signal());
}
