/* The snapshot reader (migrate.h). Everything read from a file is hostile until proven
 * otherwise: the header checksum is verified before any field but the version and the header's
 * own size is used, the table checksum before any entry is used, and every entry is checked
 * against the file and the caps before a body is read; a body's checksum is verified before the
 * body is handed out or decoded. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mig_internal.h"

struct mig_snap_reader {
	int fd;
	uint64_t file_size;
	struct mig_snap_header h;
	struct mig_hdr_layout l;
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

/* ---- header ---------------------------------------------------------------------------------- */

static int shorter_than_header(uint64_t fsz, uint32_t hs, char *err, size_t errlen)
{
	return mig_fail(err, errlen, -EINVAL,
			"header: file is %llu bytes, shorter than the %u-byte header (truncated?)",
			(unsigned long long)fsz, hs);
}

/* The major version, then the header's size, are all a reader may use before the checksum. */
static int check_version(const struct mig_snap_header *h, const struct mig_hdr_layout *l,
			 uint64_t fsz, char *err, size_t errlen)
{
	/* Nothing past the version is known to mean anything in another major. */
	if (h->major != MIG_SNAP_MAJOR)
		return mig_fail(
		    err, errlen, -EPROTONOSUPPORT,
		    h->major > MIG_SNAP_MAJOR
			? "header: format %u.%u is newer than this reader (%u.x)"
			: "header: format %u.%u is older than any this reader knows (%u.x)",
		    h->major, h->minor, MIG_SNAP_MAJOR);
	uint32_t hs = l->header_size;
	if (hs < MIG_SNAP_HEADER_SIZE || hs > MIG_HDR_MAX || hs % 8)
		return mig_fail(err, errlen, -EINVAL,
				"header: header_size %u is not a multiple of 8 in %u..%u", hs,
				(unsigned)MIG_SNAP_HEADER_SIZE, MIG_HDR_MAX);
	if (hs > fsz)
		return shorter_than_header(fsz, hs, err, errlen);
	return 0;
}

/* The header read and its checksum verified; r->h and r->l decoded from it. */
static int read_header(struct mig_snap_reader *r, char *err, size_t errlen)
{
	uint8_t buf[MIG_HDR_MAX];
	uint64_t fsz = r->file_size;
	if (fsz < MIG_SNAP_HEADER_SIZE)
		return shorter_than_header(fsz, MIG_SNAP_HEADER_SIZE, err, errlen);
	ssize_t got = mig_pread_all(r->fd, buf, MIG_SNAP_HEADER_SIZE, 0);
	if (got < 0)
		return mig_fail(err, errlen, (int)got, "header: read: %s", strerror((int)-got));
	if (got != MIG_SNAP_HEADER_SIZE)
		return mig_fail(err, errlen, -EIO, "header: short read (file changed?)");
	if (!mig_hdr_magic_ok(buf))
		return mig_fail(err, errlen, -EINVAL, "header: bad magic (not a snapshot file)");
	mig_hdr_decode(buf, &r->h, &r->l);
	int rc = check_version(&r->h, &r->l, fsz, err, errlen);
	if (rc < 0)
		return rc;
	uint32_t hs = r->l.header_size, more = hs - MIG_SNAP_HEADER_SIZE;
	if (more && mig_pread_all(r->fd, buf + MIG_SNAP_HEADER_SIZE, more, MIG_SNAP_HEADER_SIZE) !=
			(ssize_t)more)
		return mig_fail(err, errlen, -EIO, "header: short read (file changed?)");
	if (mig_hdr_sum(buf, hs) != r->l.header_sum)
		return mig_fail(err, errlen, -EBADMSG, "header: checksum mismatch (file corrupt?)");
	return 0;
}

static int check_header(const struct mig_snap_reader *r, char *err, size_t errlen)
{
	const struct mig_snap_header *h = &r->h;
	const struct mig_hdr_layout *l = &r->l;
	if (l->file_size != r->file_size)
		return mig_fail(err, errlen, -EINVAL,
				"header: file is %llu bytes, header says %llu (%s)",
				(unsigned long long)r->file_size, (unsigned long long)l->file_size,
				r->file_size < l->file_size ? "truncated?" : "trailing data?");
	int rc = mig_mem_size_check(h->mem_size, err, errlen);
	if (rc < 0)
		return rc;
	if (h->nsections > MIG_SNAP_MAX_SECTIONS)
		return mig_fail(err, errlen, -EINVAL, "header: %u sections, over the cap of %d",
				h->nsections, MIG_SNAP_MAX_SECTIONS);
	uint32_t esz = l->entry_size;
	if (esz < MIG_ENTRY_SIZE || esz > MIG_ENTRY_MAX || esz % 8)
		return mig_fail(err, errlen, -EINVAL,
				"section table: entry size %u is not a multiple of 8 in %u..%u",
				esz, MIG_ENTRY_SIZE, MIG_ENTRY_MAX);
	uint64_t toff = l->table_off, tlen = (uint64_t)h->nsections * esz;
	if (toff < l->header_size || toff > r->file_size || tlen > r->file_size - toff)
		return mig_fail(
		    err, errlen, -EINVAL,
		    "section table: %llu bytes at %llu, outside the file (%llu bytes) or "
		    "inside the header",
		    (unsigned long long)tlen, (unsigned long long)toff,
		    (unsigned long long)r->file_size);
	return 0;
}

/* ---- section table --------------------------------------------------------------------------- */

static int read_table(struct mig_snap_reader *r, char *err, size_t errlen)
{
	uint32_t n = r->h.nsections, esz = r->l.entry_size;
	size_t tlen = (size_t)n * esz;
	uint8_t *t = malloc(tlen ? tlen : 1);
	int rc = 0;
	if (!t)
		return mig_fail(err, errlen, -ENOMEM, "section table: out of memory");
	if (mig_pread_all(r->fd, t, tlen, r->l.table_off) != (ssize_t)tlen)
		rc = mig_fail(err, errlen, -EIO, "section table: short read (file changed?)");
	else if (mig_checksum(t, tlen) != r->l.table_sum)
		rc = mig_fail(err, errlen, -EBADMSG,
			      "section table: checksum mismatch (file corrupt?)");
	for (uint32_t i = 0; rc == 0 && i < n; i++)
		mig_entry_decode(t + (size_t)i * esz, &r->sec[i]);
	if (rc == 0)
		r->n = n;
	free(t);
	return rc;
}

/* Entry i's type: not reserved, known unless optional, a known one only once. */
static int check_entry_type(const struct mig_snap_reader *r, uint32_t i, const char *nm, char *err,
			    size_t errlen)
{
	const struct mig_section *s = &r->sec[i];
	if (s->type == 0)
		return mig_fail(err, errlen, -EINVAL,
				"section table: section %u has type 0 (reserved)", i);
	if (!mig_sec_known(s->type) && (s->flags & MIG_SEC_F_REQUIRED))
		return mig_fail(err, errlen, -EPROTONOSUPPORT,
				"section table: section %u (%s) is required but unknown to this "
				"reader",
				i, nm);
	for (uint32_t j = 0; mig_sec_known(s->type) && j < i; j++)
		if (r->sec[j].type == s->type)
			return mig_fail(err, errlen, -EINVAL,
					"section table: sections %u and %u are both %s", j, i, nm);
	return 0;
}

/* Entry i's body: inside the file, after the table, within the caps, clear of the others. */
static int check_entry_body(const struct mig_snap_reader *r, uint32_t i, const char *nm, char *err,
			    size_t errlen)
{
	const struct mig_section *s = &r->sec[i];
	uint64_t meta_end = r->l.table_off + (uint64_t)r->n * r->l.entry_size;
	int blob = mig_sec_known(s->type) && s->type != MIG_SEC_PAGES;
	if (s->length > r->file_size || s->offset > r->file_size - s->length)
		return mig_fail(err, errlen, -EINVAL,
				"section table: section %u (%s) ends at %llu, past the end of the "
				"file (%llu bytes)",
				i, nm, (unsigned long long)s->offset + s->length,
				(unsigned long long)r->file_size);
	if (s->length && s->offset < meta_end)
		return mig_fail(err, errlen, -EINVAL,
				"section table: section %u (%s) at %llu overlaps the header or "
				"table (up to %llu)",
				i, nm, (unsigned long long)s->offset, (unsigned long long)meta_end);
	if (blob && s->length > MIG_SNAP_MAX_BLOB)
		return mig_fail(err, errlen, -EFBIG,
				"section table: section %u (%s) is %llu bytes, over the %llu MiB "
				"cap",
				i, nm, (unsigned long long)s->length, MIG_SNAP_MAX_BLOB >> 20);
	if (blob && (s->flags & MIG_SEC_F_ZSTD))
		return mig_fail(err, errlen, -EINVAL,
				"section table: section %u (%s) is marked compressed; only pages "
				"can be",
				i, nm);
	/* n <= 64: quadratic is cheaper than sorting a copy. */
	for (uint32_t j = 0; j < i; j++) {
		const struct mig_section *o = &r->sec[j];
		char ob[24];
		if (s->length && o->length && s->offset < o->offset + o->length &&
		    o->offset < s->offset + s->length)
			return mig_fail(err, errlen, -EINVAL,
					"section table: sections %u (%s) and %u (%s) overlap", j,
					mig_sec_tname(o->type, ob), i, nm);
	}
	return 0;
}

static int check_version_1(const struct mig_section *s, char *err, size_t errlen)
{
	if (s->version == 1)
		return 0;
	return mig_fail(err, errlen, -EPROTONOSUPPORT,
			"section %s: version %u unknown (this reader knows 1)",
			mig_sec_name(s->type), s->version);
}

/* PAGES and PAGEMAP come together, in versions this reader knows, and fit mem_size. */
static int check_ram_entries(const struct mig_snap_reader *r, char *err, size_t errlen)
{
	int p = find_section(r, MIG_SEC_PAGES), m = find_section(r, MIG_SEC_PAGEMAP), rc;
	uint64_t npages = r->h.mem_size / MIG_PAGE, mem = r->h.mem_size;
	if (p < 0 || m < 0)
		return p == m
			   ? 0
			   : mig_fail(err, errlen, -EINVAL, "section %s: no %s section beside it",
				      p < 0 ? "pagemap" : "pages", p < 0 ? "pages" : "pagemap");
	const struct mig_section *ps = &r->sec[p], *ms = &r->sec[m];
	if ((rc = check_version_1(ms, err, errlen)) < 0)
		return rc;
	if (ms->length != (npages + 7) / 8)
		return mig_fail(err, errlen, -EINVAL,
				"section pagemap: %llu bytes, %llu expected for mem_size %llu",
				(unsigned long long)ms->length,
				(unsigned long long)(npages + 7) / 8, (unsigned long long)mem);
	if ((rc = check_version_1(ps, err, errlen)) < 0 || (ps->flags & MIG_SEC_F_ZSTD))
		return rc;
	if (ps->offset % MIG_PAGE)
		return mig_fail(err, errlen, -EINVAL,
				"section pages: offset %llu is not 4096-aligned",
				(unsigned long long)ps->offset);
	if (ps->length != mem)
		return mig_fail(err, errlen, -EINVAL, "section pages: %llu bytes, mem_size is %llu",
				(unsigned long long)ps->length, (unsigned long long)mem);
	return 0;
}

static int check_table(struct mig_snap_reader *r, char *err, size_t errlen)
{
	int rc = read_table(r, err, errlen);
	for (uint32_t i = 0; rc == 0 && i < r->n; i++) {
		char tb[24];
		const char *nm = mig_sec_tname(r->sec[i].type, tb);
		rc = check_entry_type(r, i, nm, err, errlen);
		if (rc == 0)
			rc = check_entry_body(r, i, nm, err, errlen);
	}
	return rc < 0 ? rc : check_ram_entries(r, err, errlen);
}

int mig_snap_open(struct mig_snap_reader **rp, int fd, char *err, size_t errlen)
{
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
	int rc = read_header(r, err, errlen);
	if (rc == 0)
		rc = check_header(r, err, errlen);
	if (rc == 0)
		rc = check_table(r, err, errlen);
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

/* ---- section bodies -------------------------------------------------------------------------- */

static int load_body(struct mig_snap_reader *r, int i, char *err, size_t errlen)
{
	const struct mig_section *s = &r->sec[i];
	char tb[24];
	const char *nm = mig_sec_tname(s->type, tb);
	if (r->body[i])
		return 0;
	if (s->length > MIG_SNAP_MAX_BLOB)
		return mig_fail(err, errlen, -EFBIG,
				"section %s: %llu bytes, over the %llu MiB cap", nm,
				(unsigned long long)s->length, MIG_SNAP_MAX_BLOB >> 20);
	uint8_t *b = malloc(s->length ? (size_t)s->length : 1);
	if (!b)
		return mig_fail(err, errlen, -ENOMEM, "section %s: out of memory", nm);
	ssize_t got = mig_pread_all(r->fd, b, (size_t)s->length, s->offset);
	int rc = 0;
	if (got < 0)
		rc = mig_fail(err, errlen, (int)got, "section %s: read: %s", nm,
			      strerror((int)-got));
	else if (got != (ssize_t)s->length)
		rc = mig_fail(err, errlen, -EIO, "section %s: short read (file changed?)", nm);
	else if (mig_checksum(b, (size_t)s->length) != s->checksum)
		rc = mig_fail(err, errlen, -EBADMSG,
			      "section %s: checksum mismatch (file corrupt?)", nm);
	if (rc < 0)
		free(b);
	else
		r->body[i] = b;
	return rc;
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
				mig_sec_tname(type, tb));
	int rc = load_body(r, i, err, errlen);
	if (rc < 0)
		return rc;
	if (version)
		*version = r->sec[i].version;
	*data = r->body[i];
	*len = r->sec[i].length;
	return 0;
}

/* ---- guest RAM ------------------------------------------------------------------------------- */

/* The PAGES entry and its verified PAGEMAP, for the page decoders. */
static int pages_src(struct mig_snap_reader *r, struct mig_pages_src *p, char *err, size_t errlen)
{
	int i = find_section(r, MIG_SEC_PAGES);
	if (i < 0)
		return mig_fail(err, errlen, -ENOENT, "section pages: not in the file");
	int m = find_section(r, MIG_SEC_PAGEMAP);
	int rc = load_body(r, m, err, errlen);
	if (rc < 0)
		return rc;
	*p = (struct mig_pages_src){
	    .fd = r->fd, .sec = &r->sec[i], .map = r->body[m], .npages = r->h.mem_size / MIG_PAGE};
	return mig_pagemap_check(p->map, r->sec[m].length, p->npages, &p->stored, err, errlen);
}

int mig_snap_read_pages(struct mig_snap_reader *r, uint8_t *dst, uint64_t mem_size, char *err,
			size_t errlen)
{
	struct mig_pages_src p;
	if (mem_size != r->h.mem_size)
		return mig_fail(err, errlen, -EINVAL,
				"section pages: buffer is %llu bytes, the snapshot's RAM is %llu",
				(unsigned long long)mem_size, (unsigned long long)r->h.mem_size);
	int rc = pages_src(r, &p, err, errlen);
	if (rc < 0)
		return rc;
	if (p.sec->flags & MIG_SEC_F_ZSTD)
		return mig_pages_read_zstd(&p, dst, err, errlen);
	return mig_pages_read_raw(&p, dst, err, errlen);
}

int mig_snap_pages_extent(struct mig_snap_reader *r, int verify, uint64_t *offset, uint64_t *len,
			  char *err, size_t errlen)
{
	struct mig_pages_src p;
	int rc = pages_src(r, &p, err, errlen);
	if (rc < 0)
		return rc;
	if (p.sec->flags & MIG_SEC_F_ZSTD)
		return mig_fail(err, errlen, -EOPNOTSUPP,
				"section pages: compressed (zstd), not mappable");
	if (verify) {
		rc = mig_pages_read_raw(&p, NULL, err, errlen);
		if (rc == 0)
			rc = mig_pages_check_unstored(&p, err, errlen);
		if (rc < 0)
			return rc;
	}
	*offset = p.sec->offset;
	*len = p.sec->length;
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
