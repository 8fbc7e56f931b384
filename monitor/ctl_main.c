/* sandbox-ctl: drives a running sandbox through its control socket (sandbox-run --control).
 * Files and connections are opened here, with the user's rights, and handed to the monitor,
 * which is confined and opens nothing itself. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "migrate.h"

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
		"Exit status: 0 when the monitor answered ok, 1 when it answered an error, 2 for\n"
		"a usage error or when the monitor could not be reached.\n");
}

/* Sends the command (and fd, if any) and copies the reply to stdout; 0 if it ended "ok". */
static int talk(const char *sock, const char *line, int fd)
{
	struct mig_addr a;
	char spec[200], err[300];
	snprintf(spec, sizeof(spec), "unix:%s", sock);
	if (mig_addr_parse(spec, &a, err, sizeof(err)) < 0) {
		fprintf(stderr, "sandbox-ctl: %s\n", err);
		return 2;
	}
	/* No timeout: a migration may take as long as it takes. */
	int c = mig_connect(&a, 5000, err, sizeof(err));
	if (c < 0) {
		fprintf(stderr, "sandbox-ctl: %s\n", err);
		return 2;
	}
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
		close(c);
		return 2;
	}
	FILE *in = fdopen(c, "r");
	char buf[1200];
	int status = 2;
	while (in && fgets(buf, sizeof(buf), in)) {
		fputs(buf, stdout);
		if (!strncmp(buf, "ok", 2))
			status = 0;
		else if (!strncmp(buf, "error", 5))
			status = 1;
	}
	if (in)
		fclose(in);
	if (status == 2)
		fprintf(stderr,
			"sandbox-ctl: %s: the monitor closed the connection without an "
			"answer\n",
			sock);
	return status;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return 0;
	}
	if (argc < 3) {
		usage(stderr);
		return 2;
	}
	const char *sock = argv[1], *cmd = argv[2];
	char line[1024], err[400];
	if (!strcmp(cmd, "pause") || !strcmp(cmd, "resume") || !strcmp(cmd, "stats")) {
		if (argc != 3) {
			fprintf(stderr, "sandbox-ctl: %s takes no arguments\n", cmd);
			return 2;
		}
		snprintf(line, sizeof(line), "%s\n", cmd);
		return talk(sock, line, -1);
	}
	if (!strcmp(cmd, "snapshot")) {
		const char *file = NULL;
		int leave = 0, compress = 0;
		for (int i = 3; i < argc; i++) {
			if (!strcmp(argv[i], "--leave-running"))
				leave = 1;
			else if (!strcmp(argv[i], "--compress"))
				compress = 1;
			else if (!file && argv[i][0] != '-')
				file = argv[i];
			else {
				fprintf(stderr, "sandbox-ctl: snapshot: unexpected '%s'\n",
					argv[i]);
				return 2;
			}
		}
		if (!file) {
			fprintf(stderr, "sandbox-ctl: snapshot needs a FILE\n");
			return 2;
		}
		char tmp[4096];
		int fd = mig_snap_tmp_open(file, tmp, sizeof(tmp), err, sizeof(err));
		if (fd < 0) {
			fprintf(stderr, "sandbox-ctl: %s\n", err);
			return 2;
		}
		snprintf(line, sizeof(line), "snapshot%s%s\n", leave ? " --leave-running" : "",
			 compress ? " --compress" : "");
		int st = talk(sock, line, fd);
		if (st != 0) {
			mig_snap_abort(fd, tmp);
			return st;
		}
		if (mig_snap_commit(fd, tmp, file, err, sizeof(err)) < 0) {
			mig_snap_abort(fd, tmp);
			fprintf(stderr, "sandbox-ctl: %s\n", err);
			return 1;
		}
		return 0;
	}
	if (!strcmp(cmd, "migrate")) {
		if (argc != 4) {
			fprintf(stderr, "sandbox-ctl: migrate needs one ADDR\n");
			return 2;
		}
		struct mig_addr a;
		if (mig_addr_parse(argv[3], &a, err, sizeof(err)) < 0) {
			fprintf(stderr, "sandbox-ctl: %s\n", err);
			return 2;
		}
		int fd = mig_connect(&a, 5000, err, sizeof(err));
		if (fd < 0) {
			fprintf(stderr, "sandbox-ctl: %s\n", err);
			return 1;
		}
		snprintf(line, sizeof(line), "migrate %s\n", argv[3]);
		int st = talk(sock, line, fd);
		close(fd);
		return st;
	}
	fprintf(stderr, "sandbox-ctl: unknown command '%s'; try 'sandbox-ctl --help'\n", cmd);
	return 2;
}
