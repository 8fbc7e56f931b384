/* rawcall calls NR [ARG]: call NR with every kind of argument a hostile guest can give, so that
 * every host call its handler can make is made by a confined monitor (the test is
 * tests/confine/test_confine_e2e.c, which also makes the mounts below).
 *
 * Targets: stdio; the virtual root and /a, a virtual directory above the mount /a/b; a
 * read-only mount /ro (a file, a directory, symlinks out of it), a file mount /single, a
 * read-write mount /rw and a --tmp directory /scratch (files and directories); a closed
 * descriptor and numbers that were never handles. Buffers: inside RAM, at address 0, across
 * its end, past it, and wrapping around. Paths: absolute, relative to the cwd and to each
 * handle, empty (the handle itself), escaping, too long, with a NUL, outside RAM.
 *
 * `rows` has one entry per call number of the ABI: a number without one ends the run with
 * status 3 and says so, so a new call cannot go untested. Numbers past the ABI, and NONE, must
 * end the run (the monitor's "unknown hypercall"). EXIT's ARG is its status word. Otherwise
 * the last line is "rawcall: call NR: N requests (S succeeded), all answered" (exit 0) when
 * every request came back with a result or an errno. */
#include "rawcall.h"

/* Linux x86-64 values: there are no libc headers here. */
#define O_RDONLY 0
#define O_WRONLY 1
#define O_RDWR 2
#define O_CREAT 0100
#define O_EXCL 0200
#define O_TRUNC 01000
#define O_APPEND 02000
#define O_NOCTTY 0400
#define O_NONBLOCK 04000
#define O_DIRECTORY 0200000
#define O_NOFOLLOW 0400000
#define O_CLOEXEC 02000000
#define O_TMPFILE 020200000
#define AT_SYMLINK_NOFOLLOW 0x100
#define AT_REMOVEDIR 0x200
#define AT_EACCESS 0x200
#define AT_SYMLINK_FOLLOW 0x400
#define AT_EMPTY_PATH 0x1000
#define F_GETFD 1
#define F_SETFD 2
#define F_GETFL 3
#define F_SETFL 4
#define F_GETLK 5
#define F_SETLK 6
#define F_SETLKW 7
#define F_DUPFD_CLOEXEC 1030
#define TCGETS 0x5401
#define TIOCSTI 0x5412
#define TIOCGWINSZ 0x5413
#define FIONREAD 0x541b
#define FIONBIO 0x5421
#define POLLIN 1
#define POLLOUT 4
#define INT32_MIN_ (-2147483647 - 1)
#define INT64_MAX_ 0x7fffffffffffffffll
#define INT64_MIN_ (-INT64_MAX_ - 1)
#define UTIME_OMIT ((1l << 30) - 2l)
#define UTIME_NOW ((1l << 30) - 1l)

#define AT ((uint64_t)(uint32_t)SBX_AT_FDCWD)
#define OUT_FD 900 /* the guest's stdout, kept where no row reaches it */
#define CLOSED_FD 700

/* Guest memory: the upper half of RAM is unused by this program (no kernel, no heap). */
static uint64_t top, scratch;
#define BUF (scratch)		       /* 64 KiB, filled with '.' */
#define STR (scratch + 0x10000)	       /* strings made at run time */
#define IOV (scratch + 0x20000)	       /* iovecs, pollfds, flocks, timespecs, trace args */
#define PAGES (scratch + (4ull << 20)) /* DISCARD and POPULATE */

/* ---- Requests and their answers ---- */

static uint64_t requests, succeeded, unanswered;
static uint32_t this_call;

static int64_t req(uint32_t nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
		   uint64_t a5, uint64_t a6)
{
	const uint64_t a[7] = {a0, a1, a2, a3, a4, a5, a6};
	int64_t r = rawcall7(nr, a);
	requests++;
	succeeded += r >= 0;
	if (r < -4095) {
		unanswered++;
		rawcall_say("rawcall: request ");
		rawcall_say_num((int64_t)requests);
		rawcall_say(" got neither a result nor an errno: ");
		rawcall_say_num(r);
		rawcall_say("\n");
	}
	return r;
}

static int64_t req1(uint32_t nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3)
{
	return req(nr, a0, a1, a2, a3, 0, 0, 0);
}

/* A request the calling vCPU's own thread serves (SBX_SLOT_OWN), or not (own 0). */
static int64_t req_own(uint32_t nr, int own, uint64_t a0, uint64_t a1, uint64_t a2)
{
	const uint64_t a[7] = {a0, a1, a2, 0, 0, 0, 0};
	int64_t r = rawcall7_pad(nr, own ? SBX_SLOT_OWN : 0, a);
	requests++;
	succeeded += r >= 0;
	if (r < -4095)
		unanswered++;
	return r;
}

static uint64_t slen(const char *s)
{
	uint64_t n = 0;
	while (s[n])
		n++;
	return n;
}

/* struct sbx_path in the seven argument words. */
static int64_t path_req(uint32_t nr, uint64_t dirfd, uint32_t flags, uint64_t path,
			uint32_t path_len, uint32_t mode, uint64_t buf, uint64_t buf_len,
			uint64_t dirfd2, uint64_t path2, uint32_t path2_len)
{
	return req(nr, (uint32_t)dirfd | (uint64_t)flags << 32, path,
		   path_len | (uint64_t)mode << 32, buf, buf_len,
		   (uint32_t)dirfd2 | (uint64_t)path2_len << 32, path2);
}

static void close_fd(int64_t fd)
{
	req1(SBX_CALL_CLOSE, (uint64_t)fd, 0, 0, 0);
}

/* ---- Targets: handles ---- */

enum {
	F_STDIN,
	F_STDOUT,
	F_STDERR,
	F_ROOT,
	F_VDIR,
	F_NESTED,
	F_NESTED_FILE,
	F_RO,
	F_RO_FILE,
	F_RO_DIR,
	F_SINGLE,
	F_RW,
	F_RW_FILE,
	F_RW_DIR,
	F_TMP,
	F_TMP_FILE,
	F_CLOSED,
	F_UNUSED,
	F_TOO_BIG,
	F_NEGATIVE,
	F_HIGH_BITS,
	NFD
};

static const struct {
	const char *path;
	uint32_t flags;
} fd_paths[NFD] = {
    [F_ROOT] = {"/", O_RDONLY | O_DIRECTORY},
    [F_VDIR] = {"/a", O_RDONLY},
    [F_NESTED] = {"/a/b", O_RDONLY | O_DIRECTORY},
    [F_NESTED_FILE] = {"/a/b/file", O_RDONLY},
    [F_RO] = {"/ro", O_RDONLY | O_DIRECTORY},
    [F_RO_FILE] = {"/ro/file", O_RDONLY},
    [F_RO_DIR] = {"/ro/dir", O_RDONLY | O_DIRECTORY},
    [F_SINGLE] = {"/single", O_RDONLY},
    [F_RW] = {"/rw", O_RDONLY | O_DIRECTORY},
    [F_RW_FILE] = {"/rw/file", O_RDWR},
    [F_RW_DIR] = {"/rw/dir", O_RDONLY | O_DIRECTORY},
    [F_TMP] = {"/scratch", O_RDONLY | O_DIRECTORY},
    [F_TMP_FILE] = {"/scratch/file", O_RDWR | O_CREAT},
};

static int64_t fds[NFD];
static int64_t saved_stdio[3];

/* Every handle of setup_fds into out, the rows' own to follow: how many. */
static unsigned with_fds(uint64_t *out)
{
	for (int f = 0; f < NFD; f++)
		out[f] = (uint64_t)fds[f];
	return NFD;
}

/* Every handle afresh (a row may have closed or replaced any of them), stdio included. */
static void setup_fds(void)
{
	for (int i = F_ROOT; i <= F_TMP_FILE; i++)
		if (fds[i] >= 3 && fds[i] < 1024)
			close_fd(fds[i]);
	for (int i = 0; i < 3; i++) {
		if (saved_stdio[i] >= 0)
			req1(SBX_CALL_DUP, (uint64_t)saved_stdio[i], (uint64_t)i, 0, 0);
		fds[i] = i;
	}
	for (int i = F_ROOT; i <= F_TMP_FILE; i++)
		fds[i] = path_req(SBX_CALL_OPEN, AT, fd_paths[i].flags, (uint64_t)fd_paths[i].path,
				  (uint32_t)slen(fd_paths[i].path), 0644, 0, 0, 0, 0, 0);
	req1(SBX_CALL_DUP, 1, CLOSED_FD, 0, 0);
	close_fd(CLOSED_FD);
	fds[F_CLOSED] = CLOSED_FD;
	fds[F_UNUSED] = 999;
	fds[F_TOO_BIG] = 5000;
	fds[F_NEGATIVE] = -1;
	fds[F_HIGH_BITS] = (int64_t)0x100000001ull;
}

/* ---- Targets: buffers ---- */

enum { P_GOOD, P_ZERO, P_EDGE, P_PAST, P_WRAP, NPTR };

static uint64_t ptr(int kind, uint64_t good)
{
	switch (kind) {
	case P_GOOD:
		return good;
	case P_ZERO:
		return 0; /* guest-physical 0 is RAM the program never maps */
	case P_EDGE:
		return top - 8;
	case P_PAST:
		return top + 4096;
	default:
		return ~0ull - 8;
	}
}

/* Address 0 is RAM: a long write there would reach the descriptor tables and the ring. */
static int harmless(int kind, uint64_t len)
{
	return kind != P_ZERO || len <= 4096;
}

/* ---- Targets: paths ---- */

enum { B_NONE, B_PAST, B_EDGE, B_WRAP, B_LONG, B_NUL, B_DEEP, B_EMPTY };

struct opnd {
	int dir; /* -1: AT_FDCWD, else an F_* handle */
	int bad; /* B_*: how the path itself is broken */
	const char *path;
};

static const struct opnd opnds[] = {
    {-1, 0, "/"},
    {-1, 0, "/a"},
    {-1, 0, "/a/b"},
    {-1, 0, "/a/b/file"},
    {-1, 0, "/a/new"},
    {-1, 0, "/a/b/new"},
    {-1, 0, "/ro"},
    {-1, 0, "/ro/file"},
    {-1, 0, "/ro/dir"},
    {-1, 0, "/ro/link"},
    {-1, 0, "/ro/dangling"},
    {-1, 0, "/ro/new"},
    {-1, 0, "/single"},
    {-1, 0, "/single/x"},
    {-1, 0, "/rw"},
    {-1, 0, "/rw/file"},
    {-1, 0, "/rw/dir"},
    {-1, 0, "/rw/link"},
    {-1, 0, "/rw/up"},
    {-1, 0, "/rw/up/x"},
    {-1, 0, "/rw/new"},
    {-1, 0, "/rw/dir/new"},
    {-1, 0, "/scratch"},
    {-1, 0, "/scratch/file"},
    {-1, 0, "/scratch/new"},
    {-1, 0, "/etc/passwd"},
    {-1, 0, "/ro/../../etc/passwd"},
    {-1, 0, "//ro/./file/"},
    {-1, 0, "ro/file"},
    {-1, 0, "a"},
    {-1, 0, "."},
    {-1, 0, ".."},
    {F_RO, 0, "file"},
    {F_RO, 0, "new"},
    {F_RO, 0, "../etc/passwd"},
    {F_VDIR, 0, "b/file"},
    {F_VDIR, 0, "new"},
    {F_ROOT, 0, "ro"},
    {F_RW, 0, "new2"},
    {F_RW_DIR, 0, "new3"},
    {F_TMP, 0, "new2"},
    {F_NESTED, 0, "file"},
    {F_RO_FILE, 0, "x"},
    {F_STDOUT, 0, "x"},
    {F_UNUSED, 0, "x"},
    {F_CLOSED, 0, "x"},
    {F_NEGATIVE, 0, "x"},
    {-1, B_PAST, 0},
    {-1, B_EDGE, 0},
    {-1, B_WRAP, 0},
    {-1, B_LONG, 0},
    {-1, B_NUL, 0},
    {-1, B_DEEP, 0},
    {-1, B_EMPTY, 0},
};
#define NOPND (sizeof(opnds) / sizeof(opnds[0]))

/* The second path of RENAME, LINK and SYMLINK. */
static const struct opnd opnds2[] = {
    {-1, 0, "/rw/new"}, {-1, 0, "/rw/dir/moved"}, {-1, 0, "/rw/file"}, {-1, 0, "/scratch/new"},
    {-1, 0, "/ro/new"}, {-1, 0, "/a/new"},	  {-1, 0, "/"},	       {-1, 0, "/a/b/x"},
    {-1, 0, "/single"}, {-1, 0, "/etc/x"},	  {F_RW, 0, "rel"},    {F_UNUSED, 0, "x"},
    {-1, B_PAST, 0},	{-1, B_EMPTY, 0},
};
#define NOPND2 (sizeof(opnds2) / sizeof(opnds2[0]))

/* Strings the broken kinds need, made once. */
static uint64_t str_nul, str_long, str_deep;

static void make_strings(void)
{
	char *s = (char *)STR;
	const char nul[] = "/ro/file\0/x";
	memcpy(s, nul, sizeof(nul));
	str_nul = STR;
	str_long = STR + 64;
	for (int i = 0; i < 5000; i++)
		s[64 + i] = i % 2 ? 'x' : '/';
	str_deep = STR + 8192;
	for (int i = 0; i < 4000; i++)
		s[8192 + i] = "../"[i % 3];
}

/* The address, length and directory handle of an operand; `handle` gives the empty path. */
static void operand(const struct opnd *o, uint64_t *dirfd, uint64_t *addr, uint32_t *len)
{
	*dirfd = o->dir < 0 ? AT : (uint64_t)fds[o->dir];
	*addr = (uint64_t)o->path;
	*len = o->path ? (uint32_t)slen(o->path) : 8;
	switch (o->bad) {
	case B_PAST:
		*addr = top + 4096;
		break;
	case B_EDGE:
		*addr = top - 4;
		*len = 64;
		break;
	case B_WRAP:
		*addr = ~0ull - 8;
		*len = 64;
		break;
	case B_LONG:
		*addr = str_long;
		*len = 5000;
		break;
	case B_NUL:
		*addr = str_nul;
		*len = 11;
		break;
	case B_DEEP:
		*addr = str_deep;
		*len = 4000;
		break;
	case B_EMPTY:
		*addr = STR;
		*len = 0;
		break;
	}
}

/* Target i of a path row: one of the NOPND path operands, then each handle of the fixture
 * with an empty path (the handle itself). */
static void path_target(unsigned i, uint64_t *dirfd, uint64_t *addr, uint32_t *len)
{
	if (i < NOPND) {
		operand(&opnds[i], dirfd, addr, len);
	} else {
		*dirfd = (uint64_t)fds[i - NOPND];
		*addr = STR;
		*len = 0;
	}
}

/* ---- The rows ---- */

struct pvar {
	uint32_t flags, mode;
	int buf; /* P_* kind, or -1 for none (0) */
	uint64_t buf_len;
};

static const struct pvar v_open[] = {
    {O_RDONLY, 0, -1, 0},
    {O_RDONLY | O_DIRECTORY, 0, -1, 0},
    {O_WRONLY, 0, -1, 0},
    {O_RDWR | O_CREAT, 0644, -1, 0},
    {O_WRONLY | O_CREAT | O_EXCL, 0600, -1, 0},
    {O_RDWR | O_TRUNC, 0, -1, 0},
    {O_TMPFILE | O_RDWR, 0600, -1, 0},
    {O_RDONLY | O_NOFOLLOW, 0, -1, 0},
    {O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC, 0, -1, 0},
    {0xffffffff, 07777, -1, 0},
};
static const struct pvar v_stat[] = {
    {0, 0, P_GOOD, 144}, {AT_SYMLINK_NOFOLLOW, 0, P_GOOD, 144},
    {0, 0, P_PAST, 144}, {0, 0, P_GOOD, 10},
    {0, 0, P_ZERO, 144}, {0xffffffff, 0, P_EDGE, 144},
};
static const struct pvar v_readlink[] = {
    {0, 0, P_GOOD, 64}, {0, 0, P_GOOD, 0}, {0, 0, P_PAST, 64}, {0, 0, P_EDGE, 64}};
static const struct pvar v_mkdir[] = {{0, 0755, -1, 0}, {0, 07777, -1, 0}};
static const struct pvar v_unlink[] = {{0, 0, -1, 0}, {AT_REMOVEDIR, 0, -1, 0}, {~0u, 0, -1, 0}};
static const struct pvar v_chdir[] = {{0, 0, -1, 0}};
static const struct pvar v_access[] = {{0, 0, -1, 0},
				       {0, 4, -1, 0},
				       {AT_EACCESS, 2, -1, 0},
				       {AT_SYMLINK_NOFOLLOW, 5, -1, 0},
				       {~0u, ~0u, -1, 0}};
static const struct pvar v_chmod[] = {{0, 0644, -1, 0}, {AT_SYMLINK_NOFOLLOW, 06777, -1, 0}};
/* mode is the uid; the gid (buf) stays 0 here: none of its kinds is an address. */
static const struct pvar v_chown[] = {
    {0, 0, -1, 0}, {AT_SYMLINK_NOFOLLOW, 12345, -1, 0}, {~0u, ~0u, -1, 0}};
static const struct pvar v_utimens[] = {
    {0, 0, -1, 0}, {0, 0, P_GOOD, 32}, {0, 0, P_PAST, 32}, {0, 0, P_EDGE, 32}};
static const struct pvar v_statfs[] = {
    {0, 0, P_GOOD, 120}, {0, 0, P_GOOD, 8}, {0, 0, P_PAST, 120}, {0, 0, P_ZERO, 120}};
static const struct pvar v_rename[] = {{0, 0, -1, 0}};
static const struct pvar v_link[] = {
    {0, 0, -1, 0}, {AT_SYMLINK_FOLLOW, 0, -1, 0}, {AT_EMPTY_PATH, 0, -1, 0}, {0x8000, 0, -1, 0}};

static void path_vars(uint32_t nr, const struct pvar **v, int *n)
{
	switch (nr) {
#define CASE(call, arr)                                                                            \
	case call:                                                                                 \
		*v = arr;                                                                          \
		*n = (int)(sizeof(arr) / sizeof(arr[0]));                                          \
		return;
		CASE(SBX_CALL_OPEN, v_open)
		CASE(SBX_CALL_STAT, v_stat)
		CASE(SBX_CALL_READLINK, v_readlink)
		CASE(SBX_CALL_MKDIR, v_mkdir)
		CASE(SBX_CALL_UNLINK, v_unlink)
		CASE(SBX_CALL_CHDIR, v_chdir)
		CASE(SBX_CALL_ACCESS, v_access)
		CASE(SBX_CALL_CHMOD, v_chmod)
		CASE(SBX_CALL_CHOWN, v_chown)
		CASE(SBX_CALL_UTIMENS, v_utimens)
		CASE(SBX_CALL_STATFS, v_statfs)
		CASE(SBX_CALL_RENAME, v_rename)
		CASE(SBX_CALL_LINK, v_link)
		CASE(SBX_CALL_SYMLINK, v_rename)
#undef CASE
	}
	*v = 0;
	*n = 0;
}

/* What a successful call leaves behind that would change the next one's meaning. */
static void undo(uint32_t nr, int64_t r)
{
	if (nr == SBX_CALL_OPEN && r >= 3)
		close_fd(r);
	if (nr == SBX_CALL_CHDIR)
		path_req(SBX_CALL_CHDIR, AT, 0, (uint64_t) "/", 1, 0, 0, 0, 0, 0, 0);
}

/* Calls that name one path: every operand, and every handle with an empty path (the handle
 * itself for CHDIR, CHMOD, UTIMENS and STATFS), in each of the call's variants. */
static void row_path(uint32_t nr, uint64_t arg)
{
	(void)arg;
	const struct pvar *v;
	int nv;
	path_vars(nr, &v, &nv);
	int64_t *times = (int64_t *)IOV;
	times[0] = 0;
	times[1] = UTIME_NOW;
	times[2] = 0;
	times[3] = UTIME_OMIT;
	setup_fds();
	for (int k = 0; k < nv; k++) {
		for (unsigned i = 0; i < NOPND + NFD; i++) {
			uint64_t dirfd, addr;
			uint32_t len;
			path_target(i, &dirfd, &addr, &len);
			/* UTIMENS reads two timespecs; the others write into the buffer. */
			uint64_t good = nr == SBX_CALL_UTIMENS ? IOV : BUF;
			uint64_t buf = v[k].buf < 0 ? 0 : ptr(v[k].buf, good);
			undo(nr, path_req(nr, dirfd, v[k].flags, addr, len, v[k].mode, buf,
					  v[k].buf_len, 0, 0, 0));
		}
		setup_fds();
	}
}

/* RENAME, LINK, SYMLINK: each first operand against each second one. SYMLINK's first path is
 * the link's text. */
static void row_path2(uint32_t nr, uint64_t arg)
{
	(void)arg;
	const struct pvar *v;
	int nv;
	path_vars(nr, &v, &nv);
	setup_fds();
	for (int k = 0; k < nv; k++) {
		for (unsigned i = 0; i < NOPND; i++) {
			for (unsigned j = 0; j < NOPND2; j++) {
				uint64_t d1, a1, d2, a2;
				uint32_t l1, l2;
				operand(&opnds[i], &d1, &a1, &l1);
				operand(&opnds2[j], &d2, &a2, &l2);
				path_req(nr, d1, v[k].flags, a1, l1, 0, 0, 0, d2, a2, l2);
			}
		}
		setup_fds();
	}
}

/* READ, WRITE, PREAD, PWRITE, GETDENTS: each handle, each buffer, lengths and offsets. */
static void row_rw(uint32_t nr, uint64_t arg)
{
	(void)arg;
	static const uint64_t lens[] = {0, 1, 64, 512, ~0ull};
	static const int64_t offs[] = {0, 3, -1};
	int positioned = nr == SBX_CALL_PREAD || nr == SBX_CALL_PWRITE;
	setup_fds();
	for (int f = 0; f < NFD; f++)
		for (int p = 0; p < NPTR; p++)
			for (unsigned l = 0; l < sizeof(lens) / sizeof(lens[0]); l++)
				for (int o = 0; o < (positioned ? 3 : 1); o++)
					if (harmless(p, lens[l]))
						req1(nr, (uint32_t)fds[f], ptr(p, BUF), lens[l],
						     (uint64_t)offs[o]);
}

/* READV, WRITEV: vectors with good and bad entries, bad arrays, too many entries. */
static void row_rwv(uint32_t nr, uint64_t arg)
{
	(void)arg;
	struct sbx_iovec *iov = (struct sbx_iovec *)IOV;
	iov[0] = (struct sbx_iovec){BUF, 8};
	iov[1] = (struct sbx_iovec){BUF + 8, 8};
	iov[2] = (struct sbx_iovec){top + 4096, 8};
	iov[3] = (struct sbx_iovec){BUF, ~0ull - 2};
	iov[4] = (struct sbx_iovec){BUF, 0};
	static const struct {
		uint64_t at, cnt;
	} vs[] = {{0, 0}, {0, 1}, {0, 2}, {2, 1}, {3, 2}, {4, 1}, {0, SBX_IOV_MAX + 1}, {0, ~0ull}};
	setup_fds();
	for (int f = 0; f < NFD; f++) {
		for (unsigned i = 0; i < sizeof(vs) / sizeof(vs[0]); i++)
			req1(nr, (uint32_t)fds[f], IOV + vs[i].at * sizeof(*iov), vs[i].cnt, 0);
		for (int p = P_ZERO; p < NPTR; p++)
			req1(nr, (uint32_t)fds[f], ptr(p, IOV), 1, 0);
	}
}

static void row_close(uint32_t nr, uint64_t arg)
{
	(void)arg;
	for (int f = 0; f < NFD; f++) {
		setup_fds();
		req1(nr, (uint64_t)fds[f], 0, 0, 0);
	}
}

/* FSTAT: the handle is sbx_path.dirfd. */
static void row_fstat(uint32_t nr, uint64_t arg)
{
	(void)arg;
	static const uint64_t lens[] = {144, 100};
	setup_fds();
	for (int f = 0; f < NFD; f++)
		for (int p = 0; p < NPTR; p++)
			for (int l = 0; l < 2; l++)
				path_req(nr, (uint64_t)fds[f], 0, 0, 0, 0, ptr(p, BUF), lens[l], 0,
					 0, 0);
}

/* Every handle, each with every pair of arguments in vs. */
static void each_fd_with(uint32_t nr, const uint64_t (*vs)[2], unsigned n)
{
	setup_fds();
	for (int f = 0; f < NFD; f++)
		for (unsigned i = 0; i < n; i++)
			req1(nr, (uint64_t)fds[f], vs[i][0], vs[i][1], 0);
}

static void row_lseek(uint32_t nr, uint64_t arg)
{
	(void)arg;
	static const uint64_t vs[][2] = {{0, 0},  {5, 1},	   {0, 2},
					 {0, 3},  {0, 4},	   {~0ull, 0},
					 {0, 99}, {1ull << 62, 0}, {0, 0xffffffff00000000ull}};
	each_fd_with(nr, vs, sizeof(vs) / sizeof(vs[0]));
}

/* FTRUNCATE, FSYNC, FDATASYNC: a handle and a number. */
static void row_fd_num(uint32_t nr, uint64_t arg)
{
	(void)arg;
	static const uint64_t ns[] = {0, 3, ~0ull, 1ull << 62};
	setup_fds();
	for (int f = 0; f < NFD; f++)
		for (unsigned i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
			req1(nr, (uint64_t)fds[f], ns[i], 0, 0);
}

static void row_dup(uint32_t nr, uint64_t arg)
{
	(void)arg;
	static const uint64_t vs[][3] = {
	    {~0ull, 0, 0},     {~0ull, 3, 1}, {~0ull, 1023, 0}, {~0ull, 5000, 0},
	    {800, 0, 0},       {1023, 0, 1},  {5000, 0, 0},	{0x80000000ull, 0, 0},
	    {CLOSED_FD, 0, 0}, {1, 0, 0},     {~1ull, 0, 0},
	};
	for (int f = 0; f < NFD; f++) {
		setup_fds();
		for (unsigned i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) {
			int64_t r = req1(nr, (uint64_t)fds[f], vs[i][0], vs[i][1], vs[i][2]);
			if (r >= 3 && r != fds[f])
				close_fd(r);
		}
		/* onto itself */
		req1(nr, (uint64_t)fds[f], (uint64_t)fds[f], 0, 0);
	}
}

static void row_fcntl(uint32_t nr, uint64_t arg)
{
	(void)arg;
	/* struct flock: l_type, l_whence (shorts), l_start, l_len, l_pid */
	uint8_t *fl = (uint8_t *)IOV;
	memset(fl, 0, 96);
	fl[0] = 1;  /* F_WRLCK */
	fl[32] = 0; /* F_RDLCK */
	fl[64] = 2; /* F_UNLCK */
	const uint64_t vs[][2] = {
	    {F_GETFD, 0},	  {F_SETFD, 1},
	    {F_GETFL, 0},	  {F_SETFL, O_NONBLOCK | O_APPEND},
	    {F_SETFL, 0},	  {F_GETLK, IOV},
	    {F_SETLK, IOV},	  {F_SETLK, IOV + 32},
	    {F_SETLKW, IOV + 64}, {F_GETLK, top + 4096},
	    {F_SETLK, top - 8},	  {F_SETLKW, 0},
	    {F_DUPFD_CLOEXEC, 5}, {999, 0},
	    {~0ull, 0},
	};
	each_fd_with(nr, vs, sizeof(vs) / sizeof(vs[0]));
}

/* The terminal requests of 1.20 (SBX_TTY_IOCTLS) and others on a pseudo-terminal of the
 * monitor's /dev/ptmx: its master, locked and then unlocked, and a slave from TIOCGPTPEER, as
 * well as every other handle; each with values and buffers of each kind. Nothing is written to
 * the master (its ^C would signal the foreground group), and never TIOCSTI. */
static void row_ioctl_tty(uint32_t nr)
{
	static const uint64_t tty_reqs[] = {
#define TTY_REQ(name, num, how, size) num,
	    SBX_TTY_IOCTLS(TTY_REQ)
#undef TTY_REQ
		0xdeadbeef,
	    0x5441 | (1ull << 32)};
	static const uint64_t vals[] = {0, 1, 2, O_RDWR | O_NOCTTY | O_NONBLOCK, ~0ull};
	int32_t *word = (int32_t *)(IOV + 0x600);
	int64_t m = path_req(SBX_CALL_OPEN, AT, O_RDWR | O_NOCTTY, (uint64_t) "/dev/ptmx", 9, 0, 0,
			     0, 0, 0, 0);
	req1(nr, (uint64_t)m, 0x5441, O_RDWR | O_NOCTTY, 0); /* locked: EIO */
	*word = 0;
	req1(nr, (uint64_t)m, 0x40045431, IOV + 0x600, 0); /* TIOCSPTLCK 0: unlockpt */
	int64_t sl = req1(nr, (uint64_t)m, 0x5441, O_RDWR | O_NOCTTY, 0);
	uint64_t hs[NFD + 2];
	unsigned nh = with_fds(hs);
	hs[nh++] = (uint64_t)m;
	hs[nh++] = (uint64_t)sl;
	for (unsigned h = 0; h < nh; h++)
		for (unsigned i = 0; i < sizeof(tty_reqs) / sizeof(tty_reqs[0]); i++) {
			/* A slave TIOCGPTPEER makes is closed again. */
			for (unsigned v = 0; v < sizeof(vals) / sizeof(vals[0]); v++) {
				int64_t r = req1(nr, hs[h], tty_reqs[i], vals[v], 0);
				if (tty_reqs[i] == 0x5441 && r > 2)
					close_fd(r);
			}
			for (int p = 0; p < NPTR; p++) {
				int64_t r = req1(nr, hs[h], tty_reqs[i], ptr(p, BUF), 0);
				if (tty_reqs[i] == 0x5441 && r > 2)
					close_fd(r);
			}
		}
	if (sl > 2)
		close_fd(sl);
	if (m > 2)
		close_fd(m);
}

static void row_ioctl(uint32_t nr, uint64_t arg)
{
	(void)arg;
	static const uint64_t reqs[] = {
	    TCGETS, TIOCGWINSZ, FIONREAD, FIONBIO, TIOCSTI, 0xdeadbeef, TCGETS | (1ull << 32)};
	setup_fds();
	for (int f = 0; f < NFD; f++)
		for (unsigned i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++)
			for (int p = 0; p < NPTR; p++)
				req1(nr, (uint64_t)fds[f], reqs[i], ptr(p, BUF), 0);
	row_ioctl_tty(nr);
}

static void row_poll(uint32_t nr, uint64_t arg)
{
	(void)arg;
	struct pfd {
		int32_t fd;
		int16_t events, revents;
	} *p = (struct pfd *)IOV;
	setup_fds();
	for (int f = 0; f < NFD; f++) {
		p[f] = (struct pfd){(int32_t)fds[f], POLLIN | POLLOUT, 0};
		req1(nr, IOV + (uint64_t)f * sizeof(*p), 1, 0, 0);
		p[f].events = -1;
		req1(nr, IOV + (uint64_t)f * sizeof(*p), 1, 0, 0);
		p[f].events = POLLIN | POLLOUT;
	}
	req1(nr, IOV, NFD, 0, 0);
	req1(nr, IOV, NFD, 5, 0);
	/* Waits with no end only where something is ready at once: a regular file is. */
	p[0] = (struct pfd){(int32_t)fds[F_RO_FILE], POLLIN, 0};
	req1(nr, IOV, 1, ~0ull, 0);
	req1(nr, IOV, 0, 0, 0);
	req1(nr, top + 4096, 0, 0, 0);
	req1(nr, IOV, SBX_MAX_POLL + 1, 0, 0);
	req1(nr, IOV, ~0ull, 0, 0);
	for (int k = P_ZERO; k < NPTR; k++)
		req1(nr, ptr(k, IOV), 2, 0, 0);
}

/* GETCWD, RANDOM: a buffer and a length. */
static void row_buf(uint32_t nr, uint64_t arg)
{
	(void)arg;
	static const uint64_t lens[] = {0, 1, 2, 64, 4096, 2ull << 20, ~0ull};
	for (int p = 0; p < NPTR; p++)
		for (unsigned l = 0; l < sizeof(lens) / sizeof(lens[0]); l++)
			if (harmless(p, lens[l]))
				req1(nr, 0, ptr(p, BUF), lens[l], 0);
}

/* TRACE: what --strace prints, from syscall numbers and arguments the guest makes up. */
static void row_trace(uint32_t nr, uint64_t arg)
{
	(void)arg;
	static const uint64_t sys[] = {0, 1, 2, 9, 60, 231, 257, 262, 316, 511, 512, 9999, ~0ull};
	static const uint64_t rets[] = {0, (uint64_t)-2, 5, 1ull << 40};
	uint64_t *args = (uint64_t *)IOV;
	const uint64_t fills[] = {(uint64_t) "/ro/file", top + 4096, top - 3, 0};
	for (unsigned fi = 0; fi < sizeof(fills) / sizeof(fills[0]); fi++) {
		for (int i = 0; i < 6; i++)
			args[i] = fills[fi];
		for (unsigned s = 0; s < sizeof(sys) / sizeof(sys[0]); s++)
			for (unsigned r = 0; r < sizeof(rets) / sizeof(rets[0]); r++)
				for (int p = 0; p < NPTR; p++)
					req1(nr, sys[s], rets[r], ptr(p, IOV), 0);
	}
}

/* DISCARD, POPULATE: pages of the scratch area, and addresses that are not user pages. */
static void row_pages(uint32_t nr, uint64_t arg)
{
	(void)arg;
	const uint64_t addrs[] = {PAGES, PAGES + 1,  SBX_RING_ADDR,    SBX_USER_ADDR - 4096,
				  top,	 top + 4096, ~0ull & ~4095ull, 0};
	const uint64_t lens[] = {4096, 3 * 4096, 0, 1, top / 4, 1ull << 40, ~0ull & ~4095ull};
	for (unsigned a = 0; a < sizeof(addrs) / sizeof(addrs[0]); a++)
		for (unsigned l = 0; l < sizeof(lens) / sizeof(lens[0]); l++)
			req1(nr, addrs[a], lens[l], 0, 0);
}

static void row_sleep(uint32_t nr, uint64_t arg)
{
	(void)arg;
	static const uint64_t ns[] = {0, 1000, 2000000};
	for (unsigned i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
		req1(nr, ns[i], 0, 0, 0);
}

/* THREAD_START: each value wrong in turn, the others right, never all right (a new vCPU on a
 * root and ring that this program never made would run into nothing it set up: its success is
 * the threads tests', confined as well). */
static void row_thread(uint32_t nr, uint64_t arg)
{
	(void)arg;
	const uint64_t idx[] = {0, 1, 1023, 1024, 1ull << 32, ~0ull};
	const uint64_t roots[] = {SBX_PT_ADDR + 1, top, ~0ull & ~4095ull};
	const uint64_t rips[] = {SBX_KERNEL_ADDR - 1, SBX_VDSO_ADDR, 0, ~0ull};
	const uint64_t rsps[] = {0, SBX_WINDOW_SYSCALL_TOP - 8, ~0ull};
	const uint64_t rings[] = {0, SBX_RING_ADDR, BUF + 1, top, ~0ull & ~4095ull};
	for (unsigned i = 0; i < sizeof(idx) / sizeof(idx[0]); i++)
		req(nr, idx[i], SBX_PT_ADDR, SBX_KERNEL_ADDR, SBX_WINDOW_SYSCALL_TOP, 0, 0, 0);
	for (unsigned i = 0; i < sizeof(roots) / sizeof(roots[0]); i++)
		req(nr, 1, roots[i], SBX_KERNEL_ADDR, SBX_WINDOW_SYSCALL_TOP, BUF, 0, 0);
	for (unsigned i = 0; i < sizeof(rips) / sizeof(rips[0]); i++)
		req(nr, 1, SBX_PT_ADDR, rips[i], SBX_WINDOW_SYSCALL_TOP, BUF, 0, 0);
	for (unsigned i = 0; i < sizeof(rsps) / sizeof(rsps[0]); i++)
		req(nr, 1, SBX_PT_ADDR, SBX_KERNEL_ADDR, rsps[i], BUF, 0, 0);
	for (unsigned i = 0; i < sizeof(rings) / sizeof(rings[0]); i++)
		req(nr, 1, SBX_PT_ADDR, SBX_KERNEL_ADDR, SBX_WINDOW_SYSCALL_TOP, rings[i], 0, 0);
}

/* PARK and UNPARK: words in RAM holding the value or not, misaligned, outside RAM; PARK as the
 * vCPU's own request or not (refused), with short waits. TLB_SHOOTDOWN takes no argument. */
static void row_park(uint32_t nr, uint64_t arg)
{
	(void)arg;
	*(volatile uint32_t *)IOV = 7;
	const uint64_t words[] = {IOV, IOV + 2, 0, top - 4, top, ~0ull & ~3ull};
	const uint64_t vals[] = {7, 8, 1ull << 32};
	for (unsigned w = 0; w < sizeof(words) / sizeof(words[0]); w++)
		for (unsigned v = 0; v < sizeof(vals) / sizeof(vals[0]); v++)
			for (int own = 0; own < 2; own++)
				req_own(nr, own, words[w], vals[v], nr == SBX_CALL_PARK ? 1000 : 0);
}

/* Closes what a request made: a handle, or a pipe's two (read | write << 32). */
static void close_made(int64_t r, int pipe)
{
	if (r < 0)
		return;
	req1(SBX_CALL_CLOSE, (uint64_t)(pipe ? r & 0xffffffff : r), 0, 0, 0);
	if (pipe)
		req1(SBX_CALL_CLOSE, (uint64_t)(r >> 32), 0, 0, 0);
}

/* PIPE, EVENTFD, EPOLL_CREATE: every flag the call knows, others, and counts past 32 bits;
 * what is made is closed again. */
static void row_make(uint32_t nr, uint64_t arg)
{
	(void)arg;
	const uint64_t flags[] = {0, 1, 0x40, 04000, 040000, 02000000, 02004001, ~0ull};
	const uint64_t counts[] = {0, 1, 0xffffffffull, 1ull << 32, ~0ull};
	for (unsigned f = 0; f < sizeof(flags) / sizeof(flags[0]); f++) {
		if (nr == SBX_CALL_EVENTFD)
			for (unsigned c = 0; c < sizeof(counts) / sizeof(counts[0]); c++)
				close_made(req1(nr, counts[c], flags[f], 0, 0), 0);
		else
			close_made(req1(nr, flags[f], 0, 0, 0), nr == SBX_CALL_PIPE);
	}
}

/* An epoll instance watching an eventfd that is ready, and a pipe: *ep, *ev, *p (read end). */
static void make_epoll(int64_t *ep, int64_t *ev, int64_t *p)
{
	*ep = req1(SBX_CALL_EPOLL_CREATE, 0, 0, 0, 0);
	*ev = req1(SBX_CALL_EVENTFD, 1, 0, 0, 0);
	*p = req1(SBX_CALL_PIPE, 0, 0, 0, 0);
	req(SBX_CALL_EPOLL_CTL, (uint64_t)*ep, 1, (uint64_t)*ev, 1, 7, 0, 0);
}

static void drop_epoll(int64_t ep, int64_t ev, int64_t p)
{
	close_made(ep, 0);
	close_made(ev, 0);
	close_made(p, 1);
}

/* EPOLL_CTL: instances and not, each op and others, every kind of handle as the target (files,
 * directories, virtual files, stdio, the instance itself), events and data of every width. */
static void row_epoll_ctl(uint32_t nr, uint64_t arg)
{
	(void)arg;
	setup_fds();
	int64_t ep, ev, p;
	make_epoll(&ep, &ev, &p);
	const uint64_t eps[] = {(uint64_t)ep, (uint64_t)ev, (uint64_t)fds[F_RW_FILE], 1023, ~0ull};
	const uint64_t ops[] = {1, 3, 2, 0, 4, 1ull << 32, ~0ull};
	const uint64_t evs[] = {1, 0x80000001ull, 1ull << 32, ~0ull};
	uint64_t tgts[NFD + 6];
	unsigned nt = with_fds(tgts);
	tgts[nt++] = (uint64_t)ep;
	tgts[nt++] = (uint64_t)ev;
	tgts[nt++] = (uint64_t)(p & 0xffffffff);
	tgts[nt++] = (uint64_t)(p >> 32);
	tgts[nt++] = 1023;
	tgts[nt++] = ~0ull;
	for (unsigned e = 0; e < sizeof(eps) / sizeof(eps[0]); e++)
		for (unsigned o = 0; o < sizeof(ops) / sizeof(ops[0]); o++)
			for (unsigned t = 0; t < nt; t++)
				for (unsigned v = 0; v < sizeof(evs) / sizeof(evs[0]); v++)
					req(nr, eps[e], ops[o], tgts[t], evs[v], ~0ull, 0, 0);
	drop_epoll(ep, ev, p);
}

/* EPOLL_WAIT: with an event ready, into each kind of buffer, counts in and out of range, an
 * epfd that is no instance; waits of 0 and 1 ms only (nothing here would end a longer one). */
static void row_epoll_wait(uint32_t nr, uint64_t arg)
{
	(void)arg;
	int64_t ep, ev, p;
	make_epoll(&ep, &ev, &p);
	const uint64_t eps[] = {(uint64_t)ep, (uint64_t)ev, 1023, ~0ull};
	const uint64_t ns[] = {1, 2, SBX_EPOLL_BATCH, SBX_EPOLL_BATCH + 1, 0, ~0ull};
	const uint64_t ms[] = {0, 1, 1ull << 40};
	for (unsigned e = 0; e < sizeof(eps) / sizeof(eps[0]); e++)
		for (unsigned n = 0; n < sizeof(ns) / sizeof(ns[0]); n++)
			for (int b = 0; b < NPTR; b++)
				for (unsigned m = 0; m < sizeof(ms) / sizeof(ms[0]); m++)
					if (harmless(b, ns[n] * 12) && (ms[m] < 2 || e > 0))
						req1(nr, eps[e], ptr(b, IOV), ns[n], ms[m]);
	drop_epoll(ep, ev, p);
}

/* KICK: this vCPU (its kernel is the one running: nothing to deliver) and indexes with no
 * vCPU or past every one. */
static void row_kick(uint32_t nr, uint64_t arg)
{
	(void)arg;
	const uint64_t idx[] = {0, 1, 2, 1023, 1024, 1ull << 32, ~0ull};
	for (unsigned i = 0; i < sizeof(idx) / sizeof(idx[0]); i++)
		req1(nr, idx[i], 0, 0, 0);
}

/* NOFILE: read and set the limits, with the old ones written to each kind of buffer. */
static void row_nofile(uint32_t nr, uint64_t arg)
{
	(void)arg;
	static const uint64_t sets[] = {0, 1, 2, ~0ull};
	static const uint64_t lims[] = {0, 16, 1024, 1ull << 20, ~0ull};
	for (unsigned s = 0; s < sizeof(sets) / sizeof(sets[0]); s++)
		for (unsigned soft = 0; soft < sizeof(lims) / sizeof(lims[0]); soft++)
			for (unsigned hard = 0; hard < sizeof(lims) / sizeof(lims[0]); hard++)
				for (int p = 0; p < NPTR; p++)
					req1(nr, sets[s], lims[soft], lims[hard], ptr(p, IOV));
	req1(nr, 0, 0, 0, 0);
}

/* EXIT ends the run: ARG is the status word (a status, or a signal with SBX_EXIT_*). */
/* MMAP_SHARED: every handle, offsets and lengths good and bad, each protection. A window made
 * is synced and dropped at once, so that the next ones find a memslot. */
static void row_map(uint32_t nr, uint64_t arg)
{
	(void)arg;
	static const uint64_t offs[] = {0, 4096, 1, ~0ull & ~4095ull};
	static const uint64_t lens[] = {4096, 3 * 4096, 0, 1, 1ull << 40};
	static const uint64_t prots[] = {1, 3, 7, 0, ~0ull};
	setup_fds();
	for (int f = 0; f < NFD; f++)
		for (unsigned o = 0; o < sizeof(offs) / sizeof(offs[0]); o++)
			for (unsigned l = 0; l < sizeof(lens) / sizeof(lens[0]); l++)
				for (unsigned p = 0; p < sizeof(prots) / sizeof(prots[0]); p++) {
					int64_t w =
					    req1(nr, (uint64_t)fds[f], offs[o], lens[l], prots[p]);
					if (w <= 0)
						continue;
					req1(SBX_CALL_MSYNC, (uint64_t)w, 4096, 0, 0);
					req1(SBX_CALL_MUNMAP_SHARED, (uint64_t)w, 0, 0, 0);
				}
}

/* MUNMAP_SHARED and MSYNC: a window of their own, then addresses and lengths around it. */
static void row_window(uint32_t nr, uint64_t arg)
{
	(void)arg;
	setup_fds();
	int64_t w = req1(SBX_CALL_MMAP_SHARED, (uint64_t)fds[F_RW_FILE], 0, 2 * 4096, 3);
	uint64_t base = w > 0 ? (uint64_t)w : top;
	const uint64_t addrs[] = {base, base + 4096, base + 1,	      base - 4096,
				  0,	top,	     ~0ull & ~4095ull};
	const uint64_t lens[] = {4096, 2 * 4096, 3 * 4096, 0, ~0ull};
	for (unsigned a = 0; a < sizeof(addrs) / sizeof(addrs[0]); a++)
		for (unsigned l = 0; l < sizeof(lens) / sizeof(lens[0]); l++)
			req1(nr, addrs[a], lens[l], 0, 0);
	if (w > 0)
		req1(SBX_CALL_MUNMAP_SHARED, (uint64_t)w, 0, 0, 0);
}

/* ---- Processes (1.9 on): FORK, EXECVE, WAIT, PKILL, PGRP, ITIMER, VFORK_EXIT ---- */

#define CLONE_VFORK 0x4000
#define WNOHANG 1
#define WNOWAIT 0x01000000

/* A request with six words, served by the vCPU's own thread (SBX_SLOT_OWN), as the process
 * calls must be. */
static int64_t own(uint32_t nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
		   uint64_t a5)
{
	const uint64_t a[7] = {a0, a1, a2, a3, a4, a5, 0};
	int64_t r = rawcall7_pad(nr, SBX_SLOT_OWN, a);
	requests++;
	succeeded += r >= 0;
	if (r < -4095)
		unanswered++;
	return r;
}

/* One real fork: the child, a copy of this program stopped in the request, is answered 0 and
 * leaves at once without a word (only the first process writes the output). */
static int64_t fork_child(void)
{
	int64_t pid = own(SBX_CALL_FORK, 0, 0, 0, 0, 0, 0);
	if (pid == 0)
		rawcall_leave(0);
	return pid;
}

/* The child's status, reaped without a wait that could last: WNOHANG and short sleeps. */
static void reap(int64_t pid)
{
	if (pid <= 0)
		return;
	for (int i = 0; i < 30000; i++) {
		if (own(SBX_CALL_WAIT, (uint64_t)pid, WNOHANG, IOV + 0x100, 0, 0, 0) != 0)
			return;
		rawcall_call(SBX_CALL_SLEEP, 1000000, 0, 0, 0, 0);
	}
	rawcall_say("rawcall: the forked child never ended\n");
	unanswered++;
}

/* Words a signal for the waiting thread would set (none comes): none, aligned in RAM and
 * holding 0, misaligned, outside RAM. */
static uint64_t intr_words[] = {0, 0, 0, 0};

static void make_intr_words(void)
{
	*(volatile uint32_t *)(IOV + 0x40) = 0;
	intr_words[1] = IOV + 0x40;
	intr_words[2] = IOV + 0x41;
	intr_words[3] = top + 4096;
}

/* FORK: not the vCPU's own request; a1, a vfork's wait alone, for pids that are no child (0 at
 * once), past 32 bits, with each kind of interrupt word; then one real fork, whose child the
 * vfork wait and WAIT then see end. */
static void row_fork(uint32_t nr, uint64_t arg)
{
	(void)arg;
	make_intr_words();
	req1(nr, 0, 0, 0, 0); /* not SBX_SLOT_OWN */
	const uint64_t pids[] = {BOOT->pid, 12345, 0x7fffffff, 1ull << 32, ~0ull};
	for (unsigned p = 0; p < sizeof(pids) / sizeof(pids[0]); p++)
		for (unsigned w = 0; w < sizeof(intr_words) / sizeof(intr_words[0]); w++)
			own(nr, CLONE_VFORK, pids[p], intr_words[w], 0, 0, 0);
	int64_t child = fork_child();
	if (child > 0)
		own(nr, CLONE_VFORK, (uint64_t)child, intr_words[1], 0, 0, 0);
	reap(child);
}

/* EXECVE: only requests that fail, or SBX_EXECVE_CHECK's checks of this very program (which
 * change nothing): never FINAL without CHECK (a failure then ends the process, as Linux's
 * past its point of no return). Bad strings and vectors, files that are no program, flags out
 * of range, handles with an empty path. */
static const char *exec_argv[] = {"rawcall", "calls", 0};
static const char *exec_bad_argv[] = {"rawcall", (const char *)0x7ffffffff000ull, 0};

static void row_execve(uint32_t nr, uint64_t arg)
{
	(void)arg;
	const uint32_t CHECK = SBX_EXECVE_CHECK, FINAL = SBX_EXECVE_FINAL;
	static const char *fails[] = {
	    "/ro/file", "/ro/dir",     "/ro/nothing", "/ro/link",  "/ro/dangling",
	    "/rw/up/x", "/etc/passwd", "/a/b",	      "/dev/null", "nowhere",
	    ""};
	const uint64_t flags[] = {0,	  CHECK,      CHECK | AT_SYMLINK_NOFOLLOW, CHECK | FINAL,
				  0x8000, 1ull << 32, CHECK | AT_EMPTY_PATH};
	setup_fds();
	req1(nr, AT, (uint64_t) "/ro/file", 0, 0); /* not SBX_SLOT_OWN */
	for (unsigned p = 0; p < sizeof(fails) / sizeof(fails[0]); p++)
		for (unsigned f = 0; f < sizeof(flags) / sizeof(flags[0]); f++)
			own(nr, AT, (uint64_t)fails[p], (uint64_t)exec_argv, 0, flags[f], 022);
	/* Paths and vectors at addresses that are not the program's. */
	const uint64_t bad[] = {0, top + 4096, ~0ull - 8, 0x7ffffffff000ull};
	for (unsigned b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
		own(nr, AT, bad[b], (uint64_t)exec_argv, 0, 0, 0);
		own(nr, AT, (uint64_t) "/proc/self/exe", bad[b], 0, CHECK, 0);
		own(nr, AT, (uint64_t) "/proc/self/exe", 0, bad[b], CHECK, 0);
	}
	own(nr, AT, (uint64_t) "/proc/self/exe", (uint64_t)exec_bad_argv, 0, CHECK, 0);
	/* The handles, each with an empty path: checks only. */
	for (int f = 0; f < NFD; f++)
		own(nr, (uint64_t)fds[f], (uint64_t) "", 0, 0, CHECK | AT_EMPTY_PATH, 0);
	/* This program, checked: the requests that succeed. */
	own(nr, AT, (uint64_t) "/proc/self/exe", (uint64_t)exec_argv, 0, CHECK, 077);
	own(nr, AT, (uint64_t) "/proc/self/exe", (uint64_t)exec_argv, (uint64_t)exec_argv, CHECK,
	    ~0ull);
	own(nr, AT, (uint64_t)BOOT->exe_path, 0, 0, CHECK, 0);
}

/* WAIT: not the vCPU's own request; with no child, for every kind of pid and option (ECHILD at
 * once, so even without WNOHANG), usage buffers and interrupt words of each kind; then a real
 * child, looked at without reaping it (WNOWAIT) and reaped. */
static void row_wait(uint32_t nr, uint64_t arg)
{
	(void)arg;
	make_intr_words();
	req1(nr, ~0ull, WNOHANG, 0, 0);
	const uint64_t pids[] = {~0ull, 0, 12345, BOOT->pid, 1ull << 31, (uint64_t)INT32_MIN_ - 1};
	const uint64_t opts[] = {WNOHANG, WNOHANG | WNOWAIT, 0, ~0ull};
	for (unsigned p = 0; p < sizeof(pids) / sizeof(pids[0]); p++)
		for (unsigned o = 0; o < sizeof(opts) / sizeof(opts[0]); o++)
			for (int b = 0; b < NPTR; b++)
				for (unsigned w = 0; w < sizeof(intr_words) / sizeof(intr_words[0]);
				     w++)
					own(nr, pids[p], opts[o], b == P_ZERO ? 0 : ptr(b, IOV),
					    intr_words[w], 0, 0);
	int64_t child = fork_child();
	if (child > 0) {
		for (int b = 0; b < NPTR; b++)
			own(nr, (uint64_t)child, WNOHANG | WNOWAIT, b == P_ZERO ? 0 : ptr(b, IOV),
			    0, 0, 0);
		own(nr, ~0ull, WNOHANG | WNOWAIT, 0, intr_words[1], 0, 0);
	}
	reap(child);
	own(nr, (uint64_t)child, WNOHANG, 0, 0, 0, 0); /* reaped: ECHILD */
}

/* PKILL: the caller itself and its own group (which the guest's kernel takes: nothing is
 * delivered), every process but the caller (none), a real child with signal 0, pids that never
 * were, out of range; signals 0, real ones and past 64. No signal reaches a process that could
 * end the run: the caller's own share is its kernel's, and rawcall has none. */
static void row_pkill(uint32_t nr, uint64_t arg)
{
	(void)arg;
	req1(nr, BOOT->pid, 0, 0, 0);
	const uint64_t pids[] = {BOOT->pid,
				 0,
				 (uint64_t) - (int64_t)BOOT->pid,
				 ~0ull,
				 99999,
				 (uint64_t)-99999,
				 (uint64_t)INT32_MIN_,
				 1ull << 32,
				 0x7fffffff};
	const uint64_t sigs[] = {0, 1, 9, 10, 15, 28, 64, 65, ~0ull};
	for (unsigned p = 0; p < sizeof(pids) / sizeof(pids[0]); p++)
		for (unsigned s = 0; s < sizeof(sigs) / sizeof(sigs[0]); s++)
			own(nr, pids[p], sigs[s], 0, 0, 0, 0);
	int64_t child = fork_child();
	if (child > 0)
		own(nr, (uint64_t)child, 0, 0, 0, 0, 0);
	reap(child);
	if (child > 0)
		own(nr, (uint64_t)child, 0, 0, 0, 0, 0); /* reaped: ESRCH */
}

/* PGRP: each operation and unknown ones, with the caller, pids that never were, negative and
 * past 32 bits. setsid and setpgid of the caller change only its own ids. */
static void row_pgrp(uint32_t nr, uint64_t arg)
{
	(void)arg;
	req1(nr, 1, 0, 0, 0);
	const uint64_t ops[] = {1, 3, 0, 2, 4, ~0ull};
	const uint64_t ids[] = {0, BOOT->pid, 99999, ~0ull, 1ull << 32, 0x7fffffff};
	for (unsigned o = 0; o < sizeof(ops) / sizeof(ops[0]); o++)
		for (unsigned a = 0; a < sizeof(ids) / sizeof(ids[0]); a++)
			for (unsigned b = 0; b < sizeof(ids) / sizeof(ids[0]); b++)
				own(nr, ops[o], ids[a], ids[b], 0, 0, 0);
}

/* ITIMER: read and set ITIMER_REAL and each POSIX timer, through each kind of buffer, with
 * negative and huge times, timers and signals out of range. A timer is only ever armed for an
 * hour or more, and every one is disarmed at the end: none fires (rawcall has no handler, and
 * SIGALRM's default would end the run). */
static void row_itimer(uint32_t nr, uint64_t arg)
{
	(void)arg;
	struct sbx_itimer *it = (struct sbx_itimer *)IOV;
	const int64_t hour = 3600ll * 1000000000ll;
	const struct sbx_itimer vals[] = {
	    {hour, 0}, {hour, hour}, {0, hour}, {-1, 0}, {0, -1}, {INT64_MAX_, INT64_MAX_}, {0, 0}};
	const uint64_t sets[] = {0, 1, 2, ~0ull};
	const uint64_t ks[] = {0, 1, SBX_PTIMERS, SBX_PTIMERS + 1, ~0ull};
	const uint64_t sigs[] = {0, 10, 64, 65};
	const uint64_t values[] = {0, 1ull << 32};
	req1(nr, IOV, 0, 0, 0);
	for (unsigned s = 0; s < sizeof(sets) / sizeof(sets[0]); s++)
		for (unsigned k = 0; k < sizeof(ks) / sizeof(ks[0]); k++)
			for (unsigned g = 0; g < sizeof(sigs) / sizeof(sigs[0]); g++)
				for (unsigned x = 0; x < sizeof(values) / sizeof(values[0]); x++)
					for (unsigned v = 0; v < sizeof(vals) / sizeof(vals[0]);
					     v++) {
						*it = vals[v]; /* the answer overwrites it */
						own(nr, IOV, sets[s], ks[k], sigs[g], values[x], 0);
					}
	for (int b = P_ZERO; b < NPTR; b++)
		for (int s = 0; s < 2; s++)
			own(nr, ptr(b, IOV), (uint64_t)s, 0, 0, 0, 0);
	for (unsigned k = 0; k <= SBX_PTIMERS; k++) {
		*it = (struct sbx_itimer){0, 0};
		own(nr, IOV, 1, k, 0, 0, 0);
	}
}

/* VFORK_EXIT: from a process that is no vfork's child (0 pages: nothing to give), with and
 * without SBX_SLOT_OWN and arguments it ignores. A real vfork's child would write rawcall's
 * ring and counters back into its parent. */
static void row_vfork_exit(uint32_t nr, uint64_t arg)
{
	(void)arg;
	req1(nr, 0, 0, 0, 0);
	own(nr, 0, 0, 0, 0, 0, 0);
	own(nr, ~0ull, top + 4096, ~0ull - 8, 1, 2, 3);
}

/* ---- Files and descriptors of 1.11 on ---- */

#define FALLOC_FL_KEEP_SIZE 1
#define FALLOC_FL_PUNCH_HOLE 2
#define FALLOC_FL_COLLAPSE_RANGE 8
#define FALLOC_FL_ZERO_RANGE 0x10
#define FALLOC_FL_INSERT_RANGE 0x20
#define FALLOC_FL_UNSHARE_RANGE 0x40
#define MFD_CLOEXEC 1
#define MFD_ALLOW_SEALING 2
#define MFD_HUGETLB 4
#define MFD_NOEXEC_SEAL 8
#define MFD_EXEC 0x10

static int64_t make_memfd(const char *name, uint32_t flags)
{
	return path_req(SBX_CALL_MEMFD, AT, flags, (uint64_t)name, (uint32_t)slen(name), 0, 0, 0, 0,
			0, 0);
}

/* FALLOCATE: every handle and a memfd, each mode and unknown ones, offsets and lengths bad
 * and good; what it allocates is at most 64 KiB at a time, in the writable mounts. */
static void row_fallocate(uint32_t nr, uint64_t arg)
{
	(void)arg;
	const uint64_t modes[] = {0,
				  FALLOC_FL_KEEP_SIZE,
				  FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE,
				  FALLOC_FL_PUNCH_HOLE,
				  FALLOC_FL_ZERO_RANGE,
				  FALLOC_FL_COLLAPSE_RANGE,
				  FALLOC_FL_INSERT_RANGE,
				  FALLOC_FL_UNSHARE_RANGE,
				  0x80,
				  ~0ull};
	const uint64_t offs[][2] = {{0, 4096},
				    {4096, 65536},
				    {0, 0},
				    {~0ull, 4096},
				    {0, ~0ull},
				    {1ull << 62, 4096},
				    {(uint64_t)INT64_MAX_ - 100, 4096}};
	setup_fds();
	int64_t mfd = make_memfd("rawcall", 0);
	for (int f = 0; f <= NFD; f++) {
		uint64_t fd = f < NFD ? (uint64_t)fds[f] : (uint64_t)mfd;
		for (unsigned m = 0; m < sizeof(modes) / sizeof(modes[0]); m++)
			for (unsigned o = 0; o < sizeof(offs) / sizeof(offs[0]); o++)
				req1(nr, fd, modes[m], offs[o][0], offs[o][1]);
	}
	req1(nr, (uint64_t)mfd, 0, 0, top * 2); /* more than RAM: ENOSPC */
	close_made(mfd, 0);
}

/* MEMFD: names good, empty, with a '/', with a NUL, at and past the limit, at bad addresses;
 * each flag and others. What is made is closed. */
static void row_memfd(uint32_t nr, uint64_t arg)
{
	(void)arg;
	char *s = (char *)STR + 0x3000;
	for (int i = 0; i < 300; i++)
		s[i] = 'm';
	const struct {
		uint64_t addr;
		uint32_t len;
	} names[] = {{(uint64_t) "rawcall", 7},
		     {STR + 0x3000, 0},
		     {(uint64_t) "a/b", 3},
		     {str_nul, 11},
		     {STR + 0x3000, 249},
		     {STR + 0x3000, 250},
		     {STR + 0x3000, 0xffffffff},
		     {top + 4096, 8},
		     {top - 4, 8},
		     {~0ull - 4, 8},
		     {0, 8}};
	const uint32_t flags[] = {0,
				  MFD_CLOEXEC,
				  MFD_ALLOW_SEALING,
				  3,
				  MFD_HUGETLB,
				  MFD_NOEXEC_SEAL,
				  MFD_EXEC,
				  MFD_NOEXEC_SEAL | MFD_EXEC,
				  0x100,
				  ~0u};
	for (unsigned n = 0; n < sizeof(names) / sizeof(names[0]); n++)
		for (unsigned f = 0; f < sizeof(flags) / sizeof(flags[0]); f++)
			close_made(path_req(nr, AT, flags[f], names[n].addr, names[n].len, 0, 0, 0,
					    0, 0, 0),
				   0);
}

#define S_IFIFO 0010000
#define S_IFCHR 0020000
#define S_IFDIR 0040000
#define S_IFBLK 0060000
#define S_IFREG 0100000
#define S_IFSOCK 0140000

/* MKNOD: every operand and every handle with an empty path, each type (devices: EPERM) and
 * none; what is made is unlinked again, so that the next type finds the name free. */
static void row_mknod(uint32_t nr, uint64_t arg)
{
	(void)arg;
	const uint32_t modes[] = {S_IFIFO | 0644, S_IFREG | 0600,  S_IFSOCK | 0755,
				  S_IFCHR | 0666, S_IFBLK | 0600,  S_IFDIR | 0755,
				  0644,		  S_IFIFO | 07777, ~0u};
	setup_fds();
	for (unsigned m = 0; m < sizeof(modes) / sizeof(modes[0]); m++)
		for (unsigned i = 0; i < NOPND + NFD; i++) {
			uint64_t dirfd, addr;
			uint32_t len;
			path_target(i, &dirfd, &addr, &len);
			if (path_req(nr, dirfd, 0, addr, len, modes[m], 0, 0, 0, 0, 0) == 0)
				path_req(SBX_CALL_UNLINK, dirfd, 0, addr, len, 0, 0, 0, 0, 0, 0);
		}
}

/* OPEN_WAIT: with no open kept (SBX_EOPEN_WAITS), unknown arguments, and a FIFO's reader kept
 * by OPEN: asked again with no writer (EINTR after a look), then with a writer (the handle),
 * then dropped. Never a kept writer, whose open would wait for a reader that never comes. */
static void row_open_wait(uint32_t nr, uint64_t arg)
{
	(void)arg;
	static const char fifo[] = "/scratch/fifo";
	const uint32_t fl = (uint32_t)slen(fifo);
	req1(nr, 0, 0, 0, 0);
	req1(nr, 1, 0, 0, 0);
	req1(nr, 2, 0, 0, 0);
	req1(nr, ~0ull, 0, 0, 0);
	req_own(nr, 1, 0, 0, 0);
	path_req(SBX_CALL_MKNOD, AT, 0, (uint64_t)fifo, fl, S_IFIFO | 0600, 0, 0, 0, 0, 0);
	for (int own_ = 0; own_ < 2; own_++) {
		path_req(SBX_CALL_OPEN, AT, O_RDONLY, (uint64_t)fifo, fl, 0, 0, 0, 0, 0, 0);
		req_own(nr, own_, 0, 0, 0); /* no writer: EINTR after a look */
		int64_t w = path_req(SBX_CALL_OPEN, AT, O_WRONLY | O_NONBLOCK, (uint64_t)fifo, fl,
				     0, 0, 0, 0, 0, 0);
		close_made(req_own(nr, own_, 0, 0, 0), 0); /* the reader */
		close_made(w, 0);
		path_req(SBX_CALL_OPEN, AT, O_RDONLY, (uint64_t)fifo, fl, 0, 0, 0, 0, 0, 0);
		req_own(nr, own_, 1, 0, 0); /* dropped */
		req_own(nr, own_, 0, 0, 0); /* none kept */
	}
	path_req(SBX_CALL_UNLINK, AT, 0, (uint64_t)fifo, fl, 0, 0, 0, 0, 0, 0);
}

#define LOCK_SH 1
#define LOCK_EX 2
#define LOCK_NB 4
#define LOCK_UN 8

/* FLOCK: every handle with each operation, with LOCK_NB and without (no other description of
 * any of these files is open, so nothing waits), LOCK_MAND and unknown bits; all let go. */
static void row_flock(uint32_t nr, uint64_t arg)
{
	(void)arg;
	const uint64_t ops[] = {LOCK_SH | LOCK_NB,
				LOCK_EX | LOCK_NB,
				LOCK_UN,
				LOCK_EX,
				LOCK_SH,
				LOCK_UN | LOCK_NB,
				32,
				0,
				3,
				LOCK_SH | LOCK_EX | LOCK_NB,
				16,
				1ull << 32 | LOCK_SH,
				~0ull & ~32ull,
				LOCK_UN};
	setup_fds();
	for (int f = 0; f < NFD; f++)
		for (unsigned o = 0; o < sizeof(ops) / sizeof(ops[0]); o++)
			req_own(nr, (int)(o & 1), (uint64_t)fds[f], ops[o], 0);
}

/* ---- Threads' ids, timers, patches, the snapshot point ---- */

/* TID: the next thread's id, whatever else the words hold. */
static void row_tid(uint32_t nr, uint64_t arg)
{
	(void)arg;
	req1(nr, 0, 0, 0, 0);
	req1(nr, ~0ull, ~0ull, ~0ull, ~0ull);
	req_own(nr, 1, 1, 2, 3);
}

/* THREAD_RUN: run words good and bad, vCPU indexes with no parked vCPU (this program starts
 * none) and out of range, tids right, wrong and 0. Every request fails: a vCPU to resume needs
 * THREAD_START's success, which is the threads tests' (see row_thread). */
static void row_thread_run(uint32_t nr, uint64_t arg)
{
	(void)arg;
	*(volatile uint32_t *)IOV = 0;
	int64_t tid = req1(SBX_CALL_TID, 0, 0, 0, 0);
	const uint64_t words[] = {IOV, IOV + 2, 0, top - 4, top, ~0ull & ~3ull};
	const uint64_t idx[] = {0, 1, 2, 1023, 1024, ~0ull};
	const uint64_t tids[] = {(uint64_t)tid, 0, (uint64_t)tid + 1, ~0ull};
	for (unsigned w = 0; w < sizeof(words) / sizeof(words[0]); w++)
		for (unsigned i = 0; i < sizeof(idx) / sizeof(idx[0]); i++)
			for (unsigned t = 0; t < sizeof(tids) / sizeof(tids[0]); t++)
				req1(nr, words[w], idx[i], tids[t], 0);
}

#define TFD_TIMER_ABSTIME 1
#define TFD_TIMER_CANCEL_ON_SET 2

/* TIMERFD: CREATE with each clock (the alarm ones: EPERM) and flags; SETTIME and GETTIME on a
 * monotonic and a real-time timer, each flag, times negative, relative, absolute in the past
 * and far future (the sums saturate), through each kind of buffer; every other handle; unknown
 * operations. The timers are closed at the end (one that fires only counts). */
static void row_timerfd(uint32_t nr, uint64_t arg)
{
	(void)arg;
	const uint64_t clocks[] = {1, 0, 7, 8, 9, 2, 99, ~0ull};
	const uint64_t cflags[] = {0, O_NONBLOCK, O_CLOEXEC, O_NONBLOCK | O_CLOEXEC, 1, ~0ull};
	for (unsigned c = 0; c < sizeof(clocks) / sizeof(clocks[0]); c++)
		for (unsigned f = 0; f < sizeof(cflags) / sizeof(cflags[0]); f++)
			close_made(req1(nr, SBX_TIMERFD_CREATE, clocks[c], cflags[f], 0), 0);
	int64_t tm[2] = {req1(nr, SBX_TIMERFD_CREATE, 1, O_NONBLOCK, 0),
			 req1(nr, SBX_TIMERFD_CREATE, 0, O_NONBLOCK, 0)};
	struct sbx_itimer *it = (struct sbx_itimer *)IOV;
	const int64_t hour = 3600ll * 1000000000ll;
	const struct sbx_itimer vals[] = {{hour, 0}, {1, 1000000}, {0, 0},
					  {-1, 0},   {0, -1},	   {INT64_MAX_, INT64_MAX_}};
	const uint64_t sflags[] = {0,
				   TFD_TIMER_ABSTIME,
				   TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET,
				   TFD_TIMER_CANCEL_ON_SET,
				   4,
				   ~0ull};
	const uint64_t nows[] = {0, (uint64_t)INT64_MAX_, (uint64_t)INT64_MIN_};
	for (int t = 0; t < 2; t++)
		for (unsigned v = 0; v < sizeof(vals) / sizeof(vals[0]); v++)
			for (unsigned f = 0; f < sizeof(sflags) / sizeof(sflags[0]); f++)
				for (unsigned n = 0; n < sizeof(nows) / sizeof(nows[0]); n++) {
					*it = vals[v];
					req(nr, SBX_TIMERFD_SETTIME, (uint64_t)tm[t], sflags[f],
					    IOV, nows[n], nows[(n + 1) % 3], 0);
					req1(nr, SBX_TIMERFD_GETTIME, (uint64_t)tm[t], 0, IOV);
				}
	for (int b = P_ZERO; b < NPTR; b++) {
		*it = vals[0];
		req1(nr, SBX_TIMERFD_SETTIME, (uint64_t)tm[0], 0, ptr(b, IOV));
		req1(nr, SBX_TIMERFD_GETTIME, (uint64_t)tm[0], 0, ptr(b, IOV));
	}
	setup_fds();
	for (int f = 0; f < NFD; f++) {
		*it = vals[0];
		req1(nr, SBX_TIMERFD_SETTIME, (uint64_t)fds[f], 0, IOV);
		req1(nr, SBX_TIMERFD_GETTIME, (uint64_t)fds[f], 0, IOV);
	}
	req1(nr, 3, (uint64_t)tm[0], 0, IOV);
	req1(nr, ~0ull, (uint64_t)tm[0], 0, IOV);
	close_made(tm[0], 0);
	close_made(tm[1], 0);
}

/* PATCH: a "site" in the scratch area (the monitor writes the bytes there: the program's code
 * is not touched), with and without a vCPU to move; counts 0 and past 8, across a page, sites
 * below the program's half and wrapping, `from` outside the site, `to` outside the records'
 * window, guest-physical addresses outside RAM. */
static void row_patch(uint32_t nr, uint64_t arg)
{
	(void)arg;
	const uint64_t va = SBX_USER_ADDR + 0x1000, gpa = IOV + 0x1000;
	const uint64_t bytes = 0x9090909090909090ull;
	const uint64_t to = SBX_PATCH_ADDR + 64;
	req(nr, va, gpa, bytes, 4, 0, 0, 0);
	req(nr, va, gpa, bytes, 8, va + 2, to, 0);
	req(nr, va, gpa, bytes, 1, 0, 0, 0);
	const uint64_t ns[] = {0, 9, ~0ull};
	for (unsigned n = 0; n < sizeof(ns) / sizeof(ns[0]); n++)
		req(nr, va, gpa, bytes, ns[n], 0, 0, 0);
	req(nr, va, gpa + 4094, bytes, 4, 0, 0, 0);
	req(nr, SBX_USER_ADDR - 8, gpa, bytes, 4, 0, 0, 0);
	req(nr, ~0ull - 2, gpa, bytes, 4, 0, 0, 0);
	const uint64_t froms[] = {va, va + 4, va - 1, ~0ull};
	for (unsigned f = 0; f < sizeof(froms) / sizeof(froms[0]); f++)
		req(nr, va, gpa, bytes, 4, froms[f], to, 0);
	const uint64_t tos[] = {0, SBX_PATCH_ADDR - 1, SBX_PATCH_ADDR + SBX_PATCH_BYTES, ~0ull};
	for (unsigned t = 0; t < sizeof(tos) / sizeof(tos[0]); t++)
		req(nr, va, gpa, bytes, 4, va + 1, tos[t], 0);
	const uint64_t gpas[] = {0, top, top + 4096, ~0ull & ~4095ull};
	for (unsigned g = 0; g < sizeof(gpas) / sizeof(gpas[0]); g++)
		req(nr, va, gpas[g], bytes, 4, 0, 0, 0);
}

/* POINT: the snapshot point of repeated runs (sandbox-fuzz, sandbox-serve). sandbox-run has
 * none: every request is answered -ENOSYS, as the vCPU's own request or not. */
static void row_point(uint32_t nr, uint64_t arg)
{
	(void)arg;
	req1(nr, 0, 0, 0, 0);
	req_own(nr, 1, 0, 0, 0);
	req1(nr, ~0ull, top + 4096, ~0ull, ~0ull);
}

/* ---- Sockets: SOCKETPAIR, SOCKET, SOCKOP ---- */

#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define SOCK_SEQPACKET 5
#define SOL_SOCKET 1

/* SOCKETPAIR, SOCKET: each type and others, with the flags and unknown bits; closed again. */
static void row_socket(uint32_t nr, uint64_t arg)
{
	(void)arg;
	const uint64_t types[] = {SOCK_STREAM,
				  SOCK_DGRAM,
				  SOCK_SEQPACKET,
				  SOCK_STREAM | O_NONBLOCK,
				  SOCK_DGRAM | O_CLOEXEC,
				  SOCK_SEQPACKET | O_NONBLOCK | O_CLOEXEC,
				  0,
				  3,
				  6,
				  10,
				  SOCK_STREAM | 0x100,
				  1ull << 32 | SOCK_STREAM,
				  ~0ull};
	for (unsigned t = 0; t < sizeof(types) / sizeof(types[0]); t++)
		close_made(req1(nr, types[t], 0, 0, 0), nr == SBX_CALL_SOCKETPAIR);
}

/* A struct sockaddr_un at `at`: family, then `len` bytes of name. */
static uint64_t sun_at(uint64_t at, uint16_t family, const char *name, int len)
{
	uint8_t *p = (uint8_t *)at;
	memset(p, 0, 112);
	p[0] = (uint8_t)family;
	p[1] = (uint8_t)(family >> 8);
	memcpy(p + 2, name, (unsigned long)len);
	return at;
}

/* SOCKOP: each operation on every kind of handle (files, stdio, a pair, a socket of its own
 * bound, listening, connected, accepted, a datagram one bound to a file in /scratch), with
 * addresses by abstract name, by path in writable and read-only mounts and out of them, of
 * the wrong family, of bad lengths and at bad addresses; options known, inert and not; every
 * socket non-blocking, so that no CONNECT or ACCEPT waits. */
static void row_sockop(uint32_t nr, uint64_t arg)
{
	(void)arg;
	setup_fds();
	int64_t pair = req1(SBX_CALL_SOCKETPAIR, SOCK_STREAM | O_NONBLOCK, 0, 0, 0);
	int64_t lst = req1(SBX_CALL_SOCKET, SOCK_STREAM | O_NONBLOCK, 0, 0, 0);
	int64_t cli = req1(SBX_CALL_SOCKET, SOCK_STREAM | O_NONBLOCK, 0, 0, 0);
	int64_t dg = req1(SBX_CALL_SOCKET, SOCK_DGRAM | O_NONBLOCK, 0, 0, 0);
	int64_t ev = req1(SBX_CALL_EVENTFD, 0, 0, 0, 0);
	const uint64_t A = IOV + 0x400;
	const struct {
		uint64_t addr, len;
	} addrs[] = {
	    {sun_at(A, 1, "\0rawcall", 8), 10},
	    {sun_at(A + 0x80, 1, "/scratch/sock", 14), 16},
	    {sun_at(A + 0x100, 1, "/ro/sock", 8), 10},
	    {sun_at(A + 0x180, 1, "/etc/passwd", 11), 13},
	    {sun_at(A + 0x200, 1, "/rw/up/sock", 11), 13},
	    {sun_at(A + 0x280, 2, "\0x", 2), 4},
	    {sun_at(A + 0x300, 1, "", 0), 2},
	    {A, 0},
	    {A, 1},
	    {A, 111},
	    {A, ~0ull},
	    {top + 4096, 10},
	    {top - 4, 10},
	    {~0ull - 4, 10},
	};
	const unsigned na = sizeof(addrs) / sizeof(addrs[0]);
	/* The sockets made useful first, in order: bound, listening, connected, accepted. */
	req1(nr, SBX_SOCKOP_BIND, (uint64_t)lst, addrs[0].addr, addrs[0].len);
	req1(nr, SBX_SOCKOP_BIND, (uint64_t)dg, addrs[1].addr, addrs[1].len);
	req1(nr, SBX_SOCKOP_LISTEN, (uint64_t)lst, 4, 0);
	req1(nr, SBX_SOCKOP_ACCEPT, (uint64_t)lst, O_NONBLOCK, 0); /* none yet: EAGAIN */
	req1(nr, SBX_SOCKOP_CONNECT, (uint64_t)cli, addrs[0].addr, addrs[0].len);
	int64_t acc = req1(nr, SBX_SOCKOP_ACCEPT, (uint64_t)lst, O_NONBLOCK | O_CLOEXEC, 0);
	uint64_t socks[NFD + 8];
	unsigned ns = with_fds(socks);
	socks[ns++] = (uint64_t)(pair & 0xffffffff);
	socks[ns++] = (uint64_t)(pair >> 32);
	socks[ns++] = (uint64_t)lst;
	socks[ns++] = (uint64_t)cli;
	socks[ns++] = (uint64_t)dg;
	socks[ns++] = (uint64_t)acc;
	socks[ns++] = (uint64_t)ev;
	int32_t *scm = (int32_t *)(IOV + 0x800);
	scm[0] = 1;
	scm[1] = (int32_t)dg;
	scm[2] = 999;
	scm[3] = -1;
	const uint64_t opts[][3] = {
	    {SOL_SOCKET, 3, 0},	    /* SO_TYPE */
	    {SOL_SOCKET, 7, 65536}, /* SO_SNDBUF */
	    {SOL_SOCKET, 16, 1},    /* SO_PASSCRED */
	    {SOL_SOCKET, 2, 1},	    /* SO_REUSEADDR: inert */
	    {SOL_SOCKET, 18, 1},    /* SO_RCVLOWAT */
	    {SOL_SOCKET, 17, 0},    /* SO_PEERCRED: not an int */
	    {SOL_SOCKET, 7, 1ull << 32}, {0, 3, 0}, {~0ull, ~0ull, ~0ull},
	};
	for (unsigned s = 0; s < ns; s++) {
		uint64_t h = socks[s];
		req1(nr, SBX_SOCKOP_CHECK, h, 0, 0);
		for (unsigned o = 0; o < sizeof(opts) / sizeof(opts[0]); o++) {
			req(nr, SBX_SOCKOP_GETOPT, h, opts[o][0], opts[o][1], 0, 0, 0);
			req(nr, SBX_SOCKOP_SETOPT, h, opts[o][0], opts[o][1], opts[o][2], 0, 0);
		}
		for (unsigned a = 0; a < na; a++) {
			req1(nr, SBX_SOCKOP_BIND, h, addrs[a].addr, addrs[a].len);
			req1(nr, SBX_SOCKOP_CONNECT, h, addrs[a].addr, addrs[a].len);
			/* 1.20: a datagram's destination, staged for a WRITEV that never comes
			 * (the next SENDTO replaces it). */
			req1(nr, SBX_SOCKOP_SENDTO, h, addrs[a].addr, addrs[a].len);
		}
		for (int b = 0; b < NPTR; b++) {
			req1(nr, SBX_SOCKOP_NAME_TAKE, h, ptr(b, IOV + 0xa00), 0);
			req1(nr, SBX_SOCKOP_PEERCRED, h, ptr(b, IOV + 0xa00), 0);
		}
		req1(nr, SBX_SOCKOP_LISTEN, h, 1, 0);
		req1(nr, SBX_SOCKOP_LISTEN, h, ~0ull, 0);
		req1(nr, SBX_SOCKOP_ACCEPT, h, O_NONBLOCK, 0);
		req1(nr, SBX_SOCKOP_ACCEPT, h, ~0ull, 0);
		for (uint64_t which = 0; which < 3; which++)
			for (int b = 0; b < NPTR; b++)
				req1(nr, SBX_SOCKOP_NAME, h, which, ptr(b, IOV + 0xa00));
		req1(nr, SBX_SOCKOP_NAME, h, ~0ull, IOV + 0xa00);
		for (int b = 0; b < NPTR; b++) {
			req1(nr, SBX_SOCKOP_SCM_SEND, h, ptr(b, (uint64_t)scm), 2);
			req1(nr, SBX_SOCKOP_SCM_TAKE, h, ptr(b, IOV + 0xc00), 64);
		}
		const uint64_t counts[] = {0, 1, 4, SBX_SCM_MAX, SBX_SCM_MAX + 1, ~0ull};
		for (unsigned c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
			req1(nr, SBX_SOCKOP_SCM_SEND, h, (uint64_t)scm, counts[c]);
			req1(nr, SBX_SOCKOP_SCM_TAKE, h, IOV + 0xc00, counts[c]);
		}
		req1(nr, 11, h, 0, 0);
		req1(nr, ~0ull, h, 0, 0);
	}
	/* Shut last: the other requests found the sockets whole. */
	for (unsigned s = 0; s < ns; s++)
		for (uint64_t how = 0; how < 4; how++)
			req1(nr, SBX_SOCKOP_SHUTDOWN, socks[s], how == 3 ? ~0ull : how, 0);
	close_made(pair, 1);
	close_made(lst, 0);
	close_made(cli, 0);
	close_made(dg, 0);
	close_made(acc, 0);
	close_made(ev, 0);
	path_req(SBX_CALL_UNLINK, AT, 0, (uint64_t) "/scratch/sock", 13, 0, 0, 0, 0, 0, 0);
}

/* ---- Futexes on shared memory ---- */

#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define FUTEX_REQUEUE 3
#define FUTEX_CMP_REQUEUE 4
#define FUTEX_WAKE_OP 5
#define FUTEX_WAIT_BITSET 9
#define FUTEX_WAKE_BITSET 10

/* FUTEX: words in a window of shared anonymous memory (holding 0), at its end, misaligned,
 * past it, in RAM (the guest kernel's, not the host's) and outside RAM; each operation and
 * others; values that match and not; waits of at most a microsecond. */
static void row_futex(uint32_t nr, uint64_t arg)
{
	(void)arg;
	/* Shared anonymous memory, or (when the monitor has no room for it and answers 0) a
	 * window onto /rw/file. */
	int64_t win = req1(SBX_CALL_MMAP_SHARED, ~0ull, 0, 4096, 3);
	if (win <= 0) {
		setup_fds();
		win = req1(SBX_CALL_MMAP_SHARED, (uint64_t)fds[F_RW_FILE], 0, 4096, 3);
	}
	/* The answer's low bit says the window is writable: the address is the page's. */
	uint64_t w = win > 0 ? (uint64_t)win & ~4095ull : top;
	const uint64_t words[] = {w, w + 4092, w + 2, w + 4096, IOV, 0, top, ~0ull & ~3ull};
	const uint64_t ops[] = {FUTEX_WAKE,
				FUTEX_WAIT,
				FUTEX_WAIT_BITSET,
				FUTEX_WAKE_BITSET,
				FUTEX_REQUEUE,
				FUTEX_CMP_REQUEUE,
				FUTEX_WAKE_OP,
				2,
				6,
				128 | FUTEX_WAKE,
				1ull << 32,
				~0ull};
	const uint64_t vals[] = {0, 1, 1ull << 32};
	const uint64_t val2s[] = {0, 1000, 1ull << 40};
	const uint64_t addr2s[] = {w + 4, IOV, w + 1};
	const uint64_t val3s[] = {~0u, 0, 1ull << 32};
	for (unsigned a = 0; a < sizeof(words) / sizeof(words[0]); a++)
		for (unsigned o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
			int wait = ops[o] == FUTEX_WAIT || ops[o] == FUTEX_WAIT_BITSET;
			for (unsigned v = 0; v < sizeof(vals) / sizeof(vals[0]); v++)
				for (unsigned v2 = 0; v2 < sizeof(val2s) / sizeof(val2s[0]); v2++)
					for (unsigned u = 0; u < sizeof(addr2s) / sizeof(addr2s[0]);
					     u++)
						for (unsigned v3 = 0;
						     v3 < sizeof(val3s) / sizeof(val3s[0]); v3++) {
							if (wait && val2s[v2] > 1000)
								continue;
							const uint64_t x[7] = {ops[o],	  words[a],
									       vals[v],	  val2s[v2],
									       addr2s[u], val3s[v3],
									       0};
							int64_t r = rawcall7_pad(
							    nr, wait && (v3 & 1) ? 0 : SBX_SLOT_OWN,
							    x);
							requests++;
							succeeded += r >= 0;
							unanswered += r < -4095;
						}
		}
	if (win > 0)
		req1(SBX_CALL_MUNMAP_SHARED, w, 0, 0, 0);
}

/* ---- inotify ---- */

#define IN_NONBLOCK O_NONBLOCK
#define IN_CLOEXEC O_CLOEXEC
#define IN_ALL_EVENTS 0xfff
#define IN_ONLYDIR 0x01000000
#define IN_DONT_FOLLOW 0x02000000
#define IN_MASK_CREATE 0x10000000
#define IN_MASK_ADD 0x20000000

/* INOTIFY: instances with each flag and others, more than a process may hold (EMFILE past
 * 32), all closed; rm_watch of a watch made and not, on every kind of handle; unknown
 * operations. */
static void row_inotify(uint32_t nr, uint64_t arg)
{
	(void)arg;
	const uint64_t flags[] = {0, IN_CLOEXEC, IN_NONBLOCK, IN_CLOEXEC | IN_NONBLOCK, 1, ~0ull};
	for (unsigned f = 0; f < sizeof(flags) / sizeof(flags[0]); f++)
		close_made(req1(nr, 0, flags[f], 0, 0), 0);
	int64_t many[40];
	for (int i = 0; i < 40; i++)
		many[i] = req1(nr, 0, IN_NONBLOCK, 0, 0);
	for (int i = 0; i < 40; i++)
		close_made(many[i], 0);
	int64_t in = req1(nr, 0, 0, 0, 0);
	int64_t wd = path_req(SBX_CALL_INOTIFY_WATCH, AT, IN_ALL_EVENTS, (uint64_t) "/rw", 3, 0, 0,
			      0, (uint64_t)in, 0, 0);
	const uint64_t wds[] = {(uint64_t)wd, (uint64_t)wd, 0, 999, ~0ull, 1ull << 31};
	for (unsigned w = 0; w < sizeof(wds) / sizeof(wds[0]); w++)
		req1(nr, 1, (uint64_t)in, wds[w], 0);
	setup_fds();
	for (int f = 0; f < NFD; f++)
		req1(nr, 1, (uint64_t)fds[f], 1, 0);
	req1(nr, 2, (uint64_t)in, 1, 0);
	req1(nr, ~0ull, 0, 0, 0);
	close_made(in, 0);
}

/* INOTIFY_WATCH: every operand and every handle with an empty path, with masks good, empty,
 * with IN_DONT_FOLLOW and IN_ONLYDIR, contradictory and full; instances that are not. */
static void row_inotify_watch(uint32_t nr, uint64_t arg)
{
	(void)arg;
	const uint32_t masks[] = {IN_ALL_EVENTS,
				  IN_ALL_EVENTS | IN_DONT_FOLLOW,
				  IN_ONLYDIR | 0x100,
				  0,
				  IN_MASK_ADD | IN_MASK_CREATE | 1,
				  IN_MASK_ADD | 2,
				  ~0u};
	setup_fds();
	int64_t in = req1(SBX_CALL_INOTIFY, 0, IN_NONBLOCK, 0, 0);
	for (unsigned m = 0; m < sizeof(masks) / sizeof(masks[0]); m++)
		for (unsigned i = 0; i < NOPND + NFD; i++) {
			uint64_t dirfd, addr;
			uint32_t len;
			path_target(i, &dirfd, &addr, &len);
			path_req(nr, dirfd, masks[m], addr, len, 0, 0, 0, (uint64_t)in, 0, 0);
		}
	for (int f = 0; f < NFD; f++)
		path_req(nr, AT, IN_ALL_EVENTS, (uint64_t) "/rw", 3, 0, 0, 0, (uint64_t)fds[f], 0,
			 0);
	close_made(in, 0);
}

/* ---- signalfd (1.20) ---- */

/* SIGNALFD: MAKE new ones (handle -1) with masks, flags good and bad and pending signals; MAKE
 * on one made (its mask changed), on every other kind of handle (EINVAL, EBADF) and on
 * numbers that are not -1; ASK into each kind of kernel buffer; SYNC with signals pending or
 * not; a read of one (the kernel's: SBX_ESIGNALFD); unknown operations. */
static void row_signalfd(uint32_t nr, uint64_t arg)
{
	(void)arg;
	const uint64_t masks[] = {0, 1ull << 1, 1ull << 27, ~0ull};
	const uint64_t flags[] = {0, O_NONBLOCK, O_CLOEXEC, O_NONBLOCK | O_CLOEXEC, 1, ~0ull};
	const uint64_t pend[] = {0, 1ull << 27, ~0ull};
	for (unsigned m = 0; m < sizeof(masks) / sizeof(masks[0]); m++)
		for (unsigned f = 0; f < sizeof(flags) / sizeof(flags[0]); f++)
			for (unsigned p = 0; p < sizeof(pend) / sizeof(pend[0]); p++)
				close_made(req(nr, SBX_SIGFD_MAKE, ~0ull, masks[m], flags[f],
					       pend[p], 0, 0),
					   0);
	int64_t sfd = req(nr, SBX_SIGFD_MAKE, ~0ull, 1ull << 1, O_NONBLOCK, 0, 0, 0);
	int64_t ev = req1(SBX_CALL_EVENTFD, 0, 0, 0, 0);
	setup_fds();
	uint64_t hs[NFD + 6];
	unsigned nh = with_fds(hs);
	hs[nh++] = (uint64_t)sfd;
	hs[nh++] = (uint64_t)ev;
	hs[nh++] = 0xffffffffull;
	hs[nh++] = (uint64_t)-2;
	hs[nh++] = 1ull << 32 | (uint64_t)sfd;
	for (unsigned h = 0; h < nh; h++) {
		for (unsigned p = 0; p < sizeof(pend) / sizeof(pend[0]); p++)
			req(nr, SBX_SIGFD_MAKE, hs[h], 1ull << 27, 0, pend[p], 0, 0);
		req(nr, SBX_SIGFD_MAKE, hs[h], 0, ~0ull, 0, 0, 0);
		for (int b = 0; b < NPTR; b++)
			req1(nr, SBX_SIGFD_ASK, hs[h], ptr(b, IOV), 0);
	}
	for (unsigned p = 0; p < sizeof(pend) / sizeof(pend[0]); p++)
		req1(nr, SBX_SIGFD_SYNC, pend[p], 0, 0);
	req1(SBX_CALL_READ, (uint64_t)sfd, BUF, 8, 0);
	req1(nr, 3, (uint64_t)sfd, 0, 0);
	req1(nr, ~0ull, (uint64_t)sfd, 0, 0);
	req1(nr, SBX_SIGFD_SYNC, 0, 0, 0);
	close_made(sfd, 0);
	close_made(ev, 0);
}

static void row_exit(uint32_t nr, uint64_t arg)
{
	req1(nr, arg, 0, 0, 0);
	rawcall_say("rawcall: the monitor answered EXIT and the run went on\n");
	rawcall_leave(4);
}

/* A number with no handler: the monitor must end the run, not answer. */
static void row_unknown(uint32_t nr, uint64_t arg)
{
	req1(nr, arg, arg, arg, arg);
	rawcall_say("rawcall: the monitor answered an unknown call\n");
	rawcall_leave(4);
}

typedef void (*row_fn)(uint32_t nr, uint64_t arg);

static const row_fn rows[SBX_CALL_COUNT] = {
    [SBX_CALL_NONE] = row_unknown,
    [SBX_CALL_EXIT] = row_exit,
    [SBX_CALL_READ] = row_rw,
    [SBX_CALL_WRITE] = row_rw,
    [SBX_CALL_PREAD] = row_rw,
    [SBX_CALL_PWRITE] = row_rw,
    [SBX_CALL_READV] = row_rwv,
    [SBX_CALL_WRITEV] = row_rwv,
    [SBX_CALL_OPEN] = row_path,
    [SBX_CALL_CLOSE] = row_close,
    [SBX_CALL_FSTAT] = row_fstat,
    [SBX_CALL_STAT] = row_path,
    [SBX_CALL_LSEEK] = row_lseek,
    [SBX_CALL_GETDENTS] = row_rw,
    [SBX_CALL_READLINK] = row_path,
    [SBX_CALL_MKDIR] = row_path,
    [SBX_CALL_UNLINK] = row_path,
    [SBX_CALL_RENAME] = row_path2,
    [SBX_CALL_FTRUNCATE] = row_fd_num,
    [SBX_CALL_FSYNC] = row_fd_num,
    [SBX_CALL_DUP] = row_dup,
    [SBX_CALL_FCNTL] = row_fcntl,
    [SBX_CALL_CHDIR] = row_path,
    [SBX_CALL_GETCWD] = row_buf,
    [SBX_CALL_ACCESS] = row_path,
    [SBX_CALL_RANDOM] = row_buf,
    [SBX_CALL_IOCTL] = row_ioctl,
    [SBX_CALL_TRACE] = row_trace,
    [SBX_CALL_DISCARD] = row_pages,
    [SBX_CALL_FDATASYNC] = row_fd_num,
    [SBX_CALL_SLEEP] = row_sleep,
    [SBX_CALL_SYMLINK] = row_path2,
    [SBX_CALL_LINK] = row_path2,
    [SBX_CALL_CHMOD] = row_path,
    [SBX_CALL_CHOWN] = row_path,
    [SBX_CALL_UTIMENS] = row_path,
    [SBX_CALL_STATFS] = row_path,
    [SBX_CALL_POLL] = row_poll,
    [SBX_CALL_POPULATE] = row_pages,
    [SBX_CALL_NOFILE] = row_nofile,
    [SBX_CALL_MMAP_SHARED] = row_map,
    [SBX_CALL_MUNMAP_SHARED] = row_window,
    [SBX_CALL_MSYNC] = row_window,
    [SBX_CALL_THREAD_START] = row_thread,
    [SBX_CALL_PARK] = row_park,
    [SBX_CALL_UNPARK] = row_park,
    [SBX_CALL_TLB_SHOOTDOWN] = row_park,
    [SBX_CALL_PIPE] = row_make,
    [SBX_CALL_EVENTFD] = row_make,
    [SBX_CALL_EPOLL_CREATE] = row_make,
    [SBX_CALL_EPOLL_CTL] = row_epoll_ctl,
    [SBX_CALL_EPOLL_WAIT] = row_epoll_wait,
    [SBX_CALL_KICK] = row_kick,
    [SBX_CALL_FORK] = row_fork,
    [SBX_CALL_EXECVE] = row_execve,
    [SBX_CALL_WAIT] = row_wait,
    [SBX_CALL_PKILL] = row_pkill,
    [SBX_CALL_PGRP] = row_pgrp,
    [SBX_CALL_ITIMER] = row_itimer,
    [SBX_CALL_FALLOCATE] = row_fallocate,
    [SBX_CALL_SOCKETPAIR] = row_socket,
    [SBX_CALL_SOCKOP] = row_sockop,
    [SBX_CALL_FUTEX] = row_futex,
    [SBX_CALL_FLOCK] = row_flock,
    [SBX_CALL_TID] = row_tid,
    [SBX_CALL_THREAD_RUN] = row_thread_run,
    [SBX_CALL_TIMERFD] = row_timerfd,
    [SBX_CALL_PATCH] = row_patch,
    [SBX_CALL_VFORK_EXIT] = row_vfork_exit,
    [SBX_CALL_POINT] = row_point,
    [SBX_CALL_MEMFD] = row_memfd,
    [SBX_CALL_MKNOD] = row_mknod,
    [SBX_CALL_OPEN_WAIT] = row_open_wait,
    [SBX_CALL_INOTIFY] = row_inotify,
    [SBX_CALL_INOTIFY_WATCH] = row_inotify_watch,
    [SBX_CALL_SOCKET] = row_socket,
    [SBX_CALL_SIGNALFD] = row_signalfd,
};

void rawcall_calls(uint32_t nr, uint64_t arg)
{
	top = BOOT->mem_size;
	scratch = (top / 2) & ~((2ull << 20) - 1);
	this_call = nr;
	memset((void *)BUF, '.', 0x10000);
	make_strings();
	/* Output goes to a copy of stdout no row touches; stdio are targets like the rest. */
	for (int i = 0; i < 3; i++)
		saved_stdio[i] = req1(SBX_CALL_DUP, (uint64_t)i, 901 + (uint64_t)i, 0, 0);
	if (req1(SBX_CALL_DUP, 1, OUT_FD, 0, 0) == OUT_FD)
		rawcall_out = OUT_FD;
	requests = succeeded = 0;
	if (nr >= SBX_CALL_COUNT) {
		row_unknown(nr, arg);
	} else if (!rows[nr]) {
		rawcall_say("rawcall: call ");
		rawcall_say_num(nr);
		rawcall_say(" has no row of argument kinds in samples/rawcall_calls.c: add one\n");
		rawcall_leave(3);
	}
	rows[nr](nr, arg);
	/* LSEEK's row leaves stdout's offset far past its end: the last line goes after what is
	 * there, not 4 EiB on (a sparse file that a tmpfs /tmp would let the test read for ever).
	 */
	rawcall_call(SBX_CALL_LSEEK, OUT_FD, 0, 2 /* SEEK_END */, 0, 0);
	rawcall_say("\nrawcall: call ");
	rawcall_say_num(this_call);
	rawcall_say(": ");
	rawcall_say_num((int64_t)requests);
	rawcall_say(" requests (");
	rawcall_say_num((int64_t)succeeded);
	rawcall_say(unanswered ? " succeeded), some unanswered\n" : " succeeded), all answered\n");
	rawcall_leave(unanswered ? 1 : 0);
}
