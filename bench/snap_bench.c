/* Snapshot, restore and reset timings, through libsandbox (bench/run.py prints them beside
 * CRIU's):
 *   snap_bench write-restore HEARTBEAT MIB RUNS DIR
 *       a heartbeat guest with MIB touched is paused; RUNS times: snapshot written (and
 *       fsynced, separately timed), restored eagerly and lazily; restore is timed to the first
 *       KVM_RUN and to the first hypercall after it.
 *   snap_bench reset DIRTY RUNS PAGES...
 *       a guest that dirties N pages per run (the "dirty" bench guest); RUNS resets for each N.
 * Output: one line per measure, "name p50 p90 p99 unit". */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "migrate.h"
#include "calls.h"
#include "confine.h"
#include "persist.h"
#include "sandbox.h"

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void report(const char *name, double *v, int n, double scale, const char *unit)
{
	qsort(v, (size_t)n, sizeof(double), cmp);
	printf("%s %.3f %.3f %.3f %s\n", name, v[n / 2] / scale, v[n * 9 / 10] / scale,
	       v[n * 99 / 100] / scale, unit);
	fflush(stdout);
}

struct runner {
	struct sbx_vm *vm;
	struct sbx_result res;
	double t_first_run;
};

static void *run_thread(void *arg)
{
	struct runner *r = arg;
	sbx_vm_run(r->vm, &r->res);
	return NULL;
}

static void mark_first_run(struct sbx_vm *vm)
{
	struct runner *r = vm->hooks.first_run_ctx;
	r->t_first_run = now_us();
}

static struct sbx_config config(const char *prog, char *const *argv, int out)
{
	return (struct sbx_config){.prog = prog,
				   .argv = argv,
				   .mem_size = 512ull << 20,
				   .stdin_fd = -1,
				   .stdout_fd = out,
				   .stderr_fd = 2,
				   .no_confine = 1,
				   .log = stderr};
}

/* Creates and loads a VM for prog and runs it on a thread of its own: 0, or 1 once said why. */
static int start(struct runner *r, pthread_t *t, const char *prog, char *const *argv, int out)
{
	char err[512];
	struct sbx_config cfg = config(prog, argv, out);
	if (sbx_vm_create(&cfg, &r->vm, err, sizeof(err)) < 0 ||
	    sbx_vm_load(r->vm, err, sizeof(err)) < 0) {
		fprintf(stderr, "snap_bench: %s\n", err);
		return 1;
	}
	pthread_create(t, NULL, run_thread, r);
	return 0;
}

static int write_restore(const char *hb, int mib, int runs, const char *dir)
{
	char touch[16], err[512], path[4096];
	snprintf(touch, sizeof(touch), "%d", mib);
	char *const argv[] = {"heartbeat", "1000000", "0", touch, NULL};
	struct runner r = {0};
	pthread_t t;
	if (start(&r, &t, hb, argv, open("/dev/null", O_WRONLY)))
		return 1;
	/* The buffer is touched before the first beat (a WRITE). */
	while (r.vm->call_count[SBX_CALL_WRITE] < 2)
		usleep(1000);
	if (sbx_vm_pause(r.vm, 5000) < 0) {
		fprintf(stderr, "snap_bench: cannot pause\n");
		return 1;
	}
	double *w = calloc((size_t)runs, sizeof(double)), *f = calloc((size_t)runs, sizeof(double));
	double *re = calloc((size_t)runs, sizeof(double)),
	       *rl = calloc((size_t)runs, sizeof(double));
	double *hc = calloc((size_t)runs, sizeof(double)),
	       *mb = calloc((size_t)runs, sizeof(double));
	snprintf(path, sizeof(path), "%s/bench.snap", dir);
	for (int i = 0; i < runs; i++) {
		char tmp[4096];
		int fd = mig_snap_tmp_open(path, tmp, sizeof(tmp), err, sizeof(err));
		double t0 = now_us();
		uint64_t pages;
		if (fd < 0 ||
		    sbx_snapshot_write_fd(r.vm, fd, 0, -1, &pages, err, sizeof(err)) < 0) {
			fprintf(stderr, "snap_bench: %s\n", err);
			return 1;
		}
		double t1 = now_us();
		if (mig_snap_commit(fd, tmp, path, err, sizeof(err)) < 0) {
			mig_snap_abort(fd, tmp);
			fprintf(stderr, "snap_bench: %s\n", err);
			return 1;
		}
		double t2 = now_us();
		w[i] = t1 - t0;
		f[i] = t2 - t1;
		mb[i] = (double)pages * 4096 / 1048576;
		for (int lazy = 0; lazy < 2; lazy++) {
			struct runner r2 = {0};
			int o2 = open("/dev/null", O_WRONLY);
			struct sbx_config c2 = config(NULL, argv, o2);
			double s0 = now_us();
			if (sbx_vm_restore(&c2, path, lazy ? SBX_RESTORE_LAZY : 0, &r2.vm, err,
					   sizeof(err)) < 0) {
				fprintf(stderr, "snap_bench: %s\n", err);
				return 1;
			}
			r2.vm->hooks.first_run = mark_first_run;
			r2.vm->hooks.first_run_ctx = &r2;
			r2.vm->life.first_call_pending = 1;
			pthread_t t2h;
			pthread_create(&t2h, NULL, run_thread, &r2);
			/* Not a spin: this thread must not take the vCPU's CPU. */
			while (__atomic_load_n(&r2.vm->life.first_call_pending, __ATOMIC_ACQUIRE))
				usleep(200);
			double s2 = (double)r2.vm->life.first_call_at.tv_sec * 1e6 +
				    (double)r2.vm->life.first_call_at.tv_nsec / 1e3;
			(lazy ? rl : re)[i] = r2.t_first_run - s0;
			if (lazy)
				hc[i] = s2 - s0;
			sbx_vm_kill(r2.vm, SBX_END_DETACHED, 0, 0, "bench");
			pthread_join(t2h, NULL);
			sbx_vm_destroy(r2.vm);
			close(o2);
		}
	}
	const struct {
		const char *name;
		double *v, scale;
		const char *unit;
	} measures[] = {
	    {"write", w, 1e3, "ms"},
	    {"fsync", f, 1e3, "ms"},
	    {"stored", mb, 1, "MiB"},
	    {"restore_first_insn", re, 1e3, "ms"},
	    {"restore_lazy_first_insn", rl, 1e3, "ms"},
	    {"restore_lazy_first_call", hc, 1e3, "ms"},
	};
	for (size_t k = 0; k < sizeof(measures) / sizeof(measures[0]); k++) {
		char name[64];
		snprintf(name, sizeof(name), "%s_%dM", measures[k].name, mib);
		report(name, measures[k].v, runs, measures[k].scale, measures[k].unit);
	}
	unlink(path);
	sbx_vm_kill(r.vm, SBX_END_DETACHED, 0, 0, "bench");
	sbx_vm_resume(r.vm);
	pthread_join(t, NULL);
	sbx_vm_destroy(r.vm);
	return 0;
}

/* The "dirty" guest: touches a buffer, beats once (a WRITE: the snapshot point), then writes
 * one byte in each of N pages and exits. */
static int reset_bench(const char *prog, int runs, int argc, char **argv)
{
	for (int k = 0; k < argc; k++) {
		char err[512];
		char *const gargv[] = {"dirty", argv[k], NULL};
		int out = open("/dev/null", O_WRONLY);
		struct runner r = {0};
		pthread_t t;
		if (start(&r, &t, prog, gargv, out))
			return 1;
		while (__atomic_load_n(&r.vm->call_count[SBX_CALL_WRITE], __ATOMIC_RELAXED) < 1)
			usleep(200);
		if (sbx_vm_pause(r.vm, 5000) < 0) {
			fprintf(stderr, "snap_bench: the dirty guest ended before the pause\n");
			return 1;
		}
		struct sbx_snap *snap;
		if (sbx_snapshot_take(r.vm, &snap, err, sizeof(err)) < 0) {
			fprintf(stderr, "snap_bench: %s\n", err);
			return 1;
		}
		sbx_vm_resume(r.vm);
		pthread_join(t, NULL);
		double *us = calloc((size_t)runs, sizeof(double));
		double *pages = calloc((size_t)runs, sizeof(double));
		for (int i = 0; i < runs; i++) {
			struct sbx_reset_stats st;
			if (sbx_reset(r.vm, snap, &st, err, sizeof(err)) < 0) {
				fprintf(stderr, "snap_bench: %s\n", err);
				return 1;
			}
			us[i] = st.us;
			pages[i] = (double)st.pages;
			if (i == 0 && sbx_reset_verify(r.vm, snap, err, sizeof(err)) < 0) {
				fprintf(stderr, "snap_bench: %s\n", err);
				return 1;
			}
			if (sbx_vm_run(r.vm, &r.res) < 0 || r.res.status != 0) {
				fprintf(stderr, "snap_bench: run: %s\n", r.res.reason);
				return 1;
			}
		}
		char name[64];
		snprintf(name, sizeof(name), "reset_%s_pages", argv[k]);
		report(name, us, runs, 1, "us");
		snprintf(name, sizeof(name), "reset_%s_pages_put_back", argv[k]);
		report(name, pages, runs, 1, "pages");
		sbx_snapshot_free(snap);
		sbx_vm_destroy(r.vm);
		close(out);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 6 && !strcmp(argv[1], "write-restore"))
		return write_restore(argv[2], atoi(argv[3]), atoi(argv[4]), argv[5]);
	if (argc >= 5 && !strcmp(argv[1], "reset"))
		return reset_bench(argv[2], atoi(argv[3]), argc - 4, argv + 4);
	fprintf(stderr, "usage: snap_bench write-restore HEARTBEAT MIB RUNS DIR | reset DIRTY RUNS "
			"N...\n");
	return 2;
}
