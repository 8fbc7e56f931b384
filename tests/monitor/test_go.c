/* A static Go program (samples/go) runs as it does natively: the runtime's threads at start-up,
 * its netpoller (epoll with an eventfd or a pipe) behind every timer, goroutines, channels, GC,
 * encoding/json and os.ReadFile of a file the policy shows. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e_util.h"

#define GOWORK SBX_BUILD_DIR "/samples/gowork"

static void need_go(void)
{
	e2e_need_kvm();
	if (access(GOWORK, X_OK) != 0)
		cr_skip_test("%s was not built: no `go` when cmake ran (scripts/setup.sh installs "
			     "golang-go)",
			     GOWORK);
}

/* stdout and status of `gowork ARGS`, natively and under sandbox-run OPTS: the same (stderr,
 * where the timings go, only shown when they differ). */
static void same_as_native(const char *opts, const char *args, int status)
{
	e2e_binary_expect(GOWORK, opts, args, status, NULL);
}

TestSuite(go, .timeout = 600);

Test(go, timers_goroutines_gc_json_and_readfile)
{
	need_go();
	same_as_native("--ro " GOWORK, "check " GOWORK, 0);
}

Test(go, starts_and_exits)
{
	need_go();
	same_as_native("", "start", 0);
}

Test(go, a_goroutine_pipeline)
{
	need_go();
	same_as_native("", "heavy 20000", 0);
}

/* Go's threads and its netpoller together on one CPU: every goroutine still gets its turn. */
Test(go, one_cpu)
{
	need_go();
	same_as_native("--cpus 1 --ro " GOWORK, "check " GOWORK, 0);
}

/* os/exec: clone(CLONE_VM | CLONE_VFORK) from a thread of a threaded process, then execve, from
 * several goroutines at once; a missing program's error through the child's pipe. */
Test(go, os_exec_from_goroutines)
{
	need_go();
	same_as_native("--ro " GOWORK, "spawn " GOWORK, 0);
}

/* syscall.Exec from a goroutine while the runtime's threads run: a missing program's error
 * with every thread kept, then the new image. */
Test(go, syscall_exec_from_a_goroutine_ends_the_other_threads)
{
	need_go();
	same_as_native("--ro " GOWORK, "reexec " GOWORK, 0);
}

/* A Go program, its runtime's threads parked in futexes and its netpoller's epoll and pipe
 * included, goes on after a live migration as if nothing happened (tests/monitor/migrate.sh
 * go: both outputs together are a native run's). */
Test(go, a_live_migration_keeps_a_go_program)
{
	need_go();
	int st;
	char *o =
	    e2e_slurp(SBX_SOURCE_DIR "/tests/monitor/migrate.sh " SBX_BUILD_DIR " go 2>&1", &st);
	cr_assert_eq(st, 0, "%s", o);
	cr_assert(strstr(o, "PASS"), "%s", o);
	free(o);
}

/* net/http's server and client over the sandbox's loopback, and a dual-stack listener that v4
 * and v6 clients reach from goroutines through the netpoller; 192.0.2.1 is unreachable. */
Test(go, net_http_over_the_loopback)
{
	need_go();
	same_as_native("--ro /etc/hosts", "net", 0);
}
