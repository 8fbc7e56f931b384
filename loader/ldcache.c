/* glibc's /etc/ld.so.cache, read as untrusted bytes. The layout (glibc's dl-cache.h): an
 * optional old-format part ("ld.so-1.7.0", a count, 12-byte entries), then, 8-byte aligned, the
 * new header ("glibc-ld.so.cache" "1.1", nlibs, len_strings, flags, extension offset) and its
 * 24-byte entries (flags, key, value, osversion, hwcap). Keys and values are string offsets from
 * the start of the new header. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "loader_priv.h"

#define OLD_MAGIC "ld.so-1.7.0"
#define NEW_MAGIC "glibc-ld.so.cache1.1"
#define NEW_HDR 48
#define NEW_ENTRY 24
#define OLD_ENTRY 12
#define FLAG_TYPE_MASK 0x00ff
#define FLAG_ELF_LIBC6 0x0003
#define FLAG_REQUIRED_MASK 0xff00
#define FLAG_X8664_LIB64 0x0300

static uint32_t u32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint64_t u64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* The NUL-terminated string at `off` of [base, base+len), or NULL. */
static const char *str_in(const uint8_t *base, uint64_t len, uint64_t off)
{
	if (off >= len || !memchr(base + off, 0, len - off))
		return NULL;
	return (const char *)base + off;
}

/* Whether the string at `off` of [base, base+len) is s (slen bytes and a NUL). Reads no more
 * than s has: a key that runs on without a NUL costs no more than a short one, where finding
 * its end first made a lookup quadratic in the cache's size (minutes for a few MiB). */
static int str_is(const uint8_t *base, uint64_t len, uint64_t off, const char *s, size_t slen)
{
	return off < len && len - off > slen && memcmp(base + off, s, slen + 1) == 0;
}

int loader_ldcache_lookup(const void *cache, size_t len, const char *soname, char *out,
			  size_t outlen)
{
	const uint8_t *p = cache;
	uint64_t at = 0;

	if (!p || !soname || !out || outlen == 0)
		return -EINVAL;
	if (len >= sizeof(OLD_MAGIC) - 1 + 1 + 4 &&
	    memcmp(p, OLD_MAGIC, sizeof(OLD_MAGIC) - 1) == 0) {
		uint64_t nold = u32(p + 12);
		/* Bounded by len before the multiplication can matter. */
		if (nold > len / OLD_ENTRY)
			return -EINVAL;
		at = (16 + nold * OLD_ENTRY + 7) & ~7ull;
	}
	if (at > len || len - at < NEW_HDR || memcmp(p + at, NEW_MAGIC, sizeof(NEW_MAGIC) - 1) != 0)
		return -EINVAL;
	const uint8_t *base = p + at;
	uint64_t blen = len - at;
	uint64_t n = u32(base + 20);
	size_t slen = strlen(soname);
	if (n > (blen - NEW_HDR) / NEW_ENTRY)
		return -EINVAL;
	for (uint64_t i = 0; i < n; i++) {
		const uint8_t *e = base + NEW_HDR + i * NEW_ENTRY;
		uint32_t flags = u32(e);
		if ((flags & FLAG_TYPE_MASK) != FLAG_ELF_LIBC6 ||
		    (flags & FLAG_REQUIRED_MASK) != FLAG_X8664_LIB64 || u64(e + 16) != 0)
			continue;
		if (!str_is(base, blen, u32(e + 4), soname, slen))
			continue;
		const char *val = str_in(base, blen, u32(e + 8));
		if (!val || val[0] != '/')
			return -EINVAL;
		if (strlen(val) >= outlen)
			return -ENAMETOOLONG;
		memcpy(out, val, strlen(val) + 1);
		return 0;
	}
	return -ENOENT;
}
