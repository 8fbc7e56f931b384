/* --core FILE: an ELF core file of the crashed guest that gdb reads with the program's own ELF:
 * PT_NOTE with NT_PRSTATUS (the faulting registers), NT_PRPSINFO, NT_AUXV and NT_FILE (the
 * program's and its shared objects' file-backed ranges, from the link map), then one PT_LOAD
 * per mapping of the kernel's table, read by virtual address through the page tables (pages
 * that are not mapped, or that the host never held, stay holes in the file: zeros). Without
 * the kernel's table, one PT_LOAD per run of touched RAM at its identity address. Written to a
 * temporary name and renamed, so a partial file never remains. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/procfs.h>
#include <unistd.h>

#include "report.h"
#include "vm.h"

#define MAX_LOADS 512

struct note_buf {
	uint8_t *p;
	size_t len, cap;
};

static int note_add(struct note_buf *b, uint32_t type, const void *desc, uint32_t size)
{
	size_t need = 12 + 8 + ((size + 3) & ~3u);
	if (b->len + need > b->cap) {
		size_t cap = (b->cap + need) * 2;
		uint8_t *n = realloc(b->p, cap);
		if (!n)
			return -ENOMEM;
		b->p = n;
		b->cap = cap;
	}
	Elf64_Nhdr h = {.n_namesz = 5, .n_descsz = size, .n_type = type};
	memcpy(b->p + b->len, &h, sizeof(h));
	memcpy(b->p + b->len + 12, "CORE\0\0\0\0", 8);
	memset(b->p + b->len + 20, 0, (size + 3) & ~3u);
	memcpy(b->p + b->len + 20, desc, size);
	b->len += need;
	return 0;
}

/* The auxv the loader built, found again past argv and envp on the initial stack. */
static size_t initial_auxv(struct sbx_vm *vm, uint64_t root, uint64_t *out, size_t max)
{
	uint64_t p = vm->proc.image.entry_rsp, v, argc;
	if (sbx_gva_read(vm, root, p, &argc, 8) < 0 || argc > 1 << 20)
		return 0;
	p += 8 * (argc + 2); /* argc, argv[], NULL */
	for (int i = 0; i < 1 << 16; i++, p += 8)
		if (sbx_gva_read(vm, root, p, &v, 8) < 0 || v == 0)
			break;
	p += 8;
	size_t n = 0;
	while (n + 2 <= max && sbx_gva_read(vm, root, p, out + n, 16) == 0) {
		n += 2;
		p += 16;
		if (out[n - 2] == AT_NULL)
			break;
	}
	return n;
}

static void fill_prstatus(const struct sbx_vm *vm, const struct sbx_fault *f,
			  struct elf_prstatus *ps)
{
	memset(ps, 0, sizeof(*ps));
	ps->pr_info.si_signo = f->signal;
	ps->pr_cursig = (short)f->signal;
	ps->pr_pid = (int)vm->proc.pid;
	ps->pr_ppid = (int)vm->proc.ppid;
	ps->pr_pgrp = (int)vm->proc.pgid;
	ps->pr_sid = (int)vm->proc.sid;
	/* user_regs_struct order */
	const uint64_t r[27] = {f->r[SBX_R_R15],
				f->r[SBX_R_R14],
				f->r[SBX_R_R13],
				f->r[SBX_R_R12],
				f->r[SBX_R_RBP],
				f->r[SBX_R_RBX],
				f->r[SBX_R_R11],
				f->r[SBX_R_R10],
				f->r[SBX_R_R9],
				f->r[SBX_R_R8],
				f->r[SBX_R_RAX],
				f->r[SBX_R_RCX],
				f->r[SBX_R_RDX],
				f->r[SBX_R_RSI],
				f->r[SBX_R_RDI],
				(uint64_t)-1,
				f->r[SBX_R_RIP],
				f->cs,
				f->rflags,
				f->r[SBX_R_RSP],
				f->ss,
				f->fs_base,
				f->gs_base,
				f->ss,
				f->ss,
				0,
				0};
	_Static_assert(sizeof(ps->pr_reg) == sizeof(r), "27 registers");
	memcpy(ps->pr_reg, r, sizeof(r));
}

/* The PT_LOADs: one per mapping of the kernel's table, or without it one per touched part of
 * user memory (a memfd data extent), executable where a program segment is. */
struct load_ctx {
	struct sbx_vm *vm;
	Elf64_Phdr ph[MAX_LOADS + 1];
	int nph;
};

static int add_load(void *ctx, uint64_t gpa, uint64_t len)
{
	struct load_ctx *lc = ctx;
	if (lc->nph > MAX_LOADS)
		return 1;
	Elf64_Phdr *p = &lc->ph[lc->nph++];
	*p = (Elf64_Phdr){.p_type = PT_LOAD,
			  .p_flags = PF_R | PF_W,
			  .p_vaddr = gpa,
			  .p_filesz = len,
			  .p_memsz = len,
			  .p_align = SBX_PAGE_SIZE};
	const struct loader_image *im = &lc->vm->proc.image.img;
	for (unsigned i = 0; i < im->nsegs; i++)
		if ((im->segs[i].prot & PROT_EXEC) && im->segs[i].start < gpa + len &&
		    im->segs[i].end > gpa)
			p->p_flags |= PF_X;
	return 0;
}

static void vma_loads(struct sbx_vm *vm, struct load_ctx *lc)
{
	struct sbx_vma *v;
	unsigned n = sbx_guest_vmas(vm, &v);
	for (unsigned i = 0; i < n && lc->nph <= MAX_LOADS; i++) {
		uint64_t len = v[i].end - v[i].start;
		lc->ph[lc->nph++] =
		    (Elf64_Phdr){.p_type = PT_LOAD,
				 .p_flags = (v[i].prot & SBX_PROT_READ ? PF_R : 0) |
					    (v[i].prot & SBX_PROT_WRITE ? PF_W : 0) |
					    (v[i].prot & SBX_PROT_EXEC ? PF_X : 0),
				 .p_vaddr = v[i].start,
				 /* Linux writes no contents for a mapping nobody can read. */
				 .p_filesz = v[i].prot & SBX_PROT_READ ? len : 0,
				 .p_memsz = len,
				 .p_align = SBX_PAGE_SIZE};
	}
	free(v);
	if (n == 0)
		sbx_mem_extents(vm, SBX_USER_ADDR, add_load, lc);
}

/* The file an object's ranges are of, for a debugger on the host: the program's host path,
 * a shared object's path as the guest loaded it (the same file under the default view). */
static const char *file_of(struct sbx_vm *vm, const struct sbx_object *o)
{
	if (o->is_main && vm->host.prog[0] && !vm->proc.other_image)
		return vm->host.prog;
	return o->name[0] == '/' ? o->name : NULL; /* the vDSO and other names of no file */
}

/* NT_FILE: count, page size, then (start, end, offset in pages) per range, then the names. */
static int file_note(struct sbx_vm *vm, uint64_t root, struct note_buf *notes)
{
	struct sbx_object *objs = calloc(SBX_MAX_OBJECTS, sizeof(*objs));
	if (!objs)
		return -ENOMEM;
	int n = sbx_link_map(vm, root, objs, SBX_MAX_OBJECTS), r = 0;
	size_t count = 0, names = 0;
	for (int i = 0; i < n; i++)
		if (file_of(vm, &objs[i])) {
			count += objs[i].nloads;
			names += objs[i].nloads * (strlen(file_of(vm, &objs[i])) + 1);
		}
	uint8_t *d = count ? calloc(1, 16 + count * 24 + names) : NULL;
	if (count && !d)
		r = -ENOMEM;
	if (d) {
		uint64_t *w = (uint64_t *)d;
		w[0] = count;
		w[1] = SBX_PAGE_SIZE;
		size_t k = 0, at = 16 + count * 24;
		for (int i = 0; i < n; i++) {
			const char *file = file_of(vm, &objs[i]);
			for (unsigned j = 0; file && j < objs[i].nloads; j++, k++) {
				w[2 + 3 * k] = objs[i].loads[j].start;
				w[3 + 3 * k] = objs[i].loads[j].end;
				w[4 + 3 * k] = objs[i].loads[j].offset / SBX_PAGE_SIZE;
				size_t l = strlen(file) + 1;
				memcpy(d + at, file, l);
				at += l;
			}
		}
		r = note_add(notes, NT_FILE, d, (uint32_t)at);
	}
	free(d);
	free(objs);
	return r;
}

/* NT_PRSTATUS, NT_PRPSINFO, NT_AUXV and NT_FILE. */
static int core_notes(struct sbx_vm *vm, const struct sbx_fault *f, uint64_t root,
		      struct note_buf *notes)
{
	struct elf_prstatus ps;
	struct elf_prpsinfo pi;
	uint64_t auxv[128];
	fill_prstatus(vm, f, &ps);
	memset(&pi, 0, sizeof(pi));
	pi.pr_pid = (int)vm->proc.pid;
	pi.pr_ppid = (int)vm->proc.ppid;
	pi.pr_pgrp = (int)vm->proc.pgid;
	pi.pr_sid = (int)vm->proc.sid;
	pi.pr_sname = 'R';
	const char *base = strrchr(vm->proc.image.exe_path, '/');
	snprintf(pi.pr_fname, sizeof(pi.pr_fname), "%.15s",
		 base ? base + 1 : vm->proc.image.exe_path);
	size_t o = 0;
	for (char *const *a = vm->cfg.argv; *a && o + 1 < sizeof(pi.pr_psargs); a++)
		o += (size_t)snprintf(pi.pr_psargs + o, sizeof(pi.pr_psargs) - o, "%s%s",
				      o ? " " : "", *a);
	size_t nauxv = initial_auxv(vm, root, auxv, 128);
	/* The faulting thread first (the debugger's current one), then one NT_PRSTATUS per other
	 * thread, as Linux writes them: gdb's `info threads`. */
	int faulted = vm->life.stop.thread_index;
	struct sbx_fault t;
	uint32_t tid;
	if (sbx_thread_regs(vm, (unsigned)faulted, &t, &tid) == 0)
		ps.pr_pid = (int)tid;
	if (note_add(notes, NT_PRSTATUS, &ps, sizeof(ps)) < 0 ||
	    note_add(notes, NT_PRPSINFO, &pi, sizeof(pi)) < 0 ||
	    (nauxv && note_add(notes, NT_AUXV, auxv, (uint32_t)(nauxv * 8)) < 0) ||
	    file_note(vm, root, notes) < 0)
		return -ENOMEM;
	for (unsigned i = 0; sbx_threads_count(vm) && i < sbx_threads_limit(vm); i++) {
		/* A vCPU with no thread in the program yet (sbx_fault's outside) has no registers
		 * of the program's to show. */
		if ((int)i == faulted || sbx_thread_regs(vm, i, &t, &tid) < 0 || t.outside)
			continue;
		struct elf_prstatus tp;
		fill_prstatus(vm, &t, &tp);
		tp.pr_pid = (int)tid;
		if (note_add(notes, NT_PRSTATUS, &tp, sizeof(tp)) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* A PT_LOAD's contents, leaf by leaf through the page tables: what is not mapped, or what the
 * host never held (a memfd hole), is left a hole of the file. */
static int write_load(struct sbx_vm *vm, uint64_t root, int fd, const Elf64_Phdr *ph, uint64_t *end)
{
	for (uint64_t done = 0; done < ph->p_filesz;) {
		uint64_t gpa, n, va = ph->p_vaddr + done;
		if (sbx_gva_run(vm, root, va, ph->p_filesz - done, &gpa, &n) < 0) {
			done = (va | (SBX_PAGE_SIZE - 1)) + 1 - ph->p_vaddr;
			continue;
		}
		const uint8_t *src = sbx_gptr_ro(vm, gpa, n);
		for (uint64_t k = 0; src && k < n;) {
			uint64_t data_end, data = sbx_mem_next_data(vm, gpa + k, &data_end);
			if (data > gpa + k) {
				k = data - gpa;
				continue;
			}
			uint64_t m = data_end - (gpa + k) < n - k ? data_end - (gpa + k) : n - k;
			if (pwrite(fd, src + k, m, (off_t)(ph->p_offset + done + k)) != (ssize_t)m)
				return -EIO;
			k += m;
			*end = ph->p_offset + done + k;
		}
		done += n;
	}
	return 0;
}

int sbx_write_core(struct sbx_vm *vm, const struct sbx_fault *f, const char *path, char *err,
		   size_t errlen)
{
	struct note_buf notes = {0};
	uint64_t root = f->cr3 ? f->cr3 : sbx_guest_root(vm);
	if (core_notes(vm, f, root, &notes) < 0) {
		free(notes.p);
		return sbx_fail(err, errlen, -ENOMEM, "out of memory");
	}
	struct load_ctx lc = {.vm = vm, .nph = 1};
	vma_loads(vm, &lc);
	Elf64_Phdr *ph = lc.ph;
	int nph = lc.nph;
	uint64_t off = sizeof(Elf64_Ehdr) + (uint64_t)nph * sizeof(Elf64_Phdr);
	ph[0] =
	    (Elf64_Phdr){.p_type = PT_NOTE, .p_offset = off, .p_filesz = notes.len, .p_align = 4};
	off = (off + notes.len + SBX_PAGE_SIZE - 1) & ~(SBX_PAGE_SIZE - 1);
	for (int i = 1; i < nph; i++) {
		ph[i].p_offset = off;
		off += ph[i].p_filesz;
	}
	Elf64_Ehdr eh = {
	    .e_ident = {ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64, ELFDATA2LSB, EV_CURRENT,
			ELFOSABI_SYSV},
	    .e_type = ET_CORE,
	    .e_machine = EM_X86_64,
	    .e_version = EV_CURRENT,
	    .e_phoff = sizeof(Elf64_Ehdr),
	    .e_ehsize = sizeof(Elf64_Ehdr),
	    .e_phentsize = sizeof(Elf64_Phdr),
	    .e_phnum = (uint16_t)nph,
	};
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path);
	int fd = mkstemp(tmp);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(e));
		free(notes.p);
		return -e;
	}
	int r = 0;
	if (pwrite(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
	    pwrite(fd, ph, (size_t)nph * sizeof(ph[0]), sizeof(eh)) !=
		(ssize_t)((size_t)nph * sizeof(ph[0])) ||
	    pwrite(fd, notes.p, notes.len, (off_t)ph[0].p_offset) != (ssize_t)notes.len)
		r = -errno;
	uint64_t end = 0;
	for (int i = 1; i < nph && r == 0; i++)
		r = write_load(vm, root, fd, &ph[i], &end);
	/* A trailing hole still counts in the file's size (the policy forbids ftruncate). */
	if (r == 0 && end < off && pwrite(fd, "", 1, (off_t)off - 1) != 1)
		r = -EIO;
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	close(fd);
	free(notes.p);
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		snprintf(err, errlen, "writing core file %s: %s", path, strerror(-r));
	}
	return r;
}
