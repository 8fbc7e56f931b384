/* libFuzzer target for snapshot files: the input becomes a file (a memfd) that goes through
 * mig_snap_open, every section, mig_snap_read_pages and mig_snap_pages_extent(verify=1).
 * Every failure must say why on one line; nothing may crash or read out of bounds.
 *
 * An input starting "SBXSPRS\0" is a sparse description instead (u64 file size, then
 * records of u64 offset, u16 length and bytes; the rest is zero), so that small inputs can
 * reach the raw-pages paths, whose image alone is at least 2 MiB. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "migrate.h"

#define MAX_FILE (80ull << 20)
#define MAX_MEM (64ull << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int sparse_file(int fd, const uint8_t *d, size_t n)
{
	if (n < 16)
		return -1;
	uint64_t fsz = le(d + 8, 8);
	if (fsz > MAX_FILE || ftruncate(fd, (off_t)fsz) < 0)
		return -1;
	for (size_t i = 16; i + 10 <= n;) {
		uint64_t off = le(d + i, 8), len = le(d + i + 8, 2);
		i += 10;
		if (len > n - i)
			len = n - i;
		if (off > fsz || len > fsz - off)
			return -1;
		if (pwrite(fd, d + i, len, (off_t)off) != (ssize_t)len)
			return -1;
		i += len;
	}
	return 0;
}

static void check(int rc, const char *err)
{
	if (rc < 0 && (!err[0] || strchr(err, '\n')))
		__builtin_trap(); /* every failure says why, on one line */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	int fd = memfd_create("fuzz.snap", MFD_CLOEXEC);
	if (fd < 0)
		__builtin_trap();
	if (size >= 8 && memcmp(data, "SBXSPRS\0", 8) == 0) {
		if (sparse_file(fd, data, size) < 0)
			goto out;
	} else if (size && write(fd, data, size) != (ssize_t)size) {
		__builtin_trap();
	}

	struct mig_snap_reader *r;
	err[0] = 0;
	int rc = mig_snap_open(&r, fd, err, sizeof(err));
	check(rc, err);
	if (rc < 0)
		goto out;
	const struct mig_snap_header *h = mig_snap_header_of(r);
	for (uint32_t t = 0; t <= MIG_SEC_PAGES + 1; t++) {
		const void *body;
		uint64_t len;
		uint16_t ver;
		err[0] = 0;
		rc = mig_snap_section(r, t, &ver, &body, &len, err, sizeof(err));
		check(rc, err);
		if (rc == 0 && len && ((const volatile uint8_t *)body)[len - 1] == 0xff)
			err[0] = 0; /* touch the last byte: ASan checks the bound */
	}
	uint64_t mem = h->mem_size;
	if (mem <= MAX_MEM) {
		uint8_t *dst = mmap(NULL, mem, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (dst == MAP_FAILED)
			__builtin_trap();
		err[0] = 0;
		check(mig_snap_read_pages(r, dst, mem, err, sizeof(err)), err);
		munmap(dst, mem);
	}
	uint64_t off, len;
	err[0] = 0;
	rc = mig_snap_pages_extent(r, 1, &off, &len, err, sizeof(err));
	check(rc, err);
	if (rc == 0 && (off % MIG_PAGE_SIZE || len != h->mem_size))
		__builtin_trap();
	mig_snap_reader_free(r);
out:
	close(fd);
	return 0;
}
