/* The flags every front end that runs a program under a policy shares, and the parser of a
 * front end's own from its table (cli.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli.h"

void sbx_cli_usage(FILE *f)
{
	fprintf(
	    f,
	    "Policy (flags override --policy):\n"
	    "  --policy FILE.json   a reusable policy (docs/policy.md)\n"
	    "  --ro HOST[:GUEST]    show a host file or directory read-only at GUEST\n"
	    "  --rw HOST[:GUEST]    show it read-write\n"
	    "  --tmp GUEST          a private writable directory, removed at exit\n"
	    "  --cwd DIR            the guest's working directory (default /)\n"
	    "  --env K=V            set a guest environment variable (default: PATH only)\n"
	    "  --env-pass K         pass K from the host environment\n"
	    "  --no-stdin           the guest's stdin is closed\n"
	    "  --no-dev             no virtual /dev and /proc (shown by default)\n"
	    "  --no-libs            a dynamic program's interpreter and libraries are not shown\n"
	    "                       by default: the mounts must show them\n"
	    "Limits, for all processes together (exit status 118-123 when one ends the run,\n"
	    "see docs/policy.md):\n"
	    "  --mem SIZE           guest RAM, e.g. 256M, 1G (default 256M)\n"
	    "  --cpu-time DURATION  guest CPU time, e.g. 10s, 500ms\n"
	    "  --timeout DURATION   wall-clock time\n"
	    "  --max-output SIZE    bytes written to stdout and stderr\n"
	    "  --max-write SIZE     bytes written to files\n"
	    "  --max-files N        open files at once\n"
	    "  --max-threads N      threads at once, the main one included (default 256, at\n"
	    "                       most 1024): pthread_create fails with EAGAIN beyond\n"
	    "  --cpus N             host CPUs the program's threads may run on (default: all)\n"
	    "  --max-procs N        processes at once, the first included (default 256): fork\n"
	    "                       fails with EAGAIN beyond\n"
	    "Audit and confinement:\n"
	    "  --audit FILE         JSON lines of policy denials (--audit-all: every operation)\n"
	    "  --no-confine         do not confine the monitor itself (debugging only)\n"
	    "Running:\n"
	    "  --cpl auto|0|3       privilege level of program and kernel (auto: 3 on PVM, 0 on\n"
	    "                       hardware KVM)\n"
	    "  --io-poll auto|on|off  serve I/O from a polling thread without VM exits, one for\n"
	    "                       all the sandbox's processes (auto: on with two or more CPUs)\n"
	    "  --strace             print every syscall of the guest to stderr\n"
	    "  --no-patch           never rewrite a syscall site to enter the kernel without a\n"
	    "                       trap (every syscall then traps)\n"
	    "  --stats              print exit and hypercall counts at the end\n"
	    "Crashes:\n"
	    "  --report-json FILE   also write a crash report as JSON\n"
	    "  --core FILE          write an ELF core file of a crashed program (gdb PROG FILE)\n"
	    "  --debug-file FILE    separate debug info for crash reports\n"
	    "  -v, --verbose        say more (twice for even more)\n"
	    "  -h, --help           this text\n");
}

/* The shared options' own ids. */
enum {
	OWN_RO,
	OWN_RW,
	OWN_CWD,
	OWN_ENV,
	OWN_ENV_PASS,
	OWN_TMP,
	OWN_MAX_FILES,
	OWN_CPL,
	OWN_POLL,
	OWN_STATS,
	OWN_POLICY,
};

static const struct sbx_cli_opt shared_opts[] = {
    SBX_CLI_OWN("ro", required_argument, OWN_RO),
    SBX_CLI_OWN("rw", required_argument, OWN_RW),
    SBX_CLI_OWN("cwd", required_argument, OWN_CWD),
    SBX_CLI_OWN("env", required_argument, OWN_ENV),
    SBX_CLI_SIZE("mem", struct sbx_cli, pol.lim.mem),
    SBX_CLI_OWN("cpl", required_argument, OWN_CPL),
    SBX_CLI_OWN("io-poll", required_argument, OWN_POLL),
    SBX_CLI_FLAG("strace", struct sbx_cli, cfg.strace),
    SBX_CLI_FLAG("no-patch", struct sbx_cli, cfg.no_patch),
    SBX_CLI_COUNT("max-threads", struct sbx_cli, cfg.max_threads),
    SBX_CLI_COUNT("cpus", struct sbx_cli, cfg.cpus),
    SBX_CLI_COUNT("max-procs", struct sbx_cli, cfg.max_procs),
    SBX_CLI_OWN("stats", no_argument, OWN_STATS),
    SBX_CLI_STRING("debug-file", struct sbx_cli, cfg.debug_file),
    SBX_CLI_STRING("report-json", struct sbx_cli, cfg.report_json),
    SBX_CLI_STRING("core", struct sbx_cli, cfg.core_file),
    SBX_CLI_OWN("policy", required_argument, OWN_POLICY),
    SBX_CLI_OWN("tmp", required_argument, OWN_TMP),
    SBX_CLI_OWN("env-pass", required_argument, OWN_ENV_PASS),
    SBX_CLI_FLAG("no-stdin", struct sbx_cli, pol.no_stdin),
    SBX_CLI_FLAG("no-dev", struct sbx_cli, pol.no_dev),
    SBX_CLI_FLAG("no-libs", struct sbx_cli, pol.no_libs),
    SBX_CLI_DURATION("cpu-time", struct sbx_cli, pol.lim.cpu_ms),
    SBX_CLI_DURATION("timeout", struct sbx_cli, pol.lim.wall_ms),
    SBX_CLI_SIZE("max-output", struct sbx_cli, pol.lim.max_output),
    SBX_CLI_SIZE("max-write", struct sbx_cli, pol.lim.max_write),
    SBX_CLI_OWN("max-files", required_argument, OWN_MAX_FILES),
    SBX_CLI_STRING("audit", struct sbx_cli, audit_path),
    SBX_CLI_FLAG("audit-all", struct sbx_cli, cfg.audit_all),
    SBX_CLI_FLAG("no-confine", struct sbx_cli, cfg.no_confine),
    {0},
};
#define NSHARED (sizeof(shared_opts) / sizeof(shared_opts[0]) - 1)

/* getopt's values: the shared options from SHARED_VAL, the front's from FRONT_VAL, by index. */
#define SHARED_VAL 256
#define FRONT_VAL 1024

void sbx_cli_init(struct sbx_cli *c, const char *tool)
{
	memset(c, 0, sizeof(*c));
	/* Every guest handle is a host fd, and a wait in the monitor duplicates one: a soft
	 * limit of 1024 (a shell's default) would run out before a guest's 1024 handles do. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	policy_init(&c->pol);
	c->cfg = (struct sbx_config){.policy = &c->pol,
				     .stdin_fd = 0,
				     .stdout_fd = 1,
				     .stderr_fd = 2,
				     .log = stderr,
				     .tool = tool};
}

void sbx_cli_say(const struct sbx_cli *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	flockfile(stderr);
	fprintf(stderr, "%s: ", c->cfg.tool ? c->cfg.tool : "sandbox");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	funlockfile(stderr);
	va_end(ap);
}

static int pick(const char *opt, const char *v, const char *const *names, int n, char *err,
		size_t errlen)
{
	for (int i = 0; i < n; i++)
		if (strcmp(v, names[i]) == 0)
			return i;
	snprintf(err, errlen, "%s %s: expected one of auto, 0, 3 / auto, on, off", opt, v);
	return -EINVAL;
}

int sbx_cli_size(const char *opt, const char *v, uint64_t *out, char *err, size_t errlen)
{
	if (policy_parse_size(v, out) < 0) {
		snprintf(err, errlen, "%s %s: expected a size like 4096, 64K, 256M or 1G", opt, v);
		return -EINVAL;
	}
	return 0;
}

int sbx_cli_duration(const char *opt, const char *v, uint64_t *out, char *err, size_t errlen)
{
	if (policy_parse_duration(v, out) < 0 || *out == 0) {
		snprintf(err, errlen, "%s %s: expected a duration like 500ms, 10s, 2m or 1h", opt,
			 v);
		return -EINVAL;
	}
	return 0;
}

static int count(const char *opt, const char *v, uint64_t *out, char *err, size_t errlen)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno || *end || end == v || n == 0 || n > 4096) {
		snprintf(err, errlen, "%s %s: expected a number from 1 to 4096", opt, v);
		return -EINVAL;
	}
	*out = n;
	return 0;
}

/* A stored option's value into base. */
static int store(const struct sbx_cli_opt *o, void *base, const char *arg, char *err, size_t errlen)
{
	void *at = (char *)base + o->off;
	char flag[64];
	snprintf(flag, sizeof(flag), "--%s", o->name);
	switch (o->kind) {
	case SBX_CLI_K_FLAG:
		*(int *)at = 1;
		return 0;
	case SBX_CLI_K_STRING:
		*(const char **)at = arg;
		return 0;
	case SBX_CLI_K_SIZE:
		return sbx_cli_size(flag, arg, at, err, errlen);
	case SBX_CLI_K_DURATION:
		return sbx_cli_duration(flag, arg, at, err, errlen);
	case SBX_CLI_K_COUNT:
		return count(flag, arg, at, err, errlen);
	case SBX_CLI_K_OWN:
		break;
	}
	return -EINVAL;
}

static int max_files(struct policy *p, const char *arg, char *err, size_t errlen)
{
	int r = sbx_cli_size("--max-files", arg, &p->lim.max_files, err, errlen);
	if (r == 0 && (p->lim.max_files < 3 || p->lim.max_files > 1024)) {
		snprintf(err, errlen, "--max-files %s: must be between 3 and 1024", arg);
		r = -EINVAL;
	}
	return r;
}

/* One of the shared options the table does not store. */
static int own(struct sbx_cli *f, int id, const char *arg, char *err, size_t errlen)
{
	static const char *const cpls[] = {"auto", "0", "3"};
	static const char *const polls[] = {"auto", "on", "off"};
	struct policy *p = &f->pol;
	int r;
	switch (id) {
	case OWN_RO:
	case OWN_RW:
		return policy_add_mount(p, arg, id == OWN_RW, err, errlen);
	case OWN_CWD:
		return policy_set_cwd(p, arg, err, errlen);
	case OWN_ENV:
		return policy_set_env(p, arg, err, errlen);
	case OWN_ENV_PASS:
		return policy_pass_env(p, arg, err, errlen);
	case OWN_TMP:
		return policy_add_tmp(p, arg, err, errlen);
	case OWN_MAX_FILES:
		return max_files(p, arg, err, errlen);
	case OWN_CPL:
		r = pick("--cpl", arg, cpls, 3, err, errlen);
		f->cfg.cpl = (enum sbx_cpl_mode)(r < 0 ? 0 : r);
		return r < 0 ? r : 0;
	case OWN_POLL:
		r = pick("--io-poll", arg, polls, 3, err, errlen);
		f->cfg.poll = (enum sbx_poll_mode)(r < 0 ? 0 : r);
		return r < 0 ? r : 0;
	case OWN_STATS:
		f->stats = f->cfg.stats = 1;
		return 0;
	case OWN_POLICY:
		return 0; /* loaded before the other flags */
	}
	return -EINVAL;
}

/* Is getopt's c the shared option `id` takes? */
static int is_shared(int c, int id)
{
	return c >= SHARED_VAL && c < SHARED_VAL + (int)NSHARED &&
	       shared_opts[c - SHARED_VAL].kind == SBX_CLI_K_OWN &&
	       shared_opts[c - SHARED_VAL].id == id;
}

/* One option of either table. Returns 0, 1 for --help, or -errno with err set. */
static int apply(struct sbx_cli *f, const struct sbx_cli_front *front, void *ctx, int c,
		 const char *arg, char *err, size_t errlen)
{
	if (c == 'v') {
		f->cfg.verbose++;
		return 0;
	}
	if (c == 'h')
		return 1;
	if (c >= SHARED_VAL && c < SHARED_VAL + (int)NSHARED) {
		const struct sbx_cli_opt *o = &shared_opts[c - SHARED_VAL];
		return o->kind == SBX_CLI_K_OWN ? own(f, o->id, arg, err, errlen)
						: store(o, f, arg, err, errlen);
	}
	if (!front || c < FRONT_VAL)
		return -EINVAL;
	const struct sbx_cli_opt *o = &front->opts[c - FRONT_VAL];
	if (o->kind != SBX_CLI_K_OWN)
		return store(o, ctx, arg, err, errlen);
	return front->own ? front->own(ctx, o->id, arg, err, errlen) : -EINVAL;
}

/* getopt's table: the shared options, the front's, -v and -h. */
static struct option *getopt_table(const struct sbx_cli_front *front)
{
	size_t nfront = 0;
	while (front && front->opts[nfront].name)
		nfront++;
	struct option *opts = calloc(NSHARED + nfront + 3, sizeof(*opts));
	if (!opts)
		return NULL;
	size_t n = 0;
	for (size_t i = 0; i < NSHARED; i++, n++)
		opts[n] = (struct option){shared_opts[i].name, shared_opts[i].has_arg, NULL,
					  SHARED_VAL + (int)i};
	for (size_t i = 0; i < nfront; i++, n++)
		opts[n] = (struct option){front->opts[i].name, front->opts[i].has_arg, NULL,
					  FRONT_VAL + (int)i};
	opts[n++] = (struct option){"verbose", no_argument, NULL, 'v'};
	opts[n] = (struct option){"help", no_argument, NULL, 'h'};
	return opts;
}

/* What the config takes from the policy once all is parsed. */
static int finish(struct sbx_cli *f, char *err, size_t errlen)
{
	f->cfg.mem_size = f->pol.lim.mem ? f->pol.lim.mem : 256ull << 20;
	if (f->pol.no_stdin)
		f->cfg.stdin_fd = -1;
	if (policy_has_env(&f->pol, "PATH"))
		return 0;
	return policy_set_env(&f->pol, "PATH=/bin:/usr/bin", err, errlen);
}

int sbx_cli_parse(struct sbx_cli *f, int argc, char **argv, const struct sbx_cli_front *front,
		  void *ctx, char *err, size_t errlen)
{
	struct option *opts = getopt_table(front);
	if (!opts) {
		snprintf(err, errlen, "out of memory parsing the options");
		return -ENOMEM;
	}
	int c, r = 0;
	err[0] = 0;
	const char *prog = argv[0] ? argv[0] : "sandbox";
	if (strrchr(prog, '/'))
		prog = strrchr(prog, '/') + 1;

	/* 1. The policy files, so that every flag can override them. */
	optind = 0;
	while (r == 0 && (c = getopt_long(argc, argv, "+vh", opts, NULL)) != -1) {
		if (is_shared(c, OWN_POLICY))
			r = policy_load_json(&f->pol, optarg, err, errlen);
		else if (c == '?')
			r = -EINVAL;
	}
	/* 2. The flags, in order. */
	optind = 0;
	while (r == 0 && (c = getopt_long(argc, argv, "+vh", opts, NULL)) != -1)
		r = apply(f, front, ctx, c, optarg, err, errlen);
	if (r == -EINVAL && !err[0])
		snprintf(err, errlen, "try '%s --help'", prog);
	if (r == 0)
		r = finish(f, err, errlen);
	free(opts);
	return r;
}

int sbx_cli_args(struct sbx_cli *c, int argc, char **argv, const struct sbx_cli_front *front,
		 void *ctx)
{
	char err[600];
	int r = sbx_cli_parse(c, argc, argv, front, ctx, err, sizeof(err));
	if (r == 1 && front && front->usage)
		front->usage(stdout);
	if (r < 0)
		sbx_cli_say(c, "%s", err);
	return r < 0 ? -1 : r;
}

int sbx_cli_copy(struct sbx_cli *dst, const struct sbx_cli *src, char *err, size_t errlen)
{
	*dst = *src;
	int r = policy_copy(&dst->pol, &src->pol, err, errlen);
	dst->cfg.policy = &dst->pol;
	return r;
}

int sbx_cli_program(struct sbx_cli *c, const char *prog)
{
	char err[512];
	if (access(prog, R_OK) != 0) {
		int e = errno;
		sbx_cli_say(c, "%s: %s", prog, strerror(e));
		return e == ENOENT ? 127 : 126;
	}
	if (c->pol.no_libs)
		return 0;
	if (sbx_dynamic_view(&c->pol, prog, c->cfg.tool, c->cfg.verbose ? stderr : NULL, err,
			     sizeof(err)) == 0)
		return 0;
	sbx_cli_say(c, "%s: %s", prog, err);
	return SBX_STATUS_ERROR;
}

int sbx_cli_open_audit(const struct sbx_cli *c, FILE **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!c->audit_path || (*out = fopen(c->audit_path, "ae")))
		return 0;
	int e = errno;
	snprintf(err, errlen, "--audit %s: %s", c->audit_path, strerror(e));
	return -e;
}

void sbx_cli_warn_unconfined(const struct sbx_cli *c)
{
	if (c->cfg.no_confine)
		sbx_cli_say(c, "WARNING: --no-confine: the monitor runs without its seccomp filter "
			       "and Landlock rules; a bug in it is not contained");
}
