/* Hypercalls that name a path. The path is copied out of guest memory once, normalised
 * against the cwd or a directory handle, matched to a mount, and only then resolved on the
 * host, beneath that mount's root (policy_open, policy_resolve_parent). The rule applied is the
 * one of the mount the path finally reaches (a nested mount's, through a symlink too), decided
 * on the directory fd the operation is then done in. Read-only mounts refuse writes with
 * EROFS. */
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "calls.h"

#define SBX_OPEN_FLAGS                                                                             \
	(O_ACCMODE | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND | O_NONBLOCK | O_DSYNC |     \
	 O_SYNC | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_LARGEFILE | O_NOATIME | O_TMPFILE)

/* A string the guest names by address and length (no NUL inside), copied out once. */
static int guest_string(struct sbx_vm *vm, uint64_t addr, uint32_t len, char out[SBX_PATH_MAX])
{
	if (len == 0)
		return -ENOENT;
	if (len >= SBX_PATH_MAX)
		return -ENAMETOOLONG;
	if (sbx_copy_from_guest(vm, out, addr, len) < 0)
		return -EFAULT;
	if (memchr(out, 0, len))
		return -EINVAL;
	out[len] = 0;
	return 0;
}

/* A path the guest named, resolved: its normalised guest path and where that leads. */
struct named {
	char g[POLICY_PATH_MAX];
	struct policy_target t;
	int walked;	     /* g was resolved in the guest's namespace (walk_again) */
	struct sbx_vnode vn; /* a node of the virtual /dev or /proc, where t is POLICY_NONE */
	/* The path ended in '/': it names a directory, or what is to be one (resolve refuses
	 * an existing other thing; a call that would make a file or a link refuses it). */
	int slash;
	/* It did, and names something there that is no directory: ENOTDIR, but to a call that
	 * would make something by that name, EEXIST (writable_parent lets those see it). */
	int notdir;
};

/* Where a normalised guest path leads: the policy's mounts first, else the virtual nodes. With
 * `follow`, a final virtual link to a file of a mount (/proc/self/exe, /proc/self/fd/N of a
 * file) is followed to that file's guest path, which is then the policy's alone. */
static int classify(struct sbx_vm *vm, struct named *n, int follow)
{
	n->vn = (struct sbx_vnode){SBX_V_NONE, -1};
	/* Through a mount that is a link in the guest (Debian's /bin beside /usr), at its
	 * target; the link itself when it is the last component, not followed. */
	char text[POLICY_PATH_MAX];
	int r = policy_follow_links(vm->cfg.policy, n->g, sizeof(n->g), follow);
	if (r < 0)
		return r;
	int link = follow ? -1 : policy_link_of(vm->cfg.policy, n->g, text, sizeof(text));
	if (link >= 0) {
		n->t = (struct policy_target){.kind = POLICY_NONE};
		n->vn = (struct sbx_vnode){SBX_V_LNK_MOUNT, link};
		sbx_audit_note(vm, n->g, &n->t);
		return 0;
	}
	policy_lookup(vm->cfg.policy, n->g, &n->t);
	if (n->t.kind == POLICY_NONE) {
		r = sbx_vfs_lookup(vm, n->g, &n->vn);
		if (r == -ENOTDIR || r == -EACCES) /* EACCES: another process's, not shown */
			return r;
		if (r == 0 && follow) {
			sbx_vfs_follow(&n->vn);
			const struct sbx_handle *h =
			    n->vn.type == SBX_V_LNK_FD ? sbx_fd_get(vm, n->vn.num) : NULL;
			char exe[sizeof(vm->proc.image.exe_path)];
			/* A memfd's name is no path: reopened as the handle it is. */
			const char *to =
			    h && h->kind == SBX_H_HOST && h->obj == SBX_O_FILE ? h->gpath : NULL;
			/* Another process's program too (/proc/PID/exe), by its path. */
			if (n->vn.type == SBX_V_LNK_EXE &&
			    sbx_vfs_readlink(vm, &n->vn, exe, sizeof(exe)) == 0)
				to = exe;
			char norm[POLICY_PATH_MAX];
			if (to && policy_normalize("/", to, strlen(to), norm, sizeof(norm)) == 0) {
				memcpy(n->g, norm, sizeof(norm));
				n->vn = (struct sbx_vnode){SBX_V_NONE, -1};
				policy_lookup(vm->cfg.policy, n->g, &n->t);
			}
		}
	}
	sbx_audit_note(vm, n->g, &n->t);
	return 0;
}

/* Is what n names a directory, or nothing yet (a name a call may make a directory of)? Asked
 * of a path that ends in '/' only: "file/" is ENOTDIR for every call, as on Linux. */
static int names_dir(struct sbx_vm *vm, const struct named *n)
{
	if (n->vn.type != SBX_V_NONE)
		return sbx_vfs_is_dir(n->vn.type);
	if (n->t.kind != POLICY_MOUNT)
		return 1; /* a directory of the policy's own tree, or nothing */
	const struct policy_mount *m = n->t.mount;
	struct stat st;
	int fd = policy_open(vm->cfg.policy, &n->t, POLICY_FOLLOW, O_PATH | O_CLOEXEC, 0, NULL,
			     NULL, &m);
	if (fd < 0)
		return 1; /* missing, or a link out of its mount: the call itself says */
	int dir = fstat(fd, &st) < 0 || S_ISDIR(st.st_mode);
	close(fd);
	return dir;
}

/* The call's path (or its second one) copied out of guest memory, normalised against the cwd
 * or a directory handle, and looked up in the policy (and the virtual nodes). */
static int resolve(struct sbx_vm *vm, int32_t dirfd, const char *raw, uint32_t len, int follow,
		   struct named *n)
{
	int r;
	const char *base = vm->proc.cwd;
	if (raw[0] != '/' && dirfd != SBX_AT_FDCWD) {
		struct sbx_handle *h = sbx_fd_get(vm, dirfd);
		if (!h)
			return -EBADF;
		if (!h->gpath)
			return -ENOTDIR;
		if (h->kind == SBX_H_HOST) {
			struct stat st;
			if (fstat(h->fd, &st) < 0 || !S_ISDIR(st.st_mode))
				return -ENOTDIR;
		}
		if (h->kind == SBX_H_VFILE && !sbx_vfs_is_dir(h->vnode))
			return -ENOTDIR;
		base = h->gpath;
	}
	r = policy_has_dotdot(raw, len)
		? policy_normalize_walked(vm->cfg.policy, base, raw, len, n->g, POLICY_PATH_MAX)
		: policy_normalize(base, raw, len, n->g, POLICY_PATH_MAX);
	if (r < 0)
		return r;
	n->walked = 0;
	n->slash = raw[len - 1] == '/';
	/* "link/" names what the link points to, as on Linux. */
	r = classify(vm, n, follow || n->slash);
	n->notdir = r == 0 && n->slash && !names_dir(vm, n);
	return n->notdir ? -ENOTDIR : r;
}

static int guest_target(struct sbx_vm *vm, const struct sbx_path *a, int second, int follow,
			struct named *n)
{
	char raw[SBX_PATH_MAX];
	uint32_t len = second ? a->path2_len : a->path_len;
	int r = guest_string(vm, second ? a->path2 : a->path, len, raw);
	return r < 0 ? r : resolve(vm, second ? a->dirfd2 : a->dirfd, raw, len, follow, n);
}

/* After -EXDEV from the policy (a symlink on n's path leaves its mount): n resolved again in
 * the guest's namespace (policy_walk), for the caller to try once more from the lookup on
 * (it may now name a virtual node). A second -EXDEV means a link changed since the walk:
 * -ENOENT, as the path then leads nowhere the walk saw. Handles and the cwd keep the walked
 * path, as the kernel's name the object. */
static int walk_again(struct sbx_vm *vm, struct named *n, enum policy_walk how)
{
	char g[POLICY_PATH_MAX];
	if (n->walked)
		return -ENOENT;
	int r = policy_walk(vm->cfg.policy, n->g, how, g, sizeof(g));
	if (r < 0)
		return r;
	memcpy(n->g, g, strlen(g) + 1);
	n->walked = 1;
	return classify(vm, n, how == POLICY_FOLLOW);
}

static int install(struct sbx_vm *vm, enum sbx_handle_kind kind, int fd, const char *gpath,
		   int cloexec, int writable)
{
	int n = sbx_fd_alloc(vm, 0);
	char *g = strdup(gpath);
	if (n < 0 || !g) {
		if (fd >= 0)
			close(fd);
		free(g);
		return n < 0 ? n : -ENOMEM;
	}
	vm->proc.files->fds[n] = (struct sbx_handle){.kind = kind,
						     .fd = fd,
						     .gpath = g,
						     .cloexec = cloexec,
						     .writable = writable,
						     .stdio = -1};
	return n;
}

/* A new handle to what the guest's handle fd is (Linux's /proc/self/fd/N "magic" link): a
 * copy of it, with its own position where the monitor keeps one. Files of mounts never come
 * here (classify follows them to their path). */
static int reopen_handle(struct sbx_vm *vm, int fd, int flags, int wants_write)
{
	const struct sbx_handle *h = sbx_fd_get(vm, fd);
	if (!h)
		return -ENOENT;
	/* A terminal's link names its device: opened anew, as that path would be (a master's
	 * is /dev/ptmx, which makes another). */
	if (h->kind == SBX_H_HOST && h->obj == SBX_O_PTY)
		return flags & O_DIRECTORY
			   ? -ENOTDIR
			   : (int)sbx_pty_open(vm, h->end ? sbx_pty_index(h->pty) : SBX_PTY_NEW,
					       flags);
	if (h->kind == SBX_H_VDIR || (h->kind == SBX_H_VFILE && sbx_vfs_is_dir(h->vnode))) {
		if (wants_write)
			return -EISDIR;
	} else if (flags & O_DIRECTORY) {
		return -ENOTDIR;
	}
	int n = sbx_fd_alloc(vm, 0);
	if (n < 0)
		return n;
	struct sbx_handle copy;
	int r = sbx_fd_copy(&copy, h);
	if (r < 0)
		return r;
	copy.cloexec = (flags & O_CLOEXEC) != 0;
	if (h->kind != SBX_H_HOST) {
		copy.vdir_pos = 0;
		copy.vflags = flags & (O_ACCMODE | O_APPEND | O_NONBLOCK);
	}
	vm->proc.files->fds[n] = copy;
	return n;
}

/* open of a node of the virtual /dev or /proc. */
static int open_virtual(struct sbx_vm *vm, const struct named *p, int flags, int wants_write)
{
	int type = p->vn.type;
	if (type == SBX_V_LNK_FD)
		return reopen_handle(vm, p->vn.num, flags, wants_write);
	if (type >= SBX_V_LNK_STD) /* a final link not followed (O_NOFOLLOW, O_EXCL) */
		return (flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL) ? -EEXIST : -ELOOP;
	if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL))
		return -EEXIST;
	if (sbx_vfs_is_dir(type) && (wants_write || (flags & O_CREAT)))
		return -EISDIR;
	if (!sbx_vfs_is_dir(type) && (flags & O_DIRECTORY))
		return -ENOTDIR;
	if (type == SBX_V_PTMX || type == SBX_V_TTY || type == SBX_V_PTS)
		return (int)sbx_pty_open(vm,
					 type == SBX_V_PTMX  ? SBX_PTY_NEW
					 : type == SBX_V_TTY ? SBX_PTY_CTTY
							     : p->vn.num,
					 flags);
	if (type >= SBX_V_CMDLINE && wants_write)
		return -EACCES; /* r--r--r-- */
	int n = install(vm, SBX_H_VFILE, -1, p->g, (flags & O_CLOEXEC) != 0, 0);
	if (n >= 0) {
		vm->proc.files->fds[n].vnode = type;
		vm->proc.files->fds[n].vpid = p->vn.num > 0 ? (uint32_t)p->vn.num : vm->proc.pid;
		vm->proc.files->fds[n].vflags = flags & (O_ACCMODE | O_APPEND | O_NONBLOCK);
	}
	return n;
}

/* A read-only mount answers as a read-only file system: a missing file is ENOENT unless it
 * would be created, and O_CREAT alone on an existing file is a plain read-only open. */
static int open_check(const struct policy_node *n, int *flags, void *ctx)
{
	int wants_write = *(const int *)ctx;
	if (n->mount->rw || !(wants_write || (*flags & O_CREAT)))
		return 0;
	int probe = policy_node_open(n, O_PATH | (*flags & O_NOFOLLOW), 0);
	if (probe < 0)
		return (*flags & O_CREAT) && probe != -EXDEV ? -EROFS : probe;
	close(probe);
	if (wants_write || (*flags & O_EXCL))
		return (*flags & O_EXCL) ? -EEXIST : -EROFS;
	*flags &= ~O_CREAT;
	return 0;
}

/* chmod and utimensat on an O_PATH fd go through its /proc/self/fd link: the link is the
 * monitor's own, resolved on the host side after the guest path was already resolved safely. */
static void proc_fd_path(char *out, size_t len, int fd)
{
	snprintf(out, len, "/proc/self/fd/%d", fd);
}

/* The program's kernel took the program's umask from a new entry's mode; the host takes the
 * monitor's too. Where that removed bits the program kept (its umask 002 under a shell's 022),
 * the entry just made gets the program's mode back, through a descriptor of it: never by a path
 * a racing rename could turn into a symlink that leads out. Only when the host's umask alone
 * shaped it: a directory's default ACL (which Linux lets decide instead of any umask) stays in
 * charge, and a directory keeps the setgid bit its parent gave it. fd: the entry's, or -1 to
 * find name in dirfd, which must still be of type (S_IFMT bits). */
static void mode_back(struct sbx_vm *vm, int dirfd, const char *name, int fd, mode_t type,
		      mode_t mode)
{
	mode &= 01777;
	if (!(mode & vm->host.umask))
		return;
	struct stat st;
	char p[64];
	int e = errno, own = fd >= 0 ? -1 : openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	int use = fd >= 0 ? fd : own;
	if (use >= 0 && fstat(use, &st) == 0 && (fd >= 0 || (st.st_mode & S_IFMT) == type) &&
	    (st.st_mode & 0777) == (mode & 0777 & ~vm->host.umask)) {
		if (S_ISDIR(st.st_mode))
			mode |= st.st_mode & S_ISGID;
		proc_fd_path(p, sizeof(p), use);
		(void)(fd >= 0 ? fchmod(fd, mode) : chmod(p, mode));
	}
	if (own >= 0)
		close(own);
	errno = e;
}

int64_t sbx_hc_open(struct sbx_vm *vm, const struct sbx_slot *s)
{
	const struct sbx_path *a = &s->u.path;
	int flags = (int)a->flags & SBX_OPEN_FLAGS;
	/* As Linux: O_CREAT | O_EXCL never follows a final symlink. */
	int follow = !(flags & O_NOFOLLOW) && (flags & (O_CREAT | O_EXCL)) != (O_CREAT | O_EXCL);
	struct named p;
	p.slash = 0;
	int r = guest_target(vm, a, 0, follow, &p);
	/* Linux: a file is never made by a name ending in '/', whatever is there. */
	if ((flags & O_CREAT) && p.slash && (r == 0 || r == -ENOTDIR))
		return -EISDIR;
	if (r < 0)
		return r;
	int acc = flags & O_ACCMODE;
	int wants_write = acc != O_RDONLY || (flags & (O_TRUNC | O_TMPFILE)) == O_TRUNC ||
			  (flags & O_TMPFILE) == O_TMPFILE;
	enum policy_walk how = follow ? POLICY_FOLLOW : POLICY_NOFOLLOW;
again:
	if (p.vn.type != SBX_V_NONE)
		return open_virtual(vm, &p, flags, wants_write);
	if (p.t.kind == POLICY_VDIR) {
		if (wants_write || (flags & O_CREAT))
			return (flags & O_EXCL) ? -EEXIST : -EISDIR;
		return install(vm, SBX_H_VDIR, -1, p.g, (flags & O_CLOEXEC) != 0, 0);
	}
	if (p.t.kind != POLICY_MOUNT)
		return -ENOENT;
	const struct policy_mount *m = p.t.mount;
	/* O_PATH | O_NOFOLLOW of a symlink: the link itself (glibc's fchmodat and lchmod look at
	 * it so; fstat and readlinkat of it work), where the plain open below is ELOOP. Other
	 * O_PATH opens stay read-only opens of what they name. */
	if ((a->flags & O_PATH) && (flags & O_NOFOLLOW) && !(flags & O_CREAT)) {
		struct stat st;
		int lf =
		    policy_open(vm->cfg.policy, &p.t, POLICY_NOFOLLOW, O_PATH, 0, NULL, NULL, &m);
		if (lf >= 0 && fstat(lf, &st) == 0 && S_ISLNK(st.st_mode)) {
			sbx_audit_mount(vm, &p.t, m);
			return install(vm, SBX_H_HOST, lf, p.g, (flags & O_CLOEXEC) != 0, 0);
		}
		if (lf >= 0)
			close(lf);
		m = p.t.mount;
	}
	/* O_NONBLOCK so a FIFO without a writer cannot block the monitor; cleared after. Where
	 * the host's umask would take bits the program's mode keeps, O_EXCL first says whether
	 * this open makes the file, whose mode is then the program's (mode_back). */
	int oflags = (flags & ~O_CLOEXEC) | O_NONBLOCK, fd = -1,
	    made = (flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL) ||
		   (flags & O_TMPFILE) == O_TMPFILE;
	if (!made && (flags & O_CREAT) && (a->mode & 01777 & vm->host.umask)) {
		fd = policy_open(vm->cfg.policy, &p.t, POLICY_NOFOLLOW, oflags | O_EXCL,
				 a->mode & 01777, open_check, &wants_write, &m);
		made = fd >= 0;
	}
	if (fd < 0) {
		m = p.t.mount; /* the mount the audit names is this open's */
		fd = policy_open(vm->cfg.policy, &p.t, how, oflags, a->mode & 01777, open_check,
				 &wants_write, &m);
	}
	if (fd >= 0 && made)
		mode_back(vm, -1, NULL, fd, 0, a->mode);
	sbx_audit_mount(vm, &p.t, m);
	if (fd == -EXDEV && (fd = walk_again(vm, &p, how)) == 0)
		goto again;
	/* A FIFO that waits for its other end (fifo.c): a writer with no reader yet. */
	int fl = flags | (int)(a->flags & O_PATH);
	if (fd == -ENXIO) {
		int o =
		    policy_open(vm->cfg.policy, &p.t, how, O_PATH | O_CLOEXEC, 0, NULL, NULL, &m);
		if (o >= 0 && sbx_fifo_waits(vm, o, fl, O_WRONLY))
			return sbx_fifo_keep(vm, o, flags, p.g, m->rw);
		if (o >= 0)
			close(o);
	}
	if (fd < 0)
		return fd;
	if (!(flags & O_NONBLOCK)) {
		if (sbx_fifo_waits(vm, fd, fl, O_RDONLY))
			return sbx_fifo_keep(vm, fd, flags, p.g, m->rw);
		/* The status flags the open set, without O_NONBLOCK (F_SETFL changes no others). */
		fcntl(fd, F_SETFL, flags & (O_APPEND | O_DIRECT | O_NOATIME));
	}
	return install(vm, SBX_H_HOST, fd, p.g, (flags & O_CLOEXEC) != 0, m->rw);
}

int sbx_path_install(struct sbx_vm *vm, int fd, const char *gpath, int cloexec, int writable)
{
	return install(vm, SBX_H_HOST, fd, gpath, cloexec, writable);
}

int sbx_path_open_ro(struct sbx_vm *vm, int32_t dirfd, const char *path, int follow,
		     char gpath[POLICY_PATH_MAX])
{
	struct named p;
	size_t len = strlen(path);
	if (!len)
		return -ENOENT;
	if (len >= SBX_PATH_MAX)
		return -ENAMETOOLONG;
	int r = resolve(vm, dirfd, path, (uint32_t)len, follow, &p);
	if (r < 0)
		return r;
	enum policy_walk how = follow ? POLICY_FOLLOW : POLICY_NOFOLLOW;
	for (;;) {
		if (p.vn.type != SBX_V_NONE || p.t.kind == POLICY_VDIR)
			return -EACCES;
		if (p.t.kind != POLICY_MOUNT)
			return -ENOENT;
		const struct policy_mount *m = p.t.mount;
		/* O_NONBLOCK: a FIFO opens at once (and is refused as no regular file). */
		int fd =
		    policy_open(vm->cfg.policy, &p.t, how,
				O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0, NULL, NULL, &m);
		sbx_audit_mount(vm, &p.t, m);
		if (fd == -EXDEV && (r = walk_again(vm, &p, how)) == 0)
			continue;
		if (fd == -EXDEV)
			return r;
		if (fd >= 0)
			snprintf(gpath, POLICY_PATH_MAX, "%s", p.g);
		return fd;
	}
}

/* Opens a target as an O_PATH fd, following a final symlink unless told not to, and gives the
 * mount whose rule applies to what it reached. A path whose symlinks lead out of its mount is
 * resolved in the guest's namespace first: then p is the walked path and may be a virtual
 * directory (-EISDIR, *vdir set) or nothing (-ENOENT). */
static int open_path(struct sbx_vm *vm, struct named *p, int nofollow,
		     const struct policy_mount **m, int *vdir)
{
	enum policy_walk how = nofollow ? POLICY_NOFOLLOW : POLICY_FOLLOW;
	*vdir = 0;
	for (;;) {
		if (p->t.kind == POLICY_VDIR || p->vn.type != SBX_V_NONE) {
			*vdir = 1;
			return -EISDIR;
		}
		if (p->t.kind != POLICY_MOUNT)
			return -ENOENT;
		*m = p->t.mount;
		int fd = policy_open(vm->cfg.policy, &p->t, how, O_PATH, 0, NULL, NULL, m);
		sbx_audit_mount(vm, &p->t, *m);
		if (fd != -EXDEV)
			return fd;
		int r = walk_again(vm, p, how);
		if (r < 0)
			return r;
	}
}

int sbx_path_opath(struct sbx_vm *vm, const struct sbx_path *a, int follow)
{
	struct named p;
	const struct policy_mount *m;
	int vdir, r = guest_target(vm, a, 0, follow, &p);
	if (r < 0)
		return r;
	r = open_path(vm, &p, !follow, &m, &vdir);
	return vdir ? -EACCES : r;
}

int64_t sbx_hc_stat(struct sbx_vm *vm, const struct sbx_slot *s)
{
	const struct sbx_path *a = &s->u.path;
	struct stat st;
	struct named p;
	int r = guest_target(vm, a, 0, !(a->flags & AT_SYMLINK_NOFOLLOW), &p);
	if (r < 0)
		return r;
	const struct policy_mount *m;
	int nofollow = (a->flags & AT_SYMLINK_NOFOLLOW) != 0, vdir, fd = -1;
	if (p.vn.type == SBX_V_NONE && p.t.kind != POLICY_VDIR)
		fd = open_path(vm, &p, nofollow, &m, &vdir); /* may walk into a virtual node */
	if (p.vn.type == SBX_V_LNK_FD && !nofollow) {
		r = sbx_handle_stat(vm, sbx_fd_get(vm, p.vn.num), &st);
		if (r < 0)
			return r;
	} else if (p.vn.type != SBX_V_NONE) {
		sbx_vfs_stat(vm, &p.vn, p.g, &st);
	} else if (p.t.kind == POLICY_VDIR) {
		sbx_vdir_stat(vm, p.g, &st);
	} else {
		if (fd < 0)
			return fd;
		r = fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
		int e = errno;
		close(fd);
		if (r < 0)
			return -e;
	}
	return sbx_put_stat(vm, a->buf, a->buf_len, &st);
}

int64_t sbx_hc_readlink(struct sbx_vm *vm, const struct sbx_slot *s)
{
	char target[SBX_PATH_MAX];
	struct named p;
	const struct sbx_path *a = &s->u.path;
	int r = guest_target(vm, a, 0, 0, &p);
	if (r < 0)
		return r;
	if (p.t.kind == POLICY_VDIR)
		return -EINVAL;
	ssize_t n;
	const struct policy_mount *m;
	int vdir, fd = -1;
	if (p.vn.type == SBX_V_NONE)
		fd = open_path(vm, &p, 1, &m, &vdir);
	if (p.vn.type != SBX_V_NONE) {
		r = sbx_vfs_readlink(vm, &p.vn, target, sizeof(target));
		if (r < 0)
			return r;
		n = (ssize_t)strlen(target);
	} else {
		if (fd < 0)
			return vdir ? -EINVAL : fd;
		n = readlinkat(fd, "", target, sizeof(target));
		int e = errno;
		close(fd);
		if (n < 0)
			return e == ENOENT ? -EINVAL : -e;
	}
	uint64_t len = (uint64_t)n < a->buf_len ? (uint64_t)n : a->buf_len;
	if (sbx_copy_to_guest(vm, a->buf, target, len) < 0)
		return -EFAULT;
	return (int64_t)len;
}

/* A name (that is nothing yet) directly in a virtual directory of /dev or /proc. */
static int in_virtual_dir(struct sbx_vm *vm, const char *g)
{
	char parent[POLICY_PATH_MAX];
	struct sbx_vnode vn;
	struct policy_target t;
	const char *slash = strrchr(g, '/');
	if (!slash || slash == g)
		return 0;
	memcpy(parent, g, (size_t)(slash - g));
	parent[slash - g] = 0;
	policy_lookup(vm->cfg.policy, parent, &t);
	return t.kind == POLICY_NONE && sbx_vfs_lookup(vm, parent, &vn) == 0 &&
	       (sbx_vfs_follow(&vn), sbx_vfs_is_dir(vn.type));
}

/* For calls that change a directory entry: the directory holding the last component, which
 * must be on a writable mount. The node's name is never a mount's own object or a directory on
 * the way to one (node->pinned): callers refuse to remove, move or replace those. */
static int writable_parent(struct sbx_vm *vm, const struct sbx_path *a, int second, struct named *p,
			   struct policy_node *n)
{
	p->notdir = 0;
	int r = guest_target(vm, a, second, 0, p);
	if (r == -ENOTDIR && p->notdir)
		r = 0; /* the caller says what a file by a directory's name is to it */
	while (r == 0) {
		/* A mount that is a link in the guest (Debian's /bin): an entry that exists, and
		 * that no call may remove or replace (a mount point's EBUSY). */
		if (p->vn.type == SBX_V_LNK_MOUNT)
			return -EBUSY;
		if (p->vn.type != SBX_V_NONE || in_virtual_dir(vm, p->g))
			return -EACCES; /* root's directories, as /dev and /proc are on Linux */
		if (p->t.kind == POLICY_VDIR)
			return strcmp(p->g, "/") == 0 ? -EBUSY : -EROFS;
		if (p->t.kind != POLICY_MOUNT)
			return -ENOENT;
		/* -EBUSY for the mount point itself: its parent is not the guest's. */
		r = policy_resolve_parent(vm->cfg.policy, &p->t, n);
		if (r != -EXDEV)
			break;
		r = walk_again(vm, p, POLICY_PARENT);
	}
	if (r < 0)
		return r;
	sbx_audit_mount(vm, &p->t, n->mount);
	if (!n->mount->rw) {
		policy_node_release(n);
		return -EROFS;
	}
	return 0;
}

/* The result of an entry call made with n's directory (r: the host call's, errno set). */
static int64_t entry_done(struct policy_node *n, int r)
{
	int e = errno;
	policy_node_release(n);
	return r < 0 ? -e : 0;
}

static int refuse(int e)
{
	errno = e;
	return -1;
}

/* A file, FIFO, socket or link by a name that ends in '/' (a directory's): EEXIST if something
 * is there, else ENOENT, as Linux answers. */
static int no_file_by_dir_name(const struct policy_node *n)
{
	struct stat st;
	return refuse(fstatat(n->dirfd, n->name, &st, AT_SYMLINK_NOFOLLOW) == 0 ? EEXIST : ENOENT);
}

int64_t sbx_hc_mkdir(struct sbx_vm *vm, const struct sbx_slot *s)
{
	struct named t;
	struct policy_node n;
	int r = writable_parent(vm, &s->u.path, 0, &t, &n);
	if (r == -EBUSY)
		return -EEXIST;
	if (r < 0)
		return r;
	r = n.pinned ? refuse(EEXIST) : mkdirat(n.dirfd, n.name, s->u.path.mode & 01777);
	if (r == 0)
		mode_back(vm, n.dirfd, n.name, -1, S_IFDIR, s->u.path.mode);
	return entry_done(&n, r);
}

/* FIFOs, regular files and socket files, as for a user without CAP_MKNOD. */
int64_t sbx_hc_mknod(struct sbx_vm *vm, const struct sbx_slot *s)
{
	mode_t mode = s->u.path.mode, type = mode & S_IFMT;
	int dev = type == S_IFCHR || type == S_IFBLK;
	if (!dev && type != S_IFIFO && type != S_IFREG && type != S_IFSOCK)
		return -EINVAL;
	struct named t;
	struct policy_node n;
	struct stat st;
	int r = writable_parent(vm, &s->u.path, 0, &t, &n);
	if (r == -EBUSY)
		return -EEXIST;
	if (r < 0)
		return r;
	/* As Linux: EEXIST before a device's EPERM; never a device, whoever runs the monitor. */
	if (n.pinned)
		r = refuse(EEXIST);
	else if (t.slash)
		r = no_file_by_dir_name(&n);
	else if (dev)
		r = fstatat(n.dirfd, n.name, &st, AT_SYMLINK_NOFOLLOW) == 0 ? refuse(EEXIST)
									    : refuse(EPERM);
	else if ((r = mknodat(n.dirfd, n.name, type | (mode & 01777), 0)) == 0)
		mode_back(vm, n.dirfd, n.name, -1, type, mode);
	return entry_done(&n, r);
}

int sbx_path_bind(struct sbx_vm *vm, const struct sbx_path *a,
		  int (*bound)(void *ctx, uint64_t dev, uint64_t ino), void *ctx)
{
	struct named t;
	struct policy_node n;
	int r = writable_parent(vm, a, 0, &t, &n);
	if (r == -EBUSY)
		return -EADDRINUSE;
	if (r < 0)
		return r;
	/* The socket file itself, as Linux's bind makes it (srwxr-xr-x under a 022 umask); the
	 * socket is bound to an address of the sandbox's own, which that file names for it. */
	struct stat st;
	r = n.pinned ? refuse(EEXIST) : mknodat(n.dirfd, n.name, S_IFSOCK | 0777, 0);
	if (r == 0 && fstatat(n.dirfd, n.name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		r = -1;
	int e = errno;
	if (r == 0 && (r = bound(ctx, (uint64_t)st.st_dev, (uint64_t)st.st_ino)) < 0) {
		e = -r;
		unlinkat(n.dirfd, n.name, 0);
	}
	policy_node_release(&n);
	return r == 0 ? 0 : e == EEXIST ? -EADDRINUSE : -e;
}

int64_t sbx_hc_unlink(struct sbx_vm *vm, const struct sbx_slot *s)
{
	struct named t;
	struct policy_node n;
	int r = writable_parent(vm, &s->u.path, 0, &t, &n);
	if (r < 0)
		return r;
	return entry_done(
	    &n, n.pinned   ? refuse(EBUSY)
		: t.notdir ? refuse(ENOTDIR)
			   : unlinkat(n.dirfd, n.name, (int)(s->u.path.flags & AT_REMOVEDIR)));
}

int64_t sbx_hc_rename(struct sbx_vm *vm, const struct sbx_slot *s)
{
	struct named from, to;
	struct policy_node nf, nt;
	int r = writable_parent(vm, &s->u.path, 0, &from, &nf);
	if (r < 0)
		return r;
	r = writable_parent(vm, &s->u.path, 1, &to, &nt);
	if (r < 0) {
		policy_node_release(&nf);
		return r;
	}
	struct stat st;
	if (nf.mount != nt.mount)
		r = refuse(EXDEV);
	else if (nf.pinned || nt.pinned)
		r = refuse(EBUSY);
	else if (from.notdir || to.notdir ||
		 (to.slash && fstatat(nf.dirfd, nf.name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		  !S_ISDIR(st.st_mode)))
		r = refuse(ENOTDIR); /* only a directory takes a name ending in '/' */
	else
		r = renameat(nf.dirfd, nf.name, nt.dirfd, nt.name);
	policy_node_release(&nf);
	return entry_done(&nt, r);
}

int64_t sbx_hc_chdir(struct sbx_vm *vm, const struct sbx_slot *s)
{
	const struct sbx_path *a = &s->u.path;
	struct named p;
	if (a->path_len == 0) { /* fchdir */
		struct sbx_handle *h = sbx_fd_get(vm, a->dirfd);
		if (!h)
			return -EBADF;
		if (!h->gpath || h->obj == SBX_O_MEMFD)
			return -ENOTDIR;
		snprintf(p.g, sizeof(p.g), "%s", h->gpath);
		int r = classify(vm, &p, 1);
		if (r < 0)
			return r;
	} else {
		int r = guest_target(vm, a, 0, 1, &p);
		if (r < 0)
			return r;
	}
	p.walked = 0;
	for (;;) {
		if (p.vn.type != SBX_V_NONE) {
			if (!sbx_vfs_is_dir(p.vn.type))
				return -ENOTDIR;
			break;
		}
		if (p.t.kind == POLICY_NONE)
			return -ENOENT;
		if (p.t.kind == POLICY_VDIR)
			break;
		const struct policy_mount *m;
		int fd = policy_open(vm->cfg.policy, &p.t, POLICY_FOLLOW, O_PATH | O_DIRECTORY, 0,
				     NULL, NULL, &m);
		if (fd >= 0) {
			close(fd);
			break;
		}
		if (fd != -EXDEV)
			return fd;
		int r = walk_again(vm, &p, POLICY_FOLLOW);
		if (r < 0)
			return r;
	}
	snprintf(vm->proc.cwd, sizeof(vm->proc.cwd), "%s", p.g);
	return 0;
}

int64_t sbx_hc_getcwd(struct sbx_vm *vm, const struct sbx_slot *s)
{
	uint64_t len = strlen(vm->proc.cwd) + 1;
	if (s->u.rw.len < len)
		return -ERANGE;
	if (sbx_copy_to_guest(vm, s->u.rw.buf, vm->proc.cwd, len) < 0)
		return -EFAULT;
	return (int64_t)len;
}

/* access of a node of the virtual /dev or /proc. */
static int access_virtual(const struct named *p, unsigned mode)
{
	int t = p->vn.type;
	if (t == SBX_V_LNK_FD || t == SBX_V_LNK_EXE)
		return 0; /* a handle's object: its own rule was checked when it was opened */
	if ((mode & X_OK) && !sbx_vfs_is_dir(t))
		return -EACCES;
	if ((mode & W_OK) && (sbx_vfs_is_dir(t) || t >= SBX_V_CMDLINE))
		return -EACCES;
	return 0;
}

int64_t sbx_hc_access(struct sbx_vm *vm, const struct sbx_slot *s)
{
	const struct sbx_path *a = &s->u.path;
	unsigned mode = a->mode & 7;
	struct named p;
	int r = guest_target(vm, a, 0, !(a->flags & AT_SYMLINK_NOFOLLOW), &p);
	if (r < 0)
		return r;
	const struct policy_mount *m;
	int vdir, fd = -1;
	if (p.vn.type == SBX_V_NONE && p.t.kind != POLICY_VDIR)
		fd = open_path(vm, &p, (a->flags & AT_SYMLINK_NOFOLLOW) != 0, &m, &vdir);
	if (p.vn.type != SBX_V_NONE)
		return access_virtual(&p, mode);
	if (p.t.kind == POLICY_VDIR)
		return (mode & W_OK) ? -EROFS : 0;
	if (fd < 0)
		return fd;
	if ((mode & W_OK) && !m->rw) {
		close(fd);
		return -EROFS;
	}
	long rr = syscall(SYS_faccessat2, fd, "", mode,
			  AT_EMPTY_PATH | (a->flags & AT_EACCESS) | AT_SYMLINK_NOFOLLOW);
	int e = errno;
	close(fd);
	return rr < 0 ? -e : 0;
}

/* The object a metadata call names: a path (opened O_PATH beneath its mount) or, with an empty
 * path, a handle. Returns a host fd the caller closes if *owned, or -errno; *vdir for the root
 * and mount-point ancestors. */
static int meta_target(struct sbx_vm *vm, const struct sbx_path *a, int nofollow, int *rw,
		       int *owned, int *vdir)
{
	*owned = 0;
	*vdir = 0;
	if (a->path_len == 0) {
		struct sbx_handle *h = sbx_fd_get(vm, a->dirfd);
		if (!h)
			return -EBADF;
		*rw = h->writable && h->gpath; /* stdio is not a file the guest may change */
		if (h->kind == SBX_H_VDIR || h->kind == SBX_H_VFILE) {
			*vdir = 1;
			return -1;
		}
		return h->fd;
	}
	struct named p;
	int r = guest_target(vm, a, 0, !nofollow, &p);
	if (r < 0)
		return r;
	const struct policy_mount *m;
	int fd = -1;
	if (p.vn.type == SBX_V_NONE && p.t.kind != POLICY_VDIR)
		fd = open_path(vm, &p, nofollow, &m, vdir); /* may walk into a virtual node */
	if (p.t.kind == POLICY_VDIR || p.vn.type != SBX_V_NONE) {
		*vdir = 1;
		*rw = 0;
		return -1;
	}
	if (fd < 0)
		return fd;
	*rw = m->rw;
	*owned = 1;
	return fd;
}

/* The common shape of chmod and utimensat: find the target, refuse read-only mounts and
 * virtual directories, apply op to the fd (or, for a path, to its /proc/self/fd link). */
typedef int (*meta_op)(int fd, const char *proc_path, int owned, const void *ctx);

static int64_t meta_apply(struct sbx_vm *vm, const struct sbx_path *a, int nofollow, meta_op op,
			  const void *ctx)
{
	int rw, owned, vdir;
	int fd = meta_target(vm, a, nofollow, &rw, &owned, &vdir);
	if (vdir)
		return -EROFS;
	if (fd < 0)
		return fd;
	int r = -EROFS;
	if (rw) {
		char p[64];
		proc_fd_path(p, sizeof(p), fd);
		r = op(fd, p, owned, ctx) < 0 ? -errno : 0;
	}
	if (owned)
		close(fd);
	return r;
}

static int do_chmod(int fd, const char *proc_path, int owned, const void *ctx)
{
	/* Never setuid or setgid: a guest must not leave a privileged binary on the host. */
	mode_t mode = *(const uint32_t *)ctx & 01777;
	struct stat st;
	/* A symlink's own mode cannot be changed (fchmodat's AT_SYMLINK_NOFOLLOW), as Linux. */
	if (owned && fstat(fd, &st) == 0 && S_ISLNK(st.st_mode))
		return refuse(EOPNOTSUPP);
	return owned ? chmod(proc_path, mode) : fchmod(fd, mode);
}

int64_t sbx_hc_chmod(struct sbx_vm *vm, const struct sbx_slot *s)
{
	const struct sbx_path *a = &s->u.path;
	return meta_apply(vm, a, (a->flags & AT_SYMLINK_NOFOLLOW) != 0, do_chmod, &a->mode);
}

/* Another owner, as the host lets the monitor's user give it: the O_PATH descriptor's own
 * inode (a symlink's, for lchown), never a path. The host clears setuid and setgid bits as
 * it changes an owner, and the sandbox never sets them. */
static int do_chown(int fd, const char *proc_path, int owned, const void *ctx)
{
	const uint32_t *id = ctx;
	(void)proc_path;
	return owned ? fchownat(fd, "", id[0], id[1], AT_EMPTY_PATH) : fchown(fd, id[0], id[1]);
}

int64_t sbx_hc_chown(struct sbx_vm *vm, const struct sbx_slot *s)
{
	const struct sbx_path *a = &s->u.path;
	uint32_t id[2] = {a->mode, (uint32_t)a->buf};
	if (a->flags & ~(uint32_t)AT_SYMLINK_NOFOLLOW)
		return -EINVAL;
	return meta_apply(vm, a, (a->flags & AT_SYMLINK_NOFOLLOW) != 0, do_chown, id);
}

static int do_utimens(int fd, const char *proc_path, int owned, const void *ctx)
{
	const struct timespec *ts = ctx;
	struct stat st;
	if (!owned)
		return futimens(fd, ts);
	/* A symlink's own times (AT_SYMLINK_NOFOLLOW: shutil's copystat of a dangling link)
	 * through its O_PATH descriptor itself; the /proc link would follow it. */
	if (fstat(fd, &st) == 0 && S_ISLNK(st.st_mode))
		return utimensat(fd, "", ts, AT_EMPTY_PATH);
	return utimensat(AT_FDCWD, proc_path, ts, 0);
}

int64_t sbx_hc_utimens(struct sbx_vm *vm, const struct sbx_slot *s)
{
	const struct sbx_path *a = &s->u.path;
	struct timespec ts[2];
	if (a->buf && sbx_copy_from_guest(vm, ts, a->buf, sizeof(ts)) < 0)
		return -EFAULT;
	if (a->flags & ~(uint32_t)(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH))
		return -EINVAL;
	/* AT_SYMLINK_NOFOLLOW: a final symlink's own times (lutimes, shutil's copystat). */
	return meta_apply(vm, a, (a->flags & AT_SYMLINK_NOFOLLOW) != 0, do_utimens,
			  a->buf ? ts : NULL);
}

int64_t sbx_hc_statfs(struct sbx_vm *vm, const struct sbx_slot *s)
{
	const struct sbx_path *a = &s->u.path;
	struct statfs st;
	int rw, owned, vdir;
	int fd = meta_target(vm, a, 0, &rw, &owned, &vdir);
	if (vdir) {
		memset(&st, 0, sizeof(st));
		st.f_type = 0x01021994; /* TMPFS_MAGIC: an empty, read-only directory tree */
		st.f_bsize = 4096;
		st.f_namelen = 255;
		st.f_frsize = 4096;
		st.f_flags = ST_RDONLY;
	} else if (fd < 0) {
		return fd;
	} else {
		int r = fstatfs(fd, &st);
		int e = errno;
		if (owned)
			close(fd);
		if (r < 0)
			return -e;
		if (!rw)
			st.f_flags |= ST_RDONLY;
	}
	_Static_assert(sizeof(st) == 120, "struct statfs is the x86-64 Linux one");
	if (a->buf_len < sizeof(st))
		return -EFAULT;
	return sbx_copy_to_guest(vm, a->buf, &st, sizeof(st));
}

int64_t sbx_hc_symlink(struct sbx_vm *vm, const struct sbx_slot *s)
{
	const struct sbx_path *a = &s->u.path;
	char text[SBX_PATH_MAX];
	int r = guest_string(vm, a->path, a->path_len, text);
	if (r < 0)
		return r;
	/* The link text is stored verbatim; resolving it later stays beneath the mount. */
	struct named t;
	struct policy_node n;
	r = writable_parent(vm, a, 1, &t, &n);
	if (r == -EBUSY)
		return -EEXIST;
	if (r < 0)
		return r;
	return entry_done(&n, n.pinned	? refuse(EEXIST)
			      : t.slash ? no_file_by_dir_name(&n)
					: symlinkat(text, n.dirfd, n.name));
}

int64_t sbx_hc_link(struct sbx_vm *vm, const struct sbx_slot *s)
{
	const struct sbx_path *a = &s->u.path;
	struct named from, to;
	struct policy_node nf, nt;
	if (a->flags & ~(uint32_t)(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH))
		return -EINVAL;
	int r = writable_parent(vm, a, 0, &from, &nf);
	if (r < 0)
		return r == -EBUSY ? -EPERM : r;
	r = writable_parent(vm, a, 1, &to, &nt);
	if (r < 0) {
		policy_node_release(&nf);
		return r == -EBUSY ? -EEXIST : r;
	}
	if (nt.pinned) {
		r = refuse(EEXIST);
	} else if (from.notdir) {
		r = refuse(ENOTDIR);
	} else if (to.slash) {
		r = no_file_by_dir_name(&nt);
	} else if (a->flags & AT_SYMLINK_FOLLOW) {
		/* Follow the old path beneath the mount here; the host's linkat must never follow
		 * a guest-made symlink itself. What it reaches must be of the new name's mount. */
		const struct policy_mount *m;
		int vdir;
		from.walked = 0; /* its last component is followed now: walked anew if need be */
		int fd = open_path(vm, &from, 0, &m, &vdir);
		if (fd < 0) {
			r = refuse(vdir ? EPERM : -fd);
		} else {
			char p[64];
			proc_fd_path(p, sizeof(p), fd);
			r = m != nt.mount
				? refuse(EXDEV)
				: linkat(AT_FDCWD, p, nt.dirfd, nt.name, AT_SYMLINK_FOLLOW);
			int e = errno;
			close(fd);
			errno = e;
		}
	} else if (nf.mount != nt.mount || nf.pinned) {
		/* A pinned name is a mount's own object (or a directory): never of this mount. */
		r = refuse(EXDEV);
	} else {
		r = linkat(nf.dirfd, nf.name, nt.dirfd, nt.name, 0);
	}
	policy_node_release(&nf);
	return entry_done(&nt, r);
}
