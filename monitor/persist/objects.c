/* The objects a program made, in a snapshot: pipes (the bytes in flight), eventfds (the count)
 * and epoll instances (the interest list). They have no path to reopen them by, so their own
 * state goes into the `objects` section, read from the host's objects without changing them:
 * a pipe's bytes through tee(2), an eventfd's count and an epoll's registrations (with the
 * events a fired EPOLLONESHOT left, and those on a descriptor closed since but whose file a
 * dup keeps open) from the host's /proc/self/fdinfo (Landlock lets the confined monitor read
 * it). A restore makes each object anew, then every handle of it (dup'd handles share one
 * object, as they did), then the registrations. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "calls.h"
#include "persist.h"

#ifndef TFD_IOC_SET_TICKS /* <linux/timerfd.h>'s, which clashes with <sys/timerfd.h> */
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

#define OBJ_EPOLL_MAX 65536u /* registrations of one instance */

int sbx_handle_is_object(const struct sbx_handle *h)
{
	return h->kind == SBX_H_HOST && h->stdio < 0 && !h->passed &&
	       (h->obj == SBX_O_PIPE || h->obj == SBX_O_EVENTFD || h->obj == SBX_O_EPOLL ||
		h->obj == SBX_O_SOCKET || h->obj == SBX_O_TIMERFD);
}

/* One object handle as the section holds it. like: the handle (lower) whose object this one
 * shares, -1 for the first handle of an object, which carries the object's state. */
struct obj_rec {
	int32_t num, like, oflags;
	uint32_t obj, cloexec;
	uint32_t end; /* a socket pair's end (only sockets' records carry it) */
};

/* The same object as handle b: a pipe by its inode, an eventfd, epoll instance or socket pair
 * by its id (anonymous inodes are one for all; a pair's two ends share theirs). */
static int same_object(const struct sbx_handle *a, const struct sbx_handle *b)
{
	if (a->obj != b->obj)
		return 0;
	if (a->obj != SBX_O_PIPE)
		return a->oid == b->oid;
	struct stat x, y;
	return fstat(a->fd, &x) == 0 && fstat(b->fd, &y) == 0 && x.st_ino == y.st_ino &&
	       x.st_dev == y.st_dev;
}

/* ---- saving ------------------------------------------------------------------------------ */

static void pipe_save(struct sbx_vm *vm, struct sbx_sio *io, int num)
{
	struct sbx_handle *fds = vm->proc.files->fds, *h = &fds[num];
	int cap = fcntl(h->fd, F_GETPIPE_SZ);
	if (cap <= 0 || (uint32_t)cap > SBX_PIPE_MAX) {
		sbx_sio_fail(io, "fd %d (a pipe): its size: %s", num, strerror(errno));
		return;
	}
	/* The bytes in flight, from a read end of it if the program has one (without one
	 * nobody can read them). */
	int rd = -1;
	for (int i = 0; i < SBX_MAX_FDS && rd < 0; i++)
		if (sbx_handle_is_object(&fds[i]) && same_object(&fds[i], h) &&
		    (fcntl(fds[i].fd, F_GETFL) & O_ACCMODE) == O_RDONLY)
			rd = fds[i].fd;
	uint8_t *buf = NULL;
	ssize_t n = 0;
	int t[2] = {-1, -1};
	if (rd >= 0) {
		buf = malloc((size_t)cap);
		if (!buf || pipe2(t, O_CLOEXEC | O_NONBLOCK) < 0 ||
		    fcntl(t[1], F_SETPIPE_SZ, cap) < cap) {
			sbx_sio_fail(io, "fd %d (a pipe): a pipe to copy its bytes: %s", num,
				     buf ? strerror(errno) : "out of memory");
			goto out;
		}
		/* tee duplicates them: the pipe keeps its bytes for the program. */
		n = tee(rd, t[1], (size_t)cap, SPLICE_F_NONBLOCK);
		if (n < 0 && errno == EAGAIN)
			n = 0;
		if (n < 0 || (n > 0 && read(t[0], buf, (size_t)n) != n)) {
			sbx_sio_fail(io, "fd %d (a pipe): copying its bytes: %s", num,
				     strerror(errno));
			goto out;
		}
	}
	uint32_t c = (uint32_t)cap, len = (uint32_t)n;
	sbx_sio_u32(io, &c);
	sbx_sio_u32(io, &len);
	if (len)
		sbx_sio_bytes(io, buf, len);
out:
	if (t[0] >= 0)
		close(t[0]);
	if (t[1] >= 0)
		close(t[1]);
	free(buf);
}

/* The host's /proc/self/fdinfo of host fd, NUL-terminated (malloc'd), or NULL. */
static char *fdinfo(int fd)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	int f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return NULL;
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	ssize_t n = 0;
	while (buf && (n = read(f, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (len + 1 == cap) {
			char *b = cap < (64u << 20) ? realloc(buf, cap * 2) : NULL;
			if (!b) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = b;
			cap *= 2;
		}
	}
	close(f);
	if (buf && n < 0) {
		free(buf);
		buf = NULL;
	}
	if (buf)
		buf[len] = 0;
	return buf;
}

static void eventfd_save(struct sbx_vm *vm, struct sbx_sio *io, int num)
{
	struct sbx_handle *h = &vm->proc.files->fds[num];
	unsigned long long count = 0;
	char *info = fdinfo(h->fd), *c = info ? strstr(info, "eventfd-count:") : NULL;
	if (!c || sscanf(c, "eventfd-count: %llx", &count) != 1) {
		sbx_sio_fail(io, "fd %d (an eventfd): its count: /proc/self/fdinfo/%d: %s", num,
			     h->fd, info ? "no eventfd-count" : strerror(errno));
		free(info);
		return;
	}
	free(info);
	uint64_t v = count;
	uint32_t sema = (uint32_t)h->sema;
	sbx_sio_u64(io, &v);
	sbx_sio_u32(io, &sema);
}

/* The handle behind a registration's host descriptor: that descriptor's, else (it was closed,
 * a dup keeps the file open, so Linux keeps the registration) one of the same inode. */
static int guest_fd_of(struct sbx_vm *vm, int tfd, unsigned long ino, unsigned sdev)
{
	struct sbx_handle *fds = vm->proc.files->fds;
	for (int i = 0; i < SBX_MAX_FDS; i++)
		if (fds[i].kind == SBX_H_HOST && fds[i].fd == tfd)
			return i;
	for (int i = 0; i < SBX_MAX_FDS; i++) {
		struct stat st;
		if (fds[i].kind == SBX_H_HOST && fstat(fds[i].fd, &st) == 0 && st.st_ino == ino &&
		    major(st.st_dev) == sdev >> 20 && minor(st.st_dev) == (sdev & 0xfffff))
			return i;
	}
	return -1;
}

static void epoll_save(struct sbx_vm *vm, struct sbx_sio *io, int num)
{
	struct sbx_handle *h = &vm->proc.files->fds[num];
	char *info = fdinfo(h->fd);
	if (!info) {
		sbx_sio_fail(io, "fd %d (an epoll instance): /proc/self/fdinfo/%d: %s", num, h->fd,
			     strerror(errno));
		return;
	}
	/* Two passes over the lines: the count first. */
	for (int pass = 0; pass < 2 && !io->err; pass++) {
		uint32_t n = 0;
		for (char *l = strstr(info, "tfd:"); l; l = strstr(l + 4, "tfd:")) {
			int tfd;
			unsigned events, sdev;
			unsigned long long data;
			long long pos;
			unsigned long ino;
			if (sscanf(l, "tfd: %d events: %x data: %llx pos:%lli ino:%lx sdev:%x",
				   &tfd, &events, &data, &pos, &ino, &sdev) != 6)
				continue;
			int32_t g = guest_fd_of(vm, tfd, ino, sdev);
			if (g < 0)
				continue; /* a file no handle of this process holds */
			n++;
			if (pass == 0)
				continue;
			uint32_t ev = events;
			uint64_t d = data;
			sbx_sio_i32(io, &g);
			sbx_sio_u32(io, &ev);
			sbx_sio_u64(io, &d);
		}
		if (pass == 0)
			sbx_sio_u32(io, &n);
	}
	free(info);
}

#define OBJ_SOCK_MAX (4u << 20) /* bytes queued at one end of a socket pair */

#define OBJ_DGRAM_MAX 4096 /* datagrams queued at one end */

/* A 0 peeked at a socket of this type: a message of no bytes, or (sequenced packets only)
 * the end of what its peer sent, once it has shut down or gone. */
static int empty_message(int fd, int type)
{
	struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
	return type == SOCK_DGRAM || poll(&p, 1, 0) != 1 || !(p.revents & (POLLRDHUP | POLLHUP));
}

/* The datagrams queued at fd, each as its length (u32) and bytes, into buf: peeked one after
 * the other with a peek offset (SO_PEEK_OFF), so they stay. The bytes, -errno, or -ENOMSG for
 * a message of no bytes: a peek with an offset passes over one the program peeked already, so
 * the walk could not be sure to see them all. */
static ssize_t dgrams_peek(int fd, int type, uint8_t *buf, size_t cap)
{
	int zero = 0, off = -1, count = 0;
	if (setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) < 0)
		return -errno;
	size_t n = 0;
	ssize_t r = 0;
	for (;; count++) {
		if (n + 4 >= cap) {
			r = -E2BIG;
			break;
		}
		r = recv(fd, buf + n + 4, cap - n - 4, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC);
		if (r < 0) {
			r = errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
			break;
		}
		if ((size_t)r > cap - n - 4) {
			r = -E2BIG;
			break;
		}
		uint32_t len = (uint32_t)r;
		r = 0;
		if (len == 0) {
			r = empty_message(fd, type) ? -ENOMSG : 0;
			break; /* or the end of a sequenced-packet stream */
		}
		if (count == OBJ_DGRAM_MAX) {
			r = -E2BIG;
			break;
		}
		memcpy(buf + n, &len, 4);
		n += 4 + len;
	}
	setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off));
	return r < 0 ? r : (ssize_t)n;
}

/* A socket pair: its type with each end's shutdown (bits 8-9 end 0's, 10-11 end 1's) and, for
 * each end a handle of the program holds, what is queued to be read there, peeked (it stays):
 * a stream's bytes, or each datagram (or sequenced packet) as its length and bytes. */
static void socket_save(struct sbx_vm *vm, struct sbx_sio *io, int num)
{
	struct sbx_handle *fds = vm->proc.files->fds, *h = &fds[num];
	int type = 0;
	socklen_t tl = sizeof(type);
	if (getsockopt(h->fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0) {
		sbx_sio_fail(io, "fd %d (a socket pair): its type: %s", num, strerror(errno));
		return;
	}
	uint32_t t = (uint32_t)type & 0xff;
	for (int i = 0; i < SBX_MAX_FDS; i++)
		if (sbx_handle_is_object(&fds[i]) && same_object(&fds[i], h))
			t |= (uint32_t)(fds[i].shut & 3) << (8 + 2 * (fds[i].end & 1));
	sbx_sio_u32(io, &t);
	uint8_t *buf = malloc(OBJ_SOCK_MAX);
	if (!buf) {
		sbx_sio_fail(io, "out of memory");
		return;
	}
	for (int e = 0; e < 2 && !io->err; e++) {
		int fd = -1;
		for (int i = 0; i < SBX_MAX_FDS && fd < 0; i++)
			if (sbx_handle_is_object(&fds[i]) && same_object(&fds[i], h) &&
			    fds[i].end == e)
				fd = fds[i].fd;
		ssize_t n = 0;
		if (fd >= 0 && type != SOCK_STREAM) {
			n = dgrams_peek(fd, type, buf, OBJ_SOCK_MAX);
			if (n < 0) {
				sbx_sio_fail(
				    io, "fd %d (a socket pair): its queued messages: %s", num,
				    n == -E2BIG ? "more than 4 MiB or 4096 of them"
				    : n == -ENOMSG
					? "one of no bytes, which a snapshot cannot hold yet"
					: strerror((int)-n));
				break;
			}
		}
		if (fd >= 0 && type == SOCK_STREAM) {
			n = recv(fd, buf, OBJ_SOCK_MAX, MSG_PEEK | MSG_DONTWAIT);
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				n = 0;
			if (n < 0 || (size_t)n == OBJ_SOCK_MAX) {
				sbx_sio_fail(io, "fd %d (a socket pair): its queued bytes: %s", num,
					     n < 0 ? strerror(errno) : "more than 4 MiB");
				break;
			}
		}
		uint32_t len = (uint32_t)n;
		sbx_sio_u32(io, &len);
		if (len)
			sbx_sio_bytes(io, buf, len);
	}
	free(buf);
}

/* A timerfd: its clock, what is left of its timer and its interval (relative: the guest's
 * clocks go on from the snapshot, the host's do not), and how many expiries are unread. */
static void timerfd_save(struct sbx_vm *vm, struct sbx_sio *io, int num)
{
	struct sbx_handle *h = &vm->proc.files->fds[num];
	struct itimerspec it;
	unsigned long long ticks = 0;
	/* gettime first: an interval timer that fired counts the expiries since its first only
	 * when it is next looked at (read or gettime), which re-arms it. */
	int ok = timerfd_gettime(h->fd, &it) == 0;
	char *info = ok ? fdinfo(h->fd) : NULL, *c = info ? strstr(info, "ticks:") : NULL;
	ok = c && sscanf(c, "ticks: %llu", &ticks) == 1;
	free(info);
	/* As much as a load takes: room below 2^32 for the expiries still to come. */
	if (!ok || ticks > (1u << 31)) {
		sbx_sio_fail(io, "fd %d (a timerfd): %s", num,
			     ok ? "more than 2^31 expiries unread" : "its timer cannot be read");
		return;
	}
	uint32_t clock = (uint32_t)h->clock, pending = (uint32_t)ticks;
	uint64_t value =
		     (uint64_t)it.it_value.tv_sec * 1000000000ull + (uint64_t)it.it_value.tv_nsec,
		 interval = (uint64_t)it.it_interval.tv_sec * 1000000000ull +
			    (uint64_t)it.it_interval.tv_nsec;
	sbx_sio_u32(io, &clock);
	sbx_sio_u32(io, &pending);
	sbx_sio_u64(io, &value);
	sbx_sio_u64(io, &interval);
}

/* ---- loading ------------------------------------------------------------------------------ */

/* What a restore has made so far: per handle number, the object's own fds (both ends of a
 * pipe), and the registrations still to make. */
struct obj_load {
	int end[SBX_MAX_FDS][2];
	int sema[SBX_MAX_FDS];
	int clock[SBX_MAX_FDS];
	int shut[SBX_MAX_FDS][2];	/* a socket pair's ends' shutdowns */
	uint8_t queued[SBX_MAX_FDS][2]; /* bytes wait at a socket pair's end */
	struct {
		int32_t ep, fd;
		uint32_t events;
		uint64_t data;
	} * reg;
	uint32_t nreg, capreg;
};

/* The handle's own host fd: a dup of its object's (the read or write end of a pipe). */
static int obj_host(const struct obj_rec *r, struct obj_load *L, struct sbx_sio *io)
{
	int base = r->like >= 0 ? r->like : r->num;
	int src = L->end[base][0];
	if ((r->obj == SBX_O_PIPE && (r->oflags & O_ACCMODE) == O_WRONLY) ||
	    (r->obj == SBX_O_SOCKET && r->end == 1))
		src = L->end[base][1];
	int fd = fcntl(src, F_DUPFD_CLOEXEC, 3);
	if (fd < 0 || fcntl(fd, F_SETFL, r->oflags & O_NONBLOCK) < 0) {
		sbx_sio_fail(io, "fd %d: %s", r->num, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* The next len bytes of the section written to fd (non-blocking: they fit, as they did): a
 * stream's as they come, or (framed) messages as dgrams_peek wrote them, each sent whole. */
static void refill(struct sbx_sio *io, int fd, uint32_t len, int32_t num, int framed)
{
	if (!len)
		return;
	uint8_t *bytes = malloc(len);
	if (!bytes) {
		sbx_sio_fail(io, "out of memory");
		return;
	}
	sbx_sio_bytes(io, bytes, len);
	for (uint32_t off = 0, count = 0; !io->err && off < len; count++) {
		if (framed) {
			uint32_t n;
			/* What dgrams_peek can save again: no empty message, at most
			 * OBJ_DGRAM_MAX of them. */
			if (len - off < 4 || (memcpy(&n, bytes + off, 4), n > len - off - 4) ||
			    !n || count == OBJ_DGRAM_MAX) {
				sbx_sio_fail(io, "fd %d: a malformed queued message at byte %u",
					     num, off);
				break;
			}
			if (send(fd, bytes + off + 4, n, MSG_DONTWAIT | MSG_NOSIGNAL) !=
			    (ssize_t)n) {
				sbx_sio_fail(io, "fd %d: putting a queued message back: %s", num,
					     strerror(errno));
				break;
			}
			off += 4 + n;
			continue;
		}
		ssize_t w = write(fd, bytes + off, len - off);
		if (w <= 0) {
			sbx_sio_fail(io, "fd %d: refilling it: %s", num,
				     w < 0 ? strerror(errno) : "no room");
			break;
		}
		off += (uint32_t)w;
	}
	free(bytes);
}

static void pipe_load(struct sbx_sio *io, const struct obj_rec *r, struct obj_load *L)
{
	uint32_t cap = 0, len = 0;
	sbx_sio_u32(io, &cap);
	sbx_sio_u32(io, &len);
	if (io->err)
		return;
	if (cap < 4096 || cap > SBX_PIPE_MAX || len > cap) {
		sbx_sio_fail(io, "fd %d: a pipe of %u bytes holding %u", r->num, cap, len);
		return;
	}
	int p[2];
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK | (r->oflags & O_DIRECT)) < 0) {
		sbx_sio_fail(io, "fd %d: pipe2: %s", r->num, strerror(errno));
		return;
	}
	L->end[r->num][0] = p[0];
	L->end[r->num][1] = p[1];
	if (fcntl(p[1], F_SETPIPE_SZ, (int)cap) < (int)len) {
		sbx_sio_fail(io, "fd %d: a pipe of %u bytes: %s", r->num, cap, strerror(errno));
		return;
	}
	refill(io, p[1], len, r->num, 0);
}

static void eventfd_load(struct sbx_sio *io, const struct obj_rec *r, struct obj_load *L)
{
	uint64_t count = 0;
	uint32_t sema = 0;
	sbx_sio_u64(io, &count);
	sbx_sio_u32(io, &sema);
	if (io->err)
		return;
	if (count == UINT64_MAX || sema > 1) {
		sbx_sio_fail(io, "fd %d: an eventfd count of %llu (semaphore %u)", r->num,
			     (unsigned long long)count, sema);
		return;
	}
	L->sema[r->num] = (int)sema;
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | (sema ? EFD_SEMAPHORE : 0));
	if (fd < 0 || (count && write(fd, &count, 8) != 8)) {
		sbx_sio_fail(io, "fd %d: eventfd: %s", r->num, strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	L->end[r->num][0] = fd;
}

static void epoll_load(struct sbx_sio *io, const struct obj_rec *r, struct obj_load *L)
{
	uint32_t n = 0;
	sbx_sio_u32(io, &n);
	if (!io->err && n > OBJ_EPOLL_MAX)
		sbx_sio_fail(io, "fd %d: %u registrations (limit %u)", r->num, n, OBJ_EPOLL_MAX);
	if (io->err)
		return;
	int fd = epoll_create1(EPOLL_CLOEXEC);
	if (fd < 0) {
		sbx_sio_fail(io, "fd %d: epoll_create1: %s", r->num, strerror(errno));
		return;
	}
	L->end[r->num][0] = fd;
	for (uint32_t i = 0; i < n && !io->err; i++) {
		int32_t t = -1;
		uint32_t events = 0;
		uint64_t data = 0;
		sbx_sio_i32(io, &t);
		sbx_sio_u32(io, &events);
		sbx_sio_u64(io, &data);
		if (io->err)
			return;
		if (L->nreg == L->capreg) {
			uint32_t c = L->capreg ? L->capreg * 2 : 16;
			void *m = realloc(L->reg, c * sizeof(*L->reg));
			if (!m) {
				sbx_sio_fail(io, "out of memory");
				return;
			}
			L->reg = m;
			L->capreg = c;
		}
		L->reg[L->nreg].ep = r->num;
		L->reg[L->nreg].fd = t;
		L->reg[L->nreg].events = events;
		L->reg[L->nreg++].data = data;
	}
}

static void socket_load(struct sbx_sio *io, const struct obj_rec *r, struct obj_load *L)
{
	uint32_t type = 0;
	sbx_sio_u32(io, &type);
	if (io->err)
		return;
	uint32_t shut = type >> 8;
	type &= 0xff;
	if ((type != SOCK_STREAM && type != SOCK_DGRAM && type != SOCK_SEQPACKET) || shut > 15) {
		sbx_sio_fail(io, "fd %d: a socket pair of type 0x%x", r->num, type | shut << 8);
		return;
	}
	int sv[2];
	if (socketpair(AF_UNIX, (int)type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0) {
		sbx_sio_fail(io, "fd %d: socketpair: %s", r->num, strerror(errno));
		return;
	}
	L->end[r->num][0] = sv[0];
	L->end[r->num][1] = sv[1];
	for (int e = 0; e < 2 && !io->err; e++) {
		uint32_t len = 0;
		sbx_sio_u32(io, &len);
		if (io->err || !len)
			continue;
		if (len >= OBJ_SOCK_MAX) {
			sbx_sio_fail(io, "fd %d: %u bytes queued at a socket pair's end", r->num,
				     len);
			return;
		}
		/* Written into the other end, they wait at this one. */
		refill(io, sv[1 - e], len, r->num, type != SOCK_STREAM);
		L->queued[r->num][e] = 1;
	}
	/* Shut down once the bytes are in: a write end shut would refuse them. */
	for (int e = 0; e < 2 && !io->err; e++) {
		uint32_t b = shut >> (2 * e) & 3;
		if (b && shutdown(sv[e], b == 3		    ? SHUT_RDWR
					 : b == SBX_SHUT_WR ? SHUT_WR
							    : SHUT_RD) < 0)
			sbx_sio_fail(io, "fd %d: shutdown: %s", r->num, strerror(errno));
		L->shut[r->num][e] = (int)b;
	}
}

static void timerfd_load(struct sbx_sio *io, const struct obj_rec *r, struct obj_load *L)
{
	uint32_t clock = 0, pending = 0;
	uint64_t value = 0, interval = 0;
	sbx_sio_u32(io, &clock);
	sbx_sio_u32(io, &pending);
	sbx_sio_u64(io, &value);
	sbx_sio_u64(io, &interval);
	if (io->err)
		return;
	const uint64_t max = 1000000000ull * 3600 * 24 * 365 * 100; /* a century */
	/* Unread expiries: room left below the 2^32 a save can hold for those still to come. */
	if ((clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC && clock != CLOCK_BOOTTIME) ||
	    value > max || interval > max || pending > (1u << 31)) {
		sbx_sio_fail(io,
			     "fd %d: a timerfd on clock %u (%u unread, %llu ns left, every %llu)",
			     r->num, clock, pending, (unsigned long long)value,
			     (unsigned long long)interval);
		return;
	}
	int fd = timerfd_create((int)clock, TFD_CLOEXEC | TFD_NONBLOCK);
	if (fd < 0) {
		sbx_sio_fail(io, "fd %d: timerfd_create: %s", r->num, strerror(errno));
		return;
	}
	L->end[r->num][0] = fd;
	L->clock[r->num] = (int)clock;
	/* A periodic timer is always armed: none left is one due now (gettime says 0 for a
	 * timer past its time whose expiry the host has not counted yet), not a disarmed one. */
	if (interval && !value)
		value = 1;
	struct itimerspec it = {
	    .it_value = {(time_t)(value / 1000000000ull), (long)(value % 1000000000ull)},
	    .it_interval = {(time_t)(interval / 1000000000ull), (long)(interval % 1000000000ull)}};
	if ((value || interval) && timerfd_settime(fd, 0, &it, NULL) < 0) {
		sbx_sio_fail(io, "fd %d: timerfd_settime: %s", r->num, strerror(errno));
		return;
	}
	/* The unread count after the arming, which clears it: what CRIU does. A kernel without
	 * CONFIG_CHECKPOINT_RESTORE has no such ioctl: one unread expiry is then one at once
	 * (the next comes an interval later), more cannot be made. */
	uint64_t ticks = pending;
	if (!pending || ioctl(fd, TFD_IOC_SET_TICKS, &ticks) == 0)
		return;
	if (pending > 1) {
		sbx_sio_fail(io,
			     "fd %d: a timerfd with %u expiries unread, which this host's kernel "
			     "cannot set (TFD_IOC_SET_TICKS: %s)",
			     r->num, pending, strerror(errno));
		return;
	}
	it.it_value = (struct timespec){0, 1};
	if (timerfd_settime(fd, 0, &it, NULL) < 0)
		sbx_sio_fail(io, "fd %d: timerfd_settime: %s", r->num, strerror(errno));
}

/* The registrations, once every handle is in place (they may name any of them). */
static void epoll_register(struct sbx_vm *vm, struct sbx_sio *io, struct obj_load *L)
{
	struct sbx_handle *fds = vm->proc.files->fds;
	for (uint32_t i = 0; i < L->nreg && !io->err; i++) {
		int32_t ep = L->reg[i].ep, t = L->reg[i].fd;
		if (t < 0 || t >= SBX_MAX_FDS || fds[t].kind != SBX_H_HOST || t == ep) {
			sbx_sio_fail(io, "fd %d: a registration of fd %d, which is no handle", ep,
				     t);
			return;
		}
		struct epoll_event ev = {.events = L->reg[i].events, .data.u64 = L->reg[i].data};
		if (epoll_ctl(fds[ep].fd, EPOLL_CTL_ADD, fds[t].fd, &ev) < 0) {
			sbx_sio_fail(io, "fd %d: watching fd %d again: %s", ep, t, strerror(errno));
			return;
		}
	}
}

/* Does a handle hold end e of the socket pair whose first handle is fds[first]? */
static int socket_end_held(const struct sbx_handle *fds, int first, int e)
{
	for (int i = first; i < SBX_MAX_FDS; i++)
		if (sbx_handle_is_object(&fds[i]) && same_object(&fds[i], &fds[first]) &&
		    fds[i].end == e)
			return 1;
	return 0;
}

/* One record: checked against what came before it, then its object (if first) and handle. */
static void obj_load_one(struct sbx_vm *vm, struct sbx_sio *io, struct obj_rec *r,
			 struct obj_load *L, int32_t prev)
{
	struct sbx_handle *fds = vm->proc.files->fds;
	int acc = r->oflags & O_ACCMODE;
	if (r->num <= prev || r->num >= SBX_MAX_FDS || fds[r->num].kind != SBX_H_FREE ||
	    (r->obj != SBX_O_PIPE && r->obj != SBX_O_EVENTFD && r->obj != SBX_O_EPOLL &&
	     r->obj != SBX_O_SOCKET && r->obj != SBX_O_TIMERFD) ||
	    r->end > 1 || (r->obj == SBX_O_PIPE && acc != O_RDONLY && acc != O_WRONLY) ||
	    (r->like >= 0 && (r->like >= r->num || !sbx_handle_is_object(&fds[r->like]) ||
			      fds[r->like].obj != r->obj || L->end[r->like][0] < 0)) ||
	    r->like < -1) {
		sbx_sio_fail(io, "fd %d: malformed object handle (%u, like fd %d)", r->num, r->obj,
			     r->like);
		return;
	}
	if (r->like < 0) {
		if (r->obj == SBX_O_PIPE)
			pipe_load(io, r, L);
		else if (r->obj == SBX_O_EVENTFD)
			eventfd_load(io, r, L);
		else if (r->obj == SBX_O_SOCKET)
			socket_load(io, r, L);
		else if (r->obj == SBX_O_TIMERFD)
			timerfd_load(io, r, L);
		else
			epoll_load(io, r, L);
	}
	if (io->err)
		return;
	int fd = obj_host(r, L, io);
	if (fd < 0)
		return;
	struct sbx_handle h = {.kind = SBX_H_HOST,
			       .fd = fd,
			       .obj = (enum sbx_handle_obj)r->obj,
			       .cloexec = r->cloexec != 0,
			       .writable = r->obj != SBX_O_EPOLL && r->obj != SBX_O_TIMERFD &&
					   !(r->obj == SBX_O_PIPE && acc == O_RDONLY),
			       .stdio = -1,
			       .may_block = r->obj == SBX_O_EPOLL ? 1 : 2};
	h.oid = r->like >= 0 ? fds[r->like].oid : ++vm->proc.files->next_oid;
	h.end = (int)r->end;
	h.shut = L->shut[r->like >= 0 ? r->like : r->num][r->end & 1];
	h.clock = L->clock[r->like >= 0 ? r->like : r->num];
	h.sema = L->sema[r->like >= 0 ? r->like : r->num];
	fds[r->num] = h;
}

int sbx_state_objects(struct sbx_vm *vm, struct sbx_sio *io)
{
	struct sbx_handle *fds = vm->proc.files->fds;
	uint32_t n = 0;
	for (int i = 0; i < SBX_MAX_FDS && !io->load; i++)
		n += sbx_handle_is_object(&fds[i]);
	sbx_sio_u32(io, &n);
	if (io->load && !io->err && (n == 0 || n > SBX_MAX_FDS))
		sbx_sio_fail(io, "%u object handles (limit %d)", n, SBX_MAX_FDS);
	struct obj_load *L = io->load ? calloc(1, sizeof(*L)) : NULL;
	if (io->load && !L) {
		sbx_sio_fail(io, "out of memory");
		return io->err;
	}
	for (int i = 0; L && i < SBX_MAX_FDS; i++)
		L->end[i][0] = L->end[i][1] = -1;
	int32_t prev = -1;
	for (uint32_t k = 0, i = 0; k < n && !io->err; k++) {
		struct obj_rec r = {0};
		if (!io->load) {
			while (!sbx_handle_is_object(&fds[i]))
				i++;
			struct sbx_handle *h = &fds[i];
			r.num = (int32_t)i++;
			r.like = -1;
			for (int j = 0; j < r.num && r.like < 0; j++)
				if (sbx_handle_is_object(&fds[j]) && same_object(&fds[j], h))
					r.like = j;
			r.oflags = fcntl(h->fd, F_GETFL) & (O_ACCMODE | O_NONBLOCK | O_DIRECT);
			r.obj = (uint32_t)h->obj;
			r.cloexec = (uint32_t)h->cloexec;
			r.end = (uint32_t)h->end;
		}
		sbx_sio_i32(io, &r.num);
		sbx_sio_i32(io, &r.like);
		sbx_sio_i32(io, &r.oflags);
		sbx_sio_u32(io, &r.obj);
		sbx_sio_u32(io, &r.cloexec);
		if (r.obj == SBX_O_SOCKET)
			sbx_sio_u32(io, &r.end);
		if (io->err)
			break;
		if (io->load) {
			obj_load_one(vm, io, &r, L, prev);
			prev = r.num;
			continue;
		}
		if (r.like >= 0)
			continue;
		if (r.obj == SBX_O_PIPE)
			pipe_save(vm, io, r.num);
		else if (r.obj == SBX_O_EVENTFD)
			eventfd_save(vm, io, r.num);
		else if (r.obj == SBX_O_SOCKET)
			socket_save(vm, io, r.num);
		else if (r.obj == SBX_O_TIMERFD)
			timerfd_save(vm, io, r.num);
		else
			epoll_save(vm, io, r.num);
	}
	if (L) {
		if (!io->err)
			epoll_register(vm, io, L);
		/* Bytes waiting at an end no handle holds: a save writes none there, and closing
		 * that end would reset the other (ECONNRESET), which no save can hold. */
		for (int i = 0; i < SBX_MAX_FDS && !io->err; i++)
			for (int e = 0; e < 2 && !io->err; e++)
				if (L->queued[i][e] && !socket_end_held(fds, i, e))
					sbx_sio_fail(io,
						     "fd %d: bytes queued at a socket pair's end "
						     "no handle holds",
						     i);
		/* The handles hold dups; the objects' own fds go. */
		for (int i = 0; i < SBX_MAX_FDS; i++)
			for (int e = 0; e < 2; e++)
				if (L->end[i][e] >= 0)
					close(L->end[i][e]);
		free(L->reg);
		free(L);
	}
	return io->err;
}
