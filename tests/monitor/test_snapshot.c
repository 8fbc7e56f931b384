/* Snapshots, restore, reset and live migration, on real VMs. The library tests drive
 * libsandbox directly (and look at the vCPU through vm.h); the command-line tests run
 * sandbox-run and sandbox-ctl as a user would. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e_util.h"
#include "calls.h"
#include "confine.h"
#include "persist.h"
#include "sandbox.h"

#define HB SBX_BUILD_DIR "/samples/heartbeat-glibc"
/* The shell tests' exit, however they end: the sandbox started in the background ($P) is
 * killed, the scratch directory ($D) removed. */
#define KILL_AND_CLEAN "trap 'kill -9 $P 2>/dev/null || :; rm -rf $D' EXIT; "

static char *fd_text(int fd)
{
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	char *b = calloc(1, (size_t)st.st_size + 1);
	cr_assert_eq(pread(fd, b, (size_t)st.st_size, 0), st.st_size);
	return b;
}

static struct sbx_config hb_config(char *const *argv, int out, struct policy *pol)
{
	return (struct sbx_config){.prog = HB,
				   .argv = argv,
				   .policy = pol,
				   .mem_size = 64ull << 20,
				   .stdin_fd = -1,
				   .stdout_fd = out,
				   .stderr_fd = 2,
				   .no_confine = 1, /* the test process must stay unconfined */
				   .log = stderr,
				   .name = "heartbeat"};
}

/* The heartbeat's hold (its last beat waits for /gate/go): a directory mounted read-only at
 * /gate, so that the test, not the host's speed, decides when the guest may end. */
struct gate {
	char dir[64];
	struct policy pol;
};

static void gate_init(struct gate *g)
{
	char spec[128], err[256];
	snprintf(g->dir, sizeof(g->dir), "/tmp/sbx-gate.XXXXXX");
	cr_assert_not_null(mkdtemp(g->dir));
	policy_init(&g->pol);
	snprintf(spec, sizeof(spec), "%s:/gate", g->dir);
	cr_assert_eq(policy_add_mount(&g->pol, spec, 0, err, sizeof(err)), 0, "%s", err);
}

static void gate_open(struct gate *g)
{
	char path[96];
	snprintf(path, sizeof(path), "%s/go", g->dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0, "%s", path);
	close(fd);
}

static void gate_fini(struct gate *g)
{
	char path[96];
	snprintf(path, sizeof(path), "%s/go", g->dir);
	unlink(path);
	rmdir(g->dir);
	policy_free(&g->pol);
}

/* Waits until fd (an output file) holds at least n lines; 300 s only bound a hang. */
static void wait_lines(int fd, long n)
{
	for (int i = 0; i < 300000; i++) {
		char *t = fd_text(fd);
		long lines = 0;
		for (const char *p = t; (p = strchr(p, '\n')); p++)
			lines++;
		free(t);
		if (lines >= n)
			return;
		usleep(1000);
	}
	cr_assert_fail("fewer than %ld lines of output after 300 s", n);
}

/* The numbers 1..n, each once, in order, across the texts; returns the checksum line. */
static const char *check_sequence(const char *a, const char *b, long n)
{
	long want = 1;
	static char sum[64];
	sum[0] = 0;
	const char *parts[2] = {a, b};
	for (int k = 0; k < 2; k++) {
		for (const char *p = parts[k]; p && *p;) {
			if (!strncmp(p, "checksum ", 9)) {
				sscanf(p + 9, "%63s", sum);
			} else {
				long v = strtol(p, NULL, 10);
				cr_assert_eq(v, want, "expected %ld, got %ld", want, v);
				want++;
			}
			p = strchr(p, '\n');
			p = p ? p + 1 : NULL;
		}
	}
	cr_assert_eq(want, n + 1, "the outputs end at %ld, not %ld", want - 1, n);
	return sum;
}

/* A loaded sandbox and a snapshot of it at the program's start, to reset to. */
static struct sbx_vm *loaded_with_snapshot(const struct sbx_config *cfg, struct sbx_snap **snap)
{
	struct sbx_vm *vm;
	char err[512];
	cr_assert_eq(sbx_vm_create(cfg, &vm, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(sbx_vm_load(vm, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(sbx_snapshot_take(vm, snap, err, sizeof(err)), 0, "%s", err);
	return vm;
}

Test(reset, puts_back_exactly_what_the_run_dirtied)
{
	e2e_need_kvm();
	char *const argv[] = {"heartbeat", "100", "40", "8", NULL};
	int out = memfd_create("out", 0);
	struct sbx_config cfg = hb_config(argv, out, NULL);
	struct sbx_snap *snap;
	struct sbx_vm *vm = loaded_with_snapshot(&cfg, &snap);
	char err[512];
	struct sbx_result res;
	char sum1[64] = "", *o1;
	for (int run = 0; run < 3; run++) {
		ftruncate(out, 0);
		lseek(out, 0, SEEK_SET);
		cr_assert_eq(sbx_vm_run(vm, &res), 0);
		cr_assert_eq(res.status, 0, "run %d: %s", run, res.reason);
		o1 = fd_text(out);
		const char *sum = check_sequence(o1, NULL, 100);
		if (run == 0)
			snprintf(sum1, sizeof(sum1), "%s", sum);
		cr_assert_str_eq(sum, sum1, "run %d ends with another memory checksum", run);
		free(o1);
		struct sbx_reset_stats st;
		cr_assert_eq(sbx_reset(vm, snap, &st, err, sizeof(err)), 0, "%s", err);
		/* 100 beats at 40 MB/s dirty ~1000 pages of the 8 MiB buffer, plus stack,
		 * ring and kernel pages; all of them, and only a small part of RAM. */
		cr_assert_gt(st.pages, 900, "only %llu pages put back",
			     (unsigned long long)st.pages);
		cr_assert_lt(st.pages, (64u << 20) / 4096 / 2);
		cr_assert_eq(sbx_reset_verify(vm, snap, err, sizeof(err)), 0, "%s", err);
	}
	sbx_snapshot_free(snap);
	sbx_vm_destroy(vm);
	close(out);
}

#define NOFILE SBX_BUILD_DIR "/samples/nofile-glibc"

static struct sbx_config nofile_config(char *const *argv, int in, int out)
{
	struct sbx_config c = hb_config(argv, out, NULL);
	c.prog = NOFILE;
	c.stdin_fd = in;
	c.name = "nofile";
	return c;
}

/* The guest's RLIMIT_NOFILE is monitor state: a reset puts back the one of the snapshot. */
Test(reset, puts_back_the_open_files_limit)
{
	e2e_need_kvm();
	char *const argv[] = {"nofile", "limits", NULL};
	int out = memfd_create("out", 0), in = open("/dev/null", O_RDONLY);
	struct sbx_config cfg = nofile_config(argv, in, out);
	struct sbx_snap *snap;
	struct sbx_vm *vm = loaded_with_snapshot(&cfg, &snap);
	char err[512], *first = NULL;
	for (int run = 0; run < 2; run++) {
		ftruncate(out, 0);
		lseek(out, 0, SEEK_SET);
		struct sbx_result res;
		cr_assert_eq(sbx_vm_run(vm, &res), 0);
		char *o = fd_text(out);
		cr_assert_eq(res.status, 0, "run %d: %s\n%s", run, res.reason, o);
		cr_assert(!strncmp(o, "initial soft 1024 hard 1024\n", 28), "run %d:\n%s", run, o);
		if (run == 0)
			first = o;
		else
			cr_assert_str_eq(o, first, "the second run saw another limit");
		if (run)
			free(o);
		cr_assert_eq(sbx_reset(vm, snap, NULL, err, sizeof(err)), 0, "%s", err);
	}
	free(first);
	sbx_snapshot_free(snap);
	sbx_vm_destroy(vm);
	close(out);
	close(in);
}

struct runner {
	struct sbx_vm *vm;
	struct sbx_result res;
};

static void *run_thread(void *arg)
{
	struct runner *r = arg;
	sbx_vm_run(r->vm, &r->res);
	return NULL;
}

/* Creates and loads a sandbox, and runs it on a thread of its own. */
static pthread_t runner_start(struct runner *r, const struct sbx_config *cfg)
{
	char err[512];
	cr_assert_eq(sbx_vm_create(cfg, &r->vm, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(sbx_vm_load(r->vm, err, sizeof(err)), 0, "%s", err);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, run_thread, r), 0);
	return t;
}

Test(snapshot, mid_run_round_trip_keeps_registers_memory_and_output)
{
	e2e_need_kvm();
	char *const argv[] = {"heartbeat", "400", "20", "8", "-", "/gate/go", NULL};
	int out1 = memfd_create("out1", 0), out2 = memfd_create("out2", 0);
	struct gate g;
	gate_init(&g);
	struct sbx_config cfg = hb_config(argv, out1, &g.pol);
	struct runner r = {0};
	char err[512], path[] = "/tmp/sbx-snap-test.XXXXXX";
	close(mkstemp(path));
	pthread_t t = runner_start(&r, &cfg);
	/* Mid-run for certain: beating, and held before its last beat until the gate opens. */
	wait_lines(out1, 10);
	cr_assert_eq(sbx_vm_pause(r.vm, 5000), 0);
	struct kvm_regs ra, rb;
	struct kvm_sregs sa, sb;
	cr_assert_eq(ioctl(r.vm->proc.vcpu.fd, KVM_GET_REGS, &ra), 0);
	cr_assert_eq(ioctl(r.vm->proc.vcpu.fd, KVM_GET_SREGS, &sa), 0);
	cr_assert_eq(sbx_vm_snapshot(r.vm, path, err, sizeof(err)), 0, "%s", err);

	struct sbx_config cfg2 = hb_config(argv, out2, &g.pol);
	cfg2.prog = NULL;
	struct sbx_vm *vm2;
	cr_assert_eq(sbx_vm_restore(&cfg2, path, 0, &vm2, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(ioctl(vm2->proc.vcpu.fd, KVM_GET_REGS, &rb), 0);
	cr_assert_eq(ioctl(vm2->proc.vcpu.fd, KVM_GET_SREGS, &sb), 0);
	cr_assert_eq(memcmp(&ra, &rb, sizeof(ra)), 0, "registers differ after restore");
	cr_assert_eq(memcmp(&sa.cs, &sb.cs, sizeof(sa.cs)), 0);
	cr_assert_eq(sa.cr3, sb.cr3);
	cr_assert_eq(sa.efer, sb.efer);
	/* Memory: the whole of RAM, except the boot page whose clock fields a restore moves. */
	for (uint64_t a = 0; a < r.vm->proc.mem.size; a += 4096)
		if (a != SBX_BOOTINFO_ADDR)
			cr_assert_eq(memcmp(r.vm->proc.mem.base + a, vm2->proc.mem.base + a, 4096),
				     0, "page 0x%llx differs after restore", (unsigned long long)a);
	/* The original stops here; the restored one finishes the job. */
	sbx_vm_kill(r.vm, SBX_END_DETACHED, 0, 0, "stopped after a snapshot");
	sbx_vm_resume(r.vm);
	pthread_join(t, NULL);
	sbx_vm_destroy(r.vm);
	gate_open(&g);
	struct sbx_result res;
	cr_assert_eq(sbx_vm_run(vm2, &res), 0);
	cr_assert_eq(res.status, 0, "%s", res.reason);
	sbx_vm_destroy(vm2);
	char *a = fd_text(out1), *b = fd_text(out2);
	cr_assert(strlen(b) > 0, "the restored sandbox printed nothing");
	check_sequence(a, b, 400);
	free(a);
	free(b);
	unlink(path);
	gate_fini(&g);
}

/* The limit the guest set before a snapshot is the one its restored self gets fds under; its
 * CPU time goes on without the time it waited: over the span it reports, its CPU time is that
 * span less what it waited, so the wait the test holds it in (once it polls) must be missing
 * from it (half of it at least, whatever the host's speed or load). */
Test(snapshot, restore_keeps_the_open_files_limit_and_cpu_time)
{
	e2e_need_kvm();
	char *const argv[] = {"nofile", "hold", NULL};
	int out1 = memfd_create("out1", 0), out2 = memfd_create("out2", 0), p1[2], p2[2];
	cr_assert_eq(pipe(p1), 0); /* never written: the original waits */
	cr_assert_eq(pipe(p2), 0);
	cr_assert_eq(write(p2[1], "go\n", 3), 3);
	struct sbx_config cfg = nofile_config(argv, p1[0], out1);
	struct runner r = {0};
	char err[512], path[] = "/tmp/sbx-snap-nofile.XXXXXX";
	close(mkstemp(path));
	pthread_t t = runner_start(&r, &cfg);
	char *o1 = NULL;
	for (int i = 0; i < 30000; i++) { /* 300 s only bound a hang */
		free(o1);
		o1 = fd_text(out1);
		if (strstr(o1, "limit set\n") &&
		    __atomic_load_n(&r.vm->call_count[SBX_CALL_POLL], __ATOMIC_RELAXED) > 0)
			break;
		usleep(10000);
	}
	cr_assert(strstr(o1, "limit set\n"), "%s", o1);
	struct timespec w0, w1;
	clock_gettime(CLOCK_MONOTONIC, &w0);
	usleep(300000); /* waiting, which CPU time must leave out */
	cr_assert_eq(sbx_vm_pause(r.vm, 5000), 0);
	clock_gettime(CLOCK_MONOTONIC, &w1);
	long waited = (w1.tv_sec - w0.tv_sec) * 1000 + (w1.tv_nsec - w0.tv_nsec) / 1000000;
	cr_assert_eq(sbx_vm_snapshot(r.vm, path, err, sizeof(err)), 0, "%s", err);
	sbx_vm_kill(r.vm, SBX_END_DETACHED, 0, 0, "stopped after a snapshot");
	sbx_vm_resume(r.vm);
	pthread_join(t, NULL);
	sbx_vm_destroy(r.vm);

	struct sbx_config cfg2 = nofile_config(argv, p2[0], out2);
	cfg2.prog = NULL;
	struct sbx_vm *vm2;
	cr_assert_eq(sbx_vm_restore(&cfg2, path, 0, &vm2, err, sizeof(err)), 0, "%s", err);
	struct sbx_result res;
	cr_assert_eq(sbx_vm_run(vm2, &res), 0);
	sbx_vm_destroy(vm2);
	char *o2 = fd_text(out2);
	cr_assert_eq(res.status, 0, "%s\n%s", res.reason, o2);
	cr_assert(strstr(o2, "dup: up to fd 41, then EMFILE\n"), "%s", o2);
	long cpu = -1, wall = -1;
	const char *c = strstr(o2, "cpu ");
	cr_assert(c && sscanf(c, "cpu %ld ms, wall %ld ms", &cpu, &wall) == 2, "%s", o2);
	cr_assert(wall >= waited && cpu >= 0 && cpu <= wall - waited / 2,
		  "cpu %ld ms of %ld ms, %ld ms of them waiting in poll", cpu, wall, waited);
	free(o1);
	free(o2);
	for (int i = 0; i < 2; i++) {
		close(p1[i]);
		close(p2[i]);
	}
	close(out1);
	close(out2);
	unlink(path);
}

static void snapshot_restore_keeps_file_offsets(const char *hb)
{
	e2e_need_kvm();
	int st;
	char cmd[4096];
	/* The heartbeat holds its last beat until /data/gate/go exists: the snapshot, taken once
	 * it has beaten 10 times, is certain to find it running. */
	snprintf(cmd, sizeof(cmd),
		 "set -e; " E2E_SH_WAIT "D=$(mktemp -d); P=; " KILL_AND_CLEAN "mkdir $D/gate; "
		 "seq -f 'line-%%g' 1 1500 > $D/in.txt; "
		 "%s --control $D/c --ro $D:/data %s"
		 " 1500 5 4 /data/in.txt /data/gate/go > $D/a 2>$D/ea & "
		 "P=$!; wait_for \"grep -q '^10 ' $D/a\"; " SBX_BUILD_DIR
		 "/sandbox-ctl $D/c snapshot $D/s.snap >$D/ctl; "
		 "wait $P; touch $D/gate/go; "
		 "%s --restore $D/s.snap --ro $D:/data > $D/b 2>$D/eb; "
		 "cat $D/a $D/b | grep -v checksum | awk '{ if ($1 != NR || $2 != \"line-\" NR) "
		 "{ print \"bad line \" NR \": \" $0; exit 1 } } END { print NR }'; "
		 "cat $D/ctl; cat $D/ea",
		 SANDBOX, hb, SANDBOX);
	char *out = e2e_slurp(cmd, &st);
	cr_assert_eq(st, 0, "%s", out);
	cr_assert(strstr(out, "1500\n"), "%s", out);
	cr_assert(strstr(out, "ok snapshot"), "%s", out);
	cr_assert(strstr(out, "stopped after a snapshot"), "%s", out);
	free(out);
}

Test(snapshot, cli_snapshot_restore_keeps_file_offsets)
{
	snapshot_restore_keeps_file_offsets(HB);
}

/* ld.so and libc.so live in guest memory: the restore needs no mount of them. */
Test(snapshot, a_dynamic_program_restores)
{
	snapshot_restore_keeps_file_offsets(SBX_BUILD_DIR "/samples/heartbeat-dyn-glibc");
}

Test(snapshot, restore_refuses_a_wider_policy_and_a_missing_file)
{
	e2e_need_kvm();
	int st;
	char cmd[4096];
	/* The gate is open before the restores: one that wrongly succeeds runs to its end. */
	snprintf(
	    cmd, sizeof(cmd),
	    E2E_SH_WAIT
	    "D=$(mktemp -d); P=; " KILL_AND_CLEAN "mkdir $D/x $D/gate; seq 1 3000 > $D/in.txt; "
	    "%s --control $D/c --ro $D:/data " HB " 3000 1 4 /data/in.txt /data/gate/go > $D/a "
	    "2>&1 & P=$!; wait_for \"grep -q '^10 ' $D/a\"; " SBX_BUILD_DIR
	    "/sandbox-ctl $D/c snapshot $D/s.snap >/dev/null; wait $P; touch $D/gate/go; "
	    "echo wider; %s --restore $D/s.snap --ro $D:/data --rw $D/x:/x 2>&1; echo \"st=$?\"; "
	    "echo bigmem; %s --restore $D/s.snap --ro $D:/data --mem 64M 2>&1; "
	    "echo missing; mv $D/in.txt $D/gone.txt; %s --restore $D/s.snap --ro $D:/data "
	    "2>&1; echo \"st=$?\"; "
	    "echo corrupt; printf 'XX' | dd of=$D/s.snap bs=1 seek=300 conv=notrunc "
	    "2>/dev/null; %s --restore $D/s.snap --ro $D:/data 2>&1; echo \"st=$?\"",
	    SANDBOX, SANDBOX, SANDBOX, SANDBOX, SANDBOX);
	char *out = e2e_slurp(cmd, &st);
	cr_assert(strstr(out, "wider than the snapshot's (--rw /x)"), "%s", out);
	cr_assert(strstr(out, "256 MiB of guest RAM, more than this policy's --mem 64 MiB"), "%s",
		  out);
	cr_assert(strstr(out, "cannot reopen /data/in.txt"), "%s", out);
	cr_assert(strstr(out, "st=125\ncorrupt"), "%s", out);
	const char *c = strstr(out, "corrupt\n");
	cr_assert(c && strstr(c, "sandbox-run: ") && strstr(c, "st=125"), "%s", out);
	free(out);
}

/* tests/monitor/SCRIPT BUILD_DIR MODE exits 0 and says PASS, or says "SKIP: why" (ctl.sh). */
static void script_case(const char *script, const char *mode)
{
	e2e_need_kvm();
	int st;
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), SBX_SOURCE_DIR "/tests/monitor/%s " SBX_BUILD_DIR " %s 2>&1",
		 script, mode);
	char *out = e2e_slurp(cmd, &st);
	if (strstr(out, "SKIP: "))
		cr_skip_test("%s", strstr(out, "SKIP: "));
	cr_assert_eq(st, 0, "%s", out);
	cr_assert(strstr(out, "PASS"), "%s", out);
	free(out);
}

static void migrate(const char *mode)
{
	script_case("migrate.sh", mode);
}

Test(migration, loopback_tcp)
{
	migrate("loopback");
}

Test(migration, dynamic_program)
{
	migrate("dynamic");
}

Test(migration, unix_socket)
{
	migrate("unix");
}

Test(migration, between_network_namespaces)
{
	if (geteuid() != 0)
		cr_skip_test("network namespaces need root");
	migrate("netns");
}

Test(migration, destination_killed_mid_stream)
{
	migrate("killdst");
}

Test(migration, wrong_key)
{
	migrate("wrongkey");
}

/* Stray connections (empty, random bytes, silent) before the source: each is logged, the
 * destination listens on, and the real migration then succeeds. */
Test(migration, stray_connections_leave_the_destination_listening)
{
	migrate("stray");
}

Test(migration, corrupted_stream)
{
	migrate("corrupt");
}

Test(migration, guest_ends_during_precopy)
{
	/* The script ends the guest while a proxy holds the pre-copy inside its first round. */
	migrate("guestexit");
}

/* tests/monitor/ctl.sh MODE: sandbox-ctl's failures. */
static void ctl_case(const char *mode)
{
	script_case("ctl.sh", mode);
}

/* A dead control socket: exit 2, before the destination's connection or the snapshot file
 * is touched; a destination or a file that fails: exit 1. */
Test(control, a_dead_socket_exits_2_and_touches_nothing)
{
	ctl_case("deadsock");
}

/* sandbox-ctl killed while the monitor writes its snapshot: no file is left, and the sandbox
 * that was to stop after the snapshot runs on. */
Test(snapshot, a_killed_sandbox_ctl_leaves_nothing_and_the_sandbox_runs_on)
{
	ctl_case("killctl");
}

/* A guest in a day-long sleep: a pause that waited for the sleep to end would time out (the
 * monitor gives the vCPU 5 s), so "ok paused" shows the sleep was cut short; "park 2" in the
 * stats after the resume shows the guest kernel went back to sleep for the rest (a sleep parks
 * the vCPU on its thread's word, ABI 1.7). The snapshot ends it (interrupting the second sleep
 * the same way). */
Test(control, pause_interrupts_a_long_sleep)
{
	e2e_need_kvm();
	int st;
	char cmd[2048];
	snprintf(cmd, sizeof(cmd),
		 E2E_SH_WAIT
		 "D=$(mktemp -d); P=; " KILL_AND_CLEAN "C=" SBX_BUILD_DIR
		 "/sandbox-ctl; sleeps() { $C $D/c stats 2>/dev/null | "
		 "sed -n 's/.*, park \\([0-9]*\\).*/\\1/p'; }; "
		 "%s --control $D/c /bin/busybox sleep 86400 & P=$!; "
		 "wait_for '[ \"$(sleeps)\" = 1 ]'; $C $D/c pause || exit 1; $C $D/c stats; "
		 "$C $D/c resume; wait_for '[ \"$(sleeps)\" = 2 ]'; echo asleep-again; "
		 "$C $D/c snapshot $D/s.snap; wait $P; echo \"exit=$?\"",
		 SANDBOX);
	char *out = e2e_slurp(cmd, &st);
	cr_assert(strstr(out, "ok paused") && strstr(out, "(paused)"), "%s", out);
	cr_assert(strstr(out, "ok resumed") && strstr(out, "asleep-again"), "%s", out);
	cr_assert(strstr(out, "ok snapshot") && strstr(out, "exit=0"), "%s", out);
	free(out);
}

Test(control, pause_resume_and_stats)
{
	e2e_need_kvm();
	int st;
	char cmd[4096];
	/* While paused the output must not grow (the 0.3 s only gives a bug the time to show);
	 * after the resume it must, once the gate lets the held heartbeat end; stats name their
	 * parts. */
	snprintf(cmd, sizeof(cmd),
		 E2E_SH_WAIT
		 "D=$(mktemp -d); P=; " KILL_AND_CLEAN "mkdir $D/gate; "
		 "%s --control $D/c --ro $D/gate:/gate " HB
		 " 1500 1 4 - /gate/go > $D/out 2>$D/err & P=$!; "
		 "wait_for \"grep -q '^10$' $D/out\"; "
		 "C=" SBX_BUILD_DIR "/sandbox-ctl; $C $D/c pause; a=$(wc -l < $D/out); sleep 0.3; "
		 "b=$(wc -l < $D/out); $C $D/c stats; $C $D/c resume; touch $D/gate/go; "
		 "wait_for '[ $(wc -l < $D/out) -gt $b ]'; "
		 "c=$(wc -l < $D/out); echo \"lines $a $b $c\"; "
		 "[ \"$a\" = \"$b\" ] && [ \"$c\" -gt \"$b\" ] && echo PAUSE-OK; "
		 "$C $D/c bogus 2>&1; echo \"bogus=$?\"; wait $P; echo \"exit=$?\"; tail -1 $D/out",
		 SANDBOX);
	char *out = e2e_slurp(cmd, &st);
	cr_assert(strstr(out, "ok paused"), "%s", out);
	cr_assert(strstr(out, "PAUSE-OK"), "%s", out);
	cr_assert(strstr(out, "run time: ") && strstr(out, "(paused)"), "%s", out);
	cr_assert(strstr(out, "exits: ") && strstr(out, "hypercalls: ") && strstr(out, "write "),
		  "%s", out);
	cr_assert(strstr(out, "pages dirtied: "), "%s", out);
	cr_assert(strstr(out, "ok resumed"), "%s", out);
	cr_assert(strstr(out, "unknown command 'bogus'") && strstr(out, "bogus=2"), "%s", out);
	cr_assert(strstr(out, "exit=0") && strstr(out, "checksum "), "%s", out);
	free(out);
}

/* A fixture restores as a native run would have gone on, or is refused in one line (status
 * 125) because this CPU lacks what its program was shown. Returns 1 if it ran, 0 if refused. */
static int restore_fixture(const char *name, char *why, size_t whylen)
{
	int st;
	char cmd[512];
	snprintf(cmd, sizeof(cmd),
		 SANDBOX " --restore " SBX_SOURCE_DIR "/tests/data/snapshot/%s 2>&1", name);
	char *out = e2e_slurp(cmd, &st);
	if (strstr(out, "another vendor") || strstr(out, "uses CPU features this host lacks")) {
		cr_assert_eq(st, 125, "%s: %s", name, out);
		cr_assert(strchr(out, '\n') == out + strlen(out) - 1, "%s: not one line: %s", name,
			  out);
		snprintf(why, whylen, "%s", out);
		free(out);
		return 0;
	}
	cr_assert_eq(st, 0, "%s: %s", name, out);
	char *native = e2e_slurp(SBX_BUILD_DIR "/samples/heartbeat-musl 3000 0 1 | tail -1", &st);
	char want[64] = "", got[64] = "";
	sscanf(native, "checksum %63s", want);
	const char *c = strstr(out, "checksum ");
	cr_assert_not_null(c, "%s: %s", name, out);
	sscanf(c, "checksum %63s", got);
	cr_assert_str_eq(got, want, "%s: restored memory checksum differs from a native run", name);
	/* The beats go on from where the snapshot was taken, in order, up to 3000. */
	long first = strtol(out, NULL, 10), prev = first - 1;
	for (const char *p = out; p && *p && strncmp(p, "checksum", 8);
	     p = strchr(p, '\n'), p = p ? p + 1 : p) {
		long v = strtol(p, NULL, 10);
		cr_assert_eq(v, prev + 1, "%s: beat %ld after %ld", name, v, prev);
		prev = v;
	}
	cr_assert(first > 1 && prev == 3000, "%s: beats %ld..%ld", name, first, prev);
	free(native);
	free(out);
	return 1;
}

/* Snapshots written by earlier versions (tests/data/snapshot/README.md) still restore: format
 * 1.0 with guest kernel ABI 1.1 (an AVX-512 AMD host) and 1.2 (an AVX2 AMD host). */
Test(snapshot, fixtures_of_earlier_versions_still_restore)
{
	e2e_need_kvm();
	static const char *const fixtures[] = {"v1.0-abi1.1-heartbeat.snap",
					       "v1.0-abi1.2-heartbeat.snap"};
	char why[2][512];
	int ran = 0;
	for (int i = 0; i < 2; i++)
		ran += restore_fixture(fixtures[i], why[i], sizeof(why[i]));
	if (!ran)
		cr_skip_test("no fixture can run on this CPU: %s %s", why[0], why[1]);
}

Test(migration, open_file_reopened_at_the_destination)
{
	migrate("files");
}

/* --leave-running: the source finishes; the compressed and the lazily mapped restores of the
 * same point finish the same way (the same beats from there on, the same memory checksum), and
 * --restore-lazy of the compressed one as --restore of it. */
Test(snapshot, leave_running_compressed_and_lazy_restores_agree)
{
	e2e_need_kvm();
	int st;
	char cmd[4096];
	snprintf(
	    cmd, sizeof(cmd),
	    "set -e; " E2E_SH_WAIT "D=$(mktemp -d); P=; " KILL_AND_CLEAN "mkdir $D/gate; "
	    "C=" SBX_BUILD_DIR "/sandbox-ctl; "
	    "%s --control $D/c --ro $D/gate:/gate " HB
	    " 1200 20 8 - /gate/go > $D/src 2>$D/err & P=$!; "
	    "wait_for \"grep -q '^10$' $D/src\"; "
	    "$C $D/c snapshot $D/z.snap --leave-running --compress >/dev/null; "
	    "$C $D/c snapshot $D/r.snap --leave-running >/dev/null; touch $D/gate/go; wait $P; "
	    "%s --restore $D/z.snap --ro $D/gate:/gate > $D/z; "
	    "%s --restore-lazy $D/r.snap --ro $D/gate:/gate > $D/r; "
	    "%s --restore-lazy $D/z.snap --ro $D/gate:/gate > $D/zl; cut -d' ' -f1,2 $D/z > $D/z2; "
	    "cut -d' ' -f1,2 $D/zl > $D/zl2; cmp $D/z2 $D/zl2 && echo zl-same; "
	    "echo \"src $(tail -1 $D/src | cut -d' ' -f2)\"; "
	    "echo \"z $(head -1 $D/z) $(tail -1 $D/z | cut -d' ' -f2) $(grep -c . $D/z)\"; "
	    "echo \"r $(head -1 $D/r) $(tail -1 $D/r | cut -d' ' -f2) $(grep -c . $D/r)\"; "
	    "ls -s --block-size=1 $D/z.snap $D/r.snap",
	    SANDBOX, SANDBOX, SANDBOX, SANDBOX);
	char *out = e2e_slurp(cmd, &st);
	cr_assert_eq(st, 0, "%s", out);
	char src[64] = "", zsum[64] = "", rsum[64] = "";
	long z0 = 0, zn = 0, r0 = 0, rn = 0;
	const char *p = strstr(out, "src ");
	cr_assert(p && sscanf(p, "src %63s", src) == 1, "%s", out);
	p = strstr(out, "\nz ");
	cr_assert(p && sscanf(p, "\nz %ld %63s %ld", &z0, zsum, &zn) == 3, "%s", out);
	p = strstr(out, "\nr ");
	cr_assert(p && sscanf(p, "\nr %ld %63s %ld", &r0, rsum, &rn) == 3, "%s", out);
	cr_assert_str_eq(zsum, src, "%s", out);
	cr_assert_str_eq(rsum, src, "%s", out);
	/* Each restore prints its beats from its snapshot's point to 1200, then the checksum. */
	cr_assert(z0 > 1 && zn == 1200 - z0 + 2, "%s", out);
	cr_assert(r0 >= z0 && rn == 1200 - r0 + 2, "%s", out);
	/* A compressed snapshot restores lazily too (read in: it has no image to map). */
	cr_assert(strstr(out, "zl-same\n"), "%s", out);
	free(out);
}

/* Which clocks go on after a restore (docs/snapshots.md, "Clocks"): CLOCK_MONOTONIC (and
 * BOOTTIME) continue from where the snapshot stopped them, not counting the time the file sat
 * on disk; CLOCK_REALTIME follows the host's, jumping by that time. The file sits for 4 s or
 * more: over the gap that spans it realtime must run ahead of the other two by about that much
 * (2 s at least: a leak of the disk time into them leaves nothing), and no clock goes back.
 * The guest holds its last beat until g/go exists, so the snapshot always finds it beating. */
Test(snapshot, monotonic_continues_and_realtime_follows_the_host_after_a_restore)
{
	e2e_need_kvm();
	int st;
	char cmd[2048];
	snprintf(cmd, sizeof(cmd),
		 E2E_SH_WAIT "D=$(mktemp -d); P=; " KILL_AND_CLEAN "mkdir $D/g; "
			     "%s --control $D/c --ro $D/g:/g " SBX_BUILD_DIR
			     "/samples/clockgap-musl 1000 /g/go > $D/a 2>&1 & P=$!; "
			     "wait_for '[ $(wc -l < $D/a) -ge 100 ]'; " SBX_BUILD_DIR
			     "/sandbox-ctl $D/c snapshot $D/s.snap >/dev/null; wait $P; sleep 4; "
			     "touch $D/g/go; %s --restore $D/s.snap --ro $D/g:/g 2>&1 | tail -1",
		 SANDBOX, SANDBOX);
	char *out = e2e_slurp(cmd, &st);
	long mono = -1, rt = -1, boot = -1, cpu = -1, ahead_mono = -1, ahead_boot = -1;
	cr_assert(sscanf(out,
			 "gaps monotonic %ld realtime %ld boottime %ld cpu %ld realtime-ahead "
			 "monotonic %ld boottime %ld",
			 &mono, &rt, &boot, &cpu, &ahead_mono, &ahead_boot) == 6,
		  "%s", out);
	cr_assert(mono >= 0 && boot >= 0, "a clock went back: %s", out);
	cr_assert(rt >= 4000, "realtime did not follow the host (largest gap %ld ms): %s", rt, out);
	cr_assert(ahead_mono >= 2000, "monotonic time counted the time on disk: %s", out);
	cr_assert(ahead_boot >= 2000, "boottime counted the time on disk: %s", out);
	free(out);
}

/* A shared file mapping is recorded by its file's guest path and identity: the restored
 * program writes through it into the same file; a file changed since is refused in one line. */
Test(snapshot, a_shared_file_mapping_is_mapped_again_unless_its_file_changed)
{
	e2e_need_kvm();
	int st;
	char cmd[4096];
	snprintf(cmd, sizeof(cmd),
		 "set -e; " E2E_SH_WAIT "D=$(mktemp -d); P=; " KILL_AND_CLEAN
		 "%s --control $D/c --rw $D " SBX_BUILD_DIR "/samples/mapshared-glibc hold $D "
		 "> $D/a 2>$D/ea & P=$!; wait_for \"grep -q mapped $D/a\"; " SBX_BUILD_DIR
		 "/sandbox-ctl $D/c snapshot $D/s.snap >$D/ctl 2>&1; wait $P || :; cp $D/s.snap "
		 "$D/t.snap; touch $D/go; %s --restore $D/s.snap --rw $D > $D/b 2>$D/eb; "
		 "cat $D/a $D/b $D/ctl; head -c 4 $D/h.dat; echo; "
		 "if %s --restore $D/t.snap --rw $D > $D/c2 2>&1; then echo restored twice; fi; "
		 "cat $D/c2",
		 SANDBOX, SANDBOX, SANDBOX);
	char *out = e2e_slurp(cmd, &st);
	cr_assert_eq(st, 0, "%s", out);
	cr_assert(strstr(out, "ok snapshot"), "%s", out);
	cr_assert(strstr(out, "munmap: ok\n") && strstr(out, "held\n"), "%s", out);
	/* The restored run wrote through the mapping: the file is not the one recorded. */
	cr_assert(!strstr(out, "restored twice"), "%s", out);
	cr_assert(strstr(out, "/h.dat: the file changed since the snapshot"), "%s", out);
	free(out);
}

/* A live migration carries a shared file mapping the same way: the destination maps the file
 * again and the program goes on writing through it. */
Test(snapshot, a_migration_carries_a_shared_file_mapping)
{
	e2e_need_kvm();
	int st;
	char cmd[4096];
	snprintf(cmd, sizeof(cmd),
		 "set -e; " E2E_SH_WAIT "D=$(mktemp -d); P=; Q=; "
		 "trap 'kill -9 $P $Q 2>/dev/null || :; rm -rf $D' EXIT; "
		 "head -c 32 /dev/urandom > $D/key; chmod 600 $D/key; "
		 "%s --incoming unix:$D/m --migrate-key $D/key --rw $D > $D/b 2>$D/eb & Q=$!; "
		 "%s --control $D/c --migrate-key $D/key --rw $D " SBX_BUILD_DIR
		 "/samples/mapshared-glibc hold $D > $D/a 2>$D/ea & P=$!; "
		 "wait_for \"grep -q mapped $D/a\"; wait_for 'test -S $D/m'; " SBX_BUILD_DIR
		 "/sandbox-ctl $D/c migrate unix:$D/m > $D/ctl 2>&1; touch $D/go; wait $P; "
		 "wait $Q; cat $D/a $D/b $D/ctl; head -c 4 $D/h.dat; echo",
		 SANDBOX, SANDBOX);
	char *out = e2e_slurp(cmd, &st);
	cr_assert_eq(st, 0, "%s", out);
	cr_assert(strstr(out, "ok migrated to unix:"), "%s", out);
	cr_assert(strstr(out, "mapped: ok\n") && strstr(out, "munmap: ok\n") &&
		      strstr(out, "held\n"),
		  "%s", out);
	free(out);
}
