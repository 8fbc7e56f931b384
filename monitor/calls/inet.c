/* The sandbox's loopback (ABI 1.30): AF_INET and AF_INET6 sockets, TCP and UDP, that reach
 * the sandbox's own sockets and nothing else, as a network namespace with only `lo` up would
 * (bwrap --unshare-net). Test suites start a server on 127.0.0.1 and talk to it from another
 * process or thread (Python's http.server and urllib, Go's httptest, a database's test
 * instance); a sandbox that refused the family broke them all, and one that gave the host's
 * network would not be a sandbox.
 *
 * Each such socket is a host AF_UNIX socket of the same type (a stream carries TCP's bytes,
 * a datagram socket UDP's messages), named in the sandbox's private abstract namespace
 * (hc_socket.c) by its port: the prefix, 'T' or 'U', the port in decimal. A port is one
 * namespace for every local address and both families, so a connect to 127.0.0.1:p, to [::1]:p
 * or to 0.0.0.0:p reaches the socket bound to any of them on p (a dual-stack listener on [::]
 * is the common case, and reaches v4 clients as on Linux). A TCP client is bound at its
 * connect to the prefix, 'c', its family and an ephemeral port ("c4:40000"), which its
 * accepting peer reads back as the client's address. Addresses outside the loopback are unreachable
 * (ENETUNREACH, audited as a denial), and only a loopback or wildcard address can be bound
 * (EADDRNOTAVAIL).
 *
 * The program's view of an address (its own, its peer's) is kept in the handle as the guest's
 * sockaddr without its family (struct sbx_sun), and TCP's and IP's options as plain values
 * read back as set (iopts below): there is no wire for them to shape. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "calls.h"

/* Linux's default ip_local_port_range. */
#define SBX_PORT_LO 32768
#define SBX_PORT_HI 60999

int sbx_is_inet(const struct sbx_handle *h)
{
	return h->family == AF_INET || h->family == AF_INET6;
}

static int v4_local(uint32_t be)
{
	uint32_t a = ntohl(be);
	return a == 0 || a >> 24 == 127;
}

int sbx_inet_parse(int family, const void *buf, size_t len, union sbx_inaddr *a)
{
	memset(a, 0, sizeof(*a));
	/* Linux takes the RFC 2133 sockaddr_in6, without sin6_scope_id, too. */
	size_t need = family == AF_INET ? sizeof(struct sockaddr_in) : 24;
	if (len < sizeof(sa_family_t))
		return -EINVAL;
	memcpy(a, buf, len < sizeof(*a) ? len : sizeof(*a));
	if (a->sa.sa_family == AF_UNSPEC)
		return 0; /* a datagram socket's disconnect, as Linux takes it */
	if (len < need)
		return -EINVAL;
	return a->sa.sa_family == family ? 0 : -EAFNOSUPPORT;
}

int sbx_inet_local(const union sbx_inaddr *a)
{
	if (a->sa.sa_family == AF_INET)
		return v4_local(a->v4.sin_addr.s_addr);
	if (a->sa.sa_family != AF_INET6)
		return 0;
	const struct in6_addr *x = &a->v6.sin6_addr;
	if (IN6_IS_ADDR_UNSPECIFIED(x) || IN6_IS_ADDR_LOOPBACK(x))
		return 1;
	uint32_t v4;
	memcpy(&v4, x->s6_addr + 12, sizeof(v4));
	return IN6_IS_ADDR_V4MAPPED(x) && v4_local(v4);
}

uint16_t sbx_inet_port(const union sbx_inaddr *a)
{
	return ntohs(a->v4.sin_port); /* the same place in both families */
}

/* The loopback address of a family (127.0.0.1, or ::1; ::ffff:127.0.0.1 for a v6 socket
 * that spoke to a v4-mapped address) with port. */
static void loopback(union sbx_inaddr *a, int family, int mapped, uint16_t port)
{
	memset(a, 0, sizeof(*a));
	a->sa.sa_family = (sa_family_t)family;
	a->v4.sin_port = htons(port);
	if (family == AF_INET) {
		a->v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else if (mapped) {
		a->v6.sin6_addr.s6_addr[10] = a->v6.sin6_addr.s6_addr[11] = 0xff;
		a->v6.sin6_addr.s6_addr[12] = 127;
		a->v6.sin6_addr.s6_addr[15] = 1;
	} else {
		a->v6.sin6_addr = in6addr_loopback;
	}
}

static int is_mapped(const union sbx_inaddr *a)
{
	return a->sa.sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&a->v6.sin6_addr);
}

static int is_wildcard(const union sbx_inaddr *a)
{
	return a->sa.sa_family == AF_INET ? a->v4.sin_addr.s_addr == 0
					  : IN6_IS_ADDR_UNSPECIFIED(&a->v6.sin6_addr);
}

static size_t inet_len(int family)
{
	return family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

/* The handle's form of an address: the sockaddr's bytes after its family. */
struct sbx_sun *sbx_inet_sun(const union sbx_inaddr *a)
{
	struct sbx_sun g = {.len = (uint32_t)(inet_len(a->sa.sa_family) - sizeof(sa_family_t))};
	memcpy(g.path, (const char *)a + sizeof(sa_family_t), g.len);
	return sbx_sun_copy(&g);
}

size_t sbx_inet_name(const struct sbx_handle *h, const struct sbx_sun *g, void *out)
{
	union sbx_inaddr a;
	memset(&a, 0, sizeof(a));
	a.sa.sa_family = (sa_family_t)h->family;
	size_t n = inet_len(h->family);
	if (g)
		memcpy((char *)&a + sizeof(sa_family_t), g->path,
		       g->len < n - sizeof(sa_family_t) ? g->len : n - sizeof(sa_family_t));
	memcpy(out, &a, n);
	return n;
}

static int sock_type(int fd)
{
	int type = 0;
	socklen_t tl = sizeof(type);
	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ? -errno : type;
}

/* A port's host address: 'T' (a TCP socket bound to it), 'U' (UDP), 'c' (a TCP client's,
 * its family before the port: "4:" or "6:", which its accepting peer is told). */
static int port_addr(struct sbx_vm *vm, char kind, const char *tag, uint16_t port,
		     struct sockaddr_un *u, socklen_t *ul)
{
	char text[16];
	int n = snprintf(text, sizeof(text), "%s%u", tag, port);
	return sbx_sock_abstract(sbx_socks_of(vm), kind, text, (size_t)n, u, ul);
}

/* Binds the host socket fd to port (0: an ephemeral one, tried at random in Linux's range as
 * its port allocator does): the port, or -errno. */
static int bind_port(struct sbx_vm *vm, int fd, char kind, const char *tag, uint16_t port)
{
	for (int tries = 0; tries < 256; tries++) {
		uint16_t p = port;
		if (!p) {
			uint32_t x = 0;
			if (getrandom(&x, sizeof(x), 0) != (ssize_t)sizeof(x))
				x = (uint32_t)rand();
			p = (uint16_t)(SBX_PORT_LO + x % (SBX_PORT_HI - SBX_PORT_LO + 1));
		}
		struct sockaddr_un u;
		socklen_t ul;
		int r = port_addr(vm, kind, tag, p, &u, &ul);
		if (r < 0)
			return r;
		if (bind(fd, (struct sockaddr *)&u, ul) == 0)
			return p;
		if (errno != EADDRINUSE || port)
			return -errno;
	}
	return -EADDRINUSE; /* Linux's answer when the range is used up */
}

static void denied(struct sbx_vm *vm, const union sbx_inaddr *a, const char *what)
{
	char text[INET6_ADDRSTRLEN] = "?";
	const void *x = a->sa.sa_family == AF_INET ? (const void *)&a->v4.sin_addr
						   : (const void *)&a->v6.sin6_addr;
	inet_ntop(a->sa.sa_family, x, text, sizeof(text));
	sbx_log(vm, 1, "%s %s port %u refused: the sandbox has only its own loopback", what, text,
		sbx_inet_port(a));
	struct sbx_audit *au = vm->audit;
	if (vm->cfg.audit && au) {
		au->valid = 1;
		snprintf(au->gpath, sizeof(au->gpath), "%s port %u", text, sbx_inet_port(a));
		au->host[0] = 0;
		snprintf(au->rule, sizeof(au->rule), "no network: only the sandbox's loopback");
	}
}

/* The guest's address at gpa (len bytes, the kernel's copy) for h's family: bind's, connect's
 * and sendto's. Only its first bytes are read; the length is Linux's to check whole. */
static int guest_addr(struct sbx_vm *vm, const struct sbx_handle *h, uint64_t gpa, uint64_t len,
		      union sbx_inaddr *a)
{
	uint8_t buf[sizeof(union sbx_inaddr)];
	if (len > sizeof(struct sockaddr_storage)) /* Linux's bound for any family */
		return -EINVAL;
	if (sbx_copy_from_guest(vm, buf, gpa, len < sizeof(buf) ? len : sizeof(buf)) < 0)
		return -EFAULT;
	return sbx_inet_parse(h->family, buf, len, a);
}

int64_t sbx_inet_bind(struct sbx_vm *vm, struct sbx_handle *h, uint64_t gpa, uint64_t len)
{
	union sbx_inaddr a;
	int r = guest_addr(vm, h, gpa, len, &a);
	if (r < 0)
		return r;
	if (a.sa.sa_family == AF_UNSPEC) {
		/* Linux binds AF_UNSPEC with INADDR_ANY on a v4 socket, and nothing else. */
		if (len < (h->family == AF_INET ? sizeof(struct sockaddr_in) : 24))
			return -EINVAL;
		if (h->family != AF_INET || a.v4.sin_addr.s_addr != 0)
			return -EAFNOSUPPORT;
		a.sa.sa_family = AF_INET;
	}
	if (!sbx_inet_local(&a)) {
		denied(vm, &a, "bind to");
		return -EADDRNOTAVAIL;
	}
	if (h->sun_local)
		return -EINVAL; /* bound already */
	int type = sock_type(h->fd);
	if (type < 0)
		return type;
	int port = bind_port(vm, h->fd, type == SOCK_DGRAM ? 'U' : 'T', "", sbx_inet_port(&a));
	if (port < 0)
		return port;
	a.v4.sin_port = htons((uint16_t)port);
	h->sun_local = sbx_inet_sun(&a);
	return h->sun_local ? 0 : -ENOMEM;
}

/* An unbound socket about to send or connect: bound on the host to an ephemeral port of its
 * own ('U' for a datagram one, which its peers answer at; 'c' for a TCP client), so that the
 * other side is told where it came from. Its address, which the caller keeps as the
 * handle's, into local. fd is the handle's socket or a duplicate of it. */
int sbx_inet_autobind(struct sbx_vm *vm, const struct sbx_handle *h, int fd,
		      const union sbx_inaddr *dest, union sbx_inaddr *local)
{
	int type = sock_type(fd);
	if (type < 0)
		return type;
	/* A connect that failed left the host socket bound: its port is kept, as Linux
	 * keeps it. */
	struct sockaddr_un u;
	socklen_t ul = sizeof(u);
	if (getsockname(fd, (struct sockaddr *)&u, &ul) == 0 && ul > sizeof(sa_family_t)) {
		sbx_inet_from_host(vm, h->family, &u, ul, local);
		if (dest && is_mapped(dest))
			loopback(local, h->family, 1, sbx_inet_port(local));
		return 0;
	}
	int v4 = h->family == AF_INET || (dest && is_mapped(dest));
	int port = bind_port(vm, fd, type == SOCK_DGRAM ? 'U' : 'c',
			     type == SOCK_DGRAM ? ""
			     : v4		? "4:"
						: "6:",
			     0);
	if (port < 0)
		return port;
	loopback(local, h->family, dest && is_mapped(dest), (uint16_t)port);
	return 0;
}

int sbx_inet_listen(struct sbx_vm *vm, struct sbx_handle *h)
{
	int type = sock_type(h->fd);
	if (type < 0)
		return type;
	if (type != SOCK_STREAM)
		return -EOPNOTSUPP;
	if (h->sun_local)
		return 0;
	/* Unbound: Linux's autobind, to a port of its own on the wildcard. */
	int port = bind_port(vm, h->fd, 'T', "", 0);
	if (port < 0)
		return port;
	union sbx_inaddr a;
	memset(&a, 0, sizeof(a));
	a.sa.sa_family = (sa_family_t)h->family;
	a.v4.sin_port = htons((uint16_t)port);
	h->sun_local = sbx_inet_sun(&a);
	return h->sun_local ? 0 : -ENOMEM;
}

int sbx_inet_dest(struct sbx_vm *vm, const struct sbx_handle *h, uint64_t gpa, uint64_t len,
		  const char *what, union sbx_inaddr *a, struct sockaddr_un *u, socklen_t *ul)
{
	int r = guest_addr(vm, h, gpa, len, a);
	if (r < 0)
		return r;
	if (a->sa.sa_family == AF_UNSPEC) {
		memset(u, 0, sizeof(*u));
		u->sun_family = AF_UNSPEC;
		*ul = sizeof(sa_family_t);
		return 0;
	}
	if (!sbx_inet_local(a)) {
		denied(vm, a, what);
		return -ENETUNREACH;
	}
	int type = sock_type(h->fd);
	if (type < 0)
		return type;
	/* Linux sends to port 0 nowhere, and connects to it never. */
	if (sbx_inet_port(a) == 0)
		return type == SOCK_DGRAM ? -EINVAL : -ECONNREFUSED;
	if (is_wildcard(a)) /* the wildcard connects to the loopback, as on Linux */
		loopback(a, a->sa.sa_family, 0, sbx_inet_port(a));
	return port_addr(vm, type == SOCK_DGRAM ? 'U' : 'T', "", sbx_inet_port(a), u, ul);
}

/* A host address of the sandbox's loopback ('T', 'U' or 'c' and a port) as the program sees
 * it in family (its loopback address, v4-mapped in a v6 socket when the peer is v4's); a
 * name that is none of those (unbound) is the family's zero address. */
void sbx_inet_from_host(struct sbx_vm *vm, int family, const struct sockaddr_un *u, uint32_t ul,
			union sbx_inaddr *a)
{
	memset(a, 0, sizeof(*a));
	a->sa.sa_family = (sa_family_t)family;
	char kind;
	char text[16];
	size_t n;
	if (sbx_sock_abstract_kind(sbx_socks_of(vm), u, ul, &kind, text, sizeof(text), &n) < 0 ||
	    (kind != 'T' && kind != 'U' && kind != 'c') || n == 0)
		return;
	/* A v4 client reaches a v6 listener as ::ffff:127.0.0.1. */
	int v4 = kind == 'c' && text[0] == '4';
	const char *p =
	    kind == 'c' && (text[0] == '4' || text[0] == '6') && text[1] == ':' ? text + 2 : text;
	char *end;
	unsigned long port = strtoul(p, &end, 10);
	if (*end || port == 0 || port > 65535)
		return;
	loopback(a, family, v4, (uint16_t)port);
}

/* The accepted end's own address: the listener's, its wildcard made the loopback's of the
 * peer's kind (Linux says which address the client reached). */
struct sbx_sun *sbx_inet_accepted_local(const struct sbx_handle *l, const union sbx_inaddr *peer)
{
	union sbx_inaddr a;
	sbx_inet_name(l, l->sun_local, &a);
	if (is_wildcard(&a))
		loopback(&a, l->family, is_mapped(peer), sbx_inet_port(&a));
	return sbx_inet_sun(&a);
}

/* ---- Options ------------------------------------------------------------------------- */

/* TCP's and IP's int options that a program sets and reads back, with Linux's defaults on
 * loopback and the values it takes (a boolean any, read back as 0 or 1). Each changes nothing
 * here: there is no wire, no congestion and no route. The handle keeps the values in this
 * order (sbx_handle.iopt). */
#define B -1 /* a boolean */
static const struct {
	int level, name, def, min, max;
} iopts[] = {
    {IPPROTO_TCP, TCP_NODELAY, 0, B, B},
    {IPPROTO_TCP, TCP_KEEPIDLE, 7200, 1, 32767},
    {IPPROTO_TCP, TCP_KEEPINTVL, 75, 1, 32767},
    {IPPROTO_TCP, TCP_KEEPCNT, 9, 1, 127},
    {IPPROTO_TCP, TCP_USER_TIMEOUT, 0, 0, INT32_MAX},
    {IPPROTO_TCP, TCP_QUICKACK, 1, B, B},
    {IPPROTO_TCP, TCP_CORK, 0, B, B},
    {IPPROTO_TCP, TCP_DEFER_ACCEPT, 0, 0, INT32_MAX},
    {IPPROTO_TCP, TCP_FASTOPEN, 0, 0, INT32_MAX},
    {IPPROTO_TCP, TCP_MAXSEG, 65483, 88, 32767},
    {IPPROTO_TCP, TCP_SYNCNT, 6, 1, 127},
    {IPPROTO_TCP, TCP_LINGER2, 60, 0, INT32_MAX},
    {IPPROTO_TCP, TCP_FASTOPEN_CONNECT, 0, B, B},
    {IPPROTO_IP, IP_TOS, 0, 0, 255},
    {IPPROTO_IP, IP_TTL, 64, 1, 255},
    {IPPROTO_IP, IP_RECVERR, 0, B, B},
    {IPPROTO_IP, IP_MTU_DISCOVER, 1, 0, 5},
    {IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 0, B, B},
    {IPPROTO_IP, IP_FREEBIND, 0, B, B},
    {IPPROTO_IPV6, IPV6_V6ONLY, 0, B, B},
    {IPPROTO_IPV6, IPV6_UNICAST_HOPS, 64, 0, 255},
    {IPPROTO_IPV6, IPV6_TCLASS, 0, 0, 255},
    {IPPROTO_IPV6, IPV6_RECVERR, 0, B, B},
    {IPPROTO_IPV6, IPV6_MTU_DISCOVER, 1, 0, 5},
};
_Static_assert(sizeof(iopts) / sizeof(iopts[0]) <= SBX_IOPT_MAX, "sbx_handle.iopt too small");

/* The option's index, or -ENOPROTOOPT; TCP's on a UDP socket, and IPv6's on a v4 one, are
 * EOPNOTSUPP to getsockopt and ENOPROTOOPT to setsockopt, as Linux answers. */
static int iopt_index(const struct sbx_handle *h, uint64_t level, uint64_t name, int set)
{
	if ((level == IPPROTO_TCP && sock_type(h->fd) != SOCK_STREAM) ||
	    (level == IPPROTO_IPV6 && h->family != AF_INET6))
		return set ? -ENOPROTOOPT : -EOPNOTSUPP;
	for (unsigned i = 0; i < sizeof(iopts) / sizeof(iopts[0]); i++)
		if ((uint64_t)iopts[i].level == level && (uint64_t)iopts[i].name == name)
			return (int)i;
	return -ENOPROTOOPT;
}

int64_t sbx_inet_getopt(const struct sbx_handle *h, uint64_t level, uint64_t name)
{
	if (level == SOL_SOCKET && name == SO_DOMAIN)
		return h->family;
	if (level == SOL_SOCKET && name == SO_PROTOCOL)
		return sock_type(h->fd) == SOCK_DGRAM ? IPPROTO_UDP : IPPROTO_TCP;
	int i = iopt_index(h, level, name, 0);
	if (i < 0)
		return i;
	return h->iopt_set & (1u << i) ? h->iopt[i] : iopts[i].def;
}

int64_t sbx_inet_setopt(struct sbx_handle *h, uint64_t level, uint64_t name, uint64_t v)
{
	int i = iopt_index(h, level, name, 1);
	if (i < 0)
		return i;
	if (iopts[i].min == B)
		v = v != 0;
	else if (v < (uint64_t)iopts[i].min || v > (uint64_t)iopts[i].max)
		return -EINVAL;
	h->iopt[i] = (int32_t)v;
	h->iopt_set |= 1u << i;
	return 0;
}
