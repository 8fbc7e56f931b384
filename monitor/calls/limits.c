/* Enforcing the policy's limits. Time limits have a watchdog thread that ends the run with the
 * kick (KVM_RUN returns at once, blocking host calls are interrupted); byte limits are checked
 * on every write before it happens, so a write never goes past a limit and the run then ends
 * with the limit named. */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "calls.h"

static int64_t clock_ms(clockid_t c)
{
	return sbx_now_ns(c) / SBX_NS_PER_MS;
}

static void *watchdog_main(void *arg)
{
	struct sbx_vm *vm = arg;
	const struct policy_limits *l = &vm->cfg.policy->lim;
	int64_t start = clock_ms(CLOCK_MONOTONIC);
	/* Until the run is over, not only until it stops: a stop for a CPU fault that goes back
	 * to the program (a signal handler, a jump into a patched syscall site) lets it run on,
	 * and a kill made meanwhile lost to that stop; so the watchdog waits while stopped and
	 * kills again when the run goes on. */
	while (!atomic_load(&vm->limits->watchdog_quit)) {
		if (atomic_load(&vm->life.stopping)) {
			struct timespec rel = {.tv_sec = 0, .tv_nsec = 10 * 1000000};
			syscall(SYS_futex, &vm->life.stopping, FUTEX_WAIT_PRIVATE, 1, &rel, NULL,
				0);
			continue;
		}
		int64_t now = clock_ms(CLOCK_MONOTONIC), wait = 50;
		if (l->wall_ms) {
			int64_t left = start + (int64_t)l->wall_ms - now;
			if (left <= 0) {
				sbx_vm_kill(vm, SBX_END_LIMIT, SBX_STATUS_LIMIT_TIME, 0,
					    "wall-clock limit reached: --timeout %llu ms",
					    (unsigned long long)l->wall_ms);
				continue;
			}
			if (left < wait)
				wait = left;
		}
		if (l->cpu_ms && vm->proc.vcpu.clock_set) {
			/* The guest's CPU time is its vCPU threads' (the guest runs inside
			 * KVM_RUN): vCPU 0's and every thread's. */
			int64_t used = clock_ms(vm->proc.vcpu.clock) +
				       sbx_threads_cpu_ns(vm) / SBX_NS_PER_MS -
				       vm->limits->cpu_base_ms;
			if (used >= (int64_t)l->cpu_ms) {
				sbx_vm_kill(vm, SBX_END_LIMIT, SBX_STATUS_LIMIT_CPU, 0,
					    "CPU time limit reached: --cpu-time %llu ms",
					    (unsigned long long)l->cpu_ms);
				continue;
			}
			if ((int64_t)l->cpu_ms - used < wait)
				wait = (int64_t)l->cpu_ms - used;
		}
		struct timespec rel = {.tv_sec = wait / 1000, .tv_nsec = (wait % 1000) * 1000000};
		syscall(SYS_futex, &vm->life.stopping, FUTEX_WAIT_PRIVATE, 0, &rel, NULL, 0);
	}
	return NULL;
}

int sbx_limits_start(struct sbx_vm *vm)
{
	const struct policy_limits *l = &vm->cfg.policy->lim;
	if (!l->wall_ms && !l->cpu_ms)
		return 0;
	vm->proc.vcpu.clock_set = pthread_getcpuclockid(pthread_self(), &vm->proc.vcpu.clock) == 0;
	/* From this run's start: not the restore's work, nor earlier runs before a reset. */
	vm->limits->cpu_base_ms = vm->proc.vcpu.clock_set ? clock_ms(vm->proc.vcpu.clock) : 0;
	atomic_store(&vm->limits->watchdog_quit, 0);
	int e = pthread_create(&vm->limits->watchdog, NULL, watchdog_main, vm);
	if (e)
		return -e;
	vm->limits->watchdog_started = 1;
	return 0;
}

void sbx_limits_stop(struct sbx_vm *vm)
{
	if (!vm->limits->watchdog_started)
		return;
	atomic_store(&vm->limits->watchdog_quit, 1);
	syscall(SYS_futex, &vm->life.stopping, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
	pthread_join(vm->limits->watchdog, NULL);
	vm->limits->watchdog_started = 0;
}

/* The byte count a write to h adds to: the files' for --max-write, the output's for
 * --max-output (stdout and stderr together, or with output_stdout_only stdout's and stderr's
 * apart, each under the same limit). */
static uint64_t *counter_of(struct sbx_vm *vm, const struct sbx_handle *h)
{
	if (h->gpath)
		return &vm->limits->write_bytes;
	if (vm->cfg.output_stdout_only && h->stdio == 2)
		return &vm->limits->err_bytes;
	return &vm->limits->out_bytes;
}

uint64_t sbx_limit_write(struct sbx_vm *vm, const struct sbx_handle *h, uint64_t len)
{
	const struct policy_limits *l = &vm->cfg.policy->lim;
	int stdio = h->gpath == NULL;
	uint64_t lim = stdio ? l->max_output : l->max_write;
	uint64_t used = *counter_of(vm, h);
	if (!lim)
		return len;
	uint64_t left = used < lim ? lim - used : 0;
	if (len <= left)
		return len;
	/* The allowed part is written first (ending the run now could interrupt that write);
	 * sbx_limit_account then ends the run, naming the limit. */
	vm->limits->hit = stdio ? SBX_STATUS_LIMIT_OUTPUT : SBX_STATUS_LIMIT_WRITE;
	vm->limits->value = lim;
	vm->limits->on_stderr = counter_of(vm, h) == &vm->limits->err_bytes;
	if (left == 0)
		sbx_limit_account(vm, h, 0);
	return left;
}

void sbx_limit_account(struct sbx_vm *vm, const struct sbx_handle *h, int64_t written)
{
	if (written > 0)
		*counter_of(vm, h) += (uint64_t)written;
	if (vm->limits->hit) {
		int out = vm->limits->hit == SBX_STATUS_LIMIT_OUTPUT;
		sbx_vm_kill(vm, SBX_END_LIMIT, vm->limits->hit, 0,
			    "%s limit reached: %s %llu bytes%s", out ? "output" : "file write",
			    out ? "--max-output" : "--max-write",
			    (unsigned long long)vm->limits->value,
			    out && vm->limits->on_stderr ? " on stderr" : "");
	}
}
