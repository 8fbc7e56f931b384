/* sandbox-serve's parts (docs/serve.md): the CGI environment and response parser
 * (serve_cgi.c), metrics (serve_metrics.c), the log (serve_log.c), the instance pool and its
 * queue (serve_pool.c), the HTTP front (serve_http.c with serve_conn.c and serve_respond.c,
 * serve_http.h), and main (serve_main.c). Each calls only the ones listed before it. */
#ifndef SBX_SERVE_H
#define SBX_SERVE_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- serve_cgi.c: CGI/1.1 (RFC 3875) ---- */

/* A request's environment: "NAME=value" strings, NULL-terminated. */
struct serve_env {
	char **v;
	size_t n, cap;
	size_t bytes; /* total of the strings, NULs included */
};
#define SERVE_ENV_MAX_BYTES (256u << 10) /* more environment than this is refused */

void serve_env_init(struct serve_env *e);
void serve_env_free(struct serve_env *e);
/* Adds NAME=value (replacing an earlier NAME). -E2BIG past SERVE_ENV_MAX_BYTES, -ENOMEM. */
int serve_env_set(struct serve_env *e, const char *name, const char *value);
/* Each "NAME=value" of vars (NULL-terminated; others skipped), as serve_env_set. */
int serve_env_set_all(struct serve_env *e, char *const *vars);
/* An HTTP header as HTTP_NAME (uppercase, '-' to '_'); a repeated header is joined with ", ".
 * Content-Length and Content-Type (CONTENT_* already) and Proxy (httpoxy) are skipped, and so
 * is a name with a character outside [A-Za-z0-9-]: returns 1 for a skipped header. */
int serve_env_header(struct serve_env *e, const char *name, const char *value);
/* The value of NAME, or NULL. */
const char *serve_env_get(const struct serve_env *e, const char *name);
/* Warm mode's framing of the request metadata (docs/serve.md): every variable as "NAME=value\n"
 * with CR, LF and NUL in values replaced by a space, then an empty line. Returns the bytes
 * written into buf (needs serve_env_frame_len), never more than len. */
size_t serve_env_frame_len(const struct serve_env *e);
size_t serve_env_frame(const struct serve_env *e, char *buf, size_t len);

/* A CGI response's header block. Names and values point into the parsed buffer. */
#define SERVE_CGI_MAX_HEADERS 64
#define SERVE_CGI_MAX_HEADER_BYTES (64u << 10) /* the header block must end before this */
struct serve_hdr {
	const char *name, *value;
	size_t name_len, value_len;
};
struct serve_cgi_resp {
	int status;	 /* from Status:, else 302 with a Location:, else 200 */
	size_t body_off; /* the body starts here in the buffer */
	struct serve_hdr hdr[SERVE_CGI_MAX_HEADERS]; /* to pass on: not Status, not framing */
	size_t nhdr;
	char why[160]; /* what is wrong, when the parse fails */
};
/* Parses a CGI program's output (RFC 3875 6.2-6.3): header lines ending in LF or CRLF up to
 * an empty line, at least one of Content-Type, Location or Status, names made of token
 * characters, values without control characters other than tab. Status is "NNN reason" with
 * NNN in 100..599. Content-Length, Transfer-Encoding and Connection are dropped (the server
 * frames the body itself). Returns 0, or -EBADMSG with r->why set. */
int serve_cgi_parse(const char *buf, size_t len, struct serve_cgi_resp *r);

/* ---- serve_metrics.c ---- */
#define SERVE_LAT_BUCKETS 14
#define SERVE_PAGE_BUCKETS 10
struct serve_metrics {
	pthread_mutex_t mu;
	uint64_t by_status[600];
	uint64_t lat_bucket[SERVE_LAT_BUCKETS + 1]; /* last: +Inf */
	double lat_sum_s;
	uint64_t lat_count;
	uint64_t runs;		      /* sbx_exec_one calls */
	uint64_t resets, reset_pages; /* resets before a run, pages put back */
	uint64_t page_bucket[SERVE_PAGE_BUCKETS + 1];
	double reset_us, run_us, copy_in_us, copy_out_us;
	uint64_t exits, slow_resets;
	uint64_t crashes, timeouts, bad_output, rejected, engine_errors;
	uint64_t slow_heads; /* connections closed by --header-timeout */
	uint64_t copy_in_bytes, copy_out_bytes;
	uint64_t reloads;
};
/* One engine run's costs (what the pool measured). */
struct serve_run_cost {
	uint64_t reset_pages, exits;
	int slow;
	double reset_us, run_us, copy_in_us, copy_out_us;
	uint64_t in_bytes, out_bytes;
};
void serve_metrics_init(struct serve_metrics *m);
void serve_metrics_destroy(struct serve_metrics *m);
void serve_metrics_request(struct serve_metrics *m, int status, double seconds);
void serve_metrics_run(struct serve_metrics *m, const struct serve_run_cost *c);
void serve_metrics_count(struct serve_metrics *m, uint64_t *counter);
/* The Prometheus text exposition, with the pool's gauges. Returns 0 or -errno. */
struct serve_gauges {
	unsigned instances, busy, queue_depth, queue_cap;
};
int serve_metrics_write(struct serve_metrics *m, const struct serve_gauges *g, FILE *out);

/* ---- serve_log.c ---- */
/* "sandbox-serve: " and the message, one line, flushed. */
void serve_logf(FILE *log, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void serve_vlogf(FILE *log, const char *fmt, va_list ap);

/* ---- serve_pool.c ---- */
struct sbx_cli;
struct serve_pool;
struct serve_job {
	/* IN */
	uint64_t id;
	char *const *envp;	     /* the request's environment (NULL-terminated) */
	const struct serve_env *env; /* the same, for warm mode's framing */
	const char *body;
	size_t body_len;
	/* OUT */
	int http;  /* 0: use the output; else the status to answer with (502, 504) */
	char *out; /* the program's stdout (malloc'ed), out_len bytes */
	size_t out_len;
	int instance; /* which instance ran it */
	struct serve_run_cost cost;
};
struct serve_pool_opts {
	const struct sbx_cli *cli; /* the command line parsed: each instance runs with a copy */
	char *const *argv;	   /* the handler and its arguments */
	unsigned instances;	   /* VMs */
	unsigned queue;		   /* requests waiting at most */
	int warm;		   /* SBX_POINT_STDIN rather than SBX_POINT_ENTRY */
	uint64_t timeout_ms;	   /* per request */
	FILE *log;		   /* server log */
	struct serve_metrics *metrics;
};
int serve_pool_open(const struct serve_pool_opts *o, struct serve_pool **out, char *err,
		    size_t errlen);
/* Runs a job on the calling thread once an instance is free (waiting in line for one).
 * -EAGAIN when the line is full (the caller answers 503), -ESHUTDOWN once the pool is
 * stopping. */
int serve_pool_run(struct serve_pool *p, struct serve_job *j);
/* New instances from the handler binary as it is now; swapped in, the old ones drained.
 * Returns 0 or -errno (the old instances then stay). */
int serve_pool_reload(struct serve_pool *p, char *err, size_t errlen);
void serve_pool_gauges(struct serve_pool *p, struct serve_gauges *g);
/* Refuses new jobs, lets the queued and running ones finish, closes the instances. */
void serve_pool_close(struct serve_pool *p);

/* ---- serve_http.c ---- */
struct serve_http;
struct serve_http_opts {
	const char *listen; /* HOST:PORT */
	const char *admin;  /* HOST:PORT or NULL */
	uint64_t max_body;
	uint64_t body_budget; /* all connections' buffered bodies together */
	FILE *access_log;
	FILE *log;
	struct serve_pool *pool;
	struct serve_metrics *metrics;
	char *const *base_env; /* the policy's environment, under every request's */
	int warm;
	unsigned max_connections;   /* at once, all clients together */
	unsigned max_per_client;    /* at once, from one client address */
	uint64_t header_timeout_ms; /* for a whole request head, from the connection's start
				       or the end of the last response on it */
};
int serve_http_start(const struct serve_http_opts *o, struct serve_http **out, char *err,
		     size_t errlen);
/* The port it listens on (the one picked, for port 0), and the admin's. */
unsigned serve_http_port(const struct serve_http *h);
unsigned serve_http_admin_port(const struct serve_http *h);
/* Stops accepting, waits for the requests in flight (at most wait_ms), stops. */
void serve_http_drain(struct serve_http *h, unsigned wait_ms);
void serve_http_stop(struct serve_http *h);

#endif
