/* The extended-state arithmetic and the CPU check a restore makes, on made-up CPUID tables
 * (no KVM): the layouts are an AVX-512 + AMX host's, as CPUID leaf 0xD gives them. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "calls.h"
#include "confine.h"
#include "persist.h"

struct table {
	struct kvm_cpuid_entry2 e[32];
	uint32_t n;
};

static void put(struct table *t, uint32_t fn, uint32_t idx, uint32_t a, uint32_t b, uint32_t c,
		uint32_t d)
{
	struct kvm_cpuid_entry2 *e = &t->e[t->n++];
	memset(e, 0, sizeof(*e));
	e->function = fn;
	e->index = idx;
	e->flags = fn == 0xd || fn == 7 ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
	e->eax = a, e->ebx = b, e->ecx = c, e->edx = d;
}

/* xcr0: the components leaf 0xD offers; avx512: leaf 7's AVX-512F bit. */
static void host(struct table *t, uint64_t xcr0, int avx512)
{
	memset(t, 0, sizeof(*t));
	put(t, 1, 0, 0, 0, 1u << 28 | 1u << 27 | 1u << 31, 1u << 25 | 1u << 26 | 1u << 9);
	put(t, 7, 0, 0, (avx512 ? 1u << 16 : 0) | 1u << 5, 0, 0);
	put(t, 0xd, 0, (uint32_t)xcr0, 0, 0, (uint32_t)(xcr0 >> 32));
	static const uint32_t off[19] = {
	    [2] = 576, [5] = 1088, [6] = 1152, [7] = 1664, [17] = 2752, [18] = 2816};
	static const uint32_t size[19] = {
	    [2] = 256, [5] = 64, [6] = 512, [7] = 1024, [17] = 64, [18] = 8192};
	for (unsigned i = 2; i < 19; i++)
		if (xcr0 >> i & 1)
			put(t, 0xd, i, size[i], off[i], 0, 0);
}

Test(xstate, sizes_follow_the_enabled_components)
{
	struct table t;
	struct sbx_xstate x;
	host(&t, 0x600e7, 1);
	sbx_xstate_from_cpuid(&x, t.e, t.n);
	cr_assert_eq(x.supported, 0x600e7);
	cr_assert_eq(sbx_xstate_default(&x), 0xe7, "AMX is not on by default");
	cr_assert_eq(sbx_xstate_dynamic(&x), 0x60000);
	cr_assert_eq(sbx_xstate_bytes(&x, 3), 576);
	cr_assert_eq(sbx_xstate_bytes(&x, 7), 832);
	cr_assert_eq(sbx_xstate_bytes(&x, 0xe7), 0xa80, "the size CPUID reports for 0xe7");
	cr_assert_eq(sbx_xstate_bytes(&x, 0x600e7), 0x2b00, "AMX's tiles when asked for");
	/* Linux's AT_MINSIGSTKSZ on such a host without AMX is 3632 - 440 + ...: at least the
	 * frame plus the area, 16-byte aligned. */
	uint64_t m = sbx_xstate_sigstack_min(0xa80);
	cr_assert(m >= 440 + 0xa80 + 4 && m % 16 == 0, "%llu", (unsigned long long)m);
	host(&t, 0x7, 0);
	sbx_xstate_from_cpuid(&x, t.e, t.n);
	cr_assert_eq(sbx_xstate_dynamic(&x), 0, "no AMX on an AVX2 host");
	cr_assert_eq(sbx_xstate_default(&x), 0x7);
	/* Half of AMX is not AMX. */
	host(&t, 0x200e7, 1);
	sbx_xstate_from_cpuid(&x, t.e, t.n);
	cr_assert_eq(sbx_xstate_dynamic(&x), 0);
}

Test(xstate, a_snapshot_runs_where_every_feature_it_saw_is_offered)
{
	struct table h, s;
	char msg[400] = "";
	host(&h, 0x600e7, 1);
	host(&s, 0xe7, 1);
	cr_assert_eq(sbx_cpu_compatible(h.e, h.n, s.e, s.n, 0xe7, msg, sizeof(msg)), 0, "%s", msg);
	/* An AVX2 snapshot on an AVX-512 host. */
	host(&s, 0x7, 0);
	cr_assert_eq(sbx_cpu_compatible(h.e, h.n, s.e, s.n, 0x7, msg, sizeof(msg)), 0, "%s", msg);
}

Test(xstate, a_missing_feature_is_named_in_one_line)
{
	struct table h, s;
	char msg[400] = "";
	host(&h, 0x7, 0);
	host(&s, 0xe7, 1);
	cr_assert_eq(sbx_cpu_compatible(h.e, h.n, s.e, s.n, 0xe7, msg, sizeof(msg)), -ENOTSUP);
	cr_assert(strstr(msg, "avx512f"), "%s", msg);
	cr_assert(strstr(msg, "avx512_opmask") && strstr(msg, "avx512_hi16_zmm"), "%s", msg);
	cr_assert(!strchr(msg, '\n'), "%s", msg);
	/* The snapshot's program asked for AMX; this host has none. */
	host(&h, 0xe7, 1);
	host(&s, 0x600e7, 1);
	cr_assert_eq(sbx_cpu_compatible(h.e, h.n, s.e, s.n, 0x600e7, msg, sizeof(msg)), -ENOTSUP);
	cr_assert(strstr(msg, "amx_tiledata") && !strstr(msg, "avx512"), "%s", msg);
	/* ...but a snapshot that never enabled AMX restores there. */
	cr_assert_eq(sbx_cpu_compatible(h.e, h.n, s.e, s.n, 0xe7, msg, sizeof(msg)), 0, "%s", msg);
}

Test(xstate, bits_kvm_sets_at_run_time_do_not_count)
{
	struct table h, s;
	char msg[400] = "";
	host(&h, 0x7, 0);
	host(&s, 0x7, 0);
	/* OSXSAVE, hypervisor and APIC as the vCPU's own table shows them; the host's lacks. */
	h.e[0].ecx &= ~(1u << 27 | 1u << 31);
	h.e[0].edx &= ~(1u << 9);
	cr_assert_eq(sbx_cpu_compatible(h.e, h.n, s.e, s.n, 0x7, msg, sizeof(msg)), 0, "%s", msg);
}

Test(xstate, a_component_at_another_offset_is_refused)
{
	struct table h, s;
	char msg[400] = "";
	host(&h, 0xe7, 1);
	host(&s, 0xe7, 1);
	for (uint32_t i = 0; i < s.n; i++)
		if (s.e[i].function == 0xd && s.e[i].index == 5)
			s.e[i].ebx = 960; /* as if MPX's space were not there */
	cr_assert_eq(sbx_cpu_compatible(h.e, h.n, s.e, s.n, 0xe7, msg, sizeof(msg)), -ENOTSUP);
	cr_assert(strstr(msg, "avx512_opmask(at offset 1088 here, 960 in the snapshot)"), "%s",
		  msg);
}

/* A snapshot whose XSAVE area holds PKRU (KVM saves it when the vCPU's CPUID offers it, XCR0
 * or not) restores on a host without PKU when PKRU is in its initial state: the bit leaves
 * XSTATE_BV. With content it is refused in one line. */
Test(xstate, a_component_this_host_lacks_is_dropped_only_in_its_initial_state)
{
	struct table snap, here;
	host(&snap, 0xe7, 1);
	snap.e[2].eax |= 1u << 9;	   /* leaf 0xd.0 offers PKRU */
	put(&snap, 0xd, 9, 8, 2688, 0, 0); /* 8 bytes at 2688 */
	host(&here, 0xe7, 1);
	struct sbx_xstate hx;
	sbx_xstate_from_cpuid(&hx, here.e, here.n);
	static uint8_t area[4096];
	uint64_t bv = 0x202;
	memcpy(area + 512, &bv, 8);
	char msg[256] = "";
	cr_assert_eq(sbx_xstate_fit(&hx, snap.e, snap.n, area, sizeof(area), msg, sizeof(msg)), 0,
		     "%s", msg);
	memcpy(&bv, area + 512, 8);
	cr_assert_eq(bv, 0x2, "PKRU in its initial state is left out");
	bv = 0x202;
	memcpy(area + 512, &bv, 8);
	area[2688] = 0x54;
	cr_assert_eq(sbx_xstate_fit(&hx, snap.e, snap.n, area, sizeof(area), msg, sizeof(msg)),
		     -ENOTSUP);
	cr_assert(strstr(msg, "lacks: pkru state"), "%s", msg);
	memcpy(&bv, area + 512, 8);
	cr_assert_eq(bv, 0x202, "nothing changed on a refusal");
}
