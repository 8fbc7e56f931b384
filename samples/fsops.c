/* fsops DIR: the read side of the file system and the fd table. DIR must contain exactly:
 *   DIR/f1    regular file, "one\n" (4 bytes), mode 0644
 *   DIR/f2    regular file, "two two\n" (8 bytes), mode 0644
 *   DIR/d1/   empty directory
 *   DIR/link  symlink to "f1"
 * Prints one line per check. Nothing host-specific is printed: no fd numbers, inode numbers or
 * paths except the last component of the working directory after chdir(DIR), so DIR should have
 * the same name in the runs being compared. access(W_OK) prints EROFS on a read-only mount, and
 * ok natively as root. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "errname.h"

static const char *res(int ok)
{
	return ok ? "ok" : errname(errno);
}

static const char *type_name(mode_t m)
{
	if (S_ISREG(m))
		return "reg";
	if (S_ISDIR(m))
		return "dir";
	if (S_ISLNK(m))
		return "lnk";
	if (S_ISCHR(m))
		return "chr";
	if (S_ISFIFO(m))
		return "fifo";
	return "other";
}

static void print_stat(const char *what, const char *path, int follow)
{
	struct stat st;
	int r = follow ? stat(path, &st) : lstat(path, &st);
	if (r != 0) {
		printf("%s %s: %s\n", what, path, errname(errno));
		return;
	}
	/* directory sizes depend on the file system: print them as "-" */
	if (S_ISDIR(st.st_mode))
		printf("%s %s: %s -\n", what, path, type_name(st.st_mode));
	else
		printf("%s %s: %s %lld\n", what, path, type_name(st.st_mode),
		       (long long)st.st_size);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* lists a directory sorted, without "." and ".."; says whether those two were returned */
static void list_dir(const char *label, const char *path)
{
	DIR *d = opendir(path);
	if (!d) {
		printf("opendir %s: %s\n", label, errname(errno));
		return;
	}
	char *names[256];
	int n = 0, dots = 0;
	struct dirent *e;
	errno = 0;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
			dots++;
			continue;
		}
		if (n < 256)
			names[n++] = strdup(e->d_name);
	}
	int err = errno;
	closedir(d);
	qsort(names, (size_t)n, sizeof(names[0]), cmp_str);
	printf("readdir %s: %d entries, . and ..: %s, end: %s\n", label, n,
	       dots == 2 ? "yes" : "no", err ? errname(err) : "ok");
	for (int i = 0; i < n; i++) {
		printf("  %s\n", names[i]);
		free(names[i]);
	}
}

/* the lowest fd number not in use */
static int lowest_free_fd(void)
{
	int fd = 0;
	while (fcntl(fd, F_GETFD) != -1)
		fd++;
	return fd;
}

static void read_show(const char *what, int fd, size_t len)
{
	char buf[64];
	ssize_t n = read(fd, buf, len < sizeof(buf) ? len : sizeof(buf));
	if (n < 0) {
		printf("%s: %s\n", what, errname(errno));
		return;
	}
	printf("%s: %zd \"", what, n);
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] == '\n')
			printf("\\n");
		else
			putchar(buf[i]);
	}
	printf("\"\n");
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: fsops DIR\n");
		return 2;
	}
	const char *dir = argv[1];
	char buf[4096];
	int first_free = lowest_free_fd();

	/* directory listings */
	list_dir("DIR", dir);

	/* chdir + getcwd; everything after this uses relative paths */
	printf("chdir DIR: %s\n", res(chdir(dir) == 0));
	if (getcwd(buf, sizeof(buf))) {
		const char *slash = strrchr(buf, '/');
		printf("getcwd: ok, last component \"%s\"\n", slash ? slash + 1 : buf);
	} else {
		printf("getcwd: %s\n", errname(errno));
	}
	list_dir("d1", "d1");

	/* stat and lstat: type and size */
	print_stat("stat", "f1", 1);
	print_stat("stat", "f2", 1);
	print_stat("stat", "d1", 1);
	print_stat("stat", "link", 1);
	print_stat("lstat", "link", 0);
	print_stat("lstat", "f1", 0);
	print_stat("stat", "missing", 1);

	/* readlink */
	ssize_t n = readlink("link", buf, sizeof(buf) - 1);
	if (n >= 0) {
		buf[n] = '\0';
		printf("readlink link: %zd \"%s\"\n", n, buf);
	} else {
		printf("readlink link: %s\n", errname(errno));
	}
	printf("readlink f1: %s\n", readlink("f1", buf, sizeof(buf)) >= 0 ? "ok" : errname(errno));

	/* access */
	printf("access f1 R_OK: %s\n", res(access("f1", R_OK) == 0));
	printf("access f1 W_OK: %s\n", res(access("f1", W_OK) == 0));
	printf("access missing F_OK: %s\n", res(access("missing", F_OK) == 0));

	/* open errors */
	printf("open missing: %s\n", res(open("missing", O_RDONLY) >= 0));
	printf("open f1 O_DIRECTORY: %s\n", res(open("f1", O_RDONLY | O_DIRECTORY) >= 0));
	printf("open d1/missing/x: %s\n", res(open("d1/missing/x", O_RDONLY) >= 0));

	/* dup, dup2, dup3: numbering and a shared file offset */
	int fd = open("f1", O_RDONLY);
	printf("open f1: %s\n", res(fd >= 0));
	if (fd < 0)
		return 1;
	int expect = lowest_free_fd();
	int d = dup(fd);
	printf("dup: %s, lowest free fd: %s\n", res(d >= 0), d == expect ? "yes" : "no");
	read_show("read 2 via fd", fd, 2);
	read_show("read rest via dup (shared offset)", d, 16);
	int d2 = dup2(fd, 40);
	printf("dup2 to 40: %s\n", d2 == 40 ? "ok" : res(0));
	printf("dup2 to itself: %s\n", dup2(fd, fd) == fd ? "ok" : res(0));
	int d3 = dup3(fd, 41, O_CLOEXEC);
	printf("dup3 to 41 O_CLOEXEC: %s\n", d3 == 41 ? "ok" : res(0));
	printf("dup3 FD_CLOEXEC set: %s\n", fcntl(41, F_GETFD) == FD_CLOEXEC ? "yes" : "no");
	printf("dup3 to itself: %s\n", res(dup3(fd, fd, 0) >= 0));
	printf("dup2 of bad fd: %s\n", res(dup2(1000, 42) >= 0));
	printf("close 40: %s\n", res(close(40) == 0));
	printf("close 40 again: %s\n", res(close(40) == 0));
	close(41);
	close(d);

	/* fcntl: status flags and fd flags */
	int fl = fcntl(fd, F_GETFL);
	printf("F_GETFL: %s, O_RDONLY: %s, O_NONBLOCK: %s\n", res(fl != -1),
	       (fl & O_ACCMODE) == O_RDONLY ? "yes" : "no", (fl & O_NONBLOCK) ? "yes" : "no");
	printf("F_SETFL O_NONBLOCK: %s\n", res(fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0));
	fl = fcntl(fd, F_GETFL);
	printf("F_GETFL O_NONBLOCK: %s\n", (fl & O_NONBLOCK) ? "yes" : "no");
	printf("F_GETFD: %d\n", fcntl(fd, F_GETFD));
	printf("F_SETFD FD_CLOEXEC: %s\n", res(fcntl(fd, F_SETFD, FD_CLOEXEC) == 0));
	printf("F_GETFD: %d\n", fcntl(fd, F_GETFD));
	int dupfd = fcntl(fd, F_DUPFD, 50);
	printf("F_DUPFD 50: %s\n", dupfd == 50 ? "ok" : res(0));
	printf("F_DUPFD copy FD_CLOEXEC: %s\n", fcntl(50, F_GETFD) == 0 ? "clear" : "set");
	close(50);
	close(fd);
	printf("fcntl closed fd: %s\n", res(fcntl(fd, F_GETFD) != -1));

	/* openat relative to a directory fd */
	int dfd = open(".", O_RDONLY | O_DIRECTORY);
	printf("open . O_DIRECTORY: %s\n", res(dfd >= 0));
	int f2 = openat(dfd, "f2", O_RDONLY);
	printf("openat dirfd f2: %s\n", res(f2 >= 0));
	if (f2 >= 0) {
		read_show("read f2", f2, 64);
		close(f2);
	}
	int d1 = openat(dfd, "d1", O_RDONLY | O_DIRECTORY);
	printf("openat dirfd d1 O_DIRECTORY: %s\n", res(d1 >= 0));
	printf("openat d1fd missing: %s\n", res(openat(d1, "missing", O_RDONLY) >= 0));
	struct stat st;
	int r = fstatat(dfd, "link", &st, AT_SYMLINK_NOFOLLOW);
	printf("fstatat dirfd link NOFOLLOW: %s\n", r == 0 ? type_name(st.st_mode) : res(0));
	r = fstatat(dfd, "link", &st, 0);
	printf("fstatat dirfd link: %s\n", r == 0 ? type_name(st.st_mode) : res(0));
	int f1 = openat(AT_FDCWD, "f1", O_RDONLY);
	printf("openat AT_FDCWD f1: %s\n", res(f1 >= 0));
	printf("openat with a file fd as dirfd: %s\n", res(openat(f1, "x", O_RDONLY) >= 0));
	printf("read a directory fd: %s\n", res(read(dfd, buf, sizeof(buf)) >= 0));
	printf("lseek f1 SEEK_END: %lld\n", (long long)lseek(f1, 0, SEEK_END));
	printf("read at end: %zd\n", read(f1, buf, sizeof(buf)));
	printf("lseek negative: %s\n", res(lseek(f1, -10, SEEK_SET) >= 0));
	close(f1);
	close(d1);
	close(dfd);
	printf("no fd leaked: %s\n", lowest_free_fd() == first_free ? "yes" : "no");

	/* /proc/self/exe: compared with argv[0], since its directory is host-specific */
	n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = '\0';
		const char *base = strrchr(buf, '/') ? strrchr(buf, '/') + 1 : buf;
		const char *arg0 = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
		printf("readlink /proc/self/exe: ok, basename %s argv[0]'s\n",
		       strcmp(base, arg0) == 0 ? "equals" : "differs from");
	} else {
		printf("readlink /proc/self/exe: %s\n", errname(errno));
	}
	return 0;
}
