/* The guest's environment: "K=V" strings, one per name. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_int.h"

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
	int r = policy_strv_push(&p->env, &p->nenv, dup);
	if (r < 0)
		free(dup);
	return r;
}

int policy_valid_env_name(const char *name)
{
	return *name && !strchr(name, '=');
}

int policy_pass_env(struct policy *p, const char *name, char *err, size_t errlen)
{
	if (!policy_valid_env_name(name)) {
		snprintf(err, errlen, "--env-pass '%s': not a variable name", name);
		return -EINVAL;
	}
	const char *v = getenv(name);
	if (!v)
		return 0; /* not set on the host: nothing to pass */
	char *kv = policy_join(name, '=', v);
	if (!kv)
		return -ENOMEM;
	int r = policy_set_env(p, kv, err, errlen);
	free(kv);
	return r;
}
