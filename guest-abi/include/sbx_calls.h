/* The hypercalls, one line each: the one place a call is described. sbx_abi.h makes the enum
 * of call numbers from it; the monitor (monitor/calls/dispatch.c) makes its dispatch table, the
 * names the audit log and --strace print, and what it knows of each call's effects. A call
 * number never changes meaning; a new call gets a new number and bumps SBX_ABI_MINOR.
 *
 * X(NAME, number, name, monitor handler, flags, arguments) */
#ifndef SBX_ABI_CALLS_H
#define SBX_ABI_CALLS_H

/* Flags: what the monitor must know of a call without running it. */
#define SBX_CF_FS 1	     /* may change a writable mount (a reset puts --tmp back) */
#define SBX_CF_FS_HANDLE 2   /* ... when its handle is a file of a mount (not stdio) */
#define SBX_CF_FS_OPEN 4     /* ... when it opens for writing, creating or truncating */
#define SBX_CF_WAIT 8	     /* all its time is waiting (not the guest's CPU time) */
#define SBX_CF_WAIT_STDIO 16 /* on stdio, its time off the CPU is waiting */
/* Never waits on the host, or (READ, WRITE and their vectored forms) only on a descriptor that
 * is not ready now: a poller serving several rings may serve it (the others go to the vCPU's
 * own thread, which may wait without keeping other processes' requests waiting). */
#define SBX_CF_QUICK 32

/* clang-format off */
#define SBX_CALLS(X)                                                                               \
	X(EXIT, 1, exit, hc_exit, 0,		/* a0: status (0..255) or 0x100|signal */)         \
	X(READ, 2, read, sbx_hc_read, SBX_CF_WAIT_STDIO | SBX_CF_QUICK, /* struct sbx_rw (off ignored) */) \
	X(WRITE, 3, write, sbx_hc_write, SBX_CF_FS_HANDLE | SBX_CF_WAIT_STDIO | SBX_CF_QUICK, /* sbx_rw */) \
	X(PREAD, 4, pread, sbx_hc_read, SBX_CF_QUICK, /* struct sbx_rw */)                         \
	X(PWRITE, 5, pwrite, sbx_hc_write, SBX_CF_FS_HANDLE | SBX_CF_QUICK, /* struct sbx_rw */)   \
	X(READV, 6, readv, sbx_hc_readv, SBX_CF_WAIT_STDIO | SBX_CF_QUICK, /* sbx_rw: buf iovecs, len count */) \
	X(WRITEV, 7, writev, sbx_hc_writev, SBX_CF_FS_HANDLE | SBX_CF_WAIT_STDIO | SBX_CF_QUICK, /* as readv */) \
	X(OPEN, 8, open, sbx_hc_open, SBX_CF_FS_OPEN | SBX_CF_QUICK, /* sbx_path: dirfd, path, flags, mode */) \
	/* CLOSE a0: fd. 1.10: a2 SBX_CLOSE_RANGE | CLOSE_RANGE_CLOEXEC: every open fd from a0 to \
	 * a1 closes (or becomes close-on-exec): close_range. */                                 \
	X(CLOSE, 9, close, sbx_hc_close, SBX_CF_QUICK, )                                           \
	X(FSTAT, 10, fstat, sbx_hc_fstat, SBX_CF_QUICK, /* sbx_path: fd in dirfd, buf -> struct stat */) \
	X(STAT, 11, stat, sbx_hc_stat, SBX_CF_QUICK, /* sbx_path: dirfd, path, flags (AT_*), buf */) \
	X(LSEEK, 12, lseek, sbx_hc_lseek, SBX_CF_QUICK, /* a0: fd, a1: offset, a2: whence */)      \
	X(GETDENTS, 13, getdents, sbx_hc_getdents, SBX_CF_QUICK, /* sbx_rw: fd, buf, len */)       \
	X(READLINK, 14, readlink, sbx_hc_readlink, SBX_CF_QUICK, /* sbx_path: dirfd, path, buf, buf_len */) \
	X(MKDIR, 15, mkdir, sbx_hc_mkdir, SBX_CF_FS | SBX_CF_QUICK, /* sbx_path: dirfd, path, mode */) \
	X(UNLINK, 16, unlink, sbx_hc_unlink, SBX_CF_FS | SBX_CF_QUICK, /* sbx_path: dirfd, path, AT_REMOVEDIR */) \
	X(RENAME, 17, rename, sbx_hc_rename, SBX_CF_FS | SBX_CF_QUICK, /* sbx_path (old) + path2 fields (new) */) \
	X(FTRUNCATE, 18, ftruncate, sbx_hc_ftruncate, SBX_CF_FS | SBX_CF_QUICK, /* a0: fd, a1: length */) \
	X(FSYNC, 19, fsync, sbx_hc_fsync, 0, /* a0: fd */)                                         \
	X(DUP, 20, dup, sbx_hc_dup, SBX_CF_QUICK, /* a0: old, a1: new or -1 for lowest >= a2, a3: cloexec */) \
	X(FCNTL, 21, fcntl, sbx_hc_fcntl, SBX_CF_QUICK, /* a0: fd, a1: F_GETFL/F_SETFL/..., a2: arg */) \
	X(CHDIR, 22, chdir, sbx_hc_chdir, SBX_CF_QUICK, /* sbx_path: dirfd (fchdir if path_len 0), path */) \
	X(GETCWD, 23, getcwd, sbx_hc_getcwd, SBX_CF_QUICK, /* sbx_rw: buf, len -> bytes with the NUL */) \
	X(ACCESS, 24, access, sbx_hc_access, SBX_CF_QUICK, /* sbx_path: dirfd, path, mode, flags */) \
	X(RANDOM, 25, random, hc_random, SBX_CF_QUICK, /* sbx_rw: buf, len -> bytes */)            \
	X(IOCTL, 26, ioctl, sbx_hc_ioctl, SBX_CF_QUICK, /* a0: fd, a1: request (TCGETS...), a2: buf */) \
	X(TRACE, 27, trace, hc_trace, 0, /* a0: syscall nr, a1: ret, a2: uint64_t args[6] */)      \
	X(DISCARD, 28, discard, hc_discard, SBX_CF_QUICK, /* a0: addr, a1: len: back to zero pages */) \
	X(FDATASYNC, 29, fdatasync, sbx_hc_fsync, 0, /* a0: fd */)                                 \
	X(SLEEP, 30, sleep, hc_sleep, SBX_CF_WAIT, /* a0: ns to sleep (the vCPU in an exit) */)    \
	X(SYMLINK, 31, symlink, sbx_hc_symlink, SBX_CF_FS | SBX_CF_QUICK, /* path: text; dirfd2/path2: link */) \
	X(LINK, 32, link, sbx_hc_link, SBX_CF_FS | SBX_CF_QUICK, /* old dirfd/path, new dirfd2/path2, AT_* */) \
	X(CHMOD, 33, chmod, sbx_hc_chmod, SBX_CF_FS | SBX_CF_QUICK, /* dirfd/path (len 0: the handle), mode */) \
	X(UTIMENS, 34, utimens, sbx_hc_utimens, SBX_CF_FS | SBX_CF_QUICK, /* dirfd/path, buf: 2 timespecs */) \
	X(STATFS, 35, statfs, sbx_hc_statfs, SBX_CF_QUICK, /* dirfd/path (len 0: the handle), buf */) \
	X(POLL, 36, poll, sbx_hc_poll, SBX_CF_WAIT, /* a0: pollfds, a1: count, a2: ms (<0) */)     \
	X(POPULATE, 37, populate, hc_populate, SBX_CF_QUICK, /* a0: addr, a1: len: a hint, back them now */) \
	/* 1.3: RLIMIT_NOFILE, kept and enforced where fd numbers are handed out. a0: 1 to set   \
	 * (0: only read), a1: soft, a2: hard, a3: 0 or where uint64_t[2] gets the old limits    \
	 * (on success). -EINVAL for soft > hard, -EPERM for a hard limit above the current one  \
	 * without privilege or above the sandbox's own (--max-files, the handle table). */      \
	X(NOFILE, 38, nofile, sbx_hc_nofile, SBX_CF_QUICK, )                                       \
	/* 1.5: shared file mappings (docs/architecture.md, "Shared file mappings"). MMAP_SHARED   \
	 * a0: fd, a1: offset, a2: length, a3: SBX_PROT_*: the guest-physical address of a new    \
	 * window onto the file (above RAM), 0 for /dev/zero (anonymous memory), or -errno.       \
	 * 1.12: a0 -1 (or /dev/zero's fd): shared anonymous memory, a window onto a memfd that   \
	 * a fork's child shares (ENOMEM when there is no room: the kernel makes it private).     \
	 * MUNMAP_SHARED a0: that address. MSYNC a0: address, a1: length (inside one mapping). */ \
	X(MMAP_SHARED, 39, mmap_shared, sbx_hc_mmap_shared, SBX_CF_FS, )                           \
	X(MUNMAP_SHARED, 40, munmap_shared, sbx_hc_munmap_shared, 0, )                             \
	X(MSYNC, 41, msync, sbx_hc_msync, 0, )                                                     \
	/* 1.7: threads (docs/architecture.md, "Threads"). THREAD_START a0: vCPU index (1..      \
	 * max_threads-1, never used before), a1: its page-table root, a2: rip, a3: rsp (both in  \
	 * its window, where the kernel starts it), a4: guest-physical address of its ring. PARK  \
	 * a0: guest-physical address of a 4-byte-aligned u32, a1: the value it holds, a2: ns to  \
	 * wait at most (~0: no end): returns once the word differs, UNPARK names it, the time is  \
	 * up, or the run pauses or ends (0; the kernel looks at its word again). UNPARK a0: that  \
	 * address. Both with SBX_SLOT_OWN for PARK. 1.13: THREAD_START a5: the thread's tid   \
	 * (bootinfo tid_next), and it returns the next; PARK a3: the tid of a thread that just   \
	 * ended on this vCPU (0: none), which the monitor forgets. */                            \
	X(THREAD_START, 42, thread_start, sbx_hc_thread_start, 0, )                                \
	X(PARK, 43, park, sbx_hc_park, SBX_CF_WAIT, )                                              \
	X(UNPARK, 44, unpark, sbx_hc_unpark, 0, )                                                  \
	/* 1.7: every other vCPU drops its translations before it runs the program again (after  \
	 * a page-table change that removed or narrowed some, with SBX_BOOT_SHOOTDOWN). */       \
	X(TLB_SHOOTDOWN, 45, tlb_shootdown, sbx_hc_tlb_shootdown, 0, )                             \
	/* 1.8: pipes, eventfds and epoll, host objects behind handles (docs/architecture.md,   \
	 * "Pipes, eventfds and epoll"). PIPE a0: O_CLOEXEC|O_NONBLOCK|O_DIRECT: read end |     \
	 * write end << 32. EVENTFD a0: initial count, a1: EFD_*: the handle. EPOLL_CREATE a0:   \
	 * EPOLL_CLOEXEC. EPOLL_CTL a0: epoll handle, a1: op, a2: handle, a3: events, a4: data.  \
	 * EPOLL_WAIT a0: epoll handle, a1: guest-physical address of struct epoll_event[a2]     \
	 * (1..SBX_EPOLL_BATCH), a3: ms (<0: no end): the count written. */                     \
	X(PIPE, 46, pipe, sbx_hc_pipe, SBX_CF_QUICK, )                                             \
	X(EVENTFD, 47, eventfd, sbx_hc_eventfd, SBX_CF_QUICK, )                                    \
	X(EPOLL_CREATE, 48, epoll_create, sbx_hc_epoll_create, SBX_CF_QUICK, )                     \
	X(EPOLL_CTL, 49, epoll_ctl, sbx_hc_epoll_ctl, SBX_CF_QUICK, )                              \
	X(EPOLL_WAIT, 50, epoll_wait, sbx_hc_epoll_wait, SBX_CF_WAIT, )                            \
	/* 1.8: KICK a0: a vCPU index. Its thread has a signal to handle: if the vCPU runs the   \
	 * program's code, the monitor stops it there and enters the kernel's upcall entry with a \
	 * struct sbx_upcall of signo 0 holding its registers (docs/architecture.md, "Threads"). */ \
	X(KICK, 51, kick, sbx_hc_kick, 0, )                                                        \
	/* 1.9: processes, each a VM of its own (docs/architecture.md, "Processes"). All four are \
	 * served by the calling vCPU's own thread (SBX_SLOT_OWN).                                \
	 * FORK a0: clone flags (CLONE_VFORK: returns once the child has exec'd or ended). The    \
	 * child is a copy of the caller stopped in this call: it returns 0, the caller the pid.  \
	 * The caller may be any thread's vCPU (1.10); the child's vCPU 0 then goes on with that  \
	 * vCPU's page tables and ring until it execs. 1.10: a1, a pid: no copy, only the wait of \
	 * CLONE_VFORK for that child (a threaded caller copies with its kernel's lock held, and  \
	 * waits without it).                                                                     \
	 * EXECVE a0: dirfd, a1: path, a2: argv, a3: envp (the program's virtual addresses),      \
	 * a4: AT_* flags, a5: the umask. Never returns on success: the vCPU starts the new image. \
	 * 1.15: a4 | SBX_EXECVE_CHECK from any vCPU: the checks only; | SBX_EXECVE_FINAL: the   \
	 * other threads have ended (the kernel hands the call to vCPU 0 first).                 \
	 * WAIT a0: pid as wait4 takes it, a1: WNOHANG | WNOWAIT: (status << 32) | pid, 0 for     \
	 * none yet (WNOHANG), -ECHILD, or -EINTR when a signal came. 1.11: a2: 0, or the          \
	 * guest-physical address of a struct sbx_rusage for the child's usage. 1.15: a3 (and     \
	 * FORK's a2 with a1): 0, or the guest-physical address of a 4-byte word that a signal for \
	 * the waiting thread sets: non-zero ends the wait with -EINTR.                            \
	 * PKILL a0: pid as kill takes it (not the caller's), a1: signal (0: a check).            \
	 * PGRP a0: 0 setpgid(a1, a2), 1 getpgid(a1), 2 setsid(), 3 getsid(a1). 1.21: 4, the   \
	 * caller takes the default action of stop signal a1 (SBX_PGRP_STOP): every thread of    \
	 * its process stops until a SIGCONT, and the call returns once it goes on. WAIT's a1    \
	 * may hold WUNTRACED (2): a stopped child too, status (signal << 8) | 0x7f; WCONTINUED  \
	 * (8): a continued one, status 0xffff; SBX_WAIT_NOEXIT: no ended one (waitid without    \
	 * WEXITED). Each stop or continue is told once, unless WNOWAIT.                          \
	 * 1.11: ITIMER a0: guest-physical address of a struct sbx_itimer, a1: 1 to set it, 0 to  \
	 * read. The process's real-time timer (alarm, setitimer): kept across execve, not       \
	 * inherited by fork; its SIGALRM comes like another process's kill.                     \
	 * 1.11: FALLOCATE a0: fd, a1: mode (FALLOC_FL_*), a2: offset, a3: length.               \
	 * 1.11: SOCKETPAIR a0: SOCK_STREAM|DGRAM|SEQPACKET with SOCK_NONBLOCK, SOCK_CLOEXEC: an \
	 * AF_UNIX pair, first | second << 32. SOCKOP a0: SBX_SOCKOP_*, a1: the handle. */       \
	X(FORK, 52, fork, sbx_hc_proc, 0, )                                                        \
	X(EXECVE, 53, execve, sbx_hc_execve, 0, )                                                  \
	X(WAIT, 54, wait, sbx_hc_proc, SBX_CF_WAIT, )                                              \
	X(PKILL, 55, pkill, sbx_hc_proc, 0, )                                                      \
	X(PGRP, 56, pgrp, sbx_hc_proc, 0, )                                                        \
	X(ITIMER, 57, itimer, sbx_hc_proc, SBX_CF_QUICK, )                                         \
	X(FALLOCATE, 58, fallocate, sbx_hc_fallocate, SBX_CF_FS_HANDLE | SBX_CF_QUICK, )           \
	X(SOCKETPAIR, 59, socketpair, sbx_hc_socketpair, SBX_CF_QUICK, )                           \
	X(SOCKOP, 60, sockop, sbx_hc_sockop, 0, )                                                  \
	/* 1.12: FUTEX, a futex on a shared window (processes share it): a0: FUTEX_WAIT,          \
	 * _WAKE, _WAIT_BITSET, _WAKE_BITSET, _REQUEUE, _CMP_REQUEUE or _WAKE_OP, a1: the word's  \
	 * address, a2: val, a3: a wait's ns to wait (~0: no end) or val2, a4: uaddr2, a5: val3.  \
	 * A wait is served by the vCPU's own thread (SBX_SLOT_OWN) and ends early with -EINTR    \
	 * (a signal, a pause); the host's futex does the rest, keyed by the file's page. */      \
	X(FUTEX, 61, futex, sbx_hc_futex, SBX_CF_WAIT, )                                           \
	/* 1.12: FLOCK a0: fd, a1: LOCK_SH, LOCK_EX or LOCK_UN, with LOCK_NB. Without LOCK_NB it   \
	 * waits (SBX_SLOT_OWN), as FCNTL's F_SETLKW and F_OFD_SETLKW do since 1.12, and ends     \
	 * early with -EINTR (a signal, a pause). FCNTL's record locks are the process's own,     \
	 * between the sandbox's processes too (monitor/calls/locks.c). */                        \
	X(FLOCK, 62, flock, sbx_hc_flock, SBX_CF_WAIT, )                                           \
	/* 1.13: thread ids from the sandbox's pid space, so that no tid is another process's    \
	 * pid. TID: returns the tid reserved for the process's next thread (bootinfo tid_next),  \
	 * reserving one if there is none. THREAD_RUN a0: guest-physical address of a parked     \
	 * vCPU's run word (UNPARK's a0), a1: its vCPU index, a2: the reserved tid, which the     \
	 * thread now has: sets the word to 1, wakes the vCPU, returns the next reserved tid. */  \
	X(TID, 63, tid, sbx_hc_tid, SBX_CF_QUICK, )                                                \
	X(THREAD_RUN, 64, thread_run, sbx_hc_thread_run, 0, )                                      \
	/* 1.13: TIMERFD, a host timerfd behind a handle. a0 SBX_TIMERFD_CREATE: a1 the clock     \
	 * (REALTIME, MONOTONIC, BOOTTIME), a2 TFD_CLOEXEC|TFD_NONBLOCK: the handle. SETTIME: a1  \
	 * handle, a2 TFD_TIMER_ABSTIME|TFD_TIMER_CANCEL_ON_SET, a3 guest-physical address of a   \
	 * struct sbx_itimer, the new timer in and the old out, a4 and a5 the guest's monotonic   \
	 * and real time now (an absolute time is the guest's). GETTIME: a1, a3: the timer out. */ \
	X(TIMERFD, 65, timerfd, sbx_hc_timerfd, SBX_CF_QUICK, )                                    \
	/* 1.14: PATCH, a syscall site rewritten while the program has other threads (guest-abi/   \
	 * kernel/patch.c): a0 the site's address, a1 its guest-physical address, a2 its new      \
	 * bytes (little-endian), a3 how many (1..8, inside one page), a4 0 or an address inside  \
	 * the site, a5 where a vCPU stopped at a4 goes on. No vCPU runs the program meanwhile.   \
	 * 0, or -EINVAL, -EFAULT. */                                                              \
	X(PATCH, 66, patch, sbx_hc_patch, SBX_CF_QUICK, )                                          \
	/* 1.15: VFORK_EXIT, from a vfork's child ending without an execve while its mappings are \
	 * its parent's (no mmap, munmap, mprotect, mremap, brk or madvise since): what it wrote  \
	 * to the pages the parent maps writable goes to the parent, stopped in its vfork, as     \
	 * the memory they share on Linux. The number of pages, 0 if the parent is not one      \
	 * thread waiting for it (1.27: or a threaded one whose other threads the lend of its   \
	 * RAM holds, SBX_FORK_VFORK_APART). */                                                 \
	X(VFORK_EXIT, 67, vfork_exit, sbx_hc_proc, 0, )                                            \
	/* 1.16: POINT, from a thread at the snapshot point of repeated runs (SBX_BOOT_WARM: the  \
	 * first read of fd 0) in a program that has had threads: 0 go on (the run from the       \
	 * snapshot has begun), -EAGAIN ask again (the monitor pauses every vCPU to take the      \
	 * snapshot with this thread asking), -EINVAL or -ENOSYS: no such point. */                \
	X(POINT, 68, point, hc_point, SBX_CF_WAIT, )                                               \
	/* 1.18: MEMFD, struct sbx_path: path the name (at most 249 bytes), flags MFD_*: a new    \
	 * memfd behind a handle (memfd_create), or -EINVAL (MFD_HUGETLB, a longer name). */      \
	X(MEMFD, 69, memfd, sbx_hc_memfd, SBX_CF_QUICK, )                                          \
	/* 1.19: MKNOD, struct sbx_path: dirfd, path, mode (S_IFIFO, S_IFREG or S_IFSOCK with the \
	 * permission bits, the umask applied): mknodat. Devices: -EPERM. OPEN of a FIFO that     \
	 * waits for its other end (no O_NONBLOCK; a reader with no writer, a writer with no      \
	 * reader) answers -SBX_EOPEN_WAITS and keeps the open for this vCPU; OPEN_WAIT a0: 0     \
	 * waits for the other end, served with SBX_SLOT_OWN or unlocked like a read: the fd, or  \
	 * -EINTR for a signal or a pause (the open is kept), or -SBX_EOPEN_WAITS when no open is \
	 * kept (a restored snapshot: make the open again); a0 1 drops the kept open. */         \
	X(MKNOD, 70, mknod, sbx_hc_mknod, SBX_CF_FS | SBX_CF_QUICK, )                              \
	X(OPEN_WAIT, 71, open_wait, sbx_hc_open_wait, SBX_CF_WAIT, )                               \
	/* 1.19: INOTIFY a0: 0 a new inotify instance behind a handle (a1: IN_CLOEXEC |           \
	 * IN_NONBLOCK), 1 inotify_rm_watch (a1: the handle, a2: the watch). INOTIFY_WATCH,      \
	 * struct sbx_path: dirfd/path the target, flags the mask (IN_*), dirfd2 the instance's   \
	 * handle: inotify_add_watch's watch descriptor. Reads are the host instance's events. */ \
	X(INOTIFY, 72, inotify, sbx_hc_inotify, SBX_CF_QUICK, )                                    \
	X(INOTIFY_WATCH, 73, inotify_watch, sbx_hc_inotify_watch, SBX_CF_QUICK, )                  \
	/* 1.19: SOCKET a0: SOCK_STREAM|DGRAM|SEQPACKET with SOCK_NONBLOCK, SOCK_CLOEXEC: an      \
	 * AF_UNIX socket of its own, for SOCKOP's BIND, CONNECT, LISTEN and ACCEPT. 1.30: the    \
	 * family in a0's bits 32-47 (0 AF_UNIX; AF_INET, AF_INET6: the sandbox's loopback). */  \
	X(SOCKET, 74, socket, sbx_hc_socket, SBX_CF_QUICK, )                                       \
	/* 1.20: SIGNALFD a0: SBX_SIGFD_MAKE (a1: the handle to change or -1 for a new one, a2:    \
	 * the mask, a3: SFD_NONBLOCK | SFD_CLOEXEC, a4: the process's pending signals) -> the    \
	 * handle; SBX_SIGFD_ASK (a1: the handle, a2: kernel address of the u64 mask) -> its      \
	 * O_NONBLOCK; SBX_SIGFD_SYNC (a1: the pending signals): every signalfd of the process   \
	 * made readable, or not, as its mask meets them. A read of one answers -SBX_ESIGNALFD: \
	 * the kernel takes the signals itself. */                                               \
	X(SIGNALFD, 75, signalfd, sbx_hc_signalfd, SBX_CF_QUICK, )                                 \
	/* 1.28: CHOWN, a struct sbx_path as CHMOD's (path_len 0: the handle), flags            \
	 * AT_SYMLINK_NOFOLLOW, mode the uid and buf the gid ((uint32_t)-1: unchanged): made on \
	 * the host, which answers as it answers the user the monitor runs as (root's tar sets  \
	 * its archive's owners; another user's EPERM). Only for another owner than the         \
	 * program's own: the kernel answers the rest. */                                       \
	X(CHOWN, 76, chown, sbx_hc_chown, SBX_CF_FS | SBX_CF_QUICK, )
/* clang-format on */

#endif
