/* inotify (ABI 1.19): a host inotify instance behind a handle, its watches the host's on what
 * the guest's paths name through the policy. A watch is added through /proc/self/fd of an
 * O_PATH descriptor of the target, so the host never resolves a guest path; its events name
 * entries of a directory the guest can list anyway, with the host's watch descriptors, which
 * are the instance's own small numbers as on Linux. Reads, poll and epoll are a host fd's. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "calls.h"

/* Instances one process may hold (handles of them, a dup counting as one more). */
#define SBX_INOTIFY_MAX 32

#ifndef IN_MASK_CREATE
#define IN_MASK_CREATE 0x10000000
#endif

/* INOTIFY a0: 0 a new instance (a1: IN_CLOEXEC | IN_NONBLOCK), 1 inotify_rm_watch (a1: its
 * handle, a2: the watch). */
int64_t sbx_hc_inotify(struct sbx_vm *vm, const struct sbx_slot *s)
{
	uint64_t op = s->u.a[0], a1 = s->u.a[1];
	if (op == 0) {
		if (a1 & ~(uint64_t)(IN_CLOEXEC | IN_NONBLOCK))
			return -EINVAL;
		/* The host's instances are per user (max_user_instances, 128 by default): one
		 * process of the sandbox may not take them all from the user's other programs. */
		int open_now = 0;
		for (int i = 0; i < SBX_MAX_FDS; i++)
			open_now += vm->proc.files->fds[i].kind == SBX_H_HOST &&
				    vm->proc.files->fds[i].obj == SBX_O_INOTIFY;
		if (open_now >= SBX_INOTIFY_MAX)
			return -EMFILE;
		int fd = inotify_init1(IN_CLOEXEC | (int)(a1 & IN_NONBLOCK));
		if (fd < 0)
			return -errno;
		return sbx_handle_add(vm, fd, SBX_O_INOTIFY, (a1 & IN_CLOEXEC) != 0, 0);
	}
	if (op != 1)
		return -EINVAL;
	const struct sbx_handle *h = sbx_fd_get(vm, (int64_t)a1);
	if (!h)
		return -EBADF;
	if (h->kind != SBX_H_HOST || h->obj != SBX_O_INOTIFY || s->u.a[2] > INT32_MAX)
		return -EINVAL;
	return inotify_rm_watch(h->fd, (int)s->u.a[2]) < 0 ? -errno : 0;
}

/* INOTIFY_WATCH, struct sbx_path: dirfd and path the target, flags the mask, dirfd2 the
 * instance's handle: inotify_add_watch's watch descriptor. Linux's order of errors. */
int64_t sbx_hc_inotify_watch(struct sbx_vm *vm, const struct sbx_slot *s)
{
	const struct sbx_path *a = &s->u.path;
	uint32_t mask = a->flags;
	if ((mask & IN_MASK_ADD) && (mask & IN_MASK_CREATE))
		return -EINVAL;
	const struct sbx_handle *h = sbx_fd_get(vm, a->dirfd2);
	if (!h)
		return -EBADF;
	if (h->kind != SBX_H_HOST || h->obj != SBX_O_INOTIFY)
		return -EINVAL;
	int fd = sbx_path_opath(vm, a, !(mask & IN_DONT_FOLLOW));
	if (fd < 0)
		return fd;
	/* The magic link is followed to what fd is: the link itself under IN_DONT_FOLLOW. */
	char link[32];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	int wd = inotify_add_watch(h->fd, link, mask & ~(uint32_t)IN_DONT_FOLLOW);
	int err = errno;
	close(fd);
	return wd < 0 ? -err : wd;
}
