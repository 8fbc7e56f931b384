/* Guest path -> mount -> host fd, without ever leaving the mount. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nesting.h"
#include "policy_int.h"

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

int policy_path_under(const char *prefix, const char *path, size_t *rest)
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
		if (policy_path_under(p->mounts[i].guest, gpath, &rest) &&
		    (!best || gl > best_len)) {
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
		if (policy_path_under(gpath, p->mounts[i].guest, &rest)) {
			t->kind = POLICY_VDIR;
			return;
		}
	}
	t->kind = POLICY_NONE;
}

/* The fast way, for a mount that cannot reach another mount's object: the node is the mount's
 * root and the whole relative path, resolved by the kernel in the one openat2 that opens it.
 * With other mounts in the policy it must not cross into a host mount stacked inside this
 * one's tree (which could show another mount's object: RESOLVE_NO_XDEV); such a path is
 * resolved again in full. */
static void node_fast(const struct policy *p, const struct policy_target *t, enum policy_walk how,
		      struct policy_node *n)
{
	*n = (struct policy_node){
	    .dirfd = t->mount->root_fd,
	    .name = t->rel,
	    .mount = t->mount,
	    .nofollow = how == POLICY_NOFOLLOW,
	    .guarded = p->nmounts > 1 && t->mount->is_dir,
	};
}

int policy_node_open(const struct policy_node *n, int flags, unsigned mode)
{
	struct open_how how = {
	    /* openat2 refuses O_NOCTTY beside O_PATH. */
	    .flags = (uint64_t)(flags | O_CLOEXEC | ((flags & O_PATH) ? 0 : O_NOCTTY) |
				(n->nofollow ? O_NOFOLLOW : 0)),
	    /* Never setuid or setgid: a guest must not leave a privileged file on the host. */
	    .mode = (flags & (O_CREAT | __O_TMPFILE)) ? (mode & 01777) : 0,
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | (n->guarded ? RESOLVE_NO_XDEV : 0),
	};
	long fd = syscall(SYS_openat2, n->dirfd, n->name, &how, sizeof(how));
	if (fd >= 0)
		return (int)fd;
	/* EXDEV: the path tried to leave the mount (absolute symlink, ".." past the root), or,
	 * guarded, crossed a host mount. */
	return -errno;
}

int policy_open(const struct policy *p, const struct policy_target *t, enum policy_walk how,
		int flags, unsigned mode, policy_check_fn check, void *ctx,
		const struct policy_mount **mount)
{
	if (t->kind != POLICY_MOUNT || how == POLICY_PARENT)
		return -ENOENT;
	for (int full = t->mount->holds_mounts;; full = 1) {
		struct policy_node n;
		if (full) {
			int r = policy_resolve_full(p, t, how, &n);
			if (r < 0)
				return r;
		} else {
			node_fast(p, t, how, &n);
		}
		*mount = n.mount;
		int fl = flags;
		int r = check ? check(&n, &fl, ctx) : 0;
		if (r == 0)
			r = policy_node_open(&n, fl, mode);
		policy_node_release(&n);
		if (r != -EXDEV)
			return r;
		if (full || !n.guarded)
			return -EXDEV; /* a symlink leaves the mount: policy_walk */
	}
}

int policy_resolve_parent(const struct policy *p, const struct policy_target *t,
			  struct policy_node *n)
{
	if (t->kind != POLICY_MOUNT)
		return -ENOENT;
	if (!t->mount->is_dir || strcmp(t->rel, ".") == 0)
		return -EBUSY;
	if (t->mount->holds_mounts)
		return policy_resolve_full(p, t, POLICY_PARENT, n);
	const char *slash = strrchr(t->rel, '/');
	struct policy_target parent;
	parent.kind = POLICY_MOUNT;
	parent.mount = t->mount;
	if (slash)
		snprintf(parent.rel, sizeof(parent.rel), "%.*s", (int)(slash - t->rel), t->rel);
	else
		snprintf(parent.rel, sizeof(parent.rel), ".");
	node_fast(p, &parent, POLICY_FOLLOW, n);
	int fd = policy_node_open(n, O_PATH | O_DIRECTORY, 0);
	if (fd == -EXDEV && n->guarded)
		return policy_resolve_full(p, t, POLICY_PARENT, n);
	if (fd < 0)
		return fd;
	*n = (struct policy_node){
	    .dirfd = fd, .owned = 1, .name = slash ? slash + 1 : t->rel, .mount = t->mount};
	return 0;
}

void policy_vdir_children(const struct policy *p, const char *gpath,
			  void (*fn)(void *ctx, const char *name, size_t len), void *ctx)
{
	for (size_t i = 0; i < p->nmounts; i++) {
		size_t rest;
		const char *g = p->mounts[i].guest;
		if (strcmp(g, gpath) == 0 || !policy_path_under(gpath, g, &rest))
			continue;
		const char *name = g + rest;
		size_t len = strcspn(name, "/");
		/* Report each name once, at its first mount. */
		int seen = 0;
		for (size_t j = 0; j < i && !seen; j++) {
			size_t r2;
			const char *g2 = p->mounts[j].guest;
			if (strcmp(g2, gpath) != 0 && policy_path_under(gpath, g2, &r2) &&
			    strncmp(g2 + r2, name, len) == 0 &&
			    (g2[r2 + len] == 0 || g2[r2 + len] == '/'))
				seen = 1;
		}
		if (!seen)
			fn(ctx, name, len);
	}
}

/* Where several mounts show the file (Debian's --ro /bin is a view of /usr/bin beside
 * --ro /usr), the one that shows it at its host path wins, as Linux names the file itself
 * (/proc/self/exe is /usr/bin/cmake however it was run, and cmake finds /usr/share from it);
 * then the first given. */
int policy_guest_path_of(const struct policy *p, const char *host_realpath, char *out,
			 size_t outlen)
{
	int found = 0;
	for (int pass = 0; pass < 2 && !found; pass++)
		for (size_t i = 0; i < p->nmounts && !found; i++) {
			const struct policy_mount *m = &p->mounts[i];
			size_t rest;
			if (!policy_path_under(m->host, host_realpath, &rest))
				continue;
			const char *tail = host_realpath + rest;
			if ((!m->is_dir && *tail) || (pass == 0 && strcmp(m->host, m->guest) != 0))
				continue;
			int n = snprintf(out, outlen, "%s%s%s", m->guest,
					 (*tail && strcmp(m->guest, "/") != 0) ? "/" : "", tail);
			found = n > 0 && (size_t)n < outlen;
		}
	return found ? 0 : -ENOENT;
}
