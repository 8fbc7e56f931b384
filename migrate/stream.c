/* The migration stream (migrate.h): addresses, connect/listen, a key file, and an authenticated,
 * encrypted message stream over one connected socket.
 *
 * Protocol, version 1 (docs/migration-stream.md has the long form):
 *   1. Both sides send a clear 48-byte hello at once: "SBXMIG", u16 version, u8 role (1 source,
 *      2 destination), u8 caps (bit 0: AES-256-GCM in hardware), 6 reserved bytes, 32 random
 *      bytes. Roles must differ, which also stops a hello reflected back at its sender.
 *   2. Both derive M = BLAKE2b(key = PSK, label || hello_source || hello_destination) and from M
 *      four subkeys (crypto_kdf): data and confirmation keys for each direction. The cipher is
 *      AES-256-GCM if both hellos say so, else XChaCha20-Poly1305; the caps are in M, so a
 *      downgrade changes every key.
 *   3. The source sends MAC(confirm_s2d, transcript); the destination checks it and only then
 *      sends its own (or 32 zero bytes that cannot verify, so the source fails the same way).
 *      An endpoint that did not prove the key never gets a MAC from the destination.
 *   4. Frames: u32 LE n (body length, <= MIG_MSG_MAX), then AEAD(type u32 LE || body) and its
 *      16-byte tag; the 4 length bytes are the additional data, the nonce is a per-direction
 *      message counter. Replay, reordering, dropping or altering a frame fails authentication.
 * Any failure poisons the stream: later calls repeat the first error. */
#include "mig_internal.h"
#include "migrate.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PFX "migration stream: "

#define HELLO_MAGIC "SBXMIG"
#define HELLO_BYTES 48
#define HELLO_NONCE_OFF 16
#define PROTO_VERSION 1
#define ROLE_SOURCE 1
#define ROLE_DEST 2
#define CAP_AES256GCM 0x1
#define CONFIRM_BYTES 32
#define TAG_BYTES 16
#define FRAME_HDR 4				   /* the clear length */
#define FRAME_OVERHEAD (FRAME_HDR + 4 + TAG_BYTES) /* length, type, tag */
#define KEY_FILE_MAX 4096
#define READ_AHEAD 4096 /* small frames arrive with one read */

_Static_assert(crypto_aead_aes256gcm_ABYTES == TAG_BYTES, "tag size");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_ABYTES == TAG_BYTES, "tag size");
_Static_assert(crypto_kdf_KEYBYTES == 32 && crypto_aead_aes256gcm_KEYBYTES == 32 &&
		   crypto_aead_xchacha20poly1305_ietf_KEYBYTES == 32,
	       "key sizes");

struct mig_stream {
	/* First: libsodium wants it 16-byte aligned, and the struct is allocated aligned. */
	crypto_aead_aes256gcm_state tx_aes, rx_aes;
	uint8_t tx_key[32], rx_key[32]; /* XChaCha20-Poly1305 */
	bool aes;
	int fd;
	int timeout_ms;
	int64_t hs_deadline;	 /* during the handshake: when all of it must be done; else -1 */
	uint64_t tx_ctr, rx_ctr; /* messages sent / received, the nonces */
	uint64_t bytes_sent;
	uint8_t *txbuf;
	size_t txcap;
	uint8_t *rxbuf;
	size_t rxcap;
	size_t rxfill; /* bytes in rxbuf */
	size_t rxnext; /* where the next frame starts (after the one last returned) */
	int failed;    /* -errno of the first failure, or 0 */
	char failmsg[256];
};

/* ---- helpers ---------------------------------------------------------------------------- */

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_status;

static void sodium_init_once(void)
{
	sodium_status = sodium_init();
}

static int need_sodium(char *err, size_t errlen)
{
	pthread_once(&sodium_once, sodium_init_once);
	if (sodium_status < 0)
		return mig_fail(err, errlen, -ENOSYS, PFX "libsodium failed to initialise");
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for `events` on fd until the deadline (-1: none). 0 ready, -ETIMEDOUT, or -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
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

static int64_t deadline_of(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- addresses ---------------------------------------------------------------------------- */

static bool host_name_ok(const char *h)
{
	for (const char *p = h; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_'))
			return false;
	return true;
}

int mig_addr_parse(const char *s, struct mig_addr *a, char *err, size_t errlen)
{
	memset(a, 0, sizeof(*a));
	if (!s)
		return mig_fail(err, errlen, -EINVAL, "migration address: none given");
	if (strncmp(s, "unix:", 5) == 0) {
		const char *path = s + 5;
		size_t n = strlen(path);
		if (n == 0)
			return mig_fail(err, errlen, -EINVAL, "%s: empty socket path", s);
		if (n >= sizeof(a->path))
			return mig_fail(err, errlen, -ENAMETOOLONG,
					"%.40s...: socket path is %zu bytes, a unix socket address "
					"holds at most %zu",
					s, n, sizeof(a->path) - 1);
		a->family = AF_UNIX;
		memcpy(a->path, path, n + 1);
		return 0;
	}
	if (strncmp(s, "tcp:", 4) != 0)
		return mig_fail(err, errlen, -EINVAL,
				"migration address '%.200s': expected tcp:HOST:PORT or unix:PATH",
				s);

	const char *h = s + 4, *colon;
	size_t hlen;
	bool bracketed = h[0] == '[';
	if (bracketed) {
		const char *close = strchr(h, ']');
		if (!close)
			return mig_fail(err, errlen, -EINVAL,
					"%.200s: missing ']' after the IPv6 address", s);
		if (close[1] != ':')
			return mig_fail(err, errlen, -EINVAL,
					"%.200s: expected ':PORT' after the IPv6 address", s);
		h++;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(h, ':');
		if (!colon)
			return mig_fail(err, errlen, -EINVAL,
					"%.200s: missing port (tcp:HOST:PORT)", s);
		hlen = (size_t)(colon - h);
		if (memchr(h, ':', hlen))
			return mig_fail(
			    err, errlen, -EINVAL,
			    "%.200s: an IPv6 address goes in brackets, e.g. tcp:[::1]:7000", s);
	}
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

	const char *ps = colon + 1;
	if (!*ps)
		return mig_fail(err, errlen, -EINVAL, "%.200s: missing port (tcp:HOST:PORT)", s);
	unsigned long port = 0;
	for (const char *p = ps; *p; p++) {
		if (*p < '0' || *p > '9' || port > 65535)
			return mig_fail(err, errlen, -EINVAL,
					"%.200s: port '%.20s' is not a number from 0 to 65535", s,
					ps);
		port = port * 10 + (unsigned long)(*p - '0');
	}
	if (port > 65535)
		return mig_fail(err, errlen, -EINVAL,
				"%.200s: port '%.20s' is not a number from 0 to 65535", s, ps);
	a->port = (uint16_t)port;

	struct in6_addr a6;
	struct in_addr a4;
	if (bracketed) {
		/* getaddrinfo rather than inet_pton: it takes a scope (fe80::1%eth0). */
		struct addrinfo hints = {.ai_family = AF_INET6, .ai_flags = AI_NUMERICHOST}, *res;
		if (strchr(a->host, '%') == NULL && inet_pton(AF_INET6, a->host, &a6) != 1)
			return mig_fail(err, errlen, -EINVAL, "%.200s: '%s' is not an IPv6 address",
					s, a->host);
		if (getaddrinfo(a->host, NULL, &hints, &res) != 0)
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

static void set_nodelay(int fd)
{
	/* The last small messages of a migration are on the critical path: no Nagle delay.
	 * Fails harmlessly (ENOTSUP/EOPNOTSUPP) on unix sockets. */
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int is_tcp(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	return ss.ss_family == AF_INET || ss.ss_family == AF_INET6;
}

/* ---- listen / accept / connect ------------------------------------------------------------- */

static int listen_unix(const struct mig_addr *a, char *err, size_t errlen)
{
	char name[ADDR_STR_MAX];
	struct sockaddr_un sun;
	int r = unix_sockaddr(a, &sun, err, errlen);
	if (r < 0)
		return r;
	addr_str(a, name, sizeof(name));

	struct stat st;
	if (lstat(a->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return mig_fail(err, errlen, -EEXIST, "%s: exists and is not a socket",
					name);
		/* Only a dead socket is stale: never steal a live listener's address. */
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (probe >= 0) {
			int c = connect(probe, (struct sockaddr *)&sun, sizeof(sun));
			int e = errno;
			close(probe);
			if (c == 0 || e == EAGAIN || e == EINPROGRESS)
				return mig_fail(err, errlen, -EADDRINUSE,
						"%s: another process is listening on it", name);
		}
		if (unlink(a->path) < 0 && errno != ENOENT)
			return mig_fail(err, errlen, -errno, "%s: removing the stale socket: %s",
					name, strerror(errno));
	}
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
	int64_t deadline = deadline_of(timeout_ms);
	for (;;) {
		int r = wait_fd(lfd, POLLIN, deadline);
		if (r == -ETIMEDOUT)
			return mig_fail(err, errlen, r,
					PFX "timed out after %d ms waiting for a connection",
					timeout_ms);
		if (r < 0)
			return mig_fail(err, errlen, r, PFX "accept: poll: %s", strerror(-r));
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			if (is_tcp(fd))
				set_nodelay(fd);
			return fd;
		}
		/* The listener may be non-blocking; a connection that vanished is not our error. */
		if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED || errno == EPROTO)
			continue;
		return mig_fail(err, errlen, -errno, PFX "accept: %s", strerror(errno));
	}
}

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
			r = wait_fd(fd, POLLOUT, deadline);
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

int mig_connect(const struct mig_addr *a, int timeout_ms, char *err, size_t errlen)
{
	char name[ADDR_STR_MAX];
	const char *what = "connect";
	int64_t deadline = deadline_of(timeout_ms);
	int r;
	addr_str(a, name, sizeof(name));

	if (a->family == AF_UNIX) {
		struct sockaddr_un sun;
		r = unix_sockaddr(a, &sun, err, errlen);
		if (r < 0)
			return r;
		r = connect_one(AF_UNIX, (struct sockaddr *)&sun, sizeof(sun), deadline, &what);
	} else {
		if (a->port == 0)
			return mig_fail(err, errlen, -EINVAL, "%s: cannot connect to port 0", name);
		struct addrinfo *res;
		r = resolve(a, false, &res, err, errlen);
		if (r < 0)
			return r;
		r = -EHOSTUNREACH;
		for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
			r = connect_one(ai->ai_family, ai->ai_addr, ai->ai_addrlen, deadline,
					&what);
			if (r >= 0 || r == -ETIMEDOUT)
				break;
		}
		freeaddrinfo(res);
		if (r >= 0)
			set_nodelay(r);
	}
	if (r == -ETIMEDOUT)
		return mig_fail(err, errlen, r, "%s: connect: timed out after %d ms", name,
				timeout_ms);
	if (r < 0)
		return mig_fail(err, errlen, r, "%s: %s: %s", name, what, strerror(-r));
	return r;
}

/* ---- key file ------------------------------------------------------------------------------ */

int mig_key_load(const char *path, uint8_t key[MIG_KEY_BYTES], char *err, size_t errlen)
{
	int r = need_sodium(err, errlen);
	if (r < 0)
		return r;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return mig_fail(err, errlen, -errno, "%s: migration key: %s", path,
				strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return mig_fail(err, errlen, r, "%s: migration key: %s", path, strerror(-r));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return mig_fail(err, errlen, -EINVAL, "%s: migration key: not a regular file",
				path);
	}
	/* As ssh does with private keys: a secret others can read is not a secret. */
	if (st.st_mode & 077) {
		close(fd);
		return mig_fail(
		    err, errlen, -EPERM,
		    "%s: migration key: mode %04o lets group or others at it (chmod 600)", path,
		    (unsigned)(st.st_mode & 07777));
	}
	if (st.st_size > KEY_FILE_MAX) {
		close(fd);
		return mig_fail(err, errlen, -EFBIG,
				"%s: migration key: file is %lld bytes, at most %d", path,
				(long long)st.st_size, KEY_FILE_MAX);
	}

	uint8_t buf[KEY_FILE_MAX + 1];
	size_t n = 0;
	while (n < sizeof(buf)) {
		ssize_t k = read(fd, buf + n, sizeof(buf) - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = -errno;
			close(fd);
			sodium_memzero(buf, sizeof(buf));
			return mig_fail(err, errlen, r, "%s: migration key: read: %s", path,
					strerror(-r));
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	if (n > KEY_FILE_MAX) {
		sodium_memzero(buf, sizeof(buf));
		return mig_fail(err, errlen, -EFBIG, "%s: migration key: file grew past %d bytes",
				path, KEY_FILE_MAX);
	}
	/* Text keys lose their trailing newline so that `echo` and an editor agree. Random bytes
	 * are never all printable, so a raw key is hashed exactly as it is. */
	bool text = true;
	for (size_t i = 0; i < n && text; i++)
		text = (buf[i] >= 0x20 && buf[i] < 0x7f) || buf[i] == '\n' || buf[i] == '\r' ||
		       buf[i] == '\t';
	if (text)
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
				 buf[n - 1] == '\t'))
			n--;
	if (n < MIG_KEY_BYTES) {
		sodium_memzero(buf, sizeof(buf));
		return mig_fail(err, errlen, -EINVAL,
				"%s: migration key: only %zu bytes of secret, at least %d needed "
				"(e.g. head -c 32 /dev/urandom > KEYFILE)",
				path, n, MIG_KEY_BYTES);
	}
	static const uint8_t label[16] = "sbx-mig-key-v1\0";
	crypto_generichash(key, MIG_KEY_BYTES, buf, n, label, sizeof(label));
	sodium_memzero(buf, sizeof(buf));
	return 0;
}

/* ---- raw I/O on the stream's socket -------------------------------------------------------- */

static int poison(struct mig_stream *s, int rc, char *err, size_t errlen)
{
	if (!s->failed) {
		s->failed = rc;
		if (err && errlen)
			snprintf(s->failmsg, sizeof(s->failmsg), "%s", err);
	}
	return rc;
}

static int timeout_msg(struct mig_stream *s, char *err, size_t errlen)
{
	if (s->hs_deadline >= 0)
		return mig_fail(err, errlen, -ETIMEDOUT,
				PFX "the peer did not complete the handshake within %d ms",
				s->timeout_ms);
	return mig_fail(err, errlen, -ETIMEDOUT, PFX "timed out after %d ms waiting for the peer",
			s->timeout_ms);
}

/* Until when one wait for the socket may last: timeout_ms from now, but within the handshake's
 * deadline, which a peer that sends a byte at a time does not move. */
static int64_t wait_deadline(const struct mig_stream *s)
{
	int64_t d = deadline_of(s->timeout_ms);
	if (s->hs_deadline >= 0 && (d < 0 || s->hs_deadline < d))
		d = s->hs_deadline;
	return d;
}

static int send_all(struct mig_stream *s, const uint8_t *p, size_t n, char *err, size_t errlen)
{
	while (n > 0) {
		ssize_t k = send(s->fd, p, n, MSG_NOSIGNAL);
		if (k > 0) {
			p += k;
			n -= (size_t)k;
			s->bytes_sent += (uint64_t)k;
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN) {
			int r = wait_fd(s->fd, POLLOUT, wait_deadline(s));
			if (r == -ETIMEDOUT)
				return timeout_msg(s, err, errlen);
			if (r < 0)
				return mig_fail(err, errlen, r, PFX "poll: %s", strerror(-r));
			continue;
		}
		int e = k < 0 ? errno : EIO;
		if (e == EPIPE || e == ECONNRESET)
			return mig_fail(err, errlen, -EPIPE,
					PFX "peer closed the connection (%llu messages sent)",
					(unsigned long long)s->tx_ctr);
		return mig_fail(err, errlen, -e, PFX "send: %s", strerror(e));
	}
	return 0;
}

/* Reads at least `min` and at most `max` bytes into p. *got says how many arrived, also on
 * error. A clean end of stream is -EPIPE with no message: the caller knows what was cut. */
static int read_some(struct mig_stream *s, uint8_t *p, size_t min, size_t max, size_t *got,
		     char *err, size_t errlen)
{
	*got = 0;
	while (*got < min) {
		ssize_t k = read(s->fd, p + *got, max - *got);
		if (k > 0) {
			*got += (size_t)k;
			continue;
		}
		if (k == 0)
			return -EPIPE;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			/* Per read, as documented: a slow but live peer is not timed out. */
			int r = wait_fd(s->fd, POLLIN, wait_deadline(s));
			if (r == -ETIMEDOUT)
				return timeout_msg(s, err, errlen);
			if (r < 0)
				return mig_fail(err, errlen, r, PFX "poll: %s", strerror(-r));
			continue;
		}
		if (errno == ECONNRESET)
			return -EPIPE;
		return mig_fail(err, errlen, -errno, PFX "read: %s", strerror(errno));
	}
	return 0;
}

/* ---- handshake ----------------------------------------------------------------------------- */

static void hello_make(uint8_t h[HELLO_BYTES], int role, uint8_t caps)
{
	memset(h, 0, HELLO_BYTES);
	memcpy(h, HELLO_MAGIC, 6);
	h[6] = PROTO_VERSION & 0xff;
	h[7] = PROTO_VERSION >> 8;
	h[8] = (uint8_t)role;
	h[9] = caps;
	randombytes_buf(h + HELLO_NONCE_OFF, 32);
}

static int hello_check(const uint8_t h[HELLO_BYTES], int my_role, char *err, size_t errlen)
{
	if (memcmp(h, HELLO_MAGIC, 6) != 0)
		return mig_fail(err, errlen, -EPROTO,
				PFX
				"the peer is not a sandbox migration endpoint (no SBXMIG hello)");
	unsigned v = (unsigned)h[6] | (unsigned)h[7] << 8;
	if (v != PROTO_VERSION)
		return mig_fail(err, errlen, -EPROTONOSUPPORT,
				PFX "the peer speaks protocol version %u, this side speaks %u", v,
				PROTO_VERSION);
	if (h[8] != ROLE_SOURCE && h[8] != ROLE_DEST)
		return mig_fail(err, errlen, -EPROTO, PFX "the peer sent an unknown role %u", h[8]);
	if (h[8] == my_role)
		return mig_fail(err, errlen, -EPROTO,
				PFX
				"both sides are migration %s (one must send, the other receive)",
				my_role == ROLE_SOURCE ? "sources" : "destinations");
	return 0;
}

/* Everything the handshake needs, wiped on the way out. */
struct hs_keys {
	uint8_t master[crypto_kdf_KEYBYTES];
	uint8_t transcript[32];
	uint8_t k_s2d[32], k_d2s[32], c_s2d[32], c_d2s[32];
	uint8_t mine[CONFIRM_BYTES], theirs[CONFIRM_BYTES], expect[CONFIRM_BYTES];
};

static void derive(struct hs_keys *k, const uint8_t key[MIG_KEY_BYTES],
		   const uint8_t hello_s[HELLO_BYTES], const uint8_t hello_d[HELLO_BYTES])
{
	static const char label[] = "sbx migration stream v1";
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, sizeof(k->transcript));
	crypto_generichash_update(&st, (const uint8_t *)label, sizeof(label));
	crypto_generichash_update(&st, hello_s, HELLO_BYTES);
	crypto_generichash_update(&st, hello_d, HELLO_BYTES);
	crypto_generichash_final(&st, k->transcript, sizeof(k->transcript));

	crypto_generichash(k->master, sizeof(k->master), k->transcript, sizeof(k->transcript), key,
			   MIG_KEY_BYTES);
	crypto_kdf_derive_from_key(k->k_s2d, 32, 1, "SBXMIGv1", k->master);
	crypto_kdf_derive_from_key(k->k_d2s, 32, 2, "SBXMIGv1", k->master);
	crypto_kdf_derive_from_key(k->c_s2d, 32, 3, "SBXMIGv1", k->master);
	crypto_kdf_derive_from_key(k->c_d2s, 32, 4, "SBXMIGv1", k->master);
	sodium_memzero(&st, sizeof(st));
}

static void confirm_mac(uint8_t out[CONFIRM_BYTES], const uint8_t ckey[32],
			const uint8_t transcript[32])
{
	crypto_generichash(out, CONFIRM_BYTES, transcript, 32, ckey, 32);
}

static int hs_read(struct mig_stream *s, uint8_t *p, size_t n, const char *what, char *err,
		   size_t errlen)
{
	size_t got;
	int r = read_some(s, p, n, n, &got, err, errlen);
	if (r == -EPIPE)
		return mig_fail(err, errlen, -EPIPE,
				PFX
				"peer closed the connection during the handshake (waiting for its "
				"%s; %zu of %zu bytes came)",
				what, got, n);
	return r;
}

static int handshake(struct mig_stream *s, const uint8_t key[MIG_KEY_BYTES], bool source, char *err,
		     size_t errlen)
{
	int role = source ? ROLE_SOURCE : ROLE_DEST;
	uint8_t caps = crypto_aead_aes256gcm_is_available() ? CAP_AES256GCM : 0;
	uint8_t mine[HELLO_BYTES], theirs[HELLO_BYTES];
	struct hs_keys k;
	int r;

	hello_make(mine, role, caps);
	int sent = send_all(s, mine, sizeof(mine), err, errlen);
	/* A peer that hung up may still have said something: what it said explains more. */
	if (sent < 0 && sent != -EPIPE)
		return sent;
	r = hs_read(s, theirs, sizeof(theirs), "hello", err, errlen);
	if (r < 0)
		return r;
	r = hello_check(theirs, role, err, errlen);
	if (r < 0)
		return r;
	if (sent < 0)
		return mig_fail(
		    err, errlen, sent,
		    PFX "peer closed the connection during the handshake (after its hello)");
	s->aes = (caps & theirs[9] & CAP_AES256GCM) != 0;

	derive(&k, key, source ? mine : theirs, source ? theirs : mine);
	confirm_mac(source ? k.mine : k.expect, k.c_s2d, k.transcript);
	confirm_mac(source ? k.expect : k.mine, k.c_d2s, k.transcript);

	if (source) {
		r = send_all(s, k.mine, CONFIRM_BYTES, err, errlen);
		if (r == 0)
			r = hs_read(s, k.theirs, CONFIRM_BYTES, "key confirmation", err, errlen);
		if (r == 0 && sodium_memcmp(k.theirs, k.expect, CONFIRM_BYTES) != 0)
			r = -EACCES;
	} else {
		r = hs_read(s, k.theirs, CONFIRM_BYTES, "key confirmation", err, errlen);
		if (r == 0) {
			bool ok = sodium_memcmp(k.theirs, k.expect, CONFIRM_BYTES) == 0;
			/* Zeros cannot verify: the source then fails with the same message
			 * instead of a bare hangup, and learns nothing about our key. */
			if (!ok)
				memset(k.mine, 0, CONFIRM_BYTES);
			char serr[8];
			r = send_all(s, k.mine, CONFIRM_BYTES, serr, sizeof(serr));
			if (!ok)
				r = -EACCES;
			else if (r < 0)
				r = mig_fail(err, errlen, r,
					     PFX "peer closed the connection during the "
						 "handshake");
		}
	}
	if (r == -EACCES)
		mig_fail(err, errlen, r,
			 PFX "the peer does not hold the same key (authentication failed)");
	if (r == 0) {
		const uint8_t *tx = source ? k.k_s2d : k.k_d2s, *rx = source ? k.k_d2s : k.k_s2d;
		if (s->aes) {
			crypto_aead_aes256gcm_beforenm(&s->tx_aes, tx);
			crypto_aead_aes256gcm_beforenm(&s->rx_aes, rx);
		} else {
			memcpy(s->tx_key, tx, 32);
			memcpy(s->rx_key, rx, 32);
		}
	}
	sodium_memzero(&k, sizeof(k));
	return r;
}

int mig_stream_open(struct mig_stream **sp, int fd, const uint8_t key[MIG_KEY_BYTES], int is_source,
		    int timeout_ms, char *err, size_t errlen)
{
	*sp = NULL;
	int r = need_sodium(err, errlen);
	if (r < 0) {
		close(fd);
		return r;
	}
	size_t sz = (sizeof(struct mig_stream) + 63) & ~(size_t)63;
	struct mig_stream *s = aligned_alloc(64, sz);
	if (!s) {
		close(fd);
		return mig_fail(err, errlen, -ENOMEM, PFX "out of memory");
	}
	memset(s, 0, sizeof(*s));
	s->hs_deadline = -1;
	s->fd = fd;
	s->timeout_ms = timeout_ms;
	/* Non-blocking so that every read and write is bounded by poll and the timeout. */
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		r = mig_fail(err, errlen, -errno, PFX "fcntl: %s", strerror(errno));
		mig_stream_close(s);
		return r;
	}
	if (is_tcp(fd))
		set_nodelay(fd);
	s->hs_deadline = deadline_of(timeout_ms);
	r = handshake(s, key, is_source != 0, err, errlen);
	s->hs_deadline = -1;
	if (r < 0) {
		mig_stream_close(s);
		return r;
	}
	*sp = s;
	return 0;
}

void mig_stream_set_timeout(struct mig_stream *s, int timeout_ms)
{
	s->timeout_ms = timeout_ms;
}

/* ---- messages ------------------------------------------------------------------------------ */

static void nonce_of(uint8_t n[24], uint64_t ctr)
{
	memset(n, 0, 24);
	for (int i = 0; i < 8; i++)
		n[i] = (uint8_t)(ctr >> (8 * i));
}

static int grow(uint8_t **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 64 * 1024;
	while (n < need)
		n *= 2;
	if (n > MIG_MSG_MAX + FRAME_OVERHEAD + READ_AHEAD)
		n = MIG_MSG_MAX + FRAME_OVERHEAD + READ_AHEAD;
	uint8_t *p = realloc(*buf, n);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

static int already_failed(const struct mig_stream *s, char *err, size_t errlen)
{
	return mig_fail(err, errlen, s->failed, "%s",
			s->failmsg[0] ? s->failmsg : PFX "failed earlier");
}

int mig_stream_send(struct mig_stream *s, uint32_t type, const void *a, size_t alen, const void *b,
		    size_t blen, char *err, size_t errlen)
{
	if (s->failed)
		return already_failed(s, err, errlen);
	if ((alen && !a) || (blen && !b))
		return mig_fail(err, errlen, -EINVAL, PFX "send: NULL part with a length");
	/* A caller's mistake, caught before anything is written: the stream stays usable. */
	if (alen > MIG_MSG_MAX || blen > MIG_MSG_MAX - alen)
		return mig_fail(err, errlen, -EMSGSIZE,
				PFX "message of %zu bytes is larger than the %u a message may hold",
				alen + blen, MIG_MSG_MAX);
	if (s->tx_ctr == UINT64_MAX)
		return poison(s, mig_fail(err, errlen, -EOVERFLOW, PFX "message counter exhausted"),
			      err, errlen);
	size_t n = alen + blen, total = n + FRAME_OVERHEAD;
	if (grow(&s->txbuf, &s->txcap, total) < 0)
		return mig_fail(err, errlen, -ENOMEM, PFX "out of memory for a %zu-byte message",
				n);

	/* One copy into the frame buffer, then encryption in place: libsodium's AEADs take one
	 * contiguous message, and the frame has to be assembled for a single send anyway. */
	uint8_t *f = s->txbuf, *m = f + FRAME_HDR, nonce[24];
	put32(f, (uint32_t)n);
	put32(m, type);
	if (alen)
		memcpy(m + 4, a, alen);
	if (blen)
		memcpy(m + 4 + alen, b, blen);
	nonce_of(nonce, s->tx_ctr);
	if (s->aes)
		crypto_aead_aes256gcm_encrypt_detached_afternm(m, m + 4 + n, NULL, m, 4 + n, f,
							       FRAME_HDR, NULL, nonce, &s->tx_aes);
	else
		crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
		    m, m + 4 + n, NULL, m, 4 + n, f, FRAME_HDR, NULL, nonce, s->tx_key);
	s->tx_ctr++;
	int r = send_all(s, f, total, err, errlen);
	if (r < 0)
		return poison(s, r, err, errlen);
	return 0;
}

int mig_stream_recv(struct mig_stream *s, uint32_t *type, const uint8_t **body, size_t *len,
		    char *err, size_t errlen)
{
	*body = NULL;
	*len = 0;
	if (s->failed)
		return already_failed(s, err, errlen);
	unsigned long long idx = (unsigned long long)s->rx_ctr + 1; /* 1-based, for messages */

	/* Drop the frame returned last time; keep what was read ahead of the next one. */
	if (s->rxnext) {
		memmove(s->rxbuf, s->rxbuf + s->rxnext, s->rxfill - s->rxnext);
		s->rxfill -= s->rxnext;
		s->rxnext = 0;
	}
	if (grow(&s->rxbuf, &s->rxcap, FRAME_OVERHEAD + READ_AHEAD) < 0)
		return poison(s, mig_fail(err, errlen, -ENOMEM, PFX "out of memory"), err, errlen);

	size_t got;
	int r = 0;
	if (s->rxfill < FRAME_HDR) {
		size_t want = s->rxcap - s->rxfill;
		if (want > READ_AHEAD)
			want = READ_AHEAD;
		r = read_some(s, s->rxbuf + s->rxfill, FRAME_HDR - s->rxfill, want, &got, err,
			      errlen);
		s->rxfill += got;
		if (r == -EPIPE && s->rxfill == 0)
			return poison(s,
				      mig_fail(err, errlen, -EPIPE,
					       PFX "peer closed the connection after %llu messages",
					       idx - 1),
				      err, errlen);
		if (r < 0)
			goto cut;
	}
	uint32_t n = get32(s->rxbuf);
	/* The length is not authenticated yet: check it before it sizes anything. */
	if (n > MIG_MSG_MAX)
		return poison(s,
			      mig_fail(err, errlen, -EMSGSIZE,
				       PFX "message %llu claims %u bytes, more than the %u allowed "
					   "(corrupt or hostile stream)",
				       idx, n, MIG_MSG_MAX),
			      err, errlen);
	size_t flen = (size_t)n + FRAME_OVERHEAD;
	if (grow(&s->rxbuf, &s->rxcap, flen) < 0)
		return poison(
		    s, mig_fail(err, errlen, -ENOMEM, PFX "out of memory for message %llu", idx),
		    err, errlen);
	if (s->rxfill < flen) {
		r = read_some(s, s->rxbuf + s->rxfill, flen - s->rxfill, flen - s->rxfill, &got,
			      err, errlen);
		s->rxfill += got;
		if (r < 0)
			goto cut;
	}

	uint8_t *f = s->rxbuf, *c = f + FRAME_HDR, nonce[24];
	nonce_of(nonce, s->rx_ctr);
	if (s->aes)
		r = crypto_aead_aes256gcm_decrypt_detached_afternm(c, NULL, c, 4 + n, c + 4 + n, f,
								   FRAME_HDR, nonce, &s->rx_aes);
	else
		r = crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
		    c, NULL, c, 4 + n, c + 4 + n, f, FRAME_HDR, nonce, s->rx_key);
	if (r != 0) {
		sodium_memzero(c, 4 + (size_t)n);
		return poison(s,
			      mig_fail(err, errlen, -EBADMSG,
				       PFX
				       "message %llu failed authentication (wrong key or altered "
				       "stream)",
				       idx),
			      err, errlen);
	}
	s->rx_ctr++;
	s->rxnext = flen;
	*type = get32(c);
	*body = c + 4;
	*len = n;
	return 0;

cut:
	if (r == -EPIPE)
		r = mig_fail(err, errlen, -EPIPE,
			     PFX
			     "peer closed the connection in the middle of message %llu (%zu bytes "
			     "came; truncated stream)",
			     idx, s->rxfill);
	return poison(s, r, err, errlen);
}

uint64_t mig_stream_bytes_sent(const struct mig_stream *s)
{
	return s ? s->bytes_sent : 0;
}

void mig_stream_close(struct mig_stream *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	free(s->txbuf);
	free(s->rxbuf);
	sodium_memzero(s, sizeof(*s));
	free(s);
}
