/* The confined monitor end to end: whatever a guest can make it do, and every report it writes,
 * must stay within its seccomp allowlist. sandbox-run confines itself by default; a host call
 * off the list kills it with SIGSYS (status 159, "which its seccomp filter forbids"). So every
 * hypercall, with every kind of argument (samples/rawcall_calls.c: one row per call of the ABI,
 * so a new call is covered or fails here), and every report path runs through a real sandbox.
 * Sanitizer builds run unconfined (confine.c): there these tests only run the paths. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e_util.h"
#include "sbx_abi.h"

#define BUILD SBX_BUILD_DIR
#define RAWCALL BUILD "/samples/rawcall"
#define FORBIDDEN "which its seccomp filter forbids"

TestSuite(confine_e2e, .timeout = 600);

/* No SIGSYS: neither the status nor the monitor's last words. */
static void expect_alive(const char *what, int st, const char *out)
{
	cr_expect(st != 128 + 31 && !strstr(out, FORBIDDEN),
		  "%s: the confined monitor made a host call off its allowlist (status %d):\n%s",
		  what, st, out);
}

/* ---- 1. Every hypercall, every argument kind ---- */

/* The mounts rawcall_calls.c expects, and a sentinel beside them that nothing may touch. */
static void make_fixture(char *dir, size_t len)
{
	snprintf(dir, len, "/tmp/sbx-calls-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
		 "cd %s && mkdir -p ro/dir rw/dir nested && echo hello > ro/file && "
		 "touch ro/dir/inner && ln -s /etc/passwd ro/link && ln -s nowhere ro/dangling && "
		 "echo single > single && echo rw > rw/file && touch rw/dir/inner && "
		 "ln -s /etc/passwd rw/link && ln -s ../.. rw/up && echo nested > nested/file && "
		 "echo input > stdin && echo sentinel > sentinel",
		 dir);
	cr_assert_eq(system(cmd), 0);
}

static void remove_fixture(const char *dir)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "chmod -R u+rwX %s; rm -rf %s", dir, dir);
	cr_assert_eq(system(cmd), 0);
}

/* rawcall calls NR ARG in a fresh fixture; returns the exit status and the output. */
static char *run_calls(unsigned nr, const char *arg, const char *poll, const char *dir, int *st)
{
	char cmd[2048], show[128];
	int ignored;
	snprintf(
	    cmd, sizeof(cmd),
	    "cd %s && " SANDBOX " --io-poll %s --ro %s/ro:/ro --ro %s/single:/single --rw "
	    "%s/rw:/rw --tmp /scratch --ro %s/nested:/a/b --audit %s/audit --audit-all " RAWCALL
	    " calls %u %s <stdin >out 2>&1",
	    dir, poll, dir, dir, dir, dir, dir, nr, arg);
	free(e2e_slurp(cmd, st));
	/* A guest may write any bytes: NULs are shown as '?'. */
	snprintf(show, sizeof(show), "tr '\\000' '?' < %s/out", dir);
	char *text = e2e_slurp(show, &ignored);
	size_t l = strlen(cmd) + strlen(text) + 16;
	char *both = malloc(l);
	snprintf(both, l, "%s\n%s", cmd, text);
	free(text);
	return both;
}

static void stat_of(const char *dir, const char *name, struct stat *sb)
{
	char p[256];
	snprintf(p, sizeof(p), "%s%s", dir, name);
	cr_assert_eq(lstat(p, sb), 0, "%s", p);
}

static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_mode == b->st_mode && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static void one_call(unsigned nr, const char *poll)
{
	char dir[64], what[96];
	struct stat s0, s1, p0, p1;
	make_fixture(dir, sizeof(dir));
	stat_of(dir, "/sentinel", &s0);
	cr_assert_eq(lstat("/etc/passwd", &p0), 0);
	int st;
	char *out = run_calls(nr, "0", poll, dir, &st);
	snprintf(what, sizeof(what), "call %u (--io-poll %s)", nr, poll);
	expect_alive(what, st, out);
	if (nr == SBX_CALL_NONE || nr >= SBX_CALL_COUNT) {
		char want[64];
		snprintf(want, sizeof(want), "unknown hypercall %u", nr);
		cr_expect(st == 125 && strstr(out, want), "%s: want status 125 and '%s':\n%s", what,
			  want, out);
	} else if (nr == SBX_CALL_EXIT) {
		cr_expect_eq(st, 0, "%s: EXIT 0 ended with %d:\n%s", what, st, out);
	} else {
		cr_expect(st != 3,
			  "%s: samples/rawcall_calls.c has no row of argument kinds for "
			  "this call: add one\n%s",
			  what, out);
		char want[64];
		snprintf(want, sizeof(want), "rawcall: call %u: ", nr);
		const char *line = strstr(out, want);
		cr_expect(st == 0 && line && strstr(line, "all answered"),
			  "%s: status %d, want 0 and every request answered:\n%s", what, st, out);
		/* A row whose every request failed would test nothing but the argument checks;
		 * THREAD_START's success is the threads tests' (a vCPU on state rawcall never set
		 * up would only fault), which run confined too, and so is THREAD_RUN's (it resumes
		 * a vCPU that THREAD_START parked). POINT answers only in repeated runs
		 * (sandbox-fuzz, sandbox-serve): under sandbox-run it is always -ENOSYS. */
		if (line && nr != SBX_CALL_THREAD_START && nr != SBX_CALL_THREAD_RUN &&
		    nr != SBX_CALL_POINT)
			cr_expect(!strstr(line, "(0 succeeded)"),
				  "%s: no request succeeded: the fixture is broken\n%s", what,
				  line);
	}
	/* Beside the mounts, and outside them through symlinks: nothing changed. */
	stat_of(dir, "/sentinel", &s1);
	cr_assert_eq(lstat("/etc/passwd", &p1), 0);
	cr_expect(same_file(&s0, &s1), "%s: a file beside the mounts changed", what);
	cr_expect(same_file(&p0, &p1), "%s: /etc/passwd changed", what);
	free(out);
	remove_fixture(dir);
}

Test(confine_e2e, every_hypercall_with_every_argument_kind)
{
	e2e_need_kvm();
	/* Past the ABI too: the numbers a newer guest (or a hostile one) may send. */
	for (unsigned nr = 0; nr < SBX_CALL_COUNT + 5; nr++) {
		one_call(nr, "off");
		one_call(nr, "on");
	}
}

/* EXIT's status words; those of a core-dumping signal get a report built from the syscall
 * frame, here of a program without DWARF given by a relative path (libdw then looks for separate
 * debug info by the program's path). */
Test(confine_e2e, every_exit_status_word)
{
	e2e_need_kvm();
	static const struct {
		const char *word;
		int status, report;
	} ws[] = {
	    {"0", 0, 0},
	    {"7", 7, 0},
	    {"255", 255, 0},
	    {"0x106", 134, 1},
	    {"0x80b", 139, 1},
	    {"0x400", 137, 0},
	    {"0x109", 137, 0},
	    /* not a status: an ABI violation */
	    {"0x163", 125, 0},
	    {"0x1ff", 125, 0},
	    {"0x100", 125, 0},
	    {"0x1000", 125, 0},
	};
	char dir[] = "/tmp/sbx-exit-XXXXXX", cmd[512];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd), "strip -g -o %s/rawcall " RAWCALL, dir);
	cr_assert_eq(system(cmd), 0);
	for (size_t i = 0; i < sizeof(ws) / sizeof(ws[0]); i++) {
		char what[64];
		int st;
		snprintf(cmd, sizeof(cmd), "cd %s && " SANDBOX " ./rawcall calls %d %s 2>&1", dir,
			 SBX_CALL_EXIT, ws[i].word);
		snprintf(what, sizeof(what), "EXIT %s", ws[i].word);
		char *out = e2e_slurp(cmd, &st);
		expect_alive(what, st, out);
		cr_expect_eq(st, ws[i].status, "%s: status %d, want %d:\n%s", what, st,
			     ws[i].status, out);
		cr_expect(!strstr(out, "==sandbox==ERROR: SIG") == !ws[i].report,
			  "%s: want %s report:\n%s", what, ws[i].report ? "a" : "no", out);
		free(out);
	}
	remove_fixture(dir);
}

/* ---- 2. Every report path ---- */

/* Runs a shell command in a scratch directory D (also $D), from where relative paths are
 * relative; checks the status and a text in the output (stdout and stderr). */
static void run_in(const char *what, const char *script, int status, const char *text)
{
	char cmd[4096];
	int st;
	snprintf(cmd, sizeof(cmd),
		 "D=$(mktemp -d /tmp/sbx-rep-XXXXXX) && cd $D && B=" BUILD
		 " && S=$B/sandbox-run && { %s ; } 2>&1; st=$?; rm -rf $D; exit $st",
		 script);
	char *out = e2e_slurp(cmd, &st);
	expect_alive(what, st, out);
	cr_expect_eq(st, status, "%s: status %d, want %d:\n%s\n%s", what, st, status, script, out);
	if (text)
		cr_expect(strstr(out, text), "%s: no '%s' in:\n%s\n%s", what, text, script, out);
	free(out);
}

Test(confine_e2e, crash_reports_by_relative_and_absolute_path)
{
	e2e_need_kvm();
	/* The forms a user types: from the build directory, with ./, through a symlink. */
	run_in("with debug info, relative",
	       "cd $B && ./sandbox-run samples/crash-dbg-glibc null-write", 139, "(crash.c:");
	run_in("with debug info, absolute", "$S $B/samples/crash-dbg-glibc null-write", 139,
	       "(crash.c:");
	run_in("no debug info, relative",
	       "cd $B && ./sandbox-run samples/crash-nodbg-glibc null-write", 139,
	       "in do_null_write+0x");
	run_in("no debug info, ./",
	       "cd $B/samples && ../sandbox-run ./crash-nodbg-glibc null-write", 139,
	       "in do_null_write+0x");
	run_in("no debug info, absolute", "$S $B/samples/crash-nodbg-glibc null-write", 139,
	       "in do_null_write+0x");
	run_in("stripped, relative",
	       "cd $B && ./sandbox-run samples/crash-stripped-glibc null-write", 139,
	       "it is stripped");
	run_in("through a relative symlink",
	       "ln -s $B/samples/crash-nodbg-glibc prog && $S ./prog div-zero", 136,
	       "in do_div_zero+0x");
	/* The other kinds of report, each of a program without DWARF by a relative path. */
	run_in("abort", "strip -g -o p $B/samples/exitcode-glibc && $S ./p abort", 134,
	       "SIGABRT: killed by SIGABRT");
	run_in("stack overflow", "$S $B/samples/crash-dbg-glibc stack-overflow", 139,
	       "stack overflow");
	run_in("stack overflow, relative",
	       "cp $B/samples/crash-nodbg-glibc p && $S ./p stack-overflow", 139, "stack overflow");
	run_in("a wrecked IDT (triple fault)", "strip -g -o p $B/samples/wreck-glibc && $S ./p idt",
	       139, "==sandbox==ERROR: SIGSEGV");
	run_in("signal handlers (upcalls), then a fault",
	       "strip -g -o p $B/samples/signals-glibc && $S ./p", 139,
	       "recovered from stack overflow on the altstack");
}

Test(confine_e2e, report_files_by_relative_path)
{
	e2e_need_kvm();
	run_in("--report-json",
	       "$S --report-json r.json $B/samples/crash-nodbg-glibc null-read; "
	       "grep -c dedup_token r.json",
	       0, "\n1\n");
	run_in("--core", "$S --core core $B/samples/crash-dbg-glibc null-write; test -s core", 0,
	       "core written to core");
	run_in("--core and --report-json beside a relative program",
	       "cp $B/samples/crash-nodbg-glibc p && $S --core c --report-json j ./p ro-write; "
	       "test -s c && test -s j",
	       0, "core written to c");
	run_in("--debug-file, both relative",
	       "objcopy --only-keep-debug $B/samples/crash-dbg-glibc p.debug && "
	       "strip -o p $B/samples/crash-dbg-glibc && $S --debug-file p.debug ./p ud2",
	       132, "(crash.c:");
	run_in("--stats with a report", "$S --stats $B/samples/crash-nodbg-glibc null-write", 139,
	       "fault report built in");
}

Test(confine_e2e, audit_strace_stats_and_enosys)
{
	e2e_need_kvm();
	run_in("--audit",
	       "mkdir d && $S --audit a --ro d:/data $B/samples/escape-glibc /data "
	       ">/dev/null; grep -c deny a",
	       0, NULL);
	run_in("--audit-all",
	       "echo x > f && $S --audit a --audit-all --ro f:/f "
	       "$B/samples/cat-glibc /f >/dev/null && grep -c allow a",
	       0, NULL);
	run_in("--strace", "mkdir d && $S --strace --ro d:/d /usr/bin/busybox ls -la / /d", 0,
	       "[sandbox] getdents64(");
	run_in("--stats", "$S --stats $B/samples/hello-glibc", 0, "monitor RSS");
	run_in("the ENOSYS summary", "$S $B/samples/nosys-glibc", 0,
	       "unimplemented syscalls called");
	run_in("--trace-exits (or its refusal), a relative program",
	       "strip -g -o p $B/samples/hello-glibc && $S --trace-exits ./p", 0, "hello, world");
	run_in("stat of / and of a directory above a mount (glibc's user and host lookups)",
	       "mkdir -p m && $S --ro m:/a/b /usr/bin/busybox stat -c %n:%F / /a /a/b", 0,
	       "/a:directory");
}

Test(confine_e2e, every_limit)
{
	e2e_need_kvm();
	run_in("--max-files (119)", "$S --max-files 16 $B/samples/limits-glibc files", 119,
	       "--max-files 16");
	run_in("--cpu-time (120)", "$S --cpu-time 300ms $B/samples/limits-glibc spin", 120,
	       "CPU time limit");
	run_in("--timeout (121)", "$S --timeout 300ms $B/samples/limits-glibc sleep", 121,
	       "wall-clock limit");
	run_in("--max-output (122)",
	       "$S --max-output 1000 $B/samples/limits-glibc flood >/dev/null", 122,
	       "--max-output 1000");
	run_in("--max-write (123)",
	       "mkdir o && $S --rw o:/out --max-write 1K $B/samples/limits-glibc write /out/f", 123,
	       "--max-write 1024");
}

/* Runs from a snapshot (sandbox-fuzz, sandbox-serve) confine only the vCPU thread, which also
 * writes the report of a crashing input. */
Test(confine_e2e, a_crash_of_a_fuzz_target_by_relative_path)
{
	e2e_need_kvm();
	if (access(BUILD "/sandbox-fuzz", X_OK) != 0)
		cr_skip_test("no sandbox-fuzz in this build (SBX_HAVE_FUZZ)");
	run_in("sandbox-fuzz, a reproducer",
	       "strip -g -o t $B/samples/fuzz-planted && printf 'SBXFBB!' > in && "
	       "$B/sandbox-fuzz ./t in",
	       77, "SUMMARY: sandbox: SIGSEGV in planted_bug");
}

/* A signal a user sends: the confined monitor stops the guest, cleans up (--tmp) and dies of
 * it. */
Test(confine_e2e, a_signal_to_the_monitor)
{
	e2e_need_kvm();
	/* Once it beats, the monitor is confined and the guest runs. */
	run_in("SIGTERM while the guest runs",
	       E2E_SH_WAIT "$S --tmp /t --control c $B/samples/heartbeat-glibc 100000 >o & P=$!; "
			   "wait_for '[ -s o ]'; kill -TERM $P; wait $P",
	       143, NULL);
}

/* sandbox-ctl's commands, served by the control thread of a confined monitor. */
Test(confine_e2e, control_socket_commands)
{
	e2e_need_kvm();
	/* The heartbeat holds its last beat until g/go exists: every command finds it running. */
	run_in("pause, stats, resume, snapshot, restore",
	       E2E_SH_WAIT "C=$B/sandbox-ctl; mkdir g; $S --control c --ro g:/g "
			   "$B/samples/heartbeat-glibc 1500 1 4 - /g/go >a 2>&1 & P=$!; "
			   "wait_for \"grep -q '^10$' a\"; "
			   "$C c pause && $C c stats && $C c resume && $C c bogus; "
			   "$C c snapshot s1 --leave-running && $C c snapshot s2 --compress; "
			   "touch g/go; wait $P; cat a; $S --restore s1 --ro g:/g >/dev/null && "
			   "$S --restore s2 --ro g:/g >/dev/null && echo RESTORED",
	       0, "RESTORED");
}
