/* sandbox-run: the command-line front end. main() reads as the sequence it performs: the policy
 * file, then the flags over it, then the run, the report, and the guest's exit status. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "migrate.h"
#include "cli.h"
#include "persist.h"
#include "sandbox.h"
#include "trace.h"

#define EXIT_USAGE 125

static void usage(FILE *f)
{
	fprintf(f, "usage: sandbox-run [OPTIONS] PROGRAM [ARGS...]\n"
		   "Runs an x86-64 Linux program (static or dynamic) in its own KVM micro-VM.\n"
		   "\n");
	sbx_cli_usage(f);
	fprintf(
	    f,
	    "  --print-policy       print the effective policy as JSON and exit\n"
	    "  --trace-exits[=FILE.json]  trace every VM exit in the kernel with BPF (root) and\n"
	    "                       print a table of them at the end, or write it as JSON\n"
	    "Snapshots and migration (docs/snapshots.md):\n"
	    "  --control SOCK       a control socket for sandbox-ctl (pause, resume, stats,\n"
	    "                       snapshot, migrate)\n"
	    "  --restore FILE       resume a sandbox from a snapshot instead of starting PROGRAM\n"
	    "  --restore-lazy FILE  the same, mapping its RAM copy-on-write without reading it\n"
	    "                       (a compressed snapshot is read in, as --restore does)\n"
	    "  --incoming ADDR      wait on tcp:HOST:PORT or unix:PATH for a live migration\n"
	    "  --migrate-key FILE   the pre-shared key that authenticates the migration stream\n"
	    "  --handshake-timeout DURATION  --incoming: a connection must prove the key\n"
	    "                       within this (default 5s); one that does not is logged and\n"
	    "                       the next awaited (16 failures end it)\n"
	    "  --max-downtime DURATION  live migration's pause target (default 20ms)\n"
	    "  --allow-wider-policy a restore may grant more than the snapshot's policy did\n"
	    "  --snapshot-compress  compress snapshot RAM with zstd (not mappable)\n"
	    "\n"
	    "Exit status: the program's own; 128+N when it was killed by signal N (faults\n"
	    "included); 118-123 when a limit ended it; 125 when the sandbox itself failed.\n");
}

struct front {
	struct sbx_cli cli;
	int print_policy;
	const char *restore, *incoming;
	int restore_flags;
	uint8_t key[MIG_KEY_BYTES];
	int trace_exits;
	const char *trace_json;
	/* The modes of the terminals on stdin, stdout and stderr before the run: the program
	 * may change them (raw mode) and die before it puts them back. */
	struct termios tty[3];
	int tty_saved[3];
	pid_t pgrp; /* sandbox-run's process group, asked before the monitor confines itself */
};

/* sandbox-run's options that the table does not store (the shared ones are in cli.c). */
enum { OWN_RESTORE, OWN_RESTORE_LAZY, OWN_MIGRATE_KEY, OWN_HANDSHAKE, OWN_COMPRESS, OWN_TRACE };

static const struct sbx_cli_opt opts[] = {
    SBX_CLI_FLAG("print-policy", struct front, print_policy),
    SBX_CLI_STRING("control", struct front, cli.cfg.control_path),
    SBX_CLI_OWN("restore", required_argument, OWN_RESTORE),
    SBX_CLI_OWN("restore-lazy", required_argument, OWN_RESTORE_LAZY),
    SBX_CLI_STRING("incoming", struct front, incoming),
    SBX_CLI_OWN("migrate-key", required_argument, OWN_MIGRATE_KEY),
    SBX_CLI_DURATION("max-downtime", struct front, cli.cfg.max_downtime_ms),
    SBX_CLI_OWN("handshake-timeout", required_argument, OWN_HANDSHAKE),
    SBX_CLI_FLAG("allow-wider-policy", struct front, cli.cfg.allow_wider_policy),
    SBX_CLI_OWN("snapshot-compress", no_argument, OWN_COMPRESS),
    SBX_CLI_OWN("trace-exits", optional_argument, OWN_TRACE),
    {0},
};

static int own(void *ctx, int id, const char *arg, char *err, size_t errlen)
{
	struct front *f = ctx;
	int r = 0;
	switch (id) {
	case OWN_RESTORE:
	case OWN_RESTORE_LAZY:
		f->restore = arg;
		f->restore_flags = id == OWN_RESTORE_LAZY ? SBX_RESTORE_LAZY : 0;
		return 0;
	case OWN_MIGRATE_KEY:
		if ((r = mig_key_load(arg, f->key, err, errlen)) < 0)
			return r;
		f->cli.cfg.migrate_key = f->key;
		return 0;
	case OWN_HANDSHAKE:
		if ((r = sbx_cli_duration("--handshake-timeout", arg,
					  &f->cli.cfg.handshake_timeout_ms, err, errlen)) < 0)
			return r;
		if (f->cli.cfg.handshake_timeout_ms > INT_MAX) {
			snprintf(err, errlen, "--handshake-timeout %s: too long", arg);
			return -EINVAL;
		}
		return 0;
	case OWN_COMPRESS:
		f->cli.cfg.snapshot_zstd = 3;
		return 0;
	case OWN_TRACE:
		f->trace_exits = 1;
		f->trace_json = arg;
		return 0;
	}
	return -EINVAL;
}

static const struct sbx_cli_front run_front = {opts, own, usage};

static void print_stats(const struct sbx_result *res)
{
	fprintf(stderr,
		"sandbox-run: stats: setup %.3f ms, run %.3f ms, %llu VM exits, %llu doorbells, "
		"%llu hypercalls (%llu polled), %llu ENOSYS\n",
		res->stats.setup_ms, res->stats.run_ms, (unsigned long long)res->stats.exits,
		(unsigned long long)res->stats.doorbells, (unsigned long long)res->stats.calls,
		(unsigned long long)res->stats.polled, (unsigned long long)res->stats.nosys);
	fprintf(stderr,
		"sandbox-run: stats: %llu syscall sites patched (%llu more found no record left), "
		"%llu cpuid sites rewritten at load, %llu jumps into a patched site\n",
		(unsigned long long)res->stats.patched,
		(unsigned long long)res->stats.patch_refused,
		(unsigned long long)res->stats.cpuid_sites,
		(unsigned long long)res->stats.patch_resumes);
	if (res->stats.procs)
		fprintf(stderr,
			"sandbox-run: stats: %llu other processes: %llu VM exits, %llu doorbells, "
			"%llu hypercalls (%llu polled)\n",
			(unsigned long long)res->stats.procs,
			(unsigned long long)res->stats.procs_exits,
			(unsigned long long)res->stats.procs_doorbells,
			(unsigned long long)res->stats.procs_calls,
			(unsigned long long)res->stats.procs_polled);
	if (res->stats.threads)
		fprintf(
		    stderr,
		    "sandbox-run: stats: %llu threads started (%llu alive at most), %llu VM exits "
		    "of their vCPUs, %llu vCPU parks, %llu unparks, %llu TLB shootdowns\n",
		    (unsigned long long)res->stats.threads,
		    (unsigned long long)res->stats.threads_peak,
		    (unsigned long long)res->stats.thread_exits,
		    (unsigned long long)res->stats.parks, (unsigned long long)res->stats.unparks,
		    (unsigned long long)res->stats.shootdowns);
	fprintf(stderr,
		"sandbox-run: stats: monitor RSS %llu KiB (excluding %llu KiB of guest RAM)\n",
		(unsigned long long)res->stats.monitor_rss_kib,
		(unsigned long long)res->stats.guest_rss_kib);
	if (res->stats.backed_kib)
		fprintf(
		    stderr,
		    "sandbox-run: stats: %llu KiB of the image's data backed ahead of its first "
		    "touch\n",
		    (unsigned long long)res->stats.backed_kib);
	if (res->reported)
		fprintf(stderr, "sandbox-run: stats: fault report built in %.3f ms\n",
			res->stats.report_ms);
}

/* A signal a user sends (Ctrl-C, kill, a closed terminal) stops the sandbox; the monitor then
 * cleans up (--tmp directories, reports) and dies of the same signal, as the program would
 * have. */
static struct sbx_vm *volatile run_vm;
static volatile sig_atomic_t run_signal;

static void on_signal(int sig)
{
	if (!run_signal)
		run_signal = sig;
	struct sbx_vm *vm = run_vm;
	if (vm)
		sbx_vm_interrupt(vm, sig);
}

static const int stop_signals[] = {SIGHUP,  SIGINT,  SIGQUIT, SIGTERM,	 SIGUSR1, SIGUSR2,
				   SIGALRM, SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF};

static void catch_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigfillset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(stop_signals) / sizeof(stop_signals[0]); i++)
		sigaction(stop_signals[i], &sa, NULL);
	/* A write to a closed pipe is the program's EPIPE and SIGPIPE, not the monitor's death. */
	signal(SIGPIPE, SIG_IGN);
}

/* The VM the handler stops; a signal that came before it existed stops it at once. With
 * --control, its socket is bound here, before the monitor confines itself. */
static int hold_vm(struct sbx_vm *vm, void *ctx)
{
	(void)ctx;
	run_vm = vm;
	if (vm && run_signal)
		sbx_vm_interrupt(vm, run_signal);
	if (vm && vm->cfg.control_path) {
		char err[300];
		int r = sbx_control_attach(vm, err, sizeof(err));
		if (r < 0) {
			fprintf(stderr, "sandbox-run: --control %s: %s\n", vm->cfg.control_path,
				err);
			return r;
		}
	}
	return 0;
}

static void save_terminals(struct front *f)
{
	f->pgrp = getpgrp();
	for (int fd = 0; fd < 3; fd++)
		f->tty_saved[fd] = isatty(fd) && tcgetattr(fd, &f->tty[fd]) == 0;
}

/* As soon as the run is over, before anything is printed; only where they changed, and only
 * while sandbox-run is the terminal's foreground job (another job's modes are its own). */
static void restore_terminals(struct front *f)
{
	sigset_t ttou, old;
	sigemptyset(&ttou);
	sigaddset(&ttou, SIGTTOU);
	sigprocmask(SIG_BLOCK, &ttou, &old);
	for (int fd = 0; fd < 3; fd++) {
		struct termios now;
		if (f->tty_saved[fd] && tcgetpgrp(fd) == f->pgrp && tcgetattr(fd, &now) == 0 &&
		    memcmp(&now, &f->tty[fd], sizeof(now)) != 0)
			tcsetattr(fd, TCSADRAIN, &f->tty[fd]);
		f->tty_saved[fd] = 0;
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
}

static void die_of_signal(void)
{
	if (!run_signal)
		return;
	signal(run_signal, SIG_DFL);
	raise(run_signal);
}

/* One line on how the run ended, unless a report said it, or the program ended as quietly as
 * it would natively (its exit, SIGPIPE, a signal to sandbox-run itself). */
static void say_end(const char *what, const struct sbx_result *res)
{
	if (res->end == SBX_END_EXIT || res->end == SBX_END_KILLED || res->reported ||
	    (res->end == SBX_END_SIGNAL && res->signal == SIGPIPE))
		return;
	fprintf(stderr, "sandbox-run: %s: %s\n", what, res->reason);
}

/* --restore and --incoming: the sandbox comes from a file or a stream, then runs as usual. */
static int run_restored(struct front *f, struct sbx_trace *trace, FILE *trace_json)
{
	char err[600];
	struct sbx_vm *vm = NULL;
	const char *what = f->restore ? f->restore : f->incoming;
	f->cli.cfg.name = what;
	int r = f->restore ? sbx_vm_restore(&f->cli.cfg, f->restore, f->restore_flags, &vm, err,
					    sizeof(err))
			   : sbx_vm_incoming(&f->cli.cfg, f->incoming, &vm, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "sandbox-run: %s\n", err);
		return 125;
	}
	if (hold_vm(vm, NULL) < 0) {
		sbx_vm_destroy(vm);
		return 125;
	}
	struct sbx_result res;
	memset(&res, 0, sizeof(res));
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (trace)
		sbx_trace_set_program(trace, sbx_vm_program(vm), f->cli.cfg.debug_file);
	sbx_vm_run(vm, &res);
	restore_terminals(f);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	res.stats.run_ms =
	    (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	hold_vm(NULL, NULL);
	sbx_vm_destroy(vm);
	if (trace)
		sbx_trace_report(trace, trace_json ? NULL : stderr, trace_json, res.stats.run_ms,
				 0);
	say_end(what, &res);
	if (f->cli.stats)
		print_stats(&res);
	return res.status;
}

/* The arguments besides the flags: a program, or --restore or --incoming. 0 or EXIT_USAGE. */
static int check_program(const struct front *f, int argc, char **argv)
{
	if (f->restore && f->incoming) {
		fprintf(stderr, "sandbox-run: --restore and --incoming exclude each other\n");
		return EXIT_USAGE;
	}
	if (optind >= argc && !f->restore && !f->incoming) {
		fprintf(stderr, "sandbox-run: no program given; try 'sandbox-run --help'\n");
		return EXIT_USAGE;
	}
	if (optind < argc && (f->restore || f->incoming)) {
		fprintf(stderr, "sandbox-run: %s brings its own program; '%s' is one too many\n",
			f->restore ? "--restore" : "--incoming", argv[optind]);
		return EXIT_USAGE;
	}
	return 0;
}

/* --trace-exits, before the monitor confines itself (and before a restore, so that the
 * restored vCPU's exits count too); without it the sandbox runs untraced. */
static void open_trace(struct front *f, const char *prog, struct sbx_trace **trace,
		       FILE **trace_json)
{
	char err[512];
	if (!f->trace_exits)
		return;
	if (f->trace_json && !(*trace_json = fopen(f->trace_json, "we"))) {
		fprintf(stderr, "sandbox-run: --trace-exits=%s: %s; the sandbox runs untraced\n",
			f->trace_json, strerror(errno));
		return;
	}
	struct sbx_trace_opts to = {.tgid = getpid(), .pvm = sbx_kvm_is_pvm()};
	if (sbx_trace_open(&to, trace, err, sizeof(err)) < 0)
		fprintf(stderr,
			"sandbox-run: --trace-exits: cannot trace: %s; the sandbox runs "
			"untraced\n",
			err);
	else
		sbx_trace_set_program(*trace, prog, f->cli.cfg.debug_file);
}

int main(int argc, char **argv)
{
	static struct front f;
	char err[512];
	int status = EXIT_USAGE;
	sbx_cli_init(&f.cli, "sandbox-run");
	FILE *audit = NULL, *trace_json = NULL;
	struct sbx_trace *trace = NULL;

	/* 1. The policy file, then the flags over it. */
	int r = sbx_cli_args(&f.cli, argc, argv, &run_front, &f);
	if (r != 0) {
		status = r > 0 ? 0 : EXIT_USAGE;
		goto out;
	}
	/* A dynamic program's default view is part of the effective policy. */
	if (optind < argc && !f.restore && !f.incoming &&
	    (status = sbx_cli_program(&f.cli, argv[optind])) != 0)
		goto out;
	if (f.print_policy) {
		status = policy_write_json(&f.cli.pol, stdout) < 0 ? EXIT_USAGE : 0;
		goto out;
	}
	if ((status = check_program(&f, argc, argv)) != 0)
		goto out;
	status = EXIT_USAGE;
	/* 2. What the policy needs on the host; from here on a signal cleans up first. */
	catch_signals();
	save_terminals(&f);
	for (int fd = 0; fd < 3 && !f.cli.cfg.stop_front; fd++)
		f.cli.cfg.stop_front = isatty(fd) && tcgetpgrp(fd) == f.pgrp;
	if (policy_make_tmp(&f.cli.pol, err, sizeof(err)) < 0 ||
	    sbx_cli_open_audit(&f.cli, &audit, err, sizeof(err)) < 0) {
		fprintf(stderr, "sandbox-run: %s\n", err);
		goto out;
	}
	f.cli.cfg.audit = audit;
	sbx_cli_warn_unconfined(&f.cli);
	/* 3. Tracing. */
	open_trace(&f, argv[optind < argc ? optind : 0], &trace, &trace_json);

	if (f.restore || f.incoming) {
		status = run_restored(&f, trace, trace_json);
		goto out;
	}
	f.cli.cfg.prog = argv[optind];
	f.cli.cfg.argv = argv + optind;
	f.cli.cfg.name = argv[optind];

	/* 4. The run. */
	struct sbx_result res;
	r = sbx_run_with(&f.cli.cfg, &res, hold_vm, NULL);
	restore_terminals(&f);
	status = res.status;
	if (r < 0) {
		fprintf(stderr, "sandbox-run: %s: %s\n", f.cli.cfg.prog, res.reason);
		goto out;
	}
	say_end(f.cli.cfg.prog, &res);
	if (f.cli.stats)
		print_stats(&res);
	if (trace)
		sbx_trace_report(trace, trace_json ? NULL : stderr, trace_json, res.stats.run_ms,
				 0);
out:
	sbx_trace_close(trace);
	if (trace_json)
		fclose(trace_json);
	if (audit)
		fclose(audit);
	policy_free(&f.cli.pol);
	restore_terminals(&f);
	die_of_signal();
	return status;
}
