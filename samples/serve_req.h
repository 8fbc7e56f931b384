/* What the sandbox-serve samples share: the request, from a CGI/1.1 environment and stdin, or
 * in warm mode from the framing on stdin (docs/serve.md): "NAME=value" lines, an empty line,
 * then the body up to the end of stdin. Header only, so each sample stays one file. */
#ifndef SERVE_REQ_H
#define SERVE_REQ_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct req {
	int warm; /* the request came framed on stdin */
	char *in; /* all of stdin read */
	size_t in_len;
	char *meta; /* warm: the framed variables (NUL-separated lines) */
	size_t meta_len;
	char *body;
	size_t body_len;
};

static inline int req_read_all(int fd, char **out, size_t *len, size_t want)
{
	size_t cap = want ? want + 1 : 65536, n = 0;
	char *b = malloc(cap);
	if (!b)
		return -1;
	for (;;) {
		if (want && n == want)
			break;
		if (n + 1 >= cap) {
			cap *= 2;
			char *nb = realloc(b, cap);
			if (!nb)
				return -1;
			b = nb;
		}
		ssize_t r = read(fd, b + n, (want ? want : cap - 1) - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	b[n] = 0;
	*out = b;
	*len = n;
	return 0;
}

/* Reads the request. In CGI mode the body is CONTENT_LENGTH bytes of stdin; in warm mode
 * (no GATEWAY_INTERFACE in the environment) stdin holds the framing, then the body. */
static inline int req_read(struct req *q)
{
	memset(q, 0, sizeof(*q));
	q->warm = getenv("GATEWAY_INTERFACE") == NULL;
	if (!q->warm) {
		const char *cl = getenv("CONTENT_LENGTH");
		size_t want = cl ? strtoul(cl, NULL, 10) : 0;
		if (!want) {
			q->body = calloc(1, 1);
			return q->body ? 0 : -1;
		}
		return req_read_all(0, &q->body, &q->body_len, want);
	}
	if (req_read_all(0, &q->in, &q->in_len, 0) < 0)
		return -1;
	char *end = q->in_len && q->in[0] == '\n' ? q->in : strstr(q->in, "\n\n");
	if (!end)
		return -1;
	size_t meta_end = end == q->in ? 0 : (size_t)(end - q->in) + 1;
	q->meta = q->in;
	q->meta_len = meta_end;
	for (size_t i = 0; i < meta_end; i++)
		if (q->in[i] == '\n')
			q->in[i] = 0;
	q->body = q->in + meta_end + 1;
	q->body_len = q->in_len - meta_end - 1;
	return 0;
}

static inline const char *req_get(const struct req *q, const char *name)
{
	if (!q->warm)
		return getenv(name);
	size_t nl = strlen(name);
	for (size_t o = 0; o < q->meta_len; o += strlen(q->meta + o) + 1)
		if (strncmp(q->meta + o, name, nl) == 0 && q->meta[o + nl] == '=')
			return q->meta + o + nl + 1;
	return NULL;
}

/* The value of key in QUERY_STRING ("a=1&b=2"), copied into out; "" when absent. */
static inline const char *req_param(const struct req *q, const char *key, char *out, size_t len)
{
	const char *qs = req_get(q, "QUERY_STRING");
	size_t kl = strlen(key);
	out[0] = 0;
	for (const char *p = qs; p && *p;) {
		const char *amp = strchr(p, '&');
		size_t pl = amp ? (size_t)(amp - p) : strlen(p);
		if (pl > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
			size_t vl = pl - kl - 1 < len - 1 ? pl - kl - 1 : len - 1;
			memcpy(out, p + kl + 1, vl);
			out[vl] = 0;
			break;
		}
		p = amp ? amp + 1 : p + pl;
	}
	return out;
}

#endif
