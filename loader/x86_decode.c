/* Lengths of x86-64 instructions, and the little else cpuid_sites.c asks of them: the opcode,
 * the ModRM byte, whether the operand is RIP-relative, where a direct branch goes. Capstone
 * could say all that, but formats every instruction's text as it goes: 130 ns an instruction,
 * 0.45 ms for glibc's start-up code, more than the cpuids it saves cost. This is ~10 ns.
 * Anything it does not know (a reserved opcode, XOP, a map past 0f3a) is 0: not decoded, so the
 * function holding it is left alone. tests/loader checks it against capstone, instruction by
 * instruction, over every executable on the machine, and tests/fuzz/fuzz_cpuid.c on any bytes. */
#include <string.h>

#include "loader_priv.h"

/* One bit per opcode of the one-byte map: has a ModRM byte. */
static const uint8_t modrm_1[32] = {
    /* 00-0f */ 0x0f,
    0x0f,
    /* 10-1f */ 0x0f,
    0x0f,
    /* 20-2f */ 0x0f,
    0x0f,
    /* 30-3f */ 0x0f,
    0x0f,
    /* 40-4f */ 0x00,
    0x00,
    /* 50-5f */ 0x00,
    0x00,
    /* 60-6f: 62 63 69 6b */ 0x0c,
    0x0a,
    /* 70-7f */ 0x00,
    0x00,
    /* 80-8f */ 0xff,
    0xff,
    /* 90-9f */ 0x00,
    0x00,
    /* a0-af */ 0x00,
    0x00,
    /* b0-bf */ 0x00,
    0x00,
    /* c0-cf: c0 c1 c4 c5 c6 c7 */ 0xf3,
    0x00,
    /* d0-df: d0-d3 d8-df */ 0x0f,
    0xff,
    /* e0-ef */ 0x00,
    0x00,
    /* f0-ff: f6 f7 fe ff */ 0xc0,
    0xc0,
};

/* The same for the 0f map (0f 38 and 0f 3a always have one). */
static const uint8_t modrm_2[32] = {
    /* 00-0f: 00-03 0d 0f */ 0x0f,
    0xa0,
    /* 10-1f */ 0xff,
    0xff,
    /* 20-2f: 20-23 28-2f */ 0x0f,
    0xff,
    /* 30-3f */ 0x00,
    0x00,
    /* 40-4f */ 0xff,
    0xff,
    /* 50-5f */ 0xff,
    0xff,
    /* 60-6f */ 0xff,
    0xff,
    /* 70-7f: not 77 7a 7b */ 0x7f,
    0xf3,
    /* 80-8f */ 0x00,
    0x00,
    /* 90-9f */ 0xff,
    0xff,
    /* a0-af: a3-a5 ab-af */ 0x38,
    0xf8,
    /* b0-bf */ 0xff,
    0xff,
    /* c0-cf: c0-c7 */ 0xff,
    0x00,
    /* d0-df */ 0xff,
    0xff,
    /* e0-ef */ 0xff,
    0xff,
    /* f0-ff */ 0xff,
    0xff,
};

/* 0f opcodes that do not exist in 64-bit mode, or that this decoder leaves alone (3DNow!, whose
 * opcode comes last; vmread and vmwrite, whose length AMD's extrq and insertq change). */
static int bad_2(uint8_t op)
{
	return op == 0x04 || op == 0x0a || op == 0x0c || op == 0x0f || (op >= 0x24 && op <= 0x27) ||
	       op == 0x36 || op == 0x39 || (op >= 0x3b && op <= 0x3f) || op == 0x7a || op == 0x7b ||
	       op == 0xa6 || op == 0xa7 || op == 0x78 || op == 0x79 || op == 0xb9 ||
	       op == 0xff; /* ud1, ud0: capstone and the vendors differ */
}

/* One-byte opcodes that do not exist in 64-bit mode. */
static int bad_1(uint8_t op)
{
	return op == 0x06 || op == 0x07 || op == 0x0e || op == 0x16 || op == 0x17 || op == 0x1e ||
	       op == 0x1f || op == 0x27 || op == 0x2f || op == 0x37 || op == 0x3f || op == 0x60 ||
	       op == 0x61 || op == 0x82 || op == 0x9a || op == 0xce || op == 0xd4 || op == 0xd5 ||
	       op == 0xd6 || op == 0xea;
}

static int bit_of(const uint8_t *t, uint8_t op)
{
	return (t[op / 8] >> (op % 8)) & 1;
}

/* Immediate bytes of a one-byte-map opcode (z: 4, or 2 with 66). -1: its own rule. */
static int imm_1(uint8_t op, int z, const uint8_t *modrm)
{
	if (op < 0x40 && (op & 7) == 4)
		return 1;
	if (op < 0x40 && (op & 7) == 5)
		return z;
	switch (op) {
	case 0x68:
	case 0x69:
	case 0x81:
	case 0xa9:
	case 0xc7:
		return z;
	case 0x6a:
	case 0x6b:
	case 0x80:
	case 0x83:
	case 0xa8:
	case 0xc0:
	case 0xc1:
	case 0xc6:
	case 0xcd:
	case 0xe4:
	case 0xe5:
	case 0xe6:
	case 0xe7:
		return 1;
	case 0xc2:
	case 0xca:
		return 2;
	case 0xc8:
		return 3;
	case 0xf6:
		return ((*modrm >> 3) & 7) < 2 ? 1 : 0;
	case 0xf7:
		return ((*modrm >> 3) & 7) < 2 ? z : 0;
	default:
		if (op >= 0xb0 && op <= 0xb7)
			return 1;
		if (op >= 0xb8 && op <= 0xbf)
			return -1;
		return 0;
	}
}

/* ModRM, SIB and displacement at p: their bytes, or 0 past n. */
static size_t modrm_bytes(const uint8_t *p, size_t n, int *rip_rel)
{
	if (n < 1)
		return 0;
	uint8_t m = p[0], mod = m >> 6, rm = m & 7;
	size_t len = 1;
	*rip_rel = 0;
	if (mod == 3)
		return 1;
	if (rm == 4) {
		if (n < 2)
			return 0;
		len = 2;
		if (mod == 0 && (p[1] & 7) == 5)
			len += 4;
	} else if (mod == 0 && rm == 5) {
		len += 4;
		*rip_rel = 1;
	}
	len += mod == 1 ? 1 : mod == 2 ? 4 : 0;
	return len <= n ? len : 0;
}

/* A legacy prefix: operand and address size, lock, rep, a segment. */
static int legacy_prefix(uint8_t b)
{
	return b == 0x66 || b == 0x67 || b == 0xf0 || b == 0xf2 || b == 0xf3 || b == 0x2e ||
	       b == 0x36 || b == 0x3e || b == 0x26 || b == 0x64 || b == 0x65;
}

unsigned loader_x86_decode(const uint8_t *p, size_t n, struct loader_insn *in)
{
	memset(in, 0, sizeof(*in));
	if (n > 15)
		n = 15;
	size_t i = 0;
	int opsize = 0, adsize = 0;
	for (; i < n && legacy_prefix(p[i]); i++) {
		uint8_t b = p[i];
		if (b == 0x66)
			opsize = 1;
		else if (b == 0x67)
			adsize = 1;
		else if (b == 0xf2 || b == 0xf3)
			in->rep = b;
		else if (b == 0xf0)
			in->lock = 1;
	}
	in->prefixes = (uint8_t)i;
	if (i < n && (p[i] & 0xf0) == 0x40)
		in->rex = p[i++];
	if (i >= n)
		return 0;
	int z = opsize && !(in->rex & 8) ? 2 : 4, imm = 0; /* REX.W outweighs 66 */
	uint8_t op = p[i++];
	/* A prefix after REX voids the REX: no compiler writes that, so it is left alone. */
	if (in->rex && (legacy_prefix(op) || (op & 0xf0) == 0x40))
		return 0;
	if (op == 0xc4 || op == 0xc5 || op == 0x62) {
		/* VEX and EVEX: always, in 64-bit mode; no legacy 66/f2/f3 or REX before them. */
		size_t extra = op == 0xc5 ? 1 : op == 0xc4 ? 2 : 3;
		if (in->rex || opsize || in->rep || i + extra >= n)
			return 0;
		uint8_t map = op == 0xc5 ? 1 : op == 0xc4 ? (p[i] & 0x1f) : (p[i] & 7);
		if (op == 0x62 && (p[i] & 0x08))
			return 0; /* EVEX's reserved bit: APX and later encodings */
		i += extra;
		uint8_t o = p[i++];
		in->map = (uint8_t)(map + 1);
		in->op = o;
		in->vex = 1;
		if (map < 1 || map > 3)
			return 0;
		if (map == 1 && o == 0x77 && op != 0x62) {
			in->len = (uint8_t)i; /* vzeroupper, vzeroall */
			return in->len;
		}
		imm = map == 3 || (map == 1 && ((o >= 0x70 && o <= 0x73) || o == 0xc2 ||
						(o >= 0xc4 && o <= 0xc6)));
		goto modrm;
	}
	if (op == 0x8f && i < n && (p[i] & 0x38))
		return 0; /* XOP (AMD) */
	in->op = op;
	if (op == 0x0f) {
		if (i >= n)
			return 0;
		op = p[i++];
		in->op = op;
		if (op == 0x38 || op == 0x3a) {
			if (i >= n)
				return 0;
			in->map = op == 0x38 ? 3 : 4;
			in->op = p[i++];
			imm = op == 0x3a;
			goto modrm;
		}
		in->map = 2;
		if (bad_2(op))
			return 0;
		if (op >= 0x80 && op <= 0x8f) {
			if (opsize || i + 4 > n)
				return 0;
			int32_t d;
			memcpy(&d, p + i, 4);
			i += 4;
			in->len = (uint8_t)i;
			in->branch = 1;
			in->rel = d;
			return in->len;
		}
		imm = (op >= 0x70 && op <= 0x73) || op == 0xa4 || op == 0xac || op == 0xba ||
		      op == 0xc2 || (op >= 0xc4 && op <= 0xc6);
		if (!bit_of(modrm_2, op)) {
			in->len = (uint8_t)i;
			return in->len;
		}
		goto modrm;
	}
	in->map = 1;
	if (bad_1(op) || (op >= 0x40 && op <= 0x4f))
		return 0;
	/* Direct branches: rel8 (jcc, jmp, loop, jrcxz) and rel32 (call, jmp). A 66 prefix
	 * makes the last two rel16 on AMD and not on Intel: left alone. */
	if ((op >= 0x70 && op <= 0x7f) || (op >= 0xe0 && op <= 0xe3) || op == 0xeb) {
		if (i + 1 > n)
			return 0;
		in->rel = (int8_t)p[i++];
		in->branch = 1;
		in->len = (uint8_t)i;
		return in->len;
	}
	if (op == 0xe8 || op == 0xe9) {
		if (opsize || i + 4 > n)
			return 0;
		int32_t d;
		memcpy(&d, p + i, 4);
		i += 4;
		in->rel = d;
		in->branch = 1;
		in->len = (uint8_t)i;
		return in->len;
	}
	if (op >= 0xa0 && op <= 0xa3) { /* mov with a full address */
		i += adsize ? 4 : 8;
		if (i > n)
			return 0;
		in->len = (uint8_t)i;
		return in->len;
	}
	if (!bit_of(modrm_1, op)) {
		int k = imm_1(op, z, NULL);
		if (k < 0) /* b8+r: imm64 with REX.W */
			k = (in->rex & 8) ? 8 : z;
		i += (size_t)k;
		if (i > n)
			return 0;
		in->len = (uint8_t)i;
		return in->len;
	}
	if (i >= n)
		return 0;
	{
		int k = imm_1(op, z, p + i);
		size_t m = modrm_bytes(p + i, n - i, &in->rip_rel);
		if (!m)
			return 0;
		in->has_modrm = 1;
		in->modrm = p[i];
		i += m + (size_t)k;
		if (i > n)
			return 0;
		if (op == 0xc7 && in->modrm == 0xf8) { /* xbegin: its abort path is a target */
			if (opsize)
				return 0;
			memcpy(&in->rel, p + i - 4, 4);
			in->branch = 1;
		}
		in->len = (uint8_t)i;
		return in->len;
	}
modrm:
	if (i >= n)
		return 0;
	{
		/* mov to and from control and debug registers: the ModRM is a register's, whatever
		 * its mod bits say. */
		int regs_only = in->map == 2 && !in->vex && in->op >= 0x20 && in->op <= 0x23;
		size_t m = regs_only ? 1 : modrm_bytes(p + i, n - i, &in->rip_rel);
		if (!m)
			return 0;
		in->has_modrm = 1;
		in->modrm = p[i];
		i += m + (imm ? 1 : 0);
		if (i > n)
			return 0;
		in->len = (uint8_t)i;
		return in->len;
	}
}

uint32_t loader_insn_starts(const uint8_t *code, size_t n)
{
	uint32_t starts = 0;
	struct loader_insn in;
	for (size_t at = 0; at < n && at < 32;) {
		starts |= 1u << at;
		unsigned len = loader_x86_decode(code + at, n - at, &in);
		if (!len)
			break;
		at += len;
	}
	return starts;
}
