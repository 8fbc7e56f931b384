/* mapshared MODE PATH: shared file mappings (mmap MAP_SHARED), one step per line.
 *   rw DIR     makes DIR/m.dat (two pages), maps it shared read-write (/proc/self/maps shows
 *              it), writes through the mapping and reads with pread, writes with pwrite and
 *              reads through the mapping, uses it as write's and pread's buffer on another
 *              file, msyncs, shrinks it with mremap and unmaps, then: a read-only mapping of an
 * O_RDONLY fd (PROT_WRITE and mprotect are EACCES), SIGBUS past the end of the file (si_code, and
 * si_addr relative to the mapping), /dev/zero and anonymous shared memory. Leaves DIR/m.dat as
 * "SHARED...": the caller checks the host file. leave DIR  makes DIR/l.dat (one page) and writes
 * "left" through a shared mapping, then exits with neither msync nor munmap: the write must reach
 * the file anyway. ro FILE    FILE is on a read-only mount: a shared PROT_WRITE mapping is EACCES,
 * a read-only one shows its first bytes. bus DIR    reads past the end of DIR/b.dat through a
 * shared mapping, with no handler: the program dies of SIGBUS. hold DIR   maps DIR/h.dat shared,
 * says "mapped", and keeps the mapping until DIR/go exists (a snapshot taken meanwhile must
 * refuse), then writes through it. Exits 0 when every step gave the expected result, 1 otherwise.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "step.h"

#define PAGE 4096

static void expect_err(const char *what, int failed, int want)
{
	printf("%s: %s\n", what, failed ? errname(errno) : "succeeded");
	if (!failed || errno != want)
		step_failures++;
}

static sigjmp_buf bus_jump;
static volatile char *bus_base;

static void on_bus(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	printf("signal %s si_code %s at mapping+%ld\n", sig == SIGBUS ? "SIGBUS" : "other",
	       si->si_code == BUS_ADRERR ? "BUS_ADRERR" : "other",
	       (long)((char *)si->si_addr - (char *)bus_base));
	siglongjmp(bus_jump, 1);
}

/* Does /proc/self/maps have a line for the mapping at m with these permissions and path? */
static int maps_line(const void *m, const char *perms, const char *path)
{
	char line[8192], want[64];
	snprintf(want, sizeof(want), "%lx-", (unsigned long)m);
	FILE *f = fopen("/proc/self/maps", "r");
	int found = 0;
	while (f && !found && fgets(line, sizeof(line), f))
		found =
		    !strncmp(line, want, strlen(want)) && strstr(line, perms) && strstr(line, path);
	if (f)
		fclose(f);
	return found;
}

static int make_file(const char *path, size_t size)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
		return -1;
	return fd;
}

static void mode_rw(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/m.dat", dir);
	int fd = make_file(path, 2 * PAGE);
	if (!step("create", fd >= 0))
		return;
	char *m = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (!step("mmap shared rw", m != MAP_FAILED))
		return;
	memcpy(m, "SHARED", 6);
	step("/proc/self/maps shows it", maps_line(m, "rw-s", path));
	memcpy(m + PAGE + 10, "second", 6);
	char buf[16] = {0};
	step("pread sees the mapping's write",
	     pread(fd, buf, 6, 0) == 6 && memcmp(buf, "SHARED", 6) == 0);
	step("pread sees the second page",
	     pread(fd, buf, 6, PAGE + 10) == 6 && memcmp(buf, "second", 6) == 0);
	step("pwrite", pwrite(fd, "pwrite", 6, 100) == 6);
	step("the mapping sees pwrite", memcmp(m + 100, "pwrite", 6) == 0);
	/* A mapping as the buffer of write and read on another file. */
	char copy[4096];
	snprintf(copy, sizeof(copy), "%s/copy.dat", dir);
	int cfd = open(copy, O_RDWR | O_CREAT | O_TRUNC, 0644);
	step("write from the mapping", cfd >= 0 && write(cfd, m, 6) == 6 &&
					   pread(cfd, buf, 6, 0) == 6 &&
					   memcmp(buf, "SHARED", 6) == 0);
	step("read into the mapping",
	     pread(cfd, m + 300, 6, 0) == 6 && memcmp(m + 300, "SHARED", 6) == 0);
	close(cfd);
	unlink(copy);
	step("msync", msync(m, 2 * PAGE, MS_SYNC) == 0);
	expect_err("msync unaligned", msync(m + 1, PAGE, MS_SYNC) < 0, EINVAL);
	step("mprotect read-only", mprotect(m, 2 * PAGE, PROT_READ) == 0);
	step("mprotect read-write again", mprotect(m, 2 * PAGE, PROT_READ | PROT_WRITE) == 0);
	m[200] = 'x';
	/* Python's mmap.resize to less: the tail goes, the rest stays where it is. */
	step("mremap to one page in place", mremap(m, 2 * PAGE, PAGE, 0) == m && m[200] == 'x');
	step("munmap", munmap(m, 2 * PAGE) == 0);
	step("pread after munmap", pread(fd, buf, 1, 200) == 1 && buf[0] == 'x');
	close(fd);

	int ro = open(path, O_RDONLY);
	step("open O_RDONLY", ro >= 0);
	expect_err("mmap shared rw of O_RDONLY",
		   mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0) == MAP_FAILED,
		   EACCES);
	char *r = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, ro, 0);
	if (step("mmap shared ro of O_RDONLY", r != MAP_FAILED)) {
		printf("reads: %.6s\n", r);
		expect_err("mprotect PROT_WRITE", mprotect(r, PAGE, PROT_READ | PROT_WRITE) < 0,
			   EACCES);
		munmap(r, PAGE);
	}
	close(ro);

	/* One page of file under a two-page mapping: the second page is past the end. */
	snprintf(path, sizeof(path), "%s/short.dat", dir);
	fd = make_file(path, PAGE);
	char *s = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (step("mmap past the end", s != MAP_FAILED)) {
		struct sigaction sa = {.sa_sigaction = on_bus, .sa_flags = SA_SIGINFO};
		sigaction(SIGBUS, &sa, NULL);
		bus_base = s;
		s[PAGE - 1] = 'e';
		if (sigsetjmp(bus_jump, 1) == 0) {
			s[PAGE + 8] = 'p';
			printf("no SIGBUS\n");
			step_failures++;
		}
		expect_err("write from past the end", write(fd, s + PAGE, 8) < 0, EFAULT);
		step("ftruncate to two pages", ftruncate(fd, 2 * PAGE) == 0);
		s[PAGE + 8] = 'p';
		step("the grown page is written",
		     pread(fd, buf, 1, PAGE + 8) == 1 && buf[0] == 'p');
		munmap(s, 2 * PAGE);
	}
	close(fd);
	unlink(path);

	int z = open("/dev/zero", O_RDWR);
	char *zm = z < 0 ? MAP_FAILED : mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, z, 0);
	if (step("mmap /dev/zero shared", zm != MAP_FAILED)) {
		step("reads zero", zm[10] == 0);
		zm[10] = 7;
		step("keeps a write", zm[10] == 7);
		munmap(zm, PAGE);
	}
	if (z >= 0)
		close(z);
	char *a = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (step("mmap anonymous shared", a != MAP_FAILED)) {
		a[5] = 9;
		step("keeps a write", a[5] == 9 && a[6] == 0);
		munmap(a, PAGE);
	}
}

static void mode_leave(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/l.dat", dir);
	int fd = make_file(path, PAGE);
	char *m = fd < 0 ? MAP_FAILED : mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (step("mmap shared rw", m != MAP_FAILED))
		memcpy(m, "left", 4);
}

static void mode_ro(const char *file)
{
	int fd = open(file, O_RDONLY);
	if (!step("open O_RDONLY", fd >= 0))
		return;
	expect_err("mmap shared rw",
		   mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED,
		   EACCES);
	char *r = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);
	if (step("mmap shared ro", r != MAP_FAILED))
		printf("reads: %.3s\n", r);
}

static void mode_bus(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/b.dat", dir);
	int fd = make_file(path, 100);
	volatile char *m = fd < 0 ? MAP_FAILED : mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	if (step("mmap", m != MAP_FAILED))
		printf("read %d\n", m[PAGE + 17]);
}

static void mode_hold(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/h.dat", dir);
	int fd = make_file(path, PAGE);
	char *m = fd < 0 ? MAP_FAILED : mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (!step("mapped", m != MAP_FAILED))
		return;
	snprintf(path, sizeof(path), "%s/go", dir);
	while (access(path, F_OK) != 0)
		usleep(20000);
	memcpy(m, "held", 4);
	step("munmap", munmap(m, PAGE) == 0);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc != 3) {
		fprintf(stderr, "usage: mapshared rw|leave|ro|bus|hold PATH\n");
		return 2;
	}
	if (!strcmp(argv[1], "rw"))
		mode_rw(argv[2]);
	else if (!strcmp(argv[1], "leave"))
		mode_leave(argv[2]);
	else if (!strcmp(argv[1], "ro"))
		mode_ro(argv[2]);
	else if (!strcmp(argv[1], "bus"))
		mode_bus(argv[2]);
	else if (!strcmp(argv[1], "hold"))
		mode_hold(argv[2]);
	else
		return 2;
	return step_failures ? 1 : 0;
}
