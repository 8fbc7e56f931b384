/* Symbols and source lines of the guest program, from its ELF symbol table and DWARF (or a
 * separate debug file), through libdw's Dwfl as for an offline process. */
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report.h"

struct sbx_symbols {
	Dwfl *dwfl;
	Dwfl_Module *mod;
	const char *debug_file;
	int nsyms;
	int has_lines;
	/* The program's other objects (sbx_sym_add_objects): mods[i] NULL for one without a
	 * file here. */
	struct sbx_object *objs;
	Dwfl_Module **mods;
	int *obj_lines;
	int nobjs;
};

static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
			  const char *file_name, const char *debuglink_file,
			  GElf_Word debuglink_crc, char **debuginfo_file_name)
{
	struct sbx_symbols *s = *userdata;
	if (s && s->debug_file) {
		int fd = open(s->debug_file, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			*debuginfo_file_name = strdup(s->debug_file);
			return fd;
		}
	}
	return dwfl_standard_find_debuginfo(mod, userdata, modname, base, file_name, debuglink_file,
					    debuglink_crc, debuginfo_file_name);
}

static const Dwfl_Callbacks sbx_dwfl_callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = find_debuginfo,
    .section_address = dwfl_offline_section_address,
};

struct sbx_symbols *sbx_sym_open(const char *path, uint64_t bias, const char *debug_file)
{
	if (!path)
		return NULL; /* no symbols: the report says the program is stripped */
	struct sbx_symbols *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->debug_file = debug_file;
	s->dwfl = dwfl_begin(&sbx_dwfl_callbacks);
	if (!s->dwfl) {
		free(s);
		return NULL;
	}
	dwfl_report_begin(s->dwfl);
	s->mod = dwfl_report_elf(s->dwfl, "program", path, -1, bias, false);
	dwfl_report_end(s->dwfl, NULL, NULL);
	if (!s->mod)
		return s;
	/* The find_debuginfo callback reads its userdata from the module. */
	void **ud = NULL;
	dwfl_module_info(s->mod, &ud, NULL, NULL, NULL, NULL, NULL, NULL);
	if (ud)
		*ud = s;
	s->nsyms = dwfl_module_getsymtab(s->mod);
	Dwarf_Addr b;
	s->has_lines = dwfl_module_getdwarf(s->mod, &b) != NULL;
	return s;
}

void sbx_sym_close(struct sbx_symbols *s)
{
	if (!s)
		return;
	if (s->dwfl)
		dwfl_end(s->dwfl);
	free(s->objs);
	free(s->mods);
	free(s->obj_lines);
	free(s);
}

int sbx_sym_stripped(const struct sbx_symbols *s)
{
	return !s || s->nsyms <= 0;
}

int sbx_sym_has_lines(const struct sbx_symbols *s)
{
	return s && s->has_lines;
}

void sbx_sym_lookup(struct sbx_symbols *s, uint64_t pc, struct sbx_frame *f)
{
	f->pc = pc;
	f->func[0] = 0;
	f->file[0] = 0;
	f->off = 0;
	f->line = 0;
	f->obj[0] = 0;
	f->obj_off = 0;
	if (!s)
		return;
	Dwfl_Module *mod = s->mod;
	int has_lines = s->has_lines;
	const struct sbx_object *o = s->nobjs ? sbx_object_at(s->objs, s->nobjs, pc) : NULL;
	if (o && !o->is_main) {
		const char *base = strrchr(o->name, '/');
		snprintf(f->obj, sizeof(f->obj), "%.*s", (int)sizeof(f->obj) - 1,
			 base ? base + 1 : o->name);
		f->obj_off = pc - o->l_addr;
		mod = s->mods[o - s->objs];
		has_lines = s->obj_lines[o - s->objs];
	}
	if (!mod)
		return;
	GElf_Off off = 0;
	GElf_Sym sym;
	const char *name = dwfl_module_addrinfo(mod, pc, &off, &sym, NULL, NULL, NULL);
	if (name) {
		snprintf(f->func, sizeof(f->func), "%s", name);
		f->off = off;
	}
	Dwfl_Line *line = has_lines ? dwfl_module_getsrc(mod, pc) : NULL;
	int lineno = 0;
	const char *file = NULL;
	if (line) {
		file = dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL);
	} else if (has_lines) {
		/* No .debug_aranges (clang omits them): find the CU by its ranges instead. */
		Dwarf_Die *cu = NULL;
		Dwarf_Addr bias;
		while ((cu = dwfl_module_nextcu(mod, cu, &bias))) {
			if (dwarf_haspc(cu, pc - bias) > 0) {
				Dwarf_Line *l = dwarf_getsrc_die(cu, pc - bias);
				if (l) {
					file = dwarf_linesrc(l, NULL, NULL);
					dwarf_lineno(l, &lineno);
				}
				break;
			}
		}
	}
	if (file) {
		const char *base = strrchr(file, '/');
		snprintf(f->file, sizeof(f->file), "%s", base ? base + 1 : file);
		f->line = lineno;
	}
}

Dwfl *sbx_sym_dwfl(struct sbx_symbols *s)
{
	return s ? s->dwfl : NULL;
}

/* A shared object, opened as the guest would open it by that name. */
static Dwfl_Module *report_object(struct sbx_symbols *s, struct sbx_vm *vm,
				  const struct sbx_object *o)
{
	char norm[POLICY_PATH_MAX];
	const struct policy_mount *m = NULL;
	if (o->name[0] != '/' || !vm->cfg.policy ||
	    policy_normalize("/", o->name, strlen(o->name), norm, sizeof(norm)) < 0)
		return NULL;
	/* The name is the guest's to choose: never block on a FIFO it made, read only a
	 * regular file. */
	int fd = policy_open_guest(vm->cfg.policy, norm, POLICY_FOLLOW,
				   O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0, NULL, NULL, &m);
	struct stat st;
	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
		close(fd);
		return NULL;
	}
	if (fd < 0)
		return NULL;
	const char *base = strrchr(o->name, '/');
	dwfl_report_begin_add(s->dwfl);
	Dwfl_Module *mod = dwfl_report_elf(s->dwfl, base + 1, o->name, fd, o->l_addr, false);
	dwfl_report_end(s->dwfl, NULL, NULL);
	if (!mod)
		close(fd); /* on success the module owns it */
	return mod;
}

int sbx_sym_add_objects(struct sbx_symbols *s, struct sbx_vm *vm, uint64_t root)
{
	if (!s || !s->dwfl || s->objs)
		return 0;
	s->objs = calloc(SBX_MAX_OBJECTS, sizeof(*s->objs));
	s->mods = calloc(SBX_MAX_OBJECTS, sizeof(*s->mods));
	s->obj_lines = calloc(SBX_MAX_OBJECTS, sizeof(*s->obj_lines));
	if (!s->objs || !s->mods || !s->obj_lines)
		return 0;
	s->nobjs = sbx_link_map(vm, root, s->objs, SBX_MAX_OBJECTS);
	for (int i = 0; i < s->nobjs; i++) {
		if (s->objs[i].is_main) {
			s->mods[i] = s->mod;
			s->obj_lines[i] = s->has_lines;
			continue;
		}
		s->mods[i] = report_object(s, vm, &s->objs[i]);
		Dwarf_Addr b;
		s->obj_lines[i] = s->mods[i] && dwfl_module_getdwarf(s->mods[i], &b) != NULL;
	}
	return s->nobjs;
}

int sbx_sym_covers(struct sbx_symbols *s, uint64_t pc)
{
	if (!s)
		return 0;
	for (int i = 0; i < s->nobjs; i++)
		for (unsigned k = 0; k < s->objs[i].nloads; k++)
			if ((s->objs[i].loads[k].prot & SBX_PROT_EXEC) &&
			    pc >= s->objs[i].loads[k].start && pc < s->objs[i].loads[k].end)
				return 1;
	return 0;
}
