/* File syscalls: the kernel checks the program's buffers against its mappings, measures
 * strings and reshapes arguments; the monitor checks every address against guest RAM and every
 * path against the policy itself, and owns the handle table. */
#include "kernel.h"

#define AT_SYMLINK_NOFOLLOW 0x100
#define AT_REMOVEDIR 0x200
#define AT_EMPTY_PATH 0x1000
#define O_CREAT 0100
#define O_WRONLY 01
#define O_TRUNC 01000
#define F_DUPFD 0
#define F_DUPFD_CLOEXEC 1030
#define O_CLOEXEC 02000000
#define F_GETLK 5
#define F_SETLK 6
#define F_SETLKW 7
#define F_OFD_GETLK 36
#define F_OFD_SETLK 37
#define F_OFD_SETLKW 38
#define LOCK_NB 4
#define LOCK_UN 8
#define FIONBIO 0x5421
#define O_NONBLOCK 04000
#define FIONCLEX 0x5450
#define FIOCLEX 0x5451
/* x86-64 Linux's TASK_SIZE_MAX: an iovec reaching above it is EFAULT before any transfer. */
#define K_TASK_SIZE 0x7ffffffff000ull

/* Where the monitor writes results whose size the kernel only learns from it (a link target,
 * the cwd): the program's buffer is then checked for the bytes Linux would copy, no more. One
 * thread, so one static buffer. */
static char k_bounce[SBX_PATH_MAX];

static long path_arg(struct sbx_path *p, int32_t dirfd, uint64_t path, uint32_t flags)
{
	k_memset(p, 0, sizeof(*p));
	long n = k_user_strlen(path, SBX_PATH_MAX);
	if (n < 0)
		return n;
	p->dirfd = dirfd;
	p->path = path;
	p->path_len = (uint32_t)n;
	p->flags = flags;
	return 0;
}

static long path_call(uint32_t nr, int32_t dirfd, uint64_t path, uint32_t flags, uint32_t mode,
		      uint64_t buf, uint64_t buf_len)
{
	struct sbx_path p;
	long r = path_arg(&p, dirfd, path, flags);
	if (r < 0)
		return r;
	p.mode = mode;
	p.buf = buf;
	p.buf_len = buf_len;
	return k_call_path(nr, &p);
}

/* Nothing can be transferred: EFAULT, but a bad or unsuitable fd comes first, as on Linux (a
 * call of 0 bytes tells). */
static long efault_after(uint32_t nr, int32_t fd, int64_t off)
{
	/* Nothing moves, descriptors neither (SCM_RIGHTS: those staged stay there). */
	long r = k_call_rw(nr, fd, 0, 0, off & ~(int64_t)SBX_RW_CTL);
	return r < 0 ? r : -EFAULT;
}

/* A transfer to or from a program buffer covers its bytes up to the first one the program may
 * not access (`need`: K_WRITE for a read), and is EFAULT when that leaves none. Linux, too,
 * transfers what comes before a bad byte and fails only when that is nothing, but for two
 * cases not followed here: a read at end of file is 0 there even into a bad buffer, and a
 * write to a pipe fails with EFAULT rather than take part of a page. */
static long rw_call(uint32_t nr, int32_t fd, uint64_t buf, uint64_t len, int64_t off, unsigned need)
{
	uint64_t ok = k_user_span(buf, len, need);
	if (!ok && len)
		return efault_after(nr, fd, off);
	if (nr == SBX_CALL_READ || nr == SBX_CALL_WRITE)
		return k_call_rw_wait(nr, fd, buf, ok);
	return k_call_rw(nr, fd, buf, ok, off);
}

/* The same for a vector: the monitor reads the kernel's checked copy of it, cut at the first
 * element the program may not access wholly (that element shortened to what it may). v is
 * on this vCPU's own stack: the request may go without the lock. off: READV/WRITEV's. */
long k_rwv_checked(uint32_t nr, int32_t fd, struct sbx_iovec *v, uint64_t cnt, int64_t off)
{
	unsigned need = nr == SBX_CALL_READV ? K_WRITE : K_READ;
	for (uint64_t i = 0; i < cnt; i++)
		if (v[i].len && (v[i].len > K_TASK_SIZE || v[i].base > K_TASK_SIZE - v[i].len))
			return efault_after(nr, fd, off);
	uint64_t total = 0;
	for (uint64_t i = 0; i < cnt; i++) {
		uint64_t ok = k_user_span(v[i].base, v[i].len, need);
		if (ok < v[i].len) {
			if (!total && !ok)
				return efault_after(nr, fd, off);
			v[i].len = ok;
			cnt = i + 1;
			break;
		}
		total += ok;
	}
	return k_call_rwf_wait(nr, fd, (uint64_t)v, cnt, off);
}

static long rwv_call(uint32_t nr, int32_t fd, uint64_t iov, uint64_t cnt)
{
	struct sbx_iovec v[SBX_IOV_MAX];
	if (cnt > SBX_IOV_MAX)
		return -EINVAL;
	if (k_copy_from_user(v, iov, cnt * sizeof(v[0])) < 0)
		return efault_after(nr, fd, 0);
	return k_rwv_checked(nr, fd, v, cnt, 0);
}

long k_sys_read(struct k_frame *f)
{
	if (f->rdi == 0)
		k_exec_stdin_point();
	long r = rw_call(SBX_CALL_READ, (int32_t)f->rdi, f->rsi, f->rdx, 0, K_WRITE);
	return r == -SBX_ESIGNALFD ? k_signalfd_read((int32_t)f->rdi, f->rsi, f->rdx) : r;
}

/* A write to a pipe nobody reads: EPIPE, and SIGPIPE to the writer (the monitor ignores its
 * own, so the decision is the program's, as on Linux). */
long k_epipe(struct k_frame *f, long r)
{
	return r == -EPIPE ? k_signal_self(f, SIGPIPE, r) : r;
}

long k_sys_write(struct k_frame *f)
{
	return k_epipe(f, rw_call(SBX_CALL_WRITE, (int32_t)f->rdi, f->rsi, f->rdx, 0, K_READ));
}

long k_sys_readv(struct k_frame *f)
{
	if (f->rdi == 0)
		k_exec_stdin_point();
	long r = rwv_call(SBX_CALL_READV, (int32_t)f->rdi, f->rsi, f->rdx);
	if (r != -SBX_ESIGNALFD)
		return r;
	/* Into the first buffer, as Linux's loop over a file with no read_iter fills it first. */
	struct sbx_iovec v;
	if (f->rdx == 0)
		return 0;
	if (k_copy_from_user(&v, f->rsi, sizeof(v)) < 0)
		return -EFAULT;
	return k_signalfd_read((int32_t)f->rdi, v.base, v.len);
}

long k_sys_writev(struct k_frame *f)
{
	return k_epipe(f, rwv_call(SBX_CALL_WRITEV, (int32_t)f->rdi, f->rsi, f->rdx));
}

long k_sys_pread64(struct k_frame *f)
{
	return rw_call(SBX_CALL_PREAD, (int32_t)f->rdi, f->rsi, f->rdx, (int64_t)f->r10, K_WRITE);
}

long k_sys_pwrite64(struct k_frame *f)
{
	return k_epipe(
	    f, rw_call(SBX_CALL_PWRITE, (int32_t)f->rdi, f->rsi, f->rdx, (int64_t)f->r10, K_READ));
}

/* preadv, pwritev and their v2 forms: one PREAD or PWRITE per element, each at the offset the
 * ones before reached; a short one ends it, as the file's end ends Linux's. A v2 offset of -1
 * is the file's own position (readv, writev). The RWF_ flags a transfer here needs nothing for
 * pass (HIPRI; DSYNC and SYNC, which an fdatasync after the write makes good); the others are
 * EOPNOTSUPP, as Linux says for a file that cannot honour them. */
#define K_RWF_HIPRI 1
#define K_RWF_DSYNC 2
#define K_RWF_SYNC 4
static long prwv(struct k_frame *f, int write, int v2, uint64_t flags)
{
	int32_t fd = (int32_t)f->rdi;
	int64_t off = (int64_t)f->r10;
	uint64_t cnt = f->rdx;
	if (flags & ~(uint64_t)(K_RWF_HIPRI | K_RWF_DSYNC | K_RWF_SYNC))
		return -EOPNOTSUPP;
	if (off == -1 && v2)
		return write ? k_sys_writev(f) : k_sys_readv(f);
	if (off < 0 || cnt > SBX_IOV_MAX)
		return -EINVAL;
	struct sbx_iovec v[SBX_IOV_MAX];
	uint32_t nr = write ? SBX_CALL_PWRITE : SBX_CALL_PREAD;
	if (k_copy_from_user(v, f->rsi, cnt * sizeof(v[0])) < 0)
		return efault_after(nr, fd, off);
	/* As Linux, up front: a vector longer than SSIZE_MAX in all, or one that would reach
	 * past the largest offset, is EINVAL, before any of it moves. */
	uint64_t sum = 0;
	for (uint64_t i = 0; i < cnt; i++) {
		if (v[i].len > (uint64_t)INT64_MAX - sum)
			return -EINVAL;
		sum += v[i].len;
	}
	if (sum > (uint64_t)INT64_MAX - (uint64_t)off)
		return -EINVAL;
	long total = 0, r = 0;
	for (uint64_t i = 0; i < cnt; i++) {
		if (!v[i].len)
			continue;
		r = rw_call(nr, fd, v[i].base, v[i].len, off + total, write ? K_READ : K_WRITE);
		if (r < 0)
			break;
		total += r;
		if ((uint64_t)r < v[i].len)
			break;
	}
	if (!total && r == 0) /* nothing to move: the descriptor is still checked */
		r = rw_call(nr, fd, 0, 0, off, 0);
	if (total && write && (flags & (K_RWF_DSYNC | K_RWF_SYNC)))
		k_sys_fdatasync(f);
	r = total ? total : r;
	return write ? k_epipe(f, r) : r;
}

long k_sys_preadv(struct k_frame *f)
{
	return prwv(f, 0, 0, 0);
}

long k_sys_pwritev(struct k_frame *f)
{
	return prwv(f, 1, 0, 0);
}

long k_sys_preadv2(struct k_frame *f)
{
	return prwv(f, 0, 1, (uint32_t)f->r9);
}

long k_sys_pwritev2(struct k_frame *f)
{
	return prwv(f, 1, 1, (uint32_t)f->r9);
}

/* An open; one of a FIFO that waits for its other end (1.19) waits as a read does, without
 * the kernel's lock: a signal to handle ends it with EINTR, or makes it again after a handler
 * with SA_RESTART, as Linux's fifo_open does. */
static long open_call(int32_t dirfd, uint64_t path, uint32_t flags, uint32_t mode)
{
	long r = path_call(SBX_CALL_OPEN, dirfd, path, flags, mode, 0, 0);
	if (r != -SBX_EOPEN_WAITS)
		return r;
	uint64_t a[1] = {0};
	for (;;) {
		r = k_signal_waiting() ? -EINTR : k_call_wait(SBX_CALL_OPEN_WAIT, a, 1);
		if (r != -EINTR)
			break;
		if (k_signal_waiting()) {
			a[0] = 1; /* the kept open goes */
			k_call(SBX_CALL_OPEN_WAIT, a, 1);
			return k_signal_interrupts() ? -EINTR : -K_ERESTARTSYS;
		}
	}
	/* Nothing kept (a thread of a restored snapshot): the open again, from the start. */
	return r == -SBX_EOPEN_WAITS ? -K_ERESTARTSYS : r;
}

long k_sys_open(struct k_frame *f)
{
	return open_call(SBX_AT_FDCWD, f->rdi, (uint32_t)f->rsi, (uint32_t)f->rdx & ~k_cur_umask());
}

long k_sys_openat(struct k_frame *f)
{
	return open_call((int32_t)f->rdi, f->rsi, (uint32_t)f->rdx,
			 (uint32_t)f->r10 & ~k_cur_umask());
}

long k_sys_creat(struct k_frame *f)
{
	return open_call(SBX_AT_FDCWD, f->rdi, O_CREAT | O_WRONLY | O_TRUNC,
			 (uint32_t)f->rsi & ~k_cur_umask());
}

/* memfd_create(name, flags): the name goes as a path would (1.18); the monitor checks its
 * length and the flags. */
long k_sys_memfd_create(struct k_frame *f)
{
	long n = k_user_strlen(f->rdi, 250);
	if (n < 0)
		return n == -EFAULT ? n : -EINVAL; /* Linux's limit: 249 bytes */
	struct sbx_path p = {.path = f->rdi, .path_len = (uint32_t)n, .flags = (uint32_t)f->rsi};
	return k_call_path(SBX_CALL_MEMFD, &p);
}

long k_sys_close(struct k_frame *f)
{
	uint64_t a[1] = {f->rdi};
	return k_call(SBX_CALL_CLOSE, a, 1);
}

/* close_range(first, last, flags): CLOSE_RANGE_UNSHARE (2) asks for nothing here (the table is
 * never shared), CLOSE_RANGE_CLOEXEC (4) marks instead of closing. */
long k_sys_close_range(struct k_frame *f)
{
	uint32_t first = (uint32_t)f->rdi, last = (uint32_t)f->rsi;
	if ((f->rdx & ~(uint64_t)(2 | SBX_CLOSE_RANGE_CLOEXEC)) || first > last)
		return -EINVAL;
	uint64_t a[3] = {first, last, SBX_CLOSE_RANGE | (f->rdx & SBX_CLOSE_RANGE_CLOEXEC)};
	return k_call(SBX_CALL_CLOSE, a, 3);
}

static long fstat_call(int32_t fd, struct k_stat *st)
{
	struct sbx_path p;
	k_memset(&p, 0, sizeof(p));
	p.dirfd = fd;
	p.buf = (uint64_t)st;
	p.buf_len = sizeof(*st);
	return k_call_path(SBX_CALL_FSTAT, &p);
}

/* Into the kernel's stack (guest RAM too) first: as on Linux, a missing file is ENOENT whatever
 * the buffer, and the buffer is EFAULT only when there is a result to copy. */
long k_stat_kernel(int32_t dirfd, uint64_t path, uint32_t flags, struct k_stat *st)
{
	/* No path at all: the kernel's own callers' way to name the handle (fchown). */
	if ((flags & AT_EMPTY_PATH) &&
	    (!path || (k_user_ok(path, 1, K_READ) && *(const char *)path == 0)))
		return fstat_call(dirfd, st);
	return path_call(SBX_CALL_STAT, dirfd, path, flags, 0, (uint64_t)st, sizeof(*st));
}

static long stat_call(int32_t dirfd, uint64_t path, uint32_t flags, uint64_t buf)
{
	struct k_stat st;
	long r = k_stat_kernel(dirfd, path, flags, &st);
	return r < 0 ? r : k_copy_to_user(buf, &st, sizeof(st));
}

long k_sys_stat(struct k_frame *f)
{
	return stat_call(SBX_AT_FDCWD, f->rdi, 0, f->rsi);
}

long k_sys_lstat(struct k_frame *f)
{
	return stat_call(SBX_AT_FDCWD, f->rdi, AT_SYMLINK_NOFOLLOW, f->rsi);
}

long k_sys_fstat(struct k_frame *f)
{
	struct k_stat st;
	long r = fstat_call((int32_t)f->rdi, &st);
	return r < 0 ? r : k_copy_to_user(f->rsi, &st, sizeof(st));
}

/* Extended attributes: the sandbox's file systems have none (as a file system without xattr
 * support answers), after the path or handle is checked as Linux checks it first. */
static long xattr_none(long r)
{
	return r < 0 ? r : -EOPNOTSUPP;
}

long k_sys_xattr(struct k_frame *f)
{
	struct k_stat st;
	return xattr_none(k_stat_kernel(SBX_AT_FDCWD, f->rdi, 0, &st));
}

long k_sys_lxattr(struct k_frame *f)
{
	struct k_stat st;
	return xattr_none(k_stat_kernel(SBX_AT_FDCWD, f->rdi, AT_SYMLINK_NOFOLLOW, &st));
}

long k_sys_fxattr(struct k_frame *f)
{
	struct k_stat st;
	return xattr_none(fstat_call((int32_t)f->rdi, &st));
}

long k_sys_newfstatat(struct k_frame *f)
{
	return stat_call((int32_t)f->rdi, f->rsi, (uint32_t)f->r10, f->rdx);
}

struct k_statx_ts {
	int64_t sec;
	uint32_t nsec;
	int32_t pad;
};
struct k_statx {
	uint32_t mask, blksize;
	uint64_t attributes;
	uint32_t nlink, uid, gid;
	uint16_t mode, pad0;
	uint64_t ino, size, blocks, attributes_mask;
	struct k_statx_ts atime, btime, ctime, mtime;
	uint32_t rdev_major, rdev_minor, dev_major, dev_minor;
	uint64_t spare[14];
};
_Static_assert(sizeof(struct k_statx) == 256, "struct statx");

static uint32_t dev_major(uint64_t d)
{
	return (uint32_t)(((d >> 32) & 0xfffff000) | ((d >> 8) & 0xfff));
}

static uint32_t dev_minor(uint64_t d)
{
	return (uint32_t)(((d >> 12) & 0xffffff00) | (d & 0xff));
}

long k_sys_statx(struct k_frame *f)
{
	struct k_stat st;
	struct k_statx xs;
	uint32_t flags = (uint32_t)f->rdx & (AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH);
	long r = k_stat_kernel((int32_t)f->rdi, f->rsi, flags, &st);
	if (r < 0)
		return r;
	struct k_statx *x = &xs;
	k_memset(x, 0, sizeof(*x));
	x->mask = 0x7ff; /* STATX_BASIC_STATS */
	x->blksize = (uint32_t)st.blksize;
	x->nlink = (uint32_t)st.nlink;
	x->uid = st.uid;
	x->gid = st.gid;
	x->mode = (uint16_t)st.mode;
	x->ino = st.ino;
	x->size = (uint64_t)st.size;
	x->blocks = (uint64_t)st.blocks;
	x->atime.sec = st.atime;
	x->atime.nsec = (uint32_t)st.atime_ns;
	x->mtime.sec = st.mtime;
	x->mtime.nsec = (uint32_t)st.mtime_ns;
	x->ctime.sec = st.ctime;
	x->ctime.nsec = (uint32_t)st.ctime_ns;
	x->rdev_major = dev_major(st.rdev);
	x->rdev_minor = dev_minor(st.rdev);
	x->dev_major = dev_major(st.dev);
	x->dev_minor = dev_minor(st.dev);
	return k_copy_to_user(f->r8, x, sizeof(*x));
}

/* copy_file_range as Linux checks it (the descriptors, the offsets' memory, the flags, then
 * generic_copy_file_checks), then copied as sendfile copies: between two regular files, the
 * source open for reading, the destination for writing and not O_APPEND, no overlap within one
 * file. The source is read at its position (PREAD), and its own position set after, so that a
 * short write leaves it where the copy ended. */
long k_sys_copy_file_range(struct k_frame *f)
{
	int32_t in = (int32_t)f->rdi, out = (int32_t)f->rdx;
	uint64_t pin = f->rsi, pout = f->r10, len = f->r8;
	struct k_stat si, so;
	long r = fstat_call(in, &si);
	if (r >= 0)
		r = fstat_call(out, &so);
	if (r < 0)
		return r;
	int64_t oi = 0, oo = 0;
	if ((pin && k_copy_from_user(&oi, pin, sizeof(oi)) < 0) ||
	    (pout && k_copy_from_user(&oo, pout, sizeof(oo)) < 0))
		return -EFAULT;
	if ((uint32_t)f->r9) /* unsigned int flags */
		return -EINVAL;
	if ((si.mode & 0170000) == 0040000 || (so.mode & 0170000) == 0040000)
		return -EISDIR;
	if ((si.mode & 0170000) != 0100000 || (so.mode & 0170000) != 0100000)
		return -EINVAL;
	uint64_t gi[3] = {(uint64_t)in, 3 /* F_GETFL */, 0}, go[3] = {(uint64_t)out, 3, 0};
	long fi = k_call(SBX_CALL_FCNTL, gi, 3), fo = k_call(SBX_CALL_FCNTL, go, 3);
	if (fi < 0 || fo < 0)
		return fi < 0 ? fi : fo;
	if ((fi & 3) == O_WRONLY || (fo & 3) == 0 /* O_RDONLY */ || (fo & 02000 /* O_APPEND */) ||
	    ((fi | fo) & 010000000 /* O_PATH */))
		return -EBADF;
	if (oi < 0 || oo < 0)
		return -EINVAL;
	uint64_t here[3] = {(uint64_t)in, 0, 1 /* SEEK_CUR */};
	int64_t at = pin ? oi : k_call(SBX_CALL_LSEEK, here, 3);
	here[0] = (uint64_t)out;
	int64_t to = pout ? oo : k_call(SBX_CALL_LSEEK, here, 3);
	if (at < 0 || to < 0)
		return at < 0 ? at : to;
	if ((uint64_t)at + len < (uint64_t)at || (uint64_t)to + len < (uint64_t)to)
		return -EOVERFLOW;
	/* As Linux: the length cut at the source's end, no overlap within a file, and one call
	 * moves at most MAX_RW_COUNT. */
	len = at >= si.size ? 0 : len < (uint64_t)(si.size - at) ? len : (uint64_t)(si.size - at);
	if (len == 0)
		return 0;
	if (si.dev == so.dev && si.ino == so.ino && (uint64_t)at < (uint64_t)to + len &&
	    (uint64_t)to < (uint64_t)at + len)
		return -EINVAL;
	if (len > 0x7ffff000)
		len = 0x7ffff000;
	long done = k_copy_range(out, in, &at, pout ? &oo : 0, len);
	if (done <= 0)
		return done;
	int64_t ei = at + done, eo = oo + done;
	if (!pin) {
		uint64_t set[3] = {(uint64_t)in, (uint64_t)ei, 0 /* SEEK_SET */};
		k_call(SBX_CALL_LSEEK, set, 3);
	}
	long ret = done;
	if (pin && k_copy_to_user(pin, &ei, sizeof(ei)) < 0)
		ret = -EFAULT;
	if (pout && k_copy_to_user(pout, &eo, sizeof(eo)) < 0)
		ret = -EFAULT;
	return ret;
}

long k_sys_lseek(struct k_frame *f)
{
	uint64_t a[3] = {f->rdi, f->rsi, f->rdx};
	return k_call(SBX_CALL_LSEEK, a, 3);
}

long k_sys_getdents64(struct k_frame *f)
{
	/* Not rw_call: getdents calls 0 bytes too small a buffer. */
	uint64_t ok = k_user_span(f->rsi, f->rdx, K_WRITE);
	if (!ok && f->rdx)
		return -EFAULT;
	return k_call_rw(SBX_CALL_GETDENTS, (int32_t)f->rdi, f->rsi, ok, 0);
}

static long readlink_common(int32_t dirfd, uint64_t path, uint64_t buf, uint64_t len)
{
	if ((int64_t)len <= 0)
		return -EINVAL;
	long n = k_user_strlen(path, SBX_PATH_MAX);
	if (n < 0)
		return n;
	long r;
	const char *src = k_bounce;
	if (k_streq((const char *)path, "/proc/self/exe")) {
		/* Answered here: the program's own guest path, as Linux would give it. */
		src = (const char *)BOOT->exe_path;
		uint64_t l = k_strlen(src);
		r = (long)(l < len ? l : len);
	} else {
		/* A link's target is shorter than SBX_PATH_MAX. */
		r = path_call(SBX_CALL_READLINK, dirfd, path, 0, 0, (uint64_t)k_bounce,
			      len < sizeof(k_bounce) ? len : sizeof(k_bounce));
	}
	if (r <= 0)
		return r;
	long c = k_copy_to_user(buf, src, (uint64_t)r);
	return c < 0 ? c : r;
}

long k_sys_readlink(struct k_frame *f)
{
	return readlink_common(SBX_AT_FDCWD, f->rdi, f->rsi, f->rdx);
}

long k_sys_readlinkat(struct k_frame *f)
{
	return readlink_common((int32_t)f->rdi, f->rsi, f->rdx, f->r10);
}

long k_sys_getcwd(struct k_frame *f)
{
	/* The cwd with its NUL fits SBX_PATH_MAX; a smaller buffer is ERANGE. */
	uint64_t len = f->rsi < sizeof(k_bounce) ? f->rsi : sizeof(k_bounce);
	long r = k_call_rw(SBX_CALL_GETCWD, 0, (uint64_t)k_bounce, len, 0);
	if (r <= 0)
		return r;
	long c = k_copy_to_user(f->rdi, k_bounce, (uint64_t)r);
	return c < 0 ? c : r;
}

long k_sys_chdir(struct k_frame *f)
{
	return path_call(SBX_CALL_CHDIR, SBX_AT_FDCWD, f->rdi, 0, 0, 0, 0);
}

long k_sys_fchdir(struct k_frame *f)
{
	struct sbx_path p;
	k_memset(&p, 0, sizeof(p));
	p.dirfd = (int32_t)f->rdi;
	return k_call_path(SBX_CALL_CHDIR, &p);
}

long k_sys_access(struct k_frame *f)
{
	return path_call(SBX_CALL_ACCESS, SBX_AT_FDCWD, f->rdi, 0, (uint32_t)f->rsi, 0, 0);
}

long k_sys_faccessat(struct k_frame *f)
{
	return path_call(SBX_CALL_ACCESS, (int32_t)f->rdi, f->rsi, (uint32_t)f->r10,
			 (uint32_t)f->rdx, 0, 0);
}

long k_sys_mkdir(struct k_frame *f)
{
	return path_call(SBX_CALL_MKDIR, SBX_AT_FDCWD, f->rdi, 0, (uint32_t)f->rsi & ~k_cur_umask(),
			 0, 0);
}

long k_sys_mkdirat(struct k_frame *f)
{
	return path_call(SBX_CALL_MKDIR, (int32_t)f->rdi, f->rsi, 0,
			 (uint32_t)f->rdx & ~k_cur_umask(), 0, 0);
}

/* mknod makes FIFOs, regular files and socket files, as it does for a user without
 * CAP_MKNOD; devices are EPERM (the monitor's answer). */
static long mknod_call(int32_t dirfd, uint64_t path, uint32_t mode)
{
	uint32_t type = mode & 0170000;
	return path_call(SBX_CALL_MKNOD, dirfd, path, 0,
			 (type ? type : 0100000) | (mode & 07777 & ~k_cur_umask()), 0, 0);
}

long k_sys_mknod(struct k_frame *f)
{
	return mknod_call(SBX_AT_FDCWD, f->rdi, (uint32_t)f->rsi);
}

long k_sys_mknodat(struct k_frame *f)
{
	return mknod_call((int32_t)f->rdi, f->rsi, (uint32_t)f->rdx);
}

/* inotify (1.19): host instances whose watches the monitor adds on what the paths name. */
long k_sys_inotify_init(struct k_frame *f)
{
	(void)f;
	uint64_t a[2] = {0, 0};
	return k_call(SBX_CALL_INOTIFY, a, 2);
}

long k_sys_inotify_init1(struct k_frame *f)
{
	uint64_t a[2] = {0, f->rdi};
	return k_call(SBX_CALL_INOTIFY, a, 2);
}

long k_sys_inotify_add_watch(struct k_frame *f)
{
	struct sbx_path p;
	long r = path_arg(&p, SBX_AT_FDCWD, f->rsi, (uint32_t)f->rdx);
	if (r < 0)
		return r;
	p.dirfd2 = (int32_t)f->rdi;
	return k_call_path(SBX_CALL_INOTIFY_WATCH, &p);
}

long k_sys_inotify_rm_watch(struct k_frame *f)
{
	uint64_t a[3] = {1, (uint32_t)f->rdi, (uint32_t)f->rsi};
	return k_call(SBX_CALL_INOTIFY, a, 3);
}

long k_sys_unlink(struct k_frame *f)
{
	return path_call(SBX_CALL_UNLINK, SBX_AT_FDCWD, f->rdi, 0, 0, 0, 0);
}

long k_sys_rmdir(struct k_frame *f)
{
	return path_call(SBX_CALL_UNLINK, SBX_AT_FDCWD, f->rdi, AT_REMOVEDIR, 0, 0, 0);
}

long k_sys_unlinkat(struct k_frame *f)
{
	return path_call(SBX_CALL_UNLINK, (int32_t)f->rdi, f->rsi, (uint32_t)f->rdx, 0, 0, 0);
}

static long rename_common(int32_t odir, uint64_t opath, int32_t ndir, uint64_t npath,
			  uint64_t flags)
{
	if (flags)
		return -EINVAL;
	struct sbx_path p;
	long r = path_arg(&p, odir, opath, 0);
	if (r < 0)
		return r;
	long n = k_user_strlen(npath, SBX_PATH_MAX);
	if (n < 0)
		return n;
	p.dirfd2 = ndir;
	p.path2 = npath;
	p.path2_len = (uint32_t)n;
	return k_call_path(SBX_CALL_RENAME, &p);
}

long k_sys_rename(struct k_frame *f)
{
	return rename_common(SBX_AT_FDCWD, f->rdi, SBX_AT_FDCWD, f->rsi, 0);
}

long k_sys_renameat(struct k_frame *f)
{
	return rename_common((int32_t)f->rdi, f->rsi, (int32_t)f->rdx, f->r10, 0);
}

long k_sys_renameat2(struct k_frame *f)
{
	return rename_common((int32_t)f->rdi, f->rsi, (int32_t)f->rdx, f->r10, f->r8);
}

long k_sys_ftruncate(struct k_frame *f)
{
	uint64_t a[2] = {f->rdi, f->rsi};
	return k_call(SBX_CALL_FTRUNCATE, a, 2);
}

long k_sys_fsync(struct k_frame *f)
{
	uint64_t a[1] = {f->rdi};
	return k_call(SBX_CALL_FSYNC, a, 1);
}

long k_sys_fdatasync(struct k_frame *f)
{
	uint64_t a[1] = {f->rdi};
	return k_call(SBX_CALL_FDATASYNC, a, 1);
}

long k_sys_dup(struct k_frame *f)
{
	uint64_t a[4] = {f->rdi, (uint64_t)-1, 0, 0};
	return k_call(SBX_CALL_DUP, a, 4);
}

/* Linux takes fd numbers as unsigned int: a negative one is a huge one (EBADF), never the
 * monitor's "lowest free" (-1). */
long k_sys_dup2(struct k_frame *f)
{
	uint64_t a[4] = {f->rdi, (uint32_t)f->rsi, 0, 0};
	return k_call(SBX_CALL_DUP, a, 4);
}

long k_sys_dup3(struct k_frame *f)
{
	if (f->rdi == f->rsi || (f->rdx & ~(uint64_t)O_CLOEXEC))
		return -EINVAL;
	uint64_t a[4] = {f->rdi, (uint32_t)f->rsi, 0, f->rdx ? 1 : 0};
	return k_call(SBX_CALL_DUP, a, 4);
}

/* A request the monitor lets go with EINTR for a signal, a pause or a stop: made again unless
 * a signal is there to handle, then EINTR, or made again after the handler for one with
 * SA_RESTART. own: served by the vCPU's own thread (one that waits there). */
static long restarting(uint32_t nr, uint64_t a[3], int own)
{
	for (;;) {
		long r = own ? k_call_own(nr, a, 3) : k_call(nr, a, 3);
		if (r != -EINTR)
			return r;
		if (k_signal_waiting())
			return k_signal_interrupts() ? -EINTR : -K_ERESTARTSYS;
	}
}

/* A lock request; one that waits is served by the vCPU's own thread, which the guest reaches
 * with an exit (26-85 us under PVM). So it is first asked without waiting (`now`: the same
 * request that does not wait), which the poller answers with none: only a lock someone else
 * holds (EAGAIN, or EACCES for a record lock) waits. */
static long lock_call(uint32_t nr, uint64_t a[3], int waits, const uint64_t now[3])
{
	if (!waits)
		return k_call(nr, a, 3);
	long r = k_call(nr, now, 3);
	if (r != -EAGAIN && r != -EACCES)
		return r;
	return restarting(nr, a, 1);
}

long k_sys_flock(struct k_frame *f)
{
	uint64_t a[3] = {f->rdi, (uint32_t)f->rsi, 0};
	uint64_t now[3] = {f->rdi, (uint32_t)f->rsi | LOCK_NB, 0};
	/* LOCK_UN never waits. */
	return lock_call(SBX_CALL_FLOCK, a, !(f->rsi & (LOCK_NB | LOCK_UN)), now);
}

long k_sys_fcntl(struct k_frame *f)
{
	if (f->rsi == F_DUPFD || f->rsi == F_DUPFD_CLOEXEC) {
		uint64_t a[4] = {f->rdi, (uint64_t)-1, (uint32_t)f->rdx, f->rsi == F_DUPFD_CLOEXEC};
		return k_call(SBX_CALL_DUP, a, 4);
	}
	if (f->rsi == F_GETLK || f->rsi == F_SETLK || f->rsi == F_SETLKW || f->rsi == F_OFD_GETLK ||
	    f->rsi == F_OFD_SETLK || f->rsi == F_OFD_SETLKW) {
		/* struct flock: read, and written back by F_GETLK only. */
		uint64_t fl[4];
		if (k_copy_from_user(fl, f->rdx, sizeof(fl)) < 0)
			return -EFAULT;
		uint64_t a[3] = {f->rdi, f->rsi, k_kaddr((uint64_t)fl)};
		uint64_t now[3] = {f->rdi, f->rsi == F_SETLKW ? F_SETLK : F_OFD_SETLK, a[2]};
		/* An unlock (l_type F_UNLCK, 2) never waits. */
		int waits = (f->rsi == F_SETLKW || f->rsi == F_OFD_SETLKW) && (uint16_t)fl[0] != 2;
		long r = lock_call(SBX_CALL_FCNTL, a, waits, now);
		if (r < 0 || (f->rsi != F_GETLK && f->rsi != F_OFD_GETLK))
			return r;
		long c = k_copy_to_user(f->rdx, fl, sizeof(fl));
		return c < 0 ? c : r;
	}
	uint64_t a[3] = {f->rdi, f->rsi, f->rdx};
	return k_call(SBX_CALL_FCNTL, a, 3);
}

long k_sys_ioctl(struct k_frame *f)
{
	/* The generic file requests are fcntl's (libuv sets O_NONBLOCK with FIONBIO). */
	if (f->rsi == FIONBIO) {
		int32_t on;
		if (k_copy_from_user(&on, f->rdx, sizeof(on)) < 0)
			return -EFAULT;
		uint64_t g[3] = {f->rdi, 3 /* F_GETFL */, 0};
		long fl = k_call(SBX_CALL_FCNTL, g, 3);
		if (fl < 0)
			return fl;
		uint64_t s[3] = {f->rdi, 4 /* F_SETFL */,
				 on ? (uint64_t)fl | O_NONBLOCK
				    : (uint64_t)fl & ~(uint64_t)O_NONBLOCK};
		return k_call(SBX_CALL_FCNTL, s, 3);
	}
	if (f->rsi == FIOCLEX || f->rsi == FIONCLEX) {
		uint64_t s[3] = {f->rdi, 2 /* F_SETFD */, f->rsi == FIOCLEX ? 1 : 0};
		return k_call(SBX_CALL_FCNTL, s, 3);
	}
	/* The terminal requests (sbx_abi.h), each argument as its table entry says; the monitor
	 * never touches the argument of any other, and gets none (it says EBADF or ENOTTY). Linux
	 * reads the request as a 32-bit number. */
	uint32_t req = (uint32_t)f->rsi;
	static const struct {
		uint32_t req;
		uint8_t how, size;
	} tty[] = {
#define K_TTY(name, nr, how, size) {nr, how, size},
	    SBX_TTY_IOCTLS(K_TTY)
#undef K_TTY
	};
	unsigned i = 0;
	while (i < sizeof(tty) / sizeof(tty[0]) && tty[i].req != req)
		i++;
	if (i == sizeof(tty) / sizeof(tty[0])) {
		uint64_t a[3] = {f->rdi, req, 0}; /* EBADF or ENOTTY, as the handle says */
		return k_call(SBX_CALL_IOCTL, a, 3);
	}
	uint64_t buf[8] = {0}, size = tty[i].size;
	uint64_t a[3] = {f->rdi, req, tty[i].how == SBX_IOCTL_VAL ? f->rdx : 0};
	if (tty[i].how == SBX_IOCTL_IN && k_copy_from_user(buf, f->rdx, size) < 0)
		return -EFAULT;
	if (tty[i].how == SBX_IOCTL_IN || tty[i].how == SBX_IOCTL_OUT)
		a[2] = k_kaddr((uint64_t)buf);
	/* EINTR: a background process's change of its terminal sent its group SIGTTOU (the
	 * monitor's pty.c): made again once it goes on, as Linux's ERESTARTSYS. */
	long r = restarting(SBX_CALL_IOCTL, a, 0);
	if (r < 0 || tty[i].how != SBX_IOCTL_OUT)
		return r;
	long c = k_copy_to_user(f->rdx, buf, size);
	return c < 0 ? c : r;
}

long k_sys_getrandom(struct k_frame *f)
{
	/* GRND_NONBLOCK 1, GRND_RANDOM 2, GRND_INSECURE 4, the last two not together. */
	if ((f->rdx & ~(uint64_t)7) || (f->rdx & 6) == 6)
		return -EINVAL;
	if (!f->rsi)
		return 0; /* nothing asked for: whatever the buffer, as Linux */
	uint64_t ok = k_user_span(f->rdi, f->rsi, K_WRITE);
	if (!ok && f->rsi)
		return -EFAULT;
	return k_call_rw(SBX_CALL_RANDOM, 0, f->rdi, ok, 0);
}

/* The file's data, which is all a program can have written to that filesystem through it;
 * sync() itself (k_sys_zero) flushes nothing on the host for it, as the other processes of the
 * host are not the sandbox's to wait for. */
long k_sys_syncfs(struct k_frame *f)
{
	long r = k_sys_fsync(f);
	return r == -EINVAL ? 0 : r; /* a pipe or terminal: nothing to write, as Linux says */
}

long k_sys_fallocate(struct k_frame *f)
{
	uint64_t a[4] = {(uint64_t)(int64_t)(int32_t)f->rdi, (uint32_t)f->rsi, f->rdx, f->r10};
	return k_call(SBX_CALL_FALLOCATE, a, 4);
}
