/* Lexical path normalisation and mount lookup. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <string.h>

#include "policy.h"

/* Arrays, not pointers: Criterion hands parameters to a fresh process. */
struct norm_case {
	char base[16], path[32], want[16];
	int err;
};

ParameterizedTestParameters(policy, normalize)
{
	static struct norm_case c[] = {
	    {"/", "/a/b", "/a/b", 0},
	    {"/", "a//b/", "/a/b", 0},
	    {"/x/y", "../z", "/x/z", 0},
	    {"/x", "../../..", "/", 0},
	    {"/", "/..", "/", 0},
	    {"/a", "./././b/.", "/a/b", 0},
	    {"/a/b", "/c/../../d", "/d", 0},
	    {"/", "", "", -ENOENT},
	    {"/a", "b/../../../etc", "/etc", 0},
	};
	return cr_make_param_array(struct norm_case, c, sizeof(c) / sizeof(c[0]));
}

ParameterizedTest(struct norm_case *c, policy, normalize)
{
	char out[POLICY_PATH_MAX];
	int r = policy_normalize(c->base, c->path, strlen(c->path), out, sizeof(out));
	cr_assert_eq(r, c->err, "%s + %s", c->base, c->path);
	if (!r)
		cr_assert_str_eq(out, c->want);
}

Test(policy, overlong_paths_are_refused)
{
	char big[POLICY_PATH_MAX + 10], out[POLICY_PATH_MAX];
	memset(big, 'a', sizeof(big));
	cr_assert_eq(policy_normalize("/", big, sizeof(big), out, sizeof(out)), -ENAMETOOLONG);
}

Test(policy, lookup_picks_the_longest_mount)
{
	struct policy p;
	char err[256];
	policy_init(&p);
	cr_assert_eq(policy_add_mount(&p, "/tmp:/data", 0, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(policy_add_mount(&p, "/:/data/deep/root", 0, err, sizeof(err)), 0, "%s", err);
	struct policy_target t;
	policy_lookup(&p, "/data/x", &t);
	cr_assert_eq(t.kind, POLICY_MOUNT);
	cr_assert_str_eq(t.rel, "x");
	policy_lookup(&p, "/data/deep/root/etc", &t);
	cr_assert_str_eq(t.mount->guest, "/data/deep/root");
	cr_assert_str_eq(t.rel, "etc");
	policy_lookup(&p, "/data", &t);
	cr_assert_str_eq(t.rel, ".");
	policy_lookup(&p, "/datax", &t);
	cr_assert_eq(t.kind, POLICY_NONE);
	policy_lookup(&p, "/", &t);
	cr_assert_eq(t.kind, POLICY_VDIR);
	cr_assert_eq(policy_add_mount(&p, "/nonexistent-dir-xyz", 0, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "nonexistent-dir-xyz"));
	cr_assert_eq(policy_add_mount(&p, "/tmp:rel", 0, err, sizeof(err)), -EINVAL);
	policy_free(&p);
}

Test(policy, sizes_and_durations_take_digits_only)
{
	uint64_t v;
	cr_assert_eq(policy_parse_size("64K", &v), 0);
	cr_assert_eq(v, 65536);
	cr_assert_eq(policy_parse_duration("1500ms", &v), 0);
	cr_assert_eq(v, 1500);
	cr_assert_eq(policy_parse_duration("2m", &v), 0);
	cr_assert_eq(v, 120000);
	cr_assert_eq(policy_parse_size(" -5", &v), -EINVAL);
	cr_assert_eq(policy_parse_size("+5", &v), -EINVAL);
	cr_assert_eq(policy_parse_duration("+5s", &v), -EINVAL);
	cr_assert_eq(policy_parse_size("99999999999999999999G", &v), -EINVAL);
	cr_assert_eq(policy_parse_duration("3x", &v), -EINVAL);
}
