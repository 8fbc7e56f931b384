/* Shared between the loader's own files only; other modules include loader.h. */
#ifndef SBX_LOADER_PRIV_H
#define SBX_LOADER_PRIV_H

#include <gelf.h>
#include <stdarg.h>

#include "loader.h"

#define LOADER_PAGE 0x1000ull

/* One PT_LOAD that passed every check, in guest addresses. */
struct loader_load {
	uint64_t vaddr;	 /* p_vaddr + bias */
	uint64_t memsz;	 /* p_memsz */
	uint64_t offset; /* p_offset */
	uint64_t filesz; /* p_filesz */
	uint32_t prot;	 /* PROT_* */
};

/* Everything elf_check() decided; elf_load only acts on it. */
struct loader_plan {
	struct loader_load loads[LOADER_MAX_SEGS];
	unsigned nloads;
	struct loader_image img;
};

/* Write a message to err and return rc (a negative errno). */
int loader_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Copy at most `max` bytes of `s` (stopping at `len` or a NUL) into `out` with non-printable
 * bytes escaped as \xNN, adding "..." when cut short. */
void loader_escape(char *out, size_t outlen, const uint8_t *s, size_t len, size_t max);

/* Checked guest writes: -EFAULT unless [addr, addr+len) lies inside guest RAM. */
int loader_guest_write(struct loader_mem *mem, uint64_t addr, const void *src, uint64_t len);
int loader_guest_zero(struct loader_mem *mem, uint64_t addr, uint64_t len);

/* Refuse what is not a 64-bit little-endian current-version ELF, from the first bytes alone. */
int elf_check_ident(const uint8_t *raw, size_t size, char *err, size_t errlen);

/* Check every header of `e` (whose bytes are raw[0..size)) against the file and the window,
 * and fill `plan`. Writes nothing to guest RAM. */
int elf_check(Elf *e, const uint8_t *raw, size_t size, const struct loader_params *params,
	      const struct loader_mem *mem, struct loader_plan *plan, char *err, size_t errlen);

/* One decoded x86-64 instruction (x86_decode.c). */
struct loader_insn {
	uint8_t len;	  /* bytes, prefixes included */
	uint8_t prefixes; /* legacy prefix bytes before the REX or opcode */
	uint8_t rex;	  /* the REX byte, 0 without one */
	uint8_t rep;	  /* 0xf2 or 0xf3 among the prefixes, else 0 */
	uint8_t lock;	  /* 0xf0 among them */
	uint8_t map;	  /* 1: one-byte opcodes, 2: 0f, 3: 0f 38, 4: 0f 3a (VEX/EVEX alike) */
	uint8_t op;	  /* the opcode in its map */
	uint8_t vex;	  /* VEX or EVEX encoded */
	uint8_t has_modrm, modrm;
	int rip_rel; /* a memory operand addressed from the next instruction */
	int branch;  /* a direct jmp, jcc, loop or call: it goes to the next one + rel */
	int32_t rel;
};
/* The instruction at p[0..n): its length, or 0 when it is not one this decoder knows. */
unsigned loader_x86_decode(const uint8_t *p, size_t n, struct loader_insn *in);

/* Fill plan->img.cpuid from the image's executable segments (cpuid_sites.c). */
void loader_find_cpuid(Elf *e, const uint8_t *raw, size_t size, struct loader_plan *plan);

/* Fill plan->img.segs from plan->loads: page-rounded, sorted, disjoint. */
void loader_make_segments(struct loader_plan *plan);

#endif
