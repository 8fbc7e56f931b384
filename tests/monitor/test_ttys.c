/* The monitor's side of ABI 1.20 without KVM, through the ring as the guest kernel drives it:
 * pseudo-terminals (calls/pty.c), signalfd handles (calls/signalfd.c), datagrams to an
 * address, senders' names and SO_PEERCRED (calls/hc_socket.c); and 1.21's sliced waits. The guest's
 * view of the same is e2e/pseudo_terminals_as_natively, e2e/signalfd_as_natively and
 * e2e/local_sockets_as_natively. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "helpers.h"

static struct test_vm T;

static void setup(void)
{
	test_vm_setup(&T);
}

static void teardown(void)
{
	test_vm_teardown(&T);
}

TestSuite(ttys, .init = setup, .fini = teardown);

#define BUF 0x500000ull
#define ARG 0x510000ull

static int64_t open_path(const char *path, uint32_t flags)
{
	struct sbx_slot s = {.nr = SBX_CALL_OPEN};
	s.u.path.dirfd = SBX_AT_FDCWD;
	s.u.path.path = test_put(&T, 0x400000, path);
	s.u.path.path_len = (uint32_t)strlen(path);
	s.u.path.flags = flags;
	return test_call(&T, s);
}

static int64_t call(uint32_t nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4)
{
	struct sbx_slot s = {.nr = nr};
	s.u.a[0] = a0;
	s.u.a[1] = a1;
	s.u.a[2] = a2;
	s.u.a[3] = a3;
	s.u.a[4] = a4;
	return test_call(&T, s);
}

static int64_t ioctl_int(int64_t fd, uint32_t req, int32_t *v)
{
	if (v)
		memcpy(sbx_gptr(T.vm, ARG, 4), v, 4);
	int64_t r = call(SBX_CALL_IOCTL, (uint64_t)fd, req, ARG, 0, 0);
	if (v)
		memcpy(v, sbx_gptr(T.vm, ARG, 4), 4);
	return r;
}

static int64_t rw(uint32_t nr, int64_t fd, const char *data, size_t n)
{
	if (data)
		memcpy(sbx_gptr(T.vm, BUF, n), data, n);
	return test_call(&T, test_rw_req(nr, (int32_t)fd, BUF, n));
}

static int readable(int64_t fd)
{
	struct pollfd p = {.fd = (int)fd, .events = POLLIN};
	memcpy(sbx_gptr(T.vm, ARG, sizeof(p)), &p, sizeof(p));
	int64_t r = call(SBX_CALL_POLL, ARG, 1, 0, 0, 0);
	memcpy(&p, sbx_gptr(T.vm, ARG, sizeof(p)), sizeof(p));
	return r == 1 && (p.revents & POLLIN);
}

Test(ttys, a_terminal_is_made_locked_named_opened_and_hung_up)
{
	int64_t m = open_path("/dev/ptmx", O_RDWR | O_NOCTTY);
	if (m == -ENOENT || m == -ENODEV || m == -EACCES)
		cr_skip_test("this host has no usable /dev/ptmx (%lld)", (long long)m);
	cr_assert_geq(m, 0);
	int32_t n = -1;
	cr_assert_eq(ioctl_int(m, 0x80045430 /* TIOCGPTN */, &n), 0);
	cr_assert_eq(n, 0, "the sandbox's own numbers start at 0");
	/* Locked until unlockpt, as Linux's; the lock is the master's alone. */
	cr_assert_eq(open_path("/dev/pts/0", O_RDWR | O_NOCTTY | O_NONBLOCK), -EIO);
	int32_t lk = -1;
	cr_assert_eq(ioctl_int(m, 0x80045439 /* TIOCGPTLCK */, &lk), 0);
	cr_assert_eq(lk, 1);
	int32_t zero = 0;
	cr_assert_eq(ioctl_int(m, 0x40045431 /* TIOCSPTLCK */, &zero), 0);
	cr_assert_eq(open_path("/dev/pts/1", O_RDWR), -ENOENT);
	cr_assert_eq(open_path("/dev/pts/00", O_RDWR), -ENOENT);
	int64_t s = open_path("/dev/pts/0", O_RDWR | O_NOCTTY | O_NONBLOCK);
	cr_assert_geq(s, 0);
	cr_assert_eq(ioctl_int(s, 0x80045430, &n), -ENOTTY, "TIOCGPTN is the master's");
	/* The line discipline is the host's: \n goes out as \r\n. */
	cr_assert_eq(rw(SBX_CALL_WRITE, s, "hi\n", 3), 3);
	cr_assert(readable(m));
	cr_assert_eq(rw(SBX_CALL_READ, m, NULL, 16), 4);
	cr_assert_eq(memcmp(sbx_gptr(T.vm, BUF, 4), "hi\r\n", 4), 0);
	/* fstat says what stat of its path says, for ttyname(). */
	struct sbx_slot st = {.nr = SBX_CALL_FSTAT};
	st.u.path.dirfd = (int32_t)s;
	st.u.path.buf = BUF;
	st.u.path.buf_len = sizeof(struct stat);
	cr_assert_eq(test_call(&T, st), 0);
	struct stat a;
	memcpy(&a, sbx_gptr(T.vm, BUF, sizeof(a)), sizeof(a));
	cr_assert(S_ISCHR(a.st_mode));
	cr_assert_eq(major(a.st_rdev), 136);
	cr_assert_eq(minor(a.st_rdev), 0);
	/* A slave from the master (glibc's openpty); flags other than these are EINVAL. */
	int64_t s2 = call(SBX_CALL_IOCTL, (uint64_t)m, 0x5441 /* TIOCGPTPEER */,
			  O_RDWR | O_NOCTTY | O_NONBLOCK, 0, 0);
	cr_assert_geq(s2, 0);
	cr_assert_eq(call(SBX_CALL_IOCTL, (uint64_t)m, 0x5441, O_CREAT, 0, 0), -EINVAL);
	cr_assert_eq(call(SBX_CALL_IOCTL, (uint64_t)s, 0x5441, O_RDWR, 0, 0), -ENOTTY);
	/* No session controls it, and the caller has no terminal. */
	cr_assert_eq(ioctl_int(s, TIOCGPGRP, &n), -ENOTTY);
	cr_assert_eq(open_path("/dev/tty", O_RDWR), -ENXIO);
	cr_assert_eq(call(SBX_CALL_IOCTL, (uint64_t)m, TIOCSTI, ARG, 0, 0), -ENOTTY, "never");
	/* A window size set on the master is the slave's. */
	struct winsize w = {.ws_row = 30, .ws_col = 100};
	memcpy(sbx_gptr(T.vm, ARG, sizeof(w)), &w, sizeof(w));
	cr_assert_eq(call(SBX_CALL_IOCTL, (uint64_t)m, TIOCSWINSZ, ARG, 0, 0), 0);
	memset(sbx_gptr(T.vm, ARG, sizeof(w)), 0, sizeof(w));
	cr_assert_eq(call(SBX_CALL_IOCTL, (uint64_t)s2, TIOCGWINSZ, ARG, 0, 0), 0);
	memcpy(&w, sbx_gptr(T.vm, ARG, sizeof(w)), sizeof(w));
	cr_assert_eq(w.ws_col, 100);
	cr_assert_eq(call(SBX_CALL_IOCTL, (uint64_t)m, TIOCSWINSZ, 1ull << 40, 0, 0), -EFAULT);
	/* The master's close hangs the slaves up; the number goes with the last handle. */
	cr_assert_eq(call(SBX_CALL_CLOSE, (uint64_t)m, 0, 0, 0, 0), 0);
	cr_assert_eq(rw(SBX_CALL_WRITE, s, "x", 1), -EIO);
	cr_assert_eq(open_path("/dev/pts/0", O_RDWR | O_NOCTTY | O_NONBLOCK), -EIO);
	cr_assert_eq(call(SBX_CALL_CLOSE, (uint64_t)s, 0, 0, 0, 0), 0);
	cr_assert_eq(call(SBX_CALL_CLOSE, (uint64_t)s2, 0, 0, 0, 0), 0);
	cr_assert_eq(open_path("/dev/pts/0", O_RDWR | O_NOCTTY), -ENOENT);
	int64_t again = open_path("/dev/ptmx", O_RDWR | O_NOCTTY);
	cr_assert_geq(again, 0);
	cr_assert_eq(ioctl_int(again, 0x80045430, &n), 0);
	cr_assert_eq(n, 0, "a freed number is taken again");
}

Test(ttys, a_session_leader_takes_its_terminal_and_its_group_is_the_foreground)
{
	int64_t m = open_path("/dev/ptmx", O_RDWR | O_NOCTTY);
	if (m < 0)
		cr_skip_test("this host has no usable /dev/ptmx (%lld)", (long long)m);
	int32_t zero = 0;
	ioctl_int(m, 0x40045431, &zero);
	int64_t s = open_path("/dev/pts/0", O_RDWR | O_NOCTTY | O_NONBLOCK);
	cr_assert_geq(s, 0);
	/* Not a session leader: EPERM. */
	T.vm->proc.sid = T.vm->proc.pid + 1;
	cr_assert_eq(call(SBX_CALL_IOCTL, (uint64_t)s, TIOCSCTTY, 0, 0, 0), -EPERM);
	T.vm->proc.sid = T.vm->proc.pgid = T.vm->proc.pid;
	cr_assert_eq(call(SBX_CALL_IOCTL, (uint64_t)s, TIOCSCTTY, 0, 0, 0), 0);
	cr_assert_eq(call(SBX_CALL_IOCTL, (uint64_t)m, TIOCSCTTY, 0, 0, 0), 0, "its own already");
	int32_t g = -1;
	cr_assert_eq(ioctl_int(s, TIOCGPGRP, &g), 0);
	cr_assert_eq((uint32_t)g, T.vm->proc.pgid);
	cr_assert_eq(ioctl_int(s, 0x5429 /* TIOCGSID */, &g), 0);
	cr_assert_eq((uint32_t)g, T.vm->proc.sid);
	int32_t bad = -3;
	cr_assert_eq(ioctl_int(s, TIOCSPGRP, &bad), -EINVAL);
	/* /dev/tty is it, under /dev/tty's own node (5,0). */
	int64_t t = open_path("/dev/tty", O_RDWR | O_NONBLOCK);
	cr_assert_geq(t, 0);
	struct sbx_slot st = {.nr = SBX_CALL_FSTAT};
	st.u.path.dirfd = (int32_t)t;
	st.u.path.buf = BUF;
	st.u.path.buf_len = sizeof(struct stat);
	cr_assert_eq(test_call(&T, st), 0);
	struct stat a;
	memcpy(&a, sbx_gptr(T.vm, BUF, sizeof(a)), sizeof(a));
	cr_assert_eq(a.st_rdev, makedev(5, 0));
	cr_assert_eq(rw(SBX_CALL_WRITE, t, "ok", 2), 2);
	cr_assert_eq(call(SBX_CALL_IOCTL, (uint64_t)s, TIOCNOTTY, 0, 0, 0), 0);
	cr_assert_eq(open_path("/dev/tty", O_RDWR | O_NONBLOCK), -ENXIO);
}

Test(ttys, a_signalfd_is_readable_while_its_signals_are_pending)
{
	uint64_t mask = 1ull << (SIGUSR1 - 1);
	int64_t fd = call(SBX_CALL_SIGNALFD, SBX_SIGFD_MAKE, (uint64_t)-1, mask, O_NONBLOCK, 0);
	cr_assert_geq(fd, 0);
	cr_assert(!readable(fd));
	cr_assert_eq(call(SBX_CALL_SIGNALFD, SBX_SIGFD_SYNC, mask | 1, 0, 0, 0), 0);
	cr_assert(readable(fd));
	cr_assert_eq(call(SBX_CALL_SIGNALFD, SBX_SIGFD_SYNC, 1ull << (SIGUSR2 - 1), 0, 0, 0), 0);
	cr_assert(!readable(fd), "another signal: not its");
	/* Its mask and O_NONBLOCK, for the kernel's read; a read is the kernel's to do. */
	cr_assert_eq(call(SBX_CALL_SIGNALFD, SBX_SIGFD_ASK, (uint64_t)fd, ARG, 0, 0), 1);
	uint64_t got;
	memcpy(&got, sbx_gptr(T.vm, ARG, 8), 8);
	cr_assert_eq(got, mask);
	cr_assert_eq(rw(SBX_CALL_READ, fd, NULL, 128), -SBX_ESIGNALFD);
	cr_assert_eq(rw(SBX_CALL_WRITE, fd, "12345678", 8), -EINVAL);
	struct sbx_slot pr = test_rw_req(SBX_CALL_PREAD, (int32_t)fd, BUF, 128);
	cr_assert_eq(test_call(&T, pr), -ESPIPE);
	/* The mask is the description's: a dup's change is the original's. */
	int64_t d = call(SBX_CALL_DUP, (uint64_t)fd, (uint64_t)-1, 0, 0, 0);
	cr_assert_geq(d, 0);
	uint64_t both = mask | (1ull << (SIGUSR2 - 1));
	cr_assert_eq(
	    call(SBX_CALL_SIGNALFD, SBX_SIGFD_MAKE, (uint64_t)d, both, 0, 1ull << (SIGUSR2 - 1)),
	    d);
	cr_assert(readable(fd));
	cr_assert_eq(call(SBX_CALL_SIGNALFD, SBX_SIGFD_ASK, (uint64_t)fd, ARG, 0, 0), 1);
	memcpy(&got, sbx_gptr(T.vm, ARG, 8), 8);
	cr_assert_eq(got, both);
	/* What is no signalfd, no handle, bad flags, bad addresses, unknown operations. */
	cr_assert_eq(call(SBX_CALL_SIGNALFD, SBX_SIGFD_MAKE, 1, mask, 0, 0), -EINVAL);
	cr_assert_eq(call(SBX_CALL_SIGNALFD, SBX_SIGFD_MAKE, 999, mask, 0, 0), -EBADF);
	cr_assert_eq(call(SBX_CALL_SIGNALFD, SBX_SIGFD_MAKE, (uint64_t)-1, mask, O_CREAT, 0),
		     -EINVAL);
	cr_assert_eq(call(SBX_CALL_SIGNALFD, SBX_SIGFD_ASK, (uint64_t)fd, 1ull << 40, 0, 0),
		     -EFAULT);
	cr_assert_eq(call(SBX_CALL_SIGNALFD, 77, 0, 0, 0, 0), -EINVAL);
}

static int64_t sock(int type)
{
	return call(SBX_CALL_SOCKET, (uint64_t)type | SOCK_NONBLOCK, 0, 0, 0, 0);
}

static uint64_t put_sun(uint64_t gpa, const char *name, uint64_t *len)
{
	struct sockaddr_un u = {.sun_family = AF_UNIX};
	size_t n = strlen(name);
	if (name[0] == '@') {
		memcpy(u.sun_path + 1, name + 1, n - 1);
		*len = sizeof(sa_family_t) + n;
	} else {
		memcpy(u.sun_path, name, n);
		*len = sizeof(sa_family_t) + n + 1;
	}
	memcpy(sbx_gptr(T.vm, gpa, sizeof(u)), &u, sizeof(u));
	return gpa;
}

static int64_t sockop(uint64_t op, int64_t fd, uint64_t a2, uint64_t a3)
{
	return call(SBX_CALL_SOCKOP, op, (uint64_t)fd, a2, a3, 0);
}

/* op (BIND, CONNECT, SENDTO) with the address of name ("@abstract" or a path). */
static int64_t sun_op(uint64_t op, int64_t fd, const char *name)
{
	uint64_t l;
	uint64_t gpa = put_sun(ARG, name, &l);
	return sockop(op, fd, gpa, l);
}

/* One datagram from `from` to the address staged, through WRITEV as the kernel sends it. */
static int64_t send_named(int64_t from, const char *data)
{
	struct sbx_iovec v = {BUF + 0x1000, strlen(data)};
	memcpy(sbx_gptr(T.vm, BUF + 0x1000, v.len), data, v.len);
	memcpy(sbx_gptr(T.vm, BUF, sizeof(v)), &v, sizeof(v));
	struct sbx_slot s = test_rw_req(SBX_CALL_WRITEV, (int32_t)from, BUF, 1);
	s.u.rw.off = (int64_t)(SBX_RW_SOCK | SBX_RW_NAME);
	return test_call(&T, s);
}

static int64_t recv_named(int64_t on)
{
	struct sbx_iovec v = {BUF + 0x2000, 64};
	memcpy(sbx_gptr(T.vm, BUF, sizeof(v)), &v, sizeof(v));
	struct sbx_slot s = test_rw_req(SBX_CALL_READV, (int32_t)on, BUF, 1);
	s.u.rw.off = (int64_t)(SBX_RW_SOCK | SBX_RW_NAME);
	return test_call(&T, s);
}

Test(ttys, datagrams_go_to_an_address_and_say_who_sent_them)
{
	int64_t srv = sock(SOCK_DGRAM), cli = sock(SOCK_DGRAM), named = sock(SOCK_DGRAM);
	cr_assert_eq(sun_op(SBX_SOCKOP_BIND, srv, "/w/d.sock"), 0);
	cr_assert_eq(sun_op(SBX_SOCKOP_BIND, named, "@me"), 0);
	/* Nothing staged: the WRITEV is refused, not sent elsewhere. */
	cr_assert_eq(send_named(cli, "x"), -EINVAL);
	cr_assert_eq(sun_op(SBX_SOCKOP_SENDTO, cli, "/w/d.sock"), 0);
	cr_assert_eq(send_named(cli, "one"), 3);
	cr_assert_eq(recv_named(srv), 3);
	cr_assert_eq(sockop(SBX_SOCKOP_NAME_TAKE, srv, ARG, 0), 0, "an unnamed sender");
	cr_assert_eq(sun_op(SBX_SOCKOP_SENDTO, named, "/w/d.sock"), 0);
	cr_assert_eq(send_named(named, "two"), 3);
	cr_assert_eq(recv_named(srv), 3);
	memset(sbx_gptr(T.vm, ARG, 110), 0x55, 110);
	cr_assert_eq(sockop(SBX_SOCKOP_NAME_TAKE, srv, ARG, 0), 2 + 3);
	cr_assert_eq(memcmp(sbx_gptr(T.vm, ARG + 2, 3), "\0me", 3), 0);
	cr_assert_eq(sockop(SBX_SOCKOP_NAME_TAKE, srv, ARG, 0), 0, "taken once");
	/* The reply goes back to the path the server was bound to, from it. */
	cr_assert_eq(sun_op(SBX_SOCKOP_SENDTO, srv, "@me"), 0);
	cr_assert_eq(send_named(srv, "re"), 2);
	cr_assert_eq(recv_named(named), 2);
	int64_t n = sockop(SBX_SOCKOP_NAME_TAKE, named, ARG, 0);
	cr_assert_eq(n, 2 + (int64_t)strlen("/w/d.sock") + 1);
	cr_assert_str_eq((const char *)sbx_gptr(T.vm, ARG + 2, 10), "/w/d.sock");
	/* Errors: no such path, a host socket file never reachable, a stream socket. */
	cr_assert_eq(sun_op(SBX_SOCKOP_SENDTO, cli, "/w/none.sock"), -ENOENT);
	cr_assert_eq(sockop(SBX_SOCKOP_SENDTO, cli, ARG, 2), -EINVAL);
	cr_assert_eq(sockop(SBX_SOCKOP_SENDTO, cli, 1ull << 40, 20), -EFAULT);
	/* A datagram socket connects to it too (the host records no peer for it to check). */
	cr_assert_eq(sun_op(SBX_SOCKOP_CONNECT, cli, "/w/d.sock"), 0);
	int64_t st = sock(SOCK_STREAM);
	cr_assert_eq(sun_op(SBX_SOCKOP_SENDTO, st, "/w/d.sock"), -EOPNOTSUPP);
	cr_assert_eq(sun_op(SBX_SOCKOP_SENDTO, sock(SOCK_SEQPACKET), "@x"), 1,
		     "a seqpacket socket ignores it");
}

Test(ttys, peer_credentials_name_the_pair_maker_and_the_listener)
{
	int64_t pr = call(SBX_CALL_SOCKETPAIR, SOCK_STREAM, 0, 0, 0, 0);
	cr_assert_geq(pr, 0);
	struct ucred c;
	cr_assert_eq(sockop(SBX_SOCKOP_PEERCRED, (int64_t)(pr >> 32), ARG, 0), 0);
	memcpy(&c, sbx_gptr(T.vm, ARG, sizeof(c)), sizeof(c));
	cr_assert_eq((uint32_t)c.pid, T.vm->proc.pid);
	cr_assert_eq(c.uid, T.vm->host.uid);
	int64_t lone = sock(SOCK_STREAM);
	cr_assert_eq(sockop(SBX_SOCKOP_PEERCRED, lone, ARG, 0), 0);
	memcpy(&c, sbx_gptr(T.vm, ARG, sizeof(c)), sizeof(c));
	cr_assert_eq(c.pid, 0);
	cr_assert_eq(c.uid, (uid_t)-1);
	int64_t ls = sock(SOCK_STREAM);
	cr_assert_eq(sun_op(SBX_SOCKOP_BIND, ls, "/w/l.sock"), 0);
	cr_assert_eq(sockop(SBX_SOCKOP_LISTEN, ls, 4, 0), 0);
	cr_assert_eq(sun_op(SBX_SOCKOP_CONNECT, lone, "/w/l.sock"), 0);
	cr_assert_eq(sockop(SBX_SOCKOP_PEERCRED, lone, ARG, 0), 0);
	memcpy(&c, sbx_gptr(T.vm, ARG, sizeof(c)), sizeof(c));
	cr_assert_eq((uint32_t)c.pid, T.vm->proc.pid, "the listener's process");
	int64_t a = sockop(SBX_SOCKOP_ACCEPT, ls, 0, 0);
	cr_assert_geq(a, 0);
	cr_assert_eq(sockop(SBX_SOCKOP_PEERCRED, a, ARG, 0), 0);
	memcpy(&c, sbx_gptr(T.vm, ARG, sizeof(c)), sizeof(c));
	cr_assert_eq((uint32_t)c.pid, T.vm->proc.pid, "the connecting process");
	/* Its own name stays none, whatever the host bound it to. */
	int64_t n = sockop(SBX_SOCKOP_NAME, lone, 0, ARG);
	cr_assert_eq(n, 2);
	cr_assert_eq(sockop(SBX_SOCKOP_PEERCRED, lone, 1ull << 40, 0), -EFAULT);
}

/* 1.21: a read of an empty pipe, and a poll, wait in slices that look for what ends a wait
 * (calls/dispatch.c, sbx_wait_sliced): another process's signal or a stop that comes while
 * they wait, with no kick at all, ends them with EINTR; what is ready is answered first; a
 * read of nothing waits for nothing. */
static int64_t ms_since(int64_t t0)
{
	return (sbx_now_ns(CLOCK_MONOTONIC) - t0) / 1000000;
}

static void *set_later(void *arg)
{
	usleep(100 * 1000);
	struct sbx_bootinfo *b = sbx_gptr(T.vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	if (arg)
		atomic_fetch_or(&T.vm->life.pause_req, SBX_PAUSE_JOB);
	else
		__atomic_or_fetch(&b->sig_incoming, 1ull << (SIGUSR1 - 1), __ATOMIC_SEQ_CST);
	return NULL;
}

/* The call, cut short by what set_later sets 100 ms into it: EINTR well before its end. */
static void cut_short(const char *what, int stop, int64_t (*fn)(int64_t), int64_t fd)
{
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, set_later, stop ? (void *)1 : NULL), 0);
	int64_t t0 = sbx_now_ns(CLOCK_MONOTONIC);
	int64_t r = fn(fd);
	int64_t ms = ms_since(t0);
	pthread_join(th, NULL);
	cr_assert_eq(r, -EINTR, "%s: %lld", what, (long long)r);
	cr_assert_lt(ms, 10000, "%s: cut short, not waited out (%lld ms)", what, (long long)ms);
	struct sbx_bootinfo *b = sbx_gptr(T.vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	__atomic_and_fetch(&b->sig_incoming, 0, __ATOMIC_SEQ_CST);
	atomic_store(&T.vm->life.pause_req, 0);
}

static int64_t read_one(int64_t fd)
{
	return rw(SBX_CALL_READ, fd, NULL, 1);
}

static int64_t poll_long(int64_t fd)
{
	struct pollfd p = {.fd = (int)fd, .events = POLLIN};
	memcpy(sbx_gptr(T.vm, ARG, sizeof(p)), &p, sizeof(p));
	return call(SBX_CALL_POLL, ARG, 1, 60000, 0, 0);
}

Test(ttys, waits_end_for_a_signal_or_a_stop_and_a_read_of_nothing_never_waits)
{
	int64_t pp = call(SBX_CALL_PIPE, 0, 0, 0, 0, 0);
	cr_assert_geq(pp, 0);
	int64_t rd = pp & 0xffffffff, wr = pp >> 32;
	cr_assert_eq(rw(SBX_CALL_READ, rd, NULL, 0), 0, "nothing to read returns at once");
	cut_short("a read, another process's signal", 0, read_one, rd);
	cut_short("a read, a stop", 1, read_one, rd);
	cut_short("a poll, another process's signal", 0, poll_long, rd);
	/* Nothing to end it: a poll lasts its time; what is ready is answered even with a
	 * signal on the way, as Linux's poll answers it. */
	struct pollfd p = {.fd = (int)rd, .events = POLLIN};
	memcpy(sbx_gptr(T.vm, ARG, sizeof(p)), &p, sizeof(p));
	int64_t t0 = sbx_now_ns(CLOCK_MONOTONIC);
	cr_assert_eq(call(SBX_CALL_POLL, ARG, 1, 50, 0, 0), 0);
	cr_assert_geq(ms_since(t0), 45);
	cr_assert_eq(rw(SBX_CALL_WRITE, wr, "x", 1), 1);
	struct sbx_bootinfo *b = sbx_gptr(T.vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	__atomic_or_fetch(&b->sig_incoming, 1ull << (SIGUSR1 - 1), __ATOMIC_SEQ_CST);
	cr_assert_eq(call(SBX_CALL_POLL, ARG, 1, 1000, 0, 0), 1);
	__atomic_and_fetch(&b->sig_incoming, 0, __ATOMIC_SEQ_CST);
	cr_assert_eq(rw(SBX_CALL_READ, rd, NULL, 1), 1);
	cr_assert_eq(*(char *)sbx_gptr(T.vm, BUF, 1), 'x');
}
