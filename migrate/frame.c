/* The migration stream's frames (migrate.h: mig_stream_send, mig_stream_recv), after the
 * handshake (handshake.c) has set their keys; docs/migration-stream.md has the long form.
 *
 *   u32 LE n (body length, <= MIG_MSG_MAX), then AEAD(type u32 LE || body) and its 16-byte tag.
 * The 4 length bytes are the additional data, the nonce is a per-direction message counter: a
 * replayed, reordered, dropped or altered frame fails authentication, and nothing of a frame is
 * returned before it has passed. Each wait for the socket is bounded by the stream's timeout
 * (during the handshake also by the handshake's deadline). Any failure poisons the stream:
 * later calls repeat the first error. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mig_internal.h"

#define PFX MIG_STREAM_PFX
#define TAG_BYTES 16
#define FRAME_HDR 4				   /* the clear length */
#define FRAME_OVERHEAD (FRAME_HDR + 4 + TAG_BYTES) /* length, type, tag */
#define READ_AHEAD 4096				   /* small frames arrive with one read */

_Static_assert(crypto_aead_aes256gcm_ABYTES == TAG_BYTES, "tag size");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_ABYTES == TAG_BYTES, "tag size");
_Static_assert(crypto_aead_aes256gcm_KEYBYTES == 32 &&
		   crypto_aead_xchacha20poly1305_ietf_KEYBYTES == 32,
	       "key sizes");

struct mig_stream {
	/* First: libsodium wants it 16-byte aligned, and the struct is allocated aligned. */
	crypto_aead_aes256gcm_state tx_aes, rx_aes;
	uint8_t tx_key[32], rx_key[32]; /* XChaCha20-Poly1305 */
	bool aes;
	int fd;
	int timeout_ms;
	int64_t hs_deadline;	 /* during the handshake: when all of it must be done; else -1 */
	uint64_t tx_ctr, rx_ctr; /* messages sent / received, the nonces */
	uint64_t bytes_sent;
	uint8_t *txbuf;
	size_t txcap;
	uint8_t *rxbuf;
	size_t rxcap;
	size_t rxfill; /* bytes in rxbuf */
	size_t rxnext; /* where the next frame starts (after the one last returned) */
	int failed;    /* -errno of the first failure, or 0 */
	char failmsg[256];
};

/* ---- the stream's life ----------------------------------------------------------------------- */

int mig_stream_new(struct mig_stream **sp, int fd, int timeout_ms, char *err, size_t errlen)
{
	*sp = NULL;
	size_t sz = (sizeof(struct mig_stream) + 63) & ~(size_t)63;
	struct mig_stream *s = aligned_alloc(64, sz);
	if (!s) {
		close(fd);
		return mig_fail(err, errlen, -ENOMEM, PFX "out of memory");
	}
	memset(s, 0, sizeof(*s));
	s->hs_deadline = -1;
	s->fd = fd;
	s->timeout_ms = timeout_ms;
	/* Non-blocking so that every read and write is bounded by poll and the timeout. */
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		int r = mig_fail(err, errlen, -errno, PFX "fcntl: %s", strerror(errno));
		mig_stream_close(s);
		return r;
	}
	mig_socket_tune(fd);
	s->hs_deadline = mig_deadline(timeout_ms);
	*sp = s;
	return 0;
}

void mig_stream_keys(struct mig_stream *s, int aes, const uint8_t tx[32], const uint8_t rx[32])
{
	s->aes = aes != 0;
	if (s->aes) {
		crypto_aead_aes256gcm_beforenm(&s->tx_aes, tx);
		crypto_aead_aes256gcm_beforenm(&s->rx_aes, rx);
	} else {
		memcpy(s->tx_key, tx, 32);
		memcpy(s->rx_key, rx, 32);
	}
	s->hs_deadline = -1;
}

void mig_stream_set_timeout(struct mig_stream *s, int timeout_ms)
{
	s->timeout_ms = timeout_ms;
}

uint64_t mig_stream_bytes_sent(const struct mig_stream *s)
{
	return s ? s->bytes_sent : 0;
}

void mig_stream_close(struct mig_stream *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	free(s->txbuf);
	free(s->rxbuf);
	sodium_memzero(s, sizeof(*s));
	free(s);
}

/* ---- failures and timeouts ------------------------------------------------------------------- */

static int poison(struct mig_stream *s, int rc, char *err, size_t errlen)
{
	if (!s->failed) {
		s->failed = rc;
		if (err && errlen)
			snprintf(s->failmsg, sizeof(s->failmsg), "%s", err);
	}
	return rc;
}

static int already_failed(const struct mig_stream *s, char *err, size_t errlen)
{
	return mig_fail(err, errlen, s->failed, "%s",
			s->failmsg[0] ? s->failmsg : PFX "failed earlier");
}

/* Waits for the socket: timeout_ms from now, but within the handshake's deadline, which a peer
 * that sends a byte at a time does not move. */
static int wait_io(struct mig_stream *s, short events, char *err, size_t errlen)
{
	int64_t d = mig_deadline(s->timeout_ms);
	if (s->hs_deadline >= 0 && (d < 0 || s->hs_deadline < d))
		d = s->hs_deadline;
	int r = mig_wait_fd(s->fd, events, d);
	if (r == -ETIMEDOUT && s->hs_deadline >= 0)
		return mig_fail(err, errlen, r,
				PFX "the peer did not complete the handshake within %d ms",
				s->timeout_ms);
	if (r == -ETIMEDOUT)
		return mig_fail(err, errlen, r, PFX "timed out after %d ms waiting for the peer",
				s->timeout_ms);
	if (r < 0)
		return mig_fail(err, errlen, r, PFX "poll: %s", strerror(-r));
	return 0;
}

/* ---- bytes on the socket --------------------------------------------------------------------- */

static int send_all(struct mig_stream *s, const uint8_t *p, size_t n, char *err, size_t errlen)
{
	while (n > 0) {
		ssize_t k = send(s->fd, p, n, MSG_NOSIGNAL);
		if (k > 0) {
			p += k;
			n -= (size_t)k;
			s->bytes_sent += (uint64_t)k;
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN) {
			int r = wait_io(s, POLLOUT, err, errlen);
			if (r < 0)
				return r;
			continue;
		}
		int e = k < 0 ? errno : EIO;
		if (e == EPIPE || e == ECONNRESET)
			return mig_fail(err, errlen, -EPIPE,
					PFX "peer closed the connection (%llu messages sent)",
					(unsigned long long)s->tx_ctr);
		return mig_fail(err, errlen, -e, PFX "send: %s", strerror(e));
	}
	return 0;
}

/* Reads at least `min` and at most `max` bytes into p. *got says how many arrived, also on
 * error. A clean end of stream is -EPIPE with no message: the caller knows what was cut. */
static int read_some(struct mig_stream *s, uint8_t *p, size_t min, size_t max, size_t *got,
		     char *err, size_t errlen)
{
	*got = 0;
	while (*got < min) {
		ssize_t k = read(s->fd, p + *got, max - *got);
		if (k > 0) {
			*got += (size_t)k;
			continue;
		}
		if (k == 0 || (k < 0 && errno == ECONNRESET))
			return -EPIPE;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return mig_fail(err, errlen, -errno, PFX "read: %s", strerror(errno));
		/* Per read, as documented: a slow but live peer is not timed out. */
		int r = wait_io(s, POLLIN, err, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}

int mig_stream_write_raw(struct mig_stream *s, const uint8_t *p, size_t n, char *err, size_t errlen)
{
	return send_all(s, p, n, err, errlen);
}

int mig_stream_read_raw(struct mig_stream *s, uint8_t *p, size_t n, size_t *got, char *err,
			size_t errlen)
{
	return read_some(s, p, n, n, got, err, errlen);
}

/* ---- frames ---------------------------------------------------------------------------------- */

static void nonce_of(uint8_t n[24], uint64_t ctr)
{
	memset(n, 0, 24);
	for (int i = 0; i < 8; i++)
		n[i] = (uint8_t)(ctr >> (8 * i));
}

static int grow(uint8_t **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 64 * 1024;
	while (n < need)
		n *= 2;
	if (n > MIG_MSG_MAX + FRAME_OVERHEAD + READ_AHEAD)
		n = MIG_MSG_MAX + FRAME_OVERHEAD + READ_AHEAD;
	uint8_t *p = realloc(*buf, n);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

/* Encrypts the frame in txbuf (type and n body bytes after the length) in place, tag after. */
static void seal_frame(struct mig_stream *s, size_t n)
{
	uint8_t *f = s->txbuf, *m = f + FRAME_HDR, nonce[24];
	nonce_of(nonce, s->tx_ctr);
	if (s->aes)
		crypto_aead_aes256gcm_encrypt_detached_afternm(m, m + 4 + n, NULL, m, 4 + n, f,
							       FRAME_HDR, NULL, nonce, &s->tx_aes);
	else
		crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
		    m, m + 4 + n, NULL, m, 4 + n, f, FRAME_HDR, NULL, nonce, s->tx_key);
	s->tx_ctr++;
}

int mig_stream_send(struct mig_stream *s, uint32_t type, const void *a, size_t alen, const void *b,
		    size_t blen, char *err, size_t errlen)
{
	if (s->failed)
		return already_failed(s, err, errlen);
	if ((alen && !a) || (blen && !b))
		return mig_fail(err, errlen, -EINVAL, PFX "send: NULL part with a length");
	/* A caller's mistake, caught before anything is written: the stream stays usable. */
	if (alen > MIG_MSG_MAX || blen > MIG_MSG_MAX - alen)
		return mig_fail(err, errlen, -EMSGSIZE,
				PFX "message of %zu bytes is larger than the %u a message may hold",
				alen + blen, MIG_MSG_MAX);
	if (s->tx_ctr == UINT64_MAX)
		return poison(s, mig_fail(err, errlen, -EOVERFLOW, PFX "message counter exhausted"),
			      err, errlen);
	size_t n = alen + blen, total = n + FRAME_OVERHEAD;
	if (grow(&s->txbuf, &s->txcap, total) < 0)
		return mig_fail(err, errlen, -ENOMEM, PFX "out of memory for a %zu-byte message",
				n);
	/* One copy into the frame buffer, then encryption in place: libsodium's AEADs take one
	 * contiguous message, and the frame has to be assembled for a single send anyway. */
	uint8_t *m = s->txbuf + FRAME_HDR;
	mig_put32(s->txbuf, (uint32_t)n);
	mig_put32(m, type);
	if (alen)
		memcpy(m + 4, a, alen);
	if (blen)
		memcpy(m + 4 + alen, b, blen);
	seal_frame(s, n);
	int r = send_all(s, s->txbuf, total, err, errlen);
	return r < 0 ? poison(s, r, err, errlen) : 0;
}

/* More of the next frame into rxbuf: at least min bytes, at most max. */
static int fill(struct mig_stream *s, size_t min, size_t max, unsigned long long idx, char *err,
		size_t errlen)
{
	size_t got;
	int r = read_some(s, s->rxbuf + s->rxfill, min, max, &got, err, errlen);
	s->rxfill += got;
	if (r == -EPIPE && s->rxfill == 0)
		return mig_fail(err, errlen, -EPIPE,
				PFX "peer closed the connection after %llu messages", idx - 1);
	if (r == -EPIPE)
		return mig_fail(err, errlen, -EPIPE,
				PFX "peer closed the connection in the middle of message %llu (%zu "
				    "bytes came; truncated stream)",
				idx, s->rxfill);
	return r;
}

/* The next frame, all of it, in rxbuf; *n its body length, checked before it sizes anything
 * (it is not authenticated yet). */
static int recv_frame(struct mig_stream *s, unsigned long long idx, uint32_t *n, char *err,
		      size_t errlen)
{
	/* Drop the frame returned last time; keep what was read ahead of the next one. */
	if (s->rxnext) {
		memmove(s->rxbuf, s->rxbuf + s->rxnext, s->rxfill - s->rxnext);
		s->rxfill -= s->rxnext;
		s->rxnext = 0;
	}
	if (grow(&s->rxbuf, &s->rxcap, FRAME_OVERHEAD + READ_AHEAD) < 0)
		return mig_fail(err, errlen, -ENOMEM, PFX "out of memory");
	size_t room = s->rxcap - s->rxfill;
	int r = s->rxfill >= FRAME_HDR
		    ? 0
		    : fill(s, FRAME_HDR - s->rxfill, room < READ_AHEAD ? room : READ_AHEAD, idx,
			   err, errlen);
	if (r < 0)
		return r;
	*n = mig_get32(s->rxbuf);
	if (*n > MIG_MSG_MAX)
		return mig_fail(err, errlen, -EMSGSIZE,
				PFX "message %llu claims %u bytes, more than the %u allowed "
				    "(corrupt or hostile stream)",
				idx, *n, MIG_MSG_MAX);
	size_t flen = (size_t)*n + FRAME_OVERHEAD;
	if (grow(&s->rxbuf, &s->rxcap, flen) < 0)
		return mig_fail(err, errlen, -ENOMEM, PFX "out of memory for message %llu", idx);
	if (s->rxfill < flen)
		return fill(s, flen - s->rxfill, flen - s->rxfill, idx, err, errlen);
	return 0;
}

/* Decrypts the frame in rxbuf in place; an altered one is wiped, never returned. */
static int open_frame(struct mig_stream *s, unsigned long long idx, uint32_t n, char *err,
		      size_t errlen)
{
	uint8_t *f = s->rxbuf, *c = f + FRAME_HDR, nonce[24];
	int r;
	nonce_of(nonce, s->rx_ctr);
	if (s->aes)
		r = crypto_aead_aes256gcm_decrypt_detached_afternm(c, NULL, c, 4 + n, c + 4 + n, f,
								   FRAME_HDR, nonce, &s->rx_aes);
	else
		r = crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
		    c, NULL, c, 4 + n, c + 4 + n, f, FRAME_HDR, nonce, s->rx_key);
	if (r == 0)
		return 0;
	sodium_memzero(c, 4 + (size_t)n);
	return mig_fail(err, errlen, -EBADMSG,
			PFX "message %llu failed authentication (wrong key or altered stream)",
			idx);
}

int mig_stream_recv(struct mig_stream *s, uint32_t *type, const uint8_t **body, size_t *len,
		    char *err, size_t errlen)
{
	*body = NULL;
	*len = 0;
	if (s->failed)
		return already_failed(s, err, errlen);
	unsigned long long idx = (unsigned long long)s->rx_ctr + 1; /* 1-based, for messages */
	uint32_t n = 0;
	int r = recv_frame(s, idx, &n, err, errlen);
	if (r == 0)
		r = open_frame(s, idx, n, err, errlen);
	if (r < 0)
		return poison(s, r, err, errlen);
	const uint8_t *c = s->rxbuf + FRAME_HDR;
	s->rx_ctr++;
	s->rxnext = (size_t)n + FRAME_OVERHEAD;
	*type = mig_get32(c);
	*body = c + 4;
	*len = n;
	return 0;
}
