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

static int64_t rt_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000ll + t->tv_nsec;
}

static double mono_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
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
	uint64_t nw = (vm->proc.mem.size / SBX_PAGE_SIZE + 63) / 64;
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

/* ring_lock within a millisecond, or not: a host call that blocks holds it for long. */
static int lock_briefly(struct sbx_vm *vm, int ms)
{
	/* A SLEEP holds the lock for as long as it sleeps: cut it short (the guest kernel
	 * sleeps again for the rest). */
	atomic_fetch_add(&vm->life.nudge, 1);
	syscall(SYS_futex, &vm->life.stopping, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_nsec += ms * 1000000l;
	while (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}
	return pthread_mutex_timedlock(&vm->proc.ring.lock, &dl) == 0;
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
		snprintf(err, errlen, "the destination refused: %s", t);
		return -ECONNABORTED;
	}
	if (type != want) {
		snprintf(err, errlen, "migration stream: message type %u where %u was due", type,
			 want);
		return -EPROTO;
	}
	return 0;
}

int sbx_migrate_out(struct sbx_vm *vm, int fd, const char *addr, char *msg, size_t msglen)
{
	char err[400] = "";
	msg[0] = 0;
	if (!vm->cfg.migrate_key) {
		close(fd);
		snprintf(msg, msglen, "sandbox-run was started without --migrate-key");
		return -EPERM;
	}
	struct mig_stream *s = NULL;
	uint64_t nw = (vm->proc.mem.size / SBX_PAGE_SIZE + 63) / 64, sent = 0, prev_n = UINT64_MAX;
	uint64_t *bitmap = calloc(nw, sizeof(uint64_t));
	struct batch b = {.data = malloc(BATCH * SBX_PAGE_SIZE)};
	int had_logging = vm->proc.mem.dirty_logging, paused = 0, was_paused = 0, gave_up = 0,
	    r = -ENOMEM;
	unsigned rounds = 0, max_rounds = vm->cfg.max_rounds ? vm->cfg.max_rounds : 30;
	double target = vm->cfg.max_downtime_ms ? (double)vm->cfg.max_downtime_ms : 20.0;
	double t0 = mono_ms();
	uint8_t *blob = NULL;
	if (!bitmap || !b.data) {
		close(fd);
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	if (had_logging) {
		/* Its dirty log belongs to a reset snapshot, whose next reset would miss the
		 * pages this migration's rounds took from it. */
		close(fd);
		snprintf(err, sizeof(err), "a reset snapshot is tracking this sandbox's pages");
		r = -EBUSY;
		goto fail;
	}
	if ((r = mig_stream_open(&s, fd, vm->cfg.migrate_key, 1, STREAM_TIMEOUT_MS, err,
				 sizeof(err))) < 0)
		goto fail;
	uint8_t hello[12];
	uint32_t abi = vm->proc.image.khdr.abi_version;
	memcpy(hello, &vm->proc.mem.size, 8);
	memcpy(hello + 8, &abi, 4);
	if ((r = mig_stream_send(s, MSG_HELLO, hello, sizeof(hello), NULL, 0, err, sizeof(err))) <
	    0)
		goto fail;
	/* Logging first, then the copy: a page written during the copy is sent again. */
	if ((r = sbx_dirty_start(vm, err, sizeof(err))) < 0)
		goto fail;
	/* A request being served since before tracking began may write without a mark. */
	/* Not in a hurry here: marking all of RAM again costs a whole extra round. */
	if (lock_briefly(vm, 50))
		pthread_mutex_unlock(&vm->proc.ring.lock);
	else
		atomic_store(&vm->proc.mem.remark_all, 1);
	sbx_mem_extents(vm, 0, mark_range, bitmap);
	double rt0 = mono_ms();
	uint64_t before = mig_stream_bytes_sent(s);
	if ((r = send_pages(vm, s, bitmap, 1, &b, &sent, err, sizeof(err))) < 0)
		goto fail;
	/* Bytes per millisecond, from the last round that moved enough to measure. */
	double bw = (double)(mig_stream_bytes_sent(s) - before) / (mono_ms() - rt0 + 1e-3);
	for (rounds = 1;; rounds++) {
		if (atomic_load(&vm->life.stopping)) {
			snprintf(err, sizeof(err), "the sandbox ended during the migration");
			r = -ESRCH;
			goto fail;
		}
		/* The monitor marks a page before it writes it, and its writes happen under
		 * ring_lock: holding it, the marks can be taken. A host call that blocks (a
		 * read of an idle pipe, a SLEEP) holds the lock for long: then the marks are
		 * only read, those pages go again in later rounds, and the paused last round
		 * takes them for good. */
		int locked = lock_briefly(vm, 1);
		int64_t n = sbx_dirty_collect(vm, bitmap, locked);
		if (locked)
			pthread_mutex_unlock(&vm->proc.ring.lock);
		if (n < 0) {
			r = (int)n;
			snprintf(err, sizeof(err), "KVM_GET_DIRTY_LOG: %s", strerror((int)-n));
			goto fail;
		}
		double est = (double)n * (SBX_PAGE_SIZE + 8) / bw;
		sbx_log(vm, 1, "migration round %u: %lld dirty pages, ~%.2f ms to send", rounds,
			(long long)n, est);
		/* Stop when what is left fits the target, but keep going while rounds still
		 * shrink it well: each one leaves less to send while the guest is paused. */
		if (rounds >= max_rounds ||
		    (est <= target / 2 && (n <= 64 || n > (int64_t)(prev_n / 2))))
			break;
		prev_n = (uint64_t)n;
		rt0 = mono_ms();
		before = mig_stream_bytes_sent(s);
		if ((r = send_pages(vm, s, bitmap, 0, &b, &sent, err, sizeof(err))) < 0)
			goto fail;
		uint64_t moved = mig_stream_bytes_sent(s) - before;
		if (moved > (1u << 20))
			bw = (double)moved / (mono_ms() - rt0 + 1e-3);
	}
	/* Drain the destination's backlog (a few MB of socket buffers) while the guest still
	 * runs, then stop and copy. */
	const uint8_t *body;
	size_t len;
	if ((r = mig_stream_send(s, MSG_SYNC, NULL, 0, NULL, 0, err, sizeof(err))) < 0 ||
	    (r = expect(s, MSG_SYNCED, &body, &len, err, sizeof(err))) < 0)
		goto fail;
	if ((r = sbx_pause_hold(vm, 5000, &was_paused)) < 0) {
		snprintf(err, sizeof(err), "cannot pause the sandbox: %s", strerror(-r));
		goto fail;
	}
	paused = 1;
	double pause_at = mono_ms();
	int64_t n = sbx_dirty_collect(vm, bitmap, 1); /* paused: every write is done */
	if (n < 0) {
		r = (int)n;
		snprintf(err, sizeof(err), "KVM_GET_DIRTY_LOG: %s", strerror((int)-n));
		goto fail;
	}
	double t_pages = mono_ms();
	if ((r = send_pages(vm, s, bitmap, 0, &b, &sent, err, sizeof(err))) < 0)
		goto fail;
	double t_state = mono_ms();
	size_t blen;
	if ((r = sbx_state_blob(vm, &blob, &blen, err, sizeof(err))) < 0)
		goto fail;
	double t_sent = mono_ms();
	uint8_t sh[12];
	int64_t last_exit = rt_ns(&vm->life.last_exit_at);
	memcpy(sh, &last_exit, 8);
	memcpy(sh + 8, &rounds, 4);
	if ((r = mig_stream_send(s, MSG_STATE, sh, sizeof(sh), blob, blen, err, sizeof(err))) < 0)
		goto fail;
	if ((r = expect(s, MSG_READY, &body, &len, err, sizeof(err))) < 0)
		goto fail;
	if (atomic_load(&vm->life.stopping)) {
		/* Ended while paused (a time limit): it ends here, not there. */
		snprintf(err, sizeof(err), "the sandbox ended during the migration: %.300s",
			 vm->life.stop.reason);
		r = -ESRCH;
		goto fail;
	}
	/* The point of no return: from here on this monitor never runs the guest again. */
	gave_up = 1;
	sbx_log(vm, 1,
		"migration stop-and-copy: pause %.2f ms, %lld last pages %.2f ms, state (%zu "
		"bytes) %.2f ms, until READY %.2f ms",
		t_pages - pause_at, (long long)n, t_state - t_pages, blen, t_sent - t_state,
		mono_ms() - t_sent);
	double wire_ms = mono_ms() - pause_at;
	if ((r = mig_stream_send(s, MSG_GO, NULL, 0, NULL, 0, err, sizeof(err))) < 0 ||
	    (r = expect(s, MSG_RESUMED, &body, &len, err, sizeof(err))) < 0 || len < 8) {
		sbx_vm_kill(vm, SBX_END_ERROR, SBX_STATUS_ERROR, 0,
			    "migration to %s: the destination did not confirm that it resumed "
			    "(%s); the sandbox may be lost",
			    addr, err[0] ? err : "short RESUMED");
		snprintf(msg, msglen, "%s", vm->life.stop.reason);
		r = r < 0 ? r : -EPROTO;
		goto out;
	}
	int64_t first_run;
	memcpy(&first_run, body, 8);
	/* Unsigned: the peer's number may be anything. */
	double downtime = (double)(int64_t)((uint64_t)first_run - (uint64_t)last_exit) / 1e6;
	sbx_vm_kill(vm, SBX_END_DETACHED, 0, 0,
		    "migrated to %s: downtime %.2f ms (%.2f ms paused before READY), %u rounds, "
		    "%.1f MiB in %.0f ms",
		    addr, downtime, wire_ms, rounds, (double)mig_stream_bytes_sent(s) / 1048576,
		    mono_ms() - t0);
	snprintf(msg, msglen, "%s", vm->life.stop.reason);
	r = 0;
	goto out;
fail:
	snprintf(msg, msglen, "%s", err);
	if (s && r != -ECONNABORTED) {
		char e2[100];
		mig_stream_send(s, MSG_ERROR, err, strlen(err), NULL, 0, e2, sizeof(e2));
	}
out:
	if (!had_logging && !gave_up)
		sbx_dirty_stop(vm);
	if (paused && gave_up)
		sbx_vm_resume(vm); /* the kill is set: the vCPU thread sees it and ends */
	else if (paused)
		sbx_pause_release(vm, was_paused);
	mig_stream_close(s);
	free(blob);
	free(bitmap);
	free(b.data);
	return r;
}

/* ---- Destination ------------------------------------------------------------------------- */
static int apply_pages(struct sbx_vm *vm, const uint8_t *body, size_t len, char *err, size_t errlen)
{
	uint32_t n;
	if (len < 4) {
		snprintf(err, errlen, "PAGES message of %zu bytes", len);
		return -EPROTO;
	}
	memcpy(&n, body, 4);
	if (n == 0 || n > BATCH || len < 4 + 8ull * n) {
		snprintf(err, errlen, "PAGES message with %u pages in %zu bytes", n, len);
		return -EPROTO;
	}
	const uint8_t *data = body + 4 + 8ull * n;
	size_t ndata = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t e;
		memcpy(&e, body + 4 + 8ull * i, 8);
		ndata += !(e & 1);
	}
	if (len != 4 + 8ull * n + ndata * SBX_PAGE_SIZE) {
		snprintf(err, errlen, "PAGES message of %zu bytes for %u pages (%zu with data)",
			 len, n, ndata);
		return -EPROTO;
	}
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
	if (len < 12) {
		snprintf(err, errlen, "STATE message of %zu bytes", len);
		return -EPROTO;
	}
	int fd = memfd_create("sandbox-state", MFD_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "memfd_create: %s", strerror(errno));
		return -errno;
	}
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
	int64_t t = rt_ns(&vm->life.first_run_at);
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

int sbx_vm_incoming(const struct sbx_config *cfg, const char *addr, struct sbx_vm **out, char *err,
		    size_t errlen)
{
	*out = NULL;
	char e[400] = "";
	struct mig_addr a;
	struct mig_stream *s = NULL;
	struct sbx_vm *vm = NULL;
	int r, lfd = -1;
	if (!cfg->migrate_key) {
		snprintf(err, errlen, "--incoming needs --migrate-key");
		return -EPERM;
	}
	if ((r = mig_addr_parse(addr, &a, e, sizeof(e))) < 0 ||
	    (r = lfd = mig_listen(&a, e, sizeof(e))) < 0)
		goto fail;
	r = accept_source(cfg, addr, lfd, &s, e, sizeof(e));
	close(lfd);
	if (a.family == AF_UNIX)
		unlink(a.path);
	if (r < 0)
		goto fail;
	mig_stream_set_timeout(s, STREAM_TIMEOUT_MS);
	const uint8_t *body;
	size_t len;
	uint32_t type;
	if ((r = mig_stream_recv(s, &type, &body, &len, e, sizeof(e))) < 0)
		goto fail;
	uint64_t mem_size;
	uint32_t abi;
	if (type != MSG_HELLO || len != 12) {
		snprintf(e, sizeof(e), "migration stream: no HELLO first (type %u, %zu bytes)",
			 type, len);
		r = -EPROTO;
		goto fail;
	}
	memcpy(&mem_size, body, 8);
	memcpy(&abi, body + 8, 4);
	if (!sbx_abi_ok(abi)) {
		snprintf(e, sizeof(e),
			 "the source's guest kernel speaks ABI %u.%u, this monitor %u.%u",
			 abi >> 16, abi & 0xffff, SBX_ABI_MAJOR, SBX_ABI_MINOR);
		r = -EINVAL;
		goto fail;
	}
	if (mem_size > MIG_SNAP_MAX_MEM) {
		snprintf(e, sizeof(e), "guest RAM of %llu bytes is over the limit",
			 (unsigned long long)mem_size);
		r = -EINVAL;
		goto fail;
	}
	/* The VM exists before the pages arrive, so creating it costs no downtime. */
	if ((r = sbx_vm_create_empty(cfg, mem_size, &vm, e, sizeof(e))) < 0 ||
	    (r = sbx_vm_empty_kvm(vm, e, sizeof(e))) < 0)
		goto fail;
	for (;;) {
		if ((r = mig_stream_recv(s, &type, &body, &len, e, sizeof(e))) < 0)
			goto fail;
		if (type == MSG_PAGES) {
			if ((r = apply_pages(vm, body, len, e, sizeof(e))) < 0)
				goto fail;
		} else if (type == MSG_SYNC) {
			if ((r = mig_stream_send(s, MSG_SYNCED, NULL, 0, NULL, 0, e, sizeof(e))) <
			    0)
				goto fail;
		} else if (type == MSG_STATE) {
			if ((r = apply_state(vm, body, len, e, sizeof(e))) < 0)
				goto fail;
			break;
		} else if (type == MSG_ERROR) {
			char t[300];
			error_text(body, len, t, sizeof(t));
			snprintf(e, sizeof(e), "the source gave up: %s", t);
			r = -ECONNABORTED;
			goto fail;
		} else {
			snprintf(e, sizeof(e), "migration stream: unexpected message type %u",
				 type);
			r = -EPROTO;
			goto fail;
		}
	}
	if ((r = mig_stream_send(s, MSG_READY, NULL, 0, NULL, 0, e, sizeof(e))) < 0 ||
	    (r = mig_stream_recv(s, &type, &body, &len, e, sizeof(e))) < 0)
		goto fail;
	if (type != MSG_GO) {
		snprintf(e, sizeof(e), "migration stream: the source sent type %u instead of GO",
			 type);
		r = -EPROTO;
		goto fail;
	}
	sbx_kvm_close_dev(vm);
	vm->incoming = s;
	vm->hooks.first_run = say_resumed;
	*out = vm;
	return 0;
fail:
	snprintf(err, errlen, "incoming migration on %s: %s", addr, e);
	if (s && r != -ECONNABORTED) {
		char e2[100];
		mig_stream_send(s, MSG_ERROR, e, strlen(e), NULL, 0, e2, sizeof(e2));
	}
	mig_stream_close(s);
	sbx_vm_destroy(vm);
	return r;
}
