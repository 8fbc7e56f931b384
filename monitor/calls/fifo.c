/* Opens of FIFOs that wait for the other end (ABI 1.19). The monitor opens every file with
 * O_NONBLOCK, so that no open can hold it; a FIFO opened for reading then has a reader already
 * (a writer waiting in its open goes on), and one for writing with no reader fails with ENXIO.
 * Where the program asked to wait, the open is kept for the calling vCPU (the reader's
 * descriptor, or the writer's O_PATH one) and the guest's kernel waits in OPEN_WAIT, without
 * its lock, for the host's own open of the same FIFO through /proc/self/fd: that returns once
 * a writer (reader) has opened it, or at once if one has it open, as Linux's fifo_open does. The
 * kept reader stays open while it waits, so a writer that came first is never left without a
 * reader; the one open this order misses, a writer's that ended before the wait began, shows
 * on the kept reader, looked at before the wait and every SBX_FIFO_LOOK_MS of it. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "calls.h"

/* How long a reader's wait goes before it looks at its kept reader again (open_waiting). */
#define SBX_FIFO_LOOK_MS 50

struct sbx_fifo_wait {
	struct sbx_fifo_wait *next;
	int vcpu;  /* whose open it is (sbx_thread_current) */
	int fd;	   /* the reader's descriptor, or an O_PATH one for a writer */
	int flags; /* the program's open flags */
	int writable;
	char *gpath;
};

static void wait_free(struct sbx_fifo_wait *w)
{
	if (w->fd >= 0)
		close(w->fd);
	free(w->gpath);
	free(w);
}

/* Unlinks and returns the open kept for this vCPU, if any. */
static struct sbx_fifo_wait *take(struct sbx_files *f, int vcpu)
{
	for (struct sbx_fifo_wait **p = &f->fifo_waits; *p; p = &(*p)->next) {
		struct sbx_fifo_wait *w = *p;
		if (w->vcpu == vcpu) {
			*p = w->next;
			return w;
		}
	}
	return NULL;
}

int sbx_fifo_waits(const struct sbx_vm *vm, int fd, int flags, int acc)
{
	struct stat st;
	return (vm->proc.image.khdr.abi_version & 0xffff) >= 19 &&
	       !(flags & (O_NONBLOCK | O_PATH)) && (flags & O_ACCMODE) == acc &&
	       fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

int64_t sbx_fifo_keep(struct sbx_vm *vm, int fd, int flags, const char *gpath, int writable)
{
	struct sbx_fifo_wait *w = calloc(1, sizeof(*w));
	char *g = strdup(gpath);
	if (!w || !g) {
		close(fd);
		free(w);
		free(g);
		return -ENOMEM;
	}
	*w = (struct sbx_fifo_wait){.vcpu = sbx_thread_current(),
				    .fd = fd,
				    .flags = flags,
				    .writable = writable,
				    .gpath = g};
	struct sbx_files *f = vm->proc.files;
	struct sbx_fifo_wait *old = take(f, w->vcpu);
	if (old)
		wait_free(old); /* an open the kernel gave up on without saying so */
	w->next = f->fifo_waits;
	f->fifo_waits = w;
	return -SBX_EOPEN_WAITS;
}

/* A writer came to the kept reader's FIFO and wrote, or came and went: the open is over. */
static int writer_came(const struct sbx_fifo_wait *w)
{
	struct pollfd p = {.fd = w->fd, .events = POLLIN};
	return (w->flags & O_ACCMODE) == O_RDONLY && poll(&p, 1, 0) == 1 &&
	       (p.revents & (POLLIN | POLLHUP));
}

/* The host's open of the FIFO, which waits for the other end. For a reader, not longer than
 * SBX_FIFO_LOOK_MS: a writer that came and went between the kept reader's open and this one
 * left no writer for it to see, only bytes or a hang-up on the kept reader (writer_came). */
static int open_waiting(const struct sbx_fifo_wait *w, int how)
{
	char path[32];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", w->fd);
	timer_t t;
	int timed = 0;
	if ((w->flags & O_ACCMODE) == O_RDONLY) {
		struct sigevent ev = {.sigev_notify = SIGEV_THREAD_ID,
				      .sigev_signo = sbx_kick_signal()};
		ev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
		struct itimerspec in = {.it_value = {0, SBX_FIFO_LOOK_MS * 1000000L}};
		timed = timer_create(CLOCK_MONOTONIC, &ev, &t) == 0;
		if (timed && timer_settime(t, 0, &in, NULL) < 0) {
			timer_delete(t);
			timed = 0;
		}
	}
	int fd = open(path, how);
	int err = errno;
	if (timed)
		timer_delete(t);
	errno = err;
	return fd;
}

int64_t sbx_hc_open_wait(struct sbx_vm *vm, const struct sbx_slot *s)
{
	struct sbx_files *f = vm->proc.files;
	struct sbx_fifo_wait *w = take(f, sbx_thread_current());
	if (s->u.a[0] == 1) {
		if (w)
			wait_free(w);
		return 0;
	}
	if (s->u.a[0] != 0)
		return -EINVAL;
	if (!w)
		return -SBX_EOPEN_WAITS;
	/* The status flags the program asked for; never O_CREAT or O_TRUNC again. */
	int how = (w->flags & (O_ACCMODE | O_APPEND | O_DSYNC | O_SYNC | O_NOATIME)) | O_NOCTTY |
		  O_CLOEXEC;
	int fd;
	if (writer_came(w)) {
		fd = w->fd;
		w->fd = -1;
		fcntl(fd, F_SETFL, how & (O_APPEND | O_NOATIME));
	} else {
		/* Unlinked meanwhile: other threads' requests go on, and may keep opens. */
		int released = sbx_ring_release(vm);
		fd = open_waiting(w, how);
		int err = errno;
		sbx_ring_reacquire(vm, released);
		if (fd < 0 && err == EINTR && writer_came(w)) {
			fd = w->fd;
			w->fd = -1;
			fcntl(fd, F_SETFL, how & (O_APPEND | O_NOATIME));
		} else if (fd < 0 && err == EINTR) {
			/* A signal, a pause, or only the look: the kernel asks again. */
			w->next = f->fifo_waits;
			f->fifo_waits = w;
			return -EINTR;
		}
		errno = err;
	}
	int err = errno;
	int cloexec = (w->flags & O_CLOEXEC) != 0, writable = w->writable;
	char *g = w->gpath;
	w->gpath = NULL;
	wait_free(w);
	int64_t n = fd < 0 ? -err : sbx_path_install(vm, fd, g, cloexec, writable);
	free(g);
	return n;
}

void sbx_fifo_waits_free(struct sbx_files *f)
{
	while (f->fifo_waits) {
		struct sbx_fifo_wait *w = f->fifo_waits;
		f->fifo_waits = w->next;
		wait_free(w);
	}
}
