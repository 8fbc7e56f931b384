/* Hypercall decoding and validation, driven through the ring with hostile arguments. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

static struct test_vm T;

static void setup(void)
{
	test_vm_setup(&T);
	test_vm_file(&T, "file", "content\n");
	char p[128];
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

/* A request on two paths from the cwd (RENAME, LINK, SYMLINK), path2 being the new name. */
static struct sbx_slot two_path_req(uint32_t nr, const char *path, const char *path2)
{
	struct sbx_slot s = open_req(path, 0);
	s.nr = nr;
	s.u.path.dirfd2 = SBX_AT_FDCWD;
	s.u.path.path2 = test_put(&T, 0x401000, path2);
	s.u.path.path2_len = (uint32_t)strlen(path2);
	return s;
}

Test(hypercalls, open_and_read_a_file_in_a_mount)
{
	int64_t fd = test_call(&T, open_req("/r/file", O_RDONLY));
	cr_assert_geq(fd, 0);
	cr_assert_eq(test_call(&T, test_rw_req(SBX_CALL_READ, (int32_t)fd, BUF, 100)), 8);
	cr_assert_eq(memcmp(sbx_gptr(T.vm, BUF, 8), "content\n", 8), 0);
}

Test(hypercalls, nothing_outside_the_mounts_exists)
{
	cr_assert_eq(test_call(&T, open_req("/etc/passwd", O_RDONLY)), -ENOENT);
	cr_assert_eq(test_call(&T, open_req("/r/../../etc/passwd", O_RDONLY)), -ENOENT);
	cr_assert_eq(test_call(&T, open_req("/r/escape", O_RDONLY)), -ENOENT);
	cr_assert_eq(test_call(&T, open_req("/r/up", O_RDONLY)), -ENOENT);
	/* The host's /proc never: only the virtual nodes (test_vfs.c). */
	cr_assert_eq(test_call(&T, open_req("/proc/self/mounts", O_RDONLY)), -ENOENT);
	cr_assert_eq(test_call(&T, open_req("/proc/self/root/etc/passwd", O_RDONLY)), -ENOENT);
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
	int64_t n = test_call(&T, test_rw_req(SBX_CALL_GETDENTS, (int32_t)fd, BUF, 4096));
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
	cr_assert_eq(test_call(&T, test_rw_req(SBX_CALL_GETDENTS, (int32_t)fd, BUF, 4096)), 0);
	cr_assert_eq(test_call(&T, open_req("/", O_WRONLY)), -EISDIR);
}

Test(hypercalls, bad_buffers_are_efault_not_crashes)
{
	int64_t fd = test_call(&T, open_req("/r/file", O_RDONLY));
	cr_assert_eq(test_call(&T, test_rw_req(SBX_CALL_READ, (int32_t)fd, 16 << 20, 10)), -EFAULT);
	cr_assert_eq(test_call(&T, test_rw_req(SBX_CALL_READ, (int32_t)fd, ~0ull - 4, 10)),
		     -EFAULT);
	cr_assert_eq(test_call(&T, test_rw_req(SBX_CALL_WRITE, 1, (16 << 20) - 4, 8)), -EFAULT);
	struct sbx_slot s = open_req("/r/file", O_RDONLY);
	s.u.path.path = (16 << 20) - 2;
	s.u.path.path_len = 10;
	cr_assert_eq(test_call(&T, s), -EFAULT);
	s.u.path.path_len = 1 << 30;
	cr_assert_eq(test_call(&T, s), -ENAMETOOLONG);
}

Test(hypercalls, bad_handles_are_ebadf)
{
	cr_assert_eq(test_call(&T, test_rw_req(SBX_CALL_READ, 77, BUF, 1)), -EBADF);
	cr_assert_eq(test_call(&T, test_rw_req(SBX_CALL_READ, -1, BUF, 1)), -EBADF);
	cr_assert_eq(test_call(&T, test_rw_req(SBX_CALL_READ, 1 << 30, BUF, 1)), -EBADF);
	struct sbx_slot c = {.nr = SBX_CALL_CLOSE, .u.a = {5000}};
	cr_assert_eq(test_call(&T, c), -EBADF);
}

Test(hypercalls, iovec_counts_and_entries_are_checked)
{
	struct sbx_iovec iov[2] = {{0x400000, 2}, {16 << 20, 4}};
	sbx_copy_to_guest(T.vm, BUF, iov, sizeof(iov));
	cr_assert_eq(test_call(&T, test_rw_req(SBX_CALL_WRITEV, 1, BUF, 2)), -EFAULT);
	cr_assert_eq(test_call(&T, test_rw_req(SBX_CALL_WRITEV, 1, BUF, SBX_IOV_MAX + 1)), -EINVAL);
	iov[1] = (struct sbx_iovec){0x400000, ~0ull};
	sbx_copy_to_guest(T.vm, BUF, iov, sizeof(iov));
	cr_assert_eq(test_call(&T, test_rw_req(SBX_CALL_WRITEV, 1, BUF, 2)), -EINVAL);
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
	s = two_path_req(SBX_CALL_RENAME, "/w/d", "/w/e");
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
	cr_assert_eq(test_call(&T, test_rw_req(SBX_CALL_GETCWD, 0, BUF, 100)), 3);
	cr_assert_str_eq((const char *)sbx_gptr(T.vm, BUF, 3), "/r");
	cr_assert_eq(test_call(&T, test_rw_req(SBX_CALL_GETCWD, 0, BUF, 2)), -ERANGE);
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

static struct sbx_slot nofile_req(uint64_t set, uint64_t soft, uint64_t hard, uint64_t old)
{
	return (struct sbx_slot){.nr = SBX_CALL_NOFILE, .u.a = {set, soft, hard, old}};
}

/* CAP_SYS_RESOURCE (24) in this process's effective set, as /proc tells. */
static int has_cap_sys_resource(void)
{
	char line[256];
	unsigned long long eff = 0;
	FILE *f = fopen("/proc/self/status", "r");
	while (f && fgets(line, sizeof(line), f))
		sscanf(line, "CapEff: %llx", &eff);
	if (f)
		fclose(f);
	return (eff >> 24) & 1;
}

/* The rules of setrlimit(RLIMIT_NOFILE), kept by the monitor. */
Test(hypercalls, nofile_limit_rules)
{
	const uint64_t buf = 0x400000;
	uint64_t *old = sbx_gptr(T.vm, buf, 16);
	cr_assert_eq(test_call(&T, nofile_req(0, 0, 0, buf)), 0);
	cr_assert_eq(old[0], SBX_MAX_FDS, "the sandbox's own limit at first");
	cr_assert_eq(old[1], SBX_MAX_FDS);
	cr_assert_eq(test_call(&T, nofile_req(1, 65, 64, buf)), -EINVAL);
	cr_assert_eq(test_call(&T, nofile_req(2, 1, 1, buf)), -EINVAL);
	cr_assert_eq(test_call(&T, nofile_req(1, 42, 64, buf)), 0);
	cr_assert_eq(old[0], SBX_MAX_FDS, "the old limits come back");
	cr_assert_eq(test_call(&T, nofile_req(0, 0, 0, buf)), 0);
	cr_assert(old[0] == 42 && old[1] == 64, "%llu/%llu", (unsigned long long)old[0],
		  (unsigned long long)old[1]);
	/* Never above the sandbox's own limit; above the current hard one only as root. */
	cr_assert_eq(test_call(&T, nofile_req(1, 64, SBX_MAX_FDS + 1, buf)), -EPERM);
	cr_assert_eq(T.vm->proc.files->nofile_priv, has_cap_sys_resource(),
		     "privileged as this process is");
	T.vm->proc.files->nofile_priv = 0;
	cr_assert_eq(test_call(&T, nofile_req(1, 64, 100, buf)), -EPERM);
	T.vm->proc.files->nofile_priv = 1;
	cr_assert_eq(test_call(&T, nofile_req(1, 64, 100, buf)), 0);
	cr_assert_eq(test_call(&T, nofile_req(1, 64, SBX_MAX_FDS + 1, buf)), -EPERM);
	cr_assert_eq(test_call(&T, nofile_req(1, 8, 64, buf)), 0);
	cr_assert_eq(test_call(&T, nofile_req(1, 64, 64, T.vm->proc.mem.size - 8)), -EFAULT,
		     "the old limits cannot be written: nothing is set");
	cr_assert_eq(test_call(&T, nofile_req(0, 0, 0, buf)), 0);
	cr_assert(old[0] == 8 && old[1] == 64);
}

/* fd numbers are handed out below the soft limit, with Linux's error for each way past it. */
Test(hypercalls, nofile_limit_is_enforced_where_fds_are_handed_out)
{
	cr_assert_eq(test_call(&T, nofile_req(1, 5, 5, 0)), 0);
	struct sbx_slot d = {.nr = SBX_CALL_DUP, .u.a = {1, (uint64_t)-1, 0, 0}};
	cr_assert_eq(test_call(&T, d), 0, "stdin is closed here: 0 is free");
	cr_assert_eq(test_call(&T, d), 2);
	cr_assert_eq(test_call(&T, d), 3);
	cr_assert_eq(test_call(&T, d), 4);
	cr_assert_eq(test_call(&T, d), -EMFILE);
	cr_assert_eq(test_call(&T, open_req("/r/file", O_RDONLY)), -EMFILE);
	d.u.a[2] = 5; /* F_DUPFD from the limit */
	cr_assert_eq(test_call(&T, d), -EINVAL);
	struct sbx_slot d2 = {.nr = SBX_CALL_DUP, .u.a = {1, 5, 0, 0}};
	cr_assert_eq(test_call(&T, d2), -EBADF, "dup2 to the limit");
	d2.u.a[1] = 4;
	cr_assert_eq(test_call(&T, d2), 4, "below it: replaces");
	struct sbx_slot c = {.nr = SBX_CALL_CLOSE, .u.a = {3}};
	cr_assert_eq(test_call(&T, c), 0);
	cr_assert_eq(test_call(&T, open_req("/r/file", O_RDONLY)), 3);
	/* Lowering it keeps the fds above open and usable. */
	cr_assert_eq(test_call(&T, nofile_req(1, 2, 5, 0)), 0);
	struct sbx_slot f = {.nr = SBX_CALL_FCNTL, .u.a = {4, F_GETFD, 0}};
	cr_assert_eq(test_call(&T, f), 0);
}

Test(hypercalls, nofile_limit_never_exceeds_max_files)
{
	T.pol.lim.max_files = 16;
	const uint64_t buf = 0x400000;
	uint64_t *old = sbx_gptr(T.vm, buf, 16);
	cr_assert_eq(test_call(&T, nofile_req(0, 0, 0, buf)), 0);
	cr_assert(old[0] == 16 && old[1] == 16);
	cr_assert_eq(test_call(&T, nofile_req(1, 17, 17, 0)), -EPERM);
	struct sbx_slot d2 = {.nr = SBX_CALL_DUP, .u.a = {1, 16, 0, 0}};
	cr_assert_eq(test_call(&T, d2), -EBADF);
}

/* The limit is monitor state: saved with it, and absent from a section written before ABI 1.3,
 * which must still load (the sandbox's own limit then applies). */
Test(hypercalls, nofile_limit_in_the_monitor_state)
{
	FILE *f = fopen(SBX_SOURCE_DIR "/tests/data/state/monitor-two-handles", "rb");
	cr_assert_not_null(f);
	static uint8_t old[4096];
	size_t n = fread(old, 1, sizeof(old), f);
	fclose(f);
	sbx_fd_close_all(T.vm);
	struct sbx_sio in = {.load = 1, .buf = old + 1, .len = n - 1}; /* byte 0: fuzz_state's */
	cr_assert_eq(sbx_state_monitor(T.vm, &in), 0, "%s", in.msg);
	cr_assert_eq(in.pos, in.len);
	cr_assert_eq(T.vm->proc.files->nofile_set, 0);
	cr_assert_eq(test_call(&T, nofile_req(1, 42, 64, 0)), 0);
	struct sbx_sio out = {0};
	cr_assert_eq(sbx_state_monitor(T.vm, &out), 0, "%s", out.msg);
	T.vm->proc.files->nofile_set = 0;
	sbx_fd_close_all(T.vm);
	struct sbx_sio again = {.load = 1, .buf = out.buf, .len = out.len};
	cr_assert_eq(sbx_state_monitor(T.vm, &again), 0, "%s", again.msg);
	cr_assert_eq(again.pos, again.len);
	cr_assert(T.vm->proc.files->nofile_set && T.vm->proc.files->nofile_soft == 42 &&
		  T.vm->proc.files->nofile_hard == 64);
	/* A limit no sandbox can have is refused, in one line. The hard limit is the last word
	 * before stderr's byte budget (a u64), which ends the section. */
	memcpy(out.buf + out.len - 8 - 4, &(uint32_t){SBX_MAX_FDS + 1}, 4);
	sbx_fd_close_all(T.vm);
	struct sbx_sio bad = {.load = 1, .buf = out.buf, .len = out.len};
	cr_assert_lt(sbx_state_monitor(T.vm, &bad), 0);
	cr_assert(strstr(bad.msg, "RLIMIT_NOFILE") && !strchr(bad.msg, '\n'), "%s", bad.msg);
	free(out.buf);
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

/* POINT belongs to repeated runs' --warm point: a plain sandbox has none to give. */
Test(hypercalls, point_outside_repeated_runs_is_enosys)
{
	struct sbx_slot s = {.nr = SBX_CALL_POINT};
	cr_assert_eq(test_call(&T, s), -ENOSYS);
	cr_assert_eq(T.vm->life.stopping, 0);
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

/* CHOWN is the host's, on the file itself: root's monitor gives another owner (and the host
 * clears a setuid bit as it does), another user's is EPERM, as each would be natively; a
 * read-only mount is EROFS and an unknown flag EINVAL. */
Test(hypercalls, chown_gives_what_the_host_gives)
{
	struct sbx_slot s = open_req("/w/owned", O_WRONLY | O_CREAT);
	s.u.path.mode = 0644;
	cr_assert_geq(test_call(&T, s), 0);
	s = open_req("/w/owned", 0);
	s.nr = SBX_CALL_CHOWN;
	s.u.path.mode = 12345;
	s.u.path.buf = 54321;
	int64_t r = test_call(&T, s);
	if (geteuid() == 0) {
		cr_assert_eq(r, 0, "chown: %lld", (long long)r);
		cr_assert_eq(host_stat("owned").st_uid, 12345);
		cr_assert_eq(host_stat("owned").st_gid, 54321);
	} else {
		cr_assert_eq(r, -EPERM, "chown: %lld", (long long)r);
	}
	s.u.path.flags = 0x8000;
	cr_assert_eq(test_call(&T, s), -EINVAL);
	s = open_req("/r/file", 0);
	s.nr = SBX_CALL_CHOWN;
	s.u.path.mode = 12345;
	s.u.path.buf = (uint32_t)-1;
	cr_assert_eq(test_call(&T, s), -EROFS);
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
	/* "/r/file" is the link text. */
	struct sbx_slot s = two_path_req(SBX_CALL_SYMLINK, "/r/file", "/w/ln");
	cr_assert_eq(test_call(&T, s), 0);
	cr_assert(S_ISLNK(host_stat("ln").st_mode));
	s = two_path_req(SBX_CALL_SYMLINK, "/r/file", "/r/ln2");
	cr_assert_eq(test_call(&T, s), -EROFS);

	/* A hard link that follows a guest symlink resolves it beneath the mount only. */
	s = two_path_req(SBX_CALL_LINK, "/w/escape", "/w/stolen");
	s.u.path.flags = AT_SYMLINK_FOLLOW;
	cr_assert_eq(test_call(&T, s), -ENOENT);
	s = two_path_req(SBX_CALL_LINK, "/w/file", "/w/hard");
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

static int64_t mmap_shared(int64_t fd, uint64_t off, uint64_t len, uint64_t prot)
{
	struct sbx_slot s = {.nr = SBX_CALL_MMAP_SHARED};
	s.u.a[0] = (uint64_t)fd;
	s.u.a[1] = off;
	s.u.a[2] = len;
	s.u.a[3] = prot;
	return test_call(&T, s);
}

#define RW_PROT (SBX_PROT_READ | SBX_PROT_WRITE)

/* Everything a shared mapping is refused for is refused before any host mapping is made. */
Test(hypercalls, mmap_shared_checks_its_arguments_and_the_descriptor)
{
	int64_t rw = test_call(&T, open_req("/w/file", O_RDWR));
	int64_t rd = test_call(&T, open_req("/w/file", O_RDONLY));
	int64_t wr = test_call(&T, open_req("/w/file", O_WRONLY));
	int64_t ro = test_call(&T, open_req("/r/file", O_RDONLY));
	char sub[128];
	snprintf(sub, sizeof(sub), "%s/sub", T.dir);
	cr_assert_eq(mkdir(sub, 0755), 0);
	int64_t dir = test_call(&T, open_req("/w/sub", O_RDONLY));
	cr_assert(rw >= 0 && rd >= 0 && wr >= 0 && ro >= 0 && dir >= 0, "%ld %ld %ld %ld %ld",
		  (long)rw, (long)rd, (long)wr, (long)ro, (long)dir);
	cr_expect_eq(mmap_shared(999, 0, 4096, RW_PROT), -EBADF);
	/* fd -1: shared anonymous memory, a window onto a memfd: no room for more than RAM,
	 * and a VM without KVM has no memslots (the guest then makes it private). */
	cr_expect_eq(mmap_shared(-1, 0, T.vm->proc.mem.size + 4096, RW_PROT), -ENOMEM);
	cr_expect_eq(mmap_shared(-1, 0, 4096, RW_PROT), -ENODEV);
	cr_expect_eq(mmap_shared(-2, 0, 4096, RW_PROT), -EBADF);
	cr_expect_eq(mmap_shared(rw, 1, 4096, RW_PROT), -EINVAL);
	cr_expect_eq(mmap_shared(rw, 0, 0, RW_PROT), -EINVAL);
	cr_expect_eq(mmap_shared(rw, 0, 4096, 0x80), -EINVAL);
	cr_expect_eq(mmap_shared(rw, UINT64_MAX & ~4095ull, 4096, RW_PROT), -EINVAL);
	cr_expect_eq(mmap_shared(rw, 0, UINT64_MAX, RW_PROT), -ENOMEM);
	cr_expect_eq(mmap_shared(rw, 0, SBX_SHMAP_WINDOW + 4096, RW_PROT), -ENOMEM);
	cr_expect_eq(mmap_shared(wr, 0, 4096, SBX_PROT_READ), -EACCES);
	cr_expect_eq(mmap_shared(rd, 0, 4096, RW_PROT), -EACCES);
	cr_expect_eq(mmap_shared(ro, 0, 4096, RW_PROT), -EACCES);
	cr_expect_eq(mmap_shared(dir, 0, 4096, SBX_PROT_READ), -ENODEV);
	cr_expect_eq(mmap_shared(1, 0, 4096, SBX_PROT_READ), -ENODEV); /* the user's stdout */
	int64_t zero = test_call(&T, open_req("/dev/zero", O_RDWR));
	cr_assert_geq(zero, 0);
	/* /dev/zero's is private memory where no window can be made (0), not an error. */
	cr_expect_eq(mmap_shared(zero, 0, 4096, RW_PROT), 0);
	/* A repeated run keeps it private: its reset could not put a memfd back. */
	T.vm->opts.boot_flags |= SBX_BOOT_EXEC;
	cr_expect_eq(mmap_shared(zero, 0, 4096, RW_PROT), 0);
	cr_expect_eq(mmap_shared(-1, 0, 4096, RW_PROT), 0);
	T.vm->opts.boot_flags &= ~(uint32_t)SBX_BOOT_EXEC;
	/* A read-write descriptor on a mount the policy keeps read-only. */
	cr_expect_eq(sbx_shmap_check(0, 4096, RW_PROT, O_RDWR, 0), -EACCES);
	cr_expect_eq(sbx_shmap_check(0, 4096, SBX_PROT_READ, O_RDWR, 0), 0);
	cr_expect_eq(sbx_shmap_check(0, 4096, RW_PROT, O_RDWR, 1), 0);
	cr_expect_eq(T.vm->proc.shmaps.count, 0);
}

Test(hypercalls, munmap_shared_and_msync_only_name_windows)
{
	uint64_t base = sbx_shmap_base(T.vm);
	const uint64_t gpas[] = {0, 4096, BUF, base, base + 4096, UINT64_MAX & ~4095ull};
	for (size_t i = 0; i < sizeof(gpas) / sizeof(gpas[0]); i++) {
		struct sbx_slot s = {.nr = SBX_CALL_MUNMAP_SHARED, .u.a = {gpas[i]}};
		cr_expect_eq(test_call(&T, s), -EINVAL, "munmap 0x%llx",
			     (unsigned long long)gpas[i]);
		struct sbx_slot m = {.nr = SBX_CALL_MSYNC, .u.a = {gpas[i], 4096}};
		cr_expect_eq(test_call(&T, m), -ENOMEM, "msync 0x%llx",
			     (unsigned long long)gpas[i]);
		/* A FUTEX names a word in a window: in RAM the guest kernel keeps its own. */
		for (uint64_t op = 0; op <= 10; op++) {
			struct sbx_slot f = {.nr = SBX_CALL_FUTEX,
					     .pad = SBX_SLOT_OWN,
					     .u.a = {op, gpas[i], 0, 1000}};
			cr_expect_eq(test_call(&T, f), -EINVAL, "futex op %llu at 0x%llx",
				     (unsigned long long)op, (unsigned long long)gpas[i]);
		}
	}
	cr_expect_geq(base, T.vm->proc.mem.size);
	cr_expect_eq(base % (1ull << 30), 0);
}

/* The POPULATE ranges still queued for the poller lose what a DISCARD gives back: a range
 * inside the hole goes, one across an edge is cut, one the hole splits keeps its first part,
 * one beside it stays. */
Test(hypercalls, a_discard_drops_the_populate_ranges_it_covers)
{
	struct sbx_ring_srv *rs = &T.vm->proc.ring;
	const uint64_t M = 1ull << 20;
	const uint64_t in[][2] = {{8 * M, 2 * M}, {1 * M, 8 * M}, {12 * M, 8 * M}, {40 * M, M}};
	rs->npop = 0;
	for (unsigned i = 0; i < 4; i++) {
		rs->pop[i].gpa = in[i][0];
		rs->pop[i].len = in[i][1];
		rs->npop++;
	}
	/* The hole: [6 MiB, 14 MiB), then [16 MiB, 18 MiB). */
	sbx_ring_forget_populate(T.vm, 6 * M, 8 * M);
	sbx_ring_forget_populate(T.vm, 16 * M, 2 * M);
	const uint64_t want[][2] = {{1 * M, 5 * M}, {14 * M, 2 * M}, {40 * M, M}};
	cr_assert_eq(rs->npop, 3);
	for (unsigned i = 0; i < 3; i++)
		cr_expect(rs->pop[i].gpa == want[i][0] && rs->pop[i].len == want[i][1],
			  "range %u: [%llu, +%llu) MiB, want [%llu, +%llu)", i,
			  (unsigned long long)(rs->pop[i].gpa / M),
			  (unsigned long long)(rs->pop[i].len / M),
			  (unsigned long long)(want[i][0] / M),
			  (unsigned long long)(want[i][1] / M));
	rs->npop = 0;
}

/* An FCNTL lock request on the guest's handle fd (struct flock at BUF). */
static int64_t lock_req(int64_t fd, int cmd, short type, short whence, off_t start, off_t len,
			int own)
{
	struct flock fl = {.l_type = type, .l_whence = whence, .l_start = start, .l_len = len};
	memcpy(sbx_gptr(T.vm, BUF, sizeof(fl)), &fl, sizeof(fl));
	struct sbx_slot s = {.nr = SBX_CALL_FCNTL, .u.a = {(uint64_t)fd, (uint64_t)cmd, BUF}};
	if (own)
		s.pad = SBX_SLOT_OWN;
	return test_call(&T, s);
}

static int64_t flock_req(int64_t fd, uint64_t op)
{
	struct sbx_slot s = {.nr = SBX_CALL_FLOCK, .u.a = {(uint64_t)fd, op}};
	return test_call(&T, s);
}

/* What another process finds: the lock type that would stand in its way, asked on a
 * description of its own. */
static short seen_outside(short type, off_t start, off_t len)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/file", T.dir);
	int fd = open(path, O_RDWR);
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
	cr_assert(fd >= 0 && fcntl(fd, F_OFD_GETLK, &fl) == 0);
	close(fd);
	return fl.l_type;
}

/* All the sandbox's processes are the monitor: a record lock must still stand in the way of
 * everyone but its own process, and be its process's (every handle of the file shares it, any
 * close drops it). */
Test(hypercalls, record_locks_are_the_process_s_own_and_exclude_the_rest)
{
	int64_t a = test_call(&T, open_req("/w/file", O_RDWR));
	int64_t b = test_call(&T, open_req("/w/file", O_RDWR));
	int64_t ro = test_call(&T, open_req("/r/file", O_RDONLY));
	cr_assert(a >= 0 && b >= 0 && ro >= 0);
	cr_expect_eq(lock_req(a, F_SETLK, F_WRLCK, SEEK_SET, 0, 10, 0), 0);
	cr_expect_eq(seen_outside(F_WRLCK, 0, 10), F_WRLCK);
	cr_expect_eq(lock_req(b, F_SETLK, F_WRLCK, SEEK_SET, 0, 10, 0), 0, "same owner");
	cr_expect_eq(lock_req(ro, F_SETLK, F_WRLCK, SEEK_SET, 0, 1, 0), -EBADF);
	cr_expect_eq(lock_req(a, F_SETLK, 7, SEEK_SET, 0, 1, 0), -EINVAL);
	struct sbx_slot c = {.nr = SBX_CALL_CLOSE, .u.a = {(uint64_t)b}};
	cr_assert_eq(test_call(&T, c), 0);
	cr_expect_eq(seen_outside(F_WRLCK, 0, 10), F_UNLCK, "a close drops the process's locks");
	/* lockf's SEEK_CUR counts from the handle's offset, not the owner's. */
	struct sbx_slot sk = {.nr = SBX_CALL_LSEEK, .u.a = {(uint64_t)a, 100, SEEK_SET}};
	cr_assert_eq(test_call(&T, sk), 100);
	cr_expect_eq(lock_req(a, F_SETLK, F_WRLCK, SEEK_CUR, 0, 10, 0), 0);
	cr_expect_eq(seen_outside(F_WRLCK, 105, 1), F_WRLCK);
	cr_expect_eq(seen_outside(F_WRLCK, 0, 100), F_UNLCK);
	/* Someone else's lock: refused, named by F_GETLK without a pid. */
	char path[128];
	snprintf(path, sizeof(path), "%s/file", T.dir);
	int h = open(path, O_RDWR);
	struct flock hl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 50, .l_len = 1};
	cr_assert_eq(fcntl(h, F_OFD_SETLK, &hl), 0);
	cr_expect_eq(lock_req(a, F_SETLK, F_RDLCK, SEEK_SET, 50, 1, 0), -EAGAIN);
	cr_expect_eq(lock_req(a, F_GETLK, F_RDLCK, SEEK_SET, 50, 1, 0), 0);
	struct flock got;
	memcpy(&got, sbx_gptr(T.vm, BUF, sizeof(got)), sizeof(got));
	cr_expect(got.l_type == F_WRLCK && got.l_pid == -1 && got.l_start == 50);
	/* A wait only the vCPU's own thread may serve; served so, it takes the lock once the
	 * holder lets go. */
	cr_expect_eq(lock_req(a, F_SETLKW, F_WRLCK, SEEK_SET, 50, 1, 0), -EINVAL);
	hl.l_type = F_UNLCK;
	cr_assert_eq(fcntl(h, F_OFD_SETLK, &hl), 0);
	cr_expect_eq(lock_req(a, F_SETLKW, F_WRLCK, SEEK_SET, 50, 1, 1), 0);
	cr_expect_eq(seen_outside(F_RDLCK, 50, 1), F_WRLCK);
	close(h);
}

/* flock is the open file description's, which is the handle's host descriptor. */
Test(hypercalls, flock_is_the_description_s_and_checks_its_operation)
{
	int64_t a = test_call(&T, open_req("/w/file", O_RDWR));
	cr_assert_geq(a, 0);
	char path[128];
	snprintf(path, sizeof(path), "%s/file", T.dir);
	int h = open(path, O_RDWR);
	cr_assert_geq(h, 0);
	cr_expect_eq(flock_req(a, LOCK_EX | LOCK_NB), 0);
	cr_expect(flock(h, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK);
	cr_expect_eq(flock_req(a, LOCK_UN), 0);
	cr_expect_eq(flock(h, LOCK_EX | LOCK_NB), 0);
	cr_expect_eq(flock_req(a, LOCK_SH | LOCK_NB), -EAGAIN);
	cr_expect_eq(flock_req(a, LOCK_SH), -EINVAL, "a wait the poller would serve");
	cr_expect_eq(flock_req(a, 0), -EINVAL);
	cr_expect_eq(flock_req(a, LOCK_SH | 8), -EINVAL);
	cr_expect_eq(flock_req(a, 32 /* LOCK_MAND */), 0);
	cr_expect_eq(flock_req(999, LOCK_SH), -EBADF);
	cr_expect_eq(flock_req(1, LOCK_EX | LOCK_NB), 0, "stdio: nothing to conflict with");
	close(h);
}

static int64_t timerfd_req(uint64_t op, uint64_t a1, uint64_t a2, uint64_t io, int64_t mono,
			   int64_t rt)
{
	struct sbx_slot s = {.nr = SBX_CALL_TIMERFD,
			     .u.a = {op, a1, a2, io, (uint64_t)mono, (uint64_t)rt}};
	return test_call(&T, s);
}

/* TIMERFD's arguments are checked before any host call; an absolute time is the guest's. */
Test(hypercalls, timerfd_arguments_are_checked_and_absolute_times_are_the_guest_s)
{
	cr_assert_eq(timerfd_req(SBX_TIMERFD_CREATE, CLOCK_MONOTONIC, 0x10, 0, 0, 0), -EINVAL);
	cr_assert_eq(timerfd_req(SBX_TIMERFD_CREATE, 42, 0, 0, 0, 0), -EINVAL);
	cr_assert_eq(timerfd_req(SBX_TIMERFD_CREATE, 1ull << 40, 0, 0, 0, 0), -EINVAL);
	cr_assert_eq(timerfd_req(SBX_TIMERFD_CREATE, CLOCK_BOOTTIME_ALARM, 0, 0, 0, 0), -EPERM);
	int64_t t = timerfd_req(SBX_TIMERFD_CREATE, CLOCK_MONOTONIC, TFD_NONBLOCK, 0, 0, 0);
	cr_assert(t >= 0, "%lld", (long long)t);
	struct sbx_itimer *io = sbx_gptr(T.vm, BUF, sizeof(*io));
	cr_assert_not_null(io);
	cr_assert_eq(timerfd_req(7, (uint64_t)t, 0, BUF, 0, 0), -EINVAL, "no such operation");
	cr_assert_eq(timerfd_req(SBX_TIMERFD_GETTIME, 99, 0, BUF, 0, 0), -EBADF);
	cr_assert_eq(timerfd_req(SBX_TIMERFD_GETTIME, (uint64_t)t, 0, 1ull << 50, 0, 0), -EFAULT);
	cr_assert_eq(timerfd_req(SBX_TIMERFD_SETTIME, (uint64_t)t, 0x10, BUF, 0, 0), -EINVAL);
	*io = (struct sbx_itimer){.value_ns = -1};
	cr_assert_eq(timerfd_req(SBX_TIMERFD_SETTIME, (uint64_t)t, 0, BUF, 0, 0), -EINVAL);
	/* An hour ahead on a guest clock that reads 5 s: an hour less 5 s on the host's. */
	*io = (struct sbx_itimer){.value_ns = 3600000000000ll + 5000000000ll, .interval_ns = 0};
	cr_assert_eq(
	    timerfd_req(SBX_TIMERFD_SETTIME, (uint64_t)t, TFD_TIMER_ABSTIME, BUF, 5000000000ll, 0),
	    0);
	cr_assert_eq(io->value_ns, 0, "the old timer was disarmed");
	cr_assert_eq(timerfd_req(SBX_TIMERFD_GETTIME, (uint64_t)t, 0, BUF, 0, 0), 0);
	cr_assert(io->value_ns > 3590000000000ll && io->value_ns <= 3600000000000ll, "%lld",
		  (long long)io->value_ns);
	/* Gone by on the guest's clock: it fires at once. */
	*io = (struct sbx_itimer){.value_ns = 1000, .interval_ns = 0};
	cr_assert_eq(
	    timerfd_req(SBX_TIMERFD_SETTIME, (uint64_t)t, TFD_TIMER_ABSTIME, BUF, 5000000000ll, 0),
	    0);
	struct pollfd p = {.fd = sbx_fd_get(T.vm, t)->fd, .events = POLLIN};
	cr_assert_eq(poll(&p, 1, 1000), 1);
	/* The ends of the range, and guest clocks anywhere: no overflow, no early firing. What
	 * systemd asks to hear of clock changes: the end of time, on the real-time clock. */
	*io = (struct sbx_itimer){.value_ns = INT64_MAX, .interval_ns = INT64_MAX};
	cr_assert_eq(timerfd_req(SBX_TIMERFD_SETTIME, (uint64_t)t, TFD_TIMER_ABSTIME, BUF,
				 INT64_MIN, INT64_MIN),
		     0);
	cr_assert_eq(timerfd_req(SBX_TIMERFD_GETTIME, (uint64_t)t, 0, BUF, 0, 0), 0);
	cr_assert(io->value_ns > 1000000000000000000ll, "%lld", (long long)io->value_ns);
	int64_t rt = timerfd_req(SBX_TIMERFD_CREATE, CLOCK_REALTIME, TFD_NONBLOCK, 0, 0, 0);
	cr_assert(rt >= 0);
	*io = (struct sbx_itimer){.value_ns = INT64_MAX};
	cr_assert_eq(timerfd_req(SBX_TIMERFD_SETTIME, (uint64_t)rt,
				 TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, BUF, 0,
				 -5000000000ll),
		     0);
	cr_assert_eq(timerfd_req(SBX_TIMERFD_GETTIME, (uint64_t)rt, 0, BUF, 0, 0), 0);
	cr_assert(io->value_ns > 1000000000000000000ll, "%lld", (long long)io->value_ns);
	*io = (struct sbx_itimer){.value_ns = 1, .interval_ns = 0};
	cr_assert_eq(
	    timerfd_req(SBX_TIMERFD_SETTIME, (uint64_t)rt, TFD_TIMER_ABSTIME, BUF, 0, INT64_MAX),
	    0);
	p.fd = sbx_fd_get(T.vm, rt)->fd;
	cr_assert_eq(poll(&p, 1, 1000), 1, "long gone by on the guest's clock");
	/* An unaligned buffer is copied, not stored through. */
	cr_assert_eq(timerfd_req(SBX_TIMERFD_GETTIME, (uint64_t)t, 0, BUF + 3, 0, 0), 0);
	/* Not a timerfd. */
	int64_t f = test_call(&T, open_req("/w/file", O_RDWR | O_CREAT));
	cr_assert(f >= 0);
	cr_assert_eq(timerfd_req(SBX_TIMERFD_GETTIME, (uint64_t)f, 0, BUF, 0, 0), -EINVAL);
}

static int fds_of(int64_t h)
{
	return T.vm->proc.files->fds[h].fd;
}

static int64_t call(uint32_t nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4)
{
	struct sbx_slot s = {.nr = nr, .u.a = {a0, a1, a2, a3, a4}};
	return test_call(&T, s);
}

/* The objects section (persist/objects.c) without a VM running: a pipe's bytes in flight and
 * its reader's dup, a socket pair's bytes queued at each end, an eventfd's count, an epoll's list
 * (without a registration whose handle was closed since, and with a fired one-shot still off)
 * survive a save, the table's end and a load; the save changed nothing of them; a record that names
 * what is not there, or a pipe fuller than its size, is refused in one line. */
Test(hypercalls, pipes_eventfds_and_epoll_survive_the_objects_section)
{
	int64_t pp = call(SBX_CALL_PIPE, O_NONBLOCK, 0, 0, 0, 0);
	cr_assert(pp >= 0, "%lld", (long long)pp);
	int rd = (int)(pp & 0xffffffff), wr = (int)(pp >> 32);
	int64_t rd2 = call(SBX_CALL_DUP, (uint64_t)rd, (uint64_t)-1, 3, 0, 0);
	cr_assert(rd2 >= 0);
	int64_t ev = call(SBX_CALL_EVENTFD, 0, EFD_NONBLOCK, 0, 0, 0);
	int64_t gone = call(SBX_CALL_EVENTFD, 1, 0, 0, 0, 0);
	int64_t ep = call(SBX_CALL_EPOLL_CREATE, 0, 0, 0, 0, 0);
	int64_t sp = call(SBX_CALL_SOCKETPAIR, SOCK_STREAM | SOCK_NONBLOCK, 0, 0, 0, 0);
	cr_assert(ev >= 0 && gone >= 0 && ep >= 0 && sp >= 0);
	int s0 = (int)(sp & 0xffffffff), s1 = (int)(sp >> 32);
	/* A second pair whose end 0 is shut for writing once its last bytes are out: end 1
	 * reads them, then end of file. */
	int64_t sq = call(SBX_CALL_SOCKETPAIR, SOCK_STREAM | SOCK_NONBLOCK, 0, 0, 0, 0);
	cr_assert(sq >= 0);
	int q0 = (int)(sq & 0xffffffff), q1 = (int)(sq >> 32);
	/* Pairs of datagrams and of sequenced packets with messages queued. */
	int64_t dg = call(SBX_CALL_SOCKETPAIR, SOCK_DGRAM | SOCK_NONBLOCK, 0, 0, 0, 0);
	int64_t sqp = call(SBX_CALL_SOCKETPAIR, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, 0, 0, 0);
	cr_assert(dg >= 0 && sqp >= 0);
	int d0 = (int)(dg & 0xffffffff), d1 = (int)(dg >> 32);
	int p0 = (int)(sqp & 0xffffffff), p1 = (int)(sqp >> 32);
	/* A timer an hour ahead every 10 minutes, one that fired unread, and one every 2 ms
	 * whose expiries pile up unread. */
	int64_t t1 = timerfd_req(SBX_TIMERFD_CREATE, CLOCK_MONOTONIC, 0, 0, 0, 0);
	int64_t t2 = timerfd_req(SBX_TIMERFD_CREATE, CLOCK_BOOTTIME, TFD_NONBLOCK, 0, 0, 0);
	int64_t t3 = timerfd_req(SBX_TIMERFD_CREATE, CLOCK_MONOTONIC, TFD_NONBLOCK, 0, 0, 0);
	cr_assert(t1 >= 0 && t2 >= 0 && t3 >= 0);
	struct itimerspec hour = {.it_value = {3600, 0}, .it_interval = {600, 0}},
			  now = {.it_value = {0, 1}},
			  often = {.it_value = {0, 2000000}, .it_interval = {0, 2000000}};
	cr_assert_eq(timerfd_settime(fds_of(t1), 0, &hour, NULL), 0);
	cr_assert_eq(timerfd_settime(fds_of(t2), 0, &now, NULL), 0);
	cr_assert_eq(timerfd_settime(fds_of(t3), 0, &often, NULL), 0);
	struct pollfd fired = {.fd = fds_of(t2), .events = POLLIN};
	cr_assert_eq(poll(&fired, 1, 1000), 1);
	usleep(20000); /* some 10 expiries of t3 */
	struct sbx_handle *fds = T.vm->proc.files->fds;
	cr_assert_eq(write(fds[wr].fd, "in flight", 9), 9);
	cr_assert_eq(write(fds[s1].fd, "to end 0", 8), 8);
	cr_assert_eq(write(fds[s0].fd, "to 1", 4), 4);
	cr_assert_eq(write(fds[q0].fd, "last", 4), 4);
	static const char *const msgs[] = {"one", "two", "the third message"};
	for (int m = 0; m < 3; m++) {
		size_t l = strlen(msgs[m]);
		cr_assert_eq(send(fds[d1].fd, msgs[m], l, 0), (ssize_t)l);
		cr_assert_eq(send(fds[p0].fd, msgs[m], l, 0), (ssize_t)l);
	}
	cr_assert_eq(call(SBX_CALL_SOCKOP, SBX_SOCKOP_SHUTDOWN, (uint64_t)q0, SHUT_WR, 0, 0), 0);
	uint64_t v = 41;
	cr_assert_eq(write(fds[ev].fd, &v, 8), 8);
	cr_assert_eq(call(SBX_CALL_EPOLL_CTL, (uint64_t)ep, EPOLL_CTL_ADD, (uint64_t)rd,
			  EPOLLIN | EPOLLONESHOT, 0xaa),
		     0);
	cr_assert_eq(
	    call(SBX_CALL_EPOLL_CTL, (uint64_t)ep, EPOLL_CTL_ADD, (uint64_t)ev, EPOLLIN, 0xbb), 0);
	cr_assert_eq(
	    call(SBX_CALL_EPOLL_CTL, (uint64_t)ep, EPOLL_CTL_ADD, (uint64_t)gone, EPOLLIN, 0xcc),
	    0);
	sbx_fd_release(T.vm, (int)gone);
	/* The pipe's one shot fires now: from here on it is off until a MOD. */
	struct epoll_event got[4];
	cr_assert_eq(epoll_wait(fds[ep].fd, got, 4, 0), 2);

	struct sbx_sio out = {0};
	cr_assert_eq(sbx_state_objects(T.vm, &out), 0, "%s", out.msg);
	/* Nothing taken: the pipe still holds its bytes, the eventfd its count. */
	char buf[16] = "";
	cr_assert_eq(read(fds[rd].fd, buf, sizeof(buf)), 9);
	cr_assert_eq(write(fds[wr].fd, buf, 9), 9);
	cr_assert_eq(read(fds[ev].fd, &v, 8), 8);
	cr_assert_eq(v, 41);
	cr_assert_eq(write(fds[ev].fd, &v, 8), 8);
	cr_assert_eq(recv(fds[d0].fd, buf, sizeof(buf), MSG_PEEK), 3, "the datagrams stay");
	int po = 7;
	socklen_t pl = sizeof(po);
	cr_assert_eq(getsockopt(fds[d0].fd, SOL_SOCKET, SO_PEEK_OFF, &po, &pl), 0);
	cr_assert_eq(po, -1, "the peek offset is off again");

	/* The monitor section leaves them out; the objects section brings them back. */
	for (int i = 0; i < SBX_MAX_FDS; i++)
		if (sbx_handle_is_object(&fds[i]))
			sbx_fd_release(T.vm, i);
	struct sbx_sio in = {.load = 1, .buf = out.buf, .len = out.len};
	cr_assert_eq(sbx_state_objects(T.vm, &in), 0, "%s", in.msg);
	cr_assert_eq(in.pos, in.len);
	int n = epoll_wait(fds[ep].fd, got, 4, 0);
	cr_assert_eq(n, 1, "the closed handle's registration, or the fired one-shot, came back");
	cr_assert_eq(got[0].data.u64, 0xbb);
	cr_assert_eq(call(SBX_CALL_EPOLL_CTL, (uint64_t)ep, EPOLL_CTL_MOD, (uint64_t)rd,
			  EPOLLIN | EPOLLONESHOT, 0xaa),
		     0, "the one-shot is registered, disabled");
	cr_assert_eq(epoll_wait(fds[ep].fd, got, 4, 0), 2);
	cr_assert_eq(read(fds[rd2].fd, buf, sizeof(buf)), 9, "the dup reads the same pipe");
	cr_assert_eq(memcmp(buf, "in flight", 9), 0);
	cr_assert(fcntl(fds[rd].fd, F_GETFL) & O_NONBLOCK);
	cr_assert_eq(read(fds[ev].fd, &v, 8), 8);
	cr_assert_eq(v, 41);
	struct itimerspec left;
	cr_assert_eq(timerfd_gettime(fds[t1].fd, &left), 0);
	cr_assert(left.it_value.tv_sec > 3500 && left.it_interval.tv_sec == 600, "%ld %ld",
		  (long)left.it_value.tv_sec, (long)left.it_interval.tv_sec);
	cr_assert_eq(fds[t2].clock, CLOCK_BOOTTIME);
	cr_assert_eq(poll(&(struct pollfd){.fd = fds[t2].fd, .events = POLLIN}, 1, 1000), 1,
		     "the unread expiry is there again");
	cr_assert_eq(read(fds[t2].fd, &v, 8), 8);
	cr_assert_eq(v, 1);
	/* Every expiry that was unread at the save is there (and those since), and it goes on. */
	cr_assert_eq(read(fds[t3].fd, &v, 8), 8);
	cr_assert(v >= 5, "%llu expiries", (unsigned long long)v);
	cr_assert_eq(poll(&(struct pollfd){.fd = fds[t3].fd, .events = POLLIN}, 1, 1000), 1);
	/* Each end of the socket pair has what was queued for it, and they still talk. */
	cr_assert_eq(read(fds[s0].fd, buf, sizeof(buf)), 8);
	cr_assert_eq(memcmp(buf, "to end 0", 8), 0);
	cr_assert_eq(read(fds[s1].fd, buf, sizeof(buf)), 4);
	cr_assert_eq(memcmp(buf, "to 1", 4), 0);
	cr_assert_eq(write(fds[s0].fd, "x", 1), 1);
	cr_assert_eq(read(fds[s1].fd, buf, sizeof(buf)), 1);
	for (int m = 0; m < 3; m++) {
		ssize_t l = (ssize_t)strlen(msgs[m]);
		char mb[32];
		cr_assert_eq(recv(fds[d0].fd, mb, sizeof(mb), 0), l, "datagram %d", m);
		cr_assert_eq(memcmp(mb, msgs[m], (size_t)l), 0);
		cr_assert_eq(recv(fds[p1].fd, mb, sizeof(mb), 0), l, "packet %d", m);
		cr_assert_eq(memcmp(mb, msgs[m], (size_t)l), 0);
	}
	cr_assert(recv(fds[d0].fd, buf, sizeof(buf), MSG_DONTWAIT) < 0 && errno == EAGAIN);
	cr_assert(recv(fds[p1].fd, buf, sizeof(buf), MSG_DONTWAIT) < 0 && errno == EAGAIN);
	cr_assert_eq(read(fds[q1].fd, buf, sizeof(buf)), 4, "the bytes before the shutdown");
	cr_assert_eq(read(fds[q1].fd, buf, sizeof(buf)), 0, "then end of file: the shutdown");
	cr_assert_eq(fds[q0].shut, SBX_SHUT_WR);
	cr_assert(send(fds[q0].fd, "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE,
		  "the shut end still refuses");
	cr_assert_eq(fds[wr].writable, 1);
	cr_assert_eq(fds[rd].writable, 0);

	/* A pipe holding more than its size; a dup of a descriptor that is no object. */
	for (int i = 0; i < SBX_MAX_FDS; i++)
		if (sbx_handle_is_object(&fds[i]))
			sbx_fd_release(T.vm, i);
	uint8_t bad[64];
	size_t k = 0;
	uint32_t u[] = {1, (uint32_t)3, (uint32_t)-1, O_RDONLY, SBX_O_PIPE, 0, 4096, 5000};
	memcpy(bad, u, sizeof(u));
	k = sizeof(u);
	struct sbx_sio b1 = {.load = 1, .buf = bad, .len = k};
	cr_assert_lt(sbx_state_objects(T.vm, &b1), 0);
	cr_assert(strstr(b1.msg, "a pipe of 4096 bytes holding 5000") && !strchr(b1.msg, '\n'),
		  "%s", b1.msg);
	uint32_t u2[] = {1, (uint32_t)5, 4, O_RDONLY, SBX_O_PIPE, 0};
	struct sbx_sio b2 = {.load = 1, .buf = (uint8_t *)u2, .len = sizeof(u2)};
	cr_assert_lt(sbx_state_objects(T.vm, &b2), 0);
	cr_assert(strstr(b2.msg, "malformed object handle"), "%s", b2.msg);
	free(out.buf);

	/* A message of no bytes is refused by name: a peek with an offset could pass over one. */
	int64_t de = call(SBX_CALL_SOCKETPAIR, SOCK_DGRAM | SOCK_NONBLOCK, 0, 0, 0, 0);
	cr_assert(de >= 0);
	cr_assert_eq(send(fds[de >> 32].fd, "", 0, 0), 0);
	struct sbx_sio e = {0};
	cr_assert_lt(sbx_state_objects(T.vm, &e), 0);
	cr_assert(strstr(e.msg, "one of no bytes") && !strchr(e.msg, '\n'), "%s", e.msg);
	free(e.buf);
}
