/* Pseudo-terminals: /dev/ptmx, /dev/pts/N and /dev/tty, for `script`, `expect`, Python's
 * pty module, terminal test suites. Each is a pair of the host's own (devpts), which brings
 * Linux's line discipline whole: canonical input, echo, the output's \n -> \r\n, EOF and
 * hangup as reads see them. The host pair belongs to nobody's session (the monitor never
 * makes one its controlling terminal), so what belongs to sessions is kept here: which
 * session a terminal controls (TIOCSCTTY, or a session leader's first open of its slave), its
 * foreground group, and the signals the line discipline would send to it: SIGINT, SIGQUIT
 * and SIGTSTP for the interrupt, quit and suspend characters written to the master while
 * ISIG is on, SIGWINCH for a new window size. The guest sees the sandbox's own numbers (0, 1, ...),
 * never the host's.
 *
 * A slave is opened from the master (TIOCGPTPEER), never by a host path; the monitor keeps a
 * description of the master of its own while any handle of the master is open, so that
 * another process can open the slave by name, and lets it go with the last, which hangs the
 * terminal up as Linux does (the slave then reads 0 and writes EIO). A terminal's number is
 * free again once no handle of either side is left. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "calls.h"

struct sbx_pty {
	struct sbx_ptys *reg;
	int index;
	int master;		  /* the monitor's own description of the master; -1 once hung up */
	unsigned masters, slaves; /* handles of each side */
	int locked;		  /* the program's lock (TIOCSPTLCK); the host's is off */
	uint32_t sid, fg;	  /* the session it controls (0: none) and its foreground group */
};

/* The kernel's struct termios: c_lflag at 12, c_cc at 17. */
#define PTY_LFLAG 12
#define PTY_CC 17
#define PTY_ISIG 1u
#define PTY_TOSTOP 0x100u
#define PTY_VINTR 0
#define PTY_VQUIT 1
#define PTY_VSUSP 10

static struct sbx_ptys *ptys_of(struct sbx_vm *vm)
{
	return vm->limits->tree ? &vm->limits->tree->ptys : &vm->limits->ptys;
}

void sbx_ptys_init(struct sbx_ptys *p)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
}

void sbx_ptys_free(struct sbx_ptys *p)
{
	for (int i = 0; i < SBX_PTYS_MAX; i++) {
		if (!p->t[i])
			continue;
		if (p->t[i]->master >= 0)
			close(p->t[i]->master);
		/* A handle still holding it (none should be, the processes having ended) would
		 * find its registry gone: it is left to it. */
		p->t[i]->reg = NULL;
		p->t[i] = NULL;
	}
	pthread_mutex_destroy(&p->lock);
}

int sbx_pty_index(const struct sbx_pty *p)
{
	return p ? p->index : -1;
}

int sbx_pty_exists(struct sbx_vm *vm, int index)
{
	struct sbx_ptys *r = ptys_of(vm);
	if (index < 0 || index >= SBX_PTYS_MAX)
		return 0;
	pthread_mutex_lock(&r->lock);
	int yes = r->t[index] != NULL;
	pthread_mutex_unlock(&r->lock);
	return yes;
}

unsigned sbx_pty_list(struct sbx_vm *vm, int *out, unsigned max)
{
	struct sbx_ptys *r = ptys_of(vm);
	unsigned n = 0;
	pthread_mutex_lock(&r->lock);
	for (int i = 0; i < SBX_PTYS_MAX && n < max; i++)
		if (r->t[i])
			out[n++] = i;
	pthread_mutex_unlock(&r->lock);
	return n;
}

unsigned sbx_pty_take_hangups(struct sbx_vm *vm, uint32_t *sids, unsigned max)
{
	struct sbx_ptys *r = ptys_of(vm);
	pthread_mutex_lock(&r->lock);
	unsigned n = r->nhangups < max ? r->nhangups : max;
	memcpy(sids, r->hangups, n * sizeof(*sids));
	memmove(r->hangups, r->hangups + n, (r->nhangups - n) * sizeof(*sids));
	r->nhangups -= n;
	pthread_mutex_unlock(&r->lock);
	return n;
}

void sbx_pty_hold(struct sbx_pty *p, int master)
{
	struct sbx_ptys *r = p->reg;
	if (r)
		pthread_mutex_lock(&r->lock);
	if (master)
		p->masters++;
	else
		p->slaves++;
	if (r)
		pthread_mutex_unlock(&r->lock);
}

void sbx_pty_drop(struct sbx_pty *p, int master)
{
	struct sbx_ptys *r = p->reg;
	if (!r) {
		if ((master ? --p->masters : --p->slaves) == 0 && !p->masters && !p->slaves)
			free(p);
		return;
	}
	pthread_mutex_lock(&r->lock);
	if (master && --p->masters == 0 && p->master >= 0) {
		/* The last master handle: the terminal hangs up, and no session keeps it; its
		 * leader gets SIGHUP and SIGCONT from the tree's keeper, as from Linux's hangup
		 * (this runs where no signal may be sent: a process's handles closing). */
		close(p->master);
		p->master = -1;
		if (p->sid && r->nhangups < SBX_PTYS_MAX)
			r->hangups[r->nhangups++] = p->sid;
		p->sid = p->fg = 0;
	}
	if (!master)
		p->slaves--;
	int gone = !p->masters && !p->slaves;
	if (gone)
		r->t[p->index] = NULL;
	pthread_mutex_unlock(&r->lock);
	if (gone)
		free(p);
}

/* A handle of host fd for p's side (taken over): its guest number, or -errno. A slave opened
 * as /dev/tty keeps that name (and its fstat is /dev/tty's, as on Linux). */
static int64_t install(struct sbx_vm *vm, struct sbx_pty *p, int fd, int master, int flags,
		       int ctty)
{
	char path[24];
	if (master || ctty)
		snprintf(path, sizeof(path), master ? "/dev/ptmx" : "/dev/tty");
	else
		snprintf(path, sizeof(path), "/dev/pts/%d", p->index);
	char *g = strdup(path);
	if (!g) {
		close(fd);
		return -ENOMEM;
	}
	int64_t n = sbx_handle_add(vm, fd, SBX_O_PTY, (flags & O_CLOEXEC) != 0, 1);
	if (n < 0) {
		free(g);
		return n;
	}
	struct sbx_handle *h = &vm->proc.files->fds[n];
	h->gpath = g;
	h->end = !master;
	h->pty = p;
	return n;
}

/* Lock held: a new description of p's slave, or -errno. Opened without O_NOCTTY by a session
 * leader that has no controlling terminal, the terminal becomes its (Linux's tty_open). */
static int open_slave(struct sbx_vm *vm, struct sbx_pty *p, int flags)
{
	if (p->master < 0 || p->locked)
		return -EIO;
	int fd = ioctl(p->master, TIOCGPTPEER,
		       (flags & (O_ACCMODE | O_NONBLOCK)) | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (!(flags & O_NOCTTY) && !p->sid && vm->proc.sid == vm->proc.pid && vm->proc.pid) {
		int has = 0;
		for (int i = 0; i < SBX_PTYS_MAX; i++)
			has |= p->reg->t[i] && p->reg->t[i]->sid == vm->proc.sid;
		if (!has) {
			p->sid = vm->proc.sid;
			p->fg = vm->proc.pgid;
		}
	}
	p->slaves++;
	return fd;
}

static int64_t open_new(struct sbx_vm *vm, int flags)
{
	struct sbx_ptys *r = ptys_of(vm);
	int fd = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC | (flags & O_NONBLOCK));
	if (fd < 0)
		return -errno;
	int off = 0;
	struct sbx_pty *p = calloc(1, sizeof(*p));
	if (!p || ioctl(fd, TIOCSPTLCK, &off) < 0) {
		int e = p ? errno : ENOMEM;
		free(p);
		close(fd);
		return -e;
	}
	p->reg = r;
	p->locked = 1; /* as Linux's: until unlockpt() */
	p->masters = 1;
	pthread_mutex_lock(&r->lock);
	int i = 0;
	while (i < SBX_PTYS_MAX && r->t[i])
		i++;
	if (i < SBX_PTYS_MAX) {
		p->index = i;
		p->master = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		if (p->master >= 0)
			r->t[i] = p;
	}
	pthread_mutex_unlock(&r->lock);
	if (i == SBX_PTYS_MAX || p->master < 0) {
		int e = i == SBX_PTYS_MAX ? ENOSPC : errno; /* Linux's answer past its ptmx max */
		sbx_log(vm, 1, "/dev/ptmx: %s",
			i == SBX_PTYS_MAX ? "the sandbox has 64 terminals" : strerror(e));
		free(p);
		close(fd);
		return -e;
	}
	int64_t n = install(vm, p, fd, 1, flags, 0);
	if (n < 0)
		sbx_pty_drop(p, 1);
	return n;
}

int64_t sbx_pty_open(struct sbx_vm *vm, int index, int flags)
{
	if (index == SBX_PTY_NEW)
		return open_new(vm, flags);
	struct sbx_ptys *r = ptys_of(vm);
	pthread_mutex_lock(&r->lock);
	struct sbx_pty *p = NULL;
	if (index == SBX_PTY_CTTY) {
		flags |= O_NOCTTY;
		for (int i = 0; i < SBX_PTYS_MAX && !p; i++)
			if (r->t[i] && r->t[i]->sid && r->t[i]->sid == vm->proc.sid)
				p = r->t[i];
	} else if (index >= 0 && index < SBX_PTYS_MAX) {
		p = r->t[index];
	}
	int fd = p ? open_slave(vm, p, flags) : index == SBX_PTY_CTTY ? -ENXIO : -ENOENT;
	pthread_mutex_unlock(&r->lock);
	if (fd < 0)
		return fd;
	int64_t n = install(vm, p, fd, 0, flags, index == SBX_PTY_CTTY);
	if (n < 0)
		sbx_pty_drop(p, 0);
	return n;
}

/* sig to process group pgrp, the writer's own process too (never to "all": a group is a
 * positive id other than init's). */
static void pty_signal(struct sbx_vm *vm, uint32_t pgrp, int sig)
{
	if (pgrp <= 1 || pgrp > INT32_MAX || !vm->hooks.tty_signal)
		return;
	vm->hooks.tty_signal(vm, pgrp, sig);
}

/* A process of the terminal's session outside its foreground group: a read (SIGTTIN), or a
 * write with TOSTOP or a change of the terminal (SIGTTOU), stops its group, and is made
 * again once it goes on (-EINTR: the guest's kernel makes it again unless a signal is there
 * to handle), as Linux's. A read is EIO instead when the caller ignores or blocks SIGTTIN,
 * or nothing would continue its group (orphaned); a write or change goes on when it ignores
 * or blocks SIGTTOU. 0: go on. tostop_fd: a write's terminal, which stops only with TOSTOP;
 * -1 for the rest. */
static int64_t background(struct sbx_vm *vm, struct sbx_pty *p, int sig, int tostop_fd)
{
	struct sbx_ptys *r = ptys_of(vm);
	pthread_mutex_lock(&r->lock);
	uint32_t sid = p->sid, fg = p->fg;
	pthread_mutex_unlock(&r->lock);
	if (!sid || sid != vm->proc.sid || !fg || fg == vm->proc.pgid || !vm->hooks.tty_signal)
		return 0;
	/* Looked at last: a host call, made for a background writer only. */
	if (tostop_fd >= 0) {
		uint8_t t[36];
		uint32_t lflag = 0;
		if (ioctl(tostop_fd, TCGETS, t) == 0)
			memcpy(&lflag, t + PTY_LFLAG, sizeof(lflag));
		if (!(lflag & PTY_TOSTOP))
			return 0;
	}
	const struct sbx_sigstate *ss = sbx_gptr_ro(vm, SBX_SIGSTATE_ADDR, sizeof(*ss));
	if (!ss)
		return 0;
	int spared = ss->act[sig].handler == 1 || (ss->blocked & (1ull << (sig - 1)));
	if (spared)
		return sig == SIGTTIN ? -EIO : 0;
	return vm->hooks.tty_signal(vm, vm->proc.pgid, sig) < 0 ? -EIO : -EINTR;
}

int64_t sbx_pty_io_check(struct sbx_vm *vm, struct sbx_handle *h, int is_write)
{
	if (h->obj != SBX_O_PTY || h->end != 1)
		return 0;
	return is_write ? background(vm, h->pty, SIGTTOU, h->fd)
			: background(vm, h->pty, SIGTTIN, -1);
}

void sbx_pty_wrote(struct sbx_vm *vm, struct sbx_pty *p, int fd, const struct iovec *iov, int cnt,
		   size_t n)
{
	uint8_t t[36];
	if (ioctl(fd, TCGETS, t) < 0)
		return;
	uint32_t lflag;
	memcpy(&lflag, t + PTY_LFLAG, sizeof(lflag));
	if (!(lflag & PTY_ISIG))
		return;
	uint8_t intr = t[PTY_CC + PTY_VINTR], quit = t[PTY_CC + PTY_VQUIT];
	uint8_t susp = t[PTY_CC + PTY_VSUSP];
	int got_intr = 0, got_quit = 0, got_susp = 0;
	for (int i = 0; i < cnt && n; i++) {
		size_t len = iov[i].iov_len < n ? iov[i].iov_len : n;
		const uint8_t *b = iov[i].iov_base;
		/* 0 is _POSIX_VDISABLE: the character is off. */
		got_intr |= intr && memchr(b, intr, len) != NULL;
		got_quit |= quit && memchr(b, quit, len) != NULL;
		got_susp |= susp && memchr(b, susp, len) != NULL;
		n -= len;
	}
	if (!got_intr && !got_quit && !got_susp)
		return;
	struct sbx_ptys *r = ptys_of(vm);
	pthread_mutex_lock(&r->lock);
	uint32_t fg = p->fg;
	pthread_mutex_unlock(&r->lock);
	if (got_intr)
		pty_signal(vm, fg, SIGINT);
	if (got_quit)
		pty_signal(vm, fg, SIGQUIT);
	if (got_susp)
		pty_signal(vm, fg, SIGTSTP);
}

static const struct {
	uint32_t req;
	uint8_t how, size;
} reqs[] = {
#define PTY_REQ(name, nr, how, size) {nr, how, size},
    SBX_TTY_IOCTLS(PTY_REQ)
#undef PTY_REQ
};

/* The requests the host's terminal answers itself, on the handle's own description. */
static int64_t host_request(struct sbx_vm *vm, struct sbx_handle *h, uint32_t req, uint8_t how,
			    uint8_t size, uint64_t a2)
{
	uint8_t buf[64] = {0};
	if (how == SBX_IOCTL_IN && sbx_copy_from_guest(vm, buf, a2, size) < 0)
		return -EFAULT;
	if (how == SBX_IOCTL_OUT && !sbx_gptr(vm, a2, size))
		return -EFAULT;
	int r =
	    how == SBX_IOCTL_VAL ? ioctl(h->fd, req, (unsigned long)a2) : ioctl(h->fd, req, buf);
	if (r < 0)
		return -errno;
	return how == SBX_IOCTL_OUT ? sbx_copy_to_guest(vm, a2, buf, size) : 0;
}

/* TIOCSPGRP's group: 0 when a process of the sandbox is in it in session sid, -EPERM when
 * only in another session, -ESRCH when none is (Linux's answers). */
static int group_of_session(struct sbx_vm *vm, int32_t pgrp, uint32_t sid)
{
	if (pgrp <= 1)
		return pgrp < 0 ? -EINVAL : -ESRCH;
	if ((uint32_t)pgrp == vm->proc.pgid)
		return vm->proc.sid == sid ? 0 : -EPERM;
	if (!vm->hooks.procs_list || !vm->hooks.proc)
		return -ESRCH;
	uint32_t *pids = calloc(4096, sizeof(*pids));
	unsigned n = pids ? vm->hooks.procs_list(vm, pids, 4096) : 0;
	int r = -ESRCH;
	for (unsigned i = 0; i < n && i < 4096 && r != 0; i++) {
		struct sbx_slot q;
		memset(&q, 0, sizeof(q));
		q.nr = SBX_CALL_PGRP;
		q.u.a[0] = 1; /* getpgid */
		q.u.a[1] = pids[i];
		if (vm->hooks.proc(vm, &q) != pgrp)
			continue;
		q.u.a[0] = 3; /* getsid */
		r = (uint32_t)vm->hooks.proc(vm, &q) == sid ? 0 : -EPERM;
	}
	free(pids);
	return r;
}

/* The session requests, on what this registry keeps. Lock held. group: TIOCSPGRP's answer
 * for the group (group_of_session), given after the terminal's own checks as Linux's. */
static int64_t session_request(struct sbx_vm *vm, struct sbx_pty *p, int master, uint32_t req,
			       int group, int32_t v, int32_t *out)
{
	uint32_t sid = vm->proc.sid;
	int mine = p->sid && p->sid == sid; /* the caller's controlling terminal */
	switch (req) {
	case TIOCSCTTY:
		if (mine)
			return 0;
		if (master || sid != vm->proc.pid || !sid)
			return -EPERM; /* only a session leader's slave */
		for (int i = 0; i < SBX_PTYS_MAX; i++)
			if (p->reg->t[i] && p->reg->t[i]->sid == sid)
				return -EPERM; /* it has one */
		if (p->sid)
			return -EPERM; /* another session's (stealing it needs a2 1 and root) */
		p->sid = sid;
		p->fg = vm->proc.pgid;
		return 0;
	case TIOCNOTTY:
		if (master || !mine)
			return -ENOTTY;
		if (sid == vm->proc.pid)
			p->sid = p->fg = 0;
		return 0;
	case TIOCGPGRP:
		if (!master && !mine)
			return -ENOTTY;
		*out = (int32_t)p->fg;
		return 0;
	case TIOCSPGRP:
		if ((!master && !mine) || !p->sid)
			return -ENOTTY;
		if (v < 0)
			return -EINVAL;
		if (sid != p->sid)
			return -EPERM;
		if (group < 0)
			return group;
		p->fg = (uint32_t)v;
		return 0;
	case TIOCGSID:
		if (!p->sid || (!master && !mine))
			return -ENOTTY;
		*out = (int32_t)p->sid;
		return 0;
	case TIOCGPTN:
		if (!master)
			return -ENOTTY;
		*out = p->index;
		return 0;
	case TIOCGPTLCK:
		if (!master)
			return -ENOTTY;
		*out = p->locked;
		return 0;
	case TIOCSPTLCK:
		if (!master)
			return -ENOTTY;
		p->locked = v != 0;
		return 0;
	}
	return -ENOTTY;
}

int64_t sbx_pty_ioctl(struct sbx_vm *vm, struct sbx_handle *h, uint32_t req, uint64_t a2)
{
	unsigned i = 0;
	while (i < sizeof(reqs) / sizeof(reqs[0]) && reqs[i].req != req)
		i++;
	if (i == sizeof(reqs) / sizeof(reqs[0]))
		return -ENOTTY;
	uint8_t how = reqs[i].how, size = reqs[i].size;
	int master = h->end == 0;
	struct sbx_pty *p = h->pty;
	if (!master && (req == TCSETS || req == TCSETSW || req == TCSETSF || req == TCFLSH ||
			req == TCXONC || req == TIOCSPGRP)) {
		int64_t b = background(vm, p, SIGTTOU, -1);
		if (b < 0)
			return b;
	}
	switch (req) {
	case TIOCGPTPEER: {
		/* glibc's openpty() opens the slave this way. */
		if (!master)
			return -ENOTTY;
		if (a2 & ~(uint64_t)(O_ACCMODE | O_NOCTTY | O_NONBLOCK | O_CLOEXEC))
			return -EINVAL;
		struct sbx_ptys *r = ptys_of(vm);
		pthread_mutex_lock(&r->lock);
		int fd = open_slave(vm, p, (int)a2 | O_NOCTTY);
		pthread_mutex_unlock(&r->lock);
		if (fd < 0)
			return fd;
		int64_t n = install(vm, p, fd, 0, (int)a2, 0);
		if (n < 0)
			sbx_pty_drop(p, 0);
		return n;
	}
	case TIOCPKT:
	case TIOCGPKT:
		if (!master)
			return -ENOTTY;
		return host_request(vm, h, req, how, size, a2);
	case TIOCSWINSZ: {
		/* SIGWINCH to the foreground group when the size changes, as Linux's. */
		struct winsize old, now;
		if (sbx_copy_from_guest(vm, &now, a2, sizeof(now)) < 0)
			return -EFAULT;
		if (ioctl(h->fd, TIOCGWINSZ, &old) < 0 || ioctl(h->fd, TIOCSWINSZ, &now) < 0)
			return -errno;
		struct sbx_ptys *r = ptys_of(vm);
		pthread_mutex_lock(&r->lock);
		uint32_t fg = p->fg;
		pthread_mutex_unlock(&r->lock);
		if (memcmp(&old, &now, sizeof(old)) != 0)
			pty_signal(vm, fg, SIGWINCH);
		return 0;
	}
	case TIOCSCTTY:
	case TIOCNOTTY:
	case TIOCGPGRP:
	case TIOCSPGRP:
	case TIOCGSID:
	case TIOCGPTN:
	case TIOCGPTLCK:
	case TIOCSPTLCK: {
		int32_t v = 0, out = 0;
		if (how == SBX_IOCTL_IN && sbx_copy_from_guest(vm, &v, a2, sizeof(v)) < 0)
			return -EFAULT;
		if (how == SBX_IOCTL_OUT && !sbx_gptr(vm, a2, sizeof(out)))
			return -EFAULT;
		/* The group must be one of the caller's session (asked of the tree first: not
		 * under the registry's lock). */
		int g = req == TIOCSPGRP ? group_of_session(vm, v, vm->proc.sid) : 0;
		struct sbx_ptys *r = ptys_of(vm);
		pthread_mutex_lock(&r->lock);
		int64_t e = session_request(vm, p, master, req, g, v, &out);
		pthread_mutex_unlock(&r->lock);
		if (e < 0 || how != SBX_IOCTL_OUT)
			return e;
		return sbx_copy_to_guest(vm, a2, &out, sizeof(out));
	}
	}
	return host_request(vm, h, req, how, size, a2);
}
