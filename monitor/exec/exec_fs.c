/* The --tmp directories of a sandbox run many times: what a run wrote there is taken away
 * before the next, like its memory. A copy of each directory as it was at the snapshot is
 * kept next to it, and put back only after a run that changed the file system. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec_priv.h"

/* Calls fn for each entry of dirfd but "." and "..". With `stop`, the first error ends the
 * walk; without, the walk goes on. Either way the first error is the result. */
static int each_entry(int dirfd, int stop, int (*fn)(int dirfd, const struct dirent *e, void *ctx),
		      void *ctx)
{
	int dfd = dup(dirfd);
	if (dfd < 0)
		return -errno;
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return -errno;
	}
	int r = 0;
	struct dirent *e;
	rewinddir(d);
	while ((!stop || !r) && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		int q = fn(dirfd, e, ctx);
		r = r ? r : q;
	}
	closedir(d);
	return r;
}

static int open_dir_at(int at, const char *path)
{
	return openat(at, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* op(a, b) on two directories, opened beneath at_a and at_b (AT_FDCWD: by path). */
static int with_dirs(int at_a, const char *a, int at_b, const char *b, int (*op)(int a, int b))
{
	int fa = open_dir_at(at_a, a), fb = open_dir_at(at_b, b);
	int r = fa < 0 || fb < 0 ? -errno : op(fa, fb);
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	return r;
}

static int tree_clear(int dirfd);

static int clear_entry(int dirfd, const struct dirent *e, void *ctx)
{
	(void)ctx;
	if (e->d_type != DT_DIR)
		return unlinkat(dirfd, e->d_name, 0) < 0 ? -errno : 0;
	/* A run may have taken its own permissions away: give them back first. */
	fchmodat(dirfd, e->d_name, 0700, 0);
	int r = 0, sub = open_dir_at(dirfd, e->d_name);
	if (sub >= 0) {
		r = tree_clear(sub);
		close(sub);
	}
	if (unlinkat(dirfd, e->d_name, AT_REMOVEDIR) < 0 && !r)
		r = -errno;
	return r;
}

/* Removes everything inside dirfd (not dirfd itself). */
static int tree_clear(int dirfd)
{
	return each_entry(dirfd, 0, clear_entry, NULL);
}

static int tree_copy(int src, int dst);

static int copy_file(int src, int dst, const char *name, const struct stat *st)
{
	int a = openat(src, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int b = openat(dst, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st->st_mode & 07777);
	int r = a < 0 || b < 0 ? -errno : 0;
	for (off_t left = st->st_size; !r && left > 0;) {
		ssize_t n = sendfile(b, a, NULL, (size_t)left);
		if (n <= 0)
			r = n < 0 ? -errno : -EIO;
		left -= n;
	}
	if (a >= 0)
		close(a);
	if (b >= 0)
		close(b);
	return r;
}

static int copy_entry(int src, const struct dirent *e, void *ctx)
{
	int dst = *(const int *)ctx;
	struct stat st;
	if (fstatat(src, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode)) {
		if (mkdirat(dst, e->d_name, st.st_mode & 07777) < 0)
			return -errno;
		return with_dirs(src, e->d_name, dst, e->d_name, tree_copy);
	}
	if (S_ISREG(st.st_mode))
		return copy_file(src, dst, e->d_name, &st);
	if (S_ISLNK(st.st_mode)) {
		char t[4096];
		ssize_t n = readlinkat(src, e->d_name, t, sizeof(t) - 1);
		if (n < 0)
			return -errno;
		t[n] = 0;
		return symlinkat(t, dst, e->d_name) < 0 ? -errno : 0;
	}
	return 0; /* sockets, fifos and devices are not something a run can make there */
}

/* Copies the contents of src into dst: directories, regular files, symlinks, with modes. */
static int tree_copy(int src, int dst)
{
	return each_entry(src, 1, copy_entry, &dst);
}

static int clear_and_copy(int src, int dst)
{
	int r = tree_clear(dst);
	return r ? r : tree_copy(src, dst);
}

int sbx_tmp_save(struct sbx_vm *vm, char ***saved, char *err, size_t errlen)
{
	const struct policy *p = vm->cfg.policy;
	*saved = NULL;
	if (!p || !p->ntmp_host)
		return 0;
	char **s = calloc(p->ntmp_host + 1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	*saved = s;
	for (size_t i = 0; i < p->ntmp_host; i++) {
		if (asprintf(&s[i], "%s.snapshot", p->tmp_host[i]) < 0) {
			s[i] = NULL;
			return -ENOMEM;
		}
		int r = mkdir(s[i], 0700) < 0 ? -errno : 0;
		if (!r)
			r = with_dirs(AT_FDCWD, p->tmp_host[i], AT_FDCWD, s[i], tree_copy);
		if (r < 0) {
			return sbx_fail(err, errlen, r,
					"copying --tmp %s as it is at the snapshot: %s", p->tmp[i],
					strerror(-r));
		}
	}
	return 0;
}

int sbx_tmp_restore(struct sbx_vm *vm, char **saved, char *err, size_t errlen)
{
	const struct policy *p = vm->cfg.policy;
	for (size_t i = 0; saved && saved[i] && i < p->ntmp_host; i++) {
		struct stat st;
		/* The directory itself as it was made (a run may have chmod'ed it). */
		if (stat(saved[i], &st) == 0)
			chmod(p->tmp_host[i], st.st_mode & 07777);
		int r = with_dirs(AT_FDCWD, saved[i], AT_FDCWD, p->tmp_host[i], clear_and_copy);
		if (r < 0) {
			return sbx_fail(err, errlen, r, "putting back --tmp %s: %s", p->tmp[i],
					strerror(-r));
		}
	}
	return 0;
}

void sbx_tmp_free(char **saved)
{
	for (size_t i = 0; saved && saved[i]; i++) {
		int d = open_dir_at(AT_FDCWD, saved[i]);
		if (d >= 0) {
			tree_clear(d);
			close(d);
		}
		rmdir(saved[i]);
		free(saved[i]);
	}
	free(saved);
}
