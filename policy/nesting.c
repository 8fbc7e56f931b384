/* Nested mounts. A mount whose host object lies beneath another mount's root is reachable
 * through that other mount as well: by a symlink the guest made, "..", a directory handle.
 * Matching the guest path's text to the longest mount is then not enough: its rule must hold
 * however the object was reached. So the decision is made on the object itself:
 * - at setup, every mount's object is known by device and inode, with the chain of its
 *   ancestors; a mount that may reach another's object is marked `holds_mounts`;
 * - a path beneath such a mount is resolved here down to the directory holding its last
 *   component (symlinks in that component followed by us, as the kernel would), and the mount
 *   of that directory is the nearest mount object found walking ".." up from it;
 * - the operation is then done relative to that directory fd.
 * The answer cannot change between the decision and the operation: the directory is held open,
 * an object never crosses from one mount into another (a rename or link between two mounts is
 * EXDEV), and the objects that delimit the mounts (pins) can never be moved, removed or
 * replaced by the guest. docs/policy.md, "Nested mounts". */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nesting.h"

/* Deeper than any path the host could name (PATH_MAX / 2 components). */
#define NEST_DEPTH_MAX 4096
/* As Linux's MAXSYMLINKS. */
#define NEST_LINKS_MAX 40

static int id_cmp(struct policy_id a, struct policy_id b)
{
	if (a.dev != b.dev)
		return a.dev < b.dev ? -1 : 1;
	return a.ino < b.ino ? -1 : a.ino > b.ino;
}

static struct policy_id id_of(const struct stat *st)
{
	return (struct policy_id){.dev = st->st_dev, .ino = st->st_ino};
}

static struct policy_id mount_id(const struct policy_mount *m)
{
	return (struct policy_id){.dev = m->dev, .ino = m->ino};
}

/* ---- Setup --------------------------------------------------------------------------- */

int policy_nest_identify(struct policy_mount *m, char *err, size_t errlen)
{
	struct stat st;
	struct statx sx;
	const char *name = m->is_dir ? "" : m->leaf;
	int flags = AT_SYMLINK_NOFOLLOW | (m->is_dir ? AT_EMPTY_PATH : 0);
	if (fstatat(m->root_fd, name, &st, flags) < 0) {
		int e = errno;
		snprintf(err, errlen, "mount %s: %s", m->host, strerror(e));
		return -e;
	}
	m->dev = st.st_dev;
	m->ino = st.st_ino;
	/* A second host mount of the same file system can show a directory in another place
	 * (a bind mount): then ".." from here does not tell whether it is beneath another
	 * mount. The host mount id says when that may be. */
	m->mnt_id = 0;
	if (statx(m->root_fd, name, flags, STATX_MNT_ID, &sx) == 0 && (sx.stx_mask & STATX_MNT_ID))
		m->mnt_id = sx.stx_mnt_id;
	size_t cap = 16;
	m->up = malloc(cap * sizeof(*m->up));
	if (!m->up) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	m->nup = 0;
	m->up[m->nup++] = id_of(&st);
	int cur = m->root_fd; /* a file's parent directory, or the directory itself */
	if (!m->is_dir) {
		if (fstat(cur, &st) < 0)
			goto incomplete;
		m->up[m->nup++] = id_of(&st);
	}
	while (m->nup < NEST_DEPTH_MAX) {
		int next = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (cur != m->root_fd)
			close(cur);
		cur = next;
		if (cur < 0 || fstat(cur, &st) < 0)
			goto incomplete;
		if (id_cmp(id_of(&st), m->up[m->nup - 1]) == 0) { /* the host's "/" */
			close(cur);
			return 0;
		}
		if (m->nup == cap) {
			struct policy_id *n = realloc(m->up, 2 * cap * sizeof(*n));
			if (!n)
				goto incomplete;
			m->up = n;
			cap *= 2;
		}
		m->up[m->nup++] = id_of(&st);
	}
incomplete:
	/* Without the whole chain nothing can be ruled out: the mount counts as possibly
	 * beneath every other one (relate()). */
	if (cur >= 0 && cur != m->root_fd)
		close(cur);
	m->nup = 0;
	return 0;
}

/* Inserts a pin, keeping the array sorted; room was reserved by the caller. */
static void pin_add(struct policy *p, struct policy_id id, int root)
{
	size_t lo = 0, hi = p->npins;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = id_cmp(p->pins[mid].id, id);
		if (c == 0) {
			p->pins[mid].root |= root;
			return;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	memmove(&p->pins[lo + 1], &p->pins[lo], (p->npins - lo) * sizeof(p->pins[0]));
	p->pins[lo] = (struct policy_pin){.id = id, .root = root};
	p->npins++;
}

/* Can `inner`'s object be reached beneath `outer`'s root? Then outer holds mounts, and the
 * directories between the two are pinned, so that the way down to inner stays where it is. */
static void relate(struct policy *p, struct policy_mount *outer, const struct policy_mount *inner)
{
	if (!outer->is_dir || id_cmp(mount_id(outer), mount_id(inner)) == 0)
		return;
	if (inner->nup == 0) { /* its ancestors are unknown */
		outer->holds_mounts = 1;
		return;
	}
	for (size_t j = 1; j < inner->nup; j++) {
		if (id_cmp(inner->up[j], mount_id(outer)) == 0) {
			outer->holds_mounts = 1;
			for (size_t k = 1; k < j; k++)
				pin_add(p, inner->up[k], 0);
			return;
		}
	}
	/* Not beneath it by "..", but on the same file system through another host mount: a
	 * bind mount may show inner inside outer's tree. (A host mount of another file system
	 * stacked inside outer's tree is caught when resolving: RESOLVE_NO_XDEV.) */
	if (inner->dev == outer->dev &&
	    (!inner->mnt_id || !outer->mnt_id || inner->mnt_id != outer->mnt_id))
		outer->holds_mounts = 1;
}

int policy_nest_add(struct policy *p)
{
	struct policy_mount *m = &p->mounts[p->nmounts - 1];
	/* Every pin this can add, reserved first so that nothing fails half-way. */
	size_t more = 1 + m->nup * p->nmounts;
	for (size_t i = 0; i + 1 < p->nmounts; i++)
		more += p->mounts[i].nup;
	struct policy_pin *n = realloc(p->pins, (p->npins + more) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	p->pins = n;
	pin_add(p, mount_id(m), 1);
	for (size_t i = 0; i + 1 < p->nmounts; i++) {
		relate(p, &p->mounts[i], m);
		relate(p, m, &p->mounts[i]);
	}
	return 0;
}

/* ---- Resolution ---------------------------------------------------------------------- */

static const struct policy_pin *pin_find(const struct policy *p, struct policy_id id)
{
	size_t lo = 0, hi = p->npins;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = id_cmp(p->pins[mid].id, id);
		if (c == 0)
			return &p->pins[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The mount whose object `id` is: the one the path came through if it is that one, else a
 * read-only one before a read-write one (the same object mounted twice). */
static const struct policy_mount *mount_of(const struct policy *p, struct policy_id id,
					   const struct policy_mount *via)
{
	if (id_cmp(mount_id(via), id) == 0)
		return via;
	const struct policy_mount *best = NULL;
	for (size_t i = 0; i < p->nmounts; i++) {
		const struct policy_mount *m = &p->mounts[i];
		if (id_cmp(mount_id(m), id) == 0 && (!best || (best->rw && !m->rw)))
			best = m;
	}
	return best;
}

/* The mount whose rule covers directory dirfd (reached beneath `via`): the nearest mount
 * object at or above it, walking "..". Each step goes from an object held open to its parent
 * at that moment; since no object can leave the mount it is in, the answer is that of dirfd
 * for as long as the caller holds it. */
static int dir_mount(const struct policy *p, const struct policy_mount *via, int dirfd,
		     const struct policy_mount **out)
{
	struct stat st;
	if (fstat(dirfd, &st) < 0)
		return -errno;
	int cur = dirfd, r = -ELOOP;
	for (int depth = 0; depth < NEST_DEPTH_MAX; depth++) {
		const struct policy_pin *pin = pin_find(p, id_of(&st));
		if (pin && pin->root) {
			*out = mount_of(p, pin->id, via);
			r = *out ? 0 : -ENOENT;
			break;
		}
		int up = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (up < 0) {
			r = -errno;
			break;
		}
		if (cur != dirfd)
			close(cur);
		cur = up;
		struct stat ust;
		if (fstat(up, &ust) < 0) {
			r = -errno;
			break;
		}
		if (id_cmp(id_of(&ust), id_of(&st)) == 0) {
			/* The host's "/" without meeting a mount: the object was moved out of every
			 * mount behind the sandbox's back. */
			r = -ENOENT;
			break;
		}
		st = ust;
	}
	if (cur != dirfd)
		close(cur);
	return r;
}

static int open_dir(const struct policy_mount *m, const char *rel, int *fd)
{
	struct open_how how = {
	    .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	long r = syscall(SYS_openat2, m->root_fd, rel, &how, sizeof(how));
	if (r < 0)
		return -errno; /* EXDEV: a symlink leaves the mount (policy_walk) */
	*fd = (int)r;
	return 0;
}

/* Follows the symlink `last` in dirfd: `path` (the parent's part, NUL-terminated, or NULL for
 * the root) becomes parent/target. The target is resolved from the mount's root again, as the
 * kernel would resolve it from the link's directory. */
static int follow_link(int dirfd, const char *last, char *path, int has_parent)
{
	char target[POLICY_PATH_MAX], joined[POLICY_PATH_MAX];
	ssize_t len = readlinkat(dirfd, last, target, sizeof(target));
	if (len < 0)
		return -errno;
	if ((size_t)len >= sizeof(target))
		return -ENAMETOOLONG;
	target[len] = 0;
	if (len == 0)
		return -ENOENT;
	/* Resolved in the guest's namespace instead (policy_walk). */
	if (target[0] == '/')
		return -EXDEV;
	int n = has_parent ? snprintf(joined, sizeof(joined), "%s/%s", path, target)
			   : snprintf(joined, sizeof(joined), "%s", target);
	if (n < 0 || (size_t)n >= sizeof(joined))
		return -ENAMETOOLONG;
	memcpy(path, joined, (size_t)n + 1);
	return 0;
}

void policy_node_release(struct policy_node *n)
{
	if (n->owned && n->dirfd >= 0)
		close(n->dirfd);
	n->dirfd = -1;
}

int policy_resolve_full(const struct policy *p, const struct policy_target *t, enum policy_walk how,
			struct policy_node *n)
{
	const struct policy_mount *m = t->mount;
	char path[POLICY_PATH_MAX];
	snprintf(path, sizeof(path), "%s", t->rel);
	*n = (struct policy_node){.dirfd = -1, .owned = 1, .nofollow = 1, .mount = m};
	struct stat st;
	int exists = 0, r;
	for (int links = 0;; links++) {
		char *slash = strrchr(path, '/');
		const char *last = slash ? slash + 1 : path;
		if (!*last || !strcmp(last, ".") || !strcmp(last, "..")) {
			/* Only after a symlink ("x/..", "x/"): the object is that directory. */
			if (how == POLICY_PARENT)
				return -EBUSY;
			r = open_dir(m, path, &n->dirfd);
			if (r < 0)
				return r;
			snprintf(n->buf, sizeof(n->buf), ".");
			exists = fstat(n->dirfd, &st) == 0;
			break;
		}
		if (strlen(last) >= sizeof(n->buf))
			return -ENAMETOOLONG;
		if (slash)
			*slash = 0;
		r = open_dir(m, slash ? path : ".", &n->dirfd);
		if (r < 0)
			return r;
		exists = fstatat(n->dirfd, last, &st, AT_SYMLINK_NOFOLLOW) == 0;
		if (!exists && errno != ENOENT) {
			r = -errno;
			policy_node_release(n);
			return r;
		}
		if (!exists || !S_ISLNK(st.st_mode) || how != POLICY_FOLLOW) {
			memmove(n->buf, last, strlen(last) + 1);
			break;
		}
		r = links == NEST_LINKS_MAX ? -ELOOP
					    : follow_link(n->dirfd, last, path, slash != NULL);
		policy_node_release(n);
		if (r < 0)
			return r;
	}
	n->name = n->buf;
	const struct policy_pin *pin = exists ? pin_find(p, id_of(&st)) : NULL;
	n->pinned = pin != NULL && strcmp(n->name, ".") != 0;
	if (pin && pin->root && how != POLICY_PARENT) {
		/* A mount's own object: a directory mount's root, or a file mount's file (however
		 * it is named here, by a link made before the run too). */
		n->mount = mount_of(p, pin->id, m);
		if (n->mount)
			return 0;
	}
	r = dir_mount(p, m, n->dirfd, &n->mount);
	if (r < 0)
		policy_node_release(n);
	return r;
}
