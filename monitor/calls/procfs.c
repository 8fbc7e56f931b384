/* The generated files of the virtual /proc (vfs.c finds them): a process's status, stat, comm,
 * cmdline, environ and maps, made anew at each read from the process as it is then, as Linux's
 * seq files are (the machine's files are procfs_sys.c's). The process is the caller or, by its pid,
 * another of the sandbox's, whose VM hooks.procs_with lends under the tree's lock (so it cannot go
 * away meanwhile); of another only what its boot page, stack and the monitor's own records say is
 * shown (not its maps, whose shared windows are behind a lock the tree's lock must not wait
 * for, nor its descriptors). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "calls.h"

#define PROCFS_MAX_TEXT (1u << 20) /* a generated file is cut here (4096 mappings fit) */
#define PROCFS_ARGS_MAX (128u << 10)
#define PROCFS_HZ 100 /* USER_HZ: the ticks of stat's times */

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
		if (t->cap >= PROCFS_MAX_TEXT) {
			t->buf[t->len] = 0; /* cut: the rest is dropped */
			return;
		}
		size_t cap = t->cap * 2 > PROCFS_MAX_TEXT ? PROCFS_MAX_TEXT : t->cap * 2;
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
	if (n > PROCFS_MAX_TEXT - 1 - t->len)
		n = PROCFS_MAX_TEXT - 1 - t->len;
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

/* The process's name: its boot page's (the last component of the path execve ran, or what its
 * main thread set with PR_SET_NAME), which the guest may have left without its NUL; a kernel
 * older than ABI 1.17 (a snapshot's) keeps none there: its image's file name then. */
static void comm_of(struct sbx_vm *vm, char out[16])
{
	const char *c =
	    sbx_gptr_ro(vm, SBX_BOOTINFO_ADDR + offsetof(struct sbx_bootinfo, comm), 16);
	memset(out, 0, 16);
	if (c)
		memcpy(out, c, 15);
	if (out[0])
		return;
	const char *exe = vm->proc.image.exe_path;
	size_t n = strnlen(exe, sizeof(vm->proc.image.exe_path) - 1);
	const char *base = exe + n;
	while (base > exe && base[-1] != '/')
		base--;
	snprintf(out, 16, "%.*s", (int)(exe + n - base), base);
}

struct vm_sizes {
	uint64_t size, stk, exe, data; /* kB, as status shows them */
	uint64_t code_lo, code_hi;     /* the program's text, for stat */
};

static void vm_sizes(struct sbx_vm *vm, struct vm_sizes *z)
{
	memset(z, 0, sizeof(*z));
	struct sbx_vma *v;
	unsigned n = sbx_guest_vmas(vm, &v);
	for (unsigned i = 0; i < n; i++) {
		uint64_t kb = (v[i].end - v[i].start) >> 10;
		z->size += kb;
		if (v[i].kind == SBX_VMA_STACK) {
			z->stk += kb;
		} else if ((v[i].prot & SBX_PROT_EXEC) && v[i].kind == SBX_VMA_ELF) {
			z->exe += kb;
			if (!z->code_lo) {
				z->code_lo = v[i].start;
				z->code_hi = v[i].end;
			}
		} else if ((v[i].prot & SBX_PROT_WRITE) && v[i].kind != SBX_VMA_FILE) {
			z->data += kb;
		}
	}
	free(v);
}

static void gen_status(struct sbx_vm *vm, struct text *t, int self)
{
	char comm[16], name[32];
	comm_of(vm, comm);
	/* Escaped as Linux's: a name with a newline must not make lines of its own. */
	size_t o = 0;
	for (const char *c = comm; *c; c++) {
		if (*c == '\n' || *c == '\\')
			name[o++] = '\\';
		name[o++] = *c == '\n' ? 'n' : *c;
	}
	name[o] = 0;
	uint32_t uid = vm->host.uid, gid = vm->host.gid, pid = vm->proc.pid;
	put(t, "Name:\t%s\nUmask:\t0022\nState:\t%s\nTgid:\t%u\nNgid:\t0\nPid:\t%u\n", name,
	    self		     ? "R (running)"
	    : sbx_vm_job_stopped(vm) ? "T (stopped)"
				     : "S (sleeping)",
	    pid, pid);
	put(t, "PPid:\t%u\nTracerPid:\t0\nUid:\t%u\t%u\t%u\t%u\nGid:\t%u\t%u\t%u\t%u\n",
	    vm->proc.ppid, uid, uid, uid, uid, gid, gid, gid, gid);
	put(t, "FDSize:\t%d\nGroups:\t\n", SBX_MAX_FDS);
	struct vm_sizes z;
	vm_sizes(vm, &z);
	uint64_t rss = sbx_mem_ram_bytes(vm) >> 10;
	if (z.size)
		put(t,
		    "VmPeak:\t%8" PRIu64 " kB\nVmSize:\t%8" PRIu64 " kB\nVmHWM:\t%8" PRIu64
		    " kB\nVmRSS:\t%8" PRIu64 " kB\nVmData:\t%8" PRIu64 " kB\nVmStk:\t%8" PRIu64
		    " kB\nVmExe:\t%8" PRIu64 " kB\n",
		    z.size, z.size, rss, rss, z.data, z.stk, z.exe);
	put(t, "Threads:\t%u\nSigQ:\t0/0\n", 1 + sbx_threads_live(vm));
}

/* Where the initial stack's argument or environment strings lie: [*first, *end), as Linux's
 * arg_start..arg_end, env_start..env_end; found from the initial stack (argc, argv[], NULL,
 * envp[], NULL). 0, or -1 when the stack no longer says. */
static int strings_span(struct sbx_vm *vm, int environ, uint64_t *first, uint64_t *end)
{
	uint64_t sp = vm->proc.image.entry_rsp, argc, n, last;
	if (sbx_copy_from_guest(vm, &argc, sp, 8) < 0 || argc > PROCFS_ARGS_MAX)
		return -1;
	uint64_t at = environ ? sp + 8 * (argc + 2) : sp + 8;
	n = argc;
	if (environ) {
		uint64_t p = 0;
		for (n = 0;
		     n < PROCFS_ARGS_MAX && sbx_copy_from_guest(vm, &p, at + 8 * n, 8) == 0 && p;
		     n++)
			;
	}
	if (n == 0 || sbx_copy_from_guest(vm, first, at, 8) < 0 ||
	    sbx_copy_from_guest(vm, &last, at + 8 * (n - 1), 8) < 0 || last < *first ||
	    last - *first >= PROCFS_ARGS_MAX)
		return -1;
	uint64_t max = PROCFS_ARGS_MAX - (last - *first);
	const char *l = sbx_gptr_ro(vm, last, 1);
	if (!sbx_gptr_ro(vm, *first, last - *first) || !l)
		return -1;
	/* The last string's end, inside guest RAM: sbx_gptr_ro checks each byte. */
	uint64_t len = 0;
	while (len < max && sbx_gptr_ro(vm, last + len, 1) && l[len])
		len++;
	*end = last + len + 1;
	return 0;
}

/* Linux's cmdline and environ: the bytes of the strings as they are now in the program's memory,
 * from the first one to the end of the last one. ASan reads its options from environ, before
 * the C library is up. */
static void gen_strings(struct sbx_vm *vm, struct text *t, int environ)
{
	uint64_t first, end;
	if (strings_span(vm, environ, &first, &end) < 0)
		return;
	char *b = malloc(end - first);
	if (b && sbx_copy_from_guest(vm, b, first, end - first) == 0)
		put_bytes(t, b, end - first); /* NULs inside are the strings' own */
	free(b);
}

/* Linux's 52 fields; what the sandbox does not keep (faults, signals, scheduling) is 0, as
 * Linux shows it for a process that never had any. */
static void gen_stat(struct sbx_vm *vm, struct text *t, int self)
{
	char comm[16];
	comm_of(vm, comm);
	const struct sbx_bootinfo *b = sbx_gptr_ro(vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	int32_t nice = b ? b->nice : 0;
	nice = nice < -20 ? -20 : nice > 19 ? 19 : nice;
	struct vm_sizes z;
	vm_sizes(vm, &z);
	uint64_t ticks = (uint64_t)sbx_process_cpu_ns(vm) / (1000000000u / PROCFS_HZ);
	uint64_t cticks = b ? b->children_cpu_ns / (1000000000u / PROCFS_HZ) : 0;
	int64_t start = (int64_t)(vm->proc.start_ns / (1000000000ll / PROCFS_HZ));
	uint64_t a0 = 0, a1 = 0, e0 = 0, e1 = 0;
	strings_span(vm, 0, &a0, &a1);
	strings_span(vm, 1, &e0, &e1);
	put(t,
	    "%u (%s) %c %u %u %u 0 -1 4194560 0 0 0 0 %" PRIu64 " 0 %" PRIu64
	    " 0 %d %d %u 0 %" PRId64 " %" PRIu64 " %" PRIu64 " 18446744073709551615 %" PRIu64
	    " %" PRIu64 " %" PRIu64,
	    vm->proc.pid, comm,
	    self		     ? 'R'
	    : sbx_vm_job_stopped(vm) ? 'T'
				     : 'S',
	    vm->proc.ppid, vm->proc.pgid, vm->proc.sid, ticks, cticks, 20 + nice, nice,
	    1 + sbx_threads_live(vm), start, z.size << 10,
	    (uint64_t)(sbx_mem_ram_bytes(vm) / SBX_PAGE_SIZE), z.code_lo, z.code_hi,
	    vm->proc.image.entry_rsp);
	put(t,
	    " 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
	    " 0\n",
	    a0, a1, e0, e1);
}

static void gen_comm(struct sbx_vm *vm, struct text *t)
{
	char comm[16];
	comm_of(vm, comm);
	put(t, "%s\n", comm);
}

struct gen_ctx {
	int type, self;
	struct text *t;
};

/* Pid 1, the monitor's init, the first process's parent: a process asleep that the sandbox
 * started at its clock's start, with no arguments to show (a kernel thread's empty cmdline),
 * named as the sandbox is. */
static void gen_init(struct gen_ctx *g)
{
	switch (g->type) {
	case SBX_V_STAT:
		put(g->t, "1 (sandbox) S 0 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 0 0 0 "
			  "18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 "
			  "0 0\n");
		break;
	case SBX_V_STATUS:
		put(g->t, "Name:\tsandbox\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t1\nNgid:\t0\n"
			  "Pid:\t1\nPPid:\t0\nTracerPid:\t0\nThreads:\t1\n");
		break;
	case SBX_V_COMM:
		put(g->t, "sandbox\n");
		break;
	}
}

static void gen_one(struct sbx_vm *vm, void *arg)
{
	struct gen_ctx *g = arg;
	switch (g->type) {
	case SBX_V_MAPS:
		gen_maps(vm, g->t);
		break;
	case SBX_V_STATUS:
		gen_status(vm, g->t, g->self);
		break;
	case SBX_V_STAT:
		gen_stat(vm, g->t, g->self);
		break;
	case SBX_V_COMM:
		gen_comm(vm, g->t);
		break;
	case SBX_V_CMDLINE:
	case SBX_V_ENVIRON:
		gen_strings(vm, g->t, g->type == SBX_V_ENVIRON);
		break;
	case SBX_V_LNK_EXE: /* bounded: an execve may be rewriting it */
		put(g->t, "%.*s", (int)sizeof(vm->proc.image.exe_path) - 1,
		    vm->proc.image.exe_path);
		break;
	}
}

uint32_t sbx_procfs_path_pid(struct sbx_vm *vm, const char *gpath)
{
	if (strncmp(gpath, "/proc/", 6) != 0)
		return vm->proc.pid;
	const char *c = gpath + 6;
	uint64_t pid = 0;
	size_t n = 0;
	for (; c[n] >= '0' && c[n] <= '9' && n < 8; n++)
		pid = pid * 10 + (uint64_t)(c[n] - '0');
	return n && (c[n] == '/' || !c[n]) && c[0] != '0' ? (uint32_t)pid : vm->proc.pid;
}

int sbx_procfs_exists(struct sbx_vm *vm, uint32_t pid)
{
	if (pid == vm->proc.pid || pid == 1)
		return 1;
	return pid && vm->hooks.procs_with && vm->hooks.procs_with(vm, pid, NULL, NULL) == 0;
}

/* Pid 1 is the monitor's init unless a process has it (a snapshot of ABI 1.16 or older
 * restored: its first process was 1). */
static int is_init(struct sbx_vm *vm, uint32_t pid)
{
	return pid == 1 && vm->proc.pid != 1 &&
	       !(vm->hooks.procs_with && vm->hooks.procs_with(vm, 1, NULL, NULL) == 0);
}

int sbx_procfs_text(struct sbx_vm *vm, int type, uint32_t pid, char **text, size_t *len)
{
	struct text t = {malloc(4096), 0, 4096};
	if (!t.buf)
		return -ENOMEM;
	t.buf[0] = 0;
	struct gen_ctx g = {type, pid == vm->proc.pid, &t};
	int r = 0;
	if (type >= SBX_V_CPUINFO && type <= SBX_V_UPTIME) {
		free(t.buf);
		return sbx_procfs_sys(vm, type, text, len);
	}
	if (!sbx_procfs_shown(vm, pid, type))
		r = -EACCES;
	else if (g.self)
		gen_one(vm, &g);
	else if (is_init(vm, pid))
		gen_init(&g);
	else if (!vm->hooks.procs_with || vm->hooks.procs_with(vm, pid, gen_one, &g) < 0)
		r = -ESRCH; /* it ended since it was opened: Linux's read gives ESRCH too */
	if (r < 0 || !t.buf) {
		free(t.buf);
		return r < 0 ? r : -ENOMEM;
	}
	*text = t.buf;
	*len = t.len;
	return 0;
}

int sbx_procfs_shown(struct sbx_vm *vm, uint32_t pid, int type)
{
	if (pid == vm->proc.pid)
		return 1;
	if (is_init(vm, pid))
		return type == SBX_V_STAT || type == SBX_V_STATUS || type == SBX_V_COMM ||
		       type == SBX_V_CMDLINE;
	return type != SBX_V_MAPS && type != SBX_V_DIR_FD && type != SBX_V_LNK_FD;
}
