/* Symlinks resolved in the guest's namespace. A mount's own resolution (resolve.c, nesting.c)
 * never leaves the mount: an absolute symlink, or a relative one whose ".." climbs past the
 * mount's root, is refused there (EXDEV). In a mount namespace the kernel would follow such a
 * link through the namespace itself (Debian's /lib64/ld-linux-x86-64.so.2 is an absolute link
 * into /lib), so when that happens the path is walked here, component by component, at the
 * guest level: each step looked up in the mount table and opened O_PATH | O_NOFOLLOW beneath
 * the mount it lands in, a symlink read and its target spliced in (an absolute one at the
 * guest's root, a relative one at its directory), ".." taken on the guest path already
 * resolved. The result is a guest path free of symlinks (but a last one not followed), which
 * the caller looks up and opens again under the rule of the mount it lands in: this walk
 * decides nothing, so a link swapped behind its back changes only which guest path is
 * opened, never the mount that opening is checked against. docs/policy.md, "Symlinks". */
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
	int fd; /* O_PATH of `done` on mount `fm`, or -1 when not held */
	const struct policy_mount *fm;
};

static void walk_drop(struct walk *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
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

/* The object `name` beneath dirfd, a final symlink itself. */
static int step_open(int dirfd, const char *name)
{
	struct open_how how = {
	    .flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	long r = syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
	if (r >= 0)
		return (int)r;
	/* Only a component swapped for a link since it was looked at leaves the mount here. */
	return errno == EXDEV ? -ENOENT : -errno;
}

/* Opens the component just pushed onto w->done: from the directory held when it is on the
 * same mount (one component), else from the root of the mount its guest path lands in. */
static int walk_open(struct walk *w, const struct policy_target *t, const char *c, size_t len)
{
	if (w->fd >= 0 && w->fm == t->mount) {
		char name[256];
		if (len >= sizeof(name))
			return -ENAMETOOLONG;
		memcpy(name, c, len);
		name[len] = 0;
		return step_open(w->fd, name);
	}
	return step_open(t->mount->root_fd, t->rel);
}

/* Replaces the link just read (the last component of w->done) by its target: *rest becomes
 * target/rest, in buf. */
static int splice_link(struct walk *w, int linkfd, const char **rest, char *buf, size_t buflen)
{
	char target[POLICY_PATH_MAX], joined[POLICY_PATH_MAX];
	ssize_t len = readlinkat(linkfd, "", target, sizeof(target));
	if (len < 0)
		return -errno;
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
	walk_pop(w); /* the link's directory, which w->fd still is */
	if (target[0] == '/') {
		w->dlen = 1;
		w->done[1] = 0;
		walk_drop(w);
	}
	return 0;
}

int policy_walk(const struct policy *p, const char *gpath, enum policy_walk how, char *out,
		size_t outlen)
{
	struct walk w = {.done = "/", .dlen = 1, .fd = -1};
	char todo[POLICY_PATH_MAX];
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
		int fd = walk_open(&w, &t, s, len);
		if (fd == -ENOENT && last)
			break; /* a name to create: the path is resolved */
		if (fd < 0) {
			r = fd;
			break;
		}
		struct stat st;
		if (fstat(fd, &st) < 0) {
			r = -errno;
			close(fd);
			break;
		}
		if (S_ISLNK(st.st_mode)) {
			r = ++links > WALK_LINKS_MAX
				? -ELOOP
				: splice_link(&w, fd, &next, todo, sizeof(todo));
			close(fd);
			if (r < 0)
				break;
		} else if (!last && !S_ISDIR(st.st_mode)) {
			close(fd);
			r = -ENOTDIR;
			break;
		} else {
			walk_drop(&w);
			w.fd = fd;
			w.fm = t.mount;
		}
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
