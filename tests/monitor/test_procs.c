/* Processes (a VM each, monitor/sandbox/procs.c): samples/procs.c's subcommands under
 * sandbox-run give the exit status and stdout of the same binary run natively, for glibc and
 * musl; busybox's shell runs pipelines, command substitution, scripts and loops of external
 * commands; the limits and the end of the first process hold for the whole tree. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e_util.h"

#define BUSYBOX "/bin/busybox"

static void same_as_native(const char *args)
{
	e2e_sample_expect("procs", "", args, 0, NULL);
}

/* Generous: only a hang reaches it. */
TestSuite(procs, .timeout = 600);

Test(procs, fork_gives_each_process_its_own_memory_and_ids)
{
	same_as_native("fork");
}

Test(procs, pipes_between_processes_end_in_eof)
{
	same_as_native("pipe");
}

/* taskset's way: the set reads back in the thread, a new thread, a fork's child and an
 * exec'd image; pid -1 and an empty set are refused as Linux refuses them; the first process's
 * parent (the monitor's init, pid 1) is there for kill(getppid(), 0). */
Test(procs, an_affinity_reads_back_in_threads_children_and_exec_images)
{
	same_as_native("affinity");
}

Test(procs, exec_runs_a_new_image_with_its_arguments)
{
	same_as_native("exec");
}

Test(procs, close_on_exec_descriptors_close_at_exec)
{
	same_as_native("cloexec");
}

Test(procs, kill_ends_a_child_and_wait_tells_the_signal)
{
	same_as_native("kill");
}

/* The first process (pid 2, as under bubblewrap) is no init that signals from the others
 * pass by: a child's SIGTERM ends it, and the sandbox, with 143 as natively. */
Test(procs, a_child_s_signal_ends_the_first_process_as_natively)
{
	e2e_sample_expect("procs", "", "killparent", 128 + 15, NULL);
}

/* Its parent gone, a process reads another parent at once (a watchdog's getppid loop ends)
 * and gets the PR_SET_PDEATHSIG signal it asked for, from the parent that ended. */
Test(procs, an_orphan_reads_a_new_parent_and_gets_its_parent_death_signal)
{
	same_as_native("orphan");
}

/* ps and pgrep's /proc: each running process of the sandbox, its stat and cmdline, ids as the
 * calls give them, PR_SET_NAME's name, and nothing of a reaped one. */
Test(procs, proc_shows_every_running_process_as_ps_reads_it)
{
	same_as_native("procfs");
}

Test(procs, a_signal_from_another_process_runs_its_handler)
{
	same_as_native("handler");
}

Test(procs, sigchld_reaches_a_handler)
{
	same_as_native("sigchld");
}

/* pselect, ppoll and epoll_pwait with a mask that lets SIGCHLD through only while they wait
 * (GNU make's jobserver: `make -j4` hung once its first four jobs had ended): a child's end
 * ends the wait with EINTR after its handler, whether it comes during the wait or was pending
 * before; the program's mask is back after; a ready descriptor wins over the signal. */
Test(procs, a_wait_s_own_signal_mask_lets_sigchld_end_it)
{
	same_as_native("maskwait");
}

Test(procs, posix_spawn_and_vfork)
{
	same_as_native("spawn");
	same_as_native("vfork");
}

Test(procs, wnohang_waitid_and_process_groups)
{
	same_as_native("wnohang");
	same_as_native("pgrp");
}

Test(procs, ids_kept_by_set_id_calls_and_spawn_resetting_them)
{
	same_as_native("ids");
}

Test(procs, fork_vfork_and_spawn_from_a_process_with_threads)
{
	same_as_native("threaded");
}

Test(procs, shared_file_mappings_stay_shared_across_fork)
{
	e2e_sample_expect("procs", "--tmp /tmp", "shared", 0, NULL);
}

/* sem_open and shm_open in the sandbox's own /dev/shm, MAP_SHARED | MAP_ANONYMOUS memory
 * shared with fork's children, process-shared mutexes, condition variables and semaphores
 * whose waits and wakes cross processes, a timed wait, and a wait a signal cuts short. */
Test(procs, shared_memory_and_its_locks_work_between_processes)
{
	same_as_native("shm");
}

/* Record locks are each process's own (a second process's conflict, a child inherits none, a
 * close drops them, F_SETLKW waits for the holder), OFD locks and flock the description's. */
Test(procs, file_locks_exclude_other_processes)
{
	e2e_sample_expect("procs", "--tmp /tmp", "locks", 0, NULL);
}

/* Thread ids and pids are one space: a thread started before a fork does not share its id
 * with the child, whose process-shared recursive mutex it therefore cannot take as its own, and
 * kill finds a thread of another process by its id. */
Test(procs, thread_ids_are_never_another_process_s_pid)
{
	same_as_native("tids");
}

/* execve once the other threads have ended: the new image starts threads of its own, and so
 * does the old one after an execve that failed. */
Test(procs, execve_after_threads_ended_works)
{
	e2e_sample_expect("procs", "--tmp /tmp", "execthreads", 0,
			  "before execve: 2 threads ran\n"
			  "execve of a bad ELF: Exec format error\n"
			  "after it: 3 threads ran\n"
			  "the new image: 4 threads ran, tid is pid: yes\n");
}

/* execve while other threads run (in a futex wait, a read, a sleep with every signal blocked,
 * their own code, waitpid): they end, the caller goes on as the new image's main thread with
 * its own mask, from main, from a second thread, after main ended, from two threads at once;
 * failed ones keep every thread. */
Test(procs, execve_while_other_threads_run_ends_them)
{
	e2e_sample_expect("procs", "--tmp /tmp", "execlive", 0, NULL);
}

/* A vfork's child's writes before its _exit are its parent's, as on Linux: posix_spawn of a
 * missing program says ENOENT (glibc's child reports it so). */
Test(procs, a_vfork_child_s_writes_reach_its_parent)
{
	same_as_native("vforkshare");
}

/* SA_RESTART makes a blocking waitpid (whose child the alarm's handler kills) and an untimed
 * futex wait go on after the handler; without it, or timed, they end with EINTR. */
Test(procs, sa_restart_restarts_waitpid_and_futex_waits_after_the_handler)
{
	same_as_native("restart");
}

/* POSIX timers: a signal with SI_TIMER and si_value, an interval, an absolute time, SIGEV_NONE,
 * none left after timer_delete or in a fork's child. */
Test(procs, posix_timers_signal_as_linux_does)
{
	same_as_native("ptimers");
}

Test(procs, close_range_closes_or_marks_a_range)
{
	same_as_native("closerange");
}

/* wait4's rusage, getrusage(RUSAGE_CHILDREN) and times() count a child and its own child. */
Test(procs, children_s_cpu_time_reaches_rusage_and_times)
{
	same_as_native("rusage");
}

/* The CPU-time clocks leave out the time the vCPU's host thread waited for a host CPU (KVM's
 * steal time): with a busy loop on the one host CPU the sandbox may use, the child that burns
 * 0.2 s of its CPU clock, and its own child that does too, are 0.4 s of CPU to wait4 (the
 * monitor counts their threads' host CPU time), where the clock alone had said 0.2 s of it;
 * and a program reading its CPU clock in a loop meanwhile never sees it go back. */
Test(procs, cpu_time_leaves_out_the_time_another_host_thread_ran)
{
	e2e_need_kvm();
	char path[512];
	const char *bin = e2e_sample_binary("procs", "glibc", path, sizeof(path));
	cr_assert(bin);
	char *cmd = NULL;
	cr_assert(asprintf(&cmd,
			   "command -v taskset >/dev/null || { echo no taskset; exit 0; }; "
			   "C=$(taskset -cp $$ | sed 's/.*: //; s/[-,].*//'); "
			   "taskset -c $C sh -c 'while :; do :; done' & H=$!; trap 'kill $H' EXIT; "
			   "taskset -c $C %s -v %s rusage 2>&1; "
			   "taskset -c $C %s " SBX_BUILD_DIR "/samples/cputime-glibc busy 200",
			   SANDBOX, bin, SANDBOX) > 0);
	int st;
	char *o = e2e_slurp(cmd, &st);
	free(cmd);
	if (strstr(o, "steal time: off") || !strncmp(o, "no taskset", 10)) {
		int no_taskset = !strncmp(o, "no taskset", 10);
		free(o);
		if (no_taskset)
			cr_skip_test(
			    "no taskset (util-linux) to pin a busy loop beside the sandbox");
		cr_skip_test("the host's KVM keeps no steal time (MSR_KVM_STEAL_TIME refused)");
	}
	cr_expect(strstr(o, "wait4: the child, status 3, CPU 0.4 s"), "%s", o);
	cr_expect(strstr(o, "RUSAGE_CHILDREN: CPU 0.4 s"), "%s", o);
	/* Its clock never goes back while KVM adds to the steal (clock.h reads them together). */
	cr_expect(strstr(o, "backwards 0\n"), "%s", o);
	free(o);
}

/* A stream pair between parent and child (recv, MSG_DONTWAIT, MSG_PEEK, sendmsg and recvmsg
 * of vectors, shutdown, EPIPE with MSG_NOSIGNAL), datagrams, and the errors around them. */
Test(procs, socketpairs_connect_parent_and_child)
{
	same_as_native("socketpair");
}

/* A fork's child that does not exec first runs on its parent's RAM, which its parent, after
 * waiting a little, leaves to it for a copy of its own: neither sees the other's writes
 * (8 MiB and a word, written by the parent after its fork returned, while the child waited on
 * a pipe for it), a thread of the child and a grandchild see the child's; and what it holds
 * is counted towards --mem without counting a page twice. */
Test(procs, a_fork_child_that_does_not_exec_keeps_its_memory_apart)
{
	same_as_native("forklend");
	/* 128 MiB written and given back in turn by the lent child stay within --mem. */
	e2e_sample_expect("procs", "--mem 64M", "forklend", 0, NULL);
}

Test(procs, many_children_are_all_reaped)
{
	same_as_native("many 40");
}

static char *shell(const char *opts, const char *script, int *st)
{
	char cmd[4096];
	snprintf(cmd, sizeof(cmd),
		 SANDBOX " --ro " BUSYBOX ":/bin/busybox %s /bin/busybox sh -c '%s' 2>&1", opts,
		 script);
	return e2e_slurp(cmd, st);
}

static void need_busybox(void)
{
	e2e_need_kvm();
	if (access(BUSYBOX, X_OK) != 0)
		cr_skip_test(BUSYBOX
			     " is not installed (scripts/setup.sh installs busybox-static)");
}

Test(procs, a_shell_runs_pipelines_substitutions_and_loops)
{
	need_busybox();
	int st;
	char *o = shell("",
			"B=/bin/busybox; echo $($B echo sub); $B echo a b c | $B wc -w; "
			"i=0; while [ $i -lt 20 ]; do $B true; i=$((i+1)); done; echo loop $i; "
			"$B false; echo false gave $?; exit 3",
			&st);
	cr_assert_eq(st, 3, "%s", o);
	cr_assert_str_eq(o, "sub\n3\nloop 20\nfalse gave 1\n", "%s", o);
	free(o);
}

/* One polling thread serves every process (core/poller.c): a process whose read waits (the
 * first cat, on a pipe that fills late) is left to its vCPU's thread, and the others' I/O goes
 * on. What every mode must give is the same output; --stats counts the other processes. */
Test(procs, one_poller_serves_a_pipeline_while_one_process_waits)
{
	need_busybox();
	const char *script = "B=/bin/busybox; ($B sleep 1; echo late) | $B cat | $B cat > o1 & "
			     "$B seq 1 3000 | $B cat | $B cat | $B wc -l; wait; $B cat o1; "
			     "i=0; while [ $i -lt 20 ]; do $B echo $i | $B cat; i=$((i+1)); done | "
			     "$B wc -l";
	for (int i = 0; i < 3; i++) {
		static const char *modes[] = {"on", "off", "auto"};
		char opts[128];
		snprintf(opts, sizeof(opts), "--io-poll %s --stats --tmp /t --cwd /t", modes[i]);
		int st;
		char *o = shell(opts, script, &st);
		cr_assert_eq(st, 0, "--io-poll %s: %s", modes[i], o);
		cr_expect(strstr(o, "3000\nlate\n20\n"), "--io-poll %s: %s", modes[i], o);
		unsigned long long n = 0, calls = 0;
		const char *l = strstr(o, " other processes: ");
		cr_assert_not_null(l, "--io-poll %s: no count of the other processes: %s", modes[i],
				   o);
		while (l > o && l[-1] >= '0' && l[-1] <= '9')
			l--;
		cr_assert_eq(sscanf(l,
				    "%llu other processes: %*u VM exits, %*u doorbells, %llu "
				    "hypercalls",
				    &n, &calls),
			     2, "%s", o);
		cr_expect_geq(n, 8, "--io-poll %s: %llu processes counted: %s", modes[i], n, o);
		cr_expect_gt(calls, n, "%s", o);
		free(o);
	}
}

Test(procs, a_script_runs_through_its_interpreter)
{
	need_busybox();
	char dir[] = "/tmp/sbx-procs.XXXXXX";
	e2e_scratch(
	    dir,
	    "printf '#!/bin/busybox sh\\necho script $0 $1\\nexit 6\\n' > s.sh && chmod +x s.sh"
	    " && printf 'not a program' > plain && chmod +x plain");
	char opts[256], cmd[8192];
	snprintf(opts, sizeof(opts), "--ro %s:/d", dir);
	int st;
	char *o = shell(opts, "/d/s.sh arg; echo status $?; /d/plain; echo plain $?", &st);
	cr_assert_eq(st, 0, "%s", o);
	/* busybox runs a file without #! as a script itself (execve says ENOEXEC). */
	cr_assert(strstr(o, "script /d/s.sh arg\nstatus 6\n"), "%s", o);
	free(o);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	free(e2e_slurp(cmd, &st));
}

/* A build inside one sandbox, the system mounted read-only: make -j2 runs two gcc at once,
 * each with its cc1 and as children, then ld through collect2; gcc -c alone too. What it
 * builds runs natively. */
Test(procs, make_j2_builds_a_c_project_with_gcc, .timeout = 900)
{
	e2e_need_kvm();
	if (access("/usr/bin/make", X_OK) != 0 || access("/usr/bin/gcc", X_OK) != 0)
		cr_skip_test("make or gcc is not installed");
	char dir[] = "/tmp/sbx-make.XXXXXX";
	e2e_scratch(dir, "printf 'int add(int a, int b);\n' > util.h && "
			 "printf '#include \"util.h\"\nint add(int a, int b) { return a + b; }\n' "
			 "> util.c && "
			 "printf '#include <stdio.h>\n#include \"util.h\"\nint main(void) { "
			 "printf(\"sum %%d\\\\n\", add(40, 2)); return 0; }\n' > main.c && "
			 "printf 'prog: main.o util.o\n\tgcc -o $@ main.o util.o\n%%.o: %%.c "
			 "util.h\n\tgcc -O2 -c $<\n' > Makefile");
	char cmd[2048];
	int st;
	snprintf(cmd, sizeof(cmd),
		 "cd %s && " SANDBOX " --ro /usr --ro /lib --ro /lib64 --rw %s --cwd %s --mem 1G "
		 "--env PATH=/usr/bin /usr/bin/make -j2 2>&1 && ./prog && " SANDBOX
		 " --ro /usr --ro /lib --ro /lib64 --rw %s --cwd %s --mem 1G --env PATH=/usr/bin "
		 "/usr/bin/gcc -O2 -c main.c -o again.o 2>&1 && cmp -s main.o again.o && echo same",
		 dir, dir, dir, dir, dir);
	char *o = e2e_slurp(cmd, &st);
	cr_expect_eq(st, 0, "%s", o);
	cr_expect(strstr(o, "sum 42\nsame\n"), "%s", o);
	free(o);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	free(e2e_slurp(cmd, &st));
}

Test(procs, max_procs_makes_fork_fail_with_eagain)
{
	need_busybox();
	int st;
	/* Two processes at once at most: the shell, and one command at a time. */
	char *o = shell("--max-procs 2",
			"/bin/busybox true && echo one; "
			"/bin/busybox sleep 5 & /bin/busybox true; echo second $?",
			&st);
	cr_assert(strstr(o, "one\n"), "%s", o);
	cr_assert(strstr(o, "can't fork") || strstr(o, "Resource temporarily unavailable"), "%s",
		  o);
	free(o);
}

/* The first process's end ends them all, and --timeout does too. */
Test(procs, no_process_outlives_the_sandbox)
{
	need_busybox();
	int st;
	char *o = shell("--timeout 2s", "/bin/busybox sleep 100 & /bin/busybox sleep 100", &st);
	cr_assert_eq(st, 121, "%s", o);
	free(o);
	o = shell("", "/bin/busybox sleep 100 & echo started", &st);
	cr_assert_eq(st, 0, "%s", o);
	cr_assert_str_eq(o, "started\n", "%s", o);
	free(o);
}

Test(procs, the_audit_log_records_every_execve)
{
	need_busybox();
	char path[] = "/tmp/sbx-audit.XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	close(fd);
	char opts[256];
	snprintf(opts, sizeof(opts), "--audit %s", path);
	int st;
	char *o = shell(opts, "/bin/busybox echo hi; /nope", &st);
	free(o);
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "cat %s; rm -f %s", path, path);
	o = e2e_slurp(cmd, &st);
	cr_assert(strstr(o, "\"call\":\"execve\"") &&
		      strstr(o, "\"argv\":[\"/bin/busybox\",\"echo\",\"hi\"]"),
		  "%s", o);
	cr_assert(strstr(o, "\"guest_path\":\"/nope\"") && strstr(o, "\"result\":-2"), "%s", o);
	free(o);
}

static char *sample(const char *opts, const char *args, int *st)
{
	char bin[512], cmd[2048];
	e2e_need_kvm();
	e2e_sample_binary("procs", "glibc", bin, sizeof(bin));
	snprintf(cmd, sizeof(cmd), SANDBOX " %s %s %s 2>&1", opts, bin, args);
	return e2e_slurp(cmd, st);
}

/* A parent whose threads write its memory lends its RAM too, its threads held until the child
 * has exec'd or it took its copy: the child that does not exec sees none of their writes, nor
 * the bytes of a read another thread was waiting in when it forked (they land once the lend
 * is over, in the parent's copy). */
/* The sample ends well, and its output (with the sandbox's) has want and want2 (if not NULL)
 * and not unwanted (if not NULL). */
static void sample_says(const char *opts, const char *args, const char *want, const char *want2,
			const char *unwanted)
{
	int st;
	char *o = sample(opts, args, &st);
	cr_assert_eq(st, 0, "%s", o);
	cr_assert(strstr(o, want) && (!want2 || strstr(o, want2)) &&
		      (!unwanted || !strstr(o, unwanted)),
		  "%s", o);
	free(o);
}

Test(procs, a_parent_with_threads_lends_its_ram_and_holds_them)
{
	same_as_native("threadlend");
	/* Alone, in a process whose earlier forks did not end its lending (a slow host's exec
	 * may take the 20 ms). */
	sample_says("-v", "threadlend still",
		    "the child's copy stood still: yes, the parent's threads went on: yes",
		    "neither exec'd nor ended within 20 ms: the parent takes a copy", NULL);
	sample_says("-v", "threadlend read",
		    "read 4 in the parent (z), the child saw its old bytes: yes",
		    "neither exec'd nor ended within 20 ms: the parent takes a copy", NULL);
}

/* Memory refused for --mem says so once, naming the flag, though the program only sees ENOMEM:
 * a fork whose copy would not fit, and mmap past guest RAM in a program that then fails. */
Test(procs, memory_refused_for_the_limit_names_the_flag)
{
	int st;
	char *o = sample("--mem 64M", "bigmem 40 fork", &st);
	cr_assert_eq(st, 1, "%s", o);
	cr_assert(strstr(o, "fork: Cannot allocate memory") &&
		      strstr(o, "fork refused: the copy would need ") &&
		      strstr(o, "over --mem 64 MiB together; give it more with --mem"),
		  "%s", o);
	free(o);
	o = sample("--mem 64M", "bigmem 40 map", &st);
	cr_assert_eq(st, 1, "%s", o);
	cr_assert(strstr(o, "mmap: Cannot allocate memory") &&
		      strstr(o, "for memory (mmap, brk) refused: the sandbox has 64 MiB of guest "
				"RAM; give it more with --mem"),
		  "%s", o);
	free(o);
	o = sample("--mem 64M", "bigmem 8 fork", &st);
	cr_assert_eq(st, 0, "%s", o);
	cr_assert(!strstr(o, "--mem"), "%s", o);
	free(o);
}

/* posix_spawn is a vfork: its child borrows the RAM of a parent that holds most of --mem
 * (nothing is copied, so nothing is refused), execs, and the parent's writes after are its
 * own. */
Test(procs, spawn_from_a_big_process_copies_nothing)
{
	int st;
	char *o = sample("--mem 64M", "bigmem 40 spawn", &st);
	cr_assert_eq(st, 0, "%s", o);
	cr_assert(strstr(o, "spawned: exited 3") && !strstr(o, "--mem") && !strstr(o, "byte "),
		  "%s", o);
	free(o);
}

/* A terminal's stop signal raised by the first process goes by when no shell's job control
 * would continue it (sandbox-run is no terminal's foreground job here); SIGSTOP, which cannot
 * be ignored, holds until the --timeout ends the sandbox, without CPU time (docs: "Job
 * control"). */
Test(procs, the_first_process_stop_signals_go_by_and_sigstop_holds_until_the_timeout)
{
	int st;
	char *o = sample("--timeout 2s -v", "selfstop", &st);
	cr_assert_eq(st, 121, "%s", o);
	cr_assert(strstr(o, "went on after SIGTSTP\n") && strstr(o, "went on after SIGTTIN\n") &&
		      strstr(o, "went on after SIGTTOU\n"),
		  "%s", o);
	cr_assert(strstr(o, "SIGTSTP ignored: nothing would continue the first process"), "%s", o);
	cr_assert(strstr(o, "stopped by SIGSTOP"), "%s", o);
	cr_assert_null(strstr(o, "went on after SIGSTOP"), "%s", o);
	free(o);
}

/* --cpu-time counts every process's time: two spinning children end the sandbox, though the
 * first process only waits. */
Test(procs, cpu_time_counts_all_processes_together)
{
	int st;
	char *o = sample("--cpu-time 1s --timeout 120s", "spin 2", &st);
	cr_assert_eq(st, 120, "%s", o);
	cr_assert(strstr(o, "--cpu-time 1000 ms (all processes together)"), "%s", o);
	free(o);
}

/* --max-output is one budget for all: each command writes 41 bytes, six of them go over 100. */
Test(procs, max_output_counts_all_processes_together)
{
	need_busybox();
	int st;
	char *o = shell("--max-output 100",
			"for i in 1 2 3 4 5 6; do /bin/busybox echo "
			"0123456789012345678901234567890123456789; done",
			&st);
	cr_assert_eq(st, 122, "%s", o);
	cr_assert(strstr(o, "--max-output 100 bytes"), "%s", o);
	/* What was written before the limit: 100 bytes exactly, then the message. */
	cr_assert(!strncmp(o,
			   "0123456789012345678901234567890123456789\n"
			   "0123456789012345678901234567890123456789\n"
			   "012345678901234567",
			   100) &&
		      !(o[100] >= '0' && o[100] <= '9'),
		  "%s", o);
	free(o);
}

/* --mem holds for all processes together: three children of 24 MiB each do not fit in 64 MiB,
 * so the one that holds the most is killed as by an OOM killer, and the sandbox goes on; a fork
 * that would not fit is refused. */
Test(procs, mem_holds_for_all_processes_together)
{
	int st;
	char *o = sample("--mem 64M", "hog 3 24", &st);
	cr_assert_eq(st, 0, "%s", o);
	cr_assert(strstr(o, "killed, out of memory: the sandbox's processes hold"), "%s", o);
	cr_assert(strstr(o, "3 children: 2 exited, 1 killed") ||
		      strstr(o, "3 children: 1 exited, 2 killed"),
		  "%s", o);
	free(o);
	o = sample("--mem 64M", "hog 3 8", &st);
	cr_assert_eq(st, 0, "%s", o);
	cr_assert(strstr(o, "3 children: 3 exited, 0 killed"), "%s", o);
	free(o);
}

/* A child's crash is reported with its pid, and --core writes its core beside the named file. */
Test(procs, a_childs_crash_names_it_and_writes_its_core)
{
	char dir[] = "/tmp/sbx-core.XXXXXX";
	e2e_scratch(dir, "true");
	char opts[256], path[512];
	snprintf(opts, sizeof(opts), "--core %s/core", dir);
	int st;
	char *o = sample(opts, "segv", &st);
	cr_assert_eq(st, 0, "%s", o);
	cr_assert(strstr(o, "child: killed by signal 11"), "%s", o);
	cr_assert(strstr(o, "(pid 3)"), "%s", o);
	snprintf(path, sizeof(path), "%s/core.3", dir);
	cr_assert(strstr(o, path), "%s", o);
	cr_assert_eq(access(path, R_OK), 0, "no %s: %s", path, o);
	free(o);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	free(e2e_slurp(cmd, &st));
}

/* alarm and setitimer: a pause, an interval, a read cut short or restarted, fork and execve;
 * and the scheduling and socket calls answered as Linux answers an unprivileged process. */
Test(procs, alarms_and_the_calls_programs_make_on_the_way)
{
	e2e_sample_expect("timers", "--tmp /tmp", "", 0, NULL);
}

/* fallocate's blocks count as written bytes: over --max-write the sandbox ends, named. */
Test(procs, fallocate_counts_toward_max_write)
{
	e2e_sample_expect("timers", "--tmp /tmp --max-write 1M", "falloc 65536", 0,
			  "posix_fallocate 65536: ok\n");
	e2e_sample_expect("timers", "--tmp /tmp --max-write 1M", "falloc 8388608", 123, "");
}

/* The first process's own alarm ends it, as natively (not as a namespace's init, which only
 * signals it handles reach), also across its execve. */
Test(procs, an_alarm_with_no_handler_ends_the_process)
{
	e2e_sample_expect("timers", "", "spin", 128 + 14, NULL);
	e2e_sample_expect("timers", "", "exec", 128 + 14, NULL);
}

#define BASH_STATIC "/bin/bash-static"

/* samples/shell/bash-procs.sh under bash-static, with busybox's applets as the commands in
 * /bin: its stdout is the same as natively, line for line. */
Test(procs, bash_runs_its_process_machinery_as_natively)
{
	need_busybox();
	if (access(BASH_STATIC, X_OK) != 0)
		cr_skip_test(BASH_STATIC
			     " is not installed (scripts/setup.sh installs bash-static)");
	char dir[] = "/tmp/sbx-bash.XXXXXX";
	e2e_scratch(dir, "mkdir bin t && cp " BUSYBOX " bin/busybox && cp " BASH_STATIC
			 " bin/bash && for a in $(bin/busybox --list); do [ -e bin/$a ] || "
			 "ln -s busybox bin/$a; done");
	char cmd[4096];
	int st;
	snprintf(cmd, sizeof(cmd),
		 "cd %s && env -i PATH=%s/bin TMPDIR=%s/t bin/bash " SBX_SOURCE_DIR
		 "/samples/shell/bash-procs.sh 2>/dev/null",
		 dir, dir, dir);
	char *native = e2e_slurp(cmd, &st);
	cr_assert_eq(st, 0, "natively: %s", native);
	cr_assert(strstr(native, "\ndone\n"), "natively: %s", native);
	snprintf(cmd, sizeof(cmd),
		 SANDBOX " --ro %s/bin:/bin --ro " SBX_SOURCE_DIR
			 "/samples/shell/bash-procs.sh:/s.sh --tmp /tmp --env PATH=/bin /bin/bash "
			 "/s.sh 2>/dev/null",
		 dir);
	char *got = e2e_slurp(cmd, &st);
	cr_expect_eq(st, 0, "%s", got);
	cr_expect_str_eq(got, native, "--- sandbox:\n%s--- native:\n%s", got, native);
	free(got);
	free(native);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	free(e2e_slurp(cmd, &st));
}
