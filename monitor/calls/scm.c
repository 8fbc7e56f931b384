/* Descriptors passed over local sockets (SCM_RIGHTS, ABI 1.19), as multiprocessing's
 * forkserver and resource sharer, libuv's IPC and socket-activated servers pass them. The
 * host's own SCM_RIGHTS carries the host fds behind the sender's handles, so the receiver gets
 * the very same open files, and a message that is never read closes them as on Linux (nothing
 * here holds them meanwhile). The receiver's handles are made from what the host fd is: a
 * pipe, socket, eventfd, epoll instance, timerfd, inotify instance or memfd by its /proc link;
 * a file of a mount, a stdio handle (whose output the limits count) or a named socket by what
 * the sender's handle was, kept sandbox-wide by device and inode when it was sent. A
 * descriptor that is none of these (one a process outside the sandbox sent) is not installed:
 * the message says MSG_CTRUNC, as Linux says when descriptors cannot be received. Descriptors
 * go one request ahead of the message they belong to: SCM_SEND stages the sender's, for its
 * vCPU, and the WRITEV marked SBX_RW_CTL sends them; the READV marked SBX_RW_CTL installs what
 * came, which SCM_TAKE then writes into the kernel's control buffer. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "calls.h"

#define SBX_PASSED_MAX 1024 /* files whose handles the registry remembers, newest kept */

struct sbx_scm {
	struct sbx_scm *next;
	int vcpu;
	int recv;  /* 0: to send; 1: received, installed by SCM_TAKE */
	int n;	   /* how many host fds (owned) */
	int trunc; /* received: the host cut the message (MSG_CTRUNC) */
	int cloexec;
	int peek; /* received with MSG_PEEK: the message, and its memfds' holds, stay queued */
	int fds[SBX_SCM_MAX];
	/* Each memfd's: to send, its hold while in flight; received, the one found for it. */
	struct sbx_memfd *memfds[SBX_SCM_MAX];
};

/* One descriptor of m that goes nowhere: closed, and a memfd's holds let go (to send: the hold
 * in flight; received: the one found for it, and the sender's in flight, which a peek leaves
 * with the message still queued). */
static void discard(struct sbx_scm *m, int i)
{
	close(m->fds[i]);
	sbx_memfd_drop(m->memfds[i]);
	if (m->recv && !m->peek)
		sbx_memfd_drop(m->memfds[i]);
	m->memfds[i] = NULL;
}

static void scm_free(struct sbx_scm *m)
{
	if (!m)
		return;
	for (int i = 0; i < m->n; i++)
		discard(m, i);
	free(m);
}

/* Unlinks and returns this vCPU's staged descriptors of that direction. */
static struct sbx_scm *take(struct sbx_files *f, int vcpu, int recv)
{
	for (struct sbx_scm **p = &f->scms; *p; p = &(*p)->next) {
		struct sbx_scm *m = *p;
		if (m->vcpu == vcpu && m->recv == recv) {
			*p = m->next;
			return m;
		}
	}
	return NULL;
}

static void stage(struct sbx_files *f, struct sbx_scm *m)
{
	scm_free(take(f, m->vcpu, m->recv));
	m->next = f->scms;
	f->scms = m;
}

void sbx_scm_free_all(struct sbx_files *f)
{
	while (f->scms) {
		struct sbx_scm *m = f->scms;
		f->scms = m->next;
		scm_free(m);
	}
}

/* The registry: what a handle was, by the device and inode of its host fd. A copy without an
 * fd (no open file is held); the newest of each file wins. */
static void remember(struct sbx_socks *k, const struct sbx_handle *h)
{
	struct stat st;
	if (fstat(h->fd, &st) < 0)
		return;
	struct sbx_handle meta;
	if (sbx_fd_meta_copy(&meta, h) < 0)
		return;
	pthread_mutex_lock(&k->lock);
	unsigned i = 0;
	while (i < k->npassed &&
	       (k->passed[i].dev != (uint64_t)st.st_dev || k->passed[i].ino != (uint64_t)st.st_ino))
		i++;
	if (i == k->npassed && k->npassed == SBX_PASSED_MAX) {
		sbx_fd_meta_free(&k->passed[0].h); /* the oldest goes */
		memmove(&k->passed[0], &k->passed[1], (SBX_PASSED_MAX - 1) * sizeof(k->passed[0]));
		i = --k->npassed;
	}
	if (i == k->npassed && !k->passed) {
		k->passed = calloc(SBX_PASSED_MAX, sizeof(*k->passed));
		if (!k->passed) {
			pthread_mutex_unlock(&k->lock);
			sbx_fd_meta_free(&meta);
			return;
		}
	}
	if (i < k->npassed)
		sbx_fd_meta_free(&k->passed[i].h);
	else
		k->npassed++;
	k->passed[i] = (struct sbx_passed){(uint64_t)st.st_dev, (uint64_t)st.st_ino, meta};
	pthread_mutex_unlock(&k->lock);
}

static int recall(struct sbx_socks *k, const struct stat *st, struct sbx_handle *out)
{
	int r = -ENOENT;
	pthread_mutex_lock(&k->lock);
	for (unsigned i = k->npassed; i-- > 0;) {
		if (k->passed[i].dev == (uint64_t)st->st_dev &&
		    k->passed[i].ino == (uint64_t)st->st_ino) {
			r = sbx_fd_meta_copy(out, &k->passed[i].h);
			break;
		}
	}
	pthread_mutex_unlock(&k->lock);
	return r;
}

void sbx_scm_registry_free(struct sbx_socks *k)
{
	for (unsigned i = 0; i < k->npassed; i++)
		sbx_fd_meta_free(&k->passed[i].h);
	free(k->passed);
	k->passed = NULL;
	k->npassed = 0;
}

int64_t sbx_scm_send(struct sbx_vm *vm, uint64_t gpa, uint64_t n)
{
	if (n == 0 || n > SBX_SCM_MAX)
		return -EINVAL;
	int32_t g[SBX_SCM_MAX];
	if (sbx_copy_from_guest(vm, g, gpa, n * sizeof(g[0])) < 0)
		return -EFAULT;
	struct sbx_scm *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->vcpu = sbx_thread_current();
	for (uint64_t i = 0; i < n; i++) {
		const struct sbx_handle *h = sbx_fd_get(vm, g[i]);
		/* A terminal's session state is the sandbox's (pty.c), not the descriptor's. */
		int e = !h ? -EBADF
			: h->kind != SBX_H_HOST || h->obj == SBX_O_PTY || h->obj == SBX_O_SIGNALFD
			    ? -EOPNOTSUPP
			    : 0;
		if (e == 0 && (m->fds[m->n] = fcntl(h->fd, F_DUPFD_CLOEXEC, 3)) < 0)
			e = -errno;
		if (e < 0) {
			if (e == -EOPNOTSUPP)
				sbx_log(vm, 1,
					"SCM_RIGHTS: fd %d is the sandbox's own (%s), "
					"which no other process can be given",
					g[i], h->gpath ? h->gpath : "?");
			scm_free(m);
			return e;
		}
		/* A memfd in flight still counts toward --mem: a hold that its receiver takes over
		 * (and that a message never read keeps, erring on the side of the limit). */
		m->memfds[m->n] = h->memfd;
		sbx_memfd_hold(h->memfd);
		m->n++;
		if (h->obj == SBX_O_FILE || h->obj == SBX_O_USOCK || h->stdio >= 0)
			remember(sbx_socks_of(vm), h);
	}
	stage(vm->proc.files, m);
	return 0;
}

int sbx_scm_control(struct sbx_vm *vm, void *buf, size_t cap, size_t *len)
{
	struct sbx_scm *m = take(vm->proc.files, sbx_thread_current(), 0);
	if (!m)
		return -EINVAL;
	size_t need = CMSG_SPACE((size_t)m->n * sizeof(int));
	if (need > cap) {
		scm_free(m);
		return -ENOBUFS;
	}
	memset(buf, 0, need);
	struct cmsghdr *c = buf;
	c->cmsg_len = CMSG_LEN((size_t)m->n * sizeof(int));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	memcpy(CMSG_DATA(c), m->fds, (size_t)m->n * sizeof(int));
	*len = need;
	/* Kept until the message went: an interrupted send is made again with them. */
	stage(vm->proc.files, m);
	return 0;
}

void sbx_scm_sent(struct sbx_vm *vm, int64_t ret, int went)
{
	struct sbx_files *f = vm->proc.files;
	struct sbx_scm *m = take(f, sbx_thread_current(), 0);
	if (!m)
		return;
	if (ret == -EINTR) { /* made again with them */
		stage(f, m);
		return;
	}
	if (went) /* the memfds' holds went with them */
		memset(m->memfds, 0, sizeof(m->memfds));
	scm_free(m);
}

/* A handle for a host fd another process sent: what it is, from the registry or its link. */
static int64_t install(struct sbx_vm *vm, int fd, int cloexec, int peek, struct sbx_memfd *mf)
{
	struct stat st;
	char link[64], what[128] = "";
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -EBADF;
	}
	struct sbx_handle h;
	if (!mf && recall(sbx_socks_of(vm), &st, &h) == 0) {
		int n = sbx_fd_alloc(vm, 0);
		if (n < 0) {
			sbx_fd_meta_free(&h);
			close(fd);
			return n;
		}
		h.fd = fd;
		h.cloexec = cloexec;
		h.oid = ++vm->proc.files->next_oid;
		h.passed = 1;
		vm->proc.files->fds[n] = h;
		return n;
	}
	/* The monitor's own stdio (forgotten by the registry): still stdio, its output counted. */
	const int std[3] = {vm->cfg.stdin_fd, vm->cfg.stdout_fd, vm->cfg.stderr_fd};
	for (int i = 0; i < 3 && !mf; i++) {
		struct stat ss;
		if (std[i] >= 0 && fstat(std[i], &ss) == 0 && ss.st_dev == st.st_dev &&
		    ss.st_ino == st.st_ino) {
			int64_t n = sbx_handle_add(vm, fd, SBX_O_FILE, cloexec, 1);
			if (n >= 0) {
				struct sbx_handle *sh = &vm->proc.files->fds[n];
				sh->stdio = i;
				sh->may_block = 0; /* found at its first use, as stdio's is */
				sh->passed = 1;
			}
			return n;
		}
	}
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t l = readlink(link, what, sizeof(what) - 1);
	what[l > 0 ? l : 0] = 0;
	enum sbx_handle_obj obj;
	int dom = 0;
	socklen_t dl = sizeof(dom);
	if (mf) /* one of the sandbox's memfds, found by its inode */
		obj = SBX_O_MEMFD;
	else if (strncmp(what, "pipe:", 5) == 0)
		obj = SBX_O_PIPE;
	else if (strncmp(what, "socket:", 7) == 0 &&
		 getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &dl) == 0 && dom == AF_UNIX)
		obj = SBX_O_USOCK;
	else if (strcmp(what, "anon_inode:[eventfd]") == 0)
		obj = SBX_O_EVENTFD;
	else if (strcmp(what, "anon_inode:[eventpoll]") == 0)
		obj = SBX_O_EPOLL;
	else if (strcmp(what, "anon_inode:[timerfd]") == 0)
		obj = SBX_O_TIMERFD;
	else if (strcmp(what, "anon_inode:inotify") == 0)
		obj = SBX_O_INOTIFY;
	else {
		sbx_log(vm, 1,
			"SCM_RIGHTS: a descriptor (%s) that came from outside the sandbox "
			"dropped",
			what[0] ? what : "?");
		close(fd);
		return -EPERM;
	}
	/* The sender's hold in flight is this handle's now (find took one more), unless the
	 * message stays queued for a read after this peek. */
	if (!peek)
		sbx_memfd_drop(mf);
	int64_t n = sbx_handle_add(vm, fd, obj, cloexec, 1);
	if (n < 0) {
		sbx_memfd_drop(mf);
		return n;
	}
	struct sbx_handle *nh = &vm->proc.files->fds[n];
	nh->passed = 1;
	nh->memfd = mf;
	if (obj == SBX_O_MEMFD)
		nh->gpath = strdup(what); /* Linux's link text is the guest path of a memfd */
	if (obj == SBX_O_TIMERFD)
		nh->clock = CLOCK_MONOTONIC;
	return n;
}

int sbx_scm_received(struct sbx_vm *vm, const struct msghdr *m, int cloexec, int peek)
{
	struct sbx_scm *r = calloc(1, sizeof(*r));
	int trunc = (m->msg_flags & MSG_CTRUNC) != 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR((struct msghdr *)m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (!r || r->n == SBX_SCM_MAX) {
				close(fd); /* not ours to take: the host gives no more than asked */
				trunc = 1;
				continue;
			}
			struct stat st;
			r->memfds[r->n] = fstat(fd, &st) == 0 ? sbx_memfd_find(vm, &st) : NULL;
			r->fds[r->n++] = fd;
		}
	}
	if (!r)
		return -ENOMEM;
	r->vcpu = sbx_thread_current();
	r->recv = 1;
	r->trunc = trunc;
	r->cloexec = cloexec;
	r->peek = peek;
	stage(vm->proc.files, r);
	return 0;
}

int64_t sbx_scm_take(struct sbx_vm *vm, uint64_t gpa, uint64_t cap)
{
	struct sbx_scm *r = take(vm->proc.files, sbx_thread_current(), 1);
	if (!r)
		return 0;
	/* As Linux's scm_detach_fds: what fits is installed; the rest is closed, MSG_CTRUNC. */
	int64_t fit = cap < CMSG_LEN(0) ? 0 : (int64_t)((cap - CMSG_LEN(0)) / sizeof(int));
	int trunc = r->trunc, got[SBX_SCM_MAX], k = 0;
	for (int i = 0; i < r->n; i++) {
		if (k >= fit) {
			discard(r, i);
			trunc = 1;
			continue;
		}
		int64_t n = install(vm, r->fds[i], r->cloexec, r->peek, r->memfds[i]);
		if (n < 0)
			trunc = 1;
		else
			got[k++] = (int)n;
	}
	r->n = 0; /* installed or gone */
	free(r);
	int64_t used = 0;
	if (k > 0) {
		uint8_t buf[CMSG_SPACE(SBX_SCM_MAX * sizeof(int))];
		struct cmsghdr *c = (struct cmsghdr *)buf;
		memset(buf, 0, sizeof(buf));
		c->cmsg_len = CMSG_LEN((size_t)k * sizeof(int));
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		memcpy(CMSG_DATA(c), got, (size_t)k * sizeof(int));
		used = (int64_t)CMSG_SPACE((size_t)k * sizeof(int));
		if ((uint64_t)used > cap)
			used = (int64_t)cap;
		if (sbx_copy_to_guest(vm, gpa, buf, (uint64_t)used) < 0) {
			for (int i = 0; i < k; i++)
				sbx_fd_release(vm, got[i]);
			return -EFAULT;
		}
	}
	return used | (int64_t)trunc << 32;
}
