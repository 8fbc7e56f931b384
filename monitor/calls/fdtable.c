/* The guest's handle table: guest fd numbers index it; host fds never reach the guest. */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calls.h"

void sbx_fd_init(struct sbx_vm *vm)
{
	memset(vm->proc.files->fds, 0, sizeof(vm->proc.files->fds));
	/* Raising a hard RLIMIT_NOFILE takes CAP_SYS_RESOURCE: the program has it in the
	 * sandbox when it would natively, run by this user. Asked now: the confined monitor
	 * may not call capget. */
	struct __user_cap_header_struct ch = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct cd[_LINUX_CAPABILITY_U32S_3] = {0};
	vm->proc.files->nofile_priv =
	    syscall(SYS_capget, &ch, cd) == 0 &&
	    (cd[CAP_TO_INDEX(CAP_SYS_RESOURCE)].effective & CAP_TO_MASK(CAP_SYS_RESOURCE));
	const int host[3] = {vm->cfg.stdin_fd, vm->cfg.stdout_fd, vm->cfg.stderr_fd};
	for (int i = 0; i < 3; i++) {
		if (host[i] < 0)
			continue;
		/* A private copy: the guest closing its fd 2 must not close the monitor's stderr.
		 */
		int fd = fcntl(host[i], F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			continue;
		vm->proc.files->fds[i] =
		    (struct sbx_handle){.kind = SBX_H_HOST, .fd = fd, .writable = 1, .stdio = i};
	}
}

struct sbx_handle *sbx_fd_get(struct sbx_vm *vm, int64_t fd)
{
	if (fd < 0 || fd >= SBX_MAX_FDS || vm->proc.files->fds[fd].kind == SBX_H_FREE)
		return NULL;
	return &vm->proc.files->fds[fd];
}

int sbx_fd_room(struct sbx_vm *vm)
{
	uint64_t max = vm->cfg.policy->lim.max_files;
	if (!max)
		return 0;
	int used = 0;
	for (int i = 0; i < SBX_MAX_FDS; i++)
		used += vm->proc.files->fds[i].kind != SBX_H_FREE;
	if (max && (uint64_t)used >= max) {
		sbx_vm_kill(vm, SBX_END_LIMIT, SBX_STATUS_LIMIT_FILES, 0,
			    "open-files limit reached: --max-files %llu", (unsigned long long)max);
		return -1;
	}
	return 0;
}

uint32_t sbx_fd_ceiling(const struct sbx_vm *vm)
{
	uint64_t max = vm->cfg.policy ? vm->cfg.policy->lim.max_files : 0;
	return max && max < SBX_MAX_FDS ? (uint32_t)max : SBX_MAX_FDS;
}

void sbx_fd_limits(const struct sbx_vm *vm, uint64_t lim[2])
{
	uint32_t c = sbx_fd_ceiling(vm);
	/* A restore under a narrower policy than the snapshot's: the narrower one holds. */
	lim[0] = vm->proc.files->nofile_set && vm->proc.files->nofile_soft < c
		     ? vm->proc.files->nofile_soft
		     : c;
	lim[1] = vm->proc.files->nofile_set && vm->proc.files->nofile_hard < c
		     ? vm->proc.files->nofile_hard
		     : c;
}

int sbx_fd_alloc(struct sbx_vm *vm, int lowest)
{
	/* --max-files first: reaching the sandbox's limit ends the run; the guest's own limit
	 * is an error it can handle. */
	if (sbx_fd_room(vm) < 0)
		return -EMFILE;
	uint64_t lim[2];
	sbx_fd_limits(vm, lim);
	for (int i = lowest < 0 ? 0 : lowest; i < (int)lim[0]; i++)
		if (vm->proc.files->fds[i].kind == SBX_H_FREE)
			return i;
	return -EMFILE;
}

void sbx_fd_drop(struct sbx_handle *h)
{
	if (h->kind == SBX_H_HOST && h->fd >= 0)
		close(h->fd);
	sbx_memfd_drop(h->memfd);
	if (h->pty)
		sbx_pty_drop(h->pty, h->end == 0);
	if (h->sigfd)
		sbx_sigfd_drop(h->sigfd);
	free(h->gpath);
	free(h->sun_local);
	free(h->sun_peer);
	memset(h, 0, sizeof(*h));
}

struct sbx_sun *sbx_sun_copy(const struct sbx_sun *g)
{
	struct sbx_sun *d = g ? malloc(sizeof(*d)) : NULL;
	if (d)
		*d = *g;
	return d;
}

int sbx_fd_copy(struct sbx_handle *dst, const struct sbx_handle *src)
{
	*dst = *src;
	dst->fd = -1;
	dst->gpath = src->gpath ? strdup(src->gpath) : NULL;
	dst->sun_local = sbx_sun_copy(src->sun_local);
	dst->sun_peer = sbx_sun_copy(src->sun_peer);
	int e = (src->gpath && !dst->gpath) || (src->sun_local && !dst->sun_local) ||
			(src->sun_peer && !dst->sun_peer)
		    ? ENOMEM
		    : 0;
	if (!e && src->kind == SBX_H_HOST && (dst->fd = fcntl(src->fd, F_DUPFD_CLOEXEC, 3)) < 0)
		e = errno;
	if (e) {
		free(dst->gpath);
		free(dst->sun_local);
		free(dst->sun_peer);
		dst->gpath = NULL;
		dst->sun_local = dst->sun_peer = NULL;
		dst->memfd = NULL;
		dst->pty = NULL;
		dst->sigfd = NULL;
		return -e;
	}
	sbx_memfd_hold(dst->memfd);
	if (dst->pty)
		sbx_pty_hold(dst->pty, dst->end == 0);
	if (dst->sigfd)
		sbx_sigfd_hold(dst->sigfd);
	return 0;
}

int sbx_fd_meta_copy(struct sbx_handle *dst, const struct sbx_handle *src)
{
	struct sbx_handle h = *src;
	h.kind = SBX_H_FREE; /* no host fd to dup */
	h.memfd = NULL;
	h.pty = NULL;
	h.sigfd = NULL;
	int r = sbx_fd_copy(dst, &h);
	dst->kind = src->kind;
	dst->fd = -1;
	return r;
}

void sbx_fd_meta_free(struct sbx_handle *h)
{
	h->kind = SBX_H_FREE;
	h->memfd = NULL;
	h->pty = NULL;
	h->sigfd = NULL;
	sbx_fd_drop(h);
}

void sbx_fd_release(struct sbx_vm *vm, int fd)
{
	struct sbx_handle *h = &vm->proc.files->fds[fd];
	sbx_locks_closing(vm, h);
	sbx_fd_drop(h);
}

int sbx_fd_fork(struct sbx_vm *child, struct sbx_vm *parent)
{
	sbx_fd_close_all(child);
	struct sbx_files *c = child->proc.files, *p = parent->proc.files;
	c->nofile_set = p->nofile_set;
	c->nofile_soft = p->nofile_soft;
	c->nofile_hard = p->nofile_hard;
	c->nofile_priv = p->nofile_priv;
	c->next_oid = p->next_oid; /* the inherited handles keep theirs */
	for (int i = 0; i < SBX_MAX_FDS; i++) {
		if (p->fds[i].kind == SBX_H_FREE)
			continue;
		int r = sbx_fd_copy(&c->fds[i], &p->fds[i]);
		if (r < 0) {
			memset(&c->fds[i], 0, sizeof(c->fds[i]));
			return r;
		}
	}
	return sbx_sigfd_forked(child);
}

void sbx_fd_transient_free(struct sbx_files *f)
{
	sbx_fifo_waits_free(f);
	sbx_scm_free_all(f);
	sbx_sockname_free_all(f);
}

void sbx_fd_exec(struct sbx_vm *vm)
{
	sbx_fd_transient_free(vm->proc.files);
	for (int i = 0; i < SBX_MAX_FDS; i++)
		if (vm->proc.files->fds[i].kind != SBX_H_FREE && vm->proc.files->fds[i].cloexec)
			sbx_fd_release(vm, i);
}

void sbx_fd_close_all(struct sbx_vm *vm)
{
	for (int i = 0; i < SBX_MAX_FDS; i++)
		if (vm->proc.files->fds[i].kind != SBX_H_FREE)
			sbx_fd_release(vm, i);
	sbx_locks_free(vm);
	sbx_fd_transient_free(vm->proc.files);
}
