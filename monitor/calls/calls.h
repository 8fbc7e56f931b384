/* Handlers behind the hypercall table (hypercalls.c), grouped by what they touch. */
#ifndef SBX_HYPERCALLS_H
#define SBX_HYPERCALLS_H

#include "vm.h"

/* hc_io.c: calls on an open handle */
int64_t sbx_hc_read(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_write(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_readv(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_writev(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_close(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_fstat(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_lseek(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_getdents(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_ftruncate(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_fsync(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_dup(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_fcntl(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_nofile(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_ioctl(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_poll(struct sbx_vm *vm, const struct sbx_slot *s);

/* hc_path.c: calls that name a path */
int64_t sbx_hc_open(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_stat(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_readlink(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_mkdir(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_unlink(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_rename(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_chdir(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_getcwd(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_access(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_chmod(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_utimens(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_statfs(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_symlink(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_link(struct sbx_vm *vm, const struct sbx_slot *s);

/* Shared by the stat paths. */
struct stat;
void sbx_vdir_stat(struct sbx_vm *vm, const char *gpath, struct stat *st);
int sbx_put_stat(struct sbx_vm *vm, uint64_t buf, uint64_t len, const struct stat *st);

#endif
