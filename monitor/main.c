/* sandbox-run: the command-line front end. main() reads as the sequence it performs: the policy
 * file, then the flags over it, then the run, the report, and the guest's exit status. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "migrate.h"
#include "sandbox.h"

#define EXIT_USAGE 125

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: sandbox-run [OPTIONS] PROGRAM [ARGS...]\n"
	    "Runs a static x86-64 Linux program in its own KVM micro-VM.\n"
	    "\n"
	    "Policy (flags override --policy):\n"
	    "  --policy FILE.json   a reusable policy (docs/policy.md)\n"
	    "  --print-policy       print the effective policy as JSON and exit\n"
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
	    "  --trace-exits[=FILE.json]  trace every VM exit in the kernel with BPF (root) and\n"
	    "                       print a table of them at the end, or write it as JSON\n"
	    "Crashes:\n"
	    "  --report-json FILE   also write a crash report as JSON\n"
	    "  --core FILE          write an ELF core file of a crashed program (gdb PROG FILE)\n"
	    "  --debug-file FILE    separate debug info for crash reports\n"
	    "Snapshots and migration (docs/snapshots.md):\n"
	    "  --control SOCK       a control socket for sandbox-ctl (pause, resume, stats,\n"
	    "                       snapshot, migrate)\n"
	    "  --restore FILE       resume a sandbox from a snapshot instead of starting PROGRAM\n"
	    "  --restore-lazy FILE  the same, mapping its RAM copy-on-write without reading it\n"
	    "  --incoming ADDR      wait on tcp:HOST:PORT or unix:PATH for a live migration\n"
	    "  --migrate-key FILE   the pre-shared key that authenticates the migration stream\n"
	    "  --max-downtime DURATION  live migration's pause target (default 20ms)\n"
	    "  --allow-wider-policy a restore may grant more than the snapshot's policy did\n"
	    "  --snapshot-compress  compress snapshot RAM with zstd (not mappable)\n"
	    "  -v, --verbose        say more (twice for even more)\n"
	    "  -h, --help           this text\n"
	    "\n"
	    "Exit status: the program's own; 128+N when it was killed by signal N (faults\n"
	    "included); 119-123 when a limit ended it; 125 when the sandbox itself failed.\n");
}

enum {
	OPT_RO = 256,
	OPT_RW,
	OPT_CWD,
	OPT_ENV,
	OPT_MEM,
	OPT_CPL,
	OPT_POLL,
	OPT_STRACE,
	OPT_STATS,
	OPT_DEBUG_FILE,
	OPT_REPORT_JSON,
	OPT_CORE,
	OPT_POLICY,
	OPT_PRINT_POLICY,
	OPT_TMP,
	OPT_ENV_PASS,
	OPT_NO_STDIN,
	OPT_CPU_TIME,
	OPT_TIMEOUT,
	OPT_MAX_OUTPUT,
	OPT_MAX_WRITE,
	OPT_MAX_FILES,
	OPT_AUDIT,
	OPT_AUDIT_ALL,
	OPT_NO_CONFINE,
	OPT_CONTROL,
	OPT_RESTORE,
	OPT_RESTORE_LAZY,
	OPT_INCOMING,
	OPT_MIGRATE_KEY,
	OPT_MAX_DOWNTIME,
	OPT_ALLOW_WIDER,
	OPT_COMPRESS,
	OPT_TRACE_EXITS,
};

static const struct option opts[] = {
    {"ro", required_argument, 0, OPT_RO},
    {"rw", required_argument, 0, OPT_RW},
    {"cwd", required_argument, 0, OPT_CWD},
    {"env", required_argument, 0, OPT_ENV},
    {"mem", required_argument, 0, OPT_MEM},
    {"cpl", required_argument, 0, OPT_CPL},
    {"io-poll", required_argument, 0, OPT_POLL},
    {"strace", no_argument, 0, OPT_STRACE},
    {"stats", no_argument, 0, OPT_STATS},
    {"debug-file", required_argument, 0, OPT_DEBUG_FILE},
    {"report-json", required_argument, 0, OPT_REPORT_JSON},
    {"core", required_argument, 0, OPT_CORE},
    {"policy", required_argument, 0, OPT_POLICY},
    {"print-policy", no_argument, 0, OPT_PRINT_POLICY},
    {"tmp", required_argument, 0, OPT_TMP},
    {"env-pass", required_argument, 0, OPT_ENV_PASS},
    {"no-stdin", no_argument, 0, OPT_NO_STDIN},
    {"cpu-time", required_argument, 0, OPT_CPU_TIME},
    {"timeout", required_argument, 0, OPT_TIMEOUT},
    {"max-output", required_argument, 0, OPT_MAX_OUTPUT},
    {"max-write", required_argument, 0, OPT_MAX_WRITE},
    {"max-files", required_argument, 0, OPT_MAX_FILES},
    {"audit", required_argument, 0, OPT_AUDIT},
    {"audit-all", no_argument, 0, OPT_AUDIT_ALL},
    {"no-confine", no_argument, 0, OPT_NO_CONFINE},
    {"control", required_argument, 0, OPT_CONTROL},
    {"restore", required_argument, 0, OPT_RESTORE},
    {"restore-lazy", required_argument, 0, OPT_RESTORE_LAZY},
    {"incoming", required_argument, 0, OPT_INCOMING},
    {"migrate-key", required_argument, 0, OPT_MIGRATE_KEY},
    {"max-downtime", required_argument, 0, OPT_MAX_DOWNTIME},
    {"allow-wider-policy", no_argument, 0, OPT_ALLOW_WIDER},
    {"snapshot-compress", no_argument, 0, OPT_COMPRESS},
    {"trace-exits", optional_argument, 0, OPT_TRACE_EXITS},
    {"verbose", no_argument, 0, 'v'},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0},
};

static int pick(const char *opt, const char *v, const char *const *names, int n, char *err,
		size_t errlen)
{
	for (int i = 0; i < n; i++)
		if (strcmp(v, names[i]) == 0)
			return i;
	snprintf(err, errlen, "%s %s: expected one of auto, 0, 3 / auto, on, off", opt, v);
	return -EINVAL;
}

static int size_opt(const char *opt, const char *v, uint64_t *out, char *err, size_t errlen)
{
	if (policy_parse_size(v, out) < 0) {
		snprintf(err, errlen, "%s %s: expected a size like 4096, 64K, 256M or 1G", opt, v);
		return -EINVAL;
	}
	return 0;
}

static int duration_opt(const char *opt, const char *v, uint64_t *out, char *err, size_t errlen)
{
	if (policy_parse_duration(v, out) < 0 || *out == 0) {
		snprintf(err, errlen, "%s %s: expected a duration like 500ms, 10s, 2m or 1h", opt,
			 v);
		return -EINVAL;
	}
	return 0;
}

struct front {
	struct sbx_config cfg;
	struct policy pol;
	int stats, print_policy, have_path;
	const char *audit_path;
	const char *restore, *incoming;
	int restore_flags;
	uint8_t key[MIG_KEY_BYTES];
	int trace_exits;
	const char *trace_json;
};

/* One option onto the policy and config. Returns 0, 1 for --help, or -errno with err set. */
static int apply(struct front *f, int c, const char *arg, char *err, size_t errlen)
{
	static const char *const cpls[] = {"auto", "0", "3"};
	static const char *const polls[] = {"auto", "on", "off"};
	struct policy *p = &f->pol;
	int r = 0;
	switch (c) {
	case OPT_RO:
	case OPT_RW:
		return policy_add_mount(p, arg, c == OPT_RW, err, errlen);
	case OPT_CWD:
		return policy_set_cwd(p, arg, err, errlen);
	case OPT_ENV:
		f->have_path |= strncmp(arg, "PATH=", 5) == 0;
		return policy_set_env(p, arg, err, errlen);
	case OPT_ENV_PASS: {
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
	case OPT_TMP:
		return policy_add_tmp(p, arg, err, errlen);
	case OPT_NO_STDIN:
		p->no_stdin = 1;
		return 0;
	case OPT_MEM:
		return size_opt("--mem", arg, &p->lim.mem, err, errlen);
	case OPT_CPU_TIME:
		return duration_opt("--cpu-time", arg, &p->lim.cpu_ms, err, errlen);
	case OPT_TIMEOUT:
		return duration_opt("--timeout", arg, &p->lim.wall_ms, err, errlen);
	case OPT_MAX_OUTPUT:
		return size_opt("--max-output", arg, &p->lim.max_output, err, errlen);
	case OPT_MAX_WRITE:
		return size_opt("--max-write", arg, &p->lim.max_write, err, errlen);
	case OPT_MAX_FILES:
		r = size_opt("--max-files", arg, &p->lim.max_files, err, errlen);
		if (r == 0 && (p->lim.max_files < 3 || p->lim.max_files > 1024)) {
			snprintf(err, errlen, "--max-files %s: must be between 3 and 1024", arg);
			r = -EINVAL;
		}
		return r;
	case OPT_CPL:
		r = pick("--cpl", arg, cpls, 3, err, errlen);
		f->cfg.cpl = (enum sbx_cpl_mode)(r < 0 ? 0 : r);
		return r < 0 ? r : 0;
	case OPT_POLL:
		r = pick("--io-poll", arg, polls, 3, err, errlen);
		f->cfg.poll = (enum sbx_poll_mode)(r < 0 ? 0 : r);
		return r < 0 ? r : 0;
	case OPT_STRACE:
		f->cfg.strace = 1;
		return 0;
	case OPT_STATS:
		f->stats = f->cfg.stats = 1;
		return 0;
	case OPT_DEBUG_FILE:
		f->cfg.debug_file = arg;
		return 0;
	case OPT_REPORT_JSON:
		f->cfg.report_json = arg;
		return 0;
	case OPT_CORE:
		f->cfg.core_file = arg;
		return 0;
	case OPT_AUDIT:
		f->audit_path = arg;
		return 0;
	case OPT_AUDIT_ALL:
		f->cfg.audit_all = 1;
		return 0;
	case OPT_NO_CONFINE:
		f->cfg.no_confine = 1;
		return 0;
	case OPT_CONTROL:
		f->cfg.control_path = arg;
		return 0;
	case OPT_RESTORE:
	case OPT_RESTORE_LAZY:
		f->restore = arg;
		f->restore_flags = c == OPT_RESTORE_LAZY ? SBX_RESTORE_LAZY : 0;
		return 0;
	case OPT_INCOMING:
		f->incoming = arg;
		return 0;
	case OPT_MIGRATE_KEY:
		if ((r = mig_key_load(arg, f->key, err, errlen)) < 0)
			return r;
		f->cfg.migrate_key = f->key;
		return 0;
	case OPT_MAX_DOWNTIME:
		return duration_opt("--max-downtime", arg, &f->cfg.max_downtime_ms, err, errlen);
	case OPT_ALLOW_WIDER:
		f->cfg.allow_wider_policy = 1;
		return 0;
	case OPT_COMPRESS:
		f->cfg.snapshot_zstd = 3;
		return 0;
	case OPT_TRACE_EXITS:
		f->trace_exits = 1;
		f->trace_json = arg;
		return 0;
	case OPT_PRINT_POLICY:
		f->print_policy = 1;
		return 0;
	case OPT_POLICY:
		return 0; /* loaded before the other flags */
	case 'v':
		f->cfg.verbose++;
		return 0;
	case 'h':
		return 1;
	}
	snprintf(err, errlen, "try 'sandbox-run --help'");
	return -EINVAL;
}

static void print_stats(const struct sbx_result *res)
{
	fprintf(stderr,
		"sandbox-run: stats: setup %.3f ms, run %.3f ms, %llu VM exits, %llu doorbells, "
		"%llu hypercalls (%llu polled), %llu ENOSYS\n",
		res->stats.setup_ms, res->stats.run_ms, (unsigned long long)res->stats.exits,
		(unsigned long long)res->stats.doorbells, (unsigned long long)res->stats.calls,
		(unsigned long long)res->stats.polled, (unsigned long long)res->stats.nosys);
	fprintf(stderr,
		"sandbox-run: stats: monitor RSS %llu KiB (excluding %llu KiB of guest RAM)\n",
		(unsigned long long)res->stats.monitor_rss_kib,
		(unsigned long long)res->stats.guest_rss_kib);
	if (res->reported)
		fprintf(stderr, "sandbox-run: stats: fault report built in %.3f ms\n",
			res->stats.report_ms);
}

/* --restore and --incoming: the sandbox comes from a file or a stream, then runs as usual. */
static int run_restored(struct front *f, struct sbx_trace *trace, FILE *trace_json)
{
	char err[600];
	struct sbx_vm *vm = NULL;
	const char *what = f->restore ? f->restore : f->incoming;
	f->cfg.name = what;
	int r = f->restore
		    ? sbx_vm_restore(&f->cfg, f->restore, f->restore_flags, &vm, err, sizeof(err))
		    : sbx_vm_incoming(&f->cfg, f->incoming, &vm, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "sandbox-run: %s\n", err);
		return 125;
	}
	struct sbx_result res;
	memset(&res, 0, sizeof(res));
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (trace)
		sbx_trace_set_program(trace, sbx_vm_program(vm), f->cfg.debug_file);
	sbx_vm_run(vm, &res);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	res.stats.run_ms =
	    (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	sbx_vm_destroy(vm);
	if (trace)
		sbx_trace_report(trace, trace_json ? NULL : stderr, trace_json, res.stats.run_ms,
				 0);
	if (res.end != SBX_END_EXIT && !res.reported)
		fprintf(stderr, "sandbox-run: %s: %s\n", what, res.reason);
	if (f->stats)
		print_stats(&res);
	return res.status;
}

int main(int argc, char **argv)
{
	static struct front f;
	char err[512];
	int c, status = EXIT_USAGE;
	policy_init(&f.pol);
	f.cfg = (struct sbx_config){
	    .policy = &f.pol, .stdin_fd = 0, .stdout_fd = 1, .stderr_fd = 2, .log = stderr};
	FILE *audit = NULL, *trace_json = NULL;
	struct sbx_trace *trace = NULL;

	/* 1. The policy file, so that every flag can override it. */
	while ((c = getopt_long(argc, argv, "+vh", opts, NULL)) != -1) {
		if (c == OPT_POLICY && policy_load_json(&f.pol, optarg, err, sizeof(err)) < 0) {
			fprintf(stderr, "sandbox-run: %s\n", err);
			goto out;
		}
		if (c == '?') {
			fprintf(stderr, "sandbox-run: try 'sandbox-run --help'\n");
			goto out;
		}
	}
	/* 2. The flags. */
	optind = 0;
	while ((c = getopt_long(argc, argv, "+vh", opts, NULL)) != -1) {
		int r = apply(&f, c, optarg, err, sizeof(err));
		if (r == 1) {
			usage(stdout);
			status = 0;
			goto out;
		}
		if (r < 0) {
			fprintf(stderr, "sandbox-run: %s\n", err);
			goto out;
		}
	}
	if (!f.have_path && !policy_has_env(&f.pol, "PATH") &&
	    policy_set_env(&f.pol, "PATH=/bin:/usr/bin", err, sizeof(err)) < 0)
		goto out;
	if (f.print_policy) {
		status = policy_write_json(&f.pol, stdout) < 0 ? EXIT_USAGE : 0;
		goto out;
	}
	if (f.restore && f.incoming) {
		fprintf(stderr, "sandbox-run: --restore and --incoming exclude each other\n");
		goto out;
	}
	if (optind >= argc && !f.restore && !f.incoming) {
		fprintf(stderr, "sandbox-run: no program given; try 'sandbox-run --help'\n");
		goto out;
	}
	if (optind < argc && (f.restore || f.incoming)) {
		fprintf(stderr, "sandbox-run: %s brings its own program; '%s' is one too many\n",
			f.restore ? "--restore" : "--incoming", argv[optind]);
		goto out;
	}
	/* 3. What the policy needs on the host. */
	if (policy_make_tmp(&f.pol, err, sizeof(err)) < 0) {
		fprintf(stderr, "sandbox-run: %s\n", err);
		goto out;
	}
	if (f.audit_path && !(audit = fopen(f.audit_path, "ae"))) {
		fprintf(stderr, "sandbox-run: --audit %s: %s\n", f.audit_path, strerror(errno));
		goto out;
	}
	f.cfg.audit = audit;
	f.cfg.mem_size = f.pol.lim.mem ? f.pol.lim.mem : 256ull << 20;
	if (f.pol.no_stdin)
		f.cfg.stdin_fd = -1;
	if (f.cfg.no_confine)
		fprintf(stderr,
			"sandbox-run: WARNING: --no-confine: the monitor runs without its "
			"seccomp filter and Landlock rules; a bug in it is not contained\n");
	/* 4. Tracing, before the monitor confines itself (and before a restore, so that the
	 * restored vCPU's exits count too); without it the sandbox runs untraced. */
	if (f.trace_exits && f.trace_json && !(trace_json = fopen(f.trace_json, "we")))
		fprintf(stderr, "sandbox-run: --trace-exits=%s: %s; the sandbox runs untraced\n",
			f.trace_json, strerror(errno));
	else if (f.trace_exits) {
		struct sbx_trace_opts to = {.tgid = getpid(), .pvm = sbx_kvm_is_pvm()};
		if (sbx_trace_open(&to, &trace, err, sizeof(err)) < 0)
			fprintf(stderr,
				"sandbox-run: --trace-exits: cannot trace: %s; the sandbox runs "
				"untraced\n",
				err);
		else
			sbx_trace_set_program(trace, argv[optind < argc ? optind : 0],
					      f.cfg.debug_file);
	}

	if (f.restore || f.incoming) {
		status = run_restored(&f, trace, trace_json);
		goto out;
	}
	f.cfg.prog = argv[optind];
	f.cfg.argv = argv + optind;
	f.cfg.name = argv[optind];
	if (access(f.cfg.prog, R_OK) < 0) {
		fprintf(stderr, "sandbox-run: %s: %s\n", f.cfg.prog, strerror(errno));
		status = errno == ENOENT ? 127 : 126;
		goto out;
	}

	/* 5. The run. */
	struct sbx_result res;
	int r = sbx_run(&f.cfg, &res);
	status = res.status;
	if (r < 0) {
		fprintf(stderr, "sandbox-run: %s: %s\n", f.cfg.prog, res.reason);
		goto out;
	}
	if (res.end != SBX_END_EXIT && !res.reported)
		fprintf(stderr, "sandbox-run: %s: %s\n", f.cfg.prog, res.reason);
	if (f.stats)
		print_stats(&res);
	if (trace)
		sbx_trace_report(trace, trace_json ? NULL : stderr, trace_json, res.stats.run_ms,
				 0);
out:
	sbx_trace_close(trace);
	if (trace_json)
		fclose(trace_json);
	if (audit)
		fclose(audit);
	policy_free(&f.pol);
	return status;
}
