/* Fault reports: what a crashed guest program was doing, told from the vCPU's own state. */
#ifndef SBX_REPORT_H
#define SBX_REPORT_H

#include <stdint.h>
#include <stdio.h>

struct sbx_vm;

/* Registers in DWARF order, so the unwinder takes them as they are. */
enum {
	SBX_R_RAX,
	SBX_R_RDX,
	SBX_R_RCX,
	SBX_R_RBX,
	SBX_R_RSI,
	SBX_R_RDI,
	SBX_R_RBP,
	SBX_R_RSP,
	SBX_R_R8,
	SBX_R_R9,
	SBX_R_R10,
	SBX_R_R11,
	SBX_R_R12,
	SBX_R_R13,
	SBX_R_R14,
	SBX_R_R15,
	SBX_R_RIP,
	SBX_NREGS
};

struct sbx_fault {
	int vector;   /* CPU exception, or -1 for a signal the program sent itself */
	int signal;   /* what Linux would deliver */
	int from_cpu; /* registers from the vCPU and the CPU-pushed frame (else the syscall frame)
		       */
	uint64_t err, cr2;
	uint64_t r[SBX_NREGS];
	uint64_t rflags, fs_base, gs_base;
	uint16_t cs, ss;
	char cause[200]; /* "write to unmapped address 0x0 (null pointer)" */
};

#define SBX_MAX_FRAMES 64
struct sbx_frame {
	uint64_t pc;
	char func[128];
	uint64_t off;
	char file[160];
	int line;
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

/* unwind.c: DWARF CFI through libdw, frame pointers where that stops early. */
int sbx_unwind(struct sbx_vm *vm, struct sbx_symbols *s, const struct sbx_fault *f,
	       struct sbx_frame *frames, int max, int *truncated);
int sbx_pc_in_code(struct sbx_vm *vm, uint64_t pc);

/* disasm.c: Capstone around the faulting instruction. */
struct sbx_insn {
	uint64_t addr;
	uint8_t bytes[16];
	uint8_t len;
	char text[200];
	char target[160]; /* symbolized branch or call target, if any */
};
int sbx_disasm_around(struct sbx_vm *vm, struct sbx_symbols *s, uint64_t rip, struct sbx_insn *out,
		      int max, int *fault_index);

/* coredump.c */
int sbx_write_core(struct sbx_vm *vm, const struct sbx_fault *f, const char *path, char *err,
		   size_t errlen);

/* report.c */
void sbx_fault_from_cpu(struct sbx_vm *vm, int vector, struct sbx_fault *f);
void sbx_fault_from_syscall(struct sbx_vm *vm, int sig, struct sbx_fault *f);
void sbx_fault_from_regs(struct sbx_vm *vm, int sig, const char *cause, struct sbx_fault *f);
void sbx_report(struct sbx_vm *vm, const struct sbx_fault *f);

#endif
