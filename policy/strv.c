/* The NULL-terminated string lists a policy keeps (policy_int.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy_int.h"

int policy_strv_push(char ***v, size_t *n, char *s)
{
	char **a = realloc(*v, (*n + 2) * sizeof(*a));
	if (!a)
		return -ENOMEM;
	*v = a;
	a[(*n)++] = s;
	a[*n] = NULL;
	return 0;
}

int policy_strv_copy(char ***v, size_t *nv, char *const *src, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char *s = strdup(src[i]);
		if (!s || policy_strv_push(v, nv, s) < 0) {
			free(s);
			policy_strv_free(v, nv);
			return -ENOMEM;
		}
	}
	return 0;
}

void policy_strv_free(char ***v, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		free((*v)[i]);
	free(*v);
	*v = NULL;
	*n = 0;
}

char *policy_join(const char *a, char sep, const char *b)
{
	size_t al = strlen(a), bl = strlen(b);
	char *s = malloc(al + bl + 2);
	if (!s)
		return NULL;
	memcpy(s, a, al);
	s[al] = sep;
	memcpy(s + al + 1, b, bl + 1);
	return s;
}
