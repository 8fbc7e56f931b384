/* The host CPUs a sandbox's threads run on: the vCPU on one, the poller on another. */
#include <sched.h>

#include "vm.h"

/* The host CPUs this thread may run on: how many, and the first two. */
static int allowed_cpus(int *first, int *second)
{
	cpu_set_t set;
	int n = 0;
	*first = *second = -1;
	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return 0;
	for (int i = 0; i < CPU_SETSIZE; i++) {
		if (!CPU_ISSET(i, &set))
			continue;
		n++;
		if (*first < 0)
			*first = i;
		else if (*second < 0)
			*second = i;
	}
	return n;
}

int sbx_cpu_count(void)
{
	int first, second;
	return allowed_cpus(&first, &second);
}

void sbx_pin_cpu(int cpu)
{
	if (cpu < 0)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

int sbx_cpus_but_this(cpu_set_t *set)
{
	int cpu = sched_getcpu();
	if (cpu < 0 || sched_getaffinity(0, sizeof(*set), set) < 0 || !CPU_ISSET(cpu, set))
		return -1;
	CPU_CLR(cpu, set);
	return CPU_COUNT(set) > 0 ? 0 : -1;
}

/* On two or more CPUs the poller and the vCPU get one each; on one, nobody spins. */
void sbx_vm_choose_cpus(struct sbx_vm *vm)
{
	int first, second, n = allowed_cpus(&first, &second);
	vm->proc.vcpu.cpu = vm->proc.ring.cpu = -1;
	switch (vm->cfg.poll) {
	case SBX_POLL_ON:
		vm->proc.ring.polling = 1;
		break;
	case SBX_POLL_OFF:
		vm->proc.ring.polling = 0;
		break;
	case SBX_POLL_AUTO:
		vm->proc.ring.polling = n >= 2;
		break;
	}
	if (vm->proc.ring.polling && n >= 2) {
		vm->proc.vcpu.cpu = first;
		vm->proc.ring.cpu = second;
	}
}
