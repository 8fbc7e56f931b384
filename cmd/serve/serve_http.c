/* sandbox-serve's HTTP/1.1 front on libmicrohttpd: one thread per connection, which collects
 * the body, builds the CGI environment, queues the request on the pool, waits for it and turns
 * the handler's CGI response into the HTTP one; the access log; the admin address's
 * /-/metrics. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "serve.h"

/* A connection, from libmicrohttpd's NOTIFY_CONNECTION: its socket and, while a request head is
 * due on it, the deadline for all of that head. libmicrohttpd's own connection timeout starts
 * again at every byte, so a client that drips a header line now and then would hold the
 * connection (and its thread) for as long as it likes. */
struct conn {
	int fd; /* our dup of the socket: shutdown() through it ends the connection, and it
		   cannot be a reused number while we hold it */
	uint64_t deadline_ns; /* CLOCK_MONOTONIC; 0 while no head is due (in h->due or not) */
	struct conn *prev, *next;
	char addr[INET6_ADDRSTRLEN];
};

struct serve_http {
	struct serve_http_opts o;
	struct MHD_Daemon *d, *admin;
	unsigned port, admin_port;
	char host[256]; /* SERVER_NAME when the request has no Host */
	atomic_uint_fast64_t next_id;
	atomic_int active; /* requests between their first line and the end of the response */
	atomic_int draining;
	atomic_uint_fast64_t body_bytes; /* buffered request bodies, all connections */
	/* Connections a request head is due on, earliest deadline first (every deadline is now
	 * plus the same timeout, so appending keeps the order), and the thread that closes the
	 * ones past it. */
	pthread_mutex_t conn_mu;
	pthread_cond_t conn_cv;
	struct conn *due_first, *due_last;
	pthread_t reaper;
	int reaper_started, reaper_stop;
	uint64_t log_sec, log_lines, log_dropped; /* mhd_log's rate limit (under conn_mu) */
};

struct req {
	uint64_t id;
	struct timespec t0;
	char *uri; /* as the client sent it */
	const char *method, *version;
	char *body;
	size_t len, cap;
	uint64_t discarded;
	int too_large, started;
	int status, instance;
	uint64_t bytes;
};

static void logf_(struct serve_http *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(struct serve_http *h, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	flockfile(h->o.log);
	fputs("sandbox-serve: ", h->o.log);
	vfprintf(h->o.log, fmt, ap);
	fputc('\n', h->o.log);
	funlockfile(h->o.log);
	fflush(h->o.log);
	va_end(ap);
}

static uint64_t mono_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void due_unlink(struct serve_http *h, struct conn *k)
{
	if (!k->deadline_ns)
		return;
	*(k->prev ? &k->prev->next : &h->due_first) = k->next;
	*(k->next ? &k->next->prev : &h->due_last) = k->prev;
	k->prev = k->next = NULL;
	k->deadline_ns = 0;
}

/* A request head is due on c from now (the connection opened, or its last response went). */
static void head_due(struct serve_http *h, struct conn *k)
{
	if (!k || !h->o.header_timeout_ms)
		return;
	pthread_mutex_lock(&h->conn_mu);
	due_unlink(h, k);
	k->deadline_ns = mono_ns() + h->o.header_timeout_ms * 1000000ull;
	k->prev = h->due_last;
	*(h->due_last ? &h->due_last->next : &h->due_first) = k;
	h->due_last = k;
	if (h->due_first == k)
		pthread_cond_signal(&h->conn_cv);
	pthread_mutex_unlock(&h->conn_mu);
}

static struct conn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

static void head_done(struct serve_http *h, struct MHD_Connection *c)
{
	struct conn *k = conn_of(c);
	if (!k)
		return;
	pthread_mutex_lock(&h->conn_mu);
	due_unlink(h, k);
	pthread_mutex_unlock(&h->conn_mu);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct serve_http *h = cls;
	struct conn *k = *socket_context;
	if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (!k)
			return;
		pthread_mutex_lock(&h->conn_mu);
		due_unlink(h, k);
		close(k->fd);
		pthread_mutex_unlock(&h->conn_mu);
		free(k);
		*socket_context = NULL;
		return;
	}
	const union MHD_ConnectionInfo *fi =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	const union MHD_ConnectionInfo *ai =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	k = calloc(1, sizeof(*k));
	if (!k || !fi || (k->fd = fcntl(fi->connect_fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		logf_(h, "a connection without a deadline for its request head: %s",
		      strerror(k ? errno : ENOMEM));
		free(k);
		return;
	}
	snprintf(k->addr, sizeof(k->addr), "-");
	if (ai && ai->client_addr)
		getnameinfo(ai->client_addr,
			    ai->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
								   : sizeof(struct sockaddr_in),
			    k->addr, sizeof(k->addr), NULL, 0, NI_NUMERICHOST);
	*socket_context = k;
	head_due(h, k);
}

/* Closes the connections whose request head did not come complete in time. */
static void *reaper(void *arg)
{
	struct serve_http *h = arg;
	pthread_mutex_lock(&h->conn_mu);
	while (!h->reaper_stop) {
		struct conn *k = h->due_first;
		if (!k) {
			pthread_cond_wait(&h->conn_cv, &h->conn_mu);
			continue;
		}
		uint64_t now = mono_ns();
		if (now < k->deadline_ns) {
			struct timespec ts = {.tv_sec = (time_t)(k->deadline_ns / 1000000000ull),
					      .tv_nsec = (long)(k->deadline_ns % 1000000000ull)};
			pthread_cond_timedwait(&h->conn_cv, &h->conn_mu, &ts);
			continue;
		}
		/* The connection's thread sees the end of its stream and closes it. */
		(void)shutdown(k->fd, SHUT_RDWR);
		due_unlink(h, k);
		char addr[sizeof(k->addr)];
		memcpy(addr, k->addr, sizeof(addr));
		pthread_mutex_unlock(&h->conn_mu);
		logf_(
		    h,
		    "connection from %s: no complete request head within --header-timeout %llu ms: "
		    "closed",
		    addr, (unsigned long long)h->o.header_timeout_ms);
		serve_metrics_count(h->o.metrics, &h->o.metrics->slow_heads);
		pthread_mutex_lock(&h->conn_mu);
	}
	pthread_mutex_unlock(&h->conn_mu);
	return NULL;
}

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

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
		    enum MHD_RequestTerminationCode toe)
{
	(void)toe;
	struct serve_http *h = cls;
	struct req *r = *con_cls;
	head_due(h, conn_of(c)); /* the next request on a kept-alive connection */
	if (!r)
		return;
	struct timespec t1;
	clock_gettime(CLOCK_REALTIME, &t1);
	double secs =
	    (double)(t1.tv_sec - r->t0.tv_sec) + (double)(t1.tv_nsec - r->t0.tv_nsec) / 1e9;
	if (r->status) {
		serve_metrics_request(h->o.metrics, r->status, secs);
		if (h->o.access_log) {
			char addr[INET6_ADDRSTRLEN] = "-";
			const union MHD_ConnectionInfo *ci =
			    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
			if (ci && ci->client_addr)
				getnameinfo(ci->client_addr, sizeof(struct sockaddr_in6), addr,
					    sizeof(addr), NULL, 0, NI_NUMERICHOST);
			struct tm tm;
			char when[64];
			gmtime_r(&r->t0.tv_sec, &tm);
			strftime(when, sizeof(when), "%d/%b/%Y:%H:%M:%S +0000", &tm);
			FILE *o = h->o.access_log;
			flockfile(o);
			fprintf(o, "%s - - [%s] \"", addr, when);
			clf_escape(o, r->method);
			fputc(' ', o);
			clf_escape(o, r->uri);
			fputc(' ', o);
			clf_escape(o, r->version);
			fprintf(o, "\" %d %llu %.0fus instance=%d id=%llx\n", r->status,
				(unsigned long long)r->bytes, secs * 1e6, r->instance,
				(unsigned long long)r->id);
			funlockfile(o);
			fflush(o);
		}
	}
	free(r->uri);
	atomic_fetch_sub(&h->body_bytes, r->cap);
	free(r->body);
	free(r);
	*con_cls = NULL;
	atomic_fetch_sub(&h->active, 1);
}

static enum MHD_Result reply(struct serve_http *h, struct MHD_Connection *c, struct req *r,
			     int status, const char *text, const char *extra_name,
			     const char *extra_value)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(
	    strlen(text), (void *)(uintptr_t)text, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	char id[32];
	snprintf(id, sizeof(id), "%llx", (unsigned long long)r->id);
	MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
	MHD_add_response_header(resp, "X-Request-Id", id);
	if (extra_name)
		MHD_add_response_header(resp, extra_name, extra_value);
	if (atomic_load(&h->draining) && !(extra_name && !strcmp(extra_name, "Connection")))
		MHD_add_response_header(resp, "Connection", "close");
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	r->status = status;
	r->bytes = strlen(text);
	return ret;
}

struct env_ctx {
	struct serve_env *env;
	int err;
};

static enum MHD_Result each_header(void *cls, enum MHD_ValueKind kind, const char *key,
				   const char *value)
{
	(void)kind;
	struct env_ctx *e = cls;
	int r = serve_env_header(e->env, key, value ? value : "");
	if (r < 0) {
		e->err = r;
		return MHD_NO;
	}
	return MHD_YES;
}

/* RFC 3875 4.1: the request's meta-variables. */
static int build_env(struct serve_http *h, struct MHD_Connection *c, struct req *r, const char *url,
		     struct serve_env *env)
{
	char buf[64];
	int e = 0;
	const char *q = strchr(r->uri, '?');
	const char *ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
	/* The policy's environment first: the request's variables override it. */
	for (char *const *p = h->o.base_env; p && *p && !e; p++) {
		const char *eq = strchr(*p, '=');
		char name[256];
		if (!eq || (size_t)(eq - *p) >= sizeof(name))
			continue;
		memcpy(name, *p, (size_t)(eq - *p));
		name[eq - *p] = 0;
		e = serve_env_set(env, name, eq + 1);
	}
	e = e ?: serve_env_set(env, "GATEWAY_INTERFACE", "CGI/1.1");
	e = e ?: serve_env_set(env, "SERVER_SOFTWARE", "sandbox-serve");
	e = e ?: serve_env_set(env, "SERVER_PROTOCOL", r->version);
	e = e ?: serve_env_set(env, "REQUEST_METHOD", r->method);
	e = e ?: serve_env_set(env, "REQUEST_URI", r->uri);
	e = e ?: serve_env_set(env, "SCRIPT_NAME", "");
	e = e ?: serve_env_set(env, "PATH_INFO", url);
	e = e ?: serve_env_set(env, "QUERY_STRING", q ? q + 1 : "");
	if (r->len || MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length") ||
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding")) {
		snprintf(buf, sizeof(buf), "%zu", r->len);
		e = e ?: serve_env_set(env, "CONTENT_LENGTH", buf);
	}
	if (ctype)
		e = e ?: serve_env_set(env, "CONTENT_TYPE", ctype);
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr) {
		char addr[INET6_ADDRSTRLEN], port[16];
		socklen_t sl = ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
								      : sizeof(struct sockaddr_in);
		if (getnameinfo(ci->client_addr, sl, addr, sizeof(addr), port, sizeof(port),
				NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
			e = e ?: serve_env_set(env, "REMOTE_ADDR", addr);
			e = e ?: serve_env_set(env, "REMOTE_PORT", port);
		}
	}
	/* SERVER_NAME: the Host header without its port, else the listen address. */
	const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
	char name[256];
	snprintf(name, sizeof(name), "%s", host && *host ? host : h->host);
	char *colon = name[0] == '[' ? strstr(name, "]:") : strrchr(name, ':');
	if (colon)
		colon[name[0] == '[' ? 1 : 0] = 0;
	e = e ?: serve_env_set(env, "SERVER_NAME", name);
	snprintf(buf, sizeof(buf), "%u", h->port);
	e = e ?: serve_env_set(env, "SERVER_PORT", buf);
	struct env_ctx ec = {env, 0};
	MHD_get_connection_values(c, MHD_HEADER_KIND, each_header, &ec);
	e = e ?: ec.err;
	return e;
}

/* Turns the handler's output into the response. */
static enum MHD_Result respond(struct serve_http *h, struct MHD_Connection *c, struct req *r,
			       struct serve_job *j)
{
	struct serve_cgi_resp cr;
	if (serve_cgi_parse(j->out ? j->out : "", j->out_len, &cr) < 0) {
		logf_(h, "req %llx: bad CGI response from the handler: %s",
		      (unsigned long long)r->id, cr.why);
		serve_metrics_count(h->o.metrics, &h->o.metrics->bad_output);
		return reply(h, c, r, 502, "502 Bad Gateway: the handler's response is not CGI\n",
			     NULL, NULL);
	}
	size_t blen = j->out_len - cr.body_off;
	/* The body moves to the front of the buffer, which the response then owns; the header
	 * strings are copied out first. */
	struct {
		char *name, *value;
	} hv[SERVE_CGI_MAX_HEADERS];
	size_t nh = 0;
	for (size_t i = 0; i < cr.nhdr; i++) {
		hv[nh].name = strndup(cr.hdr[i].name, cr.hdr[i].name_len);
		hv[nh].value = strndup(cr.hdr[i].value, cr.hdr[i].value_len);
		if (hv[nh].name && hv[nh].value)
			nh++;
		else {
			free(hv[nh].name);
			free(hv[nh].value);
		}
	}
	memmove(j->out, j->out + cr.body_off, blen);
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(blen, j->out, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret = MHD_NO;
	if (resp) {
		j->out = NULL;
		for (size_t i = 0; i < nh; i++)
			if (hv[i].value[0] && /* libmicrohttpd refuses empty values */
			    MHD_add_response_header(resp, hv[i].name, hv[i].value) != MHD_YES)
				logf_(h, "req %llx: header %s dropped (libmicrohttpd refused it)",
				      (unsigned long long)r->id, hv[i].name);
		char id[32];
		snprintf(id, sizeof(id), "%llx", (unsigned long long)r->id);
		MHD_add_response_header(resp, "X-Request-Id", id);
		if (atomic_load(&h->draining))
			MHD_add_response_header(resp, "Connection", "close");
		ret = MHD_queue_response(c, (unsigned)cr.status, resp);
		MHD_destroy_response(resp);
		r->status = cr.status;
		r->bytes = blen;
	}
	for (size_t i = 0; i < nh; i++) {
		free(hv[i].name);
		free(hv[i].value);
	}
	return ret;
}

static enum MHD_Result run_request(struct serve_http *h, struct MHD_Connection *c, struct req *r,
				   const char *url)
{
	struct serve_env env;
	serve_env_init(&env);
	int e = build_env(h, c, r, url, &env);
	if (e < 0) {
		serve_env_free(&env);
		return reply(h, c, r, e == -E2BIG ? 431 : 500,
			     e == -E2BIG ? "431 Request Header Fields Too Large\n"
					 : "500 Internal Server Error\n",
			     NULL, NULL);
	}
	struct serve_job j = {
	    .id = r->id, .envp = env.v, .env = &env, .body = r->body, .body_len = r->len};
	e = serve_pool_run(h->o.pool, &j);
	serve_env_free(&env);
	r->instance = j.instance;
	enum MHD_Result ret;
	if (e == -EAGAIN) {
		serve_metrics_count(h->o.metrics, &h->o.metrics->rejected);
		ret = reply(h, c, r, 503, "503 Service Unavailable: the queue is full\n",
			    "Retry-After", "1");
	} else if (e < 0) {
		ret = reply(h, c, r, 503, "503 Service Unavailable: shutting down\n", "Retry-After",
			    "1");
	} else if (j.http == 504) {
		ret = reply(h, c, r, 504, "504 Gateway Timeout: the handler ran over --timeout\n",
			    NULL, NULL);
	} else if (j.http) {
		ret = reply(h, c, r, j.http, "502 Bad Gateway: the handler failed\n", NULL, NULL);
	} else {
		ret = respond(h, c, r, &j);
	}
	free(j.out);
	return ret;
}

/* Room for cap bytes of body, within the budget for all connections' bodies together (so
 * that many slow uploads cannot take the host's memory). */
static int grow(struct serve_http *h, struct req *r, size_t cap)
{
	size_t more = cap - r->cap;
	if (atomic_fetch_add(&h->body_bytes, more) + more > h->o.body_budget) {
		atomic_fetch_sub(&h->body_bytes, more);
		logf_(h, "req %llx: request bodies in flight over their budget of %llu bytes",
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
		head_done(h, c);
		r->method = method;
		r->version = version;
		const char *bad = framing_error(c);
		if (bad) {
			logf_(h, "req %llx: %s: 400, connection closed", (unsigned long long)r->id,
			      bad);
			return reply(h, c, r, 400, "400 Bad Request: ambiguous body length\n",
				     "Connection", "close");
		}
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
		if (cl) {
			char *end;
			errno = 0;
			unsigned long long n = strtoull(cl, &end, 10);
			if (errno || *end || end == cl || n > h->o.max_body) {
				logf_(h, "req %llx: body of %s bytes over --max-body",
				      (unsigned long long)r->id, cl);
				return reply(h, c, r, 413, "413 Content Too Large\n", NULL, NULL);
			}
			if (n && grow(h, r, (size_t)n) < 0)
				return reply(h, c, r, 503,
					     "503 Service Unavailable: too many bodies in flight\n",
					     "Retry-After", "1");
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (r->too_large || r->len + n > h->o.max_body) {
			/* A chunked body over the limit: read on a little, answer 413 at its end,
			 * or hang up on one that does not end. */
			r->too_large = 1;
			r->discarded += n;
			if (r->discarded > (1u << 20) + h->o.max_body) {
				logf_(h,
				      "req %llx: chunked body over --max-body: connection closed",
				      (unsigned long long)r->id);
				return MHD_NO;
			}
			return MHD_YES;
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
		memcpy(r->body + r->len, upload_data, n);
		r->len += n;
		return MHD_YES;
	}
	if (r->too_large) {
		logf_(h, "req %llx: chunked body over --max-body", (unsigned long long)r->id);
		return reply(h, c, r, 413, "413 Content Too Large\n", NULL, NULL);
	}
	return run_request(h, c, r, url);
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
	uint64_t sec = mono_ns() / 1000000000ull;
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
	flockfile(h->o.log);
	if (dropped)
		fprintf(h->o.log,
			"sandbox-serve: http: %llu more messages left out (at most %d a second)\n",
			dropped, MHD_LOG_PER_SECOND);
	if (show) {
		fputs("sandbox-serve: http: ", h->o.log);
		vfprintf(h->o.log, fmt, ap);
	}
	funlockfile(h->o.log);
	fflush(h->o.log);
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
	if (r == 0 && (r = -pthread_create(&h->reaper, NULL, reaper, h)) < 0)
		snprintf(err, errlen, "pthread_create: %s", strerror(-r));
	h->reaper_started = r == 0;
	if (r < 0) {
		serve_http_stop(h);
		return r;
	}
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
			 MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG |
			 (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
	h->d = MHD_start_daemon(
	    flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_URI_LOG_CALLBACK, on_uri, h,
	    MHD_OPTION_NOTIFY_COMPLETED, on_done, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
	    MHD_OPTION_CONNECTION_LIMIT, o->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    o->max_per_client, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64u << 10), MHD_OPTION_END);
	if (!h->d) {
		snprintf(err, errlen, "cannot listen on %s (in use, or not an address here)",
			 o->listen);
		serve_http_stop(h);
		return -EADDRINUSE;
	}
	h->port = bound_port(h->d);
	if (o->admin) {
		h->admin = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
						(as.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
					    0, NULL, NULL, on_admin, h, MHD_OPTION_EXTERNAL_LOGGER,
					    mhd_log, h, MHD_OPTION_SOCK_ADDR,
					    (struct sockaddr *)&as, MHD_OPTION_END);
		if (!h->admin) {
			snprintf(err, errlen, "--admin: cannot listen on %s", o->admin);
			serve_http_stop(h);
			return -EADDRINUSE;
		}
		h->admin_port = bound_port(h->admin);
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
		logf_(h, "%d requests still in flight after %u ms; stopping anyway",
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
	if (h->reaper_started) {
		pthread_mutex_lock(&h->conn_mu);
		h->reaper_stop = 1;
		pthread_cond_signal(&h->conn_cv);
		pthread_mutex_unlock(&h->conn_mu);
		pthread_join(h->reaper, NULL);
	}
	pthread_mutex_destroy(&h->conn_mu);
	pthread_cond_destroy(&h->conn_cv);
	free(h);
}
