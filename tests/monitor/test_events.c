/* Pipes, eventfds and epoll (host objects behind handles, monitor/calls/hc_event.c) as programs
 * see them: samples/events.c's subcommands under sandbox-run give the exit status and stdout of
 * the same binary run natively, for glibc and musl; a snapshot refuses them by name, and a pause
 * during an epoll wait neither ends it early nor loses it. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e_util.h"

#define SAMPLES SBX_BUILD_DIR "/samples"

static void same_as_native(const char *opts, const char *args, int status)
{
	e2e_sample_expect("events", opts, args, status, NULL);
}

/* `events SUB FILE`, FILE a regular file both runs can open: the glibc sample binary, shown
 * read-only at its own path. */
static void with_a_file(const char *sub)
{
	const char *f = SAMPLES "/events-glibc";
	char opts[1024], args[1024];
	snprintf(opts, sizeof(opts), "--ro %s", f);
	snprintf(args, sizeof(args), "%s %s", sub, f);
	same_as_native(opts, args, 0);
}

/* Generous: only a hang reaches it. */
TestSuite(events, .timeout = 600);

Test(events, pipes_carry_bytes_eof_eagain_and_epipe)
{
	same_as_native("", "pipe", 0);
}

/* A monitor with CAP_SYS_RESOURCE escapes Linux's limit on pipe buffers; the sandbox keeps its
 * own: 64 MiB of pipes a process, the 64th 1 MiB grow refused as Linux refuses it (EPERM). */
Test(events, grown_pipes_stop_at_64_mib)
{
	e2e_need_kvm();
	int st;
	char *o = e2e_slurp(SANDBOX " " SAMPLES "/events-musl pipebudget 2>&1", &st);
	cr_assert_eq(st, 0, "%s", o);
	/* 64 of 1 MiB, less the sandbox's stdout if that is a pipe (here: the test's). */
	const char *g = strstr(o, "grown ");
	int n = 0;
	cr_assert(g && sscanf(g, "grown %d", &n) == 1 && n >= 63 && n <= 64, "%s", o);
	cr_assert(strstr(g, ", then EPERM"), "%s", o);
	free(o);
}

Test(events, eventfds_count_and_block_as_linux_does)
{
	same_as_native("", "eventfd", 0);
}

/* Host timerfds behind handles: absolute times on the guest's clocks, reads, poll, epoll. */
Test(events, timerfds_fire_count_and_poll_as_linux_does)
{
	same_as_native("", "timerfd", 0);
}

/* The file epoll_ctl must refuse is a regular file. */
Test(events, epoll_interest_lists_triggers_and_timeouts)
{
	with_a_file("epoll");
}

/* A thread asleep in epoll_wait, a writer blocked on a full pipe, a reader blocked in read()
 * and a sendfile into a full pipe each wait in the monitor without holding up the thread that
 * will wake them. */
Test(events, waits_on_pipes_and_eventfds_across_threads)
{
	with_a_file("threads");
}

Test(events, pingpong_runs)
{
	same_as_native("", "pingpong 200", 0);
}

/* A pause lands while the program waits in epoll_wait: the wait goes on for what is left
 * (never ends early, never returns EINTR). A snapshot that leaves it running holds its pipe and
 * epoll instance, and the program runs on untouched. */
Test(events, a_pause_keeps_an_epoll_wait_and_a_snapshot_holds_a_pipe)
{
	e2e_need_kvm();
	int st;
	char cmd[4096];
	snprintf(cmd, sizeof(cmd),
		 "set -e; " E2E_SH_WAIT "D=$(mktemp -d); P=; "
		 "trap 'kill -9 $P 2>/dev/null || :; rm -rf $D' EXIT; "
		 "%s --control $D/c " SAMPLES "/events-glibc hold > $D/out 2>$D/err & P=$!; "
		 "wait_for \"grep -q holding $D/out\"; " SBX_BUILD_DIR
		 "/sandbox-ctl $D/c pause > $D/ctl 2>&1; sleep 0.4; " SBX_BUILD_DIR
		 "/sandbox-ctl $D/c resume >> $D/ctl 2>&1; " SBX_BUILD_DIR
		 "/sandbox-ctl $D/c snapshot $D/s.snap --leave-running >> $D/ctl 2>&1 || :; "
		 "wait $P; echo status $?; cat $D/ctl $D/out $D/err; test -s $D/s.snap && echo "
		 "a file",
		 SANDBOX);
	char *o = e2e_slurp(cmd, &st);
	cr_assert_eq(st, 0, "%s", o);
	cr_assert(strstr(o, "status 0\n"), "%s", o);
	cr_assert(strstr(o, "10 waits of 300 ms, 0 short\n"), "%s", o);
	cr_assert(strstr(o, "ok snapshot"), "%s", o);
	cr_assert(strstr(o, "a file"), "%s", o);
	cr_assert_null(strstr(o, "WRONG"), "%s", o);
	free(o);
}

/* Pipes (bytes in flight, more of them than Linux's default size holds in one grown with
 * F_SETPIPE_SZ, a reader gone, O_NONBLOCK), socket pairs (bytes queued), an eventfd's
 * count and a dup sharing it,
 * an epoll's interest list (not the registration of a descriptor closed since): a snapshot
 * holds them, and the restored program finds each as a native run does, line for line. The
 * snapshot is taken twice, left running and then stopping, and both restore alike. */
Test(events, a_snapshot_holds_pipes_eventfds_and_epoll)
{
	e2e_need_kvm();
	int st;
	char *o = e2e_snapshot_round_trip(
	    SAMPLES "/events-glibc", "snap 300", "^beat 100$",
	    SBX_BUILD_DIR "/sandbox-ctl $D/c snapshot $D/l.snap --leave-running > $D/ctl",
	    SANDBOX " --restore $D/l.snap --ro $D/gate:/gate > $D/c2 2>$D/ec && echo third 0; "
		    "tail -8 $D/n > $D/n8; tail -8 $D/c2 | cmp - $D/n8 && echo same again; "
		    "cat $D/ec $D/b",
	    &st);
	cr_assert_eq(st, 0, "%s", o);
	cr_assert(strstr(o, "first 0\n"), "%s", o);
	cr_assert(strstr(o, "second 0\n"), "%s", o);
	cr_assert(strstr(o, "third 0\n"), "%s", o);
	cr_assert(strstr(o, "same\n"), "%s", o);
	cr_assert(strstr(o, "same again\n"), "%s", o);
	cr_assert(strstr(o, "pipe: 9 \"in flight\""), "%s", o);
	cr_assert(strstr(o, "grown pipe: size 262144, 200000 bytes as written"), "%s", o);
	cr_assert_null(strstr(o, "WRONG"), "%s", o);
	free(o);
}
