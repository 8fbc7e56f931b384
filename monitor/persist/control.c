/* The control socket (--control SOCK): sandbox-ctl's way into a running sandbox. One client at
 * a time sends one command line, with a file descriptor attached for the commands that write
 * somewhere (the snapshot file, the connection to a migration destination): the client opens
 * them with its own rights, so the confined monitor never opens a path or a connection itself.
 * The protocol (commands, replies, the snapshot's "wrote"/"committed", limits and timeouts) is
 * migrate/control_proto.h, which sandbox-ctl speaks too. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "control_proto.h"
#include "calls.h"
#include "persist.h"

/* A reply line; a client that hung up notices nothing missing. */
#define reply(c, ...) ((void)mig_ctl_send((c), -1, __VA_ARGS__))

static double ms_between(const struct timespec *a, const struct timespec *b)
{
	return (double)(sbx_ts_ns(b) - sbx_ts_ns(a)) / 1e6;
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
	      sbx_vm_job_stopped(vm) ? " (stopped by a signal)"
	      : vm->life.paused	     ? " (paused)"
				     : "");
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
	reply(c, MIG_CTL_OK);
}

/* After the snapshot is written, the client puts the file in place and says "committed". A
 * client that hangs up, says anything else or nothing within this has not: the sandbox then
 * runs on rather than stop with its snapshot lost. */
static int client_committed(int c)
{
	char buf[64];
	if (mig_ctl_recv(c, buf, sizeof(buf), NULL, MIG_CTL_COMMIT_WAIT_MS) <= 0)
		return 0;
	return mig_ctl_is(buf, MIG_CTL_COMMITTED "\n");
}

/* The snapshot, in two steps with the client (sandbox-ctl) that holds the file: the monitor
 * writes it and says "wrote"; the client puts it in place and says "committed"; only then does
 * a sandbox that was asked to stop stop. A client that hangs up while the file is written
 * abandons the write at once. */
static void cmd_snapshot(struct sbx_vm *vm, int c, int fd, const char *args)
{
	int leave = strstr(args, MIG_CTL_LEAVE_RUNNING) != NULL;
	if (fd < 0) {
		reply(c, MIG_CTL_ERROR ": snapshot: no file descriptor came with the command");
		return;
	}
	struct timespec t0, t1, t2;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int was_paused;
	int r = sbx_pause_hold(vm, MIG_CTL_PAUSE_MS, &was_paused);
	if (r == -ETIMEDOUT)
		reply(c,
		      MIG_CTL_ERROR ": cannot pause: the vCPUs did not stop within %d s (a host "
				    "call in progress?)",
		      MIG_CTL_PAUSE_MS / 1000);
	else if (r < 0)
		reply(c, MIG_CTL_ERROR ": cannot pause: the sandbox is not running");
	if (r < 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	char err[512];
	uint64_t pages = 0;
	int zstd = strstr(args, MIG_CTL_COMPRESS) ? 3 : vm->cfg.snapshot_zstd;
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
		reply(c, MIG_CTL_ERROR ": snapshot: %s", err);
		return;
	}
	if (leave)
		sbx_pause_release(vm, was_paused); /* the guest is not needed for the commit */
	reply(c, MIG_CTL_WROTE " %llu pages", (unsigned long long)pages);
	if (!client_committed(c)) {
		if (!leave)
			sbx_pause_release(vm, was_paused);
		sbx_logf(vm,
			 "snapshot: sandbox-ctl did not put the file in place; the sandbox runs "
			 "on");
		reply(c, MIG_CTL_ERROR
		      ": snapshot: the file was not put in place; the sandbox runs on");
		return;
	}
	if (!leave) {
		sbx_vm_kill(vm, SBX_END_DETACHED, 0, 0, "stopped after a snapshot (%llu pages)",
			    (unsigned long long)pages);
		sbx_vm_resume(vm); /* the vCPU thread sees the kill and ends */
	}
	reply(c,
	      MIG_CTL_OK
	      " snapshot: %llu pages, %.1f MiB of RAM, written in %.1f ms (pause %.1f ms)%s",
	      (unsigned long long)pages, (double)pages * 4096 / 1048576, ms_between(&t1, &t2),
	      ms_between(&t0, &t2), leave ? "; the sandbox runs on" : "; the sandbox stopped");
}

static void serve(struct sbx_vm *vm, int c)
{
	char buf[MIG_CTL_LINE_MAX];
	int fd;
	if (mig_ctl_recv(c, buf, sizeof(buf), &fd, MIG_CTL_COMMAND_WAIT_MS) <= 0)
		return;
	buf[strcspn(buf, "\r\n")] = 0;
	char *args = buf + strcspn(buf, " ");
	if (*args)
		*args++ = 0;
	if (!strcmp(buf, MIG_CTL_PAUSE)) {
		int r = sbx_vm_pause(vm, MIG_CTL_PAUSE_MS);
		if (r < 0)
			reply(c, MIG_CTL_ERROR ": cannot pause: %s", strerror(-r));
		else
			reply(c, MIG_CTL_OK " paused");
	} else if (!strcmp(buf, MIG_CTL_RESUME)) {
		sbx_vm_resume(vm);
		reply(c, MIG_CTL_OK " resumed");
	} else if (!strcmp(buf, MIG_CTL_STATS)) {
		cmd_stats(vm, c);
	} else if (!strcmp(buf, MIG_CTL_SNAPSHOT)) {
		cmd_snapshot(vm, c, fd, args);
	} else if (!strcmp(buf, MIG_CTL_MIGRATE)) {
		char msg[512] = "";
		int r = fd < 0 ? -EBADF : sbx_migrate_out(vm, fd, args, msg, sizeof(msg));
		fd = -1; /* the stream owns it */
		if (r == -EBADF && !msg[0])
			snprintf(msg, sizeof(msg), "no connection came with the command");
		reply(c, "%s %s", r < 0 ? MIG_CTL_ERROR ": migrate:" : MIG_CTL_OK, msg);
	} else {
		reply(c, MIG_CTL_ERROR ": unknown command '%.40s' (" MIG_CTL_COMMANDS ")", buf);
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
	if (e)
		return sbx_fail(err, errlen, -e, "cannot start the control thread: %s",
				strerror(e));
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
	int r = mig_ctl_addr(vm->cfg.control_path, &a, err, errlen);
	if (r < 0)
		return r;
	struct sbx_control *c = calloc(1, sizeof(*c));
	if (!c)
		return sbx_fail(err, errlen, -ENOMEM, "out of memory");
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
