/* The migration stream's handshake (migrate.h: mig_stream_open), version 1;
 * docs/migration-stream.md has the long form.
 *   1. Both sides send a clear 48-byte hello at once: "SBXMIG", u16 version, u8 role (1 source,
 *      2 destination), u8 caps (bit 0: AES-256-GCM in hardware), 6 reserved bytes, 32 random
 *      bytes. Roles must differ, which also stops a hello reflected back at its sender.
 *   2. Both derive M = BLAKE2b(key = PSK, label || hello_source || hello_destination) and from M
 *      four subkeys (crypto_kdf): data and confirmation keys for each direction. The cipher is
 *      AES-256-GCM if both hellos say so, else XChaCha20-Poly1305; the caps are in M, so a
 *      downgrade changes every key.
 *   3. The source sends MAC(confirm_s2d, transcript); the destination checks it and only then
 *      sends its own (or 32 zero bytes that cannot verify, so the source fails the same way).
 *      An endpoint that did not prove the key never gets a MAC from the destination.
 * Then frames (frame.c) carry the messages under the data keys. */
#include <errno.h>
#include <sodium.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "mig_internal.h"

#define PFX MIG_STREAM_PFX
#define HELLO_MAGIC "SBXMIG"
#define HELLO_BYTES 48
#define HELLO_NONCE_OFF 16
#define PROTO_VERSION 1
#define ROLE_SOURCE 1
#define ROLE_DEST 2
#define CAP_AES256GCM 0x1
#define CONFIRM_BYTES 32

_Static_assert(crypto_kdf_KEYBYTES == 32, "key sizes");

/* ---- hellos ---------------------------------------------------------------------------------- */

static void hello_make(uint8_t h[HELLO_BYTES], int role, uint8_t caps)
{
	memset(h, 0, HELLO_BYTES);
	memcpy(h, HELLO_MAGIC, 6);
	mig_put16(h + 6, PROTO_VERSION);
	h[8] = (uint8_t)role;
	h[9] = caps;
	randombytes_buf(h + HELLO_NONCE_OFF, 32);
}

static int hello_check(const uint8_t h[HELLO_BYTES], int my_role, char *err, size_t errlen)
{
	if (memcmp(h, HELLO_MAGIC, 6) != 0)
		return mig_fail(err, errlen, -EPROTO,
				PFX
				"the peer is not a sandbox migration endpoint (no SBXMIG hello)");
	unsigned v = mig_get16(h + 6);
	if (v != PROTO_VERSION)
		return mig_fail(err, errlen, -EPROTONOSUPPORT,
				PFX "the peer speaks protocol version %u, this side speaks %u", v,
				PROTO_VERSION);
	if (h[8] != ROLE_SOURCE && h[8] != ROLE_DEST)
		return mig_fail(err, errlen, -EPROTO, PFX "the peer sent an unknown role %u", h[8]);
	if (h[8] == my_role)
		return mig_fail(err, errlen, -EPROTO,
				PFX
				"both sides are migration %s (one must send, the other receive)",
				my_role == ROLE_SOURCE ? "sources" : "destinations");
	return 0;
}

static int hs_read(struct mig_stream *s, uint8_t *p, size_t n, const char *what, char *err,
		   size_t errlen)
{
	size_t got;
	int r = mig_stream_read_raw(s, p, n, &got, err, errlen);
	if (r == -EPIPE)
		return mig_fail(err, errlen, -EPIPE,
				PFX
				"peer closed the connection during the handshake (waiting for its "
				"%s; %zu of %zu bytes came)",
				what, got, n);
	return r;
}

/* Sends our hello and reads and checks the peer's. */
static int exchange_hellos(struct mig_stream *s, int role, uint8_t caps, uint8_t mine[HELLO_BYTES],
			   uint8_t theirs[HELLO_BYTES], char *err, size_t errlen)
{
	hello_make(mine, role, caps);
	int sent = mig_stream_write_raw(s, mine, HELLO_BYTES, err, errlen);
	/* A peer that hung up may still have said something: what it said explains more. */
	if (sent < 0 && sent != -EPIPE)
		return sent;
	int r = hs_read(s, theirs, HELLO_BYTES, "hello", err, errlen);
	if (r == 0)
		r = hello_check(theirs, role, err, errlen);
	if (r == 0 && sent < 0)
		r = mig_fail(err, errlen, sent,
			     PFX
			     "peer closed the connection during the handshake (after its hello)");
	return r;
}

/* ---- keys ------------------------------------------------------------------------------------ */

/* Everything the handshake derives, wiped on the way out. */
struct hs_keys {
	uint8_t master[crypto_kdf_KEYBYTES];
	uint8_t transcript[32];
	uint8_t k_s2d[32], k_d2s[32], c_s2d[32], c_d2s[32];
	uint8_t mine[CONFIRM_BYTES], theirs[CONFIRM_BYTES], expect[CONFIRM_BYTES];
};

static void derive(struct hs_keys *k, const uint8_t key[MIG_KEY_BYTES],
		   const uint8_t hello_s[HELLO_BYTES], const uint8_t hello_d[HELLO_BYTES])
{
	static const char label[] = "sbx migration stream v1";
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, sizeof(k->transcript));
	crypto_generichash_update(&st, (const uint8_t *)label, sizeof(label));
	crypto_generichash_update(&st, hello_s, HELLO_BYTES);
	crypto_generichash_update(&st, hello_d, HELLO_BYTES);
	crypto_generichash_final(&st, k->transcript, sizeof(k->transcript));

	crypto_generichash(k->master, sizeof(k->master), k->transcript, sizeof(k->transcript), key,
			   MIG_KEY_BYTES);
	crypto_kdf_derive_from_key(k->k_s2d, 32, 1, "SBXMIGv1", k->master);
	crypto_kdf_derive_from_key(k->k_d2s, 32, 2, "SBXMIGv1", k->master);
	crypto_kdf_derive_from_key(k->c_s2d, 32, 3, "SBXMIGv1", k->master);
	crypto_kdf_derive_from_key(k->c_d2s, 32, 4, "SBXMIGv1", k->master);
	sodium_memzero(&st, sizeof(st));
}

static void confirm_mac(uint8_t out[CONFIRM_BYTES], const uint8_t ckey[32],
			const uint8_t transcript[32])
{
	crypto_generichash(out, CONFIRM_BYTES, transcript, 32, ckey, 32);
}

/* ---- key confirmation ------------------------------------------------------------------------ */

static int confirm_as_source(struct mig_stream *s, struct hs_keys *k, char *err, size_t errlen)
{
	int r = mig_stream_write_raw(s, k->mine, CONFIRM_BYTES, err, errlen);
	if (r == 0)
		r = hs_read(s, k->theirs, CONFIRM_BYTES, "key confirmation", err, errlen);
	if (r == 0 && sodium_memcmp(k->theirs, k->expect, CONFIRM_BYTES) != 0)
		r = -EACCES;
	return r;
}

static int confirm_as_destination(struct mig_stream *s, struct hs_keys *k, char *err, size_t errlen)
{
	int r = hs_read(s, k->theirs, CONFIRM_BYTES, "key confirmation", err, errlen);
	if (r < 0)
		return r;
	bool ok = sodium_memcmp(k->theirs, k->expect, CONFIRM_BYTES) == 0;
	/* Zeros cannot verify: the source then fails with the same message instead of a bare
	 * hangup, and learns nothing about our key. */
	if (!ok)
		memset(k->mine, 0, CONFIRM_BYTES);
	char serr[8];
	r = mig_stream_write_raw(s, k->mine, CONFIRM_BYTES, serr, sizeof(serr));
	if (!ok)
		return -EACCES;
	if (r < 0)
		return mig_fail(err, errlen, r,
				PFX "peer closed the connection during the handshake");
	return 0;
}

static int handshake(struct mig_stream *s, const uint8_t key[MIG_KEY_BYTES], bool source, char *err,
		     size_t errlen)
{
	uint8_t caps = crypto_aead_aes256gcm_is_available() ? CAP_AES256GCM : 0;
	uint8_t mine[HELLO_BYTES], theirs[HELLO_BYTES];
	struct hs_keys k;
	int r =
	    exchange_hellos(s, source ? ROLE_SOURCE : ROLE_DEST, caps, mine, theirs, err, errlen);
	if (r < 0)
		return r;
	derive(&k, key, source ? mine : theirs, source ? theirs : mine);
	confirm_mac(source ? k.mine : k.expect, k.c_s2d, k.transcript);
	confirm_mac(source ? k.expect : k.mine, k.c_d2s, k.transcript);
	r = source ? confirm_as_source(s, &k, err, errlen)
		   : confirm_as_destination(s, &k, err, errlen);
	if (r == -EACCES)
		mig_fail(err, errlen, r,
			 PFX "the peer does not hold the same key (authentication failed)");
	if (r == 0)
		mig_stream_keys(s, caps & theirs[9] & CAP_AES256GCM, source ? k.k_s2d : k.k_d2s,
				source ? k.k_d2s : k.k_s2d);
	sodium_memzero(&k, sizeof(k));
	return r;
}

int mig_stream_open(struct mig_stream **sp, int fd, const uint8_t key[MIG_KEY_BYTES], int is_source,
		    int timeout_ms, char *err, size_t errlen)
{
	*sp = NULL;
	int r = mig_sodium_ready(err, errlen);
	if (r < 0) {
		close(fd);
		return r;
	}
	struct mig_stream *s;
	if ((r = mig_stream_new(&s, fd, timeout_ms, err, errlen)) < 0)
		return r;
	r = handshake(s, key, is_source != 0, err, errlen);
	if (r < 0) {
		mig_stream_close(s);
		return r;
	}
	*sp = s;
	return 0;
}
