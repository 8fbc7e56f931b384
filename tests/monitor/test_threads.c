/* Guest threads (clone, futexes, several vCPUs) as programs see them: samples/threads.c's
 * subcommands under sandbox-run give the exit status and stdout of the same binary run natively,
 * for glibc and musl; --max-threads and --cpus do what they say. stderr is not compared (the
 * timing subcommands print their figures there). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e_util.h"

#define SAMPLES SBX_BUILD_DIR "/samples"

static const char *const libcs[] = {"glibc", "musl"};

static const char *binary(const char *libc, char *buf, size_t len)
{
	return e2e_sample_binary("threads", libc, buf, len);
}

static void expect(const char *opts, const char *args, int status, const char *want)
{
	e2e_sample_expect("threads", opts, args, status, want);
}

static void same_as_native(const char *opts, const char *args, int status)
{
	e2e_sample_expect("threads", opts, args, status, NULL);
}

/* Generous: PVM traps cost ~20 us here and 20x that on a slow host, and each thread may be a
 * vCPU to create. Only a hang reaches it. */
TestSuite(threads, .timeout = 600);

Test(threads, create_and_join_return_each_thread_s_result)
{
	same_as_native("", "create 8", 0);
}

Test(threads, a_mutex_excludes)
{
	same_as_native("", "mutex 4 20000", 0);
}

Test(threads, condvar_round_trips)
{
	same_as_native("", "condvar 2000", 0);
}

Test(threads, thread_locals_and_keys_are_per_thread_and_destructors_run)
{
	same_as_native("", "tls", 0);
}

Test(threads, one_pid_distinct_tids_main_tid_is_pid)
{
	same_as_native("", "ids", 0);
}

Test(threads, detached_threads_run_to_the_end)
{
	same_as_native("", "detach 50", 0);
}

/* exit() in a thread ends them all (exit_group), main blocked in a futex wait and a thread in
 * nanosleep included, with the status it gave. */
Test(threads, exit_in_a_thread_ends_the_process_with_its_status)
{
	same_as_native("", "exit_in_thread", 3);
}

/* Returning from main ends a thread that spins (no syscalls: it must be stopped, not asked)
 * and one waiting on a futex. */
Test(threads, main_returning_ends_spinning_and_waiting_threads)
{
	same_as_native("", "exitgroup_main", 0);
}

/* Futex waits with deadlines, CLOCK_REALTIME and CLOCK_MONOTONIC, time out (not early). */
Test(threads, timed_waits_time_out)
{
	same_as_native("", "timedwait", 0);
}

/* More threads over the run than --max-threads' default of live ones: joined ones are gone. */
Test(threads, two_hundred_threads_in_batches)
{
	same_as_native("", "many 200", 0);
}

Test(threads, small_and_program_supplied_stacks)
{
	same_as_native("", "stacks", 0);
}

Test(threads, cpu_bound_threads_compute_the_same)
{
	same_as_native("", "parallel 4 2000000", 0);
}

Test(threads, pingpong_and_createjoin_run)
{
	same_as_native("", "pingpong 1000", 0);
	same_as_native("", "createjoin 100", 0);
}

/* Flag sets Linux refuses are refused with its errno, never a half-thread. */
Test(threads, clone_flag_sets_linux_refuses_are_refused_alike)
{
	same_as_native("", "rawclone", 0);
}

Test(threads, clone3_arguments_linux_refuses_are_refused_alike)
{
	same_as_native("", "rawclone3", 0);
}

/* --max-threads counts main: 4 allows 3 more, the 4th pthread_create gets EAGAIN (as
 * RLIMIT_NPROC does natively: `setpriv --reuid=UNUSED prlimit --nproc=4 threads create 8`
 * prints the same). */
Test(threads, max_threads_makes_pthread_create_fail_with_eagain)
{
	expect("--max-threads 4", "create 8", 2,
	       "created 3 of 8\n"
	       "create failed: EAGAIN\n"
	       "thread 0: 500500\n"
	       "thread 1: 2001000\n"
	       "thread 2: 4501500\n"
	       "total: 7003000\n");
	same_as_native("--max-threads 4", "create 3", 0);
}

/* One vCPU at a time: four CPU-bound threads still all finish with the right checksum, and
 * waits hand the CPU over. */
Test(threads, one_cpu_runs_every_thread)
{
	same_as_native("--cpus 1", "parallel 4 2000000", 0);
	same_as_native("--cpus 1", "condvar 2000", 0);
	same_as_native("--cpus 1", "mutex 4 20000", 0);
}

/* One vCPU at a time and a thread that never makes a syscall: main still gets to run (the
 * spinner is preempted), and its return ends the spinner. */
Test(threads, one_cpu_preempts_a_spinning_thread)
{
	same_as_native("--cpus 1", "exitgroup_main", 0);
}

/* Cancellation: a signal sent with tgkill to a thread in pthread_cond_wait and to one in
 * nanosleep; both end as PTHREAD_CANCELED with their cleanup handlers run. */
Test(threads, cancel_threads_in_cond_wait_and_nanosleep)
{
	same_as_native("", "cancel", 0);
}

/* Robust mutexes: the robust list's cleanup at thread exit (the kernel's for glibc, musl walks
 * it itself) gives EOWNERDEAD, then ENOTRECOVERABLE if not made consistent. */
Test(threads, robust_mutex_owner_death)
{
	same_as_native("", "robust", 0);
}

/* Priority-inheritance mutexes (musl asks the kernel for FUTEX_LOCK_PI before it grants
 * PTHREAD_PRIO_INHERIT): exclusion, handover to a waiter, relock and foreign unlock by type,
 * an owner that ends holding one, and the raw calls' errors. */
Test(threads, priority_inheritance_mutexes)
{
	same_as_native("", "pi", 0);
}

/* Real-time signals queue (one handler run per signal sent), from the thread itself and from
 * another; sigwait and its kin take signals from the thread, another thread and a child (a
 * blocked SIGCHLD whose action is the default included), and time out. */
Test(threads, real_time_signals_queue_and_sigwait_takes_them)
{
	same_as_native("", "sigqueue", 0);
}

/* Thread-directed signals reach their thread; a process-directed one the thread not blocking
 * it; signal masks are per thread. */
Test(threads, signals_to_threads)
{
	same_as_native("", "sigthread", 0);
}

/* A thread waiting on the host for the guest (a read of an idle pipe, a poll) is cut short by
 * a signal sent to it, as on Linux: EINTR without SA_RESTART, the read going on with it, and
 * pthread_cancel (a signal too) ends a read. The kick reaches the vCPU's host thread in its
 * wait, not only a vCPU in the guest. */
Test(threads, a_signal_ends_a_thread_s_wait_in_read_or_poll)
{
	same_as_native("", "interrupt", 0);
}

/* A read that waits, in a process of threads, reads into the monitor's buffer and is copied
 * into the program's after: scattered over readv's buffers, a datagram cut at the buffer, reads
 * longer than that buffer (a pipe's: a shorter count; MSG_WAITALL's: all it asked for). */
Test(threads, reads_that_wait_land_as_linux_lands_them)
{
	same_as_native("", "waitreads", 0);
}

/* A page one thread unmaps is gone for the others at once: the reader's next read faults
 * (SIGSEGV, as natively), never a stale translation. On PVM KVM's shadow page tables see to
 * it; SBX_SHOOTDOWN=always makes the kernel ask for the shootdown hardware KVM needs, so that
 * its path runs here too. */
Test(threads, an_unmapped_page_faults_in_every_thread)
{
	same_as_native("", "unmapped", 128 + 11);
	setenv("SBX_SHOOTDOWN", "always", 1);
	same_as_native("", "unmapped", 128 + 11);
	same_as_native("", "many 40", 0);
	same_as_native("", "mutex 4 20000", 0);
	unsetenv("SBX_SHOOTDOWN");
}

/* A thread's fault is reported with its own registers and stack, and the report lists every
 * thread with where it was. */
Test(threads, a_fault_in_a_thread_is_reported_as_that_threads)
{
	e2e_need_kvm();
	int st;
	char *o = e2e_slurp(SANDBOX " " SAMPLES "/threads-glibc unmapped 2>&1", &st);
	cr_assert_eq(st, 128 + 11, "%s", o);
	cr_assert(strstr(o, "SIGSEGV: read of unmapped address"), "%s", o);
	cr_assert(strstr(o, "in unmapped_reader"), "%s", o);
	cr_assert(strstr(o, "threads:\n"), "%s", o);
	cr_assert(strstr(o, "=> tid "), "%s", o);
	cr_assert(strstr(o, "(vCPU 0): rip "), "%s", o);
	cr_assert(strstr(o, "SUMMARY: sandbox: SIGSEGV "), "%s", o);
	cr_assert(strstr(o, " in unmapped_reader\nDEDUP_TOKEN"), "%s", o);
	free(o);
}

/* A pause stops every vCPU; a snapshot holds each thread's vCPU and the restore starts them all
 * again. Three threads and main meet at a barrier twice a round (each parks its vCPU there);
 * the first run's lines and the restored run's together are a native run's, line for line:
 * no round lost or repeated, every thread's registers, thread-local value and id kept, and the
 * restored process forks at its end ("forked child 7", natively too). */
Test(threads, pause_snapshot_and_restore_keep_every_thread)
{
	e2e_need_kvm();
	int st;
	char *o = e2e_snapshot_round_trip(
	    SAMPLES "/threads-glibc", "beat 3 300", "^50 ",
	    SBX_BUILD_DIR "/sandbox-ctl $D/c pause; n=$(wc -l < $D/a); sleep 0.3; "
			  "test $(wc -l < $D/a) = $n && echo still; " SBX_BUILD_DIR
			  "/sandbox-ctl $D/c resume; wait_for \"grep -q '^100 ' $D/a\"",
	    "wc -l < $D/b", &st);
	cr_assert_eq(st, 0, "%s", o);
	cr_assert(strstr(o, "still\n"), "a paused program went on printing: %s", o);
	cr_assert(strstr(o, "first 0\n"), "%s", o);
	cr_assert(strstr(o, "second 0\n"), "%s", o);
	cr_assert(strstr(o, "same\n"), "%s", o);
	cr_assert(strstr(o, "ok snapshot"), "%s", o);
	cr_assert(!strstr(o, "WRONG"), "%s", o);
	free(o);
}

/* The same through a live migration (tests/monitor/migrate.sh threads). */
Test(threads, a_live_migration_keeps_every_thread)
{
	e2e_need_kvm();
	int st;
	char *o = e2e_slurp(
	    SBX_SOURCE_DIR "/tests/monitor/migrate.sh " SBX_BUILD_DIR " threads 2>&1", &st);
	cr_assert_eq(st, 0, "%s", o);
	cr_assert(strstr(o, "PASS"), "%s", o);
	free(o);
}

/* --cpu-time counts every thread's CPU time: four threads computing while main waits in
 * pthread_join reach the limit (status 120), though main itself uses almost none. */
Test(threads, cpu_time_counts_every_thread)
{
	e2e_need_kvm();
	int st;
	char *o = e2e_slurp(
	    SANDBOX " --cpu-time 400ms " SAMPLES "/threads-glibc parallel 4 2000000000 2>&1", &st);
	cr_assert_eq(st, 120, "%s", o);
	cr_assert(strstr(o, "CPU time limit reached"), "%s", o);
	free(o);
}

/* A thread waiting in read() for input that only comes once another thread has written holds
 * up neither the guest kernel nor the monitor: main's write goes out while the reader waits. */
Test(threads, a_read_that_waits_holds_up_no_other_thread)
{
	e2e_need_kvm();
	for (size_t l = 0; l < sizeof(libcs) / sizeof(libcs[0]); l++) {
		char path[512], cmd[4096];
		const char *bin = binary(libcs[l], path, sizeof(path));
		if (!bin)
			continue;
		int st;
		snprintf(
		    cmd, sizeof(cmd),
		    "D=$(mktemp -d); P=; trap 'kill -9 $P 2>/dev/null; rm -rf $D' EXIT; "
		    "mkfifo $D/in; %s %s blockedread < $D/in > $D/out 2>$D/err & P=$!; "
		    "exec 3>$D/in; i=0; until grep -q 'main wrote' $D/out; do i=$((i + 1)); "
		    "if [ $i -ge 500 ]; then echo 'main did not write'; break; fi; sleep 0.02; "
		    "done; echo input >&3; exec 3>&-; wait $P; echo status $?; cat $D/out $D/err",
		    SANDBOX, bin);
		char *o = e2e_slurp(cmd, &st);
		cr_assert(strstr(o, "status 0\n"), "%s:\n%s", bin, o);
		cr_assert(strstr(o, "main wrote while a thread waited for input\nthe reader got: "
				    "input\n"),
			  "%s:\n%s", bin, o);
		cr_assert_null(strstr(o, "did not write"), "%s:\n%s", bin, o);
		free(o);
	}
}

/* A read of an idle pipe waits without ring_lock, into a shared mapping that another thread
 * unmaps meanwhile and then starts threads (in the sandbox, monitor threads whose stacks the
 * host may map where the window was): the read lands in the mapping's file (the monitor reads
 * into a mapping of its own for the wait) or fails with EFAULT, natively; never anywhere else. */
Test(threads, a_read_outlives_the_unmap_of_its_buffer)
{
	same_as_native("", "unmapread", 0);
}

/* Faults that threads other than the main one handle, several at once (the ones that come
 * while another is being delivered wait their turn), each on the thread's own alternate stack
 * when it has one; Go's runtime recovers a goroutine's nil dereference this way. */
Test(threads, every_thread_handles_its_own_faults)
{
	same_as_native("", "segvthreads", 0);
}

/* A signal reaches a thread that computes without syscalls (the monitor stops its vCPU in the
 * program's code: KICK), and the main thread too, sent by another (Go's runtime preempts a
 * goroutine in a loop without calls so). */
Test(threads, signals_reach_threads_that_run_their_own_code)
{
	same_as_native("", "sigspin", 0);
	same_as_native("--cpus 1", "sigspin", 0);
}

/* The core file of a crash in a thread holds every thread (one NT_PRSTATUS each, the faulting
 * one first): gdb lists them, the faulting one current, the other where it waited. */
Test(threads, the_core_file_has_every_thread)
{
	e2e_need_kvm();
	if (access("/usr/bin/gdb", X_OK) != 0)
		cr_skip_test("gdb is not installed (scripts/setup.sh installs it)");
	char core[64], cmd[512];
	int st;
	snprintf(core, sizeof(core), "/tmp/sbx-thread-core-%d", getpid());
	snprintf(cmd, sizeof(cmd),
		 SANDBOX " --core %s " SAMPLES "/threads-glibc unmapped >/dev/null 2>&1", core);
	free(e2e_slurp(cmd, &st));
	cr_assert_eq(st, 139);
	snprintf(cmd, sizeof(cmd),
		 "gdb -nx -batch -ex 'info threads' " SAMPLES "/threads-glibc %s 2>&1", core);
	char *o = e2e_slurp(cmd, &st);
	unlink(core);
	const char *cur = strstr(o, "* 1    Thread");
	cr_assert(cur, "no current thread 1:\n%s", o);
	/* Thread ids are from the sandbox's pid space (the first process is 2), not fixed. */
	const char *nl = cur ? strchr(cur, '\n') : NULL;
	cr_assert(nl && memmem(cur, (size_t)(nl - cur), ") unmapped_reader", 17),
		  "the faulting thread first:\n%s", o);
	cr_assert(strstr(o, "  2    Thread") && strstr(o, "(LWP "), "the main thread:\n%s", o);
	free(o);
}

/* A thread that blocks SIGSEGV and faults kills the process with SIGSEGV, reported as that
 * thread's fault. */
Test(threads, a_fault_whose_signal_the_thread_blocks_kills)
{
	e2e_need_kvm();
	int st;
	char *o = e2e_slurp(SANDBOX " " SAMPLES "/threads-glibc segvblocked 2>&1", &st);
	cr_assert_eq(st, 139, "%s", o);
	cr_assert(strstr(o, "a thread faults with SIGSEGV blocked\n"), "%s", o);
	cr_assert_null(strstr(o, "still alive"), "%s", o);
	cr_assert(strstr(o, "=> tid ") && strstr(o, " (vCPU 1): rip"), "%s", o);
	cr_assert(strstr(o, "SUMMARY: sandbox: SIGSEGV threads.c:"), "%s", o);
	free(o);
}

/* A fault the main thread's program handles stops the run only while its signal is delivered:
 * the other threads go on afterwards, and are joined. */
Test(threads, a_handled_fault_of_the_main_thread_leaves_the_others_running)
{
	same_as_native("", "segvmain", 0);
}

/* A signal sent to a thread that is computing, which then waits on a futex only its handler
 * sets: the handler runs (the wait does not begin, or ends with EINTR), as natively. */
Test(threads, a_signal_sent_before_a_wait_is_not_lost)
{
	same_as_native("--timeout 60s", "sigbeforewait", 0);
}
