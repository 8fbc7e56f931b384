/* Symbols and source lines of the guest program, from its ELF symbol table and DWARF (or a
 * separate debug file), through libdw's Dwfl as for an offline process. */
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report.h"

struct sbx_symbols {
	Dwfl *dwfl;
	Dwfl_Module *mod;
	const char *debug_file;
	int nsyms;
	int has_lines;
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
	if (!s || !s->mod)
		return;
	GElf_Off off = 0;
	GElf_Sym sym;
	const char *name = dwfl_module_addrinfo(s->mod, pc, &off, &sym, NULL, NULL, NULL);
	if (name) {
		snprintf(f->func, sizeof(f->func), "%s", name);
		f->off = off;
	}
	Dwfl_Line *line = s->has_lines ? dwfl_module_getsrc(s->mod, pc) : NULL;
	int lineno = 0;
	const char *file = NULL;
	if (line) {
		file = dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL);
	} else if (s->has_lines) {
		/* No .debug_aranges (clang omits them): find the CU by its ranges instead. */
		Dwarf_Die *cu = NULL;
		Dwarf_Addr bias;
		while ((cu = dwfl_module_nextcu(s->mod, cu, &bias))) {
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
