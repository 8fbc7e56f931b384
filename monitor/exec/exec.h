/* The exec engine: many runs of one sandbox from one snapshot (its files: exec_priv.h). */
#ifndef SBX_EXEC_H
#define SBX_EXEC_H

#include "sandbox.h"
#include "vm.h"

/* Many runs of one program from one snapshot (docs/exec.md): the engine behind
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
	/* The syscall sites this run patches, if it ends as runs end, are patched before every
	 * later run (no trap there). Only for a run whose behaviour the caller trusts: a run
	 * could reach a site's bytes out of step with the code (docs/exec.md, "Syscall sites"),
	 * and which sites a run reached would show in the next. */
	int learn_sites;
	/* OUT */
	struct sbx_result res;	/* how the run ended; a fault is reported to cfg->log first */
	uint64_t reset_pages;	/* pages put back before this run */
	double reset_us;	/* time that took */
	uint32_t reset_tables;	/* page-table pages among them, which the kernel wrote again */
	int reset_reload;	/* ... or for which the memslot was re-added (every shadow page
				 * of KVM's dropped: threads, or the kernel's own mappings changed) */
	uint32_t sites_patched; /* syscall sites earlier runs patched, patched before this one */
	uint64_t exits;		/* VM exits during the run (0 on the fast path) */
	int slow;		/* the reset needed the vCPU stopped (a crash, a timeout, page
				 * tables the kernel could not be left to fix, or opts.fast off) */
	int oom;		/* the guest was refused memory for lack of it during the run */
	int parked;		/* the run ended where runs end (exit at ENTRY/STDIN, the driver's
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

#endif
