/* libFuzzer target for the monitor's request decoding: each input is one ring slot (the
 * request as a hostile guest kernel could write it) followed by bytes placed in guest RAM for
 * its pointers to find. It is served exactly as a doorbell would serve it, under the monitor's
 * own seccomp allowlist (monitor/confine.c): the dispatcher runs on a worker thread that
 * installed the real filter once, so a handler that makes a host call off the list is a finding
 * (the input is the reproducer). libFuzzer's own thread stays unconfined: it reports the finding
 * and writes the artifact. Landlock is left out: it would keep libFuzzer from writing artifacts
 * when a sanitizer stops the worker, and it refuses with an errno, never a kill. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <ucontext.h>
#include <unistd.h>

#include "calls.h"
#include "confine.h"
#include "fuzz_vm.h"
#include "persist.h"
#include "sandbox_priv.h"

/* The fuzz build leaves the embedded guest kernel and vDSO out: nothing here boots a VM. */
const uint8_t sbx_kernel_blob[1], sbx_kernel_blob_end[1], sbx_vdso_blob[1], sbx_vdso_blob_end[1];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DATA_AT 0x400000ull

static struct sbx_vm *fuzz_vm(void)
{
	static struct sbx_vm *vm;
	static struct policy pol;
	if (vm)
		return vm;
	char ro[] = "/tmp/sbx-fuzz-ro-XXXXXX", rw[] = "/tmp/sbx-fuzz-rw-XXXXXX";
	char err[256], path[128];
	if (!mkdtemp(ro) || !mkdtemp(rw))
		abort();
	fuzz_hello_file(ro);
	snprintf(path, sizeof(path), "%s/link", ro);
	if (symlink("/etc/passwd", path) < 0)
		abort();
	/* Links that leave their mount, resolved in the guest's namespace (policy_walk): into
	 * another mount, a loop through two mounts, ".." past the root. */
	static const char *const links[][2] = {
	    {"/w", "tow"}, {"/w/back", "loop"}, {"../../r/file", "up"}, {"/", "root"}};
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", ro, links[i][1]);
		if (symlink(links[i][0], path) < 0)
			abort();
	}
	snprintf(path, sizeof(path), "%s/back", rw);
	if (symlink("/r/loop", path) < 0)
		abort();
	policy_init(&pol);
	fuzz_mount(&pol, ro, "/r", 0);
	fuzz_mount(&pol, rw, "/w", 1);
	/* /n is then a virtual directory above a mount, as / is. */
	fuzz_mount(&pol, ro, "/n/m", 0);
	static struct sbx_config cfg;
	fuzz_config(&cfg, &pol);
	if (sbx_vm_create_bare(&cfg, &vm, err, sizeof(err)) < 0 ||
	    sbx_procs_attach(vm, err, sizeof(err)) < 0)
		abort();
	struct sbx_ring *r = sbx_gptr(vm, SBX_RING_ADDR, sizeof(*r));
	r->abi_version = SBX_ABI_VERSION;
	return vm;
}

/* ---- The confined worker ---- */

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	struct sbx_vm *vm;
	int state; /* 0: starting, 1: idle, 2: an input to serve, -1: confinement failed */
	char err[256];
} worker = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

/* The first syscall the filter trapped (+1), for the libFuzzer thread to report. */
static volatile sig_atomic_t forbidden;

/* A trapped call fails with ENOSYS and the input runs to its end, so that the report comes
 * from the unconfined thread, with the input in hand. */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	if (!forbidden)
		forbidden = si->si_syscall + 1;
	((ucontext_t *)uc)->uc_mcontext.gregs[REG_RAX] = -ENOSYS;
}

static void set_state(int s)
{
	pthread_mutex_lock(&worker.lock);
	worker.state = s;
	pthread_cond_broadcast(&worker.cond);
	pthread_mutex_unlock(&worker.lock);
}

static void *worker_main(void *arg)
{
	(void)arg;
	struct sbx_vm *vm = worker.vm;
	/* Asynchronous signals (libFuzzer's SIGALRM, a ^C) go to libFuzzer's thread. */
	sigset_t all;
	sigfillset(&all);
	sigdelset(&all, SIGSYS);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	vm->opts.confine_thread = 1;
	if (sbx_confine_seccomp(vm, worker.err, sizeof(worker.err)) < 0) {
		set_state(-1);
		return NULL;
	}
	/* Never returns: a thread's exit would need calls the filter forbids. */
	pthread_mutex_lock(&worker.lock);
	for (;;) {
		worker.state = 1;
		pthread_cond_broadcast(&worker.cond);
		while (worker.state != 2)
			pthread_cond_wait(&worker.cond, &worker.lock);
		pthread_mutex_unlock(&worker.lock);
		/* A process call is served as the vCPU's own thread serves it after a doorbell;
		 * the rest as the poller would (which never waits long for a request). */
		struct sbx_ring *r = sbx_gptr(vm, SBX_RING_ADDR, sizeof(*r));
		struct sbx_slot s = r->slots[vm->proc.ring.tail % SBX_RING_SLOTS];
		int own = (s.pad & SBX_SLOT_OWN) != 0;
		pthread_mutex_lock(&vm->proc.ring.lock);
		/* What a poller serving several rings asks first (the same guest bytes). */
		if (vm->hooks.may_wait)
			(void)vm->hooks.may_wait(vm, &s);
		sbx_ring_serve_at(vm, SBX_RING_ADDR, &vm->proc.ring.tail, own);
		pthread_mutex_unlock(&vm->proc.ring.lock);
		pthread_mutex_lock(&worker.lock);
	}
}

static void worker_start(struct sbx_vm *vm)
{
	worker.vm = vm;
	if (pthread_create(&worker.thread, NULL, worker_main, NULL) != 0)
		abort();
	pthread_mutex_lock(&worker.lock);
	while (worker.state == 0)
		pthread_cond_wait(&worker.cond, &worker.lock);
	int s = worker.state;
	pthread_mutex_unlock(&worker.lock);
	if (s < 0) {
		fprintf(stderr, "fuzz_ring: cannot confine the dispatcher's thread: %s\n",
			worker.err);
		abort();
	}
	/* After the filter, which installed the monitor's own (fatal) report. */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSYS, &sa, NULL);
}

/* Serves the published request on the worker and waits for it. */
static void worker_serve(void)
{
	pthread_mutex_lock(&worker.lock);
	worker.state = 2;
	pthread_cond_broadcast(&worker.cond);
	while (worker.state != 1)
		pthread_cond_wait(&worker.cond, &worker.lock);
	pthread_mutex_unlock(&worker.lock);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sbx_vm *vm = fuzz_vm();
	if (!worker.vm)
		worker_start(vm);
	struct sbx_slot s;
	if (size < sizeof(s))
		return 0;
	memcpy(&s, data, sizeof(s));
	/* Sleeping is the one call whose cost the guest may choose; it is tested elsewhere. A
	 * PARK's and EPOLL_WAIT's checks are fuzzed, their waits kept short. SBX_SLOT_OWN only
	 * routes a request to the calling vCPU's thread, which this worker stands for; the
	 * process calls want it (FORK is left out: it makes a VM). */
	if (s.nr == SBX_CALL_SLEEP)
		return 0;
	if (s.nr == SBX_CALL_PARK && s.u.a[2] > 1000)
		s.u.a[2] = 1000;
	if (s.nr == SBX_CALL_EPOLL_WAIT && s.u.a[3] > 1000)
		s.u.a[3] = 1000; /* and no end (< 0) too */
	if (s.nr == SBX_CALL_POLL && s.u.a[2] > 1000)
		s.u.a[2] = 1000;
	if (s.nr == SBX_CALL_FALLOCATE && s.u.a[3] > 1 << 20)
		s.u.a[3] = 1 << 20; /* the host's disk: a MiB a call at most */
	/* The worker serves one request at a time with every signal blocked: nothing would end
	 * a read of an empty pipe, eventfd or timerfd, so whatever could wait for bytes is
	 * non-blocking. */
	if (s.nr == SBX_CALL_PIPE)
		s.u.a[0] |= O_NONBLOCK;
	if (s.nr == SBX_CALL_EVENTFD)
		s.u.a[1] |= O_NONBLOCK; /* EFD_NONBLOCK */
	if (s.nr == SBX_CALL_SOCKETPAIR)
		s.u.a[0] |= SOCK_NONBLOCK;
	if (s.nr == SBX_CALL_TIMERFD && s.u.a[0] == SBX_TIMERFD_CREATE)
		s.u.a[2] |= O_NONBLOCK; /* TFD_NONBLOCK */
	if (s.nr == SBX_CALL_FCNTL && s.u.a[1] == F_SETFL)
		s.u.a[2] |= O_NONBLOCK;
	if (s.nr == SBX_CALL_SOCKET)
		s.u.a[0] |= SOCK_NONBLOCK; /* accept, connect and recv of it never wait */
	if (s.nr == SBX_CALL_INOTIFY && s.u.a[0] == 0)
		s.u.a[1] |= O_NONBLOCK; /* IN_NONBLOCK */
	if (s.nr == SBX_CALL_OPEN)
		s.u.path.flags |= O_NONBLOCK; /* a FIFO's open never waits for its other end */
	if (s.nr == SBX_CALL_IOCTL && s.u.a[1] == 0x5441 /* TIOCGPTPEER: a terminal's slave */)
		s.u.a[2] |= O_NONBLOCK;
	if (s.nr == SBX_CALL_SIGNALFD && s.u.a[0] == SBX_SIGFD_MAKE)
		s.u.a[3] |= O_NONBLOCK; /* its reads are the kernel's, but poll and epoll see it */
	if (s.nr == SBX_CALL_OPEN_WAIT)
		return 0; /* nothing is kept: OPEN never waits here */
	if (s.nr == SBX_CALL_FORK && !s.u.a[1])
		return 0; /* a copy; a1 alone is a vfork's wait, which ends for a pid not a child */
	if (s.nr != SBX_CALL_EXECVE && s.nr != SBX_CALL_WAIT && s.nr != SBX_CALL_PKILL &&
	    s.nr != SBX_CALL_PGRP)
		s.pad &= ~(uint32_t)SBX_SLOT_OWN;
	/* Sockets for SOCKOP to find (a request alone would only find stdio): a v4 TCP and a
	 * v6 UDP socket of the loopback (inet.c) and a local one, at handles 3, 4 and 5; they go
	 * with the input's other handles. */
	if (s.nr == SBX_CALL_SOCKOP) {
		static const uint64_t kinds[] = {SOCK_STREAM | (uint64_t)AF_INET << 32,
						 SOCK_DGRAM | (uint64_t)AF_INET6 << 32,
						 SOCK_STREAM};
		for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
			struct sbx_slot k = {.nr = SBX_CALL_SOCKET};
			k.u.a[0] = kinds[i] | SOCK_NONBLOCK;
			(void)sbx_hc_socket(vm, &k);
		}
	}
	size_t extra = size - sizeof(s);
	if (extra > 1 << 16)
		extra = 1 << 16;
	sbx_copy_to_guest(vm, DATA_AT, data + sizeof(s), extra);
	struct sbx_ring *r = sbx_gptr(vm, SBX_RING_ADDR, sizeof(*r));
	r->slots[r->head % SBX_RING_SLOTS] = s;
	r->head++;
	worker_serve();
	/* An execve that got past its checks ends this VM (it has no kernel to load): the next
	 * input starts from a running one, as a fresh request would. */
	if (atomic_load(&vm->life.stopping)) {
		memset(&vm->life.stop, 0, sizeof(vm->life.stop));
		vm->life.stop.vector = -1;
		atomic_store(&vm->life.stopping, 0);
		vm->proc.ring.tail = r->head = r->tail = 0;
		r->abi_version = SBX_ABI_VERSION;
	}
	if (forbidden) {
		const char *name = sbx_syscall_name((uint64_t)(forbidden - 1));
		fprintf(stderr,
			"fuzz_ring: hypercall %u made syscall %d (%s), which the monitor's seccomp "
			"filter forbids (monitor/confine.c)\n",
			s.nr, forbidden - 1, name ? name : "?");
		abort();
	}
	/* Reset what one request may leave behind: a stop (an end, or a job's: PGRP's
	 * SBX_PGRP_STOP), open handles, the cwd. */
	atomic_store(&vm->life.stopping, 0);
	atomic_store(&vm->life.pause_req, 0);
	memset(&vm->life.stop, 0, sizeof(vm->life.stop));
	for (int fd = 3; fd < SBX_MAX_FDS; fd++)
		if (vm->proc.files->fds[fd].kind != SBX_H_FREE)
			sbx_fd_release(vm, fd);
	snprintf(vm->proc.cwd, sizeof(vm->proc.cwd), "/");
	return 0;
}
