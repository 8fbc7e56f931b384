/* sandbox-run: the command-line front end. main() reads as the sequence it performs: parse the
 * command line into a policy and a config, run, report, exit with the guest's status. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandbox.h"

#define EXIT_USAGE 125

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: sandbox-run [OPTIONS] PROGRAM [ARGS...]\n"
	    "Runs a static x86-64 Linux program in its own KVM micro-VM.\n"
	    "\n"
	    "  --ro HOST[:GUEST]    show a host file or directory read-only at GUEST\n"
	    "  --rw HOST[:GUEST]    show it read-write\n"
	    "  --cwd DIR            the guest's working directory (default /)\n"
	    "  --env K=V            set a guest environment variable (default: PATH only)\n"
	    "  --mem SIZE           guest RAM, e.g. 256M, 1G (default 256M)\n"
	    "  --cpl auto|0|3       privilege level of program and kernel (auto: 3 on PVM, 0 on\n"
	    "                       hardware KVM)\n"
	    "  --io-poll auto|on|off  serve I/O from a polling thread without VM exits (auto: on\n"
	    "                       with two or more CPUs)\n"
	    "  --strace             print every syscall of the guest to stderr\n"
	    "  --stats              print exit and hypercall counts at the end\n"
	    "  --debug-file FILE    separate debug info for crash reports\n"
	    "  --report-json FILE   also write a crash report as JSON\n"
	    "  --core FILE          write an ELF core file of a crashed program (gdb PROG FILE)\n"
	    "  -v, --verbose        say more (twice for even more)\n"
	    "  -h, --help           this text\n"
	    "\n"
	    "Exit status: the program's own; 128+N when it was killed by signal N (faults\n"
	    "included); 125 when the sandbox itself failed (bad ELF, KVM error, bad options).\n");
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
	OPT_CORE
};

static int pick(const char *opt, const char *v, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(v, names[i]) == 0)
			return i;
	fprintf(stderr, "sandbox-run: %s %s: expected one of", opt, v);
	for (int i = 0; i < n; i++)
		fprintf(stderr, " %s", names[i]);
	fputc('\n', stderr);
	exit(EXIT_USAGE);
}

int main(int argc, char **argv)
{
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
	    {"verbose", no_argument, 0, 'v'},
	    {"help", no_argument, 0, 'h'},
	    {0, 0, 0, 0},
	};
	static const char *const cpls[] = {"auto", "0", "3"};
	static const char *const polls[] = {"auto", "on", "off"};
	struct policy pol;
	policy_init(&pol);
	struct sbx_config cfg = {
	    .policy = &pol,
	    .mem_size = 256ull << 20,
	    .stdin_fd = 0,
	    .stdout_fd = 1,
	    .stderr_fd = 2,
	    .log = stderr,
	};
	char err[512];
	int stats = 0, have_path = 0, c, status = EXIT_USAGE;
	while ((c = getopt_long(argc, argv, "+vh", opts, NULL)) != -1) {
		int r = 0;
		switch (c) {
		case OPT_RO:
		case OPT_RW:
			r = policy_add_mount(&pol, optarg, c == OPT_RW, err, sizeof(err));
			break;
		case OPT_CWD:
			r = policy_set_cwd(&pol, optarg, err, sizeof(err));
			break;
		case OPT_ENV:
			r = policy_set_env(&pol, optarg, err, sizeof(err));
			have_path |= strncmp(optarg, "PATH=", 5) == 0;
			break;
		case OPT_MEM:
			if (sbx_parse_size(optarg, &cfg.mem_size) < 0) {
				snprintf(err, sizeof(err),
					 "--mem %s: expected a size like 256M or 1G", optarg);
				r = -EINVAL;
			}
			break;
		case OPT_CPL:
			cfg.cpl = (enum sbx_cpl_mode)pick("--cpl", optarg, cpls, 3);
			break;
		case OPT_POLL:
			cfg.poll = (enum sbx_poll_mode)pick("--io-poll", optarg, polls, 3);
			break;
		case OPT_STRACE:
			cfg.strace = 1;
			break;
		case OPT_STATS:
			stats = cfg.stats = 1;
			break;
		case OPT_DEBUG_FILE:
			cfg.debug_file = optarg;
			break;
		case OPT_REPORT_JSON:
			cfg.report_json = optarg;
			break;
		case OPT_CORE:
			cfg.core_file = optarg;
			break;
		case 'v':
			cfg.verbose++;
			break;
		case 'h':
			usage(stdout);
			status = 0;
			goto out;
		default:
			fprintf(stderr, "sandbox-run: try 'sandbox-run --help'\n");
			goto out;
		}
		if (r < 0) {
			fprintf(stderr, "sandbox-run: %s\n", err);
			goto out;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "sandbox-run: no program given; try 'sandbox-run --help'\n");
		goto out;
	}
	if (!have_path && policy_set_env(&pol, "PATH=/bin:/usr/bin", err, sizeof(err)) < 0)
		goto out;
	cfg.prog = argv[optind];
	cfg.argv = argv + optind;
	cfg.name = argv[optind];
	if (access(cfg.prog, R_OK) < 0) {
		fprintf(stderr, "sandbox-run: %s: %s\n", cfg.prog, strerror(errno));
		status = errno == ENOENT ? 127 : 126;
		goto out;
	}

	struct sbx_result res;
	int r = sbx_run(&cfg, &res);
	status = res.status;
	if (r < 0) {
		fprintf(stderr, "sandbox-run: %s: %s\n", cfg.prog, res.reason);
		goto out;
	}
	if (res.end != SBX_END_EXIT && !res.reported)
		fprintf(stderr, "sandbox-run: %s: %s\n", cfg.prog, res.reason);
	if (stats) {
		fprintf(stderr,
			"sandbox-run: stats: setup %.3f ms, run %.3f ms, %llu VM exits, %llu "
			"doorbells, "
			"%llu hypercalls (%llu polled), %llu ENOSYS\n",
			res.stats.setup_ms, res.stats.run_ms, (unsigned long long)res.stats.exits,
			(unsigned long long)res.stats.doorbells,
			(unsigned long long)res.stats.calls, (unsigned long long)res.stats.polled,
			(unsigned long long)res.stats.nosys);
		fprintf(
		    stderr,
		    "sandbox-run: stats: monitor RSS %llu KiB (excluding %llu KiB of guest RAM)\n",
		    (unsigned long long)res.stats.monitor_rss_kib,
		    (unsigned long long)res.stats.guest_rss_kib);
		if (res.reported)
			fprintf(stderr, "sandbox-run: stats: fault report built in %.3f ms\n",
				res.stats.report_ms);
	}
out:
	policy_free(&pol);
	return status;
}
