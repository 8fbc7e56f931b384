/* Syscall-site patching (guest-abi/kernel/patch.c) as programs see it: every result as on
 * Linux, with the sites rewritten, and the same with --no-patch, which rewrites nothing. The
 * checks are samples/patch.c's; the trap counts are test_trace.c's. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e_util.h"

#define SAMPLES SBX_BUILD_DIR "/samples"
#define PATCH SAMPLES "/patch-glibc"

/* `patch op` under sandbox-run with opts: exit 0 (every check right), "WRONG" nowhere, and
 * `yes` or `no` for whether the kernel rewrote the site. */
static void run(const char *opts, const char *op, const char *what, int patched)
{
	e2e_need_kvm();
	char cmd[1024], want[128];
	snprintf(cmd, sizeof(cmd), SANDBOX " %s --ro " SAMPLES " --stats " PATCH " %s 2>&1", opts,
		 op);
	snprintf(want, sizeof(want), "%s patched %s", what, patched ? "yes" : "no");
	char *o = e2e_expect_output(cmd, 0, want, NULL);
	cr_assert_null(strstr(o, "WRONG"), "%s:\n%s", cmd, o);
	free(o);
}

/* Patched, and with --no-patch not, with the same results. */
static void both(const char *op, const char *what)
{
	run("", op, what, 1);
	run("--no-patch", op, what, 0);
}

Test(patch, both_forms_are_patched_and_answer_as_before)
{
	both("sites", "form A");
	both("sites", "form B");
	both("sites", "form B (Go)");
}

/* Threads: four threads call 48 fresh sites at once, so that first calls race each other and
 * a patch; every site is patched (by whichever thread trapped first, with the others held out
 * of the guest) and every result is right. */
Test(patch, sites_are_patched_while_threads_race_through_them)
{
	e2e_need_kvm();
	char *o =
	    e2e_expect_output(SANDBOX " --ro " SAMPLES " " PATCH " race 4 200 2>&1", 0,
			      "race wrong results: 0\n", "race sites patched 48 of 48\n", NULL);
	free(o);
	o = e2e_expect_output(SANDBOX " --no-patch --ro " SAMPLES " " PATCH " race 4 50 2>&1", 0,
			      "race wrong results: 0\n", "race sites patched 0 of 48\n", NULL);
	free(o);
}

/* A thread waits in a read it entered by a form B site's `syscall` (not patched then: its
 * page was writable); another thread patches the site; the read returns where the old bytes
 * would have taken it, not into the new ones (an `and`, then int3). */
Test(patch, a_thread_waiting_by_a_site_another_patches_returns_through_it)
{
	both("blocked", "under a read");
}

/* The same for a signal handler's saved context, just after that `syscall`: rt_sigreturn
 * goes on in the site's record. */
Test(patch, a_handler_s_saved_context_by_a_site_patched_meanwhile_goes_on)
{
	both("handler", "under a handler");
}

/* A jump straight to a patched site's `syscall` meets the invalid instruction left there and is
 * still that syscall, with the number the jumper put in %eax. */
Test(patch, a_jump_into_a_patched_site_is_still_its_syscall)
{
	both("jump", "before the jumps");
	/* The first jump gave the site its bytes back (a #UD exit per call would cost more than
	 * the trap), so the other two were plain syscalls. */
	char *o =
	    e2e_expect_output(SANDBOX " --stats " PATCH " jump 2>&1", 0,
			      "after the jumps patched no", "1 jumps into a patched site\n", NULL);
	free(o);
}

/* Anonymous code is never patched (a JIT may change it under us); a patched site of the
 * program's own text that the program rewrites runs what it wrote, and is not patched again. */
Test(patch, self_modifying_code_runs_what_it_wrote)
{
	run("", "smc", "rewritten text", 0);
	char *o = e2e_expect_output(SANDBOX " " PATCH " smc 2>&1", 0,
				    "anonymous code unchanged: 0\n", NULL);
	free(o);
}

/* Code mapped from a file after start-up (a library, here the program's own ELF again). */
Test(patch, code_mapped_later_is_patched)
{
	both("later " PATCH, "mapped later");
}

/* The number --stats prints just before label in o. */
static long count_before(const char *o, const char *label)
{
	const char *s = strstr(o, label);
	cr_assert_not_null(s, "no \"%s\" in:\n%s", label, o);
	while (s > o && s[-1] != ' ')
		s--;
	return atol(s);
}

/* A dynamic program's libraries are patched (the sites are in libc.so.6), ld.so's start-up
 * cpuids are rewritten (a stripped file: found by its .eh_frame), and it runs as natively. */
Test(patch, a_dynamic_program_s_library_and_interpreter_sites_are_patched)
{
	e2e_need_kvm();
	int st;
	char *o = e2e_slurp(SANDBOX " --stats " SAMPLES "/hello-dyn-glibc 2>&1", &st);
	cr_assert_eq(st, 0, "%s", o);
	cr_assert_gt(count_before(o, " syscall sites patched"), 0, "no site of libc.so.6:\n%s", o);
	cr_assert_gt(count_before(o, " cpuid sites rewritten at load"), 10,
		     "ld.so's cpuid sites were not rewritten:\n%s", o);
	free(o);
}

/* cpuid sites, rewritten at load (loader/cpuid_sites.c): three forms answer exactly what a
 * cpuid nothing rewrote answers, for every leaf and subleaf; and none is rewritten with
 * --no-patch. */
static void cpuid_run(const char *opts, const char *op, const char *want1, const char *want2)
{
	e2e_need_kvm();
	char cmd[1024];
	for (int musl = 0; musl < 2; musl++) {
		const char *prog = musl ? SAMPLES "/cpuid-musl" : SAMPLES "/cpuid-glibc";
		if (access(prog, X_OK))
			continue; /* no musl-gcc here */
		snprintf(cmd, sizeof(cmd), SANDBOX " %s --stats %s %s 2>&1", opts, prog, op);
		char *o = e2e_expect_output(cmd, 0, want1, want2, NULL);
		cr_assert_null(strstr(o, "WRONG"), "%s:\n%s", cmd, o);
		free(o);
	}
}

Test(patch, cpuid_sites_answer_every_leaf_as_the_host_does)
{
	cpuid_run("", "check", "form a patched yes\nform b patched yes\nform c patched yes\n",
		  ", wrong 0\n");
	cpuid_run("--no-patch", "check",
		  "form a patched no\nform b patched no\nform c patched no\n", ", wrong 0\n");
}

/* A jump from another function into a rewritten site's second instruction meets an invalid
 * instruction; the monitor gives the site its bytes back and the jump goes on there. Four
 * threads jumping in at once: the reports come one at a time, and those after the first find
 * the site's own bytes back (restored_resume), not a SIGILL. */
Test(patch, a_jump_into_a_cpuid_site_runs_its_own_instructions)
{
	cpuid_run("", "jump", "before the jump patched yes\nafter the jump patched no\n",
		  "jump wrong 0\n");
	cpuid_run("", "jump", "1 jumps into a patched site\n", NULL);
	for (int i = 0; i < 5; i++)
		cpuid_run("", "jumprace", "jumprace wrong 0, patched no\n",
			  " jumps into a patched site\n");
}

/* Four threads, each on its own vCPU's kernel stack in the record; and a timer whose signal
 * lands while the records run, its handler asking too. */
Test(patch, cpuid_sites_answer_from_threads_and_signal_handlers)
{
	cpuid_run("", "threads 5", "threads wrong 0\n", NULL);
	cpuid_run("", "signals 10", "signals wrong 0, in handlers 0, handled some\n", NULL);
}
