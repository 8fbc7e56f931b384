#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

void test_vm_setup(struct test_vm *t)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/sbx-test-XXXXXX");
	cr_assert_not_null(mkdtemp(t->dir));
	cr_assert_eq(pipe2(t->out_pipe, O_CLOEXEC | O_NONBLOCK), 0);
	t->log = fopen("/dev/null", "w");
	policy_init(&t->pol);
	char spec[128], err[256];
	snprintf(spec, sizeof(spec), "%s:/w", t->dir);
	cr_assert_eq(policy_add_mount(&t->pol, spec, 1, err, sizeof(err)), 0, "%s", err);
	snprintf(spec, sizeof(spec), "%s:/r", t->dir);
	cr_assert_eq(policy_add_mount(&t->pol, spec, 0, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(
	    test_vm_bare(&t->vm, "test", &t->pol, t->out_pipe[1], t->log, err, sizeof(err)), 0,
	    "%s", err);
}

int test_vm_bare(struct sbx_vm **vm, const char *prog, struct policy *pol, int out, FILE *log,
		 char *err, size_t errlen)
{
	struct sbx_config cfg = {
	    .prog = prog,
	    .policy = pol,
	    .mem_size = 16 << 20,
	    .stdin_fd = -1,
	    .stdout_fd = out,
	    .stderr_fd = -1,
	    .log = log,
	};
	int rc = sbx_vm_create_bare(&cfg, vm, err, errlen);
	if (rc < 0)
		return rc;
	struct sbx_ring *r = sbx_gptr(*vm, SBX_RING_ADDR, sizeof(*r));
	r->abi_version = SBX_ABI_VERSION; /* as the guest kernel announces it */
	return 0;
}

void test_vm_teardown(struct test_vm *t)
{
	sbx_vm_destroy(t->vm);
	policy_free(&t->pol);
	test_scratch_free(t->out_pipe, t->log, t->dir);
}

void test_scratch_free(int out_pipe[2], FILE *log, const char *dir)
{
	close(out_pipe[0]);
	close(out_pipe[1]);
	fclose(log);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

void test_ring_post(struct test_vm *t, const struct sbx_slot *s)
{
	struct sbx_ring *r = sbx_gptr(t->vm, SBX_RING_ADDR, sizeof(*r));
	r->slots[r->head % SBX_RING_SLOTS] = *s;
	r->head++;
}

int64_t test_call(struct test_vm *t, struct sbx_slot s)
{
	static uint64_t seq;
	struct sbx_ring *r = sbx_gptr(t->vm, SBX_RING_ADDR, sizeof(*r));
	uint32_t slot = r->head % SBX_RING_SLOTS;
	s.seq = ++seq;
	test_ring_post(t, &s);
	/* A request only the calling vCPU's thread serves (SBX_SLOT_OWN): served as that. */
	if (s.pad & SBX_SLOT_OWN)
		sbx_ring_serve_at(t->vm, SBX_RING_ADDR, &t->vm->proc.ring.tail, 1);
	else
		sbx_ring_serve(t->vm);
	cr_assert_eq(r->slots[slot].done, s.seq, "request was not completed");
	return r->slots[slot].ret;
}

uint64_t test_put(struct test_vm *t, uint64_t gpa, const char *str)
{
	cr_assert_eq(sbx_copy_to_guest(t->vm, gpa, str, strlen(str)), 0);
	return gpa;
}

struct sbx_slot test_rw_req(uint32_t nr, int32_t fd, uint64_t buf, uint64_t len)
{
	struct sbx_slot s = {.nr = nr};
	s.u.rw.fd = fd;
	s.u.rw.buf = buf;
	s.u.rw.len = len;
	return s;
}

void test_vm_file(struct test_vm *t, const char *name, const char *text)
{
	char p[128];
	snprintf(p, sizeof(p), "%s/%s", t->dir, name);
	FILE *f = fopen(p, "w");
	cr_assert_not_null(f, "%s", p);
	fputs(text, f);
	fclose(f);
}
