/* The virtual /dev and /proc/self (monitor/calls/vfs.c), driven through the ring as the guest
 * kernel would, with hostile arguments and a hostile table of mappings. No KVM. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "helpers.h"

static struct test_vm T;

static void setup(void)
{
	test_vm_setup(&T);
	test_vm_file(&T, "file", "content\n");
}

static void teardown(void)
{
	test_vm_teardown(&T);
}

TestSuite(vfs, .init = setup, .fini = teardown);

#define BUF 0x500000ull
#define PATH 0x400000ull

static struct sbx_slot path_req(uint32_t nr, const char *path, uint32_t flags)
{
	struct sbx_slot s = {.nr = nr};
	s.u.path.dirfd = SBX_AT_FDCWD;
	s.u.path.path = test_put(&T, PATH, path);
	s.u.path.path_len = (uint32_t)strlen(path);
	s.u.path.flags = flags;
	s.u.path.mode = 0644;
	s.u.path.buf = BUF;
	s.u.path.buf_len = 4096;
	return s;
}

static int64_t open_(const char *path, uint32_t flags)
{
	return test_call(&T, path_req(SBX_CALL_OPEN, path, flags));
}

static int64_t read_(int64_t fd, uint64_t len)
{
	return test_call(&T, test_rw_req(SBX_CALL_READ, (int32_t)fd, BUF, len));
}

static int64_t write_(int64_t fd, uint64_t len)
{
	return test_call(&T, test_rw_req(SBX_CALL_WRITE, (int32_t)fd, BUF, len));
}

static int64_t stat_(const char *path, uint32_t flags, struct stat *st)
{
	int64_t r = test_call(&T, path_req(SBX_CALL_STAT, path, flags));
	if (r == 0)
		memcpy(st, sbx_gptr(T.vm, BUF, sizeof(*st)), sizeof(*st));
	return r;
}

/* readlink's answer as a string ("" and the error when it fails). */
static int64_t readlink_(const char *path, char *out, size_t len)
{
	int64_t r = test_call(&T, path_req(SBX_CALL_READLINK, path, 0));
	out[0] = 0;
	if (r > 0 && (size_t)r < len) {
		memcpy(out, sbx_gptr(T.vm, BUF, (uint64_t)r), (size_t)r);
		out[r] = 0;
	}
	return r;
}

/* The whole of a generated file, read in chunks of `chunk` bytes (malloc'd, NUL-terminated). */
static char *slurp(const char *path, uint64_t chunk)
{
	int64_t fd = open_(path, O_RDONLY);
	cr_assert_geq(fd, 0, "open %s: %lld", path, (long long)fd);
	size_t len = 0;
	char *all = NULL;
	for (;;) {
		int64_t n = read_(fd, chunk);
		cr_assert_geq(n, 0);
		if (n == 0)
			break;
		all = realloc(all, len + (size_t)n + 1);
		memcpy(all + len, sbx_gptr(T.vm, BUF, (uint64_t)n), (size_t)n);
		len += (size_t)n;
	}
	all = realloc(all, len + 1);
	all[len] = 0;
	struct sbx_slot c = {.nr = SBX_CALL_CLOSE, .u.a = {(uint64_t)fd}};
	test_call(&T, c);
	return all;
}

/* The names in a directory, "|"-separated, in the order getdents gives them. */
static void list(const char *path, char *out, size_t len)
{
	int64_t fd = open_(path, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(fd, 0, "open %s: %lld", path, (long long)fd);
	out[0] = 0;
	for (;;) {
		int64_t n = test_call(&T, test_rw_req(SBX_CALL_GETDENTS, (int32_t)fd, BUF, 200));
		cr_assert_geq(n, 0);
		if (n == 0)
			break;
		const uint8_t *p = sbx_gptr(T.vm, BUF, (uint64_t)n);
		for (int64_t o = 0; o < n; o += ((const struct dirent64 *)(p + o))->d_reclen) {
			strncat(out, ((const struct dirent64 *)(p + o))->d_name,
				len - strlen(out) - 1);
			strncat(out, "|", len - strlen(out) - 1);
		}
	}
}

Test(vfs, null_zero_full_as_linux)
{
	uint8_t *b = sbx_gptr(T.vm, BUF, 64);
	int64_t null = open_("/dev/null", O_RDWR);
	cr_assert_geq(null, 0);
	cr_assert_eq(read_(null, 64), 0);
	cr_assert_eq(write_(null, 64), 64);

	int64_t zero = open_("/dev/zero", O_RDWR);
	memset(b, 0xff, 64);
	cr_assert_eq(read_(zero, 64), 64);
	for (int i = 0; i < 64; i++)
		cr_assert_eq(b[i], 0);
	cr_assert_eq(write_(zero, 10), 10);

	int64_t full = open_("/dev/full", O_RDWR);
	cr_assert_eq(write_(full, 1), -ENOSPC);
	memset(b, 0xff, 64);
	cr_assert_eq(read_(full, 64), 64);
	cr_assert_eq(b[63], 0);

	/* The access mode holds, as on a host file. */
	int64_t ro = open_("/dev/null", O_RDONLY);
	cr_assert_eq(write_(ro, 1), -EBADF);

	struct stat st;
	const struct {
		const char *path;
		unsigned minor;
	} devs[] = {{"/dev/null", 3},
		    {"/dev/zero", 5},
		    {"/dev/full", 7},
		    {"/dev/random", 8},
		    {"/dev/urandom", 9}};
	for (size_t i = 0; i < sizeof(devs) / sizeof(devs[0]); i++) {
		cr_assert_eq(stat_(devs[i].path, 0, &st), 0);
		cr_assert_eq(st.st_mode, S_IFCHR | 0666, "%s", devs[i].path);
		cr_assert_eq(st.st_rdev, makedev(1, devs[i].minor), "%s", devs[i].path);
	}
	struct sbx_slot fs = {.nr = SBX_CALL_FSTAT};
	fs.u.path.dirfd = (int32_t)null;
	fs.u.path.buf = BUF;
	fs.u.path.buf_len = sizeof(st);
	cr_assert_eq(test_call(&T, fs), 0);
	memcpy(&st, b, sizeof(st));
	cr_assert_eq(st.st_rdev, makedev(1, 3));
}

Test(vfs, urandom_gives_the_bytes_asked_for)
{
	uint8_t *b = sbx_gptr(T.vm, BUF, 4096);
	memset(b, 0, 4096);
	int64_t fd = open_("/dev/urandom", O_RDONLY);
	cr_assert_eq(read_(fd, 4096), 4096);
	int nonzero = 0;
	for (int i = 0; i < 4096; i++)
		nonzero += b[i] != 0;
	cr_assert_gt(nonzero, 3000); /* 4096 random bytes have ~16 zeros */
	/* Past guest RAM: EFAULT, never a host write. */
	cr_assert_eq(test_call(&T, test_rw_req(SBX_CALL_READ, (int32_t)fd, (16 << 20) - 8, 64)),
		     -EFAULT);
}

Test(vfs, dev_fd_and_stdout_reopen_the_handle)
{
	int64_t a = open_("/r/file", O_RDONLY);
	cr_assert_eq(read_(a, 4), 4);
	char p[64];
	snprintf(p, sizeof(p), "/dev/fd/%lld", (long long)a);
	int64_t b = open_(p, O_RDONLY);
	cr_assert_geq(b, 0);
	cr_assert_neq(b, a);
	/* The same file, a position of its own (Linux reopens it). */
	cr_assert_eq(read_(b, 100), 8);
	cr_assert_eq(memcmp(sbx_gptr(T.vm, BUF, 8), "content\n", 8), 0);
	/* ... under its mount's rule: /r is read-only. */
	cr_assert_eq(open_(p, O_WRONLY), -EROFS);

	int64_t out = open_("/dev/stdout", O_WRONLY);
	cr_assert_geq(out, 0);
	test_put(&T, BUF, "hello");
	cr_assert_eq(write_(out, 5), 5);
	char got[8] = {0};
	cr_assert_eq(read(T.out_pipe[0], got, sizeof(got)), 5);
	cr_assert_str_eq(got, "hello");

	cr_assert_eq(open_("/proc/self/fd/999", O_RDONLY), -ENOENT);
	cr_assert_eq(open_("/proc/self/fd/01", O_RDONLY), -ENOENT);
	cr_assert_eq(open_("/proc/self/fd/-1", O_RDONLY), -ENOENT);
	cr_assert_eq(open_("/dev/stdout", O_RDONLY | O_NOFOLLOW), -ELOOP);
}

Test(vfs, links_read_as_on_linux)
{
	char t[256];
	const char *const links[][2] = {{"/proc/self", "2"},
					{"/dev/stdin", "/proc/self/fd/0"},
					{"/dev/fd", "/proc/self/fd"},
					{"/proc/self/exe", T.vm->proc.image.exe_path}};
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		cr_assert_eq(readlink_(links[i][0], t, sizeof(t)), (int64_t)strlen(links[i][1]));
		cr_assert_str_eq(t, links[i][1]);
	}
	int64_t fd = open_("/w/file", O_RDONLY);
	char p[64];
	snprintf(p, sizeof(p), "/proc/2/fd/%lld", (long long)fd);
	readlink_(p, t, sizeof(t));
	cr_assert_str_eq(t, "/w/file");
	readlink_("/proc/self/fd/1", t, sizeof(t)); /* the monitor's pipe: never a host path */
	cr_assert(strncmp(t, "pipe:[", 6) == 0, "%s", t);
	cr_assert_eq(readlink_("/dev/null", t, sizeof(t)), -EINVAL);
	struct stat st;
	cr_assert_eq(stat_("/dev/stdout", AT_SYMLINK_NOFOLLOW, &st), 0);
	cr_assert(S_ISLNK(st.st_mode));
	cr_assert_eq(stat_("/dev/stdout", 0, &st), 0);
	cr_assert(S_ISFIFO(st.st_mode)); /* what fd 1 is */
	cr_assert_eq(stat_("/proc/self/", AT_SYMLINK_NOFOLLOW, &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
}

Test(vfs, directories_list_their_nodes)
{
	char names[1024];
	list("/dev", names, sizeof(names));
	cr_assert_str_eq(names,
			 ".|..|null|zero|full|random|urandom|stdin|stdout|stderr|fd|ptmx|tty|pts|");
	list("/proc/self", names, sizeof(names));
	cr_assert_str_eq(names, ".|..|cmdline|comm|environ|exe|fd|maps|stat|status|");
	/* stdio, and the listing's own handle. */
	list("/dev/fd/", names, sizeof(names));
	cr_assert_str_eq(names, ".|..|0|1|2|3|");
	list("/dev/pts", names, sizeof(names));
	cr_assert_str_eq(names, ".|..|", "no terminal yet");
	/* Its own pid and its parent's, the monitor's init: this sandbox has no process tree. */
	list("/proc", names, sizeof(names));
	cr_assert_str_eq(names, ".|..|1|2|self|cpuinfo|loadavg|meminfo|stat|uptime|");
	list("/proc/1", names, sizeof(names));
	cr_assert_str_eq(names, ".|..|cmdline|comm|stat|status|");
	cr_assert_eq(open_("/proc/1/environ", O_RDONLY), -EACCES);
	cr_assert_eq(open_("/proc/1/fd", O_RDONLY), -EACCES);
	list("/", names, sizeof(names));
	cr_assert(strstr(names, "|dev|") && strstr(names, "|proc|") && strstr(names, "|r|"), "%s",
		  names);
	cr_assert_eq(open_("/dev/null", O_RDONLY | O_DIRECTORY), -ENOTDIR);
	cr_assert_eq(open_("/dev", O_WRONLY), -EISDIR);
	cr_assert_eq(open_("/dev/null/x", O_RDONLY), -ENOTDIR);
	cr_assert_eq(open_("/dev/nul", O_RDONLY), -ENOENT);
	cr_assert_eq(open_("/proc/3/maps", O_RDONLY), -ENOENT);
	cr_assert_eq(open_("/proc/02/maps", O_RDONLY), -ENOENT);
	cr_assert_geq(open_("/proc/2/maps", O_RDONLY), 0);
	cr_assert_eq(open_("/proc/self/mounts", O_RDONLY), -ENOENT);
	/* Relative to a virtual directory's handle, and as the cwd. */
	int64_t d = open_("/proc/self", O_RDONLY | O_DIRECTORY);
	struct sbx_slot s = path_req(SBX_CALL_OPEN, "status", O_RDONLY);
	s.u.path.dirfd = (int32_t)d;
	cr_assert_geq(test_call(&T, s), 0);
	cr_assert_eq(test_call(&T, path_req(SBX_CALL_CHDIR, "/dev", 0)), 0);
	cr_assert_geq(open_("zero", O_RDONLY), 0);
	cr_assert_eq(test_call(&T, path_req(SBX_CALL_CHDIR, "/dev/null", 0)), -ENOTDIR);
}

Test(vfs, nothing_in_them_can_be_changed)
{
	cr_assert_eq(test_call(&T, path_req(SBX_CALL_MKDIR, "/dev/x", 0)), -EACCES);
	cr_assert_eq(test_call(&T, path_req(SBX_CALL_UNLINK, "/dev/null", 0)), -EACCES);
	cr_assert_eq(test_call(&T, path_req(SBX_CALL_UNLINK, "/proc/self/maps", 0)), -EACCES);
	cr_assert_eq(open_("/dev/new", O_WRONLY | O_CREAT), -ENOENT);
	cr_assert_eq(open_("/dev/null", O_WRONLY | O_CREAT | O_EXCL), -EEXIST);
	cr_assert_eq(open_("/proc/self/status", O_WRONLY), -EACCES);
	cr_assert_eq(test_call(&T, path_req(SBX_CALL_CHMOD, "/dev/null", 0)), -EROFS);
	cr_assert_eq(test_call(&T, path_req(SBX_CALL_ACCESS, "/proc/self/maps", 0)), 0);
	struct sbx_slot a = path_req(SBX_CALL_ACCESS, "/proc/self/maps", 0);
	a.u.path.mode = W_OK;
	cr_assert_eq(test_call(&T, a), -EACCES);
}

/* A table of mappings as the guest kernel publishes it (the boot page's vma_table). */
static void plant_vmas(const struct sbx_vma *v, uint32_t n, uint32_t claimed)
{
	struct sbx_bootinfo *b = sbx_gptr(T.vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	const uint64_t table = 0x600000, count = 0x5ff000;
	b->vma_table = table;
	b->vma_count = count;
	sbx_copy_to_guest(T.vm, table, v, n * sizeof(*v));
	sbx_copy_to_guest(T.vm, count, &claimed, sizeof(claimed));
}

Test(vfs, maps_lists_the_kernels_table_and_only_what_is_sane)
{
	strcpy(T.vm->proc.image.exe_path, "/bin/prog");
	const struct sbx_vma v[] = {
	    {0x400000, 0x401000, SBX_PROT_READ, 0, SBX_VMA_ELF, 0, {0}},
	    {0x401000, 0x403000, SBX_PROT_READ | SBX_PROT_EXEC, 0, SBX_VMA_ELF, 0, {0}},
	    {0x403000, 0x405000, SBX_PROT_READ | SBX_PROT_WRITE, 0, SBX_VMA_HEAP, 0, {0}},
	    {0x402000, 0x406000, SBX_PROT_READ, 0, SBX_VMA_ANON, 0, {0}}, /* overlaps: dropped */
	    {0x500001, 0x501000, SBX_PROT_READ, 0, SBX_VMA_ANON, 0, {0}}, /* unaligned: dropped */
	    {0x700000, 0x600000, SBX_PROT_READ, 0, SBX_VMA_ANON, 0, {0}}, /* backwards: dropped */
	    {0x800000, 0x900000, 0, 0, SBX_VMA_ANON, 0, {0}},
	    {0xa00000, 0xb00000, SBX_PROT_READ | SBX_PROT_WRITE, 0, SBX_VMA_STACK, 0, {0}},
	};
	plant_vmas(v, 8, 8);
	char *m = slurp("/proc/self/maps", 37); /* chunks that end mid-line */
	const char *want = "00400000-00401000 r--p 00000000 00:00 0"
			   "                                  /bin/prog\n"
			   "00401000-00403000 r-xp 00000000 00:00 0"
			   "                                  /bin/prog\n"
			   "00403000-00405000 rw-p 00000000 00:00 0"
			   "                                  [heap]\n"
			   "00800000-00900000 ---p 00000000 00:00 0 \n"
			   "00a00000-00b00000 rw-p 00000000 00:00 0"
			   "                                  [stack]\n";
	cr_assert_str_eq(m, want);
	free(m);
	char *s = slurp("/proc/self/status", 4096);
	cr_assert(strstr(s, "Name:\tprog\n") && strstr(s, "Pid:\t2\n") && strstr(s, "PPid:\t1\n") &&
		      strstr(s, "VmSize:\t    2068 kB\n") && strstr(s, "VmStk:\t    1024 kB\n"),
		  "%s", s);
	free(s);
	/* stat: Linux's 52 fields, the ids where ps reads them, the program's text range. */
	s = slurp("/proc/self/stat", 4096);
	cr_assert(strncmp(s, "2 (prog) R 1 2 2 0 -1 ", 22) == 0, "%s", s);
	int fields = 2;
	for (const char *q = strchr(s, ')') + 1; *q; q++)
		fields += *q == ' ';
	cr_assert_eq(fields, 52, "%s", s);
	free(s);
	s = slurp("/proc/1/stat", 4096);
	cr_assert(strncmp(s, "1 (sandbox) S 0 1 1 ", 20) == 0, "%s", s);
	fields = 2;
	for (const char *q = strchr(s, ')') + 1; *q; q++)
		fields += *q == ' ';
	cr_assert_eq(fields, 52, "%s", s);
	free(s);
	s = slurp("/proc/self/comm", 64);
	cr_assert_str_eq(s, "prog\n");
	free(s);
	s = slurp("/proc/uptime", 64);
	unsigned long secs;
	unsigned cs;
	char nl;
	cr_assert_eq(sscanf(s, "%lu.%2u 0.00%c", &secs, &cs, &nl), 3, "%s", s);
	free(s);
	/* The machine: a processor block per CPU the sandbox may use (scripts count them for
	 * make -j), a cpuN line each in stat (libuv's os.cpus()), memory as guest RAM. */
	unsigned ncpus = T.vm->proc.threads.ncpus ? T.vm->proc.threads.ncpus : 1, seen = 0;
	s = slurp("/proc/cpuinfo", 1 << 16);
	for (const char *q = s; (q = strstr(q, "processor\t: ")); q++)
		seen++;
	cr_assert_eq(seen, ncpus, "%s", s);
	cr_assert(strstr(s, "\nflags\t\t: fpu ") && strstr(s, " sse2 "), "%s", s);
	free(s);
	s = slurp("/proc/stat", 1 << 16);
	cr_assert(strncmp(s, "cpu  ", 5) == 0 && strstr(s, "\ncpu0 ") && strstr(s, "\nbtime "),
		  "%s", s);
	free(s);
	s = slurp("/proc/meminfo", 4096);
	unsigned long kb = 0;
	cr_assert_eq(sscanf(s, "MemTotal: %lu kB", &kb), 1, "%s", s);
	cr_assert_eq(kb, T.vm->proc.mem.size >> 10);
	free(s);
	s = slurp("/proc/loadavg", 256);
	double l1;
	cr_assert_eq(sscanf(s, "%lf ", &l1), 1, "%s", s);
	free(s);

	/* A count far too large is cut to the table's size; a table outside RAM is nothing. */
	plant_vmas(v, 8, 0xffffffffu);
	m = slurp("/proc/self/maps", 4096);
	free(m);
	struct sbx_bootinfo *b = sbx_gptr(T.vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	b->vma_table = (16 << 20) - 24;
	m = slurp("/proc/self/maps", 4096);
	cr_assert_str_eq(m, "");
	free(m);
	b->vma_count = ~0ull;
	m = slurp("/proc/self/maps", 4096);
	cr_assert_str_eq(m, "");
	free(m);
}

Test(vfs, generated_files_seek_and_pread)
{
	strcpy(T.vm->proc.image.exe_path, "/bin/prog");
	int64_t fd = open_("/proc/self/status", O_RDONLY);
	struct sbx_slot ls = {.nr = SBX_CALL_LSEEK, .u.a = {(uint64_t)fd, 6, SEEK_SET}};
	cr_assert_eq(test_call(&T, ls), 6);
	ls.u.a[1] = (uint64_t)-7;
	ls.u.a[2] = SEEK_CUR;
	cr_assert_eq(test_call(&T, ls), -EINVAL);
	ls.u.a[2] = SEEK_END;
	cr_assert_eq(test_call(&T, ls), -EINVAL);
	ls.u.a[2] = 99;
	cr_assert_eq(test_call(&T, ls), -EINVAL);
	/* The most negative offset has no positive counterpart to compare with. */
	ls.u.a[1] = (uint64_t)INT64_MIN;
	for (ls.u.a[2] = SEEK_SET; ls.u.a[2] <= SEEK_CUR; ls.u.a[2]++)
		cr_assert_eq(test_call(&T, ls), -EINVAL, "whence %d", (int)ls.u.a[2]);
	struct sbx_slot pr = test_rw_req(SBX_CALL_PREAD, (int32_t)fd, BUF, 4);
	pr.u.rw.off = 0;
	cr_assert_eq(test_call(&T, pr), 4);
	cr_assert_eq(memcmp(sbx_gptr(T.vm, BUF, 4), "Name", 4), 0);
	pr.u.rw.off = 1ll << 40;
	cr_assert_eq(test_call(&T, pr), 0);
	pr.u.rw.off = -1;
	cr_assert_eq(test_call(&T, pr), -EINVAL);
	cr_assert_eq(read_(fd, 4), 4); /* from 6: pread moved nothing */
	cr_assert_eq(memcmp(sbx_gptr(T.vm, BUF, 4), "prog", 4), 0);
}

Test(vfs, a_mount_wins_and_no_dev_turns_it_off)
{
	char spec[128], err[256];
	snprintf(spec, sizeof(spec), "%s/file:/dev/null", T.dir);
	cr_assert_eq(policy_add_mount(&T.pol, spec, 0, err, sizeof(err)), 0, "%s", err);
	int64_t fd = open_("/dev/null", O_RDONLY);
	cr_assert_eq(read_(fd, 100), 8); /* the mounted file, not the device */
	char names[1024];
	list("/dev", names, sizeof(names));
	cr_assert(strstr(names, "|null|") && !strstr(strstr(names, "|null|") + 1, "|null|"),
		  "null listed once: %s", names);
	cr_assert_geq(open_("/dev/zero", O_RDONLY), 0);
	T.pol.no_dev = 1;
	cr_assert_eq(open_("/dev/zero", O_RDONLY), -ENOENT);
	cr_assert_eq(open_("/proc/self/maps", O_RDONLY), -ENOENT);
	list("/", names, sizeof(names));
	cr_assert_null(strstr(names, "proc"), "%s", names);
}

Test(vfs, handles_survive_the_monitor_state)
{
	int64_t st = open_("/proc/self/status", O_RDONLY);
	cr_assert_eq(read_(st, 5), 5);
	int64_t dir = open_("/dev/fd", O_RDONLY | O_DIRECTORY);
	int64_t full = open_("/dev/full", O_WRONLY);
	struct sbx_sio out = {0};
	cr_assert_eq(sbx_state_monitor(T.vm, &out), 0, "%s", out.msg);
	sbx_fd_close_all(T.vm);
	struct sbx_sio in = {.load = 1, .buf = out.buf, .len = out.len};
	cr_assert_eq(sbx_state_monitor(T.vm, &in), 0, "%s", in.msg);
	cr_assert_eq(read_(st, 1), 1);
	cr_assert_eq(*(char *)sbx_gptr(T.vm, BUF, 1), '\t'); /* "Name:" then the tab */
	cr_assert_eq(write_(full, 1), -ENOSPC);
	cr_assert_eq(read_(full, 1), -EBADF);
	cr_assert_gt(test_call(&T, test_rw_req(SBX_CALL_GETDENTS, (int32_t)dir, BUF, 4096)), 0);

	/* Restored where a mount now stands in its place: refused, in one line. */
	char spec[128], err[256];
	snprintf(spec, sizeof(spec), "%s/file:/dev/full", T.dir);
	cr_assert_eq(policy_add_mount(&T.pol, spec, 0, err, sizeof(err)), 0, "%s", err);
	sbx_fd_close_all(T.vm);
	struct sbx_sio bad = {.load = 1, .buf = out.buf, .len = out.len};
	cr_assert_lt(sbx_state_monitor(T.vm, &bad), 0);
	cr_assert(strstr(bad.msg, "/dev/full") && !strchr(bad.msg, '\n'), "%s", bad.msg);
	free(out.buf);
}
