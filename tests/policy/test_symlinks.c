/* Symlinks resolved in the guest's namespace (policy/walk.c): a link whose target leaves its
 * mount (absolute, or ".." past the mount's root) is followed through the mount table, as the
 * kernel does in a mount namespace, and what it reaches gets the rule of the mount it lands
 * in. No KVM: the policy library on a scratch host tree. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy.h"
#include "scratch.h"

static char dir[64];
static struct policy pol;

static void sh(const char *cmd)
{
	scratch_sh(dir, cmd);
}

/* Three separate mounts, so that a guest path and the host path its text would name differ:
 * h/a (rw at /a), h/b (ro at /m/b), h/c (rw at /m/c). h/a/secret is reachable on the host by
 * ../a/secret from h/b, but at no guest path through /m/b. And Debian's layout: h/usr with
 * lib/ and lib64/ mounted again at /lib and /lib64 (nested), lib64/ld.so an absolute link. */
static void setup(void)
{
	scratch_make(dir, sizeof(dir), "symlinks");
	sh("mkdir -p h/a h/b h/c/sub h/usr/lib/x86 h/usr/lib64 && echo data > h/b/data.txt && "
	   "echo secret > h/a/secret && echo mine > h/c/sub/f && echo ld > h/usr/lib/x86/ld.so && "
	   "ln -s /lib/x86/ld.so h/usr/lib64/ld.so && "
	   "ln -s /m/b/data.txt h/a/abs && ln -s ../m/b/data.txt h/a/rel && "
	   "ln -s ../b/data.txt h/a/hostrel && ln -s /etc/passwd h/a/out && "
	   "ln -s /m/c/sub h/a/dirl && ln -s ../m/c/sub/.. h/a/up && ln -s / h/a/root && "
	   "ln -s /m/c/l2 h/a/l1 && ln -s /a/l1 h/c/l2 && ln -s /m/c/new h/a/dang && "
	   "ln -s /a/abs h/c/bounce && ln -s /m/b h/a/bdir");
	static const struct {
		const char *host, *guest;
		int rw;
	} mounts[] = {{"h/a", "/a", 1},	    {"h/b", "/m/b", 0},	      {"h/c", "/m/c", 1},
		      {"h/usr", "/usr", 0}, {"h/usr/lib", "/lib", 0}, {"h/usr/lib64", "/lib64", 0}};
	policy_init(&pol);
	for (size_t i = 0; i < sizeof(mounts) / sizeof(mounts[0]); i++)
		scratch_mount(&pol, dir, mounts[i].host, mounts[i].guest, mounts[i].rw);
}

static void teardown(void)
{
	policy_free(&pol);
	scratch_remove(dir);
}

TestSuite(symlinks, .init = setup, .fini = teardown);

/* Paths that all walk to the same place. */
struct walk_case {
	char paths[4][24]; /* the guest paths walked, up to the first "" */
	int how;	   /* enum policy_walk */
	char walked[40];   /* policy_walk's answer, "" if an error */
	char mount[16];	   /* whose rule the object gets (policy_open_guest), "" if none */
	int err;	   /* policy_walk's error */
	char content[16];  /* the first line of the file reached, "" if not read */
};

ParameterizedTestParameters(symlinks, a_link_leaving_its_mount_resolves_in_the_guest)
{
	static struct walk_case c[] = {
	    /* Debian's /lib64 -> /lib: through two nested read-only mounts. */
	    {{"/lib64/ld.so", "/usr/lib64/ld.so"},
	     POLICY_FOLLOW,
	     "/lib/x86/ld.so",
	     "/lib",
	     0,
	     "ld"},
	    /* Absolute, and relative with ".." past the mount's root: the guest's paths; a
	     * directory on the way; bouncing between mounts (/m/c/bounce -> /a/abs). */
	    {{"/a/abs", "/a/rel", "/a/bdir/data.txt", "/m/c/bounce"},
	     POLICY_FOLLOW,
	     "/m/b/data.txt",
	     "/m/b",
	     0,
	     "data"},
	    /* h/a/../b/data.txt exists on the host, /b/data.txt nowhere in the guest. */
	    {{"/a/hostrel", "/a/out"}, POLICY_FOLLOW, "", "", -ENOENT, ""},
	    /* Directories on the way, and ".." inside a target taken at the guest level. */
	    {{"/a/dirl/f", "/a/up/sub/f"}, POLICY_FOLLOW, "/m/c/sub/f", "/m/c", 0, "mine"},
	    /* A final link not followed is the link; links before it still are. */
	    {{"/a/abs"}, POLICY_NOFOLLOW, "/a/abs", "/a", 0, ""},
	    {{"/a/dirl/f"}, POLICY_NOFOLLOW, "/m/c/sub/f", "/m/c", 0, ""},
	    {{"/a/dirl/new"}, POLICY_PARENT, "/m/c/sub/new", "", 0, ""},
	    /* A dangling link names what O_CREAT would make, in the other mount. */
	    {{"/a/dang"}, POLICY_FOLLOW, "/m/c/new", "", 0, ""},
	    /* To the guest's root: a virtual directory. */
	    {{"/a/root"}, POLICY_FOLLOW, "/", "", 0, ""},
	    /* Loops end as Linux's do; a file is not a directory. */
	    {{"/a/l1"}, POLICY_FOLLOW, "", "", -ELOOP, ""},
	    {{"/a/l1/x"}, POLICY_PARENT, "", "", -ELOOP, ""},
	    {{"/a/abs/x"}, POLICY_FOLLOW, "", "", -ENOTDIR, ""},
	};
	return cr_make_param_array(struct walk_case, c, sizeof(c) / sizeof(c[0]));
}

static void walk_one(const struct walk_case *c, const char *path)
{
	char g[POLICY_PATH_MAX];
	int r = policy_walk(&pol, path, c->how, g, sizeof(g));
	cr_assert_eq(r, c->err, "%s: %d", path, r);
	if (r == 0)
		cr_expect_str_eq(g, c->walked, "%s", path);
	if (!c->mount[0])
		return;
	const struct policy_mount *m = NULL;
	int flags = c->content[0] ? O_RDONLY : O_PATH;
	int fd = policy_open_guest(&pol, path, c->how, flags, 0, NULL, NULL, &m);
	cr_assert_geq(fd, 0, "%s: %d", path, fd);
	cr_expect_str_eq(m->guest, c->mount, "%s", path);
	if (c->content[0]) {
		char buf[64] = {0};
		cr_assert_gt(read(fd, buf, sizeof(buf) - 1), 0);
		buf[strcspn(buf, "\n")] = 0;
		cr_expect_str_eq(buf, c->content, "%s", path);
	}
	close(fd);
}

ParameterizedTest(struct walk_case *c, symlinks, a_link_leaving_its_mount_resolves_in_the_guest)
{
	for (size_t i = 0; i < sizeof(c->paths) / sizeof(c->paths[0]) && c->paths[i][0]; i++)
		walk_one(c, c->paths[i]);
}

Test(symlinks, the_fast_way_says_when_a_link_leaves_the_mount)
{
	/* Not an answer for the guest: the cue for policy_walk. */
	struct policy_target t;
	policy_lookup(&pol, "/a/abs", &t);
	const struct policy_mount *m;
	cr_expect_eq(policy_open(&pol, &t, POLICY_FOLLOW, O_PATH, 0, NULL, NULL, &m), -EXDEV);
	struct policy_node n;
	policy_lookup(&pol, "/a/dirl/new", &t);
	cr_expect_eq(policy_resolve_parent(&pol, &t, &n), -EXDEV);
	/* A link inside its mount never gets there. */
	sh("ln -s secret h/a/inside");
	policy_lookup(&pol, "/a/inside", &t);
	int fd = policy_open(&pol, &t, POLICY_FOLLOW, O_RDONLY, 0, NULL, NULL, &m);
	cr_assert_geq(fd, 0);
	close(fd);
}

/* A chain of n links, alternating between /a and /m/c, ending at /m/b/data.txt. */
static void chain(int n)
{
	char cmd[256];
	for (int i = 0; i < n; i++) {
		const char *here = i % 2 ? "h/c" : "h/a";
		if (i == n - 1)
			snprintf(cmd, sizeof(cmd), "ln -s /m/b/data.txt %s/n%d", here, i);
		else
			snprintf(cmd, sizeof(cmd), "ln -s %s/n%d %s/n%d", i % 2 ? "/a" : "/m/c",
				 i + 1, here, i);
		sh(cmd);
	}
}

Test(symlinks, forty_links_are_followed_and_not_one_more)
{
	char g[POLICY_PATH_MAX];
	chain(40);
	cr_expect_eq(policy_walk(&pol, "/a/n0", POLICY_FOLLOW, g, sizeof(g)), 0);
	cr_expect_str_eq(g, "/m/b/data.txt");
	sh("rm h/a/n* h/c/n*");
	chain(41);
	cr_expect_eq(policy_walk(&pol, "/a/n0", POLICY_FOLLOW, g, sizeof(g)), -ELOOP);
	const struct policy_mount *m;
	cr_expect_eq(policy_open_guest(&pol, "/a/n0", POLICY_FOLLOW, O_PATH, 0, NULL, NULL, &m),
		     -ELOOP);
}

Test(symlinks, a_link_into_a_read_only_mount_keeps_its_rule)
{
	/* The monitor refuses writes where the mount reached is read-only: the mount it is
	 * given here must be /m/b, not /a where the path's text starts. */
	const struct policy_mount *m;
	int fd = policy_open_guest(&pol, "/a/abs", POLICY_FOLLOW, O_PATH, 0, NULL, NULL, &m);
	cr_assert_geq(fd, 0);
	close(fd);
	cr_expect_str_eq(m->guest, "/m/b");
	cr_expect(!m->rw);
	/* And an entry made through a link lands in the directory's mount. */
	char g[POLICY_PATH_MAX];
	cr_assert_eq(policy_walk(&pol, "/a/bdir/new", POLICY_PARENT, g, sizeof(g)), 0);
	struct policy_target t;
	policy_lookup(&pol, g, &t);
	struct policy_node n;
	cr_assert_eq(policy_resolve_parent(&pol, &t, &n), 0);
	cr_expect_str_eq(n.mount->guest, "/m/b");
	cr_expect(!n.mount->rw);
	policy_node_release(&n);
}

/* The guest, racing: once the walk has led to /m/b/data.txt, that file becomes a link whose
 * target, resolved on the host from h/b, is h/a/secret: outside the mount it is checked
 * against. */
static int swap_after_walk(const struct policy_node *n, int *flags, void *ctx)
{
	(void)flags;
	int *calls = ctx;
	if (++*calls == 2 && strcmp(n->mount->guest, "/m/b") == 0)
		sh("rm h/b/data.txt && ln -s ../a/secret h/b/data.txt");
	return 0;
}

Test(symlinks, a_link_swapped_after_the_walk_never_opens_outside_the_mount)
{
	const struct policy_mount *m;
	int calls = 0;
	int fd = policy_open_guest(&pol, "/a/abs", POLICY_FOLLOW, O_RDONLY, 0, swap_after_walk,
				   &calls, &m);
	cr_assert_eq(calls, 2, "the check ran before and after the walk");
	cr_expect_eq(fd, -ENOENT);
	if (fd >= 0) {
		char buf[16] = {0};
		cr_expect_eq(read(fd, buf, sizeof(buf) - 1), -1, "read %s", buf);
		close(fd);
	}
}

Test(symlinks, no_descriptor_is_left_open)
{
	static const char *const paths[] = {"/lib64/ld.so", "/a/abs",	"/a/hostrel", "/a/l1",
					    "/a/dirl/f",    "/a/abs/x", "/a/root",    "/a/dang"};
	int before = scratch_open_fds();
	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
			char g[POLICY_PATH_MAX];
			const struct policy_mount *m;
			for (int how = POLICY_FOLLOW; how <= POLICY_PARENT; how++)
				policy_walk(&pol, paths[i], how, g, sizeof(g));
			int fd = policy_open_guest(&pol, paths[i], POLICY_FOLLOW, O_PATH, 0, NULL,
						   NULL, &m);
			if (fd >= 0)
				close(fd);
		}
	}
	cr_expect_eq(scratch_open_fds(), before);
}

/* A file two mounts show (Debian's /bin, a view of /usr/bin, beside /usr) is named by the one
 * that shows it at its host path, as Linux names it (/proc/self/exe), whatever the order. */
Test(symlinks, a_file_shown_twice_is_named_where_its_host_path_is)
{
	struct policy p;
	char err[256], out[256];
	policy_init(&p);
	cr_assert_eq(policy_add_mount(&p, "/usr/bin:/bin", 0, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(policy_guest_path_of(&p, "/usr/bin/env", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "/bin/env", "only the view shows it");
	cr_assert_eq(policy_add_mount(&p, "/usr", 0, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(policy_guest_path_of(&p, "/usr/bin/env", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "/usr/bin/env");
	cr_assert_eq(policy_guest_path_of(&p, "/etc/passwd", out, sizeof(out)), -ENOENT);
	policy_free(&p);
}

/* A mount of a host path that is a symlink, at that same path (Debian's /bin -> usr/bin), is
 * that link in the guest while another mount shows its target as the same host directory:
 * paths through it continue at the target, lstat and readlink see the link. Alone, it is the
 * directory it shows. */
Test(symlinks, a_mounted_host_link_stays_a_link_beside_its_target)
{
	sh("mkdir -p t/usr/bin t/other && echo x > t/usr/bin/prog && ln -s usr/bin t/bin && "
	   "ln -s other t/elsewhere");
	char bin[128], usr[128], elsewhere[128], g[POLICY_PATH_MAX], text[64], want[160];
	snprintf(bin, sizeof(bin), "%s/t/bin", dir);
	snprintf(usr, sizeof(usr), "%s/t/usr", dir);
	snprintf(elsewhere, sizeof(elsewhere), "%s/t/elsewhere", dir);
	struct policy p;
	char err[256];
	policy_init(&p);
	cr_assert_eq(policy_add_mount(&p, bin, 0, err, sizeof(err)), 0, "%s", err);
	/* Its target not shown: a directory, paths through it stay. */
	cr_assert_eq(policy_link_of(&p, bin, text, sizeof(text)), -ENOENT);
	snprintf(g, sizeof(g), "%s/prog", bin);
	cr_assert_eq(policy_follow_links(&p, g, sizeof(g), 1), 0);
	snprintf(want, sizeof(want), "%s/prog", bin);
	cr_assert_str_eq(g, want);
	cr_assert_eq(policy_add_mount(&p, usr, 0, err, sizeof(err)), 0, "%s", err);
	cr_assert_geq(policy_link_of(&p, bin, text, sizeof(text)), 0);
	cr_assert_str_eq(text, "usr/bin");
	cr_assert_eq(policy_follow_links(&p, g, sizeof(g), 1), 0);
	snprintf(want, sizeof(want), "%s/t/usr/bin/prog", dir);
	cr_assert_str_eq(g, want);
	/* The link itself when last and not followed; followed, its target. */
	snprintf(g, sizeof(g), "%s", bin);
	cr_assert_eq(policy_follow_links(&p, g, sizeof(g), 0), 0);
	cr_assert_str_eq(g, bin);
	cr_assert_eq(policy_follow_links(&p, g, sizeof(g), 1), 0);
	snprintf(want, sizeof(want), "%s/t/usr/bin", dir);
	cr_assert_str_eq(g, want);
	/* ".." after it climbs from its target, as after any link. */
	snprintf(g, sizeof(g), "%s/t/bin/..", dir);
	char walked[POLICY_PATH_MAX];
	cr_assert_eq(policy_normalize_walked(&p, "/", g, strlen(g), walked, sizeof(walked)), 0);
	snprintf(want, sizeof(want), "%s/t/usr", dir);
	cr_assert_str_eq(walked, want);
	/* A link whose target is another directory than the one shown there: a directory. */
	cr_assert_eq(policy_add_mount(&p, elsewhere, 0, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(policy_link_of(&p, elsewhere, text, sizeof(text)), -ENOENT);
	policy_free(&p);
}

/* No link where it would change what a path reaches or under which rule: a mount beneath it
 * (a --tmp /bin/cache) would be out of reach, and --rw /bin beside --ro /usr is writable. */
Test(symlinks, a_mounted_host_link_stays_a_directory_where_a_link_would_differ)
{
	sh("mkdir -p u/usr/bin/cache && ln -s usr/bin u/bin");
	char bin[128], usr[128], cache[160], text[64], spec[320];
	snprintf(bin, sizeof(bin), "%s/u/bin", dir);
	snprintf(usr, sizeof(usr), "%s/u/usr", dir);
	snprintf(cache, sizeof(cache), "%s/cache", bin);
	struct policy p;
	char err[256];
	policy_init(&p);
	cr_assert_eq(policy_add_mount(&p, bin, 1, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(policy_add_mount(&p, usr, 0, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(policy_link_of(&p, bin, text, sizeof(text)), -ENOENT, "another rule");
	policy_free(&p);
	policy_init(&p);
	cr_assert_eq(policy_add_mount(&p, bin, 0, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(policy_add_mount(&p, usr, 0, err, sizeof(err)), 0, "%s", err);
	cr_assert_geq(policy_link_of(&p, bin, text, sizeof(text)), 0);
	snprintf(spec, sizeof(spec), "%s/u/usr/bin/cache:%s", dir, cache);
	cr_assert_eq(policy_add_mount(&p, spec, 1, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(policy_link_of(&p, bin, text, sizeof(text)), -ENOENT, "a mount beneath");
	policy_free(&p);
}
