/* Host calls: the hypercall table and its handlers (dispatch.c, hc_*.c), the handle table
 * (fdtable.c), the limits that count what the calls do (limits.c), the audit log (audit.c)
 * and --strace (strace.c). Everything the guest asks of the host goes through here. */
#ifndef SBX_CALLS_H
#define SBX_CALLS_H

#include <stdatomic.h>
#include <netinet/in.h>
#include <sys/un.h>
#include "vm.h"

#define SBX_MAX_FDS 1024
/* The biggest pipe a program may ask for (F_SETPIPE_SZ) and a snapshot keeps: Linux's default
 * pipe-max-size. */
#define SBX_PIPE_MAX (1u << 20)
/* All the pipe buffers one process may grow its pipes to: Linux's pipe-user-pages-soft. */
#define SBX_PIPE_BUDGET (64ull << 20)

/* VDIR: a directory of the policy's tree above mounts; VFILE: a node of the virtual /dev and
 * /proc (vfs.c), its vnode in `vnode`. */
enum sbx_handle_kind { SBX_H_FREE, SBX_H_HOST, SBX_H_VDIR, SBX_H_VFILE };
/* What a SBX_H_HOST handle is: a file of a mount or stdio (found by path or given), or an
 * object the program made, with no path to reopen it by (hc_event.c). */
enum sbx_handle_obj {
	SBX_O_FILE,
	SBX_O_PIPE,
	SBX_O_EVENTFD,
	SBX_O_EPOLL,
	SBX_O_SOCKET,
	SBX_O_TIMERFD,
	SBX_O_MEMFD,
	SBX_O_INOTIFY,
	SBX_O_USOCK,   /* a local socket of socket(): named, listening, accepted */
	SBX_O_PTY,     /* a pseudo-terminal's master (end 0) or slave (end 1): pty.c */
	SBX_O_SIGNALFD /* an eventfd readable while its signals are pending: signalfd.c */
};
/* A local socket's address as the program gave or sees it: sun_path's bytes (len of them,
 * abstract ones starting with 0). */
struct sbx_sun {
	uint32_t len;
	char path[108];
};
struct sbx_memfd;
struct sbx_pty;
struct sbx_sigfd;
#define SBX_IOPT_MAX 32

struct sbx_handle {
	enum sbx_handle_kind kind;
	int fd; /* host fd (SBX_H_HOST) */
	enum sbx_handle_obj obj;
	int cloexec;  /* FD_CLOEXEC as the guest set it (no exec, kept for F_GETFD) */
	int writable; /* opened on a rw mount or stdio */
	int stdio;    /* 0..2: a copy of the monitor's stdin/stdout/stderr; -1 otherwise */
	char *gpath;  /* normalised guest path (NULL for stdio) */
	/* stdio: O_APPEND and O_NONBLOCK as the guest set them. The file description is the
	 * user's own (a shell's, a terminal), so the guest's status flags never reach it. */
	int vflags;	   /* SBX_H_VFILE: the open flags (O_ACCMODE, O_APPEND, O_NONBLOCK) */
	uint64_t vdir_pos; /* SBX_H_VDIR, VFILE directory: next entry index; VFILE file: position */
	int vnode;	   /* SBX_H_VFILE: enum sbx_vnode_type */
	/* SBX_H_VFILE of /proc/PID (or /proc/self): the process it shows, fixed at the open as
	 * Linux's (a forked child reading an inherited /proc/self/status reads its parent). */
	uint32_t vpid;
	/* stdio: whether a read or write of it may block (a pipe, socket or terminal), found at
	 * its first use: 0 not yet known, 1 never (a file, /dev/null), 2 it may, 3 it may (a
	 * terminal). */
	int may_block;
	int clock; /* SBX_O_TIMERFD: its clock */
	/* An object's id in its table (sbx_handle_add), kept by the copies dup and fork make:
	 * which eventfd instance a handle is. SBX_O_EVENTFD: EFD_SEMAPHORE. For snapshots
	 * (persist/objects.c). */
	uint64_t oid;
	int sema;
	/* SBX_O_SOCKET: which end of its pair (both ends share the pair's oid); SBX_O_PTY: 0 the
	 * master, 1 the slave. */
	int end;
	/* SBX_O_SOCKET: this end's shutdown, SBX_SHUT_RD | SBX_SHUT_WR, on every handle of it
	 * (the host keeps it on the socket; a snapshot needs it from here). */
	int shut;
	struct sbx_memfd *memfd; /* SBX_O_MEMFD: its entry in the sandbox's list (memfd.c) */
	struct sbx_pty *pty;	 /* SBX_O_PTY: the pseudo-terminal it holds (pty.c) */
	struct sbx_sigfd *sigfd; /* SBX_O_SIGNALFD: its description's mask (signalfd.c) */
	/* SBX_O_USOCK: its own address (bound, or the listener's for an accepted one) and its
	 * peer's (the address it connected to), NULL for none; copies own copies. */
	struct sbx_sun *sun_local, *sun_peer;
	int passed; /* it came through SCM_RIGHTS (scm.c): no snapshot holds it */
	/* A socket's peer's pid as SO_PEERCRED says (0: none yet): a pair's maker, the
	 * listener it connected to, the process whose connect it accepted. */
	uint32_t peer_pid;
	int passcred; /* SBX_O_USOCK: SO_PASSCRED as the program set it (not the host's) */
	/* SBX_O_USOCK: the family the program asked for: 0 (AF_UNIX), or AF_INET or AF_INET6,
	 * the sandbox's loopback (inet.c), whose TCP and IP options are kept here as set. */
	int family;
	uint32_t iopt_set;
	int32_t iopt[SBX_IOPT_MAX];
};
static inline int sbx_is_socket(const struct sbx_handle *h)
{
	return h->kind == SBX_H_HOST && (h->obj == SBX_O_SOCKET || h->obj == SBX_O_USOCK);
}
#define SBX_SHUT_RD 1
#define SBX_SHUT_WR 2

/* The handle table of a process, with its RLIMIT_NOFILE. */
struct sbx_files {
	struct sbx_handle fds[SBX_MAX_FDS];
	/* RLIMIT_NOFILE as the guest set it (SBX_CALL_NOFILE); until then, and never above it,
	 * the sandbox's own limit (sbx_fd_ceiling). */
	int nofile_set;
	uint32_t nofile_soft, nofile_hard;
	int nofile_priv; /* CAP_SYS_RESOURCE: it may raise its hard limit (up to the ceiling) */
	/* The descriptions that own the process's record locks, one per file (locks.c). */
	struct sbx_lockfd *locks;
	unsigned nlocks, locks_cap;
	uint64_t locks_gen;
	int locked; /* a lock was taken since the last reset (sbx_locks_reset) */
	/* Who holds which range (lockowners.c): the sandbox's one list, the first process's. */
	struct sbx_lockreg *owners;
	int owners_own;
	uint64_t next_oid;		  /* the objects' ids (sbx_handle.oid) */
	struct sbx_fifo_wait *fifo_waits; /* FIFO opens kept for OPEN_WAIT (fifo.c) */
	struct sbx_scm *scms; /* descriptors staged for a send or taken from a receive (scm.c) */
	/* Addresses staged for a datagram's send or taken from a receive (hc_socket.c). */
	struct sbx_sockname *names;
};

/* What the byte and time limits have counted (limits.c). The byte counters that count are the
 * first process's: a limit is the sandbox's, all its processes together (`tree`, NULL in the
 * first process, points to them in the others, which count there atomically). */
/* The sandbox's memfds (memfd.c): the first process's list serves them all. */
struct sbx_memfds {
	pthread_mutex_t lock;
	struct sbx_memfd *head;
};

/* The sandbox's local sockets with names (hc_socket.c), the first process's serving all: the
 * socket files its processes bound, the only ones CONNECT reaches by path, and the prefix that
 * keeps its abstract names apart from the host's. */
struct sbx_socks {
	pthread_mutex_t lock;
	struct sbx_sockfile {
		uint64_t dev, ino;
		uint64_t id;	    /* its socket's host address: the prefix, '#', the id */
		struct sbx_sun sun; /* the path the program bound, which a receiver is told */
		uint32_t pid;	    /* the process that bound it (SO_PEERCRED) */
	} * files;
	unsigned n, cap;
	uint64_t next_id;
	char prefix[24]; /* "sbx-" and 16 hex digits, made at the first abstract name */
	/* What the handles of files, stdio and named sockets sent with SCM_RIGHTS were (scm.c). */
	struct sbx_passed {
		uint64_t dev, ino;
		struct sbx_handle h;
	} * passed;
	unsigned npassed;
	/* Which process listens on each host address (SO_PEERCRED of a connecting socket). */
	struct sbx_listener {
		struct sockaddr_un u;
		uint32_t ul, pid;
	} * listeners;
	unsigned nlisteners;
};

/* The sandbox's pseudo-terminals (pty.c), the first process's serving all, by their numbers. */
#define SBX_PTYS_MAX 64
struct sbx_ptys {
	pthread_mutex_t lock;
	struct sbx_pty *t[SBX_PTYS_MAX];
	/* Sessions whose terminal hung up (its master's last close), for the tree's keeper to
	 * send their leaders SIGHUP and SIGCONT (sbx_pty_take_hangups). */
	uint32_t hangups[SBX_PTYS_MAX];
	unsigned nhangups;
};

struct sbx_limits {
	uint64_t out_bytes, write_bytes;
	uint64_t err_bytes; /* stderr's, counted apart only with cfg.output_stdout_only */
	struct sbx_limits *tree;
	struct sbx_vm *first; /* the first process, whose end is the sandbox's (NULL: this one) */
	uint64_t reserved;    /* of the counter, by the write under way (its ring_lock held) */
	int hit;	      /* a write was cut at a byte limit: SBX_STATUS_LIMIT_* */
	int on_stderr;	      /* ... and it was stderr's own budget */
	uint64_t value;
	pthread_t watchdog;
	int watchdog_started;
	atomic_int watchdog_quit; /* the run is over: sbx_limits_stop */
	int64_t cpu_base_ms;
	struct sbx_memfds memfds;
	struct sbx_socks socks;
	struct sbx_ptys ptys;
};

/* The path and rule of the call being audited (audit.c), and the paths outside every mount
 * that the program looked for in vain (missing.c). */
#define SBX_MISSING_MAX 64
struct sbx_audit {
	int valid;
	char gpath[POLICY_PATH_MAX];
	char host[POLICY_PATH_MAX];
	char rule[300];
	int outside; /* the call's path, in outside_path, lies outside every mount */
	char outside_path[POLICY_PATH_MAX];
	char *missing[SBX_MISSING_MAX];
	unsigned nmissing;
};

/* Gives a sandbox its handle table, limits and audit state, and the core its dispatch hook;
 * detach closes every handle and frees them. */
int sbx_calls_attach(struct sbx_vm *vm, char *err, size_t errlen);
/* The same for a fork's child: its handle table a copy of parent's (sbx_fd_fork). */
int sbx_calls_attach_fork(struct sbx_vm *vm, struct sbx_vm *parent, char *err, size_t errlen);
void sbx_calls_detach(struct sbx_vm *vm);

/* hc_io.c: calls on an open handle */
int64_t sbx_hc_read(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_write(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_readv(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_writev(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_close(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_fstat(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_lseek(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_getdents(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_ftruncate(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_fsync(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_fallocate(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_dup(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_fcntl(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_nofile(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_ioctl(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_poll(struct sbx_vm *vm, const struct sbx_slot *s);

/* hc_map.c: shared file mappings. sbx_shmap_check is the argument check alone: 0 or -errno
 * for a mapping of len bytes at off with prot, of a file opened with accmode (O_RDONLY...) on
 * a mount the policy lets it write (mount_writable) or not. */
int sbx_shmap_check(uint64_t off, uint64_t len, uint64_t prot, int accmode, int mount_writable);
int64_t sbx_hc_mmap_shared(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_munmap_shared(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_msync(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_futex(struct sbx_vm *vm, const struct sbx_slot *s);
/* locks.c: record locks (F_GETLK, F_SETLK, F_SETLKW and their F_OFD_ forms) and flock. */
int64_t sbx_fcntl_lock(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_flock(struct sbx_vm *vm, const struct sbx_slot *s);
/* A handle of h's file is closing: the process's record locks on it go (POSIX). */
void sbx_locks_closing(struct sbx_vm *vm, const struct sbx_handle *h);
void sbx_locks_free(struct sbx_vm *vm);
/* A repeated run's reset: every lock the run took goes, flock's and OFD locks on the
 * descriptions the snapshot shares too. Nothing to do unless a lock was taken. */
void sbx_locks_reset(struct sbx_vm *vm);
struct flock;
/* lockowners.c: the record locks' holders, for F_GETLK's l_pid. Ranges are [start, end),
 * end INT64_MAX to the end of the file, however far. */
struct sbx_lockreg *sbx_lockreg_new(void);
void sbx_lockreg_free(struct sbx_lockreg *r);
/* A lock's range from its struct flock, l_start counted from base: 0, -EINVAL or -EOVERFLOW. */
int sbx_lock_range(const struct flock *fl, int64_t base, int64_t *start, int64_t *end);
/* pid's record lock of type (F_UNLCK: an unlock) on [start, end) of the file took. */
void sbx_lockreg_set(struct sbx_lockreg *r, uint32_t pid, uint64_t dev, uint64_t ino, int64_t start,
		     int64_t end, int type);
/* pid's locks on the file (dev, ino), or on every file (NULL) went. */
void sbx_lockreg_drop(struct sbx_lockreg *r, uint32_t pid, const uint64_t *dev,
		      const uint64_t *ino);
/* A process other than self holding a lock of type on [start, end) of the file, or -1. */
int32_t sbx_lockreg_holder(struct sbx_lockreg *r, uint32_t self, uint64_t dev, uint64_t ino,
			   int64_t start, int64_t end, int type);
/* dispatch.c: can a read or write of this host handle block (a pipe, a socket, a
 * terminal)? Asked once per handle (fstat). */
int sbx_handle_may_block(struct sbx_handle *h);
/* O_NONBLOCK as the guest sees it: a stdio handle's own, else the host descriptor's status
 * flags fl (-1: unknown, blocking) (hc_io.c). */
int sbx_handle_nonblocking(const struct sbx_handle *h, int fl);
/* A wait for the guest in a host call (poll, epoll_wait, a read that would block), made in
 * slices of at most 20 ms: a kick (a signal for the process, a pause, a stop) that lands just
 * before the host call begins would be lost, and the wait last however long. Each slice
 * first looks for what ends a wait (sbx_wait_over: the run stopping, a pause or stop, a
 * nudge since `nudge` was read, another process's signal); wait(ctx, ms) makes one slice
 * (ms -1: none left to bound it) and returns what the host call returned, -1 with errno
 * on failure. Returns its last answer, or -1 with errno EINTR when the wait was cut. */
int sbx_wait_over(struct sbx_vm *vm, int nudge);
int sbx_wait_sliced(struct sbx_vm *vm, int timeout_ms, int (*wait)(void *ctx, int ms), void *ctx);
/* hc_event.c: pipes, eventfds and epoll. sbx_handle_obj_name: "a pipe", ... for messages. */
int64_t sbx_hc_pipe(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_eventfd(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_epoll_create(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_epoll_ctl(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_epoll_wait(struct sbx_vm *vm, const struct sbx_slot *s);
/* hc_socket.c: connected pairs of local sockets (socketpair) and what is asked of them. */
int64_t sbx_hc_socketpair(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_sockop(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_socket(struct sbx_vm *vm, const struct sbx_slot *s);
/* scm.c: SCM_RIGHTS. sbx_scm_send: SOCKOP SCM_SEND, the guest's n fds at gpa staged for this
 * vCPU's next send; sbx_scm_control: the staged fds as a host control message (cap bytes at
 * buf), sbx_scm_sent after the send (its result: EINTR keeps them for the send made again;
 * went: the host took them, which a stream socket does not with no byte);
 * sbx_scm_received: the descriptors of a received host message staged; sbx_scm_take: SOCKOP
 * SCM_TAKE, those that fit installed as the guest's control message: its length |
 * MSG_CTRUNC-ness << 32. */
int64_t sbx_scm_send(struct sbx_vm *vm, uint64_t gpa, uint64_t n);
int sbx_scm_control(struct sbx_vm *vm, void *buf, size_t cap, size_t *len);
void sbx_scm_sent(struct sbx_vm *vm, int64_t ret, int went);
struct msghdr;
int sbx_scm_received(struct sbx_vm *vm, const struct msghdr *m, int cloexec, int peek);
int64_t sbx_scm_take(struct sbx_vm *vm, uint64_t gpa, uint64_t cap);
void sbx_scm_free_all(struct sbx_files *f);
void sbx_scm_registry_free(struct sbx_socks *k);
void sbx_socks_init(struct sbx_socks *k);
struct sbx_socks *sbx_socks_of(struct sbx_vm *vm);     /* the tree's, the first process's */
struct sbx_sun *sbx_sun_copy(const struct sbx_sun *g); /* NULL for none, or no memory */
void sbx_socks_free(struct sbx_socks *k);
void sbx_sockname_free_all(struct sbx_files *f);
/* The destination staged by SENDTO (write) or a sender's address to stage (read) for this
 * vCPU's datagram: 0, or -EINVAL with nothing staged. */
struct sockaddr_un;
int sbx_sockname_take(struct sbx_vm *vm, struct sockaddr_un *u, uint32_t *ul);
void sbx_sockname_received(struct sbx_vm *vm, int family, int type, const struct sockaddr_un *u,
			   uint32_t ul, int ours);
/* An interrupted send's destination staged again, for the WRITEV made again. */
void sbx_sockname_again(struct sbx_vm *vm, const struct sockaddr_un *u, uint32_t ul);
/* Is the host socket fd's peer the monitor itself (a socket of the sandbox's), by the host's
 * SO_PEERCRED? */
int sbx_sock_ours(int fd);
/* A host abstract address of the sandbox's: its prefix, a kind (a byte) and name's len bytes;
 * -EINVAL if it does not fit. sbx_sock_abstract_kind reads one back: its kind and name (at
 * most cap - 1 bytes, their count in *n), or -ENOENT for an address that is not the
 * sandbox's. */
int sbx_sock_abstract(struct sbx_socks *k, char kind, const char *name, size_t len,
		      struct sockaddr_un *u, socklen_t *ulen);
int sbx_sock_abstract_kind(struct sbx_socks *k, const struct sockaddr_un *u, uint32_t ul,
			   char *kind, char *name, size_t cap, size_t *n);
/* inet.c: the sandbox's loopback, AF_INET and AF_INET6 sockets over the host's local ones.
 * sbx_inet_parse: the guest's address (len bytes at buf) for a socket of family, AF_UNSPEC
 * let through; sbx_inet_local: a wildcard or loopback address; sbx_inet_name: the program's
 * form of a handle's address g (NULL: the zero one) into out, its length; sbx_inet_sun: an
 * address in the handle's form (malloc'd; NULL: no memory); sbx_inet_accepted_local: an
 * accepted socket's own address, from its listener's and its peer's. */
union sbx_inaddr {
	struct sockaddr sa;
	struct sockaddr_in v4;
	struct sockaddr_in6 v6;
};
int sbx_is_inet(const struct sbx_handle *h);
int sbx_inet_parse(int family, const void *buf, size_t len, union sbx_inaddr *a);
int sbx_inet_local(const union sbx_inaddr *a);
uint16_t sbx_inet_port(const union sbx_inaddr *a);
size_t sbx_inet_name(const struct sbx_handle *h, const struct sbx_sun *g, void *out);
struct sbx_sun *sbx_inet_sun(const union sbx_inaddr *a);
struct sbx_sun *sbx_inet_accepted_local(const struct sbx_handle *listener,
					const union sbx_inaddr *peer);
int64_t sbx_inet_bind(struct sbx_vm *vm, struct sbx_handle *h, uint64_t gpa, uint64_t len);
/* The destination at gpa (what: "connect to", "send to", for the log): its program's form in a (the
 * wildcard made the loopback) and the host address in u (AF_UNSPEC's for a disconnect), or -errno
 * (ENETUNREACH off the loopback). */
int sbx_inet_dest(struct sbx_vm *vm, const struct sbx_handle *h, uint64_t gpa, uint64_t len,
		  const char *what, union sbx_inaddr *a, struct sockaddr_un *u, socklen_t *ul);
/* Before a listen: EOPNOTSUPP but for TCP; an unbound socket bound to an ephemeral port on
 * the wildcard, as Linux. */
int sbx_inet_listen(struct sbx_vm *vm, struct sbx_handle *h);
/* An unbound socket about to connect or send (fd: its host socket or a duplicate) bound to an
 * ephemeral port; its address into local. */
int sbx_inet_autobind(struct sbx_vm *vm, const struct sbx_handle *h, int fd,
		      const union sbx_inaddr *dest, union sbx_inaddr *local);
/* A host address of the loopback (a peer's, a sender's) as the program sees it in family. */
void sbx_inet_from_host(struct sbx_vm *vm, int family, const struct sockaddr_un *u, uint32_t ul,
			union sbx_inaddr *a);
/* TCP's and IP's options, SO_DOMAIN and SO_PROTOCOL: the value, or -errno. */
int64_t sbx_inet_getopt(const struct sbx_handle *h, uint64_t level, uint64_t name);
int64_t sbx_inet_setopt(struct sbx_handle *h, uint64_t level, uint64_t name, uint64_t v);
/* hc_path.c: the socket file a bind to the guest path a makes (on a writable mount), then
 * bound(ctx, its device, its inode), which binds the socket; the file goes if that fails. */
int sbx_path_bind(struct sbx_vm *vm, const struct sbx_path *a,
		  int (*bound)(void *ctx, uint64_t dev, uint64_t ino), void *ctx);
/* hc_event.c: a guest handle for host fd (taken over), or -errno (fd closed). */
int64_t sbx_handle_add(struct sbx_vm *vm, int fd, enum sbx_handle_obj obj, int cloexec,
		       int writable);
/* Both ends of a pipe or socket pair (the second writable): first | second << 32. */
int64_t sbx_handle_add_pair(struct sbx_vm *vm, const int p[2], enum sbx_handle_obj obj, int cloexec,
			    int first_writable);
const char *sbx_handle_obj_name(enum sbx_handle_obj o);
/* pty.c: pseudo-terminals. sbx_pty_open: an open of /dev/ptmx (SBX_PTY_NEW), /dev/tty
 * (SBX_PTY_CTTY) or /dev/pts/N: a new handle or -errno. sbx_pty_ioctl: a terminal request
 * (sbx_abi.h's table) on a handle of one, a2 as the table says. sbx_pty_wrote: n bytes went
 * into p's master through fd: the signals its slave's modes make of them. hold/drop: a handle's
 * copy holds its terminal (master or slave), its close lets go. */
#define SBX_PTY_NEW (-1)
#define SBX_PTY_CTTY (-2)
void sbx_ptys_init(struct sbx_ptys *p);
void sbx_ptys_free(struct sbx_ptys *p);
int sbx_pty_exists(struct sbx_vm *vm, int index);
int sbx_pty_index(const struct sbx_pty *p);
unsigned sbx_pty_list(struct sbx_vm *vm, int *out, unsigned max);
int64_t sbx_pty_open(struct sbx_vm *vm, int index, int flags);
int64_t sbx_pty_ioctl(struct sbx_vm *vm, struct sbx_handle *h, uint32_t req, uint64_t a2);
struct iovec;
/* A read or write of a terminal's slave by a background process (sbx_pty_io_check): 0, or
 * its answer (-EINTR once its group was sent SIGTTIN or SIGTTOU, -EIO). */
int64_t sbx_pty_io_check(struct sbx_vm *vm, struct sbx_handle *h, int is_write);
void sbx_pty_wrote(struct sbx_vm *vm, struct sbx_pty *p, int fd, const struct iovec *iov, int cnt,
		   size_t n);
/* The sessions whose terminal hung up since the last call (at most max), taken. */
unsigned sbx_pty_take_hangups(struct sbx_vm *vm, uint32_t *sids, unsigned max);
void sbx_pty_hold(struct sbx_pty *p, int master);
void sbx_pty_drop(struct sbx_pty *p, int master);
int64_t sbx_hc_timerfd(struct sbx_vm *vm, const struct sbx_slot *s);
/* signalfd.c: signalfd's handles. A handle's copy holds its description (hold/drop); a fork's
 * child gets eventfds of its own for them (sbx_sigfd_forked, after sbx_fd_fork's copies). */
int64_t sbx_hc_signalfd(struct sbx_vm *vm, const struct sbx_slot *s);
void sbx_sigfd_hold(struct sbx_sigfd *s);
void sbx_sigfd_drop(struct sbx_sigfd *s);
int sbx_sigfd_forked(struct sbx_vm *child);
/* inotify.c: inotify instances, host ones watching what the guest's paths name. */
int64_t sbx_hc_inotify(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_inotify_watch(struct sbx_vm *vm, const struct sbx_slot *s);
/* memfd.c: memfd_create. A handle's copy holds its memfd, its drop lets go (sbx_fd_copy,
 * sbx_fd_drop); sbx_memfd_bytes: the bytes all the sandbox's memfds hold, for --mem. */
int64_t sbx_hc_memfd(struct sbx_vm *vm, const struct sbx_slot *s);
struct stat;
struct sbx_memfd *sbx_memfd_find(struct sbx_vm *vm, const struct stat *st); /* held, or NULL */
void sbx_memfd_hold(struct sbx_memfd *m);
void sbx_memfd_drop(struct sbx_memfd *m);
void sbx_memfd_ref_hold(void *ref, int delta); /* hooks.ref_hold */
uint64_t sbx_memfd_bytes(struct sbx_vm *vm);
void sbx_memfds_init(struct sbx_memfds *l);
void sbx_memfds_free(struct sbx_memfds *l);
/* hc_thread.c */
int64_t sbx_hc_thread_start(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_park(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_unpark(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_tid(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_thread_run(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_tlb_shootdown(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_patch(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_kick(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_proc(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_execve(struct sbx_vm *vm, const struct sbx_slot *s);
/* hc_path.c: the file at a guest path (relative to dirfd or the cwd), opened read-only for
 * execve through the policy: a host fd, and its normalised guest path in gpath. */
int sbx_path_open_ro(struct sbx_vm *vm, int32_t dirfd, const char *path, int follow,
		     char gpath[POLICY_PATH_MAX]);

/* hc_path.c: calls that name a path */
int64_t sbx_hc_open(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_stat(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_readlink(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_mkdir(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_mknod(struct sbx_vm *vm, const struct sbx_slot *s);
/* The file a guest path names (dirfd, path), as an O_PATH host fd, or -errno: -EACCES for a
 * node of the sandbox's own /dev, /proc or directories, which no host file stands for. */
int sbx_path_opath(struct sbx_vm *vm, const struct sbx_path *a, int follow);
/* A guest handle for a host fd of a mount's file (taken over): its number, or -errno. */
int sbx_path_install(struct sbx_vm *vm, int fd, const char *gpath, int cloexec, int writable);
/* fifo.c: opens of FIFOs that wait for the other end. sbx_fifo_waits: would an open with
 * these flags (the guest's, with O_PATH) of host fd (the open, or an O_PATH one for a writer
 * that got ENXIO) wait, acc being the access mode that waits here? sbx_fifo_keep keeps fd for
 * the calling vCPU's OPEN_WAIT and returns -SBX_EOPEN_WAITS. */
int sbx_fifo_waits(const struct sbx_vm *vm, int fd, int flags, int acc);
int64_t sbx_fifo_keep(struct sbx_vm *vm, int fd, int flags, const char *gpath, int writable);
int64_t sbx_hc_open_wait(struct sbx_vm *vm, const struct sbx_slot *s);
void sbx_fifo_waits_free(struct sbx_files *f);
int64_t sbx_hc_unlink(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_rename(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_chdir(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_getcwd(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_access(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_chmod(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_chown(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_utimens(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_statfs(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_symlink(struct sbx_vm *vm, const struct sbx_slot *s);
int64_t sbx_hc_link(struct sbx_vm *vm, const struct sbx_slot *s);

/* Shared by the stat paths. */
struct stat;
void sbx_vdir_stat(struct sbx_vm *vm, const char *gpath, struct stat *st);
int sbx_put_stat(struct sbx_vm *vm, uint64_t buf, uint64_t len, const struct stat *st);
/* What fstat of the handle gives (h may be NULL: -EBADF). */
int sbx_handle_stat(struct sbx_vm *vm, const struct sbx_handle *h, struct stat *st);

/* vfs.c: the virtual /dev and /proc/self (on unless the policy's no_dev). Directories, then
 * files, then links, in that order. */
enum sbx_vnode_type {
	SBX_V_NONE,
	SBX_V_ROOT, /* not a node of its own: "/" lists dev and proc (sbx_vfs_children) */
	SBX_V_DIR_DEV,
	SBX_V_DIR_PTS, /* /dev/pts: the sandbox's pseudo-terminals (pty.c) */
	SBX_V_DIR_PROC,
	SBX_V_DIR_PID, /* /proc/PID: the caller's, which /proc/self names, or another's */
	SBX_V_DIR_FD,
	SBX_V_NULL,
	SBX_V_ZERO,
	SBX_V_FULL,
	SBX_V_RANDOM,
	SBX_V_URANDOM,
	SBX_V_PTMX, /* opens a new pseudo-terminal's master (pty.c): never a handle of its own */
	SBX_V_TTY,  /* /dev/tty: the caller's controlling terminal's slave */
	SBX_V_PTS,  /* /dev/pts/N: num is N */
	SBX_V_CMDLINE,
	SBX_V_STATUS,
	SBX_V_MAPS,
	SBX_V_STAT,
	SBX_V_COMM,
	SBX_V_CPUINFO, /* the machine's (procfs_sys.c): CPUINFO..UPTIME */
	SBX_V_PSTAT,   /* /proc/stat */
	SBX_V_MEMINFO,
	SBX_V_LOADAVG,
	SBX_V_UPTIME,
	SBX_V_ENVIRON,
	SBX_V_LNK_STD,	 /* /dev/stdin..stderr: num 0..2 */
	SBX_V_LNK_DEVFD, /* /dev/fd */
	SBX_V_LNK_SELF,	 /* /proc/self */
	SBX_V_LNK_EXE,	 /* /proc/PID/exe: num is PID */
	SBX_V_LNK_FD,	 /* /proc/self/fd/N: num is N, an open handle */
	SBX_V_LNK_MOUNT, /* a mount that is a link in the guest: num is its index (links.c) */
};
struct sbx_vnode {
	int type; /* enum sbx_vnode_type */
	int num;
};
struct iovec;
typedef void (*sbx_vfs_emit)(void *ctx, const char *name, size_t nlen, unsigned char type);
int sbx_vfs_enabled(const struct sbx_vm *vm);
/* A normalised guest path among the virtual nodes, intermediate links followed (/dev/fd/3 is
 * /proc/self/fd/3), the final one not: 0, or -ENOENT, -ENOTDIR. Callers look here only where the
 * policy has no mount. */
int sbx_vfs_lookup(struct sbx_vm *vm, const char *gpath, struct sbx_vnode *vn);
/* A final link followed where the target is a node itself (/dev/stdout becomes the magic link
 * /proc/self/fd/1, /proc/self the directory /proc/PID); /proc/PID/exe and .../fd/N stay. */
void sbx_vfs_follow(struct sbx_vnode *vn);
int sbx_vfs_is_dir(int type);
int sbx_vfs_is_file(int type);
int sbx_vfs_readlink(struct sbx_vm *vm, const struct sbx_vnode *vn, char *out, size_t len);
void sbx_vfs_stat(struct sbx_vm *vm, const struct sbx_vnode *vn, const char *gpath,
		  struct stat *st);
/* Entries of a virtual directory (SBX_V_ROOT: what the root adds to the policy's). */
void sbx_vfs_children(struct sbx_vm *vm, const char *gpath, int type, sbx_vfs_emit emit, void *ctx);
/* procfs.c: the generated files of /proc. The text of one (SBX_V_LNK_EXE: the exe link's
 * target) for the process pid, the caller or another, malloc'd: 0, or -ESRCH (that process
 * ended), -EACCES (not shown of another process), -ENOMEM. */
int sbx_procfs_text(struct sbx_vm *vm, int type, uint32_t pid, char **text, size_t *len);
/* procfs_sys.c: the text of one of the machine's files (SBX_V_CPUINFO..SBX_V_UPTIME). */
int sbx_procfs_sys(struct sbx_vm *vm, int type, char **text, size_t *len);
/* The pid a normalised /proc path names: its number, or the caller's for any other path. */
uint32_t sbx_procfs_path_pid(struct sbx_vm *vm, const char *gpath);
/* Whether pid is the caller's or a running process of its sandbox. */
int sbx_procfs_exists(struct sbx_vm *vm, uint32_t pid);
/* Whether a node of the /proc/PID directory is shown: the caller's every one; of pid 1, the
 * monitor's init, its stat, status, comm and cmdline; of another process all but its maps
 * and fd. */
int sbx_procfs_shown(struct sbx_vm *vm, uint32_t pid, int type);
/* A read or write of a VFILE handle into host iovecs already checked against guest RAM. */
int64_t sbx_vfs_io(struct sbx_vm *vm, struct sbx_handle *h, const struct iovec *iov, int cnt,
		   uint64_t total, int is_write, int positioned, int64_t off);
int64_t sbx_vfs_lseek(struct sbx_handle *h, int64_t off, int whence);

/* dispatch.c: getrandom's bytes (the run's seeded stream when deterministic); bytes or -errno */
int64_t sbx_random_fill(struct sbx_vm *vm, uint8_t *p, uint64_t len);

/* dispatch.c, limits.c, audit.c, fdtable.c, strace.c */
/* hypercalls.c and hc_*.c */
int64_t sbx_hypercall(struct sbx_vm *vm, const struct sbx_slot *s);
/* Audit's and strace's name of a hypercall. */
const char *sbx_call_name(int nr);

/* limits.c */
int sbx_limits_start(struct sbx_vm *vm);
void sbx_limits_stop(struct sbx_vm *vm);
/* How much of a write of len bytes the limits allow (ending the run when that is less). */
uint64_t sbx_limit_write(struct sbx_vm *vm, const struct sbx_handle *h, uint64_t len);
void sbx_limit_account(struct sbx_vm *vm, const struct sbx_handle *h, int64_t written);

/* missing.c: a call on a path outside every mount (sbx_audit_note) that ended in ENOENT is
 * remembered, up to SBX_MISSING_MAX paths; sbx_missing_free forgets them. */
void sbx_missing_note(struct sbx_vm *vm, int64_t ret);
/* One path more, another process's (the first process's report names its children's). */
void sbx_missing_add(struct sbx_vm *vm, const char *guest_path);
void sbx_missing_free(struct sbx_vm *vm);
/* After the run, when the program failed (or always under -v): one line naming the remembered
 * paths that exist on the host, each with the flag that would show it. */
void sbx_missing_report(struct sbx_vm *vm, int failed);

/* audit.c */
void sbx_audit_note(struct sbx_vm *vm, const char *gpath, const struct policy_target *t);
/* The path led into another mount's object (a nested mount): its rule is the one applied. */
void sbx_audit_mount(struct sbx_vm *vm, const struct policy_target *t,
		     const struct policy_mount *m);
/* The call's line (name: the hypercall's, from the dispatch table). */
void sbx_audit_record(struct sbx_vm *vm, const struct sbx_slot *s, const char *name, int64_t ret);
/* A JSON line's start (time, call) and a guest string escaped, for lines of their own (execve). */
void sbx_audit_begin(FILE *f, const char *call);
void sbx_audit_string(FILE *f, const char *s);

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
/* What a handle holds (host fd, path) let go, outside any table. */
void sbx_fd_drop(struct sbx_handle *h);
/* dst becomes a copy of src with resources of its own (a dup of the host fd, its own path):
 * 0, or -errno with dst holding nothing. */
int sbx_fd_copy(struct sbx_handle *dst, const struct sbx_handle *src);
/* What a handle is, without its host fd (-1) or memfd: for the SCM_RIGHTS registry. */
int sbx_fd_meta_copy(struct sbx_handle *dst, const struct sbx_handle *src);
void sbx_fd_meta_free(struct sbx_handle *h);
/* fork: child's table becomes a copy of parent's (host fds duplicated: offsets shared, as
 * Linux's). execve: the close-on-exec handles close. */
int sbx_fd_fork(struct sbx_vm *child, struct sbx_vm *parent);
void sbx_fd_exec(struct sbx_vm *vm);
/* What calls in progress keep between two requests (FIFO opens, staged descriptors): gone at
 * an exec, the end, and a reset. */
void sbx_fd_transient_free(struct sbx_files *f);

/* strace.c */
void sbx_strace(struct sbx_vm *vm, uint64_t nr, int64_t ret, const uint64_t args[6]);
/* x86-64 Linux syscall names and --strace's argument kinds (sbx_syscalls.h); NULL for a number
 * no call has. */
const char *sbx_syscall_name(uint64_t nr);
const char *sbx_syscall_args(uint64_t nr);

#endif
