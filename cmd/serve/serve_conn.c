/* sandbox-serve's connections: the client's address, and the deadline for a whole request head
 * (--header-timeout), kept by a thread that closes the connections past it (serve_http.h). */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "serve_http.h"

uint64_t serve_mono_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

int serve_client_addr(struct MHD_Connection *c, char *addr, size_t addrlen, char *port,
		      size_t portlen)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (!ci || !ci->client_addr)
		return -1;
	socklen_t sl = ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
							      : sizeof(struct sockaddr_in);
	return getnameinfo(ci->client_addr, sl, addr, (socklen_t)addrlen, port, (socklen_t)portlen,
			   NI_NUMERICHOST | NI_NUMERICSERV) == 0
		   ? 0
		   : -1;
}

static void due_unlink(struct serve_http *h, struct conn *k)
{
	if (!k->deadline_ns)
		return;
	*(k->prev ? &k->prev->next : &h->due_first) = k->next;
	*(k->next ? &k->next->prev : &h->due_last) = k->prev;
	k->prev = k->next = NULL;
	k->deadline_ns = 0;
}

/* A request head is due on c from now (the connection opened, or its last response went). */
void serve_head_due(struct serve_http *h, struct conn *k)
{
	if (!k || !h->o.header_timeout_ms)
		return;
	pthread_mutex_lock(&h->conn_mu);
	due_unlink(h, k);
	k->deadline_ns = serve_mono_ns() + h->o.header_timeout_ms * 1000000ull;
	k->prev = h->due_last;
	*(h->due_last ? &h->due_last->next : &h->due_first) = k;
	h->due_last = k;
	if (h->due_first == k)
		pthread_cond_signal(&h->conn_cv);
	pthread_mutex_unlock(&h->conn_mu);
}

struct conn *serve_conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

void serve_head_done(struct serve_http *h, struct MHD_Connection *c)
{
	struct conn *k = serve_conn_of(c);
	if (!k)
		return;
	pthread_mutex_lock(&h->conn_mu);
	due_unlink(h, k);
	pthread_mutex_unlock(&h->conn_mu);
}

void serve_conn_notify(void *cls, struct MHD_Connection *c, void **socket_context,
		       enum MHD_ConnectionNotificationCode code)
{
	struct serve_http *h = cls;
	struct conn *k = *socket_context;
	if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (!k)
			return;
		pthread_mutex_lock(&h->conn_mu);
		due_unlink(h, k);
		close(k->fd);
		pthread_mutex_unlock(&h->conn_mu);
		free(k);
		*socket_context = NULL;
		return;
	}
	const union MHD_ConnectionInfo *fi =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	k = calloc(1, sizeof(*k));
	if (!k || !fi || (k->fd = fcntl(fi->connect_fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		serve_logf(h->o.log, "a connection without a deadline for its request head: %s",
			   strerror(k ? errno : ENOMEM));
		free(k);
		return;
	}
	if (serve_client_addr(c, k->addr, sizeof(k->addr), NULL, 0) < 0)
		snprintf(k->addr, sizeof(k->addr), "-");
	*socket_context = k;
	serve_head_due(h, k);
}

/* Closes the connections whose request head did not come complete in time. */
static void *reaper_main(void *arg)
{
	struct serve_http *h = arg;
	pthread_mutex_lock(&h->conn_mu);
	while (!h->reaper_stop) {
		struct conn *k = h->due_first;
		if (!k) {
			pthread_cond_wait(&h->conn_cv, &h->conn_mu);
			continue;
		}
		uint64_t now = serve_mono_ns();
		if (now < k->deadline_ns) {
			struct timespec ts = {.tv_sec = (time_t)(k->deadline_ns / 1000000000ull),
					      .tv_nsec = (long)(k->deadline_ns % 1000000000ull)};
			pthread_cond_timedwait(&h->conn_cv, &h->conn_mu, &ts);
			continue;
		}
		/* The connection's thread sees the end of its stream and closes it. */
		(void)shutdown(k->fd, SHUT_RDWR);
		due_unlink(h, k);
		char addr[sizeof(k->addr)];
		memcpy(addr, k->addr, sizeof(addr));
		pthread_mutex_unlock(&h->conn_mu);
		serve_logf(
		    h->o.log,
		    "connection from %s: no complete request head within --header-timeout %llu ms: "
		    "closed",
		    addr, (unsigned long long)h->o.header_timeout_ms);
		serve_metrics_count(h->o.metrics, &h->o.metrics->slow_heads);
		pthread_mutex_lock(&h->conn_mu);
	}
	pthread_mutex_unlock(&h->conn_mu);
	return NULL;
}

int serve_reaper_start(struct serve_http *h, char *err, size_t errlen)
{
	int r = -pthread_create(&h->reaper, NULL, reaper_main, h);
	if (r < 0)
		snprintf(err, errlen, "pthread_create: %s", strerror(-r));
	h->reaper_started = r == 0;
	return r;
}

void serve_reaper_stop(struct serve_http *h)
{
	if (!h->reaper_started)
		return;
	pthread_mutex_lock(&h->conn_mu);
	h->reaper_stop = 1;
	pthread_cond_signal(&h->conn_cv);
	pthread_mutex_unlock(&h->conn_mu);
	pthread_join(h->reaper, NULL);
	h->reaper_started = 0;
}
