/* Writes the snapshot fixtures and fuzz seeds in this directory. Run by gen.sh.
 * v1.0-small.snap is format 1.0's fixture: once committed it is never regenerated,
 * so later readers are tested against what 1.0 really wrote. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "migrate.h"

#define MiB (1ull << 20)

static void die(const char *what, const char *err)
{
	fprintf(stderr, "gen_fixtures: %s: %s\n", what, err);
	exit(1);
}

/* Must match test_snapfile.c. */
static void fixture_page(uint8_t *p, uint64_t idx)
{
	for (uint64_t j = 0; j < MIG_PAGE_SIZE; j++)
		p[j] = (uint8_t)((idx * 131 + j * 3) ^ (j >> 8));
}

static const uint64_t fixture_pages[] = {0, 1, 2, 100, 101, 511};

static void write_snap(const char *path, int level)
{
	char err[256];
	uint8_t *mem = calloc(1, 2 * MiB);
	for (size_t i = 0; i < sizeof(fixture_pages) / sizeof(fixture_pages[0]); i++)
		fixture_page(mem + fixture_pages[i] * MIG_PAGE_SIZE, fixture_pages[i]);
	struct mig_snap_header h;
	memset(&h, 0, sizeof(h));
	h.abi_version = 1;
	h.mem_size = 2 * MiB;
	h.tsc_khz = 2995200;
	h.created_ns = 1700000000000000000ull;
	memcpy(h.cpuid_sig, "GenuineIntel\x06\x55\x07", 15);
	memset(h.elf_hash, 0xe1, sizeof(h.elf_hash));
	memset(h.snap_id, 0x5b, sizeof(h.snap_id));
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die(path, "open");
	struct mig_snap_writer *w;
	uint8_t vcpu[64];
	for (int i = 0; i < 64; i++)
		vcpu[i] = (uint8_t)(i * 5);
	if (mig_snap_writer_new(&w, fd, &h, err, sizeof(err)) ||
	    mig_snap_add(w, MIG_SEC_VCPU, 1, MIG_SEC_F_REQUIRED, vcpu, sizeof(vcpu), err,
			 sizeof(err)) ||
	    mig_snap_add(w, MIG_SEC_POLICY, 1, MIG_SEC_F_REQUIRED, "{\"version\":1}", 13, err,
			 sizeof(err)) ||
	    mig_snap_add(w, MIG_SEC_CLOCK, 1, 0, "\x01\x02\x03\x04", 4, err, sizeof(err)) ||
	    mig_snap_add_pages(w, mem, 2 * MiB, -1, level, NULL, err, sizeof(err)) ||
	    mig_snap_writer_finish(w, 1, err, sizeof(err)))
		die(path, err);
	mig_snap_writer_free(w);
	close(fd);
	free(mem);
}

static uint8_t *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		die(path, "open");
	uint8_t *b = malloc((size_t)st.st_size + 4096);
	if (read(fd, b, (size_t)st.st_size) != st.st_size)
		die(path, "read");
	close(fd);
	*len = (size_t)st.st_size;
	return b;
}

static void spill(const char *dir, const char *name, const uint8_t *b, size_t len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(b, 1, len, f) != len || fclose(f))
		die(path, "write");
}

static void put(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get(const uint8_t *p, int bytes)
{
	uint64_t v = 0;
	for (int i = bytes - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Table and header checksums again after an edit (layout: docs/snapshot-format.md). */
static void reseal(uint8_t *b)
{
	uint64_t n = get(b + 20, 4), toff = get(b + 56, 8);
	put(b + 72, XXH3_64bits(b + toff, n * 32), 8);
	put(b + 80, 0, 8);
	put(b + 80, XXH3_64bits(b, 256), 8);
}

/* The fuzz target's sparse form: "SBXSPRS\0", u64 file size, then records of u64 offset,
 * u16 length and the bytes; what no record covers is zero. Lets small inputs describe the
 * megabytes of a raw image. */
static void sparse(const char *dir, const char *name, const uint8_t *b, size_t len)
{
	uint8_t *o = malloc(len + 64);
	size_t n = 0;
	memcpy(o, "SBXSPRS\0", 8);
	put(o + 8, len, 8);
	n = 16;
	for (size_t off = 0; off < len; off += 4096) {
		size_t c = len - off < 4096 ? len - off : 4096;
		while (c && !b[off + c - 1])
			c--;
		if (!c)
			continue;
		o = realloc(o, n + 10 + c);
		put(o + n, off, 8);
		put(o + n + 8, c, 2);
		memcpy(o + n + 10, b + off, c);
		n += 10 + c;
	}
	spill(dir, name, o, n);
	free(o);
}

int main(int argc, char **argv)
{
	if (argc != 3)
		die("usage", "gen_fixtures DIR SCRATCH");
	const char *dir = argv[1], *scratch = argv[2];
	char path[4096];
	snprintf(path, sizeof(path), "%s/v1.0-small.snap", dir);
	if (access(path, F_OK) != 0)
		write_snap(path, 3);

	size_t len;
	uint8_t *b = slurp(path, &len);
	spill(dir, "seed-valid-zstd.snap", b, len);
	uint8_t *c = malloc(len);

	memcpy(c, b, len);
	c[0] = 'X';
	spill(dir, "seed-bad-magic.snap", c, len);
	spill(dir, "seed-truncated-header.snap", b, 200);
	spill(dir, "seed-truncated-body.snap", b, len - 100);

	memcpy(c, b, len);
	put(c + 8, 2, 2);
	reseal(c);
	spill(dir, "seed-newer-major.snap", c, len);

	memcpy(c, b, len);
	c[256 + 16] ^= 1; /* entry 0's length, checksum left stale */
	spill(dir, "seed-corrupt-table.snap", c, len);

	memcpy(c, b, len);
	c[len - 70] ^= 0x10; /* inside the zstd frame */
	spill(dir, "seed-corrupt-pages.snap", c, len);

	memcpy(c, b, len);
	put(c + 10, 5, 2); /* a later minor with an unknown optional section (empty) */
	put(c + 20, get(c + 20, 4) + 1, 4);
	uint8_t *e = c + 256 + 32 * (get(c + 20, 4) - 1);
	put(e, 999, 4);
	put(e + 4, 1, 2);
	put(e + 6, 0, 2);
	put(e + 8, 2304, 8);
	put(e + 16, 0, 8);
	put(e + 24, XXH3_64bits("", 0), 8);
	reseal(c);
	spill(dir, "seed-newer-minor-optional.snap", c, len);
	put(e + 6, MIG_SEC_F_REQUIRED, 2);
	reseal(c);
	spill(dir, "seed-unknown-required.snap", c, len);
	free(b);
	free(c);

	/* Raw pages: a 2 MiB image, carried in the sparse form. */
	snprintf(path, sizeof(path), "%s/raw.snap", scratch);
	write_snap(path, 0);
	b = slurp(path, &len);
	sparse(dir, "seed-valid-raw.sparse", b, len);
	b[len - 64] ^= 1; /* the pagemap */
	sparse(dir, "seed-corrupt-pagemap.sparse", b, len);
	free(b);
	return 0;
}
