/* The migration stream (migrate.h): addresses, key files, sockets, and the authenticated stream,
 * each side a thread so that both ends of every exchange are real library code. A relay thread
 * sits between the two for the tampering tests: it forwards the handshake live, holds the
 * source's frames until the source is done, and hands them on altered. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "migrate.h"

#define HS_BYTES 80 /* hello + confirmation, source to destination */
#define FRAME_OVERHEAD 24

static const uint8_t key_a[MIG_KEY_BYTES] = "0123456789abcdef0123456789abcde";
static const uint8_t key_b[MIG_KEY_BYTES] = "0123456789abcdef0123456789abcdX";

static void one_line(const char *err)
{
	cr_assert(err[0], "an error without a message");
	cr_assert(!strchr(err, '\n'), "error spans lines: %s", err);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- addresses ---------------------------------------------------------------------------- */

struct addr_ok {
	const char *s;
	int family;
	const char *host;
	unsigned port;
	const char *path;
};

static const struct addr_ok good_addrs[] = {
    {"tcp:127.0.0.1:7000", AF_INET, "127.0.0.1", 7000, ""},
    {"tcp:0.0.0.0:0", AF_INET, "0.0.0.0", 0, ""},
    {"tcp:[::1]:7000", AF_INET6, "::1", 7000, ""},
    {"tcp:[::]:65535", AF_INET6, "::", 65535, ""},
    {"tcp:[fe80::1%lo]:7000", AF_INET6, "fe80::1%lo", 7000, ""},
    {"tcp:localhost:7000", AF_UNSPEC, "localhost", 7000, ""},
    {"tcp:dest-01.example.org:22", AF_UNSPEC, "dest-01.example.org", 22, ""},
    {"unix:/run/sbx/mig.sock", AF_UNIX, "", 0, "/run/sbx/mig.sock"},
    {"unix:rel.sock", AF_UNIX, "", 0, "rel.sock"},
};

Test(addr, good)
{
	for (size_t i = 0; i < sizeof(good_addrs) / sizeof(good_addrs[0]); i++) {
		const struct addr_ok *t = &good_addrs[i];
		struct mig_addr a;
		char err[256] = "";
		int r = mig_addr_parse(t->s, &a, err, sizeof(err));
		cr_assert_eq(r, 0, "%s: %s", t->s, err);
		cr_expect_eq(a.family, t->family, "%s", t->s);
		cr_expect_str_eq(a.host, t->host, "%s", t->s);
		cr_expect_eq(a.port, t->port, "%s", t->s);
		cr_expect_str_eq(a.path, t->path, "%s", t->s);
	}
}

struct addr_bad {
	const char *s;
	const char *msg;
};

static const struct addr_bad bad_addrs[] = {
    {"", "expected tcp:HOST:PORT or unix:PATH"},
    {"udp:1.2.3.4:5", "expected tcp:HOST:PORT or unix:PATH"},
    {"TCP:1.2.3.4:5", "expected tcp:HOST:PORT or unix:PATH"},
    {"tcp:", "missing port"},
    {"tcp:host", "missing port"},
    {"tcp:host:", "missing port"},
    {"tcp::7000", "empty host"},
    {"tcp:[]:7000", "empty host"},
    {"tcp:::1:7000", "IPv6 address goes in brackets"},
    {"tcp:[::1]7000", "expected ':PORT' after the IPv6 address"},
    {"tcp:[::1:7000", "missing ']'"},
    {"tcp:[1.2.3.4]:7000", "is not an IPv6 address"},
    {"tcp:[nonsense]:7000", "is not an IPv6 address"},
    {"tcp:h:65536", "not a number from 0 to 65535"},
    {"tcp:h:99999999999999999999", "not a number from 0 to 65535"},
    {"tcp:h:-1", "not a number from 0 to 65535"},
    {"tcp:h:+1", "not a number from 0 to 65535"},
    {"tcp:h:7a", "not a number from 0 to 65535"},
    {"tcp:h: 7", "not a number from 0 to 65535"},
    {"tcp:a b:7", "neither an IPv4 address nor a host name"},
    {"tcp:a/b:7", "neither an IPv4 address nor a host name"},
    {"unix:", "empty socket path"},
};

Test(addr, bad)
{
	for (size_t i = 0; i < sizeof(bad_addrs) / sizeof(bad_addrs[0]); i++) {
		const struct addr_bad *t = &bad_addrs[i];
		struct mig_addr a;
		char err[256] = "";
		int r = mig_addr_parse(t->s, &a, err, sizeof(err));
		cr_expect_lt(r, 0, "'%s' parsed", t->s);
		one_line(err);
		cr_expect(strstr(err, t->msg), "'%s': got '%s', wanted '%s'", t->s, err, t->msg);
	}
}

Test(addr, long_names)
{
	char s[512], err[256];
	struct mig_addr a;
	memset(s, 'a', sizeof(s));
	memcpy(s, "unix:", 5);
	s[5 + 107] = 0; /* 107 bytes: the most sun_path holds with its NUL */
	cr_assert_eq(mig_addr_parse(s, &a, err, sizeof(err)), 0, "%s", err);
	s[5 + 107] = 'a';
	s[5 + 108] = 0;
	cr_assert_eq(mig_addr_parse(s, &a, err, sizeof(err)), -ENAMETOOLONG);
	one_line(err);
	cr_expect(strstr(err, "at most 107"), "%s", err);

	memcpy(s, "tcp:", 4);
	memset(s + 4, 'h', 300);
	strcpy(s + 304, ":7000");
	cr_assert_eq(mig_addr_parse(s, &a, err, sizeof(err)), -ENAMETOOLONG);
	one_line(err);
	cr_expect(strstr(err, "host name is 300 bytes"), "%s", err);
}

/* ---- key files ---------------------------------------------------------------------------- */

static char keydir[64], sockdir[64];

/* The temporary directories go when each test does (Criterion runs each in its own process). */
static void rm_dir(const char *d)
{
	DIR *dir = opendir(d);
	if (!dir)
		return;
	for (struct dirent *e; (e = readdir(dir));)
		if (e->d_name[0] != '.')
			unlinkat(dirfd(dir), e->d_name, 0);
	closedir(dir);
	rmdir(d);
}

static void __attribute__((destructor)) rm_tmp(void)
{
	if (keydir[0])
		rm_dir(keydir);
	if (sockdir[0])
		rm_dir(sockdir);
}

static const char *key_file(const char *name, const void *data, size_t len, mode_t mode)
{
	static char path[128];
	if (!keydir[0]) {
		strcpy(keydir, "/tmp/sbx-key-XXXXXX");
		cr_assert(mkdtemp(keydir));
	}
	snprintf(path, sizeof(path), "%s/%s", keydir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	cr_assert_eq(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

Test(key, good_raw_and_text)
{
	uint8_t raw[32], k1[32], k2[32], k3[32];
	char err[256];
	for (int i = 0; i < 32; i++)
		raw[i] = (uint8_t)(i * 37 + 200);
	cr_assert_eq(mig_key_load(key_file("raw", raw, 32, 0600), k1, err, sizeof(err)), 0, "%s",
		     err);
	raw[31] ^= 1;
	cr_assert_eq(mig_key_load(key_file("raw2", raw, 32, 0400), k2, err, sizeof(err)), 0, "%s",
		     err);
	cr_expect_neq(memcmp(k1, k2, 32), 0, "different files, same key");

	/* The same passphrase with and without a trailing newline is the same key. */
	const char *text = "correct horse battery staple and more words";
	cr_assert_eq(mig_key_load(key_file("t1", text, strlen(text), 0600), k1, err, sizeof(err)),
		     0, "%s", err);
	char nl[128];
	snprintf(nl, sizeof(nl), "%s\n", text);
	cr_assert_eq(mig_key_load(key_file("t2", nl, strlen(nl), 0600), k3, err, sizeof(err)), 0,
		     "%s", err);
	cr_expect_eq(memcmp(k1, k3, 32), 0);
}

Test(key, rejected)
{
	uint8_t k[32];
	char err[256], big[5000];
	memset(big, 'x', sizeof(big));

	cr_expect_eq(mig_key_load(key_file("short", big, 31, 0600), k, err, sizeof(err)), -EINVAL);
	one_line(err);
	cr_expect(strstr(err, "only 31 bytes of secret, at least 32"), "%s", err);

	/* 31 characters and a newline: still 31 bytes of secret. */
	char t[32];
	memset(t, 'y', 31);
	t[31] = '\n';
	cr_expect_eq(mig_key_load(key_file("short-nl", t, 32, 0600), k, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "only 31 bytes"), "%s", err);

	cr_expect_eq(mig_key_load(key_file("group", big, 64, 0640), k, err, sizeof(err)), -EPERM);
	one_line(err);
	cr_expect(strstr(err, "mode 0640"), "%s", err);
	cr_expect_eq(mig_key_load(key_file("world", big, 64, 0604), k, err, sizeof(err)), -EPERM);
	cr_expect(strstr(err, "mode 0604"), "%s", err);

	cr_expect_eq(mig_key_load(key_file("big", big, sizeof(big), 0600), k, err, sizeof(err)),
		     -EFBIG);
	one_line(err);
	cr_expect(strstr(err, "5000 bytes, at most 4096"), "%s", err);

	cr_expect_eq(mig_key_load("/nonexistent/key", k, err, sizeof(err)), -ENOENT);
	one_line(err);
	cr_expect(strstr(err, "/nonexistent/key"), "%s", err);
	cr_expect_eq(mig_key_load("/", k, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "not a regular file"), "%s", err);
}

/* ---- peers -------------------------------------------------------------------------------- */

/* The standard exchange: the source sends one message per size, each split differently into
 * the two parts; the destination checks them and answers with the count. */
static const size_t sizes[] = {0,	    1,	  15,	 16,	 17,	  4095,
			       4096,	    4097, 65536, 262144, 1 << 20, MIG_MSG_MAX - 1,
			       MIG_MSG_MAX, 3,	  0,	 100000};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))
#define T_ACK 0xacc

static void pattern(uint8_t *p, size_t n, unsigned seed)
{
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (uint8_t)(x >> 16);
	}
}

struct peer {
	int fd;
	const uint8_t *key;
	int is_source;
	int timeout_ms;
	int (*run)(struct peer *p, struct mig_stream *s);
	int rc;
	char err[256];
	unsigned count;
	uint64_t sent;
	void *arg;
};

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	struct mig_stream *s;
	p->rc =
	    mig_stream_open(&s, p->fd, p->key, p->is_source, p->timeout_ms, p->err, sizeof(p->err));
	if (p->rc < 0)
		return NULL;
	if (p->run)
		p->rc = p->run(p, s);
	p->sent = mig_stream_bytes_sent(s);
	mig_stream_close(s);
	return NULL;
}

static int run_source(struct peer *p, struct mig_stream *s)
{
	uint8_t *buf = malloc(MIG_MSG_MAX);
	int r = 0;
	for (unsigned i = 0; i < NSIZES && r == 0; i++) {
		size_t n = sizes[i], cut = i % 3 == 0 ? 0 : i % 3 == 1 ? n / 2 : n;
		pattern(buf, n, i);
		r = mig_stream_send(s, 1000 + i, buf, cut, buf + cut, n - cut, p->err,
				    sizeof(p->err));
		p->count += r == 0;
	}
	free(buf);
	if (r < 0)
		return r;
	uint32_t t;
	const uint8_t *b;
	size_t len;
	r = mig_stream_recv(s, &t, &b, &len, p->err, sizeof(p->err));
	if (r < 0)
		return r;
	if (t != T_ACK || len != 4 || memcmp(b, &p->count, 4) != 0)
		return -EBADE;
	return 0;
}

static int run_dest(struct peer *p, struct mig_stream *s)
{
	uint8_t *want = malloc(MIG_MSG_MAX);
	int r = 0;
	for (unsigned i = 0; i < NSIZES; i++) {
		uint32_t t;
		const uint8_t *b;
		size_t len;
		r = mig_stream_recv(s, &t, &b, &len, p->err, sizeof(p->err));
		if (r < 0)
			break;
		pattern(want, sizes[i], i);
		if (t != 1000 + i || len != sizes[i] || memcmp(b, want, len) != 0) {
			snprintf(p->err, sizeof(p->err), "message %u differs", i);
			r = -EBADE;
			break;
		}
		p->count++;
	}
	free(want);
	if (r < 0)
		return r;
	return mig_stream_send(s, T_ACK, &p->count, 4, NULL, 0, p->err, sizeof(p->err));
}

/* Runs the exchange between two connected fds, each side in its own thread. */
static void exchange(int src_fd, int dst_fd)
{
	struct peer src = {
	    .fd = src_fd, .key = key_a, .is_source = 1, .timeout_ms = 10000, .run = run_source};
	struct peer dst = {
	    .fd = dst_fd, .key = key_a, .is_source = 0, .timeout_ms = 10000, .run = run_dest};
	pthread_t ts, td;
	pthread_create(&ts, NULL, peer_main, &src);
	pthread_create(&td, NULL, peer_main, &dst);
	pthread_join(ts, NULL);
	pthread_join(td, NULL);
	cr_assert_eq(src.rc, 0, "source: %s", src.err);
	cr_assert_eq(dst.rc, 0, "destination: %s", dst.err);
	cr_assert_eq(dst.count, NSIZES);
	uint64_t wire = HS_BYTES;
	for (unsigned i = 0; i < NSIZES; i++)
		wire += sizes[i] + FRAME_OVERHEAD;
	cr_expect_eq(src.sent, wire, "source counted %llu wire bytes, not %llu",
		     (unsigned long long)src.sent, (unsigned long long)wire);
	cr_expect_eq(dst.sent, HS_BYTES + 4 + FRAME_OVERHEAD);
}

static void pair(int sv[2])
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

Test(stream, round_trip_socketpair)
{
	int sv[2];
	pair(sv);
	exchange(sv[0], sv[1]);
}

struct acceptor {
	int lfd;
	int fd;
	char err[256];
};

static void *accept_main(void *arg)
{
	struct acceptor *a = arg;
	a->fd = mig_accept(a->lfd, 10000, a->err, sizeof(a->err));
	return NULL;
}

/* Listens on `listen_s` (port 0: any), connects to `connect_fmt` with the port filled in. */
static void over_network(const char *listen_s, const char *connect_fmt)
{
	struct mig_addr la, ca;
	char err[256], cs[300];
	cr_assert_eq(mig_addr_parse(listen_s, &la, err, sizeof(err)), 0, "%s", err);
	int lfd = mig_listen(&la, err, sizeof(err));
	if (lfd < 0 && la.family == AF_INET6 && (lfd == -EADDRNOTAVAIL || lfd == -EAFNOSUPPORT))
		cr_skip_test("no IPv6 loopback here: %s", err);
	cr_assert_geq(lfd, 0, "%s", err);
	unsigned port = 0;
	if (la.family != AF_UNIX) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		cr_assert_eq(getsockname(lfd, (struct sockaddr *)&ss, &len), 0);
		port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						     : ((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	snprintf(cs, sizeof(cs), connect_fmt, port);
	cr_assert_eq(mig_addr_parse(cs, &ca, err, sizeof(err)), 0, "%s", err);

	struct acceptor acc = {.lfd = lfd};
	pthread_t t;
	pthread_create(&t, NULL, accept_main, &acc);
	int cfd = mig_connect(&ca, 5000, err, sizeof(err));
	pthread_join(t, NULL);
	cr_assert_geq(cfd, 0, "%s", err);
	cr_assert_geq(acc.fd, 0, "%s", acc.err);
	close(lfd);
	exchange(cfd, acc.fd);
}

Test(stream, round_trip_tcp4)
{
	over_network("tcp:127.0.0.1:0", "tcp:127.0.0.1:%u");
}

Test(stream, round_trip_tcp6)
{
	over_network("tcp:[::1]:0", "tcp:[::1]:%u");
}

Test(stream, round_trip_tcp_hostname)
{
	over_network("tcp:127.0.0.1:0", "tcp:localhost:%u");
}

static const char *sock_path(const char *name)
{
	static char path[128];
	if (!sockdir[0]) {
		strcpy(sockdir, "/tmp/sbx-sock-XXXXXX");
		cr_assert(mkdtemp(sockdir));
	}
	snprintf(path, sizeof(path), "%s/%s", sockdir, name);
	return path;
}

Test(stream, round_trip_unix)
{
	char s[200];
	snprintf(s, sizeof(s), "unix:%s", sock_path("mig.sock"));
	over_network(s, s);
}

Test(sockets, unix_listen_mode_and_stale)
{
	char s[200], err[256];
	struct mig_addr a;
	struct stat st;
	const char *path = sock_path("l.sock");
	snprintf(s, sizeof(s), "unix:%s", path);
	cr_assert_eq(mig_addr_parse(s, &a, err, sizeof(err)), 0);

	mode_t old = umask(0);
	int lfd = mig_listen(&a, err, sizeof(err));
	umask(old);
	cr_assert_geq(lfd, 0, "%s", err);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 07777, 0600, "socket mode %o", st.st_mode & 07777);

	/* A live listener's address is not taken over. */
	cr_expect_eq(mig_listen(&a, err, sizeof(err)), -EADDRINUSE);
	one_line(err);
	cr_expect(strstr(err, "another process is listening"), "%s", err);

	/* Once it is dead the node is stale and replaced. */
	close(lfd);
	lfd = mig_listen(&a, err, sizeof(err));
	cr_assert_geq(lfd, 0, "%s", err);
	close(lfd);

	/* Anything but a socket is left alone. */
	unlink(path);
	close(open(path, O_CREAT | O_WRONLY, 0600));
	cr_expect_eq(mig_listen(&a, err, sizeof(err)), -EEXIST);
	one_line(err);
	cr_expect(strstr(err, "not a socket"), "%s", err);
	cr_expect_eq(stat(path, &st), 0);
	cr_expect(S_ISREG(st.st_mode));
}

Test(sockets, accept_timeout_and_refused)
{
	char err[256];
	struct mig_addr a;
	cr_assert_eq(mig_addr_parse("tcp:127.0.0.1:0", &a, err, sizeof(err)), 0);
	int lfd = mig_listen(&a, err, sizeof(err));
	cr_assert_geq(lfd, 0, "%s", err);
	int64_t t0 = now_ms();
	cr_expect_eq(mig_accept(lfd, 100, err, sizeof(err)), -ETIMEDOUT);
	cr_expect_geq(now_ms() - t0, 90);
	one_line(err);
	cr_expect(strstr(err, "timed out after 100 ms"), "%s", err);

	/* The port is free once closed: connecting is refused, with the address in the message. */
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	getsockname(lfd, (struct sockaddr *)&sin, &len);
	close(lfd);
	char s[64];
	snprintf(s, sizeof(s), "tcp:127.0.0.1:%u", ntohs(sin.sin_port));
	cr_assert_eq(mig_addr_parse(s, &a, err, sizeof(err)), 0);
	cr_expect_eq(mig_connect(&a, 1000, err, sizeof(err)), -ECONNREFUSED);
	one_line(err);
	char want[128];
	snprintf(want, sizeof(want), "%s: connect: Connection refused", s);
	cr_expect_str_eq(err, want);

	cr_assert_eq(mig_addr_parse("unix:/nonexistent/x.sock", &a, err, sizeof(err)), 0);
	cr_expect_eq(mig_connect(&a, 1000, err, sizeof(err)), -ENOENT);
	cr_expect_str_eq(err, "unix:/nonexistent/x.sock: connect: No such file or directory");
}

/* ---- handshake failures ------------------------------------------------------------------- */

static void both(struct peer *a, struct peer *b)
{
	int sv[2];
	pair(sv);
	a->fd = sv[0];
	b->fd = sv[1];
	pthread_t ta, tb;
	pthread_create(&ta, NULL, peer_main, a);
	pthread_create(&tb, NULL, peer_main, b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
}

Test(handshake, wrong_key_fails_on_both_sides)
{
	struct peer src = {.key = key_a, .is_source = 1, .timeout_ms = 5000};
	struct peer dst = {.key = key_b, .is_source = 0, .timeout_ms = 5000};
	both(&src, &dst);
	const char *want = "migration stream: the peer does not hold the same key (authentication "
			   "failed)";
	cr_expect_eq(src.rc, -EACCES, "source: %s", src.err);
	cr_expect_str_eq(src.err, want);
	cr_expect_eq(dst.rc, -EACCES, "destination: %s", dst.err);
	cr_expect_str_eq(dst.err, want);
}

Test(handshake, roles_must_differ)
{
	struct peer a = {.key = key_a, .is_source = 1, .timeout_ms = 5000};
	struct peer b = {.key = key_a, .is_source = 1, .timeout_ms = 5000};
	both(&a, &b);
	cr_expect_eq(a.rc, -EPROTO);
	cr_expect_eq(b.rc, -EPROTO);
	cr_expect(strstr(a.err, "both sides are migration sources"), "%s", a.err);
	cr_expect(strstr(b.err, "both sides are migration sources"), "%s", b.err);

	struct peer c = {.key = key_a, .is_source = 0, .timeout_ms = 5000};
	struct peer d = {.key = key_a, .is_source = 0, .timeout_ms = 5000};
	both(&c, &d);
	cr_expect_eq(c.rc, -EPROTO);
	cr_expect(strstr(d.err, "both sides are migration destinations"), "%s", d.err);
}

Test(handshake, not_a_peer)
{
	int sv[2];
	pair(sv);
	const char junk[48] = "GET / HTTP/1.1\r\nHost: example\r\n\r\n";
	cr_assert_eq(write(sv[1], junk, sizeof(junk)), (ssize_t)sizeof(junk));
	struct mig_stream *s;
	char err[256];
	cr_expect_eq(mig_stream_open(&s, sv[0], key_a, 0, 1000, err, sizeof(err)), -EPROTO);
	one_line(err);
	cr_expect(strstr(err, "not a sandbox migration endpoint"), "%s", err);
	cr_expect_null(s);
	close(sv[1]);
}

Test(handshake, timeout)
{
	int sv[2];
	pair(sv);
	struct mig_stream *s;
	char err[256];
	int64_t t0 = now_ms();
	cr_expect_eq(mig_stream_open(&s, sv[0], key_a, 1, 100, err, sizeof(err)), -ETIMEDOUT);
	/* Not sooner than asked; the upper bound only catches a unit mistake (100 s). */
	int64_t dt = now_ms() - t0;
	cr_expect(dt >= 90 && dt < 60000, "took %lld ms", (long long)dt);
	cr_expect_str_eq(err,
			 "migration stream: the peer did not complete the handshake within 100 ms");
	close(sv[1]);
}

/* A byte of a genuine-looking hello every 30 ms: no single wait comes near the timeout, but the
 * handshake as a whole (80 bytes, 2.4 s) cannot end within it. */
static void *drip_main(void *arg)
{
	int fd = *(int *)arg;
	uint8_t b[48 + 32] = "SBXMIG\x01\x00\x02"; /* version 1, a destination */
	for (size_t i = 0; i < sizeof(b); i++) {
		struct timespec ts = {0, 30 * 1000000};
		nanosleep(&ts, NULL);
		if (send(fd, b + i, 1, MSG_NOSIGNAL) != 1)
			break;
	}
	return NULL;
}

Test(handshake, a_peer_that_drips_is_timed_out_as_a_whole)
{
	int sv[2];
	pair(sv);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, drip_main, &sv[1]), 0);
	struct mig_stream *s;
	char err[256];
	cr_expect_eq(mig_stream_open(&s, sv[0], key_a, 1, 200, err, sizeof(err)), -ETIMEDOUT, "%s",
		     err);
	cr_expect(strstr(err, "did not complete the handshake within 200 ms"), "%s", err);
	cr_expect_null(s);
	shutdown(sv[1], SHUT_RDWR);
	pthread_join(t, NULL);
	close(sv[1]);
}

Test(handshake, peer_closes)
{
	int sv[2];
	pair(sv);
	cr_assert_eq(write(sv[1], "SBXMIG", 6), 6);
	close(sv[1]);
	struct mig_stream *s;
	char err[256];
	cr_expect_eq(mig_stream_open(&s, sv[0], key_a, 1, 1000, err, sizeof(err)), -EPIPE);
	one_line(err);
	cr_expect(strstr(err, "closed the connection during the handshake"), "%s", err);
	cr_expect(strstr(err, "6 of 48 bytes"), "%s", err);
}

/* ---- the relay: tampering with the source's bytes ------------------------------------------ */

struct bytes {
	uint8_t *p;
	size_t n, cap;
};

static void put(struct bytes *b, const void *p, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
}

struct relay {
	int a, b;      /* the source's side, the destination's side */
	long flip_bit; /* in the source's byte stream, or -1 */
	void (*xform)(struct bytes *frames, void *arg); /* on everything after the handshake */
	void *arg;
	struct bytes record; /* all the source sent */
};

static void write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
		if (k <= 0)
			return; /* the destination gave up: fine, that is what is tested */
		p += k;
		n -= (size_t)k;
	}
}

static void *relay_main(void *arg)
{
	struct relay *r = arg;
	struct bytes held = {0};
	size_t off = 0;
	bool a_open = true, b_open = true;
	uint8_t buf[65536];
	while (a_open || b_open) {
		struct pollfd p[2] = {{.fd = a_open ? r->a : -1, .events = POLLIN},
				      {.fd = b_open ? r->b : -1, .events = POLLIN}};
		if (poll(p, 2, 60000) <= 0) /* only a hang ends it */
			break;
		if (p[0].revents) {
			ssize_t k = read(r->a, buf, sizeof(buf));
			if (k <= 0) {
				if (r->xform)
					r->xform(&held, r->arg);
				write_all(r->b, held.p, held.n);
				shutdown(r->b, SHUT_WR);
				a_open = false;
			} else {
				put(&r->record, buf, (size_t)k);
				for (ssize_t i = 0; i < k; i++, off++) {
					if (r->flip_bit >= 0 && off == (size_t)r->flip_bit / 8)
						buf[i] ^= (uint8_t)(1u << (r->flip_bit % 8));
					if (off < HS_BYTES)
						write_all(r->b, buf + i, 1);
					else
						put(&held, buf + i, 1);
				}
			}
		}
		if (p[1].revents) {
			ssize_t k = read(r->b, buf, sizeof(buf));
			if (k <= 0) {
				shutdown(r->a, SHUT_WR);
				b_open = false;
			} else {
				write_all(r->a, buf, (size_t)k);
			}
		}
	}
	free(held.p);
	return NULL;
}

/* The source sends the messages in `msgs` and closes; the destination reads until an error. */
#define NMSG 3
static const size_t small_sizes[NMSG] = {0, 10, 100};

static int send_small(struct peer *p, struct mig_stream *s)
{
	uint8_t buf[100];
	for (unsigned i = 0; i < NMSG; i++) {
		pattern(buf, small_sizes[i], i);
		int r =
		    mig_stream_send(s, 7 + i, buf, small_sizes[i], NULL, 0, p->err, sizeof(p->err));
		if (r < 0)
			return r;
	}
	return 0;
}

struct outcome {
	int open_rc;
	unsigned ok; /* messages delivered intact */
	int wrong;   /* messages delivered with the wrong content: must never happen */
	int rc;	     /* the error that ended the reading */
	char err[256];
	char err2[256]; /* what the call after it said */
};

static struct outcome run_relayed(struct relay *r, struct peer *src)
{
	int sa[2], sb[2];
	pair(sa);
	pair(sb);
	r->a = sa[1];
	r->b = sb[0];
	src->fd = sa[0];
	src->is_source = 1;
	if (!src->key)
		src->key = key_a;
	if (!src->run)
		src->run = send_small;
	src->timeout_ms = 5000;
	pthread_t ts, tr;
	pthread_create(&tr, NULL, relay_main, r);
	pthread_create(&ts, NULL, peer_main, src);

	struct outcome o = {0};
	struct mig_stream *s;
	o.open_rc = mig_stream_open(&s, sb[1], key_a, 0, 5000, o.err, sizeof(o.err));
	if (o.open_rc == 0) {
		uint8_t want[100];
		for (;;) {
			uint32_t t;
			const uint8_t *b;
			size_t len;
			o.rc = mig_stream_recv(s, &t, &b, &len, o.err, sizeof(o.err));
			if (o.rc < 0)
				break;
			unsigned i = o.ok;
			if (i < NMSG)
				pattern(want, small_sizes[i], i);
			if (i >= NMSG || t != 7 + i || len != small_sizes[i] ||
			    memcmp(b, want, len) != 0)
				o.wrong++;
			else
				o.ok++;
		}
		uint32_t t;
		const uint8_t *b;
		size_t len;
		mig_stream_recv(s, &t, &b, &len, o.err2, sizeof(o.err2));
		mig_stream_close(s);
	}
	pthread_join(ts, NULL);
	pthread_join(tr, NULL);
	close(sa[1]);
	close(sb[0]);
	return o;
}

Test(tamper, untouched_stream_ends_cleanly)
{
	struct relay r = {.flip_bit = -1};
	struct peer src = {0};
	struct outcome o = run_relayed(&r, &src);
	cr_assert_eq(o.open_rc, 0, "%s", o.err);
	cr_expect_eq(o.ok, NMSG);
	cr_expect_eq(o.wrong, 0);
	cr_expect_eq(o.rc, -EPIPE);
	cr_expect_str_eq(o.err, "migration stream: peer closed the connection after 3 messages");
	/* A failed stream stays failed, saying why. */
	cr_expect_str_eq(o.err2, o.err);
	free(r.record.p);
}

Test(tamper, every_bit_flip_is_rejected)
{
	size_t frames = 0;
	for (unsigned i = 0; i < NMSG; i++)
		frames += small_sizes[i] + FRAME_OVERHEAD;
	size_t total = HS_BYTES + frames;
	for (long bit = 0; bit < (long)total * 8; bit++) {
		size_t byte = (size_t)bit / 8;
		/* In the handshake one bit per byte is enough: all of it goes into every key. */
		if (byte < HS_BYTES && bit % 8 != (long)(byte % 8))
			continue;
		struct relay r = {.flip_bit = bit};
		struct peer src = {0};
		struct outcome o = run_relayed(&r, &src);
		free(r.record.p);
		cr_assert_eq(o.wrong, 0, "bit %ld: an altered message was delivered", bit);
		if (byte < HS_BYTES) {
			cr_assert_lt(o.open_rc, 0, "bit %ld in the handshake went unnoticed", bit);
			one_line(o.err);
			continue;
		}
		cr_assert_eq(o.open_rc, 0, "bit %ld: %s", bit, o.err);
		/* Which frame was hit: all before it arrive, it and none after it. */
		size_t at = HS_BYTES;
		unsigned frame = 0;
		while (byte >= at + small_sizes[frame] + FRAME_OVERHEAD)
			at += small_sizes[frame++] + FRAME_OVERHEAD;
		cr_assert_eq(o.ok, frame, "bit %ld (frame %u): %u messages came", bit, frame, o.ok);
		cr_assert_lt(o.rc, 0);
		one_line(o.err);
		cr_assert_str_eq(o.err2, o.err, "bit %ld: the stream was usable after a failure",
				 bit);
	}
}

/* Frame boundaries in what the relay holds (the frames after the handshake). */
static size_t frame_at(const struct bytes *b, unsigned i)
{
	size_t at = 0;
	while (i--)
		at += 4 +
		      (b->p[at] | b->p[at + 1] << 8 | b->p[at + 2] << 16 |
		       (size_t)b->p[at + 3] << 24) +
		      20;
	return at;
}

static void replay_first(struct bytes *b, void *arg)
{
	(void)arg;
	size_t f1 = frame_at(b, 1);
	uint8_t *copy = malloc(b->n);
	memcpy(copy, b->p, b->n);
	b->n = 0;
	put(b, copy, f1);
	put(b, copy, f1); /* message 1 twice */
	free(copy);
}

static void swap_2_3(struct bytes *b, void *arg)
{
	(void)arg;
	size_t f1 = frame_at(b, 1), f2 = frame_at(b, 2), f3 = frame_at(b, 3);
	uint8_t *copy = malloc(b->n);
	memcpy(copy, b->p, b->n);
	b->n = 0;
	put(b, copy, f1);
	put(b, copy + f2, f3 - f2);
	put(b, copy + f1, f2 - f1);
	free(copy);
}

static void drop_2(struct bytes *b, void *arg)
{
	(void)arg;
	size_t f1 = frame_at(b, 1), f2 = frame_at(b, 2);
	memmove(b->p + f1, b->p + f2, b->n - f2);
	b->n -= f2 - f1;
}

static void truncate_to(struct bytes *b, void *arg)
{
	size_t n = *(size_t *)arg;
	if (n < b->n)
		b->n = n;
}

static void replace(struct bytes *b, void *arg)
{
	const struct bytes *with = arg;
	b->n = 0;
	put(b, with->p, with->n);
}

Test(tamper, replayed_frame)
{
	struct relay r = {.flip_bit = -1, .xform = replay_first};
	struct peer src = {0};
	struct outcome o = run_relayed(&r, &src);
	free(r.record.p);
	cr_assert_eq(o.open_rc, 0, "%s", o.err);
	cr_expect_eq(o.ok, 1);
	cr_expect_eq(o.wrong, 0);
	cr_expect_eq(o.rc, -EBADMSG);
	cr_expect_str_eq(o.err, "migration stream: message 2 failed authentication (wrong key or "
				"altered stream)");
}

Test(tamper, reordered_and_dropped_frames)
{
	struct relay r = {.flip_bit = -1, .xform = swap_2_3};
	struct peer src = {0};
	struct outcome o = run_relayed(&r, &src);
	free(r.record.p);
	cr_expect_eq(o.ok, 1);
	cr_expect_eq(o.wrong, 0);
	cr_expect_eq(o.rc, -EBADMSG);

	struct relay r2 = {.flip_bit = -1, .xform = drop_2};
	struct peer src2 = {0};
	o = run_relayed(&r2, &src2);
	free(r2.record.p);
	cr_expect_eq(o.ok, 1);
	cr_expect_eq(o.wrong, 0);
	cr_expect_eq(o.rc, -EBADMSG);
	cr_expect(strstr(o.err, "message 2 failed authentication"), "%s", o.err);
}

Test(tamper, truncated_stream)
{
	/* Cut inside message 3's body, then inside its length. */
	size_t cuts[] = {FRAME_OVERHEAD + 10 + FRAME_OVERHEAD + 50,
			 FRAME_OVERHEAD + 10 + FRAME_OVERHEAD + 2};
	for (int i = 0; i < 2; i++) {
		struct relay r = {.flip_bit = -1, .xform = truncate_to, .arg = &cuts[i]};
		struct peer src = {0};
		struct outcome o = run_relayed(&r, &src);
		free(r.record.p);
		cr_expect_eq(o.ok, 2);
		cr_expect_eq(o.wrong, 0);
		cr_expect_eq(o.rc, -EPIPE);
		one_line(o.err);
		cr_expect(strstr(o.err, "peer closed the connection in the middle of message 3"),
			  "%s", o.err);
		cr_expect(strstr(o.err, "truncated"), "%s", o.err);
	}
}

static int hold_open(struct peer *p, struct mig_stream *s)
{
	(void)s;
	/* Keep the connection up so that the destination could wait for a body if it meant to. */
	usleep(p->timeout_ms > 0 ? 300 * 1000 : 0);
	return 0;
}

/* Keeps the connection up until the other side closes it: a destination that waits for more
 * can only time out, whenever it gets to its read. */
static int hold_until_closed(struct peer *p, struct mig_stream *s)
{
	(void)s;
	char b[64];
	for (;;) {
		struct pollfd q = {.fd = p->fd,
				   .events = POLLIN}; /* the stream made it non-blocking */
		poll(&q, 1, -1);
		ssize_t k = read(p->fd, b, sizeof(b));
		if (k == 0 || (k < 0 && errno != EINTR && errno != EAGAIN))
			return 0;
	}
}

Test(tamper, oversize_length_rejected_at_once)
{
	struct bytes evil = {0};
	uint8_t len[4] = {0x01, 0x00, 0x80, 0x00}; /* MIG_MSG_MAX + 1 */
	put(&evil, len, 4);
	struct relay r = {.flip_bit = -1, .xform = replace, .arg = &evil};
	struct peer src = {.run = hold_open};
	struct outcome o = run_relayed(&r, &src);
	free(r.record.p);
	free(evil.p);
	cr_assert_eq(o.open_rc, 0, "%s", o.err);
	cr_expect_eq(o.rc, -EMSGSIZE);
	cr_expect_str_eq(o.err, "migration stream: message 1 claims 8388609 bytes, more than the "
				"8388608 allowed (corrupt or hostile stream)");
}

static int raw_oversize_then_wait(struct peer *p, struct mig_stream *s)
{
	(void)s;
	/* Past the stream, on its socket: a length that the destination must refuse without
	 * waiting for (or allocating) the body that would follow. */
	uint8_t len[4] = {0xff, 0xff, 0xff, 0xff};
	if (write(p->fd, len, 4) != 4)
		return -EIO;
	return hold_until_closed(p, s);
}

Test(tamper, oversize_length_refused_without_waiting)
{
	int sv[2];
	pair(sv);
	struct peer src = {.fd = sv[0],
			   .key = key_a,
			   .is_source = 1,
			   .timeout_ms = 5000,
			   .run = raw_oversize_then_wait};
	pthread_t t;
	pthread_create(&t, NULL, peer_main, &src);
	struct mig_stream *s;
	char err[256];
	cr_assert_eq(mig_stream_open(&s, sv[1], key_a, 0, 5000, err, sizeof(err)), 0, "%s", err);
	uint32_t type;
	const uint8_t *body;
	size_t n;
	/* A destination that waited for the body would time out (the source holds the
	 * connection until we close it) and say so, not EMSGSIZE. */
	cr_expect_eq(mig_stream_recv(s, &type, &body, &n, err, sizeof(err)), -EMSGSIZE);
	cr_expect(strstr(err, "claims 4294967295 bytes"), "%s", err);
	mig_stream_close(s);
	pthread_join(t, NULL);
}

Test(tamper, old_session_replayed_to_a_new_destination)
{
	struct relay r = {.flip_bit = -1};
	struct peer src = {0};
	struct outcome o = run_relayed(&r, &src);
	cr_assert_eq(o.ok, NMSG);

	/* Everything the source sent, played to a fresh destination. */
	int sv[2];
	pair(sv);
	write_all(sv[0], r.record.p, r.record.n);
	shutdown(sv[0], SHUT_WR);
	struct mig_stream *s;
	char err[256];
	cr_expect_eq(mig_stream_open(&s, sv[1], key_a, 0, 1000, err, sizeof(err)), -EACCES);
	cr_expect_str_eq(err, "migration stream: the peer does not hold the same key "
			      "(authentication failed)");
	close(sv[0]);
	free(r.record.p);
}

/* ---- sending ------------------------------------------------------------------------------ */

static int send_too_big(struct peer *p, struct mig_stream *s)
{
	static uint8_t big[MIG_MSG_MAX];
	int r = mig_stream_send(s, 1, big, MIG_MSG_MAX, "x", 1, p->err, sizeof(p->err));
	if (r != -EMSGSIZE || !strstr(p->err, "8388609 bytes"))
		return -EBADE;
	/* Refused before anything was written: the stream goes on. */
	return send_small(p, s);
}

Test(stream, oversize_send_refused_stream_usable)
{
	struct relay r = {.flip_bit = -1};
	struct peer src = {.run = send_too_big};
	struct outcome o = run_relayed(&r, &src);
	free(r.record.p);
	cr_expect_eq(src.rc, 0, "%s", src.err);
	cr_expect_eq(o.ok, NMSG);
}

Test(stream, recv_timeout)
{
	int sv[2];
	pair(sv);
	struct peer src = {.fd = sv[0],
			   .key = key_a,
			   .is_source = 1,
			   .timeout_ms = 60000,
			   .run = hold_until_closed};
	pthread_t t;
	pthread_create(&t, NULL, peer_main, &src);
	struct mig_stream *s;
	char err[256];
	cr_assert_eq(mig_stream_open(&s, sv[1], key_a, 0, 100, err, sizeof(err)), 0, "%s", err);
	uint32_t type;
	const uint8_t *body;
	size_t n;
	int64_t t0 = now_ms();
	cr_expect_eq(mig_stream_recv(s, &type, &body, &n, err, sizeof(err)), -ETIMEDOUT);
	/* Not sooner than asked; the upper bound only catches a unit mistake (100 s). */
	int64_t dt = now_ms() - t0;
	cr_expect(dt >= 90 && dt < 60000, "took %lld ms", (long long)dt);
	cr_expect_str_eq(err, "migration stream: timed out after 100 ms waiting for the peer");
	mig_stream_close(s);
	pthread_join(t, NULL);
}
