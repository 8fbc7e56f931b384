/* End-to-end: real VMs running the samples and real-world static binaries, compared with the
 * same binaries run natively (stdout and exit status must be identical). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e_util.h"

#define SAMPLES SBX_BUILD_DIR "/samples/"

struct out {
	char *data;
	size_t len;
	int status;
	char err[4096];
};

/* Runs a shell command; stdout is captured whole (NUL-terminated), the first 4 KiB of stderr
 * kept. */
static void run(const char *cmd, struct out *o)
{
	o->data = e2e_run_err(cmd, &o->status, &o->len, o->err, sizeof(o->err));
}

#define need_kvm e2e_need_kvm

static const char *const polls[] = {"on", "off"};
static const char *const libcs[] = {"glibc", "musl"};

/* Same stdout and status in the sandbox as natively, for both libcs and both I/O modes. */
static void same_as_native_env(const char *sandbox_opts, const char *native_prefix,
			       const char *prog_and_args, const char *redir)
{
	need_kvm();
	for (int l = 0; l < 2; l++) {
		char native[2048], cmd[4096];
		snprintf(native, sizeof(native), "%s", prog_and_args);
		char *dash = strstr(native, "@LIBC@");
		if (dash) {
			char rest[1024];
			snprintf(rest, sizeof(rest), "%s", dash + 6);
			snprintf(dash, sizeof(native) - (size_t)(dash - native), "%s%s", libcs[l],
				 rest);
		}
		struct out want, got;
		snprintf(cmd, sizeof(cmd), "%s %s %s", native_prefix, native, redir);
		run(cmd, &want);
		for (int p = 0; p < 2; p++) {
			/* scripts/test-cpl0.sh sets SBX_TEST_CPL=0 on hardware KVM. */
			const char *cpl = getenv("SBX_TEST_CPL");
			snprintf(cmd, sizeof(cmd), "%s --io-poll %s %s%s %s %s %s", SANDBOX,
				 polls[p], cpl ? "--cpl " : "", cpl ? cpl : "", sandbox_opts,
				 native, redir);
			run(cmd, &got);
			cr_expect_eq(got.status, want.status,
				     "%s: status %d, native %d; stderr: %s", cmd, got.status,
				     want.status, got.err);
			cr_expect(
			    got.len == want.len && memcmp(got.data, want.data, got.len) == 0,
			    "%s: stdout differs (%zu vs %zu bytes native)\n--- sandbox:\n%.*s\n--- "
			    "native:\n%.*s\nstderr: %s",
			    cmd, got.len, want.len, (int)(got.len > 600 ? 600 : got.len), got.data,
			    (int)(want.len > 600 ? 600 : want.len), want.data, got.err);
			free(got.data);
		}
		free(want.data);
		if (!dash)
			break;
	}
}

static void same_as_native(const char *sandbox_opts, const char *prog_and_args, const char *redir)
{
	same_as_native_env(sandbox_opts, "", prog_and_args, redir);
}

TestSuite(e2e, .timeout = 120);

/* Processes whose command line is `sleep ARG`. */
static int sleepers(const char *arg)
{
	DIR *d = opendir("/proc");
	cr_assert_not_null(d);
	int found = 0;
	for (struct dirent *e; (e = readdir(d));) {
		char path[300], line[64] = {0};
		snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t n = fread(line, 1, sizeof(line) - 1, f);
		fclose(f);
		found += n > 6 && !strcmp(line, "sleep") && !strcmp(line + 6, arg);
	}
	closedir(d);
	return found;
}

static int sleepers_gone(const char *arg)
{
	for (int i = 0; i < 500 && sleepers(arg); i++)
		usleep(10000);
	return !sleepers(arg);
}

/* The tests' own bound (e2e_run): a command still running at it is killed with everything it
 * started, a sandbox waiting for input included, and fails as E2E_TIMED_OUT with its output so
 * far; and a test process that dies (Criterion's timeout) takes its command's group along. */
Test(e2e, a_hung_command_is_killed_with_all_it_started)
{
	need_kvm();
	e2e_set_bound(2);
	int st;
	char *o = e2e_slurp("sleep 3017 & echo started; sleep 3018 | " SANDBOX " " SAMPLES
			    "cat-glibc; echo never",
			    &st);
	cr_expect_eq(st, E2E_TIMED_OUT, "status %d", st);
	cr_expect_str_eq(o, "started\n");
	free(o);
	cr_expect(sleepers_gone("3017") && sleepers_gone("3018"),
		  "the command's processes live on");
	pid_t c = fork();
	cr_assert_geq(c, 0);
	if (c == 0) {
		e2e_set_bound(0);
		free(e2e_slurp("sleep 3019", &st));
		_exit(0);
	}
	for (int i = 0; i < 500 && !sleepers("3019"); i++)
		usleep(10000);
	cr_expect(sleepers("3019"), "the command never started");
	kill(c, SIGKILL);
	waitpid(c, &st, 0);
	cr_expect(sleepers_gone("3019"), "a test process's end left its command running");
}

Test(e2e, hello)
{
	same_as_native("", SAMPLES "hello-@LIBC@", "");
	same_as_native("", SAMPLES "hello-pie-@LIBC@", "");
	same_as_native("", SAMPLES "hello-stripped-@LIBC@", "");
}

Test(e2e, args_and_environment)
{
	same_as_native_env("--env FOO=bar --env PATH=/bin:/usr/bin",
			   "env -i FOO=bar PATH=/bin:/usr/bin",
			   SAMPLES "args-@LIBC@ a 'b c' '' --x", "");
}

Test(e2e, exit_statuses)
{
	same_as_native("", SAMPLES "exitcode-@LIBC@ 0", "");
	same_as_native("", SAMPLES "exitcode-@LIBC@ 42", "");
	same_as_native("", SAMPLES "exitcode-@LIBC@ 255", "");
	same_as_native("", SAMPLES "exitcode-@LIBC@ abort", "");
	same_as_native("", SAMPLES "nullptr-@LIBC@", "");
}

/* Every buffer a syscall reads or writes is checked against the program's mappings and their
 * permissions: text, rodata, read-only and PROT_NONE mappings, holes, the kernel's own pages,
 * ranges off the end of a mapping and bad iovec elements give what Linux gives (EFAULT, or a
 * partial transfer), valid buffers of every kind still work, and a signal frame that cannot be
 * written kills with SIGSEGV. */
Test(e2e, bad_buffers_are_efault_as_on_linux)
{
	same_as_native("--ro " SBX_BUILD_DIR "/samples",
		       SAMPLES "badbuf-@LIBC@ " SBX_BUILD_DIR "/samples",
		       "< " SAMPLES "hello-glibc");
	same_as_native("", SAMPLES "badbuf-@LIBC@ sigframe", "");
	same_as_native("", SAMPLES "badbuf-@LIBC@ sigframe-fault", "");
}

/* The page tables follow mmap, mprotect, munmap, mremap, madvise and brk: guard pages,
 * read-only pages, a W^X JIT, a file mapped PROT_EXEC, memory after munmap, and a fault with
 * no handler, all as natively (samples/memprot.c). */
Test(e2e, page_protections_hold_as_on_linux)
{
	same_as_native("--ro " SBX_BUILD_DIR "/samples",
		       SAMPLES "memprot-@LIBC@ " SAMPLES "memprot-@LIBC@", "");
	same_as_native("", SAMPLES "memprot-@LIBC@ guard", "");
}

/* The address space is larger than RAM (256 MiB here): reservations of 8 GiB and 512 MiB,
 * MAP_FIXED far above RAM, 2 GiB mapped and unmapped in turn, mremap, and I/O into memory
 * whose pages are scattered in RAM, all as natively (samples/vaspace.c). */
Test(e2e, the_address_space_is_larger_than_ram)
{
	same_as_native("--mem 256M --tmp /tmp --ro " SBX_BUILD_DIR "/samples",
		       SAMPLES "vaspace-@LIBC@ " SAMPLES "vaspace-@LIBC@ /tmp/sbx-vaspace.out", "");
}

/* Memory taken on first touch counts when touched: writing more MAP_NORESERVE memory than
 * --mem holds ends the program as Linux's OOM killer would (SIGKILL, 137), and the report says
 * that RAM ran out, not that the address was bad. */
Test(e2e, first_touches_past_the_memory_limit_are_an_out_of_memory_kill)
{
	need_kvm();
	struct out o;
	run(SANDBOX " --mem 64M " SAMPLES "vaspace-glibc touch 32", &o);
	cr_assert_eq(o.status, 0, "%s", o.err);
	cr_assert(strstr(o.data, "touched 32 MiB"), "%s", o.data);
	free(o.data);
	run(SANDBOX " --mem 64M " SAMPLES "vaspace-glibc touch 200", &o);
	cr_assert_eq(o.status, 137, "%s", o.err);
	cr_assert(strstr(o.data, "mapped 200 MiB") && !strstr(o.data, "touched"), "%s", o.data);
	cr_assert(strstr(o.err, "SIGKILL: out of memory: the first touch of 0x") &&
		      strstr(o.err, "all 64 MiB of RAM in use"),
		  "%s", o.err);
	free(o.data);
}

Test(e2e, large_output_and_stdin)
{
	same_as_native("", SAMPLES "bigout-@LIBC@ 3", "");
	same_as_native("", SAMPLES "bigout-@LIBC@ 1", "| head -c 100000");
	same_as_native("", SAMPLES "echo_stdin-@LIBC@", "< " SAMPLES "bigout-glibc");
	same_as_native("", SAMPLES "echo_stdin-@LIBC@", "< /dev/null");
}

/* Handlers for SIGSEGV (siglongjmp, on the alternate stack too), SIGTRAP (returning),
 * SIGABRT; SA_RESETHAND; then a fatal fault: the same output and status as natively. */
Test(e2e, signal_handlers_run_as_on_linux)
{
	same_as_native("", SAMPLES "signals-@LIBC@", "");
}

/* The extended state in signal frames: sized for what is enabled (an AT_MINSIGSTKSZ
 * alternate stack holds the frame), vector registers restored, AMX only on request. */
Test(e2e, extended_state_in_signal_frames_as_on_linux)
{
	same_as_native("", SAMPLES "xstate-@LIBC@", "");
}

Test(e2e, compute_time_and_memory)
{
	same_as_native("", SAMPLES "compute-@LIBC@ 300000", "");
	same_as_native("", SAMPLES "timeinfo-@LIBC@", "");
	same_as_native("--mem 512M", SAMPLES "memory-@LIBC@", "");
}

/* An image with big data segments (bigbss: 80 MiB of .bss, 2 MiB of .data) runs as natively,
 * both I/O modes (the backing is queued for the poller, or done at load), and --stats says how
 * much of it was backed ahead: all of .data and .bss up to 64 MiB in all (boot.c,
 * populate_data), the same when a shell execs it; a small image gets no such line. */
Test(e2e, big_data_segments_are_backed_ahead)
{
	same_as_native("", SAMPLES "bigbss-@LIBC@", "");
	for (int p = 0; p < 2; p++) {
		struct out o;
		char cmd[512];
		snprintf(cmd, sizeof(cmd), "%s --io-poll %s --stats %sbigbss-glibc", SANDBOX,
			 polls[p], SAMPLES);
		run(cmd, &o);
		cr_expect(o.status == 0 && strstr(o.data, "bigbss ok"), "%d %s %s", o.status,
			  o.data, o.err);
		cr_expect(strstr(o.err, "stats: 65536 KiB of the image's data backed ahead"), "%s",
			  o.err);
		free(o.data);
	}
	struct out o;
	run(SANDBOX " --stats " SAMPLES "hello-glibc", &o);
	cr_expect(o.status == 0 && !strstr(o.err, "backed ahead"), "%s", o.err);
	free(o.data);
	if (access("/bin/busybox", X_OK) != 0)
		cr_skip_test("busybox-static is not installed (scripts/setup.sh installs it)");
	run(SANDBOX " --stats --ro /bin/busybox --ro " SAMPLES " /bin/busybox sh -c 'exec " SAMPLES
		    "bigbss-musl'",
	    &o);
	cr_expect(o.status == 0 && strstr(o.data, "bigbss ok") &&
		      strstr(o.err, "stats: 65536 KiB of the image's data backed ahead"),
		  "%d %s %s", o.status, o.data, o.err);
	free(o.data);
}

static char scratch[64];

static void make_tree(void)
{
	snprintf(scratch, sizeof(scratch), "/tmp/sbx-e2e-XXXXXX");
	e2e_scratch(scratch, "mkdir -p fs/d1 w && printf 'one\\n' > fs/f1 && printf 'two two\\n' > "
			     "fs/f2 && ln -s f1 fs/link && seq 1 3000 | sort -R "
			     "--random-source=/dev/zero > nums");
}

static void remove_tree(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", scratch);
	cr_assert_eq(system(cmd), 0);
}

Test(e2e, files, .init = make_tree, .fini = remove_tree)
{
	char opts[256], prog[512];
	snprintf(opts, sizeof(opts), "--rw %s", scratch);
	snprintf(prog, sizeof(prog), SAMPLES "cat-@LIBC@ %s/fs/f1 %s/fs/link %s/missing", scratch,
		 scratch, scratch);
	same_as_native(opts, prog, "");
	snprintf(prog, sizeof(prog), SAMPLES "fsops-@LIBC@ %s/fs", scratch);
	same_as_native(opts, prog, "");
	/* writefile leaves nothing behind, so it can run once per configuration. */
	snprintf(prog, sizeof(prog), SAMPLES "writefile-@LIBC@ %s/w", scratch);
	same_as_native(opts, prog, "");
}

Test(e2e, busybox_applets, .init = make_tree, .fini = remove_tree)
{
	if (access("/bin/busybox", X_OK) != 0)
		cr_skip_test("busybox-static is not installed (scripts/setup.sh installs it)");
	static const char *const applets[] = {
	    "sha256sum",   "sort -n",	    "awk '{s+=$1} END {print s}'",
	    "sed s/1/X/g", "od -A x -t x1", "wc",
	    "md5sum",	   "uniq -c",	    "head -n 5",
	    "tail -n 5",   "cut -c1-2",	    "grep -c 7",
	    "tr 0-9 a-j <"};
	char opts[256], prog[512];
	snprintf(opts, sizeof(opts), "--ro %s", scratch);
	for (size_t i = 0; i < sizeof(applets) / sizeof(applets[0]); i++) {
		snprintf(prog, sizeof(prog), "/bin/busybox %s %s/nums", applets[i], scratch);
		same_as_native(opts, prog, "");
	}
}

Test(e2e, unimplemented_syscalls_are_enosys_and_named)
{
	need_kvm();
	struct out o;
	run(SANDBOX " " SAMPLES "nosys-musl", &o);
	cr_assert_eq(o.status, 0);
	cr_assert(strstr(o.data, "io_uring_setup: ENOSYS") && strstr(o.data, "ptrace: ENOSYS"),
		  "%.*s", (int)o.len, o.data);
	cr_assert(strstr(o.err, "unimplemented syscalls called") && strstr(o.err, "io_uring_setup"),
		  "%s", o.err);
	/* Every call by its name, none by its number. */
	cr_assert(strstr(o.err, "shmget x1") && strstr(o.err, "msgget x1") &&
		      !strstr(o.err, "syscall "),
		  "%s", o.err);
	free(o.data);
}

Test(e2e, strace_names_every_call)
{
	need_kvm();
	char *out = e2e_expect_output(SANDBOX " --strace " SAMPLES "traceme-musl fchown 1 2>&1", 0,
				      "fchown(1, -1, -1) = 0", NULL);
	cr_expect(!strstr(out, "syscall_"), "%s", out);
	free(out);
}

/* RLIMIT_NOFILE set by the program is the limit its fds get: the answers Linux gives. */
Test(e2e, open_files_limit_is_enforced)
{
	need_kvm();
	for (int l = 0; l < 2; l++) {
		char cmd[512];
		struct out n, o;
		snprintf(cmd, sizeof(cmd), SAMPLES "nofile-%s limits", libcs[l]);
		run(cmd, &n);
		snprintf(cmd, sizeof(cmd), SANDBOX " " SAMPLES "nofile-%s limits", libcs[l]);
		run(cmd, &o);
		cr_assert_eq(o.status, 0, "%s: %s\n%s", cmd, o.err, o.data);
		cr_assert(!strncmp(o.data, "initial soft 1024 hard 1024\n", 28), "%s", o.data);
		/* After the first line (the host's own limits natively), the same as Linux. */
		const char *a = strchr(n.data, '\n'), *b = strchr(o.data, '\n');
		cr_assert(a && b && !strcmp(a, b), "native:\n%s\nsandbox:\n%s", n.data, o.data);
		cr_assert(strstr(o.data, "dup: up to fd 41, then EMFILE\n"), "%s", o.data);
		free(n.data);
		free(o.data);
	}
}

/* CPU time is time on the CPU: sleeping, polling and blocking reads leave it alone, and so
 * does the time the host ran something else. The guest prints the CPU time and the
 * CLOCK_MONOTONIC time that passed over its main(): its CPU time is at most that time less what
 * it waited, whatever the host's speed or load, so a wait of `waited` ms
 * must be missing from it (half of it counted, for a wait the shell's timing cuts short). Every
 * other CPU clock agrees with the process's (to the 10 ms of times()), and work counts. */
static void cpu_times(const char *cmd, long waited, long min_cpu)
{
	struct out o;
	run(cmd, &o);
	cr_assert_eq(o.status, 0, "%s: %s", cmd, o.err);
	long cpu = -1, wall = -1, process = -1;
	const char *p = strstr(o.data, "span ");
	cr_assert(p && sscanf(p, "span cpu %ld wall %ld", &cpu, &wall) == 2, "%s: %s", cmd, o.data);
	/* One thread: never more CPU than time (steal time, ABI 1.23, is neither). */
	cr_expect(cpu <= wall + 20, "%s: %ld ms of CPU time in %ld ms\n%s", cmd, cpu, wall, o.data);
	/* `busy` counts the reads of its CPU clock that went back. */
	cr_expect(!strstr(o.data, "backwards ") || strstr(o.data, "backwards 0\n"),
		  "%s: the CPU clock went back\n%s", cmd, o.data);
	if (waited)
		cr_expect(cpu >= 0 && cpu <= wall - waited / 2,
			  "%s: %ld ms of CPU time in %ld ms that held a wait of %ld ms\n%s", cmd,
			  cpu, wall, waited, o.data);
	p = strstr(o.data, "process ");
	cr_assert(p && sscanf(p, "process %ld", &process) == 1, "%s", o.data);
	cr_expect_geq(process, min_cpu, "%s: process %ld ms\n%s", cmd, process, o.data);
	static const char *const clocks[] = {"thread", "rusage", "times", "clock"};
	for (int i = 0; i < 4; i++) {
		char key[32];
		snprintf(key, sizeof(key), "\n%s ", clocks[i]);
		p = strstr(o.data, key);
		long v = p ? atol(p + strlen(key)) : -1;
		cr_expect(p && v >= process - 20 && v <= process + 20,
			  "%s: %s %ld ms, the process clock %ld ms\n%s", cmd, clocks[i], v, process,
			  o.data);
	}
	free(o.data);
}

Test(e2e, cpu_time_leaves_out_waiting)
{
	need_kvm();
	char cmd[1024];
	for (int l = 0; l < 2; l++) {
		for (int p = 0; p < 2; p++) {
			const char *opt = p ? "--io-poll on " : "--io-poll off ";
			snprintf(cmd, sizeof(cmd), SANDBOX " %s" SAMPLES "cputime-%s sleep 500",
				 opt, libcs[l]);
			cpu_times(cmd, 500, 0);
			/* stdin a FIFO that the shell holds open for writing and never writes. */
			snprintf(cmd, sizeof(cmd),
				 "D=$(mktemp -d); mkfifo $D/f; " SANDBOX " %s" SAMPLES
				 "cputime-%s poll 500 <>$D/f; s=$?; rm -r $D; exit $s",
				 opt, libcs[l]);
			cpu_times(cmd, 500, 0);
			/* A read of a pipe that blocks: the data comes a second after the program
			 * said it is reading. */
			snprintf(
			    cmd, sizeof(cmd),
			    "bash -c 'coproc S { exec " SANDBOX " %s" SAMPLES
			    "cputime-%s read; }; read -r l <&${S[0]}; sleep 1; echo x >&${S[1]}; "
			    "eval \"exec ${S[1]}>&-\"; cat <&${S[0]}'",
			    opt, libcs[l]);
			cpu_times(cmd, 1000, 0);
		}
		/* Work still counts: the loop ends once the CPU clock has moved 300 ms, which takes
		 * longer on a loaded host (the time another host thread ran is not the guest's). */
		snprintf(cmd, sizeof(cmd), SANDBOX " " SAMPLES "cputime-%s busy 300", libcs[l]);
		cpu_times(cmd, 0, 200);
	}
}

Test(e2e, strace_prints_calls)
{
	need_kvm();
	struct out o;
	run(SANDBOX " --strace " SAMPLES "hello-glibc", &o);
	cr_assert_eq(o.status, 0);
	cr_assert(strstr(o.err, "write(1, \"hello, world\\n\", 13) = 13"), "%s", o.err);
	cr_assert(strstr(o.err, "exit_group(0) = ?"), "%s", o.err);
	free(o.data);
}

Test(e2e, faults_exit_128_plus_signal_with_a_reason)
{
	need_kvm();
	struct out o;
	run(SANDBOX " " SAMPLES "nullptr-glibc", &o);
	cr_assert_eq(o.status, 139);
	cr_assert(strstr(o.err, "SIGSEGV") && strstr(o.err, "0x0") && strstr(o.err, "rip 0x"), "%s",
		  o.err);
	free(o.data);
}

/* The CPL0 entry, return and exception paths, with a guest the PVM emulator can run. */
Test(e2e, cpl0_and_cpl3_paths)
{
	need_kvm();
	static const char *const cpls[] = {"0", "3"};
	for (int c = 0; c < 2; c++) {
		for (int p = 0; p < 2; p++) {
			char cmd[512];
			struct out o;
			snprintf(cmd, sizeof(cmd), SANDBOX " --cpl %s --io-poll %s " SAMPLES "cpl0",
				 cpls[c], polls[p]);
			run(cmd, &o);
			cr_expect_eq(o.status, 7, "%s: %d %s", cmd, o.status, o.err);
			cr_expect(o.len == 21 && memcmp(o.data, "cpl0: hello\ncpl0: ok\n", 21) == 0,
				  "%s: %.*s", cmd, (int)o.len, o.data);
			free(o.data);
			snprintf(cmd, sizeof(cmd),
				 SANDBOX " --cpl %s --io-poll %s " SAMPLES "cpl0 ud2", cpls[c],
				 polls[p]);
			run(cmd, &o);
			cr_expect_eq(o.status, 132, "%s: %d %s", cmd, o.status, o.err);
			cr_expect(strstr(o.err, "SIGILL: illegal instruction"), "%s", o.err);
			free(o.data);
		}
	}
}

Test(e2e, bad_programs_get_one_line_errors)
{
	need_kvm();
	struct out o;
	/* A dynamic program's: dynamic_users_mount_wins_and_errors_are_named. */
	run(SANDBOX " /nonexistent/prog", &o);
	cr_assert_eq(o.status, 127);
	free(o.data);
	run(SANDBOX " --mem 1K " SAMPLES "hello-glibc", &o);
	cr_assert_eq(o.status, 125);
	cr_assert(strstr(o.err, "guest memory"), "%s", o.err);
	free(o.data);
	run(SANDBOX " --bogus " SAMPLES "hello-glibc", &o);
	cr_assert_eq(o.status, 125);
	free(o.data);
}

Test(e2e, every_broken_elf_fixture_is_refused_cleanly)
{
	need_kvm();
	struct out o;
	run("for f in " SBX_SOURCE_DIR "/tests/data/elf/bad-*.elf; do " SANDBOX
	    " $f >/dev/null 2>&1; s=$?; [ $s -eq 125 ] || echo \"$f: status $s\"; done",
	    &o);
	cr_assert_eq(o.len, 0, "%.*s", (int)o.len, o.data);
	free(o.data);
}

/* clock_gettime and gettimeofday come from the vDSO: no syscall, for glibc and musl alike. */
Test(e2e, time_is_answered_by_the_vdso)
{
	need_kvm();
	for (int l = 0; l < 2; l++) {
		char cmd[512];
		struct out o;
		snprintf(cmd, sizeof(cmd),
			 SANDBOX " --strace " SBX_BUILD_DIR "/bench/guest/sysbench-%s clock 1000",
			 libcs[l]);
		run(cmd, &o);
		cr_assert_eq(o.status, 0, "%s: %s", cmd, o.err);
		int n = 0;
		for (const char *p = o.err; (p = strstr(p, "clock_gettime(")); p++)
			n++;
		cr_expect_lt(n, 10, "%s: %d clock_gettime syscalls for 1000 calls", cmd, n);
		free(o.data);
	}
}

/* Dynamic programs (issue 18): the loader maps the program and its interpreter, the default
 * view shows the interpreter, ld.so.cache and the DT_NEEDED closure, nothing else. */
Test(e2e, dynamic_musl_hello)
{
	/* musl's libc is its interpreter, which the loader maps with its own permissions. */
	if (access(SAMPLES "hello-dyn-musl", X_OK) != 0)
		cr_skip_test("no musl-gcc: hello-dyn-musl was not built");
	same_as_native("", SAMPLES "hello-dyn-musl", "");
}

Test(e2e, dynamic_default_view_is_least)
{
	need_kvm();
	struct out o;
	run(SANDBOX " --print-policy /bin/true", &o);
	cr_expect_eq(o.status, 0, "%s", o.err);
	cr_expect(strstr(o.data, "\"guest\": \"/lib64/ld-linux-x86-64.so.2\""), "%s", o.data);
	cr_expect(strstr(o.data, "\"guest\": \"/etc/ld.so.cache\""), "%s", o.data);
	cr_expect(strstr(o.data, "\"guest\": \"/lib/x86_64-linux-gnu/libc.so.6\""), "%s", o.data);
	cr_expect(!strstr(o.data, "\"guest\": \"/usr\"") && !strstr(o.data, "libm.so"), "%s",
		  o.data);
	free(o.data);
	/* ld.so opens the cache and libc, and nothing else of the host is there. */
	run(SANDBOX " --strace /bin/true", &o);
	cr_expect(strstr(o.err, "openat(AT_FDCWD, \"/etc/ld.so.cache\", 0x80000, 0x0) = 3"), "%s",
		  o.err);
	cr_expect(strstr(o.err, "openat(AT_FDCWD, \"/lib/x86_64-linux-gnu/libc.so.6\", 0x80000, "
				"0x0) = 3"),
		  "%s", o.err);
	free(o.data);
}

Test(e2e, dynamic_users_mount_wins_and_errors_are_named)
{
	need_kvm();
	/* The user's mount at the interpreter's path decides what it is: here not ld.so. */
	char *out = e2e_expect_output(
	    SANDBOX " --ro /dev/null:/lib64/ld-linux-x86-64.so.2 " SAMPLES "hello-dyn-glibc 2>&1",
	    125,
	    "the interpreter /lib64/ld-linux-x86-64.so.2 is not an x86-64 shared object: add --ro "
	    "/lib64/ld-linux-x86-64.so.2",
	    NULL);
	cr_expect_eq(strchr(out, '\n'), out + strlen(out) - 1, "one line: %s", out);
	free(out);
	/* --no-libs: no default view, so the program names what it lacks; the policy says so. */
	free(e2e_expect_output(SANDBOX " --no-libs " SAMPLES "hello-dyn-glibc 2>&1", 125,
			       "/lib64/ld-linux-x86-64.so.2 is not visible in the sandbox", NULL));
	out = e2e_expect_output(SANDBOX " --no-libs --print-policy /bin/true", 0, "\"libs\": false",
				NULL);
	cr_expect(!strstr(out, "libc.so.6"), "%s", out);
	free(out);
}

/* A library loaded with dlopen is not in the default view: the program fails with its own
 * message, and the sandbox names the file and the flag; with the flag it runs as natively. */
Test(e2e, dynamic_dlopen_needs_a_mount_and_says_which)
{
	need_kvm();
	free(e2e_expect_output(SANDBOX " " SAMPLES "dlopen-dyn-glibc 2>&1", 1,
			       "libm.so.6: cannot open shared object file",
			       "looked for files the host has but the sandbox does not show",
			       "--ro /lib/x86_64-linux-gnu/libm.so.6", NULL));
	same_as_native("--ro /lib --ro /usr/lib", SAMPLES "dlopen-dyn-glibc", "");
}

/* Code ld.so maps from a file (libc.so.6, PROT_EXEC) executes: the page tables follow mmap. */
Test(e2e, dynamic_true)
{
	need_kvm();
	struct out o;
	run(SANDBOX " /bin/true", &o);
	cr_expect_eq(o.status, 0, "%s", o.err);
	free(o.data);
	same_as_native("", SAMPLES "hello-dyn-glibc", "");
	/* ld.so run as the program: ET_DYN without PT_INTERP, no default view. */
	same_as_native("--ro /lib64/ld-linux-x86-64.so.2 --ro /etc/ld.so.cache "
		       "--ro /lib/x86_64-linux-gnu/libc.so.6 --ro " SBX_BUILD_DIR "/samples",
		       "/lib64/ld-linux-x86-64.so.2 " SAMPLES "hello-dyn-glibc", "");
}

/* Debian's layout given as mounts: /lib64 -> usr/lib64, whose ld-linux-x86-64.so.2 is an
 * absolute link into /lib, resolved in the sandbox's own namespace as a mount namespace would
 * (issue 18's "given --ro /usr --ro /lib --ro /lib64"). */
/* A program that changes its terminal's modes (an editor's raw mode, a REPL's) and ends
 * without putting them back: sandbox-run does, once the run is over. script(1) gives both
 * a pseudo-terminal. */
Test(e2e, terminal_modes_the_program_changes_are_put_back)
{
	need_kvm();
	if (access("/usr/bin/script", X_OK) != 0 || access("/bin/busybox", X_OK) != 0)
		cr_skip_test("script(1) or /bin/busybox is not installed");
	struct out o;
	run("/usr/bin/script -qec \"" SANDBOX " --ro /bin/busybox /bin/busybox sh -c "
	    "'/bin/busybox stty -echo; /bin/busybox stty -a'; echo rc=\\$?; /bin/busybox stty -a\" "
	    "/dev/null",
	    &o);
	const char *rc = strstr(o.data, "rc=0");
	cr_assert_not_null(rc, "%s\n%s", o.data, o.err);
	cr_expect(memmem(o.data, (size_t)(rc - o.data), "-echo ", 6) != NULL,
		  "the program's stty did not take: %s", o.data);
	cr_expect(strstr(rc, " echo ") && !strstr(rc, "-echo "), "modes not put back: %s", rc);
	free(o.data);
}

Test(e2e, dynamic_with_the_system_directories_mounted)
{
	need_kvm();
	if (access("/lib64/ld-linux-x86-64.so.2", R_OK) != 0 || access("/lib", R_OK) != 0)
		cr_skip_test("no /lib64/ld-linux-x86-64.so.2 or /lib on this host");
	same_as_native("--ro /usr --ro /lib --ro /lib64", "/bin/true", "");
	same_as_native("--ro /usr --ro /lib --ro /lib64", "/bin/ls /lib64 /usr", "");
	same_as_native("--ro /usr --ro /lib --ro /lib64", "/bin/ls -L /lib64/ld-linux-x86-64.so.2",
		       "");
}

/* Issue 18's list of Debian's own dynamic programs, given --ro /usr --ro /lib --ro /lib64: the
 * same stdout and status as natively (a missing program is skipped, said so). Inputs come
 * from the repository's sources (read-only) and from the programs themselves. */
Test(e2e, debian_programs_run_as_natively, .timeout = 300)
{
	need_kvm();
	static const struct {
		const char *bin, *args;
	} progs[] = {
	    {"/usr/bin/ls", "-lan " SBX_SOURCE_DIR "/samples"},
	    {"/usr/bin/sort", "-r " SBX_SOURCE_DIR "/samples/CMakeLists.txt"},
	    {"/usr/bin/find", SBX_SOURCE_DIR "/guest-abi -name '*.c' -size +2k"},
	    {"/usr/bin/awk",
	     "'/add_/ {n++} END {print n, NR}' " SBX_SOURCE_DIR "/samples/CMakeLists.txt"},
	    {"/usr/bin/gzip", "-c -9 " SBX_SOURCE_DIR "/README.md"},
	    {"/usr/bin/sha256sum", SBX_SOURCE_DIR "/README.md " SBX_SOURCE_DIR "/docs/policy.md"},
	    {"/usr/bin/python3",
	     "-c 'import json, hashlib, re, sqlite3; d = sqlite3.connect(\":memory:\"); "
	     "d.execute(\"create table t(x)\"); d.executemany(\"insert into t values (?)\", "
	     "[(i,) for i in range(100)]); s = d.execute(\"select sum(x) from t\").fetchone(); "
	     "print(json.dumps({\"sum\": s[0], \"md5\": hashlib.md5(b\"x\").hexdigest(), "
	     "\"re\": re.findall(r\"\\d+\", \"a1b22c333\")}))'"},
	    /* subprocess from threads: fork from a threaded process, with iconv's shared mapping.
	     */
	    {"/usr/bin/python3",
	     "-c 'import subprocess, threading; r = {}; ts = [threading.Thread(target=lambda i=i: "
	     "r.__setitem__(i, subprocess.run([\"/usr/bin/expr\", str(i), \"+\", \"1\"], "
	     "capture_output=True).stdout)) for i in range(3)]; [t.start() for t in ts]; "
	     "[t.join() for t in ts]; print(sorted(r.items()))'"},
	    /* multiprocessing: its locks are sem_open's (/dev/shm), a Value is a /dev/shm file
	     * mapped MAP_SHARED, and their futexes are waited on and woken across processes. */
	    {"/usr/bin/python3",
	     "-c 'import multiprocessing as mp, concurrent.futures as cf\n"
	     "def inc(v, n):\n"
	     "    for _ in range(n):\n"
	     "        with v.get_lock(): v.value += 1\n"
	     "q = mp.Queue(); p = mp.Process(target=q.put, args=(41,)); p.start(); "
	     "print(q.get() + 1); p.join()\n"
	     "with mp.Pool(2) as pool: print(sum(pool.map(abs, range(-50, 0))))\n"
	     "with cf.ProcessPoolExecutor(2) as ex: print(sum(ex.map(abs, range(-10, 0))))\n"
	     "v = mp.Value(\"i\", 0); ps = [mp.Process(target=inc, args=(v, 500)) for _ in "
	     "range(2)]\n"
	     "[x.start() for x in ps]; [x.join() for x in ps]; print(v.value)'"},
	    {"/usr/bin/perl", "-e 'use List::Util qw(sum); my %h = map { $_ => $_ * 2 } 1..50; "
			      "print sum(values %h), \"\\n\"; exit 3'"},
	    {"/usr/bin/sqlite3",
	     ":memory: 'create table t(a); insert into t values (1),(2),(3); select sum(a), "
	     "group_concat(a) from t;'"},
	};
	char opts[512];
	snprintf(opts, sizeof(opts), "--ro /usr --ro /lib --ro /lib64 --ro %s", SBX_SOURCE_DIR);
	for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		if (access(progs[i].bin, X_OK) != 0) {
			cr_log_warn("%s is not installed: skipped", progs[i].bin);
			continue;
		}
		char cmd[2048];
		snprintf(cmd, sizeof(cmd), "%s %s", progs[i].bin, progs[i].args);
		same_as_native(opts, cmd, "");
	}
}

Test(e2e, dynamic_ls_with_data)
{
	need_kvm();
	/* `--ro DIR /bin/ls DIR` with no other flag. */
	same_as_native("--ro " SBX_SOURCE_DIR "/samples", "/bin/ls " SBX_SOURCE_DIR "/samples", "");
	/* ls -l asks for extended attributes (ACLs, SELinux labels): none, as on a file system
	 * without them, never ENOSYS (ls then printed an error for every file). */
	struct out o;
	run(SANDBOX " --ro " SBX_SOURCE_DIR "/samples /bin/ls -l " SBX_SOURCE_DIR
		    "/samples/README.md",
	    &o);
	cr_expect_eq(o.status, 0, "%s", o.err);
	cr_expect(strstr(o.data, "README.md"), "%s", o.data);
	cr_expect(!strstr(o.err, "xattr") && !strstr(o.err, "not implemented"), "%s", o.err);
	free(o.data);
}

/* mlock's family and membarrier answer as Linux does; socket() is refused (no network), said
 * under -v and not among the unimplemented calls. */
Test(e2e, memory_locks_barriers_and_refused_sockets)
{
	need_kvm();
	for (int verbose = 0; verbose < 2; verbose++) {
		struct out o;
		run(verbose ? SANDBOX " -v " SAMPLES "memcalls-musl socket"
			    : SANDBOX " " SAMPLES "memcalls-musl socket",
		    &o);
		cr_expect(strstr(o.data, "socket: EACCES") && o.status == 0, "%d %s", o.status,
			  o.data);
		/* Said under -v only, and never as an unimplemented call. */
		cr_expect(!strstr(o.err, "unimplemented") &&
			      !strstr(o.err, "network calls refused") == !verbose &&
			      !!strstr(o.err, "socket x1") == verbose,
			  "%s", o.err);
		free(o.data);
	}
	same_as_native("", SAMPLES "memcalls-@LIBC@", "");
}

/* memfd_create (monitor/calls/memfd.c): written, mapped shared and private, sealed, shared
 * with a child, reopened through /proc, and run (fexecve), as natively. */
Test(e2e, memfd_create_as_natively)
{
	e2e_need_kvm();
	/* It reads itself to run a copy from memory. */
	same_as_native("--ro " SBX_BUILD_DIR "/samples", SAMPLES "memfd-@LIBC@", "");
}

/* FIFOs (monitor/calls/fifo.c): mkfifo and mknod, opens that wait for the other end whichever
 * comes first, opens in crossing order, O_NONBLOCK, a signal during the wait, two threads, as
 * natively. No device nodes, whoever runs the sandbox, nor FIFOs on a read-only mount. */
Test(e2e, fifos_as_natively, .init = make_tree, .fini = remove_tree)
{
	char opts[256], prog[512], cmd[1024];
	snprintf(opts, sizeof(opts), "--rw %s", scratch);
	snprintf(prog, sizeof(prog), SAMPLES "fifo-@LIBC@ %s", scratch);
	same_as_native(opts, prog, "");
	struct out o;
	snprintf(cmd, sizeof(cmd), SANDBOX " --rw %s " SAMPLES "fifo-glibc %s device", scratch,
		 scratch);
	run(cmd, &o);
	cr_expect(o.status == 0 && strstr(o.data, "mknod device: EPERM") &&
		      strstr(o.data, "mknod block device: EPERM") && strstr(o.data, "type: ENOENT"),
		  "%d %s %s", o.status, o.data, o.err);
	free(o.data);
	snprintf(cmd, sizeof(cmd), SANDBOX " --ro %s " SAMPLES "fifo-musl %s", scratch, scratch);
	run(cmd, &o);
	cr_expect(strstr(o.data, "mkfifo: EROFS\n"), "%d %s %s", o.status, o.data, o.err);
	free(o.data);
}

/* Pseudo-terminals (monitor/calls/pty.c): posix_openpt and openpty, names, locks, the line
 * discipline (echo, \n -> \r\n, canonical and raw input), window sizes, a child in its own
 * session with the slave as its controlling terminal and /dev/tty, the SIGINT a typed ^C and
 * the SIGWINCH a resize send it, and the hangups each end sees, as natively. */
Test(e2e, pseudo_terminals_as_natively)
{
	same_as_native("", SAMPLES "pty-@LIBC@", "");
}

/* signalfd (guest-abi/kernel/signal.c, monitor/calls/signalfd.c): blocked signals read as
 * signalfd_siginfo, poll, epoll and a blocking read woken by another process's kill or a
 * child's end, signals pending before the mask covered them, a fork's child reading its own,
 * Linux's errors, as natively. */
Test(e2e, signalfd_as_natively)
{
	same_as_native("", SAMPLES "signalfd-@LIBC@", "");
}

/* Job control (sandbox/procs.c, core/pause.c): SIGSTOP, SIGTSTP and SIGCONT between
 * processes and a child's raise(SIGSTOP), waitpid's WUNTRACED and WCONTINUED, waitid's
 * WSTOPPED, WCONTINUED and WNOWAIT, SIGCHLD's CLD_STOPPED and CLD_CONTINUED (none with
 * SA_NOCLDSTOP), no progress of either thread while stopped, a handled and a fatal signal
 * held until the SIGCONT, /proc's T, as natively. */
Test(e2e, job_control_as_natively)
{
	same_as_native("", SAMPLES "jobctl-@LIBC@", "");
}

/* inotify (monitor/calls/inotify.c): watches on a directory and a file of a mount, their
 * events (creation, writes, renames with paired cookies, removal, IN_IGNORED), rm_watch, the
 * errors in Linux's order, a blocking read and epoll woken by another thread, as natively. */
Test(e2e, inotify_as_natively, .init = make_tree, .fini = remove_tree)
{
	char opts[256], prog[512];
	snprintf(opts, sizeof(opts), "--rw %s", scratch);
	snprintf(prog, sizeof(prog), SAMPLES "inotify-@LIBC@ %s", scratch);
	same_as_native(opts, prog, "");
}

/* Local sockets with names (monitor/calls/hc_socket.c): servers and clients on a path and an
 * abstract name, datagrams, names, a blocking accept, Linux's errors, as natively. */
Test(e2e, local_sockets_as_natively, .init = make_tree, .fini = remove_tree)
{
	char opts[256], prog[512];
	snprintf(opts, sizeof(opts), "--rw %s", scratch);
	snprintf(prog, sizeof(prog), SAMPLES "usock-@LIBC@ %s", scratch);
	same_as_native(opts, prog, "");
}

/* No local socket of the host is reachable: not one in a mount (a service's socket file under
 * a mounted /var), not an abstract name (X11's, D-Bus's). */
Test(e2e, host_sockets_are_out_of_reach, .init = make_tree, .fini = remove_tree)
{
	need_kvm();
	struct sockaddr_un u = {.sun_family = AF_UNIX};
	snprintf(u.sun_path, sizeof(u.sun_path), "%s/host.sock", scratch);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert(s >= 0 && bind(s, (struct sockaddr *)&u, sizeof(u)) == 0 && listen(s, 4) == 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path + 1, sizeof(a.sun_path) - 1, "sbx-host-only-%d", (int)getpid());
	int t = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert(t >= 0 && bind(t, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(t, 4) == 0);
	char cmd[1024];
	struct out o;
	for (int ro = 0; ro < 2; ro++) {
		snprintf(cmd, sizeof(cmd), SANDBOX " -v %s %s " SAMPLES "usock-glibc %s connect %s",
			 ro ? "--ro" : "--rw", scratch, scratch, u.sun_path);
		run(cmd, &o);
		cr_expect(o.status == 0 && strstr(o.data, "connect: EACCES") &&
			      strstr(o.err, "a socket file this sandbox did not make"),
			  "%s: %d %s %s", cmd, o.status, o.data, o.err);
		free(o.data);
	}
	snprintf(cmd, sizeof(cmd), SANDBOX " " SAMPLES "usock-glibc %s connect @sbx-host-only-%d",
		 scratch, (int)getpid());
	run(cmd, &o);
	cr_expect(o.status == 0 && strstr(o.data, "connect: ECONNREFUSED"), "%d %s %s", o.status,
		  o.data, o.err);
	free(o.data);
	close(s);
	close(t);
}

/* A memfd's bytes are memory: --mem counts them, with the guest RAM of every process. */
Test(e2e, memfds_count_toward_the_memory_limit)
{
	e2e_need_kvm();
	struct out o;
	run(SANDBOX " --mem 64M " SAMPLES "memfd-glibc hog 8", &o);
	cr_assert(o.status == 0 && strstr(o.data, "held 8 MiB"), "%d %s %s", o.status, o.data,
		  o.err);
	free(o.data);
	/* Written, or stored through a shared mapping that outlives the handle. */
	const char *how[] = {"hog", "hogmap"};
	for (int i = 0; i < 2; i++) {
		char cmd[512];
		snprintf(cmd, sizeof(cmd), SANDBOX " --mem 64M " SAMPLES "memfd-glibc %s 100",
			 how[i]);
		run(cmd, &o);
		cr_assert(o.status != 0 && strstr(o.err, "memory limit reached") &&
			      strstr(o.err, "MiB of it in memfds)"),
			  "%s: %d %s %s", how[i], o.status, o.data, o.err);
		free(o.data);
	}
}

/* The virtual /dev and /proc/self (monitor/calls/vfs.c): each node as natively, for both libcs
 * and both I/O modes. */
Test(e2e, dev_and_proc_self)
{
	same_as_native("", SAMPLES "devproc-@LIBC@ a 'b c'", "");
	/* /proc/self/maps lists what the program maps itself, as Linux does. */
	need_kvm();
	struct out o;
	run(SANDBOX " " SAMPLES "cat-glibc /proc/self/maps", &o);
	cr_expect_eq(o.status, 0, "%s", o.err);
	cr_expect(strstr(o.data, "r-xp 00000000 00:00 0") && strstr(o.data, "/cat-glibc\n") &&
		      strstr(o.data, "[stack]\n") && strstr(o.data, "[vdso]\n"),
		  "%s", o.data);
	free(o.data);
	/* --no-dev: nothing there, as before. */
	run(SANDBOX " --no-dev " SAMPLES "cat-glibc /dev/null", &o);
	cr_expect_neq(o.status, 0, "%s", o.err);
	free(o.data);
}

/* perl opens /dev/null at start and dies without it. */
Test(e2e, dynamic_perl_opens_dev_null)
{
	if (access("/usr/bin/perl", X_OK) != 0)
		cr_skip_test("no /usr/bin/perl");
	same_as_native("--ro /usr",
		       "/usr/bin/perl -e 'open F, \"</dev/null\" or die \"null: $!\"; "
		       "open Z, \"</dev/zero\" or die; read Z, $b, 4; print length($b), \"\\n\"; "
		       "print readlink(\"/proc/self/exe\"), \"\\n\"'",
		       "");
}

/* The bytes of a host file (at most 64 KiB), for checks after a sandbox wrote it. */
static size_t host_file(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	size_t n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

/* mmap(MAP_SHARED) of files: coherent with read and write, written back to the host file, SIGBUS
 * past the end, EACCES where writing is not allowed. */
Test(e2e, shared_file_mappings, .init = make_tree, .fini = remove_tree)
{
	char opts[256], prog[512], path[256], buf[65536];
	snprintf(opts, sizeof(opts), "--rw %s", scratch);
	snprintf(prog, sizeof(prog), SAMPLES "mapshared-@LIBC@ rw %s/w", scratch);
	same_as_native(opts, prog, "");
	/* The sandbox ran last: what it wrote through the mapping is in the host file. */
	snprintf(path, sizeof(path), "%s/w/m.dat", scratch);
	size_t n = host_file(path, buf, sizeof(buf));
	cr_assert_eq(n, 8192);
	cr_expect(memcmp(buf, "SHARED", 6) == 0 && memcmp(buf + 100, "pwrite", 6) == 0 &&
		      buf[200] == 'x' && memcmp(buf + 300, "SHARED", 6) == 0 &&
		      memcmp(buf + 4096 + 10, "second", 6) == 0,
		  "m.dat: %.8s / %.8s", buf, buf + 100);

	/* Neither msync nor munmap: the write still reaches the file. */
	snprintf(path, sizeof(path), "%s/w/l.dat", scratch);
	unlink(path);
	snprintf(prog, sizeof(prog), SANDBOX " %s " SAMPLES "mapshared-musl leave %s/w", opts,
		 scratch);
	free(e2e_expect_output(prog, 0, "mmap shared rw: ok", NULL));
	n = host_file(path, buf, sizeof(buf));
	cr_expect(n == 4096 && memcmp(buf, "left", 4) == 0, "l.dat: %zu bytes, %.4s", n, buf);

	/* Past the end without a handler: the program dies of SIGBUS, the report says why. */
	snprintf(prog, sizeof(prog), SAMPLES "mapshared-@LIBC@ bus %s/w", scratch);
	same_as_native(opts, prog, "");
	snprintf(prog, sizeof(prog), SANDBOX " %s " SAMPLES "mapshared-glibc bus %s/w 2>&1", opts,
		 scratch);
	free(e2e_expect_output(prog, 135, "SIGBUS: bus error: access to 0x", "past the end of ",
			       "/w/b.dat", NULL));

	/* A read-only mount: a descriptor opened for reading only, so PROT_WRITE is EACCES. */
	snprintf(prog, sizeof(prog), SANDBOX " --ro %s " SAMPLES "mapshared-glibc ro %s/fs/f1",
		 scratch, scratch);
	free(e2e_expect_output(prog, 0, "mmap shared rw: EACCES", "reads: one", NULL));
}

/* sqlite's WAL mode keeps its index in a shared mapping of the -shm file (the database is
 * used again by each run: the output must not depend on its history). */
Test(e2e, sqlite_wal_mode, .init = make_tree, .fini = remove_tree)
{
	if (access("/usr/bin/sqlite3", X_OK) != 0)
		cr_skip_test("no /usr/bin/sqlite3");
	char opts[256], prog[512], redir[300], sql[256];
	snprintf(sql, sizeof(sql), "%s/wal.sql", scratch);
	FILE *f = fopen(sql, "w");
	cr_assert_not_null(f);
	fputs("PRAGMA journal_mode=WAL;\ndrop table if exists t;\ncreate table t(x);\n"
	      "insert into t values(1),(2),(3);\ninsert into t select x*10 from t;\n"
	      "select count(*), sum(x) from t;\n"
	      "select * from t order by x;\nPRAGMA journal_mode;\n",
	      f);
	fclose(f);
	snprintf(opts, sizeof(opts), "--rw %s --ro /usr --ro /lib --ro /lib64", scratch);
	snprintf(prog, sizeof(prog), "/usr/bin/sqlite3 %s/w/t.db", scratch);
	snprintf(redir, sizeof(redir), "< %s", sql);
	same_as_native(opts, prog, redir);
}

/* A CPU fault the program handles (here a million int3 with a SIGTRAP handler, as also a jump
 * into a patched syscall site) stops the run for a moment and lets it go on: the time limits
 * must still end it. The watchdog once ended at the first such stop and the program ran on
 * without a limit (`timeout 120` turns that into a failure rather than a hang). */
Test(e2e, time_limits_outlive_faults_the_program_handles)
{
	e2e_need_kvm();
	free(e2e_expect_output("timeout 120 " SANDBOX " --timeout 1s " SAMPLES
			       "traceme-glibc trap 1000000000 2>&1",
			       121, "wall-clock limit reached", NULL));
	free(e2e_expect_output("timeout 120 " SANDBOX " --cpu-time 1s " SAMPLES
			       "traceme-glibc trap 1000000000 2>&1",
			       120, "CPU time limit reached", NULL));
}
