/* The network. A policy grants none yet, so socket() is refused the way a Linux security
 * module refuses it (EACCES, which resolvers and NSS treat as "no service" and go on),
 * rather than ENOSYS, which would claim the call is missing. Counted with the refused calls,
 * so that the monitor says under -v what was refused. */
#include "kernel.h"

#define NR_SOCKET 41

long k_sys_socket(struct k_frame *f)
{
	(void)f;
	BOOT->nosys_count[NR_SOCKET]++;
	return -EACCES;
}

/* The calls on a socket. No descriptor of the sandbox is one (socket() is refused and none is
 * passed in as such), so each answers as Linux does for any other file: ENOTSOCK, or EBADF
 * for a descriptor not open. bash, for one, asks getpeername of its stdin at every start. */
long k_sys_notsock(struct k_frame *f)
{
	uint64_t a[3] = {(uint64_t)(int64_t)(int32_t)f->rdi, 1 /* F_GETFD */, 0};
	long r = k_call(SBX_CALL_FCNTL, a, 3);
	return r < 0 ? r : -ENOTSOCK;
}
