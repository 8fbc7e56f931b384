/* Local sockets: socketpair(AF_UNIX), a connected pair of host sockets behind two handles, as
 * Python's asyncio (its self-pipe), multiprocessing's duplex pipes and libuv's child stdio use
 * them. Their bytes move through READV/WRITEV (send and recv flags in the request's offset,
 * sbx_calls.h); SOCKOP answers the rest. No socket reaches the network: socket() stays
 * refused (guest-abi/kernel/net.c), and the monitor's seccomp filter allows socketpair for
 * AF_UNIX only. */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "calls.h"

int64_t sbx_hc_socketpair(struct sbx_vm *vm, const struct sbx_slot *s)
{
	uint64_t type = s->u.a[0] & ~(uint64_t)(SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (s->u.a[0] > UINT32_MAX ||
	    (type != SOCK_STREAM && type != SOCK_DGRAM && type != SOCK_SEQPACKET))
		return -EINVAL;
	int p[2];
	if (socketpair(AF_UNIX, (int)type | SOCK_CLOEXEC | (int)(s->u.a[0] & SOCK_NONBLOCK), 0, p) <
	    0)
		return -errno;
	return sbx_handle_add_pair(vm, p, SBX_O_SOCKET, (s->u.a[0] & SOCK_CLOEXEC) != 0, 1);
}

/* The int-valued SOL_SOCKET options a program reads of a local socket, and those it may set. */
static int readable_opt(uint64_t name)
{
	return name == SO_TYPE || name == SO_ERROR || name == SO_SNDBUF || name == SO_RCVBUF ||
	       name == SO_DOMAIN || name == SO_PROTOCOL || name == SO_ACCEPTCONN ||
	       name == SO_PASSCRED || name == SO_RCVLOWAT || name == SO_SNDLOWAT;
}

static int settable_opt(uint64_t name)
{
	return name == SO_SNDBUF || name == SO_RCVBUF || name == SO_RCVLOWAT || name == SO_PASSCRED;
}

int64_t sbx_hc_sockop(struct sbx_vm *vm, const struct sbx_slot *s)
{
	uint64_t op = s->u.a[0], a2 = s->u.a[2], a3 = s->u.a[3];
	struct sbx_handle *h = sbx_fd_get(vm, (int64_t)s->u.a[1]);
	if (!h)
		return -EBADF;
	if (h->kind != SBX_H_HOST || h->obj != SBX_O_SOCKET)
		return -ENOTSOCK;
	int v;
	socklen_t vl = sizeof(v);
	switch (op) {
	case SBX_SOCKOP_CHECK:
		return 0;
	case SBX_SOCKOP_SHUTDOWN: {
		if (a2 > SHUT_RDWR)
			return -EINVAL;
		if (shutdown(h->fd, (int)a2) < 0)
			return -errno;
		/* SHUT_RD 0, SHUT_WR 1, SHUT_RDWR 2: as bits, on every handle of this end. */
		int bits = a2 == SHUT_RD ? SBX_SHUT_RD : a2 == SHUT_WR ? SBX_SHUT_WR : 3;
		struct sbx_handle *fds = vm->proc.files->fds;
		for (int i = 0; i < SBX_MAX_FDS; i++)
			if (fds[i].kind == SBX_H_HOST && fds[i].obj == SBX_O_SOCKET &&
			    fds[i].oid == h->oid && fds[i].end == h->end)
				fds[i].shut |= bits;
		return 0;
	}
	case SBX_SOCKOP_GETOPT:
		if (a2 != SOL_SOCKET || !readable_opt(a3))
			return -ENOPROTOOPT;
		if (getsockopt(h->fd, SOL_SOCKET, (int)a3, &v, &vl) < 0)
			return -errno;
		return v < 0 ? 0 : v;
	case SBX_SOCKOP_SETOPT:
		if (a2 != SOL_SOCKET || !settable_opt(a3))
			return -ENOPROTOOPT;
		if (s->u.a[4] > INT32_MAX)
			return -EINVAL;
		v = (int)s->u.a[4];
		return setsockopt(h->fd, SOL_SOCKET, (int)a3, &v, sizeof(v)) < 0 ? -errno : 0;
	}
	return -EINVAL;
}
