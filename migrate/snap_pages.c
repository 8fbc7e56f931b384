/* Guest RAM in a snapshot: the PAGES body's two codecs (docs/snapshot-format.md, "Pages").
 *
 *   raw   a full image of RAM (length mem_size, page-aligned in the file) whose all-zero pages
 *         are holes, so that a restore can map it; the checksum covers the stored pages only,
 *         each as its index and its 4096 bytes, in address order;
 *   zstd  one zstd frame of the stored pages in address order; the checksum covers the frame
 *         as stored, and is verified before zstd sees a byte of it.
 * Either way the PAGEMAP beside it (bit i: page i is stored) says which pages the body holds. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>
#include <zstd.h>

#include "mig_internal.h"

#define PAGE MIG_PAGE
#define IO_CHUNK (4u << 20)  /* reads while verifying */
#define RUN_CHUNK (1u << 20) /* writes: hashed while still in cache, then written */
#define ZSTD_WINDOW_LOG_MAX 27

/* ---- pages and the pagemap ------------------------------------------------------------------- */

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
	mig_put64(le, idx);
	XXH3_64bits_update(st, le, sizeof(le));
	XXH3_64bits_update(st, page, PAGE);
}

static int bit_get(const uint8_t *map, uint64_t i)
{
	return map[i / 8] >> (i % 8) & 1;
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

/* The next extent of fd at or after pos and below limit that may hold data: 1 and
 * [*start, *end), 0 when only holes are left, or -errno. Where SEEK_HOLE says nothing useful the
 * extent runs to the limit: reading a hole costs time, never correctness. */
static int data_extent(int fd, uint64_t pos, uint64_t limit, uint64_t *start, uint64_t *end,
		       char *err, size_t errlen)
{
	off_t d = lseek(fd, (off_t)pos, SEEK_DATA);
	if (d < 0 && errno == ENXIO)
		return 0;
	if (d < 0)
		return mig_fail(err, errlen, -errno, "section pages: SEEK_DATA: %s",
				strerror(errno));
	if ((uint64_t)d >= limit)
		return 0;
	off_t h = lseek(fd, d, SEEK_HOLE);
	*start = (uint64_t)d;
	*end = h <= d || (uint64_t)h > limit ? limit : (uint64_t)h;
	return 1;
}

/* len bytes at off, all of them. */
static int read_at(int fd, void *buf, size_t len, uint64_t off, char *err, size_t errlen)
{
	ssize_t got = mig_pread_all(fd, buf, len, off);
	if (got == (ssize_t)len)
		return 0;
	return mig_fail(err, errlen, got < 0 ? (int)got : -EIO, "section pages: read at %llu: %s",
			(unsigned long long)off,
			got < 0 ? strerror((int)-got) : "short (file changed?)");
}

int mig_pagemap_check(const uint8_t *map, uint64_t len, uint64_t npages, uint64_t *stored,
		      char *err, size_t errlen)
{
	uint64_t n = 0;
	for (uint64_t i = 0; i < len; i++)
		n += (uint64_t)__builtin_popcount(map[i]);
	uint64_t past = bit_scan(map, npages, len * 8, 1);
	if (past < len * 8)
		return mig_fail(err, errlen, -EINVAL,
				"section pagemap: page %llu is past mem_size %llu",
				(unsigned long long)past, (unsigned long long)(npages * PAGE));
	*stored = n;
	return 0;
}

/* ---- writing --------------------------------------------------------------------------------- */

/* Where stored pages go: straight into the mappable image, or through one zstd frame. */
struct page_sink {
	const struct mig_pages_job *j;
	uint64_t base; /* raw: file offset of page 0; zstd: of the frame */
	ZSTD_CCtx *cctx;
	uint8_t *zbuf;
	size_t zcap;
	uint64_t zlen;	    /* compressed bytes written */
	XXH3_state_t *zsum; /* zstd: the checksum covers the frame as stored */
};

static int sink_write(struct page_sink *k, const void *p, size_t len, uint64_t off, char *err,
		      size_t errlen)
{
	int rc = mig_pwrite_all(k->j->fd, p, len, off);
	if (rc < 0)
		return mig_fail(err, errlen, rc, "section pages: write: %s", strerror(-rc));
	return 0;
}

/* Compresses `in` (ZSTD_e_continue) or ends the frame (ZSTD_e_end), writing what comes out. */
static int zstd_pump(struct page_sink *k, ZSTD_inBuffer *in, ZSTD_EndDirective mode, char *err,
		     size_t errlen)
{
	size_t r;
	do {
		ZSTD_outBuffer out = {k->zbuf, k->zcap, 0};
		r = ZSTD_compressStream2(k->cctx, &out, in, mode);
		if (ZSTD_isError(r))
			return mig_fail(err, errlen, -EIO, "section pages: zstd: %s",
					ZSTD_getErrorName(r));
		if (!out.pos)
			continue;
		XXH3_64bits_update(k->zsum, out.dst, out.pos);
		int rc = sink_write(k, out.dst, out.pos, k->base + k->zlen, err, errlen);
		if (rc < 0)
			return rc;
		k->zlen += out.pos;
	} while (mode == ZSTD_e_end ? r != 0 : in->pos < in->size);
	return 0;
}

static int sink_run(struct page_sink *k, uint64_t first, uint64_t count, char *err, size_t errlen)
{
	size_t len = (size_t)(count * PAGE);
	const uint8_t *src = k->j->mem + first * PAGE;
	if (!k->cctx)
		return sink_write(k, src, len, k->base + first * PAGE, err, errlen);
	ZSTD_inBuffer in = {src, len, 0};
	return zstd_pump(k, &in, ZSTD_e_continue, err, errlen);
}

static int sink_end(struct page_sink *k, char *err, size_t errlen)
{
	ZSTD_inBuffer in = {NULL, 0, 0};
	return k->cctx ? zstd_pump(k, &in, ZSTD_e_end, err, errlen) : 0;
}

int mig_pages_level_check(int level, char *err, size_t errlen)
{
	if (level && (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel()))
		return mig_fail(err, errlen, -EINVAL, "section pages: zstd level %d out of range",
				level);
	return 0;
}

static int zstd_setup(struct page_sink *k, int level, char *err, size_t errlen)
{
	int rc = mig_pages_level_check(level, err, errlen);
	if (rc < 0)
		return rc;
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

/* Pages [i, e) of RAM: the nonzero ones are marked, hashed and stored, in runs. */
static int scan_extent(struct page_sink *k, uint64_t i, uint64_t e, uint8_t *map, XXH3_state_t *sum,
		       uint64_t *n, char *err, size_t errlen)
{
	const uint8_t *mem = k->j->mem;
	while (i < e) {
		while (i < e && page_is_zero(mem + i * PAGE))
			i++;
		uint64_t s = i;
		while (i < e && i - s < RUN_CHUNK / PAGE && !page_is_zero(mem + i * PAGE)) {
			map[i / 8] |= (uint8_t)(1u << (i % 8));
			hash_page(sum, i, mem + i * PAGE);
			i++;
		}
		if (i == s)
			continue;
		int rc = sink_run(k, s, i - s, err, errlen);
		if (rc < 0)
			return rc;
		*n += i - s;
		if (k->j->stop && k->j->stop(k->j->stop_ctx))
			return mig_fail(err, errlen, -ECANCELED,
					"section pages: abandoned after %llu pages",
					(unsigned long long)*n);
	}
	return 0;
}

static int scan_pages(struct page_sink *k, uint8_t *map, XXH3_state_t *sum, uint64_t *stored,
		      char *err, size_t errlen)
{
	const struct mig_pages_job *j = k->j;
	uint64_t pos = 0, n = 0;
	while (pos < j->mem_size) {
		uint64_t start = pos, end = j->mem_size;
		/* Never-touched shmem is a hole: skip it without faulting it in. */
		if (j->mem_fd >= 0) {
			int rc =
			    data_extent(j->mem_fd, pos, j->mem_size, &start, &end, err, errlen);
			if (rc <= 0) {
				if (rc < 0)
					return rc;
				break;
			}
			start &= ~(PAGE - 1);
			end = mig_align_up(end, PAGE);
		}
		int rc = scan_extent(k, start / PAGE, end / PAGE, map, sum, &n, err, errlen);
		if (rc < 0)
			return rc;
		pos = end;
	}
	*stored = n;
	return 0;
}

int mig_pages_write(const struct mig_pages_job *j, uint8_t *map, struct mig_section *pages,
		    uint64_t *stored, char *err, size_t errlen)
{
	struct page_sink k = {.j = j};
	XXH3_state_t *sum = XXH3_createState();
	int rc = 0;
	if (!sum) {
		rc = mig_fail(err, errlen, -ENOMEM, "section pages: out of memory");
		goto out;
	}
	XXH3_64bits_reset(sum);
	k.base = j->zstd_level ? j->at : mig_align_up(j->at, PAGE);
	if (j->zstd_level && (rc = zstd_setup(&k, j->zstd_level, err, errlen)) < 0)
		goto out;
	rc = scan_pages(&k, map, sum, stored, err, errlen);
	if (rc == 0)
		rc = sink_end(&k, err, errlen);
	if (rc < 0)
		goto out;
	memset(pages, 0, sizeof(*pages));
	pages->type = MIG_SEC_PAGES;
	pages->version = 1;
	pages->flags = MIG_SEC_F_REQUIRED | (j->zstd_level ? MIG_SEC_F_ZSTD : 0);
	pages->offset = k.base;
	pages->length = j->zstd_level ? k.zlen : j->mem_size;
	pages->checksum = j->zstd_level ? XXH3_64bits_digest(k.zsum) : XXH3_64bits_digest(sum);
out:
	ZSTD_freeCCtx(k.cctx);
	free(k.zbuf);
	XXH3_freeState(k.zsum);
	XXH3_freeState(sum);
	return rc;
}

/* ---- reading raw pages ----------------------------------------------------------------------- */

int mig_pages_read_raw(const struct mig_pages_src *p, uint8_t *dst, char *err, size_t errlen)
{
	uint8_t *scratch = dst ? NULL : malloc(IO_CHUNK);
	XXH3_state_t *sum = XXH3_createState();
	int rc = 0;
	if (!sum || (!dst && !scratch)) {
		rc = mig_fail(err, errlen, -ENOMEM, "section pages: out of memory");
		goto out;
	}
	XXH3_64bits_reset(sum);
	for (uint64_t i = bit_scan(p->map, 0, p->npages, 1); i < p->npages;) {
		uint64_t e = bit_scan(p->map, i, p->npages, 0);
		while (i < e) {
			uint64_t c = e - i < IO_CHUNK / PAGE ? e - i : IO_CHUNK / PAGE;
			uint8_t *buf = dst ? dst + i * PAGE : scratch;
			rc = read_at(p->fd, buf, (size_t)(c * PAGE), p->sec->offset + i * PAGE, err,
				     errlen);
			if (rc < 0)
				goto out;
			for (uint64_t k = 0; k < c; k++)
				hash_page(sum, i + k, buf + k * PAGE);
			i += c;
		}
		i = bit_scan(p->map, e, p->npages, 1);
	}
	if (XXH3_64bits_digest(sum) != p->sec->checksum)
		rc = mig_fail(err, errlen, -EBADMSG,
			      "section pages: checksum mismatch (file corrupt?)");
out:
	XXH3_freeState(sum);
	free(scratch);
	return rc;
}

/* Pages [i, e) of the body, none of them stored, read as zero. */
static int unstored_zero(const struct mig_pages_src *p, uint64_t i, uint64_t e, uint8_t *buf,
			 char *err, size_t errlen)
{
	for (i = bit_scan(p->map, i, e, 0); i < e; i = bit_scan(p->map, i, e, 0)) {
		uint64_t re = bit_scan(p->map, i, e, 1);
		uint64_t c = re - i < IO_CHUNK / PAGE ? re - i : IO_CHUNK / PAGE;
		int rc =
		    read_at(p->fd, buf, (size_t)(c * PAGE), p->sec->offset + i * PAGE, err, errlen);
		if (rc < 0)
			return rc;
		for (uint64_t k = 0; k < c; k++)
			if (!page_is_zero(buf + k * PAGE))
				return mig_fail(err, errlen, -EBADMSG,
						"section pages: page %llu is not in the pagemap "
						"but holds data (file corrupt?)",
						(unsigned long long)(i + k));
		i += c;
	}
	return 0;
}

/* A mapping shows every page of the body, not just the stored ones the checksum covers: the
 * others must read as zero. Holes do by construction, so only data extents are read. */
int mig_pages_check_unstored(const struct mig_pages_src *p, char *err, size_t errlen)
{
	const struct mig_section *s = p->sec;
	uint64_t pos = s->offset, end = s->offset + s->length, d = 0, h = 0;
	uint8_t *buf = malloc(IO_CHUNK);
	int rc = 0;
	if (!buf)
		return mig_fail(err, errlen, -ENOMEM, "section pages: out of memory");
	while (pos < end && (rc = data_extent(p->fd, pos, end, &d, &h, err, errlen)) > 0) {
		uint64_t i = (d - s->offset) / PAGE;
		uint64_t e = (mig_align_up(h, PAGE) - s->offset) / PAGE;
		if (e > p->npages)
			e = p->npages;
		if ((rc = unstored_zero(p, i, e, buf, err, errlen)) < 0)
			break;
		pos = s->offset + e * PAGE;
	}
	free(buf);
	return rc < 0 ? rc : 0;
}

/* ---- reading zstd pages ---------------------------------------------------------------------- */

struct zreader {
	const struct mig_pages_src *p;
	ZSTD_DCtx *d;
	uint8_t *buf;
	ZSTD_inBuffer in;
	uint64_t in_off; /* body bytes read into buf so far */
	size_t zr;	 /* the last ZSTD_decompressStream: 0 once the frame has ended */
};

/* The frame as stored, checked against the section's checksum before it is decoded. */
static int zstd_frame_ok(struct zreader *z, char *err, size_t errlen)
{
	const struct mig_section *s = z->p->sec;
	XXH3_state_t *sum = XXH3_createState();
	int rc = 0;
	if (!sum)
		return mig_fail(err, errlen, -ENOMEM, "section pages: out of memory");
	XXH3_64bits_reset(sum);
	for (uint64_t off = 0; off < s->length;) {
		size_t c = s->length - off < IO_CHUNK ? (size_t)(s->length - off) : IO_CHUNK;
		if ((rc = read_at(z->p->fd, z->buf, c, s->offset + off, err, errlen)) < 0)
			break;
		XXH3_64bits_update(sum, z->buf, c);
		off += c;
	}
	if (rc == 0 && XXH3_64bits_digest(sum) != s->checksum)
		rc = mig_fail(err, errlen, -EBADMSG,
			      "section pages: checksum mismatch (file corrupt?)");
	XXH3_freeState(sum);
	return rc;
}

enum { Z_FULL, Z_ENDED, Z_CUT };

/* Decodes into out until it is full (Z_FULL), the frame ends (Z_ENDED) or the body does before
 * the frame (Z_CUT); or -errno. */
static int zread(struct zreader *z, ZSTD_outBuffer *out, char *err, size_t errlen)
{
	const struct mig_section *s = z->p->sec;
	while (out->pos < out->size) {
		if (z->zr == 0)
			return Z_ENDED;
		if (z->in.pos == z->in.size) {
			if (z->in_off == s->length)
				return Z_CUT;
			size_t c = s->length - z->in_off < IO_CHUNK
				       ? (size_t)(s->length - z->in_off)
				       : IO_CHUNK;
			int rc = read_at(z->p->fd, z->buf, c, s->offset + z->in_off, err, errlen);
			if (rc < 0)
				return rc;
			z->in_off += c;
			z->in = (ZSTD_inBuffer){z->buf, c, 0};
		}
		z->zr = ZSTD_decompressStream(z->d, out, &z->in);
		if (ZSTD_isError(z->zr))
			return mig_fail(err, errlen, -EINVAL, "section pages: zstd: %s",
					ZSTD_getErrorName(z->zr));
	}
	return Z_FULL;
}

static int zstd_short(const struct zreader *z, int how, uint64_t pages, char *err, size_t errlen)
{
	return mig_fail(err, errlen, -EINVAL,
			"section pages: zstd frame %s after %llu of %llu pages",
			how == Z_ENDED ? "ends" : "truncated", (unsigned long long)pages,
			(unsigned long long)z->p->stored);
}

/* Output goes straight to each run of stored pages; a frame that ends early or runs long is
 * caught at the run boundaries and by a final 1-byte probe. */
static int zstd_decode(struct zreader *z, uint8_t *dst, char *err, size_t errlen)
{
	const struct mig_pages_src *p = z->p;
	uint64_t done = 0;
	int r;
	for (uint64_t i = bit_scan(p->map, 0, p->npages, 1); i < p->npages;) {
		uint64_t e = bit_scan(p->map, i, p->npages, 0);
		ZSTD_outBuffer out = {dst + i * PAGE, (size_t)((e - i) * PAGE), 0};
		if ((r = zread(z, &out, err, errlen)) != Z_FULL)
			return r < 0 ? r : zstd_short(z, r, done + out.pos / PAGE, err, errlen);
		done += e - i;
		i = bit_scan(p->map, e, p->npages, 1);
	}
	uint8_t probe;
	ZSTD_outBuffer out = {&probe, 1, 0};
	if ((r = zread(z, &out, err, errlen)) < 0)
		return r;
	if (r == Z_CUT)
		return zstd_short(z, r, done, err, errlen);
	if (r == Z_FULL)
		return mig_fail(err, errlen, -EINVAL,
				"section pages: zstd frame holds more than the %llu pages in the "
				"pagemap",
				(unsigned long long)p->stored);
	if (z->in.pos != z->in.size || z->in_off != p->sec->length)
		return mig_fail(err, errlen, -EINVAL, "section pages: data after the zstd frame");
	return 0;
}

int mig_pages_read_zstd(const struct mig_pages_src *p, uint8_t *dst, char *err, size_t errlen)
{
	struct zreader z = {.p = p, .d = ZSTD_createDCtx(), .buf = malloc(IO_CHUNK), .zr = 1};
	int rc;
	if (!z.d || !z.buf)
		rc = mig_fail(err, errlen, -ENOMEM, "section pages: out of memory");
	else
		rc = zstd_frame_ok(&z, err, errlen);
	if (rc == 0) {
		size_t r = ZSTD_DCtx_setParameter(z.d, ZSTD_d_windowLogMax, ZSTD_WINDOW_LOG_MAX);
		rc = ZSTD_isError(r) ? mig_fail(err, errlen, -EIO, "section pages: zstd: %s",
						ZSTD_getErrorName(r))
				     : zstd_decode(&z, dst, err, errlen);
	}
	ZSTD_freeDCtx(z.d);
	free(z.buf);
	return rc;
}
