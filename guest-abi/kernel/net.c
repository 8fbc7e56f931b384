/* The network. A policy grants none yet, so socket() is refused the way a Linux security
 * module refuses it (EACCES, which resolvers and NSS treat as "no service" and go on),
 * rather than ENOSYS, which would claim the call is missing. Counted with the refused calls,
 * so that the monitor says under -v what was refused. */
#include "kernel.h"

#define NR_SOCKET 41

long k_sys_socket(struct k_frame *f)
{
	(void)f;
	BOOT->nosys_count[NR_SOCKET]++;
	return -EACCES;
}

/* Local sockets: socketpair(AF_UNIX) is a connected pair the monitor makes on the host
 * (monitor/calls/hc_socket.c); send and recv move bytes through READV/WRITEV with their flags
 * (SBX_RW_SOCK), and the rest is SOCKOP. Naming, connecting and listening are the network's,
 * which no policy grants yet: a local socket is always one of a pair, already connected. A
 * descriptor that is not a socket answers ENOTSOCK, as on Linux (bash asks getpeername of its
 * stdin at every start). */
#define AF_UNIX 1
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define SOCK_SEQPACKET 5
#define SOCK_NONBLOCK 04000
#define SOCK_CLOEXEC 02000000
#define MSG_NOSIGNAL 0x4000
#define MSG_CMSG_CLOEXEC 0x40000000
#define EPROTONOSUPPORT 93
#define EISCONN 106
#define NR_SENDTO 44
#define NR_RECVFROM 45

long k_sys_socketpair(struct k_frame *f)
{
	uint32_t type = (uint32_t)f->rsi, base = type & ~(uint32_t)(SOCK_NONBLOCK | SOCK_CLOEXEC);
	if ((int32_t)f->rdi != AF_UNIX) {
		BOOT->nosys_count[NR_SOCKET]++; /* the network's, refused as socket() is */
		return -EACCES;
	}
	if (base != SOCK_STREAM && base != SOCK_DGRAM && base != SOCK_SEQPACKET)
		return -EINVAL;
	if ((int32_t)f->rdx != 0 && (int32_t)f->rdx != AF_UNIX)
		return -EPROTONOSUPPORT;
	if (!k_user_ok(f->r10, 8, K_WRITE))
		return -EFAULT;
	uint64_t a[1] = {type};
	return k_put_fd_pair(f->r10, k_call(SBX_CALL_SOCKETPAIR, a, 1));
}

static long sockop(uint64_t op, uint64_t fd, uint64_t a2, uint64_t a3, uint64_t a4)
{
	uint64_t a[5] = {op, (uint64_t)(int64_t)(int32_t)fd, a2, a3, a4};
	return k_call(SBX_CALL_SOCKOP, a, 5);
}

/* A local socket is connected, so a destination is EISCONN and a source has no name. */
static long send_vec(struct k_frame *f, int32_t fd, struct sbx_iovec *v, uint64_t cnt,
		     uint64_t flags)
{
	long r =
	    k_rwv_checked(SBX_CALL_WRITEV, fd, v, cnt, (int64_t)(SBX_RW_SOCK | (uint32_t)flags));
	return flags & MSG_NOSIGNAL ? r : k_epipe(f, r);
}

long k_sys_sendto(struct k_frame *f)
{
	if (f->r8) {
		long r = sockop(SBX_SOCKOP_CHECK, f->rdi, 0, 0, 0);
		return r < 0 ? r : -EISCONN;
	}
	struct sbx_iovec v[1] = {{f->rsi, f->rdx}};
	return send_vec(f, (int32_t)f->rdi, v, 1, f->r10);
}

/* The sender's address of a connected local socket: none (a length of 0). */
static long no_name(uint64_t lenp)
{
	uint32_t zero = 0;
	return lenp ? k_copy_to_user(lenp, &zero, sizeof(zero)) : 0;
}

long k_sys_recvfrom(struct k_frame *f)
{
	struct sbx_iovec v[1] = {{f->rsi, f->rdx}};
	long r = k_rwv_checked(SBX_CALL_READV, (int32_t)f->rdi, v, 1,
			       (int64_t)(SBX_RW_SOCK | (uint32_t)f->r10));
	if (r >= 0 && f->r8 && no_name(f->r9) < 0)
		return -EFAULT;
	return r;
}

/* struct msghdr: name, namelen, iov, iovlen, control, controllen, flags. */
struct k_msghdr {
	uint64_t name;
	uint32_t namelen, pad;
	uint64_t iov, iovlen, control, controllen;
	int32_t flags, pad2;
};

static long read_msg(uint64_t p, struct k_msghdr *m, struct sbx_iovec *v)
{
	if (k_copy_from_user(m, p, sizeof(*m)) < 0)
		return -EFAULT;
	if (m->iovlen > SBX_IOV_MAX)
		return -EMSGSIZE;
	if (k_copy_from_user(v, m->iov, m->iovlen * sizeof(v[0])) < 0)
		return -EFAULT;
	return 0;
}

/* No ancillary data: descriptors (SCM_RIGHTS) and credentials do not travel between the
 * sandbox's processes yet. */
long k_sys_sendmsg(struct k_frame *f)
{
	struct k_msghdr m;
	struct sbx_iovec v[SBX_IOV_MAX];
	long r = read_msg(f->rsi, &m, v);
	if (r < 0)
		return r;
	if (m.name || m.controllen) {
		r = sockop(SBX_SOCKOP_CHECK, f->rdi, 0, 0, 0);
		return r < 0 ? r : m.name ? -EISCONN : -EOPNOTSUPP;
	}
	return send_vec(f, (int32_t)f->rdi, v, m.iovlen, f->rdx);
}

long k_sys_recvmsg(struct k_frame *f)
{
	struct k_msghdr m;
	struct sbx_iovec v[SBX_IOV_MAX];
	long r = read_msg(f->rsi, &m, v);
	if (r < 0)
		return r;
	r = k_rwv_checked(
	    SBX_CALL_READV, (int32_t)f->rdi, v, m.iovlen,
	    (int64_t)(SBX_RW_SOCK | ((uint32_t)f->rdx & ~(uint32_t)MSG_CMSG_CLOEXEC)));
	if (r < 0)
		return r;
	m.namelen = 0;
	m.controllen = 0;
	m.flags = 0;
	return k_copy_to_user(f->rsi, &m, sizeof(m)) < 0 ? -EFAULT : r;
}

long k_sys_shutdown(struct k_frame *f)
{
	return sockop(SBX_SOCKOP_SHUTDOWN, f->rdi, (uint32_t)f->rsi, 0, 0);
}

/* SOL_SOCKET's int options (SO_TYPE, SO_ERROR, the buffer sizes, ...); others ENOPROTOOPT. */
long k_sys_getsockopt(struct k_frame *f)
{
	int32_t len;
	if (!f->r8 || k_copy_from_user(&len, f->r8, sizeof(len)) < 0)
		return -EFAULT;
	if (len < 0)
		return -EINVAL;
	long r = sockop(SBX_SOCKOP_GETOPT, f->rdi, (uint32_t)f->rsi, (uint32_t)f->rdx, 0);
	if (r < 0)
		return r;
	int32_t v = (int32_t)r, n = len < 4 ? len : 4;
	if (k_copy_to_user(f->r10, &v, (uint64_t)n) < 0 || k_copy_to_user(f->r8, &n, sizeof(n)) < 0)
		return -EFAULT;
	return 0;
}

long k_sys_setsockopt(struct k_frame *f)
{
	int32_t v;
	if ((int32_t)f->r8 < 4)
		return -EINVAL;
	if (k_copy_from_user(&v, f->r10, sizeof(v)) < 0)
		return -EFAULT;
	return sockop(SBX_SOCKOP_SETOPT, f->rdi, (uint32_t)f->rsi, (uint32_t)f->rdx,
		      (uint64_t)(v < 0 ? 0 : v));
}

/* getsockname, getpeername: an unnamed local socket's address is its family alone. */
long k_sys_sockname(struct k_frame *f)
{
	long r = sockop(SBX_SOCKOP_CHECK, f->rdi, 0, 0, 0);
	if (r < 0)
		return r;
	int32_t len;
	if (k_copy_from_user(&len, f->rdx, sizeof(len)) < 0)
		return -EFAULT;
	if (len < 0)
		return -EINVAL;
	uint16_t fam = AF_UNIX;
	int32_t full = sizeof(fam);
	if (len && k_copy_to_user(f->rsi, &fam, (uint64_t)(len < full ? len : full)) < 0)
		return -EFAULT;
	return k_copy_to_user(f->rdx, &full, sizeof(full)) < 0 ? -EFAULT : 0;
}

/* Naming, connecting, listening, accepting: a local socket is one of a connected pair. */
long k_sys_notsock(struct k_frame *f)
{
	long r = sockop(SBX_SOCKOP_CHECK, f->rdi, 0, 0, 0);
	return r < 0 ? r : -EINVAL;
}
