/* sandbox-fuzz: a libFuzzer-style target fuzzed inside a micro-VM reset after every input
 * (docs/fuzzing.md). Internal to the sandbox-fuzz binary. */
#ifndef SBX_FUZZ_FRONT_H
#define SBX_FUZZ_FRONT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli.h"
#include "exec.h"
#include "sandbox.h"

/* libFuzzer's exit codes (its -error_exitcode and -timeout_exitcode defaults, and the
 * out-of-memory code it exits with). */
#define FUZZ_EXIT_CRASH 77
#define FUZZ_EXIT_TIMEOUT 70
#define FUZZ_EXIT_OOM 71

struct fuzz {
	struct sbx_cli cli;
	const char *target;
	char **own; /* our arguments before the target, verbatim (for re-executions) */
	int nown;
	char **lf; /* libFuzzer's arguments after the target */
	int nlf;
	int afl, ci, deterministic, strict, keep_going;
	unsigned verify_every;
	uint64_t max_total_time; /* seconds (--ci) */
	uint64_t timeout_s;	 /* libFuzzer's -timeout (default 1200) */
	const char *known_path;
	char **known; /* DEDUP_TOKENs that do not count as new */
	size_t nknown;
	char **seen; /* buckets found by this process */
	size_t nseen;
	char artifact_prefix[4096];
	const char *exact_artifact;
	struct sbx_exec *x;
	FILE *log; /* the monitor's messages for one run, shown after it */
	char json_tmp[4096];
	/* Progress. */
	uint64_t execs, crashes, slow, exits, pages;
	double reset_us;
	struct timespec start, last_progress;
};

/* The files call one another in one order: fuzz_main.c (the command line, libFuzzer) ->
 * fuzz_afl.c, fuzz_ci.c -> fuzz_run.c -> fuzz_crash.c. */

/* fuzz_run.c: the engine on the target, its snapshot taken. */
int fuzz_open(struct fuzz *fz, char *err, size_t errlen);
/* Runs one input; what libFuzzer's callback returns (0, or -1: not for the corpus), or does
 * not return (a crash, a timeout, out of memory: libFuzzer's own exits). */
int fuzz_one(struct fuzz *fz, const uint8_t *data, size_t size);
/* The progress line, at most every 5 s unless forced. */
void fuzz_progress(struct fuzz *fz, int force);

/* fuzz_crash.c: what a run's end means, and the files it leaves. */
/* The monitor's messages for the run just done: shown on stderr (show), copied to `copy` (if
 * not NULL), and cleared. */
void fuzz_log_take(struct fuzz *fz, int show, FILE *copy);
void fuzz_log_flush(struct fuzz *fz, int show);
enum fuzz_kind { FUZZ_OK, FUZZ_CRASH, FUZZ_TIMEOUT, FUZZ_OOM };
enum fuzz_kind fuzz_classify(const struct sbx_exec_run *run);
const char *fuzz_kind_name(enum fuzz_kind k); /* "crash", "timeout", "oom" */
/* libFuzzer's artifact name: prefix + kind + "-" + hex SHA-1 of the input. */
void fuzz_artifact_name(const char *prefix, const char *kind, const uint8_t *data, size_t size,
			char *out, size_t outlen);
int fuzz_write_file(const char *path, const void *data, size_t size);
/* The run's report (captured log), to stderr and to path.txt; the JSON report to path.json. */
void fuzz_save_report(struct fuzz *fz, const char *path, const struct sbx_exec_run *run);
/* The exact command that reproduces an input. */
void fuzz_repro_command(const struct fuzz *fz, const char *input, char *out, size_t outlen);
int fuzz_known_load(struct fuzz *fz, char *err, size_t errlen);
int fuzz_token_in(char *const *list, size_t n, const char *token);
int fuzz_token_add(char ***list, size_t *n, const char *token);

/* fuzz_ci.c: --ci, a supervisor of libFuzzer runs. */
int fuzz_ci_main(struct fuzz *fz, const char *self);

/* fuzz_afl.c: --afl, AFL++'s forkserver protocol. */
int fuzz_afl_main(struct fuzz *fz);

#endif
