/* Internal state of one sandbox. Only monitor/ includes this. */
#ifndef SBX_VM_H
#define SBX_VM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <time.h>
#include <stdatomic.h>
#include <stdint.h>

#include "loader.h"
#include "sandbox.h"
#include "report.h"
#include "sbx_abi.h"

#define SBX_MAX_FDS 1024

enum sbx_handle_kind { SBX_H_FREE, SBX_H_HOST, SBX_H_VDIR };

struct sbx_handle {
	enum sbx_handle_kind kind;
	int fd;		   /* host fd (SBX_H_HOST) */
	int cloexec;	   /* FD_CLOEXEC as the guest set it (no exec, kept for F_GETFD) */
	int writable;	   /* opened on a rw mount or stdio */
	char *gpath;	   /* normalised guest path (NULL for stdio) */
	uint64_t vdir_pos; /* SBX_H_VDIR: next entry index */
};

struct sbx_stop {
	enum sbx_end end;
	int status, signal;
	int vector; /* fault vector, -1 if none */
	int reported;
	int nodeliver; /* the kernel could not deliver an upcall's signal */
	int shutdown;  /* a triple fault */
	char reason[400];
};

struct sbx_vm {
	struct sbx_config cfg;
	int kvm_fd, vm_fd, vcpu_fd;
	struct kvm_run *run;
	size_t run_size;
	int is_pvm;
	int cpl; /* 0 or 3: the level of program and kernel */

	int mem_fd;
	uint8_t *mem;
	uint64_t mem_size;

	/* KVM objects are created on a helper thread while the ELF loads (on PVM they cost
	 * ~1 ms); sbx_vm_load joins it before touching the vCPU. */
	pthread_t kvm_thread;
	int kvm_thread_started;
	int kvm_result;
	char kvm_err[256];
	uint64_t xcr0;

	struct sbx_kernel_header khdr;
	struct loader_image img;
	uint64_t entry_rsp;
	uint64_t stack_guard; /* guest address of the stack guard page */
	char exe_path[256];

	/* Ring state: `ring_lock` makes the polling thread and the vCPU thread take turns. */
	pthread_mutex_t ring_lock;
	uint32_t ring_tail;
	int polling;
	pthread_t poller;
	int poller_started;
	atomic_int poll_stop;
	atomic_int poll_wake; /* futex word: bumped to wake the poller */
	int cpu_vcpu, cpu_poller;

	struct sbx_handle fds[SBX_MAX_FDS];

	/* Limits (limits.c). */
	uint64_t out_bytes, write_bytes;
	int limit_hit; /* a write was cut at a byte limit: SBX_STATUS_LIMIT_* */
	uint64_t limit_value;
	pthread_t watchdog;
	int watchdog_started;
	clockid_t vcpu_clock;
	int vcpu_clock_set;

	struct sbx_audit_ctx {
		int valid;
		char gpath[POLICY_PATH_MAX];
		char host[POLICY_PATH_MAX];
		char rule[300];
	} audit;
	char cwd[POLICY_PATH_MAX];

	atomic_int stopping; /* also a futex word: SLEEP waits on it */
	pthread_t vcpu_thread;
	int vcpu_thread_set;
	struct policy own_policy; /* used when the config brings none: no mounts */
	struct sbx_stop stop;
	/* The last CPU fault handed back to the guest as a signal, for the report when the
	 * delivery itself fails. */
	int upcall_pending;
	struct sbx_fault upcall_fault;
	struct sbx_stats stats;
	uint64_t call_count[SBX_CALL_COUNT];
};

/* boot.c */
int sbx_vm_create_bare(const struct sbx_config *cfg, struct sbx_vm **out, char *err, size_t errlen);

/* guest_mem.c: the only way to touch guest RAM. Addresses are guest-physical integers. */
int sbx_mem_create(struct sbx_vm *vm, uint64_t size, char *err, size_t errlen);
void sbx_mem_destroy(struct sbx_vm *vm);
void *sbx_gptr(struct sbx_vm *vm, uint64_t gpa, uint64_t len);
int sbx_copy_from_guest(struct sbx_vm *vm, void *dst, uint64_t gpa, uint64_t len);
int sbx_copy_to_guest(struct sbx_vm *vm, uint64_t gpa, const void *src, uint64_t len);

/* kvm.c */
int sbx_kvm_open(struct sbx_vm *vm, char *err, size_t errlen);
int sbx_kvm_create_vcpu(struct sbx_vm *vm, char *err, size_t errlen);
void sbx_kvm_close(struct sbx_vm *vm);
/* Reads or writes n MSRs; returns how many KVM processed, or -errno. */
int sbx_kvm_msrs(struct sbx_vm *vm, int set, const uint32_t *idx, uint64_t *val, unsigned n);

/* x86_setup.c: page tables and descriptor tables (guest memory only), then the vCPU. */
int sbx_x86_build_tables(struct sbx_vm *vm, char *err, size_t errlen);
int sbx_x86_set_cpuid(struct sbx_vm *vm, char *err, size_t errlen);
int sbx_x86_set_vcpu(struct sbx_vm *vm, char *err, size_t errlen);
/* Restarts the vCPU at rip/rsp at the program's privilege level (after an exception left it in
 * a CPL0 stub). */
int sbx_x86_enter(struct sbx_vm *vm, uint64_t rip, uint64_t rsp);

/* ring.c */
int sbx_ring_serve(struct sbx_vm *vm);
int sbx_ring_start(struct sbx_vm *vm, char *err, size_t errlen);
void sbx_ring_stop(struct sbx_vm *vm);
void sbx_ring_doorbell(struct sbx_vm *vm);

/* hypercalls.c and hc_*.c */
int64_t sbx_hypercall(struct sbx_vm *vm, const struct sbx_slot *s);
void sbx_vm_kill(struct sbx_vm *vm, enum sbx_end end, int status, int sig, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* signal.c: hands a CPU fault back to the guest kernel when the program has a handler. */
int sbx_signal_upcall(struct sbx_vm *vm, const struct sbx_fault *f);
int sbx_in_kernel(uint64_t rip);

/* run.c: the signal that interrupts KVM_RUN and blocking host calls (no-op handler). */
int sbx_kick_signal(void);

/* confine.c: after loading, before the first guest instruction, the monitor confines itself
 * (seccomp allowlist, Landlock on the mount roots). Returns 0 or -errno with err set. */
int sbx_confine(struct sbx_vm *vm, char *err, size_t errlen);

/* limits.c */
int sbx_limits_start(struct sbx_vm *vm);
void sbx_limits_stop(struct sbx_vm *vm);
/* How much of a write of len bytes the limits allow (ending the run when that is less). */
uint64_t sbx_limit_write(struct sbx_vm *vm, const struct sbx_handle *h, uint64_t len);
void sbx_limit_account(struct sbx_vm *vm, const struct sbx_handle *h, int64_t written);

/* audit.c */
void sbx_audit_note(struct sbx_vm *vm, const char *gpath, const struct policy_target *t);
void sbx_audit_record(struct sbx_vm *vm, const struct sbx_slot *s, int64_t ret);

/* fdtable.c */
void sbx_fd_init(struct sbx_vm *vm);
void sbx_fd_close_all(struct sbx_vm *vm);
struct sbx_handle *sbx_fd_get(struct sbx_vm *vm, int64_t fd);
int sbx_fd_alloc(struct sbx_vm *vm, int lowest);
/* 0 if one more handle fits --max-files; else ends the run and returns -1. */
int sbx_fd_room(struct sbx_vm *vm);
void sbx_fd_release(struct sbx_vm *vm, int fd);

/* strace.c */
void sbx_strace(struct sbx_vm *vm, uint64_t nr, int64_t ret, const uint64_t args[6]);
const char *sbx_syscall_name(uint64_t nr);

#define sbx_log(vm, level, ...)                                                                    \
	do {                                                                                       \
		if ((vm)->cfg.verbose >= (level))                                                  \
			sbx_logf((vm), __VA_ARGS__);                                               \
	} while (0)
void sbx_logf(struct sbx_vm *vm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
