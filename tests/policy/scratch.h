/* A scratch host tree for the policy tests, in /tmp: made, shell commands run in it, removed;
 * and a count of this process's open descriptors. */
#ifndef SBX_TEST_SCRATCH_H
#define SBX_TEST_SCRATCH_H

#include <stddef.h>

/* dir (at least 64 bytes) becomes a new /tmp/sbx-NAME-XXXXXX. */
void scratch_make(char *dir, size_t len, const char *name);
/* Runs cmd in dir with sh; the test fails if it fails. */
void scratch_sh(const char *dir, const char *cmd);
void scratch_remove(const char *dir);
int scratch_open_fds(void);
/* Mounts dir/HOST at GUEST in p (read-write if rw); the test fails if the policy refuses. */
struct policy;
void scratch_mount(struct policy *p, const char *dir, const char *host, const char *guest, int rw);

#endif
