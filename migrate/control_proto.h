/* The control socket's wire protocol (sandbox-run --control SOCK), spoken by the monitor
 * (monitor/control.c) and by sandbox-ctl (monitor/ctl_main.c); both take every word, limit and
 * timeout of it from here.
 *
 * A unix stream socket (mode 0600), one client at a time, one command per connection. Every
 * message is one line ending in '\n', at most MIG_CTL_LINE_MAX bytes with it, sent whole:
 *   client  -> monitor  "COMMAND[ ARGS]", with a descriptor attached (SCM_RIGHTS) for the
 *                       commands that write somewhere: the snapshot file, the connection to a
 *                       migration destination. The client opens them with its own rights, so
 *                       the confined monitor never opens a path or a connection itself.
 *   monitor -> client   reply lines; the last starts with MIG_CTL_OK or MIG_CTL_ERROR.
 * A snapshot has one step more: once the file is written the monitor says "wrote N pages" and
 * waits; the client puts the file in place and answers "committed" (or "abort" when it could
 * not); only then does the monitor go on (the sandbox stops unless --leave-running) and send
 * its last line. */
#ifndef SBX_CONTROL_PROTO_H
#define SBX_CONTROL_PROTO_H

#include <stddef.h>

#include "migrate.h"

/* ---- commands -------------------------------------------------------------------------------- */

#define MIG_CTL_PAUSE "pause"
#define MIG_CTL_RESUME "resume"
#define MIG_CTL_STATS "stats"
#define MIG_CTL_SNAPSHOT "snapshot" /* [--leave-running] [--compress]; the file attached */
#define MIG_CTL_MIGRATE "migrate"   /* ADDR; the connection to ADDR attached */
#define MIG_CTL_COMMANDS                                                                           \
	MIG_CTL_PAUSE ", " MIG_CTL_RESUME ", " MIG_CTL_STATS ", " MIG_CTL_SNAPSHOT                 \
		      ", " MIG_CTL_MIGRATE
#define MIG_CTL_LEAVE_RUNNING "--leave-running"
#define MIG_CTL_COMPRESS "--compress"

/* ---- replies --------------------------------------------------------------------------------- */

#define MIG_CTL_OK "ok"
#define MIG_CTL_ERROR "error"
#define MIG_CTL_WROTE "wrote"	      /* "wrote N pages": the snapshot's file is written */
#define MIG_CTL_COMMITTED "committed" /* the client's answer: the file is in place */
#define MIG_CTL_ABORT "abort"	      /* the client's answer: it could not put it in place */

/* ---- limits and timeouts --------------------------------------------------------------------- */

#define MIG_CTL_LINE_MAX 1024 /* one line, its '\n' included */
/* sandbox-ctl's wait for the control socket, and then for a migration destination. */
#define MIG_CTL_CONNECT_MS 5000
/* A client has this long to send its command once connected: sandbox-ctl connects to the
 * control socket before it connects to a migration destination, so that a dead socket costs no
 * destination its connection. */
#define MIG_CTL_COMMAND_WAIT_MS 15000
#define MIG_CTL_PAUSE_MS 5000	     /* the monitor's wait for the vCPU to stop */
#define MIG_CTL_COMMIT_WAIT_MS 60000 /* from "wrote" to the client's "committed" */
_Static_assert(MIG_CTL_COMMAND_WAIT_MS > MIG_CTL_CONNECT_MS,
	       "a client that connects to a destination first still gets its command in");

/* ---- messages -------------------------------------------------------------------------------- */

/* The control socket at path as an address (for mig_listen or mig_connect). */
int mig_ctl_addr(const char *path, struct mig_addr *a, char *err, size_t errlen);
/* One line (printf format; '\n' appended, cut to MIG_CTL_LINE_MAX) with fd attached if >= 0.
 * 0 or -errno. */
__attribute__((format(printf, 3, 4))) int mig_ctl_send(int c, int fd, const char *fmt, ...);
/* The next message, waiting up to timeout_ms: its bytes NUL-terminated in buf (len bytes, at
 * most one line), and the descriptor attached in *fd (-1 if none; with fd NULL one is closed).
 * The byte count, or -ETIMEDOUT, -EPIPE (the client hung up) or -errno. */
long mig_ctl_recv(int c, char *buf, size_t len, int *fd, int timeout_ms);
/* line starts with word (a command or reply word from above). */
int mig_ctl_is(const char *line, const char *word);

#endif
