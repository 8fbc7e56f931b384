/* Shared by the end-to-end tests: run a shell command, keep its output. */
#ifndef SBX_E2E_UTIL_H
#define SBX_E2E_UTIL_H

#define SANDBOX SBX_BUILD_DIR "/sandbox-run"

/* stdout of `sh -c cmd`, NUL-terminated (redirect 2>&1 to get stderr); *status is the exit
 * status, or 128+signal. Free the result. */
char *e2e_slurp(const char *cmd, int *status);
/* Skips the test with a reason when /dev/kvm is not there. */
void e2e_need_kvm(void);

#endif
