/* Symlinks resolved in the guest's namespace. A mount's own resolution (resolve.c, nesting.c)
 * never leaves the mount: an absolute symlink, or a relative one whose ".." climbs past the
 * mount's root, is refused there (EXDEV). In a mount namespace the kernel would follow such a
 * link through the namespace itself (Debian's /lib64/ld-linux-x86-64.so.2 is an absolute link
 * into /lib), so when that happens the path is walked here, component by component, at the
 * guest level: each step looked up in the mount table; a mount's root is its root fd, a
 * directory is opened O_PATH | O_DIRECTORY | O_NOFOLLOW beneath the mount it lands in, one
 * component at a time from the directory before; anything else is asked readlinkat, and a
 * symlink's target is spliced in (an absolute one at the guest's root, a relative one at its
 * directory); ".." is taken on the guest path already resolved. The result is a guest path free of
 * symlinks (but a last one not followed), which the caller looks up and opens again under the rule
 * of the mount it lands in: this walk decides nothing, so a link swapped behind its back changes
 * only which guest path is opened, never the mount that opening is checked against. docs/policy.md,
 * "Symlinks". */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "policy.h"

/* As Linux's MAXSYMLINKS. */
#define WALK_LINKS_MAX 40

struct walk {
	char done[POLICY_PATH_MAX]; /* the guest path resolved so far, normalised */
	size_t dlen;
	int fd;	   /* O_PATH of directory `done` on mount `fm`, or -1 when not held */
	int owned; /* fd is the walk's (else a mount's root_fd) */
	const struct policy_mount *fm;
};

static void walk_drop(struct walk *w)
{
	if (w->fd >= 0 && w->owned)
		close(w->fd);
	w->fd = -1;
}

/* `done` is now directory fd, on mount m. */
static void walk_hold(struct walk *w, int fd, int owned, const struct policy_mount *m)
{
	if (fd != w->fd)
		walk_drop(w);
	w->fd = fd;
	w->owned = owned;
	w->fm = m;
}

static void walk_pop(struct walk *w)
{
	while (w->dlen > 1 && w->done[w->dlen - 1] != '/')
		w->dlen--;
	if (w->dlen > 1)
		w->dlen--;
	w->done[w->dlen] = 0;
}

static int walk_push(struct walk *w, const char *c, size_t len)
{
	size_t sep = w->dlen > 1;
	if (w->dlen + sep + len >= sizeof(w->done))
		return -ENAMETOOLONG;
	if (sep)
		w->done[w->dlen++] = '/';
	memcpy(w->done + w->dlen, c, len);
	w->dlen += len;
	w->done[w->dlen] = 0;
	return 0;
}

static int beneath(int dirfd, const char *path, uint64_t flags)
{
	struct open_how how = {
	    .flags = flags | O_PATH | O_NOFOLLOW | O_CLOEXEC,
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	long r = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	if (r >= 0)
		return (int)r;
	/* Only a directory swapped for a link since it was walked leaves the mount here. */
	return errno == EXDEV ? -ENOENT : -errno;
}

/* The directory that holds the component just pushed onto w->done (landing at target t) and the
 * component's name in it: the directory held when on the same mount, else one opened beneath
 * the mount's root (*tmp then owns it). A name is one component, looked up by the kernel in
 * that directory alone, so nothing done with it leaves the mount. */
static int walk_parent(struct walk *w, const struct policy_target *t, const char *c, size_t len,
		       char name[256], int *tmp)
{
	const char *rel = t->rel, *slash = strrchr(rel, '/');
	*tmp = -1;
	if (w->fd >= 0 && w->fm == t->mount && t->mount->is_dir) {
		if (len >= 256)
			return -ENAMETOOLONG;
		memcpy(name, c, len);
		name[len] = 0;
		return w->fd;
	}
	const char *leaf = slash ? slash + 1 : rel;
	size_t ll = strlen(leaf);
	if (ll >= 256)
		return -ENAMETOOLONG;
	memcpy(name, leaf, ll + 1);
	if (!slash)
		return t->mount->root_fd;
	char head[POLICY_PATH_MAX];
	snprintf(head, sizeof(head), "%.*s", (int)(slash - rel), rel);
	*tmp = beneath(t->mount->root_fd, head, O_DIRECTORY);
	return *tmp;
}

/* Replaces the link `name` in dirfd (the last component of w->done) by its target: *rest
 * becomes target/rest, in buf. Returns 1 if it was a link, 0 if not (EINVAL), or -errno. */
static int splice_link(struct walk *w, int dirfd, const char *name, const char **rest, char *buf,
		       size_t buflen)
{
	char target[POLICY_PATH_MAX], joined[POLICY_PATH_MAX];
	ssize_t len = readlinkat(dirfd, name, target, sizeof(target));
	if (len < 0)
		return errno == EINVAL ? 0 : -errno;
	if ((size_t)len >= sizeof(target))
		return -ENAMETOOLONG;
	if (len == 0)
		return -ENOENT;
	target[len] = 0;
	int n = snprintf(joined, sizeof(joined), "%s/%s", target, *rest);
	if (n < 0 || (size_t)n >= sizeof(joined) || (size_t)n >= buflen)
		return -ENAMETOOLONG;
	memcpy(buf, joined, (size_t)n + 1);
	*rest = buf;
	walk_pop(w); /* the link's directory */
	return 1;
}

int policy_walk(const struct policy *p, const char *gpath, enum policy_walk how, char *out,
		size_t outlen)
{
	struct walk w = {.done = "/", .dlen = 1, .fd = -1};
	char rest[POLICY_PATH_MAX], name[256];
	const char *s = gpath;
	int links = 0, r = 0;
	for (;;) {
		while (*s == '/')
			s++;
		if (!*s)
			break;
		const char *e = strchrnul(s, '/'), *next = e;
		size_t len = (size_t)(e - s);
		while (*next == '/')
			next++;
		int last = *next == 0;
		if (len == 1 && s[0] == '.') {
			s = next;
			continue;
		}
		if (len == 2 && s[0] == '.' && s[1] == '.') {
			/* Guest-level "..": what was resolved so far holds no symlink. */
			walk_pop(&w);
			walk_drop(&w);
			s = next;
			continue;
		}
		r = walk_push(&w, s, len);
		if (r < 0 || (last && how != POLICY_FOLLOW))
			break;
		struct policy_target t;
		policy_lookup(p, w.done, &t);
		if (t.kind == POLICY_VDIR) {
			walk_drop(&w);
			s = next;
			continue;
		}
		if (t.kind != POLICY_MOUNT) {
			r = -ENOENT;
			break;
		}
		if (t.mount->is_dir && strcmp(t.rel, ".") == 0) {
			/* A mount's own directory: its root fd, opened (and resolved) at setup. */
			walk_hold(&w, t.mount->root_fd, 0, t.mount);
			s = next;
			continue;
		}
		int tmp, dirfd = walk_parent(&w, &t, s, len, name, &tmp);
		if (dirfd < 0) {
			r = dirfd;
			break;
		}
		/* Not the last component: a directory (opened) or a link. The last: a link, or
		 * whatever else is there, or nothing yet (a name to create). */
		int fd = last ? -ENOTDIR : beneath(dirfd, name, O_DIRECTORY);
		if (fd >= 0) {
			if (tmp >= 0)
				close(tmp);
			walk_hold(&w, fd, 1, t.mount);
			s = next;
			continue;
		}
		/* Not a directory: a link, or the last component's object, or nothing. */
		int end_here = 0;
		r = fd != -ENOTDIR && fd != -ELOOP
			? fd
			: splice_link(&w, dirfd, name, &next, rest, sizeof(rest));
		if (r == 1 && ++links > WALK_LINKS_MAX)
			r = -ELOOP;
		if (r == 1 && rest[0] != '/') {
			/* A relative target: from the link's directory, which dirfd is. */
			walk_hold(&w, dirfd, tmp >= 0 ? 1 : dirfd == w.fd && w.owned, t.mount);
			tmp = -1;
		} else if (r == 1) {
			w.dlen = 1;
			w.done[1] = 0;
			walk_drop(&w);
		} else if (r == 0 || (r == -ENOENT && last)) {
			r = last ? 0 : -ENOTDIR; /* the object itself, or a name to create */
			end_here = 1;
		}
		if (tmp >= 0)
			close(tmp);
		if (r < 0 || end_here)
			break;
		s = next;
	}
	walk_drop(&w);
	if (r < 0)
		return r;
	if (w.dlen >= outlen)
		return -ENAMETOOLONG;
	memcpy(out, w.done, w.dlen + 1);
	return 0;
}

int policy_open_guest(const struct policy *p, const char *gpath, enum policy_walk how, int flags,
		      unsigned mode, policy_check_fn check, void *ctx,
		      const struct policy_mount **mount)
{
	char walked[POLICY_PATH_MAX];
	struct policy_target t;
	policy_lookup(p, gpath, &t);
	for (int pass = 0;; pass++) {
		if (t.kind == POLICY_VDIR)
			return -EISDIR;
		if (t.kind != POLICY_MOUNT)
			return -ENOENT;
		int r = policy_open(p, &t, how, flags, mode, check, ctx, mount);
		if (r != -EXDEV)
			return r;
		/* A second time only when a link changed since the walk. */
		if (pass)
			return -ENOENT;
		r = policy_walk(p, gpath, how, walked, sizeof(walked));
		if (r < 0)
			return r;
		policy_lookup(p, walked, &t);
	}
}
