/* Reusable policies as JSON (docs/policy.md). jansson checks the syntax and builds the tree;
 * this file checks the schema and applies it through the same functions the command line uses,
 * so a file and the equivalent flags give the same policy. jansson keeps no positions for keys
 * and values, so a small scanner finds them again in the text when an error needs one: by then
 * the text is known to be valid JSON, so walking an object member by member is exact. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy.h"

#define PJ_MAX_BYTES (1u << 20) /* a policy file larger than this is refused */
#define PJ_MAX_DEPTH 16		/* the schema needs 3 levels; deeper input is refused early */
#define PJ_MAX_ITEMS 1024	/* mounts, tmp, env and env_pass entries, each */
#define PJ_MIN_FILES 3		/* limits.max_files: the range --max-files accepts */
#define PJ_MAX_FILES 1024

/* One load: the text for positions, where errors go, and the policy being filled. */
struct pj {
	struct policy *p;
	const char *text;
	size_t len;
	const char *name;
	char *err;
	size_t errlen;
};

/* ---- positions ---------------------------------------------------------------------------- */

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static size_t skip_ws(const struct pj *j, size_t i)
{
	while (i < j->len && is_ws(j->text[i]))
		i++;
	return i;
}

/* i at an opening quote; returns the offset just past the closing one. */
static size_t skip_string(const struct pj *j, size_t i)
{
	for (i++; i < j->len; i++) {
		if (j->text[i] == '\\')
			i++;
		else if (j->text[i] == '"')
			return i + 1;
	}
	return j->len;
}

/* i at the start of a value; returns the offset just past it. */
static size_t skip_value(const struct pj *j, size_t i)
{
	size_t depth = 0;
	while (i < j->len) {
		char c = j->text[i];
		if (c == '"') {
			i = skip_string(j, i);
			if (depth == 0)
				return i;
			continue;
		}
		if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (depth == 0)
				return i; /* the end of a scalar */
			if (--depth == 0)
				return i + 1;
		} else if (depth == 0 && (c == ',' || is_ws(c))) {
			return i;
		}
		i++;
	}
	return i;
}

/* Does the string token at [k, e) (quotes included) spell `key`? Escaped keys are decoded by
 * jansson itself, so "\u0041" matches "A". */
static int key_matches(const struct pj *j, size_t k, size_t e, const char *key)
{
	size_t klen = strlen(key);
	if (e < k + 2)
		return 0;
	if (!memchr(j->text + k, '\\', e - k))
		return e - k - 2 == klen && memcmp(j->text + k + 1, key, klen) == 0;
	json_t *s = json_loadb(j->text + k, e - k, JSON_DECODE_ANY, NULL);
	int m = json_is_string(s) && json_string_length(s) == klen &&
		memcmp(json_string_value(s), key, klen) == 0;
	json_decref(s);
	return m;
}

/* The member `key` of the object whose '{' is at `obj`: offsets of its key and its value.
 * Falls back to the object itself. */
static void member_at(const struct pj *j, size_t obj, const char *key, size_t *kpos, size_t *vpos)
{
	*kpos = *vpos = obj;
	if (obj >= j->len || j->text[obj] != '{')
		return;
	size_t i = skip_ws(j, obj + 1);
	while (i < j->len && j->text[i] == '"') {
		size_t k = i, e = skip_string(j, i);
		i = skip_ws(j, e);
		if (i >= j->len || j->text[i] != ':')
			return;
		i = skip_ws(j, i + 1);
		if (key_matches(j, k, e, key)) {
			*kpos = k;
			*vpos = i;
			return;
		}
		i = skip_ws(j, skip_value(j, i));
		if (i >= j->len || j->text[i] != ',')
			return;
		i = skip_ws(j, i + 1);
	}
}

static size_t value_at(const struct pj *j, size_t obj, const char *key)
{
	size_t k, v;
	member_at(j, obj, key, &k, &v);
	return v;
}

static size_t key_at(const struct pj *j, size_t obj, const char *key)
{
	size_t k, v;
	member_at(j, obj, key, &k, &v);
	return k;
}

/* Element idx of the array whose '[' is at `arr`; falls back to the array. */
static size_t element_at(const struct pj *j, size_t arr, size_t idx)
{
	if (arr >= j->len || j->text[arr] != '[')
		return arr;
	size_t i = skip_ws(j, arr + 1);
	for (size_t n = 0; n < idx; n++) {
		i = skip_ws(j, skip_value(j, i));
		if (i >= j->len || j->text[i] != ',')
			return arr;
		i = skip_ws(j, i + 1);
	}
	return i < j->len ? i : arr;
}

/* 1-based line and column of an offset; columns count characters, as jansson's do. */
static void line_col(const struct pj *j, size_t pos, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < pos && i < j->len; i++) {
		unsigned char c = (unsigned char)j->text[i];
		if (c == '\n') {
			++*line;
			*col = 1;
		} else if ((c & 0xc0) != 0x80) {
			++*col;
		}
	}
}

/* ---- errors ------------------------------------------------------------------------------- */

/* Messages are one line whatever the file held: control characters become '?'. */
static void one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

__attribute__((format(printf, 5, 6))) static int fail(const struct pj *j, size_t pos,
						      const char *key, int rc, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int line, col;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	line_col(j, pos, &line, &col);
	if (key && *key)
		snprintf(j->err, j->errlen, "%s:%d:%d: %s: %s", j->name, line, col, key, msg);
	else
		snprintf(j->err, j->errlen, "%s:%d:%d: %s", j->name, line, col, msg);
	if (j->err && j->errlen)
		one_line(j->err);
	return rc;
}

/* A string value for a message: quoted, cut short if long. */
static const char *quoted(const char *s, char *buf, size_t n)
{
	size_t l = strlen(s);
	if (l + 3 <= n)
		snprintf(buf, n, "\"%s\"", s);
	else
		snprintf(buf, n, "\"%.*s...\"", (int)(n > 6 ? n - 6 : 0), s);
	return buf;
}

static const char *kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a fractional number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "something else";
}

static int wrong_type(const struct pj *j, size_t pos, const char *key, const json_t *v,
		      const char *want)
{
	return fail(j, pos, key, -EINVAL, "expected %s, not %s", want, kind(v));
}

/* Every key of `obj` must be in the NULL-terminated `known`. */
static int check_keys(const struct pj *j, const json_t *obj, size_t pos, const char *prefix,
		      const char *const *known, const char *list)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)obj, k, v)
	{
		size_t i = 0;
		while (known[i] && strcmp(known[i], k) != 0)
			i++;
		if (!known[i]) {
			char q[80];
			return fail(j, key_at(j, pos, k), prefix, -EINVAL,
				    "unknown key %s (expected %s)", quoted(k, q, sizeof(q)), list);
		}
	}
	return 0;
}

/* The pieces of the schema ------------------------------------------------------------------ */

static int load_mount(struct pj *j, const json_t *m, size_t pos, const char *key)
{
	static const char *const known[] = {"host", "guest", "mode", NULL};
	char sub[64], q[80];
	if (!json_is_object(m))
		return wrong_type(j, pos, key, m, "an object {\"host\", \"guest\", \"mode\"}");
	int r = check_keys(j, m, pos, key, known, "host, guest, mode");
	if (r < 0)
		return r;

	const json_t *host = json_object_get(m, "host");
	const json_t *guest = json_object_get(m, "guest");
	const json_t *mode = json_object_get(m, "mode");
	snprintf(sub, sizeof(sub), "%s.host", key);
	if (!host)
		return fail(j, pos, key, -EINVAL, "a mount needs \"host\"");
	if (!json_is_string(host))
		return wrong_type(j, value_at(j, pos, "host"), sub, host, "a host path");
	const char *h = json_string_value(host);
	if (!*h || strchr(h, ':'))
		return fail(j, value_at(j, pos, "host"), sub, -EINVAL,
			    "%s: expected a non-empty host path without ':'",
			    quoted(h, q, sizeof(q)));
	const char *g = h;
	if (guest) {
		snprintf(sub, sizeof(sub), "%s.guest", key);
		if (!json_is_string(guest))
			return wrong_type(j, value_at(j, pos, "guest"), sub, guest,
					  "an absolute guest path");
		g = json_string_value(guest);
		if (g[0] != '/')
			return fail(j, value_at(j, pos, "guest"), sub, -EINVAL,
				    "%s is not an absolute guest path", quoted(g, q, sizeof(q)));
	}
	int rw = 0;
	if (mode) {
		snprintf(sub, sizeof(sub), "%s.mode", key);
		const char *s = json_string_value(mode);
		if (!json_is_string(mode))
			return wrong_type(j, value_at(j, pos, "mode"), sub, mode,
					  "\"ro\" or \"rw\"");
		if (strcmp(s, "ro") != 0 && strcmp(s, "rw") != 0)
			return fail(j, value_at(j, pos, "mode"), sub, -EINVAL,
				    "%s is not a mode (use \"ro\" or \"rw\")",
				    quoted(s, q, sizeof(q)));
		rw = s[1] == 'w';
	}

	size_t hl = strlen(h), gl = strlen(g);
	char *spec = malloc(hl + gl + 2);
	if (!spec)
		return fail(j, pos, key, -ENOMEM, "out of memory");
	memcpy(spec, h, hl);
	spec[hl] = ':';
	memcpy(spec + hl + 1, g, gl + 1);
	char why[512];
	why[0] = 0;
	r = policy_add_mount(j->p, spec, rw, why, sizeof(why));
	free(spec);
	if (r < 0)
		return fail(j, pos, key, r, "%s", why[0] ? why : strerror(-r));
	return 0;
}

static int load_mounts(struct pj *j, const json_t *v, size_t pos)
{
	char key[32];
	size_t i;
	json_t *m;
	if (!json_is_array(v))
		return wrong_type(j, pos, "mounts", v, "an array of mounts");
	if (json_array_size(v) > PJ_MAX_ITEMS)
		return fail(j, pos, "mounts", -E2BIG, "more than %d mounts", PJ_MAX_ITEMS);
	json_array_foreach(v, i, m)
	{
		snprintf(key, sizeof(key), "mounts[%zu]", i);
		int r = load_mount(j, m, element_at(j, pos, i), key);
		if (r < 0)
			return r;
	}
	return 0;
}

static int load_tmp(struct pj *j, const json_t *v, size_t pos)
{
	char key[32], q[80];
	size_t i;
	json_t *t;
	if (!json_is_array(v))
		return wrong_type(j, pos, "tmp", v, "an array of guest paths");
	if (json_array_size(v) > PJ_MAX_ITEMS)
		return fail(j, pos, "tmp", -E2BIG, "more than %d paths", PJ_MAX_ITEMS);
	json_array_foreach(v, i, t)
	{
		snprintf(key, sizeof(key), "tmp[%zu]", i);
		size_t at = element_at(j, pos, i);
		if (!json_is_string(t))
			return wrong_type(j, at, key, t, "an absolute guest path");
		const char *s = json_string_value(t);
		char norm[POLICY_PATH_MAX];
		if (s[0] != '/' || policy_normalize("/", s, strlen(s), norm, sizeof(norm)) < 0)
			return fail(j, at, key, -EINVAL, "%s is not an absolute guest path",
				    quoted(s, q, sizeof(q)));
		size_t k = 0;
		while (k < j->p->ntmp && strcmp(j->p->tmp[k], norm) != 0)
			k++;
		if (k < j->p->ntmp)
			continue; /* named twice: one directory */
		char why[512];
		why[0] = 0;
		int r = policy_add_tmp(j->p, norm, why, sizeof(why));
		if (r < 0)
			return fail(j, at, key, r, "%s", why[0] ? why : strerror(-r));
	}
	return 0;
}

static int load_cwd(struct pj *j, const json_t *v, size_t pos)
{
	char q[80], why[512];
	if (!json_is_string(v))
		return wrong_type(j, pos, "cwd", v, "an absolute guest path");
	const char *s = json_string_value(v);
	if (s[0] != '/')
		return fail(j, pos, "cwd", -EINVAL, "%s is not an absolute guest path",
			    quoted(s, q, sizeof(q)));
	why[0] = 0;
	int r = policy_set_cwd(j->p, s, why, sizeof(why));
	if (r < 0)
		return fail(j, pos, "cwd", r, "%s", why[0] ? why : strerror(-r));
	return 0;
}

static int valid_env_name(const char *k)
{
	return *k && !strchr(k, '=');
}

static int set_env(struct pj *j, const char *k, const char *val, size_t pos, const char *key)
{
	size_t kl = strlen(k), vl = strlen(val);
	char *kv = malloc(kl + vl + 2);
	if (!kv)
		return fail(j, pos, key, -ENOMEM, "out of memory");
	memcpy(kv, k, kl);
	kv[kl] = '=';
	memcpy(kv + kl + 1, val, vl + 1);
	char why[512];
	why[0] = 0;
	int r = policy_set_env(j->p, kv, why, sizeof(why));
	free(kv);
	if (r < 0)
		return fail(j, pos, key, r, "%s", why[0] ? why : strerror(-r));
	return 0;
}

static int load_env(struct pj *j, const json_t *v, size_t pos)
{
	char key[96], q[80];
	const char *k;
	json_t *val;
	if (!json_is_object(v))
		return wrong_type(j, pos, "env", v, "an object of NAME: \"value\"");
	if (json_object_size(v) > PJ_MAX_ITEMS)
		return fail(j, pos, "env", -E2BIG, "more than %d variables", PJ_MAX_ITEMS);
	json_object_foreach((json_t *)v, k, val)
	{
		snprintf(key, sizeof(key), "env.%.80s", k);
		if (!valid_env_name(k))
			return fail(j, key_at(j, pos, k), "env", -EINVAL,
				    "%s is not a variable name", quoted(k, q, sizeof(q)));
		if (!json_is_string(val))
			return wrong_type(j, value_at(j, pos, k), key, val, "a string");
		int r = set_env(j, k, json_string_value(val), value_at(j, pos, k), key);
		if (r < 0)
			return r;
	}
	return 0;
}

static int load_env_pass(struct pj *j, const json_t *v, size_t pos)
{
	char key[32], q[80];
	size_t i;
	json_t *n;
	if (!json_is_array(v))
		return wrong_type(j, pos, "env_pass", v, "an array of variable names");
	if (json_array_size(v) > PJ_MAX_ITEMS)
		return fail(j, pos, "env_pass", -E2BIG, "more than %d names", PJ_MAX_ITEMS);
	json_array_foreach(v, i, n)
	{
		snprintf(key, sizeof(key), "env_pass[%zu]", i);
		size_t at = element_at(j, pos, i);
		if (!json_is_string(n))
			return wrong_type(j, at, key, n, "a variable name");
		const char *name = json_string_value(n);
		if (!valid_env_name(name))
			return fail(j, at, key, -EINVAL, "%s is not a variable name",
				    quoted(name, q, sizeof(q)));
		const char *val = getenv(name);
		if (!val)
			continue; /* not set on the host: nothing to pass */
		int r = set_env(j, name, val, at, key);
		if (r < 0)
			return r;
	}
	return 0;
}

enum unit { U_SIZE, U_DURATION, U_COUNT };

/* Well-formed but out of range: the same text with its number replaced by 1 parses. */
static int too_large(const char *s, enum unit u)
{
	size_t d = strspn(s, "0123456789");
	char one[32];
	uint64_t x;
	if (d == 0 || strlen(s + d) >= sizeof(one) - 1)
		return 0;
	snprintf(one, sizeof(one), "1%s", s + d);
	return (u == U_SIZE ? policy_parse_size(one, &x) : policy_parse_duration(one, &x)) == 0;
}

/* One limit: a string in the unit's syntax or a non-negative JSON integer (bytes, seconds,
 * a count). */
static int load_limit(const struct pj *j, const json_t *v, size_t pos, const char *key, enum unit u,
		      uint64_t *out)
{
	static const char *const want[] = {
	    [U_SIZE] = "a size such as \"256M\" or a number of bytes",
	    [U_DURATION] = "a duration such as \"10s\" or a number of seconds",
	    [U_COUNT] = "a whole number",
	};
	char q[80];
	if (json_is_integer(v)) {
		json_int_t n = json_integer_value(v);
		if (n < 0)
			return fail(j, pos, key, -EINVAL, "%lld is negative", (long long)n);
		uint64_t x = (uint64_t)n;
		if (u == U_DURATION) {
			if (x > UINT64_MAX / 1000)
				return fail(j, pos, key, -ERANGE, "%lld seconds is too long",
					    (long long)n);
			x *= 1000;
		}
		*out = x;
		return 0;
	}
	if (!json_is_string(v))
		return wrong_type(j, pos, key, v, want[u]);
	const char *s = json_string_value(v);
	int r = -EINVAL;
	/* The shared parsers are strtoull-based: insist on a leading digit so that " 5", "+5"
	 * and "-5" are refused here as they are in JSON numbers. */
	if (s[0] >= '0' && s[0] <= '9') {
		if (u == U_SIZE)
			r = policy_parse_size(s, out);
		else if (u == U_DURATION)
			r = policy_parse_duration(s, out);
		else if (strspn(s, "0123456789") == strlen(s))
			r = policy_parse_size(s, out);
	}
	if (r == 0)
		return 0;
	if (u != U_COUNT && too_large(s, u))
		return fail(j, pos, key, -ERANGE, "%s is too large", quoted(s, q, sizeof(q)));
	if (u == U_SIZE)
		return fail(j, pos, key, -EINVAL, "%s is not a size (use 4096, 64K, 256M, 1G)",
			    quoted(s, q, sizeof(q)));
	if (u == U_DURATION)
		return fail(j, pos, key, -EINVAL, "%s is not a duration (use 30s, 500ms, 2m)",
			    quoted(s, q, sizeof(q)));
	return fail(j, pos, key, -EINVAL, "%s is not a whole number", quoted(s, q, sizeof(q)));
}

static int load_limits(struct pj *j, const json_t *v, size_t pos)
{
	static const char *const known[] = {"memory",	 "cpu_time",  "timeout", "max_output",
					    "max_write", "max_files", NULL};
	struct policy_limits *l = &j->p->lim;
	const struct {
		const char *name;
		enum unit u;
		uint64_t *dst;
	} tab[] = {
	    {"memory", U_SIZE, &l->mem},	  {"cpu_time", U_DURATION, &l->cpu_ms},
	    {"timeout", U_DURATION, &l->wall_ms}, {"max_output", U_SIZE, &l->max_output},
	    {"max_write", U_SIZE, &l->max_write}, {"max_files", U_COUNT, &l->max_files},
	};
	if (!json_is_object(v))
		return wrong_type(j, pos, "limits", v, "an object");
	int r = check_keys(j, v, pos, "limits", known,
			   "memory, cpu_time, timeout, max_output, max_write, max_files");
	if (r < 0)
		return r;
	/* Check all before setting any, so that a bad file leaves the limits as they were. */
	uint64_t val[sizeof(tab) / sizeof(tab[0])];
	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		const json_t *x = json_object_get(v, tab[i].name);
		char key[32];
		val[i] = *tab[i].dst;
		if (!x)
			continue;
		snprintf(key, sizeof(key), "limits.%s", tab[i].name);
		r = load_limit(j, x, value_at(j, pos, tab[i].name), key, tab[i].u, &val[i]);
		if (r < 0)
			return r;
	}
	size_t mf = sizeof(tab) / sizeof(tab[0]) - 1; /* max_files, as --max-files checks it */
	if (json_object_get(v, "max_files") && val[mf] &&
	    (val[mf] < PJ_MIN_FILES || val[mf] > PJ_MAX_FILES))
		return fail(j, value_at(j, pos, "max_files"), "limits.max_files", -EINVAL,
			    "%llu is not between %d and %d", (unsigned long long)val[mf],
			    PJ_MIN_FILES, PJ_MAX_FILES);
	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		*tab[i].dst = val[i];
	return 0;
}

static int load_root(struct pj *j, const json_t *root, size_t pos)
{
	static const char *const known[] = {"version",	"mounts", "tmp",    "cwd", "env",
					    "env_pass", "stdin",  "limits", NULL};
	if (!json_is_object(root))
		return fail(j, pos, NULL, -EINVAL, "a policy is a JSON object, not %s", kind(root));
	const json_t *v = json_object_get(root, "version");
	if (v && !json_is_integer(v))
		return wrong_type(j, value_at(j, pos, "version"), "version", v, "the integer 1");
	if (v && json_integer_value(v) != 1)
		return fail(j, value_at(j, pos, "version"), "version", -EINVAL,
			    "%lld is not supported (this sandbox reads version 1)",
			    (long long)json_integer_value(v));
	int r = check_keys(j, root, pos, NULL, known,
			   "version, mounts, tmp, cwd, env, env_pass, stdin, limits");
	if (r < 0)
		return r;

	/* A fixed order, whatever the file's: env after env_pass, so that a value written in the
	 * file wins over the host's. */
	if ((v = json_object_get(root, "mounts")) &&
	    (r = load_mounts(j, v, value_at(j, pos, "mounts"))) < 0)
		return r;
	if ((v = json_object_get(root, "tmp")) && (r = load_tmp(j, v, value_at(j, pos, "tmp"))) < 0)
		return r;
	if ((v = json_object_get(root, "cwd")) && (r = load_cwd(j, v, value_at(j, pos, "cwd"))) < 0)
		return r;
	if ((v = json_object_get(root, "env_pass")) &&
	    (r = load_env_pass(j, v, value_at(j, pos, "env_pass"))) < 0)
		return r;
	if ((v = json_object_get(root, "env")) && (r = load_env(j, v, value_at(j, pos, "env"))) < 0)
		return r;
	if ((v = json_object_get(root, "stdin"))) {
		if (!json_is_boolean(v))
			return wrong_type(j, value_at(j, pos, "stdin"), "stdin", v,
					  "true or false");
		j->p->no_stdin = json_is_false(v);
	}
	if ((v = json_object_get(root, "limits")) &&
	    (r = load_limits(j, v, value_at(j, pos, "limits"))) < 0)
		return r;
	return 0;
}

/* Refuses deep nesting before jansson recurses into it. Strings are skipped; anything else
 * malformed is left for jansson to report. */
static int check_depth(const struct pj *j)
{
	size_t depth = 0;
	for (size_t i = 0; i < j->len; i++) {
		char c = j->text[i];
		if (c == '"') {
			i = skip_string(j, i) - 1;
		} else if (c == '{' || c == '[') {
			if (++depth > PJ_MAX_DEPTH)
				return fail(j, i, NULL, -EINVAL, "nested more than %d levels deep",
					    PJ_MAX_DEPTH);
		} else if ((c == '}' || c == ']') && depth) {
			depth--;
		}
	}
	return 0;
}

int policy_load_json_text(struct policy *p, const char *text, size_t len, const char *name,
			  char *err, size_t errlen)
{
	struct pj j = {
	    .p = p,
	    .text = text,
	    .len = len,
	    .name = name ? name : "policy",
	    .err = err,
	    .errlen = err ? errlen : 0,
	};
	if (len > PJ_MAX_BYTES) {
		snprintf(err, j.errlen, "%s: %zu bytes is over the %u-byte limit for a policy",
			 j.name, len, PJ_MAX_BYTES);
		if (err && errlen)
			one_line(err);
		return -EFBIG;
	}
	int r = check_depth(&j);
	if (r < 0)
		return r;

	json_error_t je;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!root) {
		snprintf(err, j.errlen, "%s:%d:%d: %s", j.name, je.line > 0 ? je.line : 1,
			 je.column > 0 ? je.column : 1, je.text);
		if (err && errlen)
			one_line(err);
		return -EINVAL;
	}
	r = load_root(&j, root, skip_ws(&j, 0));
	json_decref(root);
	return r;
}

int policy_load_json(struct policy *p, const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > PJ_MAX_BYTES) {
		snprintf(err, errlen, "%s: %lld bytes is over the %u-byte limit for a policy", path,
			 (long long)st.st_size, PJ_MAX_BYTES);
		close(fd);
		return -EFBIG;
	}
	/* Read one byte past the limit, so that a pipe or a growing file is caught too. */
	char *buf = malloc(PJ_MAX_BYTES + 1);
	if (!buf) {
		close(fd);
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	size_t len = 0;
	while (len < PJ_MAX_BYTES + 1) {
		ssize_t n = read(fd, buf + len, PJ_MAX_BYTES + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			snprintf(err, errlen, "%s: %s", path, strerror(e));
			free(buf);
			close(fd);
			return -e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	int r;
	if (len > PJ_MAX_BYTES) {
		snprintf(err, errlen, "%s: more than %u bytes is over the limit for a policy", path,
			 PJ_MAX_BYTES);
		r = -EFBIG;
	} else {
		r = policy_load_json_text(p, buf, len, path, err, errlen);
	}
	free(buf);
	return r;
}

/* ---- writing ------------------------------------------------------------------------------ */

/* A JSON integer where it fits, digits in a string (which the loader reads too) where not. */
static json_t *count_json(uint64_t v)
{
	char buf[32];
	if (v <= INT64_MAX)
		return json_integer((json_int_t)v);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	return json_string(buf);
}

/* Exact human units where there are some: 268435456 -> "256M", 4097 -> 4097. */
static json_t *size_json(uint64_t v)
{
	static const struct {
		char c;
		unsigned shift;
	} units[] = {{'G', 30}, {'M', 20}, {'K', 10}};
	char buf[32];
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (v % (1ull << units[i].shift) == 0) {
			snprintf(buf, sizeof(buf), "%llu%c",
				 (unsigned long long)(v >> units[i].shift), units[i].c);
			return json_string(buf);
		}
	}
	return count_json(v);
}

static json_t *duration_json(uint64_t ms)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}};
	char buf[32];
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (ms % units[i].ms == 0) {
			snprintf(buf, sizeof(buf), "%llu%s", (unsigned long long)(ms / units[i].ms),
				 units[i].unit);
			return json_string(buf);
		}
	}
	snprintf(buf, sizeof(buf), "%llums", (unsigned long long)ms);
	return json_string(buf);
}

/* Sets obj[key] = v, taking v; a NULL v (allocation or UTF-8 failure) is remembered in *rc. */
static void put(json_t *obj, const char *key, json_t *v, int *rc)
{
	if (!v) {
		*rc = -EILSEQ;
		return;
	}
	if (json_object_set_new(obj, key, v) < 0)
		*rc = -ENOMEM;
}

static void append(json_t *arr, json_t *v, int *rc)
{
	if (!v) {
		*rc = -EILSEQ;
		return;
	}
	if (json_array_append_new(arr, v) < 0)
		*rc = -ENOMEM;
}

/* Mounts made by policy_make_tmp are written as the "tmp" entry they came from. */
static int is_tmp_mount(const struct policy *p, const struct policy_mount *m)
{
	for (size_t i = 0; i < p->ntmp_host && i < p->ntmp; i++)
		if (strcmp(p->tmp[i], m->guest) == 0)
			return 1;
	return 0;
}

static json_t *policy_to_json(const struct policy *p, int *rc)
{
	json_t *root = json_object();
	if (!root) {
		*rc = -ENOMEM;
		return NULL;
	}
	put(root, "version", json_integer(1), rc);

	json_t *mounts = json_array();
	put(root, "mounts", mounts, rc);
	for (size_t i = 0; *rc == 0 && i < p->nmounts; i++) {
		const struct policy_mount *m = &p->mounts[i];
		if (is_tmp_mount(p, m))
			continue;
		json_t *o = json_object();
		append(mounts, o, rc);
		if (*rc)
			break;
		put(o, "host", json_string(m->host), rc);
		put(o, "guest", json_string(m->guest), rc);
		put(o, "mode", json_string(m->rw ? "rw" : "ro"), rc);
	}

	if (p->ntmp) {
		json_t *tmp = json_array();
		put(root, "tmp", tmp, rc);
		for (size_t i = 0; *rc == 0 && i < p->ntmp; i++)
			append(tmp, json_string(p->tmp[i]), rc);
	}
	if (p->cwd)
		put(root, "cwd", json_string(p->cwd), rc);

	json_t *env = json_object();
	put(root, "env", env, rc);
	for (size_t i = 0; *rc == 0 && i < p->nenv; i++) {
		const char *eq = strchr(p->env[i], '=');
		if (!eq)
			continue; /* policy_set_env never stores one */
		char *k = strndup(p->env[i], (size_t)(eq - p->env[i]));
		if (!k) {
			*rc = -ENOMEM;
			break;
		}
		put(env, k, json_string(eq + 1), rc);
		free(k);
	}
	put(root, "stdin", json_boolean(!p->no_stdin), rc);

	const struct policy_limits *l = &p->lim;
	if (l->mem || l->cpu_ms || l->wall_ms || l->max_output || l->max_write || l->max_files) {
		json_t *lim = json_object();
		put(root, "limits", lim, rc);
		if (*rc)
			return root;
		if (l->mem)
			put(lim, "memory", size_json(l->mem), rc);
		if (l->cpu_ms)
			put(lim, "cpu_time", duration_json(l->cpu_ms), rc);
		if (l->wall_ms)
			put(lim, "timeout", duration_json(l->wall_ms), rc);
		if (l->max_output)
			put(lim, "max_output", size_json(l->max_output), rc);
		if (l->max_write)
			put(lim, "max_write", size_json(l->max_write), rc);
		if (l->max_files)
			put(lim, "max_files", count_json(l->max_files), rc);
	}
	return root;
}

int policy_write_json(const struct policy *p, FILE *out)
{
	int rc = 0;
	json_t *root = policy_to_json(p, &rc);
	if (rc == 0 && json_dumpf(root, out, JSON_INDENT(2) | JSON_SORT_KEYS) < 0)
		rc = -EIO;
	if (rc == 0 && fputc('\n', out) == EOF)
		rc = -EIO;
	if (rc == 0 && fflush(out) == EOF)
		rc = -EIO;
	json_decref(root);
	return rc;
}
