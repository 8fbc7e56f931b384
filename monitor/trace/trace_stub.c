/* --trace-exits and sandbox-stat when the build had no BPF toolchain (bpftool, clang or the
 * kernel's BTF were missing at configure time): the same API, saying so in one line. */
#include <errno.h>
#include <stdio.h>

#include "sandbox.h"
#include "trace.h"

int sbx_trace_open(const struct sbx_trace_opts *o, struct sbx_trace **out, char *err, size_t errlen)
{
	(void)o;
	*out = NULL;
	snprintf(err, errlen,
		 "this build has no BPF tracing: bpftool, clang or the kernel's BTF were missing "
		 "when it was configured (scripts/setup.sh installs the tools)");
	return -ENOTSUP;
}

void sbx_trace_set_program(struct sbx_trace *t, const char *prog, const char *debug_file)
{
	(void)t;
	(void)prog;
	(void)debug_file;
}

int sbx_trace_report(struct sbx_trace *t, FILE *table, FILE *json, double run_ms, int since_last)
{
	(void)t;
	(void)table;
	(void)json;
	(void)run_ms;
	(void)since_last;
	return -ENOTSUP;
}

void sbx_trace_close(struct sbx_trace *t)
{
	(void)t;
}
