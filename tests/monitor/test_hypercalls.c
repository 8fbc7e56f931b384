/* Hypercall decoding and validation, driven through the ring with hostile arguments. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

static struct test_vm T;

static void setup(void)
{
	test_vm_setup(&T);
	char p[128];
	snprintf(p, sizeof(p), "%s/file", T.dir);
	FILE *f = fopen(p, "w");
	fputs("content\n", f);
	fclose(f);
	snprintf(p, sizeof(p), "%s/escape", T.dir);
	cr_assert_eq(symlink("/etc/passwd", p), 0);
	snprintf(p, sizeof(p), "%s/up", T.dir);
	cr_assert_eq(symlink("../../../../etc/passwd", p), 0);
}

static void teardown(void)
{
	test_vm_teardown(&T);
}

TestSuite(hypercalls, .init = setup, .fini = teardown);

#define BUF 0x500000ull

static struct sbx_slot open_req(const char *path, uint32_t flags)
{
	struct sbx_slot s = {.nr = SBX_CALL_OPEN};
	s.u.path.dirfd = SBX_AT_FDCWD;
	s.u.path.path = test_put(&T, 0x400000, path);
	s.u.path.path_len = (uint32_t)strlen(path);
	s.u.path.flags = flags;
	s.u.path.mode = 0644;
	return s;
}

static struct sbx_slot rw_req(uint32_t nr, int32_t fd, uint64_t buf, uint64_t len)
{
	struct sbx_slot s = {.nr = nr};
	s.u.rw.fd = fd;
	s.u.rw.buf = buf;
	s.u.rw.len = len;
	return s;
}

Test(hypercalls, open_and_read_a_file_in_a_mount)
{
	int64_t fd = test_call(&T, open_req("/r/file", O_RDONLY));
	cr_assert_geq(fd, 0);
	cr_assert_eq(test_call(&T, rw_req(SBX_CALL_READ, (int32_t)fd, BUF, 100)), 8);
	cr_assert_eq(memcmp(sbx_gptr(T.vm, BUF, 8), "content\n", 8), 0);
}

Test(hypercalls, nothing_outside_the_mounts_exists)
{
	cr_assert_eq(test_call(&T, open_req("/etc/passwd", O_RDONLY)), -ENOENT);
	cr_assert_eq(test_call(&T, open_req("/r/../../etc/passwd", O_RDONLY)), -ENOENT);
	cr_assert_eq(test_call(&T, open_req("/r/escape", O_RDONLY)), -ENOENT);
	cr_assert_eq(test_call(&T, open_req("/r/up", O_RDONLY)), -ENOENT);
	cr_assert_eq(test_call(&T, open_req("/proc/self/maps", O_RDONLY)), -ENOENT);
}

Test(hypercalls, read_only_mount_refuses_writes)
{
	cr_assert_eq(test_call(&T, open_req("/r/file", O_WRONLY)), -EROFS);
	cr_assert_eq(test_call(&T, open_req("/r/new", O_WRONLY | O_CREAT)), -EROFS);
	cr_assert_eq(test_call(&T, open_req("/r/missing", O_WRONLY)), -ENOENT);
	cr_assert_geq(test_call(&T, open_req("/r/file", O_RDONLY | O_CREAT)), 0);
	cr_assert_geq(test_call(&T, open_req("/w/new", O_WRONLY | O_CREAT)), 0);
}

Test(hypercalls, the_root_is_a_virtual_directory_listing_the_mounts)
{
	int64_t fd = test_call(&T, open_req("/", O_RDONLY | O_DIRECTORY));
	cr_assert_geq(fd, 0);
	int64_t n = test_call(&T, rw_req(SBX_CALL_GETDENTS, (int32_t)fd, BUF, 4096));
	cr_assert_gt(n, 0);
	const uint8_t *p = sbx_gptr(T.vm, BUF, (uint64_t)n);
	int seen_r = 0, seen_w = 0;
	for (int64_t o = 0; o < n;) {
		const char *name = (const char *)p + o + 19;
		seen_r |= strcmp(name, "r") == 0;
		seen_w |= strcmp(name, "w") == 0;
		o += *(const uint16_t *)(p + o + 16);
	}
	cr_assert(seen_r && seen_w);
	cr_assert_eq(test_call(&T, rw_req(SBX_CALL_GETDENTS, (int32_t)fd, BUF, 4096)), 0);
	cr_assert_eq(test_call(&T, open_req("/", O_WRONLY)), -EISDIR);
}

Test(hypercalls, bad_buffers_are_efault_not_crashes)
{
	int64_t fd = test_call(&T, open_req("/r/file", O_RDONLY));
	cr_assert_eq(test_call(&T, rw_req(SBX_CALL_READ, (int32_t)fd, 16 << 20, 10)), -EFAULT);
	cr_assert_eq(test_call(&T, rw_req(SBX_CALL_READ, (int32_t)fd, ~0ull - 4, 10)), -EFAULT);
	cr_assert_eq(test_call(&T, rw_req(SBX_CALL_WRITE, 1, (16 << 20) - 4, 8)), -EFAULT);
	struct sbx_slot s = open_req("/r/file", O_RDONLY);
	s.u.path.path = (16 << 20) - 2;
	s.u.path.path_len = 10;
	cr_assert_eq(test_call(&T, s), -EFAULT);
	s.u.path.path_len = 1 << 30;
	cr_assert_eq(test_call(&T, s), -ENAMETOOLONG);
}

Test(hypercalls, bad_handles_are_ebadf)
{
	cr_assert_eq(test_call(&T, rw_req(SBX_CALL_READ, 77, BUF, 1)), -EBADF);
	cr_assert_eq(test_call(&T, rw_req(SBX_CALL_READ, -1, BUF, 1)), -EBADF);
	cr_assert_eq(test_call(&T, rw_req(SBX_CALL_READ, 1 << 30, BUF, 1)), -EBADF);
	struct sbx_slot c = {.nr = SBX_CALL_CLOSE, .u.a = {5000}};
	cr_assert_eq(test_call(&T, c), -EBADF);
}

Test(hypercalls, iovec_counts_and_entries_are_checked)
{
	struct sbx_iovec iov[2] = {{0x400000, 2}, {16 << 20, 4}};
	sbx_copy_to_guest(T.vm, BUF, iov, sizeof(iov));
	cr_assert_eq(test_call(&T, rw_req(SBX_CALL_WRITEV, 1, BUF, 2)), -EFAULT);
	cr_assert_eq(test_call(&T, rw_req(SBX_CALL_WRITEV, 1, BUF, SBX_IOV_MAX + 1)), -EINVAL);
	iov[1] = (struct sbx_iovec){0x400000, ~0ull};
	sbx_copy_to_guest(T.vm, BUF, iov, sizeof(iov));
	cr_assert_eq(test_call(&T, rw_req(SBX_CALL_WRITEV, 1, BUF, 2)), -EINVAL);
}

Test(hypercalls, a_file_mount_point_cannot_be_removed)
{
	char spec[128], err[256];
	snprintf(spec, sizeof(spec), "%s/file:/cfg", T.dir);
	cr_assert_eq(policy_add_mount(&T.pol, spec, 1, err, sizeof(err)), 0, "%s", err);
	struct sbx_slot s = open_req("/cfg", 0);
	s.nr = SBX_CALL_UNLINK;
	cr_assert_eq(test_call(&T, s), -EBUSY);
	s.nr = SBX_CALL_MKDIR;
	cr_assert_eq(test_call(&T, s), -EEXIST);
	cr_assert_geq(test_call(&T, open_req("/cfg", O_WRONLY)), 0);
}

Test(hypercalls, mkdir_rename_unlink_on_a_rw_mount)
{
	struct sbx_slot s = open_req("/w/d", 0);
	s.nr = SBX_CALL_MKDIR;
	cr_assert_eq(test_call(&T, s), 0);
	cr_assert_eq(test_call(&T, s), -EEXIST);
	s = open_req("/r/d2", 0);
	s.nr = SBX_CALL_MKDIR;
	cr_assert_eq(test_call(&T, s), -EROFS);
	s = open_req("/w/d", 0);
	s.nr = SBX_CALL_RENAME;
	s.u.path.dirfd2 = SBX_AT_FDCWD;
	s.u.path.path2 = test_put(&T, 0x401000, "/w/e");
	s.u.path.path2_len = 4;
	cr_assert_eq(test_call(&T, s), 0);
	s.u.path.path2 = test_put(&T, 0x401000, "/r/f");
	s = open_req("/w/e", 0);
	s.nr = SBX_CALL_UNLINK;
	s.u.path.flags = AT_REMOVEDIR;
	cr_assert_eq(test_call(&T, s), 0);
	s = open_req("/w", 0);
	s.nr = SBX_CALL_UNLINK;
	cr_assert_eq(test_call(&T, s), -EBUSY);
}

Test(hypercalls, cwd_and_relative_paths)
{
	struct sbx_slot s = open_req("/r", 0);
	s.nr = SBX_CALL_CHDIR;
	cr_assert_eq(test_call(&T, s), 0);
	cr_assert_geq(test_call(&T, open_req("file", O_RDONLY)), 0);
	cr_assert_eq(test_call(&T, open_req("../../../etc/passwd", O_RDONLY)), -ENOENT);
	cr_assert_eq(test_call(&T, rw_req(SBX_CALL_GETCWD, 0, BUF, 100)), 3);
	cr_assert_str_eq((const char *)sbx_gptr(T.vm, BUF, 3), "/r");
	cr_assert_eq(test_call(&T, rw_req(SBX_CALL_GETCWD, 0, BUF, 2)), -ERANGE);
}

Test(hypercalls, stat_of_a_symlink_and_its_target)
{
	struct sbx_slot s = open_req("/r/escape", 0);
	s.nr = SBX_CALL_STAT;
	s.u.path.buf = BUF;
	s.u.path.buf_len = sizeof(struct stat);
	s.u.path.flags = AT_SYMLINK_NOFOLLOW;
	cr_assert_eq(test_call(&T, s), 0);
	struct stat st;
	sbx_copy_from_guest(T.vm, &st, BUF, sizeof(st));
	cr_assert(S_ISLNK(st.st_mode));
	s.u.path.flags = 0;
	cr_assert_eq(test_call(&T, s), -ENOENT);
}

Test(hypercalls, dup_and_fcntl)
{
	struct sbx_slot d = {.nr = SBX_CALL_DUP, .u.a = {1, 40, 0, 1}};
	cr_assert_eq(test_call(&T, d), 40);
	struct sbx_slot f = {.nr = SBX_CALL_FCNTL, .u.a = {40, F_GETFD, 0}};
	cr_assert_eq(test_call(&T, f), FD_CLOEXEC);
	d.u.a[1] = SBX_MAX_FDS;
	cr_assert_eq(test_call(&T, d), -EBADF);
	d.u.a[1] = (uint64_t)-1;
	d.u.a[2] = 1u << 31;
	cr_assert_eq(test_call(&T, d), -EINVAL);
}

Test(hypercalls, discard_only_whole_user_pages)
{
	struct sbx_slot s = {.nr = SBX_CALL_DISCARD, .u.a = {0x400000, 0x1000}};
	memset(sbx_gptr(T.vm, 0x400000, 0x1000), 0xab, 0x1000);
	cr_assert_eq(test_call(&T, s), 0);
	cr_assert_eq(*(uint8_t *)sbx_gptr(T.vm, 0x400800, 1), 0);
	s.u.a[0] = SBX_RING_ADDR;
	cr_assert_eq(test_call(&T, s), -EINVAL);
	s.u.a[0] = 0x400001;
	cr_assert_eq(test_call(&T, s), -EINVAL);
	s.u.a[0] = 0x400000;
	s.u.a[1] = ~0xfffull;
	cr_assert_eq(test_call(&T, s), -EINVAL);
}

static struct stat host_stat(const char *rel)
{
	char p[256];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", T.dir, rel);
	cr_assert_eq(lstat(p, &st), 0, "%s", p);
	return st;
}

Test(hypercalls, no_setuid_or_setgid_files_reach_the_host)
{
	struct sbx_slot s = open_req("/w/suid", O_WRONLY | O_CREAT);
	s.u.path.mode = 06755;
	cr_assert_geq(test_call(&T, s), 0);
	cr_assert_eq(host_stat("suid").st_mode & 07000, 0);
	s = open_req("/w/suid", 0);
	s.nr = SBX_CALL_CHMOD;
	s.u.path.mode = 04777;
	int64_t r = test_call(&T, s);
	cr_assert_eq(r, 0, "chmod: %lld", (long long)r);
	cr_assert_eq(host_stat("suid").st_mode & 07777, 0777);
	s = open_req("/w/sgid-dir", 0);
	s.nr = SBX_CALL_MKDIR;
	s.u.path.mode = 02777;
	cr_assert_eq(test_call(&T, s), 0);
	cr_assert_eq(host_stat("sgid-dir").st_mode & 06000, 0);
}

Test(hypercalls, stdio_cannot_be_truncated)
{
	struct sbx_slot s = {.nr = SBX_CALL_FTRUNCATE, .u.a = {1, 0}};
	cr_assert_eq(test_call(&T, s), -EINVAL);
}

Test(hypercalls, a_fifo_does_not_block_the_monitor)
{
	char p[128];
	snprintf(p, sizeof(p), "%s/fifo", T.dir);
	cr_assert_eq(mkfifo(p, 0600), 0);
	cr_assert_geq(test_call(&T, open_req("/r/fifo", O_RDONLY)), 0);
}

Test(hypercalls, links_modes_times_and_statfs)
{
	struct sbx_slot s = open_req("/r/file", 0); /* link text */
	s.nr = SBX_CALL_SYMLINK;
	s.u.path.dirfd2 = SBX_AT_FDCWD;
	s.u.path.path2 = test_put(&T, 0x401000, "/w/ln");
	s.u.path.path2_len = 5;
	cr_assert_eq(test_call(&T, s), 0);
	cr_assert(S_ISLNK(host_stat("ln").st_mode));
	s.u.path.path2 = test_put(&T, 0x401000, "/r/ln2");
	s.u.path.path2_len = 6;
	cr_assert_eq(test_call(&T, s), -EROFS);

	/* A hard link that follows a guest symlink resolves it beneath the mount only. */
	s = open_req("/w/escape", 0);
	s.nr = SBX_CALL_LINK;
	s.u.path.flags = AT_SYMLINK_FOLLOW;
	s.u.path.dirfd2 = SBX_AT_FDCWD;
	s.u.path.path2 = test_put(&T, 0x401000, "/w/stolen");
	s.u.path.path2_len = 9;
	cr_assert_eq(test_call(&T, s), -ENOENT);
	s = open_req("/w/file", 0);
	s.nr = SBX_CALL_LINK;
	s.u.path.dirfd2 = SBX_AT_FDCWD;
	s.u.path.path2 = test_put(&T, 0x401000, "/w/hard");
	s.u.path.path2_len = 7;
	cr_assert_eq(test_call(&T, s), 0);
	cr_assert_eq(host_stat("hard").st_nlink, 2);

	s = open_req("/r/file", 0);
	s.nr = SBX_CALL_CHMOD;
	s.u.path.mode = 0600;
	cr_assert_eq(test_call(&T, s), -EROFS);

	struct timespec ts[2] = {{1000000000, 0}, {1000000000, 0}};
	sbx_copy_to_guest(T.vm, BUF, ts, sizeof(ts));
	s = open_req("/w/file", 0);
	s.nr = SBX_CALL_UTIMENS;
	s.u.path.buf = BUF;
	cr_assert_eq(test_call(&T, s), 0);
	cr_assert_eq(host_stat("file").st_mtime, 1000000000);

	s = open_req("/r", 0);
	s.nr = SBX_CALL_STATFS;
	s.u.path.buf = BUF;
	s.u.path.buf_len = 120;
	cr_assert_eq(test_call(&T, s), 0);
	s = open_req("/", 0);
	s.nr = SBX_CALL_STATFS;
	s.u.path.buf = BUF;
	s.u.path.buf_len = 120;
	cr_assert_eq(test_call(&T, s), 0);
}

Test(hypercalls, poll_maps_handles_and_flags_bad_ones)
{
	int32_t fd = (int32_t)test_call(&T, open_req("/r/file", O_RDONLY));
	struct {
		int32_t fd;
		int16_t events, revents;
	} p[3] = {{fd, 1, 0}, {999, 1, 0}, {-1, 1, 0}};
	sbx_copy_to_guest(T.vm, BUF, p, sizeof(p));
	struct sbx_slot s = {.nr = SBX_CALL_POLL, .u.a = {BUF, 3, 0}};
	int64_t r = test_call(&T, s);
	cr_assert_eq(r, 2, "poll: %lld", (long long)r);
	sbx_copy_from_guest(T.vm, p, BUF, sizeof(p));
	cr_assert(p[0].revents & 1);
	cr_assert_eq(p[1].revents, 0x20); /* POLLNVAL */
	cr_assert_eq(p[2].revents, 0);
	s.u.a[1] = SBX_MAX_POLL + 1;
	cr_assert_eq(test_call(&T, s), -EINVAL);
}
