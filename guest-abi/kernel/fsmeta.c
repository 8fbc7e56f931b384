/* File metadata and readiness syscalls: links, modes, times, filesystem statistics, poll and
 * select, sendfile. Like fs.c, the kernel checks buffers and reshapes arguments; the monitor
 * decides. */
#include "clock.h"
#include "kernel.h"

#define AT_SYMLINK_NOFOLLOW 0x100
#define AT_EMPTY_PATH 0x1000
#define O_WRONLY 01
#define POLLIN 0x1
#define POLLPRI 0x2
#define POLLOUT 0x4
#define POLLERR 0x8
#define POLLHUP 0x10
#define FD_SETSIZE 1024
#define NSEC 1000000000ll

static long two_paths(uint32_t nr, int32_t d1, uint64_t p1, int32_t d2, uint64_t p2, uint32_t flags)
{
	struct sbx_path p;
	k_memset(&p, 0, sizeof(p));
	long n1 = k_user_strlen(p1, SBX_PATH_MAX), n2 = k_user_strlen(p2, SBX_PATH_MAX);
	if (n1 < 0)
		return n1;
	if (n2 < 0)
		return n2;
	p.dirfd = d1;
	p.path = p1;
	p.path_len = (uint32_t)n1;
	p.dirfd2 = d2;
	p.path2 = p2;
	p.path2_len = (uint32_t)n2;
	p.flags = flags;
	return k_call_path(nr, &p);
}

long k_sys_symlink(struct k_frame *f)
{
	return two_paths(SBX_CALL_SYMLINK, SBX_AT_FDCWD, f->rdi, SBX_AT_FDCWD, f->rsi, 0);
}

long k_sys_symlinkat(struct k_frame *f)
{
	return two_paths(SBX_CALL_SYMLINK, SBX_AT_FDCWD, f->rdi, (int32_t)f->rsi, f->rdx, 0);
}

long k_sys_link(struct k_frame *f)
{
	return two_paths(SBX_CALL_LINK, SBX_AT_FDCWD, f->rdi, SBX_AT_FDCWD, f->rsi, 0);
}

long k_sys_linkat(struct k_frame *f)
{
	return two_paths(SBX_CALL_LINK, (int32_t)f->rdi, f->rsi, (int32_t)f->rdx, f->r10,
			 (uint32_t)f->r8);
}

/* A path call, or (empty path with AT_EMPTY_PATH, or no path at all) a call on the handle. */
static long path_or_fd(uint32_t nr, int32_t dirfd, uint64_t path, uint32_t flags, uint32_t mode,
		       uint64_t buf, uint64_t buf_len)
{
	struct sbx_path p;
	k_memset(&p, 0, sizeof(p));
	p.dirfd = dirfd;
	p.flags = flags;
	p.mode = mode;
	p.buf = buf;
	p.buf_len = buf_len;
	if (path) {
		long n = k_user_strlen(path, SBX_PATH_MAX);
		if (n < 0)
			return n;
		if (n == 0 && !(flags & AT_EMPTY_PATH))
			return -ENOENT;
		p.path = path;
		p.path_len = (uint32_t)n;
	}
	return k_call_path(nr, &p);
}

long k_sys_chmod(struct k_frame *f)
{
	return path_or_fd(SBX_CALL_CHMOD, SBX_AT_FDCWD, f->rdi, 0, (uint32_t)f->rsi, 0, 0);
}

long k_sys_fchmod(struct k_frame *f)
{
	return path_or_fd(SBX_CALL_CHMOD, (int32_t)f->rdi, 0, 0, (uint32_t)f->rsi, 0, 0);
}

/* Linux's fchmodat takes no flags (fchmodat2 does): a final link is always followed, whatever
 * a fourth register holds. */
long k_sys_fchmodat(struct k_frame *f)
{
	return path_or_fd(SBX_CALL_CHMOD, (int32_t)f->rdi, f->rsi, 0, (uint32_t)f->rdx, 0, 0);
}

/* The file is looked up first, as Linux does: a missing one is ENOENT and a bad descriptor
 * EBADF, whatever the owners. The program's own ids (or -1) change nothing and need no exit;
 * another owner is the host's to give (CHOWN): root's tar extracting its archive's owners
 * gets them, another user EPERM, as each would natively. */
static long chown_at(int32_t dirfd, uint64_t path, uint32_t flags, uint64_t uid64, uint64_t gid64)
{
	struct k_stat st;
	uint32_t uid = (uint32_t)uid64, gid = (uint32_t)gid64;
	long r = k_stat_kernel(dirfd, path, flags, &st);
	if (r < 0)
		return r;
	if ((uid == 0xffffffffu || uid == st.uid) && (gid == 0xffffffffu || gid == st.gid))
		return 0;
	return path_or_fd(SBX_CALL_CHOWN, dirfd, (flags & AT_EMPTY_PATH) ? 0 : path,
			  flags & AT_SYMLINK_NOFOLLOW, uid, gid, 0);
}

long k_sys_chown(struct k_frame *f)
{
	return chown_at(SBX_AT_FDCWD, f->rdi, 0, f->rsi, f->rdx);
}

long k_sys_lchown(struct k_frame *f)
{
	return chown_at(SBX_AT_FDCWD, f->rdi, AT_SYMLINK_NOFOLLOW, f->rsi, f->rdx);
}

long k_sys_fchown(struct k_frame *f)
{
	return chown_at((int32_t)f->rdi, 0, AT_EMPTY_PATH, f->rsi, f->rdx);
}

long k_sys_fchownat(struct k_frame *f)
{
	uint32_t flags = (uint32_t)f->r8;
	if (flags & ~(uint32_t)(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH))
		return -EINVAL;
	/* An empty path with AT_EMPTY_PATH is the handle dirfd. */
	int empty = (flags & AT_EMPTY_PATH) && f->rsi && k_user_ok(f->rsi, 1, K_READ) &&
		    *(const char *)f->rsi == 0;
	return chown_at((int32_t)f->rdi, f->rsi, empty ? flags : flags & ~(uint32_t)AT_EMPTY_PATH,
			f->rdx, f->r10);
}

/* The times are copied to the kernel stack (guest RAM, which the monitor reads like any other
 * buffer) before the path is looked at, as Linux does. */
long k_sys_utimensat(struct k_frame *f)
{
	int64_t ts[4];
	if (f->rdx && k_copy_from_user(ts, f->rdx, sizeof(ts)) < 0)
		return -EFAULT;
	return path_or_fd(SBX_CALL_UTIMENS, (int32_t)f->rdi, f->rsi, (uint32_t)f->r10, 0,
			  f->rdx ? (uint64_t)ts : 0, f->rdx ? sizeof(ts) : 0);
}

/* utimes/futimesat/utime take microseconds (t: two timevals, or NULL for now): converted on
 * the kernel stack. */
static long utimes_kernel(int32_t dirfd, uint64_t path, const int64_t *t)
{
	int64_t ts[4];
	if (t) {
		for (int i = 0; i < 2; i++) {
			if (t[2 * i + 1] < 0 || t[2 * i + 1] >= 1000000)
				return -EINVAL;
			ts[2 * i] = t[2 * i];
			ts[2 * i + 1] = t[2 * i + 1] * 1000;
		}
	}
	return path_or_fd(SBX_CALL_UTIMENS, dirfd, path, 0, 0, t ? (uint64_t)ts : 0, t ? 32 : 0);
}

static long utimes_common(int32_t dirfd, uint64_t path, uint64_t tv)
{
	int64_t t[4];
	if (tv && k_copy_from_user(t, tv, sizeof(t)) < 0)
		return -EFAULT;
	return utimes_kernel(dirfd, path, tv ? t : NULL);
}

long k_sys_utimes(struct k_frame *f)
{
	return utimes_common(SBX_AT_FDCWD, f->rdi, f->rsi);
}

long k_sys_futimesat(struct k_frame *f)
{
	return utimes_common((int32_t)f->rdi, f->rsi, f->rdx);
}

long k_sys_utime(struct k_frame *f)
{
	int64_t u[2]; /* struct utimbuf: actime, modtime */
	if (!f->rsi)
		return utimes_kernel(SBX_AT_FDCWD, f->rdi, NULL);
	if (k_copy_from_user(u, f->rsi, sizeof(u)) < 0)
		return -EFAULT;
	const int64_t t[4] = {u[0], 0, u[1], 0};
	return utimes_kernel(SBX_AT_FDCWD, f->rdi, t);
}

/* struct statfs (120 bytes) through the kernel stack: a missing path is ENOENT whatever the
 * buffer, as on Linux. */
static long statfs_call(int32_t dirfd, uint64_t path, uint64_t buf)
{
	uint64_t st[15];
	long r = path_or_fd(SBX_CALL_STATFS, dirfd, path, 0, 0, (uint64_t)st, sizeof(st));
	return r < 0 ? r : k_copy_to_user(buf, st, sizeof(st));
}

long k_sys_statfs(struct k_frame *f)
{
	if (!f->rdi)
		return -EFAULT;
	return statfs_call(SBX_AT_FDCWD, f->rdi, f->rsi);
}

long k_sys_fstatfs(struct k_frame *f)
{
	return statfs_call((int32_t)f->rdi, 0, f->rsi);
}

long k_sys_truncate(struct k_frame *f)
{
	struct k_frame o = *f;
	o.rsi = O_WRONLY;
	o.rdx = 0;
	long fd = k_sys_open(&o);
	if (fd < 0)
		return fd;
	uint64_t a[2] = {(uint64_t)fd, f->rsi};
	long r = k_call(SBX_CALL_FTRUNCATE, a, 2);
	uint64_t c[1] = {(uint64_t)fd};
	k_call(SBX_CALL_CLOSE, c, 1);
	return r;
}

static long do_poll(uint64_t fds, uint64_t n, int64_t ms)
{
	if (n > SBX_MAX_POLL)
		return -EINVAL;
	/* The monitor reads the pollfds and writes their revents back, in a kernel copy on this
	 * vCPU's stack (the wait goes without the big kernel lock when there are threads). */
	uint64_t pfd[SBX_MAX_POLL];
	if (k_copy_from_user(pfd, fds, n * 8) < 0 || !k_user_ok(fds, n * 8, K_WRITE))
		return -EFAULT;
	uint64_t a[3] = {k_kaddr((uint64_t)pfd), n, (uint64_t)ms};
	long r = k_call_wait_ms(SBX_CALL_POLL, a, 3, 2);
	k_memcpy((void *)fds, pfd, n * 8);
	return r;
}

long k_sys_poll(struct k_frame *f)
{
	return do_poll(f->rdi, f->rsi, (int64_t)(int32_t)f->rdx);
}

long k_ts_to_ms(uint64_t p, int64_t *ms)
{
	int64_t t[2];
	*ms = -1;
	if (!p)
		return 0;
	if (k_copy_from_user(t, p, sizeof(t)) < 0)
		return -EFAULT;
	if (t[0] < 0 || t[1] < 0 || t[1] >= NSEC)
		return -EINVAL;
	*ms = t[0] > 1000000000ll ? 1000000000ll * 1000 : t[0] * 1000 + (t[1] + 999999) / 1000000;
	return 0;
}

static long ppoll_wait(struct k_frame *f, int64_t ms)
{
	return do_poll(f->rdi, f->rsi, ms);
}

long k_sys_ppoll(struct k_frame *f)
{
	int64_t ms;
	long r = k_ts_to_ms(f->rdx, &ms);
	return r < 0 ? r : k_wait_masked(f, f->r10, f->r8, ms, ppoll_wait);
}

struct k_pollfd {
	int32_t fd;
	int16_t events, revents;
};

/* select over poll: fd_sets become a pollfd array on the kernel stack and back. */
static long do_select(uint64_t nfds, uint64_t rd, uint64_t wr, uint64_t ex, int64_t ms)
{
	struct k_pollfd pfd[FD_SETSIZE]; /* this vCPU's own (see do_poll) */
	if (nfds > FD_SETSIZE)
		return -EINVAL;
	uint64_t bytes = (nfds + 63) / 64 * 8;
	uint64_t *sets[3] = {(uint64_t *)rd, (uint64_t *)wr, (uint64_t *)ex};
	for (int i = 0; i < 3; i++)
		if (sets[i] && !k_user_ok((uint64_t)sets[i], bytes, K_WRITE))
			return -EFAULT;
	unsigned n = 0;
	for (uint64_t fd = 0; fd < nfds; fd++) {
		int16_t ev = 0;
		uint64_t bit = 1ull << (fd % 64);
		if (sets[0] && (sets[0][fd / 64] & bit))
			ev |= POLLIN;
		if (sets[1] && (sets[1][fd / 64] & bit))
			ev |= POLLOUT;
		if (sets[2] && (sets[2][fd / 64] & bit))
			ev |= POLLPRI;
		if (!ev)
			continue;
		pfd[n].fd = (int32_t)fd;
		pfd[n].events = ev;
		pfd[n].revents = 0;
		n++;
	}
	uint64_t a[3] = {k_kaddr((uint64_t)pfd), n, (uint64_t)ms};
	long r = k_call_wait_ms(SBX_CALL_POLL, a, 3, 2);
	if (r < 0)
		return r;
	for (int i = 0; i < 3; i++)
		if (sets[i])
			k_memset(sets[i], 0, bytes);
	long count = 0;
	for (unsigned i = 0; i < n; i++) {
		int16_t re = pfd[i].revents;
		uint64_t fd = (uint64_t)pfd[i].fd, bit = 1ull << (fd % 64);
		if (re & 0x20) /* POLLNVAL */
			return -EBADF;
		if (sets[0] && (re & (POLLIN | POLLHUP | POLLERR)) && (pfd[i].events & POLLIN)) {
			sets[0][fd / 64] |= bit;
			count++;
		}
		if (sets[1] && (re & (POLLOUT | POLLERR)) && (pfd[i].events & POLLOUT)) {
			sets[1][fd / 64] |= bit;
			count++;
		}
		if (sets[2] && (re & POLLPRI) && (pfd[i].events & POLLPRI)) {
			sets[2][fd / 64] |= bit;
			count++;
		}
	}
	return count;
}

long k_sys_select(struct k_frame *f)
{
	int64_t ms = -1, tv[2];
	if (f->r8) {
		/* Linux writes the time left back, but leaves a read-only timeval alone. */
		if (k_copy_from_user(tv, f->r8, sizeof(tv)) < 0)
			return -EFAULT;
		if (tv[0] < 0 || tv[1] < 0)
			return -EINVAL;
		ms = tv[0] * 1000 + (tv[1] + 999) / 1000;
	}
	return do_select(f->rdi, f->rsi, f->rdx, f->r10, ms);
}

static long pselect_wait(struct k_frame *f, int64_t ms)
{
	return do_select(f->rdi, f->rsi, f->rdx, f->r10, ms);
}

long k_sys_pselect6(struct k_frame *f)
{
	int64_t ms;
	uint64_t sm[2] = {0, 0}; /* { const sigset_t *ss; size_t ss_len; } */
	long r = k_ts_to_ms(f->r8, &ms);
	if (r == 0 && f->r9 && k_copy_from_user(sm, f->r9, sizeof(sm)) < 0)
		r = -EFAULT;
	return r < 0 ? r : k_wait_masked(f, sm[0], sm[1], ms, pselect_wait);
}

/* Up to count bytes from in to out through a bounce buffer: two ring calls per 64 KiB. With
 * threads, through this vCPU's stack and without the big kernel lock: either end may be a pipe
 * that another thread of the program drains or fills. in_off, out_off: where to read and
 * write (PREAD, PWRITE), or NULL for the file's own position, which the calls advance. The
 * bytes copied, or the first call's error when nothing was. */
long k_copy_range(int32_t out, int32_t in, const int64_t *in_off, const int64_t *out_off,
		  uint64_t count)
{
	static uint8_t shared[65536];
	uint8_t own[16384];
	int threaded = k_nthreads > 1;
	uint8_t *buf = threaded ? own : shared;
	uint64_t cap = threaded ? sizeof(own) : sizeof(shared), done = 0;
	while (done < count) {
		uint64_t want = count - done < cap ? count - done : cap;
		long n = in_off	    ? k_call_rw(SBX_CALL_PREAD, in, (uint64_t)buf, want,
						*in_off + (int64_t)done)
			 : threaded ? k_call_rw_wait(SBX_CALL_READ, in, (uint64_t)buf, want)
				    : k_call_rw(SBX_CALL_READ, in, (uint64_t)buf, want, 0);
		if (n <= 0) {
			if (n < 0 && done == 0)
				return n == -SBX_ESIGNALFD ? -EINVAL
							   : n; /* Linux's for a signalfd */
			break;
		}
		long w = out_off ? k_call_rw(SBX_CALL_PWRITE, out, (uint64_t)buf, (uint64_t)n,
					     *out_off + (int64_t)done)
			 : threaded
			     ? k_call_rw_wait(SBX_CALL_WRITE, out, (uint64_t)buf, (uint64_t)n)
			     : k_call_rw(SBX_CALL_WRITE, out, (uint64_t)buf, (uint64_t)n, 0);
		if (w < 0) {
			if (done == 0)
				return w;
			break;
		}
		done += (uint64_t)w;
		if (w < n)
			break;
	}
	return (long)done;
}

long k_sys_sendfile(struct k_frame *f)
{
	uint64_t offp = f->rdx;
	int64_t off = 0;
	if (offp) {
		if (k_copy_from_user(&off, offp, sizeof(off)) < 0)
			return -EFAULT;
		if (off < 0)
			return -EINVAL;
	}
	long done = k_copy_range((int32_t)f->rdi, (int32_t)f->rsi, offp ? &off : 0, 0, f->r10);
	if (done < 0)
		return done;
	/* The new offset is stored after the transfer, and its failure is EFAULT, as on Linux. */
	int64_t end = off + done;
	if (offp && k_copy_to_user(offp, &end, sizeof(end)) < 0)
		return -EFAULT;
	return done;
}

long k_sys_getgroups(struct k_frame *f)
{
	(void)f;
	return 0; /* no supplementary groups */
}

/* As the set*id calls answer (proc.c): the ids the process has already are taken, any other is
 * EPERM. So the empty list, which a daemon sets before it drops to its user, changes nothing
 * and is taken; a list with a group in it is EPERM, as without CAP_SETGID. */
long k_sys_setgroups(struct k_frame *f)
{
	if ((int32_t)f->rdi < 0 || (int32_t)f->rdi > 65536) /* NGROUPS_MAX */
		return -EINVAL;
	return (int32_t)f->rdi == 0 ? 0 : -EPERM;
}

static void put_tv(int64_t *tv, int64_t ns)
{
	tv[0] = ns / NSEC;
	tv[1] = (ns % NSEC) / 1000;
}

/* A struct rusage: the CPU time as ru_utime (the monitor splits no system time off), and
 * ru_maxrss; the rest 0. */
long k_rusage_put(uint64_t addr, int64_t cpu_ns, int64_t maxrss_kib)
{
	int64_t ru[18];
	k_memset(ru, 0, sizeof(ru));
	put_tv(ru, cpu_ns);
	ru[4] = maxrss_kib;
	return k_copy_to_user(addr, ru, sizeof(ru));
}

long k_sys_getrusage(struct k_frame *f)
{
	switch ((int32_t)f->rdi) {
	case 0: /* RUSAGE_SELF */
	case 1: /* RUSAGE_THREAD */
		return k_rusage_put(f->rsi, sbx_clock_ns(BOOT, 0, SBX_CLOCK_PROCESS_CPUTIME_ID), 0);
	case -1: /* RUSAGE_CHILDREN: those waited for, and theirs */
		return k_rusage_put(f->rsi, (int64_t)BOOT->children_cpu_ns,
				    (int64_t)BOOT->children_maxrss_kib);
	}
	return -EINVAL;
}

long k_sys_times(struct k_frame *f)
{
	/* The result is elapsed time; tms_utime the CPU time. */
	int64_t ticks = (k_now_ns(0) - BOOT->start_ns) / (NSEC / 100);
	int64_t t[4] = {sbx_clock_ns(BOOT, 0, SBX_CLOCK_PROCESS_CPUTIME_ID) / (NSEC / 100), 0,
			(int64_t)BOOT->children_cpu_ns / (NSEC / 100), 0};
	if (f->rdi && k_copy_to_user(f->rdi, t, sizeof(t)) < 0)
		return -EFAULT;
	return ticks;
}
