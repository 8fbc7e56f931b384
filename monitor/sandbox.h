/* libsandbox: run a static x86-64 Linux ELF in its own KVM micro-VM. The front ends that link
 * it (sandbox-run, sandbox-serve, sandbox-fuzz, sandbox-stat) use only this header, through
 * cli.h, serve.h and fuzz.h; sandbox-ctl does not link it (it speaks to a monitor's control
 * socket). White-box tests and benchmarks include vm.h as well. */
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
	const char *control_path;      /* unix socket for sandbox-ctl (--control), or NULL */
	const uint8_t *migrate_key;    /* 32-byte stream key (--migrate-key), or NULL */
	uint64_t max_downtime_ms;      /* live migration's pause target (0: 20 ms) */
	unsigned max_rounds;	       /* pre-copy rounds before stopping anyway (0: 30) */
	int allow_wider_policy;	       /* a restore may grant more than the snapshot had */
	int snapshot_zstd;	       /* zstd level for snapshot RAM, 0 for raw pages */
	uint64_t handshake_timeout_ms; /* --incoming: a peer proves the key within it (0: 5 s) */
	/* The policy's max_output counts stdout alone, and stderr has a budget of its own of the
	 * same size (sandbox-serve, whose --max-output is the response's); otherwise it counts
	 * both together (sandbox-run's --max-output). */
	int output_stdout_only;
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
	SBX_END_DETACHED, /* the sandbox left this monitor: migrated, or stopped at a snapshot */
	SBX_END_KILLED	  /* stopped from outside: a signal to the monitor (sbx_vm_interrupt) */
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
	int reported;	   /* a full fault report was printed to the log */
	char dedup[200];   /* its DEDUP_TOKEN: the same for the same crash (bucketing) */
	char summary[200]; /* its SUMMARY line */
	struct sbx_stats stats;
};

/* Runs a program to completion. Returns 0 with `res` filled in (whatever the guest did), or a
 * negative errno when the sandbox could not be set up, with res->reason saying why. */
int sbx_run(const struct sbx_config *cfg, struct sbx_result *res);

/* Finer control, for the tests, the benchmarks and the exec engine. */
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
/* Stops the sandbox as if it were killed by `sig` (status 128+sig, SBX_END_KILLED): for a
 * front end's signal handler, so async-signal-safe. */
void sbx_vm_interrupt(struct sbx_vm *vm, int sig);
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

/* Many runs of one program from one snapshot (exec.c, docs/exec.md): the engine behind
 * sandbox-serve and sandbox-fuzz. The snapshot is taken once at a "point"; every run starts
 * there with RAM, vCPU and handle table as they were, and ends when the program exits (or,
 * at SBX_POINT_CALL, calls sbx_exec_done). A run is reset in place: only the pages it wrote
 * are put back, and the VM, its threads and its confinement are kept. */
enum sbx_exec_point {
	SBX_POINT_ENTRY, /* before the program's first instruction: each run gets a stack of its
			  * own (argv, envp, a fresh AT_RANDOM): a CGI program */
	SBX_POINT_STDIN, /* the program's first read of fd 0, after its own initialisation
			  * (sandbox-serve --warm): each run reads its own stdin from there */
	SBX_POINT_CALL	 /* the fuzz driver's snapshot call (guest-abi/fuzz/sbx_fuzz.h) */
};
struct sbx_exec_opts {
	enum sbx_exec_point point;
	/* Trust the program to park itself between runs (a fuzz target, not an adversary):
	 * the reset then happens while the guest spins, with no VM exit, and the guest kernel
	 * restores its own registers. Off, every run ends in an exit and the monitor resets the
	 * vCPU's registers too, so nothing of one run can reach the next. */
	int fast;
	/* The thread waiting in sbx_exec_one serves the run's I/O requests itself, spinning
	 * (for 2 ms at most when not fast), so they need no VM exit and no poller thread. */
	int poll_run;
	int deterministic;     /* the same clock and random bytes on every run (fuzzing) */
	unsigned verify_every; /* compare all of RAM with the snapshot after every Nth reset */
	uint64_t timeout_ms;   /* per run (0: none); a run over it ends SBX_STATUS_LIMIT_TIME */
};
struct sbx_exec;
/* Creates the sandbox from cfg, runs it to the point and takes the snapshot there. A program
 * that ends before its point is an error naming how it ended. The calling thread stays
 * unconfined; the sandbox's own threads are confined as sbx_vm_run's are. */
int sbx_exec_open(const struct sbx_config *cfg, const struct sbx_exec_opts *o,
		  struct sbx_exec **out, char *err, size_t errlen);
struct sbx_exec_run {
	/* IN */
	char *const *argv; /* SBX_POINT_ENTRY: this run's argv (NULL: cfg's) */
	char *const *envp; /* SBX_POINT_ENTRY: this run's environment (NULL: the policy's) */
	int stdin_fd, stdout_fd, stderr_fd; /* host fds behind guest 0/1/2 for this run; -1:
					     * the snapshot's own (dup'ed, never closed) */
	const uint8_t *input; /* SBX_POINT_CALL: copied into the guest's input buffer */
	size_t input_len;     /* at most sbx_exec_info().input_max */
	uint64_t seed;	      /* deterministic runs: what the guest's random bytes derive from */
	/* OUT */
	struct sbx_result res; /* how the run ended; a fault is reported to cfg->log first */
	uint64_t reset_pages;  /* pages put back before this run */
	double reset_us;       /* time that took */
	uint64_t exits;	       /* VM exits during the run (0 on the fast path) */
	int slow;	       /* the reset needed the vCPU stopped (a crash, a timeout, page
				* tables among the pages, or opts.fast off) */
	int oom;	       /* the guest was refused memory for lack of it during the run */
	int parked;	       /* the run ended where runs end (exit at ENTRY/STDIN, the driver's
				* done at CALL); 0: the program ended otherwise (res says how) */
};
/* Resets to the snapshot and runs once. Returns 0 with run->res filled in however the program
 * ended (a crash is a result, and the next run starts clean), or -errno when the sandbox
 * itself failed (err says why; it cannot be used again). One thread at a time per sbx_exec. */
int sbx_exec_one(struct sbx_exec *x, struct sbx_exec_run *run, char *err, size_t errlen);
struct sbx_exec_info {
	uint8_t *counters;  /* SBX_POINT_CALL: the guest's coverage counters, mapped (or NULL) */
	size_t ncounters;   /* bytes at counters */
	uint64_t input_max; /* SBX_POINT_CALL: size of the guest's input buffer */
	double open_ms;	    /* sbx_exec_open: create, load, run to the point, snapshot */
	uint64_t snapshot_pages; /* pages of RAM the snapshot holds */
};
void sbx_exec_info(const struct sbx_exec *x, struct sbx_exec_info *info);
/* The sandbox underneath, for sbx_vm_program and friends. */
struct sbx_vm *sbx_exec_vm(struct sbx_exec *x);
/* Ends the current run from another thread (the caller of sbx_exec_one sees end/status as
 * given: SBX_END_LIMIT with SBX_STATUS_LIMIT_TIME for a deadline of its own). */
void sbx_exec_kill(struct sbx_exec *x, enum sbx_end end, int status, const char *why);
void sbx_exec_close(struct sbx_exec *x);

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
