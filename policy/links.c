/* Mounts that are links in the guest. Debian's /bin, /sbin, /lib and /lib64 are symlinks into
 * /usr ("merged /usr"). `--ro /bin` alone shows /usr/bin at /bin, a directory; but beside
 * `--ro /usr`, a directory /bin would be a second name for /usr/bin that no program expects:
 * gcc finds its headers from the real path of its own binary (/bin/g++ would put them under
 * /include), cmake its modules from /proc/self/exe. So a mount given by a host path that is a
 * symlink, at that same guest path, is that symlink in the guest, as on the host, whenever its
 * target is shown as the same host directory by another mount: a path through it continues
 * at the target (policy_follow_links), lstat and readlink see the link. Otherwise it stays the
 * directory it shows. docs/policy.md, "Symlinks". */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "policy.h"

/* As Linux's MAXSYMLINKS. */
#define LINKS_MAX 40

/* Whether the `len` bytes at g name a mount that is a link in the guest now: its target's
 * normalised guest path in target. */
static const struct policy_mount *link_at(const struct policy *p, const char *g, size_t len,
					  char *target, size_t tlen)
{
	for (size_t i = 0; i < p->nmounts; i++) {
		const struct policy_mount *m = &p->mounts[i];
		if (!m->link || strlen(m->guest) != len || memcmp(m->guest, g, len) != 0)
			continue;
		/* A mount beneath it (a --tmp /bin/cache) would be out of reach through the link:
		 * then it stays a directory. */
		int nested = 0;
		for (size_t k = 0; k < p->nmounts && !nested; k++)
			nested = strncmp(p->mounts[k].guest, m->guest, len) == 0 &&
				 p->mounts[k].guest[len] == '/';
		if (nested)
			return NULL;
		char parent[POLICY_PATH_MAX];
		snprintf(parent, sizeof(parent), "%.*s", (int)len, g);
		char *slash = strrchr(parent, '/');
		slash[slash == parent ? 1 : 0] = 0;
		if (policy_normalize(parent, m->link, strlen(m->link), target, tlen) < 0)
			return NULL;
		/* The mount that shows the target, and the host directory it shows there. */
		const struct policy_mount *best = NULL;
		size_t best_len = 0;
		for (size_t k = 0; k < p->nmounts; k++) {
			const struct policy_mount *o = &p->mounts[k];
			size_t gl = strcmp(o->guest, "/") == 0 ? 0 : strlen(o->guest);
			if (o == m || !o->is_dir || strncmp(target, o->guest, gl) != 0 ||
			    (target[gl] != '/' && target[gl] != 0) || (best && gl < best_len))
				continue;
			best = o;
			best_len = gl;
		}
		char host[POLICY_PATH_MAX];
		if (!best || snprintf(host, sizeof(host), "%s%s", best->host, target + best_len) >=
				 (int)sizeof(host))
			return NULL;
		/* The same directory, and the same rule for it: --rw /bin beside --ro /usr stays
		 * the writable directory it was given as. */
		return strcmp(host, m->host) == 0 && best->rw == m->rw ? m : NULL;
	}
	return NULL;
}

int policy_link_of(const struct policy *p, const char *gpath, char *text, size_t len)
{
	char target[POLICY_PATH_MAX];
	const struct policy_mount *m = link_at(p, gpath, strlen(gpath), target, sizeof(target));
	if (!m)
		return -ENOENT;
	return snprintf(text, len, "%s", m->link) < (int)len ? (int)(m - p->mounts) : -ENAMETOOLONG;
}

int policy_follow_links(const struct policy *p, char *g, size_t len, int follow_last)
{
	for (int hops = 0; hops <= LINKS_MAX; hops++) {
		/* The shortest prefix of g, at a component boundary, that is such a link: the path
		 * goes on from its target. Only the link mounts are candidates: a path through
		 * none costs one pass over the mounts. */
		size_t at = 0;
		char target[POLICY_PATH_MAX], t[POLICY_PATH_MAX];
		for (size_t i = 0; i < p->nmounts; i++) {
			const char *mg = p->mounts[i].guest;
			size_t gl = strlen(mg);
			if (!p->mounts[i].link || (at && gl >= at) || strncmp(g, mg, gl) != 0 ||
			    !(g[gl] == '/' || (g[gl] == 0 && follow_last)) ||
			    !link_at(p, g, gl, t, sizeof(t)))
				continue;
			at = gl;
			memcpy(target, t, strlen(t) + 1);
		}
		if (!at)
			return 0;
		char out[POLICY_PATH_MAX], norm[POLICY_PATH_MAX];
		if (snprintf(out, sizeof(out), "%s%s", target, g + at) >= (int)sizeof(out) ||
		    policy_normalize("/", out, strlen(out), norm, sizeof(norm)) < 0 ||
		    strlen(norm) >= len)
			return -ENAMETOOLONG;
		memcpy(g, norm, strlen(norm) + 1);
	}
	return -ELOOP;
}
