/* memfd_create: a host memfd behind a handle, a file with no path (Linux's readlink names it
 * "/memfd:NAME (deleted)"). Its bytes are memory, not a mount's: --mem counts them with the
 * guest RAM of every process of the sandbox (the keeper, procs.c), and no --max-write does.
 * The sandbox's memfds are listed in the first process's limits, each with the number of
 * handles and windows (shared mappings) onto it in every process, so that a memfd is counted
 * once however many hold it, and only while one does. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "calls.h"

/* The memfds a sandbox may hold at once (its processes together). */
#define SBX_MEMFDS_MAX 1024

/* Linux's limit on the name, without the "memfd:" it prefixes. */
#define MEMFD_NAME_MAX 249
#define MEMFD_FLAGS (MFD_CLOEXEC | MFD_ALLOW_SEALING | 0x8u /* MFD_NOEXEC_SEAL */ | 0x10u)

struct sbx_memfd {
	atomic_uint refs; /* handles and windows onto it, in every process; 0: the next walk
			     frees it */
	int fd;		  /* the list's own duplicate, for its size */
	struct sbx_memfd *next;
};

static struct sbx_memfds *list_of(struct sbx_vm *vm)
{
	return vm->limits->tree ? &vm->limits->tree->memfds : &vm->limits->memfds;
}

/* Frees the memfds no handle holds any more. List lock held. */
static void sweep(struct sbx_memfds *l)
{
	for (struct sbx_memfd **p = &l->head; *p;) {
		struct sbx_memfd *m = *p;
		if (atomic_load(&m->refs)) {
			p = &m->next;
			continue;
		}
		*p = m->next;
		close(m->fd);
		free(m);
	}
}

int64_t sbx_hc_memfd(struct sbx_vm *vm, const struct sbx_slot *s)
{
	const struct sbx_path *a = &s->u.path;
	uint32_t fl = a->flags;
	char name[MEMFD_NAME_MAX + 1], g[sizeof("/memfd:") + MEMFD_NAME_MAX + sizeof(" (deleted)")];
	if (fl & ~MEMFD_FLAGS || a->path_len > MEMFD_NAME_MAX)
		return -EINVAL; /* MFD_HUGETLB too: no huge pages are the guest's to ask for */
	/* A repeated run's first process is never ended for --mem (it is parked between runs),
	 * so its memfds could not be held to it. */
	if (vm->opts.boot_flags & SBX_BOOT_EXEC) {
		sbx_log(vm, 1, "memfd_create in a repeated run (serve, fuzz) is not supported yet");
		return -ENOSYS;
	}
	if (sbx_copy_from_guest(vm, name, a->path, a->path_len) < 0)
		return -EFAULT;
	name[a->path_len] = 0;
	if (memchr(name, 0, a->path_len) || memchr(name, '/', a->path_len))
		return -EINVAL;
	snprintf(g, sizeof(g), "/memfd:%s (deleted)", name);
	struct sbx_memfd *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	int fd = memfd_create(name, (fl & ~MFD_CLOEXEC) | MFD_CLOEXEC);
	if (fd < 0 || (m->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		free(m);
		return -e;
	}
	atomic_init(&m->refs, 1);
	int64_t n = sbx_handle_add(vm, fd, SBX_O_MEMFD, (fl & MFD_CLOEXEC) != 0, 1);
	char *gp = n >= 0 ? strdup(g) : NULL;
	if (n >= 0 && !gp) {
		sbx_fd_release(vm, (int)n);
		n = -ENOMEM;
	}
	if (n < 0) {
		close(m->fd);
		free(m);
		return n;
	}
	struct sbx_handle *h = &vm->proc.files->fds[n];
	h->gpath = gp;
	h->memfd = m;
	h->may_block = 1;
	struct sbx_memfds *l = list_of(vm);
	pthread_mutex_lock(&l->lock);
	sweep(l);
	unsigned count = 0;
	for (struct sbx_memfd *o = l->head; o; o = o->next)
		count++;
	if (count < SBX_MEMFDS_MAX) {
		m->next = l->head;
		l->head = m;
	}
	pthread_mutex_unlock(&l->lock);
	if (count >= SBX_MEMFDS_MAX) {
		/* Each holds a descriptor of the monitor's; one sent and never read holds on. */
		sbx_log(vm, 1, "memfd_create: the sandbox holds %u memfds already", count);
		h->memfd = NULL;
		sbx_fd_release(vm, (int)n);
		close(m->fd);
		free(m);
		return -EMFILE;
	}
	/* Memory outside guest RAM: the keeper holds the sandbox to --mem from now on. */
	if (vm->hooks.mem_outside)
		vm->hooks.mem_outside(vm);
	return n;
}

struct sbx_memfd *sbx_memfd_find(struct sbx_vm *vm, const struct stat *st)
{
	struct sbx_memfds *l = list_of(vm);
	struct sbx_memfd *found = NULL;
	pthread_mutex_lock(&l->lock);
	for (struct sbx_memfd *m = l->head; m && !found; m = m->next) {
		struct stat ms;
		if (atomic_load(&m->refs) && fstat(m->fd, &ms) == 0 && ms.st_dev == st->st_dev &&
		    ms.st_ino == st->st_ino) {
			atomic_fetch_add(&m->refs, 1);
			found = m;
		}
	}
	pthread_mutex_unlock(&l->lock);
	return found;
}

void sbx_memfd_hold(struct sbx_memfd *m)
{
	if (m)
		atomic_fetch_add(&m->refs, 1);
}

void sbx_memfd_drop(struct sbx_memfd *m)
{
	if (m)
		atomic_fetch_sub(&m->refs, 1);
}

void sbx_memfd_ref_hold(void *ref, int delta)
{
	if (delta > 0)
		sbx_memfd_hold(ref);
	else
		sbx_memfd_drop(ref);
}

uint64_t sbx_memfd_bytes(struct sbx_vm *vm)
{
	if (!vm->limits)
		return 0;
	struct sbx_memfds *l = list_of(vm);
	uint64_t sum = 0;
	pthread_mutex_lock(&l->lock);
	sweep(l);
	for (struct sbx_memfd *m = l->head; m; m = m->next) {
		struct stat st;
		if (fstat(m->fd, &st) == 0)
			sum += (uint64_t)st.st_blocks * 512;
	}
	pthread_mutex_unlock(&l->lock);
	return sum;
}

void sbx_memfds_init(struct sbx_memfds *l)
{
	pthread_mutex_init(&l->lock, NULL);
	l->head = NULL;
}

void sbx_memfds_free(struct sbx_memfds *l)
{
	/* The handles are gone: every process of the tree has closed its table. */
	while (l->head) {
		struct sbx_memfd *m = l->head;
		l->head = m->next;
		close(m->fd);
		free(m);
	}
	pthread_mutex_destroy(&l->lock);
}
