/* Addresses and sockets (migrate.h): "tcp:HOST:PORT" and "unix:PATH" parsed, listened on,
 * accepted from and connected to, for the migration stream and the control socket alike; and
 * the wait for a socket until a deadline that every timeout in migrate/ comes down to. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "mig_internal.h"

#define PFX MIG_STREAM_PFX

/* ---- deadlines ------------------------------------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mig_deadline(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

int mig_wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int t = -1;
		if (deadline >= 0) {
			int64_t left = deadline - now_ms();
			t = left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
		}
		struct pollfd p = {.fd = fd, .events = events};
		int r = poll(&p, 1, t);
		if (r > 0)
			return 0; /* errors and hangups show in the following read or write */
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

/* ---- parsing --------------------------------------------------------------------------------- */

static bool host_name_ok(const char *h)
{
	for (const char *p = h; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_'))
			return false;
	return true;
}

static int parse_unix(const char *s, struct mig_addr *a, char *err, size_t errlen)
{
	const char *path = s + 5;
	size_t n = strlen(path);
	if (n == 0)
		return mig_fail(err, errlen, -EINVAL, "%s: empty socket path", s);
	if (n >= sizeof(a->path))
		return mig_fail(err, errlen, -ENAMETOOLONG,
				"%.40s...: socket path is %zu bytes, a unix socket address holds "
				"at most %zu",
				s, n, sizeof(a->path) - 1);
	a->family = AF_UNIX;
	memcpy(a->path, path, n + 1);
	return 0;
}

/* HOST of s = "tcp:HOST:PORT" (brackets around an IPv6 address dropped) into a->host; *port
 * gets where PORT starts. */
static int parse_host(const char *s, struct mig_addr *a, const char **port, bool *bracketed,
		      char *err, size_t errlen)
{
	const char *h = s + 4, *colon;
	*bracketed = h[0] == '[';
	if (*bracketed) {
		const char *close = strchr(h, ']');
		if (!close)
			return mig_fail(err, errlen, -EINVAL,
					"%.200s: missing ']' after the IPv6 address", s);
		if (close[1] != ':')
			return mig_fail(err, errlen, -EINVAL,
					"%.200s: expected ':PORT' after the IPv6 address", s);
		h++;
		colon = close + 1;
	} else if (!(colon = strrchr(h, ':'))) {
		return mig_fail(err, errlen, -EINVAL, "%.200s: missing port (tcp:HOST:PORT)", s);
	}
	size_t hlen = (size_t)(colon - h) - (*bracketed ? 1 : 0);
	if (!*bracketed && memchr(h, ':', hlen))
		return mig_fail(err, errlen, -EINVAL,
				"%.200s: an IPv6 address goes in brackets, e.g. tcp:[::1]:7000", s);
	if (hlen == 0)
		return mig_fail(
		    err, errlen, -EINVAL,
		    "%.200s: empty host (use 0.0.0.0 or [::] to listen on every address)", s);
	if (hlen >= sizeof(a->host))
		return mig_fail(err, errlen, -ENAMETOOLONG,
				"%.60s...: host name is %zu bytes, at most %zu", s, hlen,
				sizeof(a->host) - 1);
	memcpy(a->host, h, hlen);
	a->host[hlen] = 0;
	*port = colon + 1;
	return 0;
}

static int parse_port(const char *s, const char *ps, struct mig_addr *a, char *err, size_t errlen)
{
	if (!*ps)
		return mig_fail(err, errlen, -EINVAL, "%.200s: missing port (tcp:HOST:PORT)", s);
	unsigned long port = 0;
	for (const char *p = ps; *p; p++) {
		if (*p >= '0' && *p <= '9')
			port = port * 10 + (unsigned long)(*p - '0');
		if (*p < '0' || *p > '9' || port > 65535)
			return mig_fail(err, errlen, -EINVAL,
					"%.200s: port '%.20s' is not a number from 0 to 65535", s,
					ps);
	}
	a->port = (uint16_t)port;
	return 0;
}

/* What a->host is: an IPv6 literal (bracketed), an IPv4 literal, or a name to resolve later. */
static int host_family(const char *s, struct mig_addr *a, bool bracketed, char *err, size_t errlen)
{
	struct in6_addr a6;
	struct in_addr a4;
	if (bracketed) {
		/* getaddrinfo rather than inet_pton: it takes a scope (fe80::1%eth0). */
		struct addrinfo hints = {.ai_family = AF_INET6, .ai_flags = AI_NUMERICHOST}, *res;
		if ((strchr(a->host, '%') == NULL && inet_pton(AF_INET6, a->host, &a6) != 1) ||
		    getaddrinfo(a->host, NULL, &hints, &res) != 0)
			return mig_fail(err, errlen, -EINVAL, "%.200s: '%s' is not an IPv6 address",
					s, a->host);
		freeaddrinfo(res);
		a->family = AF_INET6;
	} else if (inet_pton(AF_INET, a->host, &a4) == 1) {
		a->family = AF_INET;
	} else if (host_name_ok(a->host)) {
		a->family = AF_UNSPEC; /* a name: getaddrinfo picks at connect or listen */
	} else {
		return mig_fail(err, errlen, -EINVAL,
				"%.200s: '%s' is neither an IPv4 address nor a host name", s,
				a->host);
	}
	return 0;
}

int mig_addr_parse(const char *s, struct mig_addr *a, char *err, size_t errlen)
{
	memset(a, 0, sizeof(*a));
	if (!s)
		return mig_fail(err, errlen, -EINVAL, "migration address: none given");
	if (strncmp(s, "unix:", 5) == 0)
		return parse_unix(s, a, err, errlen);
	if (strncmp(s, "tcp:", 4) != 0)
		return mig_fail(err, errlen, -EINVAL,
				"migration address '%.200s': expected tcp:HOST:PORT or unix:PATH",
				s);
	const char *port = NULL;
	bool bracketed = false;
	int r = parse_host(s, a, &port, &bracketed, err, errlen);
	if (r == 0)
		r = parse_port(s, port, a, err, errlen);
	if (r == 0)
		r = host_family(s, a, bracketed, err, errlen);
	return r;
}

/* ---- socket addresses ------------------------------------------------------------------------ */

/* The longest address addr_str writes, its NUL included: "tcp:[HOST]:65535" or "unix:PATH". */
#define ADDR_STR_MAX                                                                               \
	(sizeof("tcp:[]:65535") + sizeof(((struct mig_addr *)0)->host) +                           \
	 sizeof(((struct mig_addr *)0)->path))

/* The address as the user wrote it, for messages. */
static const char *addr_str(const struct mig_addr *a, char *buf, size_t len)
{
	if (a->family == AF_UNIX)
		snprintf(buf, len, "unix:%s", a->path);
	else if (a->family == AF_INET6)
		snprintf(buf, len, "tcp:[%s]:%u", a->host, a->port);
	else
		snprintf(buf, len, "tcp:%s:%u", a->host, a->port);
	return buf;
}

static int unix_sockaddr(const struct mig_addr *a, struct sockaddr_un *sun, char *err,
			 size_t errlen)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	size_t n = strnlen(a->path, sizeof(a->path));
	if (n == 0 || n >= sizeof(sun->sun_path))
		return mig_fail(err, errlen, -EINVAL, "unix socket path empty or too long");
	memcpy(sun->sun_path, a->path, n);
	return 0;
}

static int resolve(const struct mig_addr *a, bool passive, struct addrinfo **res, char *err,
		   size_t errlen)
{
	char name[ADDR_STR_MAX], port[8];
	struct addrinfo hints = {
	    .ai_family = a->family == AF_UNSPEC ? AF_UNSPEC : a->family,
	    .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0) |
			(a->family == AF_UNSPEC ? AI_ADDRCONFIG : AI_NUMERICHOST),
	};
	snprintf(port, sizeof(port), "%u", a->port);
	int r = getaddrinfo(a->host, port, &hints, res);
	if (r == EAI_SYSTEM)
		return mig_fail(err, errlen, errno ? -errno : -EIO, "%s: cannot resolve '%s': %s",
				addr_str(a, name, sizeof(name)), a->host, strerror(errno));
	if (r != 0)
		return mig_fail(err, errlen, -EHOSTUNREACH, "%s: cannot resolve '%s': %s",
				addr_str(a, name, sizeof(name)), a->host, gai_strerror(r));
	return 0;
}

void mig_socket_tune(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 ||
	    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
		return;
	/* The last small messages of a migration are on the critical path: no Nagle delay. */
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* ---- listen / accept ------------------------------------------------------------------------- */

/* A socket file left at the path by a dead listener is removed; a live listener's never is. */
static int unlink_stale(const struct mig_addr *a, const struct sockaddr_un *sun, const char *name,
			char *err, size_t errlen)
{
	struct stat st;
	if (lstat(a->path, &st) < 0)
		return 0;
	if (!S_ISSOCK(st.st_mode))
		return mig_fail(err, errlen, -EEXIST, "%s: exists and is not a socket", name);
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (probe >= 0) {
		int c = connect(probe, (const struct sockaddr *)sun, sizeof(*sun));
		int e = errno;
		close(probe);
		if (c == 0 || e == EAGAIN || e == EINPROGRESS)
			return mig_fail(err, errlen, -EADDRINUSE,
					"%s: another process is listening on it", name);
	}
	if (unlink(a->path) < 0 && errno != ENOENT)
		return mig_fail(err, errlen, -errno, "%s: removing the stale socket: %s", name,
				strerror(errno));
	return 0;
}

static int listen_unix(const struct mig_addr *a, char *err, size_t errlen)
{
	char name[ADDR_STR_MAX];
	struct sockaddr_un sun;
	addr_str(a, name, sizeof(name));
	int r = unix_sockaddr(a, &sun, err, errlen);
	if (r == 0)
		r = unlink_stale(a, &sun, name, err, errlen);
	if (r < 0)
		return r;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return mig_fail(err, errlen, -errno, "%s: socket: %s", name, strerror(errno));
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		r = -errno;
		close(fd);
		return mig_fail(err, errlen, r, "%s: bind: %s", name, strerror(-r));
	}
	/* Not umask: it is per process and other threads may be creating files. Until listen()
	 * nobody can connect, so tightening the mode now leaves no window. */
	if (chmod(a->path, 0600) < 0 || listen(fd, 4) < 0) {
		r = -errno;
		close(fd);
		unlink(a->path);
		return mig_fail(err, errlen, r, "%s: chmod/listen: %s", name, strerror(-r));
	}
	return fd;
}

int mig_listen(const struct mig_addr *a, char *err, size_t errlen)
{
	if (a->family == AF_UNIX)
		return listen_unix(a, err, errlen);

	char name[ADDR_STR_MAX];
	struct addrinfo *res;
	int r = resolve(a, true, &res, err, errlen);
	if (r < 0)
		return r;
	addr_str(a, name, sizeof(name));
	r = -EADDRNOTAVAIL;
	const char *what = "bind";
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			r = -errno;
			what = "socket";
			continue;
		}
		int one = 1;
		/* A restarted destination must not wait out TIME_WAIT of the last migration. */
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 4) == 0) {
			freeaddrinfo(res);
			return fd;
		}
		r = -errno;
		close(fd);
	}
	freeaddrinfo(res);
	return mig_fail(err, errlen, r, "%s: %s: %s", name, what, strerror(-r));
}

int mig_accept(int lfd, int timeout_ms, char *err, size_t errlen)
{
	int64_t deadline = mig_deadline(timeout_ms);
	for (;;) {
		int r = mig_wait_fd(lfd, POLLIN, deadline);
		if (r == -ETIMEDOUT)
			return mig_fail(err, errlen, r,
					PFX "timed out after %d ms waiting for a connection",
					timeout_ms);
		if (r < 0)
			return mig_fail(err, errlen, r, PFX "accept: poll: %s", strerror(-r));
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			mig_socket_tune(fd);
			return fd;
		}
		/* The listener may be non-blocking; a connection that vanished is not our error. */
		if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED || errno == EPROTO)
			continue;
		return mig_fail(err, errlen, -errno, PFX "accept: %s", strerror(errno));
	}
}

/* ---- connect --------------------------------------------------------------------------------- */

/* One non-blocking connect bounded by the deadline; the socket is blocking again on return. */
static int connect_one(int family, const struct sockaddr *sa, socklen_t salen, int64_t deadline,
		       const char **what)
{
	*what = "socket";
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	*what = "connect";
	int r = 0;
	if (connect(fd, sa, salen) < 0) {
		r = -errno;
		if (r == -EINPROGRESS || r == -EINTR) {
			r = mig_wait_fd(fd, POLLOUT, deadline);
			if (r == 0) {
				int e = 0;
				socklen_t len = sizeof(e);
				if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
					e = errno;
				r = -e;
			}
		}
	}
	if (r == 0) {
		int fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
			r = -errno;
	}
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/* Each address the name resolved to in turn, until one answers or the deadline passes. */
static int connect_any(const struct addrinfo *res, int64_t deadline, const char **what)
{
	int r = -EHOSTUNREACH;
	for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		r = connect_one(ai->ai_family, ai->ai_addr, ai->ai_addrlen, deadline, what);
		if (r >= 0 || r == -ETIMEDOUT)
			break;
	}
	return r;
}

int mig_connect(const struct mig_addr *a, int timeout_ms, char *err, size_t errlen)
{
	char name[ADDR_STR_MAX];
	const char *what = "connect";
	int64_t deadline = mig_deadline(timeout_ms);
	int r;
	addr_str(a, name, sizeof(name));
	if (a->family == AF_UNIX) {
		struct sockaddr_un sun;
		if ((r = unix_sockaddr(a, &sun, err, errlen)) < 0)
			return r;
		r = connect_one(AF_UNIX, (struct sockaddr *)&sun, sizeof(sun), deadline, &what);
	} else {
		struct addrinfo *res;
		if (a->port == 0)
			return mig_fail(err, errlen, -EINVAL, "%s: cannot connect to port 0", name);
		if ((r = resolve(a, false, &res, err, errlen)) < 0)
			return r;
		r = connect_any(res, deadline, &what);
		freeaddrinfo(res);
	}
	if (r == -ETIMEDOUT)
		return mig_fail(err, errlen, r, "%s: connect: timed out after %d ms", name,
				timeout_ms);
	if (r < 0)
		return mig_fail(err, errlen, r, "%s: %s: %s", name, what, strerror(-r));
	mig_socket_tune(r);
	return r;
}
