/* File locks between the processes of a sandbox.
 *
 * Every process of a sandbox is a thread of one host process, the monitor, and the host's
 * POSIX record locks (fcntl F_SETLK) belong to a process: taken on the handles' own host
 * descriptors they would never conflict between the sandbox's processes, and two sqlite
 * writers would both hold the write lock. So a process's record locks are open file
 * description locks (F_OFD_SETLK) on a description of the file that this process alone holds
 * (struct sbx_lockfd, one per file it locks, opened again through /proc/self/fd/N), which is
 * what POSIX makes the owner: every descriptor of the file in the process shares them, the
 * first close of any of them drops them all, a fork's child has none, execve keeps them, and
 * they conflict with the other processes' and with any host process's locks.
 *
 * flock(2) and the program's own F_OFD_* locks belong to an open file description, which a
 * handle's host descriptor is (a fork's child shares its parent's, as on Linux): they are the
 * host's, on it.
 *
 * A request that waits (F_SETLKW, F_OFD_SETLKW, flock without LOCK_NB) is served by the vCPU's
 * own thread with ring_lock released, and tries again after growing sleeps (1 to 20 ms): the
 * monitor never blocks in the host's lock call, which no kick could end. A signal for the
 * thread, a pause or the end cut the wait short with EINTR, which the guest kernel turns into
 * another try unless a handler is to interrupt it. The price: a lock freed meanwhile is taken
 * up to a sleep late, and a deadlock between processes is not found (EDEADLK): each waits
 * until a signal or the end, as two OFD lock waiters do on Linux. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "calls.h"

struct sbx_lockfd {
	uint64_t dev, ino;
	int fd;	      /* the process's own description of the file, holding its record locks */
	uint64_t gen; /* which one: a close may drop it and a later lock open another */
};

static struct sbx_lockfd *owner_of(struct sbx_files *f, const struct stat *st)
{
	for (unsigned i = 0; i < f->nlocks; i++)
		if (f->locks[i].dev == (uint64_t)st->st_dev &&
		    f->locks[i].ino == (uint64_t)st->st_ino)
			return &f->locks[i];
	return NULL;
}

/* The description that owns the process's record locks on h's file, opened at its first
 * lock, and which one it is (*gen); -errno if it cannot be (the lock is then refused:
 * ENOLCK). */
static int owner_fd(struct sbx_vm *vm, const struct sbx_handle *h, uint64_t *gen)
{
	struct sbx_files *f = vm->proc.files;
	struct stat st;
	if (fstat(h->fd, &st) < 0)
		return -errno;
	/* Another description of a FIFO or a device is not free of effects (one more reader, a
	 * line's DTR): there the handle's own description owns the locks. */
	if (!S_ISREG(st.st_mode))
		return h->fd;
	const struct sbx_lockfd *had = owner_of(f, &st);
	if (had) {
		*gen = had->gen;
		return had->fd;
	}
	if (f->nlocks == f->locks_cap) {
		unsigned cap = f->locks_cap ? 2 * f->locks_cap : 4;
		struct sbx_lockfd *n = realloc(f->locks, cap * sizeof(*n));
		if (!n)
			return -ENOLCK;
		f->locks = n;
		f->locks_cap = cap;
	}
	/* Only for locks, never read or written: read-write where the host allows it, so that
	 * one description serves every handle's lock (the guest's own mode was checked). */
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", h->fd);
	int fd = -1;
	for (int i = 0; i < 3 && fd < 0; i++)
		fd = open(path, (i == 0	  ? O_RDWR
				 : i == 1 ? O_RDONLY
					  : O_WRONLY) |
				    O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -ENOLCK;
	*gen = ++f->locks_gen;
	f->locks[f->nlocks++] =
	    (struct sbx_lockfd){(uint64_t)st.st_dev, (uint64_t)st.st_ino, fd, *gen};
	return fd;
}

void sbx_locks_closing(struct sbx_vm *vm, const struct sbx_handle *h)
{
	struct sbx_files *f = vm->proc.files;
	struct stat st;
	if (!f->nlocks || h->kind != SBX_H_HOST || h->fd < 0 || fstat(h->fd, &st) < 0)
		return;
	struct sbx_lockfd *l = owner_of(f, &st);
	if (l) {
		close(l->fd); /* POSIX: any close drops the process's locks */
		*l = f->locks[--f->nlocks];
		uint64_t dev = (uint64_t)st.st_dev, ino = (uint64_t)st.st_ino;
		sbx_lockreg_drop(f->owners, vm->proc.pid, &dev, &ino);
	}
}

void sbx_locks_free(struct sbx_vm *vm)
{
	struct sbx_files *f = vm->proc.files;
	for (unsigned i = 0; i < f->nlocks; i++)
		close(f->locks[i].fd);
	if (f->nlocks) /* the list has entries of this process's only while it has owners */
		sbx_lockreg_drop(f->owners, vm->proc.pid, NULL, NULL);
	free(f->locks);
	f->locks = NULL;
	f->nlocks = f->locks_cap = 0;
}

void sbx_locks_reset(struct sbx_vm *vm)
{
	struct sbx_files *f = vm->proc.files;
	if (!f->locked)
		return;
	struct flock all = {.l_type = F_UNLCK, .l_whence = SEEK_SET};
	for (int i = 0; i < SBX_MAX_FDS; i++) {
		const struct sbx_handle *h = &f->fds[i];
		if (h->kind != SBX_H_HOST || h->stdio >= 0 || h->fd < 0)
			continue;
		flock(h->fd, LOCK_UN);
		fcntl(h->fd, F_OFD_SETLK, &all);
	}
	sbx_locks_free(vm);
	f->locked = 0;
}

/* One try: 0, or -errno (EAGAIN when another holds it). */
typedef int (*lock_try_fn)(int fd, void *arg);

static int try_ofd(int fd, void *arg)
{
	struct flock *fl = arg;
	if (fcntl(fd, F_OFD_SETLK, fl) == 0)
		return 0;
	return errno == EACCES ? -EAGAIN : -errno;
}

static int try_flock(int fd, void *arg)
{
	return flock(fd, *(int *)arg | LOCK_NB) == 0 ? 0 : errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

/* Is the owner that was (gen) still the process's owner of h's file? */
static int owner_still(struct sbx_vm *vm, int64_t guest_fd, uint64_t gen)
{
	struct sbx_handle *h = sbx_fd_get(vm, guest_fd);
	struct stat st;
	const struct sbx_lockfd *l = h && h->kind == SBX_H_HOST && fstat(h->fd, &st) == 0
					 ? owner_of(vm->proc.files, &st)
					 : NULL;
	return l && l->gen == gen;
}

/* Tries, and unless `wait` is 0 waits for it as the comment at the top says. gen: the record
 * lock owner's (0 for a description's own locks), looked at again after the wait. */
static int64_t lock_wait(struct sbx_vm *vm, const struct sbx_slot *s, int fd, int wait,
			 uint64_t gen, lock_try_fn try, void *arg)
{
	int r = try(fd, arg);
	if (r == 0)
		vm->proc.files->locked = 1;
	if (r != -EAGAIN || !wait)
		return r;
	if (!(s->pad & SBX_SLOT_OWN))
		return -EINVAL; /* the poller would hold ring_lock through it */
	/* Its own duplicate: another thread may close the handle meanwhile. */
	int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (own < 0)
		return -errno;
	int released = sbx_ring_release(vm);
	const struct sbx_bootinfo *b = sbx_gptr_ro(vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	long ns = 1000000;
	while (r == -EAGAIN) {
		if (atomic_load(&vm->life.stopping) || atomic_load(&vm->life.pause_req) ||
		    __atomic_load_n(&b->sig_incoming, __ATOMIC_RELAXED)) {
			r = -EINTR;
			break;
		}
		struct timespec t = {0, ns};
		if (nanosleep(&t, NULL) < 0 && errno == EINTR) {
			r = -EINTR; /* a kick: a signal for this thread, or the run's end */
			break;
		}
		ns = ns < 20000000 ? ns * 2 : 20000000;
		r = try(own, arg);
	}
	sbx_ring_reacquire(vm, released);
	vm->proc.files->locked = 1;
	/* A close of another descriptor of the file meanwhile dropped the owner this lock was
	 * taken on: let go of it, and the guest asks again, through a new owner. */
	if (r == 0 && gen && !owner_still(vm, (int64_t)s->u.a[0], gen))
		r = -EINTR;
	close(own);
	return r;
}

/* A lock request must name a regular file of a mount (stdio is the user's own file; a
 * virtual file has no host description: nothing to conflict with, so it always succeeds). */
static struct sbx_handle *lockable(struct sbx_vm *vm, int64_t fd, int64_t *err)
{
	struct sbx_handle *h = sbx_fd_get(vm, fd);
	*err = h ? 0 : -EBADF;
	return h && h->kind == SBX_H_HOST && h->stdio < 0 ? h : NULL;
}

int64_t sbx_fcntl_lock(struct sbx_vm *vm, const struct sbx_slot *s)
{
	int64_t e;
	int cmd = (int)s->u.a[1];
	struct sbx_handle *h = lockable(vm, (int64_t)s->u.a[0], &e);
	struct flock fl;
	if (e < 0)
		return e;
	if (sbx_copy_from_guest(vm, &fl, s->u.a[2], sizeof(fl)) < 0)
		return -EFAULT;
	int ofd = cmd == F_OFD_GETLK || cmd == F_OFD_SETLK || cmd == F_OFD_SETLKW;
	if (fl.l_type != F_RDLCK && fl.l_type != F_WRLCK && fl.l_type != F_UNLCK)
		return -EINVAL;
	if (ofd && fl.l_pid != 0)
		return -EINVAL;
	if (!h) { /* stdio or a virtual file: nobody else can hold it */
		if (cmd == F_GETLK || cmd == F_OFD_GETLK) {
			fl.l_type = F_UNLCK;
			return sbx_copy_to_guest(vm, s->u.a[2], &fl, sizeof(fl));
		}
		return 0;
	}
	/* Linux's checks on the descriptor the program gave. */
	int acc = fcntl(h->fd, F_GETFL);
	if (acc < 0)
		return -errno;
	acc &= O_ACCMODE;
	if ((cmd != F_GETLK && cmd != F_OFD_GETLK) && ((fl.l_type == F_RDLCK && acc == O_WRONLY) ||
						       (fl.l_type == F_WRLCK && acc == O_RDONLY)))
		return -EBADF;
	uint64_t gen = 0;
	int fd = ofd ? h->fd : owner_fd(vm, h, &gen);
	if (fd < 0)
		return fd;
	/* The owner's offset is not the handle's: a lock from the current position (lockf's)
	 * is made absolute first. */
	if (fd != h->fd && fl.l_whence == SEEK_CUR) {
		off_t cur = lseek(h->fd, 0, SEEK_CUR);
		if (cur < 0)
			return -errno;
		if (__builtin_add_overflow(fl.l_start, cur, &fl.l_start))
			return -EOVERFLOW;
		fl.l_whence = SEEK_SET;
	}
	fl.l_pid = 0;
	struct stat st;
	if (fstat(h->fd, &st) < 0)
		return -errno;
	int64_t start, end, qs = 0, qe = 0;
	if (cmd == F_GETLK || cmd == F_OFD_GETLK) {
		/* The range asked about: the holder's lock meets it too (a program's own OFD
		 * lock may be what the host reports, and a list entry elsewhere is not it). */
		int64_t qbase = fl.l_whence == SEEK_END ? (int64_t)st.st_size : 0;
		int asked = qbase >= 0 && fl.l_whence != SEEK_CUR &&
			    sbx_lock_range(&fl, qbase, &qs, &qe) == 0;
		if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
			return -errno;
		/* A process of the sandbox holds it, named by the sandbox's list; or a host
		 * process, which the program cannot name: -1, as Linux says for an OFD lock's
		 * holder, which is what the program's own F_OFD_GETLK gets. */
		if (fl.l_type != F_UNLCK)
			fl.l_pid =
			    !ofd && asked && sbx_lock_range(&fl, 0, &start, &end) == 0
				? sbx_lockreg_holder(vm->proc.files->owners, vm->proc.pid,
						     (uint64_t)st.st_dev, (uint64_t)st.st_ino,
						     start > qs ? start : qs, end < qe ? end : qe,
						     fl.l_type)
				: -1;
		return sbx_copy_to_guest(vm, s->u.a[2], &fl, sizeof(fl));
	}
	/* The range as the host will take it, for the list of holders. */
	int64_t base = fl.l_whence == SEEK_END	 ? (int64_t)st.st_size
		       : fl.l_whence == SEEK_CUR ? (int64_t)lseek(fd, 0, SEEK_CUR)
						 : 0;
	/* Regular files only: another kind's locks are its handle's description's (owner_fd),
	 * and no close of the file would drop their entries. */
	int listed =
	    !ofd && fd != h->fd && base >= 0 && sbx_lock_range(&fl, base, &start, &end) == 0;
	int64_t r = lock_wait(vm, s, fd, cmd == F_SETLKW || cmd == F_OFD_SETLKW, gen, try_ofd, &fl);
	if (r == 0 && listed)
		sbx_lockreg_set(vm->proc.files->owners, vm->proc.pid, (uint64_t)st.st_dev,
				(uint64_t)st.st_ino, start, end, fl.l_type);
	return r;
}

int64_t sbx_hc_flock(struct sbx_vm *vm, const struct sbx_slot *s)
{
	int64_t e;
	uint64_t op = s->u.a[1];
	if (op & 32 /* LOCK_MAND */)
		return 0; /* as Linux since 5.15: accepted, and nothing done, first of all */
	struct sbx_handle *h = lockable(vm, (int64_t)s->u.a[0], &e);
	if (e < 0)
		return e;
	int how = (int)(op & ~(uint64_t)LOCK_NB);
	if ((op & ~(uint64_t)(LOCK_SH | LOCK_EX | LOCK_UN | LOCK_NB)) ||
	    (how != LOCK_SH && how != LOCK_EX && how != LOCK_UN))
		return -EINVAL;
	if (!h)
		return 0;
	return lock_wait(vm, s, h->fd, !(op & LOCK_NB), 0, try_flock, &how);
}
