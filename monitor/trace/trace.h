/* BPF tracing of a sandbox's VM exits (trace_exits.c; trace_stub.c where the build has no BPF),
 * for --trace-exits and sandbox-stat (docs/tracing.md). Independent of the VM: it watches
 * threads of a process by id. */
#ifndef SBX_TRACE_H
#define SBX_TRACE_H

#include <stdio.h>

/* Kernel-side tracing of a sandbox's VM exits with BPF (trace_exits.c, docs/tracing.md).
 * Open before the sandbox confines itself; reports read mapped memory only. */
struct sbx_trace;
struct sbx_trace_opts {
	int tgid; /* the process whose vCPU threads are traced */
	int tid;  /* one thread of it only, or 0 */
	int pvm;  /* sbx_kvm_is_pvm(): count PVM's in-kernel exits from the vCPU's counters */
};
/* Returns 0, or -errno with err naming what is missing (root, BPF, BTF, kvm tracepoints). */
int sbx_trace_open(const struct sbx_trace_opts *o, struct sbx_trace **out, char *err,
		   size_t errlen);
/* The guest program whose symbols name the top RIPs (NULL: addresses only). */
void sbx_trace_set_program(struct sbx_trace *t, const char *prog, const char *debug_file);
/* Prints the exits as a table to `table` and/or as JSON to `json` (either may be NULL);
 * run_ms is the wall time they are a share of; since_last: only what came after the previous
 * report. Returns 0 or -errno. */
int sbx_trace_report(struct sbx_trace *t, FILE *table, FILE *json, double run_ms, int since_last);
void sbx_trace_close(struct sbx_trace *t);

#endif
