/* sandbox-serve's instances: sbx_exec's (each a VM with its snapshot), each checked out to the
 * thread of the one request it serves; a bounded queue of requests waiting for one, served in
 * order; a watchdog for runs past their deadline; and the reload that swaps in a new set of
 * instances without dropping what is queued. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "exec.h"
#include "serve.h"

struct instance {
	int id;
	unsigned gen;
	struct serve_pool *pool;
	struct sbx_cli cli; /* a copy of the command line's, its own policy: its own --tmp */
	struct sbx_exec *x; /* NULL after the engine failed and a rebuild did too */
	int in_fd, out_fd, err_fd, log_fd;
	FILE *log, *audit;
	uint64_t deadline_ns; /* the watchdog's, 0 when idle (under the pool's mutex) */
	int killed;
	int busy; /* checked out to a request (under the pool's mutex) */
	struct instance *next_idle;
};

struct serve_pool {
	struct serve_pool_opts o;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct instance *idle;	       /* of the serving set, free */
	uint64_t next_ticket, serving; /* waiters are served in the order they came */
	unsigned depth, busy;	       /* requests waiting; instances checked out */
	unsigned old_busy;	       /* of those, from the set a reload is draining */
	unsigned gen;
	struct instance **cur, **old; /* the serving set, and the one a reload is draining */
	unsigned ncur, nold;
	int next_id;
	int stopping;
	pthread_t watchdog;
	int watchdog_stop, watchdog_started;
};

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static double us_since(uint64_t t0)
{
	return (double)(now_ns() - t0) / 1e3;
}

/* Lines of text a guest or the engine wrote, to the server log with a prefix, escaped, at most
 * `cap` bytes. Only lines starting with `only` (if given). */
static void log_lines(struct serve_pool *p, const char *prefix, const char *s, size_t n,
		      const char *only, size_t cap)
{
	size_t shown = 0;
	while (n > 0 && shown < cap) {
		const char *nl = memchr(s, '\n', n);
		size_t ll = nl ? (size_t)(nl - s) : n;
		if (!only || (ll >= strlen(only) && memcmp(s, only, strlen(only)) == 0)) {
			char line[512];
			size_t o = 0;
			for (size_t i = 0; i < ll && o + 5 < sizeof(line); i++) {
				unsigned char c = (unsigned char)s[i];
				if (c >= 0x20 && c < 0x7f && c != '\\')
					line[o++] = (char)c;
				else
					o += (size_t)snprintf(line + o, sizeof(line) - o, "\\x%02x",
							      c);
			}
			line[o] = 0;
			serve_logf(p->o.log, "%s%s", prefix, line);
			shown += ll;
		}
		if (!nl)
			break;
		n -= ll + 1;
		s = nl + 1;
	}
}

/* The bytes in a memfd (at most cap), malloc'ed; *len set. */
static int slurp(int fd, size_t cap, char **out, size_t *len)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	size_t n = (size_t)st.st_size < cap ? (size_t)st.st_size : cap;
	char *b = malloc(n + 1);
	if (!b)
		return -ENOMEM;
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, b + got, n - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	b[got] = 0;
	*out = b;
	*len = got;
	return 0;
}

static int reset_fd(int fd)
{
	if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0)
		return -errno;
	return 0;
}

static int write_all(int fd, const char *b, size_t n, off_t off)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, b, n, off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		b += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

/* What the engine wrote to the instance's log since the last look, shown or filtered. */
static void drain_log(struct instance *in, uint64_t req, int all)
{
	fflush(in->log);
	char *b;
	size_t n;
	if (slurp(in->log_fd, 1 << 20, &b, &n) < 0)
		return;
	char prefix[64];
	if (req)
		snprintf(prefix, sizeof(prefix), "req %llx: instance %d: ", (unsigned long long)req,
			 in->id);
	else
		snprintf(prefix, sizeof(prefix), "instance %d: ", in->id);
	if (all) {
		log_lines(in->pool, prefix, b, n, NULL, 64 << 10);
	} else {
		log_lines(in->pool, prefix, b, n, "SUMMARY:", 4096);
		log_lines(in->pool, prefix, b, n, "DEDUP_TOKEN:", 4096);
	}
	free(b);
	fseeko(in->log, 0, SEEK_SET);
	if (ftruncate(in->log_fd, 0) < 0)
		serve_logf(in->pool->o.log, "instance %d: ftruncate of its log: %s", in->id,
			   strerror(errno));
}

static void inst_close(struct instance *in)
{
	if (!in)
		return;
	if (in->x)
		sbx_exec_close(in->x);
	if (in->log)
		fclose(in->log); /* closes log_fd */
	else if (in->log_fd >= 0)
		close(in->log_fd);
	if (in->audit)
		fclose(in->audit);
	if (in->in_fd >= 0)
		close(in->in_fd);
	if (in->out_fd >= 0)
		close(in->out_fd);
	if (in->err_fd >= 0)
		close(in->err_fd);
	policy_free(&in->cli.pol);
	free(in);
}

/* One run of the instance's own before any request, a GET of / with no body, as a request's
 * environment would be (the policy's variables, then the request's), whose output is dropped:
 * the syscall sites it patches are patched before every later run, so that no request traps at
 * them (docs/exec.md, "Syscall sites"). Only this run's: a request's would let it choose what
 * every later request runs, and show the next which sites it reached. However the handler
 * ends it, the instance serves; a sandbox the run broke is closed (-EIO), as a failed open. */
static int inst_first_run(struct serve_pool *p, struct instance *in, char *err, size_t errlen)
{
	static const char *const req[][2] = {{"GATEWAY_INTERFACE", "CGI/1.1"},
					     {"SERVER_SOFTWARE", "sandbox-serve"},
					     {"SERVER_PROTOCOL", "HTTP/1.1"},
					     {"REQUEST_METHOD", "GET"},
					     {"REQUEST_URI", "/"},
					     {"SCRIPT_NAME", ""},
					     {"PATH_INFO", "/"},
					     {"QUERY_STRING", ""},
					     {"SERVER_NAME", "localhost"},
					     {"SERVER_PORT", "80"}};
	struct serve_env env;
	serve_env_init(&env);
	int r = serve_env_set_all(&env, in->cli.pol.env);
	for (size_t k = 0; k < sizeof(req) / sizeof(req[0]) && r == 0; k++)
		r = serve_env_set(&env, req[k][0], req[k][1]);
	if (r == 0)
		r = reset_fd(in->in_fd);
	/* Warm mode: the request comes framed on stdin, as copy_in writes it. */
	char *f = NULL;
	if (r == 0 && p->o.warm) {
		size_t fl = serve_env_frame_len(&env);
		if (!(f = malloc(fl)))
			r = -ENOMEM;
		else
			r = write_all(in->in_fd, f, serve_env_frame(&env, f, fl), 0);
		free(f);
	}
	struct sbx_exec_run run = {
	    .envp = p->o.warm ? NULL : env.v,
	    .stdin_fd = in->cli.pol.no_stdin ? -1 : in->in_fd,
	    .stdout_fd = in->out_fd,
	    .stderr_fd = in->err_fd,
	    .learn_sites = 1,
	};
	if (r < 0)
		snprintf(err, errlen, "the first run's request: %s", strerror(-r));
	else if ((r = sbx_exec_one(in->x, &run, err, errlen)) == 0 && p->o.cli->cfg.verbose)
		serve_logf(p->o.log, "instance %d: its first run (GET /, output dropped): %s",
			   in->id, run.parked ? "ended" : run.res.reason);
	serve_env_free(&env);
	drain_log(in, 0, p->o.cli->cfg.verbose);
	if (r == 0 && (r = reset_fd(in->out_fd)) == 0)
		r = reset_fd(in->err_fd);
	if (r < 0) {
		sbx_exec_close(in->x);
		in->x = NULL;
	}
	return r;
}

/* The engine for an instance: its policy from the command line, memfds behind the guest's
 * stdio and the engine's messages, the snapshot at the point. */
static int inst_exec_open(struct serve_pool *p, struct instance *in, char *err, size_t errlen)
{
	/* opts.fast stays off: the handler is not trusted, each run ends in an exit and the
	 * reset puts back every register. Nor poll_run: with wrk on the same two cores, request
	 * threads spinning on their rings took warm hello from 4,031 to 1,690 req/s (one doorbell
	 * exit per I/O call is cheaper than a spinning thread here). */
	struct sbx_exec_opts xo = {
	    .point = p->o.warm ? SBX_POINT_STDIN : SBX_POINT_ENTRY,
	    .timeout_ms = p->o.timeout_ms,
	};
	reset_fd(in->in_fd);
	reset_fd(in->out_fd);
	reset_fd(in->err_fd);
	int r = sbx_exec_open(&in->cli.cfg, &xo, &in->x, err, errlen);
	drain_log(in, 0, 1);
	if (r < 0) {
		in->x = NULL;
		return r;
	}
	/* What the handler printed while it initialised (warm mode) is not a response. */
	char *b;
	size_t n;
	if (slurp(in->err_fd, 8192, &b, &n) == 0) {
		char prefix[48];
		snprintf(prefix, sizeof(prefix), "instance %d: init: guest: ", in->id);
		log_lines(p, prefix, b, n, NULL, 8192);
		free(b);
	}
	return inst_first_run(p, in, err, errlen);
}

static int inst_open(struct serve_pool *p, struct instance **out, char *err, size_t errlen)
{
	struct instance *in = calloc(1, sizeof(*in));
	if (!in)
		return -ENOMEM;
	in->pool = p;
	in->in_fd = in->out_fd = in->err_fd = in->log_fd = -1;
	/* A copy, not a parse: the instances share no parser state and see the host objects the
	 * command line named when it was parsed, however the paths change after. */
	int r = sbx_cli_copy(&in->cli, p->o.cli, err, errlen);
	if (r < 0)
		goto fail;
	struct sbx_config *cfg = &in->cli.cfg;
	struct policy *pol = &in->cli.pol;
	if ((r = policy_make_tmp(pol, err, errlen)) < 0)
		goto fail;
	pol->lim.wall_ms = 0; /* --timeout is per request: the engine's timeout_ms */
	if (!pol->lim.max_output)
		pol->lim.max_output = 16u << 20;
	/* --max-output is the response's: the handler's log lines on stderr do not eat into it
	 * (they have a budget of the same size of their own, of which 4 KiB reach the log). */
	in->cli.cfg.output_stdout_only = 1;
	if ((r = sbx_cli_open_audit(&in->cli, &in->audit, err, errlen)) < 0)
		goto fail;
	in->in_fd = memfd_create("serve-stdin", MFD_CLOEXEC);
	in->out_fd = memfd_create("serve-stdout", MFD_CLOEXEC);
	in->err_fd = memfd_create("serve-stderr", MFD_CLOEXEC);
	in->log_fd = memfd_create("serve-log", MFD_CLOEXEC);
	if (in->in_fd < 0 || in->out_fd < 0 || in->err_fd < 0 || in->log_fd < 0 ||
	    !(in->log = fdopen(in->log_fd, "w+"))) {
		r = -errno;
		snprintf(err, errlen, "memfds for an instance: %s", strerror(errno));
		goto fail;
	}
	cfg->prog = p->o.argv[0];
	cfg->argv = p->o.argv;
	cfg->name = p->o.argv[0];
	/* A polling thread per instance competes with the instances for the cores (2 cores, 2
	 * warm hello instances, wrk -c4: 2600-3000 req/s polling, 4480-4590 without): off
	 * unless asked for. */
	if (cfg->poll == SBX_POLL_AUTO)
		cfg->poll = SBX_POLL_OFF;
	cfg->stdin_fd = pol->no_stdin ? -1 : in->in_fd;
	cfg->stdout_fd = in->out_fd;
	cfg->stderr_fd = in->err_fd;
	cfg->log = in->log;
	cfg->audit = in->audit;
	pthread_mutex_lock(&p->mu);
	in->id = p->next_id++;
	pthread_mutex_unlock(&p->mu);
	if ((r = inst_exec_open(p, in, err, errlen)) < 0)
		goto fail;
	*out = in;
	return 0;
fail:
	inst_close(in);
	return r < 0 ? r : -EINVAL;
}

/* Copy in: the body (CGI), or the framed request then the body (warm); the output memfds
 * emptied. */
static int copy_in(struct instance *in, struct serve_job *j)
{
	uint64_t t0 = now_ns();
	int r = reset_fd(in->in_fd);
	size_t off = 0;
	if (r == 0 && in->pool->o.warm) {
		size_t fl = serve_env_frame_len(j->env);
		char *f = malloc(fl);
		if (!f)
			r = -ENOMEM;
		else {
			off = serve_env_frame(j->env, f, fl);
			r = write_all(in->in_fd, f, off, 0);
			free(f);
		}
	}
	if (r == 0 && j->body_len)
		r = write_all(in->in_fd, j->body, j->body_len, (off_t)off);
	if (r == 0)
		r = reset_fd(in->out_fd);
	if (r == 0)
		r = reset_fd(in->err_fd);
	j->cost.in_bytes = off + j->body_len;
	j->cost.copy_in_us = us_since(t0);
	return r;
}

/* The run, under the watchdog's deadline. Returns sbx_exec_one's result; *killed when the
 * watchdog ended it. */
static int run_one(struct instance *in, struct serve_job *j, struct sbx_exec_run *run, int *killed,
		   char *err, size_t errlen)
{
	struct serve_pool *p = in->pool;
	uint64_t t1 = now_ns();
	pthread_mutex_lock(&p->mu);
	in->deadline_ns = p->o.timeout_ms ? t1 + (p->o.timeout_ms + 1000) * 1000000ull : 0;
	in->killed = 0;
	pthread_mutex_unlock(&p->mu);
	err[0] = 0;
	int r = sbx_exec_one(in->x, run, err, errlen);
	pthread_mutex_lock(&p->mu);
	in->deadline_ns = 0;
	*killed = in->killed;
	pthread_mutex_unlock(&p->mu);
	j->cost.run_us = us_since(t1);
	j->cost.reset_pages = run->reset_pages;
	j->cost.reset_us = run->reset_us;
	j->cost.exits = run->exits;
	j->cost.slow = run->slow;
	return r;
}

/* Copy out: the response (at most --max-output) and 4 KiB of the handler's stderr, to the
 * log. */
static void copy_out(struct instance *in, struct serve_job *j)
{
	uint64_t t2 = now_ns();
	size_t cap = (size_t)in->cli.pol.lim.max_output;
	if (slurp(in->out_fd, cap, &j->out, &j->out_len) < 0) {
		j->out = NULL;
		j->out_len = 0;
	}
	j->cost.out_bytes = j->out_len;
	j->cost.copy_out_us = us_since(t2);
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "req %llx: guest: ", (unsigned long long)j->id);
	char *eb;
	size_t en;
	if (slurp(in->err_fd, 4096, &eb, &en) == 0) {
		log_lines(in->pool, prefix, eb, en, NULL, 4096);
		free(eb);
	}
}

/* What the run's end answers (0: the handler's output), said in the log and counted. */
static int judge(struct instance *in, uint64_t req, const struct sbx_result *res, int killed)
{
	struct serve_pool *p = in->pool;
	struct serve_metrics *m = p->o.metrics;
	unsigned long long id = (unsigned long long)req;
	int timeout = res->status == SBX_STATUS_LIMIT_TIME || res->status == SBX_STATUS_LIMIT_CPU;
	switch (res->end) {
	case SBX_END_EXIT:
		drain_log(in, req, p->o.cli->cfg.verbose);
		if (res->status != 0)
			serve_logf(p->o.log, "req %llx: the handler exited with status %d", id,
				   res->status);
		return 0;
	case SBX_END_LIMIT:
		drain_log(in, req, p->o.cli->cfg.verbose);
		serve_logf(p->o.log, "req %llx: %s%s%s", id, timeout ? "timeout: " : "",
			   res->reason, timeout && killed ? " (killed by the watchdog)" : "");
		serve_metrics_count(m, timeout ? &m->timeouts : &m->bad_output);
		return timeout ? 504 : 502;
	case SBX_END_FAULT:
	case SBX_END_SIGNAL:
		serve_logf(p->o.log, "req %llx: the handler crashed: %s", id, res->reason);
		drain_log(in, req, p->o.cli->cfg.verbose);
		serve_metrics_count(m, &m->crashes);
		return 502;
	default:
		drain_log(in, req, 1);
		serve_logf(p->o.log, "req %llx: the run ended: %s", id, res->reason);
		serve_metrics_count(m, &m->crashes);
		return 502;
	}
}

/* The engine failed (not the handler): what it said, and a new engine for the next request. */
static void rebuild(struct instance *in, uint64_t req, int r, const char *why)
{
	struct serve_pool *p = in->pool;
	char err[512];
	drain_log(in, req, 1);
	serve_logf(p->o.log, "req %llx: instance %d: the sandbox failed: %s; rebuilding it",
		   (unsigned long long)req, in->id, why[0] ? why : strerror(-r));
	serve_metrics_count(p->o.metrics, &p->o.metrics->engine_errors);
	sbx_exec_close(in->x);
	in->x = NULL;
	if (inst_exec_open(p, in, err, sizeof(err)) < 0)
		serve_logf(p->o.log, "instance %d: cannot be rebuilt: %s", in->id, err);
}

/* One request on one instance. */
static void run_job(struct instance *in, struct serve_job *j)
{
	struct serve_pool *p = in->pool;
	char err[512];
	j->instance = in->id;
	j->http = 502;
	if (!in->x && inst_exec_open(p, in, err, sizeof(err)) < 0) {
		/* the engine failed before, and again now */
		serve_logf(p->o.log, "req %llx: instance %d: cannot be rebuilt: %s",
			   (unsigned long long)j->id, in->id, err);
		return;
	}
	int r = copy_in(in, j);
	if (r < 0) {
		serve_logf(p->o.log, "req %llx: the guest's stdin/stdout memfds: %s",
			   (unsigned long long)j->id, strerror(-r));
		return;
	}
	struct sbx_exec_run run = {
	    .envp = p->o.warm ? NULL : j->envp,
	    .stdin_fd = in->cli.pol.no_stdin ? -1 : in->in_fd,
	    .stdout_fd = in->out_fd,
	    .stderr_fd = in->err_fd,
	};
	int killed;
	r = run_one(in, j, &run, &killed, err, sizeof(err));
	copy_out(in, j);
	if (r < 0) {
		rebuild(in, j->id, r, err);
		return;
	}
	serve_metrics_run(p->o.metrics, &j->cost);
	j->http = judge(in, j->id, &run.res, killed);
}

static void watch_set(struct instance **set, unsigned n, uint64_t now)
{
	for (unsigned i = 0; i < n; i++) {
		struct instance *in = set[i];
		if (in->deadline_ns && now > in->deadline_ns && !in->killed && in->x) {
			in->killed = 1;
			sbx_exec_kill(in->x, SBX_END_LIMIT, SBX_STATUS_LIMIT_TIME,
				      "the request's --timeout");
		}
	}
}

/* Ends runs the engine's own timeout did not end a second after their deadline. */
static void *watchdog(void *arg)
{
	struct serve_pool *p = arg;
	pthread_mutex_lock(&p->mu);
	while (!p->watchdog_stop) {
		pthread_mutex_unlock(&p->mu);
		struct timespec ts = {0, 20 * 1000000};
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&p->mu);
		uint64_t now = now_ns();
		watch_set(p->cur, p->ncur, now);
		watch_set(p->old, p->nold, now);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* A set of instances, opened one after the other. */
static int open_set(struct serve_pool *p, struct instance ***out, char *err, size_t errlen)
{
	struct instance **set = calloc(p->o.instances, sizeof(*set));
	if (!set)
		return -ENOMEM;
	for (unsigned i = 0; i < p->o.instances; i++) {
		int r = inst_open(p, &set[i], err, errlen);
		if (r < 0) {
			for (unsigned k = 0; k < i; k++)
				inst_close(set[k]);
			free(set);
			return r;
		}
		if (p->o.cli->cfg.verbose) {
			struct sbx_exec_info info;
			sbx_exec_info(set[i]->x, &info);
			serve_logf(
			    p->o.log, "instance %d: ready in %.3f ms, snapshot of %llu pages",
			    set[i]->id, info.open_ms, (unsigned long long)info.snapshot_pages);
		}
	}
	*out = set;
	return 0;
}

/* Makes a set the serving one, as generation gen, all of it idle (pool's mutex held). */
static void serve_set(struct serve_pool *p, struct instance **set, unsigned gen)
{
	p->idle = NULL;
	for (unsigned i = p->o.instances; i-- > 0;) {
		set[i]->gen = gen;
		set[i]->next_idle = p->idle;
		p->idle = set[i];
	}
}

static void close_set(struct instance **set, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		inst_close(set[i]);
	free(set);
}

int serve_pool_open(const struct serve_pool_opts *o, struct serve_pool **out, char *err,
		    size_t errlen)
{
	struct serve_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->o = *o;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	int r = open_set(p, &p->cur, err, errlen);
	if (r < 0)
		goto fail;
	p->ncur = o->instances;
	pthread_mutex_lock(&p->mu);
	serve_set(p, p->cur, p->gen);
	pthread_mutex_unlock(&p->mu);
	if ((r = -pthread_create(&p->watchdog, NULL, watchdog, p)) < 0)
		snprintf(err, errlen, "pthread_create: %s", strerror(-r));
	p->watchdog_started = r == 0;
	if (r < 0) {
		serve_pool_close(p);
		return r;
	}
	*out = p;
	return 0;
fail:
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
	return r;
}

/* The request runs on the caller's thread, on an instance checked out of the pool: no hand-off
 * to another thread and back. */
int serve_pool_run(struct serve_pool *p, struct serve_job *j)
{
	pthread_mutex_lock(&p->mu);
	if (p->stopping) {
		pthread_mutex_unlock(&p->mu);
		return -ESHUTDOWN;
	}
	if (!p->idle || p->depth) {
		if (p->depth >= p->o.queue) {
			pthread_mutex_unlock(&p->mu);
			return -EAGAIN;
		}
		uint64_t ticket = p->next_ticket++;
		p->depth++;
		while (!p->idle || ticket != p->serving)
			pthread_cond_wait(&p->cv, &p->mu);
		p->depth--;
		p->serving++;
	}
	struct instance *in = p->idle;
	p->idle = in->next_idle;
	in->busy = 1;
	p->busy++;
	if (p->idle && p->depth)
		pthread_cond_broadcast(&p->cv); /* the next in line may go too */
	pthread_mutex_unlock(&p->mu);

	run_job(in, j);

	pthread_mutex_lock(&p->mu);
	in->busy = 0;
	p->busy--;
	if (in->gen == p->gen) {
		in->next_idle = p->idle;
		p->idle = in;
	} else {
		p->old_busy--; /* retired by a reload: closed by it */
	}
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

int serve_pool_reload(struct serve_pool *p, char *err, size_t errlen)
{
	struct instance **set;
	int r = open_set(p, &set, err, errlen);
	if (r < 0)
		return r;
	pthread_mutex_lock(&p->mu);
	p->gen++;
	p->old = p->cur;
	p->nold = p->ncur;
	p->old_busy = 0;
	for (unsigned i = 0; i < p->nold; i++)
		p->old_busy += p->old[i]->busy != 0;
	p->cur = set;
	p->ncur = p->o.instances;
	serve_set(p, set, p->gen);
	pthread_cond_broadcast(&p->cv);
	/* The old instances finish the requests they have. */
	while (p->old_busy)
		pthread_cond_wait(&p->cv, &p->mu);
	struct instance **old = p->old;
	unsigned nold = p->nold;
	p->old = NULL;
	p->nold = 0;
	pthread_mutex_unlock(&p->mu);
	close_set(old, nold);
	serve_metrics_count(p->o.metrics, &p->o.metrics->reloads);
	return 0;
}

void serve_pool_gauges(struct serve_pool *p, struct serve_gauges *g)
{
	pthread_mutex_lock(&p->mu);
	g->instances = p->ncur;
	g->busy = p->busy;
	g->queue_depth = p->depth;
	g->queue_cap = p->o.queue;
	pthread_mutex_unlock(&p->mu);
}

void serve_pool_close(struct serve_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = 1; /* new requests are refused; the queued and running ones finish */
	while (p->busy || p->depth)
		pthread_cond_wait(&p->cv, &p->mu);
	p->watchdog_stop = 1;
	pthread_mutex_unlock(&p->mu);
	if (p->watchdog_started)
		pthread_join(p->watchdog, NULL);
	close_set(p->cur, p->ncur);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}
