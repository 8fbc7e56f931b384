/* memfd: memfd_create as programs use it (a file of memory to write, map, seal, hand to a
 * child, or run): prints what each step gives, the same lines natively and in the sandbox.
 *   memfd          the whole walk
 *   memfd hog M    write M MiB into a memfd and hold it (for --mem): exit 1 if refused
 *   memfd hogmap M the same through a shared mapping, the memfd's handle closed first
 *   memfd ran      what the copy of itself run from a memfd prints */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "errname.h"

static void show(const char *what, long r)
{
	printf("%s: %s\n", what, r < 0 ? errname(errno) : "ok");
}

static int hog(long mib, int mapped)
{
	int fd = memfd_create("hog", MFD_CLOEXEC);
	if (mapped) {
		size_t len = (size_t)mib << 20;
		char *p = fd < 0 || ftruncate(fd, (off_t)len) < 0
			      ? MAP_FAILED
			      : mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) {
			perror("memfd map");
			return 1;
		}
		close(fd);
		memset(p, 7, len);
		fd = 0;
	}
	static char buf[1 << 20];
	memset(buf, 7, sizeof(buf));
	for (long i = 0; fd >= 0 && !mapped && i < mib; i++)
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) {
			perror("write");
			return 1;
		}
	if (fd < 0) {
		perror("memfd_create");
		return 1;
	}
	printf("held %ld MiB\n", mib);
	fflush(stdout);
	sleep(2); /* the sandbox's limit is held every few ms */
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 2 && !strcmp(argv[1], "hog"))
		return hog(atol(argv[2]), 0);
	if (argc > 2 && !strcmp(argv[1], "hogmap"))
		return hog(atol(argv[2]), 1);
	if (argc > 1 && !strcmp(argv[1], "ran")) {
		char exe[128] = "";
		ssize_t k = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		printf("run from a memfd: /proc/self/exe is %s\n", k < 0 ? errname(errno) : exe);
		return 0;
	}
	int fd = memfd_create("notes", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	show("memfd_create", fd);
	if (fd < 0)
		return 1;
	char link[64], target[128] = "";
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	printf("readlink: %s\n", n < 0 ? errname(errno) : target);
	printf("F_GETFD: %s\n", fcntl(fd, F_GETFD) == FD_CLOEXEC ? "FD_CLOEXEC" : "none");
	printf("write: %zd\n", write(fd, "hello, memory\n", 14));
	struct stat st;
	show("fstat", fstat(fd, &st));
	printf("size %lld, regular %d, mode %o\n", (long long)st.st_size, S_ISREG(st.st_mode),
	       st.st_mode & 0777);
	char buf[64] = "";
	printf("pread: %zd [%.13s]\n", pread(fd, buf, sizeof(buf), 0), buf);
	show("ftruncate 8192", ftruncate(fd, 8192));
	char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	show("mmap shared", p == MAP_FAILED ? -1 : 0);
	if (p != MAP_FAILED) {
		memcpy(p + 4096, "through the map", 15);
		memset(buf, 0, sizeof(buf));
		printf("pread after a store: [%.15s]\n", pread(fd, buf, 15, 4096) == 15 ? buf : "");
		pwrite(fd, "written", 7, 6);
		printf("the map after a pwrite: [%.13s]\n", p);
		munmap(p, 8192);
	}
	/* A private map is a copy: its stores stay in it. */
	char *q = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	show("mmap private", q == MAP_FAILED ? -1 : 0);
	if (q != MAP_FAILED) {
		q[0] = 'J';
		memset(buf, 0, sizeof(buf));
		pread(fd, buf, 5, 0);
		printf("the file after a private store: [%.5s]\n", buf);
		munmap(q, 4096);
	}
	/* A child shares the file: what it writes, the parent reads. */
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		_exit(pwrite(fd, "child", 5, 100) == 5 ? 0 : 1);
	}
	int ws;
	waitpid(c, &ws, 0);
	memset(buf, 0, sizeof(buf));
	pread(fd, buf, 5, 100);
	printf("child: %d, then the parent reads [%.5s]\n", WEXITSTATUS(ws), buf);
	printf("F_GET_SEALS: %d\n", fcntl(fd, F_GET_SEALS));
	show("F_ADD_SEALS shrink|grow|write",
	     fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE));
	printf("F_GET_SEALS: %d\n", fcntl(fd, F_GET_SEALS));
	show("write when sealed", write(fd, "x", 1));
	show("ftruncate when sealed", ftruncate(fd, 100));
	char *r = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	printf("a read-only shared map when sealed: %s [%.5s]\n",
	       r == MAP_FAILED ? errname(errno) : "ok", r == MAP_FAILED ? "" : r);
	show("a writable shared map when sealed",
	     mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED ? -1 : 0);
	int nos = memfd_create("plain", 0);
	printf("without MFD_ALLOW_SEALING, F_GET_SEALS: %d\n", fcntl(nos, F_GET_SEALS));
	show("F_ADD_SEALS there", fcntl(nos, F_ADD_SEALS, F_SEAL_WRITE));
	printf("F_GETFD without MFD_CLOEXEC: %d\n", fcntl(nos, F_GETFD));
	/* Reopened through /proc: a second handle to the same file. */
	snprintf(link, sizeof(link), "/proc/self/fd/%d", nos);
	int again = open(link, O_RDWR);
	show("open /proc/self/fd/N", again);
	write(nos, "abc", 3);
	struct stat a, b;
	if (again >= 0 && fstat(again, &a) == 0 && fstat(nos, &b) == 0)
		printf("the same file: %d, size %lld\n", a.st_ino == b.st_ino,
		       (long long)a.st_size);
	char name[300];
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	show("a 299-byte name", memfd_create(name, 0));
	name[249] = 0;
	int ok = memfd_create(name, 0);
	show("a 249-byte name", ok);
	show("unknown flags", memfd_create("x", 0x4000));
	show("a name in unmapped memory", memfd_create((const char *)16, 0));
	/* A program run from memory: a copy of this one (fexecve). */
	int self = open("/proc/self/exe", O_RDONLY);
	int prog = memfd_create("prog", MFD_CLOEXEC);
	static char chunk[1 << 16];
	ssize_t got;
	while (self >= 0 && prog >= 0 && (got = read(self, chunk, sizeof(chunk))) > 0)
		write(prog, chunk, (size_t)got);
	fflush(stdout);
	c = fork();
	if (c == 0) {
		char *args[] = {"memfd", "ran", NULL};
		fexecve(prog, args, environ);
		printf("fexecve: %s\n", errname(errno));
		_exit(1);
	}
	waitpid(c, &ws, 0);
	printf("the memfd's program: %d\n", WEXITSTATUS(ws));
	show("fchdir", fchdir(fd));
	show("openat relative to it", openat(fd, "x", O_RDONLY));
	return 0;
}
