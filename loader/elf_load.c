/* Loading: open the image with libelf, let elf_check() decide everything, then copy. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader_priv.h"

/* Two passes so that zeroing a page's padding for one segment can never wipe bytes another
 * segment sharing that page has already copied there. */
static int copy_segments(const struct loader_plan *plan, const uint8_t *raw,
			 const struct loader_params *params, struct loader_mem *mem, char *err,
			 size_t errlen)
{
	int rc;

	if (!params->mem_is_zero) {
		for (unsigned k = 0; k < plan->nloads; k++) {
			const struct loader_load *ld = &plan->loads[k];
			uint64_t a = ld->vaddr & ~(LOADER_PAGE - 1);
			uint64_t b = (ld->vaddr + ld->memsz + LOADER_PAGE - 1) & ~(LOADER_PAGE - 1);
			rc = loader_guest_zero(mem, a, b - a);
			if (rc < 0)
				return loader_fail(err, errlen, rc,
						   "cannot zero 0x%" PRIx64 "-0x%" PRIx64
						   ": outside guest RAM",
						   a, b);
		}
	}
	for (unsigned k = 0; k < plan->nloads; k++) {
		const struct loader_load *ld = &plan->loads[k];
		rc = loader_guest_write(mem, ld->vaddr, raw + ld->offset, ld->filesz);
		if (rc < 0)
			return loader_fail(err, errlen, rc,
					   "cannot copy 0x%" PRIx64 "+0x%" PRIx64
					   ": outside guest RAM",
					   ld->vaddr, ld->filesz);
	}
	return 0;
}

/* copy 0: every check, nothing written (loader_check_mem). */
static int load_elf(Elf *e, const uint8_t *raw, size_t size, const struct loader_params *params,
		    struct loader_mem *mem, struct loader_image *out, int copy, char *err,
		    size_t errlen)
{
	struct loader_plan *plan;
	int rc;

	/* The plan is a few KiB: keep it off the caller's stack (fuzzers, small threads). */
	plan = malloc(sizeof(*plan));
	if (!plan)
		return loader_fail(err, errlen, -ENOMEM, "out of memory");
	rc = elf_check(e, raw, size, params, mem, plan, err, errlen);
	if (rc == 0 && copy)
		rc = copy_segments(plan, raw, params, mem, err, errlen);
	if (rc == 0 && copy && params->cpuid_sites)
		loader_find_cpuid(e, raw, size, plan);
	if (rc == 0)
		*out = plan->img;
	free(plan);
	return rc;
}

static int check_args(const struct loader_params *params, struct loader_mem *mem,
		      struct loader_image *out, char *err, size_t errlen)
{
	if (!params || !mem || !mem->base || !out)
		return loader_fail(err, errlen, -EINVAL,
				   "loader called without params, memory "
				   "or output");
	if (elf_version(EV_CURRENT) == EV_NONE)
		return loader_fail(err, errlen, -ENOSYS, "libelf is out of date: %s",
				   elf_errmsg(-1));
	return 0;
}

static int from_mem(const void *buf, size_t len, const struct loader_params *params,
		    struct loader_mem *mem, struct loader_image *out, int load, char *err,
		    size_t errlen)
{
	uint8_t *copy;
	Elf *e;
	int rc;

	rc = check_args(params, mem, out, err, errlen);
	if (rc < 0)
		return rc;
	if (!buf && len)
		return loader_fail(err, errlen, -EINVAL, "no buffer");
	rc = elf_check_ident(buf, len, err, errlen);
	if (rc < 0)
		return rc;
	/* elf_memory() takes a writable image; the caller's stays untouched, unless it is a
	 * private copy the caller gives up (buf_private: an execve's file, read whole). */
	copy = params->buf_private ? (uint8_t *)(uintptr_t)buf : malloc(len);
	if (!copy)
		return loader_fail(err, errlen, -ENOMEM, "out of memory for a 0x%zx-byte copy",
				   len);
	if (copy != buf)
		memcpy(copy, buf, len);
	e = elf_memory((char *)copy, len);
	if (!e) {
		rc = loader_fail(err, errlen, -ENOEXEC, "libelf cannot parse the file: %s",
				 elf_errmsg(-1));
	} else {
		rc = load_elf(e, copy, len, params, mem, out, load, err, errlen);
		elf_end(e);
	}
	if (copy != buf)
		free(copy);
	return rc;
}

int loader_load_mem(const void *buf, size_t len, const struct loader_params *params,
		    struct loader_mem *mem, struct loader_image *out, char *err, size_t errlen)
{
	return from_mem(buf, len, params, mem, out, 1, err, errlen);
}

int loader_check_mem(const void *buf, size_t len, const struct loader_params *params,
		     struct loader_mem *mem, struct loader_image *out, char *err, size_t errlen)
{
	return from_mem(buf, len, params, mem, out, 0, err, errlen);
}

static int read_ident(int fd, const char *path, size_t size, char *err, size_t errlen)
{
	uint8_t id[sizeof(Elf64_Ehdr)];
	size_t want = size < sizeof(id) ? size : sizeof(id);
	ssize_t n = pread(fd, id, want, 0);

	if (n < 0)
		return loader_fail(err, errlen, -errno, "cannot read %s: %s", path,
				   strerror(errno));
	return elf_check_ident(id, (size_t)n, err, errlen);
}

int loader_load_fd(int fd, const char *name, const struct loader_params *params,
		   struct loader_mem *mem, struct loader_image *out, char *err, size_t errlen)
{
	struct stat st;
	size_t size;
	Elf *e;
	int rc;

	rc = check_args(params, mem, out, err, errlen);
	if (rc < 0)
		return rc;
	if (fstat(fd, &st) < 0)
		return loader_fail(err, errlen, -errno, "cannot stat %s: %s", name,
				   strerror(errno));
	if (!S_ISREG(st.st_mode))
		return loader_fail(err, errlen, -EACCES, "%s is not a regular file", name);
	size = (size_t)st.st_size;
	/* libelf cannot map an empty file, and the ident check gives the better message. */
	rc = read_ident(fd, name, size, err, errlen);
	if (rc < 0)
		return rc;
	e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!e)
		return loader_fail(err, errlen, -ENOEXEC, "libelf cannot parse the file: %s",
				   elf_errmsg(-1));
	/* Check and copy the same mapped bytes libelf parses, not what pread saw earlier. */
	const uint8_t *raw = (const uint8_t *)elf_rawfile(e, &size);
	if (!raw)
		rc = loader_fail(err, errlen, -ENOEXEC, "libelf cannot map the file: %s",
				 elf_errmsg(-1));
	else if ((rc = elf_check_ident(raw, size, err, errlen)) == 0)
		rc = load_elf(e, raw, size, params, mem, out, 1, err, errlen);
	elf_end(e);
	return rc;
}

int loader_load_file(const char *path, const struct loader_params *params, struct loader_mem *mem,
		     struct loader_image *out, char *err, size_t errlen)
{
	int fd, rc;

	rc = check_args(params, mem, out, err, errlen);
	if (rc < 0)
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return loader_fail(err, errlen, -errno, "cannot open %s: %s", path,
				   strerror(errno));
	rc = loader_load_fd(fd, path, params, mem, out, err, errlen);
	close(fd);
	return rc;
}
