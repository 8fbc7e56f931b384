/* One polling thread for many rings (core/poller.c), on VMs without KVM: the test plays each
 * guest kernel (it publishes requests and waits for them as k_submit does) and each vCPU thread
 * (it serves what the poller leaves, as a doorbell would). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

#define BUF 0x200000ull

struct pvm {
	struct sbx_vm *vm;
	int in[2], out[2]; /* the guest's stdin and stdout, host pipes */
	uint64_t seq;
};

static struct policy pol;
static FILE *plog;

static void on_kick(int sig)
{
	(void)sig;
}

static void setup(void)
{
	policy_init(&pol);
	plog = fopen("/dev/null", "w");
	/* sbx_ring_stop kicks a poller held in a handler, as sbx_vm_run's threads expect. */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_kick;
	sigaction(sbx_kick_signal(), &sa, NULL);
}

static void teardown(void)
{
	policy_free(&pol);
	fclose(plog);
}

TestSuite(poller, .init = setup, .fini = teardown, .timeout = 120);

static void pvm_new(struct pvm *p, int polling)
{
	memset(p, 0, sizeof(*p));
	cr_assert_eq(pipe2(p->in, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(p->out, O_CLOEXEC), 0);
	struct sbx_config cfg = {.prog = "poller",
				 .policy = &pol,
				 .mem_size = 16 << 20,
				 .stdin_fd = p->in[0],
				 .stdout_fd = p->out[1],
				 .stderr_fd = -1,
				 .log = plog};
	char err[256];
	cr_assert_eq(sbx_vm_create_bare(&cfg, &p->vm, err, sizeof(err)), 0, "%s", err);
	struct sbx_ring *r = sbx_gptr(p->vm, SBX_RING_ADDR, sizeof(*r));
	r->abi_version = SBX_ABI_VERSION;
	p->vm->proc.ring.polling = polling;
	p->vm->proc.vcpu.cpu = p->vm->proc.ring.cpu = -1;
}

static void pvm_start(struct pvm *p)
{
	char err[256];
	cr_assert_eq(sbx_ring_start(p->vm, err, sizeof(err)), 0, "%s", err);
}

static void pvm_free(struct pvm *p)
{
	sbx_ring_stop(p->vm);
	sbx_vm_destroy(p->vm);
	for (int i = 0; i < 2; i++) {
		close(p->in[i]);
		close(p->out[i]);
	}
}

static volatile struct sbx_slot *slot_of(struct pvm *p, uint32_t i)
{
	struct sbx_ring *r = sbx_gptr(p->vm, SBX_RING_ADDR, sizeof(*r));
	return &r->slots[i % SBX_RING_SLOTS];
}

/* Publishes a request as k_submit does, and wakes the poller as its doorbell would (the guest
 * spins instead while the poller is awake): the slot's index. */
static uint32_t post(struct pvm *p, struct sbx_slot s)
{
	struct sbx_ring *r = sbx_gptr(p->vm, SBX_RING_ADDR, sizeof(*r));
	uint32_t i = r->head;
	s.seq = ++p->seq;
	r->slots[i % SBX_RING_SLOTS] = s;
	__atomic_store_n(&r->head, i + 1, __ATOMIC_RELEASE);
	if (p->vm->proc.ring.attached)
		sbx_poller_wake(p->vm->proc.ring.poller, p->vm);
	return i;
}

/* Waits (60 s at most, however loaded the host) until the slot's done word is `want`. */
static int done_is(struct pvm *p, uint32_t i, uint64_t want)
{
	for (int n = 0; n < 600000; n++) {
		if (__atomic_load_n(&slot_of(p, i)->done, __ATOMIC_ACQUIRE) == want)
			return 1;
		struct timespec t = {0, 100000};
		nanosleep(&t, NULL);
	}
	return 0;
}

static struct sbx_slot rw_req(uint32_t nr, int32_t fd, uint64_t buf, uint64_t len);

/* A WRITE of text to fd, from BUF: the slot's index. */
static uint32_t post_write(struct pvm *p, int32_t fd, const char *text)
{
	sbx_copy_to_guest(p->vm, BUF, text, strlen(text));
	return post(p, rw_req(SBX_CALL_WRITE, fd, BUF, strlen(text)));
}

static struct sbx_slot rw_req(uint32_t nr, int32_t fd, uint64_t buf, uint64_t len)
{
	struct sbx_slot s = {.nr = nr};
	s.u.rw.fd = fd;
	s.u.rw.buf = buf;
	s.u.rw.len = len;
	return s;
}

Test(poller, a_shared_poller_leaves_a_wait_to_the_vcpu_thread_and_serves_the_others)
{
	struct pvm a, b;
	pvm_new(&a, 1);
	pvm_new(&b, 1);
	pvm_start(&a);
	sbx_ring_share(b.vm, a.vm);
	pvm_start(&b);
	cr_assert_eq(a.vm->proc.ring.poller, b.vm->proc.ring.poller, "one poller for both rings");

	/* A reads its empty stdin: the poller must not wait in it, and asks for the doorbell. */
	uint32_t ia = post(&a, rw_req(SBX_CALL_READ, 0, BUF, 16));
	cr_assert(done_is(&a, ia, a.seq | SBX_DONE_RING),
		  "the poller did not leave A's read to its vCPU (done %#llx)",
		  (unsigned long long)slot_of(&a, ia)->done);

	/* Meanwhile B's write is served by the poller, without a doorbell. */
	uint32_t ib = post_write(&b, 1, "hello");
	cr_assert(done_is(&b, ib, b.seq), "B's write was not served while A waits");
	cr_expect_eq(slot_of(&b, ib)->ret, 5);
	cr_expect_geq(b.vm->stats.polled, 1);
	char got[8] = "";
	cr_expect_eq(read(b.out[0], got, sizeof(got)), 5);
	cr_expect_str_eq(got, "hello");

	/* A's vCPU thread serves its read after the doorbell, once there is something. */
	cr_assert_eq(write(a.in[1], "data", 4), 4);
	sbx_ring_doorbell(a.vm);
	cr_assert_eq(slot_of(&a, ia)->done, a.seq);
	cr_expect_eq(slot_of(&a, ia)->ret, 4);
	char in[8] = "";
	sbx_copy_from_guest(a.vm, in, BUF, 4);
	cr_expect_str_eq(in, "data");

	/* With data waiting, the poller serves A's read itself. */
	cr_assert_eq(write(a.in[1], "more", 4), 4);
	uint64_t polled = a.vm->stats.polled;
	ia = post(&a, rw_req(SBX_CALL_READ, 0, BUF, 16));
	cr_assert(done_is(&a, ia, a.seq), "A's ready read was not served by the poller");
	cr_expect_eq(slot_of(&a, ia)->ret, 4);
	cr_expect_gt(a.vm->stats.polled, polled);

	/* The first ring leaves (its process ended): the poller goes on for the other. */
	pvm_free(&a);
	ib = post_write(&b, 1, "again");
	cr_assert(done_is(&b, ib, b.seq), "B was not served after A left");
	pvm_free(&b);
}

Test(poller, a_poller_of_one_ring_leaves_a_wait_too)
{
	/* Its ring may get company at any time (a fork): a wait begun alone would keep the
	 * child's requests waiting. */
	struct pvm a;
	pvm_new(&a, 1);
	pvm_start(&a);
	uint32_t i = post(&a, rw_req(SBX_CALL_READ, 0, BUF, 16));
	cr_assert(done_is(&a, i, a.seq | SBX_DONE_RING), "the poller took a read that waits");
	cr_assert_eq(write(a.in[1], "late", 4), 4);
	sbx_ring_doorbell(a.vm);
	cr_assert_eq(slot_of(&a, i)->done, a.seq);
	cr_expect_eq(slot_of(&a, i)->ret, 4);
	pvm_free(&a);
}

Test(poller, a_handler_that_finds_it_would_wait_leaves_the_request_to_the_vcpu)
{
	/* What was ready when the poller looked may be gone when the handler runs (another
	 * process read it): played here by a poller that does not look first. Nothing has moved
	 * then, and the request is left unanswered, as if the poller had not taken it. */
	struct pvm a;
	pvm_new(&a, 1);
	a.vm->hooks.may_wait = NULL;
	pvm_start(&a);
	uint32_t i = post(&a, rw_req(SBX_CALL_READ, 0, BUF, 16));
	cr_assert(done_is(&a, i, a.seq | SBX_DONE_RING), "the read was not left to the vCPU");
	cr_expect_eq(a.vm->stats.calls, 0, "a request not served was counted");
	cr_assert_eq(write(a.in[1], "ok", 2), 2);
	sbx_ring_doorbell(a.vm);
	cr_assert_eq(slot_of(&a, i)->done, a.seq);
	cr_expect_eq(slot_of(&a, i)->ret, 2);
	cr_expect_eq(a.vm->stats.calls, 1);
	pvm_free(&a);
}

Test(poller, the_poller_answers_a_non_blocking_pipe_itself)
{
	/* Go's and libuv's loops end each burst of reads with an EAGAIN: no exit for it. */
	struct pvm a;
	pvm_new(&a, 1);
	pvm_start(&a);
	struct sbx_slot s = {.nr = SBX_CALL_PIPE, .u.a = {O_NONBLOCK}};
	uint32_t i = post(&a, s);
	cr_assert(done_is(&a, i, a.seq), "the pipe was not made by the poller");
	int64_t fds = slot_of(&a, i)->ret;
	cr_assert_geq(fds, 0);
	int32_t rd = (int32_t)(fds & 0xffffffff), wr = (int32_t)(fds >> 32);
	i = post(&a, rw_req(SBX_CALL_READ, rd, BUF, 16));
	cr_assert(done_is(&a, i, a.seq), "the poller left an empty non-blocking read");
	cr_expect_eq(slot_of(&a, i)->ret, -EAGAIN);
	i = post_write(&a, wr, "abc");
	cr_assert(done_is(&a, i, a.seq));
	cr_expect_eq(slot_of(&a, i)->ret, 3);
	i = post(&a, rw_req(SBX_CALL_READ, rd, BUF + 64, 16));
	cr_assert(done_is(&a, i, a.seq));
	cr_expect_eq(slot_of(&a, i)->ret, 3);
	cr_expect_eq(a.vm->stats.doorbells, 0);
	cr_expect_eq(a.vm->stats.polled, 4);
	pvm_free(&a);
}

Test(poller, rings_leave_their_poller_with_requests_pending)
{
	/* One left to its vCPU, one the poller is looking at again (not ready yet), one of a
	 * ring still spinning: each leaves, and the last takes the thread with it. */
	struct pvm a, b, c;
	pvm_new(&a, 1);
	pvm_new(&b, 1);
	pvm_new(&c, 1);
	pvm_start(&a);
	sbx_ring_share(b.vm, a.vm);
	sbx_ring_share(c.vm, a.vm);
	pvm_start(&b);
	pvm_start(&c);
	uint32_t i = post(&a, rw_req(SBX_CALL_READ, 0, BUF, 16));
	cr_assert(done_is(&a, i, a.seq | SBX_DONE_RING));
	post(&b, rw_req(SBX_CALL_READ, 0, BUF, 16));
	pvm_free(&b);
	pvm_free(&a);
	i = post_write(&c, 1, "c");
	cr_assert(done_is(&c, i, c.seq), "the last ring was not served after the others left");
	pvm_free(&c);
}

Test(poller, what_a_shared_poller_may_serve)
{
	struct pvm a;
	pvm_new(&a, 0);
	int (*may_wait)(struct sbx_vm *, const struct sbx_slot *) = a.vm->hooks.may_wait;
	cr_assert_not_null(may_wait);
	struct sbx_slot s = {.nr = SBX_CALL_STAT};
	cr_expect_eq(may_wait(a.vm, &s), 0, "a stat never waits");
	s.nr = SBX_CALL_FSYNC;
	cr_expect_eq(may_wait(a.vm, &s), SBX_WAITS, "an fsync waits for the disk");
	s.nr = SBX_CALL_POLL;
	cr_expect_eq(may_wait(a.vm, &s), SBX_WAITS, "a poll may wait");
	s.nr = SBX_CALL_FORK;
	cr_expect_eq(may_wait(a.vm, &s), SBX_WAITS, "a fork is the vCPU thread's");
	s = (struct sbx_slot){.nr = SBX_CALL_IOCTL, .u.a = {1, TCSBRK}};
	cr_expect_eq(may_wait(a.vm, &s), SBX_WAITS, "tcdrain waits for the terminal");
	s.u.a[1] = TCGETS;
	cr_expect_eq(may_wait(a.vm, &s), 0, "isatty does not");

	s = rw_req(SBX_CALL_READ, 0, BUF, 16);
	cr_expect_eq(may_wait(a.vm, &s), SBX_WAITS_UNTIL_READY, "a read of an empty pipe waits");
	cr_assert_eq(write(a.in[1], "x", 1), 1);
	cr_expect_eq(may_wait(a.vm, &s), 0, "a read of a pipe with data does not");
	s = rw_req(SBX_CALL_WRITE, 1, BUF, 100);
	cr_expect_eq(may_wait(a.vm, &s), 0, "a small write to a pipe with room does not");
	s.u.rw.len = 8192;
	cr_expect_eq(may_wait(a.vm, &s), SBX_WAITS,
		     "a write past PIPE_BUF may wait for the reader");
	struct sbx_iovec v[2] = {{BUF, 3000}, {BUF + 4096, 3000}};
	sbx_copy_to_guest(a.vm, BUF + 8192, v, sizeof(v));
	s = rw_req(SBX_CALL_WRITEV, 1, BUF + 8192, 2);
	cr_expect_eq(may_wait(a.vm, &s), SBX_WAITS, "the vectors of a write count together");
	v[1].len = 1000;
	sbx_copy_to_guest(a.vm, BUF + 8192, v, sizeof(v));
	cr_expect_eq(may_wait(a.vm, &s), 0, "4000 bytes fit");
	/* Filling the pipe: even a small write may wait now. */
	fcntl(a.out[1], F_SETFL, O_NONBLOCK);
	char blk[4096] = {0};
	while (write(a.out[1], blk, sizeof(blk)) > 0)
		;
	s = rw_req(SBX_CALL_WRITE, 1, BUF, 1);
	cr_expect_eq(may_wait(a.vm, &s), SBX_WAITS_UNTIL_READY, "a write to a full pipe waits");
	s = rw_req(SBX_CALL_WRITE, 99, BUF, 1);
	cr_expect_eq(may_wait(a.vm, &s), 0, "a bad descriptor is answered at once");
	/* O_NONBLOCK as the guest set it: EAGAIN at once. */
	s = rw_req(SBX_CALL_FCNTL, 0, 0, 0);
	s.u.a[0] = 0;
	s.u.a[1] = F_SETFL;
	s.u.a[2] = O_NONBLOCK;
	cr_assert_geq(a.vm->hooks.dispatch(a.vm, &s), 0);
	char c;
	cr_assert_eq(read(a.in[0], &c, 1), 1);
	s = rw_req(SBX_CALL_READ, 0, BUF, 16);
	cr_expect_eq(may_wait(a.vm, &s), 0, "a non-blocking read of an empty pipe");
	/* stdout made non-blocking by the guest: its host pipe still blocks past PIPE_BUF. */
	s = (struct sbx_slot){.nr = SBX_CALL_FCNTL, .u.a = {1, F_SETFL, O_NONBLOCK}};
	cr_assert_geq(a.vm->hooks.dispatch(a.vm, &s), 0);
	s = rw_req(SBX_CALL_WRITE, 1, BUF, 8192);
	cr_expect_eq(may_wait(a.vm, &s), SBX_WAITS, "a big write to a non-blocking stdout pipe");
	pvm_free(&a);
}

Test(poller, a_terminal_is_left_to_the_vcpu_thread)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0 || grantpt(m) || unlockpt(m))
		cr_skip_test("no pseudo-terminal here");
	int t = open(ptsname(m), O_RDWR | O_NOCTTY);
	cr_assert_geq(t, 0);
	/* stdout a terminal: even a small write may wait (XOFF, a slow reader). */
	struct sbx_config cfg = {.prog = "tty",
				 .policy = &pol,
				 .mem_size = 16 << 20,
				 .stdin_fd = -1,
				 .stdout_fd = t,
				 .stderr_fd = -1,
				 .log = plog};
	char err[256];
	struct sbx_vm *vm;
	cr_assert_eq(sbx_vm_create_bare(&cfg, &vm, err, sizeof(err)), 0, "%s", err);
	struct sbx_slot s = rw_req(SBX_CALL_WRITE, 1, BUF, 1);
	cr_expect_eq(vm->hooks.may_wait(vm, &s), SBX_WAITS, "a write to a terminal");
	/* Made non-blocking by the guest: the host's terminal still blocks (XOFF, a pager). */
	struct sbx_slot f = {.nr = SBX_CALL_FCNTL, .u.a = {1, F_SETFL, O_NONBLOCK}};
	cr_assert_geq(vm->hooks.dispatch(vm, &f), 0);
	cr_expect_eq(vm->hooks.may_wait(vm, &s), SBX_WAITS,
		     "a write to a terminal the guest made non-blocking");
	sbx_vm_destroy(vm);
	close(t);
	close(m);
}
