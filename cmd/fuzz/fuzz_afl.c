/* sandbox-fuzz --afl: AFL++'s forkserver protocol with a reset in place of the fork.
 * afl-fuzz starts us with its control pipe on fd 198 and its status pipe on 199, its coverage
 * map in System V shared memory (__AFL_SHM_ID) and the test case on stdin (or in the file
 * named by an "@@" argument). For each request we answer a "child pid", run the input from
 * the snapshot, fold the guest's counters into AFL's map and answer a wait status.
 *
 * AFL kills the child pid it was given when an input takes too long: that pid is a sleeping
 * process of ours, and its death ends the run (the monitor kicks the vCPU out of KVM_RUN).
 * AFL sends that kill after its time limit ran out and before it reads the status, but the
 * sleeper may take a while to die on a busy host: the next input must not be given a sleeper
 * with a kill on its way, whose death would end that input too and be reported to AFL as a
 * SIGKILL crash it never asked for. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"

#define AFL_CTL_FD 198
#define AFL_ST_FD 199
/* The forkserver's options, announced in its hello (AFL++'s FS_OPT_* values). */
#define AFL_OPT_ENABLED 0x80000001u
#define AFL_OPT_MAPSIZE 0x40000000u
#define AFL_OPT_SHDMEM_FUZZ 0x01000000u
#define AFL_OPT_MAX_MAPSIZE ((0x00fffffeu >> 1) + 1)

struct afl_child {
	pthread_mutex_t m; /* guards all below but x */
	pthread_cond_t cv;
	pid_t pid;
	int pidfd;
	int ping;     /* our end of a socket pair: the sleeper echoes each byte */
	uint64_t gen; /* the input being run; a death seen for another one is ignored */
	int running;  /* an input is being run: the child's death ends it */
	int quit;
	struct sbx_exec *x;
};

static int spawn_sleeper(struct afl_child *c)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	pid_t p = fork();
	if (p < 0) {
		int e = errno;
		close(sv[0]);
		close(sv[1]);
		return -e;
	}
	if (p == 0) {
		/* It must not outlive us (afl-fuzz ends a forkserver with SIGKILL). */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(0);
		close(sv[0]);
		for (;;) {
			char b;
			ssize_t k = recv(sv[1], &b, 1, 0);
			if (k < 0 && errno == EINTR)
				continue;
			if (k != 1 || send(sv[1], &b, 1, MSG_NOSIGNAL) != 1)
				_exit(0);
		}
	}
	close(sv[1]);
	c->ping = sv[0];
	c->pid = p;
	c->pidfd = (int)syscall(SYS_pidfd_open, p, 0);
	return c->pidfd < 0 ? -errno : 0;
}

/* 1 if the sleeper answers a ping. One with a kill pending never does: SIGKILL is taken on
 * the way back to user space, before it could answer; it dies instead, and its end closes. */
static int sleeper_answers(struct afl_child *c)
{
	char b = 'p';
	if (send(c->ping, &b, 1, MSG_NOSIGNAL) != 1)
		return 0;
	for (;;) {
		ssize_t k = recv(c->ping, &b, 1, 0);
		if (k == 1)
			return 1;
		if (k < 0 && errno == EINTR)
			continue;
		return 0;
	}
}

/* A run that took less than this cannot have met AFL's time limit, which afl-fuzz refuses
 * to set below 5 ms (-t), so its sleeper needs no ping (which costs a round trip to another
 * process on every input). AFL's clock starts once it has read the pid we write before the
 * run, and runs out only if the status we write after the run has not come by then. */
#define AFL_QUIET_MS 1.0

static double ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Watches the sleeper: AFL's timeout kills it, which ends the run in progress (only that
 * one: the sleeper of an earlier input may die late). */
static void *watch_main(void *arg)
{
	struct afl_child *c = arg;
	pthread_mutex_lock(&c->m);
	while (!c->quit) {
		if (!c->running) {
			pthread_cond_wait(&c->cv, &c->m);
			continue;
		}
		int fd = c->pidfd;
		uint64_t gen = c->gen;
		pthread_mutex_unlock(&c->m);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int dead = poll(&p, 1, 50) > 0 && (p.revents & POLLIN);
		pthread_mutex_lock(&c->m);
		if (dead && c->running && c->gen == gen) {
			sbx_exec_kill(c->x, SBX_END_LIMIT, SBX_STATUS_LIMIT_TIME,
				      "killed by afl-fuzz: its time limit (-t)");
			c->running = 0;
		}
	}
	pthread_mutex_unlock(&c->m);
	return NULL;
}

static void set_running(struct afl_child *c, int on)
{
	pthread_mutex_lock(&c->m);
	c->running = on;
	c->gen += on;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->m);
}

static void afl_quit(struct afl_child *c, pthread_t watcher)
{
	pthread_mutex_lock(&c->m);
	c->quit = 1;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->m);
	pthread_join(watcher, NULL);
	kill(c->pid, SIGKILL);
	waitpid(c->pid, NULL, 0);
	close(c->ping);
	close(c->pidfd);
}

static int read_all(int fd, uint8_t *buf, size_t cap, size_t *len)
{
	size_t n = 0;
	lseek(fd, 0, SEEK_SET);
	while (n < cap) {
		ssize_t k = read(fd, buf + n, cap - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			break;
		n += (size_t)k;
	}
	*len = n;
	return 0;
}

/* The wait status AFL expects for how the run ended. */
static int afl_status(const struct sbx_exec_run *run)
{
	const struct sbx_result *r = &run->res;
	if (run->parked)
		return 0;
	if (r->end == SBX_END_LIMIT && r->status == SBX_STATUS_LIMIT_TIME)
		return SIGKILL;
	if (r->signal > 0 && r->signal < 64)
		return r->signal;
	if (r->end == SBX_END_EXIT)
		return (r->status & 0xff) << 8;
	return SIGABRT; /* the sandbox ended it otherwise: a crash to look at */
}

/* A System V segment named by an environment variable, attached: NULL when the variable is
 * not set, (void *)-1 (errno set) when it cannot be attached. */
static uint8_t *shm_from_env(const char *var, size_t *size)
{
	const char *id_s = getenv(var);
	if (!id_s)
		return NULL;
	int id = atoi(id_s);
	struct shmid_ds ds;
	uint8_t *p = shmat(id, NULL, 0);
	if (p == (void *)-1 || shmctl(id, IPC_STAT, &ds) < 0)
		return (void *)-1;
	*size = ds.shm_segsz;
	return p;
}

/* What afl-fuzz gives us: its coverage map, the test cases' place, the forkserver's pipes. */
struct afl {
	uint8_t *map; /* NULL without afl-fuzz (a run by hand) */
	size_t map_size;
	uint8_t *tc; /* the test case in shared memory: a 4-byte length, then the bytes */
	size_t tc_size;
	int in_fd; /* else stdin (AFL's .cur_input), or the file AFL names for "@@" */
	int forkserver;
};

static int afl_attach(struct afl *a, const struct fuzz *fz)
{
	a->map = shm_from_env("__AFL_SHM_ID", &a->map_size);
	if (a->map == (void *)-1) {
		fprintf(stderr, "sandbox-fuzz --afl: cannot attach AFL's map (shm %s): %s\n",
			getenv("__AFL_SHM_ID"), strerror(errno));
		return -1;
	}
	a->tc = shm_from_env("__AFL_SHM_FUZZ_ID", &a->tc_size);
	if (a->tc == (void *)-1 || (a->tc && a->tc_size < 4))
		a->tc = NULL;
	a->in_fd = 0;
	for (int i = 0; i < fz->nlf; i++)
		if (fz->lf[i][0] != '-')
			a->in_fd = open(fz->lf[i], O_RDONLY | O_CLOEXEC);
	return 0;
}

/* The forkserver's hello. Our map is as large as the guest's counters: AFL then hashes no
 * more than that. */
static void afl_hello(struct afl *a, const struct sbx_exec_info *info)
{
	uint32_t hello = AFL_OPT_ENABLED;
	size_t want = info->ncounters < 64 ? 64 : (info->ncounters + 63) / 64 * 64;
	if (a->map && want <= a->map_size && want <= AFL_OPT_MAX_MAPSIZE) {
		hello |= AFL_OPT_MAPSIZE | (uint32_t)((want - 1) << 1);
		a->map_size = want;
	}
	if (a->tc)
		hello |= AFL_OPT_SHDMEM_FUZZ;
	a->forkserver = write(AFL_ST_FD, &hello, 4) == 4;
	uint32_t ack;
	if (a->forkserver && a->tc && read(AFL_CTL_FD, &ack, 4) != 4)
		a->forkserver = 0; /* AFL confirms shared-memory test cases */
}

static size_t afl_input(const struct afl *a, uint8_t *buf, size_t max)
{
	size_t len = 0;
	if (a->tc) {
		uint32_t n;
		memcpy(&n, a->tc, 4);
		len = n < a->tc_size - 4 ? n : a->tc_size - 4;
		len = len < max ? len : max;
		memcpy(buf, a->tc + 4, len);
	} else if (read_all(a->in_fd, buf, max, &len) < 0) {
		len = 0;
	}
	return len;
}

/* The guest's counters into AFL's map (folded when it is smaller). */
static void afl_fold(const struct afl *a, const struct sbx_exec_info *info)
{
	if (!a->map)
		return;
	for (size_t i = 0; i < info->ncounters; i++)
		if (info->counters[i]) {
			uint8_t *m = &a->map[i % a->map_size];
			unsigned v = *m + info->counters[i];
			*m = (uint8_t)(v > 255 ? 255 : v);
		}
}

/* A sleeper for this input: the last one may have been killed by AFL's timeout. Any kill
 * AFL sent for the last input was sent before this request came. */
static int afl_child_ready(struct afl_child *c, int long_run)
{
	pid_t dead = waitpid(c->pid, NULL, WNOHANG);
	if (dead != c->pid && long_run && !sleeper_answers(c))
		dead = waitpid(c->pid, NULL, 0); /* dying: SIGKILL is pending */
	if (dead != c->pid)
		return 0;
	pthread_mutex_lock(&c->m);
	close(c->pidfd);
	close(c->ping);
	int e = spawn_sleeper(c);
	pthread_mutex_unlock(&c->m);
	return e;
}

int fuzz_afl_main(struct fuzz *fz)
{
	char err[1024];
	struct afl a = {0};
	if (afl_attach(&a, fz) < 0)
		return 1;
	fz->deterministic = 1; /* AFL compares runs of one input: they must agree */
	if (fuzz_open(fz, err, sizeof(err)) < 0) {
		fprintf(stderr, "sandbox-fuzz --afl: %s: %s\n", fz->target, err);
		return 1;
	}
	struct sbx_exec_info info;
	sbx_exec_info(fz->x, &info);
	uint8_t *buf = malloc(info.input_max ? info.input_max : 1);
	struct afl_child c = {.x = fz->x, .pidfd = -1, .ping = -1};
	pthread_mutex_init(&c.m, NULL);
	pthread_cond_init(&c.cv, NULL);
	if (!buf || spawn_sleeper(&c) < 0) {
		fprintf(stderr, "sandbox-fuzz --afl: cannot start: %s\n", strerror(errno));
		return 1;
	}
	pthread_t watcher;
	pthread_create(&watcher, NULL, watch_main, &c);
	afl_hello(&a, &info);
	int long_run = 0; /* the last run may have met AFL's time limit */
	for (;;) {
		uint32_t req;
		if (a.forkserver && read(AFL_CTL_FD, &req, 4) != 4)
			break; /* afl-fuzz is gone */
		if (afl_child_ready(&c, long_run) < 0)
			break;
		struct timespec t0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		int32_t pid = c.pid;
		if (a.forkserver && write(AFL_ST_FD, &pid, 4) != 4)
			break;
		struct sbx_exec_run run = {
		    .stdin_fd = -1,
		    .stdout_fd = -1,
		    .stderr_fd = -1,
		    .input = buf,
		    .input_len = afl_input(&a, buf, info.input_max),
		    .seed = 0x5eed,
		    .learn_sites = !fz->strict,
		};
		set_running(&c, 1);
		int r = sbx_exec_one(fz->x, &run, err, sizeof(err));
		set_running(&c, 0);
		if (r < 0) {
			fprintf(stderr, "sandbox-fuzz --afl: %s: %s\n", fz->target, err);
			break;
		}
		afl_fold(&a, &info);
		int st = afl_status(&run);
		fuzz_log_flush(fz, 0);
		if (!a.forkserver) {
			/* Run once without afl-fuzz (afl-showmap, a check by hand). */
			fprintf(stderr, "sandbox-fuzz --afl: %s\n", run.res.reason);
			afl_quit(&c, watcher);
			return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
		}
		if (write(AFL_ST_FD, &st, 4) != 4)
			break;
		long_run = ms_since(&t0) >= AFL_QUIET_MS;
	}
	afl_quit(&c, watcher);
	sbx_exec_close(fz->x);
	return 0;
}
