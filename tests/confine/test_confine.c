/* sbx_confine: the seccomp allowlist kills what is not on it, Landlock hides the host outside
 * the mounts, and the hypercalls still work afterwards. Confinement cannot be undone, so every
 * test confines a forked child, which reports by its exit status (never by Criterion, whose
 * reporting would need syscalls the filter forbids). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

/* Exit statuses of the children. */
enum { OK = 0, E_SETUP = 10, E_CONFINE, E_OUTSIDE_OPENED, E_OUTSIDE_ERRNO, E_INSIDE, E_CALL };

struct fixture {
	char dir[64]; /* scratch host directory: mounted rw at /w */
	struct policy pol;
	struct sbx_vm *vm;
	int out[2]; /* the guest's stdout */
	FILE *log;
};

static void fixture_init(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/sbx-confine-XXXXXX");
	cr_assert_not_null(mkdtemp(f->dir));
	char path[128];
	snprintf(path, sizeof(path), "%s/inside.txt", f->dir);
	FILE *in = fopen(path, "w");
	cr_assert_not_null(in);
	fputs("inside\n", in);
	fclose(in);
	cr_assert_eq(pipe2(f->out, O_CLOEXEC | O_NONBLOCK), 0);
	f->log = fopen("/dev/null", "w");
}

static void fixture_fini(struct fixture *f)
{
	test_scratch_free(f->out, f->log, f->dir);
}

/* In the child: a bare VM (no KVM) with the scratch directory mounted rw at /w. */
static int child_vm(struct fixture *f)
{
	char spec[128], err[256];
	policy_init(&f->pol);
	snprintf(spec, sizeof(spec), "%s:/w", f->dir);
	if (policy_add_mount(&f->pol, spec, 1, err, sizeof(err)) < 0)
		return -1;
	return test_vm_bare(&f->vm, "/nonexistent/prog", &f->pol, f->out[1], f->log, err,
			    sizeof(err));
}

static int child_confine(struct fixture *f)
{
	char err[512];
	if (child_vm(f) < 0)
		return -1;
	if (sbx_confine(f->vm, err, sizeof(err)) < 0) {
		fprintf(stderr, "sbx_confine: %s\n", err);
		return -1;
	}
	return 0;
}

/* Runs fn in a forked child; returns its wait status. */
static int in_child(struct fixture *f, int (*fn)(struct fixture *f))
{
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(fn(f));
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	return st;
}

static void expect_sigsys(int st, const char *what)
{
	cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS, "%s: want death by SIGSYS, got %s %d",
		  what, WIFSIGNALED(st) ? "signal" : "exit status",
		  WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
}

static void expect_ok(int st, const char *what)
{
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == OK, "%s: got %s %d", what,
		  WIFSIGNALED(st) ? "signal" : "exit status",
		  WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
}

/* ---- (a) what is off the list kills the process ---- */

static int try_execve(struct fixture *f)
{
	if (child_confine(f) < 0)
		return E_CONFINE;
	char *const argv[] = {"/bin/true", NULL};
	execve("/bin/true", argv, NULL);
	return OK; /* not reached: killed */
}

static int try_kill(struct fixture *f)
{
	if (child_confine(f) < 0)
		return E_CONFINE;
	syscall(SYS_kill, 1, 0); /* kill is off the list: only tgkill to ourselves */
	return OK;
}

static int try_fork(struct fixture *f)
{
	if (child_confine(f) < 0)
		return E_CONFINE;
	/* clone without CLONE_THREAD: a new process. */
	syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
	return OK;
}

static int try_other_ioctl(struct fixture *f)
{
	if (child_confine(f) < 0)
		return E_CONFINE;
	int one = 1;
	ioctl(f->out[1], FIONBIO, &one); /* not a terminal query */
	return OK;
}

static int try_kvm_ioctl_bare(struct fixture *f)
{
	if (child_confine(f) < 0)
		return E_CONFINE;
	/* A bare VM has no vCPU fd: no KVM ioctl is allowed on any fd. */
	ioctl(f->out[1], KVM_RUN, 0);
	return OK;
}

Test(confine, off_the_list_is_sigsys)
{
	struct fixture f;
	fixture_init(&f);
	expect_sigsys(in_child(&f, try_execve), "execve");
	expect_sigsys(in_child(&f, try_kill), "kill");
	expect_sigsys(in_child(&f, try_fork), "clone without CLONE_THREAD");
	expect_sigsys(in_child(&f, try_other_ioctl), "ioctl FIONBIO");
	expect_sigsys(in_child(&f, try_kvm_ioctl_bare), "KVM_RUN with no vCPU");
	fixture_fini(&f);
}

static void *nothing(void *arg)
{
	return arg;
}

/* Refused with an errno, and the process lives: sockets and executable memory. */
static int try_refused(struct fixture *f)
{
	if (child_confine(f) < 0)
		return E_CONFINE;
	if (socket(AF_INET, SOCK_STREAM, 0) != -1 || errno != EACCES)
		return E_CALL;
	void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p != MAP_FAILED || errno != EPERM)
		return E_CALL + 1;
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return E_CALL + 2;
	if (mprotect(p, 4096, PROT_READ | PROT_EXEC) != -1 || errno != EPERM)
		return E_CALL + 3;
	/* Threads are allowed (the watchdog may start after confinement). */
	pthread_t t;
	if (pthread_create(&t, NULL, nothing, NULL) != 0 || pthread_join(t, NULL) != 0)
		return E_CALL + 4;
	return OK;
}

Test(confine, sockets_and_code_are_refused_not_fatal)
{
	struct fixture f;
	fixture_init(&f);
	expect_ok(in_child(&f, try_refused), "socket/mmap(PROT_EXEC)/pthread_create");
	fixture_fini(&f);
}

/* ---- (b) Landlock: the host outside the mounts is gone ---- */

static int open_outside(void)
{
	int fd = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		return E_OUTSIDE_OPENED;
	return errno == EACCES ? OK : E_OUTSIDE_ERRNO;
}

static int try_files(struct fixture *f)
{
	if (child_confine(f) < 0)
		return E_CONFINE;
	int r = sbx_confine_landlock_abi() > 0 ? open_outside() : OK;
	if (r != OK)
		return r;
	char path[128];
	snprintf(path, sizeof(path), "%s/inside.txt", f->dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return E_INSIDE;
	close(fd);
	return OK;
}

Test(confine, landlock_hides_what_is_outside_the_mounts)
{
	if (access("/etc/hostname", R_OK) != 0)
		cr_skip_test("/etc/hostname is not readable here");
	struct fixture f;
	fixture_init(&f);
	int st = in_child(&f, try_files);
	cr_expect(!(WIFEXITED(st) && WEXITSTATUS(st) == E_OUTSIDE_OPENED),
		  "/etc/hostname opened after confinement");
	cr_expect(!(WIFEXITED(st) && WEXITSTATUS(st) == E_OUTSIDE_ERRNO),
		  "/etc/hostname failed, but not with EACCES");
	expect_ok(st, "outside EACCES, inside opens");
	if (sbx_confine_landlock_abi() == 0)
		cr_log_warn("no Landlock in this kernel: only the seccomp part was tested");
	fixture_fini(&f);
}

/* Another thread that exists before sbx_confine gets the Landlock domain too (the kernel has no
 * TSYNC for Landlock; confine.c hands it over with a signal). */
struct helper {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int go, result;
};

static void *helper_main(void *arg)
{
	struct helper *h = arg;
	pthread_mutex_lock(&h->lock);
	while (!h->go)
		pthread_cond_wait(&h->cond, &h->lock);
	h->result = open_outside();
	h->go = 0;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

static int try_thread_files(struct fixture *f)
{
	struct helper h = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, -1};
	pthread_t t;
	if (pthread_create(&t, NULL, helper_main, &h) != 0)
		return E_SETUP;
	if (child_confine(f) < 0)
		return E_CONFINE;
	pthread_mutex_lock(&h.lock);
	h.go = 1;
	pthread_cond_broadcast(&h.cond);
	while (h.go)
		pthread_cond_wait(&h.cond, &h.lock);
	pthread_mutex_unlock(&h.lock);
	pthread_join(t, NULL);
	return h.result;
}

Test(confine, landlock_covers_threads_started_before)
{
	if (sbx_confine_landlock_abi() == 0)
		cr_skip_test("no Landlock in this kernel");
	if (access("/etc/hostname", R_OK) != 0)
		cr_skip_test("/etc/hostname is not readable here");
	struct fixture f;
	fixture_init(&f);
	expect_ok(in_child(&f, try_thread_files), "a thread started before confinement");
	fixture_fini(&f);
}

/* ---- (c) the hypercalls still work ---- */

static uint64_t put(struct sbx_vm *vm, uint64_t gpa, const char *s)
{
	sbx_copy_to_guest(vm, gpa, s, strlen(s));
	return gpa;
}

static int served_by_poller;

/* Posts one request; the polling thread serves it if it runs, else we do. */
static int64_t call(struct sbx_vm *vm, struct sbx_slot s)
{
	static uint64_t seq;
	struct sbx_ring *r = sbx_gptr(vm, SBX_RING_ADDR, sizeof(*r));
	uint32_t slot = r->head % SBX_RING_SLOTS;
	s.seq = ++seq;
	r->slots[slot] = s;
	__atomic_store_n(&r->head, r->head + 1, __ATOMIC_RELEASE);
	if (vm->proc.ring.attached) {
		/* An idle poller sleeps until a doorbell: wake it as the doorbell would, but let it
		 * serve the request itself. */
		sbx_poller_wake(vm->proc.ring.poller, vm);
		/* However busy the host: 120 s only turn a poller that never answers into a
		 * failure. */
		struct timespec t0, t;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		while (__atomic_load_n(&r->slots[slot].done, __ATOMIC_ACQUIRE) != s.seq) {
			clock_gettime(CLOCK_MONOTONIC, &t);
			if (t.tv_sec - t0.tv_sec > 120)
				break;
			sched_yield();
		}
	} else {
		pthread_mutex_lock(&vm->proc.ring.lock);
		sbx_ring_serve(vm);
		pthread_mutex_unlock(&vm->proc.ring.lock);
	}
	if (__atomic_load_n(&r->slots[slot].done, __ATOMIC_ACQUIRE) != s.seq)
		return -ETIMEDOUT;
	served_by_poller += vm->proc.ring.attached;
	return r->slots[slot].ret;
}

#define BUF 0x200000ull

/* A request on path (put at BUF), relative to the cwd; the caller sets what nr needs besides. */
static struct sbx_slot path_slot(struct sbx_vm *vm, uint32_t nr, const char *path)
{
	struct sbx_slot s = {.nr = nr};
	s.u.path.dirfd = SBX_AT_FDCWD;
	s.u.path.path = put(vm, BUF, path);
	s.u.path.path_len = (uint32_t)strlen(path);
	return s;
}

static int hypercalls(struct fixture *f)
{
	struct sbx_vm *vm = f->vm;
	char want[] = "inside\n";
	/* OPEN /w/inside.txt, READ it, WRITE it to stdout, CLOSE. */
	struct sbx_slot s = path_slot(vm, SBX_CALL_OPEN, "/w/inside.txt");
	s.u.path.flags = O_RDONLY;
	int64_t fd = call(vm, s);
	if (fd < 0)
		return E_CALL;
	if (call(vm, test_rw_req(SBX_CALL_READ, (int32_t)fd, BUF + 0x1000, 64)) !=
		(int64_t)strlen(want) ||
	    memcmp(sbx_gptr(vm, BUF + 0x1000, strlen(want)), want, strlen(want)))
		return E_CALL + 1;
	if (call(vm, test_rw_req(SBX_CALL_WRITE, 1, BUF + 0x1000, strlen(want))) !=
	    (int64_t)strlen(want))
		return E_CALL + 2;
	s = (struct sbx_slot){.nr = SBX_CALL_CLOSE};
	s.u.a[0] = (uint64_t)fd;
	if (call(vm, s) != 0)
		return E_CALL + 3;
	/* Create, write and rename a file on the rw mount; mkdir; stat. */
	s = path_slot(vm, SBX_CALL_OPEN, "/w/new.txt");
	s.u.path.flags = O_WRONLY | O_CREAT | O_TRUNC;
	s.u.path.mode = 0644;
	fd = call(vm, s);
	if (fd < 0)
		return E_CALL + 4;
	if (call(vm, test_rw_req(SBX_CALL_WRITE, (int32_t)fd, BUF + 0x1000, strlen(want))) !=
	    (int64_t)strlen(want))
		return E_CALL + 5;
	s = path_slot(vm, SBX_CALL_MKDIR, "/w/sub");
	s.u.path.mode = 0755;
	if (call(vm, s) != 0)
		return E_CALL + 6;
	s = path_slot(vm, SBX_CALL_RENAME, "/w/new.txt");
	s.u.path.dirfd2 = SBX_AT_FDCWD;
	s.u.path.path2 = put(vm, BUF + 0x100, "/w/sub/moved.txt");
	s.u.path.path2_len = (uint32_t)strlen("/w/sub/moved.txt");
	if (call(vm, s) != 0)
		return E_CALL + 7;
	s = path_slot(vm, SBX_CALL_STAT, "/w/sub/moved.txt");
	s.u.path.buf = BUF + 0x2000;
	s.u.path.buf_len = 144;
	if (call(vm, s) != 0)
		return E_CALL + 8;
	/* A path outside every mount stays ENOENT (the policy, not Landlock, answers). */
	if (call(vm, path_slot(vm, SBX_CALL_OPEN, "/etc/hostname")) != -ENOENT)
		return E_CALL + 9;
	s = (struct sbx_slot){.nr = SBX_CALL_RANDOM};
	s.u.rw.buf = BUF;
	s.u.rw.len = 16;
	if (call(vm, s) != 16)
		return E_CALL + 10;
	return OK;
}

static int try_hypercalls(struct fixture *f)
{
	if (child_confine(f) < 0)
		return E_CONFINE;
	int r = hypercalls(f);
	sbx_vm_destroy(f->vm);
	policy_free(&f->pol);
	return r;
}

static void kick_handler(int sig)
{
	(void)sig;
}

/* The same with the polling thread started before confinement, as sbx_vm_run does. */
static int try_hypercalls_polled(struct fixture *f)
{
	char err[512];
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler; /* sbx_ring_stop kicks the poller, as sbx_vm_run expects */
	sigaction(sbx_kick_signal(), &sa, NULL);
	if (child_vm(f) < 0)
		return E_SETUP;
	f->vm->proc.ring.polling = 1;
	f->vm->proc.vcpu.cpu = f->vm->proc.ring.cpu = -1;
	if (sbx_ring_start(f->vm, err, sizeof(err)) < 0)
		return E_SETUP;
	if (sbx_confine(f->vm, err, sizeof(err)) < 0) {
		fprintf(stderr, "sbx_confine: %s\n", err);
		return E_CONFINE;
	}
	int r = hypercalls(f);
	if (r == OK && (f->vm->stats.polled == 0 || served_by_poller == 0))
		r = E_SETUP + 100;
	sbx_ring_stop(f->vm);
	sbx_vm_destroy(f->vm);
	policy_free(&f->pol);
	return r;
}

static void check_hypercall_results(struct fixture *f, int st, const char *what)
{
	expect_ok(st, what);
	char buf[64] = "";
	ssize_t n = read(f->out[0], buf, sizeof(buf) - 1);
	cr_expect_eq(n, 7, "%s: the guest's stdout got %zd bytes", what, n);
	cr_expect_str_eq(buf, "inside\n");
	char path[128];
	snprintf(path, sizeof(path), "%s/sub/moved.txt", f->dir);
	cr_expect_eq(access(path, F_OK), 0, "%s: the renamed file is missing", what);
}

Test(confine, hypercalls_work_after_confinement)
{
	struct fixture f;
	fixture_init(&f);
	check_hypercall_results(&f, in_child(&f, try_hypercalls), "served by the caller");
	fixture_fini(&f);
}

Test(confine, hypercalls_work_from_the_polling_thread)
{
	struct fixture f;
	fixture_init(&f);
	check_hypercall_results(&f, in_child(&f, try_hypercalls_polled), "served by the poller");
	fixture_fini(&f);
}

/* ---- (d) nested mounts: the monitor resolves and decides itself, confined ---- */

static struct sbx_slot path_req(struct sbx_vm *vm, uint32_t nr, const char *path, const char *path2,
				uint32_t flags)
{
	struct sbx_slot s = path_slot(vm, nr, path);
	s.u.path.dirfd2 = SBX_AT_FDCWD;
	if (path2) {
		s.u.path.path2 = put(vm, BUF + 0x100, path2);
		s.u.path.path2_len = (uint32_t)strlen(path2);
	}
	s.u.path.flags = flags;
	s.u.path.mode = 0644;
	s.u.path.buf = BUF + 0x2000;
	s.u.path.buf_len = 144;
	return s;
}

/* /w (rw) holds prot/ (ro at /w/prot) and the links pl -> prot, self -> .: every call of the
 * nested path (resolution step by step, the walk up by "..", following symlinks) runs under
 * the filter, and the rule of the nested mount holds through the links. */
static int nested_calls(struct fixture *f)
{
	char spec[160], err[256];
	if (child_vm(f) < 0)
		return E_SETUP;
	snprintf(spec, sizeof(spec), "%s/prot:/w/prot", f->dir);
	if (policy_add_mount(&f->pol, spec, 0, err, sizeof(err)) < 0 ||
	    !f->pol.mounts[0].holds_mounts)
		return E_SETUP + 1;
	if (sbx_confine(f->vm, err, sizeof(err)) < 0) {
		fprintf(stderr, "sbx_confine: %s\n", err);
		return E_CONFINE;
	}
	struct sbx_vm *vm = f->vm;
	const struct {
		uint32_t nr;
		const char *path, *path2;
		uint32_t flags;
		int64_t want; /* 0: >= 0 */
	} steps[] = {
	    {SBX_CALL_OPEN, "/w/pl/p.txt", NULL, O_RDONLY, 0},
	    {SBX_CALL_STAT, "/w/self/prot/p.txt", NULL, 0, 0},
	    {SBX_CALL_READLINK, "/w/pl", NULL, 0, 0},
	    {SBX_CALL_OPEN, "/w/pl/p.txt", NULL, O_WRONLY | O_TRUNC, -EROFS},
	    {SBX_CALL_MKDIR, "/w/pl/d", NULL, 0, -EROFS},
	    {SBX_CALL_CHMOD, "/w/pl/p.txt", NULL, 0, -EROFS},
	    {SBX_CALL_RENAME, "/w/self/prot", "/w/moved", 0, -EBUSY},
	    {SBX_CALL_OPEN, "/w/self/new.txt", NULL, O_WRONLY | O_CREAT, 0},
	    {SBX_CALL_CHMOD, "/w/self/new.txt", NULL, 0, 0},
	    {SBX_CALL_UTIMENS, "/w/self/new.txt", NULL, 0, 0},
	    {SBX_CALL_ACCESS, "/w/self/new.txt", NULL, 0, 0},
	    {SBX_CALL_LINK, "/w/self/new.txt", "/w/self/hard.txt", AT_SYMLINK_FOLLOW, 0},
	    {SBX_CALL_RENAME, "/w/self/hard.txt", "/w/self/moved.txt", 0, 0},
	    {SBX_CALL_SYMLINK, "new.txt", "/w/self/sl", 0, 0},
	    {SBX_CALL_UNLINK, "/w/self/sl", NULL, 0, 0},
	    {SBX_CALL_CHDIR, "/w/pl", NULL, 0, 0},
	};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct sbx_slot s =
		    path_req(vm, steps[i].nr, steps[i].path, steps[i].path2, steps[i].flags);
		int64_t r = call(vm, s);
		if (steps[i].want ? r != steps[i].want : r < 0) {
			fprintf(stderr, "step %zu: %lld\n", i, (long long)r);
			return E_CALL + (int)i;
		}
	}
	sbx_vm_destroy(f->vm);
	policy_free(&f->pol);
	return OK;
}

Test(confine, nested_mounts_after_confinement)
{
	struct fixture f;
	fixture_init(&f);
	char cmd[256];
	snprintf(cmd, sizeof(cmd),
		 "cd %s && mkdir prot && echo protected > prot/p.txt && ln -s prot pl && "
		 "ln -s . self",
		 f.dir);
	cr_assert_eq(system(cmd), 0);
	expect_ok(in_child(&f, nested_calls), "nested mounts, confined");
	char path[128];
	snprintf(path, sizeof(path), "%s/moved.txt", f.dir);
	cr_expect_eq(access(path, F_OK), 0, "the file renamed through a symlink is missing");
	snprintf(path, sizeof(path), "%s/prot/p.txt", f.dir);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_size, 10, "the read-only file was changed");
	fixture_fini(&f);
}
