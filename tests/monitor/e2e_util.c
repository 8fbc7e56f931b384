#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "e2e_util.h"

static int64_t e2e_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int e2e_bound_s = E2E_CMD_SECONDS;

static void e2e_guard_kill(int sig)
{
	(void)sig;
	kill(0, SIGKILL);
}

/* The command's process group: its leader waits for `sh -c cmd` and exits as it did, and
 * takes the whole group with it if the test's process dies first (Criterion's per-test
 * timeout kills it), so that nothing of a hung command lives on, holding ctest's pipes. */
static _Noreturn void e2e_guard(const char *cmd, int out, pid_t test)
{
	setpgid(0, 0);
	signal(SIGTERM, e2e_guard_kill);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != test)
		e2e_guard_kill(0);
	pid_t sh = fork();
	if (sh == 0) {
		/* No input but what the command gives itself, whatever the test's stdin is. */
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (null > 0)
			dup2(null, 0);
		dup2(out, 1);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	/* Nothing of the test's (another command's pipe, a VM's descriptors) held meanwhile. */
	close_range(3, ~0u, 0);
	close(out);
	int st;
	while (sh > 0 && waitpid(sh, &st, 0) < 0)
		if (errno != EINTR)
			_exit(127);
	_exit(sh < 0 ? 127 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

void e2e_set_bound(int seconds)
{
	e2e_bound_s = seconds > 0 ? seconds : E2E_CMD_SECONDS;
}

char *e2e_run(const char *cmd, int *status, size_t *len)
{
	int fds[2];
	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0, "pipe: %s", strerror(errno));
	pid_t test = getpid(), pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0)
		e2e_guard(cmd, fds[1], test);
	setpgid(pid, pid); /* both sides: the group exists before either goes on */
	close(fds[1]);
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	cr_assert_not_null(buf);
	int64_t deadline = e2e_now_ms() + e2e_bound_s * 1000ll;
	int timed_out = 0;
	for (;;) {
		int64_t left = deadline - e2e_now_ms();
		struct pollfd p = {fds[0], POLLIN, 0};
		int ready = left > 0 ? poll(&p, 1, (int)left) : 0;
		if (ready < 0 && errno == EINTR)
			continue;
		if (ready == 0) {
			if (timed_out)
				break; /* something outside the group holds the pipe */
			/* The whole group, the sandbox's own processes with it; a short while more
			 * for what they wrote last. */
			kill(-pid, SIGKILL);
			timed_out = 1;
			deadline = e2e_now_ms() + 2000;
			continue;
		}
		if (n + 1 >= cap)
			cr_assert_not_null(buf = realloc(buf, cap *= 2));
		ssize_t r = read(fds[0], buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fds[0]);
	buf[n] = 0;
	/* Its stdout may end before it does (`exec >file`): the same bound for its end. */
	int st;
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			break;
		cr_assert(w == 0 || errno == EINTR, "waitpid: %s", strerror(errno));
		if (!timed_out && e2e_now_ms() >= deadline) {
			kill(-pid, SIGKILL);
			timed_out = 1;
		}
		usleep(1000);
	}
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if (timed_out) {
		/* Said where the test prints the output, with a status no command gives. */
		fprintf(stderr, "e2e: killed after %d s: %s\n", e2e_bound_s, cmd);
		*status = E2E_TIMED_OUT;
	}
	if (len)
		*len = n;
	return buf;
}

char *e2e_slurp(const char *cmd, int *status)
{
	return e2e_run(cmd, status, NULL);
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

char *e2e_run_err(const char *cmd, int *status, size_t *len, char *err, size_t errlen)
{
	char errf[] = "/tmp/sbx-e2e-err-XXXXXX";
	int fd = mkstemp(errf);
	cr_assert_geq(fd, 0, "mkstemp %s", errf);
	close(fd);
	size_t fl = strlen(cmd) + sizeof(errf) + 16;
	char *full = malloc(fl);
	cr_assert_not_null(full);
	snprintf(full, fl, "exec 2>%s; %s", errf, cmd);
	char *out = e2e_run(full, status, len);
	free(full);
	FILE *f = fopen(errf, "r");
	size_t n = f ? fread(err, 1, errlen - 1, f) : 0;
	err[n] = 0;
	if (f)
		fclose(f);
	unlink(errf);
	return out;
}

char *e2e_slurp_err(const char *cmd, int *status, char *err, size_t errlen)
{
	return e2e_run_err(cmd, status, NULL, err, errlen);
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
