#include "fuzz_vm.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

void fuzz_hello_file(const char *dir)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/file", dir);
	FILE *f = fopen(path, "w");
	if (!f)
		abort();
	fputs("hello\n", f);
	fclose(f);
}

void fuzz_mount(struct policy *pol, const char *dir, const char *at, int rw)
{
	char spec[128], err[256];
	snprintf(spec, sizeof(spec), "%s:%s", dir, at);
	if (policy_add_mount(pol, spec, rw, err, sizeof(err)) < 0)
		abort();
}

void fuzz_config(struct sbx_config *cfg, struct policy *pol)
{
	cfg->prog = "fuzz";
	cfg->policy = pol;
	cfg->mem_size = 16 << 20;
	cfg->stdin_fd = -1;
	cfg->stdout_fd = open("/dev/null", O_WRONLY);
	cfg->stderr_fd = cfg->stdout_fd;
	cfg->log = fopen("/dev/null", "w");
}
