/* The monitor's own confinement (confine.c): a seccomp allowlist and Landlock rules. */
#ifndef SBX_CONFINE_H
#define SBX_CONFINE_H

#include "vm.h"

/* confine.c: after loading, before the first guest instruction, the monitor confines itself
 * (seccomp allowlist, Landlock on the mount roots). Returns 0 or -errno with err set. */
int sbx_confine(struct sbx_vm *vm, char *err, size_t errlen);
/* The seccomp allowlist alone, with the same table and SIGSYS report, on the calling thread
 * only when vm->confine_thread. Never skipped in sanitizer builds: the ring fuzzer runs the
 * dispatcher under it (tests/fuzz/fuzz_ring.c). */
int sbx_confine_seccomp(struct sbx_vm *vm, char *err, size_t errlen);

/* The Landlock ABI version of this kernel, 0 without Landlock (confinement is then seccomp
 * only). */
int sbx_confine_landlock_abi(void);
#endif
