/* The process calls' checks on a VM without KVM: requests that must come from the calling
 * vCPU's own thread, and the process tree's answers (wait, kill, process groups) for a
 * sandbox of one process. Forks and execs of real programs: test_procs.c. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "helpers.h"

static struct test_vm T;

static void setup(void)
{
	test_vm_setup(&T);
	char err[256];
	cr_assert_eq(sbx_procs_attach(T.vm, err, sizeof(err)), 0, "%s", err);
}

static void teardown(void)
{
	test_vm_teardown(&T);
}

TestSuite(procs_unit, .init = setup, .fini = teardown);

static int64_t call(uint32_t nr, uint64_t a0, uint64_t a1, uint64_t a2, int own)
{
	struct sbx_slot s = {.nr = nr, .pad = own ? SBX_SLOT_OWN : 0};
	s.u.a[0] = a0;
	s.u.a[1] = a1;
	s.u.a[2] = a2;
	return test_call(&T, s);
}

/* Served by another thread than the caller's (the poller), these would stop the wrong one. */
Test(procs_unit, calls_not_marked_for_the_callers_thread_are_refused)
{
	const uint32_t nr[] = {SBX_CALL_FORK, SBX_CALL_EXECVE, SBX_CALL_WAIT,	   SBX_CALL_PKILL,
			       SBX_CALL_PGRP, SBX_CALL_ITIMER, SBX_CALL_VFORK_EXIT};
	for (size_t i = 0; i < sizeof(nr) / sizeof(nr[0]); i++)
		cr_assert_eq(call(nr[i], 0, 0, 0, 0), -EINVAL, "call %u", nr[i]);
}

/* VFORK_EXIT from a process that is no vfork's child: nothing to give, nothing changed. */
Test(procs_unit, vfork_exit_of_no_vfork_child_copies_nothing)
{
	cr_assert_eq(call(SBX_CALL_VFORK_EXIT, 0, 0, 0, 1), 0);
	cr_assert_eq(T.vm->life.stopping, 0);
}

Test(procs_unit, wait_with_no_children_is_echild)
{
	cr_assert_eq(call(SBX_CALL_WAIT, (uint64_t)-1, 0, 0, 1), -ECHILD);
	cr_assert_eq(call(SBX_CALL_WAIT, 5, 1 /* WNOHANG */, 0, 1), -ECHILD);
	cr_assert_eq(call(SBX_CALL_WAIT, 1ull << 40, 0, 0, 1), -ECHILD);
}

Test(procs_unit, kill_finds_only_processes_that_exist)
{
	cr_assert_eq(call(SBX_CALL_PKILL, 99, 0, 0, 1), -ESRCH);
	cr_assert_eq(call(SBX_CALL_PKILL, (uint64_t)-99, 15, 0, 1), -ESRCH);
	cr_assert_eq(call(SBX_CALL_PKILL, 5, 65, 0, 1), -EINVAL);
	cr_assert_eq(call(SBX_CALL_PKILL, 1ull << 40, 0, 0, 1), -ESRCH);
	/* Its own group: the caller's share is its kernel's (1); -1 spares the caller, and with
	 * no other process finds none, as Linux's ESRCH. */
	cr_assert_eq(call(SBX_CALL_PKILL, 0, 0, 0, 1), 1);
	cr_assert_eq(call(SBX_CALL_PKILL, (uint64_t)-1, 0, 0, 1), -ESRCH);
	cr_assert_eq(T.vm->life.stopping, 0);
}

Test(procs_unit, process_groups_and_sessions)
{
	cr_assert_eq(call(SBX_CALL_PGRP, 1, 0, 0, 1), 2);	/* getpgid(0) */
	cr_assert_eq(call(SBX_CALL_PGRP, 1, 77, 0, 1), -ESRCH); /* no pid 77 */
	cr_assert_eq(call(SBX_CALL_PGRP, 3, 0, 0, 1), 2);	/* getsid(0) */
	cr_assert_eq(call(SBX_CALL_PGRP, 2, 0, 0, 1), -EPERM);	/* setsid of a leader */
	cr_assert_eq(call(SBX_CALL_PGRP, 0, 0, 0, 1), -EPERM);	/* a session's leader */
	cr_assert_eq(call(SBX_CALL_PGRP, 0, 8, 0, 1), -ESRCH);
	cr_assert_eq(call(SBX_CALL_PGRP, 0, 0, (uint64_t)-3, 1), -EINVAL);
	cr_assert_eq(call(SBX_CALL_PGRP, 9, 0, 0, 1), -EINVAL);
}

Test(procs_unit, execve_checks_its_arguments_before_anything)
{
	struct sbx_slot s = {.nr = SBX_CALL_EXECVE, .pad = SBX_SLOT_OWN};
	s.u.a[0] = (uint64_t)(int64_t)SBX_AT_FDCWD;
	s.u.a[4] = 0x8000; /* no such AT_ flag */
	cr_assert_eq(test_call(&T, s), -EINVAL);
	/* 1.15: the check and the final call are one or the other; a4 is 32 bits. */
	s.u.a[4] = SBX_EXECVE_CHECK | SBX_EXECVE_FINAL;
	cr_assert_eq(test_call(&T, s), -EINVAL);
	s.u.a[4] = 1ull << 32 | SBX_EXECVE_CHECK;
	cr_assert_eq(test_call(&T, s), -EINVAL);
	/* No page tables in this VM: no path can be read. A check changes nothing. */
	s.u.a[4] = SBX_EXECVE_CHECK;
	s.u.a[1] = 0x400000;
	cr_assert_eq(test_call(&T, s), -EFAULT);
	cr_assert_eq(T.vm->life.stopping, 0);
	s.u.a[4] = 0;
	cr_assert_eq(test_call(&T, s), -EFAULT);
	cr_assert_eq(T.vm->life.stopping, 0);
	/* The final call after the other threads ended: a failure ends the process, named. */
	s.u.a[4] = SBX_EXECVE_FINAL;
	cr_assert_eq(test_call(&T, s), -EFAULT);
	cr_assert_eq(T.vm->life.stopping, 1, "a failed final execve ends the process");
	cr_assert(strstr(T.vm->life.stop.reason, "after the other threads had ended"), "%s",
		  T.vm->life.stop.reason);
}

/* The process's real-time timer: set, read back counting down, replaced, disarmed; bad
 * values and addresses refused. No KVM: the alarm is disarmed before it could fire. */
Test(procs_unit, the_real_time_timer_is_set_read_and_disarmed)
{
	const uint64_t at = 0x400000;
	struct sbx_itimer *io = sbx_gptr(T.vm, at, sizeof(*io));
	cr_assert_not_null(io);
	*io = (struct sbx_itimer){.value_ns = 60000000000ll, .interval_ns = 5000000};
	cr_assert_eq(call(SBX_CALL_ITIMER, at, 1, 0, 1), 0);
	cr_assert_eq(io->value_ns, 0, "none was armed");
	cr_assert_eq(call(SBX_CALL_ITIMER, at, 0, 0, 1), 0);
	cr_assert(io->value_ns > 50000000000ll && io->value_ns <= 60000000000ll, "%lld",
		  (long long)io->value_ns);
	cr_assert_eq(io->interval_ns, 5000000);
	*io = (struct sbx_itimer){0, 0};
	cr_assert_eq(call(SBX_CALL_ITIMER, at, 1, 0, 1), 0);
	cr_assert(io->value_ns > 0 && io->interval_ns == 5000000, "the one replaced");
	cr_assert_eq(call(SBX_CALL_ITIMER, at, 0, 0, 1), 0);
	cr_assert_eq(io->value_ns, 0);
	*io = (struct sbx_itimer){-1, 0};
	cr_assert_eq(call(SBX_CALL_ITIMER, at, 1, 0, 1), -EINVAL);
	cr_assert_eq(call(SBX_CALL_ITIMER, at, 2, 0, 1), -EINVAL);
	cr_assert_eq(call(SBX_CALL_ITIMER, 1ull << 50, 0, 0, 1), -EFAULT);
	cr_assert_eq(call(SBX_CALL_ITIMER, at, 0, 0, 0), -EINVAL, "not the caller's own thread");
	/* The POSIX timers (a2 1..SBX_PTIMERS) are each their own; a3 is a signal number. */
	struct sbx_slot p = {
	    .nr = SBX_CALL_ITIMER, .pad = SBX_SLOT_OWN, .u.a = {at, 1, SBX_PTIMERS + 1, 10, 0}};
	*io = (struct sbx_itimer){.value_ns = 60000000000ll};
	cr_assert_eq(test_call(&T, p), -EINVAL, "no such timer");
	p.u.a[2] = 1;
	p.u.a[3] = 65;
	cr_assert_eq(test_call(&T, p), -EINVAL, "no such signal");
	p.u.a[3] = 10;
	p.u.a[4] = 1ull << 32;
	cr_assert_eq(test_call(&T, p), -EINVAL, "si_value is an int");
	p.u.a[4] = 77;
	cr_assert_eq(test_call(&T, p), 0);
	cr_assert_eq(sbx_procs_timer_armed(T.vm), 1);
	cr_assert_eq(call(SBX_CALL_ITIMER, at, 0, 0, 1), 0);
	cr_assert_eq(io->value_ns, 0, "ITIMER_REAL is another timer");
	p.u.a[1] = 0;
	cr_assert_eq(test_call(&T, p), 0);
	cr_assert(io->value_ns > 50000000000ll, "%lld", (long long)io->value_ns);
	*io = (struct sbx_itimer){0, 0};
	p.u.a[1] = 1;
	cr_assert_eq(test_call(&T, p), 0);
	cr_assert_eq(sbx_procs_timer_armed(T.vm), 0);
	cr_assert_eq(T.vm->life.stopping, 0);
}

/* Thread ids (ABI 1.13) come from the pid space: one held ahead for the next thread, taken by
 * it, forgotten at its end; kill finds a thread's process by its id; past the largest id they
 * start again and skip every id a process or thread has. */
Test(procs_unit, thread_ids_come_from_the_pid_space)
{
	struct sbx_vm *vm = T.vm;
	const struct sbx_bootinfo *b = sbx_gptr(vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	cr_assert_not_null(b);
	cr_assert_eq(vm->proc.pid, SBX_FIRST_PID);
	cr_assert_eq(call(SBX_CALL_TID, 0, 0, 0, 0), 3);
	cr_assert_eq(call(SBX_CALL_TID, 0, 0, 0, 0), 3, "held until a thread takes it");
	cr_assert_eq(b->tid_next, 3);
	cr_assert_eq(sbx_thread_tid_take(vm, 1, 4), -EINVAL, "not the id held");
	cr_assert_eq(sbx_thread_tid_take(vm, 0, 3), -EINVAL, "vCPU 0's thread has the pid");
	cr_assert_eq(sbx_thread_tid_take(vm, SBX_MAX_VCPUS, 3), -EINVAL);
	cr_assert_eq(sbx_thread_tid_take(vm, 1, 3), 4);
	cr_assert_eq(b->tid_next, 4);
	cr_assert_eq(call(SBX_CALL_PKILL, 3, 0, 0, 1), 1, "a thread of the caller's own process");
	cr_assert_eq(call(SBX_CALL_PKILL, 4, 0, 0, 1), -ESRCH, "a held id is no thread yet");
	cr_assert_eq(call(SBX_CALL_PKILL, 1, 0, 0, 1), 0,
		     "pid 1, the monitor's init, is there (a pid namespace's init)");
	cr_assert_eq(call(SBX_CALL_PKILL, 1, SIGTERM, 0, 1), 0, "and takes nothing sent to it");
	cr_assert_eq(vm->life.stopping, 0);
	/* Only a thread's own vCPU says it ended: this is no vCPU's thread. */
	sbx_thread_tid_gone(vm, 3);
	cr_assert_eq(call(SBX_CALL_PKILL, 3, 0, 0, 1), 1, "forgotten by another than its vCPU");
	/* A THREAD_RUN of a vCPU that was never started is refused before anything. */
	struct sbx_slot s = {.nr = SBX_CALL_THREAD_RUN, .u.a = {0x400000, 1, 4}};
	cr_assert_eq(test_call(&T, s), -EINVAL);
	cr_assert_eq(b->tid_next, 4);

	sbx_procs_set_pid_max(vm, 12);
	atomic_store(&vm->proc.threads.tid[1], 0);
	uint32_t held = 4;
	for (unsigned k = 0; k < 40; k++) {
		uint32_t idx = 1 + k % 4;
		int64_t next = sbx_thread_tid_take(vm, idx, held);
		cr_assert(next >= 3 && next < 12, "id %lld", (long long)next);
		for (unsigned i = 1; i <= 4; i++)
			cr_assert_neq(atomic_load(&vm->proc.threads.tid[i]), (unsigned)next,
				      "id %lld is vCPU %u's thread's", (long long)next, i);
		held = (uint32_t)next;
	}
	/* Every id taken (the pid, and 3 by every thread): none is given (clone and fork say
	 * EAGAIN), and nothing spins. */
	sbx_procs_set_pid_max(vm, 4);
	for (unsigned i = 1; i <= 4; i++)
		atomic_store(&vm->proc.threads.tid[i], 3);
	cr_assert_eq(sbx_thread_tid_take(vm, 1, held), 0);
	cr_assert_eq(call(SBX_CALL_TID, 0, 0, 0, 0), 0);
	cr_assert_eq(T.vm->life.stopping, 0);
}
