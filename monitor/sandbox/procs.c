/* The process tree of a sandbox: each process is a VM of its own (struct sbx_vm) run by a host
 * thread of this monitor, all under the first process's policy. fork copies the caller's VM
 * (core/fork.c), wait reaps, kill signals, and the first process's end ends them all
 * (docs/architecture.md, "Processes"). The tree's lock is taken after a VM's ring_lock, never
 * before: a handler holding the tree's lock never waits for a ring. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "calls.h"
#include "sandbox_priv.h"

#define SBX_PROCS_DEFAULT 256
#define SBX_WNOHANG 1
#define SBX_WSTOPPED 2
#define SBX_WCONTINUED 8
#define SBX_WNOWAIT 0x01000000
#define SBX_CLONE_VFORK 0x4000ull

struct sbx_pnode {
	uint32_t pid, ppid, pgid, sid;
	struct sbx_vm *vm; /* NULL once its run is over: nothing may signal its threads then */
	int ended;	   /* a zombie: status holds its wait status */
	int status;	   /* as wait4 gives it */
	int released;	   /* exec'd or ended: a vfork parent goes on */
	/* Job control: the stop signal of a stop not yet whole (a thread still running), the
	 * one its parent's wait (WUNTRACED) has still to hear of, and a continue its WCONTINUED
	 * has; the stop itself is its VM's (sbx_vm_job_stopped). */
	int stop_pending, stop_report, cont_report;
	/* A vfork's child whose parent, one thread, waits for it: its writes are logged, and
	 * what it wrote goes back to the parent if it ends without an execve (VFORK_EXIT). */
	int vfork_share;
	/* A fork's child on its parent's RAM (sbx_mem_lend, lender_fd): its parent waits for its
	 * execve or end a little (lend_wait), then moves to a copy. */
	int fork_lent;
	/* Its parent still runs on that memfd (until lend_wait moves it to a copy, or it ends). */
	int parent_on_ram;
	/* This process's fork child did not exec or end within the wait: its next forks copy at
	 * once (a program that forks to work in the child, not to run another), until execve. */
	int lend_missed;
	/* The same for a threaded caller's vforks (SBX_FORK_VFORK_APART), apart: its children
	 * exec, whatever its other forks' do. */
	int vfork_missed;
	clockid_t clock; /* its vCPU thread's CPU clock (clock_set) */
	int clock_set;
	/* Its timers, on CLOCK_MONOTONIC: 0 is ITIMER_REAL (alarm, setitimer), 1.. the POSIX
	 * timers (timer_create). The keeper sends each one's signal at `at` (0: disarmed), then
	 * every `every` ns if that is not 0. */
	struct sbx_ptimer {
		int64_t at, every;
		int signo;	/* 0: none (SIGEV_NONE) */
		uint32_t value; /* si_value's int */
	} timer[1 + SBX_PTIMERS];
	/* Its usage at its end, and its reaped children's (sbx_rusage). */
	int64_t cpu_ns, maxrss_kib, children_cpu_ns, children_maxrss_kib;
	struct sbx_pnode *next;
};

struct sbx_procs {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a process ended, exec'd, or a signal came for a waiter */
	struct sbx_vm *root;
	struct sbx_pnode *list;
	uint32_t next_pid;  /* process ids and thread ids come from here (alloc_pid) */
	int wrapped;	    /* next_pid came round: an id may be in use */
	uint32_t pid_max;   /* ids are below this (SBX_PID_LIMIT; tests set less) */
	unsigned live, max; /* processes not yet reaped (zombies count, as for RLIMIT_NPROC) */
	unsigned threads;   /* host threads of processes still running or tearing down */
	int ending;	    /* the first process ended: no new process */
	cpu_set_t cpus;	    /* where a process's thread may run (the monitor's set at the start) */
	int64_t ended_cpu_ns;	/* the CPU time of the processes whose run is over */
	struct sbx_stats ended; /* their counts (procs, procs_exits, ...: sbx_procs_stats) */
	pthread_t keeper;	/* holds the tree to --mem and fires alarms (keeper_main), from the
				   first fork or timer */
	int keeper_started;
	uint32_t oom_pid; /* the process the keeper killed last, until its run is over */
	int told_mem;	  /* a fork refused for --mem was told (once a run) */
	/* What ended processes left for the first's report (sbx_procs_leave_report). */
	uint32_t nosys[SBX_MAX_SYSCALL];
	char *missing[SBX_MISSING_MAX];
	unsigned nmissing;
	int left;
};

static struct sbx_pnode *find(struct sbx_procs *t, uint32_t pid)
{
	for (struct sbx_pnode *n = t->list; n; n = n->next)
		if (n->pid == pid)
			return n;
	return NULL;
}

static struct sbx_pnode *self(struct sbx_vm *vm)
{
	return find(vm->procs, vm->proc.pid);
}

/* Past SBX_PID_LIMIT the ids start again above Linux's RESERVED_PIDS. */
#define SBX_PID_AGAIN 300u

/* Whether an id is a process's, a group's or session's, or a thread's. Tree lock held. */
static int id_in_use(struct sbx_procs *t, uint32_t id)
{
	for (struct sbx_pnode *n = t->list; n; n = n->next)
		if (n->pid == id || n->pgid == id || n->sid == id ||
		    (n->vm && sbx_thread_has_tid(n->vm, id, 1)))
			return 1;
	return 0;
}

/* The next free id, for a process or a thread: one space for both, as Linux has, so that no
 * thread's id is another process's pid (a process-shared mutex's owner, kill). Tree lock held. */
static uint32_t alloc_pid(struct sbx_procs *t)
{
	for (uint32_t tries = 0; tries < t->pid_max; tries++) {
		uint32_t id = t->next_pid++;
		if (t->next_pid >= t->pid_max) {
			t->next_pid =
			    SBX_PID_AGAIN < t->pid_max / 2 ? SBX_PID_AGAIN : SBX_FIRST_PID + 1;
			t->wrapped = 1;
		}
		if (id < t->pid_max && (!t->wrapped || !id_in_use(t, id)))
			return id;
	}
	return 0; /* every id taken: fork and clone say EAGAIN */
}

void sbx_procs_set_pid_max(struct sbx_vm *vm, uint32_t max)
{
	struct sbx_procs *t = vm->procs;
	pthread_mutex_lock(&t->lock);
	t->pid_max = max > SBX_FIRST_PID + 1 && max < SBX_PID_LIMIT ? max : SBX_PID_LIMIT;
	pthread_mutex_unlock(&t->lock);
}

static uint32_t new_tid(struct sbx_vm *vm)
{
	struct sbx_procs *t = vm->procs;
	pthread_mutex_lock(&t->lock);
	uint32_t id = alloc_pid(t);
	pthread_mutex_unlock(&t->lock);
	return id;
}

static void ids_from(struct sbx_vm *vm, uint32_t next)
{
	struct sbx_procs *t = vm->procs;
	pthread_mutex_lock(&t->lock);
	if (next > t->next_pid && next < t->pid_max)
		t->next_pid = next;
	pthread_mutex_unlock(&t->lock);
}

/* A deadline ns from now for the tree's condition variable, which waits on CLOCK_MONOTONIC. */
static void tree_deadline(struct timespec *dl, int64_t ns)
{
	int64_t at = sbx_now_ns(CLOCK_MONOTONIC) + ns;
	dl->tv_sec = (time_t)(at / 1000000000ll);
	dl->tv_nsec = (long)(at % 1000000000ll);
}

static int default_ignored(int sig)
{
	return sig == SIGCHLD || sig == SIGCONT || sig == SIGURG || sig == SIGWINCH;
}

static int stop_signal(int sig)
{
	return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

static void deliver(struct sbx_procs *t, struct sbx_vm *v, int sig, uint32_t from, int code,
		    int status, uint32_t value);

/* A group none of whose members has a parent in another group of its session, which could
 * continue it: the terminal's stop signals (TSTP, TTIN, TTOU) do not stop it, as on Linux.
 * The first process's parent is the caller of the sandbox, in a group of its own (a shell's
 * job): its group is never orphaned. Tree lock held. */
static int group_orphaned(struct sbx_procs *t, uint32_t pgid)
{
	for (struct sbx_pnode *m = t->list; m; m = m->next) {
		if (m->pgid != pgid || m->ended)
			continue;
		if (m->vm && m->vm == t->root)
			return 0;
		struct sbx_pnode *p = m->ppid > 1 ? find(t, m->ppid) : NULL;
		if (p && p->pgid != pgid && p->sid == m->sid)
			return 0;
	}
	return 1;
}

/* The groups a process's end may orphan: its own, and its children's in its session. */
struct orphan_check {
	uint32_t pgid[64];
	int was[64];
	unsigned n;
};

/* Before the end of n. Tree lock held. */
static void orphans_before(struct sbx_procs *t, const struct sbx_pnode *n, struct orphan_check *oc)
{
	oc->n = 0;
	if (!n)
		return;
	for (struct sbx_pnode *m = t->list; m && oc->n < 64; m = m->next) {
		if (m != n && (m->ppid != n->pid || m->ended || m->sid != n->sid))
			continue;
		unsigned i = 0;
		while (i < oc->n && oc->pgid[i] != m->pgid)
			i++;
		if (i == oc->n) {
			oc->pgid[oc->n] = m->pgid;
			oc->was[oc->n++] = group_orphaned(t, m->pgid);
		}
	}
}

/* After it: a group it orphaned that has a stopped process gets SIGHUP and SIGCONT, as
 * POSIX asks, so that no job is left stopped with nothing to continue it. Tree lock held. */
static void orphans_after(struct sbx_procs *t, const struct orphan_check *oc)
{
	for (unsigned i = 0; i < oc->n; i++) {
		if (oc->was[i] || !group_orphaned(t, oc->pgid[i]) || t->ending)
			continue;
		int stopped = 0;
		for (struct sbx_pnode *m = t->list; m && !stopped; m = m->next)
			stopped = m->pgid == oc->pgid[i] && m->vm && sbx_vm_job_stopped(m->vm);
		for (struct sbx_pnode *m = t->list; m && stopped; m = m->next) {
			if (m->pgid != oc->pgid[i] || !m->vm || m->ended)
				continue;
			deliver(t, m->vm, SIGHUP, 0, SI_KERNEL, 0, 0);
			if (m->vm && !m->ended)
				deliver(t, m->vm, SIGCONT, 0, SI_KERNEL, 0, 0);
		}
	}
}

/* The parent hears of a child's stop or continue (SIGCHLD), unless it asked not to
 * (SA_NOCLDSTOP); its waits look again either way. Tree lock held. */
static void tell_parent(struct sbx_procs *t, struct sbx_pnode *n, int code, int sig)
{
	struct sbx_pnode *p = find(t, n->ppid);
	const struct sbx_sigstate *ss =
	    p && p->vm ? sbx_gptr(p->vm, SBX_SIGSTATE_ADDR, sizeof(*ss)) : NULL;
	if (ss && !(ss->act[SIGCHLD].flags & SA_NOCLDSTOP) && !t->ending)
		deliver(t, p->vm, SIGCHLD, n->pid, code, sig, 0);
	pthread_cond_broadcast(&t->cond);
}

/* Whether TSTP, TTIN or TTOU goes by: for an orphaned group, as on Linux; and for the first
 * process, whose stop is its caller's to end, unless the front end is its terminal's
 * foreground job (a shell's, which job_stopped stops too): else nothing outside the sandbox
 * would continue it. `who` the process, or NULL for any of group pgid (a terminal's signal,
 * which then goes to none). Tree lock held. */
static const char *stop_goes_by(struct sbx_procs *t, uint32_t pgid, const struct sbx_pnode *who)
{
	if (group_orphaned(t, pgid))
		return "its process group is orphaned";
	if (t->root->cfg.stop_front)
		return NULL;
	for (const struct sbx_pnode *m = who ? who : t->list; m; m = who ? NULL : m->next)
		if (m->vm == t->root && m->pgid == pgid && !m->ended)
			return "nothing would continue the first process (the monitor is no "
			       "terminal's foreground job)";
	return NULL;
}

/* The default action of a stop signal: every thread of the process stops where it is until
 * a SIGCONT (or its end). Tree lock held. */
static void job_stop(struct sbx_procs *t, struct sbx_pnode *n, int sig)
{
	if (!n || !n->vm || n->ended || sbx_vm_job_stopped(n->vm))
		return;
	const char *why = sig != SIGSTOP ? stop_goes_by(t, n->pgid, n) : NULL;
	if (why) {
		sbx_log(n->vm, 1, "SIG%s ignored: %s", sigabbrev_np(sig), why);
		return;
	}
	int first = n->vm == t->root, front = n->vm->cfg.stop_front;
	n->stop_pending = sig;
	if (first && !front)
		sbx_log(n->vm, 1,
			"stopped by SIG%s: it goes on at a SIGCONT from a process of the sandbox",
			sigabbrev_np(sig));
	sbx_vm_job_stop(n->vm);
}

/* The stop is whole (core/pause.c): the parent hears of it. */
static void job_stopped(struct sbx_vm *vm)
{
	struct sbx_procs *t = vm->procs;
	pthread_mutex_lock(&t->lock);
	struct sbx_pnode *n = self(vm);
	int sig = 0;
	if (n && n->stop_pending && sbx_vm_job_stopped(vm)) {
		sig = n->stop_report = n->stop_pending;
		n->stop_pending = 0;
		n->cont_report = 0;
		tell_parent(t, n, CLD_STOPPED, n->stop_report);
	}
	pthread_mutex_unlock(&t->lock);
	if (!sig || vm != t->root || !vm->cfg.stop_front)
		return;
	/* The first process stopped under a shell's job control: the monitor stops with it, so
	 * that the shell has its terminal back ("Stopped"), and its fg or bg (a SIGCONT to the
	 * monitor) continues the process as the shell's SIGCONT would. The sandbox's other
	 * processes stop meanwhile too. A monitor whose SIGTSTP is ignored goes on at once. */
	sbx_log(vm, 1, "stopped by SIG%s: the monitor stops too", sigabbrev_np(sig));
	/* Its whole group, as the program's own kill(0, SIGTSTP) would stop a wrapper's (bash
	 * -c 'sandbox-run ...') with it; then the group's SIGCONT comes as the shell's would,
	 * to every process of the first one's group. */
	if (kill(0, sig) < 0)
		raise(sig);
	pthread_mutex_lock(&t->lock);
	uint32_t pgid = vm->proc.pgid;
	for (struct sbx_pnode *m = t->list; m && !t->ending; m = m->next)
		if (m->pgid == pgid && m->vm && !m->ended)
			deliver(t, m->vm, SIGCONT, 0, SI_USER, 0, 0);
	pthread_mutex_unlock(&t->lock);
}

/* SIGCONT, whatever its action: a stopped process goes on. One whose stop was not whole yet
 * goes on as if it had never stopped. Tree lock held. */
static void job_continue(struct sbx_procs *t, struct sbx_pnode *n)
{
	if (!n || !n->vm || !sbx_vm_job_stopped(n->vm))
		return;
	sbx_vm_job_continue(n->vm);
	int told = !n->stop_pending;
	n->stop_pending = n->stop_report = 0;
	if (told) {
		n->cont_report = 1;
		tell_parent(t, n, CLD_CONTINUED, SIGCONT);
	}
}

/* A signal from another process (kill, SIGCHLD), or from its own timer (from 0), to v: the
 * default action of ending it is taken here; a handled one goes to the guest's kernel through
 * sig_incoming, and the vCPU is stopped in the program's code, or its wait cut short, to take
 * it. Tree lock held. */
static void deliver(struct sbx_procs *t, struct sbx_vm *v, int sig, uint32_t from, int code,
		    int status, uint32_t value)
{
	const struct sbx_sigstate *ss = sbx_gptr(v, SBX_SIGSTATE_ADDR, sizeof(*ss));
	struct sbx_bootinfo *b = sbx_gptr(v, SBX_BOOTINFO_ADDR, sizeof(*b));
	if (!ss || !b || sig < 1 || sig > 64)
		return;
	uint64_t h = ss->act[sig].handler, bit = 1ull << (sig - 1);
	const uint64_t stops = (1ull << (SIGSTOP - 1)) | (1ull << (SIGTSTP - 1)) |
			       (1ull << (SIGTTIN - 1)) | (1ull << (SIGTTOU - 1));
	/* As Linux: a SIGCONT discards the stop signals on the way, and a stop signal the
	 * SIGCONT on the way. */
	if (sig == SIGCONT) {
		job_continue(t, find(t, v->proc.pid));
		__atomic_and_fetch(&b->sig_incoming, ~stops, __ATOMIC_SEQ_CST);
	} else if (stop_signal(sig)) {
		__atomic_and_fetch(&b->sig_incoming, ~(1ull << (SIGCONT - 1)), __ATOMIC_SEQ_CST);
	}
	if (sig == SIGSTOP || (h == 0 && stop_signal(sig) && !(ss->blocked & bit))) {
		job_stop(t, find(t, v->proc.pid), sig);
		return;
	}
	/* The first process is no init (SBX_FIRST_PID): a signal from another process (`kill
	 * $PPID`, musl's raise() in a vfork child) ends it as it would end the program run
	 * natively. */
	/* A stopped process takes a fatal signal once it goes on, as on Linux; only SIGKILL
	 * ends it where it is. */
	if (sig == SIGKILL || (h == 0 && !default_ignored(sig) && !stop_signal(sig) &&
			       !(ss->blocked & bit) && !sbx_vm_job_stopped(v))) {
		if (code == SI_KERNEL && sig != SIGHUP)
			sbx_vm_kill(v, SBX_END_SIGNAL, 128 + sig, sig,
				    "killed by SIG%s from its terminal",
				    sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
		else if (from)
			sbx_vm_kill(v, SBX_END_SIGNAL, 128 + sig, sig,
				    "killed by SIG%s from process %u",
				    sigabbrev_np(sig) ? sigabbrev_np(sig) : "?", from);
		else if (sig == SIGHUP && code == SI_KERNEL)
			sbx_vm_kill(v, SBX_END_SIGNAL, 128 + sig, sig,
				    "killed by SIGHUP: its terminal hung up");
		else if (code == SI_TIMER)
			sbx_vm_kill(v, SBX_END_SIGNAL, 128 + sig, sig,
				    "killed by SIG%s: its POSIX timer %d expired",
				    sigabbrev_np(sig) ? sigabbrev_np(sig) : "?", status);
		else
			sbx_vm_kill(v, SBX_END_SIGNAL, 128 + sig, sig,
				    "killed by SIG%s: its timer (alarm, setitimer) expired",
				    sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
		return;
	}
	/* As Linux: a blocked signal is never ignored (its action may change before it is
	 * unblocked, or sigtimedwait take it); the guest's kernel drops it if it still is. */
	if (!(ss->blocked & bit) && (h == 1 || (h == 0 && default_ignored(sig))))
		return;
	/* Before the bit: the kernel reads it once it has taken the bit. */
	b->sig_from[sig - 1] = (struct sbx_sigfrom){
	    .pid = from ? from : value, .code = (int16_t)code, .status = (int16_t)status};
	__atomic_or_fetch(&b->sig_incoming, bit, __ATOMIC_SEQ_CST);
	sbx_vcpu_kick(v, 0);
	sbx_ring_nudge(v, SBX_RING_KICK);
	if (v->proc.vcpu.thread_set && v->life.running)
		pthread_kill(v->proc.vcpu.thread, sbx_kick_signal());
	pthread_cond_broadcast(&t->cond);
}

static int wait_status(const struct sbx_result *res)
{
	if (res->signal)
		return res->signal & 0x7f;
	return (res->status & 0xff) << 8;
}

/* The parent takes no zombies: SIGCHLD ignored, or SA_NOCLDWAIT. */
static int parent_reaps(struct sbx_vm *parent)
{
	const struct sbx_sigstate *ss = sbx_gptr(parent, SBX_SIGSTATE_ADDR, sizeof(*ss));
	return !ss || (ss->act[SIGCHLD].handler != 1 && !(ss->act[SIGCHLD].flags & SA_NOCLDWAIT));
}

static void unlink_node(struct sbx_procs *t, struct sbx_pnode *n);

/* The parent a process reads (getppid, /proc), kept where its kernel and its next image read
 * it. Tree lock held. */
static void set_ppid(struct sbx_pnode *n, uint32_t ppid)
{
	n->ppid = ppid;
	if (!n->vm)
		return;
	n->vm->proc.ppid = ppid;
	struct sbx_bootinfo *b = sbx_gptr(n->vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	if (b)
		__atomic_store_n(&b->ppid, ppid, __ATOMIC_RELAXED);
}

/* The children of pid, which ended, go to pid 1 (the monitor's init, no process of the
 * sandbox): one still running reads 1 from getppid at once, and gets its PR_SET_PDEATHSIG
 * signal from pid, as on Linux; one that ended is reaped, as init reaps. Tree lock held. */
static void orphan_children(struct sbx_procs *t, uint32_t pid)
{
	for (struct sbx_pnode *c = t->list, *next; c; c = next) {
		next = c->next;
		if (c->ppid != pid)
			continue;
		if (c->ended) {
			unlink_node(t, c);
			free(c);
			t->live--;
			continue;
		}
		set_ppid(c, 1);
		const struct sbx_bootinfo *b =
		    c->vm ? sbx_gptr(c->vm, SBX_BOOTINFO_ADDR, sizeof(*b)) : NULL;
		uint32_t sig = b ? __atomic_load_n(&b->pdeathsig, __ATOMIC_RELAXED) : 0;
		if (sig >= 1 && sig <= 64 && !t->ending)
			deliver(t, c->vm, (int)sig, pid, SI_USER, 0, 0);
	}
}

static void *proc_main(void *arg)
{
	struct sbx_pnode *n = arg;
	struct sbx_vm *vm = n->vm;
	struct sbx_procs *t = vm->procs;
	uint32_t pid = n->pid;
	sched_setaffinity(0, sizeof(t->cpus), &t->cpus);
	clockid_t clock;
	if (pthread_getcpuclockid(pthread_self(), &clock) == 0) {
		pthread_mutex_lock(&t->lock);
		n->clock = clock;
		n->clock_set = 1;
		pthread_mutex_unlock(&t->lock);
	}
	struct sbx_result *res = calloc(1, sizeof(*res));
	if (res)
		sbx_vm_run(vm, res); /* n->vm is NULL from the run's end (sbx_procs_run_over) */
	/* Its descriptors go before its parent hears of its end (a pipe's reader sees EOF). */
	sbx_fd_close_all(vm);
	pthread_mutex_lock(&t->lock);
	n = find(t, pid);
	struct orphan_check oc;
	orphans_before(t, n, &oc);
	if (n) {
		n->status = res ? wait_status(res) : SIGKILL;
		n->ended = n->released = 1;
		n->fork_lent = n->parent_on_ram = 0;
		n->vm = NULL;
	}
	/* A vfork's child still on this RAM (its parent is still this process: orphans are
	 * reparented below) would hold all of it when nothing counts it any more: it ends too,
	 * before its execve. */
	for (struct sbx_pnode *m = t->list; m; m = m->next) {
		if (m->ppid != pid || !m->vm || m->released || !atomic_load(&m->vm->proc.mem.lent))
			continue;
		/* A fork's child goes on alone on the memfd, and counts what it holds of it from
		 * now (unless its parent had moved to a copy already). */
		if (m->fork_lent) {
			struct stat st;
			if (m->parent_on_ram && vm->proc.mem.fd >= 0 &&
			    fstat(vm->proc.mem.fd, &st) == 0)
				atomic_store(&m->vm->proc.mem.lender_bytes,
					     (uint64_t)st.st_blocks * 512);
			m->parent_on_ram = 0;
			continue;
		}
		sbx_vm_kill(m->vm, SBX_END_SIGNAL, 128 + SIGKILL, SIGKILL,
			    "killed: its vfork parent %u ended before its execve", pid);
	}
	orphan_children(t, pid);
	orphans_after(t, &oc);
	/* No parent to wait for it (pid 1, the monitor's init, reaps at once), or one that
	 * takes no zombies. */
	struct sbx_pnode *p = n ? find(t, n->ppid) : NULL;
	if (n && (!p || (p->vm && !parent_reaps(p->vm)))) {
		unlink_node(t, n);
		free(n);
		t->live--;
	} else if (p && p->vm && !t->ending) {
		/* Not while the tree ends: a repeated run's parked first process would keep it
		 * pending into the next run (the host's write is no page the reset puts back). */
		int st = n->status;
		deliver(t, p->vm, SIGCHLD, pid,
			WIFEXITED(st)	? CLD_EXITED
			: WCOREDUMP(st) ? CLD_DUMPED
					: CLD_KILLED,
			WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), 0);
	}
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	free(res);
	sbx_vm_destroy(vm);
	pthread_mutex_lock(&t->lock);
	t->threads--;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

void sbx_procs_run_start(struct sbx_vm *vm)
{
	struct sbx_procs *t = vm->procs;
	if (!t || t->root != vm)
		return;
	/* A repeated run's sandbox runs again after a stop (a crash, a timeout): its first
	 * process is back in the tree, to be signalled and counted. */
	pthread_mutex_lock(&t->lock);
	struct sbx_pnode *n = self(vm);
	if (n)
		n->vm = vm;
	pthread_mutex_unlock(&t->lock);
}

void sbx_procs_run_over(struct sbx_vm *vm)
{
	struct sbx_procs *t = vm->procs;
	if (!t)
		return;
	/* On its vCPU thread: the time it took is the first process's to count from now on. */
	int64_t cpu = sbx_now_ns(CLOCK_THREAD_CPUTIME_ID) + sbx_threads_cpu_ns(vm);
	int64_t kib = (int64_t)(sbx_mem_held_bytes(vm) >> 10);
	pthread_mutex_lock(&t->lock);
	struct sbx_pnode *n = self(vm);
	if (n) {
		n->vm = NULL;
		n->cpu_ns = cpu;
		n->maxrss_kib = kib;
	}
	if (vm != t->root) {
		t->ended_cpu_ns += cpu;
		t->ended.procs++;
		t->ended.procs_exits += vm->stats.exits;
		t->ended.procs_doorbells += vm->stats.doorbells;
		t->ended.procs_calls += vm->stats.calls;
		t->ended.procs_polled += vm->stats.polled;
	}
	pthread_mutex_unlock(&t->lock);
}

void sbx_procs_stats(struct sbx_vm *vm, struct sbx_stats *st)
{
	struct sbx_procs *t = vm->procs;
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	st->procs = t->ended.procs;
	st->procs_exits = t->ended.procs_exits;
	st->procs_doorbells = t->ended.procs_doorbells;
	st->procs_calls = t->ended.procs_calls;
	st->procs_polled = t->ended.procs_polled;
	pthread_mutex_unlock(&t->lock);
}

static int64_t others_cpu_ns(struct sbx_vm *vm)
{
	struct sbx_procs *t = vm->procs;
	if (!t)
		return 0;
	pthread_mutex_lock(&t->lock);
	int64_t ns = t->ended_cpu_ns;
	for (struct sbx_pnode *n = t->list; n; n = n->next)
		if (n->vm && n->vm != t->root && n->clock_set)
			ns += sbx_now_ns(n->clock) + sbx_threads_cpu_ns(n->vm);
	pthread_mutex_unlock(&t->lock);
	return ns;
}

/* The guest RAM the running processes hold together, with the sandbox's memfds, and the one
 * that holds the most. Tree lock held. */
static uint64_t mem_held(struct sbx_procs *t, struct sbx_pnode **top, int *oom_pending)
{
	uint64_t sum = sbx_memfd_bytes(t->root), most = 0;
	*top = NULL;
	*oom_pending = 0;
	for (struct sbx_pnode *n = t->list; n; n = n->next) {
		if (!n->vm)
			continue;
		uint64_t b = sbx_mem_held_bytes(n->vm);
		sum += b;
		if (b > most) {
			most = b;
			*top = n;
		}
		*oom_pending |= n->pid == t->oom_pid;
	}
	return sum;
}

/* --mem is the sandbox's, all its processes together: over it, the process that holds the most
 * is killed, as by the kernel's OOM killer in a memory cgroup (the first process's end is the
 * sandbox's, with the limit named). Each VM's own RAM is --mem, so one alone goes over only
 * with shared anonymous memory, which starts the keeper too (mem_outside). Tree lock held. */
static void hold_mem(struct sbx_procs *t)
{
	struct sbx_pnode *top;
	int pending;
	uint64_t lim = t->root->proc.mem.size, sum = mem_held(t, &top, &pending);
	/* One at a time: a killed process's memory goes with its VM, some ms later. */
	if (sum <= lim || !top || pending)
		return;
	uint64_t mib = 1ull << 20, held = sbx_mem_held_bytes(top->vm),
		 memfds = sbx_memfd_bytes(t->root);
	char why[320], in_memfds[64] = "";
	if (memfds >= mib)
		snprintf(in_memfds, sizeof(in_memfds), " (%llu MiB of it in memfds)",
			 (unsigned long long)(memfds / mib));
	snprintf(why, sizeof(why),
		 "the sandbox's processes hold %llu MiB of guest RAM together%s, over --mem %llu "
		 "MiB; process %u held the most (%llu MiB)",
		 (unsigned long long)(sum / mib), in_memfds, (unsigned long long)(lim / mib),
		 top->pid, (unsigned long long)(held / mib));
	t->oom_pid = top->pid;
	/* A repeated run's first process (serve, fuzz) is not killed: it may be parked
	 * between runs, and the run's children end with the run anyway. */
	if (top->vm == t->root && t->root->exec) {
		struct sbx_pnode *child = NULL;
		uint64_t most = 0;
		for (struct sbx_pnode *n = t->list; n; n = n->next) {
			uint64_t b = n->vm && n->vm != t->root ? sbx_mem_held_bytes(n->vm) : 0;
			if (n->vm && n->vm != t->root && (!child || b > most)) {
				child = n;
				most = b;
			}
		}
		if (!child)
			return;
		top = child;
	}
	if (top->vm == t->root) {
		sbx_vm_kill(top->vm, SBX_END_LIMIT, SBX_STATUS_LIMIT_MEM, 0,
			    "memory limit reached: %s", why);
		return;
	}
	/* By pid: its label may change under it (an execve on its own thread). */
	sbx_logf(top->vm, "process %u killed, out of memory: %s", top->pid, why);
	sbx_vm_kill(top->vm, SBX_END_SIGNAL, 128 + SIGKILL, SIGKILL, "killed: out of memory: %s",
		    why);
}

/* The alarms due now go off; the time until the next one, 20 ms at most. Tree lock held. */
static int64_t fire_alarms(struct sbx_procs *t)
{
	int64_t now = sbx_now_ns(CLOCK_MONOTONIC), next = 20 * SBX_NS_PER_MS;
	for (struct sbx_pnode *n = t->list; n; n = n->next) {
		for (unsigned k = 0; k <= SBX_PTIMERS; k++) {
			struct sbx_ptimer *p = &n->timer[k];
			if (!p->at)
				continue;
			if (!n->vm) {
				p->at = 0; /* its run is over */
				continue;
			}
			if (p->at <= now) {
				if (k == 0)
					deliver(t, n->vm, SIGALRM, 0, SI_KERNEL, 0, 0);
				else if (p->signo)
					deliver(t, n->vm, p->signo, 0, SI_TIMER, (int)k - 1,
						p->value);
				/* One signal for the ticks missed, as Linux's pending signal is
				 * one; no faster than the keeper can send them. */
				p->at = !p->every ? 0
					: p->at + p->every > now
					    ? p->at + p->every
					    : now + (p->every > SBX_NS_PER_MS ? p->every
									      : SBX_NS_PER_MS);
			}
			if (p->at && p->at - now < next)
				next = p->at - now;
		}
	}
	return next;
}

/* A pseudo-terminal's hangup (calls/pty.c): SIGHUP and SIGCONT to its session's leader, as
 * Linux's. Tree lock held. */
static void hang_up(struct sbx_procs *t)
{
	struct sbx_pnode *any = t->list;
	while (any && !any->vm)
		any = any->next;
	uint32_t sids[SBX_PTYS_MAX];
	unsigned n = any ? sbx_pty_take_hangups(any->vm, sids, SBX_PTYS_MAX) : 0;
	for (unsigned i = 0; i < n; i++) {
		struct sbx_pnode *l = find(t, sids[i]);
		if (l && l->vm && !l->ended) {
			deliver(t, l->vm, SIGHUP, 0, SI_KERNEL, 0, 0);
			if (l->vm && !l->ended)
				deliver(t, l->vm, SIGCONT, 0, SI_KERNEL, 0, 0);
		}
	}
}

static void *keeper_main(void *arg)
{
	struct sbx_procs *t = arg;
	pthread_mutex_lock(&t->lock);
	while (!t->ending) {
		hold_mem(t);
		hang_up(t);
		struct timespec dl;
		tree_deadline(&dl, fire_alarms(t));
		pthread_cond_timedwait(&t->cond, &t->lock, &dl);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

/* Tree lock held. Not once the tree ends: end_others joins the keeper only once. 0, or
 * -EAGAIN when no thread could be made. */
static int start_keeper(struct sbx_procs *t)
{
	if (!t->keeper_started && !t->ending &&
	    pthread_create(&t->keeper, NULL, keeper_main, t) == 0)
		t->keeper_started = 1;
	return t->keeper_started || t->ending ? 0 : -EAGAIN;
}

static void mem_outside(struct sbx_vm *vm)
{
	struct sbx_procs *t = vm->procs;
	pthread_mutex_lock(&t->lock);
	start_keeper(t);
	pthread_mutex_unlock(&t->lock);
}

static void unlink_node(struct sbx_procs *t, struct sbx_pnode *n)
{
	for (struct sbx_pnode **pp = &t->list; *pp; pp = &(*pp)->next)
		if (*pp == n) {
			*pp = n->next;
			break;
		}
}

/* Until the tree changes, tree lock held: 100 ms at most, since a kill of the waiter does not
 * signal the tree (the caller looks at its VM's stop each time). A signal for the thread (intr)
 * sets a word and kicks, which broadcasts the condition (sbx_ring_release_on); a kick from outside
 * the tree's lock may come between the look and the wait: looked at every 10 ms. */
static void wait_a_while(struct sbx_procs *t, const atomic_uint *intr)
{
	struct timespec dl;
	tree_deadline(&dl, (intr ? 10 : 100) * SBX_NS_PER_MS);
	pthread_cond_timedwait(&t->cond, &t->lock, &dl);
}

/* The usage of the children it reaped, where its kernel reads it (boot page). Tree lock held. */
static void put_children_usage(struct sbx_vm *vm, const struct sbx_pnode *n)
{
	struct sbx_bootinfo *b = sbx_gptr(vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	if (!b)
		return;
	__atomic_store_n(&b->children_cpu_ns, (uint64_t)n->children_cpu_ns, __ATOMIC_RELAXED);
	__atomic_store_n(&b->children_maxrss_kib, (uint64_t)n->children_maxrss_kib,
			 __ATOMIC_RELAXED);
}

/* An image is about to go: its POSIX timers go first, so that none fires into the next
 * image's default actions (they end at execve; a failed one loses them too). */
static void exec_begin(struct sbx_vm *vm)
{
	struct sbx_procs *t = vm->procs;
	pthread_mutex_lock(&t->lock);
	struct sbx_pnode *n = self(vm);
	if (n)
		memset(&n->timer[1], 0, sizeof(n->timer) - sizeof(n->timer[0]));
	pthread_mutex_unlock(&t->lock);
}

/* A vfork's child shares nothing with its parent once its execve is past the point of no
 * return: the new image pays no logged first write, nor its loading a mark per page. Not
 * before: an execve that fails early goes on on the lent RAM, whose log --mem reads. */
static void exec_committed(struct sbx_vm *vm)
{
	struct sbx_procs *t = vm->procs;
	pthread_mutex_lock(&t->lock);
	struct sbx_pnode *n = self(vm);
	int logged = n && (n->vfork_share || n->fork_lent);
	if (n)
		n->vfork_share = n->fork_lent = n->parent_on_ram = 0;
	pthread_cond_broadcast(&t->cond); /* a fork's parent goes on */
	pthread_mutex_unlock(&t->lock);
	if (logged) /* a child has no other tracking: snapshots and resets are the first process's
		     */
		sbx_dirty_stop(vm);
}

static void execed(struct sbx_vm *vm)
{
	struct sbx_procs *t = vm->procs;
	pthread_mutex_lock(&t->lock);
	struct sbx_pnode *n = self(vm);
	if (n) {
		n->released = 1;
		n->lend_missed = n->vfork_missed = 0;
		/* The new image's boot page: kept across execve, and its parent's end, had it
		 * come while the page was being made, not lost. */
		put_children_usage(vm, n);
		set_ppid(n, n->ppid);
	}
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

static int64_t proc_call(struct sbx_vm *vm, const struct sbx_slot *s);
static void tree_hooks(struct sbx_vm *vm);

/* The word a signal for the waiting thread sets (WAIT a3, FORK a2: ABI 1.15), or NULL. */
static const atomic_uint *intr_word(struct sbx_vm *vm, uint64_t gpa)
{
	return gpa && !(gpa & 3) ? sbx_gptr_ro(vm, gpa, 4) : NULL;
}

static int interrupted(const atomic_uint *intr)
{
	return intr && atomic_load(intr);
}

/* vfork's parent waits until its child has exec'd or ended: 0. The node may be reaped
 * meanwhile: found by its pid each time; a pid that is not the caller's child ends the wait at
 * once. -EINTR when the run stops: for good, or only while another thread's fault goes to its
 * handler (the kernel then asks again), or when a signal for the thread sets intr (the kernel
 * looks: only another thread's execve ends the wait). */
static int64_t vfork_wait(struct sbx_vm *vm, uint32_t pid, const atomic_uint *intr)
{
	struct sbx_procs *t = vm->procs;
	int released = sbx_ring_release_on(vm, &t->cond);
	int64_t r = 0;
	pthread_mutex_lock(&t->lock);
	for (;;) {
		struct sbx_pnode *m = find(t, pid);
		if (!m || m->ppid != vm->proc.pid || m->released)
			break;
		if (atomic_load(&vm->life.stopping) || interrupted(intr) ||
		    sbx_threads_ending(vm)) {
			r = -EINTR;
			break;
		}
		wait_a_while(t, intr);
	}
	pthread_mutex_unlock(&t->lock);
	sbx_ring_reacquire(vm, released);
	return r;
}

/* How long a fork's parent waits for its lent child's execve or end: a shell's child execs
 * within a few ms, and the shell would wait for it anyway; a parent that goes on working
 * loses at most this once (lend_missed). */
#define SBX_LEND_WAIT_NS (20 * SBX_NS_PER_MS)
/* A threaded caller's vfork: its thread waits anyway, and what the child writes reaches it
 * only within this (glibc's posix_spawn reports a failed execve so). */
#define SBX_LEND_VFORK_NS (200 * SBX_NS_PER_MS)
#define SBX_LEND_MIN (2ull << 20)

static int signal_waiting(struct sbx_vm *vm);

/* A fork's parent waits for its lent child to exec or end, for SBX_LEND_WAIT_NS at most, or
 * until a signal comes for it; then, if the child still reads its memfd, it moves to a copy
 * (sbx_mem_unshare_copy, _commit) and leaves that memfd to the child, which counts it from
 * then. Its next forks copy at once. */
static void lend_wait(struct sbx_vm *vm, uint32_t pid, int threads_held, int vfork)
{
	struct sbx_procs *t = vm->procs;
	/* A parent whose other threads are held keeps ring_lock: their requests wait too. */
	int released = threads_held ? 0 : sbx_ring_release_on(vm, &t->cond);
	const int64_t wait_ns = vfork ? SBX_LEND_VFORK_NS : SBX_LEND_WAIT_NS;
	int64_t end = sbx_now_ns(CLOCK_MONOTONIC) + wait_ns;
	int still = 0;
	pthread_mutex_lock(&t->lock);
	for (;;) {
		struct sbx_pnode *m = find(t, pid);
		still = m && m->ppid == vm->proc.pid && m->parent_on_ram && m->fork_lent &&
			!m->released;
		if (!still)
			break;
		/* Its end (a kill) leaves the memfd to the child (proc_main): no copy. Not a stop
		 * for another thread's fault, which goes on to its handler. The threads held take
		 * a signal after the wait: a SIGCHLD pending from the last child, say, would end
		 * every wait at once. From here, the child's writes stay its own. */
		int64_t left = end - sbx_now_ns(CLOCK_MONOTONIC);
		int ends = sbx_stop_for_good(vm);
		if (ends || left <= 0 || (!threads_held && signal_waiting(vm))) {
			m->vfork_share = 0;
			still = !ends;
			break;
		}
		/* Not longer than a kill takes to be seen (it broadcasts nothing). */
		struct timespec dl;
		tree_deadline(&dl, left < SBX_NS_PER_MS ? left : SBX_NS_PER_MS);
		pthread_cond_timedwait(&t->cond, &t->lock, &dl);
	}
	pthread_mutex_unlock(&t->lock);
	sbx_ring_reacquire(vm, released);
	if (!still)
		return;
	sbx_log(vm, 1,
		"fork: child %u neither exec'd nor ended within %d ms: the parent takes a copy of "
		"its RAM and leaves the old one to the child (this process's next %s copy)",
		pid, (int)(wait_ns / SBX_NS_PER_MS), vfork ? "vforks from a thread" : "forks");
	char err[256];
	int fd = sbx_mem_unshare_copy(vm, err, sizeof(err));
	int64_t held = fd;
	/* The low pages again, the move and the old memfd's close under the tree's lock: the
	 * signals and ppid other processes write there, and the keeper's looks at the fd. */
	pthread_mutex_lock(&t->lock);
	if (fd >= 0)
		held = sbx_mem_unshare_commit(vm, fd, err, sizeof(err));
	struct sbx_pnode *me = self(vm), *m = find(t, pid);
	if (me)
		*(vfork ? &me->vfork_missed : &me->lend_missed) = 1;
	if (m && m->ppid == vm->proc.pid && m->parent_on_ram && held >= 0) {
		if (m->vm)
			atomic_store(&m->vm->proc.mem.lender_bytes, (uint64_t)held);
		m->parent_on_ram = 0;
	}
	pthread_mutex_unlock(&t->lock);
	if (held < 0)
		sbx_vm_kill(vm, SBX_END_VM, SBX_STATUS_ERROR, 0, "fork: %s", err);
}

/* Why a fork's child gets a copy of its parent's RAM rather than a lend of it (NULL: it may
 * be lent), which -v -v says: a copy costs ~0.6 ms a MiB. `apart`: a threaded caller's vfork,
 * lent whatever the parent holds. */
static const char *copy_reason(struct sbx_vm *vm, const struct sbx_pnode *me, int apart,
			       uint64_t ram)
{
	if (!me)
		return "its process is gone";
	if (apart ? me->vfork_missed : me->lend_missed)
		return "an earlier child did not exec or end in time";
	if (!apart && ram < SBX_LEND_MIN)
		return "it holds less than a lend costs";
	if (vm->proc.mem.fd < 0)
		return "its RAM is no memfd";
	if (vm->proc.mem.dirty_logging)
		return "its RAM's writes are being logged (a migration, a repeated run)";
	if (sbx_threads_count(vm) && sbx_threads_ram_writers(vm))
		return "a thread waits in a read that lands in its RAM";
	if (!sbx_dirty_peekable(vm))
		return "no dirty log keeps the child's writes apart";
	return NULL;
}

static int64_t do_fork(struct sbx_vm *vm, const struct sbx_slot *s)
{
	struct sbx_procs *t = vm->procs;
	uint64_t flags = s->u.a[0];
	/* a1: only the wait of a vfork whose copy was made already (a process with threads
	 * makes the copy holding its kernel's lock, and waits without it). */
	if (s->u.a[1]) {
		if (s->u.a[1] > UINT32_MAX)
			return -ESRCH;
		return vfork_wait(vm, (uint32_t)s->u.a[1], intr_word(vm, s->u.a[2]));
	}
	/* Its RAM is its parent's, lent: a copy of it would hold all of --mem. POSIX leaves a
	 * vfork's child nothing but _exit and execve. A fork's child's child gets a copy of
	 * what it sees (sbx_mem_copy_view). */
	/* A threaded caller's vfork (1.27), whose wait comes apart: a fork here, the child's
	 * writes going back at its VFORK_EXIT while its lend holds the other threads. */
	int apart = (flags & SBX_FORK_VFORK_APART) && !(flags & SBX_CLONE_VFORK);
	flags &= ~(uint64_t)SBX_FORK_VFORK_APART;
	if (vm->proc.mem.lent && vm->proc.mem.lender_fd < 0) {
		sbx_log(vm, 1, "fork refused: a vfork's child forks before its execve");
		return -EAGAIN;
	}
	pthread_mutex_lock(&t->lock);
	if (t->ending || t->live >= t->max) {
		int ending = t->ending;
		pthread_mutex_unlock(&t->lock);
		if (!ending)
			sbx_log(vm, 1, "fork refused: --max-procs %u reached", t->max);
		return -EAGAIN;
	}
	/* The copy needs as much again as the parent holds: refused as a kernel that does not
	 * overcommit would, rather than killing a process a moment later. */
	struct sbx_pnode *top;
	int pending;
	/* A vfork's child borrows its parent's RAM (struct sbx_mem's lent): nothing more is held
	 * until it writes, as posix_spawn's child, which execs at once. A parent of threads goes
	 * on running (only the caller waits): it gets a copy. */
	int lend = (flags & SBX_CLONE_VFORK) && vm->proc.mem.fd >= 0 && sbx_threads_live(vm) == 0 &&
		   sbx_dirty_peekable(vm);
	/* A fork's child too, as most exec at once (a shell's): its parent, of one thread and
	 * with no dirty tracking of its own (a repeated run's, a migration's), waits a little
	 * for that before it goes on (lend_wait). The copy is counted as for any fork. */
	/* Below SBX_LEND_MIN the copy costs less than the lend's log and mappings (~0.4 ms on
	 * PVM: a 1.3 MiB parent's fork+exec+wait took 6.58 ms copied, 6.75 ms lent). */
	struct sbx_pnode *me = self(vm);
	/* A lent child's fork copies what it sees: the lender's memfd too. */
	uint64_t ram = atomic_load(&vm->proc.mem.lent) && vm->proc.mem.lender_fd >= 3
			   ? sbx_mem_view_bytes(vm)
			   : sbx_mem_ram_bytes(vm);
	/* A parent of threads lends too (Go's os/exec, Node's spawn, a JVM's: their copy was the
	 * whole runtime), its other threads held out of the guest from here until the child has
	 * exec'd or ended or the parent took its copy (lend_wait), and this request keeping
	 * ring_lock, so that nothing writes what the child reads (a blocked read's bytes wait in
	 * its bounce buffer for the lock). Not while one of them is in a host call that writes
	 * guest RAM without ring_lock (a read too long for that buffer): that write may come at
	 * any time. Its kernel asks holding its own lock, so none is halfway through a change
	 * of the kernel's state. */
	int threaded = sbx_threads_count(vm) != 0;
	/* A threaded caller's vfork lends whatever it holds, whether or not its forks' children
	 * exec'd in time: its thread waits anyway, and only a lend carries the child's writes
	 * back; after one that did not, as its forks do. */
	const char *copies = copy_reason(vm, me, apart && threaded, ram);
	int fork_lend = !(flags & SBX_CLONE_VFORK) && !copies;
	uint64_t held = mem_held(t, &top, &pending), more = lend ? 0 : ram;
	lend |= fork_lend;
	if (held + more > t->root->proc.mem.size) {
		/* Said once without -v: a compiler driver's posix_spawn failing with ENOMEM
		 * tells the user nothing of --mem. */
		int first = !t->told_mem;
		t->told_mem = 1;
		pthread_mutex_unlock(&t->lock);
		if (first || vm->cfg.verbose)
			sbx_logf(vm,
				 "%s: fork refused: the copy would need %llu MiB more and the "
				 "sandbox's processes hold %llu MiB, over --mem %llu MiB together; "
				 "give it more with --mem",
				 vm->cfg.name ? vm->cfg.name : vm->cfg.prog,
				 (unsigned long long)(more >> 20), (unsigned long long)(held >> 20),
				 (unsigned long long)(t->root->proc.mem.size >> 20));
		return -ENOMEM;
	}
	start_keeper(t);
	uint32_t pid = alloc_pid(t);
	if (!pid) {
		pthread_mutex_unlock(&t->lock);
		return -EAGAIN;
	}
	t->live++;
	pthread_mutex_unlock(&t->lock);

	char err[512];
	struct sbx_vm *c = NULL;
	int hold = fork_lend && threaded;
	if (hold)
		sbx_threads_hold(vm);
	struct sbx_pnode *n = calloc(1, sizeof(*n));
	/* Nothing here may ask the kernel what the confined monitor may not (docs/confinement.md):
	 * the child's facts and handles come from its parent. */
	int r = n ? sbx_core_new_child(vm,
				       fork_lend ? SBX_LEND_EXTENTS
				       : lend	 ? SBX_LEND_WHOLE
						 : 0,
				       &c, err, sizeof(err))
		  : -ENOMEM;
	if (r == 0)
		r = sbx_calls_attach_fork(c, vm, err, sizeof(err));
	if (r == 0) {
		c->hooks.mem_operand = vm->hooks.mem_operand;
		c->proc.pid = pid;
		c->proc.ppid = vm->proc.pid;
		c->proc.pgid = vm->proc.pgid;
		c->proc.sid = vm->proc.sid;
		c->procs = t;
		tree_hooks(c);
		sbx_vm_choose_cpus(c);
		/* Processes share the cores: none pins its vCPU or poller, and one poller serves
		 * them all. */
		c->proc.vcpu.cpu = c->proc.ring.cpu = -1;
		sbx_ring_share(c, vm);
		r = sbx_core_fork(vm, c, s->seq, err, sizeof(err));
	}
	if (r == 0) {
		/* The parent's strings may go with its next execve: the child's own copies. */
		if (c->proc.exec_path)
			c->cfg.prog = c->proc.exec_path;
		char l[512];
		snprintf(l, sizeof(l), "%s (pid %u)",
			 vm->proc.exec_path ? vm->proc.exec_path : vm->cfg.prog, pid);
		free(c->proc.exec_args);
		c->proc.exec_args = strdup(l);
		if (c->proc.exec_args)
			c->cfg.name = c->proc.exec_args;
		else
			c->cfg.name = NULL;
		*n = (struct sbx_pnode){.pid = pid,
					.ppid = vm->proc.pid,
					.pgid = vm->proc.pgid,
					.sid = vm->proc.sid,
					.vm = c};
		/* CLONE_VFORK comes only from a parent of one thread (a threaded one asks for a
		 * copy and waits apart), which stays stopped until the child execs or ends: the
		 * memory the two would share on Linux is the child's until then. */
		n->vfork_share =
		    (flags & SBX_CLONE_VFORK) && sbx_dirty_start(c, err, sizeof(err)) == 0;
		/* Its log counts what it holds (sbx_mem_ram_bytes) and what its own child's copy
		 * takes (sbx_mem_copy_view). */
		if (fork_lend && (r = sbx_mem_keep_lender(c, vm)) == 0)
			n->fork_lent = (r = sbx_dirty_start(c, err, sizeof(err))) == 0;
		else if (fork_lend)
			snprintf(err, sizeof(err), "keeping the parent's memfd: %s", strerror(-r));
		fork_lend = n->parent_on_ram = n->fork_lent;
		/* Only while its parent's threads are held (lend_wait): they write nothing then. */
		n->vfork_share |= apart && hold && n->fork_lent;
	}
	if (hold && !fork_lend) {
		sbx_threads_release(vm);
		hold = 0;
	}
	if (r == 0) {
		pthread_attr_t at;
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		pthread_t th;
		pthread_mutex_lock(&t->lock);
		n->next = t->list;
		t->list = n;
		/* The sandbox may have begun to end meanwhile: then no process starts. */
		int e = t->ending ? EAGAIN : pthread_create(&th, &at, proc_main, n);
		if (e) {
			unlink_node(t, n);
			r = -e;
			snprintf(err, sizeof(err), "no host thread for it: %s", strerror(e));
		} else {
			t->threads++;
		}
		pthread_mutex_unlock(&t->lock);
		pthread_attr_destroy(&at);
	}
	if (r < 0) {
		if (hold)
			sbx_threads_release(vm);
		sbx_log(vm, 1, "fork: %s", err);
		if (c && !c->proc.files)
			c->procs = NULL;
		sbx_vm_destroy(c);
		free(n);
		pthread_mutex_lock(&t->lock);
		t->live--;
		pthread_mutex_unlock(&t->lock);
		return r == -ENOMEM ? -ENOMEM : -EAGAIN;
	}
	sbx_log(vm, 2, "fork: child %u %s%s", pid,
		lend ? "runs on its parent's RAM until it execs or ends"
		     : "gets a copy of its parent's RAM: ",
		lend				       ? ""
		: copies && !(flags & SBX_CLONE_VFORK) ? copies
						       : "it cannot be lent now");
	if (flags & SBX_CLONE_VFORK)
		vfork_wait(vm, pid, NULL); /* one vCPU: a stop is the end */
	else if (fork_lend)
		lend_wait(vm, pid, hold, apart && hold);
	if (hold)
		sbx_threads_release(vm);
	return pid;
}

static int matches(const struct sbx_pnode *n, int64_t pid, uint32_t pgid)
{
	if (pid > 0)
		return n->pid == (uint64_t)pid;
	if (pid == -1)
		return 1;
	return n->pgid == (pid == 0 ? pgid : (uint64_t)-pid);
}

static int signal_waiting(struct sbx_vm *vm)
{
	const struct sbx_bootinfo *b = sbx_gptr(vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	return b && __atomic_load_n(&b->sig_incoming, __ATOMIC_SEQ_CST) != 0;
}

static int64_t do_wait(struct sbx_vm *vm, const struct sbx_slot *s)
{
	struct sbx_procs *t = vm->procs;
	int64_t pid = (int64_t)s->u.a[0];
	uint64_t opts = s->u.a[1];
	if (pid < INT32_MIN || pid > INT32_MAX)
		return -ECHILD;
	struct sbx_rusage *ru = s->u.a[2] ? sbx_gptr(vm, s->u.a[2], sizeof(*ru)) : NULL;
	if (s->u.a[2] && !ru)
		return -EFAULT; /* before a child is reaped and its status lost */
	struct sbx_rusage use = {0, 0};
	/* A signal for this thread (tgkill, another thread's execve) ends the wait too: the
	 * kernel waits again unless the signal is one that interrupts. */
	const atomic_uint *intr = intr_word(vm, s->u.a[3]);
	int released = sbx_ring_release_on(vm, &t->cond);
	int64_t r = 0;
	pthread_mutex_lock(&t->lock);
	for (;;) {
		struct sbx_pnode *hit = NULL;
		int any = 0;
		for (struct sbx_pnode *n = t->list; n && !hit; n = n->next) {
			if (n->ppid != vm->proc.pid || !matches(n, pid, vm->proc.pgid))
				continue;
			any = 1;
			if (n->ended && !(opts & SBX_WAIT_NOEXIT))
				hit = n;
			else if (!n->ended && (((opts & SBX_WSTOPPED) && n->stop_report) ||
					       ((opts & SBX_WCONTINUED) && n->cont_report)))
				hit = n;
		}
		if (!any) {
			r = -ECHILD;
			break;
		}
		if (hit && !hit->ended) {
			/* A stop or continue, told once (unless WNOWAIT); the child stays. */
			int st = (opts & SBX_WSTOPPED) && hit->stop_report
				     ? (hit->stop_report << 8) | 0x7f
				     : 0xffff;
			r = ((int64_t)(uint32_t)st << 32) | hit->pid;
			if (!(opts & SBX_WNOWAIT)) {
				if (st == 0xffff)
					hit->cont_report = 0;
				else
					hit->stop_report = 0;
			}
			if (hit->clock_set && hit->vm)
				use.cpu_ns = sbx_now_ns(hit->clock) + sbx_threads_cpu_ns(hit->vm);
			use.maxrss_kib = hit->maxrss_kib;
			break;
		}
		if (hit) {
			r = ((int64_t)(uint32_t)hit->status << 32) | hit->pid;
			/* Linux's RUSAGE_BOTH: the child's, and its own reaped children's. */
			use.cpu_ns = hit->cpu_ns + hit->children_cpu_ns;
			use.maxrss_kib = hit->maxrss_kib > hit->children_maxrss_kib
					     ? hit->maxrss_kib
					     : hit->children_maxrss_kib;
			struct sbx_pnode *me = self(vm);
			if (!(opts & SBX_WNOWAIT) && me) {
				me->children_cpu_ns += use.cpu_ns;
				if (use.maxrss_kib > me->children_maxrss_kib)
					me->children_maxrss_kib = use.maxrss_kib;
				put_children_usage(vm, me);
			}
			if (!(opts & SBX_WNOWAIT)) {
				unlink_node(t, hit);
				free(hit);
				t->live--;
			}
			break;
		}
		if (opts & SBX_WNOHANG)
			break;
		if (atomic_load(&vm->life.stopping) || signal_waiting(vm) ||
		    atomic_load(&vm->life.pause_req) || interrupted(intr) ||
		    sbx_threads_ending(vm)) {
			r = -EINTR;
			break;
		}
		wait_a_while(t, intr);
	}
	pthread_mutex_unlock(&t->lock);
	sbx_ring_reacquire(vm, released);
	if (ru && r > 0)
		memcpy(ru, &use, sizeof(use));
	return r;
}

static int64_t do_kill(struct sbx_vm *vm, const struct sbx_slot *s)
{
	struct sbx_procs *t = vm->procs;
	int64_t pid = (int64_t)s->u.a[0];
	uint64_t sig = s->u.a[1];
	if (sig > 64)
		return -EINVAL;
	if (pid < INT32_MIN || pid > INT32_MAX || pid == INT32_MIN)
		return -ESRCH;
	/* pid 1, the monitor's init: the first process's parent and every orphan's. It is
	 * there (kill(getppid(), 0), a child's "is my parent alive") and, as the init of a pid
	 * namespace takes nothing it has no handler for from its own processes, nothing sent
	 * to it has any effect. */
	if (pid == 1)
		return 0;
	int found = 0, mine = 0;
	pthread_mutex_lock(&t->lock);
	for (struct sbx_pnode *n = t->list; n; n = n->next) {
		/* kill(-1, ...): every process but the caller (init, pid 1, is none of them). */
		if (!matches(n, pid, vm->proc.pgid))
			continue;
		if (n->pid == vm->proc.pid) {
			mine = pid != -1;
			continue;
		}
		found = 1;
		if (sig && n->vm)
			deliver(t, n->vm, (int)sig, vm->proc.pid, SI_USER, 0, 0);
	}
	/* A thread's id names its process, as on Linux. */
	for (struct sbx_pnode *n = t->list; pid > 0 && !found && !mine && n; n = n->next) {
		if (!n->vm || !sbx_thread_has_tid(n->vm, (uint32_t)pid, 0))
			continue;
		mine = n->vm == vm;
		found = !mine;
		if (sig && found)
			deliver(t, n->vm, (int)sig, vm->proc.pid, SI_USER, 0, 0);
	}
	pthread_mutex_unlock(&t->lock);
	if (mine)
		return 1;	   /* the guest's kernel takes the caller's share */
	return found ? 0 : -ESRCH; /* kill(-1) too, when no process but the caller's is there */
}

/* setpgid, getpgid, setsid, getsid over the tree; the ids each process sees are in its boot
 * page. Tree lock held. */
static void set_ids(struct sbx_pnode *n, uint32_t pgid, uint32_t sid)
{
	n->pgid = pgid;
	n->sid = sid;
	if (!n->vm)
		return;
	n->vm->proc.pgid = pgid;
	n->vm->proc.sid = sid;
	struct sbx_bootinfo *b = sbx_gptr(n->vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	if (b) {
		__atomic_store_n(&b->pgid, pgid, __ATOMIC_RELAXED);
		__atomic_store_n(&b->sid, sid, __ATOMIC_RELAXED);
	}
}

static int64_t do_pgrp(struct sbx_vm *vm, const struct sbx_slot *s)
{
	struct sbx_procs *t = vm->procs;
	uint64_t op = s->u.a[0];
	int64_t a = (int64_t)s->u.a[1], b = (int64_t)s->u.a[2];
	if (a < 0 || a > INT32_MAX || ((op == 0) && (b < 0 || b > INT32_MAX)))
		return op == 0 ? -EINVAL : -ESRCH;
	int64_t r = 0;
	pthread_mutex_lock(&t->lock);
	struct sbx_pnode *me = self(vm), *n = a ? find(t, (uint32_t)a) : me;
	switch (op) {
	case 0: /* setpgid(a, b): itself or a child of its session; into a group of it */
		if (!n || !me || (n != me && n->ppid != me->pid)) {
			r = -ESRCH;
			break;
		}
		uint32_t pgid = b ? (uint32_t)b : n->pid;
		int exists = pgid == n->pid;
		for (struct sbx_pnode *g = t->list; g && !exists; g = g->next)
			exists = g->pgid == pgid && g->sid == me->sid && !g->ended;
		if (n->sid != me->sid || n->pid == n->sid || !exists)
			r = -EPERM;
		else
			set_ids(n, pgid, n->sid);
		break;
	case 1:
		r = n ? (int64_t)n->pgid : -ESRCH;
		break;
	case 2: /* setsid: not for a group's leader */
		if (!me)
			r = -ESRCH;
		else if (me->pgid == me->pid)
			r = -EPERM;
		else {
			set_ids(me, me->pid, me->pid);
			r = me->pid;
		}
		break;
	case 3:
		r = n ? (int64_t)n->sid : -ESRCH;
		break;
	case SBX_PGRP_STOP: /* its vCPU stops at its pause point on the way back */
		if (stop_signal((int)a))
			job_stop(t, me, (int)a);
		else
			r = -EINVAL;
		break;
	default:
		r = -EINVAL;
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}

/* alarm, setitimer, getitimer of ITIMER_REAL, and the POSIX timers (sbx_calls.h). Values
 * past a century are a century: no timer that long ends within a sandbox's run. */
static int64_t do_itimer(struct sbx_vm *vm, const struct sbx_slot *s)
{
	const int64_t most = 100ll * 366 * 24 * 3600 * 1000000000ll;
	struct sbx_procs *t = vm->procs;
	struct sbx_itimer *io = sbx_gptr(vm, s->u.a[0], sizeof(*io));
	if (!io)
		return -EFAULT;
	uint64_t k = s->u.a[2], signo = s->u.a[3];
	if (s->u.a[1] > 1 || k > SBX_PTIMERS || signo > 64 || s->u.a[4] > UINT32_MAX)
		return -EINVAL;
	struct sbx_itimer in;
	memcpy(&in, io, sizeof(in)); /* once: the guest may change it meanwhile */
	if (s->u.a[1] && (in.value_ns < 0 || in.interval_ns < 0))
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	struct sbx_pnode *me = self(vm);
	if (!me) {
		pthread_mutex_unlock(&t->lock);
		return -ESRCH;
	}
	int64_t now = sbx_now_ns(CLOCK_MONOTONIC);
	/* An armed timer reads as at least 1 ns left, as Linux's never reads 0. */
	struct sbx_ptimer *p = &me->timer[k];
	struct sbx_itimer old = {p->at ? (p->at > now ? p->at - now : 1) : 0, p->every};
	if (s->u.a[1] && in.value_ns && start_keeper(t) < 0) {
		pthread_mutex_unlock(&t->lock);
		return -EAGAIN;
	}
	if (s->u.a[1]) {
		p->every = in.interval_ns < most ? in.interval_ns : most;
		p->at = in.value_ns ? now + (in.value_ns < most ? in.value_ns : most) : 0;
		if (k) {
			p->signo = (int)signo;
			p->value = (uint32_t)s->u.a[4];
		}
		pthread_cond_broadcast(&t->cond); /* the keeper looks again */
	}
	pthread_mutex_unlock(&t->lock);
	memcpy(io, &old, sizeof(old));
	return 0;
}

struct share_ctx {
	struct sbx_vm *from, *to;
	const uint64_t *dirty;
	uint64_t pages;
};

static int share_page(void *ctx, uint64_t gpa)
{
	struct share_ctx *c = ctx;
	uint64_t p = gpa / SBX_PAGE_SIZE;
	if (gpa + SBX_PAGE_SIZE > c->from->proc.mem.size || !(c->dirty[p / 64] >> (p % 64) & 1))
		return 0;
	memcpy(c->to->proc.mem.base + gpa, c->from->proc.mem.base + gpa, SBX_PAGE_SIZE);
	sbx_mem_dirty(c->to, gpa, SBX_PAGE_SIZE);
	c->pages++;
	return 0;
}

/* VFORK_EXIT (1.15), from a vfork's child about to end without an execve, whose mappings are
 * still its parent's: what it wrote to memory they share on Linux goes to the parent, stopped
 * in its vfork meanwhile (glibc's posix_spawn reports a failed execve so, and Rust's Command
 * with it). The pages the parent's tables map writable to the program and the child wrote; a
 * page only the child mapped is not the parent's. The number of pages. */
static int64_t do_vfork_exit(struct sbx_vm *vm)
{
	struct sbx_procs *t = vm->procs;
	uint64_t *dirty = calloc(sbx_dirty_words(vm), sizeof(uint64_t));
	if (!dirty)
		return -ENOMEM;
	pthread_mutex_lock(&t->lock);
	struct sbx_pnode *me = self(vm), *parent = find(t, vm->proc.ppid);
	int64_t r = 0;
	/* The parent's VM is gone only under the lock, and waits while we hold it. */
	if (me && me->vfork_share && !me->released && parent && parent->vm &&
	    !atomic_load(&parent->vm->life.stopping) &&
	    parent->vm->proc.mem.size == vm->proc.mem.size &&
	    sbx_dirty_collect(vm, dirty, 1) >= 0) {
		struct share_ctx c = {.from = vm, .to = parent->vm, .dirty = dirty};
		r = sbx_gva_each_writable(parent->vm, sbx_guest_root(parent->vm), share_page, &c);
		r = r < 0 ? r : (int64_t)c.pages;
		me->vfork_share = 0;
	}
	pthread_mutex_unlock(&t->lock);
	free(dirty);
	return r;
}

static unsigned procs_list(struct sbx_vm *vm, uint32_t *pids, unsigned max)
{
	struct sbx_procs *t = vm->procs;
	unsigned n = 0;
	pthread_mutex_lock(&t->lock);
	for (struct sbx_pnode *p = t->list; p; p = p->next)
		if (p->vm && !p->ended) {
			if (pids && n < max)
				pids[n] = p->pid;
			n++;
		}
	pthread_mutex_unlock(&t->lock);
	return n;
}

static int procs_with(struct sbx_vm *vm, uint32_t pid, void (*fn)(struct sbx_vm *other, void *ctx),
		      void *ctx)
{
	struct sbx_procs *t = vm->procs;
	pthread_mutex_lock(&t->lock);
	struct sbx_pnode *n = find(t, pid);
	int r = n && n->vm && !n->ended ? 0 : -ESRCH;
	if (r == 0 && fn)
		fn(n->vm, ctx);
	pthread_mutex_unlock(&t->lock);
	return r;
}

/* What every process of the tree asks of it. */
static int tty_signal(struct sbx_vm *vm, uint32_t pgrp, int sig)
{
	struct sbx_procs *t = vm->procs;
	pthread_mutex_lock(&t->lock);
	/* A terminal's stop that would go by is not sent: a background read says EIO, and is
	 * not made again for ever. */
	int r = sig != SIGSTOP && stop_signal(sig) && stop_goes_by(t, pgrp, NULL) ? -EIO : 0;
	for (struct sbx_pnode *n = t->list; n && !r; n = n->next)
		if (n->pgid == pgrp && n->vm && !n->ended && !t->ending)
			deliver(t, n->vm, sig, 0, SI_KERNEL, 0, 0);
	pthread_mutex_unlock(&t->lock);
	return r;
}

static void tree_hooks(struct sbx_vm *vm)
{
	vm->hooks.tty_signal = tty_signal;
	vm->hooks.job_stopped = job_stopped;
	vm->hooks.proc = proc_call;
	vm->hooks.execed = execed;
	vm->hooks.exec_begin = exec_begin;
	vm->hooks.exec_committed = exec_committed;
	vm->hooks.mem_outside = mem_outside;
	vm->hooks.new_tid = new_tid;
	vm->hooks.procs_list = procs_list;
	vm->hooks.procs_with = procs_with;
}

static int64_t proc_call(struct sbx_vm *vm, const struct sbx_slot *s)
{
	if (!vm->procs)
		return -ENOSYS;
	switch (s->nr) {
	case SBX_CALL_VFORK_EXIT:
		return do_vfork_exit(vm);
	case SBX_CALL_FORK:
		return do_fork(vm, s);
	case SBX_CALL_WAIT:
		return do_wait(vm, s);
	case SBX_CALL_PKILL:
		return do_kill(vm, s);
	case SBX_CALL_PGRP:
		return do_pgrp(vm, s);
	case SBX_CALL_ITIMER:
		return do_itimer(vm, s);
	}
	return -ENOSYS;
}

int sbx_procs_attach(struct sbx_vm *vm, char *err, size_t errlen)
{
	struct sbx_procs *t = calloc(1, sizeof(*t));
	struct sbx_pnode *n = calloc(1, sizeof(*n));
	if (!t || !n) {
		free(t);
		free(n);
		return sbx_fail(err, errlen, -ENOMEM, "out of memory");
	}
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &ca);
	pthread_condattr_destroy(&ca);
	t->root = vm;
	t->next_pid = SBX_FIRST_PID + 1;
	t->pid_max = SBX_PID_LIMIT;
	t->live = 1;
	t->max = vm->cfg.max_procs ? (unsigned)vm->cfg.max_procs : SBX_PROCS_DEFAULT;
	if (sched_getaffinity(0, sizeof(t->cpus), &t->cpus) < 0)
		CPU_ZERO(&t->cpus);
	*n = (struct sbx_pnode){.pid = vm->proc.pid,
				.ppid = vm->proc.ppid,
				.pgid = vm->proc.pgid,
				.sid = vm->proc.sid,
				.vm = vm};
	t->list = n;
	vm->procs = t;
	tree_hooks(vm);
	vm->hooks.others_cpu_ns = others_cpu_ns;
	vm->hooks.ids_from = ids_from;
	return 0;
}

void sbx_procs_leave_report(struct sbx_vm *vm, const uint32_t *nosys)
{
	struct sbx_procs *t = vm->procs;
	const struct sbx_audit *a = vm->audit;
	if (!t || t->root == vm)
		return;
	pthread_mutex_lock(&t->lock);
	for (int i = 0; i < SBX_MAX_SYSCALL; i++) {
		t->left |= nosys[i] != 0;
		t->nosys[i] += nosys[i];
	}
	for (unsigned i = 0; a && i < a->nmissing && t->nmissing < SBX_MISSING_MAX; i++) {
		int seen = 0;
		for (unsigned j = 0; j < t->nmissing && !seen; j++)
			seen = strcmp(t->missing[j], a->missing[i]) == 0;
		char *c = seen ? NULL : strdup(a->missing[i]);
		if (c) {
			t->missing[t->nmissing++] = c;
			t->left = 1;
		}
	}
	pthread_mutex_unlock(&t->lock);
}

/* Tree lock held. */
static void forget_report(struct sbx_procs *t)
{
	for (unsigned i = 0; i < t->nmissing; i++)
		free(t->missing[i]);
	t->nmissing = 0;
	memset(t->nosys, 0, sizeof(t->nosys));
	t->left = 0;
}

int sbx_procs_take_report(struct sbx_vm *vm, uint32_t *nosys)
{
	struct sbx_procs *t = vm->procs;
	if (!t || t->root != vm)
		return 0;
	pthread_mutex_lock(&t->lock);
	int left = t->left;
	for (int i = 0; i < SBX_MAX_SYSCALL; i++)
		nosys[i] += t->nosys[i];
	for (unsigned i = 0; i < t->nmissing; i++)
		sbx_missing_add(vm, t->missing[i]);
	forget_report(t);
	pthread_mutex_unlock(&t->lock);
	return left;
}

int sbx_procs_timer_armed(struct sbx_vm *vm)
{
	struct sbx_procs *t = vm->procs;
	if (!t)
		return 0;
	pthread_mutex_lock(&t->lock);
	const struct sbx_pnode *n = self(vm);
	int armed = 0;
	for (unsigned k = 0; n && k <= SBX_PTIMERS; k++)
		armed |= n->timer[k].at != 0;
	pthread_mutex_unlock(&t->lock);
	return armed;
}

unsigned sbx_procs_count(struct sbx_vm *vm)
{
	struct sbx_procs *t = vm->procs;
	if (!t)
		return 1;
	pthread_mutex_lock(&t->lock);
	unsigned n = t->live;
	pthread_mutex_unlock(&t->lock);
	return n;
}

/* Kills every process but the first and waits until each thread has destroyed its VM; no
 * new process starts meanwhile. */
static void end_others(struct sbx_procs *t, const char *why)
{
	pthread_mutex_lock(&t->lock);
	t->ending = 1;
	pthread_cond_broadcast(&t->cond); /* the keeper, which looks every 20 ms, goes now */
	for (struct sbx_pnode *n = t->list; n; n = n->next)
		if (n->vm && n->vm != t->root)
			sbx_vm_kill(n->vm, SBX_END_SIGNAL, 128 + SIGKILL, SIGKILL, "killed: %s",
				    why);
	while (t->threads)
		pthread_cond_wait(&t->cond, &t->lock);
	pthread_mutex_unlock(&t->lock);
	if (t->keeper_started)
		pthread_join(t->keeper, NULL);
	pthread_mutex_lock(&t->lock);
	t->keeper_started = 0;
	pthread_mutex_unlock(&t->lock);
}

void sbx_procs_end(struct sbx_vm *vm)
{
	struct sbx_procs *t = vm->procs;
	if (!t || t->root != vm)
		return;
	/* No process outlives its sandbox. */
	end_others(t, "the sandbox's first process ended");
	forget_report(t);
	while (t->list) {
		struct sbx_pnode *n = t->list;
		t->list = n->next;
		free(n);
	}
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	free(t);
	vm->procs = NULL;
}

void sbx_procs_adopt_ids(struct sbx_vm *vm)
{
	struct sbx_procs *t = vm->procs;
	const struct sbx_bootinfo *b = sbx_gptr(vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	if (!b || !t || t->root != vm || t->live != 1)
		return;
	uint32_t pid = b->pid, ppid = b->ppid, pgid = b->pgid, sid = b->sid;
	if (!pid || pid >= SBX_PID_LIMIT || ppid >= SBX_PID_LIMIT || ppid == pid || !pgid ||
	    pgid >= SBX_PID_LIMIT || !sid || sid >= SBX_PID_LIMIT)
		return;
	pthread_mutex_lock(&t->lock);
	struct sbx_pnode *n = self(vm);
	if (n) {
		n->pid = vm->proc.pid = pid;
		n->ppid = vm->proc.ppid = ppid;
		n->pgid = vm->proc.pgid = pgid;
		n->sid = vm->proc.sid = sid;
		t->next_pid = pid + 1 < t->pid_max ? pid + 1 : SBX_FIRST_PID + 1;
	}
	pthread_mutex_unlock(&t->lock);
}

void sbx_procs_reset(struct sbx_vm *vm)
{
	struct sbx_procs *t = vm->procs;
	if (!t || t->root != vm)
		return;
	end_others(t, "the run is over");
	pthread_mutex_lock(&t->lock);
	for (struct sbx_pnode **pp = &t->list; *pp;) {
		struct sbx_pnode *n = *pp;
		if (n->vm == t->root) {
			/* A run's timers are not the next run's, nor their signals on the way (the
			 * host's write is no page the reset puts back). */
			uint64_t bits = 1ull << (SIGALRM - 1);
			for (unsigned k = 1; k <= SBX_PTIMERS; k++)
				if (n->timer[k].signo)
					bits |= 1ull << (n->timer[k].signo - 1);
			memset(n->timer, 0, sizeof(n->timer));
			n->stop_pending = n->stop_report = n->cont_report = 0;
			struct sbx_bootinfo *b = sbx_gptr(t->root, SBX_BOOTINFO_ADDR, sizeof(*b));
			if (b)
				__atomic_and_fetch(&b->sig_incoming, ~bits, __ATOMIC_SEQ_CST);
			pp = &n->next;
			continue;
		}
		*pp = n->next;
		free(n);
	}
	/* Every run the same: its processes numbered from the first's again. */
	t->next_pid = SBX_FIRST_PID + 1;
	t->wrapped = 0;
	t->live = 1;
	t->ended_cpu_ns = 0;
	t->oom_pid = 0;
	t->told_mem = 0;
	t->ending = 0;
	forget_report(t);
	pthread_mutex_unlock(&t->lock);
}
