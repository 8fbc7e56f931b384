/* The types of libsandbox's public API (sandbox.h): what a sandbox is asked to be, how its run
 * ends and what it counted. They live in the core, which keeps them in every sandbox, so that
 * the core needs nothing from the layers above it. */
#ifndef SBX_TYPES_H
#define SBX_TYPES_H

#include <stdint.h>
#include <stdio.h>

#include "policy.h"

enum sbx_cpl_mode { SBX_CPL_AUTO, SBX_CPL_0, SBX_CPL_3 };
enum sbx_poll_mode { SBX_POLL_AUTO, SBX_POLL_ON, SBX_POLL_OFF };

struct sbx_config {
	const char *prog;      /* host path of the ELF */
	char *const *argv;     /* guest argv (argv[0] included), NULL-terminated */
	struct policy *policy; /* mounts, cwd, environment */
	uint64_t mem_size;     /* guest RAM in bytes */
	enum sbx_cpl_mode cpl;
	enum sbx_poll_mode poll;
	int strace;	      /* print every syscall to `log` */
	int no_patch;	      /* never patch a syscall site (--no-patch) */
	uint64_t max_threads; /* guest threads at once, main included (0: 256) */
	uint64_t cpus;	      /* host CPUs the threads may run on (0: all allowed) */
	uint64_t max_procs;   /* processes at once, the first included (0: 256) */
	/* The front end is its terminal's foreground job (a shell's job control): when the
	 * first process stops, the monitor stops too, and goes on with a SIGCONT to it. */
	int stop_front;
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
	const char *tool; /* the front end's name, first in every message (NULL: "sandbox-run") */
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

/* The name the library's messages start with: the front end's, never a guess. */
static inline const char *sbx_config_tool(const struct sbx_config *cfg)
{
	return cfg->tool ? cfg->tool : "sandbox-run";
}

/* How a run ended. `status` is what a shell would report: the guest's exit status, or
 * 128+signal for a guest killed by a fault or a fatal signal, or SBX_STATUS_ERROR. */
#define SBX_STATUS_ERROR 125 /* the sandbox itself failed (bad ELF, KVM error, ABI violation) */
/* A limit of the policy ended the run (docs/policy.md). */
#define SBX_STATUS_LIMIT_MEM 118    /* --mem, all processes together */
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
	uint64_t exits;		/* KVM_RUN returns */
	uint64_t doorbells;	/* doorbell exits served by the vCPU thread */
	uint64_t polled;	/* requests served by the polling thread */
	uint64_t calls;		/* hypercalls served */
	uint64_t upcalls;	/* CPU faults handed back to the program's signal handlers */
	uint64_t nosys;		/* syscalls answered -ENOSYS */
	uint64_t patched;	/* syscall sites the kernel patched (the boot page's count) */
	uint64_t patch_refused; /* sites of a patchable form it could not patch */
	uint64_t patch_resumes; /* jumps into a patched site: its bytes put back, the jump made */
	uint64_t cpuid_sites;	/* cpuid sites the monitor rewrote at load (the image's last) */
	uint64_t threads, threads_peak; /* threads the program started; most alive at once */
	uint64_t thread_exits;		/* VM exits of the threads' vCPUs (not in `exits`) */
	uint64_t parks, unparks;	/* futex waits and sleeps that parked a vCPU; wakes */
	uint64_t shootdowns;		/* TLB shootdowns (hardware KVM) */
	uint64_t monitor_rss_kib;	/* resident memory of the monitor, guest RAM excluded */
	uint64_t guest_rss_kib;		/* guest RAM the run made resident */
	uint64_t backed_kib; /* the image's data segments backed ahead of their first touch */
	/* The other processes of the sandbox whose run was over before the first's: how many,
	 * and their vCPU 0's exits, doorbells, hypercalls and requests polled, all together. */
	uint64_t procs, procs_exits, procs_doorbells, procs_calls, procs_polled;
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

#endif
