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
