/* The objects of a dynamic program as its dynamic linker lists them: DT_DEBUG in the program's
 * dynamic section points at r_debug, whose r_map starts the link_map list (l_addr, l_name,
 * l_ld, l_next: the same first fields in glibc's struct link_map and musl's struct dso). All of
 * it is guest memory read through the page tables, and hostile: the list is capped and checked
 * for cycles, names are cut, program headers bounded. Before the linker has filled r_debug
 * (or in a static program) the objects are the ones the monitor loaded itself. */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vm.h"

#define MAX_DYN 1024 /* entries of a dynamic section read before giving up on DT_NULL */
#define MAX_PHDRS 64

static uint64_t page_down(uint64_t a)
{
	return a & ~(SBX_PAGE_SIZE - 1);
}

/* PT_LOAD ranges of an object from program headers at phdr_va (already in guest memory). */
static void object_loads(struct sbx_vm *vm, uint64_t root, struct sbx_object *o, uint64_t phdr_va,
			 uint64_t phnum)
{
	Elf64_Phdr ph[MAX_PHDRS];
	if (phnum == 0 || phnum > MAX_PHDRS ||
	    sbx_gva_read(vm, root, phdr_va, ph, phnum * sizeof(ph[0])) < 0)
		return;
	for (uint64_t i = 0; i < phnum && o->nloads < SBX_OBJ_LOADS; i++) {
		if (ph[i].p_type != PT_LOAD || !ph[i].p_memsz)
			continue;
		uint64_t start = o->l_addr + ph[i].p_vaddr, end = start + ph[i].p_memsz;
		if (start < o->l_addr || end < start || end > (1ull << 47))
			continue;
		struct sbx_object_load *l = &o->loads[o->nloads++];
		l->start = page_down(start);
		l->end = page_down(end + SBX_PAGE_SIZE - 1);
		l->offset = page_down(ph[i].p_offset);
		l->prot = (uint8_t)((ph[i].p_flags & PF_R ? SBX_PROT_READ : 0) |
				    (ph[i].p_flags & PF_W ? SBX_PROT_WRITE : 0) |
				    (ph[i].p_flags & PF_X ? SBX_PROT_EXEC : 0));
	}
}

/* A shared object's ELF header is at l_addr (its first PT_LOAD maps offset 0 at vaddr 0). */
static void object_loads_from_header(struct sbx_vm *vm, uint64_t root, struct sbx_object *o)
{
	Elf64_Ehdr eh;
	if (sbx_gva_read(vm, root, o->l_addr, &eh, sizeof(eh)) < 0 ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phoff > SBX_PAGE_SIZE)
		return;
	object_loads(vm, root, o, o->l_addr + eh.e_phoff, eh.e_phnum);
}

/* r_debug's address from DT_DEBUG, or 0. */
static uint64_t find_r_debug(struct sbx_vm *vm, uint64_t root)
{
	const struct loader_image *img = &vm->proc.image.img;
	Elf64_Phdr ph[MAX_PHDRS];
	if (!img->phdr || !img->phnum || img->phnum > MAX_PHDRS ||
	    sbx_gva_read(vm, root, img->phdr, ph, img->phnum * sizeof(ph[0])) < 0)
		return 0;
	for (uint64_t i = 0; i < img->phnum; i++) {
		if (ph[i].p_type != PT_DYNAMIC)
			continue;
		uint64_t at = img->bias + ph[i].p_vaddr;
		for (int k = 0; k < MAX_DYN; k++, at += sizeof(Elf64_Dyn)) {
			Elf64_Dyn d;
			if (sbx_gva_read(vm, root, at, &d, sizeof(d)) < 0 || d.d_tag == DT_NULL)
				return 0;
			if (d.d_tag == DT_DEBUG)
				return d.d_un.d_ptr;
		}
	}
	return 0;
}

static void set_name(struct sbx_object *o, const char *name)
{
	snprintf(o->name, sizeof(o->name), "%.*s", (int)sizeof(o->name) - 1, name);
}

/* The main program and the interpreter, as the monitor placed them. */
static int loaded_objects(struct sbx_vm *vm, uint64_t root, struct sbx_object *out, int max)
{
	const struct loader_image *img = &vm->proc.image.img;
	int n = 0;
	if (max < 1)
		return 0;
	memset(&out[0], 0, sizeof(out[0]));
	out[0].is_main = 1;
	out[0].l_addr = img->bias;
	set_name(&out[0], vm->proc.image.exe_path);
	object_loads(vm, root, &out[0], img->phdr, img->phnum);
	n = 1;
	if (img->interp[0] && img->interp_base && n < max) {
		memset(&out[n], 0, sizeof(out[n]));
		out[n].l_addr = img->interp_base;
		set_name(&out[n], img->interp);
		object_loads_from_header(vm, root, &out[n]);
		n++;
	}
	return n;
}

int sbx_link_map(struct sbx_vm *vm, uint64_t root, struct sbx_object *out, int max)
{
	uint64_t r_debug = find_r_debug(vm, root), lm = 0;
	if (!r_debug || sbx_gva_read(vm, root, r_debug + 8, &lm, sizeof(lm)) < 0 || !lm)
		return loaded_objects(vm, root, out, max);
	uint64_t seen[SBX_MAX_OBJECTS];
	int n = 0, nseen = 0;
	while (lm && n < max && nseen < SBX_MAX_OBJECTS) {
		for (int i = 0; i < nseen; i++)
			if (seen[i] == lm)
				return n; /* a cycle: the list ends where it repeats */
		seen[nseen++] = lm;
		uint64_t f[4]; /* l_addr, l_name, l_ld, l_next */
		if (sbx_gva_read(vm, root, lm, f, sizeof(f)) < 0)
			break;
		struct sbx_object *o = &out[n];
		memset(o, 0, sizeof(*o));
		o->l_addr = f[0];
		o->l_ld = f[2];
		if (n == 0) {
			/* The first entry is the program, whose l_name is "". */
			o->is_main = 1;
			o->l_addr = vm->proc.image.img.bias;
			set_name(o, vm->proc.image.exe_path);
			object_loads(vm, root, o, vm->proc.image.img.phdr,
				     vm->proc.image.img.phnum);
		} else {
			if (f[1])
				sbx_gva_string(vm, root, f[1], o->name, sizeof(o->name));
			object_loads_from_header(vm, root, o);
		}
		if (o->name[0] || o->is_main)
			n++;
		lm = f[3];
	}
	return n ? n : loaded_objects(vm, root, out, max);
}

const struct sbx_object *sbx_object_at(const struct sbx_object *objs, int n, uint64_t addr)
{
	for (int i = 0; i < n; i++)
		for (unsigned k = 0; k < objs[i].nloads; k++)
			if (addr >= objs[i].loads[k].start && addr < objs[i].loads[k].end)
				return &objs[i];
	return NULL;
}
