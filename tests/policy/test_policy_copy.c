/* policy_copy (policy/policy.c): a policy of its own with the same rules, as every
 * sandbox-serve instance gets from the command line parsed once. No KVM: the policy library on
 * a scratch host tree. */
#include <criterion/criterion.h>
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

static void sh(const char *cmd)
{
	scratch_sh(dir, cmd);
}

static void setup(void)
{
	scratch_make(dir, sizeof(dir), "copy");
	sh("mkdir -p h/rw/prot tmp && echo protected > h/rw/prot/p.txt && echo mine > h/rw/mine && "
	   "ln -s prot h/rw/pl && echo f > h/file");
	/* --tmp directories go below the scratch tree, not the user's own $TMPDIR. */
	char tmp[128];
	snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
	setenv("TMPDIR", tmp, 1);
}

static void teardown(void)
{
	scratch_remove(dir);
}

TestSuite(copy, .init = setup, .fini = teardown);

static void mount_(struct policy *p, const char *host, const char *guest, int rw)
{
	char spec[256], err[256];
	snprintf(spec, sizeof(spec), "%s/%s:%s", dir, host, guest);
	cr_assert_eq(policy_add_mount(p, spec, rw, err, sizeof(err)), 0, "%s", err);
}

/* /rw holds /rw/prot (nested), /f is a file mount; env, cwd, --tmp, limits, --no-stdin. */
static void full_policy(struct policy *p)
{
	char err[256];
	policy_init(p);
	mount_(p, "h/rw", "/rw", 1);
	mount_(p, "h/rw/prot", "/rw/prot", 0);
	mount_(p, "h/file", "/f", 0);
	cr_assert_eq(policy_set_env(p, "A=1", err, sizeof(err)), 0);
	cr_assert_eq(policy_set_cwd(p, "/rw", err, sizeof(err)), 0);
	cr_assert_eq(policy_add_tmp(p, "/scratch", err, sizeof(err)), 0);
	p->lim.mem = 64u << 20;
	p->lim.wall_ms = 2000;
	p->no_stdin = 1;
}

static char *as_json(const struct policy *p)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	cr_assert_not_null(f);
	cr_assert_eq(policy_write_json(p, f), 0);
	fclose(f);
	return text;
}

/* The mount whose rule a guest path gets, decided on the object it reaches. */
static const char *rule_of(const struct policy *p, const char *path)
{
	struct policy_target t;
	const struct policy_mount *m = NULL;
	policy_lookup(p, path, &t);
	int fd = policy_open(p, &t, POLICY_FOLLOW, O_RDONLY, 0, NULL, NULL, &m);
	if (fd < 0)
		return "";
	close(fd);
	return m->guest;
}

Test(copy, has_the_same_rules_on_descriptors_of_its_own)
{
	struct policy a, b;
	char err[256];
	full_policy(&a);
	cr_assert_eq(policy_copy(&b, &a, err, sizeof(err)), 0, "%s", err);
	char *ja = as_json(&a), *jb = as_json(&b);
	cr_expect_str_eq(jb, ja);
	free(ja);
	free(jb);
	cr_assert_eq(b.nmounts, a.nmounts);
	cr_expect_eq(b.npins, a.npins);
	for (size_t i = 0; i < a.nmounts; i++) {
		cr_expect_neq(b.mounts[i].root_fd, a.mounts[i].root_fd, "%s", a.mounts[i].guest);
		cr_expect_neq(b.mounts[i].host, a.mounts[i].host, "strings of its own");
		cr_expect_eq(b.mounts[i].holds_mounts, a.mounts[i].holds_mounts);
		cr_expect_eq(b.mounts[i].nup, a.mounts[i].nup);
	}
	cr_expect_neq((void *)b.env, (void *)a.env);
	/* The original goes; the copy still works, nesting included. */
	policy_free(&a);
	cr_expect_str_eq(rule_of(&b, "/rw/pl/p.txt"), "/rw/prot");
	cr_expect_str_eq(rule_of(&b, "/rw/mine"), "/rw");
	cr_expect_str_eq(rule_of(&b, "/f"), "/f");
	cr_expect(policy_has_env(&b, "A"));
	cr_expect_str_eq(b.cwd, "/rw");
	cr_expect_eq(b.lim.mem, 64u << 20);
	cr_expect_eq(b.no_stdin, 1);
	policy_free(&b);
}

Test(copy, keeps_the_host_objects_it_was_given)
{
	struct policy a, b;
	char err[256];
	full_policy(&a);
	cr_assert_eq(policy_copy(&b, &a, err, sizeof(err)), 0, "%s", err);
	policy_free(&a);
	/* The host path now names another directory: the copy still shows the one the command
	 * line named (its root fd), as every instance of one server must. */
	sh("mv h/rw h/old && mkdir -p h/rw && echo other > h/rw/mine");
	struct policy_target t;
	const struct policy_mount *m;
	policy_lookup(&b, "/rw/mine", &t);
	int fd = policy_open(&b, &t, POLICY_FOLLOW, O_RDONLY, 0, NULL, NULL, &m);
	cr_assert_geq(fd, 0);
	char buf[16] = "";
	cr_expect_gt(read(fd, buf, sizeof(buf) - 1), 0);
	cr_expect_str_eq(buf, "mine\n");
	close(fd);
	policy_free(&b);
}

Test(copy, tmp_directories_are_the_copys_own)
{
	struct policy a, b, c;
	char err[256];
	full_policy(&a);
	cr_assert_eq(policy_copy(&b, &a, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(policy_copy(&c, &a, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(policy_make_tmp(&b, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(policy_make_tmp(&c, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_neq(b.tmp_host[0], c.tmp_host[0]);
	char kept[512];
	snprintf(kept, sizeof(kept), "%s", c.tmp_host[0]);
	policy_free(&b);
	struct stat st;
	cr_expect_eq(stat(kept, &st), 0, "one copy's end leaves the other's --tmp directory");
	/* A policy whose directories are made is not copied: the copy would share them. */
	struct policy d;
	cr_expect_eq(policy_copy(&d, &c, err, sizeof(err)), -EBUSY);
	cr_expect(strstr(err, "--tmp"), "%s", err);
	cr_expect_eq(d.nmounts, 0, "a failed copy is left empty");
	policy_free(&c);
	policy_free(&a);
}

/* A mount beneath a --tmp directory has its mount point and the directories on the way made
 * in it (git's discovery walks /tmp/a/b a component at a time), and goes on showing its own
 * object; the --tmp directory is still removed whole at the end. */
Test(copy, mounts_beneath_a_tmp_directory_have_their_mount_points_made)
{
	char err[512] = "", spec[256];
	struct policy a;
	policy_init(&a);
	a.no_dev = 1;
	snprintf(spec, sizeof(spec), "%s/h/rw:/t/a/b/rw", dir);
	cr_assert_eq(policy_add_mount(&a, spec, 1, err, sizeof(err)), 0, "%s", err);
	snprintf(spec, sizeof(spec), "%s/h/rw/mine:/t/f/mine", dir);
	cr_assert_eq(policy_add_mount(&a, spec, 0, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(policy_add_tmp(&a, "/t", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(policy_make_tmp(&a, err, sizeof(err)), 0, "%s", err);
	char made[512], p[600];
	snprintf(made, sizeof(made), "%s", a.tmp_host[0]);
	struct stat st;
	snprintf(p, sizeof(p), "%s/a/b/rw", made);
	cr_expect(stat(p, &st) == 0 && S_ISDIR(st.st_mode), "%s", p);
	snprintf(p, sizeof(p), "%s/f/mine", made);
	cr_expect(stat(p, &st) == 0 && S_ISREG(st.st_mode), "%s", p);
	struct policy_target t;
	policy_lookup(&a, "/t/a/b/rw/prot", &t);
	cr_expect(t.kind == POLICY_MOUNT && strcmp(t.mount->guest, "/t/a/b/rw") == 0);
	policy_lookup(&a, "/t/a", &t);
	cr_expect(t.kind == POLICY_MOUNT && strcmp(t.mount->guest, "/t") == 0);
	policy_free(&a);
	cr_expect_neq(stat(made, &st), 0, "the directory goes with its sandbox");
}

/* Every sandbox with the virtual /dev has a private, empty /dev/shm (sem_open, shm_open),
 * on the host's tmpfs when it is the only private directory; none without /dev, or where
 * the policy shows /dev or /dev/shm itself. */
Test(copy, a_private_dev_shm_comes_with_the_virtual_dev)
{
	char err[512] = "", spec[256];
	struct policy a, b, c, d;
	policy_init(&a);
	cr_assert_eq(policy_make_tmp(&a, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(a.ntmp, 1);
	cr_assert_str_eq(a.tmp[0], "/dev/shm");
	char made[512];
	snprintf(made, sizeof(made), "%s", a.tmp_host[0]);
	struct stat st;
	cr_assert_eq(stat(made, &st), 0);
	cr_expect(S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700);
	struct stat shm;
	if (stat("/dev/shm", &shm) == 0 && S_ISDIR(shm.st_mode) && access("/dev/shm", W_OK) == 0)
		cr_expect(!strncmp(made, "/dev/shm/sandbox-", 17), "%s", made);
	struct policy_target t;
	policy_lookup(&a, "/dev/shm", &t);
	cr_expect(t.kind == POLICY_MOUNT && t.mount->rw);
	policy_free(&a);
	cr_expect_neq(stat(made, &st), 0, "the directory goes with its sandbox");

	policy_init(&b);
	b.no_dev = 1;
	cr_assert_eq(policy_make_tmp(&b, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(b.ntmp, 0);
	policy_free(&b);

	policy_init(&c);
	snprintf(spec, sizeof(spec), "%s/h/rw:/dev", dir);
	cr_assert_eq(policy_add_mount(&c, spec, 0, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(policy_make_tmp(&c, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(c.ntmp, 0, "the policy's own /dev is shown as it is");
	policy_free(&c);

	/* Beside --tmp directories it goes where they go ($TMPDIR), and once. */
	policy_init(&d);
	cr_assert_eq(policy_add_tmp(&d, "/scratch", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(policy_make_tmp(&d, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(d.ntmp, 2);
	cr_expect_str_eq(d.tmp[1], "/dev/shm");
	cr_expect(strncmp(d.tmp_host[1], dir, strlen(dir)) == 0, "%s", d.tmp_host[1]);
	cr_assert_eq(policy_make_tmp(&d, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(d.ntmp, 2);
	policy_free(&d);
}

Test(copy, no_descriptor_is_left_open)
{
	struct policy a, b;
	char err[256];
	full_policy(&a);
	int before = scratch_open_fds();
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(policy_copy(&b, &a, err, sizeof(err)), 0, "%s", err);
		policy_free(&b);
	}
	cr_expect_eq(scratch_open_fds(), before);
	policy_free(&a);
}
