/* Private to migrate/: what its files share. Not part of the module's API (migrate.h).
 *
 * Calls go one way, never back (no file calls a file that calls it):
 *   container  snap_write.c, snap_read.c -> snap_pages.c -> snap_format.c -> common.c
 *              snap_commit.c -> common.c
 *   stream     handshake.c -> frame.c -> addr.c -> common.c;  handshake.c -> keys.c -> common.c
 *   control    control_proto.c -> addr.c */
#ifndef SBX_MIG_INTERNAL_H
#define SBX_MIG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "migrate.h"

/* ---- every file (common.c) ------------------------------------------------------------------- */

/* Fills err with one line (newlines in caller-supplied strings become spaces) and returns rc. */
__attribute__((format(printf, 4, 5))) int mig_fail(char *err, size_t errlen, int rc,
						   const char *fmt, ...);

/* Whole writes at an offset: 0 or -errno. Whole reads: bytes read (short only at end of file)
 * or -errno. */
int mig_pwrite_all(int fd, const void *buf, size_t len, uint64_t off);
ssize_t mig_pread_all(int fd, void *buf, size_t len, uint64_t off);

/* Little-endian fields, for the snapshot file and the stream's frames alike. */
static inline void mig_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void mig_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void mig_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t mig_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t mig_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t mig_get64(const uint8_t *p)
{
	return (uint64_t)mig_get32(p) | (uint64_t)mig_get32(p + 4) << 32;
}

/* ---- snapshot container: the file's layout (snap_format.c) ----------------------------------- */

#define MIG_PAGE MIG_PAGE_SIZE
#define MIG_ENTRY_SIZE 32u /* a 1.0 section table entry */
#define MIG_HDR_MAX 4096u  /* cap on header_size from a later minor */
#define MIG_ENTRY_MAX 256u /* cap on entry_size from a later minor */

/* The header's fields that place the rest of the file, beside the content in mig_snap_header. */
struct mig_hdr_layout {
	uint32_t header_size;
	uint32_t entry_size;
	uint64_t file_size;
	uint64_t table_off;
	uint64_t table_sum;
	uint64_t header_sum;
};

/* The 1.0 header, field by field, its checksum included. */
void mig_hdr_encode(uint8_t b[MIG_SNAP_HEADER_SIZE], const struct mig_snap_header *h,
		    const struct mig_hdr_layout *l);
/* Every field of b (MIG_SNAP_HEADER_SIZE bytes at least), checked or not: the caller checks. */
void mig_hdr_decode(const uint8_t *b, struct mig_snap_header *h, struct mig_hdr_layout *l);
int mig_hdr_magic_ok(const uint8_t *b);
/* The checksum of a header of hs bytes; zeroes its checksum field first, as the writer had it. */
uint64_t mig_hdr_sum(uint8_t *b, uint32_t hs);
void mig_entry_encode(uint8_t e[MIG_ENTRY_SIZE], const struct mig_section *s);
void mig_entry_decode(const uint8_t *e, struct mig_section *s);
/* The checksum of a section body or of the section table. */
uint64_t mig_checksum(const void *p, size_t len);

int mig_sec_known(uint32_t type);
/* "policy", or "type 99" for a type this reader does not know. */
const char *mig_sec_tname(uint32_t type, char buf[24]);
/* 0 if mem_size is one a snapshot may have, else -EINVAL with the header's message. */
int mig_mem_size_check(uint64_t mem_size, char *err, size_t errlen);
uint64_t mig_align_up(uint64_t v, uint64_t a);

/* ---- snapshot container: guest RAM (snap_pages.c) -------------------------------------------- */

/* What the writer hands the page encoder. */
struct mig_pages_job {
	int fd;	     /* the snapshot file */
	uint64_t at; /* where the body may start (the end of the last one) */
	const uint8_t *mem;
	uint64_t mem_size;
	int mem_fd;	/* the memfd behind mem, or -1 */
	int zstd_level; /* 0: raw with holes */
	int (*stop)(void *ctx);
	void *stop_ctx;
};

/* 0 if level is 0 (raw) or a zstd level, else -EINVAL: checked before anything is written. */
int mig_pages_level_check(int level, char *err, size_t errlen);
/* Writes the PAGES body: fills pages (type, version, flags, offset, length, checksum), map (the
 * bitmap of stored pages, (npages + 7) / 8 zeroed bytes) and *stored. */
int mig_pages_write(const struct mig_pages_job *j, uint8_t *map, struct mig_section *pages,
		    uint64_t *stored, char *err, size_t errlen);

/* What the reader hands the page decoders: a checked PAGES entry and its checked PAGEMAP. */
struct mig_pages_src {
	int fd;
	const struct mig_section *sec;
	const uint8_t *map;
	uint64_t npages;
	uint64_t stored;
};

/* A PAGEMAP body of len bytes for npages pages: no bit past npages. *stored gets the bits set. */
int mig_pagemap_check(const uint8_t *map, uint64_t len, uint64_t npages, uint64_t *stored,
		      char *err, size_t errlen);
/* A raw body's stored pages into dst (a full RAM image) or, with dst NULL, only checksummed. */
int mig_pages_read_raw(const struct mig_pages_src *p, uint8_t *dst, char *err, size_t errlen);
/* A raw body's pages outside the pagemap read as zero (what a mapping of it shows). */
int mig_pages_check_unstored(const struct mig_pages_src *p, char *err, size_t errlen);
/* A zstd body into dst (a full RAM image, zero), the frame checksummed before it is decoded. */
int mig_pages_read_zstd(const struct mig_pages_src *p, uint8_t *dst, char *err, size_t errlen);

/* ---- snapshot container: temporary files (snap_commit.c) ------------------------------------- */

/* mig_snap_tmp_open's fallback for file systems without O_TMPFILE: always a named file. */
int mig_snap_tmp_open_named(const char *path, char *tmp, size_t tmplen, char *err, size_t errlen);

/* ---- stream: sockets (addr.c) ---------------------------------------------------------------- */

#define MIG_STREAM_PFX "migration stream: "

/* CLOCK_MONOTONIC ms timeout_ms from now, or -1 for none (timeout_ms < 0). */
int64_t mig_deadline(int timeout_ms);
/* Waits for `events` on fd until the deadline (-1: none). 0 ready, -ETIMEDOUT, or -errno. */
int mig_wait_fd(int fd, short events, int64_t deadline);
/* A TCP socket sends small messages at once (no Nagle); other sockets are left alone. */
void mig_socket_tune(int fd);

/* ---- stream: keys (keys.c) ------------------------------------------------------------------- */

/* libsodium initialised, once per process: 0, or -ENOSYS with a message. */
int mig_sodium_ready(char *err, size_t errlen);

/* ---- stream: frames (frame.c), for the handshake --------------------------------------------- */

/* A stream over a connected fd (taken over, closed on failure), in its handshake: every wait
 * ends by timeout_ms from now, however the peer spaces its bytes, until mig_stream_keys. */
int mig_stream_new(struct mig_stream **s, int fd, int timeout_ms, char *err, size_t errlen);
/* The handshake's clear bytes. A read that the peer cuts short returns -EPIPE with no message
 * and *got the bytes that came. */
int mig_stream_write_raw(struct mig_stream *s, const uint8_t *p, size_t n, char *err,
			 size_t errlen);
int mig_stream_read_raw(struct mig_stream *s, uint8_t *p, size_t n, size_t *got, char *err,
			size_t errlen);
/* The handshake is done: frames from now on are sealed with these keys (AES-256-GCM if aes,
 * else XChaCha20-Poly1305), and each wait is bounded by the timeout alone. */
void mig_stream_keys(struct mig_stream *s, int aes, const uint8_t tx[32], const uint8_t rx[32]);

#endif
