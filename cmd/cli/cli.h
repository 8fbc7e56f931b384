/* The command line of the front ends that run a program under a policy (sandbox-run,
 * sandbox-serve, sandbox-fuzz): the shared flags (policy, limits, audit, confinement, running,
 * crash reports) and each front end's own, described by one table line per option. Parsed once
 * per process; sandbox-serve's instances each get a copy (sbx_cli_copy). */
#ifndef SBX_CLI_H
#define SBX_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sandbox.h"

struct sbx_cli {
	struct sbx_config cfg; /* cfg.policy is &pol; cfg.tool the front end's name */
	struct policy pol;
	int stats;
	const char *audit_path;
};

/* How an option's value is stored, at `off` in the context it is parsed into. */
enum sbx_cli_kind {
	SBX_CLI_K_OWN,	    /* the front end's callback takes it, with `id` */
	SBX_CLI_K_FLAG,	    /* int: 1 */
	SBX_CLI_K_STRING,   /* const char *: the argument */
	SBX_CLI_K_SIZE,	    /* uint64_t bytes: 4096, 64K, 256M, 1G */
	SBX_CLI_K_DURATION, /* uint64_t milliseconds: 500ms, 10s, 2m, 1h */
	SBX_CLI_K_COUNT,    /* uint64_t from 1 to 4096 */
};
struct sbx_cli_opt {
	const char *name; /* without the dashes; NULL ends a table */
	int has_arg;	  /* no_argument, required_argument, optional_argument */
	enum sbx_cli_kind kind;
	size_t off; /* stored kinds */
	int id;	    /* SBX_CLI_K_OWN */
};
/* The offset of `field` in `type`, which must be a `ctype` (a compile error otherwise). */
#define SBX_CLI_AT(type, field, ctype)                                                             \
	(offsetof(type, field) + 0 * sizeof(&((type *)0)->field == (ctype *)0))
#define SBX_CLI_FLAG(name, type, field)                                                            \
	{                                                                                          \
		name, no_argument, SBX_CLI_K_FLAG, SBX_CLI_AT(type, field, int), 0                 \
	}
#define SBX_CLI_STRING(name, type, field)                                                          \
	{                                                                                          \
		name, required_argument, SBX_CLI_K_STRING, SBX_CLI_AT(type, field, const char *),  \
		    0                                                                              \
	}
#define SBX_CLI_SIZE(name, type, field)                                                            \
	{                                                                                          \
		name, required_argument, SBX_CLI_K_SIZE, SBX_CLI_AT(type, field, uint64_t), 0      \
	}
#define SBX_CLI_DURATION(name, type, field)                                                        \
	{                                                                                          \
		name, required_argument, SBX_CLI_K_DURATION, SBX_CLI_AT(type, field, uint64_t), 0  \
	}
#define SBX_CLI_COUNT(name, type, field)                                                           \
	{                                                                                          \
		name, required_argument, SBX_CLI_K_COUNT, SBX_CLI_AT(type, field, uint64_t), 0     \
	}
#define SBX_CLI_OWN(name, has_arg, id)                                                             \
	{                                                                                          \
		name, has_arg, SBX_CLI_K_OWN, 0, id                                                \
	}

/* A front end's own SBX_CLI_K_OWN option: 0, or -errno with err set. */
typedef int (*sbx_cli_own_fn)(void *ctx, int id, const char *arg, char *err, size_t errlen);
struct sbx_cli_front {
	const struct sbx_cli_opt *opts; /* its own options (stored into ctx), NULL-name ended */
	sbx_cli_own_fn own;		/* for its SBX_CLI_K_OWN ones */
	void (*usage)(FILE *f);		/* --help: all its text, sbx_cli_usage's included */
};

/* Initialises c (stdio behind the guest's 0/1/2, messages to stderr under `tool`, the name
 * every message of the front end and the library starts with) and its policy. */
void sbx_cli_init(struct sbx_cli *c, const char *tool);
/* Parses argv: --policy files first, then every flag over them in order, the shared ones into
 * c, the front's into ctx (front may be NULL: shared flags only). Stops at the first
 * non-option (the program; optind points at it). Adds PATH=/bin:/usr/bin to the environment
 * unless a flag or the policy set PATH, and sets the guest RAM (--mem, 256 MiB by default) and
 * a closed stdin (--no-stdin) in the config. Returns 0, 1 for --help, or -errno with err set. */
int sbx_cli_parse(struct sbx_cli *c, int argc, char **argv, const struct sbx_cli_front *front,
		  void *ctx, char *err, size_t errlen);
/* sbx_cli_parse for main(): --help prints the usage on stdout and returns 1, an error is
 * printed ("TOOL: why") and returns -1; 0 to go on. */
int sbx_cli_args(struct sbx_cli *c, int argc, char **argv, const struct sbx_cli_front *front,
		 void *ctx);
/* A copy with a policy of its own (policy_copy): for another sandbox of the same command line.
 * dst is initialised here. 0, or -errno with err set. */
int sbx_cli_copy(struct sbx_cli *dst, const struct sbx_cli *src, char *err, size_t errlen);
/* "TOOL: message" on stderr, one line. */
void sbx_cli_say(const struct sbx_cli *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The program must be readable: 0, or a message and the shell's status (127: missing, 126).
 * A dynamic program's default view joins the policy here (unless --no-libs), so every front
 * end runs `/bin/ls` as `sandbox-run` does; a view that cannot be made is SBX_STATUS_ERROR. */
int sbx_cli_program(struct sbx_cli *c, const char *prog);
/* --audit: the file opened for appending (*out NULL without --audit). 0 or -errno, err set. */
int sbx_cli_open_audit(const struct sbx_cli *c, FILE **out, char *err, size_t errlen);
/* --no-confine's warning, when it was given. */
void sbx_cli_warn_unconfined(const struct sbx_cli *c);
/* Parses a size or a duration flag ("--opt VALUE") with a message naming the flag. */
int sbx_cli_size(const char *opt, const char *v, uint64_t *out, char *err, size_t errlen);
int sbx_cli_duration(const char *opt, const char *v, uint64_t *out, char *err, size_t errlen);
/* The usage text of the shared flags. */
void sbx_cli_usage(FILE *f);

#endif
