/* The policy end to end: limits end the run with their documented status, nothing leaves a
 * mount, the audit log records denials, --tmp directories vanish, stdin and environment
 * follow the flags. Each test also checks the host afterwards. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e_util.h"

#define LIMITS SBX_BUILD_DIR "/samples/limits-glibc"

TestSuite(policy_e2e, .timeout = 120);

static void expect_run(const char *cmd, int status, const char *text)
{
	int st;
	char *out = e2e_slurp(cmd, &st);
	cr_expect_eq(st, status, "%s: status %d, want %d\n%s", cmd, st, status, out);
	if (text)
		cr_expect(strstr(out, text), "%s: no '%s' in\n%s", cmd, text, out);
	free(out);
}

Test(policy_e2e, time_limits_end_the_run)
{
	e2e_need_kvm();
	expect_run(SANDBOX " --timeout 300ms " LIMITS " spin 2>&1", 121, "wall-clock limit");
	expect_run(SANDBOX " --timeout 300ms " LIMITS " sleep 2>&1", 121, "--timeout 300 ms");
	expect_run(SANDBOX " --cpu-time 300ms " LIMITS " spin 2>&1", 120, "CPU time limit");
}

Test(policy_e2e, output_and_write_limits_stop_exactly_at_the_limit)
{
	e2e_need_kvm();
	int st;
	char *out =
	    e2e_slurp(SANDBOX " --max-output 100000 " LIMITS " flood 2>/dev/null | wc -c", &st);
	cr_expect_eq(atoi(out), 100000, "stdout bytes: %s", out);
	free(out);
	expect_run(SANDBOX " --max-output 100000 " LIMITS " flood 2>&1 >/dev/null", 122,
		   "--max-output 100000");
	char dir[] = "/tmp/sbx-lim-XXXXXX", cmd[512], path[128];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd),
		 SANDBOX " --rw %s:/out --max-write 200K " LIMITS " write /out/f 2>&1", dir);
	expect_run(cmd, 123, "--max-write 204800");
	snprintf(path, sizeof(path), "%s/f", dir);
	struct stat sb;
	cr_assert_eq(stat(path, &sb), 0);
	cr_expect_eq(sb.st_size, 204800);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

Test(policy_e2e, open_files_and_memory)
{
	e2e_need_kvm();
	expect_run(SANDBOX " --max-files 16 " LIMITS " files 2>&1", 119, "--max-files 16");
	/* A memory bomb hits the guest's RAM, not the host's: malloc fails inside. */
	expect_run(SANDBOX " --mem 48M " LIMITS " memory 2>&1", 0, "malloc failed after more than");
}

Test(policy_e2e, stdin_and_environment)
{
	e2e_need_kvm();
	expect_run("echo x | " SANDBOX " --no-stdin " LIMITS " stdin", 0, "Bad file descriptor");
	expect_run("echo x | " SANDBOX " " LIMITS " stdin", 0, "read stdin: ok");
	expect_run("SBX_SECRET=1 SBX_PASSED=yes " SANDBOX " --env-pass SBX_PASSED " SBX_BUILD_DIR
		   "/samples/args-musl | grep -c ^env=SBX_",
		   0, "1");
}

Test(policy_e2e, nothing_leaves_a_mount)
{
	e2e_need_kvm();
	char dir[] = "/tmp/sbx-esc-XXXXXX", cmd[512];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(
	    cmd, sizeof(cmd),
	    "cd %s && ln -s /etc/passwd abs && ln -s / root && ln -s ../../../../etc/passwd up",
	    dir);
	cr_assert_eq(system(cmd), 0);
	struct stat before, after;
	cr_assert_eq(stat("/etc/passwd", &before), 0);
	snprintf(cmd, sizeof(cmd),
		 SANDBOX " --ro %s:/data " SBX_BUILD_DIR "/samples/escape-glibc /data", dir);
	int st;
	char *out = e2e_slurp(cmd, &st);
	cr_expect_eq(st, 0);
	cr_expect(!strstr(out, "OPENED"), "an escape succeeded:\n%s", out);
	cr_expect(strstr(out, "Read-only file system"), "%s", out);
	free(out);
	cr_assert_eq(stat("/etc/passwd", &after), 0);
	cr_expect_eq(before.st_mtime, after.st_mtime);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

/* Nested mounts (docs/policy.md): the rule of the mount an object belongs to holds however a
 * path reaches it. The layout of samples/nested.c: a read-only directory and a read-only file
 * inside a read-write directory, and a read-write directory inside a read-only one. Every case
 * runs in a fresh copy, and the read-only parts of the host tree are compared before and after
 * (names, types, modes, sizes, link counts, inodes, mtimes, contents). */
struct nest_case {
	const char *name;
	int allowed;	  /* the attempt must succeed; else it must be refused */
	const char *host; /* a shell check of the host tree afterwards (in DIR/h), or NULL */
};

static const struct nest_case nest_cases[] = {
    /* A symlink, "..", ".", a handle or the working directory into /rw/prot. */
    {"dir_symlink_write", 0, NULL},
    {"file_symlink_write", 0, NULL},
    {"abs_symlink_write", 0, NULL},
    {"dotdot_symlink_write", 0, NULL},
    {"dot_symlink_write", 0, NULL},
    {"symlink_chain_write", 0, NULL},
    {"dirfd_write", 0, NULL},
    {"dirfd_outer_write", 0, NULL},
    {"fchdir_write", 0, NULL},
    {"chdir_write", 0, NULL},
    /* Every call that writes, creates or removes, through a symlink into /rw/prot. */
    {"create", 0, "! test -e rw/prot/new.txt"},
    {"create_excl", 0, "! test -e rw/prot/new.txt"},
    {"create_dangling", 0, "! test -e rw/prot/new.txt"},
    {"tmpfile", 0, NULL},
    {"truncate", 0, NULL},
    {"chmod", 0, NULL},
    {"fchmod", 0, NULL},
    {"utimens", 0, NULL},
    {"futimens", 0, NULL},
    {"unlink", 0, NULL},
    {"rmdir", 0, NULL},
    {"mkdir", 0, NULL},
    {"symlink_into", 0, NULL},
    {"rename_out", 0, "! test -e rw/stolen.txt"},
    {"rename_in", 0, "test -f rw/evil.txt"},
    {"renameat2_in", 0, "test -f rw/evil.txt"},
    {"rename_mount_point", 0, "! test -e rw/moved"},
    {"rename_over_mount_point", 0, "test -d rw/empty"},
    {"link_out", 0, "! test -e rw/hard"},
    {"link_follow_out", 0, "! test -e rw/hard"},
    {"link_in", 0, NULL},
    /* The read-only file /rw/f.txt. */
    {"file_mount_symlink_write", 0, NULL},
    {"file_mount_dot_write", 0, NULL},
    {"file_mount_chmod", 0, NULL},
    {"file_mount_unlink", 0, NULL},
    {"file_mount_rename_over", 0, "test -f rw/evil.txt"},
    {"file_mount_link_out", 0, "! test -e rw/hard"},
    /* /ro/w, read-write inside read-only: its rule does not reach its parent. */
    {"rw_child_up_write", 0, NULL},
    {"ro_through_host_link_write", 0, NULL},
    {"rw_child_rename_out", 0, "test -f ro/w/x.txt"},
    /* What must keep working: reads through symlinks, work beside the nested mounts, and
     * writes to /ro/w however it is reached. */
    {"read_through_symlink", 1, NULL},
    {"read_file_mount_through_symlink", 1, NULL},
    {"read_dot", 1, NULL},
    {"rw_work", 1, "test -f rw/b && test -f rw/f2 && test -f rw/d/e && ! test -e rw/d/c"},
    {"rw_child_write", 1, "grep -q pwned ro/w/x.txt"},
    {"rw_child_through_host_link_write", 1, "grep -q pwned ro/w/x.txt"},
};

static char *nest_snapshot(const char *dir)
{
	char cmd[512];
	int st;
	snprintf(cmd, sizeof(cmd),
		 "cd %s/h && { find rw/prot rw/f.txt ro -path ro/w -prune -o -printf "
		 "'%%p %%y %%m %%s %%n %%i %%T@ %%l\\n' | LC_ALL=C sort; "
		 "cat rw/prot/p.txt rw/f.txt ro/o.txt; } 2>&1",
		 dir);
	return e2e_slurp(cmd, &st);
}

static void nest_run(const char *libc, const struct nest_case *c)
{
	char dir[] = "/tmp/sbx-nest-XXXXXX", cmd[2048];
	e2e_scratch(
	    dir, "mkdir -p h/rw/prot/sub h/ro/w && "
		 "printf 'protected\\n' | tee h/rw/prot/p.txt h/rw/f.txt h/ro/o.txt >/dev/null && "
		 "printf 'mine\\n' > h/ro/w/x.txt && ln -s w h/ro/lnk && ln -s w/.. h/ro/wup");
	char *before = nest_snapshot(dir);
	snprintf(cmd, sizeof(cmd),
		 SANDBOX " --rw %s/h/rw:/rw --ro %s/h/rw/prot:/rw/prot --ro %s/h/rw/f.txt:/rw/f.txt"
			 " --ro %s/h/ro:/ro --rw %s/h/ro/w:/ro/w " SBX_BUILD_DIR
			 "/samples/nested-%s %s 2>&1",
		 dir, dir, dir, dir, dir, libc, c->name);
	int st;
	char *out = e2e_slurp(cmd, &st);
	char want[128];
	snprintf(want, sizeof(want), "%s ok\n", c->name);
	cr_expect_eq(st, 0, "%s %s: status %d\n%s", libc, c->name, st, out);
	if (c->allowed)
		cr_expect_str_eq(out, want, "%s %s: refused", libc, c->name);
	else
		cr_expect(strncmp(out, want, strlen(c->name) + 1) == 0 && strcmp(out, want) != 0,
			  "%s %s: not refused:\n%s", libc, c->name, out);
	char *after = nest_snapshot(dir);
	cr_expect_str_eq(after, before, "%s %s: the read-only parts changed", libc, c->name);
	if (c->host) {
		snprintf(cmd, sizeof(cmd), "cd %s/h && %s", dir, c->host);
		cr_expect_eq(system(cmd), 0, "%s %s: on the host, not %s", libc, c->name, c->host);
	}
	free(out);
	free(before);
	free(after);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

Test(policy_e2e, nested_mounts_hold_however_reached)
{
	e2e_need_kvm();
	static const char *const libcs[] = {"glibc", "musl"};
	for (size_t l = 0; l < 2; l++)
		for (size_t i = 0; i < sizeof(nest_cases) / sizeof(nest_cases[0]); i++)
			nest_run(libcs[l], &nest_cases[i]);
}

/* Symlinks that leave their mount resolve in the sandbox's own namespace (docs/policy.md,
 * "Symlinks"), with the rule of the mount they land in, for every call that takes a path. The
 * layout of samples/symlinks.c; the host's b/ lies beside a/, so that a link resolved on the
 * host instead would read it. */
static const char symlink_want[] = "read_absolute ok\n"
				   "read_relative_dotdot ok\n"
				   "read_host_relative ENOENT\n"
				   "read_out_of_every_mount ENOENT\n"
				   "read_dir_link ok\n"
				   "read_dotdot_in_target ok\n"
				   "read_bouncing ok\n"
				   "loop ELOOP\n"
				   "chain_40 ok\n"
				   "chain_41 ELOOP\n"
				   "stat_lstat ok\n"
				   "readlink ok\n"
				   "access_read ok\n"
				   "access_write_ro EROFS\n"
				   "chdir ok\n"
				   "dirfd ok\n"
				   "root ok\n"
				   "statfs_ro EROFS\n"
				   "write_ro EROFS\n"
				   "truncate_ro EROFS\n"
				   "create_ro EROFS\n"
				   "create_rw ok\n"
				   "create_excl_nofollow EEXIST\n"
				   "nofollow ELOOP\n"
				   "chmod_ro EROFS\n"
				   "chmod_rw ok\n"
				   "utimens_ro EROFS\n"
				   "utimens_rw ok\n"
				   "mkdir_ro EROFS\n"
				   "mkdir_rw ok\n"
				   "unlink_ro EROFS\n"
				   "symlink_rw ok\n"
				   "rename_across EXDEV\n"
				   "rename_within ok\n"
				   "link_across EXDEV\n"
				   "unlink_rw ok\n";

Test(policy_e2e, symlinks_resolve_in_the_guests_namespace)
{
	e2e_need_kvm();
	static const char *const libcs[] = {"glibc", "musl"};
	for (size_t l = 0; l < 2; l++) {
		char dir[] = "/tmp/sbx-symlinks-XXXXXX", cmd[2048];
		e2e_scratch(dir, "mkdir -p h/a h/b h/c/sub && printf 'data\\n' > h/b/data.txt && "
				 "printf 'mine\\n' > h/c/sub/f && printf 'top\\n' > h/c/top.txt");
		snprintf(cmd, sizeof(cmd),
			 SANDBOX " --rw %s/h/a:/a --ro %s/h/b:/m/b --rw %s/h/c:/m/c " SBX_BUILD_DIR
				 "/samples/symlinks-%s 2>&1",
			 dir, dir, dir, libcs[l]);
		int st;
		char *out = e2e_slurp(cmd, &st);
		cr_expect_eq(st, 0, "%s: status %d\n%s", libcs[l], st, out);
		cr_expect_str_eq(out, symlink_want, "%s", libcs[l]);
		free(out);
		/* The read-only mount unchanged; what the rw ones got, where the links led. */
		snprintf(cmd, sizeof(cmd),
			 "cd %s/h && test \"$(ls b)\" = data.txt && grep -qx data b/data.txt && "
			 "grep -qx pwned c/made && test -d c/newdir && test -L c/made_link && "
			 "test -f c/sub/f && ! test -e c/sub/top.txt && ! test -e a/hard && "
			 "test \"$(stat -c %%a c/sub/f)\" = 600",
			 dir);
		cr_expect_eq(system(cmd), 0, "%s: the host tree is not as expected", libcs[l]);
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		cr_assert_eq(system(cmd), 0);
	}
}

Test(policy_e2e, audit_log_records_denials_as_json_lines)
{
	e2e_need_kvm();
	char log[64], cmd[512];
	snprintf(log, sizeof(log), "/tmp/sbx-audit-%d.jsonl", getpid());
	snprintf(cmd, sizeof(cmd),
		 SANDBOX " --audit %s --ro /tmp:/data " SBX_BUILD_DIR
			 "/samples/escape-glibc /data >/dev/null 2>&1",
		 log);
	int st;
	free(e2e_slurp(cmd, &st));
	snprintf(cmd, sizeof(cmd), "grep -c '\"decision\":\"deny\"' %s", log);
	char *out = e2e_slurp(cmd, &st);
	cr_expect_geq(atoi(out), 3, "denials logged: %s", out);
	free(out);
	snprintf(cmd, sizeof(cmd), "grep '\"guest_path\":\"/etc/passwd\"' %s", log);
	out = e2e_slurp(cmd, &st);
	cr_expect(strstr(out, "\"rule\":\"outside every mount\""), "%s", out);
	free(out);
	unlink(log);
}

Test(policy_e2e, tmp_directories_are_private_and_removed)
{
	e2e_need_kvm();
	/* A TMPDIR of its own: other sandboxes (parallel tests, other users of /tmp) come and go
	 * in /tmp meanwhile. The run's directories live in $TMPDIR/sandbox-UID/run-*. */
	int st;
	char *out =
	    e2e_slurp("T=$(mktemp -d) && TMPDIR=$T " SANDBOX " --tmp /scratch " SBX_BUILD_DIR
		      "/samples/writefile-musl /scratch >/dev/null 2>&1; echo \"status $?\"; "
		      "echo \"base $(ls -d $T/sandbox-* | wc -l)\"; "
		      "echo \"runs $(ls -d $T/sandbox-*/run-* 2>/dev/null | wc -l)\"; rm -rf $T",
		      &st);
	cr_expect(strstr(out, "status 0\n"), "%s", out);
	cr_expect(strstr(out, "base 1\n"), "the run's --tmp was not under TMPDIR: %s", out);
	cr_expect(strstr(out, "runs 0\n"), "a --tmp directory was left behind: %s", out);
	free(out);
}

Test(policy_e2e, print_policy_and_bad_flags)
{
	expect_run(SANDBOX " --ro /tmp:/data --timeout 2s --print-policy", 0, "\"timeout\"");
	expect_run(SANDBOX " --timeout 3x /bin/true 2>&1", 125,
		   "--timeout 3x: expected a duration");
	expect_run(SANDBOX " --max-output lots /bin/true 2>&1", 125, "expected a size");
}

/* A guest that skips the in-guest kernel and writes hostile requests into the ring itself. */
Test(policy_e2e, raw_hypercalls_from_a_hostile_guest)
{
	e2e_need_kvm();
	static const char *const polls[] = {"on", "off"};
	for (int p = 0; p < 2; p++) {
		char cmd[256];
		snprintf(cmd, sizeof(cmd),
			 SANDBOX " --io-poll %s " SBX_BUILD_DIR "/samples/rawcall garbage %s 2>&1",
			 polls[p], p ? "20000" : "1000000"); /* an exit per call without polling */
		expect_run(cmd, 0, "checks, 0 failed");
	}
	expect_run(SANDBOX " " SBX_BUILD_DIR "/samples/rawcall noabi 2>&1", 125,
		   "hypercall ABI 0.0");
	expect_run(SANDBOX " " SBX_BUILD_DIR "/samples/rawcall unknown 2>&1", 125,
		   "unknown hypercall 9999");
	expect_run(SANDBOX " " SBX_BUILD_DIR "/samples/rawcall overrun 2>&1", 125, "ABI violation");
	/* An exit status the kernel can never send: one line naming it, not a SIGKILL report. */
	static const char *const bad[] = {"0xffffffffffff", "0x1c8" /* SIGNALED|200 */};
	for (int i = 0; i < 2; i++) {
		char cmd[256], want[96];
		snprintf(cmd, sizeof(cmd),
			 SANDBOX " " SBX_BUILD_DIR "/samples/rawcall exit %s 2>&1", bad[i]);
		snprintf(want, sizeof(want), "guest ABI violation: exit status %s is not", bad[i]);
		expect_run(cmd, 125, want);
		int st;
		char *out = e2e_slurp(cmd, &st);
		cr_expect(!strstr(out, "SIGKILL") && !strstr(out, "registers:") &&
			      strchr(out, '\n') == out + strlen(out) - 1,
			  "%s: more than the one line\n%s", cmd, out);
		free(out);
	}
	expect_run(SANDBOX " " SBX_BUILD_DIR "/samples/rawcall exit 0x10b 2>&1", 139, "SIGSEGV");
	expect_run(SANDBOX " " SBX_BUILD_DIR "/samples/rawcall exit 7 2>&1", 7, NULL);
}

/* O_APPEND and O_NONBLOCK set by the guest on its stdout and stdin behave as natively inside
 * the sandbox, but never reach the file descriptions the user handed in: after the run the
 * shell's stdout has no O_APPEND, its stdin pipe no O_NONBLOCK. */
Test(policy_e2e, status_flags_on_stdio_stay_in_the_sandbox)
{
	e2e_need_kvm();
	for (int libc = 0; libc < 2; libc++) {
		char cmd[1024];
		const char *l = libc ? "musl" : "glibc";
		snprintf(cmd, sizeof(cmd),
			 /* stdin: a FIFO with a writer (fd 3) that never writes and stays open
			  * until the end, so an empty read can only be EAGAIN, however long the
			  * program takes to get to it; each run opens it anew. */
			 "D=$(mktemp -d); trap 'rm -rf $D' EXIT; mkfifo $D/in; exec 3<>$D/in; "
			 "(" SBX_BUILD_DIR "/samples/stdioflags-%s; "
			 "grep flags /proc/self/fdinfo/0) < $D/in > $D/native; "
			 "(" SANDBOX " " SBX_BUILD_DIR "/samples/stdioflags-%s; "
			 "grep flags /proc/self/fdinfo/0; grep flags /proc/self/fdinfo/1) < $D/in "
			 "> $D/sbx; "
			 "head -5 $D/native > $D/n5; head -5 $D/sbx > $D/s5; cmp $D/n5 $D/s5 && "
			 "echo SAME; tail -2 $D/sbx",
			 l, l);
		int st;
		char *out = e2e_slurp(cmd, &st);
		cr_assert(strstr(out, "SAME\n"), "%s", out);
		/* fdinfo flags are octal: O_NONBLOCK is 04000, O_APPEND 02000. */
		unsigned in = 0, outf = 0;
		const char *p = strstr(out, "SAME\n");
		cr_assert(sscanf(p, "SAME\nflags: %o\nflags: %o", &in, &outf) == 2, "%s", out);
		cr_assert(!(in & 04000), "the guest's O_NONBLOCK reached the host's stdin: %s",
			  out);
		cr_assert(!(outf & 02000), "the guest's O_APPEND reached the host's stdout: %s",
			  out);
		free(out);
	}
}

/* --tmp directories go however the monitor ends: on each signal a user sends (the monitor
 * then dies of that signal, as the program would), on SIGPIPE (the program's), while paused;
 * and after a SIGKILL, which leaves no chance to clean up, the next sandbox with --tmp removes
 * them. TMPDIR is the test's own, so other sandboxes running meanwhile do not interfere. */
Test(policy_e2e, tmp_directories_go_on_every_signal_and_after_a_kill)
{
	e2e_need_kvm();
	char cmd[4096];
	snprintf(cmd, sizeof(cmd),
		 E2E_SH_WAIT
		 "export TMPDIR=$(mktemp -d); trap 'rm -rf $TMPDIR' EXIT; "
		 "runs() { ls -d $TMPDIR/sandbox-*/run-* 2>/dev/null | wc -l; }; "
		 "start() { " SANDBOX " $1 --tmp /t " LIMITS " spin 2>/dev/null & P=$!; "
		 "  wait_for '[ $(runs) -ge 1 ]'; }; "
		 "for s in TERM INT HUP QUIT USR1 ALRM; do start; kill -$s $P; wait $P; "
		 "  echo \"$s $? $(runs)\"; done; "
		 "start \"--control $TMPDIR/c\"; wait_for '[ -S $TMPDIR/c ]'; " SBX_BUILD_DIR
		 "/sandbox-ctl $TMPDIR/c pause >/dev/null; "
		 "kill -TERM $P; wait $P; echo \"paused-TERM $? $(runs)\"; "
		 "(" SANDBOX " --tmp /t " SBX_BUILD_DIR "/samples/bigout-glibc 3; echo $? > "
		 "$TMPDIR/pipe) | head -c 1 >/dev/null; echo \"PIPE $(cat $TMPDIR/pipe) $(runs)\"; "
		 "start; kill -KILL $P; wait $P; echo \"KILL $? $(runs)\"; " SANDBOX
		 " --tmp /t " SBX_BUILD_DIR "/samples/hello-glibc >/dev/null; "
		 "echo \"next $? $(runs)\"");
	int st;
	char *out = e2e_slurp(cmd, &st);
	static const char *const want[] = {
	    "TERM 143 0\n", "INT 130 0\n",	   "HUP 129 0\n",  "QUIT 131 0\n", "USR1 138 0\n",
	    "ALRM 142 0\n", "paused-TERM 143 0\n", "PIPE 141 0\n", "KILL 137 1\n", "next 0 0\n"};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_expect(strstr(out, want[i]), "no '%.*s' in:\n%s", (int)strlen(want[i]) - 1,
			  want[i], out);
	free(out);
}
