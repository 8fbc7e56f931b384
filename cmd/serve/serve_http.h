/* Inside sandbox-serve's HTTP front: what serve_http.c (the daemons, a request's life, its
 * body), serve_conn.c (connections and their request-head deadline) and serve_respond.c (the
 * request to the pool and the handler's CGI response to HTTP) share. */
#ifndef SBX_SERVE_HTTP_H
#define SBX_SERVE_HTTP_H

#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "serve.h"

/* A connection, from libmicrohttpd's NOTIFY_CONNECTION: its socket and, while a request head is
 * due on it, the deadline for all of that head. libmicrohttpd's own connection timeout starts
 * again at every byte, so a client that drips a header line now and then would hold the
 * connection (and its thread) for as long as it likes. */
struct conn {
	int fd; /* our dup of the socket: shutdown() through it ends the connection, and it
		   cannot be a reused number while we hold it */
	uint64_t deadline_ns; /* CLOCK_MONOTONIC; 0 while no head is due (in h->due or not) */
	struct conn *prev, *next;
	char addr[INET6_ADDRSTRLEN];
};

struct serve_http {
	struct serve_http_opts o;
	struct MHD_Daemon *d, *admin;
	unsigned port, admin_port;
	char host[256]; /* SERVER_NAME when the request has no Host */
	atomic_uint_fast64_t next_id;
	atomic_int active; /* requests between their first line and the end of the response */
	atomic_int draining;
	atomic_uint_fast64_t body_bytes; /* buffered request bodies, all connections */
	/* Connections a request head is due on, earliest deadline first (every deadline is now
	 * plus the same timeout, so appending keeps the order), and the thread that closes the
	 * ones past it. */
	pthread_mutex_t conn_mu;
	pthread_cond_t conn_cv;
	struct conn *due_first, *due_last;
	pthread_t reaper;
	int reaper_started, reaper_stop;
	uint64_t log_sec, log_lines, log_dropped; /* mhd_log's rate limit (under conn_mu) */
};

/* A request, from its first line to the end of its response. */
struct req {
	uint64_t id;
	struct timespec t0;
	char *uri; /* as the client sent it */
	const char *method, *version;
	char *body;
	size_t len, cap;
	uint64_t discarded;
	int too_large, started;
	int status, instance;
	uint64_t bytes;
};

/* serve_conn.c */
uint64_t serve_mono_ns(void);
/* libmicrohttpd's MHD_OPTION_NOTIFY_CONNECTION. */
void serve_conn_notify(void *cls, struct MHD_Connection *c, void **socket_context,
		       enum MHD_ConnectionNotificationCode code);
/* The connection's own record, or NULL. */
struct conn *serve_conn_of(struct MHD_Connection *c);
/* A request head is due on k from now (its last response went); or it came (head_done). */
void serve_head_due(struct serve_http *h, struct conn *k);
void serve_head_done(struct serve_http *h, struct MHD_Connection *c);
/* The client's numeric address and port (port may be NULL). 0, or -1 when unknown. */
int serve_client_addr(struct MHD_Connection *c, char *addr, size_t addrlen, char *port,
		      size_t portlen);
/* The thread that closes connections whose head is late. -errno with err set. */
int serve_reaper_start(struct serve_http *h, char *err, size_t errlen);
void serve_reaper_stop(struct serve_http *h);

/* serve_respond.c */
/* A short text response of serve's own (errors), with the request id; extra_name may add one
 * header (Retry-After, Connection). */
enum MHD_Result serve_reply(struct serve_http *h, struct MHD_Connection *c, struct req *r,
			    int status, const char *text, const char *extra_name,
			    const char *extra_value);
/* The request through the pool, answered: the handler's response, or serve's own error. */
enum MHD_Result serve_run_request(struct serve_http *h, struct MHD_Connection *c, struct req *r,
				  const char *url);

#endif
