/* membarrier. The program runs on one vCPU, so every barrier it could ask for is already
 * there when the call is made: no other CPU runs its threads. What remains is Linux's
 * contract: the commands it offers, and the registration the private ones require first
 * (EPERM without it), which runtimes probe before they rely on the call. When threads get
 * vCPUs of their own, the expedited commands must serialise those vCPUs instead. */
#include "kernel.h"

enum {
	MB_QUERY = 0,
	MB_GLOBAL = 1 << 0,
	MB_GLOBAL_EXPEDITED = 1 << 1,
	MB_REGISTER_GLOBAL_EXPEDITED = 1 << 2,
	MB_PRIVATE_EXPEDITED = 1 << 3,
	MB_REGISTER_PRIVATE_EXPEDITED = 1 << 4,
	MB_PRIVATE_EXPEDITED_SYNC_CORE = 1 << 5,
	MB_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE = 1 << 6,
	MB_PRIVATE_EXPEDITED_RSEQ = 1 << 7,
	MB_REGISTER_PRIVATE_EXPEDITED_RSEQ = 1 << 8,
	MB_GET_REGISTRATIONS = 1 << 9,
	MB_FLAG_CPU = 1 << 0,
};

#define MB_SUPPORTED                                                                               \
	(MB_GLOBAL | MB_GLOBAL_EXPEDITED | MB_REGISTER_GLOBAL_EXPEDITED | MB_PRIVATE_EXPEDITED |   \
	 MB_REGISTER_PRIVATE_EXPEDITED | MB_PRIVATE_EXPEDITED_SYNC_CORE |                          \
	 MB_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE | MB_PRIVATE_EXPEDITED_RSEQ |                     \
	 MB_REGISTER_PRIVATE_EXPEDITED_RSEQ | MB_GET_REGISTRATIONS)

/* The REGISTER_* commands this process has made (part of guest memory: a snapshot keeps it). */
static unsigned k_mb_registered;

/* A private command needs its registration, which is the next bit up. */
static long private_cmd(unsigned cmd)
{
	return (k_mb_registered & (cmd << 1)) ? 0 : -EPERM;
}

long k_sys_membarrier(struct k_frame *f)
{
	uint64_t cmd = f->rdi, flags = f->rsi;
	if (flags && !(cmd == MB_PRIVATE_EXPEDITED_RSEQ && flags == MB_FLAG_CPU))
		return -EINVAL;
	switch (cmd) {
	case MB_QUERY:
		return MB_SUPPORTED;
	case MB_GLOBAL:
	case MB_GLOBAL_EXPEDITED:
		return 0;
	case MB_REGISTER_GLOBAL_EXPEDITED:
	case MB_REGISTER_PRIVATE_EXPEDITED:
	case MB_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE:
	case MB_REGISTER_PRIVATE_EXPEDITED_RSEQ:
		k_mb_registered |= (unsigned)cmd;
		return 0;
	case MB_PRIVATE_EXPEDITED:
	case MB_PRIVATE_EXPEDITED_SYNC_CORE:
	case MB_PRIVATE_EXPEDITED_RSEQ:
		return private_cmd((unsigned)cmd);
	case MB_GET_REGISTRATIONS:
		return k_mb_registered;
	default:
		return -EINVAL;
	}
}
