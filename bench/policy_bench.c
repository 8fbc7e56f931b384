/* The cost of the policy checks on the I/O path, against the same host operation without them:
 * an open (copy the path out of guest RAM, normalise it, find the mount, openat2 beneath it,
 * install a handle) against a plain openat of the resolved host path, and a 4 KiB read through
 * the hypercall handler (handle lookup, bounds checks) against a plain pread. Printed as ns per
 * operation and as the overhead's share of one VM exit (--exit-us, measured by bench/run.py).
 * Also what the sandbox's private /dev/shm costs a run: made and removed (policy_make_tmp and
 * policy_free of a policy with nothing else), against the same policy without it (--no-dev).
 * Usage: policy_bench DIR [--exit-us US] */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "calls.h"
#include "sandbox_priv.h"

#define N 20000

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	return v[n / 2];
}

static int64_t hypercall(struct sbx_vm *vm, struct sbx_slot *s)
{
	return sbx_hypercall(vm, s);
}

/* Open + close of gpath through the hypercall handler, checked, against a plain open of the
 * host file: N times each, into a and b. */
static void open_close(struct sbx_vm *vm, const char *gpath, const char *file, double *a, double *b)
{
	sbx_copy_to_guest(vm, 0x400000, gpath, strlen(gpath));
	for (int i = 0; i < N; i++) {
		struct sbx_slot s = {.nr = SBX_CALL_OPEN};
		s.u.path.dirfd = SBX_AT_FDCWD;
		s.u.path.path = 0x400000;
		s.u.path.path_len = (uint32_t)strlen(gpath);
		double t0 = now_ns();
		int64_t fd = hypercall(vm, &s);
		if (fd < 0) {
			fprintf(stderr, "policy_bench: open %s: %s\n", gpath, strerror((int)-fd));
			exit(1);
		}
		struct sbx_slot c = {.nr = SBX_CALL_CLOSE, .u.a = {(uint64_t)fd}};
		hypercall(vm, &c);
		double t1 = now_ns();
		int h = open(file, O_RDONLY | O_CLOEXEC);
		close(h);
		double t2 = now_ns();
		a[i] = t1 - t0;
		b[i] = t2 - t1;
	}
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: policy_bench DIR [--exit-us US]\n");
		return 2;
	}
	double exit_us = argc > 3 && !strcmp(argv[2], "--exit-us") ? atof(argv[3]) : 26.0;
	char file[4096], spec[4200], err[256];
	snprintf(file, sizeof(file), "%s/bench-file", argv[1]);
	FILE *f = fopen(file, "w");
	for (int i = 0; i < 4096; i++)
		fputc('x', f);
	fclose(f);
	struct policy pol;
	policy_init(&pol);
	snprintf(spec, sizeof(spec), "%s:/data", argv[1]);
	if (policy_add_mount(&pol, spec, 0, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	struct sbx_config cfg = {.prog = "bench",
				 .policy = &pol,
				 .mem_size = 16 << 20,
				 .stdin_fd = -1,
				 .stdout_fd = -1,
				 .stderr_fd = -1};
	struct sbx_vm *vm;
	if (sbx_vm_create_bare(&cfg, &vm, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	const char *gpath = "/data/bench-file";
	static double a[N], b[N];
	/* Open + close, checked, against plain. */
	open_close(vm, gpath, file, a, b);
	double open_checked = median(a, N), open_plain = median(b, N);
	/* The same file through an absolute link: the guest-level walk after the fast way's
	 * EXDEV (policy/walk.c). */
	char link[4200];
	snprintf(link, sizeof(link), "%s/bench-link", argv[1]);
	unlink(link);
	if (symlink(gpath, link) != 0) {
		perror(link);
		return 1;
	}
	open_close(vm, "/data/bench-link", file, a, b);
	double walk_checked = median(a, N), walk_plain = median(b, N);
	unlink(link);
	/* A 4 KiB read at offset 0. */
	sbx_copy_to_guest(vm, 0x400000, gpath, strlen(gpath));
	struct sbx_slot o = {.nr = SBX_CALL_OPEN};
	o.u.path.dirfd = SBX_AT_FDCWD;
	o.u.path.path = 0x400000;
	o.u.path.path_len = (uint32_t)strlen(gpath);
	int64_t gfd = hypercall(vm, &o);
	int hfd = open(file, O_RDONLY | O_CLOEXEC);
	static char buf[4096];
	for (int i = 0; i < N; i++) {
		struct sbx_slot s = {.nr = SBX_CALL_PREAD};
		s.u.rw.fd = (int32_t)gfd;
		s.u.rw.buf = 0x500000;
		s.u.rw.len = 4096;
		double t0 = now_ns();
		hypercall(vm, &s);
		double t1 = now_ns();
		if (pread(hfd, buf, sizeof(buf), 0) < 0)
			return 1;
		double t2 = now_ns();
		a[i] = t1 - t0;
		b[i] = t2 - t1;
	}
	double read_checked = median(a, N), read_plain = median(b, N);
	close(hfd);
	unlink(file);
	printf("open+close checked %.0f ns, plain %.0f ns, policy overhead %.0f ns = %.2f%% of one "
	       "VM exit (%.1f us)\n",
	       open_checked, open_plain, open_checked - open_plain,
	       (open_checked - open_plain) / (exit_us * 10.0), exit_us);
	printf(
	    "open+close through an absolute link checked %.0f ns, plain %.0f ns, overhead %.0f ns "
	    "= %.2f%% of one VM exit\n",
	    walk_checked, walk_plain, walk_checked - walk_plain,
	    (walk_checked - walk_plain) / (exit_us * 10.0));
	printf(
	    "read 4 KiB checked %.0f ns, plain %.0f ns, overhead %.0f ns = %.2f%% of one VM exit\n",
	    read_checked, read_plain, read_checked - read_plain,
	    (read_checked - read_plain) / (exit_us * 10.0));
	sbx_vm_destroy(vm);
	policy_free(&pol);
	static double shm[201], none[201];
	for (int i = 0; i < 201; i++) {
		for (int with = 0; with < 2; with++) {
			struct policy p;
			policy_init(&p);
			p.no_dev = !with;
			double t0 = now_ns();
			if (policy_make_tmp(&p, err, sizeof(err)) < 0) {
				fprintf(stderr, "policy_bench: %s\n", err);
				return 1;
			}
			policy_free(&p);
			(with ? shm : none)[i] = now_ns() - t0;
		}
	}
	printf("private /dev/shm made and removed %.1f us, without it %.1f us\n",
	       median(shm, 201) / 1000, median(none, 201) / 1000);
	return 0;
}
