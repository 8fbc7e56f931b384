/* CGI/1.1 (RFC 3875) for sandbox-serve: the request's environment, warm mode's framing of it,
 * and the parser of the program's response header block (untrusted: the guest wrote it). */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "serve.h"

void serve_env_init(struct serve_env *e)
{
	memset(e, 0, sizeof(*e));
}

void serve_env_free(struct serve_env *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i]);
	free(e->v);
	serve_env_init(e);
}

static ssize_t find(const struct serve_env *e, const char *name, size_t nlen)
{
	for (size_t i = 0; i < e->n; i++)
		if (strncmp(e->v[i], name, nlen) == 0 && e->v[i][nlen] == '=')
			return (ssize_t)i;
	return -1;
}

const char *serve_env_get(const struct serve_env *e, const char *name)
{
	size_t nlen = strlen(name);
	ssize_t i = find(e, name, nlen);
	return i < 0 ? NULL : e->v[i] + nlen + 1;
}

/* Puts "name=value" (value = a then b) at the existing slot or a new one. */
static int put(struct serve_env *e, const char *name, size_t nlen, const char *a, const char *sep,
	       const char *b)
{
	size_t alen = strlen(a), slen = sep ? strlen(sep) : 0, blen = b ? strlen(b) : 0;
	size_t len = nlen + 1 + alen + slen + blen + 1;
	ssize_t i = find(e, name, nlen);
	size_t old = i < 0 ? 0 : strlen(e->v[i]) + 1;
	if (e->bytes - old + len > SERVE_ENV_MAX_BYTES)
		return -E2BIG;
	char *s = malloc(len);
	if (!s)
		return -ENOMEM;
	memcpy(s, name, nlen);
	s[nlen] = '=';
	memcpy(s + nlen + 1, a, alen);
	if (slen)
		memcpy(s + nlen + 1 + alen, sep, slen);
	if (blen)
		memcpy(s + nlen + 1 + alen + slen, b, blen);
	s[len - 1] = 0;
	if (i >= 0) {
		free(e->v[i]);
		e->v[i] = s;
		e->bytes = e->bytes - old + len;
		return 0;
	}
	if (e->n + 2 > e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 32;
		char **v = realloc(e->v, cap * sizeof(*v));
		if (!v) {
			free(s);
			return -ENOMEM;
		}
		e->v = v;
		e->cap = cap;
	}
	e->v[e->n++] = s;
	e->v[e->n] = NULL;
	e->bytes += len;
	return 0;
}

int serve_env_set(struct serve_env *e, const char *name, const char *value)
{
	return put(e, name, strlen(name), value ? value : "", NULL, NULL);
}

int serve_env_set_all(struct serve_env *e, char *const *vars)
{
	int r = 0;
	for (char *const *p = vars; p && *p && !r; p++) {
		const char *eq = strchr(*p, '=');
		char name[256];
		if (!eq || (size_t)(eq - *p) >= sizeof(name))
			continue;
		memcpy(name, *p, (size_t)(eq - *p));
		name[eq - *p] = 0;
		r = serve_env_set(e, name, eq + 1);
	}
	return r;
}

int serve_env_header(struct serve_env *e, const char *name, const char *value)
{
	if (strcasecmp(name, "Content-Length") == 0 || strcasecmp(name, "Content-Type") == 0 ||
	    strcasecmp(name, "Proxy") == 0)
		return 1;
	size_t n = strlen(name);
	if (n == 0 || n > 200)
		return 1;
	char key[5 + 201];
	memcpy(key, "HTTP_", 5);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == '-')
			c = '_';
		else if (isalnum(c))
			c = (unsigned char)toupper(c);
		else
			return 1;
		key[5 + i] = (char)c;
	}
	key[5 + n] = 0;
	ssize_t i = find(e, key, n + 5);
	if (i < 0)
		return put(e, key, n + 5, value, NULL, NULL);
	/* RFC 3875 4.1.18: repeated headers become one, joined with ", ". */
	char *old = strdup(e->v[i] + n + 6);
	if (!old)
		return -ENOMEM;
	int r = put(e, key, n + 5, old, ", ", value);
	free(old);
	return r;
}

size_t serve_env_frame_len(const struct serve_env *e)
{
	return e->bytes + 1; /* each string's NUL becomes its LF; then the empty line */
}

size_t serve_env_frame(const struct serve_env *e, char *buf, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < e->n; i++) {
		const char *s = e->v[i];
		const char *eq = strchr(s, '=');
		for (; *s && o < len; s++)
			buf[o++] = (s > eq && (*s == '\n' || *s == '\r')) ? ' ' : *s;
		if (o < len)
			buf[o++] = '\n';
	}
	if (o < len)
		buf[o++] = '\n';
	return o;
}

/* ---- the response ---- */

static int fail(struct serve_cgi_resp *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int fail(struct serve_cgi_resp *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

/* RFC 9110 5.6.2 tchar. */
static int is_tchar(unsigned char c)
{
	return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int name_is(const struct serve_hdr *h, const char *s)
{
	return h->name_len == strlen(s) && strncasecmp(h->name, s, h->name_len) == 0;
}

int serve_cgi_parse(const char *buf, size_t len, struct serve_cgi_resp *r)
{
	memset(r, 0, sizeof(*r));
	int have_ct = 0, have_loc = 0, have_status = 0;
	size_t o = 0, line = 0;
	if (len == 0)
		return fail(r, "no output at all");
	for (;;) {
		line++;
		if (o >= len || o >= SERVE_CGI_MAX_HEADER_BYTES)
			return fail(r,
				    "no end of the header block (an empty line) in the first %zu "
				    "bytes",
				    o);
		const char *s = buf + o;
		size_t rest = len - o;
		const char *nl = memchr(s, '\n', rest);
		if (!nl)
			return fail(r, "line %zu: no end of line before the output ends", line);
		size_t ll = (size_t)(nl - s); /* without the LF */
		o += ll + 1;
		if (ll > 0 && s[ll - 1] == '\r')
			ll--;
		if (ll == 0)
			break; /* the end of the header block */
		size_t n = 0;
		while (n < ll && is_tchar((unsigned char)s[n]))
			n++;
		if (n == 0 || n >= ll || s[n] != ':')
			return fail(r, "line %zu: not a header (NAME: value)", line);
		size_t v = n + 1;
		while (v < ll && (s[v] == ' ' || s[v] == '\t'))
			v++;
		size_t ve = ll;
		while (ve > v && (s[ve - 1] == ' ' || s[ve - 1] == '\t'))
			ve--;
		for (size_t k = v; k < ve; k++) {
			unsigned char c = (unsigned char)s[k];
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return fail(r, "line %zu: a control character in the value", line);
		}
		struct serve_hdr h = {s, s + v, n, ve - v};
		if (name_is(&h, "Status")) {
			if (have_status++)
				return fail(r, "line %zu: a second Status", line);
			if (h.value_len < 3 || !isdigit((unsigned char)h.value[0]) ||
			    !isdigit((unsigned char)h.value[1]) ||
			    !isdigit((unsigned char)h.value[2]) ||
			    (h.value_len > 3 && h.value[3] != ' '))
				return fail(r, "line %zu: Status is not \"NNN reason\"", line);
			r->status =
			    (h.value[0] - '0') * 100 + (h.value[1] - '0') * 10 + (h.value[2] - '0');
			if (r->status < 100 || r->status > 599)
				return fail(r, "line %zu: Status %d out of 100..599", line,
					    r->status);
			continue;
		}
		if (name_is(&h, "Content-Type")) {
			if (have_ct++)
				return fail(r, "line %zu: a second Content-Type", line);
		} else if (name_is(&h, "Location")) {
			if (have_loc++)
				return fail(r, "line %zu: a second Location", line);
			if (h.value_len == 0)
				return fail(r, "line %zu: an empty Location", line);
		} else if (name_is(&h, "Content-Length") || name_is(&h, "Transfer-Encoding") ||
			   name_is(&h, "Connection")) {
			continue;
		}
		if (r->nhdr == SERVE_CGI_MAX_HEADERS)
			return fail(r, "more than %d headers", SERVE_CGI_MAX_HEADERS);
		r->hdr[r->nhdr++] = h;
	}
	if (!have_ct && !have_loc && !have_status)
		return fail(r, "none of Content-Type, Location or Status in the header block");
	if (!have_status)
		r->status = have_loc ? 302 : 200;
	r->body_off = o;
	return 0;
}
