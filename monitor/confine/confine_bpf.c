/* The allowlist's seccomp program, written straight from its rules, in a layout the kernel's
 * per-syscall cache can read (it finds the calls allowed whatever their arguments, which then
 * never run the program):
 *   the architecture, then the x32 bit (either wrong: bad_arch; number -1 is not x32);
 *   a binary search on the syscall number down to leaves of a few "jeq nr": to a shared
 *   return where the syscall's one rule tests nothing, to its block otherwise; else dflt;
 *   per syscall, its rules in order: each tests its arguments, 32 bits at a time (high word
 *   first), and returns its action; a failed test goes on to the next rule; the block ends in
 *   dflt. A run of rules testing one word against several values is one load and a `jeq` each.
 * Conditional jumps reach 255 instructions at most: every far jump is a `ja` (32-bit offset),
 * and a conditional one only skips a `ja` or jumps within one rule or run of values. */
#include <errno.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "confine_priv.h"

#define X32_SYSCALL_BIT 0x40000000u
#define OFF_NR offsetof(struct seccomp_data, nr)
#define OFF_ARCH offsetof(struct seccomp_data, arch)
#define OFF_LO(i) (offsetof(struct seccomp_data, args) + 8u * (i))
#define OFF_HI(i) (OFF_LO(i) + 4u)

void *sbx_confine_grow(void *arr, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return arr;
	size_t c = *cap ? 2 * *cap : 256;
	void *a = realloc(arr, c * size);
	if (a)
		*cap = c;
	return a;
}

static int emit(struct sbx_confine_prog *p, uint16_t code, uint8_t jt, uint8_t jf, uint32_t k)
{
	struct sock_filter *ins = sbx_confine_grow(p->ins, &p->cap, p->n, sizeof(*ins));
	if (!ins)
		return -ENOMEM;
	p->ins = ins;
	p->ins[p->n++] = (struct sock_filter){.code = code, .jt = jt, .jf = jf, .k = k};
	return 0;
}

/* Instructions that are to reach the next rule once its place is known: by jt (1), by jf (0),
 * or a `ja`'s k (2). */
struct fixups {
	size_t at[4 * SBX_CONFINE_MAX_ARGS];
	uint8_t jt[4 * SBX_CONFINE_MAX_ARGS];
	unsigned n;
};

static int jump_out(struct sbx_confine_prog *p, struct fixups *f, uint32_t k, int on_true)
{
	f->at[f->n] = p->n;
	f->jt[f->n++] = (uint8_t)on_true;
	return emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 0, k);
}

/* One 32-bit half: (word & mask) == val, or the next rule. */
static int half_eq(struct sbx_confine_prog *p, struct fixups *f, uint32_t off, uint32_t mask,
		   uint32_t val)
{
	if (mask == 0) { /* 0 == val: always, or never (a `ja` to the next rule) */
		if (val == 0)
			return 0;
		f->at[f->n] = p->n;
		f->jt[f->n++] = 2;
		return emit(p, BPF_JMP | BPF_JA, 0, 0, 0);
	}
	int r = emit(p, BPF_LD | BPF_W | BPF_ABS, 0, 0, off);
	if (r == 0 && mask != 0xffffffffu)
		r = emit(p, BPF_ALU | BPF_AND | BPF_K, 0, 0, mask);
	return r ? r : jump_out(p, f, val, 0);
}

static int test_arg(struct sbx_confine_prog *p, struct fixups *f, const struct sbx_confine_arg *a)
{
	uint32_t mhi = (uint32_t)(a->mask >> 32), mlo = (uint32_t)a->mask;
	uint32_t vhi = (uint32_t)(a->val >> 32), vlo = (uint32_t)a->val;
	int r;
	switch (a->cmp) {
	case SBX_CONFINE_MASKED_EQ:
		if ((r = half_eq(p, f, OFF_HI(a->arg), mhi, vhi)) < 0)
			return r;
		return half_eq(p, f, OFF_LO(a->arg), mlo, vlo);
	case SBX_CONFINE_EQ:
		if ((r = half_eq(p, f, OFF_HI(a->arg), 0xffffffffu, vhi)) < 0)
			return r;
		return half_eq(p, f, OFF_LO(a->arg), 0xffffffffu, vlo);
	case SBX_CONFINE_NE:
		/* Holds when either half differs: a high word that differs skips the low one. */
		if ((r = emit(p, BPF_LD | BPF_W | BPF_ABS, 0, 0, OFF_HI(a->arg))) < 0 ||
		    (r = emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 2, vhi)) < 0 ||
		    (r = emit(p, BPF_LD | BPF_W | BPF_ABS, 0, 0, OFF_LO(a->arg))) < 0)
			return r;
		return jump_out(p, f, vlo, 1);
	}
	return -EINVAL;
}

static int emit_rule(struct sbx_confine_prog *p, const struct sbx_confine_rule *r)
{
	struct fixups f = {.n = 0};
	int e = 0;
	if (r->nargs > SBX_CONFINE_MAX_ARGS)
		return -EINVAL;
	for (unsigned i = 0; e == 0 && i < r->nargs; i++)
		e = r->a[i].arg < 6 ? test_arg(p, &f, &r->a[i]) : -EINVAL;
	if (e == 0)
		e = emit(p, BPF_RET | BPF_K, 0, 0, r->action);
	for (unsigned i = 0; e == 0 && i < f.n; i++) {
		struct sock_filter *in = &p->ins[f.at[i]];
		size_t off = p->n - (f.at[i] + 1);
		if (f.jt[i] == 2)
			in->k = (uint32_t)off;
		else if (f.jt[i])
			in->jt = (uint8_t)off;
		else
			in->jf = (uint8_t)off;
	}
	return e;
}

/* A run of rules of one syscall that each test one argument's low word against a value (the
 * ioctl and fcntl commands): one load, then a `jeq` to the shared return per value. */
static size_t run_len(const struct sbx_confine_rule *r, size_t n)
{
	size_t k = 0;
	/* At most 200: the first `jeq` jumps over the whole run, and a `jeq` reaches 255. */
	while (k < n && k < 200 && r[k].nr == r[0].nr && r[k].action == r[0].action &&
	       r[k].nargs == 1 && r[k].a[0].cmp == SBX_CONFINE_MASKED_EQ &&
	       r[k].a[0].arg == r[0].a[0].arg && r[k].a[0].mask == r[0].a[0].mask &&
	       (r[k].a[0].mask >> 32) == 0 && (r[k].a[0].val >> 32) == 0 &&
	       (uint32_t)r[k].a[0].mask)
		k++;
	return k;
}

static int emit_run(struct sbx_confine_prog *p, const struct sbx_confine_rule *r, size_t k)
{
	uint32_t mask = (uint32_t)r[0].a[0].mask;
	int e = emit(p, BPF_LD | BPF_W | BPF_ABS, 0, 0, OFF_LO(r[0].a[0].arg));
	if (e == 0 && mask != 0xffffffffu)
		e = emit(p, BPF_ALU | BPF_AND | BPF_K, 0, 0, mask);
	for (size_t i = 0; e == 0 && i < k; i++)
		e = emit(p, BPF_JMP | BPF_JEQ | BPF_K, (uint8_t)(k - i), 0,
			 (uint32_t)r[i].a[0].val);
	/* None matched: past the return, to the next rule. */
	if (e == 0)
		e = emit(p, BPF_JMP | BPF_JA, 0, 0, 1);
	return e ? e : emit(p, BPF_RET | BPF_K, 0, 0, r[0].action);
}

/* One syscall's block: its rules in order, then dflt. */
static int emit_block(struct sbx_confine_prog *p, const struct sbx_confine_rule *r, size_t n,
		      int nr, uint32_t dflt)
{
	int e = 0;
	for (size_t i = 0; e == 0 && i < n;) {
		if (r[i].nr != nr) {
			i++;
			continue;
		}
		size_t k = run_len(&r[i], n - i);
		if (k >= 2) {
			e = emit_run(p, &r[i], k);
			i += k;
		} else {
			e = emit_rule(p, &r[i++]);
		}
	}
	return e ? e : emit(p, BPF_RET | BPF_K, 0, 0, dflt);
}

/* A syscall whose one rule tests nothing: its leaf returns that rule's action (1 and *action
 * set) instead of jumping to a block (0). */
static int returns_at_once(const struct sbx_confine_rule *r, size_t n, int nr, uint32_t *action)
{
	const struct sbx_confine_rule *one = NULL;
	for (size_t i = 0; i < n; i++) {
		if (r[i].nr != nr)
			continue;
		if (one || r[i].nargs) /* a second rule, or a test */
			return 0;
		one = &r[i];
	}
	*action = one ? one->action : 0;
	return one != NULL;
}

#define LEAF 6

/* A leaf of the dispatch: "jeq nr; ja block" for a syscall with tests, "jeq nr" straight to a
 * shared return for one without, then dflt. */
static int emit_leaf(struct sbx_confine_prog *p, const struct sbx_confine_rule *r, size_t n,
		     const int *nrs, size_t lo, size_t hi, size_t *ja, uint32_t dflt)
{
	size_t at[LEAF];
	uint32_t act[LEAF];
	unsigned ns = 0;
	int e = 0;
	for (size_t g = lo; e == 0 && g < hi; g++) {
		ja[g] = SIZE_MAX;
		if (returns_at_once(r, n, nrs[g], &act[ns])) {
			at[ns++] = p->n;
			e = emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 0, (uint32_t)nrs[g]);
			continue;
		}
		e = emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 1, (uint32_t)nrs[g]);
		ja[g] = p->n;
		if (e == 0)
			e = emit(p, BPF_JMP | BPF_JA, 0, 0, 0);
	}
	if (e == 0)
		e = emit(p, BPF_RET | BPF_K, 0, 0, dflt);
	/* One return per action, reached by each jeq of that action. */
	for (unsigned i = 0; e == 0 && i < ns; i++) {
		unsigned first = 0;
		while (act[first] != act[i])
			first++;
		if (first == i)
			e = emit(p, BPF_RET | BPF_K, 0, 0, act[i]);
		for (unsigned j = i; e == 0 && first == i && j < ns; j++)
			if (act[j] == act[i])
				p->ins[at[j]].jt = (uint8_t)(p->n - 1 - (at[j] + 1));
	}
	return e;
}

/* The dispatch over the syscalls nrs[lo, hi) (sorted), a binary search of `jge`s down to
 * leaves: the kernel runs it once per syscall number to build its cache of calls always
 * allowed, and a linear chain made that the bulk of loading the filter. Each leaf's `ja` to a
 * block is recorded in ja[] (by position in nrs) for the caller to aim. */
static int emit_dispatch(struct sbx_confine_prog *p, const struct sbx_confine_rule *r, size_t n,
			 const int *nrs, size_t lo, size_t hi, size_t *ja, uint32_t dflt)
{
	if (hi - lo <= LEAF)
		return emit_leaf(p, r, n, nrs, lo, hi, ja, dflt);
	size_t mid = lo + (hi - lo) / 2, right;
	int e = emit(p, BPF_JMP | BPF_JGE | BPF_K, 0, 1, (uint32_t)nrs[mid]);
	right = p->n;
	if (e == 0)
		e = emit(p, BPF_JMP | BPF_JA, 0, 0, 0);
	if (e == 0)
		e = emit_dispatch(p, r, n, nrs, lo, mid, ja, dflt);
	if (e == 0) {
		p->ins[right].k = (uint32_t)(p->n - (right + 1));
		e = emit_dispatch(p, r, n, nrs, mid, hi, ja, dflt);
	}
	return e;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

int sbx_confine_bpf_build(const struct sbx_confine_rule *r, size_t n, uint32_t dflt,
			  uint32_t bad_arch, struct sbx_confine_prog *p)
{
	*p = (struct sbx_confine_prog){0};
	int *nrs = calloc(n ? n : 1, sizeof(*nrs));
	size_t *ja = calloc(n ? n : 1, sizeof(*ja)), ngroups = 0;
	int e = nrs && ja ? 0 : -ENOMEM;
	for (size_t i = 0; e == 0 && i < n; i++) {
		if (r[i].nr < 0)
			e = -EINVAL;
		nrs[ngroups++] = r[i].nr;
	}
	if (e == 0 && ngroups) {
		qsort(nrs, ngroups, sizeof(*nrs), cmp_int);
		size_t u = 1;
		for (size_t i = 1; i < ngroups; i++)
			if (nrs[i] != nrs[u - 1])
				nrs[u++] = nrs[i];
		ngroups = u;
	}
	/* Number -1 (a tracer's skipped call) is no x32 call: libseccomp lets it through too. */
	const struct sock_filter head[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, OFF_ARCH),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
	    BPF_STMT(BPF_RET | BPF_K, bad_arch),
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, OFF_NR),
	    BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 2),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xffffffffu, 1, 0),
	    BPF_STMT(BPF_RET | BPF_K, bad_arch),
	};
	for (size_t i = 0; e == 0 && i < sizeof(head) / sizeof(head[0]); i++)
		e = emit(p, head[i].code, head[i].jt, head[i].jf, head[i].k);
	if (e == 0)
		e = emit_dispatch(p, r, n, nrs, 0, ngroups, ja, dflt);
	for (size_t g = 0; e == 0 && g < ngroups; g++) {
		if (ja[g] == SIZE_MAX)
			continue;
		p->ins[ja[g]].k = (uint32_t)(p->n - (ja[g] + 1));
		e = emit_block(p, r, n, nrs[g], dflt);
	}
	if (e == 0 && p->n > BPF_MAXINSNS)
		e = -E2BIG;
	free(nrs);
	free(ja);
	if (e < 0) {
		free(p->ins);
		*p = (struct sbx_confine_prog){0};
	}
	return e;
}
