/* The loopback as test suites use it: a server on 127.0.0.1 or [::] and a client in another
 * process or thread, over TCP and UDP. Each subcommand prints what it saw, without port
 * numbers (the kernel picks them), so that the output is the same natively and in the sandbox
 * (tests/monitor/test_loopback.c).
 *   loopback tcp4 | tcp6 | dual | udp | nonblock | opts | refused | threads
 * Only in the sandbox (natively the host's network answers):
 *   loopback offnet          a connect, sendto and bind outside the loopback, and a raw socket
 * Benchmark, "OP N NS" (ns each) on stderr:
 *   loopback bench N         "tcp_roundtrip": N round trips of 64 bytes between two processes
 *                            over TCP with TCP_NODELAY, as a client and its test server */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "errname.h"

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			printf("FAILED line %d: %s (%s)\n", __LINE__, #c, errname(errno));         \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

static uint16_t port_of(int fd, int peer)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	CHECK((peer ? getpeername(fd, (struct sockaddr *)&ss, &l)
		    : getsockname(fd, (struct sockaddr *)&ss, &l)) == 0);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port); /* the same place in both */
}

/* The address of fd (or its peer) as text, without the port. */
static const char *addr_of(int fd, int peer, char *buf, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	CHECK((peer ? getpeername(fd, (struct sockaddr *)&ss, &l)
		    : getsockname(fd, (struct sockaddr *)&ss, &l)) == 0);
	const void *a = ss.ss_family == AF_INET ? (void *)&((struct sockaddr_in *)&ss)->sin_addr
						: (void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
	CHECK(inet_ntop(ss.ss_family, a, buf, (socklen_t)cap));
	CHECK(l ==
	      (ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)));
	return buf;
}

/* addr (text) and port in family into ss: its length. */
static socklen_t make_addr(int family, const char *addr, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = (sa_family_t)family;
	((struct sockaddr_in *)ss)->sin_port = htons(port); /* the same place in both */
	void *x = family == AF_INET ? (void *)&((struct sockaddr_in *)ss)->sin_addr
				    : (void *)&((struct sockaddr_in6 *)ss)->sin6_addr;
	CHECK(inet_pton(family, addr, x) == 1);
	return family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

static int listener(int family, const char *addr)
{
	int s = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(s >= 0);
	CHECK(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &(int){1}, sizeof(int)) == 0);
	struct sockaddr_storage ss;
	make_addr(family, addr, 0, &ss);
	/* As much as programs pass: the length of a whole sockaddr_storage. */
	CHECK(bind(s, (struct sockaddr *)&ss, sizeof(ss)) == 0);
	CHECK(listen(s, 16) == 0);
	return s;
}

static int dial(int family, const char *addr, uint16_t port)
{
	int c = socket(family, SOCK_STREAM, 0);
	CHECK(c >= 0);
	struct sockaddr_storage ss;
	if (connect(c, (struct sockaddr *)&ss, make_addr(family, addr, port, &ss)) < 0) {
		int e = errno;
		close(c);
		errno = e;
		return -1;
	}
	return c;
}

/* A server at addr in family and a client in a child process connecting to caddr in cfamily:
 * what each side sees of the other. */
static void tcp_pair(const char *name, int family, const char *addr, int cfamily, const char *caddr)
{
	char b1[64], b2[64];
	int s = listener(family, addr);
	uint16_t port = port_of(s, 0);
	printf("%s: listening on %s, port %s\n", name, addr_of(s, 0, b1, sizeof(b1)),
	       port ? "chosen" : "0");
	fflush(stdout);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int c = dial(cfamily, caddr, port);
		CHECK(c >= 0);
		char msg[64];
		int n = snprintf(msg, sizeof(msg), "%u", port_of(c, 0));
		CHECK(write(c, msg, (size_t)n) == n);
		/* Asked before the server can end the connection. */
		addr_of(c, 0, b1, sizeof(b1));
		addr_of(c, 1, b2, sizeof(b2));
		const char *pp = port_of(c, 1) == port ? "the server's" : "another";
		CHECK(shutdown(c, SHUT_WR) == 0);
		char reply[64] = "";
		ssize_t r = read(c, reply, sizeof(reply) - 1);
		CHECK(r > 0);
		printf("%s: client at %s got \"%s\" from %s, peer port %s\n", name, b1, reply, b2,
		       pp);
		fflush(stdout);
		_exit(0);
	}
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	int a = accept4(s, (struct sockaddr *)&ss, &l, SOCK_CLOEXEC);
	CHECK(a >= 0);
	char msg[64] = "", got[64];
	ssize_t r, n = 0;
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	while ((r = recvfrom(a, msg + n, sizeof(msg) - 1 - (size_t)n, 0, (struct sockaddr *)&from,
			     &fl)) > 0)
		n += r;
	CHECK(r == 0);
	printf("%s: recvfrom tells a length of %u\n", name, (unsigned)fl);
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	snprintf(got, sizeof(got), "%u", ntohs(in->sin_port));
	printf("%s: accepted from %s (family %s), its port %s; accepted socket at %s\n", name,
	       addr_of(a, 1, b1, sizeof(b1)), ss.ss_family == family ? "the listener's" : "other",
	       strcmp(got, msg) == 0 ? "as it says" : "NOT as it says",
	       addr_of(a, 0, b2, sizeof(b2)));
	fflush(stdout);
	CHECK(write(a, "pong", 4) == 4);
	close(a);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(s);
}

static void udp(void)
{
	char b[64];
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	CHECK(s >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CHECK(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0);
	uint16_t port = port_of(s, 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int c = socket(AF_INET, SOCK_DGRAM, 0);
		struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
		to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		CHECK(sendto(c, "one", 3, 0, (struct sockaddr *)&to, sizeof(to)) == 3);
		CHECK(sendto(c, "two!", 4, 0, (struct sockaddr *)&to, sizeof(to)) == 4);
		char r[16];
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(c, r, sizeof(r), 0, (struct sockaddr *)&from, &fl);
		CHECK(n == 5);
		printf("udp: client got \"%.5s\" from %s, %s\n", r,
		       inet_ntop(AF_INET, &from.sin_addr, b, sizeof(b)),
		       ntohs(from.sin_port) == port ? "the server's port" : "another port");
		/* connected: send and recv without addresses */
		CHECK(connect(c, (struct sockaddr *)&to, sizeof(to)) == 0);
		CHECK(send(c, "three", 5, 0) == 5);
		CHECK(recv(c, r, sizeof(r), 0) == 2);
		printf("udp: connected client got \"%.2s\", peer %s\n", r,
		       addr_of(c, 1, b, sizeof(b)));
		fflush(stdout);
		_exit(0);
	}
	char m[16];
	struct sockaddr_in from;
	socklen_t fl = sizeof(from);
	ssize_t n = recvfrom(s, m, sizeof(m), 0, (struct sockaddr *)&from, &fl);
	CHECK(n == 3);
	n = recvfrom(s, m + 3, sizeof(m) - 3, 0, NULL, NULL);
	CHECK(n == 4);
	printf("udp: server got \"%.3s\" and \"%.4s\" (two messages) from %s, length %u\n", m,
	       m + 3, inet_ntop(AF_INET, &from.sin_addr, (char[64]){0}, 64), (unsigned)fl);
	/* Nobody at the port: the datagram is lost, not refused. */
	struct sockaddr_in none = {.sin_family = AF_INET, .sin_port = htons(port == 9 ? 10 : 9)};
	none.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	printf("udp: sendto a port nobody bound: %zd\n",
	       sendto(s, "lost", 4, 0, (struct sockaddr *)&none, sizeof(none)));
	CHECK(sendto(s, "reply", 5, 0, (struct sockaddr *)&from, fl) == 5);
	fl = sizeof(from);
	CHECK(recvfrom(s, m, sizeof(m), 0, (struct sockaddr *)&from, &fl) == 5);
	CHECK(sendto(s, "ok", 2, 0, (struct sockaddr *)&from, fl) == 2);
	fflush(stdout);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Go's and libuv's way: a non-blocking connect, then poll for writability and SO_ERROR. */
static void nonblock(void)
{
	int s = listener(AF_INET6, "::1");
	uint16_t port = port_of(s, 0);
	int c = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
	a.sin6_addr = in6addr_loopback;
	int r = connect(c, (struct sockaddr *)&a, sizeof(a));
	CHECK(r == 0 || errno == EINPROGRESS);
	struct pollfd p = {c, POLLOUT, 0};
	CHECK(poll(&p, 1, 10000) == 1 && (p.revents & POLLOUT));
	int err = -1;
	socklen_t el = sizeof(err);
	CHECK(getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &el) == 0);
	printf("nonblock: connected, SO_ERROR %d\n", err);
	int a2 = accept4(s, NULL, NULL, SOCK_NONBLOCK);
	CHECK(a2 >= 0);
	char buf[8];
	CHECK(read(a2, buf, sizeof(buf)) < 0 && errno == EAGAIN);
	printf("nonblock: empty read says %s\n", errname(errno));
	CHECK(write(c, "x", 1) == 1);
	p = (struct pollfd){a2, POLLIN, 0};
	CHECK(poll(&p, 1, 10000) == 1);
	CHECK(read(a2, buf, sizeof(buf)) == 1);
	close(c);
	p = (struct pollfd){a2, POLLIN, 0};
	CHECK(poll(&p, 1, 10000) == 1);
	printf("nonblock: after the client's close, read gives %zd\n", read(a2, buf, sizeof(buf)));
	CHECK(fcntl(s, F_SETFL, O_NONBLOCK) == 0);
	int a3 = accept(s, NULL, NULL);
	printf("nonblock: accept with none waiting: %s\n", a3 < 0 ? errname(errno) : "a socket");
	/* More clients than the backlog: each connected or in progress, never refused, and
	 * every one accepted in the end. */
	int l = listener(AF_INET, "127.0.0.1"), ok = 0, accepted = 0;
	CHECK(listen(l, 1) == 0);
	uint16_t lp = port_of(l, 0);
	for (int i = 0; i < 4; i++) {
		int c4 = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(lp)};
		to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ok += connect(c4, (struct sockaddr *)&to, sizeof(to)) == 0 || errno == EINPROGRESS;
	}
	while (accepted < 4) {
		p = (struct pollfd){l, POLLIN, 0};
		if (poll(&p, 1, 20000) != 1)
			break;
		accepted += accept(l, NULL, NULL) >= 0;
	}
	printf("nonblock: 4 connects to a backlog of 1: %d under way, %d accepted\n", ok, accepted);
}

static int getint(int fd, int level, int name)
{
	int v = -1;
	socklen_t l = sizeof(v);
	CHECK(getsockopt(fd, level, name, &v, &l) == 0);
	return v;
}

static void opts(void)
{
	int t = socket(AF_INET6, SOCK_STREAM, 0), u = socket(AF_INET, SOCK_DGRAM, 0);
	CHECK(t >= 0 && u >= 0);
	printf("opts: SO_DOMAIN %d %d, SO_PROTOCOL %d %d, SO_TYPE %d %d\n",
	       getint(t, SOL_SOCKET, SO_DOMAIN), getint(u, SOL_SOCKET, SO_DOMAIN),
	       getint(t, SOL_SOCKET, SO_PROTOCOL), getint(u, SOL_SOCKET, SO_PROTOCOL),
	       getint(t, SOL_SOCKET, SO_TYPE), getint(u, SOL_SOCKET, SO_TYPE));
	printf("opts: TCP_NODELAY %d", getint(t, IPPROTO_TCP, TCP_NODELAY));
	CHECK(setsockopt(t, IPPROTO_TCP, TCP_NODELAY, &(int){5}, sizeof(int)) == 0);
	printf(" then %d; IPV6_V6ONLY %d", getint(t, IPPROTO_TCP, TCP_NODELAY),
	       getint(t, IPPROTO_IPV6, IPV6_V6ONLY));
	CHECK(setsockopt(t, IPPROTO_TCP, TCP_KEEPIDLE, &(int){15}, sizeof(int)) == 0);
	printf("; TCP_KEEPIDLE %d\n", getint(t, IPPROTO_TCP, TCP_KEEPIDLE));
	int v;
	socklen_t l = sizeof(v);
	printf("opts: TCP_NODELAY on UDP: %s\n",
	       getsockopt(u, IPPROTO_TCP, TCP_NODELAY, &v, &l) < 0 ? errname(errno) : "a value");
	printf("opts: IPV6_V6ONLY on a v4 socket: %s\n",
	       getsockopt(u, IPPROTO_IPV6, IPV6_V6ONLY, &v, &l) < 0 ? errname(errno) : "a value");
	struct sockaddr_in6 a;
	l = sizeof(a);
	CHECK(getsockname(t, (struct sockaddr *)&a, &l) == 0);
	printf("opts: an unbound socket's name: family %s, length %u, port %u\n",
	       a.sin6_family == AF_INET6 ? "AF_INET6" : "?", (unsigned)l, ntohs(a.sin6_port));
	printf("opts: an unconnected socket's peer: %s\n",
	       getpeername(t, (struct sockaddr *)&a, &l) < 0 ? errname(errno) : "a name");
	CHECK(listen(t, 4) == 0);
	printf("opts: listen without bind takes a port: %s\n", port_of(t, 0) ? "yes" : "no");
	printf("opts: set TCP_NODELAY on UDP: %s\n",
	       setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int)) < 0 ? errname(errno)
										   : "set");
	printf(
	    "opts: IP_TTL 0: %s; TCP_KEEPCNT 200: %s\n",
	    setsockopt(u, IPPROTO_IP, IP_TTL, &(int){0}, sizeof(int)) < 0 ? errname(errno) : "set",
	    setsockopt(t, IPPROTO_TCP, TCP_KEEPCNT, &(int){200}, sizeof(int)) < 0 ? errname(errno)
										  : "set");
	printf("opts: listen on UDP: %s\n", listen(u, 1) < 0 ? errname(errno) : "listening");
}

static void refused(void)
{
	int s = listener(AF_INET, "127.0.0.1");
	uint16_t port = port_of(s, 0);
	int s2 = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	printf("refused: a second bind to the port: %s\n",
	       bind(s2, (struct sockaddr *)&a, sizeof(a)) < 0 ? errname(errno) : "bound");
	close(s);
	/* A port no one listens on any more. */
	printf("refused: connect to a closed port: %s\n",
	       dial(AF_INET, "127.0.0.1", port) < 0 ? errname(errno) : "connected");
	struct sockaddr_in6 b = {.sin6_family = AF_INET6};
	printf("refused: bind a v6 address to a v4 socket: %s\n",
	       bind(s2, (struct sockaddr *)&b, sizeof(b)) < 0 ? errname(errno) : "bound");
	printf("refused: bind with a short address: %s\n",
	       bind(s2, (struct sockaddr *)&a, 8) < 0 ? errname(errno) : "bound");
	printf("refused: a socketpair of the family: %s\n",
	       socketpair(AF_INET, SOCK_STREAM, 0, (int[2]){0}) < 0 ? "refused" : "made");
}

static uint16_t tport;
static void *tserve(void *arg)
{
	int s = *(int *)arg;
	for (int i = 0; i < 4; i++) {
		int a = accept(s, NULL, NULL);
		CHECK(a >= 0);
		char b[16];
		ssize_t n = read(a, b, sizeof(b));
		CHECK(n > 0 && write(a, b, (size_t)n) == n);
		close(a);
	}
	return NULL;
}

static void *tclient(void *arg)
{
	(void)arg;
	for (int i = 0; i < 2; i++) {
		int c = dial(AF_INET, "127.0.0.1", tport);
		CHECK(c >= 0);
		char b[16];
		CHECK(write(c, "echo", 4) == 4 && read(c, b, sizeof(b)) == 4);
		close(c);
	}
	return NULL;
}

static void threads(void)
{
	int s = listener(AF_INET, "0.0.0.0");
	tport = port_of(s, 0);
	pthread_t srv, c1, c2;
	CHECK(pthread_create(&srv, NULL, tserve, &s) == 0);
	CHECK(pthread_create(&c1, NULL, tclient, NULL) == 0);
	CHECK(pthread_create(&c2, NULL, tclient, NULL) == 0);
	pthread_join(c1, NULL);
	pthread_join(c2, NULL);
	pthread_join(srv, NULL);
	printf("threads: 4 connections served\n");
}

static void offnet(void)
{
	printf("offnet: connect to 192.0.2.1: %s\n",
	       dial(AF_INET, "192.0.2.1", 80) < 0 ? errname(errno) : "connected");
	printf("offnet: connect to 2001:db8::1: %s\n",
	       dial(AF_INET6, "2001:db8::1", 80) < 0 ? errname(errno) : "connected");
	int u = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(53)};
	inet_pton(AF_INET, "198.51.100.1", &a.sin_addr);
	printf("offnet: sendto 198.51.100.1: %s\n",
	       sendto(u, "q", 1, 0, (struct sockaddr *)&a, sizeof(a)) < 0 ? errname(errno)
									  : "sent");
	printf("offnet: bind to 198.51.100.1: %s\n",
	       bind(u, (struct sockaddr *)&a, sizeof(a)) < 0 ? errname(errno) : "bound");
	printf("offnet: a raw socket: %s\n",
	       socket(AF_INET, SOCK_RAW, IPPROTO_ICMP) < 0 ? errname(errno) : "made");
	printf("offnet: a netlink socket: %s\n",
	       socket(AF_NETLINK, SOCK_RAW, 0) < 0 ? errname(errno) : "made");
}

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static void bench(int n)
{
	int s = listener(AF_INET, "127.0.0.1");
	uint16_t port = port_of(s, 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int a = accept(s, NULL, NULL);
		char b[64];
		CHECK(setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int)) == 0);
		for (;;) {
			ssize_t r = read(a, b, sizeof(b));
			if (r <= 0)
				_exit(0);
			CHECK(write(a, b, (size_t)r) == r);
		}
	}
	int c = dial(AF_INET, "127.0.0.1", port);
	CHECK(c >= 0);
	CHECK(setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int)) == 0);
	char b[64] = {0};
	double t0 = now_ns();
	for (int i = 0; i < n; i++) {
		CHECK(write(c, b, sizeof(b)) == sizeof(b));
		size_t got = 0;
		while (got < sizeof(b)) {
			ssize_t r = read(c, b + got, sizeof(b) - got);
			CHECK(r > 0);
			got += (size_t)r;
		}
	}
	double t = now_ns() - t0;
	close(c);
	waitpid(pid, NULL, 0);
	fprintf(stderr, "tcp_roundtrip %d %.0f\n", n, t / n);
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(cmd, "tcp4") == 0)
		tcp_pair("tcp4", AF_INET, "127.0.0.1", AF_INET, "127.0.0.1");
	else if (strcmp(cmd, "tcp6") == 0)
		tcp_pair("tcp6", AF_INET6, "::1", AF_INET6, "::1");
	else if (strcmp(cmd, "dual") == 0)
		tcp_pair("dual", AF_INET6, "::", AF_INET, "127.0.0.1");
	else if (strcmp(cmd, "udp") == 0)
		udp();
	else if (strcmp(cmd, "nonblock") == 0)
		nonblock();
	else if (strcmp(cmd, "opts") == 0)
		opts();
	else if (strcmp(cmd, "refused") == 0)
		refused();
	else if (strcmp(cmd, "threads") == 0)
		threads();
	else if (strcmp(cmd, "offnet") == 0)
		offnet();
	else if (strcmp(cmd, "bench") == 0 && argc > 2)
		bench(atoi(argv[2]));
	else {
		fprintf(stderr, "usage: loopback tcp4|tcp6|dual|udp|nonblock|opts|refused|threads|"
				"offnet|bench N\n");
		return 2;
	}
	return 0;
}
