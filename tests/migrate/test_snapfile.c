/* The snapshot container (migrate.h): round trips of sections and RAM (raw with holes, zstd),
 * the mapping of the raw image, rejection of every kind of damage with a one-line message
 * naming the section, forward compatibility with later minors, tmp/commit/abort, and the
 * fixture written by format 1.0. No KVM.
 *
 * Damage that must pass the checksums to reach a semantic check (overlaps, bad offsets, ...)
 * is made by editing the table and then resealing the checksums, using the layout in
 * docs/snapshot-format.md; the offsets below are that document's, not the code's. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "mig_internal.h"
#include "migrate.h"

#ifndef SBX_SNAPSHOT_DATA_DIR
#error "SBX_SNAPSHOT_DATA_DIR must name tests/data/snapshot"
#endif

#define MiB (1ull << 20)
#define PG MIG_PAGE_SIZE

/* Layout (docs/snapshot-format.md). */
#define H_MAJOR 8
#define H_MINOR 10
#define H_HEADER_SIZE 12
#define H_NSECTIONS 20
#define H_MEM_SIZE 24
#define H_TSC 32
#define H_FILE_SIZE 48
#define H_TABLE_OFF 56
#define H_ENTRY_SIZE 64
#define H_TABLE_SUM 72
#define H_HEADER_SUM 80
#define E_TYPE 0
#define E_FLAGS 6
#define E_OFFSET 8
#define E_LENGTH 16
#define E_CHECKSUM 24

/* ---- helpers ------------------------------------------------------------------------------ */

static char dir[64];

static void setup_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test_snapfile.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown_dir(void)
{
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

static void expect_fail(int rc, const char *err, const char *want)
{
	cr_assert_lt(rc, 0, "expected a failure with \"%s\"", want);
	cr_assert(err[0], "a failure says why");
	cr_assert_null(strchr(err, '\n'), "one line: %s", err);
	cr_assert_not_null(strstr(err, want), "\"%s\" should contain \"%s\"", err, want);
}

static uint64_t rd64(int fd, uint64_t off)
{
	uint8_t b[8];
	cr_assert_eq(pread(fd, b, 8, (off_t)off), 8);
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

static void wr(int fd, uint64_t off, uint64_t v, int bytes)
{
	uint8_t b[8];
	for (int i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	cr_assert_eq(pwrite(fd, b, (size_t)bytes, (off_t)off), bytes);
}

static uint32_t rd32(int fd, uint64_t off)
{
	return (uint32_t)rd64(fd, off);
}

/* Recomputes the table and header checksums after an edit, so that the edit reaches the
 * checks behind them. */
static void reseal(int fd)
{
	uint32_t hs = rd32(fd, H_HEADER_SIZE), n = rd32(fd, H_NSECTIONS);
	uint32_t esz = rd32(fd, H_ENTRY_SIZE);
	uint64_t toff = rd64(fd, H_TABLE_OFF);
	uint8_t *t = malloc((size_t)n * esz + 1);
	/* A table the edit moved out of the file keeps its old checksum. */
	if (n <= 64 && esz <= 256 && pread(fd, t, (size_t)n * esz, (off_t)toff) == (ssize_t)n * esz)
		wr(fd, H_TABLE_SUM, XXH3_64bits(t, (size_t)n * esz), 8);
	free(t);
	uint8_t h[4096];
	wr(fd, H_HEADER_SUM, 0, 8);
	cr_assert_eq(pread(fd, h, hs, 0), (ssize_t)hs);
	wr(fd, H_HEADER_SUM, XXH3_64bits(h, hs), 8);
}

static uint64_t entry_off(int fd, uint32_t i)
{
	return rd64(fd, H_TABLE_OFF) + (uint64_t)i * rd32(fd, H_ENTRY_SIZE);
}

static int entry_of(int fd, uint32_t type)
{
	for (uint32_t i = 0; i < rd32(fd, H_NSECTIONS); i++)
		if (rd32(fd, entry_off(fd, i) + E_TYPE) == type)
			return (int)i;
	cr_assert_fail("no section %u", type);
	return -1;
}

/* Recomputes a body's checksum in its table entry (non-PAGES sections). */
static void reseal_body(int fd, uint32_t i)
{
	uint64_t e = entry_off(fd, i), off = rd64(fd, e + E_OFFSET), len = rd64(fd, e + E_LENGTH);
	uint8_t *b = malloc(len + 1);
	cr_assert_eq(pread(fd, b, len, (off_t)off), (ssize_t)len);
	wr(fd, e + E_CHECKSUM, XXH3_64bits(b, len), 8);
	free(b);
	reseal(fd);
}

/* Guest RAM in a memfd, as the monitor has it. */
struct ram {
	int fd;
	uint8_t *mem;
	uint64_t size;
};

static struct ram ram_new(uint64_t size)
{
	struct ram r = {.size = size};
	r.fd = memfd_create("ram", MFD_CLOEXEC);
	cr_assert_geq(r.fd, 0);
	cr_assert_eq(ftruncate(r.fd, (off_t)size), 0);
	r.mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, r.fd, 0);
	cr_assert_neq(r.mem, MAP_FAILED);
	return r;
}

static void ram_free(struct ram *r)
{
	munmap(r->mem, r->size);
	close(r->fd);
}

static void fill_page(uint8_t *p, uint64_t idx)
{
	for (uint64_t j = 0; j < PG; j++)
		p[j] = (uint8_t)(idx * 31 + j * 7 + 1);
}

/* Pages at 0 and at the very end, a run, a lone page, and one touched but zero (stays a
 * hole in the file). */
static uint64_t ram_pattern(struct ram *r)
{
	uint64_t n = r->size / PG, pages[] = {0, 1, 2, 3, 17, 300, n - 2, n - 1};
	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
		fill_page(r->mem + pages[i] * PG, pages[i]);
	memset(r->mem + 40 * PG, 0, PG);
	r->mem[50 * PG + 4095] = 0x5a; /* nonzero only in its last byte */
	return sizeof(pages) / sizeof(pages[0]) + 1;
}

static const char policy_text[] = "{\"version\":1,\"mounts\":[]}";

static struct mig_snap_header test_header(uint64_t mem_size)
{
	struct mig_snap_header h;
	memset(&h, 0, sizeof(h));
	h.abi_version = 7;
	h.mem_size = mem_size;
	h.tsc_khz = 2400000;
	memcpy(h.cpuid_sig, "GenuineIntel-test-sig", 21);
	memset(h.elf_hash, 0xab, sizeof(h.elf_hash));
	memset(h.parent_id, 0x11, sizeof(h.parent_id));
	return h;
}

/* A snapshot of r (raw or zstd) with a few blob sections, in a fresh file; its fd. */
static int write_snap(const char *name, struct ram *r, int level, uint64_t *stored)
{
	char path[PATH_MAX], err[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	struct mig_snap_header h = test_header(r->size);
	struct mig_snap_writer *w;
	cr_assert_eq(mig_snap_writer_new(&w, fd, &h, err, sizeof(err)), 0, "%s", err);
	uint8_t vcpu[333];
	for (size_t i = 0; i < sizeof(vcpu); i++)
		vcpu[i] = (uint8_t)i;
	cr_assert_eq(mig_snap_add(w, MIG_SEC_VCPU, 3, MIG_SEC_F_REQUIRED, vcpu, sizeof(vcpu), err,
				  sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(mig_snap_add(w, MIG_SEC_POLICY, 1, MIG_SEC_F_REQUIRED, policy_text,
				  strlen(policy_text), err, sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(mig_snap_add(w, MIG_SEC_CLOCK, 1, 0, "", 0, err, sizeof(err)), 0, "%s", err);
	uint64_t st = 0;
	cr_assert_eq(mig_snap_add_pages(w, r->mem, r->size, r->fd, level, &st, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(mig_snap_writer_finish(w, 0, err, sizeof(err)), 0, "%s", err);
	mig_snap_writer_free(w);
	if (stored)
		*stored = st;
	return fd;
}

static int open_snap(int fd, struct mig_snap_reader **r, char *err, size_t errlen)
{
	err[0] = 0;
	return mig_snap_open(r, fd, err, errlen);
}

static void check_contents(int fd, struct ram *src)
{
	char err[256];
	struct mig_snap_reader *r;
	cr_assert_eq(open_snap(fd, &r, err, sizeof(err)), 0, "%s", err);
	const struct mig_snap_header *h = mig_snap_header_of(r);
	cr_assert_eq(h->major, MIG_SNAP_MAJOR);
	cr_assert_eq(h->minor, MIG_SNAP_MINOR);
	cr_assert_eq(h->abi_version, 7);
	cr_assert_eq(h->mem_size, src->size);
	cr_assert_eq(h->tsc_khz, 2400000);
	cr_assert_eq(memcmp(h->cpuid_sig, "GenuineIntel-test-sig", 21), 0);
	cr_assert_eq(h->elf_hash[15], 0xab);
	cr_assert_eq(h->parent_id[0], 0x11);
	cr_assert_neq(h->created_ns, 0);
	static const uint8_t zero[16];
	cr_assert_neq(memcmp(h->snap_id, zero, 16), 0, "the writer picks a random id");
	cr_assert_eq(h->nsections, 5);

	const void *data;
	uint64_t len;
	uint16_t ver;
	cr_assert_eq(mig_snap_section(r, MIG_SEC_VCPU, &ver, &data, &len, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(ver, 3);
	cr_assert_eq(len, 333);
	cr_assert_eq(((const uint8_t *)data)[332], (uint8_t)332);
	cr_assert_eq(mig_snap_section(r, MIG_SEC_POLICY, &ver, &data, &len, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(len, strlen(policy_text));
	cr_assert_eq(memcmp(data, policy_text, len), 0);
	cr_assert_eq(mig_snap_section(r, MIG_SEC_CLOCK, &ver, &data, &len, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(len, 0);
	expect_fail(mig_snap_section(r, MIG_SEC_MONITOR, &ver, &data, &len, err, sizeof(err)), err,
		    "section monitor: not in the file");
	cr_assert_eq(mig_snap_section(r, MIG_SEC_MONITOR, &ver, &data, &len, err, sizeof(err)),
		     -ENOENT);

	uint8_t *dst =
	    mmap(NULL, src->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(dst, MAP_FAILED);
	cr_assert_eq(mig_snap_read_pages(r, dst, src->size, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(memcmp(dst, src->mem, src->size), 0, "RAM read back differs");
	munmap(dst, src->size);
	mig_snap_reader_free(r);
}

/* ---- round trips -------------------------------------------------------------------------- */

TestSuite(roundtrip, .init = setup_dir, .fini = teardown_dir);

Test(roundtrip, raw_memfd_with_holes)
{
	struct ram src = ram_new(4 * MiB);
	uint64_t want = ram_pattern(&src), stored;
	int fd = write_snap("raw.snap", &src, 0, &stored);
	cr_assert_eq(stored, want);
	check_contents(fd, &src);
	close(fd);
	ram_free(&src);
}

Test(roundtrip, zstd_memfd_with_holes)
{
	struct ram src = ram_new(4 * MiB);
	uint64_t want = ram_pattern(&src), stored;
	int fd = write_snap("z.snap", &src, 3, &stored);
	cr_assert_eq(stored, want);
	check_contents(fd, &src);
	struct stat st;
	fstat(fd, &st);
	cr_assert_lt(st.st_size, 64 * 1024, "compressed file is %lld bytes", (long long)st.st_size);
	close(fd);
	ram_free(&src);
}

Test(roundtrip, raw_and_zstd_without_memfd)
{
	for (int level = 0; level <= 1; level++) {
		struct ram src = ram_new(2 * MiB);
		uint64_t want = ram_pattern(&src), stored;
		int mfd = src.fd;
		src.fd = -1; /* every page is scanned */
		int fd = write_snap(level ? "z.snap" : "raw.snap", &src, level, &stored);
		src.fd = mfd;
		cr_assert_eq(stored, want);
		check_contents(fd, &src);
		close(fd);
		ram_free(&src);
	}
}

Test(roundtrip, empty_and_full_ram)
{
	for (int level = 0; level <= 1; level++) {
		struct ram src = ram_new(2 * MiB);
		uint64_t stored;
		int fd = write_snap("empty.snap", &src, level, &stored);
		cr_assert_eq(stored, 0);
		check_contents(fd, &src);
		close(fd);
		for (uint64_t i = 0; i < src.size / PG; i++)
			fill_page(src.mem + i * PG, i);
		fd = write_snap("full.snap", &src, level, &stored);
		cr_assert_eq(stored, src.size / PG);
		check_contents(fd, &src);
		close(fd);
		ram_free(&src);
	}
}

Test(roundtrip, holes_are_holes)
{
	struct ram src = ram_new(8 * MiB);
	uint64_t stored;
	ram_pattern(&src);
	int fd = write_snap("raw.snap", &src, 0, &stored);
	char err[256];
	struct mig_snap_reader *r;
	uint64_t off, len;
	cr_assert_eq(open_snap(fd, &r, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(mig_snap_pages_extent(r, 1, &off, &len, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(off % PG, 0);
	cr_assert_eq(len, src.size);
	/* Every data extent inside the image holds stored pages only. */
	uint64_t data_pages = 0;
	for (uint64_t pos = off; pos < off + len;) {
		off_t d = lseek(fd, (off_t)pos, SEEK_DATA);
		if (d < 0 || (uint64_t)d >= off + len)
			break;
		off_t h = lseek(fd, d, SEEK_HOLE);
		uint64_t e = (uint64_t)h < off + len ? (uint64_t)h : off + len;
		for (uint64_t p = (uint64_t)d; p < e; p += PG) {
			uint64_t idx = (p - off) / PG;
			cr_assert(!(idx == 40 || (idx > 3 && idx < 17)), "page %llu is not a hole",
				  (unsigned long long)idx);
			data_pages++;
		}
		pos = e;
	}
	cr_assert_leq(data_pages, stored);
	struct stat st;
	fstat(fd, &st);
	cr_assert_lt((uint64_t)st.st_blocks * 512, 1 * MiB, "%lld blocks for a sparse image",
		     (long long)st.st_blocks);
	mig_snap_reader_free(r);
	close(fd);
	ram_free(&src);
}

Test(roundtrip, map_private_equals_ram)
{
	struct ram src = ram_new(4 * MiB);
	ram_pattern(&src);
	int fd = write_snap("raw.snap", &src, 0, NULL);
	char err[256];
	struct mig_snap_reader *r;
	uint64_t off, len;
	cr_assert_eq(open_snap(fd, &r, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(mig_snap_pages_extent(r, 1, &off, &len, err, sizeof(err)), 0, "%s", err);
	uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, (off_t)off);
	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(memcmp(m, src.mem, len), 0);
	m[5 * PG] = 1; /* copy-on-write: the file stays as it was */
	munmap(m, len);
	cr_assert_eq(mig_snap_pages_extent(r, 1, &off, &len, err, sizeof(err)), 0, "%s", err);
	mig_snap_reader_free(r);
	close(fd);
	ram_free(&src);
}

Test(roundtrip, zstd_is_not_mappable)
{
	struct ram src = ram_new(2 * MiB);
	ram_pattern(&src);
	int fd = write_snap("z.snap", &src, 1, NULL);
	char err[256];
	struct mig_snap_reader *r;
	uint64_t off, len;
	cr_assert_eq(open_snap(fd, &r, err, sizeof(err)), 0, "%s", err);
	int rc = mig_snap_pages_extent(r, 1, &off, &len, err, sizeof(err));
	cr_assert_eq(rc, -EOPNOTSUPP);
	expect_fail(rc, err, "section pages: compressed");
	mig_snap_reader_free(r);
	close(fd);
	ram_free(&src);
}

Test(roundtrip, no_pages)
{
	char path[PATH_MAX], err[256];
	snprintf(path, sizeof(path), "%s/nopages.snap", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	struct mig_snap_header h = test_header(2 * MiB);
	struct mig_snap_writer *w;
	cr_assert_eq(mig_snap_writer_new(&w, fd, &h, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(mig_snap_add(w, MIG_SEC_IMAGE, 1, 0, "abc", 3, err, sizeof(err)), 0);
	cr_assert_eq(mig_snap_writer_finish(w, 1, err, sizeof(err)), 0, "%s", err);
	mig_snap_writer_free(w);
	struct mig_snap_reader *r;
	cr_assert_eq(open_snap(fd, &r, err, sizeof(err)), 0, "%s", err);
	uint8_t *dst = calloc(1, 2 * MiB);
	int rc = mig_snap_read_pages(r, dst, 2 * MiB, err, sizeof(err));
	cr_assert_eq(rc, -ENOENT);
	expect_fail(rc, err, "section pages: not in the file");
	uint64_t off, len;
	cr_assert_eq(mig_snap_pages_extent(r, 0, &off, &len, err, sizeof(err)), -ENOENT);
	rc = mig_snap_read_pages(r, dst, 4 * MiB, err, sizeof(err));
	expect_fail(rc, err, "section pages: buffer is");
	free(dst);
	mig_snap_reader_free(r);
	close(fd);
}

/* ---- writer misuse ------------------------------------------------------------------------ */

TestSuite(writer, .init = setup_dir, .fini = teardown_dir);

Test(writer, misuse)
{
	char path[PATH_MAX], err[256];
	snprintf(path, sizeof(path), "%s/w.snap", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	struct mig_snap_header h = test_header(3 * MiB);
	struct mig_snap_writer *w;
	expect_fail(mig_snap_writer_new(&w, fd, &h, err, sizeof(err)), err, "header: mem_size");
	h.mem_size = 2 * MiB;
	cr_assert_eq(mig_snap_writer_new(&w, fd, &h, err, sizeof(err)), 0, "%s", err);
	expect_fail(mig_snap_add(w, MIG_SEC_PAGES, 1, 0, "x", 1, err, sizeof(err)), err,
		    "section pages: added by mig_snap_add_pages");
	expect_fail(mig_snap_add(w, MIG_SEC_POLICY, 1, MIG_SEC_F_ZSTD, "x", 1, err, sizeof(err)),
		    err, "section policy: only pages can be compressed");
	cr_assert_eq(mig_snap_add(w, MIG_SEC_POLICY, 1, 0, "x", 1, err, sizeof(err)), 0);
	expect_fail(mig_snap_add(w, MIG_SEC_POLICY, 1, 0, "x", 1, err, sizeof(err)), err,
		    "section policy: added twice");
	expect_fail(mig_snap_add(w, 0, 1, 0, "x", 1, err, sizeof(err)), err, "reserved");
	struct ram src = ram_new(4 * MiB);
	expect_fail(mig_snap_add_pages(w, src.mem, src.size, src.fd, 0, NULL, err, sizeof(err)),
		    err, "section pages: RAM is 4194304 bytes, the header says 2097152");
	expect_fail(mig_snap_add_pages(w, src.mem, 2 * MiB, src.fd, 1000, NULL, err, sizeof(err)),
		    err, "zstd level 1000");
	/* Unknown types may repeat: they belong to later minors. */
	for (int i = 0; i < MIG_SNAP_MAX_SECTIONS - 1; i++)
		cr_assert_eq(mig_snap_add(w, 1000, 1, 0, "y", 1, err, sizeof(err)), 0, "%s", err);
	expect_fail(mig_snap_add(w, 1000, 1, 0, "y", 1, err, sizeof(err)), err, "more than 64");
	cr_assert_eq(mig_snap_writer_finish(w, 0, err, sizeof(err)), 0, "%s", err);
	mig_snap_writer_free(w);
	struct mig_snap_reader *r;
	cr_assert_eq(open_snap(fd, &r, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(mig_snap_header_of(r)->nsections, 64);
	mig_snap_reader_free(r);
	ram_free(&src);
	close(fd);
}

/* ---- damage ------------------------------------------------------------------------------- */

TestSuite(damage, .init = setup_dir, .fini = teardown_dir);

static int fresh(int level, struct ram *src)
{
	*src = ram_new(2 * MiB);
	ram_pattern(src);
	return write_snap(level ? "z.snap" : "raw.snap", src, level, NULL);
}

static void flip(int fd, uint64_t off)
{
	uint8_t b;
	cr_assert_eq(pread(fd, &b, 1, (off_t)off), 1);
	b ^= 0x40;
	cr_assert_eq(pwrite(fd, &b, 1, (off_t)off), 1);
}

/* Opens, then reads every section and the pages; the first failure's rc, message in err. */
static int try_all(int fd, char *err, size_t errlen)
{
	struct mig_snap_reader *r;
	int rc = open_snap(fd, &r, err, errlen);
	if (rc < 0)
		return rc;
	const void *data;
	uint64_t len, off;
	for (uint32_t t = MIG_SEC_VCPU; t <= MIG_SEC_PAGEMAP && rc == 0; t++) {
		rc = mig_snap_section(r, t, NULL, &data, &len, err, errlen);
		if (rc == -ENOENT)
			rc = 0;
	}
	uint64_t size = mig_snap_header_of(r)->mem_size;
	uint8_t *dst = calloc(1, size);
	if (rc == 0)
		rc = mig_snap_read_pages(r, dst, size, err, errlen);
	if (rc == 0) {
		rc = mig_snap_pages_extent(r, 1, &off, &len, err, errlen);
		if (rc == -EOPNOTSUPP)
			rc = 0;
	}
	free(dst);
	mig_snap_reader_free(r);
	return rc;
}

Test(damage, flipped_byte_in_every_section)
{
	for (int level = 0; level <= 1; level++) {
		struct ram src;
		int fd = fresh(level, &src);
		uint32_t n = rd32(fd, H_NSECTIONS);
		for (uint32_t i = 0; i < n; i++) {
			uint64_t e = entry_off(fd, i);
			uint32_t type = rd32(fd, e + E_TYPE);
			uint64_t off = rd64(fd, e + E_OFFSET), len = rd64(fd, e + E_LENGTH);
			if (!len)
				continue;
			/* Raw pages: inside a stored page (page 1), not a hole. */
			uint64_t at =
			    type == MIG_SEC_PAGES && !level ? off + PG + 100 : off + len / 2;
			flip(fd, at);
			char err[256], want[64];
			snprintf(want, sizeof(want), "section %s: checksum mismatch",
				 mig_sec_name(type));
			expect_fail(try_all(fd, err, sizeof(err)), err, want);
			flip(fd, at);
			cr_assert_eq(try_all(fd, err, sizeof(err)), 0, "%s", err);
		}
		flip(fd, H_TSC);
		char err[256];
		expect_fail(try_all(fd, err, sizeof(err)), err, "header: checksum mismatch");
		flip(fd, H_TSC);
		flip(fd, entry_off(fd, 1) + E_LENGTH);
		expect_fail(try_all(fd, err, sizeof(err)), err, "section table: checksum mismatch");
		close(fd);
		ram_free(&src);
	}
}

Test(damage, every_header_and_table_byte)
{
	struct ram src;
	int fd = fresh(0, &src);
	uint64_t end = entry_off(fd, rd32(fd, H_NSECTIONS));
	for (uint64_t off = 0; off < end; off++) {
		for (int bit = 0; bit < 8; bit += 3) {
			uint8_t b, c;
			cr_assert_eq(pread(fd, &b, 1, (off_t)off), 1);
			c = b ^ (uint8_t)(1u << bit);
			cr_assert_eq(pwrite(fd, &c, 1, (off_t)off), 1);
			char err[256];
			struct mig_snap_reader *r;
			int rc = open_snap(fd, &r, err, sizeof(err));
			expect_fail(rc, err, ": ");
			cr_assert(strncmp(err, "header", 6) == 0 || strncmp(err, "section", 7) == 0,
				  "byte %llu: %s", (unsigned long long)off, err);
			cr_assert_eq(pwrite(fd, &b, 1, (off_t)off), 1);
		}
	}
	close(fd);
	ram_free(&src);
}

Test(damage, truncated_at_many_lengths)
{
	for (int level = 0; level <= 1; level++) {
		struct ram src;
		int fd = fresh(level, &src);
		struct stat st;
		fstat(fd, &st);
		uint64_t size = (uint64_t)st.st_size;
		uint8_t *all = malloc(size);
		cr_assert_eq(pread(fd, all, size, 0), (ssize_t)size);
		uint64_t cuts[] = {0,	1,    8,    100,      255,	    256,      257,
				   300, 2304, 2305, size / 2, size * 3 / 4, size - 9, size - 1};
		for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
			cr_assert_eq(pwrite(fd, all, size, 0), (ssize_t)size);
			cr_assert_eq(ftruncate(fd, (off_t)cuts[i]), 0, "cut %llu: %s",
				     (unsigned long long)cuts[i], strerror(errno));
			char err[256];
			struct mig_snap_reader *r;
			int rc = open_snap(fd, &r, err, sizeof(err));
			expect_fail(rc, err, "(truncated?)");
			cr_assert(strncmp(err, "header: file is", 15) == 0, "cut %llu: %s",
				  (unsigned long long)cuts[i], err);
		}
		cr_assert_eq(ftruncate(fd, 0), 0);
		cr_assert_eq(pwrite(fd, all, size, 0), (ssize_t)size);
		char err[256];
		cr_assert_eq(try_all(fd, err, sizeof(err)), 0, "%s", err);
		/* Trailing bytes are damage too. */
		cr_assert_eq(pwrite(fd, "x", 1, (off_t)size), 1);
		struct mig_snap_reader *r;
		expect_fail(open_snap(fd, &r, err, sizeof(err)), err, "(trailing data?)");
		free(all);
		close(fd);
		ram_free(&src);
	}
}

Test(damage, bad_magic_and_versions)
{
	struct ram src;
	int fd = fresh(0, &src);
	char err[256];
	struct mig_snap_reader *r;
	flip(fd, 3);
	expect_fail(open_snap(fd, &r, err, sizeof(err)), err,
		    "header: bad magic (not a snapshot file)");
	flip(fd, 3);
	wr(fd, H_MAJOR, 2, 2);
	reseal(fd);
	int rc = open_snap(fd, &r, err, sizeof(err));
	expect_fail(rc, err, "header: format 2.0 is newer than this reader (1.x)");
	cr_assert_eq(rc, -EPROTONOSUPPORT);
	wr(fd, H_MAJOR, 0, 2);
	reseal(fd);
	expect_fail(open_snap(fd, &r, err, sizeof(err)), err, "header: format 0.0 is older");
	wr(fd, H_MAJOR, 1, 2);
	wr(fd, H_MINOR, 9, 2);
	reseal(fd);
	cr_assert_eq(open_snap(fd, &r, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(mig_snap_header_of(r)->minor, 9);
	mig_snap_reader_free(r);
	close(fd);
	ram_free(&src);
}

/* Appends a section of an unknown type; returns its table index. */
static uint32_t append_unknown(int fd, uint32_t type, uint16_t flags)
{
	uint32_t n = rd32(fd, H_NSECTIONS);
	uint64_t off = rd64(fd, H_FILE_SIZE);
	static const char body[] = "a section from a later minor";
	cr_assert_eq(pwrite(fd, body, sizeof(body), (off_t)off), (ssize_t)sizeof(body));
	uint64_t e = entry_off(fd, n);
	wr(fd, e + E_TYPE, type, 4);
	wr(fd, e + 4, 1, 2);
	wr(fd, e + E_FLAGS, flags, 2);
	wr(fd, e + E_OFFSET, off, 8);
	wr(fd, e + E_LENGTH, sizeof(body), 8);
	wr(fd, e + E_CHECKSUM, XXH3_64bits(body, sizeof(body)), 8);
	wr(fd, H_NSECTIONS, n + 1, 4);
	wr(fd, H_FILE_SIZE, off + sizeof(body), 8);
	reseal(fd);
	return n;
}

Test(damage, later_minor_is_read)
{
	for (int level = 0; level <= 1; level++) {
		struct ram src;
		int fd = fresh(level, &src);
		/* A 1.3 writer: a bigger header with fields this reader does not know, the table
		 * moved after it, wider entries, and an optional section of a new type. */
		uint32_t n = rd32(fd, H_NSECTIONS);
		uint8_t old[64 * 32], wide[64 * 48];
		cr_assert_eq(pread(fd, old, n * 32, 256), (ssize_t)n * 32);
		memset(wide, 0xee, sizeof(wide));
		for (uint32_t i = 0; i < n; i++)
			memcpy(wide + i * 48, old + i * 32, 32);
		cr_assert_eq(pwrite(fd, wide, n * 48, 512), (ssize_t)n * 48);
		uint8_t junk[256];
		memset(junk, 0x77, sizeof(junk));
		cr_assert_eq(pwrite(fd, junk, sizeof(junk), 256), (ssize_t)sizeof(junk));
		wr(fd, H_MINOR, 3, 2);
		wr(fd, H_HEADER_SIZE, 512, 4);
		wr(fd, H_TABLE_OFF, 512, 8);
		wr(fd, H_ENTRY_SIZE, 48, 4);
		reseal(fd);
		uint32_t u = append_unknown(fd, 4242, 0);
		char err[256];
		cr_assert_eq(try_all(fd, err, sizeof(err)), 0, "%s", err);
		struct mig_snap_reader *r;
		cr_assert_eq(open_snap(fd, &r, err, sizeof(err)), 0, "%s", err);
		const void *data;
		uint64_t len;
		cr_assert_eq(mig_snap_section(r, 4242, NULL, &data, &len, err, sizeof(err)), 0);
		cr_assert_str_eq(data, "a section from a later minor");
		mig_snap_reader_free(r);
		/* The same section marked required: this reader cannot honour it. */
		wr(fd, entry_off(fd, u) + E_FLAGS, MIG_SEC_F_REQUIRED, 2);
		reseal(fd);
		char want[96];
		snprintf(want, sizeof(want),
			 "section table: section %u (type 4242) is required but unknown", u);
		expect_fail(open_snap(fd, &r, err, sizeof(err)), err, want);
		close(fd);
		ram_free(&src);
	}
}

struct edit {
	const char *name;
	uint32_t type; /* entry to edit (by type) */
	int field;     /* E_* offset */
	int64_t value; /* absolute if !rel */
	int rel;       /* value is added to the field */
	const char *want;
};

static void apply(int fd, const struct edit *e)
{
	uint64_t at = entry_off(fd, (uint32_t)entry_of(fd, e->type)) + (uint64_t)e->field;
	int bytes = e->field == E_TYPE ? 4 : e->field == E_FLAGS ? 2 : 8;
	uint64_t v = (uint64_t)e->value;
	if (e->rel)
		v += bytes == 8 ? rd64(fd, at) : rd32(fd, at);
	wr(fd, at, v, bytes);
	reseal(fd);
}

Test(damage, table_edits)
{
	const struct edit edits[] = {
	    {"overlap", MIG_SEC_POLICY, E_OFFSET, -8, 1,
	     "section table: sections 0 (vcpu) and 1 "
	     "(policy) overlap"},
	    {"past EOF", MIG_SEC_POLICY, E_OFFSET, 1ll << 40, 0,
	     "section table: section 1 (policy) ends at"},
	    {"huge length", MIG_SEC_VCPU, E_LENGTH, -1, 0,
	     "section table: section 0 (vcpu) ends at"},
	    {"in the header", MIG_SEC_VCPU, E_OFFSET, 16, 0,
	     "section table: section 0 (vcpu) at 16 overlaps the header or table"},
	    {"duplicate", MIG_SEC_CLOCK, E_TYPE, MIG_SEC_VCPU, 0,
	     "section table: sections 0 and 2 are both vcpu"},
	    {"compressed blob", MIG_SEC_POLICY, E_FLAGS, MIG_SEC_F_ZSTD, 0,
	     "section 1 (policy) is marked compressed"},
	    {"pages misaligned", MIG_SEC_PAGES, E_OFFSET, -8, 1,
	     "section pages: offset 4088 is not 4096-aligned"},
	    {"pages short", MIG_SEC_PAGES, E_LENGTH, -4096, 1,
	     "section pages: 2093056 bytes, mem_size is 2097152"},
	    {"no pagemap", MIG_SEC_PAGEMAP, E_TYPE, MIG_SEC_MONITOR, 0,
	     "section pages: no pagemap section beside it"},
	    {"no pages", MIG_SEC_PAGES, E_TYPE, MIG_SEC_MONITOR, 0,
	     "section pagemap: no pages section beside it"},
	    {"pagemap length", MIG_SEC_PAGEMAP, E_LENGTH, -1, 1,
	     "section pagemap: 63 bytes, 64 expected for mem_size 2097152"},
	};
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		struct ram src;
		int fd = fresh(0, &src);
		apply(fd, &edits[i]);
		char err[256];
		struct mig_snap_reader *r;
		int rc = open_snap(fd, &r, err, sizeof(err));
		cr_assert_lt(rc, 0, "%s: accepted", edits[i].name);
		expect_fail(rc, err, edits[i].want);
		close(fd);
		ram_free(&src);
	}
}

Test(damage, header_edits)
{
	struct {
		int field, bytes;
		uint64_t value;
		const char *want;
	} edits[] = {
	    {H_MEM_SIZE, 8, 3 * MiB, "header: mem_size 3145728 is not a nonzero multiple"},
	    {H_MEM_SIZE, 8, 0, "header: mem_size 0 is not"},
	    {H_MEM_SIZE, 8, 128ull << 30, "header: mem_size 137438953472"},
	    {H_NSECTIONS, 4, 65, "header: 65 sections, over the cap of 64"},
	    {H_NSECTIONS, 4, 7, "section table: section 5 has type 0 (reserved)"},
	    {H_HEADER_SIZE, 4, 100, "header: header_size 100"},
	    {H_HEADER_SIZE, 4, 1u << 20, "header: header_size 1048576"},
	    {H_ENTRY_SIZE, 4, 8, "section table: entry size 8"},
	    {H_TABLE_OFF, 8, ~0ull - 8, "section table: "},
	    {H_TABLE_OFF, 8, 0, "inside the header"},
	    {H_FILE_SIZE, 8, 1ull << 40, "(truncated?)"},
	};
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		struct ram src;
		int fd = fresh(0, &src);
		wr(fd, (uint64_t)edits[i].field, edits[i].value, edits[i].bytes);
		if (edits[i].field != H_HEADER_SIZE)
			reseal(fd);
		else {
			/* reseal reads header_size bytes; seal over the real 256 instead. */
			uint8_t h[256];
			wr(fd, H_HEADER_SUM, 0, 8);
			cr_assert_eq(pread(fd, h, 256, 0), 256);
			wr(fd, H_HEADER_SUM, XXH3_64bits(h, 256), 8);
		}
		char err[256];
		struct mig_snap_reader *r;
		expect_fail(open_snap(fd, &r, err, sizeof(err)), err, edits[i].want);
		close(fd);
		ram_free(&src);
	}
}

Test(damage, pagemap_lies)
{
	for (int level = 0; level <= 1; level++) {
		struct ram src;
		char err[256];
		/* A page claimed stored that is not (page 5 is a hole). */
		int fd = fresh(level, &src);
		int m = entry_of(fd, MIG_SEC_PAGEMAP);
		uint64_t moff = rd64(fd, entry_off(fd, (uint32_t)m) + E_OFFSET);
		flip(fd, moff); /* byte 0: pages 0..7; 0x40 toggles page 6 */
		reseal_body(fd, (uint32_t)m);
		expect_fail(try_all(fd, err, sizeof(err)), err,
			    level ? "section pages: zstd frame"
				  : "section pages: checksum mismatch");
		/* A stored page left out (page 1). */
		flip(fd, moff);
		uint8_t b;
		cr_assert_eq(pread(fd, &b, 1, (off_t)moff), 1);
		b &= (uint8_t)~2u;
		cr_assert_eq(pwrite(fd, &b, 1, (off_t)moff), 1);
		reseal_body(fd, (uint32_t)m);
		expect_fail(try_all(fd, err, sizeof(err)), err,
			    level ? "section pages: zstd frame holds more than the 8 pages"
				  : (char *)"section pages: ");
		if (!level) {
			/* Raw: the read skips page 1, but a mapping would show it. */
			struct mig_snap_reader *r;
			cr_assert_eq(open_snap(fd, &r, err, sizeof(err)), 0, "%s", err);
			uint64_t off, len;
			expect_fail(mig_snap_pages_extent(r, 1, &off, &len, err, sizeof(err)), err,
				    "section pages: checksum mismatch");
			mig_snap_reader_free(r);
		}
		close(fd);
		ram_free(&src);
	}
}

Test(damage, data_in_an_unstored_page)
{
	struct ram src;
	int fd = fresh(0, &src);
	int p = entry_of(fd, MIG_SEC_PAGES);
	uint64_t poff = rd64(fd, entry_off(fd, (uint32_t)p) + E_OFFSET);
	cr_assert_eq(pwrite(fd, "!", 1, (off_t)(poff + 9 * PG + 10)), 1);
	char err[256];
	struct mig_snap_reader *r;
	cr_assert_eq(open_snap(fd, &r, err, sizeof(err)), 0, "%s", err);
	uint8_t *dst = calloc(1, src.size);
	cr_assert_eq(mig_snap_read_pages(r, dst, src.size, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(memcmp(dst, src.mem, src.size), 0);
	free(dst);
	uint64_t off, len;
	expect_fail(mig_snap_pages_extent(r, 1, &off, &len, err, sizeof(err)), err,
		    "section pages: page 9 is not in the pagemap but holds data");
	cr_assert_eq(mig_snap_pages_extent(r, 0, &off, &len, err, sizeof(err)), 0);
	mig_snap_reader_free(r);
	close(fd);
	ram_free(&src);
}

/* ---- tmp, commit, abort ------------------------------------------------------------------- */

TestSuite(tmpfile, .init = setup_dir, .fini = teardown_dir);

/* The names in dir, sorted, one per line. */
static void dir_names(char *out, size_t len)
{
	char cmd[PATH_MAX + 32];
	snprintf(cmd, sizeof(cmd), "ls -A '%s'", dir);
	FILE *p = popen(cmd, "r");
	cr_assert_not_null(p);
	size_t n = fread(out, 1, len - 1, p);
	out[n] = 0;
	pclose(p);
}

static void write_text(int fd, const char *t)
{
	cr_assert_eq(write(fd, t, strlen(t)), (ssize_t)strlen(t));
}

static void expect_file(const char *path, const char *want)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	cr_assert_geq(n, 0);
	buf[n] = 0;
	cr_assert_str_eq(buf, want);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
}

Test(tmpfile, commit_and_abort)
{
	char path[PATH_MAX], tmp[PATH_MAX], err[256], names[512];
	snprintf(path, sizeof(path), "%s/a.snap", dir);
	int fd = mig_snap_tmp_open(path, tmp, sizeof(tmp), err, sizeof(err));
	cr_assert_geq(fd, 0, "%s", err);
	cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	if (tmp[0])
		cr_skip_test("%s has no O_TMPFILE: the named fallback is tested apart", dir);
	/* No name until the commit. */
	dir_names(names, sizeof(names));
	cr_assert_str_eq(names, "");
	write_text(fd, "one");
	cr_assert_eq(mig_snap_commit(fd, tmp, path, err, sizeof(err)), 0, "%s", err);
	expect_file(path, "one");
	/* A second commit replaces the file, atomically, and leaves no other name. */
	fd = mig_snap_tmp_open(path, tmp, sizeof(tmp), err, sizeof(err));
	cr_assert_geq(fd, 0, "%s", err);
	write_text(fd, "two");
	cr_assert_eq(mig_snap_commit(fd, tmp, path, err, sizeof(err)), 0, "%s", err);
	expect_file(path, "two");
	dir_names(names, sizeof(names));
	cr_assert_str_eq(names, "a.snap\n");
	/* Abort leaves the committed file as it was and nothing else. */
	fd = mig_snap_tmp_open(path, tmp, sizeof(tmp), err, sizeof(err));
	cr_assert_geq(fd, 0, "%s", err);
	write_text(fd, "three");
	mig_snap_abort(fd, tmp);
	expect_file(path, "two");
	dir_names(names, sizeof(names));
	cr_assert_str_eq(names, "a.snap\n");

	char small[8];
	expect_fail(mig_snap_tmp_open(path, small, sizeof(small), err, sizeof(err)), err,
		    "path too long");
	snprintf(path, sizeof(path), "%s/no/such/dir/a.snap", dir);
	expect_fail(mig_snap_tmp_open(path, tmp, sizeof(tmp), err, sizeof(err)), err,
		    "No such file");
}

/* A writer killed before its commit (sandbox-ctl killed mid-snapshot) leaves nothing. */
Test(tmpfile, a_killed_writer_leaves_nothing)
{
	char path[PATH_MAX], names[512];
	snprintf(path, sizeof(path), "%s/k.snap", dir);
	int ready[2];
	cr_assert_eq(pipe(ready), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char tmp[PATH_MAX], err[256];
		int fd = mig_snap_tmp_open(path, tmp, sizeof(tmp), err, sizeof(err));
		if (fd < 0 || write(fd, "partial", 7) != 7)
			_exit(1);
		(void)!write(ready[1], tmp[0] ? "n" : "u", 1);
		pause();
		_exit(0);
	}
	close(ready[1]);
	char kind = 0;
	cr_assert_eq(read(ready[0], &kind, 1), 1, "the writer failed");
	close(ready[0]);
	kill(pid, SIGKILL);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	if (kind == 'n')
		cr_skip_test("%s has no O_TMPFILE: a named temporary outlives its writer", dir);
	dir_names(names, sizeof(names));
	cr_assert_str_eq(names, "", "left behind: %s", names);
}

/* Where there is no O_TMPFILE: a named temporary beside the file. */
Test(tmpfile, named_fallback)
{
	char path[PATH_MAX], tmp[PATH_MAX], tmp2[PATH_MAX], err[256];
	snprintf(path, sizeof(path), "%s/a.snap", dir);
	int fd = mig_snap_tmp_open_named(path, tmp, sizeof(tmp), err, sizeof(err));
	cr_assert_geq(fd, 0, "%s", err);
	cr_assert_eq(strncmp(tmp, path, strlen(path)), 0);
	cr_assert_not_null(strstr(tmp, ".tmp."));
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	cr_assert_eq(write(fd, "x", 1), 1);
	cr_assert_eq(mig_snap_commit(fd, tmp, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(access(tmp, F_OK), -1);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_size, 1);

	int fd2 = mig_snap_tmp_open_named(path, tmp2, sizeof(tmp2), err, sizeof(err));
	cr_assert_geq(fd2, 0, "%s", err);
	cr_assert_eq(access(tmp2, F_OK), 0);
	mig_snap_abort(fd2, tmp2);
	cr_assert_eq(access(tmp2, F_OK), -1);
	cr_assert_eq(stat(path, &st), 0, "abort leaves the committed file alone");
	cr_assert_eq(st.st_size, 1);

	/* Two temporaries for one path do not collide. */
	int a = mig_snap_tmp_open_named(path, tmp, sizeof(tmp), err, sizeof(err));
	int b = mig_snap_tmp_open_named(path, tmp2, sizeof(tmp2), err, sizeof(err));
	cr_assert(a >= 0 && b >= 0 && strcmp(tmp, tmp2) != 0);
	mig_snap_abort(a, tmp);
	mig_snap_abort(b, tmp2);
}

/* ---- fixtures ----------------------------------------------------------------------------- */

/* Must match tests/data/snapshot/gen_fixtures.c. */
static void fixture_page(uint8_t *p, uint64_t idx)
{
	for (uint64_t j = 0; j < PG; j++)
		p[j] = (uint8_t)((idx * 131 + j * 3) ^ (j >> 8));
}

static const uint64_t fixture_pages[] = {0, 1, 2, 100, 101, 511};

TestSuite(fixture);

Test(fixture, v1_0_small)
{
	const char *path = SBX_SNAPSHOT_DATA_DIR "/v1.0-small.snap";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	char err[256];
	struct mig_snap_reader *r;
	cr_assert_eq(open_snap(fd, &r, err, sizeof(err)), 0, "%s", err);
	const struct mig_snap_header *h = mig_snap_header_of(r);
	cr_assert_eq(h->major, 1);
	cr_assert_eq(h->minor, 0);
	cr_assert_eq(h->mem_size, 2 * MiB);
	cr_assert_eq(h->abi_version, 1);
	cr_assert_eq(h->tsc_khz, 2995200);
	cr_assert_eq(h->created_ns, 1700000000000000000ull);
	cr_assert_eq(h->snap_id[0], 0x5b);
	const void *data;
	uint64_t len;
	cr_assert_eq(mig_snap_section(r, MIG_SEC_POLICY, NULL, &data, &len, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(len, strlen("{\"version\":1}"));
	cr_assert_eq(memcmp(data, "{\"version\":1}", len), 0);
	cr_assert_eq(mig_snap_section(r, MIG_SEC_VCPU, NULL, &data, &len, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(len, 64);
	uint8_t *dst = calloc(1, 2 * MiB), *want = calloc(1, 2 * MiB);
	cr_assert_eq(mig_snap_read_pages(r, dst, 2 * MiB, err, sizeof(err)), 0, "%s", err);
	for (size_t i = 0; i < sizeof(fixture_pages) / sizeof(fixture_pages[0]); i++)
		fixture_page(want + fixture_pages[i] * PG, fixture_pages[i]);
	cr_assert_eq(memcmp(dst, want, 2 * MiB), 0);
	free(dst);
	free(want);
	mig_snap_reader_free(r);
	close(fd);
}
