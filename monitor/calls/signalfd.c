/* signalfd: the signals are the guest kernel's, so it reads them itself (a read of the handle
 * answers -SBX_ESIGNALFD, and the kernel takes the pending signals of the mask as
 * sigtimedwait does). What the host has to do is wake a poll, an epoll or a select that
 * waits on one beside other descriptors (util-linux's `script`, event loops): each signalfd
 * is an eventfd of the host, readable exactly while a signal of its mask is pending, which the
 * kernel says when the set changes (SBX_SIGFD_SYNC: only a process that made a signalfd, and
 * only when the signals its masks cover change). The mask belongs to the open file
 * description, shared by dup and fork as on Linux; readiness is each process's own (a fork's
 * child gets eventfds of its own, its pending signals being none), as Linux's poll looks at
 * the signals of whoever polls. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "calls.h"

struct sbx_sigfd {
	unsigned refs; /* handles, in every process (atomic) */
	uint64_t mask; /* atomic: a signalfd() of any process may change it */
};

void sbx_sigfd_hold(struct sbx_sigfd *s)
{
	__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
}

void sbx_sigfd_drop(struct sbx_sigfd *s)
{
	if (__atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(s);
}

static int readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, 0) == 1;
}

/* Neither blocks: the counter is written only from 0, read only when it is not. */
static void set_ready(int fd, int on)
{
	uint64_t v = 1;
	if (on && !readable(fd))
		(void)!write(fd, &v, sizeof(v));
	else if (!on && readable(fd))
		(void)!read(fd, &v, sizeof(v));
}

static void sync_all(struct sbx_vm *vm, uint64_t pending)
{
	for (int i = 0; i < SBX_MAX_FDS; i++) {
		struct sbx_handle *h = &vm->proc.files->fds[i];
		if (h->kind == SBX_H_HOST && h->obj == SBX_O_SIGNALFD && h->sigfd)
			set_ready(h->fd, (pending &
					  __atomic_load_n(&h->sigfd->mask, __ATOMIC_RELAXED)) != 0);
	}
}

int sbx_sigfd_forked(struct sbx_vm *child)
{
	struct sbx_handle *fds = child->proc.files->fds;
	for (int i = 0; i < SBX_MAX_FDS; i++) {
		if (fds[i].kind != SBX_H_HOST || fds[i].obj != SBX_O_SIGNALFD)
			continue;
		int fd = -1;
		for (int j = 0; j < i && fd < 0; j++)
			if (fds[j].kind == SBX_H_HOST && fds[j].sigfd == fds[i].sigfd)
				fd = fcntl(fds[j].fd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0) {
			int fl = fcntl(fds[i].fd, F_GETFL);
			fd = eventfd(0, EFD_CLOEXEC |
					    (fl >= 0 && (fl & O_NONBLOCK) ? EFD_NONBLOCK : 0));
		}
		if (fd < 0)
			return -errno;
		close(fds[i].fd);
		fds[i].fd = fd;
	}
	return 0;
}

int64_t sbx_hc_signalfd(struct sbx_vm *vm, const struct sbx_slot *s)
{
	const uint64_t *a = s->u.a;
	struct sbx_handle *h = NULL;
	if (a[0] == SBX_SIGFD_ASK || (a[0] == SBX_SIGFD_MAKE && (int64_t)a[1] != -1)) {
		h = sbx_fd_get(vm, (int64_t)a[1]);
		if (!h)
			return -EBADF;
		if (h->kind != SBX_H_HOST || h->obj != SBX_O_SIGNALFD)
			return -EINVAL;
	}
	switch (a[0]) {
	case SBX_SIGFD_MAKE: {
		if (a[3] & ~(uint64_t)(O_NONBLOCK | O_CLOEXEC))
			return -EINVAL;
		if (h) {
			__atomic_store_n(&h->sigfd->mask, a[2], __ATOMIC_RELAXED);
			sync_all(vm, a[4]);
			return (int64_t)a[1];
		}
		struct sbx_sigfd *rec = calloc(1, sizeof(*rec));
		int fd =
		    rec ? eventfd(0, EFD_CLOEXEC | (a[3] & O_NONBLOCK ? EFD_NONBLOCK : 0)) : -1;
		if (fd < 0) {
			int e = rec ? errno : ENOMEM;
			free(rec);
			return -e;
		}
		rec->refs = 1;
		rec->mask = a[2];
		int64_t n = sbx_handle_add(vm, fd, SBX_O_SIGNALFD, (a[3] & O_CLOEXEC) != 0, 0);
		if (n < 0) {
			free(rec);
			return n;
		}
		vm->proc.files->fds[n].sigfd = rec;
		sync_all(vm, a[4]);
		return n;
	}
	case SBX_SIGFD_ASK: {
		uint64_t mask = __atomic_load_n(&h->sigfd->mask, __ATOMIC_RELAXED);
		if (sbx_copy_to_guest(vm, a[2], &mask, sizeof(mask)) < 0)
			return -EFAULT;
		int fl = fcntl(h->fd, F_GETFL);
		return fl < 0 ? -errno : (fl & O_NONBLOCK) != 0;
	}
	case SBX_SIGFD_SYNC:
		sync_all(vm, a[1]);
		return 0;
	}
	return -EINVAL;
}
