/* Shared by the monitor unit tests: a VM without KVM and a way to post ring requests. */
#ifndef SBX_TEST_HELPERS_H
#define SBX_TEST_HELPERS_H

#include "calls.h"
#include "confine.h"
#include "persist.h"
#include "sandbox_priv.h"

struct test_vm {
	struct sbx_vm *vm;
	struct policy pol;
	char dir[64]; /* a scratch host directory, mounted rw at /w and ro at /r */
	int out_pipe[2];
	FILE *log;
};

void test_vm_setup(struct test_vm *t);
void test_vm_teardown(struct test_vm *t);
/* t's scratch directory gets a file NAME holding TEXT. */
void test_vm_file(struct test_vm *t, const char *name, const char *text);
/* A VM without KVM for prog under pol, its stdout to out, its ring announced as the guest
 * kernel would: 0 or -errno (err says why). Asserts nothing, so that a forked child may call it. */
int test_vm_bare(struct sbx_vm **vm, const char *prog, struct policy *pol, int out, FILE *log,
		 char *err, size_t errlen);
/* Closes both ends of out_pipe and log, and removes dir with all it holds. */
void test_scratch_free(int out_pipe[2], FILE *log, const char *dir);
/* Publishes one request in the guest ring, as the guest kernel would. */
void test_ring_post(struct test_vm *t, const struct sbx_slot *s);
/* Posts a request, serves the ring, returns the result the guest would read. */
int64_t test_call(struct test_vm *t, struct sbx_slot s);
/* Writes a string into guest memory and returns its guest address. */
uint64_t test_put(struct test_vm *t, uint64_t gpa, const char *str);
/* A request of the rw kind (READ, WRITE, GETDENTS...): len bytes at guest address buf, on fd. */
struct sbx_slot test_rw_req(uint32_t nr, int32_t fd, uint64_t buf, uint64_t len);

#endif
