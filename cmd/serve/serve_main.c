/* sandbox-serve: a fresh, isolated instance of a static handler for every HTTP request
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
	    "Serves HTTP/1.1 with a fresh, isolated micro-VM instance of a static CGI handler\n"
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

enum {
	OPT_LISTEN = SBX_OPT_FRONT,
	OPT_ADMIN,
	OPT_INSTANCES,
	OPT_QUEUE,
	OPT_WARM,
	OPT_MAX_BODY,
	OPT_ACCESS_LOG,
	OPT_MAX_CONNECTIONS,
	OPT_MAX_PER_CLIENT,
	OPT_HEADER_TIMEOUT,
};

static const struct option opts[] = {
    {"listen", required_argument, 0, OPT_LISTEN},
    {"admin", required_argument, 0, OPT_ADMIN},
    {"instances", required_argument, 0, OPT_INSTANCES},
    {"queue", required_argument, 0, OPT_QUEUE},
    {"warm", no_argument, 0, OPT_WARM},
    {"max-body", required_argument, 0, OPT_MAX_BODY},
    {"access-log", required_argument, 0, OPT_ACCESS_LOG},
    {"max-connections", required_argument, 0, OPT_MAX_CONNECTIONS},
    {"max-connections-per-client", required_argument, 0, OPT_MAX_PER_CLIENT},
    {"header-timeout", required_argument, 0, OPT_HEADER_TIMEOUT},
    {0, 0, 0, 0},
};

struct serve_opts {
	const char *listen, *admin, *access_log;
	uint64_t instances, queue, max_body;
	uint64_t max_connections, max_per_client, header_timeout_ms;
	int warm;
};

static int count_opt(const char *opt, const char *v, uint64_t *out, char *err, size_t errlen)
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

static int apply(void *ctx, int c, const char *arg, char *err, size_t errlen)
{
	struct serve_opts *s = ctx;
	struct serve_opts ignored;
	if (!s)
		s = &ignored; /* an instance's policy: serve's own flags are known already */
	switch (c) {
	case OPT_LISTEN:
		s->listen = arg;
		return 0;
	case OPT_ADMIN:
		s->admin = arg;
		return 0;
	case OPT_INSTANCES:
		return count_opt("--instances", arg, &s->instances, err, errlen);
	case OPT_QUEUE:
		return count_opt("--queue", arg, &s->queue, err, errlen);
	case OPT_WARM:
		s->warm = 1;
		return 0;
	case OPT_MAX_BODY:
		return sbx_cli_size("--max-body", arg, &s->max_body, err, errlen);
	case OPT_ACCESS_LOG:
		s->access_log = arg;
		return 0;
	case OPT_MAX_CONNECTIONS:
		return count_opt("--max-connections", arg, &s->max_connections, err, errlen);
	case OPT_MAX_PER_CLIENT:
		return count_opt("--max-connections-per-client", arg, &s->max_per_client, err,
				 errlen);
	case OPT_HEADER_TIMEOUT:
		return sbx_cli_duration("--header-timeout", arg, &s->header_timeout_ms, err,
					errlen);
	}
	snprintf(err, errlen, "try 'sandbox-serve --help'");
	return -EINVAL;
}

int serve_parse_cli(struct sbx_cli *c, int argc, char **argv, void *serve_opts, char *err,
		    size_t errlen)
{
	return sbx_cli_parse(c, argc, argv, opts, apply, serve_opts, err, errlen);
}

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

int main(int argc, char **argv)
{
	static struct sbx_cli cli;
	struct serve_opts so = {.listen = "127.0.0.1:8080",
				.max_body = 16u << 20,
				.max_connections = 1024,
				.max_per_client = 64,
				.header_timeout_ms = 10000};
	char err[600];
	int status = EXIT_USAGE;
	struct serve_metrics metrics;
	struct serve_pool *pool = NULL;
	struct serve_http *http = NULL;
	FILE *alog = stdout;
	serve_metrics_init(&metrics);

	/* 1. The flags (every instance parses them again for a policy of its own). */
	sbx_cli_init(&cli);
	int r = serve_parse_cli(&cli, argc, argv, &so, err, sizeof(err));
	if (r == 1) {
		usage(stdout);
		status = 0;
		goto out;
	}
	if (r < 0) {
		fprintf(stderr, "sandbox-serve: %s\n", err);
		goto out;
	}
	if (optind >= argc) {
		fprintf(stderr, "sandbox-serve: no handler given; try 'sandbox-serve --help'\n");
		goto out;
	}
	const char *prog = argv[optind];
	if (access(prog, R_OK) < 0) {
		fprintf(stderr, "sandbox-serve: %s: %s\n", prog, strerror(errno));
		status = errno == ENOENT ? 127 : 126;
		goto out;
	}
	if (!so.instances) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		so.instances = n > 0 ? (uint64_t)n : 1;
	}
	if (!so.queue)
		so.queue = 4 * so.instances;
	if (so.max_per_client > so.max_connections) {
		fprintf(stderr,
			"sandbox-serve: --max-connections-per-client %llu is more than "
			"--max-connections %llu\n",
			(unsigned long long)so.max_per_client,
			(unsigned long long)so.max_connections);
		goto out;
	}
	raise_nofile(&so);
	if (so.access_log && strcmp(so.access_log, "-") != 0 &&
	    !(alog = fopen(so.access_log, "ae"))) {
		fprintf(stderr, "sandbox-serve: --access-log %s: %s\n", so.access_log,
			strerror(errno));
		alog = NULL;
		goto out;
	}
	if (cli.cfg.no_confine)
		fprintf(stderr, "sandbox-serve: WARNING: --no-confine: the monitor runs without "
				"its seccomp filter and Landlock rules\n");
	if (so.warm)
		fprintf(stderr,
			"sandbox-serve: --warm: whatever %s initialises before its first read of "
			"stdin (random seeds included) is shared by every request\n",
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

	/* 3. The pool: every instance created, run to its point and snapshotted. */
	struct serve_pool_opts po = {
	    .argc = argc,
	    .argv = argv,
	    .instances = (unsigned)so.instances,
	    .queue = (unsigned)so.queue,
	    .warm = so.warm,
	    .timeout_ms = cli.pol.lim.wall_ms ? cli.pol.lim.wall_ms : 10000,
	    .log = stderr,
	    .metrics = &metrics,
	    .verbose = cli.cfg.verbose,
	};
	if ((r = serve_pool_open(&po, &pool, err, sizeof(err))) < 0) {
		fprintf(stderr, "sandbox-serve: %s\n", err);
		status = 1;
		goto out;
	}

	/* 4. The HTTP front and the admin address. */
	struct serve_http_opts ho = {
	    .listen = so.listen,
	    .admin = so.admin,
	    .max_body = so.max_body,
	    .body_budget = body_budget(&so),
	    .access_log = alog,
	    .log = stderr,
	    .pool = pool,
	    .metrics = &metrics,
	    .base_env = cli.pol.env,
	    .warm = so.warm,
	    .max_connections = (unsigned)so.max_connections,
	    .max_per_client = (unsigned)so.max_per_client,
	    .header_timeout_ms = so.header_timeout_ms,
	};
	if ((r = serve_http_start(&ho, &http, err, sizeof(err))) < 0) {
		fprintf(stderr, "sandbox-serve: %s\n", err);
		status = 1;
		goto out;
	}
	fprintf(stderr, "sandbox-serve: %s mode, %u instances of %s, listening on port %u",
		so.warm ? "warm" : "CGI", po.instances, prog, serve_http_port(http));
	if (so.admin)
		fprintf(stderr, ", metrics on port %u", serve_http_admin_port(http));
	fprintf(stderr, "\n");

	/* 5. Until SIGTERM. */
	for (;;) {
		int sig = 0;
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			fprintf(stderr, "sandbox-serve: SIGHUP: reloading %s\n", prog);
			if (serve_pool_reload(pool, err, sizeof(err)) < 0)
				fprintf(stderr,
					"sandbox-serve: reload failed, the old instances stay: "
					"%s\n",
					err);
			else
				fprintf(stderr, "sandbox-serve: reloaded %s\n", prog);
			continue;
		}
		fprintf(stderr, "sandbox-serve: %s: finishing the requests in flight\n",
			strsignal(sig));
		break;
	}

	/* 6. Drain and stop. */
	serve_http_drain(http, 60000);
	serve_http_stop(http);
	http = NULL;
	serve_pool_close(pool);
	pool = NULL;
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
