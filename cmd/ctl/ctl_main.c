/* sandbox-ctl: drives a running sandbox through its control socket (sandbox-run --control).
 * Files and connections are opened here, with the user's rights, and handed to the monitor,
 * which is confined and opens nothing itself. The control socket is connected first: a dead
 * one costs no snapshot file and no migration destination its one connection. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "migrate.h"

/* Exit statuses (usage() says them too). */
#define ST_OK 0
#define ST_FAILED 1	/* the command failed: the monitor said so, or a file or connection */
#define ST_NO_MONITOR 2 /* a usage error, or the monitor unreachable or silent */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sandbox-ctl SOCK COMMAND\n"
		"Commands:\n"
		"  pause                          stop the guest at an instruction boundary\n"
		"  resume                         let it run again\n"
		"  stats                          exits, hypercalls, dirtied pages, run time\n"
		"  snapshot FILE [--leave-running] [--compress]\n"
		"                                 write a snapshot; the sandbox stops unless\n"
		"                                 --leave-running\n"
		"  migrate ADDR                   live-migrate to a sandbox-run --incoming ADDR\n"
		"                                 (tcp:HOST:PORT or unix:PATH)\n"
		"Exit status: 0 when the monitor answered ok; 1 when the command failed (the\n"
		"monitor answered an error, or the snapshot file or the migration destination\n"
		"could not be opened, reached or put in place); 2 for a usage error, or when the\n"
		"monitor could not be reached or closed the connection without an answer.\n");
}

/* The control socket, connected. -1 (said why) when no monitor listens there. */
static int ctl_connect(const char *sock)
{
	struct mig_addr a;
	char spec[200], err[300];
	snprintf(spec, sizeof(spec), "unix:%s", sock);
	if (mig_addr_parse(spec, &a, err, sizeof(err)) < 0) {
		fprintf(stderr, "sandbox-ctl: %s\n", err);
		return -1;
	}
	int c = mig_connect(&a, 5000, err, sizeof(err));
	if (c < 0)
		fprintf(stderr, "sandbox-ctl: %s (is the sandbox running with --control?)\n", err);
	return c;
}

/* The command line, with fd attached if >= 0. */
static int send_cmd(int c, const char *sock, const char *line, int fd)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = {.iov_base = (void *)line, .iov_len = strlen(line)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.b;
		mh.msg_controllen = sizeof(ctl.b);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	if (sendmsg(c, &mh, MSG_NOSIGNAL) < 0) {
		fprintf(stderr, "sandbox-ctl: %s: %s\n", sock, strerror(errno));
		return -1;
	}
	return 0;
}

/* A snapshot's file, between the monitor's "wrote" and the client's "committed". */
struct snap_file {
	int fd;
	char tmp[4096];
	const char *path;
	int committed;
};

/* The monitor wrote the snapshot: the file goes in place, and the monitor is told. */
static void snap_commit(int c, struct snap_file *f)
{
	char err[400];
	if (mig_snap_commit(f->fd, f->tmp, f->path, err, sizeof(err)) < 0) {
		fprintf(stderr, "sandbox-ctl: %s\n", err);
		(void)!send(c, "abort\n", 6, MSG_NOSIGNAL);
		return;
	}
	f->fd = -1; /* the commit closed it */
	f->committed = 1;
	(void)!send(c, "committed\n", 10, MSG_NOSIGNAL);
}

/* Copies the monitor's reply to stdout until it ends; the connection is closed. A snapshot's
 * "wrote" line is answered (not shown). */
static int replies(int c, const char *sock, struct snap_file *f)
{
	FILE *in = fdopen(c, "r");
	if (!in) {
		fprintf(stderr, "sandbox-ctl: %s: %s\n", sock, strerror(errno));
		close(c);
		return ST_NO_MONITOR;
	}
	char buf[1200];
	int status = ST_NO_MONITOR;
	while (fgets(buf, sizeof(buf), in)) {
		if (f && !strncmp(buf, "wrote ", 6)) {
			snap_commit(c, f);
			continue;
		}
		fputs(buf, stdout);
		if (!strncmp(buf, "ok", 2))
			status = ST_OK;
		else if (!strncmp(buf, "error", 5))
			status = ST_FAILED;
	}
	fclose(in);
	if (status == ST_NO_MONITOR)
		fprintf(stderr,
			"sandbox-ctl: %s: the monitor closed the connection without an "
			"answer\n",
			sock);
	return status;
}

static int cmd_snapshot(const char *sock, int argc, char **argv)
{
	struct snap_file f = {.fd = -1};
	int leave = 0, compress = 0;
	char err[400], line[128];
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--leave-running"))
			leave = 1;
		else if (!strcmp(argv[i], "--compress"))
			compress = 1;
		else if (!f.path && argv[i][0] != '-')
			f.path = argv[i];
		else {
			fprintf(stderr, "sandbox-ctl: snapshot: unexpected '%s'\n", argv[i]);
			return ST_NO_MONITOR;
		}
	}
	if (!f.path) {
		fprintf(stderr, "sandbox-ctl: snapshot needs a FILE\n");
		return ST_NO_MONITOR;
	}
	int c = ctl_connect(sock);
	if (c < 0)
		return ST_NO_MONITOR;
	/* Unnamed where the file system allows: if this process is killed before the commit,
	 * the monitor notices the hang-up and stops writing, and nothing is left. */
	f.fd = mig_snap_tmp_open(f.path, f.tmp, sizeof(f.tmp), err, sizeof(err));
	if (f.fd < 0) {
		fprintf(stderr, "sandbox-ctl: %s\n", err);
		close(c);
		return ST_FAILED;
	}
	snprintf(line, sizeof(line), "snapshot%s%s\n", leave ? " --leave-running" : "",
		 compress ? " --compress" : "");
	int st = ST_NO_MONITOR;
	if (send_cmd(c, sock, line, f.fd) < 0)
		close(c);
	else
		st = replies(c, sock, &f);
	if (!f.committed) {
		mig_snap_abort(f.fd, f.tmp);
		return st == ST_OK ? ST_FAILED : st;
	}
	return st;
}

static int cmd_migrate(const char *sock, int argc, char **argv)
{
	char err[400], line[1024];
	if (argc != 4) {
		fprintf(stderr, "sandbox-ctl: migrate needs one ADDR\n");
		return ST_NO_MONITOR;
	}
	struct mig_addr a;
	if (mig_addr_parse(argv[3], &a, err, sizeof(err)) < 0) {
		fprintf(stderr, "sandbox-ctl: %s\n", err);
		return ST_NO_MONITOR;
	}
	int c = ctl_connect(sock);
	if (c < 0)
		return ST_NO_MONITOR;
	int fd = mig_connect(&a, 5000, err, sizeof(err));
	if (fd < 0) {
		fprintf(stderr, "sandbox-ctl: %s\n", err);
		close(c);
		return ST_FAILED;
	}
	snprintf(line, sizeof(line), "migrate %s\n", argv[3]);
	int st = ST_NO_MONITOR;
	if (send_cmd(c, sock, line, fd) < 0)
		close(c);
	else
		st = replies(c, sock, NULL);
	close(fd);
	return st;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return ST_OK;
	}
	if (argc < 3) {
		usage(stderr);
		return ST_NO_MONITOR;
	}
	const char *sock = argv[1], *cmd = argv[2];
	if (!strcmp(cmd, "pause") || !strcmp(cmd, "resume") || !strcmp(cmd, "stats")) {
		if (argc != 3) {
			fprintf(stderr, "sandbox-ctl: %s takes no arguments\n", cmd);
			return ST_NO_MONITOR;
		}
		char line[32];
		snprintf(line, sizeof(line), "%s\n", cmd);
		int c = ctl_connect(sock);
		if (c < 0)
			return ST_NO_MONITOR;
		if (send_cmd(c, sock, line, -1) < 0) {
			close(c);
			return ST_NO_MONITOR;
		}
		return replies(c, sock, NULL);
	}
	if (!strcmp(cmd, "snapshot"))
		return cmd_snapshot(sock, argc, argv);
	if (!strcmp(cmd, "migrate"))
		return cmd_migrate(sock, argc, argv);
	fprintf(stderr, "sandbox-ctl: unknown command '%s'; try 'sandbox-ctl --help'\n", cmd);
	return ST_NO_MONITOR;
}
