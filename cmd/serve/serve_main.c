/* sandbox-serve: a fresh, isolated instance of a handler for every HTTP request
 * (docs/serve.md). main() reads as the boot sequence: the flags, the pool of instances (each a
 * VM with its snapshot), the HTTP front, then signals until SIGTERM. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli.h"
#include "serve.h"

#define EXIT_USAGE 125

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: sandbox-serve [OPTIONS] --listen HOST:PORT HANDLER [ARGS...]\n"
	    "Serves HTTP/1.1 with a fresh, isolated micro-VM instance of a CGI handler\n"
	    "for every request, reset from a snapshot (docs/serve.md).\n"
	    "\n"
	    "Serving:\n"
	    "  --listen HOST:PORT   where to listen (default 127.0.0.1:8080; port 0: any)\n"
	    "  --admin HOST:PORT    GET /-/metrics there, in Prometheus text format\n"
	    "  --instances N        VMs in the pool (default: the online CPUs)\n"
	    "  --queue N            requests waiting for an instance at most (default 4 per\n"
	    "                       instance); past it: 503 with Retry-After\n"
	    "  --warm               snapshot at the handler's first read of stdin, after its own\n"
	    "                       initialisation; the request arrives framed on stdin. What the\n"
	    "                       handler seeded while initialising (its random state too) is\n"
	    "                       shared by every request: reseed per request (docs/serve.md)\n"
	    "  --timeout DURATION   per request (default 10s): 504 past it\n"
	    "  --max-body SIZE      request bodies (default 16M): 413 past it\n"
	    "  --max-output SIZE    the handler's stdout, the response (default 16M here): 502\n"
	    "                       past it; its stderr has a budget of the same size apart\n"
	    "  --access-log FILE    one line per request (common log format, duration, instance);\n"
	    "                       default stdout, '-' too\n"
	    "  --max-connections N  open connections, all clients together (default 1024)\n"
	    "  --max-connections-per-client N\n"
	    "                       open connections from one client address (default 64):\n"
	    "                       one client cannot take the others' room. Behind a proxy\n"
	    "                       every connection is the proxy's: raise it there\n"
	    "  --header-timeout DURATION\n"
	    "                       a request's head (request line and headers) must be all in\n"
	    "                       within this of the connection's start or of the response\n"
	    "                       before it on the connection (default 10s); past it the\n"
	    "                       connection is closed\n"
	    "Signals: SIGTERM/SIGINT stop accepting, finish what is in flight and exit 0; SIGHUP\n"
	    "reloads the handler binary into new instances and drains the old ones.\n"
	    "\n");
	sbx_cli_usage(f);
}

struct serve_opts {
	const char *listen, *admin, *access_log;
	uint64_t instances, queue, max_body;
	uint64_t max_connections, max_per_client, header_timeout_ms;
	int warm;
};

static const struct sbx_cli_opt opts[] = {
    SBX_CLI_STRING("listen", struct serve_opts, listen),
    SBX_CLI_STRING("admin", struct serve_opts, admin),
    SBX_CLI_COUNT("instances", struct serve_opts, instances),
    SBX_CLI_COUNT("queue", struct serve_opts, queue),
    SBX_CLI_FLAG("warm", struct serve_opts, warm),
    SBX_CLI_SIZE("max-body", struct serve_opts, max_body),
    SBX_CLI_STRING("access-log", struct serve_opts, access_log),
    SBX_CLI_COUNT("max-connections", struct serve_opts, max_connections),
    SBX_CLI_COUNT("max-connections-per-client", struct serve_opts, max_per_client),
    SBX_CLI_DURATION("header-timeout", struct serve_opts, header_timeout_ms),
    {0},
};

static const struct sbx_cli_front serve_front = {opts, NULL, usage};

/* What all connections may hold of request bodies at once: enough for every instance and
 * every queued request to have a whole one, at least 64 MiB, at most 1 GiB (or one body). */
static uint64_t body_budget(const struct serve_opts *so)
{
	uint64_t b = (so->queue + so->instances) * so->max_body;
	if (b < (64u << 20))
		b = 64u << 20;
	if (b > (1ull << 30))
		b = 1ull << 30;
	return b < so->max_body ? so->max_body : b;
}

/* Every connection takes two descriptors (libmicrohttpd's socket and the dup its head deadline
 * shuts down through) and every instance a dozen or so: a soft limit of 1024, common, would
 * refuse connections long before --max-connections. */
static void raise_nofile(const struct serve_opts *so)
{
	rlim_t need = 2 * so->max_connections + 32 * so->instances + 64;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
		return;
	struct rlimit up = rl;
	up.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need ? rl.rlim_max : need;
	if (setrlimit(RLIMIT_NOFILE, &up) == 0)
		rl = up;
	if (rl.rlim_cur < need)
		fprintf(stderr,
			"sandbox-serve: open files are limited to %llu, less than the %llu that "
			"--max-connections %llu and --instances %llu need: connections past it "
			"fail\n",
			(unsigned long long)rl.rlim_cur, (unsigned long long)need,
			(unsigned long long)so->max_connections, (unsigned long long)so->instances);
}

/* The flags, once: serve's own into so, the policy and the run flags into cli (every instance
 * gets a copy). 1 to go on, else 0 with the exit status set. */
static int serve_args(struct sbx_cli *cli, struct serve_opts *so, int argc, char **argv,
		      int *status)
{
	int r = sbx_cli_args(cli, argc, argv, &serve_front, so);
	*status = r > 0 ? 0 : EXIT_USAGE;
	if (r != 0)
		return 0;
	if (optind >= argc) {
		sbx_cli_say(cli, "no handler given; try 'sandbox-serve --help'");
		return 0;
	}
	if ((*status = sbx_cli_program(cli, argv[optind])) != 0)
		return 0;
	*status = EXIT_USAGE;
	if (!so->instances) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		so->instances = n > 0 ? (uint64_t)n : 1;
	}
	if (!so->queue)
		so->queue = 4 * so->instances;
	if (so->max_per_client > so->max_connections) {
		sbx_cli_say(cli,
			    "--max-connections-per-client %llu is more than --max-connections %llu",
			    (unsigned long long)so->max_per_client,
			    (unsigned long long)so->max_connections);
		return 0;
	}
	return 1;
}

/* Until SIGTERM or SIGINT; SIGHUP reloads the handler. */
static void serve_signals(const sigset_t *sigs, struct serve_pool *pool, const char *prog)
{
	char err[600];
	for (;;) {
		int sig = 0;
		if (sigwait(sigs, &sig) != 0)
			continue;
		if (sig != SIGHUP) {
			fprintf(stderr, "sandbox-serve: %s: finishing the requests in flight\n",
				strsignal(sig));
			return;
		}
		fprintf(stderr, "sandbox-serve: SIGHUP: reloading %s\n", prog);
		if (serve_pool_reload(pool, err, sizeof(err)) < 0)
			fprintf(stderr,
				"sandbox-serve: reload failed, the old instances stay: %s\n", err);
		else
			fprintf(stderr, "sandbox-serve: reloaded %s\n", prog);
	}
}

/* The pool: every instance created from a copy of the parsed command line, run to its point
 * and snapshotted. */
static int open_pool(const struct sbx_cli *cli, const struct serve_opts *so, char **argv,
		     struct serve_metrics *metrics, struct serve_pool **pool)
{
	char err[600];
	struct serve_pool_opts po = {
	    .cli = cli,
	    .argv = argv,
	    .instances = (unsigned)so->instances,
	    .queue = (unsigned)so->queue,
	    .warm = so->warm,
	    .timeout_ms = cli->pol.lim.wall_ms ? cli->pol.lim.wall_ms : 10000,
	    .log = stderr,
	    .metrics = metrics,
	};
	int r = serve_pool_open(&po, pool, err, sizeof(err));
	if (r < 0)
		sbx_cli_say(cli, "%s", err);
	return r;
}

/* The HTTP front and the admin address. */
static int open_http(const struct sbx_cli *cli, const struct serve_opts *so, FILE *alog,
		     struct serve_pool *pool, struct serve_metrics *metrics,
		     struct serve_http **http)
{
	char err[600];
	struct serve_http_opts ho = {
	    .listen = so->listen,
	    .admin = so->admin,
	    .max_body = so->max_body,
	    .body_budget = body_budget(so),
	    .access_log = alog,
	    .log = stderr,
	    .pool = pool,
	    .metrics = metrics,
	    .base_env = cli->pol.env,
	    .warm = so->warm,
	    .max_connections = (unsigned)so->max_connections,
	    .max_per_client = (unsigned)so->max_per_client,
	    .header_timeout_ms = so->header_timeout_ms,
	};
	int r = serve_http_start(&ho, http, err, sizeof(err));
	if (r < 0)
		sbx_cli_say(cli, "%s", err);
	return r;
}

/* --access-log: stdout by default and for "-". 0, or -1 with the message said. */
static int open_access_log(const struct sbx_cli *cli, const struct serve_opts *so, FILE **alog)
{
	*alog = stdout;
	if (!so->access_log || strcmp(so->access_log, "-") == 0)
		return 0;
	if ((*alog = fopen(so->access_log, "ae")))
		return 0;
	sbx_cli_say(cli, "--access-log %s: %s", so->access_log, strerror(errno));
	return -1;
}

int main(int argc, char **argv)
{
	static struct sbx_cli cli;
	struct serve_opts so = {.listen = "127.0.0.1:8080",
				.max_body = 16u << 20,
				.max_connections = 1024,
				.max_per_client = 64,
				.header_timeout_ms = 10000};
	struct serve_metrics metrics;
	struct serve_pool *pool = NULL;
	struct serve_http *http = NULL;
	FILE *alog = NULL;
	serve_metrics_init(&metrics);

	/* 1. The flags, parsed once. */
	sbx_cli_init(&cli, "sandbox-serve");
	int status;
	if (!serve_args(&cli, &so, argc, argv, &status))
		goto out;
	const char *prog = argv[optind];
	raise_nofile(&so);
	if (open_access_log(&cli, &so, &alog) < 0)
		goto out;
	sbx_cli_warn_unconfined(&cli);
	if (so.warm)
		sbx_cli_say(&cli,
			    "--warm: whatever %s initialises before its first read of stdin "
			    "(random seeds included) is shared by every request",
			    prog);

	/* 2. Signals are taken by this thread only (every thread made from here on blocks
	 * them), before the pool makes its threads. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* 3. The pool, 4. the HTTP front. */
	status = 1;
	if (open_pool(&cli, &so, argv + optind, &metrics, &pool) < 0 ||
	    open_http(&cli, &so, alog, pool, &metrics, &http) < 0)
		goto out;
	fprintf(stderr, "sandbox-serve: %s mode, %u instances of %s, listening on port %u",
		so.warm ? "warm" : "CGI", (unsigned)so.instances, prog, serve_http_port(http));
	if (so.admin)
		fprintf(stderr, ", metrics on port %u", serve_http_admin_port(http));
	fprintf(stderr, "\n");

	/* 5. Until SIGTERM, then drain and stop. */
	serve_signals(&sigs, pool, prog);
	serve_http_drain(http, 60000);
	status = 0;
out:
	serve_http_stop(http);
	serve_pool_close(pool);
	if (alog && alog != stdout)
		fclose(alog);
	fflush(stdout);
	serve_metrics_destroy(&metrics);
	policy_free(&cli.pol);
	return status;
}
