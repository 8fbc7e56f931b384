/* The schema of a JSON policy (docs/policy.md), checked piece by piece and applied through the
 * functions the command line uses (json.h). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

const struct pj_limit pj_limits[PJ_NLIMITS] = {
    {"memory", PJ_SIZE, offsetof(struct policy_limits, mem)},
    {"cpu_time", PJ_DURATION, offsetof(struct policy_limits, cpu_ms)},
    {"timeout", PJ_DURATION, offsetof(struct policy_limits, wall_ms)},
    {"max_output", PJ_SIZE, offsetof(struct policy_limits, max_output)},
    {"max_write", PJ_SIZE, offsetof(struct policy_limits, max_write)},
    {"max_files", PJ_COUNT, offsetof(struct policy_limits, max_files)},
};

/* A string that must be an absolute guest path: 0 with *s set, or the message. */
static int guest_path(const struct pj *j, const json_t *v, size_t pos, const char *key,
		      const char **s)
{
	char q[80];
	if (!json_is_string(v))
		return pj_wrong_type(j, pos, key, v, "an absolute guest path");
	*s = json_string_value(v);
	if ((*s)[0] != '/')
		return pj_fail(j, pos, key, -EINVAL, "%s is not an absolute guest path",
			       pj_quoted(*s, q, sizeof(q)));
	return 0;
}

static int env_name(const struct pj *j, const char *name, size_t pos, const char *key)
{
	char q[80];
	if (policy_valid_env_name(name))
		return 0;
	return pj_fail(j, pos, key, -EINVAL, "%s is not a variable name",
		       pj_quoted(name, q, sizeof(q)));
}

/* An array of at most PJ_MAX_ITEMS `noun`, each applied by `item` as "name[i]". */
typedef int (*item_fn)(struct pj *j, const json_t *v, size_t pos, const char *key);
static int load_array(struct pj *j, const json_t *v, size_t pos, const char *name, const char *want,
		      const char *noun, item_fn item)
{
	char key[32];
	size_t i;
	json_t *x;
	if (!json_is_array(v))
		return pj_wrong_type(j, pos, name, v, want);
	if (json_array_size(v) > PJ_MAX_ITEMS)
		return pj_fail(j, pos, name, -E2BIG, "more than %d %s", PJ_MAX_ITEMS, noun);
	json_array_foreach(v, i, x)
	{
		snprintf(key, sizeof(key), "%s[%zu]", name, i);
		int r = item(j, x, pj_element_at(j, pos, i), key);
		if (r < 0)
			return r;
	}
	return 0;
}

/* "host" (required, no ':'), "guest" (absolute, default host), "mode" ("ro" or "rw"). */
static int mount_host(const struct pj *j, const json_t *host, size_t pos, const char *key,
		      const char **h)
{
	char sub[64], q[80];
	snprintf(sub, sizeof(sub), "%s.host", key);
	if (!json_is_string(host))
		return pj_wrong_type(j, pos, sub, host, "a host path");
	*h = json_string_value(host);
	if (!**h || strchr(*h, ':'))
		return pj_fail(j, pos, sub, -EINVAL,
			       "%s: expected a non-empty host path without ':'",
			       pj_quoted(*h, q, sizeof(q)));
	return 0;
}

static int mount_mode(const struct pj *j, const json_t *mode, size_t pos, const char *key, int *rw)
{
	char sub[64], q[80];
	snprintf(sub, sizeof(sub), "%s.mode", key);
	if (!json_is_string(mode))
		return pj_wrong_type(j, pos, sub, mode, "\"ro\" or \"rw\"");
	const char *s = json_string_value(mode);
	if (strcmp(s, "ro") != 0 && strcmp(s, "rw") != 0)
		return pj_fail(j, pos, sub, -EINVAL, "%s is not a mode (use \"ro\" or \"rw\")",
			       pj_quoted(s, q, sizeof(q)));
	*rw = s[1] == 'w';
	return 0;
}

static int load_mount(struct pj *j, const json_t *m, size_t pos, const char *key)
{
	static const char *const known[] = {"host", "guest", "mode", NULL};
	if (!json_is_object(m))
		return pj_wrong_type(j, pos, key, m, "an object {\"host\", \"guest\", \"mode\"}");
	int r = pj_check_keys(j, m, pos, key, known, "host, guest, mode");
	if (r < 0)
		return r;
	const json_t *host = json_object_get(m, "host");
	const json_t *guest = json_object_get(m, "guest");
	const json_t *mode = json_object_get(m, "mode");
	if (!host)
		return pj_fail(j, pos, key, -EINVAL, "a mount needs \"host\"");
	const char *h = NULL, *g = NULL;
	int rw = 0;
	char sub[64];
	snprintf(sub, sizeof(sub), "%s.guest", key);
	if ((r = mount_host(j, host, pj_value_at(j, pos, "host"), key, &h)) < 0 ||
	    (guest && (r = guest_path(j, guest, pj_value_at(j, pos, "guest"), sub, &g)) < 0) ||
	    (mode && (r = mount_mode(j, mode, pj_value_at(j, pos, "mode"), key, &rw)) < 0))
		return r;
	char *spec = policy_join(h, ':', guest ? g : h);
	if (!spec)
		return pj_fail(j, pos, key, -ENOMEM, "out of memory");
	char why[512] = "";
	r = policy_add_mount(j->p, spec, rw, why, sizeof(why));
	free(spec);
	return pj_applied(j, pos, key, r, why);
}

static int load_tmp(struct pj *j, const json_t *t, size_t pos, const char *key)
{
	char q[80], why[512] = "", norm[POLICY_PATH_MAX];
	const char *s = NULL;
	int r = guest_path(j, t, pos, key, &s);
	if (r < 0)
		return r;
	if (policy_normalize("/", s, strlen(s), norm, sizeof(norm)) < 0)
		return pj_fail(j, pos, key, -EINVAL, "%s is not an absolute guest path",
			       pj_quoted(s, q, sizeof(q)));
	for (size_t k = 0; k < j->p->ntmp; k++)
		if (strcmp(j->p->tmp[k], norm) == 0)
			return 0; /* named twice: one directory */
	return pj_applied(j, pos, key, policy_add_tmp(j->p, norm, why, sizeof(why)), why);
}

static int load_cwd(struct pj *j, const json_t *v, size_t pos)
{
	char why[512] = "";
	const char *s = NULL;
	int r = guest_path(j, v, pos, "cwd", &s);
	if (r < 0)
		return r;
	return pj_applied(j, pos, "cwd", policy_set_cwd(j->p, s, why, sizeof(why)), why);
}

static int load_env(struct pj *j, const json_t *v, size_t pos)
{
	char key[96], why[512] = "";
	const char *k;
	json_t *val;
	if (!json_is_object(v))
		return pj_wrong_type(j, pos, "env", v, "an object of NAME: \"value\"");
	if (json_object_size(v) > PJ_MAX_ITEMS)
		return pj_fail(j, pos, "env", -E2BIG, "more than %d variables", PJ_MAX_ITEMS);
	json_object_foreach((json_t *)v, k, val)
	{
		snprintf(key, sizeof(key), "env.%.80s", k);
		size_t at = pj_value_at(j, pos, k);
		int r = env_name(j, k, pj_key_at(j, pos, k), "env");
		if (r < 0)
			return r;
		if (!json_is_string(val))
			return pj_wrong_type(j, at, key, val, "a string");
		char *kv = policy_join(k, '=', json_string_value(val));
		if (!kv)
			return pj_fail(j, at, key, -ENOMEM, "out of memory");
		r = policy_set_env(j->p, kv, why, sizeof(why));
		free(kv);
		if ((r = pj_applied(j, at, key, r, why)) < 0)
			return r;
	}
	return 0;
}

static int load_env_pass(struct pj *j, const json_t *n, size_t pos, const char *key)
{
	char why[512] = "";
	if (!json_is_string(n))
		return pj_wrong_type(j, pos, key, n, "a variable name");
	const char *name = json_string_value(n);
	int r = env_name(j, name, pos, key);
	if (r < 0)
		return r;
	return pj_applied(j, pos, key, policy_pass_env(j->p, name, why, sizeof(why)), why);
}

/* What a limit of each unit looks like, for the messages. */
static const struct {
	const char *want, *not ;
} unit_text[] = {
    [PJ_SIZE] = {"a size such as \"256M\" or a number of bytes",
		 "is not a size (use 4096, 64K, 256M, 1G)"},
    [PJ_DURATION] = {"a duration such as \"10s\" or a number of seconds",
		     "is not a duration (use 30s, 500ms, 2m)"},
    [PJ_COUNT] = {"a whole number", "is not a whole number"},
};

/* The shared parsers take digits first: " 5", "+5" and "-5" are refused here as they are in
 * JSON numbers. */
static int parse_unit(const char *s, enum pj_unit u, uint64_t *out)
{
	if (u == PJ_DURATION)
		return policy_parse_duration(s, out);
	if (u == PJ_COUNT && strspn(s, "0123456789") != strlen(s))
		return -EINVAL;
	return policy_parse_size(s, out);
}

/* Well-formed but out of range: the same text with its number replaced by 1 parses. */
static int too_large(const char *s, enum pj_unit u)
{
	size_t d = strspn(s, "0123456789");
	char one[32];
	uint64_t x;
	if (u == PJ_COUNT || d == 0 || strlen(s + d) >= sizeof(one) - 1)
		return 0;
	snprintf(one, sizeof(one), "1%s", s + d);
	return parse_unit(one, u, &x) == 0;
}

/* A limit as a JSON integer: bytes, seconds or a count. */
static int limit_integer(const struct pj *j, const json_t *v, size_t pos, const char *key,
			 enum pj_unit u, uint64_t *out)
{
	json_int_t n = json_integer_value(v);
	if (n < 0)
		return pj_fail(j, pos, key, -EINVAL, "%lld is negative", (long long)n);
	uint64_t x = (uint64_t)n;
	if (u == PJ_DURATION) {
		if (x > UINT64_MAX / 1000)
			return pj_fail(j, pos, key, -ERANGE, "%lld seconds is too long",
				       (long long)n);
		x *= 1000;
	}
	*out = x;
	return 0;
}

/* One limit: a string in the unit's syntax, or a non-negative JSON integer (bytes, seconds, a
 * count). */
static int load_limit(const struct pj *j, const json_t *v, size_t pos, const char *key,
		      enum pj_unit u, uint64_t *out)
{
	char q[80];
	if (json_is_integer(v))
		return limit_integer(j, v, pos, key, u, out);
	if (!json_is_string(v))
		return pj_wrong_type(j, pos, key, v, unit_text[u].want);
	const char *s = json_string_value(v);
	if (parse_unit(s, u, out) == 0)
		return 0;
	if (too_large(s, u))
		return pj_fail(j, pos, key, -ERANGE, "%s is too large", pj_quoted(s, q, sizeof(q)));
	return pj_fail(j, pos, key, -EINVAL, "%s %s", pj_quoted(s, q, sizeof(q)),
		       unit_text[u].not );
}

static int load_limits(struct pj *j, const json_t *v, size_t pos)
{
	static const char *const known[] = {"memory",	 "cpu_time",  "timeout", "max_output",
					    "max_write", "max_files", NULL};
	if (!json_is_object(v))
		return pj_wrong_type(j, pos, "limits", v, "an object");
	int r = pj_check_keys(j, v, pos, "limits", known,
			      "memory, cpu_time, timeout, max_output, max_write, max_files");
	if (r < 0)
		return r;
	/* Check all before setting any, so that a bad file leaves the limits as they were. */
	struct policy_limits val = j->p->lim;
	for (size_t i = 0; i < PJ_NLIMITS; i++) {
		const json_t *x = json_object_get(v, pj_limits[i].name);
		char key[32];
		if (!x)
			continue;
		snprintf(key, sizeof(key), "limits.%s", pj_limits[i].name);
		r = load_limit(j, x, pj_value_at(j, pos, pj_limits[i].name), key, pj_limits[i].unit,
			       (uint64_t *)((char *)&val + pj_limits[i].off));
		if (r < 0)
			return r;
	}
	/* max_files, as --max-files checks it */
	if (json_object_get(v, "max_files") && val.max_files &&
	    (val.max_files < PJ_MIN_FILES || val.max_files > PJ_MAX_FILES))
		return pj_fail(j, pj_value_at(j, pos, "max_files"), "limits.max_files", -EINVAL,
			       "%llu is not between %d and %d", (unsigned long long)val.max_files,
			       PJ_MIN_FILES, PJ_MAX_FILES);
	j->p->lim = val;
	return 0;
}

static int load_stdin(struct pj *j, const json_t *v, size_t pos)
{
	if (!json_is_boolean(v))
		return pj_wrong_type(j, pos, "stdin", v, "true or false");
	j->p->no_stdin = json_is_false(v);
	return 0;
}

static int load_dev(struct pj *j, const json_t *v, size_t pos)
{
	if (!json_is_boolean(v))
		return pj_wrong_type(j, pos, "dev", v, "true or false");
	j->p->no_dev = json_is_false(v);
	return 0;
}

static int load_libs(struct pj *j, const json_t *v, size_t pos)
{
	if (!json_is_boolean(v))
		return pj_wrong_type(j, pos, "libs", v, "true or false");
	j->p->no_libs = json_is_false(v);
	return 0;
}

static int load_version(struct pj *j, const json_t *v, size_t pos)
{
	if (!json_is_integer(v))
		return pj_wrong_type(j, pos, "version", v, "the integer 1");
	if (json_integer_value(v) != 1)
		return pj_fail(j, pos, "version", -EINVAL,
			       "%lld is not supported (this sandbox reads version 1)",
			       (long long)json_integer_value(v));
	return 0;
}

static int load_mounts(struct pj *j, const json_t *v, size_t pos)
{
	return load_array(j, v, pos, "mounts", "an array of mounts", "mounts", load_mount);
}

static int load_tmps(struct pj *j, const json_t *v, size_t pos)
{
	return load_array(j, v, pos, "tmp", "an array of guest paths", "paths", load_tmp);
}

static int load_env_passes(struct pj *j, const json_t *v, size_t pos)
{
	return load_array(j, v, pos, "env_pass", "an array of variable names", "names",
			  load_env_pass);
}

int pj_load_root(struct pj *j, const json_t *root, size_t pos)
{
	static const char *const known[] = {"version", "mounts",   "tmp",   "cwd",
					    "env",     "env_pass", "stdin", "dev",
					    "libs",    "limits",   NULL};
	/* A fixed order, whatever the file's: env after env_pass, so that a value written in the
	 * file wins over the host's. */
	static const struct {
		const char *key;
		int (*load)(struct pj *j, const json_t *v, size_t pos);
	} pieces[] = {
	    {"mounts", load_mounts}, {"tmp", load_tmps},
	    {"cwd", load_cwd},	     {"env_pass", load_env_passes},
	    {"env", load_env},	     {"stdin", load_stdin},
	    {"dev", load_dev},	     {"libs", load_libs},
	    {"limits", load_limits},
	};
	if (!json_is_object(root))
		return pj_fail(j, pos, NULL, -EINVAL, "a policy is a JSON object, not %s",
			       pj_kind(root));
	const json_t *v = json_object_get(root, "version");
	int r = v ? load_version(j, v, pj_value_at(j, pos, "version")) : 0;
	if (r == 0)
		r = pj_check_keys(j, root, pos, NULL, known,
				  "version, mounts, tmp, cwd, env, env_pass, stdin, dev, limits");
	for (size_t i = 0; r == 0 && i < sizeof(pieces) / sizeof(pieces[0]); i++)
		if ((v = json_object_get(root, pieces[i].key)))
			r = pieces[i].load(j, v, pj_value_at(j, pos, pieces[i].key));
	return r;
}
