/* libFuzzer target for the monitor's request decoding: each input is one ring slot (the
 * request as a hostile guest kernel could write it) followed by bytes placed in guest RAM for
 * its pointers to find. It is served exactly as a doorbell would serve it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "vm.h"

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
	char ro[] = "/tmp/sbx-fuzz-ro-XXXXXX", rw[] = "/tmp/sbx-fuzz-rw-XXXXXX", spec[128];
	char err[256], path[128];
	if (!mkdtemp(ro) || !mkdtemp(rw))
		abort();
	snprintf(path, sizeof(path), "%s/file", ro);
	FILE *f = fopen(path, "w");
	fputs("hello\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/link", ro);
	if (symlink("/etc/passwd", path) < 0)
		abort();
	policy_init(&pol);
	snprintf(spec, sizeof(spec), "%s:/r", ro);
	if (policy_add_mount(&pol, spec, 0, err, sizeof(err)) < 0)
		abort();
	snprintf(spec, sizeof(spec), "%s:/w", rw);
	if (policy_add_mount(&pol, spec, 1, err, sizeof(err)) < 0)
		abort();
	static struct sbx_config cfg;
	cfg.prog = "fuzz";
	cfg.policy = &pol;
	cfg.mem_size = 16 << 20;
	cfg.stdin_fd = -1;
	cfg.stdout_fd = open("/dev/null", O_WRONLY);
	cfg.stderr_fd = cfg.stdout_fd;
	cfg.log = fopen("/dev/null", "w");
	if (sbx_vm_create_bare(&cfg, &vm, err, sizeof(err)) < 0)
		abort();
	struct sbx_ring *r = sbx_gptr(vm, SBX_RING_ADDR, sizeof(*r));
	r->abi_version = SBX_ABI_VERSION;
	return vm;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sbx_vm *vm = fuzz_vm();
	struct sbx_slot s;
	if (size < sizeof(s))
		return 0;
	memcpy(&s, data, sizeof(s));
	/* Sleeping is the one call whose cost the guest may choose; it is tested elsewhere. */
	if (s.nr == SBX_CALL_SLEEP)
		return 0;
	size_t extra = size - sizeof(s);
	if (extra > 1 << 16)
		extra = 1 << 16;
	sbx_copy_to_guest(vm, DATA_AT, data + sizeof(s), extra);
	struct sbx_ring *r = sbx_gptr(vm, SBX_RING_ADDR, sizeof(*r));
	r->slots[r->head % SBX_RING_SLOTS] = s;
	r->head++;
	sbx_ring_serve(vm);
	/* Reset what one request may leave behind: a stop, open handles, the cwd. */
	atomic_store(&vm->stopping, 0);
	memset(&vm->stop, 0, sizeof(vm->stop));
	for (int fd = 3; fd < SBX_MAX_FDS; fd++)
		if (vm->fds[fd].kind != SBX_H_FREE)
			sbx_fd_release(vm, fd);
	snprintf(vm->cwd, sizeof(vm->cwd), "/");
	return 0;
}
