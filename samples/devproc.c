/* The /dev and /proc/self a program finds: each device read, written and stat'ed, the
 * stdio links and /dev/fd written through, and /proc/self's maps, status, cmdline, exe and
 * fd read back. Prints only what is the same natively and in the sandbox. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static const char *base(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static void device(const char *path)
{
	struct stat st;
	int fd = open(path, O_RDWR);
	if (fd < 0 || fstat(fd, &st) < 0) {
		printf("%s: %s\n", path, strerror(errno));
		return;
	}
	unsigned char b[16];
	memset(b, 0xff, sizeof(b));
	ssize_t r = read(fd, b, sizeof(b));
	int zeros = 1;
	for (ssize_t i = 0; i < r; i++)
		zeros &= b[i] == 0;
	errno = 0;
	ssize_t w = write(fd, "12345", 5);
	printf("%s: chr %d, mode %o, rdev %u:%u, read %zd%s, write %zd%s%s\n", path,
	       S_ISCHR(st.st_mode), (unsigned)(st.st_mode & 0777), major(st.st_rdev),
	       minor(st.st_rdev), r, r > 0 ? (zeros ? " zeros" : " bytes") : "", w,
	       w < 0 ? " " : "", w < 0 ? strerror(errno) : "");
	close(fd);
}

/* The line of /proc/self/maps holding addr: its permissions and its name's last component. */
static void mapping(const char *what, const void *addr)
{
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f) {
		printf("maps: %s\n", strerror(errno));
		return;
	}
	char line[512];
	uintptr_t a = (uintptr_t)addr;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char perms[8], name[400] = "";
		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %399s", &lo, &hi, perms, name) < 3)
			continue;
		if (a >= lo && a < hi) {
			printf("%s is in a %s mapping of %s\n", what, perms, base(name));
			fclose(f);
			return;
		}
	}
	printf("%s is in no mapping\n", what);
	fclose(f);
}

int main(int argc, char **argv)
{
	(void)argc;
	device("/dev/null");
	device("/dev/zero");
	device("/dev/full");
	struct stat st;
	const char *rnd[] = {"/dev/random", "/dev/urandom"};
	for (int i = 0; i < 2; i++) {
		unsigned char b[64];
		int fd = open(rnd[i], O_RDONLY);
		ssize_t r = fd < 0 ? -1 : read(fd, b, sizeof(b));
		stat(rnd[i], &st);
		printf("%s: read %zd, rdev %u:%u\n", rnd[i], r, major(st.st_rdev),
		       minor(st.st_rdev));
		close(fd);
	}
	fflush(stdout);

	const char *outs[] = {"/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"};
	for (int i = 0; i < 3; i++) {
		int fd = open(outs[i], O_WRONLY);
		char line[64];
		int n = snprintf(line, sizeof(line), "written through %s\n", outs[i]);
		if (fd < 0 || write(fd, line, (size_t)n) != n)
			printf("%s: %s\n", outs[i], strerror(errno));
		close(fd);
	}
	char t[256];
	ssize_t n = readlink("/dev/stdout", t, sizeof(t) - 1);
	t[n > 0 ? n : 0] = 0;
	printf("/dev/stdout -> %s\n", t);

	mapping("main", (void *)main);
	int local;
	mapping("a local", &local);

	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "Name:", 5) || !strncmp(line, "Threads:", 8))
			fputs(line, stdout);
	if (f)
		fclose(f);

	f = fopen("/proc/self/cmdline", "r");
	char cmd[512];
	size_t c = f ? fread(cmd, 1, sizeof(cmd) - 1, f) : 0;
	if (f)
		fclose(f);
	printf("cmdline:");
	for (size_t i = 0; i < c;) {
		printf(" [%s]", i == 0 ? base(cmd) : cmd + i);
		i += strlen(cmd + i) + 1;
	}
	printf("\n");

	n = readlink("/proc/self/exe", t, sizeof(t) - 1);
	t[n > 0 ? n : 0] = 0;
	printf("exe is argv[0]: %s\n", strcmp(base(t), base(argv[0])) == 0 ? "yes" : "no");

	int fd = open("/dev/null", O_RDONLY);
	char p[64];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	n = readlink(p, t, sizeof(t) - 1);
	t[n > 0 ? n : 0] = 0;
	printf("fd %d -> %s\n", fd, t);
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int listed = 0;
	while (d && (e = readdir(d)))
		listed |= atoi(e->d_name) == fd;
	printf("fd %d listed in /proc/self/fd: %s\n", fd, listed ? "yes" : "no");
	if (d)
		closedir(d);
	return 0;
}
