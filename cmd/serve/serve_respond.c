/* A request through sandbox-serve's pool, and the answer: the CGI environment built from the
 * request (RFC 3875 4.1), the handler's CGI response turned into the HTTP one, or serve's own
 * error (serve_http.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "serve_http.h"

/* Every response: the request id, Connection: close while draining (unless it says so
 * already), queued, and noted for the access log. Takes resp. */
static enum MHD_Result send_response(struct serve_http *h, struct MHD_Connection *c, struct req *r,
				     int status, struct MHD_Response *resp, uint64_t bytes,
				     int has_connection)
{
	char id[32];
	snprintf(id, sizeof(id), "%llx", (unsigned long long)r->id);
	MHD_add_response_header(resp, "X-Request-Id", id);
	if (atomic_load(&h->draining) && !has_connection)
		MHD_add_response_header(resp, "Connection", "close");
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	r->status = status;
	r->bytes = bytes;
	return ret;
}

enum MHD_Result serve_reply(struct serve_http *h, struct MHD_Connection *c, struct req *r,
			    int status, const char *text, const char *extra_name,
			    const char *extra_value)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(
	    strlen(text), (void *)(uintptr_t)text, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
	if (extra_name)
		MHD_add_response_header(resp, extra_name, extra_value);
	return send_response(h, c, r, status, resp, strlen(text),
			     extra_name && !strcmp(extra_name, "Connection"));
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
	e = serve_env_set_all(env, h->o.base_env);
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
	char addr[INET6_ADDRSTRLEN], port[16];
	if (serve_client_addr(c, addr, sizeof(addr), port, sizeof(port)) == 0) {
		e = e ?: serve_env_set(env, "REMOTE_ADDR", addr);
		e = e ?: serve_env_set(env, "REMOTE_PORT", port);
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

/* The handler's headers, copied out of its output (they point into it). */
struct headers {
	struct {
		char *name, *value;
	} v[SERVE_CGI_MAX_HEADERS];
	size_t n;
};

static void headers_copy(struct headers *hv, const struct serve_cgi_resp *cr)
{
	hv->n = 0;
	for (size_t i = 0; i < cr->nhdr; i++) {
		char *name = strndup(cr->hdr[i].name, cr->hdr[i].name_len);
		char *value = strndup(cr->hdr[i].value, cr->hdr[i].value_len);
		if (name && value) {
			hv->v[hv->n].name = name;
			hv->v[hv->n++].value = value;
		} else {
			free(name);
			free(value);
		}
	}
}

static void headers_free(struct headers *hv)
{
	for (size_t i = 0; i < hv->n; i++) {
		free(hv->v[i].name);
		free(hv->v[i].value);
	}
}

static void headers_add(struct serve_http *h, const struct req *r, struct MHD_Response *resp,
			const struct headers *hv)
{
	for (size_t i = 0; i < hv->n; i++)
		if (hv->v[i].value[0] && /* libmicrohttpd refuses empty values */
		    MHD_add_response_header(resp, hv->v[i].name, hv->v[i].value) != MHD_YES)
			serve_logf(h->o.log,
				   "req %llx: header %s dropped (libmicrohttpd refused it)",
				   (unsigned long long)r->id, hv->v[i].name);
}

/* Turns the handler's output into the response. */
static enum MHD_Result respond(struct serve_http *h, struct MHD_Connection *c, struct req *r,
			       struct serve_job *j)
{
	struct serve_cgi_resp cr;
	if (serve_cgi_parse(j->out ? j->out : "", j->out_len, &cr) < 0) {
		serve_logf(h->o.log, "req %llx: bad CGI response from the handler: %s",
			   (unsigned long long)r->id, cr.why);
		serve_metrics_count(h->o.metrics, &h->o.metrics->bad_output);
		return serve_reply(h, c, r, 502,
				   "502 Bad Gateway: the handler's response is not CGI\n", NULL,
				   NULL);
	}
	/* The body moves to the front of the buffer, which the response then owns; the header
	 * strings are copied out first. */
	size_t blen = j->out_len - cr.body_off;
	struct headers hv;
	headers_copy(&hv, &cr);
	memmove(j->out, j->out + cr.body_off, blen);
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(blen, j->out, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret = MHD_NO;
	if (resp) {
		j->out = NULL;
		headers_add(h, r, resp, &hv);
		ret = send_response(h, c, r, cr.status, resp, blen, 0);
	}
	headers_free(&hv);
	return ret;
}

enum MHD_Result serve_run_request(struct serve_http *h, struct MHD_Connection *c, struct req *r,
				  const char *url)
{
	struct serve_env env;
	serve_env_init(&env);
	int e = build_env(h, c, r, url, &env);
	if (e < 0) {
		serve_env_free(&env);
		return serve_reply(h, c, r, e == -E2BIG ? 431 : 500,
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
		ret = serve_reply(h, c, r, 503, "503 Service Unavailable: the queue is full\n",
				  "Retry-After", "1");
	} else if (e < 0) {
		ret = serve_reply(h, c, r, 503, "503 Service Unavailable: shutting down\n",
				  "Retry-After", "1");
	} else if (j.http == 504) {
		ret = serve_reply(h, c, r, 504,
				  "504 Gateway Timeout: the handler ran over --timeout\n", NULL,
				  NULL);
	} else if (j.http) {
		ret = serve_reply(h, c, r, j.http, "502 Bad Gateway: the handler failed\n", NULL,
				  NULL);
	} else {
		ret = respond(h, c, r, &j);
	}
	free(j.out);
	return ret;
}
