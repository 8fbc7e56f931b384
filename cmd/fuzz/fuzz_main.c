/* sandbox-fuzz: the command line, and libFuzzer driving a target inside a micro-VM. libFuzzer
 * (clang's, linked without instrumenting this program) does the mutating, the corpus and every
 * familiar flag; it sees the guest's coverage counters, mapped from guest RAM, as its own
 * module. Each input is one sbx_exec run: reset to the snapshot, write the input, run. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*cb)(const uint8_t *, size_t));
void __sanitizer_cov_8bit_counters_init(uint8_t *start, uint8_t *stop);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* libFuzzer looks these up in a program built with a sanitizer and warns when they are
 * missing. This one has none: the crash report is the monitor's, printed before libFuzzer's. */
int __sanitizer_acquire_crash_state(void);
int __sanitizer_acquire_crash_state(void)
{
	static atomic_int taken;
	return atomic_exchange(&taken, 1) == 0;
}
void __sanitizer_print_stack_trace(void);
void __sanitizer_print_stack_trace(void)
{
}
void __sanitizer_set_death_callback(void (*cb)(void));
void __sanitizer_set_death_callback(void (*cb)(void))
{
	(void)cb;
}

/* libFuzzer's callbacks carry no context: the one fuzzer of this process. */
static struct fuzz *fuzz_self;

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: sandbox-fuzz [SANDBOX OPTIONS] [FUZZ OPTIONS] TARGET [libFuzzer flags] "
	    "[CORPUS_DIR... | FILE...]\n"
	    "       afl-fuzz -i IN -o OUT -- sandbox-fuzz --afl [OPTIONS] TARGET\n"
	    "Fuzzes TARGET, a program built with clang's -fsanitize-coverage=\n"
	    "inline-8bit-counters and linked with libsandbox-fuzz-guest.a, inside a micro-VM\n"
	    "reset to a snapshot after every input. Flags after TARGET are libFuzzer's own\n"
	    "(-runs, -max_total_time, -max_len, -timeout, -dict, -artifact_prefix, -seed,\n"
	    "-merge, -minimize_crash...); FILEs alone are run once each (reproduction).\n"
	    "Fuzz options (docs/fuzzing.md)\n"
	    "  --ci                   CI mode: deterministic, progress lines, stop at the first "
	    "new\n"
	    "                         crash, minimise it, write crash-<sha1> with its report\n"
	    "                         (.txt, .json) and the reproduction command\n"
	    "  --max-total-time=SEC   with --ci: the time budget (default 300)\n"
	    "  --known-crashes=FILE   DEDUP_TOKENs (one per line) that are not new\n"
	    "  --keep-going           record each new crash bucket once and go on fuzzing\n"
	    "  --deterministic        the same clock and random bytes for every input\n"
	    "  --strict-reset         the monitor resets the vCPU's registers after every input\n"
	    "                         (for a target that may be hostile to the harness)\n"
	    "  --verify-reset=N       compare all of guest RAM with the snapshot every N inputs\n"
	    "  --afl                  speak AFL++'s forkserver protocol (run by afl-fuzz)\n");
	sbx_cli_usage(f);
}

/* Its options that the table does not store (the shared ones are in cli.c). */
enum { OWN_MAX_TIME, OWN_VERIFY };

static int own(void *ctx, int id, const char *arg, char *err, size_t errlen)
{
	struct fuzz *fz = ctx;
	char *end;
	if (id == OWN_MAX_TIME) {
		fz->max_total_time = strtoull(arg, &end, 10);
		if (*end || !fz->max_total_time) {
			snprintf(err, errlen, "--max-total-time %s: not a number of seconds", arg);
			return -EINVAL;
		}
		return 0;
	}
	fz->verify_every = (unsigned)strtoul(arg, &end, 10);
	if (*end || !fz->verify_every) {
		snprintf(err, errlen, "--verify-reset %s: not a count of inputs", arg);
		return -EINVAL;
	}
	return 0;
}

static const struct sbx_cli_opt fuzz_opts[] = {
    SBX_CLI_FLAG("afl", struct fuzz, afl),
    SBX_CLI_FLAG("ci", struct fuzz, ci),
    SBX_CLI_FLAG("deterministic", struct fuzz, deterministic),
    SBX_CLI_STRING("known-crashes", struct fuzz, known_path),
    SBX_CLI_OWN("max-total-time", required_argument, OWN_MAX_TIME),
    SBX_CLI_FLAG("strict-reset", struct fuzz, strict),
    SBX_CLI_OWN("verify-reset", required_argument, OWN_VERIFY),
    SBX_CLI_FLAG("keep-going", struct fuzz, keep_going),
    {0},
};

static const struct sbx_cli_front fuzz_front = {fuzz_opts, own, usage};

/* libFuzzer's own flags that matter here too. */
static void lf_flags(struct fuzz *fz)
{
	fz->timeout_s = 1200;
	snprintf(fz->artifact_prefix, sizeof(fz->artifact_prefix), "./");
	for (int i = 0; i < fz->nlf; i++) {
		const char *a = fz->lf[i];
		if (!strncmp(a, "-timeout=", 9))
			fz->timeout_s = strtoull(a + 9, NULL, 10);
		else if (!strncmp(a, "-artifact_prefix=", 17))
			snprintf(fz->artifact_prefix, sizeof(fz->artifact_prefix), "%s", a + 17);
		else if (!strncmp(a, "-exact_artifact_path=", 21))
			fz->exact_artifact = a + 21;
	}
}

/* libFuzzer ends a -runs or -max_total_time run with exit(): the totals, once more. */
static void final_progress(void)
{
	if (fuzz_self && fuzz_self->x && fuzz_self->execs)
		fuzz_progress(fuzz_self, 1);
}

static int lf_callback(const uint8_t *data, size_t size)
{
	return fuzz_one(fuzz_self, data, size);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	struct fuzz *fz = fuzz_self;
	char err[1024];
	if (!fz)
		return 0;
	if (fuzz_open(fz, err, sizeof(err)) < 0) {
		fprintf(stderr, "sandbox-fuzz: %s: %s\n", fz->target, err);
		exit(1);
	}
	struct sbx_exec_info info;
	sbx_exec_info(fz->x, &info);
	if (!info.ncounters) {
		fprintf(
		    stderr,
		    "sandbox-fuzz: %s: the target has no coverage counters: build it with clang "
		    "-fsanitize-coverage=inline-8bit-counters (see sbx_fuzz.h)\n",
		    fz->target);
		exit(1);
	}
	atexit(final_progress);
	/* The guest's counters, in guest RAM, become libFuzzer's module. */
	__sanitizer_cov_8bit_counters_init(info.counters, info.counters + info.ncounters);
	fprintf(stderr,
		"sandbox-fuzz: %s: snapshot after %.1f ms (%llu pages), %zu coverage counters, "
		"inputs up to %llu bytes\n",
		fz->target, info.open_ms, (unsigned long long)info.snapshot_pages, info.ncounters,
		(unsigned long long)info.input_max);
	return 0;
}

/* The arguments a re-execution by libFuzzer (-minimize_crash, -merge, -fork) brings back:
 * ours and the target as "--sbx-arg=" and "--sbx-target=" flags, which libFuzzer leaves
 * alone (it ignores flags with two dashes) and passes on. */
static int split_reexec(struct fuzz *fz, int argc, char **argv, char ***own_argv, int *own_argc)
{
	int found = 0;
	char **o = calloc((size_t)argc + 2, sizeof(*o));
	char **l = calloc((size_t)argc + 1, sizeof(*l));
	if (!o || !l)
		return -ENOMEM;
	int no = 0, nl = 0;
	o[no++] = argv[0];
	for (int i = 1; i < argc; i++) {
		if (!strncmp(argv[i], "--sbx-arg=", 10)) {
			o[no++] = argv[i] + 10;
			found = 1;
		} else if (!strncmp(argv[i], "--sbx-target=", 13)) {
			fz->target = argv[i] + 13;
			found = 1;
		} else {
			l[nl++] = argv[i];
		}
	}
	if (!found) {
		free(o);
		free(l);
		return 0;
	}
	if (!fz->target) {
		free(o);
		free(l);
		return -EINVAL; /* --sbx-arg= without --sbx-target=: not one of our re-executions */
	}
	o[no++] = (char *)fz->target;
	*own_argv = o;
	*own_argc = no;
	fz->lf = l;
	fz->nlf = nl;
	return 1;
}

/* The command line: ours (the shared flags and fuzz's own) up to the target, libFuzzer's after
 * it (or from a re-execution's --sbx-arg= flags). 0 to go on, else the exit status. */
static int fuzz_args(struct fuzz *fz, int argc, char **argv)
{
	char **pargv = argv;
	int pargc = argc;
	int re = split_reexec(fz, argc, argv, &pargv, &pargc);
	if (re < 0) {
		sbx_cli_say(&fz->cli, "%s",
			    re == -EINVAL ? "--sbx-arg= needs --sbx-target= (they are for "
					    "libFuzzer's re-executions of sandbox-fuzz)"
					  : "out of memory");
		return 2;
	}
	int r = sbx_cli_args(&fz->cli, pargc, pargv, &fuzz_front, fz);
	if (r != 0)
		return r > 0 ? -1 : 2;
	if (optind >= pargc) {
		usage(stderr);
		return 2;
	}
	fz->target = pargv[optind];
	fz->own = pargv + 1;
	fz->nown = optind - 1;
	if (!re) {
		fz->lf = pargv + optind + 1;
		fz->nlf = pargc - optind - 1;
	}
	lf_flags(fz);
	char err[1024];
	if (sbx_cli_program(&fz->cli, fz->target) != 0)
		return 2;
	/* A target built with AddressSanitizer, as libFuzzer would run it: LeakSanitizer stops
	 * the world with a thread and ptrace, which the sandbox has not; a finding ends in
	 * abort(), so the monitor's report (and bucket) follows ASan's own; no symbolizer
	 * process can run in the sandbox (ASan's frames say module+offset, the monitor's
	 * report names them). The user's own ASAN_OPTIONS win. */
	if (!policy_has_env(&fz->cli.pol, "ASAN_OPTIONS") &&
	    policy_set_env(&fz->cli.pol,
			   "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:symbolize=0:"
			   "handle_abort=0",
			   err, sizeof(err)) < 0) {
		sbx_cli_say(&fz->cli, "%s", err);
		return 2;
	}
	if (fuzz_known_load(fz, err, sizeof(err)) < 0) {
		sbx_cli_say(&fz->cli, "%s", err);
		return 2;
	}
	return 0;
}

/* libFuzzer's argv: our arguments folded into flags it passes on untouched. */
static char **libfuzzer_argv(const struct fuzz *fz, const char *self, int *argc)
{
	int n = 0;
	char **v = calloc((size_t)(fz->nown + fz->nlf + 3), sizeof(*v));
	if (!v)
		return NULL;
	v[n++] = (char *)self;
	for (int i = 0; i < fz->nown; i++, n++)
		if (asprintf(&v[n], "--sbx-arg=%s", fz->own[i]) < 0)
			return NULL;
	if (asprintf(&v[n++], "--sbx-target=%s", fz->target) < 0)
		return NULL;
	for (int i = 0; i < fz->nlf; i++)
		v[n++] = fz->lf[i];
	v[n] = NULL;
	*argc = n;
	return v;
}

int main(int argc, char **argv)
{
	static struct fuzz fz;
	sbx_cli_init(&fz.cli, "sandbox-fuzz");
	int r = fuzz_args(&fz, argc, argv);
	if (r != 0)
		return r < 0 ? 0 : r;
	if (fz.afl)
		return fuzz_afl_main(&fz);
	if (fz.ci)
		return fuzz_ci_main(&fz, argv[0]);
	int n;
	char **lfargv = libfuzzer_argv(&fz, argv[0], &n);
	if (!lfargv)
		return 1;
	fuzz_self = &fz;
	return LLVMFuzzerRunDriver(&n, &lfargv, lf_callback);
}
