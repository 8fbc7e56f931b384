/* The policy tests' scratch tree (scratch.h). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

#include "policy.h"
#include "scratch.h"

void scratch_make(char *dir, size_t len, const char *name)
{
	snprintf(dir, len, "/tmp/sbx-%s-XXXXXX", name);
	cr_assert_not_null(mkdtemp(dir));
}

void scratch_sh(const char *dir, const char *cmd)
{
	char full[1024];
	snprintf(full, sizeof(full), "cd %s && %s", dir, cmd);
	cr_assert_eq(system(full), 0, "%s", full);
}

void scratch_remove(const char *dir)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

int scratch_open_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	cr_assert_not_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

void scratch_mount(struct policy *p, const char *dir, const char *host, const char *guest, int rw)
{
	char spec[256], err[256];
	snprintf(spec, sizeof(spec), "%s/%s:%s", dir, host, guest);
	cr_assert_eq(policy_add_mount(p, spec, rw, err, sizeof(err)), 0, "%s", err);
}
