/* The `cpuid` instructions of an image that the monitor may redirect, found before the program
 * runs. Under PVM every `cpuid` is emulated by the host (5-36 us; glibc's start-up runs ~70 of
 * them, the same in every process), and unlike `syscall` it never reaches the guest's kernel,
 * so it cannot be patched lazily at a first trap: it is found here, in the file.
 *
 * A site is rewritten into a 7-byte `jmp *disp32` through a record, so the 2-byte `cpuid` needs
 * whole instructions before it to make room, which the record then runs itself. Which bytes
 * are instructions is only known by decoding a whole function from its start: its bounds come
 * from the symbol table, or from the .eh_frame FDE that covers it (stripped libraries, ld.so).
 * A site is taken only when:
 * - the function decodes whole, and the cpuid is one of its instructions;
 * - every moved instruction runs the same anywhere: no branch, no RIP-relative operand, nothing
 *   that traps;
 * - every instruction after the first starts where a jump to it traps once the site is
 *   rewritten (window_ok), so that a jump the decoding cannot see (a cold part's, a jump
 *   table's) is still exact: the monitor gives the site its bytes back;
 * - none of them is a target of the function's own direct branches (that would be a trap on
 *   every pass).
 * The input is as hostile as the program: every length and address is bounded, and decoding
 * stops at the function's end. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "loader_priv.h"

/* A function longer than this is not decoded (glibc's longest cpuid user is ~4 KiB). */
#define FN_MAX (64u * 1024)

/* Can the instruction run from a record instead of where it is? Only what cannot fault: a
 * fault there would be at an address inside the kernel's range, where the program's signal
 * handler is not called. So register moves and arithmetic on registers (ModRM mod 3), moves of
 * an immediate, lea and nops (which touch no memory); never a memory operand, push or pop, a
 * division, a lock or rep prefix, a branch, a system instruction or a VEX one. */
static int movable(const struct loader_insn *in)
{
	if (in->rip_rel || in->vex || in->rep || in->lock)
		return 0;
	uint8_t op = in->op, reg = (uint8_t)((in->modrm >> 3) & 7);
	int regs = !in->has_modrm || (in->modrm >> 6) == 3;
	if (in->map == 1) {
		if (op == 0x8d) /* lea: the address only; on a register it is #UD */
			return in->has_modrm && (in->modrm >> 6) != 3;
		if (op < 0x40)
			return (op & 7) <= 5 && regs; /* add or adc and sbb sub xor cmp */
		if (op == 0x63 || op == 0x69 || op == 0x6b || op == 0x80 || op == 0x81 ||
		    op == 0x83 || (op >= 0x84 && op <= 0x8b) || (op >= 0x90 && op <= 0x99) ||
		    op == 0xa8 || op == 0xa9 || (op >= 0xb0 && op <= 0xbf) || op == 0xc0 ||
		    op == 0xc1 || (op >= 0xd0 && op <= 0xd3))
			return regs;
		if (op == 0xc6 || op == 0xc7)
			return regs && reg == 0; /* mov; /7 is xabort, xbegin */
		if (op == 0xf6 || op == 0xf7)
			return regs && reg != 1 && reg < 6; /* not div, idiv */
		if (op == 0xfe || op == 0xff)
			return regs && reg <= 1; /* inc, dec */
		return 0;
	}
	if (in->map == 2) {
		if (op == 0x1f) /* nop: its operand is never read */
			return 1;
		if (op == 0xba)
			return regs && reg >= 4; /* bt, bts, btr, btc; /0-/3 are #UD */
		return regs &&
		       ((op >= 0x40 && op <= 0x4f) || (op >= 0x90 && op <= 0x9f) || op == 0xa3 ||
			op == 0xab || op == 0xaf || op == 0xb3 || op == 0xb6 || op == 0xb7 ||
			op == 0xbb || op == 0xbe || op == 0xbf || (op >= 0xc8 && op <= 0xcf));
	}
	return 0;
}

struct fn_map {
	uint8_t *start;	 /* byte i starts an instruction */
	uint8_t *target; /* a direct branch of the function lands on byte i */
};

static int bit(const uint8_t *m, size_t i)
{
	return (m[i / 8] >> (i % 8)) & 1;
}

static void set_bit(uint8_t *m, size_t i)
{
	m[i / 8] |= (uint8_t)(1u << (i % 8));
}

/* Decodes fn whole: 0, or -1 when some bytes are no instruction. */
static int map_function(const uint8_t *fn, size_t n, struct fn_map *m)
{
	struct loader_insn in;
	for (size_t off = 0; off < n;) {
		unsigned len = loader_x86_decode(fn + off, n - off, &in);
		if (!len)
			return -1;
		set_bit(m->start, off);
		off += len;
		int64_t t = (int64_t)off + in.rel;
		if (in.branch && t > 0 && (uint64_t)t < n)
			set_bit(m->target, (size_t)t);
	}
	return 0;
}

/* The bytes [s, c + 2) of fn hold whole movable instructions, then the cpuid at c. Every
 * instruction but the first must start where a jump to it traps once the site is rewritten,
 * so that a jump the decoding cannot see (another function's cold part, a jump table) is still
 * exact: the monitor then puts the site's own bytes back (sbx_patch_resume). The 7-byte
 * `jmp *disp32` is ff 24 25 and the record's address, 0x37XXYY: at s + 5 the 0x37 is invalid
 * in 64-bit mode; from s + 7 on the monitor writes invalid bytes; s + 3 and s + 4 trap only
 * through a record whose address makes them so (YY 0x40, a REX prefix, and XX an invalid
 * opcode: LOADER_CPUID_SPECIAL); s + 1, s + 2 and s + 6 never do. None of them may be a target
 * of the function's own direct branches either, which would pay that exit at once. 1: take it
 * (*special set when it needs such a record), 0: not this window. */
static int window_ok(const uint8_t *fn, size_t n, const struct fn_map *m, size_t s, size_t c,
		     int *special)
{
	struct loader_insn in;
	*special = 0;
	for (size_t i = s; i < c + 2;) {
		size_t at = i - s;
		if (!bit(m->start, i) ||
		    (at && (bit(m->target, i) || at == 1 || at == 2 || at == 6)))
			return 0;
		if (at == 3 || at == 4)
			*special = 1;
		unsigned len = loader_x86_decode(fn + i, n - i, &in);
		if (!len || (i != c && !movable(&in)))
			return 0;
		i += len;
	}
	return 1;
}

/* %eax zeroed just before the cpuid (`mov $0`, `xor` or `sub` of itself, with or without
 * REX.W): leaf 0 asked as a fence (cpuid serializes; a benchmark's `cpuid; rdtsc`, a JIT's
 * cross-modifying-code barrier), which a rewritten site would not be. Left alone. */
static int fence(const uint8_t *w, size_t pre)
{
	static const uint8_t mov0[5] = {0xb8, 0, 0, 0, 0}, movc7[6] = {0xc7, 0xc0, 0, 0, 0, 0};
	const uint8_t *z = w + pre - 2; /* xor, sub (either direction) of %eax with itself */
	int zero_eax =
	    (z[0] == 0x31 || z[0] == 0x33 || z[0] == 0x29 || z[0] == 0x2b) && z[1] == 0xc0;
	return (pre >= 5 && !memcmp(w + pre - 5, mov0, 5)) ||
	       (pre >= 6 && !memcmp(w + pre - 6, movc7, 6)) || zero_eax;
}

/* One cpuid at byte c and the instructions before it, the fewest that make a window. (The
 * cpuid first with instructions after it would put the next one's start at s + 2.) */
static int site_at(const uint8_t *fn, size_t n, uint64_t va, const struct fn_map *m, size_t c,
		   struct loader_cpuid_site *o)
{
	for (size_t s = c; s > 0;) {
		do
			s--;
		while (s > 0 && !bit(m->start, s));
		int special;
		if (!bit(m->start, s) || c - s + 2 > LOADER_CPUID_SITE_MAX)
			return 0;
		if ((c - s == 5 || c - s >= 7) && window_ok(fn, n, m, s, c, &special) &&
		    !fence(fn + s, c - s)) {
			o->site = va + s;
			o->len = (uint8_t)(c + 2 - s);
			o->pre = (uint8_t)(c - s);
			o->special = (uint8_t)special;
			memcpy(o->orig, fn + s, o->len);
			return 1;
		}
	}
	return 0;
}

int loader_cpuid_scan(const uint8_t *fn, size_t n, uint64_t va, struct loader_cpuid_site *out,
		      unsigned max)
{
	if (!fn || n < 2 || n > FN_MAX || va + n < va || !max)
		return 0;
	size_t bytes = (n + 7) / 8;
	struct fn_map m = {calloc(1, bytes), calloc(1, bytes)};
	unsigned got = 0;
	if (m.start && m.target && map_function(fn, n, &m) == 0)
		for (size_t c = 0; c + 1 < n && got < max; c++)
			if (fn[c] == 0x0f && fn[c + 1] == 0xa2 && bit(m.start, c) &&
			    site_at(fn, n, va, &m, c, &out[got]))
				got++;
	free(m.start);
	free(m.target);
	return (int)got;
}

/* The cpuids of one image, in file addresses, and the function each lies in. */
#define HITS_MAX 256
/* Bytes of functions decoded for one image at most: glibc's start-up holds 10 KiB of them, a
 * hostile file must not make a load take seconds. */
#define DECODE_BUDGET (1u << 20)
struct hits {
	GElf_Addr at[HITS_MAX], lo[HITS_MAX], hi[HITS_MAX];
	unsigned n;
};

/* Was [lo, hi) scanned already, for an earlier hit? */
static int scanned(const struct hits *h, unsigned i)
{
	for (unsigned k = 0; k < i; k++)
		if (h->lo[k] == h->lo[i] && h->hi[k] == h->hi[i])
			return 1;
	return 0;
}

/* The first hit at or past start, by a binary search (hits are in address order). */
static unsigned first_hit(const struct hits *h, GElf_Addr start)
{
	unsigned a = 0, b = h->n;
	while (a < b) {
		unsigned mid = (a + b) / 2;
		if (h->at[mid] < start)
			a = mid + 1;
		else
			b = mid;
	}
	return a;
}

/* Every FUNC symbol's range widens the bounds of the hits it covers: symbols may nest or
 * overlap (aliases, a second entry point into a function), and the union of those covering a
 * hit is decoded, so that no branch of the whole is missed. One pass, no sorting. */
static void syms_bounds(Elf *e, struct hits *h)
{
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB)
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		size_t cnt = d ? d->d_size / sizeof(Elf64_Sym) : 0, work = 0;
		/* Bounded: a hostile table of many symbols covering many hits. */
		for (size_t i = 0; i < cnt && work < (1u << 22); i++, work++) {
			GElf_Sym sym;
			if (!gelf_getsym(d, (int)i, &sym) ||
			    GELF_ST_TYPE(sym.st_info) != STT_FUNC || !sym.st_size ||
			    sym.st_size > FN_MAX || sym.st_value + sym.st_size < sym.st_value)
				continue;
			GElf_Addr lo = sym.st_value, hi = sym.st_value + sym.st_size;
			for (unsigned k = first_hit(h, lo); k < h->n && h->at[k] < hi;
			     k++, work++) {
				if (!h->hi[k] || lo < h->lo[k])
					h->lo[k] = lo;
				if (hi > h->hi[k])
					h->hi[k] = hi;
			}
		}
		return;
	}
}

/* .eh_frame, read only for each FDE's [pc_begin, pc_begin + pc_range): a small bounded
 * reader of the format rather than libdw, which would also run the hostile file's CFA
 * programs to answer the same question. */
struct eh_reader {
	const uint8_t *p, *end;
	uint64_t addr; /* the address of *p */
	int bad;
};

static uint64_t eh_uleb(struct eh_reader *r)
{
	uint64_t v = 0;
	for (unsigned shift = 0; r->p < r->end && shift < 64; shift += 7) {
		uint8_t b = *r->p++;
		r->addr++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	r->bad = 1;
	return 0;
}

static uint64_t eh_fixed(struct eh_reader *r, unsigned n)
{
	if (r->p > r->end || (size_t)(r->end - r->p) < n) {
		r->bad = 1;
		return 0;
	}
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)r->p[i] << (8 * i);
	r->p += n, r->addr += n;
	return v;
}

/* A pointer in DWARF's eh encoding enc (format in the low nibble; pcrel the only
 * application honoured: datarel, textrel and indirect pointers are refused). */
static uint64_t eh_ptr(struct eh_reader *r, uint8_t enc, int relative)
{
	uint64_t at = r->addr, v;
	switch (enc & 0x0f) {
	case 0x00:
	case 0x04:
	case 0x0c:
		v = eh_fixed(r, 8);
		break;
	case 0x02:
		v = eh_fixed(r, 2);
		break;
	case 0x0a:
		v = (uint64_t)(int64_t)(int16_t)eh_fixed(r, 2);
		break;
	case 0x03:
		v = eh_fixed(r, 4);
		break;
	case 0x0b:
		v = (uint64_t)(int64_t)(int32_t)eh_fixed(r, 4);
		break;
	case 0x01:
		v = eh_uleb(r);
		break;
	default:
		r->bad = 1;
		return 0;
	}
	if (!relative)
		return v;
	if (enc & 0x80) /* indirect: an address of the address */
		r->bad = 1;
	if ((enc & 0x70) == 0x10)
		return at + v;
	if (enc & 0x70)
		r->bad = 1;
	return v;
}

/* The FDE encoding of the CIE at c (its body after the id): 0 absolute, or -1. */
static int eh_cie(const uint8_t *c, const uint8_t *end, uint64_t addr, uint8_t *enc)
{
	struct eh_reader r = {c, end, addr, 0};
	uint8_t version = (uint8_t)eh_fixed(&r, 1);
	const uint8_t *aug = r.p;
	/* Compilers write at most "zPLRSB": a longer string is refused unread, so that every
	 * FDE pointing at one hostile CIE costs no more than a short one. */
	while (r.p < r.end && *r.p && r.p - aug < 8)
		r.p++, r.addr++;
	if (r.p >= r.end || *r.p || (version != 1 && version != 3))
		return -1;
	size_t alen = (size_t)(r.p - aug);
	r.p++, r.addr++;
	eh_uleb(&r); /* code alignment */
	eh_uleb(&r); /* data alignment (its sign does not matter here) */
	version == 1 ? eh_fixed(&r, 1) : eh_uleb(&r); /* return column */
	*enc = 0;
	if (alen == 0)
		return r.bad ? -1 : 0;
	if (aug[0] != 'z')
		return -1;
	eh_uleb(&r); /* the augmentation data's length */
	for (size_t i = 1; i < alen && !r.bad; i++) {
		if (aug[i] == 'R')
			*enc = (uint8_t)eh_fixed(&r, 1);
		else if (aug[i] == 'L')
			eh_fixed(&r, 1);
		else if (aug[i] == 'P') {
			uint8_t penc = (uint8_t)eh_fixed(&r, 1);
			if ((penc & 0x70) == 0x50)
				return -1; /* aligned: padding this reader does not count */
			eh_ptr(&r, penc & 0x0f, 0); /* its value is not needed */
		} else if (aug[i] != 'S' && aug[i] != 'B')
			return -1;
	}
	return r.bad ? -1 : 0;
}

static uint32_t le32_at(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Each hit that no symbol covered gets the range of the FDE covering it: one pass over the
 * section, each CIE read once for a run of FDEs that share it. */
static void cfi_bounds(Elf *e, struct hits *h)
{
	unsigned need = 0;
	for (unsigned k = 0; k < h->n; k++)
		need += !h->hi[k];
	size_t shstrndx;
	if (!need || elf_getshdrstrndx(e, &shstrndx) < 0)
		return;
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	Elf_Data *d = NULL;
	while ((scn = elf_nextscn(e, scn))) {
		const char *name;
		/* lld gives it the x86-64 unwind type, GNU ld PROGBITS. */
		if (gelf_getshdr(scn, &sh) &&
		    (sh.sh_type == SHT_PROGBITS || sh.sh_type == SHT_X86_64_UNWIND) &&
		    (name = elf_strptr(e, shstrndx, sh.sh_name)) && !strcmp(name, ".eh_frame")) {
			d = elf_getdata(scn, NULL);
			break;
		}
	}
	if (!d || !d->d_buf || d->d_size < 8)
		return;
	const uint8_t *base = d->d_buf, *end = base + d->d_size, *last_cie = NULL;
	uint8_t enc = 0;
	int last_ok = 0;
	for (const uint8_t *p = base; end - p >= 8 && need;) {
		uint32_t len32 = le32_at(p);
		if (len32 < 4 || len32 == 0xffffffffu || len32 > (size_t)(end - p) - 4)
			return; /* the end, a 64-bit entry (no compiler writes them here), or bad */
		const uint8_t *body = p + 4, *next = body + len32;
		uint32_t id = le32_at(body);
		p = next;
		if (id == 0 || id > (size_t)(body - base) || len32 < 8)
			continue; /* a CIE, an FDE whose CIE is not before it, or one too short */
		const uint8_t *cie = body - id;
		if (cie != last_cie) {
			uint32_t clen = end - cie >= 8 ? le32_at(cie) : 0;
			last_cie = cie;
			last_ok = clen >= 5 && clen <= (size_t)(end - cie) - 4 &&
				  !le32_at(cie + 4) &&
				  eh_cie(cie + 8, cie + 4 + clen,
					 sh.sh_addr + (uint64_t)(cie + 8 - base), &enc) == 0;
		}
		if (!last_ok)
			continue;
		struct eh_reader r = {body + 4, next, sh.sh_addr + (uint64_t)(body + 4 - base), 0};
		uint64_t start = eh_ptr(&r, enc, 1), range = eh_ptr(&r, enc & 0x0f, 0);
		if (r.bad || start + range < start)
			continue;
		for (unsigned k = first_hit(h, start); k < h->n && h->at[k] < start + range; k++)
			if (!h->hi[k] && h->at[k] + 2 <= start + range) {
				h->lo[k] = start, h->hi[k] = start + range;
				need--;
			}
	}
}

/* Has the image text relocations? The program would then write its own code at start-up. */
static int textrel(Elf *e)
{
	size_t n;
	if (elf_getphdrnum(e, &n) < 0)
		return 1;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(e, (int)i, &ph) || ph.p_type != PT_DYNAMIC)
			continue;
		Elf_Data *d = elf_getdata_rawchunk(e, ph.p_offset, ph.p_filesz, ELF_T_DYN);
		size_t cnt = d ? d->d_size / sizeof(Elf64_Dyn) : 0;
		for (size_t k = 0; k < cnt; k++) {
			GElf_Dyn dyn;
			if (!gelf_getdyn(d, (int)k, &dyn))
				break;
			if (dyn.d_tag == DT_TEXTREL ||
			    (dyn.d_tag == DT_FLAGS && (dyn.d_un.d_val & DF_TEXTREL)))
				return 1;
			if (dyn.d_tag == DT_NULL)
				break;
		}
	}
	return 0;
}

void loader_find_cpuid(Elf *e, const uint8_t *raw, size_t size, struct loader_plan *plan)
{
	struct loader_image *img = &plan->img;
	img->ncpuid = 0;
	if (textrel(e))
		return;
	struct hits *h = calloc(1, sizeof(*h));
	size_t budget = DECODE_BUDGET;
	if (!h)
		return;
	for (unsigned k = 0; k < plan->nloads; k++) {
		const struct loader_load *ld = &plan->loads[k];
		if (!(ld->prot & PROT_EXEC) || (ld->prot & PROT_WRITE) || ld->offset > size ||
		    ld->filesz > size - ld->offset || ld->filesz < 2)
			continue;
		const uint8_t *seg = raw + ld->offset;
		GElf_Addr seg_va = ld->vaddr - img->bias; /* the file's own addresses */
		h->n = 0;
		/* 0xa2 is rarer than 0x0f, which starts every two-byte opcode. */
		for (const uint8_t *p = seg + 1, *end = seg + ld->filesz;
		     p < end && (p = memchr(p, 0xa2, (size_t)(end - p))) && h->n < HITS_MAX; p++)
			if (p[-1] == 0x0f) {
				h->at[h->n] = seg_va + (GElf_Addr)(p - 1 - seg);
				h->lo[h->n] = h->hi[h->n] = 0;
				h->n++;
			}
		if (!h->n)
			continue;
		syms_bounds(e, h);
		cfi_bounds(e, h);
		for (unsigned i = 0; i < h->n && img->ncpuid < LOADER_CPUID_MAX; i++) {
			GElf_Addr lo = h->lo[i], hi = h->hi[i];
			if (!hi || lo < seg_va || hi > seg_va + ld->filesz || hi - lo > FN_MAX ||
			    hi - lo > budget || scanned(h, i))
				continue; /* no bounds, past the budget, or scanned whole already */
			budget -= (size_t)(hi - lo);
			img->ncpuid += (unsigned)loader_cpuid_scan(
			    seg + (lo - seg_va), hi - lo, lo + img->bias, img->cpuid + img->ncpuid,
			    LOADER_CPUID_MAX - img->ncpuid);
		}
	}
	free(h);
}
