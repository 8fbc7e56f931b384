/* The initial stack, laid out as Linux's create_elf_tables() does, minus the randomisation:
 * programs (glibc's and musl's start code, getauxval) find everything where they expect it. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "loader_priv.h"

#ifndef AT_MINSIGSTKSZ
#define AT_MINSIGSTKSZ 51
#endif

#define PLATFORM "x86_64"
#define MAX_AUXV 24

struct string_list {
	const char *const *v;
	uint64_t n;	/* entries before the NULL */
	uint64_t bytes; /* their lengths including each NUL */
};

/* Count without letting a huge list overflow the sums: stop once it cannot fit anyway. */
static int measure(struct string_list *l, const char *const *v, uint64_t avail)
{
	l->v = v;
	l->n = 0;
	l->bytes = 0;
	for (; v && v[l->n]; l->n++) {
		l->bytes += strlen(v[l->n]) + 1;
		if (l->bytes > avail || l->n > avail / 8)
			return -E2BIG;
	}
	return 0;
}

static int put_strings(struct loader_mem *mem, uint64_t *at, const struct string_list *l)
{
	for (uint64_t i = 0; i < l->n; i++) {
		uint64_t len = strlen(l->v[i]) + 1;
		int rc = loader_guest_write(mem, *at, l->v[i], len);
		if (rc < 0)
			return rc;
		*at += len;
	}
	return 0;
}

/* Pointers to strings laid out back to back from `str`, then a NULL. */
static int put_pointers(struct loader_mem *mem, uint64_t *at, uint64_t str,
			const struct string_list *l)
{
	uint64_t zero = 0;
	int rc;

	for (uint64_t i = 0; i < l->n; i++) {
		rc = loader_guest_write(mem, *at, &str, 8);
		if (rc < 0)
			return rc;
		*at += 8;
		str += strlen(l->v[i]) + 1;
	}
	rc = loader_guest_write(mem, *at, &zero, 8);
	*at += 8;
	return rc;
}

static unsigned make_auxv(uint64_t (*auxv)[2], const struct loader_image *img,
			  const struct loader_stack_args *a, uint64_t random, uint64_t execfn,
			  uint64_t platform)
{
	unsigned n = 0;

#define AUX(t, v)                                                                                  \
	do {                                                                                       \
		auxv[n][0] = (t);                                                                  \
		auxv[n][1] = (v);                                                                  \
		n++;                                                                               \
	} while (0)
	/* Linux's order: ARCH_DLINFO first, then the generic entries. */
	if (a->sysinfo_ehdr)
		AUX(AT_SYSINFO_EHDR, a->sysinfo_ehdr);
	if (a->minsigstksz)
		AUX(AT_MINSIGSTKSZ, a->minsigstksz);
	AUX(AT_HWCAP, a->hwcap);
	AUX(AT_PAGESZ, LOADER_PAGE);
	AUX(AT_CLKTCK, a->clktck);
	AUX(AT_PHDR, img->phdr);
	AUX(AT_PHENT, img->phent);
	AUX(AT_PHNUM, img->phnum);
	AUX(AT_BASE, img->interp_base);
	AUX(AT_FLAGS, 0);
	AUX(AT_ENTRY, img->prog_entry);
	AUX(AT_UID, a->uid);
	AUX(AT_EUID, a->euid);
	AUX(AT_GID, a->gid);
	AUX(AT_EGID, a->egid);
	AUX(AT_SECURE, a->secure);
	AUX(AT_RANDOM, random);
	AUX(AT_HWCAP2, a->hwcap2);
	AUX(AT_EXECFN, execfn);
	AUX(AT_PLATFORM, platform);
	AUX(AT_NULL, 0);
#undef AUX
	return n;
}

int loader_build_stack(struct loader_mem *mem, const struct loader_image *img,
		       const struct loader_stack_args *args, uint64_t *rsp_out, char *err,
		       size_t errlen)
{
	static const char *const empty_argv[] = {"", NULL};
	struct string_list av, ev;
	uint64_t auxv[MAX_AUXV][2];
	int rc;

	if (!mem || !mem->base || !img || !args || !rsp_out)
		return loader_fail(err, errlen, -EINVAL,
				   "stack builder called without memory, "
				   "image, arguments or output");
	uint64_t top = args->stack_top, limit = args->stack_limit;
	if (top % 16 != 0 || limit >= top || top > mem->size)
		return loader_fail(
		    err, errlen, -EINVAL,
		    "bad stack window 0x%" PRIx64 "-0x%" PRIx64
		    " (top must be 16-byte aligned, above the limit and inside guest "
		    "RAM of 0x%" PRIx64 " bytes)",
		    limit, top, mem->size);
	if (limit < img->hi && img->lo < top)
		return loader_fail(err, errlen, -EINVAL,
				   "stack window 0x%" PRIx64 "-0x%" PRIx64
				   " overlaps the program's segments 0x%" PRIx64 "-0x%" PRIx64,
				   limit, top, img->lo, img->hi);
	/* No initial stack needs 256 TiB; the cap keeps every size sum below from overflowing
	 * whatever window a caller claims. */
	uint64_t avail = top - limit < (1ull << 48) ? top - limit : 1ull << 48;
	/* Since Linux 5.18 an empty argv becomes { "" } so argv[0] is always there. */
	const char *const *argv = args->argv && args->argv[0] ? args->argv : empty_argv;
	const char *execfn = args->execfn ? args->execfn : argv[0];
	if (measure(&av, argv, avail) < 0 || measure(&ev, args->envp, avail) < 0)
		return loader_fail(err, errlen, -E2BIG,
				   "initial stack needs more than 0x%" PRIx64
				   " bytes for the argv and envp strings alone, but only 0x%" PRIx64
				   " fit between 0x%" PRIx64 " and 0x%" PRIx64,
				   avail, avail, limit, top);

	/* Everything is measured as a distance below `top`, which is 16-aligned, so rounding
	 * a distance up is rounding the address down. No sum can overflow: the string lists are
	 * each at most `avail` (< 2^48) and execfn is a real host string. */
	uint64_t execfn_len = strlen(execfn) + 1;
	uint64_t strings = av.bytes + ev.bytes + execfn_len;
	uint64_t d_str = 8 + strings;
	uint64_t d_platform = ((d_str + 15) & ~15ull) + sizeof(PLATFORM);
	uint64_t d_random = d_platform + 16;
	unsigned nauxv = make_auxv(auxv, img, args, 0, 0, 0);
	uint64_t words = 1 + (av.n + 1) + (ev.n + 1) + 2 * (uint64_t)nauxv;
	uint64_t need = (d_random + words * 8 + 15) & ~15ull;
	if (need > avail)
		return loader_fail(err, errlen, -E2BIG,
				   "initial stack needs 0x%" PRIx64 " bytes (%" PRIu64
				   " argv and %" PRIu64 " envp strings, 0x%" PRIx64
				   " bytes of strings), but only 0x%" PRIx64
				   " fit between 0x%" PRIx64 " and 0x%" PRIx64,
				   need, av.n, ev.n, strings, avail, limit, top);

	/* Strings from the top down: a zero word, execfn, envp, argv (argv[0] lowest). */
	uint64_t str = top - d_str, at = str, zero = 0;
	uint64_t execfn_addr = top - 8 - execfn_len;
	uint64_t platform = top - d_platform, random = top - d_random, sp = top - need;
	if ((rc = put_strings(mem, &at, &av)) < 0 || (rc = put_strings(mem, &at, &ev)) < 0 ||
	    (rc = loader_guest_write(mem, execfn_addr, execfn, execfn_len)) < 0 ||
	    (rc = loader_guest_write(mem, top - 8, &zero, 8)) < 0 ||
	    (rc = loader_guest_write(mem, platform, PLATFORM, sizeof(PLATFORM))) < 0 ||
	    (rc = loader_guest_write(mem, random, args->random, 16)) < 0)
		goto fault;

	make_auxv(auxv, img, args, random, execfn_addr, platform);
	at = sp;
	if ((rc = loader_guest_write(mem, at, &av.n, 8)) < 0)
		goto fault;
	at += 8;
	if ((rc = put_pointers(mem, &at, str, &av)) < 0 ||
	    (rc = put_pointers(mem, &at, str + av.bytes, &ev)) < 0 ||
	    (rc = loader_guest_write(mem, at, auxv, nauxv * sizeof(auxv[0]))) < 0)
		goto fault;
	*rsp_out = sp;
	return 0;
fault:
	return loader_fail(err, errlen, rc, "initial stack write outside guest RAM");
}
