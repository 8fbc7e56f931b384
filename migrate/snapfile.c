/* The snapshot container (migrate.h). docs/snapshot-format.md has the byte layout; in short:
 *
 *   [header, header_size bytes][section table, nsections * entry_size][bodies...]
 *
 * The header and table are encoded field by field (never a struct dump), and both carry
 * their own size so that a later minor version can grow them: a reader uses the fields it
 * knows and ignores the rest, which the checksums still cover. The writer reserves room for
 * MIG_SNAP_MAX_SECTIONS entries up front, because it only learns the section count at the
 * end and wants to append bodies as they come.
 *
 * Everything read from a file is hostile until proven otherwise: the header checksum is
 * verified before any field is used, the table checksum before any entry is used, and a
 * body's checksum before the body is handed out or decoded. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>
#include <zstd.h>

#include "mig_internal.h"
#include "migrate.h"

/* ---- on-disk layout ----------------------------------------------------------------------- */

#define PAGE MIG_PAGE_SIZE
#define ENTRY_SIZE 32u /* a 1.0 section table entry */
#define HDR_MAX 4096u  /* cap on header_size from a later minor */
#define ENTRY_MAX 256u /* cap on entry_size from a later minor */
/* The first body starts after a table with room for every section the writer may add. */
#define BODY_START (MIG_SNAP_HEADER_SIZE + MIG_SNAP_MAX_SECTIONS * ENTRY_SIZE)
#define IO_CHUNK (4u << 20)  /* reads while verifying */
#define RUN_CHUNK (1u << 20) /* writes: hashed while still in cache, then written */
#define ZSTD_WINDOW_LOG_MAX 27

enum {
	H_MAGIC = 0,
	H_MAJOR = 8,
	H_MINOR = 10,
	H_HEADER_SIZE = 12,
	H_ABI = 16,
	H_NSECTIONS = 20,
	H_MEM_SIZE = 24,
	H_TSC_KHZ = 32,
	H_CREATED = 40,
	H_FILE_SIZE = 48,
	H_TABLE_OFF = 56,
	H_ENTRY_SIZE = 64,
	H_FLAGS = 68, /* none defined; ignored */
	H_TABLE_SUM = 72,
	H_HEADER_SUM = 80,
	H_CPUID = 88,
	H_ELF_HASH = 120,
	H_SNAP_ID = 136,
	H_PARENT_ID = 152,
	H_END_1_0 = 168, /* 168..255: zero in 1.0, reserved for later minors */
};

enum {
	E_TYPE = 0,
	E_VERSION = 4,
	E_FLAGS = 6,
	E_OFFSET = 8,
	E_LENGTH = 16,
	E_CHECKSUM = 24,
};

_Static_assert(H_END_1_0 <= MIG_SNAP_HEADER_SIZE, "header fields fit in the header");
_Static_assert(MIG_SNAP_HEADER_SIZE <= HDR_MAX, "header cap");
_Static_assert(E_CHECKSUM + 8 == ENTRY_SIZE, "entry layout");
_Static_assert(BODY_START % 8 == 0, "bodies start aligned");

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* ---- helpers ------------------------------------------------------------------------------ */

const char *mig_sec_name(uint32_t type)
{
	switch (type) {
	case MIG_SEC_VCPU:
		return "vcpu";
	case MIG_SEC_MONITOR:
		return "monitor";
	case MIG_SEC_POLICY:
		return "policy";
	case MIG_SEC_CLOCK:
		return "clock";
	case MIG_SEC_IMAGE:
		return "image";
	case MIG_SEC_PAGEMAP:
		return "pagemap";
	case MIG_SEC_PAGES:
		return "pages";
	}
	return "unknown";
}

static int known_type(uint32_t type)
{
	return type >= MIG_SEC_VCPU && type <= MIG_SEC_PAGES;
}

/* "policy", or "type 99" for a type this reader does not know. */
static const char *tname(uint32_t type, char buf[24])
{
	if (known_type(type))
		return mig_sec_name(type);
	snprintf(buf, 24, "type %u", type);
	return buf;
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n, len -= (size_t)n, off += (uint64_t)n;
	}
	return 0;
}

/* Bytes read (short only at end of file) or -errno. */
static ssize_t pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	size_t got = 0;
	while (got < len) {
		ssize_t n = pread(fd, p + got, len - got, (off_t)(off + got));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Holds a nonzero byte. Most pages in use differ from zero in their first word; a zero page
 * is all zero iff each byte equals the one 8 bytes on, which memcmp checks at full speed
 * without a second buffer. */
static int page_is_zero(const uint8_t *p)
{
	uint64_t w;
	memcpy(&w, p, sizeof(w));
	return w == 0 && memcmp(p, p + 8, PAGE - 8) == 0;
}

static void hash_page(XXH3_state_t *st, uint64_t idx, const uint8_t *page)
{
	uint8_t le[8];
	put64(le, idx);
	XXH3_64bits_update(st, le, sizeof(le));
	XXH3_64bits_update(st, page, PAGE);
}

static int bit_get(const uint8_t *map, uint64_t i)
{
	return map[i / 8] >> (i % 8) & 1;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* Next run of set (want=1) or clear (want=0) bits at or after i, below n. */
static uint64_t bit_scan(const uint8_t *map, uint64_t i, uint64_t n, int want)
{
	while (i < n) {
		if (i % 64 == 0 && i + 64 <= n) {
			uint64_t w;
			memcpy(&w, map + i / 8, 8);
			if (w == (want ? 0 : ~0ull)) {
				i += 64;
				continue;
			}
		}
		if (bit_get(map, i) == want)
			return i;
		i++;
	}
	return n;
}

static int mem_size_ok(uint64_t m)
{
	return m && m % (2ull << 20) == 0 && m <= MIG_SNAP_MAX_MEM;
}

/* ---- writer ------------------------------------------------------------------------------- */

struct mig_snap_writer {
	int fd;
	int failed;		/* a half-written file stays unfinishable */
	int (*stop)(void *ctx); /* asked between runs of pages: nonzero abandons the write */
	void *stop_ctx;
	int has_pages;
	struct mig_snap_header h;
	uint64_t end; /* where the next body goes */
	uint32_t n;
	struct mig_section sec[MIG_SNAP_MAX_SECTIONS];
};

int mig_snap_writer_new(struct mig_snap_writer **wp, int fd, const struct mig_snap_header *h,
			char *err, size_t errlen)
{
	struct stat st;
	*wp = NULL;
	if (!mem_size_ok(h->mem_size))
		return mig_fail(
		    err, errlen, -EINVAL,
		    "header: mem_size %llu is not a nonzero multiple of 2 MiB up to %llu",
		    (unsigned long long)h->mem_size, (unsigned long long)MIG_SNAP_MAX_MEM);
	if (fstat(fd, &st) < 0)
		return mig_fail(err, errlen, -errno, "writer: fstat: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return mig_fail(err, errlen, -EINVAL, "writer: not a regular file");
	/* Old bytes would show through where RAM pages are left as holes. */
	if (ftruncate(fd, 0) < 0)
		return mig_fail(err, errlen, -errno, "writer: ftruncate: %s", strerror(errno));
	struct mig_snap_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return mig_fail(err, errlen, -ENOMEM, "writer: out of memory");
	w->fd = fd;
	w->h = *h;
	w->h.major = MIG_SNAP_MAJOR;
	w->h.minor = MIG_SNAP_MINOR;
	if (!w->h.created_ns) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		w->h.created_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	}
	static const uint8_t zero_id[16];
	if (memcmp(w->h.snap_id, zero_id, 16) == 0 &&
	    getrandom(w->h.snap_id, sizeof(w->h.snap_id), 0) != (ssize_t)sizeof(w->h.snap_id)) {
		int e = errno ? errno : EIO;
		free(w);
		return mig_fail(err, errlen, -e, "writer: getrandom: %s", strerror(e));
	}
	w->end = BODY_START;
	*wp = w;
	return 0;
}

/* The entry for a new section, after the checks every section gets. */
static struct mig_section *new_section(struct mig_snap_writer *w, uint32_t type, char *err,
				       size_t errlen, int *rc)
{
	char tb[24];
	if (w->failed) {
		*rc = mig_fail(err, errlen, -EIO, "section %s: an earlier write failed",
			       tname(type, tb));
		return NULL;
	}
	if (type == 0) {
		*rc = mig_fail(err, errlen, -EINVAL, "section type 0: reserved");
		return NULL;
	}
	if (w->n == MIG_SNAP_MAX_SECTIONS) {
		*rc = mig_fail(err, errlen, -E2BIG, "section %s: more than %d sections",
			       tname(type, tb), MIG_SNAP_MAX_SECTIONS);
		return NULL;
	}
	for (uint32_t i = 0; known_type(type) && i < w->n; i++)
		if (w->sec[i].type == type) {
			*rc = mig_fail(err, errlen, -EEXIST, "section %s: added twice",
				       mig_sec_name(type));
			return NULL;
		}
	struct mig_section *s = &w->sec[w->n];
	memset(s, 0, sizeof(*s));
	s->type = type;
	return s;
}

int mig_snap_add(struct mig_snap_writer *w, uint32_t type, uint16_t version, uint16_t flags,
		 const void *data, uint64_t len, char *err, size_t errlen)
{
	int rc = 0;
	char tb[24];
	if (type == MIG_SEC_PAGES || type == MIG_SEC_PAGEMAP)
		return mig_fail(err, errlen, -EINVAL, "section %s: added by mig_snap_add_pages",
				mig_sec_name(type));
	if (flags & MIG_SEC_F_ZSTD)
		return mig_fail(err, errlen, -EINVAL, "section %s: only pages can be compressed",
				tname(type, tb));
	if (len > MIG_SNAP_MAX_BLOB)
		return mig_fail(err, errlen, -EFBIG,
				"section %s: %llu bytes, over the %llu MiB cap", tname(type, tb),
				(unsigned long long)len, MIG_SNAP_MAX_BLOB >> 20);
	struct mig_section *s = new_section(w, type, err, errlen, &rc);
	if (!s)
		return rc;
	s->version = version;
	s->flags = flags;
	s->offset = w->end;
	s->length = len;
	s->checksum = XXH3_64bits(data, (size_t)len);
	rc = pwrite_all(w->fd, data, (size_t)len, s->offset);
	if (rc < 0) {
		w->failed = 1;
		return mig_fail(err, errlen, rc, "section %s: write: %s", tname(type, tb),
				strerror(-rc));
	}
	w->end = align_up(s->offset + len, 8);
	w->n++;
	return 0;
}

/* Where stored pages go: straight into the mappable image, or through one zstd frame. */
struct page_sink {
	struct mig_snap_writer *w;
	uint64_t base; /* raw: file offset of page 0; zstd: of the frame */
	ZSTD_CCtx *cctx;
	uint8_t *zbuf;
	size_t zcap;
	uint64_t zlen;	    /* compressed bytes written */
	XXH3_state_t *zsum; /* zstd: the checksum covers the frame as stored */
};

static int zstd_flush(struct page_sink *k, ZSTD_outBuffer *out)
{
	if (!out->pos)
		return 0;
	XXH3_64bits_update(k->zsum, out->dst, out->pos);
	int rc = pwrite_all(k->w->fd, out->dst, out->pos, k->base + k->zlen);
	k->zlen += out->pos;
	out->pos = 0;
	return rc;
}

static int sink_run(struct page_sink *k, const uint8_t *mem, uint64_t first, uint64_t count,
		    char *err, size_t errlen)
{
	size_t len = (size_t)(count * PAGE);
	const uint8_t *src = mem + first * PAGE;
	if (!k->cctx) {
		int rc = pwrite_all(k->w->fd, src, len, k->base + first * PAGE);
		if (rc < 0)
			return mig_fail(err, errlen, rc, "section pages: write: %s", strerror(-rc));
		return 0;
	}
	ZSTD_inBuffer in = {src, len, 0};
	while (in.pos < in.size) {
		ZSTD_outBuffer out = {k->zbuf, k->zcap, 0};
		size_t r = ZSTD_compressStream2(k->cctx, &out, &in, ZSTD_e_continue);
		if (ZSTD_isError(r))
			return mig_fail(err, errlen, -EIO, "section pages: zstd: %s",
					ZSTD_getErrorName(r));
		int rc = zstd_flush(k, &out);
		if (rc < 0)
			return mig_fail(err, errlen, rc, "section pages: write: %s", strerror(-rc));
	}
	return 0;
}

static int sink_end(struct page_sink *k, char *err, size_t errlen)
{
	if (!k->cctx)
		return 0;
	size_t r;
	do {
		ZSTD_inBuffer in = {NULL, 0, 0};
		ZSTD_outBuffer out = {k->zbuf, k->zcap, 0};
		r = ZSTD_compressStream2(k->cctx, &out, &in, ZSTD_e_end);
		if (ZSTD_isError(r))
			return mig_fail(err, errlen, -EIO, "section pages: zstd: %s",
					ZSTD_getErrorName(r));
		int rc = zstd_flush(k, &out);
		if (rc < 0)
			return mig_fail(err, errlen, rc, "section pages: write: %s", strerror(-rc));
	} while (r != 0);
	return 0;
}

static int zstd_setup(struct page_sink *k, int level, char *err, size_t errlen)
{
	if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel())
		return mig_fail(err, errlen, -EINVAL, "section pages: zstd level %d out of range",
				level);
	k->cctx = ZSTD_createCCtx();
	k->zcap = ZSTD_CStreamOutSize();
	k->zbuf = malloc(k->zcap);
	k->zsum = XXH3_createState();
	if (!k->cctx || !k->zbuf || !k->zsum)
		return mig_fail(err, errlen, -ENOMEM, "section pages: out of memory");
	XXH3_64bits_reset(k->zsum);
	size_t r = ZSTD_CCtx_setParameter(k->cctx, ZSTD_c_compressionLevel, level);
	if (!ZSTD_isError(r))
		/* A second, independent check on what decompression produces. */
		r = ZSTD_CCtx_setParameter(k->cctx, ZSTD_c_checksumFlag, 1);
	if (ZSTD_isError(r))
		return mig_fail(err, errlen, -EINVAL, "section pages: zstd: %s",
				ZSTD_getErrorName(r));
	/* Compression runs beside the page scan when libzstd has threads; without, this fails
	 * and compression stays inline. */
	ZSTD_CCtx_setParameter(k->cctx, ZSTD_c_nbWorkers, 1);
	return 0;
}

static int scan_pages(struct page_sink *k, const uint8_t *mem, uint64_t mem_size, int mem_fd,
		      uint8_t *map, XXH3_state_t *sum, uint64_t *stored, char *err, size_t errlen)
{
	uint64_t pos = 0, n = 0;
	while (pos < mem_size) {
		uint64_t end = mem_size;
		if (mem_fd >= 0) {
			/* Never-touched shmem is a hole: skip it without faulting it in. */
			off_t d = lseek(mem_fd, (off_t)pos, SEEK_DATA);
			if (d < 0 && errno == ENXIO)
				break;
			if (d < 0)
				return mig_fail(err, errlen, -errno, "section pages: SEEK_DATA: %s",
						strerror(errno));
			if ((uint64_t)d >= mem_size)
				break;
			off_t hole = lseek(mem_fd, d, SEEK_HOLE);
			if (hole < 0)
				return mig_fail(err, errlen, -errno, "section pages: SEEK_HOLE: %s",
						strerror(errno));
			pos = (uint64_t)d & ~(PAGE - 1);
			end = align_up((uint64_t)hole, PAGE);
			if (end > mem_size || end <= pos)
				end = mem_size;
		}
		uint64_t i = pos / PAGE, e = end / PAGE;
		while (i < e) {
			while (i < e && page_is_zero(mem + i * PAGE))
				i++;
			uint64_t s = i;
			while (i < e && i - s < RUN_CHUNK / PAGE && !page_is_zero(mem + i * PAGE)) {
				map[i / 8] |= (uint8_t)(1u << (i % 8));
				hash_page(sum, i, mem + i * PAGE);
				i++;
			}
			if (i > s) {
				int rc = sink_run(k, mem, s, i - s, err, errlen);
				if (rc < 0)
					return rc;
				n += i - s;
				if (k->w->stop && k->w->stop(k->w->stop_ctx))
					return mig_fail(err, errlen, -ECANCELED,
							"section pages: abandoned after %llu pages",
							(unsigned long long)n);
			}
		}
		pos = end;
	}
	*stored = n;
	return 0;
}

int mig_snap_add_pages(struct mig_snap_writer *w, const uint8_t *mem, uint64_t mem_size, int mem_fd,
		       int zstd_level, uint64_t *stored, char *err, size_t errlen)
{
	int rc = 0;
	if (w->has_pages)
		return mig_fail(err, errlen, -EEXIST, "section pages: added twice");
	if (mem_size != w->h.mem_size)
		return mig_fail(err, errlen, -EINVAL,
				"section pages: RAM is %llu bytes, the header says %llu",
				(unsigned long long)mem_size, (unsigned long long)w->h.mem_size);
	if (w->n + 2 > MIG_SNAP_MAX_SECTIONS)
		return mig_fail(err, errlen, -E2BIG, "section pages: more than %d sections",
				MIG_SNAP_MAX_SECTIONS);
	if (!new_section(w, MIG_SEC_PAGES, err, errlen, &rc))
		return rc;

	uint64_t npages = mem_size / PAGE, stored_n = 0;
	size_t maplen = (size_t)((npages + 7) / 8);
	uint8_t *map = calloc(1, maplen);
	XXH3_state_t *sum = XXH3_createState();
	struct page_sink k = {.w = w};
	if (!map || !sum) {
		rc = mig_fail(err, errlen, -ENOMEM, "section pages: out of memory");
		goto out;
	}
	XXH3_64bits_reset(sum);
	if (zstd_level) {
		k.base = w->end;
		rc = zstd_setup(&k, zstd_level, err, errlen);
	} else {
		k.base = align_up(w->end, PAGE);
	}
	if (rc < 0)
		goto out;
	rc = scan_pages(&k, mem, mem_size, mem_fd, map, sum, &stored_n, err, errlen);
	if (rc == 0)
		rc = sink_end(&k, err, errlen);
	if (rc < 0) {
		w->failed = 1;
		goto out;
	}

	struct mig_section *pages = &w->sec[w->n];
	pages->type = MIG_SEC_PAGES;
	pages->version = 1;
	pages->flags = MIG_SEC_F_REQUIRED | (zstd_level ? MIG_SEC_F_ZSTD : 0);
	pages->offset = k.base;
	pages->length = zstd_level ? k.zlen : mem_size;
	pages->checksum = zstd_level ? XXH3_64bits_digest(k.zsum) : XXH3_64bits_digest(sum);
	w->n++;
	w->end = align_up(pages->offset + pages->length, 8);

	struct mig_section *pm = &w->sec[w->n];
	memset(pm, 0, sizeof(*pm));
	pm->type = MIG_SEC_PAGEMAP;
	pm->version = 1;
	pm->flags = MIG_SEC_F_REQUIRED;
	pm->offset = w->end;
	pm->length = maplen;
	pm->checksum = XXH3_64bits(map, maplen);
	rc = pwrite_all(w->fd, map, maplen, pm->offset);
	if (rc < 0) {
		w->failed = 1;
		rc = mig_fail(err, errlen, rc, "section pagemap: write: %s", strerror(-rc));
		goto out;
	}
	w->n++;
	w->end = align_up(pm->offset + maplen, 8);
	w->has_pages = 1;
	if (stored)
		*stored = stored_n;
out:
	ZSTD_freeCCtx(k.cctx);
	free(k.zbuf);
	XXH3_freeState(k.zsum);
	XXH3_freeState(sum);
	free(map);
	return rc;
}

static void encode_header(const struct mig_snap_header *h, uint8_t *b, uint64_t file_size,
			  uint64_t table_sum)
{
	memset(b, 0, MIG_SNAP_HEADER_SIZE);
	memcpy(b + H_MAGIC, MIG_SNAP_MAGIC, 8);
	put16(b + H_MAJOR, h->major);
	put16(b + H_MINOR, h->minor);
	put32(b + H_HEADER_SIZE, MIG_SNAP_HEADER_SIZE);
	put32(b + H_ABI, h->abi_version);
	put32(b + H_NSECTIONS, h->nsections);
	put64(b + H_MEM_SIZE, h->mem_size);
	put64(b + H_TSC_KHZ, h->tsc_khz);
	put64(b + H_CREATED, h->created_ns);
	put64(b + H_FILE_SIZE, file_size);
	put64(b + H_TABLE_OFF, MIG_SNAP_HEADER_SIZE);
	put32(b + H_ENTRY_SIZE, ENTRY_SIZE);
	put64(b + H_TABLE_SUM, table_sum);
	memcpy(b + H_CPUID, h->cpuid_sig, 32);
	memcpy(b + H_ELF_HASH, h->elf_hash, 16);
	memcpy(b + H_SNAP_ID, h->snap_id, 16);
	memcpy(b + H_PARENT_ID, h->parent_id, 16);
	put64(b + H_HEADER_SUM, XXH3_64bits(b, MIG_SNAP_HEADER_SIZE));
}

int mig_snap_writer_finish(struct mig_snap_writer *w, int do_fsync, char *err, size_t errlen)
{
	uint8_t table[MIG_SNAP_MAX_SECTIONS * ENTRY_SIZE];
	uint8_t hdr[MIG_SNAP_HEADER_SIZE];
	if (w->failed)
		return mig_fail(err, errlen, -EIO, "writer: an earlier write failed");
	memset(table, 0, sizeof(table));
	for (uint32_t i = 0; i < w->n; i++) {
		uint8_t *e = table + i * ENTRY_SIZE;
		put32(e + E_TYPE, w->sec[i].type);
		put16(e + E_VERSION, w->sec[i].version);
		put16(e + E_FLAGS, w->sec[i].flags);
		put64(e + E_OFFSET, w->sec[i].offset);
		put64(e + E_LENGTH, w->sec[i].length);
		put64(e + E_CHECKSUM, w->sec[i].checksum);
	}
	w->h.nsections = w->n;
	encode_header(&w->h, hdr, w->end, XXH3_64bits(table, w->n * ENTRY_SIZE));
	/* The last body may end in a hole (raw pages) that no write extended the file over. */
	int rc = ftruncate(w->fd, (off_t)w->end) < 0 ? -errno : 0;
	if (rc == 0)
		rc = pwrite_all(w->fd, table, sizeof(table), MIG_SNAP_HEADER_SIZE);
	if (rc == 0)
		rc = pwrite_all(w->fd, hdr, sizeof(hdr), 0);
	if (rc < 0) {
		w->failed = 1;
		return mig_fail(err, errlen, rc, "header: write: %s", strerror(-rc));
	}
	if (do_fsync && fsync(w->fd) < 0) {
		w->failed = 1;
		return mig_fail(err, errlen, -errno, "writer: fsync: %s", strerror(errno));
	}
	return 0;
}

void mig_snap_writer_watch(struct mig_snap_writer *w, int (*stop)(void *ctx), void *ctx)
{
	w->stop = stop;
	w->stop_ctx = ctx;
}

void mig_snap_writer_free(struct mig_snap_writer *w)
{
	free(w);
}

/* ---- temporary file, commit, abort -------------------------------------------------------- */

/* The directory `path` is in, for O_TMPFILE and the fsync after a rename. */
static void dir_of(const char *path, char *dir, size_t len)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(dir, len, ".");
	else if (slash == path)
		snprintf(dir, len, "/");
	else
		snprintf(dir, len, "%.*s", (int)(slash - path), path);
}

int mig_snap_tmp_open_named(const char *path, char *tmp, size_t tmplen, char *err, size_t errlen)
{
	int n = snprintf(tmp, tmplen, "%s.tmp.XXXXXX", path);
	if (n < 0 || (size_t)n >= tmplen)
		return mig_fail(err, errlen, -ENAMETOOLONG, "%s: path too long", path);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return mig_fail(err, errlen, -errno, "%s: %s", tmp, strerror(errno));
	return fd;
}

int mig_snap_tmp_open(const char *path, char *tmp, size_t tmplen, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	int n = snprintf(tmp, tmplen, "%s.tmp.XXXXXX", path); /* the fallback's name must fit */
	if (n < 0 || (size_t)n >= tmplen)
		return mig_fail(err, errlen, -ENAMETOOLONG, "%s: path too long", path);
	dir_of(path, dir, sizeof(dir));
	/* Without a name nothing is left behind by a process killed before the commit; the
	 * commit links it in through /proc/self/fd, so that must be there too. */
	if (access("/proc/self/fd", X_OK) == 0) {
		int fd = open(dir, O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
		if (fd >= 0) {
			tmp[0] = 0;
			return fd;
		}
		/* File systems without O_TMPFILE say so in several ways; anything else (no such
		 * directory, no permission) the named file will say again. */
	}
	return mig_snap_tmp_open_named(path, tmp, tmplen, err, errlen);
}

/* An unnamed temporary given the name `name` (which must not exist). */
static int link_unnamed(int fd, const char *name)
{
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, name, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	return -errno;
}

/* Puts an unnamed temporary in place at path: linked there if nothing is, else linked to a
 * fresh name beside it and renamed over the old file (atomic for readers of path; a process
 * killed between the two leaves that name behind, a complete snapshot). */
static int commit_unnamed(int fd, const char *path, char *err, size_t errlen)
{
	int r = link_unnamed(fd, path);
	if (r != -EEXIST) {
		if (r < 0)
			return mig_fail(err, errlen, r, "%s: linking the snapshot in: %s", path,
					strerror(-r));
		return 0;
	}
	char name[PATH_MAX];
	for (int tries = 0; tries < 16; tries++) {
		uint64_t rnd = 0;
		if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			rnd = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)tries;
		int n = snprintf(name, sizeof(name), "%s.tmp.%012llx", path,
				 (unsigned long long)(rnd & 0xffffffffffffull));
		if (n < 0 || (size_t)n >= sizeof(name))
			return mig_fail(err, errlen, -ENAMETOOLONG, "%s: path too long", path);
		r = link_unnamed(fd, name);
		if (r != -EEXIST)
			break;
	}
	if (r < 0)
		return mig_fail(err, errlen, r, "%s: linking the snapshot in: %s", name,
				strerror(-r));
	if (rename(name, path) < 0) {
		r = -errno;
		unlink(name);
		return mig_fail(err, errlen, r, "%s: rename to %s: %s", name, path, strerror(-r));
	}
	return 0;
}

int mig_snap_commit(int fd, const char *tmp, const char *path, char *err, size_t errlen)
{
	if (fsync(fd) < 0)
		return mig_fail(err, errlen, -errno, "%s: fsync: %s", tmp[0] ? tmp : path,
				strerror(errno));
	if (!tmp[0]) {
		int r = commit_unnamed(fd, path, err, errlen);
		if (r < 0)
			return r;
	} else if (rename(tmp, path) < 0) {
		return mig_fail(err, errlen, -errno, "%s: rename to %s: %s", tmp, path,
				strerror(errno));
	}
	/* The new name is only durable once the directory is. */
	char dir[PATH_MAX];
	dir_of(path, dir, sizeof(dir));
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return mig_fail(err, errlen, -errno, "%s: %s", dir, strerror(errno));
	int rc = fsync(dfd) < 0 ? -errno : 0;
	close(dfd);
	if (rc < 0)
		return mig_fail(err, errlen, rc, "%s: fsync: %s", dir, strerror(-rc));
	close(fd);
	return 0;
}

void mig_snap_abort(int fd, const char *tmp)
{
	if (fd >= 0)
		close(fd); /* an unnamed temporary is gone with its last descriptor */
	if (tmp && tmp[0])
		unlink(tmp);
}

/* ---- reader ------------------------------------------------------------------------------- */

struct mig_snap_reader {
	int fd;
	uint64_t file_size;
	struct mig_snap_header h;
	uint32_t n;
	struct mig_section sec[MIG_SNAP_MAX_SECTIONS];
	void *body[MIG_SNAP_MAX_SECTIONS]; /* verified bodies, loaded on demand */
};

static int find_section(const struct mig_snap_reader *r, uint32_t type)
{
	for (uint32_t i = 0; i < r->n; i++)
		if (r->sec[i].type == type)
			return (int)i;
	return -1;
}

static int read_header(struct mig_snap_reader *r, uint8_t *buf, uint32_t *hsize, char *err,
		       size_t errlen)
{
	uint64_t fsz = r->file_size;
	if (fsz < MIG_SNAP_HEADER_SIZE)
		return mig_fail(err, errlen, -EINVAL,
				"header: file is %llu bytes, shorter than the %u-byte header "
				"(truncated?)",
				(unsigned long long)fsz, (unsigned)MIG_SNAP_HEADER_SIZE);
	ssize_t got = pread_all(r->fd, buf, MIG_SNAP_HEADER_SIZE, 0);
	if (got < 0)
		return mig_fail(err, errlen, (int)got, "header: read: %s", strerror((int)-got));
	if (got != MIG_SNAP_HEADER_SIZE)
		return mig_fail(err, errlen, -EIO, "header: short read (file changed?)");
	if (memcmp(buf + H_MAGIC, MIG_SNAP_MAGIC, 8) != 0)
		return mig_fail(err, errlen, -EINVAL, "header: bad magic (not a snapshot file)");
	uint16_t major = get16(buf + H_MAJOR), minor = get16(buf + H_MINOR);
	/* Nothing past the version is known to mean anything in another major. */
	if (major > MIG_SNAP_MAJOR)
		return mig_fail(err, errlen, -EPROTONOSUPPORT,
				"header: format %u.%u is newer than this reader (%u.x)", major,
				minor, MIG_SNAP_MAJOR);
	if (major < MIG_SNAP_MAJOR)
		return mig_fail(err, errlen, -EPROTONOSUPPORT,
				"header: format %u.%u is older than any this reader knows (%u.x)",
				major, minor, MIG_SNAP_MAJOR);
	uint32_t hs = get32(buf + H_HEADER_SIZE);
	if (hs < MIG_SNAP_HEADER_SIZE || hs > HDR_MAX || hs % 8)
		return mig_fail(err, errlen, -EINVAL,
				"header: header_size %u is not a multiple of 8 in %u..%u", hs,
				(unsigned)MIG_SNAP_HEADER_SIZE, HDR_MAX);
	if (hs > fsz)
		return mig_fail(err, errlen, -EINVAL,
				"header: file is %llu bytes, shorter than the %u-byte header "
				"(truncated?)",
				(unsigned long long)fsz, hs);
	if (hs > MIG_SNAP_HEADER_SIZE) {
		got = pread_all(r->fd, buf + MIG_SNAP_HEADER_SIZE, hs - MIG_SNAP_HEADER_SIZE,
				MIG_SNAP_HEADER_SIZE);
		if (got != (ssize_t)(hs - MIG_SNAP_HEADER_SIZE))
			return mig_fail(err, errlen, -EIO, "header: short read (file changed?)");
	}
	uint64_t want = get64(buf + H_HEADER_SUM);
	put64(buf + H_HEADER_SUM, 0);
	if (XXH3_64bits(buf, hs) != want)
		return mig_fail(err, errlen, -EBADMSG, "header: checksum mismatch (file corrupt?)");
	*hsize = hs;
	return 0;
}

static int check_header(struct mig_snap_reader *r, const uint8_t *b, uint32_t hs, char *err,
			size_t errlen)
{
	struct mig_snap_header *h = &r->h;
	h->major = get16(b + H_MAJOR);
	h->minor = get16(b + H_MINOR);
	h->abi_version = get32(b + H_ABI);
	h->nsections = get32(b + H_NSECTIONS);
	h->mem_size = get64(b + H_MEM_SIZE);
	h->tsc_khz = get64(b + H_TSC_KHZ);
	h->created_ns = get64(b + H_CREATED);
	memcpy(h->cpuid_sig, b + H_CPUID, 32);
	memcpy(h->elf_hash, b + H_ELF_HASH, 16);
	memcpy(h->snap_id, b + H_SNAP_ID, 16);
	memcpy(h->parent_id, b + H_PARENT_ID, 16);
	uint64_t fsz = get64(b + H_FILE_SIZE);
	if (fsz != r->file_size)
		return mig_fail(err, errlen, -EINVAL,
				"header: file is %llu bytes, header says %llu (%s)",
				(unsigned long long)r->file_size, (unsigned long long)fsz,
				r->file_size < fsz ? "truncated?" : "trailing data?");
	if (!mem_size_ok(h->mem_size))
		return mig_fail(
		    err, errlen, -EINVAL,
		    "header: mem_size %llu is not a nonzero multiple of 2 MiB up to %llu",
		    (unsigned long long)h->mem_size, (unsigned long long)MIG_SNAP_MAX_MEM);
	if (h->nsections > MIG_SNAP_MAX_SECTIONS)
		return mig_fail(err, errlen, -EINVAL, "header: %u sections, over the cap of %d",
				h->nsections, MIG_SNAP_MAX_SECTIONS);
	uint64_t toff = get64(b + H_TABLE_OFF);
	uint32_t esz = get32(b + H_ENTRY_SIZE);
	if (esz < ENTRY_SIZE || esz > ENTRY_MAX || esz % 8)
		return mig_fail(err, errlen, -EINVAL,
				"section table: entry size %u is not a multiple of 8 in %u..%u",
				esz, ENTRY_SIZE, ENTRY_MAX);
	uint64_t tlen = (uint64_t)h->nsections * esz;
	if (toff < hs || toff > r->file_size || tlen > r->file_size - toff)
		return mig_fail(
		    err, errlen, -EINVAL,
		    "section table: %llu bytes at %llu, outside the file (%llu bytes) or "
		    "inside the header",
		    (unsigned long long)tlen, (unsigned long long)toff,
		    (unsigned long long)r->file_size);
	return 0;
}

static int check_table(struct mig_snap_reader *r, const uint8_t *hdr, char *err, size_t errlen)
{
	uint64_t toff = get64(hdr + H_TABLE_OFF);
	uint32_t esz = get32(hdr + H_ENTRY_SIZE);
	uint32_t n = r->h.nsections;
	size_t tlen = (size_t)n * esz;
	uint8_t *t = malloc(tlen ? tlen : 1);
	if (!t)
		return mig_fail(err, errlen, -ENOMEM, "section table: out of memory");
	ssize_t got = pread_all(r->fd, t, tlen, toff);
	if (got != (ssize_t)tlen) {
		free(t);
		return mig_fail(err, errlen, -EIO, "section table: short read (file changed?)");
	}
	if (XXH3_64bits(t, tlen) != get64(hdr + H_TABLE_SUM)) {
		free(t);
		return mig_fail(err, errlen, -EBADMSG,
				"section table: checksum mismatch (file corrupt?)");
	}
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = t + (size_t)i * esz;
		struct mig_section *s = &r->sec[i];
		s->type = get32(e + E_TYPE);
		s->version = get16(e + E_VERSION);
		s->flags = get16(e + E_FLAGS);
		s->offset = get64(e + E_OFFSET);
		s->length = get64(e + E_LENGTH);
		s->checksum = get64(e + E_CHECKSUM);
	}
	free(t);
	r->n = n;

	uint64_t meta_end = toff + tlen;
	for (uint32_t i = 0; i < n; i++) {
		const struct mig_section *s = &r->sec[i];
		char tb[24];
		const char *nm = tname(s->type, tb);
		if (s->type == 0)
			return mig_fail(err, errlen, -EINVAL,
					"section table: section %u has type 0 (reserved)", i);
		if (!known_type(s->type)) {
			if (s->flags & MIG_SEC_F_REQUIRED)
				return mig_fail(
				    err, errlen, -EPROTONOSUPPORT,
				    "section table: section %u (%s) is required but unknown "
				    "to this reader",
				    i, nm);
		} else {
			for (uint32_t j = 0; j < i; j++)
				if (r->sec[j].type == s->type)
					return mig_fail(
					    err, errlen, -EINVAL,
					    "section table: sections %u and %u are both %s", j, i,
					    nm);
		}
		if (s->length > r->file_size || s->offset > r->file_size - s->length)
			return mig_fail(
			    err, errlen, -EINVAL,
			    "section table: section %u (%s) ends at %llu, past the end of "
			    "the file (%llu bytes)",
			    i, nm, (unsigned long long)s->offset + s->length,
			    (unsigned long long)r->file_size);
		if (s->length && s->offset < meta_end)
			return mig_fail(
			    err, errlen, -EINVAL,
			    "section table: section %u (%s) at %llu overlaps the header or "
			    "table (up to %llu)",
			    i, nm, (unsigned long long)s->offset, (unsigned long long)meta_end);
		if (known_type(s->type) && s->type != MIG_SEC_PAGES &&
		    s->length > MIG_SNAP_MAX_BLOB)
			return mig_fail(
			    err, errlen, -EFBIG,
			    "section table: section %u (%s) is %llu bytes, over the %llu "
			    "MiB cap",
			    i, nm, (unsigned long long)s->length, MIG_SNAP_MAX_BLOB >> 20);
		if ((s->flags & MIG_SEC_F_ZSTD) && known_type(s->type) && s->type != MIG_SEC_PAGES)
			return mig_fail(err, errlen, -EINVAL,
					"section table: section %u (%s) is marked compressed; only "
					"pages can be",
					i, nm);
		/* n <= 64: quadratic is cheaper than sorting a copy. */
		for (uint32_t j = 0; j < i; j++) {
			const struct mig_section *o = &r->sec[j];
			if (s->length && o->length && s->offset < o->offset + o->length &&
			    o->offset < s->offset + s->length) {
				char ob[24];
				return mig_fail(
				    err, errlen, -EINVAL,
				    "section table: sections %u (%s) and %u (%s) overlap", j,
				    tname(o->type, ob), i, nm);
			}
		}
	}

	int p = find_section(r, MIG_SEC_PAGES), m = find_section(r, MIG_SEC_PAGEMAP);
	if (p >= 0 && m < 0)
		return mig_fail(err, errlen, -EINVAL,
				"section pages: no pagemap section beside it");
	if (m >= 0 && p < 0)
		return mig_fail(err, errlen, -EINVAL,
				"section pagemap: no pages section beside it");
	uint64_t npages = r->h.mem_size / PAGE;
	if (m >= 0) {
		const struct mig_section *s = &r->sec[m];
		if (s->version != 1)
			return mig_fail(err, errlen, -EPROTONOSUPPORT,
					"section pagemap: version %u unknown (this reader knows 1)",
					s->version);
		if (s->length != (npages + 7) / 8)
			return mig_fail(
			    err, errlen, -EINVAL,
			    "section pagemap: %llu bytes, %llu expected for mem_size %llu",
			    (unsigned long long)s->length, (unsigned long long)(npages + 7) / 8,
			    (unsigned long long)r->h.mem_size);
	}
	if (p >= 0) {
		const struct mig_section *s = &r->sec[p];
		if (s->version != 1)
			return mig_fail(err, errlen, -EPROTONOSUPPORT,
					"section pages: version %u unknown (this reader knows 1)",
					s->version);
		if (!(s->flags & MIG_SEC_F_ZSTD)) {
			if (s->offset % PAGE)
				return mig_fail(err, errlen, -EINVAL,
						"section pages: offset %llu is not 4096-aligned",
						(unsigned long long)s->offset);
			if (s->length != r->h.mem_size)
				return mig_fail(err, errlen, -EINVAL,
						"section pages: %llu bytes, mem_size is %llu",
						(unsigned long long)s->length,
						(unsigned long long)r->h.mem_size);
		}
	}
	return 0;
}

int mig_snap_open(struct mig_snap_reader **rp, int fd, char *err, size_t errlen)
{
	uint8_t hdr[HDR_MAX];
	uint32_t hs = 0;
	struct stat st;
	*rp = NULL;
	if (fstat(fd, &st) < 0)
		return mig_fail(err, errlen, -errno, "header: fstat: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return mig_fail(err, errlen, -EINVAL, "header: not a regular file");
	struct mig_snap_reader *r = calloc(1, sizeof(*r));
	if (!r)
		return mig_fail(err, errlen, -ENOMEM, "header: out of memory");
	r->fd = fd;
	r->file_size = (uint64_t)st.st_size;
	int rc = read_header(r, hdr, &hs, err, errlen);
	if (rc == 0)
		rc = check_header(r, hdr, hs, err, errlen);
	if (rc == 0)
		rc = check_table(r, hdr, err, errlen);
	if (rc < 0) {
		free(r);
		return rc;
	}
	*rp = r;
	return 0;
}

const struct mig_snap_header *mig_snap_header_of(const struct mig_snap_reader *r)
{
	return &r->h;
}

static int load_body(struct mig_snap_reader *r, int i, char *err, size_t errlen)
{
	const struct mig_section *s = &r->sec[i];
	char tb[24];
	const char *nm = tname(s->type, tb);
	if (r->body[i])
		return 0;
	if (s->length > MIG_SNAP_MAX_BLOB)
		return mig_fail(err, errlen, -EFBIG,
				"section %s: %llu bytes, over the %llu MiB cap", nm,
				(unsigned long long)s->length, MIG_SNAP_MAX_BLOB >> 20);
	uint8_t *b = malloc(s->length ? (size_t)s->length : 1);
	if (!b)
		return mig_fail(err, errlen, -ENOMEM, "section %s: out of memory", nm);
	ssize_t got = pread_all(r->fd, b, (size_t)s->length, s->offset);
	if (got != (ssize_t)s->length) {
		free(b);
		if (got < 0)
			return mig_fail(err, errlen, (int)got, "section %s: read: %s", nm,
					strerror((int)-got));
		return mig_fail(err, errlen, -EIO, "section %s: short read (file changed?)", nm);
	}
	if (XXH3_64bits(b, (size_t)s->length) != s->checksum) {
		free(b);
		return mig_fail(err, errlen, -EBADMSG,
				"section %s: checksum mismatch (file corrupt?)", nm);
	}
	r->body[i] = b;
	return 0;
}

int mig_snap_section(struct mig_snap_reader *r, uint32_t type, uint16_t *version, const void **data,
		     uint64_t *len, char *err, size_t errlen)
{
	char tb[24];
	if (type == MIG_SEC_PAGES)
		return mig_fail(
		    err, errlen, -EINVAL,
		    "section pages: read with mig_snap_read_pages or mig_snap_pages_extent");
	int i = find_section(r, type);
	if (i < 0)
		return mig_fail(err, errlen, -ENOENT, "section %s: not in the file",
				tname(type, tb));
	int rc = load_body(r, i, err, errlen);
	if (rc < 0)
		return rc;
	if (version)
		*version = r->sec[i].version;
	*data = r->body[i];
	*len = r->sec[i].length;
	return 0;
}

/* The verified PAGEMAP, with no bit set past mem_size, and the PAGES entry. */
static int load_pagemap(struct mig_snap_reader *r, const uint8_t **map,
			const struct mig_section **pages, uint64_t *stored, char *err,
			size_t errlen)
{
	int p = find_section(r, MIG_SEC_PAGES);
	if (p < 0)
		return mig_fail(err, errlen, -ENOENT, "section pages: not in the file");
	int m = find_section(r, MIG_SEC_PAGEMAP);
	int rc = load_body(r, m, err, errlen);
	if (rc < 0)
		return rc;
	const uint8_t *b = r->body[m];
	uint64_t npages = r->h.mem_size / PAGE, len = r->sec[m].length, n = 0;
	for (uint64_t i = 0; i < len; i++)
		n += (uint64_t)__builtin_popcount(b[i]);
	for (uint64_t i = npages; i < len * 8; i++)
		if (bit_get(b, i))
			return mig_fail(err, errlen, -EINVAL,
					"section pagemap: page %llu is past mem_size %llu",
					(unsigned long long)i, (unsigned long long)r->h.mem_size);
	*map = b;
	*pages = &r->sec[p];
	*stored = n;
	return 0;
}

/* Reads the stored pages of a raw PAGES body, into dst (a full RAM image) or, with dst NULL,
 * through a scratch buffer; either way the checksum is checked. */
static int raw_pages(struct mig_snap_reader *r, const uint8_t *map, const struct mig_section *s,
		     uint8_t *dst, char *err, size_t errlen)
{
	uint64_t npages = r->h.mem_size / PAGE;
	uint8_t *scratch = NULL;
	XXH3_state_t *sum = XXH3_createState();
	int rc = 0;
	if (!dst)
		scratch = malloc(IO_CHUNK);
	if (!sum || (!dst && !scratch)) {
		rc = mig_fail(err, errlen, -ENOMEM, "section pages: out of memory");
		goto out;
	}
	XXH3_64bits_reset(sum);
	for (uint64_t i = bit_scan(map, 0, npages, 1); i < npages;) {
		uint64_t e = bit_scan(map, i, npages, 0);
		while (i < e) {
			uint64_t c = e - i < IO_CHUNK / PAGE ? e - i : IO_CHUNK / PAGE;
			uint8_t *buf = dst ? dst + i * PAGE : scratch;
			ssize_t got =
			    pread_all(r->fd, buf, (size_t)(c * PAGE), s->offset + i * PAGE);
			if (got != (ssize_t)(c * PAGE)) {
				rc = mig_fail(err, errlen, got < 0 ? (int)got : -EIO,
					      "section pages: read at %llu: %s",
					      (unsigned long long)(s->offset + i * PAGE),
					      got < 0 ? strerror((int)-got)
						      : "short (file changed?)");
				goto out;
			}
			for (uint64_t k = 0; k < c; k++)
				hash_page(sum, i + k, buf + k * PAGE);
			i += c;
		}
		i = bit_scan(map, e, npages, 1);
	}
	if (XXH3_64bits_digest(sum) != s->checksum)
		rc = mig_fail(err, errlen, -EBADMSG,
			      "section pages: checksum mismatch (file corrupt?)");
out:
	XXH3_freeState(sum);
	free(scratch);
	return rc;
}

/* A mapping shows every page of the body, not just the stored ones the checksum covers: the
 * others must read as zero. Holes do by construction, so only data extents are read. */
static int raw_unstored_zero(struct mig_snap_reader *r, const uint8_t *map,
			     const struct mig_section *s, char *err, size_t errlen)
{
	uint64_t npages = r->h.mem_size / PAGE, end = s->offset + s->length;
	uint8_t *buf = malloc(IO_CHUNK);
	int rc = 0;
	if (!buf)
		return mig_fail(err, errlen, -ENOMEM, "section pages: out of memory");
	uint64_t pos = s->offset;
	while (pos < end) {
		off_t d = lseek(r->fd, (off_t)pos, SEEK_DATA);
		if (d < 0 && errno == ENXIO)
			break;
		if (d < 0) {
			rc = mig_fail(err, errlen, -errno, "section pages: SEEK_DATA: %s",
				      strerror(errno));
			break;
		}
		if ((uint64_t)d >= end)
			break;
		off_t h = lseek(r->fd, d, SEEK_HOLE);
		if (h < 0 || (uint64_t)h <= (uint64_t)d)
			h = (off_t)end;
		uint64_t i = ((uint64_t)d - s->offset) / PAGE;
		uint64_t e = (align_up((uint64_t)h, PAGE) - s->offset) / PAGE;
		if (e > npages)
			e = npages;
		for (i = bit_scan(map, i, e, 0); i < e; i = bit_scan(map, i, e, 0)) {
			uint64_t re = bit_scan(map, i, e, 1);
			uint64_t c = re - i < IO_CHUNK / PAGE ? re - i : IO_CHUNK / PAGE;
			ssize_t got =
			    pread_all(r->fd, buf, (size_t)(c * PAGE), s->offset + i * PAGE);
			if (got != (ssize_t)(c * PAGE)) {
				rc =
				    mig_fail(err, errlen, -EIO, "section pages: short read at %llu",
					     (unsigned long long)(s->offset + i * PAGE));
				goto out;
			}
			for (uint64_t k = 0; k < c; k++)
				if (!page_is_zero(buf + k * PAGE)) {
					rc = mig_fail(
					    err, errlen, -EBADMSG,
					    "section pages: page %llu is not in the pagemap "
					    "but holds data (file corrupt?)",
					    (unsigned long long)(i + k));
					goto out;
				}
			i += c;
		}
		pos = s->offset + e * PAGE;
	}
out:
	free(buf);
	return rc;
}

static int zstd_pages(struct mig_snap_reader *r, const uint8_t *map, const struct mig_section *s,
		      uint64_t stored, uint8_t *dst, char *err, size_t errlen)
{
	uint64_t npages = r->h.mem_size / PAGE;
	size_t cap = IO_CHUNK;
	uint8_t *buf = malloc(cap);
	ZSTD_DCtx *d = ZSTD_createDCtx();
	XXH3_state_t *sum = XXH3_createState();
	int rc = 0;
	if (!buf || !d || !sum) {
		rc = mig_fail(err, errlen, -ENOMEM, "section pages: out of memory");
		goto out;
	}
	/* The frame is verified as stored before zstd sees a byte of it. */
	XXH3_64bits_reset(sum);
	for (uint64_t off = 0; off < s->length;) {
		size_t c = s->length - off < cap ? (size_t)(s->length - off) : cap;
		if (pread_all(r->fd, buf, c, s->offset + off) != (ssize_t)c) {
			rc = mig_fail(err, errlen, -EIO,
				      "section pages: short read (file changed?)");
			goto out;
		}
		XXH3_64bits_update(sum, buf, c);
		off += c;
	}
	if (XXH3_64bits_digest(sum) != s->checksum) {
		rc = mig_fail(err, errlen, -EBADMSG,
			      "section pages: checksum mismatch (file corrupt?)");
		goto out;
	}
	size_t zr = ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, ZSTD_WINDOW_LOG_MAX);
	if (ZSTD_isError(zr)) {
		rc = mig_fail(err, errlen, -EIO, "section pages: zstd: %s", ZSTD_getErrorName(zr));
		goto out;
	}
	ZSTD_inBuffer in = {buf, 0, 0};
	uint64_t in_off = 0, done = 0;
	zr = 1;
	/* Output goes straight to each run of stored pages; a frame that ends early or runs
	 * long is caught at the run boundaries and by the final 1-byte probe. */
	uint8_t probe;
	for (uint64_t i = bit_scan(map, 0, npages, 1);;) {
		uint64_t e = i < npages ? bit_scan(map, i, npages, 0) : npages;
		ZSTD_outBuffer out;
		if (i < npages)
			out = (ZSTD_outBuffer){dst + i * PAGE, (size_t)((e - i) * PAGE), 0};
		else
			out = (ZSTD_outBuffer){&probe, 1, 0};
		while (out.pos < out.size) {
			if (i >= npages && zr == 0)
				break;
			if (zr == 0) {
				rc = mig_fail(
				    err, errlen, -EINVAL,
				    "section pages: zstd frame ends after %llu of %llu pages",
				    (unsigned long long)(done + out.pos / PAGE),
				    (unsigned long long)stored);
				goto out;
			}
			if (in.pos == in.size) {
				if (in_off == s->length) {
					rc = mig_fail(
					    err, errlen, -EINVAL,
					    "section pages: zstd frame truncated after %llu "
					    "of %llu pages",
					    (unsigned long long)(done + out.pos / PAGE),
					    (unsigned long long)stored);
					goto out;
				}
				size_t c =
				    s->length - in_off < cap ? (size_t)(s->length - in_off) : cap;
				if (pread_all(r->fd, buf, c, s->offset + in_off) != (ssize_t)c) {
					rc = mig_fail(err, errlen, -EIO,
						      "section pages: short read (file changed?)");
					goto out;
				}
				in_off += c;
				in = (ZSTD_inBuffer){buf, c, 0};
			}
			zr = ZSTD_decompressStream(d, &out, &in);
			if (ZSTD_isError(zr)) {
				rc = mig_fail(err, errlen, -EINVAL, "section pages: zstd: %s",
					      ZSTD_getErrorName(zr));
				goto out;
			}
		}
		if (i >= npages) {
			if (out.pos)
				rc = mig_fail(err, errlen, -EINVAL,
					      "section pages: zstd frame holds more than the %llu "
					      "pages in the pagemap",
					      (unsigned long long)stored);
			else if (in.pos != in.size || in_off != s->length)
				rc = mig_fail(err, errlen, -EINVAL,
					      "section pages: data after the zstd frame");
			goto out;
		}
		done += e - i;
		i = bit_scan(map, e, npages, 1);
	}
out:
	XXH3_freeState(sum);
	ZSTD_freeDCtx(d);
	free(buf);
	return rc;
}

int mig_snap_read_pages(struct mig_snap_reader *r, uint8_t *dst, uint64_t mem_size, char *err,
			size_t errlen)
{
	const uint8_t *map;
	const struct mig_section *s;
	uint64_t stored;
	if (mem_size != r->h.mem_size)
		return mig_fail(err, errlen, -EINVAL,
				"section pages: buffer is %llu bytes, the snapshot's RAM is %llu",
				(unsigned long long)mem_size, (unsigned long long)r->h.mem_size);
	int rc = load_pagemap(r, &map, &s, &stored, err, errlen);
	if (rc < 0)
		return rc;
	if (s->flags & MIG_SEC_F_ZSTD)
		return zstd_pages(r, map, s, stored, dst, err, errlen);
	return raw_pages(r, map, s, dst, err, errlen);
}

int mig_snap_pages_extent(struct mig_snap_reader *r, int verify, uint64_t *offset, uint64_t *len,
			  char *err, size_t errlen)
{
	const uint8_t *map;
	const struct mig_section *s;
	uint64_t stored;
	int rc = load_pagemap(r, &map, &s, &stored, err, errlen);
	if (rc < 0)
		return rc;
	if (s->flags & MIG_SEC_F_ZSTD)
		return mig_fail(err, errlen, -EOPNOTSUPP,
				"section pages: compressed (zstd), not mappable");
	if (verify) {
		rc = raw_pages(r, map, s, NULL, err, errlen);
		if (rc == 0)
			rc = raw_unstored_zero(r, map, s, err, errlen);
		if (rc < 0)
			return rc;
	}
	*offset = s->offset;
	*len = s->length;
	return 0;
}

void mig_snap_reader_free(struct mig_snap_reader *r)
{
	if (!r)
		return;
	for (uint32_t i = 0; i < MIG_SNAP_MAX_SECTIONS; i++)
		free(r->body[i]);
	free(r);
}
