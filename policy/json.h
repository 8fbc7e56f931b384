/* Inside policy/: reusable policies as JSON (docs/policy.md). jansson checks the syntax and
 * builds the tree; json_schema.c checks the schema and applies it through the same functions
 * the command line uses, so a file and the equivalent flags give the same policy. jansson keeps
 * no positions for keys and values, so json_text.c finds them again in the text when an error
 * needs one: by then the text is known to be valid JSON, so walking an object member by member
 * is exact. json_load.c reads a file, json_write.c writes the schema back. */
#ifndef SBX_POLICY_JSON_H
#define SBX_POLICY_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "policy_int.h"

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

/* The limits, in the schema's order: json_schema.c reads them, json_write.c writes them. */
enum pj_unit { PJ_SIZE, PJ_DURATION, PJ_COUNT };
struct pj_limit {
	const char *name;
	enum pj_unit unit;
	size_t off; /* of the uint64_t in struct policy_limits */
};
extern const struct pj_limit pj_limits[];
#define PJ_NLIMITS 6

/* json_text.c: positions. The offset just past the white space, string or value at i. */
size_t pj_skip_ws(const struct pj *j, size_t i);
size_t pj_skip_string(const struct pj *j, size_t i);
/* The value and the key of member `key` of the object whose '{' is at obj, and element idx of
 * the array whose '[' is at arr; each falls back to the object or array itself. */
size_t pj_value_at(const struct pj *j, size_t obj, const char *key);
size_t pj_key_at(const struct pj *j, size_t obj, const char *key);
size_t pj_element_at(const struct pj *j, size_t arr, size_t idx);

/* json_text.c: messages. "NAME:LINE:COL: KEY: message" into j->err, one line; returns rc. */
int pj_fail(const struct pj *j, size_t pos, const char *key, int rc, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* What a policy_* call said: 0, or its message (or errno's) at pos. */
int pj_applied(const struct pj *j, size_t pos, const char *key, int r, const char *why);
int pj_wrong_type(const struct pj *j, size_t pos, const char *key, const json_t *v,
		  const char *want);
/* Every key of obj must be in the NULL-terminated `known` (listed in `list` for the message). */
int pj_check_keys(const struct pj *j, const json_t *obj, size_t pos, const char *prefix,
		  const char *const *known, const char *list);
/* A string for a message: quoted, cut short if long. */
const char *pj_quoted(const char *s, char *buf, size_t n);
/* "a string", "an object"... */
const char *pj_kind(const json_t *v);
/* Control characters become '?'. */
void pj_one_line(char *s);

/* json_schema.c: applies a parsed policy whose text starts at pos. */
int pj_load_root(struct pj *j, const json_t *root, size_t pos);

#endif
