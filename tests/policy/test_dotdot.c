/* ".." after a symlink climbs from where the link led, as the kernel does (policy/dotdot.c),
 * not from the link's own directory as a lexical normalisation would. No KVM: the policy
 * library on a scratch host tree. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "policy.h"
#include "scratch.h"

static char dir[64];
static struct policy pol;

/* /m (h/m) holds d/sub, d/f, f, a link l -> d/sub, a link out -> /x/y (another mount), a file
 * plain; /x (h/x) holds y/. */
static void setup(void)
{
	scratch_make(dir, sizeof(dir), "dotdot");
	scratch_sh(dir, "mkdir -p h/m/d/sub h/x/y && echo inD > h/m/d/f && echo top > h/m/f && "
			"ln -s d/sub h/m/l && ln -s /x/y h/m/out && echo p > h/m/plain");
	policy_init(&pol);
	scratch_mount(&pol, dir, "h/m", "/m", 0);
	scratch_mount(&pol, dir, "h/x", "/x", 0);
}

static void teardown(void)
{
	policy_free(&pol);
	scratch_remove(dir);
}

TestSuite(dotdot, .init = setup, .fini = teardown);

struct dd_case {
	char base[16], path[32];
	char want[24]; /* "" when err */
	int err;
};

ParameterizedTestParameters(dotdot, climbs_from_where_the_path_leads)
{
	static struct dd_case c[] = {
	    {"/", "/m/l/../f", "/m/d/f", 0},	   /* the link's target's parent */
	    {"/m", "l/../f", "/m/d/f", 0},	   /* relative, from the base */
	    {"/", "/m/d/../f", "/m/f", 0},	   /* no link: as written */
	    {"/", "/m/out/../z", "/x/z", 0},	   /* a link into another mount */
	    {"/", "/m/l/../../f", "/m/f", 0},	   /* two up from d/sub */
	    {"/", "/m/l/./../f", "/m/d/f", 0},	   /* "." changes nothing */
	    {"/", "/m/nothere/../f", "", -ENOENT}, /* Linux needs the directory */
	    {"/", "/m/plain/../f", "", -ENOTDIR},  /* and a directory */
	    {"/", "/dev/../m/f", "/m/f", 0},	   /* outside every mount: as written */
	    {"/", "/../m/f", "/m/f", 0},	   /* the root's parent is the root */
	    {"/", "/m/l/..", "/m/d", 0},	   /* ".." last */
	    {"/", "/m/l/..foo", "/m/l/..foo", 0},  /* not a ".." component */
	};
	return cr_make_param_array(struct dd_case, c, sizeof(c) / sizeof(c[0]));
}

ParameterizedTest(struct dd_case *c, dotdot, climbs_from_where_the_path_leads)
{
	char out[POLICY_PATH_MAX];
	size_t len = strlen(c->path);
	int r = policy_normalize_walked(&pol, c->base, c->path, len, out, sizeof(out));
	cr_assert_eq(r, c->err, "%s from %s: %d (%s)", c->path, c->base, r, r ? "" : out);
	if (!c->err)
		cr_assert_str_eq(out, c->want, "%s from %s", c->path, c->base);
}

Test(dotdot, only_whole_components_count)
{
	static const char *const yes[] = {"..", "../a", "a/..", "a/../b", "/..", "a//../"};
	static const char *const no[] = {"...", "a..", "..a", "a/..b", "a/b..", "", "."};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		cr_expect(policy_has_dotdot(yes[i], strlen(yes[i])), "%s", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		cr_expect(!policy_has_dotdot(no[i], strlen(no[i])), "%s", no[i]);
}
