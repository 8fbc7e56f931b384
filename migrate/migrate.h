/* migrate/: the snapshot file format (write, validate, read) and the authenticated stream live
 * migration runs over. Nothing here knows the monitor's internals: the monitor hands in bytes
 * (one blob per piece of state) and guest RAM, and gets them back after every check.
 *
 * This is the module's API; each part has its files, named for what they hold:
 *   snapshot container  snap_write.c (writer), snap_read.c (reader and its checks),
 *                       snap_pages.c (guest RAM: raw with holes, zstd), snap_format.c (header,
 *                       section table, checksums), snap_commit.c (temporary file and commit);
 *   migration stream    addr.c (tcp:/unix: addresses, listen, accept, connect), keys.c (the key
 *                       file), handshake.c (hellos, key derivation and confirmation), frame.c
 *                       (sealed frames, timeouts);
 *   control socket      control_proto.h (its wire protocol, with control_proto.c).
 * mig_internal.h holds what the files share privately; common.c the one-line error and whole
 * reads and writes.
 * Both parts treat their input as hostile: every length and offset is checked against caps and
 * the real file or message size before use, and failures are one line naming what was wrong. */
#ifndef SBX_MIGRATE_H
#define SBX_MIGRATE_H

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------------------------
 * Snapshot file. Little-endian throughout. Layout:
 *   [header, MIG_SNAP_HEADER_SIZE bytes][section table][section bodies...]
 * A PAGES section's body starts page-aligned and is a full image of guest RAM (length =
 * mem_size) whose all-zero pages are holes, so a restore can mmap it MAP_PRIVATE. Its
 * checksum covers the non-zero pages only (in address order: page index, then the 4096
 * bytes), and a companion section (MIG_SEC_PAGEMAP, written by the writer itself) holds the
 * bitmap of stored pages. With compression the body is instead one zstd frame of the stored
 * pages in address order (not mappable). */
#define MIG_SNAP_MAGIC "SBXSNAP\0"
#define MIG_SNAP_MAJOR 1
#define MIG_SNAP_MINOR 0
#define MIG_SNAP_HEADER_SIZE 256
#define MIG_PAGE_SIZE 4096ull
#define MIG_SNAP_MAX_SECTIONS 64
#define MIG_SNAP_MAX_BLOB (64ull << 20) /* cap on any non-PAGES section */
#define MIG_SNAP_MAX_MEM (64ull << 30)	/* cap on mem_size */

/* Section types. Numbers never change meaning. */
enum mig_sec_type {
	MIG_SEC_VCPU = 1,    /* vCPU state (monitor-defined blob) */
	MIG_SEC_MONITOR = 2, /* handle table, cwd, counters */
	MIG_SEC_POLICY = 3,  /* the policy the sandbox ran under (policy JSON text) */
	MIG_SEC_CLOCK = 4,   /* guest clock state */
	MIG_SEC_IMAGE = 5,   /* what the loader found in the ELF (entry, brk, segments) */
	MIG_SEC_PAGEMAP = 6, /* bitmap of stored RAM pages (written with PAGES) */
	MIG_SEC_PAGES = 7,   /* guest RAM */
	MIG_SEC_THREADS = 8, /* the vCPUs of a program's other threads (monitor-defined blob) */
	MIG_SEC_OBJECTS = 9, /* pipes, eventfds, epoll instances (monitor-defined blob) */
};
#define MIG_SEC_F_REQUIRED 0x1 /* a reader that does not know the type rejects the file */
#define MIG_SEC_F_ZSTD 0x2     /* PAGES only: body is a zstd frame */
/* A one-line name for a section type ("vcpu", "pages", ...), for messages. */
const char *mig_sec_name(uint32_t type);

struct mig_snap_header {
	uint16_t major, minor;
	uint32_t abi_version;  /* guest hypercall ABI of the kernel inside */
	uint64_t mem_size;     /* guest RAM bytes, a multiple of 2 MiB */
	uint64_t tsc_khz;      /* TSC frequency of the host that wrote it */
	uint8_t cpuid_sig[32]; /* vendor, family/model/stepping and feature words (monitor-made) */
	uint8_t elf_hash[16];  /* XXH3-128 of the guest ELF file */
	uint8_t snap_id[16];   /* random */
	uint8_t parent_id[16]; /* the snapshot this one was restored from, or zeros */
	uint64_t created_ns;   /* CLOCK_REALTIME */
	uint32_t nsections;
};

struct mig_section {
	uint32_t type;
	uint16_t version;
	uint16_t flags;
	uint64_t offset, length;
	uint64_t checksum; /* XXH3-64 */
};

/* ---- writing a snapshot (snap_write.c) ------------------------------------------------------- */

/* Writer: sections are appended in order; finish writes the table and the header and fsyncs.
 * The fd is a regular file opened for writing (see mig_snap_tmp_open / mig_snap_commit). */
struct mig_snap_writer;
int mig_snap_writer_new(struct mig_snap_writer **w, int fd, const struct mig_snap_header *h,
			char *err, size_t errlen);
int mig_snap_add(struct mig_snap_writer *w, uint32_t type, uint16_t version, uint16_t flags,
		 const void *data, uint64_t len, char *err, size_t errlen);
/* Guest RAM: mem (mem_size bytes). mem_fd, if >= 0, is the memfd behind it: its holes
 * (SEEK_DATA/SEEK_HOLE) are skipped without reading them. zstd_level 0 stores pages raw.
 * Adds PAGEMAP and PAGES. *stored gets the number of pages stored. */
int mig_snap_add_pages(struct mig_snap_writer *w, const uint8_t *mem, uint64_t mem_size, int mem_fd,
		       int zstd_level, uint64_t *stored, char *err, size_t errlen);
int mig_snap_writer_finish(struct mig_snap_writer *w, int do_fsync, char *err, size_t errlen);
/* stop(ctx) is asked after every MiB or so of RAM written: nonzero abandons the write with
 * -ECANCELED (e.g. the client that wanted the file has gone). */
void mig_snap_writer_watch(struct mig_snap_writer *w, int (*stop)(void *ctx), void *ctx);
void mig_snap_writer_free(struct mig_snap_writer *w);

/* ---- putting it in place (snap_commit.c) ----------------------------------------------------- */

/* A temporary file for `path`, in its directory (O_CLOEXEC, mode 0600). Where the file system
 * has O_TMPFILE the file has no name until the commit (tmp is set to ""): a process killed
 * before then leaves nothing behind, whatever it wrote. Elsewhere it is named in tmp,
 * "PATH.tmp.XXXXXX". commit fsyncs it, puts it at `path` atomically (linked in, or over an
 * older file) and fsyncs the directory; abort closes it and removes a named one. tmp must hold
 * PATH_MAX bytes. */
int mig_snap_tmp_open(const char *path, char *tmp, size_t tmplen, char *err, size_t errlen);
int mig_snap_commit(int fd, const char *tmp, const char *path, char *err, size_t errlen);
void mig_snap_abort(int fd, const char *tmp);

/* ---- reading a snapshot (snap_read.c) -------------------------------------------------------- */

/* Reader: opens and validates header and section table (every offset and length within the
 * file and the caps, no overlaps, known required types), but no section bodies yet. */
struct mig_snap_reader;
int mig_snap_open(struct mig_snap_reader **r, int fd, char *err, size_t errlen);
const struct mig_snap_header *mig_snap_header_of(const struct mig_snap_reader *r);
/* A non-PAGES section's body, checksum verified, in a buffer the reader owns (valid until
 * free). -ENOENT if the file has no such section. */
int mig_snap_section(struct mig_snap_reader *r, uint32_t type, uint16_t *version, const void **data,
		     uint64_t *len, char *err, size_t errlen);
/* Guest RAM into dst (mem_size bytes, already zero): raw or zstd, checksum verified. */
int mig_snap_read_pages(struct mig_snap_reader *r, uint8_t *dst, uint64_t mem_size, char *err,
			size_t errlen);
/* The raw PAGES body for mapping: file offset (page-aligned) and length; -EOPNOTSUPP if the
 * pages are compressed (read them with mig_snap_read_pages). verify=1 checks the checksum first
 * (reads every stored page). */
int mig_snap_pages_extent(struct mig_snap_reader *r, int verify, uint64_t *offset, uint64_t *len,
			  char *err, size_t errlen);
void mig_snap_reader_free(struct mig_snap_reader *r);

/* ---------------------------------------------------------------------------------------------
 * Migration stream: "tcp:HOST:PORT" or "unix:PATH". Every message after the handshake is
 * authenticated and encrypted with keys derived from a pre-shared key and fresh nonces of both
 * sides, in order (a replayed, reordered, truncated or altered message is rejected before its
 * bytes are returned). */
#define MIG_KEY_BYTES 32
#define MIG_MSG_MAX (8u << 20) /* cap on one message's plaintext */

/* ---- addresses and sockets (addr.c) ---------------------------------------------------------- */

struct mig_addr {
	int family; /* AF_INET, AF_INET6 (literals), AF_UNSPEC (a host name) or AF_UNIX */
	char host[256];
	uint16_t port;
	char path[108];
};
int mig_addr_parse(const char *s, struct mig_addr *a, char *err, size_t errlen);
/* Listening socket (SOCK_CLOEXEC); a unix socket is created mode 0600. */
int mig_listen(const struct mig_addr *a, char *err, size_t errlen);
/* Waits up to timeout_ms (-1: forever) for one connection. */
int mig_accept(int lfd, int timeout_ms, char *err, size_t errlen);
int mig_connect(const struct mig_addr *a, int timeout_ms, char *err, size_t errlen);
/* ---- the key (keys.c) ------------------------------------------------------------------------ */

/* A key file: at least 32 bytes of secret (raw or text); hashed to the key. */
int mig_key_load(const char *path, uint8_t key[MIG_KEY_BYTES], char *err, size_t errlen);

/* ---- the stream (handshake.c, frame.c) ------------------------------------------------------- */

struct mig_stream;
/* Runs the handshake on a connected fd (the stream takes it over); both sides prove they hold
 * the key. is_source picks the role. timeout_ms (-1: none) bounds the whole handshake, however
 * the peer spaces its bytes, and then each later wait for the socket (a read or a write). */
int mig_stream_open(struct mig_stream **s, int fd, const uint8_t key[MIG_KEY_BYTES], int is_source,
		    int timeout_ms, char *err, size_t errlen);
/* Another bound for each later wait (e.g. a short handshake timeout, then a longer one). */
void mig_stream_set_timeout(struct mig_stream *s, int timeout_ms);
/* One message: a type and a body of up to MIG_MSG_MAX bytes (the two parts are concatenated,
 * so a header and a page batch go without a copy by the caller). */
int mig_stream_send(struct mig_stream *s, uint32_t type, const void *a, size_t alen, const void *b,
		    size_t blen, char *err, size_t errlen);
/* The next message, verified; *body points into a buffer the stream owns until the next call. */
int mig_stream_recv(struct mig_stream *s, uint32_t *type, const uint8_t **body, size_t *len,
		    char *err, size_t errlen);
uint64_t mig_stream_bytes_sent(const struct mig_stream *s);
void mig_stream_close(struct mig_stream *s);

#endif
