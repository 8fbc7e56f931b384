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

#include "calls.h"
#include "exec.h"
#include "persist.h"

/* Removes everything inside dirfd (not dirfd itself). */
static int tree_clear(int dirfd)
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
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (e->d_type == DT_DIR) {
			/* A run may have taken its own permissions away: give them back first. */
			fchmodat(dirfd, e->d_name, 0700, 0);
			int sub = openat(dirfd, e->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0) {
				int q = tree_clear(sub);
				close(sub);
				r = r ? r : q;
			}
			if (unlinkat(dirfd, e->d_name, AT_REMOVEDIR) < 0 && !r)
				r = -errno;
		} else if (unlinkat(dirfd, e->d_name, 0) < 0 && !r) {
			r = -errno;
		}
	}
	closedir(d);
	return r;
}

/* Copies the contents of src into dst: directories, regular files, symlinks, with modes. */
static int tree_copy(int src, int dst)
{
	int dfd = dup(src);
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
	while (!r && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(src, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = -errno;
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			if (mkdirat(dst, e->d_name, st.st_mode & 07777) < 0) {
				r = -errno;
				break;
			}
			int a =
			    openat(src, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			int b =
			    openat(dst, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			r = a < 0 || b < 0 ? -errno : tree_copy(a, b);
			if (a >= 0)
				close(a);
			if (b >= 0)
				close(b);
		} else if (S_ISREG(st.st_mode)) {
			int a = openat(src, e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			int b = openat(dst, e->d_name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
				       st.st_mode & 07777);
			if (a < 0 || b < 0)
				r = -errno;
			for (off_t left = st.st_size; !r && left > 0;) {
				ssize_t n = sendfile(b, a, NULL, (size_t)left);
				if (n <= 0)
					r = n < 0 ? -errno : -EIO;
				left -= n;
			}
			if (a >= 0)
				close(a);
			if (b >= 0)
				close(b);
		} else if (S_ISLNK(st.st_mode)) {
			char t[4096];
			ssize_t n = readlinkat(src, e->d_name, t, sizeof(t) - 1);
			if (n < 0)
				r = -errno;
			else if (t[n] = 0, symlinkat(t, dst, e->d_name) < 0)
				r = -errno;
		}
		/* Sockets, fifos and devices are not something a run can make there. */
	}
	closedir(d);
	return r;
}

static int open_dir(const char *path)
{
	return open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
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
		int a = open_dir(p->tmp_host[i]), b = open_dir(s[i]);
		if (!r)
			r = a < 0 || b < 0 ? -errno : tree_copy(a, b);
		if (a >= 0)
			close(a);
		if (b >= 0)
			close(b);
		if (r < 0) {
			snprintf(err, errlen, "copying --tmp %s as it is at the snapshot: %s",
				 p->tmp[i], strerror(-r));
			return r;
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
		int a = open_dir(saved[i]), b = open_dir(p->tmp_host[i]);
		int r = a < 0 || b < 0 ? -errno : tree_clear(b);
		if (!r)
			r = tree_copy(a, b);
		if (a >= 0)
			close(a);
		if (b >= 0)
			close(b);
		if (r < 0) {
			snprintf(err, errlen, "putting back --tmp %s: %s", p->tmp[i], strerror(-r));
			return r;
		}
	}
	return 0;
}

void sbx_tmp_free(char **saved)
{
	for (size_t i = 0; saved && saved[i]; i++) {
		int d = open_dir(saved[i]);
		if (d >= 0) {
			tree_clear(d);
			close(d);
		}
		rmdir(saved[i]);
		free(saved[i]);
	}
	free(saved);
}
