/* Shared file mappings (MAP_SHARED of a file): the guest's handle, checked against how it was
 * opened and the policy, becomes a window of guest-physical memory onto the host file
 * (core/shmap.c). docs/architecture.md, "Shared file mappings", has the design and costs. */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "calls.h"

int sbx_shmap_check(uint64_t off, uint64_t len, uint64_t prot, int accmode, int mount_writable)
{
	if (prot & ~(uint64_t)(SBX_PROT_READ | SBX_PROT_WRITE | SBX_PROT_EXEC))
		return -EINVAL;
	if (!len || (off & (SBX_PAGE_SIZE - 1)) || off > INT64_MAX - SBX_SHMAP_WINDOW)
		return -EINVAL;
	if (len > SBX_SHMAP_WINDOW)
		return -ENOMEM;
	if (accmode == O_WRONLY)
		return -EACCES; /* as Linux: every mapping reads */
	if ((prot & SBX_PROT_WRITE) && (accmode != O_RDWR || !mount_writable))
		return -EACCES;
	return 0;
}

int64_t sbx_hc_mmap_shared(struct sbx_vm *vm, const struct sbx_slot *s)
{
	uint64_t off = s->u.a[1], prot = s->u.a[3];
	uint64_t len = (s->u.a[2] + SBX_PAGE_SIZE - 1) & ~(SBX_PAGE_SIZE - 1);
	if (len < s->u.a[2])
		return -ENOMEM;
	struct sbx_handle *h = sbx_fd_get(vm, (int64_t)s->u.a[0]);
	if (!h)
		return -EBADF;
	if (h->kind == SBX_H_VFILE && h->vnode == SBX_V_ZERO)
		return 0; /* /dev/zero: private anonymous memory, as long as there is one process */
	/* stdio is the user's own file, not the guest's to map. */
	if (h->kind != SBX_H_HOST || h->stdio >= 0)
		return -ENODEV;
	struct stat st;
	if (fstat(h->fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -ENODEV;
	int fl = fcntl(h->fd, F_GETFL);
	if (fl < 0)
		return -errno;
	int r = sbx_shmap_check(off, len, prot, fl & O_ACCMODE, h->writable);
	if (r < 0)
		return r;
	/* Writable on the host whenever the guest may make it writable later (mprotect). */
	int may_write = (fl & O_ACCMODE) == O_RDWR && h->writable;
	uint64_t gpa = 0;
	r = sbx_shmap_add(vm, h->fd, off, len, may_write, h->gpath, &gpa);
	return r < 0 ? r : (int64_t)(gpa | (uint64_t)may_write);
}

int64_t sbx_hc_munmap_shared(struct sbx_vm *vm, const struct sbx_slot *s)
{
	struct sbx_shmap *m = sbx_shmap_at(vm, s->u.a[0]);
	if (!m)
		return -EINVAL;
	sbx_shmap_remove(vm, m);
	return 0;
}

int64_t sbx_hc_msync(struct sbx_vm *vm, const struct sbx_slot *s)
{
	uint64_t gpa = s->u.a[0], len = s->u.a[1];
	struct sbx_shmap *m = sbx_shmap_find(vm, gpa);
	if (!m || (gpa & (SBX_PAGE_SIZE - 1)))
		return -ENOMEM;
	uint64_t at = gpa - m->gpa;
	if (len > m->len - at)
		return -ENOMEM;
	return msync(m->host + at, len, MS_SYNC) < 0 ? -errno : 0;
}
