/* Internal state of one sandbox. The monitor core includes this, and so do white-box tests
 * (tests/monitor, tests/confine, tests/fuzz/fuzz_ring.c and fuzz_state.c) and benchmarks
 * (bench/policy_bench.c, bench/snap_bench.c); the front ends use sandbox.h only. */
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
/* A guest kernel of the same major version and an older or equal minor one is understood:
 * minors only add (a 1.1 snapshot restores under a 1.2 monitor). */
static inline int sbx_abi_ok(uint32_t v)
{
	return v >> 16 == SBX_ABI_MAJOR && (v & 0xffff) <= SBX_ABI_MINOR;
}

enum sbx_handle_kind { SBX_H_FREE, SBX_H_HOST, SBX_H_VDIR };

struct sbx_handle {
	enum sbx_handle_kind kind;
	int fd;	      /* host fd (SBX_H_HOST) */
	int cloexec;  /* FD_CLOEXEC as the guest set it (no exec, kept for F_GETFD) */
	int writable; /* opened on a rw mount or stdio */
	int stdio;    /* 0..2: a copy of the monitor's stdin/stdout/stderr; -1 otherwise */
	char *gpath;  /* normalised guest path (NULL for stdio) */
	/* stdio: O_APPEND and O_NONBLOCK as the guest set them. The file description is the
	 * user's own (a shell's, a terminal), so the guest's status flags never reach it. */
	int vflags;
	uint64_t vdir_pos; /* SBX_H_VDIR: next entry index */
};

struct sbx_stop {
	enum sbx_end end;
	int status, signal;
	int vector; /* fault vector, -1 if none */
	int reported;
	int nodeliver;		/* the kernel could not deliver an upcall's signal */
	int shutdown;		/* a triple fault */
	int status_set_by_exit; /* the guest's own exit hypercall ended the run */
	char reason[400];
	char dedup[200], summary[200]; /* the fault report's DEDUP_TOKEN and SUMMARY */
};

/* What this host's KVM offers a guest in XSAVE components, and where each lies in a
 * standard-format save area (CPUID leaf 0xD). */
struct sbx_xstate {
	uint64_t supported;
	uint32_t offset[64], size[64];
};

struct sbx_vm {
	struct sbx_config cfg;
	int kvm_fd, vm_fd, vcpu_fd;
	struct kvm_run *run;
	size_t run_size;
	int is_pvm;
	int cpl; /* 0 or 3: the level of program and kernel */

	int mem_fd; /* -1 when RAM is a private mapping of a snapshot file (lazy restore) */
	uint8_t *mem;
	uint64_t mem_size;
	/* Pages the monitor wrote into guest RAM since the last reset point, which KVM's dirty
	 * log does not see (NULL unless dirty tracking is on). */
	uint64_t *mon_dirty;
	int dirty_logging;   /* the memslot has KVM_MEM_LOG_DIRTY_PAGES */
	uint64_t *dirty_buf; /* KVM_GET_DIRTY_LOG's bitmap, kept between calls */
	atomic_int tracking; /* monitor writes are being marked in mon_dirty */
	/* Tracking began while a request was being served: its writes may have no mark, so
	 * when it completes every page is marked. */
	atomic_int remark_all;
	atomic_int nudge; /* bumped to end a SLEEP in progress early */
	int manual_protect;

	/* KVM objects are created on a helper thread while the ELF loads (on PVM they cost
	 * ~1 ms); sbx_vm_load joins it before touching the vCPU. */
	pthread_t kvm_thread;
	int kvm_thread_started;
	int kvm_result;
	char kvm_err[256];
	uint64_t xcr0;
	struct sbx_xstate xs;

	struct sbx_kernel_header khdr;
	struct loader_image img;
	uint64_t entry_rsp;
	uint64_t stack_guard; /* guest address of the stack guard page */
	char exe_path[256];
	/* What the monitor knows of the host, read before it confines itself: after that, the
	 * calls that would read it (getuid, getcwd for a relative path...) are forbidden, and
	 * handlers and reports read these instead (sbx_host_facts). */
	struct sbx_host {
		uint32_t uid, gid;
		char prog[POLICY_PATH_MAX];	  /* cfg.prog, absolute ("" if it cannot be) */
		char debug_file[POLICY_PATH_MAX]; /* cfg.debug_file, absolute ("" if none) */
	} host;

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
	/* RLIMIT_NOFILE as the guest set it (SBX_CALL_NOFILE); until then, and never above it,
	 * the sandbox's own limit (sbx_fd_ceiling). */
	int nofile_set;
	uint32_t nofile_soft, nofile_hard;
	int nofile_priv; /* CAP_SYS_RESOURCE: it may raise its hard limit (up to the ceiling) */

	/* Limits (limits.c). */
	uint64_t out_bytes, write_bytes;
	uint64_t err_bytes;  /* stderr's, counted apart only with cfg.output_stdout_only */
	int limit_hit;	     /* a write was cut at a byte limit: SBX_STATUS_LIMIT_* */
	int limit_on_stderr; /* ... and it was stderr's own budget */
	uint64_t limit_value;
	pthread_t watchdog;
	int watchdog_started;
	clockid_t vcpu_clock;
	int64_t cpu_base_ms;
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
	uint64_t exit_count[64]; /* by KVM exit reason */

	/* Pause (pause.c): the control thread asks, the vCPU thread stops at an instruction
	 * boundary with the ring quiesced and waits. */
	pthread_mutex_t pause_lock;
	pthread_cond_t pause_cond;
	atomic_int pause_req;
	int paused, running, confined;
	int pause_hold; /* the pauser is using the state: a kill waits for its resume */
	/* Run just before the first KVM_RUN (a migration destination says RESUMED there). */
	void (*on_first_run)(struct sbx_vm *vm);
	void *on_first_run_ctx;
	struct timespec first_run_at, last_exit_at; /* CLOCK_REALTIME */
	int first_call_pending;			    /* set by whoever wants first_call_at */
	struct timespec first_call_at;		    /* CLOCK_MONOTONIC */

	/* The control socket (control.c). */
	int control_fd;
	pthread_t control_thread;
	int control_started;
	atomic_int control_stop;
	uint8_t snap_id[16], parent_id[16];
	uint8_t elf_hash[16];
	char snap_prog[POLICY_PATH_MAX]; /* the ELF a restored snapshot names */
	struct mig_stream *incoming;	 /* a migration destination's stream until RESUMED */
	/* Repeated runs (exec.c). */
	struct sbx_exec *exec;
	uint32_t exec_boot_flags; /* SBX_BOOT_EXEC... for the boot page */
	int parked;		  /* the vCPU thread holds the vCPU in a park exit */
	int confine_thread;	  /* confine the vCPU thread and its children only */
	int det_random;		  /* getrandom answers from det_state, not the host */
	uint32_t spin_us; /* the guest's spin on a request before the doorbell (0: default) */
	int full_reset;	  /* a reset puts back all vCPU state CPL0 can change (untrusted runs) */
	int fs_changed;	  /* a call may have changed a writable mount since the reset */
	uint64_t det_state, det_out;
};

/* state.c: one function per piece of state serves both save and restore. */
struct mig_stream;
struct sbx_sio {
	int load;
	uint8_t *buf;
	size_t len, cap, pos;
	int err;
	char msg[256];
};
void sbx_sio_bytes(struct sbx_sio *io, void *p, size_t n);
void sbx_sio_u64(struct sbx_sio *io, uint64_t *v);
void sbx_sio_u32(struct sbx_sio *io, uint32_t *v);
void sbx_sio_i32(struct sbx_sio *io, int32_t *v);
void sbx_sio_str(struct sbx_sio *io, char *s, size_t cap);
/* A string from input fit for a one-line message: control bytes shown as '?'. */
const char *sbx_shown(const char *s, char *buf, size_t n);
void sbx_sio_fail(struct sbx_sio *io, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sbx_state_vcpu(struct sbx_vm *vm, struct sbx_sio *io, int reset);
int sbx_state_monitor(struct sbx_vm *vm, struct sbx_sio *io);
int sbx_state_image(struct sbx_vm *vm, struct sbx_sio *io);
int sbx_state_clock(struct sbx_vm *vm, struct sbx_sio *io);
/* The clock fields of the boot page, moved so that the guest's clocks go on from where they
 * were when guest_tsc was read: realtime follows the host's, monotonic and CPU time do not
 * count the time the sandbox was stopped. */
void sbx_clock_rebase(struct sbx_vm *vm, uint64_t guest_tsc, int64_t host_rt_then);

/* pause.c */
int sbx_vm_pause(struct sbx_vm *vm, int timeout_ms);
void sbx_vm_resume(struct sbx_vm *vm);
void sbx_pause_point(struct sbx_vm *vm);
/* For a snapshot or migration: pauses (unless an operator has) and holds the pause, so that a
 * kill meanwhile waits; the release resumes only a pause it made. */
int sbx_pause_hold(struct sbx_vm *vm, int timeout_ms, int *was_paused);
void sbx_pause_release(struct sbx_vm *vm, int was_paused);

/* reset.c: the pieces of sbx_reset, for exec.c, which resets with the vCPU parked or
 * spinning. */
int sbx_reset_pages(struct sbx_vm *vm, struct sbx_snap *s, int allow_pt, uint64_t *pages, int *pt,
		    char *err, size_t errlen);
int sbx_reset_vcpu(struct sbx_vm *vm, struct sbx_snap *s, char *err, size_t errlen);
int sbx_reset_monitor(struct sbx_vm *vm, struct sbx_snap *s, char *err, size_t errlen);
/* Guest pages [lo, hi) and the page at `page` (if non-zero) are never put back. */
void sbx_snapshot_keep(struct sbx_snap *s, uint64_t lo, uint64_t hi, uint64_t page);
/* The snapshot's copy of the page at gpa. */
const uint8_t *sbx_snapshot_page(const struct sbx_snap *s, uint64_t gpa);
/* exec.c: a doorbell while runs are served from a snapshot; the vCPU thread parks there
 * between runs. */
enum sbx_action sbx_exec_doorbell(struct sbx_vm *vm);
/* exec_fs.c: the --tmp directories as they were at the snapshot (NULL-terminated paths of
 * copies), put back after a run that changed the file system. */
int sbx_tmp_save(struct sbx_vm *vm, char ***saved, char *err, size_t errlen);
int sbx_tmp_restore(struct sbx_vm *vm, char **saved, char *err, size_t errlen);
void sbx_tmp_free(char **saved);
/* dirty.c: dirty tracking for reset and migration. */
int sbx_dirty_start(struct sbx_vm *vm, char *err, size_t errlen);
void sbx_dirty_stop(struct sbx_vm *vm);
/* ORs the pages dirtied since the last call (KVM's log and the monitor's own writes) into
 * bitmap (one bit per page), re-protects them, and returns how many bits it set, or -errno.
 * take_mon: also clear the monitor's marks (only when no monitor write is in progress:
 * ring_lock held or the sandbox stopped); else they are read and stay. */
int64_t sbx_dirty_collect(struct sbx_vm *vm, uint64_t *bitmap, int take_mon);
/* Marks [gpa, gpa+len) as written by the monitor. */
void sbx_mem_dirty(struct sbx_vm *vm, uint64_t gpa, uint64_t len);
/* Re-adds the memslot: under PVM the only way for KVM to see page tables the monitor put
 * back (docs/architecture.md, "The guest address space"). */
int sbx_memslot_reload(struct sbx_vm *vm);

/* snapshot.c */
/* The snapshot into fd. With watch_fd >= 0 (the connection of the client that asked), the
 * write is abandoned with -ECANCELED as soon as that client hangs up. */
int sbx_snapshot_write_fd(struct sbx_vm *vm, int fd, int zstd_level, int watch_fd, uint64_t *pages,
			  char *err, size_t errlen);
/* The state sections (no RAM) as a snapshot file image in memory, for migration. */
int sbx_state_blob(struct sbx_vm *vm, uint8_t **buf, size_t *len, char *err, size_t errlen);
/* Applies every state section of an opened snapshot to a VM whose RAM is in place. */
struct mig_snap_reader;
int sbx_state_apply(struct sbx_vm *vm, struct mig_snap_reader *r, char *err, size_t errlen);
/* A VM shell for a restore: RAM of mem_size, KVM objects, no program loaded. */
int sbx_vm_create_empty(const struct sbx_config *cfg, uint64_t mem_size, struct sbx_vm **out,
			char *err, size_t errlen);

/* XXH3-128 of a file (zeros if it cannot be read). */
void sbx_elf_hash(const char *path, uint8_t out[16]);
void sbx_vm_choose_cpus(struct sbx_vm *vm);
/* Closes /dev/kvm itself once the VM and vCPU exist. */
void sbx_kvm_close_dev(struct sbx_vm *vm);

const char *sbx_call_name(int nr);
/* Pages dirtied since tracking started, without taking them (-1: tracking is off). */
int64_t sbx_dirty_peek(struct sbx_vm *vm);
/* Pages of guest RAM the host holds (non-holes of the memfd). */
uint64_t sbx_resident_pages(struct sbx_vm *vm);
int sbx_vm_empty_kvm(struct sbx_vm *vm, char *err, size_t errlen);

/* migration.c: the source side, run on the control thread; the stream takes over fd. msg gets
 * one line either way. */
int sbx_migrate_out(struct sbx_vm *vm, int fd, const char *addr, char *msg, size_t msglen);

/* control.c */
/* Binds the socket (before confinement), then serves it from a thread (after). */
int sbx_control_start(struct sbx_vm *vm, char *err, size_t errlen);
int sbx_control_run(struct sbx_vm *vm, char *err, size_t errlen);
void sbx_control_stop(struct sbx_vm *vm);

/* boot.c */
/* The initial stack's arguments as Linux gives them (AT_RANDOM left for the caller); envp
 * NULL means the policy's environment. */
void sbx_stack_args(struct sbx_vm *vm, char *const *argv, char *const *envp,
		    struct loader_stack_args *sa);
/* Reads the host facts of vm->host (again: a restore names its program late). Before
 * confinement only. */
void sbx_host_facts(struct sbx_vm *vm);
int sbx_vm_create_bare(const struct sbx_config *cfg, struct sbx_vm **out, char *err, size_t errlen);

/* guest_mem.c: the only way to touch guest RAM. Addresses are guest-physical integers. */
int sbx_mem_create(struct sbx_vm *vm, uint64_t size, char *err, size_t errlen);
void sbx_mem_destroy(struct sbx_vm *vm);
void *sbx_gptr(struct sbx_vm *vm, uint64_t gpa, uint64_t len);
/* Calls fn for each range of guest RAM the host holds, from `from` up (the memfd's data
 * extents: holes were never touched and read as zeros); fn returns non-zero to stop, and that
 * is the result. */
int sbx_mem_extents(struct sbx_vm *vm, uint64_t from,
		    int (*fn)(void *ctx, uint64_t gpa, uint64_t len), void *ctx);
/* For reads only: not counted as a monitor write by dirty tracking. */
const void *sbx_gptr_ro(struct sbx_vm *vm, uint64_t gpa, uint64_t len);
int sbx_copy_from_guest(struct sbx_vm *vm, void *dst, uint64_t gpa, uint64_t len);
int sbx_copy_to_guest(struct sbx_vm *vm, uint64_t gpa, const void *src, uint64_t len);

/* xstate.c: the guest's extended state (docs/architecture.md, "Extended state"). */
void sbx_xstate_from_cpuid(struct sbx_xstate *x, const struct kvm_cpuid_entry2 *e, uint32_t n);
/* Bytes of a standard-format XSAVE of the components in mask. */
uint32_t sbx_xstate_bytes(const struct sbx_xstate *x, uint64_t mask);
/* What a program has from its start (a Linux process's set), and what it may ask for. */
uint64_t sbx_xstate_default(const struct sbx_xstate *x);
uint64_t sbx_xstate_dynamic(const struct sbx_xstate *x);
/* Once per process, before the first vCPU: lets KVM offer AMX where the host has it. */
void sbx_xstate_prepare(void);
void sbx_xstate_bootinfo(const struct sbx_xstate *x, uint64_t enabled, struct sbx_bootinfo *b);
/* AT_MINSIGSTKSZ for a save area of xsave_bytes. */
uint64_t sbx_xstate_sigstack_min(uint32_t xsave_bytes);
int sbx_xstate_set_xcr0(struct sbx_vm *vm, uint64_t xcr0);
void sbx_xstate_doorbell(struct sbx_vm *vm);
/* 0 if a vCPU that was shown `snap` (CPUID) with XCR0 snap_xcr0 can run where KVM offers
 * `host`; else -ENOTSUP with msg naming what is missing. */
int sbx_cpu_compatible(const struct kvm_cpuid_entry2 *host, uint32_t nhost,
		       const struct kvm_cpuid_entry2 *snap, uint32_t nsnap, uint64_t snap_xcr0,
		       char *msg, size_t msglen);

/* The same against this host's KVM (kvm_fd open); also fills vm->xs for the restored VM. */
int sbx_cpu_check_snapshot(struct sbx_vm *vm, const struct kvm_cpuid_entry2 *snap, uint32_t nsnap,
			   uint64_t snap_xcr0, char *msg, size_t msglen);

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
/* The seccomp allowlist alone, with the same table and SIGSYS report, on the calling thread
 * only when vm->confine_thread. Never skipped in sanitizer builds: the ring fuzzer runs the
 * dispatcher under it (tests/fuzz/fuzz_ring.c). */
int sbx_confine_seccomp(struct sbx_vm *vm, char *err, size_t errlen);

/* limits.c */
int sbx_limits_start(struct sbx_vm *vm);
void sbx_limits_stop(struct sbx_vm *vm);
/* How much of a write of len bytes the limits allow (ending the run when that is less). */
uint64_t sbx_limit_write(struct sbx_vm *vm, const struct sbx_handle *h, uint64_t len);
void sbx_limit_account(struct sbx_vm *vm, const struct sbx_handle *h, int64_t written);

/* audit.c */
void sbx_audit_note(struct sbx_vm *vm, const char *gpath, const struct policy_target *t);
/* The path led into another mount's object (a nested mount): its rule is the one applied. */
void sbx_audit_mount(struct sbx_vm *vm, const struct policy_target *t,
		     const struct policy_mount *m);
void sbx_audit_record(struct sbx_vm *vm, const struct sbx_slot *s, int64_t ret);

/* fdtable.c */
void sbx_fd_init(struct sbx_vm *vm);
void sbx_fd_close_all(struct sbx_vm *vm);
struct sbx_handle *sbx_fd_get(struct sbx_vm *vm, int64_t fd);
/* The lowest free fd >= lowest and below the soft RLIMIT_NOFILE, or -EMFILE (also when
 * --max-files ended the run). */
int sbx_fd_alloc(struct sbx_vm *vm, int lowest);
/* The most handles the sandbox allows at once: --max-files, or the handle table's size. */
uint32_t sbx_fd_ceiling(const struct sbx_vm *vm);
/* RLIMIT_NOFILE in force: lim[0] soft, lim[1] hard. */
void sbx_fd_limits(const struct sbx_vm *vm, uint64_t lim[2]);
/* 0 if one more handle fits --max-files; else ends the run and returns -1. */
int sbx_fd_room(struct sbx_vm *vm);
void sbx_fd_release(struct sbx_vm *vm, int fd);

/* strace.c */
void sbx_strace(struct sbx_vm *vm, uint64_t nr, int64_t ret, const uint64_t args[6]);
/* x86-64 Linux syscall names and --strace's argument kinds (sbx_syscalls.h); NULL for a number
 * no call has. */
const char *sbx_syscall_name(uint64_t nr);
const char *sbx_syscall_args(uint64_t nr);

#define sbx_log(vm, level, ...)                                                                    \
	do {                                                                                       \
		if ((vm)->cfg.verbose >= (level))                                                  \
			sbx_logf((vm), __VA_ARGS__);                                               \
	} while (0)
void sbx_logf(struct sbx_vm *vm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
