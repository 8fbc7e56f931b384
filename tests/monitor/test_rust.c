/* A static Rust program (samples/rust) runs as it does natively: std::thread with joins and
 * a panic caught at join, mpsc channels, Mutex and Condvar, RwLock, Barrier, scoped threads,
 * thread-locals, park/unpark, and std::process::Command from the main thread and from several
 * threads at once. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "e2e_util.h"

#define RUSTWORK SBX_BUILD_DIR "/samples/rustwork"

/* stdout and status of `rustwork ARGS`, natively and under sandbox-run: the same. */
static void same_as_native(const char *args)
{
	e2e_need_kvm();
	if (access(RUSTWORK, X_OK) != 0)
		cr_skip_test(
		    "%s was not built: no `rustc` when cmake ran (scripts/setup.sh installs "
		    "rustc)",
		    RUSTWORK);
	e2e_binary_expect(RUSTWORK, "--ro " RUSTWORK, args, 0, NULL);
}

TestSuite(rust, .timeout = 600);

Test(rust, threads_channels_locks_and_a_caught_panic)
{
	same_as_native("threads");
}

Test(rust, std_process_command_from_threads)
{
	same_as_native("spawn");
}
