/* Local sockets. socketpair(AF_UNIX): a connected pair of host sockets behind two handles, as
 * Python's asyncio (its self-pipe), multiprocessing's duplex pipes and libuv's child stdio use
 * them. socket(AF_UNIX) (1.19): a host socket of its own, which binds to a path on a writable
 * mount or to an abstract name, listens, accepts and connects, as multiprocessing's managers
 * and forkserver, asyncio's and Go's unix servers and test suites' local servers use them.
 * Their bytes move through READV/WRITEV (send and recv flags in the request's offset,
 * sbx_calls.h); SOCKOP answers the rest. No socket reaches the network or the host's own
 * local services: socket() of another family stays refused (guest-abi/kernel/net.c, and the
 * monitor's seccomp filter allows AF_UNIX only); CONNECT reaches by path only the socket files
 * this sandbox bound, and its abstract names live under a prefix of its own in the host's
 * namespace, so that neither a host service's socket in a mount (a Docker socket under a
 * read-only /var) nor a host abstract name (X11's, D-Bus's) is reachable. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
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
	int64_t r = sbx_handle_add_pair(vm, p, SBX_O_SOCKET, (s->u.a[0] & SOCK_CLOEXEC) != 0, 1);
	if (r >= 0) /* SO_PEERCRED: both ends name their maker, as on Linux */
		vm->proc.files->fds[(uint32_t)r].peer_pid =
		    vm->proc.files->fds[(uint64_t)r >> 32].peer_pid = vm->proc.pid;
	return r;
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

/* SO_RCVTIMEO or SO_SNDTIMEO by any of their names: the host's name for it, else 0. A
 * timeout is carried in microseconds both ways. */
static int timeout_opt(uint64_t name)
{
	return name == SO_RCVTIMEO_OLD || name == SO_RCVTIMEO_NEW   ? SO_RCVTIMEO_OLD
	       : name == SO_SNDTIMEO_OLD || name == SO_SNDTIMEO_NEW ? SO_SNDTIMEO_OLD
								    : 0;
}

/* Options Linux takes on a local socket and that change nothing there (servers set them
 * whatever the family: multiprocessing's listener, asyncio's): accepted, and read back. */
static int inert_opt(uint64_t name)
{
	return name == SO_REUSEADDR || name == SO_REUSEPORT || name == SO_KEEPALIVE ||
	       name == SO_BROADCAST || name == SO_OOBINLINE || name == SO_DONTROUTE;
}

int64_t sbx_hc_socket(struct sbx_vm *vm, const struct sbx_slot *s)
{
	/* The family above the type (1.30): 0 (AF_UNIX, as before), AF_INET or AF_INET6. */
	uint64_t family = s->u.a[0] >> 32;
	uint64_t type = (uint32_t)s->u.a[0] & ~(uint64_t)(SOCK_NONBLOCK | SOCK_CLOEXEC);
	int inet = family == AF_INET || family == AF_INET6;
	if ((family != 0 && family != AF_UNIX && !inet) ||
	    (type != SOCK_STREAM && type != SOCK_DGRAM && type != SOCK_SEQPACKET))
		return -EINVAL;
	if (inet && type == SOCK_SEQPACKET)
		return -ESOCKTNOSUPPORT;
	int fd = socket(AF_UNIX, (int)type | SOCK_CLOEXEC | (int)(s->u.a[0] & SOCK_NONBLOCK), 0);
	if (fd < 0)
		return -errno;
	/* A datagram's sender is told only if it is the sandbox's own: the host's abstract
	 * names are anyone's, so every datagram socket takes its senders' credentials (the
	 * host's SO_PASSCRED; the program's own setting of it is kept apart). */
	if (type == SOCK_DGRAM &&
	    setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &(int){1}, sizeof(int)) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	int64_t n = sbx_handle_add(vm, fd, SBX_O_USOCK, (s->u.a[0] & SOCK_CLOEXEC) != 0, 1);
	if (n >= 0 && inet)
		vm->proc.files->fds[n].family = (int)family;
	return n;
}

struct sbx_socks *sbx_socks_of(struct sbx_vm *vm)
{
	return vm->limits->tree ? &vm->limits->tree->socks : &vm->limits->socks;
}

void sbx_socks_init(struct sbx_socks *k)
{
	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->lock, NULL);
}

void sbx_socks_free(struct sbx_socks *k)
{
	sbx_scm_registry_free(k);
	free(k->files);
	free(k->listeners);
	pthread_mutex_destroy(&k->lock);
	memset(k, 0, sizeof(*k));
}

/* The sandbox's prefix, made once: "sbx-" and 16 random hex digits. Lock held. */
static const char *prefix(struct sbx_socks *k)
{
	if (!k->prefix[0]) {
		uint8_t r[8] = {0};
		if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
			uint64_t t = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)k;
			memcpy(r, &t, sizeof(r));
		}
		int n = snprintf(k->prefix, sizeof(k->prefix), "sbx-");
		for (size_t i = 0; i < sizeof(r); i++)
			n += snprintf(k->prefix + n, sizeof(k->prefix) - (size_t)n, "%02x", r[i]);
	}
	return k->prefix;
}

/* A host abstract address: the prefix, a kind ('@' the program's abstract name, '#' the id of
 * a socket file), then the name's bytes. */
int sbx_sock_abstract(struct sbx_socks *k, char kind, const char *name, size_t len,
		      struct sockaddr_un *u, socklen_t *ulen)
{
	pthread_mutex_lock(&k->lock);
	const char *p = prefix(k);
	size_t plen = strlen(p);
	memset(u, 0, sizeof(*u));
	u->sun_family = AF_UNIX;
	int fits = 2 + plen + len <= sizeof(u->sun_path);
	if (fits) {
		memcpy(u->sun_path + 1, p, plen);
		u->sun_path[1 + plen] = kind;
		memcpy(u->sun_path + 2 + plen, name, len);
		*ulen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 2 + plen + len);
	}
	pthread_mutex_unlock(&k->lock);
	return fits ? 0 : -EINVAL;
}

/* A socket file's host address: the id its bind was given, found by its device and inode (the
 * newest bind of that file wins, as the newest socket bound to a path does on Linux). */
static int file_addr(struct sbx_socks *k, uint64_t dev, uint64_t ino, struct sockaddr_un *u,
		     socklen_t *ulen)
{
	uint64_t id = 0;
	pthread_mutex_lock(&k->lock);
	for (unsigned i = k->n; i-- > 0 && !id;)
		if (k->files[i].dev == dev && k->files[i].ino == ino)
			id = k->files[i].id;
	pthread_mutex_unlock(&k->lock);
	if (!id)
		return -ENOENT; /* not one of the sandbox's */
	char name[24];
	int n = snprintf(name, sizeof(name), "%llx", (unsigned long long)id);
	return sbx_sock_abstract(k, '#', name, (size_t)n, u, ulen);
}

struct bind_ctx {
	struct sbx_socks *k;
	int sock;
	const struct sbx_sun *sun;
	uint32_t pid;
};

/* sbx_path_bind's step once the socket file is made: the socket bound to the file's id. */
static int bind_file(void *arg, uint64_t dev, uint64_t ino)
{
	struct bind_ctx *c = arg;
	struct sbx_socks *k = c->k;
	pthread_mutex_lock(&k->lock);
	unsigned i = 0;
	while (i < k->n && (k->files[i].dev != dev || k->files[i].ino != ino))
		i++;
	int r = 0;
	if (i == k->n && k->n == k->cap) {
		unsigned cap = k->cap ? 2 * k->cap : 16;
		void *p = cap <= (1u << 16) ? realloc(k->files, cap * sizeof(*k->files)) : NULL;
		if (!p)
			r = -ENOBUFS;
		else {
			k->files = p;
			k->cap = cap;
		}
	}
	uint64_t id = ++k->next_id;
	if (r == 0) {
		k->files[i] = (struct sbx_sockfile){dev, ino, id, *c->sun, c->pid};
		k->n += i == k->n;
	}
	pthread_mutex_unlock(&k->lock);
	if (r < 0)
		return r;
	char name[24];
	struct sockaddr_un u;
	socklen_t ul;
	int n = snprintf(name, sizeof(name), "%llx", (unsigned long long)id);
	if ((r = sbx_sock_abstract(k, '#', name, (size_t)n, &u, &ul)) < 0)
		return r;
	return bind(c->sock, (struct sockaddr *)&u, ul) < 0 ? -errno : 0;
}

int sbx_sock_ours(int fd)
{
	struct ucred c;
	socklen_t cl = sizeof(c);
	return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &cl) == 0 && c.pid == getpid();
}

static void guest_name_of(struct sbx_socks *k, const struct sockaddr_un *u, uint32_t ul,
			  struct sbx_sun *g, uint32_t *pid);

/* SO_PEERCRED's listeners: the process that listens on each host address (the newest). */
#define SBX_LISTENERS_MAX 4096
static void listening(struct sbx_socks *k, int fd, uint32_t pid)
{
	struct sockaddr_un u;
	socklen_t ul = sizeof(u);
	if (getsockname(fd, (struct sockaddr *)&u, &ul) < 0)
		return;
	pthread_mutex_lock(&k->lock);
	unsigned i = 0;
	while (i < k->nlisteners &&
	       (k->listeners[i].ul != ul || memcmp(&k->listeners[i].u, &u, ul) != 0))
		i++;
	if (i == k->nlisteners && i == SBX_LISTENERS_MAX)
		i = 0; /* full: the oldest slot goes */
	if (!k->listeners)
		k->listeners = calloc(SBX_LISTENERS_MAX, sizeof(*k->listeners));
	if (k->listeners) {
		k->listeners[i].u = u;
		k->listeners[i].ul = ul;
		k->listeners[i].pid = pid;
		if (i == k->nlisteners)
			k->nlisteners++;
	}
	pthread_mutex_unlock(&k->lock);
}

static uint32_t listener_pid(struct sbx_socks *k, const struct sockaddr_un *u, socklen_t ul)
{
	uint32_t pid = 0;
	pthread_mutex_lock(&k->lock);
	for (unsigned i = 0; i < k->nlisteners && !pid; i++)
		if (k->listeners[i].ul == ul && memcmp(&k->listeners[i].u, u, ul) == 0)
			pid = k->listeners[i].pid;
	pthread_mutex_unlock(&k->lock);
	return pid;
}

/* An unbound socket about to connect: bound on the host to '!' and the pid (and a random
 * part), which the accepting side reads back. A failure leaves it unbound (no pid then). */
static void bind_connector(struct sbx_socks *k, int fd, uint32_t pid)
{
	struct sockaddr_un u;
	socklen_t ul = sizeof(u);
	if (getsockname(fd, (struct sockaddr *)&u, &ul) == 0 && ul > sizeof(sa_family_t))
		return; /* bound already (a reconnect of a datagram socket) */
	uint32_t x = 0;
	if (getrandom(&x, sizeof(x), 0) != (ssize_t)sizeof(x))
		x = (uint32_t)fd;
	char name[32];
	int n = snprintf(name, sizeof(name), "%u.%08x", pid, x);
	if (sbx_sock_abstract(k, '!', name, (size_t)n, &u, &ul) == 0)
		(void)!bind(fd, (struct sockaddr *)&u, ul);
}

/* The guest's struct sockaddr_un at gpa (len bytes): sun_path's bytes in g. A path ends at
 * its first NUL, as Linux's unix_mkname takes it. */
static int guest_sun(struct sbx_vm *vm, uint64_t gpa, uint64_t len, struct sbx_sun *g)
{
	struct sockaddr_un u;
	if (len < sizeof(sa_family_t) || len > sizeof(u))
		return -EINVAL;
	memset(&u, 0, sizeof(u));
	if (sbx_copy_from_guest(vm, &u, gpa, len) < 0)
		return -EFAULT;
	if (u.sun_family != AF_UNIX)
		return -EINVAL;
	g->len = (uint32_t)(len - sizeof(sa_family_t));
	memcpy(g->path, u.sun_path, g->len);
	if (g->len && g->path[0])
		g->len = (uint32_t)strnlen(g->path, g->len);
	return 0;
}

/* A path's sbx_path, its bytes at their place in the guest's copy (the kernel's buffer). */
static struct sbx_path sun_path_arg(uint64_t gpa, const struct sbx_sun *g)
{
	return (struct sbx_path){.dirfd = SBX_AT_FDCWD,
				 .path = gpa + offsetof(struct sockaddr_un, sun_path),
				 .path_len = g->len};
}

static int64_t sock_bind(struct sbx_vm *vm, struct sbx_handle *h, uint64_t gpa, uint64_t len)
{
	struct sbx_sun g;
	int r = guest_sun(vm, gpa, len, &g);
	if (r < 0)
		return r;
	struct sbx_socks *k = sbx_socks_of(vm);
	if (g.len == 0) {
		/* Autobind: an abstract name of five hex digits, as Linux picks. */
		uint32_t x = 0;
		if (getrandom(&x, sizeof(x), 0) != (ssize_t)sizeof(x))
			x = (uint32_t)h->fd;
		g.path[0] = 0;
		g.len = 1 + (uint32_t)snprintf(g.path + 1, sizeof(g.path) - 1, "%05x", x & 0xfffff);
	}
	if (g.path[0] == 0) {
		struct sockaddr_un u;
		socklen_t ul;
		if ((r = sbx_sock_abstract(k, '@', g.path + 1, g.len - 1, &u, &ul)) < 0)
			return r;
		if (bind(h->fd, (struct sockaddr *)&u, ul) < 0)
			return -errno;
	} else {
		struct sbx_path a = sun_path_arg(gpa, &g);
		struct bind_ctx c = {k, h->fd, &g, vm->proc.pid};
		if ((r = sbx_path_bind(vm, &a, bind_file, &c)) < 0)
			return r;
	}
	free(h->sun_local); /* none: the host refuses a second bind */
	h->sun_local = sbx_sun_copy(&g);
	return h->sun_local ? 0 : -ENOMEM;
}

/* The host address a connect goes to, or -errno: an abstract name under the prefix, or the id
 * of the socket file a path names, which a bind in this sandbox made. The host's socket files
 * are never connected to: one the sandbox did not make is EACCES. */
static int connect_addr(struct sbx_vm *vm, uint64_t gpa, const struct sbx_sun *g,
			struct sockaddr_un *u, socklen_t *ul)
{
	if (g->len == 0)
		return -EINVAL;
	if (g->path[0] == 0)
		return sbx_sock_abstract(sbx_socks_of(vm), '@', g->path + 1, g->len - 1, u, ul);
	struct sbx_path a = sun_path_arg(gpa, g);
	int fd = sbx_path_opath(vm, &a, 1);
	if (fd < 0)
		return fd == -EACCES ? -ECONNREFUSED : fd;
	struct stat st;
	int r = fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode) ? -ECONNREFUSED : 0;
	close(fd);
	if (r == 0)
		r = file_addr(sbx_socks_of(vm), (uint64_t)st.st_dev, (uint64_t)st.st_ino, u, ul);
	if (r == -ENOENT) {
		sbx_log(vm, 1, "connect to %.*s refused: a socket file this sandbox did not make",
			(int)g->len, g->path);
		r = -EACCES;
	}
	return r;
}

/* The guest's address at gpa (len bytes) and the host address it stands for: CONNECT's and
 * SENDTO's destination. */
static int dest_addr(struct sbx_vm *vm, uint64_t gpa, uint64_t len, struct sbx_sun *g,
		     struct sockaddr_un *u, socklen_t *ul)
{
	int r = guest_sun(vm, gpa, len, g);
	return r < 0 ? r : connect_addr(vm, gpa, g, u, ul);
}

/* Is h still the socket whose duplicate dfd is (another thread may have closed it, or put
 * another in its place, while the call waited without ring_lock)? */
static struct sbx_handle *same_socket(struct sbx_vm *vm, int64_t num, int dfd)
{
	struct sbx_handle *h = sbx_fd_get(vm, num);
	struct stat a, b;
	if (!h || !sbx_is_socket(h) || dfd < 0 || fstat(h->fd, &a) < 0 || fstat(dfd, &b) < 0 ||
	    a.st_ino != b.st_ino || a.st_dev != b.st_dev)
		return NULL;
	return h;
}

static int64_t sock_connect(struct sbx_vm *vm, int64_t num, uint64_t gpa, uint64_t len)
{
	struct sbx_handle *c = sbx_fd_get(vm, num);
	int inet = sbx_is_inet(c);
	struct sbx_sun g;
	union sbx_inaddr ia, local;
	struct sockaddr_un u;
	socklen_t ul;
	int r = inet ? sbx_inet_dest(vm, c, gpa, len, "connect to", &ia, &u, &ul)
		     : dest_addr(vm, gpa, len, &g, &u, &ul);
	if (r < 0)
		return r;
	if (inet && u.sun_family == AF_UNSPEC) { /* a datagram socket's disconnect */
		if (connect(c->fd, (struct sockaddr *)&u, ul) < 0)
			return -errno;
		free(c->sun_peer);
		c->sun_peer = NULL;
		return 0;
	}
	/* A full backlog waits: on a duplicate, without ring_lock, as a read does. */
	int dfd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
	if (dfd < 0)
		return -errno;
	/* An unbound socket connects from a host name that says which process connected, for
	 * the accepting side's SO_PEERCRED (its own name stays none, as on Linux); one of the
	 * loopback's from an ephemeral port, which its peer is told. */
	int autobound = 0;
	if (!c->sun_local && inet) {
		if ((r = sbx_inet_autobind(vm, c, dfd, &ia, &local)) < 0) {
			close(dfd);
			return r;
		}
		autobound = 1;
	} else if (!c->sun_local) {
		bind_connector(sbx_socks_of(vm), dfd, vm->proc.pid);
	}
	uint32_t listener = listener_pid(sbx_socks_of(vm), &u, ul);
	int released = sbx_ring_release(vm);
	r = connect(dfd, (struct sockaddr *)&u, ul);
	int e = errno;
	sbx_ring_reacquire(vm, released);
	/* The host's abstract names are anyone's: a listener that is not the monitor's own (a
	 * host process that took a name under the sandbox's prefix) is none of the sandbox's. A
	 * datagram socket's connect has no listener to ask (the host records no peer). */
	int type = 0;
	socklen_t tl = sizeof(type);
	if (r == 0 &&
	    (getsockopt(dfd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_DGRAM) &&
	    !sbx_sock_ours(dfd)) {
		if (inet)
			sbx_log(vm, 1,
				"connect to port %u refused: its listener is outside the sandbox",
				sbx_inet_port(&ia));
		else
			sbx_log(vm, 1,
				"connect to %.*s refused: its listener is outside the sandbox",
				(int)g.len, g.path[0] ? g.path : g.path + 1);
		shutdown(dfd, SHUT_RDWR);
		r = -1;
		e = ECONNREFUSED;
	}
	struct sbx_handle *h = r == 0 ? same_socket(vm, num, dfd) : NULL;
	close(dfd);
	if (r < 0)
		return -e;
	if (h && h->obj == SBX_O_USOCK) {
		free(h->sun_peer);
		h->sun_peer = inet ? sbx_inet_sun(&ia) : sbx_sun_copy(&g);
		h->peer_pid = inet ? 0 : listener;
		if (autobound && !h->sun_local)
			h->sun_local = sbx_inet_sun(&local);
	}
	return 0;
}

static int64_t sock_accept(struct sbx_vm *vm, int64_t num, uint64_t flags)
{
	if (flags & ~(uint64_t)(SOCK_NONBLOCK | SOCK_CLOEXEC))
		return -EINVAL;
	struct sbx_handle *lh = sbx_fd_get(vm, num);
	int family = lh->family;
	int dfd = fcntl(lh->fd, F_DUPFD_CLOEXEC, 0);
	if (dfd < 0)
		return -errno;
	int released = sbx_ring_release(vm);
	int fd, e, fl = fcntl(dfd, F_GETFL);
	/* A connection from outside the sandbox (see sock_connect) is dropped, and the accept
	 * waits on (or says EAGAIN) as if it had not come. */
	for (;;) {
		fd = accept4(dfd, NULL, NULL, SOCK_CLOEXEC | (int)(flags & SOCK_NONBLOCK));
		e = errno;
		if (fd < 0 || sbx_sock_ours(fd))
			break;
		close(fd);
		fd = -1;
		e = EAGAIN;
		if (fl < 0 || (fl & O_NONBLOCK))
			break;
	}
	sbx_ring_reacquire(vm, released);
	struct sbx_handle *l = same_socket(vm, num, dfd);
	close(dfd);
	if (fd < 0)
		return -e;
	int inet = family == AF_INET || family == AF_INET6;
	/* SO_PEERCRED: the process whose connect this is, by the host name it connected from;
	 * on the loopback, the client's address, by its port. */
	struct sockaddr_un pu;
	socklen_t pl = sizeof(pu);
	struct sbx_sun none, *peer_addr = NULL, *local = NULL;
	uint32_t peer = 0;
	if (getpeername(fd, (struct sockaddr *)&pu, &pl) < 0)
		pl = 0;
	if (inet) {
		union sbx_inaddr pa;
		sbx_inet_from_host(vm, family, &pu, pl, &pa);
		peer_addr = sbx_inet_sun(&pa);
		local = l && l->sun_local ? sbx_inet_accepted_local(l, &pa) : NULL;
	} else {
		if (pl)
			guest_name_of(sbx_socks_of(vm), &pu, pl, &none, &peer);
		local = l && l->sun_local ? sbx_sun_copy(l->sun_local) : NULL;
	}
	int64_t n = sbx_handle_add(vm, fd, SBX_O_USOCK, (flags & SOCK_CLOEXEC) != 0, 1);
	if (n >= 0) {
		struct sbx_handle *a = &vm->proc.files->fds[n];
		a->sun_local = local;
		a->sun_peer = peer_addr;
		a->peer_pid = peer;
		a->family = family;
		if (l && inet) { /* the listener's options, as Linux's clone of it has them */
			a->iopt_set = l->iopt_set;
			memcpy(a->iopt, l->iopt, sizeof(a->iopt));
		}
	} else {
		free(local);
		free(peer_addr);
	}
	return n;
}

/* The address NAME gives: sa_family, then the path's bytes (and a path's NUL, as Linux). */
static int64_t sock_name(struct sbx_vm *vm, const struct sbx_handle *h, uint64_t which,
			 uint64_t gpa)
{
	if (which > 1)
		return -EINVAL;
	const struct sbx_sun *g = which ? h->sun_peer : h->sun_local;
	if (sbx_is_inet(h)) {
		union sbx_inaddr a;
		if (which && !g)
			return -ENOTCONN;
		size_t n = sbx_inet_name(h, g, &a);
		return sbx_copy_to_guest(vm, gpa, &a, n) < 0 ? -EFAULT : (int64_t)n;
	}
	if (which && !g) {
		/* A pair's end always has its peer; a socket of its own only once connected. */
		int v;
		socklen_t vl = sizeof(v);
		if (h->obj == SBX_O_USOCK &&
		    (getsockopt(h->fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl) < 0 || v ||
		     getpeername(h->fd, NULL, &(socklen_t){0}) < 0))
			return -ENOTCONN;
	}
	struct sockaddr_un u = {.sun_family = AF_UNIX};
	size_t n = sizeof(sa_family_t);
	if (g && g->len) {
		memcpy(u.sun_path, g->path, g->len);
		n += g->len + (g->path[0] && g->len < sizeof(u.sun_path));
	}
	return sbx_copy_to_guest(vm, gpa, &u, n) < 0 ? -EFAULT : (int64_t)n;
}

/* ---- Addresses of datagrams (1.20) ----------------------------------------------------- */

/* One vCPU's staged address: a send's destination (host form), or a receive's sender
 * (the program's form, in u.sun_path with len). */
struct sbx_sockname {
	struct sbx_sockname *next;
	int vcpu, recv;
	struct sockaddr_un u;
	uint32_t ul;
};

static struct sbx_sockname *name_take(struct sbx_files *f, int vcpu, int recv)
{
	for (struct sbx_sockname **p = &f->names; *p; p = &(*p)->next)
		if ((*p)->vcpu == vcpu && (*p)->recv == recv) {
			struct sbx_sockname *n = *p;
			*p = n->next;
			return n;
		}
	return NULL;
}

static int name_stage(struct sbx_files *f, int recv, const struct sockaddr_un *u, uint32_t ul);

void sbx_sockname_again(struct sbx_vm *vm, const struct sockaddr_un *u, uint32_t ul)
{
	name_stage(vm->proc.files, 0, u, ul);
}

static int name_stage(struct sbx_files *f, int recv, const struct sockaddr_un *u, uint32_t ul)
{
	int vcpu = sbx_thread_current();
	free(name_take(f, vcpu, recv));
	struct sbx_sockname *n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	*n = (struct sbx_sockname){f->names, vcpu, recv, *u, ul};
	f->names = n;
	return 0;
}

void sbx_sockname_free_all(struct sbx_files *f)
{
	while (f->names) {
		struct sbx_sockname *n = f->names;
		f->names = n->next;
		free(n);
	}
}

int sbx_sockname_take(struct sbx_vm *vm, struct sockaddr_un *u, uint32_t *ul)
{
	struct sbx_sockname *n = name_take(vm->proc.files, sbx_thread_current(), 0);
	if (!n)
		return -EINVAL;
	*u = n->u;
	*ul = n->ul;
	free(n);
	return 0;
}

/* The program's name for a host address of this sandbox: an abstract name, or the path of
 * the socket file an id stands for; anything else (unbound, a connect's own '!' name) is
 * unnamed (len 0). The pid of the process that bound it, or that connected ('!'), if known. */
int sbx_sock_abstract_kind(struct sbx_socks *k, const struct sockaddr_un *u, uint32_t ul,
			   char *kind, char *name, size_t cap, size_t *n)
{
	size_t len = ul > offsetof(struct sockaddr_un, sun_path)
			 ? ul - offsetof(struct sockaddr_un, sun_path)
			 : 0;
	if (len > sizeof(u->sun_path))
		len = sizeof(u->sun_path);
	pthread_mutex_lock(&k->lock);
	const char *p = prefix(k);
	size_t plen = strlen(p);
	int ours = len >= 2 + plen && u->sun_path[0] == 0 && memcmp(u->sun_path + 1, p, plen) == 0;
	pthread_mutex_unlock(&k->lock);
	if (!ours || cap == 0)
		return -ENOENT;
	*kind = u->sun_path[1 + plen];
	*n = len - 2 - plen < cap - 1 ? len - 2 - plen : cap - 1;
	memcpy(name, u->sun_path + 2 + plen, *n);
	name[*n] = 0;
	return 0;
}

static void guest_name_of(struct sbx_socks *k, const struct sockaddr_un *u, uint32_t ul,
			  struct sbx_sun *g, uint32_t *pid)
{
	g->len = 0;
	*pid = 0;
	char kind, name[sizeof(u->sun_path)];
	size_t nl;
	if (sbx_sock_abstract_kind(k, u, ul, &kind, name, sizeof(name), &nl) < 0)
		return;
	if (kind == '@') {
		g->path[0] = 0;
		memcpy(g->path + 1, name, nl < sizeof(g->path) - 1 ? nl : sizeof(g->path) - 1);
		g->len = (uint32_t)(1 + (nl < sizeof(g->path) - 1 ? nl : sizeof(g->path) - 1));
	} else if (kind == '#') {
		uint64_t id = strtoull(name, NULL, 16);
		pthread_mutex_lock(&k->lock);
		for (unsigned i = k->n; i-- > 0;)
			if (k->files[i].id == id) {
				*g = k->files[i].sun;
				*pid = k->files[i].pid;
				break;
			}
		pthread_mutex_unlock(&k->lock);
	} else if (kind == '!') {
		*pid = (uint32_t)strtoul(name, NULL, 10);
	}
}

void sbx_sockname_received(struct sbx_vm *vm, int family, int type, const struct sockaddr_un *u,
			   uint32_t ul, int ours)
{
	if (family == AF_INET || family == AF_INET6) {
		/* The sender's port, as the loopback's address in the receiver's family; TCP
		 * tells none (length 0). */
		union sbx_inaddr a;
		struct sockaddr_un g;
		sbx_inet_from_host(vm, family, u, ours ? ul : 0, &a);
		size_t n = type == SOCK_STREAM ? 0
			   : family == AF_INET ? sizeof(a.v4)
					       : sizeof(a.v6);
		memcpy(&g, &a, n);
		name_stage(vm->proc.files, 1, &g, (uint32_t)n);
		return;
	}
	struct sockaddr_un g = {.sun_family = AF_UNIX};
	struct sbx_sun sun;
	uint32_t pid;
	guest_name_of(sbx_socks_of(vm), u, ul, &sun, &pid);
	/* A sender outside the sandbox may have bound a name under its prefix (the host's
	 * abstract names are anyone's): it is told as unnamed. */
	if (!ours)
		sun.len = 0;
	memcpy(g.sun_path, sun.path, sun.len);
	/* Linux's length: the family and the path's bytes and NUL, an abstract name's bytes. */
	uint32_t gl = sun.len ? (uint32_t)(sizeof(sa_family_t) + sun.len +
					   (sun.path[0] && sun.len < sizeof(g.sun_path)))
			      : 0;
	name_stage(vm->proc.files, 1, &g, gl);
}

/* sendto/sendmsg with an address: Linux's answer for a stream socket, none for a seqpacket
 * one (it ignores the address), else the destination staged for the WRITEV that follows. */
static int64_t sock_sendto(struct sbx_vm *vm, struct sbx_handle *h, uint64_t gpa, uint64_t len)
{
	int type = 0;
	socklen_t tl = sizeof(type);
	if (getsockopt(h->fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0)
		return -errno;
	if (type == SOCK_STREAM && sbx_is_inet(h))
		return 1; /* TCP ignores it */
	if (type == SOCK_STREAM)
		return getpeername(h->fd, NULL, &(socklen_t){0}) == 0 ? -EISCONN : -EOPNOTSUPP;
	if (type == SOCK_SEQPACKET)
		return 1;
	struct sbx_sun g;
	struct sockaddr_un u;
	socklen_t ul;
	if (sbx_is_inet(h)) {
		union sbx_inaddr a, local;
		int r = sbx_inet_dest(vm, h, gpa, len, "send to", &a, &u, &ul);
		if (r < 0)
			return r;
		if (u.sun_family == AF_UNSPEC)
			return -EAFNOSUPPORT;
		/* An unbound sender takes a port first, which its receiver answers at. */
		if (!h->sun_local) {
			if ((r = sbx_inet_autobind(vm, h, h->fd, &a, &local)) < 0)
				return r;
			if (!(h->sun_local = sbx_inet_sun(&local)))
				return -ENOMEM;
		}
		return name_stage(vm->proc.files, 0, &u, ul);
	}
	int r = dest_addr(vm, gpa, len, &g, &u, &ul);
	return r < 0 ? r : name_stage(vm->proc.files, 0, &u, ul);
}

static int64_t sock_name_take(struct sbx_vm *vm, uint64_t gpa)
{
	struct sbx_sockname *n = name_take(vm->proc.files, sbx_thread_current(), 1);
	if (!n)
		return 0;
	int64_t r =
	    n->ul && sbx_copy_to_guest(vm, gpa, &n->u, n->ul) < 0 ? -EFAULT : (int64_t)n->ul;
	free(n);
	return r;
}

/* SO_PEERCRED: the peer's pid as it was recorded (a pair's maker, the listener, the client
 * whose connect was accepted; a listening socket's own), the sandbox's user and group; for a
 * socket with no peer, Linux's pid 0 and ids of -1. */
static int64_t sock_peercred(struct sbx_vm *vm, const struct sbx_handle *h, uint64_t gpa)
{
	struct ucred c = {.pid = (pid_t)h->peer_pid, .uid = vm->host.uid, .gid = vm->host.gid};
	if (!h->peer_pid)
		c.uid = c.gid = (uid_t)-1;
	return sbx_copy_to_guest(vm, gpa, &c, sizeof(c)) < 0 ? -EFAULT : 0;
}

int64_t sbx_hc_sockop(struct sbx_vm *vm, const struct sbx_slot *s)
{
	uint64_t op = s->u.a[0], a2 = s->u.a[2], a3 = s->u.a[3];
	struct sbx_handle *h = sbx_fd_get(vm, (int64_t)s->u.a[1]);
	if (!h)
		return -EBADF;
	if (!sbx_is_socket(h))
		return -ENOTSOCK;
	int v;
	socklen_t vl = sizeof(v);
	switch (op) {
	case SBX_SOCKOP_CHECK:
		return 0;
	case SBX_SOCKOP_BIND:
		return h->obj != SBX_O_USOCK ? -EINVAL
		       : sbx_is_inet(h)	     ? sbx_inet_bind(vm, h, a2, a3)
					     : sock_bind(vm, h, a2, a3);
	case SBX_SOCKOP_CONNECT:
		return h->obj == SBX_O_USOCK ? sock_connect(vm, (int64_t)s->u.a[1], a2, a3)
					     : -EISCONN;
	case SBX_SOCKOP_LISTEN:
		if (h->obj != SBX_O_USOCK)
			return -EINVAL;
		if (sbx_is_inet(h)) {
			int r = sbx_inet_listen(vm, h);
			if (r < 0)
				return r;
			/* TCP's full accept queue holds a connect back, where a local socket's
			 * says EAGAIN to a non-blocking one: the queue is made as long as the
			 * host allows. */
			a2 = 4096;
		}
		if (listen(h->fd, a2 > 4096 ? 4096 : (int)a2) < 0)
			return -errno;
		listening(sbx_socks_of(vm), h->fd, vm->proc.pid);
		if (!sbx_is_inet(h))
			h->peer_pid = vm->proc.pid; /* Linux gives a listener its own credentials */
		return 0;
	case SBX_SOCKOP_ACCEPT:
		return h->obj == SBX_O_USOCK ? sock_accept(vm, (int64_t)s->u.a[1], a2) : -EINVAL;
	case SBX_SOCKOP_NAME:
		return sock_name(vm, h, a2, a3);
	case SBX_SOCKOP_SCM_SEND:
		return sbx_scm_send(vm, a2, a3);
	case SBX_SOCKOP_SCM_TAKE:
		return sbx_scm_take(vm, a2, a3);
	case SBX_SOCKOP_SENDTO:
		return sock_sendto(vm, h, a2, a3);
	case SBX_SOCKOP_NAME_TAKE:
		return sock_name_take(vm, a2);
	case SBX_SOCKOP_PEERCRED:
		return sock_peercred(vm, h, a2);
	case SBX_SOCKOP_SHUTDOWN: {
		if (a2 > SHUT_RDWR)
			return -EINVAL;
		if (shutdown(h->fd, (int)a2) < 0)
			return -errno;
		/* SHUT_RD 0, SHUT_WR 1, SHUT_RDWR 2: as bits, on every handle of this end. */
		int bits = a2 == SHUT_RD ? SBX_SHUT_RD : a2 == SHUT_WR ? SBX_SHUT_WR : 3;
		struct sbx_handle *fds = vm->proc.files->fds;
		for (int i = 0; i < SBX_MAX_FDS; i++)
			if (sbx_is_socket(&fds[i]) && fds[i].oid == h->oid && fds[i].end == h->end)
				fds[i].shut |= bits;
		return 0;
	}
	case SBX_SOCKOP_GETOPT:
		if (sbx_is_inet(h) && (a2 != SOL_SOCKET || a3 == SO_DOMAIN || a3 == SO_PROTOCOL))
			return sbx_inet_getopt(h, a2, a3);
		if (a2 == SOL_SOCKET && timeout_opt(a3)) {
			struct timeval tv;
			socklen_t tl = sizeof(tv);
			if (getsockopt(h->fd, SOL_SOCKET, timeout_opt(a3), &tv, &tl) < 0)
				return -errno;
			return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
		}
		if (a2 != SOL_SOCKET || !(readable_opt(a3) || inert_opt(a3)))
			return -ENOPROTOOPT;
		if (a3 == SO_PASSCRED)
			return h->passcred;
		if (getsockopt(h->fd, SOL_SOCKET, (int)a3, &v, &vl) < 0)
			return -errno;
		return v < 0 ? 0 : v;
	case SBX_SOCKOP_SETOPT:
		if (sbx_is_inet(h) && a2 != SOL_SOCKET)
			return sbx_inet_setopt(h, a2, a3, s->u.a[4]);
		if (a2 == SOL_SOCKET && timeout_opt(a3)) {
			/* Microseconds, at most a billion seconds (the guest kernel's cap). */
			uint64_t us = s->u.a[4] > 1000000000ull * 1000000 ? 1000000000ull * 1000000
									  : s->u.a[4];
			struct timeval tv = {.tv_sec = (time_t)(us / 1000000),
					     .tv_usec = (suseconds_t)(us % 1000000)};
			return setsockopt(h->fd, SOL_SOCKET, timeout_opt(a3), &tv, sizeof(tv)) < 0
				   ? -errno
				   : 0;
		}
		if (a2 != SOL_SOCKET || !(settable_opt(a3) || inert_opt(a3)))
			return -ENOPROTOOPT;
		if (s->u.a[4] > INT32_MAX)
			return -EINVAL;
		v = (int)s->u.a[4];
		if (a3 == SO_PASSCRED) { /* the program's: credentials are not carried to it */
			h->passcred = v != 0;
			return 0;
		}
		return setsockopt(h->fd, SOL_SOCKET, (int)a3, &v, sizeof(v)) < 0 ? -errno : 0;
	}
	return -EINVAL;
}
