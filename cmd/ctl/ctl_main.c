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

#include "control_proto.h"
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
	char err[300];
	if (mig_ctl_addr(sock, &a, err, sizeof(err)) < 0) {
		fprintf(stderr, "sandbox-ctl: %s\n", err);
		return -1;
	}
	int c = mig_connect(&a, MIG_CTL_CONNECT_MS, err, sizeof(err));
	if (c < 0)
		fprintf(stderr, "sandbox-ctl: %s (is the sandbox running with --control?)\n", err);
	return c;
}

/* The command line (no '\n'), with fd attached if >= 0. */
static int send_cmd(int c, const char *sock, const char *line, int fd)
{
	int r = mig_ctl_send(c, fd, "%s", line);
	if (r < 0)
		fprintf(stderr, "sandbox-ctl: %s: %s\n", sock, strerror(-r));
	return r;
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
		(void)mig_ctl_send(c, -1, MIG_CTL_ABORT);
		return;
	}
	f->fd = -1; /* the commit closed it */
	f->committed = 1;
	(void)mig_ctl_send(c, -1, MIG_CTL_COMMITTED);
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
	char buf[MIG_CTL_LINE_MAX];
	int status = ST_NO_MONITOR;
	while (fgets(buf, sizeof(buf), in)) {
		if (f && mig_ctl_is(buf, MIG_CTL_WROTE " ")) {
			snap_commit(c, f);
			continue;
		}
		fputs(buf, stdout);
		if (mig_ctl_is(buf, MIG_CTL_OK))
			status = ST_OK;
		else if (mig_ctl_is(buf, MIG_CTL_ERROR))
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
		if (!strcmp(argv[i], MIG_CTL_LEAVE_RUNNING))
			leave = 1;
		else if (!strcmp(argv[i], MIG_CTL_COMPRESS))
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
	snprintf(line, sizeof(line), MIG_CTL_SNAPSHOT "%s%s",
		 leave ? " " MIG_CTL_LEAVE_RUNNING : "", compress ? " " MIG_CTL_COMPRESS : "");
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
	char err[400], line[MIG_CTL_LINE_MAX];
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
	int fd = mig_connect(&a, MIG_CTL_CONNECT_MS, err, sizeof(err));
	if (fd < 0) {
		fprintf(stderr, "sandbox-ctl: %s\n", err);
		close(c);
		return ST_FAILED;
	}
	snprintf(line, sizeof(line), MIG_CTL_MIGRATE " %s", argv[3]);
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
	if (!strcmp(cmd, MIG_CTL_PAUSE) || !strcmp(cmd, MIG_CTL_RESUME) ||
	    !strcmp(cmd, MIG_CTL_STATS)) {
		if (argc != 3) {
			fprintf(stderr, "sandbox-ctl: %s takes no arguments\n", cmd);
			return ST_NO_MONITOR;
		}
		int c = ctl_connect(sock);
		if (c < 0)
			return ST_NO_MONITOR;
		if (send_cmd(c, sock, cmd, -1) < 0) {
			close(c);
			return ST_NO_MONITOR;
		}
		return replies(c, sock, NULL);
	}
	if (!strcmp(cmd, MIG_CTL_SNAPSHOT))
		return cmd_snapshot(sock, argc, argv);
	if (!strcmp(cmd, MIG_CTL_MIGRATE))
		return cmd_migrate(sock, argc, argv);
	fprintf(stderr, "sandbox-ctl: unknown command '%s'; try 'sandbox-ctl --help'\n", cmd);
	return ST_NO_MONITOR;
}
