/* Kernel-side tracing of a sandbox's VM exits: loads the BPF program of bpf/exits.bpf.c,
 * filtered to one process, and turns what it counted into a table or JSON (docs/tracing.md).
 *
 * Loading and attaching happen before the monitor confines itself; afterwards the counters are
 * read straight from the program's .bss, which libbpf has mapped into this process, so the
 * seccomp allowlist needs no bpf(). */
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <sys/stat.h>
#include <gelf.h>
#include <fcntl.h>
#include <jansson.h>
#include <libelf.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "exits.h"
#include "exits.skel.h"
#include "report.h"
#include "sandbox.h"
#include "trace.h"
#include "sbx_abi.h"

struct sbx_trace {
	struct sbx_exits_bpf *skel;
	struct sbx_tr_data *prev; /* what the last report covered (sandbox-stat) */
	struct sbx_symbols *syms;
	int pvm;
};

/* libbpf's own messages would not be one line each: the caller says what failed. With
 * SBX_BPF_DEBUG set in the environment they go to stderr, verifier log included. */
static int quiet_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	return getenv("SBX_BPF_DEBUG") ? vfprintf(stderr, fmt, ap) : 0;
}

static int btf_has(const struct btf *btf, const char *name)
{
	return btf && btf__find_by_name_kind(btf, name, BTF_KIND_TYPEDEF) > 0;
}

/* What this kernel lacks for tracing, named, or 0. Parsing the kernel's BTF costs ~10 ms, so
 * it is done only to explain a failed load. */
static int check_kernel(char *err, size_t errlen)
{
	if (syscall(SYS_bpf, -1, NULL, 0) < 0 && errno == ENOSYS)
		return sbx_fail(err, errlen, -ENOSYS, "the kernel has no BPF (CONFIG_BPF_SYSCALL)");
	if (access("/sys/kernel/btf/vmlinux", R_OK) < 0) {
		snprintf(err, errlen,
			 "the kernel has no BTF (/sys/kernel/btf/vmlinux: %s; "
			 "CONFIG_DEBUG_INFO_BTF)",
			 strerror(errno));
		return -ENOENT;
	}
	struct btf *vmlinux = btf__load_vmlinux_btf();
	if (!vmlinux)
		return sbx_fail(err, errlen, -errno, "cannot read the kernel's BTF: %s",
				strerror(errno));
	/* kvm may be a module with BTF of its own. */
	struct btf *kvm = btf__load_module_btf("kvm", vmlinux);
	int have = btf_has(vmlinux, "btf_trace_kvm_fpu") || btf_has(kvm, "btf_trace_kvm_fpu");
	have = have && (btf_has(vmlinux, "btf_trace_kvm_userspace_exit") ||
			btf_has(kvm, "btf_trace_kvm_userspace_exit"));
	btf__free(kvm);
	btf__free(vmlinux);
	if (!have) {
		snprintf(err, errlen,
			 "the kernel has no kvm tracepoints in its BTF (kvm_fpu, "
			 "kvm_userspace_exit; is the kvm module loaded?)");
		return -ENOENT;
	}
	return 0;
}

int sbx_trace_open(const struct sbx_trace_opts *o, struct sbx_trace **out, char *err, size_t errlen)
{
	*out = NULL;
	/* BPF sees host PIDs; inside a PID namespace the tgid we were given is the namespace's,
	 * and the filter would match nothing, or another process. The initial namespace has a
	 * fixed inode number (PROC_PID_INIT_INO). */
	struct stat ns;
	if (stat("/proc/self/ns/pid", &ns) == 0 && ns.st_ino != 0xEFFFFFFCu) {
		snprintf(err, errlen,
			 "tracing from inside a PID namespace (a container) is not supported: BPF "
			 "sees host PIDs");
		return -ENOTSUP;
	}
	libbpf_set_print(quiet_libbpf);
	struct sbx_trace *t = calloc(1, sizeof(*t));
	if (!t)
		return sbx_fail(err, errlen, -ENOMEM, "out of memory");
	int r;
	t->pvm = o->pvm;
	t->skel = sbx_exits_bpf__open();
	if (!t->skel) {
		r = -errno;
		if (check_kernel(err, errlen) == 0)
			snprintf(err, errlen, "cannot open the BPF program: %s", strerror(-r));
		goto fail;
	}
	t->skel->rodata->targ_tgid = o->tgid;
	t->skel->rodata->targ_tid = o->tid;
	t->skel->rodata->count_stats = o->pvm;
	/* Every hook is on any x86 KVM kernel since 4.x except the timer tick's, which only
	 * keeps sandbox-stat's PVM counts fresh. */
	if (!o->pvm)
		bpf_program__set_autoload(t->skel->progs.sbx_local_timer_entry, false);
	r = sbx_exits_bpf__load(t->skel);
	if (r < 0) {
		r = -errno;
		if (check_kernel(err, errlen) < 0)
			goto fail;
		if (r == -EPERM || r == -EACCES)
			snprintf(err, errlen,
				 "loading the BPF program needs root (CAP_BPF and "
				 "CAP_PERFMON)");
		else
			snprintf(err, errlen,
				 "the kernel refused the BPF program: %s (run with "
				 "SBX_BPF_DEBUG=1 for the verifier's log)",
				 strerror(-r));
		goto fail;
	}
	r = sbx_exits_bpf__attach(t->skel);
	if (r < 0) {
		r = -errno;
		snprintf(err, errlen, "attaching to the kvm tracepoints: %s", strerror(-r));
		goto fail;
	}
	*out = t;
	return 0;
fail:
	sbx_trace_close(t);
	return r < 0 ? r : -EINVAL;
}

void sbx_trace_close(struct sbx_trace *t)
{
	if (!t)
		return;
	sbx_exits_bpf__destroy(t->skel);
	sbx_sym_close(t->syms);
	free(t->prev);
	free(t);
}

/* The static-PIE placement of loader/elf_check.c (pie_bias): SBX_USER_ADDR rounded up to the
 * largest p_align, less the lowest p_vaddr. */
static uint64_t elf_bias(const char *path)
{
	uint64_t bias = 0, lo = UINT64_MAX, align = 4096;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	elf_version(EV_CURRENT);
	Elf *e = elf_begin(fd, ELF_C_READ, NULL);
	GElf_Ehdr eh;
	size_t n = 0;
	if (e && gelf_getehdr(e, &eh) && eh.e_type == ET_DYN && elf_getphdrnum(e, &n) == 0) {
		for (size_t i = 0; i < n; i++) {
			GElf_Phdr ph;
			if (!gelf_getphdr(e, (int)i, &ph) || ph.p_type != PT_LOAD)
				continue;
			if (ph.p_vaddr < lo)
				lo = ph.p_vaddr;
			if (ph.p_align > align && !(ph.p_align & (ph.p_align - 1)))
				align = ph.p_align;
		}
		uint64_t base = (SBX_USER_ADDR + align - 1) & ~(align - 1);
		if (lo != UINT64_MAX && base > lo)
			bias = base - lo;
	}
	if (e)
		elf_end(e);
	close(fd);
	return bias;
}

void sbx_trace_set_program(struct sbx_trace *t, const char *prog, const char *debug_file)
{
	sbx_sym_close(t->syms);
	t->syms = prog ? sbx_sym_open(prog, elf_bias(prog), debug_file) : NULL;
}

/* ---- Names --------------------------------------------------------------------------------- */

static const char *const vmx_names[] = {
    [0] = "EXCEPTION_NMI",
    [1] = "EXTERNAL_INTERRUPT",
    [2] = "TRIPLE_FAULT",
    [3] = "INIT_SIGNAL",
    [4] = "SIPI_SIGNAL",
    [7] = "INTERRUPT_WINDOW",
    [8] = "NMI_WINDOW",
    [9] = "TASK_SWITCH",
    [10] = "CPUID",
    [12] = "HLT",
    [13] = "INVD",
    [14] = "INVLPG",
    [15] = "RDPMC",
    [16] = "RDTSC",
    [18] = "VMCALL",
    [28] = "CR_ACCESS",
    [29] = "DR_ACCESS",
    [30] = "IO_INSTRUCTION",
    [31] = "MSR_READ",
    [32] = "MSR_WRITE",
    [33] = "INVALID_STATE",
    [34] = "MSR_LOAD_FAIL",
    [36] = "MWAIT_INSTRUCTION",
    [37] = "MONITOR_TRAP_FLAG",
    [39] = "MONITOR_INSTRUCTION",
    [40] = "PAUSE_INSTRUCTION",
    [41] = "MCE_DURING_VMENTRY",
    [43] = "TPR_BELOW_THRESHOLD",
    [44] = "APIC_ACCESS",
    [45] = "EOI_INDUCED",
    [46] = "GDTR_IDTR",
    [47] = "LDTR_TR",
    [48] = "EPT_VIOLATION",
    [49] = "EPT_MISCONFIG",
    [50] = "INVEPT",
    [51] = "RDTSCP",
    [52] = "PREEMPTION_TIMER",
    [53] = "INVVPID",
    [54] = "WBINVD",
    [55] = "XSETBV",
    [56] = "APIC_WRITE",
    [57] = "RDRAND",
    [58] = "INVPCID",
    [59] = "VMFUNC",
    [60] = "ENCLS",
    [61] = "RDSEED",
    [62] = "PML_FULL",
    [63] = "XSAVES",
    [64] = "XRSTORS",
    [67] = "UMWAIT",
    [68] = "TPAUSE",
    [74] = "BUS_LOCK",
    [75] = "NOTIFY",
};

static const char *svm_name(unsigned code, char *buf, size_t len)
{
	static const char *const exc[32] = {
	    [0] = "DE",	 [1] = "DB",  [3] = "BP",  [4] = "OF",	[5] = "BR",  [6] = "UD",
	    [7] = "NM",	 [8] = "DF",  [10] = "TS", [11] = "NP", [12] = "SS", [13] = "GP",
	    [14] = "PF", [16] = "MF", [17] = "AC", [18] = "MC", [19] = "XF"};
	static const struct {
		unsigned code;
		const char *name;
	} named[] = {
	    {0x060, "interrupt"},
	    {0x061, "nmi"},
	    {0x064, "vintr"},
	    {0x06e, "rdtsc"},
	    {0x072, "cpuid"},
	    {0x074, "iret"},
	    {0x077, "pause"},
	    {0x078, "hlt"},
	    {0x079, "invlpg"},
	    {0x07b, "io"},
	    {0x07c, "msr"},
	    {0x07f, "shutdown"},
	    {0x081, "vmmcall"},
	    {0x087, "rdtscp"},
	    {0x089, "wbinvd"},
	    {0x08d, "xsetbv"},
	    {0x08f, "write_efer_trap"},
	    {0x090, "write_cr0_trap"},
	    {0x094, "write_cr4_trap"},
	    {0x0a5, "buslock"},
	    {0x400, "npf"},
	};
	if (code >= 0x40 && code < 0x60 && exc[code - 0x40]) {
		snprintf(buf, len, "%s_excp", exc[code - 0x40]);
		return buf;
	}
	if (code < 0x20 || (code >= 0x20 && code < 0x40)) {
		snprintf(buf, len, "%s_%s%u", code & 0x10 ? "write" : "read",
			 code >= 0x20 ? "dr" : "cr", code & 0xf);
		return buf;
	}
	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++)
		if (named[i].code == code)
			return named[i].name;
	snprintf(buf, len, "0x%x", code);
	return buf;
}

/* KVM's exit reasons by their own names. */
#define EXIT_NAME(n) [KVM_EXIT_##n] = #n
/* clang-format off */
static const char *const user_names[] = {
    EXIT_NAME(UNKNOWN), EXIT_NAME(EXCEPTION), EXIT_NAME(IO), EXIT_NAME(HYPERCALL),
    EXIT_NAME(DEBUG), EXIT_NAME(HLT), EXIT_NAME(MMIO), EXIT_NAME(IRQ_WINDOW_OPEN),
    EXIT_NAME(SHUTDOWN), EXIT_NAME(FAIL_ENTRY), EXIT_NAME(INTR), EXIT_NAME(SET_TPR),
    EXIT_NAME(TPR_ACCESS), EXIT_NAME(NMI), EXIT_NAME(INTERNAL_ERROR), EXIT_NAME(SYSTEM_EVENT),
    EXIT_NAME(X86_RDMSR), EXIT_NAME(X86_WRMSR), EXIT_NAME(DIRTY_RING_FULL),
    EXIT_NAME(X86_BUS_LOCK),
};
/* clang-format on */

static const char *const pvm_names[] = {
    [SBX_TR_PVM_PF] = "shadow page fault",
    [SBX_TR_PVM_PF_EMULATE] = "page fault + emulation (MMIO)",
    [SBX_TR_PVM_IRQ] = "host interrupt",
    [SBX_TR_PVM_HALT] = "halt",
    [SBX_TR_PVM_TRAP] = "syscall/exception trap",
};

static const char *const event_names[] = {
    [SBX_TR_EV_EMULATE] = "emulated instruction",
    [SBX_TR_EV_PAGE_FAULT] = "kvm_page_fault",
};

#define NAMED(tab, i) ((i) < sizeof(tab) / sizeof((tab)[0]) && (tab)[i])

/* "kernel", "user" or "event", and the reason's name. */
static const char *reason_name(unsigned key, const char **kind, char *buf, size_t len)
{
	unsigned cls = key >> 24, code = key & 0xffffff;
	*kind = "kernel";
	switch (cls) {
	case SBX_TR_CLASS_VMX:
		if (NAMED(vmx_names, code))
			return vmx_names[code];
		snprintf(buf, len, "VMX reason %u", code);
		return buf;
	case SBX_TR_CLASS_SVM:
		return svm_name(code, buf, len);
	case SBX_TR_CLASS_USER:
		*kind = "user";
		if (code & 0x8000)
			snprintf(buf, len, "KVM_RUN error %s",
				 strerrorname_np((int)(code & 0x7fff)) ?: "?");
		else if (NAMED(user_names, code))
			snprintf(buf, len, "KVM_EXIT_%s", user_names[code]);
		else
			snprintf(buf, len, "KVM_EXIT %u", code);
		return buf;
	case SBX_TR_CLASS_PVM:
		snprintf(buf, len, "pvm: %s", NAMED(pvm_names, code) ? pvm_names[code] : "?");
		return buf;
	case SBX_TR_CLASS_EVENT:
		*kind = "event";
		return NAMED(event_names, code) ? event_names[code] : "event";
	}
	snprintf(buf, len, "0x%x", key);
	return buf;
}

/* ---- Numbers ------------------------------------------------------------------------------- */

/* The q-quantile of a log2 histogram, interpolated inside its bucket. */
static double quantile(const unsigned long long *hist, double q)
{
	unsigned long long n = 0, seen = 0;
	for (int i = 0; i < SBX_TR_NBUCKETS; i++)
		n += hist[i];
	if (!n)
		return 0;
	double want = q * (double)n;
	for (int i = 0; i < SBX_TR_NBUCKETS; i++) {
		if (!hist[i])
			continue;
		if ((double)(seen + hist[i]) >= want) {
			double lo = i ? (double)(1ull << i) : 0, hi = (double)(2ull << i);
			return lo + (hi - lo) * (want - (double)seen) / (double)hist[i];
		}
		seen += hist[i];
	}
	return (double)(2ull << (SBX_TR_NBUCKETS - 1));
}

static void diff_slot(struct sbx_tr_slot *d, const struct sbx_tr_slot *a,
		      const struct sbx_tr_slot *b)
{
	*d = *a;
	if (!b || b->key != a->key)
		return;
	d->count -= b->count;
	d->total_ns -= b->total_ns;
	for (int i = 0; i < SBX_TR_NBUCKETS; i++)
		d->hist[i] -= b->hist[i];
	for (int i = 0; i < SBX_TR_NRIPS; i++)
		if (b->rip[i] == a->rip[i])
			d->rip_count[i] -= b->rip_count[i];
	d->rip_other -= b->rip_other;
}

struct row {
	const struct sbx_tr_slot *s;
	const char *kind;
	char name[64];
	double p50, p99;
};

static int row_order(const void *pa, const void *pb)
{
	const struct row *a = pa, *b = pb;
	int ka = strcmp(a->kind, "event") == 0, kb = strcmp(b->kind, "event") == 0;
	if (ka != kb)
		return ka - kb;
	if (a->s->total_ns != b->s->total_ns)
		return a->s->total_ns < b->s->total_ns ? 1 : -1;
	return a->s->count < b->s->count ? 1 : a->s->count > b->s->count ? -1 : 0;
}

#define TOP_RIPS 3

/* The top RIPs of a slot, most frequent first. */
static int top_rips(const struct sbx_tr_slot *s, int idx[TOP_RIPS])
{
	int n = 0;
	for (int k = 0; k < TOP_RIPS; k++) {
		int best = -1;
		for (int i = 0; i < SBX_TR_NRIPS; i++) {
			int used = 0;
			for (int j = 0; j < n; j++)
				used |= idx[j] == i;
			if (used || !s->rip[i] || !s->rip_count[i])
				continue;
			if (best < 0 || s->rip_count[i] > s->rip_count[best])
				best = i;
		}
		if (best < 0)
			break;
		idx[n++] = best;
	}
	return n;
}

static void where(struct sbx_trace *t, uint64_t rip, char *buf, size_t len)
{
	struct sbx_frame f;
	if (rip >= SBX_KERNEL_ADDR && rip < SBX_KERNEL_END) {
		snprintf(buf, len, "0x%llx (in-guest kernel)", (unsigned long long)rip);
		return;
	}
	sbx_sym_lookup(t->syms, rip, &f);
	if (f.func[0] && f.file[0])
		snprintf(buf, len, "0x%llx %s+0x%llx (%s:%d)", (unsigned long long)rip, f.func,
			 (unsigned long long)f.off, f.file, f.line);
	else if (f.func[0])
		snprintf(buf, len, "0x%llx %s+0x%llx", (unsigned long long)rip, f.func,
			 (unsigned long long)f.off);
	else
		snprintf(buf, len, "0x%llx", (unsigned long long)rip);
}

static void fmt_ns(double ns, char *buf, size_t len)
{
	if (ns >= 1e9)
		snprintf(buf, len, "%.2fs", ns / 1e9);
	else if (ns >= 1e6)
		snprintf(buf, len, "%.2fms", ns / 1e6);
	else if (ns >= 1e3)
		snprintf(buf, len, "%.1fus", ns / 1e3);
	else
		snprintf(buf, len, "%.0fns", ns);
}

/* What one report tells: the exits since the start (or the last report), by reason. */
struct tally {
	struct sbx_tr_data *cur;
	struct sbx_tr_slot *d; /* the difference, slot by slot */
	struct row rows[SBX_TR_NSLOTS];
	int n;
	unsigned long long runs, run_ns;
	double run_ms, wall_ns;
};

static void tally_rows(struct tally *y, const struct sbx_tr_data *prev)
{
	for (int i = 0; i < SBX_TR_NSLOTS; i++) {
		if (!y->cur->slot[i].key)
			continue;
		diff_slot(&y->d[i], &y->cur->slot[i], prev ? &prev->slot[i] : NULL);
		if (!y->d[i].count && !y->d[i].total_ns)
			continue;
		char tmp[64];
		struct row *r = &y->rows[y->n++];
		r->s = &y->d[i];
		snprintf(r->name, sizeof(r->name), "%s",
			 reason_name(y->d[i].key, &r->kind, tmp, sizeof(tmp)));
		r->p50 = quantile(y->d[i].hist, 0.5);
		r->p99 = quantile(y->d[i].hist, 0.99);
	}
	qsort(y->rows, (size_t)y->n, sizeof(y->rows[0]), row_order);
	y->runs = y->cur->runs - (prev ? prev->runs : 0);
	y->run_ns = y->cur->run_ns - (prev ? prev->run_ns : 0);
}

static void table_row(struct sbx_trace *t, FILE *table, const struct row *row, double wall_ns)
{
	const struct sbx_tr_slot *s = row->s;
	char a[32] = "-", b[32] = "-", c[32] = "-", share[16] = "-", w[512];
	if (s->timed) {
		fmt_ns((double)s->total_ns, a, sizeof(a));
		fmt_ns(row->p50, b, sizeof(b));
		fmt_ns(row->p99, c, sizeof(c));
	}
	/* An exit's time counts where it ends: one that began before a sandbox-stat interval
	 * can make that interval's share pass 100%. */
	double pct = wall_ns > 0 ? 100.0 * (double)s->total_ns / wall_ns : 0;
	if (s->timed && wall_ns > 0)
		snprintf(share, sizeof(share), pct > 100 ? ">100%%" : "%.2f%%", pct);
	fprintf(table, "  %-6s %-34s %10llu %10s %9s %9s %7s\n", row->kind, row->name, s->count, a,
		b, c, share);
	int idx[TOP_RIPS], k = top_rips(s, idx);
	for (int j = 0; j < k; j++) {
		where(t, s->rip[idx[j]], w, sizeof(w));
		fprintf(table, "  %6s   %8llu at %s\n", "", s->rip_count[idx[j]], w);
	}
}

static void print_table(struct sbx_trace *t, FILE *table, const struct tally *y)
{
	fprintf(table, "VM exits (%s; %.3f ms run, %llu KVM_RUN calls, %.3f ms in KVM_RUN)\n",
		t->pvm ? "PVM: the exits PVM handles itself are counted from the vCPU's "
			 "counters, not timed"
		       : "hardware KVM",
		y->run_ms, y->runs, (double)y->run_ns / 1e6);
	fprintf(table, "  %-6s %-34s %10s %10s %9s %9s %7s\n", "side", "reason", "count", "total",
		"p50", "p99", "share");
	for (int i = 0; i < y->n; i++)
		table_row(t, table, &y->rows[i], y->wall_ns);
	if (y->cur->lost || y->cur->vcpu_missing)
		fprintf(table,
			"VM exits: %llu events had no free slot, %llu KVM_RUN calls had no vCPU "
			"found\n",
			y->cur->lost, y->cur->vcpu_missing);
	fflush(table);
}

static json_t *json_row(struct sbx_trace *t, const struct row *row, double wall_ns)
{
	const struct sbx_tr_slot *s = row->s;
	json_t *o = json_object(), *rips = json_array();
	json_object_set_new(o, "side", json_string(row->kind));
	json_object_set_new(o, "reason", json_string(row->name));
	json_object_set_new(o, "key", json_integer(s->key));
	json_object_set_new(o, "count", json_integer((json_int_t)s->count));
	json_object_set_new(o, "timed", json_boolean(s->timed));
	if (s->timed) {
		json_object_set_new(o, "total_ns", json_integer((json_int_t)s->total_ns));
		json_object_set_new(o, "p50_ns", json_real(row->p50));
		json_object_set_new(o, "p99_ns", json_real(row->p99));
		if (wall_ns > 0)
			json_object_set_new(o, "share", json_real((double)s->total_ns / wall_ns));
	}
	int idx[TOP_RIPS], k = top_rips(s, idx);
	for (int j = 0; j < k; j++) {
		char w[512];
		json_t *x = json_object();
		where(t, s->rip[idx[j]], w, sizeof(w));
		json_object_set_new(x, "rip", json_integer((json_int_t)s->rip[idx[j]]));
		json_object_set_new(x, "count", json_integer((json_int_t)s->rip_count[idx[j]]));
		json_object_set_new(x, "where", json_string(w));
		json_array_append_new(rips, x);
	}
	json_object_set_new(o, "top_rips", rips);
	return o;
}

static int print_json(struct sbx_trace *t, FILE *json, const struct tally *y)
{
	json_t *root = json_object(), *arr = json_array();
	json_object_set_new(root, "backend", json_string(t->pvm ? "pvm" : "hardware"));
	json_object_set_new(root, "run_ms", json_real(y->run_ms));
	json_object_set_new(root, "kvm_run_calls", json_integer((json_int_t)y->runs));
	json_object_set_new(root, "kvm_run_ms", json_real((double)y->run_ns / 1e6));
	json_object_set_new(root, "lost", json_integer((json_int_t)y->cur->lost));
	for (int i = 0; i < y->n; i++)
		json_array_append_new(arr, json_row(t, &y->rows[i], y->wall_ns));
	json_object_set_new(root, "exits", arr);
	int r = 0;
	if (json_dumpf(root, json, JSON_INDENT(2)) < 0 || fputc('\n', json) == EOF ||
	    fflush(json) == EOF)
		r = -EIO;
	json_decref(root);
	return r;
}

int sbx_trace_report(struct sbx_trace *t, FILE *table, FILE *json, double run_ms, int since_last)
{
	struct tally *y = calloc(1, sizeof(*y));
	if (y) {
		y->cur = malloc(sizeof(*y->cur));
		y->d = calloc(SBX_TR_NSLOTS, sizeof(*y->d));
	}
	if (!y || !y->cur || !y->d) {
		if (y) {
			free(y->cur);
			free(y->d);
		}
		free(y);
		return -ENOMEM;
	}
	/* The BPF side keeps adding while we read: a copy first, so the numbers agree. */
	memcpy(y->cur, &t->skel->bss->data, sizeof(*y->cur));
	y->run_ms = run_ms;
	y->wall_ns = run_ms * 1e6;
	tally_rows(y, since_last ? t->prev : NULL);
	if (table)
		print_table(t, table, y);
	int r = json ? print_json(t, json, y) : 0;
	free(t->prev);
	t->prev = y->cur;
	free(y->d);
	free(y);
	return r;
}
