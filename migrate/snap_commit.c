/* Putting a snapshot file in place (migrate.h: mig_snap_tmp_open, mig_snap_commit,
 * mig_snap_abort): written under no name, or a temporary one, beside its destination, then
 * linked or renamed there atomically and made durable, so that a reader of the path sees the
 * old file or the whole new one, and a writer killed half-way leaves nothing (or, without
 * O_TMPFILE, a named temporary) behind. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "mig_internal.h"

/* The directory `path` is in, for O_TMPFILE and the fsync after a rename. */
static void dir_of(const char *path, char *dir, size_t len)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(dir, len, ".");
	else if (slash == path)
		snprintf(dir, len, "/");
	else
		snprintf(dir, len, "%.*s", (int)(slash - path), path);
}

int mig_snap_tmp_open_named(const char *path, char *tmp, size_t tmplen, char *err, size_t errlen)
{
	int n = snprintf(tmp, tmplen, "%s.tmp.XXXXXX", path);
	if (n < 0 || (size_t)n >= tmplen)
		return mig_fail(err, errlen, -ENAMETOOLONG, "%s: path too long", path);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return mig_fail(err, errlen, -errno, "%s: %s", tmp, strerror(errno));
	return fd;
}

int mig_snap_tmp_open(const char *path, char *tmp, size_t tmplen, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	int n = snprintf(tmp, tmplen, "%s.tmp.XXXXXX", path); /* the fallback's name must fit */
	if (n < 0 || (size_t)n >= tmplen)
		return mig_fail(err, errlen, -ENAMETOOLONG, "%s: path too long", path);
	dir_of(path, dir, sizeof(dir));
	/* Without a name nothing is left behind by a process killed before the commit; the
	 * commit links it in through /proc/self/fd, so that must be there too. */
	if (access("/proc/self/fd", X_OK) == 0) {
		int fd = open(dir, O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
		if (fd >= 0) {
			tmp[0] = 0;
			return fd;
		}
		/* File systems without O_TMPFILE say so in several ways; anything else (no such
		 * directory, no permission) the named file will say again. */
	}
	return mig_snap_tmp_open_named(path, tmp, tmplen, err, errlen);
}

/* An unnamed temporary given the name `name` (which must not exist). */
static int link_unnamed(int fd, const char *name)
{
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, name, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	return -errno;
}

/* Puts an unnamed temporary in place at path: linked there if nothing is, else linked to a
 * fresh name beside it and renamed over the old file (atomic for readers of path; a process
 * killed between the two leaves that name behind, a complete snapshot). */
static int commit_unnamed(int fd, const char *path, char *err, size_t errlen)
{
	int r = link_unnamed(fd, path);
	if (r != -EEXIST) {
		if (r < 0)
			return mig_fail(err, errlen, r, "%s: linking the snapshot in: %s", path,
					strerror(-r));
		return 0;
	}
	char name[PATH_MAX];
	for (int tries = 0; tries < 16; tries++) {
		uint64_t rnd = 0;
		if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			rnd = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)tries;
		int n = snprintf(name, sizeof(name), "%s.tmp.%012llx", path,
				 (unsigned long long)(rnd & 0xffffffffffffull));
		if (n < 0 || (size_t)n >= sizeof(name))
			return mig_fail(err, errlen, -ENAMETOOLONG, "%s: path too long", path);
		r = link_unnamed(fd, name);
		if (r != -EEXIST)
			break;
	}
	if (r < 0)
		return mig_fail(err, errlen, r, "%s: linking the snapshot in: %s", name,
				strerror(-r));
	if (rename(name, path) < 0) {
		r = -errno;
		unlink(name);
		return mig_fail(err, errlen, r, "%s: rename to %s: %s", name, path, strerror(-r));
	}
	return 0;
}

int mig_snap_commit(int fd, const char *tmp, const char *path, char *err, size_t errlen)
{
	if (fsync(fd) < 0)
		return mig_fail(err, errlen, -errno, "%s: fsync: %s", tmp[0] ? tmp : path,
				strerror(errno));
	if (!tmp[0]) {
		int r = commit_unnamed(fd, path, err, errlen);
		if (r < 0)
			return r;
	} else if (rename(tmp, path) < 0) {
		return mig_fail(err, errlen, -errno, "%s: rename to %s: %s", tmp, path,
				strerror(errno));
	}
	/* The new name is only durable once the directory is. */
	char dir[PATH_MAX];
	dir_of(path, dir, sizeof(dir));
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return mig_fail(err, errlen, -errno, "%s: %s", dir, strerror(errno));
	int rc = fsync(dfd) < 0 ? -errno : 0;
	close(dfd);
	if (rc < 0)
		return mig_fail(err, errlen, rc, "%s: fsync: %s", dir, strerror(-rc));
	close(fd);
	return 0;
}

void mig_snap_abort(int fd, const char *tmp)
{
	if (fd >= 0)
		close(fd); /* an unnamed temporary is gone with its last descriptor */
	if (tmp && tmp[0])
		unlink(tmp);
}
