/* JSON policies: the golden pass-* and fail-* fixtures in tests/data/policy, the positions in
 * error messages, the size cap, and the round trip load(write(p)) == p. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy.h"

#ifndef SBX_POLICY_DATA_DIR
#error "SBX_POLICY_DATA_DIR must name tests/data/policy"
#endif

/* ---- helpers ------------------------------------------------------------------------------ */

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	char *buf = NULL;
	size_t cap = 0, n = 0, got;
	do {
		if (n + 4096 + 1 > cap) {
			cap = (n + 4096 + 1) * 2;
			buf = realloc(buf, cap);
			cr_assert_not_null(buf);
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
	} while (got > 0);
	fclose(f);
	buf[n] = 0;
	if (len)
		*len = n;
	return buf;
}

static int load_str(struct policy *p, const char *text, char *err, size_t errlen)
{
	return policy_load_json_text(p, text, strlen(text), "t.json", err, errlen);
}

/* policy_write_json into a string. */
static char *dump(const struct policy *p)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	cr_assert_not_null(f);
	int r = policy_write_json(p, f);
	cr_assert_eq(r, 0, "policy_write_json: %s", strerror(-r));
	fclose(f);
	cr_assert(len > 0 && buf[len - 1] == '\n', "output must end in a newline");
	return buf;
}

static int env_has(const struct policy *p, const char *kv)
{
	for (size_t i = 0; i < p->nenv; i++)
		if (strcmp(p->env[i], kv) == 0)
			return 1;
	return 0;
}

static const char *env_get(const struct policy *p, const char *k)
{
	size_t kl = strlen(k);
	for (size_t i = 0; i < p->nenv; i++)
		if (strncmp(p->env[i], k, kl) == 0 && p->env[i][kl] == '=')
			return p->env[i] + kl + 1;
	return NULL;
}

static int str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Everything the loader can set, compared; the environment as a set (JSON objects are written
 * with sorted keys, so the order may change). */
static void assert_same_policy(const struct policy *a, const struct policy *b)
{
	cr_assert_eq(a->nmounts, b->nmounts);
	for (size_t i = 0; i < a->nmounts; i++) {
		const struct policy_mount *x = &a->mounts[i], *y = &b->mounts[i];
		cr_assert_str_eq(x->host, y->host);
		cr_assert_str_eq(x->guest, y->guest);
		cr_assert_eq(x->rw, y->rw, "%s", x->guest);
		cr_assert_eq(x->is_dir, y->is_dir, "%s", x->guest);
		cr_assert(str_eq(x->leaf, y->leaf), "%s", x->guest);
	}
	cr_assert(str_eq(a->cwd, b->cwd), "cwd %s vs %s", a->cwd ? a->cwd : "(none)",
		  b->cwd ? b->cwd : "(none)");
	cr_assert_eq(a->nenv, b->nenv);
	for (size_t i = 0; i < a->nenv; i++)
		cr_assert(env_has(b, a->env[i]), "%s lost", a->env[i]);
	cr_assert_eq(a->no_stdin, b->no_stdin);
	cr_assert_eq(a->no_dev, b->no_dev);
	cr_assert_eq(a->no_libs, b->no_libs);
	cr_assert_eq(a->ntmp, b->ntmp);
	for (size_t i = 0; i < a->ntmp; i++)
		cr_assert_str_eq(a->tmp[i], b->tmp[i]);
	cr_assert_eq(a->lim.mem, b->lim.mem);
	cr_assert_eq(a->lim.cpu_ms, b->lim.cpu_ms);
	cr_assert_eq(a->lim.wall_ms, b->lim.wall_ms);
	cr_assert_eq(a->lim.max_output, b->lim.max_output);
	cr_assert_eq(a->lim.max_write, b->lim.max_write);
	cr_assert_eq(a->lim.max_files, b->lim.max_files);
}

/* write, load into a fresh policy, compare; writing that again gives the same text. */
static void assert_round_trip(const struct policy *p)
{
	char err[1024] = "";
	char *text = dump(p);
	struct policy q;
	policy_init(&q);
	int r = load_str(&q, text, err, sizeof(err));
	cr_assert_eq(r, 0, "reloading\n%s\nfailed: %s", text, err);
	assert_same_policy(p, &q);
	char *again = dump(&q);
	cr_assert_str_eq(again, text);
	free(again);
	free(text);
	policy_free(&q);
}

/* ---- the golden fixtures ------------------------------------------------------------------ */

/* An array, not a pointer: Criterion hands parameters to a fresh process. */
struct fixture {
	char name[128];
};

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct fixture *)a)->name, ((const struct fixture *)b)->name);
}

static size_t list_fixtures(const char *prefix, struct fixture *out, size_t max)
{
	DIR *d = opendir(SBX_POLICY_DATA_DIR);
	struct dirent *e;
	size_t n = 0, pl = strlen(prefix);
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (strncmp(e->d_name, prefix, pl) != 0 || l < 5 ||
		    strcmp(e->d_name + l - 5, ".json") != 0 || l >= sizeof(out->name))
			continue;
		if (out && n < max)
			snprintf(out[n].name, sizeof(out[n].name), "%.*s",
				 (int)sizeof(out[n].name) - 1, e->d_name);
		n++;
	}
	closedir(d);
	if (out)
		qsort(out, n < max ? n : max, sizeof(*out), by_name);
	return n;
}

static struct criterion_test_params fixtures(const char *prefix)
{
	size_t n = list_fixtures(prefix, NULL, 0);
	struct fixture *f = cr_malloc(sizeof(*f) * (n ? n : 1));
	n = list_fixtures(prefix, f, n);
	return cr_make_param_array(struct fixture, f, n, NULL);
}

static void fixture_path(const char *name, const char *ext, char *out, size_t outlen)
{
	size_t l = strlen(name) - strlen(".json");
	snprintf(out, outlen, "%s/%.*s%s", SBX_POLICY_DATA_DIR, (int)l, name, ext);
}

ParameterizedTestParameters(policy_json, pass)
{
	return fixtures("pass-");
}

ParameterizedTest(struct fixture *f, policy_json, pass)
{
	char path[512], err[1024] = "";
	struct policy p;
	fixture_path(f->name, ".json", path, sizeof(path));
	policy_init(&p);
	int r = policy_load_json(&p, path, err, sizeof(err));
	cr_assert_eq(r, 0, "%s: %d: %s", f->name, r, err);
	assert_round_trip(&p);
	policy_free(&p);
}

ParameterizedTestParameters(policy_json, fail)
{
	return fixtures("fail-");
}

ParameterizedTest(struct fixture *f, policy_json, fail)
{
	char path[512], epath[512], err[1024] = "";
	struct policy p;
	fixture_path(f->name, ".json", path, sizeof(path));
	fixture_path(f->name, ".expect", epath, sizeof(epath));
	char *want = slurp(epath, NULL);
	want[strcspn(want, "\n")] = 0;
	cr_assert(want[0], "%s is empty", epath);
	policy_init(&p);
	int r = policy_load_json(&p, path, err, sizeof(err));
	cr_assert_lt(r, 0, "%s loaded", f->name);
	cr_assert_not_null(strstr(err, want), "%s:\n  got  %s\n  want %s", f->name, err, want);
	cr_assert_null(strchr(err, '\n'), "one line: %s", err);
	cr_assert_not_null(strstr(err, f->name), "names the file: %s", err);
	free(want);
	policy_free(&p);
}

Test(policy_json, enough_fixtures)
{
	struct fixture f[256];
	size_t npass = list_fixtures("pass-", NULL, 0);
	size_t nfail = list_fixtures("fail-", f, sizeof(f) / sizeof(f[0]));
	cr_assert_geq(npass, 5, "only %zu pass-*.json", npass);
	cr_assert_geq(nfail, 12, "only %zu fail-*.json", nfail);
	for (size_t i = 0; i < nfail && i < sizeof(f) / sizeof(f[0]); i++) {
		char epath[512];
		fixture_path(f[i].name, ".expect", epath, sizeof(epath));
		cr_assert_eq(access(epath, R_OK), 0, "%s has no .expect", f[i].name);
	}
}

/* ---- what the fixtures load to ------------------------------------------------------------ */

/* A fixture loaded into a fresh policy; the test fails if it does not load. */
static void load_fixture(struct policy *p, const char *name)
{
	char err[1024] = "", path[512];
	snprintf(path, sizeof(path), "%s/%s", SBX_POLICY_DATA_DIR, name);
	policy_init(p);
	cr_assert_eq(policy_load_json(p, path, err, sizeof(err)), 0, "%s: %s", name, err);
}

static void expect_limits(const struct policy *p, struct policy_limits want)
{
	cr_expect_eq(p->lim.mem, want.mem);
	cr_expect_eq(p->lim.cpu_ms, want.cpu_ms);
	cr_expect_eq(p->lim.wall_ms, want.wall_ms);
	cr_expect_eq(p->lim.max_output, want.max_output);
	cr_expect_eq(p->lim.max_write, want.max_write);
	cr_expect_eq(p->lim.max_files, want.max_files);
}

Test(policy_json, full_example)
{
	struct policy p;
	setenv("TERM", "vt100", 1);
	load_fixture(&p, "pass-full.json");
	cr_assert_eq(p.nmounts, 2);
	cr_assert_str_eq(p.mounts[0].host, "/");
	cr_assert_str_eq(p.mounts[0].guest, "/data");
	cr_assert_eq(p.mounts[0].rw, 0);
	cr_assert_str_eq(p.mounts[1].guest, "/out");
	cr_assert_eq(p.mounts[1].rw, 1);
	cr_assert_eq(p.ntmp, 1);
	cr_assert_str_eq(p.tmp[0], "/tmp");
	cr_assert_null(p.tmp[1]);
	cr_assert_str_eq(p.cwd, "/data");
	cr_assert_str_eq(env_get(&p, "LANG"), "C.UTF-8");
	cr_assert_str_eq(env_get(&p, "GREETING"), "h\xc3\xa9llo \"world\"");
	cr_assert_str_eq(env_get(&p, "EMPTY"), "");
	cr_assert_str_eq(env_get(&p, "TERM"), "vt100");
	cr_assert_null(p.env[p.nenv]);
	cr_assert_eq(p.no_stdin, 0);
	cr_assert_eq(p.no_dev, 0);
	cr_assert_eq(p.no_libs, 0);
	expect_limits(
	    &p, (struct policy_limits){256ull << 20, 10000, 30000, 10ull << 20, 100ull << 20, 256});
	policy_free(&p);
}

Test(policy_json, integers_are_bytes_and_seconds)
{
	struct policy p;
	load_fixture(&p, "pass-integers.json");
	expect_limits(&p, (struct policy_limits){268435456, 10000, 3600000, 0, 1048576, 64});
	cr_assert_eq(p.no_stdin, 1);
	policy_free(&p);
}

Test(policy_json, units)
{
	struct policy p;
	load_fixture(&p, "pass-limits.json");
	expect_limits(&p, (struct policy_limits){1ull << 30, 500, 120000, 64 << 10, 4096, 16});
	policy_free(&p);
}

Test(policy_json, defaults_and_normalisation)
{
	struct policy p;
	load_fixture(&p, "pass-mount-defaults.json");
	cr_assert_eq(p.nmounts, 2);
	cr_assert_str_eq(p.mounts[0].guest, "/tmp", "guest defaults to host");
	cr_assert_eq(p.mounts[0].rw, 0, "mode defaults to ro");
	cr_assert_str_eq(p.mounts[1].guest, "/host/root");
	cr_assert_eq(p.ntmp, 1, "a tmp path named twice is one directory");
	cr_assert_str_eq(p.tmp[0], "/scratch");
	cr_assert_str_eq(p.cwd, "/host");
	policy_free(&p);
}

Test(policy_json, env_pass_takes_what_the_host_has)
{
	char err[1024] = "";
	struct policy p;
	policy_init(&p);
	setenv("SBX_PJ_SET", "a b=c", 1);
	setenv("SBX_PJ_BOTH", "from host", 1);
	unsetenv("SBX_PJ_UNSET");
	int r = load_str(&p,
			 "{\"env\": {\"SBX_PJ_BOTH\": \"from file\"},"
			 " \"env_pass\": [\"SBX_PJ_SET\", \"SBX_PJ_UNSET\", \"SBX_PJ_BOTH\"]}",
			 err, sizeof(err));
	cr_assert_eq(r, 0, "%s", err);
	cr_assert_str_eq(env_get(&p, "SBX_PJ_SET"), "a b=c");
	cr_assert_null(env_get(&p, "SBX_PJ_UNSET"), "absent names are skipped");
	cr_assert_str_eq(env_get(&p, "SBX_PJ_BOTH"), "from file", "env wins over env_pass");
	cr_assert_eq(p.nenv, 2);
	policy_free(&p);
}

/* The front end loads the file first, then applies its flags on top. */
Test(policy_json, flags_after_the_file_override_it)
{
	char err[1024] = "";
	struct policy p;
	policy_init(&p);
	int r = load_str(&p, "{\"cwd\": \"/a\", \"env\": {\"X\": \"file\"}}", err, sizeof(err));
	cr_assert_eq(r, 0, "%s", err);
	cr_assert_eq(policy_set_cwd(&p, "/b", err, sizeof(err)), 0);
	cr_assert_eq(policy_set_env(&p, "X=flag", err, sizeof(err)), 0);
	cr_assert_str_eq(p.cwd, "/b");
	cr_assert_str_eq(env_get(&p, "X"), "flag");
	cr_assert_eq(p.nenv, 1);
	policy_free(&p);
}

Test(policy_json, a_bad_limit_sets_none)
{
	char err[1024] = "";
	struct policy p;
	policy_init(&p);
	p.lim.mem = 123;
	int r = load_str(&p, "{\"limits\": {\"memory\": \"1G\", \"timeout\": \"soon\"}}", err,
			 sizeof(err));
	cr_assert_eq(r, -EINVAL);
	cr_assert_eq(p.lim.mem, 123);
	cr_assert_eq(p.lim.wall_ms, 0);
	policy_free(&p);
}

/* ---- positions ---------------------------------------------------------------------------- */

struct pos_case {
	char text[160];
	char want[128];
};

ParameterizedTestParameters(policy_json, positions)
{
	static struct pos_case c[] = {
	    /* the example from the documentation, on one line */
	    {"{\"limits\": {\"timeout\": \"30x\"}}",
	     "t.json:1:24: limits.timeout: \"30x\" is not a duration (use 30s, 500ms, 2m)"},
	    /* a key spelled with an escape is still found */
	    {"{\"limits\": {\"\\u006demory\": \"bad\"}}", "t.json:1:28: limits.memory: "},
	    /* columns count characters, as jansson's do */
	    {"{\"env\": {\"\xc3\x89\": 1}}", "t.json:1:15: env.\xc3\x89: expected a string"},
	    /* the same text earlier in a string value does not mislead */
	    {"{\"cwd\": \"/timeout\",\n \"limits\": {\"memory\": 1, \"timeout\": []}}",
	     "t.json:2:37: limits.timeout: expected a duration"},
	    /* an element of an array */
	    {"{\"tmp\": [\"/a\", \"/b\",\n\t\"c\"]}", "t.json:2:2: tmp[2]: \"c\""},
	    /* an unknown key points at the key */
	    {"{\n  \"limits\": {\n    \"cpu\": 1}}", "t.json:3:5: limits: unknown key \"cpu\""},
	    {"{\"mounts\": [{\"host\": \"/tmp\"}, {\"guest\": \"/x\"}]}",
	     "t.json:1:31: mounts[1]: a mount needs \"host\""},
	    {"{\"mounts\": [{\"host\": \"/tmp\", \"bind\": true}]}",
	     "t.json:1:30: mounts[0]: unknown key \"bind\""},
	    {"{\"dev\": \"no\"}", "t.json:1:9: dev: expected true or false"},
	    {"{\"libs\": 0}", "t.json:1:10: libs: expected true or false"},
	    {"{\"version\": 1.0}",
	     "t.json:1:13: version: expected the integer 1, not a fractional"},
	    {"{\"limits\": {\"memory\": \"-1M\"}}", "limits.memory: \"-1M\" is not a size"},
	    {"{\"limits\": {\"memory\": \" 1M\"}}", "limits.memory: \" 1M\" is not a size"},
	    {"{\"limits\": {\"max_files\": \"12x\"}}", "limits.max_files: \"12x\" is not a whole"},
	    {"{\"limits\": {\"max_files\": 2}}",
	     "t.json:1:26: limits.max_files: 2 is not between 3"},
	    {"{\"limits\": {\"max_files\": \"1025\"}}", "limits.max_files: 1025 is not between"},
	    {"{\"limits\": {\"cpu_time\": 99999999999999999}}", "limits.cpu_time: "},
	    {"{\"limits\": {\"timeout\": \"99999999999999999999s\"}}", "is too large"},
	    {"{\"mounts\": [{\"host\": \"/tmp:/x\"}]}", "mounts[0].host: \"/tmp:/x\": expected"},
	    {"{\"env_pass\": [\"A=B\"]}", "t.json:1:15: env_pass[0]: \"A=B\" is not a variable"},
	    {"{\"cwd\": \"/a\"} x", "t.json:1:"},
	    {"\"just a string\"", "t.json:1:1: a policy is a JSON object, not a string"},
	    {"{\"env\": {\"A\": \"line\\nbreak\", \"B\": 2}}", "env.B"},
	};
	return cr_make_param_array(struct pos_case, c, sizeof(c) / sizeof(c[0]));
}

ParameterizedTest(struct pos_case *c, policy_json, positions)
{
	char err[1024] = "";
	struct policy p;
	policy_init(&p);
	int r = load_str(&p, c->text, err, sizeof(err));
	cr_assert_lt(r, 0, "%s loaded", c->text);
	cr_assert_not_null(strstr(err, c->want), "%s:\n  got  %s\n  want %s", c->text, err,
			   c->want);
	cr_assert_null(strchr(err, '\n'), "one line: %s", err);
	policy_free(&p);
}

Test(policy_json, messages_stay_on_one_line)
{
	char err[1024] = "";
	struct policy p;
	policy_init(&p);
	int r = load_str(&p, "{\"mounts\": [{\"host\": \"/no\\nsuch\"}]}", err, sizeof(err));
	cr_assert_lt(r, 0);
	cr_assert_null(strchr(err, '\n'), "%s", err);
	policy_free(&p);
}

Test(policy_json, text_need_not_be_terminated)
{
	char err[1024] = "";
	struct policy p;
	policy_init(&p);
	const char text[] = "{}{garbage";
	cr_assert_eq(policy_load_json_text(&p, text, 2, "t.json", err, sizeof(err)), 0, "%s", err);
	policy_free(&p);
}

/* ---- the size cap ------------------------------------------------------------------------- */

/* A valid policy of exactly `size` bytes: an object padded with spaces. */
static char *padded(size_t size)
{
	char *b = malloc(size);
	cr_assert_not_null(b);
	memset(b, ' ', size);
	b[0] = '{';
	b[size - 1] = '}';
	return b;
}

static void write_file(const char *path, const char *b, size_t n)
{
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(b, 1, n, f), n);
	cr_assert_eq(fclose(f), 0);
}

Test(policy_json, a_file_over_1mib_is_refused)
{
	char path[] = "/tmp/sbx-policy-big-XXXXXX", err[1024] = "";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	close(fd);
	struct policy p;
	policy_init(&p);

	char *b = padded((1 << 20) + 1);
	write_file(path, b, (1 << 20) + 1);
	int r = policy_load_json(&p, path, err, sizeof(err));
	cr_assert_eq(r, -EFBIG, "%d %s", r, err);
	cr_assert_not_null(strstr(err, "1048577 bytes"), "%s", err);
	cr_assert_not_null(strstr(err, path), "%s", err);
	r = policy_load_json_text(&p, b, (1 << 20) + 1, "big.json", err, sizeof(err));
	cr_assert_eq(r, -EFBIG);
	cr_assert_not_null(strstr(err, "big.json: 1048577 bytes"), "%s", err);

	write_file(path, b, 1 << 20);
	b[(1 << 20) - 1] = '}';
	write_file(path, b, 1 << 20);
	r = policy_load_json(&p, path, err, sizeof(err));
	cr_assert_eq(r, 0, "exactly 1 MiB loads: %s", err);

	free(b);
	unlink(path);
	policy_free(&p);
}

Test(policy_json, a_missing_file)
{
	char err[1024] = "";
	struct policy p;
	policy_init(&p);
	int r = policy_load_json(&p, "/nonexistent/sbx/policy.json", err, sizeof(err));
	cr_assert_eq(r, -ENOENT);
	cr_assert_not_null(strstr(err, "/nonexistent/sbx/policy.json: "), "%s", err);
	policy_free(&p);
}

/* ---- writing ------------------------------------------------------------------------------ */

Test(policy_json, round_trip)
{
	char err[1024] = "", file[] = "/tmp/sbx-policy-file-XXXXXX";
	int fd = mkstemp(file);
	cr_assert_geq(fd, 0);
	close(fd);
	char spec[64];
	snprintf(spec, sizeof(spec), "%s:/etc/config", file);

	struct policy p;
	policy_init(&p);
	cr_assert_eq(policy_add_mount(&p, "/:/data", 0, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(policy_add_mount(&p, "/tmp:/out", 1, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(policy_add_mount(&p, spec, 0, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(policy_add_tmp(&p, "/scratch", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(policy_add_tmp(&p, "/var/tmp", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(policy_set_cwd(&p, "/data/sub", err, sizeof(err)), 0);
	cr_assert_eq(policy_set_env(&p, "ZED=last", err, sizeof(err)), 0);
	cr_assert_eq(policy_set_env(&p, "A=x=y \"q\" \\ \t\xe2\x82\xac", err, sizeof(err)), 0);
	cr_assert_eq(policy_set_env(&p, "EMPTY=", err, sizeof(err)), 0);
	p.no_stdin = 1;
	p.no_dev = 1;
	p.no_libs = 1;
	p.lim.mem = 256ull << 20;
	p.lim.cpu_ms = 1500;
	p.lim.wall_ms = 2 * 3600000;
	p.lim.max_output = 4097;
	p.lim.max_write = UINT64_MAX;
	p.lim.max_files = 1024;
	assert_round_trip(&p);

	char *text = dump(&p);
	cr_assert_not_null(strstr(text, "\"memory\": \"256M\""), "%s", text);
	cr_assert_not_null(strstr(text, "\"cpu_time\": \"1500ms\""), "%s", text);
	cr_assert_not_null(strstr(text, "\"timeout\": \"2h\""), "%s", text);
	cr_assert_not_null(strstr(text, "\"max_output\": 4097"), "%s", text);
	cr_assert_not_null(strstr(text, "\"max_write\": \"18446744073709551615\""), "%s", text);
	cr_assert_not_null(strstr(text, "\"stdin\": false"), "%s", text);
	cr_assert_not_null(strstr(text, "\"dev\": false"), "%s", text);
	cr_assert_not_null(strstr(text, "\"mode\": \"rw\""), "%s", text);
	/* sorted keys */
	cr_assert(strstr(text, "\"cwd\"") < strstr(text, "\"env\"") &&
		      strstr(text, "\"env\"") < strstr(text, "\"limits\"") &&
		      strstr(text, "\"limits\"") < strstr(text, "\"mounts\""),
		  "%s", text);
	free(text);
	policy_free(&p);
	unlink(file);
}

Test(policy_json, zero_limits_are_left_out)
{
	struct policy p;
	policy_init(&p);
	p.lim.max_files = 7;
	char *text = dump(&p);
	cr_assert_not_null(strstr(text, "\"max_files\": 7"), "%s", text);
	cr_assert_null(strstr(text, "memory"), "%s", text);
	cr_assert_null(strstr(text, "timeout"), "%s", text);
	free(text);
	assert_round_trip(&p);
	policy_free(&p);
}

Test(policy_json, made_tmp_directories_are_not_written_as_mounts)
{
	char err[1024] = "";
	struct policy p;
	policy_init(&p);
	cr_assert_eq(policy_add_tmp(&p, "/scratch", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(policy_make_tmp(&p, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(p.nmounts, 2); /* with the sandbox's own /dev/shm */
	char *text = dump(&p);
	cr_assert_null(strstr(text, "\"host\""), "%s", text);
	cr_assert_not_null(strstr(text, "\"/scratch\""), "%s", text);
	cr_assert_not_null(strstr(text, "\"/dev/shm\""), "%s", text);
	struct policy q;
	policy_init(&q);
	cr_assert_eq(load_str(&q, text, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(q.nmounts, 0);
	cr_assert_eq(q.ntmp, 2);
	free(text);
	policy_free(&q);
	policy_free(&p);
}
