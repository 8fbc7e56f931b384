/* sandbox-fuzz --ci: one fuzzing campaign for a CI job. A libFuzzer run (a child: this
 * program again) fuzzes deterministically for the budget and stops at the first new crash;
 * the crash is then minimised (libFuzzer's -minimize_crash, which keeps the DEDUP_TOKEN) and
 * reproduced once more for the final report. Exit status: 0 without a new crash, else
 * libFuzzer's code for what was found (crash 77, timeout 70, out of memory 71). */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuzz.h"

extern char **environ;

/* Runs self with our arguments (minus the campaign's), the extra ones before the target and
 * libFuzzer's after it; output to `out_path` when given. Returns the exit status. */
static int run_self(const struct fuzz *fz, const char *self, const char *const *lf, int nlf,
		    const char *out_path)
{
	const char **av = calloc((size_t)(fz->nown + nlf + 4), sizeof(*av));
	if (!av)
		return -ENOMEM;
	int n = 0, det = 0;
	av[n++] = self;
	for (int i = 0; i < fz->nown; i++) {
		const char *a = fz->own[i];
		if (!strcmp(a, "--ci"))
			continue;
		if (!strcmp(a, "--max-total-time")) {
			i++;
			continue;
		}
		if (!strncmp(a, "--max-total-time=", 17))
			continue;
		det |= !strcmp(a, "--deterministic");
		av[n++] = a;
	}
	if (!det)
		av[n++] = "--deterministic";
	av[n++] = fz->target;
	for (int i = 0; i < nlf; i++)
		av[n++] = lf[i];
	av[n] = NULL;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	if (out_path) {
		posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC,
						 0644);
		posix_spawn_file_actions_adddup2(&fa, 1, 2);
	}
	pid_t pid;
	int e = posix_spawn(&pid, self, &fa, NULL, (char *const *)av, environ);
	posix_spawn_file_actions_destroy(&fa);
	free(av);
	if (e)
		return -e;
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int read_file(const char *path, uint8_t **data, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	size_t cap = 4096, n = 0;
	uint8_t *b = malloc(cap);
	for (size_t k; b && (k = fread(b + n, 1, cap - n, f)) > 0;) {
		n += k;
		if (n == cap) {
			uint8_t *nb = realloc(b, cap *= 2);
			if (!nb)
				free(b);
			b = nb;
		}
	}
	fclose(f);
	if (!b)
		return -ENOMEM;
	*data = b;
	*len = n;
	return 0;
}

/* The DEDUP_TOKEN line of a report. */
static void report_token(const char *report, char *out, size_t outlen)
{
	out[0] = 0;
	FILE *f = fopen(report, "r");
	if (!f)
		return;
	char line[1024];
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "DEDUP_TOKEN: ", 13)) {
			line[strcspn(line, "\n")] = 0;
			snprintf(out, outlen, "%.*s", (int)outlen - 1, line + 13);
		}
	fclose(f);
}

/* 1. The campaign: a deterministic libFuzzer run for the budget, stopping at the first new
 * finding, which it names in `last`. Returns its exit status. */
static int ci_fuzz(struct fuzz *fz, const char *self, uint64_t budget, const char *a_prefix)
{
	char a_time[64];
	snprintf(a_time, sizeof(a_time), "-max_total_time=%llu", (unsigned long long)budget);
	const char **lf = calloc((size_t)fz->nlf + 4, sizeof(*lf));
	if (!lf)
		return 1;
	int n = 0;
	lf[n++] = a_time;
	lf[n++] = "-print_final_stats=1";
	int has_prefix = 0;
	for (int i = 0; i < fz->nlf; i++) {
		has_prefix |= !strncmp(fz->lf[i], "-artifact_prefix=", 17);
		lf[n++] = fz->lf[i];
	}
	if (!has_prefix)
		lf[n++] = a_prefix;
	fprintf(stderr, "sandbox-fuzz --ci: fuzzing %s for %llu s (deterministic guest)\n",
		fz->target, (unsigned long long)budget);
	int rc = run_self(fz, self, lf, n, NULL);
	free(lf);
	return rc;
}

/* 2. A crash made smaller (libFuzzer's -minimize_crash keeps its DEDUP_TOKEN): `final` names
 * the smaller input when there is one, else art. */
static void ci_minimise(struct fuzz *fz, const char *self, uint64_t budget, const char *art,
			char *final, size_t finallen)
{
	char min[4300], log[4300], a_exact[4400], a_mt[64];
	snprintf(min, sizeof(min), "%s.min", art);
	snprintf(log, sizeof(log), "%s.minimize.log", art);
	snprintf(a_exact, sizeof(a_exact), "-exact_artifact_path=%s", min);
	uint64_t mt = budget / 5 < 60 ? (budget / 5 ? budget / 5 : 1) : 60;
	snprintf(a_mt, sizeof(a_mt), "-max_total_time=%llu", (unsigned long long)mt);
	const char *mlf[] = {"-minimize_crash=1", a_mt, a_exact, art};
	fprintf(stderr, "sandbox-fuzz --ci: minimising %s (%llu s at most; log %s)\n", art,
		(unsigned long long)mt, log);
	run_self(fz, self, mlf, 4, log);
	uint8_t *d = NULL;
	size_t len = 0;
	struct stat a, b;
	if (stat(min, &b) == 0 && stat(art, &a) == 0 && b.st_size < a.st_size &&
	    read_file(min, &d, &len) == 0) {
		fuzz_artifact_name(fz->artifact_prefix, "crash", d, len, final, finallen);
		fuzz_write_file(final, d, len);
		free(d);
		fprintf(stderr, "sandbox-fuzz --ci: minimised from %lld to %lld bytes\n",
			(long long)a.st_size, (long long)b.st_size);
	}
	unlink(min);
}

/* 3. The final report: the input run once more, as the reproduction command does. */
static void ci_report(struct fuzz *fz, const char *self, const char *kind, const char *final,
		      const char *a_prefix)
{
	char rlog[4300];
	snprintf(rlog, sizeof(rlog), "%s.log", final);
	const char *rlf[] = {a_prefix, final};
	unsetenv("SANDBOX_FUZZ_LAST");
	int rrc = run_self(fz, self, rlf, 2, rlog);
	unlink(rlog);
	char txt[4300], token[256], cmd[8192];
	snprintf(txt, sizeof(txt), "%s.txt", final);
	report_token(txt, token, sizeof(token));
	fuzz_repro_command(fz, final, cmd, sizeof(cmd));
	fprintf(stderr,
		"sandbox-fuzz --ci: new %s%s%s\n  input:  %s\n  report: %s, %s.json\n"
		"  reproduce: %s\n",
		kind, token[0] ? " in bucket " : "", token, final, txt, final, cmd);
	if (rrc == 0)
		fprintf(stderr, "sandbox-fuzz --ci: warning: the input did not fail again when "
				"run alone (flaky?)\n");
}

int fuzz_ci_main(struct fuzz *fz, const char *self_arg)
{
	char self[4096];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (sl <= 0)
		snprintf(self, sizeof(self), "%s", self_arg);
	else
		self[sl] = 0;
	uint64_t budget = fz->max_total_time ? fz->max_total_time : 300;
	char last[4200], a_prefix[4200];
	snprintf(last, sizeof(last), "%s.sandbox-fuzz-last", fz->artifact_prefix);
	unlink(last);
	setenv("SANDBOX_FUZZ_LAST", last, 1);
	snprintf(a_prefix, sizeof(a_prefix), "-artifact_prefix=%s", fz->artifact_prefix);
	int rc = ci_fuzz(fz, self, budget, a_prefix);
	if (rc == 0) {
		fprintf(stderr, "sandbox-fuzz --ci: no new crash in %llu s\n",
			(unsigned long long)budget);
		return 0;
	}
	char art[4200] = "", kind[16] = "crash";
	FILE *f = fopen(last, "r");
	if (f) {
		if (fscanf(f, "%15s %4199[^\n]", kind, art) != 2)
			art[0] = 0;
		fclose(f);
		unlink(last);
	}
	if (!art[0]) {
		fprintf(stderr,
			"sandbox-fuzz --ci: the fuzzing run failed (status %d) without a "
			"crash to report\n",
			rc);
		return rc;
	}
	char final[4200];
	snprintf(final, sizeof(final), "%s", art);
	if (!strcmp(kind, "crash"))
		ci_minimise(fz, self, budget, art, final, sizeof(final));
	ci_report(fz, self, kind, final, a_prefix);
	return rc;
}
