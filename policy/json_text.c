/* Where keys and values stand in a policy's text, and the messages that name them (json.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "json.h"

/* ---- positions ---------------------------------------------------------------------------- */

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

size_t pj_skip_ws(const struct pj *j, size_t i)
{
	while (i < j->len && is_ws(j->text[i]))
		i++;
	return i;
}

/* i at an opening quote; returns the offset just past the closing one. */
size_t pj_skip_string(const struct pj *j, size_t i)
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
			i = pj_skip_string(j, i);
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

/* After the value at i: the offset of the next member or element, or 0 at the end. */
static size_t next_item(const struct pj *j, size_t i)
{
	i = pj_skip_ws(j, skip_value(j, i));
	if (i >= j->len || j->text[i] != ',')
		return 0;
	return pj_skip_ws(j, i + 1);
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
	size_t i = pj_skip_ws(j, obj + 1);
	while (i && i < j->len && j->text[i] == '"') {
		size_t k = i, e = pj_skip_string(j, i);
		i = pj_skip_ws(j, e);
		if (i >= j->len || j->text[i] != ':')
			return;
		i = pj_skip_ws(j, i + 1);
		if (key_matches(j, k, e, key)) {
			*kpos = k;
			*vpos = i;
			return;
		}
		i = next_item(j, i);
	}
}

size_t pj_value_at(const struct pj *j, size_t obj, const char *key)
{
	size_t k, v;
	member_at(j, obj, key, &k, &v);
	return v;
}

size_t pj_key_at(const struct pj *j, size_t obj, const char *key)
{
	size_t k, v;
	member_at(j, obj, key, &k, &v);
	return k;
}

size_t pj_element_at(const struct pj *j, size_t arr, size_t idx)
{
	if (arr >= j->len || j->text[arr] != '[')
		return arr;
	size_t i = pj_skip_ws(j, arr + 1);
	for (size_t n = 0; n < idx && i; n++)
		i = next_item(j, i);
	return i && i < j->len ? i : arr;
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

/* ---- messages ----------------------------------------------------------------------------- */

/* Messages are one line whatever the file held. */
void pj_one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

int pj_fail(const struct pj *j, size_t pos, const char *key, int rc, const char *fmt, ...)
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
		pj_one_line(j->err);
	return rc;
}

int pj_applied(const struct pj *j, size_t pos, const char *key, int r, const char *why)
{
	if (r >= 0)
		return 0;
	return pj_fail(j, pos, key, r, "%s", why[0] ? why : strerror(-r));
}

const char *pj_quoted(const char *s, char *buf, size_t n)
{
	size_t l = strlen(s);
	if (l + 3 <= n)
		snprintf(buf, n, "\"%s\"", s);
	else
		snprintf(buf, n, "\"%.*s...\"", (int)(n > 6 ? n - 6 : 0), s);
	return buf;
}

const char *pj_kind(const json_t *v)
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

int pj_wrong_type(const struct pj *j, size_t pos, const char *key, const json_t *v,
		  const char *want)
{
	return pj_fail(j, pos, key, -EINVAL, "expected %s, not %s", want, pj_kind(v));
}

int pj_check_keys(const struct pj *j, const json_t *obj, size_t pos, const char *prefix,
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
			return pj_fail(j, pj_key_at(j, pos, k), prefix, -EINVAL,
				       "unknown key %s (expected %s)", pj_quoted(k, q, sizeof(q)),
				       list);
		}
	}
	return 0;
}
