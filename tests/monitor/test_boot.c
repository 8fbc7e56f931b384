/* Loading a program before its first instruction (monitor/core/boot.c), with a hostile
 * program and a hostile view. No KVM: everything here happens before the vCPU exists. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

/* A program can leave a FIFO in a --rw mount for its next run, at the path its PT_INTERP names:
 * the interpreter is then refused, never waited on (an open for reading waits for a writer,
 * which never comes, and the monitor would hang there). The load runs in a child whose alarm
 * only turns such a hang into a failure; it is never reached when the load returns. */
Test(boot, an_interpreter_that_is_a_fifo_is_refused_not_waited_on)
{
	char dir[] = "/tmp/sbx-boot-XXXXXX", fifo[64], spec[96], err[512] = "";
	cr_assert_not_null(mkdtemp(dir));
	snprintf(fifo, sizeof(fifo), "%s/ld-linux-x86-64.so.2", dir);
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	struct policy pol;
	policy_init(&pol);
	snprintf(spec, sizeof(spec), "%s:/lib64", dir);
	cr_assert_eq(policy_add_mount(&pol, spec, 1, err, sizeof(err)), 0, "%s", err);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		alarm(300);
		struct sbx_vm *vm;
		FILE *log = fopen("/dev/null", "w");
		int r = test_vm_bare(&vm, SBX_SOURCE_DIR "/tests/data/elf/good-interp.elf", &pol,
				     -1, log, err, sizeof(err));
		if (r == 0)
			r = sbx_vm_load(vm, err, sizeof(err));
		fprintf(stderr, "%s\n", err);
		_exit(r < 0 && strstr(err, "is not a regular file") ? 0 : 1);
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	unlink(fifo);
	rmdir(dir);
	policy_free(&pol);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the load %s",
		  WIFSIGNALED(st) ? "hung on the FIFO" : "did not name the FIFO");
}
