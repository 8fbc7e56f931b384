/* The flags every front end that runs a program under a policy shares (cli.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
	    "Limits (exit status 119-123 when one ends the run, see docs/policy.md):\n"
	    "  --mem SIZE           guest RAM, e.g. 256M, 1G (default 256M)\n"
	    "  --cpu-time DURATION  guest CPU time, e.g. 10s, 500ms\n"
	    "  --timeout DURATION   wall-clock time\n"
	    "  --max-output SIZE    bytes written to stdout and stderr\n"
	    "  --max-write SIZE     bytes written to files\n"
	    "  --max-files N        open files at once\n"
	    "Audit and confinement:\n"
	    "  --audit FILE         JSON lines of policy denials (--audit-all: every operation)\n"
	    "  --no-confine         do not confine the monitor itself (debugging only)\n"
	    "Running:\n"
	    "  --cpl auto|0|3       privilege level of program and kernel (auto: 3 on PVM, 0 on\n"
	    "                       hardware KVM)\n"
	    "  --io-poll auto|on|off  serve I/O from a polling thread without VM exits (auto: on\n"
	    "                       with two or more CPUs)\n"
	    "  --strace             print every syscall of the guest to stderr\n"
	    "  --stats              print exit and hypercall counts at the end\n"
	    "Crashes:\n"
	    "  --report-json FILE   also write a crash report as JSON\n"
	    "  --core FILE          write an ELF core file of a crashed program (gdb PROG FILE)\n"
	    "  --debug-file FILE    separate debug info for crash reports\n"
	    "  -v, --verbose        say more (twice for even more)\n"
	    "  -h, --help           this text\n");
}

static const struct option shared_opts[] = {
    {"ro", required_argument, 0, SBX_OPT_RO},
    {"rw", required_argument, 0, SBX_OPT_RW},
    {"cwd", required_argument, 0, SBX_OPT_CWD},
    {"env", required_argument, 0, SBX_OPT_ENV},
    {"mem", required_argument, 0, SBX_OPT_MEM},
    {"cpl", required_argument, 0, SBX_OPT_CPL},
    {"io-poll", required_argument, 0, SBX_OPT_POLL},
    {"strace", no_argument, 0, SBX_OPT_STRACE},
    {"stats", no_argument, 0, SBX_OPT_STATS},
    {"debug-file", required_argument, 0, SBX_OPT_DEBUG_FILE},
    {"report-json", required_argument, 0, SBX_OPT_REPORT_JSON},
    {"core", required_argument, 0, SBX_OPT_CORE},
    {"policy", required_argument, 0, SBX_OPT_POLICY},
    {"tmp", required_argument, 0, SBX_OPT_TMP},
    {"env-pass", required_argument, 0, SBX_OPT_ENV_PASS},
    {"no-stdin", no_argument, 0, SBX_OPT_NO_STDIN},
    {"cpu-time", required_argument, 0, SBX_OPT_CPU_TIME},
    {"timeout", required_argument, 0, SBX_OPT_TIMEOUT},
    {"max-output", required_argument, 0, SBX_OPT_MAX_OUTPUT},
    {"max-write", required_argument, 0, SBX_OPT_MAX_WRITE},
    {"max-files", required_argument, 0, SBX_OPT_MAX_FILES},
    {"audit", required_argument, 0, SBX_OPT_AUDIT},
    {"audit-all", no_argument, 0, SBX_OPT_AUDIT_ALL},
    {"no-confine", no_argument, 0, SBX_OPT_NO_CONFINE},
    {"verbose", no_argument, 0, 'v'},
    {"help", no_argument, 0, 'h'},
};
#define NSHARED (sizeof(shared_opts) / sizeof(shared_opts[0]))

void sbx_cli_init(struct sbx_cli *c)
{
	memset(c, 0, sizeof(*c));
	policy_init(&c->pol);
	c->cfg = (struct sbx_config){
	    .policy = &c->pol, .stdin_fd = 0, .stdout_fd = 1, .stderr_fd = 2, .log = stderr};
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

/* One shared option onto the policy and config. Returns 0, 1 for --help, 2 when c is not a
 * shared option, or -errno with err set. */
static int apply(struct sbx_cli *f, int c, const char *arg, char *err, size_t errlen)
{
	static const char *const cpls[] = {"auto", "0", "3"};
	static const char *const polls[] = {"auto", "on", "off"};
	struct policy *p = &f->pol;
	int r = 0;
	switch (c) {
	case SBX_OPT_RO:
	case SBX_OPT_RW:
		return policy_add_mount(p, arg, c == SBX_OPT_RW, err, errlen);
	case SBX_OPT_CWD:
		return policy_set_cwd(p, arg, err, errlen);
	case SBX_OPT_ENV:
		f->have_path |= strncmp(arg, "PATH=", 5) == 0;
		return policy_set_env(p, arg, err, errlen);
	case SBX_OPT_ENV_PASS: {
		const char *v = getenv(arg);
		if (!v)
			return 0; /* not set on the host: nothing to pass */
		size_t n = strlen(arg) + strlen(v) + 2;
		char *kv = malloc(n);
		if (!kv)
			return -ENOMEM;
		snprintf(kv, n, "%s=%s", arg, v);
		f->have_path |= strcmp(arg, "PATH") == 0;
		r = policy_set_env(p, kv, err, errlen);
		free(kv);
		return r;
	}
	case SBX_OPT_TMP:
		return policy_add_tmp(p, arg, err, errlen);
	case SBX_OPT_NO_STDIN:
		p->no_stdin = 1;
		return 0;
	case SBX_OPT_MEM:
		return sbx_cli_size("--mem", arg, &p->lim.mem, err, errlen);
	case SBX_OPT_CPU_TIME:
		return sbx_cli_duration("--cpu-time", arg, &p->lim.cpu_ms, err, errlen);
	case SBX_OPT_TIMEOUT:
		return sbx_cli_duration("--timeout", arg, &p->lim.wall_ms, err, errlen);
	case SBX_OPT_MAX_OUTPUT:
		return sbx_cli_size("--max-output", arg, &p->lim.max_output, err, errlen);
	case SBX_OPT_MAX_WRITE:
		return sbx_cli_size("--max-write", arg, &p->lim.max_write, err, errlen);
	case SBX_OPT_MAX_FILES:
		r = sbx_cli_size("--max-files", arg, &p->lim.max_files, err, errlen);
		if (r == 0 && (p->lim.max_files < 3 || p->lim.max_files > 1024)) {
			snprintf(err, errlen, "--max-files %s: must be between 3 and 1024", arg);
			r = -EINVAL;
		}
		return r;
	case SBX_OPT_CPL:
		r = pick("--cpl", arg, cpls, 3, err, errlen);
		f->cfg.cpl = (enum sbx_cpl_mode)(r < 0 ? 0 : r);
		return r < 0 ? r : 0;
	case SBX_OPT_POLL:
		r = pick("--io-poll", arg, polls, 3, err, errlen);
		f->cfg.poll = (enum sbx_poll_mode)(r < 0 ? 0 : r);
		return r < 0 ? r : 0;
	case SBX_OPT_STRACE:
		f->cfg.strace = 1;
		return 0;
	case SBX_OPT_STATS:
		f->stats = f->cfg.stats = 1;
		return 0;
	case SBX_OPT_DEBUG_FILE:
		f->cfg.debug_file = arg;
		return 0;
	case SBX_OPT_REPORT_JSON:
		f->cfg.report_json = arg;
		return 0;
	case SBX_OPT_CORE:
		f->cfg.core_file = arg;
		return 0;
	case SBX_OPT_AUDIT:
		f->audit_path = arg;
		return 0;
	case SBX_OPT_AUDIT_ALL:
		f->cfg.audit_all = 1;
		return 0;
	case SBX_OPT_NO_CONFINE:
		f->cfg.no_confine = 1;
		return 0;
	case SBX_OPT_POLICY:
		return 0; /* loaded before the other flags */
	case 'v':
		f->cfg.verbose++;
		return 0;
	case 'h':
		return 1;
	}
	return 2;
}

int sbx_cli_parse(struct sbx_cli *f, int argc, char **argv, const struct option *front_opts,
		  sbx_cli_front_fn front, void *ctx, char *err, size_t errlen)
{
	size_t nfront = 0;
	while (front_opts && front_opts[nfront].name)
		nfront++;
	struct option *opts = calloc(NSHARED + nfront + 1, sizeof(*opts));
	if (!opts) {
		snprintf(err, errlen, "out of memory parsing the options");
		return -ENOMEM;
	}
	memcpy(opts, shared_opts, sizeof(shared_opts));
	if (nfront)
		memcpy(opts + NSHARED, front_opts, nfront * sizeof(*opts));
	int c, r = 0;
	err[0] = 0;
	const char *prog = argv[0] ? argv[0] : "sandbox";
	if (strrchr(prog, '/'))
		prog = strrchr(prog, '/') + 1;

	/* 1. The policy files, so that every flag can override them. */
	optind = 0;
	while ((c = getopt_long(argc, argv, "+vh", opts, NULL)) != -1) {
		if (c == SBX_OPT_POLICY && (r = policy_load_json(&f->pol, optarg, err, errlen)) < 0)
			goto out;
		if (c == '?') {
			snprintf(err, errlen, "try '%s --help'", prog);
			r = -EINVAL;
			goto out;
		}
	}
	/* 2. The flags, in order. */
	optind = 0;
	while ((c = getopt_long(argc, argv, "+vh", opts, NULL)) != -1) {
		r = apply(f, c, optarg, err, errlen);
		if (r == 2)
			r = front ? front(ctx, c, optarg, err, errlen) : -EINVAL;
		if (r == -EINVAL && !err[0])
			snprintf(err, errlen, "try '%s --help'", prog);
		if (r != 0)
			goto out;
	}
	if (!f->have_path && !policy_has_env(&f->pol, "PATH"))
		r = policy_set_env(&f->pol, "PATH=/bin:/usr/bin", err, errlen);
out:
	free(opts);
	return r;
}
