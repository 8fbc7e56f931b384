/* A policy's life: made empty, filled (mounts.c, env.c, tmp.c, the JSON loader), copied for
 * another sandbox, freed. This file calls the others and none calls it, so that freeing (which
 * removes the --tmp directories) and making the --tmp directories (which adds mounts) do not
 * call each other. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_int.h"

void policy_init(struct policy *p)
{
	memset(p, 0, sizeof(*p));
}

void policy_free(struct policy *p)
{
	policy_remove_tmp(p);
	for (size_t i = 0; i < p->nmounts; i++)
		policy_mount_release(&p->mounts[i]);
	free(p->mounts);
	free(p->pins);
	policy_strv_free(&p->env, &p->nenv);
	free(p->cwd);
	memset(p, 0, sizeof(*p));
}

static int copy_mounts(struct policy *dst, const struct policy *src, char *err, size_t errlen)
{
	if (!src->nmounts)
		return 0;
	dst->mounts = calloc(src->nmounts, sizeof(*dst->mounts));
	if (!dst->mounts)
		return -ENOMEM;
	for (size_t i = 0; i < src->nmounts; i++) {
		int r = policy_mount_copy(&dst->mounts[i], &src->mounts[i], err, errlen);
		if (r < 0)
			return r;
		dst->nmounts++;
	}
	return 0;
}

static int copy_pins(struct policy *dst, const struct policy *src)
{
	if (!src->npins)
		return 0;
	dst->pins = malloc(src->npins * sizeof(*dst->pins));
	if (!dst->pins)
		return -ENOMEM;
	memcpy(dst->pins, src->pins, src->npins * sizeof(*dst->pins));
	dst->npins = src->npins;
	return 0;
}

int policy_copy(struct policy *dst, const struct policy *src, char *err, size_t errlen)
{
	policy_init(dst);
	if (src->tmp_run) {
		snprintf(err, errlen,
			 "a policy whose --tmp directories are made cannot be copied (the copy "
			 "would share them)");
		return -EBUSY;
	}
	dst->lim = src->lim;
	dst->no_stdin = src->no_stdin;
	dst->no_dev = src->no_dev;
	dst->no_libs = src->no_libs;
	int r = src->cwd && !(dst->cwd = strdup(src->cwd)) ? -ENOMEM : 0;
	if (r == 0)
		r = policy_strv_copy(&dst->env, &dst->nenv, src->env, src->nenv);
	if (r == 0)
		r = policy_strv_copy(&dst->tmp, &dst->ntmp, src->tmp, src->ntmp);
	if (r == 0)
		r = copy_pins(dst, src);
	if (r == 0)
		r = copy_mounts(dst, src, err, errlen);
	if (r == -ENOMEM)
		snprintf(err, errlen, "copying the policy: out of memory");
	if (r < 0)
		policy_free(dst);
	return r;
}
