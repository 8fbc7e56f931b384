/* sandbox-fuzz as a user runs it: libFuzzer and AFL++ find the planted bug, the reproduction
 * command reproduces it, crashes are bucketed by DEDUP_TOKEN, and a crash, an abort, a
 * timeout and running out of memory each give libFuzzer's exit code and artifact.
 *
 * No test depends on the host's speed: fuzzing runs are bounded by a number of inputs (-runs,
 * afl-fuzz -E), never by a time, and start from a seed one byte from the bug, so that what is
 * tested is the engines' use of the sandbox, not how many inputs a second this host manages
 * (from an empty corpus libFuzzer needs ~440,000 inputs for the 16-bit length check: 18
 * minutes on a busy two-core PVM host, where the old 240 s budget ran out). Time limits only
 * turn a hang into a failure, except the one a timeout test needs. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e_util.h"

#define FUZZ SBX_BUILD_DIR "/sandbox-fuzz"
#define PLANTED SBX_BUILD_DIR "/samples/fuzz-planted"
#define STATE SBX_BUILD_DIR "/samples/fuzz-state"
#define TOKEN "SIGSEGV--planted_bug--LLVMFuzzerTestOneInput--main"

static char dir[64];

static void setup(void)
{
	e2e_need_kvm();
	snprintf(dir, sizeof(dir), "/tmp/sbx-fuzz.XXXXXX");
	cr_assert(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	int st;
	if (dir[0])
		free(e2e_slurp(cmd, &st));
}

/* The artifact files (without .txt/.json/.log) whose names start with prefix, in dir. */
static int artifacts(const char *d, const char *prefix, char *first, size_t n)
{
	DIR *dd = opendir(d);
	cr_assert(dd, "%s", d);
	int count = 0;
	struct dirent *e;
	while ((e = readdir(dd))) {
		if (strncmp(e->d_name, prefix, strlen(prefix)) || strchr(e->d_name, '.'))
			continue;
		if (!count && first)
			snprintf(first, n, "%.100s/%.120s", d, e->d_name);
		count++;
	}
	closedir(dd);
	return count;
}

static char *run(const char *fmt, int *status, ...) __attribute__((format(printf, 1, 3)));
static char *run(const char *fmt, int *status, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, status);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return e2e_slurp(cmd, status);
}

/* A seed one byte from the bug: mutations hit it again and again. */
/* A fuzzing run that found nothing: exit 0, no crash artifact, and, where the run compared
 * resets with the snapshot, no difference. */
static void assert_clean(int st, const char *o, int resets_compared)
{
	cr_assert_eq(st, 0, "exit %d:\n%s", st, o);
	cr_assert_eq(artifacts(dir, "crash-", NULL, 0), 0, "%s", o);
	if (resets_compared)
		cr_assert(!strstr(o, "reset check"), "%s", o);
}

static void near_seed(void)
{
	int st;
	free(run("mkdir -p %s/corpus && printf 'SBXFBB?' > %s/corpus/near", &st, dir, dir));
}

Test(fuzz, libfuzzer_finds_the_planted_bug_and_the_repro_reproduces, .init = setup,
     .fini = teardown, .timeout = 3600)
{
	near_seed();
	int st;
	char *o = run("cd %s && %s %s -seed=1 -runs=1000000 -artifact_prefix=%s/ corpus 2>&1", &st,
		      dir, FUZZ, PLANTED, dir);
	cr_assert_eq(st, 77, "exit %d:\n%s", st, o);
	cr_assert(strstr(o, "DEDUP_TOKEN: " TOKEN), "%s", o);
	char art[300];
	cr_assert_eq(artifacts(dir, "crash-", art, sizeof(art)), 1, "%s", o);
	char *cmd = strstr(o, "reproduce with: ");
	cr_assert(cmd, "%s", o);
	/* The report files, text and JSON. */
	char *t = run("cat %s.txt; echo; cat %s.json", &st, art, art);
	cr_assert(strstr(t, "DEDUP_TOKEN: " TOKEN) && strstr(t, "\"signal\": \"SEGV\""), "%s", t);
	free(t);
	free(o);
	o = run("cd %s && %s %s %s 2>&1", &st, dir, FUZZ, PLANTED, art);
	cr_assert_eq(st, 77, "exit %d:\n%s", st, o);
	cr_assert(strstr(o, "SUMMARY: sandbox: SIGSEGV planted.c"), "%s", o);
	free(o);
}

/* A dynamic target needs no flag: its interpreter and libraries are shown read-only, as
 * sandbox-run shows them, and reset with the rest of the VM after every input. */
Test(fuzz, a_dynamic_target_is_fuzzed_with_no_flags, .init = setup, .fini = teardown,
     .timeout = 3600)
{
	near_seed();
	int st;
	char *o = run("cd %s && %s %s-dyn -seed=1 -runs=1000000 -artifact_prefix=%s/ corpus 2>&1",
		      &st, dir, FUZZ, PLANTED, dir);
	cr_assert_eq(st, 77, "exit %d:\n%s", st, o);
	cr_assert(strstr(o, "DEDUP_TOKEN: SIGSEGV--planted_bug--LLVMFuzzerTestOneInput"), "%s", o);
	cr_assert_eq(artifacts(dir, "crash-", NULL, 0), 1, "%s", o);
	free(o);
}

/* A target built with AddressSanitizer (dynamic, its runtime linked in, the guest driver as
 * main): ASan reserves terabytes with MAP_NORESERVE and reads its options from
 * /proc/self/environ. Its planted heap overflow, which does not crash on its own, is found;
 * the crash file holds ASan's own report and the bucket names the overflowing copy; the
 * reproduction command reproduces it. */
Test(fuzz, an_asan_target_s_heap_overflow_is_found_with_asan_s_report, .init = setup,
     .fini = teardown, .timeout = 3600)
{
	int st;
	free(
	    run("mkdir -p %s/corpus && printf 'HEAPaaaaaaaaaaaa' > %s/corpus/seed", &st, dir, dir));
	char *o = run("cd %s && %s %s -seed=1 -runs=1000000 -max_len=64 -artifact_prefix=%s/ "
		      "corpus 2>&1",
		      &st, dir, FUZZ, SBX_BUILD_DIR "/samples/fuzz-heap-asan", dir);
	cr_assert_eq(st, 77, "exit %d:\n%s", st, o);
	const char *token = "DEDUP_TOKEN: SIGABRT--__asan_memcpy--LLVMFuzzerTestOneInput--main";
	cr_assert(strstr(o, token), "%s", o);
	char art[300];
	cr_assert_eq(artifacts(dir, "crash-", art, sizeof(art)), 1, "%s", o);
	free(o);
	char *t = run("cat %s.txt", &st, art);
	cr_assert(strstr(t, "ERROR: AddressSanitizer: heap-buffer-overflow") &&
		      strstr(t, "is located 0 bytes to the right of 16-byte region") &&
		      strstr(t, token),
		  "%s", t);
	free(t);
	o = run("cd %s && %s %s %s 2>&1", &st, dir, FUZZ, SBX_BUILD_DIR "/samples/fuzz-heap-asan",
		art);
	cr_assert_eq(st, 77, "exit %d:\n%s", st, o);
	cr_assert(strstr(o, "ERROR: AddressSanitizer: heap-buffer-overflow") && strstr(o, token),
		  "%s", o);
	free(o);
}

/* The target's stderr goes into the crash log next to the monitor's report, but through a
 * write-only, append-only descriptor of its own: it cannot read the monitor's lines back, and
 * seeking it a terabyte on makes no sparse file for the log's reader to copy. */
Test(fuzz, the_target_s_stderr_is_kept_but_neither_readable_nor_seekable, .init = setup,
     .fini = teardown, .timeout = 600)
{
	int st;
	free(run("printf W > %s/w", &st, dir));
	char *o =
	    run("cd %s && %s --env STATE_COMMANDS=1 %s %s/w 2>&1", &st, dir, FUZZ, STATE, dir);
	cr_assert_eq(st, 0, "exit %d:\n%s", st, o);
	cr_assert(strstr(o, "state: stderr") && strstr(o, "state: far"), "%s", o);
	cr_assert_lt(strlen(o), 100000, "%zu bytes of output", strlen(o));
	free(o);
}

/* AFL sets its own time limit per input (-t) from how fast the first ones ran; on a busy host
 * some inputs meet it (hangs, not crashes): every crash it saves must be the planted bug. Its
 * deterministic stages (-D) find the bug at the same input on every host (a 4-bit flip of the
 * seed's last byte); its havoc stage alone needs a million inputs or so, a matter of speed. */
Test(fuzz, afl_finds_the_planted_bug, .init = setup, .fini = teardown, .timeout = 3600)
{
	int st;
	char *o = e2e_slurp("command -v afl-fuzz", &st);
	free(o);
	if (st)
		cr_skip_test("afl-fuzz is not installed (scripts/setup.sh installs afl++)");
	o = run(
	    "cd %s && mkdir in && printf 'SBXFBB?' > in/seed && AFL_SKIP_CPUFREQ=1 "
	    "AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1 "
	    "AFL_BENCH_UNTIL_CRASH=1 timeout 3000 afl-fuzz -s 1 -D -E 1000000 -i in -o out -- %s "
	    "--afl %s 2>&1 | tail -5",
	    &st, dir, FUZZ, PLANTED);
	char d[128], art[300];
	snprintf(d, sizeof(d), "%s/out/default/crashes", dir);
	int n = artifacts(d, "id:", art, sizeof(art));
	cr_assert_geq(n, 1, "no crash found:\n%s", o);
	free(o);
	/* Every crash AFL saved reproduces as the planted bug. */
	o = run("cd %s && for f in out/default/crashes/id:*; do %s %s \"$f\" >/dev/null 2>&1; "
		"echo \"$? $f\"; %s %s \"$f\" 2>&1 | grep DEDUP_TOKEN; done",
		&st, dir, FUZZ, PLANTED, FUZZ, PLANTED);
	cr_assert(strstr(o, "77 out/default/crashes/id:"), "%s", o);
	cr_assert(!strstr(o, "\n0 out/"), "a saved crash did not reproduce:\n%s", o);
	cr_assert(strstr(o, "DEDUP_TOKEN: " TOKEN), "%s", o);
	free(o);
}

/* afl-fuzz's side of the forkserver protocol, by hand: its control pipe on fd 198, its status
 * pipe on 199, the test case in a file on stdin. */
struct fsrv {
	pid_t pid;
	int ctl, st, in;
};

static void fsrv_start(struct fsrv *f)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/cur_input", dir);
	f->in = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	snprintf(path, sizeof(path), "%s/fuzz.log", dir);
	int log = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int ctl[2], st[2];
	cr_assert(f->in >= 0 && log >= 0);
	cr_assert(pipe2(ctl, O_CLOEXEC) == 0 && pipe2(st, O_CLOEXEC) == 0);
	f->pid = fork();
	cr_assert_geq(f->pid, 0);
	if (f->pid == 0) {
		if (dup2(ctl[0], 198) < 0 || dup2(st[1], 199) < 0 || dup2(f->in, 0) < 0 ||
		    dup2(log, 1) < 0 || dup2(log, 2) < 0)
			_exit(127);
		execl(FUZZ, FUZZ, "--afl", "--tmp", "/tmp", "--env", "STATE_COMMANDS=1", STATE,
		      (char *)NULL);
		_exit(127);
	}
	close(ctl[0]);
	close(st[1]);
	close(log);
	f->ctl = ctl[1];
	f->st = st[0];
	uint32_t hello;
	cr_assert_eq(read(f->st, &hello, 4), 4, "no hello from sandbox-fuzz --afl (see %s)", path);
}

static void fsrv_request(struct fsrv *f, const char *input)
{
	uint32_t req = 0;
	cr_assert_eq(ftruncate(f->in, 0), 0);
	cr_assert_eq(pwrite(f->in, input, strlen(input), 0), (ssize_t)strlen(input));
	cr_assert_eq(write(f->ctl, &req, 4), 4);
}

static int32_t fsrv_read(struct fsrv *f)
{
	int32_t v;
	cr_assert_eq(read(f->st, &v, 4), 4, "sandbox-fuzz --afl stopped answering");
	return v;
}

/* AFL kills the pid of an input whose time ran out, and may do so just as the input's status
 * comes; on a busy host the killed sleeper may still be dying when the next input starts. Its
 * death must not end that input (AFL would save it as a SIGKILL crash). Here the dying
 * sleeper is held at its exit by ptrace, so the case happens every time, not by chance. */
Test(fuzz, afl_a_late_kill_ends_no_other_input, .init = setup, .fini = teardown, .timeout = 900)
{
	struct fsrv f;
	fsrv_start(&f);
	for (int i = 0; i < 2; i++) {
		fsrv_request(&f, "S"); /* 300 ms: longer than AFL's shortest time limit */
		pid_t old = fsrv_read(&f);
		cr_assert_eq(fsrv_read(&f), 0, "a slow input that returned");
		if (ptrace(PTRACE_SEIZE, old, 0, PTRACE_O_TRACEEXIT) != 0)
			cr_skip_test("cannot ptrace sandbox-fuzz's sleeper: %s", strerror(errno));
		kill(old, SIGKILL);
		int st;
		cr_assert_eq(waitpid(old, &st, __WALL), old);
		if (st >> 8 != (SIGTRAP | (PTRACE_EVENT_EXIT << 8)))
			cr_skip_test("this kernel does not stop a killed tracee at its exit");
		fsrv_request(&f, "S");
		/* The sleeper dies once sandbox-fuzz has given this input a pid (at once when it
		 * takes the dying one) or has waited 200 ms for it (when it looks first). */
		struct pollfd p = {.fd = f.st, .events = POLLIN};
		poll(&p, 1, 200);
		cr_assert_eq(ptrace(PTRACE_DETACH, old, 0, 0), 0, "%s", strerror(errno));
		pid_t pid = fsrv_read(&f);
		int32_t status = fsrv_read(&f);
		cr_assert_eq(status, 0, "the next input ended with wait status %d%s", status,
			     status == SIGKILL ? ": the late death of the sleeper before it" : "");
		cr_assert_neq(pid, old, "the dying sleeper was given to the next input");
	}
	close(f.ctl);
	int st;
	cr_assert_eq(waitpid(f.pid, &st, 0), f.pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "sandbox-fuzz --afl ended with %#x", st);
	close(f.st);
	close(f.in);
}

Test(fuzz, a_crash_hit_many_times_is_one_bucket, .init = setup, .fini = teardown, .timeout = 3600)
{
	near_seed();
	int st;
	char *o = run("cd %s && %s --keep-going %s -seed=2 -runs=30000 -artifact_prefix=%s/ "
		      "corpus 2>&1",
		      &st, dir, FUZZ, PLANTED, dir);
	cr_assert_eq(st, 0, "exit %d:\n%s", st, o);
	cr_assert_eq(artifacts(dir, "crash-", NULL, 0), 1, "%s", o);
	/* The final progress line: more than one crash, one bucket. */
	char *p = strstr(o, "new buckets"), *last = NULL;
	while (p) {
		last = p;
		p = strstr(p + 1, "new buckets");
	}
	cr_assert(last, "%s", o);
	unsigned long long crashes = 0;
	char *c = last;
	while (c > o && strncmp(c, "crashes ", 8))
		c--;
	cr_assert_eq(sscanf(c, "crashes %llu in 1 new", &crashes), 1, "%.200s", c);
	cr_assert_gt(crashes, 1, "%s", o);
	free(o);
}

Test(fuzz, known_crashes_do_not_fail, .init = setup, .fini = teardown, .timeout = 3600)
{
	near_seed();
	int st;
	free(run("echo 'DEDUP_TOKEN: %s' > %s/known", &st, TOKEN, dir));
	char *o = run("cd %s && %s --known-crashes=%s/known %s -seed=3 -runs=20000 "
		      "-artifact_prefix=%s/ corpus 2>&1",
		      &st, dir, FUZZ, dir, PLANTED, dir);
	assert_clean(st, o, 0);
	free(o);
}

Test(fuzz, ci_mode_stops_minimises_and_reports, .init = setup, .fini = teardown, .timeout = 3600)
{
	near_seed();
	int st;
	char *o = run("cd %s && %s --ci --max-total-time=3000 %s -seed=1 -runs=1000000 corpus "
		      "2>&1",
		      &st, dir, FUZZ, PLANTED);
	cr_assert_eq(st, 77, "exit %d:\n%s", st, o);
	cr_assert(strstr(o, "new crash in bucket " TOKEN), "%s", o);
	char *r = strstr(o, "  reproduce: ");
	cr_assert(r, "%s", o);
	char cmd[1024];
	sscanf(r + 13, "%1023[^\n]", cmd);
	free(o);
	/* The printed command, as printed (sandbox-fuzz from the build directory). */
	o = run("cd %s && PATH=%s:$PATH %s 2>&1", &st, dir, SBX_BUILD_DIR, cmd);
	cr_assert_eq(st, 77, "%s: exit %d:\n%s", cmd, st, o);
	cr_assert(strstr(o, "DEDUP_TOKEN: " TOKEN), "%s", o);
	free(o);
}

/* One input each, as the seed corpus of a fuzzing run: libFuzzer's exit code and artifact
 * per outcome (a reproduction run of a file writes no artifact, as libFuzzer's does not).
 * Only the endless loop may meet the time limit: filling 64 MiB takes a while on a slow host. */
static void outcome(const char *in, const char *flags, int code, const char *prefix)
{
	int st;
	free(run("mkdir %s/corpus && printf '%s' > %s/corpus/input", &st, dir, in, dir));
	char *o = run("cd %s && %s --tmp /tmp --env STATE_COMMANDS=1 %s %s -timeout=%d -runs=1 "
		      "-artifact_prefix=%s/ corpus 2>&1",
		      &st, dir, FUZZ, flags, STATE, code == 70 ? 2 : 600, dir);
	cr_assert_eq(st, code, "input %s: exit %d:\n%s", in, st, o);
	cr_assert_eq(artifacts(dir, prefix, NULL, 0), 1, "input %s:\n%s", in, o);
	free(o);
}

Test(fuzz, crash_exit_code_and_artifact, .init = setup, .fini = teardown, .timeout = 900)
{
	outcome("C", "", 77, "crash-");
}

Test(fuzz, abort_exit_code_and_artifact, .init = setup, .fini = teardown, .timeout = 900)
{
	outcome("A", "", 77, "crash-");
}

Test(fuzz, exit_is_a_crash_too, .init = setup, .fini = teardown, .timeout = 900)
{
	outcome("E", "", 77, "crash-");
}

Test(fuzz, timeout_exit_code_and_artifact, .init = setup, .fini = teardown, .timeout = 900)
{
	outcome("L", "", 70, "timeout-");
}

Test(fuzz, oom_exit_code_and_artifact, .init = setup, .fini = teardown, .timeout = 900)
{
	outcome("M", "--mem 64M", 71, "oom-");
}

/* A target's children end with its input: each input starts two (one never ends) and finds
 * them numbered as the first input's, with room under --max-procs 4. */
Test(fuzz, a_target_s_children_end_with_each_input, .init = setup, .fini = teardown, .timeout = 900)
{
	int st;
	char *o = run("cd %s && for i in 1 2 3 4 5 6 7 8 9 10; do printf F > f$i; done && "
		      "%s --tmp /tmp --max-procs 4 --env STATE_COMMANDS=1 %s -artifact_prefix=%s/ "
		      "f1 f2 f3 f4 f5 f6 f7 f8 f9 f10 2>&1",
		      &st, dir, FUZZ, STATE, dir);
	assert_clean(st, o, 0);
	free(o);
}

/* A target's threads end with each input: one joined, and three left running (spinning on a
 * global, asleep, waiting on a futex), whose writes no later input sees; every reset compared
 * with the snapshot. */
Test(fuzz, a_target_s_threads_end_with_each_input, .init = setup, .fini = teardown, .timeout = 900)
{
	int st;
	char *o =
	    run("cd %s && for i in 1 2 3 4 5 6 7 8 9 10; do printf T > t$i; printf U > u$i; "
		"done && %s --tmp /tmp --verify-reset=1 --env STATE_COMMANDS=1 %s "
		"-artifact_prefix=%s/ t1 u1 t2 u2 u3 t3 u4 u5 u6 t4 t5 u7 u8 t6 u9 u10 t7 t8 t9 "
		"t10 2>&1",
		&st, dir, FUZZ, STATE, dir);
	assert_clean(st, o, 1);
	free(o);
}

Test(fuzz, state_never_leaks_between_inputs, .init = setup, .fini = teardown, .timeout = 3600)
{
	int st;
	/* The target aborts on any trace of an earlier input; RAM is compared with the snapshot
	 * after every 1,000th reset. */
	char *o = run("cd %s && mkdir corpus && printf 'x' > corpus/x && %s --tmp /tmp "
		      "--verify-reset=1000 %s -seed=4 -runs=20000 -only_ascii=1 "
		      "-artifact_prefix=%s/ corpus 2>&1",
		      &st, dir, FUZZ, STATE, dir);
	cr_assert_eq(st, 0, "exit %d:\n%s", st, o);
	cr_assert(!strstr(o, "reset check"), "%s", o);
	free(o);
}

/* The compare runs before the next input, not right after one: libFuzzer has read the
 * coverage counters by then (they were put back with the page, and no input found anything). */
Test(fuzz, verifying_every_reset_keeps_the_coverage, .init = setup, .fini = teardown,
     .timeout = 900)
{
	int st;
	char *o = run("cd %s && mkdir corpus && printf 'SBXF' > corpus/x && %s --mem 32M "
		      "--verify-reset=1 %s -seed=1 -runs=200 -artifact_prefix=%s/ corpus 2>&1",
		      &st, dir, FUZZ, PLANTED, dir);
	cr_assert_eq(st, 0, "exit %d:\n%s", st, o);
	cr_assert(!strstr(o, "no interesting inputs") && !strstr(o, "reset check"), "%s", o);
	cr_assert(strstr(o, "200 execs"), "%s", o);
	free(o);
}

Test(fuzz, bad_target_is_one_line)
{
	int st;
	char *o = run("%s /nonexistent/target 2>&1", &st, FUZZ);
	cr_assert_eq(st, 2, "%s", o);
	cr_assert(strstr(o, "/nonexistent/target: No such file"), "%s", o);
	free(o);
	e2e_need_kvm(); /* the rest runs the target */
	o = run("%s %s/samples/hello-glibc -runs=1 2>&1", &st, FUZZ, SBX_BUILD_DIR);
	cr_assert_neq(st, 0, "%s", o);
	cr_assert(strstr(o, "ended before its snapshot point"), "%s", o);
	free(o);
}

/* Threads started before the fuzz point (in LLVMFuzzerInitialize: a worker each 'Q' input hands
 * its bytes to, a thread asleep) are held at the point and put back for every input, every 50th
 * reset compared with the snapshot; a call refused before the point is said once. */
Test(fuzz, threads_started_before_the_point_are_put_back_for_each_input, .init = setup,
     .fini = teardown, .timeout = 900)
{
	int st;
	char *o = run("cd %s && mkdir corpus && printf 'Q' > corpus/q && printf 'x' > corpus/x && "
		      "%s --tmp /tmp --verify-reset=50 --env STATE_INIT_THREAD=1 "
		      "--env STATE_INIT_POOL=1 --env STATE_INIT_NOSYS=1 %s -seed=5 -runs=400 "
		      "-artifact_prefix=%s/ corpus 2>&1",
		      &st, dir, FUZZ, STATE, dir);
	assert_clean(st, o, 1);
	cr_assert(strstr(o, "400 execs"), "%s", o);
	/* The call refused before the point is said once, not at each input's end. */
	const char *said = strstr(o, "unimplemented syscalls called (returned ENOSYS): "
				     "remap_file_pages x1");
	cr_assert(said, "%s", o);
	cr_assert(!strstr(said + 1, "unimplemented syscalls called"), "%s", o);
	free(o);
}

/* A crash right after a point taken with threads: threads that had not reached the program by
 * then are put back so for every input, and the report's list says so rather than reading a
 * syscall frame they do not have ("rip 0x0"). Five reproductions, each a fresh sandbox. */
Test(fuzz, a_crash_lists_the_threads_held_at_the_point_as_they_are, .init = setup, .fini = teardown,
     .timeout = 600)
{
	int st;
	free(run("printf C > %s/c", &st, dir));
	for (int i = 0; i < 5; i++) {
		char *o = run("cd %s && %s --env STATE_COMMANDS=1 --env STATE_INIT_POOL=1 "
			      "--env STATE_INIT_THREAD=1 %s c 2>&1",
			      &st, dir, FUZZ, STATE);
		cr_assert_eq(st, 77, "exit %d:\n%s", st, o);
		cr_assert(strstr(o, "threads:\n") && strstr(o, "=> tid "), "%s", o);
		cr_assert(!strstr(o, "rip 0x0 "), "%s", o);
		free(o);
	}
}

/* A Go target (samples/fuzz/go): its runtime's threads start before the point, in the C
 * archive's constructor. Inputs run on goroutines, each sees the first one's state, and the
 * planted "FUZZ" input ends in the Go panic's exit, reported as a crash. */
Test(fuzz, a_go_target_runs_with_its_runtime_threads, .init = setup, .fini = teardown,
     .timeout = 900)
{
	if (access(SBX_BUILD_DIR "/samples/fuzz-go", X_OK) != 0)
		cr_skip_test(
		    "samples/fuzz-go was not built (needs go and clang: scripts/setup.sh)");
	int st;
	char *o = run("cd %s && mkdir corpus && printf 'hello' > corpus/a && %s --verify-reset=25 "
		      "%s -seed=1 -runs=200 -artifact_prefix=%s/ corpus 2>&1",
		      &st, dir, FUZZ, SBX_BUILD_DIR "/samples/fuzz-go", dir);
	cr_assert_eq(st, 0, "exit %d:\n%s", st, o);
	cr_assert(!strstr(o, "reset check") && strstr(o, "200 execs"), "%s", o);
	free(o);
	o = run("cd %s && printf 'FUZZ!' > bug && %s %s bug 2>&1", &st, dir, FUZZ,
		SBX_BUILD_DIR "/samples/fuzz-go");
	cr_assert_eq(st, 77, "exit %d:\n%s", st, o);
	cr_assert(strstr(o, "planted bug: the input starts with FUZZ"), "%s", o);
	free(o);
}

/* The monitor's messages (-v) carry sandbox-fuzz's name, not sandbox-run's. */
Test(fuzz, messages_carry_the_front_ends_name, .init = setup, .fini = teardown, .timeout = 60)
{
	int st;
	free(run("mkdir %s/corpus && printf 'x' > %s/corpus/x", &st, dir, dir));
	char *o = run("cd %s && %s -v --tmp /tmp %s -runs=1 corpus 2>&1", &st, dir, FUZZ, STATE);
	cr_assert_eq(st, 0, "exit %d:\n%s", st, o);
	cr_assert(strstr(o, "sandbox-fuzz: KVM backend: "), "%s", o);
	cr_assert(!strstr(o, "sandbox-run:"), "%s", o);
	free(o);
}
