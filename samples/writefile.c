/* writefile DIR: the write side of the file system, one step per line. DIR must exist, be
 * writable and not contain "sub". Creates DIR/sub/a.txt, writes it (write, pwrite past the end,
 * fsync, ftruncate), reads it back, renames it to b.txt; writes and reads DIR/sub/v.bin with
 * pwritev, preadv and their v2 forms; makes entries under umask 002 and tries chown; names
 * ending in '/'; then
 * removes everything it made. Prints
 * only paths relative to DIR, so the output does not depend on where DIR is. Exits 0 when every
 * step gave the expected result, 1 otherwise. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include "step.h"

/* The v2 forms through syscall(): musl's headers may lack them. Offset -1: the position. */
#define RWF_DSYNC_ 2
static ssize_t v2(long nr, int fd, const struct iovec *iov, int cnt, long off, int flags)
{
	return syscall(nr, fd, iov, cnt, off, 0, flags);
}

static void print_escaped(const char *label, const char *buf, size_t n)
{
	printf("%s: \"", label);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (c == '\n')
			printf("\\n");
		else if (c == '\\' || c == '"')
			printf("\\%c", c);
		else if (c < 32 || c > 126)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	printf("\"\n");
}

/* copy_file_range (coreutils' cp tries it first): with and without offsets, the length cut
 * at the source's end, and Linux's errors. src: a 22-byte file. */
static void copy_range(const char *dir, const char *src)
{
	char c[4096];
	snprintf(c, sizeof(c), "%s/sub/c.txt", dir);
	int in = open(src, O_RDONLY), out = open(c, O_RDWR | O_CREAT | O_TRUNC, 0644);
	long n = syscall(SYS_copy_file_range, in, NULL, out, NULL, 1000, 0);
	printf("copy_file_range of all: %ld\n", n < 0 ? -(long)errno : n);
	printf("offsets after it: %lld %lld\n", (long long)lseek(in, 0, SEEK_CUR),
	       (long long)lseek(out, 0, SEEK_CUR));
	loff_t oi = 6, oo = 40;
	n = syscall(SYS_copy_file_range, in, &oi, out, &oo, 5, 0);
	printf("copy_file_range of 5 at 6 to 40: %ld, offsets now %lld %lld\n",
	       n < 0 ? -(long)errno : n, (long long)oi, (long long)oo);
	char got[64] = {0};
	n = pread(out, got, sizeof(got), 40);
	print_escaped("copied", got, n > 0 ? (size_t)n : 0);
	printf("at the end: %ld\n", (long)syscall(SYS_copy_file_range, in, NULL, out, NULL, 10, 0));
	errno = 0;
	syscall(SYS_copy_file_range, in, NULL, out, NULL, 10, 1);
	printf("flags 1: %s\n", errname(errno));
	syscall(SYS_copy_file_range, out, NULL, in, NULL, 10, 0);
	printf("into a read-only descriptor: %s\n", errname(errno));
	oi = 0, oo = 2;
	syscall(SYS_copy_file_range, out, &oi, out, &oo, 5, 0);
	printf("overlapping within a file: %s\n", errname(errno));
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	syscall(SYS_copy_file_range, dfd, NULL, out, NULL, 5, 0);
	printf("from a directory: %s\n", errname(errno));
	int p[2];
	if (pipe(p) == 0) {
		syscall(SYS_copy_file_range, in, NULL, p[1], NULL, 5, 0);
		printf("into a pipe: %s\n", errname(errno));
		close(p[0]);
		close(p[1]);
	}
	close(dfd);
	close(in);
	close(out);
	unlink(c);
}

/* The program's umask is the only one its new entries know (its own 002 under a shell's 022
 * keeps the group's write bit); an O_CREAT open of an existing file leaves its mode; chown
 * looks the file up first (ENOENT, EBADF) and gives nothing away; getrandom of nothing is 0. */
static void modes(const char *sub)
{
	char d[4200], f[4200], p[4200], q[4200];
	snprintf(d, sizeof(d), "%s/g", sub);
	snprintf(f, sizeof(f), "%s/g/f", sub);
	snprintf(p, sizeof(p), "%s/g/p", sub);
	snprintf(q, sizeof(q), "%s/g/q", sub);
	mode_t old = umask(002);
	step("mkdir sub/g 0777 under umask 002", mkdir(d, 0777) == 0);
	int fd = open(f, O_WRONLY | O_CREAT, 0666);
	step("open sub/g/f O_CREAT 0666", fd >= 0 && close(fd) == 0);
	step("mkfifo sub/g/p 0666", mkfifo(p, 0666) == 0);
	fd = open(q, O_WRONLY | O_CREAT | O_EXCL, 0660);
	step("open sub/g/q O_CREAT|O_EXCL 0660", fd >= 0 && close(fd) == 0);
	fd = open(f, O_WRONLY | O_CREAT, 0600);
	step("open sub/g/f O_CREAT 0600 again", fd >= 0 && close(fd) == 0);
	umask(old);
	const char *names[4] = {"sub/g", "sub/g/f", "sub/g/p", "sub/g/q"}, *paths[4] = {d, f, p, q};
	for (int i = 0; i < 4; i++) {
		struct stat st;
		if (step(names[i], stat(paths[i], &st) == 0))
			printf("%s: mode %03o\n", names[i], (unsigned)(st.st_mode & 07777));
	}
	char missing[4300];
	snprintf(missing, sizeof(missing), "%s/missing", d);
	errno = 0;
	printf("chown of a missing file: %s\n",
	       chown(missing, (uid_t)-1, (gid_t)-1) < 0 ? errname(errno) : "ok");
	printf("fchown of fd -1: %s\n",
	       fchown(-1, (uid_t)-1, (gid_t)-1) < 0 ? errname(errno) : "ok");
	step("chown sub/g/f -1 -1", chown(f, (uid_t)-1, (gid_t)-1) == 0);
	step("lchown sub/g/f to its owner", lchown(f, getuid(), getgid()) == 0);
	/* Another owner is the host's to give: root's native run gives it, and so does the
	 * sandbox run by root; a user's is EPERM both ways. Given back at once. */
	errno = 0;
	int given = chown(f, getuid() + 1, (gid_t)-1) == 0;
	printf("chown to another owner: %s\n", given ? "given" : errname(errno));
	if (given)
		step("and back", chown(f, getuid(), (gid_t)-1) == 0);
	printf("fchownat with a flag it does not know: %s\n",
	       syscall(SYS_fchownat, AT_FDCWD, f, -1, -1, 0x8000) < 0 ? errname(errno) : "ok");
	printf("getrandom of 0 bytes into NULL: %ld\n", (long)syscall(SYS_getrandom, NULL, 0, 0));
	step("unlink sub/g/f", unlink(f) == 0);
	step("unlink sub/g/p", unlink(p) == 0);
	step("unlink sub/g/q", unlink(q) == 0);
	step("rmdir sub/g", rmdir(d) == 0);
}

/* A name that ends in '/' names a directory: anything else there is ENOTDIR, and no file,
 * FIFO or link is made by one. */
static void slashes(const char *sub)
{
	char f[4200], d[4200], l[4200], ld[4200], x[4200];
	snprintf(f, sizeof(f), "%s/s.f", sub);
	snprintf(d, sizeof(d), "%s/s.d/", sub);
	snprintf(l, sizeof(l), "%s/s.lf", sub);
	snprintf(ld, sizeof(ld), "%s/s.ld", sub);
	int fd = open(f, O_WRONLY | O_CREAT, 0644);
	step("make s.f, s.d/ and links to them", fd >= 0 && close(fd) == 0 && mkdir(d, 0755) == 0 &&
						     symlink("s.f", l) == 0 &&
						     symlink("s.d", ld) == 0);
	struct stat st;
	const struct {
		const char *what, *name;
		int op;
	} c[] = {{"stat s.f/", "s.f/", 0},
		 {"stat s.d/", "s.d/", 0},
		 {"stat s.lf/", "s.lf/", 0},
		 {"lstat s.ld/", "s.ld/", 1},
		 {"open s.f/", "s.f/", 2},
		 {"open new/ O_CREAT", "new/", 3},
		 {"open s.f/ O_CREAT", "s.f/", 3},
		 {"open s.d/ O_CREAT", "s.d/", 3},
		 {"unlink s.f/", "s.f/", 4},
		 {"unlink s.lf/", "s.lf/", 4},
		 {"access s.f/", "s.f/", 5},
		 {"chmod s.f/", "s.f/", 6},
		 {"mkfifo new/", "new/", 7},
		 {"mkfifo s.f/", "s.f/", 7},
		 {"symlink to new/", "new/", 8},
		 {"rename s.f to new/", "new/", 9},
		 {"rename s.f/ to new", "s.f/", 10},
		 {"readlink s.lf/", "s.lf/", 11},
		 {"access new (made by none)", "new", 5}};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		snprintf(x, sizeof(x), "%s/%s", sub, c[i].name);
		char buf[64];
		long r;
		switch (c[i].op) {
		case 0:
			r = stat(x, &st);
			break;
		case 1:
			r = lstat(x, &st);
			break;
		case 2:
			r = open(x, O_RDONLY);
			break;
		case 3:
			r = open(x, O_WRONLY | O_CREAT, 0644);
			break;
		case 4:
			r = unlink(x);
			break;
		case 5:
			r = access(x, F_OK);
			break;
		case 6:
			r = chmod(x, 0644);
			break;
		case 7:
			r = mkfifo(x, 0644);
			break;
		case 8:
			r = symlink("s.f", x);
			break;
		case 9:
			r = rename(f, x);
			break;
		case 10: {
			char to[4200];
			snprintf(to, sizeof(to), "%s/new", sub);
			r = rename(x, to);
			break;
		}
		default:
			r = readlink(x, buf, sizeof(buf));
			break;
		}
		int e = errno;
		if (r >= 0 && (c[i].op == 2 || c[i].op == 3))
			close((int)r);
		printf("%s: %s\n", c[i].what, r >= 0 ? "ok" : errname(e));
	}
	step("clean up", unlink(f) == 0 && unlink(l) == 0 && unlink(ld) == 0 && rmdir(d) == 0);

	/* A dangling link's own times (shutil.copytree(symlinks=True) copies them). */
	snprintf(x, sizeof(x), "%s/s.broken", sub);
	struct timespec ts[2] = {{1000, 0}, {2000, 0}};
	step("symlink to nothing", symlink("nothing", x) == 0);
	step("its own times set", utimensat(AT_FDCWD, x, ts, AT_SYMLINK_NOFOLLOW) == 0 &&
				      lstat(x, &st) == 0 && st.st_mtime == 2000);
	errno = 0;
	printf("stat through it: %s\n", stat(x, &st) < 0 ? errname(errno) : "ok");
	step("unlink it", unlink(x) == 0);
}

int main(int argc, char **argv)
{
	char sub[4096], a[4096], b[4096];
	if (argc != 2) {
		fprintf(stderr, "usage: writefile DIR\n");
		return 2;
	}
	snprintf(sub, sizeof(sub), "%s/sub", argv[1]);
	snprintf(a, sizeof(a), "%s/sub/a.txt", argv[1]);
	snprintf(b, sizeof(b), "%s/sub/b.txt", argv[1]);

	if (!step("mkdir sub", mkdir(sub, 0755) == 0))
		return 1;

	int fd = open(a, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (!step("open sub/a.txt O_RDWR|O_CREAT|O_TRUNC", fd >= 0))
		return 1;
	const char *text = "hello, file\n";
	ssize_t n = write(fd, text, strlen(text));
	printf("write: %zd\n", n);
	if (n != (ssize_t)strlen(text))
		step_failures++;
	/* past the end: leaves a hole of zero bytes at 12..19 */
	n = pwrite(fd, "XYZ", 3, 20);
	printf("pwrite 3 bytes at 20: %zd\n", n);
	if (n != 3)
		step_failures++;
	/* pwrite must not move the file offset */
	off_t pos = lseek(fd, 0, SEEK_CUR);
	printf("offset after pwrite: %lld\n", (long long)pos);
	if (pos != 12)
		step_failures++;
	step("fsync", fsync(fd) == 0);
	step("ftruncate 22", ftruncate(fd, 22) == 0);
	step("close", close(fd) == 0);

	fd = open(a, O_RDONLY);
	if (!step("reopen sub/a.txt O_RDONLY", fd >= 0))
		return 1;
	char buf[256];
	n = read(fd, buf, sizeof(buf));
	printf("read: %zd\n", n);
	if (n != 22)
		step_failures++;
	if (n > 0)
		print_escaped("content", buf, (size_t)n);
	n = read(fd, buf, sizeof(buf));
	printf("read at end: %zd\n", n);
	if (n != 0)
		step_failures++;
	struct stat st;
	if (step("fstat", fstat(fd, &st) == 0)) {
		printf("fstat size: %lld\n", (long long)st.st_size);
		printf("fstat regular file: %s\n", S_ISREG(st.st_mode) ? "yes" : "no");
		if (st.st_size != 22 || !S_ISREG(st.st_mode))
			step_failures++;
	}
	pos = lseek(fd, 0, SEEK_END);
	printf("lseek SEEK_END: %lld\n", (long long)pos);
	if (pos != 22)
		step_failures++;
	step("close", close(fd) == 0);

	step("rename sub/a.txt sub/b.txt", rename(a, b) == 0);
	int ra = stat(a, &st);
	printf("stat sub/a.txt: %s\n", ra == 0 ? "exists" : errname(errno));
	if (ra == 0 || errno != ENOENT)
		step_failures++;
	int rb = stat(b, &st);
	printf("stat sub/b.txt: %s\n", rb == 0 ? "exists" : errname(errno));
	if (rb != 0)
		step_failures++;
	else if (st.st_size != 22)
		step_failures++;

	/* Vectored and positioned: the file's offset stays where it was, a short read stops at
	 * the end, offset -1 in the v2 forms is the file's own position. */
	char v[4096];
	snprintf(v, sizeof(v), "%s/sub/v.bin", argv[1]);
	fd = open(v, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (!step("open sub/v.bin", fd >= 0))
		return 1;
	struct iovec w[3] = {{"abc", 3}, {"", 0}, {"defgh", 5}};
	printf("pwritev 8 bytes at 4: %zd\n", pwritev(fd, w, 3, 4));
	printf("offset after pwritev: %lld\n", (long long)lseek(fd, 0, SEEK_CUR));
	char r1[5] = {0}, r2[16] = {0};
	struct iovec r[2] = {{r1, 4}, {r2, sizeof(r2) - 1}};
	n = preadv(fd, r, 2, 2);
	printf("preadv at 2: %zd\n", n);
	print_escaped("first", r1, 4);
	print_escaped("second", r2, n > 4 ? (size_t)n - 4 : 0);
	printf("preadv at 100: %zd\n", preadv(fd, r, 2, 100));
	printf("pwritev2 at -1 (the position), RWF_DSYNC: %zd\n",
	       v2(SYS_pwritev2, fd, w, 1, -1, RWF_DSYNC_));
	printf("offset after it: %lld\n", (long long)lseek(fd, 0, SEEK_CUR));
	lseek(fd, 4, SEEK_SET);
	memset(r1, 0, sizeof(r1));
	printf("preadv2 at -1: %zd\n", v2(SYS_preadv2, fd, r, 1, -1, 0));
	print_escaped("read", r1, 4);
	printf("offset after it: %lld\n", (long long)lseek(fd, 0, SEEK_CUR));
	n = preadv(fd, r, 1, -5);
	printf("preadv at -5: %s\n", n < 0 ? errname(errno) : "read");
	n = preadv(-1, r, 1, 0);
	printf("preadv of fd -1: %s\n", n < 0 ? errname(errno) : "read");
	step("close", close(fd) == 0);
	step("unlink sub/v.bin", unlink(v) == 0);

	modes(sub);
	slashes(sub);
	copy_range(argv[1], b);
	step("unlink sub/b.txt", unlink(b) == 0);
	step("rmdir sub", rmdir(sub) == 0);
	int rs = stat(sub, &st);
	printf("stat sub after rmdir: %s\n", rs == 0 ? "exists" : errname(errno));
	if (rs == 0)
		step_failures++;

	printf("%s\n", step_failures ? "FAILED" : "ok");
	return step_failures ? 1 : 0;
}
