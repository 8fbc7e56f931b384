/* A stand-in for the sbx_exec engine that runs the handler natively with fork+exec (no VM, no
 * isolation): sandbox-serve-fake, for working on the HTTP and CGI layers without /dev/kvm.
 * Never a substitute for the real engine in the tests that check isolation. */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "exec.h"
#include "sandbox.h"

struct sbx_exec {
	struct sbx_config cfg;
	struct sbx_exec_opts o;
	atomic_int pid;
	atomic_int killed;
};

int sbx_exec_open(const struct sbx_config *cfg, const struct sbx_exec_opts *o,
		  struct sbx_exec **out, char *err, size_t errlen)
{
	struct sbx_exec *x = calloc(1, sizeof(*x));
	if (!x) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	x->cfg = *cfg;
	x->o = *o;
	*out = x;
	return 0;
}

int sbx_exec_one(struct sbx_exec *x, struct sbx_exec_run *run, char *err, size_t errlen)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(&run->res, 0, sizeof(run->res));
	atomic_store(&x->killed, 0);
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return -errno;
	}
	if (pid == 0) {
		int fds[3] = {run->stdin_fd, run->stdout_fd, run->stderr_fd};
		for (int i = 0; i < 3; i++) {
			if (fds[i] >= 0) {
				lseek(fds[i], 0, SEEK_SET);
				dup2(fds[i], i);
			} else {
				close(i);
			}
		}
		char *const *envp = run->envp ? run->envp : x->cfg.policy->env;
		execve(x->cfg.prog, x->cfg.argv, envp);
		_exit(127);
	}
	atomic_store(&x->pid, pid);
	int st = 0;
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double ms =
		    (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
		if (x->o.timeout_ms && ms > (double)x->o.timeout_ms && !atomic_load(&x->killed)) {
			atomic_store(&x->killed, 1);
			kill(pid, SIGKILL);
		}
		struct timespec ts = {0, 200000};
		nanosleep(&ts, NULL);
	}
	atomic_store(&x->pid, 0);
	if (atomic_load(&x->killed)) {
		run->res.end = SBX_END_LIMIT;
		run->res.status = SBX_STATUS_LIMIT_TIME;
		snprintf(run->res.reason, sizeof(run->res.reason), "wall-clock limit (fake)");
	} else if (WIFEXITED(st)) {
		run->res.end = SBX_END_EXIT;
		run->res.status = WEXITSTATUS(st);
	} else {
		run->res.end = SBX_END_FAULT;
		run->res.signal = WTERMSIG(st);
		run->res.status = 128 + WTERMSIG(st);
		snprintf(run->res.reason, sizeof(run->res.reason), "killed by signal %d (fake)",
			 WTERMSIG(st));
		fprintf(x->cfg.log, "SUMMARY: sandbox: fake signal %d\nDEDUP_TOKEN: fake\n",
			WTERMSIG(st));
	}
	run->slow = 1;
	return 0;
}

void sbx_exec_info(const struct sbx_exec *x, struct sbx_exec_info *info)
{
	(void)x;
	memset(info, 0, sizeof(*info));
}

struct sbx_vm *sbx_exec_vm(struct sbx_exec *x)
{
	(void)x;
	return NULL;
}

void sbx_exec_kill(struct sbx_exec *x, enum sbx_end end, int status, const char *why)
{
	(void)end;
	(void)status;
	(void)why;
	int pid = atomic_load(&x->pid);
	atomic_store(&x->killed, 1);
	if (pid > 0)
		kill(pid, SIGKILL);
}

void sbx_exec_close(struct sbx_exec *x)
{
	free(x);
}
