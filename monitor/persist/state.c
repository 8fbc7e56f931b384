/* The pieces of a sandbox's state, each one function that both saves and loads it through a
 * struct sbx_sio, so the two directions cannot drift apart. A load treats its bytes as hostile:
 * every count, length, number and string is checked before it is used. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <x86intrin.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "calls.h"
#include "persist.h"
#include "sandbox_priv.h"

void sbx_sio_fail(struct sbx_sio *io, const char *fmt, ...)
{
	if (io->err)
		return;
	io->err = -EINVAL;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(io->msg, sizeof(io->msg), fmt, ap);
	va_end(ap);
}

/* A guest path fit for a one-line message: control bytes (a newline, an escape) shown as '?'. */
const char *sbx_shown(const char *s, char *buf, size_t n)
{
	size_t i = 0;
	for (; s[i] && i < n - 1; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	buf[i] = 0;
	return buf;
}

void sbx_sio_bytes(struct sbx_sio *io, void *p, size_t n)
{
	if (io->err)
		return;
	if (io->load) {
		if (n > io->len - io->pos) {
			sbx_sio_fail(io, "truncated: %zu bytes wanted at offset %zu of %zu", n,
				     io->pos, io->len);
			memset(p, 0, n);
			return;
		}
		memcpy(p, io->buf + io->pos, n);
		io->pos += n;
		return;
	}
	if (n > io->cap - io->len) {
		size_t cap = io->cap ? io->cap : 4096;
		while (cap - io->len < n)
			cap *= 2;
		uint8_t *b = realloc(io->buf, cap);
		if (!b) {
			io->err = -ENOMEM;
			snprintf(io->msg, sizeof(io->msg), "out of memory");
			return;
		}
		io->buf = b;
		io->cap = cap;
	}
	memcpy(io->buf + io->len, p, n);
	io->len += n;
}

/* Fixed-width little-endian integers (x86 only, so memory order is the format's). */
void sbx_sio_u64(struct sbx_sio *io, uint64_t *v)
{
	sbx_sio_bytes(io, v, sizeof(*v));
}

void sbx_sio_u32(struct sbx_sio *io, uint32_t *v)
{
	sbx_sio_bytes(io, v, sizeof(*v));
}

void sbx_sio_i32(struct sbx_sio *io, int32_t *v)
{
	sbx_sio_bytes(io, v, sizeof(*v));
}

/* A string: u32 length, then the bytes without the NUL. */
void sbx_sio_str(struct sbx_sio *io, char *s, size_t cap)
{
	uint32_t n = io->load ? 0 : (uint32_t)strlen(s);
	sbx_sio_u32(io, &n);
	if (io->load && (n >= cap || n > io->len - io->pos)) {
		sbx_sio_fail(io, "string of %u bytes does not fit (limit %zu)", n, cap - 1);
		s[0] = 0;
		return;
	}
	sbx_sio_bytes(io, s, n);
	if (io->load) {
		s[io->err ? 0 : n] = 0;
		if (memchr(s, 0, n))
			sbx_sio_fail(io, "string with a NUL byte inside");
	}
}

/* ---- vCPU ----------------------------------------------------------------------------------
 * The MSRs a long-mode guest of ours uses. The TSC goes last so that it is written after
 * everything that could make KVM reset it. */
static const uint32_t sbx_state_msrs[] = {
    0xc0000081, /* STAR */
    0xc0000082, /* LSTAR */
    0xc0000083, /* CSTAR */
    0xc0000084, /* SFMASK */
    0xc0000102, /* KERNEL_GS_BASE */
    0xc0000100, /* FS_BASE */
    0xc0000101, /* GS_BASE */
    0xc0000103, /* TSC_AUX */
    0x00000277, /* PAT */
    0x00000174, /* SYSENTER_CS */
    0x00000175, /* SYSENTER_ESP */
    0x00000176, /* SYSENTER_EIP */
    0x00000010, /* TSC */
};
#define SBX_NMSRS (sizeof(sbx_state_msrs) / sizeof(sbx_state_msrs[0]))
#define SBX_MSR_TSC 0x10
#define SBX_XSAVE_MAX (64u << 10)
#define SBX_CPUID_MAX 256u

static int vcpu_ioctl(int fd, struct sbx_sio *io, unsigned long req, void *arg, const char *name)
{
	if (io->err)
		return io->err;
	if (ioctl(fd, req, arg) < 0) {
		int e = errno;
		io->err = -e;
		snprintf(io->msg, sizeof(io->msg), "%s: %s", name, strerror(e));
		return -e;
	}
	return 0;
}

/* Everything of the vCPU, in the order Firecracker restores it: CPUID, MP state, registers,
 * special registers, XSAVE, XCRs, debug registers, MSRs, and the pending events last. A reset
 * skips CPUID (it cannot change) and the TSC (guest time must not go backwards). */
/* The vCPU's state as a snapshot holds it. */
struct vcpu_state {
	int fd, main; /* which vCPU; main: vCPU 0 */
	int ran;      /* it has run: KVM keeps its CPUID (some hosts refuse setting it again) */
	struct kvm_mp_state mp;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs dregs;
	struct kvm_vcpu_events ev;
	uint32_t xlen, ncpuid, nmsr;
	uint32_t slen; /* bytes of the XSAVE area the snapshot held (xs holds them all) */
	uint32_t msr_idx[SBX_NMSRS];
	uint64_t msr_val[SBX_NMSRS];
	struct kvm_xsave *xs;
	struct kvm_cpuid2 *cpuid;
};

static void vcpu_read(struct sbx_sio *io, struct vcpu_state *v)
{
	v->cpuid->nent = SBX_CPUID_MAX;
	vcpu_ioctl(v->fd, io, KVM_GET_CPUID2, v->cpuid, "KVM_GET_CPUID2");
	v->ncpuid = v->cpuid->nent;
	vcpu_ioctl(v->fd, io, KVM_GET_MP_STATE, &v->mp, "KVM_GET_MP_STATE");
	vcpu_ioctl(v->fd, io, KVM_GET_REGS, &v->regs, "KVM_GET_REGS");
	vcpu_ioctl(v->fd, io, KVM_GET_SREGS, &v->sregs, "KVM_GET_SREGS");
	/* KVM_GET_XSAVE2 gives the whole area (AMX included) where KVM_GET_FPU would lose MXCSR
	 * and the upper halves of the vector registers. */
	vcpu_ioctl(v->fd, io, v->xlen > sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE,
		   v->xs, "KVM_GET_XSAVE2");
	vcpu_ioctl(v->fd, io, KVM_GET_XCRS, &v->xcrs, "KVM_GET_XCRS");
	vcpu_ioctl(v->fd, io, KVM_GET_DEBUGREGS, &v->dregs, "KVM_GET_DEBUGREGS");
	for (unsigned i = 0; i < SBX_NMSRS && !io->err; i++) {
		uint64_t val;
		if (sbx_kvm_msrs_fd(v->fd, 0, &sbx_state_msrs[i], &val, 1) == 1) {
			v->msr_idx[v->nmsr] = sbx_state_msrs[i];
			v->msr_val[v->nmsr++] = val;
		}
	}
	vcpu_ioctl(v->fd, io, KVM_GET_VCPU_EVENTS, &v->ev, "KVM_GET_VCPU_EVENTS");
}

/* Saves or loads the section; a load checks every count before it uses it. */
static void vcpu_sio(struct sbx_sio *io, struct vcpu_state *v)
{
	sbx_sio_u32(io, &v->ncpuid);
	if (io->load && v->ncpuid > SBX_CPUID_MAX)
		sbx_sio_fail(io, "%u CPUID entries (limit %u)", v->ncpuid, SBX_CPUID_MAX);
	if (!io->err)
		sbx_sio_bytes(io, v->cpuid->entries, v->ncpuid * sizeof(v->cpuid->entries[0]));
	sbx_sio_bytes(io, &v->mp, sizeof(v->mp));
	/* A vCPU is saved stopped between instructions, never halted or waiting for a startup
	 * IPI (KVM refuses those states to a vCPU without a local APIC, as the monitor's are). */
	if (io->load && !io->err && v->mp.mp_state != KVM_MP_STATE_RUNNABLE)
		sbx_sio_fail(io, "vCPU state %u is not a running vCPU's", v->mp.mp_state);
	sbx_sio_bytes(io, &v->regs, sizeof(v->regs));
	sbx_sio_bytes(io, &v->sregs, sizeof(v->sregs));
	uint32_t slen = v->xlen;
	sbx_sio_u32(io, &slen);
	/* A larger area than this host's is fine when what lies past it is unused: the CPU check
	 * refuses a snapshot whose XCR0 enables a component this host lacks. */
	if (io->load && (slen < sizeof(struct kvm_xsave) || slen > SBX_XSAVE_MAX))
		sbx_sio_fail(io, "XSAVE area of %u bytes (limit %u)", slen, SBX_XSAVE_MAX);
	if (!io->err)
		sbx_sio_bytes(io, v->xs, slen);
	/* Past this host's xlen KVM reads nothing; the restore looks there (sbx_xstate_fit). */
	if (io->load)
		v->slen = slen;
	sbx_sio_bytes(io, &v->xcrs, sizeof(v->xcrs));
	sbx_sio_bytes(io, &v->dregs, sizeof(v->dregs));
	sbx_sio_u32(io, &v->nmsr);
	if (io->load && v->nmsr > SBX_NMSRS)
		sbx_sio_fail(io, "%u MSRs (limit %zu)", v->nmsr, SBX_NMSRS);
	if (!io->err) {
		sbx_sio_bytes(io, v->msr_idx, v->nmsr * sizeof(v->msr_idx[0]));
		sbx_sio_bytes(io, v->msr_val, v->nmsr * sizeof(v->msr_val[0]));
	}
	sbx_sio_bytes(io, &v->ev, sizeof(v->ev));
	if (io->load && !io->err && v->xcrs.nr_xcrs > KVM_MAX_XCRS)
		sbx_sio_fail(io, "%u XCRs (limit %d)", v->xcrs.nr_xcrs, KVM_MAX_XCRS);
	for (uint32_t i = 0; io->load && !io->err && i < v->nmsr; i++) {
		int known = 0;
		for (unsigned k = 0; k < SBX_NMSRS; k++)
			known |= v->msr_idx[i] == sbx_state_msrs[k];
		if (!known)
			sbx_sio_fail(io, "MSR 0x%x is not one a snapshot holds", v->msr_idx[i]);
	}
}

/* The MSRs back (but the TSC on a reset: the guest's clock goes on; and a thread's, which
 * follows vCPU 0's, sbx_state_threads). */
static void vcpu_write_msrs(struct sbx_sio *io, struct vcpu_state *v, int no_tsc)
{
	unsigned n = 0;
	for (uint32_t i = 0; i < v->nmsr; i++) {
		if (no_tsc && v->msr_idx[i] == SBX_MSR_TSC)
			continue;
		v->msr_idx[n] = v->msr_idx[i];
		v->msr_val[n++] = v->msr_val[i];
	}
	int done = io->err ? 0 : sbx_kvm_msrs_fd(v->fd, 1, v->msr_idx, v->msr_val, n);
	if (!io->err && done != (int)n)
		sbx_sio_fail(io, "KVM_SET_MSRS: MSR 0x%x refused",
			     done >= 0 && done < (int)n ? v->msr_idx[done] : 0);
}

/* The restored process's CPUID table, for the vCPUs it makes later (threads.c, fork.c). */
static void keep_cpuid(struct sbx_vm *vm, struct sbx_sio *io, const struct vcpu_state *v)
{
	struct kvm_cpuid2 *c = sbx_cpuid_copy(v->cpuid); /* its nent is ncpuid by now */
	if (!c) {
		sbx_sio_fail(io, "out of memory for the CPUID table");
		return;
	}
	free(vm->proc.kvm.cpuid);
	vm->proc.kvm.cpuid = c;
}

/* Puts the loaded state into the vCPU. Each vCPU ioctl costs 4-7 us on PVM, so a reset of a
 * CPL3 guest sets only what CPL3 code can change: registers, FPU/vector state, the FS/GS bases
 * (as MSRs), and the pending events. MP state, control and segment registers, XCR0 and debug
 * registers need CPL0 to change. */
static void vcpu_write(struct sbx_vm *vm, struct sbx_sio *io, struct vcpu_state *v, int reset)
{
	int abnormal = atomic_load(&vm->life.stopping) && vm->life.stop.end != SBX_END_EXIT &&
		       vm->life.stop.end != SBX_END_SIGNAL;
	/* A fault, a kill or a triple fault may have left the vCPU in a CPL0 stub; and a program
	 * that may be hostile can reach CPL0 itself (under PVM it can write its page tables and
	 * IDT): then everything CPL0 can change goes back too. */
	int full = !reset || vm->proc.vcpu.cpl == 0 || abnormal || vm->opts.full_reset;
	if (!v->main)
		reset = 0, full = 1; /* a thread's vCPU is only ever loaded whole */
	uint64_t xcr0 = 1;
	for (uint32_t i = 0; i < v->xcrs.nr_xcrs && i < KVM_MAX_XCRS; i++)
		if (v->xcrs.xcrs[i].xcr == 0)
			xcr0 = v->xcrs.xcrs[i].value;
	if (!reset && !io->err) {
		char m[sizeof(io->msg)];
		if (sbx_cpu_check_snapshot(vm, v->cpuid->entries, v->ncpuid, xcr0, m, sizeof(m)) <
			0 ||
		    sbx_xstate_fit(&vm->proc.kvm.xs, v->cpuid->entries, v->ncpuid, (uint8_t *)v->xs,
				   v->slen ? v->slen : v->xlen, m, sizeof(m)) < 0)
			sbx_sio_fail(io, "%s", m);
	}
	/* The program may have asked for more state (AMX) since the point. */
	if (reset && xcr0 != vm->proc.vcpu.xcr0)
		full = 1;
	if (!reset && !v->ran && !io->err) {
		v->cpuid->nent = v->ncpuid;
		vcpu_ioctl(v->fd, io, KVM_SET_CPUID2, v->cpuid, "KVM_SET_CPUID2");
		/* The table every later vCPU of this process is given (a thread's, a fork's
		 * child's): the one the program saw before the snapshot. */
		if (v->main && !io->err)
			keep_cpuid(vm, io, v);
	}
	if (full)
		vcpu_ioctl(v->fd, io, KVM_SET_MP_STATE, &v->mp, "KVM_SET_MP_STATE");
	vcpu_ioctl(v->fd, io, KVM_SET_REGS, &v->regs, "KVM_SET_REGS");
	/* Setting special registers resets KVM's MMU context, which under PVM throws away the
	 * shadow page tables: a reset skips it when nothing changed. */
	struct kvm_sregs cur;
	if (!reset || (full && (ioctl(v->fd, KVM_GET_SREGS, &cur) < 0 ||
				memcmp(&cur, &v->sregs, sizeof(cur)))))
		vcpu_ioctl(v->fd, io, KVM_SET_SREGS, &v->sregs, "KVM_SET_SREGS");
	if (!io->err && v->main)
		sbx_set_guest_root(vm, v->sregs.cr3);
	vcpu_ioctl(v->fd, io, KVM_SET_XSAVE, v->xs, "KVM_SET_XSAVE");
	if (full) {
		vcpu_ioctl(v->fd, io, KVM_SET_XCRS, &v->xcrs, "KVM_SET_XCRS");
		vcpu_ioctl(v->fd, io, KVM_SET_DEBUGREGS, &v->dregs, "KVM_SET_DEBUGREGS");
	}
	vcpu_write_msrs(io, v, reset || !v->main);
	v->ev.flags &= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
		       KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM |
		       KVM_VCPUEVENT_VALID_PAYLOAD | KVM_VCPUEVENT_VALID_TRIPLE_FAULT;
	/* A run that ended in an exit hypercall, or parked, left no exception or interrupt
	 * pending: a reset after it keeps the events as they are (one ioctl less). */
	if (!reset || vm->opts.full_reset ||
	    !(vm->life.stop.status_set_by_exit || vm->proc.vcpu.parked))
		vcpu_ioctl(v->fd, io, KVM_SET_VCPU_EVENTS, &v->ev, "KVM_SET_VCPU_EVENTS");
	if (!io->err && v->main)
		vm->proc.vcpu.xcr0 = xcr0;
	/* What patched cpuid sites answer: this vCPU's table as KVM now gives it (1.22). A reset
	 * keeps the RAM of the point, which held it already. */
	if (!io->err && v->main && !reset && sbx_abi_ok(vm->proc.image.khdr.abi_version) &&
	    (vm->proc.image.khdr.abi_version & 0xffff) >= 22)
		sbx_x86_publish_cpuid(vm, v->fd);
	/* KVM's steal-time record is the vCPU's, not the snapshot's: given again (1.23). */
	if (!io->err && v->main && !reset)
		sbx_x86_steal_time(vm, v->fd);
}

static int vcpu_state_io(struct sbx_vm *vm, struct sbx_sio *io, int fd, int main, int reset,
			 int ran)
{
	struct vcpu_state *v = calloc(1, sizeof(*v));
	uint32_t xlen = (uint32_t)sbx_kvm_xsave_bytes(vm);
	if (v) {
		v->fd = fd;
		v->main = main;
		v->ran = ran;
		v->xlen = xlen;
		v->xs = calloc(1, xlen > SBX_XSAVE_MAX ? xlen : SBX_XSAVE_MAX);
		v->cpuid =
		    calloc(1, sizeof(*v->cpuid) + SBX_CPUID_MAX * sizeof(struct kvm_cpuid_entry2));
	}
	if (!v || !v->xs || !v->cpuid) {
		sbx_sio_fail(io, "out of memory");
		io->err = -ENOMEM;
	} else {
		if (!io->load)
			vcpu_read(io, v);
		vcpu_sio(io, v);
		if (io->load && !io->err)
			vcpu_write(vm, io, v, reset);
	}
	if (v) {
		free(v->xs);
		free(v->cpuid);
	}
	free(v);
	return io->err;
}

int sbx_state_vcpu(struct sbx_vm *vm, struct sbx_sio *io, int reset)
{
	return vcpu_state_io(vm, io, vm->proc.vcpu.fd, 1, reset, 0);
}

/* ---- Threads: the vCPUs beyond vCPU 0 (ABI 1.13) -------------------------------------------
 * Each with what the monitor keeps of it (vCPU index, thread id, page-table root, ring and the
 * place in it) and its registers. What a thread is to the guest (its stack, TLS, signal mask,
 * a futex it parks on) is in guest RAM. Loaded after vCPU 0 and the clock. */
int sbx_state_threads(struct sbx_vm *vm, struct sbx_sio *io)
{
	struct sbx_thread_rec *recs = calloc(SBX_MAX_VCPUS, sizeof(*recs));
	if (!recs) {
		sbx_sio_fail(io, "out of memory");
		return io->err = -ENOMEM;
	}
	uint32_t n = io->load ? 0 : sbx_threads_records(vm, recs, SBX_MAX_VCPUS), zero = 0;
	sbx_sio_u32(io, &n);
	sbx_sio_u32(io, &zero);
	if (io->load && !io->err && (n == 0 || n >= SBX_MAX_VCPUS))
		sbx_sio_fail(io, "%u threads (limit %u)", n, SBX_MAX_VCPUS - 1);
	uint32_t last = 0, top = 0;
	for (uint32_t i = 0; i < n && !io->err; i++) {
		struct sbx_thread_rec *r = &recs[i];
		sbx_sio_u32(io, &r->index);
		sbx_sio_u32(io, &r->tid);
		sbx_sio_u32(io, &r->tail);
		sbx_sio_u32(io, &zero);
		sbx_sio_u64(io, &r->cr3);
		sbx_sio_u64(io, &r->ring_gpa);
		if (io->load && !io->err) {
			char m[200];
			if (r->index <= last)
				sbx_sio_fail(io, "thread on vCPU %u after vCPU %u", r->index, last);
			else if (sbx_thread_restore(vm, r, m, sizeof(m)) < 0)
				sbx_sio_fail(io, "%s", m);
			last = r->index;
			top = r->tid > top ? r->tid : top;
		}
		if (!io->err)
			vcpu_state_io(vm, io, r->fd, 0, 0, io->load && r->ran);
		struct kvm_sregs sr;
		if (io->load && !io->err &&
		    (ioctl(r->fd, KVM_GET_SREGS, &sr) < 0 || sr.cr3 != r->cr3))
			sbx_sio_fail(io,
				     "thread on vCPU %u: its CR3 is not its page-table root 0x%llx",
				     r->index, (unsigned long long)r->cr3);
		if (io->load && !io->err) {
			/* Its TSC is vCPU 0's (set by the clock section): KVM keeps the vCPUs' TSCs
			 * in step when they are written together. */
			const uint32_t msr = SBX_MSR_TSC;
			uint64_t tsc;
			if (sbx_kvm_msrs(vm, 0, &msr, &tsc, 1) != 1 ||
			    sbx_kvm_msrs_fd(r->fd, 1, &msr, &tsc, 1) != 1)
				sbx_sio_fail(io, "thread on vCPU %u: setting its TSC", r->index);
		}
	}
	if (io->load && !io->err && vm->hooks.ids_from)
		vm->hooks.ids_from(vm, top + 1);
	free(recs);
	return io->err;
}

/* ---- Monitor: handle table, cwd, ring position, counters ---------------------------------- */
/* A handle open for writing is refused where the rule of what its path reaches is read-only
 * (a nested mount's too). */
static int reopen_check(const struct policy_node *n, int *flags, void *ctx)
{
	(void)flags;
	return *(const int *)ctx && !n->mount->rw ? -EROFS : 0;
}

static int reopen_handle(struct sbx_vm *vm, struct sbx_sio *io, int num, struct sbx_handle *h,
			 int oflags, int64_t off)
{
	if (h->stdio >= 0) {
		const int host[3] = {vm->cfg.stdin_fd, vm->cfg.stdout_fd, vm->cfg.stderr_fd};
		/* The guest's stdio are the restoring monitor's: after a migration its output
		 * appears where the destination's goes. */
		h->fd = host[h->stdio] < 0 ? -1 : fcntl(host[h->stdio], F_DUPFD_CLOEXEC, 3);
		if (h->fd < 0) {
			sbx_sio_fail(io, "fd %d: the monitor's %s is closed", num,
				     (const char *[]){"stdin", "stdout", "stderr"}[h->stdio]);
			return -1;
		}
		return 0;
	}
	struct policy_target t;
	char g[160];
	sbx_shown(h->gpath, g, sizeof(g));
	policy_lookup(vm->cfg.policy, h->gpath, &t);
	if (h->kind == SBX_H_VFILE) {
		/* A node of the virtual /dev or /proc: there still, and no mount in its place. */
		struct sbx_vnode vn;
		if (t.kind != POLICY_NONE || sbx_vfs_lookup(vm, h->gpath, &vn) < 0 ||
		    (sbx_vfs_follow(&vn), !sbx_vfs_is_dir(vn.type) && !sbx_vfs_is_file(vn.type))) {
			sbx_sio_fail(io, "fd %d: %s is not a virtual file of this policy", num, g);
			return -1;
		}
		h->fd = -1;
		h->vnode = vn.type;
		h->vpid = vn.num > 0 ? (uint32_t)vn.num : vm->proc.pid;
		h->vflags = oflags & (O_ACCMODE | O_APPEND | O_NONBLOCK);
		return 0;
	}
	if (h->kind == SBX_H_VDIR) {
		if (t.kind != POLICY_VDIR) {
			sbx_sio_fail(io, "fd %d: directory %s is not part of this policy", num, g);
			return -1;
		}
		h->fd = -1;
		return 0;
	}
	if (t.kind != POLICY_MOUNT) {
		sbx_sio_fail(io, "fd %d: %s is outside every mount of this policy", num, g);
		return -1;
	}
	int acc = oflags & O_ACCMODE;
	int writes = acc != O_RDONLY || h->writable;
	/* The file as it is now: no O_CREAT, O_TRUNC or O_EXCL the second time. */
	int keep = O_ACCMODE | O_APPEND | O_NONBLOCK | O_DSYNC | O_SYNC | O_DIRECTORY | O_NOATIME;
	const struct policy_mount *m = t.mount;
	int fd = policy_open_guest(vm->cfg.policy, h->gpath, POLICY_FOLLOW,
				   (oflags & keep) | O_NONBLOCK, 0, reopen_check, &writes, &m);
	if (fd == -EROFS) {
		sbx_sio_fail(io, "fd %d: %s is open for writing but its mount is read-only here",
			     num, g);
		return -1;
	}
	if (fd < 0) {
		sbx_sio_fail(io, "fd %d: cannot reopen %s: %s", num, g, strerror(-fd));
		return -1;
	}
	if (!(oflags & O_NONBLOCK))
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	if (off >= 0 && lseek(fd, off, SEEK_SET) != off) {
		sbx_sio_fail(io, "fd %d: cannot seek %s to %lld: %s", num, g, (long long)off,
			     strerror(errno));
		close(fd);
		return -1;
	}
	h->fd = fd;
	h->writable = m->rw && acc != O_RDONLY;
	return 0;
}

static void handle_io(struct sbx_vm *vm, struct sbx_sio *io, int32_t num, struct sbx_handle *h)
{
	char gpath[POLICY_PATH_MAX] = "";
	uint32_t kind = h->kind, cloexec = (uint32_t)h->cloexec, writable = (uint32_t)h->writable;
	int32_t stdio = h->stdio, oflags = 0;
	int64_t off = -1;
	uint64_t vpos = h->vdir_pos;
	if (!io->load) {
		if (h->gpath)
			snprintf(gpath, sizeof(gpath), "%s", h->gpath);
		if (h->kind == SBX_H_HOST) {
			oflags = fcntl(h->fd, F_GETFL);
			if (h->stdio >= 0)
				oflags = (oflags & ~(O_APPEND | O_NONBLOCK)) | h->vflags;
			off = lseek(h->fd, 0, SEEK_CUR); /* -1 for pipes and terminals */
		}
		if (h->kind == SBX_H_VFILE)
			oflags = h->vflags;
	}
	sbx_sio_u32(io, &kind);
	sbx_sio_i32(io, &stdio);
	sbx_sio_u32(io, &cloexec);
	sbx_sio_u32(io, &writable);
	sbx_sio_i32(io, &oflags);
	sbx_sio_bytes(io, &off, sizeof(off));
	sbx_sio_u64(io, &vpos);
	sbx_sio_str(io, gpath, sizeof(gpath));
	if (!io->load || io->err)
		return;
	if ((kind != SBX_H_HOST && kind != SBX_H_VDIR && kind != SBX_H_VFILE) || stdio < -1 ||
	    stdio > 2 || (stdio >= 0 && kind != SBX_H_HOST) || (stdio < 0 && gpath[0] != '/')) {
		sbx_sio_fail(io, "fd %d: malformed handle (kind %u, stdio %d)", num, kind, stdio);
		return;
	}
	char norm[POLICY_PATH_MAX];
	if (stdio < 0 && (policy_normalize("/", gpath, strlen(gpath), norm, sizeof(norm)) < 0 ||
			  strcmp(norm, gpath))) {
		sbx_sio_fail(io, "fd %d: guest path is not normalised", num);
		return;
	}
	struct sbx_handle n = {.kind = kind,
			       .stdio = stdio,
			       .cloexec = cloexec != 0,
			       .writable = writable != 0,
			       .vdir_pos = vpos,
			       .vflags = stdio >= 0 ? oflags & (O_APPEND | O_NONBLOCK) : 0,
			       .gpath = stdio < 0 ? strdup(gpath) : NULL};
	if (stdio < 0 && !n.gpath) {
		sbx_sio_fail(io, "out of memory");
		return;
	}
	if (reopen_handle(vm, io, num, &n, oflags, off) < 0) {
		free(n.gpath);
		return;
	}
	*h = n;
}

/* The monitor's counters of the sandbox: a snapshot file keeps them, a reset does not (a
 * sandbox run many times counts all its runs). */
static void stats_io(struct sbx_vm *vm, struct sbx_sio *io)
{
	struct sbx_stats st = vm->stats;
	uint64_t calls[SBX_CALL_COUNT];
	memcpy(calls, vm->call_count, sizeof(calls));
	sbx_sio_u64(io, &st.exits);
	sbx_sio_u64(io, &st.doorbells);
	sbx_sio_u64(io, &st.polled);
	sbx_sio_u64(io, &st.calls);
	sbx_sio_u64(io, &st.upcalls);
	uint64_t out = vm->limits->out_bytes, wr = vm->limits->write_bytes;
	sbx_sio_u64(io, &out);
	sbx_sio_u64(io, &wr);
	uint32_t ncalls = SBX_CALL_COUNT, extra = 0;
	sbx_sio_u32(io, &ncalls);
	if (io->load && ncalls > SBX_CALL_COUNT) {
		extra = ncalls - SBX_CALL_COUNT; /* a newer monitor's calls: skipped */
		ncalls = SBX_CALL_COUNT;
	}
	sbx_sio_bytes(io, calls, ncalls * sizeof(uint64_t));
	for (uint32_t i = 0; i < extra && !io->err; i++) {
		uint64_t skip;
		sbx_sio_u64(io, &skip);
	}
	/* The byte limits count from the snapshot again, after a reset as after a restore. */
	vm->limits->out_bytes = out;
	vm->limits->write_bytes = wr;
	if (io->load && !io->reset) {
		vm->stats = st;
		memcpy(vm->call_count, calls, sizeof(calls));
	}
}

/* ---- Shared file mappings: the window, the file by guest path, and the file's identity ---- */
struct shmap_rec {
	uint64_t gpa, len, off, dev, ino, size, mtime_ns;
	uint32_t writable;
	char gpath[POLICY_PATH_MAX];
};

static uint64_t mtime_ns(const struct stat *st)
{
	return (uint64_t)st->st_mtim.tv_sec * 1000000000ull + (uint64_t)st->st_mtim.tv_nsec;
}

/* Maps the file again at the same place, if it is the same file as when it was recorded. */
static void shmap_restore(struct sbx_vm *vm, struct sbx_sio *io, const struct shmap_rec *r)
{
	char g[160];
	sbx_shown(r->gpath, g, sizeof(g));
	uint64_t base = sbx_shmap_base(vm);
	if (!r->len || ((r->gpa | r->len | r->off) & (SBX_PAGE_SIZE - 1)) || r->gpa < base ||
	    r->len > SBX_SHMAP_WINDOW || r->gpa - base > SBX_SHMAP_WINDOW - r->len ||
	    r->writable > 1 || r->gpath[0] != '/') {
		sbx_sio_fail(io, "shared mapping of %s: not a window of this sandbox", g);
		return;
	}
	int writes = (int)r->writable;
	const struct policy_mount *m = NULL;
	int fd = policy_open_guest(vm->cfg.policy, r->gpath, POLICY_FOLLOW,
				   writes ? O_RDWR : O_RDONLY, 0, reopen_check, &writes, &m);
	if (fd < 0) {
		sbx_sio_fail(io, "shared mapping of %s: cannot reopen it: %s", g,
			     fd == -EROFS ? "it is writable but its mount is read-only here"
					  : strerror(-fd));
		return;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_dev != r->dev ||
	    (uint64_t)st.st_ino != r->ino || (uint64_t)st.st_size != r->size ||
	    mtime_ns(&st) != r->mtime_ns) {
		sbx_sio_fail(io,
			     "shared mapping of %s: the file changed since the snapshot (another "
			     "file, size or modification time)",
			     g);
		close(fd);
		return;
	}
	uint64_t gpa = r->gpa;
	int e = sbx_shmap_add(vm, fd, r->off, r->len, writes, r->gpath, &gpa);
	close(fd);
	if (e < 0)
		sbx_sio_fail(io, "shared mapping of %s: cannot map it again: %s", g, strerror(-e));
}

static void shmaps_io(struct sbx_vm *vm, struct sbx_sio *io)
{
	uint32_t n = vm->proc.shmaps.count;
	sbx_sio_u32(io, &n);
	if (io->load && n > SBX_SHMAP_MAX)
		sbx_sio_fail(io, "%u shared mappings (limit %d)", n, SBX_SHMAP_MAX);
	for (uint32_t i = 0, k = 0; k < n && !io->err; i++) {
		struct shmap_rec r;
		memset(&r, 0, sizeof(r));
		if (!io->load) {
			const struct sbx_shmap *m = &vm->proc.shmaps.m[i];
			struct stat st;
			if (!m->len)
				continue;
			if (fstat(m->fd, &st) < 0) {
				sbx_sio_fail(io, "shared mapping of %s: fstat: %s", m->gpath,
					     strerror(errno));
				return;
			}
			r = (struct shmap_rec){.gpa = m->gpa,
					       .len = m->len,
					       .off = m->off,
					       .dev = (uint64_t)st.st_dev,
					       .ino = (uint64_t)st.st_ino,
					       .size = (uint64_t)st.st_size,
					       .mtime_ns = mtime_ns(&st),
					       .writable = (uint32_t)m->writable};
			snprintf(r.gpath, sizeof(r.gpath), "%s", m->gpath ? m->gpath : "");
		}
		sbx_sio_u64(io, &r.gpa);
		sbx_sio_u64(io, &r.len);
		sbx_sio_u64(io, &r.off);
		sbx_sio_u64(io, &r.dev);
		sbx_sio_u64(io, &r.ino);
		sbx_sio_u64(io, &r.size);
		sbx_sio_u64(io, &r.mtime_ns);
		sbx_sio_u32(io, &r.writable);
		sbx_sio_str(io, r.gpath, sizeof(r.gpath));
		if (io->load && !io->err)
			shmap_restore(vm, io, &r);
		k++;
	}
}

int sbx_state_monitor(struct sbx_vm *vm, struct sbx_sio *io)
{
	uint32_t tail = vm->proc.ring.tail, cpl = (uint32_t)vm->proc.vcpu.cpl, nfd = 0;
	/* A reset would have to put the windows' files back too: it keeps to states without
	 * windows, and drops those a run made. Snapshots and migration record them (shmaps_io). */
	if (!io->load && io->reset && vm->proc.shmaps.count) {
		const struct sbx_shmap *m = NULL;
		for (unsigned i = 0; i < SBX_SHMAP_MAX && !m; i++)
			m = vm->proc.shmaps.m[i].len ? &vm->proc.shmaps.m[i] : NULL;
		sbx_sio_fail(io,
			     "the program has %u shared file mapping(s) (mmap MAP_SHARED of %s), "
			     "which repeated runs cannot put back",
			     vm->proc.shmaps.count, m && m->gpath ? m->gpath : "a file");
		return io->err;
	}
	/* The other processes are VMs of their own, not in this one's state. */
	unsigned procs = io->load ? 1 : sbx_procs_count(vm);
	if (procs > 1) {
		sbx_sio_fail(io, "the sandbox has %u processes, which a snapshot cannot hold yet",
			     procs);
		return io->err;
	}
	if (!io->load && sbx_procs_timer_armed(vm)) {
		sbx_sio_fail(io, "the program has a timer armed (alarm, setitimer or "
				 "timer_create), which a snapshot cannot hold yet");
		return io->err;
	}
	/* Its pages are in a memfd, not in RAM nor in a file to reopen. */
	for (unsigned i = 0; i < SBX_SHMAP_MAX && !io->load; i++) {
		const struct sbx_shmap *m = &vm->proc.shmaps.m[i];
		if (m->len && m->ref) {
			sbx_sio_fail(io,
				     "the program maps a memfd (%s, %llu KiB), which a snapshot "
				     "cannot hold yet",
				     m->gpath ? m->gpath : "?", (unsigned long long)(m->len >> 10));
			return io->err;
		}
		if (m->len && m->anon_holders) {
			sbx_sio_fail(io,
				     "the program has shared anonymous memory (mmap MAP_SHARED | "
				     "MAP_ANONYMOUS, %llu KiB), which a snapshot cannot hold yet",
				     (unsigned long long)(m->len >> 10));
			return io->err;
		}
	}
	/* Pipes, eventfds, epoll instances, socket pairs and timerfds have a section of their
	 * own (objects.c), which a reset makes afresh too (reset.c). */
	for (int i = 0; i < SBX_MAX_FDS && !io->load; i++) {
		const struct sbx_handle *h = &vm->proc.files->fds[i];
		if (h->kind == SBX_H_HOST && h->obj != SBX_O_FILE && !sbx_handle_is_object(h)) {
			sbx_sio_fail(io, "fd %d is %s, which a snapshot cannot hold yet", i,
				     sbx_handle_obj_name(h->obj));
			return io->err;
		}
	}
	if (io->load)
		sbx_shmap_clear(vm);
	sbx_sio_str(io, vm->proc.cwd, sizeof(vm->proc.cwd));
	sbx_sio_str(io, vm->proc.image.exe_path, sizeof(vm->proc.image.exe_path));
	sbx_sio_u32(io, &tail);
	sbx_sio_u32(io, &cpl);
	sbx_sio_u64(io, &vm->proc.image.entry_rsp);
	sbx_sio_u64(io, &vm->proc.image.stack_guard);
	stats_io(vm, io);
	/* A reset copies the handle table itself (reset.c): its own dups, offsets kept. */
	if (!io->load && !io->reset)
		for (int i = 0; i < SBX_MAX_FDS; i++)
			nfd += vm->proc.files->fds[i].kind != SBX_H_FREE &&
			       !sbx_handle_is_object(&vm->proc.files->fds[i]);
	sbx_sio_u32(io, &nfd);
	if (io->load && !io->err) {
		char norm[POLICY_PATH_MAX];
		if (nfd > SBX_MAX_FDS)
			sbx_sio_fail(io, "%u handles (limit %d)", nfd, SBX_MAX_FDS);
		if (cpl != 0 && cpl != 3)
			sbx_sio_fail(io, "privilege level %u", cpl);
		if (vm->proc.cwd[0] != '/' ||
		    policy_normalize("/", vm->proc.cwd, strlen(vm->proc.cwd), norm, sizeof(norm)) <
			0 ||
		    strcmp(norm, vm->proc.cwd))
			sbx_sio_fail(io, "working directory is not a normalised guest path");
		if (vm->proc.image.stack_guard >= vm->proc.mem.size ||
		    vm->proc.image.entry_rsp > vm->proc.mem.size)
			sbx_sio_fail(io, "stack outside guest RAM");
		vm->proc.ring.tail = tail;
		vm->proc.vcpu.cpl = (int)cpl;
	}
	int32_t prev = -1;
	for (uint32_t i = 0, done = 0; done < nfd && !io->err; i++) {
		int32_t num = (int32_t)i;
		if (!io->load && (vm->proc.files->fds[i].kind == SBX_H_FREE ||
				  sbx_handle_is_object(&vm->proc.files->fds[i])))
			continue;
		sbx_sio_i32(io, &num);
		if (io->load && (num <= prev || num >= SBX_MAX_FDS)) {
			sbx_sio_fail(io, "handle number %d out of order or range", num);
			break;
		}
		prev = num;
		handle_io(vm, io, num, &vm->proc.files->fds[num]);
		done++;
		if (io->load)
			i = (uint32_t)num;
	}
	/* RLIMIT_NOFILE (ABI 1.3). A section of an older snapshot ends before it: the guest
	 * never set one, and the sandbox's own limit applies. */
	uint32_t nofile[3] = {(uint32_t)vm->proc.files->nofile_set, vm->proc.files->nofile_soft,
			      vm->proc.files->nofile_hard};
	if (io->err || (io->load && io->pos == io->len))
		return io->err;
	for (int i = 0; i < 3; i++)
		sbx_sio_u32(io, &nofile[i]);
	if (io->load && !io->err) {
		if (nofile[0] > 1 || nofile[1] > nofile[2] || nofile[2] > SBX_MAX_FDS)
			sbx_sio_fail(io, "RLIMIT_NOFILE %u/%u (set %u): not a limit of %d handles",
				     nofile[1], nofile[2], nofile[0], SBX_MAX_FDS);
		vm->proc.files->nofile_set = (int)nofile[0];
		vm->proc.files->nofile_soft = nofile[1];
		vm->proc.files->nofile_hard = nofile[2];
	}
	/* stderr's own byte budget (sandbox-serve); absent from older sections: zero. */
	if (io->err || (io->load && io->pos == io->len))
		return io->err;
	sbx_sio_u64(io, &vm->limits->err_bytes);
	/* Shared file mappings (ABI 1.5): only when there are some, so a state without is the
	 * same bytes as before them. */
	if (io->err || (io->load ? io->pos == io->len : !vm->proc.shmaps.count))
		return io->err;
	shmaps_io(vm, io);
	return io->err;
}

/* ---- What the loader found in the ELF (reports, core files) ------------------------------- */
int sbx_state_image(struct sbx_vm *vm, struct sbx_sio *io)
{
	struct loader_image *im = &vm->proc.image.img;
	uint32_t n = im->nsegs;
	sbx_sio_u64(io, &im->entry);
	sbx_sio_u64(io, &im->bias);
	sbx_sio_u64(io, &im->brk);
	sbx_sio_u64(io, &im->lo);
	sbx_sio_u64(io, &im->hi);
	sbx_sio_u32(io, &n);
	if (io->load && n > LOADER_MAX_RANGES)
		sbx_sio_fail(io, "%u segments (limit %d)", n, LOADER_MAX_RANGES);
	for (uint32_t i = 0; i < n && !io->err; i++) {
		uint32_t prot = (uint32_t)im->segs[i].prot;
		sbx_sio_u64(io, &im->segs[i].start);
		sbx_sio_u64(io, &im->segs[i].end);
		sbx_sio_u32(io, &prot);
		im->segs[i].prot = (int)prot;
		if (io->load &&
		    (im->segs[i].start >= im->segs[i].end || im->segs[i].end > vm->proc.mem.size))
			sbx_sio_fail(io, "segment %u outside guest RAM", i);
	}
	im->nsegs = io->err ? 0 : n;
	return io->err;
}

/* ---- Clocks -------------------------------------------------------------------------------- */
int sbx_state_clock(struct sbx_vm *vm, struct sbx_sio *io)
{
	const uint32_t tsc_msr = SBX_MSR_TSC;
	uint64_t tsc = 0, khz = 0;
	int64_t rt = 0;
	if (!io->load) {
		rt = sbx_now_ns(CLOCK_REALTIME);
		if (sbx_kvm_msrs(vm, 0, &tsc_msr, &tsc, 1) != 1)
			sbx_sio_fail(io, "reading the guest TSC: %s", strerror(errno));
		int k = ioctl(vm->proc.vcpu.fd, KVM_GET_TSC_KHZ, 0);
		khz = k > 0 ? (uint64_t)k : 0;
	}
	sbx_sio_u64(io, &tsc);
	sbx_sio_bytes(io, &rt, sizeof(rt));
	sbx_sio_u64(io, &khz);
	if (io->load && !io->err) {
		/* The guest's TSC goes on from where it was, so programs that read it themselves
		 * never see it go back. */
		if (sbx_kvm_msrs(vm, 1, &tsc_msr, &tsc, 1) != 1)
			sbx_sio_fail(io, "setting the guest TSC: %s", strerror(errno));
		else
			sbx_clock_rebase(vm, tsc, rt);
	}
	return io->err;
}

void sbx_clock_rebase(struct sbx_vm *vm, uint64_t guest_tsc, int64_t host_rt_then)
{
	struct sbx_bootinfo *b = sbx_gptr(vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	int64_t now = sbx_now_ns(CLOCK_REALTIME);
	/* The guest's clocks at guest_tsc, by its own (old) parameters. */
	uint64_t d = guest_tsc - b->tsc_at_boot;
	int64_t ns = (int64_t)(((unsigned __int128)d * b->tsc_mult) >> 32);
	int khz = ioctl(vm->proc.vcpu.fd, KVM_GET_TSC_KHZ, 0);
	uint64_t hz = khz > 0 ? (uint64_t)khz * 1000 : b->tsc_hz;
	b->clock_seq += 2;
	/* Unsigned arithmetic: these numbers come from the snapshot and may be anything. */
	b->monotonic_ns = (int64_t)((uint64_t)b->monotonic_ns + (uint64_t)ns);
	/* Realtime jumps by however long the sandbox was stopped, as a host's does after a
	 * suspend; monotonic and CPU time do not count that time. */
	b->realtime_ns = (int64_t)((uint64_t)b->realtime_ns + (uint64_t)ns + (uint64_t)now -
				   (uint64_t)host_rt_then);
	/* From here on the clocks count from the TSC the guest will read. Hardware KVM gives it
	 * the value just set; under PVM the guest's rdtsc is the host's own TSC whatever the MSR
	 * says, so anchoring at the saved value made monotonic time jump by however long the
	 * snapshot sat on disk. */
	b->tsc_at_boot = vm->proc.kvm.is_pvm ? __rdtsc() : guest_tsc;
	if (hz) {
		b->tsc_hz = hz;
		b->tsc_mult = (1000000000ull << 32) / hz;
		b->spin_tsc = hz / 1000000 * b->spin_us;
	}
	/* What this host's monitor does, not the saving one's. */
	b->flags = (b->flags & ~(uint32_t)(SBX_BOOT_POLLING | SBX_BOOT_SHOOTDOWN)) |
		   (vm->proc.ring.polling ? SBX_BOOT_POLLING : 0) |
		   (vm->proc.threads.shootdown ? SBX_BOOT_SHOOTDOWN : 0);
	/* The thread id held in this monitor's pid space, if any: the saved one is the old's. */
	b->tid_next = atomic_load(&vm->proc.threads.tid_next);
	sbx_mem_dirty(vm, SBX_BOOTINFO_ADDR, sizeof(*b));
}
