// SPDX-License-Identifier: GPL-2.0
/* The VM exits of one sandbox, counted and timed in the kernel (docs/tracing.md).
 *
 * BTF-enabled raw tracepoints only (tp_btf), so tracefs need not be mounted. Every program
 * returns at once unless the current task belongs to the traced process (targ_tgid), so two
 * sandboxes traced at once never see each other's exits. Results go into one struct in .bss,
 * which the monitor reads through libbpf's mmap of it without a bpf() call.
 *
 * Where exits come from:
 * - hardware KVM (VMX, SVM): kvm_exit .. kvm_entry, one event per exit, timed;
 * - PVM: no kvm_exit/kvm_entry (and no fentry or kprobes on the machines we run on), so the
 *   exits PVM handles itself are counted from the vCPU's own counters (vcpu->stat), read at
 *   the end of each KVM_RUN and on each host timer tick while the vCPU runs;
 * - both: kvm_userspace_exit .. the next KVM_RUN is the monitor's share of an exit, timed;
 *   kvm_emulate_insn and kvm_page_fault add events with the guest's RIP. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "exits.h"

char LICENSE[] SEC("license") = "GPL";

const volatile int targ_tgid = 0;
const volatile int targ_tid = 0;    /* 0: every thread of targ_tgid */
const volatile int count_stats = 0; /* PVM: derive exits from vcpu->stat */

struct sbx_tr_data data = {};

#define VCPU_REGS_RIP 16
#define MAX_FDS 128

/* Per vCPU thread. */
struct vstate {
	__u64 t_run;  /* KVM_RUN began (kvm_fpu load) */
	__u64 t_exit; /* kvm_exit of a hardware exit not yet re-entered */
	__u64 exit_rip;
	__u64 t_user; /* kvm_userspace_exit: the monitor handles the exit */
	__u32 exit_key, user_key;
	struct kvm_vcpu *vcpu;
	__u64 st[6]; /* vcpu->stat at the last look: see read_stats() */
	int in_run;
	int have_st;
	__u32 busy; /* flush_stats in progress: the timer tick can nest inside it */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct vstate);
} vstates SEC(".maps");

/* Kernels before and after the vcpu_vt split of VMX (6.16) keep the exit reason in different
 * places; SVM keeps it in the VMCB. None of these types need exist in the running kernel: the
 * branches that use them are removed when they do not (bpf_core_*_exists). */
union vmx_exit_reason___x {
	__u32 full;
};
struct vcpu_vt___x {
	union vmx_exit_reason___x exit_reason;
} __attribute__((preserve_access_index));
struct vcpu_vmx___new {
	struct vcpu_vt___x vt;
} __attribute__((preserve_access_index));
struct vcpu_vmx___old {
	union vmx_exit_reason___x exit_reason;
} __attribute__((preserve_access_index));
struct vmcb_control_area___x {
	__u32 exit_code;
} __attribute__((preserve_access_index));
struct vmcb___x {
	struct vmcb_control_area___x control;
} __attribute__((preserve_access_index));
struct vcpu_svm___x {
	struct vmcb___x *vmcb;
} __attribute__((preserve_access_index));

static __always_inline int traced(void)
{
	__u64 id = bpf_get_current_pid_tgid();
	if ((__u32)(id >> 32) != (__u32)targ_tgid)
		return 0;
	return !targ_tid || (__u32)id == (__u32)targ_tid;
}

static __always_inline struct vstate *vstate_get(int create)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct vstate *s = bpf_map_lookup_elem(&vstates, &tid);
	if (s || !create)
		return s;
	struct vstate zero = {};
	bpf_map_update_elem(&vstates, &tid, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&vstates, &tid);
}

static __always_inline struct sbx_tr_slot *slot_for(__u32 key)
{
	__u32 h = (key * 2654435761u) >> 16;
	for (int i = 0; i < 8; i++) {
		struct sbx_tr_slot *s = &data.slot[(h + i) & (SBX_TR_NSLOTS - 1)];
		__u32 k = *(volatile __u32 *)&s->key;
		if (k == key)
			return s;
		if (k == 0) {
			__u32 old = __sync_val_compare_and_swap(&s->key, 0, key);
			if (old == 0 || old == key)
				return s;
		}
	}
	__sync_fetch_and_add(&data.lost, 1);
	return 0;
}

static __always_inline void add_rip(struct sbx_tr_slot *s, __u64 rip, __u64 n)
{
	if (!rip) {
		__sync_fetch_and_add(&s->rip_other, n);
		return;
	}
	__u32 h = (__u32)((rip * 0x9e3779b97f4a7c15ull) >> 40);
	for (int i = 0; i < 4; i++) {
		__u32 j = (h + i) & (SBX_TR_NRIPS - 1);
		__u64 r = *(volatile __u64 *)&s->rip[j];
		if (r == 0) {
			__u64 old = __sync_val_compare_and_swap(&s->rip[j], 0, rip);
			r = old ? old : rip;
		}
		if (r == rip) {
			__sync_fetch_and_add(&s->rip_count[j], n);
			return;
		}
	}
	__sync_fetch_and_add(&s->rip_other, n);
}

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0;
	/* A binary search, unrolled: the verifier sees five steps. */
#pragma unroll
	for (__u32 shift = 32; shift > 1; shift >>= 1) {
		if (v >> shift) {
			v >>= shift;
			r += shift;
		}
	}
	if (v >> 1)
		r += 1;
	return r;
}

/* One exit of reason `key` began: counted now, so that an exit still open when the run ends
 * counts too. */
static __noinline void count(__u32 key, __u64 rip, __u64 n)
{
	struct sbx_tr_slot *s = slot_for(key);
	if (!s)
		return;
	__sync_fetch_and_add(&s->count, n);
	add_rip(s, rip, n);
}

static __noinline void timed(__u32 key, __u64 ns)
{
	struct sbx_tr_slot *s = slot_for(key);
	if (!s)
		return;
	__u32 b = log2_u64(ns);
	if (b >= SBX_TR_NBUCKETS)
		b = SBX_TR_NBUCKETS - 1;
	s->timed = 1;
	__sync_fetch_and_add(&s->total_ns, ns);
	__sync_fetch_and_add(&s->hist[b], 1);
}

static __always_inline __u64 guest_rip(struct kvm_vcpu *vcpu)
{
	if (!vcpu)
		return 0;
	/* VMX reads RIP from the VMCS lazily: the cached copy is valid only when marked so. */
	__u32 avail = BPF_CORE_READ(vcpu, arch.regs_avail);
	if (bpf_core_type_exists(struct vcpu_vmx___new) ||
	    bpf_core_type_exists(struct vcpu_vmx___old))
		if (!(avail & (1u << VCPU_REGS_RIP)))
			return 0;
	return BPF_CORE_READ(vcpu, arch.regs[VCPU_REGS_RIP]);
}

struct find_ctx {
	struct file **fds;
	struct pid *me;
	struct kvm_vcpu *found;
};

static long find_one(__u64 i, void *arg)
{
	struct find_ctx *c = arg;
	struct file *f = 0;
	char name[10] = {};
	if (bpf_probe_read_kernel(&f, sizeof(f), c->fds + i) || !f)
		return 0;
	const unsigned char *n = BPF_CORE_READ(f, f_path.dentry, d_name.name);
	if (bpf_probe_read_kernel(name, 9, n))
		return 0;
	if (name[0] != 'k' || name[1] != 'v' || name[2] != 'm' || name[3] != '-' ||
	    name[4] != 'v' || name[5] != 'c' || name[6] != 'p' || name[7] != 'u' || name[8] != ':')
		return 0;
	struct kvm_vcpu *v = BPF_CORE_READ(f, private_data);
	if (!v || BPF_CORE_READ(v, pid) != c->me)
		return 0;
	c->found = v;
	return 1;
}

/* The vCPU this thread runs: the kvm-vcpu file in its fd table whose vCPU last ran on it.
 * bpf_loop, so that the verifier looks at the loop body once (load time matters: it is paid
 * by every traced run). */
static __noinline struct kvm_vcpu *find_vcpu(void)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct find_ctx c = {
	    .fds = BPF_CORE_READ(t, files, fdt, fd),
	    .me = BPF_CORE_READ(t, thread_pid),
	};
	unsigned int max = BPF_CORE_READ(t, files, fdt, max_fds);
	bpf_loop(max < MAX_FDS ? max : MAX_FDS, find_one, &c, 0);
	return c.found;
}

static __always_inline void read_stats(struct kvm_vcpu *v, __u64 st[6])
{
	st[0] = BPF_CORE_READ(v, stat.exits);
	st[1] = BPF_CORE_READ(v, stat.pf_taken);
	st[2] = BPF_CORE_READ(v, stat.pf_emulate);
	st[3] = BPF_CORE_READ(v, stat.irq_exits);
	st[4] = BPF_CORE_READ(v, stat.halt_exits);
	st[5] = BPF_CORE_READ(v, stat.insn_emulation);
}

static __always_inline __u64 delta(__u64 now, __u64 before)
{
	return now > before ? now - before : 0;
}

/* PVM: what the vCPU's counters say happened since the last look. Every exit counts once in
 * stat.exits; the page fault, interrupt and halt counters name some of them; the rest are the
 * traps PVM serves in the kernel (a CPL3 syscall, an exception to the guest's IDT, cpuid). */
static __noinline void flush_stats(struct vstate *s)
{
	__u64 st[6];
	struct kvm_vcpu *v = s->vcpu;
	if (!count_stats || !v)
		return;
	/* The tick's program can run in the middle of this one on the same thread: both would
	 * count the same change. The inner one leaves it to the outer. */
	if (__sync_val_compare_and_swap(&s->busy, 0, 1))
		return;
	read_stats(v, st);
	if (s->have_st) {
		__u64 exits = delta(st[0], s->st[0]);
		__u64 pf = delta(st[1], s->st[1]);
		__u64 pfe = delta(st[2], s->st[2]);
		__u64 irq = delta(st[3], s->st[3]);
		__u64 halt = delta(st[4], s->st[4]);
		__u64 pff = pf > pfe ? pf - pfe : 0;
		__u64 named = pf + irq + halt;
		__u64 rest = exits > named ? exits - named : 0;
		if (pff)
			count(SBX_TR_KEY(SBX_TR_CLASS_PVM, SBX_TR_PVM_PF), 0, pff);
		if (pfe)
			count(SBX_TR_KEY(SBX_TR_CLASS_PVM, SBX_TR_PVM_PF_EMULATE), 0, pfe);
		if (irq)
			count(SBX_TR_KEY(SBX_TR_CLASS_PVM, SBX_TR_PVM_IRQ), 0, irq);
		if (halt)
			count(SBX_TR_KEY(SBX_TR_CLASS_PVM, SBX_TR_PVM_HALT), 0, halt);
		if (rest)
			count(SBX_TR_KEY(SBX_TR_CLASS_PVM, SBX_TR_PVM_TRAP), 0, rest);
	}
	for (int i = 0; i < 6; i++)
		s->st[i] = st[i];
	s->have_st = 1;
	s->busy = 0; /* a plain store: clang 14's BPF backend cannot do __sync_lock_release */
}

/* kvm_fpu(1) opens every KVM_RUN and kvm_fpu(0) closes it, on every backend. */
SEC("tp_btf/kvm_fpu")
int BPF_PROG(sbx_kvm_fpu, int load)
{
	if (!traced())
		return 0;
	struct vstate *s = vstate_get(1);
	if (!s)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	if (load) {
		if (s->t_user) {
			timed(s->user_key, now - s->t_user);
			s->t_user = 0;
		}
		struct pid *me = BPF_CORE_READ(bpf_get_current_task_btf(), thread_pid);
		struct kvm_vcpu *cached = s->vcpu;
		if (!cached || BPF_CORE_READ(cached, pid) != me) {
			s->vcpu = find_vcpu();
			s->have_st = 0;
			if (!s->vcpu)
				__sync_fetch_and_add(&data.vcpu_missing, 1);
		}
		s->t_run = now;
		s->in_run = 1;
		flush_stats(s);
	} else if (s->in_run) {
		flush_stats(s);
		__sync_fetch_and_add(&data.runs, 1);
		__sync_fetch_and_add(&data.run_ns, now - s->t_run);
		s->in_run = 0;
	}
	return 0;
}

SEC("tp_btf/kvm_userspace_exit")
int BPF_PROG(sbx_kvm_userspace_exit, __u32 reason, int err)
{
	if (!traced())
		return 0;
	struct vstate *s = vstate_get(1);
	if (!s)
		return 0;
	__u32 code = err < 0 ? 0x8000 | (__u32)(-err & 0x7fff) : reason;
	__u32 key = SBX_TR_KEY(SBX_TR_CLASS_USER, code);
	struct kvm_vcpu *v = s->vcpu;
	count(key, guest_rip(v), 1);
	s->user_key = key;
	s->t_user = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/kvm_exit")
int BPF_PROG(sbx_kvm_exit, struct kvm_vcpu *vcpu, __u32 isa)
{
	if (!traced())
		return 0;
	struct vstate *s = vstate_get(1);
	if (!s)
		return 0;
	__u32 key = 0;
	if (isa == 1) {
		__u32 r = 0;
		if (bpf_core_field_exists(struct vcpu_vmx___new, vt))
			r = BPF_CORE_READ((struct vcpu_vmx___new *)vcpu, vt.exit_reason.full);
		else if (bpf_core_field_exists(struct vcpu_vmx___old, exit_reason))
			r = BPF_CORE_READ((struct vcpu_vmx___old *)vcpu, exit_reason.full);
		key = SBX_TR_KEY(SBX_TR_CLASS_VMX, r & 0xffff);
	} else {
		__u32 r = 0;
		if (bpf_core_type_exists(struct vcpu_svm___x))
			r = BPF_CORE_READ((struct vcpu_svm___x *)vcpu, vmcb, control.exit_code);
		key = SBX_TR_KEY(SBX_TR_CLASS_SVM, r);
	}
	__sync_fetch_and_add(&data.kvm_exits, 1);
	s->exit_rip = guest_rip(vcpu);
	count(key, s->exit_rip, 1);
	s->exit_key = key;
	s->t_exit = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/kvm_entry")
int BPF_PROG(sbx_kvm_entry, struct kvm_vcpu *vcpu)
{
	if (!traced())
		return 0;
	struct vstate *s = vstate_get(0);
	if (!s || !s->t_exit)
		return 0;
	timed(s->exit_key, bpf_ktime_get_ns() - s->t_exit);
	s->t_exit = 0;
	return 0;
}

SEC("tp_btf/kvm_emulate_insn")
int BPF_PROG(sbx_kvm_emulate_insn, struct kvm_vcpu *vcpu, __u8 failed)
{
	if (!traced())
		return 0;
	count(SBX_TR_KEY(SBX_TR_CLASS_EVENT, SBX_TR_EV_EMULATE),
	      BPF_CORE_READ(vcpu, arch.regs[VCPU_REGS_RIP]), 1);
	return 0;
}

SEC("tp_btf/kvm_page_fault")
int BPF_PROG(sbx_kvm_page_fault, struct kvm_vcpu *vcpu, __u64 addr, __u64 err)
{
	if (!traced())
		return 0;
	count(SBX_TR_KEY(SBX_TR_CLASS_EVENT, SBX_TR_EV_PAGE_FAULT), guest_rip(vcpu), 1);
	return 0;
}

/* A long guest computation never leaves KVM_RUN: the host's timer tick on its CPU keeps the
 * counters fresh for sandbox-stat. */
SEC("tp_btf/local_timer_entry")
int BPF_PROG(sbx_local_timer_entry, int vector)
{
	if (!count_stats || !traced())
		return 0;
	struct vstate *s = vstate_get(1);
	if (!s)
		return 0;
	/* sandbox-stat may attach while the vCPU is inside KVM_RUN already. */
	if (!s->vcpu) {
		s->vcpu = find_vcpu();
		s->have_st = 0;
		if (!s->vcpu)
			return 0;
		s->t_run = bpf_ktime_get_ns();
		s->in_run = 1;
	}
	if (s->in_run)
		flush_stats(s);
	return 0;
}
