/* sandbox-serve's HTTP/1.1 front on libmicrohttpd: one thread per connection, which collects
 * the body and runs the request on the pool on its own thread (serve_respond.c); a request's
 * life and the access log; the admin address's /-/metrics; the daemons' start and stop. The
 * connections' head deadline is serve_conn.c's (serve_http.h). */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "serve_http.h"

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	(void)c;
	struct serve_http *h = cls;
	struct req *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->id = atomic_fetch_add(&h->next_id, 1) + 1;
	clock_gettime(CLOCK_REALTIME, &r->t0);
	r->uri = strdup(uri ? uri : "");
	r->instance = -1;
	atomic_fetch_add(&h->active, 1);
	return r;
}

/* The common log format's quoting of what the client sent. */
static void clf_escape(FILE *o, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
			fprintf(o, "\\x%02x", c);
		else
			fputc(c, o);
	}
}

/* One line per request: common log format, then duration, instance and request id. */
static void access_log(struct serve_http *h, struct MHD_Connection *c, const struct req *r,
		       double secs)
{
	const struct conn *k = serve_conn_of(c);
	struct tm tm;
	char when[64];
	gmtime_r(&r->t0.tv_sec, &tm);
	strftime(when, sizeof(when), "%d/%b/%Y:%H:%M:%S +0000", &tm);
	FILE *o = h->o.access_log;
	flockfile(o);
	fprintf(o, "%s - - [%s] \"", k ? k->addr : "-", when);
	clf_escape(o, r->method);
	fputc(' ', o);
	clf_escape(o, r->uri);
	fputc(' ', o);
	clf_escape(o, r->version);
	fprintf(o, "\" %d %llu %.0fus instance=%d id=%llx\n", r->status,
		(unsigned long long)r->bytes, secs * 1e6, r->instance, (unsigned long long)r->id);
	funlockfile(o);
	fflush(o);
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
		    enum MHD_RequestTerminationCode toe)
{
	(void)toe;
	struct serve_http *h = cls;
	struct req *r = *con_cls;
	serve_head_due(h, serve_conn_of(c)); /* the next request on a kept-alive connection */
	if (!r)
		return;
	struct timespec t1;
	clock_gettime(CLOCK_REALTIME, &t1);
	double secs =
	    (double)(t1.tv_sec - r->t0.tv_sec) + (double)(t1.tv_nsec - r->t0.tv_nsec) / 1e9;
	if (r->status)
		serve_metrics_request(h->o.metrics, r->status, secs);
	if (r->status && h->o.access_log)
		access_log(h, c, r, secs);
	free(r->uri);
	atomic_fetch_sub(&h->body_bytes, r->cap);
	free(r->body);
	free(r);
	*con_cls = NULL;
	atomic_fetch_sub(&h->active, 1);
}

/* Room for cap bytes of body, within the budget for all connections' bodies together (so
 * that many slow uploads cannot take the host's memory). */
static int grow(struct serve_http *h, struct req *r, size_t cap)
{
	size_t more = cap - r->cap;
	if (atomic_fetch_add(&h->body_bytes, more) + more > h->o.body_budget) {
		atomic_fetch_sub(&h->body_bytes, more);
		serve_logf(h->o.log,
			   "req %llx: request bodies in flight over their budget of %llu bytes",
			   (unsigned long long)r->id, (unsigned long long)h->o.body_budget);
		return -ENOMEM;
	}
	char *b = realloc(r->body, cap);
	if (!b) {
		atomic_fetch_sub(&h->body_bytes, more);
		return -ENOMEM;
	}
	r->body = b;
	r->cap = cap;
	return 0;
}

/* The headers that frame a request's body. */
struct framing {
	const char *length; /* the first Content-Length */
	int lengths_differ; /* a second Content-Length with another value */
	int transfer_encoding;
};

static enum MHD_Result each_framing(void *cls, enum MHD_ValueKind kind, const char *key,
				    const char *value)
{
	(void)kind;
	struct framing *f = cls;
	if (!strcasecmp(key, "Transfer-Encoding")) {
		f->transfer_encoding = 1;
	} else if (!strcasecmp(key, "Content-Length")) {
		value = value ? value : "";
		if (f->length && strcmp(f->length, value))
			f->lengths_differ = 1;
		f->length = value;
	}
	return MHD_YES;
}

/* RFC 9112 6.3: a body whose length two headers disagree on is where request smuggling starts
 * (libmicrohttpd would go by one of them, a proxy in front perhaps by the other). Such a
 * request is answered 400 and its connection closed, never read on. NULL when the framing is
 * unambiguous. */
static const char *framing_error(struct MHD_Connection *c)
{
	struct framing f = {0};
	MHD_get_connection_values(c, MHD_HEADER_KIND, each_framing, &f);
	if (f.lengths_differ)
		return "two different Content-Length headers";
	if (f.length && f.transfer_encoding)
		return "both Content-Length and Transfer-Encoding";
	return NULL;
}

/* The request head is in: an unambiguous body framing, a Content-Length within --max-body
 * and the budget. */
static enum MHD_Result request_head(struct serve_http *h, struct MHD_Connection *c, struct req *r)
{
	serve_head_done(h, c);
	const char *bad = framing_error(c);
	if (bad) {
		serve_logf(h->o.log, "req %llx: %s: 400, connection closed",
			   (unsigned long long)r->id, bad);
		return serve_reply(h, c, r, 400, "400 Bad Request: ambiguous body length\n",
				   "Connection", "close");
	}
	const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
	if (!cl)
		return MHD_YES;
	char *end;
	errno = 0;
	unsigned long long n = strtoull(cl, &end, 10);
	if (errno || *end || end == cl || n > h->o.max_body) {
		serve_logf(h->o.log, "req %llx: body of %s bytes over --max-body",
			   (unsigned long long)r->id, cl);
		return serve_reply(h, c, r, 413, "413 Content Too Large\n", NULL, NULL);
	}
	if (n && grow(h, r, (size_t)n) < 0)
		return serve_reply(h, c, r, 503,
				   "503 Service Unavailable: too many bodies in flight\n",
				   "Retry-After", "1");
	return MHD_YES;
}

/* n more bytes of the body. */
static enum MHD_Result request_body(struct serve_http *h, struct req *r, const char *data, size_t n)
{
	if (r->too_large || r->len + n > h->o.max_body) {
		/* A chunked body over the limit: read on a little, answer 413 at its end, or hang
		 * up on one that does not end. */
		r->too_large = 1;
		r->discarded += n;
		if (r->discarded <= (1u << 20) + h->o.max_body)
			return MHD_YES;
		serve_logf(h->o.log, "req %llx: chunked body over --max-body: connection closed",
			   (unsigned long long)r->id);
		return MHD_NO;
	}
	if (r->len + n > r->cap) {
		size_t cap = r->cap ? r->cap : 16384;
		while (cap < r->len + n)
			cap *= 2;
		if (cap > h->o.max_body)
			cap = h->o.max_body;
		if (grow(h, r, cap) < 0)
			return MHD_NO; /* a chunked body with the budget spent */
	}
	memcpy(r->body + r->len, data, n);
	r->len += n;
	return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct serve_http *h = cls;
	struct req *r = *con_cls;
	if (!r)
		return MHD_NO;
	if (!r->started) {
		r->started = 1;
		r->method = method;
		r->version = version;
		return request_head(h, c, r);
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		return request_body(h, r, upload_data, n);
	}
	if (r->too_large) {
		serve_logf(h->o.log, "req %llx: chunked body over --max-body",
			   (unsigned long long)r->id);
		return serve_reply(h, c, r, 413, "413 Content Too Large\n", NULL, NULL);
	}
	return serve_run_request(h, c, r, url);
}

static enum MHD_Result on_admin(void *cls, struct MHD_Connection *c, const char *url,
				const char *method, const char *version, const char *upload_data,
				size_t *upload_data_size, void **con_cls)
{
	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)con_cls;
	struct serve_http *h = cls;
	int ok = strcmp(url, "/-/metrics") == 0 && strcmp(method, "GET") == 0;
	char *text = NULL;
	size_t len = 0;
	if (ok) {
		FILE *o = open_memstream(&text, &len);
		struct serve_gauges g;
		serve_pool_gauges(h->o.pool, &g);
		if (!o)
			return MHD_NO;
		serve_metrics_write(h->o.metrics, &g, o);
		fclose(o);
	}
	struct MHD_Response *resp =
	    ok ? MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE)
	       : MHD_create_response_from_buffer(10, (void *)"not found\n", MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type",
				ok ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain");
	enum MHD_Result ret = MHD_queue_response(c, ok ? 200 : 404, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* libmicrohttpd says a line for every connection it refuses or drops: a client that floods
 * connections would flood the log too. At most MHD_LOG_PER_SECOND lines a second, and a count
 * of the rest. */
#define MHD_LOG_PER_SECOND 20
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct serve_http *h = cls;
	uint64_t sec = serve_mono_ns() / 1000000000ull;
	unsigned long long dropped = 0;
	pthread_mutex_lock(&h->conn_mu);
	if (sec != h->log_sec) {
		dropped = h->log_dropped;
		h->log_sec = sec;
		h->log_lines = h->log_dropped = 0;
	}
	int show = h->log_lines < MHD_LOG_PER_SECOND;
	h->log_lines += show;
	h->log_dropped += !show;
	pthread_mutex_unlock(&h->conn_mu);
	if (dropped)
		serve_logf(h->o.log, "http: %llu more messages left out (at most %d a second)",
			   dropped, MHD_LOG_PER_SECOND);
	if (!show)
		return;
	char line[512];
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = 0; /* its messages end in a newline; the log's lines do */
	serve_logf(h->o.log, "http: %s", line);
}

/* "HOST:PORT" ("[v6]:PORT") to an address. */
static int parse_addr(const char *spec, struct sockaddr_storage *ss, char *host, size_t hostlen,
		      char *err, size_t errlen)
{
	char buf[300];
	snprintf(buf, sizeof(buf), "%s", spec);
	char *colon = strrchr(buf, ':');
	if (!colon || colon == buf) {
		snprintf(err, errlen, "%s: expected HOST:PORT", spec);
		return -EINVAL;
	}
	*colon = 0;
	char *hs = buf;
	if (hs[0] == '[' && colon[-1] == ']') {
		hs++;
		colon[-1] = 0;
	}
	struct addrinfo hints = {.ai_flags = AI_NUMERICSERV | AI_PASSIVE,
				 .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai;
	int r = getaddrinfo(hs, colon + 1, &hints, &ai);
	if (r) {
		snprintf(err, errlen, "%s: %s", spec, gai_strerror(r));
		return -EINVAL;
	}
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	snprintf(host, hostlen, "%.*s", (int)(hostlen - 1), hs);
	return 0;
}

static unsigned bound_port(struct MHD_Daemon *d)
{
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	return di ? di->port : 0;
}

/* The front: a thread per connection, libmicrohttpd's limits, our callbacks. */
static int start_front(struct serve_http *h, const struct sockaddr_storage *ss, char *err,
		       size_t errlen)
{
	const struct serve_http_opts *o = &h->o;
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
			 MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG |
			 (ss->ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
	h->d = MHD_start_daemon(
	    flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
	    MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)ss, MHD_OPTION_URI_LOG_CALLBACK, on_uri,
	    h, MHD_OPTION_NOTIFY_COMPLETED, on_done, h, MHD_OPTION_NOTIFY_CONNECTION,
	    serve_conn_notify, h, MHD_OPTION_CONNECTION_LIMIT, o->max_connections,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, o->max_per_client, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)30, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64u << 10), MHD_OPTION_END);
	if (!h->d) {
		snprintf(err, errlen, "cannot listen on %s (in use, or not an address here)",
			 o->listen);
		return -EADDRINUSE;
	}
	h->port = bound_port(h->d);
	return 0;
}

/* The admin address: GET /-/metrics, one polling thread. */
static int start_admin(struct serve_http *h, const struct sockaddr_storage *as, char *err,
		       size_t errlen)
{
	h->admin =
	    MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
				 (as->ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
			     0, NULL, NULL, on_admin, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
			     MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)as, MHD_OPTION_END);
	if (!h->admin) {
		snprintf(err, errlen, "--admin: cannot listen on %s", h->o.admin);
		return -EADDRINUSE;
	}
	h->admin_port = bound_port(h->admin);
	return 0;
}

int serve_http_start(const struct serve_http_opts *o, struct serve_http **out, char *err,
		     size_t errlen)
{
	struct serve_http *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->o = *o;
	pthread_mutex_init(&h->conn_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->conn_cv, &ca);
	pthread_condattr_destroy(&ca);
	struct sockaddr_storage ss, as;
	char ahost[256];
	int r = parse_addr(o->listen, &ss, h->host, sizeof(h->host), err, errlen);
	if (r == 0 && o->admin)
		r = parse_addr(o->admin, &as, ahost, sizeof(ahost), err, errlen);
	if (r == 0)
		r = serve_reaper_start(h, err, errlen);
	if (r == 0)
		r = start_front(h, &ss, err, errlen);
	if (r == 0 && o->admin)
		r = start_admin(h, &as, err, errlen);
	if (r < 0) {
		serve_http_stop(h);
		return r;
	}
	*out = h;
	return 0;
}

unsigned serve_http_port(const struct serve_http *h)
{
	return h->port;
}

unsigned serve_http_admin_port(const struct serve_http *h)
{
	return h->admin_port;
}

void serve_http_drain(struct serve_http *h, unsigned wait_ms)
{
	atomic_store(&h->draining, 1);
	MHD_socket fd = MHD_quiesce_daemon(h->d);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	for (unsigned t = 0; t < wait_ms && atomic_load(&h->active) > 0; t += 10) {
		struct timespec ts = {0, 10 * 1000000};
		nanosleep(&ts, NULL);
	}
	if (atomic_load(&h->active) > 0)
		serve_logf(h->o.log, "%d requests still in flight after %u ms; stopping anyway",
			   (int)atomic_load(&h->active), wait_ms);
}

void serve_http_stop(struct serve_http *h)
{
	if (!h)
		return;
	if (h->d)
		MHD_stop_daemon(h->d); /* every connection closed: none is due any more */
	if (h->admin)
		MHD_stop_daemon(h->admin);
	serve_reaper_stop(h);
	pthread_mutex_destroy(&h->conn_mu);
	pthread_cond_destroy(&h->conn_cv);
	free(h);
}
