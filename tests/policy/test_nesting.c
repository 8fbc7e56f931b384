/* Nested mounts (policy/nesting.c): which mounts can reach another's object, and the rule a path
 * gets, decided on the object it finally reaches, then acted on without a gap. No KVM: the
 * policy library on a scratch host tree. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy.h"
#include "scratch.h"

static char dir[64];
static struct policy pol;
static char bound[128]; /* a host bind mount a test made, undone before the tree goes */

static void sh(const char *cmd)
{
	scratch_sh(dir, cmd);
}

/* For a test of its own layout: the fixture's policy goes (teardown frees this one). */
static void new_policy(void)
{
	policy_free(&pol);
	policy_init(&pol);
}

/* h/rw (rw at /rw) holds prot/ (ro at /rw/prot) and f.txt (ro at /rw/f.txt); h/ro (ro at /ro)
 * holds w/ (rw at /ro/w). Symlinks the guest could have made are already there. */
static void setup(void)
{
	scratch_make(dir, sizeof(dir), "nesting");
	sh("mkdir -p h/rw/prot/sub h/rw/d h/ro/w && echo protected > h/rw/prot/p.txt && "
	   "echo protected > h/rw/f.txt && echo protected > h/ro/o.txt && echo mine > h/rw/mine && "
	   "ln -s prot h/rw/pl && ln -s . h/rw/self && ln -s prot/p.txt h/rw/fl && "
	   "ln -s f.txt h/rw/ff && ln -s d/../prot h/rw/dd && ln -s /rw/prot h/rw/al && "
	   "ln -s ../.. h/rw/up && ln -s loop h/rw/loop && ln -s prot/new h/rw/dang && "
	   "ln -s w h/ro/lnk && ln -s w/.. h/ro/wup && echo mine > h/ro/w/x.txt");
	policy_init(&pol);
	scratch_mount(&pol, dir, "h/rw", "/rw", 1);
	scratch_mount(&pol, dir, "h/rw/prot", "/rw/prot", 0);
	scratch_mount(&pol, dir, "h/rw/f.txt", "/rw/f.txt", 0);
	scratch_mount(&pol, dir, "h/ro", "/ro", 0);
	scratch_mount(&pol, dir, "h/ro/w", "/ro/w", 1);
}

static void teardown(void)
{
	policy_free(&pol);
	if (bound[0])
		umount2(bound, MNT_DETACH);
	scratch_remove(dir);
}

TestSuite(nesting, .init = setup, .fini = teardown);

static const struct policy_mount *mount_at(const char *guest)
{
	for (size_t i = 0; i < pol.nmounts; i++)
		if (strcmp(pol.mounts[i].guest, guest) == 0)
			return &pol.mounts[i];
	return NULL;
}

Test(nesting, a_mount_that_can_reach_another_is_marked)
{
	cr_expect(mount_at("/rw")->holds_mounts);
	cr_expect(mount_at("/ro")->holds_mounts);
	cr_expect(!mount_at("/rw/prot")->holds_mounts);
	cr_expect(!mount_at("/rw/f.txt")->holds_mounts);
	cr_expect(!mount_at("/ro/w")->holds_mounts);
}

Test(nesting, siblings_and_the_same_directory_twice_are_not_nested)
{
	new_policy();
	scratch_mount(&pol, dir, "h/rw/prot", "/a", 0);
	scratch_mount(&pol, dir, "h/rw/d", "/b", 1);
	scratch_mount(&pol, dir, "h/rw/prot", "/c", 1);
	for (size_t i = 0; i < pol.nmounts; i++)
		cr_expect(!pol.mounts[i].holds_mounts, "%s", pol.mounts[i].guest);
}

Test(nesting, directories_on_the_way_to_a_nested_mount_are_pinned)
{
	sh("mkdir -p h/deep/a/b/c");
	new_policy();
	scratch_mount(&pol, dir, "h/deep", "/x", 1);
	scratch_mount(&pol, dir, "h/deep/a/b/c", "/y", 0);
	/* Two mount objects, and a and b between them. */
	cr_expect_eq(pol.npins, 4);
	size_t roots = 0;
	for (size_t i = 0; i < pol.npins; i++)
		roots += pol.pins[i].root != 0;
	cr_expect_eq(roots, 2);
}

/* ---- The rule a path gets ---- */

struct rule_case {
	char path[48];
	int how;	/* enum policy_walk */
	char mount[16]; /* guest path of the mount whose rule applies, "" if an error */
	int err;
	int pinned; /* POLICY_PARENT: the name is a mount's object or on the way to one */
};

ParameterizedTestParameters(nesting, the_rule_is_the_one_of_what_the_path_reaches)
{
	static struct rule_case c[] = {
	    /* The text says /rw; the object is /rw/prot's. */
	    {"/rw/pl/p.txt", POLICY_FOLLOW, "/rw/prot", 0, 0},
	    {"/rw/fl", POLICY_FOLLOW, "/rw/prot", 0, 0},
	    {"/rw/dd/p.txt", POLICY_FOLLOW, "/rw/prot", 0, 0},
	    {"/rw/self/prot/p.txt", POLICY_FOLLOW, "/rw/prot", 0, 0},
	    {"/rw/self/prot", POLICY_FOLLOW, "/rw/prot", 0, 0},
	    {"/rw/pl", POLICY_FOLLOW, "/rw/prot", 0, 0},
	    {"/rw/pl/sub", POLICY_FOLLOW, "/rw/prot", 0, 0},
	    {"/rw/ff", POLICY_FOLLOW, "/rw/f.txt", 0, 0},
	    {"/rw/self/f.txt", POLICY_FOLLOW, "/rw/f.txt", 0, 0},
	    {"/rw/pl/new.txt", POLICY_FOLLOW, "/rw/prot", -ENOENT, 0},
	    /* Not following: the link is /rw's own. */
	    {"/rw/fl", POLICY_NOFOLLOW, "/rw", 0, 0},
	    {"/rw/pl", POLICY_NOFOLLOW, "/rw", 0, 0},
	    /* Entry changes: the directory's rule, and mount objects are pinned. */
	    {"/rw/pl/p.txt", POLICY_PARENT, "/rw/prot", 0, 0},
	    {"/rw/pl/new", POLICY_PARENT, "/rw/prot", 0, 0},
	    {"/rw/self/prot", POLICY_PARENT, "/rw", 0, 1},
	    {"/rw/self/f.txt", POLICY_PARENT, "/rw", 0, 1},
	    {"/rw/self/mine", POLICY_PARENT, "/rw", 0, 0},
	    {"/rw/d/x", POLICY_PARENT, "/rw", 0, 0},
	    /* /rw's own objects, through symlinks too. */
	    {"/rw/mine", POLICY_FOLLOW, "/rw", 0, 0},
	    {"/rw/self/mine", POLICY_FOLLOW, "/rw", 0, 0},
	    {"/rw/self/d", POLICY_FOLLOW, "/rw", 0, 0},
	    /* Read-write inside read-only: each object keeps its own mount's rule. */
	    {"/ro/lnk/x.txt", POLICY_FOLLOW, "/ro/w", 0, 0},
	    {"/ro/wup/o.txt", POLICY_FOLLOW, "/ro", 0, 0},
	    {"/ro/o.txt", POLICY_FOLLOW, "/ro", 0, 0},
	    {"/ro/wup/w", POLICY_PARENT, "/ro", 0, 1},
	    /* An absolute link resolves in the guest's namespace, into the nested mount. */
	    {"/rw/al/p.txt", POLICY_FOLLOW, "/rw/prot", 0, 0},
	    {"/rw/al/new", POLICY_PARENT, "/rw/prot", 0, 0},
	    /* Nothing leaves every mount, and loops end. */
	    {"/rw/up/etc", POLICY_FOLLOW, "", -ENOENT, 0},
	    {"/rw/loop", POLICY_FOLLOW, "", -ELOOP, 0},
	    {"/rw/loop/x", POLICY_PARENT, "", -ELOOP, 0},
	};
	return cr_make_param_array(struct rule_case, c, sizeof(c) / sizeof(c[0]));
}

ParameterizedTest(struct rule_case *c, nesting, the_rule_is_the_one_of_what_the_path_reaches)
{
	struct policy_target t;
	policy_lookup(&pol, c->path, &t);
	cr_assert_eq(t.kind, POLICY_MOUNT, "%s", c->path);
	if (c->how == POLICY_PARENT) {
		struct policy_node n;
		int r = policy_resolve_parent(&pol, &t, &n);
		if (r == -EXDEV) { /* a link leaves the mount: resolved in the guest's namespace */
			char g[POLICY_PATH_MAX];
			cr_assert_eq(policy_walk(&pol, c->path, POLICY_PARENT, g, sizeof(g)), 0);
			policy_lookup(&pol, g, &t);
			r = policy_resolve_parent(&pol, &t, &n);
		}
		cr_assert_eq(r, c->err, "%s: %d", c->path, r);
		if (r == 0) {
			cr_expect_str_eq(n.mount->guest, c->mount, "%s", c->path);
			cr_expect_eq(n.pinned, c->pinned, "%s", c->path);
			policy_node_release(&n);
		}
		return;
	}
	const struct policy_mount *m = NULL;
	int fd = policy_open_guest(&pol, c->path, c->how, O_PATH, 0, NULL, NULL, &m);
	cr_assert_eq(fd < 0 ? fd : 0, c->err, "%s: %d", c->path, fd);
	if (fd >= 0)
		close(fd);
	if (c->mount[0])
		cr_expect_str_eq(m->guest, c->mount, "%s", c->path);
}

/* ---- No gap between the decision and the act ---- */

static int swap_in_symlink(const struct policy_node *n, int *flags, void *ctx)
{
	(void)n;
	(void)flags;
	/* The guest, racing: /rw/mine becomes a symlink into the read-only mount. */
	sh("rm h/rw/mine && ln -s prot/p.txt h/rw/mine");
	*(int *)ctx = 1;
	return 0;
}

Test(nesting, a_symlink_swapped_in_after_the_decision_is_not_followed)
{
	struct policy_target t;
	policy_lookup(&pol, "/rw/mine", &t);
	const struct policy_mount *m;
	int swapped = 0;
	int fd = policy_open(&pol, &t, POLICY_FOLLOW, O_WRONLY | O_TRUNC, 0, swap_in_symlink,
			     &swapped, &m);
	cr_assert(swapped);
	cr_expect_str_eq(m->guest, "/rw");
	cr_expect_eq(fd, -ELOOP);
	if (fd >= 0)
		close(fd);
	struct stat st;
	char p[128];
	snprintf(p, sizeof(p), "%s/h/rw/prot/p.txt", dir);
	cr_assert_eq(stat(p, &st), 0);
	cr_expect_eq(st.st_size, 10, "the protected file was truncated");
}

Test(nesting, the_directory_decided_on_is_the_one_changed)
{
	sh("ln -s d h/rw/dl");
	struct policy_target t;
	policy_lookup(&pol, "/rw/dl/new", &t);
	struct policy_node n;
	cr_assert_eq(policy_resolve_parent(&pol, &t, &n), 0);
	cr_assert_str_eq(n.mount->guest, "/rw");
	/* Swapped after the decision: the change still lands in d, not in prot. */
	sh("rm h/rw/dl && ln -s prot h/rw/dl");
	cr_assert_eq(mkdirat(n.dirfd, n.name, 0755), 0);
	policy_node_release(&n);
	sh("test -d h/rw/d/new && ! test -e h/rw/prot/new");
}

Test(nesting, a_policy_without_nesting_takes_the_fast_way)
{
	new_policy();
	scratch_mount(&pol, dir, "h/rw/d", "/d", 1);
	struct policy_target t;
	policy_lookup(&pol, "/d/x", &t);
	struct policy_node n;
	cr_assert_eq(policy_resolve_parent(&pol, &t, &n), 0);
	/* One openat2 of the parent; the name is the path's own text. */
	cr_expect_eq(n.name, t.rel);
	cr_expect(!n.guarded);
	policy_node_release(&n);
}

/* The mount a guest path's object gets its rule from (O_PATH, following). */
static const char *rule_of(const char *gpath, int *err)
{
	struct policy_target t;
	policy_lookup(&pol, gpath, &t);
	const struct policy_mount *m = NULL;
	int fd = policy_open(&pol, &t, POLICY_FOLLOW, O_PATH, 0, NULL, NULL, &m);
	*err = fd < 0 ? fd : 0;
	if (fd >= 0)
		close(fd);
	return m ? m->guest : "";
}

Test(nesting, nested_on_the_host_only_counts_too)
{
	new_policy();
	scratch_mount(&pol, dir, "h/rw", "/a", 1);
	scratch_mount(&pol, dir, "h/rw/prot", "/b", 0);
	cr_expect(pol.mounts[0].holds_mounts);
	int e;
	cr_expect_str_eq(rule_of("/a/prot/p.txt", &e), "/b");
	cr_expect_eq(e, 0);
	cr_expect_str_eq(rule_of("/a/mine", &e), "/a");
}

/* A private mount namespace for host bind mounts (as root, or in a user namespace). */
static void private_mounts(void)
{
	if (unshare(CLONE_NEWNS) != 0 && unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
		cr_skip_test("no mount namespace here: %s", strerror(errno));
	cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0, "%s", strerror(errno));
}

/* A bind mount, undone at exit so that the scratch tree can be removed. */
static void bind(const char *from, const char *to)
{
	char a[128];
	snprintf(a, sizeof(a), "%s/%s", dir, from);
	snprintf(bound, sizeof(bound), "%s/%s", dir, to);
	cr_assert_eq(mount(a, bound, NULL, MS_BIND, NULL), 0, "bind %s: %s", a, strerror(errno));
}

Test(nesting, a_host_mount_point_inside_a_mount_is_crossed_the_long_way)
{
	private_mounts();
	sh("mkdir -p h/other/bindprot");
	bind("h/rw/prot", "h/other/bindprot");
	new_policy();
	scratch_mount(&pol, dir, "h/other", "/o", 1);
	scratch_mount(&pol, dir, "h/rw/prot", "/p", 0);
	/* ".." from prot never meets h/other: only resolution can tell. */
	cr_expect(!pol.mounts[0].holds_mounts);
	int e;
	cr_expect_str_eq(rule_of("/o/bindprot/p.txt", &e), "/p");
	cr_expect_eq(e, 0);
	cr_expect_str_eq(rule_of("/o/bindprot", &e), "/p");
	struct policy_target t;
	policy_lookup(&pol, "/o/bindprot/new", &t);
	struct policy_node n;
	cr_assert_eq(policy_resolve_parent(&pol, &t, &n), 0);
	cr_expect_str_eq(n.mount->guest, "/p");
	policy_node_release(&n);
}

Test(nesting, a_bind_mount_of_the_same_file_system_may_hide_nesting)
{
	private_mounts();
	sh("mkdir -p h/bindrw");
	bind("h/rw", "h/bindrw");
	new_policy();
	scratch_mount(&pol, dir, "h/bindrw", "/o", 1);
	scratch_mount(&pol, dir, "h/rw/prot", "/p", 0);
	/* The same file system through another host mount: possibly nested. */
	cr_expect(pol.mounts[0].holds_mounts);
	int e;
	cr_expect_str_eq(rule_of("/o/prot/p.txt", &e), "/p");
	cr_expect_str_eq(rule_of("/o/mine", &e), "/o");
}

Test(nesting, no_descriptor_is_left_open)
{
	static const char *const paths[] = {"/rw/pl/p.txt", "/rw/symlink-chain", "/rw/loop",
					    "/rw/al/p.txt", "/rw/self/prot",	 "/rw/pl/new",
					    "/ro/lnk/x.txt"};
	sh("ln -s pl h/rw/l2 && ln -s l2/p.txt h/rw/symlink-chain");
	int before = scratch_open_fds();
	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
			struct policy_target t;
			policy_lookup(&pol, paths[i], &t);
			const struct policy_mount *m;
			int fd = policy_open_guest(&pol, paths[i], POLICY_FOLLOW, O_PATH, 0, NULL,
						   NULL, &m);
			if (fd >= 0)
				close(fd);
			struct policy_node n;
			if (policy_resolve_parent(&pol, &t, &n) == 0)
				policy_node_release(&n);
		}
	}
	cr_expect_eq(scratch_open_fds(), before);
}
