/* Fault reports: what a crashed guest program was doing, told from the vCPU's own state. */
#ifndef SBX_REPORT_H
#define SBX_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "vm.h"

#define SBX_MAX_FRAMES 64
struct sbx_frame {
	uint64_t pc;
	char func[128];
	uint64_t off;
	char file[160];
	int line;
	char obj[64];	  /* a shared object's file name ("" for the program itself) */
	uint64_t obj_off; /* pc minus that object's load bias */
};

/* symbolize.c: the guest ELF's symbols and DWARF, through libdw. */
struct sbx_symbols;
struct sbx_symbols *sbx_sym_open(const char *path, uint64_t bias, const char *debug_file);
void sbx_sym_close(struct sbx_symbols *s);
int sbx_sym_stripped(const struct sbx_symbols *s);
int sbx_sym_has_lines(const struct sbx_symbols *s);
/* Fills func/off/file/line for pc (a return address is looked up at pc - 1 by the caller). */
void sbx_sym_lookup(struct sbx_symbols *s, uint64_t pc, struct sbx_frame *f);
struct Dwfl;
struct Dwfl *sbx_sym_dwfl(struct sbx_symbols *s);
/* Adds the program's shared objects (and its interpreter) from its link map, each opened by
 * the name the guest loaded it by, through the sandbox's policy; one that cannot be opened is
 * still named in frames, without symbols. Returns how many objects were found. */
int sbx_sym_add_objects(struct sbx_symbols *s, struct sbx_vm *vm, uint64_t root);
/* Is pc inside one of the objects (any of its segments)? */
int sbx_sym_covers(struct sbx_symbols *s, uint64_t pc);

/* unwind.c: DWARF CFI through libdw, frame pointers where that stops early. */
int sbx_unwind(struct sbx_vm *vm, struct sbx_symbols *s, const struct sbx_fault *f,
	       struct sbx_frame *frames, int max, int *truncated);
int sbx_pc_in_code(struct sbx_vm *vm, uint64_t pc);

/* disasm.c: Capstone around the faulting instruction. */
/* The address in [lo, hi) that the instruction at the vCPU's rip reads or writes: 0 and
 * *addr, or -1 (none of its memory operands is there, or it cannot be decoded). */
int sbx_mem_operand(struct sbx_vm *vm, uint64_t lo, uint64_t hi, uint64_t *addr);
struct sbx_insn {
	uint64_t addr;
	uint8_t bytes[16];
	uint8_t len;
	char text[200];
	char target[160]; /* symbolized branch or call target, if any */
};
int sbx_disasm_around(struct sbx_vm *vm, uint64_t root, struct sbx_symbols *s, uint64_t rip,
		      struct sbx_insn *out, int max, int *fault_index);

/* coredump.c */
int sbx_write_core(struct sbx_vm *vm, const struct sbx_fault *f, const char *path, char *err,
		   size_t errlen);

/* report.c */
void sbx_report(struct sbx_vm *vm, const struct sbx_fault *f);

#endif
