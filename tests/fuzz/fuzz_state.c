/* libFuzzer target for the monitor's state sections as a snapshot file or a migration stream
 * brings them: the first byte picks the piece (monitor: handle table, cwd, counters; image:
 * segments; threads: each thread's record, checked before its vCPU is made, which needs KVM;
 * objects: pipes with their bytes, eventfds, epoll instances and their registrations),
 * the rest is its body, loaded into a VM without KVM exactly as a restore would.
 * Whatever loads must also save, and the saved bytes must load again. (The vCPU and clock
 * pieces go straight to KVM, which validates them itself; the container is fuzz_snapshot.) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calls.h"
#include "confine.h"
#include "fuzz_vm.h"
#include "persist.h"
#include "sandbox_priv.h"

const uint8_t sbx_kernel_blob[1], sbx_kernel_blob_end[1], sbx_vdso_blob[1], sbx_vdso_blob_end[1];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sbx_vm *fuzz_vm(void)
{
	static struct policy pol;
	static struct sbx_config cfg;
	struct sbx_vm *vm;
	char err[256], ro[] = "/tmp/sbx-fuzz-state-XXXXXX";
	static char dir[64];
	if (!dir[0]) {
		if (!mkdtemp(ro))
			abort();
		snprintf(dir, sizeof(dir), "%s", ro);
		fuzz_hello_file(dir);
		policy_init(&pol);
		fuzz_mount(&pol, dir, "/r", 0);
		fuzz_config(&cfg, &pol);
	}
	if (sbx_vm_create_bare(&cfg, &vm, err, sizeof(err)) < 0)
		abort();
	return vm;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct sbx_vm *vm = fuzz_vm();
	int (*const pieces[4])(struct sbx_vm *, struct sbx_sio *) = {
	    sbx_state_monitor, sbx_state_image, sbx_state_threads, sbx_state_objects};
	int (*piece)(struct sbx_vm *, struct sbx_sio *) = pieces[data[0] % 4];
	sbx_fd_close_all(vm);
	struct sbx_sio in = {.load = 1, .buf = (uint8_t *)data + 1, .len = size - 1};
	int r = piece(vm, &in);
	if (r < 0 && (!in.msg[0] || strchr(in.msg, '\n')))
		__builtin_trap(); /* every failure says why, on one line */
	if (r == 0) {
		struct sbx_sio out = {0};
		if (piece(vm, &out) < 0)
			__builtin_trap();
		sbx_fd_close_all(vm);
		struct sbx_sio again = {.load = 1, .buf = out.buf, .len = out.len};
		if (piece(vm, &again) < 0 || again.pos != again.len)
			__builtin_trap();
		free(out.buf);
	}
	sbx_vm_destroy(vm);
	return 0;
}
