/* Building the policy from command-line pieces. */
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

void policy_init(struct policy *p)
{
	memset(p, 0, sizeof(*p));
}

void policy_free(struct policy *p)
{
	policy_remove_tmp(p);
	for (size_t i = 0; i < p->nmounts; i++) {
		struct policy_mount *m = &p->mounts[i];
		if (m->root_fd >= 0)
			close(m->root_fd);
		free(m->host);
		free(m->guest);
		free(m->leaf);
		free(m->up);
	}
	free(p->mounts);
	free(p->pins);
	for (size_t i = 0; i < p->nenv; i++)
		free(p->env[i]);
	free(p->env);
	free(p->cwd);
	memset(p, 0, sizeof(*p));
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
	r = m.host ? policy_nest_identify(&m, err, errlen) : -ENOMEM;
	struct policy_mount *n = r < 0 ? NULL : realloc(p->mounts, (p->nmounts + 1) * sizeof(*n));
	if (n) {
		p->mounts = n;
		p->mounts[p->nmounts++] = m;
	}
	if (!n || !m.guest || (!m.is_dir && !m.leaf) || policy_nest_add(p) < 0) {
		if (n)
			p->nmounts--;
		close(m.root_fd);
		free(m.host);
		free(m.guest);
		free(m.leaf);
		free(m.up);
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

int policy_has_env(const struct policy *p, const char *key)
{
	size_t kl = strlen(key);
	for (size_t i = 0; i < p->nenv; i++)
		if (strncmp(p->env[i], key, kl) == 0 && p->env[i][kl] == '=')
			return 1;
	return 0;
}

int policy_set_env(struct policy *p, const char *kv, char *err, size_t errlen)
{
	const char *eq = strchr(kv, '=');
	if (!eq || eq == kv) {
		snprintf(err, errlen, "--env '%s': expected NAME=VALUE", kv);
		return -EINVAL;
	}
	size_t kl = (size_t)(eq - kv) + 1;
	char *dup = strdup(kv);
	if (!dup)
		return -ENOMEM;
	for (size_t i = 0; i < p->nenv; i++) {
		if (strncmp(p->env[i], kv, kl) == 0) {
			free(p->env[i]);
			p->env[i] = dup;
			return 0;
		}
	}
	char **n = realloc(p->env, (p->nenv + 2) * sizeof(*n));
	if (!n) {
		free(dup);
		return -ENOMEM;
	}
	p->env = n;
	p->env[p->nenv++] = dup;
	p->env[p->nenv] = NULL;
	return 0;
}
