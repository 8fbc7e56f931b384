#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e_util.h"

char *e2e_slurp(const char *cmd, int *status)
{
	FILE *p = popen(cmd, "r");
	cr_assert_not_null(p);
	size_t cap = 1 << 16, len = 0, n;
	char *buf = malloc(cap);
	while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
		len += n;
		if (len + 1 >= cap)
			buf = realloc(buf, cap *= 2);
	}
	buf[len] = 0;
	int st = pclose(p);
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return buf;
}

void e2e_need_kvm(void)
{
	if (access("/dev/kvm", R_OK | W_OK) != 0)
		cr_skip_test("/dev/kvm is not available here: end-to-end tests need KVM");
}

char *e2e_expect_output(const char *cmd, int status, ...)
{
	int st;
	char *out = e2e_slurp(cmd, &st);
	cr_expect_eq(st, status, "%s: exit status %d, want %d:\n%s", cmd, st, status, out);
	va_list ap;
	va_start(ap, status);
	for (const char *want; (want = va_arg(ap, const char *));)
		cr_expect(strstr(out, want), "%s: no '%s' in:\n%s", cmd, want, out);
	va_end(ap);
	return out;
}

void e2e_scratch(char *dir, const char *setup)
{
	cr_assert_not_null(mkdtemp(dir), "mkdtemp %s", dir);
	char cmd[4096];
	snprintf(cmd, sizeof(cmd), "cd %s && %s", dir, setup);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static const char *const e2e_libcs[] = {"glibc", "musl"};

char *e2e_slurp_err(const char *cmd, int *status, char *err, size_t errlen)
{
	char errf[] = "/tmp/sbx-e2e-err-XXXXXX", full[4096];
	int fd = mkstemp(errf);
	cr_assert_geq(fd, 0, "mkstemp %s", errf);
	close(fd);
	snprintf(full, sizeof(full), "exec 2>%s; %s", errf, cmd);
	char *out = e2e_slurp(full, status);
	FILE *f = fopen(errf, "r");
	size_t n = f ? fread(err, 1, errlen - 1, f) : 0;
	err[n] = 0;
	if (f)
		fclose(f);
	unlink(errf);
	return out;
}

const char *e2e_sample_binary(const char *sample, const char *libc, char *buf, size_t len)
{
	snprintf(buf, len, SBX_BUILD_DIR "/samples/%s-%s", sample, libc);
	if (access(buf, X_OK) == 0)
		return buf;
	cr_assert_str_neq(libc, "glibc", "%s is missing: build the samples", buf);
	return NULL;
}

void e2e_binary_expect(const char *bin, const char *opts, const char *args, int status,
		       const char *want)
{
	e2e_need_kvm();
	char cmd[2048], err[2048];
	int st;
	char *native = NULL;
	if (!want) {
		snprintf(cmd, sizeof(cmd), "%s %s", bin, args);
		native = e2e_slurp_err(cmd, &st, err, sizeof(err));
		cr_assert_eq(st, status, "natively, `%s`: status %d, want %d:\n%s%s", cmd, st,
			     status, native, err);
	}
	/* --cpl when scripts/test-cpl0.sh asks for it (hardware KVM). */
	const char *cpl = getenv("SBX_TEST_CPL");
	snprintf(cmd, sizeof(cmd), SANDBOX " %s%s %s %s %s", cpl ? "--cpl " : "", cpl ? cpl : "",
		 opts, bin, args);
	char *got = e2e_slurp_err(cmd, &st, err, sizeof(err));
	cr_expect_eq(st, status, "`%s`: status %d, want %d\n--- stdout:\n%s--- stderr:\n%s", cmd,
		     st, status, got, err);
	cr_expect_str_eq(got, want ? want : native,
			 "`%s`: stdout differs\n--- sandbox:\n%s--- want%s:\n%s--- stderr:\n%s",
			 cmd, got, want ? "" : " (native)", want ? want : native, err);
	free(got);
	free(native);
}

void e2e_sample_expect(const char *sample, const char *opts, const char *args, int status,
		       const char *want)
{
	e2e_need_kvm();
	for (size_t l = 0; l < sizeof(e2e_libcs) / sizeof(e2e_libcs[0]); l++) {
		char path[512];
		const char *bin = e2e_sample_binary(sample, e2e_libcs[l], path, sizeof(path));
		if (bin)
			e2e_binary_expect(bin, opts, args, status, want);
	}
}

char *e2e_snapshot_round_trip(const char *prog, const char *args, const char *ready,
			      const char *mid, const char *after, int *status)
{
	char *cmd = NULL;
	int n = asprintf(
	    &cmd,
	    "set -e; " E2E_SH_WAIT "D=$(mktemp -d); P=; "
	    "trap 'kill -9 $P 2>/dev/null || :; rm -rf $D' EXIT; mkdir $D/gate; "
	    "%s --control $D/c --ro $D/gate:/gate %s %s /gate/go > $D/a 2>$D/ea & P=$!; "
	    "wait_for \"grep -q '%s' $D/a\"; %s; " SBX_BUILD_DIR
	    "/sandbox-ctl $D/c snapshot $D/s.snap >> $D/ctl; wait $P && echo first 0; "
	    "touch $D/gate/go; %s --restore $D/s.snap --ro $D/gate:/gate > $D/b 2>$D/eb && "
	    "echo second 0; %s %s / > $D/n; cat $D/a $D/b | cmp - $D/n && echo same; %s; "
	    "cat $D/ctl $D/ea $D/eb",
	    SANDBOX, prog, args, ready, mid, SANDBOX, prog, args, after);
	cr_assert(n > 0);
	char *o = e2e_slurp(cmd, status);
	free(cmd);
	return o;
}
