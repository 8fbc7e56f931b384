/* An ELF object's dynamic section as ld.so reads it: PT_INTERP, and the DT_NEEDED, DT_RPATH,
 * DT_RUNPATH and DT_SONAME strings from DT_STRTAB. The object is untrusted: only bounded reads
 * at checked offsets, counts and sizes capped, every string NUL-terminated inside DT_STRSZ. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader_priv.h"

#define MAX_PHNUM 128
#define MAX_DYN 4096	       /* dynamic entries read; real objects have < 100 */
#define MAX_STRTAB (16u << 20) /* bytes of DT_STRTAB read */
#define MAX_STR 4096	       /* one name or search path, with its NUL */
#define SHOWN 64

#define FAIL(...) loader_fail(err, errlen, -ENOEXEC, __VA_ARGS__)

/* Either a buffer or a file: reads of [off, off+len) that must lie wholly inside it. */
struct src {
	const uint8_t *buf;
	int fd;
	uint64_t size;
};

static int rd(const struct src *s, uint64_t off, void *dst, uint64_t len)
{
	if (off > s->size || len > s->size - off)
		return -1;
	if (s->buf) {
		memcpy(dst, s->buf + off, len);
		return 0;
	}
	for (uint64_t done = 0; done < len;) {
		ssize_t n = pread(s->fd, (uint8_t *)dst + done, len - done, (off_t)(off + done));
		if (n <= 0)
			return -1;
		done += (uint64_t)n;
	}
	return 0;
}

/* The file offset of `len` bytes at virtual address `va`, through the PT_LOAD holding them. */
static int va_to_off(const Elf64_Phdr *ph, unsigned n, uint64_t va, uint64_t len, uint64_t *off)
{
	for (unsigned i = 0; i < n; i++) {
		if (ph[i].p_type != PT_LOAD || va < ph[i].p_vaddr)
			continue;
		uint64_t d = va - ph[i].p_vaddr;
		if (d >= ph[i].p_filesz || len > ph[i].p_filesz - d ||
		    ph[i].p_offset > UINT64_MAX - d)
			continue;
		*off = ph[i].p_offset + d;
		return 0;
	}
	return -1;
}

static int str_at(const char *tab, uint64_t tabsz, uint64_t off, const char *name, const char *what,
		  char **out, char *err, size_t errlen)
{
	if (off >= tabsz)
		return FAIL("%s: %s string offset 0x%" PRIx64 " is past DT_STRSZ 0x%" PRIx64, name,
			    what, off, tabsz);
	const char *s = tab + off;
	const char *end = memchr(s, 0, tabsz - off < MAX_STR ? tabsz - off : MAX_STR);
	if (!end)
		return FAIL("%s: %s string at 0x%" PRIx64 " is unterminated or longer than %d "
			    "bytes",
			    name, what, off, MAX_STR - 1);
	*out = strdup(s);
	return *out ? 0 : loader_fail(err, errlen, -ENOMEM, "out of memory");
}

static int read_interp(const struct src *s, const Elf64_Phdr *ph, unsigned i, const char *name,
		       struct loader_dyninfo *d, char *err, size_t errlen)
{
	char buf[LOADER_INTERP_MAX], shown[SHOWN * 4 + 4];
	uint64_t n = ph->p_filesz;

	if (d->interp)
		return FAIL("%s: program header %u: a second PT_INTERP", name, i);
	if (n < 2 || n > sizeof(buf) || rd(s, ph->p_offset, buf, n) < 0)
		return FAIL("%s: PT_INTERP %u: 0x%" PRIx64 " bytes at 0x%" PRIx64
			    " are empty, too long or past the end of the file",
			    name, i, n, (uint64_t)ph->p_offset);
	loader_escape(shown, sizeof(shown), (const uint8_t *)buf, n, SHOWN);
	if (buf[n - 1] || strlen(buf) != n - 1 || buf[0] != '/')
		return FAIL("%s: PT_INTERP %u: %s is not one NUL-terminated absolute path", name, i,
			    shown);
	d->interp = strdup(buf);
	return d->interp ? 0 : loader_fail(err, errlen, -ENOMEM, "out of memory");
}

/* The dynamic entries and the string table they point into, both malloc'd. */
static int read_dynamic(const struct src *s, const Elf64_Phdr *ph, unsigned nph,
			const Elf64_Phdr *dyn, const char *name, Elf64_Dyn **dv, uint64_t *ndv,
			char **tab, uint64_t *tabsz, char *err, size_t errlen)
{
	uint64_t n = dyn->p_filesz / sizeof(Elf64_Dyn), strtab = 0, strsz = 0;
	int have_tab = 0, have_sz = 0;

	if (n > MAX_DYN)
		n = MAX_DYN;
	*dv = malloc((n ? n : 1) * sizeof(Elf64_Dyn));
	if (!*dv)
		return loader_fail(err, errlen, -ENOMEM, "out of memory");
	if (rd(s, dyn->p_offset, *dv, n * sizeof(Elf64_Dyn)) < 0)
		return FAIL("%s: PT_DYNAMIC 0x%" PRIx64 "+0x%" PRIx64
			    " extends past the end of the file",
			    name, (uint64_t)dyn->p_offset, (uint64_t)dyn->p_filesz);
	for (uint64_t i = 0; i < n; i++) {
		if ((*dv)[i].d_tag == DT_NULL) {
			n = i;
			break;
		}
		if ((*dv)[i].d_tag == DT_STRTAB) {
			strtab = (*dv)[i].d_un.d_ptr;
			have_tab = 1;
		} else if ((*dv)[i].d_tag == DT_STRSZ) {
			strsz = (*dv)[i].d_un.d_val;
			have_sz = 1;
		}
	}
	*ndv = n;
	*tab = NULL;
	*tabsz = 0;
	if (!have_tab && !have_sz)
		return 0;
	if (!have_tab || !have_sz)
		return FAIL("%s: the dynamic section has %s but not %s", name,
			    have_tab ? "DT_STRTAB" : "DT_STRSZ",
			    have_tab ? "DT_STRSZ" : "DT_STRTAB");
	if (strsz == 0 || strsz > MAX_STRTAB)
		return FAIL("%s: DT_STRSZ 0x%" PRIx64 " is 0 or more than 0x%x", name, strsz,
			    MAX_STRTAB);
	uint64_t off;
	if (va_to_off(ph, nph, strtab, strsz, &off) < 0)
		return FAIL("%s: DT_STRTAB 0x%" PRIx64 "+0x%" PRIx64
			    " is not inside the file bytes of any PT_LOAD",
			    name, strtab, strsz);
	*tab = malloc(strsz);
	if (!*tab)
		return loader_fail(err, errlen, -ENOMEM, "out of memory");
	if (rd(s, off, *tab, strsz) < 0)
		return FAIL("%s: DT_STRTAB at file offset 0x%" PRIx64 "+0x%" PRIx64
			    " extends past the end of the file",
			    name, off, strsz);
	*tabsz = strsz;
	return 0;
}

static int take_strings(const Elf64_Dyn *dv, uint64_t n, const char *tab, uint64_t tabsz,
			const char *name, struct loader_dyninfo *d, char *err, size_t errlen)
{
	uint64_t nneeded = 0;
	int rc = 0;

	for (uint64_t i = 0; i < n; i++)
		nneeded += dv[i].d_tag == DT_NEEDED;
	if (nneeded > LOADER_DYN_MAX_NEEDED)
		return FAIL("%s: %" PRIu64 " DT_NEEDED entries, more than %d", name, nneeded,
			    LOADER_DYN_MAX_NEEDED);
	if ((nneeded || n) && !tab) {
		for (uint64_t i = 0; i < n; i++)
			if (dv[i].d_tag == DT_NEEDED || dv[i].d_tag == DT_RPATH ||
			    dv[i].d_tag == DT_RUNPATH || dv[i].d_tag == DT_SONAME)
				return FAIL("%s: dynamic strings without DT_STRTAB", name);
	}
	d->needed = calloc(nneeded ? nneeded : 1, sizeof(char *));
	if (!d->needed)
		return loader_fail(err, errlen, -ENOMEM, "out of memory");
	for (uint64_t i = 0; i < n && rc == 0; i++) {
		uint64_t v = dv[i].d_un.d_val;
		switch (dv[i].d_tag) {
		case DT_NEEDED:
			rc = str_at(tab, tabsz, v, name, "DT_NEEDED", &d->needed[d->nneeded], err,
				    errlen);
			if (rc == 0 && !d->needed[d->nneeded][0]) {
				free(d->needed[d->nneeded]);
				d->needed[d->nneeded] = NULL;
				rc = FAIL("%s: an empty DT_NEEDED name", name);
			}
			if (rc == 0)
				d->nneeded++;
			break;
		case DT_RPATH:
			if (!d->rpath)
				rc =
				    str_at(tab, tabsz, v, name, "DT_RPATH", &d->rpath, err, errlen);
			break;
		case DT_RUNPATH:
			if (!d->runpath)
				rc = str_at(tab, tabsz, v, name, "DT_RUNPATH", &d->runpath, err,
					    errlen);
			break;
		case DT_SONAME:
			if (!d->soname)
				rc = str_at(tab, tabsz, v, name, "DT_SONAME", &d->soname, err,
					    errlen);
			break;
		default:
			break;
		}
	}
	return rc;
}

static int parse(const struct src *s, const char *name, struct loader_dyninfo *d, char *err,
		 size_t errlen)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph[MAX_PHNUM];
	const Elf64_Phdr *dyn = NULL;
	Elf64_Dyn *dv = NULL;
	char *tab = NULL;
	uint64_t ndv = 0, tabsz = 0;
	int rc;

	memset(d, 0, sizeof(*d));
	if (rd(s, 0, &eh, sizeof(eh)) < 0 || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
		return FAIL("%s: not an ELF file", name);
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh.e_machine != EM_X86_64)
		return FAIL("%s: not a 64-bit little-endian x86-64 ELF file", name);
	if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)
		return FAIL("%s: ELF type 0x%x is not ET_EXEC or ET_DYN", name, eh.e_type);
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > MAX_PHNUM)
		return FAIL("%s: %u program headers of %u bytes: want 1 to %d of %zu", name,
			    eh.e_phnum, eh.e_phentsize, MAX_PHNUM, sizeof(Elf64_Phdr));
	if (rd(s, eh.e_phoff, ph, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr)) < 0)
		return FAIL("%s: the program header table extends past the end of the file", name);
	d->is_dyn = eh.e_type == ET_DYN;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		if (ph[i].p_type == PT_INTERP) {
			rc = read_interp(s, &ph[i], i, name, d, err, errlen);
			if (rc < 0)
				goto out;
		} else if (ph[i].p_type == PT_DYNAMIC && !dyn) {
			dyn = &ph[i];
		}
	}
	rc = 0;
	if (dyn) {
		rc = read_dynamic(s, ph, eh.e_phnum, dyn, name, &dv, &ndv, &tab, &tabsz, err,
				  errlen);
		if (rc == 0)
			rc = take_strings(dv, ndv, tab, tabsz, name, d, err, errlen);
	}
out:
	free(dv);
	free(tab);
	if (rc < 0)
		loader_dyninfo_free(d);
	return rc;
}

int loader_dyninfo_mem(const void *buf, size_t len, const char *name, struct loader_dyninfo *out,
		       char *err, size_t errlen)
{
	struct src s = {.buf = buf, .fd = -1, .size = buf ? len : 0};
	return parse(&s, name, out, err, errlen);
}

int loader_dyninfo_fd(int fd, const char *name, struct loader_dyninfo *out, char *err,
		      size_t errlen)
{
	struct stat st;
	memset(out, 0, sizeof(*out));
	if (fstat(fd, &st) < 0)
		return loader_fail(err, errlen, -errno, "%s: cannot stat: %s", name,
				   strerror(errno));
	if (!S_ISREG(st.st_mode))
		return FAIL("%s: not a regular file", name);
	struct src s = {.buf = NULL, .fd = fd, .size = (uint64_t)st.st_size};
	return parse(&s, name, out, err, errlen);
}

void loader_dyninfo_free(struct loader_dyninfo *d)
{
	for (size_t i = 0; d->needed && i < d->nneeded; i++)
		free(d->needed[i]);
	free(d->needed);
	free(d->interp);
	free(d->runpath);
	free(d->rpath);
	free(d->soname);
	memset(d, 0, sizeof(*d));
}
