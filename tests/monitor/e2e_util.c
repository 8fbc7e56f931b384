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
