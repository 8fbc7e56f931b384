/* Internal interface of the in-guest kernel (a library OS). Freestanding: no libc, no host
 * headers; only the ABI header. Everything here runs at the program's own privilege level. */
#ifndef SBX_KERNEL_H
#define SBX_KERNEL_H

#include <stddef.h>
#include <stdint.h>

#include "cpu.h"
#include "sbx_abi.h"

#define BOOT ((volatile struct sbx_bootinfo *)SBX_BOOTINFO_ADDR)
#define RING ((volatile struct sbx_ring *)K_CPU->ring)

/* Linux errno values (x86-64). */
#define EPERM 1
#define EACCES 13
#define ENOENT 2
#define ESRCH 3
#define EINTR 4
#define ECHILD 10
#define EBADF 9
#define EAGAIN 11
#define ENOMEM 12
#define EACCES 13
#define EFAULT 14
#define EEXIST 17
#define ENOTDIR 20
#define EISDIR 21
#define EINVAL 22
#define ENOTTY 25
#define EDOM 33
#define ERANGE 34
#define ENAMETOOLONG 36
#define EDEADLK 35
#define ENOSYS 38
#define ETIMEDOUT 110
#define EOPNOTSUPP 95
#define ENODEV 19
#define EBUSY 16
#define ENOSPC 28
#define EPIPE 32
#define ENOTSOCK 88
#define EMSGSIZE 90
#define EOVERFLOW 75
#define SIGPIPE 13

/* The registers a syscall saved on the kernel stack, in push order reversed. */
struct k_frame {
	uint64_t r15, r14, r13, r12, rbp, rbx, rax, r9, r8, r10, rdx, rsi, rdi;
	uint64_t rcx;	 /* user return address */
	uint64_t rflags; /* user RFLAGS (from %r11) */
	uint64_t user_rsp;
};
_Static_assert(sizeof(struct k_frame) == sizeof(struct sbx_syscall_frame), "one frame layout");

typedef long (*k_syscall_fn)(struct k_frame *f);

/* Every user register, in the order k_resume_full pops them (an iret frame last): struct
 * k_resume (cpu.h), this vCPU's K_CPU->resume. k_resume_full drops the big kernel lock. */
void __attribute__((noreturn)) k_resume_full(void);

/* thread.c: threads, one per vCPU, and the big kernel lock every entry takes: the kernel's
 * state is shared by all vCPUs and its code was written for one. A vCPU that already holds the
 * lock takes it again (a page fault inside the kernel). */
void k_lock(void);
void k_unlock(void);
/* Drops the lock whatever the depth (a path that does not return to its entry): the depth. */
uint32_t k_unlock_all(void);
void k_relock(uint32_t depth);
/* A thread's own part of the signal state (its mask, alternate stack and pending signals):
 * the main thread's is in the boot-time page (struct sbx_sigstate, from `blocked` on), the
 * others' in their struct k_thread. The dispositions stay the process's. */
struct k_sigthr {
	uint64_t blocked, ss_sp;
	uint32_t ss_flags, pad;
	uint64_t ss_size, pending;
};
_Static_assert(__builtin_offsetof(struct sbx_sigstate, pending) -
		       __builtin_offsetof(struct sbx_sigstate, blocked) ==
		   __builtin_offsetof(struct k_sigthr, pending),
	       "a thread's signal state has the page's layout");
volatile struct k_sigthr *k_sig_self(void);
#define TSIG k_sig_self()
#define SIGS ((volatile struct sbx_sigstate *)SBX_SIGSTATE_ADDR)
/* A signal for another thread of the program (tgkill, or kill() that the caller blocks):
 * 1 if the thread with that tid (0: any that does not block sig) took it, pending, woken from
 * a futex wait or a sleep to run its handler on its way out; 0 if there is no such thread.
 * sig 0 only asks whether it exists. */
int k_signal_thread(uint32_t tid, uint32_t sig);
/* This thread's pending signals: one more of sig (real-time ones queue), one taken, none (a
 * fork's child). */
void k_signal_pend(uint32_t sig);
void k_signal_unpend(uint32_t sig);
void k_signal_unpend_all(void);
/* This thread's pending signals with the process's (a kill() no thread could take yet), one
 * more of sig for the process, and the process's handed to the main thread before an execve. */
uint64_t k_signal_pending(void);
void k_signal_pend_shared(uint32_t sig);
void k_signal_shared_to_main(void);
/* The signals rt_sigtimedwait waits for: a thread that blocks one is still woken for it. */
void k_signal_waitset(uint64_t set);
/* The signal mask of the thread with that tid (0 if none). */
uint64_t k_thread_blocked(uint32_t tid);
/* A signal this thread does not block is pending: a wait must not begin. */
int k_signal_waiting(void);
/* A thread woken for a signal: its futex wait or sleep ends with EINTR. */
int k_thread_interrupted(void);
/* Every syscall's way out: a signal another thread left pending for this one. */
void k_signal_exit(struct k_frame *f, long ret);
/* signalfd (signal.c): whether the process made one, the signals their masks cover, and which
 * of them the monitor last heard are pending (its eventfds are readable for those);
 * k_sigfd_sync tells it when that changed. A read of one (-SBX_ESIGNALFD from READ). */
extern int k_sigfd_on;
extern uint64_t k_sigfd_union, k_sigfd_told;
void k_sigfd_sync(void);
long k_signalfd_read(int32_t fd, uint64_t buf, uint64_t len);

/* Threads alive (1 until a clone). */
extern uint32_t k_nthreads;
/* A new top-level entry of the map of RAM's master copy: every vCPU's root gets it. */
void k_cpu_root_set(unsigned slot, uint64_t entry);
/* The thread running here ends (exit(2) of one thread of several); never returns. */
void __attribute__((noreturn)) k_thread_exit(void);
/* execve with other threads, or from a thread other than the main one: a holds EXECVE's six
 * arguments. Returns an error only, with every thread still there. */
long k_exec_threaded(uint64_t *a);
/* Another thread's execve is ending this one. */
int k_exec_ends_me(void);
/* The caller is the process's main thread (vCPU 0's). */
int k_thread_is_main(void);
/* fork.c: a vfork's child (k_vfork_child non-zero) notes a syscall that may change its
 * mappings; k_vfork_exit, on its way out without an execve, gives its writes to the parent. */
extern uint32_t k_vfork_child;
void k_vfork_mapping(uint64_t nr);
void k_vfork_exit(void);
long k_sys_gettid(struct k_frame *f);

/* futex.c: a thread waiting on a futex word (its own, in its struct k_thread); the monitor
 * parks its vCPU on `state`. */
struct k_futex_wait {
	volatile uint32_t state; /* K_FW_*: futex.c */
	uint32_t bits;
	uint64_t key;		     /* the word's address */
	volatile uint32_t cancelled; /* woken by k_futex_cancel, not by a FUTEX_WAKE */
	uint32_t tid;		     /* its thread's: a PI unlock writes it into the word */
	struct k_futex_wait *next, *prev;
};
struct k_futex_wait *k_self_waiter(void);
/* Wakes up to n waiters on uaddr whose bits meet `bits`: how many. */
long k_futex_wake(uint64_t uaddr, uint32_t n, uint32_t bits);
/* A futex word as a lock (robust and PI mutexes): its owner's tid and two flags. */
#define FUTEX_WAITERS 0x80000000u
#define FUTEX_OWNER_DIED 0x40000000u
#define FUTEX_TID_MASK 0x3fffffffu
/* A robust mutex tid held at its end (pi: a PI one); then any PI lock it still holds. */
void k_futex_death(uint64_t uaddr, uint32_t tid, int pi);
void k_futex_pi_exit(uint32_t tid);
/* thread.c: tid is a running thread of this process. */
int k_thread_live(uint32_t tid);
/* Takes w off its futex's queue, woken, if it waits (a signal for its thread). */
void k_futex_cancel(struct k_futex_wait *w);
/* A forked child's: the waiters were other threads', which it does not have. */
void k_futex_forget_all(void);
/* The word a sleeping thread parks on (k_signal_thread sets it). */
/* The word a signal for the thread sets (k_thread_interrupted clears it): the monitor's waits
 * that no host signal ends look at it. */
volatile uint32_t *k_intr_word(void);
volatile uint32_t *k_kick_word(void);
long k_sys_clone(struct k_frame *f);
long k_sys_clone3(struct k_frame *f);
/* fork.c: processes */
long k_proc_clone(struct k_frame *f, uint64_t flags, uint64_t sp, uint64_t ptid, uint64_t ctid,
		  uint64_t tls);
long k_proc_kill(int64_t pid, uint64_t sig);
void k_signal_take_incoming(void);
int k_signal_default_ignored(uint32_t sig);
/* A stop signal whose action is the default, and the stop itself: the process's threads stop
 * until a SIGCONT (the monitor's), then this returns. */
int k_signal_stops(uint32_t sig);
void k_job_stop(uint32_t sig);
#define K_SA_RESTART 0x10000000ull
/* A handler's result: the call was cut short by a signal whose handler has SA_RESTART, and is
 * made again once that handler has run (Linux's ERESTARTSYS; never seen by the program). */
#define K_ERESTARTSYS 512
int k_signal_interrupts(void);
void k_thread_forked(uint64_t clear_tid);
long k_sys_fork(struct k_frame *f);
long k_sys_rt_sigsuspend(struct k_frame *f);
long k_sys_rt_sigtimedwait(struct k_frame *f);
long k_sys_signalfd(struct k_frame *f);
long k_sys_signalfd4(struct k_frame *f);
long k_sys_pause(struct k_frame *f);
/* time.c: waits up to a second on the host, less if a signal for this thread comes. */
long k_sleep_a_while(void);
long k_sys_vfork(struct k_frame *f);
long k_sys_execve(struct k_frame *f);
long k_sys_execveat(struct k_frame *f);
long k_sys_wait4(struct k_frame *f);
long k_sys_waitid(struct k_frame *f);
long k_sys_setpgid(struct k_frame *f);
long k_sys_getpgid(struct k_frame *f);
long k_sys_setsid(struct k_frame *f);
long k_sys_getsid(struct k_frame *f);
long k_sys_set_robust_list(struct k_frame *f);
long k_sys_get_robust_list(struct k_frame *f);

/* exec.c: repeated runs from one snapshot */
long k_sys_exec(struct k_frame *f);
void k_exec_stdin_point(void);	   /* before a read of fd 0 */
void k_exec_exit(uint32_t status); /* returns only when exit ends the program */

/* signal.c */
int k_signal_has_handler(uint64_t sig);
void __attribute__((noreturn)) k_deliver(uint32_t sig, const struct k_resume *r, int32_t code,
					 uint64_t addr, uint64_t err, uint64_t trapno);
void k_frame_regs(const struct k_frame *f, long ret, struct k_resume *r);
long k_sys_rt_sigreturn(struct k_frame *f);
/* A signal to the program itself, raised by the syscall in f, which returns ret: ignored or
 * blocked (then pending) it returns ret; else the handler runs (seeing ret as the call's
 * result) or the program ends. */
long k_signal_self(struct k_frame *f, uint64_t sig, long ret);
/* Delivers a pending signal the mask no longer blocks, resuming at r; returns if none. */
void k_deliver_pending(const struct k_resume *r);
/* ppoll, pselect6 and epoll_pwait: wait(f, ms) under the signal mask set (of size bytes, in
 * the program's memory; none if set is 0), as Linux's set_user_sigmask. A signal it lets
 * through ends the wait with EINTR after its handler, which runs under that mask and returns
 * to the thread's own, as sigsuspend's; one pending already ends it at once, after a look at
 * the descriptors (a ready one wins, and so does another thread that took the signal
 * meanwhile: the wait is then made as asked). -EINVAL, -EFAULT for a bad mask. */
long k_wait_masked(struct k_frame *f, uint64_t set, uint64_t size, int64_t ms,
		   long (*wait)(struct k_frame *f, int64_t ms));
/* A signal another process (or a timer) sent, with who sent it, for its siginfo. */
void k_signal_note_from(uint32_t sig, struct sbx_sigfrom from);

/* ring.c. Requests carry guest-physical addresses: k_call_rw and k_call_path translate the
 * buffers and paths they are given; k_call's pointer arguments must be kernel buffers (below
 * SBX_USER_ADDR, identity-mapped). */
long k_call(uint32_t nr, const uint64_t *args, unsigned nargs);
/* Requests that may wait on the host (a read of a pipe, a poll): with other threads, made
 * without the big kernel lock. Pointer arguments must be this vCPU's own (stack) or the
 * program's: no shared kernel buffer. */
long k_call_wait(uint32_t nr, const uint64_t *args, unsigned nargs);
long k_call_rw_wait(uint32_t nr, int32_t fd, uint64_t buf, uint64_t len);
/* The same with the request's offset: READV/WRITEV's socket flags (SBX_RW_SOCK). */
long k_call_rwf_wait(uint32_t nr, int32_t fd, uint64_t buf, uint64_t len, int64_t off);
/* A k_call_wait whose args[ms_arg] is a timeout in ms (<0: none). The monitor ends its wait
 * early when the run pauses (EINTR): it is made again for what is left, unless a signal for
 * this thread came meanwhile, as Linux would interrupt it only for a signal. */
long k_call_wait_ms(uint32_t nr, uint64_t *args, unsigned nargs, unsigned ms_arg);
/* A request that waits (PARK, SLEEP): served by this vCPU's own thread, with the big kernel lock
 * released meanwhile so that the other threads go on. */
long k_call_own(uint32_t nr, const uint64_t *args, unsigned nargs);
/* The same, the kernel's lock held throughout: no other thread changes the kernel's state
 * meanwhile (a fork's copy). */
long k_call_own_locked(uint32_t nr, const uint64_t *args, unsigned nargs);
/* What the monitor waited for since a wait began at TSC tsc_start (steal time steal_start)
 * goes into idle_ns, which the CPU-time clocks subtract. Big kernel lock held. */
void k_account_wait(uint64_t tsc_start, uint64_t steal_start);
int k_call_async(uint32_t nr, const uint64_t *args, unsigned nargs);
long k_call_rw(uint32_t nr, int32_t fd, uint64_t buf, uint64_t len, int64_t off);
long k_call_path(uint32_t nr, const struct sbx_path *p);
/* A kernel buffer's guest-physical address: identity below SBX_USER_ADDR, translated on this
 * vCPU's stack (its window). What a k_call pointer argument must be given as. */
uint64_t k_kaddr(uint64_t p);
void __attribute__((noreturn)) k_exit(uint32_t status);
/* One exit to the monitor's vCPU thread (it also serves the ring). */
void k_doorbell(void);

/* patch.c: a `syscall` that trapped, at the site f->rcx returns to: rewritten, when its bytes
 * have a known form, so that later calls there enter the kernel without a trap (f->rcx may be
 * moved to the record's copy of what followed the `syscall`). */
void k_patch_site(uint64_t nr, struct k_frame *f);
int k_patch_again(uint64_t site);
void k_patch_note_level(void); /* in the kernel's own context, at the point */
/* Where code saved at rip goes on: inside a site patched since (by another thread), the place
 * in its record that does the same; else rip. */
uint64_t k_patch_moved(uint64_t rip);
void k_cpuid(uint32_t leaf, uint32_t sub, uint32_t out[4]);
/* This vCPU is about to let the kernel lock go and return to the program at rip. */
void k_patch_returning(uint64_t rip);

/* lib.c */
void *k_memset(void *d, int c, size_t n);
void *k_memcpy(void *d, const void *s, size_t n);
size_t k_strlen(const char *s);
int k_streq(const char *a, const char *b);

/* vma.c: the program's mappings, and the checks of every user buffer against them. */
enum k_vma_kind {
	K_VMA_ELF = SBX_VMA_ELF,
	K_VMA_VDSO = SBX_VMA_VDSO,
	K_VMA_HEAP = SBX_VMA_HEAP,
	K_VMA_STACK = SBX_VMA_STACK,
	K_VMA_ANON = SBX_VMA_ANON,
	K_VMA_FILE = SBX_VMA_FILE,
	K_VMA_SHARED = SBX_VMA_SHARED
};
/* The monitor reads the table as struct sbx_vma (the boot page's vma_table, 1.4). */
struct k_vma {
	uint64_t start, end; /* page aligned, start < end */
	uint8_t prot;	     /* SBX_PROT_*: as mmap and mprotect set it */
	/* SBX_PROT_* the page tables give these pages: a buffer is writable only if both say
	 * so, since the kernel must never fault on a pointer it was given. The memory syscalls
	 * keep the page tables following `prot` (pt.c), so the two differ only where the
	 * monitor's initial tables were wider (the stack). */
	uint8_t ptprot;
	uint8_t kind;  /* enum k_vma_kind */
	uint8_t flags; /* K_VMA_LAZY */
	uint8_t pad[4];
};
#define K_VMA_LAZY SBX_VMA_F_LAZY
_Static_assert(sizeof(struct k_vma) == sizeof(struct sbx_vma) &&
		   __builtin_offsetof(struct k_vma, kind) ==
		       __builtin_offsetof(struct sbx_vma, kind),
	       "the table is the ABI's struct sbx_vma");
/* Is the memory of v its own pages from the allocator (mmap), or the same guest-physical
 * addresses (the image, heap and stack)? */
static inline int k_vma_paged(const struct k_vma *v)
{
	return v->kind == K_VMA_ANON || v->kind == K_VMA_FILE;
}
#define K_READ SBX_PROT_READ   /* a buffer the kernel or the monitor reads */
#define K_WRITE SBX_PROT_WRITE /* one they write (writable pages are readable too) */
/* Bytes of [p, p+n) from p on, up to the first one `need` may not touch: 0 when p itself is
 * bad. A few compares when p is in the mapping of the previous lookup. */
uint64_t k_user_span(uint64_t p, uint64_t n, unsigned need);
/* All of [p, p+n) may be accessed as `need` says (n == 0 always may). */
int k_user_ok(uint64_t p, uint64_t n, unsigned need);
/* Length of a readable user string, or -EFAULT / -ENAMETOOLONG. */
long k_user_strlen(uint64_t p, uint64_t max);
/* 0, or -EFAULT with nothing copied. */
long k_copy_from_user(void *dst, uint64_t src, uint64_t n);
long k_copy_to_user(uint64_t dst, const void *src, uint64_t n);

/* (Re)builds the table from the boot page's layout; done at first use. */
void k_vma_reset(volatile struct sbx_bootinfo *b);
/* The mapping containing addr, or NULL. Valid until the table next changes. */
const struct k_vma *k_vma_find(uint64_t addr);
/* Start of the first mapping at or above addr (UINT64_MAX if none). */
uint64_t k_vma_next(uint64_t addr);
/* Nothing is mapped in [start, end). */
int k_vma_free(uint64_t start, uint64_t end);
/* Highest start of a free range of len bytes inside [floor, top), or 0. */
uint64_t k_vma_gap(uint64_t floor, uint64_t top, uint64_t len);
/* Maps [start, end), which must be free. 0 or -ENOMEM (the table is full). */
int k_vma_map(uint64_t start, uint64_t end, unsigned prot, unsigned ptprot, enum k_vma_kind kind,
	      unsigned flags);
/* Unmaps whatever is mapped in [start, end), releasing the heap's memory (k_mem_release; an
 * mmap'ed range's pages go when the page tables follow). 0 or -ENOMEM (a split would not
 * fit), with nothing changed. */
int k_vma_unmap(uint64_t start, uint64_t end);
/* Sets the protection of [start, end), all of which must be mapped: 0, or -ENOMEM with nothing
 * changed (a hole, or the table is full). */
int k_vma_protect(uint64_t start, uint64_t end, unsigned prot);
/* Releases the heap's memory inside [start, end), which must all be mapped (MADV_DONTNEED;
 * an mmap'ed range's pages are zeroed by k_pt_discard): 0 or -ENOMEM. */
int k_vma_discard(uint64_t start, uint64_t end);

/* release.c: gives [start, end) back (zeroed, or to the host), its page tables unchanged
 * (writable: whether they let the kernel write it); the caller makes them follow the table of
 * mappings again. */
void k_mem_release(uint64_t start, uint64_t end, int writable);

/* walk.c: reading the page tables (the kernel reaches them, and every RAM page, through its map
 * of RAM at SBX_PHYSMAP_VA, once pt.c has built it; before that VA == GPA everywhere). */
extern int k_physmap_on;
static inline void *k_phys(uint64_t gpa)
{
	return (void *)((k_physmap_on ? SBX_PHYSMAP_VA : 0) + gpa);
}
/* The entry mapping va (a 4 KiB, 2 MiB or 1 GiB leaf: *size says), present or keeping its page
 * (SBX_PTE_KEEP); NULL if there is none. */
uint64_t *k_pt_leaf(uint64_t va, uint64_t *size);
/* Bytes of [va, va + len) that are physically contiguous from va (0: va has no page), and the
 * guest-physical address of va in *gpa: what a ring request may carry. */
uint64_t k_gpa_run(uint64_t va, uint64_t len, uint64_t *gpa);
/* The allocator's pages of the mmap'ed range [va, va + len) (page aligned) moved, bytes and
 * all, onto one run of RAM: for a buffer the monitor addresses as one guest-physical block.
 * 0, -ENOMEM (no such run), or -EINVAL (a page of the range is not the allocator's). */
int k_pt_make_run(uint64_t va, uint64_t len);

/* phys.c: the RAM pages nobody else owns (not the kernel's, the image's, the heap's or the
 * stack's), handed out for mmap'ed memory and page tables. A free page reads as zero. */
void k_frames_init(uint64_t bitmap_gpa, uint64_t npages);
void k_frames_add(uint64_t gpa, uint64_t n); /* at init: zero pages nobody owns */
uint64_t k_frame_alloc(void);		     /* a zero page's address, or 0 */
/* Gives n pages from gpa back; `zeroed` when they already read as zero. */
void k_frames_free(uint64_t gpa, uint64_t n, int zeroed);
/* Takes [gpa, gpa + n pages) if all of it is free (the heap growing): 0 or -ENOMEM. */
int k_frames_claim(uint64_t gpa, uint64_t n);
/* [gpa, gpa + n pages) reads as zero again (given to the host when large), staying taken. */
void k_frames_zero(uint64_t gpa, uint64_t n);
uint64_t k_frames_nfree(void);
/* n free pages in a row, taken: the first one's address, or 0 when RAM has no such run. */
uint64_t k_frames_run(uint64_t n);

/* pt.c: the page tables, kept following the table of mappings. */
/* [start, end) (page aligned) gets protection prot (0: not present). 0, or -ENOMEM when a
 * 2 MiB page had to be split and no page-table page was left (or the address is outside the
 * tables): that region keeps its old entries, the rest is done. */
int k_pt_set(uint64_t start, uint64_t end, unsigned prot);
/* [start, end) as the table of mappings says: each mapping's protection, nothing elsewhere. */
int k_pt_follow(uint64_t start, uint64_t end);
/* Page-table pages left for splits; one call needs at most two per range it changes. */
unsigned k_pt_free_pages(void);
/* Maps [va, va + len) onto [gpa, gpa + len) with protection prot (0: not present, the page
 * kept), replacing what the page tables had there (a page of the allocator there is given
 * back). Page aligned; the pages are the caller's: they are never given to the allocator.
 * 0, or -ENOMEM when a page-table page was missing (the range then partly mapped). */
int k_pt_map(uint64_t va, uint64_t gpa, uint64_t len, unsigned prot);
/* RAM pages [start, end) would need under protection prot, page tables included: what
 * mmap and mprotect check is free before changing anything. */
uint64_t k_pt_need(uint64_t start, uint64_t end, unsigned prot);
/* Moves the pages of [from, from + len) to [to, to + len) (mremap): the entries move, the
 * bytes stay where they are. 0, or -ENOMEM with nothing moved. */
int k_pt_move(uint64_t from, uint64_t to, uint64_t len);
/* The allocator's pages of [start, end) read as zero again (MADV_DONTNEED): staying mapped,
 * or given back where the mapping takes its pages on first touch. */
void k_pt_discard(uint64_t start, uint64_t end);
/* A mapping with pages on first touch (K_VMA_LAZY): the page of va, when its mapping allows
 * the access `err` describes (a #PF error code) and has no page there yet, gets a zero page
 * from the allocator. 1: mapped, retry the access; 0: not such a page (the fault is the
 * program's); -ENOMEM: RAM is used up. Called by the page-fault entry (k_page_fault in
 * entry.S), whoever touched the page, and by k_gpa_run for the monitor's I/O. */
int k_pt_fault_in(uint64_t va, uint64_t err);
/* The same for the page-fault entry, given the faulting rip: a fault of the program's own code
 * also asks a polling monitor to back the pages it mapped. */
int k_pf_fault(uint64_t va, uint64_t err, uint64_t rip);
/* Every page of each writable mapping with pages on first touch no larger than max_each, up to
 * budget bytes in all: the fuzz driver's snapshot point takes them, so that runs from it do
 * not fault them in (a page-table change makes a reset slow): an allocator's arenas, not an
 * ASan shadow of terabytes. */
void k_pt_fill_lazy(uint64_t max_each, uint64_t budget);
/* The TLB flush the changes of this syscall owe, if any: once per syscall, at its end. Every
 * syscall passes here, so with nothing owed it is one load and one branch, inline, no call. */
extern int k_pt_flush_owed;
void k_pt_flush(void);
static inline void k_pt_commit(void)
{
	if (__builtin_expect(k_pt_flush_owed != 0, 0))
		k_pt_flush();
}
/* The page-table pages k_pt_map of [va, va + len) onto memory outside the allocator (a
 * shared mapping's window) may take at most. */
unsigned k_pt_phys_need(uint64_t va, uint64_t len);

/* shmap.c: shared file mappings, windows onto host files above RAM (VA == GPA). */
/* mmap(MAP_SHARED) of fd (-1: anonymous memory): the address, -errno, or 0 when the monitor
 * keeps shared anonymous memory private (a repeated run, or no window left for /dev/zero):
 * the caller then makes private anonymous memory. */
long k_shmap_mmap(uint64_t len, unsigned prot, uint64_t flags, int32_t fd, int64_t off);
/* After [start, end) was unmapped: windows with nothing mapped left are given back. */
void k_shmap_unmapped(uint64_t start, uint64_t end);
/* Is addr inside a window (memory other processes may share)? */
int k_shmap_holds(uint64_t addr);
/* 0, or -EACCES when prot adds PROT_WRITE to a window of a file not open for writing. */
long k_shmap_protect_ok(uint64_t start, uint64_t end, unsigned prot);
long k_sys_msync(struct k_frame *f);

/* The syscall handlers, grouped by file. */
long k_sys_brk(struct k_frame *f);
/* Every syscall but mmap (9) forgets the file mapping mem.c remembers for the next segment:
 * a load and a branch, no store (a reset need not put a page back for it). */
extern int k_lastmap_valid;
static inline void k_mem_syscall(uint64_t nr)
{
	if (__builtin_expect(k_lastmap_valid, 0) && nr != 9)
		k_lastmap_valid = 0;
}
long k_sys_mmap(struct k_frame *f);
long k_sys_munmap(struct k_frame *f);
long k_sys_mprotect(struct k_frame *f);
long k_sys_pkey_mprotect(struct k_frame *f);
long k_sys_pkey_alloc(struct k_frame *f);
long k_sys_pkey_free(struct k_frame *f);
long k_sys_mremap(struct k_frame *f);
long k_sys_madvise(struct k_frame *f);

long k_sys_clock_gettime(struct k_frame *f);
long k_sys_clock_getres(struct k_frame *f);
long k_sys_clock_settime(struct k_frame *f);
long k_sys_settimeofday(struct k_frame *f);
long k_sys_gettimeofday(struct k_frame *f);
long k_sys_time(struct k_frame *f);
long k_sys_nanosleep(struct k_frame *f);
long k_sys_clock_nanosleep(struct k_frame *f);
int64_t k_now_ns(int realtime);
long k_sys_getitimer(struct k_frame *f);
long k_sys_setitimer(struct k_frame *f);
long k_sys_alarm(struct k_frame *f);
/* Is the process's ITIMER_REAL armed (one exit); disarm it if this image armed it. */
int k_itimer_armed(void);
void k_itimer_disarm(void);

/* sched.c */
long k_sys_getpriority(struct k_frame *f);
long k_sys_setpriority(struct k_frame *f);
long k_sys_ioprio_get(struct k_frame *f);
long k_sys_ioprio_set(struct k_frame *f);
long k_sys_sched_getscheduler(struct k_frame *f);
long k_sys_sched_getparam(struct k_frame *f);
long k_sys_sched_setscheduler(struct k_frame *f);
long k_sys_sched_setparam(struct k_frame *f);
long k_sys_sched_get_priority_max(struct k_frame *f);
long k_sys_sched_get_priority_min(struct k_frame *f);
long k_sys_sched_rr_get_interval(struct k_frame *f);
long k_sys_sched_setaffinity(struct k_frame *f);
long k_sys_getcpu(struct k_frame *f);

long k_sys_read(struct k_frame *f);
long k_sys_write(struct k_frame *f);
long k_sys_readv(struct k_frame *f);
long k_sys_writev(struct k_frame *f);
long k_sys_pread64(struct k_frame *f);
long k_sys_pwrite64(struct k_frame *f);
long k_sys_open(struct k_frame *f);
long k_sys_openat(struct k_frame *f);
long k_sys_creat(struct k_frame *f);
long k_sys_close(struct k_frame *f);
long k_sys_close_range(struct k_frame *f);
long k_sys_stat(struct k_frame *f);
long k_sys_lstat(struct k_frame *f);
long k_sys_fstat(struct k_frame *f);
long k_sys_xattr(struct k_frame *f);
long k_sys_lxattr(struct k_frame *f);
long k_sys_fxattr(struct k_frame *f);
long k_sys_newfstatat(struct k_frame *f);
long k_sys_statx(struct k_frame *f);
long k_sys_lseek(struct k_frame *f);
long k_sys_getdents64(struct k_frame *f);
long k_sys_readlink(struct k_frame *f);
long k_sys_readlinkat(struct k_frame *f);
long k_sys_getcwd(struct k_frame *f);
long k_sys_chdir(struct k_frame *f);
long k_sys_fchdir(struct k_frame *f);
long k_sys_access(struct k_frame *f);
long k_sys_faccessat(struct k_frame *f);
long k_sys_mkdir(struct k_frame *f);
long k_sys_mkdirat(struct k_frame *f);
long k_sys_mknod(struct k_frame *f);
long k_sys_mknodat(struct k_frame *f);
long k_sys_inotify_init(struct k_frame *f);
long k_sys_inotify_init1(struct k_frame *f);
long k_sys_inotify_add_watch(struct k_frame *f);
long k_sys_inotify_rm_watch(struct k_frame *f);
long k_sys_unlink(struct k_frame *f);
long k_sys_rmdir(struct k_frame *f);
long k_sys_unlinkat(struct k_frame *f);
long k_sys_rename(struct k_frame *f);
long k_sys_renameat(struct k_frame *f);
long k_sys_renameat2(struct k_frame *f);
long k_sys_ftruncate(struct k_frame *f);
long k_sys_fsync(struct k_frame *f);
/* fs.c: a transfer of a vector the kernel copied (READV, WRITEV; off: SBX_RW_SOCK|flags or 0),
 * and a write's EPIPE turned into SIGPIPE for the writer. */
long k_rwv_checked(uint32_t nr, int32_t fd, struct sbx_iovec *v, uint64_t cnt, int64_t off);
long k_epipe(struct k_frame *f, long r);
long k_sys_syncfs(struct k_frame *f);
long k_sys_fallocate(struct k_frame *f);
long k_sys_fdatasync(struct k_frame *f);
long k_sys_preadv(struct k_frame *f);
long k_sys_pwritev(struct k_frame *f);
long k_sys_preadv2(struct k_frame *f);
long k_sys_pwritev2(struct k_frame *f);
long k_sys_dup(struct k_frame *f);
long k_sys_dup2(struct k_frame *f);
long k_sys_dup3(struct k_frame *f);
long k_sys_fcntl(struct k_frame *f);
long k_sys_flock(struct k_frame *f);
long k_sys_ioctl(struct k_frame *f);
long k_sys_getrandom(struct k_frame *f);

long k_sys_exit(struct k_frame *f);
long k_sys_exit_thread(struct k_frame *f);
/* thread.c: where PR_SET_NAME writes (set) or PR_GET_NAME reads the calling thread's name: the
 * boot page's for the main thread (the process's, which /proc shows), its own for another. */
volatile char *k_thread_comm(int set);
long k_sys_getpid(struct k_frame *f);
long k_sys_getppid(struct k_frame *f);
long k_sys_getuid(struct k_frame *f);
long k_sys_setuid(struct k_frame *f);
long k_sys_setgid(struct k_frame *f);
long k_sys_setreuid(struct k_frame *f);
long k_sys_setregid(struct k_frame *f);
long k_sys_setresuid(struct k_frame *f);
long k_sys_setresgid(struct k_frame *f);
long k_sys_setfsuid(struct k_frame *f);
long k_sys_setfsgid(struct k_frame *f);
long k_sys_getresuid(struct k_frame *f);
long k_sys_getresgid(struct k_frame *f);
long k_sys_getgid(struct k_frame *f);
long k_sys_uname(struct k_frame *f);
long k_sys_personality(struct k_frame *f);
/* fsmeta.c: a struct rusage at addr with that CPU time and RAM. */
long k_rusage_put(uint64_t addr, int64_t cpu_ns, int64_t maxrss_kib);
long k_sys_sysinfo(struct k_frame *f);
long k_sys_arch_prctl(struct k_frame *f);
long k_sys_set_tid_address(struct k_frame *f);
long k_sys_zero(struct k_frame *f);
long k_sys_rseq(struct k_frame *f);
long k_sys_membarrier(struct k_frame *f);
long k_sys_mlock(struct k_frame *f);
long k_sys_munlock(struct k_frame *f);
long k_sys_mlock2(struct k_frame *f);
long k_sys_mlockall(struct k_frame *f);
long k_sys_munlockall(struct k_frame *f);
long k_sys_socket(struct k_frame *f);
long k_sys_notsock(struct k_frame *f);
long k_sys_bind(struct k_frame *f);
long k_sys_connect(struct k_frame *f);
long k_sys_listen(struct k_frame *f);
long k_sys_accept(struct k_frame *f);
long k_sys_accept4(struct k_frame *f);
long k_sys_peername(struct k_frame *f);
long k_sys_socketpair(struct k_frame *f);
long k_sys_sendto(struct k_frame *f);
long k_sys_recvfrom(struct k_frame *f);
long k_sys_sendmsg(struct k_frame *f);
long k_sys_recvmsg(struct k_frame *f);
long k_sys_shutdown(struct k_frame *f);
long k_sys_getsockopt(struct k_frame *f);
long k_sys_setsockopt(struct k_frame *f);
long k_sys_sockname(struct k_frame *f);
/* event.c: a pair of descriptors (first | second << 32, or -errno) into the program's int[2]
 * at p, checked writable before the call made them: 0 or -errno. */
long k_put_fd_pair(uint64_t p, long r);
long k_sys_prlimit64(struct k_frame *f);
long k_sys_getrlimit(struct k_frame *f);
long k_sys_setrlimit(struct k_frame *f);
long k_sys_rt_sigaction(struct k_frame *f);
long k_sys_rt_sigprocmask(struct k_frame *f);
long k_sys_rt_sigpending(struct k_frame *f);
long k_pid_ok(uint64_t pid);
/* fs.c: struct stat as x86-64 Linux lays it out, and a stat into the kernel's stack (path 0
 * with AT_EMPTY_PATH: the handle dirfd's). */
struct k_stat {
	uint64_t dev, ino, nlink;
	uint32_t mode, uid, gid, pad0;
	uint64_t rdev;
	int64_t size, blksize, blocks;
	int64_t atime, atime_ns, mtime, mtime_ns, ctime, ctime_ns;
	int64_t unused[3];
};
_Static_assert(sizeof(struct k_stat) == 144, "struct stat");
long k_stat_kernel(int32_t dirfd, uint64_t path, uint32_t flags, struct k_stat *st);
long k_sys_fchown(struct k_frame *f);
long k_sys_setgroups(struct k_frame *f);
long k_sys_lchown(struct k_frame *f);
/* thread.c: the calling thread's affinity into the boot page, for the image execve makes. */
void k_thread_affinity_to_exec(void);
long k_sys_capget(struct k_frame *f);
long k_sys_capset(struct k_frame *f);
long k_sys_sigaltstack(struct k_frame *f);
long k_sys_kill(struct k_frame *f);
long k_sys_tgkill(struct k_frame *f);
long k_sys_tkill(struct k_frame *f);
long k_sys_sched_getaffinity(struct k_frame *f);
long k_sys_futex(struct k_frame *f);
long k_sys_prctl(struct k_frame *f);
long k_sys_umask(struct k_frame *f);
uint32_t k_cur_umask(void); /* for the calls that create files */

long k_sys_symlink(struct k_frame *f);
long k_sys_symlinkat(struct k_frame *f);
long k_sys_link(struct k_frame *f);
long k_sys_linkat(struct k_frame *f);
long k_sys_chmod(struct k_frame *f);
long k_sys_fchmod(struct k_frame *f);
long k_sys_fchmodat(struct k_frame *f);
long k_sys_chown(struct k_frame *f);
long k_sys_fchownat(struct k_frame *f);
long k_sys_utimensat(struct k_frame *f);
long k_sys_utimes(struct k_frame *f);
long k_sys_futimesat(struct k_frame *f);
long k_sys_utime(struct k_frame *f);
long k_sys_statfs(struct k_frame *f);
long k_sys_fstatfs(struct k_frame *f);
long k_sys_truncate(struct k_frame *f);
long k_sys_poll(struct k_frame *f);
long k_sys_ppoll(struct k_frame *f);
long k_sys_select(struct k_frame *f);
long k_sys_pselect6(struct k_frame *f);
long k_sys_sendfile(struct k_frame *f);
long k_sys_copy_file_range(struct k_frame *f);
long k_copy_range(int32_t out, int32_t in, const int64_t *in_off, const int64_t *out_off,
		  uint64_t count);
/* ppoll's and epoll_pwait2's timespec as ms (-1 for NULL): 0 or -EFAULT, -EINVAL. */
long k_ts_to_ms(uint64_t p, int64_t *ms);

/* event.c: pipes, eventfds and epoll, host objects behind handles */
long k_sys_pipe(struct k_frame *f);
long k_sys_pipe2(struct k_frame *f);
long k_sys_eventfd(struct k_frame *f);
long k_sys_eventfd2(struct k_frame *f);
long k_sys_memfd_create(struct k_frame *f);
long k_sys_timer_create(struct k_frame *f);
long k_sys_timer_settime(struct k_frame *f);
long k_sys_timer_gettime(struct k_frame *f);
long k_sys_timer_getoverrun(struct k_frame *f);
long k_sys_timer_delete(struct k_frame *f);
/* time.c: a fork's child has none of its parent's POSIX timers. */
void k_ptimers_forget(void);
/* event.c: a struct itimerspec's two halves to ns (EINVAL as Linux), and ns back to one. */
struct sbx_itimer;
long k_itimerspec_in(uint64_t uaddr, struct sbx_itimer *t);
long k_itimerspec_out(uint64_t uaddr, const struct sbx_itimer *t);
long k_sys_timerfd_create(struct k_frame *f);
long k_sys_timerfd_settime(struct k_frame *f);
long k_sys_timerfd_gettime(struct k_frame *f);
long k_sys_epoll_create(struct k_frame *f);
long k_sys_epoll_create1(struct k_frame *f);
long k_sys_epoll_ctl(struct k_frame *f);
long k_sys_epoll_wait(struct k_frame *f);
long k_sys_epoll_pwait(struct k_frame *f);
long k_sys_epoll_pwait2(struct k_frame *f);
long k_sys_getgroups(struct k_frame *f);
long k_sys_getpgrp(struct k_frame *f);
long k_sys_getrusage(struct k_frame *f);
long k_sys_times(struct k_frame *f);

#endif
