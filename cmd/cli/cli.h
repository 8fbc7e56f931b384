/* The command-line flags shared by the front ends that run a program under a policy
 * (sandbox-run, sandbox-serve): policy, limits, audit, confinement, running, crash reports.
 * Each front end adds its own options and handles them in its callback. */
#ifndef SBX_CLI_H
#define SBX_CLI_H

#include <getopt.h>
#include <stdio.h>

#include "sandbox.h"

struct sbx_cli {
	struct sbx_config cfg;
	struct policy pol;
	int stats, have_path;
	const char *audit_path;
};

/* Option values of the shared flags; a front end numbers its own from SBX_OPT_FRONT. */
enum {
	SBX_OPT_RO = 256,
	SBX_OPT_RW,
	SBX_OPT_CWD,
	SBX_OPT_ENV,
	SBX_OPT_MEM,
	SBX_OPT_CPL,
	SBX_OPT_POLL,
	SBX_OPT_STRACE,
	SBX_OPT_STATS,
	SBX_OPT_DEBUG_FILE,
	SBX_OPT_REPORT_JSON,
	SBX_OPT_CORE,
	SBX_OPT_POLICY,
	SBX_OPT_TMP,
	SBX_OPT_ENV_PASS,
	SBX_OPT_NO_STDIN,
	SBX_OPT_CPU_TIME,
	SBX_OPT_TIMEOUT,
	SBX_OPT_MAX_OUTPUT,
	SBX_OPT_MAX_WRITE,
	SBX_OPT_MAX_FILES,
	SBX_OPT_AUDIT,
	SBX_OPT_AUDIT_ALL,
	SBX_OPT_NO_CONFINE,
	SBX_OPT_FRONT = 512
};

/* A front end's own option: 0, 1 to stop parsing and print the usage (--help), or -errno with
 * err set. */
typedef int (*sbx_cli_front_fn)(void *ctx, int opt, const char *arg, char *err, size_t errlen);

/* Initialises c (stdio behind the guest's 0/1/2, messages to stderr) and its policy. */
void sbx_cli_init(struct sbx_cli *c);
/* Parses argv: --policy files first, then every flag over them in order, the shared ones into
 * c, the front's (`front_opts`, terminated by a zero entry) through `front`. Stops at the first
 * non-option (the program; optind points at it). Adds PATH=/bin:/usr/bin to the environment
 * unless a flag or the policy set PATH. Returns 0, 1 for --help, or -errno with err set. */
int sbx_cli_parse(struct sbx_cli *c, int argc, char **argv, const struct option *front_opts,
		  sbx_cli_front_fn front, void *ctx, char *err, size_t errlen);
/* Parses a size or a duration flag ("--opt VALUE") with a message naming the flag. */
int sbx_cli_size(const char *opt, const char *v, uint64_t *out, char *err, size_t errlen);
int sbx_cli_duration(const char *opt, const char *v, uint64_t *out, char *err, size_t errlen);
/* The usage text of the shared flags. */
void sbx_cli_usage(FILE *f);

#endif
