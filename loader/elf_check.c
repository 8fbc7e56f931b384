/* Validation: every header is checked against the file and the guest window before a single
 * byte is copied, so a hostile file is refused with a reason instead of half-loaded. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/mman.h>

#include "loader_priv.h"

/* Real programs have about a dozen; a cap keeps the work per file small and fixed. */
#define MAX_PHNUM 128
/* Enough of a PT_INTERP path to recognise it, short enough for one line. */
#define INTERP_SHOWN 96

#define FAIL(...) loader_fail(err, errlen, -ENOEXEC, __VA_ARGS__)

int elf_check_ident(const uint8_t *raw, size_t size, char *err, size_t errlen)
{
	if (size == 0)
		return FAIL("not an ELF file: the file is empty");
	if (size < SELFMAG || memcmp(raw, ELFMAG, SELFMAG) != 0)
		return FAIL("not an ELF file: it does not start with the \\x7fELF magic");
	if (size < EI_NIDENT)
		return FAIL(
		    "truncated ELF header: the file has %zu bytes, the ELF header needs %zu", size,
		    sizeof(Elf64_Ehdr));
	if (raw[EI_CLASS] == ELFCLASS32)
		return FAIL("32-bit ELF (ELFCLASS32) is not supported: x86-64 only");
	if (raw[EI_CLASS] != ELFCLASS64)
		return FAIL("ELF class %u is invalid (EI_CLASS must be 1 or 2)", raw[EI_CLASS]);
	if (raw[EI_DATA] == ELFDATA2MSB)
		return FAIL(
		    "big-endian ELF (ELFDATA2MSB) is not supported: x86-64 is little-endian");
	if (raw[EI_DATA] != ELFDATA2LSB)
		return FAIL("ELF data encoding %u is invalid (EI_DATA must be 1 or 2)",
			    raw[EI_DATA]);
	if (raw[EI_VERSION] != EV_CURRENT)
		return FAIL("ELF identification version %u is not EV_CURRENT (1)", raw[EI_VERSION]);
	if (size < sizeof(Elf64_Ehdr))
		return FAIL(
		    "truncated ELF header: the file has %zu bytes, the ELF header needs %zu", size,
		    sizeof(Elf64_Ehdr));
	return 0;
}

static const char *machine_name(unsigned m)
{
	switch (m) {
	case EM_NONE:
		return "none";
	case EM_SPARC:
		return "SPARC";
	case EM_386:
		return "Intel 80386";
	case EM_MIPS:
		return "MIPS";
	case EM_PPC:
		return "PowerPC";
	case EM_PPC64:
		return "PowerPC64";
	case EM_S390:
		return "S/390";
	case EM_ARM:
		return "ARM";
	case EM_SPARCV9:
		return "SPARC v9";
	case EM_IA_64:
		return "IA-64";
	case EM_AARCH64:
		return "AArch64";
	case EM_RISCV:
		return "RISC-V";
	case 258:
		return "LoongArch";
	default:
		return "unknown";
	}
}

static int is_pow2_or_trivial(uint64_t a)
{
	return a <= 1 || (a & (a - 1)) == 0;
}

static uint32_t prot_of(uint32_t flags)
{
	return (flags & PF_R ? PROT_READ : 0) | (flags & PF_W ? PROT_WRITE : 0) |
	       (flags & PF_X ? PROT_EXEC : 0);
}

static int check_ehdr(const GElf_Ehdr *eh, size_t size, char *err, size_t errlen)
{
	if (eh->e_machine != EM_X86_64)
		return FAIL("ELF machine is %s (%u), not x86-64", machine_name(eh->e_machine),
			    eh->e_machine);
	if (eh->e_type == ET_REL)
		return FAIL("ELF type is ET_REL (a relocatable object), not an executable: link it "
			    "first");
	if (eh->e_type == ET_CORE)
		return FAIL("ELF type is ET_CORE (a core dump), not an executable");
	if (eh->e_type != ET_EXEC && eh->e_type != ET_DYN)
		return FAIL("ELF type 0x%x is not ET_EXEC or ET_DYN", eh->e_type);
	if (eh->e_version != EV_CURRENT)
		return FAIL("ELF version %" PRIu32 " is not EV_CURRENT (1)", eh->e_version);
	if (eh->e_phentsize != sizeof(Elf64_Phdr))
		return FAIL("e_phentsize is %u, not %zu (sizeof(Elf64_Phdr))", eh->e_phentsize,
			    sizeof(Elf64_Phdr));
	if (eh->e_phnum == PN_XNUM)
		return FAIL("e_phnum is PN_XNUM (0xffff): extended program header counts are not "
			    "supported");
	if (eh->e_phnum == 0)
		return FAIL("no program headers (e_phnum is 0): nothing to load");
	if (eh->e_phnum > MAX_PHNUM)
		return FAIL("e_phnum is %u: more than %d program headers", eh->e_phnum, MAX_PHNUM);
	uint64_t tab = (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr);
	if (eh->e_phoff > size || tab > size - eh->e_phoff)
		return FAIL("program header table 0x%" PRIx64 "+0x%" PRIx64
			    " extends past the end of the file (0x%zx bytes)",
			    (uint64_t)eh->e_phoff, tab, size);
	return 0;
}

/* PT_INTERP as Linux's load_elf_binary() takes it (2 to PATH_MAX bytes, NUL-terminated), a
 * little stricter: one only, absolute, no NUL inside, since the path is opened by name. */
static int check_interp(unsigned i, const GElf_Phdr *ph, const uint8_t *raw, size_t size,
			struct loader_image *img, char *err, size_t errlen)
{
	char shown[INTERP_SHOWN * 4 + 4];

	if (img->interp[0])
		return FAIL("program header %u: a second PT_INTERP (one names the interpreter)", i);
	if (ph->p_offset > size || ph->p_filesz > size - ph->p_offset)
		return FAIL("PT_INTERP %u: file range 0x%" PRIx64 "+0x%" PRIx64
			    " extends past the end of the file (0x%zx bytes)",
			    i, (uint64_t)ph->p_offset, (uint64_t)ph->p_filesz, size);
	const uint8_t *s = raw + ph->p_offset;
	uint64_t n = ph->p_filesz;
	loader_escape(shown, sizeof(shown), s, n, INTERP_SHOWN);
	if (n < 2)
		return FAIL("PT_INTERP %u: the interpreter path is empty", i);
	if (n > LOADER_INTERP_MAX)
		return FAIL("PT_INTERP %u: the interpreter path %s has 0x%" PRIx64
			    " bytes, more than %d",
			    i, shown, n, LOADER_INTERP_MAX);
	if (s[n - 1] != 0)
		return FAIL("PT_INTERP %u: the interpreter path %s is not NUL-terminated", i,
			    shown);
	if (strlen((const char *)s) != n - 1)
		return FAIL("PT_INTERP %u: the interpreter path %s has a NUL byte before its end",
			    i, shown);
	if (s[0] != '/')
		return FAIL("PT_INTERP %u: the interpreter path %s is not absolute", i, shown);
	memcpy(img->interp, s, n);
	return 0;
}

/* Checks of one PT_LOAD that need nothing but the header and the file size. */
static int check_load_alone(unsigned i, const GElf_Phdr *ph, size_t size, char *err, size_t errlen)
{
	if (ph->p_offset > size || ph->p_filesz > size - ph->p_offset)
		return FAIL("PT_LOAD %u: file range 0x%" PRIx64 "+0x%" PRIx64
			    " extends past the end of the file (0x%zx bytes)",
			    i, (uint64_t)ph->p_offset, (uint64_t)ph->p_filesz, size);
	if (ph->p_filesz > ph->p_memsz)
		return FAIL("PT_LOAD %u: p_filesz 0x%" PRIx64 " is larger than p_memsz 0x%" PRIx64,
			    i, (uint64_t)ph->p_filesz, (uint64_t)ph->p_memsz);
	if (!is_pow2_or_trivial(ph->p_align))
		return FAIL("PT_LOAD %u: p_align 0x%" PRIx64 " is not 0, 1 or a power of two", i,
			    (uint64_t)ph->p_align);
	/* Linux maps the file, so the offset must sit at the same place in its page. */
	if ((ph->p_vaddr - ph->p_offset) % LOADER_PAGE != 0)
		return FAIL("PT_LOAD %u: p_vaddr 0x%" PRIx64 " and p_offset 0x%" PRIx64
			    " differ modulo the page size (0x%llx)",
			    i, (uint64_t)ph->p_vaddr, (uint64_t)ph->p_offset, LOADER_PAGE);
	if (ph->p_vaddr > UINT64_MAX - LOADER_PAGE ||
	    ph->p_memsz > UINT64_MAX - LOADER_PAGE - ph->p_vaddr)
		return FAIL("PT_LOAD %u: p_vaddr 0x%" PRIx64 " + p_memsz 0x%" PRIx64
			    " wraps around the address space",
			    i, (uint64_t)ph->p_vaddr, (uint64_t)ph->p_memsz);
	return 0;
}

/* The PT_LOAD segments' extent [lo, hi) and their largest alignment (at least a page).
 * check_load_alone() has made sure no end wraps or rounds past 2^64. */
static void load_extent(const GElf_Phdr *ph, unsigned phnum, uint64_t *align, uint64_t *lo,
			uint64_t *hi)
{
	*align = LOADER_PAGE;
	*lo = UINT64_MAX;
	*hi = 0;
	for (unsigned i = 0; i < phnum; i++) {
		if (ph[i].p_type != PT_LOAD || ph[i].p_memsz == 0)
			continue;
		if (ph[i].p_align > *align)
			*align = ph[i].p_align;
		if (ph[i].p_vaddr < *lo)
			*lo = ph[i].p_vaddr;
		if (ph[i].p_vaddr + ph[i].p_memsz > *hi)
			*hi = ph[i].p_vaddr + ph[i].p_memsz;
	}
}

/* The static-PIE placement: at or above pie_base, aligned to the largest p_align so every
 * segment keeps the alignment it was linked for. */
static int pie_bias(const GElf_Phdr *ph, unsigned phnum, uint64_t pie_base, uint64_t *bias,
		    char *err, size_t errlen)
{
	uint64_t align, lo, hi;
	load_extent(ph, phnum, &align, &lo, &hi);
	if (pie_base > UINT64_MAX - (align - 1))
		return FAIL("static-PIE base 0x%" PRIx64 " rounded up to p_align 0x%" PRIx64
			    " wraps around the address space",
			    pie_base, align);
	uint64_t base = (pie_base + align - 1) & ~(align - 1);
	lo &= ~(align - 1);
	*bias = base > lo ? base - lo : 0;
	return 0;
}

/* The placement mmap gives the interpreter on Linux: as high as it fits, its page-rounded end
 * at or below `top`, its start aligned to the largest p_align. */
static int pie_bias_top(const GElf_Phdr *ph, unsigned phnum, uint64_t top, uint64_t *bias,
			char *err, size_t errlen)
{
	uint64_t align, lo, hi;
	load_extent(ph, phnum, &align, &lo, &hi);
	lo &= ~(align - 1);
	hi = (hi + LOADER_PAGE - 1) & ~(LOADER_PAGE - 1);
	if (hi - lo > top)
		return FAIL("the image spans 0x%" PRIx64 " bytes: more than fit below 0x%" PRIx64,
			    hi - lo, top);
	uint64_t base = (top - (hi - lo)) & ~(align - 1);
	if (base < lo)
		return FAIL("the image is linked at 0x%" PRIx64 ", above the highest place it fits "
			    "below 0x%" PRIx64,
			    lo, top);
	*bias = base - lo;
	return 0;
}

static int check_placement(unsigned i, const GElf_Phdr *ph, uint64_t bias,
			   const struct loader_params *params, const struct loader_mem *mem,
			   struct loader_load *ld, char *err, size_t errlen)
{
	uint64_t limit = params->max_addr < mem->size ? params->max_addr : mem->size;

	/* p_vaddr + p_memsz + one page is known not to wrap; now add the bias. */
	if (bias > UINT64_MAX - LOADER_PAGE - ph->p_vaddr - ph->p_memsz)
		return FAIL("PT_LOAD %u: p_vaddr 0x%" PRIx64 " + p_memsz 0x%" PRIx64
			    " placed at bias 0x%" PRIx64 " wraps around the address space",
			    i, (uint64_t)ph->p_vaddr, (uint64_t)ph->p_memsz, bias);
	uint64_t start = ph->p_vaddr + bias, end = start + ph->p_memsz;
	uint64_t pstart = start & ~(LOADER_PAGE - 1);
	uint64_t pend = (end + LOADER_PAGE - 1) & ~(LOADER_PAGE - 1);
	if (pstart < params->min_addr || pend > limit)
		return FAIL("PT_LOAD %u: pages 0x%" PRIx64 "-0x%" PRIx64
			    " lie outside the allowed range 0x%" PRIx64 "-0x%" PRIx64 "%s",
			    i, pstart, pend, params->min_addr, limit,
			    limit < params->max_addr ? " (the end of guest RAM)" : "");
	ld->vaddr = start;
	ld->memsz = ph->p_memsz;
	ld->offset = ph->p_offset;
	ld->filesz = ph->p_filesz;
	ld->prot = prot_of(ph->p_flags);
	return 0;
}

static int check_overlaps(const struct loader_plan *plan, const unsigned *idx, char *err,
			  size_t errlen)
{
	for (unsigned a = 0; a < plan->nloads; a++) {
		const struct loader_load *x = &plan->loads[a];
		for (unsigned b = a + 1; b < plan->nloads; b++) {
			const struct loader_load *y = &plan->loads[b];
			if (x->vaddr < y->vaddr + y->memsz && y->vaddr < x->vaddr + x->memsz)
				return FAIL("PT_LOAD %u (0x%" PRIx64 "-0x%" PRIx64
					    ") overlaps PT_LOAD %u (0x%" PRIx64 "-0x%" PRIx64 ")",
					    idx[a], x->vaddr, x->vaddr + x->memsz, idx[b], y->vaddr,
					    y->vaddr + y->memsz);
		}
	}
	return 0;
}

static int check_entry(const struct loader_plan *plan, const unsigned *idx, uint64_t entry,
		       char *err, size_t errlen)
{
	for (unsigned k = 0; k < plan->nloads; k++) {
		const struct loader_load *ld = &plan->loads[k];
		if (entry < ld->vaddr || entry - ld->vaddr >= ld->memsz)
			continue;
		if (ld->prot & PROT_EXEC)
			return 0;
		return FAIL("entry point 0x%" PRIx64 " lies in PT_LOAD %u, which is not "
			    "executable (no PF_X)",
			    entry, idx[k]);
	}
	return FAIL("entry point 0x%" PRIx64 " is not inside any PT_LOAD segment", entry);
}

/* AT_PHDR as Linux computes it: PT_PHDR if there is one, else the PT_LOAD whose file bytes
 * hold the program header table, else 0. */
static uint64_t find_phdr(const GElf_Ehdr *eh, const GElf_Phdr *ph, uint64_t bias)
{
	for (unsigned i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_PHDR)
			return ph[i].p_vaddr + bias;
	for (unsigned i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_LOAD && ph[i].p_offset <= eh->e_phoff &&
		    eh->e_phoff - ph[i].p_offset < ph[i].p_filesz)
			return eh->e_phoff - ph[i].p_offset + ph[i].p_vaddr + bias;
	return 0;
}

/* Checks every program header on its own; counts the PT_LOADs. */
static int check_phdrs(const GElf_Phdr *ph, unsigned phnum, const uint8_t *raw, size_t size,
		       struct loader_image *img, char *err, size_t errlen)
{
	unsigned n = 0, nonempty = 0;
	int rc;

	for (unsigned i = 0; i < phnum; i++) {
		switch (ph[i].p_type) {
		case PT_INTERP:
			rc = check_interp(i, &ph[i], raw, size, img, err, errlen);
			if (rc < 0)
				return rc;
			break;
		case PT_LOAD:
			if (++n > LOADER_MAX_SEGS)
				return FAIL("more than %d PT_LOAD segments", LOADER_MAX_SEGS);
			rc = check_load_alone(i, &ph[i], size, err, errlen);
			if (rc < 0)
				return rc;
			nonempty += ph[i].p_memsz != 0;
			break;
		case PT_GNU_STACK:
			img->exec_stack = (ph[i].p_flags & PF_X) != 0;
			break;
		case PT_TLS:
			if (ph[i].p_filesz > ph[i].p_memsz)
				return FAIL("PT_TLS %u: p_filesz 0x%" PRIx64
					    " is larger than p_memsz 0x%" PRIx64,
					    i, (uint64_t)ph[i].p_filesz, (uint64_t)ph[i].p_memsz);
			if (!is_pow2_or_trivial(ph[i].p_align))
				return FAIL("PT_TLS %u: p_align 0x%" PRIx64
					    " is not 0, 1 or a power of two",
					    i, (uint64_t)ph[i].p_align);
			img->tls_memsz = ph[i].p_memsz;
			img->tls_align = ph[i].p_align;
			break;
		default:
			break;
		}
	}
	if (n == 0)
		return FAIL("no PT_LOAD segment: nothing to load");
	if (nonempty == 0)
		return FAIL("every PT_LOAD segment is empty (p_memsz 0): nothing to load");
	return 0;
}

int elf_check(Elf *e, const uint8_t *raw, size_t size, const struct loader_params *params,
	      const struct loader_mem *mem, struct loader_plan *plan, char *err, size_t errlen)
{
	GElf_Phdr ph[MAX_PHNUM];
	unsigned idx[LOADER_MAX_SEGS];
	GElf_Ehdr eh;
	uint64_t bias = 0;
	int rc;

	memset(plan, 0, sizeof(*plan));
	if (!gelf_getehdr(e, &eh))
		return FAIL("libelf cannot read the ELF header: %s", elf_errmsg(-1));
	rc = check_ehdr(&eh, size, err, errlen);
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < eh.e_phnum; i++)
		if (!gelf_getphdr(e, (int)i, &ph[i]))
			return FAIL("libelf cannot read program header %u: %s", i, elf_errmsg(-1));
	rc = check_phdrs(ph, eh.e_phnum, raw, size, &plan->img, err, errlen);
	if (rc < 0)
		return rc;
	if (eh.e_type == ET_DYN) {
		rc = params->pie_top
			 ? pie_bias_top(ph, eh.e_phnum, params->pie_top, &bias, err, errlen)
			 : pie_bias(ph, eh.e_phnum, params->pie_base, &bias, err, errlen);
		if (rc < 0)
			return rc;
	}
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD || ph[i].p_memsz == 0)
			continue;
		idx[plan->nloads] = i;
		rc = check_placement(i, &ph[i], bias, params, mem, &plan->loads[plan->nloads], err,
				     errlen);
		if (rc < 0)
			return rc;
		plan->nloads++;
	}
	rc = check_overlaps(plan, idx, err, errlen);
	if (rc < 0)
		return rc;
	rc = check_entry(plan, idx, eh.e_entry + bias, err, errlen);
	if (rc < 0)
		return rc;

	struct loader_image *img = &plan->img;
	img->entry = eh.e_entry + bias;
	img->prog_entry = img->entry;
	img->bias = bias;
	img->phdr = find_phdr(&eh, ph, bias);
	img->phnum = eh.e_phnum;
	img->phent = eh.e_phentsize;
	img->is_pie = eh.e_type == ET_DYN;
	loader_make_segments(plan);
	return 0;
}
