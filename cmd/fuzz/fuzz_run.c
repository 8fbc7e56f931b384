/* sandbox-fuzz's runs: the engine opened on the target, one input run from the snapshot, and
 * what a run's end makes of the process (progress, libFuzzer's way of dying on a finding). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"

int fuzz_open(struct fuzz *fz, char *err, size_t errlen)
{
	struct sbx_config *c = &fz->cli.cfg;
	static char *gargv[2];
	gargv[0] = (char *)fz->target;
	c->prog = fz->target;
	c->argv = gargv;
	c->name = fz->target;
	fz->log = tmpfile();
	/* The target's own stderr (a sanitizer's report) goes with the monitor's: both are shown
	 * and saved next to the artifact, in the order written. Both append; the target's is a
	 * description of its own, write-only, so it can neither read the monitor's lines nor
	 * seek and write far out (a huge sparse file). */
	if (fz->log) {
		c->log = fz->log;
		int fd = fileno(fz->log), fl = fcntl(fd, F_GETFL);
		char self[64];
		snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
		int g = -1;
		if (fl >= 0 && fcntl(fd, F_SETFL, fl | O_APPEND) == 0 &&
		    c->stderr_fd == STDERR_FILENO)
			g = open(self, O_WRONLY | O_APPEND | O_CLOEXEC);
		if (g >= 0)
			c->stderr_fd = g; /* open as long as the process */
	}
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
	fuzz_log_flush(fz, 1); /* what the monitor said while opening (-v) */
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

void fuzz_progress(struct fuzz *fz, int force)
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
	    /* The fast mode trusts the target (docs/exec.md); --strict-reset does not. */
	    .learn_sites = !fz->strict,
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
		fuzz_progress(fz, 0);
		return 0;
	}
	fz->crashes++;
	if (k == FUZZ_CRASH && run.res.dedup[0] &&
	    (fuzz_token_in(fz->known, fz->nknown, run.res.dedup) ||
	     fuzz_token_in(fz->seen, fz->nseen, run.res.dedup))) {
		/* A bucket already known: counted, not reported again. */
		fuzz_log_flush(fz, 0);
		fuzz_progress(fz, 0);
		return -1;
	}
	if (k == FUZZ_CRASH && fz->keep_going && run.res.dedup[0]) {
		fuzz_token_add(&fz->seen, &fz->nseen, run.res.dedup);
		char path[4200];
		fuzz_artifact_name(fz->artifact_prefix, "crash", data, size, path, sizeof(path));
		fuzz_write_file(path, data, size);
		fuzz_save_report(fz, path, &run);
		fprintf(stderr, "sandbox-fuzz: new bucket %s: %s\n", run.res.dedup, path);
		fuzz_progress(fz, 1);
		return -1;
	}
	die_like_libfuzzer(fz, k, data, size, &run);
}
