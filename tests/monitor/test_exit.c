/* The exit handler, fed made-up struct kvm_run exits: no KVM involved. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

static struct test_vm T;

static void setup(void)
{
	test_vm_setup(&T);
}

static void teardown(void)
{
	test_vm_teardown(&T);
}

TestSuite(exit_handler, .init = setup, .fini = teardown);

static struct kvm_run io_exit(uint16_t port, uint8_t dir, uint8_t size)
{
	struct kvm_run run;
	memset(&run, 0, sizeof(run));
	run.exit_reason = KVM_EXIT_IO;
	run.io.port = port;
	run.io.direction = dir;
	run.io.size = size;
	run.io.count = 1;
	return run;
}

static struct kvm_run mmio_exit(uint64_t addr, int write)
{
	struct kvm_run run;
	memset(&run, 0, sizeof(run));
	run.exit_reason = KVM_EXIT_MMIO;
	run.mmio.phys_addr = addr;
	run.mmio.is_write = (uint8_t)write;
	run.mmio.len = 1;
	return run;
}

Test(exit_handler, doorbell_port_with_empty_ring_continues)
{
	struct kvm_run run = io_exit(SBX_PORT_DOORBELL, KVM_EXIT_IO_OUT, 1);
	cr_assert_eq(sbx_handle_exit(T.vm, &run), SBX_ACT_CONTINUE);
	cr_assert_eq(T.vm->stats.doorbells, 1);
}

Test(exit_handler, doorbell_mmio_serves_the_ring)
{
	struct sbx_slot s = {.nr = SBX_CALL_WRITE, .seq = 1};
	s.u.rw.fd = 1;
	s.u.rw.buf = test_put(&T, 0x400000, "hi!");
	s.u.rw.len = 3;
	test_ring_post(&T, &s);
	struct kvm_run run = mmio_exit(SBX_DOORBELL_GPA, 1);
	cr_assert_eq(sbx_handle_exit(T.vm, &run), SBX_ACT_CONTINUE);
	char buf[8] = {0};
	cr_assert_eq(read(T.out_pipe[0], buf, sizeof(buf)), 3);
	cr_assert_str_eq(buf, "hi!");
	struct sbx_ring *r = sbx_gptr(T.vm, SBX_RING_ADDR, sizeof(*r));
	cr_assert_eq(r->slots[0].ret, 3);
	cr_assert_eq(r->slots[0].done, 1);
	cr_assert_eq(r->tail, 1);
}

Test(exit_handler, exit_request_stops_with_status)
{
	struct sbx_slot s = {.nr = SBX_CALL_EXIT, .seq = 1, .u.a = {42}};
	test_ring_post(&T, &s);
	struct kvm_run run = io_exit(SBX_PORT_DOORBELL, KVM_EXIT_IO_OUT, 1);
	cr_assert_eq(sbx_handle_exit(T.vm, &run), SBX_ACT_STOP);
	cr_assert_eq(T.vm->life.stop.end, SBX_END_EXIT);
	cr_assert_eq(T.vm->life.stop.status, 42);
}

Test(exit_handler, fatal_signal_exit_is_128_plus_signal)
{
	struct sbx_slot s = {.nr = SBX_CALL_EXIT, .seq = 1, .u.a = {SBX_EXIT_SIGNALED | 6}};
	test_ring_post(&T, &s);
	struct kvm_run run = io_exit(SBX_PORT_DOORBELL, KVM_EXIT_IO_OUT, 1);
	cr_assert_eq(sbx_handle_exit(T.vm, &run), SBX_ACT_STOP);
	cr_assert_eq(T.vm->life.stop.end, SBX_END_SIGNAL);
	cr_assert_eq(T.vm->life.stop.status, 134);
	cr_assert(strstr(T.vm->life.stop.reason, "SIGABRT"), "%s", T.vm->life.stop.reason);
}

/* A status the kernel can never send is a broken ABI (125), not a death by SIGKILL. */
Test(exit_handler, an_exit_status_outside_the_abi_is_a_violation)
{
	static const uint64_t bad[] = {0xffffffffffffull,
				       SBX_EXIT_SIGNALED | 200,
				       SBX_EXIT_SIGNALED,
				       SBX_EXIT_NODELIVER | 65,
				       SBX_EXIT_DEADLOCK | 9,
				       SBX_EXIT_SIGNALED | SBX_EXIT_NODELIVER | 11,
				       0x200};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		test_vm_teardown(&T);
		test_vm_setup(&T);
		struct sbx_slot s = {.nr = SBX_CALL_EXIT, .seq = 1, .u.a = {bad[i]}};
		test_ring_post(&T, &s);
		struct kvm_run run = io_exit(SBX_PORT_DOORBELL, KVM_EXIT_IO_OUT, 1);
		cr_assert_eq(sbx_handle_exit(T.vm, &run), SBX_ACT_STOP);
		cr_assert_eq(T.vm->life.stop.end, SBX_END_ERROR, "0x%llx",
			     (unsigned long long)bad[i]);
		cr_assert_eq(T.vm->life.stop.status, SBX_STATUS_ERROR);
		char want[64];
		snprintf(want, sizeof(want), "exit status 0x%llx ", (unsigned long long)bad[i]);
		cr_assert(strstr(T.vm->life.stop.reason, "ABI violation") &&
			      strstr(T.vm->life.stop.reason, want),
			  "%s", T.vm->life.stop.reason);
	}
}

Test(exit_handler, every_status_the_abi_allows_ends_the_run_as_it_says)
{
	static const struct {
		uint64_t st;
		enum sbx_end end;
		int status;
	} ok[] = {{0, SBX_END_EXIT, 0},
		  {255, SBX_END_EXIT, 255},
		  {SBX_EXIT_SIGNALED | 1, SBX_END_SIGNAL, 129},
		  {SBX_EXIT_SIGNALED | 64, SBX_END_SIGNAL, 192},
		  {SBX_EXIT_NODELIVER | 11, SBX_END_SIGNAL, 139},
		  {SBX_EXIT_DEADLOCK, SBX_END_SIGNAL, 137}};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		test_vm_teardown(&T);
		test_vm_setup(&T);
		struct sbx_slot s = {.nr = SBX_CALL_EXIT, .seq = 1, .u.a = {ok[i].st}};
		test_ring_post(&T, &s);
		struct kvm_run run = io_exit(SBX_PORT_DOORBELL, KVM_EXIT_IO_OUT, 1);
		cr_assert_eq(sbx_handle_exit(T.vm, &run), SBX_ACT_STOP);
		cr_assert_eq(T.vm->life.stop.end, ok[i].end, "0x%llx: %s",
			     (unsigned long long)ok[i].st, T.vm->life.stop.reason);
		cr_assert_eq(T.vm->life.stop.status, ok[i].status, "0x%llx",
			     (unsigned long long)ok[i].st);
	}
}

Test(exit_handler, fault_port_names_the_vector)
{
	struct kvm_run run = io_exit(SBX_PORT_FAULT_BASE + 14, KVM_EXIT_IO_OUT, 1);
	cr_assert_eq(sbx_handle_exit(T.vm, &run), SBX_ACT_STOP);
	cr_assert_eq(T.vm->life.stop.end, SBX_END_FAULT);
	cr_assert_eq(T.vm->life.stop.vector, 14);
}

Test(exit_handler, ring_head_far_ahead_is_an_abi_violation)
{
	struct sbx_ring *r = sbx_gptr(T.vm, SBX_RING_ADDR, sizeof(*r));
	r->head = 1000;
	struct kvm_run run = io_exit(SBX_PORT_DOORBELL, KVM_EXIT_IO_OUT, 1);
	cr_assert_eq(sbx_handle_exit(T.vm, &run), SBX_ACT_STOP);
	cr_assert_eq(T.vm->life.stop.end, SBX_END_ERROR);
	cr_assert(strstr(T.vm->life.stop.reason, "ABI violation"), "%s", T.vm->life.stop.reason);
}

Test(exit_handler, unknown_hypercall_kills)
{
	struct sbx_slot s = {.nr = 9999, .seq = 1};
	test_ring_post(&T, &s);
	struct kvm_run run = io_exit(SBX_PORT_DOORBELL, KVM_EXIT_IO_OUT, 1);
	cr_assert_eq(sbx_handle_exit(T.vm, &run), SBX_ACT_STOP);
	cr_assert(strstr(T.vm->life.stop.reason, "unknown hypercall 9999"), "%s",
		  T.vm->life.stop.reason);
}

/* Every exit that is not ours ends the sandbox with a message naming it. Criterion passes
 * parameters to a fresh process, so the table holds indices and the exits are built here. */
static const char *stray_exit(int i, struct kvm_run *run)
{
	/* Indices 5 and up: exits that carry nothing but their reason (and a suberror). */
	static const struct {
		uint32_t reason, suberror;
		const char *msg;
	} bare[] = {
	    {KVM_EXIT_HLT, 0, "HLT"},
	    {KVM_EXIT_SHUTDOWN, 0, "triple fault"},
	    {KVM_EXIT_FAIL_ENTRY, 0, "VM entry failed"},
	    {KVM_EXIT_INTERNAL_ERROR, KVM_INTERNAL_ERROR_EMULATION,
	     "KVM internal error 1: instruction emulation failed"},
	    {99, 0, "unexpected KVM exit reason 99"},
	};
	memset(run, 0, sizeof(*run));
	switch (i) {
	case 0:
		*run = io_exit(0x80, KVM_EXIT_IO_OUT, 1);
		return "stray port I/O: write";
	case 1:
		*run = io_exit(SBX_PORT_DOORBELL, KVM_EXIT_IO_IN, 1);
		return "stray port I/O: read";
	case 2:
		*run = io_exit(SBX_PORT_DOORBELL, KVM_EXIT_IO_OUT, 4);
		return "stray port I/O";
	case 3:
		*run = mmio_exit(SBX_DOORBELL_GPA, 0);
		return "stray MMIO read";
	case 4:
		*run = mmio_exit(0xfee00000, 1);
		return "stray MMIO write of 1 byte(s) at 0xfee00000";
	default:
		run->exit_reason = bare[i - 5].reason;
		run->internal.suberror = bare[i - 5].suberror;
		return bare[i - 5].msg;
	}
}

ParameterizedTestParameters(exit_handler, stray_exits)
{
	static int idx[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
	return cr_make_param_array(int, idx, sizeof(idx) / sizeof(idx[0]));
}

ParameterizedTest(int *i, exit_handler, stray_exits)
{
	struct kvm_run run;
	const char *msg = stray_exit(*i, &run);
	cr_assert_eq(sbx_handle_exit(T.vm, &run), SBX_ACT_STOP);
	cr_assert(strstr(T.vm->life.stop.reason, msg), "'%s' lacks '%s'", T.vm->life.stop.reason,
		  msg);
	cr_assert_eq(T.vm->life.stop.status, SBX_STATUS_ERROR);
}

Test(exit_handler, a_kernel_with_another_abi_is_refused)
{
	struct sbx_ring *r = sbx_gptr(T.vm, SBX_RING_ADDR, sizeof(*r));
	r->abi_version = (SBX_ABI_MAJOR + 1) << 16;
	struct sbx_slot s = {.nr = SBX_CALL_EXIT, .seq = 1};
	test_ring_post(&T, &s);
	struct kvm_run run = io_exit(SBX_PORT_DOORBELL, KVM_EXIT_IO_OUT, 1);
	cr_assert_eq(sbx_handle_exit(T.vm, &run), SBX_ACT_STOP);
	cr_assert(strstr(T.vm->life.stop.reason, "hypercall ABI 2.0"), "%s",
		  T.vm->life.stop.reason);
}

Test(exit_handler, interrupted_run_continues)
{
	struct kvm_run run;
	memset(&run, 0, sizeof(run));
	run.exit_reason = KVM_EXIT_INTR;
	cr_assert_eq(sbx_handle_exit(T.vm, &run), SBX_ACT_CONTINUE);
}
