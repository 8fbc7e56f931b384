/* nosys: calls system calls a small sandbox does not implement, with raw syscall(2), and prints
 * the error of each; exits 0. In the sandbox every line should end in ENOSYS. Natively the
 * unassigned number gives ENOSYS too, while io_uring_setup(1, NULL) gives EFAULT (or EPERM/ENOSYS
 * where io_uring is disabled), ptrace(PTRACE_PEEKDATA, pid 0) gives ESRCH or EPERM, and shmget
 * and msgget of a key nobody created (without IPC_CREAT, so nothing is made) give ENOENT. */
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "errname.h"

#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#endif

static void try(const char *name, long nr, long a1, long a2, long a3, long a4)
{
	errno = 0;
	long r = syscall(nr, a1, a2, a3, a4);
	if (r == -1)
		printf("%s: %s\n", name, errname(errno));
	else
		printf("%s: returned %ld\n", name, r);
}

int main(void)
{
	/* 1000: above the last system call number and below the x32 range (1 << 30) */
	try("syscall 1000 (unassigned)", 1000, 0, 0, 0, 0);
	try("io_uring_setup", SYS_io_uring_setup, 1, 0, 0, 0);
	try("ptrace", SYS_ptrace, 2 /* PTRACE_PEEKDATA */, 0, 0, 0);
	try("shmget", SYS_shmget, 0x53427831, 4096, 0, 0);
	try("msgget", SYS_msgget, 0x53427832, 0, 0, 0);
	printf("nosys: done\n");
	return 0;
}
