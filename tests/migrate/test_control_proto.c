/* The control socket's messages (control_proto.h) over a socketpair: a line and a descriptor go
 * across as one message, a long line is cut but still ends in '\n', and a receiver that wants no
 * descriptor does not keep one. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control_proto.h"

static int sv[2];

static void pair(void)
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void unpair(void)
{
	close(sv[0]);
	close(sv[1]);
}

TestSuite(control_proto, .init = pair, .fini = unpair);

Test(control_proto, a_line_and_its_descriptor_arrive_together)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(mig_ctl_send(sv[0], p[1], MIG_CTL_SNAPSHOT " %s", MIG_CTL_LEAVE_RUNNING), 0);
	char buf[MIG_CTL_LINE_MAX];
	int fd = -2;
	long n = mig_ctl_recv(sv[1], buf, sizeof(buf), &fd, 1000);
	cr_assert_eq(n, (long)strlen("snapshot --leave-running\n"));
	cr_assert_str_eq(buf, "snapshot --leave-running\n");
	cr_assert(mig_ctl_is(buf, MIG_CTL_SNAPSHOT));
	cr_assert_geq(fd, 0);
	/* The descriptor that came is the pipe's write end: what goes in comes out of p[0]. */
	cr_assert_eq(write(fd, "x", 1), 1);
	char c;
	cr_assert_eq(read(p[0], &c, 1), 1);
	cr_assert_eq(c, 'x');
	cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
	close(p[0]);
	close(p[1]);
}

Test(control_proto, a_reply_without_descriptor)
{
	cr_assert_eq(mig_ctl_send(sv[1], -1, MIG_CTL_WROTE " %d pages", 12), 0);
	char buf[64];
	int fd = -2;
	cr_assert_gt(mig_ctl_recv(sv[0], buf, sizeof(buf), &fd, 1000), 0);
	cr_assert_str_eq(buf, "wrote 12 pages\n");
	cr_assert_eq(fd, -1);
	cr_assert(mig_ctl_is(buf, MIG_CTL_WROTE " "));
	cr_assert(!mig_ctl_is(buf, MIG_CTL_OK));
}

Test(control_proto, a_long_line_is_cut_and_still_ends_the_line)
{
	char arg[3 * MIG_CTL_LINE_MAX];
	memset(arg, 'a', sizeof(arg) - 1);
	arg[sizeof(arg) - 1] = 0;
	cr_assert_eq(mig_ctl_send(sv[0], -1, MIG_CTL_MIGRATE " %s", arg), 0);
	char buf[2 * MIG_CTL_LINE_MAX];
	long n = mig_ctl_recv(sv[1], buf, sizeof(buf), NULL, 1000);
	cr_assert_eq(n, MIG_CTL_LINE_MAX - 1, "%ld bytes", n);
	cr_assert_eq(buf[n - 1], '\n');
	cr_assert(!memchr(buf, '\n', (size_t)n - 1));
}

Test(control_proto, a_descriptor_nobody_asked_for_is_closed)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(mig_ctl_send(sv[0], p[0], MIG_CTL_COMMITTED), 0);
	close(p[0]);
	char buf[64];
	cr_assert_gt(mig_ctl_recv(sv[1], buf, sizeof(buf), NULL, 1000), 0);
	cr_assert(mig_ctl_is(buf, MIG_CTL_COMMITTED "\n"));
	/* No read end is left anywhere: a write to the pipe fails with EPIPE. */
	signal(SIGPIPE, SIG_IGN);
	cr_assert_eq(write(p[1], "x", 1), -1);
	cr_assert_eq(errno, EPIPE);
	close(p[1]);
}

Test(control_proto, silence_times_out_and_a_hangup_is_epipe)
{
	char buf[64];
	int fd;
	cr_assert_eq(mig_ctl_recv(sv[1], buf, sizeof(buf), &fd, 10), -ETIMEDOUT);
	cr_assert_eq(fd, -1);
	shutdown(sv[0], SHUT_WR);
	cr_assert_eq(mig_ctl_recv(sv[1], buf, sizeof(buf), &fd, 1000), -EPIPE);
}

Test(control_proto, the_control_socket_is_a_unix_address)
{
	struct mig_addr a;
	char err[256];
	cr_assert_eq(mig_ctl_addr("/run/sbx/ctl.sock", &a, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(a.family, AF_UNIX);
	cr_assert_str_eq(a.path, "/run/sbx/ctl.sock");
	char long_path[300];
	memset(long_path, 'p', sizeof(long_path) - 1);
	long_path[sizeof(long_path) - 1] = 0;
	cr_assert_eq(mig_ctl_addr(long_path, &a, err, sizeof(err)), -ENAMETOOLONG);
	cr_assert(strstr(err, "socket path is 299 bytes"), "%s", err);
}
