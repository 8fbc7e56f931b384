/* Inside policy/: nested mounts (nesting.c), shared by mounts.c and resolve.c. */
#ifndef SBX_POLICY_NESTING_H
#define SBX_POLICY_NESTING_H

#include "policy.h"

/* Fills in the identity of a mount about to be added (m->dev, ino, mnt_id, up): its object and
 * the chain of its ancestors by "..". -errno with a message. */
int policy_nest_identify(struct policy_mount *m, char *err, size_t errlen);
/* Relates the last mount added to the others: which ones may reach another's object, and the
 * objects the guest must never move (pins). -ENOMEM only, before anything changed. */
int policy_nest_add(struct policy *p);
/* The full resolution of a target on a mount that may reach another mount's object: component
 * by component for the last one, symlinks followed here, the mount found by identity. */
int policy_resolve_full(const struct policy *p, const struct policy_target *t, enum policy_walk how,
			struct policy_node *n);

#endif
