/* libsandbox: run a static x86-64 Linux ELF in its own KVM micro-VM. The front ends that link
 * it (sandbox-run, sandbox-serve, sandbox-fuzz, sandbox-stat) use only this header, through
 * cli.h, serve.h and fuzz.h; sandbox-ctl does not link it (it speaks to a monitor's control
 * socket). White-box tests and benchmarks include vm.h as well. */
#ifndef SBX_SANDBOX_H
#define SBX_SANDBOX_H

#include <stdio.h>

#include "sbx_types.h"

struct sbx_vm;

/* Runs a program to completion. Returns 0 with `res` filled in (whatever the guest did), or a
 * negative errno when the sandbox could not be set up, with res->reason saying why. */
int sbx_run(const struct sbx_config *cfg, struct sbx_result *res);
/* The same, calling hold(vm, ctx) once the sandbox exists (a front end keeps it for its signal
 * handler, attaches the control socket; a negative return ends it) and hold(NULL, ctx) before
 * it goes. */
int sbx_run_with(const struct sbx_config *cfg, struct sbx_result *res,
		 int (*hold)(struct sbx_vm *vm, void *ctx), void *ctx);

/* Finer control, for the tests, the benchmarks and the exec engine. */
int sbx_vm_create(const struct sbx_config *cfg, struct sbx_vm **out, char *err, size_t errlen);
int sbx_vm_load(struct sbx_vm *vm, char *err, size_t errlen);
int sbx_vm_run(struct sbx_vm *vm, struct sbx_result *res);
void sbx_vm_destroy(struct sbx_vm *vm);

/* The host path of the program (for a restored sandbox, the ELF its snapshot names if that
 * file still matches), or NULL. */
const char *sbx_vm_program(const struct sbx_vm *vm);
/* Stops the sandbox as if it were killed by `sig` (status 128+sig, SBX_END_KILLED): for a
 * front end's signal handler, so async-signal-safe. */
void sbx_vm_interrupt(struct sbx_vm *vm, int sig);
/* Pause and resume from another thread than the one in sbx_vm_run. */
int sbx_vm_pause(struct sbx_vm *vm, int timeout_ms);
void sbx_vm_resume(struct sbx_vm *vm);

/* The default view of a dynamic program (dynview.c): the files its interpreter opens to start
 * it (the interpreter, /etc/ld.so.cache, the DT_NEEDED closure, found as ld.so finds them
 * through what `p` already shows, else on the host) are added to `p` read-only at their paths,
 * each one a file mount; what `p` already shows is left to it. A static program adds nothing.
 * When `log` is set, each added file is named there, one line each, after `tool`. -ENOENT with
 * a line naming a missing library and the flag to add; other -errno for an unreadable or
 * malformed program or library. */
struct policy;
int sbx_dynamic_view(struct policy *p, const char *prog, const char *tool, FILE *log, char *err,
		     size_t errlen);

/* 1 when /dev/kvm is the PVM backend. */
int sbx_kvm_is_pvm(void);

#endif
