/* The snapshot file's byte layout (docs/snapshot-format.md), shared by the writer and the
 * reader: the header and the section table encoded field by field (never a struct dump), their
 * checksums, and the section names.
 *
 *   [header, header_size bytes][section table, nsections * entry_size][bodies...]
 *
 * Both the header and the table carry their own size so that a later minor version can grow
 * them: a reader uses the fields it knows and ignores the rest, which the checksums still
 * cover. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "mig_internal.h"

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
_Static_assert(MIG_SNAP_HEADER_SIZE <= MIG_HDR_MAX, "header cap");
_Static_assert(E_CHECKSUM + 8 == MIG_ENTRY_SIZE, "entry layout");

/* ---- header and section table ---------------------------------------------------------------- */

/* One field in either direction: put (encode) or get (decode). */
static void field16(uint8_t *p, uint16_t *v, int put)
{
	if (put)
		mig_put16(p, *v);
	else
		*v = mig_get16(p);
}

static void field32(uint8_t *p, uint32_t *v, int put)
{
	if (put)
		mig_put32(p, *v);
	else
		*v = mig_get32(p);
}

static void field64(uint8_t *p, uint64_t *v, int put)
{
	if (put)
		mig_put64(p, *v);
	else
		*v = mig_get64(p);
}

static void field_bytes(uint8_t *p, uint8_t *v, size_t n, int put)
{
	if (put)
		memcpy(p, v, n);
	else
		memcpy(v, p, n);
}

/* The one description of the header's fields: encode and decode cannot drift apart. */
static void hdr_fields(uint8_t *b, struct mig_snap_header *h, struct mig_hdr_layout *l, int put)
{
	field16(b + H_MAJOR, &h->major, put);
	field16(b + H_MINOR, &h->minor, put);
	field32(b + H_HEADER_SIZE, &l->header_size, put);
	field32(b + H_ABI, &h->abi_version, put);
	field32(b + H_NSECTIONS, &h->nsections, put);
	field64(b + H_MEM_SIZE, &h->mem_size, put);
	field64(b + H_TSC_KHZ, &h->tsc_khz, put);
	field64(b + H_CREATED, &h->created_ns, put);
	field64(b + H_FILE_SIZE, &l->file_size, put);
	field64(b + H_TABLE_OFF, &l->table_off, put);
	field32(b + H_ENTRY_SIZE, &l->entry_size, put);
	field64(b + H_TABLE_SUM, &l->table_sum, put);
	field64(b + H_HEADER_SUM, &l->header_sum, put);
	field_bytes(b + H_CPUID, h->cpuid_sig, sizeof(h->cpuid_sig), put);
	field_bytes(b + H_ELF_HASH, h->elf_hash, sizeof(h->elf_hash), put);
	field_bytes(b + H_SNAP_ID, h->snap_id, sizeof(h->snap_id), put);
	field_bytes(b + H_PARENT_ID, h->parent_id, sizeof(h->parent_id), put);
}

void mig_hdr_encode(uint8_t b[MIG_SNAP_HEADER_SIZE], const struct mig_snap_header *h,
		    const struct mig_hdr_layout *l)
{
	struct mig_snap_header hc = *h;
	struct mig_hdr_layout lc = *l;
	memset(b, 0, MIG_SNAP_HEADER_SIZE);
	memcpy(b + H_MAGIC, MIG_SNAP_MAGIC, 8);
	hdr_fields(b, &hc, &lc, 1);
	mig_put64(b + H_HEADER_SUM, mig_hdr_sum(b, MIG_SNAP_HEADER_SIZE));
}

void mig_hdr_decode(const uint8_t *b, struct mig_snap_header *h, struct mig_hdr_layout *l)
{
	/* Only read: the fields' direction is get. */
	hdr_fields((uint8_t *)b, h, l, 0);
}

int mig_hdr_magic_ok(const uint8_t *b)
{
	return memcmp(b + H_MAGIC, MIG_SNAP_MAGIC, 8) == 0;
}

uint64_t mig_hdr_sum(uint8_t *b, uint32_t hs)
{
	mig_put64(b + H_HEADER_SUM, 0);
	return XXH3_64bits(b, hs);
}

static void entry_fields(uint8_t *e, struct mig_section *s, int put)
{
	field32(e + E_TYPE, &s->type, put);
	field16(e + E_VERSION, &s->version, put);
	field16(e + E_FLAGS, &s->flags, put);
	field64(e + E_OFFSET, &s->offset, put);
	field64(e + E_LENGTH, &s->length, put);
	field64(e + E_CHECKSUM, &s->checksum, put);
}

void mig_entry_encode(uint8_t e[MIG_ENTRY_SIZE], const struct mig_section *s)
{
	struct mig_section sc = *s;
	entry_fields(e, &sc, 1);
}

void mig_entry_decode(const uint8_t *e, struct mig_section *s)
{
	entry_fields((uint8_t *)e, s, 0); /* only read */
}

uint64_t mig_checksum(const void *p, size_t len)
{
	return XXH3_64bits(p, len);
}

/* ---- names and limits ------------------------------------------------------------------------ */

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
	case MIG_SEC_THREADS:
		return "threads";
	case MIG_SEC_OBJECTS:
		return "objects";
	}
	return "unknown";
}

int mig_sec_known(uint32_t type)
{
	return type >= MIG_SEC_VCPU && type <= MIG_SEC_OBJECTS;
}

const char *mig_sec_tname(uint32_t type, char buf[24])
{
	if (mig_sec_known(type))
		return mig_sec_name(type);
	snprintf(buf, 24, "type %u", type);
	return buf;
}

int mig_mem_size_check(uint64_t m, char *err, size_t errlen)
{
	if (m && m % (2ull << 20) == 0 && m <= MIG_SNAP_MAX_MEM)
		return 0;
	return mig_fail(err, errlen, -EINVAL,
			"header: mem_size %llu is not a nonzero multiple of 2 MiB up to %llu",
			(unsigned long long)m, (unsigned long long)MIG_SNAP_MAX_MEM);
}

uint64_t mig_align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}
