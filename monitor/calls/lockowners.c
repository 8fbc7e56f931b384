/* Which process of the sandbox holds a record lock, for F_GETLK's l_pid (locks.c).
 *
 * The host keeps a sandbox's record locks as OFD locks (locks.c says why), and reports -1 as an
 * OFD lock's holder. A program that asks who holds a lock (`fcntl(F_GETLK)`, then perhaps
 * `kill` of that pid) needs the process, so the sandbox keeps its own list of the ranges each
 * of its processes holds on each file, changed as POSIX changes them (a lock replaces the same
 * process's locks it overlaps; an unlock cuts them), and dropped with them (a close of the file,
 * the process's end, a reset). The list only names holders: the host's locks decide who gets
 * a lock. One list for the sandbox, the first process's, shared by the others under its mutex. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "calls.h"

struct lockrec {
	uint32_t pid;
	short type; /* F_RDLCK or F_WRLCK */
	uint64_t dev, ino;
	int64_t start, end; /* [start, end); INT64_MAX: to the end of the file, however far */
};

struct sbx_lockreg {
	pthread_mutex_t mu;
	struct lockrec *v;
	unsigned n, cap;
};

struct sbx_lockreg *sbx_lockreg_new(void)
{
	struct sbx_lockreg *r = calloc(1, sizeof(*r));
	if (r)
		pthread_mutex_init(&r->mu, NULL);
	return r;
}

void sbx_lockreg_free(struct sbx_lockreg *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->mu);
	free(r->v);
	free(r);
}

/* Out of memory, the range goes unlisted: its holder is then named -1, nothing else. */
static void add(struct sbx_lockreg *r, struct lockrec rec)
{
	if (r->n == r->cap) {
		unsigned cap = r->cap ? 2 * r->cap : 8;
		struct lockrec *v = realloc(r->v, cap * sizeof(*v));
		if (!v)
			return;
		r->v = v;
		r->cap = cap;
	}
	r->v[r->n++] = rec;
}

int sbx_lock_range(const struct flock *fl, int64_t base, int64_t *start, int64_t *end)
{
	int64_t s;
	if (__builtin_add_overflow(base, (int64_t)fl->l_start, &s))
		return -EOVERFLOW;
	if (fl->l_len == 0) {
		*start = s;
		*end = INT64_MAX;
	} else if (fl->l_len > 0) {
		*start = s;
		if (__builtin_add_overflow(s, (int64_t)fl->l_len, end))
			*end = INT64_MAX;
	} else {
		*end = s;
		if (__builtin_add_overflow(s, (int64_t)fl->l_len, start) || *start < 0)
			return -EINVAL;
	}
	return *start < 0 ? -EINVAL : 0;
}

void sbx_lockreg_set(struct sbx_lockreg *r, uint32_t pid, uint64_t dev, uint64_t ino, int64_t start,
		     int64_t end, int type)
{
	if (!r || start >= end)
		return;
	pthread_mutex_lock(&r->mu);
	/* The process's own ranges the new one overlaps go, but for what lies outside it: at
	 * most a piece on each side, since one process's ranges never overlap. */
	struct lockrec keep[2];
	unsigned nk = 0;
	for (unsigned i = 0; i < r->n;) {
		struct lockrec o = r->v[i];
		if (o.pid != pid || o.dev != dev || o.ino != ino || o.end <= start ||
		    o.start >= end) {
			i++;
			continue;
		}
		r->v[i] = r->v[--r->n];
		if (o.start < start && nk < 2) {
			keep[nk] = o;
			keep[nk++].end = start;
		}
		if (o.end > end && nk < 2) {
			keep[nk] = o;
			keep[nk++].start = end;
		}
	}
	for (unsigned k = 0; k < nk; k++)
		add(r, keep[k]);
	if (type != F_UNLCK)
		add(r, (struct lockrec){pid, (short)type, dev, ino, start, end});
	pthread_mutex_unlock(&r->mu);
}

void sbx_lockreg_drop(struct sbx_lockreg *r, uint32_t pid, const uint64_t *dev, const uint64_t *ino)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	for (unsigned i = 0; i < r->n;) {
		if (r->v[i].pid == pid && (!dev || (r->v[i].dev == *dev && r->v[i].ino == *ino)))
			r->v[i] = r->v[--r->n];
		else
			i++;
	}
	pthread_mutex_unlock(&r->mu);
}

int32_t sbx_lockreg_holder(struct sbx_lockreg *r, uint32_t self, uint64_t dev, uint64_t ino,
			   int64_t start, int64_t end, int type)
{
	int32_t pid = -1;
	if (!r)
		return pid;
	pthread_mutex_lock(&r->mu);
	for (unsigned i = 0; i < r->n; i++) {
		const struct lockrec *o = &r->v[i];
		if (o->pid != self && o->dev == dev && o->ino == ino && o->type == type &&
		    o->start < end && start < o->end) {
			pid = (int32_t)o->pid;
			if (o->start == start && o->end == end)
				break; /* the very lock the host reported */
		}
	}
	pthread_mutex_unlock(&r->mu);
	return pid;
}
