/* libsandbox: run a static x86-64 Linux ELF in its own KVM micro-VM. The front ends
 * (sandbox-run, later serve/fuzz/ctl) and the tests use only this header. */
#ifndef SBX_SANDBOX_H
#define SBX_SANDBOX_H

#include <stdint.h>
#include <stdio.h>

#include "policy.h"

struct kvm_run;

enum sbx_cpl_mode { SBX_CPL_AUTO, SBX_CPL_0, SBX_CPL_3 };
enum sbx_poll_mode { SBX_POLL_AUTO, SBX_POLL_ON, SBX_POLL_OFF };

struct sbx_config {
	const char *prog;      /* host path of the ELF */
	char *const *argv;     /* guest argv (argv[0] included), NULL-terminated */
	struct policy *policy; /* mounts, cwd, environment */
	uint64_t mem_size;     /* guest RAM in bytes */
	enum sbx_cpl_mode cpl;
	enum sbx_poll_mode poll;
	int strace;		 /* print every syscall to `log` */
	int verbose;		 /* 0 quiet, 1 -v, 2 -vv */
	int stats;		 /* also measure what costs time to measure (RSS) */
	FILE *audit;		 /* JSON lines of policy decisions (--audit), or NULL */
	int audit_all;		 /* every operation, not only denials */
	int no_confine;		 /* skip the seccomp filter and Landlock (--no-confine) */
	const char *debug_file;	 /* separate debug info for reports (--debug-file) */
	const char *report_json; /* write the fault report here as JSON too */
	const char *core_file;	 /* write an ELF core file here on a crash */
	int stdin_fd, stdout_fd, stderr_fd; /* host fds behind guest 0/1/2 (-1: closed) */
	FILE *log;			    /* monitor messages (stderr) */
	const char *name;		    /* program name for messages */
	/* Snapshots and migration (docs/snapshots.md). */
	const char *control_path;   /* unix socket for sandbox-ctl (--control), or NULL */
	const uint8_t *migrate_key; /* 32-byte stream key (--migrate-key), or NULL */
	uint64_t max_downtime_ms;   /* live migration's pause target (0: 20 ms) */
	unsigned max_rounds;	    /* pre-copy rounds before stopping anyway (0: 30) */
	int allow_wider_policy;	    /* a restore may grant more than the snapshot had */
	int snapshot_zstd;	    /* zstd level for snapshot RAM, 0 for raw pages */
};

/* How a run ended. `status` is what a shell would report: the guest's exit status, or
 * 128+signal for a guest killed by a fault or a fatal signal, or SBX_STATUS_ERROR. */
#define SBX_STATUS_ERROR 125 /* the sandbox itself failed (bad ELF, KVM error, ABI violation) */
/* A limit of the policy ended the run (docs/policy.md). */
#define SBX_STATUS_LIMIT_FILES 119  /* --max-files */
#define SBX_STATUS_LIMIT_CPU 120    /* --cpu-time */
#define SBX_STATUS_LIMIT_TIME 121   /* --timeout */
#define SBX_STATUS_LIMIT_OUTPUT 122 /* --max-output */
#define SBX_STATUS_LIMIT_WRITE 123  /* --max-write */
enum sbx_end {
	SBX_END_EXIT,
	SBX_END_SIGNAL,
	SBX_END_FAULT,
	SBX_END_VM,
	SBX_END_ERROR,
	SBX_END_LIMIT,
	SBX_END_DETACHED /* the sandbox left this monitor: migrated, or stopped at a snapshot */
};

struct sbx_stats {
	uint64_t exits;		  /* KVM_RUN returns */
	uint64_t doorbells;	  /* doorbell exits served by the vCPU thread */
	uint64_t polled;	  /* requests served by the polling thread */
	uint64_t calls;		  /* hypercalls served */
	uint64_t upcalls;	  /* CPU faults handed back to the program's signal handlers */
	uint64_t nosys;		  /* syscalls answered -ENOSYS */
	uint64_t monitor_rss_kib; /* resident memory of the monitor, guest RAM excluded */
	uint64_t guest_rss_kib;	  /* guest RAM the run made resident */
	double setup_ms, run_ms;
	double report_ms; /* time to build the fault report, if there was one */
};

struct sbx_result {
	enum sbx_end end;
	int status;
	int signal;
	char reason[512];
	int reported; /* a full fault report was printed to the log */
	struct sbx_stats stats;
};

/* Runs a program to completion. Returns 0 with `res` filled in (whatever the guest did), or a
 * negative errno when the sandbox could not be set up, with res->reason saying why. */
int sbx_run(const struct sbx_config *cfg, struct sbx_result *res);

/* Finer control for tests and later front ends. */
struct sbx_vm;
int sbx_vm_create(const struct sbx_config *cfg, struct sbx_vm **out, char *err, size_t errlen);
int sbx_vm_load(struct sbx_vm *vm, char *err, size_t errlen);
int sbx_vm_run(struct sbx_vm *vm, struct sbx_result *res);
void sbx_vm_destroy(struct sbx_vm *vm);

/* Snapshots (docs/snapshots.md). The vCPU must be stopped: not running, or paused. */
int sbx_vm_snapshot(struct sbx_vm *vm, const char *path, char *err, size_t errlen);
/* A sandbox from a snapshot file, ready for sbx_vm_run. cfg's policy governs: files are
 * reopened by mount and path under it. LAZY maps guest RAM copy-on-write from the file
 * without reading it (its checksum is not verified: RAM is the guest's own data). */
#define SBX_RESTORE_LAZY 1
int sbx_vm_restore(const struct sbx_config *cfg, const char *path, int flags, struct sbx_vm **out,
		   char *err, size_t errlen);
/* Waits on addr ("tcp:HOST:PORT", "unix:PATH") for a live migration and returns the sandbox
 * it brought, ready for sbx_vm_run. */
int sbx_vm_incoming(const struct sbx_config *cfg, const char *addr, struct sbx_vm **out, char *err,
		    size_t errlen);
/* The host path of the program (for a restored sandbox, the ELF its snapshot names if that
 * file still matches), or NULL. */
const char *sbx_vm_program(const struct sbx_vm *vm);
/* Pause and resume from another thread than the one in sbx_vm_run. */
int sbx_vm_pause(struct sbx_vm *vm, int timeout_ms);
void sbx_vm_resume(struct sbx_vm *vm);

/* Reset to a snapshot kept in memory: after sbx_snapshot_take, sbx_reset puts back only the
 * pages written since (KVM's dirty log and the monitor's own writes), the vCPU and the
 * monitor's state. Both need the vCPU stopped. */
struct sbx_snap;
struct sbx_reset_stats {
	uint64_t pages;	 /* pages put back */
	int slot_reload; /* page tables were among them: the memslot was re-added */
	double us;	 /* time taken */
};
int sbx_snapshot_take(struct sbx_vm *vm, struct sbx_snap **out, char *err, size_t errlen);
int sbx_reset(struct sbx_vm *vm, struct sbx_snap *s, struct sbx_reset_stats *st, char *err,
	      size_t errlen);
/* Debug mode: compares all of guest RAM with the snapshot; -EIO naming the first page that
 * differs. */
int sbx_reset_verify(struct sbx_vm *vm, const struct sbx_snap *s, char *err, size_t errlen);
void sbx_snapshot_free(struct sbx_snap *s);

/* The exit handler, free of KVM side effects so tests can feed it made-up exits. */
enum sbx_action { SBX_ACT_CONTINUE, SBX_ACT_STOP };
enum sbx_action sbx_handle_exit(struct sbx_vm *vm, struct kvm_run *run);

/* The Landlock ABI version of this kernel, 0 without Landlock (confinement is then seccomp
 * only). */
int sbx_confine_landlock_abi(void);
/* 1 when /dev/kvm is the PVM backend. */
int sbx_kvm_is_pvm(void);

/* Kernel-side tracing of a sandbox's VM exits with BPF (trace_exits.c, docs/tracing.md).
 * Open before the sandbox confines itself; reports read mapped memory only. */
struct sbx_trace;
struct sbx_trace_opts {
	int tgid; /* the process whose vCPU threads are traced */
	int tid;  /* one thread of it only, or 0 */
	int pvm;  /* sbx_kvm_is_pvm(): count PVM's in-kernel exits from the vCPU's counters */
};
/* Returns 0, or -errno with err naming what is missing (root, BPF, BTF, kvm tracepoints). */
int sbx_trace_open(const struct sbx_trace_opts *o, struct sbx_trace **out, char *err,
		   size_t errlen);
/* The guest program whose symbols name the top RIPs (NULL: addresses only). */
void sbx_trace_set_program(struct sbx_trace *t, const char *prog, const char *debug_file);
/* Prints the exits as a table to `table` and/or as JSON to `json` (either may be NULL);
 * run_ms is the wall time they are a share of; since_last: only what came after the previous
 * report. Returns 0 or -errno. */
int sbx_trace_report(struct sbx_trace *t, FILE *table, FILE *json, double run_ms, int since_last);
void sbx_trace_close(struct sbx_trace *t);

#endif
