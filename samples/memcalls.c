/* memcalls: mlock and its family and membarrier, with the arguments programs pass and the
 * mistakes they make; prints each result. The same lines natively and in the sandbox (as root
 * or not: nothing here locks more than RLIMIT_MEMLOCK's 8 MiB default or keeps a lock).
 * `memcalls socket` prints what socket(AF_PACKET) gives instead: a sandbox without network
 * refuses it with EACCES (it has only its own loopback). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "errname.h"

#define MB_QUERY 0
#define MB_GLOBAL 1
#define MB_PRIVATE_EXPEDITED 8
#define MB_REGISTER_PRIVATE_EXPEDITED 16

static void show(const char *what, long r)
{
	printf("%s: %s\n", what, r < 0 ? errname(errno) : "ok");
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "socket") == 0) {
		int s = socket(AF_PACKET, SOCK_RAW, 0);
		printf("socket: %s\n", s < 0 ? errname(errno) : "a descriptor");
		return 0;
	}
	long pg = sysconf(_SC_PAGESIZE);
	char *p =
	    mmap(NULL, 4 * (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 1;
	munmap(p + 2 * pg, (size_t)pg); /* a hole: pages 0-1 and 3 mapped */
	show("mlock one page", mlock(p, (size_t)pg));
	show("munlock one page", munlock(p, (size_t)pg));
	show("mlock unaligned, inside two pages", mlock(p + 100, (size_t)pg));
	show("munlock it", munlock(p + 100, (size_t)pg));
	show("mlock across the hole", mlock(p, 4 * (size_t)pg));
	show("munlock across the hole", munlock(p, 4 * (size_t)pg));
	show("mlock of nothing", mlock(p, 0));
	show("mlock of a length that rounds to nothing", mlock(p, SIZE_MAX - 10));
	show("mlock past the top", mlock((void *)(UINTPTR_MAX - 4095), 2 * (size_t)pg));
	show("mlock2 ONFAULT", syscall(SYS_mlock2, p, (size_t)pg, 1));
	show("munlock after mlock2", munlock(p, (size_t)pg));
	show("mlock2 unknown flag", syscall(SYS_mlock2, p, (size_t)pg, 2));
	show("mlockall no flags", mlockall(0));
	show("mlockall ONFAULT alone", mlockall(MCL_ONFAULT));
	show("mlockall unknown flag", mlockall(64));
	show("mlockall FUTURE", mlockall(MCL_FUTURE));
	show("munlockall", munlockall());

	long q = syscall(SYS_membarrier, MB_QUERY, 0, 0);
	printf("membarrier query: %s\n",
	       q < 0 ? errname(errno)
	       : (q & (MB_GLOBAL | MB_PRIVATE_EXPEDITED | MB_REGISTER_PRIVATE_EXPEDITED)) ==
		       (MB_GLOBAL | MB_PRIVATE_EXPEDITED | MB_REGISTER_PRIVATE_EXPEDITED)
		   ? "global and private expedited offered"
		   : "missing commands");
	show("membarrier query with flags", syscall(SYS_membarrier, MB_QUERY, 1, 0));
	show("membarrier private before registering",
	     syscall(SYS_membarrier, MB_PRIVATE_EXPEDITED, 0, 0));
	show("membarrier register private",
	     syscall(SYS_membarrier, MB_REGISTER_PRIVATE_EXPEDITED, 0, 0));
	show("membarrier private", syscall(SYS_membarrier, MB_PRIVATE_EXPEDITED, 0, 0));
	show("membarrier unknown command", syscall(SYS_membarrier, 1 << 20, 0, 0));
	return 0;
}
