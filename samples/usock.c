/* usock DIR: local sockets with names, as servers and their tests use them (multiprocessing's
 * managers, asyncio's and Go's unix servers): a server and a client process on a path and on
 * an abstract name, datagrams, an automatic name, a blocking accept woken by a thread, and
 * Linux's errors. Prints what each step saw; the same lines natively and in the sandbox
 * (tests/monitor/test_e2e.c). DIR must be writable; what is made there is removed.
 * Then descriptors passed to a child (SCM_RIGHTS): a pipe, a file, an eventfd, stdout, a
 * memfd, and more than the receiver has room for.
 *   usock DIR connect PATH | @NAME   only a connect, its result (a socket outside the sandbox)
 *   usock DIR bench N                round trips and passed descriptors, timed (on stderr) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "errname.h"

static void show(const char *what, long r)
{
	printf("%s: %s\n", what, r < 0 ? errname(errno) : "ok");
	fflush(stdout);
}

/* An address for a path, or for an abstract name written "@name". */
static socklen_t addr(struct sockaddr_un *u, const char *name)
{
	memset(u, 0, sizeof(*u));
	u->sun_family = AF_UNIX;
	size_t n = strlen(name);
	if (name[0] == '@') {
		memcpy(u->sun_path + 1, name + 1, n - 1);
		return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	}
	memcpy(u->sun_path, name, n);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
}

static void show_name(const char *what, int fd, int peer)
{
	struct sockaddr_un u;
	socklen_t len = sizeof(u);
	memset(&u, 0, sizeof(u));
	int r = peer ? getpeername(fd, (struct sockaddr *)&u, &len)
		     : getsockname(fd, (struct sockaddr *)&u, &len);
	if (r < 0)
		printf("%s: %s\n", what, errname(errno));
	else if (len <= offsetof(struct sockaddr_un, sun_path))
		printf("%s: unnamed (%u)\n", what, (unsigned)len);
	else if (u.sun_path[0] == 0)
		printf("%s: @%.*s (%u)\n", what, (int)(len - 3), u.sun_path + 1, (unsigned)len);
	else /* the directory is the test's own: only the name */
		printf("%s: .../%s (%u)\n", what, strrchr(u.sun_path, '/') + 1,
		       (unsigned)(len - strlen(u.sun_path)));
	fflush(stdout);
}

/* A server process on name: it says when it listens, answers one client, and ends. */
static pid_t serve(const char *name, int type)
{
	int ready[2];
	if (pipe(ready) < 0)
		return -1;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		close(ready[0]);
		struct sockaddr_un u;
		socklen_t len = addr(&u, name);
		int s = socket(AF_UNIX, type, 0);
		if (s < 0 || bind(s, (struct sockaddr *)&u, len) < 0 ||
		    (type != SOCK_DGRAM && listen(s, 4) < 0))
			_exit(10);
		write(ready[1], "r", 1);
		char buf[64];
		if (type == SOCK_DGRAM) {
			ssize_t n = recv(s, buf, sizeof(buf), 0);
			_exit(n == 4 && memcmp(buf, "dgrm", 4) == 0 ? 0 : 11);
		}
		struct sockaddr_un peer;
		socklen_t plen = sizeof(peer);
		int c = accept(s, (struct sockaddr *)&peer, &plen);
		if (c < 0)
			_exit(12);
		ssize_t n = read(c, buf, sizeof(buf));
		if (n != 4 || write(c, "pong", 4) != 4)
			_exit(13);
		/* An accepted socket's own name is the listener's; its peer is unnamed. */
		_exit(plen == sizeof(sa_family_t) ? 0 : 14);
	}
	close(ready[1]);
	char c;
	read(ready[0], &c, 1);
	close(ready[0]);
	return pid;
}

static int reap(pid_t pid)
{
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void client(const char *what, const char *name, int type)
{
	pid_t pid = serve(name, type);
	struct sockaddr_un u;
	socklen_t len = addr(&u, name);
	int c = socket(AF_UNIX, type, 0);
	printf("%s\n", what);
	show("  connect", connect(c, (struct sockaddr *)&u, len));
	show_name("  its peer", c, 1);
	show_name("  its own name", c, 0);
	if (type == SOCK_DGRAM) {
		show("  send", send(c, "dgrm", 4, 0));
	} else {
		show("  write", write(c, "ping", 4));
		char buf[16] = "";
		ssize_t n = read(c, buf, sizeof(buf));
		printf("  reply: %.*s\n", n > 0 ? (int)n : 0, buf);
	}
	close(c);
	printf("  server: %d\n", reap(pid));
	fflush(stdout);
}

static int lsock;

static void *connect_later(void *arg)
{
	struct timespec t = {0, 200 * 1000 * 1000};
	nanosleep(&t, NULL);
	struct sockaddr_un u;
	socklen_t len = addr(&u, arg);
	int c = socket(AF_UNIX, SOCK_STREAM, 0);
	connect(c, (struct sockaddr *)&u, len);
	close(c);
	return NULL;
}

/* Sends n descriptors with one byte over s. */
static long send_fds(int s, const int *fds, int n)
{
	char byte = 'f';
	struct iovec v = {&byte, 1};
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(8 * sizeof(int))];
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr m = {.msg_iov = &v,
			   .msg_iovlen = 1,
			   .msg_control = u.buf,
			   .msg_controllen = CMSG_SPACE((size_t)n * sizeof(int))};
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN((size_t)n * sizeof(int));
	memcpy(CMSG_DATA(c), fds, (size_t)n * sizeof(int));
	return sendmsg(s, &m, 0);
}

/* Receives up to room descriptors into fds: how many came, -1 on error; *trunc MSG_CTRUNC. */
static int recv_fds(int s, int *fds, int room, int *trunc)
{
	char byte;
	struct iovec v = {&byte, 1};
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(8 * sizeof(int))];
	} u;
	struct msghdr m = {.msg_iov = &v,
			   .msg_iovlen = 1,
			   .msg_control = u.buf,
			   .msg_controllen = room ? CMSG_SPACE((size_t)room * sizeof(int)) : 0};
	if (recvmsg(s, &m, MSG_CMSG_CLOEXEC) != 1)
		return -1;
	*trunc = (m.msg_flags & MSG_CTRUNC) != 0;
	int n = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			memcpy(fds + n, CMSG_DATA(c), (size_t)k * sizeof(int));
			n += k;
		}
	return n;
}

/* Descriptors to a child over a socket pair: a pipe's write end, a file of DIR, an eventfd,
 * stdout; the child uses each, and the parent sees what it did. */
static void pass(const char *dir)
{
	int sp[2], p[2];
	char file[300];
	snprintf(file, sizeof(file), "%s/passed.txt", dir);
	int f = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
	write(f, "file bytes", 10);
	lseek(f, 0, SEEK_SET);
	int ev = eventfd(0, 0);
	int mfd = memfd_create("passed", 0);
	write(mfd, "memfd bytes", 11);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0 || pipe(p) < 0 || f < 0 || ev < 0) {
		printf("pass: setup failed\n");
		return;
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		close(sp[0]);
		close(p[1]);
		int fds[8], trunc = 0;
		int n = recv_fds(sp[1], fds, 8, &trunc);
		if (n != 5 || trunc)
			_exit(10);
		char mb[16] = "";
		ssize_t mr = pread(fds[4], mb, sizeof(mb), 0);
		char mlink[64], mtarget[64] = "";
		snprintf(mlink, sizeof(mlink), "/proc/self/fd/%d", fds[4]);
		ssize_t ml = readlink(mlink, mtarget, sizeof(mtarget) - 1);
		dprintf(fds[3], "child: the passed memfd reads \"%.*s\", is %s\n",
			mr > 0 ? (int)mr : 0, mb, ml > 0 ? mtarget : "?");
		char buf[32] = "", link[64], target[300] = "";
		ssize_t r = read(fds[1], buf, sizeof(buf));
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fds[1]);
		ssize_t tl = readlink(link, target, sizeof(target) - 1);
		dprintf(fds[3], "child: the passed file reads \"%.*s\", is %s, close-on-exec %d\n",
			r > 0 ? (int)r : 0, buf,
			tl > 0 && strstr(target, "/passed.txt") ? ".../passed.txt" : target,
			fcntl(fds[1], F_GETFD) & FD_CLOEXEC);
		uint64_t one = 7;
		write(fds[2], &one, sizeof(one));
		write(fds[0], "through the passed pipe", 23);
		/* Three descriptors more, received with room for one (which holds two). */
		n = recv_fds(sp[1], fds, 1, &trunc);
		printf("child: %d of three with room for one, MSG_CTRUNC %d\n", n, trunc);
		fflush(stdout);
		_exit(0);
	}
	close(sp[1]);
	int out[5] = {p[1], f, ev, 1, mfd};
	long sent = send_fds(sp[0], out, 5);
	int sent_errno = errno;
	close(mfd); /* the child's copy holds it */
	close(p[1]);
	char buf[64] = "";
	ssize_t r = read(p[0], buf, sizeof(buf));
	/* Said once the child has printed its lines (before its write to the pipe). */
	errno = sent_errno;
	show("sendmsg of five descriptors", sent);
	printf("the parent reads: %.*s\n", r > 0 ? (int)r : 0, buf);
	uint64_t v = 0;
	read(ev, &v, sizeof(v));
	printf("the eventfd counts %llu\n", (unsigned long long)v);
	fflush(stdout); /* before the child can print again */
	int three[3] = {f, ev, p[0]};
	sent = send_fds(sp[0], three, 3);
	sent_errno = errno;
	int st;
	waitpid(pid, &st, 0); /* the child has printed */
	errno = sent_errno;
	show("sendmsg of three more", sent);
	printf("child: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	int bad = 999;
	show("sendmsg of a closed descriptor", send_fds(sp[0], &bad, 1));
	close(sp[0]);
	close(p[0]);
	close(f);
	close(ev);
	unlink(file);
	fflush(stdout);
}

static void bench_line(const char *op, int n, const struct timespec *a, const struct timespec *b)
{
	double ns = (double)(b->tv_sec - a->tv_sec) * 1e9 + (double)(b->tv_nsec - a->tv_nsec);
	fprintf(stderr, "%s %d %.0f\n", op, n, ns / n);
}

/* bench N: N one-byte round trips between a client and a server process over a socket bound
 * to a path ("usock_pingpong N ns", each), then N descriptors passed over it and closed
 * ("scm_rights_pass N ns"). */
static int bench(const char *dir, int n)
{
	char path[300];
	snprintf(path, sizeof(path), "%s/bench.sock", dir);
	unlink(path);
	struct sockaddr_un u;
	socklen_t len = addr(&u, path);
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&u, len) < 0 || listen(l, 1) < 0)
		return 1;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		int c = accept(l, NULL, NULL);
		char b;
		for (int i = 0; i < n; i++)
			if (read(c, &b, 1) != 1 || write(c, &b, 1) != 1)
				_exit(1);
		for (int i = 0; i < n; i++) {
			int fd, trunc;
			if (recv_fds(c, &fd, 1, &trunc) != 1)
				_exit(2);
			close(fd);
		}
		_exit(0);
	}
	close(l);
	int c = socket(AF_UNIX, SOCK_STREAM, 0);
	if (connect(c, (struct sockaddr *)&u, len) < 0)
		return 1;
	struct timespec a, b;
	char x = 'x';
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < n; i++)
		if (write(c, &x, 1) != 1 || read(c, &x, 1) != 1)
			return 1;
	clock_gettime(CLOCK_MONOTONIC, &b);
	bench_line("usock_pingpong", n, &a, &b);
	int p[2];
	if (pipe(p) < 0)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < n; i++)
		if (send_fds(c, &p[0], 1) != 1)
			return 1;
	close(c);
	int st;
	waitpid(pid, &st, 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	bench_line("scm_rights_pass", n, &a, &b);
	unlink(path);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

/* What recvfrom said of the sender, as show_name says a name. */
static void show_from(const char *what, ssize_t n, const struct sockaddr_un *u, socklen_t len)
{
	if (n < 0)
		printf("%s: %s\n", what, errname(errno));
	else if (len <= offsetof(struct sockaddr_un, sun_path))
		printf("%s: %zd bytes from an unnamed socket (%u)\n", what, n, (unsigned)len);
	else if (u->sun_path[0] == 0)
		printf("%s: %zd bytes from @%.*s (%u)\n", what, n, (int)(len - 3), u->sun_path + 1,
		       (unsigned)len);
	else
		printf("%s: %zd bytes from .../%s (%u)\n", what, n, strrchr(u->sun_path, '/') + 1,
		       (unsigned)(len - strlen(u->sun_path)));
	fflush(stdout);
}

/* Datagrams sent to an address without a connect, and their senders' names, as a syslog
 * daemon, sd_notify and a request/reply datagram server see them. */
static void datagrams(const char *dir)
{
	char spath[200], cpath[200];
	snprintf(spath, sizeof(spath), "%s/dsrv.sock", dir);
	snprintf(cpath, sizeof(cpath), "%s/dcli.sock", dir);
	unlink(spath);
	unlink(cpath);
	int srv = socket(AF_UNIX, SOCK_DGRAM, 0);
	struct sockaddr_un u, from;
	socklen_t len = addr(&u, spath), flen;
	bind(srv, (struct sockaddr *)&u, len);
	char buf[64];
	/* From an unbound socket, a path-bound one, an abstract one. */
	int c = socket(AF_UNIX, SOCK_DGRAM, 0);
	show("sendto from an unbound socket", sendto(c, "one", 3, 0, (struct sockaddr *)&u, len));
	flen = sizeof(from);
	ssize_t n = recvfrom(srv, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
	show_from("recvfrom", n, &from, flen);
	int cp = socket(AF_UNIX, SOCK_DGRAM, 0);
	struct sockaddr_un cu;
	socklen_t cl = addr(&cu, cpath);
	bind(cp, (struct sockaddr *)&cu, cl);
	show("sendto from a socket on a path", sendto(cp, "two", 3, 0, (struct sockaddr *)&u, len));
	flen = sizeof(from);
	n = recvfrom(srv, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
	show_from("recvfrom", n, &from, flen);
	/* The reply goes back to the name the request came from. */
	show("reply to that name", sendto(srv, "re", 2, 0, (struct sockaddr *)&from, flen));
	n = recv(cp, buf, sizeof(buf), 0);
	show_from("the client's recv", n, &from, 0);
	int ca = socket(AF_UNIX, SOCK_DGRAM, 0);
	struct sockaddr_un au;
	socklen_t al = addr(&au, "@usock-dgram-client");
	bind(ca, (struct sockaddr *)&au, al);
	struct iovec io = {.iov_base = "three", .iov_len = 5};
	struct msghdr m = {.msg_name = &u, .msg_namelen = len, .msg_iov = &io, .msg_iovlen = 1};
	show("sendmsg from an abstract name", sendmsg(ca, &m, 0));
	struct iovec rio = {.iov_base = buf, .iov_len = sizeof(buf)};
	struct msghdr rm = {
	    .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &rio, .msg_iovlen = 1};
	n = recvmsg(srv, &rm, 0);
	show_from("recvmsg", n, &from, rm.msg_namelen);
	/* A name cut to the room given, its whole length told. */
	sendto(cp, "four", 4, 0, (struct sockaddr *)&u, len);
	memset(&from, 0, sizeof(from));
	flen = 6;
	n = recvfrom(srv, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
	printf("recvfrom with room for 6: %zd bytes, length %u, '%.4s'\n", n, (unsigned)flen,
	       from.sun_path);
	/* Errors: no such path, a file, a stream socket with and without a peer. */
	struct sockaddr_un x;
	socklen_t xl = addr(&x, "/nonexistent-dir/x.sock");
	show("sendto a missing path", sendto(c, "x", 1, 0, (struct sockaddr *)&x, xl));
	char file[200];
	snprintf(file, sizeof(file), "%s/plainfile", dir);
	close(open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600));
	xl = addr(&x, file);
	show("sendto a regular file", sendto(c, "x", 1, 0, (struct sockaddr *)&x, xl));
	unlink(file);
	show("sendto with only a family", sendto(c, "x", 1, 0, (struct sockaddr *)&u, 2));
	int st = socket(AF_UNIX, SOCK_STREAM, 0);
	show("sendto on an unconnected stream socket",
	     sendto(st, "x", 1, 0, (struct sockaddr *)&u, len));
	int pair[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, pair);
	show("sendto on a connected stream socket",
	     sendto(pair[0], "x", 1, 0, (struct sockaddr *)&u, len));
	close(pair[0]);
	close(pair[1]);
	close(st);
	close(c);
	close(cp);
	close(ca);
	close(srv);
	unlink(spath);
	unlink(cpath);
}

/* SO_PEERCRED: a pair names its maker; a client sees its listener, the server its client (a
 * child here); a listener itself, and a socket with no peer. */
static void peercred(const char *dir)
{
	struct ucred c;
	socklen_t cl = sizeof(c);
	int pair[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, pair);
	getsockopt(pair[1], SOL_SOCKET, SO_PEERCRED, &c, &cl);
	printf("pair: pid %s, uid %s, length %u\n", c.pid == getpid() ? "mine" : "other",
	       c.uid == getuid() && c.gid == getgid() ? "mine" : "other", (unsigned)cl);
	close(pair[0]);
	close(pair[1]);
	char path[200];
	snprintf(path, sizeof(path), "%s/cred.sock", dir);
	unlink(path);
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un u;
	socklen_t len = addr(&u, path);
	bind(l, (struct sockaddr *)&u, len);
	listen(l, 4);
	cl = sizeof(c);
	getsockopt(l, SOL_SOCKET, SO_PEERCRED, &c, &cl);
	printf("listener: pid %s\n", c.pid == getpid() ? "mine" : "other");
	int sync[2];
	pipe(sync);
	pid_t kid = fork();
	if (kid == 0) {
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		connect(s, (struct sockaddr *)&u, len);
		struct ucred k;
		socklen_t kl = sizeof(k);
		getsockopt(s, SOL_SOCKET, SO_PEERCRED, &k, &kl);
		char line[64];
		int n = snprintf(line, sizeof(line), "client: its peer is %s\n",
				 k.pid == getppid() ? "the listener's process" : "another");
		write(sync[1], line, (size_t)n);
		char b;
		read(s, &b, 1);
		_exit(0);
	}
	close(sync[1]);
	int a = accept(l, NULL, NULL);
	cl = sizeof(c);
	getsockopt(a, SOL_SOCKET, SO_PEERCRED, &c, &cl);
	char line[64] = "";
	ssize_t n = read(sync[0], line, sizeof(line) - 1);
	line[n > 0 ? n : 0] = 0;
	printf("%sserver: its peer is %s\n", line,
	       c.pid == kid ? "the client's process" : "another");
	close(a);
	waitpid(kid, NULL, 0);
	int lone = socket(AF_UNIX, SOCK_STREAM, 0);
	cl = sizeof(c);
	show("unconnected", getsockopt(lone, SOL_SOCKET, SO_PEERCRED, &c, &cl));
	printf("unconnected: pid %d, uid %u, gid %u\n", c.pid, c.uid, c.gid);
	close(lone);
	close(l);
	unlink(path);
}

/* A receive timeout ends a blocking read or recv with EAGAIN, and a full send buffer's send
 * timeout a send; what is there is read at once. */
static void timeouts(void)
{
	int sp[2];
	char buf[256] = "x";
	socketpair(AF_UNIX, SOCK_STREAM, 0, sp);
	struct timeval tv = {.tv_usec = 100000};
	setsockopt(sp[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	show("read past SO_RCVTIMEO", read(sp[0], buf, sizeof(buf)));
	show("recv past SO_RCVTIMEO", recv(sp[0], buf, sizeof(buf), 0));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	printf("both waited their 100 ms: %s\n", ms >= 190 && ms < 5000 ? "yes" : "no");
	write(sp[1], "ab", 2);
	show("read of what is there", read(sp[0], buf, sizeof(buf)));
	setsockopt(sp[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	int sent = 0;
	while (send(sp[1], buf, sizeof(buf), MSG_DONTWAIT) > 0 && sent < 100000)
		sent++;
	show("send to a full socket past SO_SNDTIMEO", send(sp[1], buf, sizeof(buf), 0));
	close(sp[0]);
	close(sp[1]);
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[2], "bench") == 0)
		return bench(argv[1], atoi(argv[3]) > 0 ? atoi(argv[3]) : 2000);
	if (argc == 4 && strcmp(argv[2], "connect") == 0) {
		struct sockaddr_un u;
		socklen_t len = addr(&u, argv[3]);
		int c = socket(AF_UNIX, SOCK_STREAM, 0);
		show("connect", connect(c, (struct sockaddr *)&u, len));
		return 0;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: usock DIR [connect PATH|@NAME]\n");
		return 2;
	}
	char path[200], dpath[200], file[200], abs[64];
	snprintf(path, sizeof(path), "%s/srv.sock", argv[1]);
	snprintf(dpath, sizeof(dpath), "%s/dgram.sock", argv[1]);
	snprintf(file, sizeof(file), "%s/plain", argv[1]);
	snprintf(abs, sizeof(abs), "@usock-sample");
	unlink(path);
	unlink(dpath);

	client("a stream server on a path", path, SOCK_STREAM);
	client("a seqpacket server on an abstract name", abs, SOCK_SEQPACKET);
	client("a datagram server on a path", dpath, SOCK_DGRAM);

	/* A bound socket's names; a socket file outlives its socket. */
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un u;
	socklen_t len = addr(&u, path);
	show("bind over the old socket file", bind(s, (struct sockaddr *)&u, len));
	unlink(path);
	show("bind after unlink", bind(s, (struct sockaddr *)&u, len));
	show("bind again", bind(s, (struct sockaddr *)&u, len));
	show_name("its name", s, 0);
	show_name("its peer", s, 1);
	int s2 = socket(AF_UNIX, SOCK_STREAM, 0);
	show("connect before listen", connect(s2, (struct sockaddr *)&u, len));
	close(s2);
	show("listen", listen(s, 8));
	/* A blocking accept, woken by another thread's connect. */
	lsock = s;
	pthread_t t;
	pthread_create(&t, NULL, connect_later, path);
	int a = accept4(s, NULL, NULL, SOCK_CLOEXEC);
	show("accept woken by a thread", a);
	show_name("the accepted socket's name", a, 0);
	show_name("the accepted socket's peer", a, 1);
	pthread_join(t, NULL);
	close(a);
	fcntl(s, F_SETFL, O_NONBLOCK);
	show("accept with nobody there", accept(s, NULL, NULL));
	close(s);
	show("connect to the closed server",
	     connect(socket(AF_UNIX, SOCK_STREAM, 0), (struct sockaddr *)&u, len));
	unlink(path);

	/* An automatic name, and errors in Linux's order. */
	int d = socket(AF_UNIX, SOCK_DGRAM, 0);
	struct sockaddr_un none = {.sun_family = AF_UNIX};
	show("bind to no name", bind(d, (struct sockaddr *)&none, sizeof(sa_family_t)));
	len = sizeof(u);
	getsockname(d, (struct sockaddr *)&u, &len);
	printf("its automatic name: %u bytes, abstract %s\n", (unsigned)len,
	       u.sun_path[0] == 0 ? "yes" : "no");
	close(d);
	int e = socket(AF_UNIX, SOCK_STREAM, 0);
	show("listen unbound", listen(e, 1));
	len = addr(&u, "/nonexistent-dir/x.sock");
	show("connect to a missing path", connect(e, (struct sockaddr *)&u, len));
	show("bind in a missing directory", bind(e, (struct sockaddr *)&u, len));
	int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	close(fd);
	len = addr(&u, file);
	show("connect to a regular file", connect(e, (struct sockaddr *)&u, len));
	unlink(file);
	struct sockaddr_un bad = {.sun_family = AF_INET};
	show("bind of another family", bind(e, (struct sockaddr *)&bad, sizeof(bad)));
	show("bind too long", bind(e, (struct sockaddr *)&u, sizeof(u) + 1));
	show("getpeername unconnected", getpeername(e, (struct sockaddr *)&u, &len));
	show("socket of a bad type", socket(AF_UNIX, 77, 0));
	show("socket of a raw type", socket(AF_UNIX, SOCK_RAW, 0));
	show("socket of a bad protocol", socket(AF_UNIX, SOCK_STREAM, 9));
	show("bind on a pipe", bind(0, (struct sockaddr *)&none, sizeof(none)));
	close(e);
	datagrams(argv[1]);
	peercred(argv[1]);
	pass(argv[1]);
	timeouts();
	return 0;
}
