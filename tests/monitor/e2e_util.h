/* Shared by the end-to-end tests: run a shell command, keep its output. */
#ifndef SBX_E2E_UTIL_H
#define SBX_E2E_UTIL_H

#define SANDBOX SBX_BUILD_DIR "/sandbox-run"

/* Every command a test runs is bounded: one still running after E2E_CMD_SECONDS is killed
 * with its whole process group (the sandbox's processes too) and gives E2E_TIMED_OUT, its
 * output so far and a line on stderr naming it, so that a hang fails the test that met it
 * instead of holding the whole run. Never reached when things work: the slowest command takes
 * seconds. */
#define E2E_CMD_SECONDS 600
#define E2E_TIMED_OUT 124
/* Another bound for this test's commands (the test of the bound itself); 0: the default. */
void e2e_set_bound(int seconds);
/* stdout of `sh -c cmd` run so, NUL-terminated, and its length in *len (when not NULL); *status
 * is the exit status, 128+signal, or E2E_TIMED_OUT. Free the result. */
char *e2e_run(const char *cmd, int *status, size_t *len);
/* The same with stderr apart: its first errlen - 1 bytes in err. */
char *e2e_run_err(const char *cmd, int *status, size_t *len, char *err, size_t errlen);

/* e2e_run without the length (redirect 2>&1 to get stderr). */
char *e2e_slurp(const char *cmd, int *status);
/* e2e_run_err without the length. */
char *e2e_slurp_err(const char *cmd, int *status, char *err, size_t errlen);
/* Skips the test with a reason when /dev/kvm is not there. */
void e2e_need_kvm(void);
/* Runs cmd as e2e_slurp does and expects its exit status and, in its output, each string of
 * the NULL-ended list. Returns the output for any further check: free it. */
char *e2e_expect_output(const char *cmd, int status, ...) __attribute__((sentinel));
/* Makes the scratch folder dir (a mkdtemp template, filled in) and runs `cd DIR && setup`. */
void e2e_scratch(char *dir, const char *setup);

/* samples/SAMPLE.c built for libc ("glibc", "musl") into buf, or NULL where this build has
 * none (no musl-gcc; glibc's must be there). */
const char *e2e_sample_binary(const char *sample, const char *libc, char *buf, size_t len);
/* `SAMPLE ARGS` under `sandbox-run OPTS`, for both libcs: exit status `status` and exactly
 * `want` on stdout or, with want NULL, the stdout of the same binary run natively, which must
 * exit with `status` too (a check of the test itself). stderr is not compared. */
void e2e_sample_expect(const char *sample, const char *opts, const char *args, int status,
		       const char *want);
/* The same for one prebuilt binary (a Go or Rust program). */
void e2e_binary_expect(const char *bin, const char *opts, const char *args, int status,
		       const char *want);

/* A shell function for e2e_slurp commands: `wait_for 'CONDITION'` evaluates CONDITION until it
 * holds. Tests wait for what they need this way, never for a time; the bound (300 s) only turns
 * a hang into a failure (the command exits 1 naming the condition) and is never reached when
 * things work, however slow the host. No '%' in it: it can go into a printf format. */
#define E2E_SH_WAIT                                                                                \
	"wait_for() { _w=0; until eval \"$1\"; do _w=$((_w + 1)); if [ $_w -ge 15000 ]; then "     \
	"echo \"timed out waiting for: $1\"; exit 1; fi; sleep 0.02; done; }; "

/* A snapshot round trip of `prog ARGS HOLD`, a program that holds its last lines until the
 * file HOLD exists: run under --control with the gate directory at /gate (HOLD /gate/go), once
 * a line matching the grep pattern `ready` is out, the shell snippet `mid` runs ($D the work
 * directory, $D/c the control socket; it may take snapshots of its own), then a stopping
 * snapshot, the gate opens, and the restore runs to the end. Its output: "first 0", "second 0"
 * for the two runs' statuses, "same" when both runs' stdout together are a native run's of
 * `prog ARGS /`, then what `after` prints, then sandbox-ctl's replies and both stderrs. */
char *e2e_snapshot_round_trip(const char *prog, const char *args, const char *ready,
			      const char *mid, const char *after, int *status);

#endif
