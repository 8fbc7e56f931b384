/* The virtual /dev and /proc/self every program sees unless the policy says "dev": false
 * (--no-dev): the monitor answers them itself, never from the host's /dev or /proc (whose
 * /proc/self is the monitor's own). A mount the user gives at or under /dev or /proc wins: a
 * virtual node exists only where the policy has nothing (a virtual directory of the policy,
 * such as /dev above a --tmp /dev/shm, lists both).
 *
 *   /dev/null zero full random urandom   character devices, as Linux's (1,3 1,5 1,7 1,8 1,9)
 *   /dev/ptmx tty, /dev/pts/N            pseudo-terminals (pty.c): 5,2 makes one, 5,0 is the
 *                                        caller's controlling one, 136,N the sandbox's Nth
 *   /dev/stdin stdout stderr             links to /proc/self/fd/0..2
 *   /dev/fd                              a link to /proc/self/fd
 *   /proc/self                           a link to /proc/PID, the caller's pid
 *   /proc/PID                            the caller and each running process of its sandbox
 *   /proc/PID/exe                        a link to the program's guest path
 *   /proc/PID/cmdline environ status     files, generated at each read (procfs.c)
 *             stat comm maps
 *   /proc/PID/fd/N                       the guest's handle N: opening it gives a new handle
 *                                        to the same file (Linux's "magic" links)
 *   /proc/cpuinfo stat meminfo loadavg   the machine as the sandbox sees it (procfs_sys.c)
 *         uptime
 * Another process shows no maps and no fd (procfs.c says why); pid 1, the monitor's own init
 * (the first process's parent), its stat, status, comm and cmdline.
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

#define VFS_DEV 0x5344	  /* st_dev of the virtual nodes ("SD") */
#define VFS_MAX_PIDS 4096 /* /proc lists this many processes at most */

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
    {"cmdline", SBX_V_CMDLINE}, {"comm", SBX_V_COMM},	  {"environ", SBX_V_ENVIRON},
    {"exe", SBX_V_LNK_EXE},	{"fd", SBX_V_DIR_FD},	  {"maps", SBX_V_MAPS},
    {"stat", SBX_V_STAT},	{"status", SBX_V_STATUS},
};

/* The machine's files of /proc (procfs_sys.c). */
static const struct {
	const char *name;
	int type;
} sys_entries[] = {
    {"cpuinfo", SBX_V_CPUINFO}, {"loadavg", SBX_V_LOADAVG}, {"meminfo", SBX_V_MEMINFO},
    {"stat", SBX_V_PSTAT},	{"uptime", SBX_V_UPTIME},
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

/* /proc/self/fd/... and /proc/PID/fd/... (the caller's) after "fd". */
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

/* /proc/PID/... after the pid, which is the caller's or a running process's. */
static int lookup_pid(struct sbx_vm *vm, uint32_t pid, const char *p, struct sbx_vnode *vn)
{
	const char *c;
	size_t n = component(&p, &c);
	vn->num = (int)pid;
	if (n == 0)
		return at_node(vn, SBX_V_DIR_PID);
	for (size_t i = 0; i < sizeof(pid_entries) / sizeof(pid_entries[0]); i++) {
		if (!is(c, n, pid_entries[i].name))
			continue;
		if (!sbx_procfs_shown(vm, pid, pid_entries[i].type))
			return -EACCES;
		if (pid_entries[i].type == SBX_V_DIR_FD)
			return lookup_fd(vm, p, vn);
		return leaf(p, vn, pid_entries[i].type, (int)pid);
	}
	return -ENOENT;
}

/* A pid as /proc names it: decimal, no sign or leading zero; 0 if c is none. */
static uint32_t pid_number(const char *c, size_t n)
{
	uint32_t v = 0;
	if (n == 0 || n > 7 || c[0] == '0')
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (c[i] < '0' || c[i] > '9')
			return 0;
		v = v * 10 + (uint32_t)(c[i] - '0');
	}
	return v;
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
		if (is(c, n, "ptmx") || is(c, n, "tty"))
			return leaf(p, vn, is(c, n, "tty") ? SBX_V_TTY : SBX_V_PTMX, -1);
		if (is(c, n, "pts")) {
			n = component(&p, &c);
			if (n == 0)
				return at_node(vn, SBX_V_DIR_PTS);
			uint32_t i = pid_number(c, n); /* no sign, no leading zero */
			if ((i || is(c, n, "0")) && i < SBX_PTYS_MAX && sbx_pty_exists(vm, (int)i))
				return leaf(p, vn, SBX_V_PTS, (int)i);
		}
		return -ENOENT;
	}
	if (is(c, n, "proc")) {
		n = component(&p, &c);
		if (n == 0)
			return at_node(vn, SBX_V_DIR_PROC);
		if (is(c, n, "self")) {
			if (strspn(p, "/") == strlen(p))
				return at_node(vn, SBX_V_LNK_SELF);
			return lookup_pid(vm, vm->proc.pid, p, vn);
		}
		for (size_t i = 0; i < sizeof(sys_entries) / sizeof(sys_entries[0]); i++)
			if (is(c, n, sys_entries[i].name))
				return leaf(p, vn, sys_entries[i].type, -1);
		uint32_t pid = pid_number(c, n);
		if (pid && sbx_procfs_exists(vm, pid))
			return lookup_pid(vm, pid, p, vn);
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
		vn->num = -1; /* the caller's */
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
		/* Linux's names: inotify's has no brackets. */
		snprintf(out, len, h->obj == SBX_O_INOTIFY ? "anon_inode:%s" : "anon_inode:[%s]",
			 h->obj == SBX_O_EVENTFD    ? "eventfd"
			 : h->obj == SBX_O_TIMERFD  ? "timerfd"
			 : h->obj == SBX_O_EPOLL    ? "eventpoll"
			 : h->obj == SBX_O_INOTIFY  ? "inotify"
			 : h->obj == SBX_O_SIGNALFD ? "signalfd"
			 : h->stdio >= 0	    ? std_names[h->stdio]
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
		snprintf(out, len, "%u", vm->proc.pid);
		return 0;
	case SBX_V_LNK_EXE:
		/* The answer the guest kernel gives for "/proc/self/exe" itself (the boot page's
		 * exe_path is written from this); another process's from its boot page. */
		if (vn->num > 0 && (uint32_t)vn->num != vm->proc.pid) {
			char *t;
			size_t n;
			int r = sbx_procfs_text(vm, SBX_V_LNK_EXE, (uint32_t)vn->num, &t, &n);
			if (r < 0)
				return r;
			snprintf(out, len, "%s", t);
			free(t);
			return 0;
		}
		snprintf(out, len, "%s", vm->proc.image.exe_path);
		return 0;
	case SBX_V_LNK_FD:
		return handle_name(vm, vn->num, out, len);
	case SBX_V_LNK_MOUNT:
		if (!vm->cfg.policy || vn->num < 0 || (size_t)vn->num >= vm->cfg.policy->nmounts ||
		    !vm->cfg.policy->mounts[vn->num].link)
			return -EINVAL;
		snprintf(out, len, "%s", vm->cfg.policy->mounts[vn->num].link);
		return 0;
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
	} else if (vn->type >= SBX_V_NULL && vn->type <= SBX_V_TTY) {
		st->st_mode = S_IFCHR | 0666;
		for (size_t i = 0; i < sizeof(devs) / sizeof(devs[0]); i++)
			if (devs[i].type == vn->type)
				st->st_rdev = makedev(1, devs[i].minor);
		if (vn->type == SBX_V_PTMX || vn->type == SBX_V_TTY)
			st->st_rdev = makedev(5, vn->type == SBX_V_PTMX ? 2 : 0);
		st->st_uid = 0; /* root's, as on Linux */
		st->st_gid = 0;
	} else if (vn->type == SBX_V_PTS) {
		/* The owner's, group tty (5), rw--w----, as devpts makes them. */
		st->st_mode = S_IFCHR | 0620;
		st->st_rdev = makedev(136, (unsigned)vn->num);
		st->st_gid = 5;
	} else if (sbx_vfs_is_file(vn->type)) {
		st->st_mode = S_IFREG | 0444; /* size 0, as Linux's proc files */
	} else {
		char t[SBX_PATH_MAX];
		st->st_mode = S_IFLNK | (vn->type == SBX_V_LNK_FD ? 0700 : 0777);
		if (sbx_vfs_readlink(vm, vn, t, sizeof(t)) == 0)
			st->st_size = (off_t)strlen(t);
	}
}

static int pid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* The caller's pid and its sandbox's running processes', in order, as Linux lists them. */
static void list_pids(struct sbx_vm *vm, sbx_vfs_emit emit, void *ctx)
{
	uint32_t *pids = calloc(VFS_MAX_PIDS, sizeof(*pids));
	unsigned n = 0;
	if (pids && vm->hooks.procs_list)
		n = vm->hooks.procs_list(vm, pids, VFS_MAX_PIDS);
	if (n > VFS_MAX_PIDS)
		n = VFS_MAX_PIDS;
	if (!n && pids)
		pids[n++] = vm->proc.pid; /* no tree: the caller alone */
	int has_init = 0;
	for (unsigned i = 0; pids && i < n; i++)
		has_init |= pids[i] == 1;
	if (pids && n < VFS_MAX_PIDS && !has_init)
		pids[n++] = 1; /* the monitor's init (a restored old snapshot's process may be 1) */
	if (pids)
		qsort(pids, n, sizeof(*pids), pid_cmp);
	char num[16];
	for (unsigned i = 0; i < n; i++) {
		snprintf(num, sizeof(num), "%u", pids[i]);
		emit(ctx, num, strlen(num), DT_DIR);
	}
	free(pids);
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
		emit(ctx, "ptmx", 4, DT_CHR);
		emit(ctx, "tty", 3, DT_CHR);
		emit(ctx, "pts", 3, DT_DIR);
		break;
	case SBX_V_DIR_PTS: {
		int idx[SBX_PTYS_MAX];
		unsigned n = sbx_pty_list(vm, idx, SBX_PTYS_MAX);
		for (unsigned i = 0; i < n; i++) {
			snprintf(num, sizeof(num), "%d", idx[i]);
			emit(ctx, num, strlen(num), DT_CHR);
		}
		break;
	}
	case SBX_V_DIR_PROC:
		list_pids(vm, emit, ctx);
		emit(ctx, "self", 4, DT_LNK);
		for (size_t i = 0; i < sizeof(sys_entries) / sizeof(sys_entries[0]); i++)
			emit(ctx, sys_entries[i].name, strlen(sys_entries[i].name), DT_REG);
		break;
	case SBX_V_DIR_PID: {
		uint32_t pid = sbx_procfs_path_pid(vm, gpath);
		for (size_t i = 0; i < sizeof(pid_entries) / sizeof(pid_entries[0]); i++)
			if (sbx_procfs_shown(vm, pid, pid_entries[i].type))
				emit(ctx, pid_entries[i].name, strlen(pid_entries[i].name),
				     pid_entries[i].type == SBX_V_DIR_FD    ? DT_DIR
				     : pid_entries[i].type == SBX_V_LNK_EXE ? DT_LNK
									    : DT_REG);
		break;
	}
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
	char *text;
	size_t len;
	uint32_t pid = h->vpid ? h->vpid : sbx_procfs_path_pid(vm, h->gpath ? h->gpath : "");
	int r = sbx_procfs_text(vm, type, pid, &text, &len);
	if (r < 0)
		return r;
	uint64_t pos = positioned ? (uint64_t)off : h->vdir_pos, done = 0;
	for (int i = 0; i < cnt && pos + done < len; i++) {
		uint64_t left = len - (pos + done);
		uint64_t c = iov[i].iov_len < left ? iov[i].iov_len : left;
		memcpy(iov[i].iov_base, text + pos + done, c);
		done += c;
	}
	free(text);
	if (!positioned)
		h->vdir_pos = pos + done;
	return (int64_t)done;
}

int64_t sbx_vfs_lseek(struct sbx_handle *h, int64_t off, int whence)
{
	int type = h->vnode;
	if (type >= SBX_V_NULL && type <= SBX_V_PTS)
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
