/* Loading a JSON policy from text or a file (json.h): the size and depth limits, jansson's
 * parse, then the schema (json_schema.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"

/* A message with no position; err may be NULL. */
__attribute__((format(printf, 4, 5))) static int refuse(char *err, size_t errlen, int rc,
							const char *fmt, ...)
{
	va_list ap;
	if (!err || !errlen)
		return rc;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	pj_one_line(err);
	return rc;
}

/* Refuses deep nesting before jansson recurses into it. Strings are skipped; anything else
 * malformed is left for jansson to report. */
static int check_depth(const struct pj *j)
{
	size_t depth = 0;
	for (size_t i = 0; i < j->len; i++) {
		char c = j->text[i];
		if (c == '"') {
			i = pj_skip_string(j, i) - 1;
		} else if (c == '{' || c == '[') {
			if (++depth > PJ_MAX_DEPTH)
				return pj_fail(j, i, NULL, -EINVAL,
					       "nested more than %d levels deep", PJ_MAX_DEPTH);
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
	if (len > PJ_MAX_BYTES)
		return refuse(err, errlen, -EFBIG,
			      "%s: %zu bytes is over the %u-byte limit for a policy", j.name, len,
			      PJ_MAX_BYTES);
	int r = check_depth(&j);
	if (r < 0)
		return r;
	json_error_t je;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!root)
		return refuse(err, errlen, -EINVAL, "%s:%d:%d: %s", j.name,
			      je.line > 0 ? je.line : 1, je.column > 0 ? je.column : 1, je.text);
	r = pj_load_root(&j, root, pj_skip_ws(&j, 0));
	json_decref(root);
	return r;
}

/* Up to PJ_MAX_BYTES + 1 bytes of fd: one past the limit, so that a pipe or a growing file is
 * caught too. */
static int read_capped(int fd, char *buf, size_t *len)
{
	*len = 0;
	while (*len < PJ_MAX_BYTES + 1) {
		ssize_t n = read(fd, buf + *len, PJ_MAX_BYTES + 1 - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		*len += (size_t)n;
	}
	return 0;
}

int policy_load_json(struct policy *p, const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		return refuse(err, errlen, -e, "%s: %s", path, strerror(e));
	}
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int r = 0;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > PJ_MAX_BYTES)
		r = refuse(err, errlen, -EFBIG,
			   "%s: %lld bytes is over the %u-byte limit for a policy", path,
			   (long long)st.st_size, PJ_MAX_BYTES);
	else if (!(buf = malloc(PJ_MAX_BYTES + 1)))
		r = refuse(err, errlen, -ENOMEM, "%s: out of memory", path);
	else if ((r = read_capped(fd, buf, &len)) < 0)
		r = refuse(err, errlen, r, "%s: %s", path, strerror(-r));
	else if (len > PJ_MAX_BYTES)
		r = refuse(err, errlen, -EFBIG,
			   "%s: more than %u bytes is over the limit for a policy", path,
			   PJ_MAX_BYTES);
	close(fd);
	if (r == 0)
		r = policy_load_json_text(p, buf, len, path, err, errlen);
	free(buf);
	return r;
}
