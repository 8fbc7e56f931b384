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
/* Publishes one request in the guest ring, as the guest kernel would. */
void test_ring_post(struct test_vm *t, const struct sbx_slot *s);
/* Posts a request, serves the ring, returns the result the guest would read. */
int64_t test_call(struct test_vm *t, struct sbx_slot s);
/* Writes a string into guest memory and returns its guest address. */
uint64_t test_put(struct test_vm *t, uint64_t gpa, const char *str);

#endif
