/* sandbox-stat PID|SOCK: the VM exits of a running sandbox, refreshed once a second, as
 * `perf kvm stat live` shows them for a whole host (docs/tracing.md). */
#include <dirent.h>
#include <errno.h>
#include <sys/syscall.h>
#include <poll.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "sandbox.h"
#include "trace.h"

static volatile sig_atomic_t sbx_stat_stop;

static void on_signal(int sig)
{
	(void)sig;
	sbx_stat_stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: sandbox-stat [OPTIONS] PID|SOCK\n"
		   "Shows the VM exits of a running sandbox-run, refreshed, until interrupted.\n"
		   "PID is the sandbox-run process; SOCK its control socket (--control).\n"
		   "  -i, --interval SECONDS  between refreshes (default 1)\n"
		   "  -n, --count N           stop after N refreshes\n"
		   "  -p, --prog ELF          the guest program, for symbols (default: from the\n"
		   "                          command line of PID)\n"
		   "      --json FILE         also append each refresh to FILE as JSON\n"
		   "  -h, --help              this text\n");
}

/* The process behind a control socket: its peer credentials name it. */
static int peer_pid(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(a.sun_path)) {
		snprintf(err, errlen, "%s: socket path too long", path);
		return -ENAMETOOLONG;
	}
	memcpy(a.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: connect: %s", path, strerror(e));
		if (fd >= 0)
			close(fd);
		return -e;
	}
	struct ucred cr;
	socklen_t len = sizeof(cr);
	int r = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len);
	int e = errno;
	close(fd);
	if (r < 0) {
		snprintf(err, errlen, "%s: SO_PEERCRED: %s", path, strerror(e));
		return -e;
	}
	return cr.pid;
}

/* The thread group of pid (a thread id works too). */
static int tgid_of(int pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "re");
	int tgid = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	if (f)
		fclose(f);
	return tgid;
}

/* How many vCPU files the process holds: a sandbox has one per vCPU. */
static int count_vcpus(int pid)
{
	char path[64], link[PATH_MAX], target[256];
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	DIR *d = opendir(path);
	if (!d)
		return -errno;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		snprintf(link, sizeof(link), "%s/%s", path, e->d_name);
		ssize_t l = readlink(link, target, sizeof(target) - 1);
		if (l <= 0)
			continue;
		target[l] = 0;
		n += strncmp(target, "anon_inode:kvm-vcpu:", 20) == 0;
	}
	closedir(d);
	return n;
}

/* sandbox-run's options that take a separate value: skipped when looking for the program. */
static int takes_value(const char *opt)
{
	static const char *const with_value[] = {
	    "--ro",	     "--rw",	       "--cwd",	       "--env",		"--env-pass",
	    "--tmp",	     "--mem",	       "--cpu-time",   "--timeout",	"--max-output",
	    "--max-write",   "--max-files",    "--audit",      "--cpl",		"--io-poll",
	    "--report-json", "--core",	       "--debug-file", "--policy",	"--control",
	    "--restore",     "--restore-lazy", "--incoming",   "--migrate-key", "--max-downtime",
	};
	for (size_t i = 0; i < sizeof(with_value) / sizeof(with_value[0]); i++)
		if (strcmp(opt, with_value[i]) == 0)
			return 1;
	return 0;
}

/* The guest program of a sandbox-run process: its first operand, seen from its cwd. */
static int program_of(int pid, char *out, size_t len)
{
	char path[64], buf[8192];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *end = buf + n;
	const char *a = buf + strlen(buf) + 1; /* skip argv[0] */
	for (; a < end; a += strlen(a) + 1) {
		if (strcmp(a, "--") == 0) {
			a += strlen(a) + 1;
			break;
		}
		if (a[0] != '-')
			break;
		if (takes_value(a))
			a += strlen(a) + 1;
	}
	if (a >= end)
		return -ENOENT;
	if (a[0] == '/')
		snprintf(out, len, "/proc/%d/root%s", pid, a);
	else
		snprintf(out, len, "/proc/%d/cwd/%s", pid, a);
	return access(out, R_OK) == 0 ? 0 : -errno;
}

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"interval", required_argument, 0, 'i'}, {"count", required_argument, 0, 'n'},
	    {"prog", required_argument, 0, 'p'},     {"json", required_argument, 0, 'j'},
	    {"help", no_argument, 0, 'h'},	     {0, 0, 0, 0},
	};
	double interval = 1.0;
	long count = -1;
	const char *prog = NULL, *json_path = NULL;
	char err[512], progbuf[PATH_MAX];
	int c;
	while ((c = getopt_long(argc, argv, "i:n:p:h", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			interval = strtod(optarg, NULL);
			if (!(interval >= 0.05 && interval <= 3600)) {
				fprintf(stderr,
					"sandbox-stat: --interval %s: expected seconds "
					"between 0.05 and 3600\n",
					optarg);
				return 2;
			}
			break;
		case 'n':
			count = strtol(optarg, NULL, 10);
			if (count <= 0) {
				fprintf(stderr,
					"sandbox-stat: --count %s: expected a positive "
					"number\n",
					optarg);
				return 2;
			}
			break;
		case 'p':
			prog = optarg;
			break;
		case 'j':
			json_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "sandbox-stat: try 'sandbox-stat --help'\n");
			return 2;
		}
	}
	if (optind + 1 != argc) {
		usage(stderr);
		return 2;
	}

	/* 1. Which process: a PID, or the peer of a control socket. */
	const char *target = argv[optind];
	char *endp;
	long pid = strtol(target, &endp, 10);
	if (*target == 0 || *endp != 0) {
		int p = peer_pid(target, err, sizeof(err));
		if (p < 0) {
			fprintf(stderr, "sandbox-stat: %s\n", err);
			return 1;
		}
		pid = p;
	}
	int tgid = pid > 0 && pid <= INT_MAX ? tgid_of((int)pid) : -1;
	if (tgid <= 0) {
		fprintf(stderr, "sandbox-stat: %s: no such process\n", target);
		return 1;
	}
	int nvcpu = count_vcpus(tgid);
	if (nvcpu < 0) {
		fprintf(stderr, "sandbox-stat: %d: cannot read its file descriptors: %s\n", tgid,
			strerror(-nvcpu));
		return 1;
	}
	if (nvcpu == 0) {
		fprintf(stderr, "sandbox-stat: %d: has no vCPU: not a running sandbox\n", tgid);
		return 1;
	}
	if (!prog && program_of(tgid, progbuf, sizeof(progbuf)) == 0)
		prog = progbuf;

	/* 2. The BPF program, filtered to it. */
	struct sbx_trace *t;
	struct sbx_trace_opts to = {.tgid = tgid, .pvm = sbx_kvm_is_pvm()};
	if (sbx_trace_open(&to, &t, err, sizeof(err)) < 0) {
		fprintf(stderr, "sandbox-stat: cannot trace: %s\n", err);
		return 1;
	}
	sbx_trace_set_program(t, prog, NULL);
	FILE *json = NULL;
	if (json_path && !(json = fopen(json_path, "ae"))) {
		fprintf(stderr, "sandbox-stat: --json %s: %s\n", json_path, strerror(errno));
		sbx_trace_close(t);
		return 1;
	}
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	/* 3. The table, once per interval, until interrupted or the sandbox ends. */
	int tty = isatty(1);
	double last = now_ms();
	/* A pidfd turns readable when the process ends (a zombie too, and it cannot be a reused
	 * pid): the wait for the next interval ends early then. */
	int pidfd = (int)syscall(SYS_pidfd_open, tgid, 0);
	for (long i = 0; count < 0 || i < count; i++) {
		int gone = 0;
		if (pidfd >= 0) {
			double until = now_ms() + interval * 1e3;
			while (!sbx_stat_stop && !gone) {
				double left = until - now_ms();
				if (left <= 0)
					break;
				struct pollfd p = {.fd = pidfd, .events = POLLIN};
				gone = poll(&p, 1, (int)(left + 1)) > 0;
			}
		} else {
			struct timespec ts = {(time_t)interval,
					      (long)((interval - (double)(time_t)interval) * 1e9)};
			while (!sbx_stat_stop && nanosleep(&ts, &ts) < 0 && errno == EINTR)
				;
			gone = kill(tgid, 0) < 0 && errno == ESRCH;
		}
		double t1 = now_ms();
		if (tty)
			fputs("\033[H\033[2J", stdout);
		printf("sandbox-stat: sandbox-run %d%s%s, last %.1f s\n", tgid, prog ? ": " : "",
		       prog ? prog : "", (t1 - last) / 1e3);
		sbx_trace_report(t, stdout, json, t1 - last, 1);
		fflush(stdout);
		last = t1;
		if (gone) {
			printf("sandbox-stat: sandbox-run %d has ended\n", tgid);
			break;
		}
		if (sbx_stat_stop)
			break;
	}
	if (pidfd >= 0)
		close(pidfd);
	if (json)
		fclose(json);
	sbx_trace_close(t);
	return 0;
}
