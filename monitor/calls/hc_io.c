/* Hypercalls on an open handle. The guest names handles by number; only the monitor holds the
 * host fds behind them. Every buffer is checked against guest RAM before the host call. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <termios.h>
#include <unistd.h>

#include "calls.h"

/* Linux caps a single read/write at this many bytes too. */
#define SBX_RW_MAX 0x7ffff000ull

static struct sbx_handle *host_handle(struct sbx_vm *vm, int64_t fd, int64_t *err)
{
	struct sbx_handle *h = sbx_fd_get(vm, fd);
	if (!h) {
		*err = -EBADF;
		return NULL;
	}
	if (h->kind != SBX_H_HOST) {
		*err = -EISDIR;
		return NULL;
	}
	return h;
}

#define SBX_VFLAGS (O_APPEND | O_NONBLOCK)

/* The guest's own status flags on a stdio handle, applied by the monitor. Returns 0 or
 * -EAGAIN. */
static int64_t stdio_flags(const struct sbx_handle *h, int is_write, int positioned)
{
	if (h->stdio < 0 || !h->vflags)
		return 0;
	if (is_write && (h->vflags & O_APPEND) && !positioned)
		lseek(h->fd, 0, SEEK_END); /* a pipe or terminal has no end: ESPIPE, ignored */
	if (h->vflags & O_NONBLOCK) {
		struct pollfd p = {.fd = h->fd, .events = is_write ? POLLOUT : POLLIN};
		if (poll(&p, 1, 0) == 0)
			return -EAGAIN;
	}
	return 0;
}

struct polls {
	struct pollfd *p;
	nfds_t n;
};

static int poll_slice(void *ctx, int ms)
{
	struct polls *w = ctx;
	return poll(w->p, w->n, ms);
}

/* O_NONBLOCK as the guest sees it: a stdio handle's own (the host's description is the
 * user's), else the host descriptor's status flags `fl` (-1: unknown, blocking). */
int sbx_handle_nonblocking(const struct sbx_handle *h, int fl)
{
	return h->stdio >= 0 ? (h->vflags & O_NONBLOCK) != 0 : fl >= 0 && (fl & O_NONBLOCK);
}

/* A read or write of a pipe, socket or terminal that would block waits here, in slices, and
 * not in the host call: a kick (a signal for the process, a pause, a stop) that lands just
 * before a blocking call enters the host kernel is lost, and the call would wait for its data
 * however long. 1: it is ready; 0: go on with the call (non-blocking, a terminal's VTIME
 * passed, or an error the call reports), -EINTR: something came that the guest kernel must
 * see (it makes the call again unless a signal is there to handle), or -EAGAIN: a socket's
 * timeout passed. */
static int64_t wait_ready(struct sbx_vm *vm, const struct sbx_handle *h, int fd, int is_write,
			  int sock)
{
	struct pollfd p = {.fd = fd, .events = is_write ? POLLOUT : POLLIN};
	if (poll(&p, 1, 0) != 0)
		return 1;
	if (sock > 0 && (sock & MSG_DONTWAIT))
		return 0;
	/* Not open for this direction (a pipe's other end): EBADF at once, as Linux says. */
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || (fl & O_ACCMODE) == (is_write ? O_RDONLY : O_WRONLY))
		return 0;
	if (sbx_handle_nonblocking(h, fl))
		return 0;
	/* A terminal read without ICANON and with VMIN 0 returns what there is at once, or
	 * after VTIME tenths of a second, where poll sees nothing to read: the wait lasts VTIME
	 * at most. A master's modes are its slave's: not its own reads'. */
	struct termios tio;
	int timeout = -1;
	if (!is_write && !(h->obj == SBX_O_PTY && h->end == 0) && ioctl(fd, TCGETS, &tio) == 0 &&
	    !(tio.c_lflag & ICANON) && tio.c_cc[VMIN] == 0) {
		if (tio.c_cc[VTIME] == 0)
			return 0;
		timeout = tio.c_cc[VTIME] * 100;
	}
	/* A socket's SO_RCVTIMEO or SO_SNDTIMEO ends the wait with EAGAIN, as it ends Linux's. */
	struct timeval tv;
	socklen_t tl = sizeof(tv);
	int timed =
	    (sock >= 0 || h->obj == SBX_O_SOCKET || h->obj == SBX_O_USOCK) &&
	    getsockopt(fd, SOL_SOCKET, is_write ? SO_SNDTIMEO : SO_RCVTIMEO, &tv, &tl) == 0 &&
	    (tv.tv_sec > 0 || tv.tv_usec > 0);
	if (timed && tv.tv_sec >= INT_MAX / 1000 - 1)
		timed = 0; /* weeks: the host call's own timeout is the one that holds */
	else if (timed)
		timeout = (int)(tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000);
	struct polls one = {&p, 1};
	int r = sbx_wait_sliced(vm, timeout, poll_slice, &one);
	if (r < 0 && errno == EINTR)
		return -EINTR;
	if (r == 0 && timed)
		return -EAGAIN;
	return r > 0;
}

/* The host call of a read or write. `nowait`: tried without waiting, RWF_NOWAIT (a pipe, an
 * eventfd; a terminal says EOPNOTSUPP) or MSG_DONTWAIT (a socket). Positioned: one buffer
 * (PREAD/PWRITE), and the calls the seccomp allowlist has. */
static ssize_t io_call(int fd, struct iovec *iov, int cnt, int is_write, int positioned,
		       int64_t off, int sock, struct msghdr *mh, int nowait)
{
	if (positioned)
		return is_write ? pwrite(fd, iov[0].iov_base, iov[0].iov_len, off)
				: pread(fd, iov[0].iov_base, iov[0].iov_len, off);
	if (sock >= 0) {
		/* A socket's own send or receive; the monitor takes no SIGPIPE of the guest's. */
		struct msghdr m0 = {0}, *m = mh ? mh : &m0;
		m->msg_iov = iov;
		m->msg_iovlen = (size_t)cnt;
		int dw = nowait ? MSG_DONTWAIT : 0;
		return is_write ? sendmsg(fd, m, sock | MSG_NOSIGNAL | dw)
				: recvmsg(fd, m, sock | MSG_CMSG_CLOEXEC | dw);
	}
	if (nowait)
		return is_write ? pwritev2(fd, iov, cnt, -1, RWF_NOWAIT)
				: preadv2(fd, iov, cnt, -1, RWF_NOWAIT);
	return is_write ? writev(fd, iov, cnt) : readv(fd, iov, cnt);
}

/* Calls Linux refuses before it would wait, which a descriptor that is not ready must not make
 * wait: an eventfd's or timerfd's transfer of fewer than 8 bytes, an eventfd write of 2^64-1
 * (EINVAL). Reads are tried first (io_call's nowait); this covers the writes, and the reads of a
 * kernel without RWF_NOWAIT for them. */
static int fails_at_once(const struct sbx_handle *h, const struct iovec *iov, int cnt,
			 uint64_t total, int is_write)
{
	if (h->obj != SBX_O_EVENTFD && h->obj != SBX_O_TIMERFD)
		return 0;
	if (total < 8)
		return 1;
	if (!is_write || h->obj != SBX_O_EVENTFD)
		return 0;
	/* A write goes a buffer at a time, each its own count. */
	uint64_t v;
	if (cnt < 1 || iov[0].iov_len < 8)
		return 1;
	memcpy(&v, iov[0].iov_base, sizeof(v));
	return v == UINT64_MAX;
}

/* A stream socket's SO_RCVLOWAT above 1: a receive waits for that much, which a try without
 * waiting would not. */
static int low_water(const struct sbx_handle *h, int fd, int sock)
{
	int v = 0;
	socklen_t l = sizeof(v);
	return (sock >= 0 || h->obj == SBX_O_SOCKET || h->obj == SBX_O_USOCK) &&
	       getsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, &l) == 0 && v > 1;
}

/* Whether a read may be tried without waiting (io_call's nowait) in place of a wait: not a
 * MSG_WAITALL receive nor one under a low-water mark, which a try would answer short. */
static int tryable(const struct sbx_handle *h, int fd, int sock)
{
	return !(sock > 0 && (sock & MSG_WAITALL)) && !low_water(h, fd, sock);
}

/* A read or write of a descriptor that may block. A read is tried without waiting, and waits
 * (in slices) only while there is nothing yet, then tries again; what cannot be tried so (a
 * terminal, MSG_WAITALL, a low-water mark, a write) waits until poll says ready and then makes
 * the plain call. */
static ssize_t io_wait(struct sbx_vm *vm, const struct sbx_handle *h, int fd, struct iovec *iov,
		       int cnt, uint64_t total, int is_write, int sock, struct msghdr *mh, int *err)
{
	int tries = !is_write && tryable(h, fd, sock);
	int rounds = 0;
	int64_t w = 0;
	for (;;) {
		if (tries) {
			ssize_t n = io_call(fd, iov, cnt, 0, 0, 0, sock, mh, 1);
			*err = errno;
			if (n >= 0 || (*err != EAGAIN && !(sock < 0 && *err == EOPNOTSUPP)))
				return n;
			tries = *err == EAGAIN;
		}
		w = fails_at_once(h, iov, cnt, total, is_write)
			? 0
			: wait_ready(vm, h, fd, is_write, sock);
		if (w < 0) {
			*err = (int)-w;
			return -1;
		}
		/* Ready, and another reader may take it first: tried again, never blocked on. But
		 * a descriptor poll calls ready that a try keeps finding empty (a socket poll
		 * reports for another reason: fuzz_ring spun here for minutes) gets the plain
		 * call after a few rounds: never a spin. */
		if (w == 0 || !tries || ++rounds > 3)
			break;
	}
	/* The poller, which must not wait: not a read that tries keep finding empty, and a write
	 * without waiting where the kernel has one (RWF_NOWAIT: Linux 6.1 has none for a pipe,
	 * whose write hc_may_wait kept within what readiness promises to take). Nothing has
	 * moved: the request goes to the vCPU's thread. */
	int nowait = !sbx_ring_may_wait();
	if (nowait && tries && w != 0) {
		sbx_ring_would_wait();
		*err = EINTR; /* no one sees it; what rwv staged is put back for the next try */
		return -1;
	}
	ssize_t n = io_call(fd, iov, cnt, is_write, 0, 0, sock, mh, nowait && is_write);
	if (nowait && is_write && n < 0 && errno == EOPNOTSUPP)
		n = io_call(fd, iov, cnt, is_write, 0, 0, sock, mh, 0);
	*err = errno;
	/* Not for a descriptor the guest made non-blocking (w 0): EAGAIN is its answer. */
	if (nowait && n < 0 && *err == EAGAIN && w != 0) {
		sbx_ring_would_wait();
		*err = EINTR;
	}
	return n;
}

static void let_go_windows(struct sbx_shmap_hold *held, int cnt)
{
	for (int i = 0; held && i < cnt; i++)
		sbx_shmap_let_go(&held[i]);
	free(held);
}

/* A call that waits without ring_lock: its buffers in windows (shared file mappings) move to
 * mappings of the call's own (sbx_shmap_hold), since another thread may munmap the window
 * meanwhile, and a monitor thread's stack or a new vCPU's area be mapped where it was. */
static int hold_windows(struct sbx_vm *vm, struct iovec *iov, int cnt, struct sbx_shmap_hold **held)
{
	*held = NULL;
	for (int i = 0; i < cnt; i++) {
		struct sbx_shmap_hold one;
		if (!iov[i].iov_len)
			continue; /* nothing moves: its address is not looked at */
		void *p = sbx_shmap_hold(vm, iov[i].iov_base, iov[i].iov_len, &one);
		if (p && !one.len)
			continue; /* guest RAM, which stays where it is */
		if (p && !*held && !(*held = calloc((size_t)cnt, sizeof(**held)))) {
			sbx_shmap_let_go(&one);
			p = NULL;
		}
		if (!p) {
			let_go_windows(*held, cnt);
			*held = NULL;
			return -ENOMEM;
		}
		(*held)[i] = one;
		iov[i].iov_base = p;
	}
	return 0;
}

/* A read of a descriptor that may block, tried without waiting while ring_lock is held (as
 * io_wait tries it): 1 if that answered it (bytes, end of file, an error, or nothing yet
 * where the call would not wait: Go's pipes are non-blocking), with its result in *n, *err. */
static int read_now(const struct sbx_handle *h, struct iovec *iov, int cnt, int sock,
		    struct msghdr *mh, ssize_t *n, int *err)
{
	if (!tryable(h, h->fd, sock))
		return 0;
	*n = io_call(h->fd, iov, cnt, 0, 0, 0, sock, mh, 1);
	*err = errno;
	if (*n >= 0 || (*err != EAGAIN && !(sock < 0 && *err == EOPNOTSUPP)))
		return 1;
	if (*err != EAGAIN)
		return 0;
	if (sock > 0 && (sock & MSG_DONTWAIT))
		return 1;
	return sbx_handle_nonblocking(h, h->stdio >= 0 ? 0 : fcntl(h->fd, F_GETFL));
}

/* The bounce buffer of a read that waits without ring_lock: the whole length, up to
 * SBX_BOUNCE_MAX; a longer read gets that much where a shorter answer is Linux's own (a
 * pipe, a terminal, a stream socket without MSG_WAITALL or a low-water mark above it); else
 * none (0), and it reads in place: a datagram longer than the buffer would be cut short. */
#define SBX_BOUNCE_MAX (256u << 10)
static uint64_t bounce_len(int fd, uint64_t total, int sock)
{
	if (total <= SBX_BOUNCE_MAX)
		return total;
	if (sock > 0 && (sock & MSG_WAITALL))
		return 0;
	int v = 0;
	socklen_t l = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &l) < 0)
		return SBX_BOUNCE_MAX;
	l = sizeof(v);
	if (v != SOCK_STREAM ||
	    (getsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, &l) == 0 && v > (int)SBX_BOUNCE_MAX))
		return 0;
	return SBX_BOUNCE_MAX;
}

/* A read's n bytes in the program's buffers, under ring_lock: copied there from the bounce
 * buffer (`from`) after any lend, or already written in place (NULL); marked for dirty
 * tracking either way now (the pages sbx_gptr marked before the wait may have been sent
 * since). No copy into a process that is ending: a fork's child whose lend that end cut
 * short still reads its RAM (procs.c lend_wait), and nothing will read the result. */
static void landed(struct sbx_vm *vm, const struct iovec *iov, int cnt, const char *from, size_t n)
{
	if (from && sbx_stop_for_good(vm))
		return;
	uint8_t *base = vm->proc.mem.base;
	for (int i = 0; i < cnt && n; i++) {
		size_t l = iov[i].iov_len < n ? iov[i].iov_len : n;
		uint8_t *to = iov[i].iov_base;
		if (!l)
			continue;
		if (from)
			memcpy(to, from, l);
		if (to >= base && to < base + vm->proc.mem.size)
			sbx_mem_dirty(vm, (uint64_t)(to - base), l);
		if (from)
			from += l;
		n -= l;
	}
}

/* One read or write of a handle into guest buffers (host iovecs already checked against RAM,
 * total bytes): a virtual file answers itself; for a host file the stdio flags apply, then
 * a write is cut at what the limits allow. `off` is the position of a PREAD/PWRITE
 * (positioned), else the file's own is used. */
static int64_t do_io(struct sbx_vm *vm, struct sbx_handle *h, struct iovec *iov, int cnt,
		     uint64_t total, int is_write, int positioned, int64_t off, int sock,
		     struct msghdr *mh)
{
	if (h->kind == SBX_H_VFILE)
		return sbx_vfs_io(vm, h, iov, cnt, total, is_write, positioned, off);
	if (h->obj == SBX_O_SIGNALFD) /* the kernel's own signals: it reads them itself */
		return positioned ? -ESPIPE : is_write ? -EINVAL : -SBX_ESIGNALFD;
	if (positioned && off < 0)
		return -EINVAL;
	int64_t e = stdio_flags(h, is_write, positioned);
	if (e < 0)
		return e;
	if (h->obj == SBX_O_PTY && (e = sbx_pty_io_check(vm, h, is_write)) < 0)
		return e;
	/* Last before the write: what the limits allow is reserved now and counted after it. */
	if (is_write && h->obj == SBX_O_FILE) {
		uint64_t allow = sbx_limit_write(vm, h, total), acc = 0;
		if (allow == 0 && total)
			return -EFBIG;
		for (int i = 0; i < cnt; i++) {
			if (acc + iov[i].iov_len > allow) {
				iov[i].iov_len = allow - acc;
				cnt = i + 1;
				break;
			}
			acc += iov[i].iov_len;
		}
	}
	/* With threads, a read that may block (a pipe, a socket, a terminal) waits without
	 * ring_lock, so that the other threads' requests go on (the one whose output brings the
	 * input, say), on a duplicate of the descriptor, which another thread may close meanwhile.
	 * A write keeps the lock (the output limits are checked and counted under it), but for
	 * a pipe or eventfd of the program's own, which no limit counts: its reader may be one
	 * of the other threads. */
	int fd = h->fd, dfd = -1, released = 0, writes_ram = 0, counted = h->obj == SBX_O_FILE;
	/* A terminal's master: the signals its input makes, after the write (pty.c), for this
	 * terminal even if another thread closes the handle meanwhile. */
	struct sbx_pty *typed = is_write && h->obj == SBX_O_PTY && h->end == 0 ? h->pty : NULL;
	if (typed)
		sbx_pty_hold(typed, 1);
	int blocks = !positioned && sbx_handle_may_block(h);
	const struct sbx_handle *wh = h;
	struct sbx_handle hc;
	struct sbx_shmap_hold *held = NULL;
	ssize_t n = -1;
	int err = 0, unlocked = blocks && (!is_write || !counted) && sbx_threads_count(vm);
	/* A read whose bytes are there already needs none of that. */
	int done = unlocked && !is_write && read_now(h, iov, cnt, sock, mh, &n, &err);
	/* Where the waiting call reads: into a bounce buffer of the call's own, copied to the
	 * guest's once ring_lock is back, so that its bytes never land while a fork lends this
	 * RAM to its child (procs.c); else, for a read longer than one, straight into guest
	 * RAM, which a fork meanwhile must not lend. */
	struct iovec biov, *wiov = iov;
	int wcnt = cnt;
	uint64_t wtotal = total;
	char *bounce = NULL;
	if (unlocked && !done) {
		if ((e = hold_windows(vm, iov, cnt, &held)) < 0) {
			if (typed)
				sbx_pty_drop(typed, 1);
			return e;
		}
		/* What the wait looks at, copied under the lock: without it, another thread may
		 * close the handle and its slot name another descriptor. */
		hc = *h;
		wh = &hc;
		/* Out of descriptors, on the handle's own: waiting with the lock could wait for
		 * ever for the thread that needs it. */
		dfd = fcntl(h->fd, F_DUPFD_CLOEXEC, 0);
		uint64_t bl = is_write ? 0 : bounce_len(h->fd, total, sock);
		if (bl && (bounce = malloc(bl))) {
			biov = (struct iovec){bounce, bl};
			wiov = &biov;
			wcnt = 1;
			wtotal = bl;
		}
		writes_ram = !is_write && !bounce && total;
		if (writes_ram)
			sbx_threads_ram_write(vm, 1);
		released = sbx_ring_release(vm);
		fd = dfd >= 0 ? dfd : fd;
	}
	/* Nothing to move returns at once from a pipe or terminal, as Linux's do (a socket's
	 * empty receive waits for a message). */
	if (done)
		;
	else if (blocks && (total || sock >= 0))
		n = io_wait(vm, wh, fd, wiov, wcnt, wtotal, is_write, sock, mh, &err);
	else {
		n = io_call(fd, wiov, wcnt, is_write, positioned, off, sock, mh, 0);
		err = errno;
	}
	if (writes_ram)
		sbx_threads_ram_write(vm, 0);
	sbx_ring_reacquire(vm, released);
	if ((bounce || writes_ram) && n > 0)
		landed(vm, iov, cnt, bounce, (size_t)n);
	free(bounce);
	if (typed) {
		if (n > 0)
			sbx_pty_wrote(vm, typed, fd, iov, cnt, (size_t)n);
		sbx_pty_drop(typed, 1);
	}
	let_go_windows(held, cnt);
	if (dfd >= 0)
		close(dfd);
	if (is_write && counted)
		sbx_limit_account(vm, h, n);
	return n < 0 ? -err : n;
}

/* The handle of a read or write: a host file's or a virtual file's. */
static struct sbx_handle *io_handle(struct sbx_vm *vm, int64_t fd, int64_t *err)
{
	struct sbx_handle *h = sbx_fd_get(vm, fd);
	return h && h->kind == SBX_H_VFILE ? h : host_handle(vm, fd, err);
}

static int64_t rw(struct sbx_vm *vm, const struct sbx_slot *s, int is_write)
{
	int64_t e;
	struct sbx_handle *h = io_handle(vm, s->u.rw.fd, &e);
	if (!h)
		return e;
	uint64_t len = s->u.rw.len > SBX_RW_MAX ? SBX_RW_MAX : s->u.rw.len;
	/* A virtual file's bytes are the monitor's own copies: guest RAM only. */
	int virt = h->kind == SBX_H_VFILE;
	struct iovec iov = {.iov_base = virt ? sbx_gptr(vm, s->u.rw.buf, len)
					     : sbx_gptr_io(vm, s->u.rw.buf, len, !is_write),
			    .iov_len = len};
	if (!iov.iov_base && len)
		return -EFAULT;
	int positioned = s->nr == SBX_CALL_PREAD || s->nr == SBX_CALL_PWRITE;
	return do_io(vm, h, &iov, 1, len, is_write, positioned, s->u.rw.off, -1, NULL);
}

int64_t sbx_hc_read(struct sbx_vm *vm, const struct sbx_slot *s)
{
	return rw(vm, s, 0);
}

int64_t sbx_hc_write(struct sbx_vm *vm, const struct sbx_slot *s)
{
	return rw(vm, s, 1);
}

static int64_t rwv(struct sbx_vm *vm, const struct sbx_slot *s, int is_write)
{
	int64_t e;
	struct sbx_handle *h = io_handle(vm, s->u.rw.fd, &e);
	if (!h)
		return e;
	uint64_t cnt = s->u.rw.len, sf = (uint64_t)s->u.rw.off;
	if (cnt > SBX_IOV_MAX)
		return -EINVAL;
	/* send and recv: the flags a local socket takes (no MSG_TRUNC: never more than asked). */
	const uint64_t flags = MSG_DONTWAIT | MSG_PEEK | MSG_WAITALL | MSG_NOSIGNAL | MSG_MORE |
			       MSG_EOR | MSG_CMSG_CLOEXEC;
	int sock = -1, ctl = 0, named = 0;
	if (sf) {
		if (!(sf & SBX_RW_SOCK) || (sf & ~(SBX_RW_SOCK | SBX_RW_CTL | SBX_RW_NAME | flags)))
			return sf & SBX_RW_SOCK ? -EOPNOTSUPP : -EINVAL;
		if (!sbx_is_socket(h))
			return -ENOTSOCK;
		sock = (int)(sf & flags & ~(uint64_t)MSG_CMSG_CLOEXEC);
		ctl = (sf & SBX_RW_CTL) != 0;
		named = (sf & SBX_RW_NAME) != 0;
		/* A UDP datagram to an address never waits for its receiver's room: the
		 * loopback drops it then, as Linux's (inet.c). */
		if (named && is_write && sbx_is_inet(h))
			sock |= MSG_DONTWAIT;
	}
	if (cnt == 0 && !ctl && !named)
		return 0;
	int virt = h->kind == SBX_H_VFILE; /* guest RAM only, as in rw() */
	struct sbx_iovec giov[SBX_IOV_MAX];
	struct iovec hiov[SBX_IOV_MAX];
	if (sbx_copy_from_guest(vm, giov, s->u.rw.buf, cnt * sizeof(giov[0])) < 0)
		return -EFAULT;
	uint64_t total = 0;
	for (uint64_t i = 0; i < cnt; i++) {
		uint64_t l = giov[i].len;
		if (l > SBX_RW_MAX - total)
			return -EINVAL;
		total += l;
		hiov[i].iov_base = !l	  ? NULL
				   : virt ? sbx_gptr(vm, giov[i].base, l)
					  : sbx_gptr_io(vm, giov[i].base, l, !is_write);
		hiov[i].iov_len = l;
		if (l && !hiov[i].iov_base)
			return -EFAULT;
	}
	if (!ctl && !named)
		return do_io(vm, h, hiov, (int)cnt, total, is_write, 0, 0, sock, NULL);
	/* SCM_RIGHTS (scm.c): the staged descriptors go with the bytes, or those that came are
	 * installed; both under ring_lock, the transfer itself as any other. */
	/* Room for a full SCM_RIGHTS and the credentials SO_PASSCRED adds. */
	uint8_t cbuf[CMSG_SPACE(SBX_SCM_MAX * sizeof(int)) + CMSG_SPACE(sizeof(struct ucred))];
	/* A sender's name also wants its credentials: only the sandbox's own are believed. */
	int creds = named && !is_write;
	struct msghdr mh = {.msg_control = ctl || creds ? cbuf : NULL,
			    .msg_controllen = ctl || creds ? sizeof(cbuf) : 0};

	/* A datagram's address (hc_socket.c): the destination SENDTO staged, or the sender's,
	 * kept for NAME_TAKE. */
	struct sockaddr_un name;
	uint32_t namelen = sizeof(name);
	if (named && is_write) {
		int r = sbx_sockname_take(vm, &name, &namelen);
		if (r < 0)
			return r;
	}
	if (named) {
		mh.msg_name = &name;
		mh.msg_namelen = namelen;
	}
	if (ctl && is_write) {
		size_t clen;
		int r = sbx_scm_control(vm, cbuf, sizeof(cbuf), &clen);
		if (r < 0)
			return r;
		mh.msg_controllen = clen;
	}
	/* Asked before the call: a receive that waits lets another thread close the handle
	 * and its slot name another descriptor meanwhile. */
	int type = 0, family = h->family;
	socklen_t tl = sizeof(type);
	if ((is_write || creds) && getsockopt(h->fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0)
		type = 0;
	int64_t n = do_io(vm, h, hiov, (int)cnt, total, is_write, 0, 0, sock, &mh);
	if (ctl && is_write) /* a stream socket sends no descriptors without a byte */
		sbx_scm_sent(vm, n, n > 0 || (n == 0 && type != SOCK_STREAM));
	else if (ctl && n >= 0)
		sbx_scm_received(vm, &mh, (sf & MSG_CMSG_CLOEXEC) != 0, (sf & MSG_PEEK) != 0);
	if (creds && n >= 0) {
		/* A datagram socket takes its senders' credentials (hc_socket.c); a connected one's
		 * peer was the sandbox's at its connect or accept, or it is a pair's end. */
		int ours = type != 0 && type != SOCK_DGRAM;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET)
				continue;
			if (c->cmsg_type == SCM_CREDENTIALS) {
				struct ucred u;
				memcpy(&u, CMSG_DATA(c), sizeof(u));
				ours = u.pid == getpid();
			} else if (c->cmsg_type == SCM_RIGHTS && !ctl) {
				/* Descriptors the program left no room for: gone, as on Linux. */
				size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
				for (size_t i = 0; i < k; i++) {
					int dfd;
					memcpy(&dfd, CMSG_DATA(c) + i * sizeof(int), sizeof(dfd));
					close(dfd);
				}
			}
		}
		sbx_sockname_received(vm, family, type, &name, mh.msg_namelen, ours);
	}
	if (named && is_write && n == -EINTR) /* made again after the signal: kept for it */
		sbx_sockname_again(vm, &name, namelen);
	/* UDP on the loopback: a datagram no socket takes (none bound at the port, its queue
	 * full, or bound to another peer) is lost, not refused, as Linux's is. */
	if (named && is_write && (family == AF_INET || family == AF_INET6) &&
	    (n == -ECONNREFUSED || n == -EAGAIN || n == -EPERM))
		n = (int64_t)total;
	return n;
}

int64_t sbx_hc_readv(struct sbx_vm *vm, const struct sbx_slot *s)
{
	return rwv(vm, s, 0);
}

int64_t sbx_hc_writev(struct sbx_vm *vm, const struct sbx_slot *s)
{
	return rwv(vm, s, 1);
}

int64_t sbx_hc_close(struct sbx_vm *vm, const struct sbx_slot *s)
{
	uint64_t flags = s->u.a[2];
	if (flags & SBX_CLOSE_RANGE) {
		/* close_range: the guest checked first <= last; any value is safe here. */
		if (flags & ~(uint64_t)(SBX_CLOSE_RANGE | SBX_CLOSE_RANGE_CLOEXEC))
			return -EINVAL;
		for (uint64_t fd = s->u.a[0]; fd <= s->u.a[1] && fd < SBX_MAX_FDS; fd++) {
			struct sbx_handle *h = sbx_fd_get(vm, (int64_t)fd);
			if (h && (flags & SBX_CLOSE_RANGE_CLOEXEC))
				h->cloexec = 1;
			else if (h)
				sbx_fd_release(vm, (int)fd);
		}
		return 0;
	}
	if (!sbx_fd_get(vm, (int64_t)s->u.a[0]))
		return -EBADF;
	sbx_fd_release(vm, (int)s->u.a[0]);
	return 0;
}

/* A virtual directory (the root, or an ancestor of a mount point) stats as an empty
 * read-only directory owned by the guest's user. */
void sbx_vdir_stat(struct sbx_vm *vm, const char *gpath, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	uint64_t h = 1469598103934665603ull;
	for (const char *p = gpath; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	st->st_ino = h | 1;
	st->st_dev = 0x5342; /* "SB" */
	st->st_mode = S_IFDIR | 0555;
	st->st_nlink = 2;
	st->st_uid = vm->host.uid; /* getuid() is off the allowlist by now */
	st->st_gid = vm->host.gid;
	st->st_blksize = 4096;
}

int sbx_put_stat(struct sbx_vm *vm, uint64_t buf, uint64_t len, const struct stat *st)
{
	_Static_assert(sizeof(struct stat) == 144, "host struct stat is the x86-64 Linux one");
	if (len < sizeof(*st))
		return -EFAULT;
	return sbx_copy_to_guest(vm, buf, st, sizeof(*st));
}

int sbx_handle_stat(struct sbx_vm *vm, const struct sbx_handle *h, struct stat *st)
{
	if (!h)
		return -EBADF;
	if (h->kind == SBX_H_VDIR) {
		sbx_vdir_stat(vm, h->gpath, st);
	} else if (h->kind == SBX_H_VFILE) {
		struct sbx_vnode vn = {h->vnode, -1};
		sbx_vfs_stat(vm, &vn, h->gpath, st);
	} else if (h->obj == SBX_O_PTY) {
		/* The node its path names, so that ttyname() finds it there. */
		struct sbx_vnode vn = {!h->end				   ? SBX_V_PTMX
				       : strcmp(h->gpath, "/dev/tty") == 0 ? SBX_V_TTY
									   : SBX_V_PTS,
				       sbx_pty_index(h->pty)};
		sbx_vfs_stat(vm, &vn, h->gpath, st);
	} else if (fstat(h->fd, st) < 0) {
		return -errno;
	}
	return 0;
}

int64_t sbx_hc_fstat(struct sbx_vm *vm, const struct sbx_slot *s)
{
	struct stat st;
	int r = sbx_handle_stat(vm, sbx_fd_get(vm, s->u.path.dirfd), &st);
	if (r < 0)
		return r;
	return sbx_put_stat(vm, s->u.path.buf, s->u.path.buf_len, &st);
}

int64_t sbx_hc_lseek(struct sbx_vm *vm, const struct sbx_slot *s)
{
	struct sbx_handle *h = sbx_fd_get(vm, (int64_t)s->u.a[0]);
	if (!h)
		return -EBADF;
	if (h->kind == SBX_H_VFILE)
		return sbx_vfs_lseek(h, (int64_t)s->u.a[1], s->u.a[2] > 4 ? -1 : (int)s->u.a[2]);
	if (h->kind == SBX_H_VDIR) {
		if (s->u.a[2] != SEEK_SET || s->u.a[1] != 0)
			return -EINVAL;
		h->vdir_pos = 0;
		return 0;
	}
	if (s->u.a[2] > SEEK_HOLE)
		return -EINVAL;
	off_t r = lseek(h->fd, (off_t)s->u.a[1], (int)s->u.a[2]);
	return r < 0 ? -errno : r;
}

struct vdir_fill {
	uint8_t *buf;
	uint64_t len, used, index, skip;
	int full;
	struct sbx_vm *vm;
	const char *dir; /* a policy directory a virtual one's entries are added to */
};

static void vdir_emit_typed(void *ctx, const char *name, size_t nlen, unsigned char type)
{
	struct vdir_fill *f = ctx;
	if (f->full)
		return;
	if (f->index++ < f->skip)
		return;
	size_t reclen = (offsetof(struct dirent64, d_name) + nlen + 1 + 7) & ~(size_t)7;
	if (f->used + reclen > f->len) {
		f->full = 1;
		f->index--;
		return;
	}
	struct dirent64 *d = (struct dirent64 *)(f->buf + f->used);
	memset(d, 0, reclen);
	d->d_ino = 1 + f->index;
	d->d_off = (int64_t)f->index;
	d->d_reclen = (unsigned short)reclen;
	d->d_type = type;
	memcpy(d->d_name, name, nlen);
	f->used += reclen;
}

static void vdir_emit(void *ctx, const char *name, size_t nlen)
{
	vdir_emit_typed(ctx, name, nlen, DT_DIR);
}

/* A mount or the directory above one; a mount that is a link in the guest (Debian's /bin
 * beside /usr, policy_link_of) is listed as one. */
static void vdir_emit_entry(void *ctx, const char *name, size_t nlen)
{
	struct vdir_fill *f = ctx;
	char g[POLICY_PATH_MAX], text[POLICY_PATH_MAX];
	int link = snprintf(g, sizeof(g), "%s/%.*s", strcmp(f->dir, "/") ? f->dir : "", (int)nlen,
			    name) < (int)sizeof(g) &&
		   policy_link_of(f->vm->cfg.policy, g, text, sizeof(text)) >= 0;
	vdir_emit_typed(ctx, name, nlen, link ? DT_LNK : DT_DIR);
}

/* A virtual node's entry in a directory the policy shows too: only where it shows nothing. */
static void vdir_emit_merged(void *ctx, const char *name, size_t nlen, unsigned char type)
{
	struct vdir_fill *f = ctx;
	char g[POLICY_PATH_MAX];
	struct policy_target t;
	if (snprintf(g, sizeof(g), "%s/%.*s", strcmp(f->dir, "/") ? f->dir : "", (int)nlen, name) >=
	    (int)sizeof(g))
		return;
	policy_lookup(f->vm->cfg.policy, g, &t);
	if (t.kind == POLICY_NONE)
		vdir_emit_typed(ctx, name, nlen, type);
}

int64_t sbx_hc_getdents(struct sbx_vm *vm, const struct sbx_slot *s)
{
	struct sbx_handle *h = sbx_fd_get(vm, s->u.rw.fd);
	if (!h)
		return -EBADF;
	uint64_t len = s->u.rw.len > SBX_RW_MAX ? SBX_RW_MAX : s->u.rw.len;
	void *p = sbx_gptr(vm, s->u.rw.buf, len);
	if (!p)
		return -EFAULT;
	if (h->kind == SBX_H_HOST) {
		long n = syscall(SYS_getdents64, h->fd, p, len);
		return n < 0 ? -errno : n;
	}
	struct vdir_fill f = {.buf = p, .len = len, .skip = h->vdir_pos, .vm = vm, .dir = h->gpath};
	vdir_emit(&f, ".", 1);
	vdir_emit(&f, "..", 2);
	if (h->kind == SBX_H_VFILE) {
		if (!sbx_vfs_is_dir(h->vnode))
			return -ENOTDIR;
		sbx_vfs_children(vm, h->gpath, h->vnode, vdir_emit_typed, &f);
	} else {
		policy_vdir_children(vm->cfg.policy, h->gpath, vdir_emit_entry, &f);
		/* The virtual /dev and /proc where the policy has no mount of that name. */
		struct sbx_vnode vn;
		int type = strcmp(h->gpath, "/") == 0		    ? SBX_V_ROOT
			   : sbx_vfs_lookup(vm, h->gpath, &vn) == 0 ? (sbx_vfs_follow(&vn), vn.type)
								    : SBX_V_NONE;
		if (type != SBX_V_NONE && sbx_vfs_enabled(vm) &&
		    (type == SBX_V_ROOT || sbx_vfs_is_dir(type)))
			sbx_vfs_children(vm, h->gpath, type, vdir_emit_merged, &f);
	}
	if (f.full && f.used == 0)
		return -EINVAL;
	h->vdir_pos = f.index;
	return (int64_t)f.used;
}

int64_t sbx_hc_ftruncate(struct sbx_vm *vm, const struct sbx_slot *s)
{
	int64_t e;
	struct sbx_handle *h = host_handle(vm, (int64_t)s->u.a[0], &e);
	if (!h)
		return e == -EISDIR ? -EINVAL : e;
	if ((int64_t)s->u.a[1] < 0 || !h->gpath)
		return -EINVAL; /* stdio is the user's file, not the guest's to cut short */
	return ftruncate(h->fd, (off_t)s->u.a[1]) < 0 ? -errno : 0;
}

/* fallocate on a file of a mount, by the host. The blocks it adds count as bytes written for
 * --max-write (without that a program could fill the host's disk with no write at all): the
 * whole length is reserved first, as a write's is, and what the file did not grow by is given
 * back. Punching a hole or collapsing a range adds nothing. */
int64_t sbx_hc_fallocate(struct sbx_vm *vm, const struct sbx_slot *s)
{
	const uint64_t known = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE |
			       FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_ZERO_RANGE |
			       FALLOC_FL_INSERT_RANGE | FALLOC_FL_UNSHARE_RANGE;
	int64_t e, off = (int64_t)s->u.a[2], len = (int64_t)s->u.a[3];
	uint64_t mode = s->u.a[1];
	struct sbx_handle *h = host_handle(vm, (int64_t)s->u.a[0], &e);
	if (!h)
		return e;
	if (mode & ~known)
		return -EOPNOTSUPP;
	if (off < 0 || len <= 0)
		return -EINVAL;
	if (!h->gpath)
		return -ENODEV; /* stdio is the user's file, not the guest's to grow */
	/* A memfd's blocks are memory, which --mem counts (memfd.c): no more of it at once than
	 * guest RAM, as a write's is no more than SBX_RW_MAX, until the keeper looks. */
	if (h->obj == SBX_O_MEMFD && !(mode & FALLOC_FL_PUNCH_HOLE) &&
	    (uint64_t)len > vm->proc.mem.size)
		return -ENOSPC;
	uint64_t add =
	    h->obj != SBX_O_FILE || mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_COLLAPSE_RANGE)
		? 0
		: (uint64_t)len;
	struct stat before, after;
	if (add && fstat(h->fd, &before) < 0)
		return -errno;
	if (add && sbx_limit_write(vm, h, add) < add) {
		sbx_limit_account(vm, h, 0); /* over the limit: the sandbox ends, named */
		return -EFBIG;
	}
	int r = fallocate(h->fd, (int)mode, (off_t)off, (off_t)len) < 0 ? -errno : 0;
	if (add) {
		int64_t grew = r == 0 && fstat(h->fd, &after) == 0
				   ? ((int64_t)after.st_blocks - (int64_t)before.st_blocks) * 512
				   : 0;
		sbx_limit_account(vm, h, grew < 0 ? 0 : grew > len ? len : grew);
	}
	return r;
}

int64_t sbx_hc_fsync(struct sbx_vm *vm, const struct sbx_slot *s)
{
	struct sbx_handle *h = sbx_fd_get(vm, (int64_t)s->u.a[0]);
	if (!h)
		return -EBADF;
	if (h->kind != SBX_H_HOST)
		return 0;
	int r = s->nr == SBX_CALL_FDATASYNC ? fdatasync(h->fd) : fsync(h->fd);
	return r < 0 ? -errno : 0;
}

int64_t sbx_hc_dup(struct sbx_vm *vm, const struct sbx_slot *s)
{
	int64_t oldfd = (int64_t)s->u.a[0], newfd = (int64_t)s->u.a[1];
	uint64_t lowest = s->u.a[2];
	struct sbx_handle *h = sbx_fd_get(vm, oldfd);
	if (!h)
		return -EBADF;
	if (newfd == oldfd)
		return newfd;
	int target;
	uint64_t lim[2];
	sbx_fd_limits(vm, lim);
	/* Linux's answers at RLIMIT_NOFILE: F_DUPFD from at or above it is EINVAL, dup2 and
	 * dup3 to a number at or above it EBADF, no number left below it EMFILE. */
	if (newfd < 0) {
		if (lowest >= lim[0])
			return -EINVAL;
		target = sbx_fd_alloc(vm, (int)lowest);
		if (target < 0)
			return target;
	} else {
		if ((uint64_t)newfd >= lim[0])
			return -EBADF;
		if (vm->proc.files->fds[newfd].kind == SBX_H_FREE && sbx_fd_room(vm) < 0)
			return -EMFILE;
		target = (int)newfd;
	}
	struct sbx_handle copy;
	int r = sbx_fd_copy(&copy, h);
	if (r < 0)
		return r;
	copy.cloexec = s->u.a[3] != 0;
	if (vm->proc.files->fds[target].kind != SBX_H_FREE)
		sbx_fd_release(vm, target);
	vm->proc.files->fds[target] = copy;
	return target;
}

/* The most the pipe behind fd may grow to: what SBX_PIPE_BUDGET leaves after the process's
 * other pipes (each counted once, however many handles name it). The host charges a pipe's
 * buffers to nobody's --mem, and a monitor with CAP_SYS_RESOURCE escapes Linux's own limit,
 * pipe-user-pages-soft (64 MiB a user), which this stands for. A negative errno if fd is no
 * pipe. */
static int64_t pipe_room(struct sbx_vm *vm, int fd)
{
	struct stat me, st;
	if (fstat(fd, &me) < 0)
		return -errno;
	if (!S_ISFIFO(me.st_mode))
		return -EBADF;
	uint64_t used = 0, seen[SBX_MAX_FDS];
	unsigned nseen = 0;
	for (int i = 0; i < SBX_MAX_FDS; i++) {
		const struct sbx_handle *o = &vm->proc.files->fds[i];
		if (o->kind != SBX_H_HOST || o->fd < 0 || fstat(o->fd, &st) < 0 ||
		    !S_ISFIFO(st.st_mode) || st.st_ino == me.st_ino)
			continue;
		unsigned k = 0;
		while (k < nseen && seen[k] != st.st_ino)
			k++;
		if (k < nseen)
			continue;
		if (nseen < sizeof(seen) / sizeof(seen[0]))
			seen[nseen++] = st.st_ino;
		int sz = fcntl(o->fd, F_GETPIPE_SZ);
		used += sz > 0 ? (uint64_t)sz : 0;
	}
	return used >= SBX_PIPE_BUDGET ? 0 : (int64_t)(SBX_PIPE_BUDGET - used);
}

int64_t sbx_hc_fcntl(struct sbx_vm *vm, const struct sbx_slot *s)
{
	struct sbx_handle *h = sbx_fd_get(vm, (int64_t)s->u.a[0]);
	if (!h)
		return -EBADF;
	uint64_t arg = s->u.a[2];
	switch (s->u.a[1]) {
	case F_GETFD:
		return h->cloexec ? FD_CLOEXEC : 0;
	case F_SETFD:
		h->cloexec = (arg & FD_CLOEXEC) != 0;
		return 0;
	case F_GETFL: {
		if (h->kind == SBX_H_VFILE)
			return h->vflags | O_LARGEFILE |
			       (sbx_vfs_is_dir(h->vnode) ? O_DIRECTORY : 0);
		if (h->kind != SBX_H_HOST)
			return O_RDONLY | O_DIRECTORY;
		int fl = fcntl(h->fd, F_GETFL);
		if (fl >= 0 && h->stdio >= 0)
			fl = (fl & ~SBX_VFLAGS) | h->vflags;
		return fl < 0 ? -errno : (fl & ~O_CLOEXEC);
	}
	case F_SETFL: {
		if (h->kind == SBX_H_VFILE)
			h->vflags = (h->vflags & ~SBX_VFLAGS) | ((int)arg & SBX_VFLAGS);
		if (h->kind != SBX_H_HOST)
			return 0;
		if (h->stdio >= 0) {
			/* Every dup of it shares the flags, as one file description would. */
			for (int i = 0; i < SBX_MAX_FDS; i++)
				if (vm->proc.files->fds[i].kind == SBX_H_HOST &&
				    vm->proc.files->fds[i].stdio == h->stdio)
					vm->proc.files->fds[i].vflags = (int)arg & SBX_VFLAGS;
			return 0;
		}
		int allowed = SBX_VFLAGS;
		int fl = fcntl(h->fd, F_GETFL);
		if (fl < 0)
			return -errno;
		fl = (fl & ~allowed) | ((int)arg & allowed);
		return fcntl(h->fd, F_SETFL, fl) < 0 ? -errno : 0;
	}
	case F_GETLK:
	case F_SETLK:
	case F_SETLKW:
	case F_OFD_GETLK:
	case F_OFD_SETLK:
	case F_OFD_SETLKW:
		return sbx_fcntl_lock(vm, s);
	case F_ADD_SEALS:
	case F_GET_SEALS:
		/* The host's: a memfd's (and only a file of memory has seals). */
		if (h->kind != SBX_H_HOST || h->stdio >= 0)
			return -EINVAL;
		if (s->u.a[1] == F_ADD_SEALS && arg > UINT32_MAX)
			return -EINVAL;
		break;
	case F_GETPIPE_SZ:
	case F_SETPIPE_SZ: {
		/* The host's pipe is the program's (its own, or the stdio one it was given, as
		 * natively); anything else is EBADF, as Linux says of a file that is no pipe. */
		if (h->kind != SBX_H_HOST)
			return -EBADF;
		if (s->u.a[1] == F_SETPIPE_SZ) {
			/* Linux takes an unsigned int; above 2 GiB EINVAL, above pipe-max-size
			 * (1 MiB, also all a snapshot keeps of a pipe) EPERM for a process
			 * without CAP_SYS_RESOURCE, which no sandboxed one has on the host. */
			uint32_t size = (uint32_t)arg;
			if (size > (1u << 31))
				return -EINVAL;
			if (size > SBX_PIPE_MAX)
				return -EPERM;
			int cur = fcntl(h->fd, F_GETPIPE_SZ);
			if (cur < 0)
				return -errno;
			int64_t room = size > (uint32_t)cur ? pipe_room(vm, h->fd) : SBX_PIPE_MAX;
			if (room < 0)
				return room;
			if (size > (uint64_t)room)
				return -EPERM;
			arg = size;
		}
		break;
	}
	default:
		return -EINVAL;
	}
	/* What the host's own descriptor answers, the checks above made. */
	int r = fcntl(h->fd, (int)s->u.a[1], (int)arg);
	return r < 0 ? -errno : r;
}

int64_t sbx_hc_nofile(struct sbx_vm *vm, const struct sbx_slot *s)
{
	uint64_t cur[2], set = s->u.a[0], soft = s->u.a[1], hard = s->u.a[2];
	sbx_fd_limits(vm, cur);
	if (set > 1)
		return -EINVAL;
	if (set) {
		if (soft > hard)
			return -EINVAL;
		/* Raising the hard limit takes CAP_SYS_RESOURCE (nofile_priv); nobody goes above
		 * the sandbox's own limit (Linux: nr_open). */
		if (hard > cur[1] && (!vm->proc.files->nofile_priv || hard > sbx_fd_ceiling(vm)))
			return -EPERM;
	}
	if (s->u.a[3] && sbx_copy_to_guest(vm, s->u.a[3], cur, sizeof(cur)) < 0)
		return -EFAULT;
	if (set) {
		vm->proc.files->nofile_set = 1;
		vm->proc.files->nofile_soft = (uint32_t)soft;
		vm->proc.files->nofile_hard = (uint32_t)hard;
	}
	return 0;
}

int64_t sbx_hc_ioctl(struct sbx_vm *vm, const struct sbx_slot *s)
{
	int64_t e;
	struct sbx_handle *h = host_handle(vm, (int64_t)s->u.a[0], &e);
	if (!h)
		return e == -EISDIR ? -ENOTTY : e;
	if (h->obj == SBX_O_PTY)
		return s->u.a[1] > UINT32_MAX
			   ? -ENOTTY
			   : sbx_pty_ioctl(vm, h, (uint32_t)s->u.a[1], s->u.a[2]);
	/* Terminal queries, enough for isatty(), line buffering and window sizes, and the
	 * terminal's modes (an editor's raw mode, a REPL's, node restoring them at its exit) and
	 * window size; sandbox-run puts the modes back when the sandbox ends. */
	uint8_t buf[64];
	size_t size;
	switch (s->u.a[1]) {
	case TCSETS:
	case TCSETSW:
	case TCSETSF:
	case TIOCSWINSZ:
		/* A window size set stays, as a program's own would natively (the terminal's
		 * next resize sets it again); SIGWINCH goes to the foreground job, this one. */
		size = s->u.a[1] == TIOCSWINSZ ? sizeof(struct winsize) : 36;
		if (sbx_copy_from_guest(vm, buf, s->u.a[2], size) < 0)
			return -EFAULT;
		if (!isatty(h->fd))
			return -ENOTTY;
		return ioctl(h->fd, (unsigned long)s->u.a[1], buf) < 0 ? -errno : 0;
	case TCGETS:
		size = 36; /* the kernel's struct termios, not glibc's */
		break;
	case TIOCGWINSZ:
		size = sizeof(struct winsize);
		break;
	case FIONREAD:
		size = sizeof(int);
		break;
	default:
		return -ENOTTY;
	}
	if (!sbx_gptr(vm, s->u.a[2], size))
		return -EFAULT;
	memset(buf, 0, sizeof(buf));
	if (ioctl(h->fd, (unsigned long)s->u.a[1], buf) < 0)
		return -errno;
	return sbx_copy_to_guest(vm, s->u.a[2], buf, size);
}

int64_t sbx_hc_poll(struct sbx_vm *vm, const struct sbx_slot *s)
{
	uint64_t n = s->u.a[1];
	int64_t ms = (int64_t)s->u.a[2];
	if (n > SBX_MAX_POLL)
		return -EINVAL;
	struct pollfd gp[SBX_MAX_POLL], hp[SBX_MAX_POLL];
	if (n && sbx_copy_from_guest(vm, gp, s->u.a[0], n * sizeof(gp[0])) < 0)
		return -EFAULT;
	int ready_now = 0;
	for (uint64_t i = 0; i < n; i++) {
		struct sbx_handle *h = gp[i].fd < 0 ? NULL : sbx_fd_get(vm, gp[i].fd);
		hp[i].fd = -1; /* ignored by poll() */
		hp[i].events = gp[i].events;
		hp[i].revents = 0;
		gp[i].revents = 0;
		if (gp[i].fd < 0)
			continue;
		if (!h) {
			gp[i].revents = POLLNVAL;
			ready_now++;
		} else if (h->kind == SBX_H_VDIR || h->kind == SBX_H_VFILE) {
			gp[i].revents = (short)(gp[i].events & (POLLIN | POLLOUT));
			ready_now += gp[i].revents != 0;
		} else {
			hp[i].fd = h->fd;
		}
	}
	/* Something is ready already: look without waiting, as Linux would return at once. A wait
	 * lets the other threads' requests go on (a descriptor another thread closes meanwhile
	 * may be polled as whatever takes its number, as with Linux's own close during poll). */
	int timeout = ready_now ? 0 : ms < 0 ? -1 : ms > 3600000 ? 3600000 : (int)ms;
	int released = timeout != 0 && sbx_threads_count(vm) ? sbx_ring_release(vm) : 0;
	struct polls all = {hp, (nfds_t)n};
	int r = sbx_wait_sliced(vm, timeout, poll_slice, &all), err = errno;
	sbx_ring_reacquire(vm, released);
	if (r < 0)
		return -err;
	int count = 0;
	for (uint64_t i = 0; i < n; i++) {
		if (hp[i].fd >= 0)
			gp[i].revents = hp[i].revents;
		count += gp[i].revents != 0;
	}
	if (n && sbx_copy_to_guest(vm, s->u.a[0], gp, n * sizeof(gp[0])) < 0)
		return -EFAULT;
	return count;
}
