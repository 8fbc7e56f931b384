/* Internal state of one sandbox, and the core's functions. Every module of the monitor includes
 * this, and so do white-box tests (tests/monitor, tests/confine, tests/fuzz/fuzz_ring.c and
 * fuzz_state.c) and benchmarks (bench/policy_bench.c, bench/snap_bench.c); the front ends use
 * sandbox.h only. The core includes nothing of the monitor above it. */
#ifndef SBX_VM_H
#define SBX_VM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <stdatomic.h>
#include <stdint.h>

#include "loader.h"
#include "policy.h"
#include "sbx_abi.h"
#include "sbx_types.h"

struct sbx_vm;

/* A guest kernel of the same major version and an older or equal minor one is understood:
 * minors only add (a 1.1 snapshot restores under a 1.2 monitor). */
static inline int sbx_abi_ok(uint32_t v)
{
	return v >> 16 == SBX_ABI_MAJOR && (v & 0xffff) <= SBX_ABI_MINOR;
}

#define SBX_RFLAGS_IF 0x200ull

/* Registers in DWARF order, so the unwinder takes them as they are. */
enum {
	SBX_R_RAX,
	SBX_R_RDX,
	SBX_R_RCX,
	SBX_R_RBX,
	SBX_R_RSI,
	SBX_R_RDI,
	SBX_R_RBP,
	SBX_R_RSP,
	SBX_R_R8,
	SBX_R_R9,
	SBX_R_R10,
	SBX_R_R11,
	SBX_R_R12,
	SBX_R_R13,
	SBX_R_R14,
	SBX_R_R15,
	SBX_R_RIP,
	SBX_NREGS
};

struct sbx_fault {
	int vector;   /* CPU exception, or -1 for a signal the program sent itself */
	int signal;   /* what Linux would deliver */
	int from_cpu; /* registers from the vCPU and the CPU-pushed frame (else the syscall frame)
		       */
	uint64_t err, cr2, cr3;
	uint64_t r[SBX_NREGS];
	uint64_t rflags, fs_base, gs_base;
	uint16_t cs, ss;
	/* A page not present, in a mapping that forbids the access (pages on first touch):
	 * SEGV_ACCERR, as Linux says. */
	int accerr;
	/* A thread's vCPU in the kernel with no syscall in flight: not yet in the program (a
	 * thread created but not run yet) or between two threads. */
	int outside;
	char cause[200]; /* "write to unmapped address 0x0 (null pointer)" */
};

/* fault.c: a fault as the vCPU and the CPU-pushed frame show it, or as the syscall frame
 * shows a program that ended itself. */
void sbx_fault_from_cpu(struct sbx_vm *vm, int vector, struct sbx_fault *f);
void sbx_fault_from_syscall(struct sbx_vm *vm, int sig, struct sbx_fault *f);
void sbx_fault_from_regs(struct sbx_vm *vm, int sig, const char *cause, struct sbx_fault *f);
/* Thread i's registers (vCPU i; 0 is the main thread's) as its program sees them: the vCPU's,
 * or, while it is in the kernel (a syscall, a wait), those of its syscall (from_cpu 0). With
 * its tid; -ENOENT when vCPU i runs no thread. */
int sbx_thread_regs(struct sbx_vm *vm, unsigned i, struct sbx_fault *f, uint32_t *tid);

/* The thread whose vCPU ends a run (sbx_vm_kill_by): its vCPU fd, page-table root, index, and
 * the CPU exception (-1: none). */
/* The last CPU fault a vCPU handed back to its thread's program as a signal, for the report
 * when the delivery itself fails. */
struct sbx_upcall_state {
	int pending;
	struct sbx_fault fault;
};

struct sbx_stop_who {
	int fd;
	uint64_t cr3;
	int index;
	int vector;
};

struct sbx_stop {
	/* Set (release) once the first reason's fields are written, after `stopping`: a thread
	 * that saw `stopping` reads them only then (sbx_stop_settle). */
	atomic_int ready;
	enum sbx_end end;
	int status, signal;
	int vector; /* fault vector, -1 if none */
	int reported;
	int nodeliver;		/* the kernel could not deliver an upcall's signal */
	int shutdown;		/* a triple fault */
	int status_set_by_exit; /* the guest's own exit hypercall ended the run */
	/* The thread whose vCPU faulted or ended the program (threads.c): its vCPU fd and
	 * page-table root, or -1 for vCPU 0, and its index. */
	int thread_fd;
	uint64_t thread_cr3;
	int thread_index;
	char reason[400];
	char dedup[200], summary[200]; /* the fault report's DEDUP_TOKEN and SUMMARY */
};

/* What this host's KVM offers a guest in XSAVE components, and where each lies in a
 * standard-format save area (CPUID leaf 0xD). */
struct sbx_xstate {
	uint64_t supported;
	uint32_t offset[64], size[64];
};

/* What the monitor knows of the host, read before it confines itself: after that, the calls
 * that would read it (getuid, getcwd for a relative path...) are forbidden, and handlers and
 * reports read these instead (sbx_host_facts). */
struct sbx_host {
	uint32_t uid, gid;
	/* The monitor's umask (the user's, inherited): the program's first, as a child's is its
	 * parent's, and what the host takes from every mode on top of the program's own. */
	uint32_t umask;
	char prog[POLICY_PATH_MAX];	  /* cfg.prog, absolute ("" if it cannot be) */
	char debug_file[POLICY_PATH_MAX]; /* cfg.debug_file, absolute ("" if none) */
};

/* Guest RAM: one memfd mapped shared (guest_mem.c), and the dirty tracking of resets and
 * migration (dirty.c). */
struct sbx_mem {
	int fd; /* -1 when RAM is a private mapping of a snapshot file (lazy restore), or lent */
	/* RAM is a private mapping of the memfd of a vfork's parent, stopped until this child
	 * execs or ends: nothing is copied, and the pages the child writes become its own. An
	 * execve gives it a memfd of its own (sbx_mem_own: fd first, then lent 0 with release,
	 * then the log stops; the keeper reads them in that order's reverse). */
	atomic_int lent;
	/* A fork's child on its parent's RAM (lent too, but its parent waits only a little:
	 * sandbox/procs.c): the parent's memfd, which holds every page the child has not
	 * written, or -1. And what of it this child alone holds once the parent left it (moved
	 * to a copy, or ended): counted as the child's towards --mem. */
	int lender_fd;
	_Atomic uint64_t lender_bytes;
	uint8_t *base;
	uint64_t size;
	/* Pages the monitor wrote into guest RAM since the last reset point, which KVM's dirty
	 * log does not see (NULL unless dirty tracking is on). */
	uint64_t *mon_dirty;
	int dirty_logging;   /* the memslot has KVM_MEM_LOG_DIRTY_PAGES */
	uint64_t *dirty_buf; /* KVM_GET_DIRTY_LOG's bitmap, kept between calls */
	atomic_int tracking; /* monitor writes are being marked in mon_dirty */
	/* Tracking began while a request was being served: its writes may have no mark, so
	 * when it completes every page is marked. */
	atomic_int remark_all;
	int manual_protect;
};

/* The KVM VM (kvm.c). Its objects are created on a helper thread while the ELF loads (on PVM
 * they cost ~1 ms); loading joins it before touching the vCPU. */
struct sbx_kvm {
	int kvm_fd, vm_fd;
	int kvm_fd_borrowed; /* kvm_fd is the first process's (a fork's child): not closed here */
	int is_pvm;
	pthread_t thread;
	int thread_started;
	int result;
	char err[256];
	struct sbx_xstate xs;	  /* what this host offers (xstate.c) */
	struct kvm_cpuid2 *cpuid; /* what vCPU 0 was given: every thread's vCPU gets the same */
	int steal_told;		  /* sbx_x86_steal_time's refusal was logged */
};

/* A vCPU as the other threads see it (threads.c): whether it may be running the guest now,
 * the last TLB shootdown generation it has flushed for, and a KICK's signal waiting for it to
 * stop in the program's code. */
struct sbx_tlb_cpu {
	atomic_int in_run;
	_Atomic uint64_t flushed;
	atomic_int async;
	/* Its thread waits on the host for the guest (a read of a pipe, a poll: ring_lock
	 * released), where a kick's EINTR cuts the wait short for a signal to the thread. */
	atomic_int waiting;
	/* Set while that wait is on a condition variable instead (the process tree's: wait4, a
	 * fork's parent): a kick broadcasts it, since a signal cannot end pthread_cond_wait, and
	 * the waiter looks at its signals then. */
	pthread_cond_t *_Atomic wait_cond;
	/* A KICK that found the vCPU in the kernel looks again 200 us into the next KVM_RUN: a
	 * one-shot timer of its own thread's, armed only for that KVM_RUN. */
	timer_t rekick;
	int rekick_made, rekick_armed;
};

/* One vCPU and the host thread that runs it. */
struct sbx_vcpu {
	int fd;
	struct kvm_run *run;
	size_t run_size;
	int cpl;      /* 0 or 3: the level of program and kernel */
	uint64_t cr3; /* the page-table root last set or seen (sbx_guest_root) */
	/* The root whose window holds this vCPU's kernel stacks, per-CPU page and ring: 0 for
	 * vCPU 0's own (the master root; its window is guest-physical [0, 2 MiB)). In a child
	 * forked by a second thread, that thread's root, until an execve. */
	uint64_t home_root;
	uint64_t xcr0;
	pthread_t thread;
	int thread_set;
	int cpu;	 /* the host CPU it is pinned to, or -1 */
	int parked;	 /* the thread holds the vCPU in a park exit (exec) */
	clockid_t clock; /* the thread's CPU clock (--cpu-time) */
	int clock_set;
	struct sbx_upcall_state upcall;
	/* A fault of vCPU 0 that came while another reason (a thread's fault) stopped the run:
	 * its vector + 1, reported again once the run goes on (0: none). */
	int refault;
	uint64_t exit_count[64]; /* by KVM exit reason */
	struct sbx_tlb_cpu tlb;
};

/* The monitor's side of the request ring (ring.c): `lock` makes the polling thread and the
 * vCPU thread take turns. */
#define SBX_RING_POP_MAX 16
struct sbx_poller;
#define SBX_WAITS 1
#define SBX_WAITS_UNTIL_READY 2
struct sbx_ring_srv {
	pthread_mutex_t lock;
	uint32_t tail;
	/* The ring's guest-physical address: 0 for SBX_RING_ADDR; in a child forked by a second
	 * thread, that thread's ring (its window's), until an execve. */
	uint64_t gpa;
	int polling;
	/* Set once the program has a second thread: the poller stops spinning for good (it would
	 * compete with the threads' vCPUs for the cores, and a vCPU spinning on the guest's lock
	 * would keep it off its core while it holds ring_lock). */
	atomic_int retired;
	/* The poller thread that serves this ring (poller.c), one for all the processes of a
	 * sandbox: a reference, from sbx_ring_share or sbx_ring_start to sbx_ring_stop; it serves
	 * the ring while `attached`. */
	struct sbx_poller *poller;
	int attached;
	atomic_int stop;   /* the ring leaves its poller: nothing more is served */
	atomic_int active; /* the poller spins on this ring (a doorbell woke it) */
	atomic_int wakes;  /* doorbells' wake-ups so far (sbx_poller_wake) */
	int cpu;	   /* the host CPU the poller is pinned to, or -1 */
	/* The poller's own, touched by its thread only: whether it has taken the ring off
	 * doorbells since `active`, since when nothing came, and since when it found `lock` held
	 * (0: not). */
	int awake;
	int64_t idle_since, held_since;
	/* Under `lock`: since when the request of sequence number unready_seq has found its
	 * descriptor not ready (0: none). */
	int64_t unready_since;
	uint64_t unready_seq;
	/* POPULATE hints a doorbell brought, for the poller to serve while the vCPU goes on
	 * (under `lock`): offsets into guest RAM and lengths. */
	struct {
		uint64_t gpa, len;
	} pop[SBX_RING_POP_MAX];
	unsigned npop;
	/* The request being served replaced the ring (an execve): no answer goes back. */
	int reimaged;
};

/* What was loaded: the guest kernel, the program's image, its initial stack. */
struct sbx_image {
	struct sbx_kernel_header khdr;
	struct loader_image img;
	uint64_t entry_rsp;
	uint64_t stack_guard; /* guest address of the stack guard page */
	char exe_path[256];
	uint32_t cpuid_patched; /* cpuid sites rewritten at load (patch.c) */
	uint32_t patch_limit;	/* the kernel's records end below this (bootinfo), 0: none */
	/* The last sites given their own bytes back (patch.c), for a #UD another vCPU took
	 * inside one before that and reports after: [va, va + len). */
	struct {
		uint64_t va;
		uint32_t len;
		uint8_t bytes[LOADER_CPUID_SITE_MAX];
	} restored[8];
	uint32_t nrestored;
};

/* A process: its address space (a KVM VM and its RAM), its image, its handle table and
 * working directory, the ring it calls through, and its vCPU. */
struct sbx_files;
/* Shared file mappings (shmap.c): each a host MAP_SHARED mapping of the file registered as a
 * memslot of its own in a guest-physical window above RAM, so the guest's loads and stores
 * reach the host page cache directly. */
#define SBX_SHMAP_MAX 64		    /* mappings at once (memslots 1..64) */
#define SBX_SHMAP_WINDOW (SBX_U64(1) << 30) /* guest-physical bytes for all of them */
struct sbx_shmap {
	uint64_t gpa, len; /* len: page aligned, 0 for a free entry */
	uint8_t *host;	   /* the monitor's MAP_SHARED mapping */
	int fd;		   /* a duplicate of the handle's host fd (size checks, msync) */
	int writable;
	uint64_t off;
	uint32_t slot;
	char *gpath; /* the guest path, for messages */
	/* Shared anonymous memory (a memfd): how many windows of all the tree's processes map
	 * it, so that each counts its share of the pages toward --mem; NULL for a file. */
	atomic_uint *anon_holders;
	/* A window onto a program's memfd holds it as a handle does (hooks.ref_hold), so that
	 * --mem counts its bytes while it is mapped, its handles closed or not. */
	void *ref;
};
struct sbx_shmaps {
	struct sbx_shmap m[SBX_SHMAP_MAX];
	unsigned count;
	int readonly_mem;  /* KVM_CAP_READONLY_MEM: a read-only mapping is a read-only memslot */
	unsigned max;	   /* entries usable: SBX_SHMAP_MAX, fewer if KVM has fewer slots */
	uint64_t bus_addr; /* the address of the last SIGBUS past a file's end */
	/* Taken to add or remove a window, and by the tree's keeper, which counts another
	 * process's anonymous windows (sbx_shmap_anon_bytes) while that process runs. */
	pthread_mutex_t lock;
};
/* Not a CPU vector: the pseudo-vector of a fault KVM_RUN returned as EFAULT on a shared
 * window's page past the end of its file (SIGBUS, BUS_ADRERR). */
#define SBX_VEC_SHMAP_BUS 32

/* Threads (threads.c): the vCPUs beyond vCPU 0, one per guest thread, each run by a host thread
 * of its own. */
#define SBX_MAX_VCPUS 1024
/* The sandbox's first process is pid 2, its parent pid 1: an init of the monitor's own that no
 * program sees, as under bubblewrap's --unshare-pid. A child of the first process then reads a
 * parent other than 1, as any program run natively does (getppid() == 1 means "orphaned" to
 * daemons and watchdogs), and an orphan goes to pid 1, which reaps it. */
#define SBX_FIRST_PID 2u
/* Linux's largest pid_max: a thread id must also fit a robust futex's FUTEX_TID_MASK. */
#define SBX_PID_LIMIT 4194304u
struct sbx_tvcpu;
struct sbx_threads {
	pthread_mutex_t lock; /* creation and teardown */
	/* One ending of the threads at a time: the run's end (vCPU 0's thread) and a fuzz
	 * input's park (the front end's) may both end them, and `end` is cleared at the last. */
	pthread_mutex_t join_lock;
	atomic_uint launches;		    /* host threads started for vCPUs so far */
	struct sbx_tvcpu *v[SBX_MAX_VCPUS]; /* by vCPU index (0 unused: vCPU 0 is proc.vcpu) */
	unsigned nv;			    /* indices below this may be in use */
	atomic_int started;		    /* vCPUs beyond vCPU 0 ever started */
	uint32_t max;			    /* --max-threads: vCPUs at once, vCPU 0's included */
	uint32_t ncpus;			    /* --cpus: host CPUs the vCPUs may use */
	uint8_t cpuset[128];		    /* those CPUs (a cpu_set_t), from the process's own */
	/* Hardware KVM (or SBX_SHOOTDOWN=always): a page-table change is followed by a TLB
	 * shootdown of the other vCPUs; PVM's shadow page tables make it needless. */
	int shootdown;
	_Atomic uint64_t tlb_gen; /* shootdowns asked for */
	_Atomic uint64_t exits;	  /* KVM_RUN returns of these vCPUs */
	atomic_int repin0;	  /* vCPU 0's thread takes the threads' CPUs, not its own one */
	atomic_int end;		  /* the run is over: the vCPU threads return (sbx_threads_end) */
	/* Every vCPU held out of the guest (sbx_threads_hold): one holder at a time. */
	pthread_mutex_t hold_lock;
	atomic_uint hold;
	/* Host calls writing guest RAM without ring_lock now (a blocked read longer than its
	 * bounce buffer can take, hc_io.c): a threaded parent's fork lends its RAM only when
	 * none is (procs.c). Raised under ring_lock. */
	atomic_uint ram_writers;
	/* Thread ids (ABI 1.13): the one held for the next thread (0: none), and each vCPU's
	 * thread's until it ends, which the sandbox's pid allocator skips and kill finds. */
	atomic_uint tid_next;
	atomic_uint tid[SBX_MAX_VCPUS];
	atomic_uint tid_hi;	      /* the indices below this may have an id */
	_Atomic int64_t ended_cpu_ns; /* CPU time of host threads that ended (sbx_threads_stop) */
	uint32_t tid_count; /* without hooks.new_tid: the ids given, counted from pid + 1 */
};

struct sbx_proc {
	struct sbx_kvm kvm;
	struct sbx_mem mem;
	struct sbx_shmaps shmaps;
	struct sbx_image image;
	struct sbx_ring_srv ring;
	struct sbx_vcpu vcpu;
	struct sbx_threads threads;
	struct sbx_files *files; /* the handle table (calls/fdtable.c) */
	char cwd[POLICY_PATH_MAX];
	/* The ids the guest sees (boot page): SBX_FIRST_PID, 1, SBX_FIRST_PID, SBX_FIRST_PID for
	 * the first process of a sandbox. */
	uint32_t pid, ppid, pgid, sid;
	int64_t start_ns; /* CLOCK_MONOTONIC when the process began (/proc's start time) */
	/* execve: the guest path and arguments of the image now running (reports), and whether
	 * that image is another than host.prog, the sandbox's first program. */
	char *exec_path;
	char *exec_args;
	int other_image;
};

/* How a sandbox runs, stops and pauses (stop.c, pause.c). */
struct sbx_life {
	atomic_int stopping; /* also a futex word: SLEEP waits on it */
	struct sbx_stop stop;
	/* An end (an exit, a kill) that came while a stop the run may come back from held it (a
	 * fault going to the program's handler): taken instead of going on (sbx_stop_take_late).
	 * late_sig: a signal to the monitor's, set from its handler. */
	pthread_mutex_t late_lock;
	struct sbx_stop late;
	struct sbx_stop_who late_who;
	int late_set, late_has_who;
	atomic_int late_sig;
	atomic_int nudge; /* bumped to end a SLEEP in progress early */
	/* Pause: the control thread asks, the vCPU thread stops at an instruction boundary with
	 * the ring quiesced and waits. Two reasons, each its own bit, so that one's end does not
	 * end the other's: an operator's or a snapshot's (SBX_PAUSE_CTL), and a stop signal's
	 * (SBX_PAUSE_JOB: the process is stopped until SIGCONT, sandbox/procs.c). */
	pthread_mutex_t pause_lock;
	pthread_cond_t pause_cond;
	atomic_int pause_req;
	int paused, running, confined;
	int pause_hold; /* the pauser is using the state: a kill waits for its resume */
	/* Stops asked for (sbx_vm_job_stop) and told (hooks.job_stopped), under pause_lock: a
	 * stop that comes while vCPU 0 still waits from the last one is told too. */
	unsigned job_gen, job_told;
	struct timespec first_run_at, last_exit_at; /* CLOCK_REALTIME */
	int first_call_pending;			    /* set by whoever wants first_call_at */
	struct timespec first_call_at;		    /* CLOCK_MONOTONIC */
};

/* Where the sandbox comes from: its snapshot lineage and its program's file. */
struct sbx_origin {
	uint8_t snap_id[16], parent_id[16];
	uint8_t elf_hash[16];
	char snap_prog[POLICY_PATH_MAX]; /* the ELF a restored snapshot names */
};

/* How the sandbox is driven, set by whoever drives it (the exec engine). */
struct sbx_run_opts {
	uint32_t boot_flags; /* SBX_BOOT_EXEC... for the boot page */
	uint32_t spin_us;    /* the guest's spin on a request before the doorbell (0: default) */
	int confine_thread;  /* confine the vCPU thread and its children only */
	int full_reset;	     /* a reset puts back all vCPU state CPL0 can change (untrusted) */
	int det_random;	     /* getrandom answers from det_state, not the host */
	uint64_t det_state, det_out;
	int fs_changed;	 /* a call may have changed a writable mount since the reset */
	uint32_t nofile; /* the RLIMIT_NOFILE the boot page reports (calls/ sets it) */
};

/* What the modules above the core ask it to call: the core never names them. */
/* What an exit handler (or a hook on one) tells the run loop. */
enum sbx_action { SBX_ACT_CONTINUE, SBX_ACT_STOP };
struct sbx_hooks {
	/* Serves one request of the ring (calls/dispatch.c). */
	int64_t (*dispatch)(struct sbx_vm *vm, const struct sbx_slot *s);
	/* Whether serving it may wait on the host: 0 no; SBX_WAITS (a poll, a fork, a terminal),
	 * which the poller leaves to the vCPU's own thread; SBX_WAITS_UNTIL_READY (a read of an
	 * empty pipe), which it looks at again for a while before it does. */
	int (*may_wait)(struct sbx_vm *vm, const struct sbx_slot *s);
	/* A doorbell, after the ring is served (the exec engine parks there). */
	enum sbx_action (*doorbell)(struct sbx_vm *vm);
	/* Just before the first KVM_RUN (a migration destination says RESUMED there). */
	void (*first_run)(struct sbx_vm *vm);
	void *first_run_ctx;
	/* Once the monitor is confined, before the first instruction; and when the run is over
	 * (the control socket's thread). */
	int (*run_start)(struct sbx_vm *vm, char *err, size_t errlen);
	void (*run_end)(struct sbx_vm *vm);
	/* Before the sandbox goes away. */
	void (*close)(struct sbx_vm *vm);
	/* The address in [lo, hi) that the instruction at the vCPU's rip accesses: 0 and *addr,
	 * or -1 (report/disasm.c decodes it). */
	int (*mem_operand)(struct sbx_vm *vm, uint64_t lo, uint64_t hi, uint64_t *addr);
	/* POINT: a thread at --warm's snapshot point in a program with threads (exec/). */
	int64_t (*point)(struct sbx_vm *vm);
	/* The process calls FORK, WAIT, PKILL, PGRP (sandbox/procs.c); and an EXECVE done (a
	 * vfork's parent goes on). */
	int64_t (*proc)(struct sbx_vm *vm, const struct sbx_slot *s);
	void (*execed)(struct sbx_vm *vm);
	/* An EXECVE is about to replace the image (sandbox/procs.c: its POSIX timers end); and
	 * past its point of no return, the new RAM in place (a vfork's child stops the dirty log
	 * its parent's share needed, before the new image's writes are marked). */
	void (*exec_begin)(struct sbx_vm *vm);
	void (*exec_committed)(struct sbx_vm *vm);
	/* Memory outside the process's RAM came (shared anonymous memory): the tree's keeper
	 * holds the sandbox to --mem from now on, even with one process. */
	void (*mem_outside)(struct sbx_vm *vm);
	/* A window's hold on what it maps (struct sbx_shmap's ref: a program's memfd), taken
	 * (+1) by a fork's copy of the window and let go (-1) with it (calls/memfd.c). */
	void (*ref_hold)(void *ref, int delta);
	/* The first process's: the CPU time in ns of the sandbox's other processes, the ended
	 * ones' included (sandbox/procs.c), which --cpu-time counts with its own. */
	int64_t (*others_cpu_ns)(struct sbx_vm *vm);
	/* An id for a thread of this process from the sandbox's pid space, which no process or
	 * other thread has (sandbox/procs.c). Without it, ids count from the pid + 1. */
	uint32_t (*new_tid)(struct sbx_vm *vm);
	/* A restored snapshot's threads have ids below next: new ids start there. */
	void (*ids_from)(struct sbx_vm *vm, uint32_t next);
	/* Every vCPU of a process a stop signal stops is at its pause point (core/pause.c),
	 * called there with ring_lock held: its parent may hear of the stop. */
	void (*job_stopped)(struct sbx_vm *vm);
	/* A terminal's signal (calls/pty.c) to every process of group pgrp, the caller's own
	 * too: SI_KERNEL, from no process. 0, or -EIO for a stop signal (TSTP, TTIN, TTOU) to
	 * an orphaned group, which nothing would continue: not sent. */
	int (*tty_signal)(struct sbx_vm *vm, uint32_t pgrp, int sig);
	/* /proc's view of the sandbox's other processes (sandbox/procs.c): the pids of those
	 * running, up to max of them (pids may be NULL), and how many there are; and one's VM lent
	 * to fn (which may be NULL: whether it runs) under the tree's lock, so that it cannot go
	 * away meanwhile: 0, or -ESRCH. */
	unsigned (*procs_list)(struct sbx_vm *vm, uint32_t *pids, unsigned max);
	int (*procs_with)(struct sbx_vm *vm, uint32_t pid,
			  void (*fn)(struct sbx_vm *other, void *ctx), void *ctx);
};

/* A sandbox: its configuration and policy, its lifecycle, its process, and the state each
 * module above the core keeps (opaque here). */
struct sbx_limits;
struct sbx_audit;
struct sbx_control;
struct mig_stream;
struct sbx_exec;
struct sbx_procs;
struct sbx_vm {
	struct sbx_config cfg;
	struct policy own_policy; /* used when the config brings none: no mounts */
	struct sbx_host host;
	struct sbx_proc proc;
	struct sbx_life life;
	struct sbx_origin origin;
	struct sbx_run_opts opts;
	struct sbx_hooks hooks;
	struct sbx_stats stats;
	uint64_t call_count[SBX_CALL_COUNT];
	struct sbx_limits *limits;   /* calls/limits.c */
	struct sbx_audit *audit;     /* calls/audit.c */
	struct sbx_control *control; /* persist/control.c */
	struct mig_stream *incoming; /* persist/migration.c: the stream until RESUMED */
	struct sbx_exec *exec;	     /* exec/ */
	struct sbx_procs *procs;     /* sandbox/procs.c: the process tree, shared by its VMs */
};

/* fork.c: child, made by sbx_core_new_child (boot.c: the parent's configuration and host
 * facts, nothing asked of the kernel that the confined monitor may not ask), becomes a copy of
 * parent stopped in the FORK request it is serving (seq, at the ring's tail): the same RAM,
 * vCPU state (RAM lent rather than copied when lend: SBX_LEND_WHOLE for a vfork's child, the
 * parent stopped meanwhile; SBX_LEND_EXTENTS for a fork's, see sbx_mem_lend), image and ids;
 * the request answered 0 in the child's ring. On the parent's vCPU thread, which is out of
 * KVM_RUN. 0 or -errno with err set. */
#define SBX_LEND_WHOLE 1
#define SBX_LEND_EXTENTS 2
int sbx_core_new_child(struct sbx_vm *parent, int lend, struct sbx_vm **out, char *err,
		       size_t errlen);
int sbx_core_fork(struct sbx_vm *parent, struct sbx_vm *child, uint64_t seq, char *err,
		  size_t errlen);
/* The vCPU a fork copies: the one whose thread serves the request (vCPU 0's or a second
 * thread's), with its run area, page-table root, ring and the ring's tail (the FORK slot). */
struct sbx_fork_src {
	int index, fd;
	struct kvm_run *run;
	uint64_t root, ring_gpa;
	uint32_t tail;
};
/* threads.c: the fork source for a request served on this thread. 0, or -ENOENT. */
int sbx_thread_fork_src(struct sbx_vm *vm, struct sbx_fork_src *src);
/* vCPU 0's home root (page tables and window) and its ring's address. */
uint64_t sbx_vcpu0_root(struct sbx_vm *vm);
uint64_t sbx_ring_gpa(struct sbx_vm *vm);
/* boot.c: execve: the image replaced by the ELF at fd (guest path gpath), with argv and envp,
 * in the same VM; on the vCPU's own thread. Before anything is changed the file is checked:
 * an error then leaves the process as it was (-errno, err set); after that point an error is
 * the process's end (*lost set). */
int sbx_vm_reimage(struct sbx_vm *vm, int fd, const char *gpath, char *const *argv,
		   char *const *envp, int *lost, char *err, size_t errlen);
/* The checks alone, nothing changed: a process with other threads asks first (they end only
 * once the execve cannot fail for what the file holds). */
int sbx_vm_exec_check(struct sbx_vm *vm, int fd, const char *gpath, char *const *argv,
		      char *const *envp, char *err, size_t errlen);

/* threads.c */
void sbx_threads_init(struct sbx_vm *vm);
/* THREAD_START: a new vCPU for the guest thread at index, started at rip/rsp in its window with
 * page-table root cr3, its ring at ring_gpa, on a host thread of its own. 0 or -errno. */
int sbx_thread_start(struct sbx_vm *vm, uint32_t index, uint64_t cr3, uint64_t rip, uint64_t rsp,
		     uint64_t ring_gpa);
/* TID: the id held for the process's next thread, held now if none is (also written to the
 * boot page's tid_next). */
int64_t sbx_thread_tid_next(struct sbx_vm *vm);
/* The thread on vCPU index took the held id tid: recorded for it, and the next one held and
 * returned. -EINVAL if tid is not the one held. */
int64_t sbx_thread_tid_take(struct sbx_vm *vm, uint32_t index, uint64_t tid);
/* The thread with this id ended on the calling vCPU (PARK's a3): forgotten. */
void sbx_thread_tid_gone(struct sbx_vm *vm, uint64_t tid);
/* Whether a thread of this process has this id, or it is held for the next one (held). */
int sbx_thread_has_tid(struct sbx_vm *vm, uint32_t tid, int held);
/* CPU time the process has used: vCPU 0's thread's and the threads' (/proc's times). */
int64_t sbx_process_cpu_ns(struct sbx_vm *vm);
/* Threads running now besides the main one (/proc's Threads). */
unsigned sbx_threads_live(struct sbx_vm *vm);
/* CPU time the threads' vCPUs (not vCPU 0's) have used, for --cpu-time. */
int64_t sbx_threads_cpu_ns(struct sbx_vm *vm);
/* Wakes every thread's vCPU out of KVM_RUN or a wait (async-signal-safe). */
void sbx_threads_kick(struct sbx_vm *vm);
/* After the run: stops and joins every thread's host thread. */
void sbx_threads_end(struct sbx_vm *vm);
/* execve with no other thread left: their vCPUs' host threads end, and the vCPUs stay, for the
 * new image's THREAD_START (or, if the old image goes on, a THREAD_RUN) to start again. Called
 * by vCPU 0's own thread. */
void sbx_threads_stop(struct sbx_vm *vm);
/* Between two runs from a snapshot with no thread (the exec engine), after a run that started
 * some: their host threads end, their vCPUs wait for the next run's THREAD_START, no id is
 * held, and the poller serves vCPU 0's ring again. */
void sbx_threads_reset(struct sbx_vm *vm);
/* THREAD_RUN of a vCPU whose host thread sbx_threads_stop ended (the execve failed and the old
 * image went on): its thread again, the vCPU as it was. 0 or -errno. */
int sbx_thread_resume(struct sbx_vm *vm, uint32_t index);
/* The execve failed and the old image goes on: its stopped vCPUs may be resumed. */
void sbx_threads_keep(struct sbx_vm *vm);
/* At teardown (after the report, which reads a faulting thread's vCPU): closes them. */
void sbx_threads_free(struct sbx_vm *vm);
/* What a snapshot keeps of a thread beside its vCPU's registers. */
struct sbx_thread_rec {
	uint32_t index, tid, tail; /* vCPU index, thread id, the monitor's place in its ring */
	uint64_t cr3, ring_gpa;
	int fd;	 /* its vCPU, for the state of its registers */
	int ran; /* restored onto a vCPU that has run before (a reset's): its CPUID stays */
};
/* The threads whose vCPUs run (or will, restored), in index order: at most max. */
unsigned sbx_threads_records(struct sbx_vm *vm, struct sbx_thread_rec *out, unsigned max);
/* A snapshot's thread, before the run: its vCPU made (rec->fd set) and its host thread left
 * for sbx_threads_launch. Checks every field: 0 or -errno with the reason in err. */
int sbx_thread_restore(struct sbx_vm *vm, struct sbx_thread_rec *rec, char *err, size_t errlen);
/* At the run's start: the restored threads' host threads. */
int sbx_threads_launch(struct sbx_vm *vm, char *err, size_t errlen);
/* Whether every thread's vCPU is at its pause point (pause.c). */
int sbx_threads_all_paused(struct sbx_vm *vm);
/* How many threads' vCPUs have a host thread now (the exec engine: none may at a park). */
unsigned sbx_threads_running(struct sbx_vm *vm);
/* Around each KVM_RUN of a vCPU (c: its part in shootdowns): sbx_tlb_enter flushes what a
 * shootdown asked for and returns 0 to enter, -1 to look again; sbx_tlb_leave after. */
int sbx_tlb_enter(struct sbx_vm *vm, int fd, struct sbx_tlb_cpu *c);
void sbx_tlb_leave(struct sbx_vm *vm, struct sbx_tlb_cpu *c);
/* On vCPU 0's thread, once the program has a second thread: it leaves the CPU it was pinned
 * to (beside the poller) for the CPUs all the vCPUs share. */
void sbx_threads_repin0(struct sbx_vm *vm);
/* TLB_SHOOTDOWN from the vCPU served here: returns once no other vCPU runs the guest with
 * translations older than now. */
int sbx_tlb_shootdown(struct sbx_vm *vm);
/* Until sbx_threads_release no vCPU runs the guest: those in KVM_RUN are kicked out and waited
 * for, the others wait at their next entry. From any monitor thread that runs no vCPU then
 * (a vCPU's thread serving its own exit does not); one holder at a time. */
void sbx_threads_hold(struct sbx_vm *vm);
void sbx_threads_release(struct sbx_vm *vm);
/* A host call is about to write guest RAM without ring_lock (on: 1, raised under it) or has
 * done so (0); sbx_threads_ram_writers counts those in flight. */
void sbx_threads_ram_write(struct sbx_vm *vm, int on);
unsigned sbx_threads_ram_writers(struct sbx_vm *vm);
/* While held: every vCPU stopped at rip `from` goes on at `to` (a patched site's inside). */
void sbx_threads_move_rip(struct sbx_vm *vm, uint64_t from, uint64_t to);
/* vCPU i (0: vCPU 0): its fd, page-table root and the tid of the thread it runs (0: none),
 * from its per-CPU page; -ENOENT if there is no such vCPU. For reports: vCPUs below
 * sbx_threads_limit may exist. */
int sbx_thread_vcpu(struct sbx_vm *vm, unsigned i, int *fd, uint64_t *root, uint32_t *tid);
unsigned sbx_threads_limit(struct sbx_vm *vm);
/* The vCPU served on this thread begins (1) or ends (0) a wait on the host (ring.c), on cond
 * if not NULL (sbx_tlb_cpu.wait_cond). */
void sbx_vcpu_waiting(struct sbx_vm *vm, int on, pthread_cond_t *cond);
/* The threads' vCPUs are being ended (sbx_threads_stop, the run's end): a wait of a thread's
 * that no kick ends (wait4, a vfork's, SLEEP) must end. Never while vCPU 0 waits. */
int sbx_threads_ending(struct sbx_vm *vm);
/* Host threads started for threads' vCPUs so far: a change means a run started threads. */
unsigned sbx_threads_launches(struct sbx_vm *vm);
/* Threads whose vCPUs exist beyond vCPU 0 (0: the program never had a second thread). */
int sbx_threads_count(struct sbx_vm *vm);
/* The vCPU fd a report reads: the faulting thread's, else vCPU 0's. */
int sbx_fault_fd(struct sbx_vm *vm);
/* The upcall state of vCPU index (0: vCPU 0's), NULL for an index with no vCPU. */
struct sbx_upcall_state *sbx_upcall_state_of(struct sbx_vm *vm, int index);
/* When the thread serving this request is a thread's vCPU: its index (0 for vCPU 0's ring). */
int sbx_thread_current(void);
/* The thread served here, if it is a thread's vCPU: 1 and who; 0 for vCPU 0. */
struct sbx_stop_who;
int sbx_thread_who(struct sbx_vm *vm, struct sbx_stop_who *who);

/* pause.c (sbx_vm_pause and sbx_vm_resume are public: sandbox.h) */
int sbx_vm_pause(struct sbx_vm *vm, int timeout_ms);
void sbx_vm_resume(struct sbx_vm *vm);
void sbx_pause_point(struct sbx_vm *vm);
/* With pause_lock held, at a vCPU's pause point: until the pause ends (or a kill ends one
 * nobody holds, or *quit is set). */
void sbx_pause_wait(struct sbx_vm *vm, atomic_int *quit);
/* On the vCPU thread after an exit: completes the exit's instruction (a pending port or MMIO
 * access) without entering the guest, so that the vCPU's state is whole. */
void sbx_vcpu_complete(struct sbx_vm *vm);
/* The same for any vCPU of the VM, on its own thread. */
void sbx_vcpu_complete_fd(struct sbx_vm *vm, int fd, struct kvm_run *run);
/* For a snapshot or migration: pauses (unless an operator has) and holds the pause, so that a
 * kill meanwhile waits; the release resumes only a pause it made. */
int sbx_pause_hold(struct sbx_vm *vm, int timeout_ms, int *was_paused);
void sbx_pause_release(struct sbx_vm *vm, int was_paused);
#define SBX_PAUSE_CTL 1
#define SBX_PAUSE_JOB 2
/* Job control: every vCPU of the process stops at its pause point, as for a pause, until
 * sbx_vm_job_continue; neither waits. A kill ends the stop as it ends a pause. */
void sbx_vm_job_stop(struct sbx_vm *vm);
void sbx_vm_job_continue(struct sbx_vm *vm);
int sbx_vm_job_stopped(struct sbx_vm *vm);

/* dirty.c: dirty tracking for reset and migration. */
int sbx_dirty_start(struct sbx_vm *vm, char *err, size_t errlen);
void sbx_dirty_stop(struct sbx_vm *vm);
/* ORs the pages dirtied since the last call (KVM's log and the monitor's own writes) into
 * bitmap (one bit per page), re-protects them, and returns how many bits it set, or -errno.
 * take_mon: also clear the monitor's marks (only when no monitor write is in progress:
 * ring_lock held or the sandbox stopped); else they are read and stay. */
int64_t sbx_dirty_collect(struct sbx_vm *vm, uint64_t *bitmap, int take_mon);
/* The same, but the pages in `writable` (NULL: none) stay as they are in KVM's log: logged and
 * not write-protected again, so the guest writes them without a fault and every later
 * collect reports them dirty (reset.c's pages written in every run). Needs manual protection
 * (vm->proc.mem.manual_protect); without it every page is protected again. */
int64_t sbx_dirty_collect_keep(struct sbx_vm *vm, uint64_t *bitmap, int take_mon,
			       const uint64_t *writable);
/* 64-bit words of a bitmap of guest RAM's pages. */
uint64_t sbx_dirty_words(const struct sbx_vm *vm);
/* Marks [gpa, gpa+len) as written by the monitor. */
void sbx_mem_dirty(struct sbx_vm *vm, uint64_t gpa, uint64_t len);
/* Re-adds the memslot: under PVM the only way for KVM to see page tables the monitor put
 * back (docs/architecture.md, "The guest address space"). */
int sbx_memslot_reload(struct sbx_vm *vm);

/* run.c: the exit handler, free of KVM side effects so tests can feed it made-up exits. */
enum sbx_action sbx_handle_exit(struct sbx_vm *vm, struct kvm_run *run);

/* boot.c: a sandbox's core, created in steps, so that the host calls can attach between
 * them (sandbox/sandbox.c). A core without KVM (sbx_core_new alone) has guest RAM and a cwd:
 * enough for the exit handler and the hypercalls, so tests and fuzzers can drive them with
 * made-up exits and requests. */
int sbx_core_new(const struct sbx_config *cfg, struct sbx_vm **out, char *err, size_t errlen);
/* Loads the guest kernel and the program (public: sandbox.h). */
int sbx_vm_load(struct sbx_vm *vm, char *err, size_t errlen);
/* Creates the KVM objects on a helper thread while the program loads (sbx_vm_load joins it). */
void sbx_core_start_kvm(struct sbx_vm *vm);
int sbx_core_join_kvm(struct sbx_vm *vm, char *err, size_t errlen);
void sbx_core_free(struct sbx_vm *vm);
/* run.c: the calling thread becomes the vCPU thread; then runs it until the sandbox stops. A
 * CPU fault the program handles goes back to it; one it does not ends the run with f filled. */
void sbx_core_enter(struct sbx_vm *vm);
void sbx_core_run(struct sbx_vm *vm, struct sbx_fault *f);
/* The initial stack's arguments as Linux gives them (AT_RANDOM left for the caller); envp
 * NULL means the policy's environment. */
void sbx_stack_args(struct sbx_vm *vm, char *const *argv, char *const *envp,
		    struct loader_stack_args *sa);
/* Reads the host facts of vm->host (again: a restore names its program late). Before
 * confinement only. */
void sbx_host_facts(struct sbx_vm *vm);

/* guest_mem.c: the only way to touch guest RAM. Addresses are guest-physical integers. */
int sbx_mem_create(struct sbx_vm *vm, uint64_t size, char *err, size_t errlen);
void sbx_mem_destroy(struct sbx_vm *vm);
void *sbx_gptr(struct sbx_vm *vm, uint64_t gpa, uint64_t len);
/* Calls fn for each range of guest RAM the host holds, from `from` up (the memfd's data
 * extents: holes were never touched and read as zeros); fn returns non-zero to stop, and that
 * is the result. */
int sbx_mem_extents(struct sbx_vm *vm, uint64_t from,
		    int (*fn)(void *ctx, uint64_t gpa, uint64_t len), void *ctx);
/* The first byte at or after gpa the host holds (mem.size if none; gpa itself when RAM has
 * no memfd), and in *data_end where that held run ends. */
uint64_t sbx_mem_next_data(struct sbx_vm *vm, uint64_t gpa, uint64_t *data_end);
/* For reads only: not counted as a monitor write by dirty tracking. */
const void *sbx_gptr_ro(struct sbx_vm *vm, uint64_t gpa, uint64_t len);
int sbx_copy_from_guest(struct sbx_vm *vm, void *dst, uint64_t gpa, uint64_t len);
int sbx_copy_to_guest(struct sbx_vm *vm, uint64_t gpa, const void *src, uint64_t len);

/* gva.c: the program's memory by its virtual addresses, through the guest's page tables
 * (root: a CR3 value). For what names program memory as the program does (reports, core
 * files, the link map); the ring's addresses are guest-physical (sbx_gptr). */
#define SBX_GVA_WRITE 1u /* the walk needs writable pages */
#define SBX_GVA_USER 2u	 /* ... user pages */
#define SBX_GVA_EXEC 4u	 /* ... executable pages */
/* The root the vCPU was last seen with (set up, restored, or read at a fault). */
uint64_t sbx_guest_root(struct sbx_vm *vm);
void sbx_set_guest_root(struct sbx_vm *vm, uint64_t cr3);
/* The guest-physical address of va, and how many bytes from it the same leaf maps (within
 * RAM); -EFAULT if not mapped as access asks, non-canonical, or any table is outside RAM. */
int sbx_gva_translate(struct sbx_vm *vm, uint64_t root, uint64_t va, unsigned access, uint64_t *gpa,
		      uint64_t *span);
/* The longest run from va (at most len) that is mapped to contiguous guest-physical RAM. */
int sbx_gva_run(struct sbx_vm *vm, uint64_t root, uint64_t va, uint64_t len, uint64_t *gpa,
		uint64_t *run);
/* All or nothing over a range that may cross pages: 0 or -EFAULT. */
int sbx_gva_read(struct sbx_vm *vm, uint64_t root, uint64_t va, void *buf, uint64_t len);
int sbx_gva_write(struct sbx_vm *vm, uint64_t root, uint64_t va, const void *buf, uint64_t len);
/* As much as is mapped from va on, up to len: the count of bytes read. */
uint64_t sbx_gva_read_max(struct sbx_vm *vm, uint64_t root, uint64_t va, void *buf, uint64_t len);
/* A NUL-terminated string at va: 0, -EFAULT, or -ENAMETOOLONG (cut to outlen - 1). */
int sbx_gva_string(struct sbx_vm *vm, uint64_t root, uint64_t va, char *out, size_t outlen);
/* The kernel's table of mappings, checked (sorted, disjoint, aligned, user space): how many
 * entries were kept (0 with a kernel that publishes none); *out is the caller's to free. */
unsigned sbx_guest_vmas(struct sbx_vm *vm, struct sbx_vma **out);
/* Calls fn for each page of RAM the program's half of root maps writable to it (4 KiB each,
 * a large page's one by one), with its guest-physical address; stops at fn's non-zero, which
 * it returns, or with -E2BIG once it has looked at more than the tables of RAM could hold. */
int sbx_gva_each_writable(struct sbx_vm *vm, uint64_t root, int (*fn)(void *ctx, uint64_t gpa),
			  void *ctx);

/* linkmap.c: the loaded objects of a dynamic program, from its linker's r_debug (DT_DEBUG);
 * before the linker has set it up, or for a static program, the program and interpreter as
 * the monitor placed them. Everything read from guest memory by VA, bounded. */
#define SBX_MAX_OBJECTS 256
#define SBX_OBJ_LOADS 8
struct sbx_object_load {
	uint64_t start, end, offset; /* page-rounded guest range, file offset of start */
	uint8_t prot;		     /* SBX_PROT_* from p_flags */
};
struct sbx_object {
	uint64_t l_addr, l_ld;
	char name[256]; /* the path the guest loaded it by; the program's exe path for the main */
	int is_main;
	struct sbx_object_load loads[SBX_OBJ_LOADS];
	unsigned nloads; /* 0 when its program headers could not be read */
};
/* Fills out[0..max) (out[0] is the program); returns how many. */
int sbx_link_map(struct sbx_vm *vm, uint64_t root, struct sbx_object *out, int max);
/* The object whose PT_LOAD ranges hold addr, or NULL. */
const struct sbx_object *sbx_object_at(const struct sbx_object *objs, int n, uint64_t addr);

/* shmap.c: shared file mappings as memslots above RAM. The window starts at the first 1 GiB
 * boundary at or above the end of RAM. */
uint64_t sbx_shmap_base(const struct sbx_vm *vm);
/* Maps len bytes (page aligned, > 0) of host fd at off (page aligned) MAP_SHARED and makes
 * them guest-physical memory at *gpa (0: where there is room, and *gpa gets where). fd is
 * duplicated; gpath copied. 0 or -errno (ENOMEM: no room there, or no free slot). */
/* Shared anonymous memory of len bytes (MAP_SHARED | MAP_ANONYMOUS): a memfd's window, at
 * *gpa. -ENOMEM when this process's anonymous windows would hold more than its RAM. */
int sbx_shmap_add_anon(struct sbx_vm *vm, uint64_t len, uint64_t *gpa);
/* This process's share of the pages its anonymous windows hold. */
uint64_t sbx_shmap_anon_bytes(struct sbx_vm *vm);
int sbx_shmap_add(struct sbx_vm *vm, int fd, uint64_t off, uint64_t len, int writable,
		  const char *gpath, uint64_t *gpa);
/* A buffer only a host system call will read (or, `into`, write): guest RAM as sbx_gptr, or
 * a range inside one window. Never for the monitor's own loads and stores: a page of a window
 * past its file's end makes a system call fail with EFAULT, but the monitor itself SIGBUS. */
void *sbx_gptr_io(struct sbx_vm *vm, uint64_t gpa, uint64_t len, int into);
/* For a host call made without ring_lock (a blocking read or write of another thread's
 * window): the same bytes of the window's file at a host address of the caller's own, which
 * another thread's munmap of the window cannot take away (nor let a monitor mapping take its
 * place). Fills `held` (host mapping and length, for sbx_shmap_let_go) and returns the new
 * pointer; returns p itself, with held->len 0, if p lies in no window (guest RAM never moves);
 * NULL if the mapping fails. */
struct sbx_shmap_hold {
	void *map;
	size_t len;
};
void *sbx_shmap_hold(struct sbx_vm *vm, void *p, size_t len, struct sbx_shmap_hold *held);
void sbx_shmap_let_go(struct sbx_shmap_hold *held);
/* The mapping starting exactly at gpa, or NULL. */
struct sbx_shmap *sbx_shmap_at(struct sbx_vm *vm, uint64_t gpa);
/* The mapping holding gpa, or NULL. */
struct sbx_shmap *sbx_shmap_find(struct sbx_vm *vm, uint64_t gpa);
/* Drops a mapping's memslot and host mapping (the host page cache keeps what was written). */
void sbx_shmap_remove(struct sbx_vm *vm, struct sbx_shmap *m);
/* Drops them all (the end of a sandbox, a reset to a snapshot that had none). */
void sbx_shmap_clear(struct sbx_vm *vm);
/* fork: the child maps the same files at the same guest-physical addresses, so that writes
 * through either are the other's too, as after Linux's fork. 0 or -errno (the child's VM then
 * holds what was made, which its destruction drops). */
int sbx_shmap_fork(struct sbx_vm *parent, struct sbx_vm *child);
/* After KVM_RUN failed with EFAULT: 1 with *addr set when a window has pages past the end of
 * its file and the instruction at rip accesses one (hooks.mem_operand says which byte; without
 * it, the first such page), else 0. */
int sbx_shmap_bus(struct sbx_vm *vm, uint64_t *addr);

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
/* A snapshot's XSAVE area (standard format, len bytes) made fit for this host's components
 * (host, as sbx_cpu_check_snapshot read them): a component the host lacks but the area holds
 * in its initial state is taken out of XSTATE_BV; one with content refuses, in msg. 0 or
 * -ENOTSUP. */
int sbx_xstate_fit(const struct sbx_xstate *host, const struct kvm_cpuid_entry2 *snap,
		   uint32_t nsnap, uint8_t *area, size_t len, char *msg, size_t msglen);
int sbx_cpu_check_snapshot(struct sbx_vm *vm, const struct kvm_cpuid_entry2 *snap, uint32_t nsnap,
			   uint64_t snap_xcr0, char *msg, size_t msglen);

/* kvm.c */
int sbx_kvm_open(struct sbx_vm *vm, char *err, size_t errlen);
/* A malloc'ed copy of a CPUID table (its nent entries), or NULL. */
struct kvm_cpuid2 *sbx_cpuid_copy(const struct kvm_cpuid2 *c);
/* ioctl(fd, req, arg) again while a signal cuts it short (EINTR): KVM_CREATE_VM and
 * KVM_CREATE_VCPU are interruptible, and a process that forks while its children end gets the
 * kick signal of each SIGCHLD meanwhile. */
int sbx_kvm_ioctl(int fd, unsigned long req, unsigned long arg);
int sbx_kvm_create_vcpu(struct sbx_vm *vm, char *err, size_t errlen);
void sbx_kvm_close(struct sbx_vm *vm);
/* Reads or writes n MSRs; returns how many KVM processed, or -errno. */
int sbx_kvm_msrs(struct sbx_vm *vm, int set, const uint32_t *idx, uint64_t *val, unsigned n);
int sbx_kvm_msrs_fd(int fd, int set, const uint32_t *idx, uint64_t *val, unsigned n);
/* Writes n MSRs, leaving any the host refuses (one the guest could not have set either). */
void sbx_kvm_msrs_set_known(int fd, const uint32_t *idx, uint64_t *val, unsigned n);
/* The bytes of a vCPU's XSAVE area as KVM reads and writes it (AMX's tiles included). */
size_t sbx_kvm_xsave_bytes(struct sbx_vm *vm);
/* Every MSR KVM lists for the vCPU fd that reads and writes back as it is now, but the
 * clock's (*out, which the caller frees, takes them back in one KVM_SET_MSRS). A program that
 * reaches CPL0 could leave any of them changed. */
int sbx_kvm_msrs_capture(int fd, struct kvm_msrs **out, char *err, size_t errlen);

/* x86_setup.c: page tables and descriptor tables (guest memory only), then the vCPU. */
int sbx_x86_build_tables(struct sbx_vm *vm, char *err, size_t errlen);
int sbx_x86_set_cpuid(struct sbx_vm *vm, char *err, size_t errlen);
/* struct sbx_cpuid_table at SBX_CPUID_ADDR from the vCPU's entries as KVM now answers them
 * (after CR4 and XCR0 are set, and again whenever XCR0 changes). 0 or -errno. */
int sbx_x86_publish_cpuid(struct sbx_vm *vm, int fd);
int sbx_x86_set_vcpu(struct sbx_vm *vm, char *err, size_t errlen);
/* KVM's steal time for vCPU fd into the boot page (struct sbx_bootinfo's steal), which the
 * guest's CPU-time clocks subtract: 0, or -EOPNOTSUPP (said once at -v; the clocks then count
 * the time the vCPU waited for a host CPU, as before). vCPU 0's only: a thread's CPU time is
 * its process's. */
int sbx_x86_steal_time(struct sbx_vm *vm, int fd);
/* The paravirtual MSRs that make KVM write guest memory (kvmclock, async page faults, steal
 * time, PV EOI) off, as a new vCPU has them; vCPU 0's (main) steal time given again. For a
 * vCPU whose last user may have set them with CPL0's powers (an untrusted run's reset). */
void sbx_x86_pv_msrs_off(struct sbx_vm *vm, int fd, int main);
/* Restarts the vCPU that stopped the run (sbx_fault_fd: vCPU 0 or a thread's) at rip/rsp at the
 * program's privilege level (after an exception left it in the kernel's CPL0 exception entry). */
int sbx_x86_enter(struct sbx_vm *vm, uint64_t rip, uint64_t rsp);
/* A thread's new vCPU (threads.c): vCPU 0's CPUID, segments, MSRs and XCR0, the page-table
 * root cr3, and rip/rsp in the kernel (its window). again: a vCPU that ran an earlier image,
 * which keeps its CPUID and XCR0. */
int sbx_x86_thread_vcpu(struct sbx_vm *vm, int fd, uint64_t cr3, uint64_t rip, uint64_t rsp,
			int again, char *err, size_t errlen);
/* The same with every general register given (the same vCPU), or on vCPU fd. */
int sbx_x86_resume(struct sbx_vm *vm, const struct kvm_regs *r);
int sbx_x86_resume_fd(struct sbx_vm *vm, int fd, const struct kvm_regs *r);

/* patch.c: a #UD at the `syscall` of a site the kernel patched (a jump straight to it) made the
 * syscall it was: 1 when the vCPU was set to enter the kernel so, 0 when f is another fault. */
int sbx_patch_resume(struct sbx_vm *vm, const struct sbx_fault *f);
/* The record the `jmp *disp32` at va names, when the 7 bytes there are such a jump into the
 * patch window to a record of that very site: 0 and *rec filled (guest RAM: a claim only), or
 * -1. */
int sbx_patch_record_at(struct sbx_vm *vm, uint64_t va, struct sbx_patch_rec *rec);
/* A site's n (<= 8) new bytes at gpa, written while no other vCPU runs the guest; a vCPU
 * stopped at `from` (not 0: an address inside the site) goes on at `to`. 0 or -EFAULT. */
int sbx_patch_write(struct sbx_vm *vm, uint64_t gpa, const void *bytes, size_t n, uint64_t from,
		    uint64_t to);
/* The image's cpuid sites (loader_image.cpuid) rewritten into jumps to records at the top of
 * the patch window, before the program runs: how many (also in proc.image.cpuid_patched). */
int sbx_cpuid_patch(struct sbx_vm *vm);
/* The patched site whose record's code holds rip, or rip itself: what reports name. */
uint64_t sbx_patch_site_of(struct sbx_vm *vm, uint64_t rip);

/* ring.c. sbx_ring_serve's caller holds ring_lock. */
int sbx_ring_serve(struct sbx_vm *vm);
int sbx_ring_serve_at(struct sbx_vm *vm, uint64_t gpa, uint32_t *tail, int own);
/* In a handler about to wait on the host (a PARK, a read of a pipe): releases ring_lock if this
 * thread may (sbx_ring_serve_at says when), so that other vCPUs' requests go on; 1 if it did.
 * The handler then touches no monitor state until sbx_ring_reacquire. */
int sbx_ring_release(struct sbx_vm *vm);
/* The same, for a wait on cond, which a kick for this vCPU then broadcasts. */
int sbx_ring_release_on(struct sbx_vm *vm, pthread_cond_t *cond);
void sbx_ring_reacquire(struct sbx_vm *vm, int released);
int sbx_ring_start(struct sbx_vm *vm, char *err, size_t errlen);
void sbx_ring_stop(struct sbx_vm *vm);
void sbx_ring_doorbell(struct sbx_vm *vm);
/* A POPULATE hint goes to the poller, which backs [gpa, gpa + len) a piece at a time between
 * requests while the vCPU goes on (queued before the run, it waits for the poller's start):
 * 0, or -EAGAIN (no poller running or to come, a retired one, or its queue is full: serve it
 * here). Caller holds ring_lock, or no poller runs yet. */
int sbx_ring_defer_populate(struct sbx_vm *vm, uint64_t gpa, uint64_t len);
/* Drops [gpa, gpa + len) from the ranges still to back (the guest gave the pages back: backing
 * them would undo that). Caller holds ring_lock. */
void sbx_ring_forget_populate(struct sbx_vm *vm, uint64_t gpa, uint64_t len);
/* For a thread that polls the ring: a request is published and not served yet; serve what is
 * (takes ring_lock); doorbells wanted (on) or not. */
int sbx_ring_pending(struct sbx_vm *vm);
void sbx_ring_poll(struct sbx_vm *vm);
void sbx_ring_need_wakeup(struct sbx_vm *vm, int on);
/* The poller's one look at a ring: serves what is published (never a request that may wait),
 * backs a piece of what was hinted (a smaller one when `shared` by several rings), and after
 * SBX_POLL_IDLE_NS without a request asks for doorbells and stops spinning on it. Never waits for
 * ring_lock. 1 while the ring wants spinning. */
int sbx_ring_turn(struct sbx_vm *vm, int shared);
/* The poller, retired when the first thread started, serves vCPU 0's ring again (the threads
 * are gone: sbx_threads_reset). */
void sbx_ring_unretire(struct sbx_vm *vm);
/* A child process's ring is served by its parent's poller (one spinning thread for a whole
 * process tree, not one each): a reference taken now, used at the child's sbx_ring_start. */
void sbx_ring_share(struct sbx_vm *child, struct sbx_vm *parent);
/* In a handler: 0 when the thread serving it must not wait on the host (the poller, where one
 * ring's wait would stall the others). A handler that would, before anything moved, says so
 * with sbx_ring_would_wait and returns: the request is not answered but left to the vCPU's
 * thread (SBX_DONE_RING), and sbx_ring_refused tells the dispatcher not to count it. */
int sbx_ring_may_wait(void);
void sbx_ring_would_wait(void);
int sbx_ring_refused(void);

/* poller.c: the polling thread and the rings it serves. */
int sbx_poller_new(int cpu, struct sbx_poller **out, char *err, size_t errlen);
struct sbx_poller *sbx_poller_ref(struct sbx_poller *p);
void sbx_poller_unref(struct sbx_poller *p);
int sbx_poller_attach(struct sbx_poller *p, struct sbx_vm *vm);
void sbx_poller_detach(struct sbx_poller *p, struct sbx_vm *vm);
/* The ring's calls are coming (a doorbell, a hint): the poller spins on it again. */
void sbx_poller_wake(struct sbx_poller *p, struct sbx_vm *vm);
/* A kick for the poller thread, if it is serving vm's ring now (a host call it may block in). */
void sbx_poller_kick(struct sbx_poller *p, struct sbx_vm *vm);
/* Takes ring_lock from another thread than the poller, which may hold it while blocked in a
 * host call the guest asked for (a SLEEP, a poll with no end). Tries every 10 ms, first
 * cutting such a call short as `how` allows (sbx_ring_nudge); gives up with -ETIMEDOUT after
 * timeout_ms (0: never), or -ESRCH with SBX_RING_UNLESS_STOPPING once the sandbox stops. */
#define SBX_RING_NUDGE 1 /* end a SLEEP early (the guest sleeps again for the rest) */
#define SBX_RING_KICK                                                                              \
	2 /* also interrupt a blocking host call: only when the run                                \
	   * is over (its guest never sees the EINTR) */
#define SBX_RING_UNLESS_STOPPING 4
int sbx_ring_lock(struct sbx_vm *vm, int how, int timeout_ms);
void sbx_ring_nudge(struct sbx_vm *vm, int how);

/* signal.c: hands a CPU fault back to the guest kernel when the program has a handler. */
int sbx_signal_upcall(struct sbx_vm *vm, const struct sbx_fault *f);
/* A KICK for vCPU index (fd, page-table root cr3), on its own thread before it enters the
 * guest: if it stopped in the program's code, it enters the kernel's upcall entry instead,
 * which delivers its pending signals there. 1 if so, 0 if it is in the kernel (which delivers
 * them on its way out), or -errno. */
int sbx_signal_async(struct sbx_vm *vm, int index, int fd, uint64_t cr3);
/* threads.c: asks vCPU index to stop in the program's code for a signal (KICK): 0 or
 * -EINVAL for no such vCPU. Interrupts KVM_RUN only, never a host call of its thread. Then,
 * on the vCPU's thread before KVM_RUN, sbx_vcpu_async. */
int sbx_vcpu_kick(struct sbx_vm *vm, unsigned index);
void sbx_vcpu_async(struct sbx_vm *vm, struct sbx_tlb_cpu *c, int index, int fd, uint64_t cr3);
/* On the vCPU's thread as it is done with it: its re-kick timer goes. */
void sbx_vcpu_async_end(struct sbx_tlb_cpu *c);
int sbx_in_kernel(uint64_t rip);

/* XXH3-128 of a file (zeros if it cannot be read). */
void sbx_elf_hash(const char *path, uint8_t out[16]);
void sbx_vm_choose_cpus(struct sbx_vm *vm);
/* The host CPUs the calling thread may run on (0 if unknown); pins it to one (cpu >= 0). */
int sbx_cpu_count(void);
void sbx_pin_cpu(int cpu);
/* The CPUs the calling thread may run on but the one it runs on now: 0, or -1 if there are
 * none (or it cannot tell). */
int sbx_cpus_but_this(cpu_set_t *set);
/* kvm.c: 1 when /dev/kvm is PVM (public). /dev/kvm stays open for the VM's life: a fork
 * makes the child's VM from it (the confined monitor may not open it again). */
int sbx_kvm_is_pvm(void);
/* Pages dirtied since tracking started, without taking them (-1: tracking is off), and
 * whether KVM can tell that (manual protection). */
int64_t sbx_dirty_peek(struct sbx_vm *vm);
int sbx_dirty_peekable(struct sbx_vm *vm);
/* The pages written since the log started (KVM's log and the monitor's marks) into bitmap,
 * taking nothing away: 0, or -1 without a log with manual protection. */
int sbx_dirty_peek_map(struct sbx_vm *vm, uint64_t *bitmap);
/* Whole pages of [gpa, gpa + len) the program gave back (zeros now): no longer dirty, in the
 * log and the monitor's marks, so that a lent fork child's count of what it holds goes down. */
void sbx_dirty_forget(struct sbx_vm *vm, uint64_t gpa, uint64_t len);
/* A child's RAM: its parent's, mapped privately (struct sbx_mem's lent): the whole memfd
 * (SBX_LEND_WHOLE), or its extents over anonymous memory (SBX_LEND_EXTENTS), so that the
 * child's first touch of a hole allocates nothing in the parent's memfd: for a child that
 * may run a while (a shmem hole's private fault allocates a page in the file; a vfork's
 * child execs at once, and mapping the extents costs more than it saves there). */
int sbx_mem_lend(struct sbx_vm *child, const struct sbx_vm *parent, int how, char *err,
		 size_t errlen);
/* A lent RAM's own memfd, made before an execve's point of no return (-1 when RAM is not lent,
 * -errno with err set), then mapped over it by sbx_mem_own, which takes fd in any case. */
int sbx_mem_own_fd(struct sbx_vm *vm, char *err, size_t errlen);
int sbx_mem_own(struct sbx_vm *vm, int fd, char *err, size_t errlen);
/* A fork's child lent its parent's RAM keeps the parent's memfd (lender_fd): 0 or -errno. */
int sbx_mem_keep_lender(struct sbx_vm *child, const struct sbx_vm *parent);
/* [at, at + len) of RAM as vm sees it, into the memfd fd at the same offset: the kernel fills
 * the new pages without a fault each (a fork's copy). 0 or -errno. */
int sbx_mem_write_out(struct sbx_vm *vm, int fd, uint64_t at, uint64_t len);
/* The parent of such a child moves to a copy of its memfd and leaves the old one to the child,
 * in two steps: a new memfd with the old one's extents copied from the parent's RAM (fd, or
 * -errno with err set); then, with nothing writing into the parent's low pages meanwhile (the
 * tree's lock held: signals, ppid), those pages copied again, the new memfd mapped over RAM
 * in the same place and the old one closed: the bytes the old one holds, or -errno (RAM lost:
 * zero pages, as sbx_mem_own). The parent's vCPU may not run meanwhile. */
int sbx_mem_unshare_copy(struct sbx_vm *vm, char *err, size_t errlen);
int64_t sbx_mem_unshare_commit(struct sbx_vm *vm, int fd, char *err, size_t errlen);
/* A lent fork child's RAM as it sees it (low pages, its lender's extents, the pages its log
 * says it wrote) into another VM's memfd: a fork of the lent child. 0 or -errno. */
int sbx_mem_copy_view(struct sbx_vm *from, struct sbx_vm *to);
/* What that copy can hold at most: the lender's bytes, the pages logged, the low pages. On
 * the lent child's own thread (its lender_fd stays open). */
uint64_t sbx_mem_view_bytes(struct sbx_vm *vm);
/* Pages of guest RAM the host holds (non-holes of the memfd). */
uint64_t sbx_resident_pages(struct sbx_vm *vm);
/* The same in bytes, as the host's memory accounting has it (the memfd's blocks: cheap enough
 * to ask often); 0 for RAM that is a private mapping of a snapshot; the pages written since the
 * fork for a lent RAM. */
uint64_t sbx_mem_ram_bytes(struct sbx_vm *vm);
/* With the process's share of its shared anonymous memory (what --mem counts). */
uint64_t sbx_mem_held_bytes(struct sbx_vm *vm);
int sbx_vm_empty_kvm(struct sbx_vm *vm, char *err, size_t errlen);

/* stop.c: ends the run (the first reason wins) and wakes whatever waits; from any thread.
 * sbx_vm_interrupt does the same from a signal handler (public: sandbox.h). */
void sbx_vm_kill(struct sbx_vm *vm, enum sbx_end end, int status, int sig, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* The same, naming the vCPU that ends the run (who: NULL for none in particular), which the
 * stop records only if it is the first reason. */
/* 1 when this was the reason that stopped the run, 0 when another came first. */
int sbx_vm_kill_by(struct sbx_vm *vm, const struct sbx_stop_who *who, enum sbx_end end, int status,
		   int sig, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void sbx_vm_interrupt(struct sbx_vm *vm, int sig);
/* Every vCPU of the VM out of KVM_RUN, or kept from entering it (async-signal-safe). */
void sbx_vcpus_kick(struct sbx_vm *vm);
/* Waits until the reason that set life.stopping has its fields written. */
void sbx_stop_settle(struct sbx_vm *vm);
/* The run is stopping, not only for a fault that may go to the program's handler (an exit, a
 * kill, or one of those that came meanwhile): 1. A fault that ends it counts once it does. */
int sbx_stop_for_good(struct sbx_vm *vm);
/* The run stopped for a fault that goes back to the program: an end that lost the race to it
 * becomes the stop instead (1), or there was none (0: the caller resumes). */
int sbx_stop_take_late(struct sbx_vm *vm);
/* Wakes every SLEEP (they wait on life.stopping) to look at the sandbox again. */
void sbx_wake_sleepers(struct sbx_vm *vm);
/* The signal that interrupts KVM_RUN and blocking host calls (a handler that does nothing,
 * installed once per process by sbx_kick_install). */
int sbx_kick_signal(void);
void sbx_kick_install(void);

/* clock.c: one way to read the clocks. A deadline is CLOCK_REALTIME, for pthread's timed
 * waits. */
#define SBX_NS_PER_MS 1000000ll
int64_t sbx_ts_ns(const struct timespec *t);
int64_t sbx_now_ns(clockid_t c);
double sbx_ms_since(const struct timespec *t0); /* CLOCK_MONOTONIC */
void sbx_deadline(struct timespec *dl, int64_t ns_from_now);

/* log.c: sbx_fail writes a one-line error into err and returns r (a -errno). */
int sbx_fail(char *err, size_t errlen, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define sbx_log(vm, level, ...)                                                                    \
	do {                                                                                       \
		if ((vm)->cfg.verbose >= (level))                                                  \
			sbx_logf((vm), __VA_ARGS__);                                               \
	} while (0)
void sbx_logf(struct sbx_vm *vm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
