/* The control socket (--control SOCK): sandbox-ctl's way into a running sandbox. One client at
 * a time sends one command line, with a file descriptor attached for the commands that write
 * somewhere (the snapshot file, the connection to a migration destination): the client opens
 * them with its own rights, so the confined monitor never opens a path or a connection itself.
 * Replies are lines; the last starts with "ok" or "error". A snapshot has one step more: the
 * monitor says "wrote N pages" and waits for the client's "committed" (the file is in place)
 * before it stops the sandbox. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "migrate.h"
#include "calls.h"
#include "persist.h"

#define SBX_PAUSE_TIMEOUT_MS 5000
/* A client has this long to send its command once connected: sandbox-ctl connects here before
 * it connects to a migration destination (up to 5 s), so that a dead socket costs no
 * destination its connection. */
#define SBX_COMMAND_WAIT_MS 15000
#define SBX_COMMIT_TIMEOUT_MS 60000 /* from "wrote" to the client's "committed" */

static void reply(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(int fd, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	(void)!send(fd, line, (size_t)n, MSG_NOSIGNAL);
}

static double ms_between(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

static void cmd_stats(struct sbx_vm *vm, int c)
{
	static const char *const exit_names[64] = {[KVM_EXIT_IO] = "io",
						   [KVM_EXIT_MMIO] = "mmio",
						   [KVM_EXIT_HLT] = "hlt",
						   [KVM_EXIT_SHUTDOWN] = "shutdown",
						   [KVM_EXIT_INTR] = "intr",
						   [KVM_EXIT_INTERNAL_ERROR] = "internal",
						   [KVM_EXIT_FAIL_ENTRY] = "fail_entry"};
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	reply(c, "run time: %.1f ms%s", ms_between(&vm->life.first_run_at, &now),
	      vm->life.paused ? " (paused)" : "");
	char line[900];
	size_t o = 0;
	for (int i = 0; i < 64; i++) {
		if (!vm->proc.vcpu.exit_count[i])
			continue;
		int w = snprintf(line + o, sizeof(line) - o, ", %s %llu",
				 exit_names[i] ? exit_names[i] : "other",
				 (unsigned long long)vm->proc.vcpu.exit_count[i]);
		if (w < 0 || (size_t)w >= sizeof(line) - o)
			break;
		o += (size_t)w;
	}
	line[o] = 0;
	reply(c, "exits: %llu%s", (unsigned long long)vm->stats.exits, line);
	o = 0;
	line[0] = 0;
	uint64_t total = 0;
	for (int i = 0; i < SBX_CALL_COUNT; i++) {
		if (!vm->call_count[i])
			continue;
		total += vm->call_count[i];
		const char *n = sbx_call_name(i);
		int w = n ? snprintf(line + o, sizeof(line) - o, ", %s %llu", n,
				     (unsigned long long)vm->call_count[i])
			  : snprintf(line + o, sizeof(line) - o, ", call%d %llu", i,
				     (unsigned long long)vm->call_count[i]);
		if (w < 0 || (size_t)w >= sizeof(line) - o)
			break;
		o += (size_t)w;
	}
	reply(c, "hypercalls: %llu%s", (unsigned long long)total, line);
	reply(c, "ring: %llu polled, %llu doorbells", (unsigned long long)vm->stats.polled,
	      (unsigned long long)vm->stats.doorbells);
	int64_t d = sbx_dirty_peek(vm);
	if (d >= 0)
		reply(c, "pages dirtied: %lld since dirty tracking started", (long long)d);
	else
		reply(c, "pages dirtied: %llu resident (dirty tracking is off)",
		      (unsigned long long)sbx_resident_pages(vm));
	reply(c, "ok");
}

/* After the snapshot is written, the client puts the file in place and says "committed". A
 * client that hangs up, says anything else or nothing within this has not: the sandbox then
 * runs on rather than stop with its snapshot lost. */
static int client_committed(int c)
{
	char buf[64];
	struct pollfd p = {.fd = c, .events = POLLIN};
	if (poll(&p, 1, SBX_COMMIT_TIMEOUT_MS) <= 0)
		return 0;
	ssize_t n = recv(c, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	return !strncmp(buf, "committed\n", 10);
}

/* The snapshot, in two steps with the client (sandbox-ctl) that holds the file: the monitor
 * writes it and says "wrote"; the client puts it in place and says "committed"; only then does
 * a sandbox that was asked to stop stop. A client that hangs up while the file is written
 * abandons the write at once. */
static void cmd_snapshot(struct sbx_vm *vm, int c, int fd, const char *args)
{
	int leave = strstr(args, "--leave-running") != NULL;
	if (fd < 0) {
		reply(c, "error: snapshot: no file descriptor came with the command");
		return;
	}
	struct timespec t0, t1, t2;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int was_paused;
	int r = sbx_pause_hold(vm, SBX_PAUSE_TIMEOUT_MS, &was_paused);
	if (r < 0) {
		reply(c, "error: cannot pause: %s",
		      r == -ETIMEDOUT ? "the vCPU did not stop within 5 s (a host call in "
					"progress?)"
				      : "the sandbox is not running");
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	char err[512];
	uint64_t pages = 0;
	int zstd = strstr(args, "--compress") ? 3 : vm->cfg.snapshot_zstd;
	r = sbx_snapshot_write_fd(vm, fd, zstd, c, &pages, err, sizeof(err));
	/* A sandbox that stops here must be on disk first: sandbox-ctl's commit fsyncs again,
	 * but by then there is nothing left to go back to. */
	if (r == 0 && !leave && fsync(fd) < 0) {
		snprintf(err, sizeof(err), "fsync: %s", strerror(errno));
		r = -EIO;
	}
	clock_gettime(CLOCK_MONOTONIC, &t2);
	if (r < 0) {
		sbx_pause_release(vm, was_paused);
		/* The client may never come back to remove a named temporary (a file system
		 * without O_TMPFILE): it keeps no room. */
		(void)!ftruncate(fd, 0);
		if (r == -ECANCELED)
			sbx_logf(vm,
				 "snapshot abandoned: sandbox-ctl hung up while it was written; "
				 "the sandbox runs on");
		reply(c, "error: snapshot: %s", err);
		return;
	}
	if (leave)
		sbx_pause_release(vm, was_paused); /* the guest is not needed for the commit */
	reply(c, "wrote %llu pages", (unsigned long long)pages);
	if (!client_committed(c)) {
		if (!leave)
			sbx_pause_release(vm, was_paused);
		sbx_logf(vm,
			 "snapshot: sandbox-ctl did not put the file in place; the sandbox runs "
			 "on");
		reply(c, "error: snapshot: the file was not put in place; the sandbox runs on");
		return;
	}
	if (!leave) {
		sbx_vm_kill(vm, SBX_END_DETACHED, 0, 0, "stopped after a snapshot (%llu pages)",
			    (unsigned long long)pages);
		sbx_vm_resume(vm); /* the vCPU thread sees the kill and ends */
	}
	reply(c, "ok snapshot: %llu pages, %.1f MiB of RAM, written in %.1f ms (pause %.1f ms)%s",
	      (unsigned long long)pages, (double)pages * 4096 / 1048576, ms_between(&t1, &t2),
	      ms_between(&t0, &t2), leave ? "; the sandbox runs on" : "; the sandbox stopped");
}

static void serve(struct sbx_vm *vm, int c)
{
	char buf[1024];
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf) - 1};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = ctl.b,
			    .msg_controllen = sizeof(ctl.b)};
	struct pollfd p = {.fd = c, .events = POLLIN};
	if (poll(&p, 1, SBX_COMMAND_WAIT_MS) <= 0)
		return;
	ssize_t n = recvmsg(c, &mh, MSG_CMSG_CLOEXEC);
	if (n <= 0)
		return;
	buf[n] = 0;
	int fd = -1;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int)) && fd < 0)
			memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	buf[strcspn(buf, "\r\n")] = 0;
	char *args = buf + strcspn(buf, " ");
	if (*args)
		*args++ = 0;
	if (!strcmp(buf, "pause")) {
		int r = sbx_vm_pause(vm, SBX_PAUSE_TIMEOUT_MS);
		if (r < 0)
			reply(c, "error: cannot pause: %s", strerror(-r));
		else
			reply(c, "ok paused");
	} else if (!strcmp(buf, "resume")) {
		sbx_vm_resume(vm);
		reply(c, "ok resumed");
	} else if (!strcmp(buf, "stats")) {
		cmd_stats(vm, c);
	} else if (!strcmp(buf, "snapshot")) {
		cmd_snapshot(vm, c, fd, args);
	} else if (!strcmp(buf, "migrate")) {
		char msg[512] = "";
		int r = fd < 0 ? -EBADF : sbx_migrate_out(vm, fd, args, msg, sizeof(msg));
		fd = -1; /* the stream owns it */
		if (r == -EBADF && !msg[0])
			snprintf(msg, sizeof(msg), "no connection came with the command");
		reply(c, "%s %s", r < 0 ? "error: migrate:" : "ok", msg);
	} else {
		reply(c, "error: unknown command '%.40s' (pause, resume, stats, snapshot, migrate)",
		      buf);
	}
	if (fd >= 0)
		close(fd);
}

static void *control_main(void *arg)
{
	struct sbx_vm *vm = arg;
	while (!atomic_load(&vm->control->stop) && !atomic_load(&vm->life.stopping)) {
		struct pollfd p = {.fd = vm->control->fd, .events = POLLIN};
		if (poll(&p, 1, 100) <= 0)
			continue;
		int c = accept4(vm->control->fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		serve(vm, c);
		close(c);
	}
	return NULL;
}

static int control_run(struct sbx_vm *vm, char *err, size_t errlen)
{
	struct sbx_control *c = vm->control;
	if (c->started)
		return 0; /* a second run, after a reset */
	atomic_store(&c->stop, 0);
	int e = pthread_create(&c->thread, NULL, control_main, vm);
	if (e) {
		snprintf(err, errlen, "cannot start the control thread: %s", strerror(e));
		return -e;
	}
	c->started = 1;
	return 0;
}

/* A snapshot or migration in progress finishes (or fails) before anything goes away. */
static void control_end(struct sbx_vm *vm)
{
	struct sbx_control *c = vm->control;
	if (c->started) {
		atomic_store(&c->stop, 1);
		pthread_join(c->thread, NULL);
		c->started = 0;
	}
}

static void control_close(struct sbx_vm *vm)
{
	struct sbx_control *c = vm->control;
	control_end(vm);
	if (c->fd >= 0) {
		close(c->fd);
		/* Landlock may refuse outside the mounts; a stale socket is replaced next time. */
		unlink(vm->cfg.control_path);
	}
	free(c);
	vm->control = NULL;
}

int sbx_control_attach(struct sbx_vm *vm, char *err, size_t errlen)
{
	struct mig_addr a;
	char spec[sizeof(a.path) + 8];
	snprintf(spec, sizeof(spec), "unix:%s", vm->cfg.control_path);
	int r = mig_addr_parse(spec, &a, err, errlen);
	if (r < 0)
		return r;
	struct sbx_control *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* Bound now, before the monitor confines itself; served from a thread once it has. */
	c->fd = mig_listen(&a, err, errlen);
	if (c->fd < 0) {
		r = c->fd;
		free(c);
		return r;
	}
	vm->control = c;
	vm->hooks.run_start = control_run;
	vm->hooks.run_end = control_end;
	vm->hooks.close = control_close;
	return 0;
}
