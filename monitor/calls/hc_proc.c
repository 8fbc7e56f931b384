/* Process calls: FORK, WAIT, PKILL and PGRP go to the process tree (sandbox/procs.c, through
 * hooks.proc); EXECVE is served here: the file is found through the policy, checked, and its
 * image replaces the process's in the same VM (core/boot.c, sbx_vm_reimage). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "calls.h"

/* Linux's limits: one string at most MAX_ARG_STRLEN, all of them at most a quarter of the
 * 8 MiB stack; a script's interpreter line at most BINPRM_BUF_SIZE, four levels of them. */
#define SBX_ARG_STRLEN (128u << 10)
#define SBX_ARG_TOTAL (2u << 20)
#define SBX_SHEBANG_MAX 256
#define SBX_SHEBANG_DEPTH 4
#define SBX_AT_SYMLINK_NOFOLLOW 0x100
#define SBX_AT_EMPTY_PATH 0x1000

int64_t sbx_hc_proc(struct sbx_vm *vm, const struct sbx_slot *s)
{
	/* Each waits or stops this vCPU: only its own thread may serve it. */
	if (!(s->pad & SBX_SLOT_OWN))
		return -EINVAL;
	return vm->hooks.proc ? vm->hooks.proc(vm, s) : -ENOSYS;
}

/* A vector of strings the program names (argv, envp), copied into one block: the pointers
 * first, then the bytes. NULL vector: none. */
struct strvec {
	char **v;
	size_t n, bytes;
};

static int read_vector(struct sbx_vm *vm, uint64_t root, uint64_t va, struct strvec *out,
		       size_t *total)
{
	memset(out, 0, sizeof(*out));
	size_t cap = 16;
	out->v = calloc(cap + 1, sizeof(char *));
	if (!out->v)
		return -ENOMEM;
	char *buf = malloc(SBX_ARG_STRLEN);
	if (!buf)
		return -ENOMEM;
	int r = 0;
	for (uint64_t i = 0; va; i++) {
		uint64_t p;
		if (sbx_gva_read(vm, root, va + 8 * i, &p, 8) < 0) {
			r = -EFAULT;
			break;
		}
		if (!p)
			break;
		r = sbx_gva_string(vm, root, p, buf, SBX_ARG_STRLEN);
		if (r < 0) {
			r = r == -ENAMETOOLONG ? -E2BIG : r;
			break;
		}
		size_t len = strlen(buf) + 1;
		*total += len + 8;
		if (*total > SBX_ARG_TOTAL) {
			r = -E2BIG;
			break;
		}
		if (out->n == cap) {
			char **nv = realloc(out->v, (2 * cap + 1) * sizeof(char *));
			if (!nv) {
				r = -ENOMEM;
				break;
			}
			out->v = nv;
			cap *= 2;
		}
		if (!(out->v[out->n] = strdup(buf))) {
			r = -ENOMEM;
			break;
		}
		out->v[++out->n] = NULL;
	}
	free(buf);
	return r;
}

static void free_vector(struct strvec *v)
{
	for (size_t i = 0; v->v && i < v->n; i++)
		free(v->v[i]);
	free(v->v);
	memset(v, 0, sizeof(*v));
}

/* argv with `first` (1 or 2 strings) in front and argv[0] replaced by `path`: a script's
 * interpreter runs as `interp [arg] path argv[1]...`. */
static int prepend(struct strvec *v, const char *interp, const char *arg, const char *path)
{
	size_t add = arg ? 3 : 2, keep = v->n ? v->n - 1 : 0;
	char **nv = calloc(add + keep + 1, sizeof(char *));
	if (!nv)
		return -ENOMEM;
	nv[0] = strdup(interp);
	if (arg)
		nv[1] = strdup(arg);
	nv[add - 1] = strdup(path);
	int bad = !nv[0] || !nv[add - 1] || (arg && !nv[1]);
	for (size_t i = 0; i < keep; i++)
		nv[add + i] = v->v[i + 1];
	if (v->n)
		free(v->v[0]);
	free(v->v);
	v->v = nv;
	v->n = add + keep;
	return bad ? -ENOMEM : 0;
}

/* The interpreter line of a script: "#!interp [one argument]", as Linux splits it. */
static int shebang(const char *buf, size_t n, char *interp, size_t ilen, char *arg, size_t alen,
		   int *has_arg)
{
	size_t end = 2;
	while (end < n && buf[end] != '\n')
		end++;
	if (end == n && n == SBX_SHEBANG_MAX)
		return -ENOEXEC; /* the line does not end within the buffer */
	size_t i = 2;
	while (i < end && (buf[i] == ' ' || buf[i] == '\t'))
		i++;
	size_t s = i;
	while (i < end && buf[i] != ' ' && buf[i] != '\t')
		i++;
	if (i == s || i - s >= ilen)
		return -ENOEXEC;
	memcpy(interp, buf + s, i - s);
	interp[i - s] = 0;
	while (i < end && (buf[i] == ' ' || buf[i] == '\t'))
		i++;
	size_t e = end;
	while (e > i && (buf[e - 1] == ' ' || buf[e - 1] == '\t' || buf[e - 1] == '\r'))
		e--;
	*has_arg = e > i;
	if (e - i >= alen)
		return -ENOEXEC;
	memcpy(arg, buf + i, e - i);
	arg[e - i] = 0;
	return 0;
}

/* The sandbox's first program, which the guest sees at its exe path (and /proc/self/exe)
 * though no mount shows it: the file sandbox-run was given (Landlock lets the monitor read
 * it). -ENOENT for any other path. */
static int first_program(struct sbx_vm *vm, int32_t dirfd, const char *path,
			 char gpath[POLICY_PATH_MAX])
{
	char norm[POLICY_PATH_MAX];
	if (!vm->host.prog[0] || (path[0] != '/' && dirfd != SBX_AT_FDCWD) ||
	    policy_normalize(vm->proc.cwd, path, strlen(path), norm, sizeof(norm)) < 0)
		return -ENOENT;
	if (strcmp(norm, "/proc/self/exe") != 0 && strcmp(norm, vm->proc.image.exe_path) != 0)
		return -ENOENT;
	int fd = open(vm->host.prog, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -ENOENT;
	snprintf(gpath, POLICY_PATH_MAX, "%s", vm->proc.image.exe_path);
	return fd;
}

/* An executable file: regular, with an execute bit, readable by the monitor. */
static int exec_file(struct sbx_vm *vm, int32_t dirfd, const char *path, int flags,
		     char gpath[POLICY_PATH_MAX], int *first)
{
	int fd;
	*first = 0;
	if (!path[0] && (flags & SBX_AT_EMPTY_PATH)) {
		struct sbx_handle *h = sbx_fd_get(vm, dirfd);
		if (!h)
			return -EBADF;
		if (h->kind != SBX_H_HOST || !h->gpath)
			return -EACCES;
		snprintf(gpath, POLICY_PATH_MAX, "%s", h->gpath);
		fd = fcntl(h->fd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			return -errno;
	} else {
		fd = sbx_path_open_ro(vm, dirfd, path, !(flags & SBX_AT_SYMLINK_NOFOLLOW), gpath);
		if (fd == -ENOENT && (fd = first_program(vm, dirfd, path, gpath)) >= 0)
			*first = 1;
		if (fd < 0)
			return fd;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !(st.st_mode & 0111)) {
		close(fd);
		return -EACCES;
	}
	return fd;
}

static void audit_exec(struct sbx_vm *vm, const char *gpath, const struct strvec *argv, int64_t ret)
{
	FILE *f = vm->cfg.audit;
	if (!f)
		return;
	flockfile(f); /* one line, whole, whatever the other processes write meanwhile */
	sbx_audit_begin(f, "execve");
	fprintf(f, ",\"pid\":%u,\"guest_path\":", vm->proc.pid);
	sbx_audit_string(f, gpath);
	fputs(",\"argv\":[", f);
	for (size_t i = 0; i < argv->n; i++) {
		if (i)
			fputc(',', f);
		sbx_audit_string(f, argv->v[i]);
	}
	fprintf(f, "],\"decision\":\"%s\",\"result\":%lld}\n",
		ret == -EACCES || ret == -ENOENT || ret == -EPERM ? "deny" : "allow",
		(long long)ret);
	fflush(f);
	funlockfile(f);
}

/* The label reports and the summary use for this process from now on. */
static void set_label(struct sbx_vm *vm, const struct strvec *argv, const char *gpath)
{
	char l[512];
	size_t o = (size_t)snprintf(l, sizeof(l), "%s (pid %u)", gpath, vm->proc.pid);
	for (size_t i = 1; i < argv->n && o + 2 < sizeof(l); i++)
		o +=
		    (size_t)snprintf(l + o, sizeof(l) - o, "%s%s", i == 1 ? ": " : " ", argv->v[i]);
	free(vm->proc.exec_args);
	vm->proc.exec_args = strdup(l);
	vm->cfg.name = vm->proc.exec_args;
	vm->cfg.prog = vm->proc.exec_path;
}

int64_t sbx_hc_execve(struct sbx_vm *vm, const struct sbx_slot *s)
{
	if (!(s->pad & SBX_SLOT_OWN))
		return -EINVAL;
	int32_t dirfd = (int32_t)s->u.a[0];
	int flags = (int)(s->u.a[4] & ~(uint64_t)(SBX_EXECVE_CHECK | SBX_EXECVE_FINAL));
	int check = !!(s->u.a[4] & SBX_EXECVE_CHECK), final = !!(s->u.a[4] & SBX_EXECVE_FINAL);
	if (s->u.a[4] > UINT32_MAX || (check && final) ||
	    (flags & ~(SBX_AT_SYMLINK_NOFOLLOW | SBX_AT_EMPTY_PATH)))
		return -EINVAL;
	/* A process with threads checks first from any vCPU; its kernel then ends the other
	 * threads and makes the call itself from vCPU 0, where the new image runs, once they are
	 * gone (their vCPUs stop at the image's change). */
	if (!check && sbx_threads_count(vm) && sbx_thread_current() != 0) {
		sbx_log(vm, 1,
			"guest ABI violation: EXECVE from vCPU %d: the kernel hands it to vCPU 0",
			sbx_thread_current());
		return -EINVAL;
	}
	if (vm->exec) {
		sbx_log(vm, 1, "execve in a repeated run (serve, fuzz) is not supported yet");
		return -ENOSYS;
	}
	uint64_t root = sbx_guest_root(vm);
	char *path = malloc(SBX_PATH_MAX);
	if (!path)
		return -ENOMEM;
	struct strvec argv = {0}, envp = {0};
	size_t total = 0;
	int64_t r = sbx_gva_string(vm, root, s->u.a[1], path, SBX_PATH_MAX);
	if (r == 0)
		r = read_vector(vm, root, s->u.a[2], &argv, &total);
	if (r == 0)
		r = read_vector(vm, root, s->u.a[3], &envp, &total);
	char gpath[POLICY_PATH_MAX];
	gpath[0] = 0;
	/* Linux names the process after the file execve was given, a script's own name and not
	 * its interpreter's (pgrep, killall, ps -C find it so). */
	char comm[16] = "";
	if (r == 0) {
		const char *base = strrchr(path, '/');
		snprintf(comm, sizeof(comm), "%.15s", base ? base + 1 : path);
	}
	int fd = -1, first = 0;
	if (r == 0 && !path[0] && !(flags & SBX_AT_EMPTY_PATH))
		r = -ENOENT;
	/* A script names its interpreter, which may be a script too, up to four deep. */
	for (int depth = 0; r == 0; depth++) {
		fd = exec_file(vm, dirfd, path, flags, gpath, &first);
		if (fd < 0) {
			r = fd;
			break;
		}
		char head[SBX_SHEBANG_MAX];
		ssize_t n = pread(fd, head, sizeof(head), 0);
		if (n >= 4 && memcmp(head, "\177ELF", 4) == 0)
			break;
		if (n < 2 || head[0] != '#' || head[1] != '!' || depth == SBX_SHEBANG_DEPTH) {
			r = depth == SBX_SHEBANG_DEPTH ? -ELOOP : -ENOEXEC;
			break;
		}
		char interp[SBX_SHEBANG_MAX], arg[SBX_SHEBANG_MAX];
		int has_arg;
		if ((r = shebang(head, (size_t)n, interp, sizeof(interp), arg, sizeof(arg),
				 &has_arg)) < 0 ||
		    (r = prepend(&argv, interp, has_arg ? arg : NULL, path)) < 0)
			break;
		close(fd);
		fd = -1;
		snprintf(path, SBX_PATH_MAX, "%s", interp);
		dirfd = SBX_AT_FDCWD;
		flags = 0;
	}
	if (r == 0 && check) {
		char err[512];
		r = sbx_vm_exec_check(vm, fd, gpath, argv.v, envp.v, err, sizeof(err));
		if (r < 0)
			sbx_log(vm, 1, "execve %s: %s", gpath, err);
	} else if (r == 0) {
		char err[512];
		int lost = 0;
		/* What the boot page holds of the process, not of its image: carried over. */
		const struct sbx_bootinfo *ob = sbx_gptr(vm, SBX_BOOTINFO_ADDR, sizeof(*ob));
		int32_t nice = ob ? ob->nice : 0;
		uint32_t ioprio = ob ? ob->ioprio : 0;
		uint64_t affinity = ob ? ob->affinity : 0;
		uint32_t persona = ob ? ob->persona : 0;
		uint32_t pdeathsig = ob ? ob->pdeathsig : 0;
		/* Their windows, which the new image does not keep, must not run meanwhile. A
		 * thread ends at its next request, which takes ring_lock. */
		int released = sbx_ring_release(vm);
		if (!released && sbx_threads_count(vm))
			r = sbx_fail(err, sizeof(err), -ENOSYS,
				     "its threads' vCPUs cannot be stopped from here");
		else
			sbx_threads_stop(vm);
		sbx_ring_reacquire(vm, released);
		if (r == 0 && vm->hooks.exec_begin)
			vm->hooks.exec_begin(vm);
		if (r == 0)
			r = sbx_vm_reimage(vm, fd, gpath, argv.v, envp.v, &lost, err, sizeof(err));
		if (r < 0 && !lost)
			sbx_threads_keep(vm);
		if (r < 0 && (lost || final))
			sbx_vm_kill(vm, SBX_END_SIGNAL, 128 + 9, 9,
				    "execve of %s failed after %s: %s", gpath,
				    lost ? "the old image was gone" : "the other threads had ended",
				    err);
		else if (r < 0)
			sbx_log(vm, 1, "execve %s: %s", gpath, err);
		if (r == 0) {
			struct sbx_bootinfo *b = sbx_gptr(vm, SBX_BOOTINFO_ADDR, sizeof(*b));
			b->umask = (uint32_t)s->u.a[5] & 0777;
			b->nice = nice < -20 ? -20 : nice > 19 ? 19 : nice;
			b->persona = persona & ~0xffu;
			b->ioprio = ioprio;
			b->affinity = affinity;
			b->pdeathsig = pdeathsig <= 64 ? pdeathsig : 0;
			if (comm[0])
				memcpy(b->comm, comm, sizeof(comm));
			sbx_fd_exec(vm);
			/* The symbols of the sandbox's first program are on the host; of another,
			 * only by the guest's paths. */
			vm->proc.other_image = !first;
			set_label(vm, &argv, gpath);
			if (vm->hooks.execed)
				vm->hooks.execed(vm);
		}
	}
	/* A check that passed is followed by the execve itself, audited then. */
	if (!check || r < 0)
		audit_exec(vm, gpath[0] ? gpath : path, &argv, r);
	if (final && r < 0 && !atomic_load(&vm->life.stopping))
		sbx_vm_kill(vm, SBX_END_SIGNAL, 128 + 9, 9,
			    "execve of %s failed after the other threads had ended: %s",
			    gpath[0] ? gpath : path, strerror((int)-r));
	if (fd >= 0)
		close(fd);
	free(path);
	free_vector(&argv);
	free_vector(&envp);
	return r;
}
