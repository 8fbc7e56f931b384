/* The guest's handle table: guest fd numbers index it; host fds never reach the guest. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vm.h"

void sbx_fd_init(struct sbx_vm *vm)
{
	memset(vm->fds, 0, sizeof(vm->fds));
	const int host[3] = {vm->cfg.stdin_fd, vm->cfg.stdout_fd, vm->cfg.stderr_fd};
	for (int i = 0; i < 3; i++) {
		if (host[i] < 0)
			continue;
		/* A private copy: the guest closing its fd 2 must not close the monitor's stderr.
		 */
		int fd = fcntl(host[i], F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			continue;
		vm->fds[i] =
		    (struct sbx_handle){.kind = SBX_H_HOST, .fd = fd, .writable = 1, .stdio = i};
	}
}

struct sbx_handle *sbx_fd_get(struct sbx_vm *vm, int64_t fd)
{
	if (fd < 0 || fd >= SBX_MAX_FDS || vm->fds[fd].kind == SBX_H_FREE)
		return NULL;
	return &vm->fds[fd];
}

int sbx_fd_room(struct sbx_vm *vm)
{
	uint64_t max = vm->cfg.policy->lim.max_files;
	if (!max)
		return 0;
	int used = 0;
	for (int i = 0; i < SBX_MAX_FDS; i++)
		used += vm->fds[i].kind != SBX_H_FREE;
	if (max && (uint64_t)used >= max) {
		sbx_vm_kill(vm, SBX_END_LIMIT, SBX_STATUS_LIMIT_FILES, 0,
			    "open-files limit reached: --max-files %llu", (unsigned long long)max);
		return -1;
	}
	return 0;
}

int sbx_fd_alloc(struct sbx_vm *vm, int lowest)
{
	if (sbx_fd_room(vm) < 0)
		return -1;
	for (int i = lowest < 0 ? 0 : lowest; i < SBX_MAX_FDS; i++)
		if (vm->fds[i].kind == SBX_H_FREE)
			return i;
	return -1;
}

void sbx_fd_release(struct sbx_vm *vm, int fd)
{
	struct sbx_handle *h = &vm->fds[fd];
	if (h->kind == SBX_H_HOST && h->fd >= 0)
		close(h->fd);
	free(h->gpath);
	memset(h, 0, sizeof(*h));
}

void sbx_fd_close_all(struct sbx_vm *vm)
{
	for (int i = 0; i < SBX_MAX_FDS; i++)
		if (vm->fds[i].kind != SBX_H_FREE)
			sbx_fd_release(vm, i);
}
