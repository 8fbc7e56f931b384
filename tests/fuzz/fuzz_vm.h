/* What the two fuzz targets that build a VM without KVM (fuzz_ring, fuzz_state) share. */
#ifndef SBX_FUZZ_VM_H
#define SBX_FUZZ_VM_H

#include "policy.h"
#include "sandbox_priv.h"

/* Writes "hello\n" to dir/file; aborts if it cannot. */
void fuzz_hello_file(const char *dir);
/* Mounts the host folder dir at the guest path at (read-write if rw); aborts if it cannot. */
void fuzz_mount(struct policy *pol, const char *dir, const char *at, int rw);
/* cfg for program "fuzz" under pol: 16 MiB, no stdin, stdout, stderr and log to /dev/null. */
void fuzz_config(struct sbx_config *cfg, struct policy *pol);

#endif
