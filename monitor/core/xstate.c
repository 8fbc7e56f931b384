/* The guest's extended (XSAVE) state and the CPU features a snapshot depends on.
 *
 * A program gets what a Linux process gets: x87, SSE, AVX and AVX-512 enabled from the start,
 * AMX only after arch_prctl(ARCH_REQ_XCOMP_PERM). Every size comes from CPUID leaf 0xD for
 * exactly the components enabled, never from XCR0 as the guest reads it: under PVM on some
 * Intel hosts `xgetbv` shows the host's XCR0 (0x600e7, AMX on) while the guest's save area is
 * sized for 0xe7, and an all-ones XSAVE mask then wrote 0x2b00 bytes into a 0xa80-byte frame. */
#include <cpuid.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vm.h"

#define ARCH_REQ_XCOMP_GUEST_PERM 0x1025
#define XFEATURE_XTILEDATA 18

static const struct kvm_cpuid_entry2 *cpuid_find(const struct kvm_cpuid_entry2 *e, uint32_t n,
						 uint32_t fn, uint32_t idx)
{
	for (uint32_t i = 0; i < n; i++)
		if (e[i].function == fn &&
		    (e[i].index == idx || !(e[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX)))
			return &e[i];
	return NULL;
}

void sbx_xstate_from_cpuid(struct sbx_xstate *x, const struct kvm_cpuid_entry2 *e, uint32_t n)
{
	memset(x, 0, sizeof(*x));
	const struct kvm_cpuid_entry2 *d = cpuid_find(e, n, 0xd, 0);
	x->supported = d ? ((uint64_t)d->edx << 32 | d->eax) : 3;
	x->supported |= 3; /* x87 and SSE are always there on x86-64 */
	for (unsigned i = 2; i < 64; i++) {
		const struct kvm_cpuid_entry2 *c = cpuid_find(e, n, 0xd, i);
		if ((x->supported >> i & 1) && c) {
			x->size[i] = c->eax;
			x->offset[i] = c->ebx;
		}
	}
}

uint32_t sbx_xstate_bytes(const struct sbx_xstate *x, uint64_t mask)
{
	uint32_t end = 576; /* the legacy area and the XSAVE header */
	for (unsigned i = 2; i < 64; i++)
		if ((mask >> i & 1) && x->offset[i] + x->size[i] > end)
			end = x->offset[i] + x->size[i];
	return end;
}

uint64_t sbx_xstate_default(const struct sbx_xstate *x)
{
	return x->supported & SBX_XFEATURES_LINUX;
}

uint64_t sbx_xstate_dynamic(const struct sbx_xstate *x)
{
	/* AMX needs both its components. */
	return (x->supported & SBX_XFEATURES_AMX) == SBX_XFEATURES_AMX ? SBX_XFEATURES_AMX : 0;
}

/* KVM offers AMX to a guest only if this process asked for it before creating the vCPU
 * (Documentation/arch/x86/xstate.rst); asking on a host without AMX fails harmlessly. */
static void request_guest_amx(void)
{
	syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_GUEST_PERM, XFEATURE_XTILEDATA);
}

void sbx_xstate_prepare(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, request_guest_amx);
}

void sbx_xstate_bootinfo(const struct sbx_xstate *x, uint64_t enabled, struct sbx_bootinfo *b)
{
	b->xfeatures = enabled;
	b->xfeatures_dynamic = sbx_xstate_dynamic(x);
	b->xfeatures_request = 0;
	b->xsave_bytes = sbx_xstate_bytes(x, enabled);
	b->xsave_bytes_max = sbx_xstate_bytes(x, enabled | sbx_xstate_dynamic(x));
}

uint64_t sbx_xstate_sigstack_min(uint32_t xsave_bytes)
{
	/* As Linux computes AT_MINSIGSTKSZ: the rt_sigframe (440 bytes), the XSAVE area with
	 * its trailing magic word, and the worst-case alignment of each. */
	return (440 + 15 + (uint64_t)xsave_bytes + 4 + 63 + 15) & ~15ull;
}

int sbx_xstate_set_xcr0(struct sbx_vm *vm, uint64_t xcr0)
{
	struct kvm_xcrs xc;
	memset(&xc, 0, sizeof(xc));
	xc.nr_xcrs = 1;
	xc.xcrs[0].xcr = 0;
	xc.xcrs[0].value = xcr0;
	if (ioctl(vm->proc.vcpu.fd, KVM_SET_XCRS, &xc) < 0)
		return -errno;
	vm->proc.vcpu.xcr0 = xcr0;
	return 0;
}

/* A doorbell may carry the kernel's request for more extended state (AMX after
 * ARCH_REQ_XCOMP_PERM): XCR0 is set here, on the vCPU thread, between two runs of the vCPU. */
void sbx_xstate_doorbell(struct sbx_vm *vm)
{
	struct sbx_bootinfo *b = sbx_gptr(vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	uint64_t want = __atomic_load_n(&b->xfeatures_request, __ATOMIC_RELAXED);
	if (!want || !sbx_abi_ok(vm->proc.image.khdr.abi_version) ||
	    (vm->proc.image.khdr.abi_version & 0xffff) < 3)
		return;
	b->xfeatures_request = 0;
	uint64_t base = sbx_xstate_default(&vm->proc.kvm.xs);
	uint64_t allowed = base | sbx_xstate_dynamic(&vm->proc.kvm.xs);
	/* Only whole sets the kernel may hold: the default one, plus whole dynamic features. */
	if ((want & ~allowed) || (want & base) != base)
		return;
	if (want != vm->proc.vcpu.xcr0 && sbx_xstate_set_xcr0(vm, want) < 0) {
		sbx_log(vm, 1, "XCR0 0x%llx refused by KVM: the program keeps 0x%llx",
			(unsigned long long)want, (unsigned long long)vm->proc.vcpu.xcr0);
		return;
	}
	b->xfeatures = want;
	b->xsave_bytes = sbx_xstate_bytes(&vm->proc.kvm.xs, want);
	/* CPUID.0xD's sizes follow XCR0: patched cpuid sites must see KVM's new answer. */
	sbx_x86_publish_cpuid(vm, vm->proc.vcpu.fd);
	sbx_log(vm, 1, "extended state 0x%llx enabled on the program's request (%u bytes)",
		(unsigned long long)want, b->xsave_bytes);
}

/* ---- Can a snapshot's vCPU run on this host? --------------------------------------------
 * A program decides once, at its start, which instructions to use (glibc's ifuncs, a JIT's
 * code generator), from what CPUID showed it. So a snapshot needs every feature its CPUID
 * table showed, every XSAVE component its XCR0 enabled, at the same offsets. */
struct feat_word {
	uint32_t fn, idx;
	uint8_t reg;		  /* 0 eax, 1 ebx, 2 ecx, 3 edx */
	const char *const *names; /* the bits that count; not those KVM sets at run time
				   * (OSXSAVE, OSPKE, APIC, hypervisor) */
};

static const char *const leaf1_ecx[32] = {
    [0] = "sse3",    [1] = "pclmulqdq", [9] = "ssse3",	[12] = "fma",	 [13] = "cx16",
    [19] = "sse4_1", [20] = "sse4_2",	[22] = "movbe", [23] = "popcnt", [25] = "aes",
    [26] = "xsave",  [28] = "avx",	[29] = "f16c",	[30] = "rdrand",
};
static const char *const leaf1_edx[32] = {
    [0] = "fpu", [4] = "tsc", [8] = "cx8", [15] = "cmov", [23] = "mmx", [25] = "sse", [26] = "sse2",
};
static const char *const leaf7_ebx[32] = {
    [0] = "fsgsbase",  [3] = "bmi1",	    [5] = "avx2",	 [8] = "bmi2",
    [9] = "erms",      [16] = "avx512f",    [17] = "avx512dq",	 [18] = "rdseed",
    [19] = "adx",      [21] = "avx512ifma", [23] = "clflushopt", [24] = "clwb",
    [28] = "avx512cd", [29] = "sha_ni",	    [30] = "avx512bw",	 [31] = "avx512vl",
};
static const char *const leaf7_ecx[32] = {
    [1] = "avx512vbmi",	  [5] = "waitpkg",	  [6] = "avx512_vbmi2",
    [8] = "gfni",	  [9] = "vaes",		  [10] = "vpclmulqdq",
    [11] = "avx512_vnni", [12] = "avx512_bitalg", [14] = "avx512_vpopcntdq",
    [22] = "rdpid",
};
static const char *const leaf7_edx[32] = {
    [4] = "fsrm",	  [8] = "avx512_vp2intersect", [22] = "amx_bf16",
    [23] = "avx512_fp16", [24] = "amx_tile",	       [25] = "amx_int8",
};
static const char *const leaf71_eax[32] = {[4] = "avx_vnni", [5] = "avx512_bf16"};
static const char *const leafd1_eax[32] = {
    [0] = "xsaveopt", [1] = "xsavec", [2] = "xgetbv1", [3] = "xsaves", [4] = "xfd",
};
static const char *const ext1_ecx[32] = {
    [0] = "lahf_lm", [5] = "abm",   [6] = "sse4a", [8] = "3dnowprefetch",
    [11] = "xop",    [16] = "fma4", [21] = "tbm",
};
static const char *const ext1_edx[32] = {[27] = "rdtscp", [29] = "lm"};

static const struct feat_word sbx_feat_words[] = {
    {1, 0, 2, leaf1_ecx},    {1, 0, 3, leaf1_edx},	   {7, 0, 1, leaf7_ebx},
    {7, 0, 2, leaf7_ecx},    {7, 0, 3, leaf7_edx},	   {7, 1, 0, leaf71_eax},
    {0xd, 1, 0, leafd1_eax}, {0x80000001, 0, 2, ext1_ecx}, {0x80000001, 0, 3, ext1_edx},
};

static const char *const xfeature_names[19] = {
    "x87",
    "sse",
    "avx",
    "mpx_bndregs",
    "mpx_bndcsr",
    "avx512_opmask",
    "avx512_zmm_hi256",
    "avx512_hi16_zmm",
    "pt",
    "pkru",
    "pasid",
    "cet_u",
    "cet_s",
    "hdc",
    "uintr",
    "lbr",
    "hwp",
    "amx_tilecfg",
    "amx_tiledata",
};

static uint32_t reg_of(const struct kvm_cpuid_entry2 *e, uint8_t reg)
{
	return reg == 0 ? e->eax : reg == 1 ? e->ebx : reg == 2 ? e->ecx : e->edx;
}

/* Names the first few missing features; the rest are counted, so the line stays short. */
struct missing {
	char buf[160];
	size_t o;
	unsigned n;
};

static void add_name(struct missing *m, const char *name, const char *fallback, unsigned bit)
{
	if (m->n++ >= 8)
		return;
	char *buf = m->buf;
	size_t len = sizeof(m->buf), *o = &m->o;
	if (*o >= len)
		return;
	int w = name ? snprintf(buf + *o, len - *o, "%s%s", *o ? " " : "", name)
		     : snprintf(buf + *o, len - *o, "%s%s.%u", *o ? " " : "", fallback, bit);
	*o += w > 0 ? (size_t)w : 0;
}

int sbx_cpu_compatible(const struct kvm_cpuid_entry2 *host, uint32_t nhost,
		       const struct kvm_cpuid_entry2 *snap, uint32_t nsnap, uint64_t snap_xcr0,
		       char *msg, size_t msglen)
{
	struct missing m = {.o = 0};
	for (size_t w = 0; w < sizeof(sbx_feat_words) / sizeof(sbx_feat_words[0]); w++) {
		const struct feat_word *f = &sbx_feat_words[w];
		const struct kvm_cpuid_entry2 *s = cpuid_find(snap, nsnap, f->fn, f->idx);
		const struct kvm_cpuid_entry2 *h = cpuid_find(host, nhost, f->fn, f->idx);
		/* Only instruction-set extensions count (the named bits): a program picks code by
		 * them; the rest (topology, legacy quirks) does not change what it can run. */
		uint32_t isa = 0;
		for (unsigned b = 0; b < 32; b++)
			isa |= f->names[b] ? 1u << b : 0;
		uint32_t need = s ? reg_of(s, f->reg) & isa : 0;
		uint32_t lack = need & ~(h ? reg_of(h, f->reg) : 0);
		for (unsigned b = 0; b < 32; b++) {
			if (!(lack >> b & 1))
				continue;
			add_name(&m, f->names[b], "cpuid", b);
		}
	}
	struct sbx_xstate hx, sx;
	sbx_xstate_from_cpuid(&hx, host, nhost);
	sbx_xstate_from_cpuid(&sx, snap, nsnap);
	for (unsigned b = 0; b < 64; b++) {
		if (!(snap_xcr0 >> b & 1))
			continue;
		int absent = !(hx.supported >> b & 1);
		int moved =
		    !absent && b >= 2 && (hx.offset[b] != sx.offset[b] || hx.size[b] != sx.size[b]);
		if (absent || moved)
			add_name(&m, b < 19 ? xfeature_names[b] : NULL, "xstate", b);
		if (moved && m.n <= 8 && m.o < sizeof(m.buf))
			m.o += (size_t)snprintf(m.buf + m.o, sizeof(m.buf) - m.o,
						"(at offset %u here, %u in the snapshot)",
						hx.offset[b], sx.offset[b]);
	}
	if (!m.n)
		return 0;
	char more[32] = "";
	if (m.n > 8)
		snprintf(more, sizeof(more), " and %u more", m.n - 8);
	snprintf(msg, msglen, "the snapshot's program uses CPU features this host lacks: %s%s",
		 m.buf, more);
	return -ENOTSUP;
}

int sbx_xstate_fit(const struct sbx_xstate *host, const struct kvm_cpuid_entry2 *snap,
		   uint32_t nsnap, uint8_t *area, size_t len, char *msg, size_t msglen)
{
	uint64_t bv;
	if (len < 520)
		return 0;
	memcpy(&bv, area + 512, 8);
	struct sbx_xstate sx;
	sbx_xstate_from_cpuid(&sx, snap, nsnap);
	struct missing m = {.o = 0};
	uint64_t drop = 0;
	for (unsigned b = 2; b < 64; b++) {
		if (!(bv >> b & 1) || (host->supported >> b & 1))
			continue;
		/* KVM saves a component the vCPU's CPUID offers even when XCR0 leaves it out
		 * (PKRU): in its initial state (all zeroes) it is the same as not there. */
		int zero = sx.size[b] && sx.offset[b] >= 576 && sx.offset[b] <= len &&
			   sx.size[b] <= len - sx.offset[b];
		for (uint32_t i = 0; zero && i < sx.size[b]; i++)
			zero = !area[sx.offset[b] + i];
		if (zero)
			drop |= 1ull << b;
		else
			add_name(&m, b < 19 ? xfeature_names[b] : NULL, "xstate", b);
	}
	if (m.n) {
		snprintf(msg, msglen,
			 "the snapshot's program uses CPU features this host lacks: %s state",
			 m.buf);
		return -ENOTSUP;
	}
	bv &= ~drop;
	memcpy(area + 512, &bv, 8);
	return 0;
}

/* Under PVM the guest runs on the host's CPU as it is, whatever KVM's table lists (one PVM
 * host here offers no SSE3 or AVX2 in KVM_GET_SUPPORTED_CPUID, yet its guests execute them): a
 * feature counts as present when either the host CPU or KVM's table has it. The XSAVE
 * components do not: KVM_SET_XCRS accepts only what KVM offers. */
static void add_native_features(struct kvm_cpuid2 *c, uint32_t cap)
{
	for (size_t w = 0; w < sizeof(sbx_feat_words) / sizeof(sbx_feat_words[0]); w++) {
		const struct feat_word *f = &sbx_feat_words[w];
		unsigned r[4];
		if (!__get_cpuid_count(f->fn, f->idx, &r[0], &r[1], &r[2], &r[3]))
			continue;
		struct kvm_cpuid_entry2 *e =
		    (struct kvm_cpuid_entry2 *)cpuid_find(c->entries, c->nent, f->fn, f->idx);
		if (!e) {
			if (c->nent >= cap)
				continue;
			e = &c->entries[c->nent++];
			memset(e, 0, sizeof(*e));
			e->function = f->fn;
			e->index = f->idx;
			e->flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
		}
		uint32_t *reg = f->reg == 0   ? &e->eax
				: f->reg == 1 ? &e->ebx
				: f->reg == 2 ? &e->ecx
					      : &e->edx;
		*reg |= r[f->reg];
	}
}

int sbx_cpu_check_snapshot(struct sbx_vm *vm, const struct kvm_cpuid_entry2 *snap, uint32_t nsnap,
			   uint64_t snap_xcr0, char *msg, size_t msglen)
{
	uint32_t nent = 256;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));
	if (!c) {
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	c->nent = nent;
	if (ioctl(vm->proc.kvm.kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		int e = errno;
		snprintf(msg, msglen, "KVM_GET_SUPPORTED_CPUID: %s", strerror(e));
		free(c);
		return -e;
	}
	sbx_xstate_from_cpuid(&vm->proc.kvm.xs, c->entries, c->nent);
	add_native_features(c, nent);
	int r = sbx_cpu_compatible(c->entries, c->nent, snap, nsnap, snap_xcr0, msg, msglen);
	free(c);
	return r;
}
