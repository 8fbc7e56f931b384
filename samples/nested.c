/* nested CASE: one attempt on a layout of nested mounts, the guest of the nested-mount tests
 * (tests/monitor/test_policy_e2e.c). The sandbox mounts:
 *   /rw        rw   holds prot/ and f.txt, and whatever the guest makes
 *   /rw/prot   ro   p.txt ("protected\n"), sub/ (empty)
 *   /rw/f.txt  ro   a single file ("protected\n")
 *   /ro        ro   o.txt ("protected\n"), w/, lnk -> w, wup -> w/.. (links made on the host)
 *   /ro/w      rw   x.txt ("mine\n")
 * A case first prepares what it needs where it may (symlinks in /rw...; a failure there is
 * `CASE setup: ENAME`, exit 2), then makes one attempt and prints `CASE ok` if it succeeded or
 * `CASE ENAME` with the errno if it did not. Attacks on the read-only parts must print an
 * errno; the other cases must print ok. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "errname.h"

static const char *name;

/* A step the case needs before its attempt. */
static void need(int ok, const char *what)
{
	if (!ok) {
		printf("%s setup: %s: %s\n", name, what, errname(errno));
		exit(2);
	}
}

static int err(void)
{
	return -errno;
}

/* Opens and writes a line: the whole attempt of a write case. */
static int write_at(int dirfd, const char *path, int flags)
{
	int fd = openat(dirfd, path, flags, 0644);
	if (fd < 0)
		return err();
	int r = write(fd, "pwned\n", 6) == 6 ? 0 : err();
	close(fd);
	return r;
}

static int write_path(const char *path, int flags)
{
	return write_at(AT_FDCWD, path, flags);
}

/* Reads the file and checks it holds "protected\n" (-EIO if not). */
static int read_protected(const char *path)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return err();
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return err();
	return strcmp(buf, "protected\n") == 0 ? 0 : -EIO;
}

static void link_pl(void)
{
	need(symlink("prot", "/rw/pl") == 0, "symlink /rw/pl -> prot");
}

static void link_self(void)
{
	need(symlink(".", "/rw/self") == 0, "symlink /rw/self -> .");
}

static void make_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	need(fd >= 0, path);
	close(fd);
}

static const struct timespec times[2] = {{1, 0}, {1, 0}};

/* ---- Attacks on /rw/prot (a read-only directory inside a read-write one) ---- */

static int dir_symlink_write(void)
{
	link_pl();
	return write_path("/rw/pl/p.txt", O_WRONLY | O_TRUNC);
}

static int file_symlink_write(void)
{
	need(symlink("prot/p.txt", "/rw/fl") == 0, "symlink");
	return write_path("/rw/fl", O_WRONLY | O_TRUNC);
}

static int abs_symlink_write(void)
{
	need(symlink("/rw/prot", "/rw/al") == 0, "symlink");
	return write_path("/rw/al/p.txt", O_WRONLY | O_TRUNC);
}

static int dotdot_symlink_write(void)
{
	need(mkdir("/rw/d", 0755) == 0, "mkdir");
	need(symlink("d/../prot", "/rw/dd") == 0, "symlink");
	return write_path("/rw/dd/p.txt", O_WRONLY | O_TRUNC);
}

static int dot_symlink_write(void)
{
	link_self();
	return write_path("/rw/self/prot/p.txt", O_WRONLY | O_TRUNC);
}

static int symlink_chain_write(void)
{
	link_pl();
	need(symlink("pl", "/rw/pl2") == 0, "symlink");
	need(symlink("pl2/p.txt", "/rw/pf") == 0, "symlink");
	return write_path("/rw/pf", O_WRONLY | O_APPEND);
}

static int dirfd_write(void)
{
	link_pl();
	int d = open("/rw/pl", O_RDONLY | O_DIRECTORY);
	need(d >= 0, "open /rw/pl");
	return write_at(d, "p.txt", O_WRONLY | O_TRUNC);
}

static int dirfd_outer_write(void)
{
	link_pl();
	int d = open("/rw", O_RDONLY | O_DIRECTORY);
	need(d >= 0, "open /rw");
	return write_at(d, "pl/p.txt", O_WRONLY | O_TRUNC);
}

static int fchdir_write(void)
{
	link_pl();
	int d = open("/rw/pl", O_RDONLY | O_DIRECTORY);
	need(d >= 0, "open /rw/pl");
	need(fchdir(d) == 0, "fchdir");
	return write_path("p.txt", O_WRONLY | O_TRUNC);
}

static int chdir_write(void)
{
	link_pl();
	need(chdir("/rw/pl") == 0, "chdir");
	return write_path("p.txt", O_WRONLY | O_TRUNC);
}

static int create(void)
{
	link_pl();
	return write_path("/rw/pl/new.txt", O_WRONLY | O_CREAT);
}

static int create_excl(void)
{
	link_pl();
	return write_path("/rw/pl/new.txt", O_WRONLY | O_CREAT | O_EXCL);
}

static int create_dangling(void)
{
	need(symlink("prot/new.txt", "/rw/dang") == 0, "symlink");
	return write_path("/rw/dang", O_WRONLY | O_CREAT);
}

static int tmpfile_in(void)
{
	link_pl();
	return write_path("/rw/pl", O_TMPFILE | O_WRONLY);
}

static int truncate_(void)
{
	link_pl();
	return truncate("/rw/pl/p.txt", 0) == 0 ? 0 : err();
}

static int chmod_(void)
{
	link_pl();
	return chmod("/rw/pl/p.txt", 0666) == 0 ? 0 : err();
}

static int fchmod_(void)
{
	link_pl();
	int fd = open("/rw/pl/p.txt", O_RDONLY);
	need(fd >= 0, "open for reading");
	return fchmod(fd, 0666) == 0 ? 0 : err();
}

static int utimens(void)
{
	link_pl();
	return utimensat(AT_FDCWD, "/rw/pl/p.txt", times, 0) == 0 ? 0 : err();
}

static int futimens_(void)
{
	link_pl();
	int fd = open("/rw/pl/p.txt", O_RDONLY);
	need(fd >= 0, "open for reading");
	return futimens(fd, times) == 0 ? 0 : err();
}

static int unlink_(void)
{
	link_pl();
	return unlink("/rw/pl/p.txt") == 0 ? 0 : err();
}

static int rmdir_(void)
{
	link_pl();
	return rmdir("/rw/pl/sub") == 0 ? 0 : err();
}

static int mkdir_(void)
{
	link_pl();
	return mkdir("/rw/pl/newdir", 0755) == 0 ? 0 : err();
}

static int symlink_into(void)
{
	link_pl();
	return symlink("p.txt", "/rw/pl/newlink") == 0 ? 0 : err();
}

static int rename_out(void)
{
	link_pl();
	return rename("/rw/pl/p.txt", "/rw/stolen.txt") == 0 ? 0 : err();
}

static int rename_in(void)
{
	link_pl();
	make_file("/rw/evil.txt");
	return rename("/rw/evil.txt", "/rw/pl/p.txt") == 0 ? 0 : err();
}

static int renameat2_in(void)
{
	link_pl();
	make_file("/rw/evil.txt");
	long r = syscall(SYS_renameat2, AT_FDCWD, "/rw/evil.txt", AT_FDCWD, "/rw/pl/p.txt", 0);
	return r == 0 ? 0 : err();
}

static int rename_mount_point(void)
{
	link_self();
	return rename("/rw/self/prot", "/rw/moved") == 0 ? 0 : err();
}

static int rename_over_mount_point(void)
{
	link_self();
	need(mkdir("/rw/empty", 0755) == 0, "mkdir");
	return rename("/rw/empty", "/rw/self/prot/sub") == 0 ? 0 : err();
}

static int link_out(void)
{
	link_pl();
	return link("/rw/pl/p.txt", "/rw/hard") == 0 ? 0 : err();
}

static int link_follow_out(void)
{
	need(symlink("prot/p.txt", "/rw/fl") == 0, "symlink");
	return linkat(AT_FDCWD, "/rw/fl", AT_FDCWD, "/rw/hard", AT_SYMLINK_FOLLOW) == 0 ? 0 : err();
}

static int link_in(void)
{
	link_pl();
	make_file("/rw/mine");
	return link("/rw/mine", "/rw/pl/new") == 0 ? 0 : err();
}

/* ---- Attacks on /rw/f.txt (a read-only file inside a read-write directory) ---- */

static int file_mount_symlink_write(void)
{
	need(symlink("f.txt", "/rw/ff") == 0, "symlink");
	return write_path("/rw/ff", O_WRONLY | O_TRUNC);
}

static int file_mount_dot_write(void)
{
	link_self();
	return write_path("/rw/self/f.txt", O_WRONLY | O_TRUNC);
}

static int file_mount_chmod(void)
{
	need(symlink("f.txt", "/rw/ff") == 0, "symlink");
	return chmod("/rw/ff", 0666) == 0 ? 0 : err();
}

static int file_mount_unlink(void)
{
	link_self();
	return unlink("/rw/self/f.txt") == 0 ? 0 : err();
}

static int file_mount_rename_over(void)
{
	link_self();
	make_file("/rw/evil.txt");
	return rename("/rw/evil.txt", "/rw/self/f.txt") == 0 ? 0 : err();
}

static int file_mount_link_out(void)
{
	link_self();
	return link("/rw/self/f.txt", "/rw/hard") == 0 ? 0 : err();
}

/* ---- /ro/w: a read-write directory inside a read-only one ---- */

static int rw_child_up_write(void)
{
	need(symlink("..", "/ro/w/up") == 0, "symlink");
	return write_path("/ro/w/up/o.txt", O_WRONLY | O_TRUNC);
}

static int ro_through_host_link_write(void)
{
	return write_path("/ro/wup/o.txt", O_WRONLY | O_TRUNC);
}

static int rw_child_rename_out(void)
{
	return rename("/ro/lnk/x.txt", "/ro/wup/moved.txt") == 0 ? 0 : err();
}

/* ---- What must keep working ---- */

static int read_through_symlink(void)
{
	link_pl();
	int r = read_protected("/rw/pl/p.txt");
	if (r == 0)
		r = chdir("/rw/pl") == 0 ? read_protected("p.txt") : err();
	return r;
}

static int read_file_mount_through_symlink(void)
{
	need(symlink("f.txt", "/rw/ff") == 0, "symlink");
	return read_protected("/rw/ff");
}

static int read_dot(void)
{
	link_self();
	int r = read_protected("/rw/self/prot/p.txt");
	return r ? r : read_protected("/ro/lnk/../o.txt");
}

/* Everyday work on /rw beside the nested mounts, through symlinks and handles too. */
static int rw_work(void)
{
	struct stat st;
	need(mkdir("/rw/d", 0755) == 0, "mkdir");
	need(symlink("d", "/rw/dl") == 0, "symlink");
	if (write_path("/rw/dl/a", O_WRONLY | O_CREAT | O_EXCL) < 0 ||
	    write_path("/rw/d/a", O_WRONLY | O_APPEND) < 0 || rename("/rw/dl/a", "/rw/b") < 0 ||
	    link("/rw/b", "/rw/dl/c") < 0 || chmod("/rw/dl/c", 0600) < 0 ||
	    utimensat(AT_FDCWD, "/rw/dl/c", times, 0) < 0 || truncate("/rw/dl/c", 3) < 0 ||
	    stat("/rw/b", &st) < 0 || st.st_size != 3 || (st.st_mode & 0777) != 0600 ||
	    symlink("b", "/rw/dl/bl") < 0 || unlink("/rw/dl/bl") < 0 || unlink("/rw/d/c") < 0)
		return err();
	int d = open("/rw/dl", O_RDONLY | O_DIRECTORY);
	if (d < 0 || write_at(d, "e", O_WRONLY | O_CREAT) < 0 || fchdir(d) < 0 ||
	    write_path("f", O_WRONLY | O_CREAT) < 0 || mkdir("g", 0755) < 0 || rmdir("g") < 0 ||
	    rename("f", "/rw/f2") < 0 || access("/rw/dl/e", W_OK) < 0)
		return err();
	return 0;
}

static int rw_child_write(void)
{
	return write_path("/ro/w/x.txt", O_WRONLY | O_APPEND);
}

static int rw_child_through_host_link_write(void)
{
	return write_path("/ro/lnk/x.txt", O_WRONLY | O_APPEND);
}

static const struct {
	const char *name;
	int (*fn)(void);
} cases[] = {
    {"dir_symlink_write", dir_symlink_write},
    {"file_symlink_write", file_symlink_write},
    {"abs_symlink_write", abs_symlink_write},
    {"dotdot_symlink_write", dotdot_symlink_write},
    {"dot_symlink_write", dot_symlink_write},
    {"symlink_chain_write", symlink_chain_write},
    {"dirfd_write", dirfd_write},
    {"dirfd_outer_write", dirfd_outer_write},
    {"fchdir_write", fchdir_write},
    {"chdir_write", chdir_write},
    {"create", create},
    {"create_excl", create_excl},
    {"create_dangling", create_dangling},
    {"tmpfile", tmpfile_in},
    {"truncate", truncate_},
    {"chmod", chmod_},
    {"fchmod", fchmod_},
    {"utimens", utimens},
    {"futimens", futimens_},
    {"unlink", unlink_},
    {"rmdir", rmdir_},
    {"mkdir", mkdir_},
    {"symlink_into", symlink_into},
    {"rename_out", rename_out},
    {"rename_in", rename_in},
    {"renameat2_in", renameat2_in},
    {"rename_mount_point", rename_mount_point},
    {"rename_over_mount_point", rename_over_mount_point},
    {"link_out", link_out},
    {"link_follow_out", link_follow_out},
    {"link_in", link_in},
    {"file_mount_symlink_write", file_mount_symlink_write},
    {"file_mount_dot_write", file_mount_dot_write},
    {"file_mount_chmod", file_mount_chmod},
    {"file_mount_unlink", file_mount_unlink},
    {"file_mount_rename_over", file_mount_rename_over},
    {"file_mount_link_out", file_mount_link_out},
    {"rw_child_up_write", rw_child_up_write},
    {"ro_through_host_link_write", ro_through_host_link_write},
    {"rw_child_rename_out", rw_child_rename_out},
    {"read_through_symlink", read_through_symlink},
    {"read_file_mount_through_symlink", read_file_mount_through_symlink},
    {"read_dot", read_dot},
    {"rw_work", rw_work},
    {"rw_child_write", rw_child_write},
    {"rw_child_through_host_link_write", rw_child_through_host_link_write},
};

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: nested CASE\n");
		return 2;
	}
	name = argv[1];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (strcmp(cases[i].name, name) == 0) {
			int r = cases[i].fn();
			printf("%s %s\n", name, r == 0 ? "ok" : errname(-r));
			return 0;
		}
	}
	fprintf(stderr, "nested: unknown case %s\n", name);
	return 2;
}
