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

enum {
	OPT_AFL = SBX_OPT_FRONT,
	OPT_CI,
	OPT_DET,
	OPT_KNOWN,
	OPT_MAXTIME,
	OPT_STRICT,
	OPT_VERIFY,
	OPT_KEEP,
};

static const struct option fuzz_opts[] = {
    {"afl", no_argument, NULL, OPT_AFL},
    {"ci", no_argument, NULL, OPT_CI},
    {"deterministic", no_argument, NULL, OPT_DET},
    {"known-crashes", required_argument, NULL, OPT_KNOWN},
    {"max-total-time", required_argument, NULL, OPT_MAXTIME},
    {"strict-reset", no_argument, NULL, OPT_STRICT},
    {"verify-reset", required_argument, NULL, OPT_VERIFY},
    {"keep-going", no_argument, NULL, OPT_KEEP},
    {NULL, 0, NULL, 0},
};

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: sandbox-fuzz [SANDBOX OPTIONS] [FUZZ OPTIONS] TARGET [libFuzzer flags] "
	    "[CORPUS_DIR... | FILE...]\n"
	    "       afl-fuzz -i IN -o OUT -- sandbox-fuzz --afl [OPTIONS] TARGET\n"
	    "Fuzzes TARGET, a static program built with clang's -fsanitize-coverage=\n"
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

static int front(void *ctx, int opt, const char *arg, char *err, size_t errlen)
{
	struct fuzz *fz = ctx;
	char *end;
	switch (opt) {
	case OPT_AFL:
		fz->afl = 1;
		return 0;
	case OPT_CI:
		fz->ci = 1;
		return 0;
	case OPT_DET:
		fz->deterministic = 1;
		return 0;
	case OPT_KNOWN:
		fz->known_path = arg;
		return 0;
	case OPT_MAXTIME:
		fz->max_total_time = strtoull(arg, &end, 10);
		if (*end || !fz->max_total_time) {
			snprintf(err, errlen, "--max-total-time %s: not a number of seconds", arg);
			return -EINVAL;
		}
		return 0;
	case OPT_STRICT:
		fz->strict = 1;
		return 0;
	case OPT_VERIFY:
		fz->verify_every = (unsigned)strtoul(arg, &end, 10);
		if (*end || !fz->verify_every) {
			snprintf(err, errlen, "--verify-reset %s: not a count of inputs", arg);
			return -EINVAL;
		}
		return 0;
	case OPT_KEEP:
		fz->keep_going = 1;
		return 0;
	}
	return -EINVAL;
}

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

int fuzz_open(struct fuzz *fz, char *err, size_t errlen)
{
	struct sbx_config *c = &fz->cli.cfg;
	static char *gargv[2];
	gargv[0] = (char *)fz->target;
	c->prog = fz->target;
	c->mem_size = fz->cli.pol.lim.mem ? fz->cli.pol.lim.mem : 256ull << 20;
	c->argv = gargv;
	c->name = "sandbox-fuzz";
	fz->log = tmpfile();
	if (fz->log)
		c->log = fz->log;
	/* The monitor writes a crash's JSON report here, next to the artifacts (the user's own
	 * directory, not a shared one like /tmp), and it is renamed to the artifact's name. */
	const char *slash = strrchr(fz->artifact_prefix, '/');
	snprintf(fz->json_tmp, sizeof(fz->json_tmp), "%.*s.sandbox-fuzz-%d.json",
		 slash ? (int)(slash - fz->artifact_prefix + 1) : 0, fz->artifact_prefix,
		 (int)getpid());
	c->report_json = fz->json_tmp;
	struct sbx_exec_opts o = {
	    .point = SBX_POINT_CALL,
	    .fast = !fz->strict,
	    .deterministic = fz->deterministic,
	    .verify_every = fz->verify_every,
	    .timeout_ms = fz->timeout_s * 1000,
	};
	int r = sbx_exec_open(c, &o, &fz->x, err, errlen);
	if (fz->log) {
		/* What the monitor said while opening (-v), shown now. */
		fflush(fz->log);
		rewind(fz->log);
		char b[4096];
		size_t n;
		while ((n = fread(b, 1, sizeof(b), fz->log)) > 0)
			fwrite(b, 1, n, stderr);
		rewind(fz->log);
		if (ftruncate(fileno(fz->log), 0) < 0)
			fz->log = NULL;
	}
	clock_gettime(CLOCK_MONOTONIC, &fz->start);
	fz->last_progress = fz->start;
	return r;
}

static double secs_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static void progress(struct fuzz *fz, int force)
{
	if (!force && secs_since(&fz->last_progress) < 5)
		return;
	clock_gettime(CLOCK_MONOTONIC, &fz->last_progress);
	double t = secs_since(&fz->start), n = fz->execs ? (double)fz->execs : 1;
	struct sbx_exec_info info;
	sbx_exec_info(fz->x, &info);
	fprintf(stderr,
		"sandbox-fuzz: %llu execs in %.0f s, %.0f exec/s; per input: reset %.1f us, %.1f "
		"pages, %.2f VM exits; %llu slow resets; crashes %llu in %zu new buckets\n",
		(unsigned long long)fz->execs, t, t > 0 ? (double)fz->execs / t : 0,
		fz->reset_us / n, (double)fz->pages / n, (double)fz->exits / n,
		(unsigned long long)fz->slow, (unsigned long long)fz->crashes, fz->nseen);
}

/* The monitor's messages for the run just done: to stderr (and kept for a report). */
void fuzz_log_flush(struct fuzz *fz, int show)
{
	if (!fz->log)
		return;
	fflush(fz->log);
	if (ftell(fz->log) <= 0)
		return;
	if (show) {
		rewind(fz->log);
		char b[4096];
		size_t n;
		while ((n = fread(b, 1, sizeof(b), fz->log)) > 0)
			fwrite(b, 1, n, stderr);
	}
	rewind(fz->log);
	if (ftruncate(fileno(fz->log), 0) < 0)
		fz->log = NULL;
}

static void __attribute__((noreturn))
die_like_libfuzzer(struct fuzz *fz, enum fuzz_kind k, const uint8_t *data, size_t size,
		   const struct sbx_exec_run *run)
{
	char path[4200];
	if (fz->exact_artifact)
		snprintf(path, sizeof(path), "%s", fz->exact_artifact);
	else
		fuzz_artifact_name(fz->artifact_prefix, fuzz_kind_name(k), data, size, path,
				   sizeof(path));
	fuzz_save_report(fz, path, run);
	const char *last = getenv("SANDBOX_FUZZ_LAST");
	FILE *lf = last ? fopen(last, "w") : NULL;
	if (lf) {
		/* For the --ci supervisor: what was found, and where. */
		fprintf(lf, "%s %s\n", fuzz_kind_name(k), path);
		fclose(lf);
	}
	char cmd[8192];
	fuzz_repro_command(fz, path, cmd, sizeof(cmd));
	fprintf(stderr, "sandbox-fuzz: reproduce with: %s\n", cmd);
	if (k == FUZZ_CRASH) {
		/* libFuzzer's crash path writes the artifact and exits with its crash code. */
		abort();
	}
	if (k == FUZZ_TIMEOUT) {
		/* libFuzzer's alarm reports it (its -timeout is ours): give it the time. */
		for (int i = 0; i < (int)fz->timeout_s + 2; i++)
			sleep(1);
	}
	/* Out of memory (or no alarm came): what libFuzzer prints and leaves. */
	fprintf(stderr, "==%d== ERROR: libFuzzer: %s\n", (int)getpid(),
		k == FUZZ_OOM ? "out-of-memory (the guest's RAM, --mem, ran out)" : "timeout");
	fuzz_write_file(path, data, size);
	fprintf(stderr, "artifact_prefix='%s'; Test unit written to %s\n", fz->artifact_prefix,
		path);
	fprintf(stderr, "SUMMARY: libFuzzer: %s\n", k == FUZZ_OOM ? "out-of-memory" : "timeout");
	_exit(k == FUZZ_OOM ? FUZZ_EXIT_OOM : FUZZ_EXIT_TIMEOUT);
}

int fuzz_one(struct fuzz *fz, const uint8_t *data, size_t size)
{
	struct sbx_exec_info info;
	sbx_exec_info(fz->x, &info);
	struct sbx_exec_run run = {
	    .stdin_fd = -1,
	    .stdout_fd = -1,
	    .stderr_fd = -1,
	    .input = data,
	    .input_len = size < info.input_max ? size : info.input_max,
	    .seed = 0x5eed,
	};
	char err[512];
	if (sbx_exec_one(fz->x, &run, err, sizeof(err)) < 0) {
		fuzz_log_flush(fz, 1);
		fprintf(stderr, "sandbox-fuzz: %s: %s\n", fz->target, err);
		_exit(1);
	}
	fz->execs++;
	fz->reset_us += run.reset_us;
	fz->pages += run.reset_pages;
	fz->exits += run.exits;
	fz->slow += (uint64_t)run.slow;
	enum fuzz_kind k = fuzz_classify(&run);
	if (k == FUZZ_OK) {
		fuzz_log_flush(fz, 1);
		progress(fz, 0);
		return 0;
	}
	fz->crashes++;
	if (k == FUZZ_CRASH && run.res.dedup[0] &&
	    (fuzz_token_in(fz->known, fz->nknown, run.res.dedup) ||
	     fuzz_token_in(fz->seen, fz->nseen, run.res.dedup))) {
		/* A bucket already known: counted, not reported again. */
		fuzz_log_flush(fz, 0);
		progress(fz, 0);
		return -1;
	}
	if (k == FUZZ_CRASH && fz->keep_going && run.res.dedup[0]) {
		char **s = realloc(fz->seen, (fz->nseen + 1) * sizeof(*s));
		if (s && (s[fz->nseen] = strdup(run.res.dedup))) {
			fz->seen = s;
			fz->nseen++;
		}
		char path[4200];
		fuzz_artifact_name(fz->artifact_prefix, "crash", data, size, path, sizeof(path));
		fuzz_write_file(path, data, size);
		fuzz_save_report(fz, path, &run);
		fprintf(stderr, "sandbox-fuzz: new bucket %s: %s\n", run.res.dedup, path);
		progress(fz, 1);
		return -1;
	}
	die_like_libfuzzer(fz, k, data, size, &run);
}

/* libFuzzer ends a -runs or -max_total_time run with exit(): the totals, once more. */
static void final_progress(void)
{
	if (fuzz_self && fuzz_self->x && fuzz_self->execs)
		progress(fuzz_self, 1);
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

int main(int argc, char **argv)
{
	static struct fuzz fz;
	char err[1024];
	sbx_cli_init(&fz.cli);
	char **pargv = argv;
	int pargc = argc;
	int re = split_reexec(&fz, argc, argv, &pargv, &pargc);
	if (re < 0) {
		fprintf(stderr, "sandbox-fuzz: %s\n",
			re == -EINVAL ? "--sbx-arg= needs --sbx-target= (they are for libFuzzer's "
					"re-executions of sandbox-fuzz)"
				      : "out of memory");
		return 2;
	}
	int r = sbx_cli_parse(&fz.cli, pargc, pargv, fuzz_opts, front, &fz, err, sizeof(err));
	if (r == 1) {
		usage(stdout);
		return 0;
	}
	if (r < 0) {
		fprintf(stderr, "sandbox-fuzz: %s\n", err);
		return 2;
	}
	if (optind >= pargc) {
		usage(stderr);
		return 2;
	}
	fz.target = pargv[optind];
	fz.own = pargv + 1;
	fz.nown = optind - 1;
	if (!re) {
		fz.lf = pargv + optind + 1;
		fz.nlf = pargc - optind - 1;
	}
	lf_flags(&fz);
	if (access(fz.target, R_OK) < 0) {
		fprintf(stderr, "sandbox-fuzz: %s: %s\n", fz.target, strerror(errno));
		return 2;
	}
	if (fuzz_known_load(&fz, err, sizeof(err)) < 0) {
		fprintf(stderr, "sandbox-fuzz: %s\n", err);
		return 2;
	}
	if (fz.afl)
		return fuzz_afl_main(&fz);
	if (fz.ci)
		return fuzz_ci_main(&fz, argv[0]);

	/* libFuzzer's argv: our arguments folded into flags it passes on untouched. */
	int n = 0;
	char **lfargv = calloc((size_t)(fz.nown + fz.nlf + 3), sizeof(*lfargv));
	if (!lfargv)
		return 1;
	lfargv[n++] = argv[0];
	for (int i = 0; i < fz.nown; i++) {
		if (asprintf(&lfargv[n], "--sbx-arg=%s", fz.own[i]) < 0)
			return 1;
		n++;
	}
	if (asprintf(&lfargv[n], "--sbx-target=%s", fz.target) < 0)
		return 1;
	n++;
	for (int i = 0; i < fz.nlf; i++)
		lfargv[n++] = fz.lf[i];
	lfargv[n] = NULL;
	fuzz_self = &fz;
	return LLVMFuzzerRunDriver(&n, &lfargv, lf_callback);
}
