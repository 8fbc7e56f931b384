/* Inside policy/: what its files share beyond policy.h. */
#ifndef SBX_POLICY_INT_H
#define SBX_POLICY_INT_H

#include "policy.h"

/* strv.c: the NULL-terminated string lists a policy keeps (env, tmp, tmp_host). */
/* Appends s (taking it); -ENOMEM leaves the list as it was and s to the caller. */
int policy_strv_push(char ***v, size_t *n, char *s);
/* Copies n strings of src into an empty list. -ENOMEM leaves *v empty. */
int policy_strv_copy(char ***v, size_t *nv, char *const *src, size_t n);
void policy_strv_free(char ***v, size_t *n);
/* a, sep and b in one malloc'ed string ("HOST:GUEST", "K=V"), or NULL. */
char *policy_join(const char *a, char sep, const char *b);

/* mounts.c: one mount's own resources (strings, root fd, ancestor chain). */
void policy_mount_release(struct policy_mount *m);
/* A mount of its own with the same host object: its root fd dup'ed. -errno with a message. */
int policy_mount_copy(struct policy_mount *dst, const struct policy_mount *src, char *err,
		      size_t errlen);

/* resolve.c: is `prefix` (normalised) equal to or an ancestor of `path`? *rest: the offset of
 * what follows it in path. */
int policy_path_under(const char *prefix, const char *path, size_t *rest);

#endif
