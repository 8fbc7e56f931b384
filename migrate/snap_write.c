/* The snapshot writer (migrate.h): sections are appended as they come, then the table and the
 * header go in front. The writer reserves room for MIG_SNAP_MAX_SECTIONS table entries up
 * front, because it only learns the section count at the end and wants to append bodies as
 * they come. A write that fails leaves the writer unfinishable, so a half-written file never
 * gets a valid header. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mig_internal.h"

/* The first body starts after a table with room for every section the writer may add. */
#define BODY_START (MIG_SNAP_HEADER_SIZE + MIG_SNAP_MAX_SECTIONS * MIG_ENTRY_SIZE)
_Static_assert(BODY_START % 8 == 0, "bodies start aligned");

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

/* A regular file, emptied: old bytes would show through where RAM pages are left as holes. */
static int empty_regular_file(int fd, char *err, size_t errlen)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return mig_fail(err, errlen, -errno, "writer: fstat: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return mig_fail(err, errlen, -EINVAL, "writer: not a regular file");
	if (ftruncate(fd, 0) < 0)
		return mig_fail(err, errlen, -errno, "writer: ftruncate: %s", strerror(errno));
	return 0;
}

/* What the caller left zero: the creation time and a random snapshot id. */
static int fill_header(struct mig_snap_header *h, char *err, size_t errlen)
{
	static const uint8_t zero_id[16];
	h->major = MIG_SNAP_MAJOR;
	h->minor = MIG_SNAP_MINOR;
	if (!h->created_ns) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		h->created_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	}
	if (memcmp(h->snap_id, zero_id, 16) == 0 &&
	    getrandom(h->snap_id, sizeof(h->snap_id), 0) != (ssize_t)sizeof(h->snap_id)) {
		int e = errno ? errno : EIO;
		return mig_fail(err, errlen, -e, "writer: getrandom: %s", strerror(e));
	}
	return 0;
}

int mig_snap_writer_new(struct mig_snap_writer **wp, int fd, const struct mig_snap_header *h,
			char *err, size_t errlen)
{
	*wp = NULL;
	int rc = mig_mem_size_check(h->mem_size, err, errlen);
	if (rc == 0)
		rc = empty_regular_file(fd, err, errlen);
	if (rc < 0)
		return rc;
	struct mig_snap_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return mig_fail(err, errlen, -ENOMEM, "writer: out of memory");
	w->fd = fd;
	w->h = *h;
	if ((rc = fill_header(&w->h, err, errlen)) < 0) {
		free(w);
		return rc;
	}
	w->end = BODY_START;
	*wp = w;
	return 0;
}

/* The entry for a new section, after the checks every section gets. */
static struct mig_section *new_section(struct mig_snap_writer *w, uint32_t type, uint16_t version,
				       uint16_t flags, char *err, size_t errlen, int *rc)
{
	char tb[24];
	if (w->failed) {
		*rc = mig_fail(err, errlen, -EIO, "section %s: an earlier write failed",
			       mig_sec_tname(type, tb));
		return NULL;
	}
	if (type == 0) {
		*rc = mig_fail(err, errlen, -EINVAL, "section type 0: reserved");
		return NULL;
	}
	if (w->n == MIG_SNAP_MAX_SECTIONS) {
		*rc = mig_fail(err, errlen, -E2BIG, "section %s: more than %d sections",
			       mig_sec_tname(type, tb), MIG_SNAP_MAX_SECTIONS);
		return NULL;
	}
	for (uint32_t i = 0; mig_sec_known(type) && i < w->n; i++)
		if (w->sec[i].type == type) {
			*rc = mig_fail(err, errlen, -EEXIST, "section %s: added twice",
				       mig_sec_name(type));
			return NULL;
		}
	struct mig_section *s = &w->sec[w->n];
	memset(s, 0, sizeof(*s));
	s->type = type;
	s->version = version;
	s->flags = flags;
	return s;
}

/* The body of s (from new_section) goes at the end of the file, and s into the table. */
static int append_body(struct mig_snap_writer *w, struct mig_section *s, const void *data,
		       uint64_t len, char *err, size_t errlen)
{
	char tb[24];
	s->offset = w->end;
	s->length = len;
	s->checksum = mig_checksum(data, (size_t)len);
	int rc = mig_pwrite_all(w->fd, data, (size_t)len, s->offset);
	if (rc < 0) {
		w->failed = 1;
		return mig_fail(err, errlen, rc, "section %s: write: %s",
				mig_sec_tname(s->type, tb), strerror(-rc));
	}
	w->end = mig_align_up(s->offset + len, 8);
	w->n++;
	return 0;
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
				mig_sec_tname(type, tb));
	if (len > MIG_SNAP_MAX_BLOB)
		return mig_fail(
		    err, errlen, -EFBIG, "section %s: %llu bytes, over the %llu MiB cap",
		    mig_sec_tname(type, tb), (unsigned long long)len, MIG_SNAP_MAX_BLOB >> 20);
	struct mig_section *s = new_section(w, type, version, flags, err, errlen, &rc);
	return s ? append_body(w, s, data, len, err, errlen) : rc;
}

/* What mig_snap_add_pages checks before it writes anything: the writer stays usable. */
static int pages_check(struct mig_snap_writer *w, uint64_t mem_size, int zstd_level, char *err,
		       size_t errlen)
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
	if (!new_section(w, MIG_SEC_PAGES, 1, 0, err, errlen, &rc))
		return rc;
	return mig_pages_level_check(zstd_level, err, errlen);
}

int mig_snap_add_pages(struct mig_snap_writer *w, const uint8_t *mem, uint64_t mem_size, int mem_fd,
		       int zstd_level, uint64_t *stored, char *err, size_t errlen)
{
	int rc = pages_check(w, mem_size, zstd_level, err, errlen);
	if (rc < 0)
		return rc;
	size_t maplen = (size_t)((mem_size / MIG_PAGE + 7) / 8);
	uint8_t *map = calloc(1, maplen);
	if (!map)
		return mig_fail(err, errlen, -ENOMEM, "section pages: out of memory");
	const struct mig_pages_job job = {.fd = w->fd,
					  .at = w->end,
					  .mem = mem,
					  .mem_size = mem_size,
					  .mem_fd = mem_fd,
					  .zstd_level = zstd_level,
					  .stop = w->stop,
					  .stop_ctx = w->stop_ctx};
	uint64_t n = 0;
	struct mig_section *pages = &w->sec[w->n], *pm;
	rc = mig_pages_write(&job, map, pages, &n, err, errlen);
	if (rc < 0) {
		w->failed = 1;
		goto out;
	}
	w->n++;
	w->end = mig_align_up(pages->offset + pages->length, 8);
	pm = new_section(w, MIG_SEC_PAGEMAP, 1, MIG_SEC_F_REQUIRED, err, errlen, &rc);
	if (pm && (rc = append_body(w, pm, map, maplen, err, errlen)) == 0) {
		w->has_pages = 1;
		if (stored)
			*stored = n;
	}
out:
	free(map);
	return rc;
}

int mig_snap_writer_finish(struct mig_snap_writer *w, int do_fsync, char *err, size_t errlen)
{
	uint8_t table[MIG_SNAP_MAX_SECTIONS * MIG_ENTRY_SIZE];
	uint8_t hdr[MIG_SNAP_HEADER_SIZE];
	if (w->failed)
		return mig_fail(err, errlen, -EIO, "writer: an earlier write failed");
	memset(table, 0, sizeof(table));
	for (uint32_t i = 0; i < w->n; i++)
		mig_entry_encode(table + i * MIG_ENTRY_SIZE, &w->sec[i]);
	w->h.nsections = w->n;
	const struct mig_hdr_layout l = {.header_size = MIG_SNAP_HEADER_SIZE,
					 .entry_size = MIG_ENTRY_SIZE,
					 .file_size = w->end,
					 .table_off = MIG_SNAP_HEADER_SIZE,
					 .table_sum = mig_checksum(table, w->n * MIG_ENTRY_SIZE)};
	mig_hdr_encode(hdr, &w->h, &l);
	/* The last body may end in a hole (raw pages) that no write extended the file over. */
	int rc = ftruncate(w->fd, (off_t)w->end) < 0 ? -errno : 0;
	if (rc == 0)
		rc = mig_pwrite_all(w->fd, table, sizeof(table), MIG_SNAP_HEADER_SIZE);
	if (rc == 0)
		rc = mig_pwrite_all(w->fd, hdr, sizeof(hdr), 0);
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
