/* The network. A policy grants none yet, so socket() of any family but AF_UNIX and the
 * sandbox's own loopback (AF_INET and AF_INET6 TCP and UDP, 1.30) is refused the way a Linux
 * security module refuses it (EACCES, which resolvers and NSS treat as "no service" and go
 * on), rather than ENOSYS, which would claim the call is missing. Counted with the refused
 * calls, so that the monitor says under -v what was refused.
 *
 * Local sockets: socketpair(AF_UNIX) is a connected pair the monitor makes on the host
 * (monitor/calls/hc_socket.c), socket(AF_UNIX) one of its own (1.19) that binds to a path on a
 * writable mount or an abstract name, listens, accepts and connects to the sandbox's own; send
 * and recv move bytes through READV/WRITEV with their flags (SBX_RW_SOCK), and the rest is
 * SOCKOP. A descriptor that is not a socket answers ENOTSOCK, as on Linux (bash asks
 * getpeername of its stdin at every start). */
#include "kernel.h"

#define NR_SOCKET 41

#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define SOCK_SEQPACKET 5
#define SOCK_NONBLOCK 04000
#define SOCK_CLOEXEC 02000000
#define MSG_NOSIGNAL 0x4000
#define MSG_CMSG_CLOEXEC 0x40000000
#define EPROTONOSUPPORT 93
#define EISCONN 106
#define ESOCKTNOSUPPORT 94
#define ENOBUFS 105
#define SUN_LEN_MAX 110 /* sizeof(struct sockaddr_un) */
/* An address the program gives: at most a struct sockaddr_storage, as Linux's
 * move_addr_to_kernel takes it; each family's own bound is the monitor's to check. */
#define K_ADDR_MAX 128
#define NR_SENDTO 44
#define NR_RECVFROM 45

/* socket(AF_INET or AF_INET6, SOCK_STREAM or SOCK_DGRAM, 0 or TCP's or UDP's protocol) (1.30):
 * one of the sandbox's loopback (monitor/calls/inet.c); any other kind of the network's
 * (raw, ICMP, SCTP) is refused as the other families are. */
static long inet_socket(int32_t family, uint32_t type, int32_t proto)
{
	uint32_t base = type & 0xf;
	if (type & ~0xfu & ~(uint32_t)(SOCK_NONBLOCK | SOCK_CLOEXEC))
		return -EINVAL;
	if (!((base == SOCK_STREAM && (proto == 0 || proto == IPPROTO_TCP)) ||
	      (base == SOCK_DGRAM && (proto == 0 || proto == IPPROTO_UDP)))) {
		BOOT->nosys_count[NR_SOCKET]++;
		return -EACCES;
	}
	uint64_t a[1] = {type | (uint64_t)(uint32_t)family << 32};
	return k_call(SBX_CALL_SOCKET, a, 1);
}

/* socket(AF_UNIX, type, 0 or PF_UNIX), as Linux's unix_create checks it. */
long k_sys_socket(struct k_frame *f)
{
	uint32_t type = (uint32_t)f->rsi, base = type & 0xf;
	if ((int32_t)f->rdi == AF_INET || (int32_t)f->rdi == AF_INET6)
		return inet_socket((int32_t)f->rdi, type, (int32_t)f->rdx);
	if ((int32_t)f->rdi != AF_UNIX) {
		BOOT->nosys_count[NR_SOCKET]++;
		return -EACCES;
	}
	if ((type & ~0xfu & ~(uint32_t)(SOCK_NONBLOCK | SOCK_CLOEXEC)) || base > 10 /* SOCK_MAX */)
		return -EINVAL;
	if ((int32_t)f->rdx != 0 && (int32_t)f->rdx != AF_UNIX)
		return -EPROTONOSUPPORT;
	if (base == 3) /* SOCK_RAW: a datagram socket, as Linux makes it */
		type = (type & ~0xfu) | SOCK_DGRAM;
	else if (base != SOCK_STREAM && base != SOCK_DGRAM && base != SOCK_SEQPACKET)
		return -ESOCKTNOSUPPORT;
	uint64_t a[1] = {type};
	return k_call(SBX_CALL_SOCKET, a, 1);
}

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

static long send_vec(struct k_frame *f, int32_t fd, struct sbx_iovec *v, uint64_t cnt,
		     uint64_t flags)
{
	/* The program's flags are 32 bits; SBX_RW_CTL above them says descriptors go along,
	 * SBX_RW_NAME that SENDTO staged a destination. */
	long r = k_rwv_checked(
	    SBX_CALL_WRITEV, fd, v, cnt,
	    (int64_t)(SBX_RW_SOCK | (flags & (SBX_RW_CTL | SBX_RW_NAME)) | (uint32_t)flags));
	return flags & MSG_NOSIGNAL ? r : k_epipe(f, r);
}

/* A send's destination (1.20): the monitor resolves it and keeps it for the WRITEV that
 * follows: SBX_RW_NAME, 0 when the socket ignores it (a seqpacket one), or -errno. */
static long dest(uint64_t fd, uint64_t addr, int64_t len)
{
	uint8_t sun[K_ADDR_MAX];
	if (len < 0 || len > K_ADDR_MAX) {
		long r = sockop(SBX_SOCKOP_CHECK, fd, 0, 0, 0);
		return r < 0 ? r : -EINVAL;
	}
	if (k_copy_from_user(sun, addr, (uint64_t)len) < 0)
		return -EFAULT;
	long r = sockop(SBX_SOCKOP_SENDTO, fd, k_kaddr((uint64_t)sun), (uint64_t)len, 0);
	return r < 0 ? r : r == 0 ? (long)SBX_RW_NAME : 0;
}

long k_sys_sendto(struct k_frame *f)
{
	long named = 0;
	if (f->r8 && f->r9 && (named = dest(f->rdi, f->r8, (int32_t)f->r9)) < 0)
		return named;
	struct sbx_iovec v[1] = {{f->rsi, f->rdx}};
	return send_vec(f, (int32_t)f->rdi, v, 1, (uint32_t)f->r10 | (uint64_t)named);
}

static long put_addr(uint64_t addr, uint64_t lenp, const uint8_t *sun, int32_t full);

/* The sender's address of what a READV with SBX_RW_NAME received: into sun, its length (0:
 * an unnamed sender, as Linux says for a local socket). */
static long sender(uint64_t fd, uint8_t *sun)
{
	long n = sockop(SBX_SOCKOP_NAME_TAKE, fd, k_kaddr((uint64_t)sun), 0, 0);
	return n < 0 ? 0 : n;
}

long k_sys_recvfrom(struct k_frame *f)
{
	struct sbx_iovec v[1] = {{f->rsi, f->rdx}};
	uint64_t named = f->r8 && f->r9 ? SBX_RW_NAME : 0;
	long r = k_rwv_checked(SBX_CALL_READV, (int32_t)f->rdi, v, 1,
			       (int64_t)(SBX_RW_SOCK | named | (uint32_t)f->r10));
	if (r >= 0 && named) {
		uint8_t sun[SUN_LEN_MAX];
		long n = sender(f->rdi, sun);
		if (put_addr(f->r8, f->r9, sun, (int32_t)n) < 0)
			return -EFAULT;
	}
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

/* Ancillary data (1.19): descriptors (SCM_RIGHTS) travel between the sandbox's processes as
 * the host's own, staged by SCM_SEND before the bytes they go with; credentials
 * (SCM_CREDENTIALS) are checked for their form only and not carried. */
#define SOL_SOCKET 1
#define SO_PEERCRED 17
/* SO_RCVTIMEO and SO_SNDTIMEO, and their _NEW names: a struct timeval (16 bytes here). */
#define SO_RCVTIMEO_OLD 20
#define SO_SNDTIMEO_OLD 21
#define SO_RCVTIMEO_NEW 66
#define SO_SNDTIMEO_NEW 67
#define SCM_RIGHTS 1
#define SCM_CREDENTIALS 2
#define MSG_CTRUNC 8
#define K_CMSG_MAX 4096 /* a control buffer this big is plenty for 253 descriptors */

struct k_cmsghdr {
	uint64_t len;
	int32_t level, type;
};

static long send_control(int32_t fd, const struct k_msghdr *m)
{
	static uint8_t ctl[K_CMSG_MAX]; /* the kernel's lock is held */
	int32_t fds[SBX_SCM_MAX];
	uint64_t n = 0, len = m->controllen;
	if (len > K_CMSG_MAX)
		return -ENOBUFS;
	if (k_copy_from_user(ctl, m->control, len) < 0)
		return -EFAULT;
	for (uint64_t off = 0; off + sizeof(struct k_cmsghdr) <= len;) {
		struct k_cmsghdr *c = (struct k_cmsghdr *)(ctl + off);
		if (c->len < sizeof(*c) || c->len > len - off)
			return -EINVAL;
		uint64_t data = c->len - sizeof(*c);
		if (c->level != SOL_SOCKET ||
		    (c->type != SCM_RIGHTS && (c->type != SCM_CREDENTIALS || data != 12)))
			return -EINVAL;
		if (c->type == SCM_RIGHTS) {
			if (data % 4 || n + data / 4 > SBX_SCM_MAX)
				return -EINVAL;
			k_memcpy(fds + n, c + 1, data);
			n += data / 4;
		}
		off += (c->len + 7) & ~7ull;
	}
	if (!n)
		return 0;
	long r = sockop(SBX_SOCKOP_SCM_SEND, (uint64_t)fd, k_kaddr((uint64_t)fds), n, 0);
	return r < 0 ? r : 1;
}

long k_sys_sendmsg(struct k_frame *f)
{
	struct k_msghdr m;
	struct sbx_iovec v[SBX_IOV_MAX];
	long r = read_msg(f->rsi, &m, v);
	if (r < 0)
		return r;
	uint64_t ctl = 0;
	if (m.name && m.namelen) {
		long named = dest(f->rdi, m.name, (int64_t)m.namelen);
		if (named < 0)
			return named;
		ctl = (uint64_t)named;
	}
	if (m.controllen) {
		r = sockop(SBX_SOCKOP_CHECK, f->rdi, 0, 0, 0);
		if (r == 0)
			r = send_control((int32_t)f->rdi, &m);
		if (r < 0)
			return r;
		ctl |= r ? SBX_RW_CTL : 0;
	}
	return send_vec(f, (int32_t)f->rdi, v, m.iovlen, (uint32_t)f->rdx | ctl);
}

long k_sys_recvmsg(struct k_frame *f)
{
	struct k_msghdr m;
	struct sbx_iovec v[SBX_IOV_MAX];
	long r = read_msg(f->rsi, &m, v);
	if (r < 0)
		return r;
	uint64_t ctl = m.controllen ? SBX_RW_CTL : 0, named = m.name ? SBX_RW_NAME : 0;
	r = k_rwv_checked(SBX_CALL_READV, (int32_t)f->rdi, v, m.iovlen,
			  (int64_t)(SBX_RW_SOCK | ctl | named | (uint32_t)f->rdx));
	if (r < 0)
		return r;
	uint32_t full = 0;
	if (named) {
		uint8_t sun[SUN_LEN_MAX];
		full = (uint32_t)sender(f->rdi, sun);
		uint32_t n = full < m.namelen ? full : m.namelen;
		if (n && k_copy_to_user(m.name, sun, n) < 0)
			return -EFAULT;
	}
	m.namelen = full;
	m.flags = 0;
	if (ctl) {
		static uint8_t buf[K_CMSG_MAX];
		uint64_t cap = m.controllen < K_CMSG_MAX ? m.controllen : K_CMSG_MAX;
		long t = sockop(SBX_SOCKOP_SCM_TAKE, f->rdi, k_kaddr((uint64_t)buf), cap, 0);
		uint64_t used = t < 0 ? 0 : (uint32_t)t;
		if (t > 0 && (t >> 32))
			m.flags |= MSG_CTRUNC;
		if (used && k_copy_to_user(m.control, buf, used) < 0)
			return -EFAULT;
		m.controllen = used;
	}
	return k_copy_to_user(f->rsi, &m, sizeof(m)) < 0 ? -EFAULT : r;
}

long k_sys_shutdown(struct k_frame *f)
{
	return sockop(SBX_SOCKOP_SHUTDOWN, f->rdi, (uint32_t)f->rsi, 0, 0);
}

static int timeout_opt(uint32_t name)
{
	return name == SO_RCVTIMEO_OLD || name == SO_SNDTIMEO_OLD || name == SO_RCVTIMEO_NEW ||
	       name == SO_SNDTIMEO_NEW;
}

/* SOL_SOCKET's int options (SO_TYPE, SO_ERROR, the buffer sizes, ...) and the two timeouts;
 * others ENOPROTOOPT. */
long k_sys_getsockopt(struct k_frame *f)
{
	int32_t len;
	if (!f->r8 || k_copy_from_user(&len, f->r8, sizeof(len)) < 0)
		return -EFAULT;
	if (len < 0)
		return -EINVAL;
	if ((uint32_t)f->rsi == SOL_SOCKET && (uint32_t)f->rdx == SO_PEERCRED) {
		int32_t cred[3]; /* struct ucred: pid, uid, gid */
		long r = sockop(SBX_SOCKOP_PEERCRED, f->rdi, k_kaddr((uint64_t)cred), 0, 0);
		if (r < 0)
			return r;
		int32_t n = len < 12 ? len : 12;
		if (k_copy_to_user(f->r10, cred, (uint64_t)n) < 0 ||
		    k_copy_to_user(f->r8, &n, sizeof(n)) < 0)
			return -EFAULT;
		return 0;
	}
	long r = sockop(SBX_SOCKOP_GETOPT, f->rdi, (uint32_t)f->rsi, (uint32_t)f->rdx, 0);
	if (r < 0)
		return r;
	if ((uint32_t)f->rsi == SOL_SOCKET && timeout_opt((uint32_t)f->rdx)) {
		int64_t tv[2] = {r / 1000000, r % 1000000};
		int32_t n = len < 16 ? len : 16;
		if (k_copy_to_user(f->r10, tv, (uint64_t)n) < 0 ||
		    k_copy_to_user(f->r8, &n, sizeof(n)) < 0)
			return -EFAULT;
		return 0;
	}
	int32_t v = (int32_t)r, n = len < 4 ? len : 4;
	if (k_copy_to_user(f->r10, &v, (uint64_t)n) < 0 || k_copy_to_user(f->r8, &n, sizeof(n)) < 0)
		return -EFAULT;
	return 0;
}

long k_sys_setsockopt(struct k_frame *f)
{
	int32_t v;
	if ((uint32_t)f->rsi == SOL_SOCKET && timeout_opt((uint32_t)f->rdx)) {
		/* As Linux's sock_set_timeout: microseconds out of range EDOM, a time before
		 * now the shortest wait, 0 none. */
		int64_t tv[2];
		if ((int32_t)f->r8 < 16)
			return -EINVAL;
		if (k_copy_from_user(tv, f->r10, sizeof(tv)) < 0)
			return -EFAULT;
		if (tv[1] < 0 || tv[1] >= 1000000)
			return -EDOM;
		uint64_t us = tv[0] < 0 ? 1
			      : (uint64_t)tv[0] > 1000000000ull
				  ? 1000000000ull * 1000000
				  : (uint64_t)tv[0] * 1000000 + (uint64_t)tv[1];
		return sockop(SBX_SOCKOP_SETOPT, f->rdi, SOL_SOCKET, (uint32_t)f->rdx, us);
	}
	if ((int32_t)f->r8 < 4)
		return -EINVAL;
	if (k_copy_from_user(&v, f->r10, sizeof(v)) < 0)
		return -EFAULT;
	return sockop(SBX_SOCKOP_SETOPT, f->rdi, (uint32_t)f->rsi, (uint32_t)f->rdx,
		      (uint64_t)(v < 0 ? 0 : v));
}

/* A call on something else than a socket. */
long k_sys_notsock(struct k_frame *f)
{
	long r = sockop(SBX_SOCKOP_CHECK, f->rdi, 0, 0, 0);
	return r < 0 ? r : -EINVAL;
}

/* A request that may wait (connect to a full backlog, accept): as a read waits, without the
 * kernel's lock; a signal ends it with EINTR, or makes it again after a handler with
 * SA_RESTART, as Linux's unix_stream_connect and accept. */
static long sockop_wait(uint64_t a[5])
{
	long r;
	do {
		if (k_signal_waiting())
			return k_signal_interrupts() ? -EINTR : -K_ERESTARTSYS;
		r = k_call_wait(SBX_CALL_SOCKOP, a, 5);
	} while (r == -EINTR);
	return r;
}

/* bind and connect: the address goes to the monitor as the kernel's copy. */
static long addr_call(uint64_t op, struct k_frame *f)
{
	uint8_t sun[K_ADDR_MAX];
	int32_t len = (int32_t)f->rdx;
	if (len < 0 || len > K_ADDR_MAX) {
		long r = sockop(SBX_SOCKOP_CHECK, f->rdi, 0, 0, 0);
		return r < 0 ? r : -EINVAL;
	}
	if (len && k_copy_from_user(sun, f->rsi, (uint64_t)len) < 0)
		return -EFAULT;
	uint64_t a[5] = {op, (uint64_t)(int64_t)(int32_t)f->rdi, k_kaddr((uint64_t)sun),
			 (uint64_t)len, 0};
	return op == SBX_SOCKOP_BIND ? k_call(SBX_CALL_SOCKOP, a, 5) : sockop_wait(a);
}

long k_sys_bind(struct k_frame *f)
{
	return addr_call(SBX_SOCKOP_BIND, f);
}

long k_sys_connect(struct k_frame *f)
{
	return addr_call(SBX_SOCKOP_CONNECT, f);
}

long k_sys_listen(struct k_frame *f)
{
	int32_t backlog = (int32_t)f->rsi;
	return sockop(SBX_SOCKOP_LISTEN, f->rdi, (uint64_t)(backlog < 0 ? 0 : backlog), 0, 0);
}

/* An address into the program's (addr, *lenp), cut to its length, the whole length told. */
static long put_addr(uint64_t addr, uint64_t lenp, const uint8_t *sun, int32_t full)
{
	int32_t len;
	if (!lenp)
		return 0;
	if (k_copy_from_user(&len, lenp, sizeof(len)) < 0)
		return -EFAULT;
	if (len < 0)
		return -EINVAL;
	if (len && k_copy_to_user(addr, sun, (uint64_t)(len < full ? len : full)) < 0)
		return -EFAULT;
	return k_copy_to_user(lenp, &full, sizeof(full)) < 0 ? -EFAULT : 0;
}

static long name_of(uint64_t fd, uint64_t which, uint64_t addr, uint64_t lenp)
{
	uint8_t sun[SUN_LEN_MAX];
	long n = sockop(SBX_SOCKOP_NAME, fd, which, k_kaddr((uint64_t)sun), 0);
	if (n < 0)
		return n;
	return put_addr(addr, lenp, sun, (int32_t)n);
}

/* getsockname: the address it was bound to (or none: its family alone); getpeername: the
 * address it connected to, a pair's unnamed end. */
long k_sys_sockname(struct k_frame *f)
{
	return name_of(f->rdi, 0, f->rsi, f->rdx);
}

long k_sys_peername(struct k_frame *f)
{
	return name_of(f->rdi, 1, f->rsi, f->rdx);
}

/* The peer's address: a local socket's, most often unnamed (its family alone), or the
 * loopback client's. */
static long accept_call(struct k_frame *f, uint64_t flags)
{
	if (flags & ~(uint64_t)(SOCK_NONBLOCK | SOCK_CLOEXEC))
		return -EINVAL;
	uint64_t a[5] = {SBX_SOCKOP_ACCEPT, (uint64_t)(int64_t)(int32_t)f->rdi, flags, 0, 0};
	long r = sockop_wait(a);
	if (r < 0 || !f->rsi)
		return r;
	long e = name_of((uint64_t)r, 1, f->rsi, f->rdx);
	if (e < 0) {
		uint64_t c[1] = {(uint64_t)r};
		k_call(SBX_CALL_CLOSE, c, 1);
		return e;
	}
	return r;
}

long k_sys_accept(struct k_frame *f)
{
	return accept_call(f, 0);
}

long k_sys_accept4(struct k_frame *f)
{
	return accept_call(f, f->r10);
}
