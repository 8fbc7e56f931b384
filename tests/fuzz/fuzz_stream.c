/* libFuzzer target for the migration stream's receiving side: the input is what the peer sends.
 * A destination (fixed key, 10 ms timeout) runs mig_stream_open and then mig_stream_recv until
 * it fails; every failure must say why on one line and nothing may hang.
 *
 * The first byte picks how the input reaches it:
 *   even: raw bytes straight onto the socket (hello parsing, the handshake, a forged stream);
 *   odd:  a real source with the same key does the handshake, then the rest is a script of
 *         operations mixing genuine messages with raw bytes written past the stream. That gets
 *         the fuzzer past the MAC into frame handling, and gives an oracle: whatever the
 *         destination accepts must be exactly the genuine messages, in order. */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (64u << 10)
#define MAX_MSGS 256
#define BIG_MAX (256u << 10)
#define TIMEOUT_MS 10

static const uint8_t fuzz_key[MIG_KEY_BYTES] = "sbx fuzz key, not a secret 0123";

/* A genuine message the source sent: the destination may deliver only these. */
struct sent {
	uint32_t type;
	const uint8_t *body; /* into the input, or NULL for a run of zeros */
	size_t len;
};

struct peer {
	int fd;
	const uint8_t *in;
	size_t n;
	int scripted;
	struct sent msgs[MAX_MSGS];
	_Atomic size_t nmsgs; /* published before the message is sent */
};

static void write_raw(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
		if (k <= 0)
			return; /* the destination gave up */
		p += k;
		n -= (size_t)k;
	}
}

static void script(struct peer *p)
{
	struct mig_stream *s;
	char err[256];
	if (mig_stream_open(&s, p->fd, fuzz_key, 1, TIMEOUT_MS, err, sizeof(err)) < 0)
		return; /* open closed the fd */
	static uint8_t zeros[BIG_MAX];
	size_t i = 0;
	while (i < p->n) {
		uint8_t op = p->in[i++];
		if (op % 4 == 3)
			break;
		if (op % 4 == 1) { /* raw bytes past the stream's back */
			size_t len = i < p->n ? p->in[i++] : 0;
			if (len > p->n - i)
				len = p->n - i;
			write_raw(p->fd, p->in + i, len);
			i += len;
			continue;
		}
		size_t k = atomic_load_explicit(&p->nmsgs, memory_order_relaxed);
		if (k == MAX_MSGS || p->n - i < 3)
			break;
		struct sent *m = &p->msgs[k];
		m->type = p->in[i] | (uint32_t)op << 8;
		size_t len = p->in[i + 1] | (size_t)p->in[i + 2] << 8;
		i += 3;
		if (op % 4 == 0) { /* a message from the input */
			if (len > p->n - i)
				len = p->n - i;
			m->body = p->in + i;
			i += len;
		} else { /* a large one, split across the two parts */
			len = (len << 2) % BIG_MAX;
			m->body = NULL;
		}
		m->len = len;
		atomic_store_explicit(&p->nmsgs, k + 1, memory_order_release);
		const uint8_t *b = m->body ? m->body : zeros;
		if (mig_stream_send(s, m->type, b, len / 3, b + len / 3, len - len / 3, err,
				    sizeof(err)) < 0)
			break;
	}
	mig_stream_close(s);
}

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	if (p->scripted) {
		script(p);
		return NULL;
	}
	write_raw(p->fd, p->in, p->n);
	shutdown(p->fd, SHUT_WR);
	return NULL;
}

static void check_err(int r, const char *err)
{
	if (r < 0 && (!err[0] || strchr(err, '\n')))
		__builtin_trap(); /* every failure says why, on one line */
	if (r > 0)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > MAX_INPUT)
		return 0;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		__builtin_trap();

	static struct peer p;
	memset(&p, 0, sizeof(p));
	atomic_init(&p.nmsgs, 0);
	p.fd = sv[0];
	p.in = data + 1;
	p.n = size - 1;
	p.scripted = data[0] & 1;
	pthread_t t;
	if (pthread_create(&t, NULL, peer_main, &p) != 0)
		__builtin_trap();

	struct mig_stream *s;
	char err[256] = "";
	size_t got = 0;
	int r = mig_stream_open(&s, sv[1], fuzz_key, 0, TIMEOUT_MS, err, sizeof(err));
	check_err(r, err);
	if (r == 0) {
		for (;;) {
			uint32_t type;
			const uint8_t *body;
			size_t len;
			err[0] = 0;
			r = mig_stream_recv(s, &type, &body, &len, err, sizeof(err));
			check_err(r, err);
			if (r < 0)
				break;
			if (len > MIG_MSG_MAX || (len && !body))
				__builtin_trap();
			/* Only the script's genuine messages get through, in its order. */
			if (got >= atomic_load_explicit(&p.nmsgs, memory_order_acquire))
				__builtin_trap();
			const struct sent *m = &p.msgs[got++];
			static const uint8_t zeros[BIG_MAX];
			if (type != m->type || len != m->len ||
			    memcmp(body, m->body ? m->body : zeros, len) != 0)
				__builtin_trap();
		}
		char again[256] = "";
		uint32_t type;
		const uint8_t *body;
		size_t len;
		if (mig_stream_recv(s, &type, &body, &len, again, sizeof(again)) != r ||
		    strcmp(again, err) != 0)
			__builtin_trap(); /* a failed stream stays failed */
		mig_stream_close(s);
	}
	pthread_join(t, NULL);
	if (!p.scripted)
		close(sv[0]);
	return 0;
}
