/* Live migration, pre-copy. The source sends every non-zero page while the guest runs, then
 * rounds of the pages dirtied meanwhile, until what is left fits the downtime target; then it
 * pauses the guest, sends the last pages and the state sections, and waits for READY. Only
 * after GO does it give the sandbox up, and only after RESUMED does it exit. Until GO any
 * failure resumes the guest here and nothing is lost.
 *
 * Messages (inside the authenticated stream of migrate/):
 *   HELLO   src->dst  u64 mem_size, u32 abi
 *   PAGES   src->dst  u32 n, n x u64 (gpa | 1 for an all-zero page), then the non-zero pages
 *   STATE   src->dst  i64 last exit (CLOCK_REALTIME ns), u32 rounds, the state sections
 *   READY   dst->src  everything checked and applied: the destination can run
 *   GO      src->dst  the source has given the sandbox up
 *   RESUMED dst->src  i64 the destination's first KVM_RUN (CLOCK_REALTIME ns)
 *   SYNC    src->dst  before the pause: the destination answers SYNCED once it has applied
 *                     everything sent so far, so that no backlog counts as downtime
 *   ERROR   either    one line of text; the stream ends */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <linux/futex.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "migrate.h"
#include "calls.h"
#include "persist.h"
#include "sandbox_priv.h"

enum {
	MSG_HELLO = 1,
	MSG_PAGES,
	MSG_STATE,
	MSG_READY,
	MSG_GO,
	MSG_RESUMED,
	MSG_ERROR,
	MSG_SYNC,   /* src->dst: answer when everything before this is applied */
	MSG_SYNCED, /* dst->src */
};

#define BATCH 128 /* pages per PAGES message */
#define STREAM_TIMEOUT_MS 10000
#define SBX_HANDSHAKE_TIMEOUT_MS 5000 /* default of --handshake-timeout */
#define SBX_INCOMING_MAX_FAILURES 16  /* failed handshakes before --incoming gives up */

static double mono_ms(void)
{
	return (double)sbx_now_ns(CLOCK_MONOTONIC) / 1e6;
}

static int page_is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;
	for (unsigned i = 0; i < SBX_PAGE_SIZE / 8; i += 4)
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3])
			return 0;
	return 1;
}

struct batch {
	uint32_t n;
	uint64_t gpa[BATCH];
	uint8_t *data; /* BATCH pages */
	uint32_t ndata;
};

static int batch_flush(struct mig_stream *s, struct batch *b, char *err, size_t errlen)
{
	if (!b->n)
		return 0;
	uint8_t head[4 + 8 * BATCH];
	memcpy(head, &b->n, 4);
	memcpy(head + 4, b->gpa, 8ull * b->n);
	int r = mig_stream_send(s, MSG_PAGES, head, 4 + 8ull * b->n, b->data,
				(size_t)b->ndata * SBX_PAGE_SIZE, err, errlen);
	b->n = b->ndata = 0;
	return r;
}

/* Sends the pages set in bitmap (clearing them); round 0 leaves all-zero pages out, since the
 * destination starts from zeroed RAM. */
static int send_pages(struct sbx_vm *vm, struct mig_stream *s, uint64_t *bitmap, int first,
		      struct batch *b, uint64_t *sent, char *err, size_t errlen)
{
	uint64_t nw = sbx_dirty_words(vm);
	for (uint64_t i = 0; i < nw; i++) {
		while (bitmap[i]) {
			int bit = __builtin_ctzll(bitmap[i]);
			bitmap[i] &= bitmap[i] - 1;
			uint64_t gpa = (i * 64 + (uint64_t)bit) * SBX_PAGE_SIZE;
			const uint8_t *p = vm->proc.mem.base + gpa;
			if (page_is_zero(p)) {
				if (first)
					continue;
				b->gpa[b->n++] = gpa | 1;
			} else {
				b->gpa[b->n++] = gpa;
				memcpy(b->data + (size_t)b->ndata++ * SBX_PAGE_SIZE, p,
				       SBX_PAGE_SIZE);
				(*sent)++;
			}
			if (b->n == BATCH) {
				int r = batch_flush(s, b, err, errlen);
				if (r < 0)
					return r;
			}
		}
	}
	return batch_flush(s, b, err, errlen);
}

/* ring_lock within ms, or not: a host call that blocks holds it for long. A SLEEP holds the
 * lock for as long as it sleeps: it is cut short (the guest kernel sleeps again for the
 * rest). */
static int lock_briefly(struct sbx_vm *vm, int ms)
{
	return sbx_ring_lock(vm, SBX_RING_NUDGE, ms) == 0;
}

/* Every page the host holds for guest RAM goes in round 0. */
static int mark_range(void *ctx, uint64_t gpa, uint64_t len)
{
	uint64_t *bitmap = ctx;
	for (uint64_t p = gpa / SBX_PAGE_SIZE; p < (gpa + len) / SBX_PAGE_SIZE; p++)
		bitmap[p / 64] |= 1ull << (p % 64);
	return 0;
}

/* The one-line text of an ERROR message, bounded and printable. */
static void error_text(const uint8_t *body, size_t len, char *out, size_t outlen)
{
	size_t n = len < outlen - 1 ? len : outlen - 1;
	for (size_t i = 0; i < n; i++)
		out[i] = body[i] >= 0x20 && body[i] < 0x7f ? (char)body[i] : '?';
	out[n] = 0;
}

/* Waits for one message of the wanted type; an ERROR from the peer becomes the error. */
static int expect(struct mig_stream *s, uint32_t want, const uint8_t **body, size_t *len, char *err,
		  size_t errlen)
{
	uint32_t type;
	int r = mig_stream_recv(s, &type, body, len, err, errlen);
	if (r < 0)
		return r;
	if (type == MSG_ERROR) {
		char t[300];
		error_text(*body, *len, t, sizeof(t));
		return sbx_fail(err, errlen, -ECONNABORTED, "the destination refused: %s", t);
	}
	if (type != want)
		return sbx_fail(err, errlen, -EPROTO,
				"migration stream: message type %u where %u was due", type, want);
	return 0;
}

/* One outgoing migration: its stream, the pages still to send, and what it measured. */
struct mig_out {
	struct sbx_vm *vm;
	struct mig_stream *s;
	uint64_t *bitmap;
	struct batch b;
	uint64_t sent;
	unsigned rounds;
	int had_logging; /* a reset snapshot's dirty log: not ours to stop */
	int paused, was_paused, gave_up;
	double t0;	   /* ms, when it began */
	double bw;	   /* bytes per ms, from the last round that moved enough to measure */
	double wire_ms;	   /* paused until READY */
	int64_t last_exit; /* ns, the guest's last instruction here */
	uint8_t *blob;
	char err[400];
};

/* The stream to the destination, its greeting sent. Takes fd either way. */
static int out_open(struct mig_out *m, int fd)
{
	struct sbx_vm *vm = m->vm;
	m->bitmap = calloc(sbx_dirty_words(vm), sizeof(uint64_t));
	m->b.data = malloc(BATCH * SBX_PAGE_SIZE);
	if (!m->bitmap || !m->b.data) {
		close(fd);
		return sbx_fail(m->err, sizeof(m->err), -ENOMEM, "out of memory");
	}
	if (m->had_logging) {
		/* Its dirty log belongs to a reset snapshot, whose next reset would miss the
		 * pages this migration's rounds took from it. */
		close(fd);
		return sbx_fail(m->err, sizeof(m->err), -EBUSY,
				"a reset snapshot is tracking this sandbox's pages");
	}
	int r = mig_stream_open(&m->s, fd, vm->cfg.migrate_key, 1, STREAM_TIMEOUT_MS, m->err,
				sizeof(m->err));
	if (r < 0)
		return r;
	uint8_t hello[12];
	uint32_t abi = vm->proc.image.khdr.abi_version;
	memcpy(hello, &vm->proc.mem.size, 8);
	memcpy(hello + 8, &abi, 4);
	return mig_stream_send(m->s, MSG_HELLO, hello, sizeof(hello), NULL, 0, m->err,
			       sizeof(m->err));
}

/* Sends the pages marked in the bitmap; measures the bandwidth when enough moved (always,
 * for round 0). */
static int out_send(struct mig_out *m, int first)
{
	double rt0 = mono_ms();
	uint64_t before = mig_stream_bytes_sent(m->s);
	int r = send_pages(m->vm, m->s, m->bitmap, first, &m->b, &m->sent, m->err, sizeof(m->err));
	uint64_t moved = mig_stream_bytes_sent(m->s) - before;
	if (r == 0 && (first || moved > (1u << 20)))
		m->bw = (double)moved / (mono_ms() - rt0 + 1e-3);
	return r;
}

/* Round 0: dirty logging first, then every page the host holds, so that a page written
 * during the copy is sent again. */
static int out_round0(struct mig_out *m)
{
	struct sbx_vm *vm = m->vm;
	int r = sbx_dirty_start(vm, m->err, sizeof(m->err));
	if (r < 0)
		return r;
	/* A request being served since before tracking began may write without a mark. Not in
	 * a hurry here: marking all of RAM again costs a whole extra round. */
	if (lock_briefly(vm, 50))
		pthread_mutex_unlock(&vm->proc.ring.lock);
	else
		atomic_store(&vm->proc.mem.remark_all, 1);
	sbx_mem_extents(vm, 0, mark_range, m->bitmap);
	return out_send(m, 1);
}

/* The pages dirtied since the last call, into the bitmap: how many, or -errno. take_mon:
 * see sbx_dirty_collect. */
static int64_t out_collect(struct mig_out *m, int take_mon)
{
	int64_t n = sbx_dirty_collect(m->vm, m->bitmap, take_mon);
	if (n < 0)
		sbx_fail(m->err, sizeof(m->err), (int)n, "KVM_GET_DIRTY_LOG: %s",
			 strerror((int)-n));
	return n;
}

/* Pre-copy rounds while the guest runs, until what is left fits the downtime target. */
static int out_precopy(struct mig_out *m)
{
	struct sbx_vm *vm = m->vm;
	unsigned max_rounds = vm->cfg.max_rounds ? vm->cfg.max_rounds : 30;
	double target = vm->cfg.max_downtime_ms ? (double)vm->cfg.max_downtime_ms : 20.0;
	uint64_t prev_n = UINT64_MAX;
	for (m->rounds = 1;; m->rounds++) {
		if (atomic_load(&vm->life.stopping))
			return sbx_fail(m->err, sizeof(m->err), -ESRCH,
					"the sandbox ended during the migration");
		/* The monitor marks a page before it writes it, and its writes happen under
		 * ring_lock: holding it, the marks can be taken. A host call that blocks (a
		 * read of an idle pipe, a SLEEP) holds the lock for long: then the marks are
		 * only read, those pages go again in later rounds, and the paused last round
		 * takes them for good. */
		int locked = lock_briefly(vm, 1);
		int64_t n = out_collect(m, locked);
		if (locked)
			pthread_mutex_unlock(&vm->proc.ring.lock);
		if (n < 0)
			return (int)n;
		double est = (double)n * (SBX_PAGE_SIZE + 8) / m->bw;
		sbx_log(vm, 1, "migration round %u: %lld dirty pages, ~%.2f ms to send", m->rounds,
			(long long)n, est);
		/* Stop when what is left fits the target, but keep going while rounds still
		 * shrink it well: each one leaves less to send while the guest is paused. */
		if (m->rounds >= max_rounds ||
		    (est <= target / 2 && (n <= 64 || n > (int64_t)(prev_n / 2))))
			return 0;
		prev_n = (uint64_t)n;
		int r = out_send(m, 0);
		if (r < 0)
			return r;
	}
}

/* Stop and copy: the guest paused, its last pages and its state sent, until the destination
 * is READY. Past this point this monitor never runs the guest again (m->gave_up). */
static int out_stop_and_copy(struct mig_out *m)
{
	struct sbx_vm *vm = m->vm;
	const uint8_t *body;
	size_t len, blen;
	/* Drain the destination's backlog (a few MB of socket buffers) while the guest still
	 * runs, then stop and copy. */
	int r = mig_stream_send(m->s, MSG_SYNC, NULL, 0, NULL, 0, m->err, sizeof(m->err));
	if (r < 0 || (r = expect(m->s, MSG_SYNCED, &body, &len, m->err, sizeof(m->err))) < 0)
		return r;
	if ((r = sbx_pause_hold(vm, 5000, &m->was_paused)) < 0)
		return sbx_fail(m->err, sizeof(m->err), r, "cannot pause the sandbox: %s",
				strerror(-r));
	m->paused = 1;
	double pause_at = mono_ms();
	int64_t n = out_collect(m, 1); /* paused: every write is done */
	if (n < 0)
		return (int)n;
	double t_pages = mono_ms();
	if ((r = out_send(m, 0)) < 0)
		return r;
	double t_state = mono_ms();
	if ((r = sbx_state_blob(vm, &m->blob, &blen, m->err, sizeof(m->err))) < 0)
		return r;
	double t_sent = mono_ms();
	uint8_t sh[12];
	m->last_exit = sbx_ts_ns(&vm->life.last_exit_at);
	memcpy(sh, &m->last_exit, 8);
	memcpy(sh + 8, &m->rounds, 4);
	if ((r = mig_stream_send(m->s, MSG_STATE, sh, sizeof(sh), m->blob, blen, m->err,
				 sizeof(m->err))) < 0 ||
	    (r = expect(m->s, MSG_READY, &body, &len, m->err, sizeof(m->err))) < 0)
		return r;
	if (atomic_load(&vm->life.stopping)) /* ended while paused (a time limit): here */
		return sbx_fail(m->err, sizeof(m->err), -ESRCH,
				"the sandbox ended during the migration: %.300s",
				vm->life.stop.reason);
	m->gave_up = 1;
	sbx_log(vm, 1,
		"migration stop-and-copy: pause %.2f ms, %lld last pages %.2f ms, state (%zu "
		"bytes) %.2f ms, until READY %.2f ms",
		t_pages - pause_at, (long long)n, t_state - t_pages, blen, t_sent - t_state,
		mono_ms() - t_sent);
	m->wire_ms = mono_ms() - pause_at;
	return 0;
}

/* GO, and the destination's word that the guest runs there: the sandbox here is detached,
 * or, without that word, lost. msg tells which. */
static int out_handover(struct mig_out *m, const char *addr, char *msg, size_t msglen)
{
	struct sbx_vm *vm = m->vm;
	const uint8_t *body;
	size_t len;
	int r = mig_stream_send(m->s, MSG_GO, NULL, 0, NULL, 0, m->err, sizeof(m->err));
	if (r == 0)
		r = expect(m->s, MSG_RESUMED, &body, &len, m->err, sizeof(m->err));
	if (r < 0 || len < 8) {
		sbx_vm_kill(vm, SBX_END_ERROR, SBX_STATUS_ERROR, 0,
			    "migration to %s: the destination did not confirm that it resumed "
			    "(%s); the sandbox may be lost",
			    addr, m->err[0] ? m->err : "short RESUMED");
		snprintf(msg, msglen, "%s", vm->life.stop.reason);
		return r < 0 ? r : -EPROTO;
	}
	int64_t first_run;
	memcpy(&first_run, body, 8);
	/* Unsigned: the peer's number may be anything. */
	double downtime = (double)(int64_t)((uint64_t)first_run - (uint64_t)m->last_exit) / 1e6;
	sbx_vm_kill(vm, SBX_END_DETACHED, 0, 0,
		    "migrated to %s: downtime %.2f ms (%.2f ms paused before READY), %u rounds, "
		    "%.1f MiB in %.0f ms",
		    addr, downtime, m->wire_ms, m->rounds,
		    (double)mig_stream_bytes_sent(m->s) / 1048576, mono_ms() - m->t0);
	snprintf(msg, msglen, "%s", vm->life.stop.reason);
	return 0;
}

int sbx_migrate_out(struct sbx_vm *vm, int fd, const char *addr, char *msg, size_t msglen)
{
	msg[0] = 0;
	if (!vm->cfg.migrate_key) {
		close(fd);
		return sbx_fail(msg, msglen, -EPERM,
				"sandbox-run was started without --migrate-key");
	}
	struct mig_out m = {.vm = vm, .t0 = mono_ms(), .had_logging = vm->proc.mem.dirty_logging};
	int r = out_open(&m, fd);
	if (r == 0)
		r = out_round0(&m);
	if (r == 0)
		r = out_precopy(&m);
	if (r == 0)
		r = out_stop_and_copy(&m);
	if (r == 0) {
		r = out_handover(&m, addr, msg, msglen);
	} else {
		snprintf(msg, msglen, "%s", m.err);
		if (m.s && r != -ECONNABORTED) {
			char e2[100];
			mig_stream_send(m.s, MSG_ERROR, m.err, strlen(m.err), NULL, 0, e2,
					sizeof(e2));
		}
	}
	if (!m.had_logging && !m.gave_up)
		sbx_dirty_stop(vm);
	if (m.paused && m.gave_up)
		sbx_vm_resume(vm); /* the kill is set: the vCPU thread sees it and ends */
	else if (m.paused)
		sbx_pause_release(vm, m.was_paused);
	mig_stream_close(m.s);
	free(m.blob);
	free(m.bitmap);
	free(m.b.data);
	return r;
}

/* ---- Destination ------------------------------------------------------------------------- */
static int apply_pages(struct sbx_vm *vm, const uint8_t *body, size_t len, char *err, size_t errlen)
{
	uint32_t n;
	if (len < 4)
		return sbx_fail(err, errlen, -EPROTO, "PAGES message of %zu bytes", len);
	memcpy(&n, body, 4);
	if (n == 0 || n > BATCH || len < 4 + 8ull * n)
		return sbx_fail(err, errlen, -EPROTO, "PAGES message with %u pages in %zu bytes", n,
				len);
	const uint8_t *data = body + 4 + 8ull * n;
	size_t ndata = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t e;
		memcpy(&e, body + 4 + 8ull * i, 8);
		ndata += !(e & 1);
	}
	if (len != 4 + 8ull * n + ndata * SBX_PAGE_SIZE)
		return sbx_fail(err, errlen, -EPROTO,
				"PAGES message of %zu bytes for %u pages (%zu with data)", len, n,
				ndata);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t e, gpa;
		memcpy(&e, body + 4 + 8ull * i, 8);
		gpa = e & ~1ull;
		uint8_t *p = sbx_gptr(vm, gpa, SBX_PAGE_SIZE);
		if (!p || (gpa & (SBX_PAGE_SIZE - 1))) {
			snprintf(err, errlen,
				 "PAGES message: page address 0x%llx outside guest RAM",
				 (unsigned long long)gpa);
			return -EPROTO;
		}
		if (e & 1) {
			memset(p, 0, SBX_PAGE_SIZE);
		} else {
			memcpy(p, data, SBX_PAGE_SIZE);
			data += SBX_PAGE_SIZE;
		}
	}
	return 0;
}

static int apply_state(struct sbx_vm *vm, const uint8_t *body, size_t len, char *err, size_t errlen)
{
	if (len < 12)
		return sbx_fail(err, errlen, -EPROTO, "STATE message of %zu bytes", len);
	int fd = memfd_create("sandbox-state", MFD_CLOEXEC);
	if (fd < 0)
		return sbx_fail(err, errlen, -errno, "memfd_create: %s", strerror(errno));
	int r = 0;
	if (write(fd, body + 12, len - 12) != (ssize_t)(len - 12)) {
		snprintf(err, errlen, "buffering the state: %s", strerror(errno));
		r = -EIO;
	}
	struct mig_snap_reader *rd = NULL;
	if (r == 0)
		r = mig_snap_open(&rd, fd, err, errlen);
	if (r == 0)
		r = sbx_state_apply(vm, rd, err, errlen);
	mig_snap_reader_free(rd);
	close(fd);
	return r;
}

static void say_resumed(struct sbx_vm *vm)
{
	char err[200];
	uint8_t b[8];
	int64_t t = sbx_ts_ns(&vm->life.first_run_at);
	memcpy(b, &t, 8);
	if (atomic_load(&vm->life.stopping)) {
		/* Setup here failed after GO (confinement, threads): the source must not report
		 * a success. */
		mig_stream_send(vm->incoming, MSG_ERROR, vm->life.stop.reason,
				strlen(vm->life.stop.reason), NULL, 0, err, sizeof(err));
	} else if (mig_stream_send(vm->incoming, MSG_RESUMED, b, 8, NULL, 0, err, sizeof(err)) <
		   0) {
		sbx_log(vm, 0, "migration: telling the source we resumed: %s", err);
	}
	mig_stream_close(vm->incoming);
	vm->incoming = NULL;
}

/* The connection's far end, for messages. */
static void peer_name(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN], port[8];
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0 || ss.ss_family == AF_UNIX ||
	    getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(buf, len, "a local process");
	else
		snprintf(buf, len, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

/* Connections on lfd until one proves the key: anyone can connect, so a stray connection (a
 * port scan, a wrong key, one that says nothing) is logged and the next one waited for, each
 * handshake bounded by the handshake timeout. Only after SBX_INCOMING_MAX_FAILURES failed
 * ones does the listener give up. */
static int accept_source(const struct sbx_config *cfg, const char *addr, int lfd,
			 struct mig_stream **s, char *e, size_t elen)
{
	int hs_ms =
	    cfg->handshake_timeout_ms ? (int)cfg->handshake_timeout_ms : SBX_HANDSHAKE_TIMEOUT_MS;
	char why[240], peer[64];
	for (unsigned failed = 0;;) {
		int fd = mig_accept(lfd, -1, e, elen);
		if (fd < 0)
			return fd;
		peer_name(fd, peer, sizeof(peer));
		int r = mig_stream_open(s, fd, cfg->migrate_key, 0, hs_ms, why, sizeof(why));
		if (r == 0)
			return 0;
		if (++failed >= SBX_INCOMING_MAX_FAILURES) {
			snprintf(
			    e, elen,
			    "%u connections failed the handshake, the last from %s: %s; giving "
			    "up",
			    failed, peer, why);
			return -ECONNREFUSED;
		}
		if (cfg->log) {
			fprintf(cfg->log,
				"%s: incoming migration on %s: connection from %s refused "
				"(%u of %u): %s; still listening\n",
				sbx_config_tool(cfg), addr, peer, failed, SBX_INCOMING_MAX_FAILURES,
				why);
			fflush(cfg->log);
		}
	}
}

/* The connection from a source that proved the key, on addr. */
static int in_connect(const struct sbx_config *cfg, const char *addr, struct mig_stream **s,
		      char *e, size_t elen)
{
	struct mig_addr a;
	int r = mig_addr_parse(addr, &a, e, elen);
	int lfd = r < 0 ? r : mig_listen(&a, e, elen);
	if (lfd < 0)
		return lfd;
	r = accept_source(cfg, addr, lfd, s, e, elen);
	close(lfd);
	if (a.family == AF_UNIX)
		unlink(a.path);
	if (r == 0)
		mig_stream_set_timeout(*s, STREAM_TIMEOUT_MS);
	return r;
}

/* HELLO: the size of guest RAM, checked, and a guest kernel this monitor speaks to. */
static int in_hello(struct mig_stream *s, uint64_t *mem_size, char *e, size_t elen)
{
	const uint8_t *body;
	size_t len;
	uint32_t type, abi;
	int r = mig_stream_recv(s, &type, &body, &len, e, elen);
	if (r < 0)
		return r;
	if (type != MSG_HELLO || len != 12)
		return sbx_fail(e, elen, -EPROTO,
				"migration stream: no HELLO first (type %u, %zu bytes)", type, len);
	memcpy(mem_size, body, 8);
	memcpy(&abi, body + 8, 4);
	if (!sbx_abi_ok(abi))
		return sbx_fail(e, elen, -EINVAL,
				"the source's guest kernel speaks ABI %u.%u, this monitor %u.%u",
				abi >> 16, abi & 0xffff, SBX_ABI_MAJOR, SBX_ABI_MINOR);
	if (*mem_size > MIG_SNAP_MAX_MEM)
		return sbx_fail(e, elen, -EINVAL, "guest RAM of %llu bytes is over the limit",
				(unsigned long long)*mem_size);
	return 0;
}

static int source_gave_up(const uint8_t *body, size_t len, char *e, size_t elen)
{
	char t[300];
	error_text(body, len, t, sizeof(t));
	return sbx_fail(e, elen, -ECONNABORTED, "the source gave up: %s", t);
}

/* Pages (and SYNCs) until the state, applied; then READY, and the source's GO. */
static int in_receive(struct sbx_vm *vm, struct mig_stream *s, char *e, size_t elen)
{
	const uint8_t *body;
	size_t len;
	uint32_t type;
	int r;
	for (;;) {
		if ((r = mig_stream_recv(s, &type, &body, &len, e, elen)) < 0)
			return r;
		if (type == MSG_PAGES)
			r = apply_pages(vm, body, len, e, elen);
		else if (type == MSG_SYNC)
			r = mig_stream_send(s, MSG_SYNCED, NULL, 0, NULL, 0, e, elen);
		else if (type == MSG_STATE)
			break;
		else if (type == MSG_ERROR)
			return source_gave_up(body, len, e, elen);
		else
			return sbx_fail(e, elen, -EPROTO,
					"migration stream: unexpected message type %u", type);
		if (r < 0)
			return r;
	}
	if ((r = apply_state(vm, body, len, e, elen)) < 0 ||
	    (r = mig_stream_send(s, MSG_READY, NULL, 0, NULL, 0, e, elen)) < 0 ||
	    (r = mig_stream_recv(s, &type, &body, &len, e, elen)) < 0)
		return r;
	if (type != MSG_GO)
		return sbx_fail(e, elen, -EPROTO,
				"migration stream: the source sent type %u instead of GO", type);
	return 0;
}

int sbx_vm_incoming(const struct sbx_config *cfg, const char *addr, struct sbx_vm **out, char *err,
		    size_t errlen)
{
	*out = NULL;
	char e[400] = "";
	struct mig_stream *s = NULL;
	struct sbx_vm *vm = NULL;
	uint64_t mem_size = 0;
	if (!cfg->migrate_key)
		return sbx_fail(err, errlen, -EPERM, "--incoming needs --migrate-key");
	int r = in_connect(cfg, addr, &s, e, sizeof(e));
	if (r == 0)
		r = in_hello(s, &mem_size, e, sizeof(e));
	/* The VM exists before the pages arrive, so creating it costs no downtime. */
	if (r == 0 && (r = sbx_vm_create_empty(cfg, mem_size, &vm, e, sizeof(e))) == 0)
		r = sbx_vm_empty_kvm(vm, e, sizeof(e));
	if (r == 0)
		r = in_receive(vm, s, e, sizeof(e));
	if (r < 0) {
		snprintf(err, errlen, "incoming migration on %s: %s", addr, e);
		if (s && r != -ECONNABORTED) {
			char e2[100];
			mig_stream_send(s, MSG_ERROR, e, strlen(e), NULL, 0, e2, sizeof(e2));
		}
		mig_stream_close(s);
		sbx_vm_destroy(vm);
		return r;
	}
	vm->incoming = s;
	vm->hooks.first_run = say_resumed;
	*out = vm;
	return 0;
}
