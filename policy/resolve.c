/* Guest path -> mount -> host fd, without ever leaving the mount. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "policy.h"

int policy_normalize(const char *base, const char *path, size_t len, char *out, size_t outlen)
{
	if (len == 0)
		return -ENOENT;
	if (outlen < 2)
		return -ENAMETOOLONG;
	size_t o = 0;
	out[o++] = '/';
	out[o] = 0;
	/* Two passes over the same component splitter: the base (if relative), then the path. */
	for (int pass = 0; pass < 2; pass++) {
		const char *s = pass == 0 ? base : path;
		size_t n = pass == 0 ? strlen(base) : len;
		if (pass == 0 && path[0] == '/')
			continue;
		size_t i = 0;
		while (i < n) {
			while (i < n && s[i] == '/')
				i++;
			size_t st = i;
			while (i < n && s[i] != '/') {
				if (s[i] == 0)
					return -EINVAL;
				i++;
			}
			size_t cl = i - st;
			if (cl == 0 || (cl == 1 && s[st] == '.'))
				continue;
			if (cl == 2 && s[st] == '.' && s[st + 1] == '.') {
				/* ".." at the root stays at the root, as Linux does for "/.." */
				while (o > 1 && out[o - 1] != '/')
					o--;
				if (o > 1)
					o--;
				out[o] = 0;
				continue;
			}
			if (o + (o > 1) + cl + 1 > outlen)
				return -ENAMETOOLONG;
			if (o > 1)
				out[o++] = '/';
			memcpy(out + o, s + st, cl);
			o += cl;
			out[o] = 0;
		}
	}
	return 0;
}

/* Is `prefix` (normalised) equal to or an ancestor of `path`? Returns the offset of the rest. */
static int path_under(const char *prefix, const char *path, size_t *rest)
{
	size_t pl = strlen(prefix);
	if (pl == 1) { /* "/" */
		*rest = 1;
		return 1;
	}
	if (strncmp(prefix, path, pl) != 0)
		return 0;
	if (path[pl] != 0 && path[pl] != '/')
		return 0;
	*rest = path[pl] ? pl + 1 : pl;
	return 1;
}

void policy_lookup(const struct policy *p, const char *gpath, struct policy_target *t)
{
	const struct policy_mount *best = NULL;
	size_t best_len = 0, best_rest = 0;
	for (size_t i = 0; i < p->nmounts; i++) {
		size_t rest;
		size_t gl = strlen(p->mounts[i].guest);
		if (path_under(p->mounts[i].guest, gpath, &rest) && (!best || gl > best_len)) {
			best = &p->mounts[i];
			best_len = gl;
			best_rest = rest;
		}
	}
	t->mount = NULL;
	t->rel[0] = 0;
	if (best) {
		const char *r = gpath + best_rest;
		if (!best->is_dir && *r) {
			t->kind = POLICY_NONE; /* below a file */
			return;
		}
		t->kind = POLICY_MOUNT;
		t->mount = best;
		if (!best->is_dir)
			snprintf(t->rel, sizeof(t->rel), "%s", best->leaf);
		else
			snprintf(t->rel, sizeof(t->rel), "%s", *r ? r : ".");
		return;
	}
	/* The root and every ancestor of a mount point exist as empty directories. */
	size_t rest;
	if (strcmp(gpath, "/") == 0) {
		t->kind = POLICY_VDIR;
		return;
	}
	for (size_t i = 0; i < p->nmounts; i++) {
		if (path_under(gpath, p->mounts[i].guest, &rest)) {
			t->kind = POLICY_VDIR;
			return;
		}
	}
	t->kind = POLICY_NONE;
}

static int resolve_errno(int e)
{
	/* EXDEV: the path tried to leave the mount (absolute symlink, ".." past the root). */
	return e == EXDEV ? -ENOENT : -e;
}

int policy_openat(const struct policy_target *t, int flags, unsigned mode)
{
	if (t->kind != POLICY_MOUNT)
		return -ENOENT;
	struct open_how how = {
	    /* openat2 refuses O_NOCTTY beside O_PATH. */
	    .flags = (uint64_t)(flags | O_CLOEXEC | ((flags & O_PATH) ? 0 : O_NOCTTY)),
	    /* Never setuid or setgid: a guest must not leave a privileged file on the host. */
	    .mode = (flags & (O_CREAT | __O_TMPFILE)) ? (mode & 01777) : 0,
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, t->mount->root_fd, t->rel, &how, sizeof(how));
	if (fd < 0)
		return resolve_errno(errno);
	return (int)fd;
}

int policy_open_parent(const struct policy_target *t, const char **leaf)
{
	if (t->kind != POLICY_MOUNT)
		return -ENOENT;
	const char *slash = strrchr(t->rel, '/');
	struct policy_target parent = *t;
	if (slash) {
		parent.rel[slash - t->rel] = 0;
		*leaf = slash + 1;
	} else {
		snprintf(parent.rel, sizeof(parent.rel), ".");
		*leaf = t->rel;
	}
	if (!t->mount->is_dir) {
		/* A file mount's parent is its root fd; the file itself is the leaf. */
		snprintf(parent.rel, sizeof(parent.rel), ".");
		*leaf = t->mount->leaf;
	}
	return policy_openat(&parent, O_PATH | O_DIRECTORY, 0);
}

void policy_vdir_children(const struct policy *p, const char *gpath,
			  void (*fn)(void *ctx, const char *name, size_t len), void *ctx)
{
	for (size_t i = 0; i < p->nmounts; i++) {
		size_t rest;
		const char *g = p->mounts[i].guest;
		if (strcmp(g, gpath) == 0 || !path_under(gpath, g, &rest))
			continue;
		const char *name = g + rest;
		size_t len = strcspn(name, "/");
		/* Report each name once, at its first mount. */
		int seen = 0;
		for (size_t j = 0; j < i && !seen; j++) {
			size_t r2;
			const char *g2 = p->mounts[j].guest;
			if (strcmp(g2, gpath) != 0 && path_under(gpath, g2, &r2) &&
			    strncmp(g2 + r2, name, len) == 0 &&
			    (g2[r2 + len] == 0 || g2[r2 + len] == '/'))
				seen = 1;
		}
		if (!seen)
			fn(ctx, name, len);
	}
}

int policy_guest_path_of(const struct policy *p, const char *host_realpath, char *out,
			 size_t outlen)
{
	for (size_t i = 0; i < p->nmounts; i++) {
		char real[POLICY_PATH_MAX];
		const struct policy_mount *m = &p->mounts[i];
		if (!realpath(m->host, real))
			continue;
		size_t rest;
		if (!path_under(real, host_realpath, &rest))
			continue;
		const char *tail = host_realpath + rest;
		if (!m->is_dir && *tail)
			continue;
		int n = snprintf(out, outlen, "%s%s%s", m->guest,
				 (*tail && strcmp(m->guest, "/") != 0) ? "/" : "", tail);
		if (n > 0 && (size_t)n < outlen)
			return 0;
	}
	return -ENOENT;
}
