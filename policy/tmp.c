/* --tmp: private writable directories that go when their sandbox goes, however it ends.
 *
 * A sandbox's directories live in one run directory, $TMPDIR/sandbox-UID/run-XXXXXX, next to a
 * lock file that its monitor holds (flock) for as long as it lives. The monitor removes them at
 * its end, on a signal too (the front ends catch the ones a user sends); and since a SIGKILL
 * leaves no chance to, every sandbox that makes --tmp directories first removes the run
 * directories whose lock nobody holds any more. */
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "policy_int.h"

/* A run directory without a lock file yet is being made: leave it this long. */
#define TMP_UNLOCKED_GRACE_S 60

int policy_add_tmp(struct policy *p, const char *guest, char *err, size_t errlen)
{
	char norm[POLICY_PATH_MAX];
	if (guest[0] != '/' ||
	    policy_normalize("/", guest, strlen(guest), norm, sizeof(norm)) < 0) {
		snprintf(err, errlen, "--tmp %s: expected an absolute guest path", guest);
		return -EINVAL;
	}
	char *g = strdup(norm);
	if (!g || policy_strv_push(&p->tmp, &p->ntmp, g) < 0) {
		free(g);
		return -ENOMEM;
	}
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	/* Not remove(): under Landlock its unlink of a directory fails with EACCES, not EISDIR,
	 * and it never tries rmdir. */
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

/* FTW_PHYS: a symlink the guest planted is removed, never followed. */
static void remove_tree(const char *path)
{
	nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/* $TMPDIR/sandbox-UID: ours alone (a directory we own, mode 0700, not a link), or nothing. */
static int base_dir(char *out, size_t len, int on_shm, char *err, size_t errlen)
{
	const char *tmp = on_shm ? "/dev/shm" : getenv("TMPDIR");
	snprintf(out, len, "%s/sandbox-%u", tmp && *tmp ? tmp : "/tmp", (unsigned)getuid());
	if (mkdir(out, 0700) < 0 && errno != EEXIST) {
		int e = errno;
		snprintf(err, errlen, "--tmp: cannot create %s: %s", out, strerror(e));
		return -e;
	}
	struct stat st;
	if (lstat(out, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
	    (st.st_mode & 077)) {
		snprintf(err, errlen,
			 "--tmp: %s is not a private directory of this user (another user's, a "
			 "link, or open to others): remove it or set TMPDIR",
			 out);
		return -EPERM;
	}
	return 0;
}

/* Removes the run directories of sandboxes that are gone. */
static void sweep(const char *base)
{
	DIR *d = opendir(base);
	if (!d)
		return;
	struct dirent *e;
	char run[POLICY_PATH_MAX + 260], lock[POLICY_PATH_MAX + 270];
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "run-", 4))
			continue;
		snprintf(run, sizeof(run), "%s/%s", base, e->d_name);
		snprintf(lock, sizeof(lock), "%s/lock", run);
		int fd = open(lock, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			struct stat st;
			if (lstat(run, &st) == 0 && S_ISDIR(st.st_mode) &&
			    time(NULL) - st.st_mtime > TMP_UNLOCKED_GRACE_S)
				remove_tree(run);
			continue;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			remove_tree(run);
		close(fd);
	}
	closedir(d);
}

/* Linux systems have a /dev/shm (shm_open, sem_open, Python's multiprocessing locks): a
 * sandbox gets a private one, unless it shows no virtual /dev, or a /dev or /dev/shm of its
 * own. */
static int add_dev_shm(struct policy *p, char *err, size_t errlen)
{
	if (p->no_dev)
		return 0;
	for (size_t i = 0; i < p->ntmp; i++)
		if (!strcmp(p->tmp[i], "/dev/shm") || !strcmp(p->tmp[i], "/dev") ||
		    !strcmp(p->tmp[i], "/"))
			return 0;
	struct policy_target *t = malloc(sizeof(*t));
	if (!t)
		return -ENOMEM;
	policy_lookup(p, "/dev/shm", t);
	int r = t->kind == POLICY_MOUNT ? 0 : policy_add_tmp(p, "/dev/shm", err, errlen);
	free(t);
	return r;
}

/* The run directory and its lock, under $TMPDIR/sandbox-UID, or the host's /dev/shm. */
static int make_run(struct policy *p, int on_shm, char *err, size_t errlen)
{
	char base[POLICY_PATH_MAX], run[POLICY_PATH_MAX + 16], lock[POLICY_PATH_MAX + 24];
	int r = base_dir(base, sizeof(base), on_shm, err, errlen);
	if (r < 0)
		return r;
	sweep(base);
	snprintf(run, sizeof(run), "%s/run-XXXXXX", base);
	if (!mkdtemp(run)) {
		int e = errno;
		snprintf(err, errlen, "--tmp: cannot create %s: %s", run, strerror(e));
		return -e;
	}
	snprintf(lock, sizeof(lock), "%s/lock", run);
	int fd = open(lock, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		snprintf(err, errlen, "--tmp: cannot lock %s: %s", lock, strerror(e));
		if (fd >= 0)
			close(fd);
		remove_tree(run);
		return -e;
	}
	p->tmp_run = strdup(run);
	if (!p->tmp_run) {
		close(fd);
		remove_tree(run);
		return -ENOMEM;
	}
	p->tmp_lock_fd = fd;
	return 0;
}

/* The mounts beneath a --tmp directory get their mount points, and the directories on the way,
 * made in it, as binds in a tmpfs have them (bubblewrap makes them so): a program that walks
 * such a path a component at a time (realpath, git's repository discovery) finds each one, and
 * a listing of the directory shows it. host: the --tmp directory made for guest. */
/* Is b strictly beneath a (both normalised)? */
static int beneath(const char *a, const char *b)
{
	size_t rest;
	return strcmp(a, b) != 0 && policy_path_under(a, b, &rest);
}

/* Does another mount lie between a and b (its directories are that mount's, not a's)? */
static int between(const struct policy *p, const char *a, const char *b)
{
	for (size_t m = 0; m < p->nmounts; m++)
		if (beneath(a, p->mounts[m].guest) && beneath(p->mounts[m].guest, b))
			return 1;
	return 0;
}

static void make_mount_points(const struct policy *p, const char *host, const char *guest)
{
	size_t hl = strlen(host), rest;
	for (size_t m = 0; m < p->nmounts; m++) {
		const char *g = p->mounts[m].guest;
		if (strcmp(guest, g) == 0 || !policy_path_under(guest, g, &rest) ||
		    between(p, guest, g))
			continue;
		char path[2 * POLICY_PATH_MAX + 2];
		if (snprintf(path, sizeof(path), "%s/%s", host, g + rest) >= (int)sizeof(path))
			continue;
		for (char *c = path + hl + 1;; c++) {
			if (*c && *c != '/')
				continue;
			char was = *c;
			*c = 0;
			if (was || p->mounts[m].is_dir)
				mkdir(path, 0755);
			else
				close(
				    open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
			*c = was;
			if (!was)
				break;
		}
	}
}

int policy_make_tmp(struct policy *p, char *err, size_t errlen)
{
	size_t had = p->ntmp;
	int r0 = add_dev_shm(p, err, errlen);
	if (r0 < 0)
		return r0;
	int shm_only = p->ntmp > had && p->ntmp == 1;
	if (p->ntmp_host >= p->ntmp)
		return 0;
	if (!p->tmp_run) {
		/* The sandbox's own /dev/shm alone goes on the host's, a tmpfs as it is in the
		 * sandbox: a directory made and removed there costs ~10 us, on a disk's file
		 * system ~0.3 ms (measured on ext4), which every run would pay. It is no
		 * directory the user asked for: where none can be made, there is none. */
		struct stat sh;
		int on_shm = shm_only && stat("/dev/shm", &sh) == 0 && S_ISDIR(sh.st_mode) &&
			     access("/dev/shm", W_OK | X_OK) == 0;
		int r = make_run(p, on_shm, err, errlen);
		if (r < 0 && on_shm)
			r = make_run(p, 0, err, errlen);
		if (r < 0 && shm_only) {
			free(p->tmp[--p->ntmp]);
			p->tmp[p->ntmp] = NULL;
			err[0] = 0;
			return 0;
		}
		if (r < 0)
			return r;
	}
	size_t first = p->ntmp_host;
	for (size_t i = first; i < p->ntmp; i++) {
		char dir[POLICY_PATH_MAX + 32], spec[2 * POLICY_PATH_MAX + 40];
		snprintf(dir, sizeof(dir), "%s/%zu", p->tmp_run, i);
		if (mkdir(dir, 0700) < 0) {
			int e = errno;
			snprintf(err, errlen, "--tmp %s: cannot create %s: %s", p->tmp[i], dir,
				 strerror(e));
			return -e;
		}
		char *h = strdup(dir);
		if (!h || policy_strv_push(&p->tmp_host, &p->ntmp_host, h) < 0) {
			free(h);
			rmdir(dir);
			return -ENOMEM;
		}
		snprintf(spec, sizeof(spec), "%s:%s", dir, p->tmp[i]);
		int r = policy_add_mount(p, spec, 1, err, errlen);
		if (r < 0)
			return r;
	}
	/* Once every --tmp is a mount: one may lie beneath another. */
	for (size_t i = first; i < p->ntmp_host; i++)
		make_mount_points(p, p->tmp_host[i], p->tmp[i]);
	return 0;
}

void policy_remove_tmp(struct policy *p)
{
	if (p->tmp_run) {
		/* Empty directories (most runs leave them so) go without a walk, which costs
		 * ~0.2 ms. The lock goes last: until the tree is gone, no other sandbox may take
		 * it. */
		char lock[POLICY_PATH_MAX + 24];
		int empty = 1;
		for (size_t i = 0; i < p->ntmp_host; i++)
			if (rmdir(p->tmp_host[i]) < 0)
				empty = 0;
		snprintf(lock, sizeof(lock), "%s/lock", p->tmp_run);
		if (!empty || unlink(lock) < 0 || rmdir(p->tmp_run) < 0)
			remove_tree(p->tmp_run);
		free(p->tmp_run);
		p->tmp_run = NULL;
		close(p->tmp_lock_fd);
	}
	policy_strv_free(&p->tmp_host, &p->ntmp_host);
	policy_strv_free(&p->tmp, &p->ntmp);
}
