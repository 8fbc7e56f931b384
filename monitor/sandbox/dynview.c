/* The default view of a dynamic program: the files ld.so opens to start it, shown read-only at
 * their own paths and nothing more, so `sandbox-run /bin/ls` needs no flag and sees no other
 * file of the host. The closure is resolved through the view the guest will have (loader/
 * needed.c): a path the policy already shows is found there, as ld.so in the guest will find
 * it; any other is looked up on the host and, when used, becomes a read-only file mount. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loader.h"
#include "policy.h"
#include "sandbox.h"

struct view {
	const struct policy *p;
	struct policy_target t;
};

static int view_open(void *ctx, const char *path)
{
	struct view *v = ctx;
	const struct policy_mount *m = NULL;
	policy_lookup(v->p, path, &v->t);
	if (v->t.kind == POLICY_MOUNT)
		return policy_open_guest(v->p, path, POLICY_FOLLOW,
					 O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0, NULL, NULL, &m);
	/* Not shown yet: the host's file, which the view will show if it is used. Never
	 * blocking on a FIFO, never becoming a controlling terminal. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	return fd < 0 ? -errno : fd;
}

static int show(struct policy *p, struct view *v, const char *path, const char *tool, FILE *log,
		char *err, size_t errlen)
{
	policy_lookup(p, path, &v->t);
	if (v->t.kind == POLICY_MOUNT)
		return 0;
	if (strchr(path, ':')) {
		snprintf(err, errlen, "%s is needed but cannot be shown: its path has a ':'", path);
		return -EINVAL;
	}
	int r = policy_add_mount(p, path, 0, err, errlen);
	if (r == 0 && log)
		fprintf(log, "%s: dynamic program: showing %s read-only\n", tool, path);
	return r;
}

int sbx_dynamic_view(struct policy *p, const char *prog, const char *tool, FILE *log, char *err,
		     size_t errlen)
{
	char real[PATH_MAX];
	struct loader_needed n = {0};
	struct view *v = malloc(sizeof(*v));
	if (!v) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	v->p = p;
	struct loader_needed_io io = {.open = view_open, .ctx = v, .cwd = p->cwd};
	int fd = open(prog, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	int r = fd < 0 ? -errno : 0;
	if (r < 0)
		snprintf(err, errlen, "cannot open %s: %s", prog, strerror(-r));
	else if (!realpath(prog, real))
		r = -errno, snprintf(err, errlen, "%s: %s", prog, strerror(-r));
	if (r == 0)
		r = loader_needed_resolve(real, fd, &io, &n, err, errlen);
	if (fd >= 0)
		close(fd);
	for (size_t i = 0; r == 0 && i < n.npaths; i++)
		r = show(p, v, n.paths[i], tool, log, err, errlen);
	/* ld.so finds $ORIGIN from /proc/self/exe: the program must be at its own path. */
	if (r == 0 && n.origin_used)
		r = show(p, v, real, tool, log, err, errlen);
	loader_needed_free(&n);
	free(v);
	return r;
}
