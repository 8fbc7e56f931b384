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

/* The sandbox's CPU time so far: this process's vCPU threads' and, in the first process, the
 * other processes'. */
static int64_t cpu_ms(struct sbx_vm *vm)
{
	int64_t ns = sbx_process_cpu_ns(vm);
	if (vm->hooks.others_cpu_ns)
		ns += vm->hooks.others_cpu_ns(vm);
	return ns / SBX_NS_PER_MS;
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
			 * KVM_RUN): vCPU 0's and every thread's, and the other processes'. */
			int64_t used = cpu_ms(vm) - vm->limits->cpu_base_ms;
			if (used >= (int64_t)l->cpu_ms) {
				sbx_vm_kill(vm, SBX_END_LIMIT, SBX_STATUS_LIMIT_CPU, 0,
					    "CPU time limit reached: --cpu-time %llu ms%s",
					    (unsigned long long)l->cpu_ms,
					    vm->hooks.others_cpu_ns && vm->hooks.others_cpu_ns(vm)
						? " (all processes together)"
						: "");
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
	/* The first process's watchdog keeps the time of them all: a process it started ends
	 * with it. */
	if ((!l->wall_ms && !l->cpu_ms) || vm->limits->first)
		return 0;
	vm->proc.vcpu.clock_set = pthread_getcpuclockid(pthread_self(), &vm->proc.vcpu.clock) == 0;
	/* From this run's start: not the restore's work, nor earlier runs before a reset. */
	vm->limits->cpu_base_ms = vm->proc.vcpu.clock_set ? cpu_ms(vm) : 0;
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
 * apart, each under the same limit); the first process's, which count for all. */
static uint64_t *counter_of(struct sbx_vm *vm, const struct sbx_handle *h)
{
	struct sbx_limits *c = vm->limits->tree ? vm->limits->tree : vm->limits;
	if (h->gpath)
		return &c->write_bytes;
	if (vm->cfg.output_stdout_only && h->stdio == 2)
		return &c->err_bytes;
	return &c->out_bytes;
}

static uint64_t limit_of(struct sbx_vm *vm, const struct sbx_handle *h)
{
	const struct policy_limits *l = &vm->cfg.policy->lim;
	return h->gpath == NULL ? l->max_output : l->max_write;
}

uint64_t sbx_limit_write(struct sbx_vm *vm, const struct sbx_handle *h, uint64_t len)
{
	uint64_t lim = limit_of(vm, h), *c = counter_of(vm, h);
	vm->limits->reserved = 0;
	if (!lim)
		return len;
	/* Other processes write at the same time: what this write may add is taken from the
	 * budget before it happens, and what it did not write is given back after. */
	uint64_t used = __atomic_load_n(c, __ATOMIC_RELAXED), allow;
	do {
		uint64_t left = used < lim ? lim - used : 0;
		allow = len < left ? len : left;
	} while (!__atomic_compare_exchange_n(c, &used, used + allow, 0, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	vm->limits->reserved = allow;
	if (allow == len)
		return len;
	/* The allowed part is written first (ending the run now could interrupt that write);
	 * sbx_limit_account then ends the run, naming the limit. */
	vm->limits->hit = h->gpath == NULL ? SBX_STATUS_LIMIT_OUTPUT : SBX_STATUS_LIMIT_WRITE;
	vm->limits->value = lim;
	vm->limits->on_stderr = vm->cfg.output_stdout_only && h->gpath == NULL && h->stdio == 2;
	if (allow == 0)
		sbx_limit_account(vm, h, 0);
	return allow;
}

void sbx_limit_account(struct sbx_vm *vm, const struct sbx_handle *h, int64_t written)
{
	uint64_t done = written > 0 ? (uint64_t)written : 0, *c = counter_of(vm, h);
	if (!limit_of(vm, h))
		__atomic_add_fetch(c, done, __ATOMIC_RELAXED);
	else if (done < vm->limits->reserved)
		__atomic_sub_fetch(c, vm->limits->reserved - done, __ATOMIC_RELAXED);
	vm->limits->reserved = 0;
	if (!vm->limits->hit)
		return;
	int out = vm->limits->hit == SBX_STATUS_LIMIT_OUTPUT;
	char why[160];
	snprintf(why, sizeof(why), "%s limit reached: %s %llu bytes%s",
		 out ? "output" : "file write", out ? "--max-output" : "--max-write",
		 (unsigned long long)vm->limits->value,
		 out && vm->limits->on_stderr ? " on stderr" : "");
	/* The limit is the sandbox's: its first process ends, and the others with it; but for
	 * a repeated run's (serve, fuzz), which may be parked between runs: its run's children
	 * end with the run. */
	if (vm->limits->first && !vm->limits->first->exec)
		sbx_vm_kill(vm->limits->first, SBX_END_LIMIT, vm->limits->hit, 0,
			    "%s (all processes together; process %u wrote last)", why,
			    vm->proc.pid);
	sbx_vm_kill(vm, SBX_END_LIMIT, vm->limits->hit, 0, "%s", why);
}
