/* The virtual /dev and /proc/self every program sees unless the policy says "dev": false
 * (--no-dev): the monitor answers them itself, never from the host's /dev or /proc (whose
 * /proc/self is the monitor's own). A mount the user gives at or under /dev or /proc wins: a
 * virtual node exists only where the policy has nothing (a virtual directory of the policy,
 * such as /dev above a --tmp /dev/shm, lists both).
 *
 *   /dev/null zero full random urandom   character devices, as Linux's (1,3 1,5 1,7 1,8 1,9)
 *   /dev/stdin stdout stderr             links to /proc/self/fd/0..2
 *   /dev/fd                              a link to /proc/self/fd
 *   /proc/self                           a link to /proc/1 (the guest's pid)
 *   /proc/1/exe                          a link to the program's guest path
 *   /proc/1/cmdline environ status maps  files, generated at each read
 *   /proc/1/fd/N                         the guest's handle N: opening it gives a new handle
 *                                        to the same file (Linux's "magic" links)
 *
 * The files are generated anew at each read from the position the handle keeps, as Linux's
 * seq files are, so a handle holds no buffer and snapshots need only its path and position. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "calls.h"

#define VFS_PID 1		/* the guest's pid, as the boot page gives it */
#define VFS_DEV 0x5344		/* st_dev of the virtual nodes ("SD") */
#define VFS_MAX_TEXT (1u << 20) /* a generated file is cut here (4096 mappings fit) */
#define VFS_ARGS_MAX (128u << 10)

int sbx_vfs_enabled(const struct sbx_vm *vm)
{
	return vm->cfg.policy && !vm->cfg.policy->no_dev;
}

static const struct {
	const char *name;
	int type;
	unsigned minor;
} devs[] = {
    {"null", SBX_V_NULL, 3},	 {"zero", SBX_V_ZERO, 5},	{"full", SBX_V_FULL, 7},
    {"random", SBX_V_RANDOM, 8}, {"urandom", SBX_V_URANDOM, 9},
};
static const char *const std_names[] = {"stdin", "stdout", "stderr"};
static const struct {
	const char *name;
	int type;
} pid_entries[] = {
    {"cmdline", SBX_V_CMDLINE}, {"environ", SBX_V_ENVIRON}, {"exe", SBX_V_LNK_EXE},
    {"fd", SBX_V_DIR_FD},	{"maps", SBX_V_MAPS},	    {"status", SBX_V_STATUS},
};

/* The next component of *p (advanced past it and its slash): its length, 0 at the end. */
static size_t component(const char **p, const char **c)
{
	while (**p == '/')
		(*p)++;
	*c = *p;
	while (**p && **p != '/')
		(*p)++;
	return (size_t)(*p - *c);
}

static int is(const char *c, size_t n, const char *name)
{
	return strlen(name) == n && memcmp(c, name, n) == 0;
}

/* A decimal fd number of an open handle (no sign, no leading zero), or -1. */
static int fd_number(struct sbx_vm *vm, const char *c, size_t n)
{
	if (n == 0 || n > 4 || (n > 1 && c[0] == '0'))
		return -1;
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (c[i] < '0' || c[i] > '9')
			return -1;
		v = v * 10 + (c[i] - '0');
	}
	return sbx_fd_get(vm, v) ? v : -1;
}

/* The path ended at this node (a directory, or a link it may continue through). */
static int at_node(struct sbx_vnode *vn, int type)
{
	vn->type = type;
	return 0;
}

/* A node that is no directory: the path must end at it. */
static int leaf(const char *p, struct sbx_vnode *vn, int type, int num)
{
	const char *rest;
	if (component(&p, &rest))
		return -ENOTDIR;
	*vn = (struct sbx_vnode){type, num};
	return 0;
}

/* /proc/self/fd/... and /proc/1/fd/... after "fd". */
static int lookup_fd(struct sbx_vm *vm, const char *p, struct sbx_vnode *vn)
{
	const char *c;
	size_t n = component(&p, &c);
	if (n == 0)
		return at_node(vn, SBX_V_DIR_FD);
	int fd = fd_number(vm, c, n);
	if (fd < 0)
		return -ENOENT;
	return leaf(p, vn, SBX_V_LNK_FD, fd); /* a magic link names a file, not a directory */
}

/* /proc/1/... after the pid. */
static int lookup_pid(struct sbx_vm *vm, const char *p, struct sbx_vnode *vn)
{
	const char *c;
	size_t n = component(&p, &c);
	if (n == 0)
		return at_node(vn, SBX_V_DIR_PID);
	for (size_t i = 0; i < sizeof(pid_entries) / sizeof(pid_entries[0]); i++) {
		if (!is(c, n, pid_entries[i].name))
			continue;
		if (pid_entries[i].type == SBX_V_DIR_FD)
			return lookup_fd(vm, p, vn);
		return leaf(p, vn, pid_entries[i].type, -1);
	}
	return -ENOENT;
}

int sbx_vfs_lookup(struct sbx_vm *vm, const char *gpath, struct sbx_vnode *vn)
{
	*vn = (struct sbx_vnode){SBX_V_NONE, -1};
	if (!sbx_vfs_enabled(vm))
		return -ENOENT;
	const char *p = gpath, *c;
	size_t n = component(&p, &c);
	if (is(c, n, "dev")) {
		n = component(&p, &c);
		if (n == 0)
			return at_node(vn, SBX_V_DIR_DEV);
		if (is(c, n, "fd")) {
			if (*p == 0 || strspn(p, "/") == strlen(p))
				return at_node(vn, SBX_V_LNK_DEVFD);
			return lookup_fd(vm, p, vn);
		}
		for (int i = 0; i < 3; i++)
			if (is(c, n, std_names[i]))
				return leaf(p, vn, SBX_V_LNK_STD, i);
		for (size_t i = 0; i < sizeof(devs) / sizeof(devs[0]); i++)
			if (is(c, n, devs[i].name))
				return leaf(p, vn, devs[i].type, -1);
		return -ENOENT;
	}
	if (is(c, n, "proc")) {
		n = component(&p, &c);
		if (n == 0)
			return at_node(vn, SBX_V_DIR_PROC);
		if (is(c, n, "self")) {
			if (strspn(p, "/") == strlen(p))
				return at_node(vn, SBX_V_LNK_SELF);
			return lookup_pid(vm, p, vn);
		}
		if (is(c, n, "1"))
			return lookup_pid(vm, p, vn);
		return -ENOENT;
	}
	return -ENOENT;
}

void sbx_vfs_follow(struct sbx_vnode *vn)
{
	switch (vn->type) {
	case SBX_V_LNK_STD:
		vn->type = SBX_V_LNK_FD; /* num is the fd already */
		break;
	case SBX_V_LNK_DEVFD:
		vn->type = SBX_V_DIR_FD;
		break;
	case SBX_V_LNK_SELF:
		vn->type = SBX_V_DIR_PID;
		break;
	}
}

int sbx_vfs_is_dir(int type)
{
	return type >= SBX_V_DIR_DEV && type <= SBX_V_DIR_FD;
}

int sbx_vfs_is_file(int type)
{
	return type >= SBX_V_NULL && type <= SBX_V_ENVIRON;
}

/* What a handle is, for readlink of /proc/self/fd/N: its guest path, or for the monitor's own
 * stdio (whose host path is never shown) what kind of object it is. */
static int handle_name(struct sbx_vm *vm, int fd, char *out, size_t len)
{
	const struct sbx_handle *h = sbx_fd_get(vm, fd);
	if (!h)
		return -ENOENT;
	if (h->gpath)
		return snprintf(out, len, "%s", h->gpath) < (int)len ? 0 : -ENAMETOOLONG;
	struct stat st;
	if (h->kind == SBX_H_HOST && fstat(h->fd, &st) == 0 &&
	    (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
		snprintf(out, len, "%s:[%llu]", S_ISFIFO(st.st_mode) ? "pipe" : "socket",
			 (unsigned long long)st.st_ino);
	else
		snprintf(out, len, "anon_inode:[%s]",
			 h->obj == SBX_O_EVENTFD   ? "eventfd"
			 : h->obj == SBX_O_TIMERFD ? "timerfd"
			 : h->obj == SBX_O_EPOLL   ? "eventpoll"
			 : h->stdio >= 0	   ? std_names[h->stdio]
						   : "?");
	return 0;
}

int sbx_vfs_readlink(struct sbx_vm *vm, const struct sbx_vnode *vn, char *out, size_t len)
{
	switch (vn->type) {
	case SBX_V_LNK_STD:
		snprintf(out, len, "/proc/self/fd/%d", vn->num);
		return 0;
	case SBX_V_LNK_DEVFD:
		snprintf(out, len, "/proc/self/fd");
		return 0;
	case SBX_V_LNK_SELF:
		snprintf(out, len, "%d", VFS_PID);
		return 0;
	case SBX_V_LNK_EXE:
		/* The answer the guest kernel gives for "/proc/self/exe" itself (the boot page's
		 * exe_path is written from this). */
		snprintf(out, len, "%s", vm->proc.image.exe_path);
		return 0;
	case SBX_V_LNK_FD:
		return handle_name(vm, vn->num, out, len);
	}
	return -EINVAL;
}

static uint64_t name_ino(const char *gpath)
{
	uint64_t h = 1469598103934665603ull;
	for (const char *p = gpath; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	return h | 1;
}

void sbx_vfs_stat(struct sbx_vm *vm, const struct sbx_vnode *vn, const char *gpath, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = name_ino(gpath);
	st->st_dev = VFS_DEV;
	st->st_nlink = 1;
	st->st_uid = vm->host.uid;
	st->st_gid = vm->host.gid;
	st->st_blksize = 4096;
	if (sbx_vfs_is_dir(vn->type)) {
		st->st_mode = S_IFDIR | (vn->type == SBX_V_DIR_FD ? 0500 : 0555);
		st->st_nlink = 2;
	} else if (vn->type >= SBX_V_NULL && vn->type <= SBX_V_URANDOM) {
		st->st_mode = S_IFCHR | 0666;
		for (size_t i = 0; i < sizeof(devs) / sizeof(devs[0]); i++)
			if (devs[i].type == vn->type)
				st->st_rdev = makedev(1, devs[i].minor);
		st->st_uid = 0; /* root's, as on Linux */
		st->st_gid = 0;
	} else if (sbx_vfs_is_file(vn->type)) {
		st->st_mode = S_IFREG | 0444; /* size 0, as Linux's proc files */
	} else {
		char t[SBX_PATH_MAX];
		st->st_mode = S_IFLNK | (vn->type == SBX_V_LNK_FD ? 0700 : 0777);
		if (sbx_vfs_readlink(vm, vn, t, sizeof(t)) == 0)
			st->st_size = (off_t)strlen(t);
	}
}

void sbx_vfs_children(struct sbx_vm *vm, const char *gpath, int type, sbx_vfs_emit emit, void *ctx)
{
	char num[16];
	switch (type) {
	case SBX_V_ROOT:
		/* Only those the policy does not show itself. */
		for (int i = 0; i < 2; i++) {
			const char *n = i ? "proc" : "dev";
			char g[8];
			struct policy_target t;
			snprintf(g, sizeof(g), "/%s", n);
			policy_lookup(vm->cfg.policy, g, &t);
			if (t.kind == POLICY_NONE)
				emit(ctx, n, strlen(n), DT_DIR);
		}
		return;
	case SBX_V_DIR_DEV:
		for (size_t i = 0; i < sizeof(devs) / sizeof(devs[0]); i++)
			emit(ctx, devs[i].name, strlen(devs[i].name), DT_CHR);
		for (int i = 0; i < 3; i++)
			emit(ctx, std_names[i], strlen(std_names[i]), DT_LNK);
		emit(ctx, "fd", 2, DT_LNK);
		break;
	case SBX_V_DIR_PROC:
		emit(ctx, "self", 4, DT_LNK);
		snprintf(num, sizeof(num), "%d", VFS_PID);
		emit(ctx, num, strlen(num), DT_DIR);
		break;
	case SBX_V_DIR_PID:
		for (size_t i = 0; i < sizeof(pid_entries) / sizeof(pid_entries[0]); i++)
			emit(ctx, pid_entries[i].name, strlen(pid_entries[i].name),
			     pid_entries[i].type == SBX_V_DIR_FD    ? DT_DIR
			     : pid_entries[i].type == SBX_V_LNK_EXE ? DT_LNK
								    : DT_REG);
		break;
	case SBX_V_DIR_FD:
		for (int i = 0; i < SBX_MAX_FDS; i++) {
			if (!sbx_fd_get(vm, i))
				continue;
			snprintf(num, sizeof(num), "%d", i);
			emit(ctx, num, strlen(num), DT_LNK);
		}
		break;
	}
	(void)gpath;
}

/* ---- Generated files --------------------------------------------------------------------- */
struct text {
	char *buf;
	size_t len, cap;
};

static void __attribute__((format(printf, 2, 3))) put(struct text *t, const char *fmt, ...)
{
	if (!t->buf)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		if (t->cap >= VFS_MAX_TEXT) {
			t->buf[t->len] = 0; /* cut: the rest is dropped */
			return;
		}
		size_t cap = t->cap * 2 > VFS_MAX_TEXT ? VFS_MAX_TEXT : t->cap * 2;
		char *b = realloc(t->buf, cap);
		if (!b)
			return;
		t->buf = b;
		t->cap = cap;
	}
}

static void put_bytes(struct text *t, const char *b, size_t n)
{
	if (!t->buf)
		return;
	if (n > VFS_MAX_TEXT - 1 - t->len)
		n = VFS_MAX_TEXT - 1 - t->len;
	if (t->len + n + 1 > t->cap) {
		char *nb = realloc(t->buf, t->len + n + 1);
		if (!nb)
			return;
		t->buf = nb;
		t->cap = t->len + n + 1;
	}
	memcpy(t->buf + t->len, b, n);
	t->len += n;
	t->buf[t->len] = 0;
}

/* Which object an ELF page range is of: the interpreter's lie at or above its bias and on the
 * far side of the program (whose pages end at brk and start below its program headers). */
static const char *elf_name(struct sbx_vm *vm, const struct sbx_vma *v)
{
	const struct loader_image *img = &vm->proc.image.img;
	if (img->interp[0] && img->interp_base && v->start >= img->interp_base &&
	    (img->interp_base >= img->brk || (img->phdr && v->end <= img->phdr)))
		return img->interp;
	return vm->proc.image.exe_path;
}

/* The object a file-backed range is of, from the program's link map: the name and the file
 * offset of start, as Linux shows them. */
static const char *object_name(const struct sbx_object *objs, int nobj, const struct sbx_vma *v,
			       uint64_t *offset)
{
	for (int i = 0; i < nobj; i++)
		for (unsigned k = 0; k < objs[i].nloads; k++) {
			const struct sbx_object_load *l = &objs[i].loads[k];
			if (v->start >= l->start && v->start < l->end && objs[i].name[0] == '/') {
				*offset = l->offset + (v->start - l->start);
				return objs[i].name;
			}
		}
	return NULL;
}

static void gen_maps(struct sbx_vm *vm, struct text *t)
{
	struct sbx_vma *v;
	unsigned n = sbx_guest_vmas(vm, &v);
	struct sbx_object *objs = n ? calloc(SBX_MAX_OBJECTS, sizeof(*objs)) : NULL;
	int nobj = objs ? sbx_link_map(vm, sbx_guest_root(vm), objs, SBX_MAX_OBJECTS) : 0;
	for (unsigned i = 0; i < n; i++) {
		uint64_t offset = 0;
		const char *obj = v[i].kind == SBX_VMA_ELF || v[i].kind == SBX_VMA_FILE
				      ? object_name(objs, nobj, &v[i], &offset)
				      : NULL;
		const char *name = obj				? obj
				   : v[i].kind == SBX_VMA_ELF	? elf_name(vm, &v[i])
				   : v[i].kind == SBX_VMA_VDSO	? "[vdso]"
				   : v[i].kind == SBX_VMA_HEAP	? "[heap]"
				   : v[i].kind == SBX_VMA_STACK ? "[stack]"
								: "";
		/* A shared file mapping: its file and offset as the monitor's own table says. */
		const struct sbx_shmap *m =
		    v[i].kind == SBX_VMA_SHARED ? sbx_shmap_find(vm, v[i].start) : NULL;
		uint64_t off = m ? m->off + (v[i].start - m->gpa) : 0;
		if (m && m->gpath)
			name = m->gpath;
		size_t at = t->len;
		put(t, "%08" PRIx64 "-%08" PRIx64 " %c%c%c%c %08" PRIx64 " 00:00 0 ", v[i].start,
		    v[i].end, v[i].prot & SBX_PROT_READ ? 'r' : '-',
		    v[i].prot & SBX_PROT_WRITE ? 'w' : '-', v[i].prot & SBX_PROT_EXEC ? 'x' : '-',
		    m ? 's' : 'p', m ? off : offset);
		if (name[0]) /* Linux pads the name to column 73 */
			put(t, "%*s%s", t->len - at < 73 ? (int)(73 - (t->len - at)) : 0, "", name);
		put(t, "\n");
	}
	free(objs);
	free(v);
}

static void gen_status(struct sbx_vm *vm, struct text *t)
{
	const char *exe = vm->proc.image.exe_path, *base = strrchr(exe, '/');
	base = base ? base + 1 : exe;
	uint32_t uid = vm->host.uid, gid = vm->host.gid;
	put(t, "Name:\t%.15s\nUmask:\t0022\nState:\tR (running)\nTgid:\t%d\nNgid:\t0\nPid:\t%d\n",
	    base, VFS_PID, VFS_PID);
	put(t, "PPid:\t0\nTracerPid:\t0\nUid:\t%u\t%u\t%u\t%u\nGid:\t%u\t%u\t%u\t%u\n", uid, uid,
	    uid, uid, gid, gid, gid, gid);
	put(t, "FDSize:\t%d\nGroups:\t\n", SBX_MAX_FDS);
	struct sbx_vma *v;
	unsigned n = sbx_guest_vmas(vm, &v);
	uint64_t size = 0, stk = 0, exe_kb = 0, data = 0;
	for (unsigned i = 0; i < n; i++) {
		uint64_t kb = (v[i].end - v[i].start) >> 10;
		size += kb;
		if (v[i].kind == SBX_VMA_STACK)
			stk += kb;
		else if ((v[i].prot & SBX_PROT_EXEC) && v[i].kind == SBX_VMA_ELF)
			exe_kb += kb;
		else if ((v[i].prot & SBX_PROT_WRITE) && v[i].kind != SBX_VMA_FILE)
			data += kb;
	}
	free(v);
	if (n)
		put(t,
		    "VmPeak:\t%8" PRIu64 " kB\nVmSize:\t%8" PRIu64 " kB\nVmData:\t%8" PRIu64
		    " kB\nVmStk:\t%8" PRIu64 " kB\nVmExe:\t%8" PRIu64 " kB\n",
		    size, size, data, stk, exe_kb);
	put(t, "Threads:\t1\nSigQ:\t0/0\n");
}

/* Linux's cmdline and environ: the bytes of the strings as they are now in the program's memory,
 * from the first one to the end of the last one, found from the initial stack (argc, argv[],
 * NULL, envp[], NULL). ASan reads its options from environ, before the C library is up. */
static void gen_strings(struct sbx_vm *vm, struct text *t, int environ)
{
	uint64_t sp = vm->proc.image.entry_rsp, argc, n, first, last;
	if (sbx_copy_from_guest(vm, &argc, sp, 8) < 0 || argc > VFS_ARGS_MAX)
		return;
	uint64_t at = environ ? sp + 8 * (argc + 2) : sp + 8;
	n = argc;
	if (environ) {
		uint64_t p = 0;
		for (n = 0;
		     n < VFS_ARGS_MAX && sbx_copy_from_guest(vm, &p, at + 8 * n, 8) == 0 && p; n++)
			;
	}
	if (n == 0 || sbx_copy_from_guest(vm, &first, at, 8) < 0 ||
	    sbx_copy_from_guest(vm, &last, at + 8 * (n - 1), 8) < 0 || last < first ||
	    last - first >= VFS_ARGS_MAX)
		return;
	uint64_t max = VFS_ARGS_MAX - (last - first);
	const char *p = sbx_gptr_ro(vm, first, last - first);
	const char *l = sbx_gptr_ro(vm, last, 1);
	if (!p || !l)
		return;
	/* The last string's end, inside guest RAM: sbx_gptr_ro checked each byte range. */
	uint64_t len = 0;
	while (len < max && sbx_gptr_ro(vm, last + len, 1) && l[len])
		len++;
	uint64_t total = last - first + len + 1;
	char *b = malloc(total);
	if (!b || sbx_copy_from_guest(vm, b, first, total) < 0) {
		free(b);
		return;
	}
	put_bytes(t, b, total); /* NULs inside are the strings' own */
	free(b);
}

static int generate(struct sbx_vm *vm, int type, struct text *t)
{
	t->cap = 4096;
	t->len = 0;
	t->buf = malloc(t->cap);
	if (!t->buf)
		return -ENOMEM;
	t->buf[0] = 0;
	if (type == SBX_V_MAPS)
		gen_maps(vm, t);
	else if (type == SBX_V_STATUS)
		gen_status(vm, t);
	else
		gen_strings(vm, t, type == SBX_V_ENVIRON);
	return t->buf ? 0 : -ENOMEM;
}

/* ---- I/O on a virtual file handle ---------------------------------------------------------- */
int64_t sbx_vfs_io(struct sbx_vm *vm, struct sbx_handle *h, const struct iovec *iov, int cnt,
		   uint64_t total, int is_write, int positioned, int64_t off)
{
	int type = h->vnode;
	if (sbx_vfs_is_dir(type))
		return -EISDIR;
	if (positioned && off < 0)
		return -EINVAL;
	int acc = h->vflags & O_ACCMODE;
	if (is_write ? acc == O_RDONLY : acc == O_WRONLY)
		return -EBADF;
	if (is_write) {
		if (type == SBX_V_FULL)
			return total ? -ENOSPC : 0;
		if (type >= SBX_V_CMDLINE && type <= SBX_V_ENVIRON)
			return -EINVAL;
		return (int64_t)total; /* null, zero, random, urandom take everything */
	}
	if (type == SBX_V_NULL)
		return 0;
	if (type == SBX_V_ZERO || type == SBX_V_FULL || type == SBX_V_RANDOM ||
	    type == SBX_V_URANDOM) {
		uint64_t done = 0;
		for (int i = 0; i < cnt; i++) {
			if (type == SBX_V_ZERO || type == SBX_V_FULL) {
				memset(iov[i].iov_base, 0, iov[i].iov_len);
				done += iov[i].iov_len;
				continue;
			}
			int64_t n = sbx_random_fill(vm, iov[i].iov_base, iov[i].iov_len);
			if (n < 0)
				return done ? (int64_t)done : n;
			done += (uint64_t)n;
			if ((uint64_t)n < iov[i].iov_len)
				break;
		}
		return (int64_t)done;
	}
	struct text t;
	int r = generate(vm, type, &t);
	if (r < 0)
		return r;
	uint64_t pos = positioned ? (uint64_t)off : h->vdir_pos, done = 0;
	for (int i = 0; i < cnt && pos + done < t.len; i++) {
		uint64_t left = t.len - (pos + done);
		uint64_t c = iov[i].iov_len < left ? iov[i].iov_len : left;
		memcpy(iov[i].iov_base, t.buf + pos + done, c);
		done += c;
	}
	free(t.buf);
	if (!positioned)
		h->vdir_pos = pos + done;
	return (int64_t)done;
}

int64_t sbx_vfs_lseek(struct sbx_handle *h, int64_t off, int whence)
{
	int type = h->vnode;
	if (type >= SBX_V_NULL && type <= SBX_V_URANDOM)
		return 0; /* as Linux's character devices: the position stays 0 */
	if (sbx_vfs_is_dir(type)) {
		if (whence != SEEK_SET || off != 0)
			return -EINVAL;
		h->vdir_pos = 0;
		return 0;
	}
	/* Generated files: no end to seek from (a seq file's answer). */
	int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? (int64_t)h->vdir_pos : -1;
	if (base < 0 || off < -base || (off > 0 && off > INT64_MAX - base))
		return -EINVAL;
	h->vdir_pos = (uint64_t)(base + off);
	return (int64_t)h->vdir_pos;
}
