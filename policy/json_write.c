/* The effective policy as JSON (--print-policy), in the schema the loader reads (json.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* A JSON integer where it fits, digits in a string (which the loader reads too) where not. */
static json_t *count_json(uint64_t v)
{
	char buf[32];
	if (v <= INT64_MAX)
		return json_integer((json_int_t)v);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	return json_string(buf);
}

/* Exact human units where there are some: 268435456 -> "256M", 4097 -> 4097; 90000 ms ->
 * "90s", 1500 ms -> "1500ms". */
static json_t *limit_json(enum pj_unit u, uint64_t v)
{
	static const struct {
		enum pj_unit u;
		const char *name;
		uint64_t mul;
	} units[] = {{PJ_SIZE, "G", 1ull << 30}, {PJ_SIZE, "M", 1ull << 20},
		     {PJ_SIZE, "K", 1ull << 10}, {PJ_DURATION, "h", 3600000},
		     {PJ_DURATION, "m", 60000},	 {PJ_DURATION, "s", 1000},
		     {PJ_DURATION, "ms", 1}};
	char buf[32];
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (units[i].u == u && v % units[i].mul == 0) {
			snprintf(buf, sizeof(buf), "%llu%s", (unsigned long long)(v / units[i].mul),
				 units[i].name);
			return json_string(buf);
		}
	}
	return count_json(v);
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

static void put_mounts(json_t *root, const struct policy *p, int *rc)
{
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
}

static void put_env(json_t *root, const struct policy *p, int *rc)
{
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
}

/* Only the limits set (0 is "none"); no "limits" at all without one. */
static void put_limits(json_t *root, const struct policy *p, int *rc)
{
	json_t *lim = NULL;
	for (size_t i = 0; *rc == 0 && i < PJ_NLIMITS; i++) {
		uint64_t v = *(const uint64_t *)((const char *)&p->lim + pj_limits[i].off);
		if (!v)
			continue;
		if (!lim)
			put(root, "limits", lim = json_object(), rc);
		if (*rc == 0)
			put(lim, pj_limits[i].name, limit_json(pj_limits[i].unit, v), rc);
	}
}

static json_t *policy_to_json(const struct policy *p, int *rc)
{
	json_t *root = json_object();
	if (!root) {
		*rc = -ENOMEM;
		return NULL;
	}
	put(root, "version", json_integer(1), rc);
	put_mounts(root, p, rc);
	if (p->ntmp) {
		json_t *tmp = json_array();
		put(root, "tmp", tmp, rc);
		for (size_t i = 0; *rc == 0 && i < p->ntmp; i++)
			append(tmp, json_string(p->tmp[i]), rc);
	}
	if (p->cwd)
		put(root, "cwd", json_string(p->cwd), rc);
	put_env(root, p, rc);
	put(root, "stdin", json_boolean(!p->no_stdin), rc);
	put(root, "dev", json_boolean(!p->no_dev), rc);
	put(root, "libs", json_boolean(!p->no_libs), rc);
	put_limits(root, p, rc);
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
