/* Limits and private temporary directories. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy.h"

/* The digits a size or duration starts with; *end points at its unit. */
static int leading_number(const char *s, uint64_t *v, const char **end)
{
	char *e;
	if (!s || *s < '0' || *s > '9')
		return -EINVAL; /* strtoull would take spaces and signs */
	errno = 0;
	unsigned long long n = strtoull(s, &e, 10);
	if (errno)
		return -EINVAL;
	*v = n;
	*end = e;
	return 0;
}

int policy_parse_size(const char *s, uint64_t *out)
{
	const char *end;
	uint64_t v;
	if (leading_number(s, &v, &end) < 0)
		return -EINVAL;
	unsigned shift = 0;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		end++;
		break;
	case 'm':
	case 'M':
		shift = 20;
		end++;
		break;
	case 'g':
	case 'G':
		shift = 30;
		end++;
		break;
	}
	if (*end == 'i' && end[1] == 'B')
		end += 2;
	else if (*end == 'B')
		end++;
	if (*end || (shift && v > (~0ull >> shift)))
		return -EINVAL;
	*out = v << shift;
	return 0;
}

int policy_parse_duration(const char *s, uint64_t *ms)
{
	const char *end;
	uint64_t v;
	if (leading_number(s, &v, &end) < 0)
		return -EINVAL;
	uint64_t mul;
	if (!strcmp(end, "ms"))
		mul = 1;
	else if (!strcmp(end, "s") || !*end)
		mul = 1000;
	else if (!strcmp(end, "m"))
		mul = 60000;
	else if (!strcmp(end, "h"))
		mul = 3600000;
	else
		return -EINVAL;
	if (v > ~0ull / mul)
		return -EINVAL;
	*ms = v * mul;
	return 0;
}

static int push(char ***arr, size_t *n, char *s)
{
	char **a = realloc(*arr, (*n + 2) * sizeof(*a));
	if (!a)
		return -ENOMEM;
	*arr = a;
	a[(*n)++] = s;
	a[*n] = NULL;
	return 0;
}

int policy_add_tmp(struct policy *p, const char *guest, char *err, size_t errlen)
{
	char norm[POLICY_PATH_MAX];
	if (guest[0] != '/' ||
	    policy_normalize("/", guest, strlen(guest), norm, sizeof(norm)) < 0) {
		snprintf(err, errlen, "--tmp %s: expected an absolute guest path", guest);
		return -EINVAL;
	}
	char *g = strdup(norm);
	if (!g || push(&p->tmp, &p->ntmp, g) < 0) {
		free(g);
		return -ENOMEM;
	}
	return 0;
}

int policy_make_tmp(struct policy *p, char *err, size_t errlen)
{
	const char *base = getenv("TMPDIR");
	for (size_t i = p->ntmp_host; i < p->ntmp; i++) {
		char dir[POLICY_PATH_MAX], spec[2 * POLICY_PATH_MAX + 2];
		snprintf(dir, sizeof(dir), "%s/sandbox-tmp-XXXXXX", base && *base ? base : "/tmp");
		if (!mkdtemp(dir)) {
			int e = errno;
			snprintf(err, errlen, "--tmp %s: cannot create %s: %s", p->tmp[i], dir,
				 strerror(e));
			return -e;
		}
		char *h = strdup(dir);
		if (!h || push(&p->tmp_host, &p->ntmp_host, h) < 0) {
			free(h);
			rmdir(dir);
			return -ENOMEM;
		}
		snprintf(spec, sizeof(spec), "%s:%s", dir, p->tmp[i]);
		int r = policy_add_mount(p, spec, 1, err, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	/* Not remove(): under Landlock its unlink of a directory fails with EACCES, not EISDIR,
	 * and it never tries rmdir. */
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

/* Called by policy_free: the guest's private directories go when the sandbox does. FTW_PHYS:
 * a symlink the guest planted is removed, never followed. */
void policy_remove_tmp(struct policy *p);
void policy_remove_tmp(struct policy *p)
{
	for (size_t i = 0; i < p->ntmp_host; i++) {
		nftw(p->tmp_host[i], remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
		free(p->tmp_host[i]);
	}
	free(p->tmp_host);
	for (size_t i = 0; i < p->ntmp; i++)
		free(p->tmp[i]);
	free(p->tmp);
	p->tmp_host = p->tmp = NULL;
	p->ntmp_host = p->ntmp = 0;
}
