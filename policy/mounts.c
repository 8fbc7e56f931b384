/* The mount table: host objects shown at guest paths, and the working directory among them. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nesting.h"
#include "policy_int.h"

void policy_mount_release(struct policy_mount *m)
{
	if (m->root_fd >= 0)
		close(m->root_fd);
	free(m->host);
	free(m->guest);
	free(m->leaf);
	free(m->up);
	free(m->link);
	m->root_fd = -1;
	m->host = m->guest = m->leaf = m->link = NULL;
	m->up = NULL;
}

int policy_mount_copy(struct policy_mount *dst, const struct policy_mount *src, char *err,
		      size_t errlen)
{
	*dst = *src;
	dst->host = strdup(src->host);
	dst->guest = strdup(src->guest);
	dst->leaf = src->leaf ? strdup(src->leaf) : NULL;
	dst->link = src->link ? strdup(src->link) : NULL;
	dst->up = src->nup ? malloc(src->nup * sizeof(*dst->up)) : NULL;
	dst->root_fd = fcntl(src->root_fd, F_DUPFD_CLOEXEC, 0);
	int e = dst->root_fd < 0 ? errno : 0;
	if (dst->up)
		memcpy(dst->up, src->up, src->nup * sizeof(*dst->up));
	if (!e && dst->host && dst->guest && (dst->leaf || !src->leaf) && (dst->up || !src->nup) &&
	    (dst->link || !src->link))
		return 0;
	policy_mount_release(dst);
	if (!e)
		e = ENOMEM;
	snprintf(err, errlen, "copying mount %s: %s", src->guest, strerror(e));
	return -e;
}

int policy_add_mount(struct policy *p, const char *spec, int rw, char *err, size_t errlen)
{
	char host[POLICY_PATH_MAX], guest[POLICY_PATH_MAX], real[PATH_MAX];
	const char *colon = strchr(spec, ':');
	size_t hl = colon ? (size_t)(colon - spec) : strlen(spec);
	if (hl == 0 || hl >= sizeof(host)) {
		snprintf(err, errlen, "mount '%s': empty or overlong host path", spec);
		return -EINVAL;
	}
	memcpy(host, spec, hl);
	host[hl] = 0;
	const char *g = colon ? colon + 1 : host;
	if (g[0] != '/') {
		snprintf(err, errlen, "mount '%s': guest path '%s' must be absolute", spec, g);
		return -EINVAL;
	}
	int r = policy_normalize("/", g, strlen(g), guest, sizeof(guest));
	if (r < 0) {
		snprintf(err, errlen, "mount '%s': bad guest path: %s", spec, strerror(-r));
		return r;
	}
	if (!realpath(host, real)) {
		int e = errno;
		snprintf(err, errlen, "mount '%s': host path %s: %s", spec, host, strerror(e));
		return -e;
	}
	struct stat st;
	if (stat(real, &st) < 0) {
		int e = errno;
		snprintf(err, errlen, "mount '%s': %s: %s", spec, real, strerror(e));
		return -e;
	}
	for (size_t i = 0; i < p->nmounts; i++) {
		if (strcmp(p->mounts[i].guest, guest) == 0) {
			snprintf(err, errlen, "mount '%s': guest path %s is already mounted", spec,
				 guest);
			return -EEXIST;
		}
	}
	struct policy_mount m = {.rw = rw, .is_dir = S_ISDIR(st.st_mode), .root_fd = -1};
	char *dir = real;
	char parent[PATH_MAX];
	if (!m.is_dir) {
		snprintf(parent, sizeof(parent), "%s", real);
		dir = dirname(parent);
		m.leaf = strdup(basename(real));
	}
	m.root_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (m.root_fd < 0) {
		int e = errno;
		snprintf(err, errlen, "mount '%s': cannot open %s: %s", spec, dir, strerror(e));
		free(m.leaf);
		return -e;
	}
	m.host = strdup(real);
	m.guest = strdup(guest);
	/* Debian's /bin: a link that stays one in the guest when its target is shown (links.c). */
	char text[PATH_MAX];
	ssize_t tl =
	    m.is_dir && strcmp(host, guest) == 0 ? readlink(host, text, sizeof(text) - 1) : -1;
	if (tl > 0) {
		text[tl] = 0;
		m.link = strdup(text);
	}
	r = m.host ? policy_nest_identify(&m, err, errlen) : -ENOMEM;
	struct policy_mount *n = r < 0 ? NULL : realloc(p->mounts, (p->nmounts + 1) * sizeof(*n));
	if (n) {
		p->mounts = n;
		p->mounts[p->nmounts++] = m;
	}
	if (!n || !m.guest || (!m.is_dir && !m.leaf) || policy_nest_add(p) < 0) {
		if (n)
			p->nmounts--;
		policy_mount_release(&m);
		if (r != -ENOMEM && r < 0)
			return r;
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

int policy_set_cwd(struct policy *p, const char *guest, char *err, size_t errlen)
{
	char norm[POLICY_PATH_MAX];
	int r = policy_normalize("/", guest, strlen(guest), norm, sizeof(norm));
	if (r < 0) {
		snprintf(err, errlen, "--cwd %s: %s", guest, strerror(-r));
		return r;
	}
	char *c = strdup(norm);
	if (!c)
		return -ENOMEM;
	free(p->cwd);
	p->cwd = c;
	return 0;
}
