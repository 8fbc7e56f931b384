/* The hypercall table: one handler per call number. Each handler gets the slot already copied
 * out of guest memory, validates it, acts, and returns one result (>= 0 or -errno). */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "calls.h"

/* The statuses the kernel may send: 0..255, a fatal signal 1..64 with SBX_EXIT_SIGNALED or
 * SBX_EXIT_NODELIVER, or SBX_EXIT_DEADLOCK alone. */
static int exit_status_ok(uint64_t st)
{
	uint64_t kind = st & ~0xffull, sig = st & 0xff;
	if (kind == 0 || st == SBX_EXIT_DEADLOCK)
		return 1;
	return (kind == SBX_EXIT_SIGNALED || kind == SBX_EXIT_NODELIVER) && sig >= 1 && sig <= 64;
}

static int64_t hc_exit(struct sbx_vm *vm, const struct sbx_slot *s)
{
	uint64_t st = s->u.a[0];
	uint32_t sig = (uint32_t)(st & 0xff);
	if (!exit_status_ok(st)) {
		/* Not a program's end but a kernel breaking the contract: no status to pass on. */
		sbx_vm_kill(vm, SBX_END_ERROR, SBX_STATUS_ERROR, 0,
			    "guest ABI violation: exit status 0x%llx is not 0..255, "
			    "SIGNALED|NODELIVER with a signal 1..64, or DEADLOCK",
			    (unsigned long long)st);
		return -EINVAL;
	}
	if (st & SBX_EXIT_SIGNALED)
		sbx_vm_kill(vm, SBX_END_SIGNAL, 128 + (int)sig, (int)sig,
			    "killed by SIG%s (signal %u)",
			    sigabbrev_np((int)sig) ? sigabbrev_np((int)sig) : "?", sig);
	else if (st & SBX_EXIT_NODELIVER) {
		/* The frame would go where the program may not write: Linux kills with SIGSEGV. */
		sbx_vm_kill(vm, SBX_END_SIGNAL, 128 + SIGSEGV, SIGSEGV,
			    "SIG%s could not be delivered: no room for the signal frame",
			    sigabbrev_np((int)sig) ? sigabbrev_np((int)sig) : "?");
		vm->stop.nodeliver = 1;
	} else if (st & SBX_EXIT_DEADLOCK)
		sbx_vm_kill(vm, SBX_END_SIGNAL, 128 + 9, 9,
			    "deadlock: futex wait with no timeout and no other thread to wake it");
	else
		sbx_vm_kill(vm, SBX_END_EXIT, (int)(st & 0xff), 0, "exited with status %u",
			    (unsigned)(st & 0xff));
	/* Only if this exit was the first reason to stop (sbx_vm_kill keeps the first). */
	vm->stop.status_set_by_exit = vm->stop.end == SBX_END_EXIT && !(st & ~0xffull);
	return 0;
}

static int64_t hc_random(struct sbx_vm *vm, const struct sbx_slot *s)
{
	uint64_t len = s->u.rw.len;
	if (len > 1 << 20)
		len = 1 << 20; /* getrandom returns short counts for big requests too */
	uint8_t *p = sbx_gptr(vm, s->u.rw.buf, len);
	if (!p)
		return -EFAULT;
	if (vm->det_random) {
		/* A fuzzing run's randomness is part of its input: splitmix64 from the run's seed.
		 */
		for (uint64_t i = 0; i < len; i++) {
			if (i % 8 == 0) {
				uint64_t z = (vm->det_state += 0x9e3779b97f4a7c15ull);
				z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
				z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
				vm->det_out = z ^ (z >> 31);
			}
			p[i] = (uint8_t)(vm->det_out >> (8 * (i % 8)));
		}
		return (int64_t)len;
	}
	ssize_t n = getrandom(p, len, 0);
	return n < 0 ? -errno : n;
}

static int64_t hc_trace(struct sbx_vm *vm, const struct sbx_slot *s)
{
	uint64_t args[6];
	if (sbx_copy_from_guest(vm, args, s->u.a[2], sizeof(args)) < 0)
		memset(args, 0, sizeof(args));
	sbx_strace(vm, s->u.a[0], (int64_t)s->u.a[1], args);
	return 0;
}

static int64_t hc_discard(struct sbx_vm *vm, const struct sbx_slot *s)
{
	uint64_t addr = s->u.a[0], len = s->u.a[1];
	/* Only user pages, whole pages: the kernel area and page tables are never given back. */
	if ((addr | len) & (SBX_PAGE_SIZE - 1) || addr < SBX_USER_ADDR || !sbx_gptr(vm, addr, len))
		return -EINVAL;
	if (vm->mem_fd < 0) {
		/* RAM is a private mapping of a snapshot (lazy restore): dropping pages would
		 * bring the file's bytes back, so map fresh zero pages over them instead. */
		void *p = mmap(vm->mem + addr, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
		return p == MAP_FAILED ? -errno : 0;
	}
	if (fallocate(vm->mem_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)addr,
		      (off_t)len) < 0)
		return -errno;
	return 0;
}

static int64_t hc_populate(struct sbx_vm *vm, const struct sbx_slot *s)
{
	uint64_t addr = s->u.a[0], len = s->u.a[1];
	/* A hint: whole user pages, at most 64 MiB, inside RAM; anything else is ignored. */
	if ((addr | len) & (SBX_PAGE_SIZE - 1) || addr < SBX_USER_ADDR || len > (64ull << 20) ||
	    !sbx_gptr(vm, addr, len))
		return -EINVAL;
	return madvise(vm->mem + addr, len, MADV_POPULATE_WRITE) < 0 ? -errno : 0;
}

static int64_t hc_sleep(struct sbx_vm *vm, const struct sbx_slot *s)
{
	uint64_t ns = s->u.a[0];
	struct timespec end, now;
	clock_gettime(CLOCK_MONOTONIC, &end);
	if (ns > 1000000000ull * 3600 * 24 * 365)
		ns = 1000000000ull * 3600 * 24 * 365;
	end.tv_sec += (time_t)(ns / 1000000000ull);
	end.tv_nsec += (long)(ns % 1000000000ull);
	if (end.tv_nsec >= 1000000000) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000;
	}
	/* Wait on the stop word, so that ending the sandbox ends the sleep too; a pause or a
	 * nudge (a migration round wanting ring_lock) ends it early, and the guest kernel
	 * sleeps again for the rest by its own clock. */
	int nudge = atomic_load(&vm->nudge);
	while (!atomic_load(&vm->stopping) && !atomic_load(&vm->pause_req) &&
	       atomic_load(&vm->nudge) == nudge) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		int64_t left =
		    (int64_t)(end.tv_sec - now.tv_sec) * 1000000000ll + (end.tv_nsec - now.tv_nsec);
		if (left <= 0)
			break;
		struct timespec rel = {.tv_sec = (time_t)(left / 1000000000ll),
				       .tv_nsec = (long)(left % 1000000000ll)};
		syscall(SYS_futex, &vm->stopping, FUTEX_WAIT_PRIVATE, 0, &rel, NULL, 0);
	}
	return 0;
}

typedef int64_t (*sbx_hc_fn)(struct sbx_vm *vm, const struct sbx_slot *s);

static const sbx_hc_fn sbx_hc_table[SBX_CALL_COUNT] = {
    [SBX_CALL_EXIT] = hc_exit,
    [SBX_CALL_READ] = sbx_hc_read,
    [SBX_CALL_WRITE] = sbx_hc_write,
    [SBX_CALL_PREAD] = sbx_hc_read,
    [SBX_CALL_PWRITE] = sbx_hc_write,
    [SBX_CALL_READV] = sbx_hc_readv,
    [SBX_CALL_WRITEV] = sbx_hc_writev,
    [SBX_CALL_OPEN] = sbx_hc_open,
    [SBX_CALL_CLOSE] = sbx_hc_close,
    [SBX_CALL_FSTAT] = sbx_hc_fstat,
    [SBX_CALL_STAT] = sbx_hc_stat,
    [SBX_CALL_LSEEK] = sbx_hc_lseek,
    [SBX_CALL_GETDENTS] = sbx_hc_getdents,
    [SBX_CALL_READLINK] = sbx_hc_readlink,
    [SBX_CALL_MKDIR] = sbx_hc_mkdir,
    [SBX_CALL_UNLINK] = sbx_hc_unlink,
    [SBX_CALL_RENAME] = sbx_hc_rename,
    [SBX_CALL_FTRUNCATE] = sbx_hc_ftruncate,
    [SBX_CALL_FSYNC] = sbx_hc_fsync,
    [SBX_CALL_DUP] = sbx_hc_dup,
    [SBX_CALL_FCNTL] = sbx_hc_fcntl,
    [SBX_CALL_CHDIR] = sbx_hc_chdir,
    [SBX_CALL_GETCWD] = sbx_hc_getcwd,
    [SBX_CALL_ACCESS] = sbx_hc_access,
    [SBX_CALL_RANDOM] = hc_random,
    [SBX_CALL_IOCTL] = sbx_hc_ioctl,
    [SBX_CALL_TRACE] = hc_trace,
    [SBX_CALL_DISCARD] = hc_discard,
    [SBX_CALL_FDATASYNC] = sbx_hc_fsync,
    [SBX_CALL_SLEEP] = hc_sleep,
    [SBX_CALL_SYMLINK] = sbx_hc_symlink,
    [SBX_CALL_LINK] = sbx_hc_link,
    [SBX_CALL_CHMOD] = sbx_hc_chmod,
    [SBX_CALL_UTIMENS] = sbx_hc_utimens,
    [SBX_CALL_STATFS] = sbx_hc_statfs,
    [SBX_CALL_POLL] = sbx_hc_poll,
    [SBX_CALL_POPULATE] = hc_populate,
    [SBX_CALL_NOFILE] = sbx_hc_nofile,
};

/* How a call's time counts for the guest's CPU-time clocks (the boot page's waited_ns, which
 * the kernel takes off them): a sleep or a poll is all waiting; a read or write of the
 * monitor's stdio (a pipe, a terminal) waits for as long as it was off the CPU; the rest is
 * work the guest would do in its own kernel. A FIFO inside a mount is not told apart. */
enum sbx_wait { SBX_WAIT_NONE, SBX_WAIT_ALL, SBX_WAIT_OFF_CPU };

static enum sbx_wait wait_kind(struct sbx_vm *vm, const struct sbx_slot *s)
{
	switch (s->nr) {
	case SBX_CALL_SLEEP:
	case SBX_CALL_POLL:
		return SBX_WAIT_ALL;
	case SBX_CALL_READ:
	case SBX_CALL_READV:
	case SBX_CALL_WRITE:
	case SBX_CALL_WRITEV: {
		const struct sbx_handle *h = sbx_fd_get(vm, s->u.rw.fd);
		return h && h->stdio >= 0 ? SBX_WAIT_OFF_CPU : SBX_WAIT_NONE;
	}
	default:
		return SBX_WAIT_NONE;
	}
}

static int64_t ts_ns(clockid_t c)
{
	struct timespec t;
	clock_gettime(c, &t);
	return (int64_t)t.tv_sec * 1000000000ll + t.tv_nsec;
}

/* Before the reply is published: the kernel reads waited_ns once the request is done. */
static void note_wait(struct sbx_vm *vm, enum sbx_wait k, int64_t wall0, int64_t cpu0)
{
	int64_t d = ts_ns(CLOCK_MONOTONIC) - wall0;
	if (k == SBX_WAIT_OFF_CPU)
		d -= ts_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
	if (d <= 0)
		return;
	volatile struct sbx_bootinfo *b = sbx_gptr(vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	b->waited_ns += (uint64_t)d;
}

/* Might this call have changed a file on a writable mount? (Writes to stdio do not.) */
static int sbx_hc_changes_fs(struct sbx_vm *vm, const struct sbx_slot *s)
{
	switch (s->nr) {
	case SBX_CALL_WRITE:
	case SBX_CALL_PWRITE:
	case SBX_CALL_WRITEV: {
		const struct sbx_handle *h = sbx_fd_get(vm, s->u.rw.fd);
		return h && h->gpath;
	}
	case SBX_CALL_OPEN:
		return (s->u.path.flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) != 0;
	case SBX_CALL_MKDIR:
	case SBX_CALL_UNLINK:
	case SBX_CALL_RENAME:
	case SBX_CALL_FTRUNCATE:
	case SBX_CALL_SYMLINK:
	case SBX_CALL_LINK:
	case SBX_CALL_CHMOD:
	case SBX_CALL_UTIMENS:
		return 1;
	default:
		return 0;
	}
}

int64_t sbx_hypercall(struct sbx_vm *vm, const struct sbx_slot *s)
{
	if (s->nr >= SBX_CALL_COUNT || !sbx_hc_table[s->nr]) {
		sbx_vm_kill(vm, SBX_END_ERROR, SBX_STATUS_ERROR, 0,
			    "guest ABI violation: unknown hypercall %u", s->nr);
		return -ENOSYS;
	}
	vm->stats.calls++;
	vm->call_count[s->nr]++;
	if (__builtin_expect(vm->first_call_pending, 0)) {
		/* For the restore benchmark: time to the first hypercall after a resume. */
		clock_gettime(CLOCK_MONOTONIC, &vm->first_call_at);
		__atomic_store_n(&vm->first_call_pending, 0, __ATOMIC_RELEASE);
	}
	/* Before the call and whatever it returns: a call may change a directory and still
	 * fail (a file created, then no handle left for it). */
	if (!vm->fs_changed)
		vm->fs_changed = sbx_hc_changes_fs(vm, s);
	enum sbx_wait wk = wait_kind(vm, s);
	int64_t wall0 = wk ? ts_ns(CLOCK_MONOTONIC) : 0;
	int64_t cpu0 = wk == SBX_WAIT_OFF_CPU ? ts_ns(CLOCK_THREAD_CPUTIME_ID) : 0;
	int64_t ret = sbx_hc_table[s->nr](vm, s);
	if (wk)
		note_wait(vm, wk, wall0, cpu0);
	if (vm->cfg.audit)
		sbx_audit_record(vm, s, ret);
	return ret;
}

void sbx_vm_kill(struct sbx_vm *vm, enum sbx_end end, int status, int sig, const char *fmt, ...)
{
	/* The first reason wins: later ones are consequences. */
	int expected = 0;
	if (!atomic_compare_exchange_strong(&vm->stopping, &expected, 1))
		return;
	vm->stop.end = end;
	vm->stop.status = status;
	vm->stop.signal = sig;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(vm->stop.reason, sizeof(vm->stop.reason), fmt, ap);
	va_end(ap);
	/* Wake whatever waits: a SLEEP, and a vCPU still in KVM_RUN (a kill decided on the
	 * polling thread would otherwise wait for the guest's next exit, which may never come). */
	syscall(SYS_futex, &vm->stopping, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
	if (vm->vcpu_thread_set && !pthread_equal(pthread_self(), vm->vcpu_thread)) {
		if (vm->run)
			vm->run->immediate_exit = 1;
		pthread_kill(vm->vcpu_thread, sbx_kick_signal());
	}
	/* A paused vCPU thread waits for resume or for this. */
	pthread_mutex_lock(&vm->pause_lock);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

void sbx_vm_interrupt(struct sbx_vm *vm, int sig)
{
	/* Only what a signal handler may do: atomics, plain stores, two syscalls. */
	int expected = 0;
	if (!atomic_compare_exchange_strong(&vm->stopping, &expected, 1))
		return;
	vm->stop.end = SBX_END_KILLED;
	vm->stop.status = 128 + sig;
	vm->stop.signal = sig;
	static const char why[] = "stopped by a signal to the monitor";
	memcpy(vm->stop.reason, why, sizeof(why));
	syscall(SYS_futex, &vm->stopping, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
	if (vm->run)
		vm->run->immediate_exit = 1;
	if (vm->vcpu_thread_set)
		pthread_kill(vm->vcpu_thread, sbx_kick_signal());
}
