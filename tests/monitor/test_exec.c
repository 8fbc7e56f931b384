/* Many runs of one program from one snapshot (sbx_exec), on real VMs: nothing of one run may
 * reach the next, through memory, registers, files, the environment or randomness; crashes,
 * timeouts and out-of-memory end one run, not the sandbox; a reset leaves RAM equal to the
 * snapshot. */
#include <criterion/criterion.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e_util.h"
#include "exec.h"
#include "sandbox.h"
#include "vm.h"

#define PROBE SBX_BUILD_DIR "/samples/exec_probe-glibc"
#define PROBE_MUSL SBX_BUILD_DIR "/samples/exec_probe-musl"
#define STATE SBX_BUILD_DIR "/samples/fuzz-state"
#define NOOP SBX_BUILD_DIR "/samples/fuzz-noop"
#define PTRESET SBX_BUILD_DIR "/samples/ptreset-glibc"
/* The time limit of runs that must end on their own: it only turns a hang into a failure. */
#define NO_LIMIT_MS 120000

struct fx {
	struct policy pol;
	struct sbx_config cfg;
	struct sbx_exec *x;
	char *argv[4];
	int learn; /* runs' sites patched before later runs (run.learn_sites), 1 by default */
};

/* env: more NAME=VALUEs for the program, NULL-terminated, or NULL. */
static void fx_open3(struct fx *f, const char *prog, const char *arg, const char *arg2,
		     const char *const *env, enum sbx_exec_point point, int fast,
		     uint64_t timeout_ms, unsigned verify)
{
	e2e_need_kvm();
	char err[512];
	policy_init(&f->pol);
	cr_assert_eq(policy_add_tmp(&f->pol, "/tmp", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(policy_make_tmp(&f->pol, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(policy_set_env(&f->pol, "STATE_COMMANDS=1", err, sizeof(err)), 0, "%s", err);
	for (size_t i = 0; env && env[i]; i++)
		cr_assert_eq(policy_set_env(&f->pol, env[i], err, sizeof(err)), 0, "%s", err);
	f->learn = 1;
	f->argv[0] = (char *)prog;
	f->argv[1] = (char *)arg;
	f->argv[2] = arg ? (char *)arg2 : NULL;
	f->argv[3] = NULL;
	f->cfg = (struct sbx_config){.prog = prog,
				     .argv = f->argv,
				     .policy = &f->pol,
				     .mem_size = 64ull << 20,
				     .stdin_fd = -1,
				     .stdout_fd = -1,
				     .stderr_fd = 2,
				     .log = stderr,
				     .name = "exec-test"};
	struct sbx_exec_opts o = {
	    .point = point, .fast = fast, .timeout_ms = timeout_ms, .verify_every = verify};
	int r = sbx_exec_open(&f->cfg, &o, &f->x, err, sizeof(err));
	cr_assert_eq(r, 0, "sbx_exec_open: %s", err);
}

static void fx_open2(struct fx *f, const char *prog, const char *arg, const char *arg2,
		     enum sbx_exec_point point, int fast, uint64_t timeout_ms, unsigned verify)
{
	fx_open3(f, prog, arg, arg2, NULL, point, fast, timeout_ms, verify);
}

static void fx_open(struct fx *f, const char *prog, const char *arg, enum sbx_exec_point point,
		    int fast, uint64_t timeout_ms, unsigned verify)
{
	fx_open2(f, prog, arg, NULL, point, fast, timeout_ms, verify);
}

static void fx_close(struct fx *f)
{
	sbx_exec_close(f->x);
	policy_free(&f->pol);
}

/* One run with `in` on stdin (or as the fuzz input); returns its stdout (free it). */
static char *fx_run(struct fx *f, const char *in, char *const *envp, struct sbx_exec_run *out)
{
	int ifd = memfd_create("in", 0), ofd = memfd_create("out", 0);
	cr_assert(ifd >= 0 && ofd >= 0);
	cr_assert_eq(write(ifd, in, strlen(in)), (ssize_t)strlen(in));
	lseek(ifd, 0, SEEK_SET);
	struct sbx_exec_run run = {.stdin_fd = ifd,
				   .stdout_fd = ofd,
				   .stderr_fd = -1,
				   .envp = envp,
				   .input = (const uint8_t *)in,
				   .input_len = strlen(in),
				   .learn_sites = f->learn};
	char err[512];
	cr_assert_eq(sbx_exec_one(f->x, &run, err, sizeof(err)), 0, "sbx_exec_one: %s", err);
	struct stat st;
	fstat(ofd, &st);
	char *b = calloc(1, (size_t)st.st_size + 1);
	cr_assert_eq(pread(ofd, b, (size_t)st.st_size, 0), st.st_size);
	close(ifd);
	close(ofd);
	if (out)
		*out = run;
	return b;
}

static void field(const char *text, const char *key, char *out, size_t n)
{
	const char *p = strstr(text, key);
	cr_assert(p, "no %s in: %s", key, text);
	p += strlen(key);
	size_t k = strcspn(p, " \n");
	snprintf(out, n, "%.*s", (int)k, p);
}

static void check_cgi(const char *prog, int fast)
{
	struct fx f;
	fx_open(&f, prog, "cgi", SBX_POINT_ENTRY, fast, NO_LIMIT_MS, 0);
	char rnd_a[64] = "", rnd_b[64] = "", gr_a[64] = "", gr_b[64] = "";
	for (int i = 0; i < 20; i++) {
		char in[32], qs[64];
		snprintf(in, sizeof(in), "body%d", i);
		snprintf(qs, sizeof(qs), "QUERY_STRING=q%d", i);
		/* The probe also leaves a secret in the mailbox page's spare bytes. */
		char *envp[] = {qs, "EXEC_PROBE_MAILBOX=1", NULL};
		struct sbx_exec_run run;
		char *o = fx_run(&f, in, envp, &run);
		cr_assert(run.parked, "run %d did not end by exiting: %s", i, run.res.reason);
		cr_assert_eq(run.res.status, 0);
		char want[160];
		snprintf(want, sizeof(want),
			 "argc=2 argv1=cgi qs=q%d in=body%d leak=none table=0\n", i, i);
		cr_assert(strstr(o, want), "run %d: wanted \"%s\", got: %s", i, want, o);
		memcpy(rnd_a, rnd_b, sizeof(rnd_a));
		memcpy(gr_a, gr_b, sizeof(gr_a));
		field(o, "at_random=", rnd_b, sizeof(rnd_b));
		field(o, "getrandom=", gr_b, sizeof(gr_b));
		if (i > 0) {
			cr_assert_str_neq(rnd_a, rnd_b, "AT_RANDOM repeated");
			cr_assert_str_neq(gr_a, gr_b, "getrandom repeated");
		}
		free(o);
	}
	fx_close(&f);
}

Test(exec, cgi_runs_see_only_their_own_request)
{
	check_cgi(PROBE, 0);
}

Test(exec, cgi_runs_musl_and_fast)
{
	check_cgi(PROBE_MUSL, 1);
}

/* Runs that map pages and take a write permission away leave page-table pages that differ
 * from the snapshot's; KVM shadows them and does not see the reset put them back. Each run
 * must find the snapshot's mappings (samples/ptreset.c), with the kernel's own writes of the
 * changed entries (not the memslot re-added) telling KVM, and with an environment of another
 * size each time (the stack the run starts on moves under the kernel that fixes the tables). */
static void check_tables(int fast, int learn)
{
	struct fx f;
	fx_open(&f, PTRESET, NULL, SBX_POINT_ENTRY, fast, NO_LIMIT_MS, fast ? 7 : 0);
	f.learn = learn;
	const volatile struct sbx_bootinfo *boot =
	    (const volatile struct sbx_bootinfo *)(sbx_exec_vm(f.x)->proc.mem.base +
						   SBX_BOOTINFO_ADDR);
	uint32_t patched0 = boot->patched, first = 0;
	uint64_t tables = 0, reloads = 0;
	for (int i = 0; i < 40; i++) {
		char in[16], pad[600] = "PAD=";
		snprintf(in, sizeof(in), "%d", (i * 7) % 5);
		memset(pad + 4, 'p', (size_t)(i * 37) % 500);
		char *envp[] = {pad, NULL};
		struct sbx_exec_run run;
		char *o = fx_run(&f, in, envp, &run);
		cr_assert(run.parked, "run %d did not end by exiting: %s", i, run.res.reason);
		cr_assert_eq(run.res.status, 0, "run %d: status %d", i, run.res.status);
		cr_assert(strstr(o, "probe=0 zero=1 same=1 ro=ok\n"), "run %d (%s pages first): %s",
			  i, in, o);
		tables += run.reset_tables;
		reloads += (uint64_t)run.reset_reload;
		/* Every run calls the same sites: those the first patched at their traps, the
		 * kernel patches before each later run (none left for a trap) when the runs may
		 * teach it; else each run patches them at its traps again. */
		uint32_t patched = boot->patched - patched0;
		if (i == 0)
			first = patched;
		cr_assert_eq(patched, first, "run %d: %u sites patched, run 0 %u", i, patched,
			     first);
		if (i > 0)
			cr_assert_eq(run.sites_patched, f.learn ? patched : 0,
				     "run %d: %u sites patched before it, %u in all", i,
				     run.sites_patched, patched);
		free(o);
	}
	/* PVM (both at CPL3) and hardware KVM's default (both at CPL0) patch. */
	cr_assert_gt(first, 0, "the first run patched no syscall site");
	cr_assert_gt(tables, 0, "no reset wrote page tables back");
	cr_assert_eq(reloads, 0, "%llu resets re-added the memslot", (unsigned long long)reloads);
	fx_close(&f);
}

Test(exec, runs_that_change_page_tables_find_the_snapshots, .timeout = 300)
{
	check_tables(0, 1);
}

Test(exec, runs_that_change_page_tables_find_the_snapshots_fast, .timeout = 300)
{
	check_tables(1, 1);
}

/* Runs the caller does not trust (run.learn_sites 0: sandbox-serve's requests) leave no site
 * for a later run to find patched. */
Test(exec, untrusted_runs_teach_later_runs_no_sites, .timeout = 300)
{
	check_tables(0, 0);
}

/* `runs` runs of `prog mode` from --warm's point, each with its own request: each one's output
 * holds "<has>argv1=MODE qs=- in=reqN leak=none table=T" (the table built before the point is
 * there; nothing of the last run is). exited: each run ends by the program's exit, status 0. */
static void check_warm(const char *prog, const char *mode, int runs, const char *has, int exited)
{
	struct fx f;
	fx_open(&f, prog, mode, SBX_POINT_STDIN, 0, NO_LIMIT_MS, 0);
	for (int i = 0; i < runs; i++) {
		char in[32];
		snprintf(in, sizeof(in), "req%d", i);
		struct sbx_exec_run run;
		char *o = fx_run(&f, in, NULL, &run);
		if (exited) {
			cr_assert_eq(run.res.end, SBX_END_EXIT, "run %d: %s", i, run.res.reason);
			cr_assert_eq(run.res.status, 0, "run %d: %s", i, run.res.reason);
		}
		char want[160];
		snprintf(want, sizeof(want), "%sargv1=%s qs=- in=req%d leak=none table=%u", has,
			 mode, i, 4095u * 2654435761u);
		cr_assert(strstr(o, want), "run %d: wanted \"%s\", got: %s", i, want, o);
		free(o);
	}
	fx_close(&f);
}

Test(exec, warm_point_is_the_first_read_of_stdin)
{
	check_warm(PROBE, "warm", 10, "", 0);
}

/* A pipe with bytes in it, an eventfd's count and an epoll instance's registration at the
 * point: each run finds them as they were, whatever the last one read and wrote. */
Test(exec, warm_point_objects_come_back_fresh_each_run)
{
	check_warm(PROBE, "warmobj", 6, "objects=ok argc=2 ", 0);
}

/* A program whose threads start before its point: the snapshot holds them all (a pool waiting
 * on a condition variable, a thread sleeping in a loop), and every run gets them back as they
 * were, with its own request. With "warmreader" the read that is the point is a pool thread's. */
Test(exec, warm_point_holds_the_threads_started_before_it, .timeout = 300)
{
	check_warm(PROBE, "warmpool", 8, "pool=ok objects=ok argc=2 ", 1);
}

Test(exec, warm_point_on_another_thread_than_main, .timeout = 300)
{
	check_warm(PROBE_MUSL, "warmreader", 8, "pool=ok objects=ok argc=2 ", 1);
}

/* The fuzz driver's point: input 1 and input 100,000 see the very same world (globals, heap,
 * environment, a file on --tmp), and RAM equals the snapshot after every 1,000th reset. */
static void check_state(int fast, int inputs)
{
	struct fx f;
	fx_open(&f, STATE, NULL, SBX_POINT_CALL, fast, NO_LIMIT_MS, 1000);
	struct sbx_exec_run run;
	char *first = fx_run(&f, "P", NULL, &run);
	cr_assert(run.parked, "%s", run.res.reason);
	cr_assert(strstr(first, "state: counter=1 "), "%s", first);
	cr_assert(strstr(first, " file=0"), "%s", first);
	uint64_t exits = 0;
	for (int i = 1; i < inputs - 1; i++) {
		char in[2] = {(char)('a' + i % 26), 0};
		char *o = fx_run(&f, in, NULL, &run);
		cr_assert(run.parked, "input %d: %s", i + 1, run.res.reason);
		exits += run.exits;
		free(o);
	}
	char *last = fx_run(&f, "P", NULL, &run);
	cr_assert_str_eq(first, last);
	/* Each input does file I/O on the host: a slow call makes the guest ring, so exits
	 * are not counted here (noop_fast_path_has_no_exits does). */
	(void)exits;
	free(first);
	free(last);
	fx_close(&f);
}

Test(exec, fuzz_input_1_and_100000_see_the_same_world, .timeout = 900)
{
#ifdef __SANITIZE_ADDRESS__
	/* Under ASan the monitor is ~5x slower: the full 100,000 run in the other builds. */
	check_state(1, 10000);
#else
	check_state(1, 100000);
#endif
}

Test(exec, fuzz_strict_reset_too, .timeout = 240)
{
	check_state(0, 5000);
}

/* Each way a run can end, then a run as the first was (verify_every 1 compares RAM too). The
 * endless loop needs a time limit, in a sandbox of its own: the other inputs (filling 64 MiB
 * of RAM takes a while on a slow host) must not meet one. */
Test(exec, crash_abort_exit_timeout_oom_end_one_run_only, .timeout = 600)
{
	struct fx f, fl;
	fx_open(&f, STATE, NULL, SBX_POINT_CALL, 1, NO_LIMIT_MS, 1);
	fx_open(&fl, STATE, NULL, SBX_POINT_CALL, 1, 3000, 1);
	struct sbx_exec_run run;
	char *ref = fx_run(&f, "P", NULL, &run), *refl = fx_run(&fl, "P", NULL, &run);
	struct {
		const char *in;
		enum sbx_end end;
		int status, oom;
	} cases[] = {
	    {"C", SBX_END_FAULT, 128 + 11, 0},
	    {"A", SBX_END_SIGNAL, 128 + 6, 0},
	    {"E", SBX_END_EXIT, 3, 0},
	    {"L", SBX_END_LIMIT, SBX_STATUS_LIMIT_TIME, 0},
	    {"R", SBX_END_EXIT, 0, 0 /* parks */},
	    {"M", SBX_END_SIGNAL, 128 + 6, 1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fx *x = cases[i].end == SBX_END_LIMIT ? &fl : &f;
		free(fx_run(x, cases[i].in, NULL, &run));
		cr_assert_eq(run.res.end, cases[i].end, "%s: end %d (%s)", cases[i].in, run.res.end,
			     run.res.reason);
		cr_assert_eq(run.res.status, cases[i].status, "%s: status %d (%s)", cases[i].in,
			     run.res.status, run.res.reason);
		cr_assert_eq(run.oom, cases[i].oom, "%s: oom %d", cases[i].in, run.oom);
		if (cases[i].end == SBX_END_FAULT || cases[i].end == SBX_END_SIGNAL)
			cr_assert(run.res.dedup[0], "%s: no DEDUP_TOKEN", cases[i].in);
		/* And the next input is as the first was. */
		char *o = fx_run(x, "P", NULL, &run);
		cr_assert_str_eq(o, x == &f ? ref : refl, "after %s", cases[i].in);
		cr_assert(run.parked, "after %s: %s", cases[i].in, run.res.reason);
		free(o);
	}
	free(ref);
	free(refl);
	fx_close(&fl);
	fx_close(&f);
}

/* The fuzz driver's point in a target whose threads started before it (a worker on a condition
 * variable and a thread asleep, from LLVMFuzzerInitialize; a Go runtime always has such): the
 * point is taken with every vCPU paused, each input ends by a stop at SBX_EXEC_OP_DONE and the
 * next starts from a full reset that puts every thread back. Every input sees the first one's
 * world, the worker's own state included; a crash on the worker, an abort, an exit, and threads
 * of the input's own end one input only. */
static void check_point_with_threads(int fast, int inputs, int joined)
{
	struct fx f;
	const char *const env[] = {"STATE_INIT_POOL=1", "STATE_INIT_THREAD=1", NULL};
	const char *const env_joined[] = {"STATE_INIT_JOINED=1", NULL};
	fx_open3(&f, STATE, NULL, NULL, joined ? env_joined : env, SBX_POINT_CALL, fast,
		 NO_LIMIT_MS, 7);
	struct sbx_exec_run run;
	char *ref = fx_run(&f, "P", NULL, &run);
	cr_assert(run.parked, "%s", run.res.reason);
	cr_assert(strstr(ref, "state: counter=1 "), "%s", ref);
	struct {
		const char *in;
		enum sbx_end end;
		int status, parked;
	} cases[] = {
	    {"Q", SBX_END_EXIT, 0, 1},
	    {"QC", SBX_END_FAULT, 128 + 11, 0},
	    {"A", SBX_END_SIGNAL, 128 + 6, 0},
	    {"E", SBX_END_EXIT, 3, 0},
	    {"T", SBX_END_EXIT, 0, 1},
	    {"U", SBX_END_EXIT, 0, 1},
	    {"R", SBX_END_EXIT, 0, 1},
	    {"C", SBX_END_FAULT, 128 + 11, 0},
	    /* exit(0) is no input's end, after inputs that ended where inputs end */
	    {"Z", SBX_END_EXIT, 0, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (joined && cases[i].in[0] == 'Q')
			continue; /* no pool */
		free(fx_run(&f, cases[i].in, NULL, &run));
		cr_assert_eq(run.res.end, cases[i].end, "%s: end %d (%s)", cases[i].in, run.res.end,
			     run.res.reason);
		cr_assert_eq(run.res.status, cases[i].status, "%s: status %d (%s)", cases[i].in,
			     run.res.status, run.res.reason);
		cr_assert_eq(run.parked, cases[i].parked, "%s: %s", cases[i].in, run.res.reason);
		if (cases[i].end == SBX_END_FAULT)
			cr_assert(run.res.dedup[0], "%s: no DEDUP_TOKEN", cases[i].in);
		char *o = fx_run(&f, "P", NULL, &run);
		cr_assert_str_eq(o, ref, "after %s", cases[i].in);
		cr_assert(run.parked, "after %s: %s", cases[i].in, run.res.reason);
		free(o);
	}
	for (int i = 0; i < inputs; i++) {
		free(fx_run(&f, joined ? "R" : "Q", NULL, &run));
		cr_assert(run.parked, "input %d: %s", i, run.res.reason);
	}
	char *last = fx_run(&f, "P", NULL, &run);
	cr_assert_str_eq(last, ref);
	free(last);
	free(ref);
	fx_close(&f);
}

Test(exec, fuzz_point_with_threads_started_before_it, .timeout = 600)
{
	check_point_with_threads(1, 300, 0);
}

Test(exec, fuzz_point_with_threads_strict_reset_too, .timeout = 600)
{
	check_point_with_threads(0, 100, 0);
}

/* A thread that ended before the point: none runs there, but the kernel has had one, so the
 * point is still the monitor's; each input's page-table change ('R') must not reach the next,
 * whose vCPU goes on from the question rather than the park loop that would write the changed
 * entries again (so the reset re-adds the memslot). */
Test(exec, fuzz_point_after_a_thread_ended, .timeout = 600)
{
	check_point_with_threads(1, 100, 1);
}

Test(exec, noop_fast_path_has_no_exits)
{
	struct fx f;
	fx_open(&f, NOOP, NULL, SBX_POINT_CALL, 1, NO_LIMIT_MS, 0);
	uint64_t exits = 0, slow = 0;
	for (int i = 0; i < 2000; i++) {
		struct sbx_exec_run run;
		free(fx_run(&f, "x", NULL, &run));
		cr_assert(run.parked);
		exits += run.exits;
		slow += (uint64_t)run.slow;
	}
	/* The waiting thread spins only with a core of its own (docs/exec.md): with one CPU in
	 * the affinity mask each run parks in an exit instead (the guest rings, one exit, and the
	 * reset holds the vCPU), and nothing more. */
	cpu_set_t cpus;
	if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0 && CPU_COUNT(&cpus) == 1) {
		cr_assert_leq(exits, 2000, "%llu exits in 2000 inputs on one CPU",
			      (unsigned long long)exits);
	} else {
		cr_assert_lt(exits, 20, "%llu exits in 2000 inputs", (unsigned long long)exits);
		cr_assert_lt(slow, 5, "%llu slow resets", (unsigned long long)slow);
	}
	fx_close(&f);
}

/* A kill meant for a run that comes just after the run ended (its watcher a moment late: AFL's
 * time limit, sandbox-serve's --timeout) must not end the next run: AFL saved such a run as a
 * SIGKILL crash on a busy host. A kill of the sandbox between runs is what it leaves behind:
 * the vCPU thread told to stop, and on its way. */
Test(exec, a_late_kill_does_not_end_the_next_run, .timeout = 600)
{
	struct fx f;
	fx_open(&f, NOOP, NULL, SBX_POINT_CALL, 1, NO_LIMIT_MS, 0);
	for (int i = 0; i < 200; i++) {
		struct sbx_exec_run run;
		free(fx_run(&f, "x", NULL, &run));
		cr_assert(run.parked, "run %d after a late kill: %s", i, run.res.reason);
		sbx_vm_kill(sbx_exec_vm(f.x), SBX_END_LIMIT, SBX_STATUS_LIMIT_TIME, 0,
			    "a late kill");
	}
	fx_close(&f);
}

/* Opening a sandbox of prog (argv: prog, arg) that must fail: err says why. */
static void open_fails(const char *prog, const char *arg, const char *name,
		       const struct sbx_exec_opts *o, char *err, size_t errlen)
{
	e2e_need_kvm();
	struct policy pol;
	policy_init(&pol);
	char *argv[] = {(char *)prog, (char *)arg, NULL};
	struct sbx_config cfg = {.prog = prog,
				 .argv = argv,
				 .policy = &pol,
				 .mem_size = 64ull << 20,
				 .stdin_fd = -1,
				 .stdout_fd = -1,
				 .stderr_fd = -1,
				 .log = stderr,
				 .name = name};
	struct sbx_exec *x = NULL;
	cr_assert_lt(sbx_exec_open(&cfg, o, &x, err, errlen), 0);
	policy_free(&pol);
}

Test(exec, a_program_without_its_point_is_an_error)
{
	struct sbx_exec_opts o = {.point = SBX_POINT_CALL, .fast = 1};
	char err[512];
	open_fails(PROBE, NULL, "exec-test", &o, err, sizeof(err));
	cr_assert(strstr(err, "ended before its snapshot point"), "%s", err);
}

/* The way to the point is bounded like a run: a program that never gets there is stopped at the
 * time limit, and opening fails saying so (it used to wait for ever). */
Test(exec, a_program_that_never_reaches_its_point_is_stopped_at_the_time_limit, .timeout = 300)
{
	struct sbx_exec_opts o = {.point = SBX_POINT_STDIN, .timeout_ms = 300};
	char err[512];
	open_fails(SBX_BUILD_DIR "/samples/limits-glibc", "spin", "spin", &o, err, sizeof(err));
	cr_assert(strstr(err, "spin ended before its snapshot point: wall-clock limit reached: "
			      "--timeout 300 ms"),
		  "%s", err);
}

Test(exec, warm_program_that_never_reads_stdin_is_an_error)
{
	struct sbx_exec_opts o = {.point = SBX_POINT_STDIN};
	char err[512];
	open_fails(SBX_BUILD_DIR "/samples/hello-glibc", NULL, "hello", &o, err, sizeof(err));
	cr_assert(strstr(err, "hello ended before its snapshot point: exited with status 0"), "%s",
		  err);
}

/* A run that leaves a shared file mapping behind: the reset drops its memslot, so more runs
 * than there are memslots for mappings all map. */
Test(exec, a_reset_drops_the_runs_shared_file_mappings, .timeout = 600)
{
	struct fx f;
	fx_open2(&f, SBX_BUILD_DIR "/samples/mapshared-musl", "leave", "/tmp", SBX_POINT_ENTRY, 0,
		 NO_LIMIT_MS, 0);
	for (int i = 0; i < 80; i++) {
		struct sbx_exec_run r;
		char *out = fx_run(&f, "", NULL, &r);
		cr_assert_str_eq(out, "mmap shared rw: ok\n", "run %d", i);
		free(out);
	}
	fx_close(&f);
}
