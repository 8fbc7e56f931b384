/* symlinks: symlinks that leave their mount, resolved in the sandbox's own namespace as Linux
 * resolves them in a mount namespace. The guest of tests/monitor/test_policy_e2e.c
 * (symlinks_resolve_in_the_guests_namespace). The sandbox mounts:
 *   /a     rw   empty: the guest makes its links here
 *   /m/b   ro   data.txt ("data\n")
 *   /m/c   rw   sub/f ("mine\n"), top.txt ("top\n")
 * and the host has b/ beside a/, so "../b/data.txt" from /a names a host file but no guest one.
 * Each check prints `NAME ok`, or `NAME ENAME` with the errno it got, or `NAME bad: why`; the
 * test compares the whole output. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <unistd.h>

#include "errname.h"

static void report(const char *name, int r)
{
	printf("%s %s\n", name, r == 0 ? "ok" : errname(-r));
}

static int fail(void)
{
	return -errno;
}

/* Reads the first line of path at dirfd and compares it with want. */
static int read_is(int dirfd, const char *path, const char *want)
{
	char buf[64] = "";
	int fd = openat(dirfd, path, O_RDONLY);
	if (fd < 0)
		return fail();
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return fail();
	buf[strcspn(buf, "\n")] = 0;
	if (strcmp(buf, want) != 0) {
		printf("bad: read \"%s\", not \"%s\"\n", buf, want);
		return -EIO;
	}
	return 0;
}

static int write_to(const char *path, int flags)
{
	int fd = open(path, flags, 0644);
	if (fd < 0)
		return fail();
	int r = write(fd, "pwned\n", 6) == 6 ? 0 : fail();
	close(fd);
	return r;
}

static void link_(const char *target, const char *path)
{
	if (symlink(target, path) != 0)
		printf("setup: symlink %s %s: %s\n", target, path, errname(errno));
}

/* A chain of n links from /a/nN, alternating between /a and /m/c, ending at data.txt. */
static void chain(const char *tag, int n)
{
	char path[64], target[64];
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s%d", i % 2 ? "/m/c" : "/a", tag, i);
		if (i == n - 1)
			snprintf(target, sizeof(target), "/m/b/data.txt");
		else
			snprintf(target, sizeof(target), "%s/%s%d", i % 2 ? "/a" : "/m/c", tag,
				 i + 1);
		link_(target, path);
	}
}

static int check_stat(void)
{
	struct stat st;
	if (stat("/a/abs", &st) != 0)
		return fail();
	if (!S_ISREG(st.st_mode) || st.st_size != 5)
		return -EIO;
	if (lstat("/a/abs", &st) != 0)
		return fail();
	return S_ISLNK(st.st_mode) ? 0 : -EIO;
}

static int check_readlink(void)
{
	char buf[64] = "";
	ssize_t n = readlink("/a/cdir/lnk", buf, sizeof(buf) - 1);
	if (n < 0)
		return fail();
	return strcmp(buf, "sub") == 0 ? 0 : -EIO;
}

static int check_chdir(void)
{
	char cwd[256];
	if (chdir("/a/dl") != 0)
		return fail();
	/* As Linux: the working directory is the object, named by its own path. */
	if (!getcwd(cwd, sizeof(cwd)))
		return fail();
	if (strcmp(cwd, "/m/c/sub") != 0) {
		printf("bad: getcwd %s\n", cwd);
		return -EIO;
	}
	int r = read_is(AT_FDCWD, "../top.txt", "top");
	if (chdir("/") != 0)
		return fail();
	return r;
}

static int check_dirfd(void)
{
	int d = open("/a/cdir", O_RDONLY | O_DIRECTORY);
	if (d < 0)
		return fail();
	int r = read_is(d, "sub/f", "mine");
	if (r == 0)
		r = read_is(d, "../b/data.txt", "data");
	close(d);
	return r;
}

static int check_root(void)
{
	DIR *d = opendir("/a/root");
	if (!d)
		return fail();
	int seen = 0;
	for (struct dirent *e; (e = readdir(d));)
		seen |= (strcmp(e->d_name, "a") == 0) | (strcmp(e->d_name, "m") == 0) << 1;
	closedir(d);
	return seen == 3 ? 0 : -EIO;
}

static int check_statfs_ro(void)
{
	struct statfs st;
	if (statfs("/a/bdir", &st) != 0)
		return fail();
	return (st.f_flags & ST_RDONLY) ? -EROFS : 0;
}

static int check_utimens(const char *path)
{
	return utimensat(AT_FDCWD, path, NULL, 0) == 0 ? 0 : fail();
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	link_("/m/b/data.txt", "/a/abs");
	link_("../m/b/data.txt", "/a/rel");
	link_("../b/data.txt", "/a/hostrel");
	link_("/etc/passwd", "/a/out");
	link_("/m/c/sub", "/a/dl");
	link_("../m/c/sub/..", "/a/up");
	link_("/m/c", "/a/cdir");
	link_("/m/b", "/a/bdir");
	link_("/", "/a/root");
	link_("/m/c/l2", "/a/l1");
	link_("/a/l1", "/m/c/l2");
	link_("/m/b/new", "/a/dang_ro");
	link_("/m/c/made", "/a/dang_rw");
	link_("/a/abs", "/m/c/bounce");
	link_("sub", "/m/c/lnk");
	chain("x", 40);
	chain("y", 41);

	report("read_absolute", read_is(AT_FDCWD, "/a/abs", "data"));
	report("read_relative_dotdot", read_is(AT_FDCWD, "/a/rel", "data"));
	report("read_host_relative", read_is(AT_FDCWD, "/a/hostrel", "data"));
	report("read_out_of_every_mount", read_is(AT_FDCWD, "/a/out", "root"));
	report("read_dir_link", read_is(AT_FDCWD, "/a/dl/f", "mine"));
	report("read_dotdot_in_target", read_is(AT_FDCWD, "/a/up/top.txt", "top"));
	report("read_bouncing", read_is(AT_FDCWD, "/m/c/bounce", "data"));
	report("loop", read_is(AT_FDCWD, "/a/l1", ""));
	report("chain_40", read_is(AT_FDCWD, "/a/x0", "data"));
	report("chain_41", read_is(AT_FDCWD, "/a/y0", "data"));
	report("stat_lstat", check_stat());
	report("readlink", check_readlink());
	report("access_read", access("/a/abs", R_OK) == 0 ? 0 : fail());
	report("access_write_ro", access("/a/abs", W_OK) == 0 ? 0 : fail());
	report("chdir", check_chdir());
	report("dirfd", check_dirfd());
	report("root", check_root());
	report("statfs_ro", check_statfs_ro());
	report("write_ro", write_to("/a/abs", O_WRONLY));
	report("truncate_ro", truncate("/a/abs", 0) == 0 ? 0 : fail());
	report("create_ro", write_to("/a/dang_ro", O_WRONLY | O_CREAT));
	report("create_rw", write_to("/a/dang_rw", O_WRONLY | O_CREAT));
	report("create_excl_nofollow", write_to("/a/dang_rw", O_WRONLY | O_CREAT | O_EXCL));
	report("nofollow", open("/a/abs", O_RDONLY | O_NOFOLLOW) >= 0 ? 0 : fail());
	report("chmod_ro", chmod("/a/abs", 0600) == 0 ? 0 : fail());
	report("chmod_rw", chmod("/a/dl/f", 0600) == 0 ? 0 : fail());
	report("utimens_ro", check_utimens("/a/abs"));
	report("utimens_rw", check_utimens("/a/dl/f"));
	report("mkdir_ro", mkdir("/a/bdir/newdir", 0755) == 0 ? 0 : fail());
	report("mkdir_rw", mkdir("/a/cdir/newdir", 0755) == 0 ? 0 : fail());
	report("unlink_ro", unlink("/a/bdir/data.txt") == 0 ? 0 : fail());
	report("symlink_rw", symlink("t", "/a/cdir/made_link") == 0 ? 0 : fail());
	report("rename_across", rename("/a/cdir/top.txt", "/a/top.txt") == 0 ? 0 : fail());
	report("rename_within", rename("/a/cdir/top.txt", "/a/dl/top.txt") == 0 ? 0 : fail());
	report("link_across", link("/a/dl/f", "/a/hard") == 0 ? 0 : fail());
	report("unlink_rw", unlink("/a/dl/top.txt") == 0 ? 0 : fail());
	return 0;
}
